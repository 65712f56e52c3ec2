//! `[[services]]` (what the gateway sells) and `[gateway]` (where it listens): their types,
//! defaults and the checks that refuse a bad catalogue at start, naming the key.
//!
//! Services are an array of tables, not `[services.<name>]` tables, because their order is
//! meaningful (the first service whose host and path match a request sells it) and figment
//! keeps tables in sorted maps, which would lose the order of the file. The price of that
//! choice: one service cannot be changed with `--set` or `TAPGATE_*`; change the file.
//!
//! Values that can be judged alone (a price, an upstream URL, a path pattern) are parsed while
//! the layers are read, so their errors name the layer too; what needs the whole catalogue (a
//! duplicate name, a pattern an earlier service hides, `asset = "default"` without a network
//! asset) is checked by [`validate`]. Keys in errors are figment's: `services.2.price_usd` is
//! the third service's price.
//!
//! This module must not connect to anything or read the clock; matching a request to a service
//! is [`crate::gateway::matching`], and what a service's price is in sats or units at a given
//! moment is the mint's and the pricing module's business.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{ConfigError, NetworkSettings, check_asset_id, check_pubkey};
use crate::gateway::matching::{PathPattern, host_matches};
use crate::l402::caveat::Caveat;

/// Decimal places a price may have: the USD stablecoin's decimal display, so one asset unit is
/// $0.000001 and every price is a whole number of units (tapd cannot move a fraction of one).
/// Sats are finer than that at any plausible BTC price, so sats services obey the same rule.
pub const PRICE_DECIMALS: u8 = 6;

/// A token's life when `token_lifetime_secs` is not set: one day. A token is a bearer
/// credential, so its life bounds what a leaked one is worth; a day still lets an agent pay
/// once and reuse the token through a working day.
pub const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 86_400;

/// Shortest `token_lifetime_secs`: the agent must be able to pay the invoice (an asset payment
/// waits for an RFQ quote) and then make its call before the token dies.
pub const MIN_TOKEN_LIFETIME_SECS: u64 = 60;

/// Longest `token_lifetime_secs`: a year. Root keys stay in the store for the token's life.
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 365 * 86_400;

/// Methods sold when `methods` is not set: a priced read (GET) and a priced computation
/// (POST). Methods that change the seller's data (PUT, PATCH, DELETE) must be listed on
/// purpose, so an upstream's write API is never sold by accident.
pub const DEFAULT_METHODS: [&str; 2] = ["GET", "POST"];

/// The methods `methods` may list (RFC 9110's, without CONNECT and TRACE, which a gateway
/// must not forward). Anything else is more likely a typo than an extension method.
pub const KNOWN_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// How long the gateway waits for a TCP connection to a service's upstream when
/// `connect_timeout_ms` is not set: two seconds. An upstream beside the gateway connects in
/// well under a millisecond, so a connection that takes longer means a host that is down or
/// unroutable; failing then lets the buyer, who may have just paid, see a 502 soon instead of
/// a hung request. Two seconds still covers one lost SYN (Linux retransmits it after one).
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 2_000;

/// Longest `connect_timeout_ms`: a minute. Longer is past any client's patience and past the
/// point where the kernel itself gives up retransmitting, so it is more likely a slip (seconds
/// written as milliseconds the other way round) than a wish.
pub const MAX_CONNECT_TIMEOUT_MS: u64 = 60_000;

/// How long the gateway waits for a service's upstream to send its response headers when
/// `timeout_secs` is not set: thirty seconds, counted from when the request is sent. Most APIs
/// answer in well under a second; a slow computation (a model's answer) should set more. The
/// bound exists so a hung upstream frees the buyer and the connection with a 504. Bodies are
/// not timed: a streamed answer may take as long as it streams.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// Longest `timeout_secs`: an hour. A call that needs longer to start answering should be an
/// asynchronous job the buyer polls, not a request held open.
pub const MAX_TIMEOUT_SECS: u64 = 3_600;

/// Where the gateway listens when `gateway.listen` is not set: loopback, so a fresh install
/// sells nothing to the network until a TLS-terminating proxy (or the operator) puts it there;
/// port 8402 after HTTP's 402 Payment Required.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8402);

