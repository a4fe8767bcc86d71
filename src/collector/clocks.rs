//! The clocks: one task per account lists its regions (DescribeRegions) on
//! its own timer, and one task per (account, region) walks that region on
//! its own. A walk starts when the previous one has ended and the interval
//! since that one's start has passed, so a slow walk delays only its own
//! next walk; an account whose endpoint never answers holds back no other.
//! The side walks beside them (instance info, activation codes, invocations)
//! are taken in by one more task as they finish.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::Collector;
use super::region;
use crate::accounts::Account;
use crate::client::Client;
use crate::snapshot::RegionKey;

/// Tasks that end when this is dropped.
#[derive(Default)]
struct Tasks(HashMap<String, AbortHandle>);

impl Tasks {
    fn start(&mut self, name: String, task: impl Future<Output = ()> + Send + 'static) {
        if let Some(old) = self.0.insert(name, tokio::spawn(task).abort_handle()) {
            old.abort();
        }
    }

    fn stop(&mut self, name: &str) {
        if let Some(t) = self.0.remove(name) {
            t.abort();
        }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in self.0.values() {
            t.abort();
        }
    }
}

/// Keeps one account clock per account the collector has, restarting an
/// account's clock when its client changes (a reload rebuilt it), until
/// `shutdown`.
pub(super) async fn supervise(c: Arc<Collector>, mut shutdown: watch::Receiver<bool>) {
    let mut accounts: HashMap<String, Arc<Client>> = HashMap::new();
    let mut clocks = Tasks::default();
    let mut side = Tasks::default();
    side.start("".into(), take_side_walks(Arc::clone(&c)));
    loop {
        let now: Vec<Account> = c.accounts();
        let mut gone = Vec::new();
        accounts.retain(|name, client| {
            let keep = now
                .iter()
                .any(|a| &a.name == name && Arc::ptr_eq(&a.client, client));
            if !keep {
                gone.push(name.clone());
            }
            keep
        });
        for name in &gone {
            clocks.stop(name);
        }
        let removed: Vec<&String> = gone
            .iter()
            .filter(|n| !now.iter().any(|a| &a.name == *n))
            .collect();
        let any_removed = !removed.is_empty();
        {
            let mut st = c.state.lock().await;
            for name in removed {
                tracing::info!(account = %name, "account removed; its regions leave the page");
                st.remove_account(name);
            }
            // With no account at all, the exporter is ready at once.
            c.check_ready(&st);
        }
        for a in now {
            if accounts.contains_key(&a.name) {
                continue;
            }
            accounts.insert(a.name.clone(), Arc::clone(&a.client));
            let name = a.name.clone();
            clocks.start(name, account_clock(Arc::clone(&c), a));
        }
        if any_removed {
            // Their regions leave the page.
            c.publish(Vec::new()).await;
        }
        tokio::select! {
            _ = c.accounts_changed.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One account: its regions listed every interval (never blocking their
/// walks: regions from the last good answer keep walking), and a clock per
/// region it has.
async fn account_clock(c: Arc<Collector>, account: Account) {
    let mut regions = Tasks::default();
    loop {
        let started = Instant::now();
        let known = {
            let st = c.state.lock().await;
            st.known_regions.contains_key(&account.name)
        };
        let list = tokio::time::timeout(
            c.opts.region_timeout,
            region::list_regions(&account, &c.opts.regions, known),
        )
        .await
        .ok();
        let (keys, gone) = {
            let mut st = c.state.lock().await;
            let now = c.clock.now();
            let keys = c.account_regions(&mut st, &account, list.as_ref(), now);
            let gone: Vec<RegionKey> = st
                .active
                .iter()
                .filter(|k| k.account == account.name && !keys.contains(k))
                .cloned()
                .collect();
            st.set_active(Some(&account.name), keys.clone());
            c.check_ready(&st);
            (keys, gone)
        };
        for k in &gone {
            tracing::info!(account = %k.account, region = %k.region, "no longer walking the region");
            regions.stop(&k.region);
        }
        for k in keys {
            if !regions.0.contains_key(&k.region) {
                let task = region_clock(Arc::clone(&c), k.clone(), Arc::clone(&account.client));
                regions.start(k.region.clone(), task);
            }
        }
        if !gone.is_empty() {
            c.publish(gone).await;
        }
        tokio::time::sleep_until(started + c.opts.interval).await;
    }
}

/// One region: a walk, then the next once the interval since this one's
/// start has passed (at once if it took longer).
async fn region_clock(c: Arc<Collector>, key: RegionKey, client: Arc<Client>) {
    loop {
        let started = Instant::now();
        let now = c.clock.now();
        c.walk_region(&key, &client, now).await;
        tokio::time::sleep_until(started + c.opts.interval).await;
    }
}

/// Takes in the side walks as they finish, and renders their regions.
async fn take_side_walks(c: Arc<Collector>) {
    loop {
        c.side_walks.finished.notified().await;
        let changed = {
            let mut st = c.state.lock().await;
            c.take_side_walks(&mut st, c.clock.now(), false)
        };
        if !changed.is_empty() {
            c.publish(changed).await;
        }
    }
}
