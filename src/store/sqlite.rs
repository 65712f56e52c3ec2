//! The SQLite store: `tapgate.sqlite` in the data directory, holding every kind of state.
//!
//! The directory is created `0700` and the database file `0600` before SQLite opens it
//! (SQLite gives its `-wal`/`-shm` files the database file's permissions), because the file
//! holds every root key. The schema is versioned (`migrations.rs`); migrations run in order,
//! once, in a transaction, at open. This file owns opening and the root keys' statements; the
//! other traits' statements are in `settlement.rs`, `ledger.rs`, `balance.rs` and `meters.rs`,
//! and the code that binds and decodes them is shared with PostgreSQL (`store/sql.rs`,
//! `store/sql/impls.rs`). No module here may log a key or put one in an error.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::StoreError;
use super::sql::{db, uint};

mod balance;
mod ledger;
mod meters;
mod migrations;
mod settlement;

/// Database file name inside `data_dir`.
pub const FILE_NAME: &str = "tapgate.sqlite";

/// Every kind of state in one SQLite database.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

#[cfg(unix)]
fn create_private(dir: &Path, file: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io("cannot create data directory", dir))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(file)
        .map_err(io("cannot create database file", file))?;
    // An existing file keeps its old mode through `open`: tighten it.
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
        .map_err(io("cannot restrict permissions of", file))
}

#[cfg(not(unix))]
fn create_private(dir: &Path, _file: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(io("cannot create data directory", dir))
}

/// Creates the database file at `path` privately if needed, opens a pool of four connections
/// on it (WAL, `synchronous = FULL`, foreign keys on, waiting up to `busy_timeout` for the
/// write lock) and applies `migrations`. Shared with the client's ledger (`client::ledger`),
/// which keeps its own file and schema.
pub(crate) async fn open_pool(
    path: &Path,
    migrations: &[&str],
    busy_timeout: std::time::Duration,
) -> Result<SqlitePool, StoreError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private(dir, path)?;
    let options = SqliteConnectOptions::from_str("sqlite://")
        .map_err(db("parse connection options"))?
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(busy_timeout)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .map_err(db("open the database"))?;
    migrations::migrate(&pool, migrations).await?;
    Ok(pool)
}

impl SqliteStore {
    /// Opens (creating if needed) `data_dir/tapgate.sqlite` and migrates it.
    pub async fn open_in(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open(&data_dir.join(FILE_NAME)).await
    }

    /// Opens (creating if needed) the database at `path` and migrates it.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_at_version(path, migrations::MIGRATIONS).await
    }

    /// Opens the database at `path` and applies `migrations` (a prefix of the shipped ones
    /// in tests that build an older schema).
    async fn open_at_version(path: &Path, migrations: &[&str]) -> Result<Self, StoreError> {
        let store = Self {
            pool: open_pool(path, migrations, std::time::Duration::from_secs(5)).await?,
            path: path.to_path_buf(),
        };
        Ok(store)
    }

    /// Closes the pool, waiting for connections to finish (explicit shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

super::sql::root_key_store!(
    SqliteStore,
    insert: "INSERT INTO root_keys (token_id, root_key, created_at) VALUES (?, ?, ?)
             ON CONFLICT (token_id) DO NOTHING",
    select: "SELECT root_key FROM root_keys WHERE token_id = ?",
    delete: "DELETE FROM root_keys WHERE token_id = ?",
);

/// A SQLite file is one process's (tapgate opens it without sharing), so the lease is always
/// its own; replicas share a PostgreSQL store instead.
impl super::StreamLease for SqliteStore {
    async fn try_lease(&self) -> Result<Option<super::Lease>, StoreError> {
        Ok(Some(super::Lease::local()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::l402::TokenId;
    use crate::store::RootKeyStore;
    use sqlx::Row;

    pub(crate) async fn fresh() -> SqliteStore {
        // Leaked on purpose: the directory must outlive the store inside the test.
        let dir = tempfile::tempdir().unwrap().keep();
        SqliteStore::open_in(&dir.join("nested")).await.unwrap()
    }

    crate::store_conformance!(fresh());

    #[tokio::test]
    async fn keys_survive_reopen_and_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let id = TokenId([4; 32]);
        let key = {
            let s = SqliteStore::open_in(&data).await.unwrap();
            let k = s.create(&id).await.unwrap();
            s.close().await;
            k
        };
        let s = SqliteStore::open_in(&data).await.unwrap();
        assert_eq!(s.get(&id).await.unwrap(), Some(key));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&data), 0o700);
            assert_eq!(mode(&data.join(FILE_NAME)), 0o600);
            for entry in std::fs::read_dir(&data).unwrap() {
                let p = entry.unwrap().path();
                assert_eq!(mode(&p) & 0o077, 0, "{} is readable by others", p.display());
            }
        }
    }

    async fn schema_version(s: &SqliteStore) -> i64 {
        sqlx::query("SELECT MAX(version) FROM schema_version")
            .fetch_one(&s.pool)
            .await
            .unwrap()
            .get(0)
    }

    #[tokio::test]
    async fn a_schema_1_database_upgrades_keeping_its_keys() {
        use crate::store::{BalanceStore, SettlementStore};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let id = TokenId([4; 32]);
        let key = {
            let old = SqliteStore::open_at_version(&path, &migrations::MIGRATIONS[..1])
                .await
                .unwrap();
            assert_eq!(schema_version(&old).await, 1);
            let k = old.create(&id).await.unwrap();
            old.close().await;
            k
        };
        let s = SqliteStore::open(&path).await.unwrap();
        let latest = i64::try_from(migrations::MIGRATIONS.len()).unwrap();
        assert_eq!(schema_version(&s).await, latest);
        assert_eq!(s.get(&id).await.unwrap(), Some(key));
        assert_eq!(s.settle_cursor().await.unwrap(), 0);
        assert_eq!(s.open_balance(&id, 10).await.unwrap(), 10);
        s.close().await;
        // Opening an up-to-date database applies nothing.
        let again = SqliteStore::open(&path).await.unwrap();
        assert_eq!(schema_version(&again).await, latest);
        assert_eq!(again.balance(&id).await.unwrap(), Some(10));
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let s = SqliteStore::open(&path).await.unwrap();
        sqlx::query("INSERT INTO schema_version (version) VALUES (999)")
            .execute(&s.pool)
            .await
            .unwrap();
        s.close().await;
        let err = SqliteStore::open(&path).await.unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found: 999, known } if known == migrations::MIGRATIONS.len()),
            "{err}"
        );
    }

    #[tokio::test]
    async fn ledger_balances_and_cursor_survive_reopen() {
        use crate::store::conformance::{check_reopened, fill_for_reopen};
        let dir = tempfile::tempdir().unwrap();
        let record = {
            let s = SqliteStore::open_in(dir.path()).await.unwrap();
            let record = fill_for_reopen(&s).await;
            s.close().await;
            record
        };
        let s = SqliteStore::open_in(dir.path()).await.unwrap();
        check_reopened(&s, &record).await;
    }

    #[tokio::test]
    async fn unwritable_location_is_a_clear_error() {
        let err = SqliteStore::open(Path::new("/proc/tapgate/x.sqlite"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("data_dir"), "{err}");
    }
}
