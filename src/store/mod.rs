//! tapgate's state: one trait per kind, several stores, one conformance suite.
//!
//! - [`RootKeyStore`]: one 32-byte root key per token id, from the OS CSPRNG; it never leaves
//!   the store except to verify a macaroon, and revocation deletes it.
//! - [`SettlementStore`]: which payment hashes settled, and where the invoice tracker's
//!   settlement stream resumes after a restart.
//! - [`TokenLedger`]: the tokens minted for challenges (no secrets), for the admin API and
//!   revenue.
//! - [`BalanceStore`]: prepaid balances, debit idempotency keys and free-call meters.
//! - [`MeterStore`]: the meters of tokens' cap caveats (`_budget_usd`, `_budget_usd_per_day`,
//!   `_max_calls`), debited in one step with the prepaid balance.
//!
//! Every store ([`MemoryStore`], [`SqliteStore`], [`PostgresStore`], and [`AnyStore`] that
//! picks one by configuration) implements all five and passes the same suite (`conformance.rs`). This
//! module owns the contracts and the input rules every store applies alike; it must not
//! decide prices or policy, and stores must not log keys or preimages and must keep what they
//! persist readable by its owner only.

use std::future::Future;

use crate::l402::verify::MeterKey;
use crate::l402::{PaymentHash, RootKey, TokenId};

mod any;
mod lease;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
mod records;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;

#[cfg(test)]
pub(crate) mod conformance;

pub use any::AnyStore;
pub use lease::{Lease, StreamLease};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use records::{
    Charge, ChargeOutcome, Debit, MeterDebit, Rail, RevenueRow, TokenRecord, TokenView,
};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// The longest idempotency key [`BalanceStore::debit`] accepts, in bytes. Keys come from
/// clients; the cap keeps one client from filling the store with megabyte keys.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;

/// The largest amount, count or index a store holds: SQL integers are signed 64-bit, so every
/// store refuses larger values alike with [`StoreError::BadInput`] rather than wrap them.
pub const MAX_STORED_INTEGER: u64 = i64::MAX as u64;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A token id that is already in use: a second root key or a second ledger record for it
    /// (a token id must never be reused).
    #[error("token id {0} is already in use; mint the token under a fresh token id")]
    Duplicate(TokenId),
    /// The caller passed a value no store accepts (the message names it and the limit).
    #[error("store refused the input: {0}")]
    BadInput(&'static str),
    /// The operating system's random source failed.
    #[error("cannot draw a root key from the OS random source")]
    Random(#[source] getrandom::Error),
    /// File-system problem with the data directory or database file.
    #[error(
        "{action} {path}: {source}; check that the data_dir setting points at a writable directory"
    )]
    Io {
        /// What was being done.
        action: &'static str,
        /// Which path.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The database refused an operation.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[error("store database failed to {op}")]
    Database {
        /// What was being done.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The PostgreSQL server could not be reached or refused the connection at start.
    #[cfg(feature = "postgres")]
    #[error(
        "cannot connect to the PostgreSQL store at {target}: check that the server is running and reachable from here, that the database exists (createdb), and that store.url's user, password and sslmode are right (with sslmode=verify-full, that sslrootcert names the CA that signed the server's certificate)"
    )]
    Connect {
        /// `store.url`, its password redacted.
        target: String,
        /// The driver's error (it never holds the password).
        #[source]
        source: sqlx::Error,
    },
    /// This build lacks the store the configuration names.
    #[error(
        "this tapgate was built without the `{0}` feature, so it has no such store; rebuild with default features or choose another store.backend"
    )]
    NotBuilt(&'static str),
    /// The database was written by a newer tapgate, whose schema this one does not know.
    #[error(
        "the database's schema version {found} is newer than this tapgate knows ({known}); run the tapgate that wrote it or a newer one"
    )]
    NewerSchema {
        /// The database's version.
        found: usize,
        /// The newest version this build knows.
        known: usize,
    },
    /// A stored row does not hold what its table promises (a key that is not 32 bytes, a
    /// negative amount, an unknown rail).
    #[error("store database holds a malformed row: {0}")]
    Corrupt(&'static str),
}

impl StoreError {
    /// Whether the database could not be reached or failed the operation (a restart, a
    /// network fault, a full pool), so that trying again later may succeed; not a refused
    /// input, a duplicate or a corrupt row.
    pub fn is_unavailable(&self) -> bool {
        match self {
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Self::Database { .. } => true,
            #[cfg(feature = "postgres")]
            Self::Connect { .. } => true,
            Self::Io { .. } => true,
            _ => false,
        }
    }
}

