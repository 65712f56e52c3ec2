//! The edge node's price oracle and RFQ desk (tapd's `rfqrpc` and `priceoraclerpc`).
//!
//! Rates are tapd's: asset units per BTC, as [`FixedPoint`]. The edge quotes around a mid rate
//! derived from `usd_per_btc` by `crate::pricing::rate_from_usd_per_btc`:
//! * a **buy order** (the requester wants to *receive* assets; tapd's `AddInvoice` places one)
//!   gets the **ask** rate, `spread_ppm` *below* mid: fewer units per BTC, so the sats payer
//!   pays more msat for the units the receiver gets;
//! * a **sell order** (the requester wants to *pay* with assets) gets the **bid** rate,
//!   `spread_ppm` *above* mid: more units per msat sent.
//!
//! Either way the edge keeps the spread, as tapd's sample oracle does with its
//! PURCHASE/SALE prices. Quotes live as the sample oracle's do (300 s, 60 s for a buy order
//! above 100,000 units: [`SampleOracleLifetime`](super::config::SampleOracleLifetime)) unless
//! `quote_lifetime_secs` fixes one lifetime; the desk forgets expired ones.
//!
//! The desk is in memory: a restarted simnet is a new network, and [`Simnet::forget_quotes`]
//! models a restart that loses them. tapd ≥ 0.8 persists the quotes it accepted
//! (lightninglabs/taproot-assets tapdb/rfq_policies.go, v0.8.1); simnet does not.

use rust_decimal::Decimal;
use serde::Serialize;

use super::Simnet;
use super::config::{check_quote_lifetime, check_spread, quote_lifetime_secs};
use super::error::{ConfigError, RfqError};
use super::network::ChannelKind;
use super::types::{AssetId, NodeId, NodePubkey, QuoteId};
use crate::pricing::{
    FixedPoint, PricingError, min_transportable_msat, min_transportable_units, msat_to_units,
    rate_from_usd_per_btc,
};

/// The edge's three rates, asset units per BTC: `ask ≤ mid ≤ bid`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EdgeRates {
    /// From `usd_per_btc`.
    pub mid: FixedPoint,
    /// For buy orders (receiving assets): mid − spread.
    pub ask: FixedPoint,
    /// For sell orders (paying with assets): mid + spread.
    pub bid: FixedPoint,
}

/// Which side of the edge's book an oracle query is for, from the oracle owner's (edge's)
/// point of view, as `priceoraclerpc.TransactionType` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OracleSide {
    /// The edge buys the asset (a wallet pays with it): the bid rate.
    Purchase,
    /// The edge sells the asset (a wallet receives it): the ask rate.
    Sale,
}

/// An oracle answer (`priceoraclerpc.AssetRates`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OracleRate {
    /// `subjectAssetRate`, units per BTC.
    pub rate: FixedPoint,
    /// `expiry_timestamp`, unix seconds.
    pub expiry: u64,
}

/// An accepted buy quote (`rfqrpc.PeerAcceptedBuyQuote`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BuyQuote {
    /// RFQ id.
    pub id: QuoteId,
    /// SCID alias: the id's last 8 bytes.
    pub scid: u64,
    /// The node that accepted (always `edge`).
    pub peer: NodeId,
    /// The node that asked.
    pub requester: NodeId,
    /// The asset.
    pub asset_id: AssetId,
    /// Units the requester may receive under this quote.
    pub asset_max_amount: u64,
    /// The ask rate, units per BTC.
    pub ask_rate: FixedPoint,
    /// Unix seconds; the quote is live while `now < expiry`.
    pub expiry: u64,
    /// Smallest asset amount an HTLC can carry at this rate.
    pub min_transportable_units: u64,
}

/// An accepted sell quote (`rfqrpc.PeerAcceptedSellQuote`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SellQuote {
    /// RFQ id.
    pub id: QuoteId,
    /// SCID alias: the id's last 8 bytes.
    pub scid: u64,
    /// The node that accepted (always `edge`).
    pub peer: NodeId,
    /// The node that asked.
    pub requester: NodeId,
    /// The asset.
    pub asset_id: AssetId,
    /// The most msat the requester may send under this quote.
    pub payment_max_msat: u64,
    /// `payment_max_msat` in units at the bid rate, rounded down (tapd's `asset_amount`).
    pub asset_amount: u64,
    /// The bid rate, units per BTC.
    pub bid_rate: FixedPoint,
    /// Unix seconds; the quote is live while `now < expiry`.
    pub expiry: u64,
    /// Smallest payment an asset channel can make at this rate.
    pub min_transportable_msat: u64,
}

