//! `tapgate simnet` and `tapgate node …`: the operator's commands over the node adapters.
//! They print JSON and work the same against simnet (`--network DIR/network.toml`) and a
//! Polar or real network (`--config config/polar.toml`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use rust_decimal::Decimal;
use serde_json::json;

use crate::cli::CliError;
use crate::config::Settings;
use crate::lightning::traits::{AssetInvoices, Invoices, NodeInfoSource, Payments, Rates};
use crate::lightning::types::{AssetInvoiceRequest, AssetRef, InvoiceRequest};
use crate::nodes::{NetworkAddresses, Node, NodeSetupError};
use crate::pricing;

/// `tapgate simnet`
#[derive(Debug, Args)]
pub struct SimnetArgs {
    /// Directory for the nodes' certificates, macaroons and `network.toml` (created 0700).
    #[arg(long)]
    pub dir: PathBuf,
    /// Dollar price of one bitcoin at the edge's oracle.
    #[arg(long, default_value = "100000")]
    pub usd_per_btc: Decimal,
    /// Listen on this port and the three after it (alice, bob, edge, merchant) instead of
    /// ports the OS picks.
    #[arg(long)]
    pub base_port: Option<u16>,
}

/// `tapgate node`
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// A simnet's network file (from `tapgate simnet --dir DIR`: DIR/network.toml). Without
    /// it, nodes come from the `[nodes.*]` settings (e.g. `--config config/polar.toml`).
    #[arg(long, value_name = "FILE")]
    pub network: Option<PathBuf>,
    /// Which node.
    #[arg(long = "node", value_name = "NAME")]
    pub node: String,
    /// What to do.
    #[command(subcommand)]
    pub command: NodeCommand,
}

/// `tapgate node … <command>`
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Identity, chain state and versions of lnd and tapd.
    Info,
    /// Sats in channels; asset units on chain, in channels and in total, with their dollar
    /// value.
    Balance {
        /// The asset (default: the network's stablecoin).
        #[arg(long)]
        asset: Option<String>,
    },
    /// Create an invoice: `--msat N` (sats) or `--usd X` (the stablecoin, through the edge).
    Invoice {
        /// Amount in msat for a plain invoice.
        #[arg(long, conflicts_with = "usd", required_unless_present = "usd")]
        msat: Option<u64>,
        /// Amount in dollars for an asset invoice.
        #[arg(long)]
        usd: Option<Decimal>,
        /// The asset (default: the network's stablecoin).
        #[arg(long)]
        asset: Option<String>,
        /// Memo.
        #[arg(long, default_value = "tapgate")]
        memo: String,
        /// Expiry in seconds (for asset invoices, at most the quote's lifetime).
        #[arg(long, default_value_t = 300)]
        expiry: u64,
    },
    /// The edge's buy and sell quotes for a dollar amount, and what it costs in units and msat.
    Quote {
        /// Dollars.
        #[arg(long)]
        usd: Decimal,
        /// The asset (default: the network's stablecoin).
        #[arg(long)]
        asset: Option<String>,
    },
    /// Pay a BOLT11 invoice in sats, or in the stablecoin with `--asset`.
    Pay {
        /// The invoice.
        payment_request: String,
        /// Pay with this asset through the edge (use `default` for the network's stablecoin).
        #[arg(long)]
        asset: Option<String>,
        /// Refuse to pay if the asset cost exceeds this many dollars.
        #[arg(long, requires = "asset")]
        max_usd: Option<Decimal>,
        /// Routing fee limit in msat.
        #[arg(long, default_value_t = 10_000)]
        max_fee_msat: u64,
    },
}

fn pick_asset(net: &NetworkAddresses, given: Option<&str>) -> Result<AssetRef, CliError> {
    match given {
        Some(s) if s != "default" => AssetRef::parse(s).ok_or_else(|| {
            NodeSetupError::BadHex {
                what: "asset id",
                value: s.to_owned(),
            }
            .into()
        }),
        _ => net.asset.clone().ok_or(CliError::Missing(
            "no asset given and the network has none; pass --asset <id> or set network.asset_id",
        )),
    }
}

fn edge(net: &NetworkAddresses) -> Result<String, CliError> {
    net.edge_pubkey.clone().ok_or(CliError::Missing(
        "the network names no edge node; set network.edge_pubkey",
    ))
}

/// Runs `tapgate simnet` until Ctrl-C.
pub async fn simnet(args: &SimnetArgs) -> Result<(), CliError> {
    use crate::simnet::model::SimnetConfig;
    use crate::simnet::run::{RunOptions, start_with};
    let started = std::time::Instant::now();
    let config = SimnetConfig {
        usd_per_btc: args.usd_per_btc,
        ..SimnetConfig::default()
    };
    let mut options = RunOptions::new(config);
    options.base_port = args.base_port;
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let running = start_with(&args.dir, options, shutdown).await?;
    let n = running.network();
    let nodes: Vec<_> = n
        .nodes
        .iter()
        .map(|e| json!({"name": e.name, "pubkey": e.pubkey, "endpoint": e.lnd_endpoint}))
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
    running.wait().await?;
    Ok(())
}

