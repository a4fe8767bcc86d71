//! Paging shared by the walkers: NextToken walks, and numbered walks for the
//! actions whose older API knows no tokens. Only paging: how many calls run
//! at once is `call_lanes`' and the collector's plan's business.

use super::PAGE_SIZE;
use super::fields::FieldError;
use super::page::Meta;
use crate::client::Client;
use crate::error::ApiError;

/// How a walker reads one answer body: its rows and its paging fields.
pub trait ParsePage<T>: FnMut(&[u8]) -> Result<(Vec<T>, Meta), FieldError> {}
impl<T, F: FnMut(&[u8]) -> Result<(Vec<T>, Meta), FieldError>> ParsePage<T> for F {}

/// Calls `action` page after page (`MaxResults=50`, then `NextToken`) until no
/// token comes back, feeding each answer to `parse`. A token that repeats or
/// a walk longer than the client's page cap is an error, not an endless loop.
pub async fn walk_next_token<T>(
    client: &Client,
    action: &str,
    region: &str,
    params: &[(String, String)],
    parse: impl ParsePage<T>,
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
    parse: impl ParsePage<T>,
) -> Result<Vec<T>, ApiError> {
    let walk = TokenWalk {
        client,
        action,
        region,
        params,
        page_size,
    };
    token_pages(walk, parse, None).await
}

/// One action's NextToken walk in one region.
pub(crate) struct TokenWalk<'a> {
    pub(crate) client: &'a Client,
    pub(crate) action: &'a str,
    pub(crate) region: &'a str,
    /// Besides `MaxResults` and `NextToken`.
    pub(crate) params: &'a [(String, String)],
    pub(crate) page_size: usize,
}

/// The NextToken loop under the client's page cap; `first` is the first
/// page, read, when the caller already has it. A NextToken still left at
/// the cap is an error.
async fn token_pages<T>(
    walk: TokenWalk<'_>,
    parse: impl ParsePage<T>,
    first: Option<(Vec<T>, Meta)>,
) -> Result<Vec<T>, ApiError> {
    let (action, region) = (walk.action, walk.region);
    let max_pages = walk.client.max_pages();
    let (out, more) = token_walk(walk, max_pages, parse, first).await?;
    if more {
        return Err(ApiError::decode(
            action,
            region,
            format!("still a NextToken after {max_pages} pages; walk stopped (page cap)"),
        ));
    }
    Ok(out)
}

/// At most `max_pages` pages of `action` (`MaxResults=page_size`, then
/// `NextToken`), each fed to `parse`: the rows, and whether a NextToken was
/// still left when the cap stopped the walk. A token that repeats is an
/// error, not an endless loop.
pub(crate) async fn token_walk<T>(
    walk: TokenWalk<'_>,
    max_pages: usize,
    mut parse: impl ParsePage<T>,
    mut first: Option<(Vec<T>, Meta)>,
) -> Result<(Vec<T>, bool), ApiError> {
    let TokenWalk {
        client,
        action,
        region,
        params,
        page_size,
    } = walk;
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..max_pages.max(1) {
        let (rows, meta) = match first.take() {
            Some(page) => page,
            None => {
                let mut p = params.to_vec();
                p.push(("MaxResults".into(), page_size.to_string()));
                if let Some(t) = &token {
                    p.push(("NextToken".into(), t.clone()));
                }
                let resp = client.call(action, Some(region), &p).await?;
                parse(resp.body()).map_err(|e| ApiError::decode(action, region, e))?
            }
        };
        if out.is_empty() {
            out.reserve(reserve_for(meta.total_hint(), rows.len()));
        }
        out.extend(rows);
        match meta.next_token {
            None => return Ok((out, false)),
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
    Ok((out, true))
}

/// Room for a whole walk, from the first page's TotalCount: one allocation
/// instead of a doubling per few pages. Capped, so an absurd count costs
/// nothing; a larger walk grows as it goes.
pub(crate) fn reserve_for(total: Option<u64>, first_page: usize) -> usize {
    const MAX_RESERVE: u64 = 1 << 17;
    total
        .map_or(first_page, |t| t.min(MAX_RESERVE) as usize)
        .max(first_page)
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
    mut parse: impl ParsePage<T>,
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
    let (rows, meta) = parse(resp.body()).map_err(|e| ApiError::decode(action, region, e))?;
    if meta.next_token.is_none() {
        let (total, _) = meta
            .counts()
            .map_err(|e| ApiError::decode(action, region, e))?;
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
    let walk = TokenWalk {
        client,
        action,
        region,
        params: &[],
        page_size,
    };
    token_pages(walk, parse, Some((rows, meta))).await
}

/// `PageNumber` 1, 2, .. with `PageSize=page_size`, one after another,
/// until an empty page, until TotalCount rows came, or (without TotalCount)
/// until a page shorter than the page size the answer says it used.
pub async fn walk_numbered<T>(
    client: &Client,
    action: &str,
    region: &str,
    page_size: usize,
    mut parse: impl ParsePage<T>,
) -> Result<Vec<T>, ApiError> {
    let mut out = Vec::new();
    let max_pages = client.max_pages();
    for number in 1..=max_pages {
        let params = [
            ("PageNumber".to_string(), number.to_string()),
            ("PageSize".to_string(), page_size.to_string()),
        ];
        let resp = client.call(action, Some(region), &params).await?;
        let decode =
            |e: FieldError| ApiError::decode(action, region, format!("page {number}: {e}"));
        let (rows, meta) = parse(resp.body()).map_err(decode)?;
        let (total, size) = meta.counts().map_err(decode)?;
        let got = rows.len();
        if out.is_empty() {
            out.reserve(reserve_for(total, got));
        }
        out.extend(rows);
        let size = size.filter(|s| *s > 0).map_or(page_size, |s| s as usize);
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

/// `items` sorted by id with one row per id (the last seen: newest data).
/// Pages can overlap when instances come and go during a walk.
pub(crate) fn dedup_by_id<T>(
    mut items: Vec<T>,
    id: impl Fn(&T) -> &str,
    action: &str,
    region: &str,
) -> Vec<T> {
    let before = items.len();
    // Stable sort keeps answer order among equal ids; reverse so the last wins.
    items.reverse();
    items.sort_by(|a, b| id(a).cmp(id(b)));
    items.dedup_by(|a, b| id(a) == id(b));
    if items.len() != before {
        tracing::warn!(
            action,
            region,
            duplicates = before - items.len(),
            "the API listed some instances more than once; kept one row each"
        );
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_reserves_from_the_first_total_within_a_cap() {
        assert_eq!(reserve_for(Some(1234), 50), 1234);
        assert_eq!(reserve_for(None, 50), 50);
        assert_eq!(reserve_for(Some(3), 50), 50);
        assert_eq!(reserve_for(Some(u64::MAX), 50), 1 << 17);
    }

    #[test]
    fn dedup_keeps_one_row_each() {
        let v = vec![("b", 1), ("a", 1), ("b", 2)];
        assert_eq!(dedup_by_id(v, |x| x.0, "A", "r"), vec![("a", 1), ("b", 2)]);
    }
}
