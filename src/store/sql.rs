//! What the SQL stores (`sqlite.rs`, `postgres.rs`) share: turning driver errors into
//! [`StoreError`]s, reading columns back into tapgate's types, the outcomes of charges, the
//! migration loop, and (`impls.rs`) the trait code both dialects run with their own SQL.
//!
//! This module owns the decoding rules (an amount is never negative, a key is 32 bytes, a rail
//! is one of two names) and the SQL both dialects accept alike (the token SELECT); it must not
//! decide how a store locks (each dialect's transactions stay in its own files), and must not
//! put a column's value in an error, since the column may be a root key.

use std::future::Future;

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{AMOUNT_TOO_LARGE, RECORD_TOO_LARGE, storable};
use super::{
    Charge, ChargeOutcome, Debit, MeterDebit, Rail, RevenueRow, StoreError, TokenRecord, TokenView,
};
use crate::l402::{PaymentHash, TokenId};

mod impls;

/// A token's columns with its settlement and balance, as [`token_view`] reads them, in SQL
/// both dialects accept; callers append a `WHERE` and an `ORDER BY`.
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
pub(crate) use select_views;

pub(crate) use impls::{
    balance_statements, meter_statements, root_key_store, settlement_store, token_ledger,
};

/// Now in unix seconds, as a root key's `created_at` (0 before 1970, which no clock reports).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A charge that names no meter and no idempotency key: only `amount`, if any, to debit from
/// the balance, which `debit` does in one statement (None: refused) and `refusal` explains.
pub(crate) async fn unmetered_charge<D, R>(
    amount: Option<u64>,
    debit: impl FnOnce(i64) -> D,
    refusal: impl FnOnce() -> R,
) -> Result<ChargeOutcome, StoreError>
where
    D: Future<Output = Result<Option<u64>, StoreError>>,
    R: Future<Output = Result<Debit, StoreError>>,
{
    let Some(amount) = amount else {
        return Ok(ChargeOutcome::Charged {
            remaining_micro_usd: None,
            replayed: false,
        });
    };
    Ok(match debit(storable(amount, AMOUNT_TOO_LARGE)?).await? {
        Some(left) => ChargeOutcome::Charged {
            remaining_micro_usd: Some(left),
            replayed: false,
        },
        None => refused(refusal().await?),
    })
}

/// Maps a driver error to [`StoreError::Database`], naming what was being done.
pub(crate) fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { op, source }
}

/// Column `col` of `row`, decoded as `T`.
fn column<'r, R, T>(row: &'r R, col: &str) -> Result<T, StoreError>
where
    R: Row,
    T: Decode<'r, R::Database> + Type<R::Database>,
    for<'c> &'c str: ColumnIndex<R>,
{
    row.try_get(col).map_err(db("read a row"))
}

/// Column `col` of `row` as 32 bytes; `what` names a wrong length. The bytes read are wiped
/// after the copy, since the column may be a root key.
pub(crate) fn bytes32<R>(row: &R, col: &str, what: &'static str) -> Result<[u8; 32], StoreError>
where
    R: Row,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
    for<'c> &'c str: ColumnIndex<R>,
{
    let bytes = zeroize::Zeroizing::new(column::<R, Vec<u8>>(row, col)?);
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::Corrupt(what))
}

/// Column `col` of `row` as an amount, count or index (never negative).
pub(crate) fn uint<R>(row: &R, col: &str) -> Result<u64, StoreError>
where
    R: Row,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'c> &'c str: ColumnIndex<R>,
{
    let v: i64 = column(row, col)?;
    u64::try_from(v).map_err(|_| StoreError::Corrupt("negative amount, count or index"))
}

/// Column `col` of `row` as an optional amount.
pub(crate) fn opt_uint<R>(row: &R, col: &str) -> Result<Option<u64>, StoreError>
where
    R: Row,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    for<'c> &'c str: ColumnIndex<R>,
{
    let v: Option<i64> = column(row, col)?;
    v.map(|v| u64::try_from(v).map_err(|_| StoreError::Corrupt("negative amount")))
        .transpose()
}

/// Column `col` of `row` as text.
pub(crate) fn text<R>(row: &R, col: &str) -> Result<String, StoreError>
where
    R: Row,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'c> &'c str: ColumnIndex<R>,
{
    column(row, col)
}

/// Refuses a database whose schema version `current` is not one of the `known` this build
/// can upgrade from (a negative one, or one a newer tapgate wrote).
pub(crate) fn check_schema_version(current: i64, known: usize) -> Result<(), StoreError> {
    match usize::try_from(current) {
        Err(_) => Err(StoreError::Corrupt("negative schema version")),
        Ok(found) if found > known => Err(StoreError::NewerSchema { found, known }),
        Ok(_) => Ok(()),
    }
}

