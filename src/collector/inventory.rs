//! The slower walks: instance names, zones, types and tags
//! (DescribeInstances) and activation codes (DescribeActivations), every
//! `--collect.instance-info-interval`. Each runs as one walk of its own
//! beside the cycle, paced by the same client limits: a region's cycle never
//! waits for it, and its result is taken in when it comes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::api::{self, Activation, InstanceInfo, ManagedInstance};
use crate::client::Client;
use crate::error::ApiError;
use crate::snapshot::RegionKey;

/// The walks beside the main one, by what they fill in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Extra {
    Info,
    Managed,
    Activations,
}

impl Extra {
    pub(super) fn action(self) -> &'static str {
        match self {
            Extra::Info => api::instances::ACTION,
            Extra::Managed => api::managed_instances::ACTION,
            Extra::Activations => api::activations::ACTION,
        }
    }

    /// What is missing from the page without it.
    pub(super) fn what(self) -> &'static str {
        match self {
            Extra::Info => "instance names, zones, types and tags",
            Extra::Managed => "hybrid managed instances",
            Extra::Activations => "activation codes",
        }
    }
}

#[derive(Debug)]
pub(super) enum ExtraData {
    Info(Vec<InstanceInfo>),
    Managed(Vec<ManagedInstance>),
    Activations(Vec<Activation>),
}

#[derive(Debug)]
pub(super) struct ExtraResult {
    pub(super) key: RegionKey,
    pub(super) extra: Extra,
    pub(super) result: Result<ExtraData, ApiError>,
}

/// Walks in flight and the finished ones waiting to be taken in.
#[derive(Default)]
pub(super) struct Background {
    in_flight: Mutex<HashSet<(RegionKey, Extra)>>,
    done: Mutex<Vec<ExtraResult>>,
    /// Woken when a walk finishes.
    pub(super) finished: Notify,
}

impl Background {
    /// Starts the walk of `extra` in the region unless one is still running.
    pub(super) fn start(self: &Arc<Self>, key: RegionKey, client: Arc<Client>, extra: Extra) {
        {
            let mut running = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if !running.insert((key.clone(), extra)) {
                return;
            }
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let region = key.region.as_str();
            let result = match extra {
                Extra::Info => api::walk_instance_info(&client, region)
                    .await
                    .map(ExtraData::Info),
                Extra::Managed => api::walk_managed_instances(&client, region)
                    .await
                    .map(ExtraData::Managed),
                Extra::Activations => api::walk_activations(&client, region)
                    .await
                    .map(ExtraData::Activations),
            };
            // Handed over before it stops counting as running, so a cycle
            // in between sees it one way or the other, never neither.
            let running = (key.clone(), extra);
            me.done
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(ExtraResult { key, extra, result });
            me.in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&running);
            me.finished.notify_one();
        });
    }

    /// The walks finished since the last call.
    pub(super) fn take(&self) -> Vec<ExtraResult> {
        std::mem::take(&mut *self.done.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
