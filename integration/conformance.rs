//! The node conformance suite: every behaviour of lnd and tapd that tapgate depends on, checked
//! through tapgate's own adapters, written once and run against two networks:
//!
//! * **simnet**, always: each check starts its own in-process simnet;
//! * **the real regtest network** (btcd + `tapd-integrated` v0.8.1, lnd v0.21.0-beta), when
//!   `TAPGATE_REGTEST_NETWORK=DIR/network.toml` names one that `integration/regtest/up.sh DIR`
//!   started (`.ci/run` does so on every run). The checks share that network, so they take a
//!   lock and run one at a time, and measure differences rather than absolute balances.
//!
//! * **a Polar network** (litd 0.16, which bundles tapd 0.7), when `TAPGATE_POLAR_NETWORK_DIR`,
//!   `TAPGATE_POLAR_ASSET_ID` and `TAPGATE_POLAR_EDGE_PUBKEY` are set, through
//!   `config/polar.toml` (or `TAPGATE_POLAR_CONFIG`), the variables `integration/polar/run.sh`
//!   reads. Where tapd 0.7 and 0.8.1 differ in what a check looks at, the check knows both.
//!
//! Numbers are asserted exactly: either the same number on both networks, or the number that
//! tapd's and lnd's own arithmetic gives from the network's parameters ([`Profile`]). Where the
//! networks differ on purpose, the check says so by name ([`Difference`]) and asserts each
//! network's own behaviour, so a change on either side fails the check.
//!
//! The regtest network's price is the one `up.sh` was given: export the same
//! `TAPGATE_REGTEST_USD_PER_BTC` to the tests (default 100,000, where one unit is exactly one
//! msat). With a price that does not divide evenly (e.g. 97,123), the checks see tapd's
//! rounding: payers spend the floor of value plus fee, and the payee of an asset invoice
//! usually receives one unit less than invoiced, while lnd settles it in full.
//!
//! Deliberate limits (not differences a check meets, but what simnet does not model):
//! * **Quotes across a restart.** tapd ≥ 0.8 persists the quotes it accepted and honours them
//!   after a restart (lightninglabs/taproot-assets tapdb/rfq_policies.go
//!   `PersistedPolicyStore`, v0.8.1). simnet keeps its state in memory: a restarted simnet is
//!   a new network, and its `forget_quotes` knob models tapd ≤ 0.7 losing them. No check
//!   restarts a node.
//! * **The asset HTLC's on-chain anchor.** An asset HTLC carries 354 sat besides its units;
//!   simnet moves units only, so `allow_overpay` overpays nothing there.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rust_decimal::Decimal;

use tapgate::app::{NetworkAddresses, Node};
use tapgate::l402::{PaymentHash, Preimage};
use tapgate::lightning::error::BackendError;
use tapgate::lightning::grpc::connect_lazy_streaming;
use tapgate::lightning::traits::{AssetInvoices, Invoices, NodeInfoSource, Rates};
use tapgate::lightning::types::{
    AssetInvoiceRequest, AssetRef, InvoiceRequest, InvoiceState, InvoiceStatus,
};
use tapgate::network_file::NetworkFile;
use tapgate::pricing::{self, FixedPoint};
use tapgate::simnet::model::SimnetConfig;
use tapgate::simnet::run::RunningSimnet;

/// The generated `lnrpc` code (the crate keeps its copy private), for what tapgate's adapters
/// do not expose: a `SubscribeInvoices` resumed from an add index.
mod lnrpc {
    #![allow(clippy::all, missing_docs, dead_code)]
    tonic::include_proto!("lnrpc");
}

/// Which network a check runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Simnet,
    Regtest,
    Polar,
}

/// How long an oracle's quotes live.
#[derive(Clone, Copy, Debug)]
enum QuoteLifetime {
    /// Every quote the same (tapd's mock oracle, or a simnet given `quote_lifetime_secs`).
    Fixed(u64),
    /// tapd's sample oracle: 300 s, or 60 s when the request names more than 100,000 units
    /// (lightninglabs/taproot-assets docs/examples/basic-price-oracle/main.go
    /// `getAssetRates`, v0.8.1). A buy order names its units, a sell order none
    /// (rfq/portfolio_pilot.go `ResolveRequest`, v0.8.1).
    SampleOracle,
}

/// The parameters a network was set up with, from which the exact numbers follow.
#[derive(Clone, Debug)]
struct Profile {
    /// The edge's forwarding fee: lnd's `base + amt * ppm / 1e6`.
    fee_base_msat: u64,
    fee_ppm: u64,
    /// How long the oracle's quotes live.
    quote_lifetime: QuoteLifetime,
    /// Whether the edge quotes buy and sell at different rates.
    spread: bool,
    /// The oracle's mid price, dollars per BTC; need not make one unit a whole number of msat.
    usd_per_btc: Decimal,
}

impl Profile {
    fn simnet() -> Self {
        let c = SimnetConfig::default();
        Self {
            fee_base_msat: c.fees.base_msat,
            fee_ppm: c.fees.ppm,
            quote_lifetime: match c.quote_lifetime_secs {
                Some(secs) => QuoteLifetime::Fixed(secs),
                None => QuoteLifetime::SampleOracle,
            },
            spread: c.spread_ppm > 0,
            usd_per_btc: c.usd_per_btc,
        }
    }

    /// lnd's default routing policy (`bitcoin.basefee` 1,000 msat, `bitcoin.feerate` 1 ppm:
    /// lightningnetwork/lnd chainreg/chainregistry.go, v0.21.0-beta) and tapd's mock oracle,
    /// whose quotes live 3,600 s at one rate for both sides (`NewMockPriceOracle(3600, …)` in
    /// lightninglabs/taproot-assets tapcfg/server.go, v0.8.1), a whole number of units per BTC
    /// (`experimental.rfq.mockoracleassetsperbtc`).
    fn mock_oracle(usd_per_btc: u64) -> Self {
        Self {
            fee_base_msat: 1_000,
            fee_ppm: 1,
            quote_lifetime: QuoteLifetime::Fixed(3_600),
            spread: false,
            usd_per_btc: Decimal::from(usd_per_btc),
        }
    }

    /// The regtest network at the price `up.sh` was given: `TAPGATE_REGTEST_USD_PER_BTC`
    /// (whole dollars, default 100,000), which the tests must see too.
    fn regtest() -> Self {
        let usd = match std::env::var("TAPGATE_REGTEST_USD_PER_BTC") {
            Ok(v) => v.trim().parse().unwrap_or_else(|_| {
                panic!("TAPGATE_REGTEST_USD_PER_BTC={v:?} is not whole dollars, as up.sh needs")
            }),
            Err(_) => 100_000,
        };
        Self::mock_oracle(usd)
    }

