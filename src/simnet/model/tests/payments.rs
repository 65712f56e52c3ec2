//! Payment paths (sats and asset, both directions) and every way a payment fails.

use super::*;

#[test]
fn alice_pays_a_plain_sats_invoice_with_the_stablecoin() {
    let mut n = net();
    let inv = plain(&mut n, NodeId::Merchant, 1_000_000, 0);
    let a = ChannelKind::Asset(usd(&n));
    let pay = asset_pay(&n, &inv.payment_request, false);
    let preview = n
        .preview_asset_payment(NodeId::Alice, &pay, T0 + 1)
        .unwrap();
    // fee 1,000 + 1,000 ppm · 1,000,000 = 2,000 msat; units = ⌊1,002,000 · 1.01⌋ at the bid.
    assert_eq!(
        (preview.fee_msat, preview.msat_sent, preview.units),
        (2_000, 1_002_000, 1_012_020)
    );
    assert!(!preview.overpaid);

    let p = n.pay_with_asset(NodeId::Alice, &pay, T0 + 1).unwrap();
    assert_eq!(p.preimage().unwrap().payment_hash(), inv.payment_hash);
    assert_eq!(
        (p.value_msat, p.fee_msat, p.units_spent()),
        (1_000_000, 2_000, Some(1_012_020))
    );
    assert_eq!(
        local(&n, NodeId::Alice, a, NodeId::Edge),
        1_000_000_000 - 1_012_020
    );
    assert_eq!(
        local(&n, NodeId::Edge, a, NodeId::Alice),
        100_000_000 + 1_012_020
    );
    assert_eq!(
        local(&n, NodeId::Merchant, ChannelKind::Sats, NodeId::Edge),
        1_000_000
    );
    assert_eq!(
        local(&n, NodeId::Edge, ChannelKind::Sats, NodeId::Merchant),
        10_000_000_000 - 1_000_000
    );
    let inv = n
        .lookup_invoice(NodeId::Merchant, &inv.payment_hash)
        .unwrap();
    assert_eq!(
        (inv.state, inv.settle_index, inv.amt_paid_msat),
        (InvoiceState::Settled, 1, 1_000_000)
    );
    let quotes = n.peer_accepted_quotes(NodeId::Alice, T0 + 1).unwrap();
    assert_eq!(quotes.sell, vec![p.asset.clone().unwrap().quote]);
    assert_eq!(quotes.sell[0].payment_max_msat, 1_100_000);
    assert_eq!(n.payment(NodeId::Alice, &inv.payment_hash).unwrap(), &p);
}

#[test]
fn bob_pays_an_asset_invoice_with_sats_and_the_merchant_gets_the_floor_of_the_units() {
    let mut n = net();
    let added = asset_invoice(&mut n, NodeId::Merchant, 1_000_000, 0).unwrap();
    let q = &added.quote;
    assert_eq!(q.ask_rate.to_string(), "99000000000");
    let pr = n
        .decode_pay_req(NodeId::Bob, &added.invoice.payment_request)
        .unwrap();
    // 1,000,000 units at 9.9e10 units/BTC = 1,010,101 msat (truncated).
    assert_eq!(pr.num_msat, 1_010_101);
    // expiry 0: the quote's remaining lifetime, the sample oracle's 60 s.
    assert_eq!(pr.expiry, 60);
    assert_eq!(pr.destination, n.pubkey(NodeId::Merchant));
    assert_eq!(pr.route_hints[0].node, n.pubkey(NodeId::Edge));
    assert_eq!(pr.route_hints[0].chan_id, q.scid);
    assert!(
        added
            .invoice
            .payment_request
            .starts_with("lnbcrt10101010p1")
    );

    let p = n
        .pay_sats(NodeId::Bob, &added.invoice.payment_request, 5_000, T0 + 10)
        .unwrap();
    assert_eq!(
        p.preimage().unwrap().payment_hash(),
        added.invoice.payment_hash
    );
    assert_eq!(p.fee_msat, 2_010);
    let a = ChannelKind::Asset(usd(&n));
    // The edge forwards ⌊1,010,101 · 0.99⌋ = 999,999 units (tapd's floor, rfq/order.go); the
    // merchant's tapd settles the invoice in full within its one-unit margin.
    assert_eq!(local(&n, NodeId::Merchant, a, NodeId::Edge), 999_999);
    assert_eq!(
        local(&n, NodeId::Edge, a, NodeId::Merchant),
        1_000_000_000 - 999_999
    );
    assert_eq!(
        local(&n, NodeId::Bob, ChannelKind::Sats, NodeId::Edge),
        10_000_000_000 - 1_012_111
    );
    assert_eq!(
        n.balances(NodeId::Merchant).unwrap().assets[0]
            .usd
            .to_string(),
        "0.999999"
    );
    let inv = n
        .lookup_invoice(NodeId::Merchant, &added.invoice.payment_hash)
        .unwrap();
    assert_eq!(inv.asset_units_paid(), Some(999_999));
    assert_eq!(inv.amt_paid_msat, 1_010_101);
}

