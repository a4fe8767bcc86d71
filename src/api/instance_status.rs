//! DescribeInstanceStatus: the lifecycle state of every instance of a region.
//! Paged by number; once the first page gives TotalCount, the rest are
//! fetched concurrently, in as few lanes as finish within half of the
//! region's agent walk.

use std::sync::Arc;

use serde::Deserialize;

use super::PAGE_SIZE;
use super::fields::{FieldError, Raw, Repeated, req_shared};
use super::page::{Names, Page, Rows, check_unique};
use super::paging::dedup_by_id;
use crate::call_lanes::{in_lanes, lanes_for};
use crate::client::Client;
use crate::error::ApiError;

pub const ACTION: &str = "DescribeInstanceStatus";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceStatus {
    pub instance_id: Arc<str>,
    /// Pending, Running, Starting, Stopping, Stopped, or a state added later.
    pub status: Arc<str>,
}

/// The answer's rows.
struct Statuses;

impl Names for Statuses {
    const OUTER: &'static [&'static str] = &["InstanceStatuses"];
    const INNER: &'static [&'static str] = &["InstanceStatus"];
}

impl Rows for Statuses {
    type Item<'a> = Item<'a>;
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow, rename = "InstanceId")]
    instance_id: Option<Raw<'a>>,
    #[serde(borrow, rename = "Status")]
    status: Option<Raw<'a>>,
}

/// The instances of one page and the TotalCount it reports. A page without
/// `InstanceStatuses` is an empty one when its TotalCount is 0 or absent
/// (as the SDKs read it: no count, no rows); with rows counted, it is an
/// error, so none goes missing silently.
pub fn parse_page(body: &[u8]) -> Result<(Vec<InstanceStatus>, Option<u64>), FieldError> {
    let page = Page::<Statuses>::read(body)?;
    let (total, _) = page.meta()?.counts()?;
    let Some(set) = page.set else {
        return match total {
            None | Some(0) => Ok((Vec::new(), Some(0))),
            Some(n) => Err(FieldError::MissingSet {
                set: "InstanceStatuses",
                because: format!("TotalCount is {n}"),
            }),
        };
    };
    let mut states = Repeated::default();
    let items = set
        .items()?
        .into_iter()
        .map(|v| {
            let instance_id = req_shared(&v.instance_id, "InstanceId")?;
            let status = states
                .req(&v.status, "Status")
                .map_err(|e| e.within(format!("instance {instance_id}")))?;
            Ok(InstanceStatus {
                instance_id,
                status,
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    check_unique(items.iter().map(|i| &*i.instance_id), "instance")?;
    Ok((items, total))
}

async fn page(
    client: &Client,
    region: &str,
    number: usize,
) -> Result<(Vec<InstanceStatus>, Option<u64>), ApiError> {
    let params = [
        ("PageNumber".to_string(), number.to_string()),
        ("PageSize".to_string(), PAGE_SIZE.to_string()),
    ];
    let resp = client.call(ACTION, Some(region), &params).await?;
    parse_page(resp.body())
        .map_err(|e| ApiError::decode(ACTION, region, format!("page {number}: {e}")))
}

fn pages_for(total: u64) -> usize {
    (total as usize).div_ceil(PAGE_SIZE).max(1)
}

/// Every instance of `region`, each once (sorted by instance id).
pub async fn walk_instance_status(
    client: &Arc<Client>,
    region: &str,
) -> Result<Vec<InstanceStatus>, ApiError> {
    let (first, total) = page(client, region, 1).await?;
    let total = total.ok_or_else(|| ApiError::decode(ACTION, region, "TotalCount is missing"))?;
    let mut all = Vec::with_capacity(super::paging::reserve_for(Some(total), first.len()));
    all.extend(first);
    let mut fetched = 1;
    let mut wanted = pages_for(total);
    let max_pages = client.max_pages();
    if wanted > max_pages {
        return Err(ApiError::decode(
            ACTION,
            region,
            format!(
                "TotalCount {total} needs more than {max_pages} pages; walk stopped (page cap)"
            ),
        ));
    }
    // Instances created during the walk raise TotalCount on later pages:
    // fetch the extra pages too, until no page asks for more.
    while fetched < wanted {
        // The agents' NextToken walk of this region is about as many pages,
        // one after another: `lanes_for` runs these in half of its time.
        let results = in_lanes(
            fetched + 1..=wanted,
            lanes_for(wanted - fetched, wanted),
            |n| {
                let (client, region) = (Arc::clone(client), region.to_string());
                async move { page(&client, &region, n).await }
            },
            |e| ApiError::decode(ACTION, region, e),
        )
        .await?;
        fetched = wanted;
        for (items, t) in results {
            all.extend(items);
            if let Some(t) = t {
                wanted = wanted.max(pages_for(t).min(max_pages));
            }
        }
    }
    Ok(dedup_by_id(all, |i| &i.instance_id, ACTION, region))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse_page(v: &Value) -> Result<(Vec<InstanceStatus>, Option<u64>), String> {
        super::parse_page(&crate::api::body_of(v)).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_pages() {
        let v = json!({"TotalCount": "58", "PageNumber": 1, "InstanceStatuses": {"InstanceStatus": [
            {"Status": "Running", "InstanceId": "i-1"}, {"Status": "Hibernating", "InstanceId": "i-2"}]}});
        let (items, total) = parse_page(&v).expect("parses");
        assert_eq!(total, Some(58));
        assert_eq!(&*items[1].status, "Hibernating");
        assert!(parse_page(&json!({"TotalCount": 1, "InstanceStatuses": {"InstanceStatus": [{"InstanceId": "i-1"}]}})).unwrap_err().contains("i-1: Status is missing"));
        // No set: empty when nothing is counted, an error when rows are.
        assert_eq!(
            parse_page(&json!({"RequestId": "x"})),
            Ok((Vec::new(), Some(0)))
        );
        assert_eq!(
            parse_page(&json!({"TotalCount": 0})),
            Ok((Vec::new(), Some(0)))
        );
        assert!(
            parse_page(&json!({"TotalCount": 3}))
                .unwrap_err()
                .contains("InstanceStatuses is missing, yet TotalCount is 3")
        );
        assert_eq!(pages_for(0), 1);
        assert_eq!(pages_for(50), 1);
        assert_eq!(pages_for(51), 2);
    }
}
