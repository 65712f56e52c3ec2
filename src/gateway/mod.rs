//! The gateway: the HTTP front that sells the configured services (`[[services]]`).
//!
//! Today it owns only [`matching`], the pure function from a request's host and path to the
//! service that sells it. The server (`run(listener, shutdown)`), the proxy, the 402/401/502
//! response bodies and metering will join it here; they will see the mint only through an
//! authenticator seam, never the store or a node directly.

pub mod matching;
#[cfg(feature = "node")]
pub mod proxy;
#[cfg(feature = "node")]
pub mod sample;

pub use matching::{PathPattern, PatternError, match_service};
