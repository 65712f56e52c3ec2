//! [`BalanceStore`] over the `balances`, `debit_keys` and `free_calls` tables.
//!
//! Each operation is one statement (atomic on its own) except a keyed debit, which runs in a
//! `BEGIN IMMEDIATE` transaction: it takes the write lock before reading the key, so two
//! retries of one key serialise and the second sees the first's outcome. This module must not
//! decide prices or limits: it applies the ones it is given.

use sqlx::sqlite::Sqlite;

use super::{SqliteStore, db, uint};
use crate::l402::TokenId;
use crate::store::sql::charged;
use crate::store::{
    AMOUNT_TOO_LARGE, BalanceStore, Debit, StoreError, check_idempotency_key, storable,
};

crate::store::sql::balance_statements!(
    Sqlite,
    debit: "UPDATE balances SET micro_usd = micro_usd - ?1 WHERE token_id = ?2 AND micro_usd >= ?1
             RETURNING micro_usd",
    read: "SELECT micro_usd FROM balances WHERE token_id = ?",
    // The no-op update makes RETURNING give the existing balance on a second open.
    open: "INSERT INTO balances (token_id, micro_usd) VALUES (?, ?)
           ON CONFLICT (token_id) DO UPDATE SET micro_usd = micro_usd RETURNING micro_usd",
);

impl BalanceStore for SqliteStore {
    async fn open_balance(&self, token_id: &TokenId, micro_usd: u64) -> Result<u64, StoreError> {
        open(&self.pool, token_id, micro_usd).await
    }

    async fn balance(&self, token_id: &TokenId) -> Result<Option<u64>, StoreError> {
        balance_of(&self.pool, token_id).await
    }

    async fn debit(
        &self,
        token_id: &TokenId,
        micro_usd: u64,
        idempotency_key: Option<&str>,
    ) -> Result<Debit, StoreError> {
        let amount = storable(micro_usd, AMOUNT_TOO_LARGE)?;
        check_idempotency_key(idempotency_key)?;
        let Some(key) = idempotency_key else {
            return debit_unkeyed(&self.pool, token_id, amount).await;
        };
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db("begin a debit"))?;
        let earlier = sqlx::query(
            "SELECT remaining_micro_usd FROM debit_keys WHERE token_id = ? AND idempotency_key = ?",
        )
        .bind(&token_id.0[..])
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("read an idempotency key"))?;
        let outcome = if let Some(row) = earlier {
            charged(uint(&row, "remaining_micro_usd")?, true)
        } else if let Some(remaining) = charge(&mut *tx, token_id, amount).await? {
            sqlx::query(
                "INSERT INTO debit_keys (token_id, idempotency_key, micro_usd, remaining_micro_usd)
                 VALUES (?, ?, ?, ?)",
            )
            .bind(&token_id.0[..])
            .bind(key)
            .bind(amount)
            .bind(storable(remaining, AMOUNT_TOO_LARGE)?)
            .execute(&mut *tx)
            .await
            .map_err(db("record an idempotency key"))?;
            charged(remaining, false)
        } else {
            // A refused debit writes nothing, so its key is not remembered.
            refusal(&mut *tx, token_id).await?
        };
        tx.commit().await.map_err(db("commit a debit"))?;
        Ok(outcome)
    }

    async fn take_free_call(
        &self,
        service: &str,
        client: &str,
        limit: u32,
    ) -> Result<bool, StoreError> {
        if limit == 0 {
            return Ok(false);
        }
        // Inserting counts the first call; the update counts later ones while some are left,
        // and RETURNING gives a row only when one of the two happened.
        let row = sqlx::query(
            "INSERT INTO free_calls (service, client, used) VALUES (?1, ?2, 1)
             ON CONFLICT (service, client) DO UPDATE SET used = used + 1 WHERE used < ?3
             RETURNING used",
        )
        .bind(service)
        .bind(client)
        .bind(i64::from(limit))
        .fetch_optional(&self.pool)
        .await
        .map_err(db("take a free call"))?;
        Ok(row.is_some())
    }
}
