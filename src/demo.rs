//! `tapgate demo`'s scenario, over any network a `network.toml` describes (a simnet, or the real
//! regtest network): the gateway in-process in front of the built-in sample API, selling three
//! services priced in dollars, and three buyers.
//!
//! | who | service | how |
//! |---|---|---|
//! | alice | `time`, $0.50 a token in the stablecoin | pays an asset invoice over her asset channel |
//! | alice | `echo`, $0.002 a call from a prepaid $1.00 of the stablecoin | buys the balance, makes one call |
//! | bob | `weather`, $0.01 a token in sats | pays a sats invoice |
//! | alice's sub-agent | `echo` | alice attenuates her `echo` token with `echo_budget_usd=0.005` and hands it over; its calls pass until the gateway refuses the budget (`over_budget`) |
//!
//! Each purchase is timed in its three steps (the `402` challenge, the payment, the paid
//! call), and what the seller (`merchant`) received is read from its node: the units its
//! asset balance gained, or what its sats invoice was paid. Payments go through the client library (`client::http::L402Client`, reserving in
//! its SQLite ledger first); attenuation through `l402`.
//!
//! This module owns the scenario and its [`Report`]; it does not print (the command does), and
//! it must not import `simnet`: the command starts one when no network file is given. Tokens
//! and preimages never leave it; the report carries token ids only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use rust_decimal::Decimal;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::app::gateway::{Built, build};
use crate::app::{BuildError, NetworkAddresses, Node};
use crate::client::budget::Budget;
use crate::client::challenge::ChallengeError;
use crate::client::http::{ClientError, Exchange, L402Client, Outgoing};
use crate::client::ledger::{CachedToken, ClientLedger, FILE_NAME, LedgerError};
use crate::client::payer::Holdings;
use crate::clock::SystemClock;
use crate::config::{ConfigError, Sources};
use crate::gateway::response::BALANCE;
use crate::l402::caveat::{self, CaveatError};
use crate::l402::{Identifier, Macaroon, MacaroonError};
use crate::lightning::error::BackendError;
use crate::lightning::tapd::TapdNode;
use crate::lightning::traits::{Invoices, Rates};
use crate::lightning::types::AssetRef;
use crate::shutdown::Shutdown;
use crate::store::Rail;

/// The sub-agent's budget on `echo`, dollars: room for a couple of $0.002 calls, so the
/// refusal comes quickly.
pub const SUB_AGENT_BUDGET_USD: &str = "0.005";
/// The most calls the sub-agent makes; the budget refuses one well before this.
const SUB_AGENT_MAX_CALLS: usize = 10;
/// The routing fee allowance each payer asks for, msat.
const MAX_FEE_MSAT: u64 = 10_000;

/// The catalogue the demo sells, on the sample upstream at `upstream`: one service per way of
/// paying. Asset invoices must carry at least 354 sat (about $0.35 at $100,000 a bitcoin), so
/// the per-call stablecoin service is priced above that and the sub-cent one is sold as a
/// prepaid balance.
pub fn catalogue(upstream: SocketAddr) -> String {
    format!(
        r#"
# $0.50 a token, settled in the USD stablecoin: one asset invoice per token.
[[services]]
name = "time"
paths = ["/v1/time"]
upstream = "http://{upstream}"
price_usd = "0.50"
settlement = {{ asset = "default" }}
methods = ["GET"]

# $0.002 a call, below what an asset HTLC carries: sold as a prepaid $1.00 of the stablecoin.
[[services]]
name = "echo"
paths = ["/v1/echo"]
upstream = "http://{upstream}"
price_usd = "0.002"
settlement = {{ asset = "default" }}
methods = ["POST"]
small_price = "prepaid"
prepaid_usd = "1.00"

# One cent a token, settled in sats: a plain Lightning invoice.
[[services]]
name = "weather"
paths = ["/v1/weather"]
upstream = "http://{upstream}"
price_usd = "0.01"
settlement = "sats"
methods = ["GET"]
"#
    )
}

