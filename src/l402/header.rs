//! The two L402 HTTP headers: the server's `WWW-Authenticate` challenge and the client's
//! `Authorization` credential.
//!
//! Emission is strict (`L402 macaroon="<std base64>", invoice="<bolt11>"`, which every known
//! client parses). Parsing is liberal where interoperability needs it and bounded everywhere:
//! scheme `L402` or `LSAT` in any case; `macaroon=` or `token=` in challenges, unknown
//! parameters ignored; standard or URL-safe base64, padded or not; one or more
//! comma-separated macaroons before `:<64 hex preimage>`. Every refusal is a [`HeaderError`].

use std::fmt;

use super::macaroon::{Macaroon, MacaroonError};
use super::secret::Preimage;

/// Longest header value accepted, in bytes.
pub const MAX_HEADER_LEN: usize = 8 * 1024;
/// Most macaroons accepted in one credential.
pub const MAX_MACAROONS: usize = 4;
/// Most `Authorization` header values looked at on one request.
pub const MAX_AUTHORIZATION_HEADERS: usize = 4;

/// The authentication scheme a header used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `L402`, the current name.
    L402,
    /// `LSAT`, the legacy name bLIP-26 says must still be accepted.
    Lsat,
}

impl Scheme {
    fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("L402") {
            Some(Self::L402)
        } else if s.eq_ignore_ascii_case("LSAT") {
            Some(Self::Lsat)
        } else {
            None
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::L402 => "L402",
            Self::Lsat => "LSAT",
        }
    }
}

/// Why a header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// No `Authorization` header at all.
    #[error(
        "no Authorization header; pay the invoice in the challenge and send `Authorization: L402 <macaroon>:<preimage>`"
    )]
    Missing,
    /// A value over [`MAX_HEADER_LEN`].
    #[error("header is {0} bytes, more than the {MAX_HEADER_LEN} accepted")]
    TooLong(usize),
    /// Another scheme (`Bearer`, `Basic`, …).
    #[error("authorization scheme {0:?} is not L402 or LSAT")]
    UnsupportedScheme(String),
    /// Several different credentials on one request.
    #[error("{0} Authorization headers carry different credentials; send exactly one")]
    Ambiguous(usize),
    /// Too many header values to look at.
    #[error("too many Authorization headers")]
    TooManyHeaders,
    /// Syntax error.
    #[error("malformed L402 header: {0}")]
    Malformed(&'static str),
    /// The preimage is not 64 hex characters.
    #[error("preimage must be 64 hex characters (32 bytes)")]
    BadPreimage,
    /// More than [`MAX_MACAROONS`] macaroons.
    #[error("credential carries more than {MAX_MACAROONS} macaroons")]
    TooManyMacaroons,
    /// A macaroon does not decode.
    #[error("macaroon {index} in the header: {source}")]
    Macaroon {
        /// Position in the comma-separated list, from 0.
        index: usize,
        /// Why it did not decode.
        #[source]
        source: MacaroonError,
    },
}

/// A parsed `Authorization: L402 …` credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// The scheme the client used.
    pub scheme: Scheme,
    /// The macaroons, the L402 token first. More than one means discharge macaroons.
    pub macaroons: Vec<Macaroon>,
    /// The payment preimage.
    pub preimage: Preimage,
}

impl Credential {
    /// The `Authorization` header value for this credential (standard base64, padded).
    pub fn to_header_value(&self) -> String {
        let macs: Vec<String> = self.macaroons.iter().map(Macaroon::to_base64).collect();
        format!(
            "{} {}:{}",
            self.scheme.as_str(),
            macs.join(","),
            hex::encode(self.preimage.expose())
        )
    }
}

