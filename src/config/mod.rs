//! Settings: built-in defaults < `config/tapgate.toml` (or `--config FILE`) < `TAPGATE_*`
//! environment variables < `--set key=value` on the command line.
//!
//! Unknown keys and ill-typed values are errors that name the key and what was expected.
//! Environment keys nest with a double underscore: `TAPGATE_STORE__BACKEND=memory` sets
//! `store.backend`. `TAPGATE_POLAR_*`, `TAPGATE_REGTEST_*`, `TAPGATE_SIMNET_*` and
//! `TAPGATE_TEST_*` (e.g. `TAPGATE_TEST_POSTGRES_URL`) variables belong to the test scripts and
//! the sample configs and are not settings.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `data_dir` | `./data` | where the SQLite store lives (created `0700`) |
//! | `store.backend` | `sqlite`, or `postgres` with `store.url` | `sqlite`, `memory` (keys lost at exit; for tests) or `postgres` |
//! | `store.url` | none | `postgres://user:password@host:5432/database[?sslmode=require]`: selects the PostgreSQL store; shown only redacted |
//! | `store.max_connections` | `16` | the PostgreSQL pool's size ([`DEFAULT_MAX_CONNECTIONS`]) |
//! | `l402.location` | `tapgate` | the location hint written into minted macaroons |
//! | `log.filter` | `info` | tracing filter, e.g. `tapgate=debug` |
//! | `nodes.<name>.lnd` / `.tapd` | none | `endpoint`, `tls_cert_path`, `macaroon_path`, `timeout_secs` (60) |
//! | `network.asset_id`, `network.edge_pubkey` | none | the stablecoin (64 hex asset id, or a 66 hex group key) and the edge node (66 hex compressed public key) |
//! | `network.file` | none | a `network.toml` (from `tapgate simnet --dir DIR` or `up.sh DIR`) giving the nodes, asset and edge instead of `[nodes.*]` and the two keys above; may use `${VAR}` |
//! | `gateway.listen` | `127.0.0.1:8402` | the paid API's socket ([`DEFAULT_LISTEN`] says why) |
//! | `gateway.admin_listen` | `127.0.0.1:8403` | the admin API's socket, loopback ([`DEFAULT_ADMIN_LISTEN`]) |
//! | `gateway.node` | `merchant`, else the only node | the node that sells (makes the invoices) |
//! | `gateway.strict_settlement` | `true` | honour a token only once its invoice is seen settled |
//! | `gateway.usd_per_btc` | none (the edge's RFQ) | a fixed rate, for tests and demos |
//! | `gateway.drain_secs` | `10` | longest wait for in-flight requests at shutdown |
//! | `gateway.workers` | `0` (one per CPU) | threads serving the paid API, each with its own runtime and upstream connections; one acceptor hands each connection to the least busy |
//! | `[[services]]` | none | the APIs sold, in match order: see the table below and [`services`] |
//!
//! Each `[[services]]` entry:
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `name` | required | unique; written into tokens (1-64 of `A-Za-z0-9_-.`) |
//! | `host` | any host | only requests whose `Host` is this (no port; case-insensitive) |
//! | `paths` | required | path patterns (`/api/v1/*`, `/users/*/profile`, `/health`); first match across services in file order wins; a pattern an earlier service hides is refused |
//! | `upstream` | required | `http://`, `https://` or `grpc://host:port` (no credentials, query or fragment) |
//! | `price_usd` | required | a decimal string, more than 0, at most 6 places ([`PRICE_DECIMALS`]) |
//! | `settlement` | required | `"sats"`, or `{ asset = "<64/66 hex or default>", edge_peer = "<66 hex>" }`; `default` is `network.asset_id`, a missing `edge_peer` is `network.edge_pubkey` |
//! | `token_lifetime_secs` | `86400` | 60 s to a year ([`DEFAULT_TOKEN_LIFETIME_SECS`]) |
//! | `methods` | `["GET", "POST"]` | methods sold ([`DEFAULT_METHODS`]); a `grpc` upstream needs `POST` |
//! | `free_paths` | none | patterns inside `paths` that need no payment |
//! | `free_calls_per_client` | none | calls a client makes before paying (at least 1 when set) |
//! | `tiers` | none | `[[services.tiers]]`: `name`, `paths` that need the tier, `capabilities` it grants, optional `price_usd`; `tiers[0]` is tier 1 |
//! | `small_price` | `"sats_invoice"` | below the asset HTLC minimum (354 sat, about $0.35): `"sats_invoice"`, or `"prepaid"` (asset settlement only) with `prepaid_usd` |
//! | `prepaid_usd` | none | with `"prepaid"`: the balance sold at once, at least `price_usd` |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub mod services;
pub mod store;

