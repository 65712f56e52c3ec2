//! The conversions, with tapd's arithmetic reproduced step by step (`rfqmath/convert.go`).

use num_bigint::BigUint;
use rust_decimal::Decimal;
use serde::Serialize;

use super::PricingError;
use super::fixed_point::FixedPoint;

/// Millisatoshis in one bitcoin.
pub const MSAT_PER_BTC: u64 = 100_000_000_000;

/// tapd's smallest HTLC that carries assets: 354 sat (`DefaultOnChainHtlcMSat`, the dust limit
/// of an HTLC output of unknown witness size). An asset HTLC carries this much BTC whatever
/// the asset amount, so smaller asset invoices are refused.
pub const DUST_LIMIT_MSAT: u64 = 354_000;

/// tapd's `defaultArithmeticScale`.
const ARITHMETIC_SCALE: u8 = 11;

/// Largest decimal display tapd accepts for an asset.
pub const MAX_DECIMALS: u8 = 12;

fn check_rate(rate: &FixedPoint) -> Result<u8, PricingError> {
    if rate.is_zero() {
        return Err(PricingError::ZeroRate);
    }
    Ok(ARITHMETIC_SCALE.max(rate.scale()))
}

/// msat → asset units at `rate` (units per BTC), rounded down, as tapd's
/// `MilliSatoshiToUnits(…).ScaleTo(0)`.
pub fn msat_to_units(msat: u64, rate: &FixedPoint) -> Result<u64, PricingError> {
    let a = check_rate(rate)?;
    let msat_fp = FixedPoint::from_u64(msat, a);
    let one_btc = FixedPoint::from_u64(MSAT_PER_BTC, a);
    let btc = msat_fp.div(&one_btc);
    let units = btc.mul(&rate.scale_to(a)).scale_to(rate.scale());
    units
        .to_u64_floor()
        .ok_or(PricingError::Overflow("asset units"))
}

/// Asset units → msat at `rate`, rounded down, as tapd's `UnitsToMilliSatoshi` with the
/// units given at scale 0 (how tapd's `AddInvoice` passes an asset amount).
pub fn units_to_msat(units: u64, rate: &FixedPoint) -> Result<u64, PricingError> {
    let a = check_rate(rate)?;
    let units_fp = FixedPoint::from_u64(units, 0).scale_to(a);
    let btc = units_fp.div(&rate.scale_to(a));
    let msat = btc.mul(&FixedPoint::from_u64(MSAT_PER_BTC, a));
    msat.to_u64_floor().ok_or(PricingError::Overflow("msat"))
}

/// Smallest asset amount an HTLC can carry at `rate`: the units worth [`DUST_LIMIT_MSAT`],
/// at least one (tapd's `MinTransportableUnits`).
pub fn min_transportable_units(rate: &FixedPoint) -> Result<u64, PricingError> {
    Ok(msat_to_units(DUST_LIMIT_MSAT, rate)?.max(1))
}

/// Smallest payment an asset channel can make at `rate`: the dust limit plus one unit
/// (tapd's `MinTransportableMSat`).
pub fn min_transportable_msat(rate: &FixedPoint) -> Result<u64, PricingError> {
    DUST_LIMIT_MSAT
        .checked_add(units_to_msat(1, rate)?)
        .ok_or(PricingError::Overflow("msat"))
}

fn check_decimals(decimals: u8) -> Result<(), PricingError> {
    if decimals > MAX_DECIMALS {
        Err(PricingError::Decimals(u32::from(decimals)))
    } else {
        Ok(())
    }
}

/// Dollars → asset units for a USD stablecoin with `decimals` decimal display
/// (1 unit = 10^-decimals dollars). Refuses amounts finer than one unit rather than rounding.
pub fn usd_to_units(usd: Decimal, decimals: u8) -> Result<u64, PricingError> {
    check_decimals(decimals)?;
    if usd.is_sign_negative() && !usd.is_zero() {
        return Err(PricingError::Negative("dollar amount"));
    }
    let norm = usd.normalize();
    if norm.scale() > u32::from(decimals) {
        return Err(PricingError::TooPrecise { usd, decimals });
    }
    let mantissa = BigUint::from(norm.mantissa().unsigned_abs());
    let units = mantissa * super::fixed_point::pow10(decimals - norm.scale() as u8);
    u64::try_from(units).map_err(|_| PricingError::Overflow("asset units"))
}

