//! The simnet's gRPC servers: each node is one server speaking lnd's and tapd's services (as a
//! litd node in integrated mode does), and the edge also answers as a price oracle.
//!
//! This module owns the translation between gRPC and the [`model`](crate::simnet::model) and
//! the per-call fault knobs (a down node answers `UNAVAILABLE`, latency is slept before
//! answering, the drop-streams epoch ends open streams). It decides nothing about payments,
//! invoices or quotes: every rule is the model's. It binds no sockets either; `simnet::run`
//! does, and hands each node's [`tonic::service::Routes`] from [`node_routes`] to a server.
//!
//! | file | services |
//! |---|---|
//! | `lnd.rs` | `lnrpc.Lightning`, `routerrpc.Router`, `invoicesrpc.Invoices` |
//! | `tapd.rs` | `taprpc.TaprootAssets`, `rfqrpc.Rfq`, `tapchannelrpc.TaprootAssetChannels` |
//! | `oracle.rs` | `priceoraclerpc.PriceOracle` (edge only) |

mod convert;
mod lnd;
mod oracle;
mod state;
mod status;
mod stream;
mod tapd;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use tokio::sync::watch;
use tonic::Status;
use tonic::service::Routes;

use crate::lightning::proto::{
    invoicesrpc, lnrpc, priceoraclerpc, rfqrpc, routerrpc, tapchannelrpc, taprpc,
};
use crate::simnet::auth::{Enforced, MacaroonAuth};
use crate::simnet::model::{
    AssetInfo, NodeId, PayError, Payment, PaymentHash, PaymentStatus, Simnet,
};

pub use state::SimnetHandle;

use stream::{Poll, RpcStream, StreamCtx};

/// One node's view of the shared network: what every handler of that node's services holds.
#[derive(Clone)]
pub(crate) struct NodeService {
    /// The node these services answer for.
    pub(crate) node: NodeId,
    /// The shared network.
    pub(crate) net: SimnetHandle,
    /// Becomes `true` when the servers shut down; open streams end on it.
    pub(crate) stop: watch::Receiver<bool>,
}

impl NodeService {
    /// Applies the node's fault knobs before a call is answered: sleeps the latency, then
    /// refuses the call if the node is down (checked after the sleep, so a knob flipped while a
    /// call waits takes effect). Returns `self` so handlers read `let svc = self.0.gate().await?`.
    pub(crate) async fn gate(&self) -> Result<&Self, Status> {
        let latency = self.net.read(|m| m.faults(self.node).latency);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if self.net.read(|m| m.faults(self.node).down) {
            return Err(Status::unavailable("node is down"));
        }
        Ok(self)
    }

    pub(crate) fn streams(&self) -> StreamCtx {
        StreamCtx {
            node: self.node,
            net: self.net.clone(),
            stop: self.stop.clone(),
        }
    }

    /// The payment record to stream for a payment attempt's outcome, or the RPC error lnd or
    /// tapd would return instead of streaming (see [`status::payment_rpc_error`]). A failed
    /// attempt is streamed as the FAILED record the model filed for it.
    pub(crate) fn settle_pay_result(
        &self,
        result: Result<Payment, PayError>,
        payment_request: &str,
        via: &status::PayVia<'_>,
    ) -> Result<Payment, Status> {
        let e = match result {
            Ok(p) => return Ok(p),
            Err(e) => e,
        };
        if let Some(status) = status::payment_rpc_error(&e, self.node, via) {
            return Err(status);
        }
        let now = self.net.now();
        self.net.read(|m| {
            let hash = match &e {
                PayError::UnknownInvoice { hash, .. } => Some(*hash),
                _ => m
                    .decode_pay_req(self.node, payment_request)
                    .ok()
                    .map(|p| p.payment_hash),
            };
            if let Some(p) = hash.and_then(|h| m.payment(self.node, &h).ok()) {
                return Ok(p.clone());
            }
            // The payee never saw the payment (unknown invoice): nothing was filed, so
            // describe the failure the way lnd would report the attempt.
            let hash = hash.ok_or_else(|| Status::unknown(e.to_string()))?;
            Ok(failed_without_record(
                self.node,
                hash,
                payment_request,
                &e,
                now,
            ))
        })
    }

