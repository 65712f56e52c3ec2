//! gRPC channels to lnd, tapd and litd, built exactly as those daemons expect: TLS pinned to the
//! node's own `tls.cert`, the macaroon in hex under the `macaroon` metadata key on every call, a
//! deadline on every unary call, HTTP/2 keepalive, and reconnection after failures.
//!
//! This module owns the transport and nothing above it: it never sees a protobuf message, and
//! it never reads or logs a credential beyond loading the two files once. The adapters build
//! their generated clients on the returned [`AuthChannel`] (`LightningClient::new(chan.clone())`,
//! `TaprootAssetChannelsClient::new(chan.clone())`, …) and map failed calls with
//! [`NodeConnection::call_error`].
//!
//! ## Why TLS is done here and not by tonic
//! lnd, tapd and litd generate a self-signed certificate with `basicConstraints CA:TRUE`. Pinned
//! as a root through tonic's `ClientTlsConfig::ca_certificate`, it fails webpki's path building
//! with `CaUsedAsEndEntity`: a CA certificate may not also be the server's own. So tapgate dials
//! TCP itself, runs rustls with [`PinnedCertVerifier`] (the handshake succeeds iff the server
//! presents exactly a pinned certificate and proves it holds that certificate's key), and hands
//! the stream to tonic through `Endpoint::connect_with_connector_lazy`. The endpoint URI has the
//! `http` scheme so that tonic does not try TLS a second time (tonic 0.14's connector wraps the
//! stream in TLS only for `https`, and without a TLS config refuses `https` outright); the
//! requests still carry `:scheme https`, through the endpoint's origin. Certificate validity
//! dates are not checked: the pin is the identity, as it is for `lncli`.
//!
//! ## litd
//! tapd inside litd (integrated mode) is reached like any other node: its `NodeConnection` has
//! litd's port (`8443`), litd's `tls.cert` (`~/.lit/tls.cert`) and **tapd's** macaroon
//! (`~/.tapd/data/<network>/admin.macaroon`). This is also how Polar talks to tapd in a litd
//! node. The same tapd services are served on lnd's port 10009 with lnd's certificate and tapd's
//! macaroon.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::metadata::{AsciiMetadataValue, MetadataKey};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Request, Status};

use super::error::{BackendError, ConnectFailure, NodeFile};

/// The channel every generated client is built on: tonic's channel with the macaroon added to
/// each request. Cloning is cheap and shares the connection.
pub type AuthChannel = InterceptedService<Channel, MacaroonInterceptor>;

/// The per-call deadline when none is configured. tapd's `AddInvoice` negotiates a quote with
/// the edge node and waits up to 30 s for it (`rfq.DefaultTimeout`), so the deadline leaves
/// room for that and for the invoice itself.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long an open stream may go without traffic before an HTTP/2 ping checks the connection.
/// gRPC-Go servers answer pings that come more often than their enforcement policy allows with
/// `GOAWAY too_many_pings`, which kills every stream on the connection. lnd permits one every
/// 5 s (`grpc.client-ping-min-wait`), but gRPC-Go's default, which other servers (litd's proxy,
/// for all tapgate can tell) may keep, is 5 minutes; this is just above it.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(310);

/// How long to wait for the answer to a keepalive ping before treating the connection as dead.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The metadata key lnd, tapd and litd read the macaroon from (lnd `macaroons/auth.go`).
const MACAROON_KEY: &str = "macaroon";

/// Where a node is and how to prove who we are to it. Holds paths only, never file contents,
/// so `Debug` shows nothing secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConnection {
    /// `host:port` or `https://host:port` of the node's gRPC port (lnd 10009, tapd 10029,
    /// litd 8443).
    pub endpoint: String,
    /// The node's `tls.cert` (PEM). For tapd behind litd's port: litd's `tls.cert`.
    pub tls_cert_path: PathBuf,
    /// The node's binary macaroon. For tapd behind litd: tapd's `admin.macaroon`.
    pub macaroon_path: PathBuf,
    /// Deadline for each unary call, and for opening the connection.
    pub timeout: Duration,
    /// The name sent in TLS SNI. Defaults to the endpoint's host; the pin, not the name, decides
    /// whether the server is accepted.
    pub tls_server_name: Option<String>,
}

