//! The paid API's serving threads: one per worker, each with its own single-threaded tokio
//! runtime, its own listening socket on the same address (`SO_REUSEPORT`: the kernel spreads
//! new connections among the sockets) and its own upstream connection pools, as nginx runs
//! worker processes.
//!
//! Why not the process's multi-threaded runtime: on a proxy's hot path, work-stealing and the
//! wake-ups between threads cost more than the request itself. Measured side by side with
//! `benches/load/run.sh` (its `hyper-floor` row runs the same HTTP stack with either layout),
//! the per-worker layout needs about half the CPU per proxied request. A connection lives its
//! whole life on the thread that accepted it, and so do the upstream connections it uses.
//!
//! What is shared between workers is what the [`Gateway`] shares: the authenticator (root-key
//! cache, store, nodes) and the metrics. Each worker gets a fresh [`Proxy`], so an upstream
//! connection is only ever driven by the runtime that opened it.
//!
//! This module must not decide anything about a request: [`super::server::run`] does, on each
//! worker, exactly as it does when a test runs it on a runtime of its own.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;

use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::proxy::Proxy;
use super::server::{Gateway, run};

/// Pending connections each socket queues before accepting (the kernel caps it at somaxconn).
const BACKLOG: u32 = 1024;

/// Binds `workers` listening sockets to `addr`, all on the same port. Call from within a tokio
/// runtime (the sockets are made through tokio, then handed over as std sockets, unregistered,
/// for each worker's runtime to take).
///
/// A plain bind comes first, so that an address another process already serves is refused
/// ("address in use") even if that process set `SO_REUSEPORT` too; with port 0 it also picks
/// the port every socket then shares.
pub fn bind(addr: SocketAddr, workers: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let addr = {
        let probe = std::net::TcpListener::bind(addr)?;
        probe.local_addr()?
    };
    (0..workers.max(1))
        .map(|_| {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            #[cfg(all(unix, not(target_os = "solaris"), not(target_os = "illumos")))]
            socket.set_reuseport(true)?;
            socket.bind(addr)?;
            socket.listen(BACKLOG)?.into_std()
        })
        .collect()
}

/// Starts one serving thread per listener, each running [`run`] on its own runtime until
/// `shutdown`, then letting its connections finish. `connections` counts each thread as one
/// task until its last connection is done, so the caller's `close(); wait()` is the drain.
///
/// Returns when every thread is serving, or the first error (a runtime that could not be
/// built, a socket that could not be registered) after cancelling the threads already started.
pub fn spawn(
    listeners: Vec<std::net::TcpListener>,
    gateway: &Gateway,
    shutdown: &CancellationToken,
    connections: &TaskTracker,
) -> io::Result<()> {
    let (ready_tx, ready_rx) = mpsc::channel::<io::Result<()>>();
    // Every worker stops on `shutdown`, or when this group is cancelled because a sibling
    // failed to start (cancelling a child token leaves its parent alone).
    let group = shutdown.child_token();
    let count = listeners.len();
    for (i, std_listener) in listeners.into_iter().enumerate() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name(format!("tapgate-worker-{i}"))
            .build();
        let runtime = match runtime {
            Ok(r) => r,
            Err(e) => {
                group.cancel();
                return Err(e);
            }
        };
        let gw = Arc::new(Gateway {
            auth: Arc::clone(&gateway.auth),
            proxy: Proxy::new(),
            metrics: Arc::clone(&gateway.metrics),
        });
        let stop = group.clone();
        let held = connections.token();
        let ready = ready_tx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("tapgate-worker-{i}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready.send(Ok(()));
                    drop(ready);
                    let local = TaskTracker::new();
                    run(listener, gw, stop, local.clone()).await;
                    local.close();
                    local.wait().await;
                });
                // The worker's runtime, and any upstream connection left in its pools, go
                // here; then the caller's drain counts this thread as done.
                drop(runtime);
                drop(held);
            });
        if let Err(e) = spawned {
            group.cancel();
            return Err(e);
        }
    }
    drop(ready_tx);
    for _ in 0..count {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                group.cancel();
                return Err(e);
            }
            Err(_) => {
                group.cancel();
                return Err(io::Error::other(
                    "a gateway worker thread ended before serving",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_socket_shares_the_port_picked_for_port_zero() {
        let listeners = bind("127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()), 3)
            .unwrap_or_else(|e| panic!("bind: {e}"));
        assert_eq!(listeners.len(), 3);
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()).unwrap_or(0))
            .collect();
        assert_ne!(ports[0], 0);
        assert!(ports.iter().all(|p| *p == ports[0]), "{ports:?}");
    }

    #[tokio::test]
    async fn an_address_in_use_is_refused_even_by_a_reuseport_socket() {
        let first = bind("127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()), 1)
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = first[0].local_addr().unwrap_or_else(|e| panic!("{e}"));
        let again = bind(addr, 1);
        assert_eq!(
            again.map(|_| ()).map_err(|e| e.kind()),
            Err(io::ErrorKind::AddrInUse)
        );
    }
}
