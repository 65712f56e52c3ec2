//! The challenger: turns a service's dollar price into an invoice the buyer can pay, in sats or
//! in the service's Taproot Asset, at the edge's current rate.
//!
//! It owns the choice of rail (the service's settlement, and for an asset price below what one
//! asset HTLC can carry, the seller's `small_price` choice), the price arithmetic's inputs (the
//! cached rate, the asset's decimal display) and the invoice's expiry, which never outlives the
//! quote it was priced at. It must not mint tokens (that is [`super::Mint`]), know about HTTP,
//! or read the system clock (the injected [`Clock`] is its time).
//!
//! Rates come from one [`RateCache`] per gateway, keyed by asset and edge, so concurrent
//! challenges share one RFQ in flight and RFQ calls stay at about one per asset per quote
//! lifetime. An asset invoice is the exception upstream imposes: tapd's
//! `tapchannelrpc.AddInvoice` negotiates its own buy quote for every invoice and takes no quote
//! id (lightninglabs/taproot-assets `rpcserver/rpcserver.go`, v0.8.1, `AddInvoice`), so each
//! asset invoice costs one RFQ; the cached rate only decides whether the price is big enough for
//! an asset invoice at all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rust_decimal::Decimal;
use serde::Serialize;

use super::rates::{FixedRate, LiveRate, Rate, RateCache, RateError, RateSource};
use crate::clock::Clock;
use crate::config::services::{Service, SmallPrice};
use crate::l402::PaymentHash;
use crate::lightning::error::BackendError;
use crate::lightning::oracle::{OracleClient, OracleSide};
use crate::lightning::traits::{AssetInvoices, Invoices, Rates};
use crate::lightning::types::{AssetInvoiceRequest, AssetRef, InvoiceRequest};
use crate::pricing::{
    FixedPoint, PricingError, min_transportable_units, price_call, usd_to_units_ceil,
};
use crate::store::Rail;

/// How long a challenge's invoice lives when no quote bounds it (a fixed rate): ten minutes,
/// long enough for an agent to pay, short enough that a price change reaches buyers soon.
pub const DEFAULT_INVOICE_EXPIRY_SECS: u64 = 600;

/// An asset invoice's expiry when the edge's quotes are short (tapd's sample oracle: 60 s for
/// orders above 100,000 units), less slack for the RPC and clock skew.
pub const SHORT_QUOTE_INVOICE_EXPIRY_SECS: u64 = 55;

/// The units each rate order asks the edge about. tapd's sample oracle gives orders of at most
/// 100,000 units quotes of 300 s (larger ones 60 s); the rate is the same either way.
pub const RATE_ORDER_UNITS: u64 = 100_000;

/// The lifetime each rate order asks for, seconds (the edge may give less).
pub const RATE_ORDER_EXPIRY_SECS: u64 = 300;

/// The decimal display assumed for the fixed rate when the network names no asset: a USD
/// stablecoin's, so one unit is $0.000001.
pub const FIXED_RATE_DECIMALS: u8 = 6;

/// Which rate and which edge: the rate cache's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RateKey {
    /// The asset priced.
    pub asset: AssetRef,
    /// The edge node asked, hex public key.
    pub edge: String,
}

/// Where the gateway's rates come from (`gateway.rate_source`).
#[derive(Clone, Debug)]
pub enum PriceSource<R> {
    /// The edge's buy quotes through tapd's RFQ (`rfqrpc.AddAssetBuyOrder`).
    Edge(R),
    /// The network's price oracle (`priceoraclerpc.QueryAssetRates`, `SALE` side: an edge
    /// answering our buy order sells the asset, and tapd prices that with
    /// `RpcPriceOracle.QuerySellPrice`, which asks for `SALE`; lightninglabs/taproot-assets
    /// `rfq/oracle.go`, v0.8.1), so the oracle's rate is the one the edge's buy quote carries.
    Oracle(Box<OracleClient>),
    /// A fixed rate, for tests and demos.
    Fixed(FixedRate),
}

impl<R: Rates> RateSource<RateKey> for PriceSource<R> {
    type Error = BackendError;

