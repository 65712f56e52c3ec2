//! lnd's services, macaroons, fault knobs, start-up and shutdown.

use super::*;

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

/// The merchant's `SubscribeInvoices` from these indices.
async fn subscribe(net: &Net, add_index: u64, settle_index: u64) -> Stream<lnrpc::Invoice> {
    let sub = lnrpc::InvoiceSubscription {
        add_index,
        settle_index,
    };
    let sub = net.lnd(NodeId::Merchant).subscribe_invoices(sub).await;
    sub.unwrap().into_inner()
}

#[tokio::test]
async fn subscribe_invoices_streams_settlements_resumes_and_is_cut_by_the_knob() {
    use lnrpc::invoice::InvoiceState;
    let net = Net::start().await;
    let mut sub = subscribe(&net, 0, 0).await;

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
    let mut resumed = subscribe(&net, 0, 1).await;
    let replayed = next(&mut resumed).await;
    assert_eq!((replayed.r_hash, replayed.settle_index), (second.r_hash, 2));

    net.run.model().update(|m| m.drop_streams(NodeId::Merchant));
    let cut = tokio::time::timeout(Duration::from_secs(5), resumed.message())
        .await
        .unwrap();
    assert_eq!(cut.unwrap_err().code(), Code::Unavailable);
    net.run.shutdown().await.unwrap();
}

/// lnd replays the invoices added after `add_index` in their current state, and drops the
/// CANCELED ones (lightningnetwork/lnd invoices/invoiceregistry.go `SubscribeNotifications`,
/// v0.21.0-beta).
#[tokio::test]
async fn a_resumed_subscription_replays_adds_as_they_are_now_without_cancelled_ones() {
    use lnrpc::invoice::InvoiceState;
    let net = Net::start().await;
    let first = add_invoice(&net, NodeId::Merchant, 500_000).await;
    let paid = add_invoice(&net, NodeId::Merchant, 510_000).await;
    let mut payment = pay(&net, NodeId::Bob, &paid.payment_request).await;
    while status_of(&next(&mut payment).await) == lnrpc::payment::PaymentStatus::InFlight {}
    let cancelled = add_invoice(&net, NodeId::Merchant, 520_000).await;
    let cancel = invoicesrpc::CancelInvoiceMsg {
        payment_hash: cancelled.r_hash.clone(),
    };
    net.invoices(NodeId::Merchant)
        .cancel_invoice(cancel)
        .await
        .unwrap();
    let open = add_invoice(&net, NodeId::Merchant, 530_000).await;
    let mut sub = subscribe(&net, first.add_index, 0).await;
    let a = next(&mut sub).await;
    assert_eq!(
        (a.r_hash, a.state, a.settle_index),
        (paid.r_hash, InvoiceState::Settled as i32, 1)
    );
    let b = next(&mut sub).await;
    assert_eq!(
        (b.r_hash, b.state, b.add_index),
        (open.r_hash, InvoiceState::Open as i32, open.add_index)
    );
    let nothing = tokio::time::timeout(Duration::from_millis(300), sub.message()).await;
    assert!(nothing.is_err(), "the cancelled invoice is not replayed");
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
        &merchant.lnd_readonly_macaroon_path,
    ] {
        assert!(get_info(client(lnd_mac.clone())).await.is_ok());
    }
    // lnd's invoice.macaroon has no info:read (integration/permissions.rs covers the rest).
    let denied = get_info(client(merchant.lnd_invoice_macaroon_path.clone()))
        .await
        .unwrap_err();
    assert_eq!(
        (denied.code(), denied.message()),
        (Code::Unknown, "permission denied")
    );
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

/// lnd's `ChannelBalance`: the BTC sums in the amounts, the asset channels' units as the JSON
/// tapd writes into `custom_channel_data`.
#[tokio::test]
async fn channel_balance_carries_tapds_asset_channel_json() {
    let net = Net::start().await;
    let id = net.file().asset_id;
    let balance = |node| {
        let mut client = net.lnd(node);
        async move {
            client
                .channel_balance(lnrpc::ChannelBalanceRequest {})
                .await
                .unwrap()
                .into_inner()
        }
    };
    let alice = balance(NodeId::Alice).await;
    assert_eq!(
        String::from_utf8(alice.custom_channel_data).unwrap(),
        format!(
            r#"{{"open_channels":{{"{id}":{{"asset_id":"{id}","name":"USD","local_balance":1000000000,"remote_balance":100000000}}}},"open_channels_by_group":{{}},"pending_channels":{{}},"pending_channels_by_group":{{}}}}"#
        )
    );
    assert_eq!(
        alice.local_balance.unwrap().msat,
        0,
        "alice has no sats channel"
    );

    // The edge's two asset channels are summed into one entry, as tapd does.
    let edge = balance(NodeId::Edge).await;
    let edge = crate::lightning::channel_data::parse(&edge.custom_channel_data).unwrap();
    let usd = crate::lightning::types::AssetRef::parse(&id).unwrap();
    assert_eq!(edge.open_units(&usd).local, 1_100_000_000);
    assert_eq!(edge.open_units(&usd).remote, 1_000_000_000);

    // bob has channels, but none with assets: tapd writes its four maps, all empty.
    let bob = balance(NodeId::Bob).await;
    assert_eq!(
        bob.custom_channel_data,
        br#"{"open_channels":{},"open_channels_by_group":{},"pending_channels":{},"pending_channels_by_group":{}}"#
    );
    assert_eq!(bob.local_balance.unwrap().msat, 10_000_000_000);
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
        file.oracle_endpoint.as_deref(),
        Some(file.node("edge").unwrap().lnd_endpoint.as_str())
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
