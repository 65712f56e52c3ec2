//! Discovery: the `/.well-known/l402.json` manifest and the `/l402/quote` request, following
//! lightninglabs/L402 `discovery-spec.md` (§5 manifest, §6 quote endpoint).
//!
//! Prices in the manifest are msat at the current rate beside the dollar price the seller set
//! (`currencies: ["msat", "usd"]`); the dollar price is the authority here, the msat its value
//! now. The quote endpoint returns a ready-to-pay challenge for a chosen bundle: a service, a
//! tier, and for a prepaid service the balance to buy. This module builds values; it must not
//! serve HTTP.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::services::UsdAmount;
use crate::mint::challenger::{PricedService, RailSpec};

/// What the manifest says about one service, given its msat (and units) per tier now.
pub fn service_entry(svc: &PricedService, prices: &[Option<(u64, Option<u64>)>]) -> Value {
    let s = &svc.service;
    let mut tiers = vec![json!({ "tier": 0, "name": "base" })];
    for (i, t) in s.tiers.iter().enumerate() {
        tiers.push(json!({ "tier": i + 1, "name": t.name }));
    }
    let capabilities: Vec<&String> = s.tiers.iter().flat_map(|t| &t.capabilities).collect();
    let mut resources = Vec::new();
    for (tier, price) in prices.iter().enumerate() {
        let tier = u8::try_from(tier).unwrap_or(u8::MAX);
        let usd = svc.price_usd(tier);
        let paths: Vec<&str> = if tier == 0 {
            s.paths.iter().map(|p| p.as_str()).collect()
        } else {
            s.tiers
                .get(usize::from(tier) - 1)
                .map(|t| t.paths.iter().map(|p| p.as_str()).collect())
                .unwrap_or_default()
        };
        for path in paths {
            for method in &s.methods {
                let mut pricing = match price {
                    Some((msat, _)) => json!({ "model": "fixed", "price_msat": msat }),
                    None => json!({ "model": "dynamic" }),
                };
                if let Some(map) = pricing.as_object_mut() {
                    map.insert("price_usd".into(), json!(usd.to_string()));
                    if let Some((_, Some(units))) = price {
                        map.insert("price_units".into(), json!(units));
                    }
                    if let Some(p) = s.prepaid_usd {
                        map.insert("prepaid_usd".into(), json!(p.to_string()));
                    }
                }
                resources.push(json!({
                    "path": path,
                    "method": method,
                    "tier": tier,
                    "pricing": pricing,
                }));
            }
        }
    }
    let settlement = match &svc.rail {
        RailSpec::Sats { .. } => json!({ "rail": "sats" }),
        RailSpec::Asset { key } => json!({
            "rail": "asset",
            "asset_id": key.asset.to_string(),
            "edge_node": key.edge,
            "small_price": s.small_price,
        }),
    };
    let mut entry = json!({
        "name": s.name,
        "tiers": tiers,
        "resources": resources,
        "settlement": settlement,
        "token_lifetime_secs": s.token_lifetime_secs,
    });
    if !capabilities.is_empty()
        && let Some(map) = entry.as_object_mut()
    {
        map.insert("capabilities".into(), json!(capabilities));
    }
    entry
}

/// The whole manifest.
pub fn manifest(node_pubkey: &str, services: Vec<Value>) -> Value {
    json!({
        "version": "1.0",
        "provider": { "name": "tapgate", "node_pubkey": node_pubkey },
        "currencies": ["msat", "usd"],
        "macaroon_versions": [0],
        "payment_methods": ["bolt11"],
        "quote_endpoint": "/l402/quote",
        "services": services,
        "caveats": {
            "services": { "type": "service_list", "attenuation": "subset" },
            "{service}_capabilities": { "type": "string", "attenuation": "subset" },
            "{service}_valid_until": { "type": "timestamp", "attenuation": "earlier" },
            "{service}_methods": { "type": "string", "attenuation": "subset" },
            "{service}_budget_usd": { "type": "string", "attenuation": "decreasing" },
            "{service}_budget_usd_per_day": { "type": "string", "attenuation": "decreasing" },
            "{service}_max_calls": { "type": "integer", "attenuation": "decreasing" },
        },
    })
}

/// A quote request (`discovery-spec.md` §6.1), with tapgate's `prepaid_usd` for a prepaid
/// service's balance. Unknown members are ignored, as the spec's optional members are.
#[derive(Debug, Deserialize)]
pub struct QuoteRequest {
    /// The service.
    pub service: String,
    /// The tier (default 0).
    #[serde(default)]
    pub tier: u8,
    /// The prepaid balance to buy, dollars, for a prepaid service.
    #[serde(default)]
    pub prepaid_usd: Option<UsdAmount>,
    /// The buyer's ceiling, msat.
    #[serde(default)]
    pub max_price_msat: Option<u64>,
}

/// Why a quote request is refused: `(status, code, message, field)`.
pub type QuoteRefusal = (u16, &'static str, String, Option<&'static str>);

/// Checks a quote request against the catalogue; the service's index and the balance to buy.
pub fn check_quote(
    req: &QuoteRequest,
    services: &[PricedService],
) -> Result<(usize, Option<Decimal>), QuoteRefusal> {
    let Some(i) = services.iter().position(|s| s.service.name == req.service) else {
        return Err((
            400,
            "unknown_service",
            format!("no service named {:?}", req.service),
            Some("service"),
        ));
    };
    let s = &services[i].service;
    if usize::from(req.tier) > s.tiers.len() {
        return Err((
            400,
            "constraint_out_of_bounds",
            format!("{} has tiers 0 to {}", s.name, s.tiers.len()),
            Some("tier"),
        ));
    }
    let prepaid = match (req.prepaid_usd, s.prepaid_usd) {
        (None, _) => None,
        (Some(_), None) => {
            return Err((
                400,
                "invalid_constraint",
                format!("{} sells no prepaid balance", s.name),
                Some("prepaid_usd"),
            ));
        }
        (Some(p), Some(_)) if p.usd() < services[i].price_usd(req.tier) => {
            return Err((
                400,
                "constraint_out_of_bounds",
                format!(
                    "a balance of ${} does not pay for one call at ${}",
                    p,
                    services[i].price_usd(req.tier)
                ),
                Some("prepaid_usd"),
            ));
        }
        (Some(p), Some(_)) => Some(p.usd()),
    };
    Ok((i, prepaid))
}
