//! Node channels against real TLS servers on 127.0.0.1: a simnet-style node (lnd-like CA:TRUE
//! certificate, macaroon checked by `MacaroonAuth`) serving a trivial `Lightning` service, and
//! tapgate's pinned-TLS, macaroon-carrying channel calling it. Covers the happy path, a wrong
//! certificate, a wrong or missing macaroon, a node restart, a deadline, and why tonic's own TLS
//! cannot be used against lnd.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use tapgate::l402::RootKey;
use tapgate::lightning::error::{BackendError, NodeFile};
use tapgate::lightning::grpc::{NodeConnection, connect_lazy, connect_lazy_streaming};
use tapgate::simnet::auth::{MacaroonAuth, write_macaroon};
use tapgate::simnet::tls::{TLS_CERT_FILE, write_node_tls};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, ServerTlsConfig};
use tonic::{Code, Request, Response, Status};

/// The generated `lnrpc` code (the crate keeps its copy private, so the test includes its own
/// from the same build output).
mod lnrpc {
    #![allow(clippy::all, missing_docs, dead_code)]
    tonic::include_proto!("lnrpc");
}

use lnrpc::lightning_client::LightningClient;
use lnrpc::lightning_server::{Lightning, LightningServer};
use lnrpc::{
    AddInvoiceResponse, ChannelBalanceRequest, ChannelBalanceResponse, GetInfoRequest,
    GetInfoResponse, Invoice, InvoiceSubscription, PayReq, PayReqString, PaymentHash,
};

/// A `Lightning` service where only `GetInfo` answers, after `delay`.
#[derive(Clone, Default)]
struct Node {
    delay: Duration,
}

type InvoiceStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<Invoice, Status>> + Send>>;

#[tonic::async_trait]
impl Lightning for Node {
    async fn get_info(
        &self,
        _: Request<GetInfoRequest>,
    ) -> Result<Response<GetInfoResponse>, Status> {
        tokio::time::sleep(self.delay).await;
        Ok(Response::new(GetInfoResponse {
            alias: "alice".to_owned(),
            block_height: 101,
            synced_to_chain: true,
            ..Default::default()
        }))
    }

    async fn add_invoice(
        &self,
        _: Request<Invoice>,
    ) -> Result<Response<AddInvoiceResponse>, Status> {
        Err(Status::unimplemented("AddInvoice"))
    }

    async fn lookup_invoice(&self, _: Request<PaymentHash>) -> Result<Response<Invoice>, Status> {
        Err(Status::unimplemented("LookupInvoice"))
    }

    type SubscribeInvoicesStream = InvoiceStream;

    async fn subscribe_invoices(
        &self,
        _: Request<InvoiceSubscription>,
    ) -> Result<Response<InvoiceStream>, Status> {
        Err(Status::unimplemented("SubscribeInvoices"))
    }

    async fn decode_pay_req(&self, _: Request<PayReqString>) -> Result<Response<PayReq>, Status> {
        Err(Status::unimplemented("DecodePayReq"))
    }

    async fn channel_balance(
        &self,
        _: Request<ChannelBalanceRequest>,
    ) -> Result<Response<ChannelBalanceResponse>, Status> {
        Err(Status::unimplemented("ChannelBalance"))
    }
}

/// A node's directory as lnd lays it out: `tls.cert`, `tls.key`, `admin.macaroon`.
struct NodeDir {
    dir: tempfile::TempDir,
    tls: ServerTlsConfig,
    root_key: RootKey,
}

impl NodeDir {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tls = write_node_tls(dir.path()).unwrap();
        let root_key = RootKey::generate().unwrap();
        write_macaroon(&dir.path().join("admin.macaroon"), &root_key, "lnd").unwrap();
        NodeDir { dir, tls, root_key }
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join(TLS_CERT_FILE)
    }

    fn macaroon(&self) -> PathBuf {
        self.dir.path().join("admin.macaroon")
    }

    fn connection(&self, addr: SocketAddr) -> NodeConnection {
        let mut conn = NodeConnection::new(addr.to_string(), self.cert(), self.macaroon());
        conn.timeout = Duration::from_secs(5);
        conn
    }
}

