//! The L402 HTTP client: sends a request, and on `402` pays under the budget and retries with
//! the token; later requests to the same origin and service reuse the token until it expires.
//!
//! This module owns the HTTP exchange around [`super::payer::pay_challenge`]: which token to
//! send, when to pay, when to retry. It must not price or pay by itself, print a token, or
//! retry more than once after paying (a server that refuses a fresh paid token is reported,
//! not paid again). It speaks plain `http://` (hyper-util's pooled client); `https://` is
//! refused until the client carries a TLS root store.
//!
//! **Which token.** Tokens are cached per origin and service. The caller may name the service
//! of a request; otherwise the service is learnt from the `402` (tapgate's body names it, and
//! a token's `services=` caveat does too), and a cached token for it is tried once before
//! paying, so a new path of a service already paid for costs one round trip, not a payment.
//!
//! **Prepaid top-up.** When a cached token is answered `402` with tapgate's reason
//! `balance_exhausted`, its prepaid balance has run out and that `402`'s challenge sells a new
//! one: it is paid like any other (reserved under the budget first), its token replaces the old
//! one in the cache, and the request is retried once.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::budget::Budget;
use super::challenge::{ChallengeError, PaymentRequired, parse_payment_required};
use super::ledger::{CachedToken, ClientLedger, LedgerError};
use super::payer::{FollowUp, Holdings, Paid, PayError, Target, Wallet, follow_up, pay_challenge};
use crate::clock::Clock;
use crate::lightning::traits::{Payments, Rates};

/// Largest response body read, bytes.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024 * 1024;

