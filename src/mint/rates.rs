//! The rate cache: per asset, the edge's latest quote, reused until shortly before it expires,
//! with at most one RFQ in flight per asset.
//!
//! A challenge prices a call in dollars and needs a rate (asset units per BTC) to turn the
//! price into msat. Asking the edge for a quote on every request would put an RFQ round trip on
//! every 402 and load the edge's oracle with one order per request; this cache keeps RFQ calls
//! at about one per asset per quote lifetime, however many requests arrive. It owns the quotes
//! and the fetches in flight, and nothing else: it does not price (that is
//! [`crate::pricing::price_call`]), create invoices, or read the system clock (time comes from
//! the injected [`Clock`], so expiry is tested without sleeping).
//!
//! It reaches the edge through [`RateSource`], a trait of tapgate's own: [`BuyQuotes`] adapts
//! tapd's buy quotes ([`crate::lightning::traits::Rates`]), [`FixedRate`] a configured rate.

use std::collections::HashMap;
use std::convert::Infallible;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;

use crate::clock::Clock;
use crate::pricing::FixedPoint;

/// How long before a quote expires the cache stops handing it out and asks for a new one, by
/// default: 20 s.
///
/// The margin is the least time a payer gets: an invoice priced at a quote must die with it
/// (tapd refuses invoices that outlive their quote), so a quote handed out with 20 s left
/// gives an invoice of about 15 s after [`INVOICE_SLACK_SECS`]. That is ample for an L402
/// client, which pays as soon as it reads the 402. A larger margin costs RFQs: tapd's sample
/// oracle gives quotes of 300 s (orders of at most 100,000 units) or 60 s (larger orders), and
/// with 20 s of margin the cache asks about 1.07 times per 300 s quote and 1.5 times per 60 s
/// quote; 30 s would make the latter 2.
pub const DEFAULT_MARGIN_SECS: u64 = 20;

/// Seconds taken off a quote's remaining lifetime for the invoice's expiry
/// ([`LiveRate::max_invoice_expiry_secs`]): the time between this answer and the node stamping
/// the invoice's creation (an RPC, whole seconds), and a little disagreement between tapgate's
/// clock and the edge's, which set the quote's expiry.
pub const INVOICE_SLACK_SECS: u64 = 5;

/// A rate and when it stops being honoured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Asset units per BTC.
    pub rate: FixedPoint,
    /// Unix seconds after which the edge no longer honours the rate (`u64::MAX`: never).
    pub expires_at: u64,
}

/// Where rates come from: an edge's RFQ quotes, or a fixed rate.
pub trait RateSource<A>: Send + Sync {
    /// Why a rate could not be had.
    type Error: StdError + Send + Sync + 'static;

    /// A fresh rate for `asset`. Called at most once at a time per asset by [`RateCache`], and
    /// again only when the last rate is about to expire or the last call failed.
    fn fetch(&self, asset: &A) -> impl Future<Output = Result<Rate, Self::Error>> + Send;
}

/// A rate the cache handed out, and how long an invoice priced at it may live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveRate {
    /// Asset units per BTC.
    pub rate: FixedPoint,
    /// Unix seconds after which the edge no longer honours the rate.
    pub expires_at: u64,
    /// The longest expiry an invoice priced at this rate may have, seconds: the quote's
    /// remaining lifetime less [`INVOICE_SLACK_SECS`]. The caller caps its invoice expiry
    /// with it, so the invoice never outlives the quote. More than the cache's margin less the
    /// slack.
    pub max_invoice_expiry_secs: u64,
}

/// Why the cache has no rate to give.
#[derive(Debug, thiserror::Error)]
pub enum RateError<E: StdError + 'static> {
    /// The source failed. Every request that waited on the same fetch gets this same error
    /// (hence the `Arc`); the next request fetches again.
    #[error("no rate from the edge: {0}")]
    Source(#[source] Arc<E>),
    /// The quote has too little life left to price an invoice with.
    #[error(
        "the edge's quote expires at {expires_at}, not more than {margin_secs} s after now ({now}); \
         the edge gives quotes too short-lived for the cache's margin: configure longer quotes \
         on its price oracle, or a smaller margin"
    )]
    ShortLived {
        /// The quote's expiry, unix seconds.
        expires_at: u64,
        /// Now, unix seconds.
        now: u64,
        /// The cache's margin, seconds.
        margin_secs: u64,
    },
}

