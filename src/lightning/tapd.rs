//! The tapd adapter: asset invoices, RFQ quotes, asset facts and asset payments over tapd's
//! gRPC (`taprpc.TaprootAssets`, `rfqrpc.Rfq`, `tapchannelrpc.TaprootAssetChannels`).
//! Every RPC used here exists in tapd 0.7 (litd 0.16, Polar's default) and later.
//! Generated types stay in this file.

use std::time::{SystemTime, UNIX_EPOCH};

use super::error::BackendError;
use super::grpc::{AuthChannel, NodeConnection, connect_lazy, connect_lazy_streaming};
use super::lnd::{CallCtx, hash32, payment_outcome};
use super::proto::rfqrpc::rfq_client::RfqClient;
use super::proto::tapchannelrpc::{
    self, taproot_asset_channels_client::TaprootAssetChannelsClient,
};
use super::proto::taprpc::{self, taproot_assets_client::TaprootAssetsClient};
use super::proto::{lnrpc, rfqrpc, routerrpc};
use super::traits::{AssetInvoices, Rates};
use super::types::{
    AssetInvoice, AssetInvoiceRequest, AssetRef, BuyQuote, CreatedInvoice, PaymentOutcome,
    SellQuote,
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
        payment_max_msat: q.asset_amount,
        min_transportable_msat: q.min_transportable_msat,
    })
}

/// The fewest units worth at least `msat` at `rate`: what the edge takes for forwarding `msat`
/// (it is never short-changed by truncation). Computed from the accepted sell quote.
fn units_covering(msat: u64, rate: &FixedPoint) -> Result<u64, pricing::PricingError> {
    let mut units = pricing::msat_to_units(msat, rate)?;
    while pricing::units_to_msat(units, rate)? < msat {
        units += 1;
    }
    Ok(units)
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
            ctx: CallCtx::new(conn),
        })
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

    /// Units of `asset` this node holds in its channels and on chain (`ListBalances`).
    pub async fn asset_balance(&self, asset: &AssetRef) -> Result<u64, BackendError> {
        const CALL: &str = "ListBalances";
        let AssetRef::Id(id) = asset else {
            return Err(BackendError::invalid_request(
                CALL,
                "balances are listed by asset id",
            ));
        };
        let req = taprpc::ListBalancesRequest {
            group_by: Some(taprpc::list_balances_request::GroupBy::AssetId(true)),
            ..Default::default()
        };
        let resp = self
            .assets
            .clone()
            .list_balances(req)
            .await
            .map_err(|s| self.ctx.err(CALL, s))?
            .into_inner();
        Ok(resp
            .asset_balances
            .get(&hex::encode(id))
            .map_or(0, |b| b.balance))
    }

    /// Pays `payment_request` with the asset through `edge_peer`; the edge converts to sats
    /// on the first hop (`tapchannelrpc.SendPayment`).
    pub async fn pay_with_asset(
        &self,
        payment_request: &str,
        asset: &AssetRef,
        edge_peer: &str,
        max_fee_msat: u64,
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
        let mut bid_rate: Option<FixedPoint> = None;
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
                        let msat = outcome.value_msat.saturating_add(outcome.fee_msat);
                        outcome.units_spent = bid_rate
                            .as_ref()
                            .map(|r| units_covering(msat, r))
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
                // Always explicit: with 0, tapd ≤ 0.7 would give lnd's 24 h default to an invoice
                // whose quote lives minutes (taproot-assets#1341).
                expiry: i64::try_from(req.expiry_secs.max(1)).unwrap_or(i64::MAX),
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
        let lives_until = sent.saturating_add(req.expiry_secs);
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