impl NodeConnection {
    /// A connection with the default timeout ([`DEFAULT_TIMEOUT`]) and SNI from the endpoint.
    pub fn new(
        endpoint: impl Into<String>,
        tls_cert_path: impl Into<PathBuf>,
        macaroon_path: impl Into<PathBuf>,
    ) -> Self {
        NodeConnection {
            endpoint: endpoint.into(),
            tls_cert_path: tls_cert_path.into(),
            macaroon_path: macaroon_path.into(),
            timeout: DEFAULT_TIMEOUT,
            tls_server_name: None,
        }
    }

    /// Maps a failed call on a channel built from this connection: deadlines (tonic's or the
    /// node's), connection and TLS failures, macaroon refusals, tapd's domain errors, and
    /// otherwise the status itself. See [`BackendError::from_call`].
    pub fn call_error(&self, call: &'static str, status: Status) -> BackendError {
        BackendError::from_call(call, &self.endpoint, self.timeout, status)
    }
}

/// A lazily connected channel for unary calls: each call must complete within
/// `conn.timeout`. Reads the certificate and the macaroon once, now; the TCP and TLS connection
/// is opened on the first call and reopened on the first call after it fails, so a node that
/// restarts is picked up again without rebuilding anything.
///
/// Must be called inside a Tokio runtime (tonic spawns the channel's worker task).
pub fn connect_lazy(conn: &NodeConnection) -> Result<AuthChannel, BackendError> {
    build(conn, Some(conn.timeout))
}

/// Like [`connect_lazy`], but without the per-call deadline, for long-lived server streams
/// (`SubscribeInvoices`, `SendPaymentV2`, `TrackPaymentV2`). tonic's per-call timeout bounds
/// the wait for the response headers, and a gRPC-Go server sends a stream's headers with its
/// first message unless the handler sends them earlier, so a subscription with nothing to report
/// would otherwise be cut after `conn.timeout`.
/// Connecting is still bounded by `conn.timeout`, and a dead connection under an open stream is
/// detected by the HTTP/2 keepalive.
pub fn connect_lazy_streaming(conn: &NodeConnection) -> Result<AuthChannel, BackendError> {
    build(conn, None)
}

/// A lazily connected channel to a service that takes no macaroon, such as a price oracle
/// (tapd's sample oracle authenticates nothing); TLS is still pinned to `conn.tls_cert_path`,
/// and `conn.macaroon_path` is ignored.
pub fn connect_lazy_unauthenticated(conn: &NodeConnection) -> Result<AuthChannel, BackendError> {
    build_with(
        conn,
        Some(conn.timeout),
        MacaroonInterceptor { macaroon_hex: None },
    )
}

fn build(
    conn: &NodeConnection,
    call_timeout: Option<Duration>,
) -> Result<AuthChannel, BackendError> {
    let interceptor = MacaroonInterceptor::from_file(&conn.macaroon_path)?;
    build_with(conn, call_timeout, interceptor)
}

fn build_with(
    conn: &NodeConnection,
    call_timeout: Option<Duration>,
    interceptor: MacaroonInterceptor,
) -> Result<AuthChannel, BackendError> {
    let target = Target::parse(&conn.endpoint, conn.tls_server_name.as_deref())?;
    let pinned = read_pinned_certs(&conn.tls_cert_path)?;
    let tls = TlsConnector::from(Arc::new(pinned_client_config(pinned)?));

    let invalid = |reason: String| BackendError::InvalidEndpoint {
        endpoint: conn.endpoint.clone(),
        reason,
    };
    let uri = |scheme: &str| -> Result<Uri, BackendError> {
        format!("{scheme}://{}", target.authority)
            .parse::<Uri>()
            .map_err(|e| invalid(e.to_string()))
    };
    let mut endpoint = Endpoint::from(uri("http")?)
        .origin(uri("https")?)
        .connect_timeout(conn.timeout)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        // lnd refuses pings on a connection without streams unless configured otherwise
        // (`grpc.client-allow-ping-without-stream`); an idle connection is simply reopened.
        .keep_alive_while_idle(false);
    if let Some(timeout) = call_timeout {
        endpoint = endpoint.timeout(timeout);
    }

    if tokio::runtime::Handle::try_current().is_err() {
        return Err(BackendError::NoRuntime);
    }
    let target = Arc::new(target);
    let connector = tower::service_fn(move |_: Uri| dial(Arc::clone(&target), tls.clone()));
    let channel = endpoint.connect_with_connector_lazy(connector);
    Ok(InterceptedService::new(channel, interceptor))
}

