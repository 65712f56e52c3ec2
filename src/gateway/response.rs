//! The gateway's own answers: `402` and `401` with a challenge and a JSON body a program can act
//! on, `503` while the node cannot be reached, `502`/`504` for upstream failures, and the same
//! challenges for gRPC clients in gRPC's own terms.
//!
//! Bodies follow one envelope, `{"error": {"code", "message", …}}` (the discovery spec's error
//! shape, lightninglabs/L402 `discovery-spec.md` §6.5), with the challenge's details beside it.
//! This module builds responses from values; it must not decide anything.

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use serde_json::json;

use super::proxy::Body;
use crate::mint::challenger::Offer;
use crate::mint::gate::{Issued, Pass, Reason};

/// Where the discovery manifest is (`Link: <…>; rel="l402-manifest"` on every challenge).
pub const MANIFEST_PATH: &str = "/.well-known/l402.json";

/// The quote endpoint.
pub const QUOTE_PATH: &str = "/l402/quote";

/// The receipt header on every paid response.
pub const RECEIPT: HeaderName = HeaderName::from_static("tapgate-receipt");

/// The remaining prepaid balance, dollars, on every prepaid response.
pub const BALANCE: HeaderName = HeaderName::from_static("tapgate-balance-usd");

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A JSON response.
pub fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// An error envelope.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json(
        status,
        &json!({ "error": { "code": code, "message": message } }),
    )
}

/// CORS headers for the discovery manifest, the quote endpoint and challenges: a browser agent
/// must be able to read the challenge (as Aperture allows, `proxy/proxy.go` `addCorsHeaders`).
pub fn cors(r: &mut Response<Body>) {
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, Idempotency-Key"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("WWW-Authenticate, Link, Tapgate-Receipt, Tapgate-Balance-Usd"),
    );
}

/// The challenge's JSON: everything a program needs to decide and pay.
pub fn challenge_body(issued: &Issued) -> serde_json::Value {
    let o: &Offer = &issued.offer;
    json!({
        "service": o.service,
        "tier": o.tier,
        "price_usd": o.price_usd.to_string(),
        "charge_usd": o.charge_usd.to_string(),
        "rail": o.rail,
        "msat": o.msat,
        "asset": o.asset,
        "quote": o.quote,
        "invoice": o.invoice,
        "payment_hash": hex::encode(o.payment_hash.0),
        "invoice_expires_at": o.invoice_expires_at,
        "macaroon": issued.macaroon.to_base64(),
        "token": {
            "id": issued.token_id.to_string(),
            "lifetime_secs": issued.token_lifetime_secs,
            "expires_at": issued.token_expires_at,
        },
        "prepaid": o.prepaid_usd.map(|b| json!({
            "balance_usd": b.to_string(),
            "price_per_call_usd": o.price_usd.to_string(),
        })),
    })
}

/// A `402` (no token, or a balance to top up) or `401` (a refused token) with a fresh
/// challenge. `grpc`: answer as Aperture answers a gRPC client.
pub fn challenge(
    reason: Option<Reason>,
    detail: &str,
    issued: &Issued,
    grpc: bool,
) -> Response<Body> {
    let status = match reason {
        None | Some(Reason::BalanceExhausted) => StatusCode::PAYMENT_REQUIRED,
        Some(_) => StatusCode::UNAUTHORIZED,
    };
    let www = issued.www_authenticate();
    let mut r = if grpc {
        grpc_status(
            13,
            if status == StatusCode::PAYMENT_REQUIRED {
                "payment required"
            } else {
                reason.map_or("payment required", Reason::as_str)
            },
        )
    } else {
        let code = match reason {
            None => "payment_required",
            Some(r) => r.as_str(),
        };
        let mut body = challenge_body(issued);
        if let Some(map) = body.as_object_mut() {
            map.insert(
                "error".into(),
                json!({ "code": code, "message": detail, "reason": reason }),
            );
        }
        json(status, &body)
    };
    if let Ok(v) = HeaderValue::from_str(&www) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r.headers_mut().insert(
        header::LINK,
        HeaderValue::from_static("</.well-known/l402.json>; rel=\"l402-manifest\""),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    cors(&mut r);
    r
}

/// A gRPC "trailers-only" answer: HTTP 200 with `grpc-status` and `grpc-message` in the
/// headers and no body, as Aperture's `sendDirectResponse` does for gRPC clients
/// (lightninglabs/aperture `proxy/proxy.go`, v0.3.x), with the gRPC protocol's
/// percent-encoding of the message.
pub fn grpc_status(code: u8, message: &str) -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert(
        HeaderName::from_static("grpc-status"),
        HeaderValue::from(u16::from(code)),
    );
    let encoded: String = message
        .bytes()
        .map(|b| {
            if (0x20..=0x7e).contains(&b) && b != b'%' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&encoded) {
        h.insert(HeaderName::from_static("grpc-message"), v);
    }
    r
}

/// A `401` for a valid token whose invoice is not settled yet: no new invoice (it would invite
/// paying twice), a `Retry-After` instead.
pub fn not_settled(detail: &str, grpc: bool) -> Response<Body> {
    let mut r = if grpc {
        grpc_status(14, detail)
    } else {
        json(
            StatusCode::UNAUTHORIZED,
            &json!({ "error": { "code": "unpaid", "reason": "unpaid", "message": detail } }),
        )
    };
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("L402 error=\"unpaid\""),
    );
    r
}

