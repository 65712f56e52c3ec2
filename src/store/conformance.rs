//! The one contract every store must meet, written once.
//!
//! `store_conformance!(async { make_store().await })` inside a store's test module expands
//! to one `#[tokio::test]` per case in the submodules, each on a fresh store. This module
//! owns the cases and their helpers; it must not reach into a store's internals, only its
//! traits.

use std::future::Future;
use std::sync::Arc;

use crate::l402::TokenId;

pub(crate) mod root_keys;

fn id(n: u8) -> TokenId {
    TokenId([n; 32])
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

/// Expands to the conformance tests for the store built by `$make` (an async block).
#[macro_export]
#[doc(hidden)]
macro_rules! store_conformance {
    ($make:expr) => {
        $crate::store_conformance!(@cases $make;
            root_keys::create_then_get_returns_the_same_key,
            root_keys::keys_are_random_and_distinct,
            root_keys::unknown_id_is_none,
            root_keys::duplicate_create_is_refused_and_keeps_the_first,
            root_keys::revoke_deletes_and_is_idempotent,
            root_keys::concurrent_creates_for_one_id_yield_one_key,
            root_keys::many_tokens
        );
    };
    (@cases $make:expr; $($module:ident :: $case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $make.await;
                $crate::store::conformance::$module::$case(store).await;
            }
        )*
    };
}
