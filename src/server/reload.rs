//! Reloading the configuration files (`POST /-/reload`, `SIGHUP`): one
//! reload at a time, at most one start a second, and a caller always gets
//! the result of a reload that started after it asked: a storm of requests
//! costs about one reload a second, everyone who asked meanwhile shares its
//! answer, and nobody is told about files read before their change. What a
//! reload re-reads is the hook's business (`app`); the answer is its
//! [`ReloadReport`].

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

use super::ServerOptions;

/// The parts of the configuration a reload re-reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReloadPart {
    /// `--web.config.file`.
    WebConfig,
    /// `--config.file`.
    Accounts,
}

/// Why one part did not apply; its last good version stays.
pub type PartFailure = Arc<dyn std::error::Error + Send + Sync>;

/// What a reload did, part by part: each part re-read, and its failure if
/// it did not apply. No part: no configuration file is in use.
#[derive(Clone, Debug, Default)]
pub struct ReloadReport {
    pub parts: Vec<(ReloadPart, Option<PartFailure>)>,
    /// The reload did not run to its end.
    pub stopped: Option<ReloadStopped>,
}

impl ReloadReport {
    /// Records a part's result.
    pub fn part<E>(&mut self, part: ReloadPart, result: Result<(), E>)
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        self.parts
            .push((part, result.err().map(|e| Arc::new(e) as PartFailure)));
    }

    /// Every part applied.
    pub fn ok(&self) -> bool {
        self.stopped.is_none() && self.parts.iter().all(|(_, failure)| failure.is_none())
    }

    fn stopped(why: ReloadStopped) -> Self {
        ReloadReport {
            parts: Vec::new(),
            stopped: Some(why),
        }
    }
}

/// A line per part, as `POST /-/reload` answers.
impl fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (part, failure) in &self.parts {
            match (part, failure) {
                (ReloadPart::WebConfig, None) => writeln!(f, "web config reloaded")?,
                (ReloadPart::WebConfig, Some(e)) => {
                    writeln!(f, "web config not reloaded, the last good one stays: {e}")?
                }
                (ReloadPart::Accounts, None) => writeln!(f, "accounts reloaded")?,
                (ReloadPart::Accounts, Some(e)) => {
                    writeln!(f, "accounts not reloaded, the running ones stay: {e}")?
                }
            }
        }
        if let Some(why) = &self.stopped {
            writeln!(f, "{why}")?;
        } else if self.parts.is_empty() {
            writeln!(f, "nothing to reload: no configuration file is in use")?;
        }
        Ok(())
    }
}

/// A reload that did not run to its end.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ReloadStopped {
    #[error("reload: internal error (ran twice)")]
    RanTwice,
    #[error("the reload stopped: {0}")]
    Task(Arc<tokio::task::JoinError>),
    #[error("reload: the server is shutting down")]
    ShuttingDown,
}

/// What a reload hook returns.
pub type ReloadFuture = Pin<Box<dyn std::future::Future<Output = ReloadReport> + Send + 'static>>;

/// The reload itself (the web config and the accounts), which the server
/// does not own: it only runs one at a time and answers with its report.
#[derive(Clone)]
pub struct ReloadHook(pub Arc<dyn Fn() -> ReloadFuture + Send + Sync>);

impl std::fmt::Debug for ReloadHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReloadHook")
    }
}

/// Single flight for reloads.
#[derive(Debug)]
pub struct ReloadGate {
    /// Requests so far; each caller's number is its ticket.
    asked: AtomicU64,
    /// Held by the reload that runs.
    running: Arc<tokio::sync::Mutex<()>>,
    /// The last reload's result, with the highest ticket it answers (every
    /// ticket issued before it started).
    done: Arc<watch::Sender<(u64, Option<ReloadReport>)>>,
    /// When the last reload started.
    last_start: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// The least time between two reloads' starts.
    spacing: std::time::Duration,
}

/// Reloads start at most this often, whoever asks.
pub const RELOAD_SPACING: std::time::Duration = std::time::Duration::from_secs(1);

impl Default for ReloadGate {
    fn default() -> Self {
        ReloadGate {
            asked: AtomicU64::new(0),
            running: Arc::default(),
            done: Arc::new(watch::Sender::new((0, None))),
            last_start: std::sync::Mutex::new(None),
            spacing: RELOAD_SPACING,
        }
    }
}

