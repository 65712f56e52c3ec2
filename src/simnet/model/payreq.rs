//! The simnet's payment requests: real regtest BOLT 11 invoices (`lnbcrt…`), built and read
//! with rust-lightning's `lightning-invoice` and signed with the issuing node's identity key.
//!
//! What an invoice carries follows lnd's `AddInvoice` (lightningnetwork/lnd
//! `lnrpc/invoicesrpc/addinvoice.go`, v0.21.0-beta): payment hash, payment secret (`s`),
//! amount in msat, creation timestamp, expiry (always written), a description (`d`, the memo,
//! possibly empty) or a description hash (`h`), `min_final_cltv_expiry` (`c`), the feature bits
//! var-onion and payment-secret required and basic MPP optional, and for asset invoices the
//! single hop hint tapd adds through the quote's peer with the quote's SCID alias
//! (lightninglabs/taproot-assets `rpcserver.go` `AddInvoice`, v0.8.1).
//!
//! Decoding refuses bad strings with the words of lnd's `zpay32.Decode`
//! (`zpay32/decode.go`, `zpay32/bech32.go`, v0.21.0-beta) for the checks a user meets: the
//! length, the characters, mixed case, the separator, the checksum, the `ln` prefix, the
//! network, and the signature. A checksum failure omits zpay32's "Expected …, got …" detail.

use std::time::Duration;

use bech32::primitives::decode::CheckedHrpstringError;
use bitcoin::hashes::{Hash, sha256};
use bitcoin::secp256k1::PublicKey;
use lightning_invoice::{
    Bolt11Invoice, Bolt11InvoiceDescriptionRef, Bolt11SemanticError, Currency, InvoiceBuilder,
    ParseOrSemanticError, PaymentSecret, RouteHintHop, RoutingFees,
};

use super::invoices::RouteHint;
use super::keys::NodeKeys;
use super::types::{NodeId, NodePubkey, PaymentHash};

/// zpay32's `maxInvoiceLength` (`zpay32/invoice.go`): the most characters lnd decodes.
const MAX_INVOICE_LENGTH: usize = 7089;

/// The largest invoice lnd creates: 100,000 BTC (`maxInvoiceAmt` in lightningnetwork/lnd
/// `lnrpc/invoicesrpc/addinvoice.go`, v0.21.0-beta), in msat.
pub const MAX_INVOICE_MSAT: u64 = 100_000 * 100_000_000 * 1_000;

/// How an invoice describes what it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Description {
    /// The memo, in the clear (`d`); lnd writes it even when empty.
    Memo(String),
    /// sha256 of a longer description kept elsewhere (`h`).
    Hash([u8; 32]),
}

/// What the issuing node puts into an invoice.
#[derive(Clone, Debug)]
pub(crate) struct Fields<'a> {
    pub(crate) hash: PaymentHash,
    pub(crate) payment_addr: [u8; 32],
    pub(crate) amount_msat: u64,
    pub(crate) timestamp: u64,
    pub(crate) expiry_secs: u64,
    pub(crate) description: &'a Description,
    pub(crate) cltv_delta: u32,
    pub(crate) route_hints: &'a [RouteHint],
}

/// What an invoice string says, signature checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Decoded {
    /// The key that signed it (the payee's identity key).
    pub(crate) payee: NodePubkey,
    pub(crate) hash: PaymentHash,
    pub(crate) amount_msat: Option<u64>,
    pub(crate) timestamp: u64,
    pub(crate) expiry_secs: u64,
    pub(crate) description: Description,
    pub(crate) cltv_delta: u64,
    pub(crate) payment_addr: [u8; 32],
    pub(crate) route_hints: Vec<RouteHint>,
}

/// The regtest invoice `payee` issues with `f`, signed with its key. Fails only for fields
/// BOLT 11 cannot carry (a description over 639 bytes, a fee or CLTV delta beyond the hop
/// hint's 32 or 16 bits); the error says which.
pub(crate) fn encode(keys: &NodeKeys, payee: NodeId, f: &Fields<'_>) -> Result<String, String> {
    let builder = InvoiceBuilder::new(Currency::Regtest)
        .payment_hash(sha256::Hash::from_byte_array(f.hash.0))
        .payment_secret(PaymentSecret(f.payment_addr))
        .amount_milli_satoshis(f.amount_msat)
        .duration_since_epoch(Duration::from_secs(f.timestamp))
        .expiry_time(Duration::from_secs(f.expiry_secs))
        .min_final_cltv_expiry_delta(u64::from(f.cltv_delta))
        .basic_mpp();
    let mut builder = match f.description {
        Description::Memo(memo) => builder.description(memo.clone()),
        Description::Hash(h) => builder.description_hash(sha256::Hash::from_byte_array(*h)),
    };
    for hint in f.route_hints {
        builder = builder.private_route(lightning_invoice::RouteHint(vec![hop(hint)?]));
    }
    let secret = keys.secret(payee);
    let invoice = builder
        .build_signed(|msg| keys.secp().sign_ecdsa_recoverable(msg, secret))
        .map_err(|e| format!("cannot encode the invoice: {e}"))?;
    Ok(invoice.to_string())
}

