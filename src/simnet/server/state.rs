//! The state every simnet server shares: the model behind a mutex, the clock, and the change
//! signal that wakes the streaming RPCs.
//!
//! It owns the rule that makes streams correct: every mutation goes through
//! [`SimnetHandle::update`], which compares the model's generation before and after and wakes
//! every watcher when it moved. It never holds the lock across an `.await` (the mutex is
//! `std`'s, so it cannot be) and never sleeps.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::clock::Clock;
use crate::simnet::model::Simnet;

struct Inner {
    /// The network. Locked only for synchronous model calls, never across an `.await`.
    model: Mutex<Simnet>,
    /// The model's generation after the last [`SimnetHandle::update`]; watchers wake when it
    /// changes. Invariant: it equals `model.generation()` whenever the lock is free.
    changed: watch::Sender<u64>,
    /// Where "now" comes from: the system clock when serving, a
    /// [`ManualClock`](crate::clock::ManualClock) in tests so quote and invoice expiry can be
    /// stepped past without sleeping.
    clock: Arc<dyn Clock>,
}

/// A cloneable handle on the running network's model, for the servers and for tests that flip
/// fault knobs or read balances while the servers run.
#[derive(Clone)]
pub struct SimnetHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SimnetHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimnetHandle")
            .field("generation", &*self.inner.changed.borrow())
            .finish_non_exhaustive()
    }
}

impl SimnetHandle {
    /// Wraps `model`, reading time from `clock`.
    pub fn new(model: Simnet, clock: Arc<dyn Clock>) -> Self {
        let (changed, _) = watch::channel(model.generation());
        Self {
            inner: Arc::new(Inner {
                model: Mutex::new(model),
                changed,
                clock,
            }),
        }
    }

    /// Now, unix seconds, from the injected clock.
    pub fn now(&self) -> u64 {
        self.inner.clock.now_unix()
    }

    fn lock(&self) -> MutexGuard<'_, Simnet> {
        // The model's methods do not panic on their own data; if a caller's closure panicked
        // mid-update, the model is still a valid network (every method checks before it
        // mutates), so serving it beats failing every later call.
        self.inner
            .model
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the model.
    pub fn read<R>(&self, f: impl FnOnce(&Simnet) -> R) -> R {
        f(&self.lock())
    }

    /// Changes the model (any method, fault knobs included) and wakes every stream if it
    /// changed.
    pub fn update<R>(&self, f: impl FnOnce(&mut Simnet) -> R) -> R {
        let mut model = self.lock();
        let out = f(&mut model);
        let generation = model.generation();
        drop(model);
        self.inner.changed.send_if_modified(|g| {
            let moved = *g != generation;
            *g = generation;
            moved
        });
        out
    }

    /// Like [`Self::update`], with the clock's `now`, after cancelling the invoices that expired
    /// by then (what lnd's expiry watcher would have done).
    pub fn update_now<R>(&self, f: impl FnOnce(&mut Simnet, u64) -> R) -> R {
        let now = self.now();
        self.update(|m| {
            m.cancel_expired_invoices(now);
            f(m, now)
        })
    }

    /// A receiver that changes whenever the model does.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::simnet::model::{NodeId, SimnetConfig};

    #[test]
    fn updates_wake_watchers_only_when_the_model_changes() {
        let clock = Arc::new(ManualClock::new(100));
        let net = SimnetHandle::new(Simnet::new(SimnetConfig::default()).unwrap(), clock.clone());
        let mut rx = net.subscribe();
        rx.mark_unchanged();
        net.read(|m| m.generation());
        net.update(|m| m.generation());
        assert!(!rx.has_changed().unwrap());
        net.update(|m| m.set_down(NodeId::Bob, true));
        assert!(rx.has_changed().unwrap());
        clock.advance(5);
        assert_eq!(net.update_now(|_, now| now), 105);
    }
}
