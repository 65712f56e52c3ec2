//! End to end over TLS on loopback: tapgate's node adapters against a running simnet, through
//! exactly the client code that talks to a real litd. Polar: `integration/polar/run.sh` runs
//! the scenarios that need no fault knobs against a Polar network instead.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use tapgate::lightning::error::BackendError;
use tapgate::lightning::traits::{AssetInvoices, Invoices, NodeInfoSource, Rates};
use tapgate::lightning::types::{AssetInvoiceRequest, AssetRef, InvoiceRequest, InvoiceState};
use tapgate::nodes::{NetworkAddresses, Node};
use tapgate::pricing;
use tapgate::simnet::model::{NodeId, SimnetConfig};
use tapgate::simnet::run::{RunOptions, RunningSimnet, start_with};

struct Net {
    running: RunningSimnet,
    addrs: NetworkAddresses,
    _dir: tempfile::TempDir,
}

impl Net {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let running = start_with(
            &dir.path().join("net"),
            RunOptions::new(SimnetConfig::default()),
            std::future::pending(),
        )
        .await
        .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "simnet took {:?} to start",
            started.elapsed()
        );
        let addrs = NetworkAddresses::from_network_file(running.network_file()).unwrap();
        Self {
            running,
            addrs,
            _dir: dir,
        }
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

    fn knob<R>(&self, f: impl FnOnce(&mut tapgate::simnet::model::Simnet) -> R) -> R {
        self.running.model().update(f)
    }

    async fn asset_invoice(
        &self,
        node: &Node,
        usd: &str,
        expiry: u64,
    ) -> Result<tapgate::lightning::types::AssetInvoice, BackendError> {
        let units = pricing::usd_to_units(usd.parse().unwrap(), 6).unwrap();
        node.tapd
            .create_asset_invoice(&AssetInvoiceRequest {
                asset: self.asset(),
                units,
                edge_peer: Some(self.edge()),
                memo: "test".into(),
                expiry_secs: expiry,
            })
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_adapter_call_against_simnet() {
    let net = Net::start().await;
    let merchant = net.node("merchant");
    let alice = net.node("alice");
    let info = merchant.lnd.node_info().await.unwrap();
    assert_eq!(info.alias, "merchant");
    assert_eq!(info.pubkey.len(), 66);
    assert!(merchant.tapd.version().await.unwrap().contains("0.8.1"));
    assert_eq!(alice.tapd.decimal_display(&net.asset()).await.unwrap(), 6);
    let (bob_local, _) = net.node("bob").lnd.channel_balance_msat().await.unwrap();
    assert_eq!(
        bob_local, 10_000_000_000,
        "bob starts with 10,000,000 sat in his channel"
    );
    assert_eq!(
        alice.tapd.asset_balance(&net.asset()).await.unwrap(),
        1_000_000_000
    );

    let inv = merchant
        .lnd
        .create_invoice(&InvoiceRequest {
            value_msat: 500_000,
            memo: "m".into(),
            expiry_secs: 600,
        })
        .await
        .unwrap();
    let status = merchant
        .lnd
        .lookup_invoice(&inv.payment_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (status.state, status.value_msat),
        (InvoiceState::Open, 500_000)
    );
    assert!(
        merchant
            .lnd
            .lookup_invoice(&tapgate::l402::PaymentHash([9; 32]))
            .await
            .unwrap()
            .is_none()
    );

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
    let per_btc =
        |r: &pricing::FixedPoint| pricing::msat_to_units(pricing::MSAT_PER_BTC, r).unwrap();
    assert!(
        per_btc(&buy.rate) < per_btc(&sell.rate),
        "edge keeps a spread: buy {} sell {}",
        buy.rate,
        sell.rate
    );
    assert_eq!(buy.peer, net.edge());

    let preview = alice
        .tapd
        .preview_asset_payment(&inv.payment_request, &net.asset())
        .await
        .unwrap();
    assert!(preview >= 500_000, "{preview}");
    let paid = merchant.lnd.pay_sats(&inv.payment_request, 10_000).await;
    assert!(
        paid.is_err(),
        "a node cannot pay its own invoice through the edge"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_price_oracle_answers_like_tapds_sample_oracle() {
    use tapgate::lightning::grpc::NodeConnection;
    use tapgate::lightning::oracle::{OracleClient, OracleSide};
    let net = Net::start().await;
    let file = net.running.network();
    let conn = NodeConnection::new(
        file.oracle_endpoint.clone(),
        file.oracle_tls_cert_path.clone(),
        "",
    );
    let oracle = OracleClient::connect(&conn).unwrap();
    let buy = oracle
        .query_rate(&net.asset(), OracleSide::Purchase, 1_000_000)
        .await
        .unwrap();
    let sell = oracle
        .query_rate(&net.asset(), OracleSide::Sale, 1_000_000)
        .await
        .unwrap();
    let per_btc =
        |r: &pricing::FixedPoint| pricing::msat_to_units(pricing::MSAT_PER_BTC, r).unwrap();
    // $100,000/BTC, 6 decimals: 1e11 units per BTC at mid, the spread around it.
    let (a, b) = (per_btc(&buy.rate), per_btc(&sell.rate));
    assert!(
        a.min(b) < 100_000_000_000 && a.max(b) > 100_000_000_000,
        "{a} {b}"
    );
    assert!(buy.expires_at > 0);
    let err = oracle
        .query_rate(&AssetRef::Id([7; 32]), OracleSide::Purchase, 1)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("unsupported subject asset"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_pays_a_sats_invoice_with_the_stablecoin() {
    let net = Net::start().await;
    let (merchant, alice) = (net.node("merchant"), net.node("alice"));
    let before = alice.tapd.asset_balance(&net.asset()).await.unwrap();
    let inv = merchant
        .lnd
        .create_invoice(&InvoiceRequest {
            value_msat: 2_000_000,
            memo: "api".into(),
            expiry_secs: 600,
        })
        .await
        .unwrap();
    let out = alice
        .tapd
        .pay_with_asset(&inv.payment_request, &net.asset(), &net.edge(), 10_000)
        .await
        .unwrap();
    assert_eq!(out.payment_hash, inv.payment_hash);
    assert!(
        out.preimage.payment_hash().ct_eq(&inv.payment_hash),
        "the preimage unlocks the invoice"
    );
    let spent = before - alice.tapd.asset_balance(&net.asset()).await.unwrap();
    assert_eq!(
        out.units_spent,
        Some(spent),
        "reported units match the balance change"
    );
    let status = merchant
        .lnd
        .lookup_invoice(&inv.payment_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.state, InvoiceState::Settled);
    assert_eq!(status.amt_paid_msat, 2_000_000);
    // The merchant received sats, not assets: a plain invoice never takes asset HTLCs.
    assert_eq!(merchant.tapd.asset_balance(&net.asset()).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bob_pays_an_asset_invoice_with_sats() {
    let net = Net::start().await;
    let (merchant, bob) = (net.node("merchant"), net.node("bob"));
    let inv = net.asset_invoice(&merchant, "1.00", 300).await.unwrap();
    assert_eq!(
        inv.value_msat,
        pricing::units_to_msat(1_000_000, &inv.quote.rate).unwrap()
    );
    let out = bob
        .lnd
        .pay_sats(&inv.invoice.payment_request, 10_000)
        .await
        .unwrap();
    assert!(out.preimage.payment_hash().ct_eq(&inv.invoice.payment_hash));
    assert_eq!(out.value_msat, inv.value_msat);
    assert_eq!(
        merchant.tapd.asset_balance(&net.asset()).await.unwrap(),
        1_000_000,
        "merchant received the stablecoin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asset_invoice_below_the_minimum_is_refused() {
    let net = Net::start().await;
    let err = net
        .asset_invoice(&net.node("merchant"), "0.01", 300)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            BackendError::BelowMinTransportable { units: 10_000, .. }
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoice_outliving_its_quote_is_never_created() {
    let net = Net::start().await;
    net.knob(|m| m.set_quote_lifetime_secs(60)).unwrap();
    let merchant = net.node("merchant");
    let err = net
        .asset_invoice(&merchant, "1.00", 3_600)
        .await
        .unwrap_err();
    assert!(
        matches!(err, BackendError::QuoteOutlivedByInvoice { .. }),
        "{err:?}"
    );
    let listed = net.running.model().read(|m| {
        m.list_invoices(NodeId::Merchant)
            .map(|l| l.len())
            .unwrap_or(0)
    });
    assert_eq!(listed, 0, "no invoice was left behind");
    net.asset_invoice(&merchant, "1.00", 60).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlement_stream_resumes_after_a_dropped_connection() {
    let net = Net::start().await;
    let (merchant, bob) = (net.node("merchant"), net.node("bob"));
    let mut paid = Vec::new();
    let pay_one = || async {
        let inv = merchant
            .lnd
            .create_invoice(&InvoiceRequest {
                value_msat: 1_000_000,
                memo: "s".into(),
                expiry_secs: 600,
            })
            .await
            .unwrap();
        bob.lnd
            .pay_sats(&inv.payment_request, 10_000)
            .await
            .unwrap();
        inv.payment_hash
    };
    paid.push(pay_one().await);
    // A consumer that processed the first settlement resumes after its settle index (0 would
    // mean "live only" in lnd, and race with the payment below).
    let s0 = merchant
        .lnd
        .lookup_invoice(&paid[0])
        .await
        .unwrap()
        .unwrap()
        .settle_index;
    assert!(s0 > 0);
    let mut rx = merchant.lnd.settlements(s0);
    paid.push(pay_one().await);
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.payment_hash, paid[1]);
    // Cut every open stream, settle while the subscriber is disconnected, settle again.
    net.knob(|m| m.drop_streams(NodeId::Merchant));
    paid.push(pay_one().await);
    paid.push(pay_one().await);
    let mut seen = vec![first.settle_index];
    for expected in &paid[2..] {
        let s = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match rx.recv().await.unwrap() {
                    Ok(s) => return s,
                    Err(e) => eprintln!("transient: {e}"),
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(&s.payment_hash, expected);
        seen.push(s.settle_index);
    }
    assert!(
        seen.windows(2).all(|w| w[1] == w[0] + 1),
        "no settlement missed or doubled: {seen:?}"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "nothing extra"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_gives_its_typed_error() {
    let net = Net::start().await;
    let (merchant, alice) = (net.node("merchant"), net.node("alice"));

    net.knob(|m| m.set_rfq_reject(Some("oracle unavailable".into())));
    let err = net.asset_invoice(&merchant, "1.00", 300).await.unwrap_err();
    assert!(matches!(err, BackendError::QuoteRejected { .. }), "{err:?}");
    let err = alice
        .tapd
        .buy_quote(&net.asset(), 1_000_000, &net.edge(), 300)
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::QuoteRejected { .. }), "{err:?}");
    net.knob(|m| m.set_rfq_reject(None));

    net.knob(|m| m.set_down(NodeId::Edge, true));
    let err = net.asset_invoice(&merchant, "1.00", 300).await.unwrap_err();
    assert!(
        matches!(err, BackendError::NoAssetChannel { .. }),
        "{err:?}"
    );
    net.knob(|m| m.set_down(NodeId::Edge, false));

    net.knob(|m| m.set_down(NodeId::Merchant, true));
    let err = merchant.lnd.node_info().await.unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::Unavailable), "{err:?}");
    net.knob(|m| m.set_down(NodeId::Merchant, false));

    let mut slow_addr = net.addrs.node("merchant").unwrap().clone();
    slow_addr.lnd.timeout = Duration::from_millis(200);
    let slow = Node::connect(&slow_addr).unwrap();
    net.knob(|m| m.set_latency(NodeId::Merchant, Duration::from_millis(800)));
    let err = slow.lnd.node_info().await.unwrap_err();
    assert!(matches!(err, BackendError::Deadline { .. }), "{err:?}");
    net.knob(|m| m.set_latency(NodeId::Merchant, Duration::ZERO));

    // An asset invoice whose quote the edge forgot (an edge restart) cannot be paid.
    let inv = net.asset_invoice(&merchant, "1.00", 300).await.unwrap();
    net.knob(|m| m.forget_quotes());
    let err = net
        .node("bob")
        .lnd
        .pay_sats(&inv.invoice.payment_request, 10_000)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            BackendError::PaymentFailed { .. } | BackendError::QuoteExpired { .. }
        ),
        "{err:?}"
    );

    // Insufficient balance: bob cannot pay far more than his channel holds.
    let big = merchant
        .lnd
        .create_invoice(&InvoiceRequest {
            value_msat: 1_000_000_000_000,
            memo: "big".into(),
            expiry_secs: 600,
        })
        .await
        .unwrap();
    let err = net
        .node("bob")
        .lnd
        .pay_sats(&big.payment_request, 10_000)
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::PaymentFailed { .. }), "{err:?}");
}
