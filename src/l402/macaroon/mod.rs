//! Macaroons: the V2 binary format and go-macaroon's HMAC-SHA256 chain.
//!
//! The byte layout follows go-macaroon (`gopkg.in/macaroon.v2`, the library Aperture and LND
//! use): a version byte `2`, then sections of `(field type, uvarint length, bytes)` packets
//! in ascending field order, each closed by an end-of-section byte `0`; the header section
//! (location, identifier), one section per caveat (location, identifier, verification id),
//! an empty section ending the caveat list, and finally the 32-byte signature.
//!
//! The signature chain starts from `HMAC-SHA256(key = "macaroons-key-generator",
//! msg = root_key)`, as go-macaroon and libmacaroons do (the L402 macaroon spec text omits this
//! derivation; following it literally would not verify a single Aperture token). Each
//! first-party caveat moves the chain one step: `sig = HMAC(sig, caveat)`, which is why anyone
//! holding a macaroon can attenuate it without the root key.
//!
//! Decoding is liberal in what it accepts (V2 binary or the legacy V1 text packets; standard or
//! URL-safe base64, padded or not) and strict in what it emits (V2, standard base64, padded).
//! Every input is bounded; no input panics.

use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::secret::{RootKey, ct_eq_32};

mod decode;

pub use decode::{Caveats, MacaroonRef};
use decode::{decode_v1, decode_v2};

type HmacSha256 = Hmac<Sha256>;

/// Most caveats a macaroon may carry. Aperture mints two or three; attenuation adds a few.
pub const MAX_CAVEATS: usize = 32;
/// Longest caveat identifier accepted, in bytes.
pub const MAX_CAVEAT_LEN: usize = 1024;
/// Longest macaroon identifier accepted, in bytes (L402 identifiers are 66).
pub const MAX_IDENTIFIER_LEN: usize = 1024;
/// Longest location accepted, in bytes.
pub const MAX_LOCATION_LEN: usize = 256;
/// Longest encoded macaroon accepted, in bytes.
pub const MAX_MACAROON_LEN: usize = 16 * 1024;

const KEY_GENERATOR: &[u8] = b"macaroons-key-generator";

const FIELD_EOS: u8 = 0;
const FIELD_LOCATION: u8 = 1;
const FIELD_IDENTIFIER: u8 = 2;
const FIELD_VERIFICATION_ID: u8 = 4;
const FIELD_SIGNATURE: u8 = 6;
const VERSION_2: u8 = 2;

const LIBERAL: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(false);
const STD_LIBERAL: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LIBERAL);
const URL_LIBERAL: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LIBERAL);

/// Decodes base64 in either alphabet, padded or not. Mixing the two alphabets is refused.
pub fn decode_base64_liberal(s: &str) -> Result<Vec<u8>, MacaroonError> {
    // Standard first (what tapgate and Aperture emit); URL-safe on failure. A string mixing
    // the alphabets fails both.
    STD_LIBERAL
        .decode(s)
        .or_else(|_| URL_LIBERAL.decode(s))
        .map_err(|_| MacaroonError::Base64("not valid base64 (standard or URL-safe)"))
}

/// Decodes base64 in either alphabet, padded or not, into `out`; returns the decoded length.
/// `out` must hold `s.len().div_ceil(4) * 3` bytes. Accepts exactly what
/// [`decode_base64_liberal`] accepts, without allocating.
///
/// This is the verification hot path's decoder. The common shape (standard alphabet, padded
/// when the length is a multiple of four, unpadded otherwise) is decoded with SIMD; that
/// decoder is strict (canonical padding, zero trailing bits), so what it accepts the base64
/// crate accepts too, with the same bytes (`verify::agreement` tests both ways). Anything it
/// refuses takes the base64 crate's way, which has the final word.
pub fn decode_base64_liberal_into(s: &str, out: &mut [u8]) -> Result<usize, MacaroonError> {
    let simd = if s.len().is_multiple_of(4) {
        base64_simd::STANDARD
    } else {
        base64_simd::STANDARD_NO_PAD
    };
    if let Ok(decoded) = simd.decode(s.as_bytes(), base64_simd::Out::from_slice(out)) {
        return Ok(decoded.len());
    }
    STD_LIBERAL
        .decode_slice(s, out)
        .or_else(|_| URL_LIBERAL.decode_slice(s, out))
        .map_err(|_| MacaroonError::Base64("not valid base64 (standard or URL-safe)"))
}

