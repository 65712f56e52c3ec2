//! A small upstream API built into tapgate, so `tapgate serve --simnet` has something to sell
//! on a first run before the operator points a service at their own API, and so tests can see
//! what the gateway forwarded.
//!
//! It answers HTTP/1.1 and HTTP/2 without TLS (h2c, as a `grpc://` upstream is spoken to) on
//! one port:
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/weather` | `200` JSON: a fixed forecast |
//! | `GET /v1/time` | `200` JSON: `unix`, the server's time in unix seconds |
//! | `GET /health` | `200` `ok` |
//! | `POST /v1/echo` | `200`: the request body, streamed back as it arrives (trailers too) |
//! | anything else | `404` JSON: `error = "not_found"` |
//!
//! Every JSON answer carries `tapgate`, an object of the `X-Tapgate-*` headers the request
//! came with (lower-case names; several values joined with `, `); the echo returns them as
//! response headers instead, its body being the caller's.
//!
//! It must not know about payment, tokens or the gateway's settings: it is a stand-in for
//! someone else's API, reached only through the gateway's proxy like any upstream.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::proxy::headers::GATEWAY_HEADER_PREFIX;
use super::proxy::{Body, BodyError};
use crate::clock::{Clock, SystemClock};

/// How long open connections get to finish their requests once shutdown is asked for.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves the sample API on `listener` until `shutdown` is cancelled: the listener closes at
/// once, and open connections get five seconds to finish what they are answering.
pub async fn run(listener: TcpListener, shutdown: CancellationToken) {
    // Knows the open connections, so the drain can wait for exactly them.
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let span = tracing::debug_span!("sample_upstream_connection", %peer);
                connections.spawn(connection(tcp, shutdown.clone()).instrument(span));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "sample upstream: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    connections.close();
    if tokio::time::timeout(DRAIN, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "sample upstream: connections still open after the drain"
        );
    }
}

async fn connection(tcp: TcpStream, shutdown: CancellationToken) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // With a timer, hyper bounds the wait for a request's headers (30 s by default).
    builder.http1().timer(TokioTimer::new());
    let conn = builder.serve_connection(TokioIo::new(tcp), service_fn(handle));
    tokio::pin!(conn);
    tokio::select! {
        served = conn.as_mut() => {
            if let Err(e) = served {
                tracing::debug!(error = %e, "sample upstream: connection ended with an error");
            }
        }
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN, conn).await;
        }
    }
}

/// One request. Never fails: anything unknown is a 404.
async fn handle(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let tapgate = gateway_headers(req.headers());
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET, "/v1/weather") => json(
            StatusCode::OK,
            serde_json::json!({
                "city": "Lisbon",
                "temperature_c": 21,
                "conditions": "sunny",
                "tapgate": tapgate,
            }),
        ),
        (&Method::GET, "/v1/time") => json(
            StatusCode::OK,
            serde_json::json!({ "unix": SystemClock.now_unix(), "tapgate": tapgate }),
        ),
        (&Method::GET, "/health") => {
            let mut r = Response::new(full("ok"));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        }
        (&Method::POST, "/v1/echo") => echo(req),
        (method, path) => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({
                "error": "not_found",
                "method": method.as_str(),
                "path": path,
                "tapgate": tapgate,
            }),
        ),
    };
    Ok(response)
}

/// The request's body streamed back, with its content type and the gateway's headers.
fn echo(req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let mut r = Response::new(body.map_err(|e| -> BodyError { Box::new(e) }).boxed());
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    r.headers_mut().insert(header::CONTENT_TYPE, content_type);
    for (name, value) in &parts.headers {
        if name.as_str().starts_with(GATEWAY_HEADER_PREFIX) {
            r.headers_mut().append(name, value.clone());
        }
    }
    r
}

/// The request's `X-Tapgate-*` headers as a JSON object.
fn gateway_headers(headers: &HeaderMap) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    for name in headers.keys() {
        if !name.as_str().starts_with(GATEWAY_HEADER_PREFIX) {
            continue;
        }
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        out.insert(name.as_str().to_owned(), values.join(", ").into());
    }
    out
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    let mut r = Response::new(full(value.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}
