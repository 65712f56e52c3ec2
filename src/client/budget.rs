//! Budgets in dollars: caps per call, per day and in total, and the hosts the client may pay.
//!
//! This module owns the rules (which cap a cost breaks, how much room is left, whether a host
//! is allowed); it does no I/O and keeps no state. What was spent comes from the ledger
//! ([`super::ledger`]), which applies these rules inside the transaction that reserves, so
//! concurrent payments cannot each see room that only one of them may use.
//!
//! A day is a UTC calendar day: a payment counts against the day it was reserved in.

use std::fmt;

use rust_decimal::{Decimal, RoundingStrategy};

/// Seconds in a day.
pub const DAY_SECS: u64 = 86_400;

/// The caps. `None` caps nothing; an allowlist of `None` allows every host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    /// The most one payment may cost, routing fees included.
    pub per_call_usd: Option<Decimal>,
    /// The most the payments reserved in one UTC day may cost together.
    pub per_day_usd: Option<Decimal>,
    /// The most all payments ever recorded in the ledger may cost together.
    pub total_usd: Option<Decimal>,
    /// Hosts the client pays: `api.example.com` exactly, or `*.example.com` for its subdomains.
    /// Compared without case and without a trailing dot. `None` pays any host.
    pub allowed_hosts: Option<Vec<String>>,
}

/// Which cap a cost breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    /// The cap on one payment.
    PerCall,
    /// The cap on one UTC day.
    PerDay,
    /// The cap on everything.
    Total,
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PerCall => "per-call",
            Self::PerDay => "daily",
            Self::Total => "total",
        })
    }
}

/// Why the budget refuses a payment. Nothing was paid when one of these is returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// The host is not on the allowlist.
    #[error(
        "{host} is not on the budget's list of hosts to pay; nothing was paid. Add it to the allowlist to pay it"
    )]
    HostNotAllowed {
        /// The host asked for.
        host: String,
    },
    /// The cost, at its worst, breaks a cap.
    #[error(
        "paying could cost up to ${cost_usd} (routing fees included), and the {cap} cap of ${limit_usd} has ${left_usd} left; nothing was paid. Raise the {cap} cap or wait for it to free up"
    )]
    OverCap {
        /// Which cap.
        cap: Cap,
        /// The cap.
        limit_usd: Decimal,
        /// What is left of it.
        left_usd: Decimal,
        /// The worst-case cost asked for.
        cost_usd: Decimal,
    },
}

impl Budget {
    /// Whether `host` may be paid.
    pub fn allows_host(&self, host: &str) -> Result<(), BudgetError> {
        let Some(list) = &self.allowed_hosts else {
            return Ok(());
        };
        let host = normalise(host);
        let allowed = list.iter().any(|entry| {
            let entry = normalise(entry);
            match entry.strip_prefix("*.") {
                Some(parent) => host
                    .strip_suffix(parent)
                    .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                None => host == entry,
            }
        });
        if allowed {
            Ok(())
        } else {
            Err(BudgetError::HostNotAllowed { host })
        }
    }

    /// The most a payment may cost given what is already committed today and in total: the
    /// smallest room any cap leaves, never below zero. `None` when no cap is set.
    pub fn headroom(&self, committed_today: Decimal, committed_total: Decimal) -> Option<Decimal> {
        [
            self.per_call_usd,
            self.per_day_usd.map(|c| c - committed_today),
            self.total_usd.map(|c| c - committed_total),
        ]
        .into_iter()
        .flatten()
        .map(|room| room.max(Decimal::ZERO))
        .min()
    }

    /// Checks a worst-case `cost_usd` against every cap, given what is already committed.
    pub fn check(
        &self,
        cost_usd: Decimal,
        committed_today: Decimal,
        committed_total: Decimal,
    ) -> Result<(), BudgetError> {
        let caps = [
            (Cap::PerCall, self.per_call_usd, Decimal::ZERO),
            (Cap::PerDay, self.per_day_usd, committed_today),
            (Cap::Total, self.total_usd, committed_total),
        ];
        for (cap, limit, used) in caps {
            let Some(limit_usd) = limit else { continue };
            let left_usd = (limit_usd - used).max(Decimal::ZERO);
            if cost_usd > left_usd {
                return Err(BudgetError::OverCap {
                    cap,
                    limit_usd,
                    left_usd,
                    cost_usd,
                });
            }
        }
        Ok(())
    }
}

/// The start (unix seconds) of the UTC day holding `now`.
pub fn day_start(now: u64) -> u64 {
    now - now % DAY_SECS
}

