//! The servers over real TLS on loopback, through the generated clients on the channels
//! `lightning::grpc` builds (pinned certificate, macaroon metadata), started by `simnet::run`
//! in a temporary directory. The heavy end-to-end scenarios are the integration suite's; these
//! check each service's translation and the fault knobs once.

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
        let dir = tempfile::tempdir().unwrap();
        let run = start(dir.path(), SimnetConfig::default(), std::future::pending())
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

#[tokio::test]
async fn sats_payment_succeeds_with_the_preimage_and_settles_the_invoice() {
    use lnrpc::payment::PaymentStatus;
    let net = Net::start().await;
    let info = net
        .lnd(NodeId::Merchant)
        .get_info(lnrpc::GetInfoRequest {})
        .await
        .unwrap();
    assert_eq!(
        info.get_ref().identity_pubkey,
        net.node(NodeId::Merchant).pubkey
    );
    assert_eq!(info.get_ref().chains[0].network, "regtest");

    let inv = add_invoice(&net, NodeId::Merchant, 1_000_000).await;
    let pay_req = lnrpc::PayReqString {
        pay_req: inv.payment_request.clone(),
    };
    let decoded = net
        .lnd(NodeId::Bob)
        .decode_pay_req(pay_req)
        .await
        .unwrap()
        .into_inner();
    assert_eq!((decoded.num_msat, decoded.num_satoshis), (1_000_000, 1_000));
    assert_eq!(decoded.payment_hash, hex::encode(&inv.r_hash));

    let mut updates = pay(&net, NodeId::Bob, &inv.payment_request).await;
    assert_eq!(
        status_of(&next(&mut updates).await),
        PaymentStatus::InFlight
    );
    let done = next(&mut updates).await;
    assert_eq!(status_of(&done), PaymentStatus::Succeeded);
    let preimage = hex::decode(&done.payment_preimage).unwrap();
    assert_eq!(Sha256::digest(&preimage).as_slice(), inv.r_hash.as_slice());
    assert_eq!((done.value_msat, done.fee_msat), (1_000_000, 2_000));
    assert!(
        updates.message().await.unwrap().is_none(),
        "ends after the final state"
    );

    let hash = lnrpc::PaymentHash {
        r_hash: inv.r_hash.clone(),
    };
    let looked_up = net
        .lnd(NodeId::Merchant)
        .lookup_invoice(hash)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        looked_up.state,
        lnrpc::invoice::InvoiceState::Settled as i32
    );
    assert_eq!(
        (looked_up.settle_index, looked_up.amt_paid_msat),
        (1, 1_000_000)
    );

    // Paying again is lnd's AlreadyExists; tracking replays the final state.
    let again = routerrpc::SendPaymentRequest {
        payment_request: inv.payment_request.clone(),
        ..Default::default()
    };
    let again = net.router(NodeId::Bob).send_payment_v2(again).await;
    assert_eq!(again.unwrap_err().code(), Code::AlreadyExists);
    let track = routerrpc::TrackPaymentRequest {
        payment_hash: inv.r_hash.clone(),
        no_inflight_updates: false,
    };
    let mut tracked = net
        .router(NodeId::Bob)
        .track_payment_v2(track)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        next(&mut tracked).await.payment_preimage,
        done.payment_preimage
    );

    let unknown = lnrpc::PaymentHash {
        r_hash: vec![7; 32],
    };
    let missing = net
        .lnd(NodeId::Merchant)
        .lookup_invoice(unknown)
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().starts_with("unable to locate invoice"));
    net.run.shutdown().await.unwrap();
}

