//! The client's ledger: what was spent, what is reserved, what is unknown, and the cached
//! tokens, in a SQLite file of its own (`tapgate-client.sqlite`) that survives restarts.
//!
//! This module owns the client's tables and their migrations, and the three steps of a
//! payment: [`ClientLedger::reserve`] before paying, then [`ClientLedger::settle`] (paid),
//! [`ClientLedger::release`] (certainly not paid) or [`ClientLedger::mark_unknown`] (no
//! answer). Each step is one transaction. `reserve` runs `BEGIN IMMEDIATE`, which takes
//! SQLite's write lock before reading what is committed, so two reservations serialise and the
//! second sees the first: concurrent payments cannot together break a cap. It applies the
//! [`Budget`] it is given and must not decide prices, talk to a node or log a token.
//!
//! **Never paying twice.** A payment hash has at most one live row (a partial unique index over
//! the rows not released). A reservation for a hash that is reserved or unknown is refused
//! with [`LedgerError::OutcomeUnknown`]: its payment may still complete, so it must be
//! followed up by its hash (lnd's `TrackPaymentV2`), not paid again. A settled hash is
//! refused with [`LedgerError::AlreadyPaid`].
//!
//! Amounts are integers: micro-dollars (reservations rounded up), msat and asset units. A
//! reservation holds the worst case until it settles at what was actually spent.
//!
//! **Tokens are secrets.** A cached token's macaroon and preimage leave this module only
//! inside a [`CachedToken`], whose `Debug` hides them; [`ClientLedger::tokens`] lists the cache
//! as [`TokenRow`]s, a type with no field that could hold either.

use std::fmt;
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use super::budget::{Budget, BudgetError, day_start, micro_usd_ceil, usd_of_micro};
use super::owner::Owner;
use crate::l402::{Identifier, Macaroon, PaymentHash, Preimage, TokenId};
use crate::store::sqlite::open_pool;
use crate::store::{Rail, StoreError};

/// The ledger's file name in the client's data directory.
pub const FILE_NAME: &str = "tapgate-client.sqlite";

/// The client's schema, as migrations applied in order by the store's `migrate` (which keeps
/// the version in this file's own `schema_version` table); index + 1 is the version. Never
/// edit one that has shipped: append.
const MIGRATIONS: &[&str] = &[
    // 1: spends and cached tokens.
    "CREATE TABLE client_spends (
        id INTEGER PRIMARY KEY,
        url TEXT NOT NULL,
        host TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('reserved', 'unknown', 'settled', 'released')),
        reserved_micro_usd INTEGER NOT NULL CHECK (reserved_micro_usd >= 0),
        spent_micro_usd INTEGER CHECK (spent_micro_usd >= 0),
        rail TEXT NOT NULL CHECK (rail IN ('sats', 'asset')),
        invoice_msat INTEGER NOT NULL CHECK (invoice_msat >= 0),
        fee_limit_msat INTEGER NOT NULL CHECK (fee_limit_msat >= 0),
        fee_msat INTEGER CHECK (fee_msat >= 0),
        units INTEGER CHECK (units >= 0),
        rate_units_per_btc TEXT NOT NULL,
        payment_hash BLOB NOT NULL CHECK (length(payment_hash) = 32),
        created_at INTEGER NOT NULL CHECK (created_at >= 0),
        finished_at INTEGER CHECK (finished_at >= 0)
    ) STRICT;
    CREATE UNIQUE INDEX client_spends_live_hash ON client_spends (payment_hash)
        WHERE state != 'released';
    CREATE INDEX client_spends_by_time ON client_spends (created_at);
    CREATE TABLE client_tokens (
        origin TEXT NOT NULL,
        service TEXT NOT NULL,
        scheme TEXT NOT NULL CHECK (scheme IN ('L402', 'LSAT')),
        macaroon TEXT NOT NULL,
        preimage BLOB NOT NULL CHECK (length(preimage) = 32),
        expires_at INTEGER CHECK (expires_at >= 0),
        stored_at INTEGER NOT NULL CHECK (stored_at >= 0),
        PRIMARY KEY (origin, service)
    ) STRICT, WITHOUT ROWID",
    // 2: who holds a reservation, and the token it is buying, so that a payment followed up
    // after a crash settles with its token cached instead of lost.
    "ALTER TABLE client_spends ADD COLUMN owner_pid INTEGER CHECK (owner_pid >= 0);
    ALTER TABLE client_spends ADD COLUMN owner_started INTEGER CHECK (owner_started >= 0);
    CREATE TABLE client_pending_tokens (
        spend_id INTEGER PRIMARY KEY REFERENCES client_spends (id),
        origin TEXT NOT NULL,
        service TEXT NOT NULL,
        scheme TEXT NOT NULL CHECK (scheme IN ('L402', 'LSAT')),
        macaroon TEXT NOT NULL,
        expires_at INTEGER CHECK (expires_at >= 0)
    ) STRICT",
];