    async fn fetch(&self, key: &RateKey) -> Result<Rate, BackendError> {
        match self {
            Self::Edge(rates) => {
                let quote = rates
                    .buy_quote(
                        &key.asset,
                        RATE_ORDER_UNITS,
                        &key.edge,
                        RATE_ORDER_EXPIRY_SECS,
                    )
                    .await?;
                Ok(Rate {
                    rate: quote.rate,
                    expires_at: quote.expires_at,
                })
            }
            Self::Oracle(oracle) => {
                let r = oracle
                    .query_rate(&key.asset, OracleSide::Sale, RATE_ORDER_UNITS)
                    .await?;
                Ok(Rate {
                    rate: r.rate,
                    expires_at: r.expires_at,
                })
            }
            Self::Fixed(fixed) => match RateSource::<RateKey>::fetch(fixed, key).await {
                Ok(rate) => Ok(rate),
                Err(never) => match never {},
            },
        }
    }
}

/// A service as the challenger sells it: its settings and its settlement resolved.
#[derive(Clone, Debug)]
pub struct PricedService {
    /// The `[[services]]` entry.
    pub service: Service,
    /// What it is paid in, resolved against the network.
    pub rail: RailSpec,
}

/// A service's settlement, resolved (`asset = "default"` made the network's asset, the edge
/// made explicit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RailSpec {
    /// A plain invoice for the price in sats at the rate of `pricing` (the network's asset, or
    /// the fixed rate's placeholder).
    Sats {
        /// The rate used to turn dollars into msat.
        pricing: RateKey,
    },
    /// An asset invoice through `key.edge`.
    Asset {
        /// The asset and the edge.
        key: RateKey,
    },
}

impl PricedService {
    /// The dollar price of `tier` (0: the base price; `n`: `tiers[n-1]`'s price or the base).
    pub fn price_usd(&self, tier: u8) -> Decimal {
        let base = self.service.price_usd.usd();
        match tier.checked_sub(1) {
            None => base,
            Some(i) => self
                .service
                .tiers
                .get(usize::from(i))
                .and_then(|t| t.price_usd)
                .map_or(base, |p| p.usd()),
        }
    }
}

/// The asset side of an offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AssetOffer {
    /// Asset id or group key, hex.
    pub asset_id: String,
    /// Units the invoice asks for.
    pub units: u64,
    /// The asset's decimal display.
    pub decimal_display: u8,
}

/// The rate an offer was priced at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuoteInfo {
    /// Asset units per BTC, as a decimal string.
    pub rate_units_per_btc: String,
    /// The same rate as dollars per bitcoin (units per BTC over 10^decimals).
    pub usd_per_btc: String,
    /// Unix seconds when the edge stops honouring the rate; none for a fixed rate.
    pub expires_at: Option<u64>,
    /// The edge that quoted it; none for a fixed rate.
    pub edge_node: Option<String>,
    /// tapd's quote id (hex), for an asset invoice.
    pub quote_id: Option<String>,
    /// `edge_rfq`, `oracle` or `fixed`.
    pub source: &'static str,
}

/// What the buyer is offered: an invoice and everything a program needs to judge it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Offer {
    /// Which service, at which tier.
    pub service: String,
    /// The tier bought.
    pub tier: u8,
    /// How the invoice is paid.
    pub rail: Rail,
    /// The price of one call (prepaid) or one token, dollars.
    pub price_usd: Decimal,
    /// What this invoice charges, dollars: the price, or the prepaid balance bought.
    pub charge_usd: Decimal,
    /// The prepaid balance bought, dollars; none when the token itself is the purchase.
    pub prepaid_usd: Option<Decimal>,
    /// The invoice's amount.
    pub msat: u64,
    /// The asset side, for an asset invoice.
    pub asset: Option<AssetOffer>,
    /// The rate.
    pub quote: QuoteInfo,
    /// The BOLT 11 invoice.
    pub invoice: String,
    /// Its payment hash.
    pub payment_hash: PaymentHash,
    /// Unix seconds after which the invoice cannot be paid.
    pub invoice_expires_at: u64,
}

