//! The most a payment can cost in dollars, routing fees included, and the fee limit that keeps
//! it under a dollar cap: the cap of `tapgate node … pay --max-usd`, and the budget headroom of
//! the client ([`crate::client`]).
//!
//! This module owns the arithmetic that turns a dollar cap into the routing fee limit handed to
//! the node, and the refusal when even a fee-free payment would cost too much. It does no I/O:
//! the caller reads the invoice amount and the rate from the edge's sell quote (or, for a sats
//! payment from a node without an asset channel, the network's price oracle). Its messages
//! name `--max-usd` and `--max-fee-msat`, the command's flags; the client wraps them in its
//! own budget error.
//!
//! **The worst case.** A payment sends at most the invoice amount plus the whole fee limit. The
//! units that pay for those msat are counted as the fewest units whose value at the edge's rate
//! covers them: that is what simnet charges, and it bounds what tapd sends, since tapd converts
//! each HTLC's msat rounding down (`MilliSatoshiToUnits(…).ScaleTo(0)` in
//! lightninglabs/taproot-assets tapchannel/aux_traffic_shaper.go `ProduceHtlcExtraData`), so
//! even a payment split into several HTLCs costs no more. The cap holds when that many units,
//! in dollars, is at most `--max-usd`.
//!
//! **The fee limit.** `units_to_msat` is monotone, so "the units covering `m` msat are at most
//! `U`" is the same as "`m ≤ units_to_msat(U)`". The largest payment a cap of `U` units allows
//! is therefore `units_to_msat(U)`, and the fee limit is whatever of it the invoice leaves,
//! never more than `--max-fee-msat`. A cap below the invoice alone is refused before paying.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

use crate::pricing::{self, FixedPoint, PricingError, units_covering};
use crate::store::Rail;

/// Where the rate of a capped payment came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateSource {
    /// The edge's sell quote to this node: the rate the edge charges for paying on its behalf.
    EdgeSellQuote,
    /// The network's price oracle, at the higher of its two rates (the one that values a
    /// satoshi most, so the cap holds whichever side the payment is counted on).
    PriceOracle,
    /// A rate the payer configured, to value sats where no edge quotes (no asset channel).
    Configured,
}

/// A payment planned under `--max-usd`: the fee limit to pass and the most it can cost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CappedPayment {
    /// The cap, dollars.
    pub max_usd: Decimal,
    /// The cap in asset units (rounded down to a whole unit).
    pub max_units: u64,
    /// The invoice amount.
    pub invoice_msat: u64,
    /// What the invoice alone costs, in units and dollars, at `rate`.
    pub invoice_units: u64,
    /// The same in dollars.
    pub invoice_usd: Decimal,
    /// `--max-fee-msat`.
    pub requested_fee_limit_msat: u64,
    /// The fee limit passed to the node: `--max-fee-msat`, lowered to what the cap leaves.
    pub fee_limit_msat: u64,
    /// Invoice plus fee limit: the most the payment can send.
    pub worst_case_msat: u64,
    /// The units covering `worst_case_msat` at `rate`; at most `max_units`.
    pub worst_case_units: u64,
    /// The same in dollars; at most `max_usd`.
    pub worst_case_usd: Decimal,
    /// The smallest cap that would let the whole `--max-fee-msat` through.
    pub usd_for_requested_fee_limit: Decimal,
    /// Asset units per BTC.
    pub rate: FixedPoint,
    /// Where `rate` came from.
    pub rate_source: RateSource,
}

impl CappedPayment {
    /// True when the fee limit had to be lowered below `--max-fee-msat` to keep the cap.
    pub fn fee_limit_lowered(&self) -> bool {
        self.fee_limit_msat < self.requested_fee_limit_msat
    }

    /// True when `units_spent`, as the node reports them after paying, stayed within the cap.
    pub fn holds_for(&self, units_spent: u64) -> bool {
        units_spent <= self.max_units
    }
}

/// Why a payment cannot be made under the cap.
#[derive(Debug, thiserror::Error)]
pub enum CapError {
    /// The invoice alone costs more than the cap.
    #[error(
        "paying would cost more than --max-usd {max_usd}: the invoice ({invoice_msat} msat) alone comes to ${invoice_usd} at {rate} asset units per BTC ({source_name}), and a routing fee allowance of up to {fee_limit_msat} msat (--max-fee-msat) could bring it to ${worst_case_usd}; nothing was paid. --max-usd {worst_case_usd} would allow the invoice and the whole fee allowance; or ask the payee for a smaller invoice",
        source_name = rate_source_name(*.rate_source)
    )]
    InvoiceAboveCap {
        /// The cap.
        max_usd: Decimal,
        /// The invoice amount.
        invoice_msat: u64,
        /// What the invoice alone costs.
        invoice_usd: Decimal,
        /// `--max-fee-msat`.
        fee_limit_msat: u64,
        /// Invoice plus the whole `--max-fee-msat`, in dollars.
        worst_case_usd: Decimal,
        /// The rate, units per BTC.
        rate: FixedPoint,
        /// Where the rate came from.
        rate_source: RateSource,
    },
    /// The invoice names no amount, so there is nothing to hold against the cap.
    #[error(
        "the invoice names no amount, so --max-usd cannot bound it (and tapgate pays only invoices with an amount); ask the payee for an invoice with an amount"
    )]
    NoAmount,
    /// The amounts cannot be converted at this rate.
    #[error("cannot hold the payment to --max-usd: {0}")]
    Pricing(#[from] PricingError),
}

