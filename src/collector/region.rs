//! One region's walk: agents, instances, a sweep per plugin name, the
//! discovery calls and (when on) the hybrid managed instances, all at once
//! under the client's limits; and the list of regions an account has.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use super::discovery::{discover, pick_discovery_targets};
use super::task::{
    RegionOutcome, RegionResult, RegionTask, RegionWalk, SweepPlan, Targets, WalkFailure,
};
use crate::accounts::Account;
use crate::api::{self, PluginStatus};
use crate::client::Client;
use crate::error::ApiError;
use crate::validate;

impl RegionTask {
    /// Walks the region within its deadline; past it the region fails for
    /// this cycle (and keeps its last good series).
    pub(super) async fn run(self) -> RegionResult {
        let t0 = Instant::now();
        let region = self.key.region.as_str();
        let calls0 = self.client.calls_in(region);
        let deadline = self.deadline;
        let outcome = match tokio::time::timeout(deadline, self.walk()).await {
            Ok(o) => o,
            Err(_) => RegionOutcome::Failed(WalkFailure::Deadline(deadline)),
        };
        let calls = self.client.calls_in(region) - calls0;
        RegionResult {
            key: self.key,
            outcome,
            secs: t0.elapsed().as_secs_f64(),
            calls,
        }
    }

    /// Walks one region: agents, instances, a sweep per plugin name and the
    /// discovery calls, all at once (the client's limits pace them). Sweeps
    /// short enough share lanes, and the independent single calls run in a
    /// few lanes, beside the NextToken walks: the same cycle length, without
    /// a burst of every walk of every region at its start.
    async fn walk(&self) -> RegionOutcome {
        let (client, region) = (&self.client, self.key.region.as_str());
        let sweeps = sweep(client, region, &self.sweeps);
        let agents_and_discovery = async {
            match &self.targets {
                Targets::Chosen { ids, walk_pages } => {
                    let lanes = crate::call_lanes::lanes_for(ids.len(), *walk_pages);
                    let (agents, (discovered, asked)) = tokio::join!(
                        api::walk_cloud_assistant_status(client, region),
                        discover(client, region, ids.clone(), lanes)
                    );
                    (agents, discovered, asked)
                }
                Targets::AfterAgents(share) => {
                    let agents = api::walk_cloud_assistant_status(client, region).await;
                    let (discovered, asked) = match &agents {
                        // Nothing else of the region is left to overlap with.
                        Ok(a) => {
                            let ids =
                                pick_discovery_targets(a, &HashSet::new(), &HashMap::new(), *share);
                            discover(client, region, ids, crate::call_lanes::MAX_LANES).await
                        }
                        Err(_) => (Vec::new(), Vec::new()),
                    };
                    (agents, discovered, asked)
                }
            }
        };
        let managed = async {
            match self.managed {
                true => Some(api::walk_managed_instances(client, region).await),
                false => None,
            }
        };
        let ((agents, discovered, asked), instances, mut sweeps, managed) = tokio::join!(
            agents_and_discovery,
            api::walk_instance_status(client, region),
            sweeps,
            managed
        );
        // A name discovery just found is swept now, not a walk later: a new
        // plugin's states (and the first page of a new exporter) show at once.
        let mut new_names: Vec<String> = discovered
            .iter()
            .map(|p| p.name.to_string())
            .filter(|n| !self.sweeps.names.contains(n))
            .collect();
        new_names.sort();
        new_names.dedup();
        new_names.truncate(self.new_name_room);
        if !new_names.is_empty() {
            let lanes = new_names.len().min(crate::call_lanes::MAX_LANES);
            let plan = SweepPlan {
                names: new_names,
                lanes,
            };
            sweeps.extend(sweep(client, region, &plan).await);
        }
        let fail = |e: ApiError| {
            if e.is_api_not_supported() {
                RegionOutcome::Unsupported(e)
            } else {
                RegionOutcome::Failed(WalkFailure::Api(e))
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
        RegionOutcome::Ok(Box::new(RegionWalk {
            agents,
            instances,
            sweeps,
            discovered,
            asked,
            managed,
        }))
    }
}

/// Every sweep of the plan, each with its own result: a name no instance of
/// the region has is an empty sweep, not a failure.
async fn sweep(
    client: &Arc<Client>,
    region: &str,
    plan: &SweepPlan,
) -> Vec<(String, Result<Vec<PluginStatus>, ApiError>)> {
    let results = crate::call_lanes::in_lanes(
        plan.names.clone(),
        plan.lanes,
        |name| {
            let (client, region) = (Arc::clone(client), region.to_string());
            async move {
                let rows = match api::walk_plugin_status_by_name(&client, &region, &name).await {
                    Err(ApiError::Api { code, .. }) if code == "InvalidPluginName.NotFound" => {
                        Ok(Vec::new())
                    }
                    other => other,
                };
                Ok((name, rows))
            }
        },
        |why| ApiError::decode(api::plugins::ACTION, region, why),
    )
    .await;
    match results {
        Ok(r) => r,
        // A lane's task died: every sweep of the plan counts as failed.
        Err(e) => plan
            .names
            .iter()
            .map(|n| (n.clone(), Err(e.clone())))
            .collect(),
    }
}

/// The regions of an account now: its configured list, else what
/// DescribeRegions answers (`listed`), checked as the flags are: a region
/// id or endpoint that would not pass as a flag is left out with a warning.
/// `None` for `listed` when the account has its regions configured (or the
/// call failed).
pub(super) struct RegionList {
    pub(super) configured: Vec<String>,
    pub(super) listed: Option<Vec<String>>,
}

pub(super) async fn list_regions(
    account: &Account,
    default: &[String],
    endpoints_known: bool,
) -> RegionList {
    let configured = if account.regions.is_empty() {
        default
    } else {
        &account.regions
    };
    let client = &account.client;
    // Configured regions need DescribeRegions only once, for their endpoints.
    if !configured.is_empty() && (client.has_endpoint_template() || endpoints_known) {
        return RegionList {
            configured: configured.to_vec(),
            listed: None,
        };
    }
    match api::describe_regions(client).await {
        Ok(regions) => {
            let plain_http = client.endpoint_for(None).starts_with("http://");
            let mut ids = Vec::new();
            let mut endpoints = Vec::new();
            for r in regions {
                match checked_region(&r, plain_http) {
                    Ok(endpoint) => {
                        endpoints.extend(endpoint.map(|e| (r.id.clone(), e)));
                        ids.push(r.id);
                    }
                    Err(why) => {
                        tracing::warn!(account = %account.name, region = %validate::shorten(&r.id, 80), reason = %why, "DescribeRegions named a region that does not pass the checks; leaving it out")
                    }
                }
            }
            client.set_region_endpoints(endpoints);
            RegionList {
                configured: configured.to_vec(),
                listed: Some(ids),
            }
        }
        Err(e) => {
            tracing::warn!(account = %account.name, error = %e, code = e.code(), "DescribeRegions failed; using the last known region list");
            RegionList {
                configured: configured.to_vec(),
                listed: None,
            }
        }
    }
}

/// Why a region DescribeRegions named is left out.
#[derive(Debug, PartialEq, thiserror::Error)]
enum RegionRefused {
    #[error(transparent)]
    Invalid(#[from] validate::Invalid),
    #[error("endpoint {0:?} is plain http while the API is reached over https")]
    PlainHttp(String),
    #[error("endpoint {0:?} has a path")]
    Path(String),
}

/// A region from DescribeRegions passes the checks of a flag: its id is a
/// region id, and its endpoint a host (or an https URL; plain http only
/// when the exporter's own endpoint is plain http, as a proxy or the
/// simulator is).
fn checked_region(r: &api::Region, plain_http: bool) -> Result<Option<String>, RegionRefused> {
    validate::region_id(&r.id)?;
    let Some(e) = &r.endpoint else {
        return Ok(None);
    };
    let url = if e.starts_with("https://") || e.starts_with("http://") {
        e.clone()
    } else {
        format!("https://{e}")
    };
    if url.starts_with("http://") && !plain_http {
        return Err(RegionRefused::PlainHttp(validate::shorten(e, 80)));
    }
    validate::endpoint_url(&url)?;
    if url
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .contains('/')
    {
        return Err(RegionRefused::Path(validate::shorten(e, 80)));
    }
    Ok(Some(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_from_the_api_pass_the_flag_checks() {
        let r = |id: &str, e: Option<&str>| api::Region {
            id: id.into(),
            endpoint: e.map(String::from),
        };
        assert_eq!(
            checked_region(
                &r("cn-hangzhou", Some("ecs.cn-hangzhou.aliyuncs.com")),
                false
            ),
            Ok(Some("https://ecs.cn-hangzhou.aliyuncs.com".into()))
        );
        assert_eq!(checked_region(&r("cn-a", None), false), Ok(None));
        for bad in ["x.evil/#", "a b", &"a".repeat(300)] {
            assert!(checked_region(&r(bad, None), false).is_err(), "{bad}");
        }
        assert!(checked_region(&r("cn-a", Some("http://evil:80")), false).is_err());
        assert!(checked_region(&r("cn-a", Some("http://127.0.0.1:80")), true).is_ok());
        assert!(checked_region(&r("cn-a", Some("evil.com/#x")), false).is_err());
        assert!(checked_region(&r("cn-a", Some("u@evil.com")), false).is_err());
    }
}