pub use services::{
    AssetSettlement, DEFAULT_ADMIN_LISTEN, DEFAULT_LISTEN, DEFAULT_METHODS,
    DEFAULT_TOKEN_LIFETIME_SECS, GatewaySettings, PRICE_DECIMALS, Service, Settlement, SmallPrice,
    Tier, Upstream, UpstreamScheme, UsdAmount,
};
pub use store::{DEFAULT_MAX_CONNECTIONS, StoreBackend, StoreSettings, StoreUrl};

/// The default configuration file, used when it exists and no `--config` is given.
pub const DEFAULT_CONFIG_FILE: &str = "config/tapgate.toml";

/// Validated settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Directory for tapgate's own state (the root-key database).
    pub data_dir: PathBuf,
    /// The store of root keys, settlements, the ledger, balances and meters.
    pub store: StoreSettings,
    /// L402 minting.
    pub l402: L402Settings,
    /// Logging.
    pub log: LogSettings,
    /// The Lightning nodes tapgate talks to, by name (e.g. `[nodes.merchant]`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes: BTreeMap<String, NodeSettings>,
    /// Facts about the network those nodes are on.
    #[serde(default)]
    pub network: NetworkSettings,
    /// Where the gateway and its admin API listen.
    #[serde(default)]
    pub gateway: GatewaySettings,
    /// The APIs sold, in the order requests are matched against them (`[[services]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
}

/// One litd node: its lnd and its tapd (which may share a port and certificate in litd).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    /// lnd's gRPC.
    pub lnd: ConnectionSettings,
    /// tapd's gRPC (for litd as Polar runs it: litd's port and certificate, tapd's macaroon).
    pub tapd: ConnectionSettings,
}

/// How to reach one daemon. Paths may use `~` and `${VAR}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSettings {
    /// `host:port` of the gRPC port.
    pub endpoint: String,
    /// The daemon's `tls.cert`, pinned.
    pub tls_cert_path: String,
    /// The daemon's macaroon file (sent hex-encoded; never logged).
    pub macaroon_path: String,
    /// Per-call deadline in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    // tapd's AddInvoice may wait up to 30 s for the edge's quote; leave room for the invoice.
    60
}

/// The network's asset and edge node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSettings {
    /// The USD stablecoin: its asset id (64 hex characters), or the group key of a grouped
    /// asset (66 hex characters, a compressed secp256k1 key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<String>,
    /// The edge node's public key (66 hex characters, compressed secp256k1): the RFQ peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_pubkey: Option<String>,
    /// A `network.toml` (written by `tapgate simnet --dir DIR` or `integration/regtest/up.sh
    /// DIR`) that names the nodes, the asset and the edge, so a config can follow a network
    /// whose keys change every run (`"${TAPGATE_SIMNET_DIR}/network.toml"`). It replaces
    /// `[nodes.*]`, `asset_id` and `edge_pubkey`; setting both is refused. `config check`
    /// checks only that the path expands (the simnet need not be running); `app` reads it
    /// (`tapgate node --config config/simnet.toml`, and the gateway to come).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// Expands a leading `~` and every `${VAR}` in a configured path.
pub fn expand_path(key: &'static str, raw: &str) -> Result<PathBuf, ConfigError> {
    let mut out = String::new();
    let mut rest = raw;
    if let Some(tail) = rest.strip_prefix("~/") {
        let home = std::env::var("HOME").map_err(|_| ConfigError::Value {
            key: key.into(),
            reason: format!("{raw:?} starts with ~ but HOME is not set"),
        })?;
        out.push_str(&home);
        out.push('/');
        rest = tail;
    }
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| ConfigError::Value {
            key: key.into(),
            reason: format!("{raw:?} has an unclosed ${{"),
        })?;
        let var = &after[..end];
        let value = std::env::var(var).map_err(|_| ConfigError::Value {
            key: key.into(),
            reason: format!("{raw:?} uses ${{{var}}}, which is not set; export it (config/polar.toml and config/simnet.toml say what it should hold)"),
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(PathBuf::from(out))
}

/// L402 settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct L402Settings {
    /// Location hint in minted macaroons. Not security relevant; Aperture uses `lsat`.
    pub location: String,
}

