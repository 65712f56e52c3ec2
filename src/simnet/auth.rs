//! Macaroons for the simulated nodes, baked and checked the way lnd and tapd do it: each daemon
//! of a node has a root key and writes binary V2 macaroon files that clients load like
//! `admin.macaroon`, whose identifiers carry the permissions lnd and tapd bake into theirs
//! ([`simnet::permissions`](super::permissions)); each call must present exactly one
//! `macaroon` metadata value signed with that root key and granting what the method requires.
//!
//! This module owns the simnet side of the credential only. It uses tapgate's own
//! [`Macaroon`] (go-macaroon's format and HMAC chain), so the files are byte-compatible with
//! what lnd writes, identifier included. [`Enforced`] wraps a gRPC service and checks each call
//! against the method's permissions, since only the HTTP request carries the method path; the
//! [`Interceptor`] impl of [`MacaroonAuth`] checks the signature only, for a test server with one
//! service. Caveats are not evaluated (the simnet bakes none).
//!
//! Refusals, in the order lnd's `rpcperms/interceptor.go` `checkMacaroon` and
//! `macaroons/service.go` `ValidateMacaroon` reach them (lnd v0.21.0-beta):
//!
//! | case | status | message |
//! |---|---|---|
//! | method without a permission row | `Unknown` | `<path>: unknown permissions required for method` (lnd's) |
//! | not exactly one macaroon | `Unauthenticated` | `expected 1 macaroon, got N` (lnd's words; lnd's code is `Unknown`) |
//! | not hex, not a macaroon | `Unauthenticated` | `unable to decode macaroon: …` |
//! | signed with another key | `Unauthenticated` | `verification failed: signature mismatch` |
//! | identifier names no permissions | `Unknown` | `invalid ID` / bakery's `cannot retrieve macaroon: …` |
//! | a required permission is missing | `Unknown` | `permission denied` |
//!
//! The last is what lnd and tapd answer: go-macaroon-bakery v2.0.1 `bakery/checker.go`
//! `AuthChecker.Allow` returns `errgo.WithCausef(nil, ErrPermissionDenied, "")`, whose message
//! is `ErrPermissionDenied`'s (`bakery/error.go`: "permission denied"; errgo v1.0.1
//! `WithCausef`), `CheckMacAuth` returns it as is, and gRPC-Go sends an error that is not a
//! status as `Unknown`. tapd (taproot-assets v0.8.1 `rpcperms/interceptor.go`) runs the same
//! code over lnd's `macaroons` package.

use std::convert::Infallible;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http::{self, HeaderMap};
use tonic::server::NamedService;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use super::permissions::{self, Grant, Granted, NONCE_LEN, Op, encode_identifier};
use super::tls::{NodeFilesError, write_file};
use crate::l402::{Macaroon, RootKey};

/// The metadata key the macaroon travels under (lnd `macaroons/service.go`).
const MACAROON_KEY: &str = "macaroon";

/// What lnd and tapd answer, with code `Unknown`, when a valid macaroon lacks a permission.
pub const PERMISSION_DENIED: &str = "permission denied";

/// Writes `grant`'s macaroon for `root_key` at `path`: binary V2 with bakery's identifier (a
/// fresh nonce and the grant's permissions) and the daemon's location, in a file created with
/// mode 0600 (lnd writes `invoice.macaroon` and `readonly.macaroon` 0644; simnet keeps every
/// file private).
pub fn write_grant(path: &Path, root_key: &RootKey, grant: Grant) -> Result<(), NodeFilesError> {
    write_baked(path, root_key, grant.location(), &grant.ops())
}

/// Writes a macaroon with lnd's admin permissions ([`Grant::LndAdmin`]) at `location`, for test
/// servers that serve lnd's services.
pub fn write_macaroon(
    path: &Path,
    root_key: &RootKey,
    location: &str,
) -> Result<(), NodeFilesError> {
    write_baked(path, root_key, location, &Grant::LndAdmin.ops())
}

fn write_baked(
    path: &Path,
    root_key: &RootKey,
    location: &str,
    ops: &[Op],
) -> Result<(), NodeFilesError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(NodeFilesError::Random)?;
    let macaroon = Macaroon::new(root_key, &encode_identifier(nonce, ops), location);
    write_file(path, &macaroon.encode(), 0o600)
}

/// Checks macaroons against one daemon's root key: [`MacaroonAuth::authorize`] for a method
/// call, the [`Interceptor`] impl for the signature alone.
#[derive(Debug, Clone)]
pub struct MacaroonAuth {
    /// The daemon's root key; shared by every clone (one per connection).
    root_key: Arc<RootKey>,
}