    fn fee_msat(&self, amt_msat: u64) -> u64 {
        self.fee_base_msat + amt_msat * self.fee_ppm / 1_000_000
    }

    /// The oracle's mid rate, units per BTC (6 decimals).
    fn mid_rate(&self) -> FixedPoint {
        pricing::rate_from_usd_per_btc(self.usd_per_btc, 6).unwrap()
    }

    /// How long a buy quote for `units` lives.
    fn buy_quote_lifetime(&self, units: u64) -> u64 {
        match self.quote_lifetime {
            QuoteLifetime::Fixed(secs) => secs,
            QuoteLifetime::SampleOracle if units > 100_000 => 60,
            QuoteLifetime::SampleOracle => 300,
        }
    }

    /// How long a sell quote lives (its request names no units).
    fn sell_quote_lifetime(&self) -> u64 {
        self.buy_quote_lifetime(0)
    }

    /// The expiry a check gives an asset invoice of `units`: 300 s (tapd's default), or less
    /// when the quote for them lives less.
    fn asset_invoice_expiry(&self, units: u64) -> u64 {
        self.buy_quote_lifetime(units).min(300)
    }
}

/// A deliberate difference between simnet and the real daemons, named where a check meets it.
/// Each is named in README's section "One conformance suite, three networks".
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)]
enum Difference {
    /// simnet's oracle follows tapd's sample oracle (300 s; 60 s for a buy order above 100,000
    /// units, so for every asset invoice it can carry); tapd's mock oracle quotes for 3,600 s.
    QuoteLifetime,
    /// simnet's edge quotes with a ±1 % spread; tapd's mock oracle quotes one rate. The payer's
    /// own oracle prices `DecodeAssetPayReq` with its SALE rate: on simnet the edge's oracle,
    /// so its ask, not the bid the payment's sell quote gets.
    Spread,
    /// simnet's edge charges 1,000 ppm; lnd's default is 1 ppm.
    FeeRate,
}

struct Net {
    kind: Kind,
    profile: Profile,
    addrs: NetworkAddresses,
    /// The network file, for simnet and the regtest network (Polar has none).
    file: Option<NetworkFile>,
    _simnet: Option<(RunningSimnet, tempfile::TempDir)>,
    _guard: Option<tokio::sync::MutexGuard<'static, ()>>,
}

/// The real network is shared: its checks run one at a time.
static REGTEST: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Net {
    async fn simnet() -> Self {
        let (running, dir) = common::start_simnet().await;
        let file = NetworkFile::read(running.network_file()).unwrap();
        let addrs = NetworkAddresses::from_network_file(running.network_file()).unwrap();
        Self {
            kind: Kind::Simnet,
            profile: Profile::simnet(),
            addrs,
            file: Some(file),
            _simnet: Some((running, dir)),
            _guard: None,
        }
    }

    /// The network `TAPGATE_REGTEST_NETWORK` names, or `None` when it is not set.
    async fn regtest() -> Option<Self> {
        let Some(path) = std::env::var_os("TAPGATE_REGTEST_NETWORK") else {
            // CI must never pass these checks by skipping them.
            assert!(
                std::env::var_os("CI").is_none_or(|v| v.is_empty()),
                "CI is set but TAPGATE_REGTEST_NETWORK is not: run the tests through `bash .ci/test`"
            );
            return None;
        };
        let path = PathBuf::from(path);
        let guard = REGTEST.lock().await;
        let file = NetworkFile::read(&path).unwrap_or_else(|e| {
            panic!("TAPGATE_REGTEST_NETWORK is set but unusable: {e}; start one with integration/regtest/up.sh DIR")
        });
        let addrs = NetworkAddresses::from_network_file(&path).unwrap();
        Some(Self {
            kind: Kind::Regtest,
            profile: Profile::regtest(),
            addrs,
            file: Some(file),
            _simnet: None,
            _guard: Some(guard),
        })
    }

    /// The Polar network `TAPGATE_POLAR_NETWORK_DIR` names, or `None` when it is not set.
    async fn polar() -> Option<Self> {
        std::env::var_os("TAPGATE_POLAR_NETWORK_DIR")?;
        let guard = REGTEST.lock().await;
        let var = |k: &str| {
            std::env::var(k)
                .unwrap_or_else(|_| panic!("TAPGATE_POLAR_NETWORK_DIR is set, so set {k} too"))
        };
        let config = std::env::var("TAPGATE_POLAR_CONFIG")
            .unwrap_or_else(|_| format!("{}/config/polar.toml", env!("CARGO_MANIFEST_DIR")));
        let sources = tapgate::config::Sources {
            file: Some(PathBuf::from(config)),
            env: false,
            overrides: vec![
                format!("network.asset_id={}", var("TAPGATE_POLAR_ASSET_ID")),
                format!("network.edge_pubkey={}", var("TAPGATE_POLAR_EDGE_PUBKEY")),
            ],
        };
        let settings = sources.load().unwrap();
        let addrs = NetworkAddresses::from_settings(&settings).unwrap();
        Some(Self {
            kind: Kind::Polar,
            // Polar's litd nodes: lnd's default policy and tapd's mock oracle at USD 100,000 per
            // BTC (integration/polar/README.md).
            profile: Profile::mock_oracle(100_000),
            addrs,
            file: None,
            _simnet: None,
            _guard: Some(guard),
        })
    }

    fn node(&self, name: &str) -> Node {
        Node::connect(self.addrs.node(name).unwrap()).unwrap()
    }

    fn asset(&self) -> AssetRef {
        self.addrs.asset.clone().unwrap()
    }

    fn edge(&self) -> String {
        self.addrs.edge_pubkey.clone().unwrap()
    }

    async fn invoice(
        &self,
        node: &Node,
        value_msat: u64,
        expiry_secs: u64,
    ) -> tapgate::lightning::types::CreatedInvoice {
        node.lnd
            .create_invoice(&InvoiceRequest {
                value_msat,
                memo: "conformance".into(),
                expiry_secs,
            })
            .await
            .unwrap()
    }

    /// The invoice with this hash, which must exist.
    async fn lookup(&self, node: &Node, hash: &PaymentHash) -> InvoiceStatus {
        node.lnd.lookup_invoice(hash).await.unwrap().unwrap()
    }

    async fn asset_invoice(
        &self,
        node: &Node,
        units: u64,
        expiry_secs: u64,
    ) -> Result<tapgate::lightning::types::AssetInvoice, BackendError> {
        node.tapd
            .create_asset_invoice(&AssetInvoiceRequest {
                asset: self.asset(),
                units,
                edge_peer: Some(self.edge()),
                memo: "conformance".into(),
                expiry_secs,
            })
            .await
    }
}

