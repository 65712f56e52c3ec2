//! Conformance cases for [`TokenLedger`]: records come back as recorded with their state,
//! lists are newest first, revocation is flagged once, revenue sums settled tokens.

use super::{hash, id};
use crate::store::{
    BalanceStore, Rail, RevenueRow, RootKeyStore, SettlementStore, StoreError, TokenLedger,
    TokenRecord, TokenView,
};

/// Token `n`: id and payment hash `n`, amounts proportional to `n`, units on the asset rail.
pub(super) fn record(n: u8, service: &str, rail: Rail, created_at: u64) -> TokenRecord {
    let n64 = u64::from(n);
    TokenRecord {
        token_id: id(n),
        payment_hash: hash(n),
        service: service.to_owned(),
        tier: n,
        rail,
        price_micro_usd: 1_000 * n64,
        msat: 10_000 * n64,
        units: (rail == Rail::Asset).then_some(7 * n64),
        prepaid_micro_usd: None,
        created_at,
        expires_at: created_at + 600,
    }
}

fn ids(views: &[TokenView]) -> Vec<u8> {
    views.iter().map(|v| v.record.token_id.0[0]).collect()
}

pub(crate) async fn ledger_returns_the_record_with_its_state(
    s: impl TokenLedger + SettlementStore + BalanceStore,
) {
    let r = TokenRecord {
        prepaid_micro_usd: Some(5_000_000),
        ..record(1, "api", Rail::Asset, 100)
    };
    s.record_token(&r).await.unwrap();
    let fresh = TokenView {
        record: r.clone(),
        settled: false,
        balance_micro_usd: None,
        revoked: false,
    };
    assert_eq!(s.token(&id(1)).await.unwrap(), Some(fresh.clone()));
    assert_eq!(s.token(&id(9)).await.unwrap(), None);
    s.record_settled(&r.payment_hash, r.msat, 1).await.unwrap();
    s.open_balance(&id(1), 5_000_000).await.unwrap();
    s.debit(&id(1), 1_000, None).await.unwrap();
    let paid = TokenView {
        settled: true,
        balance_micro_usd: Some(4_999_000),
        ..fresh
    };
    assert_eq!(s.token(&id(1)).await.unwrap(), Some(paid));
}

pub(crate) async fn duplicate_token_is_refused_and_keeps_the_first(s: impl TokenLedger) {
    let first = record(1, "api", Rail::Sats, 100);
    s.record_token(&first).await.unwrap();
    let again = record(1, "other", Rail::Asset, 200);
    assert!(matches!(s.record_token(&again).await, Err(StoreError::Duplicate(t)) if t == id(1)));
    assert_eq!(s.token(&id(1)).await.unwrap().unwrap().record, first);
}

pub(crate) async fn list_is_newest_first_limited_and_filtered(
    s: impl TokenLedger + SettlementStore,
) {
    assert!(s.list_tokens(10, false).await.unwrap().is_empty());
    // Token 4 ties token 2's time and was recorded later, so it lists first.
    for (n, at) in [(1, 100), (2, 300), (3, 200), (4, 300), (5, 50)] {
        s.record_token(&record(n, "api", Rail::Sats, at))
            .await
            .unwrap();
    }
    assert_eq!(
        ids(&s.list_tokens(10, false).await.unwrap()),
        [4, 2, 3, 1, 5]
    );
    assert_eq!(ids(&s.list_tokens(2, false).await.unwrap()), [4, 2]);
    assert!(s.list_tokens(0, false).await.unwrap().is_empty());
    assert!(s.list_tokens(10, true).await.unwrap().is_empty());
    s.record_settled(&hash(1), 10_000, 1).await.unwrap();
    s.record_settled(&hash(2), 20_000, 2).await.unwrap();
    let settled = s.list_tokens(10, true).await.unwrap();
    assert_eq!(ids(&settled), [2, 1]);
    assert!(settled.iter().all(|v| v.settled));
    assert_eq!(ids(&s.list_tokens(1, true).await.unwrap()), [2]);
    let all = s.list_tokens(10, false).await.unwrap();
    let flags: Vec<bool> = all.iter().map(|v| v.settled).collect();
    assert_eq!(flags, [false, true, false, true, false]);
}

pub(crate) async fn mark_revoked_flags_once_and_keeps_the_root_key(
    s: impl TokenLedger + RootKeyStore,
) {
    let key = s.create(&id(1)).await.unwrap();
    s.record_token(&record(1, "api", Rail::Sats, 100))
        .await
        .unwrap();
    s.record_token(&record(2, "api", Rail::Sats, 100))
        .await
        .unwrap();
    assert!(s.mark_revoked(&id(1)).await.unwrap());
    assert!(!s.mark_revoked(&id(1)).await.unwrap());
    assert!(!s.mark_revoked(&id(9)).await.unwrap());
    assert!(s.token(&id(1)).await.unwrap().unwrap().revoked);
    assert!(!s.token(&id(2)).await.unwrap().unwrap().revoked);
    // The ledger only flags: deleting the key is RootKeyStore::revoke's job.
    assert_eq!(s.get(&id(1)).await.unwrap(), Some(key));
    assert_eq!(s.list_tokens(10, false).await.unwrap().len(), 2);
}

pub(crate) async fn revenue_sums_settled_tokens_by_service_and_rail(
    s: impl TokenLedger + SettlementStore,
) {
    assert!(s.revenue().await.unwrap().is_empty());
    let tokens = [
        record(1, "search", Rail::Sats, 1),
        record(2, "search", Rail::Sats, 2),
        record(3, "search", Rail::Asset, 3),
        TokenRecord {
            prepaid_micro_usd: Some(50_000),
            ..record(4, "ai", Rail::Asset, 4)
        },
        record(5, "ai", Rail::Sats, 5),
        record(6, "ai", Rail::Sats, 6),
        record(7, "search", Rail::Asset, 7),
    ];
    for t in &tokens {
        s.record_token(t).await.unwrap();
    }
    // 5 and 7 never settle; 6 settles and is revoked (it was still paid); 99 is no token's.
    for n in [1, 2, 3, 4, 6, 99] {
        s.record_settled(&hash(n), 1, u64::from(n)).await.unwrap();
    }
    s.mark_revoked(&id(6)).await.unwrap();
    let row = |service: &str, rail, tokens, micro_usd, msat, units| RevenueRow {
        service: service.to_owned(),
        rail,
        tokens,
        micro_usd,
        msat,
        units,
    };
    // Sats sorts before Asset within a service (not by name).
    assert_eq!(
        s.revenue().await.unwrap(),
        [
            row("ai", Rail::Sats, 1, 6_000, 60_000, 0),
            row("ai", Rail::Asset, 1, 50_000, 40_000, 28),
            row("search", Rail::Sats, 2, 3_000, 30_000, 0),
            row("search", Rail::Asset, 1, 3_000, 30_000, 21),
        ]
    );
}
