//! DescribeCloudAssistantStatus: the agents, `MaxResults` 1..=50 and
//! NextToken, at most 100 ids; a quirky region answers with the oldest
//! API page's misspelt keys.

use serde_json::{Value, json};

use super::call::Call;
use crate::simulator::auth::{Answer, error};
use crate::simulator::paging::{make_token, next_offset, page_size, page_window, select};
use crate::simulator::quirks::agent_status_set;

pub(super) fn describe_cloud_assistant_status(c: &Call<'_>) -> Result<Answer, Answer> {
    let state = c.state;
    let size = page_size(state, c.map, "MaxResults", "InvalidParameter.MaxResults")?;
    page_size(state, c.map, "PageSize", "InvalidParam.PageSize")?;
    if c.ids.len() > 100 {
        return Err(error(
            state,
            403,
            "InstanceIds.ExceedLimit",
            "The number of instance IDs exceeds the upper limit.",
        ));
    }
    let rows = select(c.region, &c.ids, None);
    let (offset, start, end) = page_window(state, c.map, &c.scope, rows.len(), size, c.endless)?;
    let old = c.region.quirky;
    let items: Vec<Value> = (start..end)
        .map(|k| rows.get(k).agent_json(c.now, old))
        .collect();
    let mut body =
        json!({"RequestId": state.request_id(), "TotalCount": rows.len(), "PageSize": size});
    merge(&mut body, agent_status_set(items, old));
    if let Some(next) = next_offset(offset, size, end, rows.len(), c.endless, c.repeat) {
        body["NextToken"] = json!(make_token(state, &c.scope, next));
    }
    Ok((200, body))
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}
