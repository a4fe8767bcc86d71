//! Reloading the configuration files (`POST /-/reload`, `SIGHUP`): one
//! reload at a time, at most one start a second, and a caller always gets
//! the result of a reload that started after it asked: a storm of requests
//! costs about one reload a second, everyone who asked meanwhile shares its
//! answer, and nobody is told about files read before their change.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

use super::ServerOptions;
use super::web_config::WebConfigSource;

/// What a reload hook returns.
pub type ReloadFuture =
    Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'static>>;

/// Reloads what the server does not own (the accounts of `--config.file`);
/// the error is the reason, one line.
#[derive(Clone)]
pub struct ReloadHook(pub Arc<dyn Fn() -> ReloadFuture + Send + Sync>);

impl std::fmt::Debug for ReloadHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReloadHook")
    }
}

type Outcome = Result<String, String>;

/// Single flight for reloads.
#[derive(Debug)]
pub struct ReloadGate {
    /// Requests so far; each caller's number is its ticket.
    asked: AtomicU64,
    /// Held by the reload that runs.
    running: Arc<tokio::sync::Mutex<()>>,
    /// The last reload's result, with the highest ticket it answers (every
    /// ticket issued before it started).
    done: Arc<watch::Sender<(u64, Option<Outcome>)>>,
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
    pub async fn run<F>(&self, work: F) -> Outcome
    where
        F: FnOnce() -> Pin<Box<dyn std::future::Future<Output = Outcome> + Send + 'static>>,
    {
        let ticket = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        let mut done = self.done.subscribe();
        let mut work = Some(work);
        loop {
            {
                let last = done.borrow_and_update();
                if last.0 >= ticket
                    && let Some(outcome) = &last.1
                {
                    return outcome.clone();
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
                    return Err("reload: internal error (ran twice)\n".into());
                };
                let job = work();
                let tx = Arc::clone(&self.done);
                let task = tokio::spawn(async move {
                    let outcome = match tokio::spawn(job).await {
                        Ok(o) => o,
                        Err(e) => Err(format!("the reload stopped: {e}\n")),
                    };
                    // Free before telling: a waiter that wakes finds the
                    // lock open.
                    drop(guard);
                    tx.send_if_modified(|last| {
                        if answers > last.0 {
                            *last = (answers, Some(outcome.clone()));
                            true
                        } else {
                            false
                        }
                    });
                    outcome
                });
                return task
                    .await
                    .unwrap_or_else(|e| Err(format!("the reload stopped: {e}\n")));
            }
            if done.changed().await.is_err() {
                return Err("reload: the server is shutting down\n".into());
            }
        }
    }
}

/// Re-reads the web config and runs the reload hook (`POST /-/reload`,
/// `SIGHUP`), each even when the other fails: a line per part, `Err` when
/// any part failed (what failed keeps its last good version).
pub async fn reload(opts: &ServerOptions) -> Outcome {
    let web = opts.web.clone();
    let hook = opts.reload_hook.clone();
    opts.reloads
        .run(move || Box::pin(reload_now(web, hook)))
        .await
}

async fn reload_now(web: Option<Arc<WebConfigSource>>, hook: Option<ReloadHook>) -> Outcome {
    let mut out = String::new();
    let mut ok = true;
    if let Some(web) = &web {
        match web.reload() {
            Ok(()) => out.push_str("web config reloaded\n"),
            Err(e) => {
                ok = false;
                out.push_str(&format!(
                    "web config not reloaded, the last good one stays: {e}\n"
                ));
            }
        }
    }
    if let Some(hook) = &hook {
        match (hook.0)().await {
            Ok(()) => out.push_str("accounts reloaded\n"),
            Err(e) => {
                ok = false;
                out.push_str(&format!(
                    "accounts not reloaded, the running ones stay: {e}\n"
                ));
            }
        }
    }
    if out.is_empty() {
        out.push_str("nothing to reload: no configuration file is in use\n");
    }
    if ok { Ok(out) } else { Err(out) }
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

        fn job(self: &Arc<Self>) -> Pin<Box<dyn std::future::Future<Output = Outcome> + Send>> {
            let me = Arc::clone(self);
            Box::pin(async move {
                let n = me.runs.fetch_add(1, Ordering::SeqCst) + 1;
                let now = me.at_once.fetch_add(1, Ordering::SeqCst) + 1;
                me.most_at_once.fetch_max(now, Ordering::SeqCst);
                me.release.acquire().await.expect("open").forget();
                me.at_once.fetch_sub(1, Ordering::SeqCst);
                Ok(format!("run {n}"))
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
        assert_eq!(first.await.expect("task"), Ok("run 1".into()));
        until("the second reload runs", || {
            g.runs.load(Ordering::SeqCst) == 2
        })
        .await;
        g.release.add_permits(1);
        for l in later {
            assert_eq!(l.await.expect("task"), Ok("run 2".into()));
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
        assert_eq!(next.await.expect("task"), Ok("run 2".into()));
        assert_eq!(g.most_at_once.load(Ordering::SeqCst), 1);
    }
}