impl<E: StdError + 'static> Clone for RateError<E> {
    fn clone(&self) -> Self {
        match self {
            Self::Source(e) => Self::Source(Arc::clone(e)),
            Self::ShortLived {
                expires_at,
                now,
                margin_secs,
            } => Self::ShortLived {
                expires_at: *expires_at,
                now: *now,
                margin_secs: *margin_secs,
            },
        }
    }
}

/// What a fetch ended with, shared by every request that waited on it.
type Outcome<E> = Result<Rate, RateError<E>>;

/// One fetch of one asset's rate: empty while the fetch is in flight, then its outcome.
/// `OnceCell` is the single flight: the first request runs the fetch, the others wait on the
/// cell and read the same outcome; if the request running the fetch is dropped, a waiter
/// takes over with a fetch of its own.
type Slot<E> = Arc<OnceCell<Outcome<E>>>;

/// Per asset, the latest quote, shared by every request until shortly before it expires.
pub struct RateCache<A, S: RateSource<A>> {
    source: S,
    clock: Arc<dyn Clock>,
    /// A quote is handed out only while more than this many seconds remain
    /// ([`DEFAULT_MARGIN_SECS`] says why).
    margin_secs: u64,
    /// Per asset, the current fetch. Invariant: a slot holding an error, or a rate within the
    /// margin of its expiry, is replaced (under this lock) by the next request, so failures are
    /// not cached and a stale quote is never handed out. The lock is held only to look up or
    /// replace a slot, never across a fetch.
    slots: Mutex<HashMap<A, Slot<S::Error>>>,
}

impl<A, S: RateSource<A>> fmt::Debug for RateCache<A, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateCache")
            .field("margin_secs", &self.margin_secs)
            .finish_non_exhaustive()
    }
}

impl<A, S> RateCache<A, S>
where
    A: Eq + Hash + Clone,
    S: RateSource<A>,
{
    /// A cache over `source` with the default margin.
    pub fn new(source: S, clock: Arc<dyn Clock>) -> Self {
        Self::with_margin(source, clock, DEFAULT_MARGIN_SECS)
    }

    /// A cache over `source` that stops handing out a quote `margin_secs` before it expires.
    /// A margin below [`INVOICE_SLACK_SECS`] would hand out quotes too close to their end to
    /// price any invoice, so it counts as that.
    pub fn with_margin(source: S, clock: Arc<dyn Clock>, margin_secs: u64) -> Self {
        Self {
            source,
            clock,
            margin_secs: margin_secs.max(INVOICE_SLACK_SECS),
            slots: Mutex::default(),
        }
    }

    /// The rate for `asset`: the cached quote while it has more than the margin left, else a
    /// fresh one, fetched once for every request that asks meanwhile.
    pub async fn get(&self, asset: &A) -> Result<LiveRate, RateError<S::Error>> {
        let (slot, now) = self.slot(asset);
        if let Some(outcome) = slot.get() {
            // Judged at the `now` the slot was kept at, so a hit is never refused. (A fetch that
            // ended since then is judged a moment before it arrived: at most a second, which
            // the invoice slack covers.)
            return self.answer(outcome, now);
        }
        let outcome = slot
            .get_or_init(|| async {
                (self.source.fetch(asset).await).map_err(|e| RateError::Source(Arc::new(e)))
            })
            .await;
        self.answer(outcome, self.clock.now_unix())
    }

    /// The slot to read for `asset` and the time it was judged at: the current one, or a fresh
    /// empty one in its place if it failed or its quote is within the margin of its expiry.
    fn slot(&self, asset: &A) -> (Slot<S::Error>, u64) {
        // A panic while the lock was held cannot leave a slot half-replaced (the map is only
        // read or assigned to), so a poisoned lock is safe to keep using.
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now_unix();
        let spent = |slot: &Slot<S::Error>| {
            slot.get()
                .is_some_and(|outcome| !self.is_live(outcome, now))
        };
        let slot = match slots.get(asset) {
            Some(slot) if !spent(slot) => Arc::clone(slot),
            _ => {
                let fresh = Slot::default();
                slots.insert(asset.clone(), Arc::clone(&fresh));
                fresh
            }
        };
        (slot, now)
    }

    fn is_live(&self, outcome: &Outcome<S::Error>, now: u64) -> bool {
        outcome
            .as_ref()
            .is_ok_and(|rate| now.saturating_add(self.margin_secs) < rate.expires_at)
    }

    fn answer(
        &self,
        outcome: &Outcome<S::Error>,
        now: u64,
    ) -> Result<LiveRate, RateError<S::Error>> {
        let rate = outcome.as_ref().map_err(RateError::clone)?;
        if !self.is_live(outcome, now) {
            // A fresh quote that is already (nearly) spent: refused, and replaced by the next
            // request like a failure.
            return Err(RateError::ShortLived {
                expires_at: rate.expires_at,
                now,
                margin_secs: self.margin_secs,
            });
        }
        Ok(LiveRate {
            rate: rate.rate.clone(),
            expires_at: rate.expires_at,
            // Live means more than the margin, itself at least the slack, is left.
            max_invoice_expiry_secs: (rate.expires_at - now).saturating_sub(INVOICE_SLACK_SECS),
        })
    }
}