/// Why no offer could be made.
#[derive(Debug, thiserror::Error)]
pub enum ChallengeError {
    /// The node (lnd or tapd) did not answer or refused.
    #[error("the seller's node cannot make an invoice now: {0}")]
    Node(#[source] BackendError),
    /// No rate could be had.
    #[error("no rate to price the call with: {0}")]
    Rate(#[source] RateError<BackendError>),
    /// The price does not convert (overflow, a bad rate).
    #[error("the price cannot be converted: {0}")]
    Pricing(#[source] PricingError),
    /// The token could not be minted or recorded.
    #[error("cannot mint the challenge's token: {0}")]
    Mint(#[source] Box<super::MintError>),
    /// The tier does not exist.
    #[error("service {service:?} has no tier {tier}")]
    NoSuchTier {
        /// The service.
        service: String,
        /// The tier asked for.
        tier: u8,
    },
}

impl ChallengeError {
    /// Whether trying again later may succeed, and if so which part did not answer:
    /// `node_unavailable` (the node or the edge, unreachable or refusing for now) or
    /// `store_unavailable` (the database, while minting the token); `None` for a
    /// configuration problem.
    pub fn unavailable_code(&self) -> Option<&'static str> {
        match self {
            Self::Node(_) | Self::Rate(_) => Some(super::gate::NODE_UNAVAILABLE),
            Self::Mint(m) => match m.as_ref() {
                super::MintError::Store(e) if e.is_unavailable() => {
                    Some(super::gate::STORE_UNAVAILABLE)
                }
                _ => None,
            },
            _ => None,
        }
    }
}

/// Makes offers for services at the edge's current rate.
pub struct Challenger<L, T: Rates> {
    lnd: L,
    tapd: T,
    rates: RateCache<RateKey, PriceSource<T>>,
    /// Whether the rates are the fixed rate (for the offer's `source`).
    fixed: bool,
    /// Whether the rates come from the oracle (for the offer's `source`).
    oracle: bool,
    /// Per asset, its decimal display, asked once (it never changes for an asset).
    decimals: Mutex<HashMap<AssetRef, u8>>,
    clock: Arc<dyn Clock>,
}

impl<L, T: Rates> std::fmt::Debug for Challenger<L, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenger")
            .field("fixed", &self.fixed)
            .finish_non_exhaustive()
    }
}

impl<L, T> Challenger<L, T>
where
    L: Invoices,
    T: AssetInvoices + Rates + Clone,
{
    /// A challenger creating invoices on `lnd` and `tapd`, pricing at `source`'s rates.
    pub fn new(lnd: L, tapd: T, source: PriceSource<T>, clock: Arc<dyn Clock>) -> Self {
        let fixed = matches!(source, PriceSource::Fixed(_));
        let oracle = matches!(source, PriceSource::Oracle(_));
        Self {
            lnd,
            tapd,
            rates: RateCache::new(source, Arc::clone(&clock)),
            fixed,
            oracle,
            decimals: Mutex::default(),
            clock,
        }
    }

    /// The current rate for `key`, from the cache.
    pub async fn rate(&self, key: &RateKey) -> Result<LiveRate, ChallengeError> {
        self.rates.get(key).await.map_err(ChallengeError::Rate)
    }

    /// The decimal display of `asset` (the fixed rate's placeholder asset: 6).
    pub async fn decimal_display(&self, asset: &AssetRef) -> Result<u8, ChallengeError> {
        if let Some(d) = self.cached_decimals(asset) {
            return Ok(d);
        }
        if self.fixed && *asset == placeholder_asset() {
            return Ok(FIXED_RATE_DECIMALS);
        }
        let d = self
            .tapd
            .decimal_display(asset)
            .await
            .map_err(ChallengeError::Node)?;
        self.decimals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(asset.clone(), d);
        Ok(d)
    }

    fn cached_decimals(&self, asset: &AssetRef) -> Option<u8> {
        self.decimals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(asset)
            .copied()
    }

    /// The price of `tier` of `svc` in msat at the current rate, for discovery; and in units
    /// for an asset service.
    pub async fn preview(
        &self,
        svc: &PricedService,
        tier: u8,
    ) -> Result<(u64, Option<u64>), ChallengeError> {
        let key = match &svc.rail {
            RailSpec::Sats { pricing } => pricing,
            RailSpec::Asset { key } => key,
        };
        let rate = self.rate(key).await?;
        let decimals = self.decimal_display(&key.asset).await?;
        let p = price_call(svc.price_usd(tier), decimals, &rate.rate)
            .map_err(ChallengeError::Pricing)?;
        let units = matches!(svc.rail, RailSpec::Asset { .. }).then_some(p.units);
        Ok((p.msat, units))
    }

    /// An offer for one token of `tier` of `svc`. `prepaid_usd` overrides the service's
    /// prepaid balance size (the quote endpoint's bundle); it applies only to a prepaid service.
    pub async fn offer(
        &self,
        svc: &PricedService,
        tier: u8,
        prepaid_usd: Option<Decimal>,
    ) -> Result<Offer, ChallengeError> {
        let s = &svc.service;
        if usize::from(tier) > s.tiers.len() {
            return Err(ChallengeError::NoSuchTier {
                service: s.name.clone(),
                tier,
            });
        }
        let price = svc.price_usd(tier);
        match &svc.rail {
            RailSpec::Sats { pricing } => self.sats_offer(svc, tier, price, price, pricing).await,
            RailSpec::Asset { key } => {
                let rate = self.rate(key).await?;
                let decimals = self.decimal_display(&key.asset).await?;
                let units = usd_to_units_ceil(price, decimals).map_err(ChallengeError::Pricing)?;
                let min = min_transportable_units(&rate.rate).map_err(ChallengeError::Pricing)?;
                let prepaid = (s.small_price == SmallPrice::Prepaid).then(|| {
                    prepaid_usd
                        .or(s.prepaid_usd.map(|p| p.usd()))
                        .unwrap_or(price)
                });
                match (units >= min, prepaid) {
                    // A prepaid service sells its balance whatever the price: the buyer asked
                    // for a balance (or the seller chose one) and the calls debit it.
                    (_, Some(balance)) => {
                        self.asset_offer(svc, tier, price, Some(balance), key, decimals)
                            .await
                    }
                    (true, None) => {
                        self.asset_offer(svc, tier, price, None, key, decimals)
                            .await
                    }
                    // Below the asset minimum, `small_price = "sats_invoice"`: the exact price
                    // in sats at the same rate. A stablecoin holder pays it through its edge.
                    (false, None) => self.sats_offer(svc, tier, price, price, key).await,
                }
            }
        }
    }

    async fn sats_offer(
        &self,
        svc: &PricedService,
        tier: u8,
        price: Decimal,
        charge: Decimal,
        pricing: &RateKey,
    ) -> Result<Offer, ChallengeError> {
        let rate = self.rate(pricing).await?;
        let decimals = self.decimal_display(&pricing.asset).await?;
        let p = price_call(charge, decimals, &rate.rate).map_err(ChallengeError::Pricing)?;
        let expiry = DEFAULT_INVOICE_EXPIRY_SECS.min(rate.max_invoice_expiry_secs);
        let now = self.clock.now_unix();
        let created = self
            .lnd
            .create_invoice(&InvoiceRequest {
                value_msat: p.msat,
                memo: memo(&svc.service.name, tier, charge),
                expiry_secs: expiry,
            })
            .await
            .map_err(ChallengeError::Node)?;
        Ok(Offer {
            service: svc.service.name.clone(),
            tier,
            rail: Rail::Sats,
            price_usd: price,
            charge_usd: charge,
            prepaid_usd: None,
            msat: p.msat,
            asset: None,
            quote: self.quote_info(&rate, decimals, pricing, None),
            invoice: created.payment_request,
            payment_hash: created.payment_hash,
            invoice_expires_at: now.saturating_add(expiry),
        })
    }

    async fn asset_offer(
        &self,
        svc: &PricedService,
        tier: u8,
        price: Decimal,
        prepaid: Option<Decimal>,
        key: &RateKey,
        decimals: u8,
    ) -> Result<Offer, ChallengeError> {
        let charge = prepaid.unwrap_or(price);
        let units = usd_to_units_ceil(charge, decimals).map_err(ChallengeError::Pricing)?;
        let now = self.clock.now_unix();
        // tapd refuses an asset invoice that outlives the quote its AddInvoice negotiates, and
        // the edge decides that quote's life: tapd's sample oracle gives 300 s to orders of at
        // most 100,000 units and 60 s to larger ones (lightninglabs/taproot-assets
        // `docs/examples/basic-price-oracle/main.go`, v0.8.1). So the expiry asked for is
        // within the cached quote's remaining life for small orders, 60 s less slack for large
        // ones, and a refusal anyway (another oracle's rule) is retried once at that.
        let cached = self.rate(key).await?.max_invoice_expiry_secs;
        let mut expiry = if units > RATE_ORDER_UNITS {
            SHORT_QUOTE_INVOICE_EXPIRY_SECS
        } else {
            DEFAULT_INVOICE_EXPIRY_SECS.min(cached)
        };
        let request = |expiry_secs| AssetInvoiceRequest {
            asset: key.asset.clone(),
            units,
            edge_peer: Some(key.edge.clone()),
            memo: memo(&svc.service.name, tier, charge),
            expiry_secs,
        };
        let created = match self.tapd.create_asset_invoice(&request(expiry)).await {
            Err(BackendError::QuoteOutlivedByInvoice { .. })
                if expiry > SHORT_QUOTE_INVOICE_EXPIRY_SECS =>
            {
                expiry = SHORT_QUOTE_INVOICE_EXPIRY_SECS;
                self.tapd.create_asset_invoice(&request(expiry)).await
            }
            other => other,
        }
        .map_err(ChallengeError::Node)?;
        let quote = &created.quote;
        // tapd caps the invoice's expiry at the quote's (it refuses one that outlives it), so
        // the invoice dies no later than the quote.
        let invoice_expires_at = now.saturating_add(expiry).min(quote.expires_at);
        let live = LiveRate {
            rate: quote.rate.clone(),
            expires_at: quote.expires_at,
            max_invoice_expiry_secs: 0,
        };
        Ok(Offer {
            service: svc.service.name.clone(),
            tier,
            rail: Rail::Asset,
            price_usd: price,
            charge_usd: charge,
            prepaid_usd: prepaid,
            msat: created.value_msat,
            asset: Some(AssetOffer {
                asset_id: key.asset.to_string(),
                units,
                decimal_display: decimals,
            }),
            quote: self.quote_info(&live, decimals, key, Some(quote.id.clone())),
            invoice: created.invoice.payment_request,
            payment_hash: created.invoice.payment_hash,
            invoice_expires_at,
        })
    }

    fn quote_info(
        &self,
        rate: &LiveRate,
        decimals: u8,
        key: &RateKey,
        quote_id: Option<String>,
    ) -> QuoteInfo {
        let fixed = self.fixed && quote_id.is_none();
        let oracle = self.oracle && quote_id.is_none();
        QuoteInfo {
            rate_units_per_btc: rate.rate.to_string(),
            usd_per_btc: usd_per_btc(&rate.rate, decimals),
            expires_at: (rate.expires_at != u64::MAX).then_some(rate.expires_at),
            edge_node: (!fixed).then(|| key.edge.clone()),
            quote_id,
            source: match (fixed, oracle) {
                (true, _) => "fixed",
                (false, true) => "oracle",
                (false, false) => "edge_rfq",
            },
        }
    }
}

/// The key the fixed rate is cached under when the network names no asset.
pub fn placeholder_asset() -> AssetRef {
    AssetRef::Id([0; 32])
}

/// The invoice's memo: what the buyer's wallet shows.
fn memo(service: &str, tier: u8, charge: Decimal) -> String {
    if tier == 0 {
        format!("tapgate: {service} ${charge}")
    } else {
        format!("tapgate: {service} tier {tier} ${charge}")
    }
}

/// Units per BTC over 10^decimals, as a decimal string (display only).
fn usd_per_btc(rate: &FixedPoint, decimals: u8) -> String {
    let coef = rate.coefficient();
    let scale = u32::from(rate.scale()) + u32::from(decimals);
    match coef
        .parse::<i128>()
        .ok()
        .and_then(|c| Decimal::try_from_i128_with_scale(c, scale).ok())
    {
        Some(d) => d.normalize().to_string(),
        None => format!("{}e-{scale}", coef),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd_per_btc_shifts_by_the_decimals() {
        let r = crate::pricing::rate_from_usd_per_btc(Decimal::new(9712345, 2), 6).unwrap();
        assert_eq!(usd_per_btc(&r, 6), "97123.45");
        let r = FixedPoint::from_parts("100000000000", 0).unwrap();
        assert_eq!(usd_per_btc(&r, 6), "100000");
    }

    #[test]
    fn memos_name_service_tier_and_charge() {
        assert_eq!(
            memo("weather", 0, Decimal::new(1, 2)),
            "tapgate: weather $0.01"
        );
        assert_eq!(
            memo("llm", 2, Decimal::new(100, 2)),
            "tapgate: llm tier 2 $1.00"
        );
    }
}
