//! Stopping cleanly: one [`Shutdown`] per process hands every long-running task the same
//! cancellation token, spawns it under a name, and at the end [`Shutdown::drain`]s them with a
//! bound, naming the tasks that did not stop in time.
//!
//! The shape is mini-redis's (`src/server.rs`, `src/shutdown.rs`): the signal that stops the
//! program is separate from the machinery that stops its tasks, so a test passes its own
//! "stop now" and never sends a signal. Here that machinery is tokio-util's
//! [`CancellationToken`] (one token, cloned into every task) and [`TaskTracker`] (which knows
//! when they have all ended).
//!
//! This module owns no task's work and no policy about what a task does when cancelled: a
//! server stops accepting, finishes its in-flight requests and returns; that is the task's
//! code. What this module guarantees is that every task it spawned is named in its tracing
//! span and in the error when the drain times out.
//!
//! ```
//! use std::time::Duration;
//! use tapgate::shutdown::Shutdown;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let shutdown = Shutdown::new();
//! let token = shutdown.token();
//! shutdown.spawn("ticker", async move {
//!     // Work until asked to stop.
//!     token.cancelled().await;
//! });
//! // …later, on `shutdown::signalled()` or when a test is done:
//! let took = shutdown.drain(Duration::from_secs(5)).await.unwrap();
//! assert!(took < Duration::from_secs(5));
//! # }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// The shutdown coordinator: the token every task watches, the tracker that knows when they
/// have all ended, and the names of those still running. Clones share all three, so each part
/// of the program can spawn its own tasks into the one drain.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    /// Cancelled once, when the drain begins; every task holds a clone (from
    /// [`Shutdown::token`]) and stops when it fires. Cancelling is idempotent.
    token: CancellationToken,
    /// Every task spawned through [`Shutdown::spawn`]. Closed by the drain, after which its
    /// `wait` returns as soon as no tracked task is left.
    tracker: TaskTracker,
    /// The names of the tasks still running, for the report when the drain times out. A task's
    /// entry is removed when its future is dropped (it returned, panicked or was aborted), so
    /// it never names a task that has ended.
    running: Arc<Mutex<Registry>>,
}

/// The tasks still running, by a number unique within one [`Shutdown`]: names may repeat (one
/// task per connection, say), numbers do not.
#[derive(Debug, Default)]
struct Registry {
    /// The number the next task gets.
    next: u64,
    /// Running tasks' names by number.
    names: BTreeMap<u64, String>,
}

/// Removes a task's name from the registry when the task's future is dropped, however it ends.
struct Registered {
    id: u64,
    running: Arc<Mutex<Registry>>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.running).names.remove(&self.id);
    }
}

fn lock(registry: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    // The registry is a map of names updated in single statements; a panic elsewhere while it
    // was locked leaves it consistent, so a poisoned lock is still safe to use.
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The drain's bound passed with tasks still running.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "shutdown did not finish within {bound:?}: still running: {}; they ignore cancellation or \
     are stuck, and end with the process",
    still_running.join(", ")
)]
pub struct DrainTimedOut {
    /// The bound that passed.
    pub bound: Duration,
    /// The names of the tasks still running, sorted (a name appears once per task).
    pub still_running: Vec<String>,
}

impl Shutdown {
    /// A coordinator with no tasks, not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// The token to watch: `token.cancelled().await` returns once the drain begins. Hand a
    /// clone to every task and to every server's `run(listener, shutdown)`.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Whether the drain has begun.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Spawns `task` on the current tokio runtime, tracked for the drain and named `name` in its
    /// tracing span (`task{name=…}`) and in [`DrainTimedOut`]. The task must watch
    /// [`Shutdown::token`] itself; a task spawned after the drain began sees the token already
    /// cancelled.
    ///
    /// # Panics
    /// Outside a tokio runtime, as `tokio::spawn` does.
    pub fn spawn<F>(&self, name: impl Into<String>, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let name = name.into();
        let span = tracing::info_span!("task", name = %name);
        let registered = {
            let mut registry = lock(&self.running);
            let id = registry.next;
            registry.next += 1;
            registry.names.insert(id, name);
            Registered {
                id,
                running: Arc::clone(&self.running),
            }
        };
        self.tracker.spawn(
            async move {
                // Moved into the future so it drops with it, on return, panic or abort.
                let _registered = registered;
                task.await
            }
            .instrument(span),
        )
    }

    /// The names of the tasks still running, sorted.
    pub fn running(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.running).names.values().cloned().collect();
        names.sort();
        names
    }

    /// Cancels the token, stops waiting for new tasks and waits at most `bound` for the
    /// spawned ones to end. Returns how long they took, or the names of those still running
    /// when `bound` passed (they are left running: the caller decides whether to exit anyway).
    /// Calling it again waits again, for whatever is still running.
    pub async fn drain(&self, bound: Duration) -> Result<Duration, DrainTimedOut> {
        let started = Instant::now();
        self.token.cancel();
        self.tracker.close();
        match tokio::time::timeout(bound, self.tracker.wait()).await {
            Ok(()) => {
                let took = started.elapsed();
                tracing::debug!(?took, "every task stopped");
                Ok(took)
            }
            Err(_) => {
                let still_running = self.running();
                tracing::warn!(?bound, ?still_running, "shutdown timed out");
                Err(DrainTimedOut {
                    bound,
                    still_running,
                })
            }
        }
    }
}

