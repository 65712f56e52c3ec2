//! lnd's REST API for a simulated node: what lnd's `restlisten` serves, on its own TLS port
//! with the node's `tls.cert`.
//!
//! Like lnd's REST proxy (lnd v0.21.0-beta `lnd.go` `startRestProxy`, grpc-gateway v2.16.0), this
//! gateway is a **client of the node's own gRPC server**: it dials the node's gRPC port over TLS
//! pinned to the node's certificate and forwards each request's `Grpc-Metadata-macaroon` header
//! (hex) as the `macaroon` metadata (grpc-gateway v2.16.0 `runtime/mux.go`
//! `DefaultHeaderMatcher` strips the `Grpc-Metadata-` prefix). So every macaroon check and every
//! answer is the gRPC server's; this module only translates HTTP/JSON to gRPC and back.
//!
//! | method | path | RPC (lnd v0.21.0-beta `lnrpc/lightning.yaml`, `lnrpc/routerrpc/router.yaml`) |
//! |---|---|---|
//! | GET | `/v1/getinfo` | `lnrpc.Lightning.GetInfo` |
//! | GET | `/v1/balance/channels` | `lnrpc.Lightning.ChannelBalance` |
//! | POST | `/v1/invoices` (body `*`) | `lnrpc.Lightning.AddInvoice` |
//! | GET | `/v1/invoice/{r_hash_str}` | `lnrpc.Lightning.LookupInvoice` |
//! | GET | `/v1/payreq/{pay_req}` | `lnrpc.Lightning.DecodePayReq` |
//! | POST | `/v2/router/send` (body `*`) | `routerrpc.Router.SendPaymentV2` (streamed) |
//!
//! JSON is [`json`]'s (lnd's protojson options). Errors are grpc-gateway's: a `google.rpc.Status`
//! body `{"code", "message", "details"}` with the HTTP status `HTTPStatusFromCode` maps the gRPC
//! code to, and `WWW-Authenticate: <message>` for `UNAUTHENTICATED` (grpc-gateway v2.16.0
//! `runtime/errors.go`). A stream answers newline-delimited `{"result": …}` objects; an error
//! after the first message is one more line `{"error": <Status>}`, an error before it is that
//! line with the error's HTTP status (`runtime/handler.go` `ForwardResponseStream`), also when
//! the node refuses the call outright (a trailers-only answer: grpc-go's `stream.Header()`
//! returns no error for it, so `router.pb.gw.go` hands the stream on and its first `Recv`
//! fails). Only a body that does not parse gets the plain error body. The real lnd answers a bad
//! invoice on `/v2/router/send` this way (seen on the regtest network).
//!
//! Not modelled: query parameters (lnd's gateway also fills request fields from them), the
//! WebSocket upgrade lnd wraps around the proxy, CORS, `Grpc-Timeout`, and HTTP/2.

pub mod json;

use std::convert::Infallible;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::{Code, Status};

use self::json::{FromJson, ToJson, from_json, status_json};
use super::tls::{TLS_CERT_FILE, TLS_KEY_FILE};
use crate::lightning::error::BackendError;
use crate::lightning::grpc::{AuthChannel, NodeConnection, connect_lazy_unauthenticated};
use crate::lightning::proto::lnrpc::lightning_client::LightningClient;
use crate::lightning::proto::routerrpc::router_client::RouterClient;
use crate::lightning::proto::{lnrpc, routerrpc};

/// The request header grpc-gateway turns into the `macaroon` metadata (lnd's REST docs: send the
/// macaroon hex-encoded in `Grpc-Metadata-macaroon`).
const MACAROON_HEADER: &str = "grpc-metadata-macaroon";

/// The metadata key lnd reads the macaroon from (lnd `macaroons/service.go`).
const MACAROON_METADATA: &str = "macaroon";

/// Request bodies larger than this are refused (lnd's requests here are a few hundred bytes).
const MAX_BODY: usize = 1 << 20;

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// After the stop signal, how long an open connection may finish its response before it is
/// dropped; with the listener closing at once, the server is gone within half a second.
const DRAIN: Duration = Duration::from_millis(250);

/// Stream updates buffered between the gRPC stream and a slow HTTP client.
const STREAM_BUFFER: usize = 16;