/// Why the ledger refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The budget refuses the payment.
    #[error(transparent)]
    Budget(#[from] BudgetError),
    /// This invoice was already paid.
    #[error(
        "the invoice with payment hash {0} was already paid (see `tapgate wallet spent`); it is not paid twice"
    )]
    AlreadyPaid(PaymentHash),
    /// This invoice's payment is in flight or its outcome is unknown.
    #[error(
        "the invoice with payment hash {0} has a payment in flight or of unknown outcome; it is not paid again. Follow it up by its payment hash (lnd's TrackPaymentV2) and settle or release it"
    )]
    OutcomeUnknown(PaymentHash),
    /// An amount does not fit the ledger's integers.
    #[error("the amount {0} does not fit the ledger; nothing was reserved")]
    Amount(String),
    /// No live reservation has this id (already settled or released).
    #[error("spend {0} is not reserved or unknown, so it cannot change")]
    NotOpen(i64),
    /// A row the ledger wrote does not read back.
    #[error("the client ledger holds a bad {0}; was the file edited by hand?")]
    Corrupt(&'static str),
    /// Creating or migrating the ledger's file failed.
    #[error("cannot open the client ledger: {0}")]
    Open(#[source] StoreError),
    /// SQLite failed.
    #[error("client ledger: cannot {op}: {source}")]
    Database {
        /// What was being done.
        op: &'static str,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
}

fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> LedgerError {
    move |source| LedgerError::Database { op, source }
}

/// What a reservation is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSpend {
    /// The URL whose challenge is paid.
    pub url: String,
    /// Its host, checked against the allowlist.
    pub host: String,
    /// The rail chosen.
    pub rail: Rail,
    /// The invoice amount.
    pub invoice_msat: u64,
    /// The routing fee limit handed to the node.
    pub fee_limit_msat: u64,
    /// The worst case in dollars: what is held until the payment settles.
    pub worst_case_usd: Decimal,
    /// Asset units per BTC the cost was computed at, as a decimal string.
    pub rate_units_per_btc: String,
    /// The invoice's payment hash.
    pub payment_hash: PaymentHash,
    /// The process reserving ([`Owner::current`]); `None` where the system does not say.
    pub owner: Option<Owner>,
    /// The token the payment buys, kept with the reservation so that whoever settles it,
    /// this process or a later one following the payment up, caches the token.
    pub token: Option<PendingToken>,
}

/// The token a reservation is buying: everything but the preimage, which only the payment
/// reveals. Its macaroon is not shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingToken {
    /// Where it will be cached and sent: the origin (`http://host:port`) and the service.
    pub origin: String,
    /// See `origin`.
    pub service: String,
    /// The macaroon (base64), its expiry (unix seconds, if said) and scheme, as the
    /// [`CachedToken`] the payment makes will hold them.
    pub macaroon: String,
    /// See `macaroon`.
    pub expires_at: Option<u64>,
    /// See `macaroon`.
    pub scheme: String,
}

impl fmt::Debug for PendingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Where it goes, and nothing of the macaroon.
        let mut d = f.debug_struct("PendingToken");
        d.field("origin", &self.origin)
            .field("service", &self.service);
        d.finish_non_exhaustive()
    }
}

/// What a payment actually cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spent {
    /// Dollars spent, routing fees included.
    pub usd: Decimal,
    /// Routing fees, msat.
    pub fee_msat: u64,
    /// Asset units spent, for the asset rail.
    pub units: Option<u64>,
}

/// A reservation: the row to settle, release or mark unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpendId(pub i64);

/// The state of a spend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpendState {
    /// Held before paying; the payment may be in flight.
    Reserved,
    /// The payment's outcome is unknown; held until it is followed up.
    Unknown,
    /// Paid.
    Settled,
    /// Certainly not paid; nothing held.
    Released,
}

