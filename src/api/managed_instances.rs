//! DescribeManagedInstances: servers outside ECS (on premises, other
//! clouds) that run the Cloud Assistant agent, registered with an activation
//! code and given ids `mi-*`. Only some regions serve the action.

use std::sync::Arc;

use serde::Deserialize;

use super::fields::{FieldError, Raw, opt_bool, opt_shared, opt_time, opt_u64, req_shared};
use super::page::{Meta, Names, Rows, unique_rows};
use super::paging::{dedup_by_id, walk_next_token_or_numbered};
use super::tags::{RawTags, Tags, parse_tags};
use crate::client::Client;
use crate::error::ApiError;

pub const ACTION: &str = "DescribeManagedInstances";
/// `MaxResults` (and, for the older API, `PageSize`): "Valid values: 1 to 50".
pub const PAGE_SIZE: usize = 50;

/// One managed instance. Optional fields the API left out are `None`
/// (absent series), never zero.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ManagedInstance {
    pub instance_id: Arc<str>,
    /// Connected: the agent is reachable and Cloud Assistant can manage it.
    pub connected: bool,
    pub name: Option<Arc<str>>,
    pub hostname: Option<Arc<str>>,
    pub agent_version: Option<Arc<str>>,
    /// As this API spells it, e.g. `linux`, `windows`, `FreeBSD`.
    pub os_type: Option<Arc<str>>,
    pub os_version: Option<Arc<str>>,
    pub invocations: Option<u64>,
    pub last_invoked: Option<i64>,
    pub registered: Option<i64>,
    pub activation_id: Option<Arc<str>>,
    pub tags: Tags,
}

/// The answer's rows: `Instances` is a plain array (the wrapped form is
/// accepted too).
struct Managed;

impl Names for Managed {
    const OUTER: &'static [&'static str] = &["Instances"];
    const INNER: &'static [&'static str] = &["Instance"];
}

impl Rows for Managed {
    type Item<'a> = Item<'a>;
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow, rename = "InstanceId")]
    instance_id: Option<Raw<'a>>,
    #[serde(borrow, rename = "Connected")]
    connected: Option<Raw<'a>>,
    #[serde(borrow, rename = "InstanceName")]
    name: Option<Raw<'a>>,
    #[serde(borrow, rename = "Hostname", alias = "HostName")]
    hostname: Option<Raw<'a>>,
    #[serde(borrow, rename = "AgentVersion")]
    agent_version: Option<Raw<'a>>,
    #[serde(borrow, rename = "OsType", alias = "OSType")]
    os_type: Option<Raw<'a>>,
    #[serde(borrow, rename = "OsVersion")]
    os_version: Option<Raw<'a>>,
    #[serde(borrow, rename = "InvocationCount")]
    invocations: Option<Raw<'a>>,
    #[serde(borrow, rename = "LastInvokedTime")]
    last_invoked: Option<Raw<'a>>,
    #[serde(borrow, rename = "RegistrationTime")]
    registered: Option<Raw<'a>>,
    #[serde(borrow, rename = "ActivationId")]
    activation_id: Option<Raw<'a>>,
    #[serde(borrow, rename = "Tags")]
    tags: RawTags<'a>,
}

fn parse_item(v: Item) -> Result<ManagedInstance, FieldError> {
    let instance_id = req_shared(&v.instance_id, "InstanceId")?;
    let ctx = |e: FieldError| e.within(format!("managed instance {instance_id}"));
    let connected = opt_bool(&v.connected, "Connected")
        .map_err(ctx)?
        .ok_or_else(|| {
            FieldError::Missing("Connected").within(format!("managed instance {instance_id}"))
        })?;
    Ok(ManagedInstance {
        connected,
        name: opt_shared(&v.name, "InstanceName").map_err(ctx)?,
        hostname: opt_shared(&v.hostname, "Hostname").map_err(ctx)?,
        agent_version: opt_shared(&v.agent_version, "AgentVersion").map_err(ctx)?,
        os_type: opt_shared(&v.os_type, "OsType").map_err(ctx)?,
        os_version: opt_shared(&v.os_version, "OsVersion").map_err(ctx)?,
        invocations: opt_u64(&v.invocations, "InvocationCount").map_err(ctx)?,
        last_invoked: opt_time(&v.last_invoked, "LastInvokedTime").map_err(ctx)?,
        registered: opt_time(&v.registered, "RegistrationTime").map_err(ctx)?,
        activation_id: opt_shared(&v.activation_id, "ActivationId").map_err(ctx)?,
        tags: parse_tags(v.tags).map_err(ctx)?,
        instance_id,
    })
}

