//! The settlement tracker: which invoices the seller's node has settled, learnt from lnd's
//! resumable settlement stream, persisted with its cursor, and asked of the node directly at
//! most once for a token whose settlement the stream has not delivered yet.
//!
//! Strict settlement (the default) means a token is honoured only once its payment hash is seen
//! settled here. A buyer who paid holds the preimage before the seller's stream delivers the
//! settlement, so a paid token can arrive first; then [`SettlementTracker::is_settled`] asks the
//! node once (`LookupInvoice`) instead of answering with a new challenge, which would make the
//! buyer pay twice.
//!
//! It owns the in-memory set of settled hashes (the hot path reads only that), the stream's
//! cursor in the store, and the direct lookups. It must not decide what a refusal looks like
//! (that is the gateway's) or read the system clock.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use tokio_util::sync::CancellationToken;

use crate::l402::PaymentHash;
use crate::lightning::error::BackendError;
use crate::lightning::traits::Invoices;
use crate::lightning::types::InvoiceState;
use crate::store::{SettlementStore, StoreError};

/// Why settlement could not be established.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// The node did not answer the lookup.
    #[error("cannot ask the seller's node whether the invoice settled: {0}")]
    Node(#[source] BackendError),
    /// The store failed.
    #[error("cannot read or record a settlement: {0}")]
    Store(#[source] StoreError),
}

/// What the tracker knows of one payment hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Settled (seen on the stream, in the store, or by the direct lookup).
    Yes,
    /// The node has the invoice but it is not settled.
    NotYet,
    /// The node has no invoice with this hash (not this seller's token).
    Unknown,
}

/// Tracks settlements of one node's invoices.
#[derive(Debug)]
pub struct SettlementTracker<S> {
    store: Arc<S>,
    /// Hashes seen settled since start (and, lazily, from the store). Invariant: only hashes
    /// recorded in the store first are added, so a restart loses nothing.
    settled: RwLock<HashSet<PaymentHash>>,
    /// Whether the settlement stream is delivering (false while it reconnects).
    streaming: AtomicBool,
    /// Settlements delivered by the stream since start.
    delivered: AtomicU64,
    /// Direct lookups made since start.
    lookups: AtomicU64,
}

impl<S: SettlementStore + 'static> SettlementTracker<S> {
    /// A tracker persisting to `store`.
    pub fn new(store: Arc<S>) -> Self {
        Self {
            store,
            settled: RwLock::default(),
            streaming: AtomicBool::new(false),
            delivered: AtomicU64::new(0),
            lookups: AtomicU64::new(0),
        }
    }

    /// Whether the settlement stream is being followed and its last word was not a failure.
    pub fn is_streaming(&self) -> bool {
        self.streaming.load(Ordering::Relaxed)
    }

    /// Settlements the stream delivered since start.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Direct lookups made since start.
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    /// Follows `lnd`'s settlement stream from the stored cursor until `cancel`, recording each
    /// settlement. Runs as a named task for the gateway's life.
    pub async fn follow<L: Invoices>(
        self: Arc<Self>,
        lnd: L,
        cancel: CancellationToken,
    ) -> Result<(), TrackerError> {
        let cursor = self
            .store
            .settle_cursor()
            .await
            .map_err(TrackerError::Store)?;
        tracing::info!(cursor, "following the node's settlements");
        let mut rx = lnd.settlements(cursor);
        // Ready until the stream reports a failure; it says nothing while all is well and no
        // invoice settles.
        self.streaming.store(true, Ordering::Relaxed);
        loop {
            let item = tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                item = rx.recv() => item,
            };
            match item {
                None => {
                    self.streaming.store(false, Ordering::Relaxed);
                    return Ok(());
                }
                Some(Ok(s)) => {
                    self.streaming.store(true, Ordering::Relaxed);
                    self.record(&s.payment_hash, s.amt_paid_msat, s.settle_index)
                        .await?;
                    self.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Some(Err(e)) => {
                    // The stream reconnects by itself; while it does, settled tokens keep
                    // working from memory and new ones are confirmed by direct lookups.
                    self.streaming.store(false, Ordering::Relaxed);
                    tracing::warn!(error = %e, "settlement stream interrupted; reconnecting");
                }
            }
        }
    }

    async fn record(
        &self,
        hash: &PaymentHash,
        amt_paid_msat: u64,
        settle_index: u64,
    ) -> Result<(), TrackerError> {
        self.store
            .record_settled(hash, amt_paid_msat, settle_index)
            .await
            .map_err(TrackerError::Store)?;
        self.settled
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(*hash);
        Ok(())
    }

    /// Whether `hash` is settled, from memory alone (the hot path).
    pub fn seen(&self, hash: &PaymentHash) -> bool {
        self.settled
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(hash)
    }

    /// Whether `hash` is settled: memory, then the store, then one direct lookup on `lnd`.
    pub async fn is_settled<L: Invoices>(
        &self,
        hash: &PaymentHash,
        lnd: &L,
    ) -> Result<Settled, TrackerError> {
        if self.seen(hash) {
            return Ok(Settled::Yes);
        }
        if self
            .store
            .is_settled(hash)
            .await
            .map_err(TrackerError::Store)?
        {
            self.settled
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(*hash);
            return Ok(Settled::Yes);
        }
        self.lookups.fetch_add(1, Ordering::Relaxed);
        // The adapter's own deadline (the connection's `timeout_secs`) bounds the wait.
        let found = lnd.lookup_invoice(hash).await.map_err(TrackerError::Node)?;
        match found {
            None => Ok(Settled::Unknown),
            Some(inv) if inv.state == InvoiceState::Settled => {
                // A direct lookup does not move the cursor (settle index 0): the stream will
                // deliver the same settlement later, and recording it twice is harmless.
                self.record(hash, inv.amt_paid_msat, 0).await?;
                Ok(Settled::Yes)
            }
            Some(_) => Ok(Settled::NotYet),
        }
    }
}