/// The REST gateway could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RestSetupError {
    /// The node's certificate or key could not be read.
    #[error("cannot read {} for the REST server: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The certificate or key file holds no usable PEM.
    #[error("{} holds no usable PEM {what} for the REST server", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was looked for.
        what: &'static str,
    },
    /// rustls refused the certificate and key.
    #[error("cannot configure TLS for the REST server: {0}")]
    Tls(#[source] rustls::Error),
    /// The gRPC channel to the node could not be built.
    #[error("cannot build the REST gateway's gRPC channel: {0}")]
    Channel(#[source] Box<BackendError>),
}

/// A TLS acceptor presenting the node's `tls.cert`/`tls.key` from `lnd_dir`, offering HTTP/1.1.
pub fn tls_acceptor(lnd_dir: &Path) -> Result<TlsAcceptor, RestSetupError> {
    let read = |name: &str| {
        let path = lnd_dir.join(name);
        std::fs::read(&path)
            .map(|bytes| (path.clone(), bytes))
            .map_err(|source| RestSetupError::Read { path, source })
    };
    let (cert_path, cert_pem) = read(TLS_CERT_FILE)?;
    let (key_path, key_pem) = read(TLS_KEY_FILE)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()
        .filter(|c| !c.is_empty())
        .ok_or(RestSetupError::Pem {
            path: cert_path,
            what: "certificate",
        })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| RestSetupError::Pem {
        path: key_path,
        what: "private key",
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(RestSetupError::Tls)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(RestSetupError::Tls)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The gateway's clients of one node's gRPC server. Cloning shares the connection.
#[derive(Clone, Debug)]
pub struct Gateway {
    lnd: LightningClient<AuthChannel>,
    router: RouterClient<AuthChannel>,
}

impl Gateway {
    /// Clients of the gRPC server at `grpc_endpoint`, TLS pinned to `tls_cert_path`, carrying no
    /// macaroon of their own (each request forwards its caller's). Connects lazily; must be
    /// called inside a Tokio runtime.
    pub fn connect(grpc_endpoint: &str, tls_cert_path: &Path) -> Result<Self, RestSetupError> {
        let conn = NodeConnection::new(grpc_endpoint, tls_cert_path, PathBuf::new());
        let channel = connect_lazy_unauthenticated(&conn)
            .map_err(|e| RestSetupError::Channel(Box::new(e)))?;
        Ok(Gateway {
            lnd: LightningClient::new(channel.clone()),
            router: RouterClient::new(channel),
        })
    }
}

/// Serves lnd's REST API on `listener` until `stop` turns `true` (or its sender is dropped):
/// the listener closes at once, open connections get [`DRAIN`] to finish.
pub async fn serve(
    listener: TcpListener,
    tls: TlsAcceptor,
    gateway: Gateway,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut stop) => return,
        };
        match accepted {
            Ok((tcp, _)) => {
                tokio::spawn(connection(tcp, tls.clone(), gateway.clone(), stop.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "REST accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Resolves once the stop signal is `true` or its sender is gone. Owns no guard, so the future
/// that awaits it stays `Send`.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn connection(
    tcp: tokio::net::TcpStream,
    tls: TlsAcceptor,
    gateway: Gateway,
    mut stop: watch::Receiver<bool>,
) {
    let handshake = tokio::select! {
        h = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)) => h,
        () = stopped(&mut stop) => return,
    };
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "REST TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    let service_stop = stop.clone();
    let service = service_fn(move |req| {
        let gateway = gateway.clone();
        let stop = service_stop.clone();
        async move { Ok::<_, Infallible>(handle(&gateway, stop, req).await) }
    });
    // With a timer, hyper applies its default 30 s limit on reading a request's headers.
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        served = conn.as_mut() => {
            if let Err(e) = served {
                tracing::debug!(error = %e, "REST connection ended with an error");
            }
        }
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN, conn).await;
        }
    }
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// One HTTP request: route, translate, call, translate back. Never fails: every refusal is an
/// error body.
async fn handle(
    gateway: &Gateway,
    stop: watch::Receiver<bool>,
    req: Request<Incoming>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let metadata = forwarded_metadata(&parts.headers);
    let path = parts.uri.path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let route = Route::find(&segments);
    let Some(route) = route else {
        // grpc-gateway v2.16.0 runtime/errors.go DefaultRoutingErrorHandler: 404 → NotFound.
        return error_response(&Status::not_found("Not Found"));
    };
    if parts.method != route.method() {
        // The path exists under another method: 405 → Unimplemented (same handler).
        return error_response(&Status::unimplemented("Method Not Allowed"));
    }
    let outcome = match route {
        Route::GetInfo => {
            let call = with_metadata(lnrpc::GetInfoRequest {}, &metadata);
            unary(gateway.lnd.clone().get_info(call).await)
        }
        Route::ChannelBalance => {
            let call = with_metadata(lnrpc::ChannelBalanceRequest {}, &metadata);
            unary(gateway.lnd.clone().channel_balance(call).await)
        }
        Route::AddInvoice => match read_body::<lnrpc::Invoice>(body).await {
            Ok(invoice) => {
                let call = with_metadata(invoice, &metadata);
                unary(gateway.lnd.clone().add_invoice(call).await)
            }
            Err(status) => Err(status),
        },
        Route::LookupInvoice(r_hash_str) => match path_param(r_hash_str).and_then(|s| r_hash(&s)) {
            Ok(r_hash) => {
                let call = with_metadata(lnrpc::PaymentHash { r_hash }, &metadata);
                unary(gateway.lnd.clone().lookup_invoice(call).await)
            }
            Err(status) => Err(status),
        },
        Route::DecodePayReq(pay_req) => match path_param(pay_req) {
            Ok(pay_req) => {
                let call = with_metadata(lnrpc::PayReqString { pay_req }, &metadata);
                unary(gateway.lnd.clone().decode_pay_req(call).await)
            }
            Err(status) => Err(status),
        },
        Route::SendPayment => match read_body::<routerrpc::SendPaymentRequest>(body).await {
            Ok(request) => {
                let call = with_metadata(request, &metadata);
                // A call refused before its first message (a trailers-only answer: a bad
                // invoice, a macaroon refusal) reaches grpc-gateway as the stream's first
                // `Recv` error, since grpc-go's `Header()` returns no error for it: a single
                // `{"error": …}` line with the error's HTTP status, as the real lnd answers.
                match gateway.router.clone().send_payment_v2(call).await {
                    Ok(stream) => return stream_response(stream.into_inner(), stop).await,
                    Err(status) => return stream_error_response(&status),
                }
            }
            Err(status) => Err(status),
        },
    };
    match outcome {
        Ok(json) => json_response(StatusCode::OK, &json),
        Err(status) => error_response(&status),
    }
}

/// The routes of lnd's REST annotations that simnet serves, with their path parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    GetInfo,
    ChannelBalance,
    AddInvoice,
    LookupInvoice(&'a str),
    DecodePayReq(&'a str),
    SendPayment,
}

impl<'a> Route<'a> {
    /// The route a path's segments name, whatever the method (grpc-gateway splits `path[1:]`
    /// on `/`; a `{param}` matches one segment).
    fn find(segments: &[&'a str]) -> Option<Self> {
        Some(match segments {
            ["v1", "getinfo"] => Route::GetInfo,
            ["v1", "balance", "channels"] => Route::ChannelBalance,
            ["v1", "invoices"] => Route::AddInvoice,
            ["v1", "invoice", hash] => Route::LookupInvoice(hash),
            ["v1", "payreq", pay_req] => Route::DecodePayReq(pay_req),
            ["v2", "router", "send"] => Route::SendPayment,
            _ => return None,
        })
    }

    fn method(self) -> Method {
        match self {
            Route::AddInvoice | Route::SendPayment => Method::POST,
            Route::GetInfo
            | Route::ChannelBalance
            | Route::LookupInvoice(_)
            | Route::DecodePayReq(_) => Method::GET,
        }
    }
}

/// The caller's `Grpc-Metadata-macaroon` values as `macaroon` metadata, every one of them (the
/// node refuses more than one, as lnd does). Marked sensitive; never logged.
fn forwarded_metadata(headers: &hyper::HeaderMap) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    for value in headers.get_all(MACAROON_HEADER) {
        if let Ok(mut value) = AsciiMetadataValue::try_from(value.as_bytes()) {
            value.set_sensitive(true);
            metadata.append(MACAROON_METADATA, value);
        }
    }
    metadata
}

fn with_metadata<T>(message: T, metadata: &MetadataMap) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    *request.metadata_mut() = metadata.clone();
    request
}

fn unary<T: ToJson>(answer: Result<tonic::Response<T>, Status>) -> Result<Value, Status> {
    answer.map(|r| r.into_inner().to_json())
}

/// Reads and parses a request body as grpc-gateway's generated handlers do: an empty body is
/// the empty message (the decoder's `io.EOF` is ignored, lnd v0.21.0-beta
/// `lnrpc/routerrpc/router.pb.gw.go`), anything unreadable or unparsable is `InvalidArgument`.
async fn read_body<T: FromJson>(body: Incoming) -> Result<T, Status> {
    let bytes = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| Status::invalid_argument(e.to_string()))?
        .to_bytes();
    parse_body(&bytes)
}

