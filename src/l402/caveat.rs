//! First-party caveats: their grammar, and the rule that a repeated caveat may only narrow.
//!
//! Conditions are `key=value` (split at the first `=`; spaces around either side are
//! tolerated because the bLIP's examples use them). The keys tapgate understands:
//!
//! | key | value | narrowing rule |
//! |---|---|---|
//! | `services` | `name:tier[,name:tier…]` | subset of the previous list |
//! | `<svc>_capabilities` | `a,b` | subset |
//! | `<svc>_valid_until` | unix seconds | not later than before |
//! | `<svc>_methods` | `GET,POST` (tapgate's) | subset |
//! | `<svc>_budget_usd` | decimal dollars (tapgate's) | not higher |
//! | `<svc>_max_calls` | integer (tapgate's) | not higher |
//!
//! When verifying for one service, caveats scoped to another service are ignored; a caveat for
//! this service with an unknown suffix, or an unscoped caveat nobody recognises, fails closed:
//! a restriction we cannot enforce must not silently become no restriction.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Serialize;

/// Scoped suffixes, in the form `<service><suffix>`.
const SUFFIX_CAPABILITIES: &str = "_capabilities";
const SUFFIX_VALID_UNTIL: &str = "_valid_until";
const SUFFIX_METHODS: &str = "_methods";
const SUFFIX_BUDGET_USD: &str = "_budget_usd";
const SUFFIX_MAX_CALLS: &str = "_max_calls";
const SUFFIXES: [(&str, Kind); 5] = [
    (SUFFIX_CAPABILITIES, Kind::Capabilities),
    (SUFFIX_VALID_UNTIL, Kind::ValidUntil),
    (SUFFIX_METHODS, Kind::Methods),
    (SUFFIX_BUDGET_USD, Kind::BudgetUsd),
    (SUFFIX_MAX_CALLS, Kind::MaxCalls),
];
const KEY_SERVICES: &str = "services";

/// Longest method name accepted in a `_methods` caveat.
const MAX_METHOD_LEN: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Capabilities,
    ValidUntil,
    Methods,
    BudgetUsd,
    MaxCalls,
}

/// A service and the tier the token grants on it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ServiceTier {
    /// Service name as configured on the gateway.
    pub name: String,
    /// Pricing tier; 0 is the base tier.
    pub tier: u8,
}

/// A parsed condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// `services=name:tier,…`
    Services(Vec<ServiceTier>),
    /// `<svc>_capabilities=a,b`
    Capabilities(BTreeSet<String>),
    /// `<svc>_valid_until=<unix seconds>`: valid while `now < value`.
    ValidUntil(u64),
    /// `<svc>_methods=GET,POST`
    Methods(BTreeSet<String>),
    /// `<svc>_budget_usd=<decimal>`
    BudgetUsd(Decimal),
    /// `<svc>_max_calls=<n>`
    MaxCalls(u64),
}

/// A caveat tapgate understands. `service` is `None` only for `services`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caveat {
    /// The service a scoped caveat applies to.
    pub service: Option<String>,
    /// What it restricts.
    pub condition: Condition,
}

/// Why a caveat, or a set of caveats, refuses access.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaveatError {
    /// Caveat bytes are not UTF-8 text.
    #[error("caveat is not UTF-8 text")]
    NotUtf8,
    /// No `=` in the caveat.
    #[error("caveat {0:?} is not of the form key=value")]
    NotKeyValue(String),
    /// The key is known but the value does not parse.
    #[error("caveat {key:?} has an invalid value: {reason}")]
    BadValue {
        /// The caveat key.
        key: String,
        /// What was expected.
        reason: String,
    },
    /// An unscoped caveat nobody recognises; tapgate fails closed on these.
    #[error("caveat {0:?} is not recognised; tapgate refuses restrictions it cannot enforce")]
    Unrecognized(String),
    /// A caveat scoped to this service with a suffix tapgate does not know.
    #[error("caveat {0:?} applies to this service but is not one tapgate can enforce")]
    UnknownForService(String),
    /// A repeated caveat tried to widen what an earlier one allowed.
    #[error("caveat {0:?} widens an earlier caveat; later caveats may only narrow access")]
    Widening(String),
    /// The token has no `services` caveat at all.
    #[error("token carries no services caveat; tapgate only honours tokens scoped to services")]
    NoServices,
    /// The requested service is not among the token's services.
    #[error("token is not valid for service {0:?}")]
    ServiceNotAllowed(String),
}