/// A server running until `stop`.
struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

async fn serve_on(listener: TcpListener, node_dir: &NodeDir, node: Node) -> Running {
    let addr = listener.local_addr().unwrap();
    let service =
        LightningServer::with_interceptor(node, MacaroonAuth::new(node_dir.root_key.clone()));
    let tls = node_dir.tls.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Running { addr, stop, task }
}

async fn serve(node_dir: &NodeDir, node: Node) -> Running {
    serve_on(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        node_dir,
        node,
    )
    .await
}

async fn get_info(conn: &NodeConnection) -> Result<GetInfoResponse, BackendError> {
    let mut client = LightningClient::new(connect_lazy(conn)?);
    client
        .get_info(GetInfoRequest {})
        .await
        .map(Response::into_inner)
        .map_err(|status| conn.call_error("GetInfo", status))
}

#[tokio::test]
async fn pinned_certificate_and_macaroon_get_an_answer() {
    let node_dir = NodeDir::new();
    let server = serve(&node_dir, Node::default()).await;
    let conn = node_dir.connection(server.addr);

    let info = get_info(&conn).await.unwrap();
    assert_eq!((info.alias.as_str(), info.block_height), ("alice", 101));

    // By name and with a scheme, as lncli's --rpcserver accepts it: SNI "localhost".
    let by_name = NodeConnection {
        endpoint: format!("https://localhost:{}", server.addr.port()),
        ..conn.clone()
    };
    assert_eq!(get_info(&by_name).await.unwrap().alias, "alice");

    // The channel for long-lived streams carries the macaroon the same way.
    let mut client = LightningClient::new(connect_lazy_streaming(&conn).unwrap());
    assert_eq!(
        client
            .get_info(GetInfoRequest {})
            .await
            .unwrap()
            .into_inner()
            .alias,
        "alice"
    );

    // One channel, cloned into several clients, shares the connection.
    let channel = connect_lazy(&conn).unwrap();
    let (mut a, mut b) = (
        LightningClient::new(channel.clone()),
        LightningClient::new(channel),
    );
    let (ra, rb) = tokio::join!(a.get_info(GetInfoRequest {}), b.get_info(GetInfoRequest {}));
    assert!(ra.is_ok() && rb.is_ok());

    // The connection's Debug shows paths, and nothing of the macaroon.
    let macaroon_hex = hex::encode(std::fs::read(node_dir.macaroon()).unwrap());
    assert!(!format!("{conn:?}").contains(&macaroon_hex));
    assert!(!format!("{:?}", connect_lazy(&conn).unwrap()).contains(&macaroon_hex));
    server.stop().await;
}

