//! Decoding untrusted bytes into a macaroon's parts: V2 binary sections and legacy V1 text
//! packets. Every read is bounds-checked and every field bounded; nothing here panics.
//!
//! V2 is parsed once, in place, into a [`MacaroonRef`]: borrowed slices and no allocation,
//! which is what the request path verifies. The owned [`super::Macaroon`] keeps the decoded
//! buffer and ranges into it, taken from that same borrowed parse.

use std::fmt;
use std::ops::Range;

use super::{
    CaveatRef, CaveatSpan, FIELD_EOS, FIELD_IDENTIFIER, FIELD_LOCATION, FIELD_SIGNATURE,
    FIELD_VERIFICATION_ID, MAX_CAVEAT_LEN, MAX_CAVEATS, MAX_IDENTIFIER_LEN, MAX_LOCATION_LEN,
    MAX_MACAROON_LEN, MacaroonError, VERSION_2,
};

/// What a decoder found, as ranges into the buffer it was given.
pub(super) struct Parts {
    pub(super) location: Range<usize>,
    pub(super) identifier: Range<usize>,
    pub(super) caveats: Vec<CaveatSpan>,
    pub(super) signature: [u8; 32],
}

/// The range `part` occupies inside `whole` (`part` must be a sub-slice of `whole`, or empty).
fn span_of(whole: &[u8], part: &[u8]) -> Range<usize> {
    if part.is_empty() {
        return 0..0;
    }
    let start = (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
    start..start + part.len()
}

/// A cursor over untrusted bytes; every read is bounds-checked.
#[derive(Clone)]
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, MacaroonError> {
        let (&b, rest) = self
            .data
            .split_first()
            .ok_or(MacaroonError::Malformed("unexpected end of data"))?;
        self.data = rest;
        Ok(b)
    }

    fn peek(&self) -> Option<u8> {
        self.data.first().copied()
    }

    fn uvarint(&mut self) -> Result<u64, MacaroonError> {
        // Fields under 128 bytes, which is nearly all of them, have a one-byte length.
        if let Some((&b, rest)) = self.data.split_first()
            && b < 0x80
        {
            self.data = rest;
            return Ok(u64::from(b));
        }
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(MacaroonError::Malformed("length varint overflows"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(MacaroonError::Malformed("length varint too long"))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], MacaroonError> {
        let n = usize::try_from(n).map_err(|_| MacaroonError::Malformed("length overflows"))?;
        if n > self.data.len() {
            return Err(MacaroonError::Malformed("field length exceeds the data"));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    /// Reads one section: `(type, len, data)*` in strictly ascending type order, then EOS.
    /// No section tapgate accepts has more than three fields. The fields land in named
    /// slots, not an array: this runs once per section on every request, and a small struct
    /// of slots stays in registers where an array of pairs made a round trip through memory.
    #[inline(always)]
    fn section(&mut self) -> Result<Section<'a>, MacaroonError> {
        let mut section = Section::default();
        let mut last = FIELD_EOS;
        loop {
            let field = self.byte()?;
            if field == FIELD_EOS {
                return Ok(section);
            }
            if field <= last {
                return Err(MacaroonError::Malformed("fields out of order or repeated"));
            }
            last = field;
            let len = self.uvarint()?;
            let data = self.take(len)?;
            if section.len == 3 {
                return Err(MacaroonError::Malformed("too many fields in a section"));
            }
            section.len += 1;
            match field {
                FIELD_LOCATION => section.location = Some(data),
                FIELD_IDENTIFIER => section.identifier = Some(data),
                FIELD_VERIFICATION_ID => section.verification_id = Some(data),
                _ => section.unexpected = true,
            }
        }
    }
}

/// The caveat a non-empty section holds, checked.
fn caveat_of<'a>(section: &Section<'a>) -> Result<CaveatRef<'a>, MacaroonError> {
    // Types ascend within a section and the location's is the lowest, so checking it first
    // and the unexpected fields next refuses in the order the fields came.
    let location = section.location.map_or(Ok(""), checked_location)?;
    if section.unexpected {
        return Err(MacaroonError::Malformed("unexpected field in a caveat"));
    }
    let id = section
        .identifier
        .filter(|id| !id.is_empty())
        .ok_or(MacaroonError::Malformed("caveat without an identifier"))?;
    if id.len() > MAX_CAVEAT_LEN {
        return Err(MacaroonError::TooLarge("caveat too long"));
    }
    if section.verification_id.is_none() && !location.is_empty() {
        return Err(MacaroonError::Malformed(
            "first-party caveat with a location",
        ));
    }
    Ok(CaveatRef {
        id,
        verification_id: section.verification_id,
        location,
    })
}

/// The fields of one section, by type.
#[derive(Default)]
struct Section<'a> {
    location: Option<&'a [u8]>,
    identifier: Option<&'a [u8]>,
    verification_id: Option<&'a [u8]>,
    /// A field of another type was present.
    unexpected: bool,
    len: u8,
}