/// Why the demo could not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A socket or file of the demo's own.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The demo's settings do not load.
    #[error("the demo's gateway settings are refused: {0}")]
    Config(#[from] ConfigError),
    /// The gateway or a node could not be set up from the network file.
    #[error("cannot set up the demo's gateway or nodes: {0}")]
    Build(#[from] BuildError),
    /// The network file names no stablecoin or edge node.
    #[error(
        "the network file names no {0}; the demo needs a network with a USD stablecoin and an edge node (simnet's or integration/regtest's)"
    )]
    Incomplete(&'static str),
    /// A node call failed.
    #[error("{node}'s node failed: {source}; is the network still running?")]
    Node {
        /// Which node.
        node: &'static str,
        /// Why.
        #[source]
        source: BackendError,
    },
    /// A client's ledger could not be opened.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A request or payment failed.
    #[error("{who} on {service}: {source}")]
    Client {
        /// The buyer.
        who: &'static str,
        /// The service.
        service: &'static str,
        /// Why (boxed: a client error is large, and this one ends the run).
        #[source]
        source: Box<ClientError>,
    },
    /// The gateway answered a step with something else than the scenario expects.
    #[error(
        "{who} on {service}: expected {expected}, the gateway answered {status}{}; run with RUST_LOG=tapgate=debug to see why",
        code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
    )]
    Unexpected {
        /// The buyer.
        who: &'static str,
        /// The service.
        service: &'static str,
        /// What the scenario expects.
        expected: &'static str,
        /// The status.
        status: u16,
        /// The body's `error.code`, when there is one.
        code: Option<String>,
    },
    /// alice's token could not be attenuated.
    #[error("cannot attenuate alice's token for the sub-agent: {0}")]
    Attenuate(String),
}

impl From<MacaroonError> for DemoError {
    fn from(e: MacaroonError) -> Self {
        Self::Attenuate(e.to_string())
    }
}

impl From<CaveatError> for DemoError {
    fn from(e: CaveatError) -> Self {
        Self::Attenuate(e.to_string())
    }
}

/// Where the demo runs.
#[derive(Clone, Debug)]
pub struct Demo {
    /// The network's `network.toml`.
    pub network_file: PathBuf,
    /// A directory of the demo's own: the gateway's settings, the buyers' ledgers.
    pub work_dir: PathBuf,
}

/// A refused call: the gateway's `error.code` and `error.message`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// `over_budget`, …
    pub code: String,
    /// The gateway's explanation.
    pub message: String,
}

/// One step of the scenario: a purchase (challenge, payment, paid call) or a call on a token
/// already paid for.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    /// The buyer: `alice`, `bob`, `alice/sub-agent`.
    pub who: &'static str,
    /// The service.
    pub service: &'static str,
    /// The price of one call, dollars.
    pub price_usd: Decimal,
    /// What the invoice charged, dollars (the price, or the prepaid balance bought); `None`
    /// for a call paid from a balance.
    pub charge_usd: Option<Decimal>,
    /// The rail paid on; `None` for a call paid from a balance.
    pub rail: Option<Rail>,
    /// The invoice's asset units (asset rail).
    pub units: Option<u64>,
    /// The invoice's amount, msat.
    pub msat: Option<u64>,
    /// What the buyer's ledger says the payment cost, dollars, routing fees included.
    pub paid_usd: Option<Decimal>,
    /// Asset units the seller's node gained (asset rail); `None` if its balance did not show
    /// them within a few seconds.
    pub seller_units: Option<u64>,
    /// Msat the seller's invoice was paid (sats rail).
    pub seller_msat: Option<u64>,
    /// The token's id (hex), never the token.
    pub token_id: Option<String>,
    /// The final status.
    pub status: u16,
    /// Why the call was refused, when it was.
    pub refusal: Option<Refusal>,
    /// The prepaid balance after the call, dollars.
    pub balance_usd: Option<Decimal>,
    /// The `402` challenge's round trip, ms.
    pub challenge_ms: Option<f64>,
    /// The payment, ms.
    pub pay_ms: Option<f64>,
    /// The call with the token, ms.
    pub call_ms: f64,
}