fn check_len(value: &str) -> Result<(), HeaderError> {
    if value.len() > MAX_HEADER_LEN {
        Err(HeaderError::TooLong(value.len()))
    } else {
        Ok(())
    }
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_ows_byte(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `s` without leading and trailing spaces and tabs (byte by byte: both are ASCII).
fn trim_ows(s: &str) -> &str {
    let b = s.as_bytes();
    let start = b.iter().position(|&c| !is_ows_byte(c)).unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|&c| !is_ows_byte(c))
        .map_or(start, |e| e + 1);
    // Both ends sit next to ASCII bytes (or the string's ends), so they are char boundaries.
    s.get(start..end).unwrap_or_default()
}

/// Splits `<scheme> <rest>` with the scheme compared case-insensitively.
fn split_scheme(value: &str) -> Result<(Scheme, &str), HeaderError> {
    let value = trim_ows(value);
    let at = value.bytes().position(is_ows_byte).unwrap_or(value.len());
    let (scheme, rest) = value.split_at_checked(at).unwrap_or((value, ""));
    let scheme_kind = Scheme::parse(scheme).ok_or_else(|| {
        let shown: String = scheme.chars().take(16).collect();
        HeaderError::UnsupportedScheme(shown)
    })?;
    Ok((scheme_kind, trim_ows(rest)))
}

/// The value of one hex digit, or `0xff`; arithmetic only, no branch and no table lookup on
/// the digit (the preimage is a secret).
const fn hex_digit(b: u8) -> u8 {
    let digit = b.wrapping_sub(b'0');
    let letter = (b | 0x20).wrapping_sub(b'a');
    let is_digit = ((digit < 10) as u8).wrapping_neg();
    let is_letter = ((letter < 6) as u8).wrapping_neg();
    (digit & is_digit) | (letter.wrapping_add(10) & is_letter) | !(is_digit | is_letter)
}

/// Decodes exactly 64 hex digits (either case) without branching on the digits: the preimage
/// is a secret, and this runs on every request.
fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    let b: &[u8; 64] = s.as_bytes().try_into().ok()?;
    // Digits to nibbles in one pass over contiguous bytes, then pairs into bytes: both loops
    // vectorise.
    let mut nibbles = [0u8; 64];
    for (n, &c) in nibbles.iter_mut().zip(b) {
        *n = hex_digit(c);
    }
    let invalid = nibbles.iter().fold(0u8, |acc, &n| acc | n) & 0xf0;
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(nibbles.chunks_exact(2)) {
        *o = (pair[0] << 4) | (pair[1] & 0x0f);
    }
    (invalid == 0).then_some(out)
}

/// Splits one `Authorization` value into its scheme, its macaroons' text (not yet looked at)
/// and the preimage.
fn split_credential(value: &str) -> Result<(Scheme, &str, Preimage), HeaderError> {
    check_len(value)?;
    let (scheme, token) = split_scheme(value)?;
    if token.is_empty() {
        return Err(HeaderError::Malformed("nothing after the scheme"));
    }
    // The preimage is the last 64 characters, after the last ':'. Where the 65th character
    // from the end is a ':', splitting there is the same as at the last ':' (a ':' among the
    // 64 fails as hex either way); otherwise look for the last ':'.
    let at_preimage = token
        .len()
        .checked_sub(65)
        .filter(|&at| token.as_bytes().get(at) == Some(&b':'));
    let (macs, preimage_hex) = match at_preimage {
        Some(at) => token.get(..at).zip(token.get(at + 1..)),
        None => token.rsplit_once(':'),
    }
    .ok_or(HeaderError::Malformed("expected <macaroon>:<preimage>"))?;
    let preimage =
        Preimage::from_bytes(decode_hex32(preimage_hex).ok_or(HeaderError::BadPreimage)?);
    Ok((scheme, macs, preimage))
}

/// The request path's common case, split without allocating: exactly one `Authorization`
/// value, as `(the macaroon text, the preimage)`. `None` for more values or fewer, or a value
/// that does not split; then [`parse_authorization`] has the verdict.
///
/// The macaroon text is not checked here. Decoding it as one base64 token checks it: a comma
/// (a discharge list), a second `:`, whitespace or a control character is not base64.
pub(crate) fn split_single<'v>(values: &[&'v str]) -> Option<(&'v str, Preimage)> {
    let [value] = values else {
        return None;
    };
    let (_, macs, preimage) = split_credential(value).ok()?;
    Some((macs, preimage))
}

/// Parses one `Authorization` value.
pub fn parse_credential(value: &str) -> Result<Credential, HeaderError> {
    let (scheme, macs, preimage) = split_credential(value)?;
    // One branch-free pass over the macaroon bytes with a byte-wide accumulator, so it
    // vectorises (this runs on every request). Every character that matters is ASCII;
    // anything else fails base64 decoding below.
    let bad = macs.bytes().fold(0u8, |acc, b| {
        acc | u8::from(b <= b' ') | u8::from(b == 0x7f) | u8::from(b == b':')
    });
    if bad != 0 {
        return Err(HeaderError::Malformed(
            "whitespace, a control character or a second ':' inside the token",
        ));
    }
    let mut macaroons = Vec::with_capacity(1);
    for (index, b64) in macs.split(',').enumerate() {
        if index >= MAX_MACAROONS {
            return Err(HeaderError::TooManyMacaroons);
        }
        if b64.is_empty() {
            return Err(HeaderError::Malformed("empty macaroon in the list"));
        }
        macaroons.push(
            Macaroon::from_base64(b64).map_err(|source| HeaderError::Macaroon { index, source })?,
        );
    }
    Ok(Credential {
        scheme,
        macaroons,
        preimage,
    })
}

