//! Plain data that one collection cycle produces and the renderer reads:
//! per region, the last good answer of every action, plus the bookkeeping
//! of the exporter's own per-region series.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::invocations::Invocation;
use crate::api::{
    Activation, AgentStatus, InstanceInfo, InstanceStatus, ManagedInstance, PluginStatus,
};

/// What one successful walk of a region returned.
#[derive(Clone, Debug, Default)]
pub struct RegionData {
    /// Sorted by instance id.
    pub agents: Vec<AgentStatus>,
    /// Sorted by instance id.
    pub instances: Vec<InstanceStatus>,
    /// Sorted by (instance id, plugin name).
    pub plugins: Vec<PluginStatus>,
    /// Clock time of the collection (heartbeat ages are relative to it).
    pub collected_at: i64,
}

/// A region as the page shows it.
#[derive(Clone, Debug, Default)]
pub struct RegionState {
    /// The last good data (kept when a later cycle fails).
    pub data: Option<Arc<RegionData>>,
    /// Did the last cycle succeed?
    pub up: bool,
    pub last_success: Option<i64>,
    /// Seconds the last cycle of this region took.
    pub duration: f64,
    /// Names, zones, types and tags (DescribeInstances), from the last good
    /// instance-info walk; kept between walks.
    pub info: Option<Arc<Vec<InstanceInfo>>>,
    /// Hybrid managed instances (DescribeManagedInstances), last good walk.
    pub managed: Option<Arc<Vec<ManagedInstance>>>,
    /// Activation codes (DescribeActivations), last good walk.
    pub activations: Option<Arc<Vec<Activation>>>,
    /// Failed command invocations counted so far, and the scheduled tasks
    /// of the last good walk (DescribeInvocations).
    pub invocations: Option<Arc<InvocationData>>,
    /// Each plugin name swept in the region: did its last sweep succeed?
    /// A failed sweep keeps its last good rows in `data` for a while.
    pub sweeps: BTreeMap<String, SweepState>,
    /// Walks since start by result: ok, failed, timeout.
    pub walks: [u64; 3],
    /// Side walks whose rows were let go once their pieces were rendered
    /// (nothing later reads them): those pieces are reused as they are
    /// until the side walk lands again or its series go.
    pub rendered: Sources,
}

/// What a family of the page is rendered from, as far as keeping rows
/// goes: a side walk whose rows are let go once rendered (instance info,
/// hybrid servers, activation codes), or rows the state keeps anyway
/// (the region's walk, which the next walk reads; the invocations, whose
/// failures are counted on; the walk's own outcome).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Kept,
    Info,
    Managed,
    Activations,
}

impl Source {
    /// The sources whose rows are let go after rendering.
    pub const RELEASED: [Source; 3] = [Source::Info, Source::Managed, Source::Activations];

    fn bit(self) -> u8 {
        match self {
            Source::Kept => 0,
            Source::Info => 1,
            Source::Managed => 2,
            Source::Activations => 4,
        }
    }
}

/// A set of [`Source`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sources(u8);

impl Sources {
    pub fn contains(self, s: Source) -> bool {
        s.bit() != 0 && self.0 & s.bit() != 0
    }

    pub fn insert(&mut self, s: Source) {
        self.0 |= s.bit();
    }

    pub fn remove(&mut self, s: Source) {
        self.0 &= !s.bit();
    }
}

/// What failed runs are counted by: command name, per-instance status and
/// error code (empty when the API gives none).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FailureKey {
    pub command_name: Arc<str>,
    pub status: Arc<str>,
    pub error_code: Arc<str>,
}

/// What the invocation walks of a region add up to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InvocationData {
    /// (command name, per-instance status, error code) → failed runs
    /// counted since start, each (invocation, instance) once.
    pub failures: BTreeMap<FailureKey, u64>,
    /// The scheduled tasks, sorted by id.
    pub tasks: Vec<Invocation>,
}

/// The last try of one plugin sweep in one region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepState {
    pub up: bool,
    pub last_success: Option<i64>,
}

/// A region of an account (the account is empty without `--config.file`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionKey {
    pub account: String,
    pub region: String,
}

impl RegionKey {
    pub fn new(account: &str, region: &str) -> Self {
        RegionKey {
            account: account.to_string(),
            region: region.to_string(),
        }
    }
}

/// Everything the page is rendered from.
#[derive(Clone, Debug, Default)]
pub struct FleetSnapshot {
    pub regions: BTreeMap<RegionKey, RegionState>,
    /// Clock time a region's walk last ended (absent before the first).
    pub last_collection: Option<i64>,
    /// Rounds finished since start: every region walked once.
    pub cycles: u64,
    /// Seconds the last round took (every region walked once).
    pub cycle_duration: f64,
    /// `--collect.interval`, seconds.
    pub interval: f64,
    /// Plugin names swept, by where they came from.
    pub plugin_names: PluginNameCounts,
    /// `--collect.tags`: the tag keys written as `tag_<key>` labels on the
    /// info series, in the order given.
    pub tags: Arc<[String]>,
}

/// How many plugin names are swept by name, by where they came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PluginNameCounts {
    /// `--collect.plugins`.
    pub flag: usize,
    /// Found by discovery, over every account.
    pub discovered: usize,
}

impl FleetSnapshot {
    /// The `account` label value (named accounts only) and the region id.
    pub fn labels<'a>(&self, key: &'a RegionKey) -> (Option<&'a str>, &'a str) {
        (
            (!key.account.is_empty()).then_some(key.account.as_str()),
            key.region.as_str(),
        )
    }
}

/// `all`: every state of a state set is a series; `current`: only the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StateSets {
    #[default]
    All,
    Current,
}
