//! The admin port (`gateway.admin_listen`, loopback by default): the admin gRPC service
//! ([`grpc`], for requests with a gRPC content type, macaroon-authenticated) and, over plain
//! HTTP, Prometheus `/metrics`, `/healthz` (the process answers) and `/readyz` (the seller
//! node's settlement stream is being followed without failure).
//!
//! One port serves both, told apart by `content-type: application/grpc`. It must never expose a
//! secret: the metrics carry no token ids, and the gRPC service demands the admin macaroon.

pub mod grpc;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::gateway::proxy::Body;
use crate::gateway::response;
use crate::metrics::Metrics;
use crate::mint::gate::Authenticator;

/// What the admin port reads.
#[derive(Clone)]
pub struct AdminState {
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The gate, for readiness.
    pub auth: Arc<dyn Authenticator>,
    /// The admin gRPC service.
    pub grpc: grpc::AdminGrpc,
}

/// Serves the admin port until `shutdown`.
pub async fn run_http(listener: TcpListener, state: AdminState, shutdown: CancellationToken) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    continue;
                }
            },
        };
        let state = state.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(state, req).await) }
            });
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

fn text(status: StatusCode, body: String, content_type: &'static str) -> Response<Body> {
    let mut r = Response::new(response::full(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

async fn route(state: AdminState, req: Request<Incoming>) -> Response<Body> {
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if !grpc {
        return answer(&state, &req);
    }
    let mut svc = state.grpc.clone();
    let r = match tower::Service::call(&mut svc, req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    // Admin calls are unary and small: the reply is read whole, trailers included, so it fits
    // the gateway's `Sync` body type (tonic's body is not `Sync`).
    let (parts, body) = r.into_parts();
    let mut frames = VecDeque::new();
    let mut body = std::pin::pin!(body);
    while let Some(f) = body.frame().await {
        match f {
            Ok(f) => frames.push_back(f),
            Err(status) => {
                tracing::warn!(%status, "admin reply body failed");
                break;
            }
        }
    }
    Response::from_parts(parts, Frames(frames).boxed())
}

/// A body of frames already read.
struct Frames(VecDeque<Frame<Bytes>>);

impl hyper::body::Body for Frames {
    type Data = Bytes;
    type Error = crate::gateway::proxy::BodyError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(Ok))
    }
}

fn answer(state: &AdminState, req: &Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/metrics" => {
            let streaming = u64::from(state.auth.settlements_streaming());
            let leader = u64::from(state.auth.settlement_stream_leader());
            text(
                StatusCode::OK,
                state.metrics.render(&[
                    (
                        "tapgate_settlement_stream_up",
                        "Whether settlements are being learnt: this replica follows the seller node's settlement stream and it delivers, or another replica holds the stream's lease.",
                        streaming,
                    ),
                    (
                        "tapgate_settlement_stream_leader",
                        "Whether this replica holds the settlement stream's lease and follows the stream (exactly one replica per store does).",
                        leader,
                    ),
                ]),
                "text/plain; version=0.0.4",
            )
        }
        "/healthz" => text(StatusCode::OK, "ok\n".into(), "text/plain"),
        "/readyz" => {
            if state.auth.settlements_streaming() {
                text(StatusCode::OK, "ready\n".into(), "text/plain")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: the seller node's settlement stream is not delivering\n".into(),
                    "text/plain",
                )
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: /metrics, /healthz, /readyz\n".into(),
            "text/plain",
        ),
    }
}
