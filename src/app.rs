//! The one wiring place: from a simnet's `network.toml` or the `[nodes.*]` settings to
//! connected node adapters. One place decides where nodes are; the adapters do not care whether
//! the other end is simnet or a real litd.
//!
//! Start-up problems (a network file that cannot be read, a bad asset id, an unknown node, a
//! certificate or macaroon that cannot be loaded) are a [`BuildError`], kept apart from the
//! runtime errors of the adapters ([`BackendError`]) the way ldk-node keeps its `BuildError`
//! apart from `Error`: a `BuildError` means "fix the configuration and start again".
//!
//! This module reads the network file through [`crate::network_file`], which is where its type
//! lives; it never imports `crate::simnet` (production code does not depend on the simulator).

use std::path::Path;
use std::time::Duration;

use crate::config::{ConfigError, ConnectionSettings, Settings, expand_path};
use crate::lightning::error::BackendError;
use crate::lightning::grpc::NodeConnection;
use crate::lightning::lnd::LndNode;
use crate::lightning::tapd::TapdNode;
use crate::lightning::types::{AssetBalance, AssetRef};
use crate::network_file::{NetworkFile, NetworkFileError};

/// Where one litd node's two daemons are.
#[derive(Clone, Debug)]
pub struct NodeAddress {
    /// The node's name (`alice`, `merchant`, …).
    pub name: String,
    /// lnd.
    pub lnd: NodeConnection,
    /// tapd.
    pub tapd: NodeConnection,
}

/// The nodes of a network, and the network's stablecoin and edge node when known.
#[derive(Clone, Debug, Default)]
pub struct NetworkAddresses {
    /// The nodes.
    pub nodes: Vec<NodeAddress>,
    /// The USD stablecoin.
    pub asset: Option<AssetRef>,
    /// The edge node's public key (hex), the RFQ peer.
    pub edge_pubkey: Option<String>,
}

