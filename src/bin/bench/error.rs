//! Why a run of the benchmark could not be measured.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("simulator or port: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot start {bin}: {source}")]
    Start { bin: String, source: std::io::Error },
    #[error("the exporter has no stderr to read")]
    NoStderr,
    #[error("no cycle finished within {0:?}")]
    NoCycle(Duration),
    #[error("the exporter exited")]
    Exited,
    #[error("scrape: {0}")]
    Http(#[from] reqwest::Error),
    #[error("a scraper task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}
