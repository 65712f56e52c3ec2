//! The store traits' code that is the same in every SQL dialect, written once as macros that
//! each SQL store instantiates with its own statements.
//!
//! A store (a type with a `pool` field) passes its dialect's SQL; the macro writes the binding,
//! the decoding and the outcome, so SQLite and PostgreSQL cannot drift apart in what they do
//! with a row. What differs in substance (a transaction's locking: SQLite's `BEGIN IMMEDIATE`,
//! PostgreSQL's row locks in a fixed order) stays in each store's own files. This module must
//! not hold SQL of its own: statements come from the stores.

/// Implements [`RootKeyStore`](crate::store::RootKeyStore) for `$store` from its statements:
/// `insert` (token id, key, unix seconds; nothing on a conflicting token id), `select` (token
/// id; the column `root_key`) and `delete` (token id).
macro_rules! root_key_store {
    ($store:ty, insert: $insert:expr, select: $select:expr, delete: $delete:expr $(,)?) => {
        impl $crate::store::RootKeyStore for $store {
            async fn create(
                &self,
                token_id: &$crate::l402::TokenId,
            ) -> Result<$crate::l402::RootKey, $crate::store::StoreError> {
                use $crate::store::sql::db;
                let key = $crate::store::fresh_key()?;
                let done = sqlx::query($insert)
                    .bind(&token_id.0[..])
                    .bind(&key.expose()[..])
                    .bind($crate::store::sql::unix_now())
                    .execute(&self.pool)
                    .await
                    .map_err(db("insert a root key"))?;
                if done.rows_affected() == 0 {
                    return Err($crate::store::StoreError::Duplicate(*token_id));
                }
                Ok(key)
            }

            async fn get(
                &self,
                token_id: &$crate::l402::TokenId,
            ) -> Result<Option<$crate::l402::RootKey>, $crate::store::StoreError> {
                use $crate::store::sql::{bytes32, db};
                let row = sqlx::query($select)
                    .bind(&token_id.0[..])
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db("read a root key"))?;
                let Some(row) = row else { return Ok(None) };
                let key = bytes32(&row, "root_key", "root key is not 32 bytes")?;
                Ok(Some($crate::l402::RootKey::from_bytes(key)))
            }

            async fn revoke(
                &self,
                token_id: &$crate::l402::TokenId,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query($delete)
                    .bind(&token_id.0[..])
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::sql::db("delete a root key"))?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}
pub(crate) use root_key_store;

/// Implements [`SettlementStore`](crate::store::SettlementStore) for `$store` from its
/// statements: `cursor` (the column `cursor`), `record` (hash, amount, index; the first amount
/// stays, a higher index raises the row's) and `settled` (hash; a row when settled).
macro_rules! settlement_store {
    ($store:ty, cursor: $cursor:expr, record: $record:expr, settled: $settled:expr $(,)?) => {
        impl $crate::store::SettlementStore for $store {
            async fn settle_cursor(&self) -> Result<u64, $crate::store::StoreError> {
                let row = sqlx::query($cursor)
                    .fetch_one(&self.pool)
                    .await
                    .map_err($crate::store::sql::db("read the settlement cursor"))?;
                $crate::store::sql::uint(&row, "cursor")
            }

            async fn record_settled(
                &self,
                hash: &$crate::l402::PaymentHash,
                amt_paid_msat: u64,
                settle_index: u64,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::{SETTLEMENT_TOO_LARGE, storable};
                sqlx::query($record)
                    .bind(&hash.0[..])
                    .bind(storable(amt_paid_msat, SETTLEMENT_TOO_LARGE)?)
                    .bind(storable(settle_index, SETTLEMENT_TOO_LARGE)?)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::sql::db("record a settlement"))?;
                Ok(())
            }

            async fn is_settled(
                &self,
                hash: &$crate::l402::PaymentHash,
            ) -> Result<bool, $crate::store::StoreError> {
                let row = sqlx::query($settled)
                    .bind(&hash.0[..])
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($crate::store::sql::db("read a settlement"))?;
                Ok(row.is_some())
            }
        }
    };
}
pub(crate) use settlement_store;

