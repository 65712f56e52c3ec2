//! Sub-agents end to end: alice buys a prepaid token from the gateway over simnet, narrows it
//! with `tapgate token attenuate` into a parent token with a dollar cap and sub-agent tokens
//! under it, and the gateway holds every token to its own caps and to every ancestor's, in
//! one store step with the balance debit.
//!
//! Each test starts its own simnet and gateway on 127.0.0.1:0. Time is the system clock
//! shifted by a settable offset, shared by simnet and the gateway, so a UTC day can pass
//! without sleeping.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{Reply, ShiftedClock};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tapgate::app::gateway::Built;
use tapgate::app::{NetworkAddresses, Node};
use tapgate::cli::CliError;
use tapgate::cli::token::{AttenuateArgs, attenuate_at};
use tapgate::clock::{Clock, SystemClock};
use tapgate::l402::caveat::CaveatError;
use tapgate::l402::header::{parse_challenge, parse_credential};
use tapgate::l402::{Identifier, Macaroon, TokenId};
use tapgate::lightning::traits::Payments;
use tapgate::simnet::run::RunningSimnet;
use tapgate::store::BalanceStore;
use tokio_util::sync::CancellationToken;

/// Moves `clock` to one second past the next 00:00 UTC.
fn to_next_utc_day(clock: &ShiftedClock) {
    let now = clock.now_unix();
    clock.advance((now / 86_400 + 1) * 86_400 + 1 - now);
}

/// A prepaid service: $1.00 of balance, $0.02 a call, tokens that live a week (a UTC day
/// passes in one test).
fn services_toml(up: SocketAddr) -> String {
    format!(
        r#"
[[services]]
name = "echo"
paths = ["/v1/echo"]
upstream = "http://{up}"
price_usd = "0.02"
settlement = {{ asset = "default" }}
methods = ["POST"]
small_price = "prepaid"
prepaid_usd = "1.00"
token_lifetime_secs = 604800
"#
    )
}