/// A configured rate that never expires: the "fixed rate" pricing, and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixedRate(pub FixedPoint);

impl<A: Sync> RateSource<A> for FixedRate {
    type Error = Infallible;

    async fn fetch(&self, _asset: &A) -> Result<Rate, Infallible> {
        Ok(Rate {
            rate: self.0.clone(),
            expires_at: u64::MAX,
        })
    }
}

#[cfg(feature = "node")]
pub use buy_quotes::BuyQuotes;

#[cfg(feature = "node")]
mod buy_quotes {
    use super::{Rate, RateSource};
    use crate::lightning::error::BackendError;
    use crate::lightning::traits::Rates;
    use crate::lightning::types::AssetRef;

    /// The edge's buy quotes (tapd's `AddAssetBuyOrder`, through [`Rates::buy_quote`]) as a
    /// rate source: the rate at which the edge buys the asset units a payer sends us, the same
    /// kind of quote tapd's `AddInvoice` prices an asset invoice at.
    #[derive(Clone, Debug)]
    pub struct BuyQuotes<R> {
        rates: R,
        /// The edge node, hex public key.
        edge_peer: String,
        /// The units each order asks to receive. tapd's sample oracle gives orders of at most
        /// 100,000 units quotes of 300 s, larger ones 60 s; the rate is the same.
        order_units: u64,
        /// The quote lifetime each order asks for, seconds (the edge may give less).
        expiry_secs: u64,
    }

    impl<R: Rates> BuyQuotes<R> {
        /// Buy quotes from `edge_peer` through `rates`, each order for `order_units` units and
        /// `expiry_secs` of lifetime.
        pub fn new(rates: R, edge_peer: String, order_units: u64, expiry_secs: u64) -> Self {
            Self {
                rates,
                edge_peer,
                order_units,
                expiry_secs,
            }
        }
    }

    impl<R: Rates> RateSource<AssetRef> for BuyQuotes<R> {
        type Error = BackendError;

