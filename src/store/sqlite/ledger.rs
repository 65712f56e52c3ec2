//! [`TokenLedger`](crate::store::TokenLedger) over the `tokens` table, read together with `settled_payments` and
//! `balances` so a view shows the token's state at the time of the call.
//!
//! This module owns the ledger's statements in SQLite's dialect (the code that binds and
//! decodes them is `sql/impls.rs`'s); it must not store anything secret (a record holds none).

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{SqliteStore, db};
use crate::store::sql::{select_views, token_view};
use crate::store::{StoreError, TokenView};

fn flag(row: &SqliteRow, col: &str) -> Result<bool, StoreError> {
    let v: i64 = row.try_get(col).map_err(db("read a token"))?;
    Ok(v != 0)
}

fn view(row: &SqliteRow) -> Result<TokenView, StoreError> {
    token_view(row, flag(row, "settled")?, flag(row, "revoked")?)
}

crate::store::sql::token_ledger!(
    SqliteStore,
    view: view,
    record: "INSERT INTO tokens (token_id, payment_hash, service, tier, rail, price_micro_usd, msat,
                                 units, prepaid_micro_usd, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (token_id) DO NOTHING",
    token: concat!(select_views!(), "WHERE t.token_id = ?"),
    list: concat!(
        select_views!(),
        "WHERE ?1 = 0 OR settled ORDER BY t.created_at DESC, t.seq DESC LIMIT ?2"
    ),
    revoke: "UPDATE tokens SET revoked = 1 WHERE token_id = ? AND revoked = 0",
    // Rails sort as the enum does (sats first), not by name.
    revenue: "SELECT t.service, t.rail, COUNT(*) AS tokens,
                     SUM(COALESCE(t.prepaid_micro_usd, t.price_micro_usd)) AS micro_usd,
                     SUM(t.msat) AS msat, SUM(COALESCE(t.units, 0)) AS units
              FROM tokens t JOIN settled_payments s ON s.payment_hash = t.payment_hash
              GROUP BY t.service, t.rail
              ORDER BY t.service, CASE t.rail WHEN 'sats' THEN 0 ELSE 1 END",
);