#[tokio::test]
async fn subscribe_invoices_streams_settlements_resumes_and_is_cut_by_the_knob() {
    use lnrpc::invoice::InvoiceState;
    let net = Net::start().await;
    let live = lnrpc::InvoiceSubscription::default();
    let mut sub = net
        .lnd(NodeId::Merchant)
        .subscribe_invoices(live)
        .await
        .unwrap()
        .into_inner();

    let first = add_invoice(&net, NodeId::Merchant, 500_000).await;
    let mut payment = pay(&net, NodeId::Bob, &first.payment_request).await;
    while status_of(&next(&mut payment).await) == lnrpc::payment::PaymentStatus::InFlight {}
    let added = next(&mut sub).await;
    assert_eq!(
        (added.state, added.add_index),
        (InvoiceState::Open as i32, 1)
    );
    let settled = next(&mut sub).await;
    assert_eq!(settled.state, InvoiceState::Settled as i32);
    assert_eq!((settled.r_hash, settled.settle_index), (first.r_hash, 1));

    // A second settlement, then resume from settle index 1: only the second is replayed.
    let second = add_invoice(&net, NodeId::Merchant, 600_000).await;
    let mut payment = pay(&net, NodeId::Bob, &second.payment_request).await;
    while status_of(&next(&mut payment).await) == lnrpc::payment::PaymentStatus::InFlight {}
    let resume = lnrpc::InvoiceSubscription {
        add_index: 0,
        settle_index: 1,
    };
    let mut resumed = net
        .lnd(NodeId::Merchant)
        .subscribe_invoices(resume)
        .await
        .unwrap()
        .into_inner();
    let replayed = next(&mut resumed).await;
    assert_eq!((replayed.r_hash, replayed.settle_index), (second.r_hash, 2));

    net.run.model().update(|m| m.drop_streams(NodeId::Merchant));
    let cut = tokio::time::timeout(Duration::from_secs(5), resumed.message())
        .await
        .unwrap();
    assert_eq!(cut.unwrap_err().code(), Code::Unavailable);
    net.run.shutdown().await.unwrap();
}

#[tokio::test]
async fn hold_invoice_is_held_then_settled() {
    use lnrpc::invoice::InvoiceState;
    let net = Net::start().await;
    let preimage = [42u8; 32];
    let hash = Sha256::digest(preimage).to_vec();
    let hold = invoicesrpc::AddHoldInvoiceRequest {
        hash: hash.clone(),
        value_msat: 400_000,
        expiry: 600,
        ..Default::default()
    };
    let added = net
        .invoices(NodeId::Merchant)
        .add_hold_invoice(hold)
        .await
        .unwrap()
        .into_inner();
    let single = invoicesrpc::SubscribeSingleInvoiceRequest {
        r_hash: hash.clone(),
    };
    let watch = net
        .invoices(NodeId::Merchant)
        .subscribe_single_invoice(single)
        .await;
    let mut watch = watch.unwrap().into_inner();
    assert_eq!(next(&mut watch).await.state, InvoiceState::Open as i32);

    let mut payment = pay(&net, NodeId::Bob, &added.payment_request).await;
    assert_eq!(
        status_of(&next(&mut payment).await),
        lnrpc::payment::PaymentStatus::InFlight
    );
    assert_eq!(next(&mut watch).await.state, InvoiceState::Accepted as i32);
    let settle = invoicesrpc::SettleInvoiceMsg {
        preimage: preimage.to_vec(),
    };
    net.invoices(NodeId::Merchant)
        .settle_invoice(settle)
        .await
        .unwrap();
    assert_eq!(next(&mut watch).await.state, InvoiceState::Settled as i32);
    assert!(
        watch.message().await.unwrap().is_none(),
        "ends at a final state"
    );
    let done = next(&mut payment).await;
    assert_eq!(status_of(&done), lnrpc::payment::PaymentStatus::Succeeded);
    assert_eq!(done.payment_preimage, hex::encode(preimage));
    net.run.shutdown().await.unwrap();
}

