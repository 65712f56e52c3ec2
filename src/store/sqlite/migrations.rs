//! The SQLite schema, as the ordered list of migrations that builds it, and the code that
//! applies them at open.
//!
//! Index + 1 is the schema version; `schema_version` records every version applied. Never
//! edit a migration that has shipped: append a new one (a database created by any earlier
//! tapgate must upgrade by running the ones it lacks). This module must not touch rows.

use sqlx::{Executor, Row, SqlitePool};

use super::db;
use crate::store::StoreError;

/// Schema migrations, applied in order; index + 1 is the schema version.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: root keys.
    "CREATE TABLE root_keys (
        token_id BLOB PRIMARY KEY NOT NULL CHECK (length(token_id) = 32),
        root_key BLOB NOT NULL CHECK (length(root_key) = 32),
        created_at INTEGER NOT NULL
    ) STRICT",
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
    let known = migrations.len();
    match usize::try_from(current) {
        Err(_) => return Err(StoreError::Corrupt("negative schema version")),
        Ok(c) if c > known => return Err(StoreError::NewerSchema { found: c, known }),
        Ok(_) => {}
    }
    for (version, sql) in (1i64..).zip(migrations).skip_while(|(v, _)| *v <= current) {
        tx.execute(*sql).await.map_err(db("apply a migration"))?;
        sqlx::query("INSERT INTO schema_version (version) VALUES (?)")
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(db("record schema version"))?;
        tracing::info!(version, "store database migrated");
    }
    tx.commit().await.map_err(db("commit migration"))
}
