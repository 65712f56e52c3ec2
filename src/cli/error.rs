//! [`CliError`]: why a command failed, in the words the user reads on stderr.
//!
//! Each message says what went wrong and what to do next; `cli::report` prints it with the
//! causes that add to it. This module owns the wording and the recognition of node errors a
//! user acts on differently (an expired invoice); it must not print or decide exit codes.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::l402::caveat::CaveatError;
use crate::l402::header::HeaderError;
use crate::l402::verify::VerifyError;
use crate::l402::{IdentifierError, MacaroonError};
use crate::mint::MintError;
use crate::store::StoreError;

#[cfg(feature = "node")]
use super::spend_cap;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Configuration problem.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Store problem.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The input is not a macaroon.
    #[error("input is not a macaroon: {0}")]
    Macaroon(#[from] MacaroonError),
    /// The input is not an L402 header.
    #[error("input is not a valid L402 header: {0}")]
    Header(#[from] HeaderError),
    /// A caveat given on the command line is invalid, or widens an earlier one.
    #[error("caveat refused: {source}{}", if *.allow_unknown_helps { "; pass --allow-unknown to add it anyway (tapgate itself will then refuse the token)" } else { "" })]
    Caveat {
        /// Why.
        #[source]
        source: CaveatError,
        /// Whether `--allow-unknown` would let it through: only for `token attenuate`, and
        /// only for a caveat tapgate does not recognise (never for a widening).
        allow_unknown_helps: bool,
    },
    /// Bad hex argument.
    #[error("{what}: {source}")]
    Identifier {
        /// Which argument.
        what: &'static str,
        /// Why.
        #[source]
        source: IdentifierError,
    },
    /// Verification refused the token.
    #[error("token refused: {0}")]
    Refused(#[from] VerifyError),
    /// `token attenuate` was given nothing to add.
    #[error(
        "nothing to add: pass --caveat KEY=VALUE or a flag such as --budget-usd, --max-calls or --valid-for"
    )]
    NothingToAttenuate,
    /// `token attenuate`'s scoped flags cannot tell which service they are for.
    #[error(
        "the token grants {}; pass --services NAME to say which one the flags apply to", if granted.is_empty() { "no single service (it has no services caveat)".to_owned() } else { format!("several services ({})", granted.join(", ")) }
    )]
    AmbiguousService {
        /// The services the token grants.
        granted: Vec<String>,
    },
    /// `token attenuate --services` named a service the token does not grant.
    #[error(
        "the token does not grant service {name:?} (it grants: {}); a sub-agent's token can only keep services its parent has, so pass one of those to --services", granted.join(", ")
    )]
    ServiceNotGranted {
        /// The name passed.
        name: String,
        /// The services the token grants.
        granted: Vec<String>,
    },
    /// A `--valid-for` duration that does not parse.
    #[error(
        "--valid-for {0:?} is not a duration: pass a whole number with s, m, h or d (90s, 10m, 2h, 7d), or seconds"
    )]
    BadDuration(String),
    /// A `--service` value that is not `name[:tier]`.
    #[error("--service {0:?} must be name or name:tier with tier 0-255")]
    BadService(String),
    /// A price that cannot be converted.
    #[error("cannot convert the price: {0}")]
    Pricing(#[from] crate::pricing::PricingError),
    /// `token verify` or `token revoke` found no root-key store where the settings point.
    #[error(
        "no root-key store at {}: tokens are verified and revoked against the store that minted them. Run where `tapgate token mint` ran, or point at its data directory with --set data_dir=DIR, TAPGATE_DATA_DIR=DIR or data_dir in --config FILE (default ./data)", path.display()
    )]
    NoStore {
        /// Where the store was looked for (`data_dir/tapgate.sqlite`).
        path: PathBuf,
    },
    /// `tapgate node` without a network file or configured nodes.
    #[cfg(feature = "node")]
    #[error(
        "no nodes are configured, so node {node:?} cannot be found: pass --network DIR/network.toml (written by `tapgate simnet --dir DIR` or integration/regtest/up.sh DIR) or --config FILE with a [nodes.{node}] section (e.g. config/polar.toml)"
    )]
    NoNodes {
        /// The node asked for.
        node: String,
    },
    /// The node refused to pay an expired invoice.
    #[cfg(feature = "node")]
    #[error("the invoice expired at {valid_until}; nothing was paid: ask the payee for a new one")]
    InvoiceExpired {
        /// The expiry, as the node reports it (lnd: `2026-11-29 23:47:11 +0000 UTC`).
        valid_until: String,
        /// The node's error.
        #[source]
        source: Box<crate::lightning::error::BackendError>,
    },
    /// `--max-usd` refuses the payment before paying.
    #[cfg(feature = "node")]
    #[error(transparent)]
    Cap(#[from] spend_cap::CapError),
    /// A payment under `--max-usd` failed after its fee limit was lowered to keep the cap.
    #[cfg(feature = "node")]
    #[error(
        "the payment failed with its routing fee limited to {} msat, all that --max-usd {} leaves after the invoice's ${}; nothing was paid. The route may need a higher fee: --max-usd {} would allow the whole --max-fee-msat {}",
        .cap.fee_limit_msat, .cap.max_usd, .cap.invoice_usd, .cap.usd_for_requested_fee_limit, .cap.requested_fee_limit_msat
    )]
    FailedUnderCap {
        /// The payment as planned under the cap.
        cap: Box<spend_cap::CappedPayment>,
        /// The node's error.
        #[source]
        source: Box<crate::lightning::error::BackendError>,
    },
    /// The payment succeeded but cost more than `--max-usd`: the edge's rate moved between
    /// tapgate's check and the quote tapd negotiated for the payment.
    #[cfg(feature = "node")]
    #[error(
        "the payment succeeded (its result, with the preimage, is on stdout) but cost ${spent_usd}, more than --max-usd {max_usd}: the edge's rate changed between tapgate's quote and the one tapd negotiated for the payment"
    )]
    CapBrokenAfterPayment {
        /// What was spent.
        spent_usd: rust_decimal::Decimal,
        /// The cap.
        max_usd: rust_decimal::Decimal,
    },
    /// `--max-usd` on a sats payment, with no rate to value sats in dollars.
    #[cfg(feature = "node")]
    #[error(
        "--max-usd on a sats payment needs the dollar value of a sat, and neither source has it: {node} has no asset channel to ask the edge for a quote, and the network names no price oracle (oracle_endpoint in network.toml); pay without --max-usd (--max-fee-msat still bounds the fee) or from a node with an asset channel"
    )]
    NoUsdRate {
        /// The paying node.
        node: String,
    },
    /// Node wiring problem (unknown node, unreadable network file, bad asset id).
    #[cfg(feature = "node")]
    #[error(transparent)]
    NodeSetup(#[from] crate::app::BuildError),
    /// A node call failed.
    #[cfg(feature = "node")]
    #[error(transparent)]
    Backend(crate::lightning::error::BackendError),
    /// The simnet failed to start or stop.
    #[cfg(feature = "node")]
    #[error(transparent)]
    Simnet(#[from] crate::simnet::run::SimnetError),
    /// The simnet's servers failed while stopping.
    #[cfg(feature = "node")]
    #[error(transparent)]
    SimnetShutdown(#[from] crate::simnet::run::ShutdownError),
    /// The stop signals could not be listened for.
    #[cfg(unix)]
    #[error(transparent)]
    Signals(#[from] crate::shutdown::SignalError),
    /// Something the command needs is not given.
    #[error("{0}")]
    Missing(&'static str),
    /// Random source failure.
    #[error("cannot draw a token id from the OS random source")]
    Random(#[source] getrandom::Error),
    /// Writing to stdout failed.
    #[error("cannot print the result: {0}")]
    Output(#[from] serde_json::Error),
    /// A file or socket operation failed.
    #[cfg(feature = "node")]
    #[error("cannot {action} ({path}): {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A listener could not be bound.
    #[cfg(feature = "node")]
    #[error(
        "cannot listen on {addr} ({key}): {source}; is another tapgate running, or is the port taken? Change {key}"
    )]
    Bind {
        /// The setting.
        key: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The gateway's serving threads could not start.
    #[cfg(feature = "node")]
    #[error(
        "cannot start the gateway's worker threads: {0}; lower gateway.workers, or check the process's thread and descriptor limits"
    )]
    Workers(#[source] std::io::Error),
    /// The admin macaroon could not be read or written.
    #[cfg(feature = "node")]
    #[error(transparent)]
    AdminCredentials(#[from] crate::admin::grpc::CredentialsError),
    /// Shutdown did not finish within gateway.drain_secs.
    #[cfg(feature = "node")]
    #[error(transparent)]
    Drain(crate::shutdown::DrainTimedOut),
    /// `tapgate pay`: the request, the budget or the payment failed.
    #[cfg(all(feature = "node", feature = "sqlite"))]
    #[error(transparent)]
    Client(#[from] crate::client::http::ClientError),
    /// `tapgate pay` and `wallet spent`: the client's ledger failed.
    #[cfg(feature = "sqlite")]
    #[error(transparent)]
    Ledger(#[from] crate::client::ledger::LedgerError),
    /// `tapgate demo` could not run its scenario to the end (boxed: it is large, and rare).
    #[cfg(all(feature = "node", feature = "sqlite"))]
    #[error(transparent)]
    Demo(Box<crate::demo::DemoError>),
}

impl CliError {
    pub(super) fn caveat(source: CaveatError) -> Self {
        CliError::Caveat {
            source,
            allow_unknown_helps: false,
        }
    }
}

impl From<MintError> for CliError {
    /// The mint's errors in the words `tapgate token …` has always used for them.
    fn from(e: MintError) -> Self {
        match e {
            MintError::BadService(s) => CliError::BadService(s),
            MintError::Caveat(source) => CliError::caveat(source),
            MintError::Random(source) => CliError::Random(source),
            MintError::Store(e) => CliError::Store(e),
            MintError::Macaroon(e) => CliError::Macaroon(e),
            MintError::Header(e) => CliError::Header(e),
            MintError::Refused(e) => CliError::Refused(e),
        }
    }
}

#[cfg(feature = "node")]
impl From<crate::lightning::error::BackendError> for CliError {
    /// Node errors, with the ones a user acts on differently recognised by their text.
    fn from(e: crate::lightning::error::BackendError) -> Self {
        match expired_until(&e) {
            Some(valid_until) => CliError::InvoiceExpired {
                valid_until,
                source: Box::new(e),
            },
            None => CliError::Backend(e),
        }
    }
}

/// lnd refuses to pay an expired invoice with an RPC error "invoice expired. Valid until
/// 2026-11-29 23:47:11 +0000 UTC" (lightningnetwork/lnd lnrpc/routerrpc/router_backend.go,
/// v0.21.0-beta; tapd passes it on). The text sits in the gRPC status the error keeps as a
/// source; this returns the time after "Valid until".
#[cfg(feature = "node")]
fn expired_until(e: &crate::lightning::error::BackendError) -> Option<String> {
    const MARK: &str = "invoice expired. valid until ";
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(status) = err.downcast_ref::<tonic::Status>() {
            let message = status.message();
            // ASCII lower-casing keeps byte offsets, so the index applies to the original.
            if let Some(at) = message.to_ascii_lowercase().find(MARK) {
                let rest = message.get(at + MARK.len()..).unwrap_or_default();
                return Some(rest.trim().to_owned());
            }
        }
        next = err.source();
    }
    None
}

#[cfg(all(test, feature = "node"))]
mod tests {
    use super::*;

    #[test]
    fn an_expired_invoice_is_reported_as_expired() {
        use crate::lightning::error::BackendError;
        for message in [
            // lnd's router, word for word.
            "invoice expired. Valid until 2026-11-29 23:47:11 +0000 UTC",
            // The same passed on inside another message.
            "unable to send payment: invoice expired. Valid until 2026-11-29 23:47:11 +0000 UTC",
        ] {
            let e = BackendError::from_status("SendPaymentV2", tonic::Status::unknown(message));
            let e = CliError::from(e);
            match &e {
                CliError::InvoiceExpired { valid_until, .. } => {
                    assert_eq!(valid_until, "2026-11-29 23:47:11 +0000 UTC")
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(
                e.to_string(),
                "the invoice expired at 2026-11-29 23:47:11 +0000 UTC; nothing was paid: ask the payee for a new one"
            );
        }
        let other = BackendError::from_status("SendPaymentV2", tonic::Status::unknown("boom"));
        assert!(matches!(CliError::from(other), CliError::Backend(_)));
    }
}
