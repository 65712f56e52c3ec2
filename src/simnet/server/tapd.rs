//! tapd's services on a simnet node: `TaprootAssets` (GetInfo, ListAssets, ListBalances,
//! FetchAssetMeta), `Rfq` (buy and sell orders with the edge, accepted quotes) and
//! `TaprootAssetChannels` (asset invoices, asset payments, DecodeAssetPayReq).
//!
//! As elsewhere in the servers: fault knobs first, one model call, translation. What tapd
//! reports as an RPC error (no asset channel, below the minimal transportable amount, a
//! rejected quote) is an error here too; what lnd reports on the payment stream stays there.

use tonic::{Request, Response, Status};

use super::convert::{self, asset_ref, rfq_asset};
use super::lnd::fee_limit_msat;
use super::status;
use super::stream::RpcStream;
use super::{NodeService, asset_of};
use crate::lightning::proto::{lnrpc, rfqrpc, tapchannelrpc, taprpc};
use crate::simnet::model::NodeId;
use crate::simnet::model::{
    AssetHolding, AssetId, AssetInfo, AssetInvoiceRequest, AssetPayment, InvoiceError,
    InvoiceSecret, QuoteId, RfqError,
};

/// tapd's services for one node.
pub(crate) struct Tapd(pub(crate) NodeService);

type Rpc<T> = Result<Response<T>, Status>;

fn asset_proto(node_key: &[u8], h: &AssetHolding) -> taprpc::Asset {
    taprpc::Asset {
        asset_genesis: Some(convert::genesis(&h.asset)),
        amount: h.units,
        // The simnet's assets all sit in channels; the node's key stands in for a script key.
        script_key: node_key.to_vec(),
        script_key_is_local: true,
        asset_group: convert::asset_group(&h.asset),
        is_spent: false,
        is_burn: false,
        decimal_display: Some(convert::decimal_display(&h.asset)),
    }
}

fn hex_arg(s: &str, field: &str) -> Result<Vec<u8>, Status> {
    hex::decode(s).map_err(|_| Status::invalid_argument(format!("{field} is not hex")))
}

#[tonic::async_trait]
impl taprpc::taproot_assets_server::TaprootAssets for Tapd {
    async fn list_assets(
        &self,
        req: Request<taprpc::ListAssetRequest>,
    ) -> Rpc<taprpc::ListAssetResponse> {
        let svc = self.0.gate().await?;
        let r = req.into_inner();
        let held = svc.net.read(|m| m.assets_held(svc.node));
        let key = svc.net.read(|m| m.pubkey(svc.node));
        let assets = held
            .map_err(status::query)?
            .iter()
            .filter(|h| r.min_amount == 0 || h.units >= r.min_amount)
            .filter(|h| r.max_amount == 0 || h.units <= r.max_amount)
            .filter(|h| {
                r.group_key.is_empty()
                    || h.asset
                        .group_key
                        .is_some_and(|g| g.0.as_slice() == r.group_key)
            })
            .map(|h| asset_proto(&key.0, h))
            .collect();
        Ok(Response::new(taprpc::ListAssetResponse {
            assets,
            ..Default::default()
        }))
    }

    async fn list_balances(
        &self,
        req: Request<taprpc::ListBalancesRequest>,
    ) -> Rpc<taprpc::ListBalancesResponse> {
        use taprpc::list_balances_request::GroupBy;
        let svc = self.0.gate().await?;
        let r = req.into_inner();
        let by_group = match r.group_by {
            Some(GroupBy::AssetId(_)) => false,
            Some(GroupBy::GroupKey(_)) => true,
            None => return Err(Status::invalid_argument("invalid group_by")),
        };
        // On-chain units only: tapd's default (BIP-86 script keys) leaves channel outputs out;
        // the node's lnd reports those (`ChannelBalance`, custom_channel_data).
        let held = svc.net.read(|m| m.assets_on_chain(svc.node));
        let mut resp = taprpc::ListBalancesResponse::default();
        for h in held.map_err(status::query)? {
            let group_key = h.asset.group_key.map(|g| g.0.to_vec()).unwrap_or_default();
            let wanted_id = r.asset_filter.is_empty() || r.asset_filter == h.asset.asset_id.0;
            let wanted_group = r.group_key_filter.is_empty() || r.group_key_filter == group_key;
            if !(wanted_id && wanted_group) {
                continue;
            }
            if !by_group {
                let balance = taprpc::AssetBalance {
                    asset_genesis: Some(convert::genesis(&h.asset)),
                    balance: h.units,
                    group_key,
                };
                resp.asset_balances
                    .insert(h.asset.asset_id.to_hex(), balance);
            } else if !group_key.is_empty() {
                let key = hex::encode(&group_key);
                let balance = taprpc::AssetGroupBalance {
                    group_key,
                    balance: h.units,
                };
                resp.asset_group_balances.insert(key, balance);
            }
        }
        Ok(Response::new(resp))
    }

