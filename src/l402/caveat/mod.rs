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
//! | `<svc>_budget_usd_per_day` | decimal dollars per UTC day (tapgate's) | not higher |
//! | `<svc>_max_calls` | integer (tapgate's) | not higher |
//!
//! The three caps are enforced by metering, not here: every one of them in a token's chain is
//! a meter of its own ([`evaluate_metered`] says which caveats they are), so a sub-agent's
//! token spends against its own cap and against every cap of the tokens it was narrowed from.
//!
//! When verifying for one service, caveats scoped to another service are ignored; a caveat for
//! this service with an unknown suffix, or an unscoped caveat nobody recognises, fails closed:
//! a restriction we cannot enforce must not silently become no restriction.

use std::collections::BTreeSet;
use std::fmt;

use rust_decimal::Decimal;
use serde::Serialize;

mod grammar;

pub use grammar::split_condition;
use grammar::*;

/// Scoped suffixes, in the form `<service><suffix>`.
const SUFFIX_CAPABILITIES: &str = "_capabilities";
const SUFFIX_VALID_UNTIL: &str = "_valid_until";
const SUFFIX_METHODS: &str = "_methods";
const SUFFIX_BUDGET_USD: &str = "_budget_usd";
const SUFFIX_BUDGET_USD_PER_DAY: &str = "_budget_usd_per_day";
const SUFFIX_MAX_CALLS: &str = "_max_calls";
const SUFFIXES: [(&str, Kind); 6] = [
    (SUFFIX_CAPABILITIES, Kind::Capabilities),
    (SUFFIX_VALID_UNTIL, Kind::ValidUntil),
    (SUFFIX_METHODS, Kind::Methods),
    (SUFFIX_BUDGET_USD, Kind::BudgetUsd),
    (SUFFIX_BUDGET_USD_PER_DAY, Kind::BudgetUsdPerDay),
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
    BudgetUsdPerDay,
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
    /// `<svc>_budget_usd_per_day=<decimal>`: dollars per UTC day.
    BudgetUsdPerDay(Decimal),
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
            Condition::BudgetUsdPerDay(d) => write!(f, "{svc}{SUFFIX_BUDGET_USD_PER_DAY}={d}"),
            Condition::MaxCalls(n) => write!(f, "{svc}{SUFFIX_MAX_CALLS}={n}"),
        }
    }
}

/// A set of names (methods, capabilities) as granted by a caveat, kept as the caveat's own
/// comma-separated text, since a decision is built on every request: inline when short (the
/// usual `GET,POST`), so that no allocation is made for it, else in one allocation. Compares
/// and serialises as a set.
#[derive(Clone)]
pub struct NameSet(Names);

/// Caveat text up to this many bytes is kept inline in a [`NameSet`].
const INLINE_NAMES: usize = 46;

#[derive(Clone)]
enum Names {
    /// `text[..len]` is the caveat value (UTF-8: it was a `&str`).
    Inline {
        len: u8,
        text: [u8; INLINE_NAMES],
    },
    Heap(Box<str>),
}

impl NameSet {
    /// From a caveat value already checked by the caveat grammar.
    #[inline]
    fn from_checked(value: &str) -> Self {
        let mut text = [0u8; INLINE_NAMES];
        match (text.get_mut(..value.len()), u8::try_from(value.len())) {
            (Some(slot), Ok(len)) => {
                slot.copy_from_slice(value.as_bytes());
                Self(Names::Inline { len, text })
            }
            _ => Self(Names::Heap(value.into())),
        }
    }

    /// The caveat value the set was made from.
    fn text(&self) -> &str {
        match &self.0 {
            // A whole `&str` was copied in, so this is UTF-8 and within bounds.
            Names::Inline { len, text } => text
                .get(..usize::from(*len))
                .and_then(|t| std::str::from_utf8(t).ok())
                .unwrap_or_default(),
            Names::Heap(text) => text,
        }
    }

    /// True if `name` is in the set.
    pub fn contains(&self, name: &str) -> bool {
        list_items(self.text()).any(|n| n == name)
    }

    /// The names, in caveat order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        list_items(self.text())
    }

    /// True if no name is granted.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl PartialEq for NameSet {
    fn eq(&self, other: &Self) -> bool {
        list_subset(self.text(), other.text()) && list_subset(other.text(), self.text())
    }
}

impl Eq for NameSet {}

impl fmt::Debug for NameSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for NameSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sorted: BTreeSet<&str> = self.iter().collect();
        s.collect_seq(sorted)
    }
}