/// The live quotes a requester holds (`QueryPeerAcceptedQuotes`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AcceptedQuotes {
    /// Buy quotes.
    pub buy: Vec<BuyQuote>,
    /// Sell quotes.
    pub sell: Vec<SellQuote>,
}

/// The edge's current price knobs (they start from the config and change through setters).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RfqSettings {
    /// Mid price, dollars per bitcoin.
    pub usd_per_btc: Decimal,
    /// Half-spread, ppm.
    pub spread_ppm: u32,
    /// Lifetime of new quotes, seconds; `None` for the sample oracle's rule.
    pub quote_lifetime_secs: Option<u64>,
    /// When set, the reason every RFQ is rejected with.
    pub reject: Option<String>,
}

/// The edge's RFQ state.
#[derive(Clone, Debug)]
pub(crate) struct RfqDesk {
    pub(crate) usd_per_btc: Decimal,
    pub(crate) spread_ppm: u32,
    /// A fixed quote lifetime, or `None` for the sample oracle's rule.
    pub(crate) lifetime_secs: Option<u64>,
    /// When set, every order is rejected with this reason.
    pub(crate) reject: Option<String>,
    /// Live (and not yet pruned) quotes, oldest first.
    pub(crate) buy: Vec<BuyQuote>,
    pub(crate) sell: Vec<SellQuote>,
}

/// `usd` moved by `ppm` up or down, exact in decimal (then capped at 12 places).
fn spread_price(usd: Decimal, ppm: u32, up: bool) -> Result<Decimal, PricingError> {
    let million = Decimal::from(1_000_000u32);
    let factor = if up {
        million + Decimal::from(ppm)
    } else {
        million - Decimal::from(ppm)
    };
    usd.checked_mul(factor)
        .and_then(|d| d.checked_div(million))
        .map(|d| d.round_dp(12).normalize())
        .ok_or(PricingError::Overflow("rate"))
}

impl RfqDesk {
    pub(crate) fn rates(&self, decimals: u8) -> Result<EdgeRates, PricingError> {
        let usd = self.usd_per_btc;
        Ok(EdgeRates {
            mid: rate_from_usd_per_btc(usd, decimals)?,
            ask: rate_from_usd_per_btc(spread_price(usd, self.spread_ppm, false)?, decimals)?,
            bid: rate_from_usd_per_btc(spread_price(usd, self.spread_ppm, true)?, decimals)?,
        })
    }

    /// When a quote for `subject_asset_max_amount` units, issued at `now`, expires.
    fn expiry(&self, subject_asset_max_amount: u64, now: u64) -> u64 {
        now.saturating_add(quote_lifetime_secs(
            self.lifetime_secs,
            subject_asset_max_amount,
        ))
    }

    /// The buy quote `id`, if the desk still honours it at `now`.
    pub(crate) fn live_buy(&self, id: &QuoteId, now: u64) -> Option<&BuyQuote> {
        self.buy.iter().find(|q| q.id == *id && now < q.expiry)
    }

    fn prune(&mut self, now: u64) {
        self.buy.retain(|q| now < q.expiry);
        self.sell.retain(|q| now < q.expiry);
    }
}

impl Simnet {
    /// The edge's current rates.
    pub fn edge_rates(&self) -> Result<EdgeRates, RfqError> {
        Ok(self.rfq.rates(self.asset.decimal_display)?)
    }

    /// The edge's oracle answer for `side` (`priceoraclerpc.QueryAssetRates`) to a request
    /// naming `subject_asset_max_amount` units (0 for none), which sets the lifetime.
    pub fn oracle_rate(
        &self,
        asset_id: &AssetId,
        side: OracleSide,
        subject_asset_max_amount: u64,
        now: u64,
    ) -> Result<OracleRate, RfqError> {
        Ok(OracleRate {
            rate: self.oracle_side_rate(asset_id, side)?,
            expiry: self.rfq.expiry(subject_asset_max_amount, now),
        })
    }

    /// The rate the edge's oracle answers for `side`: its bid (PURCHASE) or ask (SALE).
    pub(crate) fn oracle_side_rate(
        &self,
        asset_id: &AssetId,
        side: OracleSide,
    ) -> Result<FixedPoint, RfqError> {
        self.require_up(NodeId::Edge).map_err(RfqError::NodeDown)?;
        self.check_asset(asset_id)?;
        let rates = self.edge_rates()?;
        Ok(match side {
            OracleSide::Purchase => rates.bid,
            OracleSide::Sale => rates.ask,
        })
    }

