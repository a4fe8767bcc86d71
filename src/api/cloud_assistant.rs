//! DescribeCloudAssistantStatus: the agent on every instance of a region.

use std::sync::Arc;

use serde::Deserialize;

use super::fields::{FieldError, Raw, Repeated, opt_bool, opt_time, opt_u64, req_shared};
use super::page::{Meta, Names, Rows, unique_rows};
use super::paging::{dedup_by_id, walk_next_token};
use crate::client::Client;
use crate::error::ApiError;

pub const ACTION: &str = "DescribeCloudAssistantStatus";

/// One agent. Optional fields the API left out are `None` (absent series),
/// never zero.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AgentStatus {
    pub instance_id: Arc<str>,
    /// CloudAssistantStatus: a heartbeat within the last 2 minutes.
    pub up: bool,
    pub version: Option<Arc<str>>,
    pub os_type: Option<Arc<str>>,
    pub session_manager: Option<bool>,
    pub active_tasks: Option<u64>,
    pub invocations: Option<u64>,
    pub last_invoked: Option<i64>,
    pub last_heartbeat: Option<i64>,
}

/// The answer's rows. The oldest reference page misspells "Assistant" and
/// nests the set the other way round; both spellings and both nestings are
/// accepted.
struct Agents;

impl Names for Agents {
    const OUTER: &'static [&'static str] = &[
        "InstanceCloudAssistantStatusSet",
        "InstanceCloudAssitantStatusSet",
        "InstanceCloudAssitantStatus",
    ];
    const INNER: &'static [&'static str] = &[
        "InstanceCloudAssistantStatus",
        "InstanceCloudAssitantStatus",
        "InstanceCloudAssitantStatusSet",
    ];
}

impl Rows for Agents {
    type Item<'a> = Item<'a>;
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow, rename = "InstanceId")]
    instance_id: Option<Raw<'a>>,
    #[serde(borrow, rename = "CloudAssistantStatus", alias = "CloudAssitantStatus")]
    up: Option<Raw<'a>>,
    #[serde(
        borrow,
        rename = "CloudAssistantVersion",
        alias = "CloudAssitantVersion"
    )]
    version: Option<Raw<'a>>,
    #[serde(borrow, rename = "OSType")]
    os_type: Option<Raw<'a>>,
    #[serde(borrow, rename = "SupportSessionManager")]
    session_manager: Option<Raw<'a>>,
    #[serde(borrow, rename = "ActiveTaskCount")]
    active_tasks: Option<Raw<'a>>,
    #[serde(borrow, rename = "InvocationCount")]
    invocations: Option<Raw<'a>>,
    #[serde(borrow, rename = "LastInvokedTime")]
    last_invoked: Option<Raw<'a>>,
    #[serde(borrow, rename = "LastHeartbeatTime")]
    last_heartbeat: Option<Raw<'a>>,
}

/// The values a page's agents mostly share.
#[derive(Default)]
struct Shared {
    version: Repeated,
    os_type: Repeated,
}

fn parse_item(v: Item, shared: &mut Shared) -> Result<AgentStatus, FieldError> {
    let instance_id = req_shared(&v.instance_id, "InstanceId")?;
    let ctx = |e: FieldError| e.within(format!("instance {instance_id}"));
    let up = opt_bool(&v.up, "CloudAssistantStatus")
        .map_err(ctx)?
        .ok_or_else(|| {
            FieldError::Missing("CloudAssistantStatus").within(format!("instance {instance_id}"))
        })?;
    Ok(AgentStatus {
        up,
        version: shared
            .version
            .opt(&v.version, "CloudAssistantVersion")
            .map_err(ctx)?,
        os_type: shared.os_type.opt(&v.os_type, "OSType").map_err(ctx)?,
        session_manager: opt_bool(&v.session_manager, "SupportSessionManager").map_err(ctx)?,
        active_tasks: opt_u64(&v.active_tasks, "ActiveTaskCount").map_err(ctx)?,
        invocations: opt_u64(&v.invocations, "InvocationCount").map_err(ctx)?,
        last_invoked: opt_time(&v.last_invoked, "LastInvokedTime").map_err(ctx)?,
        last_heartbeat: opt_time(&v.last_heartbeat, "LastHeartbeatTime").map_err(ctx)?,
        instance_id,
    })
}

/// The agents of one answer body, and its paging fields.
fn read_page(body: &[u8]) -> Result<(Vec<AgentStatus>, Meta), FieldError> {
    let mut shared = Shared::default();
    unique_rows::<Agents, _>(
        body,
        |v| parse_item(v, &mut shared),
        |a| &a.instance_id,
        "instance",
    )
}

