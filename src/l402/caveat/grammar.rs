//! The caveat grammar: splitting `key=value`, checking values in place (no allocation on the
//! request path) and parsing them into [`super::Condition`]s for the command line.

use std::collections::BTreeSet;
use std::str::FromStr;

use rust_decimal::Decimal;

use super::{CaveatError, Condition, Kind, MAX_METHOD_LEN, SUFFIXES, ServiceTier};

pub(super) fn bad(key: &str, reason: impl Into<String>) -> CaveatError {
    CaveatError::BadValue {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// Trims ASCII spaces (only spaces: the bLIP's examples put them around `=`).
#[inline]
pub(super) fn trim_spaces(s: &str) -> &str {
    let b = s.as_bytes();
    let start = b.iter().position(|&c| c != b' ').unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != b' ').map_or(start, |e| e + 1);
    // Both ends sit next to ASCII bytes (or the string's ends), so they are char boundaries.
    s.get(start..end).unwrap_or_default()
}

/// Splits `s` at the first `sep`, an ASCII byte. Caveats are a few dozen bytes, where a plain
/// loop beats a `char` pattern's searcher (this runs several times per caveat per request).
#[inline]
pub(super) fn split_at_byte(s: &str, sep: u8) -> Option<(&str, &str)> {
    debug_assert!(sep.is_ascii());
    let at = s.bytes().position(|b| b == sep)?;
    // An ASCII byte is a whole character, so both sides are `str`s.
    Some((s.get(..at)?, s.get(at + 1..)?))
}

/// Splits `key=value` at the first `=`, trimming ASCII spaces around both.
#[inline]
pub fn split_condition(text: &str) -> Result<(&str, &str), CaveatError> {
    let (k, v) =
        split_at_byte(text, b'=').ok_or_else(|| CaveatError::NotKeyValue(text.to_owned()))?;
    let key = trim_spaces(k);
    if key.is_empty() {
        return Err(CaveatError::NotKeyValue(text.to_owned()));
    }
    Ok((key, trim_spaces(v)))
}

/// The kind of a known suffix given without its leading `_`.
#[inline]
pub(super) fn suffix_kind(suffix: &str) -> Option<Kind> {
    match suffix {
        "capabilities" => Some(Kind::Capabilities),
        "valid_until" => Some(Kind::ValidUntil),
        "methods" => Some(Kind::Methods),
        "budget_usd" => Some(Kind::BudgetUsd),
        "budget_usd_per_day" => Some(Kind::BudgetUsdPerDay),
        "max_calls" => Some(Kind::MaxCalls),
        _ => None,
    }
}

/// For `<svc><known suffix>` keys, the service and kind.
pub(super) fn split_scoped(key: &str) -> Option<(&str, Kind)> {
    SUFFIXES.iter().find_map(|(suffix, kind)| {
        key.strip_suffix(suffix)
            .filter(|svc| !svc.is_empty())
            .map(|svc| (svc, *kind))
    })
}

#[inline]
pub(super) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The items of a comma-separated value, trimmed of spaces: `value.split(',')`, trimmed.
#[inline]
pub(super) fn items(value: &str) -> Items<'_> {
    Items { rest: Some(value) }
}

/// See [`items`].
#[derive(Clone)]
pub(super) struct Items<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for Items<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        let item = match split_at_byte(rest, b',') {
            Some((item, tail)) => {
                self.rest = Some(tail);
                item
            }
            None => {
                self.rest = None;
                rest
            }
        };
        Some(trim_spaces(item))
    }
}

/// `name:tier` pairs of a `services` value already checked by [`check_services`].
#[inline]
pub(super) fn service_items(value: &str) -> impl Iterator<Item = (&str, u8)> {
    items(value).filter_map(|item| {
        let (name, tier) = split_at_byte(item, b':')?;
        Some((name, tier.parse().ok()?))
    })
}

/// Validates a `services` value without allocating (this runs on every request).
#[inline]
pub(super) fn check_services(key: &str, value: &str) -> Result<(), CaveatError> {
    for (i, item) in items(value).enumerate() {
        let (name, tier) = split_at_byte(item, b':')
            .ok_or_else(|| bad(key, format!("{item:?} is not name:tier")))?;
        if !valid_name(name) {
            return Err(bad(key, format!("{name:?} is not a service name")));
        }
        if tier.parse::<u8>().is_err() {
            return Err(bad(key, format!("tier {tier:?} is not 0-255")));
        }
        if service_items(value).take(i).any(|(n, _)| n == name) {
            return Err(bad(key, format!("service {name:?} listed twice")));
        }
    }
    Ok(())
}