/// Implements [`TokenLedger`](crate::store::TokenLedger) for `$store` from its statements and
/// `$view` (a row of `token`/`list` as a view): `record` (the eleven columns in
/// [`TokenRecord`](crate::store::TokenRecord)'s order; nothing on a conflicting token id),
/// `token` (token id), `list` (settled only?, limit), `revoke` (token id; only an unrevoked
/// row) and `revenue` (the columns of [`revenue_row`](crate::store::sql::revenue_row)).
macro_rules! token_ledger {
    (
        $store:ty, view: $view:path, record: $record:expr, token: $token:expr, list: $list:expr,
        revoke: $revoke:expr, revenue: $revenue:expr $(,)?
    ) => {
        impl $crate::store::TokenLedger for $store {
            async fn record_token(
                &self,
                t: &$crate::store::TokenRecord,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::sql::{db, optional};
                use $crate::store::{RECORD_TOO_LARGE, storable};
                let done = sqlx::query($record)
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
                    return Err($crate::store::StoreError::Duplicate(t.token_id));
                }
                Ok(())
            }

            async fn token(
                &self,
                id: &$crate::l402::TokenId,
            ) -> Result<Option<$crate::store::TokenView>, $crate::store::StoreError> {
                let row = sqlx::query($token)
                    .bind(&id.0[..])
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($crate::store::sql::db("read a token"))?;
                row.as_ref().map($view).transpose()
            }

            async fn list_tokens(
                &self,
                limit: u32,
                settled_only: bool,
            ) -> Result<Vec<$crate::store::TokenView>, $crate::store::StoreError> {
                let rows = sqlx::query($list)
                    .bind(settled_only)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::store::sql::db("list tokens"))?;
                rows.iter().map($view).collect()
            }

            async fn mark_revoked(
                &self,
                id: &$crate::l402::TokenId,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query($revoke)
                    .bind(&id.0[..])
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::sql::db("mark a token revoked"))?;
                Ok(done.rows_affected() > 0)
            }

            async fn revenue(
                &self,
            ) -> Result<Vec<$crate::store::RevenueRow>, $crate::store::StoreError> {
                let rows = sqlx::query($revenue)
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::store::sql::db("sum revenue"))?;
                rows.iter().map($crate::store::sql::revenue_row).collect()
            }
        }
    };
}
pub(crate) use token_ledger;

