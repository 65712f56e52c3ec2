//! [`BackendError`]: the one error type of every node adapter, from reading a node's
//! credentials to tapd refusing a quote.
//!
//! This module owns the mapping from what a node (or the transport to it) reports to what
//! tapgate's callers can act on: each variant keeps its cause and says what to do next. It must
//! not log, retry or decide policy (falling back to a sats invoice, say); the adapters and the
//! mint do that, by matching on the variants.
//!
//! tapd reports its domain failures as gRPC `Unknown` statuses carrying Go error strings, so
//! [`BackendError::from_status`] recognises them by their text. The texts are tapd's own, read
//! from `rpcserver/rpcserver.go` (`AddInvoice`, `validateInvoiceAmount`, `acquireBuyOrder`,
//! `checkOverpayment`, `AddAssetBuyOrder`, `SendPayment`) and issue #1577 for the channel
//! lookup; the unit tests below carry one sample of each. A text tapd changes falls back to
//! [`BackendError::Status`], which still keeps the status, so nothing is lost but the hint.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use tonic::{Code, Status};

mod classify;

use classify::*;

/// The two files a node connection reads, named as the settings that point at them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeFile {
    /// The node's self-signed TLS certificate (`tls.cert`, PEM).
    TlsCert,
    /// The node's macaroon (binary, e.g. `admin.macaroon`).
    Macaroon,
}

impl NodeFile {
    /// The configuration setting that names this file.
    pub fn setting(self) -> &'static str {
        match self {
            NodeFile::TlsCert => "tls_cert_path",
            NodeFile::Macaroon => "macaroon_path",
        }
    }
}

impl fmt::Display for NodeFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeFile::TlsCert => "TLS certificate",
            NodeFile::Macaroon => "macaroon",
        })
    }
}

/// Why dialing a node failed, below gRPC. The pinned-TLS connector returns these; tonic wraps
/// them in its `ConnectError` and then in a `Status`, and [`BackendError::from_call`] finds them
/// again in the status's source chain.
#[derive(Debug, thiserror::Error)]
pub enum ConnectFailure {
    /// The TCP connection could not be opened (refused, unreachable, DNS).
    #[error("TCP connection failed: {0}")]
    Tcp(#[source] io::Error),
    /// The TLS handshake failed: the node presented a certificate other than the pinned one, or
    /// could not prove it holds the pinned certificate's key, or spoke no TLS at all.
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] io::Error),
    /// The handshake succeeded but the node did not agree to HTTP/2 through ALPN, so it is not
    /// a gRPC port (lnd and tapd always offer `h2`).
    #[error("the server did not negotiate HTTP/2 (ALPN h2), so it is not a gRPC port")]
    NoHttp2,
}

