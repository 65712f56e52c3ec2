//! Macaroons for the simulated nodes, checked the way lnd checks them: each node has a root key,
//! writes a binary V2 macaroon file that clients load like `admin.macaroon`, and refuses any
//! call whose single `macaroon` metadata value is not a macaroon signed with that root key.
//!
//! This module owns the simnet side of the credential only. It uses tapgate's own
//! [`Macaroon`] (go-macaroon's format and HMAC chain), so the file is
//! byte-compatible with what lnd writes. Unlike lnd it grants every permission to any macaroon
//! with a valid signature and does not evaluate caveats: the simnet tests the transport and the
//! payment paths, not lnd's permission table.

use std::path::Path;
use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};

use super::tls::{NodeFilesError, write_file};
use crate::l402::{Macaroon, RootKey};

/// The metadata key the macaroon travels under (lnd `macaroons/service.go`).
const MACAROON_KEY: &str = "macaroon";

/// Writes a macaroon for `root_key` at `path`: binary V2, as lnd writes `admin.macaroon`, in a
/// file created with mode 0600. The identifier is 32 random bytes (lnd's is a protobuf naming
/// the root key; simnet has one root key per node, so it needs no name).
pub fn write_macaroon(
    path: &Path,
    root_key: &RootKey,
    location: &str,
) -> Result<(), NodeFilesError> {
    let mut identifier = [0u8; 32];
    getrandom::fill(&mut identifier).map_err(NodeFilesError::Random)?;
    let macaroon = Macaroon::new(root_key, &identifier, location);
    write_file(path, &macaroon.encode(), 0o600)
}

/// A server interceptor that admits a call only with exactly one `macaroon` metadata value that
/// hex-decodes to a macaroon signed with the node's root key. Refusals are `Unauthenticated`
/// with lnd's wording, so clients see what they would see from lnd.
#[derive(Debug, Clone)]
pub struct MacaroonAuth {
    /// The node's root key; shared by every clone (one per connection).
    root_key: Arc<RootKey>,
}

impl MacaroonAuth {
    /// Checks macaroons against `root_key`.
    pub fn new(root_key: RootKey) -> Self {
        MacaroonAuth {
            root_key: Arc::new(root_key),
        }
    }

    fn check(&self, request: &Request<()>) -> Result<(), Status> {
        let mut values = request.metadata().get_all(MACAROON_KEY).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            let count = request.metadata().get_all(MACAROON_KEY).iter().count();
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
            .map_err(|_| Status::unauthenticated("verification failed: signature mismatch"))
    }
}

impl Interceptor for MacaroonAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.check(&request)?;
        Ok(request)
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

    #[test]
    fn the_written_file_authenticates_against_its_root_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.macaroon");
        let key = RootKey::generate().unwrap();
        write_macaroon(&path, &key, "lnd").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes[0], 2, "binary V2 macaroon");
        let good = hex::encode(&bytes);

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
}
