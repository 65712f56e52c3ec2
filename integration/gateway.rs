//! The gateway end to end: `tapgate::app::gateway::build` over a simnet (and, where
//! `TAPGATE_REGTEST_NETWORK` names one, the real regtest network), the sample upstream behind
//! it, real HTTP/1.1 and HTTP/2 clients in front, and alice (stablecoin) and bob (sats) paying.
//!
//! Each test starts its own network and gateway on 127.0.0.1:0. Time on simnet is a manual
//! clock shared by the network and the gateway, so quotes and tokens expire without sleeping.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{Reply, ShiftedClock};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tapgate::app::gateway::Built;
use tapgate::app::{NetworkAddresses, Node};
use tapgate::clock::Clock;
use tapgate::l402::header::parse_challenge;
use tapgate::l402::{Identifier, Macaroon, Preimage};
use tapgate::lightning::traits::Payments;
use tapgate::lightning::types::AssetRef;
use tapgate::simnet::model::NodeId;
use tapgate::simnet::run::RunningSimnet;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A fee cap for test payments: ample, the networks charge nothing.
const MAX_FEE_MSAT: u64 = 10_000;

/// The catalogue the tests sell, on the sample upstream at `up`. The two token services cost
/// $0.50, above the 354 sat an asset HTLC must carry, so alice can pay either with the
/// stablecoin; below that a stablecoin holder buys a prepaid balance (`echo`).
fn services_toml(up: SocketAddr) -> String {
    format!(
        r#"
[[services]]
name = "weather"
paths = ["/v1/weather", "/v1/weather/*"]
upstream = "http://{up}"
price_usd = "0.50"
settlement = "sats"
methods = ["GET"]
tiers = [{{ name = "pro", paths = ["/v1/weather/pro"], price_usd = "0.05", capabilities = ["forecast"] }}]

[[services]]
name = "time"
paths = ["/v1/time"]
upstream = "http://{up}"
price_usd = "0.50"
settlement = {{ asset = "default" }}
methods = ["GET"]

[[services]]
name = "echo"
paths = ["/v1/echo"]
upstream = "http://{up}"
price_usd = "0.02"
settlement = {{ asset = "default" }}
methods = ["POST"]
small_price = "prepaid"
prepaid_usd = "1.00"

[[services]]
name = "dead"
paths = ["/dead/*"]
upstream = "http://127.0.0.1:1"
price_usd = "0.01"
settlement = "sats"
free_paths = ["/dead/*"]

[[services]]
name = "lag"
paths = ["/lag/*"]
upstream = "http://{lag}"
price_usd = "0.01"
settlement = "sats"
free_paths = ["/lag/*"]

[[services]]
name = "slow"
paths = ["/slow/*"]
upstream = "http://{slow}"
price_usd = "0.01"
settlement = "sats"
free_paths = ["/slow/*"]
timeout_secs = 1
"#,
        slow = slow_upstream(),
        lag = lagging_upstream(std::time::Duration::from_millis(400)),
    )
}

/// A server that accepts connections and never answers.
fn slow_upstream() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            held.push(s);
        }
    });
    addr
}

struct Gw {
    addr: SocketAddr,
    built: Built,
    client: Client<HttpConnector, Full<Bytes>>,
    alice: Node,
    bob: Node,
    asset: AssetRef,
    edge: String,
    clock: Arc<ShiftedClock>,
    running: Option<RunningSimnet>,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Gw {
    /// A simnet and a gateway over it; `follow`: run the settlement tracker.
    async fn simnet(follow: bool) -> Self {
        Self::simnet_with(follow, "").await
    }

    /// A simnet and a gateway over it, with `gateway` lines added to `[gateway]`.
    async fn simnet_with(follow: bool, gateway: &str) -> Self {
        let clock = Arc::new(ShiftedClock::default());
        let (running, dir) = common::start_simnet_clocked(Some(clock.clone())).await;
        let file = running.network_file().to_owned();
        Self::over(&file, dir, Some(running), clock, follow, gateway).await
    }

    /// A gateway over the real regtest network, if one is named.
    async fn regtest() -> Option<Self> {
        let file = std::env::var_os("TAPGATE_REGTEST_NETWORK")?;
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ShiftedClock::default());
        Some(Self::over(std::path::Path::new(&file), dir, None, clock, true, "").await)
    }

