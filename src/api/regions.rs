//! DescribeRegions: the regions of the account and their endpoints.

use serde::Deserialize;

use super::fields::{FieldError, Raw, opt_str, req_str};
use super::page::{Names, Page, Rows};
use crate::client::Client;
use crate::error::ApiError;

pub const ACTION: &str = "DescribeRegions";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub id: String,
    /// Host (or URL) that serves the region, e.g. `ecs.cn-hangzhou.aliyuncs.com`.
    pub endpoint: Option<String>,
}

/// The answer's rows.
struct Regions;

impl Names for Regions {
    const OUTER: &'static [&'static str] = &["Regions"];
    const INNER: &'static [&'static str] = &["Region"];
}

impl Rows for Regions {
    type Item<'a> = Item<'a>;
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow, rename = "RegionId")]
    id: Option<Raw<'a>>,
    #[serde(borrow, rename = "RegionEndpoint")]
    endpoint: Option<Raw<'a>>,
}

/// The regions of one answer body.
pub fn parse(body: &[u8]) -> Result<Vec<Region>, FieldError> {
    Page::<Regions>::read(body)?
        .rows()?
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            Ok(Region {
                id: req_str(&r.id, "RegionId").map_err(|e| e.within(format!("region {i}")))?,
                endpoint: opt_str(&r.endpoint, "RegionEndpoint")
                    .map_err(|e| e.within(format!("region {i}")))?,
            })
        })
        .collect()
}

/// All regions, sorted by id.
pub async fn describe_regions(client: &Client) -> Result<Vec<Region>, ApiError> {
    let resp = client.call(ACTION, None, &[]).await?;
    let mut regions = parse(resp.body()).map_err(|e| ApiError::decode(ACTION, "-", e))?;
    regions.sort_by(|a, b| a.id.cmp(&b.id));
    regions.dedup_by(|a, b| a.id == b.id);
    Ok(regions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse(v: &Value) -> Result<Vec<Region>, String> {
        super::parse(&crate::api::body_of(v)).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_regions() {
        let v = json!({"RequestId": "x", "Regions": {"Region": [
            {"RegionId": "cn-hangzhou", "RegionEndpoint": "ecs.cn-hangzhou.aliyuncs.com", "LocalName": "华东1"},
            {"RegionId": "us-west-1"}
        ]}});
        let r = parse(&v).expect("parses");
        assert_eq!(
            r[0].endpoint.as_deref(),
            Some("ecs.cn-hangzhou.aliyuncs.com")
        );
        assert_eq!(
            r[1],
            Region {
                id: "us-west-1".into(),
                endpoint: None
            }
        );
        assert!(
            parse(&json!({"Regions": {"Region": [{"LocalName": "x"}]}}))
                .unwrap_err()
                .contains("RegionId is missing")
        );
    }
}
