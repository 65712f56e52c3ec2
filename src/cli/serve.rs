//! `tapgate serve`: run the gateway a seller runs, from `--config FILE`, or with `--simnet` a
//! whole first run in one process (the simulated network, a sample upstream API, and a
//! catalogue priced in dollars), until SIGINT or SIGTERM.
//!
//! The wiring is [`crate::app::gateway::build`]; this file starts the listeners and tasks under
//! one [`Shutdown`], prints where everything listens (JSON on stdout), and drains with the
//! configured bound when told to stop.
//!
//! With `--check` it serves nothing: it runs [`crate::check`] on the same settings and prints
//! one line per check (or, with `--json`, one JSON object), exiting non-zero if any failed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use tokio::net::TcpListener;

use super::error::CliError;
use crate::admin::grpc::AdminCredentials;
use crate::admin::{self, AdminState};
use crate::app::gateway::build;
use crate::clock::SystemClock;
use crate::config::Sources;
use crate::gateway;
use crate::shutdown::Shutdown;

/// `tapgate serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Start a simnet in this process and sell a sample API on it (a first run needing nothing
    /// else). Its directory is --simnet-dir.
    #[arg(long)]
    pub simnet: bool,
    /// The simnet's directory with --simnet (default: a fresh one under the system's temporary
    /// directory). A tapgate.toml for the run is written there.
    #[arg(long, value_name = "DIR", requires = "simnet")]
    pub simnet_dir: Option<PathBuf>,
    /// Check the configuration, the store, the seller's lnd and tapd, and that both listeners
    /// can be bound, then exit without serving: 0 if every check passed, 1 otherwise. The
    /// store's schema is created or upgraded, as serving would.
    #[arg(long, conflicts_with = "simnet")]
    pub check: bool,
    /// With --check: print the checks as one JSON object instead of lines.
    #[arg(long, requires = "check")]
    pub json: bool,
}

/// `tapgate serve --check`: the checks, printed; an error (exit 1) if any failed.
async fn run_check(args: &ServeArgs, sources: &Sources) -> Result<(), CliError> {
    // The same loading and validation as serving, so a bad value is the same error.
    let settings = sources.load()?;
    let checks = crate::check::run(&settings).await;
    let passed = checks.iter().all(crate::check::Check::passed);
    let rows = checks.iter().map(|c| {
        let (status, detail) = match &c.outcome {
            crate::check::Outcome::Ok(found) => ("ok", found.clone()),
            crate::check::Outcome::Skipped(why) => ("skip", why.clone()),
            crate::check::Outcome::Fail(e) => ("FAIL", super::report::error_lines(e).join(": ")),
        };
        (c.name.as_str(), status, detail)
    });
    if args.json {
        let checks: Vec<_> = rows
            .map(|(name, status, detail)| {
                json!({"check": name, "status": status.to_ascii_lowercase(), "detail": detail})
            })
            .collect();
        super::output::print_json(&json!({"ok": passed, "checks": checks}))?;
    } else {
        for (name, status, detail) in rows {
            println!("{status:<4} {name}: {detail}");
        }
    }
    if passed {
        Ok(())
    } else {
        Err(CliError::Missing(
            "serve --check: a check failed; its line on stdout says which, and what to do",
        ))
    }
}

/// The catalogue `serve --simnet` sells when the configuration lists no services: three
/// services on the built-in sample upstream, one per way of paying.
fn simnet_config(network_file: &Path, upstream: &str, listen: &str, admin: &str) -> String {
    format!(
        r#"# Written by `tapgate serve --simnet`: the simnet's network, and a sample API sold three ways.
data_dir = "{data}"

[store]
backend = "memory"

[network]
file = "{network}"

[gateway]
listen = "{listen}"
admin_listen = "{admin}"

# One cent a token, paid in sats: a plain Lightning invoice (bob pays it; one cent is below the
# 354 sat an asset HTLC must carry, so a stablecoin holder buys the prepaid echo instead).
[[services]]
name = "weather"
paths = ["/v1/weather", "/v1/weather/*"]
upstream = "http://{upstream}"
price_usd = "0.01"
settlement = "sats"
methods = ["GET"]

# Fifty cents a token in the USD stablecoin: above the asset HTLC minimum, so one asset invoice.
[[services]]
name = "time"
paths = ["/v1/time"]
upstream = "http://{upstream}"
price_usd = "0.50"
settlement = {{ asset = "default" }}
methods = ["GET"]

# Two cents a call from a prepaid dollar in the stablecoin: below the asset minimum.
[[services]]
name = "echo"
paths = ["/v1/echo"]
upstream = "http://{upstream}"
price_usd = "0.02"
settlement = {{ asset = "default" }}
methods = ["POST"]
small_price = "prepaid"
prepaid_usd = "1.00"
"#,
        network = network_file.display(),
        data = network_file.parent().unwrap_or(network_file).display(),
    )
}

