//! The PostgreSQL store: every kind of state in the database `store.url` names, shared by as
//! many tapgate replicas as point at it.
//!
//! The schema is versioned (`migrations.rs`): at connect, the migrations the database lacks
//! run once, in one transaction, under an advisory lock, so replicas starting together do not
//! race. Every operation is one statement, atomic on its own, or a transaction that takes row
//! locks in one fixed order (`meters.rs` says which), so concurrent charges from any number of
//! replicas never overspend under PostgreSQL's default READ COMMITTED isolation. This file owns
//! connecting, the root keys and the test harness; the other traits live in `settlement.rs`,
//! `ledger.rs`, `balance.rs` and `meters.rs`. No module here may log a key, a preimage or the
//! URL's password, or put one in an error: the URL is shown only redacted.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use super::StoreError;
use crate::config::StoreUrl;

mod balance;
mod lease;
mod ledger;
mod meters;
mod migrations;
mod settlement;

/// Longest wait for the first connection at start: long enough for a server that is still
/// starting, short enough that an unreachable server fails start-up visibly.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait for a pooled connection while serving: a request that needs the database
/// while it is down gets its `503` (with `Retry-After`) after this, rather than hanging.
const POOL_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Every kind of state in one PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// `store.url` with its password redacted, for `Debug` and errors.
    target: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the pool: its connect options would print the password.
        f.debug_struct("PostgresStore")
            .field("url", &self.target)
            .finish()
    }
}

impl PostgresStore {
    /// Connects to the database `url` names with a pool of at most `max_connections`, and
    /// creates or upgrades its schema. The database must exist.
    pub async fn connect(url: &StoreUrl, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url.expose()).map_err(|_| {
            StoreError::BadInput(
                "store.url is not a PostgreSQL URL; write postgres://user:password@host:5432/database",
            )
        })?;
        Self::connect_with(
            options,
            url.redacted(),
            max_connections,
            migrations::MIGRATIONS,
        )
        .await
    }

    /// Connects with `options` and applies `migrations` (a prefix of the shipped ones in tests
    /// that build an older schema).
    async fn connect_with(
        options: PgConnectOptions,
        target: String,
        max_connections: u32,
        migrations: &[&str],
    ) -> Result<Self, StoreError> {
        // One connection first, on its own: its error is the server's answer (refused, no
        // such database, wrong password), where a pool would only report a timeout. The
        // migrations run on it; the pool then connects as it needs to.
        let connect = PgConnection::connect_with(&options);
        let mut first = match tokio::time::timeout(ACQUIRE_TIMEOUT, connect).await {
            Ok(connected) => connected,
            Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer within 10 s",
            ))),
        }
        .map_err(|source| StoreError::Connect {
            target: target.clone(),
            source,
        })?;
        migrations::migrate(&mut first, migrations).await?;
        // Closing is a courtesy to the server; the migrations are already committed.
        let _ = first.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(POOL_ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        Ok(Self { pool, target })
    }

    /// Closes the pool, waiting for connections to finish (explicit shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

