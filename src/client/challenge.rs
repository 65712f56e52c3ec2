//! A `402 Payment Required` answer, read from the buyer's side: every L402 or LSAT challenge
//! in its `WWW-Authenticate` values, and tapgate's JSON body when there is one.
//!
//! This module owns splitting header values into challenges and reading the body. Each
//! challenge itself is parsed by [`crate::l402::header::parse_challenge`] (scheme `L402` or
//! `LSAT` in any case, `macaroon=` or `token=`, unknown parameters ignored), so the buyer and the
//! seller read challenges with one grammar. It does no I/O and must not trust the body over the
//! header: the header is what every L402 server sends, the body is tapgate's addition, and it
//! is kept only when it names the header's invoice.
//!
//! Several challenges may come in one value (`LSAT macaroon="a", invoice="b", L402 macaroon=…`,
//! RFC 7235 §4.1) or in several values (Aperture sends an `LSAT` header then an `L402` one,
//! lightninglabs/aperture `auth/authenticator.go` `FreshChallengeHeader`, v0.3.x). Challenges
//! of other schemes are skipped. Aperture's two headers carry the same token and invoice, so
//! duplicates collapse to one.

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::l402::header::{self, Challenge, HeaderError, Scheme};
use crate::l402::{Identifier, PaymentHash};

/// Most `WWW-Authenticate` values looked at on one answer.
pub const MAX_CHALLENGE_HEADERS: usize = 8;
/// Most challenges kept from one answer.
pub const MAX_CHALLENGES: usize = 8;
/// Largest JSON body read, in bytes; a larger body is ignored (it is advisory).
pub const MAX_BODY_LEN: usize = 64 * 1024;

/// Why a `402` answer gives nothing to pay.
#[derive(Debug, thiserror::Error)]
pub enum ChallengeError {
    /// No `WWW-Authenticate` value at all.
    #[error(
        "the server answered 402 without a WWW-Authenticate challenge; it does not speak L402, so there is nothing to pay"
    )]
    NoChallenge,
    /// Values were present but none held an L402 or LSAT challenge.
    #[error(
        "the server's WWW-Authenticate offers no L402 or LSAT challenge ({schemes}); tapgate pays only L402"
    )]
    NoL402 {
        /// The schemes offered, as sent (shortened).
        schemes: String,
    },
    /// An L402 challenge was there but does not parse.
    #[error(
        "the server's L402 challenge is malformed, so nothing was paid; report it to the server's operator"
    )]
    Malformed(#[source] HeaderError),
    /// The token does not commit to the invoice's payment hash, so paying would buy nothing.
    #[error(
        "the challenge's token commits to another payment hash than its invoice; paying it would not unlock the token, so nothing was paid"
    )]
    TokenNotForInvoice,
}

/// One L402 challenge: the token to unlock and the invoice that unlocks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentChallenge {
    /// The scheme the server used; the credential is sent back with the same one.
    pub scheme: Scheme,
    /// The token (macaroon) and invoice.
    pub challenge: Challenge,
    /// The payment hash the token's identifier commits to, when the identifier is tapgate's
    /// and Aperture's version 0 (bLIP-26 appendix); `None` for another layout.
    pub committed_hash: Option<PaymentHash>,
    /// The earliest `*_valid_until` caveat on the token (unix seconds), the body's
    /// `token.expires_at` when no caveat says, or `None` when nothing says.
    pub expires_at: Option<u64>,
}

/// tapgate's `402` body (`gateway::response::challenge_body`): what the call costs in dollars
/// and how the invoice is to be paid. Every field is optional, so a body from another server
/// that shares some names still reads, and unknown fields are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ChallengeBody {
    /// The service sold.
    pub service: Option<String>,
    /// The tier sold.
    pub tier: Option<u8>,
    /// The price of one call, dollars.
    pub price_usd: Option<Decimal>,
    /// What this invoice charges, dollars (the price, or the prepaid balance bought).
    pub charge_usd: Option<Decimal>,
    /// `sats` or `asset`.
    pub rail: Option<String>,
    /// The invoice amount, msat.
    pub msat: Option<u64>,
    /// The asset side of an asset invoice.
    pub asset: Option<BodyAsset>,
    /// The BOLT 11 invoice; the body is kept only when this is the header's invoice.
    pub invoice: Option<String>,
    /// The token's lifetime.
    pub token: Option<BodyToken>,
    /// Why a token sent was answered with this challenge, when one was sent.
    pub error: Option<BodyError>,
}