/// Why a request could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL does not parse or has no host.
    #[error("{0:?} is not an absolute http:// URL with a host")]
    BadUrl(String),
    /// `https://` (or another scheme).
    #[error(
        "{0:?}: the L402 client speaks plain http:// only for now; put a TLS-terminating proxy in front or use http://"
    )]
    UnsupportedScheme(String),
    /// A header given does not form a valid request.
    #[error("the request cannot be built: {0}")]
    Request(#[source] http::Error),
    /// The server could not be reached or the exchange broke.
    #[error("the request to {url} failed: {source}")]
    Http {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The response body could not be read.
    #[error(
        "the response body from {url} could not be read (or is over {MAX_RESPONSE_BODY} bytes)"
    )]
    Body {
        /// The URL.
        url: String,
    },
    /// The `402` had nothing to pay.
    #[error(transparent)]
    Challenge(#[from] ChallengeError),
    /// Paying failed or was refused.
    #[error(transparent)]
    Pay(#[from] PayError),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// A response, and what was paid to get it.
#[derive(Debug)]
pub struct Exchange {
    /// The final status.
    pub status: StatusCode,
    /// The final headers.
    pub headers: HeaderMap,
    /// The final body.
    pub body: Bytes,
    /// What was paid for this request; `None` when no payment was needed.
    pub paid: Option<Paid>,
    /// Whether a cached token was sent on the final attempt.
    pub reused_token: bool,
    /// Whether the payment topped up a prepaid balance that a cached token had run out of.
    pub topped_up: bool,
}

/// An HTTP request to send.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The method.
    pub method: Method,
    /// The absolute `http://` URL.
    pub url: String,
    /// Extra headers (an `Authorization` given here is replaced by the token's).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
    /// The service the URL belongs to, when the caller knows it: its cached token is sent on
    /// the first attempt.
    pub service: Option<String>,
}

/// The client: a wallet, a budget, a ledger and an HTTP connection pool.
pub struct L402Client<P, R> {
    payments: P,
    rates: R,
    holdings: Holdings,
    ledger: ClientLedger,
    budget: Budget,
    clock: Arc<dyn Clock>,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl<P, R> std::fmt::Debug for L402Client<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L402Client")
            .field("holdings", &self.holdings)
            .field("ledger", &self.ledger)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// The challenges of an answer's `WWW-Authenticate` values, with its body.
fn challenge_of(headers: &HeaderMap, body: &Bytes) -> Result<PaymentRequired, ChallengeError> {
    let values: Vec<&str> = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    parse_payment_required(&values, Some(body))
}

impl Exchange {
    /// What the answer asks to be paid (a `402`, or a `401` with a fresh challenge).
    pub fn payment_required(&self) -> Result<PaymentRequired, ChallengeError> {
        challenge_of(&self.headers, &self.body)
    }
}

impl Response {
    fn challenge(&self) -> Result<PaymentRequired, ChallengeError> {
        challenge_of(&self.headers, &self.body)
    }

    fn wants_payment(&self) -> bool {
        self.status == StatusCode::PAYMENT_REQUIRED
            || (self.status == StatusCode::UNAUTHORIZED
                && self.headers.contains_key(WWW_AUTHENTICATE))
    }
}

impl<P: Payments, R: Rates> L402Client<P, R> {
    /// A client paying from `payments` (priced by `rates`) within `holdings` and `budget`,
    /// recording in `ledger`, with time from `clock`.
    pub fn new(
        payments: P,
        rates: R,
        holdings: Holdings,
        ledger: ClientLedger,
        budget: Budget,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            payments,
            rates,
            holdings,
            ledger,
            budget,
            clock,
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    fn wallet(&self) -> Wallet<'_, P, R> {
        Wallet {
            payments: &self.payments,
            rates: &self.rates,
            holdings: &self.holdings,
        }
    }

    /// Follows up the payments of unknown outcome by payment hash, settling or releasing them
    /// and caching the tokens of those found paid ([`super::payer::follow_up`]); with
    /// `after_restart`, also the reservations of processes that have stopped.
    pub async fn follow_up(&self, after_restart: bool) -> Result<FollowUp, ClientError> {
        let now = self.clock.now_unix();
        Ok(follow_up(&self.wallet(), &self.ledger, after_restart, now).await?)
    }

    /// The ledger (what was spent; cached tokens).
    pub fn ledger(&self) -> &ClientLedger {
        &self.ledger
    }

    /// Sends `req` once, with `token` when given, and pays nothing whatever the answer: for a
    /// caller that takes the steps of [`L402Client::send`] one at a time (to time each, say,
    /// or to send a token attenuated for a sub-agent and read the refusal).
    pub async fn send_once(
        &self,
        req: &Outgoing,
        token: Option<&CachedToken>,
    ) -> Result<Exchange, ClientError> {
        let (uri, _, _) = http_uri(&req.url)?;
        Ok(done(
            self.exchange(req, &uri, token).await?,
            None,
            token.is_some(),
        ))
    }

    /// Pays `required`, the challenge an answer from `url` carried, under the budget (reserved
    /// first, as [`L402Client::send`] pays) and caches its token under `url`'s origin and
    /// `service`. The caller sends the request again with [`Paid::token`].
    pub async fn pay(
        &self,
        url: &str,
        service: &str,
        required: &PaymentRequired,
    ) -> Result<Paid, ClientError> {
        let (_, origin, host) = http_uri(url)?;
        let target = Target {
            url,
            origin: &origin,
            host: &host,
            service,
        };
        self.pay_for(required, &target, self.clock.now_unix()).await
    }

    async fn pay_for(
        &self,
        required: &PaymentRequired,
        target: &Target<'_>,
        now: u64,
    ) -> Result<Paid, ClientError> {
        let wallet = self.wallet();
        Ok(pay_challenge(&wallet, &self.ledger, &self.budget, required, target, now).await?)
    }

    /// Sends `req`; on `402` pays under the budget and retries once with the token.
    pub async fn send(&self, req: &Outgoing) -> Result<Exchange, ClientError> {
        let (uri, origin, host) = http_uri(&req.url)?;
        let now = self.clock.now_unix();

        let mut tried: Option<CachedToken> = None;
        if let Some(service) = &req.service
            && let Some(token) = self.ledger.token(&origin, service, now).await?
        {
            let r = self.exchange(req, &uri, Some(&token)).await?;
            if !r.wants_payment() {
                return Ok(done(r, None, true));
            }
            if let Some(top_up) = balance_exhausted(&r) {
                let target = Target {
                    url: &req.url,
                    origin: &origin,
                    host: &host,
                    service,
                };
                return self
                    .pay_and_retry(req, &uri, &top_up, &target, now, true)
                    .await;
            }
            tried = Some(token);
        }
        let first = self.exchange(req, &uri, None).await?;
        if !first.wants_payment() {
            return Ok(done(first, None, false));
        }
        let mut required = first.challenge()?;
        let service = req
            .service
            .clone()
            .or_else(|| required.body.as_ref().and_then(|b| b.service.clone()))
            .or_else(|| service_caveat(&required))
            .unwrap_or_default();
        let mut topped_up = false;
        // A token for this service that this request has not tried yet: once, before paying.
        if let Some(token) = self.ledger.token(&origin, &service, now).await?
            && tried.as_ref() != Some(&token)
        {
            let r = self.exchange(req, &uri, Some(&token)).await?;
            if !r.wants_payment() {
                return Ok(done(r, None, true));
            }
            // Its balance ran out: pay the top-up it was offered (the first `402`'s challenge
            // is left unpaid). Any other refusal: forget the token and pay the first challenge.
            match balance_exhausted(&r) {
                Some(top_up) => (required, topped_up) = (top_up, true),
                None => self.ledger.forget_token(&origin, &service).await?,
            }
        }
        let target = Target {
            url: &req.url,
            origin: &origin,
            host: &host,
            service: &service,
        };
        self.pay_and_retry(req, &uri, &required, &target, now, topped_up)
            .await
    }

    /// Pays `required` under the budget (the payer caches the new token for `target`, in place
    /// of any before it) and sends `req` once more with it.
    async fn pay_and_retry(
        &self,
        req: &Outgoing,
        uri: &Uri,
        required: &PaymentRequired,
        target: &Target<'_>,
        now: u64,
        topped_up: bool,
    ) -> Result<Exchange, ClientError> {
        let paid = self.pay_for(required, target, now).await?;
        let r = self.exchange(req, uri, Some(&paid.token)).await?;
        Ok(Exchange {
            topped_up,
            ..done(r, Some(paid), false)
        })
    }

    async fn exchange(
        &self,
        req: &Outgoing,
        uri: &Uri,
        token: Option<&CachedToken>,
    ) -> Result<Response, ClientError> {
        let mut b = Request::builder()
            .method(req.method.clone())
            .uri(uri.clone());
        for (k, v) in &req.headers {
            if !k.eq_ignore_ascii_case(AUTHORIZATION.as_str()) {
                b = b.header(k.as_str(), v.as_str());
            }
        }
        if let Some(t) = token {
            b = b.header(AUTHORIZATION, t.authorization());
        }
        let request = b
            .body(Full::new(req.body.clone()))
            .map_err(ClientError::Request)?;
        let resp = self
            .http
            .request(request)
            .await
            .map_err(|source| ClientError::Http {
                url: req.url.clone(),
                source,
            })?;
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, MAX_RESPONSE_BODY)
            .collect()
            .await
            .map_err(|_| ClientError::Body {
                url: req.url.clone(),
            })?
            .to_bytes();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// `url` parsed, with its origin (`http://host[:port]`) and host: plain `http://` only.
fn http_uri(url: &str) -> Result<(Uri, String, String), ClientError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| ClientError::BadUrl(url.to_owned()))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(_) => return Err(ClientError::UnsupportedScheme(url.to_owned())),
        None => return Err(ClientError::BadUrl(url.to_owned())),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| ClientError::BadUrl(url.to_owned()))?;
    let origin = format!("http://{authority}");
    let host = authority.host().to_owned();
    Ok((uri, origin, host))
}

fn done(r: Response, paid: Option<Paid>, reused_token: bool) -> Exchange {
    Exchange {
        status: r.status,
        headers: r.headers,
        body: r.body,
        paid,
        reused_token,
        topped_up: false,
    }
}

/// The top-up challenge of a `402` that says a token's prepaid balance is exhausted.
fn balance_exhausted(r: &Response) -> Option<PaymentRequired> {
    if r.status != StatusCode::PAYMENT_REQUIRED {
        return None;
    }
    r.challenge()
        .ok()
        .filter(PaymentRequired::balance_exhausted)
}

/// The first service a challenge's `services=` caveat names (`services=weather:0,…`).
fn service_caveat(required: &PaymentRequired) -> Option<String> {
    required
        .preferred()
        .challenge
        .macaroon
        .caveats()
        .filter(|c| !c.is_third_party())
        .find_map(|c| {
            let text = std::str::from_utf8(c.id).ok()?;
            let (key, value) = text.split_once('=')?;
            if key.trim() != "services" {
                return None;
            }
            let first = value.split(',').next()?.trim();
            let name = first.split(':').next()?.trim();
            (!name.is_empty()).then(|| name.to_owned())
        })
}
