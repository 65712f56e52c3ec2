//! Value parsers for command-line flags.
//!
//! Amounts are checked where clap reads them, so a bad value is reported with the flag's name
//! (`invalid value '-1' for '--usd <USD>': …`) before any file is read or any node dialled.
//! Each message says what a good value looks like. Nothing here does I/O.

use rust_decimal::Decimal;

/// lnd carries msat amounts and fee limits as `int64`: larger values cannot be sent.
pub const MAX_MSAT: u64 = i64::MAX as u64;

/// A decimal amount like `1.25` (no exponent, no thousands separators).
pub fn decimal(s: &str) -> Result<Decimal, String> {
    Decimal::from_str_exact(s.trim())
        .map_err(|e| format!("{s:?} is not a decimal amount like 1.25 ({e})"))
}

/// A dollar amount above zero, for `--usd` and `--max-usd`.
pub fn positive_usd(s: &str) -> Result<Decimal, String> {
    let usd = decimal(s)?;
    if usd <= Decimal::ZERO {
        return Err(format!(
            "{s} is not a positive dollar amount; pass a price above zero, like 1.00"
        ));
    }
    Ok(usd)
}

/// A dollar price of one bitcoin above zero, for `--usd-per-btc`.
pub fn positive_usd_per_btc(s: &str) -> Result<Decimal, String> {
    let usd = decimal(s)?;
    if usd <= Decimal::ZERO {
        return Err(format!(
            "{s} is not a positive price; pass the dollar price of one bitcoin, like 97123.45"
        ));
    }
    Ok(usd)
}

fn whole_msat(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{s:?} is not a whole number of millisatoshis, like 500000"
        ));
    }
    match t.parse::<u64>() {
        Ok(n) if n <= MAX_MSAT => Ok(n),
        _ => Err(format!(
            "{t} msat is more than a node accepts (at most {MAX_MSAT} msat, lnd's int64)"
        )),
    }
}

/// An invoice amount in msat: at least 1, at most what lnd accepts.
pub fn amount_msat(s: &str) -> Result<u64, String> {
    match whole_msat(s)? {
        0 => Err("0 msat is no amount; pass at least 1 msat (1000 msat = 1 sat)".into()),
        n => Ok(n),
    }
}

/// A routing fee limit in msat: 0 or more, at most what lnd accepts.
pub fn fee_msat(s: &str) -> Result<u64, String> {
    whole_msat(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollar_amounts_must_be_positive() {
        assert_eq!(positive_usd("1.00"), Ok(Decimal::new(100, 2)));
        assert_eq!(positive_usd(" 0.5 "), Ok(Decimal::new(5, 1)));
        for bad in ["0", "0.00", "-1.00", "-0.01"] {
            let e = positive_usd(bad).unwrap_err();
            assert!(e.contains("not a positive dollar amount"), "{bad}: {e}");
        }
        assert!(positive_usd("1e3").unwrap_err().contains("decimal amount"));
        assert!(positive_usd_per_btc("0").is_err());
        assert!(positive_usd_per_btc("-97000").is_err());
        assert!(positive_usd_per_btc("97123.45").is_ok());
    }

    #[test]
    fn msat_amounts_stay_within_lnds_int64() {
        assert_eq!(amount_msat("500000"), Ok(500_000));
        assert_eq!(amount_msat(&MAX_MSAT.to_string()), Ok(MAX_MSAT));
        for too_big in [
            "9223372036854775808",
            "18446744073709551615",
            "99999999999999999999999",
        ] {
            let e = amount_msat(too_big).unwrap_err();
            assert!(e.contains("more than a node accepts"), "{too_big}: {e}");
        }
        assert!(amount_msat("0").unwrap_err().contains("at least 1 msat"));
        assert!(amount_msat("-5").unwrap_err().contains("whole number"));
        assert!(amount_msat("1.5").unwrap_err().contains("whole number"));
        assert_eq!(fee_msat("0"), Ok(0));
        assert!(fee_msat("99999999999999999999999").is_err());
    }
}