fn hop(h: &RouteHint) -> Result<RouteHintHop, String> {
    let too_large = |what: &str| format!("the hop hint's {what} does not fit BOLT 11");
    Ok(RouteHintHop {
        src_node_id: PublicKey::from_slice(&h.node.0).map_err(|_| too_large("node key"))?,
        short_channel_id: h.chan_id,
        fees: RoutingFees {
            base_msat: u32::try_from(h.fee_base_msat).map_err(|_| too_large("base fee"))?,
            proportional_millionths: u32::try_from(h.fee_ppm).map_err(|_| too_large("fee rate"))?,
        },
        cltv_expiry_delta: u16::try_from(h.cltv_expiry_delta)
            .map_err(|_| too_large("CLTV delta"))?,
        htlc_minimum_msat: None,
        htlc_maximum_msat: None,
    })
}

/// Reads a payment request as lnd on regtest does; the error is lnd's message.
pub(crate) fn decode(s: &str) -> Result<Decoded, String> {
    check_like_zpay32(s)?;
    let invoice: Bolt11Invoice = s.parse().map_err(|e| zpay32_message(&e))?;
    if invoice.currency() != Currency::Regtest {
        return Err(WRONG_NETWORK.into());
    }
    let description = match invoice.description() {
        Bolt11InvoiceDescriptionRef::Direct(d) => Description::Memo(d.to_string()),
        Bolt11InvoiceDescriptionRef::Hash(h) => Description::Hash(h.0.to_byte_array()),
    };
    let route_hints = invoice
        .route_hints()
        .iter()
        .flat_map(|r| r.0.iter())
        .map(|h| RouteHint {
            node: NodePubkey(h.src_node_id.serialize()),
            chan_id: h.short_channel_id,
            fee_base_msat: u64::from(h.fees.base_msat),
            fee_ppm: u64::from(h.fees.proportional_millionths),
            cltv_expiry_delta: u32::from(h.cltv_expiry_delta),
        })
        .collect();
    Ok(Decoded {
        payee: NodePubkey(invoice.get_payee_pub_key().serialize()),
        hash: PaymentHash(invoice.payment_hash().to_byte_array()),
        amount_msat: invoice.amount_milli_satoshis(),
        timestamp: invoice.duration_since_epoch().as_secs(),
        expiry_secs: invoice.expiry_time().as_secs(),
        description,
        cltv_delta: invoice.min_final_cltv_expiry_delta(),
        payment_addr: invoice.payment_secret().0,
        route_hints,
    })
}

/// zpay32's message for an invoice of another network, with lnd's regtest network name.
const WRONG_NETWORK: &str = "invoice not for current active network 'regtest'";

/// The checks zpay32 makes before the checksum, in its order and words
/// (`zpay32/decode.go` `Decode`, `zpay32/bech32.go` `decodeBech32`).
fn check_like_zpay32(s: &str) -> Result<(), String> {
    if s.len() > MAX_INVOICE_LENGTH {
        return Err("invoice is too large".into());
    }
    if s.len() < 8 {
        return Err(format!("invalid bech32 string length {}", s.len()));
    }
    if let Some(c) = s.chars().find(|c| !(33..=126).contains(&u32::from(*c))) {
        return Err(format!("invalid character in string: '{c}'"));
    }
    if s != s.to_ascii_lowercase() && s != s.to_ascii_uppercase() {
        return Err("string not all lowercase or all uppercase".into());
    }
    let lower = s.to_ascii_lowercase();
    let one = match lower.rfind('1') {
        Some(one) if one >= 1 && one + 7 <= s.len() => one,
        _ => return Err("invalid index of 1".into()),
    };
    // zpay32's `toBytes`: the byte's decimal value, as Go's `%v` prints a byte.
    if let Some(b) = lower[one + 1..]
        .bytes()
        .find(|b| !BECH32_CHARSET.contains(b))
    {
        return Err(format!(
            "failed converting data to bytes: invalid character not part of charset: {b}"
        ));
    }
    Ok(())
}