/// Where the admin API listens when `gateway.admin_listen` is not set: loopback, the port
/// next to the gateway's. It revokes tokens and reads balances, so it stays off the network.
pub const DEFAULT_ADMIN_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8403);

/// The `asset` value that means the network's stablecoin (`network.asset_id`).
pub const DEFAULT_ASSET: &str = "default";

/// Most tiers a service may have: a token's `services` caveat carries the tier as 0-255, and
/// tier 0 is the service's base price.
pub const MAX_TIERS: usize = 255;

/// `[gateway]`: the sockets the gateway and its admin API listen on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// The paid API (`host:port`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The admin API (`host:port`).
    #[serde(default = "default_admin_listen")]
    pub admin_listen: SocketAddr,
    /// The node that sells (its lnd makes the invoices, its tapd the asset invoices): a name
    /// from `[nodes.*]` or the network file; none: `merchant` if there is one, else the only
    /// node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Honour a token only once its invoice is seen settled (the settlement stream, or one
    /// direct lookup). Off: a valid preimage is proof enough, as in Aperture.
    #[serde(default = "default_true")]
    pub strict_settlement: bool,
    /// A fixed rate, dollars per bitcoin, instead of the edge's RFQ quotes (tests and demos).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usd_per_btc: Option<UsdAmount>,
    /// Longest wait for in-flight requests at shutdown, seconds.
    #[serde(default = "default_drain_secs")]
    pub drain_secs: u64,
    /// Where sats prices get their rate when `usd_per_btc` is not set.
    #[serde(default)]
    pub rate_source: RateSourceSetting,
    /// Threads serving the paid API, each with its own runtime, listening socket and upstream
    /// connections (0: one per CPU).
    #[serde(default)]
    pub workers: usize,
    /// This gateway's name among replicas, the `replica` label of every metric; none:
    /// `<host name>:<listen port>` (see [`GatewaySettings::replica_name`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
}

/// The most `gateway.workers` accepts: far above any core count this runs on, low enough that a
/// typo does not start thousands of threads.
pub const MAX_WORKERS: usize = 256;

impl GatewaySettings {
    /// The replica's name: `replica`, or this machine's host name (`/proc/sys/kernel/hostname`,
    /// else `$HOSTNAME`, else `tapgate`) and the paid API's port.
    pub fn replica_name(&self) -> String {
        if let Some(r) = &self.replica {
            return r.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| "tapgate".to_owned());
        format!("{host}:{}", self.listen.port())
    }

    /// The number of serving threads: `workers`, or one per CPU when it is 0.
    pub fn worker_threads(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    }
}

/// `gateway.rate_source`: where the rate that prices a sats invoice comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateSourceSetting {
    /// The edge's RFQ buy quotes through the seller's tapd (the default: the same rate an
    /// asset payment would get).
    #[default]
    Edge,
    /// The network's `priceoraclerpc` oracle directly (its `SALE` side, which prices the edge's
    /// answer to a buy order).
    Oracle,
}

fn default_true() -> bool {
    true
}

/// How long shutdown waits for in-flight requests by default: long enough for a normal API
/// call, short enough that a service manager's stop does not hang.
pub const DEFAULT_DRAIN_SECS: u64 = 10;

fn default_drain_secs() -> u64 {
    DEFAULT_DRAIN_SECS
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
}

fn default_admin_listen() -> SocketAddr {
    DEFAULT_ADMIN_LISTEN
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            admin_listen: DEFAULT_ADMIN_LISTEN,
            node: None,
            strict_settlement: true,
            usd_per_btc: None,
            drain_secs: DEFAULT_DRAIN_SECS,
            rate_source: RateSourceSetting::Edge,
            workers: 0,
            replica: None,
        }
    }
}

