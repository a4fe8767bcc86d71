//! The page: when a region's walk ends, only that region's pieces are
//! rendered (off the async workers, on the long-lived render thread), and
//! the page is the list of every region's pieces, swapped in whole. No
//! other region is rendered again, and nothing waits for any other region.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::Collector;
use super::state::State;
use crate::render::{Deflater, RegionPieces, assemble, render_region};
use crate::snapshot::{RegionKey, RegionState, Source};

/// Every region's last rendered pieces, and which read of its state they
/// were rendered from.
#[derive(Default)]
pub(super) struct PieceStore {
    regions: BTreeMap<RegionKey, (u64, Arc<RegionPieces>)>,
    /// Kept between renders: a compressor's state is large to set up.
    deflater: Option<Deflater>,
}

impl Collector {
    /// Renders the pieces of `keys` from their state now, and swaps in the
    /// page made of every region's pieces. A region no longer on the page
    /// loses its pieces.
    pub(super) async fn publish(&self, keys: Vec<RegionKey>) {
        let (read, states) = {
            let mut st = self.state.lock().await;
            st.reads += 1;
            let states: Vec<_> = keys
                .into_iter()
                .map(|k| {
                    let state = st.snapshot.regions.get(&k).cloned();
                    (k, state)
                })
                .collect();
            (st.reads, states)
        };
        // The region's last pieces (their chunks are reused where the
        // text is the same) and the kept compressor, in one look.
        let (previous, deflater): (Vec<Option<Arc<RegionPieces>>>, _) = {
            let mut store = self.pieces.lock().unwrap_or_else(|e| e.into_inner());
            let previous = states
                .iter()
                .map(|(k, _)| store.regions.get(k).map(|(_, p)| Arc::clone(p)))
                .collect();
            (previous, store.deflater.take())
        };
        let (tags, mode) = (self.tags.clone(), self.opts.state_sets);
        let t0 = Instant::now();
        let rendered = crate::low_priority::run("render", move || {
            let mut deflater = deflater.unwrap_or_default();
            let mut out = Vec::with_capacity(states.len());
            for ((key, state), prev) in states.into_iter().zip(previous) {
                let pieces = state
                    .as_ref()
                    .map(|s| render_region(&key, s, &tags, mode, prev.as_deref(), &mut deflater));
                out.push((key, state, pieces));
            }
            (out, deflater)
        })
        .await;
        let (rendered, deflater) = match rendered {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "rendering failed; serving the previous page");
                return;
            }
        };
        let render_secs = t0.elapsed().as_secs_f64();
        // The fleet's own series (rounds, last collection) as of now, and
        // the swap, under the state lock: pages are swapped in the order
        // their contents were read.
        let mut st = self.state.lock().await;
        st.round_render += render_secs;
        let mut store = self.pieces.lock().unwrap_or_else(|e| e.into_inner());
        store.deflater = Some(deflater);
        let (mut fresh, mut reused) = (0, 0);
        for (key, state, pieces) in rendered {
            st.first_walks.remove(&key);
            match pieces {
                Some(Ok(p)) => {
                    fresh += p.fresh;
                    reused += p.reused;
                    let newer = store.regions.get(&key).is_none_or(|(r, _)| *r < read);
                    if newer {
                        if let Some(rendered) = &state {
                            release_rows(&mut st, &key, rendered);
                        }
                        store.regions.insert(key, (read, Arc::new(p)));
                    }
                }
                Some(Err(e)) => {
                    tracing::error!(account = %key.account, region = %key.region, error = %e, "rendering the region failed; its previous series stay")
                }
                // The region was not on the page at this read; pieces a
                // later read stored (it came back since) stay.
                None => {
                    if store.regions.get(&key).is_some_and(|(r, _)| *r < read) {
                        store.regions.remove(&key);
                    }
                }
            }
        }
        store
            .regions
            .retain(|k, _| st.snapshot.regions.contains_key(k));
        match assemble(
            store.regions.values().map(|(_, p)| &**p),
            &st.snapshot,
            self.opts.state_sets,
        ) {
            Ok(page) => {
                tracing::debug!(
                    chunks_fresh = fresh,
                    chunks_reused = reused,
                    render_seconds = format!("{render_secs:.3}"),
                    page_bytes = page.plain_len,
                    gzip_bytes = page.gzip_len(),
                    "page published"
                );
                self.page.store(Arc::new(page));
            }
            Err(e) => {
                tracing::error!(error = %e, "assembling the page failed; serving the previous one")
            }
        }
        self.check_ready(&st);
    }

    /// Turns `/ready` on once every account has listed its regions and each
    /// region known then has ended its first walk.
    pub(super) fn check_ready(&self, st: &State) {
        if !self.ready.load(std::sync::atomic::Ordering::Acquire) {
            let names: Vec<String> = self.accounts().into_iter().map(|a| a.name).collect();
            if st.ready(&names) {
                self.ready.store(true, std::sync::atomic::Ordering::Release);
            }
        }
    }

    /// Drops the pieces of regions no longer on the page; true if any went.
    pub(super) async fn prune_pieces(&self) -> bool {
        let st = self.state.lock().await;
        let mut store = self.pieces.lock().unwrap_or_else(|e| e.into_inner());
        let before = store.regions.len();
        store
            .regions
            .retain(|k, _| st.snapshot.regions.contains_key(k));
        store.regions.len() != before
    }
}

/// Lets go of the side walks' rows that `rendered` held and the state still
/// holds: their pieces now on the page are all that is read of them. Rows
/// that came in since (a newer walk landed during the render) stay, for
/// their own render.
fn release_rows(st: &mut State, key: &RegionKey, rendered: &RegionState) {
    let Some(entry) = st.snapshot.regions.get_mut(key) else {
        return;
    };
    for source in Source::RELEASED {
        let same = match source {
            Source::Info => release(&mut entry.info, &rendered.info),
            Source::Managed => release(&mut entry.managed, &rendered.managed),
            Source::Activations => release(&mut entry.activations, &rendered.activations),
            Source::Kept => false,
        };
        if same {
            entry.rendered.insert(source);
        }
    }
}

/// Empties `now` if it is the very list that was rendered; true if so.
fn release<T>(now: &mut Option<Arc<T>>, rendered: &Option<Arc<T>>) -> bool {
    match (now.as_ref(), rendered) {
        (Some(a), Some(b)) if Arc::ptr_eq(a, b) => {
            *now = None;
            true
        }
        _ => false,
    }
}