#[inline]
pub(super) fn check_list(key: &str, value: &str) -> Result<(), CaveatError> {
    if value.is_empty() {
        return Ok(());
    }
    match items(value).find(|s| !valid_name(s)) {
        Some(s) => Err(bad(key, format!("{s:?} is not a valid list item"))),
        None => Ok(()),
    }
}

#[inline]
pub(super) fn check_methods(key: &str, value: &str) -> Result<(), CaveatError> {
    // The usual value (`GET,POST`: upper-case letters and commas, no spaces) in one pass over
    // its bytes; anything else, valid or not, takes the item-by-item way below.
    let mut len = 0usize;
    let plain = value.bytes().all(|b| match b {
        b',' => std::mem::replace(&mut len, 0) > 0,
        b'A'..=b'Z' => {
            len += 1;
            len <= MAX_METHOD_LEN
        }
        _ => false,
    });
    if plain && len > 0 {
        return Ok(());
    }
    let ok = |m: &str| {
        !m.is_empty() && m.len() <= MAX_METHOD_LEN && m.bytes().all(|b| b.is_ascii_uppercase())
    };
    match items(value).find(|m| !ok(m)) {
        Some(m) => Err(bad(key, format!("{m:?} is not an upper-case HTTP method"))),
        None => Ok(()),
    }
}

/// The items of a checked list value; an empty value is the empty set.
#[inline]
pub(super) fn list_items(value: &str) -> impl Iterator<Item = &str> {
    items(value).filter(|s| !s.is_empty())
}

pub(super) fn to_set(value: &str) -> BTreeSet<String> {
    list_items(value).map(str::to_owned).collect()
}

/// Every item of `next` is in `prev`.
#[inline]
pub(super) fn list_subset(next: &str, prev: &str) -> bool {
    list_items(next).all(|n| list_items(prev).any(|p| p == n))
}

#[inline]
pub(super) fn services_subset(next: &str, prev: &str) -> bool {
    service_items(next).all(|n| service_items(prev).any(|p| p == n))
}

pub(super) fn parse_services(key: &str, value: &str) -> Result<Vec<ServiceTier>, CaveatError> {
    check_services(key, value)?;
    Ok(service_items(value)
        .map(|(name, tier)| ServiceTier {
            name: name.to_owned(),
            tier,
        })
        .collect())
}

pub(super) fn parse_list(key: &str, value: &str) -> Result<BTreeSet<String>, CaveatError> {
    check_list(key, value)?;
    Ok(to_set(value))
}

pub(super) fn parse_methods(key: &str, value: &str) -> Result<BTreeSet<String>, CaveatError> {
    check_methods(key, value)?;
    Ok(to_set(value))
}

/// A non-negative decimal integer, in one pass over the digits.
#[inline]
pub(super) fn parse_u64(key: &str, value: &str) -> Result<u64, CaveatError> {
    let mut n: Option<u64> = Some(0);
    let mut digits = !value.is_empty();
    for b in value.bytes() {
        let d = b.wrapping_sub(b'0');
        digits &= d < 10;
        n = n
            .and_then(|n| n.checked_mul(10))
            .and_then(|n| n.checked_add(u64::from(d)));
    }
    match n {
        _ if !digits => Err(bad(key, "expected a non-negative integer")),
        Some(n) => Ok(n),
        None => Err(bad(key, "integer out of range")),
    }
}

pub(super) fn parse_usd(key: &str, value: &str) -> Result<Decimal, CaveatError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad(
            key,
            "expected a non-negative decimal dollar amount like 0.25",
        ));
    }
    Decimal::from_str(value).map_err(|e| bad(key, format!("not a decimal amount: {e}")))
}

pub(super) fn parse_value(kind: Kind, key: &str, value: &str) -> Result<Condition, CaveatError> {
    Ok(match kind {
        Kind::Capabilities => Condition::Capabilities(parse_list(key, value)?),
        Kind::ValidUntil => Condition::ValidUntil(parse_u64(key, value)?),
        Kind::Methods => Condition::Methods(parse_methods(key, value)?),
        Kind::BudgetUsd => Condition::BudgetUsd(parse_usd(key, value)?),
        Kind::BudgetUsdPerDay => Condition::BudgetUsdPerDay(parse_usd(key, value)?),
        Kind::MaxCalls => Condition::MaxCalls(parse_u64(key, value)?),
    })
}