/// Dollars → asset units, rounded **up** to a whole unit: the fewest units worth at least `usd`.
/// For charging a price: [`usd_to_units`] refuses $0.0000005 on a 6-decimal coin, where a call
/// priced that way must still cost something, and rounding down would give it away. Exact
/// amounts give what [`usd_to_units`] gives.
pub fn usd_to_units_ceil(usd: Decimal, decimals: u8) -> Result<u64, PricingError> {
    match usd_to_units(usd, decimals) {
        Err(PricingError::TooPrecise { .. }) => {}
        exact => return exact,
    }
    // `usd` has more places than the asset (so it is positive, and its scale, at most 28, is
    // above `decimals`): units = ⌈mantissa / 10^(scale − decimals)⌉.
    let norm = usd.normalize();
    let extra = u8::try_from(norm.scale())
        .map_err(|_| PricingError::Scale(norm.scale()))?
        .saturating_sub(decimals);
    let divisor = super::fixed_point::pow10(extra);
    let mantissa = BigUint::from(norm.mantissa().unsigned_abs());
    let units = (mantissa + &divisor - 1u32) / divisor;
    u64::try_from(units).map_err(|_| PricingError::Overflow("asset units"))
}

/// Asset units → dollars (exact).
pub fn units_to_usd(units: u64, decimals: u8) -> Result<Decimal, PricingError> {
    check_decimals(decimals)?;
    Ok(Decimal::from_i128_with_scale(
        i128::from(units),
        u32::from(decimals),
    ))
}

/// The rate (asset units per BTC) of a USD stablecoin with `decimals` decimal display at a
/// given dollar price of one bitcoin.
pub fn rate_from_usd_per_btc(
    usd_per_btc: Decimal,
    decimals: u8,
) -> Result<FixedPoint, PricingError> {
    check_decimals(decimals)?;
    if usd_per_btc <= Decimal::ZERO {
        return Err(PricingError::ZeroRate);
    }
    let fp = FixedPoint::from_decimal(usd_per_btc)?;
    // units/BTC = usd/BTC · 10^decimals: shift the scale down instead of multiplying, so the
    // value stays exact; a negative scale becomes a larger coefficient.
    let shifted = if fp.scale() >= decimals {
        FixedPoint::from_parts(&fp.coefficient(), u32::from(fp.scale() - decimals))?
    } else {
        let coef = fp.coef() * super::fixed_point::pow10(decimals - fp.scale());
        FixedPoint::from_parts(&coef.to_string(), 0)?
    };
    Ok(shifted)
}

/// What a dollar price comes to at a rate: the seller's view before deploying a price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Quote {
    /// The dollar price.
    pub usd: Decimal,
    /// The asset's decimal display.
    pub decimals: u8,
    /// The rate used, asset units per BTC.
    pub rate: FixedPoint,
    /// The price in asset units.
    pub units: u64,
    /// What tapd will put on an asset invoice for those units (`value_msat`).
    pub msat: u64,
    /// Those msat converted back to units as the edge node does; may be below `units` by a
    /// unit or so (truncation), which is why tapd tolerates ±1 unit per HTLC.
    pub units_from_msat: u64,
    /// Smallest asset invoice tapd creates at this rate.
    pub min_transportable_units: u64,
    /// The same in dollars.
    pub min_transportable_usd: Decimal,
    /// Smallest payment an asset channel can make at this rate.
    pub min_transportable_msat: u64,
    /// Whether the price can be an asset invoice (`units >= min_transportable_units`);
    /// below it, sell prepaid balances instead.
    pub asset_invoice_possible: bool,
}

/// Everything about a dollar price at a rate.
pub fn quote_usd(usd: Decimal, decimals: u8, rate: &FixedPoint) -> Result<Quote, PricingError> {
    let units = usd_to_units(usd, decimals)?;
    let msat = units_to_msat(units, rate)?;
    let min_units = min_transportable_units(rate)?;
    Ok(Quote {
        usd,
        decimals,
        rate: rate.clone(),
        units,
        msat,
        units_from_msat: msat_to_units(msat, rate)?,
        min_transportable_units: min_units,
        min_transportable_usd: units_to_usd(min_units, decimals)?,
        min_transportable_msat: min_transportable_msat(rate)?,
        asset_invoice_possible: units >= min_units,
    })
}