impl Section<'_> {
    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Checks a location's bounds and encoding.
fn checked_location(bytes: &[u8]) -> Result<&str, MacaroonError> {
    if bytes.len() > MAX_LOCATION_LEN {
        return Err(MacaroonError::TooLarge("location too long"));
    }
    std::str::from_utf8(bytes).map_err(|_| MacaroonError::Malformed("location is not UTF-8"))
}

/// Checks a location's bounds and encoding, and returns its range in `whole`.
fn location_span(whole: &[u8], bytes: &[u8]) -> Result<Range<usize>, MacaroonError> {
    checked_location(bytes)?;
    Ok(span_of(whole, bytes))
}

/// A V2 binary macaroon read in place: every field borrowed from the bytes it was decoded
/// from, nothing allocated. This is what the request path verifies; [`super::Macaroon`] is
/// for keeping, building and attenuating tokens.
///
/// Decoding checks everything [`super::Macaroon::decode`] checks for V2 input (and refuses
/// the legacy V1 text format, which only the owned decoder reads). The signature is a bearer
/// secret, so `Debug` redacts it.
#[derive(Clone, Copy)]
pub struct MacaroonRef<'a> {
    location: &'a str,
    identifier: &'a [u8],
    /// The caveat sections, already checked, without the empty section ending the list.
    caveats: &'a [u8],
    /// The same bytes as text, if they are UTF-8 as a whole: then so is every caveat
    /// identifier, each a slice of it (an identifier is preceded by its length's last byte and
    /// followed by a field type or the end of its section, all ASCII, so no character crosses
    /// its ends).
    caveats_text: Option<&'a str>,
    caveat_count: usize,
    third_party: bool,
    signature: &'a [u8; 32],
}

impl fmt::Debug for MacaroonRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MacaroonRef")
            .field("location", &self.location)
            .field("identifier", &hex::encode(self.identifier))
            .field("caveats", &self.caveats().collect::<Vec<_>>())
            .field("signature", &"<redacted>")
            .finish()
    }
}

