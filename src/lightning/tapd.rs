//! The tapd adapter: asset invoices, RFQ quotes, asset facts, balances and asset payments over
//! tapd's gRPC (`taprpc.TaprootAssets`, `rfqrpc.Rfq`, `tapchannelrpc.TaprootAssetChannels`).
//! Asset balances also ask the node's lnd, where tapd reports the units in asset channels.
//! Every RPC used here exists in tapd 0.7 (litd 0.16, Polar's default) and later.
//! Generated types stay in this file.

use std::time::{SystemTime, UNIX_EPOCH};

use super::channel_data::AssetChannelBalances;
use super::error::BackendError;
use super::grpc::{AuthChannel, NodeConnection, connect_lazy, connect_lazy_streaming};
use super::lnd::{CallCtx, LndNode, hash32, payment_outcome};
use super::proto::rfqrpc::rfq_client::RfqClient;
use super::proto::tapchannelrpc::{
    self, taproot_asset_channels_client::TaprootAssetChannelsClient,
};
use super::proto::taprpc::{self, taproot_assets_client::TaprootAssetsClient};
use super::proto::{lnrpc, rfqrpc, routerrpc};
use super::traits::{AssetInvoices, Rates};
use super::types::{
    AssetBalance, AssetInvoice, AssetInvoiceRequest, AssetRef, BuyQuote, CreatedInvoice,
    PaymentOutcome, SellQuote,
};
use crate::l402::PaymentHash;
use crate::pricing::{self, FixedPoint};

/// A tapd node (standalone, or inside litd; behind litd use litd's port and certificate with
/// tapd's macaroon).
#[derive(Clone, Debug)]
pub struct TapdNode {
    assets: TaprootAssetsClient<AuthChannel>,
    rfq: RfqClient<AuthChannel>,
    channels: TaprootAssetChannelsClient<AuthChannel>,
    /// `SendPayment` streams until the payment is final.
    streaming: TaprootAssetChannelsClient<AuthChannel>,
    /// The lnd this tapd runs in, when attached ([`TapdNode::with_lnd`]). tapd reports the
    /// units in its asset channels only through lnd's `ChannelBalance`, and lnd takes lnd's
    /// macaroon, not tapd's, even on litd's shared port; so [`TapdNode::asset_balance`] needs
    /// this second client. It must be the same node's lnd, or the balance mixes two nodes.
    lnd: Option<LndNode>,
    ctx: CallCtx,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn peer_bytes(call: &'static str, peer: &str) -> Result<Vec<u8>, BackendError> {
    let bytes = hex::decode(peer.trim()).map_err(|_| {
        BackendError::invalid_request(call, format!("peer {peer:?} is not a hex public key"))
    })?;
    if bytes.len() != 33 {
        return Err(BackendError::invalid_request(
            call,
            format!("peer {peer:?} is not a 33-byte public key"),
        ));
    }
    Ok(bytes)
}

fn specifier(asset: &AssetRef) -> rfqrpc::AssetSpecifier {
    use rfqrpc::asset_specifier::Id;
    rfqrpc::AssetSpecifier {
        id: Some(match asset {
            AssetRef::Id(id) => Id::AssetId(id.to_vec()),
            AssetRef::GroupKey(k) => Id::GroupKey(k.clone()),
        }),
    }
}

/// `(asset_id, group_key)` as tapchannelrpc requests carry them: exactly one is set.
fn id_or_group(asset: &AssetRef) -> (Vec<u8>, Vec<u8>) {
    match asset {
        AssetRef::Id(id) => (id.to_vec(), Vec::new()),
        AssetRef::GroupKey(k) => (Vec::new(), k.clone()),
    }
}

fn rate(call: &'static str, fp: Option<&rfqrpc::FixedPoint>) -> Result<FixedPoint, BackendError> {
    let fp = fp.ok_or_else(|| BackendError::invalid_response(call, "quote has no rate"))?;
    FixedPoint::from_parts(&fp.coefficient, fp.scale)
        .map_err(|e| BackendError::invalid_response(call, format!("quote rate: {e}")))
}

fn buy_quote(
    call: &'static str,
    q: &rfqrpc::PeerAcceptedBuyQuote,
) -> Result<BuyQuote, BackendError> {
    Ok(BuyQuote {
        peer: q.peer.clone(),
        id: hex::encode(&q.id),
        scid: q.scid,
        rate: rate(call, q.ask_asset_rate.as_ref())?,
        expires_at: q.expiry,
        asset_max_amount: q.asset_max_amount,
        min_transportable_units: q.min_transportable_units,
    })
}

fn sell_quote(
    call: &'static str,
    q: &rfqrpc::PeerAcceptedSellQuote,
) -> Result<SellQuote, BackendError> {
    Ok(SellQuote {
        peer: q.peer.clone(),
        id: hex::encode(&q.id),
        scid: q.scid,
        rate: rate(call, q.bid_asset_rate.as_ref())?,
        expires_at: q.expiry,
        max_units: q.asset_amount,
        min_transportable_msat: q.min_transportable_msat,
    })
}

/// tapd's default asset invoice expiry (`rfq.DefaultInvoiceExpiry`, lightninglabs/taproot-assets
/// rfq/manager.go, v0.8.1).
pub const TAPD_DEFAULT_INVOICE_EXPIRY_SECS: u64 = 300;

/// `asset`'s balance from tapd's on-chain units and lnd's asset channel balances: the node's
/// side of its open channels counts, its peers' side and channels still opening do not.
fn asset_balance(
    asset: &AssetRef,
    on_chain: u64,
    channels: &AssetChannelBalances,
) -> Result<AssetBalance, BackendError> {
    let in_channels = channels.open_units(asset).local;
    if on_chain.checked_add(in_channels).is_none() {
        return Err(BackendError::invalid_response(
            "ListBalances",
            format!("{on_chain} on-chain units and {in_channels} channel units overflow a u64"),
        ));
    }
    Ok(AssetBalance {
        on_chain,
        in_channels,
    })
}

fn rejected(peer: &str, reason: String) -> BackendError {
    BackendError::QuoteRejected {
        peer: Some(peer.to_owned()),
        reason: reason.clone(),
        status: tonic::Status::failed_precondition(reason),
    }
}

impl TapdNode {
    /// A lazily connected client (see [`super::lnd::LndNode::connect`]).
    pub fn connect(conn: &NodeConnection) -> Result<Self, BackendError> {
        let channel = connect_lazy(conn)?;
        Ok(Self {
            assets: TaprootAssetsClient::new(channel.clone()),
            rfq: RfqClient::new(channel.clone()),
            channels: TaprootAssetChannelsClient::new(channel),
            streaming: TaprootAssetChannelsClient::new(connect_lazy_streaming(conn)?),
            lnd: None,
            ctx: CallCtx::new(conn),
        })
    }

