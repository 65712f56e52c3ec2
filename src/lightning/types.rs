//! tapgate's own types for what it asks of a Lightning node and a tapd node.
//!
//! Generated proto types never leave the adapters: everything above `lightning/` speaks these.

use std::fmt;

use serde::Serialize;

use crate::l402::{PaymentHash, Preimage};
use crate::pricing::FixedPoint;

/// What a node says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeInfo {
    /// Hex of the 33-byte node public key.
    pub pubkey: String,
    /// The node's alias.
    pub alias: String,
    /// Best block height.
    pub block_height: u32,
    /// Whether the node is synced to the chain.
    pub synced_to_chain: bool,
    /// The daemon's version string.
    pub version: String,
}

/// A request for a plain (sats) invoice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceRequest {
    /// Amount in millisatoshis.
    pub value_msat: u64,
    /// Description shown to the payer.
    pub memo: String,
    /// Seconds until the invoice expires.
    pub expiry_secs: u64,
}

/// An invoice the node created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreatedInvoice {
    /// The payment hash the preimage unlocks.
    pub payment_hash: PaymentHash,
    /// The BOLT11 string.
    pub payment_request: String,
    /// The node's add index of the invoice (for settlement subscriptions).
    pub add_index: u64,
}

/// Invoice states, as lnd reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceState {
    /// Waiting for payment.
    Open,
    /// Paid.
    Settled,
    /// Cancelled (or expired and cancelled).
    Canceled,
    /// A hold invoice whose HTLCs arrived and wait for the preimage.
    Accepted,
}

/// An invoice as the node reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvoiceStatus {
    /// The payment hash.
    pub payment_hash: PaymentHash,
    /// Its state.
    pub state: InvoiceState,
    /// The invoice amount in msat.
    pub value_msat: u64,
    /// What was paid, in msat (for asset invoices, as tapd rewrote it).
    pub amt_paid_msat: u64,
    /// The memo.
    pub memo: String,
    /// The BOLT11 string.
    pub payment_request: String,
    /// Creation time, unix seconds.
    pub creation_date: u64,
    /// Expiry in seconds from creation.
    pub expiry_secs: u64,
    /// Add index.
    pub add_index: u64,
    /// Settle index (0 until settled).
    pub settle_index: u64,
}

/// One settled invoice, from the settlement stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Settlement {
    /// The invoice's payment hash.
    pub payment_hash: PaymentHash,
    /// What was paid, in msat.
    pub amt_paid_msat: u64,
    /// The node's settle index of this settlement; resume after it.
    pub settle_index: u64,
}

/// Which asset: by id or by group key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum AssetRef {
    /// A 32-byte asset id.
    Id([u8; 32]),
    /// A group key (33-byte compressed public key).
    GroupKey(Vec<u8>),
}

impl fmt::Debug for AssetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "AssetId({})", hex::encode(id)),
            Self::GroupKey(k) => write!(f, "GroupKey({})", hex::encode(k)),
        }
    }
}

impl fmt::Display for AssetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => f.write_str(&hex::encode(id)),
            Self::GroupKey(k) => f.write_str(&hex::encode(k)),
        }
    }
}

impl AssetRef {
    /// Parses 64 hex characters as an asset id, or 66 as a group key.
    pub fn parse(s: &str) -> Option<Self> {
        let bytes = hex::decode(s.trim()).ok()?;
        match bytes.len() {
            32 => bytes.try_into().ok().map(Self::Id),
            33 => Some(Self::GroupKey(bytes)),
            _ => None,
        }
    }
}

/// Units of one asset a node holds, by where they sit. tapd reports the two parts through
/// different daemons: on-chain units in its own `ListBalances`, channel units through lnd's
/// `ChannelBalance`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AssetBalance {
    /// Units in the node's on-chain wallet, outside any channel (`ListBalances`, which counts
    /// only the wallet's own script keys and leaves channel outputs out).
    pub on_chain: u64,
    /// The node's side of its open asset channels: what it can pay with over Lightning. Units
    /// of channels still opening, and units locked in HTLCs, are in neither part.
    pub in_channels: u64,
}