/// Everything that can go wrong between tapgate and an lnd, tapd or litd node.
///
/// Variants that come from a gRPC status keep it as their [`source`](StdError::source) and
/// report its [`code`](BackendError::code).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// A credential file could not be read. The message names the path, never the contents.
    #[error("cannot read the node's {file} at {}: {source}; check the {} setting", path.display(), file.setting())]
    ReadFile {
        /// Which file.
        file: NodeFile,
        /// Where it was looked for.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// The TLS certificate file holds no usable PEM certificate.
    #[error("the TLS certificate at {} is unusable: {reason}; tls_cert_path must point at the node's tls.cert (PEM, `-----BEGIN CERTIFICATE-----`)", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The macaroon file is not a binary macaroon.
    #[error("the macaroon at {} is unusable: {reason}; macaroon_path must point at the node's binary macaroon file (lnd: admin.macaroon or a baked one, tapd: admin.macaroon)", path.display())]
    BadMacaroon {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The configured endpoint is not `host:port` or `https://host:port`.
    #[error(
        "invalid node endpoint {endpoint:?}: {reason}; write host:port, e.g. 127.0.0.1:10009 (lnd), 127.0.0.1:10029 (tapd) or 127.0.0.1:8443 (litd)"
    )]
    InvalidEndpoint {
        /// The endpoint as configured.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The TLS client configuration could not be built (a rustls provider without the
    /// protocol versions it needs; not expected with the bundled ring provider).
    #[error("cannot build the TLS client configuration: {0}")]
    TlsConfig(#[source] rustls::Error),

    /// A channel was built outside a Tokio runtime, which tonic needs for its background task.
    #[error("node connections must be created inside a Tokio runtime")]
    NoRuntime,

    /// The node could not be reached: TCP failed, or the port does not speak gRPC.
    #[error(
        "cannot connect to {endpoint}: {detail}; check that the node is running and that the endpoint is its gRPC port (lnd 10009, tapd 10029, litd 8443)"
    )]
    Connect {
        /// The endpoint dialed.
        endpoint: String,
        /// The transport failure, as text (the full chain is in the source).
        detail: String,
        /// The call's status, whose source chain holds the transport error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },

    /// The TLS handshake failed: the node is not the one whose certificate is pinned.
    #[error(
        "TLS handshake with {endpoint} failed: {detail}; the node's certificate must be exactly the one in tls_cert_path (copy it again if the node regenerated it: lnd does when it expires or its IP addresses change)"
    )]
    Tls {
        /// The endpoint dialed.
        endpoint: String,
        /// The handshake failure, as text (the full chain is in the source).
        detail: String,
        /// The call's status, whose source chain holds the rustls error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },

    /// The call did not complete within the connection's per-call timeout.
    #[error(
        "{call} got no answer within {after:?}; the node may be overloaded or stuck (raise the node timeout if such calls are legitimately slow)"
    )]
    Deadline {
        /// The RPC.
        call: &'static str,
        /// The timeout that expired.
        after: Duration,
        /// The status tonic or the node reported.
        #[source]
        status: Status,
    },

    /// The node refused the macaroon: wrong node, wrong file, or missing permissions.
    #[error("the node refused the macaroon for {call}: {}; check that macaroon_path is this node's macaroon (for tapd behind litd: tapd's admin.macaroon) and that it grants what {call} needs", status.message())]
    Unauthorized {
        /// The RPC.
        call: &'static str,
        /// The node's status.
        #[source]
        status: Status,
    },

    /// A call failed with a status tapgate has no more specific variant for.
    #[error("{call} failed: {code:?}: {message}{}", hint(*code))]
    Status {
        /// The RPC.
        call: &'static str,
        /// The status code (also available as [`BackendError::code`]).
        code: Code,
        /// The node's message.
        message: String,
        /// The status itself.
        #[source]
        status: Status,
    },

    /// The node answered, but with something tapgate cannot use.
    #[error(
        "the node's answer to {call} is invalid: {what}; check that the node runs a supported version"
    )]
    InvalidResponse {
        /// The RPC.
        call: &'static str,
        /// What is wrong with the answer.
        what: String,
    },

    /// lnd's `ChannelBalance` carried `custom_channel_data` that is not the JSON tapd writes
    /// there, so the node's asset units in channels are unknown. A plain lnd (no tapd in its
    /// process) leaves its own binary encoding in that field.
    #[error(
        "{call} returned custom_channel_data that is not tapd's asset channel JSON ({source}); asset channel balances need a node whose lnd runs tapd in-process (litd integrated mode or tapd-integrated) at a supported version"
    )]
    InvalidChannelData {
        /// The RPC.
        call: &'static str,
        /// Why the JSON was refused.
        #[source]
        source: serde_json::Error,
    },

    /// tapgate refused to send a call because its own input cannot be expressed to the node (a
    /// peer that is not a public key, an asset named in a way the call does not take).
    #[error(
        "{call} was not sent: {what}; check the node settings (asset id, edge node public key)"
    )]
    InvalidRequest {
        /// The RPC.
        call: &'static str,
        /// What is wrong with the request.
        what: String,
    },

    /// lnd gave up on a payment: every attempt failed, so nothing was paid.
    #[error(
        "the payment failed ({reason}); nothing was paid: check the channels' liquidity and the invoice, then retry or pay another way"
    )]
    PaymentFailed {
        /// lnd's failure reason (`FAILURE_REASON_NO_ROUTE`, …).
        reason: String,
    },

    /// tapd found no active asset channel (with this peer, when one was named). An existing
    /// channel whose peer is offline is inactive and counts as none (taproot-assets#1577).
    #[error("no active asset channel with {} — is it online? (tapd: {})", peer_or_any(peer.as_deref()), status.message())]
    NoAssetChannel {
        /// The peer's public key (hex), when tapd named one.
        peer: Option<String>,
        /// tapd's status.
        #[source]
        status: Status,
    },

    /// The edge node rejected the quote request, sent back a quote tapd found invalid (rates
    /// outside the accepted deviation, for instance), or did not answer in time.
    #[error("the quote from {} was not obtained: {reason}; check the edge node's price oracle and that it is online, or take the payment in sats", peer_or_any(peer.as_deref()))]
    QuoteRejected {
        /// The peer's public key (hex), when tapd named one.
        peer: Option<String>,
        /// tapd's description of the rejection.
        reason: String,
        /// tapd's status.
        #[source]
        status: Status,
    },

    /// The asset amount is below what one HTLC can carry at the quoted rate (the 354-sat dust
    /// limit expressed in asset units), so tapd will not create the invoice.
    #[error(
        "{units} asset units is below the smallest amount an asset HTLC can carry ({min_units} units at the quoted rate); raise the price to at least {min_units} units or take this payment in sats"
    )]
    BelowMinTransportable {
        /// The units asked for.
        units: u64,
        /// The minimum at the quoted rate.
        min_units: u64,
        /// tapd's status.
        #[source]
        status: Status,
    },

    /// Paying this amount with assets is below the minimum asset payment at the quoted rate
    /// (tapd's `allow_overpay` would overpay to reach it).
    #[error(
        "paying {msat} msat with assets is below the smallest asset payment ({min_msat} msat at the quoted rate); pay this invoice in sats instead"
    )]
    BelowMinTransportableMsat {
        /// The payment amount, fee limit included.
        msat: u64,
        /// The minimum at the quoted rate.
        min_msat: u64,
        /// tapd's status.
        #[source]
        status: Status,
    },

    /// The quote named in the call is no longer known to tapd: it expired (tapd forgets expired
    /// quotes) or never existed.
    #[error("the RFQ quote has expired (tapd no longer knows it); request a new quote")]
    QuoteExpired {
        /// tapd's status.
        #[source]
        status: Status,
    },

    /// Every quote tapd obtained expires before the invoice would: an invoice outliving its
    /// quote could be paid in sats instead of assets, so tapd (≥ 0.8) refuses it.
    #[error(
        "every quote expires before the invoice would; set the invoice expiry to at most the quote's lifetime"
    )]
    QuoteOutlivedByInvoice {
        /// tapd's status.
        #[source]
        status: Status,
    },
}

