//! NextToken paging shared by DescribeCloudAssistantStatus and ListPluginStatus.

use serde_json::Value;

use super::PAGE_SIZE;
use super::fields::opt_str;
use crate::client::Client;
use crate::error::ApiError;

/// Calls `action` page after page (`MaxResults=50`, then `NextToken`) until no
/// token comes back, feeding each answer to `parse`. A token that repeats or
/// a walk longer than the client's page cap is an error, not an endless loop.
pub async fn walk_next_token<T>(
    client: &Client,
    action: &str,
    region: &str,
    params: &[(String, String)],
    mut parse: impl FnMut(&Value) -> Result<Vec<T>, String>,
) -> Result<Vec<T>, ApiError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    let max_pages = client.max_pages();
    for _ in 0..max_pages {
        let mut p = params.to_vec();
        p.push(("MaxResults".into(), PAGE_SIZE.to_string()));
        if let Some(t) = &token {
            p.push(("NextToken".into(), t.clone()));
        }
        let resp = client.call(action, Some(region), &p).await?;
        out.extend(parse(&resp).map_err(|e| ApiError::decode(action, region, e))?);
        let next =
            opt_str(&resp, &["NextToken"]).map_err(|e| ApiError::decode(action, region, e))?;
        match next {
            None => return Ok(out),
            Some(n) if token.as_deref() == Some(n.as_str()) => {
                return Err(ApiError::decode(
                    action,
                    region,
                    "NextToken did not change from one page to the next",
                ));
            }
            Some(n) => token = Some(n),
        }
    }
    Err(ApiError::decode(
        action,
        region,
        format!("still a NextToken after {max_pages} pages; walk stopped (page cap)"),
    ))
}