/// What the caveats leave of access to one service. `None` means "not restricted".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Restrictions {
    /// Valid while `now < valid_until` (unix seconds).
    pub valid_until: Option<u64>,
    /// Capabilities granted; absent means all.
    pub capabilities: Option<NameSet>,
    /// HTTP methods allowed; absent means all.
    pub methods: Option<NameSet>,
    /// Spending cap in dollars, enforced by metering.
    pub budget_usd: Option<Decimal>,
    /// Spending cap in dollars per UTC day, enforced by metering.
    pub budget_usd_per_day: Option<Decimal>,
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
fn narrow<T: Copy>(
    slot: &mut Option<T>,
    next: T,
    narrower: impl Fn(T, T) -> bool,
    key: &str,
) -> Result<(), CaveatError> {
    if let Some(prev) = *slot
        && !narrower(next, prev)
    {
        return Err(CaveatError::Widening(key.to_owned()));
    }
    *slot = Some(next);
    Ok(())
}

/// Whom a caveat's key concerns, for the service being verified.
#[derive(Clone, Copy)]
enum Scope {
    /// `services`.
    Services,
    /// This service's, of a known kind.
    Own(Kind),
    /// Another service's, of a known kind.
    Other,
    /// No known suffix: judged after the loop.
    Unknown,
}

fn scope_of(key: &str, service: &str) -> Scope {
    if key == KEY_SERVICES {
        return Scope::Services;
    }
    // This service's own keys: one prefix compare and one `match`.
    let own = key
        .strip_prefix(service)
        .and_then(|rest| rest.strip_prefix('_'))
        .and_then(suffix_kind);
    if let Some(kind) = own {
        return Scope::Own(kind);
    }
    match split_scoped(key) {
        Some((svc, kind)) if svc == service => Scope::Own(kind),
        Some(_) => Scope::Other,
        None => Scope::Unknown,
    }
}

/// `(key, value, scope)` of a caveat written as tapgate mints them: `services=…` or
/// `<service>_<known suffix>=…`, no spaces around the key. `None` for anything else.
fn minted_key<'t>(text: &'t str, service: &str) -> Option<(&'t str, &'t str, Scope)> {
    if let Some(value) = strip_fixed(text, b"services=") {
        return Some((
            text.get(..KEY_SERVICES.len())?,
            trim_spaces(value),
            Scope::Services,
        ));
    }
    let rest = text.strip_prefix(service)?.strip_prefix('_')?;
    let (value, kind) = match rest.as_bytes() {
        [b'c', ..] => (strip_fixed(rest, b"capabilities=")?, Kind::Capabilities),
        [b'v', ..] => (strip_fixed(rest, b"valid_until=")?, Kind::ValidUntil),
        [b'm', b'e', ..] => (strip_fixed(rest, b"methods=")?, Kind::Methods),
        [b'm', ..] => (strip_fixed(rest, b"max_calls=")?, Kind::MaxCalls),
        [b'b', ..] => match strip_fixed(rest, b"budget_usd_per_day=") {
            Some(value) => (value, Kind::BudgetUsdPerDay),
            None => (strip_fixed(rest, b"budget_usd=")?, Kind::BudgetUsd),
        },
        _ => return None,
    };
    let key = text.get(..text.len().checked_sub(value.len() + 1)?)?;
    Some((key, trim_spaces(value), Scope::Own(kind)))
}

/// `text` after `prefix`, an ASCII prefix of fixed length: compared as an array, which the
/// compiler does with a load or two, where `str::strip_prefix` calls `memcmp` (this runs for
/// every caveat of every request).
#[inline(always)]
fn strip_fixed<'t, const N: usize>(text: &'t str, prefix: &[u8; N]) -> Option<&'t str> {
    if text.as_bytes().first_chunk::<N>() == Some(prefix) {
        text.get(N..)
    } else {
        None
    }
}

/// Evaluates every caveat of a token for `service`, in order.
///
/// Pure: the caller checks the result against the request (method, time). This is on every
/// request's path, so values are checked in place and only the final restrictions allocate.
pub fn evaluate<'a>(
    caveats: impl IntoIterator<Item = &'a [u8]>,
    service: &str,
) -> Result<Grant, CaveatError> {
    evaluate_texts(
        caveats.into_iter().map(|raw| std::str::from_utf8(raw).ok()),
        service,
    )
}

