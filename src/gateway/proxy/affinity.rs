//! One client connection's own HTTP/1.1 connection to its upstream: the proxy's fast path.
//!
//! A buyer's keep-alive connection that sends request after request to one service gets one
//! upstream connection of its own, held in its [`Affinity`] and reused for each of its
//! requests, the way HAProxy pins a server connection to the client session that opened it
//! (`http-reuse never`, HAProxy 2.8 configuration manual, section 4.2). Each request then skips
//! the shared pool's checkout (a lock, a key built from the URI, a channel per checkout), which
//! measured as about a sixth of the stack's CPU per request (benches/load/README.md).
//!
//! This module owns the slot's states (empty, idle, lent out) and the dial; [`super::Proxy`]
//! decides when to use it. A request that finds the slot lent out (which an HTTP/1.1 client
//! connection, whose requests come one at a time, never does) goes through the shared pool
//! instead. An idle upstream connection is closed by [`Affinity::release_idle`], which the
//! gateway's server calls on a timer, so a buyer's idle keep-alive connection does not hold an
//! upstream connection for long.
//!
//! It must not rewrite requests (the proxy does before it gets them) and must not log them.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::header::{HeaderValue, InvalidHeaderValue};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{OutBody, ProxyError, TimeoutStage};
use crate::config::Upstream;

/// How long an upstream connection may sit unused in a slot before
/// [`Affinity::release_idle`] closes it; the same as the shared pool's idle limit.
pub const IDLE: Duration = super::POOL_IDLE;

/// A client connection's upstream connection, if it has one. Create one per client connection
/// with [`Affinity::default`]; dropping it closes the upstream connection once its exchange in
/// flight (if any) ends.
#[derive(Default)]
pub struct Affinity {
    slot: Mutex<Slot>,
}

impl std::fmt::Debug for Affinity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match *self.lock() {
            Slot::Empty => "empty",
            Slot::Idle { .. } => "idle",
            Slot::Lent => "lent",
        };
        f.debug_struct("Affinity").field("slot", &state).finish()
    }
}

#[derive(Default)]
enum Slot {
    /// No upstream connection.
    #[default]
    Empty,
    /// A connection to `upstream`, last used at `since`.
    Idle {
        upstream: Known,
        sender: SendRequest<OutBody>,
        since: Instant,
    },
    /// Lent to a request in flight (see [`Lease`]).
    Lent,
}

/// The upstream a slot's connection goes to: its authority as the upstream's settings write
/// it, and the `Host` header naming it. Kept with the connection and handed from request to
/// request, so that neither is built again for each.
struct Known {
    authority: String,
    host: HeaderValue,
}

/// What [`Affinity::checkout`] hands a request.
pub(super) enum Checkout<'a> {
    /// The slot is the request's, with its connection to the same upstream if it had one
    /// (`None`: dial one).
    Own(Lease<'a>, Option<SendRequest<OutBody>>),
    /// Another request holds the slot: use the shared pool.
    Shared,
}

/// The slot, lent to one request. Dropped without [`Lease::give_back`] (an error, a timeout,
/// the request abandoned), it leaves the slot empty, so the connection it may have been using
/// mid-exchange is never handed out again.
pub(super) struct Lease<'a> {
    affinity: &'a Affinity,
    /// The slot's upstream, if it was the request's.
    known: Option<Known>,
}

impl Affinity {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        // The slot is replaced whole under the lock, so a poisoned one is still consistent.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lends the slot to a request for `upstream`, with its idle connection if that goes to
    /// the same upstream and is still open.
    pub(super) fn checkout(&self, upstream: &Upstream) -> Checkout<'_> {
        let mut slot = self.lock();
        match std::mem::replace(&mut *slot, Slot::Lent) {
            Slot::Lent => Checkout::Shared,
            Slot::Empty => Checkout::Own(
                Lease {
                    affinity: self,
                    known: None,
                },
                None,
            ),
            Slot::Idle {
                upstream: known,
                sender,
                ..
            } => {
                let same = known.authority == upstream.authority();
                let reuse = same && !sender.is_closed();
                Checkout::Own(
                    Lease {
                        affinity: self,
                        known: same.then_some(known),
                    },
                    reuse.then_some(sender),
                )
            }
        }
    }

    /// Closes the upstream connection if it has been idle for `idle` or longer; `true` if it
    /// did. The gateway calls it on a timer for each client connection.
    pub fn release_idle(&self, idle: Duration) -> bool {
        let mut slot = self.lock();
        if let Slot::Idle { since, .. } = &*slot
            && since.elapsed() >= idle
        {
            *slot = Slot::Empty;
            return true;
        }
        false
    }

    /// Whether the slot holds an upstream connection that is not in use (for tests).
    pub fn is_idle(&self) -> bool {
        matches!(*self.lock(), Slot::Idle { .. })
    }
}

impl Lease<'_> {
    /// The `Host` header for `upstream`: the slot's, if it held a connection to it (no copy
    /// is made), else made now and kept with the lease.
    pub(super) fn host(&mut self, upstream: &Upstream) -> Result<HeaderValue, InvalidHeaderValue> {
        let known = match self.known.take() {
            Some(known) => known,
            None => Known {
                authority: upstream.authority().to_owned(),
                host: HeaderValue::from_str(upstream.authority())?,
            },
        };
        let host = known.host.clone();
        self.known = Some(known);
        Ok(host)
    }

    /// Puts `sender`, a connection to `upstream` whose exchange has its response headers,
    /// back into the slot for the client connection's next request.
    pub(super) fn give_back(mut self, upstream: &Upstream, sender: SendRequest<OutBody>) {
        let known = match self.known.take() {
            Some(known) => Some(known),
            None => HeaderValue::from_str(upstream.authority())
                .ok()
                .map(|host| Known {
                    authority: upstream.authority().to_owned(),
                    host,
                }),
        };
        let mut slot = self.affinity.lock();
        *slot = match known {
            Some(known) => Slot::Idle {
                upstream: known,
                sender,
                since: Instant::now(),
            },
            // An authority that is no header value never reaches an upstream; nothing to keep.
            None => Slot::Empty,
        };
        drop(slot);
        // The slot now holds what it should; dropping the lease must not empty it.
        std::mem::forget(self);
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        *self.affinity.lock() = Slot::Empty;
    }
}

/// A new HTTP/1.1 connection to `upstream`, its TCP connect bounded by `connect`. The
/// connection's task is spawned on the current runtime and ends when the connection closes
/// (the upstream closes it, or its [`SendRequest`] is dropped while idle).
pub(super) async fn dial(
    upstream: &Upstream,
    connect: Duration,
) -> Result<SendRequest<OutBody>, ProxyError> {
    let address = (upstream.host(), upstream.port().unwrap_or(80));
    let tcp = match tokio::time::timeout(connect, TcpStream::connect(address)).await {
        Err(_elapsed) => {
            return Err(ProxyError::Timeout {
                upstream: upstream.as_str().to_owned(),
                stage: TimeoutStage::Connect,
                after: connect,
            });
        }
        Ok(Err(e)) => {
            return Err(ProxyError::Connect {
                upstream: upstream.as_str().to_owned(),
                source: Box::new(e),
            });
        }
        Ok(Ok(tcp)) => tcp,
    };
    // Small requests should leave at once, not wait for Nagle.
    let _ = tcp.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| ProxyError::Upstream {
            upstream: upstream.as_str().to_owned(),
            source: Box::new(e),
        })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}
