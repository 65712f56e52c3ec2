//! From a credential to an access decision, with no I/O.
//!
//! The order of checks puts the cheapest, key-free ones first: identifier layout, then
//! `sha256(preimage) == payment_hash` (constant time), then the root key lookup the caller
//! provides, then the HMAC chain (constant time), then the caveats against the request.
//! No database round trip is needed: the caller's lookup is normally an in-memory cache.
//! A token with cap caveats (`_budget_usd`, `_budget_usd_per_day`, `_max_calls`) has its
//! chain walked a second time, up to its last cap, to name its meters ([`meters`]); a token
//! without caps never pays for that.

use serde::Serialize;

use super::caveat::{self, CaveatError, MeterMask, Restrictions};
use super::header::{self, Credential, HeaderError};
use super::identifier::{Identifier, IdentifierError, PaymentHash, TokenId};
use super::macaroon::{self, CaveatRef, Macaroon, MacaroonError, MacaroonRef};
use super::secret::{Preimage, RootKey};

mod memo;
pub mod meters;

pub use memo::SignatureMemo;
pub use meters::{Meter, MeterKey, Meters};

/// What the request is asking for.
#[derive(Clone, Copy, Debug)]
pub struct RequestContext<'a> {
    /// The service the gateway matched the request to.
    pub service: &'a str,
    /// The HTTP method, upper case.
    pub method: &'a str,
    /// The request path, for error messages and path-scoped policy in the gateway.
    pub path: &'a str,
    /// Current time, unix seconds (from the caller's clock, so expiry is testable).
    pub now: u64,
}

/// Access granted: who, for what, under which restrictions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The token (root key) id; metering and revocation key on it.
    pub token_id: TokenId,
    /// The invoice the token was paid with.
    pub payment_hash: PaymentHash,
    /// The tier on that service.
    pub tier: u8,
    /// What the caveats still restrict; budget and call caps are for metering to enforce.
    pub restrictions: Restrictions,
    /// One meter per cap caveat of the service, in caveat order; empty without caps. Not
    /// serialised: meter keys are for the store, not for output.
    #[serde(skip)]
    pub meters: Meters,
}