/// The managed instances of one answer body, and its paging fields. A
/// missing list is an empty last page.
fn read_page(body: &[u8]) -> Result<(Vec<ManagedInstance>, Meta), FieldError> {
    unique_rows::<Managed, _>(body, parse_item, |i| &i.instance_id, "managed instance")
}

/// The managed instances of one answer body.
pub fn parse_page(body: &[u8]) -> Result<Vec<ManagedInstance>, FieldError> {
    read_page(body).map(|(rows, _)| rows)
}

/// Every managed instance of `region`, each once (sorted by id). A region
/// without the action answers [`ApiError::is_api_not_supported`]; without
/// `ecs:DescribeManagedInstances`, [`ApiError::is_permission_denied`].
pub async fn walk_managed_instances(
    client: &Client,
    region: &str,
) -> Result<Vec<ManagedInstance>, ApiError> {
    let all = walk_next_token_or_numbered(client, ACTION, region, PAGE_SIZE, read_page).await?;
    Ok(dedup_by_id(all, |i| &i.instance_id, ACTION, region))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse_page(v: &Value) -> Result<Vec<ManagedInstance>, String> {
        super::parse_page(&crate::api::body_of(v)).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_the_documented_answer() {
        let v = json!({"PageSize": 10, "RequestId": "R", "PageNumber": 1, "TotalCount": 1, "NextToken": "AAAAAdDWBF2",
        "Instances": [{
            "LastInvokedTime": "2021-01-20T09:00:40Z", "Connected": true, "InternetIp": "121.40.**.**",
            "Hostname": "test-Hostname", "InstanceId": "mi-hz018jrc1o0****", "ActivationId": "4ECEEE12-56F1-4FBC-9AB1-890F1234****",
            "IntranetIp": "10.0.**.**", "AgentVersion": "2.1.0.37", "RegistrationTime": "2021-01-20T08:57:56Z",
            "InstanceName": "my-webapp-server", "OsType": "Linux", "OsVersion": "Linux_#38~18.04.1-Ubuntu SMP Wed Jan 6 18:26:30 UTC 2021_x86_64",
            "InvocationCount": 100, "MachineId": "e03231b37ab14e53b5795ad625fc****", "ResourceGroupId": "rg-123******",
            "Tags": [{"TagKey": "owner", "TagValue": "zhangsan"}]
        }]});
        let m = &parse_page(&v).expect("parses")[0];
        assert_eq!(&*m.instance_id, "mi-hz018jrc1o0****");
        assert!(m.connected);
        assert_eq!(m.hostname.as_deref(), Some("test-Hostname"));
        assert_eq!(m.agent_version.as_deref(), Some("2.1.0.37"));
        assert_eq!(m.invocations, Some(100));
        assert_eq!(m.last_invoked, Some(1_611_133_240));
        assert_eq!(m.registered, Some(1_611_133_076));
        assert_eq!(m.tags.get("owner"), Some("zhangsan"));
        assert_eq!(
            m.activation_id.as_deref(),
            Some("4ECEEE12-56F1-4FBC-9AB1-890F1234****")
        );
    }

    #[test]
    fn quirks_parse_and_broken_items_say_which() {
        let v = json!({"Instances": {"Instance": [{"InstanceId": "mi-1", "Connected": "False",
            "InvocationCount": "12", "RegistrationTime": "2021-01-20T08:57Z"}]}});
        let m = &parse_page(&v).expect("wrapped, strings, minutes")[0];
        assert_eq!(
            (
                m.connected,
                m.invocations,
                m.registered,
                m.last_invoked,
                m.name.clone()
            ),
            (false, Some(12), Some(1_611_133_020), None, None)
        );
        assert_eq!(
            parse_page(&json!({"TotalCount": 0, "PageNumber": 1})),
            Ok(vec![])
        );
        let e = parse_page(&json!({"Instances": [{"InstanceId": "mi-2"}]})).unwrap_err();
        assert!(e.contains("mi-2: Connected is missing"), "{e}");
        let e = parse_page(&json!({"Instances": [{"InstanceId": "mi-3", "Connected": true, "InvocationCount": -1}]})).unwrap_err();
        assert!(e.contains("mi-3: InvocationCount"), "{e}");
        let e = parse_page(
            &json!({"Instances": [{"InstanceId": "mi-4", "Connected": true, "Tags": "env=prod"}]}),
        )
        .unwrap_err();
        assert!(e.contains("mi-4: Tags"), "{e}");
    }
}