    async fn get_info(&self, _: Request<taprpc::GetInfoRequest>) -> Rpc<taprpc::GetInfoResponse> {
        let svc = self.0.gate().await?;
        let info = svc
            .net
            .read(|m| m.node_info(svc.node))
            .map_err(status::query)?;
        Ok(Response::new(taprpc::GetInfoResponse {
            version: info.tapd_version.to_owned(),
            lnd_version: info.lnd_version.to_owned(),
            network: info.network.to_owned(),
            lnd_identity_pubkey: info.pubkey.to_hex(),
            node_alias: info.alias,
            block_height: info.block_height,
            block_hash: info.block_hash,
            sync_to_chain: info.synced_to_chain,
        }))
    }

    async fn fetch_asset_meta(
        &self,
        req: Request<taprpc::FetchAssetMetaRequest>,
    ) -> Rpc<taprpc::FetchAssetMetaResponse> {
        use taprpc::fetch_asset_meta_request::Asset as By;
        let svc = self.0.gate().await?;
        let asset = svc.net.read(asset_of);
        let id = match req.into_inner().asset {
            Some(By::AssetId(b)) => asset_ref(&asset, &b, &[])?,
            Some(By::AssetIdStr(s)) => asset_ref(&asset, &hex_arg(&s, "asset_id_str")?, &[])?,
            Some(By::MetaHash(b)) => meta_hash_owner(&asset, &b)?,
            Some(By::MetaHashStr(s)) => meta_hash_owner(&asset, &hex_arg(&s, "meta_hash_str")?)?,
            None => {
                return Err(Status::invalid_argument(
                    "asset_id or meta_hash must be set",
                ));
            }
        };
        let meta = svc.net.read(|m| m.asset_meta(svc.node, &id).cloned());
        let meta = meta.map_err(status::query)?;
        Ok(Response::new(taprpc::FetchAssetMetaResponse {
            data: meta.meta_data.clone(),
            r#type: taprpc::AssetMetaType::MetaTypeJson as i32,
            meta_hash: meta.meta_hash.to_vec(),
            decimal_display: u32::from(meta.decimal_display),
        }))
    }
}

/// The asset whose genesis meta hashes to `hash`.
fn meta_hash_owner(asset: &AssetInfo, hash: &[u8]) -> Result<AssetId, Status> {
    if asset.meta_hash.as_slice() == hash {
        Ok(asset.asset_id)
    } else {
        Err(Status::not_found(format!(
            "asset meta not found for meta hash {}",
            hex::encode(hash)
        )))
    }
}

/// What an RFQ order request must carry, as tapd checks it.
fn order_peer(peer_pub_key: &[u8], timeout_seconds: u32, side: &str) -> Result<(), Status> {
    if peer_pub_key.is_empty() {
        return Err(Status::invalid_argument(format!(
            "{side} order peer must be specified"
        )));
    }
    if timeout_seconds == 0 {
        return Err(Status::invalid_argument(
            "timeout_seconds must be greater than 0",
        ));
    }
    Ok(())
}

fn rejected(e: &RfqError) -> Option<rfqrpc::RejectedQuoteResponse> {
    match e {
        RfqError::Rejected { peer, reason } => Some(rfqrpc::RejectedQuoteResponse {
            peer: peer.to_hex(),
            id: Vec::new(),
            error_message: reason.clone(),
            error_code: 0,
        }),
        _ => None,
    }
}

