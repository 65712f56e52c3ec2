//! What several end-to-end suites share: starting a simnet for one test.

#![allow(clippy::unwrap_used, dead_code)]

use tapgate::simnet::model::SimnetConfig;
use tapgate::simnet::run::{RunOptions, RunningSimnet, start_with};

/// A default simnet on OS-chosen loopback ports in a fresh directory, kept as long as the
/// returned `TempDir` lives; stopped when the `RunningSimnet` is dropped or shut down.
pub async fn start_simnet() -> (RunningSimnet, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let running = start_with(
        &dir.path().join("net"),
        RunOptions::new(SimnetConfig::default()),
        std::future::pending(),
    )
    .await
    .unwrap();
    (running, dir)
}