/// One caveat as it sits in the macaroon, borrowed from it. First-party caveats have only an
/// identifier.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CaveatRef<'a> {
    /// The caveat identifier: for first-party caveats the condition text (`key=value`).
    pub id: &'a [u8],
    /// Third-party caveats only: the encrypted key the discharger needs.
    pub verification_id: Option<&'a [u8]>,
    /// Third-party caveats only: where the discharge macaroon comes from.
    pub location: &'a str,
}

impl CaveatRef<'_> {
    /// True for a third-party caveat (one that needs a discharge macaroon).
    pub fn is_third_party(&self) -> bool {
        self.verification_id.is_some()
    }
}

impl fmt::Debug for CaveatRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.verification_id {
            None => write!(f, "FirstParty({:?})", String::from_utf8_lossy(self.id)),
            Some(_) => write!(f, "ThirdParty(location={:?})", self.location),
        }
    }
}

/// Where a caveat's fields sit in [`Macaroon::buf`].
#[derive(Clone)]
struct CaveatSpan {
    id: Range<usize>,
    verification_id: Option<Range<usize>>,
    location: Range<usize>,
}

/// A macaroon: identifier, location, caveats and the chained signature.
///
/// Field bytes live in one buffer (for a decoded macaroon, the decoded bytes themselves), so
/// decoding one costs two allocations, not one per field. The request path allocates none: it
/// reads the token in place as a [`MacaroonRef`].
///
/// The signature is a bearer secret (with the preimage it *is* the credential), so `Debug`
/// redacts it. Equality compares contents, and signatures in constant time.
#[derive(Clone)]
pub struct Macaroon {
    /// Backing bytes; every range below points into it. Invariant: `location` is UTF-8.
    buf: Vec<u8>,
    location: Range<usize>,
    identifier: Range<usize>,
    caveats: Vec<CaveatSpan>,
    signature: [u8; 32],
}

impl fmt::Debug for Macaroon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Macaroon")
            .field("location", &self.location())
            .field("identifier", &hex::encode(self.identifier()))
            .field("caveats", &self.caveats().collect::<Vec<_>>())
            .field("signature", &"<redacted>")
            .finish()
    }
}

impl PartialEq for Macaroon {
    fn eq(&self, other: &Self) -> bool {
        self.location() == other.location()
            && self.identifier() == other.identifier()
            && self.caveats().eq(other.caveats())
            && bool::from(self.signature.ct_eq(&other.signature))
    }
}

impl Eq for Macaroon {}

/// Why bytes are not a macaroon, or why a macaroon does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacaroonError {
    /// The text is not base64 of either flavour.
    #[error("macaroon is not base64: {0}")]
    Base64(&'static str),
    /// Structural problem in the binary encoding.
    #[error("malformed macaroon: {0}")]
    Malformed(&'static str),
    /// Encoding exceeds a bound.
    #[error("macaroon exceeds a limit: {0}")]
    TooLarge(&'static str),
    /// A format version other than V1 text or V2 binary.
    #[error("unsupported macaroon format (first byte {0:#04x}); expected V2 binary or V1")]
    UnsupportedFormat(u8),
    /// Third-party caveats decode but tapgate never issues or discharges them.
    #[error(
        "macaroon has a third-party caveat (location {0:?}); tapgate issues first-party caveats only and cannot verify discharges"
    )]
    ThirdPartyCaveat(String),
    /// The HMAC chain does not end in the presented signature.
    #[error("macaroon signature does not match: the token was altered or minted with another key")]
    BadSignature,
}

impl Macaroon {
    /// Mints a macaroon with no caveats.
    pub fn new(root_key: &RootKey, identifier: &[u8], location: &str) -> Self {
        let signature = hmac(&derive_key(root_key), identifier);
        let mut buf = Vec::with_capacity(location.len() + identifier.len() + 128);
        let location = push_span(&mut buf, location.as_bytes());
        let identifier = push_span(&mut buf, identifier);
        Self {
            buf,
            location,
            identifier,
            caveats: Vec::new(),
            signature,
        }
    }

