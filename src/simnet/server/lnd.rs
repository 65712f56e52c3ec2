//! lnd's services on a simnet node: `Lightning` (GetInfo, ChannelBalance with tapd's asset
//! channel JSON, AddInvoice, LookupInvoice, SubscribeInvoices, DecodePayReq), `Router`
//! (SendPaymentV2, TrackPaymentV2) and `Invoices` (hold invoices, SubscribeSingleInvoice).
//!
//! Each handler applies the node's fault knobs (`NodeService::gate`), makes one model call and
//! translates; the rules live in the model. Streams follow lnd: `SubscribeInvoices` replays from
//! the given indices then goes live, payment streams end at SUCCEEDED or FAILED, and
//! `SubscribeSingleInvoice` ends at SETTLED or CANCELED.

use tonic::{Request, Response, Status};

use super::NodeService;
use super::convert::{self, signed, unsigned};
use super::status;
use super::stream::{Poll, RpcStream};
use crate::lightning::proto::{invoicesrpc, lnrpc, routerrpc};
use crate::simnet::model::{
    ChannelKind, Invoice, InvoiceEvent, InvoiceRequest, InvoiceSecret, InvoiceState,
    MAX_INVOICE_MSAT, NodeId, PaymentHash, QueryError, Simnet,
};

/// lnd's services for one node.
pub(crate) struct Lnd(pub(crate) NodeService);

type Rpc<T> = Result<Response<T>, Status>;

/// Invoice amount in msat from lnd's `value` (sat) / `value_msat` pair.
/// lnd's `MaxMemoSize` (lightningnetwork/lnd `invoices/invoices.go`, v0.21.0-beta).
const MAX_MEMO_SIZE: usize = 1024;

/// The memo and description hash of a new invoice, checked as lnd checks them, in lnd's words
/// (lightningnetwork/lnd `lnrpc/invoicesrpc/addinvoice.go` `AddInvoice`, v0.21.0-beta).
fn description(memo: &str, hash: &[u8]) -> Result<Option<[u8; 32]>, Status> {
    if memo.len() > MAX_MEMO_SIZE {
        return Err(Status::unknown(format!(
            "memo too large: {} bytes (maxsize={MAX_MEMO_SIZE})",
            memo.len()
        )));
    }
    match hash {
        [] => Ok(None),
        h => <[u8; 32]>::try_from(h).map(Some).map_err(|_| {
            Status::unknown(format!("description hash is {} bytes, must be 32", h.len()))
        }),
    }
}

fn invoice_msat(value: i64, value_msat: i64) -> Result<u64, Status> {
    let msat = invoice_msat_field(value, value_msat)?;
    if msat > MAX_INVOICE_MSAT {
        // lnd's words and Go's `btcutil.Amount` formatting (whole BTC with no trailing zeros).
        let btc = |msat: u64| {
            rust_decimal::Decimal::from_i128_with_scale(i128::from(msat / 1_000), 8).normalize()
        };
        return Err(Status::unknown(format!(
            "invoice amount {} BTC is too large, max is {} BTC",
            btc(msat),
            btc(MAX_INVOICE_MSAT)
        )));
    }
    Ok(msat)
}

fn invoice_msat_field(value: i64, value_msat: i64) -> Result<u64, Status> {
    match (value, value_msat) {
        (0, msat) => unsigned(msat, "value_msat"),
        (sat, 0) => unsigned(sat, "value")?
            .checked_mul(1_000)
            .ok_or_else(|| Status::invalid_argument("value is too large")),
        _ => Err(Status::invalid_argument(
            "value and value_msat are mutually exclusive",
        )),
    }
}

/// The fee limit in msat from routerrpc's `fee_limit_sat` / `fee_limit_msat` pair (0 means
/// zero-fee routes only, as in lnd).
pub(crate) fn fee_limit_msat(sat: i64, msat: i64) -> Result<u64, Status> {
    match (sat, msat) {
        (0, msat) => unsigned(msat, "fee_limit_msat"),
        (sat, 0) => Ok(unsigned(sat, "fee_limit_sat")?.saturating_mul(1_000)),
        _ => Err(Status::invalid_argument(
            "sat and msat arguments are mutually exclusive",
        )),
    }
}

/// The payee-side channel an invoice's HTLC arrives on: the asset channel with the edge for
/// asset invoices, the sats channel otherwise (0 when the node has none).
fn htlc_chan(m: &Simnet, node: NodeId, asset_invoice: bool) -> u64 {
    let channels = m.channels(node).unwrap_or_default();
    channels
        .iter()
        .find(|c| {
            let is_asset = matches!(c.kind, ChannelKind::Asset(_));
            is_asset == asset_invoice
        })
        .map_or(0, |c| c.chan_id)
}