impl SpendState {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "reserved" => Self::Reserved,
            "unknown" => Self::Unknown,
            "settled" => Self::Settled,
            "released" => Self::Released,
            _ => return None,
        })
    }
}

/// One row of the ledger.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SpendRow {
    /// The row id.
    pub id: i64,
    /// The URL paid for.
    pub url: String,
    /// Its state.
    pub state: SpendState,
    /// `sats` or `asset`.
    pub rail: Rail,
    /// What is held (reserved, unknown) or was spent (settled), dollars; zero once released.
    pub usd: Decimal,
    /// The worst case reserved, dollars.
    pub reserved_usd: Decimal,
    /// The invoice amount, msat.
    pub invoice_msat: u64,
    /// Routing fees, msat, once settled.
    pub fee_msat: Option<u64>,
    /// Asset units spent, once settled on the asset rail.
    pub units: Option<u64>,
    /// Asset units per BTC the cost was computed at.
    pub rate_units_per_btc: String,
    /// The invoice's payment hash, hex.
    pub payment_hash: String,
    /// Unix seconds when reserved.
    pub created_at: u64,
    /// Unix seconds when settled or released.
    pub finished_at: Option<u64>,
    /// The process that reserved it, when recorded.
    #[serde(skip)]
    pub owner: Option<Owner>,
}

/// What is committed against the budget: held and spent, today and in total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    /// Since the start of the current UTC day.
    pub today_usd: Decimal,
    /// Ever.
    pub total_usd: Decimal,
}

/// A cached token. Its secrets are not shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct CachedToken {
    /// `L402` or `LSAT`, as the server used.
    pub scheme: String,
    /// The macaroon, standard base64.
    pub macaroon: String,
    /// The preimage that unlocks it.
    pub preimage: Preimage,
    /// Unix seconds when it expires; `None` when nothing said.
    pub expires_at: Option<u64>,
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field("scheme", &self.scheme)
            .field("macaroon", &"<redacted>")
            .field("preimage", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl CachedToken {
    /// The `Authorization` value: `<scheme> <macaroon>:<preimage hex>`. A bearer credential:
    /// send it, never print it.
    pub fn authorization(&self) -> String {
        format!(
            "{} {}:{}",
            self.scheme,
            self.macaroon,
            hex::encode(self.preimage.expose())
        )
    }
}

/// A cached token as listed: what identifies it and what it cost, and nothing that would let
/// anyone spend it. It has no field for the macaroon or the preimage, so no output, log or
/// `Debug` of it can leak them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TokenRow {
    /// The origin it is sent to, `http://host:port`.
    pub origin: String,
    /// The service it was bought for.
    pub service: String,
    /// `L402` or `LSAT`, as the server used.
    pub scheme: String,
    /// The token id from the macaroon's identifier; `None` when the identifier is not
    /// tapgate's or Aperture's version 0.
    pub token_id: Option<TokenId>,
    /// The payment hash from the macaroon's identifier (`None` as for `token_id`).
    pub payment_hash: Option<PaymentHash>,
    /// Unix seconds when it expires; `None` when the server said nothing.
    pub expires_at: Option<u64>,
    /// Whether it had expired at the time listed (it is then no longer sent).
    pub expired: bool,
    /// Unix seconds when it was cached.
    pub stored_at: u64,
    /// The settled payment that bought it (its row, as `tapgate wallet spent` shows it), when
    /// this ledger recorded one for its payment hash.
    pub paid: Option<SpendRow>,
}

/// The client's SQLite ledger.
#[derive(Clone)]
pub struct ClientLedger {
    pool: SqlitePool,
    path: PathBuf,
}

impl fmt::Debug for ClientLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientLedger")
            .field("path", &self.path)
            .finish()
    }
}

fn int(v: u64, what: &'static str) -> Result<i64, LedgerError> {
    i64::try_from(v).map_err(|_| LedgerError::Amount(format!("{what} {v}")))
}

fn uint(row: &SqliteRow, col: &'static str) -> Result<u64, LedgerError> {
    let v: i64 = row.try_get(col).map_err(db("read a row"))?;
    u64::try_from(v).map_err(|_| LedgerError::Corrupt(col))
}

fn opt_uint(row: &SqliteRow, col: &'static str) -> Result<Option<u64>, LedgerError> {
    let v: Option<i64> = row.try_get(col).map_err(db("read a row"))?;
    v.map(|v| u64::try_from(v).map_err(|_| LedgerError::Corrupt(col)))
        .transpose()
}