/// A balance after a payment: the payer learns the preimage before the channel's commitments
/// are updated (lnd's HTLC settle and revoke round), so a balance read at once may still show the
/// HTLC. Reads until it equals `expected` (at most 10 s), then asserts it does: the value must
/// arrive exactly, just not instantly.
async fn settles_at<F, Fut>(what: &str, expected: u64, mut read: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let mut last = read().await;
    for _ in 0..40 {
        if last == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        last = read().await;
    }
    assert_eq!(last, expected, "{what}");
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// One check, run against simnet and (when named) the real network.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod simnet {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::$check(&super::Net::simnet().await).await;
                }
            )*
        }
        mod regtest {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    match super::Net::regtest().await {
                        Some(net) => super::$check(&net).await,
                        None => eprintln!(
                            "skipped: TAPGATE_REGTEST_NETWORK is not set (integration/regtest/up.sh DIR starts a network)"
                        ),
                    }
                }
            )*
        }
        mod polar {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    match super::Net::polar().await {
                        Some(net) => super::$check(&net).await,
                        None => eprintln!("skipped: TAPGATE_POLAR_NETWORK_DIR is not set"),
                    }
                }
            )*
        }
    };
}

conformance!(
    node_identity,
    invoices_add_and_lookup,
    bad_payment_requests_in_lnds_words,
    a_plain_invoice_with_expiry_zero_lasts_a_day,
    an_invoice_expires,
    settlement_stream_resumes_from_an_index,
    a_resumed_stream_replays_adds_as_they_are_now,
    sats_payment_preimage_and_fee,
    sats_payment_failures,
    rfq_buy_and_sell_quotes,
    asset_invoice_amounts_and_quote_lifetime,
    asset_invoice_below_the_minimum,
    an_invoice_must_not_outlive_its_quote,
    asset_invoice_with_expiry_zero,
    preview_of_an_asset_payment,
    asset_payment_of_an_asset_invoice,
    asset_payment_of_a_sats_invoice,
    sats_payment_of_an_asset_invoice,
    no_asset_channel,
    hold_invoices_settle_and_cancel,
    a_cancelled_invoice_is_refused,
    asset_payment_below_the_minimum,
    asset_payment_under_a_negotiated_quote,
);

async fn node_identity(net: &Net) {
    for addr in &net.addrs.nodes {
        let node = net.node(&addr.name);
        let info = node.lnd.node_info().await.unwrap();
        assert!(info.synced_to_chain, "{} is synced", addr.name);
        assert_eq!(node.tapd.decimal_display(&net.asset()).await.unwrap(), 6);
        let tapd = node.tapd.version().await.unwrap();
        if net.kind == Kind::Polar {
            // litd 0.16 bundles tapd 0.7.
            assert!(tapd.starts_with("0.7"), "tapd {tapd}");
            continue;
        }
        assert!(tapd.starts_with("0.8.1"), "tapd {tapd}");
        assert_eq!(info.alias, addr.name);
        assert!(info.version.starts_with("0.21"), "lnd {}", info.version);
        let entry = net.file.as_ref().unwrap().node(&addr.name).unwrap().clone();
        assert_eq!(
            info.pubkey, entry.pubkey,
            "network.toml names the node's identity key"
        );
    }
    if let Some(file) = &net.file {
        assert_eq!(file.decimal_display, 6);
        assert_eq!(file.asset_name, "USD");
    }
}

async fn invoices_add_and_lookup(net: &Net) {
    let merchant = net.node("merchant");
    let a = net.invoice(&merchant, 500_000, 600).await;
    let b = net.invoice(&merchant, 1_000, 600).await;
    assert_eq!(b.add_index, a.add_index + 1, "add indices count up by one");
    let status = net.lookup(&merchant, &a.payment_hash).await;
    assert_eq!(status.state, InvoiceState::Open);
    assert_eq!(status.value_msat, 500_000);
    assert_eq!(status.amt_paid_msat, 0);
    assert_eq!(status.expiry_secs, 600);
    assert_eq!(status.add_index, a.add_index);
    assert_eq!(status.settle_index, 0);
    assert_eq!(status.memo, "conformance");
    assert_eq!(status.payment_request, a.payment_request);
    assert!(status.creation_date.abs_diff(now()) <= 5);
    assert!(
        merchant
            .lnd
            .lookup_invoice(&PaymentHash([9; 32]))
            .await
            .unwrap()
            .is_none(),
        "an unknown hash is None, not an error"
    );
}

/// lnd's `DecodePayReq` and tapd's `DecodeAssetPayReq` refuse what is not a regtest BOLT 11
/// invoice with zpay32's words (lightningnetwork/lnd `zpay32/bech32.go`, `zpay32/decode.go`,
/// v0.21.0-beta); tapd wraps lnd's error as "unable to fetch channel: …"
/// (lightninglabs/taproot-assets `rpcserver/rpcserver.go`, v0.8.1). A real invoice decodes
/// with its amount on both.
async fn bad_payment_requests_in_lnds_words(net: &Net) {
    let (merchant, alice) = (net.node("merchant"), net.node("alice"));
    let good = net
        .invoice(&merchant, 12_345_000, 600)
        .await
        .payment_request;
    assert_eq!(
        alice.lnd.decode_amount_msat(&good).await.unwrap(),
        12_345_000
    );
    let mut tampered = good.clone().into_bytes();
    let i = tampered.len() - 8;
    tampered[i] = if tampered[i] == b'q' { b'p' } else { b'q' };
    let tampered = String::from_utf8(tampered).unwrap();
    // BOLT 11's first example: a valid invoice, for mainnet.
    let mainnet = "lnbc1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq9qrsgq357wnc5r2ueh7ck6q93dj32dlqnls087fxdwk8qakdyafkq3yap9us6v52vjjsrvywa6rt52cm9r9zqt8r2t7mlcwspyetp5h2tztugp9lfyql";
    for (bad, words) in [
        (tampered.as_str(), "checksum failed."),
        (mainnet, "invoice not for current active network 'regtest'"),
        (
            "lnbcrt1garbage",
            "failed converting data to bytes: invalid character not part of charset: 98",
        ),
    ] {
        let e = alice.lnd.decode_amount_msat(bad).await.unwrap_err();
        assert!(e.to_string().contains(words), "DecodePayReq {bad}: {e}");
        let e = alice
            .tapd
            .preview_asset_payment(bad, &net.asset())
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains(&format!(
                "unable to fetch channel: rpc error: code = Unknown desc = {words}"
            )),
            "DecodeAssetPayReq {bad}: {e}"
        );
    }
}

