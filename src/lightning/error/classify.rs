//! Reading lnd's and tapd's status texts: which failure a message describes, and the numbers
//! and peer it names. The texts are tapd's own (`rpcserver/rpcserver.go`, `rfq/`), matched
//! case-insensitively; anything unrecognised stays a plain status.

use std::error::Error as StdError;
use std::io;

use tonic::{Code, Status};

/// lnd's and litd's macaroon checks answer `Unknown` with these texts (lnd
/// `macaroons/service.go`: "expected 1 macaroon, got 0", "verification failed: signature
/// mismatch after caveat verification", "permission denied"); simnet and other servers use the
/// proper codes.
pub(super) fn is_macaroon_refusal(status: &Status) -> bool {
    if matches!(
        status.code(),
        Code::Unauthenticated | Code::PermissionDenied
    ) {
        return true;
    }
    let message = status.message().to_ascii_lowercase();
    status.code() == Code::Unknown
        && [
            "expected 1 macaroon",
            "verification failed",
            "permission denied",
            "macaroon",
        ]
        .iter()
        .any(|m| message.contains(m))
}

/// tapd's texts for "no usable asset channel" (`rfq.Manager.FetchChannel`, `checkPeerChannel`,
/// `AddInvoice`). tapd v0.8.1 says "no asset channel balance found for AssetSpecifier(…)"
/// (lightninglabs/taproot-assets rfq/manager.go), with or without a peer given; earlier
/// versions said "no asset channels found for …".
pub(super) const NO_CHANNEL: &[&str] = &[
    "no asset channel balance found",
    "no asset channels found",
    "no asset channels available",
    "no active channel found with peer",
];

/// `validateInvoiceAmount`: "cannot create invoice for %d asset units, as the minimal
/// transportable amount is %d units with the current rate of %v units/BTC"; `acquireBuyOrder`
/// says "over" instead of "for".
pub(super) fn below_min_units(message: &str) -> Option<(u64, u64)> {
    if !message.contains("minimal transportable amount is") {
        return None;
    }
    let units = number_after(message, "cannot create invoice for ")
        .or_else(|| number_after(message, "cannot create invoice over "))?;
    let min_units = number_after(message, "minimal transportable amount is ")?;
    Some((units, min_units))
}

/// `checkOverpayment`: "rejecting payment of %v (invoice amount + user-defined routing fee
/// limit), minimum amount for an asset payment is %v mSAT …", or "…, smallest payable amount
/// with assets is equivalent to %v" when not even one unit fits. `%v` of an `lnwire.MilliSatoshi`
/// prints "<n> mSAT".
pub(super) fn below_min_msat(message: &str) -> Option<(u64, u64)> {
    let msat = number_after(message, "rejecting payment of ")?;
    let min_msat =
        number_after(message, "minimum amount for an asset payment is ").or_else(|| {
            number_after(
                message,
                "smallest payable amount with assets is equivalent to ",
            )
        })?;
    Some((msat, min_msat))
}

/// The quote-negotiation failures: `AddAssetBuyOrder`/`AddAssetSellOrder` ("peer %s rejected
/// quote %v", "timeout waiting for response …"), `acquireBuyOrder`/`acquireSellQuote` ("peer %v
/// rejected the quote, code: %v, error message: %v", "peer %v sent back an invalid quote,
/// status: %v") and `SendPayment` ("… failed to acquire any quotes"). Returns the reason in the
/// message's original case.
pub(super) fn quote_rejection(lower: &str, original: &str) -> Option<String> {
    const MARKERS: &[&str] = &[
        "rejected quote ",
        "rejected the quote, ",
        "sent back an invalid quote, ",
    ];
    for marker in MARKERS {
        if let Some(at) = lower.find(marker) {
            let reason = original.get(at + marker.len()..).unwrap_or_default().trim();
            return Some(reason.to_owned());
        }
    }
    if lower.contains("timeout waiting for response") {
        return Some("the edge node did not answer the quote request in time".to_owned());
    }
    if lower.contains("failed to acquire any quotes") {
        return Some("no edge node offered a quote".to_owned());
    }
    None
}

/// The decimal number right after `marker`, if any.
pub(super) fn number_after(message: &str, marker: &str) -> Option<u64> {
    let rest = &message[message.find(marker)? + marker.len()..];
    let digits: &str = &rest[..rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len())];
    digits.parse().ok()
}

/// The peer public key tapd names with "peer=<hex>" or "peer <hex>" (66 hex characters).
pub(super) fn peer_in(message: &str) -> Option<String> {
    ["peer=", "peer "].iter().find_map(|marker| {
        message.match_indices(marker).find_map(|(at, _)| {
            let rest = &message[at + marker.len()..];
            let hex_len = rest
                .find(|c: char| !c.is_ascii_hexdigit())
                .unwrap_or(rest.len());
            (hex_len == 66).then(|| rest[..hex_len].to_owned())
        })
    })
}

/// Whether an error of type `T` is in the status's source chain.
pub(super) fn chain_has<T: StdError + 'static>(status: &Status) -> bool {
    find_in_chain::<T>(status).is_some()
}

/// The first error of type `T` in the status's source chain. `io::Error` hides the error it
/// wraps from `source()` (it returns the inner error's source instead), so each `io::Error` is
/// also opened with `get_ref`.
pub(super) fn find_in_chain<T: StdError + 'static>(status: &Status) -> Option<&T> {
    let mut next: Option<&(dyn StdError + 'static)> = status.source();
    while let Some(err) = next {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(inner) = err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            let inner: &(dyn StdError + 'static) = inner;
            if let Some(found) = inner.downcast_ref::<T>() {
                return Some(found);
            }
        }
        next = err.source();
    }
    None
}
