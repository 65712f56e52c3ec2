//! The narrow traits the rest of tapgate uses to reach its nodes, in tapgate's own types.
//!
//! Each method states its contract for callers and implementers. Implementations: the lnd and
//! tapd adapters over gRPC (which talk the same way to a real node and to simnet).

use std::future::Future;

use tokio::sync::mpsc;

use super::error::BackendError;
use super::types::{
    AssetInvoice, AssetInvoiceRequest, AssetRef, BuyQuote, CreatedInvoice, InvoiceRequest,
    InvoiceStatus, NodeInfo, PaymentOutcome, SellQuote, Settlement, TrackedPayment,
};
use crate::l402::PaymentHash;

/// Plain (sats) invoices on a Lightning node.
pub trait Invoices: Send + Sync {
    /// Creates a new invoice. Not idempotent: every call creates a distinct invoice with a
    /// fresh preimage that only the node knows until it is paid.
    fn create_invoice(
        &self,
        req: &InvoiceRequest,
    ) -> impl Future<Output = Result<CreatedInvoice, BackendError>> + Send;

    /// The invoice with this payment hash, or `None` if the node has none.
    fn lookup_invoice(
        &self,
        hash: &PaymentHash,
    ) -> impl Future<Output = Result<Option<InvoiceStatus>, BackendError>> + Send;

    /// Every settlement with a settle index above `after_settle_index`, in order, then new ones
    /// as they happen. The stream survives dropped connections: it reconnects with backoff and
    /// resumes from the last index it delivered, so nothing is missed or delivered twice.
    /// Callers store the last `settle_index` they processed and pass it back after a restart.
    /// The stream ends when the receiver is dropped.
    fn settlements(
        &self,
        after_settle_index: u64,
    ) -> mpsc::Receiver<Result<Settlement, BackendError>>;
}

/// What a node says about itself.
pub trait NodeInfoSource: Send + Sync {
    /// Identity, chain state and version.
    fn node_info(&self) -> impl Future<Output = Result<NodeInfo, BackendError>> + Send;
}

/// Asset invoices through an edge node (tapd's `tapchannelrpc.AddInvoice`).
pub trait AssetInvoices: Send + Sync {
    /// Negotiates a buy quote with the edge and creates an invoice for `units` of the asset.
    /// Fails with [`BackendError::BelowMinTransportable`] for amounts an HTLC cannot carry, and
    /// never creates an invoice that outlives its quote.
    fn create_asset_invoice(
        &self,
        req: &AssetInvoiceRequest,
    ) -> impl Future<Output = Result<AssetInvoice, BackendError>> + Send;
}

/// RFQ quotes and asset facts from tapd.
pub trait Rates: Send + Sync {
    /// A buy quote: what the edge pays in sats for `units` of the asset we receive.
    fn buy_quote(
        &self,
        asset: &AssetRef,
        units: u64,
        edge_peer: &str,
        expiry_secs: u64,
    ) -> impl Future<Output = Result<BuyQuote, BackendError>> + Send;

    /// A sell quote: how many units the edge wants for paying `max_msat` on our behalf.
    fn sell_quote(
        &self,
        asset: &AssetRef,
        max_msat: u64,
        edge_peer: &str,
        expiry_secs: u64,
    ) -> impl Future<Output = Result<SellQuote, BackendError>> + Send;

    /// The asset's decimal display (6 for a USD stablecoin: 1 unit = $0.000001).
    fn decimal_display(
        &self,
        asset: &AssetRef,
    ) -> impl Future<Output = Result<u8, BackendError>> + Send;
}

/// Paying BOLT11 invoices, in sats or with an asset over an asset channel.
pub trait Payments: Send + Sync {
    /// Pays in sats, spending at most `max_fee_msat` on routing. Returns only once the payment
    /// is final: the preimage on success, [`BackendError::PaymentFailed`] otherwise.
    fn pay_sats(
        &self,
        payment_request: &str,
        max_fee_msat: u64,
    ) -> impl Future<Output = Result<PaymentOutcome, BackendError>> + Send;

    /// What paying with the asset would cost in units at the edge's current rate, routing fees
    /// excluded, without paying.
    fn preview_asset_payment(
        &self,
        payment_request: &str,
        asset: &AssetRef,
    ) -> impl Future<Output = Result<u64, BackendError>> + Send;

    /// Pays with the asset through `edge_peer` (tapd's `tapchannelrpc.SendPayment`); the
    /// outcome reports the units spent.
    fn pay_with_asset(
        &self,
        payment_request: &str,
        asset: &AssetRef,
        edge_peer: &str,
        max_fee_msat: u64,
    ) -> impl Future<Output = Result<PaymentOutcome, BackendError>> + Send;

    /// Follows up, by its payment hash, a payment whose outcome the caller did not learn (a
    /// deadline, a dropped stream), waiting until it is final (lnd's `TrackPaymentV2`). Sends
    /// nothing: safe to call any number of times. An error means the outcome is still unknown.
    fn track_payment(
        &self,
        hash: &PaymentHash,
    ) -> impl Future<Output = Result<TrackedPayment, BackendError>> + Send;
}
