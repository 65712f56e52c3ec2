//! What one client connection keeps from request to request.
//!
//! A buyer's keep-alive connection sends request after request from one address, usually
//! with one token. What depends only on those is worked out once per connection, or once per
//! token on it, instead of once per request:
//! - its own upstream connection ([`Affinity`]);
//! - the last credential it proved ([`SignatureMemo`]: the same `Authorization` value under
//!   the same root key is not proven again; every other check runs);
//! - its address as `X-Forwarded-For` writes it;
//! - the `Tapgate-Receipt` and `X-Tapgate-Token-Id` values of its last paid call, reused for
//!   the next call whose [`Pass`] is equal (the same token bought outright; a prepaid debit's
//!   balance changes with each call, so those are written each time).
//!
//! It must not decide anything: [`super::server`] and the mint do, with or without it.

use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};

use http::header::HeaderValue;

use super::proxy::affinity::Affinity;
use super::proxy::headers;
use super::response;
use crate::l402::TokenId;
use crate::l402::verify::SignatureMemo;
use crate::mint::gate::Pass;

/// One client connection's state. Dropping it closes its upstream connection and zeroizes
/// its remembered credential.
#[derive(Debug)]
pub struct Connection {
    /// The buyer's address.
    pub peer: SocketAddr,
    /// Its own upstream connection (HTTP/1.1 clients only; see [`Affinity`]).
    pub own: Affinity,
    /// The last credential proven on it.
    pub memo: Mutex<SignatureMemo>,
    /// `peer` as `X-Forwarded-For` writes it with no earlier proxy (`None` if it cannot be a
    /// header value, which no address is; the proxy then writes it per request).
    pub forwarded_for: Option<HeaderValue>,
    /// The last paid call's header values, with the pass they were written for.
    paid: Mutex<Option<(Pass, PaidHeaders)>>,
}

/// The header values a paid call gets from its [`Pass`] (each a reference-counted copy).
#[derive(Clone, Debug)]
pub struct PaidHeaders {
    /// `Tapgate-Receipt`, to the buyer.
    pub receipt: HeaderValue,
    /// `X-Tapgate-Token-Id`, to the upstream.
    pub token_id: HeaderValue,
}

impl Connection {
    /// The state of a new connection from `peer`.
    pub fn new(peer: SocketAddr) -> Self {
        Self {
            peer,
            own: Affinity::default(),
            memo: Mutex::new(SignatureMemo::default()),
            forwarded_for: headers::forwarded_for(&http::HeaderMap::new(), peer.ip()).ok(),
            paid: Mutex::new(None),
        }
    }

    /// The header values for `pass`: the last paid call's if its pass was equal, else written
    /// now (and kept, for a pass with no balance).
    pub fn paid_headers(&self, pass: &Pass) -> PaidHeaders {
        let mut last = self.paid.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((kept, h)) = last.as_ref()
            && kept == pass
        {
            return h.clone();
        }
        let made = PaidHeaders {
            receipt: response::receipt_value(pass),
            token_id: token_id_value(&pass.token_id),
        };
        if pass.balance_usd.is_none() {
            *last = Some((pass.clone(), made.clone()));
        }
        made
    }
}

/// The token id in hex, formatted on the stack and copied once into the header.
pub fn token_id_value(id: &TokenId) -> HeaderValue {
    let mut hex = [0u8; 64];
    match hex::encode_to_slice(id.0, &mut hex) {
        Ok(()) => {
            HeaderValue::from_bytes(&hex).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
        }
        Err(_) => HeaderValue::from_static("invalid"),
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::store::Rail;

    fn pass(token: u8, balance: Option<&str>) -> Pass {
        Pass {
            token_id: TokenId([token; 32]),
            tier: 0,
            capabilities: None,
            rail: Some(Rail::Sats),
            charged_usd: if balance.is_some() {
                "0.002".parse().unwrap()
            } else {
                Decimal::ZERO
            },
            balance_usd: balance.map(|b| b.parse().unwrap()),
            token_price_usd: balance.is_none().then(|| "0.01".parse().unwrap()),
            replayed: false,
        }
    }

    #[test]
    fn each_pass_gets_its_own_values_whatever_came_before() {
        let conn = Connection::new("192.0.2.7:4000".parse().unwrap());
        assert_eq!(conn.forwarded_for.as_ref().unwrap(), "192.0.2.7");
        let passes = [
            pass(1, None),
            pass(1, None),
            pass(2, None),
            pass(1, Some("0.998")),
            pass(1, Some("0.996")),
            pass(1, None),
        ];
        for p in &passes {
            let h = conn.paid_headers(p);
            assert_eq!(h.receipt, response::receipt_value(p));
            assert_eq!(h.token_id, hex::encode(p.token_id.0).as_str());
        }
    }

    #[test]
    fn a_token_bought_outright_is_kept_and_a_balance_is_not() {
        let conn = Connection::new("[2001:db8::1]:4000".parse().unwrap());
        conn.paid_headers(&pass(1, None));
        assert!(conn.paid.lock().unwrap().is_some());
        *conn.paid.lock().unwrap() = None;
        conn.paid_headers(&pass(1, Some("0.5")));
        assert!(conn.paid.lock().unwrap().is_none());
    }
}