#[tokio::test]
async fn a_different_certificate_fails_the_handshake() {
    let node_dir = NodeDir::new();
    let impostor = NodeDir::new();
    let server = serve(&node_dir, Node::default()).await;
    let conn = NodeConnection {
        tls_cert_path: impostor.cert(),
        ..node_dir.connection(server.addr)
    };

    let err = get_info(&conn).await.unwrap_err();
    match &err {
        BackendError::Tls {
            endpoint, detail, ..
        } => {
            assert_eq!(endpoint, &server.addr.to_string());
            assert!(detail.contains("not the one pinned"), "{detail}");
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    assert!(err.to_string().contains("tls_cert_path"), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn a_macaroon_from_another_root_key_is_unauthenticated() {
    let node_dir = NodeDir::new();
    let server = serve(&node_dir, Node::default()).await;
    let foreign = node_dir.dir.path().join("foreign.macaroon");
    write_macaroon(&foreign, &RootKey::generate().unwrap(), "lnd").unwrap();
    let conn = NodeConnection {
        macaroon_path: foreign,
        ..node_dir.connection(server.addr)
    };

    let err = get_info(&conn).await.unwrap_err();
    assert!(
        matches!(
            err,
            BackendError::Unauthorized {
                call: "GetInfo",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), Some(Code::Unauthenticated));
    assert!(err.to_string().contains("signature mismatch"), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn a_missing_macaroon_file_is_named() {
    let node_dir = NodeDir::new();
    let missing = node_dir
        .dir
        .path()
        .join("data/chain/bitcoin/regtest/admin.macaroon");
    let conn = NodeConnection {
        macaroon_path: missing.clone(),
        ..node_dir.connection("127.0.0.1:10009".parse().unwrap())
    };
    let err = connect_lazy(&conn).unwrap_err();
    match &err {
        BackendError::ReadFile { file, path, source } => {
            assert_eq!(*file, NodeFile::Macaroon);
            assert_eq!(path, &missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected ReadFile, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&missing.display().to_string()) && text.contains("macaroon_path"),
        "{text}"
    );
}

#[tokio::test]
async fn the_same_channel_reconnects_after_the_node_restarts() {
    let node_dir = NodeDir::new();
    let server = serve(&node_dir, Node::default()).await;
    let addr = server.addr;
    let conn = node_dir.connection(addr);
    let mut client = LightningClient::new(connect_lazy(&conn).unwrap());
    let mut call = async || {
        client
            .get_info(GetInfoRequest {})
            .await
            .map(Response::into_inner)
            .map_err(|status| conn.call_error("GetInfo", status))
    };

    assert!(call().await.is_ok());
    server.stop().await;

    // The stopped server closed the connection; the next call dials again and is refused.
    let err = call().await.unwrap_err();
    assert!(
        matches!(&err, BackendError::Connect { endpoint, .. } if *endpoint == addr.to_string()),
        "a stopped node must be reported as unreachable, got {err:?}"
    );
    assert_eq!(err.code(), Some(Code::Unavailable));

    let server = serve_on(
        TcpListener::bind(addr).await.unwrap(),
        &node_dir,
        Node::default(),
    )
    .await;
    let info = call().await.unwrap();
    assert_eq!(info.alias, "alice");
    server.stop().await;
}

#[tokio::test]
async fn a_slow_node_hits_the_deadline() {
    let node_dir = NodeDir::new();
    let server = serve(
        &node_dir,
        Node {
            delay: Duration::from_secs(3),
        },
    )
    .await;
    let conn = NodeConnection {
        timeout: Duration::from_millis(300),
        ..node_dir.connection(server.addr)
    };

    let started = std::time::Instant::now();
    let err = get_info(&conn).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the deadline did not cut the call"
    );
    match &err {
        BackendError::Deadline { call, after, .. } => {
            assert_eq!(*call, "GetInfo");
            assert_eq!(*after, Duration::from_millis(300));
        }
        other => panic!("expected a deadline, got {other:?}"),
    }
    server.stop().await;
}

/// Why `grpc.rs` does its own TLS: tonic's `ca_certificate` pins lnd's certificate as a root,
/// and webpki then refuses the same CA:TRUE certificate as the server's own.
#[tokio::test]
async fn tonic_ca_pinning_refuses_an_lnd_style_certificate() {
    let node_dir = NodeDir::new();
    let server = serve(&node_dir, Node::default()).await;
    let pem = std::fs::read(node_dir.cert()).unwrap();
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(pem))
        .domain_name("localhost");
    let result = tonic::transport::Endpoint::from_shared(format!(
        "https://localhost:{}",
        server.addr.port()
    ))
    .unwrap()
    .tls_config(tls)
    .unwrap()
    .connect()
    .await;
    let err =
        result.expect_err("tonic's CA pinning should refuse a CA:TRUE end-entity certificate");
    let chain = error_chain(&err);
    assert!(chain.contains("CaUsedAsEndEntity"), "{chain}");
    server.stop().await;
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = format!("{err:?}");
    let mut next = err.source();
    while let Some(e) = next {
        text.push_str(&format!(" <- {e:?}"));
        next = e.source();
    }
    text
}
