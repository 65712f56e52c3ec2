//! [`MeterStore`] over the `meters` table, with the balance and idempotency keys of
//! `balance.rs`.
//!
//! A charge with meters or an idempotency key runs in one READ COMMITTED transaction that
//! takes its row locks in one fixed order, so charges from any number of connections and
//! replicas serialise where they touch the same rows and never deadlock: first its
//! idempotency key (claimed by inserting it, `balance.rs`), then every meter row in ascending
//! (key, period) order (each created at zero if new and locked by one upsert that returns what
//! it counted), then the balance row (locked by the conditional debit itself). Holding every
//! meter's lock, it checks them in the order given, debits the balance, adds to the meters
//! and records the key; a refusal drops the transaction, which rolls back everything, the
//! claimed key included. Row locks rather than SERIALIZABLE: contended charges on one meter
//! queue instead of failing and retrying. A charge that is only a balance debit (the most
//! common call) is one `UPDATE`, atomic on its own. This module must not decide caps or
//! prices: it applies the ones it is given.

use sqlx::postgres::{PgConnection, Postgres};

use super::PostgresStore;
use super::balance::{charge as debit_balance, claim_key, debit_in, refusal, settle_key};
use crate::l402::verify::MeterKey;
use crate::store::sql::{db, full_meter, replayed, uint, unmetered_charge};
use crate::store::{
    Charge, ChargeOutcome, METER_TOO_LARGE, MeterStore, StoreError, check_charge, storable,
};

crate::store::sql::meter_statements!(Postgres, used: "SELECT used FROM meters WHERE meter_key = $1 AND period = $2");

/// Locks meter `key`'s row for `period` until the transaction ends (creating it at zero if
/// new) and returns what it counted.
async fn lock_meter(tx: &mut PgConnection, key: &MeterKey, period: i64) -> Result<u64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO meters (meter_key, period, used) VALUES ($1, $2, 0)
         ON CONFLICT (meter_key, period) DO UPDATE SET used = meters.used
         RETURNING used",
    )
    .bind(&key.0[..])
    .bind(period)
    .fetch_one(&mut *tx)
    .await
    .map_err(db("lock a meter"))?;
    uint(&row, "used")
}

impl MeterStore for PostgresStore {
    async fn charge(&self, c: &Charge<'_>) -> Result<ChargeOutcome, StoreError> {
        check_charge(c)?;
        if c.meters.is_empty() && c.idempotency_key.is_none() {
            // Only a balance to debit: one statement is atomic on its own, as `debit`'s is.
            return unmetered_charge(
                c.balance_micro_usd,
                |amount| debit_balance(&self.pool, c.token_id, amount),
                || refusal(&self.pool, c.token_id),
            )
            .await;
        }
        let mut tx = self.pool.begin().await.map_err(db("begin a charge"))?;
        if let Some(key) = c.idempotency_key
            && let Some(remaining) = claim_key(&mut tx, c.token_id, key).await?
        {
            return Ok(replayed(c, remaining));
        }
        // Lock in (key, period) order, whatever order the charge names them in.
        let mut order: Vec<usize> = (0..c.meters.len()).collect();
        order.sort_by_key(|&i| (c.meters[i].key.0, c.meters[i].period));
        let mut counted = vec![0u64; c.meters.len()];
        for i in order {
            let m = &c.meters[i];
            counted[i] = lock_meter(&mut tx, &m.key, storable(m.period, METER_TOO_LARGE)?).await?;
        }
        // A refusal drops the transaction, which rolls it back; nothing stays written.
        if let Some(full) = full_meter(c.meters, &counted) {
            return Ok(full);
        }
        let remaining = match debit_in(&mut tx, c.token_id, c.balance_micro_usd).await? {
            Ok(remaining) => remaining,
            Err(refusal) => return Ok(refusal),
        };
        for m in c.meters.iter().filter(|m| m.amount > 0) {
            sqlx::query("UPDATE meters SET used = used + $3 WHERE meter_key = $1 AND period = $2")
                .bind(&m.key.0[..])
                .bind(storable(m.period, METER_TOO_LARGE)?)
                .bind(storable(m.amount, METER_TOO_LARGE)?)
                .execute(&mut *tx)
                .await
                .map_err(db("add to a meter"))?;
        }
        if let Some(key) = c.idempotency_key {
            let debited = c.balance_micro_usd.unwrap_or(0);
            settle_key(&mut tx, c.token_id, key, debited, remaining.unwrap_or(0)).await?;
        }
        tx.commit().await.map_err(db("commit a charge"))?;
        Ok(ChargeOutcome::Charged {
            remaining_micro_usd: remaining,
            replayed: false,
        })
    }

    async fn meter_used(&self, key: &MeterKey, period: u64) -> Result<u64, StoreError> {
        used(&self.pool, key, storable(period, METER_TOO_LARGE)?).await
    }
}