/// [`evaluate`] for caveats whose UTF-8 was already checked: each is its text, or `None` if it
/// is not UTF-8 (refused as [`CaveatError::NotUtf8`] when reached).
pub(crate) fn evaluate_texts<'a>(
    caveats: impl IntoIterator<Item = Option<&'a str>>,
    service: &str,
) -> Result<Grant, CaveatError> {
    evaluate_metered(caveats, service).map(|(grant, _)| grant)
}

/// Which caveats of a chain are meters for the service evaluated: bit `i` is set when caveat
/// `i` (from 0) is one of the service's `_budget_usd`, `_budget_usd_per_day` or `_max_calls`
/// caveats. Zero for a token without caps, which is what lets verification skip metering.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeterMask(pub u64);

impl MeterMask {
    /// Caveat positions a mask can name; a macaroon carries at most
    /// [`crate::l402::macaroon::MAX_CAVEATS`], fewer than this.
    pub const CAPACITY: usize = 64;

    /// True if no caveat is a meter.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True if caveat `index` is a meter.
    pub fn contains(self, index: usize) -> bool {
        index < Self::CAPACITY && self.0 & (1 << index) != 0
    }

    /// The position of the last meter, if any.
    pub fn last(self) -> Option<usize> {
        (self.0 != 0).then(|| 63 - self.0.leading_zeros() as usize)
    }
}

/// What a metered caveat caps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MeterKind {
    /// `_budget_usd`: dollars spent through the token, ever.
    Usd,
    /// `_budget_usd_per_day`: dollars spent through the token in one UTC day.
    UsdPerDay,
    /// `_max_calls`: calls made through the token.
    Calls,
}

/// The kind and cap of caveat `text` if it is one of `service`'s meters (as [`evaluate`]
/// classifies it), the cap in whole micro-dollars (rounded down, so a cap is never raised) or
/// in calls. `None` for any other caveat, and for one whose value does not parse (evaluation
/// refuses those first).
pub(crate) fn meter_of(text: &str, service: &str) -> Option<(MeterKind, u64)> {
    let (key, value, scope) = classify(text, service, by_prefix(service)).ok()?;
    match scope {
        Scope::Own(Kind::BudgetUsd) => {
            Some((MeterKind::Usd, micro_usd_floor(parse_usd(key, value).ok()?)))
        }
        Scope::Own(Kind::BudgetUsdPerDay) => Some((
            MeterKind::UsdPerDay,
            micro_usd_floor(parse_usd(key, value).ok()?),
        )),
        Scope::Own(Kind::MaxCalls) => Some((MeterKind::Calls, parse_u64(key, value).ok()?)),
        _ => None,
    }
}

/// Dollars as whole micro-dollars, rounded down; `u64::MAX` beyond it.
pub fn micro_usd_floor(usd: Decimal) -> u64 {
    let m = (usd * Decimal::from(1_000_000)).floor();
    u64::try_from(m.mantissa() / 10i128.pow(m.scale())).unwrap_or(u64::MAX)
}

/// Whether caveats as minted can be recognised by their prefix for `service`: the same split
/// as at the first '=' unless the service name itself has an '=' or starts with a space.
fn by_prefix(service: &str) -> bool {
    !service.starts_with(' ') && !service.bytes().any(|b| b == b'=')
}

/// `(key, value, scope)` of one caveat's text for `service`.
#[inline]
fn classify<'t>(
    text: &'t str,
    service: &str,
    by_prefix: bool,
) -> Result<(&'t str, &'t str, Scope), CaveatError> {
    match by_prefix.then(|| minted_key(text, service)).flatten() {
        Some(minted) => Ok(minted),
        None => {
            let (key, value) = split_condition(text)?;
            Ok((key, value, scope_of(key, service)))
        }
    }
}

