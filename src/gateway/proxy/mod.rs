//! The reverse proxy: sends a request the router has already matched and let through to the
//! service's upstream, and streams the upstream's answer back.
//!
//! It owns the connections to upstreams (one pooled client per protocol and connect timeout:
//! HTTP/1.1 for `http://`, HTTP/2 with prior knowledge for `grpc://`; and, for an HTTP/1.1
//! client connection to an `http://` upstream, that connection's own upstream connection,
//! [`affinity`]), the rewrite of the
//! request onto the upstream ([`headers`]), the connect and response-header timeouts, and the
//! classification of failures into [`ProxyError`]s that say which status the buyer gets.
//!
//! Bodies stream both ways, frame by frame, trailers included (gRPC's status travels in
//! them): nothing is buffered, so a large upload or a long server stream costs the gateway no
//! more memory than one frame. Only the time to response headers is bounded; a body may take
//! as long as it streams.
//!
//! It must not decide whether a request may pass (payment, tier, method, free calls: the
//! router and the mint), must not write error bodies (the caller does, from
//! [`ProxyError::status`] and [`ProxyError::reason`]), must not buffer a body, and must never
//! pass on or log the buyer's L402 credential.
//!
//! `https://` upstreams are not spoken yet: there is no root store in the tree to verify an
//! upstream's certificate with, and "accept any certificate" is not an option. The settings
//! refuse such an upstream at start (`services.N.upstream`); [`Proxy::forward`] answers 502
//! for one built in code.

pub mod affinity;
pub mod headers;

use std::collections::HashMap;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::combinators::{BoxBody, UnsyncBoxBody};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use self::affinity::{Affinity, Checkout, Lease};
use self::headers::{Direction, Protocol, TargetError};
use crate::config::{Service, Upstream};

/// A body error, from either side: the client's upload or the upstream's answer broke off.
pub type BodyError = Box<dyn StdError + Send + Sync>;

/// A streamed body, as the proxy returns it and as the gateway answers with.
pub type Body = BoxBody<Bytes, BodyError>;

/// What the pooled clients send: the caller's body, boxed. Not `Sync`, because the body the
/// caller hands in need not be.
type OutBody = UnsyncBoxBody<Bytes, BodyError>;

/// How long an idle pooled connection is kept: under the 60 s idle limit common at load
/// balancers (and nginx's 75 s), so the pool seldom hands out a connection the upstream is
/// about to close. When it does (Node.js closes idle connections after 5 s), hyper retries a
/// request none of which was written on a fresh connection.
const POOL_IDLE: Duration = Duration::from_secs(55);

/// The two waits a forward is bounded by, from the service's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// For the TCP connection to be accepted (`connect_timeout_ms`).
    pub connect: Duration,
    /// For the response headers, from when the request is sent, connecting included
    /// (`timeout_secs`).
    pub response: Duration,
}

impl Timeouts {
    /// The service's `connect_timeout_ms` and `timeout_secs`.
    pub fn of(service: &Service) -> Self {
        Self {
            connect: Duration::from_millis(service.connect_timeout_ms),
            response: Duration::from_secs(service.timeout_secs),
        }
    }
}

/// One request's forwarding instructions, from the router.
#[derive(Clone, Debug)]
pub struct Forward<'a> {
    /// Where the matched service's requests go.
    pub upstream: &'a Upstream,
    /// The buyer's address, appended to `X-Forwarded-For`.
    pub client_addr: SocketAddr,
    /// `client_addr` as `X-Forwarded-For` writes it alone, if the caller made it once for
    /// the connection ([`headers::forwarded_for_with`]).
    pub client_forwarded_for: Option<&'a HeaderValue>,
    /// The scheme the buyer reached the gateway with, for `X-Forwarded-Proto` (`"http"`; a
    /// TLS-terminating proxy in front may pass `"https"`).
    pub proto: &'static str,
    /// Headers for the upstream (`X-Tapgate-Token-Id`, `X-Tapgate-Tier`, …). Each name
    /// replaces whatever the client sent under it; a name given twice is sent twice.
    pub extra_headers: Vec<(HeaderName, HeaderValue)>,
    /// The service's timeouts.
    pub timeouts: Timeouts,
    /// The client connection's own upstream connection, for an HTTP/1.1 client connection
    /// (`None` for HTTP/2, whose concurrent streams would queue on one HTTP/1.1 connection):
    /// an `http://` upstream is then reached through it, not the shared pool.
    pub affinity: Option<&'a Affinity>,
}

