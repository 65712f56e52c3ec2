//! [`TokenLedger`] over the `tokens` table, read together with `settled_payments` and
//! `balances` so a view shows the token's state at the time of the call.
//!
//! This module owns the mapping between [`TokenRecord`] and its row in this dialect (the
//! decoding is shared with SQLite in `store/sql.rs`); it must not store anything secret (a
//! record holds none).

use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PostgresStore;
use crate::l402::TokenId;
use crate::store::sql::{db, optional, revenue_row, token_view};
use crate::store::{
    RECORD_TOO_LARGE, RevenueRow, StoreError, TokenLedger, TokenRecord, TokenView, storable,
};

/// A token's columns with its settlement and balance, for [`view`]; callers append a
/// `WHERE` and an `ORDER BY`.
macro_rules! select_views {
    () => {
        "SELECT t.token_id, t.payment_hash, t.service, t.tier, t.rail, t.price_micro_usd, t.msat,
                t.units, t.prepaid_micro_usd, t.created_at, t.expires_at, t.revoked,
                EXISTS (SELECT 1 FROM settled_payments s WHERE s.payment_hash = t.payment_hash)
                    AS settled,
                b.micro_usd AS balance
         FROM tokens t LEFT JOIN balances b ON b.token_id = t.token_id "
    };
}

fn view(row: &PgRow) -> Result<TokenView, StoreError> {
    let flag = |col: &str| row.try_get::<bool, _>(col).map_err(db("read a token"));
    token_view(row, flag("settled")?, flag("revoked")?)
}

impl TokenLedger for PostgresStore {
    async fn record_token(&self, t: &TokenRecord) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO tokens (token_id, payment_hash, service, tier, rail, price_micro_usd, msat,
                                 units, prepaid_micro_usd, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (token_id) DO NOTHING",
        )
        .bind(&t.token_id.0[..])
        .bind(&t.payment_hash.0[..])
        .bind(&t.service)
        .bind(i64::from(t.tier))
        .bind(t.rail.as_str())
        .bind(storable(t.price_micro_usd, RECORD_TOO_LARGE)?)
        .bind(storable(t.msat, RECORD_TOO_LARGE)?)
        .bind(optional(t.units)?)
        .bind(optional(t.prepaid_micro_usd)?)
        .bind(storable(t.created_at, RECORD_TOO_LARGE)?)
        .bind(storable(t.expires_at, RECORD_TOO_LARGE)?)
        .execute(&self.pool)
        .await
        .map_err(db("record a token"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Duplicate(t.token_id));
        }
        Ok(())
    }

    async fn token(&self, id: &TokenId) -> Result<Option<TokenView>, StoreError> {
        let row = sqlx::query(concat!(select_views!(), "WHERE t.token_id = $1"))
            .bind(&id.0[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read a token"))?;
        row.as_ref().map(view).transpose()
    }

    async fn list_tokens(
        &self,
        limit: u32,
        settled_only: bool,
    ) -> Result<Vec<TokenView>, StoreError> {
        // PostgreSQL's WHERE cannot name the select list's `settled`, so it repeats the test.
        let rows = sqlx::query(concat!(
            select_views!(),
            "WHERE NOT $1 OR EXISTS (SELECT 1 FROM settled_payments s
                                     WHERE s.payment_hash = t.payment_hash)
             ORDER BY t.created_at DESC, t.seq DESC LIMIT $2"
        ))
        .bind(settled_only)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db("list tokens"))?;
        rows.iter().map(view).collect()
    }

    async fn mark_revoked(&self, id: &TokenId) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE tokens SET revoked = TRUE WHERE token_id = $1 AND NOT revoked")
                .bind(&id.0[..])
                .execute(&self.pool)
                .await
                .map_err(db("mark a token revoked"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn revenue(&self) -> Result<Vec<RevenueRow>, StoreError> {
        // Services sort bytewise (the C collation), whatever the database's own; rails sort as
        // the enum does (sats first), not by name. SUM of BIGINT is NUMERIC here: cast back
        // (a sum past i64::MAX fails the query rather than wrap).
        let rows = sqlx::query(
            "SELECT t.service, t.rail, COUNT(*) AS tokens,
                    SUM(COALESCE(t.prepaid_micro_usd, t.price_micro_usd))::BIGINT AS micro_usd,
                    SUM(t.msat)::BIGINT AS msat, SUM(COALESCE(t.units, 0))::BIGINT AS units
             FROM tokens t JOIN settled_payments s ON s.payment_hash = t.payment_hash
             GROUP BY t.service, t.rail
             ORDER BY t.service COLLATE \"C\", CASE t.rail WHEN 'sats' THEN 0 ELSE 1 END",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("sum revenue"))?;
        rows.iter().map(revenue_row).collect()
    }
}
