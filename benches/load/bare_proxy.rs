//! The floor under tapgate's proxy: the same HTTP stack (hyper's server through hyper-util's
//! `auto` builder; for each client connection an HTTP/1.1 upstream connection of its own,
//! hyper's `client::conn::http1`, as tapgate's `gateway/proxy/affinity.rs` keeps; tokio
//! runtimes as tapgate runs them) forwarding every request to one upstream with nothing else:
//! no matching, no L402, no header rewriting, no metrics.
//!
//! `benches/load/run.sh` measures it beside nginx and tapgate (row "hyper-floor"), so that the
//! distance between tapgate and nginx splits into what the stack costs and what tapgate adds.
//! Not a product: it has no timeouts, no error bodies and no shutdown.
//!
//! usage: bare_proxy LISTEN_ADDR UPSTREAM_ADDR [--multi-thread]   (addresses as host:port)
//!
//! By default it serves as tapgate's gateway does (`src/gateway/workers.rs`): one thread per
//! worker, each with a single-threaded runtime and its own `SO_REUSEPORT` socket, and each
//! client connection with its own upstream connection; `TAPGATE_WORKERS` threads (default: one
//! per CPU). With `--multi-thread`, one multi-threaded runtime (`TOKIO_WORKER_THREADS` workers)
//! shares one socket and hyper-util's pooled legacy client, as tapgate did before: the
//! benchmark's `hyper-floor-mt` row.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use http_body_util::combinators::{BoxBody, UnsyncBoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

type BodyError = Box<dyn std::error::Error + Send + Sync>;
type OutBody = UnsyncBoxBody<Bytes, BodyError>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        return Err("usage: bare_proxy LISTEN_ADDR UPSTREAM_ADDR".into());
    };
    let listen: SocketAddr = listen.parse()?;
    let upstream: &'static str = Box::leak(upstream.into_boxed_str());
    if args.next().as_deref() != Some("--multi-thread") {
        let n = match std::env::var("TAPGATE_WORKERS") {
            Ok(n) => n.parse()?,
            Err(_) => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        };
        let mut threads = Vec::new();
        for _ in 0..n {
            threads.push(std::thread::spawn(move || -> Result<(), String> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                rt.block_on(async move {
                    let s = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
                    s.set_reuseport(true).map_err(|e| e.to_string())?;
                    s.set_reuseaddr(true).map_err(|e| e.to_string())?;
                    s.bind(listen).map_err(|e| e.to_string())?;
                    let l = s.listen(1024).map_err(|e| e.to_string())?;
                    loop {
                        let (stream, _) = l.accept().await.map_err(|e| e.to_string())?;
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(own::connection(stream, upstream));
                    }
                })
            }));
        }
        for t in threads {
            let _ = t.join();
        }
        return Ok(());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(listen, upstream))
}

async fn serve(
    listen: SocketAddr,
    upstream: &'static str,
) -> Result<(), Box<dyn std::error::Error>> {
    serve_on(TcpListener::bind(listen).await?, upstream).await
}

async fn serve_on(
    listener: TcpListener,
    upstream: &'static str,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, OutBody> = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector);
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let client = client.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let client = client.clone();
                async move { Ok::<_, Infallible>(forward(&client, upstream, req).await) }
            });
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

async fn forward(
    client: &Client<HttpConnector, OutBody>,
    upstream: &str,
    req: Request<Incoming>,
) -> Response<BoxBody<Bytes, BodyError>> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = match Uri::try_from(format!("http://{upstream}{path}")) {
        Ok(u) => u,
        Err(_) => return status(StatusCode::BAD_REQUEST),
    };
    let body: OutBody = body
        .map_err(|e| -> BodyError { Box::new(e) })
        .boxed_unsync();
    match client.request(Request::from_parts(parts, body)).await {
        Ok(r) => r.map(|b| b.map_err(|e| -> BodyError { Box::new(e) }).boxed()),
        Err(_) => status(StatusCode::BAD_GATEWAY),
    }
}

fn status(code: StatusCode) -> Response<BoxBody<Bytes, BodyError>> {
    let mut r = Response::new(
        http_body_util::Empty::new()
            .map_err(|e: Infallible| -> BodyError { match e {} })
            .boxed(),
    );
    *r.status_mut() = code;
    r
}

/// Each client connection with an upstream connection of its own, as tapgate's proxy keeps
/// for HTTP/1.1 clients (`src/gateway/proxy/affinity.rs`).
mod own {
    use super::*;
    use hyper::client::conn::http1::SendRequest;
    use std::sync::{Arc, Mutex};

    type Slot = Arc<Mutex<Option<SendRequest<Incoming>>>>;

    pub async fn connection(stream: tokio::net::TcpStream, upstream: &'static str) {
        let slot: Slot = Arc::new(Mutex::new(None));
        let svc = service_fn(move |req| {
            let slot = slot.clone();
            async move { Ok::<_, Infallible>(forward(slot, upstream, req).await) }
        });
        let _ = auto::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), svc)
            .await;
    }

    async fn forward(
        slot: Slot,
        upstream: &'static str,
        req: Request<Incoming>,
    ) -> Response<BoxBody<Bytes, BodyError>> {
        let cached = slot.lock().ok().and_then(|mut s| s.take());
        let mut sender = match cached {
            Some(s) if !s.is_closed() => s,
            _ => match dial(upstream).await {
                Some(s) => s,
                None => return status(StatusCode::BAD_GATEWAY),
            },
        };
        if sender.ready().await.is_err() {
            return status(StatusCode::BAD_GATEWAY);
        }
        let (mut parts, body) = req.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = match Uri::try_from(path) {
            Ok(u) => u,
            Err(_) => return status(StatusCode::BAD_REQUEST),
        };
        let res = sender.send_request(Request::from_parts(parts, body)).await;
        if let Ok(mut s) = slot.lock() {
            *s = Some(sender);
        }
        match res {
            Ok(r) => r.map(|b| b.map_err(|e| -> BodyError { Box::new(e) }).boxed()),
            Err(_) => status(StatusCode::BAD_GATEWAY),
        }
    }

    async fn dial(upstream: &str) -> Option<SendRequest<Incoming>> {
        let tcp = tokio::net::TcpStream::connect(upstream).await.ok()?;
        let _ = tcp.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .ok()?;
        tokio::spawn(conn);
        Some(sender)
    }
}
