//! The gateway: the HTTP front that sells the configured services (`[[services]]`).
//!
//! [`matching`] maps a request's host and path to the service that sells it (pure);
//! `server` accepts HTTP/1.1 and HTTP/2 and answers each request; `discovery` builds the
//! `/.well-known/l402.json` manifest and checks `/l402/quote` bundles; `response` builds the
//! 402/401/503/502/504 answers; `connection` holds what one client connection keeps from
//! request to request (its upstream connection, its last verified credential, its
//! `X-Forwarded-For` value, its last receipt); `proxy` forwards paid requests upstream; `sample` is the
//! built-in sample upstream for first runs; `workers` runs `server` on one thread per worker,
//! each with its own runtime, socket and upstream connections. The server sees payment only through the mint's
//! authenticator seam ([`crate::mint::gate::Authenticator`]), never the store or a node.

#[cfg(feature = "node")]
pub mod connection;
#[cfg(feature = "node")]
pub mod discovery;
pub mod matching;
#[cfg(feature = "node")]
pub mod proxy;
#[cfg(feature = "node")]
pub mod response;
#[cfg(feature = "node")]
pub mod sample;
#[cfg(feature = "node")]
pub mod server;
#[cfg(feature = "node")]
pub mod workers;

pub use matching::{PathPattern, PatternError, match_service};
