//! Conformance cases for [`RootKeyStore`]: keys are random, unique per token id, and gone
//! after revocation.

use std::sync::Arc;

use super::{concurrently, id};
use crate::store::{RootKeyStore, StoreError};

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
    let s = Arc::new(s);
    let results = concurrently(&s, 8, |s, _| async move { s.create(&id(5)).await }).await;
    let mut won = Vec::new();
    for r in results {
        match r {
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