/// Which wait ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutStage {
    /// The upstream did not accept the TCP connection in time.
    Connect,
    /// It accepted, but sent no response headers in time.
    ResponseHeaders,
}

impl TimeoutStage {
    /// The service key that sets this wait.
    pub fn key(self) -> &'static str {
        match self {
            Self::Connect => "connect_timeout_ms",
            Self::ResponseHeaders => "timeout_secs",
        }
    }
}

/// Why a request could not be forwarded, or its answer not received.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Nothing accepted the connection (refused, unroutable, the name did not resolve): the
    /// upstream is down or the service's `upstream` is wrong.
    #[error(
        "cannot connect to upstream {upstream}; check that it is running and that the service's upstream names it"
    )]
    Connect {
        /// The upstream as configured.
        upstream: String,
        /// The connector's error (an I/O or DNS error underneath).
        #[source]
        source: BodyError,
    },
    /// A wait ran out; see [`TimeoutStage`].
    #[error(
        "upstream {upstream} did not {} within {after:?}; it is overloaded or hung, or the service's {} is too short",
        match stage { TimeoutStage::Connect => "accept a connection", TimeoutStage::ResponseHeaders => "send response headers" },
        stage.key()
    )]
    Timeout {
        /// The upstream as configured.
        upstream: String,
        /// Which wait.
        stage: TimeoutStage,
        /// How long it was.
        after: Duration,
    },
    /// The upstream broke the protocol or the connection after it was made (a reset, a
    /// malformed response, HTTP/1.1 where HTTP/2 was expected), or cannot be spoken to at all
    /// (an `https://` upstream).
    #[error(
        "upstream {upstream} failed the exchange; check its logs, and that a grpc:// upstream speaks HTTP/2 without TLS"
    )]
    Upstream {
        /// The upstream as configured.
        upstream: String,
        /// What went wrong.
        #[source]
        source: BodyError,
    },
    /// The request cannot be sent on (its target is not a path, or a header would be invalid).
    #[error("the request cannot be forwarded: {reason}")]
    BadRequest {
        /// What about it.
        reason: String,
    },
}

impl ProxyError {
    /// The status the buyer gets: 502 when the upstream is unreachable or misbehaves, 504 when
    /// it is too slow (to connect or to answer), 400 for a request that cannot be forwarded.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Connect { .. } | Self::Upstream { .. } => StatusCode::BAD_GATEWAY,
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
        }
    }

    /// A stable machine-readable reason for response bodies and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "upstream_unreachable",
            Self::Timeout { .. } => "upstream_timeout",
            Self::Upstream { .. } => "upstream_error",
            Self::BadRequest { .. } => "bad_request",
        }
    }
}

/// An `https://` upstream met at request time.
#[derive(Debug, thiserror::Error)]
#[error("https upstreams are not supported yet (no TLS client); use http:// or grpc://")]
struct HttpsUnsupported;

/// The upstream's base path or authority is not valid in a URI.
#[derive(Debug, thiserror::Error)]
#[error("the upstream URL cannot be used as a request target: {0}")]
struct BadUpstreamUrl(String);

/// Which pooled client a request goes through: connections are pooled per client, and the
/// connect timeout is the connector's, so each distinct timeout needs its own.
type ClientKey = (Protocol, Duration);

