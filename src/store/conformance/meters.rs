//! Conformance cases for [`MeterStore`]: a charge debits the balance and every meter together
//! or nothing, sibling meters count apart while a shared one caps them together (also under
//! concurrency), keyed retries debit nothing, periods count apart, and bad input is refused
//! before anything changes.

use std::sync::Arc;

use super::{concurrently, id};
use crate::l402::TokenId;
use crate::l402::verify::MeterKey;
use crate::store::{
    BalanceStore, Charge, ChargeOutcome, MAX_METERS_PER_CHARGE, MeterDebit, MeterStore, StoreError,
};

fn key(n: u8) -> MeterKey {
    MeterKey([n; 32])
}

/// A meter counting `amount` against `cap` in period 0.
fn m(n: u8, cap: u64, amount: u64) -> MeterDebit {
    MeterDebit {
        key: key(n),
        period: 0,
        cap,
        amount,
    }
}

fn charge<'a>(token: &'a TokenId, balance: Option<u64>, meters: &'a [MeterDebit]) -> Charge<'a> {
    Charge {
        token_id: token,
        balance_micro_usd: balance,
        meters,
        idempotency_key: None,
    }
}

fn charged(remaining: Option<u64>) -> ChargeOutcome {
    ChargeOutcome::Charged {
        remaining_micro_usd: remaining,
        replayed: false,
    }
}

pub(crate) async fn a_charge_debits_balance_and_meters_together_or_not_at_all(
    s: impl BalanceStore + MeterStore,
) {
    let t = id(1);
    s.open_balance(&t, 1_000).await.unwrap();
    let meters = [m(1, 500, 200), m(2, 300, 1)];
    for (left, used) in [(800, 200), (600, 400)] {
        let r = s.charge(&charge(&t, Some(200), &meters)).await.unwrap();
        assert_eq!(r, charged(Some(left)));
        assert_eq!(s.meter_used(&key(1), 0).await.unwrap(), used);
    }
    // The first meter would pass its cap: nothing moves, not the balance, not the other meter.
    let r = s.charge(&charge(&t, Some(200), &meters)).await.unwrap();
    assert_eq!(
        r,
        ChargeOutcome::MeterFull {
            index: 0,
            used: 400
        }
    );
    assert_eq!(s.balance(&t).await.unwrap(), Some(600));
    assert_eq!(s.meter_used(&key(2), 0).await.unwrap(), 2);
    // The first meter in order that refuses is named.
    let r = s
        .charge(&charge(&t, Some(1), &[m(3, 10, 1), m(2, 2, 1), m(1, 0, 1)]))
        .await
        .unwrap();
    assert_eq!(r, ChargeOutcome::MeterFull { index: 1, used: 2 });
    assert_eq!(s.meter_used(&key(3), 0).await.unwrap(), 0);
    // The balance cannot pay: the meters that would pass are not moved either.
    let r = s
        .charge(&charge(&t, Some(700), &[m(4, 10_000, 700)]))
        .await
        .unwrap();
    assert_eq!(
        r,
        ChargeOutcome::Insufficient {
            remaining_micro_usd: 600
        }
    );
    assert_eq!(s.meter_used(&key(4), 0).await.unwrap(), 0);
    // No balance opened.
    let r = s
        .charge(&charge(&id(2), Some(1), &[m(5, 10, 1)]))
        .await
        .unwrap();
    assert_eq!(r, ChargeOutcome::NoBalance);
    assert_eq!(s.meter_used(&key(5), 0).await.unwrap(), 0);
    // A meter may be filled exactly to its cap, and a zero amount passes a full meter.
    let r = s
        .charge(&charge(&t, Some(100), &[m(1, 500, 100)]))
        .await
        .unwrap();
    assert_eq!(r, charged(Some(500)));
    assert_eq!(s.meter_used(&key(1), 0).await.unwrap(), 500);
    let r = s
        .charge(&charge(&t, Some(0), &[m(1, 500, 0)]))
        .await
        .unwrap();
    assert_eq!(r, charged(Some(500)));
    // A charge with meters and no balance (a token bought outright) touches no balance.
    let r = s
        .charge(&charge(&id(3), None, &[m(6, 2, 1)]))
        .await
        .unwrap();
    assert_eq!(r, charged(None));
    assert_eq!(s.balance(&id(3)).await.unwrap(), None);
    // Only a balance debit, as `debit` does it.
    let only = |amount| charge(&t, Some(amount), &[]);
    assert_eq!(s.charge(&only(100)).await.unwrap(), charged(Some(400)));
    assert_eq!(
        s.charge(&only(500)).await.unwrap(),
        ChargeOutcome::Insufficient {
            remaining_micro_usd: 400
        }
    );
    let unopened = id(4);
    assert_eq!(
        s.charge(&charge(&unopened, Some(1), &[])).await.unwrap(),
        ChargeOutcome::NoBalance
    );
    assert_eq!(
        s.charge(&charge(&unopened, None, &[])).await.unwrap(),
        charged(None)
    );
}