#[tokio::test]
async fn asset_invoice_paid_with_the_asset() {
    use tapchannelrpc::send_payment_response::Result as Update;
    let net = Net::start().await;
    let asset_id = net.asset_id();
    let edge = hex::decode(net.file().edge_pubkey).unwrap();
    let req = tapchannelrpc::AddInvoiceRequest {
        asset_id: asset_id.clone(),
        asset_amount: 1_000_000,
        peer_pubkey: edge.clone(),
        invoice_request: Some(lnrpc::Invoice {
            memo: "1 call".into(),
            expiry: 300,
            ..Default::default()
        }),
        ..Default::default()
    };
    let added = net
        .tapchannels(NodeId::Merchant)
        .add_invoice(req)
        .await
        .unwrap()
        .into_inner();
    let quote = added.accepted_buy_quote.unwrap();
    assert_eq!(quote.peer, net.file().edge_pubkey);
    assert_eq!(quote.ask_asset_rate.unwrap().coefficient, "99000000000");
    let invoice = added.invoice_result.unwrap();

    let pay = tapchannelrpc::SendPaymentRequest {
        asset_id: asset_id.clone(),
        peer_pubkey: edge,
        payment_request: Some(routerrpc::SendPaymentRequest {
            payment_request: invoice.payment_request.clone(),
            fee_limit_msat: 50_000,
            no_inflight_updates: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut updates = net
        .tapchannels(NodeId::Alice)
        .send_payment(pay)
        .await
        .unwrap()
        .into_inner();
    let Some(Update::AcceptedSellOrder(sell)) = next(&mut updates).await.result else {
        panic!("the sell quote comes first");
    };
    assert_eq!(sell.bid_asset_rate.unwrap().coefficient, "101000000000");
    assert!(matches!(
        next(&mut updates).await.result,
        Some(Update::AcceptedSellOrders(_))
    ));
    let Some(Update::PaymentResult(done)) = next(&mut updates).await.result else {
        panic!("then the payment");
    };
    assert_eq!(status_of(&done), lnrpc::payment::PaymentStatus::Succeeded);
    let preimage = hex::decode(&done.payment_preimage).unwrap();
    assert_eq!(
        Sha256::digest(&preimage).as_slice(),
        invoice.r_hash.as_slice()
    );

    // The merchant holds the units: in the model and through tapd's ListBalances.
    let units = net
        .run
        .model()
        .read(|m| m.balances(NodeId::Merchant).unwrap().assets[0].units);
    assert_eq!(units, 1_000_000);
    let by_id = taprpc::ListBalancesRequest {
        group_by: Some(taprpc::list_balances_request::GroupBy::AssetId(true)),
        ..Default::default()
    };
    let balances = net
        .assets(NodeId::Merchant)
        .list_balances(by_id)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        balances.asset_balances[&hex::encode(&asset_id)].balance,
        1_000_000
    );
    let meta = taprpc::FetchAssetMetaRequest {
        asset: Some(taprpc::fetch_asset_meta_request::Asset::AssetId(asset_id)),
    };
    let meta = net
        .assets(NodeId::Alice)
        .fetch_asset_meta(meta)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(meta.decimal_display, 6);
    net.run.shutdown().await.unwrap();
}

#[tokio::test]
async fn tapd_errors_are_classified_by_the_client() {
    let net = Net::start().await;
    let asset_id = net.asset_id();
    let edge = hex::decode(net.file().edge_pubkey).unwrap();
    let invoice = |units| tapchannelrpc::AddInvoiceRequest {
        asset_id: asset_id.clone(),
        asset_amount: units,
        peer_pubkey: edge.clone(),
        ..Default::default()
    };
    let classify = |s| BackendError::from_status("AddInvoice", s);

    let small = net
        .tapchannels(NodeId::Merchant)
        .add_invoice(invoice(10_000))
        .await
        .unwrap_err();
    assert!(matches!(
        classify(small),
        BackendError::BelowMinTransportable { units: 10_000, .. }
    ));

    net.run.model().update(|m| m.set_down(NodeId::Edge, true));
    let no_channel = net
        .tapchannels(NodeId::Merchant)
        .add_invoice(invoice(1_000_000))
        .await;
    match classify(no_channel.unwrap_err()) {
        BackendError::NoAssetChannel { peer, .. } => assert_eq!(peer, Some(net.file().edge_pubkey)),
        other => panic!("expected NoAssetChannel, got {other:?}"),
    }
    net.run.model().update(|m| m.set_down(NodeId::Edge, false));

    net.run
        .model()
        .update(|m| m.set_rfq_reject(Some("oracle unavailable".into())));
    let rejected = net
        .tapchannels(NodeId::Merchant)
        .add_invoice(invoice(1_000_000))
        .await;
    let rejected = classify(rejected.unwrap_err());
    assert!(
        matches!(&rejected, BackendError::QuoteRejected { reason, .. } if reason.contains("oracle unavailable"))
    );
    let order = rfqrpc::AddAssetBuyOrderRequest {
        asset_specifier: Some(rfqrpc::AssetSpecifier {
            id: Some(rfqrpc::asset_specifier::Id::AssetId(asset_id.clone())),
        }),
        asset_max_amt: 1_000_000,
        peer_pub_key: edge.clone(),
        timeout_seconds: 30,
        ..Default::default()
    };
    let answer = net
        .rfq(NodeId::Merchant)
        .add_asset_buy_order(order)
        .await
        .unwrap()
        .into_inner();
    let Some(rfqrpc::add_asset_buy_order_response::Response::RejectedQuote(r)) = answer.response
    else {
        panic!("a rejection is an answer, not an error");
    };
    assert_eq!(r.error_message, "oracle unavailable");
    net.run.shutdown().await.unwrap();
}

#[tokio::test]
async fn price_oracle_answers_like_the_sample_oracle() {
    use priceoraclerpc::asset_specifier::Id;
    use priceoraclerpc::query_asset_rates_response::Result as Answer;
    let net = Net::start().await;
    let file = net.file();
    // The oracle takes no macaroon; the channel sends one anyway, as tapd ≥ 0.8 may.
    let conn = NodeConnection::new(
        file.oracle_endpoint.clone(),
        file.oracle_tls_cert_path.clone(),
        net.node(NodeId::Edge).lnd_macaroon_path,
    );
    let mut oracle = PriceOracleClient::new(connect_lazy(&conn).unwrap());
    let spec = |id: Vec<u8>| {
        Some(priceoraclerpc::AssetSpecifier {
            id: Some(Id::AssetId(id)),
        })
    };
    let query = |subject: Vec<u8>, payment: Vec<u8>| priceoraclerpc::QueryAssetRatesRequest {
        transaction_type: priceoraclerpc::TransactionType::Sale as i32,
        subject_asset: spec(subject),
        payment_asset: spec(payment),
        ..Default::default()
    };
    let before = net.run.model().now();
    let ok = oracle
        .query_asset_rates(query(net.asset_id(), vec![0; 32]))
        .await
        .unwrap();
    let Some(Answer::Ok(ok)) = ok.into_inner().result else {
        panic!("rates")
    };
    let rates = ok.asset_rates.unwrap();
    assert_eq!(rates.subject_asset_rate.unwrap().coefficient, "99000000000");
    let payment_rate = rates.payment_asset_rate.unwrap();
    assert_eq!(
        (payment_rate.coefficient.as_str(), payment_rate.scale),
        ("100000000000", 9)
    );
    assert!(rates.expiry_timestamp >= before + 600);

    let err = oracle
        .query_asset_rates(query(net.asset_id(), vec![1; 32]))
        .await
        .unwrap();
    let Some(Answer::Error(e)) = err.into_inner().result else {
        panic!("error answer")
    };
    assert_eq!(
        e.message,
        "unsupported payment asset, only BTC is supported"
    );
    let err = oracle
        .query_asset_rates(query(vec![9; 32], vec![0; 32]))
        .await
        .unwrap();
    let Some(Answer::Error(e)) = err.into_inner().result else {
        panic!("error answer")
    };
    assert_eq!(e.message, "unsupported subject asset");

    let hint = priceoraclerpc::AssetRates {
        subject_asset_rate: Some(priceoraclerpc::FixedPoint {
            coefficient: "123".into(),
            scale: 0,
        }),
        payment_asset_rate: None,
        expiry_timestamp: 42,
    };
    let mut hinted = query(net.asset_id(), vec![0; 32]);
    hinted.asset_rates_hint = Some(hint.clone());
    let echoed = oracle.query_asset_rates(hinted).await.unwrap().into_inner();
    assert_eq!(
        echoed.result,
        Some(Answer::Ok(priceoraclerpc::QueryAssetRatesOkResponse {
            asset_rates: Some(hint)
        }))
    );
    net.run.shutdown().await.unwrap();
}

#[tokio::test]
async fn macaroons_are_checked_per_daemon_and_per_node() {
    let net = Net::start().await;
    let merchant = net.node(NodeId::Merchant);
    let client = |macaroon: std::path::PathBuf| {
        let conn = NodeConnection::new(&merchant.lnd_endpoint, &merchant.tls_cert_path, macaroon);
        connect_lazy(&conn).unwrap()
    };
    let get_info = |ch| async move {
        LightningClient::new(ch)
            .get_info(lnrpc::GetInfoRequest {})
            .await
    };
    let tap_info = |ch| async move {
        TaprootAssetsClient::new(ch)
            .get_info(taprpc::GetInfoRequest {})
            .await
    };

    for lnd_mac in [
        &merchant.lnd_macaroon_path,
        &merchant.lnd_invoice_macaroon_path,
        &merchant.lnd_readonly_macaroon_path,
    ] {
        assert!(get_info(client(lnd_mac.clone())).await.is_ok());
    }
    assert!(
        tap_info(client(merchant.tapd_macaroon_path.clone()))
            .await
            .is_ok()
    );

    let refused = [
        get_info(client(merchant.tapd_macaroon_path.clone())).await,
        get_info(client(net.node(NodeId::Bob).lnd_macaroon_path)).await,
    ];
    for r in refused {
        assert_eq!(r.unwrap_err().code(), Code::Unauthenticated);
    }
    let refused = tap_info(client(merchant.lnd_macaroon_path.clone()))
        .await
        .unwrap_err();
    assert!(matches!(
        BackendError::from_status("GetInfo", refused),
        BackendError::Unauthorized { .. }
    ));
    net.run.shutdown().await.unwrap();
}

#[tokio::test]
async fn fault_knobs_apply_to_every_call() {
    let net = Net::start().await;
    let mut lnd = net.lnd(NodeId::Merchant);
    net.run
        .model()
        .update(|m| m.set_down(NodeId::Merchant, true));
    let down = lnd.get_info(lnrpc::GetInfoRequest {}).await.unwrap_err();
    assert_eq!(
        (down.code(), down.message()),
        (Code::Unavailable, "node is down")
    );
    net.run.model().update(|m| {
        m.set_down(NodeId::Merchant, false);
        m.set_latency(NodeId::Merchant, Duration::from_millis(200));
    });
    let started = Instant::now();
    lnd.get_info(lnrpc::GetInfoRequest {}).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    net.run.shutdown().await.unwrap();
}

#[tokio::test]
async fn starts_fast_and_shuts_down_with_streams_open() {
    let started = Instant::now();
    let net = Net::start().await;
    let startup = started.elapsed();
    assert!(startup < Duration::from_secs(2), "startup took {startup:?}");
    let file = net.file();
    assert_eq!(file.nodes.len(), 4);
    assert_eq!(
        file.oracle_endpoint,
        file.node("edge").unwrap().lnd_endpoint
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(net._dir.path()), 0o700);
        assert_eq!(mode(&file.nodes[0].lnd_macaroon_path), 0o600);
        assert_eq!(mode(&file.nodes[0].tapd_macaroon_path), 0o600);
    }

    let mut sub = net.lnd(NodeId::Merchant);
    let mut sub = sub
        .subscribe_invoices(lnrpc::InvoiceSubscription::default())
        .await
        .unwrap()
        .into_inner();
    let stopping = Instant::now();
    net.run.shutdown().await.unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        stopping.elapsed()
    );
    assert!(
        !matches!(sub.message().await, Ok(Some(_))),
        "the open stream ended"
    );
}
