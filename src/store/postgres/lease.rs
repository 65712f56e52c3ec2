//! The settlement stream's lease on PostgreSQL: a session-level advisory lock
//! (`pg_try_advisory_lock`), taken on a connection of its own outside the pool, so that the
//! server frees it the moment that connection closes: the replica stopped, was killed, or lost
//! the network. Replicas standing by try again until they get it.
//!
//! This file owns the lock's key and taking it; it must not follow the stream.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::PostgresStore;
use crate::store::sql::db;
use crate::store::{Lease, StoreError, StreamLease};

/// The advisory lock's first key: "tapg" in ASCII, so that other applications sharing the
/// database are unlikely to pick it. The second is a hash of the schema the store's tables
/// live in, so that deployments (or tests) in separate schemas of one database each have a
/// lease of their own.
const STREAM_LOCK: i32 = 0x7461_7067;

impl StreamLease for PostgresStore {
    async fn try_lease(&self) -> Result<Option<Lease>, StoreError> {
        let options = self.pool.connect_options();
        let mut c = PgConnection::connect_with(&options)
            .await
            .map_err(db("connect for the settlement stream's lease"))?;
        let got: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext(current_schema()))")
                .bind(STREAM_LOCK)
                .fetch_one(&mut c)
                .await
                .map_err(db("take the settlement stream's lease"))?;
        if got {
            return Ok(Some(Lease::postgres(c)));
        }
        // A courtesy to the server; the connection holds nothing.
        let _ = c.close().await;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::StreamLease;
    use crate::store::postgres::PostgresStore;

    /// A second replica of `a`: another pool on the same database and schema.
    fn replica_of(a: &PostgresStore) -> PostgresStore {
        PostgresStore {
            pool: sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect_lazy_with((*a.pool.connect_options()).clone()),
            target: "replica".into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_replica_holds_the_lease_and_another_takes_it_when_it_goes() {
        let Some(a) = crate::store::postgres::tests::fresh().await else {
            return;
        };
        // A second replica: another pool on the same database.
        let b = replica_of(&a);
        let mut held = a
            .try_lease()
            .await
            .unwrap()
            .expect("the first asks, the first gets it");
        assert!(held.holds().await);
        assert!(
            b.try_lease().await.unwrap().is_none(),
            "one holder at a time"
        );
        assert!(
            a.try_lease().await.unwrap().is_none(),
            "even in the same process"
        );
        drop(held);
        // The server frees the lock when the connection closes; give it a moment.
        let mut taken = None;
        for _ in 0..50 {
            taken = b.try_lease().await.unwrap();
            if taken.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let mut taken = taken.expect("the other replica takes over");
        assert!(taken.holds().await);
    }
}