/// Dollars as whole micro-dollars (the ledger's integer unit), rounded up so a reservation is
/// never smaller than the cost it holds; `None` for a negative amount or one beyond `i64`.
pub fn micro_usd_ceil(usd: Decimal) -> Option<i64> {
    if usd.is_sign_negative() && !usd.is_zero() {
        return None;
    }
    let micro = usd.checked_mul(Decimal::from(1_000_000))?;
    i64::try_from(micro.round_dp_with_strategy(0, RoundingStrategy::AwayFromZero)).ok()
}

/// Micro-dollars back to dollars.
pub fn usd_of_micro(micro: i64) -> Decimal {
    Decimal::new(micro, 6)
}

fn normalise(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn caps() -> Budget {
        Budget {
            per_call_usd: Some(d("0.10")),
            per_day_usd: Some(d("1.00")),
            total_usd: Some(d("5.00")),
            allowed_hosts: None,
        }
    }

    #[test]
    fn each_cap_refuses_on_its_own_and_names_itself() {
        let b = caps();
        assert!(b.check(d("0.10"), d("0.90"), d("4.90")).is_ok());
        let err = b.check(d("0.100001"), d("0"), d("0")).unwrap_err();
        assert!(matches!(
            err,
            BudgetError::OverCap {
                cap: Cap::PerCall,
                ..
            }
        ));
        let err = b.check(d("0.05"), d("0.96"), d("1")).unwrap_err();
        assert_eq!(
            err,
            BudgetError::OverCap {
                cap: Cap::PerDay,
                limit_usd: d("1.00"),
                left_usd: d("0.04"),
                cost_usd: d("0.05"),
            }
        );
        assert!(
            err.to_string()
                .contains("daily cap of $1.00 has $0.04 left"),
            "{err}"
        );
        let err = b.check(d("0.05"), d("0"), d("4.99")).unwrap_err();
        assert!(matches!(
            err,
            BudgetError::OverCap {
                cap: Cap::Total,
                ..
            }
        ));
        // Overspent (a settled payment above its reservation cannot happen, but a cap lowered
        // later can): no room, not negative room.
        assert_eq!(b.headroom(d("2"), d("0")), Some(Decimal::ZERO));
        assert_eq!(b.headroom(d("0.95"), d("0")), Some(d("0.05")));
        assert_eq!(Budget::default().headroom(d("100"), d("100")), None);
        assert!(
            Budget::default()
                .check(d("1000"), d("1000"), d("1000"))
                .is_ok()
        );
    }

    #[test]
    fn the_allowlist_matches_hosts_and_subdomains_only() {
        let b = Budget {
            allowed_hosts: Some(vec!["API.example.com".into(), "*.tapgate.dev.".into()]),
            ..Budget::default()
        };
        for ok in [
            "api.example.com",
            "api.example.com.",
            "x.tapgate.dev",
            "a.b.tapgate.dev",
        ] {
            assert!(b.allows_host(ok).is_ok(), "{ok}");
        }
        for no in [
            "example.com",
            "tapgate.dev",
            "eviltapgate.dev",
            "api.example.com.evil",
            "",
        ] {
            assert!(
                matches!(b.allows_host(no), Err(BudgetError::HostNotAllowed { .. })),
                "{no}"
            );
        }
        assert!(Budget::default().allows_host("anything").is_ok());
    }

    #[test]
    fn micro_dollars_round_up_and_refuse_what_does_not_fit() {
        assert_eq!(micro_usd_ceil(d("0.0000001")), Some(1));
        assert_eq!(micro_usd_ceil(d("1.020203")), Some(1_020_203));
        assert_eq!(micro_usd_ceil(d("0")), Some(0));
        assert_eq!(micro_usd_ceil(d("-0.01")), None);
        assert_eq!(micro_usd_ceil(d("1e20")), None);
        assert_eq!(usd_of_micro(1_020_203), d("1.020203"));
        assert_eq!(day_start(86_400 * 3 + 5), 86_400 * 3);
    }

    proptest! {
        /// A cost within the headroom passes every cap, and one micro-dollar more fails one.
        #[test]
        fn headroom_is_exactly_what_check_allows(
            call in 0i64..10_000_000, day in 0i64..10_000_000, total in 0i64..10_000_000,
            today in 0i64..10_000_000, all in 0i64..10_000_000,
        ) {
            let b = Budget {
                per_call_usd: Some(usd_of_micro(call)),
                per_day_usd: Some(usd_of_micro(day)),
                total_usd: Some(usd_of_micro(total)),
                allowed_hosts: None,
            };
            let (today, all) = (usd_of_micro(today), usd_of_micro(all));
            let room = b.headroom(today, all).unwrap();
            prop_assert!(b.check(room, today, all).is_ok());
            prop_assert!(b.check(room + usd_of_micro(1), today, all).is_err());
        }
    }
}
