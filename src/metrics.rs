//! Counters for the admin port's Prometheus `/metrics`: requests by outcome, challenges and
//! payments by service and rail (in dollars, sats and asset units), prepaid debits, refusals by
//! reason, and upstream failures.
//!
//! It owns the counters and their text exposition (Prometheus text format 0.0.4) and nothing
//! else: no secrets are ever labels (token ids, macaroons and preimages stay out), and it does
//! not serve HTTP (the admin server does).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::store::{Rail, TokenRecord};

/// One counter's identity: its name and its label pairs, already rendered (`service="x",…`).
type Key = (&'static str, String);

/// The gateway's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `replica="…",` (escaped), put first in every series' labels; empty without a name.
    replica: String,
    counters: Mutex<BTreeMap<Key, u64>>,
    /// `tapgate_requests_total` by status class (1xx-5xx) and outcome ([`OUTCOMES`]).
    requests: [[AtomicU64; OUTCOMES.len()]; 5],
}

/// The outcomes a request is counted under; the last is the catch-all.
pub const OUTCOMES: [&str; 13] = [
    "proxied",
    "challenge",
    "refused",
    "unpaid",
    "unavailable",
    "upstream_error",
    "challenge_failed",
    "discovery",
    "quote",
    "not_found",
    "method_not_allowed",
    "preflight",
    "other",
];

const HELP: [(&str, &str); 10] = [
    (
        "tapgate_requests_total",
        "Requests answered, by status code class and outcome.",
    ),
    (
        "tapgate_challenges_total",
        "Challenges (invoices) issued, by service and rail.",
    ),
    (
        "tapgate_payments_total",
        "Tokens seen paid, by service and rail.",
    ),
    (
        "tapgate_payments_usd_micro_total",
        "Dollars paid for tokens (millionths), by service and rail.",
    ),
    (
        "tapgate_payments_sats_total",
        "Sats paid for tokens (invoice amounts, rounded down), by service and rail.",
    ),
    (
        "tapgate_payments_units_total",
        "Asset units paid for tokens, by service and rail.",
    ),
    (
        "tapgate_prepaid_debits_total",
        "Prepaid calls debited, by service.",
    ),
    (
        "tapgate_prepaid_debits_usd_micro_total",
        "Dollars debited from prepaid balances (millionths), by service.",
    ),
    ("tapgate_refusals_total", "Tokens refused, by reason."),
    (
        "tapgate_upstream_errors_total",
        "Upstream failures, by reason.",
    ),
];

fn rail(r: Rail) -> &'static str {
    match r {
        Rail::Sats => "sats",
        Rail::Asset => "asset",
    }
}