#[test]
fn alice_pays_an_asset_invoice_with_the_asset_and_bob_pays_alice() {
    let mut n = net();
    let added = asset_invoice(&mut n, NodeId::Merchant, 500_000, 0).unwrap();
    let pay = asset_pay(&n, &added.invoice.payment_request, false);
    let p = n.pay_with_asset(NodeId::Alice, &pay, T0).unwrap();
    assert!(p.preimage().is_some());
    // ⌊505,050 msat · 0.99⌋ = 499,999 units reach the merchant.
    assert_eq!(
        n.balances(NodeId::Merchant).unwrap().assets[0].units,
        499_999
    );
    // alice can receive the asset too, paid in sats by bob: ⌊404,040 · 0.99⌋ = 399,999 units.
    let to_alice = asset_invoice(&mut n, NodeId::Alice, 400_000, 0).unwrap();
    n.pay_sats(NodeId::Bob, &to_alice.invoice.payment_request, 5_000, T0)
        .unwrap();
    let alice = n.balances(NodeId::Alice).unwrap();
    assert_eq!(
        alice.assets[0].units,
        1_000_000_000 - p.units_spent().unwrap() + 399_999
    );
}

#[test]
fn asset_invoice_below_the_minimum_is_refused() {
    let mut n = net();
    let e = asset_invoice(&mut n, NodeId::Merchant, 10_000, 0).unwrap_err();
    assert_eq!(
        e,
        InvoiceError::BelowMinTransportable {
            units: 10_000,
            min: 350_460
        }
    );
    assert!(n.list_invoices(NodeId::Merchant).unwrap().is_empty());
    assert!(asset_invoice(&mut n, NodeId::Merchant, 350_460, 0).is_ok());
}

#[test]
fn paying_twice_fails_and_keeps_the_first_payment() {
    let mut n = net();
    let inv = plain(&mut n, NodeId::Merchant, 1_000_000, 0);
    let first = n
        .pay_sats(NodeId::Bob, &inv.payment_request, 5_000, T0)
        .unwrap();
    let before = snapshot(&n);
    let again = n.pay_sats(NodeId::Bob, &inv.payment_request, 5_000, T0 + 1);
    assert_eq!(again.unwrap_err(), PayError::AlreadyPaid(inv.payment_hash));
    let pay = asset_pay(&n, &inv.payment_request, false);
    let by_alice = n.pay_with_asset(NodeId::Alice, &pay, T0 + 1).unwrap_err();
    // Not alice's own payment: merchant's lnd rejects her HTLC (INCORRECT_PAYMENT_DETAILS).
    assert_eq!(by_alice, PayError::SettledByAnother(inv.payment_hash));
    assert_eq!(snapshot(&n), before);
    assert_eq!(n.payment(NodeId::Bob, &inv.payment_hash).unwrap(), &first);
    let alice = n.payment(NodeId::Alice, &inv.payment_hash).unwrap();
    assert!(matches!(
        alice.status,
        PaymentStatus::Failed {
            reason: FailureReason::IncorrectPaymentDetails,
            ..
        }
    ));
    assert_eq!(alice.preimage(), None);
}