/// A `503` with `Retry-After`: the node or the store cannot be reached now.
pub fn unavailable(code: &str, detail: &str, grpc: bool) -> Response<Body> {
    let mut r = if grpc {
        grpc_status(14, detail)
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "error": { "code": code, "message": detail, "retry_after_secs": 5 } }),
        )
    };
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

/// The receipt on a paid response: `token=<id>; charged_usd=<d>[; token_price_usd=<d>];
/// rail=<sats|asset>[; balance_usd=<d>]` (the token's price for a token bought outright, the
/// balance for a prepaid one).
pub fn receipt(pass: &Pass) -> String {
    let mut s = String::with_capacity(160);
    // Writing to a String cannot fail.
    let _ = write_receipt(&mut s, pass);
    s
}

/// [`receipt`] as a header value, written on the stack and copied once into the header (a
/// paid call's only allocation for it). A value that is not a valid header cannot be written
/// from these parts; it would read `invalid`.
pub fn receipt_value(pass: &Pass) -> HeaderValue {
    let mut buf = StackText::<256>::default();
    let bytes = match write_receipt(&mut buf, pass) {
        Ok(()) => HeaderValue::from_bytes(buf.as_bytes()),
        // Longer than the buffer (a decimal of 28 digits, say): on the heap.
        Err(_) => HeaderValue::from_str(&receipt(pass)),
    };
    bytes.unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Text written into a fixed buffer; a write past its end fails.
struct StackText<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Default for StackText<N> {
    fn default() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> StackText<N> {
    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl<const N: usize> std::fmt::Write for StackText<N> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(std::fmt::Error)?;
        let slot = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn write_receipt(s: &mut impl std::fmt::Write, pass: &Pass) -> std::fmt::Result {
    write!(
        s,
        "token={}; charged_usd={}",
        pass.token_id, pass.charged_usd
    )?;
    if let Some(p) = pass.token_price_usd {
        write!(s, "; token_price_usd={p}")?;
    }
    if let Some(rail) = pass.rail {
        s.write_str(match rail {
            crate::store::Rail::Sats => "; rail=sats",
            crate::store::Rail::Asset => "; rail=asset",
        })?;
    }
    if let Some(b) = pass.balance_usd {
        write!(s, "; balance_usd={b}")?;
    }
    if pass.replayed {
        s.write_str("; replayed=true")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_are_percent_encoded() {
        let r = grpc_status(13, "payment required: 100%");
        assert_eq!(r.headers()["grpc-status"], "13");
        assert_eq!(r.headers()["grpc-message"], "payment required: 100%25");
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[test]
    fn receipts_name_token_charge_rail_and_balance() {
        let pass = Pass {
            token_id: crate::l402::TokenId([0xab; 32]),
            tier: 0,
            capabilities: None,
            rail: Some(crate::store::Rail::Asset),
            charged_usd: rust_decimal::Decimal::new(2, 2),
            balance_usd: Some(rust_decimal::Decimal::new(98, 2)),
            token_price_usd: None,
            replayed: false,
        };
        let want = format!(
            "token={}; charged_usd=0.02; rail=asset; balance_usd=0.98",
            "ab".repeat(32)
        );
        assert_eq!(receipt(&pass), want);
        assert_eq!(receipt_value(&pass), want.as_str());
        let long = Pass {
            balance_usd: Some(rust_decimal::Decimal::MAX),
            token_price_usd: Some(rust_decimal::Decimal::MAX),
            replayed: true,
            ..pass
        };
        assert_eq!(receipt_value(&long), receipt(&long).as_str());
        // A write past the stack buffer fails (and the heap takes over), never truncates.
        let mut small = StackText::<4>::default();
        assert!(std::fmt::Write::write_str(&mut small, "1234").is_ok());
        assert!(std::fmt::Write::write_str(&mut small, "5").is_err());
        assert_eq!(small.as_bytes(), b"1234");
    }
}
