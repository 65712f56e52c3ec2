//! The lnd adapter: [`Invoices`], [`NodeInfoSource`], sats payments and channel balances
//! (including tapd's asset channel balances) over lnd's gRPC (`lnrpc.Lightning`,
//! `routerrpc.Router`). Generated types stay in this file.

use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{Instrument, debug, warn};

use super::channel_data::{self, AssetChannelBalances};
use super::error::BackendError;
use super::grpc::{AuthChannel, NodeConnection, connect_lazy, connect_lazy_streaming};
use super::proto::invoicesrpc::{self, invoices_client::InvoicesClient};
use super::proto::lnrpc::{self, lightning_client::LightningClient};
use super::proto::routerrpc::{self, router_client::RouterClient};
use super::traits::{Invoices, NodeInfoSource};
use super::types::{
    CreatedInvoice, InvoiceRequest, InvoiceState, InvoiceStatus, NodeInfo, PaymentOutcome,
    Settlement, TrackedPayment,
};
use crate::l402::{PaymentHash, Preimage};

/// Longest pause between reconnection attempts of the settlement stream.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// First pause after a dropped settlement stream.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// lnd's `ChannelBalance`: BTC sums, and tapd's asset channel JSON.
const CHANNEL_BALANCE: &str = "ChannelBalance";

/// Where a call went, for error messages and deadline classification.
#[derive(Clone, Debug)]
pub(crate) struct CallCtx {
    pub(crate) endpoint: String,
    pub(crate) timeout: Duration,
}

impl CallCtx {
    pub(crate) fn new(conn: &NodeConnection) -> Self {
        Self {
            endpoint: conn.endpoint.clone(),
            timeout: conn.timeout,
        }
    }

    pub(crate) fn err(&self, call: &'static str, status: tonic::Status) -> BackendError {
        BackendError::from_call(call, &self.endpoint, self.timeout, status)
    }

    /// A payment's overall budget: the call deadline, at least one second.
    pub(crate) fn payment_timeout_secs(&self) -> i32 {
        i32::try_from(self.timeout.as_secs().max(1)).unwrap_or(i32::MAX)
    }
}

pub(crate) fn hash32(
    call: &'static str,
    what: &str,
    bytes: &[u8],
) -> Result<[u8; 32], BackendError> {
    bytes.try_into().map_err(|_| {
        BackendError::invalid_response(call, format!("{what} is {} bytes, not 32", bytes.len()))
    })
}

fn u64_of(call: &'static str, what: &str, v: i64) -> Result<u64, BackendError> {
    u64::try_from(v).map_err(|_| BackendError::invalid_response(call, format!("negative {what}")))
}

/// An lnd node (or the lnd inside litd).
#[derive(Clone, Debug)]
pub struct LndNode {
    /// Unary calls, each bounded by the connection's timeout.
    lightning: LightningClient<AuthChannel>,
    /// Server streams (`SubscribeInvoices`), which may be idle longer than any call deadline.
    streaming: LightningClient<AuthChannel>,
    /// `SendPaymentV2` is a stream that ends once the payment is final.
    router: RouterClient<AuthChannel>,
    /// Hold invoices and cancellation (`invoicesrpc`).
    invoices: InvoicesClient<AuthChannel>,
    ctx: CallCtx,
}

impl LndNode {
    /// A lazily connected client: nothing is dialled until the first call, and a dropped
    /// connection is re-established on the next one.
    pub fn connect(conn: &NodeConnection) -> Result<Self, BackendError> {
        let channel = connect_lazy(conn)?;
        let streaming = connect_lazy_streaming(conn)?;
        Ok(Self {
            invoices: InvoicesClient::new(channel.clone()),
            lightning: LightningClient::new(channel),
            streaming: LightningClient::new(streaming.clone()),
            router: RouterClient::new(streaming),
            ctx: CallCtx::new(conn),
        })
    }

    async fn channel_balance(&self) -> Result<lnrpc::ChannelBalanceResponse, BackendError> {
        Ok(self
            .lightning
            .clone()
            .channel_balance(lnrpc::ChannelBalanceRequest {})
            .await
            .map_err(|s| self.ctx.err(CHANNEL_BALANCE, s))?
            .into_inner())
    }

