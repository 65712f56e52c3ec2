//! The last credential a connection proved, so that the same credential on the same
//! connection is not proved again.
//!
//! A buyer's keep-alive connection sends the same `Authorization` value with request after
//! request. Whether its preimage hashes to the identifier's payment hash, and whether its HMAC
//! chain ends in its signature under a root key, depend on nothing but the value's bytes and
//! that key; what its caveats grant on a service (tier, restrictions, meters) depends on
//! nothing but the bytes, the key and the service. So once a value was proven under a key,
//! [`super::verify_header_memo`] does not prove it again under the same key; and once it was
//! granted a request on a service, the next request for the same service reads the grant
//! back instead of decoding and evaluating the caveats again. The key is still looked up
//! each time (a revoked token is refused as before), and the request is still checked against
//! the grant: the clock against its expiry, the method against its methods, in the order the
//! full verification checks them, so that the decision or the refusal is the same.
//!
//! What it holds is secret (the value carries the preimage, and the key is the token's root
//! key): it is zeroized when replaced or dropped, never printed by `Debug`, and compared in
//! constant time (the lengths are not secret).

use std::fmt;

use zeroize::Zeroize;

use super::{Decision, Meters, RequestContext, VerifyError, check_request};
use crate::l402::caveat::Restrictions;
use crate::l402::identifier::{PaymentHash, TokenId};
use crate::l402::secret::{RootKey, ct_eq_bytes};

/// One connection's last proven credential. Create one per connection with
/// [`SignatureMemo::default`]; it starts empty.
#[derive(Default)]
pub struct SignatureMemo {
    proven: Option<Proven>,
}

/// An `Authorization` value whose preimage and HMAC chain were proven, the key they were
/// proven under, and what it was last granted.
struct Proven {
    value: Vec<u8>,
    key: RootKey,
    granted: Option<Granted>,
}

/// What a proven value was granted on a service: everything of a [`Decision`] that does not
/// depend on the request.
pub(super) struct Granted {
    service: String,
    /// The token, whose key the caller looks up before [`Granted::decide`].
    pub(super) token_id: TokenId,
    payment_hash: PaymentHash,
    tier: u8,
    restrictions: Restrictions,
    meters: Meters,
}

impl Drop for Proven {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

impl Granted {
    /// The decision for `ctx`, the token's key having been looked up and found equal to the
    /// one the value was proven under: the request checked against the grant as the full
    /// verification checks it.
    pub(super) fn decide(&self, ctx: &RequestContext<'_>) -> Result<Decision, VerifyError> {
        check_request(&self.restrictions, ctx)?;
        Ok(Decision {
            token_id: self.token_id,
            payment_hash: self.payment_hash,
            tier: self.tier,
            restrictions: self.restrictions.clone(),
            meters: self.meters.clone(),
        })
    }
}

impl fmt::Debug for SignatureMemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureMemo")
            .field("holds", &self.proven.is_some())
            .finish()
    }
}

impl SignatureMemo {
    /// Whether `value` is the value last proven (its key is checked by [`Self::proved_under`]).
    pub(super) fn holds(&self, value: &str) -> bool {
        self.proven
            .as_ref()
            .is_some_and(|p| ct_eq_bytes(&p.value, value.as_bytes()))
    }

    /// Whether the value last proven was proven under `key`.
    pub(super) fn proved_under(&self, key: &RootKey) -> bool {
        self.proven.as_ref().is_some_and(|p| p.key == *key)
    }

    /// Remembers that `value`'s preimage and chain hold under `key`, in place of what was
    /// remembered (the buffer is reused when it is large enough).
    pub(super) fn remember(&mut self, value: &str, key: &RootKey) {
        match &mut self.proven {
            Some(p) => {
                p.value.zeroize();
                p.value.clear();
                p.value.extend_from_slice(value.as_bytes());
                p.key = key.clone();
                p.granted = None;
            }
            None => {
                self.proven = Some(Proven {
                    value: value.as_bytes().to_vec(),
                    key: key.clone(),
                    granted: None,
                });
            }
        }
    }

    /// Remembers `decision`, made for a request on `service` with the value the memo holds
    /// (call after [`Self::remember`] for that value, once the whole verification passed).
    pub(super) fn grant(&mut self, service: &str, decision: &Decision) {
        if let Some(p) = &mut self.proven {
            p.granted = Some(Granted {
                service: service.to_owned(),
                token_id: decision.token_id,
                payment_hash: decision.payment_hash,
                tier: decision.tier,
                restrictions: decision.restrictions.clone(),
                meters: decision.meters.clone(),
            });
        }
    }

