//! Issue 10's faults, on simnet and the PostgreSQL server `TAPGATE_TEST_POSTGRES_URL` names:
//!
//! - the replica that follows the settlement stream is killed (`SIGKILL`, two `tapgate serve`
//!   processes on one database) in the middle of a run of payments: the other takes the stream
//!   over within seconds, serves every paid token, and the database records every payment once,
//!   its cursor covering them all;
//! - the database restarts under a load of prepaid debits: while it is down the gateway answers
//!   `503` with a JSON body and `Retry-After`, it recovers by itself once the server is back, and
//!   the balance is exact (no debit applied twice, none lost);
//! - `SIGTERM` to one `tapgate serve` under a load of prepaid calls through a slow upstream:
//!   every call that had reached the upstream gets its whole `200` (the others no answer at
//!   all, never another status or a body cut short), the process exits 0 within its drain
//!   bound, and the database holds the debits of exactly the `200`s, each idempotency key
//!   settled with the balance its `200` showed (nothing half-written).
//!
//! The second restarts the shared server (`.ci/postgres stop|start TAPGATE_TEST_POSTGRES_DIR`),
//! so no two of them run at once ([`SERVER`]); cargo runs test binaries one after another.
//! Without `TAPGATE_TEST_POSTGRES_URL` (or, for the second, `TAPGATE_TEST_POSTGRES_DIR`) a test
//! says so and passes, except under CI, where it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Reply;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::{Connection, Row};
use tapgate::app::{NetworkAddresses, Node};
use tapgate::l402::header::parse_challenge;
use tapgate::lightning::traits::Payments;
use tokio_util::sync::CancellationToken;

/// Held by each test for its whole run: the second restarts the server the first uses.
static SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const MAX_FEE_MSAT: u64 = 10_000;

/// The longest one HTTP exchange, payment or child's start may take before the test fails:
/// well above the PostgreSQL store's wait for a connection (3 s while serving), so a `503` has time to arrive.
const PATIENCE: Duration = Duration::from_secs(30);

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// One request to `addr`, failing the test if no answer comes within [`PATIENCE`].
async fn call(
    client: &HttpClient,
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
) -> Reply {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    let req = b.body(Full::new(Bytes::from_static(b"x"))).unwrap();
    tokio::time::timeout(PATIENCE, common::send(client, req))
        .await
        .unwrap_or_else(|_| panic!("{method} {path} on {addr}: no answer within {PATIENCE:?}"))
}

/// A `402`'s challenge paid by `pay`: the `Authorization` value and the payment hash.
async fn buy<F, Fut>(reply: &Reply, pay: F) -> (String, [u8; 32])
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<
            Output = Result<
                tapgate::lightning::types::PaymentOutcome,
                tapgate::lightning::error::BackendError,
            >,
        >,
{
    assert_eq!(
        reply.status,
        StatusCode::PAYMENT_REQUIRED,
        "{:?}",
        reply.body
    );
    let ch = parse_challenge(reply.headers["www-authenticate"].to_str().unwrap()).unwrap();
    let paid = tokio::time::timeout(PATIENCE, pay(ch.invoice.clone()))
        .await
        .expect("the payment settles in time")
        .unwrap();
    let auth = format!(
        "L402 {}:{}",
        ch.macaroon.to_base64(),
        hex::encode(paid.preimage.expose())
    );
    (auth, paid.payment_hash.0)
}