impl ReloadGate {
    /// Runs `work` unless a reload that started after this call answers it.
    /// The reload runs in a task of its own: a caller that goes away (a
    /// client hanging up, a signal loop moving on) never cuts it in half.
    pub async fn run<F>(&self, work: F) -> ReloadReport
    where
        F: FnOnce() -> ReloadFuture,
    {
        let ticket = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        let mut done = self.done.subscribe();
        let mut work = Some(work);
        loop {
            {
                let last = done.borrow_and_update();
                if last.0 >= ticket
                    && let Some(report) = &last.1
                {
                    return report.clone();
                }
            }
            if let Ok(guard) = Arc::clone(&self.running).try_lock_owned() {
                // A reload a moment ago: wait out the spacing (holding the
                // lock), and answer everyone who asks meanwhile too.
                let earliest = self
                    .last_start
                    .lock()
                    .ok()
                    .and_then(|l| *l)
                    .map(|t| t + self.spacing);
                if let Some(t) = earliest {
                    tokio::time::sleep_until(t).await;
                }
                if let Ok(mut l) = self.last_start.lock() {
                    *l = Some(tokio::time::Instant::now());
                }
                // Every ticket issued so far was asked before this reload.
                let answers = self.asked.load(Ordering::SeqCst);
                let Some(work) = work.take() else {
                    return ReloadReport::stopped(ReloadStopped::RanTwice);
                };
                let job = work();
                let tx = Arc::clone(&self.done);
                let task = tokio::spawn(async move {
                    let report = match tokio::spawn(job).await {
                        Ok(r) => r,
                        Err(e) => ReloadReport::stopped(ReloadStopped::Task(Arc::new(e))),
                    };
                    // Free before telling: a waiter that wakes finds the
                    // lock open.
                    drop(guard);
                    tx.send_if_modified(|last| {
                        if answers > last.0 {
                            *last = (answers, Some(report.clone()));
                            true
                        } else {
                            false
                        }
                    });
                    report
                });
                return task
                    .await
                    .unwrap_or_else(|e| ReloadReport::stopped(ReloadStopped::Task(Arc::new(e))));
            }
            if done.changed().await.is_err() {
                return ReloadReport::stopped(ReloadStopped::ShuttingDown);
            }
        }
    }
}

/// Runs the reload hook (`POST /-/reload`, `SIGHUP`), one at a time; no
/// hook: nothing to reload.
pub async fn reload(opts: &ServerOptions) -> ReloadReport {
    let hook = opts.reload_hook.clone();
    opts.reloads
        .run(move || match hook {
            Some(hook) => (hook.0)(),
            None => Box::pin(std::future::ready(ReloadReport::default())),
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// A reload that waits for the test to let it finish and answers with
    /// its own number.
    struct Gated {
        runs: AtomicUsize,
        at_once: AtomicUsize,
        most_at_once: AtomicUsize,
        release: tokio::sync::Semaphore,
    }

    impl Gated {
        fn new() -> Arc<Self> {
            Arc::new(Gated {
                runs: AtomicUsize::new(0),
                at_once: AtomicUsize::new(0),
                most_at_once: AtomicUsize::new(0),
                release: tokio::sync::Semaphore::new(0),
            })
        }

        fn job(self: &Arc<Self>) -> ReloadFuture {
            let me = Arc::clone(self);
            Box::pin(async move {
                let n = me.runs.fetch_add(1, Ordering::SeqCst) + 1;
                let now = me.at_once.fetch_add(1, Ordering::SeqCst) + 1;
                me.most_at_once.fetch_max(now, Ordering::SeqCst);
                me.release.acquire().await.expect("open").forget();
                me.at_once.fetch_sub(1, Ordering::SeqCst);
                // The run's number, told by how many parts it reports.
                let mut report = ReloadReport::default();
                for _ in 0..n {
                    report.part::<std::io::Error>(ReloadPart::Accounts, Ok(()));
                }
                report
            })
        }
    }

    async fn until(what: &str, check: impl Fn() -> bool) {
        for _ in 0..500 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never: {what}");
    }

    #[tokio::test]
    async fn waiters_share_the_reload_that_started_after_they_asked() {
        let gate = Arc::new(ReloadGate::default());
        let g = Gated::new();
        let call = |gate: &Arc<ReloadGate>, g: &Arc<Gated>| {
            let (gate, g) = (Arc::clone(gate), Arc::clone(g));
            tokio::spawn(async move { gate.run(|| g.job()).await })
        };
        let first = call(&gate, &g);
        until("the first reload runs", || {
            g.runs.load(Ordering::SeqCst) == 1
        })
        .await;
        // Asked while the first one runs: they must not get its result.
        let later: Vec<_> = (0..20).map(|_| call(&gate, &g)).collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        g.release.add_permits(1);
        assert_eq!(first.await.expect("task").parts.len(), 1);
        until("the second reload runs", || {
            g.runs.load(Ordering::SeqCst) == 2
        })
        .await;
        g.release.add_permits(1);
        for l in later {
            assert_eq!(l.await.expect("task").parts.len(), 2);
        }
        assert_eq!(g.runs.load(Ordering::SeqCst), 2);
        assert_eq!(g.most_at_once.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_caller_that_goes_away_does_not_cut_the_reload_short() {
        let gate = Arc::new(ReloadGate::default());
        let g = Gated::new();
        let (gate2, g2) = (Arc::clone(&gate), Arc::clone(&g));
        let gone = tokio::spawn(async move { gate2.run(|| g2.job()).await });
        until("the reload runs", || g.runs.load(Ordering::SeqCst) == 1).await;
        gone.abort();
        let (gate3, g3) = (Arc::clone(&gate), Arc::clone(&g));
        let next = tokio::spawn(async move { gate3.run(|| g3.job()).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(g.runs.load(Ordering::SeqCst), 1, "no second reload at once");
        g.release.add_permits(2);
        assert_eq!(next.await.expect("task").parts.len(), 2);
        assert_eq!(g.most_at_once.load(Ordering::SeqCst), 1);
    }
}
