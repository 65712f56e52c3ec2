//! Asset invoices (tapd's `tapchannelrpc.AddInvoice` and `DecodeAssetPayReq`).
//!
//! As in tapd ≥ 0.8: the payee needs an asset channel with the peer (a down peer counts as
//! none, taproot-assets#1577); it places a buy order with the edge; it refuses amounts below
//! the quote's `min_transportable_units`; the invoice's msat value is
//! `units_to_msat(units, ask_rate)`; and it refuses an expiry that outlives the quote
//! (PR #1991), defaulting the expiry to the quote's remaining lifetime when 0 is asked.
//! With `legacy_quote_expiry` it behaves like tapd ≤ 0.7 instead (issue #1341).

use serde::Serialize;

use super::Simnet;
use super::asset::AssetInfo;
use super::error::InvoiceError;
use super::invoices::{
    AddedInvoice, AssetTerms, Draft, FINAL_CLTV_DELTA, InvoiceSecret, PayReq, RouteHint,
};
use super::rfq::{BuyQuote, OracleSide};
use super::types::{AssetId, NodeId, NodePubkey};
use crate::pricing::{msat_to_units, units_to_msat};

/// What to invoice in asset units (`tapchannelrpc.AddInvoiceRequest`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetInvoiceRequest {
    /// The asset.
    pub asset_id: AssetId,
    /// Units to receive; must be at least the quote's `min_transportable_units`.
    pub asset_amount: u64,
    /// The RFQ peer (the edge), or `None` for any peer with an asset channel.
    pub peer: Option<NodePubkey>,
    /// Description.
    pub memo: String,
    /// Seconds; 0 for the quote's remaining lifetime. Must not outlive the quote.
    pub expiry_secs: u64,
    /// Preimage source ([`InvoiceSecret::Hold`] for `hodl_invoice`).
    pub secret: InvoiceSecret,
}

/// What `tapchannelrpc.AddInvoice` returns: the accepted quote and lnd's invoice result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddedAssetInvoice {
    /// The buy quote the invoice is priced with.
    pub quote: BuyQuote,
    /// The invoice.
    pub invoice: AddedInvoice,
}

/// `tapchannelrpc.DecodeAssetPayReq`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AssetPayReq {
    /// The invoice's whole sats in units at the payer's own oracle's SALE rate, rounded down
    /// (see [`Simnet::decode_asset_pay_req`]; without fees and not the rate a sell quote would
    /// give: the real cost is in `Simnet::preview_asset_payment`).
    pub asset_amount: u64,
    /// The asset.
    pub asset: AssetInfo,
    /// The decoded invoice.
    pub pay_req: PayReq,
}

impl Simnet {
    /// `tapchannelrpc.AddInvoice` on `node`.
    pub fn add_asset_invoice(
        &mut self,
        node: NodeId,
        req: AssetInvoiceRequest,
        now: u64,
    ) -> Result<AddedAssetInvoice, InvoiceError> {
        self.require_up(node).map_err(InvoiceError::NodeDown)?;
        if req.asset_amount == 0 {
            return Err(InvoiceError::ZeroAmount);
        }
        // The buy order checks for the asset channel first, as tapd's AddInvoice does.
        let peer = req.peer.as_ref();
        let quote = self.add_buy_order(node, &req.asset_id, req.asset_amount, peer, now)?;
        if req.asset_amount < quote.min_transportable_units {
            return Err(InvoiceError::BelowMinTransportable {
                units: req.asset_amount,
                min: quote.min_transportable_units,
            });
        }
        let expiry_secs = self.asset_invoice_expiry(req.expiry_secs, &quote, now)?;
        let value_msat = units_to_msat(req.asset_amount, &quote.ask_rate)?;
        let draft = Draft {
            value_msat,
            memo: req.memo,
            description_hash: None,
            expiry_secs,
            secret: req.secret,
            route_hints: vec![self.rfq_hop_hint(&quote)],
            asset: Some(AssetTerms {
                asset_id: req.asset_id,
                units: req.asset_amount,
                quote: quote.clone(),
            }),
        };
        let invoice = self.insert_invoice(node, draft, now)?;
        Ok(AddedAssetInvoice { quote, invoice })
    }

    /// The invoice expiry for `requested` seconds under `quote`.
    fn asset_invoice_expiry(
        &self,
        requested: u64,
        quote: &BuyQuote,
        now: u64,
    ) -> Result<u64, InvoiceError> {
        if self.config.legacy_quote_expiry {
            // tapd ≤ 0.7 let lnd apply its own default and never compared with the quote.
            return Ok(match requested {
                0 => self.config.invoice_expiry_secs,
                e => e,
            });
        }
        let expiry_secs = match requested {
            0 => quote.expiry.saturating_sub(now),
            e => e,
        };
        let invoice_expiry = now.saturating_add(expiry_secs);
        if invoice_expiry > quote.expiry {
            return Err(InvoiceError::QuoteExpiresBeforeInvoice {
                quote_expiry: quote.expiry,
                invoice_expiry,
            });
        }
        Ok(expiry_secs)
    }

    /// The hop hint tapd puts on an asset invoice: the quote's peer, its SCID alias, and the
    /// peer's forwarding policy.
    fn rfq_hop_hint(&self, quote: &BuyQuote) -> RouteHint {
        RouteHint {
            node: self.keys.pubkey(quote.peer),
            chan_id: quote.scid,
            fee_base_msat: self.config.fees.base_msat,
            fee_ppm: self.config.fees.ppm,
            cltv_expiry_delta: FINAL_CLTV_DELTA,
        }
    }

    /// `tapchannelrpc.DecodeAssetPayReq` on `node`: the invoice and its amount in `asset_id`
    /// units, as tapd computes it (`DecodeAssetPayReq` and `assetInvoiceAmt` in
    /// lightninglabs/taproot-assets rpcserver/rpcserver.go, v0.8.1): lnd's `num_satoshis`
    /// (whole sats, the msat truncated) back in msat, converted at the rate the payer's *own*
    /// oracle gives for `QuerySellPrice` (a SALE, no units named), rounded down. No RFQ peer is
    /// asked. simnet has one oracle, the edge's, and every node's tapd uses it as its own (as a
    /// wallet pointed at its LSP's oracle with `experimental.rfq.priceoracleaddress` would), so
    /// the rate is the edge's SALE rate, its ask, not the bid a sell quote gets.
    pub fn decode_asset_pay_req(
        &self,
        node: NodeId,
        asset_id: &AssetId,
        payment_request: &str,
    ) -> Result<AssetPayReq, InvoiceError> {
        let pay_req = self.decode_pay_req(node, payment_request)?;
        if *asset_id != self.asset.asset_id {
            return Err(InvoiceError::UnknownAsset(*asset_id));
        }
        let rate = self.oracle_side_rate(asset_id, OracleSide::Sale)?;
        let whole_sats_msat = pay_req.num_msat / 1_000 * 1_000;
        Ok(AssetPayReq {
            asset_amount: msat_to_units(whole_sats_msat, &rate)?,
            asset: self.asset.clone(),
            pay_req,
        })
    }
}
