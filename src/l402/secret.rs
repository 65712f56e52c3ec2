//! Secret byte strings: root keys and preimages.
//!
//! Both are zeroized when dropped, print as `<redacted>` in `Debug`, and are compared in
//! constant time. Nothing in this module logs.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// Constant-time equality of two 32-byte secrets (signatures, payment hashes), compared as
/// four 64-bit words with `subtle`: the same guarantee as comparing the bytes one by one, at a
/// fraction of the cost (it runs twice per request).
pub(crate) fn ct_eq_32(a: &[u8; 32], b: &[u8; 32]) -> bool {
    fn words(x: &[u8; 32]) -> [u64; 4] {
        let mut w = [0u64; 4];
        for (word, chunk) in w.iter_mut().zip(x.chunks_exact(8)) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            *word = u64::from_le_bytes(bytes);
        }
        w
    }
    words(a).ct_eq(&words(b)).into()
}

/// Constant-time equality of two byte strings of any length (a length difference is not
/// secret and returns at once): the bytes are folded eight at a time into one word of
/// differences with no branch on their values, and only that word is compared through
/// `subtle`. Comparing a long secret byte by byte through `subtle` costs about a nanosecond
/// a byte, for the barrier each byte passes.
pub(crate) fn ct_eq_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u64;
    let (wa, wb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (wa.remainder(), wb.remainder());
    for (x, y) in wa.zip(wb) {
        let mut xb = [0u8; 8];
        let mut yb = [0u8; 8];
        xb.copy_from_slice(x);
        yb.copy_from_slice(y);
        diff |= u64::from_le_bytes(xb) ^ u64::from_le_bytes(yb);
    }
    for (x, y) in ra.iter().zip(rb) {
        diff |= u64::from(x ^ y);
    }
    diff.ct_eq(&0).into()
}

/// The 32-byte secret a macaroon's HMAC chain starts from. One per token.
#[derive(Clone)]
pub struct RootKey([u8; 32]);

impl RootKey {
    /// Size of a root key in bytes (Aperture's `SecretSize`).
    pub const LEN: usize = 32;

    /// Wraps bytes that already are a root key (from a store or a test vector).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Draws a fresh root key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// The secret bytes. Callers must not log or persist them anywhere but the key store.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Drop for RootKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey(<redacted>)")
    }
}

impl PartialEq for RootKey {
    fn eq(&self, other: &Self) -> bool {
        ct_eq_32(&self.0, &other.0)
    }
}

impl Eq for RootKey {}

/// A payment preimage: the proof of payment a client presents with its macaroon.
#[derive(Clone)]
pub struct Preimage([u8; 32]);

impl Preimage {
    /// Wraps 32 preimage bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// The payment hash this preimage unlocks: `sha256(preimage)`.
    pub fn payment_hash(&self) -> super::PaymentHash {
        use sha2::Digest;
        super::PaymentHash(sha2::Sha256::digest(self.0).into())
    }
}

impl Drop for Preimage {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Preimage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Preimage(<redacted>)")
    }
}

impl PartialEq for Preimage {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Preimage {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secret_bytes() {
        let key = RootKey::from_bytes([0xab; 32]);
        let pre = Preimage::from_bytes([0xcd; 32]);
        let shown = format!("{key:?} {pre:?}");
        assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
        assert!(!shown.contains("cd") && !shown.contains("205"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn ct_eq_32_is_equality() {
        let a = [7u8; 32];
        assert!(ct_eq_32(&a, &a));
        for i in 0..32 {
            for bit in 0..8 {
                let mut b = a;
                b[i] ^= 1 << bit;
                assert!(!ct_eq_32(&a, &b));
            }
        }
    }

    #[test]
    fn ct_eq_bytes_is_equality_at_every_length_and_position() {
        for len in 0..40usize {
            let a: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
            assert!(ct_eq_bytes(&a, &a.clone()));
            for i in 0..len {
                for bit in 0..8 {
                    let mut b = a.clone();
                    b[i] ^= 1 << bit;
                    assert!(!ct_eq_bytes(&a, &b), "len {len}, byte {i}, bit {bit}");
                }
            }
            let mut longer = a.clone();
            longer.push(0);
            assert!(!ct_eq_bytes(&a, &longer));
        }
    }

    #[test]
    fn generated_keys_differ() {
        let a = RootKey::generate().unwrap();
        let b = RootKey::generate().unwrap();
        assert_ne!(a, b);
        assert_ne!(a.expose(), &[0u8; 32]);
    }

    #[test]
    fn preimage_hash_matches_sha256() {
        // sha256(0x22 * 32) from the shared reference vectors.
        let pre = Preimage::from_bytes([0x22; 32]);
        assert_eq!(
            hex::encode(pre.payment_hash().0),
            "9f72ea0cf49536e3c66c787f705186df9a4378083753ae9536d65b3ad7fcddc4"
        );
    }
}
