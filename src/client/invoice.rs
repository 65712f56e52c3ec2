//! The buyer's reading of a challenge's BOLT 11 invoice, with rust-lightning's maintained
//! `lightning-invoice` decoder (bech32 checksum, field layout and the payee's signature).
//!
//! This module owns turning an invoice string into what the budget needs: the amount, the
//! payment hash and when the invoice stops being payable. It does no I/O and must not decide
//! whether to pay; an invoice without an amount is read (its amount is `None`) and refused by
//! the caller, since a budget cannot bound it.

use std::str::FromStr;

use lightning_invoice::{Bolt11Invoice, Currency};

use crate::l402::PaymentHash;

/// The longest invoice decoded: lnd's `zpay32` limit (`maxInvoiceLength` in
/// lightningnetwork/lnd `zpay32/invoice.go`, v0.21.0-beta), so nothing lnd would refuse is
/// handed to the node.
pub const MAX_INVOICE_LEN: usize = 7089;

/// Why an invoice could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InvoiceError {
    /// Longer than [`MAX_INVOICE_LEN`].
    #[error(
        "the challenge's invoice is {0} characters, more than the {MAX_INVOICE_LEN} lnd accepts; nothing was paid"
    )]
    TooLong(usize),
    /// Not a valid BOLT 11 invoice (checksum, fields or signature).
    #[error(
        "the challenge's invoice is not a valid BOLT 11 invoice, so nothing was paid; report it to the server's operator"
    )]
    Invalid(#[source] lightning_invoice::ParseOrSemanticError),
}

/// What a BOLT 11 invoice says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedInvoice {
    /// The amount, msat; `None` for an invoice that lets the payer choose.
    pub amount_msat: Option<u64>,
    /// The hash whose preimage paying reveals.
    pub payment_hash: PaymentHash,
    /// Unix seconds when it was created.
    pub created_at: u64,
    /// Unix seconds after which it cannot be paid (creation plus its expiry, saturating).
    pub expires_at: u64,
    /// The network, as BOLT 11 names it (`bc`, `tb`, `bcrt`, …).
    pub network: &'static str,
}

impl DecodedInvoice {
    /// True when the invoice can no longer be paid at `now` (unix seconds).
    pub fn expired_at(&self, now: u64) -> bool {
        now >= self.expires_at
    }
}

/// Decodes and checks a BOLT 11 invoice.
pub fn decode(s: &str) -> Result<DecodedInvoice, InvoiceError> {
    if s.len() > MAX_INVOICE_LEN {
        return Err(InvoiceError::TooLong(s.len()));
    }
    let invoice = Bolt11Invoice::from_str(s).map_err(InvoiceError::Invalid)?;
    let created_at = invoice.duration_since_epoch().as_secs();
    Ok(DecodedInvoice {
        amount_msat: invoice.amount_milli_satoshis(),
        payment_hash: PaymentHash(*AsRef::<[u8; 32]>::as_ref(invoice.payment_hash())),
        created_at,
        expires_at: created_at.saturating_add(invoice.expiry_time().as_secs()),
        network: match invoice.currency() {
            Currency::Bitcoin => "bc",
            Currency::BitcoinTestnet => "tb",
            Currency::Regtest => "bcrt",
            Currency::Simnet => "sb",
            Currency::Signet => "tbs",
        },
    })
}

/// A signed regtest invoice, for tests.
#[cfg(test)]
pub(crate) fn invoice(
    amount_msat: Option<u64>,
    hash: [u8; 32],
    created: u64,
    expiry: u64,
) -> String {
    use bitcoin::hashes::{Hash, sha256};
    use bitcoin::secp256k1::{Secp256k1, SecretKey};
    use lightning_invoice::{InvoiceBuilder, PaymentSecret};
    use std::time::Duration;
    let secp = Secp256k1::new();
    let Ok(key) = SecretKey::from_slice(&[0x42; 32]) else {
        return String::new();
    };
    let b = InvoiceBuilder::new(Currency::Regtest)
        .description("tapgate".into())
        .payment_hash(sha256::Hash::from_byte_array(hash))
        .payment_secret(PaymentSecret([9; 32]))
        .duration_since_epoch(Duration::from_secs(created))
        .expiry_time(Duration::from_secs(expiry))
        .min_final_cltv_expiry_delta(80);
    let b = match amount_msat {
        Some(a) => b.amount_milli_satoshis(a),
        None => b,
    };
    b.build_signed(|m| secp.sign_ecdsa_recoverable(m, &key))
        .map(|i| i.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_amount_hash_and_expiry() {
        let s = invoice(Some(1_010_101), [7; 32], 1_767_225_600, 600);
        let d = decode(&s).unwrap();
        assert_eq!(d.amount_msat, Some(1_010_101));
        assert_eq!(d.payment_hash, PaymentHash([7; 32]));
        assert_eq!((d.created_at, d.expires_at), (1_767_225_600, 1_767_226_200));
        assert_eq!(d.network, "bcrt");
        assert!(!d.expired_at(1_767_226_199));
        assert!(d.expired_at(1_767_226_200));
        let none = decode(&invoice(None, [8; 32], 1_767_225_600, 60)).unwrap();
        assert_eq!(none.amount_msat, None);
    }

    #[test]
    fn refuses_garbage_a_broken_checksum_and_huge_strings() {
        let s = invoice(Some(1_000), [7; 32], 1_767_225_600, 600);
        let mut broken = s.clone().into_bytes();
        let last = broken.len() - 1;
        broken[last] = if broken[last] == b'q' { b'p' } else { b'q' };
        let broken = String::from_utf8(broken).unwrap();
        for bad in ["", "lnbc", "not an invoice", broken.as_str()] {
            assert!(
                matches!(decode(bad), Err(InvoiceError::Invalid(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            decode(&"l".repeat(MAX_INVOICE_LEN + 1)),
            Err(InvoiceError::TooLong(_))
        ));
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,300}") {
            let _ = decode(&s);
        }

        #[test]
        fn round_trips(amount in 1u64..2_100_000_000_000_000, hash in any::<[u8; 32]>(), expiry in 1u64..1_000_000) {
            let d = decode(&invoice(Some(amount), hash, 1_767_225_600, expiry)).unwrap();
            prop_assert_eq!(d.amount_msat, Some(amount));
            prop_assert_eq!(d.payment_hash, PaymentHash(hash));
            prop_assert_eq!(d.expires_at, 1_767_225_600 + expiry);
        }
    }
}
