//! [`TokenLedger`](crate::store::TokenLedger) over the `tokens` table, read together with `settled_payments` and
//! `balances` so a view shows the token's state at the time of the call.
//!
//! This module owns the ledger's statements in PostgreSQL's dialect (the code that binds and
//! decodes them is `sql/impls.rs`'s); it must not store anything secret (a record holds none).

use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PostgresStore;
use crate::store::sql::{db, select_views, token_view};
use crate::store::{StoreError, TokenView};

fn view(row: &PgRow) -> Result<TokenView, StoreError> {
    let flag = |col: &str| row.try_get::<bool, _>(col).map_err(db("read a token"));
    token_view(row, flag("settled")?, flag("revoked")?)
}

crate::store::sql::token_ledger!(
    PostgresStore,
    view: view,
    record: "INSERT INTO tokens (token_id, payment_hash, service, tier, rail, price_micro_usd, msat,
                                 units, prepaid_micro_usd, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (token_id) DO NOTHING",
    token: concat!(select_views!(), "WHERE t.token_id = $1"),
    // PostgreSQL's WHERE cannot name the select list's `settled`, so it repeats the test.
    list: concat!(
        select_views!(),
        "WHERE NOT $1 OR EXISTS (SELECT 1 FROM settled_payments s
                                 WHERE s.payment_hash = t.payment_hash)
         ORDER BY t.created_at DESC, t.seq DESC LIMIT $2"
    ),
    revoke: "UPDATE tokens SET revoked = TRUE WHERE token_id = $1 AND NOT revoked",
    // Services sort bytewise (the C collation), whatever the database's own; rails sort as
    // the enum does (sats first), not by name. SUM of BIGINT is NUMERIC here: cast back (a
    // sum past i64::MAX fails the query rather than wrap).
    revenue: "SELECT t.service, t.rail, COUNT(*) AS tokens,
                     SUM(COALESCE(t.prepaid_micro_usd, t.price_micro_usd))::BIGINT AS micro_usd,
                     SUM(t.msat)::BIGINT AS msat, SUM(COALESCE(t.units, 0))::BIGINT AS units
              FROM tokens t JOIN settled_payments s ON s.payment_hash = t.payment_hash
              GROUP BY t.service, t.rail
              ORDER BY t.service COLLATE \"C\", CASE t.rail WHEN 'sats' THEN 0 ELSE 1 END",
);
