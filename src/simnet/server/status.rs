//! The model's errors as the gRPC statuses lnd and tapd would return.
//!
//! Codes follow the daemons where they use a specific one (lnd's `NotFound` "unable to locate
//! invoice", `AlreadyExists` for a paid invoice); elsewhere they say what kind of failure it is.
//! Messages carry the daemons' wording wherever tapgate's client classifies errors by text
//! (`lightning::error::BackendError::from_status`): tapd's "no asset channel balance found for
//! AssetSpecifier(…)", "cannot create invoice for N asset units, as the minimal transportable amount
//! is M units", "rejecting payment of N mSAT …, minimum amount for an asset payment is M mSAT",
//! "no quotes with sufficient expiry", "peer … rejected the quote, …" and "quote ID did not
//! match an accepted quote"; each followed by what to do next.

use tonic::Status;

use crate::simnet::model::{
    AssetId, InvoiceError, NodeId, NodePubkey, PayError, QueryError, RfqError,
};

/// lnd's text for an unknown invoice (`invoices.ErrInvoiceNotFound`).
pub(crate) const INVOICE_NOT_FOUND: &str = "unable to locate invoice";

/// lnd's text for tracking a payment it never saw (`ErrPaymentNotInitiated`).
pub(crate) const PAYMENT_NOT_INITIATED: &str = "payment isn't initiated";

/// tapd's text for an `rfq_id` that names no accepted quote.
pub(crate) const QUOTE_ID_UNKNOWN: &str = "quote ID did not match an accepted quote";

/// A node the call needed is down. The node the call was made to is caught earlier (see
/// `NodeService::gate`) and answers "node is down"; another node being down is what a real
/// daemon would see as a peer being offline.
fn node_down(node: NodeId) -> Status {
    Status::unavailable(format!("{node} is down; bring it back up and retry"))
}

/// tapd's `FetchChannel` failure, word for word and with tapd's code (a plain error: `Unknown`),
/// as `tapchannelrpc.AddInvoice` returns it when the node has no asset channel for the asset
/// with the peer (lightninglabs/taproot-assets rfq/manager.go `FetchChannel`, v0.8.1, behind
/// "error finding asset channel to use: "). tapd names neither the peer nor a remedy.
fn no_asset_channel(asset: &AssetId, _peer: Option<&NodePubkey>) -> Status {
    Status::unknown(format!(
        "error finding asset channel to use: no asset channel balance found for \
         AssetSpecifier(id={asset}, group_pub_key=)"
    ))
}

/// tapd's `acquireBuyOrder` / `acquireSellQuote` rejection text.
fn quote_rejected(order: &str, peer: &NodePubkey, reason: &str, next: &str) -> Status {
    Status::failed_precondition(format!(
        "error acquiring {order}: peer {peer} rejected the quote, code: 0, error message: {reason}; {next}"
    ))
}

/// A plain (lnd) invoice call's failure.
pub(crate) fn invoice(e: InvoiceError) -> Status {
    asset_invoice(e, None)
}

/// An invoice call's failure; `peer` is the RFQ peer the request named (asset invoices).
pub(crate) fn asset_invoice(e: InvoiceError, peer: Option<&NodePubkey>) -> Status {
    let msg = e.to_string();
    match e {
        InvoiceError::NodeDown(n) => node_down(n),
        InvoiceError::UnknownInvoice { .. } => {
            // lnd's words alone (lightningnetwork/lnd `rpcserver.go` `LookupInvoice`,
            // v0.21.0-beta; seen through its REST gateway on the regtest network).
            Status::not_found(INVOICE_NOT_FOUND)
        }
        InvoiceError::DuplicateHash { .. } => {
            Status::already_exists(format!("invoice with payment hash already exists: {msg}"))
        }
        InvoiceError::NoAssetChannel { asset, .. } => no_asset_channel(&asset, peer),
        InvoiceError::RfqRejected { peer, reason } => quote_rejected(
            "buy order for invoice",
            &peer,
            &reason,
            "retry later or create a sats invoice",
        ),
        InvoiceError::ZeroAmount
        | InvoiceError::Unencodable(_)
        | InvoiceError::UnknownAsset(_)
        | InvoiceError::BelowMinTransportable { .. }
        | InvoiceError::QuoteExpiresBeforeInvoice { .. } => Status::invalid_argument(msg),
        InvoiceError::WrongState { .. } => Status::failed_precondition(msg),
        // zpay32's error, returned as is: gRPC's Unknown (lightningnetwork/lnd `rpcserver.go`
        // `DecodePayReq`, v0.21.0-beta).
        InvoiceError::InvalidPaymentRequest(_) => Status::unknown(msg),
        InvoiceError::Pricing(_) => Status::internal(msg),
    }
}

