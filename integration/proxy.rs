//! The gateway's reverse proxy end to end, over real sockets on 127.0.0.1: test upstreams
//! speaking HTTP/1.1 and h2c, the sample upstream, and a small gateway (a hyper server around
//! `Proxy::forward`; the real gateway server lives elsewhere) with hyper clients in front.
//!
//! Covers the rewrite (target, Host, X-Forwarded-*, extra headers), what must not pass (hop-by-hop
//! fields both ways, the L402 credential, forged X-Tapgate-* headers), bodies streamed both ways
//! without buffering, trailers (gRPC's status) reaching the client, and the failures: a dead
//! upstream (502), one that never accepts (504) and one too slow to answer (504).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use tapgate::config::Upstream;
use tapgate::gateway::connection::Connection;
use tapgate::gateway::proxy::affinity::Affinity;
use tapgate::gateway::proxy::{
    Body, BodyError, Forward, Proxy, ProxyError, TimeoutStage, Timeouts,
};
use tapgate::gateway::sample;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Generous enough for a loaded CI machine, short enough that a hang fails the test soon.
const PATIENCE: Duration = Duration::from_secs(20);

const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(2),
    response: Duration::from_secs(30),
};

/// The address the direct `forward` calls claim the buyer has.
fn buyer() -> SocketAddr {
    "198.51.100.7:40000".parse().unwrap()
}

// ---- servers, bodies and clients -------------------------------------------------------------