/// A label value, escaped as the text format requires.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counters whose every series carries `replica="<name>"`, so that the series of
    /// several gateways behind one load balancer stay apart.
    pub fn for_replica(name: &str) -> Self {
        Self {
            replica: format!("replica=\"{}\",", esc(name)),
            ..Self::default()
        }
    }

    fn add(&self, name: &'static str, labels: String, n: u64) {
        let mut c = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let v = c.entry((name, labels)).or_default();
        *v = v.saturating_add(n);
    }

    /// A request answered with `status`, ending in `outcome` (one of [`OUTCOMES`]). Counted
    /// in a fixed table of atomics: this runs on every request, so it takes no lock.
    pub fn request(&self, status: u16, outcome: &'static str) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        let i = OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(OUTCOMES.len() - 1);
        self.requests[class][i].fetch_add(1, Ordering::Relaxed);
    }

    /// A challenge issued.
    pub fn challenge(&self, service: &str, r: Rail) {
        self.add(
            "tapgate_challenges_total",
            format!("service=\"{}\",rail=\"{}\"", esc(service), rail(r)),
            1,
        );
    }

    /// A token seen paid for the first time by this process.
    pub fn payment(&self, t: &TokenRecord) {
        let labels = format!("service=\"{}\",rail=\"{}\"", esc(&t.service), rail(t.rail));
        let usd = t.prepaid_micro_usd.unwrap_or(t.price_micro_usd);
        self.add("tapgate_payments_total", labels.clone(), 1);
        self.add("tapgate_payments_usd_micro_total", labels.clone(), usd);
        self.add("tapgate_payments_sats_total", labels.clone(), t.msat / 1000);
        self.add("tapgate_payments_units_total", labels, t.units.unwrap_or(0));
    }

    /// A prepaid call debited.
    pub fn debit(&self, service: &str, micro_usd: u64) {
        let labels = format!("service=\"{}\"", esc(service));
        self.add("tapgate_prepaid_debits_total", labels.clone(), 1);
        self.add("tapgate_prepaid_debits_usd_micro_total", labels, micro_usd);
    }

    /// A token refused.
    pub fn refusal(&self, reason: crate::mint::gate::Reason) {
        self.add(
            "tapgate_refusals_total",
            format!("reason=\"{}\"", reason.as_str()),
            1,
        );
    }

    /// An upstream failure.
    pub fn upstream_error(&self, reason: &'static str) {
        self.add(
            "tapgate_upstream_errors_total",
            format!("reason=\"{reason}\""),
            1,
        );
    }

    /// One counter's value (tests and the admin API).
    pub fn get(&self, name: &str, labels: &str) -> u64 {
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|((n, l), _)| *n == name && l == labels)
            .map_or(0, |(_, v)| *v)
    }

    /// The text exposition, with `gauges` (name, help, value) appended.
    pub fn render(&self, gauges: &[(&str, &str, u64)]) -> String {
        let c = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        for (name, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            if name == "tapgate_requests_total" {
                for (class, row) in self.requests.iter().enumerate() {
                    for (i, n) in row.iter().enumerate() {
                        let v = n.load(Ordering::Relaxed);
                        if v > 0 {
                            let _ = writeln!(
                                out,
                                "{name}{{{}code=\"{}xx\",outcome=\"{}\"}} {v}",
                                self.replica,
                                class + 1,
                                OUTCOMES[i]
                            );
                        }
                    }
                }
                continue;
            }
            let mut any = false;
            for ((n, labels), v) in c.iter() {
                if *n == name {
                    any = true;
                    let _ = writeln!(out, "{name}{{{}{labels}}} {v}", self.replica);
                }
            }
            if !any && name == "tapgate_refusals_total" {
                for r in crate::mint::gate::Reason::ALL {
                    let _ = writeln!(out, "{name}{{{}reason=\"{}\"}} 0", self.replica, r.as_str());
                }
            }
        }
        let gauge_labels = match self.replica.strip_suffix(',') {
            Some(r) => format!("{{{r}}}"),
            None => String::new(),
        };
        for (name, help, v) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{gauge_labels} {v}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_the_text_format() {
        let m = Metrics::default();
        m.challenge("weather", Rail::Sats);
        m.challenge("weather", Rail::Sats);
        m.upstream_error("upstream_timeout");
        m.request(402, "challenge");
        m.request(200, "proxied");
        m.request(200, "proxied");
        let text = m.render(&[("tapgate_up", "Whether the gateway runs.", 1)]);
        assert!(text.contains("tapgate_challenges_total{service=\"weather\",rail=\"sats\"} 2"));
        assert!(text.contains("tapgate_upstream_errors_total{reason=\"upstream_timeout\"} 1"));
        assert!(text.contains("tapgate_refusals_total{reason=\"expired\"} 0"));
        assert!(text.contains("tapgate_requests_total{code=\"2xx\",outcome=\"proxied\"} 2"));
        assert!(text.contains("tapgate_requests_total{code=\"4xx\",outcome=\"challenge\"} 1"));
        assert!(text.contains("# TYPE tapgate_up gauge\ntapgate_up 1"));
        assert_eq!(
            m.get(
                "tapgate_challenges_total",
                "service=\"weather\",rail=\"sats\""
            ),
            2
        );
    }

    #[test]
    fn a_replica_name_labels_every_series() {
        let m = Metrics::for_replica("gw-\"1\"");
        m.challenge("weather", Rail::Sats);
        m.request(200, "proxied");
        let text = m.render(&[("tapgate_up", "Whether the gateway runs.", 1)]);
        let r = "replica=\"gw-\\\"1\\\"\"";
        assert!(text.contains(&format!(
            "tapgate_challenges_total{{{r},service=\"weather\",rail=\"sats\"}} 1"
        )));
        assert!(text.contains(&format!(
            "tapgate_requests_total{{{r},code=\"2xx\",outcome=\"proxied\"}} 1"
        )));
        assert!(text.contains(&format!(
            "tapgate_refusals_total{{{r},reason=\"expired\"}} 0"
        )));
        assert!(text.contains(&format!("tapgate_up{{{r}}} 1")));
        // Every sample line carries it.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.contains(r), "{line}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(esc("a\"b\\c"), "a\\\"b\\\\c");
    }
}
