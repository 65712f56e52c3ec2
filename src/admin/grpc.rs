//! The admin gRPC service (`proto/tapgate/admin.proto`, tapgate's own): list services, get a
//! quote, list and revoke tokens, revenue per service in dollars, sats and asset units.
//!
//! Every call must carry the admin macaroon, hex-encoded in the `macaroon` metadata as lnd's
//! clients send theirs (lightningnetwork/lnd `macaroons/service.go`, v0.21.0-beta, reads the
//! same key). The macaroon and its root key are written into the data directory at first start
//! ([`AdminCredentials::load_or_create`]), readable by their owner only. The service must not
//! log either.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rust_decimal::Decimal;
use tonic::{Request, Response, Status};

use crate::app::gateway::ServeGate;
use crate::l402::{Macaroon, RootKey, TokenId};
use crate::mint::gate::{Authenticator, usd};
use crate::store::{Rail, TokenLedger};

/// The generated messages, server and client.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("tapgate.admin.v1");
}

use proto::admin_server::{Admin, AdminServer};

/// The admin macaroon's identifier: it names what it is, nothing secret.
const ADMIN_ID: &[u8] = b"tapgate-admin-v1";

/// Why the admin credentials could not be had.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {path}: {source}; check that data_dir is a writable directory")]
pub struct CredentialsError {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The admin root key and where its macaroon is.
pub struct AdminCredentials {
    key: RootKey,
    /// `DATA_DIR/admin.macaroon`, for the operator's client.
    pub macaroon_path: PathBuf,
}

impl std::fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCredentials")
            .field("macaroon_path", &self.macaroon_path)
            .finish_non_exhaustive()
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CredentialsError> {
    let err = |action, source| CredentialsError {
        action,
        path: path.to_owned(),
        source,
    };
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| err("create", e))?;
    f.write_all(bytes).map_err(|e| err("write", e))
}

impl AdminCredentials {
    /// Reads `dir/admin.key`, or creates it (32 bytes from the OS CSPRNG, mode 0600) and
    /// `dir/admin.macaroon` with it.
    pub fn load_or_create(dir: &Path) -> Result<Self, CredentialsError> {
        let key_path = dir.join("admin.key");
        let macaroon_path = dir.join("admin.macaroon");
        let io = |action, path: &Path, source| CredentialsError {
            action,
            path: path.to_owned(),
            source,
        };
        fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
        let key = match fs::read(&key_path) {
            Ok(bytes) => {
                let arr: [u8; 32] = bytes.try_into().map_err(|_| {
                    io(
                        "read",
                        &key_path,
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "not a 32-byte key; delete it and admin.macaroon to make new ones",
                        ),
                    )
                })?;
                RootKey::from_bytes(arr)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = RootKey::generate().map_err(|e| {
                    io(
                        "draw a key for",
                        &key_path,
                        std::io::Error::other(e.to_string()),
                    )
                })?;
                write_private(&key_path, key.expose())?;
                let _ = fs::remove_file(&macaroon_path);
                write_private(
                    &macaroon_path,
                    &Macaroon::new(&key, ADMIN_ID, "tapgate-admin").encode(),
                )?;
                key
            }
            Err(e) => return Err(io("read", &key_path, e)),
        };
        Ok(Self { key, macaroon_path })
    }

    /// Checks a request's `macaroon` metadata.
    fn check(&self, hex_macaroon: Option<&str>) -> Result<(), Status> {
        let refuse = || {
            Status::unauthenticated(
                "send the admin macaroon (data_dir/admin.macaroon) hex-encoded in the `macaroon` metadata",
            )
        };
        let bytes = hex::decode(hex_macaroon.ok_or_else(refuse)?).map_err(|_| refuse())?;
        let m = Macaroon::decode(&bytes).map_err(|_| refuse())?;
        if m.identifier() != ADMIN_ID || m.caveats().len() != 0 {
            return Err(refuse());
        }
        m.verify_signature(&self.key).map_err(|_| refuse())
    }
}

/// The admin service over the gate.
pub struct AdminService {
    gate: Arc<ServeGate>,
}