    async fn over(
        file: &std::path::Path,
        dir: tempfile::TempDir,
        running: Option<RunningSimnet>,
        clock: Arc<ShiftedClock>,
        follow: bool,
        gateway: &str,
    ) -> Self {
        let stop = CancellationToken::new();
        let (addr, built) = common::start_gateway(
            file,
            dir.path(),
            services_toml,
            clock.clone(),
            follow,
            gateway,
            &stop,
        )
        .await;
        let addrs = NetworkAddresses::from_network_file(file).unwrap();
        Self {
            addr,
            client: Client::builder(TokioExecutor::new()).build_http(),
            alice: Node::connect(addrs.node("alice").unwrap()).unwrap(),
            bob: Node::connect(addrs.node("bob").unwrap()).unwrap(),
            asset: addrs.asset.clone().unwrap(),
            edge: addrs.edge_pubkey.clone().unwrap(),
            built,
            clock,
            running,
            stop,
            _dir: dir,
        }
    }

    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let request = b.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
        common::send(&self.client, request).await
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", path, headers, "").await
    }

    /// Pays a challenge as `payer` ("alice": with the stablecoin; "bob": sats) and returns the
    /// `Authorization` value.
    async fn pay(&self, payer: &str, r: &Reply) -> String {
        let www = r.headers["www-authenticate"].to_str().unwrap();
        let ch = parse_challenge(www).unwrap();
        let outcome = match payer {
            "alice" => self
                .alice
                .pay_with_asset(&ch.invoice, &self.asset, &self.edge, MAX_FEE_MSAT)
                .await
                .unwrap(),
            _ => self.bob.pay_sats(&ch.invoice, MAX_FEE_MSAT).await.unwrap(),
        };
        format!(
            "L402 {}:{}",
            ch.macaroon.to_base64(),
            hex::encode(outcome.preimage.expose())
        )
    }

    fn set_down(&self, node: NodeId, down: bool) {
        if let Some(r) = &self.running {
            r.model().update(|m| m.set_down(node, down));
        }
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn reason(r: &Reply) -> &str {
    r.body["error"]["code"].as_str().unwrap_or("")
}

async fn both_rails_both_payers(gw: &Gw) {
    for (path, rail) in [("/v1/weather", "sats"), ("/v1/time", "asset")] {
        for payer in ["bob", "alice"] {
            let r = gw.get(path, &[]).await;
            assert_eq!(
                r.status,
                StatusCode::PAYMENT_REQUIRED,
                "{path}: {:?}",
                r.body
            );
            assert_eq!(r.body["rail"], rail);
            assert_eq!(reason(&r), "payment_required");
            assert!(
                r.headers["link"]
                    .to_str()
                    .unwrap()
                    .contains("l402-manifest")
            );
            // The JSON agrees with the invoice.
            let ch = parse_challenge(r.headers["www-authenticate"].to_str().unwrap()).unwrap();
            assert_eq!(r.body["invoice"], ch.invoice.as_str());
            let id = Identifier::decode(ch.macaroon.identifier()).unwrap();
            assert_eq!(r.body["payment_hash"], hex::encode(id.payment_hash.0));
            assert_eq!(r.body["token"]["id"], id.token_id.to_string());
            let auth = gw.pay(payer, &r).await;
            let ok = gw.get(path, &[("authorization", &auth)]).await;
            assert_eq!(
                ok.status,
                StatusCode::OK,
                "{payer} on {path}: {:?}",
                ok.body
            );
            // The upstream saw the token id and tier (the credential itself is never forwarded:
            // integration/proxy.rs checks that at the upstream).
            assert_eq!(
                ok.body["tapgate"]["x-tapgate-token-id"],
                id.token_id.to_string()
            );
            assert_eq!(ok.body["tapgate"]["x-tapgate-tier"], "0");
            let receipt = ok.headers["tapgate-receipt"].to_str().unwrap();
            assert!(receipt.contains(&format!("rail={rail}")), "{receipt}");
            // And again, with the same token: one payment, many calls.
            let again = gw.get(path, &[("authorization", &auth)]).await;
            assert_eq!(again.status, StatusCode::OK);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_and_bob_go_from_402_to_200_on_both_rails() {
    let gw = Gw::simnet(true).await;
    both_rails_both_payers(&gw).await;
    // Four tokens per rail were paid, and the metrics say so by rail.
    let m = &gw.built.metrics;
    assert_eq!(
        m.get(
            "tapgate_payments_total",
            "service=\"weather\",rail=\"sats\""
        ),
        2
    );
    assert_eq!(
        m.get("tapgate_payments_total", "service=\"time\",rail=\"asset\""),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_real_regtest_network_too() {
    let Some(gw) = Gw::regtest().await else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs against the real network: set TAPGATE_REGTEST_NETWORK"
        );
        eprintln!("TAPGATE_REGTEST_NETWORK not set: simnet only");
        return;
    };
    both_rails_both_payers(&gw).await;
    prepaid_runs_out_exactly(&gw, 3).await;
}

async fn prepaid_runs_out_exactly(gw: &Gw, sample_calls: usize) {
    let r = gw.send("POST", "/v1/echo", &[], "hi").await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{:?}", r.body);
    assert_eq!(r.body["prepaid"]["balance_usd"], "1.00");
    assert_eq!(r.body["prepaid"]["price_per_call_usd"], "0.02");
    assert_eq!(r.body["rail"], "asset");
    let auth = gw.pay("alice", &r).await;
    // An idempotent retry is debited once.
    let h = [("authorization", auth.as_str()), ("idempotency-key", "k1")];
    let first = gw.send("POST", "/v1/echo", &h, "one").await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(first.headers["tapgate-balance-usd"], "0.98");
    let retry = gw.send("POST", "/v1/echo", &h, "one").await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.headers["tapgate-balance-usd"], "0.98");
    assert!(
        retry.headers["tapgate-receipt"]
            .to_str()
            .unwrap()
            .contains("replayed=true")
    );
    // 49 calls are left in $0.98 at $0.02.
    let h = [("authorization", auth.as_str())];
    for i in 1..=49u32 {
        let r = gw.send("POST", "/v1/echo", &h, "x").await;
        assert_eq!(r.status, StatusCode::OK, "call {i}: {:?}", r.body);
        if (i as usize) <= sample_calls || i == 49 {
            let left = rust_decimal::Decimal::new(98 - 2 * i64::from(i), 2);
            assert_eq!(
                r.headers["tapgate-balance-usd"],
                left.to_string().as_str(),
                "call {i}"
            );
        }
    }
    let last = gw.send("POST", "/v1/echo", &h, "x").await;
    assert_eq!(last.status, StatusCode::PAYMENT_REQUIRED, "{:?}", last.body);
    assert_eq!(reason(&last), "balance_exhausted");
    assert!(last.headers.contains_key("www-authenticate"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepaid_balance_debits_exactly_and_runs_out_exactly() {
    let gw = Gw::simnet(true).await;
    prepaid_runs_out_exactly(&gw, 49).await;
    let m = &gw.built.metrics;
    assert_eq!(
        m.get("tapgate_prepaid_debits_total", "service=\"echo\""),
        50
    );
    assert_eq!(
        m.get("tapgate_prepaid_debits_usd_micro_total", "service=\"echo\""),
        1_000_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_quote_gives_a_fresh_challenge() {
    let gw = Gw::simnet(true).await;
    let first = gw.get("/v1/time", &[]).await;
    let expires = first.body["quote"]["expires_at"].as_u64().unwrap();
    assert!(first.body["invoice_expires_at"].as_u64().unwrap() <= expires);
    // The quote and its invoice expire; paying now fails, and the next request is priced at a
    // fresh quote.
    gw.clock.set(expires + 1);
    let ch = parse_challenge(first.headers["www-authenticate"].to_str().unwrap()).unwrap();
    assert!(gw.bob.pay_sats(&ch.invoice, MAX_FEE_MSAT).await.is_err());
    let second = gw.get("/v1/time", &[]).await;
    assert_eq!(second.status, StatusCode::PAYMENT_REQUIRED);
    assert!(second.body["quote"]["expires_at"].as_u64().unwrap() > expires);
    assert_ne!(second.body["invoice"], first.body["invoice"]);
    assert_ne!(
        second.body["quote"]["quote_id"],
        first.body["quote"]["quote_id"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_node_down_new_challenges_get_503_and_settled_tokens_keep_working() {
    let gw = Gw::simnet(true).await;
    let r = gw.get("/v1/weather", &[]).await;
    let auth = gw.pay("bob", &r).await;
    assert_eq!(
        gw.get("/v1/weather", &[("authorization", &auth)])
            .await
            .status,
        StatusCode::OK
    );
    gw.set_down(NodeId::Merchant, true);
    let refused = gw.get("/v1/time", &[]).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        refused.body
    );
    assert_eq!(refused.headers["retry-after"], "5");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("retry")
    );
    let ok = gw.get("/v1/weather", &[("authorization", &auth)]).await;
    assert_eq!(
        ok.status,
        StatusCode::OK,
        "a settled token works while the node is down"
    );
    gw.set_down(NodeId::Merchant, false);
    assert_eq!(
        gw.get("/v1/time", &[]).await.status,
        StatusCode::PAYMENT_REQUIRED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_share_one_rfq() {
    let gw = Arc::new(Gw::simnet(true).await);
    let orders = |gw: &Gw| {
        let now = gw.clock.now_unix();
        gw.running.as_ref().unwrap().model().read(|m| {
            m.peer_accepted_quotes(NodeId::Merchant, now)
                .unwrap()
                .buy
                .len()
        })
    };
    assert_eq!(orders(&gw), 0);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let gw = Arc::clone(&gw);
            tokio::spawn(async move { gw.get("/v1/weather", &[]).await.status })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::PAYMENT_REQUIRED);
    }
    assert_eq!(orders(&gw), 1, "20 concurrent challenges, one RFQ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_race_never_yields_a_second_challenge() {
    // No settlement stream: the tracker has seen nothing when the paid token arrives.
    let gw = Gw::simnet(false).await;
    let r = gw.get("/v1/weather", &[]).await;
    let auth = gw.pay("bob", &r).await;
    assert!(!gw.built.tracker.seen(&payment_hash_of(&auth)));
    let ok = gw.get("/v1/weather", &[("authorization", &auth)]).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(gw.built.tracker.lookups(), 1, "one direct lookup");
    let again = gw.get("/v1/weather", &[("authorization", &auth)]).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(gw.built.tracker.lookups(), 1, "then memory");
}

fn payment_hash_of(auth: &str) -> tapgate::l402::PaymentHash {
    let cred = tapgate::l402::header::parse_credential(auth).unwrap();
    Identifier::decode(cred.macaroons[0].identifier())
        .unwrap()
        .payment_hash
}

fn attenuate(auth: &str, caveat: &str) -> String {
    let (mac, pre) = auth.trim_start_matches("L402 ").split_once(':').unwrap();
    let mut m = Macaroon::from_base64(mac).unwrap();
    m.add_first_party_caveat(caveat.as_bytes()).unwrap();
    format!("L402 {}:{pre}", m.to_base64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_reason_is_reachable() {
    let gw = Gw::simnet(true).await;
    let mut seen = HashMap::new();
    let mut expect = |r: Reply, want: &str, status: StatusCode| {
        assert_eq!(r.status, status, "{want}: {:?}", r.body);
        assert_eq!(reason(&r), want, "{:?}", r.body);
        if status == StatusCode::UNAUTHORIZED && want != "unpaid" {
            assert!(
                r.headers.contains_key("www-authenticate"),
                "{want}: a fresh challenge"
            );
        }
        seen.insert(want.to_owned(), ());
    };
    let r = gw.get("/v1/weather", &[]).await;
    let weather = gw.pay("bob", &r).await;
    assert_eq!(
        gw.get("/v1/weather", &[("authorization", &weather)])
            .await
            .status,
        StatusCode::OK
    );

    expect(
        gw.get("/v1/weather", &[("authorization", "L402 garbage")])
            .await,
        "invalid",
        StatusCode::UNAUTHORIZED,
    );
    let (mac, _) = weather.split_once(':').unwrap();
    let wrong = format!("{mac}:{}", hex::encode([9u8; 32]));
    expect(
        gw.get("/v1/weather", &[("authorization", &wrong)]).await,
        "bad_preimage",
        StatusCode::UNAUTHORIZED,
    );
    expect(
        gw.get("/v1/time", &[("authorization", &weather)]).await,
        "wrong_service",
        StatusCode::UNAUTHORIZED,
    );
    expect(
        gw.get("/v1/weather/pro", &[("authorization", &weather)])
            .await,
        "wrong_tier",
        StatusCode::UNAUTHORIZED,
    );
    let post_only = attenuate(&weather, "weather_methods=POST");
    expect(
        gw.get("/v1/weather", &[("authorization", &post_only)])
            .await,
        "wrong_method",
        StatusCode::UNAUTHORIZED,
    );

    // Prepaid: a budget caveat and a call cap narrow a sub-agent's token.
    let r = gw.send("POST", "/v1/echo", &[], "").await;
    let echo = gw.pay("alice", &r).await;
    let budget = attenuate(&echo, "echo_budget_usd=0.05");
    for _ in 0..2 {
        assert_eq!(
            gw.send("POST", "/v1/echo", &[("authorization", &budget)], "")
                .await
                .status,
            StatusCode::OK
        );
    }
    expect(
        gw.send("POST", "/v1/echo", &[("authorization", &budget)], "")
            .await,
        "over_budget",
        StatusCode::UNAUTHORIZED,
    );
    let capped = attenuate(&echo, "echo_max_calls=1");
    assert_eq!(
        gw.send("POST", "/v1/echo", &[("authorization", &capped)], "")
            .await
            .status,
        StatusCode::OK
    );
    expect(
        gw.send("POST", "/v1/echo", &[("authorization", &capped)], "")
            .await,
        "too_many_calls",
        StatusCode::UNAUTHORIZED,
    );

    // Unpaid: a token whose invoice (a hold invoice, so its preimage is known) is open.
    let preimage = Preimage::from_bytes([42; 32]);
    let merchant =
        NetworkAddresses::from_network_file(gw.running.as_ref().unwrap().network_file()).unwrap();
    let merchant = Node::connect(merchant.node("merchant").unwrap()).unwrap();
    merchant
        .lnd
        .create_hold_invoice(
            &preimage.payment_hash(),
            &tapgate::lightning::types::InvoiceRequest {
                value_msat: 1000,
                memo: "hold".into(),
                expiry_secs: 600,
            },
        )
        .await
        .unwrap();
    let mint = tapgate::mint::Mint::new(Arc::clone(gw.built.gate.store()), "tapgate");
    let req =
        tapgate::mint::MintRequest::new(preimage.payment_hash(), &["weather".into()], &[]).unwrap();
    let minted = mint.mint(&req).await.unwrap();
    let unpaid = format!(
        "L402 {}:{}",
        minted.macaroon.to_base64(),
        hex::encode(preimage.expose())
    );
    let r = gw.get("/v1/weather", &[("authorization", &unpaid)]).await;
    assert!(
        !r.headers
            .get("www-authenticate")
            .is_some_and(|v| v.to_str().unwrap().contains("invoice=")),
        "no second invoice for a token that may be paid"
    );
    expect(r, "unpaid", StatusCode::UNAUTHORIZED);

    // Expired: the token's lifetime (a day) passes.
    gw.clock.advance(86_400);
    expect(
        gw.get("/v1/weather", &[("authorization", &weather)]).await,
        "expired",
        StatusCode::UNAUTHORIZED,
    );
    // Revoked.
    let r = gw.get("/v1/weather", &[]).await;
    let fresh = gw.pay("bob", &r).await;
    let id = Identifier::decode(
        tapgate::l402::header::parse_credential(&fresh)
            .unwrap()
            .macaroons[0]
            .identifier(),
    )
    .unwrap();
    assert!(gw.built.gate.revoke(&id.token_id).await.unwrap());
    expect(
        gw.get("/v1/weather", &[("authorization", &fresh)]).await,
        "revoked",
        StatusCode::UNAUTHORIZED,
    );

    // And the exhausted balance is the prepaid test's.
    let mut names: Vec<_> = seen.into_keys().collect();
    names.sort();
    assert_eq!(names.len(), 10, "{names:?}");
    for r in tapgate::mint::gate::Reason::ALL {
        if r != tapgate::mint::gate::Reason::BalanceExhausted {
            assert!(
                names.contains(&r.as_str().to_owned()),
                "{} not reached",
                r.as_str()
            );
        }
    }
    assert!(
        gw.built
            .metrics
            .get("tapgate_refusals_total", "reason=\"revoked\"")
            >= 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_upstream_gives_502_and_a_slow_one_504() {
    let gw = Gw::simnet(true).await;
    let dead = gw.get("/dead/x", &[]).await;
    assert_eq!(dead.status, StatusCode::BAD_GATEWAY, "{:?}", dead.body);
    assert_eq!(dead.body["error"]["code"], "upstream_unreachable");
    let slow = gw.get("/slow/x", &[]).await;
    assert_eq!(slow.status, StatusCode::GATEWAY_TIMEOUT, "{:?}", slow.body);
    assert_eq!(slow.body["error"]["code"], "upstream_timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_client_gets_its_challenge_as_grpc_status() {
    let gw = Gw::simnet(true).await;
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let req = Request::builder()
        .method("POST")
        .uri(format!("http://{}/v1/weather/grpc.Weather/Today", gw.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let h = resp.headers().clone();
    assert_eq!(h["grpc-status"], "13");
    assert_eq!(h["grpc-message"], "payment required");
    let ch = parse_challenge(h["www-authenticate"].to_str().unwrap()).unwrap();
    assert!(ch.invoice.starts_with("lnbcrt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_usd_and_msat_prices_and_quotes_a_bundle() {
    let gw = Gw::simnet(true).await;
    let m = gw.get("/.well-known/l402.json", &[]).await;
    assert_eq!(m.status, StatusCode::OK);
    assert_eq!(m.body["currencies"], serde_json::json!(["msat", "usd"]));
    assert_eq!(
        m.body["provider"]["node_pubkey"],
        gw.built.node_pubkey.as_str()
    );
    let weather = &m.body["services"][0];
    assert_eq!(weather["name"], "weather");
    let res = &weather["resources"][0];
    assert_eq!(res["pricing"]["price_usd"], "0.50");
    // $0.50 at simnet's buy rate ($99,000/BTC): 500,000 units, tapd's truncating conversion.
    let rate = tapgate::pricing::FixedPoint::from_parts("99000000000", 0).unwrap();
    let msat = tapgate::pricing::price_call(rust_decimal::Decimal::new(50, 2), 6, &rate)
        .unwrap()
        .msat;
    assert_eq!(res["pricing"]["price_msat"], msat);
    assert_eq!(msat, 505_050);
    // A quote for a $5 prepaid balance of echo.
    let q = gw
        .send(
            "POST",
            "/l402/quote",
            &[("content-type", "application/json")],
            r#"{"service":"echo","prepaid_usd":"5.00"}"#,
        )
        .await;
    assert_eq!(q.status, StatusCode::OK, "{:?}", q.body);
    assert_eq!(q.body["prepaid"]["balance_usd"], "5.00");
    assert_eq!(q.body["price_fiat"]["usd"], "5.00");
    assert!(q.body["quote_expiry"].as_u64().is_some());
    let auth = {
        let www = q.body["www_authenticate"].as_str().unwrap();
        let ch = parse_challenge(www).unwrap();
        let out = gw
            .alice
            .pay_with_asset(&ch.invoice, &gw.asset, &gw.edge, MAX_FEE_MSAT)
            .await
            .unwrap();
        format!(
            "L402 {}:{}",
            ch.macaroon.to_base64(),
            hex::encode(out.preimage.expose())
        )
    };
    let r = gw
        .send("POST", "/v1/echo", &[("authorization", &auth)], "")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["tapgate-balance-usd"], "4.98");
    let bad = gw
        .send("POST", "/l402/quote", &[], r#"{"service":"nope"}"#)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["error"]["code"], "unknown_service");
}

#[path = "clients/foreign.rs"]
mod foreign;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_l402_clients_read_the_gateways_402_and_their_credential_is_honoured() {
    if !foreign::available() {
        return;
    }
    let gw = Gw::simnet(true).await;
    for path in ["/v1/weather", "/v1/time"] {
        let r = gw.get(path, &[]).await;
        assert_eq!(
            r.status,
            StatusCode::PAYMENT_REQUIRED,
            "{path}: {:?}",
            r.body
        );
        let www = r.headers["www-authenticate"].to_str().unwrap().to_owned();
        let parsed = foreign::parse_with_foreign_clients(&www);
        // lsat-js and Python's bolt11 read the same invoice the JSON body describes.
        assert_eq!(
            parsed.lsat_js.payment_hash,
            r.body["payment_hash"].as_str().unwrap()
        );
        assert_eq!(
            parsed.bolt11_py.payment_hash,
            r.body["payment_hash"].as_str().unwrap()
        );
        assert_eq!(parsed.bolt11_py.amount_msat, r.body["msat"].as_u64());
        assert_eq!(parsed.bolt11_py.payee, gw.built.node_pubkey);
        assert_eq!(
            parsed.lsat_js.identifier.token_id,
            r.body["token"]["id"].as_str().unwrap()
        );
        // bob pays, and the credential lsat-js builds from the preimage gets through.
        let ch = parse_challenge(&www).unwrap();
        let out = gw.bob.pay_sats(&ch.invoice, MAX_FEE_MSAT).await.unwrap();
        let auth = foreign::lsat_js_authorization(&www, &hex::encode(out.preimage.expose()));
        assert!(auth.starts_with("LSAT "), "{auth}");
        let ok = gw.get(path, &[("authorization", &auth)]).await;
        assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_grpc_service_lists_quotes_revokes_and_reports_revenue() {
    use tapgate::admin::grpc::proto::admin_client::AdminClient;
    use tapgate::admin::grpc::{self as admin_grpc, AdminCredentials, proto};

    let gw = Gw::simnet(true).await;
    // Revenue to report: one token on each rail.
    for (path, payer) in [("/v1/weather", "bob"), ("/v1/time", "alice")] {
        let r = gw.get(path, &[]).await;
        let auth = gw.pay(payer, &r).await;
        assert_eq!(
            gw.get(path, &[("authorization", &auth)]).await.status,
            StatusCode::OK
        );
    }
    let creds = Arc::new(AdminCredentials::load_or_create(gw._dir.path()).unwrap());
    let mac = hex::encode(std::fs::read(&creds.macaroon_path).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = listener.local_addr().unwrap();
    let state = tapgate::admin::AdminState {
        metrics: Arc::clone(&gw.built.metrics),
        auth: Arc::clone(&gw.built.gateway.auth),
        grpc: admin_grpc::service(Arc::clone(&gw.built.gate), creds),
    };
    tokio::spawn(tapgate::admin::run_http(listener, state, gw.stop.clone()));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{admin_addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let with_mac = |mut req: tonic::Request<()>| {
        req.metadata_mut().insert("macaroon", mac.parse().unwrap());
        Ok(req)
    };
    let mut admin = AdminClient::with_interceptor(channel.clone(), with_mac);
    let services = admin
        .list_services(proto::ListServicesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(services.services[0].name, "weather");
    assert_eq!(services.services[1].settlement, "asset");
    assert!(services.services[1].price_units >= 500_000);

    let q = admin
        .get_quote(proto::GetQuoteRequest {
            service: "echo".into(),
            tier: 0,
            prepaid_usd: "2.00".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(q.charge_usd, "2.00");
    assert_eq!(q.rail, "asset");
    assert!(q.www_authenticate.contains(&q.invoice));

    let revenue = admin
        .revenue(proto::RevenueRequest {})
        .await
        .unwrap()
        .into_inner()
        .rows;
    let row = |svc: &str| revenue.iter().find(|r| r.service == svc).unwrap().clone();
    assert_eq!(
        (
            row("weather").rail.as_str(),
            row("weather").tokens,
            row("weather").usd.as_str()
        ),
        ("sats", 1, "0.50")
    );
    assert_eq!(
        (
            row("time").rail.as_str(),
            row("time").tokens,
            row("time").units
        ),
        ("asset", 1, 500_000)
    );
    assert!(row("weather").sats > 0);

    let tokens = admin
        .list_tokens(proto::ListTokensRequest {
            limit: 10,
            settled_only: true,
        })
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert_eq!(tokens.len(), 2);
    let revoked = admin
        .revoke_token(proto::RevokeTokenRequest {
            token_id: tokens[0].token_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(revoked.revoked);

    // Without the macaroon, or with another, nothing is answered.
    let mut anon = AdminClient::new(channel);
    let err = anon
        .list_services(proto::ListServicesRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    // The plain-HTTP side of the same port.
    let (status, body) = {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let r = client
            .request(
                Request::get(format!("http://{admin_addr}/metrics"))
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
            .unwrap();
        let s = r.status();
        (
            s,
            String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap(),
        )
    };
    assert_eq!(status, StatusCode::OK);
    // Every series carries the replica's name (by default the host name and the listen port).
    assert!(
        body.lines()
            .any(|l| l.starts_with("tapgate_payments_units_total{replica=\"")
                && l.ends_with(",service=\"time\",rail=\"asset\"} 500000")),
        "{body}"
    );
}

/// An upstream that answers every request `ok` after `delay`.
fn lagging_upstream(delay: std::time::Duration) -> SocketAddr {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                std::thread::sleep(delay);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_request_in_flight_finish_within_the_bound() {
    let gw = Gw::simnet(true).await;
    // The gateway's own server on a fresh socket, with its own shutdown.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let conns = tokio_util::task::TaskTracker::new();
    let server = tokio::spawn(tapgate::gateway::server::run(
        listener,
        Arc::clone(&gw.built.gateway),
        stop.clone(),
        conns.clone(),
    ));
    let client = gw.client.clone();
    let in_flight = tokio::spawn(async move {
        let r = client
            .request(
                Request::get(format!("http://{addr}/lag/x"))
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = r.status();
        (status, r.into_body().collect().await.unwrap().to_bytes())
    });
    // The upstream takes 400 ms; stop after 100.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    stop.cancel();
    server.await.unwrap();
    conns.close();
    tokio::time::timeout(std::time::Duration::from_secs(5), conns.wait())
        .await
        .expect("the connection drains within the bound");
    let (status, body) = in_flight.await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok"[..]));
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(200),
        "it waited for the upstream"
    );
    // Nothing new is accepted.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sats_prices_can_come_from_the_oracle_or_a_fixed_rate() {
    async fn weather(gw: &Gw) -> Value {
        let r = gw.get("/v1/weather", &[]).await;
        assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{:?}", r.body);
        r.body
    }
    let edge = weather(&Gw::simnet(true).await).await;
    let oracle = weather(&Gw::simnet_with(true, "rate_source = \"oracle\"").await).await;
    let fixed = weather(&Gw::simnet_with(true, "usd_per_btc = \"50000\"").await).await;
    assert_eq!(edge["quote"]["source"], "edge_rfq");
    assert_eq!(oracle["quote"]["source"], "oracle");
    assert_eq!(fixed["quote"]["source"], "fixed");
    // The oracle's sale side is the rate the edge's buy quotes carry.
    assert_eq!(oracle["quote"]["usd_per_btc"], edge["quote"]["usd_per_btc"]);
    assert_eq!(oracle["msat"], edge["msat"]);
    // $0.50 at $50,000/BTC: exactly 1,000,000 msat; a fixed rate never expires.
    assert_eq!(fixed["msat"], 1_000_000);
    assert_eq!(fixed["quote"]["expires_at"], Value::Null);
}
