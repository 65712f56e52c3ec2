//! Conformance cases for [`BalanceStore`]: balances debit exactly and never overdraw, keyed
//! retries debit once, free calls stop at the limit, and oversized input is refused alike.

use std::sync::Arc;

use super::ledger::record;
use super::{concurrently, hash, id};
use crate::store::{
    BalanceStore, Debit, MAX_IDEMPOTENCY_KEY_BYTES, Rail, SettlementStore, StoreError, TokenLedger,
    TokenRecord,
};

fn bad<T>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::BadInput(_)))
}

fn charged(remaining_micro_usd: u64) -> Debit {
    Debit::Charged {
        remaining_micro_usd,
        replayed: false,
    }
}

fn replayed(remaining_micro_usd: u64) -> Debit {
    Debit::Charged {
        remaining_micro_usd,
        replayed: true,
    }
}

fn insufficient(remaining_micro_usd: u64) -> Debit {
    Debit::Insufficient {
        remaining_micro_usd,
    }
}

pub(crate) async fn prepaid_balance_debits_exactly_and_runs_out_exactly(s: impl BalanceStore) {
    assert_eq!(s.balance(&id(1)).await.unwrap(), None);
    assert_eq!(s.debit(&id(1), 1, None).await.unwrap(), Debit::NoBalance);
    assert_eq!(s.open_balance(&id(1), 1_000).await.unwrap(), 1_000);
    assert_eq!(s.open_balance(&id(1), 9_999).await.unwrap(), 1_000);
    for left in [700, 400, 100] {
        assert_eq!(s.debit(&id(1), 300, None).await.unwrap(), charged(left));
    }
    assert_eq!(s.debit(&id(1), 300, None).await.unwrap(), insufficient(100));
    assert_eq!(s.balance(&id(1)).await.unwrap(), Some(100));
    assert_eq!(s.debit(&id(1), 100, None).await.unwrap(), charged(0));
    assert_eq!(s.debit(&id(1), 1, None).await.unwrap(), insufficient(0));
    assert_eq!(s.balance(&id(1)).await.unwrap(), Some(0));
    // A spent balance is not opened again.
    assert_eq!(s.open_balance(&id(1), 1_000).await.unwrap(), 0);
    assert_eq!(s.open_balance(&id(2), 50).await.unwrap(), 50);
}

pub(crate) async fn idempotent_retry_is_debited_once(s: impl BalanceStore) {
    s.open_balance(&id(1), 1_000).await.unwrap();
    assert_eq!(s.debit(&id(1), 300, Some("a")).await.unwrap(), charged(700));
    assert_eq!(
        s.debit(&id(1), 300, Some("a")).await.unwrap(),
        replayed(700)
    );
    assert_eq!(s.balance(&id(1)).await.unwrap(), Some(700));
    assert_eq!(s.debit(&id(1), 300, Some("b")).await.unwrap(), charged(400));
    // A repeat returns the first outcome, whatever the balance or amount is now.
    assert_eq!(
        s.debit(&id(1), 300, Some("a")).await.unwrap(),
        replayed(700)
    );
    assert_eq!(
        s.debit(&id(1), 999, Some("a")).await.unwrap(),
        replayed(700)
    );
    assert_eq!(s.balance(&id(1)).await.unwrap(), Some(400));
    // Keys belong to one token.
    s.open_balance(&id(2), 1_000).await.unwrap();
    assert_eq!(s.debit(&id(2), 300, Some("a")).await.unwrap(), charged(700));
    // A refused first attempt is not remembered: the key can still succeed.
    s.open_balance(&id(3), 100).await.unwrap();
    assert_eq!(
        s.debit(&id(3), 300, Some("k")).await.unwrap(),
        insufficient(100)
    );
    assert_eq!(s.debit(&id(3), 100, Some("k")).await.unwrap(), charged(0));
    assert_eq!(s.debit(&id(3), 100, Some("k")).await.unwrap(), replayed(0));
    assert_eq!(
        s.debit(&id(4), 1, Some("k")).await.unwrap(),
        Debit::NoBalance
    );
    s.open_balance(&id(4), 10).await.unwrap();
    assert_eq!(s.debit(&id(4), 1, Some("k")).await.unwrap(), charged(9));
}

pub(crate) async fn concurrent_retries_of_one_key_debit_once(s: impl BalanceStore + 'static) {
    let s = Arc::new(s);
    s.open_balance(&id(1), 1_000).await.unwrap();
    let outcomes = concurrently(&s, 16, |s, _| async move {
        s.debit(&id(1), 100, Some("same")).await.unwrap()
    })
    .await;
    let first = outcomes.iter().filter(|o| **o == charged(900)).count();
    let repeats = outcomes.iter().filter(|o| **o == replayed(900)).count();
    assert_eq!((first, repeats), (1, 15), "{outcomes:?}");
    assert_eq!(s.balance(&id(1)).await.unwrap(), Some(900));
}

