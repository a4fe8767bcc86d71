//! Work that must not slow the serving of scrapes: rendering runs on a
//! long-lived thread of its own at a lower CPU priority (one per kind of
//! work, jobs one after another), so that when the CPU is short, scrapes of
//! the current page come first.

use std::collections::HashMap;
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};

use thread_priority::{ThreadPriority, ThreadPriorityValue};

/// The niceness of these threads (0 is normal, 19 the lowest): low
/// enough that serving threads win the CPU, high enough that a busy
/// exporter still finishes its page within the cycle (about a tenth of a
/// core against each busy normal thread).
pub const NICE: i32 = 10;

/// Lowers the calling thread's priority to `NICE`. Lowering never needs
/// privileges; where the platform refuses, the thread just runs as before.
pub fn lower_priority() -> Result<(), LowPriorityError> {
    // The crate maps 0..=99 onto niceness 19..=-20: 22 is niceness 10.
    let value = ThreadPriorityValue::try_from(22u8).map_err(LowPriorityError::PriorityValue)?;
    thread_priority::set_current_thread_priority(ThreadPriority::Crossplatform(value))
        .map_err(LowPriorityError::Priority)
}

/// Why low-priority work did not run (or the priority stayed).
#[derive(Debug, thiserror::Error)]
pub enum LowPriorityError {
    #[error("{0}")]
    PriorityValue(String),
    #[error("cannot lower the thread priority: {0:?}")]
    Priority(thread_priority::Error),
    #[error("cannot start the {name} thread: {source}")]
    Start {
        name: String,
        source: std::io::Error,
    },
    #[error("the {0} thread has stopped")]
    Stopped(String),
    #[error("the {0} thread stopped without a result")]
    NoResult(String),
}

type Job = Box<dyn FnOnce() + Send>;

/// The thread named `name`, started the first time it is asked for; it
/// runs until the process ends (a job that panics is caught).
fn worker(name: &str) -> Result<Sender<Job>, LowPriorityError> {
    static WORKERS: OnceLock<Mutex<HashMap<String, Sender<Job>>>> = OnceLock::new();
    let mut workers = WORKERS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(tx) = workers.get(name) {
        return Ok(tx.clone());
    }
    let (tx, rx) = channel::<Job>();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            if let Err(e) = lower_priority() {
                tracing::debug!(error = %e, "low-priority thread keeps its priority");
            }
            while let Ok(job) = rx.recv() {
                // A job that panics loses its result (its caller is told),
                // not the thread.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
        })
        .map_err(|source| LowPriorityError::Start {
            name: name.to_string(),
            source,
        })?;
    workers.insert(name.to_string(), tx.clone());
    Ok(tx)
}

/// Runs `work` on the long-lived thread named `name`, at the lower
/// priority, after the jobs already queued there, and waits for its result
/// without holding an async worker.
pub async fn run<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, LowPriorityError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // The receiver is gone only if the caller went away.
        let _ = tx.send(work());
    });
    worker(name)?
        .send(job)
        .map_err(|_| LowPriorityError::Stopped(name.to_string()))?;
    rx.await
        .map_err(|_| LowPriorityError::NoResult(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's niceness, from `/proc/thread-self/stat`.
    fn own_niceness() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
        // Fields after the command name (which may hold spaces) start at 3.
        let rest = &stat[stat.rfind(')').expect("comm") + 2..];
        rest.split(' ')
            .nth(16)
            .expect("nice")
            .parse()
            .expect("number")
    }

    #[tokio::test]
    async fn work_runs_at_the_lower_niceness_and_returns_its_result() {
        let before = own_niceness();
        let (nice, answer) = run("test-render", || (own_niceness(), 6 * 7))
            .await
            .expect("runs");
        assert_eq!(answer, 42);
        assert_eq!(nice, NICE);
        assert_eq!(own_niceness(), before, "the caller's priority is untouched");
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_not_a_hang() {
        let err = run("test-panic", || -> u8 { panic!("boom") })
            .await
            .expect_err("no result");
        assert!(err.to_string().contains("test-panic"), "{err}");
        // The thread lives on for the next job.
        assert_eq!(run("test-panic", || 7).await.ok(), Some(7));
    }

    #[tokio::test]
    async fn jobs_of_one_name_share_one_long_lived_thread() {
        let id = |_: ()| format!("{:?}", std::thread::current().id());
        let a = run("test-shared", move || id(())).await.expect("runs");
        let b = run("test-shared", move || id(())).await.expect("runs");
        assert_eq!(a, b, "one thread for every job of a name");
    }
}
