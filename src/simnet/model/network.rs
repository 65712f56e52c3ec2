//! Nodes, channels and the fault knobs: the fixed topology and what each side of each channel
//! holds.
//!
//! ```text
//!  alice ══asset══ edge ══sats══ merchant
//!                 │  ╲══asset══ merchant
//!  bob ───sats─────┘
//! ```
//! Channel balances only change through the payment code (`payments.rs`); this file checks,
//! locks and releases amounts but decides nothing about routes.

use std::time::Duration;

use serde::Serialize;

use super::config::InitialBalances;
use super::error::QueryError;
use super::types::{AssetId, NodeId, NodePubkey};
use super::{Simnet, Unit};

/// lnd version string the simnet's lnd servers report.
pub const LND_VERSION: &str = "0.21.2-beta simnet";
/// tapd version string the simnet's tapd servers report.
pub const TAPD_VERSION: &str = "0.8.1-alpha simnet";

/// Per-node fault knobs. The model applies `down`; servers apply the rest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Every operation touching the node fails with `NodeDown`.
    pub down: bool,
    /// Delay servers add before answering any call to this node (the model never sleeps).
    pub latency: Duration,
    /// Bumped by [`Simnet::drop_streams`]; a server ends every open subscription stream of the
    /// node whose epoch is older than this.
    pub drop_streams_epoch: u64,
}

/// What a channel carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ChannelKind {
    /// A plain BTC channel; balances in msat.
    Sats,
    /// A Taproot Assets channel; balances in units of the asset.
    Asset(AssetId),
}

/// `sats` or `asset`, for messages.
impl std::fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChannelKind::Sats => "sats",
            ChannelKind::Asset(_) => "asset",
        })
    }
}

impl ChannelKind {
    /// The unit balances are counted in.
    pub fn unit(&self) -> Unit {
        match self {
            ChannelKind::Sats => Unit::Msat,
            ChannelKind::Asset(_) => Unit::AssetUnits,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Channel {
    pub(crate) chan_id: u64,
    pub(crate) kind: ChannelKind,
    /// `ends[0]` is always `edge` (the topology is a star around it).
    pub(crate) ends: [NodeId; 2],
    /// Spendable balance of `ends[i]`, in the channel's unit. Invariant:
    /// `balance[0] + balance[1] + in_flight` never changes after opening.
    pub(crate) balance: [u64; 2],
    /// Amounts locked by held (ACCEPTED) HTLCs, neither side's until settled or cancelled.
    pub(crate) in_flight: u64,
}

impl Channel {
    pub(crate) fn side(&self, node: NodeId) -> Option<usize> {
        self.ends.iter().position(|n| *n == node)
    }

    /// Total the channel holds, in its unit.
    pub(crate) fn total(&self) -> u128 {
        u128::from(self.balance[0]) + u128::from(self.balance[1]) + u128::from(self.in_flight)
    }
}

/// A short channel id: `block << 40 | tx << 16 | output`.
fn scid(block: u32, tx: u32, output: u16) -> u64 {
    (u64::from(block) << 40) | (u64::from(tx) << 16) | u64::from(output)
}

/// The four channels, opened at blocks 110–113.
pub(crate) fn open_channels(b: &InitialBalances, asset: AssetId) -> Vec<Channel> {
    use NodeId::{Alice, Bob, Edge, Merchant};
    let spec = [
        (
            Alice,
            ChannelKind::Asset(asset),
            b.edge_units_to_alice,
            b.alice_units,
        ),
        (Bob, ChannelKind::Sats, b.edge_msat_to_bob, b.bob_msat),
        (
            Merchant,
            ChannelKind::Sats,
            b.edge_msat_to_merchant,
            b.merchant_msat,
        ),
        (
            Merchant,
            ChannelKind::Asset(asset),
            b.edge_units_to_merchant,
            b.merchant_units,
        ),
    ];
    spec.into_iter()
        .zip(110u32..)
        .map(|((peer, kind, edge_side, peer_side), block)| Channel {
            chan_id: scid(block, 1, 0),
            kind,
            ends: [Edge, peer],
            balance: [edge_side, peer_side],
            in_flight: 0,
        })
        .collect()
}

/// One channel as a node sees it (lnd's `ListChannels`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChannelInfo {
    /// Short channel id.
    pub chan_id: u64,
    /// What it carries.
    pub kind: ChannelKind,
    /// The other end.
    pub peer: NodeId,
    /// The other end's key.
    pub peer_pubkey: NodePubkey,
    /// This node's spendable balance (msat or units).
    pub local: u64,
    /// The peer's spendable balance.
    pub remote: u64,
    /// Locked in held HTLCs.
    pub in_flight: u64,
    /// Both ends up.
    pub active: bool,
}

/// A node's identity and chain view (lnd's and tapd's `GetInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeInfo {
    /// Which node.
    pub node: NodeId,
    /// Identity key.
    pub pubkey: NodePubkey,
    /// Alias (the node's name).
    pub alias: String,
    /// Current block height.
    pub block_height: u32,
    /// Fake, deterministic hash of the tip, hex.
    pub block_hash: String,
    /// Always true: the simnet has no chain to sync.
    pub synced_to_chain: bool,
    /// Always `"regtest"`.
    pub network: &'static str,
    /// lnd's version string.
    pub lnd_version: &'static str,
    /// tapd's version string.
    pub tapd_version: &'static str,
    /// Channels whose peer is up.
    pub num_active_channels: u32,
    /// Channels whose peer is down.
    pub num_inactive_channels: u32,
    /// Distinct peers that are up.
    pub num_peers: u32,
}

impl Simnet {
    pub(crate) fn is_up(&self, node: NodeId) -> bool {
        !self.nodes[node.index()].faults.down
    }