pub(crate) async fn concurrent_debits_never_overdraw(s: impl BalanceStore + 'static) {
    let s = Arc::new(s);
    // Token 1 without keys, token 2 with a distinct key per task: 5 prices each, 20 tasks.
    for n in [1, 2] {
        s.open_balance(&id(n), 5 * 100).await.unwrap();
    }
    for n in [1u8, 2] {
        let outcomes = concurrently(&s, 20, move |s, i| async move {
            let key = format!("task-{i}");
            let key = (n == 2).then_some(key.as_str());
            s.debit(&id(n), 100, key).await.unwrap()
        })
        .await;
        let mut left: Vec<u64> = outcomes
            .iter()
            .filter_map(|o| match o {
                Debit::Charged {
                    remaining_micro_usd,
                    replayed: false,
                } => Some(*remaining_micro_usd),
                _ => None,
            })
            .collect();
        left.sort_unstable();
        // Exactly five charges, each leaving a different balance: no lost update.
        assert_eq!(left, [0, 100, 200, 300, 400], "token {n}: {outcomes:?}");
        let refused = outcomes.iter().filter(|o| **o == insufficient(0)).count();
        assert_eq!(refused, 15, "token {n}: {outcomes:?}");
        assert_eq!(s.balance(&id(n)).await.unwrap(), Some(0));
    }
}

pub(crate) async fn oversized_idempotency_key_is_refused(s: impl BalanceStore) {
    s.open_balance(&id(1), 1_000).await.unwrap();
    let too_long = "x".repeat(MAX_IDEMPOTENCY_KEY_BYTES + 1);
    // The cap is in bytes: 128 two-byte characters are 256 bytes.
    let too_long_in_bytes = "é".repeat(128);
    for key in [too_long.as_str(), too_long_in_bytes.as_str()] {
        assert!(bad(s.debit(&id(1), 1, Some(key)).await));
    }
    assert_eq!(s.balance(&id(1)).await.unwrap(), Some(1_000));
    let longest = "y".repeat(MAX_IDEMPOTENCY_KEY_BYTES);
    assert_eq!(
        s.debit(&id(1), 1, Some(&longest)).await.unwrap(),
        charged(999)
    );
    assert_eq!(
        s.debit(&id(1), 1, Some(&longest)).await.unwrap(),
        replayed(999)
    );
}

pub(crate) async fn free_calls_are_exactly_limit(s: impl BalanceStore) {
    for _ in 0..3 {
        assert!(s.take_free_call("api", "alice", 3).await.unwrap());
    }
    assert!(!s.take_free_call("api", "alice", 3).await.unwrap());
    assert!(!s.take_free_call("api", "alice", 3).await.unwrap());
    // Meters are per service and client.
    assert!(s.take_free_call("api", "bob", 3).await.unwrap());
    assert!(s.take_free_call("other", "alice", 3).await.unwrap());
    assert!(!s.take_free_call("api", "carol", 0).await.unwrap());
    // A raised limit gives the difference, no more.
    assert!(s.take_free_call("api", "alice", 4).await.unwrap());
    assert!(!s.take_free_call("api", "alice", 4).await.unwrap());
}

pub(crate) async fn concurrent_free_calls_are_exactly_limit(s: impl BalanceStore + 'static) {
    let s = Arc::new(s);
    let taken = concurrently(&s, 20, |s, _| async move {
        s.take_free_call("api", "dave", 5).await.unwrap()
    })
    .await;
    assert_eq!(taken.iter().filter(|t| **t).count(), 5);
}

pub(crate) async fn values_beyond_i64_are_refused_everywhere(
    s: impl BalanceStore + SettlementStore + TokenLedger,
) {
    let max = i64::MAX as u64;
    assert!(bad(s.record_settled(&hash(1), max + 1, 1).await));
    assert!(bad(s.record_settled(&hash(1), 1, u64::MAX).await));
    assert!(!s.is_settled(&hash(1)).await.unwrap());
    assert_eq!(s.settle_cursor().await.unwrap(), 0);
    let huge = [
        TokenRecord {
            msat: max + 1,
            ..record(1, "api", Rail::Sats, 1)
        },
        TokenRecord {
            prepaid_micro_usd: Some(u64::MAX),
            ..record(1, "api", Rail::Sats, 1)
        },
    ];
    for t in &huge {
        assert!(bad(s.record_token(t).await));
    }
    assert_eq!(s.token(&id(1)).await.unwrap(), None);
    assert!(bad(s.open_balance(&id(1), max + 1).await));
    assert_eq!(s.balance(&id(1)).await.unwrap(), None);
    assert_eq!(s.open_balance(&id(1), max).await.unwrap(), max);
    assert!(bad(s.debit(&id(1), max + 1, None).await));
    assert_eq!(s.debit(&id(1), max, None).await.unwrap(), charged(0));
    s.record_settled(&hash(2), max, max).await.unwrap();
    assert_eq!(s.settle_cursor().await.unwrap(), max);
}
