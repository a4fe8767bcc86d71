//! DescribeInstances: names, zones, types and tags, by NextToken.

use super::call::Call;
use crate::simulator::auth::{Answer, error};
use crate::simulator::paging::{Page, token_page};

/// DescribeInstances' `MaxResults` as its reference documents it: "Valid
/// values: 1 to 100"; unset or below 10 gives 10, above 100 gives 100.
fn instances_page_size(c: &Call<'_>) -> Result<usize, Answer> {
    match c.map.get("MaxResults").map(|v| v.parse::<u64>()) {
        None => Ok(10),
        Some(Ok(n)) if n >= 1 => Ok(n.clamp(10, 100) as usize),
        Some(_) => Err(error(
            c.state,
            400,
            "InvalidParameter.MaxResults",
            "The specified parameter MaxResults is not valid.",
        )),
    }
}

pub(super) fn describe_instances(c: &Call<'_>) -> Result<Answer, Answer> {
    let size = instances_page_size(c)?;
    let region = c.region;
    let rows = &region.instances;
    let page = Page::new(&c.scope, "Instances", c.endless, c.repeat);
    token_page(
        c.state,
        c.map,
        page,
        ("Instance", region.quirky),
        size,
        rows.len(),
        |k| rows[k].info_json(region.quirky),
    )
}