/// Runs `tapgate node …`.
pub async fn node(args: &NodeArgs, settings: &Settings) -> Result<serde_json::Value, CliError> {
    let net = match &args.network {
        Some(path) => NetworkAddresses::from_network_file(path)?,
        None => NetworkAddresses::from_settings(settings)?,
    };
    let node = Node::connect(net.node(&args.node)?)?;
    match &args.command {
        NodeCommand::Info => {
            let info = node.lnd.node_info().await?;
            let tapd_version = node.tapd.version().await?;
            Ok(json!({"node": node.name, "lnd": info, "tapd_version": tapd_version}))
        }
        NodeCommand::Balance { asset } => {
            let (local_msat, remote_msat) = node.lnd.channel_balance_msat().await?;
            let asset = pick_asset(&net, asset.as_deref())?;
            let balance = node.asset_balance(&asset).await?;
            let decimals = node.tapd.decimal_display(&asset).await?;
            let units = balance.total();
            Ok(json!({
                "node": node.name,
                "sats": {"local_msat": local_msat, "remote_msat": remote_msat},
                "asset": {
                    "asset_id": asset.to_string(),
                    "on_chain_units": balance.on_chain,
                    "channel_units": balance.in_channels,
                    "units": units,
                    "decimal_display": decimals,
                    "usd": pricing::units_to_usd(units, decimals)?,
                },
            }))
        }
        NodeCommand::Invoice {
            msat: Some(msat),
            memo,
            expiry,
            ..
        } => {
            let inv = node
                .lnd
                .create_invoice(&InvoiceRequest {
                    value_msat: *msat,
                    memo: memo.clone(),
                    expiry_secs: *expiry,
                })
                .await?;
            Ok(json!({"node": node.name, "kind": "sats", "value_msat": msat, "invoice": inv}))
        }
        NodeCommand::Invoice {
            usd,
            asset,
            memo,
            expiry,
            ..
        } => {
            let usd = usd.ok_or(CliError::Missing("pass --msat or --usd"))?;
            let asset = pick_asset(&net, asset.as_deref())?;
            let decimals = node.tapd.decimal_display(&asset).await?;
            let units = pricing::usd_to_units(usd, decimals)?;
            let inv = node
                .tapd
                .create_asset_invoice(&AssetInvoiceRequest {
                    asset,
                    units,
                    edge_peer: Some(edge(&net)?),
                    memo: memo.clone(),
                    expiry_secs: *expiry,
                })
                .await?;
            Ok(
                json!({"node": node.name, "kind": "asset", "usd": usd, "units": units, "invoice": inv}),
            )
        }
        NodeCommand::Quote { usd, asset } => {
            let asset = pick_asset(&net, asset.as_deref())?;
            let edge = edge(&net)?;
            let decimals = node.tapd.decimal_display(&asset).await?;
            let units = pricing::usd_to_units(*usd, decimals)?;
            let buy = node.tapd.buy_quote(&asset, units, &edge, 300).await?;
            let msat = pricing::units_to_msat(units, &buy.rate)?;
            let sell = node.tapd.sell_quote(&asset, msat, &edge, 300).await?;
            Ok(json!({
                "usd": usd,
                "units": units,
                "receive": {"quote": buy, "invoice_msat": msat},
                "pay": {"quote": sell, "units_for_invoice": pricing::msat_to_units(msat, &sell.rate)?},
            }))
        }
        NodeCommand::Pay {
            payment_request,
            asset: None,
            max_fee_msat,
            ..
        } => {
            let out = node.pay_sats(payment_request, *max_fee_msat).await?;
            Ok(json!({"node": node.name, "paid_with": "sats", "payment": out}))
        }
        NodeCommand::Pay {
            payment_request,
            asset: Some(a),
            max_usd,
            max_fee_msat,
        } => {
            let asset = pick_asset(&net, Some(a))?;
            let edge = edge(&net)?;
            let decimals = node.tapd.decimal_display(&asset).await?;
            let preview_units = node.preview_asset_payment(payment_request, &asset).await?;
            let preview_usd = pricing::units_to_usd(preview_units, decimals)?;
            if let Some(max) = max_usd {
                if preview_usd > *max {
                    return Err(CliError::OverBudget {
                        cost: preview_usd,
                        max: *max,
                    });
                }
            }
            let out = node
                .tapd
                .pay_with_asset(payment_request, &asset, &edge, *max_fee_msat)
                .await?;
            let spent_usd = out
                .units_spent
                .map(|u| pricing::units_to_usd(u, decimals))
                .transpose()?;
            Ok(json!({
                "node": node.name,
                "paid_with": "asset",
                "preview_units": preview_units,
                "preview_usd": preview_usd,
                "usd_spent": spent_usd,
                "payment": out,
            }))
        }
    }
}