/// Opens TCP, runs the pinned TLS handshake offering only HTTP/2, and checks the server agreed
/// to it. The endpoint URI tonic passes is ignored: the target was parsed once, up front (the
/// host name itself is resolved on every dial, so a node that moves is found again).
async fn dial(
    target: Arc<Target>,
    tls: TlsConnector,
) -> Result<TokioIo<TlsStream<TcpStream>>, ConnectFailure> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(ConnectFailure::Tcp)?;
    // gRPC calls are small request/response exchanges: do not let Nagle delay them.
    tcp.set_nodelay(true).map_err(ConnectFailure::Tcp)?;
    let stream = tls
        .connect(target.server_name.clone(), tcp)
        .await
        .map_err(ConnectFailure::Tls)?;
    if stream.get_ref().1.alpn_protocol() != Some(b"h2".as_slice()) {
        return Err(ConnectFailure::NoHttp2);
    }
    Ok(TokioIo::new(stream))
}

/// The endpoint, resolved once: what to dial, what to send in SNI, and the authority for URIs.
#[derive(Debug)]
struct Target {
    /// Host to dial, without IPv6 brackets.
    host: String,
    port: u16,
    /// `host:port` as it appears in a URI (IPv6 in brackets).
    authority: String,
    server_name: ServerName<'static>,
}

impl Target {
    fn parse(endpoint: &str, server_name: Option<&str>) -> Result<Self, BackendError> {
        let invalid = |reason: &str| BackendError::InvalidEndpoint {
            endpoint: endpoint.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = endpoint.trim();
        let rest = match trimmed.split_once("://") {
            Some(("https", rest)) => rest,
            Some((scheme, _)) => {
                return Err(invalid(&format!(
                    "scheme {scheme}:// is not supported; the nodes only speak TLS (https:// or none)"
                )));
            }
            None => trimmed,
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let uri: Uri = format!("https://{rest}")
            .parse()
            .map_err(|_| invalid("not a host:port"))?;
        if uri.path() != "/" || uri.query().is_some() {
            return Err(invalid("a gRPC endpoint has no path"));
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        let port = authority.port_u16().ok_or_else(|| invalid("no port"))?;
        let bracketed = authority.host();
        let host = bracketed
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let sni = server_name.unwrap_or(&host);
        let server_name = match sni.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(sni.to_owned())
                .map_err(|_| invalid(&format!("{sni:?} is not a valid TLS server name")))?,
        };
        Ok(Target {
            authority: format!("{bracketed}:{port}"),
            host,
            port,
            server_name,
        })
    }
}

/// Every certificate in the PEM file; the node's own is normally the only one.
fn read_pinned_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, BackendError> {
    let pem = std::fs::read(path).map_err(|source| BackendError::ReadFile {
        file: NodeFile::TlsCert,
        path: path.to_owned(),
        source,
    })?;
    let bad = |reason: String| BackendError::BadCertificate {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block in the file".to_owned()));
    }
    Ok(certs)
}

/// A rustls client configuration that trusts exactly `pinned` and offers only HTTP/2.
pub fn pinned_client_config(
    pinned: Vec<CertificateDer<'static>>,
) -> Result<rustls::ClientConfig, BackendError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinnedCertVerifier::new(pinned, provider.signature_verification_algorithms);
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(BackendError::TlsConfig)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Accepts a server iff its end-entity certificate is byte-for-byte one of the pinned ones, and
/// checks the handshake signature against that certificate's key, so a server that copied the
/// certificate without the key is refused. Intermediates, names and validity dates are ignored:
/// a self-signed node certificate has none worth checking, and the pin is the identity.
#[derive(Debug)]
pub struct PinnedCertVerifier {
    pinned: Vec<CertificateDer<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedCertVerifier {
    /// Pins `pinned`, verifying handshake signatures with `algorithms` (the crypto provider's
    /// `signature_verification_algorithms`).
    pub fn new(
        pinned: Vec<CertificateDer<'static>>,
        algorithms: WebPkiSupportedAlgorithms,
    ) -> Self {
        PinnedCertVerifier { pinned, algorithms }
    }
}

/// Why a presented certificate was refused. rustls prints the error it carries with `Debug`
/// ("invalid peer certificate: Other(OtherError(…))"), so `Debug` is the sentence too.
struct NotPinned;

impl fmt::Display for NotPinned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the server's certificate is not the one pinned from tls_cert_path")
    }
}

impl fmt::Debug for NotPinned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for NotPinned {}

impl ServerCertVerifier for PinnedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The certificate is public, so a plain comparison leaks nothing.
        if self
            .pinned
            .iter()
            .any(|pin| pin.as_ref() == end_entity.as_ref())
        {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(NotPinned)),
            )))
        }
    }

    // rustls calls the two signature checks with the end-entity certificate that
    // `verify_server_cert` has just accepted, so the key checked is the pinned certificate's.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Adds the node's macaroon, hex-encoded, as the `macaroon` metadata value of every request.
