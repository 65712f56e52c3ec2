//! The meters of a verified token: one per cap caveat (`_budget_usd`, `_budget_usd_per_day`,
//! `_max_calls`) of the service asked for, each named by the token's HMAC chain up to and
//! including that caveat.
//!
//! Two tokens narrowed from one parent share the parent's chain up to its caps, so they share
//! those meters, while the caps each of them added are meters of their own: sibling
//! sub-agents get independent caps and every call also counts against each ancestor's cap.
//! The chain's state after a caveat is the signature of the token cut there, a bearer secret,
//! so a meter is named by a one-way hash of it ([`MeterKey`]), which a store may keep; the
//! state itself is never kept, logged or shown. This module owns that derivation and the
//! fixed-capacity list; it does no I/O and decides no prices.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::l402::caveat::{self, CaveatError, MeterKind, MeterMask};
use crate::l402::macaroon::{self, CaveatRef};
use crate::l402::secret::RootKey;

/// Domain separation for [`MeterKey`], so the hash is of use for nothing else.
const KEY_DOMAIN: &[u8] = b"tapgate meter key v1\0";

/// A meter's name in the store: `SHA-256("tapgate meter key v1\0" ‖ chain state after the
/// caveat)`. Not a secret (nobody can recover the chain's state from it), so it is stored and
/// may be shown.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MeterKey(pub [u8; 32]);

impl MeterKey {
    fn of_state(state: &[u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(KEY_DOMAIN);
        h.update(state);
        Self(h.finalize().into())
    }
}

impl fmt::Debug for MeterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MeterKey({})", hex::encode(self.0))
    }
}

impl fmt::Display for MeterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// One cap caveat of a token: what it caps, its own cap (not the chain's narrowest: each
/// caveat's meter holds it to its own value), and its meter's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meter {
    /// Dollars, dollars per UTC day, or calls.
    pub kind: MeterKind,
    /// The caveat's cap: whole micro-dollars (rounded down) or calls.
    pub cap: u64,
    /// The meter's name in the store.
    pub key: MeterKey,
}

impl Default for Meter {
    fn default() -> Self {
        Self {
            kind: MeterKind::Calls,
            cap: 0,
            key: MeterKey::default(),
        }
    }
}

/// A token's meters for one service, in caveat order. Empty, unallocated and never computed
/// for a token without caps, so that the common decision carries three words for them: a
/// decision is built on every request, and an inline array of meters made every verification
/// zero and copy some 200 bytes (measured: about 10% of `cargo bench --bench verify`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Meters(Vec<Meter>);

impl Meters {
    fn push(&mut self, m: Meter) {
        self.0.push(m);
    }

    /// The meters, in caveat order.
    pub fn iter(&self) -> impl Iterator<Item = &Meter> {
        self.0.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for a token without caps.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Meters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The meters named in `mask` (as [`caveat::evaluate_metered`] found them for `service`),
/// from the chain over `caveats`. Only run for a token with caps, after its signature was
/// checked: it walks the chain a second time up to the last cap.
pub(super) fn collect<'a>(
    root_key: &RootKey,
    identifier: &[u8],
    caveats: impl Iterator<Item = CaveatRef<'a>>,
    mask: MeterMask,
    service: &str,
) -> Result<Meters, CaveatError> {
    let mut meters = Meters::default();
    let mut unreadable = None;
    macaroon::chain_states(root_key, identifier, caveats, mask.0, |_, id, state| {
        let parsed = std::str::from_utf8(id)
            .ok()
            .and_then(|text| caveat::meter_of(text, service));
        match parsed {
            Some((kind, cap)) => meters.push(Meter {
                kind,
                cap,
                key: MeterKey::of_state(state),
            }),
            None => unreadable = Some(String::from_utf8_lossy(id).into_owned()),
        }
    });
    // Evaluation parsed every cap it marked, so this is unreachable; a cap that could not be
    // metered must refuse the token rather than go unenforced.
    match unreadable {
        Some(text) => Err(CaveatError::UnknownForService(text)),
        None => Ok(meters),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(n: u8) -> Meter {
        Meter {
            kind: MeterKind::Usd,
            cap: u64::from(n),
            key: MeterKey([n; 32]),
        }
    }

    #[test]
    fn meters_keep_caveat_order() {
        let mut m = Meters::default();
        assert!(m.is_empty());
        for n in 0..6 {
            m.push(meter(n));
        }
        assert_eq!(m.len(), 6);
        let caps: Vec<u64> = m.iter().map(|x| x.cap).collect();
        assert_eq!(caps, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_key_is_a_hash_of_the_state_not_the_state() {
        let state = [7u8; 32];
        let key = MeterKey::of_state(&state);
        assert_ne!(key.0, state);
        assert_eq!(key, MeterKey::of_state(&state));
        assert_ne!(key, MeterKey::of_state(&[8u8; 32]));
    }
}