/// Serves `handler` on 127.0.0.1:0, HTTP/1.1 and h2c on the one port, until the test ends.
async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(SocketAddr, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = listener.accept().await.unwrap();
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let answer = handler(peer, req);
                    async move { Ok::<_, Infallible>(answer.await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

/// A gateway selling everything at `upstream`: forwards with the buyer's real address, the
/// extra headers a router would add, `timeouts`, and (as the real gateway does) each client
/// connection's state (its own upstream connection for HTTP/1.1 clients, its address written
/// once for `X-Forwarded-For`); a `ProxyError` becomes its status with the reason in a JSON
/// body.
async fn gateway(upstream: &str, timeouts: Timeouts) -> SocketAddr {
    let upstream = Upstream::parse(upstream).unwrap();
    let proxy = Proxy::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = listener.accept().await.unwrap();
            let (proxy, upstream) = (proxy.clone(), upstream.clone());
            let conn = Arc::new(Connection::new(peer));
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (proxy, upstream, conn) = (proxy.clone(), upstream.clone(), conn.clone());
                    async move {
                        let mut f = forward(&upstream, peer, timeouts);
                        f.affinity = (req.version() < Version::HTTP_2).then_some(&conn.own);
                        f.client_forwarded_for = conn.forwarded_for.as_ref();
                        let answer = match proxy.forward(req, f).await {
                            Ok(r) => r,
                            Err(e) => json_response(
                                e.status(),
                                &json!({ "reason": e.reason(), "error": e.to_string() }),
                            ),
                        };
                        Ok::<_, Infallible>(answer)
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

fn hname(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    let mut r = Response::new(full(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A body fed frame by frame through a channel, of unknown length (so sent chunked over
/// HTTP/1.1), ending when the sender is dropped.
struct ChannelBody(mpsc::Receiver<Frame<Bytes>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.0.poll_recv(cx).map(|f| f.map(Ok))
    }
}

fn channel_body() -> (mpsc::Sender<Frame<Bytes>>, Body) {
    let (tx, rx) = mpsc::channel(4);
    (tx, ChannelBody(rx).boxed())
}

/// A hyper client speaking HTTP/1.1, or HTTP/2 with prior knowledge.
fn client(h2: bool) -> Client<HttpConnector, Body> {
    Client::builder(TokioExecutor::new())
        .http2_only(h2)
        .build_http()
}

async fn send(h2: bool, req: Request<Body>) -> Response<Incoming> {
    tokio::time::timeout(PATIENCE, client(h2).request(req))
        .await
        .expect("no answer in time")
        .unwrap()
}

async fn body_json(r: Response<Incoming>) -> Value {
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}: {bytes:?}"))
}

fn values(h: &HeaderMap, name: &str) -> Vec<String> {
    h.get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The `n`th byte of a test stream: a pattern that catches a lost, repeated or reordered chunk.
fn pattern(n: usize) -> u8 {
    (n % 251) as u8
}

const CHUNK: usize = 64 * 1024;
/// 96 chunks of 64 KiB: 6 MiB.
const CHUNKS: usize = 96;

fn chunk(index: usize) -> Bytes {
    (index * CHUNK..(index + 1) * CHUNK).map(pattern).collect()
}

/// Sends the test stream ([`CHUNKS`] chunks of [`CHUNK`] bytes) into `tx`, then ends it. With
/// `first_arrived`, the first chunk goes alone and the rest only once the far side says it has
/// it: a proxy that held a body back until it had all of it would stall here.
async fn feed(tx: mpsc::Sender<Frame<Bytes>>, first_arrived: Option<oneshot::Receiver<()>>) {
    tx.send(Frame::data(chunk(0))).await.unwrap();
    if let Some(first) = first_arrived {
        tokio::time::timeout(PATIENCE, first)
            .await
            .expect("the first chunk did not cross the gateway on its own: a body was buffered")
            .unwrap();
    }
    for i in 1..CHUNKS {
        tx.send(Frame::data(chunk(i))).await.unwrap();
    }
}

/// Reads a body to its end, checking every byte against [`pattern`] from byte `from` on;
/// returns where it ended.
async fn check_pattern<B>(mut body: B, from: usize) -> usize
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    let mut seen = from;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            for (i, b) in data.iter().enumerate() {
                assert_eq!(*b, pattern(seen + i), "byte {}", seen + i);
            }
            seen += data.len();
        }
    }
    seen
}

// ---- test upstreams ----------------------------------------------------------------------------

/// Answers with what it received (method, target, version, headers, body length) as JSON; over
/// HTTP/1.1 it also sends hop-by-hop fields back, which the proxy must drop.
async fn inspect(req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let headers: Vec<Value> = parts
        .headers
        .iter()
        .map(|(k, v)| json!([k.as_str(), v.to_str().unwrap()]))
        .collect();
    let mut r = json_response(
        StatusCode::OK,
        &json!({
            "method": parts.method.as_str(),
            "target": parts.uri.path_and_query().map(|p| p.as_str()),
            "authority": parts.uri.authority().map(|a| a.as_str()),
            "version": format!("{:?}", parts.version),
            "headers": headers,
            "body_len": body.len(),
        }),
    );
    if parts.version == Version::HTTP_11 {
        for (k, v) in [
            ("connection", "x-up-hop"),
            ("x-up-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authenticate", "Basic realm=\"up\""),
            ("x-up-end", "2"),
        ] {
            r.headers_mut()
                .insert(hname(k), HeaderValue::from_static(v));
        }
    }
    r
}

/// The header values `inspect` reported for `name`.
fn seen(v: &Value, name: &str) -> Vec<String> {
    v["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0] == name)
        .map(|h| h[1].as_str().unwrap().to_owned())
        .collect()
}

/// What a router would hand the proxy for a buyer at `client_addr`: the token and tier as
/// extra headers.
fn forward(upstream: &Upstream, client_addr: SocketAddr, timeouts: Timeouts) -> Forward<'_> {
    Forward {
        upstream,
        client_addr,
        client_forwarded_for: None,
        proto: "http",
        extra_headers: vec![
            (
                hname("x-tapgate-token-id"),
                HeaderValue::from_static("tok-1"),
            ),
            (hname("x-tapgate-tier"), HeaderValue::from_static("1")),
        ],
        timeouts,
        affinity: None,
    }
}

/// A request as a buyer might send it: the L402 credential, the upstream's own credential,
/// forged gateway headers, an earlier proxy's X-Forwarded-For and every kind of hop-by-hop
/// field.
fn busy_request() -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(Bytes::from_static(b"hello")));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = "http://gateway.example:8402/v1/x?a=1&b=%2F"
        .parse()
        .unwrap();
    for (k, v) in [
        ("host", "gateway.example:8402"),
        ("authorization", "L402 bWFj:00ff"),
        ("authorization", "Bearer upstream-key"),
        ("authorization", "lsat bWFj:00ff"),
        ("x-tapgate-tier", "forged"),
        ("x-tapgate-capabilities", "forged"),
        ("x-forwarded-for", "203.0.113.1"),
        ("x-forwarded-proto", "https"),
        ("connection", "x-client-hop"),
        ("x-client-hop", "1"),
        ("keep-alive", "timeout=5"),
        ("proxy-authorization", "Basic Zm9vOmJhcg=="),
        ("proxy-connection", "keep-alive"),
        ("te", "trailers, deflate"),
        ("upgrade", "websocket"),
        ("x-end", "kept"),
    ] {
        req.headers_mut()
            .append(hname(k), HeaderValue::from_static(v));
    }
    req
}

// ---- the rewrite -------------------------------------------------------------------------------

/// Forwards [`busy_request`] to a new [`inspect`] upstream at `scheme://<its address><path>`;
/// returns that address, the answer's headers and what the upstream reported.
async fn forward_to_inspect(scheme: &str, path: &str) -> (SocketAddr, HeaderMap, Value) {
    let addr = serve(|_, req| inspect(req)).await;
    let upstream = Upstream::parse(&format!("{scheme}://{addr}{path}")).unwrap();
    let r = Proxy::new()
        .forward(busy_request(), forward(&upstream, buyer(), TIMEOUTS))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (parts, body) = r.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (addr, parts.headers, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn http1_upstream_gets_the_rewritten_request_and_none_of_what_must_not_pass() {
    let (addr, answer, v) = forward_to_inspect("http", "/base/").await;
    // Hop-by-hop fields of the upstream's answer are gone; end-to-end ones stay.
    for hop in ["connection", "x-up-hop", "keep-alive", "proxy-authenticate"] {
        assert!(!answer.contains_key(hop), "{hop} came back");
    }
    assert_eq!(values(&answer, "x-up-end"), ["2"]);

    assert_eq!(v["method"], "POST");
    assert_eq!(v["target"], "/base/v1/x?a=1&b=%2F");
    assert_eq!(v["version"], "HTTP/1.1");
    assert_eq!(v["body_len"], 5);
    assert_eq!(seen(&v, "host"), [addr.to_string()]);
    assert_eq!(seen(&v, "authorization"), ["Bearer upstream-key"]);
    assert_eq!(seen(&v, "x-tapgate-token-id"), ["tok-1"]);
    assert_eq!(seen(&v, "x-tapgate-tier"), ["1"]);
    assert!(seen(&v, "x-tapgate-capabilities").is_empty());
    assert_eq!(seen(&v, "x-forwarded-for"), ["203.0.113.1, 198.51.100.7"]);
    assert_eq!(seen(&v, "x-forwarded-proto"), ["http"]);
    assert_eq!(seen(&v, "te"), ["trailers"]);
    assert_eq!(seen(&v, "x-end"), ["kept"]);
    for hop in [
        "connection",
        "x-client-hop",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "upgrade",
    ] {
        assert!(seen(&v, hop).is_empty(), "{hop} reached the upstream");
    }
    // The credential is nowhere in what the upstream saw, under any name.
    assert!(!v.to_string().to_lowercase().contains("bwfj"), "{v}");
}

#[tokio::test]
async fn grpc_upstream_is_spoken_to_in_http2_with_prior_knowledge() {
    let (addr, _, v) = forward_to_inspect("grpc", "").await;
    assert_eq!(v["version"], "HTTP/2.0");
    assert_eq!(v["authority"], addr.to_string());
    assert_eq!(v["target"], "/v1/x?a=1&b=%2F");
    assert!(
        seen(&v, "host").is_empty(),
        "HTTP/2 names the host in :authority"
    );
    assert_eq!(seen(&v, "authorization"), ["Bearer upstream-key"]);
    assert_eq!(seen(&v, "x-forwarded-for"), ["203.0.113.1, 198.51.100.7"]);
    assert_eq!(seen(&v, "te"), ["trailers"]);
    assert_eq!(seen(&v, "x-tapgate-tier"), ["1"]);
}

#[tokio::test]
async fn through_a_gateway_the_buyers_socket_address_is_forwarded() {
    let up = serve(|_, req| inspect(req)).await;
    let gw = gateway(&format!("http://{up}"), TIMEOUTS).await;
    for h2 in [false, true] {
        let mut req = Request::new(full(""));
        *req.uri_mut() = format!("http://{gw}/who").parse().unwrap();
        let v = body_json(send(h2, req).await).await;
        assert_eq!(seen(&v, "x-forwarded-for"), ["127.0.0.1"], "h2 {h2}");
        assert_eq!(seen(&v, "host"), [up.to_string()], "h2 {h2}");
        assert_eq!(v["version"], "HTTP/1.1", "h2 {h2}");
    }
}

// ---- streaming and trailers --------------------------------------------------------------------

/// Uploads 6 MiB in 64 KiB chunks and downloads 6 MiB the same way, through the gateway, and
/// proves neither side is buffered: the upstream must have the first upload chunk before the
/// buyer sends the second, and the buyer must have the first download chunk before the upstream
/// sends the second.
#[tokio::test]
async fn large_bodies_stream_both_ways_without_buffering() {
    for (scheme, h2) in [("http", false), ("grpc", true)] {
        // The upstream tells the test when the first upload chunk arrived, and waits for the
        // test to say the first download chunk arrived.
        let (got_first_tx, got_first_rx) = oneshot::channel::<()>();
        let (buyer_got_tx, buyer_got_rx) = oneshot::channel::<()>();
        let got_first = Arc::new(Mutex::new(Some(got_first_tx)));
        let buyer_got = Arc::new(Mutex::new(Some(buyer_got_rx)));
        let up = serve(move |_, req: Request<Incoming>| {
            let (got_first, buyer_got) = (got_first.clone(), buyer_got.clone());
            async move {
                if req.uri().path() == "/upload" {
                    let chunked = values(req.headers(), "transfer-encoding");
                    let mut body = req.into_body();
                    let mut seen = 0;
                    while let Some(frame) = body.frame().await {
                        let Ok(data) = frame.unwrap().into_data() else {
                            continue;
                        };
                        for (i, b) in data.iter().enumerate() {
                            assert_eq!(*b, pattern(seen + i));
                        }
                        seen += data.len();
                        if let Some(tx) = got_first.lock().unwrap().take() {
                            let _ = tx.send(());
                        }
                    }
                    json_response(
                        StatusCode::OK,
                        &json!({ "len": seen, "transfer-encoding": chunked }),
                    )
                } else {
                    let (tx, body) = channel_body();
                    let buyer_got = buyer_got.lock().unwrap().take().unwrap();
                    tokio::spawn(feed(tx, Some(buyer_got)));
                    Response::new(body)
                }
            }
        })
        .await;
        let gw = gateway(&format!("{scheme}://{up}"), TIMEOUTS).await;

        // Upload.
        let (tx, body) = channel_body();
        let mut req = Request::new(body);
        *req.method_mut() = Method::POST;
        *req.uri_mut() = format!("http://{gw}/upload").parse().unwrap();
        let answer = tokio::spawn(async move { send(h2, req).await });
        feed(tx, Some(got_first_rx)).await;
        let v = body_json(answer.await.unwrap()).await;
        assert_eq!(v["len"], CHUNK * CHUNKS, "{scheme}");
        if !h2 {
            assert_eq!(v["transfer-encoding"], json!(["chunked"]));
        }

        // Download.
        let mut req = Request::new(full(""));
        *req.uri_mut() = format!("http://{gw}/download").parse().unwrap();
        let r = send(h2, req).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(!r.headers().contains_key(header::CONTENT_LENGTH));
        let mut body = r.into_body();
        let first = loop {
            let frame = tokio::time::timeout(PATIENCE, body.frame())
                .await
                .expect("no first chunk")
                .unwrap()
                .unwrap();
            if let Ok(data) = frame.into_data()
                && !data.is_empty()
            {
                break data;
            }
        };
        for (i, b) in first.iter().enumerate() {
            assert_eq!(*b, pattern(i));
        }
        buyer_got_tx.send(()).unwrap();
        assert_eq!(
            check_pattern(body, first.len()).await,
            CHUNK * CHUNKS,
            "{scheme}"
        );
    }
}

/// gRPC's status travels in trailers: an h2c upstream's `grpc-status` reaches an h2 buyer, and
/// an HTTP/1.1 upstream's announced trailer reaches an HTTP/1.1 buyer.
#[tokio::test]
async fn trailers_reach_the_client() {
    let up = serve(|_, req: Request<Incoming>| async move {
        let te = values(req.headers(), "te");
        let grpc = req.version() == Version::HTTP_2;
        let _ = req.into_body().collect().await.unwrap();
        let (tx, body) = channel_body();
        let mut r = Response::new(body);
        let mut trailers = HeaderMap::new();
        if grpc {
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            trailers.insert("grpc-status", HeaderValue::from_static("0"));
            trailers.insert("grpc-message", HeaderValue::from_static("done"));
        } else {
            r.headers_mut()
                .insert(header::TRAILER, HeaderValue::from_static("x-checksum"));
            trailers.insert("x-checksum", HeaderValue::from_static("abc"));
        }
        r.headers_mut().insert(
            hname("x-saw-te"),
            HeaderValue::from_str(&te.join(",")).unwrap(),
        );
        tokio::spawn(async move {
            // A gRPC message: uncompressed, length 2, payload.
            tx.send(Frame::data(Bytes::from_static(b"\0\0\0\0\x02hi")))
                .await
                .unwrap();
            tx.send(Frame::trailers(trailers)).await.unwrap();
        });
        r
    })
    .await;

    let gw = gateway(&format!("grpc://{up}"), TIMEOUTS).await;
    let mut req = Request::new(full(&b"\0\0\0\0\0"[..]));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = format!("http://{gw}/pkg.Svc/Call").parse().unwrap();
    req.headers_mut()
        .insert(header::TE, HeaderValue::from_static("trailers"));
    req.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    let r = send(true, req).await;
    assert_eq!(values(r.headers(), "x-saw-te"), ["trailers"]);
    let collected = r.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("no trailers");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "done");
    assert_eq!(&collected.to_bytes()[..], b"\0\0\0\0\x02hi");

    let gw = gateway(&format!("http://{up}"), TIMEOUTS).await;
    let mut req = Request::new(full("x"));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = format!("http://{gw}/file").parse().unwrap();
    req.headers_mut()
        .insert(header::TE, HeaderValue::from_static("trailers"));
    let r = send(false, req).await;
    assert_eq!(values(r.headers(), "trailer"), ["x-checksum"]);
    let collected = r.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("no HTTP/1.1 trailers");
    assert_eq!(trailers["x-checksum"], "abc");
}

// ---- failures ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_dead_upstream_is_502_upstream_unreachable() {
    // A port that was just listening and is now closed: the connection is refused.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let upstream = Upstream::parse(&format!("http://{addr}")).unwrap();
    // Through the shared pool, and through a client connection's own upstream connection.
    let own = Affinity::default();
    for affinity in [None, Some(&own)] {
        let mut f = forward(&upstream, buyer(), TIMEOUTS);
        f.affinity = affinity;
        let err = Proxy::new().forward(busy_request(), f).await.unwrap_err();
        assert!(matches!(err, ProxyError::Connect { .. }), "{err:?}");
        assert_eq!(
            (err.status(), err.reason()),
            (StatusCode::BAD_GATEWAY, "upstream_unreachable")
        );
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        assert!(!own.is_idle(), "a failed dial leaves no connection behind");
    }

    // Through a gateway, the buyer sees the status and the reason.
    let gw = gateway(&format!("http://{addr}"), TIMEOUTS).await;
    let mut req = Request::new(full(""));
    *req.uri_mut() = format!("http://{gw}/x").parse().unwrap();
    let r = send(false, req).await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(body_json(r).await["reason"], "upstream_unreachable");
}

/// Forwards to `upstream` with `timeouts` and expects the wait of `stage` to end it, soon:
/// through the shared pool, and through a client connection's own upstream connection, which
/// a timeout must leave empty (the exchange it was in is abandoned, never reused).
async fn expect_timeout(upstream: &Upstream, timeouts: Timeouts, stage: TimeoutStage) {
    let own = Affinity::default();
    for affinity in [None, Some(&own)] {
        let started = Instant::now();
        let mut f = forward(upstream, buyer(), timeouts);
        f.affinity = affinity;
        let err = Proxy::new().forward(busy_request(), f).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(4), "{err}");
        assert!(
            matches!(err, ProxyError::Timeout { stage: s, .. } if s == stage),
            "{upstream:?}: {err:?}"
        );
        assert_eq!(
            (err.status(), err.reason()),
            (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout")
        );
        assert!(err.to_string().contains(stage.key()), "{err}");
        assert!(
            !own.is_idle(),
            "an abandoned exchange's connection is not kept"
        );
    }
}

#[tokio::test]
async fn an_upstream_slow_to_answer_is_504_upstream_timeout() {
    let addr = serve(|_, _req| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        json_response(StatusCode::OK, &json!({}))
    })
    .await;
    let timeouts = Timeouts {
        connect: Duration::from_secs(2),
        response: Duration::from_millis(300),
    };
    for scheme in ["http", "grpc"] {
        let upstream = Upstream::parse(&format!("{scheme}://{addr}")).unwrap();
        expect_timeout(&upstream, timeouts, TimeoutStage::ResponseHeaders).await;
    }
}

/// A listener whose accept queue is full drops new SYNs (Linux, with the default
/// `tcp_abort_on_overflow = 0`), so the connection is never made: the connect timeout, not the
/// response timeout, ends the wait.
#[tokio::test]
async fn an_upstream_that_never_accepts_is_504_after_the_connect_timeout() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    // Fill the queue (never accepted) until a connection attempt hangs.
    let mut held = Vec::new();
    loop {
        let attempt = tokio::net::TcpStream::connect(addr);
        match tokio::time::timeout(Duration::from_millis(200), attempt).await {
            Ok(Ok(s)) => held.push(s),
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => break,
        }
        assert!(held.len() < 64, "the accept queue never filled");
    }
    let upstream = Upstream::parse(&format!("http://{addr}")).unwrap();
    let timeouts = Timeouts {
        connect: Duration::from_millis(300),
        response: Duration::from_secs(10),
    };
    expect_timeout(&upstream, timeouts, TimeoutStage::Connect).await;
    drop((held, listener));
}

#[tokio::test]
async fn an_http1_upstream_behind_a_grpc_url_is_502_upstream_error() {
    // Not an HTTP/2 server: answers anything with an HTTP/1.1 response and closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0; 1024];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    .await;
            });
        }
    });
    let upstream = Upstream::parse(&format!("grpc://{addr}")).unwrap();
    let err = Proxy::new()
        .forward(busy_request(), forward(&upstream, buyer(), TIMEOUTS))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "upstream_error", "{err:?}");
    assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
}

