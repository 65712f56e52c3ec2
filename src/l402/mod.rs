//! The L402 protocol, and nothing but the protocol: no I/O, no clock, no store.
//!
//! * [`identifier`]: the 66-byte token identifier (`version ‖ payment_hash ‖ token_id`).
//! * [`macaroon`]: macaroon V2 binary encoding and go-macaroon's HMAC-SHA256 chain.
//! * [`caveat`]: tapgate's and Aperture's first-party caveats and the narrowing rules.
//! * [`header`]: `WWW-Authenticate` challenges and `Authorization` credentials.
//! * [`verify`]: from a parsed credential and a root key to a typed access decision.
//!
//! Everything here is pure computation over bytes and strings; callers bring the root key
//! (from a store) and the request context (including the current time). Every refusal is a
//! typed reason: nothing in this module panics on untrusted input.

pub mod caveat;
pub mod header;
pub mod identifier;
pub mod macaroon;
pub mod secret;
pub mod verify;

pub use caveat::{Caveat, CaveatError, Restrictions};
pub use header::{Challenge, Credential, HeaderError};
pub use identifier::{IdHashing, Identifier, IdentifierError, PaymentHash, TokenId};
pub use macaroon::{Macaroon, MacaroonError, MacaroonRef};
pub use secret::{Preimage, RootKey};
pub use verify::{Decision, RequestContext, VerifyError};
