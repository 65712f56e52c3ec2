//! The simulated regtest network: four nodes (`alice`, `bob`, `edge`, `merchant`) that behave
//! like lnd + tapd closely enough to test tapgate's payment paths, including the failures.
//!
//! [`model`] is the network's state machine: pure, no I/O, no clock. The gRPC servers that
//! expose it as lnd, tapd and a price oracle sit beside it and only translate.

#[cfg(feature = "node")]
pub mod auth;
// The model signs its invoices with secp256k1 (`lightning-invoice`, `bitcoin`), which come
// with the `node` feature; the fuzz build has neither.
#[cfg(feature = "node")]
pub mod model;
#[cfg(feature = "node")]
pub mod permissions;
#[cfg(feature = "node")]
pub mod rest;
#[cfg(feature = "node")]
pub mod run;
#[cfg(feature = "node")]
pub mod server;
#[cfg(feature = "node")]
pub mod state_dir;
#[cfg(feature = "node")]
pub mod tls;