    /// Appends a first-party caveat, moving the signature chain one step.
    ///
    /// No root key is needed: this is attenuation. Bounds are enforced so that what we emit
    /// we would also accept.
    pub fn add_first_party_caveat(&mut self, caveat: &[u8]) -> Result<(), MacaroonError> {
        if self.caveats.len() >= MAX_CAVEATS {
            return Err(MacaroonError::TooLarge("too many caveats"));
        }
        if caveat.is_empty() || caveat.len() > MAX_CAVEAT_LEN {
            return Err(MacaroonError::TooLarge("caveat empty or too long"));
        }
        self.signature = hmac(&self.signature, caveat);
        let id = push_span(&mut self.buf, caveat);
        self.caveats.push(CaveatSpan {
            id,
            verification_id: None,
            location: 0..0,
        });
        Ok(())
    }

    /// The identifier bytes (for L402, an [`super::Identifier`]).
    pub fn identifier(&self) -> &[u8] {
        &self.buf[self.identifier.clone()]
    }

    /// The location hint (`"lsat"` for Aperture's tokens).
    pub fn location(&self) -> &str {
        self.str_at(&self.location)
    }

    fn str_at(&self, range: &Range<usize>) -> &str {
        if range.is_empty() {
            return "";
        }
        // Locations are checked to be UTF-8 when they enter the buffer.
        std::str::from_utf8(&self.buf[range.clone()]).unwrap_or_default()
    }

    /// The caveats in order.
    pub fn caveats(&self) -> impl ExactSizeIterator<Item = CaveatRef<'_>> + Clone + '_ {
        self.caveats.iter().map(|c| CaveatRef {
            id: &self.buf[c.id.clone()],
            verification_id: c.verification_id.clone().map(|r| &self.buf[r]),
            location: self.str_at(&c.location),
        })
    }

    /// The current signature. A bearer secret: never log it.
    pub fn signature(&self) -> &[u8; 32] {
        &self.signature
    }

    /// Recomputes the chain from `root_key` and compares it with the signature in constant time.
    ///
    /// Third-party caveats are refused with a clear reason before any HMAC is computed.
    pub fn verify_signature(&self, root_key: &RootKey) -> Result<(), MacaroonError> {
        refuse_third_party(self.caveats())?;
        check_chain(root_key, self.identifier(), self.caveats(), &self.signature)
    }