impl AssetBalance {
    /// Both parts together. Saturates at `u64::MAX`, but never needs to for a balance from
    /// [`crate::lightning::tapd::TapdNode::asset_balance_with`], which refuses parts whose sum
    /// overflows.
    pub fn total(&self) -> u64 {
        self.on_chain.saturating_add(self.in_channels)
    }
}

/// A request for an asset invoice through an edge node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetInvoiceRequest {
    /// The asset to receive.
    pub asset: AssetRef,
    /// Asset units to receive.
    pub units: u64,
    /// The edge node (hex pubkey) to negotiate the quote with; `None` lets tapd pick.
    pub edge_peer: Option<String>,
    /// Memo.
    pub memo: String,
    /// Invoice expiry in seconds; must not outlive the quote.
    pub expiry_secs: u64,
}

/// An accepted RFQ buy quote (the edge buys our asset units for sats it receives).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BuyQuote {
    /// The peer that quoted (hex pubkey).
    pub peer: String,
    /// Hex of the 32-byte quote id.
    pub id: String,
    /// The SCID alias the invoice's route hint uses.
    pub scid: u64,
    /// Asset units per BTC.
    pub rate: FixedPoint,
    /// Unix seconds after which the quote is void.
    pub expires_at: u64,
    /// Most units the quote covers.
    pub asset_max_amount: u64,
    /// Smallest asset amount an HTLC can carry at this rate.
    pub min_transportable_units: u64,
}

/// An accepted RFQ sell quote (the edge sells sats for our asset units).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SellQuote {
    /// The peer that quoted (hex pubkey).
    pub peer: String,
    /// Hex of the 32-byte quote id.
    pub id: String,
    /// The SCID alias.
    pub scid: u64,
    /// Asset units per BTC.
    pub rate: FixedPoint,
    /// Unix seconds after which the quote is void.
    pub expires_at: u64,
    /// The units the edge asks for the order's maximum msat at the bid rate, rounded down: tapd's
    /// `PeerAcceptedSellQuote.asset_amount` (lightninglabs/taproot-assets rfq/marshal.go, v0.8.1),
    /// a number of asset units although the order was placed in msat.
    pub max_units: u64,
    /// Smallest payment an asset channel can make at this rate.
    pub min_transportable_msat: u64,
}

/// An asset invoice and the quote behind it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AssetInvoice {
    /// The invoice (an ordinary BOLT11 that either kind of payer can pay).
    pub invoice: CreatedInvoice,
    /// The msat amount tapd put on the invoice.
    pub value_msat: u64,
    /// The accepted buy quote.
    pub quote: BuyQuote,
}

/// What following up a payment by its hash found (lnd's `TrackPaymentV2`), once final.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackedPayment {
    /// It succeeded: the preimage and what it cost. Asset units are not known to lnd.
    Succeeded(PaymentOutcome),
    /// It failed: nothing was paid.
    Failed {
        /// lnd's failure reason.
        reason: String,
    },
    /// The node never started it (lnd: "payment isn't initiated"): nothing was paid.
    NotInitiated,
}

/// A settled outgoing payment.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct PaymentOutcome {
    /// The payment hash.
    pub payment_hash: PaymentHash,
    /// Proof of payment. Secret: shown to the operator who paid, never logged.
    #[serde(serialize_with = "serialize_preimage")]
    pub preimage: Preimage,
    /// Amount paid to the payee, msat.
    pub value_msat: u64,
    /// Routing fees, msat.
    pub fee_msat: u64,
    /// Asset units spent, for payments made with an asset.
    pub units_spent: Option<u64>,
}

fn serialize_preimage<S: serde::Serializer>(p: &Preimage, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(p.expose()))
}

impl fmt::Debug for PaymentOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaymentOutcome")
            .field("payment_hash", &self.payment_hash)
            .field("preimage", &self.preimage)
            .field("value_msat", &self.value_msat)
            .field("fee_msat", &self.fee_msat)
            .field("units_spent", &self.units_spent)
            .finish()
    }
}
