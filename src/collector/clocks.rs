//! The clocks: one task per account lists its regions (DescribeRegions) on
//! its own timer, and one task per (account, region) walks that region on
//! its own. A walk starts when the previous one has ended and the interval
//! since that one's start has passed, so a slow walk delays only its own
//! next walk; an account whose endpoint never answers holds back no other.
//! The side walks beside them (instance info, activation codes, invocations)
//! are taken in by one more task as they finish.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

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
        for (rank, k) in keys.iter().enumerate() {
            if !regions.0.contains_key(&k.region) {
                let phase = phase(rank, keys.len(), c.opts.interval);
                let task = region_clock(
                    Arc::clone(&c),
                    k.clone(),
                    Arc::clone(&account.client),
                    phase,
                );
                regions.start(k.region.clone(), task);
            }
        }
        if !gone.is_empty() {
            c.publish(gone).await;
        }
        tokio::time::sleep_until(started + c.opts.interval).await;
    }
}

/// Where in the interval the walks of the `rank`-th of an account's `n`
/// regions fall: spread evenly over half of it, as Prometheus spreads its
/// scrapes, so that the regions of an account do not all call the API, and
/// render, at the same moments (a steadier request rate, and no region's
/// walk slowed by all the others' at once).
fn phase(rank: usize, n: usize, interval: Duration) -> Duration {
    let n = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    let rank = u32::try_from(rank).unwrap_or(u32::MAX).min(n - 1);
    interval / 2 / n * rank
}

/// One region: a walk, then the next once the interval since this one's
/// start has passed (at once if it took longer). The first walk starts at
/// once (a first page as soon as can be); the second waits `phase` more,
/// once, and the walks keep that place in the interval from then on.
async fn region_clock(c: Arc<Collector>, key: RegionKey, client: Arc<Client>, phase: Duration) {
    let mut delay = phase;
    loop {
        let started = Instant::now();
        let now = c.clock.now();
        c.walk_region(&key, &client, now).await;
        tokio::time::sleep_until(started + c.opts.interval + std::mem::take(&mut delay)).await;
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

#[cfg(test)]
mod tests {
    use super::phase;
    use std::time::Duration;

    #[test]
    fn regions_of_an_account_are_spread_over_half_the_interval() {
        let i = Duration::from_secs(60);
        let phases: Vec<Duration> = (0..4).map(|r| phase(r, 4, i)).collect();
        let s = Duration::from_secs;
        assert_eq!(
            phases,
            [
                s(0),
                s(7) + Duration::from_millis(500),
                s(15),
                s(22) + Duration::from_millis(500)
            ]
        );
        // One region walks on the interval alone; a rank past the list (a
        // region added since) stays within the spread.
        assert_eq!(phase(0, 1, i), Duration::ZERO);
        assert!(phase(9, 4, i) < i / 2);
        assert_eq!(phase(0, 0, i), Duration::ZERO);
    }
}