    /// The V2 binary encoding (what go-macaroon's `MarshalBinary` produces).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buf.len() + 12 * self.caveats.len() + 48);
        out.push(VERSION_2);
        let location = self.location();
        if !location.is_empty() {
            put_field(&mut out, FIELD_LOCATION, location.as_bytes());
        }
        put_field(&mut out, FIELD_IDENTIFIER, self.identifier());
        out.push(FIELD_EOS);
        for c in self.caveats() {
            if !c.location.is_empty() {
                put_field(&mut out, FIELD_LOCATION, c.location.as_bytes());
            }
            put_field(&mut out, FIELD_IDENTIFIER, c.id);
            if let Some(vid) = c.verification_id {
                put_field(&mut out, FIELD_VERIFICATION_ID, vid);
            }
            out.push(FIELD_EOS);
        }
        out.push(FIELD_EOS);
        put_field(&mut out, FIELD_SIGNATURE, &self.signature);
        out
    }

    /// Standard base64, padded: the form the `WWW-Authenticate` challenge carries.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.encode())
    }

    /// Decodes a V2 binary macaroon, or a legacy V1 one.
    pub fn decode(bytes: &[u8]) -> Result<Self, MacaroonError> {
        if bytes.len() > MAX_MACAROON_LEN {
            return Err(MacaroonError::TooLarge("encoded macaroon too long"));
        }
        Self::decode_owned(bytes.to_vec())
    }

    /// Decodes base64 (standard or URL-safe, padded or not) and then the macaroon.
    pub fn from_base64(s: &str) -> Result<Self, MacaroonError> {
        if s.len() > MAX_MACAROON_LEN * 4 / 3 + 4 {
            return Err(MacaroonError::TooLarge("encoded macaroon too long"));
        }
        Self::decode_owned(decode_base64_liberal(s)?)
    }

    /// Decodes bytes it may keep: the fields stay where they are in `buf`.
    fn decode_owned(buf: Vec<u8>) -> Result<Self, MacaroonError> {
        if buf.len() > MAX_MACAROON_LEN {
            return Err(MacaroonError::TooLarge("encoded macaroon too long"));
        }
        let parts = match buf.first() {
            None => return Err(MacaroonError::Malformed("empty input")),
            Some(&VERSION_2) => decode_v2(&buf)?,
            Some(b) if b.is_ascii_hexdigit() => decode_v1(&buf)?,
            Some(&b) => return Err(MacaroonError::UnsupportedFormat(b)),
        };
        Ok(Self {
            buf,
            location: parts.location,
            identifier: parts.identifier,
            caveats: parts.caveats,
            signature: parts.signature,
        })
    }

    /// Test support: appends a caveat exactly as given (third-party ones included), without
    /// touching the signature.
    #[cfg(test)]
    fn push_raw_caveat(&mut self, id: &[u8], verification_id: Option<&[u8]>, location: &str) {
        let id = push_span(&mut self.buf, id);
        let verification_id = verification_id.map(|v| push_span(&mut self.buf, v));
        let location = push_span(&mut self.buf, location.as_bytes());
        self.caveats.push(CaveatSpan {
            id,
            verification_id,
            location,
        });
    }
}

impl MacaroonRef<'_> {
    /// Recomputes the chain from `root_key` and compares it with the signature in constant
    /// time, as [`Macaroon::verify_signature`] does.
    pub fn verify_signature(&self, root_key: &RootKey) -> Result<(), MacaroonError> {
        if self.has_third_party_caveat() {
            refuse_third_party(self.caveats())?;
        }
        check_chain(
            root_key,
            self.identifier(),
            self.caveats(),
            self.signature(),
        )
    }
}

/// Refuses the first third-party caveat, naming its location.
fn refuse_third_party<'a>(
    mut caveats: impl Iterator<Item = CaveatRef<'a>>,
) -> Result<(), MacaroonError> {
    match caveats.find(CaveatRef::is_third_party) {
        Some(c) => Err(MacaroonError::ThirdPartyCaveat(c.location.to_owned())),
        None => Ok(()),
    }
}

/// The HMAC chain from `root_key` over the identifier and the caveats, compared with
/// `signature` in constant time. Third-party caveats are refused before this is called.
fn check_chain<'a>(
    root_key: &RootKey,
    identifier: &[u8],
    caveats: impl Iterator<Item = CaveatRef<'a>>,
    signature: &[u8; 32],
) -> Result<(), MacaroonError> {
    let mut sig = hmac(&derive_key(root_key), identifier);
    for caveat in caveats {
        sig = hmac(&sig, caveat.id);
    }
    if ct_eq_32(&sig, signature) {
        Ok(())
    } else {
        Err(MacaroonError::BadSignature)
    }
}

/// Walks the HMAC chain from `root_key` over the identifier and the caveats, handing `each` the
/// chain's state right after every caveat whose position is set in `at` (bit `i` = caveat `i`),
/// and stops after the last of them. For metering: the state after a caveat is the signature
/// of the token cut after that caveat, a bearer secret, so `each` must derive what it keeps
/// (a one-way hash) and never log the state. Run only after [`check_chain`] accepted the token.
pub(crate) fn chain_states<'a>(
    root_key: &RootKey,
    identifier: &[u8],
    caveats: impl Iterator<Item = CaveatRef<'a>>,
    at: u64,
    mut each: impl FnMut(usize, &[u8], &[u8; 32]),
) {
    if at == 0 {
        return;
    }
    let last = 63 - at.leading_zeros() as usize;
    let mut sig = zeroize::Zeroizing::new(hmac(&derive_key(root_key), identifier));
    for (i, caveat) in caveats.enumerate().take(last + 1) {
        *sig = hmac(&*sig, caveat.id);
        if at & (1 << i) != 0 {
            each(i, caveat.id, &sig);
        }
    }
}

