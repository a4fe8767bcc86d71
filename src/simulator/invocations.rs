//! Command invocations as the simulator keeps and answers them
//! (DescribeInvocations), written from the vendor's reference: the
//! overall status follows from the runs on each instance, `InvokeStatus`
//! filters on it, `Timed` picks scheduled tasks, `MaxResults` is 1 to 50
//! (10 by default), pages go by NextToken, newest first, and output is sent
//! only when `IncludeOutput=true`.

use serde_json::{Value, json};

use crate::clock::{format_iso8601, format_iso8601_minutes};
use crate::rng::Rng;

/// One invocation: a command sent to some instances, once or on a schedule.
#[derive(Clone, Debug)]
pub struct SimInvocation {
    pub invoke_id: String,
    pub command_id: String,
    pub command_name: String,
    /// `Once`, `Period`, `NextRebootOnly`, `EveryReboot`.
    pub repeat_mode: String,
    /// A schedule: `rate(5m)`, a cron expression; empty for one-off ones.
    pub frequency: String,
    pub created: i64,
    pub runs: Vec<SimRun>,
    /// Answer in the older format: the deprecated status key only, numbers
    /// as strings, times to the minute.
    pub quirky: bool,
}

/// The invocation's run on one instance.
#[derive(Clone, Debug)]
pub struct SimRun {
    pub instance_id: String,
    /// Pending, Running, Success, Failed, Error, Timeout, Aborted, Invalid,
    /// Cancelled, Stopping, Terminated, Scheduled.
    pub status: String,
    pub error_code: String,
    pub exit_code: i64,
    pub repeats: u64,
    pub start: i64,
    pub finish: Option<i64>,
}

impl SimRun {
    pub fn new(instance_id: &str, status: &str, error_code: &str, at: i64) -> Self {
        let ended = !matches!(status, "Pending" | "Running" | "Scheduled" | "Stopping");
        SimRun {
            instance_id: instance_id.to_string(),
            status: status.to_string(),
            error_code: error_code.to_string(),
            exit_code: i64::from(status == "Failed"),
            repeats: 1,
            start: at,
            finish: ended.then_some(at + 7),
        }
    }
}

fn failed(status: &str) -> bool {
    matches!(
        status,
        "Failed" | "Error" | "Timeout" | "Aborted" | "Invalid"
    )
}

impl SimInvocation {
    /// A one-off invocation with `runs` as (instance, status, error code).
    pub fn once(invoke_id: &str, command: &str, created: i64, runs: &[(&str, &str, &str)]) -> Self {
        SimInvocation {
            invoke_id: invoke_id.to_string(),
            command_id: format!("c-{}", command.len() * 7919 % 100_000),
            command_name: command.to_string(),
            repeat_mode: "Once".into(),
            frequency: String::new(),
            created,
            runs: runs
                .iter()
                .map(|(i, s, c)| SimRun::new(i, s, c, created + 1))
                .collect(),
            quirky: false,
        }
    }

    /// A scheduled task (`Timed`).
    pub fn scheduled(
        invoke_id: &str,
        command: &str,
        frequency: &str,
        created: i64,
        runs: Vec<SimRun>,
    ) -> Self {
        SimInvocation {
            repeat_mode: if frequency.is_empty() {
                "EveryReboot".into()
            } else {
                "Period".into()
            },
            frequency: frequency.to_string(),
            runs,
            ..SimInvocation::once(invoke_id, command, created, &[])
        }
    }

    pub fn timed(&self) -> bool {
        self.repeat_mode != "Once"
    }

