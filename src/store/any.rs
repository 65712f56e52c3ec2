//! [`AnyStore`]: the store chosen by configuration, forwarding every trait to it.
//!
//! This module owns only the choice and the forwarding; it must not add behaviour of its own,
//! so that what the conformance suite proves of each store holds for `AnyStore` too.

use super::{MemoryStore, RootKeyStore, StoreError};
use crate::l402::{RootKey, TokenId};

#[cfg(feature = "sqlite")]
use super::SqliteStore;

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

/// `$call` on whichever store `$self` holds, bound to `$s`.
macro_rules! forward {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($s) => $call.await,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite($s) => $call.await,
        }
    };
}

impl RootKeyStore for AnyStore {
    async fn create(&self, token_id: &TokenId) -> Result<RootKey, StoreError> {
        forward!(self, s => s.create(token_id))
    }

    async fn get(&self, token_id: &TokenId) -> Result<Option<RootKey>, StoreError> {
        forward!(self, s => s.get(token_id))
    }

    async fn revoke(&self, token_id: &TokenId) -> Result<bool, StoreError> {
        forward!(self, s => s.revoke(token_id))
    }
}

#[cfg(test)]
mod tests {
    mod memory {
        crate::store_conformance!(async {
            crate::store::AnyStore::Memory(crate::store::MemoryStore::default())
        });
    }

    #[cfg(feature = "sqlite")]
    mod sqlite {
        crate::store_conformance!(async {
            crate::store::AnyStore::Sqlite(crate::store::sqlite::tests::fresh().await)
        });
    }
}
