//! The gateway's HTTP server: accepts HTTP/1.1 and HTTP/2 (h2c) connections, answers discovery
//! and quotes, matches each request to a service, asks the [`Authenticator`] whether it may
//! through, and proxies it or answers with a challenge.
//!
//! `run(listener, gateway, shutdown)` serves until `shutdown` is cancelled, then stops accepting
//! and lets in-flight requests finish (the caller bounds the drain), as tokio's mini-redis
//! `server.rs` does. It sees payment only through the authenticator: never a store or a node.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::connection::Connection;
use super::discovery::{self, QuoteRequest};
use super::matching::match_index;
use super::proxy::affinity::{self, Affinity};
use super::proxy::{Body, Forward, Proxy, Timeouts};
use super::response::{self, BALANCE, MANIFEST_PATH, QUOTE_PATH, RECEIPT};
use crate::config::services::Service;
use crate::metrics::Metrics;
use crate::mint::gate::{AuthRequest, Authenticator, Verdict};

/// The header carrying the token id to the upstream (the credential itself is never
/// forwarded).
pub const TOKEN_ID_HEADER: HeaderName = HeaderName::from_static("x-tapgate-token-id");
/// The token's tier, to the upstream.
pub const TIER_HEADER: HeaderName = HeaderName::from_static("x-tapgate-tier");
/// The token's capabilities, to the upstream (absent: all).
pub const CAPABILITIES_HEADER: HeaderName = HeaderName::from_static("x-tapgate-capabilities");
/// The service that sold the call, to the upstream.
pub const SERVICE_HEADER: HeaderName = HeaderName::from_static("x-tapgate-service");

/// Largest quote request body read.
const MAX_QUOTE_BODY: usize = 16 * 1024;

/// Everything the server needs.
pub struct Gateway {
    /// The payment seam.
    pub auth: Arc<dyn Authenticator>,
    /// The upstream client.
    pub proxy: Proxy,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

/// Serves `listener` until `shutdown`; connections are tracked by `connections` so the caller
/// can wait for them to finish with a bound.
pub async fn run(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: CancellationToken,
    connections: TaskTracker,
) {
    while let Some((stream, peer)) = accept_until(&listener, &shutdown).await {
        serve_connection(stream, peer, &gateway, &shutdown, &connections, ());
    }
}

/// The next connection on `listener`, with `TCP_NODELAY` set, or `None` once `shutdown` is
/// cancelled. A failed accept (out of file descriptors and the like) is logged and retried
/// after a pause instead of spinning.
pub async fn accept_until(
    listener: &TcpListener,
    shutdown: &CancellationToken,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    return Some((stream, peer));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Serves one accepted connection on a task of `connections`, until the client closes it or
/// `shutdown` (then the requests in flight finish and no more are read). `held` is dropped
/// when the connection ends (the workers count their live connections with it).
pub fn serve_connection<H: Send + 'static>(
    stream: TcpStream,
    peer: SocketAddr,
    gateway: &Arc<Gateway>,
    shutdown: &CancellationToken,
    connections: &TaskTracker,
    held: H,
) {
    let gw = Arc::clone(gateway);
    // A child token per connection: each connection's wait for shutdown polls its own
    // token, not one lock shared by every connection.
    let shutdown = shutdown.child_token();
    connections.spawn(async move {
        let _held = held;
        // What the connection keeps from request to request (its own upstream connection,
        // its last proven credential, …; see `connection`).
        let conn = Arc::new(Connection::new(peer));
        let sweep = Arc::clone(&conn);
        let svc = service_fn(move |req| {
            let gw = Arc::clone(&gw);
            let conn = Arc::clone(&conn);
            async move { Ok::<_, Infallible>(handle(&gw, req, &conn).await) }
        });
        let builder = auto::Builder::new(TokioExecutor::new());
        let conn = builder.serve_connection(TokioIo::new(stream), svc);
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
            }
            _ = release_idle(&sweep.own) => {}
            _ = shutdown.cancelled() => {
                // Finish the requests in flight, accept no more on this connection.
                conn.as_mut().graceful_shutdown();
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, %peer, "connection ended with an error while draining");
                }
            }
        }
    });
}