pub(crate) async fn sibling_meters_count_apart_and_a_shared_meter_caps_them_together(
    s: impl BalanceStore + MeterStore,
) {
    // One parent token's balance; the parent's cap (meter 9) of 500 is shared by two
    // sub-agents, each with a cap of its own (meters 1 and 2) of 300.
    let t = id(1);
    s.open_balance(&t, 10_000).await.unwrap();
    let a = [m(9, 500, 100), m(1, 300, 100)];
    let b = [m(9, 500, 100), m(2, 300, 100)];
    for _ in 0..3 {
        assert!(matches!(
            s.charge(&charge(&t, Some(100), &a)).await.unwrap(),
            ChargeOutcome::Charged { .. }
        ));
    }
    // a is at its own cap; b is not, and spends what the parent's cap has left.
    assert_eq!(
        s.charge(&charge(&t, Some(100), &a)).await.unwrap(),
        ChargeOutcome::MeterFull {
            index: 1,
            used: 300
        }
    );
    for _ in 0..2 {
        assert!(matches!(
            s.charge(&charge(&t, Some(100), &b)).await.unwrap(),
            ChargeOutcome::Charged { .. }
        ));
    }
    assert_eq!(
        s.charge(&charge(&t, Some(100), &b)).await.unwrap(),
        ChargeOutcome::MeterFull {
            index: 0,
            used: 500
        }
    );
    assert_eq!(s.meter_used(&key(1), 0).await.unwrap(), 300);
    assert_eq!(s.meter_used(&key(2), 0).await.unwrap(), 200);
    assert_eq!(s.meter_used(&key(9), 0).await.unwrap(), 500);
    assert_eq!(s.balance(&t).await.unwrap(), Some(9_500));
}

pub(crate) async fn concurrent_charges_never_pass_a_shared_cap(
    s: impl BalanceStore + MeterStore + 'static,
) {
    let s = Arc::new(s);
    s.open_balance(&id(1), 10_000).await.unwrap();
    // 24 calls from two siblings (caps of 6 calls' worth each) under a parent cap of 7.
    let outcomes = concurrently(&s, 24, |s, i| async move {
        let own = if i % 2 == 0 { 1 } else { 2 };
        let meters = [m(9, 700, 100), m(own, 600, 100), m(own + 10, 5, 1)];
        s.charge(&charge(&id(1), Some(100), &meters)).await.unwrap()
    })
    .await;
    let ok = outcomes
        .iter()
        .filter(|o| matches!(o, ChargeOutcome::Charged { .. }))
        .count();
    assert_eq!(ok, 7, "{outcomes:?}");
    assert_eq!(s.meter_used(&key(9), 0).await.unwrap(), 700);
    let (a, b) = (
        s.meter_used(&key(1), 0).await.unwrap(),
        s.meter_used(&key(2), 0).await.unwrap(),
    );
    assert_eq!(a + b, 700);
    assert_eq!(
        s.meter_used(&key(11), 0).await.unwrap() + s.meter_used(&key(12), 0).await.unwrap(),
        7
    );
    assert_eq!(s.balance(&id(1)).await.unwrap(), Some(9_300));
}

