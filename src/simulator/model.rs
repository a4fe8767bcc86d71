//! The simulated fleet's data: regions as configured, instances with their
//! agents and plugins, hybrid servers and activation codes. Plain types,
//! shared by the files that generate them and the actions that answer with
//! them.

use crate::rng::Rng;

#[derive(Clone, Debug)]
pub struct RegionSpec {
    pub id: String,
    pub instances: usize,
    /// Answer in the older formats: misspelt keys, `"True"`, numbers as
    /// strings, minute-precision times, optional fields left out.
    pub quirky: bool,
    /// Hybrid servers (`mi-*`) DescribeManagedInstances lists; none unless set.
    pub managed_instances: usize,
    /// Activation codes DescribeActivations lists; none unless set.
    pub activations: usize,
    /// False: both hybrid actions answer `RegionId.ApiNotSupported`.
    pub hybrid_supported: bool,
    /// How the hybrid actions page here.
    pub hybrid_paging: HybridPaging,
    /// One-off invocations in the region's history (DescribeInvocations),
    /// besides two scheduled tasks; none unless set.
    pub invocations: usize,
}

impl RegionSpec {
    pub fn new(id: &str, instances: usize) -> Self {
        RegionSpec {
            id: id.to_string(),
            instances,
            quirky: false,
            managed_instances: 0,
            activations: 0,
            hybrid_supported: true,
            hybrid_paging: HybridPaging::Tokens,
            invocations: 0,
        }
    }

    /// `n` one-off command invocations (some failing) and two scheduled
    /// tasks (one failing on one host).
    pub fn invocations(mut self, n: usize) -> Self {
        self.invocations = n;
        self
    }

    pub fn quirky(mut self) -> Self {
        self.quirky = true;
        self
    }

    /// `managed` hybrid servers registered with `activations` codes.
    pub fn hybrid(mut self, managed: usize, activations: usize) -> Self {
        self.managed_instances = managed;
        self.activations = activations;
        self
    }

    /// A region without the hybrid actions (`RegionId.ApiNotSupported`).
    pub fn hybrid_not_supported(mut self) -> Self {
        self.hybrid_supported = false;
        self
    }

    pub fn hybrid_paging(mut self, paging: HybridPaging) -> Self {
        self.hybrid_paging = paging;
        self
    }
}

/// How a region's hybrid actions page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HybridPaging {
    /// `MaxResults` + `NextToken` (and `PageNumber`/`PageSize` when no
    /// token parameter is given), as today's API.
    #[default]
    Tokens,
    /// An older API: `MaxResults` and `NextToken` are ignored, pages are
    /// numbered (`PageSize` 10 unless given).
    IgnoresTokens,
    /// An older API that refuses `MaxResults` and `NextToken` outright.
    RefusesTokens,
}

/// One hybrid server running the Cloud Assistant agent.
#[derive(Clone, Debug)]
pub struct SimManagedInstance {
    pub id: String,
    pub name: String,
    pub hostname: String,
    pub connected: bool,
    pub agent_version: String,
    pub os_type: String,
    pub os_version: String,
    pub invocations: u64,
    pub last_invoked: Option<i64>,
    pub registered_at: i64,
    pub activation_id: String,
    pub intranet_ip: String,
    pub tags: Vec<(String, String)>,
    /// Quirks of its answer row in a quirky region (bit set).
    pub quirks: u8,
}

/// One activation code.
#[derive(Clone, Debug)]
pub struct SimActivation {
    pub id: String,
    pub instance_name: String,
    pub description: String,
    /// InstanceCount: how many registrations it allows.
    pub limit: u64,
    pub registered: u64,
    pub deregistered: u64,
    pub disabled: bool,
    pub created: i64,
    pub ttl_hours: u64,
    pub tags: Vec<(String, String)>,
    pub quirks: u8,
}

impl SimActivation {
    pub fn expires_at(&self) -> i64 {
        self.created + self.ttl_hours as i64 * 3600
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Agent {
    NotInstalled,
    /// Installed; beats every minute until `stops_at` (if any), then goes stale.
    Beating {
        stops_at: Option<i64>,
    },
    /// Installed, last heartbeat long ago.
    Down {
        last_heartbeat: i64,
    },
}

#[derive(Clone, Debug)]
pub struct SimPlugin {
    pub name: String,
    pub version: String,
    pub status: String,
    pub first_heartbeat: i64,
    /// Seconds behind the clock of the plugin's last heartbeat.
    pub lag: i64,
}

#[derive(Clone, Debug)]
pub struct SimInstance {
    pub id: String,
    pub status: String,
    pub os_type: String,
    pub agent: Agent,
    pub version: String,
    pub active_tasks: u64,
    pub invocations: u64,
    pub last_invoked: Option<i64>,
    /// Heartbeat phase within the minute.
    pub phase: i64,
    pub plugins: Vec<SimPlugin>,
    /// Per-instance quirks in a quirky region (bit set).
    pub quirks: u8,
    /// What DescribeInstances tells: name, zone, type and tags (`key, value`
    /// in the order the API lists them).
    pub name: String,
    pub zone_id: String,
    pub instance_type: String,
    pub tags: Vec<(String, String)>,
}

pub(crate) const LINUX_VERSIONS: &[&str] = &["2.2.0.106", "2.2.3.256", "2.2.3.398", "2.2.4.537"];
pub(crate) const WINDOWS_VERSIONS: &[&str] = &["2.1.0.92", "2.1.3.256", "2.1.3.398", "2.1.4.537"];

pub(crate) fn pick<'a>(rng: &mut Rng, items: &'a [&'a str]) -> &'a str {
    items[rng.below(items.len() as u64) as usize]
}
