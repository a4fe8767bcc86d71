//! The exporter's own metrics that live in a `prometheus` registry: API call
//! counters and durations, build info and the process metrics. Fleet series
//! are rendered straight from the snapshot (see `render`).

use prometheus::{IntGaugeVec, Opts, Registry};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REVISION: &str = env!("BUILD_REVISION");
pub const RUSTC: &str = env!("BUILD_RUSTC");

/// The text `--version` prints.
pub fn long_version() -> String {
    format!("{VERSION} (revision {REVISION}, {RUSTC})")
}

/// A registry with build info and process metrics only: with
/// `--config.file` each account registers API self-metrics of its own.
pub fn base_registry() -> prometheus::Result<Registry> {
    let registry = Registry::new();
    let build = IntGaugeVec::new(
        Opts::new(
            "aliyun_cloud_assistant_exporter_build_info",
            "Version, git revision and compiler of the exporter; always 1.",
        ),
        &["version", "revision", "rustc"],
    )?;
    build.with_label_values(&[VERSION, REVISION, RUSTC]).set(1);
    registry.register(Box::new(build))?;
    #[cfg(target_os = "linux")]
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    Ok(registry)
}
