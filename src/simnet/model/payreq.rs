//! The simnet's own payment-request strings.
//!
//! Shaped like BOLT 11 so they read like regtest invoices, but not BOLT 11 (no signature, no
//! tagged fields): `lnbcrt` + amount + `1` + data, where
//! * the amount is BOLT 11's human-readable amount: a number and a multiplier `m` (10⁻³ BTC),
//!   `u` (10⁻⁶), `n` (10⁻⁹) or `p` (10⁻¹²), the largest that represents the msat exactly
//!   (1,000 sat → `10u`, 1 msat → `10p`);
//! * the data is bech32's alphabet (so never a `1`) over `version ‖ payee index ‖ payment
//!   hash ‖ checksum`, the checksum being the first 4 bytes of sha256 over everything before.
//!
//! Everything else an invoice says (expiry, memo, route hints) is looked up in the model by
//! payee and hash, so decoding always goes through [`crate::simnet::model::Simnet`]. The
//! strings are ASCII alphanumeric, and unique per invoice because (payee, hash) is.

use super::types::{NodeId, PaymentHash, sha256};

const PREFIX: &str = "lnbcrt";
const ALPHABET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const VERSION: u8 = 0;
const MSAT_PER_BTC: u64 = 100_000_000_000;

/// (multiplier, msat per unit of it), largest first; `p` is handled separately (0.1 msat).
const MULTIPLIERS: [(char, u64); 3] = [('m', 100_000_000), ('u', 100_000), ('n', 100)];

/// What the string itself carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub(crate) payee: NodeId,
    pub(crate) hash: PaymentHash,
    pub(crate) amount_msat: Option<u64>,
}

fn amount_part(msat: u64) -> String {
    if msat == 0 {
        return String::new();
    }
    if msat % MSAT_PER_BTC == 0 {
        return (msat / MSAT_PER_BTC).to_string();
    }
    for (m, per) in MULTIPLIERS {
        if msat % per == 0 {
            return format!("{}{m}", msat / per);
        }
    }
    // 1 pico-BTC is 0.1 msat; u128 so the largest msat still fits.
    format!("{}p", u128::from(msat) * 10)
}

fn parse_amount(s: &str) -> Result<Option<u64>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    let (digits, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], Some(c)),
        _ => (s, None),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad amount {s:?}"));
    }
    let n: u128 = digits.parse().map_err(|_| format!("bad amount {s:?}"))?;
    let msat = match mult {
        None => n.checked_mul(u128::from(MSAT_PER_BTC)),
        Some('p') if n % 10 == 0 => Some(n / 10),
        Some('p') => return Err("sub-millisatoshi amount".into()),
        Some(c) => {
            let per = MULTIPLIERS
                .iter()
                .find(|(m, _)| *m == c)
                .map(|(_, per)| *per)
                .ok_or_else(|| format!("unknown multiplier {c:?}"))?;
            n.checked_mul(u128::from(per))
        }
    };
    msat.and_then(|m| u64::try_from(m).ok())
        .map(Some)
        .ok_or_else(|| "amount overflows".into())
}

