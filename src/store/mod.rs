//! Root-key storage: one trait, several stores, one conformance suite.
//!
//! A root key is 32 bytes from the OS CSPRNG, one per token id; it never leaves the store
//! except to verify a macaroon. Revocation deletes the key, after which every macaroon
//! derived from it fails as an unknown token.
//!
//! Stores must not log keys, and must keep what they persist readable by its owner only.

use std::future::Future;

use crate::l402::{RootKey, TokenId};

pub mod memory;
#[cfg(feature = "sqlite")]
pub mod sqlite;

#[cfg(test)]
pub(crate) mod conformance;

pub use memory::MemoryStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `create` for a token id that already has a key (a token id must never be reused).
    #[error("token id {0} already has a root key")]
    Duplicate(TokenId),
    /// The operating system's random source failed.
    #[error("cannot draw a root key from the OS random source")]
    Random(#[source] getrandom::Error),
    /// File-system problem with the data directory or database file.
    #[error(
        "{action} {path}: {source}; check that the data_dir setting points at a writable directory"
    )]
    Io {
        /// What was being done.
        action: &'static str,
        /// Which path.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The database refused an operation.
    #[cfg(feature = "sqlite")]
    #[error("root-key database failed to {op}")]
    Database {
        /// What was being done.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A stored row is not a 32-byte key.
    #[error("root-key database holds a malformed row: {0}")]
    Corrupt(&'static str),
}

/// Where root keys live.
///
/// Contract for implementers: `create` is atomic (two concurrent creates for one id: one
/// succeeds, the other gets [`StoreError::Duplicate`]); `get` after a successful `create`
/// returns the same key until `revoke`; `revoke` is idempotent and reports whether a key
/// was removed.
pub trait RootKeyStore: Send + Sync {
    /// Draws a fresh root key for `token_id` and stores it.
    fn create(
        &self,
        token_id: &TokenId,
    ) -> impl Future<Output = Result<RootKey, StoreError>> + Send;
    /// The root key of `token_id`, if it exists and was not revoked.
    fn get(
        &self,
        token_id: &TokenId,
    ) -> impl Future<Output = Result<Option<RootKey>, StoreError>> + Send;
    /// Deletes the key; `true` if there was one.
    fn revoke(&self, token_id: &TokenId) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The store chosen by configuration.
#[derive(Debug)]
pub enum AnyStore {
    /// In memory.
    Memory(MemoryStore),
    /// SQLite file.
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteStore),
}

impl AnyStore {
    /// Opens the configured store (creating the data directory and database if needed).
    pub async fn open(settings: &crate::config::Settings) -> Result<Self, StoreError> {
        match settings.store.backend {
            crate::config::StoreBackend::Memory => Ok(Self::Memory(MemoryStore::default())),
            #[cfg(feature = "sqlite")]
            crate::config::StoreBackend::Sqlite => Ok(Self::Sqlite(
                SqliteStore::open_in(&settings.data_dir).await?,
            )),
            #[cfg(not(feature = "sqlite"))]
            crate::config::StoreBackend::Sqlite => {
                Err(StoreError::Corrupt("this build has no SQLite support"))
            }
        }
    }
}

impl RootKeyStore for AnyStore {
    async fn create(&self, token_id: &TokenId) -> Result<RootKey, StoreError> {
        match self {
            Self::Memory(s) => s.create(token_id).await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(s) => s.create(token_id).await,
        }
    }

    async fn get(&self, token_id: &TokenId) -> Result<Option<RootKey>, StoreError> {
        match self {
            Self::Memory(s) => s.get(token_id).await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(s) => s.get(token_id).await,
        }
    }

    async fn revoke(&self, token_id: &TokenId) -> Result<bool, StoreError> {
        match self {
            Self::Memory(s) => s.revoke(token_id).await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(s) => s.revoke(token_id).await,
        }
    }
}

pub(crate) fn fresh_key() -> Result<RootKey, StoreError> {
    RootKey::generate().map_err(StoreError::Random)
}
