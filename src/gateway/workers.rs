//! The paid API's serving threads: one per worker, each with its own single-threaded tokio
//! runtime and its own upstream connection pools, as nginx runs worker processes; and one
//! acceptor thread that hands each new connection to the worker serving the fewest.
//!
//! Why not the process's multi-threaded runtime: on a proxy's hot path, work-stealing and the
//! wake-ups between threads cost more than the request itself. Measured side by side with
//! `benches/load/run.sh` (its `hyper-floor` row runs the same HTTP stack with either layout),
//! the per-worker layout needs about half the CPU per proxied request. A connection lives its
//! whole life on the worker it was handed to, and so do the upstream connections it uses.
//!
//! Why one acceptor rather than a `SO_REUSEPORT` socket per worker: the kernel spreads
//! connections among such sockets by a hash of their addresses, so 64 connections land 28 on
//! one worker and 36 on the other as often as not, and the busier worker's requests wait in
//! its queue while the other has room: a throughput and tail-latency cost under even load.
//! Counting live connections per worker and handing each new one to the least busy keeps
//! them even. The hand-over happens once per connection, never per request.
//!
//! What is shared between workers is what the [`Gateway`] shares: the authenticator (root-key
//! cache, store, nodes) and the metrics. Each worker gets a fresh [`Proxy`], so an upstream
//! connection is only ever driven by the runtime that opened it.
//!
//! This module must not decide anything about a request: [`super::server::serve_connection`]
//! does, on each worker, exactly as [`super::server::run`] does when a test runs it on a
//! runtime of its own.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc as channel;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::proxy::Proxy;
use super::server::{Gateway, accept_until, serve_connection};

/// Pending connections the socket queues before accepting (the kernel caps it at somaxconn).
const BACKLOG: u32 = 1024;

/// Binds the listening socket to `addr` (port 0 picks one). Call from within a tokio runtime
/// (the socket is made through tokio, then handed over as a std socket, unregistered, for the
/// acceptor's runtime to take).
pub fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)?.into_std()
}

/// Live connections per worker; a connection counts from its hand-over until it ends.
struct Loads(Vec<AtomicUsize>);

impl Loads {
    /// The worker serving the fewest connections (the first of those tied), now counted one
    /// more. Only the acceptor picks, so two picks never race each other; the workers only
    /// ever lower the counts.
    fn pick(&self) -> usize {
        let i = self
            .0
            .iter()
            .enumerate()
            .min_by_key(|(_, n)| n.load(Ordering::Relaxed))
            .map_or(0, |(i, _)| i);
        if let Some(n) = self.0.get(i) {
            n.fetch_add(1, Ordering::Relaxed);
        }
        i
    }

    fn done(&self, i: usize) {
        if let Some(n) = self.0.get(i) {
            n.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Lowers its worker's count when the connection it rides with ends.
struct Live {
    loads: Arc<Loads>,
    worker: usize,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.loads.done(self.worker);
    }
}

/// A connection handed to a worker: the socket, unregistered, and the client's address.
type Handed = (std::net::TcpStream, SocketAddr);

/// Starts `workers` serving threads and the acceptor thread on `listener`, each on its own
/// runtime, until `shutdown`; then the acceptor stops and each worker lets its connections
/// finish. `connections` counts each thread as one task until its last connection is done, so
/// the caller's `close(); wait()` is the drain.
///
/// Returns when every thread runs, or the first error (a runtime that could not be built, a
/// socket that could not be registered) after cancelling the threads already started.
pub fn spawn(
    listener: std::net::TcpListener,
    workers: usize,
    gateway: &Gateway,
    shutdown: &CancellationToken,
    connections: &TaskTracker,
) -> io::Result<()> {
    let (ready_tx, ready_rx) = mpsc::channel::<io::Result<()>>();
    // Every thread stops on `shutdown`, or when this group is cancelled because a sibling
    // failed to start (cancelling a child token leaves its parent alone).
    let group = shutdown.child_token();
    let workers = workers.max(1);
    let loads = Arc::new(Loads((0..workers).map(|_| AtomicUsize::new(0)).collect()));
    let mut handoff = Vec::with_capacity(workers);
    let started = (|| {
        for i in 0..workers {
            let (tx, rx) = channel::unbounded_channel::<Handed>();
            handoff.push(tx);
            let gw = Arc::new(Gateway {
                auth: Arc::clone(&gateway.auth),
                proxy: Proxy::new(),
                metrics: Arc::clone(&gateway.metrics),
            });
            let (stop, loads) = (group.clone(), Arc::clone(&loads));
            on_thread(
                format!("tapgate-worker-{i}"),
                connections,
                &ready_tx,
                move |ready| serve_handed(rx, i, gw, loads, stop, ready),
            )?;
        }
        let stop = group.clone();
        on_thread(
            "tapgate-acceptor".into(),
            connections,
            &ready_tx,
            move |ready| accept(listener, handoff, loads, stop, ready),
        )
    })();
    if let Err(e) = started {
        group.cancel();
        return Err(e);
    }
    drop(ready_tx);
    for _ in 0..=workers {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                group.cancel();
                return Err(e);
            }
            Err(_) => {
                group.cancel();
                return Err(io::Error::other("a gateway thread ended before serving"));
            }
        }
    }
    Ok(())
}

