//! `tapgate serve --check`: whether a replica could start from its settings, without serving.
//!
//! Each check answers one question an operator rolling a fleet asks before a replica takes
//! traffic: does the store open (and migrate), do the seller's lnd and tapd answer with the
//! pinned certificate and macaroons, do the assets the catalogue settles in exist on that tapd,
//! does the gateway wire up ([`crate::app::gateway::build`], the same call `serve` makes), and
//! can both listeners bind. Every check runs even when another fails; one that cannot mean
//! anything without an earlier one (the gateway without a store) is skipped, saying why.
//!
//! This module owns the checks and their typed outcomes; the command line prints them. It must
//! not serve, follow the settlement stream, mint, create an invoice or keep anything open: every
//! store, node client and socket it opens is closed or dropped before it returns. It reads nodes
//! and stores only through their adapters, so it sees what `serve` would see.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::app::gateway::seller;
use crate::app::{BuildError, NetworkAddresses, Node};
use crate::clock::SystemClock;
use crate::config::services::DEFAULT_ASSET;
use crate::config::{Settings, Settlement, StoreBackend};
use crate::lightning::error::BackendError;
use crate::lightning::traits::{NodeInfoSource, Rates};
use crate::lightning::types::AssetRef;
use crate::store::{AnyStore, StoreError};

/// The longest one check may take. Longer than the PostgreSQL store's own 10 s connect bound,
/// so that its message (which says what to check) wins over this one; a node whose `GetInfo`
/// has not answered in this long is not ready to take traffic, whatever its call timeout.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a check failed, in words that say what to do next.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The store could not be opened or migrated.
    #[error(transparent)]
    Store(StoreError),
    /// The nodes or the gateway cannot be set up from the settings.
    #[error(transparent)]
    Build(BuildError),
    /// A node call failed.
    #[error(transparent)]
    Backend(BackendError),
    /// tapd does not know an asset a service settles in.
    #[error(
        "{node} does not know asset {asset} ({source}); check services.*.settlement.asset (or network.asset_id for \"default\"), and that this tapd holds the asset or has synced it from a universe"
    )]
    UnknownAsset {
        /// The tapd asked (`tapd merchant`).
        node: String,
        /// The asset.
        asset: String,
        /// tapd's answer.
        #[source]
        source: BackendError,
    },
    /// A listener could not be bound.
    #[error(
        "cannot listen on {addr} ({key}): {source}; is a tapgate (or another program) already listening there? Stop it, or change {key}"
    )]
    Bind {
        /// The setting.
        key: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A check got no answer in [`CHECK_TIMEOUT`].
    #[error(
        "{what} gave no answer within {} s; check that it is running and reachable from this host (a firewall that drops packets looks like this)", after.as_secs()
    )]
    TimedOut {
        /// What was waited for.
        what: String,
        /// How long.
        after: Duration,
    },
}

/// How one check ended.
#[derive(Debug)]
pub enum Outcome {
    /// Passed; what was found (the store's kind, the node's key and alias, …).
    Ok(String),
    /// Failed.
    Fail(CheckError),
    /// Not run, and why (an earlier check it depends on failed, or nothing to check).
    Skipped(String),
}

/// One check: what was checked and how it ended.
#[derive(Debug)]
pub struct Check {
    /// What was checked (`store`, `lnd merchant`, `listen`, …).
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
}

impl Check {
    fn new(name: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            name: name.into(),
            outcome,
        }
    }

    /// Whether this check did not fail (a skipped check did not fail either).
    pub fn passed(&self) -> bool {
        !matches!(self.outcome, Outcome::Fail(_))
    }
}

/// `what`, bounded by [`CHECK_TIMEOUT`].
async fn bounded<T>(
    what: impl Into<String>,
    work: impl Future<Output = Result<T, CheckError>>,
) -> Result<T, CheckError> {
    match tokio::time::timeout(CHECK_TIMEOUT, work).await {
        Ok(done) => done,
        Err(_) => Err(CheckError::TimedOut {
            what: what.into(),
            after: CHECK_TIMEOUT,
        }),
    }
}

