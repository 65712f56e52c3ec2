//! The L402 macaroon identifier: `u16 big-endian version (0) ‖ payment_hash[32] ‖ token_id[32]`.
//!
//! This is the layout of Aperture's `l402/identifier.go` and of the L402 macaroon spec. Only
//! version 0 exists; any other version is refused rather than guessed at.

use std::fmt;

use serde::Serialize;

/// sha256 of a payment preimage; also the BOLT11 invoice's payment hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PaymentHash(pub [u8; 32]);

impl PaymentHash {
    /// Constant-time equality, for comparing a presented preimage's hash with the token's.
    pub fn ct_eq(&self, other: &PaymentHash) -> bool {
        super::secret::ct_eq_32(&self.0, &other.0)
    }
}

/// The random 32-byte user identifier: one per token, the key of its root key in the store.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(pub [u8; 32]);

/// The hasher of the maps keyed by [`TokenId`] or [`PaymentHash`] on the request path (the
/// gate's root-key cache, the settled set). Both are 32 uniformly random bytes (a token id is
/// drawn by the mint, a payment hash is a SHA-256 output), so their first eight bytes, mixed
/// once, are already a good hash: SipHash, the standard maps' default, costs about 40 ns a
/// lookup for nothing here. Its protection against chosen keys is not needed either: only the
/// gateway inserts keys (ids it minted or confirmed in its store), and a lookup for an id an
/// attacker chose probes the table like any other.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomIdHasher(u64);

impl std::hash::Hasher for RandomIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        for (w, b) in word.iter_mut().zip(bytes) {
            *w = *b;
        }
        // FxHash's step: the multiplication spreads the word into the high bits, which the
        // table's control bytes are taken from.
        self.0 =
            (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    /// The length prefix of an array, the same for every key.
    fn write_usize(&mut self, _len: usize) {}

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`RandomIdHasher`]s: `HashMap<TokenId, V, IdHashing>`.
pub type IdHashing = std::hash::BuildHasherDefault<RandomIdHasher>;

impl TokenId {
    /// Draws a fresh token id from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, IdentifierError> {
        parse_hex32(s).map(Self).ok_or(IdentifierError::BadHex)
    }
}

impl PaymentHash {
    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, IdentifierError> {
        parse_hex32(s).map(Self).ok_or(IdentifierError::BadHex)
    }
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

macro_rules! hex_display {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // On every paid request's path (the token id header and receipt): encoded on
                // the stack, not character by character into a new string.
                let mut buf = [0u8; 64];
                hex::encode_to_slice(self.0, &mut buf).map_err(|_| fmt::Error)?;
                f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), hex::encode(self.0))
            }
        }
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex::encode(self.0))
            }
        }
    };
}
hex_display!(PaymentHash);
hex_display!(TokenId);

/// A decoded version-0 identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identifier {
    /// sha256 of the preimage that unlocks this token.
    pub payment_hash: PaymentHash,
    /// The per-token random id; the root key is stored under it.
    pub token_id: TokenId,
}

/// Why bytes are not a usable identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// Fewer than the two version bytes.
    #[error("macaroon identifier is {0} bytes, too short to hold a version")]
    TooShort(usize),
    /// A version this implementation does not know; refusing beats guessing its layout.
    #[error("macaroon identifier version {0} is not supported (only version 0 is)")]
    UnknownVersion(u16),
    /// Version 0 with the wrong total length.
    #[error("version-0 macaroon identifier must be 66 bytes, got {0}")]
    BadLength(usize),
    /// Not 64 hex characters.
    #[error("expected 64 hex characters")]
    BadHex,
}

impl Identifier {
    /// The only version defined (Aperture's `LatestVersion`).
    pub const VERSION: u16 = 0;
    /// Encoded length of a version-0 identifier.
    pub const LEN: usize = 2 + 32 + 32;

    /// A fresh identifier for an invoice's payment hash, with a random token id.
    pub fn new(payment_hash: PaymentHash, token_id: TokenId) -> Self {
        Self {
            payment_hash,
            token_id,
        }
    }

    /// The 66 encoded bytes.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..2].copy_from_slice(&Self::VERSION.to_be_bytes());
        out[2..34].copy_from_slice(&self.payment_hash.0);
        out[34..].copy_from_slice(&self.token_id.0);
        out
    }

    /// Decodes and checks the version and length.
    pub fn decode(bytes: &[u8]) -> Result<Self, IdentifierError> {
        let (version, rest) = match bytes {
            [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
            _ => return Err(IdentifierError::TooShort(bytes.len())),
        };
        if version != Self::VERSION {
            return Err(IdentifierError::UnknownVersion(version));
        }
        if bytes.len() != Self::LEN {
            return Err(IdentifierError::BadLength(bytes.len()));
        }
        let mut payment_hash = [0u8; 32];
        let mut token_id = [0u8; 32];
        payment_hash.copy_from_slice(&rest[..32]);
        token_id.copy_from_slice(&rest[32..64]);
        Ok(Self {
            payment_hash: PaymentHash(payment_hash),
            token_id: TokenId(token_id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VECTOR: &str = "00009f72ea0cf49536e3c66c787f705186df9a4378083753ae9536d65b3ad7fcddc43333333333333333333333333333333333333333333333333333333333333333";

    #[test]
    fn the_id_hasher_keys_maps_of_random_ids() {
        use std::hash::BuildHasher;
        let ids: Vec<TokenId> = (0..10_000).map(|_| TokenId::generate().unwrap()).collect();
        let map: std::collections::HashMap<TokenId, usize, IdHashing> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(map.get(id), Some(&i));
        }
        assert!(!map.contains_key(&TokenId([0; 32])));
        // Equal ids hash alike; ids apart in their first bytes do not collide.
        let h = IdHashing::default();
        assert_eq!(h.hash_one(ids[0]), h.hash_one(ids[0]));
        let distinct: std::collections::HashSet<u64> =
            ids.iter().map(|id| h.hash_one(id)).collect();
        assert_eq!(distinct.len(), ids.len());
    }

    #[test]
    fn reference_vector_round_trips() {
        let bytes = hex::decode(VECTOR).unwrap();
        let id = Identifier::decode(&bytes).unwrap();
        assert_eq!(
            id.payment_hash.to_string(),
            "9f72ea0cf49536e3c66c787f705186df9a4378083753ae9536d65b3ad7fcddc4"
        );
        assert_eq!(id.token_id, TokenId([0x33; 32]));
        assert_eq!(id.encode().as_slice(), bytes.as_slice());
    }

    #[test]
    fn other_versions_and_lengths_are_refused() {
        let mut bytes = hex::decode(VECTOR).unwrap();
        bytes[1] = 1;
        assert_eq!(
            Identifier::decode(&bytes),
            Err(IdentifierError::UnknownVersion(1))
        );
        assert_eq!(Identifier::decode(&[0]), Err(IdentifierError::TooShort(1)));
        assert_eq!(
            Identifier::decode(&[0, 0, 1]),
            Err(IdentifierError::BadLength(3))
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Identifier::decode(&bytes);
        }

        #[test]
        fn encode_decode_round_trip(h in any::<[u8; 32]>(), t in any::<[u8; 32]>()) {
            let id = Identifier::new(PaymentHash(h), TokenId(t));
            prop_assert_eq!(Identifier::decode(&id.encode()), Ok(id));
        }
    }
}
