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

/// The gateway in-process over the network that `file` describes: the sample upstream, the
/// `[[services]]` that `services` writes for the upstream's address, `gateway` lines added to
/// `[gateway]`, a memory store, and (`follow`) the settlement tracker. Everything runs until
/// `stop` is cancelled; the settings file goes into `dir`. Returns the gateway's address.
pub async fn start_gateway(
    file: &std::path::Path,
    dir: &std::path::Path,
    services: impl FnOnce(std::net::SocketAddr) -> String,
    clock: std::sync::Arc<dyn tapgate::clock::Clock>,
    follow: bool,
    gateway: &str,
    stop: &tokio_util::sync::CancellationToken,
) -> (std::net::SocketAddr, tapgate::app::gateway::Built) {
    use std::sync::Arc;
    use tokio::net::TcpListener;
    let up = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    tokio::spawn(tapgate::gateway::sample::run(up, stop.clone()));
    let toml = format!(
        "[store]\nbackend = \"memory\"\n[network]\nfile = \"{}\"\n[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n{gateway}\n{}",
        file.display(),
        services(up_addr)
    );
    let cfg = dir.join("tapgate.toml");
    std::fs::write(&cfg, toml).unwrap();
    let settings = tapgate::config::Sources {
        file: Some(cfg),
        overrides: vec![],
        env: false,
    }
    .load()
    .unwrap();
    let built = tapgate::app::gateway::build(&settings, clock)
        .await
        .unwrap();
    if follow {
        let t = Arc::clone(&built.tracker);
        let lnd = built.lnd.clone();
        let s = stop.clone();
        tokio::spawn(async move { t.follow(lnd, s).await });
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tapgate::gateway::server::run(
        listener,
        Arc::clone(&built.gateway),
        stop.clone(),
        tokio_util::task::TaskTracker::new(),
    ));
    (addr, built)
}
