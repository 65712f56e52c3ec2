//! Prices: US dollars, asset units, FixedPoint rates and millisatoshis, converted exactly.
//!
//! Dollars are `rust_decimal::Decimal` (never floats); asset units and msat are integers.
//! Rates are tapd's `FixedPoint`: *asset units per BTC*, `coefficient / 10^scale`. The
//! conversions between units and msat reproduce tapd's `rfqmath` arithmetic step by step
//! (arithmetic scale `max(11, rate scale)`, truncating big-integer division), so an amount
//! computed here is the amount tapd computes: a seller can check a price before deploying it.
//!
//! This module does no I/O; rates come from the caller (an RFQ quote or a configured price).

mod call;
mod convert;
mod fixed_point;

pub use call::{CallPrice, price_call};
pub use convert::{
    DUST_LIMIT_MSAT, MAX_DECIMALS, MSAT_PER_BTC, Quote, min_transportable_msat,
    min_transportable_units, msat_to_units, quote_usd, rate_from_usd_per_btc, units_covering,
    units_to_msat, units_to_usd, usd_to_units, usd_to_units_ceil,
};
pub use fixed_point::FixedPoint;

/// Why an amount or rate cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// A rate of zero units per BTC.
    #[error("rate must be positive (asset units per BTC)")]
    ZeroRate,
    /// A negative dollar amount or rate.
    #[error("{0} must not be negative")]
    Negative(&'static str),
    /// More decimal places than the asset can represent.
    #[error(
        "${usd} has more decimal places than the asset's decimal display of {decimals}; round the price to {decimals} places"
    )]
    TooPrecise {
        /// The amount.
        usd: rust_decimal::Decimal,
        /// The asset's decimal display.
        decimals: u8,
    },
    /// A result that does not fit in 64 bits.
    #[error("{0} overflows a 64-bit amount")]
    Overflow(&'static str),
    /// A rate scale tapd would not accept (its scale is a `uint8`, powers of ten up to 10^18
    /// are exact in its arithmetic).
    #[error("rate scale {0} is out of range (0 to 18)")]
    Scale(u32),
    /// A decimal display tapd does not allow.
    #[error("decimal display {0} is out of range (0 to 12)")]
    Decimals(u32),
    /// A coefficient that is not a base-10 integer.
    #[error("rate coefficient {0:?} is not a non-negative integer")]
    Coefficient(String),
}
