//! DescribeInvocations: command invocations and their result on each
//! instance. Always read with a server-side filter (failed or partially
//! failed one-off invocations, or scheduled tasks) and without output:
//! never a walk of the whole 30-day history.

use std::sync::Arc;

use serde::Deserialize;

use super::fields::{FieldError, Raw, either, opt_bool, opt_shared, opt_time, opt_u64, req_shared};
use super::page::{Meta, Names, Rows, Set, nested, unique_rows};
use super::paging::{TokenWalk, token_walk};
use crate::client::Client;
use crate::error::ApiError;

pub const ACTION: &str = "DescribeInvocations";
/// `MaxResults`: "Valid values: 1 to 50".
pub const PAGE_SIZE: usize = 50;

/// Per-instance states that count as a failed run.
pub const FAILED_STATES: &[&str] = &["Failed", "Error", "Timeout", "Aborted", "Invalid"];
/// Per-instance states of a run that has not ended.
pub const RUNNING_STATES: &[&str] = &["Pending", "Running", "Stopping", "Scheduled"];

/// The server-side filters the exporter reads with, one walk each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Filter {
    /// One-off invocations that failed on every instance.
    Failed,
    /// One-off invocations that failed on some of their instances.
    PartialFailed,
    /// Scheduled tasks (`Timed=true`).
    Timed,
}

impl Filter {
    pub const ALL: [Filter; 3] = [Filter::Failed, Filter::PartialFailed, Filter::Timed];

    /// The request parameters of the filter, besides paging.
    pub fn params(self) -> Vec<(String, String)> {
        let mut p = vec![("IncludeOutput".to_string(), "false".to_string())];
        match self {
            Filter::Failed => p.push(("InvokeStatus".into(), "Failed".into())),
            Filter::PartialFailed => p.push(("InvokeStatus".into(), "PartialFailed".into())),
            Filter::Timed => p.push(("Timed".into(), "true".into())),
        }
        p
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Filter::Failed => "Failed",
            Filter::PartialFailed => "PartialFailed",
            Filter::Timed => "Timed",
        }
    }
}

/// One invocation. Optional fields the API left out are `None`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Invocation {
    pub invoke_id: Arc<str>,
    pub command_id: Option<Arc<str>>,
    pub command_name: Option<Arc<str>>,
    /// `Once`, `Period`, `NextRebootOnly`, `EveryReboot`.
    pub repeat_mode: Option<Arc<str>>,
    pub timed: Option<bool>,
    /// A scheduled task's schedule: `rate(5m)`, a cron expression, `at(...)`.
    pub frequency: Option<Arc<str>>,
    pub created: Option<i64>,
    /// The overall status (`InvocationStatus`, else its deprecated twin
    /// `InvokeStatus`).
    pub status: Option<Arc<str>>,
    pub instances: Vec<InvokeInstance>,
}

/// An invocation's run on one instance.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct InvokeInstance {
    pub instance_id: Arc<str>,
    /// Pending, Invalid, Aborted, Running, Success, Failed, Error, Timeout,
    /// Cancelled, Stopping, Terminated, Scheduled.
    pub status: Option<Arc<str>>,
    pub error_code: Option<Arc<str>>,
    pub repeats: Option<u64>,
    pub start: Option<i64>,
    pub finish: Option<i64>,
    pub update: Option<i64>,
}

impl InvokeInstance {
    /// Whether this run failed.
    pub fn failed(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| FAILED_STATES.contains(&s))
    }

    /// Whether this run has not ended yet.
    pub fn running(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| RUNNING_STATES.contains(&s))
    }
}

/// The answer's rows: `Invocations.Invocation[]`.
struct Invocations;

impl Names for Invocations {
    const OUTER: &'static [&'static str] = &["Invocations"];
    const INNER: &'static [&'static str] = &["Invocation"];
}

impl Rows for Invocations {
    type Item<'a> = Item<'a>;
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow, rename = "InvokeId")]
    invoke_id: Option<Raw<'a>>,
    #[serde(borrow, rename = "CommandId")]
    command_id: Option<Raw<'a>>,
    #[serde(borrow, rename = "CommandName")]
    command_name: Option<Raw<'a>>,
    #[serde(borrow, rename = "RepeatMode")]
    repeat_mode: Option<Raw<'a>>,
    #[serde(borrow, rename = "Timed")]
    timed: Option<Raw<'a>>,
    #[serde(borrow, rename = "Frequency")]
    frequency: Option<Raw<'a>>,
    #[serde(borrow, rename = "CreationTime")]
    created: Option<Raw<'a>>,
    // Both spellings come in one answer: the newer one wins.
    #[serde(borrow, rename = "InvocationStatus")]
    status: Option<Raw<'a>>,
    #[serde(borrow, rename = "InvokeStatus")]
    invoke_status: Option<Raw<'a>>,
    #[serde(borrow, rename = "InvokeInstances")]
    instances: Option<Set<Instance<'a>, InvokeInstances>>,
}

