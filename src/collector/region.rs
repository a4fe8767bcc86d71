//! One region's walk: agents, instances, a sweep per plugin name and the
//! discovery calls, all at once under the client's limits; and the list of
//! regions an account has.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::discovery::{discover, pick_discovery_targets};
use super::plan::{SweepPlan, Targets};
use crate::accounts::Account;
use crate::api::{self, PluginStatus};
use crate::client::Client;
use crate::error::ApiError;
use crate::snapshot::{RegionData, RegionKey};

/// The outcome of one region's walk.
pub(super) enum RegionOutcome {
    Ok {
        data: RegionData,
        discovery: Vec<PluginStatus>,
        asked: Vec<Arc<str>>,
    },
    Unsupported(ApiError),
    Failed(String, String),
}

/// One region's walk in this cycle, as the plan set it out.
pub(super) struct RegionTask {
    pub(super) key: RegionKey,
    pub(super) client: Arc<Client>,
    pub(super) sweeps: SweepPlan,
    pub(super) targets: Targets,
    pub(super) now: i64,
    pub(super) deadline: Duration,
}

/// What a region task hands back: its outcome, seconds and API calls.
pub(super) struct RegionResult {
    pub(super) key: RegionKey,
    pub(super) outcome: RegionOutcome,
    pub(super) secs: f64,
    pub(super) calls: u64,
}

impl RegionTask {
    /// Walks the region within its deadline; past it the region fails for
    /// this cycle (and keeps its last good series).
    pub(super) async fn run(self) -> RegionResult {
        let t0 = Instant::now();
        let RegionTask {
            key,
            client,
            sweeps,
            targets,
            now,
            deadline,
        } = self;
        let region = key.region.as_str();
        let calls0 = client.calls_in(region);
        let outcome = match tokio::time::timeout(
            deadline,
            collect_region(&client, region, sweeps, targets, now),
        )
        .await
        {
            Ok(o) => o,
            Err(_) => RegionOutcome::Failed(
                format!("not finished within the deadline of {deadline:?}"),
                "Deadline".into(),
            ),
        };
        let calls = client.calls_in(region) - calls0;
        RegionResult {
            key,
            outcome,
            secs: t0.elapsed().as_secs_f64(),
            calls,
        }
    }
}

/// The regions of an account this cycle: its configured list, else
/// DescribeRegions (the last known list when that fails).
pub(super) async fn list_regions(
    account: &Account,
    default: &[String],
    known: Option<&Vec<String>>,
) -> (Vec<String>, Option<Vec<String>>) {
    let configured = if account.regions.is_empty() {
        default
    } else {
        &account.regions
    };
    let client = &account.client;
    if !configured.is_empty() && (client.has_endpoint_template() || known.is_some()) {
        return (configured.to_vec(), None);
    }
    match api::describe_regions(client).await {
        Ok(regions) => {
            client.set_region_endpoints(
                regions
                    .iter()
                    .filter_map(|r| Some((r.id.clone(), r.endpoint.clone()?))),
            );
            let ids: Vec<String> = regions.into_iter().map(|r| r.id).collect();
            let walk = if configured.is_empty() {
                ids.clone()
            } else {
                configured.to_vec()
            };
            (walk, Some(ids))
        }
        Err(e) if configured.is_empty() => {
            let known = known.cloned().unwrap_or_default();
            tracing::warn!(account = %account.name, error = %e, code = e.code(), known = known.len(), "DescribeRegions failed; using the last known region list");
            (known, None)
        }
        Err(e) => {
            tracing::warn!(account = %account.name, error = %e, code = e.code(), "DescribeRegions failed; regions use their default endpoints");
            (configured.to_vec(), None)
        }
    }
}

/// Walks one region: agents, instances, a sweep per plugin name and the
/// discovery calls, all at once (the client's limits pace them). Sweeps
/// short enough share lanes, and the independent single calls run in a few
/// lanes, beside the NextToken walks: the same cycle length, without a burst
/// of every walk of every region at its start.
pub(super) async fn collect_region(
    client: &Arc<Client>,
    region: &str,
    sweeps: SweepPlan,
    targets: Targets,
    now: i64,
) -> RegionOutcome {
    let sweeps = async {
        // Every sweep runs; the first error (after all) fails the region.
        let results = crate::lanes::in_lanes(
            sweeps.names,
            sweeps.lanes,
            |name| {
                let (client, region) = (Arc::clone(client), region.to_string());
                async move {
                    Ok::<_, ApiError>(
                        api::walk_plugin_status_by_name(&client, &region, &name).await,
                    )
                }
            },
            |e| ApiError::decode(api::plugins::ACTION, region, e),
        )
        .await?;
        let mut rows = Vec::new();
        let mut first_err = None;
        for r in results {
            match r {
                Ok(r) => rows.extend(r),
                // A name no instance of this region has.
                Err(ApiError::Api { code, .. }) if code == "InvalidPluginName.NotFound" => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            None => Ok(rows),
            Some(e) => Err(e),
        }
    };
    let agents_and_discovery = async {
        match targets {
            Targets::Chosen { ids, walk_pages } => {
                let lanes = crate::lanes::lanes_for(ids.len(), walk_pages);
                let (agents, (discovered, asked)) = tokio::join!(
                    api::walk_cloud_assistant_status(client, region),
                    discover(client, region, ids, lanes)
                );
                (agents, discovered, asked)
            }
            Targets::AfterAgents(share) => {
                let agents = api::walk_cloud_assistant_status(client, region).await;
                let (discovered, asked) = match &agents {
                    // Nothing else of the region is left to overlap with.
                    Ok(a) => {
                        let ids =
                            pick_discovery_targets(a, &HashSet::new(), &HashMap::new(), share);
                        discover(client, region, ids, crate::lanes::MAX_LANES).await
                    }
                    Err(_) => (Vec::new(), Vec::new()),
                };
                (agents, discovered, asked)
            }
        }
    };
    let ((agents, discovered, asked), instances, sweeps) = tokio::join!(
        agents_and_discovery,
        api::walk_instance_status(client, region),
        sweeps
    );
    let fail = |e: ApiError| {
        if e.is_api_not_supported() {
            RegionOutcome::Unsupported(e)
        } else {
            RegionOutcome::Failed(e.to_string(), e.code().to_string())
        }
    };
    let agents = match agents {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let instances = match instances {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    let mut plugins = match sweeps {
        Ok(p) => p,
        // Plugins are not offered in this region: the rest still counts.
        Err(e) if e.is_api_not_supported() => Vec::new(),
        Err(e) => return RegionOutcome::Failed(e.to_string(), e.code().to_string()),
    };
    // Discovery rows fill in names not swept yet; sweep rows win.
    plugins.extend(discovered.iter().cloned());
    let live: HashSet<&str> = agents
        .iter()
        .map(|a| &*a.instance_id)
        .chain(instances.iter().map(|i| &*i.instance_id))
        .collect();
    plugins.retain(|p| live.contains(&*p.instance_id));
    plugins.sort_by(|a, b| (&a.instance_id, &a.name).cmp(&(&b.instance_id, &b.name)));
    plugins.dedup_by(|a, b| a.instance_id == b.instance_id && a.name == b.name);
    RegionOutcome::Ok {
        data: RegionData {
            agents,
            instances,
            plugins,
            collected_at: now,
        },
        discovery: discovered,
        asked,
    }
}
