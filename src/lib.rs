//! # tapgate
//!
//! tapgate lets an API be priced in US dollars and paid over Lightning through L402, whether
//! the paying agent holds sats or a USD stablecoin issued as a Taproot Asset.
//!
//! ## Modules
//!
//! | module | owns | must not |
//! | --- | --- | --- |
//! | [`l402`] | the protocol: identifiers, macaroons (V2 binary, go-macaroon's HMAC chain, byte-identical with Aperture, pymacaroons and macaroon.js), caveats with narrowing rules, the `WWW-Authenticate`/`Authorization` headers, verification from a header string to a typed [`l402::Decision`] | do I/O |
//! | [`pricing`] | US dollars, asset units, msat and tapd's `FixedPoint` rates, converted with tapd's truncating rules; the one `units_covering`; `price_call`, a call's USD price as whole units (rounded up) and msat | read a clock or a node |
//! | `lightning` | narrow traits in tapgate's types, and the lnd, tapd and price-oracle adapters over gRPC (feature `node`) | let a proto type out of an adapter |
//! | [`store`] | root keys, the settlement cursor and settled hashes, the token ledger (revenue), prepaid balances, idempotency keys, free-call meters and the meters of tokens' caps (charged with the balance in one step): one trait per kind of state, an in-memory, a SQLite and (feature `postgres`) a PostgreSQL store, one conformance suite | log a key |
//! | [`config`] | layered settings (defaults < `config/tapgate.toml` < `TAPGATE_*` < CLI), including the `[[services]]` catalogue and `[gateway]` sockets, each refusal naming the key | connect to anything |
//! | `network_file` | the `network.toml` type that simnet and the regtest script write (feature `node`) | |
//! | `app` | the one wiring place: settings or a `network.toml` to node adapters, and `app::gateway::build` (the seller node, store, rate source, catalogue, gate and server); `BuildError` for start-up problems (feature `node`) | import `simnet` |
//! | [`clock`] | where "now" comes from: `Clock`, `SystemClock`, `ManualClock` for tests | sleep |
//! | [`shutdown`] | stopping cleanly: one cancellation token, named tasks, a drain with a bound, SIGINT/SIGTERM | decide what a task does when cancelled |
//! | [`mint`] | mints a token for a payment hash, verifies credentials, revokes; `mint::rates`, the per-asset rate cache (one RFQ in flight, never a quote about to expire); `mint::challenger`, a dollar price to a sats or asset invoice at the cached rate; `mint::tracker`, settlements from lnd's resumable stream with one direct lookup for a token paid first; `mint::gate`, the `Authenticator` the gateway sees (402, 401 with a reason, prepaid debits) | read the system clock (time is injected) |
//! | [`gateway`] | `matching` (host and path to service, pure); with `node`: `server` (HTTP/1.1 + h2c, `run(listener, gateway, shutdown)`), `discovery` (the manifest and `/l402/quote`), `response` (402/401/503/502/504 and gRPC answers), `proxy` (a client connection's own upstream connection for HTTP/1.1, hyper-util's pooled client otherwise, streaming both ways), `sample` (the built-in sample upstream) | touch a store or a node (only the `Authenticator`) |
//! | `metrics` | the admin port's Prometheus counters (requests, challenges, payments in USD/sats/units by rail, debits, refusals by reason) | label anything secret |
//! | `admin` | the admin port: the macaroon-authenticated admin gRPC service (`proto/tapgate/admin.proto`), `/metrics`, `/healthz`, `/readyz` | expose a secret |
//! | [`client`] | the buyer's side: a `402` challenge read (`L402`/`LSAT`, `macaroon=`/`token=`, tapgate's JSON body), its invoice decoded, the worst case in dollars with routing fees, budgets per call, per day and in total with a host allowlist, and (feature `sqlite`) the ledger that reserves before paying | import `simnet`, print a token or pay what the budget has not reserved |
//! | [`cli`] | the `tapgate` command, one thin file per command (`src/cli/`): `config check`, `token inspect`, `attenuate`, `mint`, `verify`, `revoke` (over [`mint`]), `price convert`, and with the `node` feature `serve`, `simnet` and `node …` | hold logic the library lacks |
//! | `check` | `tapgate serve --check`: settings, store, the seller's lnd and tapd, the assets sold and the listeners, each checked without serving (feature `node`) | start the settlement stream, mint or serve |
//! | `demo` | `tapgate demo`'s scenario over any `network.toml`: the gateway in-process with the sample API and three services, alice (stablecoin), bob (sats) and a sub-agent on an attenuated token, each step timed (features `node`, `sqlite`) | import `simnet`, print |
//! | [`simnet`] | a simulated regtest network of lnd + tapd nodes, for tests and demos (`tapgate simnet` starts one) | be imported by production code |
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

#[cfg(feature = "node")]
pub mod admin;
#[cfg(feature = "node")]
pub mod app;
#[cfg(feature = "node")]
pub mod check;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
#[cfg(all(feature = "node", feature = "sqlite"))]
pub mod demo;
pub mod gateway;
pub mod l402;
#[cfg(feature = "node")]
pub mod lightning;
#[cfg(feature = "node")]
pub mod metrics;
pub mod mint;
#[cfg(feature = "node")]
pub mod network_file;
pub mod pricing;
pub mod shutdown;
pub mod simnet;
pub mod store;
