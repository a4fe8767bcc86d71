//! ListPluginStatus: by plugin name over the whole region (or some ids), or
//! every plugin of one instance; `MaxResults` 1..=50 and NextToken, at most
//! 50 ids. An agent too old for the action, or silent, reports nothing.

use serde_json::{Value, json};

use super::call::Call;
use crate::simulator::auth::{Answer, error};
use crate::simulator::fleet::{SimInstance, agent_supports_plugins};
use crate::simulator::paging::{make_token, next_offset, page_size, page_window, select};

pub(super) fn list_plugin_status(c: &Call<'_>) -> Result<Answer, Answer> {
    let (state, ids, now) = (c.state, &c.ids, c.now);
    let size = page_size(state, c.map, "MaxResults", "InvalidParameter.MaxResults")?;
    if ids.len() > 50 {
        return Err(error(
            state,
            400,
            "InstanceIds.ExceedLimit",
            "The number of instance IDs exceeds the upper limit.",
        ));
    }
    let name = c.map.get("Name").copied().filter(|n| !n.is_empty());
    if name.is_none() && ids.len() != 1 {
        return Err(error(
            state,
            400,
            "PluginName.MissingValue",
            "The plugin name must be specified when the number of InstanceIds is not 1.",
        ));
    }
    // Rows: every instance that reports the plugin (by name), or the
    // one instance asked for (all its plugins). Only the page's rows
    // are turned into JSON.
    let rows = select(c.region, ids, name);
    if name.is_none() {
        for inst in rows.iter() {
            state.count_instance_query(&inst.id);
        }
    }
    let row_json = |inst: &SimInstance| {
        // An old or silent agent reports nothing about its plugins.
        let silent = name.is_none()
            && (!agent_supports_plugins(&inst.os_type, &inst.version) || !inst.agent_up(now));
        let plugins: Vec<Value> = inst
            .plugins
            .iter()
            .filter(|p| !silent && name.is_none_or(|n| n == p.name))
            .map(|p| inst.plugin_json(p, now))
            .collect();
        json!({"InstanceId": inst.id, "PluginStatusSet": {"PluginStatus": plugins}})
    };
    if !ids.is_empty() && rows.is_empty() && name.is_none() {
        return Err(error(
            state,
            404,
            "InvalidInstance.NotFound",
            "The specified instance does not exist.",
        ));
    }
    // The token is bound to the name and the ids it was made for.
    let scope = format!("{}|{}|{}", c.scope, name.unwrap_or(""), ids.join(","));
    let (offset, start, end) = page_window(state, c.map, &scope, rows.len(), size, c.endless)?;
    let total = rows.len();
    let items: Vec<Value> = (start..end).map(|k| row_json(rows.get(k))).collect();
    let mut body = json!({"RequestId": state.request_id(), "TotalCount": total, "PageSize": size,
                          "InstancePluginStatusSet": {"InstancePluginStatus": items}});
    if let Some(next) = next_offset(offset, size, end, total, c.endless, c.repeat) {
        body["NextToken"] = json!(make_token(state, &scope, next));
    }
    Ok((200, body))
}
