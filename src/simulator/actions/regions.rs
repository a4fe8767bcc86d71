//! DescribeRegions: the fleet's regions at the simulator's own address,
//! or the list a test injected (an empty endpoint there is ours too).

use serde_json::{Value, json};

use crate::simulator::auth::Answer;
use crate::simulator::state::SimState;

pub(super) fn describe_regions(state: &SimState) -> Answer {
    let listed = state.faults.read().ok().and_then(|f| f.region_list.clone());
    let regions: Vec<Value> = match listed {
        Some(list) => list
            .into_iter()
            .map(|(id, endpoint)| {
                let endpoint = if endpoint.is_empty() {
                    state.base_url()
                } else {
                    endpoint
                };
                json!({"RegionId": id, "RegionEndpoint": endpoint, "LocalName": id})
            })
            .collect(),
        None => {
            let fleet = state.fleet.read().unwrap_or_else(|e| e.into_inner());
            fleet
                .regions
                .keys()
                .map(|id| json!({"RegionId": id, "RegionEndpoint": state.base_url(), "LocalName": id}))
                .collect()
        }
    };
    (
        200,
        json!({"RequestId": state.request_id(), "Regions": {"Region": regions}}),
    )
}
