//! The mint: issues L402 tokens, verifies the credentials made from them, and revokes them.
//!
//! This module owns the one place where a token is born and judged: a fresh token id and root
//! key in the [`RootKeyStore`], a macaroon committing to an invoice's payment hash with the
//! caveats the caller asked for, and, later, the credential checked against the same store.
//! The `tapgate token …` commands call it today; the gateway will call the same code.
//!
//! It must not do protocol arithmetic itself (that is [`crate::l402`], which has no I/O), read
//! the clock (the caller passes the time in [`RequestContext::now`], so expiry is testable
//! without sleeping), print, or log secrets: root keys stay in the store, and the macaroons it
//! returns are bearer credentials whose `Debug` redacts the signature.

use crate::l402::caveat::{self, Caveat, CaveatError};
use crate::l402::header::{self, HeaderError};
use crate::l402::verify::{self, VerifyError};
use crate::l402::{
    Decision, Identifier, Macaroon, MacaroonError, PaymentHash, RequestContext, TokenId,
};
use crate::store::{RootKeyStore, StoreError};

#[cfg(feature = "node")]
pub mod challenger;
#[cfg(feature = "node")]
pub mod gate;
pub mod rates;
#[cfg(feature = "node")]
pub mod tracker;

/// Why the mint could not mint, verify or revoke.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// A requested service is not `name` or `name:tier` with a tier of 0-255.
    #[error("service {0:?} is not name or name:tier with tier 0-255")]
    BadService(String),
    /// A requested caveat does not parse, or widens an earlier one.
    #[error("caveat refused: {0}")]
    Caveat(#[source] CaveatError),
    /// No token id could be drawn.
    #[error("cannot draw a token id from the OS random source")]
    Random(#[source] getrandom::Error),
    /// The root-key store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A caveat could not be added to the macaroon.
    #[error("cannot build the macaroon: {0}")]
    Macaroon(#[source] MacaroonError),
    /// The `Authorization` value is not an L402 credential.
    #[error("not an L402 credential: {0}")]
    Header(#[source] HeaderError),
    /// The credential does not grant the request.
    #[error("token refused: {0}")]
    Refused(#[source] VerifyError),
}

/// What to mint, checked: nothing is stored until all of it is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MintRequest {
    payment_hash: PaymentHash,
    /// The caveats in the order they go on the macaroon: the `services` caveat first. Invariant:
    /// each parses, and none widens an earlier one.
    caveats: Vec<String>,
}

impl MintRequest {
    /// Checks the services (`name` or `name:tier`, tier 0 by default) and the further caveats
    /// (`key=value`, each one tapgate can enforce), including that no caveat widens an earlier
    /// one, and puts a `services` caveat granting the services first.
    pub fn new(
        payment_hash: PaymentHash,
        services: &[String],
        caveats: &[String],
    ) -> Result<Self, MintError> {
        let services = services
            .iter()
            .map(|s| service_tier(s))
            .collect::<Result<Vec<_>, _>>()?;
        let mut chain = vec![format!("services={}", services.join(","))];
        for c in caveats {
            Caveat::parse(c).map_err(MintError::Caveat)?;
            chain.push(c.clone());
        }
        caveat::check_narrowing(&chain).map_err(MintError::Caveat)?;
        Ok(Self {
            payment_hash,
            caveats: chain,
        })
    }

    /// The caveats the token will carry, in order.
    pub fn caveats(&self) -> &[String] {
        &self.caveats
    }
}

/// `name[:tier]` as the `services` caveat writes it, `name:tier`.
fn service_tier(s: &str) -> Result<String, MintError> {
    let (name, tier) = s.split_once(':').unwrap_or((s, "0"));
    match Caveat::parse(&format!("services={name}:{tier}")) {
        Ok(_) => Ok(format!("{name}:{tier}")),
        Err(_) => Err(MintError::BadService(s.to_owned())),
    }
}

/// A freshly minted token. The macaroon is a bearer credential once its invoice is paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Minted {
    /// The token.
    pub macaroon: Macaroon,
    /// Its id, under which its root key is stored (revocation takes it).
    pub token_id: TokenId,
    /// The invoice it is paid with.
    pub payment_hash: PaymentHash,
    /// Its caveats, in order.
    pub caveats: Vec<String>,
}

/// Mints, verifies and revokes tokens against one root-key store.
#[derive(Debug)]
pub struct Mint<S> {
    store: S,
    /// The macaroons' location field (`l402.location`).
    location: String,
}

impl<S: RootKeyStore> Mint<S> {
    /// A mint whose root keys live in `store` and whose macaroons name `location`.
    pub fn new(store: S, location: impl Into<String>) -> Self {
        Self {
            store,
            location: location.into(),
        }
    }

    /// Mints a token for `request`: a fresh token id, its root key created in the store, and
    /// the macaroon with the request's caveats.
    pub async fn mint(&self, request: &MintRequest) -> Result<Minted, MintError> {
        let token_id = TokenId::generate().map_err(MintError::Random)?;
        let id = Identifier::new(request.payment_hash, token_id);
        let root_key = self.store.create(&token_id).await?;
        let mut macaroon = Macaroon::new(&root_key, &id.encode(), &self.location);
        for c in &request.caveats {
            macaroon
                .add_first_party_caveat(c.as_bytes())
                .map_err(MintError::Macaroon)?;
        }
        Ok(Minted {
            macaroon,
            token_id,
            payment_hash: request.payment_hash,
            caveats: request.caveats.clone(),
        })
    }

    /// Verifies the `Authorization` values of a request (`L402 <macaroon>:<preimage>`, several
    /// values if the request carried several headers) against the store, at `ctx.now`.
    pub async fn verify(
        &self,
        authorization: &[&str],
        ctx: &RequestContext<'_>,
    ) -> Result<Decision, MintError> {
        let cred = header::parse_authorization(authorization).map_err(MintError::Header)?;
        let token_id = cred
            .macaroons
            .first()
            .and_then(|m| Identifier::decode(m.identifier()).ok())
            .map(|id| id.token_id);
        let root_key = match token_id {
            Some(t) => self.store.get(&t).await?,
            None => None,
        };
        verify::verify_credential(&cred, ctx, |_| root_key).map_err(MintError::Refused)
    }

    /// Revokes a token by deleting its root key; `true` if there was one.
    pub async fn revoke(&self, token_id: &TokenId) -> Result<bool, MintError> {
        Ok(self.store.revoke(token_id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l402::Preimage;
    use crate::store::MemoryStore;

    const NOW: u64 = 1_700_000_000;

    fn ctx(now: u64) -> RequestContext<'static> {
        RequestContext {
            service: "svc",
            method: "GET",
            path: "/",
            now,
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    /// A mint, a preimage, and a token minted for the preimage's payment hash.
    async fn minted(caveats: &[&str]) -> (Mint<MemoryStore>, Preimage, Minted) {
        let mint = Mint::new(MemoryStore::default(), "tapgate");
        let preimage = Preimage::from_bytes([7; 32]);
        let request = MintRequest::new(
            preimage.payment_hash(),
            &strings(&["svc:2"]),
            &strings(caveats),
        )
        .unwrap();
        let token = mint.mint(&request).await.unwrap();
        (mint, preimage, token)
    }

    fn credential(token: &Minted, preimage: &Preimage) -> String {
        format!(
            "L402 {}:{}",
            token.macaroon.to_base64(),
            hex::encode(preimage.expose())
        )
    }

    #[tokio::test]
    async fn a_minted_token_verifies_with_its_preimage() {
        let (mint, preimage, token) = minted(&["svc_methods=GET"]).await;
        assert_eq!(token.caveats, ["services=svc:2", "svc_methods=GET"]);
        assert_eq!(token.macaroon.location(), "tapgate");
        let header = credential(&token, &preimage);
        let decision = mint.verify(&[&header], &ctx(NOW)).await.unwrap();
        assert_eq!(decision.token_id, token.token_id);
        assert_eq!(decision.payment_hash, preimage.payment_hash());
        assert_eq!(decision.tier, 2);
    }

    #[tokio::test]
    async fn a_wrong_preimage_is_refused() {
        let (mint, _, token) = minted(&[]).await;
        let header = credential(&token, &Preimage::from_bytes([8; 32]));
        assert!(matches!(
            mint.verify(&[&header], &ctx(NOW)).await,
            Err(MintError::Refused(VerifyError::PreimageMismatch))
        ));
    }

    #[tokio::test]
    async fn a_revoked_token_is_unknown() {
        let (mint, preimage, token) = minted(&[]).await;
        assert!(mint.revoke(&token.token_id).await.unwrap());
        assert!(!mint.revoke(&token.token_id).await.unwrap());
        let header = credential(&token, &preimage);
        assert!(matches!(
            mint.verify(&[&header], &ctx(NOW)).await,
            Err(MintError::Refused(VerifyError::UnknownToken))
        ));
    }

    #[tokio::test]
    async fn a_token_expires_at_its_valid_until_by_the_time_passed_in() {
        let until = NOW + 60;
        let (mint, preimage, token) = minted(&[&format!("svc_valid_until={until}")]).await;
        let header = credential(&token, &preimage);
        assert!(mint.verify(&[&header], &ctx(until - 1)).await.is_ok());
        assert!(matches!(
            mint.verify(&[&header], &ctx(until)).await,
            Err(MintError::Refused(VerifyError::Expired { valid_until, now }))
                if valid_until == until && now == until
        ));
    }

    #[tokio::test]
    async fn a_malformed_credential_is_not_a_refusal() {
        let (mint, _, _) = minted(&[]).await;
        assert!(matches!(
            mint.verify(&["Bearer abc"], &ctx(NOW)).await,
            Err(MintError::Header(_))
        ));
    }

    #[test]
    fn bad_requests_are_refused_before_anything_is_stored() {
        let hash = Preimage::from_bytes([7; 32]).payment_hash();
        let request = |services: &[&str], caveats: &[&str]| {
            MintRequest::new(hash, &strings(services), &strings(caveats))
        };
        assert!(matches!(
            request(&["svc:256"], &[]),
            Err(MintError::BadService(s)) if s == "svc:256"
        ));
        for c in ["color=blue", "svc_methods=get", "svc_region=eu"] {
            assert!(
                matches!(request(&["svc"], &[c]), Err(MintError::Caveat(_))),
                "{c}"
            );
        }
        assert!(matches!(
            request(&["svc"], &["svc_max_calls=5", "svc_max_calls=6"]),
            Err(MintError::Caveat(CaveatError::Widening(_)))
        ));
        assert_eq!(
            request(&["a", "b:1"], &[]).unwrap().caveats(),
            ["services=a:0,b:1"]
        );
    }
}
