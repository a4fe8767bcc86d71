//! DescribeInstanceStatus: the instances' states by `PageNumber` and
//! `PageSize`, at most 100 ids; a quirky region's TotalCount is a string.

use serde_json::{Value, json};

use super::call::Call;
use crate::simulator::auth::{Answer, error};
use crate::simulator::paging::{number_window, page_number, page_size, select};
use crate::simulator::quirks::count_json;

pub(super) fn describe_instance_status(c: &Call<'_>) -> Result<Answer, Answer> {
    let state = c.state;
    let size = page_size(state, c.map, "PageSize", "InvalidParam.PageSize")?;
    let number = page_number(state, c.map)?;
    if c.ids.len() > 100 {
        return Err(error(
            state,
            403,
            "InvalidParameter.TooManyInstanceIds",
            "Instance ids cannot be more than 100.",
        ));
    }
    let rows = select(c.region, &c.ids, None);
    let items: Vec<Value> = number_window(number, size, rows.len())
        .map(|k| rows.get(k))
        .map(|i| json!({"InstanceId": i.id, "Status": i.status}))
        .collect();
    let total = count_json(rows.len(), c.region.quirky);
    Ok((
        200,
        json!({"RequestId": state.request_id(), "TotalCount": total, "PageNumber": number, "PageSize": size,
               "InstanceStatuses": {"InstanceStatus": items}}),
    ))
}