/// An invocation's runs.
struct InvokeInstances;

impl Names for InvokeInstances {
    const OUTER: &'static [&'static str] = &["InvokeInstances"];
    const INNER: &'static [&'static str] = &["InvokeInstance"];
}

#[derive(Deserialize)]
struct Instance<'a> {
    #[serde(borrow, rename = "InstanceId")]
    instance_id: Option<Raw<'a>>,
    // Both spellings come in one answer: the newer one wins.
    #[serde(borrow, rename = "InvocationStatus")]
    status: Option<Raw<'a>>,
    #[serde(borrow, rename = "InstanceInvokeStatus")]
    instance_invoke_status: Option<Raw<'a>>,
    #[serde(borrow, rename = "ErrorCode")]
    error_code: Option<Raw<'a>>,
    #[serde(borrow, rename = "Repeats")]
    repeats: Option<Raw<'a>>,
    #[serde(borrow, rename = "StartTime")]
    start: Option<Raw<'a>>,
    #[serde(borrow, rename = "FinishTime", alias = "FinishedTime")]
    finish: Option<Raw<'a>>,
    #[serde(borrow, rename = "UpdateTime")]
    update: Option<Raw<'a>>,
}

fn parse_instance(v: Instance) -> Result<InvokeInstance, FieldError> {
    let instance_id = req_shared(&v.instance_id, "InstanceId")?;
    let ctx = |e: FieldError| e.within(format!("instance {instance_id}"));
    Ok(InvokeInstance {
        status: opt_shared(
            either(&v.status, &v.instance_invoke_status),
            "InvocationStatus",
        )
        .map_err(ctx)?,
        error_code: opt_shared(&v.error_code, "ErrorCode")
            .map_err(ctx)?
            .filter(|c| !c.is_empty()),
        repeats: opt_u64(&v.repeats, "Repeats").map_err(ctx)?,
        start: opt_time(&v.start, "StartTime").map_err(ctx)?,
        finish: opt_time(&v.finish, "FinishTime").map_err(ctx)?,
        update: opt_time(&v.update, "UpdateTime").map_err(ctx)?,
        instance_id,
    })
}

fn parse_item(v: Item) -> Result<Invocation, FieldError> {
    let invoke_id = req_shared(&v.invoke_id, "InvokeId")?;
    let ctx = |e: FieldError| e.within(format!("invocation {invoke_id}"));
    let instances = nested(v.instances)
        .map_err(ctx)?
        .into_iter()
        .map(parse_instance)
        .collect::<Result<Vec<_>, _>>()
        .map_err(ctx)?;
    let status =
        opt_shared(either(&v.status, &v.invoke_status), "InvocationStatus").map_err(ctx)?;
    Ok(Invocation {
        command_id: opt_shared(&v.command_id, "CommandId").map_err(ctx)?,
        command_name: opt_shared(&v.command_name, "CommandName").map_err(ctx)?,
        repeat_mode: opt_shared(&v.repeat_mode, "RepeatMode").map_err(ctx)?,
        timed: opt_bool(&v.timed, "Timed").map_err(ctx)?,
        frequency: opt_shared(&v.frequency, "Frequency")
            .map_err(ctx)?
            .filter(|f| !f.is_empty()),
        created: opt_time(&v.created, "CreationTime").map_err(ctx)?,
        status,
        instances,
        invoke_id,
    })
}

/// The invocations of one answer body, and its paging fields. A missing
/// list is an empty last page.
fn read_page(body: &[u8]) -> Result<(Vec<Invocation>, Meta), FieldError> {
    unique_rows::<Invocations, _>(body, parse_item, |i| &i.invoke_id, "invocation")
}

/// The invocations of one answer body.
pub fn parse_page(body: &[u8]) -> Result<Vec<Invocation>, FieldError> {
    read_page(body).map(|(rows, _)| rows)
}

/// What one filtered walk read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InvocationPages {
    pub invocations: Vec<Invocation>,
    /// The walk stopped at `max_pages` with more pages left.
    pub truncated: bool,
}

/// Every invocation of `region` that `filter` selects, at most `max_pages`
/// pages of 50. An invocation listed on two pages (the list moves while it
/// is read) is kept once, the later copy. A region without the action
/// answers [`ApiError::is_api_not_supported`]; without
/// `ecs:DescribeInvocations`, [`ApiError::is_permission_denied`].
pub async fn walk_invocations(
    client: &Client,
    region: &str,
    filter: Filter,
    max_pages: usize,
) -> Result<InvocationPages, ApiError> {
    let walk = TokenWalk {
        client,
        action: ACTION,
        region,
        params: &filter.params(),
        page_size: PAGE_SIZE,
    };
    let (out, truncated) = token_walk(walk, max_pages, read_page, None).await?;
    Ok(pages(out, truncated))
}

