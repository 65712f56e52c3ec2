//! [`AnyStore`]: the store chosen by configuration, forwarding every trait to it.
//!
//! This module owns only the choice and the forwarding; it must not add behaviour of its own,
//! so that what the conformance suite proves of each store holds for `AnyStore` too.

use super::{
    BalanceStore, Charge, ChargeOutcome, Debit, MemoryStore, MeterStore, RevenueRow, RootKeyStore,
    SettlementStore, StoreError, TokenLedger, TokenRecord, TokenView,
};
use crate::l402::verify::MeterKey;
use crate::l402::{PaymentHash, RootKey, TokenId};

#[cfg(feature = "postgres")]
use super::PostgresStore;
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
    /// PostgreSQL database.
    #[cfg(feature = "postgres")]
    Postgres(PostgresStore),
}

impl AnyStore {
    /// Opens the configured store (creating the data directory and SQLite database if needed;
    /// a PostgreSQL database must exist, and its schema is created or upgraded).
    pub async fn open(settings: &crate::config::Settings) -> Result<Self, StoreError> {
        use crate::config::StoreBackend;
        match settings.store.backend() {
            StoreBackend::Memory => Ok(Self::Memory(MemoryStore::default())),
            #[cfg(feature = "sqlite")]
            StoreBackend::Sqlite => Ok(Self::Sqlite(
                SqliteStore::open_in(&settings.data_dir).await?,
            )),
            #[cfg(not(feature = "sqlite"))]
            StoreBackend::Sqlite => Err(StoreError::NotBuilt("sqlite")),
            #[cfg(feature = "postgres")]
            StoreBackend::Postgres => match &settings.store.url {
                Some(url) => Ok(Self::Postgres(
                    PostgresStore::connect(url, settings.store.max_connections).await?,
                )),
                // `Settings::validate` refuses this; a caller that skipped it is told the same.
                None => Err(StoreError::BadInput(
                    "store.backend = \"postgres\" needs store.url",
                )),
            },
            #[cfg(not(feature = "postgres"))]
            StoreBackend::Postgres => Err(StoreError::NotBuilt("postgres")),
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
            #[cfg(feature = "postgres")]
            AnyStore::Postgres($s) => $call.await,
        }
    };
}

impl super::StreamLease for AnyStore {
    async fn try_lease(&self) -> Result<Option<super::Lease>, StoreError> {
        forward!(self, s => s.try_lease())
    }
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

impl SettlementStore for AnyStore {
    async fn settle_cursor(&self) -> Result<u64, StoreError> {
        forward!(self, s => s.settle_cursor())
    }

    async fn record_settled(
        &self,
        hash: &PaymentHash,
        amt_paid_msat: u64,
        settle_index: u64,
    ) -> Result<(), StoreError> {
        forward!(self, s => s.record_settled(hash, amt_paid_msat, settle_index))
    }

    async fn is_settled(&self, hash: &PaymentHash) -> Result<bool, StoreError> {
        forward!(self, s => s.is_settled(hash))
    }
}

impl TokenLedger for AnyStore {
    async fn record_token(&self, t: &TokenRecord) -> Result<(), StoreError> {
        forward!(self, s => s.record_token(t))
    }

    async fn token(&self, id: &TokenId) -> Result<Option<TokenView>, StoreError> {
        forward!(self, s => s.token(id))
    }

    async fn list_tokens(
        &self,
        limit: u32,
        settled_only: bool,
    ) -> Result<Vec<TokenView>, StoreError> {
        forward!(self, s => s.list_tokens(limit, settled_only))
    }

    async fn mark_revoked(&self, id: &TokenId) -> Result<bool, StoreError> {
        forward!(self, s => s.mark_revoked(id))
    }

    async fn revenue(&self) -> Result<Vec<RevenueRow>, StoreError> {
        forward!(self, s => s.revenue())
    }
}

impl BalanceStore for AnyStore {
    async fn open_balance(&self, token_id: &TokenId, micro_usd: u64) -> Result<u64, StoreError> {
        forward!(self, s => s.open_balance(token_id, micro_usd))
    }

    async fn balance(&self, token_id: &TokenId) -> Result<Option<u64>, StoreError> {
        forward!(self, s => s.balance(token_id))
    }

    async fn debit(
        &self,
        token_id: &TokenId,
        micro_usd: u64,
        idempotency_key: Option<&str>,
    ) -> Result<Debit, StoreError> {
        forward!(self, s => s.debit(token_id, micro_usd, idempotency_key))
    }

    async fn take_free_call(
        &self,
        service: &str,
        client: &str,
        limit: u32,
    ) -> Result<bool, StoreError> {
        forward!(self, s => s.take_free_call(service, client, limit))
    }
}

impl MeterStore for AnyStore {
    async fn charge(&self, charge: &Charge<'_>) -> Result<ChargeOutcome, StoreError> {
        forward!(self, s => s.charge(charge))
    }

    async fn meter_used(&self, key: &MeterKey, period: u64) -> Result<u64, StoreError> {
        forward!(self, s => s.meter_used(key, period))
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

    #[cfg(feature = "postgres")]
    mod postgres {
        crate::store_conformance!(optional async {
            crate::store::postgres::tests::fresh()
                .await
                .map(crate::store::AnyStore::Postgres)
        });
    }
}