    /// Attaches the lnd of the same node (in litd: the same endpoint, with lnd's macaroon), so
    /// that [`TapdNode::asset_balance`] can count the units in asset channels.
    /// [`crate::app::Node::connect`] does this for every node it connects.
    #[must_use]
    pub fn with_lnd(mut self, lnd: LndNode) -> Self {
        self.lnd = Some(lnd);
        self
    }

    /// tapd's version string (`taprpc.GetInfo`).
    pub async fn version(&self) -> Result<String, BackendError> {
        let info = self
            .assets
            .clone()
            .get_info(taprpc::GetInfoRequest {})
            .await
            .map_err(|s| self.ctx.err("TaprootAssets.GetInfo", s))?
            .into_inner();
        Ok(info.version)
    }

    /// Units of `asset` in the node's on-chain wallet, outside channels (`ListBalances`, by
    /// asset id or by group key). tapd counts only its wallet's own script keys here: units
    /// committed to asset channels are not included (see [`LndNode::channel_asset_balances`]).
    pub async fn onchain_asset_balance(&self, asset: &AssetRef) -> Result<u64, BackendError> {
        use taprpc::list_balances_request::GroupBy;
        const CALL: &str = "ListBalances";
        let group_by = match asset {
            AssetRef::Id(_) => GroupBy::AssetId(true),
            AssetRef::GroupKey(_) => GroupBy::GroupKey(true),
        };
        let req = taprpc::ListBalancesRequest {
            group_by: Some(group_by),
            ..Default::default()
        };
        let resp = self
            .assets
            .clone()
            .list_balances(req)
            .await
            .map_err(|s| self.ctx.err(CALL, s))?
            .into_inner();
        // Both maps are keyed by lower-case hex; an asset the wallet does not hold is absent.
        let key = asset.to_string();
        Ok(match asset {
            AssetRef::Id(_) => resp.asset_balances.get(&key).map_or(0, |b| b.balance),
            AssetRef::GroupKey(_) => resp.asset_group_balances.get(&key).map_or(0, |b| b.balance),
        })
    }