/// The reverse proxy. Cheap to clone; clones share the connection pools.
#[derive(Clone, Default)]
pub struct Proxy {
    /// One client per protocol and connect timeout, made on first use. The keys come from the
    /// settings (a few services, each one timeout), never from requests, so the map stays
    /// small. Locked only to clone or insert a client, never across an await.
    clients: Arc<RwLock<HashMap<ClientKey, Client<HttpConnector, OutBody>>>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").finish_non_exhaustive()
    }
}

impl Proxy {
    /// A proxy with empty pools. Needs no runtime until the first [`Proxy::forward`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `req` to `f.upstream` and returns its response, whose body streams from the
    /// upstream as the caller reads it. See the module documentation for what is rewritten.
    pub async fn forward<B>(
        &self,
        req: Request<B>,
        f: Forward<'_>,
    ) -> Result<Response<Body>, ProxyError>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BodyError>,
    {
        let upstream = f.upstream;
        let Some(protocol) = Protocol::of(upstream) else {
            return Err(ProxyError::Upstream {
                upstream: upstream.as_str().to_owned(),
                source: Box::new(HttpsUnsupported),
            });
        };
        // An HTTP/1.1 client connection's own upstream connection, if it is free (see
        // `affinity`); the shared pool otherwise.
        let mut affinity = match (protocol, f.affinity) {
            (Protocol::Http1, Some(a)) => match a.checkout(upstream) {
                Checkout::Own(lease, sender) => Some((lease, sender)),
                Checkout::Shared => None,
            },
            _ => None,
        };
        // A connection of the request's own is sent the origin form HTTP/1.1 servers expect:
        // with no base path on the upstream, that is the request's own target, kept as it is,
        // with the slot's `Host`. Everything else is moved onto the upstream (the pooled
        // client takes the absolute URI; it picks the connection by it).
        let as_is = headers::base_path(upstream).is_empty() && is_origin_form(req.uri());
        let (target, host) = match affinity.as_mut() {
            Some((lease, _)) if as_is => {
                let host = lease.host(upstream).map_err(|e| ProxyError::Upstream {
                    upstream: upstream.as_str().to_owned(),
                    source: Box::new(e),
                })?;
                (None, Some(host))
            }
            _ => {
                let (uri, authority) =
                    headers::target_uri(upstream, req.uri()).map_err(|e| match e {
                        TargetError::Upstream(why) => ProxyError::Upstream {
                            upstream: upstream.as_str().to_owned(),
                            source: Box::new(BadUpstreamUrl(why)),
                        },
                        TargetError::Request(reason) => ProxyError::BadRequest { reason },
                    })?;
                let host = match protocol {
                    Protocol::Http1 => {
                        Some(HeaderValue::from_str(authority.as_str()).map_err(|e| {
                            ProxyError::Upstream {
                                upstream: upstream.as_str().to_owned(),
                                source: Box::new(e),
                            }
                        })?)
                    }
                    Protocol::H2c => None,
                };
                (Some(uri), host)
            }
        };
        let (mut parts, body) = req.into_parts();
        let h = &mut parts.headers;
        headers::strip_hop_by_hop(h, Direction::Request);
        headers::strip_l402_credentials(h);
        headers::strip_gateway_headers(h);
        let xff = headers::forwarded_for_with(h, f.client_addr.ip(), f.client_forwarded_for)
            .map_err(|e| ProxyError::BadRequest {
                reason: format!("X-Forwarded-For would be invalid: {e}"),
            })?;
        h.insert(headers::X_FORWARDED_FOR, xff);
        h.insert(headers::X_FORWARDED_PROTO, proto_value(f.proto)?);
        for (name, _) in &f.extra_headers {
            h.remove(name);
        }
        for (name, value) in f.extra_headers {
            h.append(name, value);
        }
        // HTTP/1.1 names the upstream in Host; HTTP/2 in `:authority`, taken from the URI.
        match host {
            Some(host) => {
                h.insert(header::HOST, host);
            }
            None => {
                h.remove(header::HOST);
            }
        }
        parts.version = protocol.version();
        // The server's extensions (connection info, an HTTP/2 `:protocol`) describe the
        // client's connection, not this one.
        parts.extensions = http::Extensions::new();
        if let Some(uri) = target {
            parts.uri = match (&affinity, uri.path_and_query()) {
                (Some(_), Some(pq)) => http::Uri::from(pq.clone()),
                _ => uri,
            };
        }
        let body: OutBody = body.map_err(|e| -> BodyError { e.into() }).boxed_unsync();
        let out = Request::from_parts(parts, body);

        let exchange = async {
            match affinity {
                Some((lease, sender)) => {
                    own_connection(lease, sender, upstream, f.timeouts.connect, out).await
                }
                None => {
                    let client = self.client(protocol, f.timeouts.connect);
                    client
                        .request(out)
                        .await
                        .map_err(|e| classify(upstream, f.timeouts.connect, e))
                }
            }
        };
        let response = match tokio::time::timeout(f.timeouts.response, exchange).await {
            Err(_elapsed) => {
                return Err(ProxyError::Timeout {
                    upstream: upstream.as_str().to_owned(),
                    stage: TimeoutStage::ResponseHeaders,
                    after: f.timeouts.response,
                });
            }
            Ok(answer) => answer?,
        };
        let (mut parts, body) = response.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers, Direction::Response);
        // What the upstream spoke is this connection's business; the gateway's server frames
        // the answer for its own client.
        parts.version = http::Version::HTTP_11;
        parts.extensions = http::Extensions::new();
        let body: Body = body.map_err(|e| -> BodyError { Box::new(e) }).boxed();
        Ok(Response::from_parts(parts, body))
    }

    /// The pooled client for `protocol` with `connect` as its connect timeout.
    fn client(&self, protocol: Protocol, connect: Duration) -> Client<HttpConnector, OutBody> {
        // A panic while holding this lock leaves the map intact (insertions are single
        // calls), so a poisoned lock is used as is.
        // Every request reads; only the first request of a (protocol, timeout) pair writes.
        if let Some(c) = self
            .clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(protocol, connect))
        {
            return c.clone();
        }
        let mut clients = self.clients.write().unwrap_or_else(PoisonError::into_inner);
        clients
            .entry((protocol, connect))
            .or_insert_with(|| build_client(protocol, connect))
            .clone()
    }
}

