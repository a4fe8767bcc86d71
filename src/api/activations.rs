//! DescribeActivations: the activation codes that register managed
//! instances, how full they are and when they expire.

use std::sync::Arc;

use serde::Deserialize;

use super::fields::{FieldError, Raw, opt_bool, opt_shared, opt_time, opt_u64, req_shared};
use super::page::{Meta, Names, Rows, unique_rows};
use super::paging::{dedup_by_id, walk_next_token_or_numbered};
use super::tags::{RawTags, Tags, parse_tags};
use crate::client::Client;
use crate::error::ApiError;

pub const ACTION: &str = "DescribeActivations";
/// `MaxResults` (and, for the older API, `PageSize`): "Valid values: 1 to 50".
pub const PAGE_SIZE: usize = 50;

/// One activation code. Optional fields the API left out are `None`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Activation {
    pub activation_id: Arc<str>,
    /// The default name prefix of the instances it registers.
    pub instance_name: Option<Arc<str>>,
    /// InstanceCount: how many instances the code may register.
    pub limit: Option<u64>,
    pub registered: Option<u64>,
    pub deregistered: Option<u64>,
    pub disabled: Option<bool>,
    pub created: Option<i64>,
    pub ttl_hours: Option<u64>,
    pub tags: Tags,
}

impl Activation {
    /// When the code stops registering instances: creation + TTL hours.
    pub fn expires_at(&self) -> Option<i64> {
        let ttl = i64::try_from(self.ttl_hours?).ok()?.checked_mul(3600)?;
        self.created?.checked_add(ttl)
    }
}

/// The answer's rows: `ActivationList` is a plain array (the wrapped form
/// is accepted too).
struct Activations;

impl Names for Activations {
    const OUTER: &'static [&'static str] = &["ActivationList"];
    const INNER: &'static [&'static str] = &["Activation"];
}

impl Rows for Activations {
    type Item<'a> = Item<'a>;
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow, rename = "ActivationId")]
    activation_id: Option<Raw<'a>>,
    #[serde(borrow, rename = "InstanceName")]
    instance_name: Option<Raw<'a>>,
    #[serde(borrow, rename = "InstanceCount")]
    limit: Option<Raw<'a>>,
    #[serde(borrow, rename = "RegisteredCount")]
    registered: Option<Raw<'a>>,
    #[serde(borrow, rename = "DeregisteredCount")]
    deregistered: Option<Raw<'a>>,
    #[serde(borrow, rename = "Disabled")]
    disabled: Option<Raw<'a>>,
    #[serde(borrow, rename = "CreationTime")]
    created: Option<Raw<'a>>,
    #[serde(borrow, rename = "TimeToLiveInHours")]
    ttl_hours: Option<Raw<'a>>,
    #[serde(borrow, rename = "Tags")]
    tags: RawTags<'a>,
}

fn parse_item(v: Item) -> Result<Activation, FieldError> {
    let activation_id = req_shared(&v.activation_id, "ActivationId")?;
    let ctx = |e: FieldError| e.within(format!("activation {activation_id}"));
    Ok(Activation {
        instance_name: opt_shared(&v.instance_name, "InstanceName").map_err(ctx)?,
        limit: opt_u64(&v.limit, "InstanceCount").map_err(ctx)?,
        registered: opt_u64(&v.registered, "RegisteredCount").map_err(ctx)?,
        deregistered: opt_u64(&v.deregistered, "DeregisteredCount").map_err(ctx)?,
        disabled: opt_bool(&v.disabled, "Disabled").map_err(ctx)?,
        created: opt_time(&v.created, "CreationTime").map_err(ctx)?,
        ttl_hours: opt_u64(&v.ttl_hours, "TimeToLiveInHours").map_err(ctx)?,
        tags: parse_tags(v.tags).map_err(ctx)?,
        activation_id,
    })
}

/// The codes of one answer body, and its paging fields. A missing list is
/// an empty last page.
fn read_page(body: &[u8]) -> Result<(Vec<Activation>, Meta), FieldError> {
    unique_rows::<Activations, _>(body, parse_item, |a| &a.activation_id, "activation")
}

