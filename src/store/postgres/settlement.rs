//! [`SettlementStore`] over the `settled_payments` table.
//!
//! The cursor is not stored apart: it is `MAX(settle_index)`, so recording a settlement and
//! raising the cursor are one statement (`GREATEST` on a repeat) and cannot drift apart. This
//! module must not decide what settled: it records what the invoice tracker reports.

use super::PostgresStore;
use crate::l402::PaymentHash;
use crate::store::sql::{db, uint};
use crate::store::{SETTLEMENT_TOO_LARGE, SettlementStore, StoreError, storable};

impl SettlementStore for PostgresStore {
    async fn settle_cursor(&self) -> Result<u64, StoreError> {
        let row =
            sqlx::query("SELECT COALESCE(MAX(settle_index), 0) AS cursor FROM settled_payments")
                .fetch_one(&self.pool)
                .await
                .map_err(db("read the settlement cursor"))?;
        uint(&row, "cursor")
    }

    async fn record_settled(
        &self,
        hash: &PaymentHash,
        amt_paid_msat: u64,
        settle_index: u64,
    ) -> Result<(), StoreError> {
        // The first amount stays; a higher index still raises the cursor.
        sqlx::query(
            "INSERT INTO settled_payments (payment_hash, amt_paid_msat, settle_index)
             VALUES ($1, $2, $3)
             ON CONFLICT (payment_hash) DO UPDATE
             SET settle_index = GREATEST(settled_payments.settle_index, EXCLUDED.settle_index)",
        )
        .bind(&hash.0[..])
        .bind(storable(amt_paid_msat, SETTLEMENT_TOO_LARGE)?)
        .bind(storable(settle_index, SETTLEMENT_TOO_LARGE)?)
        .execute(&self.pool)
        .await
        .map_err(db("record a settlement"))?;
        Ok(())
    }

    async fn is_settled(&self, hash: &PaymentHash) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM settled_payments WHERE payment_hash = $1")
            .bind(&hash.0[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read a settlement"))?;
        Ok(row.is_some())
    }
}
