//! The values the ledger and balance stores take and give: plain data, no I/O.
//!
//! Nothing here is secret (a payment hash is public, and no root key or preimage is ever part
//! of a record), so everything derives `Debug` and `Serialize` for the admin API. This module
//! must not hold a secret, nor decide prices: the amounts are what the mint charged.

use serde::Serialize;

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
