use super::*;
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn spend(hash: u8, usd: &str) -> NewSpend {
    NewSpend {
        url: "https://api.example.com/weather".into(),
        host: "api.example.com".into(),
        rail: Rail::Asset,
        invoice_msat: 10_000,
        fee_limit_msat: 1_000,
        worst_case_usd: d(usd),
        rate_units_per_btc: "100000000000".into(),
        payment_hash: PaymentHash([hash; 32]),
        owner: None,
        token: None,
    }
}

const NOW: u64 = 1_767_225_600 + 3_600;

fn pending(origin: &str, macaroon: &str) -> PendingToken {
    PendingToken {
        origin: origin.into(),
        service: "weather".into(),
        scheme: "L402".into(),
        macaroon: macaroon.into(),
        expires_at: Some(NOW + 600),
    }
}

/// A reservation with its token, for the invoice of `preimage`.
async fn reserve_with_token(l: &ClientLedger, preimage: &Preimage, macaroon: &str) -> SpendId {
    l.reserve(
        &NewSpend {
            payment_hash: preimage.payment_hash(),
            owner: Owner::current(),
            token: Some(pending("http://api.example.com", macaroon)),
            ..spend(0, "0.10")
        },
        &Budget::default(),
        NOW,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn the_token_kept_with_a_reservation_is_cached_when_it_settles() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(&dir).await;
    let spent = Spent {
        usd: d("0.09"),
        fee_msat: 1,
        units: None,
    };
    let (p1, p2, p3) = (
        Preimage::from_bytes([1; 32]),
        Preimage::from_bytes([2; 32]),
        Preimage::from_bytes([3; 32]),
    );

    // Settled with its own preimage: cached, and the reservation's owner is recorded.
    let id = reserve_with_token(&l, &p1, "AgEB").await;
    let row = &l.open_spends().await.unwrap()[0];
    assert_eq!(row.owner, Owner::current());
    let cached = l
        .settle(id, &spent, &p1, TokenSlot::Replace, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cached.macaroon, "AgEB");
    let got = l
        .token("http://api.example.com", "weather", NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, cached);
    assert_eq!(got.preimage, p1);

    // A later payment followed up (IfFree) does not push out a live token...
    let id = reserve_with_token(&l, &p2, "AgEC").await;
    assert_eq!(
        l.settle(id, &spent, &p2, TokenSlot::IfFree, NOW)
            .await
            .unwrap(),
        None
    );
    let got = l.token("http://api.example.com", "weather", NOW).await;
    assert_eq!(got.unwrap().unwrap().macaroon, "AgEB");
    // ...but fills an expired slot.
    let later = NOW + 601;
    let id = reserve_with_token(&l, &p3, "AgED").await;
    let mut spent_later = spent.clone();
    spent_later.usd = d("0.01");
    let cached = l
        .settle(id, &spent_later, &p3, TokenSlot::IfFree, later)
        .await
        .unwrap();
    assert_eq!(cached.map(|t| t.macaroon), Some("AgED".to_owned()));

    // A preimage that does not unlock the invoice caches nothing (the spend still settles).
    let p4 = Preimage::from_bytes([4; 32]);
    let id = reserve_with_token(&l, &p4, "AgEE").await;
    let wrong = Preimage::from_bytes([5; 32]);
    assert_eq!(
        l.settle(id, &spent, &wrong, TokenSlot::Replace, NOW)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        l.spends(0).await.unwrap().last().unwrap().state,
        SpendState::Settled
    );

    // A released reservation drops its token: settling is refused, nothing cached.
    let p6 = Preimage::from_bytes([6; 32]);
    let id = reserve_with_token(&l, &p6, "AgEG").await;
    l.release(id, NOW).await.unwrap();
    assert!(matches!(
        l.settle(id, &spent, &p6, TokenSlot::Replace, NOW).await,
        Err(LedgerError::NotOpen(_))
    ));
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM client_pending_tokens")
        .fetch_one(&l.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

async fn ledger(dir: &tempfile::TempDir) -> ClientLedger {
    ClientLedger::open(&dir.path().join(FILE_NAME))
        .await
        .unwrap()
}

#[tokio::test]
async fn reserve_settle_release_and_unknown_move_the_committed_sums() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(&dir).await;
    let budget = Budget {
        per_day_usd: Some(d("1")),
        ..Budget::default()
    };
    let a = l.reserve(&spend(1, "0.30"), &budget, NOW).await.unwrap();
    let b = l.reserve(&spend(2, "0.30"), &budget, NOW).await.unwrap();
    let c = l.reserve(&spend(3, "0.30"), &budget, NOW).await.unwrap();
    let err = l
        .reserve(&spend(4, "0.30"), &budget, NOW)
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::Budget(_)), "{err:?}");
    l.settle(
        a,
        &Spent {
            usd: d("0.1000001"),
            fee_msat: 12,
            units: Some(100_001),
        },
        &Preimage::from_bytes([0; 32]),
        TokenSlot::Replace,
        NOW + 1,
    )
    .await
    .unwrap();
    l.release(b, NOW + 1).await.unwrap();
    l.mark_unknown(c, NOW + 1).await.unwrap();
    let committed = l.committed(NOW + 2).await.unwrap();
    // a spent 0.100001 (rounded up), b released, c still held.
    assert_eq!(committed.today_usd, d("0.400001"));
    // A released row cannot settle; a settled one cannot be released.
    assert!(matches!(
        l.release(b, NOW).await,
        Err(LedgerError::NotOpen(_))
    ));
    assert!(matches!(
        l.release(a, NOW).await,
        Err(LedgerError::NotOpen(_))
    ));
    // The next day has room again; the total still counts everything.
    let tomorrow = NOW + 86_400;
    let c2 = l.committed(tomorrow).await.unwrap();
    assert_eq!((c2.today_usd, c2.total_usd), (Decimal::ZERO, d("0.400001")));
    let open = l.open_spends().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].state, SpendState::Unknown);
    assert_eq!(open[0].payment_hash, hex::encode([3u8; 32]));
}