fn pages(mut all: Vec<Invocation>, truncated: bool) -> InvocationPages {
    // The later copy of an id wins: it is the newer answer.
    let mut seen = std::collections::HashSet::new();
    all.reverse();
    all.retain(|i| seen.insert(i.invoke_id.clone()));
    all.reverse();
    InvocationPages {
        invocations: all,
        truncated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse_page(v: &Value) -> Result<Vec<Invocation>, String> {
        super::parse_page(&crate::api::body_of(v)).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_the_documented_answer() {
        let v = json!({"RequestId": "R", "TotalCount": 1, "PageSize": 10, "PageNumber": 1, "NextToken": "AAAAAdDWBF2",
        "Invocations": {"Invocation": [{
            "CreationTime": "2020-12-20T06:15:54Z", "Frequency": "0 */20 * * * *", "InvocationStatus": "Running",
            "RepeatMode": "Period", "CommandId": "c-hz0jdfwcsr****", "CommandName": "backup", "InvokeStatus": "Running",
            "Timed": true, "InvokeId": "t-hz0jdfwd9f****", "CommandType": "RunShellScript",
            "InvokeInstances": {"InvokeInstance": [{
                "InstanceId": "i-bp1i7gg30r52z2em****", "InvocationStatus": "Failed", "ErrorCode": "ExitCodeNonzero",
                "ErrorInfo": "the command failed", "ExitCode": 1, "Repeats": 5, "StartTime": "2020-12-20T06:15:55Z",
                "FinishTime": "2020-12-20T06:15:56Z", "UpdateTime": "2020-12-20T06:15:56Z", "Output": ""
            }]}
        }]}});
        let page = parse_page(&v).expect("parses");
        let i = &page[0];
        assert_eq!(&*i.invoke_id, "t-hz0jdfwd9f****");
        assert_eq!(i.command_name.as_deref(), Some("backup"));
        assert_eq!(i.frequency.as_deref(), Some("0 */20 * * * *"));
        assert_eq!(i.timed, Some(true));
        assert_eq!(i.status.as_deref(), Some("Running"));
        let r = &i.instances[0];
        assert!(r.failed() && !r.running());
        assert_eq!(r.error_code.as_deref(), Some("ExitCodeNonzero"));
        assert_eq!(r.repeats, Some(5));
        assert_eq!(r.finish, Some(1_608_444_956));
    }

    #[test]
    fn quirks_parse_and_broken_items_say_which() {
        // The deprecated status alone, numbers as strings, an empty error
        // code, the instance list as a plain array.
        let v = json!({"Invocations": {"Invocation": [{"InvokeId": "t-1", "InvokeStatus": "PartialFailed",
            "InvokeInstances": [{"InstanceId": "i-1", "InvocationStatus": "Success", "ErrorCode": "", "Repeats": "2"}]}]}});
        let i = &parse_page(&v).expect("parses")[0];
        assert_eq!(i.status.as_deref(), Some("PartialFailed"));
        assert_eq!(i.instances[0].error_code, None);
        assert_eq!(i.instances[0].repeats, Some(2));
        assert_eq!(parse_page(&json!({"RequestId": "R"})), Ok(vec![]));
        let e = parse_page(&json!({"Invocations": {"Invocation": [{"CommandName": "x"}]}}))
            .unwrap_err();
        assert!(e.contains("InvokeId is missing"), "{e}");
        let e = parse_page(&json!({"Invocations": {"Invocation": [{"InvokeId": "t-2",
            "InvokeInstances": {"InvokeInstance": [{"InstanceId": "i-9", "FinishTime": "soon"}]}}]}}))
        .unwrap_err();
        assert!(
            e.contains("invocation t-2: instance i-9: FinishTime"),
            "{e}"
        );
        let twice =
            json!({"Invocations": {"Invocation": [{"InvokeId": "t-3"}, {"InvokeId": "t-3"}]}});
        assert!(parse_page(&twice).unwrap_err().contains("twice"));
    }

    #[test]
    fn every_filter_asks_without_output() {
        for f in Filter::ALL {
            let p = f.params();
            assert!(
                p.contains(&("IncludeOutput".into(), "false".into())),
                "{f:?}"
            );
            assert!(
                p.iter().any(|(k, _)| k == "InvokeStatus" || k == "Timed"),
                "{f:?} has a filter"
            );
        }
    }

    #[test]
    fn an_invocation_on_two_pages_is_kept_once_as_last_seen() {
        let a = |s: &str| Invocation {
            invoke_id: "t-1".into(),
            status: Some(s.into()),
            ..Invocation::default()
        };
        let p = pages(vec![a("Running"), a("Failed")], false);
        assert_eq!(p.invocations, vec![a("Failed")]);
    }
}