    fn check_asset(&self, asset_id: &AssetId) -> Result<(), RfqError> {
        if *asset_id == self.asset.asset_id {
            Ok(())
        } else {
            Err(RfqError::UnknownAsset(*asset_id))
        }
    }

    /// The RFQ peer for `node`'s asset channel in `asset_id` (optionally only with `peer`):
    /// the edge, if such a channel exists and the edge is up. A down peer counts as no
    /// channel, as tapd reports it (taproot-assets#1577).
    pub(crate) fn asset_peer(
        &self,
        node: NodeId,
        asset_id: &AssetId,
        peer: Option<&NodePubkey>,
    ) -> Result<NodeId, RfqError> {
        self.require_up(node).map_err(RfqError::NodeDown)?;
        self.check_asset(asset_id)?;
        let wanted = peer.map(|k| self.keys.node(k));
        let edge = NodeId::Edge;
        let ok = node != edge
            && wanted.is_none_or(|w| w == Some(edge))
            && self
                .channel_between(node, edge, ChannelKind::Asset(*asset_id))
                .is_some()
            && self.is_up(edge);
        if ok {
            Ok(edge)
        } else {
            Err(RfqError::NoAssetChannel {
                node,
                asset: *asset_id,
            })
        }
    }

    /// The edge's rates if it will quote at all (up, not rejecting).
    pub(crate) fn quoting_rates(&self) -> Result<EdgeRates, RfqError> {
        self.require_up(NodeId::Edge).map_err(RfqError::NodeDown)?;
        if let Some(reason) = &self.rfq.reject {
            return Err(RfqError::Rejected {
                peer: self.keys.pubkey(NodeId::Edge),
                reason: reason.clone(),
            });
        }
        self.edge_rates()
    }

    fn new_quote_id(&mut self) -> QuoteId {
        QuoteId::from_random(self.rng.next32("rfq-id"))
    }

    /// `AddAssetBuyOrder` on `requester`: the edge quotes its ask rate for receiving up to
    /// `asset_max_amt` units.
    pub fn add_buy_order(
        &mut self,
        requester: NodeId,
        asset_id: &AssetId,
        asset_max_amt: u64,
        peer: Option<&NodePubkey>,
        now: u64,
    ) -> Result<BuyQuote, RfqError> {
        let edge = self.asset_peer(requester, asset_id, peer)?;
        if asset_max_amt == 0 {
            return Err(RfqError::ZeroAmount);
        }
        let rates = self.quoting_rates()?;
        let id = self.new_quote_id();
        let quote = BuyQuote {
            id,
            scid: id.scid(),
            peer: edge,
            requester,
            asset_id: *asset_id,
            asset_max_amount: asset_max_amt,
            min_transportable_units: min_transportable_units(&rates.ask)?,
            ask_rate: rates.ask,
            // The edge asks its oracle with the order's units (`QuerySellPrice` with
            // `AssetMaxAmt`: taproot-assets rfq/portfolio_pilot.go `ResolveRequest`, v0.8.1).
            expiry: self.rfq.expiry(asset_max_amt, now),
        };
        self.rfq.prune(now);
        self.rfq.buy.push(quote.clone());
        self.touch();
        Ok(quote)
    }

    /// `AddAssetSellOrder` on `requester`: the edge quotes its bid rate for paying up to
    /// `payment_max_msat` with the asset.
    pub fn add_sell_order(
        &mut self,
        requester: NodeId,
        asset_id: &AssetId,
        payment_max_msat: u64,
        peer: Option<&NodePubkey>,
        now: u64,
    ) -> Result<SellQuote, RfqError> {
        self.asset_peer(requester, asset_id, peer)?;
        if payment_max_msat == 0 {
            return Err(RfqError::ZeroAmount);
        }
        let rates = self.quoting_rates()?;
        let draft = self.sell_quote_draft(requester, asset_id, payment_max_msat, &rates.bid)?;
        Ok(self.store_sell_quote(draft, now))
    }