    /// Units of `asset` on chain and in open channels, asking this tapd for the first and
    /// `lnd`, which must be the same node's lnd, for the second. The two calls run
    /// concurrently, so a payment completing in between can be counted on neither side or
    /// both: a balance is a snapshot for display, not for accounting.
    pub async fn asset_balance_with(
        &self,
        lnd: &LndNode,
        asset: &AssetRef,
    ) -> Result<AssetBalance, BackendError> {
        let (on_chain, channels) = tokio::try_join!(
            self.onchain_asset_balance(asset),
            lnd.channel_asset_balances()
        )?;
        asset_balance(asset, on_chain, &channels)
    }

    /// Units of `asset` this node holds, in its open channels and on chain: tapd's
    /// `ListBalances` plus the node's side of its asset channels from lnd's `ChannelBalance`
    /// (see [`TapdNode::asset_balance_with`] for the parts). Needs the node's lnd attached with
    /// [`TapdNode::with_lnd`], as [`crate::app::Node::connect`] does; without it this fails
    /// rather than report the on-chain part alone as the whole.
    pub async fn asset_balance(&self, asset: &AssetRef) -> Result<u64, BackendError> {
        let Some(lnd) = &self.lnd else {
            return Err(BackendError::invalid_request(
                "ChannelBalance",
                "this tapd client has no lnd attached, and tapd reports asset channel units \
                 only through lnd; connect through `app::Node::connect` (or \
                 `TapdNode::with_lnd`), or use `onchain_asset_balance` for on-chain units alone",
            ));
        };
        Ok(self.asset_balance_with(lnd, asset).await?.total())
    }

    /// Pays `payment_request` with the asset through `edge_peer`; the edge converts to sats
    /// on the first hop (`tapchannelrpc.SendPayment`).
    ///
    /// Without an `rfq_id`, tapd negotiates the sell quote itself and, when that fails or the
    /// amount is below the minimum, only logs why and answers "failed to acquire any quotes"
    /// (lightninglabs/taproot-assets rpcserver/rpcserver.go `SendPayment`, v0.8.1). tapgate then
    /// asks the edge for the same quote (invoice amount plus fee limit, tapd's
    /// `paymentMaxAmt`) to say why: [`BackendError::BelowMinTransportableMsat`], or the edge's
    /// own refusal.
    pub async fn pay_with_asset(
        &self,
        payment_request: &str,
        asset: &AssetRef,
        edge_peer: &str,
        max_fee_msat: u64,
    ) -> Result<PaymentOutcome, BackendError> {
        match self
            .send_asset_payment(payment_request, asset, edge_peer, max_fee_msat, None)
            .await
        {
            Err(e @ BackendError::QuoteRejected { .. }) if e.is_no_quote_at_all() => Err(self
                .why_no_quote(payment_request, asset, edge_peer, max_fee_msat, e)
                .await),
            other => other,
        }
    }

    /// The reason behind tapd's bare "failed to acquire any quotes", or `original` when it
    /// cannot be found out.
    async fn why_no_quote(
        &self,
        payment_request: &str,
        asset: &AssetRef,
        edge_peer: &str,
        max_fee_msat: u64,
        original: BackendError,
    ) -> BackendError {
        let Some(lnd) = &self.lnd else {
            return original;
        };
        let Ok(value_msat) = lnd.decode_amount_msat(payment_request).await else {
            return original;
        };
        let max_msat = value_msat.saturating_add(max_fee_msat);
        match self.sell_quote(asset, max_msat, edge_peer, 60).await {
            Ok(q) if q.min_transportable_msat > max_msat => {
                BackendError::BelowMinTransportableMsat {
                    msat: max_msat,
                    min_msat: q.min_transportable_msat,
                    status: tonic::Status::failed_precondition(format!(
                        "tapd found no quote; the edge's quote for {max_msat} mSAT (invoice \
                         amount + fee limit) has a minimum of {} mSAT",
                        q.min_transportable_msat
                    )),
                }
            }
            Ok(_) => original,
            // The edge's own refusal says why; any other failure of this second call (a
            // timeout, say) says nothing about the payment, so tapd's answer stands.
            Err(
                refusal
                @ (BackendError::QuoteRejected { .. } | BackendError::NoAssetChannel { .. }),
            ) => refusal,
            Err(_) => original,
        }
    }