#[test]
fn insufficient_balance_and_edge_liquidity() {
    let balances = InitialBalances {
        edge_msat_to_merchant: 1_000_000,
        alice_units: 500_000,
        ..Default::default()
    };
    let mut n = net_with(SimnetConfig {
        balances,
        ..SimnetConfig::default()
    });
    let big = plain(&mut n, NodeId::Edge, 20_000_000_000, 0);
    let e = n
        .pay_sats(NodeId::Bob, &big.payment_request, 0, T0)
        .unwrap_err();
    assert!(matches!(
        e,
        PayError::InsufficientBalance {
            node: NodeId::Bob,
            needed: 20_000_000_000,
            available: 10_000_000_000,
            unit: Unit::Msat,
            ..
        }
    ));
    assert_eq!(e.failure_reason(), FailureReason::InsufficientBalance);
    let inv = plain(&mut n, NodeId::Merchant, 2_000_000, 0);
    let e = n
        .pay_sats(NodeId::Bob, &inv.payment_request, 10_000, T0)
        .unwrap_err();
    assert!(matches!(e, PayError::NoRoute(ref m) if m.contains("edge has only 1000000 msat")));
    let small = plain(&mut n, NodeId::Merchant, 600_000, 0);
    let pay = asset_pay(&n, &small.payment_request, false);
    let e = n.pay_with_asset(NodeId::Alice, &pay, T0).unwrap_err();
    assert!(matches!(
        e,
        PayError::InsufficientBalance {
            node: NodeId::Alice,
            unit: Unit::AssetUnits,
            ..
        }
    ));
}

#[test]
fn node_down_fails_everything_touching_it() {
    let mut n = net();
    let inv = plain(&mut n, NodeId::Merchant, 1_000_000, 0);
    n.set_down(NodeId::Merchant, true);
    let e = n
        .pay_sats(NodeId::Bob, &inv.payment_request, 5_000, T0)
        .unwrap_err();
    assert_eq!(e, PayError::NodeDown(NodeId::Merchant));
    assert!(matches!(
        n.add_invoice(NodeId::Merchant, InvoiceRequest::default(), T0),
        Err(InvoiceError::NodeDown(_))
    ));
    assert_eq!(
        n.node_info(NodeId::Merchant),
        Err(QueryError::NodeDown(NodeId::Merchant))
    );
    assert!(n.faults(NodeId::Merchant).down);
    n.set_down(NodeId::Merchant, false);

    n.set_down(NodeId::Edge, true);
    let e = n
        .pay_sats(NodeId::Bob, &inv.payment_request, 5_000, T0)
        .unwrap_err();
    assert_eq!(e, PayError::NodeDown(NodeId::Edge));
    // tapd reports a down asset-channel peer as "no asset channels" (taproot-assets#1577).
    let e = asset_invoice(&mut n, NodeId::Merchant, 1_000_000, 0).unwrap_err();
    assert!(matches!(
        e,
        InvoiceError::NoAssetChannel {
            node: NodeId::Merchant,
            ..
        }
    ));
    assert!(!n.channels(NodeId::Bob).unwrap()[0].active);
    n.set_down(NodeId::Edge, false);

    n.set_down(NodeId::Bob, true);
    let e = n
        .pay_sats(NodeId::Bob, &inv.payment_request, 5_000, T0)
        .unwrap_err();
    assert_eq!(e, PayError::NodeDown(NodeId::Bob));
    n.set_down(NodeId::Bob, false);
    assert!(
        n.pay_sats(NodeId::Bob, &inv.payment_request, 5_000, T0)
            .is_ok()
    );
}

