//! The page: rendered from the snapshot off the async workers and swapped
//! in whole, as regions finish and at the end of every cycle.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Collector, CycleReport};
use crate::render::render;
use crate::snapshot::FleetSnapshot;

/// Renders within a cycle are at least this far apart, and at least this
/// many times the last render's wall time: a large fleet's page costs CPU.
const MIN_PUBLISH_GAP: Duration = Duration::from_secs(2);
const PUBLISH_GAP_RENDERS: u32 = 8;

impl Collector {
    /// The least time between two renders of a cycle.
    pub(super) fn publish_gap(&self) -> Duration {
        let last = *self.last_render.lock().unwrap_or_else(|e| e.into_inner());
        (last * PUBLISH_GAP_RENDERS).max(MIN_PUBLISH_GAP)
    }

    /// Renders the snapshot and swaps the page in (`cycle`: the final page
    /// of a cycle, logged). Rendering a large fleet takes a while: off the
    /// async workers and at a lower priority, so scrapes keep being answered
    /// at once meanwhile. The snapshot is cheap to clone (region data sits
    /// behind `Arc`s).
    pub(super) async fn publish(
        &self,
        snapshot: &FleetSnapshot,
        cycle: Option<(&CycleReport, Instant)>,
    ) {
        let hint = self.page.load().gzip_len();
        let (snap, mode) = (snapshot.clone(), self.opts.state_sets);
        let t0 = Instant::now();
        let rendered = crate::background::run("render", move || render(&snap, mode, hint))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        *self.last_render.lock().unwrap_or_else(|e| e.into_inner()) = t0.elapsed();
        match rendered {
            Ok(page) => {
                if let Some((report, cycle_start)) = cycle {
                    tracing::info!(
                        cycle = snapshot.cycles,
                        regions_ok = report.regions_ok,
                        regions_failed = report.regions_failed,
                        early_publishes = report.early_publishes,
                        duration_seconds = format!("{:.3}", snapshot.cycle_duration),
                        render_seconds = format!(
                            "{:.3}",
                            cycle_start.elapsed().as_secs_f64() - snapshot.cycle_duration
                        ),
                        page_bytes = page.plain_len,
                        gzip_bytes = page.gzip_len(),
                        "cycle finished"
                    );
                }
                self.page.store(Arc::new(page));
                if cycle.is_some() {
                    self.ready.store(true, Ordering::Release);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "rendering the page failed; serving the previous one")
            }
        }
    }
}