impl ClientLedger {
    /// Opens (creating if needed) the ledger at `path` and migrates it.
    pub async fn open(path: &Path) -> Result<Self, LedgerError> {
        // Reservations queue behind each other's write lock: many concurrent payments wait
        // their turn rather than fail.
        let pool = open_pool(path, MIGRATIONS, std::time::Duration::from_secs(30))
            .await
            .map_err(LedgerError::Open)?;
        Ok(Self {
            pool,
            path: path.to_path_buf(),
        })
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// What is committed against the budget at `now`.
    pub async fn committed(&self, now: u64) -> Result<Committed, LedgerError> {
        let mut conn = self.pool.acquire().await.map_err(db("connect"))?;
        committed(&mut conn, now).await
    }

    /// Reserves `spend.worst_case_usd` if the host is allowed and every cap of `budget` has
    /// room for it, and the invoice was never paid nor is being paid. One `BEGIN IMMEDIATE`
    /// transaction.
    pub async fn reserve(
        &self,
        spend: &NewSpend,
        budget: &Budget,
        now: u64,
    ) -> Result<SpendId, LedgerError> {
        budget.allows_host(&spend.host)?;
        let micro = micro_usd_ceil(spend.worst_case_usd)
            .ok_or_else(|| LedgerError::Amount(spend.worst_case_usd.to_string()))?;
        let invoice_msat = int(spend.invoice_msat, "invoice msat")?;
        let fee_limit_msat = int(spend.fee_limit_msat, "fee limit msat")?;
        let created_at = int(now, "time")?;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db("begin a reservation"))?;
        let existing = sqlx::query(
            "SELECT state FROM client_spends WHERE payment_hash = ? AND state != 'released'",
        )
        .bind(&spend.payment_hash.0[..])
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("look up the payment hash"))?;
        if let Some(row) = existing {
            let state: String = row.try_get("state").map_err(db("read a row"))?;
            return Err(match SpendState::parse(&state) {
                Some(SpendState::Settled) => LedgerError::AlreadyPaid(spend.payment_hash),
                _ => LedgerError::OutcomeUnknown(spend.payment_hash),
            });
        }
        let c = committed(&mut tx, now).await?;
        budget.check(usd_of_micro(micro), c.today_usd, c.total_usd)?;
        let id: i64 = sqlx::query(
            "INSERT INTO client_spends (url, host, state, reserved_micro_usd, rail, invoice_msat,
                fee_limit_msat, rate_units_per_btc, payment_hash, created_at, owner_pid,
                owner_started)
             VALUES (?, ?, 'reserved', ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&spend.url)
        .bind(&spend.host)
        .bind(micro)
        .bind(spend.rail.as_str())
        .bind(invoice_msat)
        .bind(fee_limit_msat)
        .bind(&spend.rate_units_per_btc)
        .bind(&spend.payment_hash.0[..])
        .bind(created_at)
        .bind(spend.owner.map(|o| i64::from(o.pid)))
        .bind(
            spend
                .owner
                .map(|o| int(o.started, "process start time"))
                .transpose()?,
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(db("reserve"))?
        .try_get("id")
        .map_err(db("read the reservation id"))?;
        if let Some(t) = &spend.token {
            sqlx::query(
                "INSERT INTO client_pending_tokens (spend_id, origin, service, scheme, macaroon,
                    expires_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(&t.origin)
            .bind(&t.service)
            .bind(&t.scheme)
            .bind(&t.macaroon)
            .bind(t.expires_at.map(|e| int(e, "time")).transpose()?)
            .execute(&mut *tx)
            .await
            .map_err(db("keep the token with its reservation"))?;
        }
        tx.commit().await.map_err(db("commit a reservation"))?;
        Ok(SpendId(id))
    }

    /// Records that the reserved (or unknown) payment `id` was made and what it cost, and
    /// caches the token kept with the reservation, unlocked by `preimage` (when it hashes to
    /// the spend's payment hash). One transaction. What was spent replaces what was held, even
    /// above it (the ledger records the truth; the fee limit keeps it within the reservation).
    ///
    /// The token replaces the one cached for its origin and service, unless `slot` is
    /// [`TokenSlot::IfFree`] and a token that has not expired is cached there (a payment
    /// followed up later must not push out a token bought since). Returns the token cached.
    pub async fn settle(
        &self,
        id: SpendId,
        spent: &Spent,
        preimage: &Preimage,
        slot: TokenSlot,
        now: u64,
    ) -> Result<Option<CachedToken>, LedgerError> {
        let micro =
            micro_usd_ceil(spent.usd).ok_or_else(|| LedgerError::Amount(spent.usd.to_string()))?;
        let units = spent.units.map(|u| int(u, "units")).transpose()?;
        let at = int(now, "time")?;
        let mut tx = self.pool.begin().await.map_err(db("begin a settlement"))?;
        let settled = sqlx::query(
            "UPDATE client_spends SET state = 'settled', spent_micro_usd = ?, fee_msat = ?,
                units = ?, finished_at = ?
             WHERE id = ? AND state IN ('reserved', 'unknown') RETURNING payment_hash",
        )
        .bind(micro)
        .bind(int(spent.fee_msat, "fee msat")?)
        .bind(units)
        .bind(at)
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("settle"))?;
        let Some(settled) = settled else {
            return Err(LedgerError::NotOpen(id.0));
        };
        let hash: Vec<u8> = settled.try_get("payment_hash").map_err(db("settle"))?;
        let pending = sqlx::query(
            "DELETE FROM client_pending_tokens WHERE spend_id = ?
             RETURNING origin, service, scheme, macaroon, expires_at",
        )
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("take the reservation's token"))?;
        let mut cached = None;
        if let Some(row) = pending
            && preimage.payment_hash().0[..] == hash[..]
        {
            let get = |col: &'static str| -> Result<String, LedgerError> {
                row.try_get(col).map_err(db("read the reservation's token"))
            };
            let (origin, service) = (get("origin")?, get("service")?);
            let token = CachedToken {
                scheme: get("scheme")?,
                macaroon: get("macaroon")?,
                preimage: preimage.clone(),
                expires_at: opt_uint(&row, "expires_at")?,
            };
            let keep_cached = slot == TokenSlot::IfFree
                && sqlx::query(
                    "SELECT 1 FROM client_tokens WHERE origin = ? AND service = ?
                     AND (expires_at IS NULL OR expires_at > ?)",
                )
                .bind(&origin)
                .bind(&service)
                .bind(at)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db("read a token"))?
                .is_some();
            if !keep_cached {
                upsert_token(&mut tx, &origin, &service, &token, now).await?;
                cached = Some(token);
            }
        }
        tx.commit().await.map_err(db("commit a settlement"))?;
        Ok(cached)
    }

    /// Frees the reservation `id`: its payment certainly did not happen (the node said it
    /// failed, or it was never sent). The invoice may be paid again later.
    pub async fn release(&self, id: SpendId, now: u64) -> Result<(), LedgerError> {
        self.transition(id, "released", "release", now).await
    }

    /// Keeps the reservation `id` held with its outcome unknown (a timeout, a dropped
    /// stream): it must be followed up by its payment hash, and is never paid again.
    pub async fn mark_unknown(&self, id: SpendId, now: u64) -> Result<(), LedgerError> {
        self.transition(id, "unknown", "mark unknown", now).await
    }

    async fn transition(
        &self,
        id: SpendId,
        to: &'static str,
        op: &'static str,
        now: u64,
    ) -> Result<(), LedgerError> {
        let released = to == "released";
        let finished = released.then_some(int(now, "time")?);
        let mut tx = self.pool.begin().await.map_err(db(op))?;
        let done = sqlx::query(
            "UPDATE client_spends SET state = ?, finished_at = ?
             WHERE id = ? AND state IN ('reserved', 'unknown')",
        )
        .bind(to)
        .bind(finished)
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(db(op))?;
        if done.rows_affected() != 1 {
            return Err(LedgerError::NotOpen(id.0));
        }
        if released {
            // Nothing was paid, so the token it was buying is worth nothing.
            sqlx::query("DELETE FROM client_pending_tokens WHERE spend_id = ?")
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(db(op))?;
        }
        tx.commit().await.map_err(db(op))?;
        Ok(())
    }

    /// The spends reserved at or after `since` (unix seconds), oldest first.
    pub async fn spends(&self, since: u64) -> Result<Vec<SpendRow>, LedgerError> {
        let rows = sqlx::query(
            "SELECT id, url, state, rail, reserved_micro_usd, spent_micro_usd, invoice_msat,
                fee_msat, units, rate_units_per_btc, payment_hash, created_at, finished_at,
                owner_pid, owner_started
             FROM client_spends WHERE created_at >= ? ORDER BY created_at, id",
        )
        .bind(int(since, "time")?)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list spends"))?;
        rows.iter().map(spend_row).collect()
    }

    /// The spends whose outcome is not known yet (reserved or unknown): the ones to follow
    /// up by payment hash after a restart.
    pub async fn open_spends(&self) -> Result<Vec<SpendRow>, LedgerError> {
        Ok(self
            .spends(0)
            .await?
            .into_iter()
            .filter(|r| matches!(r.state, SpendState::Reserved | SpendState::Unknown))
            .collect())
    }

    /// Caches the token for `origin` and `service`, replacing the one before.
    pub async fn put_token(
        &self,
        origin: &str,
        service: &str,
        token: &CachedToken,
        now: u64,
    ) -> Result<(), LedgerError> {
        let mut conn = self.pool.acquire().await.map_err(db("connect"))?;
        upsert_token(&mut conn, origin, service, token, now).await
    }

    /// The cached token for `origin` and `service` that has not expired at `now`.
    pub async fn token(
        &self,
        origin: &str,
        service: &str,
        now: u64,
    ) -> Result<Option<CachedToken>, LedgerError> {
        let row = sqlx::query(
            "SELECT scheme, macaroon, preimage, expires_at FROM client_tokens
             WHERE origin = ? AND service = ? AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(origin)
        .bind(service)
        .bind(int(now, "time")?)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("read a token"))?;
        let Some(row) = row else { return Ok(None) };
        let preimage: Vec<u8> = row.try_get("preimage").map_err(db("read a token"))?;
        let preimage: [u8; 32] = preimage
            .try_into()
            .map_err(|_| LedgerError::Corrupt("preimage"))?;
        Ok(Some(CachedToken {
            scheme: row.try_get("scheme").map_err(db("read a token"))?,
            macaroon: row.try_get("macaroon").map_err(db("read a token"))?,
            preimage: Preimage::from_bytes(preimage),
            expires_at: opt_uint(&row, "expires_at")?,
        }))
    }

    /// Every cached token, expired ones included (flagged as expired at `now`), by origin and
    /// service, without its secrets; each with the settled payment that bought it when the
    /// ledger has one for its payment hash.
    pub async fn tokens(&self, now: u64) -> Result<Vec<TokenRow>, LedgerError> {
        let rows = sqlx::query(
            "SELECT origin, service, scheme, macaroon, expires_at, stored_at FROM client_tokens
             ORDER BY origin, service",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("list tokens"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let get = |col: &'static str| -> Result<String, LedgerError> {
                row.try_get(col).map_err(db("read a token"))
            };
            // The macaroon is read only to take its identifier; it goes no further.
            let id = Macaroon::from_base64(&get("macaroon")?)
                .ok()
                .and_then(|m| Identifier::decode(m.identifier()).ok());
            let expires_at = opt_uint(row, "expires_at")?;
            let paid = match id {
                Some(id) => self.settled_for(&id.payment_hash).await?,
                None => None,
            };
            out.push(TokenRow {
                origin: get("origin")?,
                service: get("service")?,
                scheme: get("scheme")?,
                token_id: id.map(|i| i.token_id),
                payment_hash: id.map(|i| i.payment_hash),
                expires_at,
                expired: expires_at.is_some_and(|e| e <= now),
                stored_at: uint(row, "stored_at")?,
                paid,
            });
        }
        Ok(out)
    }

    /// The settled spend for `hash`, if any (at most one: a hash has one live row).
    async fn settled_for(&self, hash: &PaymentHash) -> Result<Option<SpendRow>, LedgerError> {
        let row = sqlx::query(
            "SELECT id, url, state, rail, reserved_micro_usd, spent_micro_usd, invoice_msat,
                fee_msat, units, rate_units_per_btc, payment_hash, created_at, finished_at,
                owner_pid, owner_started
             FROM client_spends WHERE payment_hash = ? AND state = 'settled'",
        )
        .bind(&hash.0[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(db("look up a token's payment"))?;
        row.as_ref().map(spend_row).transpose()
    }

    /// Forgets the token for `origin` and `service` (the server refused it).
    pub async fn forget_token(&self, origin: &str, service: &str) -> Result<(), LedgerError> {
        sqlx::query("DELETE FROM client_tokens WHERE origin = ? AND service = ?")
            .bind(origin)
            .bind(service)
            .execute(&self.pool)
            .await
            .map_err(db("forget a token"))?;
        Ok(())
    }
}

/// Held plus spent, today and in total: a settled row counts what it spent, a reserved or
/// unknown one what it holds, a released one nothing.
async fn committed(conn: &mut sqlx::SqliteConnection, now: u64) -> Result<Committed, LedgerError> {
    let row = sqlx::query(
        "SELECT
            COALESCE(SUM(CASE WHEN created_at >= ?1 THEN amount END), 0) AS today,
            COALESCE(SUM(amount), 0) AS total
         FROM (SELECT created_at,
                CASE state WHEN 'settled' THEN spent_micro_usd ELSE reserved_micro_usd END AS amount
               FROM client_spends WHERE state != 'released')",
    )
    .bind(int(day_start(now), "time")?)
    .fetch_one(&mut *conn)
    .await
    .map_err(db("sum what is committed"))?;
    let today: i64 = row.try_get("today").map_err(db("read a sum"))?;
    let total: i64 = row.try_get("total").map_err(db("read a sum"))?;
    Ok(Committed {
        today_usd: usd_of_micro(today),
        total_usd: usd_of_micro(total),
    })
}

/// Where a settled payment's token goes in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenSlot {
    /// Replace the token cached for its origin and service (the payment was just made for a
    /// request that needs it).
    Replace,
    /// Only into an empty or expired slot (a payment followed up later).
    IfFree,
}