/// Sends `req` on the client connection's own upstream connection (`sender`, or a new one),
/// and puts the connection back into the slot once the response headers are in. A kept-alive
/// connection the upstream closed meanwhile is replaced once, when none of the request was
/// written on it, as the pooled client does.
async fn own_connection(
    lease: Lease<'_>,
    mut sender: Option<SendRequest<OutBody>>,
    upstream: &Upstream,
    connect: Duration,
    mut req: Request<OutBody>,
) -> Result<Response<Incoming>, ProxyError> {
    let failed = |e: hyper::Error| ProxyError::Upstream {
        upstream: upstream.as_str().to_owned(),
        source: Box::new(e),
    };
    loop {
        let reused = sender.is_some();
        let mut s = match sender.take() {
            Some(s) => s,
            // Boxed: a new connection is rare, and its future would otherwise sit in every
            // request's.
            None => Box::pin(affinity::dial(upstream, connect)).await?,
        };
        if let Err(e) = s.ready().await {
            if reused {
                continue;
            }
            return Err(failed(e));
        }
        match s.try_send_request(req).await {
            Ok(response) => {
                lease.give_back(upstream, s);
                return Ok(response);
            }
            Err(mut e) => match e.take_message() {
                Some(unsent) if reused => req = unsent,
                _ => return Err(failed(e.into_error())),
            },
        }
    }
}

/// Whether `uri` is a request target in origin form (`/path?query`), as HTTP/1.1 clients send.
fn is_origin_form(uri: &http::Uri) -> bool {
    uri.scheme().is_none() && uri.authority().is_none() && uri.path().starts_with('/')
}

