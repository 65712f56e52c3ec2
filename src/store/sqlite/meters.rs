//! [`MeterStore`] over the `meters` table, with the balance and idempotency keys of
//! `balance.rs`.
//!
//! A charge with meters or an idempotency key runs in one `BEGIN IMMEDIATE` transaction: it
//! takes the write lock before reading anything, so no other charge can move a meter or the
//! balance between this one's checks and its writes; it reads the idempotency key, checks
//! every meter, debits the balance and then adds to the meters. A refusal rolls back (the
//! transaction is dropped), so nothing is debited. A charge that is only a balance debit (the
//! most common call: a prepaid token without caps) is one `UPDATE`, atomic on its own. This
//! module must not decide caps or prices: it applies the ones it is given.

use sqlx::sqlite::Sqlite;

use super::balance::{charge as debit_balance, debit_in, refusal};
use super::{SqliteStore, db, uint};
use crate::l402::verify::MeterKey;
use crate::store::sql::{full_meter, replayed, unmetered_charge};
use crate::store::{
    AMOUNT_TOO_LARGE, Charge, ChargeOutcome, METER_TOO_LARGE, MeterStore, StoreError, check_charge,
    storable,
};

crate::store::sql::meter_statements!(Sqlite, used: "SELECT used FROM meters WHERE meter_key = ? AND period = ?");

impl MeterStore for SqliteStore {
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
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db("begin a charge"))?;
        if let Some(key) = c.idempotency_key {
            let earlier = sqlx::query(
                "SELECT remaining_micro_usd FROM debit_keys WHERE token_id = ? AND idempotency_key = ?",
            )
            .bind(&c.token_id.0[..])
            .bind(key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("read an idempotency key"))?;
            if let Some(row) = earlier {
                let remaining = uint(&row, "remaining_micro_usd")?;
                tx.commit().await.map_err(db("commit a charge"))?;
                return Ok(replayed(c, remaining));
            }
        }
        let mut counted = Vec::with_capacity(c.meters.len());
        for m in c.meters {
            counted.push(used(&mut *tx, &m.key, storable(m.period, METER_TOO_LARGE)?).await?);
        }
        // A refusal drops the transaction, which rolls it back; nothing was written.
        if let Some(full) = full_meter(c.meters, &counted) {
            return Ok(full);
        }
        let remaining = match debit_in(&mut tx, c.token_id, c.balance_micro_usd).await? {
            Ok(remaining) => remaining,
            Err(refusal) => return Ok(refusal),
        };
        for m in c.meters.iter().filter(|m| m.amount > 0) {
            sqlx::query(
                "INSERT INTO meters (meter_key, period, used) VALUES (?1, ?2, ?3)
                 ON CONFLICT (meter_key, period) DO UPDATE SET used = used + ?3",
            )
            .bind(&m.key.0[..])
            .bind(storable(m.period, METER_TOO_LARGE)?)
            .bind(storable(m.amount, METER_TOO_LARGE)?)
            .execute(&mut *tx)
            .await
            .map_err(db("add to a meter"))?;
        }
        if let Some(key) = c.idempotency_key {
            sqlx::query(
                "INSERT INTO debit_keys (token_id, idempotency_key, micro_usd, remaining_micro_usd)
                 VALUES (?, ?, ?, ?)",
            )
            .bind(&c.token_id.0[..])
            .bind(key)
            .bind(storable(
                c.balance_micro_usd.unwrap_or(0),
                AMOUNT_TOO_LARGE,
            )?)
            .bind(storable(remaining.unwrap_or(0), AMOUNT_TOO_LARGE)?)
            .execute(&mut *tx)
            .await
            .map_err(db("record an idempotency key"))?;
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