        async fn fetch(&self, asset: &AssetRef) -> Result<Rate, BackendError> {
            let quote = self
                .rates
                .buy_quote(asset, self.order_units, &self.edge_peer, self.expiry_secs)
                .await?;
            Ok(Rate {
                rate: quote.rate,
                expires_at: quote.expires_at,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use tokio::sync::Semaphore;

    use super::*;
    use crate::clock::ManualClock;

    const T0: u64 = 1_700_000_000;

    #[derive(Debug, thiserror::Error)]
    #[error("oracle unavailable")]
    struct Unavailable;

    /// A source that counts its fetches, quotes `lifetime` seconds from the clock's now, fails
    /// while `fail` is set, and, when gated, waits for a permit before answering.
    struct FakeSource {
        clock: Arc<ManualClock>,
        lifetime: u64,
        calls: AtomicUsize,
        fail: AtomicBool,
        gate: Option<Semaphore>,
    }

    impl FakeSource {
        fn new(clock: &Arc<ManualClock>, lifetime: u64) -> Self {
            Self {
                clock: Arc::clone(clock),
                lifetime,
                calls: AtomicUsize::new(0),
                fail: AtomicBool::new(false),
                gate: None,
            }
        }

        fn gated(mut self) -> Self {
            self.gate = Some(Semaphore::new(0));
            self
        }
    }

    impl RateSource<u8> for FakeSource {
        type Error = Unavailable;

        async fn fetch(&self, asset: &u8) -> Result<Rate, Unavailable> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = &self.gate {
                let _permit = gate.acquire().await.map_err(|_| Unavailable)?;
            }
            if self.fail.load(Ordering::SeqCst) {
                return Err(Unavailable);
            }
            Ok(Rate {
                rate: rate(u64::from(*asset) + 1),
                expires_at: self.clock.now_unix() + self.lifetime,
            })
        }
    }

    fn rate(c: u64) -> FixedPoint {
        FixedPoint::from_parts(&c.to_string(), 0).unwrap()
    }

    fn cache(source: FakeSource) -> (Arc<RateCache<u8, FakeSource>>, Arc<ManualClock>) {
        let clock = Arc::clone(&source.clock);
        (Arc::new(RateCache::new(source, clock.clone())), clock)
    }

    fn calls(cache: &RateCache<u8, FakeSource>) -> usize {
        cache.source.calls.load(Ordering::SeqCst)
    }

    /// `n` requests for asset 0 on tasks of their own; returns once every one of them is
    /// waiting inside `get` (on the fetch or on the slot), with their handles. The test runs
    /// on a current-thread runtime, so a task that has counted itself in has also run up to
    /// its first await, which is in `get`.
    async fn waiting_requests(
        cache: &Arc<RateCache<u8, FakeSource>>,
        n: usize,
    ) -> Vec<tokio::task::JoinHandle<Result<LiveRate, RateError<Unavailable>>>> {
        let entered = Arc::new(AtomicUsize::new(0));
        let handles = (0..n)
            .map(|_| {
                let (cache, entered) = (Arc::clone(cache), Arc::clone(&entered));
                tokio::spawn(async move {
                    entered.fetch_add(1, Ordering::SeqCst);
                    cache.get(&0).await
                })
            })
            .collect();
        while entered.load(Ordering::SeqCst) < n {
            tokio::task::yield_now().await;
        }
        handles
    }

    fn open(cache: &RateCache<u8, FakeSource>) {
        if let Some(gate) = &cache.source.gate {
            gate.add_permits(Semaphore::MAX_PERMITS);
        }
    }

    #[tokio::test]
    async fn fifty_concurrent_first_requests_share_one_fetch() {
        let clock = Arc::new(ManualClock::new(T0));
        let (cache, _) = cache(FakeSource::new(&clock, 60).gated());
        let handles = waiting_requests(&cache, 50).await;
        assert_eq!(calls(&cache), 1);
        assert!(handles.iter().all(|h| !h.is_finished()));
        open(&cache);
        for h in handles {
            let live = h.await.unwrap().unwrap();
            assert_eq!(live.rate, rate(1));
            assert_eq!(live.expires_at, T0 + 60);
            assert_eq!(live.max_invoice_expiry_secs, 60 - INVOICE_SLACK_SECS);
        }
        assert_eq!(calls(&cache), 1);
    }

    #[tokio::test]
    async fn a_request_after_expiry_less_margin_fetches_again() {
        let clock = Arc::new(ManualClock::new(T0));
        let (cache, clock) = cache(FakeSource::new(&clock, 60));
        cache.get(&0).await.unwrap();
        // Until 20 s (the margin) before expiry, the quote is served, its invoices capped.
        clock.set(T0 + 60 - DEFAULT_MARGIN_SECS - 1);
        let live = cache.get(&0).await.unwrap();
        assert_eq!(live.expires_at, T0 + 60);
        assert_eq!(
            live.max_invoice_expiry_secs,
            DEFAULT_MARGIN_SECS + 1 - INVOICE_SLACK_SECS
        );
        assert_eq!(calls(&cache), 1);
        clock.set(T0 + 60 - DEFAULT_MARGIN_SECS);
        let live = cache.get(&0).await.unwrap();
        assert_eq!(calls(&cache), 2);
        assert_eq!(live.expires_at, T0 + 120 - DEFAULT_MARGIN_SECS);
        assert_eq!(live.max_invoice_expiry_secs, 60 - INVOICE_SLACK_SECS);
    }

    #[tokio::test]
    async fn a_failed_fetch_reaches_every_waiter_and_is_not_cached() {
        let clock = Arc::new(ManualClock::new(T0));
        let (cache, _) = cache(FakeSource::new(&clock, 60).gated());
        cache.source.fail.store(true, Ordering::SeqCst);
        let handles = waiting_requests(&cache, 50).await;
        open(&cache);
        for h in handles {
            let err = h.await.unwrap().unwrap_err();
            assert!(matches!(err, RateError::Source(_)), "{err:?}");
            assert_eq!(err.to_string(), "no rate from the edge: oracle unavailable");
        }
        assert_eq!(calls(&cache), 1);
        // The same second: the failure is not served from the cache.
        cache.source.fail.store(false, Ordering::SeqCst);
        assert_eq!(cache.get(&0).await.unwrap().rate, rate(1));
        assert_eq!(calls(&cache), 2);
    }

    #[tokio::test]
    async fn under_steady_load_fetches_are_about_one_per_quote_lifetime() {
        let lifetimes = 10;
        // A quote serves `lifetime − margin` seconds: ⌈10 · 300 / 280⌉ = 11 fetches for ten 300 s
        // lifetimes, ⌈10 · 60 / 40⌉ = 15 for ten 60 s ones.
        for (lifetime, fetches) in [(300, 11), (60, 15)] {
            let clock = Arc::new(ManualClock::new(T0));
            let (cache, clock) = cache(FakeSource::new(&clock, lifetime));
            // Three requests a second, for ten quote lifetimes.
            for _ in 0..lifetime * lifetimes {
                for _ in 0..3 {
                    let live = cache.get(&0).await.unwrap();
                    assert!(
                        live.max_invoice_expiry_secs > DEFAULT_MARGIN_SECS - INVOICE_SLACK_SECS
                    );
                    assert!(clock.now_unix() + live.max_invoice_expiry_secs < live.expires_at);
                }
                clock.advance(1);
            }
            assert_eq!(calls(&cache), fetches, "{lifetime} s quotes");
        }
    }

    #[tokio::test]
    async fn a_quote_within_the_margin_is_refused_and_not_cached() {
        let clock = Arc::new(ManualClock::new(T0));
        let (cache, _) = cache(FakeSource::new(&clock, DEFAULT_MARGIN_SECS));
        for n in 1..=2 {
            let err = cache.get(&0).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    RateError::ShortLived { expires_at, now: T0, margin_secs: DEFAULT_MARGIN_SECS }
                        if expires_at == T0 + DEFAULT_MARGIN_SECS
                ),
                "{err:?}"
            );
            assert_eq!(calls(&cache), n);
        }
    }

