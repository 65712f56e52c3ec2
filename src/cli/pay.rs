//! `tapgate pay`: curl for L402 APIs. Sends the request; on `402` pays from a node under
//! dollar caps (the client's ledger keeps them across runs), retries with the token and prints
//! the body on stdout and what was paid on stderr. Tokens are cached in the ledger and never
//! printed.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use http::Method;
use rust_decimal::Decimal;
use serde_json::json;

use super::error::CliError;
use super::node::{addresses, cautious_oracle_rate, edge, oracle_of, pick_asset};
use super::parse;
use crate::app::Node;
use crate::client::budget::Budget;
use crate::client::http::{L402Client, Outgoing};
use crate::client::ledger::{ClientLedger, FILE_NAME};
use crate::client::payer::Holdings;
use crate::clock::SystemClock;
use crate::config::Sources;
use crate::pricing;

/// Which rail `tapgate pay` may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RailChoice {
    /// The cheaper of the two by worst case (ties: the stablecoin).
    Cheaper,
    /// Only the stablecoin over the node's asset channel.
    Asset,
    /// Only sats from the node's channels.
    Sats,
}

/// `tapgate pay`
#[derive(Debug, Args)]
pub struct PayArgs {
    /// The URL (plain http://).
    pub url: String,
    /// The method (default GET, or POST with -d).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,
    /// A request header, `Name: value`; repeatable.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The request body, sent as given.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    pub data: Option<String>,
    /// A simnet's network file (DIR/network.toml); without it, nodes come from the settings.
    #[arg(long, value_name = "FILE")]
    pub network: Option<PathBuf>,
    /// The node that pays.
    #[arg(long = "node", value_name = "NAME")]
    pub node: String,
    /// The stablecoin (default: the network's).
    #[arg(long)]
    pub asset: Option<String>,
    /// Which rail to pay with.
    #[arg(long, value_enum, default_value = "cheaper")]
    pub rail: RailChoice,
    /// The most one payment may cost, dollars, routing fees included.
    #[arg(long, allow_negative_numbers = true, value_parser = parse::positive_usd)]
    pub max_usd: Option<Decimal>,
    /// The most the payments of one UTC day may cost together, dollars.
    #[arg(long, allow_negative_numbers = true, value_parser = parse::positive_usd)]
    pub max_usd_per_day: Option<Decimal>,
    /// The most all payments in the ledger may cost together, dollars.
    #[arg(long, allow_negative_numbers = true, value_parser = parse::positive_usd)]
    pub max_usd_total: Option<Decimal>,
    /// Pay only these hosts (`api.example.com` or `*.example.com`); repeatable.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
    /// Routing fee allowance, msat; lowered to what the caps leave.
    #[arg(long, default_value_t = 10_000, allow_negative_numbers = true, value_parser = parse::fee_msat)]
    pub max_fee_msat: u64,
    /// The service the URL belongs to, when known: its cached token is sent at once.
    #[arg(long)]
    pub service: Option<String>,
}

fn header(h: &str) -> Result<(String, String), CliError> {
    let (name, value) = h
        .split_once(':')
        .ok_or(CliError::Missing("a -H header must be `Name: value`"))?;
    Ok((name.trim().to_owned(), value.trim().to_owned()))
}

/// Runs `tapgate pay`.
pub async fn run(args: &PayArgs, sources: &Sources) -> Result<(), CliError> {
    let settings = sources.load()?;
    let net = addresses(args.network.as_deref(), &settings, &args.node)?;
    let node = Node::connect(net.node(&args.node)?)?;
    let asset = pick_asset(&net, args.asset.as_deref())?;
    // Sats are valued at the edge's quote; a node without an asset channel values them at the
    // network's price oracle, when the network file names one.
    let sats_rate = match args
        .network
        .as_deref()
        .map(oracle_of)
        .transpose()?
        .flatten()
    {
        Some(oracle) => {
            let units = pricing::usd_to_units(Decimal::ONE, 6)?;
            Some(cautious_oracle_rate(&oracle, &asset, units).await?)
        }
        None => None,
    };
    let holdings = Holdings {
        asset,
        edge_peer: edge(&net)?,
        pay_with_asset: args.rail != RailChoice::Sats,
        pay_with_sats: args.rail != RailChoice::Asset,
        max_fee_msat: args.max_fee_msat,
        sats_rate,
    };
    let budget = Budget {
        per_call_usd: args.max_usd,
        per_day_usd: args.max_usd_per_day,
        total_usd: args.max_usd_total,
        allowed_hosts: (!args.allow_hosts.is_empty()).then(|| args.allow_hosts.clone()),
    };
    let ledger = ClientLedger::open(&settings.data_dir.join(FILE_NAME)).await?;
    let rates = node.tapd.clone();
    let client = L402Client::new(node, rates, holdings, ledger, budget, Arc::new(SystemClock));
    let method = match (&args.method, &args.data) {
        (Some(m), _) => Method::from_bytes(m.as_bytes())
            .map_err(|_| CliError::Missing("-X must be an HTTP method such as GET or POST"))?,
        (None, Some(_)) => Method::POST,
        (None, None) => Method::GET,
    };
    let req = Outgoing {
        method,
        url: args.url.clone(),
        headers: args
            .headers
            .iter()
            .map(|h| header(h))
            .collect::<Result<_, _>>()?,
        body: Bytes::from(args.data.clone().unwrap_or_default()),
        service: args.service.clone(),
    };
    // Payments an earlier run could not confirm, and reservations left by runs that stopped
    // mid-payment, are followed up first; a reservation whose process still runs (another
    // `tapgate pay` now) is left to it.
    let followed = client.follow_up(true).await?;
    let x = client.send(&req).await?;
    let mut out = std::io::stdout().lock();
    out.write_all(&x.body)
        .and_then(|()| out.flush())
        .map_err(|source| CliError::Io {
            action: "write the response body to",
            path: PathBuf::from("stdout"),
            source,
        })?;
    let paid = x.paid.as_ref().map(|p| {
        json!({
            "rail": p.rail,
            "usd": p.usd,
            "reserved_usd": p.reserved_usd,
            "msat": p.msat,
            "fee_msat": p.fee_msat,
            "units": p.units,
        })
    });
    eprintln!(
        "{}",
        json!({
            "status": x.status.as_u16(),
            "paid": paid,
            "reused_token": x.reused_token,
            "topped_up": x.topped_up,
            "followed_up": {
                "settled": followed.settled,
                "released": followed.released,
                "still_unknown": followed.still_unknown,
                "tokens_recovered": followed.tokens_recovered,
                "in_flight_elsewhere": followed.in_flight_elsewhere,
            },
        })
    );
    Ok(())
}