/// One `[[services]]` entry: an upstream API sold at a price in dollars.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Written into tokens (`services=<name>:<tier>`): 1 to 64 letters, digits, `_`, `-`, `.`;
    /// unique.
    pub name: String,
    /// Only requests for this host (the `Host` header, compared without case or port); none:
    /// any host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Path patterns this service sells (see [`crate::gateway::matching`]); at least one.
    pub paths: Vec<PathPattern>,
    /// Where matched requests go.
    pub upstream: Upstream,
    /// Milliseconds to wait for a connection to `upstream` before answering 504
    /// (default [`DEFAULT_CONNECT_TIMEOUT_MS`]). In milliseconds because the useful values are
    /// a few hundred to a few thousand.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Seconds to wait for `upstream`'s response headers before answering 504
    /// (default [`DEFAULT_TIMEOUT_SECS`]); the body that follows is not timed.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The price of a token, in dollars, as a string.
    pub price_usd: UsdAmount,
    /// What the buyer pays in: sats, or a Taproot Asset through an edge node.
    pub settlement: Settlement,
    /// How long a token is valid after it is minted.
    #[serde(default = "default_token_lifetime_secs")]
    pub token_lifetime_secs: u64,
    /// HTTP methods sold; others are refused before any payment is asked for.
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    /// Patterns among `paths` that need no payment (a health check, the API's documentation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub free_paths: Vec<PathPattern>,
    /// Calls each client may make before paying; none: every call pays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_calls_per_client: Option<u32>,
    /// Tiers above the base tier (tier 0), in order: `tiers[0]` is tier 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Tier>,
    /// What to do when an asset-settled price is below what one asset HTLC can carry.
    #[serde(default)]
    pub small_price: SmallPrice,
    /// With `small_price = "prepaid"`: the balance bought at once, spent call by call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepaid_usd: Option<UsdAmount>,
}

fn default_token_lifetime_secs() -> u64 {
    DEFAULT_TOKEN_LIFETIME_SECS
}

fn default_connect_timeout_ms() -> u64 {
    DEFAULT_CONNECT_TIMEOUT_MS
}

fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

fn default_methods() -> Vec<String> {
    DEFAULT_METHODS.iter().map(|m| m.to_string()).collect()
}

/// A tier above the base: the paths that need it and the capabilities it grants.
///
/// A request whose path matches a tier's `paths` needs a token of that tier or higher (tiers
/// are ordered: `tiers[0]` is tier 1, and a higher tier grants everything a lower one does).
/// `capabilities` are written into the token as `<service>_capabilities=a,b` for the upstream
/// to read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Unique within the service; same characters as a service name.
    pub name: String,
    /// Patterns (among the service's `paths`) that need this tier.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<PathPattern>,
    /// Capability names the tier grants (letters, digits, `_`, `-`, `.`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// The tier's price; none: the service's `price_usd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_usd: Option<UsdAmount>,
}

/// What a service is paid in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// `settlement = "sats"`: a plain Lightning invoice for the price in sats.
    Sats,
    /// `settlement = { asset = "…", edge_peer = "…" }`: an asset invoice through the edge.
    Asset(AssetSettlement),
}

/// An asset settlement: which asset, and which edge node quotes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetSettlement {
    /// The asset id (64 hex), group key (66 hex), or `"default"` for `network.asset_id`.
    pub asset: String,
    /// The edge node's public key (66 hex), the RFQ peer; none: `network.edge_pubkey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_peer: Option<String>,
}

const SETTLEMENT_EXPECTED: &str = "\"sats\" or a table { asset = \"<64 hex asset id, 66 hex group key, or default>\", edge_peer = \"<66 hex public key>\" }";