/// `inv` as lnd's `lnrpc.Invoice`.
pub(crate) fn invoice_proto(m: &Simnet, inv: &Invoice) -> lnrpc::Invoice {
    convert::invoice(inv, htlc_chan(m, inv.node, inv.asset.is_some()))
}

/// An invoice as lnd announced it when it was added: OPEN, nothing paid. A live subscriber
/// that wakes after an invoice was added *and* settled still sees the add first, then the
/// settle, as lnd's subscribers do.
fn as_added(inv: &Invoice) -> Invoice {
    let mut added = inv.clone();
    added.state = InvoiceState::Open;
    added.settle_index = 0;
    added.settled_at = None;
    added.amt_paid_msat = 0;
    added
}

#[tonic::async_trait]
impl lnrpc::lightning_server::Lightning for Lnd {
    async fn channel_balance(
        &self,
        _: Request<lnrpc::ChannelBalanceRequest>,
    ) -> Rpc<lnrpc::ChannelBalanceResponse> {
        let svc = self.0.gate().await?;
        let (channels, asset_units) = svc
            .net
            .read(|m| {
                Ok::<_, QueryError>((m.channels(svc.node)?, m.asset_channel_units(svc.node)?))
            })
            .map_err(status::query)?;
        // The amounts are the BTC channels', as lnd sums them. An asset channel's sats are
        // only its anchor, so its units go in custom_channel_data, as tapd writes them there.
        let sats = channels
            .iter()
            .filter(|c| matches!(c.kind, ChannelKind::Sats));
        let (local, remote) = sats.fold((0u64, 0u64), |(l, r), c| (l + c.local, r + c.remote));
        let amount = |msat: u64| lnrpc::Amount {
            sat: msat / 1_000,
            msat,
        };
        Ok(Response::new(lnrpc::ChannelBalanceResponse {
            local_balance: Some(amount(local)),
            remote_balance: Some(amount(remote)),
            custom_channel_data: convert::asset_channel_data(channels.len(), &asset_units)?,
        }))
    }

    async fn get_info(&self, _: Request<lnrpc::GetInfoRequest>) -> Rpc<lnrpc::GetInfoResponse> {
        let svc = self.0.gate().await?;
        let info = svc
            .net
            .read(|m| m.node_info(svc.node))
            .map_err(status::query)?;
        Ok(Response::new(lnrpc::GetInfoResponse {
            identity_pubkey: info.pubkey.to_hex(),
            alias: info.alias,
            num_active_channels: info.num_active_channels,
            num_inactive_channels: info.num_inactive_channels,
            num_peers: info.num_peers,
            block_height: info.block_height,
            block_hash: info.block_hash,
            synced_to_chain: info.synced_to_chain,
            best_header_timestamp: signed(svc.net.now()),
            version: info.lnd_version.to_owned(),
            chains: vec![lnrpc::Chain {
                chain: "bitcoin".into(),
                network: info.network.into(),
            }],
            color: "#3399ff".into(),
            synced_to_graph: true,
            ..Default::default()
        }))
    }

    async fn add_invoice(&self, req: Request<lnrpc::Invoice>) -> Rpc<lnrpc::AddInvoiceResponse> {
        let svc = self.0.gate().await?;
        let inv = req.into_inner();
        let secret = match inv.r_preimage.as_slice() {
            [] => InvoiceSecret::Generate,
            p => InvoiceSecret::Preimage(convert::preimage(p, "r_preimage")?),
        };
        let request = InvoiceRequest {
            value_msat: invoice_msat(inv.value, inv.value_msat)?,
            description_hash: description(&inv.memo, &inv.description_hash)?,
            memo: inv.memo,
            expiry_secs: unsigned(inv.expiry, "expiry")?,
            secret,
        };
        let added = svc
            .net
            .update_now(|m, now| m.add_invoice(svc.node, request, now))
            .map_err(status::invoice)?;
        Ok(Response::new(lnrpc::AddInvoiceResponse {
            r_hash: added.payment_hash.0.to_vec(),
            payment_request: added.payment_request,
            add_index: added.add_index,
            payment_addr: added.payment_addr.to_vec(),
        }))
    }