    /// A hold invoice for `hash` (`invoicesrpc.AddHoldInvoice`): lnd accepts the payer's HTLCs
    /// and keeps them (state ACCEPTED) until [`Self::settle_invoice`] reveals the preimage or
    /// [`Self::cancel_invoice`] fails them back. The amount goes as `value_msat`.
    pub async fn create_hold_invoice(
        &self,
        hash: &PaymentHash,
        req: &InvoiceRequest,
    ) -> Result<CreatedInvoice, BackendError> {
        const CALL: &str = "AddHoldInvoice";
        let msg = invoicesrpc::AddHoldInvoiceRequest {
            memo: req.memo.clone(),
            hash: hash.0.to_vec(),
            value_msat: i64::try_from(req.value_msat)
                .map_err(|_| BackendError::invalid_request(CALL, "amount too large"))?,
            expiry: i64::try_from(req.expiry_secs).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let resp = self
            .invoices
            .clone()
            .add_hold_invoice(msg)
            .await
            .map_err(|s| self.ctx.err(CALL, s))?
            .into_inner();
        Ok(CreatedInvoice {
            payment_hash: *hash,
            payment_request: resp.payment_request,
            add_index: resp.add_index,
        })
    }

    /// Settles an ACCEPTED hold invoice with its preimage (`invoicesrpc.SettleInvoice`).
    pub async fn settle_invoice(&self, preimage: &Preimage) -> Result<(), BackendError> {
        const CALL: &str = "SettleInvoice";
        let msg = invoicesrpc::SettleInvoiceMsg {
            preimage: preimage.expose().to_vec(),
        };
        self.invoices
            .clone()
            .settle_invoice(msg)
            .await
            .map_err(|s| self.ctx.err(CALL, s))?;
        Ok(())
    }

    /// Cancels an invoice that is not settled (`invoicesrpc.CancelInvoice`); held HTLCs are
    /// failed back to the payer.
    pub async fn cancel_invoice(&self, hash: &PaymentHash) -> Result<(), BackendError> {
        const CALL: &str = "CancelInvoice";
        let msg = invoicesrpc::CancelInvoiceMsg {
            payment_hash: hash.0.to_vec(),
        };
        self.invoices
            .clone()
            .cancel_invoice(msg)
            .await
            .map_err(|s| self.ctx.err(CALL, s))?;
        Ok(())
    }

    /// The amount a BOLT11 payment request asks for, msat, as lnd decodes it (`DecodePayReq`);
    /// 0 for an amountless request.
    pub async fn decode_amount_msat(&self, payment_request: &str) -> Result<u64, BackendError> {
        const CALL: &str = "DecodePayReq";
        let req = lnrpc::PayReqString {
            pay_req: payment_request.to_owned(),
        };
        let resp = self
            .lightning
            .clone()
            .decode_pay_req(req)
            .await
            .map_err(|s| self.ctx.err(CALL, s))?
            .into_inner();
        u64_of(CALL, "num_msat", resp.num_msat)
    }

    /// Sums of the node's BTC channel balances, `(local_msat, remote_msat)`.
    pub async fn channel_balance_msat(&self) -> Result<(u64, u64), BackendError> {
        let resp = self.channel_balance().await?;
        let msat = |a: Option<lnrpc::Amount>| a.map_or(0, |a| a.msat);
        Ok((msat(resp.local_balance), msat(resp.remote_balance)))
    }

    /// The asset units in the node's asset channels, per asset and per group, as tapd reports
    /// them in `ChannelBalance`'s `custom_channel_data` (see [`channel_data`]). tapd's own
    /// `ListBalances` leaves these units out. Needs tapd running inside this lnd (litd
    /// integrated mode, tapd-integrated); a plain lnd's answer is
    /// [`BackendError::InvalidChannelData`].
    pub async fn channel_asset_balances(&self) -> Result<AssetChannelBalances, BackendError> {
        let resp = self.channel_balance().await?;
        channel_data::parse(&resp.custom_channel_data).map_err(|source| {
            BackendError::InvalidChannelData {
                call: CHANNEL_BALANCE,
                source,
            }
        })
    }

    /// Pays a BOLT11 invoice in sats, spending at most `max_fee_msat` on fees.
    pub async fn pay_sats(
        &self,
        payment_request: &str,
        max_fee_msat: u64,
    ) -> Result<PaymentOutcome, BackendError> {
        const CALL: &str = "SendPaymentV2";
        let req = routerrpc::SendPaymentRequest {
            payment_request: payment_request.to_owned(),
            fee_limit_msat: i64::try_from(max_fee_msat).unwrap_or(i64::MAX),
            timeout_seconds: self.ctx.payment_timeout_secs(),
            no_inflight_updates: true,
            ..Default::default()
        };
        let mut stream = self
            .router
            .clone()
            .send_payment_v2(req)
            .await
            .map_err(|s| self.ctx.err(CALL, s))?
            .into_inner();
        loop {
            match stream.message().await.map_err(|s| self.ctx.err(CALL, s))? {
                Some(payment) => {
                    if let Some(outcome) = payment_outcome(CALL, &payment, None)? {
                        return Ok(outcome);
                    }
                }
                None => {
                    return Err(BackendError::invalid_response(
                        CALL,
                        "payment stream ended before a final state",
                    ));
                }
            }
        }
    }

    /// lnd's `TrackPaymentV2` until the payment is final (`Payments::track_payment`). lnd
    /// answers `NotFound` "payment isn't initiated" for a hash it never tried to pay
    /// (lightningnetwork/lnd `lnrpc/routerrpc/router_server.go` `trackPayment`, v0.21.0-beta).
    pub async fn track_payment(&self, hash: &PaymentHash) -> Result<TrackedPayment, BackendError> {
        const CALL: &str = "TrackPaymentV2";
        let req = routerrpc::TrackPaymentRequest {
            payment_hash: hash.0.to_vec(),
            no_inflight_updates: true,
        };
        let mut stream = match self.router.clone().track_payment_v2(req).await {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == tonic::Code::NotFound => return Ok(TrackedPayment::NotInitiated),
            Err(s) => return Err(self.ctx.err(CALL, s)),
        };
        loop {
            match stream.message().await.map_err(|s| self.ctx.err(CALL, s))? {
                Some(payment) => match payment_outcome(CALL, &payment, None) {
                    Ok(Some(outcome)) => return Ok(TrackedPayment::Succeeded(outcome)),
                    Ok(None) => {}
                    Err(BackendError::PaymentFailed { reason }) => {
                        return Ok(TrackedPayment::Failed { reason });
                    }
                    Err(e) => return Err(e),
                },
                None => {
                    return Err(BackendError::invalid_response(
                        CALL,
                        "payment stream ended before a final state",
                    ));
                }
            }
        }
    }
}

/// A final payment update as an outcome: `Ok(None)` while in flight, an error if it failed.
pub(crate) fn payment_outcome(
    call: &'static str,
    p: &lnrpc::Payment,
    units_spent: Option<u64>,
) -> Result<Option<PaymentOutcome>, BackendError> {
    use lnrpc::payment::PaymentStatus;
    match PaymentStatus::try_from(p.status) {
        Ok(PaymentStatus::Succeeded) => {
            let hash = PaymentHash(hash32(
                call,
                "payment hash",
                &hex::decode(&p.payment_hash).unwrap_or_default(),
            )?);
            let preimage = Preimage::from_bytes(hash32(
                call,
                "payment preimage",
                &hex::decode(&p.payment_preimage).unwrap_or_default(),
            )?);
            if !preimage.payment_hash().ct_eq(&hash) {
                return Err(BackendError::invalid_response(
                    call,
                    "preimage does not match the payment hash",
                ));
            }
            Ok(Some(PaymentOutcome {
                payment_hash: hash,
                preimage,
                value_msat: u64_of(call, "value", p.value_msat)?,
                fee_msat: u64_of(call, "fee", p.fee_msat)?,
                units_spent,
            }))
        }
        Ok(PaymentStatus::Failed) => {
            let reason = lnrpc::PaymentFailureReason::try_from(p.failure_reason)
                .map(|r| r.as_str_name().to_owned())
                .unwrap_or_else(|_| format!("failure reason {}", p.failure_reason));
            Err(BackendError::PaymentFailed { reason })
        }
        _ => Ok(None),
    }
}

fn invoice_state(call: &'static str, state: i32) -> Result<InvoiceState, BackendError> {
    use lnrpc::invoice::InvoiceState as S;
    match S::try_from(state) {
        Ok(S::Open) => Ok(InvoiceState::Open),
        Ok(S::Settled) => Ok(InvoiceState::Settled),
        Ok(S::Canceled) => Ok(InvoiceState::Canceled),
        Ok(S::Accepted) => Ok(InvoiceState::Accepted),
        Err(_) => Err(BackendError::invalid_response(
            call,
            format!("unknown invoice state {state}"),
        )),
    }
}

pub(crate) fn invoice_status(
    call: &'static str,
    inv: &lnrpc::Invoice,
) -> Result<InvoiceStatus, BackendError> {
    Ok(InvoiceStatus {
        payment_hash: PaymentHash(hash32(call, "r_hash", &inv.r_hash)?),
        state: invoice_state(call, inv.state)?,
        value_msat: u64_of(call, "value_msat", inv.value_msat)?,
        amt_paid_msat: u64_of(call, "amt_paid_msat", inv.amt_paid_msat)?,
        memo: inv.memo.clone(),
        payment_request: inv.payment_request.clone(),
        creation_date: u64_of(call, "creation_date", inv.creation_date)?,
        expiry_secs: u64_of(call, "expiry", inv.expiry)?,
        add_index: inv.add_index,
        settle_index: inv.settle_index,
    })
}

impl NodeInfoSource for LndNode {
    async fn node_info(&self) -> Result<NodeInfo, BackendError> {
        let info = self
            .lightning
            .clone()
            .get_info(lnrpc::GetInfoRequest {})
            .await
            .map_err(|s| self.ctx.err("GetInfo", s))?
            .into_inner();
        Ok(NodeInfo {
            pubkey: info.identity_pubkey,
            alias: info.alias,
            block_height: info.block_height,
            synced_to_chain: info.synced_to_chain,
            version: info.version,
        })
    }
}

impl Invoices for LndNode {
    async fn create_invoice(&self, req: &InvoiceRequest) -> Result<CreatedInvoice, BackendError> {
        const CALL: &str = "AddInvoice";
        let invoice = lnrpc::Invoice {
            memo: req.memo.clone(),
            value_msat: i64::try_from(req.value_msat)
                .map_err(|_| BackendError::invalid_response(CALL, "amount too large"))?,
            expiry: i64::try_from(req.expiry_secs).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let resp = self
            .lightning
            .clone()
            .add_invoice(invoice)
            .await
            .map_err(|s| self.ctx.err(CALL, s))?
            .into_inner();
        Ok(CreatedInvoice {
            payment_hash: PaymentHash(hash32(CALL, "r_hash", &resp.r_hash)?),
            payment_request: resp.payment_request,
            add_index: resp.add_index,
        })
    }

    async fn lookup_invoice(
        &self,
        hash: &PaymentHash,
    ) -> Result<Option<InvoiceStatus>, BackendError> {
        const CALL: &str = "LookupInvoice";
        let req = lnrpc::PaymentHash {
            r_hash: hash.0.to_vec(),
        };
        match self.lightning.clone().lookup_invoice(req).await {
            Ok(resp) => invoice_status(CALL, &resp.into_inner()).map(Some),
            Err(s)
                if s.code() == tonic::Code::NotFound
                    || s.message().contains("unable to locate invoice") =>
            {
                Ok(None)
            }
            Err(s) => Err(self.ctx.err(CALL, s)),
        }
    }

    fn settlements(
        &self,
        after_settle_index: u64,
    ) -> mpsc::Receiver<Result<Settlement, BackendError>> {
        let (tx, rx) = mpsc::channel(64);
        let client = self.streaming.clone();
        let ctx = self.ctx.clone();
        let span = tracing::info_span!("settlements", endpoint = %ctx.endpoint);
        tokio::spawn(settlement_loop(client, ctx, after_settle_index, tx).instrument(span));
        rx
    }
}

/// Subscribes from the last delivered settle index, forwards settlements in order, and
/// resubscribes with backoff whenever the stream breaks. Settle indices only grow, so
/// forwarding only indices above the last one delivered means nothing is delivered twice; and
/// lnd replays every settlement above the index it is given, so nothing is missed.
async fn settlement_loop(
    client: LightningClient<AuthChannel>,
    ctx: CallCtx,
    mut last: u64,
    tx: mpsc::Sender<Result<Settlement, BackendError>>,
) {
    const CALL: &str = "SubscribeInvoices";
    let mut backoff = MIN_BACKOFF;
    loop {
        let sub = lnrpc::InvoiceSubscription {
            add_index: 0,
            settle_index: last,
        };
        let mut c = client.clone();
        let opened = tokio::select! {
            _ = tx.closed() => return,
            r = c.subscribe_invoices(sub) => r,
        };
        match opened {
            Ok(resp) => {
                let mut stream = resp.into_inner();
                loop {
                    let msg = tokio::select! {
                        _ = tx.closed() => return,
                        m = stream.message() => m,
                    };
                    match msg {
                        Ok(Some(inv)) => {
                            backoff = MIN_BACKOFF;
                            let settled = inv.state == lnrpc::invoice::InvoiceState::Settled as i32;
                            if !settled || inv.settle_index <= last {
                                continue;
                            }
                            let item = invoice_status(CALL, &inv).map(|s| Settlement {
                                payment_hash: s.payment_hash,
                                amt_paid_msat: s.amt_paid_msat,
                                settle_index: s.settle_index,
                            });
                            if let Ok(s) = &item {
                                last = s.settle_index;
                            }
                            if tx.send(item).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => {
                            debug!(last, "settlement stream ended; resubscribing");
                            break;
                        }
                        Err(status) => {
                            warn!(last, error = %ctx.err(CALL, status), "settlement stream broke; resubscribing");
                            break;
                        }
                    }
                }
            }
            Err(status) => {
                let err = ctx.err(CALL, status);
                warn!(last, error = %err, ?backoff, "cannot subscribe to settlements; retrying");
                // Tell the consumer (it may surface the node being down) but keep trying.
                if tx.send(Err(err)).await.is_err() {
                    return;
                }
            }
        }
        tokio::select! {
            _ = tx.closed() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
