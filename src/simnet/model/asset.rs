//! The simnet's one asset (a 6-decimal USD stablecoin) and the per-node balance views built
//! from channel balances (`ListAssets`, `ListBalances`, `FetchAssetMeta`, and the demo's
//! balance table). Dollar values go through `crate::pricing`; nothing here converts by hand.

use rust_decimal::Decimal;
use serde::Serialize;

use super::error::QueryError;
use super::network::{ChannelInfo, ChannelKind};
use super::types::{AssetId, NodeId, NodePubkey, Rng, sha256};
use super::{Simnet, Unit};
use crate::pricing::{msat_to_units, units_to_usd};

/// The asset's name.
pub const ASSET_NAME: &str = "USD";
/// The asset's decimal display: 6, tapd's recommendation for a USD coin.
pub const ASSET_DECIMALS: u8 = 6;

/// What taprpc reports about the asset: genesis, metadata, optional group key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AssetInfo {
    /// Asset id: sha256 over the genesis outpoint, name, meta hash, output index and type, as
    /// tapd derives it (over fake but deterministic inputs).
    pub asset_id: AssetId,
    /// `"USD"`.
    pub name: String,
    /// 6.
    pub decimal_display: u8,
    /// Genesis outpoint, `txid:vout` (a seed-derived fake txid).
    pub genesis_point: String,
    /// Output index of the genesis asset.
    pub output_index: u32,
    /// sha256 of [`AssetInfo::meta_data`].
    pub meta_hash: [u8; 32],
    /// The genesis meta (`META_TYPE_JSON`): `{"decimal_display":6}`.
    pub meta_data: Vec<u8>,
    /// Tweaked group key, when the config asks for a grouped asset.
    pub group_key: Option<NodePubkey>,
}

impl AssetInfo {
    pub(crate) fn derive(rng: &Rng, grouped: bool) -> Self {
        let txid = rng.derive("asset/genesis-txid");
        let output_index = 0u32;
        let meta_data = format!("{{\"decimal_display\":{ASSET_DECIMALS}}}").into_bytes();
        let meta_hash = sha256(&[&meta_data]);
        let asset_type_normal = [0u8];
        let asset_id = AssetId(sha256(&[
            &txid,
            &output_index.to_be_bytes(),
            ASSET_NAME.as_bytes(),
            &meta_hash,
            &output_index.to_be_bytes(),
            &asset_type_normal,
        ]));
        let group_key = grouped.then(|| {
            let x = rng.derive("asset/group-key");
            let mut key = [0u8; 33];
            key[0] = 0x02;
            key[1..].copy_from_slice(&x);
            NodePubkey(key)
        });
        Self {
            asset_id,
            name: ASSET_NAME.to_owned(),
            decimal_display: ASSET_DECIMALS,
            genesis_point: format!("{}:{output_index}", hex::encode(txid)),
            output_index,
            meta_hash,
            meta_data,
            group_key,
        }
    }
}

/// How much of an asset a node holds (its sides of its asset channels).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AssetHolding {
    /// The asset.
    pub asset: AssetInfo,
    /// Units held.
    pub units: u64,
    /// Their dollar value (exact: units / 10^decimals).
    pub usd: Decimal,
}

/// A node's balances: every channel, the sats total and the asset holdings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Balances {
    /// Whose.
    pub node: NodeId,
    /// Every channel of the node, local and remote sides.
    pub channels: Vec<ChannelInfo>,
    /// Local msat over the node's sats channels.
    pub sats_msat: u64,
    /// The same at the edge's mid rate, in dollars (for a balance table).
    pub sats_usd: Decimal,
    /// Local units per asset over the node's asset channels.
    pub assets: Vec<AssetHolding>,
}

impl Simnet {
    /// The simnet's asset (for `FetchAssetMeta` and `ListAssets` genesis fields).
    pub fn asset(&self) -> &AssetInfo {
        &self.asset
    }

    /// The asset with id `asset_id` as `node` knows it (tapd's `FetchAssetMeta`).
    pub fn asset_meta(&self, node: NodeId, asset_id: &AssetId) -> Result<&AssetInfo, QueryError> {
        self.require_up(node).map_err(QueryError::NodeDown)?;
        if *asset_id != self.asset.asset_id {
            return Err(QueryError::UnknownAsset(*asset_id));
        }
        Ok(&self.asset)
    }

    /// What `node` holds of each asset (`ListAssets`, `ListBalances`). Empty for nodes without
    /// asset channels; in the simnet every asset sits in a channel.
    pub fn assets_held(&self, node: NodeId) -> Result<Vec<AssetHolding>, QueryError> {
        self.require_up(node).map_err(QueryError::NodeDown)?;
        self.holdings(&self.channel_infos(node))
    }

    fn holdings(&self, channels: &[ChannelInfo]) -> Result<Vec<AssetHolding>, QueryError> {
        let held: Vec<u64> = channels
            .iter()
            .filter(|c| c.kind == ChannelKind::Asset(self.asset.asset_id))
            .map(|c| c.local)
            .collect();
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let units = held.iter().fold(0u64, |acc, u| acc.saturating_add(*u));
        let usd = units_to_usd(units, self.asset.decimal_display).map_err(QueryError::Pricing)?;
        Ok(vec![AssetHolding {
            asset: self.asset.clone(),
            units,
            usd,
        }])
    }

    /// Every balance of `node`, with dollar values.
    pub fn balances(&self, node: NodeId) -> Result<Balances, QueryError> {
        self.require_up(node).map_err(QueryError::NodeDown)?;
        let channels = self.channel_infos(node);
        let sats_msat = channels
            .iter()
            .filter(|c| c.kind.unit() == Unit::Msat)
            .fold(0u64, |acc, c| acc.saturating_add(c.local));
        let sats_usd = self.msat_to_usd(sats_msat)?;
        let assets = self.holdings(&channels)?;
        Ok(Balances {
            node,
            channels,
            sats_msat,
            sats_usd,
            assets,
        })
    }

    /// msat in dollars at the edge's mid rate (floor to a unit).
    fn msat_to_usd(&self, msat: u64) -> Result<Decimal, QueryError> {
        let rates = self
            .rfq
            .rates(self.asset.decimal_display)
            .map_err(QueryError::Pricing)?;
        let units = msat_to_units(msat, &rates.mid).map_err(QueryError::Pricing)?;
        units_to_usd(units, self.asset.decimal_display).map_err(QueryError::Pricing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_is_deterministic_per_seed() {
        let a = AssetInfo::derive(&Rng::new(1), false);
        assert_eq!(a, AssetInfo::derive(&Rng::new(1), false));
        assert_ne!(a.asset_id, AssetInfo::derive(&Rng::new(2), false).asset_id);
        assert_eq!(a.meta_data, b"{\"decimal_display\":6}");
        assert!(a.group_key.is_none());
        assert!(AssetInfo::derive(&Rng::new(1), true).group_key.is_some());
        assert!(a.genesis_point.ends_with(":0"));
        assert_eq!(a.genesis_point.len(), 66);
    }
}
