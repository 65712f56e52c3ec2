//! # tapgate
//!
//! tapgate lets an API be priced in US dollars and paid over Lightning through L402, whether
//! the paying agent holds sats or a USD stablecoin issued as a Taproot Asset.
//!
//! This release carries the foundation:
//!
//! * [`l402`]: the protocol, without I/O. Identifiers, macaroons (V2 binary, go-macaroon's
//!   HMAC chain, byte-identical with Aperture, pymacaroons and macaroon.js), caveats with
//!   narrowing rules, the `WWW-Authenticate`/`Authorization` headers, and verification from a
//!   header string to a typed [`l402::Decision`].
//! * [`store`]: where root keys live; one trait, an in-memory store and a SQLite store, both
//!   held to one conformance suite.
//! * [`mint`]: mints a token for a payment hash (fresh token id, root key in the store,
//!   caveats), verifies credentials against the store at a time the caller passes, revokes.
//! * [`config`]: layered settings (defaults < `config/tapgate.toml` < `TAPGATE_*` < CLI).
//! * [`cli`]: the `tapgate` command, one thin file per command (`src/cli/`): `config check`,
//!   `token inspect|attenuate|mint|verify|revoke` (over [`mint`]), `price convert`, and with the
//!   `node` feature `simnet` and `node …`.
//!
//! ## The request flow this is built for
//! A request without a token gets `402` and `WWW-Authenticate: L402 macaroon="…",
//! invoice="…"`. The macaroon's identifier commits to the invoice's payment hash and to a fresh
//! token id whose root key sits in the store. The agent pays, learns the preimage and retries
//! with `Authorization: L402 <macaroon>:<preimage>`. Verification is local arithmetic:
//!
//! ```
//! use tapgate::l402::{verify::verify_header, Identifier, Macaroon, Preimage, RequestContext, RootKey, TokenId};
//!
//! let root_key = RootKey::generate().unwrap();
//! let preimage = Preimage::from_bytes([7; 32]); // learnt by paying the invoice
//! let id = Identifier::new(preimage.payment_hash(), TokenId::generate().unwrap());
//! let mut token = Macaroon::new(&root_key, &id.encode(), "tapgate");
//! token.add_first_party_caveat(b"services=weather:0").unwrap();
//! // The agent narrows it for a sub-agent, without asking the server:
//! token.add_first_party_caveat(b"weather_methods=GET").unwrap();
//!
//! let header = format!("L402 {}:{}", token.to_base64(), hex::encode(preimage.expose()));
//! let ctx = RequestContext { service: "weather", method: "GET", path: "/today", now: 1_700_000_000 };
//! let decision = verify_header(&[&header], &ctx, |_| Some(root_key.clone())).unwrap();
//! assert_eq!(decision.tier, 0);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod l402;
#[cfg(feature = "node")]
pub mod lightning;
pub mod mint;
#[cfg(feature = "node")]
pub mod network_file;
#[cfg(feature = "node")]
pub mod nodes;
pub mod pricing;
pub mod simnet;
pub mod store;