/// Runs `tapgate serve`.
pub async fn run(args: &ServeArgs, sources: &Sources) -> Result<(), CliError> {
    if args.check {
        return run_check(args, sources).await;
    }
    let started = std::time::Instant::now();
    let shutdown = Shutdown::new();
    #[cfg(unix)]
    let mut signals = crate::shutdown::Signals::install()?;

    let mut sources = sources.clone();
    let mut simnet = None;
    let mut sample = None;
    if args.simnet {
        let dir = match &args.simnet_dir {
            Some(d) => d.clone(),
            None => std::env::temp_dir().join(format!("tapgate-serve-{}", std::process::id())),
        };
        let token = shutdown.token();
        let running = crate::simnet::run::start(
            &dir,
            crate::simnet::model::SimnetConfig::default(),
            async move { token.cancelled().await },
        )
        .await?;
        let upstream = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| CliError::Io {
                action: "bind the sample upstream on 127.0.0.1",
                path: dir.clone(),
                source: e,
            })?;
        let upstream_addr = upstream.local_addr().map_err(|e| CliError::Io {
            action: "read the sample upstream's address",
            path: dir.clone(),
            source: e,
        })?;
        let token = shutdown.token();
        sample = Some(upstream_addr);
        shutdown.spawn("sample-upstream", async move {
            crate::gateway::sample::run(upstream, token).await;
        });
        let loaded = sources.load()?;
        if loaded.services.is_empty() {
            let file = dir.join("tapgate.toml");
            let text = simnet_config(
                running.network_file(),
                &upstream_addr.to_string(),
                &loaded.gateway.listen.to_string(),
                &loaded.gateway.admin_listen.to_string(),
            );
            std::fs::write(&file, text).map_err(|e| CliError::Io {
                action: "write",
                path: file.clone(),
                source: e,
            })?;
            sources.file = Some(file);
        } else {
            sources
                .overrides
                .push(format!("network.file={}", running.network_file().display()));
        }
        simnet = Some(running);
    }
    let settings = sources.load()?;
    let built = build(&settings, Arc::new(SystemClock)).await?;

    let workers = settings.gateway.worker_threads();
    let listener = gateway::workers::bind(settings.gateway.listen).map_err(|e| CliError::Bind {
        key: "gateway.listen",
        addr: settings.gateway.listen,
        source: e,
    })?;
    let admin_listener = TcpListener::bind(settings.gateway.admin_listen)
        .await
        .map_err(|e| CliError::Bind {
            key: "gateway.admin_listen",
            addr: settings.gateway.admin_listen,
            source: e,
        })?;
    let listen = listener.local_addr().ok();
    let admin_addr = admin_listener.local_addr().ok();

    let tracker = Arc::clone(&built.tracker);
    let lnd = built.lnd.clone();
    let token = shutdown.token();
    shutdown.spawn("settlement-tracker", async move {
        if let Err(e) = tracker.follow(lnd, token).await {
            tracing::error!(error = %e, "the settlement tracker stopped");
        }
    });
    // The acceptor and the workers serve on threads of their own; this task stands for them
    // in the drain.
    let connections = tokio_util::task::TaskTracker::new();
    let token = shutdown.token();
    gateway::workers::spawn(listener, workers, &built.gateway, &token, &connections)
        .map_err(CliError::Workers)?;
    shutdown.spawn("gateway", async move {
        token.cancelled().await;
        connections.close();
        connections.wait().await;
    });
    let creds = Arc::new(AdminCredentials::load_or_create(&settings.data_dir)?);
    let admin_macaroon = creds.macaroon_path.clone();
    let state = AdminState {
        metrics: Arc::clone(&built.metrics),
        auth: Arc::clone(&built.gateway.auth),
        grpc: admin::grpc::service(Arc::clone(&built.gate), creds),
    };
    let token = shutdown.token();
    shutdown.spawn("admin", admin::run_http(admin_listener, state, token));

    let services: Vec<_> = built.gate.as_ref().services_view().into_iter().collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "listen": listen.map(|a| a.to_string()),
            "admin_listen": admin_addr.map(|a| a.to_string()),
            "admin_macaroon": admin_macaroon.display().to_string(),
            "node": built.node_name,
            "node_pubkey": built.node_pubkey,
            "services": services,
            "simnet_network_file": simnet.as_ref().map(|s| s.network_file().display().to_string()),
            "sample_upstream": sample.map(|a| a.to_string()),
            "config_file": sources.file.as_ref().map(|f| f.display().to_string()),
            "started_in_ms": started.elapsed().as_millis(),
        }))?
    );
    eprintln!(
        "tapgate serving on {} (admin {}); Ctrl-C to stop",
        listen.map_or_else(|| "?".into(), |a| a.to_string()),
        admin_addr.map_or_else(|| "?".into(), |a| a.to_string()),
    );

    #[cfg(unix)]
    {
        let signal = signals.recv().await;
        tracing::info!(?signal, "stopping");
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    let bound = Duration::from_secs(settings.gateway.drain_secs);
    let drained = shutdown.drain(bound).await;
    if let Some(s) = simnet {
        let _ = s.wait().await;
    }
    match drained {
        Ok(took) => {
            eprintln!("tapgate stopped in {} ms", took.as_millis());
            Ok(())
        }
        Err(e) => Err(CliError::Drain(e)),
    }
}