    /// Pays `payment_request` with the asset under `quote`, a sell quote this node holds from
    /// [`Rates::sell_quote`] (tapd's `SendPaymentRequest.rfq_id`): tapd spends at exactly that
    /// quote's rate, and refuses with `checkOverpayment`'s reason when the invoice amount plus
    /// the fee limit is below its minimum (lightninglabs/taproot-assets rpcserver/rpcserver.go
    /// `SendPayment`, v0.8.1). A spending cap checked against the quote therefore holds.
    pub async fn pay_with_asset_quote(
        &self,
        payment_request: &str,
        asset: &AssetRef,
        edge_peer: &str,
        max_fee_msat: u64,
        quote: &SellQuote,
    ) -> Result<PaymentOutcome, BackendError> {
        const CALL: &str = "TaprootAssetChannels.SendPayment";
        let id = hex::decode(&quote.id)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                BackendError::invalid_request(
                    CALL,
                    format!("quote id {:?} is not 32 bytes of hex", quote.id),
                )
            })?;
        self.send_asset_payment(
            payment_request,
            asset,
            edge_peer,
            max_fee_msat,
            Some((id, quote.rate.clone())),
        )
        .await
    }

    async fn send_asset_payment(
        &self,
        payment_request: &str,
        asset: &AssetRef,
        edge_peer: &str,
        max_fee_msat: u64,
        quote: Option<([u8; 32], FixedPoint)>,
    ) -> Result<PaymentOutcome, BackendError> {
        const CALL: &str = "TaprootAssetChannels.SendPayment";
        let (asset_id, group_key) = id_or_group(asset);
        let req = tapchannelrpc::SendPaymentRequest {
            asset_id,
            group_key,
            peer_pubkey: peer_bytes(CALL, edge_peer)?,
            payment_request: Some(routerrpc::SendPaymentRequest {
                payment_request: payment_request.to_owned(),
                fee_limit_msat: i64::try_from(max_fee_msat).unwrap_or(i64::MAX),
                timeout_seconds: self.ctx.payment_timeout_secs(),
                no_inflight_updates: true,
                ..Default::default()
            }),
            rfq_id: quote
                .as_ref()
                .map(|(id, _)| id.to_vec())
                .unwrap_or_default(),
            ..Default::default()
        };
        let mut stream = self
            .streaming
            .clone()
            .send_payment(req)
            .await
            .map_err(|s| self.ctx.err(CALL, s))?
            .into_inner();
        // The rate the edge accepted for this payment (when tapd splits a payment over several
        // asset channels with one peer, the quotes share the rate).
        // A payment under a named quote is priced at that quote's rate.
        let mut bid_rate: Option<FixedPoint> = quote.map(|(_, rate)| rate);
        use tapchannelrpc::send_payment_response::Result as R;
        loop {
            let Some(msg) = stream.message().await.map_err(|s| self.ctx.err(CALL, s))? else {
                return Err(BackendError::invalid_response(
                    CALL,
                    "payment stream ended before a final state",
                ));
            };
            match msg.result {
                Some(R::AcceptedSellOrder(q)) => {
                    bid_rate = Some(rate(CALL, q.bid_asset_rate.as_ref())?);
                }
                Some(R::AcceptedSellOrders(qs)) => {
                    if let Some(q) = qs.accepted_sell_orders.first() {
                        bid_rate = Some(rate(CALL, q.bid_asset_rate.as_ref())?);
                    }
                }
                Some(R::PaymentResult(p)) => {
                    if let Some(mut outcome) = payment_outcome(CALL, &p, None)? {
                        // tapd puts the floor of the first hop's msat (value + fee) at the
                        // quote's rate in the HTLC (lightninglabs/taproot-assets
                        // tapchannel/aux_traffic_shaper.go `ProduceHtlcExtraData`, v0.8.1).
                        // A payment split over several HTLCs floors each, so it may spend a
                        // unit less per extra HTLC than this figure.
                        let msat = outcome.value_msat.saturating_add(outcome.fee_msat);
                        outcome.units_spent = bid_rate
                            .as_ref()
                            .map(|r| pricing::msat_to_units(msat, r))
                            .transpose()
                            .map_err(|e| {
                                BackendError::invalid_response(
                                    CALL,
                                    format!("cannot price the payment: {e}"),
                                )
                            })?;
                        return Ok(outcome);
                    }
                }
                None => {}
            }
        }
    }

    /// The asset units paying `payment_request` would cost, from tapd's decoding of the invoice
    /// at the edge's current rate (`DecodeAssetPayReq`), without paying.
    pub async fn preview_asset_payment(
        &self,
        payment_request: &str,
        asset: &AssetRef,
    ) -> Result<u64, BackendError> {
        const CALL: &str = "DecodeAssetPayReq";
        let (asset_id, group_key) = id_or_group(asset);
        let req = tapchannelrpc::AssetPayReq {
            asset_id,
            group_key,
            pay_req_string: payment_request.to_owned(),
            ..Default::default()
        };
        let resp = self
            .channels
            .clone()
            .decode_asset_pay_req(req)
            .await
            .map_err(|s| self.ctx.err(CALL, s))?
            .into_inner();
        Ok(resp.asset_amount)
    }
}