/// The codes of one answer body.
pub fn parse_page(body: &[u8]) -> Result<Vec<Activation>, FieldError> {
    read_page(body).map(|(rows, _)| rows)
}

/// Every activation code of `region`, each once (sorted by id). A region
/// without the action answers [`ApiError::is_api_not_supported`]; without
/// `ecs:DescribeActivations`, [`ApiError::is_permission_denied`].
pub async fn walk_activations(client: &Client, region: &str) -> Result<Vec<Activation>, ApiError> {
    let all = walk_next_token_or_numbered(client, ACTION, region, PAGE_SIZE, read_page).await?;
    Ok(dedup_by_id(all, |a| &a.activation_id, ACTION, region))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse_page(v: &Value) -> Result<Vec<Activation>, String> {
        super::parse_page(&crate::api::body_of(v)).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_the_documented_answer() {
        let v = json!({"PageSize": 10, "RequestId": "R", "PageNumber": 1, "TotalCount": 1, "NextToken": "AAAAAdDWBF2****",
        "ActivationList": [{
            "CreationTime": "2021-01-20T06:00:00Z", "DeregisteredCount": 1, "InstanceCount": 10, "Description": "This is description.",
            "RegisteredCount": 1, "InstanceName": "test-InstanceName", "Disabled": false, "IpAddressRange": "0.0.0.0/0",
            "TimeToLiveInHours": 4, "ActivationId": "4ECEEE12-56F1-4FBC-9AB1-890F1234****", "ResourceGroupId": "rg-123******",
            "Tags": [{"TagKey": "owner", "TagValue": "zhangsan"}]
        }]});
        let a = &parse_page(&v).expect("parses")[0];
        assert_eq!(&*a.activation_id, "4ECEEE12-56F1-4FBC-9AB1-890F1234****");
        assert_eq!(
            (a.limit, a.registered, a.deregistered),
            (Some(10), Some(1), Some(1))
        );
        assert_eq!(a.disabled, Some(false));
        assert_eq!(a.created, Some(1_611_122_400));
        assert_eq!(a.expires_at(), Some(1_611_122_400 + 4 * 3600));
        assert_eq!(a.instance_name.as_deref(), Some("test-InstanceName"));
        assert_eq!(a.tags.get("owner"), Some("zhangsan"));
    }

    #[test]
    fn quirks_parse_and_broken_items_say_which() {
        let v = json!({"ActivationList": {"Activation": [{"ActivationId": "A-1", "InstanceCount": "5",
            "Disabled": "True", "TimeToLiveInHours": "24"}]}});
        let a = &parse_page(&v).expect("wrapped, strings")[0];
        assert_eq!(
            (a.limit, a.disabled, a.ttl_hours),
            (Some(5), Some(true), Some(24))
        );
        assert_eq!(a.expires_at(), None, "no creation time, no expiry");
        let huge = Activation {
            created: Some(1_611_122_400),
            ttl_hours: Some(u64::MAX),
            ..Activation::default()
        };
        assert_eq!(
            huge.expires_at(),
            None,
            "overflow is no expiry, not a panic"
        );
        assert_eq!(parse_page(&json!({"RequestId": "R"})), Ok(vec![]));
        let e = parse_page(&json!({"ActivationList": [{"InstanceCount": 1}]})).unwrap_err();
        assert!(e.contains("ActivationId is missing"), "{e}");
        let e = parse_page(
            &json!({"ActivationList": [{"ActivationId": "A-2", "Disabled": "sometimes"}]}),
        )
        .unwrap_err();
        assert!(e.contains("activation A-2: Disabled"), "{e}");
        let e = parse_page(
            &json!({"ActivationList": [{"ActivationId": "A-3", "CreationTime": "yesterday"}]}),
        )
        .unwrap_err();
        assert!(e.contains("activation A-3: CreationTime"), "{e}");
    }
}