/// bech32's data alphabet.
const BECH32_CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// lnd's words for what `lightning-invoice` found wrong, where lnd has words for it.
fn zpay32_message(e: &ParseOrSemanticError) -> String {
    use lightning_invoice::Bolt11ParseError as P;
    match e {
        ParseOrSemanticError::ParseError(P::Bech32Error(b)) => {
            if matches!(b, CheckedHrpstringError::Checksum(_)) {
                "checksum failed. ".into()
            } else {
                format!("failed converting data to bytes: {b}")
            }
        }
        ParseOrSemanticError::ParseError(P::BadPrefix) => "prefix should be \"ln\"".into(),
        ParseOrSemanticError::ParseError(P::UnknownCurrency) => WRONG_NETWORK.into(),
        ParseOrSemanticError::ParseError(P::MalformedSignature(_))
        | ParseOrSemanticError::SemanticError(Bolt11SemanticError::InvalidSignature) => {
            "invalid invoice signature".into()
        }
        ParseOrSemanticError::ParseError(p) => p.to_string(),
        ParseOrSemanticError::SemanticError(s) => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simnet::model::types::{NetworkSecret, Rng};
    use proptest::prelude::*;

    fn keys() -> NodeKeys {
        NodeKeys::derive(&Rng::new(&NetworkSecret::from_seed(1), 0))
    }

    fn fields<'a>(desc: &'a Description, hints: &'a [RouteHint]) -> Fields<'a> {
        Fields {
            hash: PaymentHash([7; 32]),
            payment_addr: [9; 32],
            amount_msat: 1_234_567,
            timestamp: 1_767_225_600,
            expiry_secs: 600,
            description: desc,
            cltv_delta: 80,
            route_hints: hints,
        }
    }

    #[test]
    fn round_trips_every_field_signed_by_the_payee() {
        let keys = keys();
        let hint = RouteHint {
            node: keys.pubkey(NodeId::Edge),
            chan_id: 0x00F4_2400_0000_0001,
            fee_base_msat: 1_000,
            fee_ppm: 1_000,
            cltv_expiry_delta: 80,
        };
        let desc = Description::Memo("coffee".into());
        let s = encode(
            &keys,
            NodeId::Merchant,
            &fields(&desc, std::slice::from_ref(&hint)),
        )
        .unwrap();
        assert!(s.starts_with("lnbcrt12345670p1"), "{s}");
        let d = decode(&s).unwrap();
        assert_eq!(d.payee, keys.pubkey(NodeId::Merchant));
        assert_eq!(d.hash, PaymentHash([7; 32]));
        assert_eq!(d.payment_addr, [9; 32]);
        assert_eq!(d.amount_msat, Some(1_234_567));
        assert_eq!(
            (d.timestamp, d.expiry_secs, d.cltv_delta),
            (1_767_225_600, 600, 80)
        );
        assert_eq!(d.description, desc);
        assert_eq!(d.route_hints, vec![hint]);
        assert_eq!(decode(&s.to_ascii_uppercase()).unwrap(), d);

        let hashed = Description::Hash([5; 32]);
        let s = encode(&keys, NodeId::Bob, &fields(&hashed, &[])).unwrap();
        assert_eq!(decode(&s).unwrap().description, hashed);
    }

    #[test]
    fn bad_strings_get_lnds_words() {
        let keys = keys();
        let desc = Description::Memo(String::new());
        let s = encode(&keys, NodeId::Bob, &fields(&desc, &[])).unwrap();
        // One data character changed: the checksum no longer matches.
        let mut altered = s.clone().into_bytes();
        let i = s.len() - 10;
        altered[i] = if altered[i] == b'q' { b'p' } else { b'q' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(
            decode(&altered)
                .unwrap_err()
                .starts_with("checksum failed.")
        );
        assert_eq!(
            decode("hello").unwrap_err(),
            "invalid bech32 string length 5"
        );
        assert_eq!(
            decode("lnbcrt10u1Qqqqqqqqqq").unwrap_err(),
            "string not all lowercase or all uppercase"
        );
        assert_eq!(
            decode("lnbcrtuqqqqqqqqqq").unwrap_err(),
            "invalid index of 1"
        );
        assert_eq!(
            decode("lnbcrtuqqqq1qqqqq").unwrap_err(),
            "invalid index of 1"
        );
        assert_eq!(
            decode("lnbcrt1garbage").unwrap_err(),
            "failed converting data to bytes: invalid character not part of charset: 98"
        );
        assert_eq!(
            decode("lnbcrt 10u1qqqqqqq").unwrap_err(),
            "invalid character in string: ' '"
        );
        // A valid mainnet invoice (BOLT 11's first example) is for another network.
        let mainnet = "lnbc1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq9qrsgq357wnc5r2ueh7ck6q93dj32dlqnls087fxdwk8qakdyafkq3yap9us6v52vjjsrvywa6rt52cm9r9zqt8r2t7mlcwspyetp5h2tztugp9lfyql";
        assert_eq!(decode(mainnet).unwrap_err(), WRONG_NETWORK);
        assert_eq!(
            decode(&"q".repeat(7090)).unwrap_err(),
            "invoice is too large"
        );
    }

    proptest! {
        #[test]
        fn any_amount_and_hash_round_trip(msat in 1u64..=MAX_INVOICE_MSAT, hash in any::<[u8; 32]>(), who in 0u8..4) {
            let keys = keys();
            let payee = NodeId::from_index(who).unwrap();
            let desc = Description::Memo("x".into());
            let mut f = fields(&desc, &[]);
            f.amount_msat = msat;
            f.hash = PaymentHash(hash);
            let s = encode(&keys, payee, &f).unwrap();
            let d = decode(&s).unwrap();
            prop_assert_eq!(d.payee, keys.pubkey(payee));
            prop_assert_eq!(d.hash, PaymentHash(hash));
            prop_assert_eq!(d.amount_msat, Some(msat));
        }
    }
}