impl Serialize for Settlement {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Settlement::Sats => s.serialize_str("sats"),
            Settlement::Asset(a) => a.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Settlement {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Settlement;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(SETTLEMENT_EXPECTED)
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Settlement, E> {
                match v {
                    "sats" => Ok(Settlement::Sats),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Settlement, A::Error> {
                AssetSettlement::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(Settlement::Asset)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Below the asset HTLC minimum (354 sat in dollars at the quoted rate, about $0.35), tapd
/// refuses the asset invoice; this says what the gateway does instead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmallPrice {
    /// Ask for the exact price in sats (a buyer holding only the stablecoin cannot pay it).
    /// The default, because it charges exactly the price and needs no balance kept.
    #[default]
    SatsInvoice,
    /// Sell `prepaid_usd` worth of calls in one asset invoice and spend it call by call.
    Prepaid,
}

/// A positive dollar amount with at most [`PRICE_DECIMALS`] places, written as a string: a
/// TOML float such as `0.1` is not exact in binary, so it is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UsdAmount(Decimal);

impl UsdAmount {
    /// Parses `"0.02"`: a decimal string, more than zero, at most six places.
    pub fn parse(raw: &str) -> Result<Self, String> {
        // Digits and one point only: rust_decimal would also take `1e3`, `+1` and `-1`, none of
        // which is how a price is written.
        let plain = raw.bytes().any(|b| b.is_ascii_digit())
            && raw.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        let parsed = if plain {
            Decimal::from_str(raw).ok()
        } else {
            None
        };
        let usd = parsed.ok_or_else(|| {
            format!("{raw:?} is not a dollar amount; write it as a decimal string such as \"0.02\"")
        })?;
        match crate::pricing::usd_to_units(usd, PRICE_DECIMALS) {
            Err(e) => Err(format!("{raw:?}: {e}")),
            Ok(0) => Err(format!(
                "{raw:?} is not more than $0; a free path belongs in free_paths"
            )),
            Ok(_) => Ok(Self(usd)),
        }
    }

    /// The amount in dollars.
    pub fn usd(&self) -> Decimal {
        self.0
    }
}

impl fmt::Display for UsdAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl TryFrom<String> for UsdAmount {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<UsdAmount> for String {
    fn from(usd: UsdAmount) -> Self {
        usd.0.to_string()
    }
}

/// The upstream's URL scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamScheme {
    /// HTTP/1.1 or HTTP/2 without TLS.
    Http,
    /// With TLS.
    Https,
    /// A gRPC server (HTTP/2); every call is a POST.
    Grpc,
}

/// An upstream URL: `http`, `https` or `grpc`, a host, an optional port and base path. No
/// credentials, query or fragment.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Upstream {
    /// As written.
    raw: String,
    scheme: UpstreamScheme,
    /// Without brackets for IPv6.
    host: String,
    port: Option<u16>,
    /// `host[:port]` as a URI authority (IPv6 in brackets), for every request's target.
    authority: String,
}

impl Upstream {
    /// Parses and checks an upstream URL.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (scheme, rest) = raw.split_once("://").ok_or_else(|| {
            format!(
                "{raw:?} is not a URL; write scheme://host:port, e.g. \"http://127.0.0.1:9000\""
            )
        })?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => UpstreamScheme::Http,
            "https" => UpstreamScheme::Https,
            "grpc" => UpstreamScheme::Grpc,
            other => {
                return Err(format!(
                    "{raw:?} has scheme {other:?}; the upstream must be http, https or grpc"
                ));
            }
        };
        if rest.contains(['?', '#']) {
            return Err(format!(
                "{raw:?} has a query or fragment; the upstream is a base URL (scheme, host, port, path)"
            ));
        }
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.contains('@') {
            return Err(format!(
                "{raw:?} carries credentials; `config check` prints the upstream and logs name it, so put no secret in it"
            ));
        }
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| format!("{raw:?} has no valid host[:port] after {scheme:?}://"))?;
        if host.is_empty() {
            return Err(format!("{raw:?} has no host"));
        }
        if scheme == UpstreamScheme::Grpc && port.is_none() {
            return Err(format!(
                "{raw:?} has no port; gRPC has no default port, so write grpc://host:port"
            ));
        }
        let authority = match (host.contains(':'), port) {
            (true, Some(port)) => format!("[{host}]:{port}"),
            (true, None) => format!("[{host}]"),
            (false, Some(port)) => format!("{host}:{port}"),
            (false, None) => host.to_owned(),
        };
        Ok(Self {
            raw: raw.to_owned(),
            scheme,
            host: host.to_owned(),
            port,
            authority,
        })
    }

    /// `host[:port]` as a URI authority: IPv6 hosts in brackets, the port only if written.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Its scheme.
    pub fn scheme(&self) -> UpstreamScheme {
        self.scheme
    }

    /// Its host (an IPv6 address without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Its port, if written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; `None` when the port is not 1-65535 or the host
/// has characters no host name or address has.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6.split_once(']')?;
        addr.parse::<std::net::Ipv6Addr>().ok()?;
        match after {
            "" => (addr, None),
            p => (addr, Some(p.strip_prefix(':')?)),
        }
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        {
            return None;
        }
        (host, port)
    };
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p != 0)?),
    };
    Some((host, port))
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Upstream({:?})", self.raw)
    }
}