pub(crate) async fn keyed_retries_of_a_charge_debit_nothing(
    s: impl BalanceStore + MeterStore + 'static,
) {
    let t = id(1);
    s.open_balance(&t, 1_000).await.unwrap();
    let meters = [m(1, 1_000, 100), m(2, 5, 1)];
    let keyed = |k: &'static str| Charge {
        idempotency_key: Some(k),
        ..charge(&t, Some(100), &meters)
    };
    assert_eq!(s.charge(&keyed("a")).await.unwrap(), charged(Some(900)));
    let replay = ChargeOutcome::Charged {
        remaining_micro_usd: Some(900),
        replayed: true,
    };
    assert_eq!(s.charge(&keyed("a")).await.unwrap(), replay);
    assert_eq!(s.balance(&t).await.unwrap(), Some(900));
    assert_eq!(s.meter_used(&key(1), 0).await.unwrap(), 100);
    assert_eq!(s.meter_used(&key(2), 0).await.unwrap(), 1);
    // Concurrent retries of one new key: one charge.
    let s = Arc::new(s);
    let outcomes = concurrently(&s, 12, |s, _| async move {
        let meters = [m(1, 1_000, 100), m(2, 5, 1)];
        s.charge(&Charge {
            idempotency_key: Some("b"),
            ..charge(&id(1), Some(100), &meters)
        })
        .await
        .unwrap()
    })
    .await;
    let fresh = outcomes
        .iter()
        .filter(|o| **o == charged(Some(800)))
        .count();
    assert_eq!(fresh, 1, "{outcomes:?}");
    assert_eq!(s.meter_used(&key(2), 0).await.unwrap(), 2);
    // A refused charge's key is not remembered.
    let full = [m(3, 0, 1)];
    let refused = Charge {
        idempotency_key: Some("c"),
        ..charge(&t, Some(100), &full)
    };
    assert!(matches!(
        s.charge(&refused).await.unwrap(),
        ChargeOutcome::MeterFull { .. }
    ));
    let open = [m(3, 1, 1)];
    let retry = Charge {
        idempotency_key: Some("c"),
        ..charge(&t, Some(100), &open)
    };
    assert_eq!(s.charge(&retry).await.unwrap(), charged(Some(700)));
    // Without a balance, a keyed retry counts no call either.
    let calls = [m(4, 10, 1)];
    let bought = id(2);
    let outright = Charge {
        idempotency_key: Some("d"),
        ..charge(&bought, None, &calls)
    };
    assert_eq!(s.charge(&outright).await.unwrap(), charged(None));
    assert_eq!(
        s.charge(&outright).await.unwrap(),
        ChargeOutcome::Charged {
            remaining_micro_usd: None,
            replayed: true
        }
    );
    assert_eq!(s.meter_used(&key(4), 0).await.unwrap(), 1);
}

pub(crate) async fn a_meter_counts_each_period_apart(s: impl BalanceStore + MeterStore) {
    let t = id(1);
    s.open_balance(&t, 10_000).await.unwrap();
    let day = |period: u64| MeterDebit {
        period,
        ..m(1, 200, 100)
    };
    for period in [20_000, 20_000] {
        let r = s
            .charge(&charge(&t, Some(100), &[day(period)]))
            .await
            .unwrap();
        assert!(matches!(r, ChargeOutcome::Charged { .. }), "{r:?}");
    }
    assert_eq!(
        s.charge(&charge(&t, Some(100), &[day(20_000)]))
            .await
            .unwrap(),
        ChargeOutcome::MeterFull {
            index: 0,
            used: 200
        }
    );
    // The next day counts from zero; the day before is left as it was.
    let r = s
        .charge(&charge(&t, Some(100), &[day(20_001)]))
        .await
        .unwrap();
    assert_eq!(r, charged(Some(9_700)));
    assert_eq!(s.meter_used(&key(1), 20_000).await.unwrap(), 200);
    assert_eq!(s.meter_used(&key(1), 20_001).await.unwrap(), 100);
    assert_eq!(s.meter_used(&key(1), 0).await.unwrap(), 0);
}

pub(crate) async fn bad_charges_are_refused_before_anything_changes(
    s: impl BalanceStore + MeterStore,
) {
    let bad = |r: Result<ChargeOutcome, StoreError>| matches!(r, Err(StoreError::BadInput(_)));
    let t = id(1);
    s.open_balance(&t, 1_000).await.unwrap();
    let max = i64::MAX as u64;
    let too_long = "k".repeat(crate::store::MAX_IDEMPOTENCY_KEY_BYTES + 1);
    let twice = [m(1, 10, 1), m(1, 10, 1)];
    let huge_cap = [m(1, max + 1, 1)];
    let huge_period = [MeterDebit {
        period: max + 1,
        ..m(1, 10, 1)
    }];
    let many: Vec<MeterDebit> = (0..=MAX_METERS_PER_CHARGE)
        .map(|n| m(u8::try_from(n).unwrap(), 10, 1))
        .collect();
    for c in [
        charge(&t, Some(max + 1), &[]),
        charge(&t, Some(1), &twice),
        charge(&t, Some(1), &huge_cap),
        charge(&t, Some(1), &huge_period),
        charge(&t, Some(1), &many),
        Charge {
            idempotency_key: Some(&too_long),
            ..charge(&t, Some(1), &[])
        },
    ] {
        assert!(bad(s.charge(&c).await), "{c:?}");
    }
    assert_eq!(s.balance(&t).await.unwrap(), Some(1_000));
    assert_eq!(s.meter_used(&key(1), 0).await.unwrap(), 0);
    assert!(matches!(
        s.meter_used(&key(1), max + 1).await,
        Err(StoreError::BadInput(_))
    ));
    // The largest values are accepted.
    let r = s
        .charge(&charge(&t, Some(1_000), &[m(2, max, max)]))
        .await
        .unwrap();
    assert_eq!(r, charged(Some(0)));
    assert_eq!(s.meter_used(&key(2), 0).await.unwrap(), max);
}