impl AssetInvoices for TapdNode {
    async fn create_asset_invoice(
        &self,
        req: &AssetInvoiceRequest,
    ) -> Result<AssetInvoice, BackendError> {
        const CALL: &str = "TaprootAssetChannels.AddInvoice";
        let sent = now();
        let expiry_secs = if req.expiry_secs == 0 {
            TAPD_DEFAULT_INVOICE_EXPIRY_SECS
        } else {
            req.expiry_secs
        };
        let (asset_id, group_key) = id_or_group(&req.asset);
        let peer_pubkey = match &req.edge_peer {
            Some(p) => peer_bytes(CALL, p)?,
            None => Vec::new(),
        };
        let request = tapchannelrpc::AddInvoiceRequest {
            asset_id,
            group_key,
            asset_amount: req.units,
            peer_pubkey,
            invoice_request: Some(lnrpc::Invoice {
                memo: req.memo.clone(),
                // Always explicit. Given 0, tapd 0.8.1 checks the quotes against its 300 s
                // default (`rfq.DefaultInvoiceExpiry`, rpcserver/rpcserver.go `AddInvoice`) but
                // leaves 0 in the request, so lnd writes its 24 h default into the invoice, which
                // then outlives its quote (and tapd ≤ 0.7 does not check at all,
                // taproot-assets#1341). So 0 ("the default") becomes tapd's 300 s, explicitly.
                expiry: i64::try_from(expiry_secs).unwrap_or(i64::MAX),
                ..Default::default()
            }),
            ..Default::default()
        };
        let resp = self
            .channels
            .clone()
            .add_invoice(request)
            .await
            .map_err(|s| self.ctx.err(CALL, s))?
            .into_inner();
        let quote = resp
            .accepted_buy_quote
            .as_ref()
            .ok_or_else(|| BackendError::invalid_response(CALL, "no accepted buy quote"))?;
        let quote = buy_quote(CALL, quote)?;
        let inv = resp
            .invoice_result
            .ok_or_else(|| BackendError::invalid_response(CALL, "no invoice in the answer"))?;
        // Older tapd (≤ 0.7) does not drop quotes that expire before the invoice: refuse here so
        // an invoice outliving its quote is never handed out (it could settle in BTC). The
        // invoice was created after `sent`, so it lives until at least `sent + expiry`;
        // comparing with the time after the answer would refuse good invoices whenever the call
        // straddles a second boundary.
        let lives_until = sent.saturating_add(expiry_secs);
        if quote.expires_at < lives_until {
            return Err(BackendError::QuoteOutlivedByInvoice {
                status: tonic::Status::failed_precondition(format!(
                    "quote expires at {} but the invoice would live until {lives_until}",
                    quote.expires_at
                )),
            });
        }
        let value_msat = pricing::units_to_msat(req.units, &quote.rate).map_err(|e| {
            BackendError::invalid_response(CALL, format!("cannot price the invoice: {e}"))
        })?;
        Ok(AssetInvoice {
            invoice: CreatedInvoice {
                payment_hash: PaymentHash(hash32(CALL, "r_hash", &inv.r_hash)?),
                payment_request: inv.payment_request,
                add_index: inv.add_index,
            },
            value_msat,
            quote,
        })
    }
}