#[tonic::async_trait]
impl rfqrpc::rfq_server::Rfq for Tapd {
    async fn add_asset_buy_order(
        &self,
        req: Request<rfqrpc::AddAssetBuyOrderRequest>,
    ) -> Rpc<rfqrpc::AddAssetBuyOrderResponse> {
        use rfqrpc::add_asset_buy_order_response::Response as Outcome;
        let svc = self.0.gate().await?;
        let r = req.into_inner();
        let asset = svc.net.read(asset_of);
        let asset_id = rfq_asset(&asset, r.asset_specifier.as_ref())?;
        order_peer(&r.peer_pub_key, r.timeout_seconds, "buy")?;
        let peer = convert::peer(&r.peer_pub_key, "peer_pub_key")?;
        let quote = svc.net.update_now(|m, now| {
            m.add_buy_order(svc.node, &asset_id, r.asset_max_amt, peer.as_ref(), now)
        });
        let outcome = match quote {
            Ok(q) => {
                let key = svc.net.read(|m| m.pubkey(q.peer));
                Outcome::AcceptedQuote(convert::buy_quote(&asset, &key, &q))
            }
            Err(e) => {
                Outcome::RejectedQuote(rejected(&e).ok_or_else(|| status::rfq(e, peer.as_ref()))?)
            }
        };
        Ok(Response::new(rfqrpc::AddAssetBuyOrderResponse {
            response: Some(outcome),
        }))
    }

    async fn add_asset_sell_order(
        &self,
        req: Request<rfqrpc::AddAssetSellOrderRequest>,
    ) -> Rpc<rfqrpc::AddAssetSellOrderResponse> {
        use rfqrpc::add_asset_sell_order_response::Response as Outcome;
        let svc = self.0.gate().await?;
        let r = req.into_inner();
        let asset = svc.net.read(asset_of);
        let asset_id = rfq_asset(&asset, r.asset_specifier.as_ref())?;
        order_peer(&r.peer_pub_key, r.timeout_seconds, "sell")?;
        let peer = convert::peer(&r.peer_pub_key, "peer_pub_key")?;
        let quote = svc.net.update_now(|m, now| {
            m.add_sell_order(svc.node, &asset_id, r.payment_max_amt, peer.as_ref(), now)
        });
        let outcome = match quote {
            Ok(q) => {
                let key = svc.net.read(|m| m.pubkey(q.peer));
                Outcome::AcceptedQuote(convert::sell_quote(&asset, &key, &q))
            }
            Err(e) => {
                Outcome::RejectedQuote(rejected(&e).ok_or_else(|| status::rfq(e, peer.as_ref()))?)
            }
        };
        Ok(Response::new(rfqrpc::AddAssetSellOrderResponse {
            response: Some(outcome),
        }))
    }

    async fn query_peer_accepted_quotes(
        &self,
        _: Request<rfqrpc::QueryPeerAcceptedQuotesRequest>,
    ) -> Rpc<rfqrpc::QueryPeerAcceptedQuotesResponse> {
        let svc = self.0.gate().await?;
        let now = svc.net.now();
        let (asset, keys, quotes) = svc.net.read(|m| {
            let keys = NodeId::ALL.map(|n| m.pubkey(n));
            (asset_of(m), keys, m.peer_accepted_quotes(svc.node, now))
        });
        let quotes = quotes.map_err(|e| status::rfq(e, None))?;
        let key = |n: NodeId| keys[n.index()];
        Ok(Response::new(rfqrpc::QueryPeerAcceptedQuotesResponse {
            buy_quotes: quotes
                .buy
                .iter()
                .map(|q| convert::buy_quote(&asset, &key(q.peer), q))
                .collect(),
            sell_quotes: quotes
                .sell
                .iter()
                .map(|q| convert::sell_quote(&asset, &key(q.peer), q))
                .collect(),
        }))
    }
}

fn payment_result(p: lnrpc::Payment) -> tapchannelrpc::SendPaymentResponse {
    tapchannelrpc::SendPaymentResponse {
        result: Some(tapchannelrpc::send_payment_response::Result::PaymentResult(
            p,
        )),
    }
}

#[tonic::async_trait]
impl tapchannelrpc::taproot_asset_channels_server::TaprootAssetChannels for Tapd {
    type SendPaymentStream = RpcStream<tapchannelrpc::SendPaymentResponse>;

