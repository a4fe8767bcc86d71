//! An ECS API simulator: a real HTTP server on loopback that answers the
//! exporter's actions for a seeded fleet, verifies every signature, pages with
//! opaque tokens and enforces the documented limits. The tests, the
//! benchmark and `--demo` run against it.
//!
//! Files import one way, with no circle: the leaves (`model`, `quirks`,
//! `reference`, `faults`, `http`, `invocations`, `latency`) import no other
//! file here;
//! `inventory` builds on the leaves, `fleet` on it, `state` on the fleet,
//! `auth`, `paging` and `identity_state` on `state`, the actions, `sts` and
//! `metadata` on those, and the two servers (`server`, `identity`) on top.
//! This file only declares and re-exports.

mod actions;
mod auth;
pub mod faults;
pub mod fleet;
pub mod http;
pub mod identity;
mod identity_state;
pub mod inventory;
pub mod invocations;
mod latency;
pub mod metadata;
mod model;
mod paging;
mod quirks;
pub mod reference;
mod server;
mod state;
pub mod sts;

pub use faults::{Faults, RegionFault};
pub use fleet::{Fleet, FleetConfig, HybridPaging, RegionSpec, SimActivation, SimManagedInstance};
pub use identity::IdentityServer;
pub use identity_state::{IdentityConfig, StsFault};
pub use server::Simulator;
pub use state::{DEFAULT_KEY_ID, DEFAULT_KEY_SECRET, InFlightGauge, SimKey, SimState};
