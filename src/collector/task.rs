//! What the stages of a region's walk hand each other: the plan's task
//! (plan → walk) and the walk's outcome (walk → state). A leaf of the
//! collector, so the stages import it and not each other.

use std::sync::Arc;
use std::time::Duration;

use crate::api::{AgentStatus, InstanceStatus, ManagedInstance, PluginStatus};
use crate::client::Client;
use crate::error::ApiError;
use crate::snapshot::RegionKey;

/// The plugin sweeps of a region's cycle: names in the order they start,
/// and how many run at once.
pub(super) struct SweepPlan {
    pub(super) names: Vec<String>,
    pub(super) lanes: usize,
}

/// The discovery calls of a region's cycle.
pub(super) enum Targets {
    /// Picked from the last cycle's agents; they run beside this cycle's
    /// agent walk (of about `walk_pages` pages).
    Chosen {
        ids: Vec<Arc<str>>,
        walk_pages: usize,
    },
    /// Pick from this cycle's agents, with this share.
    AfterAgents(f64),
}

/// What one region's walk returned. Only the agents and instances decide
/// whether the region is up; each sweep and the managed instances fail
/// alone.
pub(super) struct RegionWalk {
    pub(super) agents: Vec<AgentStatus>,
    pub(super) instances: Vec<InstanceStatus>,
    /// Per plugin name swept: its rows, or why the sweep failed.
    pub(super) sweeps: Vec<(String, Result<Vec<PluginStatus>, ApiError>)>,
    /// Rows of the single-instance discovery calls, and who was asked.
    pub(super) discovered: Vec<PluginStatus>,
    pub(super) asked: Vec<Arc<str>>,
    /// `None` when not walked this cycle.
    pub(super) managed: Option<Result<Vec<ManagedInstance>, ApiError>>,
}

/// The outcome of one region's walk.
pub(super) enum RegionOutcome {
    Ok(Box<RegionWalk>),
    /// Cloud Assistant is not offered in this region.
    Unsupported(ApiError),
    Failed(WalkFailure),
}

/// Why a region's walk failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum WalkFailure {
    /// A call the walk needs (agents or instances) failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The walk did not end within `--collect.timeout`.
    #[error("not finished within the deadline of {0:?}")]
    Deadline(Duration),
}

impl WalkFailure {
    /// The `code` of the log line: the API's, or `Deadline`.
    pub(super) fn code(&self) -> &str {
        match self {
            WalkFailure::Api(e) => e.code(),
            WalkFailure::Deadline(_) => "Deadline",
        }
    }
}

/// One region's walk in this cycle, as the plan set it out.
pub(super) struct RegionTask {
    pub(super) key: RegionKey,
    pub(super) client: Arc<Client>,
    pub(super) sweeps: SweepPlan,
    pub(super) targets: Targets,
    /// Walk the hybrid managed instances too.
    pub(super) managed: bool,
    pub(super) deadline: Duration,
    /// Names that discovery finds in this walk and no sweep covers yet are
    /// swept in this same walk, this many at most (what
    /// `--collect.max-plugin-names` leaves).
    pub(super) new_name_room: usize,
}

/// What a region task hands back: its outcome, seconds and API calls.
pub(super) struct RegionResult {
    pub(super) key: RegionKey,
    pub(super) outcome: RegionOutcome,
    pub(super) secs: f64,
    pub(super) calls: u64,
}
