//! The clock of the simulator's injected latency. The runtime's timer wakes
//! a sleep on its next millisecond tick at the earliest, so a 30 ms latency
//! came out as 31.4 ms on average and a benchmark's chain of calls ran long
//! by that much. One thread of its own holds the deadlines and wakes each
//! sleeper when its time has come, to within the system timer's slack.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// One sleeper: its deadline, and the channel that wakes it.
struct Wake {
    at: Instant,
    seq: u64,
    tx: oneshot::Sender<()>,
}

impl PartialEq for Wake {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Wake {}

impl PartialOrd for Wake {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Wake {
    /// Reversed, so that the heap's top is the earliest deadline.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Hands deadlines to the clock's thread, which starts with the first
/// sleep and ends when this is dropped.
#[derive(Default)]
pub(super) struct LatencyClock {
    deadlines: OnceLock<mpsc::Sender<Wake>>,
    seq: std::sync::atomic::AtomicU64,
}

impl LatencyClock {
    /// Waits `length`, never less. Falls back to the runtime's timer if the
    /// clock's thread cannot be had.
    pub(super) async fn sleep(&self, length: Duration) {
        let at = Instant::now() + length;
        let (tx, rx) = oneshot::channel();
        let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sent = self
            .deadlines
            .get_or_init(spawn)
            .send(Wake { at, seq, tx })
            .is_ok();
        if !sent || rx.await.is_err() {
            tokio::time::sleep_until(at.into()).await;
        }
    }
}

/// The clock's thread: wakes each sleeper at its deadline, in order.
fn spawn() -> mpsc::Sender<Wake> {
    let (tx, rx) = mpsc::channel::<Wake>();
    let started = std::thread::Builder::new()
        .name("sim-latency".into())
        .spawn(move || {
            let mut heap = BinaryHeap::new();
            loop {
                let now = Instant::now();
                while heap.peek().is_some_and(|w: &Wake| w.at <= now) {
                    if let Some(w) = heap.pop() {
                        let _ = w.tx.send(());
                    }
                }
                let next = match heap.peek() {
                    Some(w) => rx.recv_timeout(w.at - now),
                    None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                };
                match next {
                    Ok(w) => heap.push(w),
                    Err(RecvTimeoutError::Timeout) => {}
                    // The simulator is gone: its sleepers fall back to the
                    // runtime's timer when their channel closes.
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        });
    // Without a thread the receiver is dropped here, every send fails and
    // sleeps use the runtime's timer.
    drop(started);
    tx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sleepers_wake_no_earlier_than_asked() {
        let clock = std::sync::Arc::new(LatencyClock::default());
        let mut tasks = Vec::new();
        // Asked in an order unlike their deadlines.
        for ms in [40u64, 5, 25, 15, 35, 10] {
            let clock = clock.clone();
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                clock.sleep(Duration::from_millis(ms)).await;
                (ms, t.elapsed())
            }));
        }
        for t in tasks {
            let (ms, slept) = t.await.expect("sleeper");
            assert!(
                slept >= Duration::from_millis(ms),
                "asked {ms} ms, woke after {slept:?}"
            );
        }
    }

    #[test]
    fn the_earliest_deadline_is_woken_first_and_ties_in_the_order_asked() {
        let t0 = Instant::now();
        let mut heap = BinaryHeap::new();
        for (seq, ms) in [(0, 40u64), (1, 5), (2, 25), (3, 5), (4, 10)] {
            let (tx, _rx) = oneshot::channel();
            heap.push(Wake {
                at: t0 + Duration::from_millis(ms),
                seq,
                tx,
            });
        }
        let mut order = Vec::new();
        while let Some(w) = heap.pop() {
            order.push(w.seq);
        }
        assert_eq!(order, vec![1, 3, 4, 2, 0]);
    }

    #[tokio::test]
    async fn a_zero_sleep_returns() {
        let clock = LatencyClock::default();
        clock.sleep(Duration::ZERO).await;
        clock.sleep(Duration::from_micros(1)).await;
    }
}
