//! The one contract every [`RootKeyStore`] must meet, written once.
//!
//! `store_conformance!(async { make_store().await })` inside a store's test module expands
//! to one `#[tokio::test]` per case below, each on a fresh store.

use super::{RootKeyStore, StoreError};
use crate::l402::TokenId;

fn id(n: u8) -> TokenId {
    TokenId([n; 32])
}

pub(crate) async fn create_then_get_returns_the_same_key(s: impl RootKeyStore) {
    let key = s.create(&id(1)).await.unwrap();
    assert_eq!(s.get(&id(1)).await.unwrap(), Some(key));
}

pub(crate) async fn keys_are_random_and_distinct(s: impl RootKeyStore) {
    let a = s.create(&id(1)).await.unwrap();
    let b = s.create(&id(2)).await.unwrap();
    assert_ne!(a, b);
    assert_ne!(a.expose(), &[0; 32]);
}

pub(crate) async fn unknown_id_is_none(s: impl RootKeyStore) {
    assert_eq!(s.get(&id(9)).await.unwrap(), None);
}

pub(crate) async fn duplicate_create_is_refused_and_keeps_the_first(s: impl RootKeyStore) {
    let first = s.create(&id(1)).await.unwrap();
    assert!(matches!(s.create(&id(1)).await, Err(StoreError::Duplicate(t)) if t == id(1)));
    assert_eq!(s.get(&id(1)).await.unwrap(), Some(first));
}

pub(crate) async fn revoke_deletes_and_is_idempotent(s: impl RootKeyStore) {
    s.create(&id(1)).await.unwrap();
    let keep = s.create(&id(2)).await.unwrap();
    assert!(s.revoke(&id(1)).await.unwrap());
    assert_eq!(s.get(&id(1)).await.unwrap(), None);
    assert!(!s.revoke(&id(1)).await.unwrap());
    assert!(!s.revoke(&id(7)).await.unwrap());
    assert_eq!(s.get(&id(2)).await.unwrap(), Some(keep));
}

pub(crate) async fn concurrent_creates_for_one_id_yield_one_key(s: impl RootKeyStore + 'static) {
    let s = std::sync::Arc::new(s);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.create(&id(5)).await }));
    }
    let mut won = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(k) => won.push(k),
            Err(StoreError::Duplicate(_)) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(won.len(), 1);
    assert_eq!(s.get(&id(5)).await.unwrap().as_ref(), won.first());
}

pub(crate) async fn many_tokens(s: impl RootKeyStore) {
    let mut keys = Vec::new();
    for n in 0..200u8 {
        keys.push(s.create(&id(n)).await.unwrap());
    }
    for (n, k) in keys.iter().enumerate() {
        assert_eq!(s.get(&id(n as u8)).await.unwrap().as_ref(), Some(k));
    }
}

/// Expands to the conformance tests for the store built by `$make` (an async block).
#[macro_export]
#[doc(hidden)]
macro_rules! store_conformance {
    ($make:expr) => {
        $crate::store_conformance!(@cases $make;
            create_then_get_returns_the_same_key,
            keys_are_random_and_distinct,
            unknown_id_is_none,
            duplicate_create_is_refused_and_keeps_the_first,
            revoke_deletes_and_is_idempotent,
            concurrent_creates_for_one_id_yield_one_key,
            many_tokens
        );
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $make.await;
                $crate::store::conformance::$case(store).await;
            }
        )*
    };
}