fn bad(key: &str, reason: impl Into<String>) -> CaveatError {
    CaveatError::BadValue {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// Splits `key=value` at the first `=`, trimming ASCII spaces around both.
pub fn split_condition(text: &str) -> Result<(&str, &str), CaveatError> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| CaveatError::NotKeyValue(text.to_owned()))?;
    let key = k.trim_matches(' ');
    if key.is_empty() {
        return Err(CaveatError::NotKeyValue(text.to_owned()));
    }
    Ok((key, v.trim_matches(' ')))
}

/// For `<svc><known suffix>` keys, the service and kind.
fn split_scoped(key: &str) -> Option<(&str, Kind)> {
    SUFFIXES.iter().find_map(|(suffix, kind)| {
        key.strip_suffix(suffix)
            .filter(|svc| !svc.is_empty())
            .map(|svc| (svc, *kind))
    })
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn parse_services(key: &str, value: &str) -> Result<Vec<ServiceTier>, CaveatError> {
    let mut out: Vec<ServiceTier> = Vec::new();
    for item in value.split(',') {
        let item = item.trim_matches(' ');
        let (name, tier) = item
            .split_once(':')
            .ok_or_else(|| bad(key, format!("{item:?} is not name:tier")))?;
        if !valid_name(name) {
            return Err(bad(key, format!("{name:?} is not a service name")));
        }
        let tier = tier
            .parse::<u8>()
            .map_err(|_| bad(key, format!("tier {tier:?} is not 0-255")))?;
        if out.iter().any(|s| s.name == name) {
            return Err(bad(key, format!("service {name:?} listed twice")));
        }
        out.push(ServiceTier {
            name: name.to_owned(),
            tier,
        });
    }
    Ok(out)
}

fn parse_list(key: &str, value: &str) -> Result<BTreeSet<String>, CaveatError> {
    if value.is_empty() {
        return Ok(BTreeSet::new());
    }
    value
        .split(',')
        .map(|s| {
            let s = s.trim_matches(' ');
            if valid_name(s) {
                Ok(s.to_owned())
            } else {
                Err(bad(key, format!("{s:?} is not a valid list item")))
            }
        })
        .collect()
}

fn parse_methods(key: &str, value: &str) -> Result<BTreeSet<String>, CaveatError> {
    let methods: BTreeSet<String> = value
        .split(',')
        .map(|m| {
            let m = m.trim_matches(' ');
            if !m.is_empty()
                && m.len() <= MAX_METHOD_LEN
                && m.bytes().all(|b| b.is_ascii_uppercase())
            {
                Ok(m.to_owned())
            } else {
                Err(bad(key, format!("{m:?} is not an upper-case HTTP method")))
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(methods)
}

fn parse_u64(key: &str, value: &str) -> Result<u64, CaveatError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(key, "expected a non-negative integer"));
    }
    value.parse().map_err(|_| bad(key, "integer out of range"))
}

fn parse_usd(key: &str, value: &str) -> Result<Decimal, CaveatError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad(
            key,
            "expected a non-negative decimal dollar amount like 0.25",
        ));
    }
    Decimal::from_str(value).map_err(|e| bad(key, format!("not a decimal amount: {e}")))
}

fn parse_value(kind: Kind, key: &str, value: &str) -> Result<Condition, CaveatError> {
    Ok(match kind {
        Kind::Capabilities => Condition::Capabilities(parse_list(key, value)?),
        Kind::ValidUntil => Condition::ValidUntil(parse_u64(key, value)?),
        Kind::Methods => Condition::Methods(parse_methods(key, value)?),
        Kind::BudgetUsd => Condition::BudgetUsd(parse_usd(key, value)?),
        Kind::MaxCalls => Condition::MaxCalls(parse_u64(key, value)?),
    })
}