// ---- the sample upstream -----------------------------------------------------------------------

#[tokio::test]
async fn the_sample_upstream_answers_through_the_gateway_and_stops_when_told() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(sample::run(listener, shutdown.clone()));

    for (scheme, h2) in [("http", false), ("grpc", true)] {
        let gw = gateway(&format!("{scheme}://{addr}"), TIMEOUTS).await;
        let get = |path: &str| {
            let mut req = Request::new(full(""));
            *req.uri_mut() = format!("http://{gw}{path}").parse().unwrap();
            send(h2, req)
        };
        let tapgate = json!({ "x-tapgate-token-id": "tok-1", "x-tapgate-tier": "1" });

        let r = get("/v1/weather").await;
        assert_eq!(r.status(), StatusCode::OK);
        let v = body_json(r).await;
        assert_eq!(v["city"], "Lisbon");
        assert_eq!(v["tapgate"], tapgate, "{scheme}");

        let v = body_json(get("/v1/time").await).await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(v["unix"].as_u64().unwrap().abs_diff(now) < 60, "{v}");
        assert_eq!(v["tapgate"], tapgate);

        let r = get("/health").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            &r.into_body().collect().await.unwrap().to_bytes()[..],
            b"ok"
        );

        let r = get("/nope").await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let v = body_json(r).await;
        assert_eq!(
            (&v["error"], &v["path"]),
            (&json!("not_found"), &json!("/nope"))
        );
        assert_eq!(v["tapgate"], tapgate);

        // The echo streams: 6 MiB in, the same 6 MiB out, never held whole.
        let (tx, body) = channel_body();
        let mut req = Request::new(body);
        *req.method_mut() = Method::POST;
        *req.uri_mut() = format!("http://{gw}/v1/echo").parse().unwrap();
        let feeding = tokio::spawn(feed(tx, None));
        let r = send(h2, req).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(values(r.headers(), "x-tapgate-token-id"), ["tok-1"]);
        assert_eq!(
            check_pattern(r.into_body(), 0).await,
            CHUNK * CHUNKS,
            "{scheme}"
        );
        feeding.await.unwrap();
    }

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the sample upstream did not stop")
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