/// Logging settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// A `tracing_subscriber::EnvFilter` directive.
    pub filter: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            // Relative to the working directory, like `config/tapgate.toml`, so a checkout
            // runs without writing anywhere else.
            data_dir: PathBuf::from("./data"),
            // SQLite unless a PostgreSQL url is set (`StoreSettings::backend`).
            store: StoreSettings::default(),
            l402: L402Settings {
                location: "tapgate".into(),
            },
            log: LogSettings {
                filter: "info".into(),
            },
            // No nodes by default: the L402 core needs none; `tapgate node` needs one.
            nodes: BTreeMap::new(),
            network: NetworkSettings::default(),
            gateway: GatewaySettings::default(),
            // Nothing is sold until the seller says what and at what price.
            services: Vec::new(),
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A `--config` file that does not exist.
    #[error("configuration file {0} does not exist; pass an existing file to --config")]
    MissingFile(PathBuf),
    /// A `--set` that is not `key=value`.
    #[error("--set {0:?} is not key=value (for example --set store.backend=memory)")]
    BadOverride(String),
    /// figment could not build [`Settings`]; its message names the key and the source.
    #[error("invalid configuration: {}", describe(.0))]
    Invalid(#[source] Box<figment::Error>),
    /// A value that parsed but makes no sense.
    #[error("invalid configuration: {key}: {reason}")]
    Value {
        /// The dotted key (array elements by index: `services.2.price_usd`).
        key: String,
        /// What is expected.
        reason: String,
    },
}

fn describe(e: &figment::Error) -> String {
    e.clone()
        .into_iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where the layers come from.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// `--config FILE`; when absent, [`DEFAULT_CONFIG_FILE`] if it exists.
    pub file: Option<PathBuf>,
    /// `--set key=value` overrides, in order.
    pub overrides: Vec<String>,
    /// Read `TAPGATE_*` variables (off in tests that must not see the caller's environment).
    pub env: bool,
}

/// Renders a `--set` value as TOML: kept as is when it is a TOML value, quoted otherwise.
fn toml_value(raw: &str) -> String {
    let probe = format!("v = {raw}");
    if raw.trim().is_empty() || probe.parse::<toml::Table>().is_err() {
        toml::Value::String(raw.to_owned()).to_string()
    } else {
        raw.to_owned()
    }
}

/// `--set` overrides as a figment provider, so errors say they came from the command line.
struct CliOverrides(toml::Table);

impl figment::Provider for CliOverrides {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("command-line --set")
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        Serialized::defaults(&self.0).data()
    }
}

impl Sources {
    /// Builds the figment with every layer in precedence order.
    pub fn figment(&self) -> Result<Figment, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Settings::default()));
        match &self.file {
            Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path.clone())),
            Some(path) => fig = fig.merge(Toml::file_exact(path)),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                fig = fig.merge(Toml::file_exact(DEFAULT_CONFIG_FILE))
            }
            None => {}
        }
        if self.env {
            fig = fig.merge(Env::prefixed("TAPGATE_").split("__").filter(|k| {
                let k = k.as_str().to_ascii_lowercase();
                !k.starts_with("polar_")
                    && !k.starts_with("regtest_")
                    && !k.starts_with("simnet_")
                    && !k.starts_with("test_")
                    && k != "config"
            }));
        }
        let mut lines = String::new();
        for o in &self.overrides {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| ConfigError::BadOverride(o.clone()))?;
            let k = k.trim();
            if k.is_empty()
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
            {
                return Err(ConfigError::BadOverride(o.clone()));
            }
            lines.push_str(&format!("{k} = {}\n", toml_value(v.trim())));
        }
        if !lines.is_empty() {
            let table: toml::Table = lines
                .parse()
                .map_err(|_| ConfigError::BadOverride(self.overrides.join(" ")))?;
            fig = fig.merge(CliOverrides(table));
        }
        Ok(fig)
    }

    /// Loads and validates the settings.
    pub fn load(&self) -> Result<Settings, ConfigError> {
        let settings: Settings = self
            .figment()?
            .extract()
            .map_err(|e| ConfigError::Invalid(Box::new(e)))?;
        settings.validate()?;
        Ok(settings)
    }
}