    /// The overall status, as the reference derives it: a scheduled task
    /// stays Running; a one-off one is Running while a run has not ended,
    /// then Success, Failed (every run failed), PartialFailed (some did) or
    /// Stopped.
    pub fn status(&self) -> &'static str {
        if self.timed() {
            return "Running";
        }
        let ended = |s: &str| !matches!(s, "Pending" | "Running" | "Scheduled" | "Stopping");
        if self.runs.iter().any(|r| !ended(&r.status)) {
            return "Running";
        }
        let bad = self.runs.iter().filter(|r| failed(&r.status)).count();
        if bad > 0 && bad == self.runs.len() {
            "Failed"
        } else if bad > 0 {
            "PartialFailed"
        } else if self
            .runs
            .iter()
            .any(|r| r.status == "Cancelled" || r.status == "Terminated")
        {
            "Stopped"
        } else {
            "Success"
        }
    }

    fn num(&self, n: impl ToString + Into<Value>) -> Value {
        if self.quirky {
            json!(n.to_string())
        } else {
            n.into()
        }
    }

    fn time(&self, t: i64) -> Value {
        if self.quirky {
            json!(format_iso8601_minutes(t))
        } else {
            json!(format_iso8601(t))
        }
    }

    pub fn json(&self, include_output: bool) -> Value {
        let runs: Vec<Value> = self
            .runs
            .iter()
            .map(|r| {
                let mut v = json!({
                    "InstanceId": r.instance_id,
                    "InstanceInvokeStatus": r.status,
                    "ErrorCode": r.error_code,
                    "ErrorInfo": if r.error_code.is_empty() { "" } else { "the command did not succeed" },
                    "ExitCode": self.num(r.exit_code),
                    "Repeats": self.num(r.repeats),
                    "StartTime": self.time(r.start),
                    "UpdateTime": self.time(r.finish.unwrap_or(r.start)),
                    "Dropped": 0,
                });
                if !self.quirky {
                    v["InvocationStatus"] = json!(r.status);
                }
                if let Some(f) = r.finish {
                    v["FinishTime"] = self.time(f);
                }
                if include_output {
                    v["Output"] = json!("b2s=");
                }
                v
            })
            .collect();
        let mut v = json!({
            "InvokeId": self.invoke_id,
            "CommandId": self.command_id,
            "CommandName": self.command_name,
            "CommandType": "RunShellScript",
            "RepeatMode": self.repeat_mode,
            "Timed": self.timed(),
            "Frequency": self.frequency,
            "CreationTime": self.time(self.created),
            "InvokeStatus": self.status(),
            "InvokeInstances": {"InvokeInstance": runs},
        });
        if !self.quirky {
            v["InvocationStatus"] = json!(self.status());
        }
        v
    }
}

/// A region's seeded history: `n` one-off invocations over its instances
/// (most fine, some failing on all or some of their instances, a few
/// still running) and two scheduled tasks, one of which fails on one host.
pub fn generate(
    rng: &mut Rng,
    instances: &[String],
    n: usize,
    start: i64,
    quirky: bool,
) -> Vec<SimInvocation> {
    const COMMANDS: [&str; 5] = [
        "deploy-app",
        "patch-os",
        "rotate-logs",
        "collect-diag",
        "restart-agent",
    ];
    const FAILURES: [(&str, &str); 6] = [
        ("Failed", "ExitCodeNonzero"),
        ("Timeout", "ExecutionTimeout"),
        ("Error", "ClientNotRunning"),
        ("Error", "DeliveryTimeout"),
        ("Error", "ClientNeedUpgrade"),
        ("Invalid", "InstanceNotRunning"),
    ];
    if instances.is_empty() {
        return Vec::new();
    }
    let pick = |rng: &mut Rng| instances[rng.below(instances.len() as u64) as usize].clone();
    let mut out = Vec::new();
    for k in 0..n {
        let created = start + (k as i64) * 60;
        let command = COMMANDS[rng.below(COMMANDS.len() as u64) as usize];
        let hosts = 1 + rng.below(4) as usize;
        let mut runs: Vec<SimRun> = Vec::new();
        for _ in 0..hosts {
            let id = pick(rng);
            if runs.iter().any(|r| r.instance_id == id) {
                continue;
            }
            let (status, code) = if rng.chance(0.3) {
                FAILURES[rng.below(FAILURES.len() as u64) as usize]
            } else if rng.chance(0.05) {
                ("Running", "")
            } else {
                ("Success", "")
            };
            runs.push(SimRun::new(&id, status, code, created + 1));
        }
        out.push(SimInvocation {
            quirky,
            runs,
            ..SimInvocation::once(
                &format!("t-{:012x}", rng.next_u64() & 0xffff_ffff_ffff),
                command,
                created,
                &[],
            )
        });
    }
    // A periodic backup on up to three hosts, failing on the first; a
    // script at every boot.
    let mut backup_runs = Vec::new();
    for (i, status) in ["Failed", "Success", "Success"].iter().enumerate() {
        if let Some(id) = instances.get(i) {
            let mut run = SimRun::new(
                id,
                status,
                if i == 0 { "ExitCodeNonzero" } else { "" },
                start,
            );
            run.repeats = 12;
            backup_runs.push(run);
        }
    }
    let boot = vec![SimRun::new(&pick(rng), "Success", "", start)];
    out.push(SimInvocation {
        quirky,
        ..SimInvocation::scheduled(
            "t-sched-backup",
            "nightly-backup",
            "rate(5m)",
            start,
            backup_runs,
        )
    });
    out.push(SimInvocation {
        quirky,
        ..SimInvocation::scheduled("t-sched-boot", "on-boot", "", start, boot)
    });
    out.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then_with(|| a.invoke_id.cmp(&b.invoke_id))
    });
    out
}