/// What an RFQ order came back as: the buy and sell responses share this shape.
enum OrderOutcome<Q> {
    Accepted(Q),
    Rejected(String),
    Invalid(i32),
    Empty,
}

impl From<rfqrpc::AddAssetBuyOrderResponse> for OrderOutcome<rfqrpc::PeerAcceptedBuyQuote> {
    fn from(resp: rfqrpc::AddAssetBuyOrderResponse) -> Self {
        use rfqrpc::add_asset_buy_order_response::Response as R;
        match resp.response {
            Some(R::AcceptedQuote(q)) => Self::Accepted(q),
            Some(R::RejectedQuote(r)) => Self::Rejected(r.error_message),
            Some(R::InvalidQuote(q)) => Self::Invalid(q.status),
            None => Self::Empty,
        }
    }
}

impl From<rfqrpc::AddAssetSellOrderResponse> for OrderOutcome<rfqrpc::PeerAcceptedSellQuote> {
    fn from(resp: rfqrpc::AddAssetSellOrderResponse) -> Self {
        use rfqrpc::add_asset_sell_order_response::Response as R;
        match resp.response {
            Some(R::AcceptedQuote(q)) => Self::Accepted(q),
            Some(R::RejectedQuote(r)) => Self::Rejected(r.error_message),
            Some(R::InvalidQuote(q)) => Self::Invalid(q.status),
            None => Self::Empty,
        }
    }
}

impl<Q> OrderOutcome<Q> {
    /// The accepted quote, or why there is none.
    fn accepted(self, call: &'static str, edge_peer: &str) -> Result<Q, BackendError> {
        match self {
            Self::Accepted(q) => Ok(q),
            Self::Rejected(reason) => Err(rejected(edge_peer, reason)),
            Self::Invalid(status) => Err(rejected(
                edge_peer,
                format!("invalid quote (status {status})"),
            )),
            Self::Empty => Err(BackendError::invalid_response(call, "empty response")),
        }
    }
}

/// The terms every RFQ order carries: absolute expiry, peer key and how long tapd may wait.
struct OrderTerms {
    expiry: u64,
    peer_pub_key: Vec<u8>,
    timeout_seconds: u32,
}

impl TapdNode {
    fn order_terms(
        &self,
        call: &'static str,
        edge_peer: &str,
        expiry_secs: u64,
    ) -> Result<OrderTerms, BackendError> {
        Ok(OrderTerms {
            expiry: now().saturating_add(expiry_secs),
            peer_pub_key: peer_bytes(call, edge_peer)?,
            timeout_seconds: u32::try_from(self.ctx.timeout.as_secs().max(1)).unwrap_or(u32::MAX),
        })
    }
}

impl Rates for TapdNode {
    async fn buy_quote(
        &self,
        asset: &AssetRef,
        units: u64,
        edge_peer: &str,
        expiry_secs: u64,
    ) -> Result<BuyQuote, BackendError> {
        const CALL: &str = "AddAssetBuyOrder";
        let t = self.order_terms(CALL, edge_peer, expiry_secs)?;
        let req = rfqrpc::AddAssetBuyOrderRequest {
            asset_specifier: Some(specifier(asset)),
            asset_max_amt: units,
            expiry: t.expiry,
            peer_pub_key: t.peer_pub_key,
            timeout_seconds: t.timeout_seconds,
            ..Default::default()
        };
        let resp = self
            .rfq
            .clone()
            .add_asset_buy_order(req)
            .await
            .map_err(|s| self.ctx.err(CALL, s))?;
        let q = OrderOutcome::from(resp.into_inner()).accepted(CALL, edge_peer)?;
        buy_quote(CALL, &q)
    }