/// Why tapgate cannot start: the nodes cannot be set up from the network file or the
/// settings. Runtime failures of a node call are a [`BackendError`] instead.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The network file.
    #[error(transparent)]
    NetworkFile(#[from] NetworkFileError),
    /// The settings.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No such node.
    #[error("no node named {name:?}; known nodes: {known}")]
    UnknownNode {
        /// Asked for.
        name: String,
        /// Available.
        known: String,
    },
    /// A hex value that is not an asset id or key.
    #[error("{what} {value:?} is not valid hex of the right length")]
    BadHex {
        /// Which setting.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// A connection could not be set up (certificate or macaroon unreadable, bad endpoint).
    #[error(transparent)]
    Backend(#[from] BackendError),
}

fn asset_ref(value: &str) -> Result<AssetRef, BuildError> {
    AssetRef::parse(value).ok_or_else(|| BuildError::BadHex {
        what: "asset id",
        value: value.to_owned(),
    })
}

fn connection(key: &'static str, c: &ConnectionSettings) -> Result<NodeConnection, ConfigError> {
    let mut conn = NodeConnection::new(
        c.endpoint.clone(),
        expand_path(key, &c.tls_cert_path)?,
        expand_path(key, &c.macaroon_path)?,
    );
    conn.timeout = Duration::from_secs(c.timeout_secs.max(1));
    Ok(conn)
}

impl NetworkAddresses {
    /// From a simnet's `network.toml`.
    pub fn from_network_file(path: &Path) -> Result<Self, BuildError> {
        let file = NetworkFile::read(path)?;
        let nodes = file
            .nodes
            .iter()
            .map(|n| NodeAddress {
                name: n.name.clone(),
                lnd: NodeConnection::new(
                    n.lnd_endpoint.clone(),
                    n.tls_cert_path.clone(),
                    n.lnd_macaroon_path.clone(),
                ),
                tapd: NodeConnection::new(
                    n.tapd_endpoint.clone(),
                    n.tls_cert_path.clone(),
                    n.tapd_macaroon_path.clone(),
                ),
            })
            .collect();
        Ok(Self {
            nodes,
            asset: Some(asset_ref(&file.asset_id)?),
            edge_pubkey: Some(file.edge_pubkey),
        })
    }

    /// From the `[nodes.*]` and `[network]` settings (a Polar network, or real nodes).
    pub fn from_settings(settings: &Settings) -> Result<Self, BuildError> {
        // `network.file` replaces `[nodes.*]`, `asset_id` and `edge_pubkey` (the settings
        // refuse both at load), so it is the whole answer when set.
        if let Some(raw) = &settings.network.file {
            let path = expand_path("network.file", raw)?;
            return Self::from_network_file(&path);
        }
        let mut nodes = Vec::new();
        for (name, n) in &settings.nodes {
            nodes.push(NodeAddress {
                name: name.clone(),
                lnd: connection("nodes.*.lnd", &n.lnd)?,
                tapd: connection("nodes.*.tapd", &n.tapd)?,
            });
        }
        Ok(Self {
            nodes,
            asset: settings
                .network
                .asset_id
                .as_deref()
                .map(asset_ref)
                .transpose()?,
            edge_pubkey: settings.network.edge_pubkey.clone(),
        })
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Result<&NodeAddress, BuildError> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| BuildError::UnknownNode {
                name: name.to_owned(),
                known: self
                    .nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// One connected litd node.
#[derive(Clone, Debug)]
pub struct Node {
    /// Its name.
    pub name: String,
    /// Its lnd.
    pub lnd: LndNode,
    /// Its tapd, with [`Node::lnd`] attached (so `tapd.asset_balance` counts channel units).
    pub tapd: TapdNode,
}

impl Node {
    /// Lazily connected clients for both daemons (nothing is dialled yet). The tapd client
    /// gets a handle on the node's lnd: tapd reports the units in asset channels only through
    /// lnd (see [`TapdNode::with_lnd`]).
    pub fn connect(addr: &NodeAddress) -> Result<Self, BuildError> {
        let lnd = LndNode::connect(&addr.lnd)?;
        let tapd = TapdNode::connect(&addr.tapd)?.with_lnd(lnd.clone());
        Ok(Self {
            name: addr.name.clone(),
            lnd,
            tapd,
        })
    }

    /// Units of `asset` on chain (tapd's `ListBalances`) and on this node's side of its open
    /// asset channels (lnd's `ChannelBalance`, where tapd reports them).
    pub async fn asset_balance(&self, asset: &AssetRef) -> Result<AssetBalance, BackendError> {
        self.tapd.asset_balance_with(&self.lnd, asset).await
    }
}

impl crate::lightning::traits::Payments for Node {
    async fn pay_sats(
        &self,
        payment_request: &str,
        max_fee_msat: u64,
    ) -> Result<crate::lightning::types::PaymentOutcome, BackendError> {
        self.lnd.pay_sats(payment_request, max_fee_msat).await
    }

    async fn preview_asset_payment(
        &self,
        payment_request: &str,
        asset: &AssetRef,
    ) -> Result<u64, BackendError> {
        self.tapd
            .preview_asset_payment(payment_request, asset)
            .await
    }

    async fn pay_with_asset(
        &self,
        payment_request: &str,
        asset: &AssetRef,
        edge_peer: &str,
        max_fee_msat: u64,
    ) -> Result<crate::lightning::types::PaymentOutcome, BackendError> {
        self.tapd
            .pay_with_asset(payment_request, asset, edge_peer, max_fee_msat)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_node_names_the_known_ones() {
        let addrs = NetworkAddresses {
            nodes: ["alice", "bob"]
                .map(|name| NodeAddress {
                    name: name.to_owned(),
                    lnd: NodeConnection::new("127.0.0.1:1", "c", "m"),
                    tapd: NodeConnection::new("127.0.0.1:2", "c", "m"),
                })
                .to_vec(),
            ..NetworkAddresses::default()
        };
        assert!(addrs.node("bob").is_ok());
        let err = addrs.node("carol").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no node named \"carol\"; known nodes: alice, bob"
        );
    }

    #[test]
    fn a_bad_asset_id_in_the_settings_is_a_build_error() {
        let mut settings = Settings::default();
        settings.network.asset_id = Some("not hex".into());
        let err = NetworkAddresses::from_settings(&settings).unwrap_err();
        assert!(matches!(
            err,
            BuildError::BadHex {
                what: "asset id",
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "asset id \"not hex\" is not valid hex of the right length"
        );
    }

    #[test]
    fn a_missing_network_file_is_a_build_error() {
        let dir = tempfile::tempdir().unwrap();
        let err =
            NetworkAddresses::from_network_file(&NetworkFile::path_in(dir.path())).unwrap_err();
        assert!(matches!(err, BuildError::NetworkFile(_)), "{err:?}");
    }
}
