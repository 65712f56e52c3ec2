//! simnet's own behaviours over TLS on loopback, through the client code that talks to a real
//! litd: its price oracle, and what only its fault knobs can provoke (dropped streams, a node
//! down, latency, a rejected RFQ, forgotten quotes, a short quote lifetime). Everything a real
//! node also does is in the conformance suite (`integration/conformance.rs`), which runs against
//! simnet and the real regtest network alike.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use tapgate::app::{NetworkAddresses, Node};
use tapgate::lightning::error::BackendError;
use tapgate::lightning::traits::{AssetInvoices, Invoices, NodeInfoSource, Rates};
use tapgate::lightning::types::{AssetInvoiceRequest, AssetRef, InvoiceRequest};
use tapgate::pricing;
use tapgate::simnet::model::NodeId;
use tapgate::simnet::run::RunningSimnet;

struct Net {
    running: RunningSimnet,
    addrs: NetworkAddresses,
    _dir: tempfile::TempDir,
}

impl Net {
    async fn start() -> Self {
        let started = std::time::Instant::now();
        let (running, dir) = common::start_simnet().await;
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
async fn the_edge_price_oracle_answers_like_tapds_sample_oracle() {
    use tapgate::lightning::grpc::NodeConnection;
    use tapgate::lightning::oracle::{OracleClient, OracleSide};
    let net = Net::start().await;
    let file = net.running.network();
    let conn = NodeConnection::new(
        file.oracle_endpoint.clone().unwrap(),
        file.oracle_tls_cert_path.clone().unwrap(),
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

    // An asset invoice whose quote the edge forgot (tapd ≤ 0.7 restarting; tapd ≥ 0.8 persists
    // quotes, which simnet does not model) cannot be paid. 60 s: the sample oracle's lifetime
    // of a quote for more than 100,000 units.
    let inv = net.asset_invoice(&merchant, "1.00", 60).await.unwrap();
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