/// The fewest units whose value at `rate` covers `msat` (`units_to_msat(units) ≥ msat`): an
/// upper bound on what paying `msat` with the asset spends, for the CLI's `--max-usd` cap. tapd
/// itself spends less or the same, [`msat_to_units`] (the floor) per HTLC
/// (lightninglabs/taproot-assets tapchannel/aux_traffic_shaper.go, v0.8.1), which is what the
/// tapd adapter reports and simnet debits.
pub fn units_covering(msat: u64, rate: &FixedPoint) -> Result<u64, PricingError> {
    // A value too large for msat certainly covers `msat`.
    let covers = |units: u64| match units_to_msat(units, rate) {
        Ok(m) => Ok(m >= msat),
        Err(PricingError::Overflow(_)) => Ok(true),
        Err(e) => Err(e),
    };
    // `msat_to_units` rounds down, so the answer is at or above it: gallop, then bisect.
    let mut lo = msat_to_units(msat, rate)?;
    if covers(lo)? {
        return Ok(lo);
    }
    let overflow = || PricingError::Overflow("asset units");
    let mut step = 1u64;
    let mut hi = lo.checked_add(step).ok_or_else(overflow)?;
    while !covers(hi)? {
        lo = hi;
        step = step.saturating_mul(2);
        hi = lo.checked_add(step).ok_or_else(overflow)?;
    }
    // Invariant: `lo` does not cover, `hi` does.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if covers(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

#[cfg(test)]
mod tests {
    #[test]
    fn units_covering_is_the_least_covering_amount() {
        let r = FixedPoint::from_parts("101000000000", 0).unwrap();
        assert_eq!(units_covering(1_010_101, &r).unwrap(), 1_020_203);
        assert_eq!(units_covering(0, &r).unwrap(), 0);
        // A unit worth 1,000 msat: 1 msat still takes a whole unit.
        let coarse = FixedPoint::from_parts("100000000", 0).unwrap();
        assert_eq!(units_covering(1, &coarse).unwrap(), 1);
        assert_eq!(units_covering(1_001, &coarse).unwrap(), 2);
    }

    proptest::proptest! {
        #[test]
        fn units_covering_covers_and_is_minimal(msat in 0u64..10_000_000_000_000, c in 1_000u64..1_000_000_000_000_000, s in 0u32..13) {
            let r = FixedPoint::from_parts(&c.to_string(), s).unwrap();
            let u = units_covering(msat, &r).unwrap();
            prop_assert!(units_to_msat(u, &r).unwrap() >= msat);
            if u > 0 {
                prop_assert!(units_to_msat(u - 1, &r).unwrap() < msat);
            }
        }

    }

    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn rate(c: &str, s: u32) -> FixedPoint {
        FixedPoint::from_parts(c, s).unwrap()
    }

    #[test]
    fn at_100k_usd_one_unit_is_one_msat() {
        let r = rate_from_usd_per_btc(d("100000"), 6).unwrap();
        assert_eq!(r, rate("100000000000", 0));
        for x in [0, 1, 354_000, 500_000, 123_456_789] {
            assert_eq!(msat_to_units(x, &r).unwrap(), x);
            assert_eq!(units_to_msat(x, &r).unwrap(), x);
        }
        // The same rate written at scale 6 gives identical results.
        let r6 = rate("100000000000000000", 6);
        assert_eq!(msat_to_units(500_000, &r6).unwrap(), 500_000);
        assert_eq!(units_to_msat(500_000, &r6).unwrap(), 500_000);
        assert_eq!(min_transportable_units(&r).unwrap(), 354_000);
        assert_eq!(min_transportable_msat(&r).unwrap(), 354_001);
        let q = quote_usd(d("0.01"), 6, &r).unwrap();
        assert_eq!((q.units, q.msat), (10_000, 10_000));
        assert!(!q.asset_invoice_possible);
        assert_eq!(q.min_transportable_usd, d("0.354"));
    }

    #[test]
    fn reference_vector_at_97123_45() {
        let r = rate_from_usd_per_btc(d("97123.45"), 6).unwrap();
        assert_eq!(r, rate("97123450000", 0));
        let q = quote_usd(d("1.00"), 6, &r).unwrap();
        assert_eq!(q.units, 1_000_000);
        assert_eq!(q.msat, 1_029_617);
        assert_eq!(q.units_from_msat, 999_999);
        assert_eq!(units_to_msat(10_000, &r).unwrap(), 10_296);
        assert_eq!(q.min_transportable_units, 343_817);
        assert!(q.asset_invoice_possible);
    }

    #[test]
    fn documented_examples() {
        // tapd docs: at $20,000/BTC, 6 decimals: 2e10 units per BTC, 200 units per sat.
        let r = rate_from_usd_per_btc(d("20000"), 6).unwrap();
        assert_eq!(r.coefficient(), "20000000000");
        assert_eq!(msat_to_units(1_000, &r).unwrap(), 200);
        // Polar's mock oracle: 100,000,000 assets per BTC, 1 unit = 1 sat.
        let mock = rate("100000000", 0);
        assert_eq!(units_to_msat(1, &mock).unwrap(), 1_000);
        assert_eq!(min_transportable_units(&mock).unwrap(), 354);
        assert_eq!(min_transportable_msat(&mock).unwrap(), 355_000);
        // A unit worth more than the dust limit: minimum is one unit.
        assert_eq!(min_transportable_units(&rate("1000", 0)).unwrap(), 1);
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(msat_to_units(1, &rate("0", 0)), Err(PricingError::ZeroRate));
        assert!(matches!(
            usd_to_units(d("0.0000001"), 6),
            Err(PricingError::TooPrecise { .. })
        ));
        assert_eq!(
            usd_to_units(d("-1"), 6),
            Err(PricingError::Negative("dollar amount"))
        );
        assert_eq!(usd_to_units(d("1"), 13), Err(PricingError::Decimals(13)));
        assert_eq!(usd_to_units(d("1.50000000"), 6), Ok(1_500_000));
        assert_eq!(usd_to_units_ceil(d("0.0000001"), 6), Ok(1));
        assert_eq!(usd_to_units_ceil(d("1.0000001"), 6), Ok(1_000_001));
        assert_eq!(usd_to_units_ceil(d("1.50000000"), 6), Ok(1_500_000));
        assert_eq!(usd_to_units_ceil(d("0"), 6), Ok(0));
        assert_eq!(usd_to_units_ceil(d("0.9"), 0), Ok(1));
        assert_eq!(
            usd_to_units_ceil(d("-0.0000001"), 6),
            Err(PricingError::Negative("dollar amount"))
        );
        assert_eq!(
            usd_to_units_ceil(d("1"), 13),
            Err(PricingError::Decimals(13))
        );
        assert!(matches!(
            units_to_msat(u64::MAX, &rate("1", 0)),
            Err(PricingError::Overflow(_))
        ));
        assert!(rate_from_usd_per_btc(d("0"), 6).is_err());
    }

    proptest! {
        #[test]
        fn msat_round_trip_never_gains(msat in 0u64..1_000_000_000_000_000, c in 1u64..1_000_000_000_000_000, s in 0u32..13) {
            let r = rate(&c.to_string(), s);
            let units = msat_to_units(msat, &r).unwrap();
            if let Ok(back) = units_to_msat(units, &r) {
                prop_assert!(back <= msat, "{msat} -> {units} -> {back}");
            }
        }

        #[test]
        fn units_round_trip_never_gains(units in 0u64..1_000_000_000_000, c in 1_000u64..1_000_000_000_000_000, s in 0u32..13) {
            let r = rate(&c.to_string(), s);
            if let Ok(msat) = units_to_msat(units, &r) {
                let back = msat_to_units(msat, &r).unwrap();
                prop_assert!(back <= units);
            }
        }

        #[test]
        fn conversions_are_monotone(a in 0u64..1_000_000_000_000, b in 0u64..1_000_000_000_000, c in 1u64..1_000_000_000_000_000) {
            let r = rate(&c.to_string(), 0);
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert!(msat_to_units(lo, &r).unwrap() <= msat_to_units(hi, &r).unwrap());
            if let (Ok(x), Ok(y)) = (units_to_msat(lo, &r), units_to_msat(hi, &r)) {
                prop_assert!(x <= y);
            }
        }

        #[test]
        fn scale_does_not_change_the_value(msat in 0u64..1_000_000_000_000, c in 1u64..1_000_000_000_000, extra in 0u32..6) {
            let r0 = rate(&c.to_string(), 0);
            let scaled = format!("{c}{}", "0".repeat(extra as usize));
            let r = rate(&scaled, extra);
            prop_assert_eq!(msat_to_units(msat, &r0).unwrap(), msat_to_units(msat, &r).unwrap());
            prop_assert_eq!(units_to_msat(msat, &r0).unwrap(), units_to_msat(msat, &r).unwrap());
        }

        #[test]
        fn usd_to_units_ceil_is_the_least_covering_amount(mantissa in 0i64..1_000_000_000_000_000, scale in 0u32..=18, decimals in 0u8..=12) {
            let usd = Decimal::new(mantissa, scale);
            let units = match usd_to_units_ceil(usd, decimals) {
                Ok(units) => units,
                // Only amounts beyond u64 units may fail, and they must say so.
                Err(e) => {
                    prop_assert_eq!(e, PricingError::Overflow("asset units"));
                    return Ok(());
                }
            };
            // units · 10^-decimals ≥ usd > (units − 1) · 10^-decimals.
            let covered = |u: u64| units_to_usd(u, decimals).unwrap() >= usd;
            prop_assert!(covered(units));
            if units > 0 {
                prop_assert!(!covered(units - 1));
            }
            if let Ok(exact) = usd_to_units(usd, decimals) {
                prop_assert_eq!(exact, units);
            }
        }

        #[test]
        fn usd_units_round_trip(cents in 0u64..10_000_000_000, decimals in 2u8..=12) {
            let usd = Decimal::new(cents as i64, 2);
            match usd_to_units(usd, decimals) {
                Ok(units) => prop_assert_eq!(units_to_usd(units, decimals).unwrap(), usd),
                // Only amounts beyond u64 units may fail, and they must say so.
                Err(e) => {
                    prop_assert_eq!(e, PricingError::Overflow("asset units"));
                    prop_assert!(u128::from(cents) * 10u128.pow(u32::from(decimals) - 2) > u128::from(u64::MAX));
                }
            }
        }
    }
}