/// Parses every `Authorization` value a request carried.
///
/// One credential is expected. Several headers are refused as ambiguous, except when they carry
/// the very same credential (Aperture's own client sends it twice, once as `LSAT` and once as
/// `L402`), which is not ambiguous at all.
pub fn parse_authorization(values: &[&str]) -> Result<Credential, HeaderError> {
    if values.len() > MAX_AUTHORIZATION_HEADERS {
        return Err(HeaderError::TooManyHeaders);
    }
    let mut found: Option<Credential> = None;
    for value in values {
        let cred = parse_credential(value)?;
        match &found {
            None => found = Some(cred),
            Some(prev) if prev.macaroons == cred.macaroons && prev.preimage == cred.preimage => {}
            Some(_) => return Err(HeaderError::Ambiguous(values.len())),
        }
    }
    found.ok_or(HeaderError::Missing)
}

/// A `WWW-Authenticate` challenge: the macaroon to pay for and the invoice that pays it.
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme the server used.
    pub scheme: Scheme,
    /// The not-yet-valid macaroon.
    pub macaroon: Macaroon,
    /// The BOLT11 invoice whose preimage unlocks it.
    pub invoice: String,
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Challenge")
            .field("scheme", &self.scheme)
            .field("macaroon", &self.macaroon)
            .field("invoice", &self.invoice)
            .finish()
    }
}

impl Challenge {
    /// A fresh L402 challenge.
    pub fn new(macaroon: Macaroon, invoice: String) -> Self {
        Self {
            scheme: Scheme::L402,
            macaroon,
            invoice,
        }
    }

    /// `L402 macaroon="<std base64>", invoice="<bolt11>"`.
    pub fn to_header_value(&self) -> String {
        format!(
            "{} macaroon=\"{}\", invoice=\"{}\"",
            self.scheme.as_str(),
            self.macaroon.to_base64(),
            self.invoice
        )
    }
}

/// Reads RFC 7235 auth-params: `key=token` or `key="quoted string"`, comma separated.
struct Params<'a> {
    rest: &'a str,
}

impl<'a> Params<'a> {
    /// The next `(key, value)`; `Ok(None)` at the end or where another challenge begins.
    fn next_param(&mut self) -> Result<Option<(&'a str, String)>, HeaderError> {
        let rest = self.rest.trim_start_matches(|c| is_ows(c) || c == ',');
        let Some(eq) = rest.find('=') else {
            return Ok(None);
        };
        let key = rest[..eq].trim_end_matches(is_ows);
        if key.is_empty() || key.contains(|c: char| is_ows(c) || c == ',' || c == '"') {
            // `Bearer realm=…` starts a new challenge: stop here.
            return Ok(None);
        }
        let after = rest[eq + 1..].trim_start_matches(is_ows);
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err(HeaderError::Malformed("unterminated quoted string")),
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => value.push(c),
                        None => return Err(HeaderError::Malformed("unterminated quoted string")),
                    },
                    Some((_, c)) => value.push(c),
                }
            };
            (value, &quoted[end + 1..])
        } else {
            let end = after.find(|c| is_ows(c) || c == ',').unwrap_or(after.len());
            (after[..end].to_owned(), &after[end..])
        };
        let tail = tail.trim_start_matches(is_ows);
        if !(tail.is_empty() || tail.starts_with(',')) {
            return Err(HeaderError::Malformed("expected ',' between parameters"));
        }
        self.rest = tail;
        Ok(Some((key, value)))
    }
}

/// Parses one `WWW-Authenticate` value holding an L402 (or LSAT) challenge.
pub fn parse_challenge(value: &str) -> Result<Challenge, HeaderError> {
    check_len(value)?;
    let (scheme, rest) = split_scheme(value)?;
    let mut params = Params { rest };
    let mut macaroon: Option<String> = None;
    let mut invoice: Option<String> = None;
    while let Some((key, value)) = params.next_param()? {
        let slot = if key.eq_ignore_ascii_case("macaroon") || key.eq_ignore_ascii_case("token") {
            &mut macaroon
        } else if key.eq_ignore_ascii_case("invoice") {
            &mut invoice
        } else {
            continue;
        };
        match slot {
            Some(prev) if *prev != value => {
                return Err(HeaderError::Malformed(
                    "challenge repeats a parameter with different values",
                ));
            }
            _ => *slot = Some(value),
        }
    }
    let macaroon = macaroon.ok_or(HeaderError::Malformed(
        "challenge has no macaroon= or token=",
    ))?;
    let invoice = invoice.ok_or(HeaderError::Malformed("challenge has no invoice="))?;
    if invoice.is_empty() || !invoice.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(HeaderError::Malformed("invoice is not a BOLT11 string"));
    }
    let macaroon = Macaroon::from_base64(&macaroon)
        .map_err(|source| HeaderError::Macaroon { index: 0, source })?;
    Ok(Challenge {
        scheme,
        macaroon,
        invoice,
    })
}

