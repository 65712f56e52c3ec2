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
//! When several gateways share a store, only the one holding the store's [`Lease`] follows
//! the stream and advances the cursor; the others stand by, asking for the lease every
//! [`LEASE_RETRY`], and learn settlements from the store (and direct lookups) instead. The
//! follower checks every [`LEASE_CHECK`] that its lease still holds and stops following when
//! it does not, so two replicas never follow at once for longer than that.
//!
//! It owns the in-memory set of settled hashes (the hot path reads only that), the stream's
//! cursor in the store, the lease, and the direct lookups. It must not decide what a refusal looks like
//! (that is the gateway's) or read the system clock.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use tokio_util::sync::CancellationToken;

use crate::l402::PaymentHash;
use crate::lightning::error::BackendError;
use crate::lightning::traits::Invoices;
use crate::lightning::types::InvoiceState;
use crate::store::{Lease, SettlementStore, StoreError, StreamLease};

/// How often a replica standing by asks for the lease: a dead follower's successor takes over
/// within about this long after the database frees the lease.
pub const LEASE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// How often the follower checks that its lease still holds.
pub const LEASE_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

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

/// How following under a lease ended.
enum Followed {
    /// Cancelled, or the stream ended for good.
    Stopped,
    /// The lease stopped holding; another replica may follow now.
    LeaseLost,
}

/// Tracks settlements of one node's invoices.
#[derive(Debug)]
pub struct SettlementTracker<S> {
    store: Arc<S>,
    /// Hashes seen settled since start (and, lazily, from the store). Invariant: only hashes
    /// recorded in the store first are added, so a restart loses nothing.
    settled: RwLock<HashSet<PaymentHash, crate::l402::IdHashing>>,
    /// Whether the settlement stream is delivering (false while it reconnects).
    streaming: AtomicBool,
    /// Whether this replica holds the lease and follows the stream.
    leading: AtomicBool,
    /// Whether another replica holds the lease (this one stands by).
    standby: AtomicBool,
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
            leading: AtomicBool::new(false),
            standby: AtomicBool::new(false),
            delivered: AtomicU64::new(0),
            lookups: AtomicU64::new(0),
        }
    }

    /// Whether settlements are being learnt: this replica follows the stream and its last
    /// word was not a failure, or another replica holds the lease and follows it.
    pub fn is_streaming(&self) -> bool {
        self.streaming.load(Ordering::Relaxed) || self.standby.load(Ordering::Relaxed)
    }

    /// Whether this replica holds the lease and follows the stream.
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
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
    /// settlement, whenever this replica holds the store's lease; stands by while another
    /// does. Runs as a named task for the gateway's life.
    pub async fn follow<L: Invoices>(
        self: Arc<Self>,
        lnd: L,
        cancel: CancellationToken,
    ) -> Result<(), TrackerError>
    where
        S: StreamLease,
    {
        let mut said_standby = false;
        loop {
            match self.store.try_lease().await {
                Ok(Some(lease)) => {
                    self.standby.store(false, Ordering::Relaxed);
                    said_standby = false;
                    self.leading.store(true, Ordering::Relaxed);
                    let followed = self.follow_leased(&lnd, &cancel, lease).await;
                    self.leading.store(false, Ordering::Relaxed);
                    self.streaming.store(false, Ordering::Relaxed);
                    match followed {
                        Ok(Followed::Stopped) => return Ok(()),
                        Ok(Followed::LeaseLost) => {
                            tracing::warn!(
                                "lost the settlement stream's lease (the database connection that held it is gone); standing by"
                            );
                        }
                        // The store is down (a database restart): let the lease go and start
                        // again from the stored cursor once it answers; the settlement that
                        // could not be recorded is delivered again from there.
                        Err(e) => {
                            tracing::warn!(error = %e, "stopped following the settlement stream; resuming from the stored cursor shortly");
                        }
                    }
                }
                Ok(None) => {
                    self.standby.store(true, Ordering::Relaxed);
                    if !said_standby {
                        tracing::info!(
                            "another replica follows the settlement stream; standing by to take over"
                        );
                        said_standby = true;
                    }
                }
                Err(e) => {
                    self.standby.store(false, Ordering::Relaxed);
                    tracing::warn!(error = %e, "cannot ask for the settlement stream's lease; retrying");
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(LEASE_RETRY) => {}
            }
        }
    }

    /// Follows the stream while `lease` holds.
    async fn follow_leased<L: Invoices>(
        &self,
        lnd: &L,
        cancel: &CancellationToken,
        mut lease: Lease,
    ) -> Result<Followed, TrackerError> {
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
        let mut check = tokio::time::interval(LEASE_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let item = tokio::select! {
                _ = cancel.cancelled() => return Ok(Followed::Stopped),
                _ = check.tick() => {
                    if lease.holds().await {
                        continue;
                    }
                    return Ok(Followed::LeaseLost);
                }
                item = rx.recv() => item,
            };
            match item {
                None => return Ok(Followed::Stopped),
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
