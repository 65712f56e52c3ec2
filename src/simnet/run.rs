//! Running the simulated network: what `tapgate simnet --dir DIR` starts.
//!
//! [`start`] lays out `DIR` the way Polar lays out a litd network, starts one gRPC server per
//! node on loopback (all of lnd's and tapd's services on one port, as litd's integrated mode
//! serves them on lnd's port; the edge also answers as the price oracle) plus lnd's REST API on
//! a second port with the same certificate (`simnet::rest`, lnd's `restlisten`), and writes
//! `DIR/network.toml` ([`NetworkFile`]) last, so a reader that finds the file finds servers
//! already listening. It owns the files, the sockets and the server tasks; every answer the
//! servers give comes from `simnet::server` over the model.
//!
//! ```text
//! DIR/                                                  0700
//!   network.toml                                        endpoints, keys, file paths
//!   simnet.toml                                         the network's secret, run count; 0600
//!   simnet.lock                                         held while running; the pid
//!   volumes/litd/<node>/lnd/tls.cert, tls.key           kept across runs; tls.key 0600
//!   volumes/litd/<node>/lnd/data/chain/bitcoin/regtest/{admin,invoice,readonly}.macaroon
//!   volumes/litd/<node>/tapd/data/regtest/admin.macaroon
//! ```
//!
//! **Macaroons.** Each node has two root keys, one for lnd and one for tapd, both fresh per
//! run. lnd's services accept only macaroons under the lnd key, tapd's services only the tapd
//! macaroon, as litd checks tapd's macaroon on tapd's services. Each file carries the
//! permissions its daemon bakes into it (`simnet::permissions`): `admin.macaroon` lnd's read and
//! write sets, `invoice.macaroon` lnd's `invoicePermissions`, `readonly.macaroon` lnd's
//! `readPermissions`, tapd's `admin.macaroon` every permission in tapd's map; and every call
//! must carry the permissions lnd or tapd requires of its method, refused otherwise with their
//! `Unknown: permission denied` (`simnet::auth`). The price oracle takes no macaroon, like
//! tapd's sample oracle, but is still served over the edge's TLS.
//!
//! **Secrets and restarts.** The node keys and the asset derive from the network's secret,
//! kept in `DIR/simnet.toml` (0600): from the OS CSPRNG for a new directory, or from
//! `SimnetConfig::seed` for a reproducible one. A restart on the same directory keeps them and
//! draws every preimage, payment address and quote id afresh (see `simnet::state_dir`). Only
//! the identities persist: balances, channels, invoices and quotes start over each run.
//!
//! **One simnet per directory.** `DIR/simnet.lock` is held for the whole run; a second simnet
//! on `DIR` fails at once and names the first one's pid.
//!
//! **Shutdown.** The future passed to [`start`] (a `CancellationToken`'s `cancelled_owned()`, a
//! oneshot receiver, Ctrl-C…) or [`RunningSimnet::shutdown`] stops every server: open streams
//! end, servers drain their connections for at most [`SHUTDOWN_GRACE`], then are aborted.
//! `network.toml` is removed as the servers stop, so no reader finds endpoints nobody serves.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tracing::Instrument;

use super::auth::{MacaroonAuth, write_grant};
use super::model::{ConfigError, NodeId, NodePubkey, Simnet, SimnetConfig};
use super::permissions::Grant;
use super::rest::{self, RestSetupError};
use super::server::{NodeAuth, SimnetHandle, node_routes};
use super::state_dir::{DirLock, StateDirError, begin_run};
use super::tls::{NodeFilesError, TLS_CERT_FILE, write_node_tls};
use crate::clock::{Clock, SystemClock};
use crate::l402::RootKey;
pub use crate::network_file::{NetworkFile, NetworkFileError, NodeEntry};

pub use crate::network_file::NETWORK_FILE;

/// How long [`RunningSimnet::shutdown`] waits for the servers to drain before aborting them:
/// long enough for in-flight unary calls (the simnet answers in microseconds), short enough
/// that Ctrl-C ends `tapgate simnet` within half a second even with clients connected.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(400);

