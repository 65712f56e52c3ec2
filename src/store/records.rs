//! The values the ledger and balance stores take and give: plain data, no I/O.
//!
//! Nothing here is secret (a payment hash is public, and no root key or preimage is ever part
//! of a record), so everything derives `Debug` and `Serialize` for the admin API. This module
//! must not hold a secret, nor decide prices: the amounts are what the mint charged.

use serde::Serialize;

use crate::l402::verify::MeterKey;
use crate::l402::{PaymentHash, TokenId};

/// Which way a token was paid.
///
/// Ordered by declaration (`Sats` before `Asset`), the order of revenue rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rail {
    /// A sats invoice.
    Sats,
    /// A Taproot Assets invoice (units of a stablecoin).
    Asset,
}

impl Rail {
    /// The name used in JSON, in the database and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sats => "sats",
            Self::Asset => "asset",
        }
    }
}

/// A token as minted for a challenge (no secrets in it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    /// The token's id (also the key of its root key).
    pub token_id: TokenId,
    /// The invoice's payment hash; the token is paid when it settles.
    pub payment_hash: PaymentHash,
    /// The service the challenge was for.
    pub service: String,
    /// The service tier.
    pub tier: u8,
    /// Which way the invoice is paid.
    pub rail: Rail,
    /// What the invoice charges, in millionths of a dollar.
    pub price_micro_usd: u64,
    /// The invoice's msat amount.
    pub msat: u64,
    /// Asset units, for [`Rail::Asset`].
    pub units: Option<u64>,
    /// Some: a prepaid balance of this size is bought.
    pub prepaid_micro_usd: Option<u64>,
    /// When the token was minted, unix seconds.
    pub created_at: u64,
    /// When the challenge's invoice expires, unix seconds.
    pub expires_at: u64,
}

/// A token's record with its state at the time it was read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenView {
    /// As minted.
    pub record: TokenRecord,
    /// Whether its payment hash settled.
    pub settled: bool,
    /// Its prepaid balance, if one was opened.
    pub balance_micro_usd: Option<u64>,
    /// Whether the ledger marks it revoked.
    pub revoked: bool,
}

/// Revenue from one service over one rail, over settled tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RevenueRow {
    /// The service.
    pub service: String,
    /// The rail.
    pub rail: Rail,
    /// How many settled tokens.
    pub tokens: u64,
    /// Sum of their prices (prepaid tokens: of their prepaid amounts), millionths of a dollar.
    pub micro_usd: u64,
    /// Sum of their invoices' msat.
    pub msat: u64,
    /// Sum of their asset units (0 for sats).
    pub units: u64,
}

/// The outcome of [`BalanceStore::debit`](super::BalanceStore::debit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Debit {
    /// Debited (or, with `replayed`, debited earlier under the same idempotency key and not
    /// again); `remaining` after that debit.
    Charged {
        /// The balance left right after the debit.
        remaining_micro_usd: u64,
        /// True when this is a repeat of an earlier debit under the same key.
        replayed: bool,
    },
    /// Not enough left: nothing debited.
    Insufficient {
        /// The balance, smaller than the amount asked for.
        remaining_micro_usd: u64,
    },
    /// The token has no balance (never opened).
    NoBalance,
}

/// One meter a call counts against ([`MeterStore::charge`](super::MeterStore::charge)): its
/// name, the period it counts in, its cap, and what the call adds to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeterDebit {
    /// The meter's name (derived from the token's chain; not a secret).
    pub key: MeterKey,
    /// The period the meter counts in: 0 for a cap that never resets, the UTC day number
    /// (unix seconds / 86 400) for a daily one. Each (key, period) counts from zero.
    pub period: u64,
    /// The most the meter may count, in micro-dollars or calls.
    pub cap: u64,
    /// What this call adds (micro-dollars or one call); may be 0.
    pub amount: u64,
}

/// One call's charge: the prepaid balance debit, if any, and every meter, applied together
/// or not at all.
#[derive(Clone, Copy, Debug)]
pub struct Charge<'a> {
    /// The token paying.
    pub token_id: &'a TokenId,
    /// Some: micro-dollars to debit from the token's prepaid balance. None: the token was
    /// bought outright and has no balance.
    pub balance_micro_usd: Option<u64>,
    /// The meters the call counts against, each key at most once.
    pub meters: &'a [MeterDebit],
    /// The `Idempotency-Key`, if any: a repeat changes nothing.
    pub idempotency_key: Option<&'a str>,
}

/// The outcome of [`MeterStore::charge`](super::MeterStore::charge).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ChargeOutcome {
    /// Everything was debited (or, with `replayed`, was debited earlier under the same
    /// idempotency key and nothing is debited again).
    Charged {
        /// The balance left right after the debit; None for a charge without a balance.
        remaining_micro_usd: Option<u64>,
        /// True when this is a repeat of an earlier charge under the same key.
        replayed: bool,
    },
    /// The meter at `index` in [`Charge::meters`] (the first, in that order) would pass its
    /// cap: nothing was debited.
    MeterFull {
        /// Its position in the charge's meters.
        index: usize,
        /// What it has counted so far in its period.
        used: u64,
    },
    /// The balance does not cover the debit: nothing was debited.
    Insufficient {
        /// The balance, smaller than the amount asked for.
        remaining_micro_usd: u64,
    },
    /// The charge has a balance debit but the token has no balance (never opened): nothing
    /// was debited.
    NoBalance,
}
