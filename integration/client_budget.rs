//! The client's budget holds under concurrency: 50 payments race against a cap with room for
//! 10, through the real SQLite ledger on disk, and exactly 10 are paid. Each task reserves,
//! "pays" (a counter standing in for the node, which is what a cap must protect), then settles,
//! as the client does; a refused reservation must never reach the payment step.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use rust_decimal::Decimal;
use tapgate::client::budget::{Budget, BudgetError, Cap};
use tapgate::client::ledger::{
    ClientLedger, FILE_NAME, LedgerError, NewSpend, SpendState, Spent, TokenSlot,
};
use tapgate::l402::{PaymentHash, Preimage};
use tapgate::store::Rail;

const NOW: u64 = 1_767_225_600 + 600;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn spend(i: u8) -> NewSpend {
    NewSpend {
        url: format!("https://api.example.com/v1/call/{i}"),
        host: "api.example.com".into(),
        rail: if i.is_multiple_of(2) {
            Rail::Asset
        } else {
            Rail::Sats
        },
        invoice_msat: 50_000,
        fee_limit_msat: 500,
        worst_case_usd: d("0.05"),
        rate_units_per_btc: "100000000000".into(),
        payment_hash: PaymentHash([i; 32]),
        owner: None,
        token: None,
    }
}

async fn race(budget: Budget) -> (u32, Vec<LedgerError>, ClientLedger, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ClientLedger::open(&dir.path().join(FILE_NAME))
        .await
        .unwrap();
    let paid = Arc::new(AtomicU32::new(0));
    let budget = Arc::new(budget);
    let mut tasks = Vec::new();
    for i in 0..50u8 {
        let (ledger, paid, budget) = (ledger.clone(), paid.clone(), budget.clone());
        tasks.push(tokio::spawn(async move {
            let id = ledger.reserve(&spend(i), &budget, NOW).await?;
            paid.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            ledger
                .settle(
                    id,
                    &Spent {
                        usd: d("0.049"),
                        fee_msat: 100,
                        units: Some(49_000),
                    },
                    &Preimage::from_bytes([0; 32]),
                    TokenSlot::Replace,
                    NOW + 1,
                )
                .await
        }));
    }
    let mut refusals = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            refusals.push(e);
        }
    }
    (paid.load(Ordering::SeqCst), refusals, ledger, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_payments_against_a_daily_cap_for_ten_pay_exactly_ten() {
    let (paid, refusals, ledger, _dir) = race(Budget {
        per_day_usd: Some(d("0.50")),
        ..Budget::default()
    })
    .await;
    assert_eq!(paid, 10);
    assert_eq!(refusals.len(), 40);
    for e in &refusals {
        assert!(
            matches!(
                e,
                LedgerError::Budget(BudgetError::OverCap {
                    cap: Cap::PerDay,
                    ..
                })
            ),
            "{e:?}"
        );
    }
    let rows = ledger.spends(0).await.unwrap();
    assert_eq!(rows.len(), 10);
    assert!(rows.iter().all(|r| r.state == SpendState::Settled));
    assert_eq!(ledger.committed(NOW).await.unwrap().today_usd, d("0.49"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_payments_against_a_total_cap_for_ten_pay_exactly_ten() {
    let (paid, refusals, ledger, _dir) = race(Budget {
        total_usd: Some(d("0.50")),
        per_call_usd: Some(d("0.05")),
        ..Budget::default()
    })
    .await;
    assert_eq!((paid, refusals.len()), (10, 40));
    assert_eq!(ledger.committed(NOW).await.unwrap().total_usd, d("0.49"));
}
