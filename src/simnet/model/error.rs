//! The simnet's errors, one enum per boundary: configuration, RFQ, invoices, payments and
//! read-only queries. Each message says what to do next; servers map variants to gRPC
//! statuses (and payments to lnd's `PaymentFailureReason` via [`PayError::failure_reason`]).

use rust_decimal::Decimal;

use super::types::{AssetId, NodeId, NodePubkey, PaymentHash, QuoteId};
use super::{InvoiceState, Unit};
use crate::pricing::PricingError;

/// A configuration or price knob the simnet cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The OS could not supply randomness for the network's secret.
    #[error(
        "cannot draw the network's secret from the OS: {0}; pass a seed to run without OS randomness"
    )]
    Random(#[source] getrandom::Error),
    /// The price cannot be turned into tapd rates.
    #[error(
        "usd_per_btc {usd_per_btc} cannot be priced: {source}; use a positive price with at most 12 decimal places"
    )]
    Price {
        /// The configured price.
        usd_per_btc: Decimal,
        /// Why.
        #[source]
        source: PricingError,
    },
    /// A spread of 100 % or more would price the asset at zero.
    #[error(
        "spread_ppm {0} must be below 1,000,000 (100 %); tapd wallets reject rates more than 50,000 ppm from their own oracle"
    )]
    Spread(u32),
    /// tapd refuses quotes that live less than 10 s.
    #[error("quote_lifetime_secs {0} is below tapd's minimum quote lifetime; use at least 10")]
    QuoteLifetime(u64),
    /// Invoices need a positive default expiry.
    #[error("invoice_expiry_secs must be positive; 86400 (lnd's) is the simnet default")]
    InvoiceExpiry,
}

/// Why an RFQ order (`AddAssetBuyOrder` / `AddAssetSellOrder`) or an oracle query failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RfqError {
    /// A node involved is down.
    #[error("{0} is down; bring it back up (simnet fault knob) and retry")]
    NodeDown(NodeId),
    /// The requester has no asset channel for the asset with the requested peer.
    #[error(
        "no asset channels found for asset {asset} on {node} with the requested peer; open an asset channel with the edge node or leave the peer unset"
    )]
    NoAssetChannel {
        /// The requesting node.
        node: NodeId,
        /// The asset asked for.
        asset: AssetId,
    },
    /// The simnet knows no such asset.
    #[error("unknown asset {0}; the simnet's only asset is listed by ListAssets")]
    UnknownAsset(AssetId),
    /// Zero-amount orders are meaningless.
    #[error("an RFQ order needs a non-zero amount")]
    ZeroAmount,
    /// The edge declined (fault knob), like tapd's `RejectedQuoteResponse`.
    #[error("peer {peer} rejected the quote: {reason}; retry later or pay in sats")]
    Rejected {
        /// The node that rejected (its identity key, as tapd names peers).
        peer: NodePubkey,
        /// Its reason.
        reason: String,
    },
    /// The price could not be converted.
    #[error("price conversion failed: {0}; check the simnet's usd_per_btc")]
    Pricing(#[source] PricingError),
}

/// Why an invoice could not be created, settled, cancelled, looked up or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    /// A node involved is down.
    #[error("{0} is down; bring it back up (simnet fault knob) and retry")]
    NodeDown(NodeId),
    /// The simnet does not do zero-amount invoices.
    #[error("simnet invoices need an amount; set value_msat (or asset_amount)")]
    ZeroAmount,
    /// lnd refuses a second invoice with the same hash.
    #[error("{node} already has an invoice with payment hash {hash}; use a fresh preimage")]
    DuplicateHash {
        /// The node.
        node: NodeId,
        /// The hash.
        hash: PaymentHash,
    },
    /// No such invoice on that node.
    #[error("{node} has no invoice with payment hash {hash}; check the node and the hash")]
    UnknownInvoice {
        /// The node asked.
        node: NodeId,
        /// The hash asked for.
        hash: PaymentHash,
    },
    /// Not a valid regtest BOLT 11 invoice; the message is lnd's (zpay32's).
    #[error("{0}")]
    InvalidPaymentRequest(String),
    /// The invoice's fields do not fit BOLT 11 (a description over 639 bytes…).
    #[error("{0}")]
    Unencodable(String),
    /// No asset channel for the asset with the peer (or the peer is down, as tapd reports it).
    #[error(
        "no asset channels found for asset {asset} on {node} with the requested peer (is the peer online?); open an asset channel or create a sats invoice"
    )]
    NoAssetChannel {
        /// The invoicing node.
        node: NodeId,
        /// The asset.
        asset: AssetId,
    },
    /// The simnet knows no such asset.
    #[error("unknown asset {0}; the simnet's only asset is listed by ListAssets")]
    UnknownAsset(AssetId),
    /// tapd refuses asset invoices an HTLC cannot carry (354 sat dust limit).
    #[error(
        "cannot create invoice for {units} asset units, as the minimal transportable amount is {min} units at the current rate; raise the price or create a sats invoice"
    )]
    BelowMinTransportable {
        /// Requested units.
        units: u64,
        /// The quote's `min_transportable_units`.
        min: u64,
    },
    /// tapd ≥ 0.8: no quote lives as long as the requested invoice expiry.
    #[error(
        "no quotes with sufficient expiry for the requested invoice expiry: the quote expires at {quote_expiry}, the invoice would expire at {invoice_expiry}; request an expiry of at most the quote lifetime (or 0 for exactly that)"
    )]
    QuoteExpiresBeforeInvoice {
        /// When the quote expires (unix seconds).
        quote_expiry: u64,
        /// When the invoice would have expired.
        invoice_expiry: u64,
    },
    /// The edge declined the buy order (fault knob).
    #[error("the edge rejected the RFQ: {reason}; retry later or create a sats invoice")]
    RfqRejected {
        /// The rejecting peer's key.
        peer: NodePubkey,
        /// Its reason.
        reason: String,
    },
    /// A hold-invoice transition from the wrong state.
    #[error(
        "cannot {action} invoice {hash}: it is {state:?}; settle only ACCEPTED hold invoices, cancel only unsettled ones"
    )]
    WrongState {
        /// What was attempted.
        action: &'static str,
        /// The invoice.
        hash: PaymentHash,
        /// Its state.
        state: InvoiceState,
    },
    /// The price could not be converted.
    #[error("price conversion failed: {0}; check the simnet's usd_per_btc")]
    Pricing(#[source] PricingError),
}