struct Gw {
    addr: SocketAddr,
    built: Built,
    client: Client<HttpConnector, Full<Bytes>>,
    alice: Node,
    asset: tapgate::lightning::types::AssetRef,
    edge: String,
    clock: Arc<ShiftedClock>,
    _running: RunningSimnet,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Gw {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn reason(r: &Reply) -> &str {
    r.body["error"]["code"].as_str().unwrap_or("")
}

impl Gw {
    async fn start() -> Self {
        let clock = Arc::new(ShiftedClock::default());
        let (running, dir) = common::start_simnet_clocked(Some(clock.clone())).await;
        let file = running.network_file().to_owned();
        let stop = CancellationToken::new();
        let (addr, built) = common::start_gateway(
            &file,
            dir.path(),
            services_toml,
            clock.clone(),
            true,
            "",
            &stop,
        )
        .await;
        let addrs = NetworkAddresses::from_network_file(&file).unwrap();
        Self {
            addr,
            built,
            client: Client::builder(TokioExecutor::new()).build_http(),
            alice: Node::connect(addrs.node("alice").unwrap()).unwrap(),
            asset: addrs.asset.clone().unwrap(),
            edge: addrs.edge_pubkey.clone().unwrap(),
            clock,
            _running: running,
            stop,
            _dir: dir,
        }
    }

    /// `POST /v1/echo` with `auth` (a credential `<mac>:<preimage>`, with or without its
    /// `L402 ` scheme) and an optional idempotency key.
    async fn call(&self, auth: Option<&str>, key: Option<&str>) -> Reply {
        call(&self.client, self.addr, auth, key).await
    }

    /// alice buys a prepaid token with the stablecoin; its `Authorization` value.
    async fn buy(&self) -> String {
        let r = self.call(None, None).await;
        assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{:?}", r.body);
        let ch = parse_challenge(r.headers["www-authenticate"].to_str().unwrap()).unwrap();
        let paid = self
            .alice
            .pay_with_asset(&ch.invoice, &self.asset, &self.edge, 10_000)
            .await
            .unwrap();
        let auth = format!(
            "L402 {}:{}",
            ch.macaroon.to_base64(),
            hex::encode(paid.preimage.expose())
        );
        // The first call opens the balance.
        let first = self.call(Some(&auth), None).await;
        assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
        auth
    }

    /// The token's prepaid balance in micro-dollars, from the gateway's store.
    async fn balance(&self, auth: &str) -> u64 {
        self.built
            .gate
            .store()
            .balance(&token_id(auth))
            .await
            .unwrap()
            .unwrap()
    }
}

async fn call(
    client: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    auth: Option<&str>,
    key: Option<&str>,
) -> Reply {
    let mut b = Request::builder()
        .method("POST")
        .uri(format!("http://{addr}/v1/echo"));
    if let Some(a) = auth {
        let value = if a.starts_with("L402 ") {
            a.to_owned()
        } else {
            format!("L402 {a}")
        };
        b = b.header("authorization", value);
    }
    if let Some(k) = key {
        b = b.header("idempotency-key", k);
    }
    common::send(
        client,
        b.body(Full::new(Bytes::from_static(b"hi"))).unwrap(),
    )
    .await
}

fn token_id(auth: &str) -> TokenId {
    let cred = parse_credential(&format!("L402 {}", auth.trim_start_matches("L402 "))).unwrap();
    Identifier::decode(cred.macaroons[0].identifier())
        .unwrap()
        .token_id
}

/// `tapgate token attenuate TOKEN` with the flags in `f`, through the library function the
/// command runs.
fn attenuate(token: &str, f: impl FnOnce(&mut AttenuateArgs)) -> Result<String, CliError> {
    let mut args = AttenuateArgs {
        macaroon: token.to_owned(),
        ..AttenuateArgs::default()
    };
    f(&mut args);
    attenuate_at(&args, SystemClock.now_unix())
}

fn budget(usd: &str) -> impl FnOnce(&mut AttenuateArgs) {
    let usd = usd.to_owned();
    move |a| a.budget_usd = Some(usd)
}

fn refused(r: &Reply, want: &str) {
    assert!(
        r.status == StatusCode::UNAUTHORIZED || r.status == StatusCode::PAYMENT_REQUIRED,
        "{want}: {} {:?}",
        r.status,
        r.body
    );
    assert_eq!(reason(r), want, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_agent_spends_under_its_own_cap_its_parents_and_the_days() {
    let gw = Gw::start().await;
    let root = gw.buy().await;
    assert_eq!(gw.balance(&root).await, 980_000);

    // A parent capped at $0.10 and a sub-agent under it capped at $0.06: three calls.
    let parent = attenuate(&root, budget("0.10")).unwrap();
    let agent = attenuate(&parent, budget("0.06")).unwrap();
    assert!(!agent.starts_with("L402"), "a credential <mac>:<preimage>");
    for left in ["0.96", "0.94", "0.92"] {
        let r = gw.call(Some(&agent), None).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.headers["tapgate-balance-usd"], left);
    }
    // (a) Past its cap: refused, and the balance is not debited.
    let r = gw.call(Some(&agent), None).await;
    refused(&r, "over_budget");
    assert!(r.headers.contains_key("www-authenticate"));
    assert_eq!(gw.balance(&root).await, 920_000);

    // (b) It cannot widen its cap: the command refuses, and so does the gateway a token
    // widened by hand (nothing debited).
    match attenuate(&agent, budget("0.07")) {
        Err(CliError::Caveat {
            source: CaveatError::Widening(_),
            ..
        }) => {}
        other => panic!("a widening must be refused: {other:?}"),
    }
    let (mac, pre) = agent.split_once(':').unwrap();
    let mut widened = Macaroon::from_base64(mac).unwrap();
    widened
        .add_first_party_caveat(b"echo_budget_usd=1.00")
        .unwrap();
    let r = gw
        .call(Some(&format!("{}:{pre}", widened.to_base64())), None)
        .await;
    refused(&r, "invalid");
    assert_eq!(gw.balance(&root).await, 920_000);

    // A sibling has a cap of its own but shares the parent's: $0.04 of it is left.
    let sibling = attenuate(&parent, budget("0.05")).unwrap();
    for _ in 0..2 {
        let r = gw.call(Some(&sibling), None).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let r = gw.call(Some(&sibling), None).await;
    refused(&r, "over_budget");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("$0.10"),
        "the parent's cap refuses: {:?}",
        r.body
    );
    assert_eq!(gw.balance(&root).await, 880_000);

    // (d) A call cap, with an idempotent retry that counts no call.
    let capped = attenuate(&root, |a| a.max_calls = Some(2)).unwrap();
    let first = gw.call(Some(&capped), Some("k1")).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let retry = gw.call(Some(&capped), Some("k1")).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert!(
        retry.headers["tapgate-receipt"]
            .to_str()
            .unwrap()
            .contains("replayed=true")
    );
    assert_eq!(
        gw.balance(&root).await,
        860_000,
        "the retry debited nothing"
    );
    let second = gw.call(Some(&capped), Some("k2")).await;
    assert_eq!(second.status, StatusCode::OK, "{:?}", second.body);
    refused(&gw.call(Some(&capped), Some("k3")).await, "too_many_calls");
    assert_eq!(gw.balance(&root).await, 840_000);

    // (d) A daily cap: $0.04 a UTC day, two calls, then two more the next day.
    let daily = attenuate(&root, |a| a.budget_usd_per_day = Some("0.04".into())).unwrap();
    for _ in 0..2 {
        assert_eq!(gw.call(Some(&daily), None).await.status, StatusCode::OK);
    }
    let r = gw.call(Some(&daily), None).await;
    refused(&r, "over_budget");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("per day"),
        "{:?}",
        r.body
    );
    to_next_utc_day(&gw.clock);
    for _ in 0..2 {
        let r = gw.call(Some(&daily), None).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    refused(&gw.call(Some(&daily), None).await, "over_budget");
    assert_eq!(gw.balance(&root).await, 760_000);
    // The parent's lifetime cap did not reset with the day.
    refused(&gw.call(Some(&agent), None).await, "over_budget");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn siblings_spending_at_once_never_pass_their_parents_cap() {
    let gw = Gw::start().await;
    let root = gw.buy().await;
    // (c) A parent capped at $0.12 (six calls) and two siblings capped at $0.08 (four calls)
    // each: twelve calls at once from each sibling, exactly six succeed.
    let parent = attenuate(&root, budget("0.12")).unwrap();
    let siblings = [
        attenuate(&parent, |a| {
            a.budget_usd = Some("0.08".into());
            a.methods = Some("POST".into());
        })
        .unwrap(),
        attenuate(&parent, budget("0.08")).unwrap(),
    ];
    let start = Arc::new(tokio::sync::Barrier::new(24));
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (client, addr, start) = (gw.client.clone(), gw.addr, start.clone());
        let auth = siblings[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let r = call(&client, addr, Some(&auth), None).await;
            (i % 2, r.status, reason(&r).to_owned())
        }));
    }
    let mut ok = [0usize; 2];
    for t in tasks {
        let (who, status, reason) = t.await.unwrap();
        match status {
            StatusCode::OK => ok[who] += 1,
            _ => assert_eq!(reason, "over_budget", "{status}"),
        }
    }
    assert_eq!(ok[0] + ok[1], 6, "{ok:?}");
    assert!(ok[0] <= 4 && ok[1] <= 4, "{ok:?}");
    // $1.00 - $0.02 (the first call) - $0.12, never more.
    assert_eq!(gw.balance(&root).await, 860_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attenuate_command_carries_the_preimage_and_refuses_widening() {
    let gw = Gw::start().await;
    let root = gw.buy().await;
    let tapgate = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tapgate"))
            .env_remove("TAPGATE_CONFIG")
            .args(args)
            .output()
            .unwrap()
    };
    // (e) The flags, with the credential in and a credential out.
    let out = tapgate(&[
        "token",
        "attenuate",
        &root,
        "--budget-usd",
        "0.50",
        "--budget-usd-per-day",
        "0.04",
        "--max-calls",
        "100",
        "--valid-for",
        "10m",
        "--services",
        "echo",
        "--methods",
        "POST",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let agent = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (mac, pre) = agent.split_once(':').unwrap();
    assert_eq!(pre, root.rsplit_once(':').unwrap().1);
    let caveats = tapgate::cli::token::inspect(mac).unwrap()["caveats"].clone();
    let caveats: Vec<String> = serde_json::from_value(caveats).unwrap();
    assert!(
        caveats.contains(&"echo_budget_usd=0.50".to_owned()),
        "{caveats:?}"
    );
    assert!(
        caveats.contains(&"echo_max_calls=100".to_owned()),
        "{caveats:?}"
    );
    assert!(caveats.iter().any(|c| c.starts_with("echo_valid_until=")));
    // Usable as it is, as `Authorization: L402 <output>`.
    let r = gw.call(Some(&format!("L402 {agent}")), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // A bare macaroon in, a bare macaroon out.
    let out = tapgate(&["token", "attenuate", mac, "--max-calls", "5"]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains(':'));
    // Widening the sub-agent's budget fails with the rule it breaks.
    let out = tapgate(&["token", "attenuate", &agent, "--budget-usd", "0.60"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("widens"), "{err}");
    // The help says what comes out.
    let out = tapgate(&["token", "attenuate", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Authorization: L402"), "{help}");
    assert!(help.contains("--budget-usd-per-day"), "{help}");
}