impl<'a> MacaroonRef<'a> {
    /// Reads a V2 binary macaroon in place. Anything else, the legacy V1 text format
    /// included, is refused.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, MacaroonError> {
        if bytes.len() > MAX_MACAROON_LEN {
            return Err(MacaroonError::TooLarge("encoded macaroon too long"));
        }
        match bytes.split_first() {
            None => Err(MacaroonError::Malformed("empty input")),
            Some((&VERSION_2, rest)) => Self::decode_v2_body(rest),
            Some((&b, _)) => Err(MacaroonError::UnsupportedFormat(b)),
        }
    }

    /// V2 binary after the version byte.
    fn decode_v2_body(body: &'a [u8]) -> Result<Self, MacaroonError> {
        let mut r = Reader { data: body };
        let header = r.section()?;
        let location = header.location.map_or(Ok(""), checked_location)?;
        if header.unexpected || header.verification_id.is_some() {
            return Err(MacaroonError::Malformed(
                "unexpected field in the header section",
            ));
        }
        let identifier = header
            .identifier
            .ok_or(MacaroonError::Malformed("missing identifier"))?;
        if identifier.len() > MAX_IDENTIFIER_LEN {
            return Err(MacaroonError::TooLarge("identifier too long"));
        }

        let sections = r.data;
        let mut caveat_count = 0;
        let mut third_party = false;
        loop {
            let before = r.data;
            let section = r.section()?;
            if section.is_empty() {
                // `before` starts with the list's terminator; the sections end there.
                let len = sections.len() - before.len();
                let caveats = sections.get(..len).unwrap_or_default();
                let fields = Self {
                    location,
                    identifier,
                    caveats,
                    caveats_text: std::str::from_utf8(caveats).ok(),
                    caveat_count,
                    third_party,
                    signature: &[0; 32],
                };
                return fields.with_signature(r);
            }
            if caveat_count >= MAX_CAVEATS {
                return Err(MacaroonError::TooLarge("too many caveats"));
            }
            third_party |= caveat_of(&section)?.is_third_party();
            caveat_count += 1;
        }
    }

    /// Reads the signature section, which must end the bytes.
    fn with_signature(self, mut r: Reader<'a>) -> Result<Self, MacaroonError> {
        if r.byte()? != FIELD_SIGNATURE {
            return Err(MacaroonError::Malformed("missing signature"));
        }
        let len = r.uvarint()?;
        let signature: &[u8; 32] = r
            .take(len)?
            .try_into()
            .map_err(|_| MacaroonError::Malformed("signature is not 32 bytes"))?;
        if r.peek().is_some() {
            return Err(MacaroonError::Malformed(
                "trailing bytes after the signature",
            ));
        }
        Ok(Self { signature, ..self })
    }

    /// The identifier bytes (for L402, an [`crate::l402::Identifier`]).
    pub fn identifier(&self) -> &'a [u8] {
        self.identifier
    }

    /// The location hint.
    pub fn location(&self) -> &'a str {
        self.location
    }

    /// The caveats in order, read from the checked sections.
    pub fn caveats(&self) -> Caveats<'a> {
        Caveats {
            r: Reader { data: self.caveats },
            left: self.caveat_count,
        }
    }

    /// Each caveat identifier as text, or `None` where it is not UTF-8. The UTF-8 check is made
    /// once over all the caveats, not once per caveat, where it can be.
    pub fn caveat_texts(&self) -> impl Iterator<Item = Option<&'a str>> + use<'a> {
        let (all, text) = (self.caveats, self.caveats_text);
        self.caveats().map(move |c| match text {
            Some(text) => text
                .get(span_of(all, c.id))
                .or_else(|| std::str::from_utf8(c.id).ok()),
            None => std::str::from_utf8(c.id).ok(),
        })
    }

    /// The signature. A bearer secret: never log it.
    pub fn signature(&self) -> &'a [u8; 32] {
        self.signature
    }

    /// True if a caveat is a third-party one (known from decoding, without a second pass).
    pub fn has_third_party_caveat(&self) -> bool {
        self.third_party
    }
}