impl MacaroonAuth {
    /// Checks macaroons against `root_key`.
    pub fn new(root_key: RootKey) -> Self {
        MacaroonAuth {
            root_key: Arc::new(root_key),
        }
    }

    /// Admits a call of `path` (`/package.Service/Method`) with `headers` only if the method has
    /// a permission row and its one macaroon is signed with the root key and grants the row's
    /// permissions. See the module docs for the refusals.
    pub fn authorize(&self, path: &str, headers: &HeaderMap) -> Result<(), Status> {
        let required = permissions::required(path).ok_or_else(|| {
            Status::unknown(format!("{path}: unknown permissions required for method"))
        })?;
        let macaroon = self.authenticate(headers)?;
        let granted =
            Granted::decode(macaroon.identifier()).map_err(|e| Status::unknown(e.to_string()))?;
        if granted.allows(required, path) {
            Ok(())
        } else {
            Err(Status::unknown(PERMISSION_DENIED))
        }
    }

    /// The one macaroon in `headers`, if it is signed with the root key.
    fn authenticate(&self, headers: &HeaderMap) -> Result<Macaroon, Status> {
        let mut values = headers.get_all(MACAROON_KEY).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            let count = headers.get_all(MACAROON_KEY).iter().count();
            return Err(Status::unauthenticated(format!(
                "expected 1 macaroon, got {count}"
            )));
        };
        let bytes = value
            .to_str()
            .ok()
            .and_then(|text| hex::decode(text).ok())
            .ok_or_else(|| Status::unauthenticated("unable to decode macaroon: not hex"))?;
        let macaroon = Macaroon::decode(&bytes)
            .map_err(|e| Status::unauthenticated(format!("unable to decode macaroon: {e}")))?;
        macaroon
            .verify_signature(&self.root_key)
            .map_err(|_| Status::unauthenticated("verification failed: signature mismatch"))?;
        Ok(macaroon)
    }
}

/// The signature check alone (no permissions: an interceptor does not see the method).
impl Interceptor for MacaroonAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.authenticate(request.metadata().as_ref())?;
        Ok(request)
    }
}

/// A gRPC service behind [`MacaroonAuth::authorize`]: each call reaches `inner` only if its
/// macaroon grants what its method path requires; otherwise the call is answered with the
/// refusal's status and `inner` never sees it.
#[derive(Debug, Clone)]
pub struct Enforced<S> {
    inner: S,
    auth: MacaroonAuth,
}

impl<S> Enforced<S> {
    /// `inner`, checked by `auth`.
    pub fn new(inner: S, auth: MacaroonAuth) -> Self {
        Enforced { inner, auth }
    }
}

impl<S: NamedService> NamedService for Enforced<S> {
    const NAME: &'static str = S::NAME;
}

/// The future of an [`Enforced`] call: the inner service's, or an immediate refusal.
type EnforcedFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