impl BackendError {
    /// tapd's `SendPayment` found no quote at all and said no more ("failed to acquire any
    /// quotes"): it logs the reason instead of returning it.
    pub fn is_no_quote_at_all(&self) -> bool {
        matches!(self, Self::QuoteRejected { status, .. }
            if status.message().to_ascii_lowercase().contains("failed to acquire any quotes"))
    }

    /// Classifies a failed call's status: macaroon refusals, then tapd's domain errors by their
    /// text, then the generic [`BackendError::Status`].
    ///
    /// This needs nothing but the status. Adapters holding a connection should prefer
    /// [`BackendError::from_call`] (or `NodeConnection::call_error`), which also recognises
    /// deadlines and transport failures and names the endpoint.
    pub fn from_status(call: &'static str, status: Status) -> Self {
        if is_macaroon_refusal(&status) {
            return BackendError::Unauthorized { call, status };
        }
        let message = status.message().to_ascii_lowercase();
        if let Some((units, min_units)) = below_min_units(&message) {
            return BackendError::BelowMinTransportable {
                units,
                min_units,
                status,
            };
        }
        if let Some((msat, min_msat)) = below_min_msat(&message) {
            return BackendError::BelowMinTransportableMsat {
                msat,
                min_msat,
                status,
            };
        }
        if message.contains("with sufficient expiry")
            || message.contains("filtering for sufficient quote expiry")
        {
            return BackendError::QuoteOutlivedByInvoice { status };
        }
        if NO_CHANNEL.iter().any(|m| message.contains(m)) {
            let peer = peer_in(&message);
            return BackendError::NoAssetChannel { peer, status };
        }
        if message.contains("quote id did not match an accepted quote") {
            return BackendError::QuoteExpired { status };
        }
        if let Some(reason) = quote_rejection(&message, status.message()) {
            let peer = peer_in(&message);
            return BackendError::QuoteRejected {
                peer,
                reason,
                status,
            };
        }
        BackendError::Status {
            call,
            code: status.code(),
            message: status.message().to_owned(),
            status,
        }
    }