/// Where root keys live.
///
/// Contract for implementers: `create` is atomic (two concurrent creates for one id: one
/// succeeds, the other gets [`StoreError::Duplicate`]); `get` after a successful `create`
/// returns the same key until `revoke`; `revoke` is idempotent and reports whether a key
/// was removed.
pub trait RootKeyStore: Send + Sync {
    /// Draws a fresh root key for `token_id` and stores it.
    fn create(
        &self,
        token_id: &TokenId,
    ) -> impl Future<Output = Result<RootKey, StoreError>> + Send;
    /// The root key of `token_id`, if it exists and was not revoked.
    fn get(
        &self,
        token_id: &TokenId,
    ) -> impl Future<Output = Result<Option<RootKey>, StoreError>> + Send;
    /// Deletes the key; `true` if there was one.
    fn revoke(&self, token_id: &TokenId) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The invoice tracker's state: which payment hashes settled, and where the settlement stream
/// resumes.
///
/// Contract for implementers: a settlement is a fact recorded once (its amount is the first
/// one recorded); the cursor is the highest `settle_index` ever recorded and never falls.
/// Amounts and indexes above [`MAX_STORED_INTEGER`] are refused with
/// [`StoreError::BadInput`].
pub trait SettlementStore: Send + Sync {
    /// The highest settle_index recorded (0 when none).
    fn settle_cursor(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Records that `hash` settled with `amt_paid_msat` at `settle_index` (0 = learnt from a
    /// direct lookup, which does not move the cursor) and raises the cursor to settle_index if
    /// higher, in one atomic step. Idempotent: recording the same hash again changes nothing
    /// and is Ok, except that a higher `settle_index` still raises the cursor (the stream event
    /// was handled, so a restart need not replay it).
    fn record_settled(
        &self,
        hash: &PaymentHash,
        amt_paid_msat: u64,
        settle_index: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Whether `hash` was recorded as settled.
    fn is_settled(
        &self,
        hash: &PaymentHash,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Tokens minted for challenges, for the admin API and revenue.
///
/// Contract for implementers: records are immutable but for the revoked flag; a view's
/// `settled` and `balance_micro_usd` are read from the [`SettlementStore`] and
/// [`BalanceStore`] of the same store at the time of the call. Amounts above
/// [`MAX_STORED_INTEGER`] are refused with [`StoreError::BadInput`].
pub trait TokenLedger: Send + Sync {
    /// Records a minted token. Duplicate token id -> [`StoreError::Duplicate`], and the first
    /// record stays.
    fn record_token(&self, t: &TokenRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The token's record and state, if it was recorded.
    fn token(
        &self,
        id: &TokenId,
    ) -> impl Future<Output = Result<Option<TokenView>, StoreError>> + Send;
    /// Newest first (by `created_at`, then the later recorded first), at most `limit`;
    /// `settled_only` keeps only tokens whose payment hash settled.
    fn list_tokens(
        &self,
        limit: u32,
        settled_only: bool,
    ) -> impl Future<Output = Result<Vec<TokenView>, StoreError>> + Send;
    /// Marks the token revoked in the ledger (the root key is deleted separately by
    /// RootKeyStore::revoke); true if it existed and was not already revoked.
    fn mark_revoked(&self, id: &TokenId) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Per service and rail, over tokens whose payment hash is settled (revoked ones too: they
    /// were paid): count, sum of price_micro_usd (prepaid tokens count their prepaid_micro_usd
    /// instead), msat, units. Sorted by service (bytewise) then rail (`Sats` before `Asset`).
    fn revenue(&self) -> impl Future<Output = Result<Vec<RevenueRow>, StoreError>> + Send;
}

/// Prepaid balances, idempotency keys and free-call meters.
///
/// Contract for implementers: a balance is opened once and then only falls, never below
/// zero; every operation is atomic against concurrent callers. Keys longer than
/// [`MAX_IDEMPOTENCY_KEY_BYTES`] and amounts above [`MAX_STORED_INTEGER`] are refused with
/// [`StoreError::BadInput`] before anything changes.
pub trait BalanceStore: Send + Sync {
    /// Opens the token's balance at `micro_usd` if it has none; idempotent (a second call
    /// changes nothing). Returns the current balance.
    fn open_balance(
        &self,
        token_id: &TokenId,
        micro_usd: u64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// The token's current balance, if one was opened.
    fn balance(
        &self,
        token_id: &TokenId,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;
    /// Atomically debits `micro_usd`. With Some(key): at most once per (token, key): a repeat
    /// returns the first successful outcome with replayed=true and debits nothing (a key whose
    /// first attempt was Insufficient is not remembered). Concurrent debits never overdraw: N
    /// tasks debiting a balance of k*price yield exactly k Charged.
    fn debit(
        &self,
        token_id: &TokenId,
        micro_usd: u64,
        idempotency_key: Option<&str>,
    ) -> impl Future<Output = Result<Debit, StoreError>> + Send;
    /// Takes one of `limit` free calls for (service, client); true if one was left. Atomic.
    fn take_free_call(
        &self,
        service: &str,
        client: &str,
        limit: u32,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The meters of tokens' cap caveats, charged together with the prepaid balance.
///
/// Contract for implementers: [`charge`](Self::charge) is one atomic step against concurrent
/// callers: it checks every meter in the order given (the first whose count plus its amount
/// would pass its cap refuses the charge as [`ChargeOutcome::MeterFull`]), then the balance
/// ([`ChargeOutcome::Insufficient`], [`ChargeOutcome::NoBalance`]), and only if all of them
/// pass debits them all; a refused charge changes nothing and its idempotency key is not
/// remembered. With an idempotency key, at most once per (token, key): a repeat returns the
/// first successful outcome with `replayed = true` and debits nothing (keys are shared with
/// [`BalanceStore::debit`]). Meters start at zero; a (key, period) pair counts on its own.
/// Keys repeated within one charge, more than [`MAX_METERS_PER_CHARGE`] meters, keys longer
/// than [`MAX_IDEMPOTENCY_KEY_BYTES`] and values above [`MAX_STORED_INTEGER`] are refused
/// with [`StoreError::BadInput`] before anything changes.
pub trait MeterStore: Send + Sync {
    /// Charges one call: the balance debit and every meter, all or nothing.
    fn charge(
        &self,
        charge: &Charge<'_>,
    ) -> impl Future<Output = Result<ChargeOutcome, StoreError>> + Send;
    /// What the meter has counted in `period` (0 if nothing).
    fn meter_used(
        &self,
        key: &MeterKey,
        period: u64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// Most meters one charge may name: a macaroon carries at most
/// [`crate::l402::macaroon::MAX_CAVEATS`] caveats, so no token has more.
pub const MAX_METERS_PER_CHARGE: usize = crate::l402::macaroon::MAX_CAVEATS;

/// Refuses a charge no store can apply (see [`MeterStore`]'s contract).
pub(crate) fn check_charge(c: &Charge<'_>) -> Result<(), StoreError> {
    check_idempotency_key(c.idempotency_key)?;
    if let Some(amount) = c.balance_micro_usd {
        storable(amount, AMOUNT_TOO_LARGE)?;
    }
    if c.meters.len() > MAX_METERS_PER_CHARGE {
        return Err(StoreError::BadInput(
            "a charge names at most 32 meters, as many as a token has caveats",
        ));
    }
    for (i, m) in c.meters.iter().enumerate() {
        for v in [m.period, m.cap, m.amount] {
            storable(v, METER_TOO_LARGE)?;
        }
        if c.meters.iter().take(i).any(|earlier| earlier.key == m.key) {
            return Err(StoreError::BadInput(
                "a charge names a meter twice; name each meter once",
            ));
        }
    }
    Ok(())
}

/// The refusal of a meter's period, cap or amount no store can hold.
pub(crate) const METER_TOO_LARGE: &str = "a meter's period, cap or amount must not exceed i64::MAX";

pub(crate) fn fresh_key() -> Result<RootKey, StoreError> {
    RootKey::generate().map_err(StoreError::Random)
}

/// `value` as the signed integer a store holds, if it fits; `what` is the refusal's message.
pub(crate) fn storable(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::BadInput(what))
}

/// Refuses an idempotency key longer than [`MAX_IDEMPOTENCY_KEY_BYTES`].
pub(crate) fn check_idempotency_key(key: Option<&str>) -> Result<(), StoreError> {
    match key {
        Some(k) if k.len() > MAX_IDEMPOTENCY_KEY_BYTES => Err(StoreError::BadInput(
            "an idempotency key is at most 255 bytes; send a shorter key",
        )),
        _ => Ok(()),
    }
}

/// The refusal of a token record with an amount or time no store can hold.
pub(crate) const RECORD_TOO_LARGE: &str = "a token's amounts and times must not exceed i64::MAX";

/// The refusal of a settlement whose amount or index no store can hold.
pub(crate) const SETTLEMENT_TOO_LARGE: &str =
    "a settled amount or settle index must not exceed i64::MAX";

/// The refusal of a balance or debit no store can hold.
pub(crate) const AMOUNT_TOO_LARGE: &str = "a balance or debit must not exceed i64::MAX micro-USD";

/// Refuses a token record with an amount or time no store can hold.
pub(crate) fn check_record(t: &TokenRecord) -> Result<(), StoreError> {
    let optional = [t.units, t.prepaid_micro_usd].into_iter().flatten();
    for v in [t.price_micro_usd, t.msat, t.created_at, t.expires_at]
        .into_iter()
        .chain(optional)
    {
        storable(v, RECORD_TOO_LARGE)?;
    }
    Ok(())
}

/// A shared store is a store: the gateway's mint, tracker and admin API hold one `Arc` of it.
impl<S: RootKeyStore> RootKeyStore for std::sync::Arc<S> {
    fn create(
        &self,
        token_id: &TokenId,
    ) -> impl Future<Output = Result<RootKey, StoreError>> + Send {
        (**self).create(token_id)
    }
    fn get(
        &self,
        token_id: &TokenId,
    ) -> impl Future<Output = Result<Option<RootKey>, StoreError>> + Send {
        (**self).get(token_id)
    }
    fn revoke(&self, token_id: &TokenId) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).revoke(token_id)
    }
}
