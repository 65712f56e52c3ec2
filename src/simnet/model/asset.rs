//! The simnet's one asset (a 6-decimal USD stablecoin) and the per-node balance views built
//! from channel balances (`ListAssets`, `ListBalances`, lnd's `ChannelBalance`,
//! `FetchAssetMeta`, and the demo's balance table). Dollar values go through `crate::pricing`;
//! nothing here converts by hand.

use rust_decimal::Decimal;
use serde::Serialize;

use super::error::QueryError;
use super::network::{ChannelInfo, ChannelKind};
#[cfg(test)]
use super::types::NetworkSecret;
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

/// One asset's units on both sides of a node's asset channels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AssetChannelUnits {
    /// The asset.
    pub asset: AssetInfo,
    /// The node's side, summed over its channels of this asset.
    pub local: u64,
    /// The peers' side.
    pub remote: u64,
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

    /// What `node` holds of each asset on its side of its asset channels (`ListAssets`; a real
    /// tapd lists only on-chain assets there by default, but the simnet's error messages send
    /// users to `ListAssets` to find the asset). Empty for nodes without asset channels.
    pub fn assets_held(&self, node: NodeId) -> Result<Vec<AssetHolding>, QueryError> {
        self.require_up(node).map_err(QueryError::NodeDown)?;
        self.holdings(&self.channel_infos(node))
    }

    /// What `node` holds of each asset on chain, outside channels (tapd's `ListBalances`, which
    /// counts only the wallet's own script keys and leaves channel outputs out). Every unit in
    /// the simnet sits in a channel, so this is always empty; it still fails for a node that is
    /// down, as tapd would.
    pub fn assets_on_chain(&self, node: NodeId) -> Result<Vec<AssetHolding>, QueryError> {
        self.require_up(node).map_err(QueryError::NodeDown)?;
        Ok(Vec::new())
    }

    /// Units of each asset on both sides of `node`'s asset channels, summed per asset, as tapd
    /// writes them into lnd's `ChannelBalance`. Every simnet channel is open (a channel whose
    /// peer is down is inactive, still open); units locked in held HTLCs are on neither side,
    /// as in tapd's commitment outputs. Empty for nodes without asset channels.
    pub fn asset_channel_units(&self, node: NodeId) -> Result<Vec<AssetChannelUnits>, QueryError> {
        self.require_up(node).map_err(QueryError::NodeDown)?;
        // Channels only ever carry the simnet's one asset, so the sums have one entry or none.
        let mine: Vec<ChannelInfo> = self
            .channel_infos(node)
            .into_iter()
            .filter(|c| c.kind == ChannelKind::Asset(self.asset.asset_id))
            .collect();
        if mine.is_empty() {
            return Ok(Vec::new());
        }
        let sum = |side: fn(&ChannelInfo) -> u64| {
            mine.iter().fold(0u64, |acc, c| acc.saturating_add(side(c)))
        };
        Ok(vec![AssetChannelUnits {
            asset: self.asset.clone(),
            local: sum(|c| c.local),
            remote: sum(|c| c.remote),
        }])
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
    fn channel_units_are_summed_per_asset_and_none_are_on_chain() {
        use crate::simnet::model::SimnetConfig;
        let mut net = Simnet::new(SimnetConfig::default()).unwrap();
        let units = |net: &Simnet, n| {
            net.asset_channel_units(n)
                .unwrap()
                .iter()
                .map(|u| (u.local, u.remote))
                .collect::<Vec<_>>()
        };
        assert_eq!(units(&net, NodeId::Alice), [(1_000_000_000, 100_000_000)]);
        assert_eq!(units(&net, NodeId::Merchant), [(0, 1_000_000_000)]);
        // The edge's two asset channels (with alice and the merchant) are one sum.
        assert_eq!(units(&net, NodeId::Edge), [(1_100_000_000, 1_000_000_000)]);
        assert!(
            units(&net, NodeId::Bob).is_empty(),
            "bob has a sats channel only"
        );
        let alice = net.asset_channel_units(NodeId::Alice).unwrap();
        assert_eq!(alice[0].asset, *net.asset());

        for node in [NodeId::Alice, NodeId::Bob, NodeId::Edge, NodeId::Merchant] {
            assert!(net.assets_on_chain(node).unwrap().is_empty());
        }
        net.set_down(NodeId::Alice, true);
        assert!(net.asset_channel_units(NodeId::Alice).is_err());
        assert!(net.assets_on_chain(NodeId::Alice).is_err());
    }

    #[test]
    fn asset_is_deterministic_per_seed() {
        let a = AssetInfo::derive(&Rng::new(&NetworkSecret::from_seed(1), 0), false);
        assert_eq!(
            a,
            AssetInfo::derive(&Rng::new(&NetworkSecret::from_seed(1), 0), false)
        );
        assert_ne!(
            a.asset_id,
            AssetInfo::derive(&Rng::new(&NetworkSecret::from_seed(2), 0), false).asset_id
        );
        assert_eq!(a.meta_data, b"{\"decimal_display\":6}");
        assert!(a.group_key.is_none());
        assert!(
            AssetInfo::derive(&Rng::new(&NetworkSecret::from_seed(1), 0), true)
                .group_key
                .is_some()
        );
        assert!(a.genesis_point.ends_with(":0"));
        assert_eq!(a.genesis_point.len(), 66);
    }
}