impl From<RfqError> for InvoiceError {
    fn from(e: RfqError) -> Self {
        match e {
            RfqError::NodeDown(n) => Self::NodeDown(n),
            RfqError::NoAssetChannel { node, asset } => Self::NoAssetChannel { node, asset },
            RfqError::UnknownAsset(a) => Self::UnknownAsset(a),
            RfqError::ZeroAmount => Self::ZeroAmount,
            RfqError::Rejected { peer, reason } => Self::RfqRejected { peer, reason },
            RfqError::Pricing(p) => Self::Pricing(p),
        }
    }
}

/// lnd's `PaymentFailureReason`, for servers reporting a failed payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// `FAILURE_REASON_NO_ROUTE`.
    NoRoute,
    /// `FAILURE_REASON_ERROR`.
    Error,
    /// `FAILURE_REASON_INCORRECT_PAYMENT_DETAILS`.
    IncorrectPaymentDetails,
    /// `FAILURE_REASON_INSUFFICIENT_BALANCE`.
    InsufficientBalance,
    /// `FAILURE_REASON_CANCELED`.
    Canceled,
}

/// Why a payment (or its preview) failed. A failed payment never reveals the preimage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayError {
    /// A node on the path (or the payer) is down.
    #[error("{0} is down; bring it back up (simnet fault knob) and retry")]
    NodeDown(NodeId),
    /// Not a valid regtest BOLT 11 invoice; the message is lnd's (zpay32's).
    #[error("{0}")]
    InvalidPaymentRequest(String),
    /// The payee has no such invoice.
    #[error("{node} has no invoice with payment hash {hash}; ask the payee for a new invoice")]
    UnknownInvoice {
        /// The payee.
        node: NodeId,
        /// The hash.
        hash: PaymentHash,
    },
    /// The invoice's expiry has passed.
    #[error("the invoice expired at {expired_at} (unix seconds); ask the payee for a new invoice")]
    InvoiceExpired {
        /// When it expired.
        expired_at: u64,
    },
    /// Settled, or held (ACCEPTED) awaiting settlement.
    #[error(
        "invoice {0} is already paid (or held in flight); do not pay again, track the payment by its hash instead"
    )]
    AlreadyPaid(PaymentHash),
    /// Settled, or held, for another payer: the payee rejects this payer's HTLC.
    #[error(
        "invoice {0} was already paid by someone else; the payee rejected the payment, nothing was paid"
    )]
    SettledByAnother(PaymentHash),
    /// The payee cancelled the invoice.
    #[error("invoice {0} was cancelled by the payee; ask for a new invoice")]
    InvoiceCanceled(PaymentHash),
    /// No path can carry the payment.
    #[error("no route: {0}")]
    NoRoute(String),
    /// The payer's own channel cannot carry the amount.
    #[error(
        "insufficient balance: {node} needs {needed} {unit} on channel {chan_id} but has {available}; top up the channel or pay a smaller amount"
    )]
    InsufficientBalance {
        /// The payer.
        node: NodeId,
        /// The payer's channel.
        chan_id: u64,
        /// What the first hop needs.
        needed: u64,
        /// What the payer's side holds.
        available: u64,
        /// msat or asset units.
        unit: Unit,
    },
    /// The edge's fee is above the caller's limit.
    #[error(
        "the routing fee of {fee_msat} msat exceeds the fee limit of {max_fee_msat} msat; raise fee_limit_msat"
    )]
    FeeLimitExceeded {
        /// The fee the edge charges.
        fee_msat: u64,
        /// The caller's limit.
        max_fee_msat: u64,
    },
    /// The RFQ quote behind an asset invoice is gone (expired, or forgotten by an edge restart).
    #[error(
        "the edge no longer honours RFQ quote {quote} behind this asset invoice (expired at {expired_at}); ask the payee for a new invoice"
    )]
    QuoteExpired {
        /// The quote.
        quote: QuoteId,
        /// Its expiry (unix seconds).
        expired_at: u64,
    },
    /// An asset HTLC cannot be this small.
    #[error(
        "{msat} msat is below the smallest payment an asset channel can make ({min_msat} msat: the 354 sat dust limit plus one unit); pay in sats, or set allow_overpay to pay the minimum"
    )]
    BelowMinTransportable {
        /// What the payment needs.
        msat: u64,
        /// The sell quote's `min_transportable_msat`.
        min_msat: u64,
    },
    /// The edge declined the sell order (fault knob).
    #[error("the edge rejected the RFQ: {reason}; retry later or pay in sats")]
    RfqRejected {
        /// The rejecting peer's key.
        peer: NodePubkey,
        /// Its reason.
        reason: String,
    },
    /// Strict forwarding: an asset invoice's final HTLC must carry the asset from the quote's
    /// peer, so the payer cannot reach it with a plain sats HTLC.
    #[error(
        "this is an asset invoice: its final hop must carry the asset from the edge node, which {0} cannot do with a direct sats HTLC; pay it from a node that routes through the edge"
    )]
    AssetInvoiceNeedsAsset(NodeId),
    /// The payer has no asset channel for the asset with the requested peer.
    #[error(
        "{node} has no asset channel for asset {asset} with the requested peer; open one or pay in sats"
    )]
    NoAssetChannel {
        /// The payer.
        node: NodeId,
        /// The asset.
        asset: AssetId,
    },
    /// The simnet knows no such asset.
    #[error("unknown asset {0}; the simnet's only asset is listed by ListAssets")]
    UnknownAsset(AssetId),
    /// The price could not be converted.
    #[error("price conversion failed: {0}; check the simnet's usd_per_btc")]
    Pricing(#[source] PricingError),
}

