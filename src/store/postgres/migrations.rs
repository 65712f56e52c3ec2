//! The PostgreSQL schema, as the ordered list of migrations that builds it, and the code that
//! applies them at connect.
//!
//! Index + 1 is the schema version; `schema_version` records every version applied. The
//! versions mirror SQLite's (`sqlite/migrations.rs`): the same tables and checks in this
//! dialect (BIGINT amounts, BYTEA keys, a BOOLEAN flag). Never edit a migration that has
//! shipped: append a new one. This module must not touch rows.

use sqlx::postgres::{PgConnection, Postgres};
use sqlx::{Connection, Row};

use crate::store::StoreError;
use crate::store::sql::{apply_migrations, check_schema_version, db};

/// The advisory lock that serialises migrations across every process using the database
/// (an arbitrary constant: "tapgate" in ASCII).
const MIGRATION_LOCK: i64 = 0x0074_6170_6761_7465;

/// Schema migrations, applied in order; index + 1 is the schema version.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: root keys.
    "CREATE TABLE root_keys (
        token_id BYTEA PRIMARY KEY CHECK (octet_length(token_id) = 32),
        root_key BYTEA NOT NULL CHECK (octet_length(root_key) = 32),
        created_at BIGINT NOT NULL
    )",
    // 2: settlements, the token ledger, balances, debit idempotency keys, free-call meters.
    // Amounts are BIGINT (the stores refuse values above i64::MAX) and checked non-negative,
    // so a bug cannot overdraw a balance. The settlement cursor is MAX(settle_index): rows are
    // never deleted, so it only rises. `tokens.seq` is the recording order, the tie-break of
    // "newest first". Idempotency keys and free-call clients come from clients, so they are
    // BYTEA: any bytes are stored as sent (TEXT would refuse a NUL).
    "CREATE TABLE settled_payments (
        payment_hash BYTEA PRIMARY KEY CHECK (octet_length(payment_hash) = 32),
        amt_paid_msat BIGINT NOT NULL CHECK (amt_paid_msat >= 0),
        settle_index BIGINT NOT NULL CHECK (settle_index >= 0)
    );
    CREATE INDEX settled_payments_by_index ON settled_payments (settle_index);
    CREATE TABLE tokens (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        token_id BYTEA NOT NULL UNIQUE CHECK (octet_length(token_id) = 32),
        payment_hash BYTEA NOT NULL CHECK (octet_length(payment_hash) = 32),
        service TEXT NOT NULL,
        tier BIGINT NOT NULL CHECK (tier BETWEEN 0 AND 255),
        rail TEXT NOT NULL CHECK (rail IN ('sats', 'asset')),
        price_micro_usd BIGINT NOT NULL CHECK (price_micro_usd >= 0),
        msat BIGINT NOT NULL CHECK (msat >= 0),
        units BIGINT CHECK (units >= 0),
        prepaid_micro_usd BIGINT CHECK (prepaid_micro_usd >= 0),
        created_at BIGINT NOT NULL CHECK (created_at >= 0),
        expires_at BIGINT NOT NULL CHECK (expires_at >= 0),
        revoked BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX tokens_newest_first ON tokens (created_at DESC, seq DESC);
    CREATE INDEX tokens_by_payment_hash ON tokens (payment_hash);
    CREATE TABLE balances (
        token_id BYTEA PRIMARY KEY CHECK (octet_length(token_id) = 32),
        micro_usd BIGINT NOT NULL CHECK (micro_usd >= 0)
    );
    CREATE TABLE debit_keys (
        token_id BYTEA NOT NULL CHECK (octet_length(token_id) = 32),
        idempotency_key BYTEA NOT NULL CHECK (octet_length(idempotency_key) <= 255),
        micro_usd BIGINT NOT NULL CHECK (micro_usd >= 0),
        remaining_micro_usd BIGINT NOT NULL CHECK (remaining_micro_usd >= 0),
        PRIMARY KEY (token_id, idempotency_key)
    );
    CREATE TABLE free_calls (
        service TEXT NOT NULL,
        client BYTEA NOT NULL,
        used BIGINT NOT NULL CHECK (used >= 0),
        PRIMARY KEY (service, client)
    )",
    // 3: the meters of tokens' cap caveats, named by a hash of the token's chain up to the
    // caveat, per period (0, or the UTC day of a daily cap). `used` never passes the cap it
    // was charged under; the store checks that in the charge's transaction.
    "CREATE TABLE meters (
        meter_key BYTEA NOT NULL CHECK (octet_length(meter_key) = 32),
        period BIGINT NOT NULL CHECK (period >= 0),
        used BIGINT NOT NULL CHECK (used >= 0),
        PRIMARY KEY (meter_key, period)
    )",
];

/// Applies the migrations of `migrations` the database lacks, in one transaction.
///
/// `pg_advisory_xact_lock` is taken first and held until the transaction ends, so replicas
/// connecting together migrate one after the other: the second reads the version the first
/// committed and applies nothing. A failed migration rolls back whole.
pub(super) async fn migrate(
    conn: &mut PgConnection,
    migrations: &[&str],
) -> Result<(), StoreError> {
    let mut tx = conn.begin().await.map_err(db("begin migration"))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(db("lock the schema for migration"))?;
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        .execute(&mut *tx)
        .await
        .map_err(db("create schema_version"))?;
    let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        .fetch_one(&mut *tx)
        .await
        .map_err(db("read schema version"))?
        .try_get(0)
        .map_err(db("read schema version"))?;
    check_schema_version(current, migrations.len())?;
    apply_migrations::<Postgres>(&mut tx, migrations, current).await?;
    tx.commit().await.map_err(db("commit migration"))
}
