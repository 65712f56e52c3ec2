//! The L402 client end to end: simnet, the gateway in-process over it with the sample
//! upstream, and tapgate's own client (`tapgate::client::http::L402Client`) paying as alice
//! (the stablecoin over her asset channel) and as bob (sats, valued at a configured rate since
//! he has no asset channel), recording in its SQLite ledger and reusing the token.
//!
//! The first flow runs again on the real regtest network when `TAPGATE_REGTEST_NETWORK` names
//! one (as `bash .ci/test` does; under CI it must).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use rust_decimal::Decimal;
use tapgate::app::{NetworkAddresses, Node};
use tapgate::client::budget::Budget;
use tapgate::client::http::{ClientError, Exchange, L402Client, Outgoing};
use tapgate::client::ledger::{ClientLedger, FILE_NAME, SpendRow, SpendState};
use tapgate::client::payer::Holdings;
use tapgate::clock::{Clock, SystemClock};
use tapgate::lightning::tapd::TapdNode;
use tapgate::lightning::traits::Rates;
use tapgate::store::Rail;
use tokio_util::sync::CancellationToken;

const SERVICES: &str = r#"
[[services]]
name = "weather"
paths = ["/v1/weather", "/v1/weather/*"]
upstream = "http://UP"
price_usd = "0.50"
settlement = "sats"
methods = ["GET"]

[[services]]
name = "time"
paths = ["/v1/time", "/v1/time/*"]
upstream = "http://UP"
price_usd = "0.50"
settlement = { asset = "default" }
methods = ["GET"]

[[services]]
name = "echo"
paths = ["/v1/echo"]
upstream = "http://UP"
price_usd = "0.25"
settlement = { asset = "default" }
methods = ["POST"]
small_price = "prepaid"
prepaid_usd = "0.50"
"#;

struct World {
    gateway: std::net::SocketAddr,
    file: std::path::PathBuf,
    _built: tapgate::app::gateway::Built,
    addrs: NetworkAddresses,
    stop: CancellationToken,
    dir: tempfile::TempDir,
    /// Simnet and its directory; `None` on the real regtest network.
    _net: Option<(tapgate::simnet::run::RunningSimnet, tempfile::TempDir)>,
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn world() -> World {
    let (net, net_dir) = common::start_simnet().await;
    let file = net.network_file().to_owned();
    world_on(file, Some((net, net_dir))).await
}

/// The gateway over the real regtest network `TAPGATE_REGTEST_NETWORK` names, if it is set.
async fn regtest_world() -> Option<World> {
    let Some(file) = std::env::var_os("TAPGATE_REGTEST_NETWORK") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs the client against the real network: set TAPGATE_REGTEST_NETWORK"
        );
        eprintln!("TAPGATE_REGTEST_NETWORK not set: simnet only");
        return None;
    };
    Some(world_on(file.into(), None).await)
}

async fn world_on(
    file: std::path::PathBuf,
    net: Option<(tapgate::simnet::run::RunningSimnet, tempfile::TempDir)>,
) -> World {
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let services = |up: std::net::SocketAddr| SERVICES.replace("UP", &up.to_string());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (gateway, built) =
        common::start_gateway(&file, dir.path(), services, clock, true, "", &stop).await;
    World {
        gateway,
        file: file.clone(),
        _built: built,
        addrs: NetworkAddresses::from_network_file(&file).unwrap(),
        stop,
        dir,
        _net: net,
    }
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

impl World {
    fn node(&self, name: &str) -> Node {
        Node::connect(self.addrs.node(name).unwrap()).unwrap()
    }

    /// A client paying from `name`'s node, its ledger in the file of `ledger`.
    async fn client(
        &self,
        name: &str,
        ledger: &str,
        holdings: Holdings,
        budget: Budget,
    ) -> L402Client<Node, TapdNode> {
        let ledger = ClientLedger::open(&self.dir.path().join(ledger).join(FILE_NAME))
            .await
            .unwrap();
        L402Client::new(
            self.node(name),
            self.node(name).tapd,
            holdings,
            ledger,
            budget,
            Arc::new(SystemClock),
        )
    }

    fn holdings(&self, asset: bool, sats: bool) -> Holdings {
        Holdings {
            asset: self.addrs.asset.clone().unwrap(),
            edge_peer: self.addrs.edge_pubkey.clone().unwrap(),
            pay_with_asset: asset,
            pay_with_sats: sats,
            max_fee_msat: 10_000,
            sats_rate: None,
        }
    }

    fn get(&self, path: &str) -> Outgoing {
        Outgoing {
            method: Method::GET,
            url: format!("http://{}{path}", self.gateway),
            headers: vec![("accept".into(), "application/json".into())],
            body: Bytes::new(),
            service: None,
        }
    }
}

/// Budgets in these tests: $1 a call, $1.20 a day; each $0.50 call fits, three do not.
fn budget() -> Budget {
    Budget {
        per_call_usd: Some(d("1.00")),
        per_day_usd: Some(d("1.20")),
        total_usd: None,
        allowed_hosts: Some(vec!["127.0.0.1".into()]),
    }
}

/// `err` refused a third payment under [`budget`]'s $1.20 day before paying, and `client`'s
/// ledger holds the two settled on `rail`, which it returns.
async fn refused_by_the_daily_cap(
    client: &L402Client<Node, TapdNode>,
    err: &ClientError,
    rail: Rail,
) -> Vec<SpendRow> {
    let text = err.to_string();
    assert!(
        text.contains("daily cap of $1.20") && text.contains("nothing was paid"),
        "{text}"
    );
    let rows = client.ledger().spends(0).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r.state == SpendState::Settled && r.rail == rail)
    );
    rows
}