    async fn lookup_invoice(&self, req: Request<lnrpc::PaymentHash>) -> Rpc<lnrpc::Invoice> {
        let svc = self.0.gate().await?;
        let hash = convert::hash(&req.into_inner().r_hash, "r_hash")?;
        let found = svc.net.update_now(|m, _| {
            m.lookup_invoice(svc.node, &hash)
                .map(|inv| invoice_proto(m, inv))
        });
        found.map(Response::new).map_err(status::invoice)
    }

    type SubscribeInvoicesStream = RpcStream<lnrpc::Invoice>;

    async fn subscribe_invoices(
        &self,
        req: Request<lnrpc::InvoiceSubscription>,
    ) -> Rpc<Self::SubscribeInvoicesStream> {
        let svc = self.0.gate().await?;
        let req = req.into_inner();
        let node = svc.node;
        let (adds_now, settles_now) = svc.net.read(|m| m.invoice_cursor(node));
        // lnd replays adds after `add_index` and settles after `settle_index`, each only when
        // non-zero; zero means "live only" for that kind (`InvoicesAddedSince` and
        // `InvoicesSettledSince` return nothing for 0: lightningnetwork/lnd
        // channeldb/invoices.go and invoices/sql_store.go, v0.21.0-beta).
        //
        // The replayed adds are the invoices as stored now, in their current state, and the
        // subscription's relay sends on only OPEN ones (as adds) and SETTLED ones (as
        // settlements); a CANCELED or ACCEPTED invoice is dropped with "unknown invoice
        // state" (`deliverBacklogEvents` and `SubscribeNotifications` in
        // invoices/invoiceregistry.go, v0.21.0-beta; unchanged in v0.21.2-beta). Live, lnd
        // never notifies all-invoice subscribers of cancels or accepts (`invoiceEventLoop`,
        // same file), so a cancelled invoice is never streamed: only its add, if it was open
        // when added while subscribed.
        let mut add = if req.add_index == 0 {
            adds_now
        } else {
            req.add_index
        };
        let mut settle = match req.settle_index {
            0 => settles_now,
            s => s,
        };
        let stream = svc
            .streams()
            .spawn("SubscribeInvoices", Vec::new(), move |m, _| {
                let events = match m.invoice_events_since(node, add, settle) {
                    Ok(events) => events,
                    Err(e) => return Poll::Fail(status::invoice(e)),
                };
                add = events.add_index;
                settle = events.settle_index;
                let items = events.events.iter().filter_map(|e| match e {
                    InvoiceEvent::Added(inv) if inv.add_index > adds_now => {
                        Some(invoice_proto(m, &as_added(inv)))
                    }
                    InvoiceEvent::Added(inv) => {
                        matches!(inv.state, InvoiceState::Open | InvoiceState::Settled)
                            .then(|| invoice_proto(m, inv))
                    }
                    InvoiceEvent::Settled(inv) => Some(invoice_proto(m, inv)),
                });
                Poll::More(items.collect())
            });
        Ok(Response::new(stream))
    }

    async fn decode_pay_req(&self, req: Request<lnrpc::PayReqString>) -> Rpc<lnrpc::PayReq> {
        let svc = self.0.gate().await?;
        let pay_req = req.into_inner().pay_req;
        let decoded = svc.net.read(|m| m.decode_pay_req(svc.node, &pay_req));
        let decoded = decoded.map_err(status::invoice)?;
        Ok(Response::new(convert::pay_req(&decoded)))
    }
}

#[tonic::async_trait]
impl routerrpc::router_server::Router for Lnd {
    type SendPaymentV2Stream = RpcStream<lnrpc::Payment>;

    async fn send_payment_v2(
        &self,
        req: Request<routerrpc::SendPaymentRequest>,
    ) -> Rpc<Self::SendPaymentV2Stream> {
        let svc = self.0.gate().await?;
        let r = req.into_inner();
        if r.payment_request.is_empty() {
            return Err(Status::invalid_argument(
                "set payment_request: the simnet pays payment requests only (no keysend, no dest/amt payments)",
            ));
        }
        if r.amt != 0 || r.amt_msat != 0 {
            return Err(Status::invalid_argument(
                "amount must not be specified when paying a non-zero amount invoice",
            ));
        }
        let max_fee = fee_limit_msat(r.fee_limit_sat, r.fee_limit_msat)?;
        let paid = svc
            .net
            .update_now(|m, now| m.pay_sats(svc.node, &r.payment_request, max_fee, now));
        let payment = svc.settle_pay_result(paid, &r.payment_request, &status::PayVia::Sats)?;
        let stream = svc.payment_updates(
            "SendPaymentV2",
            &payment,
            r.no_inflight_updates,
            Vec::new(),
            |p| p,
        );
        Ok(Response::new(stream))
    }