/// Applies the migrations after version `current` (index + 1 is a migration's version), each
/// followed by its row in `schema_version`, on `conn` inside the caller's transaction.
pub(crate) async fn apply_migrations<DB>(
    conn: &mut DB::Connection,
    migrations: &[&str],
    current: i64,
) -> Result<(), StoreError>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    for (version, sql) in (1i64..).zip(migrations).skip_while(|(v, _)| *v <= current) {
        sqlx::raw_sql(sql)
            .execute(&mut *conn)
            .await
            .map_err(db("apply a migration"))?;
        // An integer of ours, so formatting it into the statement is safe in any dialect.
        let record = format!("INSERT INTO schema_version (version) VALUES ({version})");
        sqlx::raw_sql(&record)
            .execute(&mut *conn)
            .await
            .map_err(db("record schema version"))?;
        tracing::info!(version, "store database migrated");
    }
    Ok(())
}

/// The rail stored under `name` (its [`Rail::as_str`]).
pub(crate) fn rail_named(name: &str) -> Result<Rail, StoreError> {
    [Rail::Sats, Rail::Asset]
        .into_iter()
        .find(|r| r.as_str() == name)
        .ok_or(StoreError::Corrupt("unknown rail"))
}

/// A tier column's value as the tier (0-255).
pub(crate) fn tier(v: i64) -> Result<u8, StoreError> {
    u8::try_from(v).map_err(|_| StoreError::Corrupt("tier is not 0-255"))
}

/// A debit that went through.
pub(crate) fn charged(remaining_micro_usd: u64, replayed: bool) -> Debit {
    Debit::Charged {
        remaining_micro_usd,
        replayed,
    }
}

/// An optional amount of a token record as the integer a store holds.
pub(crate) fn optional(v: Option<u64>) -> Result<Option<i64>, StoreError> {
    v.map(|v| storable(v, RECORD_TOO_LARGE)).transpose()
}

/// The first meter, in the charge's order, that `counted` (what each has counted so far, in
/// the same order) plus its amount would pass its cap, as the charge's refusal.
pub(crate) fn full_meter(meters: &[MeterDebit], counted: &[u64]) -> Option<ChargeOutcome> {
    meters
        .iter()
        .zip(counted)
        .position(|(m, so_far)| so_far.saturating_add(m.amount) > m.cap)
        .map(|index| ChargeOutcome::MeterFull {
            index,
            used: counted[index],
        })
}

/// A charge repeated under an idempotency key whose first use left `remaining`.
pub(crate) fn replayed(c: &Charge<'_>, remaining: u64) -> ChargeOutcome {
    ChargeOutcome::Charged {
        remaining_micro_usd: c.balance_micro_usd.map(|_| remaining),
        replayed: true,
    }
}

/// A refused balance debit as a charge's outcome.
pub(crate) fn refused(d: Debit) -> ChargeOutcome {
    match d {
        Debit::Insufficient {
            remaining_micro_usd,
        } => ChargeOutcome::Insufficient {
            remaining_micro_usd,
        },
        _ => ChargeOutcome::NoBalance,
    }
}

/// Why a debit was refused, from the balance read after it (None: there is none).
pub(crate) fn refusal_of(balance: Option<u64>) -> Debit {
    match balance {
        Some(remaining_micro_usd) => Debit::Insufficient {
            remaining_micro_usd,
        },
        None => Debit::NoBalance,
    }
}

/// A token's row (the columns of the ledger's `SELECT`, read by name) as its view; `settled`
/// and `revoked` are read by the caller, since each database has its own boolean.
pub(crate) fn token_view<R>(row: &R, settled: bool, revoked: bool) -> Result<TokenView, StoreError>
where
    R: Row,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'c> &'c str: ColumnIndex<R>,
{
    let record = TokenRecord {
        token_id: TokenId(bytes32(row, "token_id", "token id is not 32 bytes")?),
        payment_hash: PaymentHash(bytes32(
            row,
            "payment_hash",
            "payment hash is not 32 bytes",
        )?),
        service: text(row, "service")?,
        tier: tier(column(row, "tier")?)?,
        rail: rail_named(&text(row, "rail")?)?,
        price_micro_usd: uint(row, "price_micro_usd")?,
        msat: uint(row, "msat")?,
        units: opt_uint(row, "units")?,
        prepaid_micro_usd: opt_uint(row, "prepaid_micro_usd")?,
        created_at: uint(row, "created_at")?,
        expires_at: uint(row, "expires_at")?,
    };
    Ok(TokenView {
        record,
        settled,
        balance_micro_usd: opt_uint(row, "balance")?,
        revoked,
    })
}

/// A row of the revenue query (`service`, `rail`, `tokens`, `micro_usd`, `msat`, `units`).
pub(crate) fn revenue_row<R>(row: &R) -> Result<RevenueRow, StoreError>
where
    R: Row,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'c> &'c str: ColumnIndex<R>,
{
    Ok(RevenueRow {
        service: text(row, "service")?,
        rail: rail_named(&text(row, "rail")?)?,
        tokens: uint(row, "tokens")?,
        micro_usd: uint(row, "micro_usd")?,
        msat: uint(row, "msat")?,
        units: uint(row, "units")?,
    })
}