impl Settings {
    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Value {
                key: "data_dir".into(),
                reason: "must not be empty".into(),
            });
        }
        let loc = &self.l402.location;
        if loc.is_empty() || loc.len() > crate::l402::macaroon::MAX_LOCATION_LEN {
            return Err(ConfigError::Value {
                key: "l402.location".into(),
                reason: format!(
                    "must be 1 to {} bytes",
                    crate::l402::macaroon::MAX_LOCATION_LEN
                ),
            });
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            return Err(ConfigError::Value {
                key: "log.filter".into(),
                reason: format!("not a tracing filter ({e}); try \"info\" or \"tapgate=debug\""),
            });
        }
        if let Some(id) = &self.network.asset_id {
            check_asset_id(id).map_err(|reason| ConfigError::Value {
                key: "network.asset_id".into(),
                reason,
            })?;
        }
        if let Some(key) = &self.network.edge_pubkey {
            check_pubkey(key).map_err(|reason| ConfigError::Value {
                key: "network.edge_pubkey".into(),
                reason,
            })?;
        }
        if let Some(file) = &self.network.file {
            expand_path("network.file", file)?;
            let also = [
                ("network.asset_id", self.network.asset_id.is_some()),
                ("network.edge_pubkey", self.network.edge_pubkey.is_some()),
                ("nodes", !self.nodes.is_empty()),
            ];
            if let Some((other, _)) = also.iter().find(|(_, set)| *set) {
                return Err(ConfigError::Value {
                    key: "network.file".into(),
                    reason: format!(
                        "the network file names the nodes, asset and edge, and {other} is set too; keep one of the two"
                    ),
                });
            }
        }
        self.store.validate()?;
        services::validate_gateway(&self.gateway)?;
        services::validate(&self.services, &self.network)?;
        Ok(())
    }

    /// The effective settings as TOML, for `tapgate config check`. The one secret among them,
    /// a password in `store.url`, is printed as `***` ([`StoreUrl`]'s serialization).
    /// The store's backend is shown as in effect (`sqlite` when neither it nor a url is set).
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        shown.store.backend = Some(self.store.backend());
        toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot render settings: {e}\n"))
    }
}

/// Hex characters of a 32-byte asset id and of a 33-byte compressed public key.
const ASSET_ID_HEX: usize = 64;
const PUBKEY_HEX: usize = 66;

fn decode_hex(value: &str) -> Result<Vec<u8>, String> {
    hex::decode(value.trim()).map_err(|e| format!("{value:?} is not hex ({e})"))
}

/// An asset id (32 bytes) or, for a grouped asset, its group key (a 33-byte compressed key):
/// the two forms tapgate's asset references take.
fn check_asset_id(value: &str) -> Result<(), String> {
    let len = value.trim().len();
    if len != ASSET_ID_HEX && len != PUBKEY_HEX {
        return Err(format!(
            "{value:?} has {len} characters; an asset id is {ASSET_ID_HEX} hex characters (32 bytes; tapcli assets list shows it), a group key {PUBKEY_HEX}"
        ));
    }
    let bytes = decode_hex(value)?;
    if bytes.len() == PUBKEY_HEX / 2 {
        check_point(&bytes).map_err(|why| format!("{value:?} is not a group key: {why}"))?;
    }
    Ok(())
}

/// A node's identity key: 33 bytes, a compressed secp256k1 point.
fn check_pubkey(value: &str) -> Result<(), String> {
    let len = value.trim().len();
    if len != PUBKEY_HEX {
        return Err(format!(
            "{value:?} has {len} characters; a node public key is {PUBKEY_HEX} hex characters (33 bytes, starting 02 or 03; lncli getinfo shows it as identity_pubkey)"
        ));
    }
    let bytes = decode_hex(value)?;
    check_point(&bytes).map_err(|why| format!("{value:?} is not a node public key: {why}"))
}

