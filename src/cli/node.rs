//! `tapgate node …`: the operator's commands over the node adapters. They print JSON and work
//! the same against simnet (`--network DIR/network.toml`) and a Polar or real network
//! (`--config config/polar.toml`).
//!
//! `node … pay --max-usd` is a hard cap, routing fees included: the fee limit handed to the
//! node is chosen so that the invoice plus the whole fee limit, at the edge's rate, stays
//! within the cap (`cli::spend_cap`), or the payment is refused before anything is sent.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use rust_decimal::Decimal;
use serde_json::json;

use super::error::CliError;
use super::output::print_json;
use super::parse;
use super::spend_cap::{self, CapRate, CappedPayment, RateSource};
use crate::app::{BuildError, NetworkAddresses, Node};
use crate::config::{Settings, Sources};
use crate::lightning::error::BackendError;
use crate::lightning::grpc::NodeConnection;
use crate::lightning::oracle::{OracleClient, OracleSide};
use crate::lightning::traits::{AssetInvoices, Invoices, NodeInfoSource, Payments, Rates};
use crate::lightning::types::{AssetInvoiceRequest, AssetRef, InvoiceRequest};
use crate::network_file::NetworkFile;
use crate::pricing;

/// `node invoice --msat`'s default expiry.
const SATS_INVOICE_EXPIRY_SECS: u64 = 300;
/// `node invoice --usd`'s default expiry: the shortest quote lifetime of the oracles tapgate
/// meets, tapd's sample oracle above 100,000 units (lightninglabs/taproot-assets
/// `docs/examples/basic-price-oracle/main.go`, v0.8.1), so the default works on all of them.
const ASSET_INVOICE_EXPIRY_SECS: u64 = 60;

/// How long the quotes tapgate asks for itself (to price a `--max-usd` check) live.
const CHECK_QUOTE_SECS: u64 = 60;

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
        /// Amount in msat for a plain invoice (1 to 9223372036854775807).
        #[arg(long, conflicts_with = "usd", required_unless_present = "usd", allow_negative_numbers = true, value_parser = parse::amount_msat)]
        msat: Option<u64>,
        /// Amount in dollars for an asset invoice, above zero.
        #[arg(long, allow_negative_numbers = true, value_parser = parse::positive_usd)]
        usd: Option<Decimal>,
        /// The asset, for a --usd invoice (default: the network's stablecoin).
        #[arg(long, conflicts_with = "msat")]
        asset: Option<String>,
        /// Memo.
        #[arg(long, default_value = "tapgate")]
        memo: String,
        /// Expiry in seconds. Default: 300 for --msat; 60 for --usd, since an asset invoice
        /// must expire before its quote and tapd's sample oracle quotes amounts above 100,000
        /// units for 60 s (Polar's mock oracle: 3,600 s).
        #[arg(long)]
        expiry: Option<u64>,
    },
    /// The edge's buy and sell quotes for a dollar amount, and what it costs in units and msat.
    Quote {
        /// Dollars, above zero.
        #[arg(long, allow_negative_numbers = true, value_parser = parse::positive_usd)]
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
        /// Never spend more than this many dollars, routing fees included: the fee limit is
        /// lowered to what the cap leaves, and an invoice above the cap is refused unpaid. For
        /// a sats payment, sats are valued at the edge's sell quote (or the network's oracle).
        #[arg(long, allow_negative_numbers = true, value_parser = parse::positive_usd)]
        max_usd: Option<Decimal>,
        /// Routing fee limit in msat.
        #[arg(long, default_value_t = 10_000, allow_negative_numbers = true, value_parser = parse::fee_msat)]
        max_fee_msat: u64,
    },
}

/// The network's nodes, from `--network FILE` or the settings (`node` names the one asked for,
/// for the error when there are none).
pub(super) fn addresses(
    network: Option<&Path>,
    settings: &Settings,
    node: &str,
) -> Result<NetworkAddresses, CliError> {
    Ok(match network {
        Some(path) => NetworkAddresses::from_network_file(path)?,
        None if settings.nodes.is_empty() && settings.network.file.is_none() => {
            return Err(CliError::NoNodes {
                node: node.to_owned(),
            });
        }
        None => NetworkAddresses::from_settings(settings)?,
    })
}

