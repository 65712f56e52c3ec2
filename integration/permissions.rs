//! simnet's macaroons carry lnd's and tapd's permission sets, and its servers enforce them per
//! method over real TLS, as lnd v0.21.0-beta and tapd v0.8.1 do: each node's `readonly.macaroon`,
//! `invoice.macaroon` and `admin.macaroon` from `network.toml`, through tapgate's own clients
//! (which take the macaroon from the connection's path), and the refusal lnd answers when a
//! valid macaroon lacks a permission: gRPC `Unknown`, "permission denied".

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::time::Duration;

use tapgate::l402::PaymentHash;
use tapgate::lightning::error::BackendError;
use tapgate::lightning::grpc::NodeConnection;
use tapgate::lightning::lnd::LndNode;
use tapgate::lightning::tapd::TapdNode;
use tapgate::lightning::traits::{Invoices, NodeInfoSource, Rates};
use tapgate::lightning::types::{AssetRef, InvoiceRequest, InvoiceState, InvoiceStatus};
use tapgate::simnet::model::SimnetConfig;
use tapgate::simnet::run::{NodeEntry, RunningSimnet, start};
use tonic::Code;

struct Net {
    running: RunningSimnet,
    _dir: tempfile::TempDir,
}

impl Net {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("net");
        let running = start(&net, SimnetConfig::default(), std::future::pending());
        Net {
            running: running.await.unwrap(),
            _dir: dir,
        }
    }

    fn node(&self, name: &str) -> NodeEntry {
        let file = self.running.network();
        file.nodes.iter().find(|n| n.name == name).unwrap().clone()
    }

    fn asset(&self) -> AssetRef {
        let id = hex::decode(&self.running.network().asset_id).unwrap();
        AssetRef::Id(id.try_into().unwrap())
    }
}

fn conn(node: &NodeEntry, macaroon: &Path) -> NodeConnection {
    let mut conn = NodeConnection::new(&node.lnd_endpoint, &node.tls_cert_path, macaroon);
    conn.timeout = Duration::from_secs(10);
    conn
}

fn lnd(node: &NodeEntry, macaroon: &Path) -> LndNode {
    LndNode::connect(&conn(node, macaroon)).unwrap()
}

fn tapd(node: &NodeEntry, macaroon: &Path) -> TapdNode {
    TapdNode::connect(&conn(node, macaroon)).unwrap()
}

fn invoice() -> InvoiceRequest {
    InvoiceRequest {
        value_msat: 21_000,
        memo: "permissions".into(),
        expiry_secs: 600,
    }
}

/// The invoice `hash` as `node` looks it up (it must exist).
async fn invoice_at(node: &LndNode, hash: &PaymentHash) -> InvoiceStatus {
    node.lookup_invoice(hash).await.unwrap().unwrap()
}

/// The status of a refused call, which tapgate reports as a macaroon problem.
#[track_caller]
fn refusal<T: std::fmt::Debug>(result: Result<T, BackendError>) -> (Code, String) {
    match result.unwrap_err() {
        BackendError::Unauthorized { status, .. } => (status.code(), status.message().to_owned()),
        other => panic!("expected a macaroon refusal, got {other:?}"),
    }
}

fn permission_denied() -> (Code, String) {
    (Code::Unknown, "permission denied".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_lnd_macaroon_reaches_what_lnd_lets_it_reach() {
    let net = Net::start().await;
    let merchant = net.node("merchant");
    let bob = net.node("bob");
    let readonly = lnd(&merchant, &merchant.lnd_readonly_macaroon_path);
    let invoices = lnd(&merchant, &merchant.lnd_invoice_macaroon_path);

    // invoice.macaroon: invoices read and write, nothing offchain.
    let created = invoices.create_invoice(&invoice()).await.unwrap();
    let open = invoice_at(&invoices, &created.payment_hash).await;
    assert_eq!(open.state, InvoiceState::Open);
    assert_eq!(
        refusal(invoices.node_info().await),
        permission_denied(),
        "no info:read"
    );

    // readonly.macaroon: reads everything it has, writes nothing.
    let info = readonly.node_info().await.unwrap();
    assert_eq!(info.pubkey, merchant.pubkey);
    readonly.channel_balance_msat().await.unwrap();
    let looked_up = invoice_at(&readonly, &created.payment_hash).await;
    assert_eq!(looked_up.payment_request, created.payment_request);
    assert_eq!(
        refusal(readonly.create_invoice(&invoice()).await),
        permission_denied()
    );

    // Neither pays: SendPaymentV2 needs offchain:write.
    for macaroon in [
        &bob.lnd_invoice_macaroon_path,
        &bob.lnd_readonly_macaroon_path,
    ] {
        let payer = lnd(&bob, macaroon);
        let refused = payer.pay_sats(&created.payment_request, 10_000).await;
        assert_eq!(
            refusal(refused),
            permission_denied(),
            "{}",
            macaroon.display()
        );
    }

    // admin.macaroon pays; the refused attempts above left no payment behind.
    let bob_admin = lnd(&bob, &bob.lnd_macaroon_path);
    let paid = bob_admin
        .pay_sats(&created.payment_request, 10_000)
        .await
        .unwrap();
    assert_eq!(paid.payment_hash, created.payment_hash);
    let settled = invoice_at(&readonly, &created.payment_hash).await;
    assert_eq!(settled.state, InvoiceState::Settled);
    net.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tapd_and_lnd_macaroons_each_open_only_their_own_daemon() {
    let net = Net::start().await;
    let merchant = net.node("merchant");
    let asset = net.asset();

    let tap = tapd(&merchant, &merchant.tapd_macaroon_path);
    assert!(!tap.version().await.unwrap().is_empty());
    tap.onchain_asset_balance(&asset).await.unwrap();
    tap.decimal_display(&asset).await.unwrap();

    let unauthenticated = |(code, message): (Code, String)| {
        assert_eq!(code, Code::Unauthenticated, "{message}");
        assert!(message.contains("signature mismatch"), "{message}");
    };
    for lnd_macaroon in [
        &merchant.lnd_macaroon_path,
        &merchant.lnd_invoice_macaroon_path,
        &merchant.lnd_readonly_macaroon_path,
    ] {
        unauthenticated(refusal(tapd(&merchant, lnd_macaroon).version().await));
    }
    let lnd_with_tapd_macaroon = lnd(&merchant, &merchant.tapd_macaroon_path);
    unauthenticated(refusal(lnd_with_tapd_macaroon.node_info().await));
    unauthenticated(refusal(lnd_with_tapd_macaroon.channel_balance_msat().await));
    net.running.shutdown().await.unwrap();
}