fn rate_source_name(source: RateSource) -> &'static str {
    match source {
        RateSource::EdgeSellQuote => "the edge's sell quote",
        RateSource::PriceOracle => "the network's price oracle",
        RateSource::Configured => "the payer's configured rate",
    }
}

/// `usd` in whole asset units, rounded down (a cap of $1.0000005 allows $1.000000); a cap
/// beyond every u64 amount is `u64::MAX`.
pub fn cap_units(usd: Decimal, decimals: u8) -> Result<u64, PricingError> {
    let whole = usd.round_dp_with_strategy(u32::from(decimals), RoundingStrategy::ToZero);
    match pricing::usd_to_units(whole, decimals) {
        // A cap beyond every u64 amount caps nothing.
        Err(PricingError::Overflow(_)) => Ok(u64::MAX),
        other => other,
    }
}

/// The rate and asset a cap is measured in.
#[derive(Clone, Debug)]
pub struct CapRate {
    /// Asset units per BTC.
    pub rate: FixedPoint,
    /// The asset's decimal display (units per dollar = 10^decimals).
    pub decimals: u8,
    /// Where the rate came from.
    pub source: RateSource,
}

/// Plans a payment of an `invoice_msat` invoice under `max_usd`: the fee limit to pass (at
/// most `requested_fee_limit_msat`) so that the worst case stays within the cap, or the refusal.
pub fn plan(
    invoice_msat: u64,
    requested_fee_limit_msat: u64,
    max_usd: Decimal,
    at: &CapRate,
) -> Result<CappedPayment, CapError> {
    if invoice_msat == 0 {
        return Err(CapError::NoAmount);
    }
    let rate = &at.rate;
    let max_units = cap_units(max_usd, at.decimals)?;
    let max_msat = match pricing::units_to_msat(max_units, rate) {
        Err(PricingError::Overflow(_)) => u64::MAX,
        other => other?,
    };
    let invoice_units = units_covering(invoice_msat, rate)?;
    let invoice_usd = pricing::units_to_usd(invoice_units, at.decimals)?;
    let with_requested_fee = invoice_msat.saturating_add(requested_fee_limit_msat);
    let usd_for_requested_fee_limit =
        pricing::units_to_usd(units_covering(with_requested_fee, rate)?, at.decimals)?;
    let Some(allowance) = max_msat.checked_sub(invoice_msat) else {
        return Err(CapError::InvoiceAboveCap {
            max_usd,
            invoice_msat,
            invoice_usd,
            fee_limit_msat: requested_fee_limit_msat,
            worst_case_usd: usd_for_requested_fee_limit,
            rate: rate.clone(),
            rate_source: at.source,
        });
    };
    let fee_limit_msat = requested_fee_limit_msat.min(allowance);
    let worst_case_msat = invoice_msat
        .checked_add(fee_limit_msat)
        .ok_or(PricingError::Overflow("msat"))?;
    let worst_case_units = units_covering(worst_case_msat, rate)?;
    Ok(CappedPayment {
        max_usd,
        max_units,
        invoice_msat,
        invoice_units,
        invoice_usd,
        requested_fee_limit_msat,
        fee_limit_msat,
        worst_case_msat,
        worst_case_units,
        worst_case_usd: pricing::units_to_usd(worst_case_units, at.decimals)?,
        usd_for_requested_fee_limit,
        rate: rate.clone(),
        rate_source: at.source,
    })
}

/// One way to pay an invoice and its worst case under the cap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RailCost {
    /// Sats from the node's channels, or the asset through the edge.
    pub rail: Rail,
    /// The fee limit and worst case on that rail.
    pub plan: CappedPayment,
}