fn upstream_saw(x: &Exchange) -> serde_json::Value {
    serde_json::from_slice(&x.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_pays_in_the_stablecoin_and_bob_in_sats_and_both_reuse_their_tokens() {
    alice_and_bob_pay_and_reuse(&world().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_and_bob_pay_on_the_real_regtest_network_too() {
    if let Some(w) = regtest_world().await {
        alice_and_bob_pay_and_reuse(&w).await;
    }
}

async fn alice_and_bob_pay_and_reuse(w: &World) {
    // alice: the stablecoin for the asset-settled service.
    let alice = w
        .client("alice", "alice", w.holdings(true, false), budget())
        .await;
    let x = alice.send(&w.get("/v1/time")).await.unwrap();
    assert_eq!(
        x.status,
        StatusCode::OK,
        "{:?}",
        String::from_utf8_lossy(&x.body)
    );
    let paid = x.paid.as_ref().expect("alice paid");
    assert_eq!(paid.rail, Rail::Asset);
    assert!(paid.units.unwrap() > 0);
    // $0.50 of units at the edge's bid, plus fees, within what was reserved.
    assert!(
        paid.usd >= d("0.50") && paid.usd <= paid.reserved_usd,
        "{paid:?}"
    );
    assert!(paid.token.expires_at.is_some());
    assert_eq!(upstream_saw(&x)["tapgate"]["x-tapgate-tier"], "0");
    // Again: the 402 names the service, whose cached token is sent; no new payment.
    let again = alice.send(&w.get("/v1/time")).await.unwrap();
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.paid.is_none() && again.reused_token);
    let rows = alice.ledger().spends(0).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].state, rows[0].rail),
        (SpendState::Settled, Rail::Asset)
    );
    assert_eq!(rows[0].usd, paid.usd);

    // bob: sats for the sats-settled service, valued at the rate alice's edge quotes.
    let h = bob_holdings(w).await;
    let bob = w.client("bob", "bob", h, budget()).await;
    let x = bob.send(&w.get("/v1/weather")).await.unwrap();
    assert_eq!(
        x.status,
        StatusCode::OK,
        "{:?}",
        String::from_utf8_lossy(&x.body)
    );
    let paid = x.paid.as_ref().expect("bob paid");
    assert_eq!((paid.rail, paid.units), (Rail::Sats, None));
    assert!(paid.msat > 0);
    let again = bob.send(&w.get("/v1/weather")).await.unwrap();
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.paid.is_none() && again.reused_token);

    // bob's day has room for one more $0.50 call; the next one is refused before paying.
    let x = bob.send(&w.get("/v1/time")).await.unwrap();
    assert_eq!(x.status, StatusCode::OK);
    assert_eq!(x.paid.as_ref().map(|p| p.rail), Some(Rail::Sats));
    // Named as another service, the request finds no token under that name and must pay:
    // the daily cap refuses, and the node is not asked.
    let err = bob
        .send(&Outgoing {
            service: Some("time-v2".into()),
            ..w.get("/v1/time")
        })
        .await
        .unwrap_err();
    refused_by_the_daily_cap(&bob, &err, Rail::Sats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_that_cannot_cover_the_call_refuses_before_paying() {
    let w = world().await;
    let alice = w
        .client(
            "alice",
            "alice",
            w.holdings(true, false),
            Budget {
                per_call_usd: Some(d("0.40")),
                ..Budget::default()
            },
        )
        .await;
    let err = alice.send(&w.get("/v1/time")).await.unwrap_err();
    assert!(err.to_string().contains("nothing was paid"), "{err}");
    assert!(alice.ledger().spends(0).await.unwrap().is_empty());
    // A host off the allowlist is refused the same way.
    let listed = w
        .client(
            "alice",
            "alice2",
            w.holdings(true, false),
            Budget {
                allowed_hosts: Some(vec!["api.example.com".into()]),
                ..Budget::default()
            },
        )
        .await;
    let err = listed.send(&w.get("/v1/time")).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("127.0.0.1 is not on the budget's list"),
        "{err}"
    );
}

