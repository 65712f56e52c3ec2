//! What several end-to-end suites share: starting a simnet and a gateway for one test, a
//! clock they share, and one HTTP request with its reply.

#![allow(clippy::unwrap_used, dead_code)]

use tapgate::clock::Clock as _;
use tapgate::simnet::model::SimnetConfig;
use tapgate::simnet::run::{RunOptions, RunningSimnet, start_with};

/// A default simnet on OS-chosen loopback ports in a fresh directory, kept as long as the
/// returned `TempDir` lives; stopped when the `RunningSimnet` is dropped or shut down.
pub async fn start_simnet() -> (RunningSimnet, tempfile::TempDir) {
    start_simnet_clocked(None).await
}

/// [`start_simnet`], reading time from `clock` when one is given (a test's clock, shared with
/// its gateway).
pub async fn start_simnet_clocked(
    clock: Option<std::sync::Arc<dyn tapgate::clock::Clock>>,
) -> (RunningSimnet, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut options = RunOptions::new(SimnetConfig::default());
    if let Some(clock) = clock {
        options.clock = clock;
    }
    let running = start_with(&dir.path().join("net"), options, std::future::pending())
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
    let store = "[store]\nbackend = \"memory\"";
    start_gateway_on(file, dir, services, clock, follow, gateway, store, stop).await
}

/// [`start_gateway`] with `store` as the settings' `[store]` table.
#[allow(clippy::too_many_arguments)]
pub async fn start_gateway_on(
    file: &std::path::Path,
    dir: &std::path::Path,
    services: impl FnOnce(std::net::SocketAddr) -> String,
    clock: std::sync::Arc<dyn tapgate::clock::Clock>,
    follow: bool,
    gateway: &str,
    store: &str,
    stop: &tokio_util::sync::CancellationToken,
) -> (std::net::SocketAddr, tapgate::app::gateway::Built) {
    use std::sync::Arc;
    use tokio::net::TcpListener;
    let up = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    tokio::spawn(tapgate::gateway::sample::run(up, stop.clone()));
    let toml = format!(
        "{store}\n[network]\nfile = \"{}\"\n[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n{gateway}\n{}",
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

/// The system clock moved forward by a settable offset, shared by simnet and the gateway: time
/// can jump (a quote or a token expiring, a UTC day passing) without sleeping, and otherwise
/// runs as the adapters' own checks expect (the tapd adapter compares a quote's expiry with the
/// system clock).
#[derive(Debug, Default)]
pub struct ShiftedClock {
    offset: std::sync::atomic::AtomicU64,
}

impl ShiftedClock {
    /// Jumps to `secs` (never behind the system clock).
    pub fn set(&self, secs: u64) {
        let now = tapgate::clock::SystemClock.now_unix();
        self.offset.store(
            secs.saturating_sub(now),
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    /// Moves forward by `secs`.
    pub fn advance(&self, secs: u64) {
        self.offset
            .fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
}

impl tapgate::clock::Clock for ShiftedClock {
    fn now_unix(&self) -> u64 {
        tapgate::clock::SystemClock.now_unix()
            + self.offset.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A response: its status, its headers, and its body as JSON (a JSON string if it is not JSON).
pub struct Reply {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: serde_json::Value,
}

/// Sends `request` over `client` and reads the whole reply.
pub async fn send(
    client: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<bytes::Bytes>,
    >,
    request: http::Request<http_body_util::Full<bytes::Bytes>>,
) -> Reply {
    use http_body_util::BodyExt;
    let resp = client.request(request).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
    });
    Reply {
        status,
        headers,
        body,
    }
}

/// The environment variable `var`, which a test of `what` needs (`hint`: where a value comes
/// from). Unset: None and a note that `what` is not tested, except under CI (`CI` set), where
/// that is a failure.
pub fn required_env(var: &str, hint: &str, what: &str) -> Option<String> {
    let Ok(value) = std::env::var(var) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs {what}: set {var} ({hint})"
        );
        eprintln!("{var} not set: {what} not tested");
        return None;
    };
    Some(value)
}

/// The test server's directory (`.ci/postgres start DIR`, which keeps its CA in DIR/ca.crt),
/// from `TAPGATE_TEST_POSTGRES_DIR`, which a test of `what` needs. Unset: None and a note,
/// except under CI (`CI` set), where that is a failure.
pub fn postgres_dir(what: &str) -> Option<std::path::PathBuf> {
    required_env(
        "TAPGATE_TEST_POSTGRES_DIR",
        "the DIR of .ci/postgres start DIR",
        what,
    )
    .map(std::path::PathBuf::from)
}

/// A database of its own on the PostgreSQL server `TAPGATE_TEST_POSTGRES_URL` names (`.ci/postgres
/// start DIR` prints one; `.ci/test` sets it), named `{prefix}_<random>`, as a `store.url`.
/// Without the variable: None and a note naming `what` is not tested, except under CI (`CI`
/// set), where that is a failure.
#[cfg(feature = "postgres")]
pub async fn fresh_postgres_database(prefix: &str, what: &str) -> Option<String> {
    use sqlx::Connection as _;
    use std::str::FromStr as _;
    let url = required_env(
        "TAPGATE_TEST_POSTGRES_URL",
        ".ci/postgres start DIR prints it",
        what,
    )?;
    let options = sqlx::postgres::PgConnectOptions::from_str(&url).unwrap();
    let mut admin = sqlx::postgres::PgConnection::connect_with(&options)
        .await
        .unwrap();
    let mut name = [0u8; 6];
    getrandom::fill(&mut name).unwrap();
    let db = format!("{prefix}_{}", hex::encode(name));
    sqlx::raw_sql(&format!("CREATE DATABASE {db}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    Some(format!("{base}/{db}"))
}