#[test]
fn rfq_rejection_blocks_asset_paths_only() {
    let mut n = net();
    let inv = plain(&mut n, NodeId::Merchant, 1_000_000, 0);
    n.set_rfq_reject(Some("price oracle unavailable".into()));
    let e = asset_invoice(&mut n, NodeId::Merchant, 1_000_000, 0).unwrap_err();
    let edge = n.pubkey(NodeId::Edge);
    assert_eq!(
        e,
        InvoiceError::RfqRejected {
            peer: edge,
            reason: "price oracle unavailable".into()
        }
    );
    let pay = asset_pay(&n, &inv.payment_request, false);
    let e = n.pay_with_asset(NodeId::Alice, &pay, T0).unwrap_err();
    assert_eq!(
        e,
        PayError::RfqRejected {
            peer: edge,
            reason: "price oracle unavailable".into()
        }
    );
    assert!(e.to_string().contains("pay in sats"));
    assert!(
        n.pay_sats(NodeId::Bob, &inv.payment_request, 5_000, T0)
            .is_ok()
    );
}

#[test]
fn small_asset_payments_need_allow_overpay() {
    let mut n = net();
    let inv = plain(&mut n, NodeId::Merchant, 10_000, 0);
    let pay = asset_pay(&n, &inv.payment_request, false);
    let e = n.pay_with_asset(NodeId::Alice, &pay, T0).unwrap_err();
    assert_eq!(
        e,
        // tapd checks the invoice amount plus the fee limit, not plus the fee.
        PayError::BelowMinTransportable {
            msat: 110_000,
            min_msat: 354_000
        }
    );
    let pay = asset_pay(&n, &inv.payment_request, true);
    let p = n.pay_with_asset(NodeId::Alice, &pay, T0).unwrap();
    // Overpaying changes nothing in the units, ⌊(10,000 + 1,010) · 1.01⌋: what is overpaid is
    // the HTLC's 354-sat anchor (tapd's checkOverpayment and ProduceHtlcExtraData, v0.8.1).
    assert_eq!(p.units_spent(), Some(11_120));
    assert!(p.asset.unwrap().overpaid);
    assert_eq!(
        local(&n, NodeId::Merchant, ChannelKind::Sats, NodeId::Edge),
        10_000
    );
}

#[test]
fn routing_rules_are_enforced() {
    let mut n = net();
    let inv = plain(&mut n, NodeId::Merchant, 1_000_000, 0);
    let e = n
        .pay_sats(NodeId::Bob, &inv.payment_request, 1_999, T0)
        .unwrap_err();
    assert_eq!(
        e,
        PayError::FeeLimitExceeded {
            fee_msat: 2_000,
            max_fee_msat: 1_999
        }
    );
    assert!(matches!(
        n.pay_sats(NodeId::Alice, &inv.payment_request, 5_000, T0),
        Err(PayError::NoRoute(_))
    ));
    assert!(matches!(
        n.pay_sats(NodeId::Merchant, &inv.payment_request, 5_000, T0),
        Err(PayError::NoRoute(_))
    ));
    let to_alice = plain(&mut n, NodeId::Alice, 1_000_000, 0);
    assert!(matches!(
        n.pay_sats(NodeId::Bob, &to_alice.payment_request, 5_000, T0),
        Err(PayError::NoRoute(_))
    ));
    let asset = asset_invoice(&mut n, NodeId::Merchant, 1_000_000, 0).unwrap();
    let e = n
        .pay_sats(NodeId::Edge, &asset.invoice.payment_request, 0, T0)
        .unwrap_err();
    assert_eq!(e, PayError::AssetInvoiceNeedsAsset(NodeId::Edge));
    // The edge pays a plain invoice directly, without a fee.
    assert_eq!(
        n.pay_sats(NodeId::Edge, &inv.payment_request, 0, T0)
            .unwrap()
            .fee_msat,
        0
    );
    let e = n
        .pay_sats(NodeId::Bob, "lnbcrt10u1qqqq", 5_000, T0)
        .unwrap_err();
    assert!(matches!(e, PayError::InvalidPaymentRequest(_)));
}