/// The value is marked sensitive, so HTTP/2 never puts it in its header compression table, and
/// `Debug` prints nothing of it.
#[derive(Clone)]
pub struct MacaroonInterceptor {
    /// `None` only for services that take no macaroon (a price oracle).
    macaroon_hex: Option<AsciiMetadataValue>,
}

impl MacaroonInterceptor {
    /// Reads the binary macaroon file once.
    fn from_file(path: &Path) -> Result<Self, BackendError> {
        let bytes = std::fs::read(path).map_err(|source| BackendError::ReadFile {
            file: NodeFile::Macaroon,
            path: path.to_owned(),
            source,
        })?;
        let bad = |reason: &str| BackendError::BadMacaroon {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let text = bytes.trim_ascii();
        if text.is_empty() {
            return Err(bad("the file is empty"));
        }
        // A V2 binary macaroon starts with its version byte (2), never with a hex digit; a hex
        // file is a common mix-up (`lncli bakemacaroon` prints hex).
        if text.iter().all(u8::is_ascii_hexdigit) {
            return Err(bad(
                "the file holds hex text, not the binary macaroon (decode it first)",
            ));
        }
        Self::from_macaroon(&bytes).map_err(|_| bad("cannot be sent as metadata"))
    }

    /// An interceptor sending `macaroon` (the binary macaroon, as in the node's file).
    pub fn from_macaroon(
        macaroon: &[u8],
    ) -> Result<Self, tonic::metadata::errors::InvalidMetadataValue> {
        let mut macaroon_hex = AsciiMetadataValue::try_from(hex::encode(macaroon))?;
        macaroon_hex.set_sensitive(true);
        Ok(MacaroonInterceptor {
            macaroon_hex: Some(macaroon_hex),
        })
    }
}

impl fmt::Debug for MacaroonInterceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MacaroonInterceptor")
            .field("macaroon", &"<redacted>")
            .finish()
    }
}