/// lnd's `DefaultInvoiceExpiry`: 24 h (lightningnetwork/lnd `lnrpc/invoicesrpc/addinvoice.go`,
/// v0.21.0-beta).
async fn a_plain_invoice_with_expiry_zero_lasts_a_day(net: &Net) {
    let merchant = net.node("merchant");
    let inv = net.invoice(&merchant, 10_000, 0).await;
    let status = net.lookup(&merchant, &inv.payment_hash).await;
    assert_eq!(status.expiry_secs, 86_400);
}

async fn an_invoice_expires(net: &Net) {
    let (merchant, bob) = (net.node("merchant"), net.node("bob"));
    let inv = net.invoice(&merchant, 10_000, 1).await;
    // lnd's invoice expiry watcher cancels an open invoice once it expires.
    let mut state = InvoiceState::Open;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        state = net.lookup(&merchant, &inv.payment_hash).await.state;
        if state != InvoiceState::Open {
            break;
        }
    }
    assert_eq!(state, InvoiceState::Canceled);
    let err = bob
        .lnd
        .pay_sats(&inv.payment_request, 10_000)
        .await
        .unwrap_err();
    // The payer's lnd refuses the expired request as an RPC error, in Go's time format
    // (lightningnetwork/lnd lnrpc/routerrpc/router_backend.go, v0.21.0-beta).
    match &err {
        BackendError::Status { code, message, .. } => {
            assert_eq!(*code, tonic::Code::Unknown);
            assert!(
                message.starts_with("invoice expired. Valid until 20"),
                "{message}"
            );
            assert!(message.ends_with(" +0000 UTC"), "{message}");
        }
        other => panic!("{:?}: {other:?}", net.kind),
    }
    let status = net.lookup(&merchant, &inv.payment_hash).await;
    assert_eq!(status.amt_paid_msat, 0, "nothing was paid");
}

async fn settlement_stream_resumes_from_an_index(net: &Net) {
    let (merchant, bob) = (net.node("merchant"), net.node("bob"));
    let pay_one = || async {
        let inv = net.invoice(&merchant, 20_000, 600).await;
        bob.lnd
            .pay_sats(&inv.payment_request, 10_000)
            .await
            .unwrap();
        inv.payment_hash
    };
    let first = pay_one().await;
    let s0 = net.lookup(&merchant, &first).await.settle_index;
    assert!(s0 > 0);
    let mut rx = merchant.lnd.settlements(s0);
    let paid = [pay_one().await, pay_one().await];
    let mut seen = Vec::new();
    for expected in &paid {
        let s = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("a settlement arrives")
            .unwrap()
            .unwrap();
        assert_eq!(&s.payment_hash, expected);
        assert_eq!(s.amt_paid_msat, 20_000);
        seen.push(s.settle_index);
    }
    assert_eq!(
        seen,
        vec![s0 + 1, s0 + 2],
        "settle indices follow on, none missed or doubled"
    );
    drop(rx);
    // A consumer that stopped after s0 + 1 and comes back gets s0 + 2 and the one paid while it
    // was away, in order, and nothing else.
    let third = pay_one().await;
    let mut rx = merchant.lnd.settlements(s0 + 1);
    let mut again = Vec::new();
    for _ in 0..2 {
        let s = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("a replayed settlement arrives")
            .unwrap()
            .unwrap();
        again.push((s.payment_hash, s.settle_index));
    }
    assert_eq!(again, vec![(paid[1], s0 + 2), (third, s0 + 3)]);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rx.recv())
            .await
            .is_err(),
        "nothing extra"
    );
}

/// The invoices a `SubscribeInvoices` from `add_index` / `settle_index` delivers until it has
/// been quiet for a second, as (hash, state, add index, settle index).
async fn replayed(net: &Net, node: &str, add_index: u64, settle_index: u64) -> Vec<Replayed> {
    let conn = &net.addrs.node(node).unwrap().lnd;
    let mut client =
        lnrpc::lightning_client::LightningClient::new(connect_lazy_streaming(conn).unwrap());
    let sub = lnrpc::InvoiceSubscription {
        add_index,
        settle_index,
    };
    let mut stream = client.subscribe_invoices(sub).await.unwrap().into_inner();
    let mut got = Vec::new();
    while let Ok(msg) = tokio::time::timeout(Duration::from_secs(1), stream.message()).await {
        let inv = msg.unwrap().expect("the stream stays open");
        let state = lnrpc::invoice::InvoiceState::try_from(inv.state).unwrap();
        got.push(Replayed {
            hash: inv.r_hash,
            state,
            add_index: inv.add_index,
            settle_index: inv.settle_index,
        });
    }
    got
}

#[derive(Debug, PartialEq, Eq)]
struct Replayed {
    hash: Vec<u8>,
    state: lnrpc::invoice::InvoiceState,
    add_index: u64,
    settle_index: u64,
}

/// lnd replays the invoices added after `add_index` as they are now, sending on only OPEN and
/// SETTLED ones: a cancelled one is dropped ("unknown invoice state"), so a consumer resuming
/// by add index never learns of it from the stream. Then come the settlements after
/// `settle_index`, so an invoice both added and settled since is delivered twice
/// (lightningnetwork/lnd invoices/invoiceregistry.go `deliverBacklogEvents` and
/// `SubscribeNotifications`, channeldb/invoices.go `InvoicesAddedSince`, v0.21.0-beta; the
/// same in v0.21.2-beta).
async fn a_resumed_stream_replays_adds_as_they_are_now(net: &Net) {
    use lnrpc::invoice::InvoiceState as S;
    let (merchant, bob) = (net.node("merchant"), net.node("bob"));
    // Paid first, so that there is a settle index (non-zero) to resume from.
    let before = net.invoice(&merchant, 10_000, 600).await;
    bob.lnd
        .pay_sats(&before.payment_request, 10_000)
        .await
        .unwrap();
    let s0 = net
        .lookup(&merchant, &before.payment_hash)
        .await
        .settle_index;
    let paid = net.invoice(&merchant, 11_000, 600).await;
    bob.lnd
        .pay_sats(&paid.payment_request, 10_000)
        .await
        .unwrap();
    let settle_index = net.lookup(&merchant, &paid.payment_hash).await.settle_index;
    assert_eq!(settle_index, s0 + 1);
    let cancelled = net.invoice(&merchant, 12_000, 600).await;
    merchant
        .lnd
        .cancel_invoice(&cancelled.payment_hash)
        .await
        .unwrap();
    let open = net.invoice(&merchant, 13_000, 600).await;
    let settled = Replayed {
        hash: paid.payment_hash.0.to_vec(),
        state: S::Settled,
        add_index: paid.add_index,
        settle_index,
    };
    let still_open = Replayed {
        hash: open.payment_hash.0.to_vec(),
        state: S::Open,
        add_index: open.add_index,
        settle_index: 0,
    };
    // By add index only: the settled invoice as settled, the open one, not the cancelled one.
    let got = replayed(net, "merchant", before.add_index, 0).await;
    assert_eq!(got, vec![settled, still_open], "{:?}", net.kind);
    // With the settle index before the payment too: the adds, then the settlement again.
    let got = replayed(net, "merchant", before.add_index, s0).await;
    let states: Vec<_> = got.iter().map(|r| (r.add_index, r.state)).collect();
    assert_eq!(
        states,
        vec![
            (paid.add_index, S::Settled),
            (open.add_index, S::Open),
            (paid.add_index, S::Settled),
        ],
        "{:?}",
        net.kind
    );
    assert!(
        got.iter()
            .all(|r| r.hash != cancelled.payment_hash.0.to_vec()),
        "the cancelled invoice is never replayed"
    );
}

