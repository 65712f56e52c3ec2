//! `network.toml`: where a test or demo network's nodes are, and how to reach them.
//!
//! Two programs write it in one format: `tapgate simnet --dir DIR` (the in-process model) and
//! `integration/regtest/up.sh DIR` (btcd and real tapd-integrated nodes). Everything that reads
//! it (`tapgate node --network`, the test suites) runs unchanged against either network.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `DIR/network.toml`: everything a client needs to reach the simnet's nodes. Paths are
/// absolute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkFile {
    /// Always `"regtest"`.
    pub network: String,
    /// The edge node's identity key (hex): the RFQ peer for asset invoices and payments.
    pub edge_pubkey: String,
    /// An external price oracle (`priceoraclerpc.PriceOracle`) the network's tapd nodes use:
    /// simnet's edge serves one (`host:port`). Absent when the nodes use tapd's built-in mock
    /// oracle, as the real regtest network does: it has no endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oracle_endpoint: Option<String>,
    /// The oracle's TLS certificate (the edge's `tls.cert`). The oracle takes no macaroon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oracle_tls_cert_path: Option<PathBuf>,
    /// The stablecoin's asset id (hex).
    pub asset_id: String,
    /// The asset's name (`"USD"`).
    pub asset_name: String,
    /// The asset's decimal display (6: one unit is $0.000001).
    pub decimal_display: u8,
    /// The asset's group key (hex), when the network was configured with a grouped asset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_key: Option<String>,
    /// The nodes, in the order alice, bob, edge, merchant.
    pub nodes: Vec<NodeEntry>,
}

/// One node in [`NetworkFile`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// `alice`, `bob`, `edge` or `merchant`.
    pub name: String,
    /// Identity key, hex.
    pub pubkey: String,
    /// lnd's gRPC endpoint, `127.0.0.1:PORT`.
    pub lnd_endpoint: String,
    /// tapd's gRPC endpoint: the same port (litd integrated mode).
    pub tapd_endpoint: String,
    /// lnd's REST endpoint (`127.0.0.1:PORT`, HTTPS with the same `tls.cert`), lnd's
    /// `restlisten`. Absent in files written before simnet served REST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_endpoint: Option<String>,
    /// The node's TLS certificate (lnd's `tls.cert`, self-signed, CA:TRUE): pin it.
    pub tls_cert_path: PathBuf,
    /// lnd's `admin.macaroon`.
    pub lnd_macaroon_path: PathBuf,
    /// lnd's `invoice.macaroon`.
    pub lnd_invoice_macaroon_path: PathBuf,
    /// lnd's `readonly.macaroon`.
    pub lnd_readonly_macaroon_path: PathBuf,
    /// tapd's `admin.macaroon`.
    pub tapd_macaroon_path: PathBuf,
}

/// The network file's name inside a network's directory.
pub const NETWORK_FILE: &str = "network.toml";

impl NetworkFile {
    /// `dir/network.toml`: where `tapgate simnet --dir DIR` and `up.sh DIR` write it.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(NETWORK_FILE)
    }

    /// Reads and parses a network file.
    pub fn read(path: &Path) -> Result<Self, NetworkFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| NetworkFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| NetworkFileError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// A network file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NetworkFileError {
    /// The file could not be read.
    #[error("cannot read {}: {source}; is `tapgate simnet --dir` (or integration/regtest/up.sh) running with that directory?", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file is not a network file.
    #[error("{} is not a network file (as `tapgate simnet` or integration/regtest/up.sh write them): {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: toml::de::Error,
    },
}
