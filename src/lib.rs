//! cloud-assistant-exporter: a Prometheus exporter for Alibaba Cloud ECS
//! Cloud Assistant. The binary is a thin shell over this library, so the
//! tests and the benchmark run the same code.

pub mod api;
pub mod client;
pub mod clock;
pub mod credentials;
pub mod error;
pub mod rng;
pub mod secret;
pub mod signer;
pub mod simulator;
