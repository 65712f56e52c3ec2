//! The SQLite schema, as the ordered list of migrations that builds it, and the code that
//! applies them at open.
//!
//! Index + 1 is the schema version; `schema_version` records every version applied. Never
//! edit a migration that has shipped: append a new one (a database created by any earlier
//! tapgate must upgrade by running the ones it lacks). This module must not touch rows.

use sqlx::{Executor, Row, Sqlite, SqlitePool};

use super::db;
use crate::store::StoreError;
use crate::store::sql::{apply_migrations, check_schema_version};

/// Schema migrations, applied in order; index + 1 is the schema version.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: root keys.
    "CREATE TABLE root_keys (
        token_id BLOB PRIMARY KEY NOT NULL CHECK (length(token_id) = 32),
        root_key BLOB NOT NULL CHECK (length(root_key) = 32),
        created_at INTEGER NOT NULL
    ) STRICT",
    // 2: settlements, the token ledger, balances, debit idempotency keys, free-call meters.
    // Amounts are INTEGER (i64; the stores refuse larger values) and checked non-negative, so
    // a bug cannot overdraw a balance. The settlement cursor is MAX(settle_index): rows are
    // never deleted, so it only rises, and recording a settlement moves it in the same
    // statement. `tokens.seq` is the recording order, the tie-break of "newest first".
    "CREATE TABLE settled_payments (
        payment_hash BLOB PRIMARY KEY NOT NULL CHECK (length(payment_hash) = 32),
        amt_paid_msat INTEGER NOT NULL CHECK (amt_paid_msat >= 0),
        settle_index INTEGER NOT NULL CHECK (settle_index >= 0)
    ) STRICT;
    CREATE INDEX settled_payments_by_index ON settled_payments (settle_index);
    CREATE TABLE tokens (
        seq INTEGER PRIMARY KEY,
        token_id BLOB NOT NULL UNIQUE CHECK (length(token_id) = 32),
        payment_hash BLOB NOT NULL CHECK (length(payment_hash) = 32),
        service TEXT NOT NULL,
        tier INTEGER NOT NULL CHECK (tier BETWEEN 0 AND 255),
        rail TEXT NOT NULL CHECK (rail IN ('sats', 'asset')),
        price_micro_usd INTEGER NOT NULL CHECK (price_micro_usd >= 0),
        msat INTEGER NOT NULL CHECK (msat >= 0),
        units INTEGER CHECK (units >= 0),
        prepaid_micro_usd INTEGER CHECK (prepaid_micro_usd >= 0),
        created_at INTEGER NOT NULL CHECK (created_at >= 0),
        expires_at INTEGER NOT NULL CHECK (expires_at >= 0),
        revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
    ) STRICT;
    CREATE INDEX tokens_newest_first ON tokens (created_at DESC, seq DESC);
    CREATE INDEX tokens_by_payment_hash ON tokens (payment_hash);
    CREATE TABLE balances (
        token_id BLOB PRIMARY KEY NOT NULL CHECK (length(token_id) = 32),
        micro_usd INTEGER NOT NULL CHECK (micro_usd >= 0)
    ) STRICT;
    CREATE TABLE debit_keys (
        token_id BLOB NOT NULL CHECK (length(token_id) = 32),
        idempotency_key TEXT NOT NULL CHECK (length(CAST(idempotency_key AS BLOB)) <= 255),
        micro_usd INTEGER NOT NULL CHECK (micro_usd >= 0),
        remaining_micro_usd INTEGER NOT NULL CHECK (remaining_micro_usd >= 0),
        PRIMARY KEY (token_id, idempotency_key)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE free_calls (
        service TEXT NOT NULL,
        client TEXT NOT NULL,
        used INTEGER NOT NULL CHECK (used >= 0),
        PRIMARY KEY (service, client)
    ) STRICT, WITHOUT ROWID",
    // 3: the meters of tokens' cap caveats, named by a hash of the token's chain up to the
    // caveat, per period (0, or the UTC day of a daily cap). `used` never passes the cap it
    // was charged under; the store checks that in the charge's transaction. Replaces the
    // `calls:<token>` rows gate kept in `free_calls` for `_max_calls`, which are left behind:
    // a call cap counts afresh in its meter after the upgrade.
    "CREATE TABLE meters (
        meter_key BLOB NOT NULL CHECK (length(meter_key) = 32),
        period INTEGER NOT NULL CHECK (period >= 0),
        used INTEGER NOT NULL CHECK (used >= 0),
        PRIMARY KEY (meter_key, period)
    ) STRICT, WITHOUT ROWID",
];

/// Applies the migrations of `migrations` the database lacks, in one transaction.
///
/// `BEGIN IMMEDIATE` takes the write lock first, so two processes opening one database
/// migrate one after the other instead of failing on a stale read.
pub(super) async fn migrate(pool: &SqlitePool, migrations: &[&str]) -> Result<(), StoreError> {
    let mut tx = pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(db("begin migration"))?;
    tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .await
        .map_err(db("create schema_version"))?;
    let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        .fetch_one(&mut *tx)
        .await
        .map_err(db("read schema version"))?
        .try_get(0)
        .map_err(db("read schema version"))?;
    check_schema_version(current, migrations.len())?;
    apply_migrations::<Sqlite>(&mut tx, migrations, current).await?;
    tx.commit().await.map_err(db("commit migration"))
}
