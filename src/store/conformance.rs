//! The one contract every store must meet, written once.
//!
//! `store_conformance!(async { make_store().await })` inside a store's test module expands
//! to one `#[tokio::test]` per case in the submodules, each on a fresh store; a store must
//! implement every store trait. `store_conformance!(optional async { … })` takes a block
//! giving `Option<store>`, for a store that needs a server the machine may lack: a `None`
//! case returns at once (its builder says why; `postgres.rs`'s panics instead under CI). This module owns the cases and their helpers; it must not
//! reach into a store's internals, only its traits.

use std::future::Future;
use std::sync::Arc;

use crate::l402::{PaymentHash, TokenId};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use crate::store::{BalanceStore, Debit, Rail, SettlementStore, TokenLedger, TokenRecord};

pub(crate) mod balance;
pub(crate) mod ledger;
pub(crate) mod meters;
pub(crate) mod root_keys;
pub(crate) mod settlement;

fn id(n: u8) -> TokenId {
    TokenId([n; 32])
}

fn hash(n: u8) -> PaymentHash {
    PaymentHash([n; 32])
}

/// Runs `f(store, i)` for `i` in `0..n`, each on its own tokio task, released together by a
/// barrier so they overlap; their results in the order of `i`.
async fn concurrently<S, F, Fut, T>(s: &Arc<S>, n: usize, f: F) -> Vec<T>
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let start = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (start, work) = (start.clone(), f(s.clone(), i));
            tokio::spawn(async move {
                start.wait().await;
                work.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Writes one of each kind of state a restart must keep (a prepaid token, its settlement at
/// index 42, its balance less a debit under key "k", a free call) and returns the token.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) async fn fill_for_reopen<S>(s: &S) -> TokenRecord
where
    S: TokenLedger + SettlementStore + BalanceStore,
{
    let record = TokenRecord {
        token_id: id(6),
        payment_hash: hash(7),
        service: "api".into(),
        tier: 2,
        rail: Rail::Asset,
        price_micro_usd: 1_000_000,
        msat: 2_000,
        units: Some(3),
        prepaid_micro_usd: Some(5_000_000),
        created_at: 100,
        expires_at: 700,
    };
    s.record_token(&record).await.unwrap();
    s.record_settled(&record.payment_hash, 2_000, 42)
        .await
        .unwrap();
    s.open_balance(&record.token_id, 5_000_000).await.unwrap();
    s.debit(&record.token_id, 1_000, Some("k")).await.unwrap();
    assert!(s.take_free_call("api", "c", 1).await.unwrap());
    record
}

/// Checks, on a reopened store, what [`fill_for_reopen`] wrote.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) async fn check_reopened<S>(s: &S, record: &TokenRecord)
where
    S: TokenLedger + SettlementStore + BalanceStore,
{
    assert_eq!(s.settle_cursor().await.unwrap(), 42);
    let view = s.token(&record.token_id).await.unwrap().unwrap();
    assert_eq!(&view.record, record);
    assert!(view.settled);
    assert_eq!(view.balance_micro_usd, Some(4_999_000));
    assert_eq!(
        s.debit(&record.token_id, 1_000, Some("k")).await.unwrap(),
        Debit::Charged {
            remaining_micro_usd: 4_999_000,
            replayed: true
        }
    );
    assert!(!s.take_free_call("api", "c", 1).await.unwrap());
}

/// Expands to the conformance tests for the store built by `$make` (an async block).
#[macro_export]
#[doc(hidden)]
macro_rules! store_conformance {
    (optional $make:expr) => {
        $crate::store_conformance!(@cases $make;
            root_keys::create_then_get_returns_the_same_key,
            root_keys::keys_are_random_and_distinct,
            root_keys::unknown_id_is_none,
            root_keys::duplicate_create_is_refused_and_keeps_the_first,
            root_keys::revoke_deletes_and_is_idempotent,
            root_keys::concurrent_creates_for_one_id_yield_one_key,
            root_keys::many_tokens,
            settlement::cursor_starts_at_zero_and_only_rises,
            settlement::record_settled_is_idempotent,
            settlement::concurrent_settlements_leave_the_highest_cursor,
            ledger::ledger_returns_the_record_with_its_state,
            ledger::duplicate_token_is_refused_and_keeps_the_first,
            ledger::list_is_newest_first_limited_and_filtered,
            ledger::mark_revoked_flags_once_and_keeps_the_root_key,
            ledger::revenue_sums_settled_tokens_by_service_and_rail,
            balance::prepaid_balance_debits_exactly_and_runs_out_exactly,
            balance::idempotent_retry_is_debited_once,
            balance::concurrent_retries_of_one_key_debit_once,
            balance::concurrent_debits_never_overdraw,
            balance::oversized_idempotency_key_is_refused,
            balance::free_calls_are_exactly_limit,
            balance::concurrent_free_calls_are_exactly_limit,
            balance::values_beyond_i64_are_refused_everywhere,
            meters::a_charge_debits_balance_and_meters_together_or_not_at_all,
            meters::sibling_meters_count_apart_and_a_shared_meter_caps_them_together,
            meters::concurrent_charges_never_pass_a_shared_cap,
            meters::keyed_retries_of_a_charge_debit_nothing,
            meters::a_meter_counts_each_period_apart,
            meters::bad_charges_are_refused_before_anything_changes
        );
    };
    ($make:expr) => {
        $crate::store_conformance!(optional async { Some($make.await) });
    };
    (@cases $make:expr; $($module:ident :: $case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $make.await else { return };
                $crate::store::conformance::$module::$case(store).await;
            }
        )*
    };
}
