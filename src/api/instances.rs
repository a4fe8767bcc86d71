//! DescribeInstances: names, zones, types and tags of a region's ECS
//! instances, for the info series. Walked seldom (names change rarely), 100
//! instances a page.

use std::sync::Arc;

use serde::Deserialize;

use super::fields::{FieldError, Raw, opt_shared, req_shared};
use super::page::{Meta, Names, Rows, unique_rows};
use super::paging::{dedup_by_id, walk_next_token_sized};
use super::tags::{RawTags, Tags, parse_tags};
use crate::client::Client;
use crate::error::ApiError;

pub const ACTION: &str = "DescribeInstances";
/// `MaxResults` per page: the documented maximum ("Valid values: 1 to 100").
pub const PAGE_SIZE: usize = 100;

/// One ECS instance as DescribeInstances describes it. Fields the API left
/// out (or gave empty) are `None`; the tags may be empty.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct InstanceInfo {
    pub instance_id: Arc<str>,
    pub name: Option<Arc<str>>,
    pub zone_id: Option<Arc<str>>,
    pub instance_type: Option<Arc<str>>,
    /// `linux` or `windows` as this API spells it.
    pub os_type: Option<Arc<str>>,
    pub tags: Tags,
}

/// The answer's rows: `Instances.Instance[]` (a bare array is accepted too).
struct Instances;

impl Names for Instances {
    const OUTER: &'static [&'static str] = &["Instances"];
    const INNER: &'static [&'static str] = &["Instance"];
}

impl Rows for Instances {
    type Item<'a> = Item<'a>;
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow, rename = "InstanceId")]
    instance_id: Option<Raw<'a>>,
    #[serde(borrow, rename = "InstanceName")]
    name: Option<Raw<'a>>,
    #[serde(borrow, rename = "ZoneId")]
    zone_id: Option<Raw<'a>>,
    #[serde(borrow, rename = "InstanceType")]
    instance_type: Option<Raw<'a>>,
    #[serde(borrow, rename = "OSType", alias = "OsType")]
    os_type: Option<Raw<'a>>,
    #[serde(borrow, rename = "Tags")]
    tags: RawTags<'a>,
}

fn parse_item(v: Item) -> Result<InstanceInfo, FieldError> {
    let instance_id = req_shared(&v.instance_id, "InstanceId")?;
    let ctx = |e: FieldError| e.within(format!("instance {instance_id}"));
    Ok(InstanceInfo {
        name: opt_shared(&v.name, "InstanceName").map_err(ctx)?,
        zone_id: opt_shared(&v.zone_id, "ZoneId").map_err(ctx)?,
        instance_type: opt_shared(&v.instance_type, "InstanceType").map_err(ctx)?,
        os_type: opt_shared(&v.os_type, "OSType").map_err(ctx)?,
        tags: parse_tags(v.tags).map_err(ctx)?,
        instance_id,
    })
}

/// The instances of one answer body, and its paging fields. A missing list
/// is an empty last page.
fn read_page(body: &[u8]) -> Result<(Vec<InstanceInfo>, Meta), FieldError> {
    unique_rows::<Instances, _>(body, parse_item, |i| &i.instance_id, "instance")
}

/// The instances of one answer body.
pub fn parse_page(body: &[u8]) -> Result<Vec<InstanceInfo>, FieldError> {
    read_page(body).map(|(rows, _)| rows)
}

/// Every instance of `region` with its name, zone, type and tags, each
/// once (sorted by instance id). Needs `ecs:DescribeInstances`: without it
/// the error answers [`ApiError::is_permission_denied`].
pub async fn walk_instance_info(
    client: &Client,
    region: &str,
) -> Result<Vec<InstanceInfo>, ApiError> {
    let all = walk_next_token_sized(client, ACTION, region, &[], PAGE_SIZE, read_page).await?;
    Ok(dedup_by_id(all, |i| &i.instance_id, ACTION, region))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse_page(v: &Value) -> Result<Vec<InstanceInfo>, String> {
        super::parse_page(&crate::api::body_of(v)).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_the_documented_answer() {
        let v = json!({"RequestId": "R", "TotalCount": 2, "NextToken": "caeba0bbb2be03f84eb48b699f0a4883",
            "Instances": {"Instance": [{
                "InstanceId": "i-1", "InstanceName": "web \"01\" 云", "ZoneId": "cn-hangzhou-g",
                "InstanceType": "ecs.g7.large", "OSType": "linux", "Status": "Running", "Memory": 8192,
                "Tags": {"Tag": [{"TagKey": "env", "TagValue": "prod"}, {"TagKey": "Cost Center", "TagValue": ""}]}
            }, {"InstanceId": "i-2"}]}});
        let p = parse_page(&v).expect("parses");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name.as_deref(), Some("web \"01\" 云"));
        assert_eq!(p[0].zone_id.as_deref(), Some("cn-hangzhou-g"));
        assert_eq!(p[0].instance_type.as_deref(), Some("ecs.g7.large"));
        assert_eq!(p[0].os_type.as_deref(), Some("linux"));
        assert_eq!(p[0].tags.get("env"), Some("prod"));
        assert_eq!(p[0].tags.get("Cost Center"), Some(""));
        assert_eq!(
            p[1],
            InstanceInfo {
                instance_id: "i-2".into(),
                ..InstanceInfo::default()
            },
            "missing optional fields are absent"
        );
    }

    #[test]
    fn quirks_parse_and_broken_items_say_which() {
        let v = json!({"Instances": [{"InstanceId": 17, "InstanceName": "", "OsType": "windows",
            "Tags": [{"TagKey": "n", "TagValue": 3}]}]});
        let p = parse_page(&v).expect("bare list, numbers as strings");
        assert_eq!(&*p[0].instance_id, "17");
        assert_eq!(p[0].name, None, "empty is absent");
        assert_eq!(p[0].os_type.as_deref(), Some("windows"));
        assert_eq!(p[0].tags.get("n"), Some("3"));
        assert_eq!(
            parse_page(&json!({"RequestId": "R", "TotalCount": 0})),
            Ok(vec![])
        );
        assert!(
            parse_page(&json!({"NextToken": "x"}))
                .unwrap_err()
                .contains("Instances is missing")
        );
        let e = parse_page(
            &json!({"Instances": {"Instance": [{"InstanceId": "i-9", "ZoneId": ["a"]}]}}),
        )
        .unwrap_err();
        assert!(e.contains("instance i-9: ZoneId"), "{e}");
        let e = parse_page(&json!({"Instances": {"Instance": [{"InstanceId": "i-9", "Tags": {"Tag": [{"TagValue": "v"}]}}]}})).unwrap_err();
        assert!(e.contains("instance i-9: tag 0: TagKey is missing"), "{e}");
        let e = parse_page(
            &json!({"Instances": {"Instance": [{"InstanceId": "i-1"}, {"InstanceId": "i-1"}]}}),
        )
        .unwrap_err();
        assert!(e.contains("i-1 is listed twice"), "{e}");
    }
}