/// Why a credential does not grant the request. Each is a reason for a fresh challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The header did not parse.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The identifier is not an L402 identifier we understand.
    #[error("token identifier: {0}")]
    Identifier(#[from] IdentifierError),
    /// The preimage does not hash to the token's payment hash.
    #[error("preimage does not match the token's payment hash: pay the token's own invoice")]
    PreimageMismatch,
    /// Extra macaroons were sent but tapgate issues no third-party caveats to discharge.
    #[error("credential carries {0} discharge macaroons but the token needs none")]
    UnusedDischarge(usize),
    /// No root key: unknown or revoked token.
    #[error("unknown or revoked token")]
    UnknownToken,
    /// Signature or third-party caveat problem.
    #[error(transparent)]
    Macaroon(#[from] MacaroonError),
    /// A caveat refused access.
    #[error(transparent)]
    Caveat(#[from] CaveatError),
    /// The token expired.
    #[error("token expired at {valid_until} (now {now}); buy a new one")]
    Expired {
        /// The expiry caveat's value.
        valid_until: u64,
        /// The request's time.
        now: u64,
    },
    /// The token does not allow this HTTP method.
    #[error("token does not allow method {0}")]
    MethodNotAllowed(String),
}

/// Verifies a parsed credential. `lookup` returns the root key for a token id, if any.
pub fn verify_credential(
    cred: &Credential,
    ctx: &RequestContext<'_>,
    lookup: impl FnOnce(&TokenId) -> Option<RootKey>,
) -> Result<Decision, VerifyError> {
    let (token, discharges) = match cred.macaroons.split_first() {
        Some(split) => split,
        None => return Err(HeaderError::Malformed("no macaroon").into()),
    };
    if !discharges.is_empty() {
        return Err(VerifyError::UnusedDischarge(discharges.len()));
    }
    verify_token(token, &cred.preimage, ctx, lookup, None)
}

/// From the raw `Authorization` values to a decision.
///
/// The common shape (one value carrying one V2 macaroon) is verified without allocating
/// until the decision: base64 is decoded into a buffer on the stack (for tokens up to 2 KiB)
/// and the macaroon read in place ([`MacaroonRef`]). Everything else, and every value that
/// does not parse, goes through [`header::parse_authorization`] and [`verify_credential`]
/// (no key has been looked up and no HMAC computed by then), so both ways give the same
/// decision or the same refusal.
pub fn verify_header(
    authorization: &[&str],
    ctx: &RequestContext<'_>,
    lookup: impl FnOnce(&TokenId) -> Option<RootKey>,
) -> Result<Decision, VerifyError> {
    verify_header_with(authorization, ctx, lookup, None)
}

/// [`verify_header`] for a request on a connection that keeps a [`SignatureMemo`]: the same
/// single `Authorization` value proven under the same root key on an earlier request of the
/// connection is not proven again (see [`memo`]); every other check runs. The decision, or
/// the refusal, is the one [`verify_header`] gives.
pub fn verify_header_memo(
    authorization: &[&str],
    ctx: &RequestContext<'_>,
    lookup: impl FnOnce(&TokenId) -> Option<RootKey>,
    memo: &mut SignatureMemo,
) -> Result<Decision, VerifyError> {
    verify_header_with(authorization, ctx, lookup, Some(memo))
}

fn verify_header_with(
    authorization: &[&str],
    ctx: &RequestContext<'_>,
    lookup: impl FnOnce(&TokenId) -> Option<RootKey>,
    memo: Option<&mut SignatureMemo>,
) -> Result<Decision, VerifyError> {
    let Some((b64, preimage)) = header::split_single(authorization) else {
        return verify_parsed(authorization, ctx, lookup);
    };
    // `split_single` gave a value: the request carried exactly one.
    let Some((m, value)) = memo.zip(authorization.first().copied()) else {
        return verify_single(authorization, b64, &preimage, ctx, lookup, None);
    };
    // The value granted a request on this service before: look its key up (revocation), and
    // if it is the key the value was proven under, check the request against the grant.
    // Another key is verified in full below, with the key already looked up.
    let mut looked_up = None;
    let mut lookup = Some(lookup);
    if let Some(grant) = m.granted(value, ctx.service) {
        match lookup.take().and_then(|f| f(&grant.token_id)) {
            None => return Err(VerifyError::UnknownToken),
            Some(k) if m.proved_under(&k) => return grant.decide(ctx),
            Some(k) => looked_up = Some(k),
        }
    }
    let lookup = move |id: &TokenId| match looked_up {
        Some(k) => Some(k),
        None => lookup.and_then(|f| f(id)),
    };
    verify_single(authorization, b64, &preimage, ctx, lookup, Some((m, value)))
}

/// A single value's verification: in place if it is base64 of a V2 macaroon (see
/// [`verify_header`]), else the parse-then-verify way.
fn verify_single(
    authorization: &[&str],
    b64: &str,
    preimage: &Preimage,
    ctx: &RequestContext<'_>,
    lookup: impl FnOnce(&TokenId) -> Option<RootKey>,
    memo: Option<(&mut SignatureMemo, &str)>,
) -> Result<Decision, VerifyError> {
    let decoded_len = b64.len().div_ceil(4) * 3;
    // A buffer on the stack sized for the token, so that little is zeroed for nothing.
    let verified = if decoded_len <= SMALL_TOKEN {
        verify_b64(b64, &mut [0u8; SMALL_TOKEN], preimage, ctx, lookup, memo)
    } else if decoded_len <= LARGE_TOKEN {
        verify_b64(b64, &mut [0u8; LARGE_TOKEN], preimage, ctx, lookup, memo)
    } else {
        verify_b64(
            b64,
            &mut vec![0u8; decoded_len],
            preimage,
            ctx,
            lookup,
            memo,
        )
    };
    match verified {
        Ok(result) => result,
        Err(lookup) => verify_parsed(authorization, ctx, lookup),
    }
}

/// Tokens up to this many bytes decode into a buffer of this size on the stack (tapgate's and
/// Aperture's usual ones are 150 to 250 bytes); up to [`LARGE_TOKEN`] into a larger one; longer
/// ones into one on the heap.
const SMALL_TOKEN: usize = 320;
/// See [`SMALL_TOKEN`].
const LARGE_TOKEN: usize = 2048;

/// Decodes the token into `buf` and verifies it. `Err` gives `lookup` back if the text is not
/// base64 or not a V2 macaroon: the parse-then-verify way has the verdict on those.
fn verify_b64<L: FnOnce(&TokenId) -> Option<RootKey>>(
    b64: &str,
    buf: &mut [u8],
    preimage: &Preimage,
    ctx: &RequestContext<'_>,
    lookup: L,
    memo: Option<(&mut SignatureMemo, &str)>,
) -> Result<Result<Decision, VerifyError>, L> {
    let Ok(len) = macaroon::decode_base64_liberal_into(b64, buf) else {
        return Err(lookup);
    };
    match buf.get(..len).map(MacaroonRef::decode) {
        Some(Ok(token)) => Ok(verify_token(&token, preimage, ctx, lookup, memo)),
        _ => Err(lookup),
    }
}

/// The general way: parse every value into a [`Credential`], then verify it.
fn verify_parsed(
    authorization: &[&str],
    ctx: &RequestContext<'_>,
    lookup: impl FnOnce(&TokenId) -> Option<RootKey>,
) -> Result<Decision, VerifyError> {
    let cred = header::parse_authorization(authorization)?;
    verify_credential(&cred, ctx, lookup)
}

/// What verification reads of a token, owned ([`Macaroon`]) or borrowed ([`MacaroonRef`]).
trait Token {
    fn identifier(&self) -> &[u8];
    fn verify_signature(&self, root_key: &RootKey) -> Result<(), MacaroonError>;
    fn caveat_texts(&self) -> impl Iterator<Item = Option<&str>>;
    fn caveat_refs(&self) -> impl Iterator<Item = CaveatRef<'_>>;
}

impl Token for Macaroon {
    fn identifier(&self) -> &[u8] {
        Macaroon::identifier(self)
    }
    fn verify_signature(&self, root_key: &RootKey) -> Result<(), MacaroonError> {
        Macaroon::verify_signature(self, root_key)
    }
    fn caveat_texts(&self) -> impl Iterator<Item = Option<&str>> {
        self.caveats().map(|c| std::str::from_utf8(c.id).ok())
    }
    fn caveat_refs(&self) -> impl Iterator<Item = CaveatRef<'_>> {
        self.caveats()
    }
}

impl Token for MacaroonRef<'_> {
    fn identifier(&self) -> &[u8] {
        MacaroonRef::identifier(self)
    }
    fn verify_signature(&self, root_key: &RootKey) -> Result<(), MacaroonError> {
        MacaroonRef::verify_signature(self, root_key)
    }
    fn caveat_texts(&self) -> impl Iterator<Item = Option<&str>> {
        MacaroonRef::caveat_texts(self)
    }
    fn caveat_refs(&self) -> impl Iterator<Item = CaveatRef<'_>> {
        self.caveats()
    }
}

