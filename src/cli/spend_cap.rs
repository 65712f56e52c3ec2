//! `--max-usd`: the hard cap on what `tapgate node … pay` may spend, routing fees included.
//! The arithmetic lives in [`crate::client::cost`], shared with the client's budgets; this
//! file only keeps the command's name for it.

pub use crate::client::cost::{CapError, CapRate, CappedPayment, RateSource, cap_units, plan};