    /// The grant the memo holds for `value` on `service`, if it holds one.
    pub(super) fn granted(&self, value: &str, service: &str) -> Option<&Granted> {
        let p = self.proven.as_ref()?;
        let g = p.granted.as_ref()?;
        (g.service == service && ct_eq_bytes(&p.value, value.as_bytes())).then_some(g)
    }

    /// Forgets what was remembered.
    pub fn clear(&mut self) {
        self.proven = None;
    }

    /// Whether a credential is remembered (for tests).
    pub fn is_empty(&self) -> bool {
        self.proven.is_none()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::l402::identifier::{Identifier, TokenId};
    use crate::l402::macaroon::Macaroon;
    use crate::l402::secret::Preimage;
    use crate::l402::verify::{
        Decision, RequestContext, VerifyError, verify_header, verify_header_memo,
    };

    const NOW: u64 = 1_700_000_000;

    fn key(b: u8) -> RootKey {
        RootKey::from_bytes([b; 32])
    }

    /// `L402 <macaroon>:<preimage>` for token `id` under `root`, paid with `paid` (the
    /// identifier names `hashed`'s payment hash), with `caveats` (and `services=svc:0` first if
    /// they name no services).
    fn value(root: &RootKey, id: u8, hashed: u8, paid: u8, caveats: &[&str]) -> String {
        let ident = Identifier::new(
            Preimage::from_bytes([hashed; 32]).payment_hash(),
            TokenId([id; 32]),
        );
        let mut m = Macaroon::new(root, &ident.encode(), "tapgate");
        let default =
            (!caveats.iter().any(|c| c.starts_with("services="))).then_some(&"services=svc:0");
        for c in default.into_iter().chain(caveats) {
            m.add_first_party_caveat(c.as_bytes()).unwrap();
        }
        format!("L402 {}:{}", m.to_base64(), hex::encode([paid; 32]))
    }

    fn ctx(now: u64) -> RequestContext<'static> {
        on("svc", "GET", now)
    }