/// Closes the connection's upstream connection whenever it has been idle for
/// [`affinity::IDLE`], so an idle client does not hold one; never returns.
async fn release_idle(own: &Affinity) {
    loop {
        tokio::time::sleep(affinity::IDLE).await;
        own.release_idle(affinity::IDLE);
    }
}

fn is_grpc(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// Answers one request that came on `conn`.
pub async fn handle(gw: &Gateway, req: Request<Incoming>, conn: &Connection) -> Response<Body> {
    let peer = conn.peer;
    let path = req.uri().path();
    if path == MANIFEST_PATH {
        return finish(gw, Box::pin(manifest(gw, req.method())).await, "discovery");
    }
    if path == QUOTE_PATH {
        return finish(gw, Box::pin(quote(gw, req)).await, "quote");
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    let catalogue = gw.auth.services();
    let Some(index) = match_index(catalogue.iter().map(|p| &p.service), host, path) else {
        return finish(
            gw,
            response::error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no service sells this path; see /.well-known/l402.json",
            ),
            "not_found",
        );
    };
    let svc = &catalogue[index].service;
    let grpc = is_grpc(&req);
    if req.method() == Method::OPTIONS && !svc.methods.iter().any(|m| m == "OPTIONS") {
        let mut r = Response::new(response::full(Bytes::new()));
        *r.status_mut() = StatusCode::NO_CONTENT;
        response::cors(&mut r);
        return finish(gw, r, "preflight");
    }
    if !svc.methods.iter().any(|m| m == req.method().as_str()) && !grpc {
        let mut r = response::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &format!("{} sells {}", svc.name, svc.methods.join(", ")),
        );
        if let Ok(v) = HeaderValue::from_str(&svc.methods.join(", ")) {
            r.headers_mut().insert(header::ALLOW, v);
        }
        return finish(gw, r, "method_not_allowed");
    }
    if svc.free_paths.iter().any(|p| p.matches(path)) {
        return forward(gw, req, svc, conn, Vec::new(), None).await;
    }
    let tier_required = svc
        .tiers
        .iter()
        .enumerate()
        .filter(|(_, t)| t.paths.iter().any(|p| p.matches(path)))
        .map(|(i, _)| u8::try_from(i + 1).unwrap_or(u8::MAX))
        .max()
        .unwrap_or(0);
    // Borrowed from the request: an `Authorization` value that is not UTF-8 (no valid one is)
    // is read lossily, so that it is refused with the header's own error. The usual single
    // UTF-8 value is lent as it is, with no list allocated for it.
    let all_auth = req.headers().get_all(header::AUTHORIZATION);
    let mut auth_iter = all_auth.iter();
    let single_auth = match (auth_iter.next(), auth_iter.next()) {
        (Some(v), None) => std::str::from_utf8(v.as_bytes()).ok(),
        _ => None,
    };
    let auth_values: Vec<Cow<'_, str>>;
    let auth_refs: Vec<&str>;
    let auth_one: [&str; 1];
    let authorization: &[&str] = match single_auth {
        Some(text) => {
            auth_one = [text];
            &auth_one
        }
        None => {
            auth_values = all_auth
                .iter()
                .map(|v| match std::str::from_utf8(v.as_bytes()) {
                    Ok(text) => Cow::Borrowed(text),
                    Err(_) => String::from_utf8_lossy(v.as_bytes()),
                })
                .collect();
            auth_refs = auth_values.iter().map(|v| v.as_ref()).collect();
            &auth_refs
        }
    };
    let idempotency_key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok());
    // The client's address is needed only for free calls.
    let client = if svc.free_calls_per_client.is_some() {
        peer.ip().to_string()
    } else {
        String::new()
    };
    let verdict = gw
        .auth
        .authenticate(AuthRequest {
            service: index,
            tier_required,
            method: req.method().as_str(),
            path,
            authorization,
            idempotency_key,
            client: &client,
            memo: Some(&conn.memo),
        })
        .await;
    match verdict {
        Verdict::Pass(pass) => {
            let paid = conn.paid_headers(&pass);
            let mut extra = Vec::with_capacity(4);
            extra.extend([
                (SERVICE_HEADER, header_value(&svc.name)),
                (TOKEN_ID_HEADER, paid.token_id),
                (TIER_HEADER, tier_value(pass.tier)),
            ]);
            if let Some(c) = &pass.capabilities {
                extra.push((CAPABILITIES_HEADER, header_value(c)));
            }
            let receipt = Receipt {
                receipt: paid.receipt,
                balance: pass.balance_usd.map(|b| header_value(&b.to_string())),
            };
            forward(gw, req, svc, conn, extra, Some(receipt)).await
        }
        Verdict::Free => {
            let receipt = Receipt {
                receipt: HeaderValue::from_static("free_call=true"),
                balance: None,
            };
            forward(
                gw,
                req,
                svc,
                conn,
                vec![(SERVICE_HEADER, header_value(&svc.name))],
                Some(receipt),
            )
            .await
        }
        Verdict::Pay {
            reason,
            detail,
            challenge,
        } => match challenge {
            Ok(issued) => {
                let outcome = if reason.is_some() {
                    "refused"
                } else {
                    "challenge"
                };
                finish(
                    gw,
                    response::challenge(reason, &detail, &issued, grpc),
                    outcome,
                )
            }
            Err(e) => match e.unavailable_code() {
                Some(code) => finish(
                    gw,
                    response::unavailable(
                        code,
                        &format!("cannot issue an invoice now: {e}; retry later"),
                        grpc,
                    ),
                    "unavailable",
                ),
                None => finish(
                    gw,
                    response::error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "challenge_failed",
                        &format!("cannot issue a challenge: {e}"),
                    ),
                    "challenge_failed",
                ),
            },
        },
        Verdict::NotSettled { detail } => {
            finish(gw, response::not_settled(&detail, grpc), "unpaid")
        }
        Verdict::Unavailable { code, detail } => finish(
            gw,
            response::unavailable(code, &detail, grpc),
            "unavailable",
        ),
    }
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// The tier as a header value, from a table made once: nearly every paid request sends one.
fn tier_value(tier: u8) -> HeaderValue {
    static TIERS: std::sync::LazyLock<Vec<HeaderValue>> = std::sync::LazyLock::new(|| {
        (0..=u8::MAX)
            .map(|t| HeaderValue::from(u16::from(t)))
            .collect()
    });
    TIERS
        .get(usize::from(tier))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from(u16::from(tier)))
}

