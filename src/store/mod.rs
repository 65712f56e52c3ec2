//! Root-key storage: one trait, several stores, one conformance suite.
//!
//! A root key is 32 bytes from the OS CSPRNG, one per token id; it never leaves the store
//! except to verify a macaroon. Revocation deletes the key, after which every macaroon
//! derived from it fails as an unknown token.
//!
//! Stores must not log keys, and must keep what they persist readable by its owner only.

use std::future::Future;

use crate::l402::{RootKey, TokenId};

mod any;
pub mod memory;
#[cfg(feature = "sqlite")]
pub mod sqlite;

#[cfg(test)]
pub(crate) mod conformance;

pub use any::AnyStore;
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
    /// The database was written by a newer tapgate, whose schema this one does not know.
    #[error(
        "the database's schema version {found} is newer than this tapgate knows ({known}); run the tapgate that wrote it or a newer one"
    )]
    NewerSchema {
        /// The database's version.
        found: usize,
        /// The newest version this build knows.
        known: usize,
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

pub(crate) fn fresh_key() -> Result<RootKey, StoreError> {
    RootKey::generate().map_err(StoreError::Random)
}
