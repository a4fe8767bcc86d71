//! The side walks: a region's calls beside its walk, each at its own
//! interval — instance names, zones, types and tags (DescribeInstances),
//! activation codes (DescribeActivations), failed command invocations and
//! scheduled tasks (DescribeInvocations). Each runs as one walk of its own,
//! paced by the same client limits: a region's walk never waits for it, and
//! its result is taken in when it comes. The hybrid managed instances share
//! the schedule and the taking in, but are walked inside the region's walk
//! when due (`RegionTask::managed`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::api::invocations::{Filter, Invocation, walk_invocations};
use crate::api::{self, Activation, InstanceInfo, ManagedInstance};
use crate::client::Client;
use crate::error::ApiError;
use crate::snapshot::{RegionKey, Source};

/// The side walks of a region, by what they fill in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum SideWalk {
    Info,
    Managed,
    Activations,
    /// Failed command invocations and scheduled tasks.
    Invocations,
}

impl SideWalk {
    pub(super) fn action(self) -> &'static str {
        match self {
            SideWalk::Info => api::instances::ACTION,
            SideWalk::Managed => api::managed_instances::ACTION,
            SideWalk::Activations => api::activations::ACTION,
            SideWalk::Invocations => api::invocations::ACTION,
        }
    }

    /// What its families are rendered from: the invocations' counts are
    /// kept (the next walk adds to them), the other walks' rows let go.
    pub(super) fn source(self) -> Source {
        match self {
            SideWalk::Info => Source::Info,
            SideWalk::Managed => Source::Managed,
            SideWalk::Activations => Source::Activations,
            SideWalk::Invocations => Source::Kept,
        }
    }

    /// What is missing from the page without it.
    pub(super) fn what(self) -> &'static str {
        match self {
            SideWalk::Info => "instance names, zones, types and tags",
            SideWalk::Managed => "hybrid managed instances",
            SideWalk::Activations => "activation codes",
            SideWalk::Invocations => "failed command invocations and scheduled tasks",
        }
    }
}

#[derive(Debug)]
pub(super) enum SideData {
    Info(Vec<InstanceInfo>),
    Managed(Vec<ManagedInstance>),
    Activations(Vec<Activation>),
    Invocations(InvocationWalk),
}

/// The three filtered walks of DescribeInvocations in a region.
#[derive(Debug, Default)]
pub(super) struct InvocationWalk {
    /// One-off invocations that failed on every instance.
    pub(super) failed: Vec<Invocation>,
    /// One-off invocations that failed on some.
    pub(super) partial: Vec<Invocation>,
    /// Scheduled tasks.
    pub(super) timed: Vec<Invocation>,
    /// Filters whose walk stopped at the page cap.
    pub(super) truncated: Vec<Filter>,
}

/// The three walks one after another (a few pages each: no need to burst).
async fn invocations(
    client: &Client,
    region: &str,
    max_pages: usize,
) -> Result<InvocationWalk, ApiError> {
    let mut w = InvocationWalk::default();
    for f in Filter::ALL {
        let pages = walk_invocations(client, region, f, max_pages).await?;
        if pages.truncated {
            w.truncated.push(f);
        }
        let list = match f {
            Filter::Failed => &mut w.failed,
            Filter::PartialFailed => &mut w.partial,
            Filter::Timed => &mut w.timed,
        };
        *list = pages.invocations;
    }
    Ok(w)
}

#[derive(Debug)]
pub(super) struct SideResult {
    pub(super) key: RegionKey,
    pub(super) walk: SideWalk,
    pub(super) result: Result<SideData, ApiError>,
}

/// Walks in flight and the finished ones waiting to be taken in.
#[derive(Default)]
pub(super) struct SideWalks {
    in_flight: Mutex<HashSet<(RegionKey, SideWalk)>>,
    done: Mutex<Vec<SideResult>>,
    /// Woken when a walk finishes.
    pub(super) finished: Notify,
}

impl SideWalks {
    /// Starts the walk of `walk` in the region unless one is still running.
    pub(super) fn start(
        self: &Arc<Self>,
        key: RegionKey,
        client: Arc<Client>,
        walk: SideWalk,
        invocation_pages: usize,
    ) {
        {
            let mut running = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if !running.insert((key.clone(), walk)) {
                return;
            }
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let region = key.region.as_str();
            let result = match walk {
                SideWalk::Info => api::walk_instance_info(&client, region)
                    .await
                    .map(SideData::Info),
                // Walked inside the region's walk; started here only if a
                // caller ever asks for it on its own.
                SideWalk::Managed => api::walk_managed_instances(&client, region)
                    .await
                    .map(SideData::Managed),
                SideWalk::Activations => api::walk_activations(&client, region)
                    .await
                    .map(SideData::Activations),
                SideWalk::Invocations => invocations(&client, region, invocation_pages)
                    .await
                    .map(SideData::Invocations),
            };
            // It counts as running until it is taken in (and its next
            // time is set), so no walk in between starts it again.
            me.done
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(SideResult { key, walk, result });
            me.finished.notify_one();
        });
    }

    /// The walks finished since the last call; from now on they no longer
    /// count as running.
    pub(super) fn take(&self) -> Vec<SideResult> {
        let done = std::mem::take(&mut *self.done.lock().unwrap_or_else(|e| e.into_inner()));
        let mut running = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        for r in &done {
            running.remove(&(r.key.clone(), r.walk));
        }
        done
    }
}