    /// Classifies a failed call's status knowing the connection it went over: a deadline (the
    /// node's `DeadlineExceeded`, or tonic's per-call timeout) becomes
    /// [`BackendError::Deadline`], a failure to connect becomes [`BackendError::Connect`] or
    /// [`BackendError::Tls`], and everything else goes through [`BackendError::from_status`].
    pub fn from_call(
        call: &'static str,
        endpoint: &str,
        timeout: Duration,
        status: Status,
    ) -> Self {
        if status.code() == Code::DeadlineExceeded || chain_has::<tonic::TimeoutExpired>(&status) {
            return BackendError::Deadline {
                call,
                after: timeout,
                status,
            };
        }
        let failure = find_in_chain::<ConnectFailure>(&status).map(|failure| {
            (
                failure.to_string(),
                matches!(failure, ConnectFailure::Tls(_)),
            )
        });
        if let Some((detail, is_tls)) = failure {
            let endpoint = endpoint.to_owned();
            let source = Box::new(status);
            return if is_tls {
                BackendError::Tls {
                    endpoint,
                    detail,
                    source,
                }
            } else {
                BackendError::Connect {
                    endpoint,
                    detail,
                    source,
                }
            };
        }
        // A connect error that did not come from the connector itself (tonic's connect timeout).
        if let Some(detail) = find_in_chain::<tonic::ConnectError>(&status).map(|e| e.to_string()) {
            return BackendError::Connect {
                endpoint: endpoint.to_owned(),
                detail,
                source: Box::new(status),
            };
        }
        BackendError::from_status(call, status)
    }

    /// An answer the adapter cannot use (a missing field, a malformed hash).
    pub fn invalid_response(call: &'static str, what: impl Into<String>) -> Self {
        BackendError::InvalidResponse {
            call,
            what: what.into(),
        }
    }

    /// A request tapgate will not send (see [`BackendError::InvalidRequest`]).
    pub fn invalid_request(call: &'static str, what: impl Into<String>) -> Self {
        BackendError::InvalidRequest {
            call,
            what: what.into(),
        }
    }

    /// The gRPC status code, for variants that come from a status.
    pub fn code(&self) -> Option<Code> {
        match self {
            BackendError::Status { code, .. } => Some(*code),
            BackendError::Deadline { status, .. }
            | BackendError::Unauthorized { status, .. }
            | BackendError::NoAssetChannel { status, .. }
            | BackendError::QuoteRejected { status, .. }
            | BackendError::BelowMinTransportable { status, .. }
            | BackendError::BelowMinTransportableMsat { status, .. }
            | BackendError::QuoteExpired { status }
            | BackendError::QuoteOutlivedByInvoice { status } => Some(status.code()),
            BackendError::Connect { .. } | BackendError::Tls { .. } => Some(Code::Unavailable),
            BackendError::ReadFile { .. }
            | BackendError::BadCertificate { .. }
            | BackendError::BadMacaroon { .. }
            | BackendError::InvalidEndpoint { .. }
            | BackendError::TlsConfig(_)
            | BackendError::NoRuntime
            | BackendError::InvalidResponse { .. }
            | BackendError::InvalidChannelData { .. }
            | BackendError::InvalidRequest { .. }
            | BackendError::PaymentFailed { .. } => None,
        }
    }
}

/// What to do about a generic status, by code. Empty when the message has to speak for itself.
fn hint(code: Code) -> &'static str {
    match code {
        Code::Unavailable => "; the node is unreachable or restarting, retry shortly",
        Code::Unimplemented => {
            "; the node does not offer this call: check that its version is supported"
        }
        Code::ResourceExhausted => "; the node is overloaded or the message too large",
        _ => "",
    }
}