    async fn send_payment(
        &self,
        req: Request<tapchannelrpc::SendPaymentRequest>,
    ) -> Rpc<Self::SendPaymentStream> {
        use tapchannelrpc::send_payment_response::Result as Update;
        let svc = self.0.gate().await?;
        let r = req.into_inner();
        let pay = r.payment_request.unwrap_or_default();
        if pay.payment_request.is_empty() {
            return Err(Status::invalid_argument(
                "payment_request.payment_request must be set: the simnet pays invoices only (no keysend)",
            ));
        }
        if r.asset_amount != 0 {
            return Err(Status::invalid_argument(
                "asset_amount is for keysend payments, which the simnet does not simulate; pay an invoice",
            ));
        }
        let max_fee = fee_limit_msat(pay.fee_limit_sat, pay.fee_limit_msat)?;
        let no_inflight = pay.no_inflight_updates;
        let pr = pay.payment_request;
        if r.asset_id.is_empty() && r.group_key.is_empty() {
            // No asset: tapd hands the payment to lnd as a plain sats payment.
            let paid = svc
                .net
                .update_now(|m, now| m.pay_sats(svc.node, &pr, max_fee, now));
            let payment = svc.settle_pay_result(paid, &pr, &status::PayVia::Sats)?;
            let stream = svc.payment_updates(
                "SendPayment",
                &payment,
                no_inflight,
                Vec::new(),
                payment_result,
            );
            return Ok(Response::new(stream));
        }
        let asset = svc.net.read(asset_of);
        let asset_id = asset_ref(&asset, &r.asset_id, &r.group_key)?;
        let peer = convert::peer(&r.peer_pubkey, "peer_pubkey")?;
        if !r.rfq_id.is_empty() {
            svc.check_sell_quote(&r.rfq_id)?;
        }
        let request = AssetPayment {
            payment_request: &pr,
            asset_id,
            peer,
            fee_limit_msat: max_fee,
            allow_overpay: r.allow_overpay,
        };
        let paid = svc
            .net
            .update_now(|m, now| m.pay_with_asset(svc.node, &request, now));
        let payment = svc.settle_pay_result(
            paid,
            &pr,
            &status::PayVia::Asset {
                peer: peer.as_ref(),
                negotiated: !r.rfq_id.is_empty(),
                hash: svc
                    .net
                    .read(|m| m.decode_pay_req(svc.node, &pr))
                    .map(|d| d.payment_hash.to_hex())
                    .unwrap_or_default(),
            },
        )?;
        // tapd streams the quote it paid under first: the deprecated single-quote arm, then
        // the list of every quote (there is only ever one edge here).
        let first = match &payment.asset {
            Some(spent) => {
                let key = svc.net.read(|m| m.pubkey(spent.quote.peer));
                let quote = convert::sell_quote(&asset, &key, &spent.quote);
                let all = tapchannelrpc::AcceptedSellQuotes {
                    accepted_sell_orders: vec![quote.clone()],
                };
                vec![
                    tapchannelrpc::SendPaymentResponse {
                        result: Some(Update::AcceptedSellOrder(quote)),
                    },
                    tapchannelrpc::SendPaymentResponse {
                        result: Some(Update::AcceptedSellOrders(all)),
                    },
                ]
            }
            None => Vec::new(),
        };
        let stream =
            svc.payment_updates("SendPayment", &payment, no_inflight, first, payment_result);
        Ok(Response::new(stream))
    }