async fn sats_payment_preimage_and_fee(net: &Net) {
    let (merchant, bob) = (net.node("merchant"), net.node("bob"));
    let (before, _) = bob.lnd.channel_balance_msat().await.unwrap();
    let inv = net.invoice(&merchant, 1_000_000, 600).await;
    let out = bob
        .lnd
        .pay_sats(&inv.payment_request, 10_000)
        .await
        .unwrap();
    assert_eq!(out.payment_hash, inv.payment_hash);
    assert!(out.preimage.payment_hash().ct_eq(&inv.payment_hash));
    assert_eq!(out.value_msat, 1_000_000);
    assert_eq!(
        out.fee_msat,
        net.profile.fee_msat(1_000_000),
        "the edge's fee by lnd's formula"
    );
    assert_eq!(out.units_spent, None);
    settles_at(
        "bob's channel paid value plus fee",
        before - 1_000_000 - out.fee_msat,
        || async { bob.lnd.channel_balance_msat().await.unwrap().0 },
    )
    .await;
    let status = net.lookup(&merchant, &inv.payment_hash).await;
    assert_eq!(
        (status.state, status.amt_paid_msat),
        (InvoiceState::Settled, 1_000_000)
    );
}

async fn sats_payment_failures(net: &Net) {
    let (merchant, bob, alice) = (net.node("merchant"), net.node("bob"), net.node("alice"));
    // Too little balance: far more than bob's channel holds.
    let big = net.invoice(&merchant, 1_000_000_000_000, 600).await;
    let err = bob
        .lnd
        .pay_sats(&big.payment_request, 10_000)
        .await
        .unwrap_err();
    // lnd checks the payer's whole outbound balance before any route or fee
    // (lightningnetwork/lnd routing/pathfind.go `findPath`, v0.21.0-beta).
    failed_with(net, &err, "FAILURE_REASON_INSUFFICIENT_BALANCE");
    // Paying the same invoice twice: the second never pays.
    let inv = net.invoice(&merchant, 500_000, 600).await;
    bob.lnd
        .pay_sats(&inv.payment_request, 10_000)
        .await
        .unwrap();
    let err = bob
        .lnd
        .pay_sats(&inv.payment_request, 10_000)
        .await
        .unwrap_err();
    // lnd's control tower refuses to pay a hash twice, with this exact status
    // (lightningnetwork/lnd payments/db/errors.go `ErrAlreadyPaid`, v0.21.0-beta).
    assert_eq!(err.code(), Some(tonic::Code::AlreadyExists), "{err:?}");
    match &err {
        BackendError::Status { message, .. } => assert_eq!(message, "invoice is already paid"),
        other => panic!("{:?}: {other:?}", net.kind),
    }
    // Another node paying the settled invoice: the payee refuses the HTLC.
    let err = alice
        .tapd
        .pay_with_asset(&inv.payment_request, &net.asset(), &net.edge(), 10_000)
        .await
        .unwrap_err();
    failed_with(net, &err, "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS");
    let status = net.lookup(&merchant, &inv.payment_hash).await;
    assert_eq!(status.amt_paid_msat, 500_000, "paid once");
}

fn per_btc(rate: &FixedPoint) -> u64 {
    pricing::msat_to_units(pricing::MSAT_PER_BTC, rate).unwrap()
}

async fn rfq_buy_and_sell_quotes(net: &Net) {
    let (merchant, alice) = (net.node("merchant"), net.node("alice"));
    let t0 = now();
    let buy = merchant
        .tapd
        .buy_quote(&net.asset(), 1_000_000, &net.edge(), 300)
        .await
        .unwrap();
    let sell = alice
        .tapd
        .sell_quote(&net.asset(), 1_000_000, &net.edge(), 300)
        .await
        .unwrap();
    for (peer, rate, expires, expected) in [
        (
            &buy.peer,
            &buy.rate,
            buy.expires_at,
            net.profile.buy_quote_lifetime(1_000_000),
        ),
        (
            &sell.peer,
            &sell.rate,
            sell.expires_at,
            net.profile.sell_quote_lifetime(),
        ),
    ] {
        assert_eq!(peer, &net.edge());
        let lifetime = expires.saturating_sub(t0);
        assert!(
            lifetime.abs_diff(expected) <= 5,
            "{:?} ({:?}): the oracle's quote should live {expected} s, this one {lifetime} s",
            net.kind,
            Difference::QuoteLifetime
        );
        assert!(per_btc(rate) > 0);
    }
    assert_eq!(buy.asset_max_amount, 1_000_000);
    // tapd reports the units for the order's msat at the bid rate (rfq/marshal.go).
    assert_eq!(
        sell.max_units,
        pricing::msat_to_units(1_000_000, &sell.rate).unwrap()
    );
    // tapd's rfqmath (taproot-assets rfqmath/convert.go, v0.8.1).
    assert_eq!(
        buy.min_transportable_units,
        pricing::min_transportable_units(&buy.rate).unwrap()
    );
    assert_eq!(
        sell.min_transportable_msat,
        pricing::min_transportable_msat(&sell.rate).unwrap()
    );
    assert_eq!(
        sell.min_transportable_msat,
        354_000 + pricing::units_to_msat(1, &sell.rate).unwrap()
    );
    let mid = per_btc(&net.profile.mid_rate());
    if net.profile.spread {
        assert!(
            per_btc(&buy.rate) < mid && mid < per_btc(&sell.rate),
            "{:?}",
            Difference::Spread
        );
    } else {
        assert_eq!(
            buy.rate,
            sell.rate,
            "{:?}: one rate both ways",
            Difference::Spread
        );
        // The profile's price at 6 decimals; if this fails on regtest, the tests were not
        // given the TAPGATE_REGTEST_USD_PER_BTC that up.sh was.
        assert_eq!(
            per_btc(&buy.rate),
            mid,
            "{:?}: the oracle's price",
            net.kind
        );
    }
    assert_ne!(buy.id, sell.id);
    assert_ne!(buy.scid, 0);
}