    /// A sell quote at `bid` without its id and expiry (see [`Self::store_sell_quote`]), so a
    /// payment can price it while planning and issue it only if it goes ahead.
    pub(crate) fn sell_quote_draft(
        &self,
        requester: NodeId,
        asset_id: &AssetId,
        payment_max_msat: u64,
        bid: &FixedPoint,
    ) -> Result<SellQuote, PricingError> {
        Ok(SellQuote {
            id: QuoteId([0; 32]),
            scid: 0,
            peer: NodeId::Edge,
            requester,
            asset_id: *asset_id,
            payment_max_msat,
            asset_amount: msat_to_units(payment_max_msat, bid)?,
            min_transportable_msat: min_transportable_msat(bid)?,
            bid_rate: bid.clone(),
            expiry: 0,
        })
    }

    /// Gives a drafted sell quote its id and expiry and files it with the edge.
    pub(crate) fn store_sell_quote(&mut self, mut quote: SellQuote, now: u64) -> SellQuote {
        quote.id = self.new_quote_id();
        quote.scid = quote.id.scid();
        // A sell request names no units (`QueryBuyPrice` with `fn.None`: taproot-assets
        // rfq/portfolio_pilot.go `ResolveRequest`, v0.8.1), so the oracle is asked for 0.
        quote.expiry = self.rfq.expiry(0, now);
        self.rfq.prune(now);
        self.rfq.sell.push(quote.clone());
        self.touch();
        quote
    }

    /// The unexpired quotes the edge accepted for `requester` (`QueryPeerAcceptedQuotes`).
    pub fn peer_accepted_quotes(
        &self,
        requester: NodeId,
        now: u64,
    ) -> Result<AcceptedQuotes, RfqError> {
        self.require_up(requester).map_err(RfqError::NodeDown)?;
        Ok(AcceptedQuotes {
            buy: (self.rfq.buy.iter())
                .filter(|q| q.requester == requester && now < q.expiry)
                .cloned()
                .collect(),
            sell: (self.rfq.sell.iter())
                .filter(|q| q.requester == requester && now < q.expiry)
                .cloned()
                .collect(),
        })
    }

    /// The edge's current price knobs.
    pub fn rfq_settings(&self) -> RfqSettings {
        RfqSettings {
            usd_per_btc: self.rfq.usd_per_btc,
            spread_ppm: self.rfq.spread_ppm,
            quote_lifetime_secs: self.rfq.lifetime_secs,
            reject: self.rfq.reject.clone(),
        }
    }

    /// Fault knob: make the edge reject every RFQ with `reason` (`None` to accept again).
    pub fn set_rfq_reject(&mut self, reason: Option<String>) {
        self.rfq.reject = reason;
        self.touch();
    }

    /// Fault knob: the edge forgets every quote, so open asset invoices become unpayable
    /// (`PayError::QuoteExpired`). This is tapd ≤ 0.7 restarting, which kept quotes in memory;
    /// tapd ≥ 0.8 persists them and honours them after a restart (taproot-assets
    /// tapdb/rfq_policies.go `PersistedPolicyStore`, v0.8.1), which simnet does not model.
    pub fn forget_quotes(&mut self) {
        self.rfq.buy.clear();
        self.rfq.sell.clear();
        self.touch();
    }

    /// Price knob: the mid price in dollars per bitcoin. Existing quotes keep their rates.
    pub fn set_usd_per_btc(&mut self, usd_per_btc: Decimal) -> Result<(), ConfigError> {
        let mut desk = self.rfq.clone();
        desk.usd_per_btc = usd_per_btc;
        desk.rates(self.asset.decimal_display)
            .map_err(|source| ConfigError::Price {
                usd_per_btc,
                source,
            })?;
        self.rfq.usd_per_btc = usd_per_btc;
        self.touch();
        Ok(())
    }

    /// Price knob: the edge's half-spread, ppm.
    pub fn set_spread_ppm(&mut self, spread_ppm: u32) -> Result<(), ConfigError> {
        check_spread(spread_ppm)?;
        self.rfq.spread_ppm = spread_ppm;
        self.touch();
        Ok(())
    }