/// A compressed secp256k1 point: prefix 02 or 03, then an x below the field prime for which
/// x³ + 7 is a square (Euler's criterion), so that some y lies on the curve.
fn check_point(bytes: &[u8]) -> Result<(), &'static str> {
    use num_bigint::BigUint;
    let (prefix, x) = bytes.split_first().ok_or("it is empty")?;
    if *prefix != 0x02 && *prefix != 0x03 {
        return Err("a compressed key starts with 02 or 03");
    }
    // p = 2^256 - 2^32 - 977
    let p = (BigUint::from(1u8) << 256u32) - (BigUint::from(1u8) << 32u32) - 977u32;
    let x = BigUint::from_bytes_be(x);
    if x >= p {
        return Err("its x coordinate is outside the curve's field");
    }
    let rhs = (x.modpow(&BigUint::from(3u8), &p) + 7u32) % &p;
    let exponent = (&p - 1u32) >> 1u32;
    if rhs.modpow(&exponent, &p) != BigUint::from(1u8) {
        return Err("no point on secp256k1 has that x coordinate");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The secp256k1 generator, compressed.
    const G: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    #[test]
    fn network_ids_are_checked_and_named() {
        let id = "7e".repeat(32);
        let ok = |k: &str, v: &str| sources(None, &[&format!("{k}=\"{v}\"")]).load();
        assert!(ok("network.asset_id", &id).is_ok());
        assert!(ok("network.asset_id", G).is_ok(), "a group key");
        assert!(ok("network.edge_pubkey", G).is_ok());
        assert!(ok("network.edge_pubkey", &G.to_uppercase()).is_ok());
        for (key, value, why) in [
            ("network.asset_id", "00".to_string(), "64 hex characters"),
            ("network.asset_id", "zz".repeat(32), "not hex"),
            ("network.asset_id", format!("04{}", &G[2..]), "02 or 03"),
            ("network.edge_pubkey", id.clone(), "66 hex characters"),
            ("network.edge_pubkey", format!("04{}", &G[2..]), "02 or 03"),
            (
                "network.edge_pubkey",
                format!("02{}", "ff".repeat(32)),
                "field",
            ),
            // x = 5: 5³ + 7 = 132 is not a square modulo p.
            (
                "network.edge_pubkey",
                format!("02{}05", "00".repeat(31)),
                "no point",
            ),
        ] {
            let err = ok(key, &value).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains(why),
                "{key}={value}: {err}"
            );
        }
    }

    fn sources(file: Option<&Path>, overrides: &[&str]) -> Sources {
        Sources {
            file: file.map(Path::to_path_buf),
            overrides: overrides.iter().map(|s| s.to_string()).collect(),
            env: false,
        }
    }

    fn file(contents: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(contents.as_bytes()).unwrap();
        f
    }

    #[test]
    fn defaults_then_file_then_overrides() {
        let f = file("data_dir = \"/srv/tapgate\"\n[l402]\nlocation = \"lsat\"\n");
        let s = sources(
            Some(f.path()),
            &["l402.location=override", "store.backend=memory"],
        )
        .load()
        .unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/srv/tapgate"));
        assert_eq!(s.l402.location, "override");
        assert_eq!(s.store.backend(), StoreBackend::Memory);
        assert_eq!(s.log.filter, "info");
    }

    #[test]
    fn a_store_url_selects_postgres_and_conflicts_are_named() {
        let url = "store.url=postgres://app:s3cret@127.0.0.1:5432/tapgate";
        let s = sources(None, &[url]).load().unwrap();
        assert_eq!(s.store.backend(), StoreBackend::Postgres);
        assert_eq!(s.store.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert!(!format!("{s:?}").contains("s3cret"));
        assert!(!s.to_toml().contains("s3cret"), "{}", s.to_toml());
        let s = sources(
            None,
            &[url, "store.backend=postgres", "store.max_connections=4"],
        )
        .load()
        .unwrap();
        assert_eq!(
            (s.store.backend(), s.store.max_connections),
            (StoreBackend::Postgres, 4)
        );
        assert_eq!(
            sources(None, &[]).load().unwrap().store.backend(),
            StoreBackend::Sqlite
        );
        for backend in ["store.backend=sqlite", "store.backend=memory"] {
            let err = sources(None, &[url, backend])
                .load()
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("store.url") && err.contains("store.backend"),
                "{err}"
            );
            assert!(!err.contains("s3cret"), "{err}");
        }
        let err = sources(None, &["store.backend=postgres"])
            .load()
            .unwrap_err()
            .to_string();
        assert!(err.contains("store.url"), "{err}");
        let err = sources(None, &[url, "store.max_connections=0"])
            .load()
            .unwrap_err()
            .to_string();
        assert!(err.contains("store.max_connections"), "{err}");
    }

    #[test]
    fn a_bad_store_url_is_named_without_its_password() {
        for bad in [
            "mysql://app:s3cret@db/tapgate",
            "app:s3cret@db",
            "postgres://app:s3cret@db:notaport/tapgate",
            "postgres://app:s3cret@db/tapgate?sslmode=bogus",
        ] {
            let err = sources(None, &[&format!("store.url={bad}")])
                .load()
                .unwrap_err()
                .to_string();
            assert!(err.contains("store.url"), "{bad}: {err}");
            assert!(!err.contains("s3cret"), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let f = file("[store]\nbackend = \"sqlite\"\nbakend = \"x\"\n");
        let err = sources(Some(f.path()), &[]).load().unwrap_err().to_string();
        assert!(err.contains("bakend"), "{err}");
    }

    #[test]
    fn bad_value_names_key_and_expectation() {
        let err = sources(None, &["store.backend=postgresql"])
            .load()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("store.backend") && err.contains("sqlite"),
            "{err}"
        );
        let err = sources(None, &["log.filter=[[["])
            .load()
            .unwrap_err()
            .to_string();
        assert!(err.contains("log.filter"), "{err}");
        let err = sources(None, &["nonsense"]).load().unwrap_err();
        assert!(matches!(err, ConfigError::BadOverride(_)));
    }

    #[test]
    fn nodes_section_and_path_expansion() {
        let f = file(
            "[nodes.alice.lnd]\nendpoint = \"127.0.0.1:10001\"\ntls_cert_path = \"${HOME}/x/tls.cert\"\nmacaroon_path = \"~/m\"\n\
             [nodes.alice.tapd]\nendpoint = \"127.0.0.1:8443\"\ntls_cert_path = \"/a\"\nmacaroon_path = \"/b\"\ntimeout_secs = 5\n",
        );
        let s = sources(Some(f.path()), &[]).load().unwrap();
        let alice = &s.nodes["alice"];
        assert_eq!(alice.lnd.timeout_secs, 60);
        assert_eq!(alice.tapd.timeout_secs, 5);
        let home = std::env::var("HOME").unwrap();
        assert_eq!(
            expand_path("k", &alice.lnd.tls_cert_path).unwrap(),
            PathBuf::from(format!("{home}/x/tls.cert"))
        );
        assert_eq!(
            expand_path("k", "~/m").unwrap(),
            PathBuf::from(format!("{home}/m"))
        );
        let err = expand_path("nodes.x", "${TAPGATE_TEST_SURELY_UNSET}/a").unwrap_err();
        assert!(
            err.to_string().contains("TAPGATE_TEST_SURELY_UNSET"),
            "{err}"
        );
        let bad = file("[nodes.alice.lnd]\nendpoint = \"x\"\n");
        let err = sources(Some(bad.path()), &[])
            .load()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tls_cert_path") || err.contains("missing"),
            "{err}"
        );
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = sources(Some(Path::new("/nonexistent/tapgate.toml")), &[])
            .load()
            .unwrap_err();
        assert!(matches!(err, ConfigError::MissingFile(_)));
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type
    fn environment_layer_sits_between_file_and_cli() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("t.toml", "[l402]\nlocation = \"file\"\n")?;
            jail.set_env("TAPGATE_L402__LOCATION", "env");
            jail.set_env("TAPGATE_POLAR_ALICE_HOST", "ignored");
            jail.set_env("TAPGATE_REGTEST_NETWORK", "/ignored/network.toml");
            jail.set_env("TAPGATE_SIMNET_DIR", "/ignored");
            jail.set_env("TAPGATE_TEST_POSTGRES_URL", "postgres://ignored");
            let mut src = sources(Some(Path::new("t.toml")), &[]);
            src.env = true;
            assert_eq!(src.load().unwrap().l402.location, "env");
            src.overrides = vec!["l402.location=cli".into()];
            assert_eq!(src.load().unwrap().l402.location, "cli");
            jail.set_env("TAPGATE_STOER__BACKEND", "memory");
            let err = src.load().unwrap_err().to_string();
            assert!(err.contains("stoer"), "{err}");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type
    fn shipped_polar_config_names_four_litd_nodes() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/polar.toml");
        figment::Jail::expect_with(|jail| {
            jail.set_env("TAPGATE_POLAR_NETWORK_DIR", "/polar/net");
            let asset_id = format!("network.asset_id={}", "00".repeat(32));
            let s = sources(Some(&path), &[&asset_id]).load().unwrap();
            assert_eq!(
                s.nodes.keys().collect::<Vec<_>>(),
                ["alice", "bob", "edge", "merchant"]
            );
            let m = &s.nodes["merchant"];
            assert_eq!(
                expand_path("k", &m.tapd.macaroon_path).unwrap(),
                PathBuf::from("/polar/net/volumes/litd/merchant/tapd/data/regtest/admin.macaroon")
            );
            assert!(m.tapd.tls_cert_path.ends_with("/lit/tls.cert"));
            Ok(())
        });
    }

    #[test]
    fn shipped_config_file_is_valid_and_matches_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_FILE);
        let s = sources(Some(&path), &[]).load().unwrap();
        assert_eq!(s, Settings::default());
    }
}
