//! [`BalanceStore`] over the `balances`, `debit_keys` and `free_calls` tables.
//!
//! Each operation is one statement, atomic on its own under READ COMMITTED (a conditional
//! `UPDATE … RETURNING`, or `INSERT … ON CONFLICT`, which re-checks its condition on the row's
//! newest version after waiting for its lock), except a keyed debit. That one runs in a
//! transaction that first claims its idempotency key by inserting it ([`claim_key`]): a
//! concurrent retry of the same key waits on that row until the first commits (and then
//! replays its outcome) or rolls back (and then debits itself). This module must not decide
//! prices or limits: it applies the ones it is given.

use sqlx::postgres::{PgConnection, Postgres};

use super::PostgresStore;
use crate::l402::TokenId;
use crate::store::sql::{charged, db, uint};
use crate::store::{
    AMOUNT_TOO_LARGE, BalanceStore, Debit, StoreError, check_idempotency_key, storable,
};

crate::store::sql::balance_statements!(
    Postgres,
    debit: "UPDATE balances SET micro_usd = micro_usd - $1 WHERE token_id = $2 AND micro_usd >= $1
             RETURNING micro_usd",
    read: "SELECT micro_usd FROM balances WHERE token_id = $1",
    // The no-op update makes RETURNING give the existing balance on a second open.
    open: "INSERT INTO balances (token_id, micro_usd) VALUES ($1, $2)
           ON CONFLICT (token_id) DO UPDATE SET micro_usd = balances.micro_usd
           RETURNING micro_usd",
);

/// Claims `key` for this transaction by inserting its row (amounts filled in later by
/// [`settle_key`]): None when claimed, Some(the balance left after the first use) when the
/// key was used before. The insert waits for any transaction holding the same key, so of
/// two concurrent retries one claims it and the other replays it; a claim that is rolled
/// back (a refused debit) leaves no key behind.
pub(super) async fn claim_key(
    tx: &mut PgConnection,
    token_id: &TokenId,
    key: &str,
) -> Result<Option<u64>, StoreError> {
    let claimed = sqlx::query(
        "INSERT INTO debit_keys (token_id, idempotency_key, micro_usd, remaining_micro_usd)
         VALUES ($1, $2, 0, 0) ON CONFLICT (token_id, idempotency_key) DO NOTHING",
    )
    .bind(&token_id.0[..])
    .bind(key.as_bytes())
    .execute(&mut *tx)
    .await
    .map_err(db("claim an idempotency key"))?;
    if claimed.rows_affected() == 1 {
        return Ok(None);
    }
    // The conflicting row is committed (the insert waited for it), so this statement sees it.
    let row = sqlx::query(
        "SELECT remaining_micro_usd FROM debit_keys WHERE token_id = $1 AND idempotency_key = $2",
    )
    .bind(&token_id.0[..])
    .bind(key.as_bytes())
    .fetch_optional(&mut *tx)
    .await
    .map_err(db("read an idempotency key"))?
    .ok_or(StoreError::Corrupt(
        "an idempotency key vanished while in use",
    ))?;
    uint(&row, "remaining_micro_usd").map(Some)
}

/// Records what the use of the key [`claim_key`] claimed debited and left.
pub(super) async fn settle_key(
    tx: &mut PgConnection,
    token_id: &TokenId,
    key: &str,
    micro_usd: u64,
    remaining: u64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE debit_keys SET micro_usd = $3, remaining_micro_usd = $4
         WHERE token_id = $1 AND idempotency_key = $2",
    )
    .bind(&token_id.0[..])
    .bind(key.as_bytes())
    .bind(storable(micro_usd, AMOUNT_TOO_LARGE)?)
    .bind(storable(remaining, AMOUNT_TOO_LARGE)?)
    .execute(&mut *tx)
    .await
    .map_err(db("record an idempotency key"))?;
    Ok(())
}

impl BalanceStore for PostgresStore {
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
        let mut tx = self.pool.begin().await.map_err(db("begin a debit"))?;
        if let Some(remaining) = claim_key(&mut tx, token_id, key).await? {
            return Ok(charged(remaining, true));
        }
        let Some(remaining) = charge(&mut *tx, token_id, amount).await? else {
            // Dropping the transaction rolls it back: the claimed key is not remembered.
            return refusal(&mut *tx, token_id).await;
        };
        settle_key(&mut tx, token_id, key, micro_usd, remaining).await?;
        tx.commit().await.map_err(db("commit a debit"))?;
        Ok(charged(remaining, false))
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
            "INSERT INTO free_calls (service, client, used) VALUES ($1, $2, 1)
             ON CONFLICT (service, client) DO UPDATE SET used = free_calls.used + 1
             WHERE free_calls.used < $3
             RETURNING used",
        )
        .bind(service)
        .bind(client.as_bytes())
        .bind(i64::from(limit))
        .fetch_optional(&self.pool)
        .await
        .map_err(db("take a free call"))?;
        Ok(row.is_some())
    }
}