/// Waits up to `within` for `cond` to hold, checking every 100 ms; how long it took.
async fn until<F, Fut>(within: Duration, mut cond: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if cond().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

// ------------------------------------------------------------------------------------------
// Killing the stream's follower.

/// A child process, killed (`SIGKILL`) and reaped when dropped, so that a failing test leaves
/// none behind.
struct Reaped(Child);

impl Reaped {
    /// `SIGKILL`, and waits for it to be gone.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// `SIGTERM` (through `kill`, as a service manager sends it), then waits up to `within`
    /// for the process to exit: its status and how long it took, or None if it is still
    /// running (the drop then kills it).
    async fn terminate(
        &mut self,
        within: Duration,
    ) -> Option<(std::process::ExitStatus, Duration)> {
        let sent = Instant::now();
        let killed = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success(), "kill -TERM failed");
        while sent.elapsed() < within {
            if let Some(status) = self.0.try_wait().unwrap() {
                return Some((status, sent.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One `tapgate serve --config FILE` replica and where it listens.
struct Served {
    name: &'static str,
    process: Reaped,
    listen: SocketAddr,
    admin: SocketAddr,
}

/// `/v1/time` for $0.01 in sats, on `upstream`: what the replicas of the first test sell.
fn time_service(upstream: SocketAddr) -> String {
    format!(
        r#"
[[services]]
name = "time"
paths = ["/v1/time"]
upstream = "http://{upstream}"
price_usd = "0.01"
settlement = "sats"
methods = ["GET"]
"#
    )
}

impl Served {
    /// Replica `name` over the network `net` describes, its state in `dir/name` and its store
    /// the database `url`. `tail` follows the `[gateway]` table's own keys: more of its keys
    /// if any, then the `[[services]]` sold (e.g. [`time_service`]).
    async fn start(name: &'static str, dir: &Path, net: &Path, url: &str, tail: &str) -> Self {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("tapgate.toml");
        std::fs::write(
            &config,
            format!(
                r#"data_dir = "{data}"

[store]
url = "{url}"

[network]
file = "{net}"

[gateway]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
replica = "{name}"
{tail}"#,
                data = dir.display(),
                net = net.display(),
            ),
        )
        .unwrap();
        // Its stderr (the logs), printed if it fails to start.
        let log = dir.join("serve.log");
        // From its own directory, so that no config/tapgate.toml of the caller's is read.
        let mut child = Command::new(env!("CARGO_BIN_EXE_tapgate"))
            .current_dir(&dir)
            .env_remove("TAPGATE_CONFIG")
            .env("RUST_LOG", "info")
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let process = Reaped(child);
        // The start-up JSON (pretty-printed) on stdout, read on a thread of its own, which then
        // drains the pipe so that the child never writes to a closed one.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut out = BufReader::new(stdout);
            let mut text = String::new();
            loop {
                let mut line = String::new();
                if out.read_line(&mut line).unwrap_or(0) == 0 {
                    let _ = tx.send(Err(text));
                    return;
                }
                text.push_str(&line);
                if line == "}\n" {
                    break;
                }
            }
            let _ = tx.send(Ok(text));
            let _ = std::io::copy(&mut out, &mut std::io::sink());
        });
        let started = match tokio::time::timeout(PATIENCE, rx).await {
            Ok(Ok(Ok(text))) => serde_json::from_str::<Value>(&text).unwrap(),
            other => panic!(
                "replica {name} did not start ({other:?}); its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        };
        let addr = |key: &str| started[key].as_str().unwrap().parse().unwrap();
        Self {
            name,
            listen: addr("listen"),
            admin: addr("admin_listen"),
            process,
        }
    }

    /// Its `tapgate_settlement_stream_leader` gauge: whether it follows the stream.
    async fn leads(&self, client: &HttpClient) -> bool {
        leads(client, self.admin, self.name).await
    }
}

/// The `tapgate_settlement_stream_leader` gauge of replica `name` from its admin port `admin`.
async fn leads(client: &HttpClient, admin: SocketAddr, name: &str) -> bool {
    let r = call(client, admin, "GET", "/metrics", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.body.as_str().unwrap_or_default();
    let line = text
        .lines()
        .find(|l| l.starts_with("tapgate_settlement_stream_leader{"))
        .unwrap_or_else(|| panic!("no leader gauge in {name}'s metrics:\n{text}"));
    assert!(
        line.contains(&format!("replica=\"{name}\"")),
        "{name}'s gauge names another replica: {line}"
    );
    line.ends_with(" 1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_replica_that_follows_the_stream_loses_no_payment() {
    let _server = SERVER.lock().await;
    let Some(url) =
        common::fresh_postgres_database("faults", "killing the stream's follower").await
    else {
        return;
    };
    let (running, dir) = common::start_simnet().await;
    let net = running.network_file().to_owned();
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = upstream.local_addr().unwrap();
    tokio::spawn(tapgate::gateway::sample::run(upstream, stop.clone()));
    let a = Served::start("a", dir.path(), &net, &url, &time_service(up)).await;
    let b = Served::start("b", dir.path(), &net, &url, &time_service(up)).await;
    let client = client();
    let bob = Node::connect(
        NetworkAddresses::from_network_file(&net)
            .unwrap()
            .node("bob")
            .unwrap(),
    )
    .unwrap();

    // Exactly one follows the stream (and still does a lease retry later).
    until(Duration::from_secs(15), || async {
        a.leads(&client).await || b.leads(&client).await
    })
    .await
    .expect("a replica follows the settlement stream within 15 s");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (a_leads, b_leads) = (a.leads(&client).await, b.leads(&client).await);
    assert!(a_leads != b_leads, "exactly one replica follows the stream");
    let (mut leader, survivor) = if a_leads { (a, b) } else { (b, a) };
    eprintln!("replica {} follows the stream", leader.name);

    // 30 payments, each bought through one replica and used through the other while both
    // live; after the 10th the follower is killed, and from then on the survivor does both.
    const PAYMENTS: usize = 30;
    const KILL_AFTER: usize = 10;
    let mut paid = Vec::with_capacity(PAYMENTS);
    let mut takeover = None;
    let started = Instant::now();
    for i in 0..PAYMENTS {
        let living = if takeover.is_none() {
            [leader.listen, survivor.listen]
        } else {
            [survivor.listen; 2]
        };
        let r = call(&client, living[i % 2], "GET", "/v1/time", None).await;
        let (auth, hash) = buy(&r, |invoice| {
            let bob = &bob;
            async move { bob.pay_sats(&invoice, MAX_FEE_MSAT).await }
        })
        .await;
        let r = call(&client, living[(i + 1) % 2], "GET", "/v1/time", Some(&auth)).await;
        assert_eq!(r.status, StatusCode::OK, "payment {i}: {:?}", r.body);
        paid.push((auth, hash));
        if i + 1 == KILL_AFTER {
            leader.process.kill();
            eprintln!("killed replica {} after {} payments", leader.name, i + 1);
            // Watch the survivor's gauge while the payments go on.
            let (client, admin, name) = (client.clone(), survivor.admin, survivor.name);
            takeover = Some(tokio::spawn(async move {
                until(Duration::from_secs(10), || leads(&client, admin, name)).await
            }));
        }
    }
    let took = takeover
        .unwrap()
        .await
        .unwrap()
        .expect("the survivor follows the stream within 10 s of the follower's death");
    eprintln!(
        "takeover after {took:?}; {PAYMENTS} payments in {:?}",
        started.elapsed()
    );

    // Every paid token is served by the survivor: none refused, none asked to pay again.
    for (i, (auth, _)) in paid.iter().enumerate() {
        let r = call(&client, survivor.listen, "GET", "/v1/time", Some(auth)).await;
        assert_eq!(r.status, StatusCode::OK, "token {i}: {:?}", r.body);
    }

    // The database: every payment recorded once (payment_hash is the table's key), and by the
    // stream (a settle index; a direct lookup records 0 until the stream delivers it), the
    // indices distinct, and the cursor at the highest of them. The merchant settles nothing
    // else, so the indices are exactly 1..=PAYMENTS.
    let mut db = sqlx::postgres::PgConnection::connect_with(
        &sqlx::postgres::PgConnectOptions::from_str(&url).unwrap(),
    )
    .await
    .unwrap();
    let hashes: BTreeSet<[u8; 32]> = paid.iter().map(|(_, h)| *h).collect();
    assert_eq!(
        hashes.len(),
        PAYMENTS,
        "every payment has a hash of its own"
    );
    let read = Instant::now();
    let rows = loop {
        let rows: Vec<([u8; 32], i64)> =
            sqlx::query("SELECT payment_hash, settle_index FROM settled_payments")
                .fetch_all(&mut db)
                .await
                .unwrap()
                .into_iter()
                .map(|r| {
                    let h: Vec<u8> = r.get(0);
                    (<[u8; 32]>::try_from(h).unwrap(), r.get(1))
                })
                .collect();
        if rows.len() == PAYMENTS && rows.iter().all(|(_, i)| *i > 0) {
            break rows;
        }
        assert!(
            read.elapsed() < Duration::from_secs(10),
            "the stream records every payment within 10 s: {PAYMENTS} paid, rows {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let recorded: BTreeSet<[u8; 32]> = rows.iter().map(|(h, _)| *h).collect();
    assert_eq!(
        recorded, hashes,
        "the settled payments are exactly the paid ones"
    );
    let indices: BTreeSet<i64> = rows.iter().map(|(_, i)| *i).collect();
    let expected: BTreeSet<i64> = (1..=i64::try_from(PAYMENTS).unwrap()).collect();
    assert_eq!(
        indices, expected,
        "one settle index per payment, none skipped"
    );
    let cursor: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(settle_index), 0) FROM settled_payments")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(
        cursor,
        *indices.last().unwrap(),
        "the cursor covers every payment"
    );
    drop(survivor);
    drop(running);
}

// ------------------------------------------------------------------------------------------
// Restarting the database.

/// Panics anywhere in this process (the gateway's tasks run here), counted by a hook installed
/// once before the default one prints them.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

/// `.ci/postgres start|stop DIR`, failing the test if it fails or takes over a minute and a
/// half (the script itself waits at most 60 s for pg_ctl); its stdout.
async fn postgres(cmd: &'static str, dir: PathBuf) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres");
    let run = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg(script)
            .arg(cmd)
            .arg(dir)
            .stderr(Stdio::inherit())
            .output()
            .unwrap()
    });
    let out = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .unwrap_or_else(|_| panic!(".ci/postgres {cmd} took over 90 s"))
        .unwrap();
    assert!(out.status.success(), ".ci/postgres {cmd} failed");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Starts the test server again when dropped after [`postgres`] `stop`, so that a failing test
/// does not leave it down for the tests that follow.
struct Restart(Option<PathBuf>);

impl Drop for Restart {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres");
            let _ = Command::new("bash")
                .arg(script)
                .arg("start")
                .arg(dir)
                .stdout(Stdio::null())
                .status();
        }
    }
}

/// One debit's outcome, as a load task saw it.
struct Debit {
    sent: Instant,
    /// How long its answer took.
    took: Duration,
    status: StatusCode,
    body: Value,
    retry_after: Option<String>,
}

const PRICE: &str = "0.002";

fn prepaid_echo(up: SocketAddr) -> String {
    format!(
        r#"
[[services]]
name = "echo"
paths = ["/v1/echo"]
upstream = "http://{up}"
price_usd = "{PRICE}"
settlement = {{ asset = "default" }}
methods = ["POST"]
small_price = "prepaid"
prepaid_usd = "1.00"
"#
    )
}

/// A prepaid dollar of [`prepaid_echo`]'s service at `addr`, bought with alice's stablecoin
/// over the network `net` describes: the `Authorization` value.
async fn buy_prepaid(client: &HttpClient, addr: SocketAddr, net: &Path) -> String {
    let addrs = NetworkAddresses::from_network_file(net).unwrap();
    let alice = Node::connect(addrs.node("alice").unwrap()).unwrap();
    let (asset, edge) = (
        addrs.asset.clone().unwrap(),
        addrs.edge_pubkey.clone().unwrap(),
    );
    let r = call(client, addr, "POST", "/v1/echo", None).await;
    let (auth, _) = buy(&r, |invoice| {
        let (alice, asset, edge) = (&alice, &asset, &edge);
        async move {
            alice
                .pay_with_asset(&invoice, asset, edge, MAX_FEE_MSAT)
                .await
        }
    })
    .await;
    auth
}

/// The one prepaid balance in the database `db` is connected to, as the store holds it.
async fn stored_balance(db: &mut sqlx::postgres::PgConnection) -> Decimal {
    let micro_usd: i64 = sqlx::query_scalar("SELECT micro_usd FROM balances")
        .fetch_one(db)
        .await
        .unwrap();
    Decimal::new(micro_usd, 6)
}

/// The `tapgate-balance-usd` header of a prepaid call's reply.
fn balance(r: &Reply) -> Decimal {
    let v = r.headers.get("tapgate-balance-usd").unwrap_or_else(|| {
        panic!(
            "no tapgate-balance-usd on a {} reply: {:?}",
            r.status, r.body
        )
    });
    Decimal::from_str(v.to_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_fails_clearly_and_recovers() {
    let _server = SERVER.lock().await;
    let Some(pg_dir) = common::postgres_dir("the database restart") else {
        return;
    };
    let Some(url) = common::fresh_postgres_database("faults", "the database restart").await else {
        return;
    };
    count_panics();
    let panics_before = PANICS.load(Ordering::SeqCst);
    let (running, dir) = common::start_simnet().await;
    let net = running.network_file().to_owned();
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    let (addr, built) = common::start_gateway_on(
        &net,
        dir.path(),
        prepaid_echo,
        Arc::new(tapgate::clock::SystemClock),
        true,
        "replica = \"solo\"",
        &format!("[store]\nurl = \"{url}\""),
        &stop,
    )
    .await;
    let client = client();
    let price = Decimal::from_str(PRICE).unwrap();
    let prepaid = Decimal::from(1);

    // A prepaid dollar, and a few debits while all is well.
    let auth = buy_prepaid(&client, addr, &net).await;
    const BEFORE: usize = 5;
    for i in 1..=BEFORE {
        let r = call(&client, addr, "POST", "/v1/echo", Some(&auth)).await;
        assert_eq!(r.status, StatusCode::OK, "debit {i}: {:?}", r.body);
        assert_eq!(balance(&r), prepaid - price * Decimal::from(i));
    }
    until(Duration::from_secs(10), || async {
        built.tracker.is_leading()
    })
    .await
    .expect("the gateway follows the settlement stream");

    // Two tasks keep debiting, one call at a time each, until told to stop.
    let load = CancellationToken::new();
    let auth = Arc::new(auth);
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (client, auth, load) = (client.clone(), Arc::clone(&auth), load.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !load.is_cancelled() {
                    let sent = Instant::now();
                    let r = call(&client, addr, "POST", "/v1/echo", Some(&auth)).await;
                    seen.push(Debit {
                        sent,
                        took: sent.elapsed(),
                        status: r.status,
                        retry_after: r
                            .headers
                            .get("retry-after")
                            .map(|v| v.to_str().unwrap().to_owned()),
                        body: r.body,
                    });
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Down for longer than the store waits for a connection (3 s while serving), so that
    // waiting calls give up while it is down; then back on the same port.
    let mut restart = Restart(Some(pg_dir.clone()));
    let down_at = Instant::now();
    postgres("stop", pg_dir.clone()).await;
    // A new buyer meanwhile: its challenge needs the database (the token's root key), so it
    // gets 503 naming the store, not a 500.
    let fresh = call(&client, addr, "POST", "/v1/echo", None).await;
    assert_eq!(
        fresh.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        fresh.body
    );
    assert_eq!(
        fresh.body["error"]["code"], "store_unavailable",
        "{:?}",
        fresh.body
    );
    assert!(fresh.headers.contains_key("retry-after"));
    let left = Duration::from_secs(12).saturating_sub(down_at.elapsed());
    tokio::time::sleep(left).await;
    let back = postgres("start", pg_dir.clone()).await;
    restart.0 = None;
    let up_at = Instant::now();
    let (base, _) = url.rsplit_once('/').unwrap();
    assert!(
        back.starts_with(base),
        "the server came back elsewhere: {back}, not {base}"
    );
    eprintln!("database down for {:?}", up_at - down_at);

    // Recovered by itself: the tracker follows again and calls pass.
    let followed = until(Duration::from_secs(15), || async {
        built.tracker.is_leading()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    load.cancel();
    let mut debits = Vec::new();
    for t in tasks {
        debits.extend(
            tokio::time::timeout(PATIENCE, t)
                .await
                .expect("the load stops")
                .unwrap(),
        );
    }
    let last = call(&client, addr, "POST", "/v1/echo", Some(&auth)).await;
    assert_eq!(
        last.status,
        StatusCode::OK,
        "after the restart: {:?}",
        last.body
    );

    // What the load saw: 200 or a clear 503, nothing else.
    let mut unavailable = 0;
    for d in &debits {
        match d.status {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                unavailable += 1;
                // The database is what is down, and the body says so.
                assert_eq!(
                    d.body["error"]["code"], "store_unavailable",
                    "a 503 that does not name the store: {:?}",
                    d.body
                );
                assert!(
                    d.body["error"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("retry")),
                    "a 503 without advice: {:?}",
                    d.body
                );
                assert!(
                    d.retry_after.is_some(),
                    "a 503 without Retry-After: {:?}",
                    d.body
                );
            }
            other => panic!("a debit got {other}: {:?}", d.body),
        }
    }
    let sent_up = |d: &&Debit| d.sent >= up_at;
    let ok_after = debits
        .iter()
        .filter(sent_up)
        .filter(|d| d.status == StatusCode::OK)
        .map(|d| d.sent - up_at)
        .min();
    let failed_after = debits
        .iter()
        .filter(sent_up)
        .filter(|d| d.status != StatusCode::OK)
        .count();
    let sample = debits
        .iter()
        .find(|d| d.status == StatusCode::SERVICE_UNAVAILABLE);
    let slowest = debits.iter().map(|d| d.took).max();
    eprintln!(
        "{} debits under load: {unavailable} answered 503 (e.g. Retry-After {:?}, {:?}); the slowest answer took {slowest:?}; {failed_after} failed after the server was back; the first 200 after it {ok_after:?}; the tracker followed again after {followed:?}",
        debits.len(),
        sample.and_then(|d| d.retry_after.clone()),
        sample.map(|d| &d.body),
    );
    assert!(
        unavailable > 0,
        "no call got 503 while the database was down"
    );
    let recovered = ok_after.expect("calls pass again once the database is back");
    assert!(
        recovered < Duration::from_secs(10),
        "calls pass again {recovered:?} after the database is back"
    );
    assert!(
        followed.is_some(),
        "the tracker follows the stream again within 15 s of the database's return"
    );

    // The balance is exact: every 200 debited once, every 503 not at all.
    let ok = BEFORE + debits.iter().filter(|d| d.status == StatusCode::OK).count() + 1;
    let expected = prepaid - price * Decimal::from(ok);
    assert_eq!(
        balance(&last),
        expected,
        "{ok} calls passed at ${price}: the balance must be ${expected}"
    );
    let mut db = sqlx::postgres::PgConnection::connect(&url).await.unwrap();
    let stored = stored_balance(&mut db).await;
    assert_eq!(stored, expected, "the stored balance agrees");
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        panics_before,
        "something panicked during the restart (see above)"
    );
    drop(running);
}

// ------------------------------------------------------------------------------------------
// SIGTERM under load.

/// How long the slow upstream takes over each call: long enough that calls are surely in
/// flight when the signal comes, far below the drain bound.
const UPSTREAM_DELAY: Duration = Duration::from_millis(400);

/// The serving process's drain bound (`gateway.drain_secs`).
const DRAIN_SECS: u64 = 5;

/// What the slow upstream has seen, by each call's key (the call's body).
#[derive(Debug, Default)]
struct UpstreamLog {
    /// The calls that reached it.
    received: BTreeSet<String>,
    /// Those it has answered.
    answered: BTreeSet<String>,
}

/// An upstream on 127.0.0.1:0, until `stop`, that reads each call's body, notes it in `log`,
/// waits [`UPSTREAM_DELAY`], and answers `200` with the same body.
async fn slow_upstream(log: Arc<Mutex<UpstreamLog>>, stop: CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let tcp = tokio::select! {
                accepted = listener.accept() => accepted.unwrap().0,
                () = stop.cancelled() => return,
            };
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let log = Arc::clone(&log);
                    async move {
                        let body = req.into_body().collect().await?.to_bytes();
                        let key = String::from_utf8_lossy(&body).into_owned();
                        log.lock().unwrap().received.insert(key.clone());
                        tokio::time::sleep(UPSTREAM_DELAY).await;
                        log.lock().unwrap().answered.insert(key);
                        Ok::<_, hyper::Error>(http::Response::new(Full::new(body)))
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

/// What one prepaid call with an `Idempotency-Key` of its own got.
#[derive(Debug)]
enum Keyed {
    /// A whole answer: its status, its `tapgate-balance-usd` and its body.
    Answered {
        status: StatusCode,
        balance: Option<Decimal>,
        body: Bytes,
    },
    /// An answer whose body broke off.
    Truncated { status: StatusCode, error: String },
    /// No answer: the connection was refused, reset or closed before a response began.
    Refused(String),
}

/// `POST /v1/echo` to `addr` with `auth` and the Idempotency-Key `key`, which is also the body
/// (so the upstream knows the call by it); fails the test if nothing ends within [`PATIENCE`].
async fn keyed_call(client: &HttpClient, addr: SocketAddr, auth: &str, key: &str) -> Keyed {
    let req = Request::post(format!("http://{addr}/v1/echo"))
        .header("authorization", auth)
        .header("idempotency-key", key)
        .body(Full::new(Bytes::from(key.to_owned())))
        .unwrap();
    let exchange = async {
        let resp = match client.request(req).await {
            Ok(resp) => resp,
            Err(e) => return Keyed::Refused(format!("{e:?}")),
        };
        let status = resp.status();
        let balance = resp
            .headers()
            .get("tapgate-balance-usd")
            .map(|v| Decimal::from_str(v.to_str().unwrap()).unwrap());
        match resp.into_body().collect().await {
            Ok(body) => Keyed::Answered {
                status,
                balance,
                body: body.to_bytes(),
            },
            Err(e) => Keyed::Truncated {
                status,
                error: e.to_string(),
            },
        }
    };
    tokio::time::timeout(PATIENCE, exchange)
        .await
        .unwrap_or_else(|_| panic!("call {key}: nothing within {PATIENCE:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_the_calls_in_flight_and_leaves_nothing_half_written() {
    let _server = SERVER.lock().await;
    let Some(url) = common::fresh_postgres_database("faults", "SIGTERM under load").await else {
        return;
    };
    let (running, dir) = common::start_simnet().await;
    let net = running.network_file().to_owned();
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    let log = Arc::new(Mutex::new(UpstreamLog::default()));
    let up = slow_upstream(Arc::clone(&log), stop.clone()).await;
    let tail = format!("drain_secs = {DRAIN_SECS}\n{}", prepaid_echo(up));
    let mut served = Served::start("solo", dir.path(), &net, &url, &tail).await;
    let addr = served.listen;
    let client = client();
    let price = Decimal::from_str(PRICE).unwrap();
    let prepaid = Decimal::from(1);

    // A prepaid dollar: 500 calls, far more than the load below makes.
    let auth = buy_prepaid(&client, addr, &net).await;

    // CALLERS tasks make one call at a time each, every call with a key of its own, until one
    // gets no answer (the process has stopped listening).
    const CALLERS: usize = 16;
    const MAX_CALLS: usize = 100;
    let auth = Arc::new(auth);
    let tasks: Vec<_> = (0..CALLERS)
        .map(|c| {
            let (client, auth) = (client.clone(), Arc::clone(&auth));
            tokio::spawn(async move {
                let mut calls = Vec::new();
                for n in 0..MAX_CALLS {
                    let key = format!("c{c}-{n}");
                    let got = keyed_call(&client, addr, &auth, &key).await;
                    let refused = matches!(got, Keyed::Refused(_));
                    calls.push((key, got));
                    if refused {
                        break;
                    }
                }
                calls
            })
        })
        .collect();

    // Once the load is steady and at least half the callers wait on the upstream: what the
    // upstream has received so far (all of it before the signal), then SIGTERM.
    let waiting = Instant::now();
    let (before, in_flight) = loop {
        {
            let log = log.lock().unwrap();
            let in_flight: BTreeSet<String> =
                log.received.difference(&log.answered).cloned().collect();
            if log.received.len() >= 2 * CALLERS && in_flight.len() >= CALLERS / 2 {
                break (log.received.clone(), in_flight);
            }
        }
        assert!(
            waiting.elapsed() < PATIENCE,
            "the load never had {} calls in flight",
            CALLERS / 2
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let bound = Duration::from_secs(DRAIN_SECS);
    let slack = Duration::from_secs(5);
    let serve_log = dir.path().join("solo/serve.log");
    let (status, took) = served
        .process
        .terminate(bound + slack)
        .await
        .unwrap_or_else(|| {
            panic!(
                "still running {:?} after SIGTERM (drain bound {bound:?}); its log:\n{}",
                bound + slack,
                std::fs::read_to_string(&serve_log).unwrap_or_default()
            )
        });
    let serve_log = std::fs::read_to_string(&serve_log).unwrap_or_default();
    assert!(
        status.success(),
        "SIGTERM: the process exited with {status}; its log:\n{serve_log}"
    );
    let mut calls = Vec::new();
    for t in tasks {
        calls.extend(
            tokio::time::timeout(PATIENCE, t)
                .await
                .expect("the load stops once the process is gone")
                .unwrap(),
        );
    }

    // Each call got its whole 200 with the upstream's body, or no answer at all: never another
    // status, never a body cut short.
    let mut paid: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut refusals = Vec::new();
    for (key, got) in &calls {
        match got {
            Keyed::Answered {
                status: StatusCode::OK,
                balance,
                body,
            } => {
                assert_eq!(body, key.as_bytes(), "call {key}: the upstream's answer");
                let balance = balance.unwrap_or_else(|| panic!("call {key}: no balance"));
                paid.insert(key.clone(), balance);
            }
            Keyed::Answered { status, body, .. } => {
                panic!("call {key} got {status}: {}", String::from_utf8_lossy(body))
            }
            Keyed::Truncated { status, error } => {
                panic!("call {key}: a {status} whose body broke off: {error}")
            }
            Keyed::Refused(e) => refusals.push(e),
        }
    }
    let stopped = serve_log
        .lines()
        .find(|l| l.contains("tapgate stopped in"))
        .unwrap_or("(no \"stopped\" line in its log)");
    eprintln!(
        "{} calls: {} answered 200, {} got no answer (e.g. {:?}); {} had reached the upstream before SIGTERM, {} of them in flight there; the process exited 0 {took:?} after the signal: {stopped}",
        calls.len(),
        paid.len(),
        refusals.len(),
        refusals.first(),
        before.len(),
        in_flight.len(),
    );

    // Every call that had reached the upstream before the signal (in flight there or already
    // answered) finished with its 200, and so did every call that reached it afterwards: the
    // calls without an answer never got past the gateway.
    let unfinished: Vec<&String> = before.iter().filter(|k| !paid.contains_key(*k)).collect();
    assert!(
        unfinished.is_empty(),
        "calls in flight at SIGTERM got no 200: {unfinished:?}"
    );
    let received = log.lock().unwrap().received.clone();
    let answered: BTreeSet<String> = paid.keys().cloned().collect();
    assert_eq!(
        answered, received,
        "the calls answered 200 are exactly those the upstream received"
    );

    // The database, after the process: the balance is the dollar less the price of each 200;
    // each of those calls' keys is recorded once with the price and the balance its 200
    // showed, the balances after each debit a gapless run; no other key is left, in
    // particular none claimed and never settled (a claim is inserted with amount 0 and
    // settled in the same transaction, which an interrupted call would roll back).
    let mut db = sqlx::postgres::PgConnection::connect(&url).await.unwrap();
    let stored = stored_balance(&mut db).await;
    let n = Decimal::from(paid.len());
    assert_eq!(
        stored,
        prepaid - price * n,
        "{n} calls answered 200 at ${price}"
    );
    let keys: BTreeMap<String, Decimal> =
        sqlx::query("SELECT idempotency_key, micro_usd, remaining_micro_usd FROM debit_keys")
            .fetch_all(&mut db)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                let key = String::from_utf8(r.get::<Vec<u8>, _>(0)).unwrap();
                let debited = Decimal::new(r.get::<i64, _>(1), 6);
                assert_eq!(debited, price, "key {key} recorded a debit of ${debited}");
                (key, Decimal::new(r.get::<i64, _>(2), 6))
            })
            .collect();
    assert_eq!(
        keys, paid,
        "the keys recorded, with the balance left after each, are the 200s' and what they showed"
    );
    let left: BTreeSet<Decimal> = keys.values().copied().collect();
    let run: BTreeSet<Decimal> = (1..=paid.len())
        .map(|i| prepaid - price * Decimal::from(i))
        .collect();
    assert_eq!(left, run, "one debit after another, none lost or doubled");
    drop(running);
}