/// The whole run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Where the gateway listened.
    pub gateway: String,
    /// The sub-agent's budget caveat.
    pub sub_agent_caveat: String,
    /// Each step, in order.
    pub steps: Vec<Step>,
}

impl Report {
    /// Asset units the seller received in all.
    pub fn seller_units(&self) -> u64 {
        self.steps.iter().filter_map(|s| s.seller_units).sum()
    }

    /// Msat the seller received in all.
    pub fn seller_msat(&self) -> u64 {
        self.steps.iter().filter_map(|s| s.seller_msat).sum()
    }

    /// Payments made.
    pub fn payments(&self) -> usize {
        self.steps.iter().filter(|s| s.rail.is_some()).count()
    }

    /// The sub-agent's calls that passed, and its refusal.
    pub fn sub_agent(&self) -> (usize, Option<&Refusal>) {
        let steps = self.steps.iter().filter(|s| s.who == SUB_AGENT);
        let passed = steps.clone().filter(|s| s.refusal.is_none()).count();
        (passed, steps.filter_map(|s| s.refusal.as_ref()).next())
    }
}

const SUB_AGENT: &str = "alice/sub-agent";

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// The sample upstream and the gateway, on 127.0.0.1 ports the OS picks, as tasks of
/// `shutdown`. Returns the gateway's address.
async fn start_gateway(demo: &Demo, shutdown: &Shutdown) -> Result<(SocketAddr, Built), DemoError> {
    let bind = |action| {
        let path = demo.work_dir.clone();
        move |source| DemoError::Io {
            action,
            path,
            source,
        }
    };
    let upstream = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(bind("bind the sample upstream on 127.0.0.1 for"))?;
    let upstream_addr = upstream
        .local_addr()
        .map_err(bind("read the sample upstream's address for"))?;
    shutdown.spawn(
        "demo-sample-upstream",
        crate::gateway::sample::run(upstream, shutdown.token()),
    );
    let file = demo.work_dir.join("tapgate.toml");
    let text = format!(
        "# Written by `tapgate demo`.\ndata_dir = {data:?}\n\n[store]\nbackend = \"memory\"\n\n[network]\nfile = {network:?}\n\n[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n{}",
        catalogue(upstream_addr),
        data = demo.work_dir.display().to_string(),
        network = demo.network_file.display().to_string(),
    );
    std::fs::write(&file, text).map_err(|source| DemoError::Io {
        action: "write",
        path: file.clone(),
        source,
    })?;
    let settings = Sources {
        file: Some(file),
        overrides: Vec::new(),
        env: false,
    }
    .load()?;
    let built = build(&settings, Arc::new(SystemClock)).await?;
    let tracker = Arc::clone(&built.tracker);
    let lnd = built.lnd.clone();
    let token = shutdown.token();
    shutdown.spawn("demo-settlement-tracker", async move {
        if let Err(e) = tracker.follow(lnd, token).await {
            tracing::error!(error = %e, "the settlement tracker stopped");
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(bind("bind the gateway on 127.0.0.1 for"))?;
    let addr = listener
        .local_addr()
        .map_err(bind("read the gateway's address for"))?;
    let gateway = Arc::clone(&built.gateway);
    let token = shutdown.token();
    shutdown.spawn("demo-gateway", async move {
        let connections = TaskTracker::new();
        crate::gateway::server::run(listener, gateway, token, connections.clone()).await;
        connections.close();
        connections.wait().await;
    });
    Ok((addr, built))
}

/// How long to wait for the seller's node to report a payment's asset units: a real tapd
/// shows them in the channel balance a moment after the invoice settles.
const RECEIPT_WAIT: Duration = Duration::from_secs(5);
/// How often to look meanwhile.
const RECEIPT_POLL: Duration = Duration::from_millis(50);

fn merchant_failed(source: BackendError) -> DemoError {
    DemoError::Node {
        node: "merchant",
        source,
    }
}

/// The stablecoin units the seller's node holds.
async fn units_held(merchant: &Node, asset: &AssetRef) -> Result<u64, DemoError> {
    Ok(merchant
        .asset_balance(asset)
        .await
        .map_err(merchant_failed)?
        .total())
}

/// The units the seller's node gained over `before`, once they show (`None` if they have not
/// within [`RECEIPT_WAIT`]).
async fn units_received(
    merchant: &Node,
    asset: &AssetRef,
    before: u64,
) -> Result<Option<u64>, DemoError> {
    let deadline = Instant::now() + RECEIPT_WAIT;
    loop {
        let now = units_held(merchant, asset).await?;
        if now > before {
            return Ok(Some(now - before));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(RECEIPT_POLL).await;
    }
}

/// What the seller's node says its invoice for `token` was paid, msat (`None`: it knows no
/// such invoice). Read from the invoice, not the channel balance: an asset payment's HTLC
/// also carries sats to the seller.
async fn msat_received(merchant: &Node, token: &CachedToken) -> Result<Option<u64>, DemoError> {
    let hash = token.preimage.payment_hash();
    let invoice = merchant
        .lnd
        .lookup_invoice(&hash)
        .await
        .map_err(merchant_failed)?;
    Ok(invoice.map(|i| i.amt_paid_msat))
}

/// The answer's `error.code` and `error.message`, when it has them.
fn refusal(x: &Exchange) -> Option<Refusal> {
    let body: serde_json::Value = serde_json::from_slice(&x.body).ok()?;
    let error = body.get("error")?;
    Some(Refusal {
        code: error.get("code")?.as_str()?.to_owned(),
        message: error
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_owned(),
    })
}

/// [`DemoError::Unexpected`] unless `x` has `status`.
fn expect(
    x: &Exchange,
    status: StatusCode,
    expected: &'static str,
    who: &'static str,
    service: &'static str,
) -> Result<(), DemoError> {
    if x.status == status {
        return Ok(());
    }
    Err(DemoError::Unexpected {
        who,
        service,
        expected,
        status: x.status.as_u16(),
        code: refusal(x).map(|r| r.code),
    })
}

fn balance(x: &Exchange) -> Option<Decimal> {
    let v = x.headers.get(BALANCE)?.to_str().ok()?;
    Decimal::from_str(v).ok()
}

/// A token's id (hex), read from its macaroon's identifier.
fn token_id(token: &CachedToken) -> Option<String> {
    let m = Macaroon::from_base64(&token.macaroon).ok()?;
    Some(
        Identifier::decode(m.identifier())
            .ok()?
            .token_id
            .to_string(),
    )
}

/// One buyer: a client and its name.
struct Buyer<'a> {
    who: &'static str,
    client: &'a L402Client<Node, TapdNode>,
}

/// The scenario's world: the gateway's address, the seller's node and the stablecoin.
struct World {
    gateway: SocketAddr,
    merchant: Node,
    asset: AssetRef,
}

impl World {
    fn request(&self, service: &'static str) -> Outgoing {
        let (method, path, body) = match service {
            "echo" => (Method::POST, "/v1/echo", Bytes::from_static(b"hello")),
            "time" => (Method::GET, "/v1/time", Bytes::new()),
            _ => (Method::GET, "/v1/weather", Bytes::new()),
        };
        Outgoing {
            method,
            url: format!("http://{}{path}", self.gateway),
            headers: vec![("accept".into(), "application/json".into())],
            body,
            service: Some(service.to_owned()),
        }
    }

    /// `buyer` buys `service`: the `402`, the payment, the call with the token, each timed,
    /// and the seller's balances read around them. Returns the step and the token.
    async fn buy(
        &self,
        buyer: &Buyer<'_>,
        service: &'static str,
    ) -> Result<(Step, CachedToken), DemoError> {
        let (who, client) = (buyer.who, buyer.client);
        let fail = |source| DemoError::Client {
            who,
            service,
            source: Box::new(source),
        };
        let req = self.request(service);
        let units_before = units_held(&self.merchant, &self.asset).await?;
        let started = Instant::now();
        let first = client.send_once(&req, None).await.map_err(fail)?;
        let challenge_ms = ms(started.elapsed());
        expect(
            &first,
            StatusCode::PAYMENT_REQUIRED,
            "402 with a challenge",
            who,
            service,
        )?;
        let required = first
            .payment_required()
            .map_err(|e: ChallengeError| fail(e.into()))?;
        let body = required.body.clone().unwrap_or_default();
        let started = Instant::now();
        let paid = client
            .pay(&req.url, service, &required)
            .await
            .map_err(fail)?;
        let pay_ms = ms(started.elapsed());
        let started = Instant::now();
        let x = client
            .send_once(&req, Some(&paid.token))
            .await
            .map_err(fail)?;
        let call_ms = ms(started.elapsed());
        expect(&x, StatusCode::OK, "200 with the paid token", who, service)?;
        let (seller_units, seller_msat) = match paid.rail {
            Rail::Asset => (
                units_received(&self.merchant, &self.asset, units_before).await?,
                None,
            ),
            Rail::Sats => (None, msat_received(&self.merchant, &paid.token).await?),
        };
        let step = Step {
            who,
            service,
            price_usd: body.price_usd.unwrap_or_default(),
            charge_usd: body.charge_usd,
            rail: Some(paid.rail),
            units: body.asset.as_ref().and_then(|a| a.units),
            msat: Some(paid.msat),
            paid_usd: Some(paid.usd),
            seller_units,
            seller_msat,
            token_id: token_id(&paid.token),
            status: x.status.as_u16(),
            refusal: None,
            balance_usd: balance(&x),
            challenge_ms: Some(challenge_ms),
            pay_ms: Some(pay_ms),
            call_ms,
        };
        Ok((step, paid.token))
    }

    /// The sub-agent calls `echo` with `token` until the gateway refuses it (or
    /// [`SUB_AGENT_MAX_CALLS`] pass, which the report then shows without a refusal).
    async fn sub_agent(
        &self,
        client: &L402Client<Node, TapdNode>,
        token: &CachedToken,
        price_usd: Decimal,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<Vec<Step>, DemoError> {
        let service = "echo";
        let req = self.request(service);
        let mut steps = Vec::new();
        for n in 1..=SUB_AGENT_MAX_CALLS {
            let started = Instant::now();
            let x = client
                .send_once(&req, Some(token))
                .await
                .map_err(|source| DemoError::Client {
                    who: SUB_AGENT,
                    service,
                    source: Box::new(source),
                })?;
            let call_ms = ms(started.elapsed());
            let refused = (x.status != StatusCode::OK).then(|| {
                refusal(&x).unwrap_or_else(|| Refusal {
                    code: format!("http_{}", x.status.as_u16()),
                    message: String::new(),
                })
            });
            match &refused {
                None => progress(&format!(
                    "{SUB_AGENT}: call {n} on echo passed (balance ${})",
                    balance(&x).map_or_else(|| "?".into(), |b| b.to_string())
                )),
                Some(r) => progress(&format!(
                    "{SUB_AGENT}: call {n} on echo refused: {} ({})",
                    r.code, r.message
                )),
            }
            let done = refused.is_some();
            steps.push(Step {
                who: SUB_AGENT,
                service,
                price_usd,
                charge_usd: None,
                rail: None,
                units: None,
                msat: None,
                paid_usd: None,
                seller_units: None,
                seller_msat: None,
                token_id: token_id(token),
                status: x.status.as_u16(),
                refusal: refused,
                balance_usd: balance(&x),
                challenge_ms: None,
                pay_ms: None,
                call_ms,
            });
            if done {
                break;
            }
        }
        Ok(steps)
    }
}

/// `token` narrowed by `caveat`, checked by the rules verification applies (a widening is
/// refused here rather than by the gateway).
fn attenuate(token: &CachedToken, caveat: &str) -> Result<CachedToken, DemoError> {
    caveat::Caveat::parse(caveat)?;
    let mut m = Macaroon::from_base64(&token.macaroon)?;
    let mut chain: Vec<Vec<u8>> = m
        .caveats()
        .filter(|c| !c.is_third_party())
        .map(|c| c.id.to_vec())
        .collect();
    chain.push(caveat.as_bytes().to_vec());
    caveat::check_narrowing(&chain)?;
    m.add_first_party_caveat(caveat.as_bytes())?;
    Ok(CachedToken {
        macaroon: m.to_base64(),
        ..token.clone()
    })
}

/// A buyer's client: `name`'s node paying on the rails allowed, its ledger in the work
/// directory, at most $1.10 a payment and $5 in all, to 127.0.0.1 only.
async fn client(
    demo: &Demo,
    addrs: &NetworkAddresses,
    name: &'static str,
    holdings: Holdings,
) -> Result<L402Client<Node, TapdNode>, DemoError> {
    let node = Node::connect(addrs.node(name)?)?;
    let ledger = ClientLedger::open(&demo.work_dir.join(name).join(FILE_NAME)).await?;
    let budget = Budget {
        per_call_usd: Some(Decimal::new(110, 2)),
        per_day_usd: None,
        total_usd: Some(Decimal::from(5)),
        allowed_hosts: Some(vec!["127.0.0.1".into()]),
    };
    let rates = node.tapd.clone();
    Ok(L402Client::new(
        node,
        rates,
        holdings,
        ledger,
        budget,
        Arc::new(SystemClock),
    ))
}

/// Runs the scenario over `demo.network_file`, its tasks spawned into `shutdown` (the caller
/// drains it), telling `progress` each step as it happens.
pub async fn run(
    demo: &Demo,
    shutdown: &Shutdown,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Report, DemoError> {
    std::fs::create_dir_all(&demo.work_dir).map_err(|source| DemoError::Io {
        action: "create",
        path: demo.work_dir.clone(),
        source,
    })?;
    let addrs = NetworkAddresses::from_network_file(&demo.network_file)?;
    let asset = addrs
        .asset
        .clone()
        .ok_or(DemoError::Incomplete("stablecoin"))?;
    let edge = addrs
        .edge_pubkey
        .clone()
        .ok_or(DemoError::Incomplete("edge node"))?;
    let (gateway, built) = start_gateway(demo, shutdown).await?;
    progress(&format!(
        "gateway on http://{gateway}, selling time ($0.50, stablecoin), echo ($0.002 a call from a prepaid $1.00, stablecoin) and weather ($0.01, sats) for {}",
        built.node_name
    ));
    let holdings = Holdings {
        asset: asset.clone(),
        edge_peer: edge.clone(),
        pay_with_asset: true,
        pay_with_sats: false,
        max_fee_msat: MAX_FEE_MSAT,
        sats_rate: None,
    };
    let alice = client(demo, &addrs, "alice", holdings.clone()).await?;
    // bob has no asset channel for the edge to quote him: his sats are valued at the rate
    // the edge quotes alice.
    let rate = alice_rate(&addrs, &asset, &edge).await?;
    let bob = client(
        demo,
        &addrs,
        "bob",
        Holdings {
            pay_with_asset: false,
            pay_with_sats: true,
            sats_rate: Some(rate),
            ..holdings
        },
    )
    .await?;
    let world = World {
        gateway,
        merchant: Node::connect(addrs.node(&built.node_name)?)?,
        asset,
    };
    let alice = Buyer {
        who: "alice",
        client: &alice,
    };
    let bob = Buyer {
        who: "bob",
        client: &bob,
    };
    let mut steps = Vec::new();
    for (buyer, service) in [(&alice, "time"), (&alice, "echo"), (&bob, "weather")] {
        let (step, token) = world.buy(buyer, service).await?;
        progress(&describe(&step));
        let echo = (service == "echo").then_some((token, step.price_usd));
        steps.push(step);
        if let Some((token, price)) = echo {
            let caveat = format!("echo_budget_usd={SUB_AGENT_BUDGET_USD}");
            let narrowed = attenuate(&token, &caveat)?;
            progress(&format!(
                "alice attenuates her echo token with {caveat} and hands it to her sub-agent"
            ));
            steps.extend(
                world
                    .sub_agent(alice.client, &narrowed, price, progress)
                    .await?,
            );
        }
    }
    Ok(Report {
        gateway: format!("http://{gateway}"),
        sub_agent_caveat: format!("echo_budget_usd={SUB_AGENT_BUDGET_USD}"),
        steps,
    })
}

/// The rate (asset units per BTC) alice's edge quotes for selling the stablecoin.
async fn alice_rate(
    addrs: &NetworkAddresses,
    asset: &AssetRef,
    edge: &str,
) -> Result<crate::pricing::FixedPoint, DemoError> {
    let alice = Node::connect(addrs.node("alice")?)?;
    let quote = alice
        .tapd
        .sell_quote(asset, 1_000_000, edge, 60)
        .await
        .map_err(|source| DemoError::Node {
            node: "alice",
            source,
        })?;
    Ok(quote.rate)
}

/// A purchase in one line, for the progress output.
fn describe(s: &Step) -> String {
    let paid = match (s.rail, s.units, s.msat) {
        (Some(Rail::Asset), Some(u), _) => format!("{u} units of the stablecoin"),
        (_, _, Some(m)) => format!("{m} msat"),
        _ => "nothing".into(),
    };
    format!(
        "{} paid {} for {} (${}) in {:.1} ms; the paid call took {:.1} ms",
        s.who,
        paid,
        s.service,
        s.charge_usd.unwrap_or(s.price_usd),
        s.pay_ms.unwrap_or_default(),
        s.call_ms
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l402::{Preimage, RootKey, TokenId};

    fn token(caveats: &[&str]) -> CachedToken {
        let key = RootKey::generate().unwrap();
        let preimage = Preimage::from_bytes([7; 32]);
        let id = Identifier::new(preimage.payment_hash(), TokenId::generate().unwrap());
        let mut m = Macaroon::new(&key, &id.encode(), "tapgate");
        for c in caveats {
            m.add_first_party_caveat(c.as_bytes()).unwrap();
        }
        CachedToken {
            scheme: "L402".into(),
            macaroon: m.to_base64(),
            preimage,
            expires_at: None,
        }
    }

    #[test]
    fn attenuation_narrows_and_keeps_the_preimage_and_the_token_id() {
        let t = token(&["services=echo:0", "echo_budget_usd=0.01"]);
        let narrowed = attenuate(&t, "echo_budget_usd=0.005").unwrap();
        assert_eq!(narrowed.preimage.expose(), t.preimage.expose());
        assert_eq!(token_id(&narrowed), token_id(&t));
        let m = Macaroon::from_base64(&narrowed.macaroon).unwrap();
        let last = m.caveats().last().unwrap();
        assert_eq!(last.id, b"echo_budget_usd=0.005");
    }

    #[test]
    fn attenuation_refuses_a_widening_or_an_unknown_caveat() {
        let t = token(&["services=echo:0", "echo_budget_usd=0.01"]);
        for c in ["echo_budget_usd=0.02", "colour=blue"] {
            assert!(
                matches!(attenuate(&t, c), Err(DemoError::Attenuate(_))),
                "{c}"
            );
        }
    }
}