/// Whether `caveat` is `preimage=<hex>` naming this credential's own preimage: Aperture's
/// `l402.PreimageKey` caveat, which its `Token.PaidMacaroon` adds before sending (so lnget and
/// Aperture's own client send it; lightninglabs/L402 macaroon-spec.md "Preimage Caveat"). It
/// proves payment and restricts nothing, and the preimage was already checked against the
/// payment hash, so it is skipped; a `preimage=` naming anything else stays unrecognised and
/// is refused like any caveat tapgate cannot enforce.
fn names_own_preimage(caveat: &str, preimage: &Preimage) -> bool {
    let Some(value) = caveat.strip_prefix("preimage=") else {
        return false;
    };
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(value, &mut bytes).is_ok()
        && super::secret::ct_eq_32(&bytes, preimage.expose())
}

/// `mask`, whose bits count only the caveats not `skipped`, with each bit moved to the
/// position of its caveat among all of them.
fn unskip(mask: MeterMask, skipped: u64) -> MeterMask {
    if skipped == 0 {
        return mask;
    }
    let mut out = 0u64;
    let mut kept = 0usize;
    for i in 0..MeterMask::CAPACITY {
        if skipped & (1 << i) != 0 {
            continue;
        }
        if mask.contains(kept) {
            out |= 1 << i;
        }
        kept += 1;
    }
    MeterMask(out)
}