/// Caches `token` for `origin` and `service`, replacing the one before.
async fn upsert_token(
    conn: &mut sqlx::SqliteConnection,
    origin: &str,
    service: &str,
    token: &CachedToken,
    now: u64,
) -> Result<(), LedgerError> {
    let expires_at = token.expires_at.map(|e| int(e, "time")).transpose()?;
    sqlx::query(
        "INSERT INTO client_tokens (origin, service, scheme, macaroon, preimage, expires_at, stored_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (origin, service) DO UPDATE SET scheme = excluded.scheme,
            macaroon = excluded.macaroon, preimage = excluded.preimage,
            expires_at = excluded.expires_at, stored_at = excluded.stored_at",
    )
    .bind(origin)
    .bind(service)
    .bind(&token.scheme)
    .bind(&token.macaroon)
    .bind(&token.preimage.expose()[..])
    .bind(expires_at)
    .bind(int(now, "time")?)
    .execute(&mut *conn)
    .await
    .map_err(db("store a token"))?;
    Ok(())
}

fn spend_row(row: &SqliteRow) -> Result<SpendRow, LedgerError> {
    let get = |col: &'static str| -> Result<String, LedgerError> {
        row.try_get(col).map_err(db("read a spend"))
    };
    let state = SpendState::parse(&get("state")?).ok_or(LedgerError::Corrupt("state"))?;
    let rail = match get("rail")?.as_str() {
        "sats" => Rail::Sats,
        "asset" => Rail::Asset,
        _ => return Err(LedgerError::Corrupt("rail")),
    };
    let reserved = row
        .try_get::<i64, _>("reserved_micro_usd")
        .map_err(db("read a spend"))?;
    let spent: Option<i64> = row.try_get("spent_micro_usd").map_err(db("read a spend"))?;
    let usd = match state {
        SpendState::Settled => spent.unwrap_or(reserved),
        SpendState::Released => 0,
        SpendState::Reserved | SpendState::Unknown => reserved,
    };
    let hash: Vec<u8> = row.try_get("payment_hash").map_err(db("read a spend"))?;
    Ok(SpendRow {
        id: row.try_get("id").map_err(db("read a spend"))?,
        url: get("url")?,
        state,
        rail,
        usd: usd_of_micro(usd),
        reserved_usd: usd_of_micro(reserved),
        invoice_msat: uint(row, "invoice_msat")?,
        fee_msat: opt_uint(row, "fee_msat")?,
        units: opt_uint(row, "units")?,
        rate_units_per_btc: get("rate_units_per_btc")?,
        payment_hash: hex::encode(hash),
        created_at: uint(row, "created_at")?,
        finished_at: opt_uint(row, "finished_at")?,
        owner: match (opt_uint(row, "owner_pid")?, opt_uint(row, "owner_started")?) {
            (Some(pid), Some(started)) => Some(Owner {
                pid: u32::try_from(pid).map_err(|_| LedgerError::Corrupt("owner_pid"))?,
                started,
            }),
            _ => None,
        },
    })
}

#[cfg(test)]
mod tests;
