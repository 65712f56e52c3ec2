//! `tapgate simnet`: start the simulated regtest network (alice, bob, edge, merchant), print
//! where its nodes listen, and run until Ctrl-C. [`crate::simnet::run`] does the work; this file
//! turns the flags into its options and prints (JSON on stdout, progress on stderr).

use std::path::PathBuf;

use clap::Args;
use rust_decimal::Decimal;
use serde_json::json;

use super::error::CliError;
use super::parse;

/// `tapgate simnet`
#[derive(Debug, Args)]
pub struct SimnetArgs {
    /// Directory for the nodes' certificates, macaroons and `network.toml` (created 0700).
    #[arg(long)]
    pub dir: PathBuf,
    /// Dollar price of one bitcoin at the edge's oracle.
    #[arg(long, default_value = "100000", allow_negative_numbers = true, value_parser = parse::positive_usd_per_btc)]
    pub usd_per_btc: Decimal,
    /// Listen on this port and the three after it (gRPC of alice, bob, edge, merchant) and on
    /// the four after those (their REST) instead of ports the OS picks.
    #[arg(long)]
    pub base_port: Option<u16>,
    /// Derive the network's secrets (node keys, preimages, quote ids) from this number, for a
    /// reproducible run. Without it they come from the OS CSPRNG. A directory keeps the seed it
    /// was made with; a restart there draws new preimages either way.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Give every RFQ quote this lifetime, seconds (at least 10). Without it the edge's oracle
    /// follows tapd's sample oracle: 300 s, or 60 s for an asset invoice above 100,000 units.
    #[arg(long, value_name = "SECS")]
    pub quote_lifetime_secs: Option<u64>,
}

/// Runs `tapgate simnet` until Ctrl-C.
pub async fn run(args: &SimnetArgs) -> Result<(), CliError> {
    use crate::simnet::model::SimnetConfig;
    use crate::simnet::run::{RunOptions, start_with};
    let started = std::time::Instant::now();
    let config = SimnetConfig {
        usd_per_btc: args.usd_per_btc,
        seed: args.seed,
        quote_lifetime_secs: args.quote_lifetime_secs,
        ..SimnetConfig::default()
    };
    let mut options = RunOptions::new(config);
    options.base_port = args.base_port;
    // SIGINT (Ctrl-C) or SIGTERM (a service manager, `kill`) stops it the same way; the
    // listeners are installed before the servers start, so an early signal is not lost.
    #[cfg(unix)]
    let shutdown = {
        let mut signals = crate::shutdown::Signals::install()?;
        async move {
            let signal = signals.recv().await;
            tracing::info!(?signal, "stopping the simnet");
        }
    };
    #[cfg(not(unix))]
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let running = start_with(&args.dir, options, shutdown).await?;
    let n = running.network();
    let nodes: Vec<_> = n
        .nodes
        .iter()
        .map(|e| {
            json!({
                "name": e.name,
                "pubkey": e.pubkey,
                "endpoint": e.lnd_endpoint,
                "rest_endpoint": e.rest_endpoint,
            })
        })
        .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "network_file": running.network_file(),
            "started_in_ms": started.elapsed().as_millis() as u64,
            "asset_id": n.asset_id,
            "edge_pubkey": n.edge_pubkey,
            "nodes": nodes,
        }))?
    );
    eprintln!("simnet running; press Ctrl-C to stop");
    let took = running.wait().await?;
    eprintln!(
        "simnet stopped in {} ms; network.toml removed",
        took.as_millis()
    );
    Ok(())
}
