//! `tapgate price convert`: a dollar price in asset units and msat, by [`crate::pricing`]'s
//! arithmetic (tapd's, exactly). Parse, call the library, print; no I/O beyond stdout.

use clap::{Args, Subcommand};

use super::error::CliError;
use super::output::print_json;
use super::parse;

/// `tapgate price …`
#[derive(Debug, Subcommand)]
pub enum PriceCommand {
    /// Convert a dollar price to asset units and msat with tapd's exact arithmetic, and show
    /// the smallest amount an asset HTLC can carry at that rate.
    Convert(ConvertArgs),
}

/// `tapgate price convert`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("rate_source").required(true).args(["usd_per_btc", "rate"])))]
pub struct ConvertArgs {
    /// The price in dollars, above zero, e.g. 1.00.
    #[arg(long, allow_negative_numbers = true, value_parser = parse::positive_usd)]
    pub usd: rust_decimal::Decimal,
    /// The dollar price of one bitcoin, e.g. 97123.45.
    #[arg(long, allow_negative_numbers = true, value_parser = parse::positive_usd_per_btc)]
    pub usd_per_btc: Option<rust_decimal::Decimal>,
    /// Or the rate as tapd's RFQ gives it: FixedPoint coefficient (asset units per BTC) …
    #[arg(long, value_name = "COEFF")]
    pub rate: Option<String>,
    /// … and its scale (default 0; only with --rate).
    #[arg(long, requires = "rate", conflicts_with = "usd_per_btc")]
    pub scale: Option<u32>,
    /// The stablecoin's decimal display.
    #[arg(long, default_value_t = 6)]
    pub decimals: u8,
}

/// Runs `tapgate price …`.
pub fn run(command: PriceCommand) -> Result<(), CliError> {
    match command {
        PriceCommand::Convert(args) => print_json(&convert(&args)?),
    }
}

/// `price convert`: the [`crate::pricing::Quote`] as JSON.
pub fn convert(args: &ConvertArgs) -> Result<serde_json::Value, CliError> {
    use crate::pricing::{FixedPoint, quote_usd, rate_from_usd_per_btc};
    let rate = match (&args.rate, args.usd_per_btc) {
        (Some(coefficient), _) => {
            FixedPoint::from_parts(coefficient.trim(), args.scale.unwrap_or(0))?
        }
        (None, Some(usd_per_btc)) => rate_from_usd_per_btc(usd_per_btc, args.decimals)?,
        (None, None) => return Err(crate::pricing::PricingError::ZeroRate.into()),
    };
    Ok(serde_json::to_value(quote_usd(
        args.usd,
        args.decimals,
        &rate,
    )?)?)
}