/// Defines, for the database `$db`, the balance statements every debit uses: `charge`
/// (debits if covered, returning what is left; `debit` binds amount then token id and returns
/// `micro_usd` only when it debited), `refusal` (why `charge` refused), `balance_of` (`read`
/// binds the token id), `open` and `debit_in` (a charge's balance part in its transaction).
macro_rules! balance_statements {
    ($db:ty, debit: $debit:expr, read: $read:expr, open: $open:expr $(,)?) => {
        /// Opens the token's balance at `micro_usd` unless it has one (`open` binds token id
        /// and amount and returns `micro_usd`, the balance now, in both cases).
        async fn open<'e>(
            e: impl sqlx::Executor<'e, Database = $db>,
            token_id: &$crate::l402::TokenId,
            micro_usd: u64,
        ) -> Result<u64, $crate::store::StoreError> {
            use $crate::store::{AMOUNT_TOO_LARGE, storable};
            let row = sqlx::query($open)
                .bind(&token_id.0[..])
                .bind(storable(micro_usd, AMOUNT_TOO_LARGE)?)
                .fetch_one(e)
                .await
                .map_err($crate::store::sql::db("open a balance"))?;
            $crate::store::sql::uint(&row, "micro_usd")
        }

        /// A debit without an idempotency key: one statement, then, if it was refused, why.
        async fn debit_unkeyed(
            pool: &sqlx::Pool<$db>,
            token_id: &$crate::l402::TokenId,
            amount: i64,
        ) -> Result<$crate::store::Debit, $crate::store::StoreError> {
            match charge(pool, token_id, amount).await? {
                Some(remaining) => Ok($crate::store::sql::charged(remaining, false)),
                None => refusal(pool, token_id).await,
            }
        }

        /// The balance part of a charge inside its transaction: what is left (None for a
        /// charge without a balance), or the charge's refusal when the balance does not
        /// cover `amount`.
        pub(super) async fn debit_in(
            conn: &mut <$db as sqlx::Database>::Connection,
            token_id: &$crate::l402::TokenId,
            amount: Option<u64>,
        ) -> Result<Result<Option<u64>, $crate::store::ChargeOutcome>, $crate::store::StoreError> {
            use $crate::store::{AMOUNT_TOO_LARGE, storable};
            let Some(amount) = amount else {
                return Ok(Ok(None));
            };
            match charge(&mut *conn, token_id, storable(amount, AMOUNT_TOO_LARGE)?).await? {
                Some(left) => Ok(Ok(Some(left))),
                None => Ok(Err($crate::store::sql::refused(
                    refusal(&mut *conn, token_id).await?,
                ))),
            }
        }

        /// Debits `amount` if the balance covers it, returning what is left; `None` when it
        /// does not (or there is no balance). One statement, so concurrent debits cannot
        /// overdraw.
        pub(super) async fn charge<'e>(
            e: impl sqlx::Executor<'e, Database = $db>,
            token_id: &$crate::l402::TokenId,
            amount: i64,
        ) -> Result<Option<u64>, $crate::store::StoreError> {
            let row = sqlx::query($debit)
                .bind(amount)
                .bind(&token_id.0[..])
                .fetch_optional(e)
                .await
                .map_err($crate::store::sql::db("debit a balance"))?;
            row.map(|r| $crate::store::sql::uint(&r, "micro_usd"))
                .transpose()
        }

        /// Why a debit that [`charge`] refused was refused.
        pub(super) async fn refusal<'e>(
            e: impl sqlx::Executor<'e, Database = $db>,
            token_id: &$crate::l402::TokenId,
        ) -> Result<$crate::store::Debit, $crate::store::StoreError> {
            Ok($crate::store::sql::refusal_of(
                balance_of(e, token_id).await?,
            ))
        }

        /// The token's balance, if one was opened.
        async fn balance_of<'e>(
            e: impl sqlx::Executor<'e, Database = $db>,
            token_id: &$crate::l402::TokenId,
        ) -> Result<Option<u64>, $crate::store::StoreError> {
            let row = sqlx::query($read)
                .bind(&token_id.0[..])
                .fetch_optional(e)
                .await
                .map_err($crate::store::sql::db("read a balance"))?;
            row.map(|r| $crate::store::sql::uint(&r, "micro_usd"))
                .transpose()
        }
    };
}
pub(crate) use balance_statements;

/// Defines, for the database `$db`, `used`: what a meter counted in a period (0 if nothing),
/// read by `$read` (binds the meter key and the period; the column `used`).
macro_rules! meter_statements {
    ($db:ty, used: $read:expr $(,)?) => {
        /// What meter `key` counted in `period` (0 if nothing).
        async fn used<'e>(
            e: impl sqlx::Executor<'e, Database = $db>,
            key: &$crate::l402::verify::MeterKey,
            period: i64,
        ) -> Result<u64, $crate::store::StoreError> {
            let row = sqlx::query($read)
                .bind(&key.0[..])
                .bind(period)
                .fetch_optional(e)
                .await
                .map_err($crate::store::sql::db("read a meter"))?;
            row.map_or(Ok(0), |r| $crate::store::sql::uint(&r, "used"))
        }
    };
}
pub(crate) use meter_statements;