pub(super) fn pick_asset(
    net: &NetworkAddresses,
    given: Option<&str>,
) -> Result<AssetRef, CliError> {
    match given {
        Some(s) if s != "default" => AssetRef::parse(s).ok_or_else(|| {
            BuildError::BadHex {
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

pub(super) fn edge(net: &NetworkAddresses) -> Result<String, CliError> {
    net.edge_pubkey.clone().ok_or(CliError::Missing(
        "the network names no edge node; set network.edge_pubkey",
    ))
}
/// Runs `tapgate node …` and prints its result.
pub async fn run(args: &NodeArgs, sources: &Sources) -> Result<(), CliError> {
    let settings = sources.load()?;
    print_json(&node(args, &settings).await?)
}

/// What `tapgate node …` answers, as JSON (printed by [`run`]).
pub async fn node(args: &NodeArgs, settings: &Settings) -> Result<serde_json::Value, CliError> {
    let net = addresses(args.network.as_deref(), settings, &args.node)?;
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
                    expiry_secs: expiry.unwrap_or(SATS_INVOICE_EXPIRY_SECS),
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
                    expiry_secs: expiry.unwrap_or(ASSET_INVOICE_EXPIRY_SECS),
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
            asset,
            max_usd,
            max_fee_msat,
        } => {
            let pay = PayRequest {
                payment_request,
                max_usd: *max_usd,
                max_fee_msat: *max_fee_msat,
            };
            match asset {
                None => pay_sats(&node, &net, args.network.as_deref(), &pay).await,
                Some(a) => pay_with_asset(&node, &net, a, &pay).await,
            }
        }
    }
}

/// What `node … pay` was asked to do.
struct PayRequest<'a> {
    payment_request: &'a str,
    max_usd: Option<Decimal>,
    max_fee_msat: u64,
}

impl PayRequest<'_> {
    /// The invoice amount, refusing an amountless invoice before anything is quoted.
    async fn invoice_msat(&self, node: &Node) -> Result<u64, CliError> {
        match node.lnd.decode_amount_msat(self.payment_request).await? {
            0 => Err(spend_cap::CapError::NoAmount.into()),
            msat => Ok(msat),
        }
    }
}

/// The node's error, explained when the fee limit was lowered to keep `--max-usd`: a payment
/// that failed may have needed the fee the cap left no room for.
fn under_cap(e: BackendError, cap: Option<&CappedPayment>) -> CliError {
    match (cap, e) {
        (Some(cap), e @ BackendError::PaymentFailed { .. }) if cap.fee_limit_lowered() => {
            CliError::FailedUnderCap {
                cap: Box::new(cap.clone()),
                source: Box::new(e),
            }
        }
        (_, e) => e.into(),
    }
}

/// `pay` without `--asset`: sats, under `--max-usd` if given.
async fn pay_sats(
    node: &Node,
    net: &NetworkAddresses,
    network_file: Option<&Path>,
    pay: &PayRequest<'_>,
) -> Result<serde_json::Value, CliError> {
    let cap = match pay.max_usd {
        Some(max_usd) => {
            let invoice_msat = pay.invoice_msat(node).await?;
            let worst_msat = invoice_msat.saturating_add(pay.max_fee_msat);
            let rate = sats_rate(node, net, network_file, worst_msat, max_usd).await?;
            Some(spend_cap::plan(
                invoice_msat,
                pay.max_fee_msat,
                max_usd,
                &rate,
            )?)
        }
        None => None,
    };
    let fee_limit_msat = cap.as_ref().map_or(pay.max_fee_msat, |c| c.fee_limit_msat);
    let out = node
        .pay_sats(pay.payment_request, fee_limit_msat)
        .await
        .map_err(|e| under_cap(e, cap.as_ref()))?;
    Ok(json!({
        "node": node.name,
        "paid_with": "sats",
        "fee_limit_msat": fee_limit_msat,
        "cap": cap,
        "payment": out,
    }))
}

/// The rate to value a sats payment in dollars: the edge's sell quote to this node (what the
/// same payment would cost in the stablecoin), or, for a node without an asset channel, the
/// network's price oracle at the higher of its two rates.
async fn sats_rate(
    node: &Node,
    net: &NetworkAddresses,
    network_file: Option<&Path>,
    msat: u64,
    max_usd: Decimal,
) -> Result<CapRate, CliError> {
    let asset = net.asset.clone().ok_or(CliError::Missing(
        "--max-usd on a sats payment values sats in the network's stablecoin, and the network has none; set network.asset_id or pay without --max-usd",
    ))?;
    let edge = edge(net)?;
    let decimals = node.tapd.decimal_display(&asset).await?;
    match node
        .tapd
        .sell_quote(&asset, msat, &edge, CHECK_QUOTE_SECS)
        .await
    {
        Ok(q) => Ok(CapRate {
            rate: q.rate,
            decimals,
            source: RateSource::EdgeSellQuote,
        }),
        Err(BackendError::NoAssetChannel { .. }) => {
            let Some(oracle) = network_file.map(oracle_of).transpose()?.flatten() else {
                return Err(CliError::NoUsdRate {
                    node: node.name.clone(),
                });
            };
            let units = spend_cap::cap_units(max_usd, decimals)?;
            Ok(CapRate {
                rate: cautious_oracle_rate(&oracle, &asset, units).await?,
                decimals,
                source: RateSource::PriceOracle,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The price oracle a network file names, if any (the real regtest network's nodes use
/// tapd's built-in mock oracle, which has no endpoint).
pub(super) fn oracle_of(network_file: &Path) -> Result<Option<OracleClient>, CliError> {
    let file = NetworkFile::read(network_file).map_err(BuildError::from)?;
    let Some((endpoint, cert)) = file.oracle_endpoint.zip(file.oracle_tls_cert_path) else {
        return Ok(None);
    };
    // Oracles take no macaroon.
    Ok(Some(OracleClient::connect(&NodeConnection::new(
        endpoint, cert, "",
    ))?))
}

/// The higher of the oracle's two rates for `units` of `asset`: more units per BTC values a
/// sat higher, so the cap holds whichever side of the trade the payment is counted on.
pub(super) async fn cautious_oracle_rate(
    oracle: &OracleClient,
    asset: &AssetRef,
    units: u64,
) -> Result<pricing::FixedPoint, CliError> {
    let purchase = oracle
        .query_rate(asset, OracleSide::Purchase, units)
        .await?;
    let sale = oracle.query_rate(asset, OracleSide::Sale, units).await?;
    let per_btc = |r: &pricing::FixedPoint| pricing::msat_to_units(pricing::MSAT_PER_BTC, r);
    Ok(if per_btc(&sale.rate)? > per_btc(&purchase.rate)? {
        sale.rate
    } else {
        purchase.rate
    })
}

/// `pay --asset`: the stablecoin through the edge, under `--max-usd` if given.
async fn pay_with_asset(
    node: &Node,
    net: &NetworkAddresses,
    asset: &str,
    pay: &PayRequest<'_>,
) -> Result<serde_json::Value, CliError> {
    let asset = pick_asset(net, Some(asset))?;
    let edge = edge(net)?;
    let decimals = node.tapd.decimal_display(&asset).await?;
    // With a cap, the payment goes under the very quote the cap was checked against (tapd's
    // `rfq_id`), so tapd cannot spend at another rate.
    let (cap, checked_quote) = match pay.max_usd {
        Some(max_usd) => {
            let invoice_msat = pay.invoice_msat(node).await?;
            // The quote tapd itself asks for: invoice amount plus fee limit (`paymentMaxAmt`).
            let worst_msat = invoice_msat.saturating_add(pay.max_fee_msat);
            let quote = node
                .tapd
                .sell_quote(&asset, worst_msat, &edge, CHECK_QUOTE_SECS)
                .await?;
            let rate = CapRate {
                rate: quote.rate.clone(),
                decimals,
                source: RateSource::EdgeSellQuote,
            };
            let plan = spend_cap::plan(invoice_msat, pay.max_fee_msat, max_usd, &rate)?;
            (Some(plan), Some(quote))
        }
        None => (None, None),
    };
    let fee_limit_msat = cap.as_ref().map_or(pay.max_fee_msat, |c| c.fee_limit_msat);
    let preview_units = node
        .preview_asset_payment(pay.payment_request, &asset)
        .await?;
    let preview_usd = pricing::units_to_usd(preview_units, decimals)?;
    let paid = match &checked_quote {
        Some(quote) => {
            node.tapd
                .pay_with_asset_quote(pay.payment_request, &asset, &edge, fee_limit_msat, quote)
                .await
        }
        None => {
            node.tapd
                .pay_with_asset(pay.payment_request, &asset, &edge, fee_limit_msat)
                .await
        }
    };
    let out = paid.map_err(|e| under_cap(e, cap.as_ref()))?;
    let spent_usd = out
        .units_spent
        .map(|u| pricing::units_to_usd(u, decimals))
        .transpose()?;
    let result = json!({
        "node": node.name,
        "paid_with": "asset",
        "fee_limit_msat": fee_limit_msat,
        "cap": cap,
        "preview_units": preview_units,
        "preview_usd": preview_usd,
        "usd_spent": spent_usd,
        "payment": out,
    });
    // Paid under the checked quote, the cap holds; checked once more, and should it not hold,
    // said loudly after printing what the payer needs (the preimage).
    if let (Some(cap), Some(units), Some(spent_usd)) = (&cap, out.units_spent, spent_usd)
        && !cap.holds_for(units)
    {
        print_json(&result)?;
        return Err(CliError::CapBrokenAfterPayment {
            spent_usd,
            max_usd: cap.max_usd,
        });
    }
    Ok(result)
}
