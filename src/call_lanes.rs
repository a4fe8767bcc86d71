//! Independent calls (the later pages of a numbered walk, plugin discovery
//! calls, plugin sweeps) run in a few lanes rather than all at once: the
//! API's rate limits and the machine's CPU both prefer them spread. A leaf
//! module: the walkers and the collector's plan both use it.

use std::future::Future;

/// Single calls that do not depend on each other (the later pages of a
/// numbered walk, discovery calls) run in this many lanes at least.
pub const MIN_LANES: usize = 1;
/// And in this many at most.
pub const MAX_LANES: usize = 64;

/// Lanes for `calls` independent calls so that they take about half as long
/// as a NextToken walk of `walk_pages` pages of the same region, which runs
/// anyway: the calls stay off the cycle's critical path without arriving as
/// one burst of hundreds (the API's rate limits and the machine's CPU both
/// prefer them spread).
pub fn lanes_for(calls: usize, walk_pages: usize) -> usize {
    (calls * 2)
        .div_ceil(walk_pages.max(1))
        .clamp(MIN_LANES, MAX_LANES)
}

/// Runs `call` on every item, at most `lanes` at once (each in its own task),
/// and returns the results in the items' order. Stops at the first error (the
/// calls still in flight are dropped); a task that did not finish becomes
/// `failed(reason)`.
pub async fn in_lanes<I, T, E, F, Fut>(
    items: impl IntoIterator<Item = I>,
    lanes: usize,
    call: F,
    failed: impl Fn(String) -> E,
) -> Result<Vec<T>, E>
where
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let mut items = items.into_iter().enumerate();
    let mut set = tokio::task::JoinSet::new();
    let mut done: Vec<(usize, T)> = Vec::new();
    loop {
        while set.len() < lanes.max(1) {
            let Some((k, item)) = items.next() else { break };
            let fut = call(item);
            set.spawn(async move { (k, fut.await) });
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let (k, res) = joined.map_err(|e| failed(format!("task failed: {e}")))?;
        done.push((k, res?));
    }
    done.sort_by_key(|(k, _)| *k);
    Ok(done.into_iter().map(|(_, t)| t).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn lanes_keep_single_calls_within_half_a_walk() {
        // Later pages of a numbered walk: as many as the agents' walk.
        assert_eq!(lanes_for(799, 800), 2);
        // 330 discovery calls beside an 800-page walk.
        assert_eq!(lanes_for(330, 800), 1);
        // 4 800 calls: 12 lanes take 400 rounds, half of the walk.
        assert_eq!(lanes_for(4800, 800), 12);
        assert_eq!(lanes_for(1_000_000, 10), MAX_LANES);
        assert_eq!(lanes_for(0, 800), MIN_LANES);
    }

    #[tokio::test]
    async fn in_lanes_bounds_calls_in_flight_and_keeps_order() {
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let got = in_lanes(
            0..40u64,
            3,
            |n| {
                let (now, peak) = (Arc::clone(&now), Arc::clone(&peak));
                async move {
                    let c = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(c, Ordering::SeqCst);
                    // Later items finish first.
                    tokio::time::sleep(Duration::from_millis(40 - n)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, String>(n * 10)
                }
            },
            |e| e,
        )
        .await
        .expect("all succeed");
        assert_eq!(got, (0..40).map(|n| n * 10).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn in_lanes_stops_at_the_first_error() {
        let started = Arc::new(AtomicUsize::new(0));
        let res = in_lanes(
            0..100u32,
            2,
            |n| {
                let started = Arc::clone(&started);
                async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    if n == 5 {
                        Err(format!("page {n}"))
                    } else {
                        Ok(n)
                    }
                }
            },
            |e| e,
        )
        .await;
        assert_eq!(res, Err("page 5".to_string()));
        assert!(
            started.load(Ordering::SeqCst) < 10,
            "no calls after the error"
        );
    }
}