/// The `error` of tapgate's `402` body, when a token was sent and refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BodyError {
    /// The refusal's code (`gateway::response`): `balance_exhausted` when the token's prepaid
    /// balance cannot pay for the call and the challenge sells a new one.
    pub code: Option<String>,
}

/// The asset side of tapgate's `402` body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BodyAsset {
    /// Asset id or group key, hex.
    pub asset_id: Option<String>,
    /// Units the invoice asks for.
    pub units: Option<u64>,
    /// The asset's decimal display.
    pub decimal_display: Option<u8>,
}

/// The token side of tapgate's `402` body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BodyToken {
    /// Unix seconds when the token expires.
    pub expires_at: Option<u64>,
    /// The service's token lifetime, seconds.
    pub lifetime_secs: Option<u64>,
}

/// Everything a `402` answer offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRequired {
    /// The challenges, in the order sent, duplicates removed. Private so that it cannot be
    /// empty: [`parse_payment_required`] returns an error rather than no challenge.
    challenges: Vec<PaymentChallenge>,
    /// tapgate's body, when there was one naming the first challenge's invoice.
    pub body: Option<ChallengeBody>,
}

impl PaymentRequired {
    /// Whether the server said the token sent has spent its prepaid balance: this challenge
    /// sells the top-up.
    pub fn balance_exhausted(&self) -> bool {
        self.body
            .as_ref()
            .and_then(|b| b.error.as_ref())
            .and_then(|e| e.code.as_deref())
            == Some("balance_exhausted")
    }

    /// The challenge to pay: the first one, preferring `L402` over the legacy `LSAT` when the
    /// server sent both for different tokens.
    pub fn preferred(&self) -> &PaymentChallenge {
        self.challenges
            .iter()
            .find(|c| c.scheme == Scheme::L402)
            // Never empty (see the field), so the first exists.
            .unwrap_or(&self.challenges[0])
    }

    /// Every challenge, in the order sent, duplicates removed; never empty.
    pub fn challenges(&self) -> &[PaymentChallenge] {
        &self.challenges
    }
}