impl PayError {
    /// The lnd failure reason a server reports for this error.
    pub fn failure_reason(&self) -> FailureReason {
        match self {
            Self::NodeDown(_)
            | Self::NoRoute(_)
            | Self::FeeLimitExceeded { .. }
            | Self::QuoteExpired { .. }
            | Self::RfqRejected { .. }
            | Self::AssetInvoiceNeedsAsset(_)
            | Self::NoAssetChannel { .. } => FailureReason::NoRoute,
            Self::InsufficientBalance { .. } => FailureReason::InsufficientBalance,
            Self::UnknownInvoice { .. }
            | Self::InvoiceExpired { .. }
            | Self::SettledByAnother(_) => FailureReason::IncorrectPaymentDetails,
            // lnd's payee rejects an HTLC for a cancelled invoice like one for an unknown
            // invoice (lightningnetwork/lnd invoices/invoiceregistry.go, v0.21.0-beta):
            // INCORRECT_PAYMENT_DETAILS, never CANCELED (seen on the real regtest network).
            Self::InvoiceCanceled(_) => FailureReason::IncorrectPaymentDetails,
            Self::InvalidPaymentRequest(_)
            | Self::AlreadyPaid(_)
            | Self::BelowMinTransportable { .. }
            | Self::UnknownAsset(_)
            | Self::Pricing(_) => FailureReason::Error,
        }
    }
}

impl From<RfqError> for PayError {
    fn from(e: RfqError) -> Self {
        match e {
            RfqError::NodeDown(n) => Self::NodeDown(n),
            RfqError::NoAssetChannel { node, asset } => Self::NoAssetChannel { node, asset },
            RfqError::UnknownAsset(a) => Self::UnknownAsset(a),
            RfqError::ZeroAmount => Self::NoRoute("zero-amount payment".into()),
            RfqError::Rejected { peer, reason } => Self::RfqRejected { peer, reason },
            RfqError::Pricing(p) => Self::Pricing(p),
        }
    }
}

impl From<PricingError> for PayError {
    fn from(e: PricingError) -> Self {
        Self::Pricing(e)
    }
}

impl From<PricingError> for InvoiceError {
    fn from(e: PricingError) -> Self {
        Self::Pricing(e)
    }
}

impl From<PricingError> for RfqError {
    fn from(e: PricingError) -> Self {
        Self::Pricing(e)
    }
}

/// Why a read-only query (node info, balances, channels, assets, payments) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The node asked is down.
    #[error("{0} is down; bring it back up (simnet fault knob) and retry")]
    NodeDown(NodeId),
    /// The simnet knows no such asset.
    #[error("unknown asset {0}; the simnet's only asset is listed by ListAssets")]
    UnknownAsset(AssetId),
    /// The node never attempted a payment with that hash.
    #[error("{node} has no payment with hash {hash}; pay the invoice first")]
    UnknownPayment {
        /// The payer asked.
        node: NodeId,
        /// The hash.
        hash: PaymentHash,
    },
    /// The price could not be converted.
    #[error("price conversion failed: {0}; check the simnet's usd_per_btc")]
    Pricing(#[source] PricingError),
}