/// `echo` sells $0.50 of calls at $0.25: its balance runs out every two calls. The client tops
/// it up by paying the `balance_exhausted` challenge, within the budget, which refuses the third
/// top-up before paying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepaid_balance_is_topped_up_within_budget_when_it_runs_out() {
    let w = world().await;
    let alice = w
        .client("alice", "alice", w.holdings(true, false), budget())
        .await;
    let echo = Outgoing {
        method: Method::POST,
        body: Bytes::from_static(b"hi"),
        ..w.get("/v1/echo")
    };
    let named = Outgoing {
        service: Some("echo".into()),
        ..echo.clone()
    };
    let balance = |x: &Exchange| d(x.headers["tapgate-balance-usd"].to_str().unwrap());
    let x = alice.send(&echo).await.unwrap();
    assert_eq!(x.status, StatusCode::OK, "{:?}", x.body);
    assert!(x.paid.is_some() && !x.topped_up);
    assert_eq!(balance(&x), d("0.25"));
    let x = alice.send(&echo).await.unwrap();
    assert_eq!(x.status, StatusCode::OK);
    assert!(x.paid.is_none() && x.reused_token);
    assert_eq!(balance(&x), Decimal::ZERO);
    // Run out, the service learnt from the 402: the cached token's top-up is paid.
    let x = alice.send(&echo).await.unwrap();
    assert_eq!(x.status, StatusCode::OK, "{:?}", x.body);
    assert!(x.paid.is_some() && x.topped_up, "{x:?}");
    assert_eq!(balance(&x), d("0.25"));
    let x = alice.send(&named).await.unwrap();
    assert!(x.paid.is_none() && x.reused_token);
    assert_eq!(balance(&x), Decimal::ZERO);
    // Run out again, the service named: a third $0.50 breaks the $1.20 day; nothing is paid.
    let err = alice.send(&named).await.unwrap_err();
    let rows = refused_by_the_daily_cap(&alice, &err, Rail::Asset).await;
    // The top-up's token replaced the first one in the cache.
    let tokens = alice.ledger().tokens(SystemClock.now_unix()).await.unwrap();
    assert_eq!(tokens.len(), 1);
    let hash = tokens[0].payment_hash.map(|h| h.to_string());
    assert_eq!(hash.as_deref(), Some(rows[1].payment_hash.as_str()));
}

/// bob's holdings: sats valued at the rate alice's edge quotes (bob has no asset channel).
async fn bob_holdings(w: &World) -> Holdings {
    let rate = w
        .node("alice")
        .tapd
        .sell_quote(
            &w.addrs.asset.clone().unwrap(),
            1_000_000,
            &w.addrs.edge_pubkey.clone().unwrap(),
            60,
        )
        .await
        .unwrap()
        .rate;
    Holdings {
        sats_rate: Some(rate),
        ..w.holdings(false, true)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_requests_against_a_cap_for_ten_pay_exactly_ten() {
    let w = world().await;
    let h = bob_holdings(&w).await;
    // What one call reserves, learnt from one call on a ledger of its own.
    let probe = w.client("bob", "probe", h.clone(), Budget::default()).await;
    let x = probe.send(&w.get("/v1/weather")).await.unwrap();
    let one = x.paid.unwrap().reserved_usd;
    // Room for ten reservations and half of an eleventh.
    let cap = one * Decimal::from(10) + one / Decimal::from(2);
    let bob = Arc::new(
        w.client(
            "bob",
            "bob",
            h,
            Budget {
                total_usd: Some(cap),
                ..Budget::default()
            },
        )
        .await,
    );
    let mut tasks = Vec::new();
    for i in 0..50 {
        let bob = Arc::clone(&bob);
        // Each request names its own service, so none can reuse another's token: all 50 try
        // to pay.
        let req = Outgoing {
            service: Some(format!("weather-{i}")),
            ..w.get("/v1/weather")
        };
        tasks.push(tokio::spawn(async move { bob.send(&req).await }));
    }
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(x) => {
                assert_eq!(x.status, StatusCode::OK);
                assert!(x.paid.is_some());
                ok += 1;
            }
            Err(e) => {
                assert!(e.to_string().contains("total cap"), "{e}");
                refused += 1;
            }
        }
    }
    assert_eq!((ok, refused), (10, 40));
    let rows = bob.ledger().spends(0).await.unwrap();
    assert_eq!(rows.len(), 10);
    assert!(rows.iter().all(|r| r.state == SpendState::Settled));
    assert!(bob.ledger().committed(0).await.unwrap().total_usd <= cap);
}