impl TryFrom<String> for Upstream {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<Upstream> for String {
    fn from(u: Upstream) -> Self {
        u.raw
    }
}

fn value(key: String, reason: impl Into<String>) -> ConfigError {
    ConfigError::Value {
        key,
        reason: reason.into(),
    }
}

/// A name a caveat can carry: what the `services` caveat accepts as a service name.
fn caveat_name(name: &str) -> bool {
    Caveat::parse(&format!("services={name}:0")).is_ok()
}

const NAME_RULE: &str = "1 to 64 letters, digits, _, - or . (tokens carry it in a caveat)";

/// Checks `[gateway]`.
pub(super) fn validate_gateway(g: &GatewaySettings) -> Result<(), ConfigError> {
    if g.listen == g.admin_listen && g.listen.port() != 0 {
        return Err(value(
            "gateway.admin_listen".into(),
            format!(
                "{} is also gateway.listen; give the admin API its own port (default {DEFAULT_ADMIN_LISTEN})",
                g.admin_listen
            ),
        ));
    }
    if g.drain_secs == 0 || g.drain_secs > 3600 {
        return Err(value(
            "gateway.drain_secs".into(),
            format!("{} is outside 1 to 3600 seconds", g.drain_secs),
        ));
    }
    if let Some(r) = &g.replica
        && (r.is_empty() || r.len() > 128 || r.chars().any(char::is_control))
    {
        return Err(value(
            "gateway.replica".into(),
            format!(
                "{r:?} is not 1 to 128 characters without control characters; name the replica, e.g. \"gw-1\", or leave it out"
            ),
        ));
    }
    if g.workers > MAX_WORKERS {
        return Err(value(
            "gateway.workers".into(),
            format!(
                "{} is more than {MAX_WORKERS}; use 0 (one per CPU) or the number of cores to use",
                g.workers
            ),
        ));
    }
    Ok(())
}

/// Checks the catalogue as a whole: each service against the network settings and against the
/// services before it.
pub(super) fn validate(services: &[Service], network: &NetworkSettings) -> Result<(), ConfigError> {
    for (i, s) in services.iter().enumerate() {
        let key = |k: &str| format!("services.{i}.{k}");
        let earlier = &services[..i];
        if !caveat_name(&s.name) {
            return Err(value(
                key("name"),
                format!("{:?} is not {NAME_RULE}", s.name),
            ));
        }
        if let Some(j) = earlier.iter().position(|e| e.name == s.name) {
            return Err(value(
                key("name"),
                format!(
                    "{:?} is also services.{j}'s name; names must be unique (tokens name the service)",
                    s.name
                ),
            ));
        }
        let svc = format!("service {:?}", s.name);
        if let Some(host) = &s.host
            && (host.is_empty() || split_host_port(host).is_none_or(|(_, port)| port.is_some()))
        {
            return Err(value(
                key("host"),
                format!(
                    "{host:?} is not a host name without a port, e.g. \"api.example.com\" ({svc})"
                ),
            ));
        }
        if s.paths.is_empty() {
            return Err(value(
                key("paths"),
                format!("is empty; list what {svc} sells, e.g. [\"/api/*\"]"),
            ));
        }
        for (k, p) in s.paths.iter().enumerate() {
            reachable(earlier, s, p, || key(&format!("paths.{k}")))?;
        }
        validate_settlement(s, network, &key)?;
        if !(MIN_TOKEN_LIFETIME_SECS..=MAX_TOKEN_LIFETIME_SECS).contains(&s.token_lifetime_secs) {
            return Err(value(
                key("token_lifetime_secs"),
                format!(
                    "{} is outside {MIN_TOKEN_LIFETIME_SECS} to {MAX_TOKEN_LIFETIME_SECS} seconds (default {DEFAULT_TOKEN_LIFETIME_SECS}, a day)",
                    s.token_lifetime_secs
                ),
            ));
        }
        validate_upstream(s, &key)?;
        validate_methods(s, &key)?;
        for (k, p) in s.free_paths.iter().enumerate() {
            within_service(earlier, s, p, || key(&format!("free_paths.{k}")))?;
        }
        if s.free_calls_per_client == Some(0) {
            return Err(value(
                key("free_calls_per_client"),
                "0 grants no free call; leave the key out for none",
            ));
        }
        validate_tiers(earlier, s, &key)?;
        validate_small_price(s, &key)?;
    }
    Ok(())
}

/// `pattern` (one of `s`'s) can match: no earlier service that sees the same hosts has a
/// pattern matching everything it does.
fn reachable(
    earlier: &[Service],
    s: &Service,
    pattern: &PathPattern,
    key: impl Fn() -> String,
) -> Result<(), ConfigError> {
    for (j, e) in earlier.iter().enumerate() {
        // An earlier service sees every request `s` would if its host accepts `s`'s host (or
        // it has none), which is the request-time rule with `s`'s host as the request's.
        if !host_matches(e.host.as_deref(), s.host.as_deref()) {
            continue;
        }
        if let Some(q) = e.paths.iter().find(|q| q.covers(pattern)) {
            return Err(value(
                key(),
                format!(
                    "{:?} never matches: services.{j} ({:?}) comes first and its {:?} matches every path it does; list service {:?} before it",
                    pattern.as_str(),
                    e.name,
                    q.as_str(),
                    s.name
                ),
            ));
        }
    }
    Ok(())
}

/// A free or tier pattern: reachable, and inside one of the service's own `paths`.
fn within_service(
    earlier: &[Service],
    s: &Service,
    pattern: &PathPattern,
    key: impl Fn() -> String,
) -> Result<(), ConfigError> {
    if !s.paths.iter().any(|p| p.covers(pattern)) {
        return Err(value(
            key(),
            format!(
                "{:?} never matches: no pattern in service {:?}'s paths covers it; add it to paths or narrow it",
                pattern.as_str(),
                s.name
            ),
        ));
    }
    reachable(earlier, s, pattern, key)
}

fn validate_settlement(
    s: &Service,
    network: &NetworkSettings,
    key: &impl Fn(&str) -> String,
) -> Result<(), ConfigError> {
    let Settlement::Asset(a) = &s.settlement else {
        return Ok(());
    };
    let from_file = network.file.is_some();
    if a.asset == DEFAULT_ASSET {
        if network.asset_id.is_none() && !from_file {
            return Err(value(
                key("settlement.asset"),
                "is \"default\" but network.asset_id is not set (nor network.file); set network.asset_id or name the asset here",
            ));
        }
    } else {
        check_asset_id(&a.asset).map_err(|reason| value(key("settlement.asset"), reason))?;
    }
    match &a.edge_peer {
        Some(peer) => {
            check_pubkey(peer).map_err(|reason| value(key("settlement.edge_peer"), reason))
        }
        None if network.edge_pubkey.is_none() && !from_file => Err(value(
            key("settlement.edge_peer"),
            "is not set and neither is network.edge_pubkey (nor network.file); name the edge node that quotes the asset",
        )),
        None => Ok(()),
    }
}

fn validate_upstream(s: &Service, key: &impl Fn(&str) -> String) -> Result<(), ConfigError> {
    if s.upstream.scheme() == UpstreamScheme::Https {
        return Err(value(
            key("upstream"),
            format!(
                "{:?}: https upstreams are not supported yet (the gateway has no TLS client); reach the upstream over http:// on a private network or loopback, or put a TLS-originating proxy beside the gateway",
                s.upstream.as_str()
            ),
        ));
    }
    let between = |k: &str, got: u64, max: u64, default: u64, unit: &str| {
        if (1..=max).contains(&got) {
            Ok(())
        } else {
            Err(value(
                key(k),
                format!(
                    "{got} is outside 1 to {max} {unit} (default {default}); leave the key out for the default"
                ),
            ))
        }
    };
    between(
        "connect_timeout_ms",
        s.connect_timeout_ms,
        MAX_CONNECT_TIMEOUT_MS,
        DEFAULT_CONNECT_TIMEOUT_MS,
        "milliseconds",
    )?;
    between(
        "timeout_secs",
        s.timeout_secs,
        MAX_TIMEOUT_SECS,
        DEFAULT_TIMEOUT_SECS,
        "seconds",
    )
}

fn validate_methods(s: &Service, key: &impl Fn(&str) -> String) -> Result<(), ConfigError> {
    if s.methods.is_empty() {
        return Err(value(
            key("methods"),
            format!("is empty, so nothing is sold; leave it out for {DEFAULT_METHODS:?}"),
        ));
    }
    for (k, m) in s.methods.iter().enumerate() {
        if !KNOWN_METHODS.contains(&m.as_str()) {
            return Err(value(
                key(&format!("methods.{k}")),
                format!("{m:?} is not one of {KNOWN_METHODS:?} (upper case)"),
            ));
        }
        if s.methods[..k].contains(m) {
            return Err(value(
                key(&format!("methods.{k}")),
                format!("{m:?} is listed twice"),
            ));
        }
    }
    if s.upstream.scheme() == UpstreamScheme::Grpc && !s.methods.iter().any(|m| m == "POST") {
        return Err(value(
            key("methods"),
            "lacks POST, and every gRPC call is a POST; add \"POST\" or use an http(s) upstream",
        ));
    }
    Ok(())
}

fn validate_tiers(
    earlier: &[Service],
    s: &Service,
    key: &impl Fn(&str) -> String,
) -> Result<(), ConfigError> {
    if s.tiers.len() > MAX_TIERS {
        return Err(value(
            key("tiers"),
            format!(
                "has {} tiers; at most {MAX_TIERS} fit in a token",
                s.tiers.len()
            ),
        ));
    }
    for (t, tier) in s.tiers.iter().enumerate() {
        let tkey = |k: &str| key(&format!("tiers.{t}.{k}"));
        if !caveat_name(&tier.name) {
            return Err(value(
                tkey("name"),
                format!("{:?} is not {NAME_RULE}", tier.name),
            ));
        }
        if let Some(u) = s.tiers[..t].iter().position(|u| u.name == tier.name) {
            return Err(value(
                tkey("name"),
                format!(
                    "{:?} is also tiers.{u}'s name; tier names must be unique",
                    tier.name
                ),
            ));
        }
        if tier.paths.is_empty() && tier.capabilities.is_empty() {
            return Err(value(
                key(&format!("tiers.{t}")),
                format!(
                    "tier {:?} lists neither paths nor capabilities, so it grants nothing",
                    tier.name
                ),
            ));
        }
        for (k, p) in tier.paths.iter().enumerate() {
            within_service(earlier, s, p, || tkey(&format!("paths.{k}")))?;
        }
        for (k, c) in tier.capabilities.iter().enumerate() {
            if !caveat_name(c) {
                return Err(value(
                    tkey(&format!("capabilities.{k}")),
                    format!("{c:?} is not {NAME_RULE}"),
                ));
            }
        }
    }
    Ok(())
}

fn validate_small_price(s: &Service, key: &impl Fn(&str) -> String) -> Result<(), ConfigError> {
    match (s.small_price, &s.prepaid_usd) {
        (SmallPrice::Prepaid, _) if s.settlement == Settlement::Sats => Err(value(
            key("small_price"),
            "\"prepaid\" applies to asset settlement, whose HTLCs cannot carry small amounts; a sats invoice carries any price, so remove it",
        )),
        (SmallPrice::Prepaid, None) => Err(value(
            key("prepaid_usd"),
            "is needed with small_price = \"prepaid\": the balance sold at once, e.g. \"1.00\"",
        )),
        (SmallPrice::Prepaid, Some(prepaid)) if *prepaid < s.price_usd => Err(value(
            key("prepaid_usd"),
            format!(
                "${prepaid} does not pay for one call at price_usd ${}",
                s.price_usd
            ),
        )),
        (SmallPrice::SatsInvoice, Some(_)) => Err(value(
            key("prepaid_usd"),
            "applies only with small_price = \"prepaid\"; remove it or set small_price = \"prepaid\"",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
impl Service {
    /// A valid sats service selling `/<name>/*`, for tests.
    pub(crate) fn example(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            host: None,
            paths: vec![
                PathPattern::parse(&format!("/{name}/*")).unwrap_or_else(|e| panic!("{e}")),
            ],
            upstream: Upstream::parse("http://127.0.0.1:9000").unwrap_or_else(|e| panic!("{e}")),
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            price_usd: UsdAmount::parse("0.01").unwrap_or_else(|e| panic!("{e}")),
            settlement: Settlement::Sats,
            token_lifetime_secs: DEFAULT_TOKEN_LIFETIME_SECS,
            methods: default_methods(),
            free_paths: Vec::new(),
            free_calls_per_client: None,
            tiers: Vec::new(),
            small_price: SmallPrice::SatsInvoice,
            prepaid_usd: None,
        }
    }
}

#[cfg(test)]
mod tests;