/// The headers a paid or free call's response carries back to the buyer.
struct Receipt {
    /// `Tapgate-Receipt`.
    receipt: HeaderValue,
    /// `Tapgate-Balance-Usd`, for a prepaid balance.
    balance: Option<HeaderValue>,
}

fn finish(gw: &Gateway, r: Response<Body>, outcome: &'static str) -> Response<Body> {
    gw.metrics.request(r.status().as_u16(), outcome);
    r
}

async fn forward(
    gw: &Gateway,
    req: Request<Incoming>,
    svc: &Service,
    conn: &Connection,
    extra_headers: Vec<(HeaderName, HeaderValue)>,
    receipt: Option<Receipt>,
) -> Response<Body> {
    let f = Forward {
        upstream: &svc.upstream,
        client_addr: conn.peer,
        client_forwarded_for: conn.forwarded_for.as_ref(),
        proto: "http",
        extra_headers,
        timeouts: Timeouts::of(svc),
        affinity: (req.version() < http::Version::HTTP_2).then_some(&conn.own),
    };
    match gw.proxy.forward(req, f).await {
        Ok(mut r) => {
            if let Some(h) = receipt {
                r.headers_mut().insert(RECEIPT, h.receipt);
                if let Some(b) = h.balance {
                    r.headers_mut().insert(BALANCE, b);
                }
            }
            finish(gw, r, "proxied")
        }
        Err(e) => {
            gw.metrics.upstream_error(e.reason());
            tracing::warn!(service = %svc.name, error = %e, "upstream failed");
            let r = response::json(
                e.status(),
                &json!({ "error": { "code": e.reason(), "message": e.to_string(), "service": svc.name } }),
            );
            finish(gw, r, "upstream_error")
        }
    }
}