fn push_span(buf: &mut Vec<u8>, bytes: &[u8]) -> Range<usize> {
    let start = buf.len();
    buf.extend_from_slice(bytes);
    start..buf.len()
}

/// HMAC keyed with the constant "macaroons-key-generator", computed once: every derivation
/// then starts from a clone instead of hashing the key pads again.
fn key_generator() -> HmacSha256 {
    static STATE: OnceLock<HmacSha256> = OnceLock::new();
    STATE
        .get_or_init(|| match HmacSha256::new_from_slice(KEY_GENERATOR) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
        })
        .clone()
}

fn derive_key(root_key: &RootKey) -> [u8; 32] {
    let mut mac = key_generator();
    mac.update(root_key.expose());
    mac.finalize().into_bytes().into()
}

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this constructor cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    };
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_field(out: &mut Vec<u8>, field: u8, data: &[u8]) {
    out.push(field);
    put_uvarint(out, data.len() as u64);
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const V2_STD: &str = "AgEEbHNhdAJCAACfcuoM9JU248ZseH9wUYbfmkN4CDdTrpU21ls61/zdxDMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzAAIOc2VydmljZXM9c3ZjOjAAAAYgMhGOTzBwhH01+TTSs/Czt2wCshcooHKpXoye029+Ew0=";
    const V2_URL: &str = "AgEEbHNhdAJCAACfcuoM9JU248ZseH9wUYbfmkN4CDdTrpU21ls61_zdxDMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzAAIOc2VydmljZXM9c3ZjOjAAAAYgMhGOTzBwhH01-TTSs_Czt2wCshcooHKpXoye029-Ew0=";
    const V1: &str = "MDAxMmxvY2F0aW9uIGxzYXQKMDA1MmlkZW50aWZpZXIgAACfcuoM9JU248ZseH9wUYbfmkN4CDdTrpU21ls61_zdxDMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzCjAwMTdjaWQgc2VydmljZXM9c3ZjOjAKMDAyZnNpZ25hdHVyZSAyEY5PMHCEfTX5NNKz8LO3bAKyFyigcqlejJ7Tb34TDQo=";
    const ID_HEX: &str = "00009f72ea0cf49536e3c66c787f705186df9a4378083753ae9536d65b3ad7fcddc43333333333333333333333333333333333333333333333333333333333333333";
    const SIG_HEX: &str = "32118e4f3070847d35f934d2b3f0b3b76c02b21728a072a95e8c9ed36f7e130d";

    fn vector_key() -> RootKey {
        RootKey::from_bytes([0x11; 32])
    }

    fn vector_macaroon() -> Macaroon {
        let mut m = Macaroon::new(&vector_key(), &hex::decode(ID_HEX).unwrap(), "lsat");
        m.add_first_party_caveat(b"services=svc:0").unwrap();
        m
    }

    #[test]
    fn mints_the_shared_reference_vector_byte_for_byte() {
        let m = vector_macaroon();
        assert_eq!(hex::encode(m.signature()), SIG_HEX);
        assert_eq!(m.to_base64(), V2_STD);
    }

    #[test]
    fn decodes_every_flavour_of_the_reference_vector() {
        let expected = vector_macaroon();
        for text in [
            V2_STD,
            V2_URL,
            V2_STD.trim_end_matches('='),
            V2_URL.trim_end_matches('='),
            V1,
        ] {
            let m = Macaroon::from_base64(text).unwrap();
            assert_eq!(m, expected, "{text}");
            m.verify_signature(&vector_key()).unwrap();
        }
    }

    #[test]
    fn wrong_key_or_tampering_fails_verification() {
        let m = vector_macaroon();
        assert_eq!(
            m.verify_signature(&RootKey::from_bytes([0x12; 32])),
            Err(MacaroonError::BadSignature)
        );
        let mut bytes = m.encode();
        let pos = bytes.windows(3).position(|w| w == b"svc").unwrap();
        bytes[pos] = b'x';
        let tampered = Macaroon::decode(&bytes).unwrap();
        assert_eq!(
            tampered.verify_signature(&vector_key()),
            Err(MacaroonError::BadSignature)
        );
    }

    #[test]
    fn attenuation_needs_no_root_key_and_still_verifies() {
        let mut m = Macaroon::from_base64(V2_STD).unwrap();
        m.add_first_party_caveat(b"svc_valid_until=2000000000")
            .unwrap();
        let m = Macaroon::from_base64(&m.to_base64()).unwrap();
        m.verify_signature(&vector_key()).unwrap();
        assert_eq!(m.caveats().len(), 2);
    }

    #[test]
    fn third_party_caveats_decode_but_are_refused() {
        let mut m = vector_macaroon();
        m.push_raw_caveat(b"third", Some(&[1; 40]), "https://auth.example");
        let decoded = Macaroon::decode(&m.encode()).unwrap();
        assert_eq!(decoded, m);
        assert!(matches!(
            decoded.verify_signature(&vector_key()),
            Err(MacaroonError::ThirdPartyCaveat(loc)) if loc == "https://auth.example"
        ));
    }

    #[test]
    fn structural_errors_are_typed() {
        let good = vector_macaroon().encode();
        assert!(matches!(
            Macaroon::decode(&[]),
            Err(MacaroonError::Malformed(_))
        ));
        assert!(matches!(
            Macaroon::decode(&[7]),
            Err(MacaroonError::UnsupportedFormat(7))
        ));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(
            Macaroon::decode(&trailing),
            Err(MacaroonError::Malformed(_))
        ));
        for cut in 0..good.len() {
            assert!(Macaroon::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(matches!(
            Macaroon::from_base64("AgEE+b_"),
            Err(MacaroonError::Base64(_))
        ));
    }

    #[test]
    fn caveat_count_is_bounded_both_ways() {
        let mut m = vector_macaroon();
        for i in 1..MAX_CAVEATS {
            m.add_first_party_caveat(format!("c{i}=1").as_bytes())
                .unwrap();
        }
        assert!(matches!(
            m.add_first_party_caveat(b"one=more"),
            Err(MacaroonError::TooLarge(_))
        ));
        let mut bytes = m.encode();
        // Splice one more caveat section in before the list terminator.
        let sig_start = bytes.len() - 34;
        let extra = [FIELD_IDENTIFIER, 3, b'x', b'=', b'1', FIELD_EOS];
        bytes.splice(sig_start - 1..sig_start - 1, extra);
        assert!(matches!(
            Macaroon::decode(&bytes),
            Err(MacaroonError::TooLarge(_))
        ));
    }

    #[test]
    fn debug_redacts_the_signature() {
        let shown = format!("{:?}", vector_macaroon());
        assert!(!shown.contains(SIG_HEX));
        assert!(shown.contains("redacted"));
    }

    fn libmacaroons_vectors() -> serde_json::Value {
        serde_json::from_str(include_str!("../testdata/libmacaroons.json")).unwrap()
    }

    #[test]
    fn libmacaroons_published_signatures() {
        let doc = libmacaroons_vectors();
        let vectors = doc["vectors"].as_array().unwrap();
        assert!(!vectors.is_empty());
        for v in vectors {
            let key_bytes = hex::decode(v["root_key_hex"].as_str().unwrap()).unwrap();
            // Published vectors use arbitrary-length keys; our RootKey is 32 bytes, so the
            // chain is checked through the same internal functions the RootKey path uses.
            let mut sig = hmac(
                &hmac(KEY_GENERATOR, &key_bytes),
                v["identifier"].as_str().unwrap().as_bytes(),
            );
            let sigs = v["signatures_hex"].as_array().unwrap();
            assert_eq!(
                hex::encode(sig),
                sigs[0].as_str().unwrap(),
                "{}",
                v["source"]
            );
            for (i, c) in v["caveats"].as_array().unwrap().iter().enumerate() {
                sig = hmac(&sig, c.as_str().unwrap().as_bytes());
                assert_eq!(
                    hex::encode(sig),
                    sigs[i + 1].as_str().unwrap(),
                    "{}",
                    v["source"]
                );
            }
        }
    }

    /// The chain for an arbitrary-length key (published vectors do not use 32-byte keys).
    fn chain_matches(m: &Macaroon, key: &[u8]) -> bool {
        let mut sig = hmac(&hmac(KEY_GENERATOR, key), m.identifier());
        for c in m.caveats() {
            sig = hmac(&sig, c.id);
        }
        sig == *m.signature()
    }

    #[test]
    fn libmacaroons_serialized_vectors_decode_reencode_and_verify() {
        let doc = libmacaroons_vectors();
        let mut checked = 0;
        for (list, b64_field) in [("serialized", "v2_b64"), ("serialized_v1", "v1_b64")] {
            for v in doc[list].as_array().unwrap() {
                let name = v["name"].as_str().unwrap();
                let m = Macaroon::from_base64(v[b64_field].as_str().unwrap())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                let e = &v["expect"];
                assert_eq!(m.location(), e["location"].as_str().unwrap(), "{name}");
                assert_eq!(
                    hex::encode(m.identifier()),
                    e["identifier_hex"].as_str().unwrap(),
                    "{name}"
                );
                let ids: Vec<String> = m
                    .caveats()
                    .map(|c| String::from_utf8_lossy(c.id).into_owned())
                    .collect();
                let want: Vec<String> = serde_json::from_value(e["caveats"].clone()).unwrap();
                assert_eq!(ids, want, "{name}");
                assert_eq!(
                    hex::encode(m.signature()),
                    e["signature_hex"].as_str().unwrap(),
                    "{name}"
                );
                if e["reencodes_identically"].as_bool() == Some(true) {
                    assert_eq!(
                        Some(hex::encode(m.encode()).as_str()),
                        v["v2_hex"].as_str(),
                        "{name}"
                    );
                }
                let third_party = m.caveats().any(|c| c.is_third_party());
                for check in v["verify"].as_array().into_iter().flatten() {
                    let key = hex::decode(check["root_key_hex"].as_str().unwrap()).unwrap();
                    let allowed: Vec<String> =
                        serde_json::from_value(check["allowed_caveats"].clone())
                            .unwrap_or_default();
                    let all_caveats_allowed = want.iter().all(|c| allowed.contains(c));
                    if !third_party && all_caveats_allowed {
                        assert_eq!(
                            chain_matches(&m, &key),
                            check["valid"].as_bool().unwrap(),
                            "{name}"
                        );
                        checked += 1;
                    }
                }
                if third_party {
                    assert!(matches!(
                        m.verify_signature(&RootKey::from_bytes([0; 32])),
                        Err(MacaroonError::ThirdPartyCaveat(_))
                    ));
                }
            }
        }
        assert!(checked >= 6, "only {checked} signature checks ran");
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Macaroon::decode(&bytes);
        }

        #[test]
        fn decode_never_panics_near_valid(flips in proptest::collection::vec((0usize..200, any::<u8>()), 1..6)) {
            let mut bytes = vector_macaroon().encode();
            for (pos, val) in flips {
                let len = bytes.len();
                bytes[pos % len] = val;
            }
            if let Ok(m) = Macaroon::decode(&bytes) {
                prop_assert_eq!(Macaroon::decode(&m.encode()), Ok(m));
            }
        }

        #[test]
        fn from_base64_never_panics(s in ".{0,300}") {
            let _ = Macaroon::from_base64(&s);
        }

        #[test]
        fn mint_encode_decode_round_trip(
            key in any::<[u8; 32]>(),
            id in proptest::collection::vec(any::<u8>(), 0..100),
            loc in "[a-z]{0,20}",
            caveats in proptest::collection::vec("[a-z_]{1,10}=[ -~]{0,30}", 0..8),
        ) {
            let key = RootKey::from_bytes(key);
            let mut m = Macaroon::new(&key, &id, &loc);
            for c in &caveats {
                m.add_first_party_caveat(c.as_bytes()).unwrap();
            }
            let back = Macaroon::from_base64(&m.to_base64()).unwrap();
            prop_assert_eq!(&back, &m);
            prop_assert!(back.verify_signature(&key).is_ok());
        }
    }
}