fn peer_or_any(peer: Option<&str>) -> &str {
    peer.unwrap_or("that peer")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: &str = "035da0a856a9531f47efcef053c985cf02352a06eb3275fd3a6ae2fe8a17ca0887";

    fn unknown(message: &str) -> BackendError {
        BackendError::from_status("AddInvoice", Status::unknown(message))
    }

    #[test]
    fn no_asset_channel_names_the_peer() {
        // The text from taproot-assets#1577 (peer offline, so its channel is inactive).
        let err = unknown(&format!(
            "error finding asset channel to use: no asset channels found for \
             AssetSpecifier(id=03b01073bef443026d3703511d58463687ecd668b65169bba9deefafa7a11cfd, \
             group_pub_key=) and peer={PEER}"
        ));
        match &err {
            BackendError::NoAssetChannel { peer, .. } => assert_eq!(peer.as_deref(), Some(PEER)),
            other => panic!("expected NoAssetChannel, got {other:?}"),
        }
        assert_eq!(err.code(), Some(Code::Unknown));
        assert!(err.to_string().contains("is it online?"));

        // tapd v0.8.1's text, as the real regtest network returns it for bob, who has no asset
        // channel (rfq/manager.go `FetchChannel`).
        let err = unknown(
            "error finding asset channel to use: no asset channel balance found for \
             AssetSpecifier(id=4d2dfb6cd4a83a140577119e5bde2f448e49ba40cfa6dde3fcd53eec47c9403f, \
             group_pub_key=)",
        );
        assert!(matches!(
            err,
            BackendError::NoAssetChannel { peer: None, .. }
        ));

        let err = unknown("error checking peer channel: no active channel found with peer 02abcd");
        assert!(matches!(
            err,
            BackendError::NoAssetChannel { peer: None, .. }
        ));
        let err = unknown("no asset channels available for quote negotiation");
        assert!(matches!(
            err,
            BackendError::NoAssetChannel { peer: None, .. }
        ));
    }

    #[test]
    fn below_min_transportable_units() {
        let err = unknown(
            "error validating invoice amount: cannot create invoice for 10000 asset units, as \
             the minimal transportable amount is 354000 units with the current rate of \
             100000000000/1000 units/BTC",
        );
        assert!(
            matches!(
                err,
                BackendError::BelowMinTransportable {
                    units: 10_000,
                    min_units: 354_000,
                    ..
                }
            ),
            "{err:?}"
        );
        // acquireBuyOrder's wording, wrapped by AddInvoice.
        let err = unknown(
            "error acquiring buy order for invoice: cannot create invoice over 5 asset units, as \
             the minimal transportable amount is 354 units with the current rate of 100000000 \
             units/BTC",
        );
        assert!(matches!(
            err,
            BackendError::BelowMinTransportable {
                units: 5,
                min_units: 354,
                ..
            }
        ));
    }

    #[test]
    fn below_min_transportable_msat() {
        let err = unknown(
            "rejecting payment of 10000 mSAT (invoice amount + user-defined routing fee limit), \
             minimum amount for an asset payment is 354001 mSAT with the current rate of 100000000 \
             units/BTC; override this check by specifying the allow_overpay flag",
        );
        assert!(
            matches!(
                err,
                BackendError::BelowMinTransportableMsat {
                    msat: 10_000,
                    min_msat: 354_001,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = unknown(
            "rejecting payment of 5 mSAT (invoice amount + user-defined routing fee limit), \
             smallest payable amount with assets is equivalent to 1000 mSAT",
        );
        assert!(matches!(
            err,
            BackendError::BelowMinTransportableMsat {
                msat: 5,
                min_msat: 1000,
                ..
            }
        ));
    }

    #[test]
    fn quote_expiry_errors() {
        let err = unknown(
            "no quotes with sufficient expiry for the requested invoice expiry of \
             2026-02-01 10:00:00 +0000 UTC",
        );
        assert!(
            matches!(err, BackendError::QuoteOutlivedByInvoice { .. }),
            "{err:?}"
        );
        let err = unknown("no route hints remain after filtering for sufficient quote expiry");
        assert!(matches!(err, BackendError::QuoteOutlivedByInvoice { .. }));
        let err = unknown("quote ID did not match an accepted quote");
        assert!(matches!(err, BackendError::QuoteExpired { .. }), "{err:?}");
    }

    #[test]
    fn quote_rejections_keep_peer_and_reason() {
        let err = unknown(&format!(
            "error acquiring buy order for invoice: error adding buy order: peer {PEER} rejected \
             the quote, code: 1, error message: price oracle unavailable"
        ));
        match &err {
            BackendError::QuoteRejected { peer, reason, .. } => {
                assert_eq!(peer.as_deref(), Some(PEER));
                assert_eq!(reason, "code: 1, error message: price oracle unavailable");
            }
            other => panic!("expected QuoteRejected, got {other:?}"),
        }
        let err = unknown(&format!(
            "peer {PEER} rejected quote Reject(err=INVALID_ASSET_RATES)"
        ));
        assert!(matches!(
            err,
            BackendError::QuoteRejected { peer: Some(_), .. }
        ));
        let err = unknown(&format!(
            "peer {PEER} sent back an invalid quote, status: INVALID_ASSET_RATES"
        ));
        assert!(
            matches!(&err, BackendError::QuoteRejected { reason, .. } if reason == "status: INVALID_ASSET_RATES")
        );
        let err = unknown(&format!("timeout waiting for response (peer={PEER})"));
        assert!(matches!(
            err,
            BackendError::QuoteRejected { peer: Some(_), .. }
        ));
    }

    #[test]
    fn macaroon_refusals() {
        let err = BackendError::from_status(
            "GetInfo",
            Status::unauthenticated("expected 1 macaroon, got 0"),
        );
        assert!(matches!(err, BackendError::Unauthorized { .. }));
        assert_eq!(err.code(), Some(Code::Unauthenticated));
        // lnd answers Unknown with its verifier's text.
        let err = BackendError::from_status(
            "GetInfo",
            Status::unknown("verification failed: signature mismatch after caveat verification"),
        );
        assert!(matches!(err, BackendError::Unauthorized { .. }));
        assert!(err.to_string().contains("macaroon_path"));
    }

    #[test]
    fn anything_else_is_a_generic_status() {
        let err = BackendError::from_status(
            "LookupInvoice",
            Status::not_found("unable to locate invoice"),
        );
        match &err {
            BackendError::Status {
                call,
                code,
                message,
                ..
            } => {
                assert_eq!(*call, "LookupInvoice");
                assert_eq!(*code, Code::NotFound);
                assert_eq!(message, "unable to locate invoice");
            }
            other => panic!("expected Status, got {other:?}"),
        }
        assert!(err.source().is_some());
        let err = BackendError::from_status("GetInfo", Status::unavailable("connection reset"));
        assert!(err.to_string().contains("retry"));
    }

    #[test]
    fn deadlines_need_the_connection_context() {
        let timeout = Duration::from_secs(3);
        let err = BackendError::from_call(
            "GetInfo",
            "127.0.0.1:10009",
            timeout,
            Status::deadline_exceeded("context deadline exceeded"),
        );
        assert!(matches!(err, BackendError::Deadline { after, .. } if after == timeout));
        // tonic's own per-call timeout: Cancelled with TimeoutExpired as the source.
        let status = Status::from_error(Box::new(tonic::TimeoutExpired(())));
        let err = BackendError::from_call("GetInfo", "127.0.0.1:10009", timeout, status);
        assert!(matches!(err, BackendError::Deadline { .. }), "{err:?}");
    }

    #[test]
    fn connect_failures_are_found_through_io_errors() {
        let tls = io::Error::new(io::ErrorKind::InvalidData, "invalid peer certificate");
        let status = Status::from_error(Box::new(tonic::ConnectError(Box::new(
            ConnectFailure::Tls(tls),
        ))));
        let err =
            BackendError::from_call("GetInfo", "127.0.0.1:10009", Duration::from_secs(1), status);
        assert!(
            matches!(&err, BackendError::Tls { endpoint, .. } if endpoint == "127.0.0.1:10009"),
            "{err:?}"
        );
        assert!(err.to_string().contains("tls_cert_path"));

        // Wrapped in an io::Error, as hyper-util's connector plumbing may do.
        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
        let wrapped = io::Error::other(ConnectFailure::Tcp(refused));
        let status = Status::from_error(Box::new(tonic::ConnectError(Box::new(wrapped))));
        let err =
            BackendError::from_call("GetInfo", "127.0.0.1:10009", Duration::from_secs(1), status);
        assert!(matches!(err, BackendError::Connect { .. }), "{err:?}");
    }

    #[test]
    fn errors_cross_tasks() {
        fn send_sync_static<T: Send + Sync + 'static>() {}
        send_sync_static::<BackendError>();
    }

    #[test]
    fn read_errors_name_the_path_and_setting() {
        let err = BackendError::ReadFile {
            file: NodeFile::Macaroon,
            path: PathBuf::from("/nodes/alice/admin.macaroon"),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        let text = err.to_string();
        assert!(text.contains("/nodes/alice/admin.macaroon"), "{text}");
        assert!(text.contains("macaroon_path"), "{text}");
    }
}