    async fn add_invoice(
        &self,
        req: Request<tapchannelrpc::AddInvoiceRequest>,
    ) -> Rpc<tapchannelrpc::AddInvoiceResponse> {
        let svc = self.0.gate().await?;
        let r = req.into_inner();
        let asset = svc.net.read(asset_of);
        let asset_id = asset_ref(&asset, &r.asset_id, &r.group_key)?;
        let inv = r.invoice_request.unwrap_or_default();
        let sats_amount = inv.value != 0 || inv.value_msat != 0;
        if sats_amount && r.asset_amount != 0 {
            return Err(Status::invalid_argument(
                "cannot set both asset amount and sats amount",
            ));
        }
        if sats_amount {
            return Err(Status::unimplemented(
                "the simnet prices asset invoices from asset_amount only; set asset_amount instead of invoice_request.value",
            ));
        }
        let hodl = r.hodl_invoice.is_some();
        let secret = match (&r.hodl_invoice, inv.r_preimage.as_slice()) {
            (Some(h), _) => InvoiceSecret::Hold(convert::hash(&h.payment_hash, "payment_hash")?),
            (None, []) => InvoiceSecret::Generate,
            (None, p) => InvoiceSecret::Preimage(convert::preimage(p, "r_preimage")?),
        };
        let peer = convert::peer(&r.peer_pubkey, "peer_pubkey")?;
        let request = AssetInvoiceRequest {
            asset_id,
            asset_amount: r.asset_amount,
            peer,
            memo: inv.memo,
            expiry_secs: convert::unsigned(inv.expiry, "expiry")?,
            secret,
        };
        let added = svc
            .net
            .update_now(|m, now| m.add_asset_invoice(svc.node, request, now))
            .map_err(|e| status::asset_invoice(e, peer.as_ref()))?;
        let invoice = added.invoice;
        // For hold invoices tapd goes through lnd's AddHoldInvoice and returns only the
        // payment request.
        let invoice_result = if hodl {
            lnrpc::AddInvoiceResponse {
                payment_request: invoice.payment_request,
                ..Default::default()
            }
        } else {
            lnrpc::AddInvoiceResponse {
                r_hash: invoice.payment_hash.0.to_vec(),
                payment_request: invoice.payment_request,
                add_index: invoice.add_index,
                payment_addr: invoice.payment_addr.to_vec(),
            }
        };
        Ok(Response::new(tapchannelrpc::AddInvoiceResponse {
            accepted_buy_quote: Some(convert::buy_quote(
                &asset,
                &svc.net.read(|m| m.pubkey(added.quote.peer)),
                &added.quote,
            )),
            invoice_result: Some(invoice_result),
        }))
    }

    async fn decode_asset_pay_req(
        &self,
        req: Request<tapchannelrpc::AssetPayReq>,
    ) -> Rpc<tapchannelrpc::AssetPayReqResponse> {
        let svc = self.0.gate().await?;
        let r = req.into_inner();
        let asset = svc.net.read(asset_of);
        let asset_id = asset_ref(&asset, &r.asset_id, &r.group_key)?;
        let decoded = svc
            .net
            .read(|m| m.decode_asset_pay_req(svc.node, &asset_id, &r.pay_req_string));
        let d = decoded.map_err(|e| match e {
            // tapd asks lnd's DecodePayReq and wraps its error under this (misleading) text
            // (lightninglabs/taproot-assets `rpcserver/rpcserver.go` `DecodeAssetPayReq`,
            // v0.8.1); lnd's gRPC error reads as Go prints a status.
            InvoiceError::InvalidPaymentRequest(msg) => Status::unknown(format!(
                "unable to fetch channel: rpc error: code = Unknown desc = {msg}"
            )),
            e => status::invoice(e),
        })?;
        Ok(Response::new(tapchannelrpc::AssetPayReqResponse {
            asset_amount: d.asset_amount,
            decimal_display: Some(convert::decimal_display(&d.asset)),
            asset_group: convert::asset_group(&d.asset),
            genesis_info: Some(convert::genesis(&d.asset)),
            pay_req: Some(convert::pay_req(&d.pay_req)),
        }))
    }
}

impl NodeService {
    /// A pre-negotiated `rfq_id` must name a live sell quote this node holds, as tapd requires.
    /// (The payment then runs under a fresh quote at the edge's current bid.)
    fn check_sell_quote(&self, rfq_id: &[u8]) -> Result<(), Status> {
        let id = QuoteId::from_slice(rfq_id).ok_or_else(|| {
            // tapd's words (lightninglabs/taproot-assets rpcserver/rpcserver.go, v0.8.1).
            Status::unknown("RFQ ID must be 32 bytes in length")
        })?;
        let now = self.net.now();
        let quotes = self.net.read(|m| m.peer_accepted_quotes(self.node, now));
        if quotes
            .map_err(|e| status::rfq(e, None))?
            .sell
            .iter()
            .any(|q| q.id == id)
        {
            Ok(())
        } else {
            // Word for word and with tapd's code, as the real regtest network answers.
            Err(Status::unknown(status::QUOTE_ID_UNKNOWN))
        }
    }
}