/// A signal that asks the process to stop.
#[cfg(unix)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C in a terminal.
    Interrupt,
    /// SIGTERM: a service manager or `kill` asking politely.
    Terminate,
}

#[cfg(unix)]
impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        })
    }
}

/// A signal handler could not be installed.
#[cfg(unix)]
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot listen for {signal}: {source}; the process could not be stopped cleanly, so it does not start"
)]
pub struct SignalError {
    /// The signal.
    pub signal: Signal,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Listeners for SIGINT and SIGTERM, installed at once so that a signal arriving before the
/// program awaits [`Signals::recv`] is not lost (and does not kill the process: once installed,
/// the handlers replace the default action for the life of the process).
#[cfg(unix)]
#[derive(Debug)]
pub struct Signals {
    /// SIGINT's stream.
    interrupt: tokio::signal::unix::Signal,
    /// SIGTERM's stream.
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    /// Installs both handlers. Needs a tokio runtime with its I/O driver enabled.
    pub fn install() -> Result<Self, SignalError> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |signal_kind, which| {
            signal(signal_kind).map_err(|source| SignalError {
                signal: which,
                source,
            })
        };
        Ok(Self {
            interrupt: listen(SignalKind::interrupt(), Signal::Interrupt)?,
            terminate: listen(SignalKind::terminate(), Signal::Terminate)?,
        })
    }

    /// The next SIGINT or SIGTERM.
    pub async fn recv(&mut self) -> Signal {
        tokio::select! {
            Some(()) = self.interrupt.recv() => Signal::Interrupt,
            Some(()) = self.terminate.recv() => Signal::Terminate,
            // Both streams end only when the runtime is going away; nothing is left to stop.
            else => std::future::pending().await,
        }
    }
}

/// Resolves at the first SIGINT or SIGTERM: the usual `shutdown` future of a daemon's `run`.
/// Handlers are installed on the first poll; install [`Signals`] up front instead where a
/// signal must not be missed between start-up and the first await.
#[cfg(unix)]
pub async fn signalled() -> Result<Signal, SignalError> {
    Ok(Signals::install()?.recv().await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_ends_on_cancel_drains_within_the_bound() {
        let shutdown = Shutdown::new();
        let token = shutdown.token();
        let handle = shutdown.spawn("listener", async move {
            token.cancelled().await;
            "stopped"
        });
        assert_eq!(shutdown.running(), ["listener"]);
        assert!(!shutdown.is_cancelled());

        let took = shutdown.drain(Duration::from_secs(10)).await.unwrap();
        assert!(took < Duration::from_secs(10));
        assert!(shutdown.is_cancelled());
        assert_eq!(handle.await.unwrap(), "stopped");
        assert!(shutdown.running().is_empty());
    }

    #[tokio::test]
    async fn a_task_that_ignores_cancel_is_named_when_the_drain_times_out() {
        let shutdown = Shutdown::new();
        let token = shutdown.token();
        shutdown.spawn("polite", async move { token.cancelled().await });
        shutdown.spawn("stubborn", std::future::pending::<()>());
        shutdown.spawn("stubborn", std::future::pending::<()>());

        let bound = Duration::from_millis(50);
        let err = shutdown.drain(bound).await.unwrap_err();
        assert_eq!(
            err,
            DrainTimedOut {
                bound,
                still_running: vec!["stubborn".into(), "stubborn".into()],
            }
        );
        assert_eq!(
            err.to_string(),
            "shutdown did not finish within 50ms: still running: stubborn, stubborn; they ignore \
             cancellation or are stuck, and end with the process"
        );
    }

    #[tokio::test]
    async fn finished_panicked_and_aborted_tasks_leave_the_registry() {
        let shutdown = Shutdown::new();
        let done = shutdown.spawn("done", async {});
        let panicked = shutdown.spawn("panicked", async { panic!("on purpose") });
        let aborted = shutdown.spawn("aborted", std::future::pending::<()>());
        assert_eq!(shutdown.running(), ["aborted", "done", "panicked"]);

        done.await.unwrap();
        assert!(panicked.await.unwrap_err().is_panic());
        aborted.abort();
        assert!(aborted.await.unwrap_err().is_cancelled());
        assert!(shutdown.running().is_empty());
        shutdown.drain(Duration::from_secs(10)).await.unwrap();
    }

    #[tokio::test]
    async fn clones_drain_together_and_late_tasks_see_the_cancel() {
        let shutdown = Shutdown::new();
        let other = shutdown.clone();
        let token = other.token();
        other.spawn("from a clone", async move { token.cancelled().await });
        shutdown.drain(Duration::from_secs(10)).await.unwrap();
        assert!(other.running().is_empty());

        let token = other.token();
        let late = other.spawn("late", async move { token.is_cancelled() });
        assert!(late.await.unwrap());
        shutdown.drain(Duration::from_secs(10)).await.unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn sigterm_is_received_as_terminate() {
        let mut signals = Signals::install().unwrap();
        // The handler is installed, so SIGTERM reaches it instead of ending the test process.
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let got = tokio::time::timeout(Duration::from_secs(10), signals.recv())
            .await
            .unwrap();
        assert_eq!(got, Signal::Terminate);
        assert_eq!(got.to_string(), "SIGTERM");
    }
}