/// The cheaper of the rails the payer holds: the least worst case in dollars, routing fees
/// included. Ties go to the rail listed first, so the caller states its preference by order.
pub fn cheaper(options: &[RailCost]) -> Option<&RailCost> {
    options.iter().reduce(|best, next| {
        if next.plan.worst_case_usd < best.plan.worst_case_usd {
            next
        } else {
            best
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn at(coefficient: &str, scale: u32) -> CapRate {
        CapRate {
            rate: FixedPoint::from_parts(coefficient, scale).unwrap(),
            decimals: 6,
            source: RateSource::EdgeSellQuote,
        }
    }

    /// simnet's $1.00 asset invoice (1,010,101 msat) paid at the edge's bid of 101e9 units per
    /// BTC, with a 2,010 msat fee: $1.022233 was spent under a $1.0205 cap before the fix.
    #[test]
    fn the_simnet_case_lowers_the_fee_limit_below_the_fee() {
        let p = plan(1_010_101, 10_000, d("1.0205"), &at("101000000000", 0)).unwrap();
        assert_eq!(p.invoice_units, 1_020_203);
        assert_eq!(p.max_units, 1_020_500);
        // units_to_msat(1,020,500) = 1,010,396: 295 msat left for fees, less than the 2,010
        // the edge charges, so the node refuses to route and nothing is spent.
        assert_eq!(p.fee_limit_msat, 295);
        assert!(p.fee_limit_lowered());
        assert!(p.worst_case_usd <= d("1.0205"), "{}", p.worst_case_usd);
        assert!(!p.holds_for(1_022_233));
        assert_eq!(p.usd_for_requested_fee_limit, d("1.030303"));
        // With room for the fee, the full --max-fee-msat is kept.
        let p = plan(1_010_101, 10_000, d("1.04"), &at("101000000000", 0)).unwrap();
        assert_eq!(p.fee_limit_msat, 10_000);
        assert!(!p.fee_limit_lowered());
        assert_eq!(
            p.worst_case_units,
            units_covering(1_020_101, &p.rate).unwrap()
        );
        assert!(p.holds_for(1_022_233));
    }

    #[test]
    fn an_invoice_above_the_cap_is_refused_naming_cap_price_and_fee() {
        let err = plan(1_010_101, 10_000, d("1.00"), &at("101000000000", 0)).unwrap_err();
        let text = err.to_string();
        for part in [
            "more than --max-usd 1.00",
            "(1010101 msat) alone comes to $1.020203",
            "$1.020203",
            "10000 msat",
            "$1.030303",
            "nothing was paid",
        ] {
            assert!(text.contains(part), "{part:?} missing: {text}");
        }
        assert!(matches!(
            plan(0, 10_000, d("1"), &at("1", 0)),
            Err(CapError::NoAmount)
        ));
    }

    #[test]
    fn a_cap_finer_than_a_unit_rounds_down_and_a_huge_cap_caps_nothing() {
        // 1 unit = 1 msat: a cap of $0.5000009 is 500,000 units, not 500,001.
        let p = plan(400_000, 200_000, d("0.5000009"), &at("100000000000", 0)).unwrap();
        assert_eq!((p.max_units, p.fee_limit_msat), (500_000, 100_000));
        let p = plan(400_000, 200_000, d("1e20"), &at("100000000000", 0)).unwrap();
        assert_eq!(p.fee_limit_msat, 200_000);
    }

    #[test]
    fn the_cheaper_rail_has_the_least_worst_case_and_ties_keep_the_order() {
        let sats = RailCost {
            rail: Rail::Sats,
            plan: plan(1_000_000, 10_000, d("5"), &at("100000000000", 0)).unwrap(),
        };
        let asset = RailCost {
            rail: Rail::Asset,
            plan: plan(1_000_000, 10_000, d("5"), &at("101000000000", 0)).unwrap(),
        };
        assert!(asset.plan.worst_case_usd > sats.plan.worst_case_usd);
        let both = [asset.clone(), sats.clone()];
        assert_eq!(cheaper(&both).map(|r| r.rail), Some(Rail::Sats));
        let same = [asset.clone(), asset.clone()];
        assert!(std::ptr::eq(cheaper(&same).unwrap(), &same[0]));
        assert_eq!(cheaper(&[]), None);
    }

    proptest! {
        /// The cap is hard: the worst case never exceeds it, the fee limit never exceeds what
        /// was asked, and it is the largest that keeps the cap.
        #[test]
        fn the_worst_case_never_exceeds_the_cap(
            invoice in 1u64..5_000_000_000,
            fee in 0u64..50_000_000,
            cap_micro in 1u64..100_000_000,
            c in 1_000_000u64..1_000_000_000_000_000,
            s in 0u32..13,
        ) {
            let at = CapRate {
                rate: FixedPoint::from_parts(&c.to_string(), s).unwrap(),
                decimals: 6,
                source: RateSource::EdgeSellQuote,
            };
            let max_usd = Decimal::new(cap_micro as i64, 6);
            match plan(invoice, fee, max_usd, &at) {
                Ok(p) => {
                    prop_assert!(p.fee_limit_msat <= fee);
                    let worst = units_covering(invoice + p.fee_limit_msat, &at.rate).unwrap();
                    prop_assert_eq!(worst, p.worst_case_units);
                    prop_assert!(pricing::units_to_usd(worst, 6).unwrap() <= max_usd);
                    if p.fee_limit_msat < fee {
                        let more = units_covering(invoice + p.fee_limit_msat + 1, &at.rate).unwrap();
                        prop_assert!(pricing::units_to_usd(more, 6).unwrap() > max_usd);
                    }
                }
                Err(CapError::InvoiceAboveCap { .. }) => {
                    let alone = units_covering(invoice, &at.rate).unwrap();
                    prop_assert!(pricing::units_to_usd(alone, 6).unwrap() > max_usd);
                }
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}