/// An RFQ or oracle failure that is not a quote rejection (the RFQ service answers those in
/// the response's `rejected_quote` arm, as tapd does). `peer` is the peer the request named.
pub(crate) fn rfq(e: RfqError, peer: Option<&NodePubkey>) -> Status {
    let msg = e.to_string();
    match e {
        RfqError::NodeDown(n) => node_down(n),
        RfqError::NoAssetChannel { asset, .. } => no_asset_channel(&asset, peer),
        RfqError::Rejected { peer, reason } => {
            quote_rejected("quote", &peer, &reason, "retry later or pay in sats")
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

/// How a payment was asked for, for [`payment_rpc_error`].
pub(crate) enum PayVia<'a> {
    /// lnd's `SendPaymentV2` (or tapd's `SendPayment` without an asset).
    Sats,
    /// tapd's `SendPayment` with the asset, through `peer` if the request named one.
    Asset {
        /// The requested RFQ peer.
        peer: Option<&'a NodePubkey>,
        /// Whether the request named a pre-negotiated quote (`rfq_id`).
        negotiated: bool,
        /// The payment hash, for tapd's message when it negotiates the quote itself.
        hash: String,
    },
}

/// A payment failure that lnd or tapd reports as an RPC error instead of a FAILED payment;
/// `None` means "stream it as a FAILED payment" (the payment was dispatched and failed).
///
/// tapd's `SendPayment` negotiates the sell quote and checks the amount against the minimum
/// before lnd dispatches anything, so those failures are RPC errors there.
pub(crate) fn payment_rpc_error(e: &PayError, payer: NodeId, via: &PayVia<'_>) -> Option<Status> {
    let msg = e.to_string();
    let asset_peer = match via {
        PayVia::Sats => None,
        PayVia::Asset { peer, .. } => Some(*peer),
    };
    // Negotiating the quote itself, tapd only logs why no quote would do (a refusal, or an
    // amount below the minimum) and returns this (lightninglabs/taproot-assets
    // rpcserver/rpcserver.go `SendPayment`, v0.8.1; seen on the real regtest network).
    if let PayVia::Asset {
        negotiated: false,
        hash,
        ..
    } = via
        && matches!(
            e,
            PayError::BelowMinTransportable { .. } | PayError::RfqRejected { .. }
        )
    {
        return Some(Status::unknown(format!(
            "payment {hash} (amt=0 BTC) failed to acquire any quotes"
        )));
    }
    match (e, asset_peer) {
        (PayError::NodeDown(n), _) if *n == payer => Some(Status::unavailable("node is down")),
        // zpay32's error, returned as is (lightningnetwork/lnd `lnrpc/routerrpc/router_backend.go`
        // `extractIntentFromSendRequest`, v0.21.0-beta).
        (PayError::InvalidPaymentRequest(_), _) => Some(Status::unknown(msg)),
        // lnd's control tower refuses a second payment of a hash it paid, word for word
        // (lightningnetwork/lnd payments/db/errors.go `ErrAlreadyPaid`, v0.21.0-beta).
        (PayError::AlreadyPaid(_), _) => Some(Status::already_exists("invoice is already paid")),
        // lnd's router refuses an expired payment request as an RPC error, in Go's time format
        // (lightningnetwork/lnd lnrpc/routerrpc/router_backend.go, v0.21.0-beta).
        (PayError::InvoiceExpired { expired_at }, _) => Some(Status::unknown(format!(
            "invoice expired. Valid until {}",
            go_utc_time(*expired_at)
        ))),
        (PayError::Pricing(_), _) => Some(Status::internal(msg)),
        (PayError::UnknownAsset(_), Some(_)) => Some(Status::invalid_argument(msg)),
        (PayError::NoAssetChannel { asset, .. }, Some(peer)) => Some(no_asset_channel(asset, peer)),
        (PayError::BelowMinTransportable { msat, min_msat }, Some(_)) => {
            // With an rfq_id, tapd's `checkOverpayment` answers directly.
            Some(Status::unknown(format!(
                "rejecting payment of {msat} mSAT (invoice amount + user-defined routing fee \
                 limit), minimum amount for an asset payment is {min_msat} mSAT; override this \
                 check by specifying the allow_overpay flag"
            )))
        }
        (PayError::RfqRejected { peer, reason }, Some(_)) => Some(quote_rejected(
            "sell order",
            peer,
            reason,
            "retry later or pay in sats",
        )),
        _ => None,
    }
}

/// `time.Time.String()` of a UTC instant, as lnd prints it: `2026-11-29 23:47:11 +0000 UTC`.
fn go_utc_time(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (no negative dates here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} +0000 UTC",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod go_time_tests {
    #[test]
    fn formats_like_go() {
        assert_eq!(super::go_utc_time(0), "1970-01-01 00:00:00 +0000 UTC");
        // The instant of an expired invoice on the real regtest network.
        assert_eq!(
            super::go_utc_time(1_795_995_231),
            "2026-11-29 23:33:51 +0000 UTC"
        );
        assert_eq!(
            super::go_utc_time(951_782_400),
            "2000-02-29 00:00:00 +0000 UTC"
        );
    }
}
