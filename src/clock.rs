//! Where "now" comes from: the [`Clock`] trait, the system's wall clock ([`SystemClock`]) and a
//! clock that moves only when told to ([`ManualClock`]).
//!
//! Code that decides by time (token and quote expiry, invoice lifetimes) takes a clock rather
//! than reading the system time, so tests step past an expiry without sleeping. This module
//! owns nothing else: it does not schedule, sleep or measure durations (that is tokio's
//! `Instant`, which tests pause with `tokio::time::pause`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The current time in unix seconds.
///
/// Implementations must be cheap and must not block: callers read the clock while holding
/// locks. The value is wall-clock time, so it may step backwards when the machine's clock is
/// corrected; callers compare it with expiry times, never subtract it to measure a duration.
pub trait Clock: Send + Sync {
    /// Now, in whole seconds since 1970-01-01 UTC.
    fn now_unix(&self) -> u64;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> u64 {
        // A clock before 1970 is a broken machine; 0 makes everything look expired, which fails
        // closed, rather than making every caller handle an error no one can act on.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock that only moves when told to, for tests. Shared behind an `Arc` between the code
/// under test and the test that steps it.
#[derive(Debug, Default)]
pub struct ManualClock {
    /// Now, unix seconds. An atomic so a test can step the clock while servers read it.
    secs: AtomicU64,
}

impl ManualClock {
    /// A clock reading `secs`.
    pub fn new(secs: u64) -> Self {
        Self {
            secs: AtomicU64::new(secs),
        }
    }

    /// Sets the time (backwards too, to test what a corrected wall clock does).
    pub fn set(&self, secs: u64) {
        self.secs.store(secs, Ordering::SeqCst);
    }

    /// Moves the time forward by `secs`, stopping at `u64::MAX` rather than wrapping to 1970.
    pub fn advance(&self, secs: u64) {
        // `fetch_update` with a closure that always returns `Some` cannot fail.
        let _ = self
            .secs
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(secs))
            });
    }
}

impl Clock for ManualClock {
    fn now_unix(&self) -> u64 {
        self.secs.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_700_000_000);
        assert_eq!(clock.now_unix(), 1_700_000_000);
        assert_eq!(clock.now_unix(), 1_700_000_000);
        clock.advance(60);
        assert_eq!(clock.now_unix(), 1_700_000_060);
        clock.set(5);
        assert_eq!(clock.now_unix(), 5);
    }

    #[test]
    fn advancing_past_the_end_of_time_saturates() {
        let clock = ManualClock::new(u64::MAX - 1);
        clock.advance(10);
        assert_eq!(clock.now_unix(), u64::MAX);
    }

    #[test]
    fn a_shared_manual_clock_is_seen_through_the_trait() {
        let clock = Arc::new(ManualClock::new(100));
        let seen: Arc<dyn Clock> = clock.clone();
        clock.advance(5);
        assert_eq!(seen.now_unix(), 105);
    }

    #[test]
    fn the_system_clock_reads_the_wall_clock() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let now = SystemClock.now_unix();
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(
            before <= now && now <= after,
            "{before} <= {now} <= {after}"
        );
    }
}