async fn asset_invoice_amounts_and_quote_lifetime(net: &Net) {
    let merchant = net.node("merchant");
    let t0 = now();
    let expiry = net.profile.asset_invoice_expiry(1_000_000);
    let inv = net
        .asset_invoice(&merchant, 1_000_000, expiry)
        .await
        .unwrap();
    // The floor of the units' value at the ask rate (tapd's `UnitsToMilliSatoshi`).
    assert_eq!(
        inv.value_msat,
        pricing::units_to_msat(1_000_000, &inv.quote.rate).unwrap()
    );
    assert_eq!(inv.quote.asset_max_amount, 1_000_000);
    assert_eq!(inv.quote.peer, net.edge());
    assert!(
        inv.quote.expires_at >= t0 + expiry,
        "the quote outlives the invoice"
    );
    let lifetime = inv.quote.expires_at.saturating_sub(t0);
    let expected = net.profile.buy_quote_lifetime(1_000_000);
    assert!(
        lifetime.abs_diff(expected) <= 5,
        "{:?} ({:?}): {lifetime} s, not {expected} s",
        net.kind,
        Difference::QuoteLifetime
    );
    let status = net.lookup(&merchant, &inv.invoice.payment_hash).await;
    assert_eq!(status.expiry_secs, expiry);
    assert_eq!(status.value_msat, inv.value_msat);
    assert_eq!(status.state, InvoiceState::Open);
}

async fn asset_invoice_below_the_minimum(net: &Net) {
    let err = net
        .asset_invoice(&net.node("merchant"), 10_000, 300)
        .await
        .unwrap_err();
    eprintln!("{:?}: below minimum: {err}", net.kind);
    match err {
        BackendError::BelowMinTransportable {
            units, min_units, ..
        } => {
            assert_eq!(units, 10_000);
            let buy = net
                .node("merchant")
                .tapd
                .buy_quote(&net.asset(), 1_000_000, &net.edge(), 300)
                .await
                .unwrap();
            assert_eq!(
                min_units,
                pricing::min_transportable_units(&buy.rate).unwrap()
            );
        }
        other => panic!("{other:?}"),
    }
}

async fn an_invoice_must_not_outlive_its_quote(net: &Net) {
    let merchant = net.node("merchant");
    let too_long = net.profile.buy_quote_lifetime(1_000_000) + 600;
    let err = net
        .asset_invoice(&merchant, 1_000_000, too_long)
        .await
        .unwrap_err();
    eprintln!("{:?}: outliving its quote: {err}", net.kind);
    assert!(
        matches!(err, BackendError::QuoteOutlivedByInvoice { .. }),
        "{err:?}"
    );
}

async fn preview_of_an_asset_payment(net: &Net) {
    let (merchant, alice) = (net.node("merchant"), net.node("alice"));
    // Not a whole number of sats: tapd prices lnd's `num_satoshis`, 1,000 sat.
    let inv = net.invoice(&merchant, 1_000_999, 600).await;
    let preview = alice
        .tapd
        .preview_asset_payment(&inv.payment_request, &net.asset())
        .await
        .unwrap();
    // tapd's `DecodeAssetPayReq` asks the payer's *own* oracle (`QuerySellPrice`, a SALE) and
    // floors the whole sats at its rate; no RFQ peer is asked (`assetInvoiceAmt` in
    // lightninglabs/taproot-assets rpcserver/rpcserver.go, v0.8.1). On regtest every node's
    // mock oracle quotes the one rate; on simnet the payer's oracle is the edge's, whose SALE
    // rate is its ask, the rate of a buy quote.
    let buy = merchant
        .tapd
        .buy_quote(&net.asset(), 1_000_000, &net.edge(), 60)
        .await
        .unwrap();
    assert_eq!(
        preview,
        pricing::msat_to_units(1_000_000, &buy.rate).unwrap(),
        "{:?}: the payer's oracle's SALE rate {}, whole sats",
        net.kind,
        buy.rate
    );
    let sell = alice
        .tapd
        .sell_quote(&net.asset(), 1_000_999, &net.edge(), 300)
        .await
        .unwrap();
    let at_sell_rate = pricing::msat_to_units(1_000_000, &sell.rate).unwrap();
    if net.profile.spread {
        assert!(
            preview < at_sell_rate,
            "{:?}: the preview is not the sell quote's price",
            Difference::Spread
        );
    } else {
        assert_eq!(preview, at_sell_rate, "{:?}", Difference::Spread);
    }
}

async fn asset_payment_of_an_asset_invoice(net: &Net) {
    let (merchant, alice) = (net.node("merchant"), net.node("alice"));
    let m0 = merchant.tapd.asset_balance(&net.asset()).await.unwrap();
    let a0 = alice.tapd.asset_balance(&net.asset()).await.unwrap();
    let expiry = net.profile.asset_invoice_expiry(1_000_000);
    let inv = net
        .asset_invoice(&merchant, 1_000_000, expiry)
        .await
        .unwrap();
    let out = alice
        .tapd
        .pay_with_asset(
            &inv.invoice.payment_request,
            &net.asset(),
            &net.edge(),
            10_000,
        )
        .await
        .unwrap();
    assert!(out.preimage.payment_hash().ct_eq(&inv.invoice.payment_hash));
    assert_eq!(out.value_msat, inv.value_msat);
    eprintln!(
        "{:?}: alice reported {:?} units spent; fee {} msat",
        net.kind, out.units_spent, out.fee_msat
    );
    assert_eq!(out.fee_msat, net.profile.fee_msat(inv.value_msat));
    let spent = out.units_spent.unwrap();
    // alice's HTLC carries the floor of value plus fee at her sell quote's rate
    // (taproot-assets tapchannel/aux_traffic_shaper.go `ProduceHtlcExtraData`, v0.8.1).
    let sell = alice
        .tapd
        .sell_quote(&net.asset(), inv.value_msat + 10_000, &net.edge(), 300)
        .await
        .unwrap();
    assert_eq!(
        spent,
        pricing::msat_to_units(inv.value_msat + out.fee_msat, &sell.rate).unwrap(),
        "{:?}: the floor of value plus fee",
        net.kind
    );
    settles_at(
        "reported units are what left alice's channel",
        a0 - spent,
        || async { alice.tapd.asset_balance(&net.asset()).await.unwrap() },
    )
    .await;
    merchant_gets_the_floor(net, &merchant, m0, &inv).await;
}