/// `X-Forwarded-Proto`: the two schemes a buyer reaches the gateway with need no copy.
fn proto_value(proto: &'static str) -> Result<HeaderValue, ProxyError> {
    match proto {
        "http" => Ok(HeaderValue::from_static("http")),
        "https" => Ok(HeaderValue::from_static("https")),
        other => HeaderValue::from_str(other).map_err(|e| ProxyError::BadRequest {
            reason: format!("X-Forwarded-Proto {other:?}: {e}"),
        }),
    }
}

fn build_client(protocol: Protocol, connect: Duration) -> Client<HttpConnector, OutBody> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect));
    // Small requests and gRPC messages should leave at once, not wait for Nagle.
    connector.set_nodelay(true);
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE)
        .http2_only(protocol == Protocol::H2c);
    builder.build(connector)
}

/// Sorts a client error: failing to connect (in time or at all) is the upstream being
/// unreachable; anything after that is the upstream failing the exchange.
fn classify(
    upstream: &Upstream,
    connect_timeout: Duration,
    e: hyper_util::client::legacy::Error,
) -> ProxyError {
    let upstream = upstream.as_str().to_owned();
    if !e.is_connect() {
        return ProxyError::Upstream {
            upstream,
            source: Box::new(e),
        };
    }
    // The connector reports its own timeout as an I/O error of kind `TimedOut`, somewhere
    // down the chain of causes.
    let mut timed_out = false;
    let mut cause: Option<&(dyn StdError + 'static)> = Some(&e);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            timed_out = true;
            break;
        }
        cause = c.source();
    }
    if timed_out {
        ProxyError::Timeout {
            upstream,
            stage: TimeoutStage::Connect,
            after: connect_timeout,
        }
    } else {
        ProxyError::Connect {
            upstream,
            source: Box::new(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_status_and_reason() {
        let up = "http://127.0.0.1:9".to_owned();
        let io = || -> BodyError { Box::new(std::io::Error::other("x")) };
        let cases = [
            (
                ProxyError::Connect {
                    upstream: up.clone(),
                    source: io(),
                },
                502,
                "upstream_unreachable",
            ),
            (
                ProxyError::Timeout {
                    upstream: up.clone(),
                    stage: TimeoutStage::Connect,
                    after: Duration::from_secs(2),
                },
                504,
                "upstream_timeout",
            ),
            (
                ProxyError::Upstream {
                    upstream: up.clone(),
                    source: io(),
                },
                502,
                "upstream_error",
            ),
            (
                ProxyError::BadRequest { reason: "x".into() },
                400,
                "bad_request",
            ),
        ];
        for (e, status, reason) in cases {
            assert_eq!((e.status().as_u16(), e.reason()), (status, reason), "{e}");
        }
        let slow = ProxyError::Timeout {
            upstream: up,
            stage: TimeoutStage::ResponseHeaders,
            after: Duration::from_secs(30),
        };
        assert!(
            slow.to_string()
                .contains("send response headers within 30s")
        );
        assert!(slow.to_string().contains("timeout_secs"));
    }

    #[test]
    fn timeouts_come_from_the_service() {
        let mut s = Service::example("a");
        s.connect_timeout_ms = 250;
        s.timeout_secs = 7;
        assert_eq!(
            Timeouts::of(&s),
            Timeouts {
                connect: Duration::from_millis(250),
                response: Duration::from_secs(7),
            }
        );
    }

    #[tokio::test]
    async fn an_https_upstream_is_refused_without_a_connection() {
        let upstream = Upstream::parse("https://127.0.0.1:1").unwrap();
        let f = Forward {
            upstream: &upstream,
            client_addr: "127.0.0.1:5".parse().unwrap(),
            client_forwarded_for: None,
            proto: "http",
            extra_headers: Vec::new(),
            timeouts: Timeouts::of(&Service::example("a")),
            affinity: None,
        };
        let req = Request::new(http_body_util::Empty::<Bytes>::new());
        let err = Proxy::new().forward(req, f).await.unwrap_err();
        assert_eq!(err.reason(), "upstream_error");
        assert!(
            err.source()
                .is_some_and(|s| s.to_string().contains("https"))
        );
    }
}