    fn on(service: &'static str, method: &'static str, now: u64) -> RequestContext<'static> {
        RequestContext {
            service,
            method,
            path: "/v1",
            now,
        }
    }

    type Both = (Result<Decision, VerifyError>, Result<Decision, VerifyError>);

    fn both(v: &str, at: u64, lookup: Option<&RootKey>, memo: &mut SignatureMemo) -> Both {
        both_on(v, &ctx(at), lookup, memo)
    }

    fn both_on(
        v: &str,
        c: &RequestContext<'_>,
        lookup: Option<&RootKey>,
        memo: &mut SignatureMemo,
    ) -> Both {
        let plain = verify_header(&[v], c, |_| lookup.cloned());
        let memoised = verify_header_memo(&[v], c, |_| lookup.cloned(), memo);
        (plain, memoised)
    }

    #[test]
    fn the_same_value_again_gives_the_same_decision_and_is_held() {
        let k = key(1);
        let v = value(&k, 3, 2, 2, &["svc_valid_until=1700000100"]);
        let mut memo = SignatureMemo::default();
        for _ in 0..3 {
            let (plain, memoised) = both(&v, NOW, Some(&k), &mut memo);
            assert!(plain.is_ok(), "{plain:?}");
            assert_eq!(plain, memoised);
            assert!(memo.holds(&v) && memo.proved_under(&k));
        }
    }

    #[test]
    fn a_held_value_is_still_refused_when_revoked_expired_or_under_another_key() {
        let k = key(1);
        let v = value(&k, 3, 2, 2, &["svc_valid_until=1700000100"]);
        let mut memo = SignatureMemo::default();
        assert!(verify_header_memo(&[&v], &ctx(NOW), |_| Some(k.clone()), &mut memo).is_ok());
        // Revoked: no key.
        let (plain, memoised) = both(&v, NOW, None, &mut memo);
        assert_eq!(memoised, Err(VerifyError::UnknownToken));
        assert_eq!(plain, memoised);
        // Expired: the caveats are evaluated against the clock every time.
        let (plain, memoised) = both(&v, NOW + 100, Some(&k), &mut memo);
        assert!(matches!(memoised, Err(VerifyError::Expired { .. })));
        assert_eq!(plain, memoised);
        // Another key for the same token: the chain is proven again, and fails.
        let other = key(9);
        let (plain, memoised) = both(&v, NOW, Some(&other), &mut memo);
        assert!(matches!(memoised, Err(VerifyError::Macaroon(_))));
        assert_eq!(plain, memoised);
        // What failed was not remembered: the memo still holds the value under its own key.
        assert!(memo.holds(&v) && memo.proved_under(&k) && !memo.proved_under(&other));
    }

    #[test]
    fn another_value_is_proven_in_full() {
        let k = key(1);
        let good = value(&k, 3, 2, 2, &[]);
        let unpaid = value(&k, 3, 2, 7, &[]);
        let mut memo = SignatureMemo::default();
        assert!(verify_header_memo(&[&good], &ctx(NOW), |_| Some(k.clone()), &mut memo).is_ok());
        let (plain, memoised) = both(&unpaid, NOW, Some(&k), &mut memo);
        assert_eq!(memoised, Err(VerifyError::PreimageMismatch));
        assert_eq!(plain, memoised);
        assert!(memo.holds(&good) && !memo.holds(&unpaid));
        // A forged chain: the same token id and preimage, signed under another key.
        let forged = value(&key(8), 3, 2, 2, &[]);
        let (plain, memoised) = both(&forged, NOW, Some(&k), &mut memo);
        assert!(matches!(memoised, Err(VerifyError::Macaroon(_))));
        assert_eq!(plain, memoised);
        assert!(!memo.holds(&forged));
    }

    #[test]
    fn debug_names_no_secret() {
        let k = key(0xab);
        let v = value(&k, 3, 2, 2, &[]);
        let mut memo = SignatureMemo::default();
        assert!(verify_header_memo(&[&v], &ctx(NOW), |_| Some(k.clone()), &mut memo).is_ok());
        let shown = format!("{memo:?}");
        assert_eq!(shown, "SignatureMemo { holds: true }");
        memo.clear();
        assert!(memo.is_empty());
    }

    #[test]
    fn a_grant_is_read_back_for_its_service_and_checked_against_each_request() {
        let k = key(1);
        let v = value(&k, 3, 2, 2, &["svc_methods=GET", "svc_max_calls=5"]);
        let mut memo = SignatureMemo::default();
        let first = verify_header_memo(&[&v], &ctx(NOW), |_| Some(k.clone()), &mut memo);
        assert!(first.is_ok(), "{first:?}");
        assert!(memo.granted(&v, "svc").is_some() && memo.granted(&v, "other").is_none());
        // The grant answers the next request, meters and all.
        let again = verify_header_memo(&[&v], &ctx(NOW), |_| Some(k.clone()), &mut memo);
        assert_eq!(again, first);
        assert_eq!(again.unwrap().meters.iter().count(), 1);
        // A method the grant does not allow is refused as verify_header refuses it.
        let post = on("svc", "POST", NOW);
        let (plain, memoised) = both_on(&v, &post, Some(&k), &mut memo);
        assert!(matches!(memoised, Err(VerifyError::MethodNotAllowed(_))));
        assert_eq!(plain, memoised);
        // Another value replaces the value and forgets the grant.
        let w = value(&k, 4, 2, 2, &[]);
        assert!(verify_header_memo(&[&w], &ctx(NOW), |_| Some(k.clone()), &mut memo).is_ok());
        assert!(memo.granted(&v, "svc").is_none() && memo.granted(&w, "svc").is_some());
    }

    proptest! {
        /// Over any run of requests on one connection (good tokens, unpaid ones, forged ones,
        /// revocations, key changes, the clock moving past an expiry, other services and
        /// methods, tokens with meters), the memo's decisions are `verify_header`'s.
        #[test]
        fn a_connection_decides_as_verify_header_does(
            steps in proptest::collection::vec(
                (0usize..8, 0usize..3, any::<bool>(), any::<bool>(), any::<bool>()),
                1..40,
            )
        ) {
            let keys = [key(1), key(2), key(3)];
            let values = [
                value(&keys[0], 3, 2, 2, &["svc_valid_until=1700000100"]),
                value(&keys[0], 3, 2, 5, &[]),
                value(&keys[1], 4, 6, 6, &["services=svc:1"]),
                value(&keys[1], 4, 6, 6, &["services=other:0"]),
                value(&keys[2], 5, 2, 2, &[]),
                "L402 notbase64:00".to_owned(),
                value(&keys[0], 6, 2, 2, &["svc_methods=GET", "svc_max_calls=5"]),
                value(&keys[1], 7, 6, 6, &["services=svc:0,other:2", "other_budget_usd=1"]),
            ];
            let mut memo = SignatureMemo::default();
            for (v, k, late, other, post) in steps {
                let at = if late { NOW + 1_000 } else { NOW };
                let c = on(
                    if other { "other" } else { "svc" },
                    if post { "POST" } else { "GET" },
                    at,
                );
                // `k` picks the key the store answers with; 2 with `late` stands for revoked.
                let lookup = (!(k == 2 && late)).then(|| &keys[k]);
                let (plain, memoised) = both_on(&values[v], &c, lookup, &mut memo);
                prop_assert_eq!(plain, memoised);
            }
        }
    }
}