fn rail(r: Rail) -> String {
    match r {
        Rail::Sats => "sats".into(),
        Rail::Asset => "asset".into(),
    }
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::unavailable(e.to_string())
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn list_services(
        &self,
        _: Request<proto::ListServicesRequest>,
    ) -> Result<Response<proto::ListServicesResponse>, Status> {
        let mut services = Vec::new();
        for (i, p) in self.gate.services().iter().enumerate() {
            let s = &p.service;
            let (msat, units) = self.gate.preview(i, 0).await.unwrap_or((0, None));
            services.push(proto::Service {
                name: s.name.clone(),
                paths: s.paths.iter().map(|x| x.as_str().to_owned()).collect(),
                price_usd: s.price_usd.to_string(),
                settlement: if crate::mint::gate::is_asset(p) {
                    "asset".into()
                } else {
                    "sats".into()
                },
                prepaid_usd: s.prepaid_usd.map(|x| x.to_string()).unwrap_or_default(),
                upstream: s.upstream.as_str().to_owned(),
                price_msat: msat,
                price_units: units.unwrap_or(0),
            });
        }
        Ok(Response::new(proto::ListServicesResponse { services }))
    }

    async fn get_quote(
        &self,
        req: Request<proto::GetQuoteRequest>,
    ) -> Result<Response<proto::GetQuoteResponse>, Status> {
        let r = req.into_inner();
        let index = self
            .gate
            .services()
            .iter()
            .position(|s| s.service.name == r.service)
            .ok_or_else(|| Status::not_found(format!("no service named {:?}", r.service)))?;
        let tier = u8::try_from(r.tier).map_err(|_| Status::invalid_argument("tier is 0-255"))?;
        let prepaid = if r.prepaid_usd.is_empty() {
            None
        } else {
            Some(
                r.prepaid_usd
                    .parse::<Decimal>()
                    .map_err(|_| Status::invalid_argument("prepaid_usd is a decimal string"))?,
            )
        };
        let issued = self
            .gate
            .challenge(index, tier, prepaid)
            .await
            .map_err(internal)?;
        let o = &issued.offer;
        Ok(Response::new(proto::GetQuoteResponse {
            www_authenticate: issued.www_authenticate(),
            invoice: o.invoice.clone(),
            macaroon: issued.macaroon.to_base64(),
            msat: o.msat,
            charge_usd: o.charge_usd.to_string(),
            rail: rail(o.rail),
            units: o.asset.as_ref().map_or(0, |a| a.units),
            invoice_expires_at: o.invoice_expires_at,
            token_id: issued.token_id.to_string(),
        }))
    }

    async fn list_tokens(
        &self,
        req: Request<proto::ListTokensRequest>,
    ) -> Result<Response<proto::ListTokensResponse>, Status> {
        let r = req.into_inner();
        let limit = if r.limit == 0 {
            100
        } else {
            r.limit.min(10_000)
        };
        let views = self
            .gate
            .store()
            .list_tokens(limit, r.settled_only)
            .await
            .map_err(internal)?;
        let tokens = views
            .into_iter()
            .map(|v| {
                let t = v.record;
                proto::Token {
                    token_id: t.token_id.to_string(),
                    payment_hash: hex::encode(t.payment_hash.0),
                    service: t.service,
                    tier: u32::from(t.tier),
                    rail: rail(t.rail),
                    price_usd: usd(t.price_micro_usd).to_string(),
                    msat: t.msat,
                    units: t.units.unwrap_or(0),
                    prepaid_usd: t
                        .prepaid_micro_usd
                        .map(|m| usd(m).to_string())
                        .unwrap_or_default(),
                    created_at: t.created_at,
                    expires_at: t.expires_at,
                    settled: v.settled,
                    revoked: v.revoked,
                    balance_usd: v
                        .balance_micro_usd
                        .map(|m| usd(m).to_string())
                        .unwrap_or_default(),
                }
            })
            .collect();
        Ok(Response::new(proto::ListTokensResponse { tokens }))
    }

    async fn revoke_token(
        &self,
        req: Request<proto::RevokeTokenRequest>,
    ) -> Result<Response<proto::RevokeTokenResponse>, Status> {
        let id = TokenId::from_hex(&req.into_inner().token_id)
            .map_err(|e| Status::invalid_argument(format!("token_id: {e}")))?;
        let revoked = self.gate.revoke(&id).await.map_err(internal)?;
        Ok(Response::new(proto::RevokeTokenResponse { revoked }))
    }

    async fn revenue(
        &self,
        _: Request<proto::RevenueRequest>,
    ) -> Result<Response<proto::RevenueResponse>, Status> {
        let rows = self
            .gate
            .store()
            .revenue()
            .await
            .map_err(internal)?
            .into_iter()
            .map(|r| proto::RevenueRow {
                service: r.service,
                rail: rail(r.rail),
                tokens: r.tokens,
                usd: usd(r.micro_usd).to_string(),
                sats: r.msat / 1000,
                units: r.units,
            })
            .collect();
        Ok(Response::new(proto::RevenueResponse { rows }))
    }
}

/// The macaroon check in front of every call.
#[derive(Clone)]
pub struct MacaroonCheck(Arc<AdminCredentials>);

impl tonic::service::Interceptor for MacaroonCheck {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let m = req.metadata().get("macaroon").and_then(|v| v.to_str().ok());
        self.0.check(m)?;
        Ok(req)
    }
}

/// The authenticated admin server, ready to be served.
pub type AdminGrpc =
    tonic::service::interceptor::InterceptedService<AdminServer<AdminService>, MacaroonCheck>;

/// The admin service behind the macaroon check.
pub fn service(gate: Arc<ServeGate>, creds: Arc<AdminCredentials>) -> AdminGrpc {
    AdminServer::with_interceptor(AdminService { gate }, MacaroonCheck(creds))
}
