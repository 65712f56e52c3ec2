//! Conformance cases for [`SettlementStore`]: the cursor only rises, and recording a
//! settlement again changes nothing.

use std::sync::Arc;

use super::{concurrently, hash};
use crate::store::SettlementStore;

pub(crate) async fn cursor_starts_at_zero_and_only_rises(s: impl SettlementStore) {
    assert_eq!(s.settle_cursor().await.unwrap(), 0);
    s.record_settled(&hash(1), 1_000, 5).await.unwrap();
    assert_eq!(s.settle_cursor().await.unwrap(), 5);
    // A late stream event, then a direct lookup (index 0): neither lowers the cursor.
    s.record_settled(&hash(2), 1_000, 3).await.unwrap();
    assert_eq!(s.settle_cursor().await.unwrap(), 5);
    s.record_settled(&hash(3), 1_000, 0).await.unwrap();
    assert_eq!(s.settle_cursor().await.unwrap(), 5);
    s.record_settled(&hash(4), 1_000, 9).await.unwrap();
    assert_eq!(s.settle_cursor().await.unwrap(), 9);
    for n in 1..=4 {
        assert!(s.is_settled(&hash(n)).await.unwrap(), "hash {n}");
    }
}

pub(crate) async fn record_settled_is_idempotent(s: impl SettlementStore) {
    assert!(!s.is_settled(&hash(1)).await.unwrap());
    s.record_settled(&hash(1), 500, 4).await.unwrap();
    s.record_settled(&hash(1), 500, 4).await.unwrap();
    s.record_settled(&hash(1), 500, 0).await.unwrap();
    assert!(s.is_settled(&hash(1)).await.unwrap());
    assert_eq!(s.settle_cursor().await.unwrap(), 4);
    // Learnt by a lookup first, then seen on the stream: the stream's index still counts.
    s.record_settled(&hash(2), 700, 0).await.unwrap();
    assert_eq!(s.settle_cursor().await.unwrap(), 4);
    s.record_settled(&hash(2), 700, 8).await.unwrap();
    assert_eq!(s.settle_cursor().await.unwrap(), 8);
    assert!(!s.is_settled(&hash(9)).await.unwrap());
}

pub(crate) async fn concurrent_settlements_leave_the_highest_cursor(
    s: impl SettlementStore + 'static,
) {
    let s = Arc::new(s);
    // Each task records its own hash at its own index and, like a racing lookup, hash 200.
    let results = concurrently(&s, 32, |s, i| async move {
        let n = u8::try_from(i + 1).unwrap();
        s.record_settled(&hash(n), 1_000, u64::from(n)).await?;
        s.record_settled(&hash(200), 1_000, 0).await
    })
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(s.settle_cursor().await.unwrap(), 32);
    for n in (1..=32).chain([200]) {
        assert!(s.is_settled(&hash(n)).await.unwrap(), "hash {n}");
    }
}