/// Runs every check against `settings` (loaded and validated as `serve` loads them), in the
/// order they are reported: store, nodes, assets, gateway, listeners.
pub async fn run(settings: &Settings) -> Vec<Check> {
    let (store, nodes, listen, admin) = tokio::join!(
        check_store(settings),
        check_nodes(settings),
        check_bind(
            "listen",
            "gateway.listen",
            settings.gateway.listen,
            bind_gateway
        ),
        check_bind(
            "admin_listen",
            "gateway.admin_listen",
            settings.gateway.admin_listen,
            bind_admin
        ),
    );
    let store_ok = store.passed();
    let mut checks = vec![store];
    checks.extend(nodes.checks);
    checks.push(check_gateway(settings, store_ok, nodes.seller_answered).await);
    checks.push(listen);
    checks.push(admin);
    checks
}

/// Opens the store as `serve` does (which creates or upgrades its schema), then closes it.
async fn check_store(settings: &Settings) -> Check {
    let opened = bounded("the store", async {
        AnyStore::open(settings).await.map_err(CheckError::Store)
    })
    .await;
    let outcome = match opened {
        Err(e) => Outcome::Fail(e),
        Ok(store) => {
            let found = match settings.store.backend() {
                StoreBackend::Memory => {
                    "memory (nothing survives a restart; not for a fleet of replicas)".to_owned()
                }
                StoreBackend::Sqlite => format!(
                    "sqlite, {} (schema created or upgraded)",
                    settings.data_dir.join("tapgate.sqlite").display()
                ),
                StoreBackend::Postgres => format!(
                    "postgres, {} (schema created or upgraded)",
                    settings
                        .store
                        .url
                        .as_ref()
                        .map_or_else(String::new, |u| u.redacted())
                ),
            };
            close(store).await;
            Outcome::Ok(found)
        }
    };
    Check::new("store", outcome)
}

/// Closes a store's connections now rather than when the runtime stops.
async fn close(store: AnyStore) {
    match store {
        AnyStore::Memory(_) => {}
        #[cfg(feature = "sqlite")]
        AnyStore::Sqlite(s) => s.close().await,
        #[cfg(feature = "postgres")]
        AnyStore::Postgres(s) => s.close().await,
    }
}

/// The node checks, and whether the seller's lnd answered (the gateway's wiring needs it).
struct NodeChecks {
    checks: Vec<Check>,
    seller_answered: bool,
}

impl NodeChecks {
    fn failed(checks: Vec<Check>) -> Self {
        Self {
            checks,
            seller_answered: false,
        }
    }
}