super::sql::root_key_store!(
    PostgresStore,
    insert: "INSERT INTO root_keys (token_id, root_key, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (token_id) DO NOTHING",
    select: "SELECT root_key FROM root_keys WHERE token_id = $1",
    delete: "DELETE FROM root_keys WHERE token_id = $1",
);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::l402::TokenId;
    use crate::store::RootKeyStore;
    use sqlx::Row;

    /// The server the tests use: `TAPGATE_TEST_POSTGRES_URL` (`.ci/postgres start DIR` prints
    /// one). Unset: under CI (`CI` set) a panic, since CI must test this store; elsewhere a
    /// note and None, so a machine without PostgreSQL still runs the rest.
    fn server() -> Option<String> {
        match std::env::var("TAPGATE_TEST_POSTGRES_URL") {
            Ok(url) if !url.trim().is_empty() => Some(url),
            _ if std::env::var_os("CI").is_some() => panic!(
                "TAPGATE_TEST_POSTGRES_URL is not set, and CI must test the PostgreSQL store: run `.ci/postgres start target/postgres` and export the URL it prints (.ci/test does both)"
            ),
            _ => {
                eprintln!("TAPGATE_TEST_POSTGRES_URL not set: PostgreSQL store not tested");
                None
            }
        }
    }

    /// A schema of its own on the test server, so tests running together never see one
    /// another's rows: connections made with these options find their tables there first.
    async fn fresh_schema() -> Option<PgConnectOptions> {
        let url = server()?;
        let options = PgConnectOptions::from_str(&url).expect("TAPGATE_TEST_POSTGRES_URL");
        let mut name = [0u8; 8];
        getrandom::fill(&mut name).unwrap();
        let schema = format!("t_{}", hex::encode(name));
        let mut admin = sqlx::postgres::PgConnection::connect_with(&options)
            .await
            .expect("connect to TAPGATE_TEST_POSTGRES_URL");
        sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        Some(options.options([("search_path", schema.as_str())]))
    }

    async fn open(options: PgConnectOptions, migrations: &[&str]) -> PostgresStore {
        PostgresStore::connect_with(options, "test".into(), 4, migrations)
            .await
            .unwrap()
    }

    /// A store on a fresh schema, or None when no test server is named.
    pub(crate) async fn fresh() -> Option<PostgresStore> {
        Some(open(fresh_schema().await?, migrations::MIGRATIONS).await)
    }

    crate::store_conformance!(optional fresh());

    async fn schema_version(s: &PostgresStore) -> i64 {
        sqlx::query("SELECT MAX(version) FROM schema_version")
            .fetch_one(&s.pool)
            .await
            .unwrap()
            .get(0)
    }

    fn latest() -> i64 {
        i64::try_from(migrations::MIGRATIONS.len()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stores_opening_together_migrate_once() {
        let Some(options) = fresh_schema().await else {
            return;
        };
        // Polled together on four connections of their own: their migrations overlap.
        let all = migrations::MIGRATIONS;
        let (a, b, c, d) = tokio::join!(
            open(options.clone(), all),
            open(options.clone(), all),
            open(options.clone(), all),
            open(options.clone(), all)
        );
        let stores = [a, b, c, d];
        let rows: i64 = sqlx::query("SELECT COUNT(*) FROM schema_version")
            .fetch_one(&stores[0].pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, latest(), "each version recorded once");
        assert_eq!(schema_version(&stores[3]).await, latest());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_replicas_charging_one_balance_and_one_cap_never_overspend() {
        use crate::l402::verify::MeterKey;
        use crate::store::{BalanceStore, Charge, ChargeOutcome, MeterDebit, MeterStore};
        use std::sync::Arc;
        let Some(options) = fresh_schema().await else {
            return;
        };
        // Two stores on one database, as two tapgate processes would be.
        let replicas = [
            Arc::new(open(options.clone(), migrations::MIGRATIONS).await),
            Arc::new(open(options, migrations::MIGRATIONS).await),
        ];
        let id = TokenId([3; 32]);
        replicas[0].open_balance(&id, 1_000).await.unwrap();
        // 40 calls of $100 under a cap of 7 calls, alternating replicas, each idempotency key
        // sent twice: the cap binds, so exactly 7 first uses are charged.
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let store = Arc::clone(&replicas[i % 2]);
                tokio::spawn(async move {
                    let key = format!("k{}", i % 20);
                    let meters = [MeterDebit {
                        key: MeterKey([9; 32]),
                        period: 0,
                        cap: 7,
                        amount: 1,
                    }];
                    let charge = Charge {
                        token_id: &id,
                        balance_micro_usd: Some(100),
                        meters: &meters,
                        idempotency_key: Some(&key),
                    };
                    store.charge(&charge).await.unwrap()
                })
            })
            .collect();
        let mut first_uses = 0;
        for t in tasks {
            match t.await.unwrap() {
                ChargeOutcome::Charged {
                    replayed: false, ..
                } => first_uses += 1,
                ChargeOutcome::Charged { replayed: true, .. }
                | ChargeOutcome::MeterFull { index: 0, .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(first_uses, 7);
        assert_eq!(
            replicas[1].meter_used(&MeterKey([9; 32]), 0).await.unwrap(),
            7
        );
        assert_eq!(replicas[1].balance(&id).await.unwrap(), Some(300));
        // Now the balance binds: 3 of 20 unkeyed debits of $100 go through, on either replica.
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = Arc::clone(&replicas[i % 2]);
                tokio::spawn(async move { store.debit(&id, 100, None).await.unwrap() })
            })
            .collect();
        let mut debited = 0;
        for t in tasks {
            if matches!(t.await.unwrap(), crate::store::Debit::Charged { .. }) {
                debited += 1;
            }
        }
        assert_eq!(debited, 3);
        assert_eq!(replicas[0].balance(&id).await.unwrap(), Some(0));
    }

    #[tokio::test]
    async fn an_older_schema_upgrades_and_a_reopened_store_keeps_its_data() {
        use crate::store::conformance::{check_reopened, fill_for_reopen};
        let Some(options) = fresh_schema().await else {
            return;
        };
        let id = TokenId([6; 32]);
        let key = {
            let old = open(options.clone(), &migrations::MIGRATIONS[..1]).await;
            assert_eq!(schema_version(&old).await, 1);
            let k = old.create(&id).await.unwrap();
            old.close().await;
            k
        };
        let record = {
            let s = open(options.clone(), migrations::MIGRATIONS).await;
            assert_eq!(schema_version(&s).await, latest());
            assert_eq!(s.get(&id).await.unwrap(), Some(key.clone()));
            let record = fill_for_reopen(&s).await;
            s.close().await;
            record
        };
        let s = open(options, migrations::MIGRATIONS).await;
        assert_eq!(schema_version(&s).await, latest());
        assert_eq!(s.get(&id).await.unwrap(), Some(key));
        check_reopened(&s, &record).await;
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let Some(options) = fresh_schema().await else {
            return;
        };
        let s = open(options.clone(), migrations::MIGRATIONS).await;
        sqlx::query("INSERT INTO schema_version (version) VALUES (999)")
            .execute(&s.pool)
            .await
            .unwrap();
        s.close().await;
        let err = PostgresStore::connect_with(options, "test".into(), 2, migrations::MIGRATIONS)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found: 999, known } if known == migrations::MIGRATIONS.len()),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_clear_error_without_the_password() {
        // Nothing listens on port 1; the error must say what to check and hide the password.
        let url = StoreUrl::from("postgres://app:s3cret@127.0.0.1:1/tapgate");
        let err = PostgresStore::connect(&url, 2).await.unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(matches!(err, StoreError::Connect { .. }), "{shown}");
        assert!(
            shown.contains("postgres://app:***@127.0.0.1:1/tapgate"),
            "{shown}"
        );
        assert!(shown.contains("running and reachable"), "{shown}");
        // The cause is the server's answer, not a pool's timeout.
        let cause = std::error::Error::source(&err).map(ToString::to_string);
        assert!(
            cause.as_deref().is_some_and(|c| c.contains("refused")),
            "{cause:?}"
        );
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