/// Runs `task` on a new thread named `name` with a single-threaded runtime of its own; the
/// thread holds a token of `connections` until the runtime is gone. `task` reports on
/// `ready` once it serves.
fn on_thread<F, Fut>(
    name: String,
    connections: &TaskTracker,
    ready: &mpsc::Sender<io::Result<()>>,
    task: F,
) -> io::Result<()>
where
    F: FnOnce(mpsc::Sender<io::Result<()>>) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name(name.clone())
        .build()?;
    let held = connections.token();
    let ready = ready.clone();
    std::thread::Builder::new().name(name).spawn(move || {
        runtime.block_on(task(ready));
        // The runtime, and any upstream connection left in a worker's pools, go here; then
        // the caller's drain counts this thread as done.
        drop(runtime);
        drop(held);
    })?;
    Ok(())
}

/// The acceptor: accepts until `stop` and hands each connection to the least busy worker.
async fn accept(
    listener: std::net::TcpListener,
    handoff: Vec<channel::UnboundedSender<Handed>>,
    loads: Arc<Loads>,
    stop: CancellationToken,
    ready: mpsc::Sender<io::Result<()>>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    drop(ready);
    while let Some((stream, peer)) = accept_until(&listener, &stop).await {
        let std_stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, %peer, "cannot hand a connection to a worker");
                continue;
            }
        };
        let i = loads.pick();
        let sent = handoff.get(i).map(|tx| tx.send((std_stream, peer)).is_ok());
        if sent != Some(true) {
            // The worker has stopped (shutdown under way): the connection is dropped.
            loads.done(i);
        }
    }
    // Dropping `handoff` ends each worker's stream of connections.
}

/// A worker: serves the connections handed to it until `stop` or the acceptor is gone, then
/// lets them finish.
async fn serve_handed(
    mut handed: channel::UnboundedReceiver<Handed>,
    worker: usize,
    gateway: Arc<Gateway>,
    loads: Arc<Loads>,
    stop: CancellationToken,
    ready: mpsc::Sender<io::Result<()>>,
) {
    let _ = ready.send(Ok(()));
    drop(ready);
    let local = TaskTracker::new();
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => None,
            next = handed.recv() => next,
        };
        let Some((std_stream, peer)) = next else {
            break;
        };
        let live = Live {
            loads: Arc::clone(&loads),
            worker,
        };
        match TcpStream::from_std(std_stream) {
            Ok(stream) => serve_connection(stream, peer, &gateway, &stop, &local, live),
            Err(e) => tracing::warn!(error = %e, %peer, "a worker cannot take a connection"),
        }
    }
    local.close();
    local.wait().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_go_to_the_least_busy_worker_and_stay_even() {
        let loads = Loads((0..2).map(|_| AtomicUsize::new(0)).collect());
        let picks: Vec<usize> = (0..64).map(|_| loads.pick()).collect();
        let on_first = picks.iter().filter(|i| **i == 0).count();
        assert_eq!(on_first, 32);
        // Ten connections of worker 0 end: the next ten go there.
        (0..10).for_each(|_| loads.done(0));
        assert!((0..10).all(|_| loads.pick() == 0));
        assert_eq!(loads.pick(), 0, "a tie goes to the first");
        assert_eq!(loads.pick(), 1);
    }

    #[tokio::test]
    async fn an_address_in_use_is_refused() {
        let first = bind("127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()))
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = first.local_addr().unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(addr.port(), 0);
        assert_eq!(
            bind(addr).map(|_| ()).map_err(|e| e.kind()),
            Err(io::ErrorKind::AddrInUse)
        );
    }
}