/// The seller's lnd (`GetInfo`), its tapd (`GetInfo`), and each asset the catalogue settles in
/// (`FetchAssetMeta` on that tapd: the asset is known and its decimal display readable).
async fn check_nodes(settings: &Settings) -> NodeChecks {
    let failed = |e| {
        NodeChecks::failed(vec![Check::new(
            "nodes",
            Outcome::Fail(CheckError::Build(e)),
        )])
    };
    let addrs = match NetworkAddresses::from_settings(settings) {
        Ok(a) => a,
        Err(e) => return failed(e),
    };
    let addr = match seller(settings, &addrs) {
        Ok(a) => a,
        Err(e) => return failed(e),
    };
    let lnd_name = format!("lnd {}", addr.name);
    let tapd_name = format!("tapd {}", addr.name);
    // Reads the certificate and the macaroons; dials nothing yet.
    let node = match Node::connect(addr) {
        Ok(n) => n,
        Err(e) => {
            let skipped = format!("{lnd_name} could not be set up");
            return NodeChecks::failed(vec![
                Check::new(lnd_name, Outcome::Fail(CheckError::Build(e))),
                Check::new(tapd_name, Outcome::Skipped(skipped)),
            ]);
        }
    };
    let lnd_what = format!("{lnd_name} at {}", addr.lnd.endpoint);
    let tapd_what = format!("{tapd_name} at {}", addr.tapd.endpoint);
    let (lnd, tapd) = tokio::join!(
        bounded(lnd_what, async {
            node.lnd.node_info().await.map_err(CheckError::Backend)
        }),
        bounded(tapd_what, async {
            node.tapd.version().await.map_err(CheckError::Backend)
        }),
    );
    let tapd_ok = tapd.is_ok();
    let seller_answered = lnd.is_ok();
    let mut checks = vec![
        Check::new(
            lnd_name,
            match lnd {
                Ok(info) => Outcome::Ok(format!(
                    "{} ({}), {}, block {}, lnd {}",
                    info.pubkey,
                    info.alias,
                    if info.synced_to_chain {
                        "synced to chain"
                    } else {
                        "NOT synced to chain yet"
                    },
                    info.block_height,
                    info.version
                )),
                Err(e) => Outcome::Fail(e),
            },
        ),
        Check::new(
            tapd_name.clone(),
            match tapd {
                Ok(version) => Outcome::Ok(format!("tapd {version}")),
                Err(e) => Outcome::Fail(e),
            },
        ),
    ];
    for (name, asset) in settled_assets(settings, &addrs) {
        let outcome = match asset {
            _ if !tapd_ok => Outcome::Skipped(format!("{tapd_name} did not answer")),
            AssetRef::GroupKey(_) => Outcome::Skipped(
                "a group key: tapd looks assets up by id, so it is not checked here".to_owned(),
            ),
            AssetRef::Id(_) => {
                let what = format!("{tapd_name} (FetchAssetMeta)");
                match bounded(what, async {
                    node.tapd.decimal_display(&asset).await.map_err(|e| {
                        if e.code() == Some(tonic::Code::NotFound) {
                            CheckError::UnknownAsset {
                                node: tapd_name.clone(),
                                asset: asset.to_string(),
                                source: e,
                            }
                        } else {
                            CheckError::Backend(e)
                        }
                    })
                })
                .await
                {
                    Ok(d) => Outcome::Ok(format!("known to {tapd_name}, decimal display {d}")),
                    Err(e) => Outcome::Fail(e),
                }
            }
        };
        checks.push(Check::new(name, outcome));
    }
    NodeChecks {
        checks,
        seller_answered,
    }
}

/// The assets the services settle in, each once, named for the report. An asset that does not
/// resolve (`"default"` without a network asset, bad hex) is left to the gateway check, which
/// reports it in `serve`'s words.
fn settled_assets(settings: &Settings, addrs: &NetworkAddresses) -> Vec<(String, AssetRef)> {
    let mut assets = BTreeMap::new();
    for s in &settings.services {
        let Settlement::Asset(a) = &s.settlement else {
            continue;
        };
        let asset = if a.asset == DEFAULT_ASSET {
            addrs.asset.clone()
        } else {
            AssetRef::parse(&a.asset)
        };
        if let Some(asset) = asset {
            assets.insert(asset.to_string(), asset);
        }
    }
    assets
        .into_iter()
        .map(|(id, asset)| (format!("asset {id}"), asset))
        .collect()
}

/// The gateway wired exactly as `serve` wires it (catalogue, rate source, seller, store), then
/// dropped. Skipped when the store failed or the seller's lnd did not answer: it would only
/// fail again on them.
async fn check_gateway(settings: &Settings, store_ok: bool, seller_answered: bool) -> Check {
    let outcome = if !store_ok || !seller_answered {
        Outcome::Skipped(format!(
            "needs the {} above",
            match (store_ok, seller_answered) {
                (false, false) => "store and the seller's lnd",
                (false, true) => "store",
                _ => "seller's lnd",
            }
        ))
    } else {
        let built = bounded("the gateway's wiring", async {
            crate::app::gateway::build(settings, Arc::new(SystemClock))
                .await
                .map_err(CheckError::Build)
        })
        .await;
        match built {
            Ok(built) => Outcome::Ok(format!(
                "{} service(s) priced, sold by {}",
                settings.services.len(),
                built.node_name
            )),
            Err(e) => Outcome::Fail(e),
        }
    };
    Check::new("gateway", outcome)
}