fn parse_body<T: FromJson>(bytes: &[u8]) -> Result<T, Status> {
    // grpc-gateway's JSONPb decoder reads one JSON value and ignores what follows it.
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    match values.next() {
        None => Ok(T::default()),
        Some(Err(e)) => Err(Status::invalid_argument(e.to_string())),
        Some(Ok(value)) => from_json(&value).map_err(|e| Status::invalid_argument(e.to_string())),
    }
}

/// A path parameter, percent-decoded (grpc-gateway v2.16.0's default unescaping reads Go's
/// already-unescaped `URL.Path`).
fn path_param(raw: &str) -> Result<String, Status> {
    let bad = || Status::invalid_argument(format!("invalid URL escape in {raw:?}"));
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let decoded = hex::decode(hex).map_err(|_| bad())?;
            out.extend_from_slice(&decoded);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// `r_hash_str` (hex) to the raw hash, as lnd's `LookupInvoice` does (lnd v0.21.0-beta
/// `rpcserver.go`: `hex.DecodeString`, then "payment hash must be exactly 32 bytes" unless
/// empty; an empty hash is copied into a zero `[32]byte`). Go's hex errors and lnd's length
/// error are not gRPC statuses, so they reach the client as `Unknown` (HTTP 500). simnet's
/// `PaymentHash` has no `r_hash_str`, so the gateway does this step.
fn r_hash(r_hash_str: &str) -> Result<Vec<u8>, Status> {
    let bytes = r_hash_str.as_bytes();
    if let Some(bad) = bytes.iter().find(|b| !b.is_ascii_hexdigit()) {
        let c = char::from(*bad);
        return Err(Status::unknown(format!(
            "encoding/hex: invalid byte: U+{:04X} {c:?}",
            u32::from(c)
        )));
    }
    let decoded =
        hex::decode(bytes).map_err(|_| Status::unknown("encoding/hex: odd length hex string"))?;
    match decoded.len() {
        0 => Ok(vec![0; 32]),
        32 => Ok(decoded),
        n => Err(Status::unknown(format!(
            "payment hash must be exactly 32 bytes, is instead {n}"
        ))),
    }
}

fn json_response(status: StatusCode, json: &Value) -> Response<Body> {
    let body = Bytes::from(json.to_string());
    let mut response = Response::new(Full::new(body).boxed_unsync());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// grpc-gateway v2.16.0 `runtime/errors.go` `HTTPStatusFromCode`.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        // 499 "Client Closed Request" is valid: three digits.
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn status_body(status: &Status) -> Value {
    status_json(i32::from(status.code()), status.message())
}

/// grpc-gateway v2.16.0 `runtime/errors.go` `DefaultHTTPErrorHandler`.
fn error_response(status: &Status) -> Response<Body> {
    let mut response = json_response(http_status(status.code()), &status_body(status));
    if status.code() == Code::Unauthenticated
        && let Ok(value) = HeaderValue::from_str(status.message())
    {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

fn stream_line(key: &str, value: Value) -> Bytes {
    let mut line = serde_json::json!({ key: value }).to_string().into_bytes();
    line.push(b'\n');
    Bytes::from(line)
}

/// A stream whose first update is an error: that one `{"error": …}` line, with the error's
/// HTTP status.
fn stream_error_response(e: &Status) -> Response<Body> {
    let mut response =
        Response::new(Full::new(stream_line("error", status_body(e))).boxed_unsync());
    *response.status_mut() = http_status(e.code());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// grpc-gateway v2.16.0 `runtime/handler.go` `ForwardResponseStream`: the first update decides
/// the HTTP status (200, or the error's status with a single `{"error": …}` line); later
/// updates are `{"result": …}` lines, a later error a final `{"error": …}` line.
async fn stream_response(
    mut stream: tonic::Streaming<lnrpc::Payment>,
    mut stop: watch::Receiver<bool>,
) -> Response<Body> {
    let first = tokio::select! {
        first = stream.message() => first,
        () = stopped(&mut stop) => Err(Status::unavailable("the node is shutting down")),
    };
    let (status, first_line) = match first {
        Ok(Some(payment)) => (StatusCode::OK, stream_line("result", payment.to_json())),
        Ok(None) => {
            let response = Response::new(Full::new(Bytes::new()).boxed_unsync());
            return response;
        }
        Err(e) => return stream_error_response(&e),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(STREAM_BUFFER);
    tokio::spawn(async move {
        if tx.send(first_line).await.is_err() {
            return;
        }
        loop {
            let next = tokio::select! {
                next = stream.message() => next,
                () = stopped(&mut stop) => return,
            };
            let line = match next {
                Ok(Some(payment)) => stream_line("result", payment.to_json()),
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.send(stream_line("error", status_body(&e))).await;
                    return;
                }
            };
            // The client went away: dropping the gRPC stream cancels the call.
            if tx.send(line).await.is_err() {
                return;
            }
        }
    });
    let body = StreamBody::new(ReceiverStream::new(rx).map(|line| Ok(Frame::data(line))));
    let mut response = Response::new(body.boxed_unsync());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_lnds_rest_annotations() {
        let find = |p: &'static str| {
            let segments: Vec<&str> = p.trim_start_matches('/').split('/').collect();
            Route::find(&segments).map(Route::method)
        };
        assert_eq!(find("/v1/getinfo"), Some(Method::GET));
        assert_eq!(find("/v1/balance/channels"), Some(Method::GET));
        assert_eq!(find("/v1/invoices"), Some(Method::POST));
        assert_eq!(find("/v1/invoice/ab"), Some(Method::GET));
        assert_eq!(find("/v1/payreq/lnbcrt1"), Some(Method::GET));
        assert_eq!(find("/v2/router/send"), Some(Method::POST));
        assert_eq!(find("/v1/invoice/ab/cd"), None);
        assert_eq!(find("/v1/getinfo/"), None);
    }

    #[test]
    fn http_statuses_are_grpc_gateways() {
        assert_eq!(http_status(Code::Unauthenticated), StatusCode::UNAUTHORIZED);
        assert_eq!(http_status(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(http_status(Code::InvalidArgument), StatusCode::BAD_REQUEST);
        assert_eq!(
            http_status(Code::FailedPrecondition),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            http_status(Code::Unknown),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(http_status(Code::Cancelled).as_u16(), 499);
        assert_eq!(
            http_status(Code::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn r_hash_str_is_decoded_as_lnd_does() {
        assert_eq!(r_hash(&"ab".repeat(32)).unwrap(), vec![0xab; 32]);
        assert_eq!(r_hash("").unwrap(), vec![0; 32]);
        let bad = r_hash("xy").unwrap_err();
        assert_eq!(bad.code(), Code::Unknown);
        assert_eq!(bad.message(), "encoding/hex: invalid byte: U+0078 'x'");
        assert_eq!(
            r_hash("abc").unwrap_err().message(),
            "encoding/hex: odd length hex string"
        );
        assert_eq!(
            r_hash("abcd").unwrap_err().message(),
            "payment hash must be exactly 32 bytes, is instead 2"
        );
    }

    #[test]
    fn path_params_are_percent_decoded_and_bad_escapes_refused() {
        assert_eq!(path_param("ln%62crt").unwrap(), "lnbcrt");
        assert_eq!(path_param("a%2").unwrap_err().code(), Code::InvalidArgument);
        assert_eq!(
            path_param("a%zz").unwrap_err().code(),
            Code::InvalidArgument
        );
    }

    #[test]
    fn an_empty_body_is_the_empty_message_and_a_bad_one_is_invalid_argument() {
        let empty: lnrpc::Invoice = parse_body(b"  ").unwrap();
        assert_eq!(empty, lnrpc::Invoice::default());
        let bad = parse_body::<lnrpc::Invoice>(b"{not json").unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument);
        let unknown = parse_body::<lnrpc::Invoice>(br#"{"nope": 1}"#).unwrap_err();
        assert_eq!(unknown.message(), r#"proto: unknown field "nope""#);
    }

    #[test]
    fn an_error_body_is_a_google_rpc_status() {
        let response = error_response(&Status::unauthenticated("verification failed"));
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers().get(WWW_AUTHENTICATE).unwrap(),
            "verification failed"
        );
        assert_eq!(
            status_body(&Status::not_found("x")),
            serde_json::json!({"code": 5, "message": "x", "details": []})
        );
    }
}
