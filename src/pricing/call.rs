//! What one call costs: a dollar price made into asset units, then into msat at a rate.
//!
//! This is the mint's price arithmetic for a challenge, kept pure: the rate comes from the
//! caller (a cached RFQ quote or a fixed rate), and nothing here reads a clock or a node. The
//! seller's preview of a price is [`super::quote_usd`], which refuses a price finer than a unit
//! so the seller fixes it; a call's price is charged, so here it is rounded up instead.

use rust_decimal::Decimal;
use serde::Serialize;

use super::PricingError;
use super::convert::{units_to_msat, usd_to_units_ceil};
use super::fixed_point::FixedPoint;

/// The price of one call at one rate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallPrice {
    /// The dollar price.
    pub usd: Decimal,
    /// The price in asset units, rounded up to a whole unit ([`usd_to_units_ceil`]): what an
    /// asset invoice asks for.
    pub units: u64,
    /// Those units in msat at the rate, as tapd converts them ([`units_to_msat`], truncating):
    /// what tapd puts on an asset invoice for `units`, and what a sats invoice asks for, so a
    /// call costs the same whichever way it is paid.
    pub msat: u64,
}

/// Prices a call at `usd` for an asset with `decimals` decimal display at `rate` (asset units
/// per BTC).
///
/// Rounding favours the seller only as far as whole units and tapd's arithmetic force it: the
/// units are the fewest covering the price, so the charge is above the price by less than one
/// unit's worth; the msat are tapd's truncation of those units, so the charge falls short of the
/// price's exact msat value by less than one msat (plus `10^(11 − scale)` msat for a rate whose
/// scale is above tapd's arithmetic scale of 11). The property tests below check both bounds.
pub fn price_call(
    usd: Decimal,
    decimals: u8,
    rate: &FixedPoint,
) -> Result<CallPrice, PricingError> {
    let units = usd_to_units_ceil(usd, decimals)?;
    Ok(CallPrice {
        usd,
        units,
        msat: units_to_msat(units, rate)?,
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use num_bigint::BigUint;
    use proptest::prelude::*;

    use super::*;
    use crate::pricing::{MSAT_PER_BTC, rate_from_usd_per_btc};

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn pow10(k: u32) -> BigUint {
        BigUint::from(10u32).pow(k)
    }

    #[test]
    fn a_price_finer_than_a_unit_costs_a_whole_unit() {
        // $100,000/BTC, 6 decimals: one unit is one msat.
        let r = rate_from_usd_per_btc(d("100000"), 6).unwrap();
        let p = price_call(d("0.0000001"), 6, &r).unwrap();
        assert_eq!((p.units, p.msat), (1, 1));
        let p = price_call(d("0.01"), 6, &r).unwrap();
        assert_eq!((p.units, p.msat), (10_000, 10_000));
        assert_eq!(price_call(d("0"), 6, &r).unwrap().msat, 0);
    }

    #[test]
    fn msat_are_tapds_for_the_units() {
        // The reference vector of `convert.rs`: $1.00 at $97,123.45/BTC.
        let r = rate_from_usd_per_btc(d("97123.45"), 6).unwrap();
        let p = price_call(d("1.00"), 6, &r).unwrap();
        assert_eq!((p.units, p.msat), (1_000_000, 1_029_617));
        assert_eq!(p.usd, d("1.00"));
    }

    #[test]
    fn bad_input_is_refused() {
        let r = rate_from_usd_per_btc(d("100000"), 6).unwrap();
        assert_eq!(
            price_call(d("-1"), 6, &r),
            Err(PricingError::Negative("dollar amount"))
        );
        assert_eq!(price_call(d("1"), 13, &r), Err(PricingError::Decimals(13)));
        let zero = FixedPoint::from_parts("0", 0).unwrap();
        assert_eq!(price_call(d("1"), 6, &zero), Err(PricingError::ZeroRate));
        let tiny = FixedPoint::from_parts("1", 0).unwrap();
        assert_eq!(
            price_call(d("100000000"), 12, &tiny),
            Err(PricingError::Overflow("asset units"))
        );
        assert_eq!(
            price_call(d("1000000"), 12, &tiny),
            Err(PricingError::Overflow("msat"))
        );
    }

    /// A dollar price of up to 12 places (finer than most assets), below $10^12.
    fn usd() -> impl Strategy<Value = Decimal> {
        (0i64..1_000_000_000_000, 0u32..=12).prop_map(|(m, s)| Decimal::new(m, s))
    }

    /// A rate of `c / 10^s` units per BTC.
    fn rate() -> impl Strategy<Value = FixedPoint> {
        (1u64..1_000_000_000_000_000_000, 0u32..=14)
            .prop_map(|(c, s)| FixedPoint::from_parts(&c.to_string(), s).unwrap())
    }

    proptest! {
        #[test]
        fn the_charge_is_within_a_unit_above_and_a_msat_below_the_exact_price(usd in usd(), decimals in 0u8..=12, rate in rate()) {
            let Ok(p) = price_call(usd, decimals, &rate) else {
                // Only amounts beyond 64 bits may fail.
                prop_assert!(matches!(price_call(usd, decimals, &rate), Err(PricingError::Overflow(_))));
                return Ok(());
            };
            // Exact arithmetic over a common denominator. With usd = m / 10^us and the rate
            // R = c / 10^rs, the price's exact value is U = m·10^d / 10^us units and
            // E = U · MSAT_PER_BTC / R msat; everything below is multiplied by 10^us · c.
            let m = BigUint::from(usd.mantissa().unsigned_abs());
            let us = usd.scale();
            let c = rate.coef().clone();
            let rs = u32::from(rate.scale());
            let a = 11u32.max(rs);
            let e_num = &m * pow10(u32::from(decimals)) * MSAT_PER_BTC * pow10(rs);
            let msat = BigUint::from(p.msat);
            // Below: E − msat < 1 + 10^(11 − a), i.e. less than one msat at scale ≤ 11.
            // (msat + 1) · 10^a + 10^11 > E · 10^a, all times 10^us · c.
            let lhs = ((&msat + 1u32) * pow10(a) + pow10(11)) * pow10(us) * &c;
            prop_assert!(lhs > &e_num * pow10(a), "{usd} at {rate}: {p:?} undercharges");
            if a == 11 {
                prop_assert!((&msat + 1u32) * pow10(us) * &c > e_num.clone(), "{usd} at {rate}: {p:?}");
            }
            // Above: msat < (U + 1 unit) at the rate, so less than one unit's worth over.
            let over = (&m * pow10(u32::from(decimals)) + pow10(us)) * MSAT_PER_BTC * pow10(rs);
            prop_assert!(&msat * pow10(us) * &c < over, "{usd} at {rate}: {p:?} overcharges");
        }

        #[test]
        fn a_higher_price_never_costs_less(a in usd(), b in usd(), decimals in 0u8..=12, rate in rate()) {
            let (lo, hi) = (a.min(b), a.max(b));
            if let (Ok(x), Ok(y)) = (price_call(lo, decimals, &rate), price_call(hi, decimals, &rate)) {
                prop_assert!(x.units <= y.units, "{x:?} {y:?}");
                prop_assert!(x.msat <= y.msat, "{x:?} {y:?}");
            }
        }
    }
}
