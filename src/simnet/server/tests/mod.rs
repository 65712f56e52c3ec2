//! The servers over real TLS on loopback, through the generated clients on the channels
//! `lightning::grpc` builds (pinned certificate, macaroon metadata), started by `simnet::run`
//! in a temporary directory. The heavy end-to-end scenarios are the integration suite's; these
//! check each service's translation and the fault knobs once.

mod lnd;
mod tapd;

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tonic::Code;

use crate::lightning::error::BackendError;
use crate::lightning::grpc::{AuthChannel, NodeConnection, connect_lazy, connect_lazy_streaming};
use crate::lightning::proto::invoicesrpc::invoices_client::InvoicesClient;
use crate::lightning::proto::lnrpc::lightning_client::LightningClient;
use crate::lightning::proto::priceoraclerpc::price_oracle_client::PriceOracleClient;
use crate::lightning::proto::rfqrpc::rfq_client::RfqClient;
use crate::lightning::proto::routerrpc::router_client::RouterClient;
use crate::lightning::proto::tapchannelrpc::taproot_asset_channels_client::TaprootAssetChannelsClient;
use crate::lightning::proto::taprpc::taproot_assets_client::TaprootAssetsClient;
use crate::lightning::proto::{
    invoicesrpc, lnrpc, priceoraclerpc, rfqrpc, routerrpc, tapchannelrpc, taprpc,
};
use crate::simnet::model::{NodeId, SimnetConfig};
use crate::simnet::run::{NetworkFile, NodeEntry, RunningSimnet, start};

type Stream<T> = tonic::Streaming<T>;

struct Net {
    _dir: tempfile::TempDir,
    run: RunningSimnet,
}

impl Net {
    async fn start() -> Self {
        Self::start_with(SimnetConfig::default()).await
    }

    async fn start_with(config: SimnetConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let run = start(dir.path(), config, std::future::pending())
            .await
            .unwrap();
        Net { _dir: dir, run }
    }

    fn file(&self) -> NetworkFile {
        NetworkFile::read(self.run.network_file()).unwrap()
    }

    fn node(&self, node: NodeId) -> NodeEntry {
        self.file().node(node.name()).unwrap().clone()
    }

    fn channel(&self, node: NodeId, tapd: bool, streaming: bool) -> AuthChannel {
        let n = self.node(node);
        let macaroon = if tapd {
            n.tapd_macaroon_path
        } else {
            n.lnd_macaroon_path
        };
        let conn = NodeConnection::new(n.lnd_endpoint, n.tls_cert_path, macaroon);
        if streaming {
            connect_lazy_streaming(&conn).unwrap()
        } else {
            connect_lazy(&conn).unwrap()
        }
    }

    fn lnd(&self, node: NodeId) -> LightningClient<AuthChannel> {
        LightningClient::new(self.channel(node, false, true))
    }

    fn router(&self, node: NodeId) -> RouterClient<AuthChannel> {
        RouterClient::new(self.channel(node, false, true))
    }

    fn invoices(&self, node: NodeId) -> InvoicesClient<AuthChannel> {
        InvoicesClient::new(self.channel(node, false, true))
    }

    fn assets(&self, node: NodeId) -> TaprootAssetsClient<AuthChannel> {
        TaprootAssetsClient::new(self.channel(node, true, false))
    }

    fn rfq(&self, node: NodeId) -> RfqClient<AuthChannel> {
        RfqClient::new(self.channel(node, true, false))
    }

    fn tapchannels(&self, node: NodeId) -> TaprootAssetChannelsClient<AuthChannel> {
        TaprootAssetChannelsClient::new(self.channel(node, true, true))
    }

    fn asset_id(&self) -> Vec<u8> {
        hex::decode(self.file().asset_id).unwrap()
    }
}

async fn next<T>(s: &mut Stream<T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), s.message())
        .await
        .expect("stream stalled")
        .unwrap()
        .expect("stream ended")
}

async fn add_invoice(net: &Net, node: NodeId, msat: i64) -> lnrpc::AddInvoiceResponse {
    let req = lnrpc::Invoice {
        memo: "test".into(),
        value_msat: msat,
        expiry: 600,
        ..Default::default()
    };
    net.lnd(node).add_invoice(req).await.unwrap().into_inner()
}

async fn pay(net: &Net, payer: NodeId, pay_req: &str) -> Stream<lnrpc::Payment> {
    let req = routerrpc::SendPaymentRequest {
        payment_request: pay_req.to_owned(),
        fee_limit_msat: 100_000,
        timeout_seconds: 60,
        ..Default::default()
    };
    net.router(payer)
        .send_payment_v2(req)
        .await
        .unwrap()
        .into_inner()
}

fn status_of(p: &lnrpc::Payment) -> lnrpc::payment::PaymentStatus {
    lnrpc::payment::PaymentStatus::try_from(p.status).unwrap()
}
