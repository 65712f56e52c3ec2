//! Decoding untrusted bytes into a macaroon's parts: V2 binary sections and legacy V1 text
//! packets. Every read is bounds-checked and every field bounded; nothing here panics. The
//! parts are ranges into the decoded buffer, which the [`super::Macaroon`] keeps.

use std::ops::Range;

use super::{
    CaveatSpan, FIELD_EOS, FIELD_IDENTIFIER, FIELD_LOCATION, FIELD_SIGNATURE,
    FIELD_VERIFICATION_ID, MAX_CAVEAT_LEN, MAX_CAVEATS, MAX_IDENTIFIER_LEN, MAX_LOCATION_LEN,
    MacaroonError,
};

/// What a decoder found, as ranges into the buffer it was given.
pub(super) struct Parts {
    pub(super) location: Range<usize>,
    pub(super) identifier: Range<usize>,
    pub(super) caveats: Vec<CaveatSpan>,
    pub(super) signature: [u8; 32],
}

/// The range `part` occupies inside `whole` (`part` must be a sub-slice of `whole`).
fn span_of(whole: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
    start..start + part.len()
}

/// A cursor over untrusted bytes; every read is bounds-checked.
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
    /// No section tapgate accepts has more than three fields, so they are held inline.
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
            let slot = section
                .fields
                .get_mut(section.len)
                .ok_or(MacaroonError::Malformed("too many fields in a section"))?;
            *slot = (field, data);
            section.len += 1;
        }
    }
}

/// Up to three `(field type, data)` pairs of one section.
#[derive(Default)]
struct Section<'a> {
    fields: [(u8, &'a [u8]); 3],
    len: usize,
}

impl<'a> Section<'a> {
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn iter(&self) -> impl Iterator<Item = (u8, &'a [u8])> + '_ {
        self.fields[..self.len].iter().copied()
    }
}

/// Checks a location's bounds and encoding, and returns its range in `whole`.
fn location_span(whole: &[u8], bytes: &[u8]) -> Result<Range<usize>, MacaroonError> {
    if bytes.len() > MAX_LOCATION_LEN {
        return Err(MacaroonError::TooLarge("location too long"));
    }
    std::str::from_utf8(bytes).map_err(|_| MacaroonError::Malformed("location is not UTF-8"))?;
    Ok(span_of(whole, bytes))
}

/// V2 binary; `buf[0]` is the version byte.
pub(super) fn decode_v2(buf: &[u8]) -> Result<Parts, MacaroonError> {
    let mut r = Reader { data: &buf[1..] };
    let mut location = 0..0;
    let mut identifier = None;
    for (field, value) in r.section()?.iter() {
        match field {
            FIELD_LOCATION => location = location_span(buf, value)?,
            FIELD_IDENTIFIER => identifier = Some(value),
            _ => {
                return Err(MacaroonError::Malformed(
                    "unexpected field in the header section",
                ));
            }
        }
    }
    let identifier = identifier.ok_or(MacaroonError::Malformed("missing identifier"))?;
    if identifier.len() > MAX_IDENTIFIER_LEN {
        return Err(MacaroonError::TooLarge("identifier too long"));
    }

    let mut caveats = Vec::with_capacity(4);
    loop {
        let section = r.section()?;
        if section.is_empty() {
            break;
        }
        if caveats.len() >= MAX_CAVEATS {
            return Err(MacaroonError::TooLarge("too many caveats"));
        }
        let mut id: Option<&[u8]> = None;
        let mut verification_id = None;
        let mut cav_location = 0..0;
        for (field, value) in section.iter() {
            match field {
                FIELD_LOCATION => cav_location = location_span(buf, value)?,
                FIELD_IDENTIFIER => id = Some(value),
                FIELD_VERIFICATION_ID => verification_id = Some(span_of(buf, value)),
                _ => return Err(MacaroonError::Malformed("unexpected field in a caveat")),
            }
        }
        let id = id
            .filter(|id| !id.is_empty())
            .ok_or(MacaroonError::Malformed("caveat without an identifier"))?;
        if id.len() > MAX_CAVEAT_LEN {
            return Err(MacaroonError::TooLarge("caveat too long"));
        }
        if verification_id.is_none() && !cav_location.is_empty() {
            return Err(MacaroonError::Malformed(
                "first-party caveat with a location",
            ));
        }
        caveats.push(CaveatSpan {
            id: span_of(buf, id),
            verification_id,
            location: cav_location,
        });
    }

    if r.byte()? != FIELD_SIGNATURE {
        return Err(MacaroonError::Malformed("missing signature"));
    }
    let len = r.uvarint()?;
    let signature: [u8; 32] = r
        .take(len)?
        .try_into()
        .map_err(|_| MacaroonError::Malformed("signature is not 32 bytes"))?;
    if r.peek().is_some() {
        return Err(MacaroonError::Malformed(
            "trailing bytes after the signature",
        ));
    }
    Ok(Parts {
        location,
        identifier: span_of(buf, identifier),
        caveats,
        signature,
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
