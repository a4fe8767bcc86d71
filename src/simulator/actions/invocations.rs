//! DescribeInvocations: `InvokeStatus` and `Timed` filter, `MaxResults`
//! 1..=50 (10 by default) and NextToken, newest first; output only with
//! `IncludeOutput=true`. Every request is counted by what it asked for.

use super::call::Call;
use crate::simulator::auth::{Answer, error};
use crate::simulator::invocations::{query_kind, select};
use crate::simulator::paging::{Page, page_size, token_page};

pub(super) fn describe_invocations(c: &Call<'_>) -> Result<Answer, Answer> {
    let (state, map) = (c.state, c.map);
    let invoke_status = map.get("InvokeStatus").copied();
    let timed = match map.get("Timed").copied() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(error(
                state,
                400,
                "InvalidParameter.Timed",
                "The specified parameter Timed is not valid.",
            ));
        }
    };
    let include_output = map.get("IncludeOutput").copied() == Some("true");
    state.count_invocation_query(query_kind(
        invoke_status,
        map.get("Timed").copied(),
        include_output,
    ));
    let size = page_size(state, map, "MaxResults", "InvalidParameter.MaxResults")?;
    // The token is bound to the filter it was made for.
    let scope = format!("{}|{invoke_status:?}|{timed:?}", c.scope);
    let rows = select(&c.region.invocations, invoke_status, timed);
    let page = Page::new(&scope, "Invocations", c.endless, c.repeat);
    token_page(
        state,
        map,
        page,
        ("Invocation", c.region.quirky),
        size,
        rows.len(),
        |k| rows[k].json(include_output),
    )
}
