use super::*;
use crate::client::ledger::SpendState;
use crate::l402::Preimage;

/// Leaves one payment of unknown outcome in a fresh ledger, and follows it up through a
/// node whose `TrackPaymentV2` answers `answer`.
async fn unknown_then_tracked(answer: tests::Answer) -> (FollowUp, tests::Fixture) {
    let f = tests::Fixture::new(tests::Answer::Timeout).await;
    let h = tests::holdings(true, false);
    let err = f.pay(&h, &Budget::default(), tests::NOW).await.unwrap_err();
    assert!(matches!(err, PayError::OutcomeUnknown { .. }), "{err:?}");
    let tracker = tests::FakeNode::new(f.preimage.clone(), answer);
    let wallet = Wallet {
        payments: &tracker,
        rates: &tracker,
        holdings: &h,
    };
    let done = follow_up(&wallet, &f.ledger, false, tests::NOW + 5)
        .await
        .unwrap();
    (done, f)
}

#[tokio::test]
async fn an_unknown_payment_found_paid_is_settled_at_what_it_cost() {
    let (done, f) = unknown_then_tracked(tests::Answer::Pay).await;
    assert_eq!((done.settled, done.released, done.still_unknown), (1, 0, 0));
    let rows = f.ledger.spends(0).await.unwrap();
    assert_eq!(rows[0].state, SpendState::Settled);
    // 50,000 msat + 7 msat fee at 1 unit per msat: $0.050007.
    assert_eq!(rows[0].usd, Decimal::new(50_007, 6));
}

#[tokio::test]
async fn an_unknown_payment_found_paid_recovers_the_token_it_bought() {
    let (done, f) = unknown_then_tracked(tests::Answer::Pay).await;
    assert_eq!((done.settled, done.tokens_recovered), (1, 1));
    let t = tests::TARGET;
    let token = f.ledger.token(t.origin, t.service, tests::NOW + 5).await;
    let token = token
        .unwrap()
        .expect("the token is cached after the follow-up");
    assert_eq!(token.preimage, f.preimage);
    assert_eq!(token.scheme, "L402");
}

/// A reservation as `pay_challenge` writes it, by `owner`, for the invoice of `preimage`.
async fn reserved_by(
    ledger: &ClientLedger,
    owner: Option<Owner>,
    preimage: &Preimage,
    at: u64,
) -> crate::client::ledger::SpendId {
    let t = tests::TARGET;
    ledger
        .reserve(
            &NewSpend {
                url: t.url.into(),
                host: t.host.into(),
                rail: Rail::Sats,
                invoice_msat: 50_000,
                fee_limit_msat: 500,
                worst_case_usd: Decimal::new(5_050, 5),
                rate_units_per_btc: "100000000000".into(),
                payment_hash: preimage.payment_hash(),
                owner,
                token: Some(PendingToken {
                    origin: t.origin.into(),
                    service: t.service.into(),
                    scheme: "L402".into(),
                    macaroon: "AgEB".into(),
                    expires_at: None,
                }),
            },
            &Budget::default(),
            at,
        )
        .await
        .unwrap()
}

/// A process that has exited.
fn gone() -> Owner {
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let owner = Owner::of(child.id()).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    owner
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_reservation_left_by_a_stopped_process_is_followed_up_and_one_in_flight_is_not() {
    let f = tests::Fixture::new(tests::Answer::Pay).await;
    let h = tests::holdings(true, true);
    // The process that reserved the fixture's invoice stopped mid-payment; another,
    // still running (this one), holds a second invoice's reservation.
    reserved_by(&f.ledger, Some(gone()), &f.preimage, tests::NOW).await;
    let other = Preimage::from_bytes([0x0b; 32]);
    reserved_by(&f.ledger, Owner::current(), &other, tests::NOW).await;
    let node = tests::FakeNode::new(f.preimage.clone(), tests::Answer::Pay);
    let wallet = Wallet {
        payments: &node,
        rates: &node,
        holdings: &h,
    };
    // Without `after_restart` reservations are not touched.
    let done = follow_up(&wallet, &f.ledger, false, tests::NOW + 5).await;
    assert_eq!(done.unwrap(), FollowUp::default());
    let done = follow_up(&wallet, &f.ledger, true, tests::NOW + 5)
        .await
        .unwrap();
    assert_eq!(
        (
            done.settled,
            done.tokens_recovered,
            done.in_flight_elsewhere
        ),
        (1, 1, 1)
    );
    let states: Vec<_> = f
        .ledger
        .spends(0)
        .await
        .unwrap()
        .iter()
        .map(|r| r.state)
        .collect();
    assert_eq!(states, [SpendState::Settled, SpendState::Reserved]);
    let t = tests::TARGET;
    let token = f.ledger.token(t.origin, t.service, tests::NOW + 5).await;
    assert_eq!(token.unwrap().unwrap().preimage, f.preimage);
    // Nothing was paid by the follow-up itself.
    assert!(node.calls.lock().unwrap().is_empty());
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_stopped_process_reservation_the_node_never_started_is_released_after_a_grace() {
    let f = tests::Fixture::new(tests::Answer::Pay).await;
    let h = tests::holdings(true, true);
    reserved_by(&f.ledger, Some(gone()), &f.preimage, tests::NOW).await;
    let node = tests::FakeNode::new(f.preimage.clone(), tests::Answer::NotInitiated);
    let wallet = Wallet {
        payments: &node,
        rates: &node,
        holdings: &h,
    };
    // Young: the payment may still reach the node, so it stays held.
    let done = follow_up(&wallet, &f.ledger, true, tests::NOW + 5)
        .await
        .unwrap();
    assert_eq!((done.released, done.still_unknown), (0, 1));
    let later = tests::NOW + NOT_INITIATED_GRACE_SECS;
    let done = follow_up(&wallet, &f.ledger, true, later).await.unwrap();
    assert_eq!((done.released, done.still_unknown), (1, 0));
    assert_eq!(
        f.ledger.committed(later).await.unwrap().total_usd,
        Decimal::ZERO
    );
}

#[tokio::test]
async fn an_unknown_payment_found_failed_is_released_and_one_still_unknown_stays_held() {
    let (done, f) = unknown_then_tracked(tests::Answer::Fail).await;
    assert_eq!((done.settled, done.released), (0, 1));
    assert_eq!(
        f.ledger.committed(tests::NOW).await.unwrap().total_usd,
        Decimal::ZERO
    );
    let (done, f) = unknown_then_tracked(tests::Answer::Timeout).await;
    assert_eq!(done.still_unknown, 1);
    assert_eq!(
        f.ledger.open_spends().await.unwrap()[0].state,
        SpendState::Unknown
    );
}
