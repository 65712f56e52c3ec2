//! The settlement stream's lease: when several gateways share one store, exactly one of them
//! follows the seller's settlement stream and advances the cursor; the others stand by and take
//! over within seconds when it dies.
//!
//! [`StreamLease::try_lease`] returns a [`Lease`] to the one caller that may follow the stream.
//! A store shared by processes (PostgreSQL) backs it with a session-level advisory lock held on
//! a connection of its own, which the server releases as soon as that connection closes (the
//! process exits, is killed, or loses the network); a store private to one process (memory,
//! SQLite) grants it at once. [`Lease::holds`] asks whether it still holds: the tracker asks
//! every second and stops following when it does not.
//!
//! This module owns the lease's contract and its handle; it must not follow the stream (the
//! tracker does) or decide how often to ask.

use std::future::Future;

use super::StoreError;

/// Who may follow the settlement stream.
///
/// Contract for implementers: while one [`Lease`] from a store's database holds, no other
/// caller (in this process or another sharing the database) gets one; dropping it (or its
/// process dying) frees it for the next [`StreamLease::try_lease`].
pub trait StreamLease: Send + Sync {
    /// The lease, if no one else holds it (`None`: another replica follows the stream).
    fn try_lease(&self) -> impl Future<Output = Result<Option<Lease>, StoreError>> + Send;
}

/// The right to follow the settlement stream, until dropped.
#[derive(Debug)]
pub struct Lease {
    held: Held,
}

#[derive(Debug)]
enum Held {
    /// A store only this process uses.
    Local,
    /// A session-level advisory lock on this connection.
    #[cfg(feature = "postgres")]
    Postgres(sqlx::postgres::PgConnection),
}

impl Lease {
    /// The lease of a store private to this process.
    pub fn local() -> Self {
        Self { held: Held::Local }
    }

    /// A PostgreSQL connection that holds the lease's advisory lock.
    #[cfg(feature = "postgres")]
    pub(crate) fn postgres(connection: sqlx::postgres::PgConnection) -> Self {
        Self {
            held: Held::Postgres(connection),
        }
    }

    /// Whether the lease still holds: for PostgreSQL, whether its connection (and so its
    /// lock) is alive, asked with a bounded wait; a local lease always holds.
    pub async fn holds(&mut self) -> bool {
        match &mut self.held {
            Held::Local => true,
            #[cfg(feature = "postgres")]
            Held::Postgres(c) => {
                let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&mut *c);
                matches!(
                    tokio::time::timeout(std::time::Duration::from_secs(3), ping).await,
                    Ok(Ok(1))
                )
            }
        }
    }
}