    /// The updates of payment `p`: its state now (announced as IN_FLIGHT first when
    /// `announce` is set, as SendPaymentV2 does), then its final state once it has one.
    /// `first` goes before everything (tapd's accepted sell quote); `wrap` makes each
    /// `lnrpc.Payment` the stream's message type.
    pub(crate) fn payment_updates<T: Send + 'static>(
        &self,
        rpc: &'static str,
        p: &Payment,
        no_inflight_updates: bool,
        first: Vec<T>,
        wrap: fn(lnrpc::Payment) -> T,
    ) -> RpcStream<T> {
        self.payment_stream(rpc, p, true, no_inflight_updates, first, wrap)
    }

    /// TrackPaymentV2's updates: the state now, then the final state once it has one.
    pub(crate) fn track_payment<T: Send + 'static>(
        &self,
        rpc: &'static str,
        p: &Payment,
        no_inflight_updates: bool,
        first: Vec<T>,
        wrap: fn(lnrpc::Payment) -> T,
    ) -> RpcStream<T> {
        self.payment_stream(rpc, p, false, no_inflight_updates, first, wrap)
    }

    fn payment_stream<T: Send + 'static>(
        &self,
        rpc: &'static str,
        p: &Payment,
        announce: bool,
        no_inflight: bool,
        mut first: Vec<T>,
        wrap: fn(lnrpc::Payment) -> T,
    ) -> RpcStream<T> {
        let done = convert::is_final(p);
        if !no_inflight && (announce || !done) {
            first.push(wrap(in_flight(p)));
        }
        if done {
            first.push(wrap(convert::payment(p)));
            return self.streams().finished(first);
        }
        let (payer, hash) = (self.node, p.payment_hash);
        self.streams()
            .spawn(rpc, first, move |m, _| match m.payment(payer, &hash) {
                Ok(p) if convert::is_final(p) => Poll::Done(vec![wrap(convert::payment(p))]),
                Ok(_) => Poll::More(Vec::new()),
                Err(e) => Poll::Fail(status::query(e)),
            })
    }
}

/// `p` as it looked while in flight (no preimage, no failure yet).
fn in_flight(p: &Payment) -> lnrpc::Payment {
    let mut msg = convert::payment(p);
    msg.status = lnrpc::payment::PaymentStatus::InFlight as i32;
    msg.payment_preimage.clear();
    msg.failure_reason = 0;
    for h in &mut msg.htlcs {
        h.status = lnrpc::htlc_attempt::HtlcStatus::InFlight as i32;
        h.resolve_time_ns = 0;
        h.preimage.clear();
    }
    msg
}

/// A FAILED payment for an attempt the model filed nothing for.
fn failed_without_record(
    payer: NodeId,
    hash: PaymentHash,
    payment_request: &str,
    e: &PayError,
    now: u64,
) -> Payment {
    let payee = match e {
        PayError::UnknownInvoice { node, .. } => *node,
        _ => payer,
    };
    Payment {
        payment_index: 0,
        payer,
        payee,
        payment_hash: hash,
        payment_request: payment_request.to_owned(),
        value_msat: 0,
        fee_msat: 0,
        asset: None,
        created_at: now,
        status: PaymentStatus::Failed {
            reason: e.failure_reason(),
            message: e.to_string(),
            failed_at: now,
        },
    }
}

/// The checks of a node's macaroons: lnd's services accept only macaroons from the node's lnd
/// root key, tapd's only from its tapd root key, as litd in integrated mode checks tapd's
/// macaroon on tapd's services; each call must also carry the permissions its method requires
/// (`simnet::permissions`). The price oracle takes none, like tapd's sample oracle.
#[derive(Clone, Debug)]
pub(crate) struct NodeAuth {
    /// Checks lnd macaroons (admin, invoice, readonly).
    pub(crate) lnd: MacaroonAuth,
    /// Checks the tapd admin macaroon.
    pub(crate) tapd: MacaroonAuth,
}

/// Every service of `node` (plus the price oracle on the edge), each behind `auth` by method
/// ([`Enforced`] sees the request's path, which a tonic interceptor does not).
pub(crate) fn node_routes(
    node: NodeId,
    net: SimnetHandle,
    stop: watch::Receiver<bool>,
    auth: NodeAuth,
) -> Routes {
    let svc = NodeService { node, net, stop };
    let lnd = Arc::new(lnd::Lnd(svc.clone()));
    let tapd = Arc::new(tapd::Tapd(svc.clone()));
    let mut routes = Routes::default()
        .add_service(Enforced::new(
            lnrpc::lightning_server::LightningServer::from_arc(lnd.clone()),
            auth.lnd.clone(),
        ))
        .add_service(Enforced::new(
            routerrpc::router_server::RouterServer::from_arc(lnd.clone()),
            auth.lnd.clone(),
        ))
        .add_service(Enforced::new(
            invoicesrpc::invoices_server::InvoicesServer::from_arc(lnd),
            auth.lnd,
        ))
        .add_service(Enforced::new(
            taprpc::taproot_assets_server::TaprootAssetsServer::from_arc(tapd.clone()),
            auth.tapd.clone(),
        ))
        .add_service(Enforced::new(
            rfqrpc::rfq_server::RfqServer::from_arc(tapd.clone()),
            auth.tapd.clone(),
        ))
        .add_service(Enforced::new(
            tapchannelrpc::taproot_asset_channels_server::TaprootAssetChannelsServer::from_arc(
                tapd,
            ),
            auth.tapd,
        ));
    if node == NodeId::Edge {
        routes = routes.add_service(priceoraclerpc::price_oracle_server::PriceOracleServer::new(
            oracle::Oracle(svc),
        ));
    }
    routes
}

/// The model's current asset, read once per call.
fn asset_of(m: &Simnet) -> AssetInfo {
    m.asset().clone()
}