/// [`evaluate_texts`], and which caveats are meters for `service`.
pub(crate) fn evaluate_metered<'a>(
    caveats: impl IntoIterator<Item = Option<&'a str>>,
    service: &str,
) -> Result<(Grant, MeterMask), CaveatError> {
    let mut first_services: Option<&str> = None;
    let mut services: Option<&str> = None;
    let mut capabilities: Option<&str> = None;
    let mut methods: Option<&str> = None;
    let mut valid_until: Option<u64> = None;
    let mut budget_usd: Option<Decimal> = None;
    let mut budget_usd_per_day: Option<Decimal> = None;
    let mut max_calls: Option<u64> = None;
    let mut meters = MeterMask::default();
    // Caveats with no known suffix: whether they are another service's or fail closed depends
    // on every service name, so they are judged after the loop (they are rare).
    let mut unscoped: Vec<&str> = Vec::new();

    // Caveats as minted, `services=…` and `<service>_<suffix>=…`, are recognised by their
    // prefix (see [`by_prefix`]).
    let by_prefix = by_prefix(service);
    for (index, text) in caveats.into_iter().enumerate() {
        let text = text.ok_or(CaveatError::NotUtf8)?;
        let (key, value, scope) = classify(text, service, by_prefix)?;
        match scope {
            Scope::Services => {
                check_services(key, value)?;
                narrow(&mut services, value, services_subset, key)?;
                first_services.get_or_insert(value);
            }
            Scope::Own(Kind::Capabilities) => {
                check_list(key, value)?;
                narrow(&mut capabilities, value, list_subset, key)?;
            }
            Scope::Own(Kind::Methods) => {
                check_methods(key, value)?;
                narrow(&mut methods, value, list_subset, key)?;
            }
            Scope::Own(Kind::ValidUntil) => {
                narrow(&mut valid_until, parse_u64(key, value)?, |n, p| n <= p, key)?
            }
            Scope::Own(Kind::BudgetUsd) => {
                narrow(&mut budget_usd, parse_usd(key, value)?, |n, p| n <= p, key)?;
                meter_at(&mut meters, index, key)?;
            }
            Scope::Own(Kind::BudgetUsdPerDay) => {
                let cap = parse_usd(key, value)?;
                narrow(&mut budget_usd_per_day, cap, |n, p| n <= p, key)?;
                meter_at(&mut meters, index, key)?;
            }
            Scope::Own(Kind::MaxCalls) => {
                narrow(&mut max_calls, parse_u64(key, value)?, |n, p| n <= p, key)?;
                meter_at(&mut meters, index, key)?;
            }
            // A known suffix on another service's name: not ours to enforce.
            Scope::Other => {}
            Scope::Unknown => unscoped.push(text),
        }
    }

    let services = services.ok_or(CaveatError::NoServices)?;
    let tier = service_items(services)
        .find(|(name, _)| *name == service)
        .map(|(_, tier)| tier)
        .ok_or_else(|| CaveatError::ServiceNotAllowed(service.to_owned()))?;

    // Later `services` caveats are subsets of the first, so the first names every service.
    let names = first_services.unwrap_or_default();
    for text in unscoped {
        let (key, _) = split_condition(text)?;
        // The longest service name that prefixes `key` as `<name>_…` owns it (longest, so
        // `svc_x_region` is `svc_x`'s, not `svc`'s).
        let owner = service_items(names)
            .map(|(n, _)| n)
            .chain(std::iter::once(service))
            .filter(|n| {
                key.len() > n.len() && key.starts_with(n) && key.as_bytes()[n.len()] == b'_'
            })
            .max_by_key(|n| n.len());
        match owner {
            Some(svc) if svc == service => {
                return Err(CaveatError::UnknownForService(text.to_owned()));
            }
            Some(_) => {}
            None => return Err(CaveatError::Unrecognized(text.to_owned())),
        }
    }

    Ok((
        Grant {
            tier,
            restrictions: Restrictions {
                valid_until,
                capabilities: capabilities.map(NameSet::from_checked),
                methods: methods.map(NameSet::from_checked),
                budget_usd,
                budget_usd_per_day,
                max_calls,
            },
        },
        meters,
    ))
}

/// Marks caveat `index` as a meter; a cap past what a mask can name is refused rather than
/// left unmetered (a macaroon cannot carry that many caveats, so only a direct caller can).
fn meter_at(mask: &mut MeterMask, index: usize, key: &str) -> Result<(), CaveatError> {
    if index >= MeterMask::CAPACITY {
        return Err(bad(key, "a cap must be among a token's first 64 caveats"));
    }
    mask.0 |= 1 << index;
    Ok(())
}

