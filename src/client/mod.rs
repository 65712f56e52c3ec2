//! The buyer's side of L402: paying a `402` challenge in the stablecoin or in sats, under a
//! budget in dollars.
//!
//! This module owns reading a challenge ([`challenge`]), decoding its invoice (`invoice`,
//! feature `node`), the worst-case cost in dollars with routing fees ([`cost`]), the budget
//! rules ([`budget`]) and the local ledger of what was spent (`ledger`, feature `sqlite`). It
//! must not import `simnet`, print or log a token or preimage, or pay anything the budget has
//! not reserved first.
//!
//! | file | owns | I/O |
//! |---|---|---|
//! | [`challenge`] | `WWW-Authenticate` values and tapgate's JSON body to [`challenge::PaymentRequired`] | none |
//! | `invoice` | BOLT 11 to amount, payment hash and expiry (`lightning-invoice`) | none |
//! | [`cost`] | the worst case in dollars under a cap, the fee limit that keeps it, the cheaper rail | none |
//! | [`budget`] | caps per call, per day and in total; the host allowlist | none |
//! | `ledger` | reservations, settlements and unknown outcomes in SQLite; the token cache | SQLite |
//! | `owner` | which process holds a reservation, and whether it still runs | `/proc` |
//! | `http` | the HTTP exchange: send, on `402` pay and retry once, reuse cached tokens per origin and service, top up a prepaid balance that ran out | HTTP (plain `http://`) |
//! | `payer` | one challenge paid: decode, price, reserve, pay, settle or release or keep unknown, cache the token | the node (through `Payments` and `Rates`), the ledger |

pub mod budget;
pub mod challenge;
pub mod cost;
#[cfg(all(feature = "node", feature = "sqlite"))]
pub mod http;
#[cfg(feature = "node")]
pub mod invoice;
#[cfg(feature = "sqlite")]
pub mod ledger;
#[cfg(feature = "sqlite")]
pub mod owner;
#[cfg(all(feature = "node", feature = "sqlite"))]
pub mod payer;
