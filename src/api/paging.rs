//! Paging shared by the walkers: NextToken walks, numbered walks for the
//! actions whose older API knows no tokens, and lanes for independent calls.

use serde_json::Value;

use super::PAGE_SIZE;
use super::fields::{opt_str, opt_u64};
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
    parse: impl FnMut(&Value) -> Result<Vec<T>, String>,
) -> Result<Vec<T>, ApiError> {
    walk_next_token_sized(client, action, region, params, PAGE_SIZE, parse).await
}

/// [`walk_next_token`] with `MaxResults=page_size` (DescribeInstances
/// takes 100 a page).
pub async fn walk_next_token_sized<T>(
    client: &Client,
    action: &str,
    region: &str,
    params: &[(String, String)],
    page_size: usize,
    parse: impl FnMut(&Value) -> Result<Vec<T>, String>,
) -> Result<Vec<T>, ApiError> {
    token_pages(client, action, region, params, page_size, parse, None).await
}

/// The NextToken loop; `first` is the answer to the first page when the
/// caller already has it.
async fn token_pages<T>(
    client: &Client,
    action: &str,
    region: &str,
    params: &[(String, String)],
    page_size: usize,
    mut parse: impl FnMut(&Value) -> Result<Vec<T>, String>,
    mut first: Option<Value>,
) -> Result<Vec<T>, ApiError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    let max_pages = client.max_pages();
    for _ in 0..max_pages {
        let resp = match first.take() {
            Some(v) => v,
            None => {
                let mut p = params.to_vec();
                p.push(("MaxResults".into(), page_size.to_string()));
                if let Some(t) = &token {
                    p.push(("NextToken".into(), t.clone()));
                }
                client.call(action, Some(region), &p).await?
            }
        };
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

/// An answer to `MaxResults` without a NextToken that refuses the paging
/// parameters themselves: an API older than token paging.
fn refuses_tokens(e: &ApiError) -> bool {
    matches!(e, ApiError::Api { code, .. } if code.contains("MaxResults") || code.contains("NextToken"))
}

/// NextToken paging (`MaxResults=page_size`) for actions that also page by
/// number, falling back to `PageNumber`/`PageSize` only where the API does
/// not take tokens: it refuses `MaxResults` on the first call, or answers
/// the first call without a NextToken while its TotalCount says rows are
/// missing (it ignored `MaxResults` and cut a numbered page). Stateless: a
/// region with the older API pays one extra call per walk.
pub async fn walk_next_token_or_numbered<T>(
    client: &Client,
    action: &str,
    region: &str,
    page_size: usize,
    mut parse: impl FnMut(&Value) -> Result<Vec<T>, String>,
) -> Result<Vec<T>, ApiError> {
    let first = [("MaxResults".to_string(), page_size.to_string())];
    let resp = match client.call(action, Some(region), &first).await {
        Ok(v) => v,
        Err(e) if refuses_tokens(&e) => {
            tracing::debug!(action, region, error = %e, "MaxResults refused; paging by number");
            return walk_numbered(client, action, region, page_size, parse).await;
        }
        Err(e) => return Err(e),
    };
    let decode = |e: String| ApiError::decode(action, region, e);
    let has_token = opt_str(&resp, &["NextToken"]).map_err(decode)?.is_some();
    if !has_token {
        let rows = parse(&resp).map_err(decode)?;
        let total = opt_u64(&resp, &["TotalCount"]).map_err(decode)?;
        if total.is_some_and(|t| t > rows.len() as u64) {
            tracing::debug!(
                action,
                region,
                "no NextToken but more rows; paging by number"
            );
            return walk_numbered(client, action, region, page_size, parse).await;
        }
        return Ok(rows);
    }
    token_pages(client, action, region, &[], page_size, parse, Some(resp)).await
}

/// `PageNumber` 1, 2, .. with `PageSize=page_size`, one after another,
/// until an empty page, until TotalCount rows came, or (without TotalCount)
/// until a page shorter than the page size the answer says it used.
pub async fn walk_numbered<T>(
    client: &Client,
    action: &str,
    region: &str,
    page_size: usize,
    mut parse: impl FnMut(&Value) -> Result<Vec<T>, String>,
) -> Result<Vec<T>, ApiError> {
    let mut out = Vec::new();
    let max_pages = client.max_pages();
    for number in 1..=max_pages {
        let params = [
            ("PageNumber".to_string(), number.to_string()),
            ("PageSize".to_string(), page_size.to_string()),
        ];
        let resp = client.call(action, Some(region), &params).await?;
        let decode = |e: String| ApiError::decode(action, region, format!("page {number}: {e}"));
        let rows = parse(&resp).map_err(decode)?;
        let got = rows.len();
        out.extend(rows);
        let total = opt_u64(&resp, &["TotalCount"]).map_err(decode)?;
        let size = opt_u64(&resp, &["PageSize"])
            .map_err(decode)?
            .filter(|s| *s > 0)
            .map_or(page_size, |s| s as usize);
        let done = match total {
            Some(t) => out.len() as u64 >= t,
            None => got < size,
        };
        if got == 0 || done {
            return Ok(out);
        }
    }
    Err(ApiError::decode(
        action,
        region,
        format!("still more rows after {max_pages} pages; walk stopped (page cap)"),
    ))
}

/// Single calls that do not depend on each other (the later pages of a
/// numbered walk, discovery calls) run in this many lanes at least.
pub const MIN_LANES: usize = 1;
/// And in this many at most.
pub const MAX_LANES: usize = 64;

/// Lanes for `calls` independent calls so that they take about half as long
/// as a NextToken walk of `walk_pages` pages of the same region, which runs
/// anyway: the calls stay off the cycle's critical path without arriving as
/// one burst of hundreds (the API's rate limits and the machine's CPU both
/// prefer them spread).
pub fn lanes_for(calls: usize, walk_pages: usize) -> usize {
    (calls * 2)
        .div_ceil(walk_pages.max(1))
        .clamp(MIN_LANES, MAX_LANES)
}

/// The fewest lanes that hold NextToken walks of about `pages` pages each,
/// no lane longer than `longest` pages (the longest walk of the cycle, which
/// sets its length anyway), longest walks placed first, each on the lane
/// that frees first; one lane per walk when they do not fit otherwise.
pub fn lanes_for_walks(pages: &[usize], longest: usize) -> usize {
    let mut sorted = pages.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    for lanes in 1..sorted.len() {
        let mut load = vec![0usize; lanes];
        for p in &sorted {
            if let Some(lightest) = load.iter_mut().min() {
                *lightest += p;
            }
        }
        if load.iter().all(|l| *l <= longest) {
            return lanes;
        }
    }
    sorted.len().max(1)
}

/// Runs `call` on every item, at most `lanes` at once (each in its own task),
/// and returns the results in the items' order. Stops at the first error (the
/// calls still in flight are dropped); a task that did not finish becomes
/// `failed(reason)`.
pub async fn in_lanes<I, T, E, F, Fut>(
    items: impl IntoIterator<Item = I>,
    lanes: usize,
    call: F,
    failed: impl Fn(String) -> E,
) -> Result<Vec<T>, E>
where
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let mut items = items.into_iter().enumerate();
    let mut set = tokio::task::JoinSet::new();
    let mut done: Vec<(usize, T)> = Vec::new();
    loop {
        while set.len() < lanes.max(1) {
            let Some((k, item)) = items.next() else { break };
            let fut = call(item);
            set.spawn(async move { (k, fut.await) });
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let (k, res) = joined.map_err(|e| failed(format!("task failed: {e}")))?;
        done.push((k, res?));
    }
    done.sort_by_key(|(k, _)| *k);
    Ok(done.into_iter().map(|(_, t)| t).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn lanes_keep_single_calls_within_half_a_walk() {
        // Later pages of a numbered walk: as many as the agents' walk.
        assert_eq!(lanes_for(799, 800), 2);
        // 330 discovery calls beside an 800-page walk.
        assert_eq!(lanes_for(330, 800), 1);
        // 4 800 calls: 12 lanes take 400 rounds, half of the walk.
        assert_eq!(lanes_for(4800, 800), 12);
        assert_eq!(lanes_for(1_000_000, 10), MAX_LANES);
        assert_eq!(lanes_for(0, 800), MIN_LANES);
    }

    #[test]
    fn walks_share_lanes_only_where_they_fit_in_the_longest() {
        // A small region's three sweeps fit one after another in the
        // largest region's 800-page walk.
        assert_eq!(lanes_for_walks(&[80, 80, 80], 800), 1);
        // The largest region's own: 3 × 480 do not fit in 2 lanes of 800.
        assert_eq!(lanes_for_walks(&[480, 480, 480], 800), 3);
        assert_eq!(lanes_for_walks(&[500, 300, 200, 400], 800), 2);
        assert_eq!(lanes_for_walks(&[900], 800), 1);
        assert_eq!(lanes_for_walks(&[], 800), 1);
    }

    #[tokio::test]
    async fn in_lanes_bounds_calls_in_flight_and_keeps_order() {
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let got = in_lanes(
            0..40u64,
            3,
            |n| {
                let (now, peak) = (Arc::clone(&now), Arc::clone(&peak));
                async move {
                    let c = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(c, Ordering::SeqCst);
                    // Later items finish first.
                    tokio::time::sleep(Duration::from_millis(40 - n)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, String>(n * 10)
                }
            },
            |e| e,
        )
        .await
        .expect("all succeed");
        assert_eq!(got, (0..40).map(|n| n * 10).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn in_lanes_stops_at_the_first_error() {
        let started = Arc::new(AtomicUsize::new(0));
        let res = in_lanes(
            0..100u32,
            2,
            |n| {
                let started = Arc::clone(&started);
                async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    if n == 5 {
                        Err(format!("page {n}"))
                    } else {
                        Ok(n)
                    }
                }
            },
            |e| e,
        )
        .await;
        assert_eq!(res, Err("page 5".to_string()));
        assert!(
            started.load(Ordering::SeqCst) < 10,
            "no calls after the error"
        );
    }
}
