//! The model's errors as the gRPC statuses lnd and tapd would return.
//!
//! Codes follow the daemons where they use one (lnd's `NotFound` "unable to locate invoice",
//! `AlreadyExists` for a paid invoice); messages keep the daemons' wording where tapgate's
//! client classifies errors by text (no asset channels, minimal transportable amount, quote
//! expiry, rejected quotes), followed by the model's advice on what to do next.

use tonic::Status;

use crate::simnet::model::{InvoiceError, NodeId, PayError, QueryError, RfqError};

/// lnd's text for an unknown invoice (`invoices.ErrInvoiceNotFound`).
pub(crate) const INVOICE_NOT_FOUND: &str = "unable to locate invoice";

/// lnd's text for tracking a payment it never saw (`ErrPaymentNotInitiated`).
pub(crate) const PAYMENT_NOT_INITIATED: &str = "payment isn't initiated";

/// A node the call needed is down. The node the call was made to is caught earlier (see
/// `NodeService::gate`) and answers "node is down"; another node being down is what a real
/// daemon would see as a peer being offline.
fn node_down(node: NodeId) -> Status {
    Status::unavailable(format!("{node} is down; bring it back up and retry"))
}

/// An invoice call's failure.
pub(crate) fn invoice(e: InvoiceError) -> Status {
    let msg = e.to_string();
    match e {
        InvoiceError::NodeDown(n) => node_down(n),
        InvoiceError::UnknownInvoice { .. } => {
            Status::not_found(format!("{INVOICE_NOT_FOUND}: {msg}"))
        }
        InvoiceError::DuplicateHash { .. } => {
            Status::already_exists(format!("invoice with payment hash already exists: {msg}"))
        }
        InvoiceError::ZeroAmount
        | InvoiceError::InvalidPaymentRequest(_)
        | InvoiceError::UnknownAsset(_)
        | InvoiceError::BelowMinTransportable { .. }
        | InvoiceError::QuoteExpiresBeforeInvoice { .. } => Status::invalid_argument(msg),
        InvoiceError::NoAssetChannel { .. } | InvoiceError::WrongState { .. } => {
            Status::failed_precondition(msg)
        }
        InvoiceError::RfqRejected(reason) => Status::failed_precondition(format!(
            "error acquiring buy quote: peer {} rejected quote: {reason}; retry later or create a sats invoice",
            NodeId::Edge.pubkey()
        )),
        InvoiceError::Pricing(_) => Status::internal(msg),
    }
}

/// An RFQ or oracle failure that is not a quote rejection (those are answered in the
/// response's `rejected_quote` arm, as tapd does).
pub(crate) fn rfq(e: RfqError) -> Status {
    let msg = e.to_string();
    match e {
        RfqError::NodeDown(n) => node_down(n),
        RfqError::NoAssetChannel { .. } | RfqError::Rejected { .. } => {
            Status::failed_precondition(msg)
        }
        RfqError::UnknownAsset(_) | RfqError::ZeroAmount => Status::invalid_argument(msg),
        RfqError::Pricing(_) => Status::internal(msg),
    }
}

/// A read-only query's failure.
pub(crate) fn query(e: QueryError) -> Status {
    let msg = e.to_string();
    match e {
        QueryError::NodeDown(n) => node_down(n),
        QueryError::UnknownAsset(_) => Status::not_found(msg),
        QueryError::UnknownPayment { .. } => {
            Status::not_found(format!("{PAYMENT_NOT_INITIATED}: {msg}"))
        }
        QueryError::Pricing(_) => Status::internal(msg),
    }
}

/// A payment failure that lnd or tapd reports as an RPC error instead of a FAILED payment:
/// `None` means "stream it as a FAILED payment" (the payment was dispatched and failed).
///
/// `asset` is true for tapd's `SendPayment`, which negotiates the sell quote and checks the
/// amount against the minimum before lnd dispatches anything, so those failures are errors.
pub(crate) fn payment_rpc_error(e: &PayError, payer: NodeId, asset: bool) -> Option<Status> {
    let msg = e.to_string();
    match e {
        PayError::NodeDown(n) if *n == payer => Some(Status::unavailable("node is down")),
        PayError::InvalidPaymentRequest(_) => Some(Status::invalid_argument(msg)),
        PayError::AlreadyPaid(_) => Some(Status::already_exists(format!(
            "invoice is already paid: {msg}"
        ))),
        PayError::UnknownAsset(_) if asset => Some(Status::invalid_argument(msg)),
        PayError::NoAssetChannel { .. } | PayError::BelowMinTransportable { .. } if asset => {
            Some(Status::failed_precondition(msg))
        }
        PayError::RfqRejected(reason) if asset => Some(Status::failed_precondition(format!(
            "error acquiring sell quote: peer {} rejected quote: {reason}; retry later or pay in sats",
            NodeId::Edge.pubkey()
        ))),
        PayError::Pricing(_) => Some(Status::internal(msg)),
        _ => None,
    }
}