// ---- a client connection's own upstream connection -----------------------------------------------

/// Sends `n` GETs one after another on one HTTP/1.1 connection to `gw`; the upstream's
/// answers, as JSON.
async fn on_one_connection(gw: SocketAddr, n: usize) -> Vec<Value> {
    on_one_connection_with(gw, &vec![None; n]).await
}

/// [`on_one_connection`], request `i` carrying `X-Forwarded-For: forwarded[i]` if it is given.
async fn on_one_connection_with(gw: SocketAddr, forwarded: &[Option<&str>]) -> Vec<Value> {
    let tcp = tokio::net::TcpStream::connect(gw).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut out = Vec::new();
    for (i, xff) in forwarded.iter().enumerate() {
        sender.ready().await.unwrap();
        let mut req = Request::builder()
            .uri(format!("/call/{i}"))
            .header(header::HOST, gw.to_string());
        if let Some(xff) = xff {
            req = req.header("x-forwarded-for", *xff);
        }
        let req = req.body(full("")).unwrap();
        let r = tokio::time::timeout(PATIENCE, sender.send_request(req))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "call {i}");
        out.push(body_json(r).await);
    }
    out
}

#[tokio::test]
async fn a_connections_address_is_forwarded_alone_or_after_what_earlier_proxies_wrote() {
    let up = serve(|_, req| inspect(req)).await;
    let gw = gateway(&format!("http://{up}"), TIMEOUTS).await;
    let seen_xff = |answers: &[Value]| -> Vec<Vec<String>> {
        answers.iter().map(|v| seen(v, "x-forwarded-for")).collect()
    };
    // On one keep-alive connection: the address written once for the connection, then a
    // request from behind another proxy, then the connection's own value again.
    let answers = on_one_connection_with(gw, &[None, Some("203.0.113.1"), None, None]).await;
    assert_eq!(
        seen_xff(&answers),
        [
            vec!["127.0.0.1".to_owned()],
            vec!["203.0.113.1, 127.0.0.1".to_owned()],
            vec!["127.0.0.1".to_owned()],
            vec!["127.0.0.1".to_owned()],
        ]
    );
}