/// The checks after parsing, cheapest and key-free first (see the module's documentation).
/// With a memo and the `Authorization` value the token came from, the preimage and the chain
/// are not proven again for the value the memo holds under the same key, and are remembered
/// once proven.
fn verify_token(
    token: &impl Token,
    preimage: &Preimage,
    ctx: &RequestContext<'_>,
    lookup: impl FnOnce(&TokenId) -> Option<RootKey>,
    memo: Option<(&mut SignatureMemo, &str)>,
) -> Result<Decision, VerifyError> {
    let id = Identifier::decode(token.identifier())?;
    let held = memo.as_ref().is_some_and(|(m, value)| m.holds(value));
    // The held value's preimage was proven against this very identifier.
    if !held && !preimage.payment_hash().ct_eq(&id.payment_hash) {
        return Err(VerifyError::PreimageMismatch);
    }
    let root_key = lookup(&id.token_id).ok_or(VerifyError::UnknownToken)?;
    let mut memo = memo;
    let proven = held
        && memo
            .as_ref()
            .is_some_and(|(m, _)| m.proved_under(&root_key));
    if !proven {
        token.verify_signature(&root_key)?;
        if let Some((m, value)) = memo.as_mut() {
            m.remember(value, &root_key);
        }
    }
    // Aperture's preimage caveat is proof of payment, not a restriction
    // (`names_own_preimage`): it is left out of the evaluation, and the meter positions the
    // evaluation reports are moved back to the token's own caveat positions.
    let mut skipped = 0u64;
    let caveats = token.caveat_texts().enumerate().filter_map(|(i, text)| {
        if text.is_some_and(|t| names_own_preimage(t, preimage)) {
            skipped |= u32::try_from(i)
                .ok()
                .and_then(|i| 1u64.checked_shl(i))
                .unwrap_or(0);
            None
        } else {
            Some(text)
        }
    });
    let (grant, mask) = caveat::evaluate_metered(caveats, ctx.service)?;
    let mask = unskip(mask, skipped);
    check_request(&grant.restrictions, ctx)?;
    let meters = if mask.is_empty() {
        Meters::default()
    } else {
        meters::collect(
            &root_key,
            token.identifier(),
            token.caveat_refs(),
            mask,
            ctx.service,
        )?
    };
    let decision = Decision {
        token_id: id.token_id,
        payment_hash: id.payment_hash,
        tier: grant.tier,
        restrictions: grant.restrictions,
        meters,
    };
    if let Some((m, _)) = memo {
        m.grant(ctx.service, &decision);
    }
    Ok(decision)
}