#[tokio::test]
async fn an_invoice_is_never_reserved_twice_unless_released() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(&dir).await;
    let any = Budget::default();
    let a = l.reserve(&spend(1, "0.01"), &any, NOW).await.unwrap();
    assert!(matches!(
        l.reserve(&spend(1, "0.01"), &any, NOW).await,
        Err(LedgerError::OutcomeUnknown(_))
    ));
    l.mark_unknown(a, NOW).await.unwrap();
    assert!(matches!(
        l.reserve(&spend(1, "0.01"), &any, NOW).await,
        Err(LedgerError::OutcomeUnknown(_))
    ));
    let spent = Spent {
        usd: d("0.01"),
        fee_msat: 0,
        units: None,
    };
    l.settle(
        a,
        &spent,
        &Preimage::from_bytes([0; 32]),
        TokenSlot::Replace,
        NOW,
    )
    .await
    .unwrap();
    assert!(matches!(
        l.reserve(&spend(1, "0.01"), &any, NOW).await,
        Err(LedgerError::AlreadyPaid(_))
    ));
    let b = l.reserve(&spend(2, "0.01"), &any, NOW).await.unwrap();
    l.release(b, NOW).await.unwrap();
    assert!(l.reserve(&spend(2, "0.01"), &any, NOW).await.is_ok());
}

#[tokio::test]
async fn the_host_allowlist_is_checked_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(&dir).await;
    let only = Budget {
        allowed_hosts: Some(vec!["other.example.com".into()]),
        ..Budget::default()
    };
    assert!(matches!(
        l.reserve(&spend(1, "0.01"), &only, NOW).await,
        Err(LedgerError::Budget(BudgetError::HostNotAllowed { .. }))
    ));
    assert!(l.spends(0).await.unwrap().is_empty());
}

/// `token inspect`'s test macaroon: payment hash `9f72…`, token id `33…`, unlocked by the
/// preimage `22…`.
const MAC: &str = "AgEEbHNhdAJCAACfcuoM9JU248ZseH9wUYbfmkN4CDdTrpU21ls61/zdxDMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzAAIOc2VydmljZXM9c3ZjOjAAAAYgMhGOTzBwhH01+TTSs/Czt2wCshcooHKpXoye029+Ew0=";