#[tokio::test]
async fn each_http1_client_connection_keeps_one_upstream_connection_of_its_own() {
    let up = serve(|peer, req: Request<Incoming>| async move {
        json_response(
            StatusCode::OK,
            &json!({ "peer": peer.to_string(), "path": req.uri().path() }),
        )
    })
    .await;
    let gw = gateway(&format!("http://{up}"), TIMEOUTS).await;
    let peers = |answers: &[Value]| -> Vec<String> {
        answers
            .iter()
            .map(|v| v["peer"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = on_one_connection(gw, 3).await;
    let second = on_one_connection(gw, 3).await;
    assert_eq!(first[2]["path"], "/call/2", "origin-form target: {first:?}");
    let (a, b) = (peers(&first), peers(&second));
    assert!(
        a.iter().all(|p| *p == a[0]),
        "one upstream connection: {a:?}"
    );
    assert!(
        b.iter().all(|p| *p == b[0]),
        "one upstream connection: {b:?}"
    );
    assert_ne!(a[0], b[0], "each client connection has its own");

    // HTTP/2 clients multiplex; their requests go through the shared pool, all of them at once.
    let calls = (0..8).map(|i| {
        let mut req = Request::new(full(""));
        *req.uri_mut() = format!("http://{gw}/h2/{i}").parse().unwrap();
        send(true, req)
    });
    for r in futures_join(calls).await {
        assert_eq!(r.status(), StatusCode::OK);
    }
}

/// Awaits every future, concurrently.
async fn futures_join<F: Future + Send + 'static>(fs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let tasks: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// An HTTP/1.1 upstream that answers one GET per connection with `ok` and closes it, saying so
/// (`Connection: close`) when `announce`; how many connections it accepted.
async fn one_answer_per_connection(announce: bool) -> (SocketAddr, Arc<Mutex<usize>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(Mutex::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            *count.lock().unwrap() += 1;
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let close = if announce {
                    "connection: close\r\n"
                } else {
                    ""
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{close}content-length: 11\r\n\r\n{{\"ok\":true}}"
                );
                let _ = tcp.write_all(answer.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn an_upstream_connection_closed_between_requests_is_replaced() {
    // Closed with `Connection: close`, and closed silently (an idle timeout at the upstream,
    // as Node.js's 5 s keep-alive timeout does), noticed before the next request.
    for announce in [true, false] {
        let (up, accepted) = one_answer_per_connection(announce).await;
        let gw = gateway(&format!("http://{up}"), TIMEOUTS).await;
        let tcp = tokio::net::TcpStream::connect(gw).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        for i in 0..3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            sender.ready().await.unwrap();
            let req = Request::builder()
                .uri("/x")
                .header(header::HOST, "gw")
                .body(full(""))
                .unwrap();
            let r = sender.send_request(req).await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "announce={announce} call {i}");
            assert_eq!(body_json(r).await["ok"], true);
        }
        assert_eq!(*accepted.lock().unwrap(), 3, "announce={announce}");
    }
}

#[tokio::test]
async fn an_idle_upstream_connection_is_released_and_another_upstream_gets_its_own() {
    // Each upstream says which it is, and the Host and target it was sent.
    fn echo(
        at: &'static str,
    ) -> impl Fn(SocketAddr, Request<Incoming>) -> std::future::Ready<Response<Body>> + Clone {
        move |_, req: Request<Incoming>| {
            let host = req
                .headers()
                .get(header::HOST)
                .map(|h| h.to_str().unwrap().to_owned());
            std::future::ready(json_response(
                StatusCode::OK,
                &json!({ "at": at, "host": host, "target": req.uri().to_string() }),
            ))
        }
    }
    let (a_addr, b_addr) = (serve(echo("a")).await, serve(echo("b")).await);
    let (a, b) = (
        Upstream::parse(&format!("http://{a_addr}")).unwrap(),
        Upstream::parse(&format!("http://{b_addr}")).unwrap(),
    );
    let own = Affinity::default();
    let proxy = Proxy::new();
    let via = |upstream| {
        let mut f = forward(upstream, buyer(), TIMEOUTS);
        f.affinity = Some(&own);
        proxy.forward(busy_request(), f)
    };
    let at = |r: Response<Body>| async move {
        let body = r.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice::<Value>(&body).unwrap()["at"].clone()
    };
    assert_eq!(at(via(&a).await.unwrap()).await, "a");
    assert!(own.is_idle());
    // The slot holds a connection to a; a request for b must not be sent on it.
    assert_eq!(at(via(&b).await.unwrap()).await, "b");
    assert_eq!(at(via(&a).await.unwrap()).await, "a");
    assert!(
        !own.release_idle(Duration::from_secs(3600)),
        "used just now"
    );
    assert!(own.release_idle(Duration::ZERO));
    assert!(!own.is_idle());
    assert_eq!(at(via(&b).await.unwrap()).await, "b");

    // A request in origin form, as a client connection sends it, goes out as it came, with
    // the Host of the upstream the slot holds a connection to, as the slot changes hands.
    let origin = |upstream| {
        let mut req = Request::new(Full::new(Bytes::from_static(b"")));
        *req.uri_mut() = "/v1/y?q=%2F&r=1".parse().unwrap();
        req.headers_mut()
            .insert(header::HOST, HeaderValue::from_static("gateway.example"));
        let mut f = forward(upstream, buyer(), TIMEOUTS);
        f.affinity = Some(&own);
        proxy.forward(req, f)
    };
    let sent = |r: Response<Body>| async move {
        let body = r.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice::<Value>(&body).unwrap()
    };
    for (upstream, addr, name) in [
        (&b, b_addr, "b"),
        (&b, b_addr, "b"),
        (&a, a_addr, "a"),
        (&b, b_addr, "b"),
    ] {
        let v = sent(origin(upstream).await.unwrap()).await;
        assert_eq!(v["at"], name);
        assert_eq!(v["host"], addr.to_string());
        assert_eq!(v["target"], "/v1/y?q=%2F&r=1");
        assert!(own.is_idle());
    }
}