async fn manifest(gw: &Gateway, method: &Method) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return response::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "the manifest is read with GET",
        );
    }
    let mut entries = Vec::new();
    for (i, svc) in gw.auth.services().iter().enumerate() {
        let mut prices = Vec::new();
        for tier in 0..=svc.service.tiers.len() {
            let tier = u8::try_from(tier).unwrap_or(u8::MAX);
            prices.push(gw.auth.preview(i, tier).await.ok());
        }
        entries.push(discovery::service_entry(svc, &prices));
    }
    let mut r = response::json(
        StatusCode::OK,
        &discovery::manifest(gw.auth.node_pubkey(), entries),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=30"),
    );
    response::cors(&mut r);
    r
}

async fn quote(gw: &Gateway, req: Request<Incoming>) -> Response<Body> {
    if req.method() == Method::OPTIONS {
        let mut r = Response::new(response::full(Bytes::new()));
        *r.status_mut() = StatusCode::NO_CONTENT;
        response::cors(&mut r);
        return r;
    }
    if req.method() != Method::POST {
        return response::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "quotes are asked for with POST and a JSON body",
        );
    }
    let body = match Limited::new(req.into_body(), MAX_QUOTE_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return response::error(StatusCode::BAD_REQUEST, "malformed_request", &e.to_string());
        }
    };
    let q: QuoteRequest = match serde_json::from_slice(&body) {
        Ok(q) => q,
        Err(e) => {
            return response::error(
                StatusCode::BAD_REQUEST,
                "malformed_request",
                &format!("the body is not a quote request: {e}"),
            );
        }
    };
    let (index, prepaid) = match discovery::check_quote(&q, gw.auth.services()) {
        Ok(x) => x,
        Err((status, code, message, field)) => {
            let mut r = response::json(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                &json!({ "error": { "code": code, "message": message, "field": field } }),
            );
            response::cors(&mut r);
            return r;
        }
    };
    let issued = match gw.auth.challenge(index, q.tier, prepaid).await {
        Ok(i) => i,
        Err(e) => {
            let mut r = response::json(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({ "error": { "code": "unpriceable", "message": e.to_string() } }),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return r;
        }
    };
    if let Some(max) = q.max_price_msat
        && issued.offer.msat > max
    {
        return response::json(
            StatusCode::CONFLICT,
            &json!({ "error": { "code": "unsatisfiable_budget", "message": format!("the bundle costs {} msat, above max_price_msat {max}", issued.offer.msat) } }),
        );
    }
    let mut body = response::challenge_body(&issued);
    if let Some(map) = body.as_object_mut() {
        map.insert("price_msat".into(), json!(issued.offer.msat));
        map.insert(
            "quote_expiry".into(),
            json!(issued.offer.invoice_expires_at),
        );
        map.insert(
            "price_fiat".into(),
            json!({ "usd": issued.offer.charge_usd.to_string() }),
        );
        map.insert("www_authenticate".into(), json!(issued.www_authenticate()));
    }
    let mut r = response::json(StatusCode::OK, &body);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response::cors(&mut r);
    r
}