    async fn sell_quote(
        &self,
        asset: &AssetRef,
        max_msat: u64,
        edge_peer: &str,
        expiry_secs: u64,
    ) -> Result<SellQuote, BackendError> {
        const CALL: &str = "AddAssetSellOrder";
        let t = self.order_terms(CALL, edge_peer, expiry_secs)?;
        let req = rfqrpc::AddAssetSellOrderRequest {
            asset_specifier: Some(specifier(asset)),
            payment_max_amt: max_msat,
            expiry: t.expiry,
            peer_pub_key: t.peer_pub_key,
            timeout_seconds: t.timeout_seconds,
            ..Default::default()
        };
        let resp = self
            .rfq
            .clone()
            .add_asset_sell_order(req)
            .await
            .map_err(|s| self.ctx.err(CALL, s))?;
        let q = OrderOutcome::from(resp.into_inner()).accepted(CALL, edge_peer)?;
        sell_quote(CALL, &q)
    }

    async fn decimal_display(&self, asset: &AssetRef) -> Result<u8, BackendError> {
        const CALL: &str = "FetchAssetMeta";
        let AssetRef::Id(id) = asset else {
            return Err(BackendError::invalid_request(
                CALL,
                "asset metadata is looked up by asset id",
            ));
        };
        let req = taprpc::FetchAssetMetaRequest {
            asset: Some(taprpc::fetch_asset_meta_request::Asset::AssetId(
                id.to_vec(),
            )),
        };
        let meta = self
            .assets
            .clone()
            .fetch_asset_meta(req)
            .await
            .map_err(|s| self.ctx.err(CALL, s))?
            .into_inner();
        u8::try_from(meta.decimal_display)
            .ok()
            .filter(|d| *d <= pricing::MAX_DECIMALS)
            .ok_or_else(|| {
                BackendError::invalid_response(
                    CALL,
                    format!("decimal display {}", meta.decimal_display),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lightning::channel_data;

    const USD: &str = "4d2dfb0a8f1d3bb1f5e1c2a7b9d8e6f40a1b2c3d4e5f60718293a4b5c6d7403f";
    const GROUP: &str = "02a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

    fn channels() -> AssetChannelBalances {
        let json = format!(
            r#"{{"open_channels":{{
                  "{USD}":{{"asset_id":"{USD}","name":"USD","local_balance":2000000,"remote_balance":998000000}},
                  "{other}":{{"asset_id":"{other}","name":"EUR","local_balance":5,"remote_balance":0}}}},
                "open_channels_by_group":{{"{GROUP}":{{"local_balance":2000007,"remote_balance":1}}}},
                "pending_channels":{{"{USD}":{{"asset_id":"{USD}","name":"USD","local_balance":300,"remote_balance":0}}}},
                "pending_channels_by_group":{{}}}}"#,
            other = "11".repeat(32)
        );
        channel_data::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn balance_adds_the_local_side_of_open_channels_to_on_chain_units() {
        let usd = AssetRef::parse(USD).unwrap();
        let b = asset_balance(&usd, 40, &channels()).unwrap();
        assert_eq!(
            b,
            AssetBalance {
                on_chain: 40,
                in_channels: 2_000_000
            }
        );
        assert_eq!(
            b.total(),
            2_000_040,
            "not the remote side, nor pending channels"
        );

        let group = AssetRef::parse(GROUP).unwrap();
        assert_eq!(
            asset_balance(&group, 0, &channels()).unwrap().total(),
            2_000_007
        );

        // An asset with no channel: on chain only; with no channels at all, the same.
        let none = AssetRef::Id([9; 32]);
        assert_eq!(asset_balance(&none, 7, &channels()).unwrap().total(), 7);
        let empty = AssetChannelBalances::default();
        assert_eq!(asset_balance(&usd, 7, &empty).unwrap().in_channels, 0);
    }

    #[test]
    fn a_balance_that_overflows_is_an_error() {
        let usd = AssetRef::parse(USD).unwrap();
        let err = asset_balance(&usd, u64::MAX, &channels()).unwrap_err();
        assert!(
            matches!(err, BackendError::InvalidResponse { .. }),
            "{err:?}"
        );
    }
}