/// Binds as `serve` binds `gateway.listen` (the workers' socket options).
fn bind_gateway(addr: SocketAddr) -> std::io::Result<()> {
    crate::gateway::workers::bind(addr).map(drop)
}

/// Binds as `serve` binds `gateway.admin_listen` (a plain listener).
fn bind_admin(addr: SocketAddr) -> std::io::Result<()> {
    std::net::TcpListener::bind(addr).map(drop)
}

/// Binds `addr` with `bind` and releases it at once.
async fn check_bind(
    name: &'static str,
    key: &'static str,
    addr: SocketAddr,
    bind: fn(SocketAddr) -> std::io::Result<()>,
) -> Check {
    let outcome = match bind(addr) {
        Ok(()) => Outcome::Ok(format!("{addr} can be bound (released again)")),
        Err(source) => Outcome::Fail(CheckError::Bind { key, addr, source }),
    };
    Check::new(name, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::NodeAddress;
    use crate::config::Sources;
    use crate::lightning::grpc::NodeConnection;

    fn addrs(names: &[&str]) -> NetworkAddresses {
        NetworkAddresses {
            nodes: names
                .iter()
                .map(|name| NodeAddress {
                    name: (*name).to_owned(),
                    lnd: NodeConnection::new("127.0.0.1:1", "c", "m"),
                    tapd: NodeConnection::new("127.0.0.1:1", "c", "m"),
                })
                .collect(),
            asset: AssetRef::parse(&"ab".repeat(32)),
            ..NetworkAddresses::default()
        }
    }

    /// Settings from a TOML text, loaded as `serve` loads them (without the environment).
    fn settings(text: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tapgate.toml");
        std::fs::write(&file, text).unwrap();
        Sources {
            file: Some(file),
            overrides: Vec::new(),
            env: false,
        }
        .load()
        .unwrap()
    }

    #[test]
    fn the_seller_is_chosen_as_serve_chooses_it() {
        let plain = Settings::default();
        let pick = |s: &Settings, names: &[&str]| seller(s, &addrs(names)).map(|n| n.name.clone());
        assert_eq!(pick(&plain, &["alice", "merchant"]).unwrap(), "merchant");
        assert_eq!(pick(&plain, &["carol"]).unwrap(), "carol");
        let err = pick(&plain, &["alice", "bob"]).unwrap_err();
        assert!(matches!(err, BuildError::NoSeller { ref known } if known == "alice, bob"));
        let mut named = Settings::default();
        named.gateway.node = Some("alice".into());
        assert_eq!(pick(&named, &["alice", "merchant"]).unwrap(), "alice");
        assert!(matches!(
            pick(&named, &["merchant"]).unwrap_err(),
            BuildError::UnknownNode { .. }
        ));
    }

    #[test]
    fn each_settled_asset_is_checked_once() {
        let asset = "ab".repeat(32);
        let mut text = format!(
            "[network]\nasset_id = \"{asset}\"\nedge_pubkey = \"02767046b7f30a1a03d038d96bed17145ee1460c5944aea5e1bcbedc5403f8a659\"\n"
        );
        // The network's asset by "default" and by its id, and a sats service.
        for (name, settlement) in [
            ("a", r#"{ asset = "default" }"#.to_owned()),
            ("b", format!(r#"{{ asset = "{asset}" }}"#)),
            ("c", r#""sats""#.to_owned()),
        ] {
            text.push_str(&format!(
                "[[services]]\nname = \"{name}\"\npaths = [\"/{name}\"]\nupstream = \"http://127.0.0.1:9\"\nprice_usd = \"0.50\"\nsettlement = {settlement}\n"
            ));
        }
        let s = settings(&text);
        let assets = settled_assets(&s, &addrs(&["merchant"]));
        let names: Vec<_> = assets.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [format!("asset {}", "ab".repeat(32))]);
        // Without a network asset, "default" is left to the gateway check; the named one stays.
        assert_eq!(settled_assets(&s, &NetworkAddresses::default()).len(), 1);
    }
}