/// The last line of `tapgate pay`'s stderr: what it paid (log lines may come before it).
fn paid_line(out: &std::process::Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stderr);
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// `tapgate` run in `dir` (so no config/tapgate.toml is picked up), its state in `dir/data`.
fn tapgate(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tapgate"))
        .args(args)
        .args(["--set", &format!("data_dir={}", dir.join("data").display())])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tapgate_pay_prints_the_body_pays_once_and_wallet_spent_shows_it() {
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}/v1/time", w.gateway);
    let file = w.file.display().to_string();
    let pay = [
        "pay",
        &url,
        "--network",
        &file,
        "--node",
        "alice",
        "--rail",
        "asset",
        "--max-usd",
        "1",
        "-H",
        "Accept: application/json",
    ];
    let first = tokio::task::spawn_blocking({
        let (dir, pay) = (dir.path().to_owned(), pay.map(str::to_owned));
        move || tapgate(&dir, &pay.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(body["tapgate"]["x-tapgate-tier"], "0");
    let said = paid_line(&first);
    assert_eq!(said["status"], 200);
    assert_eq!(said["paid"]["rail"], "asset");
    // The token never reaches the terminal.
    let text = String::from_utf8_lossy(&first.stderr);
    assert!(
        !text.contains("L402 ") && !text.contains("macaroon"),
        "{text}"
    );

    let second = tokio::task::spawn_blocking({
        let (dir, pay) = (dir.path().to_owned(), pay.map(str::to_owned));
        move || tapgate(&dir, &pay.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    let said = paid_line(&second);
    assert_eq!(
        (said["paid"].is_null(), &said["reused_token"]),
        (true, &serde_json::json!(true))
    );

    let spent = tapgate(dir.path(), &["wallet", "spent"]);
    let spent: serde_json::Value = serde_json::from_slice(&spent.stdout).unwrap();
    let rows = spent["spends"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["state"], "settled");
    assert_eq!(rows[0]["rail"], "asset");
    assert_eq!(rows[0]["url"], url.as_str());
    assert_eq!(spent["committed_total_usd"], rows[0]["usd"]);

    // `token list` shows the cached token, what it cost, and neither of its secrets.
    let listed = tapgate(dir.path(), &["token", "list"]);
    let tokens: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let tokens = tokens["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let t = &tokens[0];
    assert_eq!(t["origin"], format!("http://{}", w.gateway).as_str());
    assert_eq!(t["service"], "time");
    assert_eq!(t["expired"], false);
    assert_eq!(t["payment_hash"], rows[0]["payment_hash"]);
    assert_eq!(t["token_id"].as_str().map(str::len), Some(64));
    assert_eq!(t["paid"]["rail"], "asset");
    assert_eq!(t["paid"]["usd"], rows[0]["usd"]);
    assert_eq!(t["paid"]["id"], rows[0]["id"]);
    let ledger = ClientLedger::open(&dir.path().join("data").join(FILE_NAME))
        .await
        .unwrap();
    let cached = ledger
        .token(
            &format!("http://{}", w.gateway),
            "time",
            SystemClock.now_unix(),
        )
        .await
        .unwrap()
        .expect("the token is cached");
    let preimage_hex = hex::encode(cached.preimage.expose());
    for out in [&listed.stdout, &listed.stderr] {
        let text = String::from_utf8_lossy(out);
        assert!(
            !text.contains(&cached.macaroon) && !text.contains(&preimage_hex),
            "a secret in `token list`'s output: {text}"
        );
    }
}

/// The lnd adapter's `TrackPaymentV2` against simnet: a payment made is found with its
/// preimage, a hash never paid is "not initiated", and the client's follow-up finds nothing
/// open after a clean run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_is_followed_up_by_its_hash() {
    use tapgate::l402::PaymentHash;
    use tapgate::lightning::traits::{Invoices, Payments};
    use tapgate::lightning::types::{InvoiceRequest, TrackedPayment};
    let w = world().await;
    let merchant = w.node("merchant");
    let inv = merchant
        .lnd
        .create_invoice(&InvoiceRequest {
            value_msat: 21_000,
            memo: "track".into(),
            expiry_secs: 600,
        })
        .await
        .unwrap();
    let bob = w.node("bob");
    let paid = bob.pay_sats(&inv.payment_request, 10_000).await.unwrap();
    match bob.track_payment(&inv.payment_hash).await.unwrap() {
        TrackedPayment::Succeeded(out) => {
            assert_eq!(out.preimage, paid.preimage);
            assert_eq!(out.value_msat, 21_000);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        bob.track_payment(&PaymentHash([0xab; 32])).await.unwrap(),
        TrackedPayment::NotInitiated
    );
    let client = w
        .client("bob", "bob", bob_holdings(&w).await, budget())
        .await;
    let done = client.follow_up(true).await.unwrap();
    assert_eq!((done.settled, done.released, done.still_unknown), (0, 0, 0));
}