/// Reads a `402` answer: its `WWW-Authenticate` values and, when present, its body.
pub fn parse_payment_required(
    www_authenticate: &[&str],
    body: Option<&[u8]>,
) -> Result<PaymentRequired, ChallengeError> {
    if www_authenticate.is_empty() {
        return Err(ChallengeError::NoChallenge);
    }
    let mut challenges: Vec<PaymentChallenge> = Vec::new();
    let mut first_error = None;
    let mut other_schemes: Vec<String> = Vec::new();
    for value in www_authenticate.iter().take(MAX_CHALLENGE_HEADERS) {
        for part in split_challenges(value) {
            match part {
                Part::L402(text) => match header::parse_challenge(text) {
                    Ok(c) => {
                        let pc = reading(c);
                        let seen = challenges.iter().any(|k| {
                            k.challenge.invoice == pc.challenge.invoice
                                && k.challenge.macaroon == pc.challenge.macaroon
                        });
                        if !seen && challenges.len() < MAX_CHALLENGES {
                            challenges.push(pc);
                        }
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                },
                Part::Other(scheme) => other_schemes.push(scheme.chars().take(16).collect()),
            }
        }
    }
    if challenges.is_empty() {
        return Err(match first_error {
            Some(e) => ChallengeError::Malformed(e),
            None => ChallengeError::NoL402 {
                schemes: other_schemes.join(", "),
            },
        });
    }
    let body = body.and_then(read_body).filter(|b| {
        b.invoice
            .as_deref()
            .is_some_and(|i| challenges.iter().any(|c| c.challenge.invoice == i))
    });
    if let Some(b) = &body {
        for c in challenges.iter_mut().filter(|c| c.expires_at.is_none()) {
            c.expires_at = b.token.as_ref().and_then(|t| t.expires_at);
        }
    }
    Ok(PaymentRequired { challenges, body })
}

/// Checks that the token commits to `invoice_hash` (when its identifier says which hash it
/// commits to): paying an invoice the token does not name buys nothing.
pub fn check_commitment(
    challenge: &PaymentChallenge,
    invoice_hash: &PaymentHash,
) -> Result<(), ChallengeError> {
    match &challenge.committed_hash {
        Some(h) if h != invoice_hash => Err(ChallengeError::TokenNotForInvoice),
        _ => Ok(()),
    }
}

fn reading(challenge: Challenge) -> PaymentChallenge {
    let committed_hash = Identifier::decode(challenge.macaroon.identifier())
        .ok()
        .map(|id| id.payment_hash);
    let expires_at = challenge
        .macaroon
        .caveats()
        .filter(|c| !c.is_third_party())
        .filter_map(|c| {
            let text = std::str::from_utf8(c.id).ok()?;
            let (key, value) = text.split_once('=')?;
            key.trim()
                .ends_with("_valid_until")
                .then(|| value.trim().parse::<u64>().ok())?
        })
        .min();
    PaymentChallenge {
        scheme: challenge.scheme,
        challenge,
        committed_hash,
        expires_at,
    }
}

fn read_body(bytes: &[u8]) -> Option<ChallengeBody> {
    if bytes.len() > MAX_BODY_LEN {
        return None;
    }
    serde_json::from_slice(bytes).ok()
}

/// A piece of one `WWW-Authenticate` value.
#[derive(Debug, PartialEq, Eq)]
enum Part<'a> {
    /// From an `L402`/`LSAT` scheme token to the end of the value (the parser stops where
    /// the next challenge begins).
    L402(&'a str),
    /// Another scheme's name.
    Other(&'a str),
}

/// Finds where each challenge of one header value starts: a token at the start of the value or
/// after a comma, outside quoted strings, followed by whitespace and not by `=` (which would
/// make it a parameter name). Linear in the value's length, and bounded by the header parser's
/// own length limit once a challenge is handed to it.
fn split_challenges(value: &str) -> Vec<Part<'_>> {
    let bytes = value.as_bytes();
    let mut parts = Vec::new();
    let mut i = 0;
    let mut at_item_start = true;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'"' {
            // Skip the quoted string, honouring backslash escapes.
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            at_item_start = false;
            continue;
        }
        if b == b',' {
            at_item_start = true;
            i += 1;
            continue;
        }
        if b == b' ' || b == b'\t' {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !matches!(bytes[i], b' ' | b'\t' | b',' | b'=' | b'"') {
            i += 1;
        }
        if i == start {
            // `=` (the only byte the scan stops on at once here): part of a parameter.
            i += 1;
            at_item_start = false;
            continue;
        }
        let token = &value[start..i];
        let followed_by_space = matches!(bytes.get(i), Some(b' ' | b'\t'));
        let is_scheme = at_item_start && {
            // A scheme is followed by whitespace then something that is not `=`.
            let mut j = i;
            while matches!(bytes.get(j), Some(b' ' | b'\t')) {
                j += 1;
            }
            (followed_by_space || j == bytes.len()) && bytes.get(j) != Some(&b'=')
        };
        if is_scheme && !token.is_empty() {
            if token.eq_ignore_ascii_case("L402") || token.eq_ignore_ascii_case("LSAT") {
                parts.push(Part::L402(&value[start..]));
            } else {
                parts.push(Part::Other(token));
            }
        }
        at_item_start = false;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l402::{Macaroon, RootKey, TokenId};
    use proptest::prelude::*;

    fn token(hash: [u8; 32], caveats: &[&str]) -> Macaroon {
        let key = RootKey::from_bytes([1; 32]);
        let id = Identifier::new(PaymentHash(hash), TokenId([2; 32]));
        let mut m = Macaroon::new(&key, &id.encode(), "tapgate");
        for c in caveats {
            m.add_first_party_caveat(c.as_bytes()).unwrap();
        }
        m
    }

    fn www(scheme: &str, key: &str, m: &Macaroon, invoice: &str) -> String {
        format!(
            "{scheme} {key}=\"{}\", invoice=\"{invoice}\"",
            m.to_base64()
        )
    }

    #[test]
    fn reads_l402_and_lsat_with_macaroon_or_token_in_one_or_several_values() {
        let m = token([3; 32], &[]);
        for (scheme, key) in [
            ("L402", "macaroon"),
            ("LSAT", "macaroon"),
            ("l402", "token"),
            ("lsat", "TOKEN"),
        ] {
            let v = www(scheme, key, &m, "lnbcrt1abc");
            let got = parse_payment_required(&[&v], None).unwrap();
            assert_eq!(got.challenges.len(), 1, "{v}");
            assert_eq!(got.preferred().challenge.invoice, "lnbcrt1abc");
            assert_eq!(got.preferred().challenge.macaroon, m);
        }
        // Aperture: LSAT then L402 with the same token, as two values or one.
        let lsat = www("LSAT", "macaroon", &m, "lnbcrt1abc");
        let l402 = www("L402", "macaroon", &m, "lnbcrt1abc");
        let two = parse_payment_required(&[&lsat, &l402], None).unwrap();
        assert_eq!(two.challenges.len(), 1);
        let joined = format!("{lsat}, {l402}");
        let one = parse_payment_required(&[&joined], None).unwrap();
        assert_eq!(one, two);
    }

    #[test]
    fn a_balance_exhausted_body_marks_a_top_up() {
        let m = token([3; 32], &[]);
        let v = www("L402", "macaroon", &m, "lnbcrt1abc");
        let body = |code: &str| {
            format!(r#"{{"invoice":"lnbcrt1abc","error":{{"code":"{code}","reason":"x"}}}}"#)
        };
        let top_up = body("balance_exhausted");
        let got = parse_payment_required(&[&v], Some(top_up.as_bytes())).unwrap();
        assert!(got.balance_exhausted());
        let other = body("payment_required");
        let got = parse_payment_required(&[&v], Some(other.as_bytes())).unwrap();
        assert!(!got.balance_exhausted());
        assert!(
            !parse_payment_required(&[&v], None)
                .unwrap()
                .balance_exhausted()
        );
    }

    #[test]
    fn prefers_l402_and_skips_other_schemes() {
        let a = token([3; 32], &[]);
        let b = token([4; 32], &[]);
        let v = format!(
            "Bearer realm=\"x, L402 macaroon=y\", {}, Basic realm=\"z\", {}",
            www("LSAT", "macaroon", &a, "lnbcrt1aaa"),
            www("L402", "token", &b, "lnbcrt1bbb"),
        );
        let got = parse_payment_required(&[&v], None).unwrap();
        assert_eq!(got.challenges.len(), 2);
        assert_eq!(got.preferred().scheme, Scheme::L402);
        assert_eq!(got.preferred().challenge.invoice, "lnbcrt1bbb");
        let err = parse_payment_required(&["Bearer realm=\"api\"", "Basic"], None).unwrap_err();
        assert!(
            matches!(&err, ChallengeError::NoL402 { schemes } if schemes == "Bearer, Basic"),
            "{err:?}"
        );
    }

    #[test]
    fn malformed_challenges_are_typed_errors() {
        for v in [
            "L402",
            "L402 invoice=\"lnbc1\"",
            "L402 macaroon=\"!!!\", invoice=\"lnbc1\"",
            "L402 macaroon=\"AgE\", invoice=\"ln bc\"",
            "L402 macaroon=\"unterminated",
        ] {
            let err = parse_payment_required(&[v], None).unwrap_err();
            assert!(matches!(err, ChallengeError::Malformed(_)), "{v}: {err:?}");
        }
        assert!(matches!(
            parse_payment_required(&[], None),
            Err(ChallengeError::NoChallenge)
        ));
    }

    #[test]
    fn the_body_is_kept_only_for_the_headers_invoice_and_gives_the_expiry() {
        let m = token([3; 32], &[]);
        let v = www("L402", "macaroon", &m, "lnbcrt1abc");
        let body = br#"{"service":"weather","price_usd":"0.01","charge_usd":"0.01","rail":"asset",
            "msat":10000,"invoice":"lnbcrt1abc","asset":{"asset_id":"ab","units":10000,"decimal_display":6},
            "token":{"expires_at":1700000600,"lifetime_secs":600},"extra":[1,2]}"#;
        let got = parse_payment_required(&[&v], Some(body)).unwrap();
        let b = got.body.unwrap();
        assert_eq!(b.price_usd, Some(Decimal::new(1, 2)));
        assert_eq!(b.rail.as_deref(), Some("asset"));
        assert_eq!(b.asset.and_then(|a| a.units), Some(10_000));
        assert_eq!(got.challenges[0].expires_at, Some(1_700_000_600));
        // Another invoice: the body is not about this challenge.
        let other = br#"{"invoice":"lnbcrt1zzz","price_usd":"5"}"#;
        assert_eq!(
            parse_payment_required(&[&v], Some(other)).unwrap().body,
            None
        );
        // Aperture's text body, or broken JSON: no body, still a challenge.
        for body in [&b"payment required"[..], b"{\"price_usd\": 1.5", b"[]"] {
            let got = parse_payment_required(&[&v], Some(body)).unwrap();
            assert_eq!(got.body, None);
        }
    }

    #[test]
    fn the_earliest_valid_until_caveat_wins_over_the_body() {
        let m = token(
            [3; 32],
            &[
                "services=weather:0",
                "weather_valid_until=2000",
                "x_valid_until = 1500",
            ],
        );
        let v = www("L402", "macaroon", &m, "lnbcrt1abc");
        let body = br#"{"invoice":"lnbcrt1abc","token":{"expires_at":9999}}"#;
        let got = parse_payment_required(&[&v], Some(body)).unwrap();
        assert_eq!(got.challenges[0].expires_at, Some(1500));
    }

    #[test]
    fn a_token_for_another_hash_is_refused() {
        let m = token([3; 32], &[]);
        let v = www("L402", "macaroon", &m, "lnbcrt1abc");
        let got = parse_payment_required(&[&v], None).unwrap();
        let c = got.preferred();
        assert_eq!(c.committed_hash, Some(PaymentHash([3; 32])));
        assert!(check_commitment(c, &PaymentHash([3; 32])).is_ok());
        assert!(matches!(
            check_commitment(c, &PaymentHash([4; 32])),
            Err(ChallengeError::TokenNotForInvoice)
        ));
    }

    proptest! {
        /// Nothing a server sends makes the parser panic.
        #[test]
        fn never_panics(values in proptest::collection::vec(".{0,200}", 0..4), body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            let _ = parse_payment_required(&refs, Some(&body));
        }

        /// Any challenge tapgate emits is read back, whatever precedes it.
        #[test]
        fn reads_back_what_tapgate_emits(hash in any::<[u8; 32]>(), prefix in "(Bearer realm=\"[a-z ,]{0,10}\", )?") {
            let m = token(hash, &[]);
            let v = format!("{prefix}{}", Challenge::new(m.clone(), "lnbcrt1abc".into()).to_header_value());
            let got = parse_payment_required(&[&v], None).unwrap();
            prop_assert_eq!(&got.preferred().challenge.macaroon, &m);
            prop_assert_eq!(got.preferred().committed_hash, Some(PaymentHash(hash)));
        }
    }
}