/// What a DescribeInvocations request asked for, as the simulator counts it.
pub fn query_kind(
    invoke_status: Option<&str>,
    timed: Option<&str>,
    include_output: bool,
) -> String {
    let mut kind = match (invoke_status, timed) {
        (Some(s), _) => s.to_string(),
        (None, Some("true")) => "Timed".to_string(),
        (None, Some(_)) => "NotTimed".to_string(),
        (None, None) => "unfiltered".to_string(),
    };
    if include_output {
        kind.push_str("+output");
    }
    kind
}

/// The invocations a request selects, newest first.
pub fn select<'a>(
    all: &'a [SimInvocation],
    invoke_status: Option<&str>,
    timed: Option<bool>,
) -> Vec<&'a SimInvocation> {
    let mut rows: Vec<&SimInvocation> = all
        .iter()
        .filter(|i| invoke_status.is_none_or(|s| i.status() == s))
        .filter(|i| timed.is_none_or(|t| i.timed() == t))
        .collect();
    rows.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then_with(|| a.invoke_id.cmp(&b.invoke_id))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overall_status_follows_the_runs() {
        let at = 1_700_000_000;
        let s = |runs: &[(&str, &str, &str)]| SimInvocation::once("t", "c", at, runs).status();
        assert_eq!(
            s(&[("i-1", "Success", ""), ("i-2", "Success", "")]),
            "Success"
        );
        assert_eq!(
            s(&[("i-1", "Failed", "ExitCodeNonzero"), ("i-2", "Timeout", "")]),
            "Failed"
        );
        assert_eq!(
            s(&[("i-1", "Failed", "ExitCodeNonzero"), ("i-2", "Success", "")]),
            "PartialFailed"
        );
        assert_eq!(
            s(&[("i-1", "Failed", ""), ("i-2", "Running", "")]),
            "Running"
        );
        let task = SimInvocation::scheduled(
            "t-s",
            "b",
            "rate(5m)",
            at,
            vec![SimRun::new("i-1", "Failed", "", at)],
        );
        assert_eq!(task.status(), "Running");
        assert!(task.timed());
    }

    #[test]
    fn seeded_history_has_failures_partials_and_tasks() {
        let ids: Vec<String> = (0..40).map(|i| format!("i-{i:03}")).collect();
        let h = generate(&mut Rng::new(7), &ids, 60, 1_700_000_000, false);
        let count = |s: &str| h.iter().filter(|i| i.status() == s).count();
        assert!(count("Failed") > 0 && count("PartialFailed") > 0 && count("Success") > 0);
        assert_eq!(h.iter().filter(|i| i.timed()).count(), 2);
        let v = h[0].json(false);
        assert!(
            v["InvokeInstances"]["InvokeInstance"][0]
                .get("Output")
                .is_none()
        );
    }
}
