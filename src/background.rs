//! Work that must not slow the serving of scrapes: rendering the next page
//! runs on a thread of its own at a lower CPU priority, so that when the
//! CPU is short, scrapes of the current page come first.

use thread_priority::{ThreadPriority, ThreadPriorityValue};

/// The niceness of background threads (0 is normal, 19 the lowest): low
/// enough that serving threads win the CPU, high enough that a busy
/// exporter still finishes its page within the cycle (about a tenth of a
/// core against each busy normal thread).
pub const NICE: i32 = 10;

/// Lowers the calling thread's priority to `NICE`. Lowering never needs
/// privileges; where the platform refuses, the thread just runs as before.
pub fn lower_priority() -> Result<(), String> {
    // The crate maps 0..=99 onto niceness 19..=-20: 22 is niceness 10.
    let value = ThreadPriorityValue::try_from(22u8).map_err(|e| e.to_string())?;
    thread_priority::set_current_thread_priority(ThreadPriority::Crossplatform(value))
        .map_err(|e| format!("cannot lower the thread priority: {e:?}"))
}

/// Runs `work` on a new thread named `name` at the background priority and
/// waits for its result without holding an async worker.
pub async fn run<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            if let Err(e) = lower_priority() {
                tracing::debug!(error = %e, "background thread keeps its priority");
            }
            // The receiver is gone only if the exporter is shutting down.
            let _ = tx.send(work());
        })
        .map_err(|e| format!("cannot start the {name} thread: {e}"))?;
    rx.await
        .map_err(|_| format!("the {name} thread stopped without a result"))
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
    async fn work_runs_at_the_background_niceness_and_returns_its_result() {
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
        assert!(err.contains("test-panic"), "{err}");
    }
}