impl Caveat {
    /// Parses a caveat without knowing which service is asking: for building and checking
    /// caveats (minting, `token attenuate`). Unknown keys are [`CaveatError::Unrecognized`].
    pub fn parse(text: &str) -> Result<Self, CaveatError> {
        let (key, value) = split_condition(text)?;
        if key == KEY_SERVICES {
            return Ok(Self {
                service: None,
                condition: Condition::Services(parse_services(key, value)?),
            });
        }
        let (svc, kind) =
            split_scoped(key).ok_or_else(|| CaveatError::Unrecognized(text.to_owned()))?;
        if !valid_name(svc) {
            return Err(bad(key, format!("{svc:?} is not a service name")));
        }
        Ok(Self {
            service: Some(svc.to_owned()),
            condition: parse_value(kind, key, value)?,
        })
    }

    /// A scoped caveat for `service`.
    pub fn scoped(service: &str, condition: Condition) -> Self {
        Self {
            service: Some(service.to_owned()),
            condition,
        }
    }
}

fn join<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    items
        .into_iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

impl fmt::Display for Caveat {
    /// The canonical text, as minted: no spaces, `key=value`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let svc = self.service.as_deref().unwrap_or_default();
        match &self.condition {
            Condition::Services(list) => {
                let items: Vec<String> = list
                    .iter()
                    .map(|s| format!("{}:{}", s.name, s.tier))
                    .collect();
                write!(f, "{KEY_SERVICES}={}", items.join(","))
            }
            Condition::Capabilities(c) => write!(f, "{svc}{SUFFIX_CAPABILITIES}={}", join(c)),
            Condition::ValidUntil(t) => write!(f, "{svc}{SUFFIX_VALID_UNTIL}={t}"),
            Condition::Methods(m) => write!(f, "{svc}{SUFFIX_METHODS}={}", join(m)),
            Condition::BudgetUsd(d) => write!(f, "{svc}{SUFFIX_BUDGET_USD}={d}"),
            Condition::MaxCalls(n) => write!(f, "{svc}{SUFFIX_MAX_CALLS}={n}"),
        }
    }
}

/// What the caveats leave of access to one service. `None` means "not restricted".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Restrictions {
    /// Valid while `now < valid_until` (unix seconds).
    pub valid_until: Option<u64>,
    /// Capabilities granted; absent means all.
    pub capabilities: Option<BTreeSet<String>>,
    /// HTTP methods allowed; absent means all.
    pub methods: Option<BTreeSet<String>>,
    /// Spending cap in dollars, enforced by metering.
    pub budget_usd: Option<Decimal>,
    /// Call cap, enforced by metering.
    pub max_calls: Option<u64>,
}

/// The result of evaluating a token's caveats for one service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// The tier the final `services` caveat grants on the service.
    pub tier: u8,
    /// The narrowest restrictions the caveats impose.
    pub restrictions: Restrictions,
}

/// Applies `next` on top of `prev`, refusing a widening.
fn narrow<T>(
    slot: &mut Option<T>,
    next: T,
    narrower: impl Fn(&T, &T) -> bool,
    key: &str,
) -> Result<(), CaveatError> {
    if let Some(prev) = slot.as_ref() {
        if !narrower(&next, prev) {
            return Err(CaveatError::Widening(key.to_owned()));
        }
    }
    *slot = Some(next);
    Ok(())
}

