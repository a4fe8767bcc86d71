//! cloud-assistant-exporter: a Prometheus exporter for Alibaba Cloud ECS
//! Cloud Assistant. The binary is a thin shell over this library, so the
//! tests and the benchmark run the same code.

// First, so its name macros are in scope in every module after it.
#[macro_use]
pub mod own_metrics;

pub mod accounts;
pub mod api;
pub mod app;
pub mod call_lanes;
pub mod client;
pub mod clock;
pub mod collector;
pub mod config;
pub mod credentials;
pub mod error;
pub mod intern;
pub mod logging;
pub mod low_priority;
pub mod render;
pub mod rng;
pub mod secret;
pub mod server;
pub mod signer;
pub mod simulator;
pub mod snapshot;
pub mod validate;