    type TrackPaymentV2Stream = RpcStream<lnrpc::Payment>;

    async fn track_payment_v2(
        &self,
        req: Request<routerrpc::TrackPaymentRequest>,
    ) -> Rpc<Self::TrackPaymentV2Stream> {
        let svc = self.0.gate().await?;
        let r = req.into_inner();
        let hash = convert::hash(&r.payment_hash, "payment_hash")?;
        let payment = svc.net.read(|m| m.payment(svc.node, &hash).cloned());
        let payment = payment.map_err(status::query)?;
        let stream = svc.track_payment(
            "TrackPaymentV2",
            &payment,
            r.no_inflight_updates,
            Vec::new(),
            |p| p,
        );
        Ok(Response::new(stream))
    }
}

#[tonic::async_trait]
impl invoicesrpc::invoices_server::Invoices for Lnd {
    type SubscribeSingleInvoiceStream = RpcStream<lnrpc::Invoice>;

    async fn subscribe_single_invoice(
        &self,
        req: Request<invoicesrpc::SubscribeSingleInvoiceRequest>,
    ) -> Rpc<Self::SubscribeSingleInvoiceStream> {
        let svc = self.0.gate().await?;
        let node = svc.node;
        let hash = convert::hash(&req.into_inner().r_hash, "r_hash")?;
        let current = svc.net.update_now(|m, _| {
            m.lookup_invoice(node, &hash)
                .map(|inv| (inv.state, invoice_proto(m, inv)))
        });
        let (mut last, first) = current.map_err(status::invoice)?;
        if is_final_invoice(last) {
            return Ok(Response::new(svc.streams().finished(vec![first])));
        }
        let stream = svc
            .streams()
            .spawn("SubscribeSingleInvoice", vec![first], move |m, _| {
                let inv = match m.lookup_invoice(node, &hash) {
                    Ok(inv) => inv,
                    Err(e) => return Poll::Fail(status::invoice(e)),
                };
                if inv.state == last {
                    return Poll::More(Vec::new());
                }
                last = inv.state;
                let update = vec![invoice_proto(m, inv)];
                if is_final_invoice(inv.state) {
                    Poll::Done(update)
                } else {
                    Poll::More(update)
                }
            });
        Ok(Response::new(stream))
    }

    async fn cancel_invoice(
        &self,
        req: Request<invoicesrpc::CancelInvoiceMsg>,
    ) -> Rpc<invoicesrpc::CancelInvoiceResp> {
        let svc = self.0.gate().await?;
        let hash = convert::hash(&req.into_inner().payment_hash, "payment_hash")?;
        svc.net
            .update_now(|m, now| m.cancel_invoice(svc.node, &hash, now))
            .map_err(status::invoice)?;
        Ok(Response::new(invoicesrpc::CancelInvoiceResp {}))
    }

    async fn add_hold_invoice(
        &self,
        req: Request<invoicesrpc::AddHoldInvoiceRequest>,
    ) -> Rpc<invoicesrpc::AddHoldInvoiceResp> {
        let svc = self.0.gate().await?;
        let r = req.into_inner();
        let hash: PaymentHash = convert::hash(&r.hash, "hash")?;
        let request = InvoiceRequest {
            value_msat: invoice_msat(r.value, r.value_msat)?,
            description_hash: description(&r.memo, &r.description_hash)?,
            memo: r.memo,
            expiry_secs: unsigned(r.expiry, "expiry")?,
            secret: InvoiceSecret::Hold(hash),
        };
        let added = svc
            .net
            .update_now(|m, now| m.add_invoice(svc.node, request, now))
            .map_err(status::invoice)?;
        Ok(Response::new(invoicesrpc::AddHoldInvoiceResp {
            payment_request: added.payment_request,
            add_index: added.add_index,
            payment_addr: added.payment_addr.to_vec(),
        }))
    }

    async fn settle_invoice(
        &self,
        req: Request<invoicesrpc::SettleInvoiceMsg>,
    ) -> Rpc<invoicesrpc::SettleInvoiceResp> {
        let svc = self.0.gate().await?;
        let preimage = convert::preimage(&req.into_inner().preimage, "preimage")?;
        svc.net
            .update_now(|m, now| m.settle_invoice(svc.node, &preimage, now))
            .map_err(status::invoice)?;
        Ok(Response::new(invoicesrpc::SettleInvoiceResp {}))
    }
}

fn is_final_invoice(state: InvoiceState) -> bool {
    matches!(state, InvoiceState::Settled | InvoiceState::Canceled)
}