    /// Price knob: the lifetime of quotes issued from now on, seconds.
    pub fn set_quote_lifetime_secs(&mut self, secs: u64) -> Result<(), ConfigError> {
        check_quote_lifetime(secs)?;
        self.rfq.lifetime_secs = Some(secs);
        self.touch();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simnet::model::SimnetConfig;
    use std::str::FromStr;

    fn net() -> Simnet {
        Simnet::new(SimnetConfig::default()).unwrap()
    }

    #[test]
    fn default_rates_are_mid_and_one_percent_either_side() {
        let r = net().edge_rates().unwrap();
        assert_eq!(r.mid.to_string(), "100000000000");
        assert_eq!(r.ask.to_string(), "99000000000");
        assert_eq!(r.bid.to_string(), "101000000000");
    }

    #[test]
    fn odd_prices_stay_exact() {
        let mut n = net();
        n.set_usd_per_btc(Decimal::from_str("97123.45").unwrap())
            .unwrap();
        n.set_spread_ppm(12_345).unwrap();
        assert_eq!(n.rfq_settings().spread_ppm, 12_345);
        let r = n.edge_rates().unwrap();
        assert_eq!(r.mid.to_string(), "97123450000");
        // 97123.45 · 0.987655 = 95924.46100975 exactly, shifted by 6 decimals.
        assert_eq!(r.ask.to_string(), "95924461009.75");
        assert!(n.set_usd_per_btc(Decimal::ZERO).is_err());
        assert!(n.set_spread_ppm(1_000_000).is_err());
        assert!(n.set_quote_lifetime_secs(5).is_err());
    }

    #[test]
    fn quotes_carry_tapd_fields_and_expire() {
        let mut n = net();
        let usd = n.asset().asset_id;
        let q = n
            .add_buy_order(NodeId::Merchant, &usd, 1_000_000, None, 1_000)
            .unwrap();
        assert_eq!(q.scid, q.id.scid());
        // The sample oracle's 60 s for an order above 100,000 units.
        assert_eq!(q.expiry, 1_060);
        assert_eq!(q.min_transportable_units, 350_460);
        let s = n
            .add_sell_order(NodeId::Alice, &usd, 505_000, None, 1_000)
            .unwrap();
        assert_eq!(s.asset_amount, 510_050);
        assert_eq!(s.min_transportable_msat, 354_000);
        // A sell order names no units: the sample oracle's 300 s.
        assert_eq!(s.expiry, 1_300);
        let live = n.peer_accepted_quotes(NodeId::Merchant, 1_059).unwrap();
        assert_eq!((live.buy.len(), live.sell.len()), (1, 0));
        assert!(
            n.peer_accepted_quotes(NodeId::Merchant, 1_060)
                .unwrap()
                .buy
                .is_empty()
        );
        let o = n.oracle_rate(&usd, OracleSide::Sale, 1_000_000, 5).unwrap();
        assert_eq!((o.rate, o.expiry), (q.ask_rate, 65));
        let o = n
            .oracle_rate(&usd, OracleSide::Purchase, 100_000, 5)
            .unwrap();
        assert_eq!((o.rate, o.expiry), (s.bid_rate, 305));
        // A fixed lifetime applies to every quote.
        n.set_quote_lifetime_secs(600).unwrap();
        let q = n
            .add_buy_order(NodeId::Merchant, &usd, 1_000_000, None, 1_000)
            .unwrap();
        assert_eq!(q.expiry, 1_600);
        assert_eq!(n.rfq_settings().quote_lifetime_secs, Some(600));
    }

    #[test]
    fn orders_fail_by_input() {
        let mut n = net();
        let usd = n.asset().asset_id;
        let e = n.add_buy_order(NodeId::Bob, &usd, 1, None, 0).unwrap_err();
        assert!(matches!(
            e,
            RfqError::NoAssetChannel {
                node: NodeId::Bob,
                ..
            }
        ));
        let merchant_key = n.pubkey(NodeId::Merchant);
        let e = n.add_buy_order(NodeId::Alice, &usd, 1, Some(&merchant_key), 0);
        assert!(matches!(e, Err(RfqError::NoAssetChannel { .. })));
        let e = n.add_buy_order(NodeId::Alice, &AssetId([0; 32]), 1, None, 0);
        assert!(matches!(e, Err(RfqError::UnknownAsset(_))));
        assert_eq!(
            n.add_buy_order(NodeId::Alice, &usd, 0, None, 0),
            Err(RfqError::ZeroAmount)
        );
        n.set_rfq_reject(Some("oracle unavailable".into()));
        let e = n
            .add_sell_order(NodeId::Alice, &usd, 1_000, None, 0)
            .unwrap_err();
        assert!(e.to_string().contains("oracle unavailable"));
        n.set_rfq_reject(None);
        n.set_down(NodeId::Edge, true);
        let e = n.add_sell_order(NodeId::Alice, &usd, 1_000, None, 0);
        assert!(matches!(e, Err(RfqError::NoAssetChannel { .. })));
    }
}