/// The agents of one answer body.
pub fn parse_page(body: &[u8]) -> Result<Vec<AgentStatus>, FieldError> {
    read_page(body).map(|(rows, _)| rows)
}

/// Every agent of `region`, each instance once (sorted by instance id).
pub async fn walk_cloud_assistant_status(
    client: &Client,
    region: &str,
) -> Result<Vec<AgentStatus>, ApiError> {
    let all = walk_next_token(client, ACTION, region, &[], read_page).await?;
    Ok(dedup_by_id(all, |a| &a.instance_id, ACTION, region))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse_page(v: &Value) -> Result<Vec<AgentStatus>, String> {
        super::parse_page(&crate::api::body_of(v)).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_the_current_format() {
        let v = json!({"NextToken": "AAAA", "InstanceCloudAssistantStatusSet": {"InstanceCloudAssistantStatus": [{
            "CloudAssistantStatus": "true", "LastInvokedTime": "2021-03-15T08:00:00Z", "CloudAssistantVersion": "2.2.0.106",
            "ActiveTaskCount": 0, "InvocationCount": 2, "InstanceId": "i-1", "LastHeartbeatTime": "2021-03-15T09:00:00Z",
            "OSType": "Linux", "SupportSessionManager": true, "SomethingNew": {"x": 1}
        }]}});
        let a = &parse_page(&v).expect("parses")[0];
        assert!(a.up);
        assert_eq!(a.version.as_deref(), Some("2.2.0.106"));
        assert_eq!((a.active_tasks, a.invocations), (Some(0), Some(2)));
        assert_eq!(a.last_heartbeat, Some(1_615_798_800));
        assert_eq!(a.session_manager, Some(true));
    }

    #[test]
    fn parses_the_oldest_format() {
        let v = json!({"InstanceCloudAssitantStatus": {"InstanceCloudAssitantStatusSet": [
            {"InstanceId": "i-1", "CloudAssitantStatus": "True"},
            {"InstanceId": "i-2", "CloudAssitantStatus": "False"}
        ]}});
        let a = parse_page(&v).expect("parses");
        assert_eq!(a.len(), 2);
        assert!(a[0].up && !a[1].up);
        assert_eq!(a[1].version, None);
        assert_eq!(a[1].last_heartbeat, None);
    }

    #[test]
    fn parses_misspelt_keys_in_new_nesting_and_strings_for_numbers() {
        let v = json!({"InstanceCloudAssitantStatusSet": {"InstanceCloudAssitantStatus": [
            {"InstanceId": "i-1", "CloudAssitantStatus": "False", "ActiveTaskCount": "3", "InvocationCount": "17", "LastHeartbeatTime": "2021-01-20T09:00Z"}
        ]}});
        let a = &parse_page(&v).expect("parses")[0];
        assert_eq!(
            (a.up, a.active_tasks, a.invocations, a.last_heartbeat),
            (false, Some(3), Some(17), Some(1_611_133_200))
        );
    }

    #[test]
    fn bad_items_say_what_is_wrong() {
        let v = json!({"InstanceCloudAssistantStatusSet": {"InstanceCloudAssistantStatus": [{"InstanceId": "i-9", "CloudAssistantStatus": "maybe"}]}});
        let e = parse_page(&v).unwrap_err();
        assert!(
            e.contains("i-9") && e.contains("CloudAssistantStatus"),
            "{e}"
        );
        let v = json!({"InstanceCloudAssistantStatusSet": {"InstanceCloudAssistantStatus": [{"CloudAssistantStatus": true}]}});
        assert!(
            parse_page(&v)
                .unwrap_err()
                .contains("InstanceId is missing")
        );
        let v = json!({"InstanceCloudAssistantStatusSet": {"InstanceCloudAssistantStatus": [{"InstanceId": "i-1", "CloudAssistantStatus": true, "ActiveTaskCount": "many"}]}});
        assert!(parse_page(&v).unwrap_err().contains("ActiveTaskCount"));
        // No set and no NextToken: an empty page, as the SDKs read it; with
        // a NextToken, rows would be lost, so an error.
        assert_eq!(parse_page(&json!({"RequestId": "x"})), Ok(Vec::new()));
        assert!(
            parse_page(&json!({"RequestId": "x", "NextToken": "AA=="}))
                .unwrap_err()
                .contains("missing")
        );
    }

    #[test]
    fn an_instance_twice_in_one_page_is_an_error() {
        let v = json!({"InstanceCloudAssistantStatusSet": {"InstanceCloudAssistantStatus": [
            {"InstanceId": "i-1", "CloudAssistantStatus": true}, {"InstanceId": "i-1", "CloudAssistantStatus": false}]}});
        assert!(parse_page(&v).unwrap_err().contains("i-1 is listed twice"));
    }
}