/// The merchant's side of a paid asset invoice: the edge forwards the floor of the invoice's
/// msat at the quote's ask rate (taproot-assets rfq/order.go `AssetSalePolicy.
/// GenerateInterceptorResponse`, v0.8.1), which is one unit short of the invoice when the rate
/// does not divide evenly; the merchant's tapd still settles the invoice in full, allowing one
/// unit per HTLC (tapchannel/aux_invoice_manager.go `handleInvoiceAccept`, v0.8.1).
async fn merchant_gets_the_floor(
    net: &Net,
    merchant: &Node,
    m0: u64,
    inv: &tapgate::lightning::types::AssetInvoice,
) {
    let forwarded = pricing::msat_to_units(inv.value_msat, &inv.quote.rate).unwrap();
    let short = 1_000_000 - forwarded;
    eprintln!(
        "{:?}: rate {} units/BTC: {} msat invoice, {forwarded} units forwarded ({short} short)",
        net.kind,
        per_btc(&inv.quote.rate),
        inv.value_msat
    );
    assert!(short <= 1, "at most one unit is lost to rounding");
    settles_at("the merchant gets the floor", m0 + forwarded, || async {
        merchant.tapd.asset_balance(&net.asset()).await.unwrap()
    })
    .await;
    let status = net.lookup(merchant, &inv.invoice.payment_hash).await;
    assert_eq!(
        (status.state, status.amt_paid_msat),
        (InvoiceState::Settled, inv.value_msat),
        "settled in full"
    );
}

async fn asset_payment_of_a_sats_invoice(net: &Net) {
    let (merchant, alice) = (net.node("merchant"), net.node("alice"));
    let a0 = alice.tapd.asset_balance(&net.asset()).await.unwrap();
    let m0 = merchant.tapd.asset_balance(&net.asset()).await.unwrap();
    let inv = net.invoice(&merchant, 2_000_000, 600).await;
    let out = alice
        .tapd
        .pay_with_asset(&inv.payment_request, &net.asset(), &net.edge(), 10_000)
        .await
        .unwrap();
    assert!(out.preimage.payment_hash().ct_eq(&inv.payment_hash));
    let spent = out.units_spent.unwrap();
    settles_at(
        "reported units left alice's channel",
        a0 - spent,
        || async { alice.tapd.asset_balance(&net.asset()).await.unwrap() },
    )
    .await;
    assert_eq!(out.fee_msat, net.profile.fee_msat(2_000_000));
    let status = net.lookup(&merchant, &inv.payment_hash).await;
    assert_eq!(
        (status.state, status.amt_paid_msat),
        (InvoiceState::Settled, 2_000_000)
    );
    assert_eq!(
        merchant.tapd.asset_balance(&net.asset()).await.unwrap(),
        m0,
        "a plain invoice is paid in sats, never in asset HTLCs"
    );
}

async fn sats_payment_of_an_asset_invoice(net: &Net) {
    let (merchant, bob) = (net.node("merchant"), net.node("bob"));
    let m0 = merchant.tapd.asset_balance(&net.asset()).await.unwrap();
    let expiry = net.profile.asset_invoice_expiry(1_000_000);
    let inv = net
        .asset_invoice(&merchant, 1_000_000, expiry)
        .await
        .unwrap();
    let out = bob
        .lnd
        .pay_sats(&inv.invoice.payment_request, 10_000)
        .await
        .unwrap();
    assert!(out.preimage.payment_hash().ct_eq(&inv.invoice.payment_hash));
    assert_eq!(out.value_msat, inv.value_msat);
    merchant_gets_the_floor(net, &merchant, m0, &inv).await;
}

async fn no_asset_channel(net: &Net) {
    // bob has only a sats channel: tapd cannot make him an asset invoice through the edge.
    let expiry = net.profile.asset_invoice_expiry(1_000_000);
    let err = net
        .asset_invoice(&net.node("bob"), 1_000_000, expiry)
        .await
        .unwrap_err();
    eprintln!("{:?}: bob's asset invoice: {err}", net.kind);
    assert!(
        matches!(err, BackendError::NoAssetChannel { .. }),
        "{err:?}"
    );
}

/// A payment lnd dispatched and gave up on, for `reason` (`FAILURE_REASON_…`).
fn failed_with(net: &Net, err: &BackendError, reason: &str) {
    match err {
        BackendError::PaymentFailed { reason: got } => assert_eq!(got, reason, "{:?}", net.kind),
        other => panic!("{:?}: expected {reason}, got {other:?}", net.kind),
    }
}

async fn asset_invoice_with_expiry_zero(net: &Net) {
    // 0 means "the default": tapgate sends tapd's own 300 s explicitly, so the invoice lnd
    // writes is the one tapd checked the quote against.
    let merchant = net.node("merchant");
    let t0 = now();
    let got = net.asset_invoice(&merchant, 1_000_000, 0).await;
    if net.profile.buy_quote_lifetime(1_000_000) < 300 {
        // The sample oracle's 60 s quote cannot back a 300 s invoice, and tapd ≥ 0.8 refuses
        // it (lightninglabs/taproot-assets rpcserver/rpcserver.go `AddInvoice`, v0.8.1).
        let err = got.unwrap_err();
        assert!(
            matches!(err, BackendError::QuoteOutlivedByInvoice { .. }),
            "{:?}: {err:?}",
            Difference::QuoteLifetime
        );
        return;
    }
    let inv = got.unwrap();
    let status = net.lookup(&merchant, &inv.invoice.payment_hash).await;
    assert_eq!(status.expiry_secs, 300);
    assert!(inv.quote.expires_at >= t0 + 300);
}

fn fresh_preimage() -> Preimage {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    Preimage::from_bytes(b)
}

/// Waits until the invoice is in `state` (at most 20 s).
async fn reaches(net: &Net, node: &Node, hash: &PaymentHash, state: InvoiceState) {
    let mut last = net.lookup(node, hash).await.state;
    for _ in 0..80 {
        if last == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        last = net.lookup(node, hash).await.state;
    }
    assert_eq!(last, state, "{:?}", net.kind);
}

