//! Faults the simulator can inject: latency (everywhere, per region, per
//! action), throttling and 503s at a rate, per-region failures (an error
//! code, a hang, a malformed answer, a NextToken that never ends, a
//! redirect, a raw status, a signature refused with the string to sign
//! echoed), failing plugin sweeps, a changed region list, and actions the
//! caller's RAM policy lacks.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Added to every answer.
    pub latency: Duration,
    /// Share of requests answered `Throttling.User` (HTTP 400).
    pub throttle_rate: f64,
    /// Share of requests answered `ServiceUnavailable` (HTTP 503).
    pub unavailable_rate: f64,
    /// Failures of one region (every action in it).
    pub regions: HashMap<String, RegionFault>,
    /// Failures of one action (in every region; DescribeRegions too).
    pub actions: HashMap<String, RegionFault>,
    /// Actions the caller may not call: answered as ECS answers a RAM user
    /// or role without the permission (HTTP 403 `Forbidden.RAM`, with an
    /// `AccessDeniedDetail` naming `ecs:<Action>`).
    pub denied: BTreeSet<String>,
    /// Added to every answer of one region (a slow or throttled region).
    pub region_latency: HashMap<String, Duration>,
    /// Added to every answer of one action (a slow DescribeRegions).
    pub action_latency: HashMap<String, Duration>,
    /// Sweeps of one plugin (ListPluginStatus by `Name`) that fail, with
    /// this API error, in every region.
    pub plugin_sweeps: HashMap<String, RegionFault>,
    /// Sweeps of one plugin that fail in one region only: `(region, plugin)`.
    pub region_plugin_sweeps: HashMap<(String, String), RegionFault>,
    /// What DescribeRegions answers instead of the fleet's regions:
    /// `(RegionId, RegionEndpoint)`, an empty endpoint meaning the
    /// simulator's own URL (an empty list, a shrunken one, hostile ids).
    pub region_list: Option<Vec<(String, String)>>,
}

impl Faults {
    /// Takes the permission for `action` away.
    pub fn deny(&mut self, action: &str) -> &mut Self {
        self.denied.insert(action.to_string());
        self
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegionFault {
    /// Answer with this API error.
    Error { status: u16, code: String },
    /// Never answer (until the client gives up).
    Hang,
    /// Answer 200 with this body.
    Body(String),
    /// Paged actions always return a new NextToken, past the end too.
    EndlessToken,
    /// Paged actions return the token they were given, again and again.
    RepeatToken,
    /// Answer `307 Temporary Redirect` to this URL (before any signature
    /// check, as a load balancer or a hijacked endpoint would).
    Redirect(String),
    /// Answer this status with this body, as it is.
    Raw { status: u16, body: String },
    /// Refuse the signature as the real API does: `SignatureDoesNotMatch`,
    /// its message echoing the server's string to sign, with the
    /// AccessKeyId and the SecurityToken of the request in it.
    SignatureMismatch,
}