fn to_base32(bytes: &[u8]) -> String {
    let (mut acc, mut bits, mut out) = (0u32, 0u32, String::new());
    for b in bytes {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

fn from_base32(s: &str) -> Option<Vec<u8>> {
    let (mut acc, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.bytes() {
        let v = ALPHABET.iter().position(|a| *a == c)?;
        acc = (acc << 5) | u32::try_from(v).ok()?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
        acc &= (1 << bits) - 1;
    }
    // Padding must be fewer than 5 bits, all zero.
    (bits < 5 && acc == 0).then_some(out)
}

fn checksum(hrp: &str, body: &[u8]) -> [u8; 4] {
    let h = sha256(&[hrp.as_bytes(), body]);
    [h[0], h[1], h[2], h[3]]
}

/// The payment request for the invoice `hash` on `payee` for `value_msat`.
pub(crate) fn encode(payee: NodeId, hash: &PaymentHash, value_msat: u64) -> String {
    let hrp = format!("{PREFIX}{}", amount_part(value_msat));
    let index = u8::try_from(payee.index()).unwrap_or(u8::MAX);
    let mut body = vec![VERSION, index];
    body.extend_from_slice(&hash.0);
    let sum = checksum(&hrp, &body);
    body.extend_from_slice(&sum);
    format!("{hrp}1{}", to_base32(&body))
}

/// Parses a payment request (case-insensitively, like BOLT 11). The error says what is wrong.
pub(crate) fn decode(s: &str) -> Result<Decoded, String> {
    let s = s.trim().to_ascii_lowercase();
    let sep = s.rfind('1').ok_or("no separator")?;
    let (hrp, data) = (&s[..sep], &s[sep + 1..]);
    let amount = hrp
        .strip_prefix(PREFIX)
        .ok_or("does not start with lnbcrt (a regtest invoice)")?;
    let amount_msat = parse_amount(amount)?;
    let body = from_base32(data).ok_or("bad data characters")?;
    let (payload, sum) = match body.len() {
        38 => body.split_at(34),
        _ => return Err("bad data length".into()),
    };
    if checksum(hrp, payload) != sum {
        return Err("checksum mismatch (the string was altered)".into());
    }
    if payload[0] != VERSION {
        return Err(format!("unknown version {}", payload[0]));
    }
    let payee = NodeId::from_index(payload[1]).ok_or("unknown payee")?;
    let hash = PaymentHash::from_slice(&payload[2..]).ok_or("bad payment hash")?;
    Ok(Decoded {
        payee,
        hash,
        amount_msat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn amounts_read_like_bolt11() {
        let h = PaymentHash([9; 32]);
        assert!(encode(NodeId::Merchant, &h, 1_000_000).starts_with("lnbcrt10u1"));
        assert!(encode(NodeId::Merchant, &h, 250_000_000).starts_with("lnbcrt2500u1"));
        assert!(encode(NodeId::Merchant, &h, 100_000_000).starts_with("lnbcrt1m1"));
        assert!(encode(NodeId::Merchant, &h, 1_500).starts_with("lnbcrt15n1"));
        assert!(encode(NodeId::Merchant, &h, 1).starts_with("lnbcrt10p1"));
        assert!(encode(NodeId::Merchant, &h, MSAT_PER_BTC).starts_with("lnbcrt11"));
        assert!(encode(NodeId::Merchant, &h, 0).starts_with("lnbcrt1"));
    }

    #[test]
    fn tampering_is_detected() {
        let h = PaymentHash([3; 32]);
        let s = encode(NodeId::Bob, &h, 1_000_000);
        let altered = s.replacen("lnbcrt10u", "lnbcrt20u", 1);
        assert!(decode(&altered).unwrap_err().contains("checksum"));
        assert!(decode("lnbc10u1qqqq").is_err());
        assert!(decode("lnbcrt10u1bbbb").is_err());
        assert!(decode("hello").is_err());
        assert!(decode(&s[..s.len() - 1]).is_err());
        assert_eq!(decode(&s.to_ascii_uppercase()).unwrap().hash, h);
    }

    proptest! {
        #[test]
        fn round_trips(msat in any::<u64>(), hash in any::<[u8; 32]>(), who in 0u8..4) {
            let payee = NodeId::from_index(who).unwrap();
            let s = encode(payee, &PaymentHash(hash), msat);
            prop_assert!(s.starts_with("lnbcrt"));
            prop_assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
            let d = decode(&s).unwrap();
            prop_assert_eq!(d.payee, payee);
            prop_assert_eq!(d.hash, PaymentHash(hash));
            prop_assert_eq!(d.amount_msat, (msat > 0).then_some(msat));
        }
    }
}