async fn hold_invoices_settle_and_cancel(net: &Net) {
    let (merchant, bob) = (net.node("merchant"), net.node("bob"));
    let hold = |preimage: &Preimage| {
        let hash = preimage.payment_hash();
        let merchant = merchant.clone();
        async move {
            merchant
                .lnd
                .create_hold_invoice(
                    &hash,
                    &InvoiceRequest {
                        value_msat: 30_000,
                        memo: "hold".into(),
                        expiry_secs: 600,
                    },
                )
                .await
                .unwrap()
        }
    };
    // Settled: the payer's payment completes only once the payee settles.
    let preimage = fresh_preimage();
    let inv = hold(&preimage).await;
    assert_eq!(
        net.lookup(&merchant, &inv.payment_hash).await.state,
        InvoiceState::Open
    );
    let payer = bob.clone();
    let request = inv.payment_request.clone();
    let paying = tokio::spawn(async move { payer.lnd.pay_sats(&request, 10_000).await });
    reaches(net, &merchant, &inv.payment_hash, InvoiceState::Accepted).await;
    assert!(
        !paying.is_finished(),
        "the payment waits while the invoice is held"
    );
    merchant.lnd.settle_invoice(&preimage).await.unwrap();
    let out = paying.await.unwrap().unwrap();
    assert!(out.preimage.payment_hash().ct_eq(&inv.payment_hash));
    let status = net.lookup(&merchant, &inv.payment_hash).await;
    assert_eq!(
        (status.state, status.amt_paid_msat),
        (InvoiceState::Settled, 30_000)
    );

    // Cancelled while held: the HTLC fails back and nothing is paid.
    let inv = hold(&fresh_preimage()).await;
    let payer = bob.clone();
    let request = inv.payment_request.clone();
    let paying = tokio::spawn(async move { payer.lnd.pay_sats(&request, 10_000).await });
    reaches(net, &merchant, &inv.payment_hash, InvoiceState::Accepted).await;
    merchant
        .lnd
        .cancel_invoice(&inv.payment_hash)
        .await
        .unwrap();
    let err = paying.await.unwrap().unwrap_err();
    failed_with(net, &err, "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS");
    reaches(net, &merchant, &inv.payment_hash, InvoiceState::Canceled).await;
    // lnd keeps the accepted amount in amt_paid after the cancel, though nothing was paid.
    assert_eq!(
        net.lookup(&merchant, &inv.payment_hash).await.amt_paid_msat,
        30_000
    );
}

async fn a_cancelled_invoice_is_refused(net: &Net) {
    let (merchant, bob) = (net.node("merchant"), net.node("bob"));
    let inv = net.invoice(&merchant, 40_000, 600).await;
    merchant
        .lnd
        .cancel_invoice(&inv.payment_hash)
        .await
        .unwrap();
    assert_eq!(
        net.lookup(&merchant, &inv.payment_hash).await.state,
        InvoiceState::Canceled
    );
    let err = bob
        .lnd
        .pay_sats(&inv.payment_request, 10_000)
        .await
        .unwrap_err();
    failed_with(net, &err, "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS");
    assert_eq!(
        net.lookup(&merchant, &inv.payment_hash).await.amt_paid_msat,
        0
    );
}

async fn asset_payment_below_the_minimum(net: &Net) {
    let (merchant, alice) = (net.node("merchant"), net.node("alice"));
    let inv = net.invoice(&merchant, 100_000, 600).await;
    let err = alice
        .tapd
        .pay_with_asset(&inv.payment_request, &net.asset(), &net.edge(), 10_000)
        .await
        .unwrap_err();
    // tapd checks invoice amount + fee limit (110,000 msat) against the quote's minimum, and
    // without an rfq_id says only "failed to acquire any quotes"; tapgate asks the edge why.
    let sell = alice
        .tapd
        .sell_quote(&net.asset(), 110_000, &net.edge(), 60)
        .await
        .unwrap();
    match err {
        BackendError::BelowMinTransportableMsat { msat, min_msat, .. } => {
            assert_eq!(msat, 110_000);
            assert_eq!(min_msat, sell.min_transportable_msat);
            assert_eq!(
                min_msat,
                pricing::min_transportable_msat(&sell.rate).unwrap()
            );
        }
        other => panic!("{:?}: {other:?}", net.kind),
    }
    assert_eq!(
        net.lookup(&merchant, &inv.payment_hash).await.amt_paid_msat,
        0
    );
}

async fn asset_payment_under_a_negotiated_quote(net: &Net) {
    // tapd's `rfq_id`: alice negotiates the sell quote first and pays under it, at its rate.
    let (merchant, alice) = (net.node("merchant"), net.node("alice"));
    let a0 = alice.tapd.asset_balance(&net.asset()).await.unwrap();
    let inv = net.invoice(&merchant, 1_500_000, 600).await;
    let quote = alice
        .tapd
        .sell_quote(&net.asset(), 1_500_000 + 10_000, &net.edge(), 60)
        .await
        .unwrap();
    let out = alice
        .tapd
        .pay_with_asset_quote(
            &inv.payment_request,
            &net.asset(),
            &net.edge(),
            10_000,
            &quote,
        )
        .await
        .unwrap();
    assert!(out.preimage.payment_hash().ct_eq(&inv.payment_hash));
    assert_eq!(out.fee_msat, net.profile.fee_msat(1_500_000));
    let spent = out.units_spent.unwrap();
    assert_eq!(
        spent,
        pricing::msat_to_units(1_500_000 + out.fee_msat, &quote.rate).unwrap(),
        "{:?}: the quote's rate, the floor of value plus fee",
        net.kind
    );
    settles_at("the units left alice's channel", a0 - spent, || async {
        alice.tapd.asset_balance(&net.asset()).await.unwrap()
    })
    .await;
    let status = net.lookup(&merchant, &inv.payment_hash).await;
    assert_eq!(
        (status.state, status.amt_paid_msat),
        (InvoiceState::Settled, 1_500_000)
    );
    // A quote id this node never negotiated is refused before anything is paid.
    let inv = net.invoice(&merchant, 1_500_000, 600).await;
    let mut unknown = quote.clone();
    unknown.id = "11".repeat(32);
    let err = alice
        .tapd
        .pay_with_asset_quote(
            &inv.payment_request,
            &net.asset(),
            &net.edge(),
            10_000,
            &unknown,
        )
        .await
        .unwrap_err();
    // tapd: "quote ID did not match an accepted quote" (`Unknown`), which tapgate reads as a
    // quote it no longer knows.
    match &err {
        BackendError::QuoteExpired { status } => {
            assert_eq!(status.code(), tonic::Code::Unknown);
            assert_eq!(status.message(), "quote ID did not match an accepted quote");
        }
        other => panic!("{:?}: {other:?}", net.kind),
    }
    assert_eq!(
        net.lookup(&merchant, &inv.payment_hash).await.amt_paid_msat,
        0
    );
}