/// The checks of a request against what its token grants that depend on the request: the
/// clock against the expiry, then the method.
fn check_request(r: &Restrictions, ctx: &RequestContext<'_>) -> Result<(), VerifyError> {
    if let Some(valid_until) = r.valid_until
        && ctx.now >= valid_until
    {
        return Err(VerifyError::Expired {
            valid_until,
            now: ctx.now,
        });
    }
    if let Some(methods) = &r.methods
        && !methods.contains(ctx.method)
    {
        return Err(VerifyError::MethodNotAllowed(
            ctx.method.chars().take(32).collect(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l402::caveat::MeterKind;

    const NOW: u64 = 1_700_000_000;

    struct Fixture {
        key: RootKey,
        id: Identifier,
        preimage: Preimage,
    }

    fn fixture() -> Fixture {
        let preimage = Preimage::from_bytes([0x22; 32]);
        Fixture {
            key: RootKey::from_bytes([0x11; 32]),
            id: Identifier::new(preimage.payment_hash(), TokenId([0x33; 32])),
            preimage,
        }
    }

    fn header(f: &Fixture, caveats: &[&str]) -> String {
        let mut m = Macaroon::new(&f.key, &f.id.encode(), "tapgate");
        for c in caveats {
            m.add_first_party_caveat(c.as_bytes()).unwrap();
        }
        format!(
            "L402 {}:{}",
            m.to_base64(),
            hex::encode(f.preimage.expose())
        )
    }

    fn ctx(method: &str) -> RequestContext<'_> {
        RequestContext {
            service: "svc",
            method,
            path: "/v1/data",
            now: NOW,
        }
    }

    fn run(f: &Fixture, h: &str, c: &RequestContext<'_>) -> Result<Decision, VerifyError> {
        verify_header(&[h], c, |t| (*t == f.id.token_id).then(|| f.key.clone()))
    }

    #[test]
    fn grants_with_restrictions() {
        let f = fixture();
        let h = header(
            &f,
            &[
                "services=svc:2",
                "svc_valid_until=1700000100",
                "svc_methods=GET",
            ],
        );
        let d = run(&f, &h, &ctx("GET")).unwrap();
        assert_eq!(d.tier, 2);
        assert_eq!(d.token_id, TokenId([0x33; 32]));
        assert_eq!(d.restrictions.valid_until, Some(1_700_000_100));
    }

    #[test]
    fn a_skipped_preimage_caveat_leaves_meters_at_their_own_positions() {
        let f = fixture();
        let own = format!("preimage={}", hex::encode(f.preimage.expose()));
        let keys = |caveats: &[&str]| -> Vec<MeterKey> {
            let d = run(&f, &header(&f, caveats), &ctx("GET")).unwrap();
            d.meters.iter().map(|m| m.key).collect()
        };
        // The same cap with the preimage caveat after it: one chain up to the cap, one meter.
        let plain = keys(&["services=svc:0", "svc_max_calls=5"]);
        assert_eq!(plain.len(), 1);
        assert_eq!(keys(&["services=svc:0", "svc_max_calls=5", &own]), plain);
        // Two siblings that differ after a preimage caveat: each cap is metered at its own
        // position, so they do not share a meter (nor take the preimage caveat's).
        let a = keys(&["services=svc:0", &own, "svc_max_calls=5"]);
        let b = keys(&["services=svc:0", &own, "svc_max_calls=7"]);
        assert_eq!((a.len(), b.len()), (1, 1));
        assert_ne!(a, b);
        assert_ne!(a, plain);
        assert_eq!(unskip(MeterMask(0b101), 0b010), MeterMask(0b1001));
        assert_eq!(unskip(MeterMask(0b11), 0), MeterMask(0b11));
    }

    #[test]
    fn a_preimage_caveat_naming_the_credentials_preimage_is_proof_not_a_restriction() {
        let f = fixture();
        // As Aperture's Token.PaidMacaroon (lnget, Aperture's client) sends it.
        let own = format!("preimage={}", hex::encode(f.preimage.expose()));
        let h = header(&f, &["services=svc:0", &own]);
        assert_eq!(run(&f, &h, &ctx("GET")).unwrap().tier, 0);
        let upper = format!("preimage={}", hex::encode_upper(f.preimage.expose()));
        let h = header(&f, &["services=svc:0", &upper]);
        assert!(run(&f, &h, &ctx("GET")).is_ok());
        // Any other value is an unrecognised caveat, refused as before.
        let other = format!("preimage={}", "33".repeat(32));
        for bad in [other.as_str(), "preimage=zz", "preimage="] {
            let h = header(&f, &["services=svc:0", bad]);
            assert!(
                matches!(
                    run(&f, &h, &ctx("GET")),
                    Err(VerifyError::Caveat(CaveatError::Unrecognized(_)))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn every_failure_has_its_reason() {
        let f = fixture();
        let good = header(
            &f,
            &[
                "services=svc:0",
                "svc_valid_until=1700000100",
                "svc_methods=GET",
            ],
        );
        assert!(
            matches!(run(&f, &good, &ctx("POST")), Err(VerifyError::MethodNotAllowed(m)) if m == "POST")
        );
        let late = RequestContext {
            now: 1_700_000_100,
            ..ctx("GET")
        };
        assert!(matches!(
            run(&f, &good, &late),
            Err(VerifyError::Expired { .. })
        ));

        let wrong_pre = good.replace(&"22".repeat(32), &"23".repeat(32));
        assert_eq!(
            run(&f, &wrong_pre, &ctx("GET")),
            Err(VerifyError::PreimageMismatch)
        );

        let unknown = verify_header(&[&good], &ctx("GET"), |_| None);
        assert_eq!(unknown, Err(VerifyError::UnknownToken));

        let other_key = verify_header(&[&good], &ctx("GET"), |_| {
            Some(RootKey::from_bytes([0x12; 32]))
        });
        assert_eq!(
            other_key,
            Err(VerifyError::Macaroon(MacaroonError::BadSignature))
        );

        let widened = header(
            &f,
            &[
                "services=svc:0",
                "svc_valid_until=100",
                "svc_valid_until=2000000000",
            ],
        );
        assert!(matches!(
            run(&f, &widened, &ctx("GET")),
            Err(VerifyError::Caveat(CaveatError::Widening(_)))
        ));

        let other_service = RequestContext {
            service: "nope",
            ..ctx("GET")
        };
        assert!(matches!(
            run(&f, &good, &other_service),
            Err(VerifyError::Caveat(CaveatError::ServiceNotAllowed(_)))
        ));

        let mac = good.split_once(' ').unwrap().1.split_once(':').unwrap().0;
        let two = format!("L402 {mac},{mac}:{}", "22".repeat(32));
        assert_eq!(
            run(&f, &two, &ctx("GET")),
            Err(VerifyError::UnusedDischarge(1))
        );
    }

    fn meters_of(f: &Fixture, h: &str, svc: &'static str) -> Meters {
        let c = RequestContext {
            service: svc,
            ..ctx("GET")
        };
        run(f, h, &c).unwrap().meters
    }

    #[test]
    fn each_cap_is_a_meter_named_by_its_chain_and_siblings_share_their_parents() {
        let f = fixture();
        let parent = ["services=svc:0,b:0", "svc_budget_usd=1.00"];
        let a = header(&f, &[parent[0], parent[1], "svc_budget_usd=0.3"]);
        let b = header(&f, &[parent[0], parent[1], "svc_budget_usd=0.3"]);
        let c = header(
            &f,
            &[
                parent[0],
                parent[1],
                "svc_methods=GET",
                "svc_max_calls=5",
                "svc_budget_usd_per_day=0.1",
                "b_budget_usd=9",
            ],
        );
        let (ma, mb, mc) = (
            meters_of(&f, &a, "svc"),
            meters_of(&f, &b, "svc"),
            meters_of(&f, &c, "svc"),
        );
        // The same caveats after the same chain are the same meters: a token re-derived the
        // same way spends the same budget.
        assert_eq!(ma, mb);
        let a: Vec<_> = ma.iter().copied().collect();
        let c: Vec<_> = mc.iter().copied().collect();
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].kind, a[0].cap), (MeterKind::Usd, 1_000_000));
        assert_eq!((a[1].kind, a[1].cap), (MeterKind::Usd, 300_000));
        // The parent's cap is one meter for both; each child's own caps are others.
        assert_eq!(a[0].key, c[0].key);
        assert_eq!(c.len(), 3, "another service's cap is not metered here");
        assert_eq!((c[1].kind, c[1].cap), (MeterKind::Calls, 5));
        assert_eq!((c[2].kind, c[2].cap), (MeterKind::UsdPerDay, 100_000));
        let keys: std::collections::HashSet<_> = a.iter().chain(&c).map(|m| m.key).collect();
        assert_eq!(keys.len(), 4);
        // Service b sees only its own cap.
        let h = header(&f, &["services=svc:0,b:0", "b_budget_usd=9"]);
        assert_eq!(meters_of(&f, &h, "b").len(), 1);
        assert!(meters_of(&f, &h, "svc").is_empty());
    }

    #[test]
    fn meters_agree_between_the_borrowed_and_the_owned_token() {
        let f = fixture();
        let h = header(
            &f,
            &["services=svc:0", "svc_budget_usd = 2", "svc_max_calls=3"],
        );
        let borrowed = meters_of(&f, &h, "svc");
        let cred = header::parse_credential(&h).unwrap();
        let owned = verify_credential(&cred, &ctx("GET"), |_| Some(f.key.clone()))
            .unwrap()
            .meters;
        assert_eq!(borrowed.len(), 2);
        assert_eq!(borrowed, owned);
        // No meter key is the chain's state (the signature of the token cut there).
        let mut m = Macaroon::new(&f.key, &f.id.encode(), "tapgate");
        m.add_first_party_caveat(b"services=svc:0").unwrap();
        m.add_first_party_caveat(b"svc_budget_usd = 2").unwrap();
        assert_ne!(&borrowed.iter().next().unwrap().key.0, m.signature());
        let shown = format!("{:?}", run(&f, &h, &ctx("GET")).unwrap());
        assert!(!shown.contains(&hex::encode(m.signature())), "{shown}");
    }

    #[test]
    fn a_removed_caveat_breaks_the_signature() {
        let f = fixture();
        let mut m = Macaroon::new(&f.key, &f.id.encode(), "tapgate");
        m.add_first_party_caveat(b"services=svc:0").unwrap();
        let before = m.clone();
        m.add_first_party_caveat(b"svc_methods=GET").unwrap();
        // Forge: keep the attenuated signature but drop the caveat.
        let mut bytes = before.encode();
        let sig_at = bytes.len() - 32;
        bytes[sig_at..].copy_from_slice(m.signature());
        let forged = Macaroon::decode(&bytes).unwrap();
        let h = format!("L402 {}:{}", forged.to_base64(), "22".repeat(32));
        assert_eq!(
            run(&f, &h, &ctx("POST")),
            Err(VerifyError::Macaroon(MacaroonError::BadSignature))
        );
    }
}

#[cfg(test)]
mod agreement;
