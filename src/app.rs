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
    /// The network's price oracle (`priceoraclerpc`), when the network file names one.
    pub oracle: Option<NodeConnection>,
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
    /// `tapgate serve` with no `[[services]]`.
    #[error(
        "nothing to sell: add a [[services]] table to the configuration (see config/tapgate.toml)"
    )]
    NoServices,
    /// Several nodes and none chosen as the seller.
    #[error("which node sells? set gateway.node to one of: {known}")]
    NoSeller {
        /// The nodes known.
        known: String,
    },
    /// A service needs a rate or an asset the network does not name.
    #[error(
        "{key} needs the network's asset and edge (network.asset_id and network.edge_pubkey, or network.file), or a fixed gateway.usd_per_btc"
    )]
    NoRate {
        /// The key.
        key: String,
    },
    /// `gateway.rate_source = "oracle"` without an oracle in the network file.
    #[error(
        "gateway.rate_source = \"oracle\" needs a price oracle: network.file must name one (oracle_endpoint and oracle_tls_cert_path in network.toml, as simnet writes), or use \"edge\""
    )]
    NoOracle,
    /// The fixed rate does not convert.
    #[error("gateway.usd_per_btc: {0}")]
    Rate(String),
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[source] crate::store::StoreError),
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
        let oracle = file
            .oracle_endpoint
            .clone()
            .zip(file.oracle_tls_cert_path.clone())
            .map(|(endpoint, cert)| NodeConnection::new(endpoint, cert, ""));
        Ok(Self {
            nodes,
            asset: Some(asset_ref(&file.asset_id)?),
            edge_pubkey: Some(file.edge_pubkey),
            oracle,
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
            oracle: None,
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

    async fn track_payment(
        &self,
        hash: &crate::l402::PaymentHash,
    ) -> Result<crate::lightning::types::TrackedPayment, BackendError> {
        self.lnd.track_payment(hash).await
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

/// The gateway, wired: what `tapgate serve` runs.
pub mod gateway {
    use std::sync::Arc;

    use crate::clock::Clock;
    use crate::config::Settings;
    use crate::config::services::{DEFAULT_ASSET, RateSourceSetting, Settlement};
    use crate::gateway::proxy::Proxy;
    use crate::gateway::server::Gateway;
    use crate::lightning::lnd::LndNode;
    use crate::lightning::oracle::OracleClient;
    use crate::lightning::tapd::TapdNode;
    use crate::lightning::traits::NodeInfoSource;
    use crate::metrics::Metrics;
    use crate::mint::challenger::{
        Challenger, PriceSource, PricedService, RailSpec, RateKey, placeholder_asset,
    };
    use crate::mint::gate::{Gate, GateParts, GateSettings};
    use crate::mint::rates::FixedRate;
    use crate::mint::tracker::SettlementTracker;
    use crate::pricing::rate_from_usd_per_btc;
    use crate::store::AnyStore;

    use super::{BuildError, NetworkAddresses, Node, asset_ref};

    /// The gate with the types `serve` uses.
    pub type ServeGate = Gate<AnyStore, LndNode, TapdNode>;

    /// A gateway ready to serve.
    pub struct Built {
        /// What the HTTP server runs.
        pub gateway: Arc<Gateway>,
        /// The gate (for the admin API and revocation).
        pub gate: Arc<ServeGate>,
        /// The settlement tracker, to be followed by a task.
        pub tracker: Arc<SettlementTracker<AnyStore>>,
        /// The seller's lnd, for the tracker's stream.
        pub lnd: LndNode,
        /// The seller node's name.
        pub node_name: String,
        /// The seller node's public key.
        pub node_pubkey: String,
        /// Counters.
        pub metrics: Arc<Metrics>,
    }

    impl std::fmt::Debug for Built {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Built")
                .field("node_name", &self.node_name)
                .finish_non_exhaustive()
        }
    }

    /// The seller node: `gateway.node`, else `merchant`, else the only node.
    /// The seller node: `gateway.node`, else `merchant`, else the only node (`serve` and
    /// `serve --check` pick it alike).
    pub fn seller<'a>(
        settings: &Settings,
        addrs: &'a NetworkAddresses,
    ) -> Result<&'a super::NodeAddress, BuildError> {
        if let Some(name) = &settings.gateway.node {
            return addrs.node(name);
        }
        if let Ok(n) = addrs.node("merchant") {
            return Ok(n);
        }
        match addrs.nodes.as_slice() {
            [only] => Ok(only),
            _ => Err(BuildError::NoSeller {
                known: addrs
                    .nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Builds the gateway from settings: the seller node, the store, the rate source, the
    /// resolved catalogue. Connects to the node once to learn its public key, so a wrong
    /// endpoint, certificate or macaroon is a start-up error, not a first-request one.
    pub async fn build(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Built, BuildError> {
        if settings.services.is_empty() {
            return Err(BuildError::NoServices);
        }
        let addrs = NetworkAddresses::from_settings(settings)?;
        let addr = seller(settings, &addrs)?;
        let node = Node::connect(addr)?;
        let info = node.lnd.node_info().await?;
        let edge = addrs.edge_pubkey.clone();
        let network_asset = addrs.asset.clone();
        let fixed = settings.gateway.usd_per_btc.map(|p| p.usd());
        let source = match (fixed, settings.gateway.rate_source) {
            (Some(usd), _) => PriceSource::Fixed(FixedRate(
                rate_from_usd_per_btc(usd, crate::mint::challenger::FIXED_RATE_DECIMALS)
                    .map_err(|e| BuildError::Rate(e.to_string()))?,
            )),
            (None, RateSourceSetting::Edge) => PriceSource::Edge(node.tapd.clone()),
            (None, RateSourceSetting::Oracle) => {
                let conn = addrs.oracle.as_ref().ok_or(BuildError::NoOracle)?;
                PriceSource::Oracle(Box::new(OracleClient::connect(conn)?))
            }
        };
        let mut services = Vec::new();
        for (i, s) in settings.services.iter().enumerate() {
            let rail = match &s.settlement {
                Settlement::Sats => {
                    let pricing = match (&network_asset, &edge, fixed) {
                        (_, _, Some(_)) => RateKey {
                            asset: network_asset.clone().unwrap_or_else(placeholder_asset),
                            edge: edge.clone().unwrap_or_default(),
                        },
                        (Some(a), Some(e), None) => RateKey {
                            asset: a.clone(),
                            edge: e.clone(),
                        },
                        _ => {
                            return Err(BuildError::NoRate {
                                key: format!("services.{i}.settlement"),
                            });
                        }
                    };
                    RailSpec::Sats { pricing }
                }
                Settlement::Asset(a) => {
                    let asset = if a.asset == DEFAULT_ASSET {
                        network_asset.clone().ok_or_else(|| BuildError::NoRate {
                            key: format!("services.{i}.settlement.asset"),
                        })?
                    } else {
                        asset_ref(&a.asset)?
                    };
                    let edge = a
                        .edge_peer
                        .clone()
                        .or_else(|| edge.clone())
                        .ok_or_else(|| BuildError::NoRate {
                            key: format!("services.{i}.settlement.edge_peer"),
                        })?;
                    RailSpec::Asset {
                        key: RateKey { asset, edge },
                    }
                }
            };
            services.push(PricedService {
                service: s.clone(),
                rail,
            });
        }
        let store = Arc::new(AnyStore::open(settings).await.map_err(BuildError::Store)?);
        let metrics = Arc::new(Metrics::for_replica(&settings.gateway.replica_name()));
        let tracker = Arc::new(SettlementTracker::new(Arc::clone(&store)));
        let challenger = Challenger::new(
            node.lnd.clone(),
            node.tapd.clone(),
            source,
            Arc::clone(&clock),
        );
        let gate = Arc::new(Gate::new(GateParts {
            services,
            store,
            location: settings.l402.location.clone(),
            challenger,
            tracker: Arc::clone(&tracker),
            lnd: node.lnd.clone(),
            clock,
            metrics: Arc::clone(&metrics),
            settings: GateSettings {
                strict_settlement: settings.gateway.strict_settlement,
                node_pubkey: info.pubkey.clone(),
            },
        }));
        let gateway = Arc::new(Gateway {
            auth: Arc::clone(&gate) as Arc<dyn crate::mint::gate::Authenticator>,
            proxy: Proxy::new(),
            metrics: Arc::clone(&metrics),
        });
        Ok(Built {
            gateway,
            gate,
            tracker,
            lnd: node.lnd,
            node_name: addr.name.clone(),
            node_pubkey: info.pubkey,
            metrics,
        })
    }
}