impl Interceptor for MacaroonInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.macaroon_hex {
            request
                .metadata_mut()
                .insert(MetadataKey::from_static(MACAROON_KEY), value.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use rustls::pki_types::PrivateKeyDer;
    use rustls::server::ResolvesServerCert;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A self-signed CA:TRUE certificate like lnd's, and its key (PKCS#8 DER).
    fn node_cert() -> (CertificateDer<'static>, Vec<u8>) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        (cert.der().clone(), key.serialize_der())
    }

    fn verifier(pinned: &CertificateDer<'static>) -> PinnedCertVerifier {
        PinnedCertVerifier::new(
            vec![pinned.clone()],
            rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    #[test]
    fn verifier_accepts_the_pinned_certificate_only() {
        let (pinned, _) = node_cert();
        let (other, _) = node_cert();
        let v = verifier(&pinned);
        let name = ServerName::try_from("localhost").unwrap();
        assert!(
            v.verify_server_cert(&pinned, &[], &name, &[], UnixTime::now())
                .is_ok()
        );
        let err = v
            .verify_server_cert(&other, &[], &name, &[], UnixTime::now())
            .unwrap_err();
        assert!(err.to_string().contains("not the one pinned"), "{err}");
        // Any server name: the pin decides, not the name.
        let ip = ServerName::IpAddress(IpAddr::from([10, 0, 0, 1]).into());
        assert!(
            v.verify_server_cert(&pinned, &[], &ip, &[], UnixTime::now())
                .is_ok()
        );
        assert!(!v.supported_verify_schemes().is_empty());
    }

    /// Serves `cert` with `key` (which may not be `cert`'s key: a server that copied the
    /// certificate) over an in-memory pipe, and returns the client's handshake result.
    async fn handshake(
        pinned: &CertificateDer<'static>,
        cert: &CertificateDer<'static>,
        key: &[u8],
        version: &'static rustls::SupportedProtocolVersion,
    ) -> Result<(), io::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let signing_key = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(key.to_vec().into()))
            .unwrap();
        // `CertifiedKey::new` does not check that the key matches, which is the point here.
        let certified = rustls::sign::CertifiedKey::new(vec![cert.clone()], signing_key);
        let resolver: Arc<dyn ResolvesServerCert> =
            Arc::new(rustls::sign::SingleCertAndKey::from(certified));
        let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        server_config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));

        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            if let Ok(mut stream) = acceptor.accept(server_io).await {
                let _ = stream.write_all(b"ok").await;
                let _ = stream.flush().await;
            }
        });
        let connector = TlsConnector::from(Arc::new(
            pinned_client_config(vec![pinned.clone()]).unwrap(),
        ));
        let name = ServerName::try_from("localhost").unwrap();
        let result = async {
            let mut stream = connector.connect(name, client_io).await?;
            assert_eq!(stream.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
            let mut buf = [0u8; 2];
            stream.read_exact(&mut buf).await?;
            Ok(())
        }
        .await;
        drop(server.await);
        result
    }

    #[tokio::test]
    async fn handshake_needs_the_pinned_certificate_and_its_key() {
        let (pinned, pinned_key) = node_cert();
        let (other, other_key) = node_cert();
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let v = format!("{:?}", version.version);
            handshake(&pinned, &pinned, &pinned_key, version)
                .await
                .unwrap_or_else(|e| panic!("{v}: pinned certificate refused: {e}"));
            let err = handshake(&pinned, &other, &other_key, version)
                .await
                .unwrap_err();
            assert!(err.to_string().contains("not the one pinned"), "{v}: {err}");
            // A server that copied the pinned certificate but signs with another key.
            let err = handshake(&pinned, &pinned, &other_key, version)
                .await
                .unwrap_err();
            assert!(
                err.to_string().to_lowercase().contains("signature"),
                "{v}: {err}"
            );
        }
    }

    #[test]
    fn endpoints_parse_like_lncli_rpcserver() {
        let t = Target::parse("127.0.0.1:10009", None).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.authority.as_str()),
            ("127.0.0.1", 10009, "127.0.0.1:10009")
        );
        assert!(matches!(t.server_name, ServerName::IpAddress(_)));
        let t = Target::parse("https://localhost:8443/", None).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("localhost", 8443));
        let t = Target::parse("[::1]:10029", Some("tapd.local")).unwrap();
        assert_eq!(
            (t.host.as_str(), t.authority.as_str()),
            ("::1", "[::1]:10029")
        );
        assert!(matches!(t.server_name, ServerName::DnsName(_)));
        for bad in [
            "localhost",
            "http://localhost:10009",
            "localhost:10009/lnrpc",
            ":10009",
            "",
        ] {
            let err = Target::parse(bad, None).unwrap_err();
            assert!(
                matches!(err, BackendError::InvalidEndpoint { .. }),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn macaroon_interceptor_sends_hex_and_hides_it() {
        let mut interceptor = MacaroonInterceptor::from_macaroon(&[2, 1, 0xab]).unwrap();
        let request = interceptor.call(Request::new(())).unwrap();
        let values: Vec<_> = request.metadata().get_all(MACAROON_KEY).iter().collect();
        assert_eq!(values.len(), 1);
        assert_eq!(values[0].to_str().unwrap(), "0201ab");
        assert!(values[0].is_sensitive());
        assert!(!format!("{interceptor:?}").contains("0201ab"));
    }

    #[test]
    fn unusable_files_name_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("admin.macaroon");
        let err = MacaroonInterceptor::from_file(&missing).unwrap_err();
        assert!(matches!(
            err,
            BackendError::ReadFile {
                file: NodeFile::Macaroon,
                ..
            }
        ));
        assert!(err.to_string().contains(&missing.display().to_string()));

        let hex_file = dir.path().join("hex.macaroon");
        std::fs::write(&hex_file, "0201036c6e64").unwrap();
        assert!(matches!(
            MacaroonInterceptor::from_file(&hex_file),
            Err(BackendError::BadMacaroon { .. })
        ));

        let cert = dir.path().join("tls.cert");
        std::fs::write(&cert, "not a certificate").unwrap();
        let err = read_pinned_certs(&cert).unwrap_err();
        assert!(
            matches!(err, BackendError::BadCertificate { .. }),
            "{err:?}"
        );
    }
}
