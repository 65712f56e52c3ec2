//! tapd's services and the edge's price oracle.

use super::*;

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