/// The caveats of a [`MacaroonRef`], in order.
#[derive(Clone)]
pub struct Caveats<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for Caveats<'a> {
    type Item = CaveatRef<'a>;

    fn next(&mut self) -> Option<CaveatRef<'a>> {
        // The sections were checked when the macaroon was decoded (fields known, in order,
        // bounded, locations UTF-8, identifiers present), so they are only read here; a read
        // that failed would only end the iteration early.
        let mut c = CaveatRef {
            id: &[],
            verification_id: None,
            location: "",
        };
        loop {
            let field = self.r.byte().ok()?;
            if field == FIELD_EOS {
                self.left = self.left.saturating_sub(1);
                return Some(c);
            }
            let len = self.r.uvarint().ok()?;
            let value = self.r.take(len).ok()?;
            match field {
                FIELD_IDENTIFIER => c.id = value,
                FIELD_VERIFICATION_ID => c.verification_id = Some(value),
                _ => c.location = std::str::from_utf8(value).unwrap_or_default(),
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Caveats<'_> {}

/// V2 binary; `buf[0]` is the version byte.
pub(super) fn decode_v2(buf: &[u8]) -> Result<Parts, MacaroonError> {
    let m = MacaroonRef::decode(buf)?;
    Ok(Parts {
        location: span_of(buf, m.location.as_bytes()),
        identifier: span_of(buf, m.identifier),
        caveats: m
            .caveats()
            .map(|c| CaveatSpan {
                id: span_of(buf, c.id),
                verification_id: c.verification_id.map(|v| span_of(buf, v)),
                location: span_of(buf, c.location.as_bytes()),
            })
            .collect(),
        signature: *m.signature,
    })
}
/// Legacy V1: newline-terminated text packets, each prefixed by a 4-hex-digit total length.
pub(super) fn decode_v1(buf: &[u8]) -> Result<Parts, MacaroonError> {
    let mut rest = buf;
    let mut packets = Vec::new();
    while !rest.is_empty() {
        let (len_hex, _) = rest
            .split_at_checked(4)
            .ok_or(MacaroonError::Malformed("truncated V1 packet header"))?;
        let len_str = std::str::from_utf8(len_hex)
            .map_err(|_| MacaroonError::Malformed("bad V1 packet length"))?;
        let len = usize::from_str_radix(len_str, 16)
            .map_err(|_| MacaroonError::Malformed("bad V1 packet length"))?;
        if len < 6 || len > rest.len() {
            return Err(MacaroonError::Malformed("bad V1 packet length"));
        }
        let (packet, tail) = rest.split_at(len);
        rest = tail;
        let body = packet[4..]
            .strip_suffix(b"\n")
            .ok_or(MacaroonError::Malformed("V1 packet not newline-terminated"))?;
        let space = body
            .iter()
            .position(|&b| b == b' ')
            .ok_or(MacaroonError::Malformed("V1 packet without a key"))?;
        packets.push((&body[..space], &body[space + 1..]));
    }

    let mut it = packets.into_iter().peekable();
    let location = match it.next() {
        Some((b"location", v)) => location_span(buf, v)?,
        _ => {
            return Err(MacaroonError::Malformed(
                "V1 macaroon must start with a location",
            ));
        }
    };
    let identifier = match it.next() {
        Some((b"identifier", v)) if v.len() <= MAX_IDENTIFIER_LEN => span_of(buf, v),
        _ => {
            return Err(MacaroonError::Malformed(
                "V1 identifier missing or too long",
            ));
        }
    };
    let mut caveats: Vec<CaveatSpan> = Vec::new();
    loop {
        match it.next() {
            Some((b"cid", v)) => {
                if caveats.len() >= MAX_CAVEATS {
                    return Err(MacaroonError::TooLarge("too many caveats"));
                }
                if v.is_empty() || v.len() > MAX_CAVEAT_LEN {
                    return Err(MacaroonError::TooLarge("caveat empty or too long"));
                }
                caveats.push(CaveatSpan {
                    id: span_of(buf, v),
                    verification_id: None,
                    location: 0..0,
                });
            }
            Some((b"vid", v)) => match caveats.last_mut() {
                Some(c) if c.verification_id.is_none() => c.verification_id = Some(span_of(buf, v)),
                _ => return Err(MacaroonError::Malformed("V1 vid without its cid")),
            },
            Some((b"cl", v)) => match caveats.last_mut() {
                Some(c) if c.verification_id.is_some() && c.location.is_empty() => {
                    c.location = location_span(buf, v)?;
                }
                _ => return Err(MacaroonError::Malformed("V1 cl without its vid")),
            },
            Some((b"signature", v)) => {
                let signature: [u8; 32] = v
                    .try_into()
                    .map_err(|_| MacaroonError::Malformed("signature is not 32 bytes"))?;
                if it.peek().is_some() {
                    return Err(MacaroonError::Malformed("packets after the V1 signature"));
                }
                return Ok(Parts {
                    location,
                    identifier,
                    caveats,
                    signature,
                });
            }
            _ => return Err(MacaroonError::Malformed("unexpected or missing V1 packet")),
        }
    }
}