#[tokio::test]
async fn tokens_are_listed_with_their_payment_and_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(&dir).await;
    let hash =
        PaymentHash::from_hex("9f72ea0cf49536e3c66c787f705186df9a4378083753ae9536d65b3ad7fcddc4")
            .unwrap();
    let id = l
        .reserve(
            &NewSpend {
                payment_hash: hash,
                ..spend(1, "0.50")
            },
            &Budget::default(),
            NOW,
        )
        .await
        .unwrap();
    let spent = Spent {
        usd: d("0.5001"),
        fee_msat: 7,
        units: Some(500_100),
    };
    l.settle(
        id,
        &spent,
        &Preimage::from_bytes([0; 32]),
        TokenSlot::Replace,
        NOW,
    )
    .await
    .unwrap();
    let paid = CachedToken {
        scheme: "L402".into(),
        macaroon: MAC.into(),
        preimage: Preimage::from_bytes([0x22; 32]),
        expires_at: Some(NOW + 60),
    };
    // Not a version-0 identifier, never paid through this ledger, and expired.
    let odd = CachedToken {
        scheme: "LSAT".into(),
        macaroon: "AgEEbHNhdA".into(),
        preimage: Preimage::from_bytes([0x44; 32]),
        expires_at: Some(NOW),
    };
    l.put_token("http://127.0.0.1:8080", "svc", &paid, NOW)
        .await
        .unwrap();
    l.put_token("http://127.0.0.1:8080", "odd", &odd, NOW)
        .await
        .unwrap();
    let rows = l.tokens(NOW).await.unwrap();
    assert_eq!(rows.len(), 2);
    let (odd_row, row) = (&rows[0], &rows[1]);
    assert_eq!((row.service.as_str(), row.scheme.as_str()), ("svc", "L402"));
    assert_eq!(row.payment_hash, Some(hash));
    assert_eq!(row.token_id, Some(TokenId([0x33; 32])));
    assert_eq!((row.expires_at, row.expired), (Some(NOW + 60), false));
    assert_eq!(row.stored_at, NOW);
    let p = row.paid.as_ref().unwrap();
    assert_eq!(
        (p.id, p.state, p.rail, p.usd, p.units),
        (
            id.0,
            SpendState::Settled,
            Rail::Asset,
            d("0.5001"),
            Some(500_100)
        )
    );
    assert_eq!(odd_row.service, "odd");
    assert_eq!((odd_row.token_id, odd_row.payment_hash), (None, None));
    assert!(odd_row.expired && odd_row.paid.is_none());
    // Neither the JSON nor Debug holds a macaroon or a preimage.
    for shown in [serde_json::to_string(&rows).unwrap(), format!("{rows:?}")] {
        for secret in [MAC, "AgEEbHNhdA", &"22".repeat(32), &"44".repeat(32)] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
    assert!(
        serde_json::to_string(&rows)
            .unwrap()
            .contains(&"33".repeat(32))
    );
}

#[tokio::test]
async fn state_and_tokens_survive_a_restart_and_tokens_expire() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(&dir).await;
    l.reserve(&spend(1, "0.25"), &Budget::default(), NOW)
        .await
        .unwrap();
    let token = CachedToken {
        scheme: "L402".into(),
        macaroon: "AgEEbHNhdA".into(),
        preimage: Preimage::from_bytes([5; 32]),
        expires_at: Some(NOW + 60),
    };
    l.put_token("https://api.example.com", "weather", &token, NOW)
        .await
        .unwrap();
    l.close().await;
    let l = ledger(&dir).await;
    assert_eq!(l.committed(NOW).await.unwrap().total_usd, d("0.25"));
    let got = l
        .token("https://api.example.com", "weather", NOW + 59)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, token);
    assert_eq!(
        got.authorization(),
        format!("L402 AgEEbHNhdA:{}", "05".repeat(32))
    );
    let shown = format!("{got:?}");
    assert!(
        !shown.contains("AgEEbHNhdA") && !shown.contains("0505"),
        "{shown}"
    );
    assert_eq!(
        l.token("https://api.example.com", "weather", NOW + 60)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        l.token("https://api.example.com", "other", NOW)
            .await
            .unwrap(),
        None
    );
    l.forget_token("https://api.example.com", "weather")
        .await
        .unwrap();
    assert_eq!(
        l.token("https://api.example.com", "weather", NOW)
            .await
            .unwrap(),
        None
    );
}