/// Refuses a caveat chain in which a caveat widens an earlier one, by the rules verification
/// applies ([`evaluate`]): for minting and attenuating, since a widened token would be refused
/// by every tapgate anyway. `evaluate` judges the `services` caveats and the caveats of one
/// service, so it runs once for every service the chain names; its other refusals (a service
/// missing, say) are for verification to report, not this.
pub fn check_narrowing<C: AsRef<[u8]>>(chain: &[C]) -> Result<(), CaveatError> {
    let mut services = BTreeSet::new();
    for text in chain
        .iter()
        .filter_map(|c| std::str::from_utf8(c.as_ref()).ok())
    {
        match Caveat::parse(text) {
            Ok(Caveat {
                service: Some(svc), ..
            }) => {
                services.insert(svc);
            }
            Ok(Caveat {
                condition: Condition::Services(list),
                ..
            }) => services.extend(list.into_iter().map(|s| s.name)),
            _ => {}
        }
    }
    for svc in &services {
        if let Err(e @ CaveatError::Widening(_)) = evaluate(chain.iter().map(|c| c.as_ref()), svc) {
            return Err(e);
        }
    }
    Ok(())
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
                "svc_budget_usd_per_day=0.50",
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
        assert_eq!(r.budget_usd_per_day, Some(Decimal::new(50, 2)));
        assert_eq!(r.max_calls, Some(100));
        assert_eq!(
            r.methods.unwrap().iter().collect::<Vec<_>>(),
            ["GET", "POST"]
        );
        assert_eq!(r.capabilities.unwrap().iter().count(), 2);
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
        assert!(g.restrictions.capabilities.unwrap().is_empty());
    }

    #[test]
    fn widening_fails() {
        for pair in [
            ["services=svc:0", "services=svc:0,b:0"],
            ["services=svc:0", "services=svc:1"],
            ["svc_valid_until=100", "svc_valid_until=101"],
            ["svc_methods=GET", "svc_methods=GET,POST"],
            ["svc_budget_usd=1", "svc_budget_usd=1.01"],
            ["svc_budget_usd_per_day=1", "svc_budget_usd_per_day=1.01"],
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
            "svc_budget_usd_per_day=-0.1",
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
            "svc_budget_usd_per_day=0.10",
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
        /// The one-pass check of a methods value agrees with the item-by-item rule: items
        /// split at commas and trimmed of spaces, each 1 to 32 upper-case letters.
        #[test]
        fn methods_are_checked_alike_either_way(value in "[A-Z, a]{0,40}", long in 30usize..36) {
            for v in [value.clone(), "G".repeat(long), format!("GET,{}", "P".repeat(long))] {
                let by_items = super::grammar::items(&v).all(|m| {
                    !m.is_empty() && m.len() <= MAX_METHOD_LEN && m.bytes().all(|b| b.is_ascii_uppercase())
                });
                prop_assert_eq!(super::grammar::check_methods("k", &v).is_ok(), by_items, "{:?}", v);
            }
        }

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

    #[test]
    fn caps_are_marked_as_meters_and_nothing_else_is() {
        let caveats = [
            "services=svc:0,b:0",
            "svc_budget_usd=1",
            "svc_methods=GET",
            "b_budget_usd=1",
            "svc_budget_usd_per_day = 0.5",
            "svc_max_calls=3",
        ];
        let texts = caveats.iter().map(|c| Some(*c));
        let (g, mask) = evaluate_metered(texts, "svc").unwrap();
        assert_eq!(mask, MeterMask(0b110010));
        assert_eq!(mask.last(), Some(5));
        assert!(mask.contains(1) && !mask.contains(3));
        assert_eq!(g.restrictions.budget_usd_per_day, Some(Decimal::new(5, 1)));
        let (_, none) = evaluate_metered(caveats[..3].iter().map(|c| Some(*c)), "b").unwrap();
        assert!(none.is_empty());
        assert_eq!(
            meter_of("svc_budget_usd_per_day = 0.5", "svc"),
            Some((MeterKind::UsdPerDay, 500_000))
        );
        assert_eq!(
            meter_of("svc_budget_usd=0.0000019", "svc"),
            Some((MeterKind::Usd, 1)),
            "a cap is rounded down"
        );
        assert_eq!(
            meter_of("svc_max_calls=7", "svc"),
            Some((MeterKind::Calls, 7))
        );
        assert_eq!(meter_of("b_max_calls=7", "svc"), None);
        assert_eq!(meter_of("svc_methods=GET", "svc"), None);
    }

    #[test]
    fn check_narrowing_refuses_only_widening() {
        let widening = CaveatError::Widening("svc_max_calls".into());
        assert_eq!(
            check_narrowing(&["services=svc:0", "svc_max_calls=5", "svc_max_calls=6"]),
            Err(widening)
        );
        assert!(matches!(
            check_narrowing(&["services=svc:0", "services=svc:0,b:0"]),
            Err(CaveatError::Widening(_))
        ));
        // Narrowing, another service's caveats, and refusals that are not widenings pass.
        assert_eq!(
            check_narrowing(&["services=svc:0", "svc_max_calls=6", "svc_max_calls=5"]),
            Ok(())
        );
        assert_eq!(
            check_narrowing(&["svc_max_calls=5", "other_max_calls=9"]),
            Ok(())
        );
        assert_eq!(check_narrowing(&["color=blue"]), Ok(()));
    }
}