impl<S> Service<http::Request<Body>> for Enforced<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = EnforcedFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self.auth.authorize(request.uri().path(), request.headers()) {
            Ok(()) => Box::pin(self.inner.call(request)),
            Err(status) => Box::pin(std::future::ready(Ok(status.into_http()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;
    use tonic::metadata::AsciiMetadataValue;

    fn request_with(values: &[&str]) -> Request<()> {
        let mut request = Request::new(());
        for v in values {
            request
                .metadata_mut()
                .append(MACAROON_KEY, AsciiMetadataValue::try_from(*v).unwrap());
        }
        request
    }

    fn refusal(auth: &mut MacaroonAuth, request: Request<()>) -> String {
        let status = auth.call(request).unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        status.message().to_owned()
    }

    fn baked(key: &RootKey, grant: Grant) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.macaroon");
        write_grant(&path, key, grant).unwrap();
        hex::encode(std::fs::read(&path).unwrap())
    }

    fn headers(macaroon: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(MACAROON_KEY, macaroon.parse().unwrap());
        h
    }

    #[test]
    fn the_written_file_authenticates_against_its_root_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.macaroon");
        let key = RootKey::generate().unwrap();
        write_macaroon(&path, &key, "lnd").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes[0], 2, "binary V2 macaroon");
        let good = hex::encode(&bytes);
        let macaroon = Macaroon::decode(&bytes).unwrap();
        assert_eq!(macaroon.location(), "lnd");
        assert_eq!(macaroon.identifier()[0], 3, "bakery's version 3 identifier");

        let mut auth = MacaroonAuth::new(key);
        assert!(auth.call(request_with(&[&good])).is_ok());

        let mut other = MacaroonAuth::new(RootKey::generate().unwrap());
        assert_eq!(
            refusal(&mut other, request_with(&[&good])),
            "verification failed: signature mismatch"
        );
        assert_eq!(
            refusal(&mut auth, request_with(&[])),
            "expected 1 macaroon, got 0"
        );
        assert_eq!(
            refusal(&mut auth, request_with(&[&good, &good])),
            "expected 1 macaroon, got 2"
        );
        assert!(refusal(&mut auth, request_with(&["zz"])).starts_with("unable to decode macaroon"));
        assert!(
            refusal(&mut auth, request_with(&["0201"])).starts_with("unable to decode macaroon")
        );

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn each_grant_is_authorized_for_its_methods_and_denied_in_lnds_words() {
        let key = RootKey::generate().unwrap();
        let auth = MacaroonAuth::new(key.clone());
        let readonly = headers(&baked(&key, Grant::LndReadonly));
        let invoice = headers(&baked(&key, Grant::LndInvoice));
        let admin = headers(&baked(&key, Grant::LndAdmin));
        let tapd = headers(&baked(&key, Grant::TapdAdmin));
        let denied = |r: Result<(), Status>| {
            let s = r.unwrap_err();
            (s.code(), s.message().to_owned())
        };
        let permission_denied = (Code::Unknown, PERMISSION_DENIED.to_owned());

        let get_info = "/lnrpc.Lightning/GetInfo";
        let add_invoice = "/lnrpc.Lightning/AddInvoice";
        let pay = "/routerrpc.Router/SendPaymentV2";
        assert!(auth.authorize(get_info, &readonly).is_ok());
        assert_eq!(
            denied(auth.authorize(add_invoice, &readonly)),
            permission_denied
        );
        assert_eq!(denied(auth.authorize(pay, &readonly)), permission_denied);
        assert!(auth.authorize(add_invoice, &invoice).is_ok());
        assert_eq!(
            denied(auth.authorize(get_info, &invoice)),
            permission_denied
        );
        assert_eq!(denied(auth.authorize(pay, &invoice)), permission_denied);
        assert!(auth.authorize(pay, &admin).is_ok());
        assert_eq!(denied(auth.authorize(pay, &tapd)), permission_denied);
        assert!(
            auth.authorize("/taprpc.TaprootAssets/GetInfo", &tapd)
                .is_ok()
        );
        assert_eq!(
            denied(auth.authorize("/taprpc.TaprootAssets/GetInfo", &admin)),
            permission_denied
        );

        // Fail closed, before the macaroon is looked at, as lnd's checkMacaroon does.
        let unmapped = "/lnrpc.Lightning/ListPeers";
        for h in [&admin, &HeaderMap::new()] {
            assert_eq!(
                denied(auth.authorize(unmapped, h)),
                (
                    Code::Unknown,
                    format!("{unmapped}: unknown permissions required for method")
                )
            );
        }
        // The transport checks keep their answers.
        assert_eq!(
            denied(auth.authorize(get_info, &HeaderMap::new())),
            (
                Code::Unauthenticated,
                "expected 1 macaroon, got 0".to_owned()
            )
        );
        let other = MacaroonAuth::new(RootKey::generate().unwrap());
        assert_eq!(
            denied(other.authorize(get_info, &admin)),
            (
                Code::Unauthenticated,
                "verification failed: signature mismatch".to_owned()
            )
        );
        // Signed, but with an identifier that names no permissions (the pre-permission format).
        let random_id = Macaroon::new(&key, &[9; 32], "lnd");
        assert_eq!(
            denied(auth.authorize(get_info, &headers(&hex::encode(random_id.encode())))),
            (Code::Unknown, "invalid ID".to_owned())
        );
    }

    #[tokio::test]
    async fn the_wrapped_service_sees_only_authorized_calls() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let key = RootKey::generate().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let inner = tower::service_fn(move |_req: http::Request<Body>| {
            seen.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(http::Response::new(Body::empty())) }
        });
        let mut svc = Enforced::new(inner, MacaroonAuth::new(key.clone()));
        let request = |path: &str, grant: Grant| {
            let mut r = http::Request::new(Body::empty());
            *r.uri_mut() = path.parse().unwrap();
            *r.headers_mut() = headers(&baked(&key, grant));
            r
        };

        let ok = svc
            .call(request("/lnrpc.Lightning/AddInvoice", Grant::LndInvoice))
            .await
            .unwrap();
        assert_eq!(ok.headers().get("grpc-status"), None);
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let refused = svc
            .call(request(
                "/routerrpc.Router/SendPaymentV2",
                Grant::LndInvoice,
            ))
            .await
            .unwrap();
        let status = Status::from_header_map(refused.headers()).unwrap();
        assert_eq!(
            (status.code(), status.message()),
            (Code::Unknown, PERMISSION_DENIED)
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "the refused call never reached it"
        );
    }
}