/// How often open invoices past their expiry are cancelled (lnd's invoice expiry watcher), so
/// subscribers see CANCELED without anyone calling. One second is lnd's own resolution.
const EXPIRY_TICK: Duration = Duration::from_secs(1);

/// The simnet could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimnetError {
    /// The configuration is invalid.
    #[error("invalid simnet configuration: {0}")]
    Config(#[from] ConfigError),
    /// A directory could not be created.
    #[error("cannot create {}: {source}; choose a writable --dir", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A certificate or macaroon could not be made or written.
    #[error(transparent)]
    NodeFiles(#[from] NodeFilesError),
    /// A root key could not be drawn.
    #[error("cannot draw a macaroon root key from the OS: {0}")]
    Random(#[source] getrandom::Error),
    /// The directory is in use, or its state file is unusable.
    #[error(transparent)]
    StateDir(#[from] StateDirError),
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}; free the port or choose another base port")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The REST gateway could not be set up.
    #[error("cannot start {node}'s REST gateway: {source}")]
    Rest {
        /// The node.
        node: NodeId,
        /// Why.
        #[source]
        source: RestSetupError,
    },
    /// tonic refused the TLS configuration.
    #[error("cannot configure TLS for {node}'s server: {source}")]
    Tls {
        /// The node.
        node: NodeId,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// The network file could not be written.
    #[error("cannot write {}: {source}; choose a writable --dir", path.display())]
    WriteNetworkFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The network file could not be encoded (a bug).
    #[error("cannot encode the network file: {0}")]
    EncodeNetworkFile(#[source] toml::ser::Error),
}

/// The simnet did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    /// A node's server failed while running.
    #[error("{node}'s server failed: {source}")]
    Serve {
        /// The node.
        node: NodeId,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// A task panicked.
    #[error("a simnet task panicked: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// The servers were still draining after the grace period and were aborted.
    #[error("the simnet's servers were still draining connections after {0:?} and were aborted")]
    TimedOut(Duration),
}

/// How to run the simnet beyond its [`SimnetConfig`].
#[derive(Clone)]
pub struct RunOptions {
    /// The network.
    pub config: SimnetConfig,
    /// `None`: every node listens on ports the OS picks. `Some(p)`: gRPC for alice on `p`, bob
    /// on `p + 1`, edge on `p + 2`, merchant on `p + 3`, and REST for them on `p + 4` to
    /// `p + 7` in the same order.
    pub base_port: Option<u16>,
    /// Where "now" comes from (the system clock unless a test steps time itself).
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("config", &self.config)
            .field("base_port", &self.base_port)
            .finish_non_exhaustive()
    }
}

impl RunOptions {
    /// `config` on OS-chosen ports with the system clock.
    pub fn new(config: SimnetConfig) -> Self {
        Self {
            config,
            base_port: None,
            clock: Arc::new(SystemClock),
        }
    }
}

/// A started simnet. Dropping it stops the servers without waiting; call
/// [`RunningSimnet::shutdown`] (or [`RunningSimnet::wait`]) to wait for them.
pub struct RunningSimnet {
    network_file: PathBuf,
    network: NetworkFile,
    net: SimnetHandle,
    /// Set to `true` to stop every server, stream and background task; the tasks below and
    /// every open stream watch it.
    stop: watch::Sender<bool>,
    /// Each node's gRPC and REST servers, then the expiry watcher; joined on shutdown.
    tasks: Vec<JoinHandle<Result<(), ShutdownError>>>,
    /// `DIR/simnet.lock`, released when this is dropped.
    _lock: DirLock,
}

impl std::fmt::Debug for RunningSimnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSimnet")
            .field("network_file", &self.network_file)
            .finish_non_exhaustive()
    }
}

/// Starts the simnet described by `config` in `dir` on OS-chosen loopback ports, until
/// `shutdown` completes or [`RunningSimnet::shutdown`] is called. See [`start_with`].
pub async fn start(
    dir: &Path,
    config: SimnetConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningSimnet, SimnetError> {
    start_with(dir, RunOptions::new(config), shutdown).await
}

/// Starts the simnet: takes `dir`'s lock, writes every node's macaroons (fresh each run) and
/// certificate (kept from an earlier run on `dir`), binds and serves every node, then writes
/// `dir/network.toml`. Must run inside a multi-threaded or current-thread Tokio runtime; all
/// four servers share it.
pub async fn start_with(
    dir: &Path,
    options: RunOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningSimnet, SimnetError> {
    options.config.validate()?;
    create_private_dir(dir)?;
    let dir = dir
        .canonicalize()
        .map_err(|source| SimnetError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
    let lock = DirLock::acquire(&dir)?;
    let (secret, run) = begin_run(&dir, options.config.seed)?;
    let model = Simnet::with_secret(options.config, &secret, run)?;
    drop(secret);
    let asset = model.asset().clone();
    let keys = NodeId::ALL.map(|n| model.pubkey(n));
    let net = SimnetHandle::new(model, options.clock);
    let (stop, _) = watch::channel(false);

    let mut nodes = Vec::new();
    let mut tasks = Vec::new();
    let node_count = NodeId::ALL.len();
    for (i, node) in NodeId::ALL.into_iter().enumerate() {
        // gRPC ports first (base..base+3), then REST (base+4..base+7), so neither collides.
        let grpc_port = offset_port(options.base_port, i)?;
        let rest_port = offset_port(options.base_port, node_count + i)?;
        let (entry, node_tasks) =
            start_node(&dir, node, keys[i], (grpc_port, rest_port), &net, &stop)?;
        nodes.push(entry);
        tasks.extend(node_tasks);
    }
    tasks.push(spawn_expiry_watcher(net.clone(), stop.subscribe()));
    spawn_shutdown_trigger(shutdown, stop.clone());

    let edge = nodes
        .iter()
        .find(|n| n.name == NodeId::Edge.name())
        .cloned();
    let (oracle_endpoint, oracle_tls_cert_path) = edge
        .map(|e| (Some(e.lnd_endpoint), Some(e.tls_cert_path)))
        .unwrap_or_default();
    let network = NetworkFile {
        network: "regtest".into(),
        edge_pubkey: keys[NodeId::Edge.index()].to_hex(),
        oracle_endpoint,
        oracle_tls_cert_path,
        asset_id: asset.asset_id.to_hex(),
        asset_name: asset.name.clone(),
        decimal_display: asset.decimal_display,
        group_key: asset.group_key.map(|g| g.to_hex()),
        nodes,
    };
    let network_file = NetworkFile::path_in(&dir);
    write_network_file(&network_file, &network)?;
    tracing::info!(file = %network_file.display(), "simnet running");
    Ok(RunningSimnet {
        network_file,
        network,
        net,
        stop,
        tasks,
        _lock: lock,
    })
}

impl RunningSimnet {
    /// `DIR/network.toml`.
    pub fn network_file(&self) -> &Path {
        &self.network_file
    }

    /// What the network file says.
    pub fn network(&self) -> &NetworkFile {
        &self.network
    }

    /// The shared model, for reading balances and flipping fault knobs while the servers run
    /// (changes made through it wake the open streams).
    pub fn model(&self) -> &SimnetHandle {
        &self.net
    }

    /// Stops every server and waits for them, at most [`SHUTDOWN_GRACE`].
    pub async fn shutdown(mut self) -> Result<(), ShutdownError> {
        self.stop.send_replace(true);
        self.join().await
    }

    /// Waits until the shutdown future given to [`start`] completes (or a server fails), then
    /// stops everything as [`Self::shutdown`] does. Returns how long stopping took, from the
    /// stop signal to the last task's end.
    pub async fn wait(mut self) -> Result<Duration, ShutdownError> {
        let mut stopping = self.stop.subscribe();
        let _ = stopping.wait_for(|s| *s).await;
        let since = std::time::Instant::now();
        self.join().await?;
        Ok(since.elapsed())
    }

    async fn join(&mut self) -> Result<(), ShutdownError> {
        self.remove_network_file();
        let tasks = std::mem::take(&mut self.tasks);
        let mut first_error = None;
        let mut pending = tasks.into_iter();
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            for task in pending.by_ref() {
                let outcome = task.await.map_err(ShutdownError::Task).and_then(|r| r);
                if let Err(e) = outcome {
                    first_error.get_or_insert(e);
                }
            }
        })
        .await;
        if drained.is_err() {
            pending.for_each(|t| t.abort());
            return Err(ShutdownError::TimedOut(SHUTDOWN_GRACE));
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl RunningSimnet {
    /// Removes `network.toml` (once; a missing file is fine).
    fn remove_network_file(&self) {
        match std::fs::remove_file(&self.network_file) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %self.network_file.display(), error = %e, "cannot remove the network file")
            }
        }
    }
}

impl Drop for RunningSimnet {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        self.remove_network_file();
    }
}

/// The paths of one node's files, Polar's litd layout under `dir/volumes/litd/<name>/`.
struct NodePaths {
    lnd_dir: PathBuf,
    macaroon_dir: PathBuf,
    tapd_macaroon_dir: PathBuf,
}

impl NodePaths {
    fn new(dir: &Path, node: NodeId) -> Self {
        let root = dir.join("volumes").join("litd").join(node.name());
        let lnd_dir = root.join("lnd");
        Self {
            macaroon_dir: lnd_dir.join("data/chain/bitcoin/regtest"),
            tapd_macaroon_dir: root.join("tapd/data/regtest"),
            lnd_dir,
        }
    }
}

/// A server or background task of the simnet, joined on shutdown.
type Task = JoinHandle<Result<(), ShutdownError>>;

/// `base + offset`, or 0 (the OS picks) without a base port.
fn offset_port(base: Option<u16>, offset: usize) -> Result<u16, SimnetError> {
    let Some(base) = base else { return Ok(0) };
    // Eight ports: the sum only overflows for a base port above 65528.
    u16::try_from(offset)
        .ok()
        .and_then(|o| base.checked_add(o))
        .ok_or_else(|| SimnetError::Bind {
            addr: SocketAddr::from(([127, 0, 0, 1], base)),
            source: io::Error::new(io::ErrorKind::InvalidInput, "port out of range"),
        })
}

/// Writes `node`'s files, binds its gRPC and REST ports (`ports`) and spawns its servers.
fn start_node(
    dir: &Path,
    node: NodeId,
    pubkey: NodePubkey,
    ports: (u16, u16),
    net: &SimnetHandle,
    stop: &watch::Sender<bool>,
) -> Result<(NodeEntry, Vec<Task>), SimnetError> {
    let (port, rest_port) = ports;
    let paths = NodePaths::new(dir, node);
    for d in [
        &paths.lnd_dir,
        &paths.macaroon_dir,
        &paths.tapd_macaroon_dir,
    ] {
        create_private_dir(d)?;
    }
    let tls = write_node_tls(&paths.lnd_dir)?;
    let lnd_key = RootKey::generate().map_err(SimnetError::Random)?;
    let tapd_key = RootKey::generate().map_err(SimnetError::Random)?;
    let mac = |name: &str| paths.macaroon_dir.join(name);
    for (name, grant) in [
        ("admin.macaroon", Grant::LndAdmin),
        ("invoice.macaroon", Grant::LndInvoice),
        ("readonly.macaroon", Grant::LndReadonly),
    ] {
        write_grant(&mac(name), &lnd_key, grant)?;
    }
    let tapd_macaroon = paths.tapd_macaroon_dir.join("admin.macaroon");
    write_grant(&tapd_macaroon, &tapd_key, Grant::TapdAdmin)?;

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let bind_err = |source| SimnetError::Bind { addr, source };
    let incoming = TcpIncoming::bind(addr).map_err(bind_err)?;
    let bound = incoming.local_addr().map_err(bind_err)?;
    let auth = NodeAuth {
        lnd: MacaroonAuth::new(lnd_key),
        tapd: MacaroonAuth::new(tapd_key),
    };
    let routes = node_routes(node, net.clone(), stop.subscribe(), auth);
    let router = Server::builder()
        .tls_config(tls)
        .map_err(|source| SimnetError::Tls { node, source })?
        .add_routes(routes);
    let mut stopping = stop.subscribe();
    let signal = async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    let stop_all = stop.clone();
    let span = tracing::info_span!("simnet_node", node = %node, addr = %bound);
    let task = tokio::spawn(
        async move {
            let served = router.serve_with_incoming_shutdown(incoming, signal).await;
            // A node whose server died takes the network down with it, so `wait` returns
            // and reports the failure instead of serving three nodes of four.
            stop_all.send_replace(true);
            served.map_err(|source| ShutdownError::Serve { node, source })
        }
        .instrument(span),
    );

    let endpoint = bound.to_string();
    let tls_cert_path = paths.lnd_dir.join(TLS_CERT_FILE);
    let (rest_endpoint, rest_task) = start_rest(
        node,
        rest_port,
        &paths.lnd_dir,
        &endpoint,
        &tls_cert_path,
        stop,
    )?;
    let entry = NodeEntry {
        name: node.name().to_owned(),
        pubkey: pubkey.to_hex(),
        lnd_endpoint: endpoint.clone(),
        tapd_endpoint: endpoint,
        rest_endpoint: Some(rest_endpoint),
        tls_cert_path,
        lnd_macaroon_path: mac("admin.macaroon"),
        lnd_invoice_macaroon_path: mac("invoice.macaroon"),
        lnd_readonly_macaroon_path: mac("readonly.macaroon"),
        tapd_macaroon_path: tapd_macaroon,
    };
    Ok((entry, vec![task, rest_task]))
}

/// Binds `node`'s REST port and spawns its gateway to the gRPC server at `grpc_endpoint`
/// (lnd's `restlisten`, served with the same certificate). Returns the bound `host:port`.
fn start_rest(
    node: NodeId,
    port: u16,
    lnd_dir: &Path,
    grpc_endpoint: &str,
    tls_cert_path: &Path,
    stop: &watch::Sender<bool>,
) -> Result<(String, Task), SimnetError> {
    let rest_err = |source| SimnetError::Rest { node, source };
    let tls = rest::tls_acceptor(lnd_dir).map_err(rest_err)?;
    let gateway = rest::Gateway::connect(grpc_endpoint, tls_cert_path).map_err(rest_err)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let bind_err = |source| SimnetError::Bind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(bind_err)?;
    let bound = listener.local_addr().map_err(bind_err)?;
    let span = tracing::info_span!("simnet_rest", node = %node, addr = %bound);
    let serving = rest::serve(listener, tls, gateway, stop.subscribe());
    let task = tokio::spawn(
        async move {
            serving.await;
            Ok(())
        }
        .instrument(span),
    );
    Ok((bound.to_string(), task))
}

/// lnd's invoice expiry watcher: cancels expired open invoices every [`EXPIRY_TICK`].
fn spawn_expiry_watcher(
    net: SimnetHandle,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<Result<(), ShutdownError>> {
    let task = async move {
        let mut tick = tokio::time::interval(EXPIRY_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => net.update_now(|_, _| ()),
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
        }
    };
    tokio::spawn(task.instrument(tracing::info_span!("simnet_expiry_watcher")))
}

/// Turns the caller's shutdown future into the stop signal. Ends by itself once stopped.
fn spawn_shutdown_trigger(
    shutdown: impl Future<Output = ()> + Send + 'static,
    stop: watch::Sender<bool>,
) {
    let mut stopped = stop.subscribe();
    let task = async move {
        tokio::select! {
            () = shutdown => { stop.send_replace(true); }
            _ = stopped.wait_for(|s| *s) => {}
        }
    };
    tokio::spawn(task.instrument(tracing::info_span!("simnet_shutdown_trigger")));
}

/// Creates `dir` (and its parents) and makes it private to the user (0700 on Unix), as lnd
/// keeps its data directory.
fn create_private_dir(dir: &Path) -> Result<(), SimnetError> {
    let failed = |source| SimnetError::CreateDir {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)?;
    }
    Ok(())
}

/// Writes the network file atomically (a temporary file renamed over it), so a reader polling
/// for it never sees half a file.
fn write_network_file(path: &Path, network: &NetworkFile) -> Result<(), SimnetError> {
    let text = toml::to_string(network).map_err(SimnetError::EncodeNetworkFile)?;
    let tmp = path.with_extension("toml.tmp");
    let failed = |source| SimnetError::WriteNetworkFile {
        path: path.to_owned(),
        source,
    };
    std::fs::write(&tmp, text).map_err(failed)?;
    std::fs::rename(&tmp, path).map_err(failed)
}