    /// `Err(node)` if it is down.
    pub(crate) fn require_up(&self, node: NodeId) -> Result<(), NodeId> {
        if self.is_up(node) { Ok(()) } else { Err(node) }
    }

    /// Index of the channel of `kind` between `a` and `b`.
    pub(crate) fn channel_between(&self, a: NodeId, b: NodeId, kind: ChannelKind) -> Option<usize> {
        self.channels
            .iter()
            .position(|c| c.kind == kind && c.side(a).is_some() && c.side(b).is_some() && a != b)
    }

    /// Channels of `node`, as it sees them.
    pub(crate) fn channel_infos(&self, node: NodeId) -> Vec<ChannelInfo> {
        self.channels
            .iter()
            .filter_map(|c| {
                let side = c.side(node)?;
                let peer = c.ends[1 - side];
                Some(ChannelInfo {
                    chan_id: c.chan_id,
                    kind: c.kind,
                    peer,
                    peer_pubkey: self.keys.pubkey(peer),
                    local: c.balance[side],
                    remote: c.balance[1 - side],
                    in_flight: c.in_flight,
                    active: self.is_up(node) && self.is_up(peer),
                })
            })
            .collect()
    }

    pub(crate) fn build_node_info(&self, node: NodeId) -> NodeInfo {
        let channels = self.channel_infos(node);
        let active = channels.iter().filter(|c| c.active).count();
        let mut peers: Vec<NodeId> = channels
            .iter()
            .filter(|c| c.active)
            .map(|c| c.peer)
            .collect();
        peers.dedup();
        let hash = self.rng.derive(&format!("block/{}", self.block_height));
        NodeInfo {
            node,
            pubkey: self.keys.pubkey(node),
            alias: node.name().to_owned(),
            block_height: self.block_height,
            block_hash: hex::encode(hash),
            synced_to_chain: true,
            network: "regtest",
            lnd_version: LND_VERSION,
            tapd_version: TAPD_VERSION,
            num_active_channels: count(active),
            num_inactive_channels: count(channels.len() - active),
            num_peers: count(peers.len()),
        }
    }

    /// Sum over every channel of `kind`'s unit (sats channels in msat, asset channels in units),
    /// including amounts locked in flight: the quantity payments conserve.
    pub fn total_held(&self, unit: Unit) -> u128 {
        self.channels
            .iter()
            .filter(|c| c.kind.unit() == unit)
            .map(Channel::total)
            .sum()
    }
}

/// Queries and fault knobs.
impl Simnet {
    /// lnd's / tapd's `GetInfo` for `node`.
    pub fn node_info(&self, node: NodeId) -> Result<NodeInfo, QueryError> {
        self.require_up(node).map_err(QueryError::NodeDown)?;
        Ok(self.build_node_info(node))
    }

    /// lnd's `ListChannels` for `node`.
    pub fn channels(&self, node: NodeId) -> Result<Vec<ChannelInfo>, QueryError> {
        self.require_up(node).map_err(QueryError::NodeDown)?;
        Ok(self.channel_infos(node))
    }

    /// The node's fault knobs (readable even while it is down).
    pub fn faults(&self, node: NodeId) -> &Faults {
        &self.nodes[node.index()].faults
    }

    /// Fault knob: take `node` down (every operation touching it fails) or bring it back.
    pub fn set_down(&mut self, node: NodeId, down: bool) {
        self.nodes[node.index()].faults.down = down;
        self.touch();
    }

    /// Fault knob: the delay servers add to every call to `node`.
    pub fn set_latency(&mut self, node: NodeId, latency: Duration) {
        self.nodes[node.index()].faults.latency = latency;
        self.touch();
    }

    /// Fault knob: cut every open subscription stream of `node`. Returns the new epoch.
    pub fn drop_streams(&mut self, node: NodeId) -> u64 {
        let faults = &mut self.nodes[node.index()].faults;
        faults.drop_streams_epoch = faults.drop_streams_epoch.wrapping_add(1);
        let epoch = faults.drop_streams_epoch;
        self.touch();
        epoch
    }

    /// Mines `n` blocks: every node's height moves on.
    pub fn mine_blocks(&mut self, n: u32) {
        self.block_height = self.block_height.saturating_add(n);
        self.touch();
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_is_a_star_around_edge() {
        let chans = open_channels(&InitialBalances::default(), AssetId([1; 32]));
        assert_eq!(chans.len(), 4);
        assert!(chans.iter().all(|c| c.ends[0] == NodeId::Edge));
        let ids: Vec<u64> = chans.iter().map(|c| c.chan_id).collect();
        let mut dedup = ids.clone();
        dedup.dedup();
        assert_eq!(ids, dedup);
        assert_eq!(chans[0].chan_id >> 40, 110);
        assert_eq!(chans[0].side(NodeId::Alice), Some(1));
        assert_eq!(chans[0].side(NodeId::Bob), None);
    }
}