    #[tokio::test]
    async fn each_asset_has_its_own_quote() {
        let clock = Arc::new(ManualClock::new(T0));
        let (cache, _) = cache(FakeSource::new(&clock, 60));
        for _ in 0..3 {
            assert_eq!(cache.get(&0).await.unwrap().rate, rate(1));
            assert_eq!(cache.get(&7).await.unwrap().rate, rate(8));
        }
        assert_eq!(calls(&cache), 2);
    }

    #[tokio::test]
    async fn a_dropped_fetch_is_taken_over_by_a_waiter() {
        let clock = Arc::new(ManualClock::new(T0));
        let (cache, _) = cache(FakeSource::new(&clock, 60).gated());
        let mut handles = waiting_requests(&cache, 2).await;
        // The first task runs the fetch; drop it, and the second runs its own.
        handles.remove(0).abort();
        while calls(&cache) < 2 {
            tokio::task::yield_now().await;
        }
        open(&cache);
        assert_eq!(handles.remove(0).await.unwrap().unwrap().rate, rate(1));
    }

    #[tokio::test]
    async fn a_clock_stepping_back_keeps_the_quote() {
        let clock = Arc::new(ManualClock::new(T0));
        let (cache, clock) = cache(FakeSource::new(&clock, 60));
        cache.get(&0).await.unwrap();
        clock.set(T0 - 100);
        let live = cache.get(&0).await.unwrap();
        assert_eq!(live.max_invoice_expiry_secs, 160 - INVOICE_SLACK_SECS);
        assert_eq!(calls(&cache), 1);
    }

    #[tokio::test]
    async fn a_fixed_rate_is_fetched_once_and_never_expires() {
        let clock = Arc::new(ManualClock::new(T0));
        let cache = RateCache::new(FixedRate(rate(100_000_000_000)), clock.clone());
        let live = cache.get(&"usd").await.unwrap();
        clock.advance(10 * 365 * 86_400);
        assert_eq!(cache.get(&"usd").await.unwrap().rate, live.rate);
        assert_eq!(live.expires_at, u64::MAX);
    }
}