/// The first L402 challenge among several `WWW-Authenticate` values (others are skipped).
pub fn find_challenge(values: &[&str]) -> Result<Challenge, HeaderError> {
    let mut first_err = None;
    for v in values.iter().take(MAX_AUTHORIZATION_HEADERS) {
        match parse_challenge(v) {
            Ok(c) => return Ok(c),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or(HeaderError::Missing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l402::RootKey;
    use proptest::prelude::*;

    const MAC: &str = "AgEEbHNhdAJCAACfcuoM9JU248ZseH9wUYbfmkN4CDdTrpU21ls61/zdxDMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzAAIOc2VydmljZXM9c3ZjOjAAAAYgMhGOTzBwhH01+TTSs/Czt2wCshcooHKpXoye029+Ew0=";
    const MAC_URL: &str = "AgEEbHNhdAJCAACfcuoM9JU248ZseH9wUYbfmkN4CDdTrpU21ls61_zdxDMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzAAIOc2VydmljZXM9c3ZjOjAAAAYgMhGOTzBwhH01-TTSs_Czt2wCshcooHKpXoye029-Ew0";
    const PRE: &str = "2222222222222222222222222222222222222222222222222222222222222222";
    const INVOICE: &str = "lnbc100n1p5ww7qqdqsds6rqv3qwpex7cn9pp5naew5r85j5mw83nv0plhq5vxm7dyx7qgxaf6a9fk6edn44lumhzqsp5g3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zq9qrsgqcqzysyupe9784v087m94xztsy0ulkjl3qeq9q6573ke9wfwh3027qz2vj4mrr2vc97zwcgenw86d920mmxfkur8kxwv2alenw45k502s4qxgqxplsma";

    #[test]
    fn emits_the_reference_challenge() {
        let c = Challenge::new(Macaroon::from_base64(MAC).unwrap(), INVOICE.into());
        let expected = format!("L402 macaroon=\"{MAC}\", invoice=\"{INVOICE}\"");
        assert_eq!(c.to_header_value(), expected);
        assert_eq!(parse_challenge(&expected).unwrap(), c);
    }

    #[test]
    fn parses_challenge_variants() {
        for v in [
            format!("L402 macaroon=\"{MAC}\", invoice=\"{INVOICE}\""),
            format!("l402 version=\"0\", token=\"{MAC}\", invoice=\"{INVOICE}\""),
            format!("LSAT macaroon=\"{MAC}\",invoice=\"{INVOICE}\", future=\"x, y\""),
            format!("L402 invoice={INVOICE}, macaroon=\"{MAC_URL}\""),
        ] {
            let c = parse_challenge(&v).unwrap();
            assert_eq!(c.invoice, INVOICE, "{v}");
            assert_eq!(c.macaroon.to_base64(), MAC, "{v}");
        }
        assert!(
            find_challenge(&[
                "Bearer realm=\"x\"",
                &format!("L402 macaroon=\"{MAC}\", invoice=\"{INVOICE}\"")
            ])
            .is_ok()
        );
        assert!(matches!(
            parse_challenge(&format!("L402 invoice=\"{INVOICE}\"")),
            Err(HeaderError::Malformed(_))
        ));
        assert!(matches!(
            parse_challenge(&format!("L402 macaroon=\"{MAC}\", invoice=\"{INVOICE}")),
            Err(HeaderError::Malformed(_))
        ));
    }

    #[test]
    fn parses_authorization_variants() {
        let expected = Macaroon::from_base64(MAC).unwrap();
        for v in [
            format!("L402 {MAC}:{PRE}"),
            format!("lsat {MAC}:{PRE}"),
            format!("  L402   {MAC_URL}:{}  ", PRE.to_uppercase()),
            format!("L402 {}:{PRE}", MAC.trim_end_matches('=')),
        ] {
            let c = parse_authorization(&[&v]).unwrap();
            assert_eq!(c.macaroons, vec![expected.clone()], "{v}");
            assert_eq!(c.preimage.expose(), &[0x22; 32]);
        }
        let two = parse_authorization(&[&format!("L402 {MAC},{MAC_URL}:{PRE}")]).unwrap();
        assert_eq!(two.macaroons.len(), 2);
        // The same credential twice (Aperture's client: LSAT then L402) is not ambiguous.
        assert!(
            parse_authorization(&[&format!("LSAT {MAC}:{PRE}"), &format!("L402 {MAC}:{PRE}")])
                .is_ok()
        );
    }

    #[test]
    fn refusals_are_typed() {
        let other_pre = "33".repeat(32);
        type Case = (Vec<String>, fn(&HeaderError) -> bool);
        let cases: Vec<Case> = vec![
            (vec![], |e| *e == HeaderError::Missing),
            (vec!["Bearer abc".into()], |e| {
                matches!(e, HeaderError::UnsupportedScheme(_))
            }),
            (vec!["L402".into()], |e| {
                matches!(e, HeaderError::Malformed(_))
            }),
            (vec![format!("L402 {MAC}")], |e| {
                matches!(e, HeaderError::Malformed(_))
            }),
            (vec![format!("L402 {MAC}:{}", &PRE[1..])], |e| {
                *e == HeaderError::BadPreimage
            }),
            (vec![format!("L402 {MAC}:{}", "zz".repeat(32))], |e| {
                *e == HeaderError::BadPreimage
            }),
            (vec![format!("L402 {MAC}:x:{PRE}")], |e| {
                matches!(e, HeaderError::Malformed(_))
            }),
            (vec![format!("L402 {MAC} x:{PRE}")], |e| {
                matches!(e, HeaderError::Malformed(_))
            }),
            (vec![format!("L402 {MAC}\r\n:{PRE}")], |e| {
                matches!(e, HeaderError::Malformed(_))
            }),
            (vec![format!("L402 ,{MAC}:{PRE}")], |e| {
                matches!(e, HeaderError::Malformed(_))
            }),
            (vec![format!("L402 {}:{PRE}", [MAC; 5].join(","))], |e| {
                *e == HeaderError::TooManyMacaroons
            }),
            (vec![format!("L402 AAAA:{PRE}")], |e| {
                matches!(e, HeaderError::Macaroon { index: 0, .. })
            }),
            (
                vec![format!("L402 {}:{PRE}", "A".repeat(MAX_HEADER_LEN))],
                |e| matches!(e, HeaderError::TooLong(_)),
            ),
            (
                vec![
                    format!("L402 {MAC}:{PRE}"),
                    format!("L402 {MAC}:{other_pre}"),
                ],
                |e| *e == HeaderError::Ambiguous(2),
            ),
            (vec![format!("L402 {MAC}:{PRE}"); 5], |e| {
                *e == HeaderError::TooManyHeaders
            }),
        ];
        for (values, check) in cases {
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            let err = parse_authorization(&refs).unwrap_err();
            assert!(check(&err), "{values:?} gave {err:?}");
        }
    }

    #[test]
    fn credential_header_round_trips() {
        let key = RootKey::from_bytes([1; 32]);
        let cred = Credential {
            scheme: Scheme::L402,
            macaroons: vec![Macaroon::new(&key, b"id", "loc")],
            preimage: Preimage::from_bytes([9; 32]),
        };
        assert_eq!(
            parse_authorization(&[&cred.to_header_value()]).unwrap(),
            cred
        );
        assert!(!format!("{cred:?}").contains(&"09".repeat(32)));
    }

    proptest! {
        #[test]
        fn hex32_matches_the_hex_crate(bytes in any::<[u8; 32]>(), upper in any::<bool>(), junk in 0usize..80) {
            let mut text = hex::encode(bytes);
            if upper { text = text.to_uppercase(); }
            prop_assert_eq!(decode_hex32(&text), Some(bytes));
            if junk < 64 {
                text.replace_range(junk..junk + 1, "g");
                prop_assert_eq!(decode_hex32(&text), None);
            }
            prop_assert_eq!(decode_hex32(&text[..63]), None);
        }

        #[test]
        fn authorization_never_panics(a in ".{0,300}", b in proptest::option::of(".{0,100}")) {
            let mut v = vec![a.as_str()];
            if let Some(b) = &b { v.push(b); }
            let _ = parse_authorization(&v);
        }

        #[test]
        fn challenge_never_panics(a in ".{0,300}") {
            let _ = parse_challenge(&a);
        }

        #[test]
        fn authorization_never_panics_near_valid(cut in 0usize..400, junk in "[ -~]{0,4}") {
            let v = format!("L402 {MAC}:{PRE}");
            let cut = cut.min(v.len());
            let s = format!("{}{}{}", &v[..cut], junk, &v[cut..]);
            let _ = parse_authorization(&[&s]);
        }
    }
}
