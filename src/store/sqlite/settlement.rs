//! [`SettlementStore`](crate::store::SettlementStore) over the `settled_payments` table, in
//! SQLite's dialect (the code is `sql/impls.rs`'s).
//!
//! The cursor is not stored apart: it is `MAX(settle_index)`, so recording a settlement and
//! raising the cursor are one statement and cannot drift apart. This module must not decide
//! what settled: it records what the invoice tracker reports.

use super::SqliteStore;

crate::store::sql::settlement_store!(
    SqliteStore,
    cursor: "SELECT COALESCE(MAX(settle_index), 0) AS cursor FROM settled_payments",
    // The first amount stays; a higher index still raises the cursor.
    record: "INSERT INTO settled_payments (payment_hash, amt_paid_msat, settle_index) VALUES (?, ?, ?)
             ON CONFLICT (payment_hash) DO UPDATE SET settle_index = max(settle_index, excluded.settle_index)",
    settled: "SELECT 1 FROM settled_payments WHERE payment_hash = ?",
);