/// Evaluates every caveat of a token for `service`, in order.
///
/// Pure: the caller checks the result against the request (method, time).
pub fn evaluate<'a>(
    caveats: impl IntoIterator<Item = &'a [u8]>,
    service: &str,
) -> Result<Grant, CaveatError> {
    let texts: Vec<&str> = caveats
        .into_iter()
        .map(|c| std::str::from_utf8(c).map_err(|_| CaveatError::NotUtf8))
        .collect::<Result<_, _>>()?;

    // Every service any `services` caveat names: a key prefixed by one of them (other than
    // ours) is that service's business and is skipped.
    let mut services: Option<Vec<ServiceTier>> = None;
    let mut known_names: Vec<String> = Vec::new();
    for text in &texts {
        let (key, value) = split_condition(text)?;
        if key == KEY_SERVICES {
            let list = parse_services(key, value)?;
            known_names.extend(list.iter().map(|s| s.name.clone()));
            narrow(
                &mut services,
                list,
                |next, prev| next.iter().all(|s| prev.contains(s)),
                key,
            )?;
        }
    }
    let services = services.ok_or(CaveatError::NoServices)?;
    let tier = services
        .iter()
        .find(|s| s.name == service)
        .map(|s| s.tier)
        .ok_or_else(|| CaveatError::ServiceNotAllowed(service.to_owned()))?;

    // The longest service name that prefixes `key` as `<name>_…`: the service a key with an
    // unknown suffix belongs to (longest, so `svc_x_region` is `svc_x`'s, not `svc`'s).
    let owner = |key: &str| -> Option<&str> {
        known_names
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(service))
            .filter(|n| {
                key.len() > n.len() && key.starts_with(n) && key.as_bytes()[n.len()] == b'_'
            })
            .max_by_key(|n| n.len())
    };

    let mut r = Restrictions::default();
    for text in &texts {
        let (key, value) = split_condition(text)?;
        if key == KEY_SERVICES {
            continue;
        }
        match split_scoped(key) {
            Some((svc, kind)) if svc == service => match parse_value(kind, key, value)? {
                Condition::Capabilities(c) => {
                    narrow(&mut r.capabilities, c, |n, p| n.is_subset(p), key)?
                }
                Condition::ValidUntil(t) => narrow(&mut r.valid_until, t, |n, p| n <= p, key)?,
                Condition::Methods(m) => narrow(&mut r.methods, m, |n, p| n.is_subset(p), key)?,
                Condition::BudgetUsd(d) => narrow(&mut r.budget_usd, d, |n, p| n <= p, key)?,
                Condition::MaxCalls(n) => narrow(&mut r.max_calls, n, |n, p| n <= p, key)?,
                Condition::Services(_) => unreachable!("services is never a scoped key"),
            },
            // A known suffix on another service's name: not ours to enforce.
            Some(_) => {}
            None => match owner(key) {
                Some(svc) if svc == service => {
                    return Err(CaveatError::UnknownForService((*text).to_owned()));
                }
                Some(_) => {}
                None => return Err(CaveatError::Unrecognized((*text).to_owned())),
            },
        }
    }
    Ok(Grant {
        tier,
        restrictions: r,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eval(caveats: &[&str], svc: &str) -> Result<Grant, CaveatError> {
        evaluate(caveats.iter().map(|c| c.as_bytes()), svc)
    }

    #[test]
    fn full_set_evaluates() {
        let g = eval(
            &[
                "services=svc:1,other:0",
                "svc_capabilities=read,write",
                "svc_valid_until=2000000000",
                "svc_methods=GET,POST",
                "svc_budget_usd=5.00",
                "svc_max_calls=100",
                "other_valid_until=1",
                "other_custom=whatever",
            ],
            "svc",
        )
        .unwrap();
        assert_eq!(g.tier, 1);
        let r = g.restrictions;
        assert_eq!(r.valid_until, Some(2_000_000_000));
        assert_eq!(r.budget_usd, Some(Decimal::new(500, 2)));
        assert_eq!(r.max_calls, Some(100));
        assert_eq!(
            r.methods.unwrap().into_iter().collect::<Vec<_>>(),
            ["GET", "POST"]
        );
        assert_eq!(r.capabilities.unwrap().len(), 2);
    }

    #[test]
    fn repeats_may_narrow() {
        let g = eval(
            &[
                "services=svc:0,b:0",
                "services=svc:0",
                "svc_valid_until=200",
                "svc_valid_until=100",
                "svc_methods=GET,POST",
                "svc_methods=GET",
                "svc_budget_usd=2",
                "svc_budget_usd=1.5",
                "svc_max_calls=10",
                "svc_max_calls=10",
                "svc_capabilities=a,b",
                "svc_capabilities=",
            ],
            "svc",
        )
        .unwrap();
        assert_eq!(g.restrictions.valid_until, Some(100));
        assert_eq!(g.restrictions.budget_usd, Some(Decimal::new(15, 1)));
        assert_eq!(g.restrictions.capabilities, Some(BTreeSet::new()));
    }

    #[test]
    fn widening_fails() {
        for pair in [
            ["services=svc:0", "services=svc:0,b:0"],
            ["services=svc:0", "services=svc:1"],
            ["svc_valid_until=100", "svc_valid_until=101"],
            ["svc_methods=GET", "svc_methods=GET,POST"],
            ["svc_budget_usd=1", "svc_budget_usd=1.01"],
            ["svc_max_calls=1", "svc_max_calls=2"],
            ["svc_capabilities=a", "svc_capabilities=a,b"],
        ] {
            let mut caveats = vec!["services=svc:0,b:0"];
            if pair[0].starts_with("services") {
                caveats.clear();
            }
            caveats.extend(pair);
            assert!(
                matches!(eval(&caveats, "svc"), Err(CaveatError::Widening(_))),
                "{pair:?}"
            );
        }
    }

    #[test]
    fn unknown_caveats_fail_closed_unless_another_service_owns_them() {
        assert!(matches!(
            eval(&["services=svc:0", "ip=1.2.3.4"], "svc"),
            Err(CaveatError::Unrecognized(_))
        ));
        assert!(matches!(
            eval(&["services=svc:0", "svc_region=eu"], "svc"),
            Err(CaveatError::UnknownForService(_))
        ));
        // A service whose name extends ours owns its own keys.
        assert!(
            eval(
                &[
                    "services=svc:0,svc_x:0",
                    "svc_x_region=eu",
                    "svc_x_valid_until=1"
                ],
                "svc"
            )
            .is_ok()
        );
        // A known suffix for an unlisted service is still not ours.
        assert!(eval(&["services=svc:0", "zzz_valid_until=1"], "svc").is_ok());
    }

    #[test]
    fn service_scoping() {
        assert_eq!(
            eval(&["svc_valid_until=1"], "svc"),
            Err(CaveatError::NoServices)
        );
        assert_eq!(
            eval(&["services=a:0"], "svc"),
            Err(CaveatError::ServiceNotAllowed("svc".into()))
        );
        assert_eq!(eval(&["services = svc:3"], "svc").unwrap().tier, 3);
    }

    #[test]
    fn bad_values_are_typed() {
        for c in [
            "services=svc",
            "services=svc:256",
            "services=svc:0,svc:1",
            "services=",
            "svc_valid_until=-1",
            "svc_valid_until=1e9",
            "svc_methods=get",
            "svc_methods=",
            "svc_budget_usd=-1",
            "svc_budget_usd=abc",
            "svc_max_calls=99999999999999999999999",
        ] {
            let r = eval(&["services=svc:0", c], "svc");
            assert!(matches!(r, Err(CaveatError::BadValue { .. })), "{c}: {r:?}");
        }
        assert!(matches!(
            evaluate([&[0xffu8][..]], "svc"),
            Err(CaveatError::NotUtf8)
        ));
        assert!(matches!(
            eval(&["novalue"], "svc"),
            Err(CaveatError::NotKeyValue(_))
        ));
    }

    #[test]
    fn parse_and_display_round_trip() {
        for text in [
            "services=svc:0,b:2",
            "svc_capabilities=a,b",
            "svc_valid_until=17",
            "svc_methods=GET,POST",
            "svc_budget_usd=0.0025",
            "svc_max_calls=3",
        ] {
            assert_eq!(Caveat::parse(text).unwrap().to_string(), text);
        }
        assert!(matches!(
            Caveat::parse("foo=bar"),
            Err(CaveatError::Unrecognized(_))
        ));
    }

    proptest! {
        #[test]
        fn evaluate_never_panics(caveats in proptest::collection::vec(".{0,40}", 0..6), svc in "[a-z_]{1,6}") {
            let _ = evaluate(caveats.iter().map(|c| c.as_bytes()), &svc);
        }

        #[test]
        fn any_later_expiry_is_a_widening(a in 0u64..u64::MAX - 1, d in 1u64..1000) {
            let first = format!("s_valid_until={a}");
            let later = format!("s_valid_until={}", a.saturating_add(d));
            let r = eval(&["services=s:0", &first, &later], "s");
            prop_assert!(matches!(r, Err(CaveatError::Widening(_))));
        }

        #[test]
        fn budget_narrowing_is_monotone(a in 0u64..1_000_000, b in 0u64..1_000_000) {
            let first = format!("s_budget_usd={}", Decimal::new(a as i64, 4));
            let second = format!("s_budget_usd={}", Decimal::new(b as i64, 4));
            let r = eval(&["services=s:0", &first, &second], "s");
            prop_assert_eq!(r.is_ok(), b <= a);
        }
    }
}
