//! DescribeManagedInstances: the region's hybrid servers, paged by token or
//! by number as the region's API does.

use super::call::Call;
use crate::simulator::auth::Answer;
use crate::simulator::paging::{Page, hybrid_page};

pub(super) fn describe_managed_instances(c: &Call<'_>) -> Result<Answer, Answer> {
    let rows = &c.region.managed;
    let page = Page::new(&c.scope, "Instances", c.endless, c.repeat);
    hybrid_page(c.state, c.map, c.region, page, rows.len(), |k| {
        rows[k].json()
    })
}
