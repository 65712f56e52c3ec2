//! tapd's services and the edge's price oracle.

use super::*;
use crate::app::{NetworkAddresses, Node};
use crate::lightning::channel_data::ChannelUnits;
use crate::lightning::tapd::TapdNode;
use crate::lightning::types::{AssetBalance, AssetRef};

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
            // The sample oracle's quotes for more than 100,000 units live 60 s.
            expiry: 60,
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

    // The merchant holds the units in its asset channel: in the model, and through lnd's
    // ChannelBalance, not tapd's ListBalances (which, like tapd's, counts on-chain units only).
    let units = net
        .run
        .model()
        .read(|m| m.balances(NodeId::Merchant).unwrap().assets[0].units);
    // The edge forwards the floor of the invoice's 1,010,101 msat at 0.99 units per msat.
    assert_eq!(units, 999_999);
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
    assert!(balances.asset_balances.is_empty(), "{balances:?}");
    let channel_balance = net
        .lnd(NodeId::Merchant)
        .channel_balance(lnrpc::ChannelBalanceRequest {})
        .await
        .unwrap()
        .into_inner();
    let channels = crate::lightning::channel_data::parse(&channel_balance.custom_channel_data);
    let usd = AssetRef::Id(asset_id.clone().try_into().unwrap());
    assert_eq!(
        channels.unwrap().open_units(&usd),
        ChannelUnits {
            local: 999_999,
            remote: 999_000_001
        }
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
        // tapd v0.8.1's text names no peer (rfq/manager.go `FetchChannel`).
        BackendError::NoAssetChannel { peer, .. } => assert_eq!(peer, None),
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
        file.oracle_endpoint.clone().unwrap(),
        file.oracle_tls_cert_path.clone().unwrap(),
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
    // No units named: the sample oracle's 300 s.
    assert!((before + 300..=before + 301).contains(&rates.expiry_timestamp));
    // More than 100,000 units: 60 s (basic-price-oracle/main.go `getAssetRates`, v0.8.1).
    let mut large = query(net.asset_id(), vec![0; 32]);
    large.subject_asset_max_amount = 100_001;
    let large = oracle.query_asset_rates(large).await.unwrap();
    let Some(Answer::Ok(large)) = large.into_inner().result else {
        panic!("rates")
    };
    let expiry = large.asset_rates.unwrap().expiry_timestamp;
    assert!((before + 60..=before + 61).contains(&expiry));

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

/// The adapters' asset balance: tapd's on-chain units plus the node's side of its asset
/// channels from lnd, through `app::Node` and through `TapdNode` with its lnd attached.
#[tokio::test]
async fn asset_balance_adds_channel_units_from_lnd() {
    let net = Net::start().await;
    let addrs = NetworkAddresses::from_network_file(net.run.network_file()).unwrap();
    let usd = addrs.asset.clone().unwrap();
    let alice = Node::connect(addrs.node("alice").unwrap()).unwrap();
    assert_eq!(
        alice.asset_balance(&usd).await.unwrap(),
        AssetBalance {
            on_chain: 0,
            in_channels: 1_000_000_000
        }
    );
    assert_eq!(alice.tapd.asset_balance(&usd).await.unwrap(), 1_000_000_000);
    assert_eq!(alice.tapd.onchain_asset_balance(&usd).await.unwrap(), 0);
    let channels = alice.lnd.channel_asset_balances().await.unwrap();
    assert_eq!(channels.open_units(&usd).remote, 100_000_000);

    // Bob's only channel carries sats: nothing anywhere, and no error.
    let bob = Node::connect(addrs.node("bob").unwrap()).unwrap();
    assert_eq!(bob.asset_balance(&usd).await.unwrap().total(), 0);
    assert_eq!(
        bob.lnd.channel_asset_balances().await.unwrap(),
        Default::default()
    );

    // A tapd client without its lnd cannot see channel units, so it refuses to guess.
    let tapd_alone = TapdNode::connect(&addrs.node("alice").unwrap().tapd).unwrap();
    let err = tapd_alone.asset_balance(&usd).await.unwrap_err();
    assert!(
        matches!(err, BackendError::InvalidRequest { .. }),
        "{err:?}"
    );
    assert_eq!(tapd_alone.onchain_asset_balance(&usd).await.unwrap(), 0);
    net.run.shutdown().await.unwrap();
}

/// A grouped asset is found by its group key on both sides.
#[tokio::test]
async fn asset_balance_by_group_key() {
    let net = Net::start_with(SimnetConfig {
        asset_grouped: true,
        ..SimnetConfig::default()
    })
    .await;
    let addrs = NetworkAddresses::from_network_file(net.run.network_file()).unwrap();
    let group = AssetRef::parse(net.file().group_key.as_deref().unwrap()).unwrap();
    let merchant = Node::connect(addrs.node("merchant").unwrap()).unwrap();
    let edge = Node::connect(addrs.node("edge").unwrap()).unwrap();
    assert_eq!(merchant.asset_balance(&group).await.unwrap().total(), 0);
    assert_eq!(
        edge.asset_balance(&group).await.unwrap().in_channels,
        1_100_000_000
    );
    let by_group = edge
        .lnd
        .channel_asset_balances()
        .await
        .unwrap()
        .open_by_group;
    assert_eq!(
        by_group[&group.to_string()],
        ChannelUnits {
            local: 1_100_000_000,
            remote: 1_000_000_000
        }
    );
    net.run.shutdown().await.unwrap();
}
