//! The gate: the one object the gateway asks "may this request through, and if not, what must
//! the buyer pay?" ([`Authenticator`]), built from the mint, the challenger, the settlement
//! tracker and the store.
//!
//! A request with no token is offered a challenge (`402`); a token that fails verification is
//! refused with a machine-readable [`Reason`] and a fresh challenge (`401`); a paid token goes
//! through, debiting its prepaid balance when it has one together with the meters of its cap
//! caveats (one store step: [`MeterStore::charge`]), so a sub-agent's token spends against its
//! own caps and every ancestor's. Verification stays local on the hot
//! path: the macaroon's HMAC chain against a cached root key, the preimage against the payment
//! hash, the caveats, and the tracker's in-memory set of settled hashes.
//!
//! Modelled on Aperture's seam (lightninglabs/aperture `auth/interface.go`, v0.3.x: the proxy
//! sees only an authenticator), but the answer is a typed [`Verdict`] rather than a bare bool,
//! so responses and metrics can tell refusals apart. It must not know about HTTP or sockets.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use rust_decimal::Decimal;
use serde::Serialize;

use super::challenger::{ChallengeError, Challenger, Offer, PricedService, RailSpec};
use super::tracker::{Settled, SettlementTracker, TrackerError};
use super::{Mint, MintError, MintRequest};
use crate::clock::Clock;
use crate::l402::caveat::CaveatError;
use crate::l402::caveat::MeterKind;
use crate::l402::header::Challenge;
use crate::l402::verify::{self, SignatureMemo, VerifyError};
use crate::l402::{Macaroon, RequestContext, RootKey, TokenId};
use crate::lightning::traits::{AssetInvoices, Invoices, Rates};
use crate::metrics::Metrics;
use crate::store::{
    BalanceStore, Charge, ChargeOutcome, MeterDebit, MeterStore, Rail, RootKeyStore,
    SettlementStore, StoreError, TokenLedger, TokenRecord,
};

/// A boxed future, so [`Authenticator`] is object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Millionths of a dollar in a dollar: prices have at most six places
/// ([`crate::config::services::PRICE_DECIMALS`]), so balances are whole micro-dollars.
const MICRO: i64 = 1_000_000;

/// Seconds in a UTC day: a daily cap's meter counts per `unix seconds / 86 400` (unix time has
/// no leap seconds, so every day is this long and starts at 00:00 UTC).
const SECS_PER_DAY: u64 = 86_400;

/// Why a token was refused, as the `reason` of a `401` body and the `reason` label of the
/// refusal metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The token's `_valid_until` has passed.
    Expired,
    /// The token's root key is gone: revoked, or never minted here.
    Revoked,
    /// The token does not grant this service.
    WrongService,
    /// The token does not allow this method.
    WrongMethod,
    /// The token's tier is below what the path needs.
    WrongTier,
    /// The preimage does not hash to the token's payment hash.
    BadPreimage,
    /// The invoice is not settled.
    Unpaid,
    /// The token's budget caveat does not cover the call.
    OverBudget,
    /// The token's call cap is used up.
    TooManyCalls,
    /// The prepaid balance cannot pay for the call (a top-up challenge follows, as `402`).
    BalanceExhausted,
    /// The credential is not a well-formed L402 credential, or its signature is wrong.
    Invalid,
}

impl Reason {
    /// The snake_case name used in bodies and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::WrongService => "wrong_service",
            Self::WrongMethod => "wrong_method",
            Self::WrongTier => "wrong_tier",
            Self::BadPreimage => "bad_preimage",
            Self::Unpaid => "unpaid",
            Self::OverBudget => "over_budget",
            Self::TooManyCalls => "too_many_calls",
            Self::BalanceExhausted => "balance_exhausted",
            Self::Invalid => "invalid",
        }
    }

    /// Every reason, for metrics that start at zero.
    pub const ALL: [Reason; 11] = [
        Self::Expired,
        Self::Revoked,
        Self::WrongService,
        Self::WrongMethod,
        Self::WrongTier,
        Self::BadPreimage,
        Self::Unpaid,
        Self::OverBudget,
        Self::TooManyCalls,
        Self::BalanceExhausted,
        Self::Invalid,
    ];
}

/// A request, as far as payment is concerned.
#[derive(Clone, Copy, Debug)]
pub struct AuthRequest<'a> {
    /// The service's index in the catalogue.
    pub service: usize,
    /// The tier the path needs.
    pub tier_required: u8,
    /// HTTP method.
    pub method: &'a str,
    /// Request path.
    pub path: &'a str,
    /// Every `Authorization` value the request carried.
    pub authorization: &'a [&'a str],
    /// The `Idempotency-Key` header, if any.
    pub idempotency_key: Option<&'a str>,
    /// Who is asking (the client's address), for free calls.
    pub client: &'a str,
    /// The connection's last proven credential, if the connection keeps one: the same
    /// `Authorization` value again is not proven again ([`verify::verify_header_memo`]).
    pub memo: Option<&'a Mutex<SignatureMemo>>,
}

/// A paid request let through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pass {
    /// The token.
    pub token_id: TokenId,
    /// The token's tier on the service.
    pub tier: u8,
    /// Capabilities the token grants, comma separated (none: all).
    pub capabilities: Option<String>,
    /// How the token was paid.
    pub rail: Option<Rail>,
    /// What this call was charged, dollars (a prepaid debit), or zero for a token bought
    /// outright.
    pub charged_usd: Decimal,
    /// The prepaid balance left, dollars.
    pub balance_usd: Option<Decimal>,
    /// What the token cost, dollars, for a token bought outright (not prepaid).
    pub token_price_usd: Option<Decimal>,
    /// The debit was a retry of an earlier one under the same `Idempotency-Key`.
    pub replayed: bool,
}

/// A challenge issued: the offer, and the token that its payment unlocks.
#[derive(Clone, Debug)]
pub struct Issued {
    /// What is asked for.
    pub offer: Offer,
    /// The token (not yet valid: its invoice is unpaid).
    pub macaroon: Macaroon,
    /// Its id.
    pub token_id: TokenId,
    /// Unix seconds when the token expires.
    pub token_expires_at: u64,
    /// The service's token lifetime, seconds.
    pub token_lifetime_secs: u64,
}

impl Issued {
    /// The `WWW-Authenticate` value: `L402 macaroon="…", invoice="…"`.
    pub fn www_authenticate(&self) -> String {
        Challenge::new(self.macaroon.clone(), self.offer.invoice.clone()).to_header_value()
    }
}

/// What the gate decided.
#[derive(Debug)]
pub enum Verdict {
    /// Through, paid.
    Pass(Pass),
    /// Through, as one of the client's free calls.
    Free,
    /// Pay first: `402` (no token, or a balance to top up) or `401` (a refused token), with
    /// a fresh challenge or the reason none could be made.
    Pay {
        /// Why the request's token was refused; none when it had none.
        reason: Option<Reason>,
        /// A human sentence for the body.
        detail: String,
        /// The fresh challenge.
        challenge: Result<Box<Issued>, ChallengeError>,
    },
    /// Refused without a new challenge: the token is valid but its invoice is not settled, and
    /// a fresh challenge would invite paying twice. The client retries after a moment.
    NotSettled {
        /// A human sentence for the body.
        detail: String,
    },
    /// The node could not be asked (a direct settlement lookup failed), or the store did
    /// not answer: try again later.
    Unavailable {
        /// Which: [`NODE_UNAVAILABLE`], [`STORE_UNAVAILABLE`] or `"unavailable"`.
        code: &'static str,
        /// A human sentence for the body.
        detail: String,
    },
}

/// [`Verdict::Unavailable`]'s code when the seller's node did not answer.
pub const NODE_UNAVAILABLE: &str = "node_unavailable";
/// [`Verdict::Unavailable`]'s code when the store (the database) did not answer.
pub const STORE_UNAVAILABLE: &str = "store_unavailable";

/// A store failure as the buyer sees it: the store's code, and what to do.
fn store_down(e: &StoreError) -> Verdict {
    Verdict::Unavailable {
        code: STORE_UNAVAILABLE,
        detail: format!(
            "the gateway's database did not answer ({e}); retry in a few seconds (send an Idempotency-Key so that a retry is never charged twice)"
        ),
    }
}

/// The seam the gateway sees: one object-safe trait, so the proxy never touches a store or a
/// node.
pub trait Authenticator: Send + Sync {
    /// Decides a request.
    fn authenticate<'a>(&'a self, req: AuthRequest<'a>) -> BoxFuture<'a, Verdict>;
    /// A challenge for `tier` of the service at `service`, optionally for a chosen prepaid
    /// balance (the quote endpoint).
    fn challenge(
        &self,
        service: usize,
        tier: u8,
        prepaid_usd: Option<Decimal>,
    ) -> BoxFuture<'_, Result<Issued, ChallengeError>>;
    /// The catalogue, in configuration order.
    fn services(&self) -> &[PricedService];
    /// The price of `tier` of a service in msat (and units, for an asset service) now.
    fn preview(
        &self,
        service: usize,
        tier: u8,
    ) -> BoxFuture<'_, Result<(u64, Option<u64>), ChallengeError>>;
    /// The seller node's public key.
    fn node_pubkey(&self) -> &str;
    /// Whether the settlement stream is delivering (readiness).
    fn settlements_streaming(&self) -> bool;
    /// Whether this replica holds the settlement stream's lease and follows it (among
    /// replicas sharing one store, exactly one does).
    fn settlement_stream_leader(&self) -> bool {
        false
    }
}

/// How long a gate trusts a cached root key before asking the store again. Replicas share
/// one store, and a token revoked through one of them must fail on every other within a
/// second: each holds a key at most this long (plus one store read) past its revocation.
pub const ROOT_KEY_STALENESS: std::time::Duration = std::time::Duration::from_millis(500);

/// A token's root key and ledger entry, cached after the first verification.
struct Cached {
    key: RootKey,
    record: Option<TokenRecord>,
    /// Whether this process counted the token's payment in the metrics yet.
    counted: AtomicBool,
    /// When the store last confirmed the key, in milliseconds since the gate's start.
    checked_ms: AtomicU64,
}

/// Settings of the gate.
#[derive(Clone, Debug)]
pub struct GateSettings {
    /// Honour a token only when its invoice is seen settled (default true). Off: a valid
    /// preimage is proof enough, as in Aperture.
    pub strict_settlement: bool,
    /// The seller node's public key (for discovery).
    pub node_pubkey: String,
}

/// The [`Authenticator`] over a store, a challenger and a settlement tracker.
pub struct Gate<S, L, T: Rates> {
    services: Vec<PricedService>,
    store: Arc<S>,
    mint: Mint<Arc<S>>,
    challenger: Challenger<L, T>,
    tracker: Arc<SettlementTracker<S>>,
    lnd: L,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    settings: GateSettings,
    /// Root keys and ledger entries of tokens seen. Invariant: an entry is removed when the
    /// token is revoked through this gate, and misses are never cached (another replica may
    /// mint the token later).
    cache: RwLock<HashMap<TokenId, Arc<Cached>, crate::l402::IdHashing>>,
    /// The origin of [`Cached::checked_ms`].
    started: std::time::Instant,
}

impl<S, L, T: Rates> std::fmt::Debug for Gate<S, L, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("services", &self.services.len())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Everything a gate is built from.
pub struct GateParts<S, L, T: Rates> {
    /// The catalogue, resolved.
    pub services: Vec<PricedService>,
    /// The store.
    pub store: Arc<S>,
    /// The macaroons' location.
    pub location: String,
    /// The challenger.
    pub challenger: Challenger<L, T>,
    /// The tracker.
    pub tracker: Arc<SettlementTracker<S>>,
    /// The seller's lnd, for direct lookups.
    pub lnd: L,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Settings.
    pub settings: GateSettings,
}

impl<S, L, T> Gate<S, L, T>
where
    S: RootKeyStore + SettlementStore + TokenLedger + BalanceStore + MeterStore + 'static,
    L: Invoices + Clone + 'static,
    T: AssetInvoices + Rates + Clone + 'static,
{
    /// A gate from its parts.
    pub fn new(p: GateParts<S, L, T>) -> Self {
        Self {
            services: p.services,
            mint: Mint::new(Arc::clone(&p.store), p.location),
            store: p.store,
            challenger: p.challenger,
            tracker: p.tracker,
            lnd: p.lnd,
            clock: p.clock,
            metrics: p.metrics,
            settings: p.settings,
            cache: RwLock::default(),
            started: std::time::Instant::now(),
        }
    }

    /// Revokes a token: its root key is deleted (every credential made from it fails as
    /// `revoked`) and the ledger marks it. `true` if it existed.
    pub async fn revoke(&self, token_id: &TokenId) -> Result<bool, MintError> {
        self.cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token_id);
        let had_key = self.mint.revoke(token_id).await?;
        let marked = self.store.mark_revoked(token_id).await?;
        Ok(had_key || marked)
    }

    /// The catalogue as `serve` prints it at start.
    pub fn services_view(&self) -> Vec<serde_json::Value> {
        self.services
            .iter()
            .map(|p| {
                let s = &p.service;
                serde_json::json!({
                    "name": s.name,
                    "paths": s.paths.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
                    "price_usd": s.price_usd.to_string(),
                    "settlement": if is_asset(p) { "asset" } else { "sats" },
                    "prepaid_usd": s.prepaid_usd.map(|x| x.to_string()),
                    "upstream": s.upstream.as_str(),
                })
            })
            .collect()
    }

    /// The store, for the admin API.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The service at `index`, or the error a challenge for it gets.
    fn service(&self, index: usize, tier: u8) -> Result<&PricedService, ChallengeError> {
        self.services
            .get(index)
            .ok_or_else(|| ChallengeError::NoSuchTier {
                service: format!("#{index}"),
                tier,
            })
    }

    async fn issue(
        &self,
        service: usize,
        tier: u8,
        prepaid_usd: Option<Decimal>,
    ) -> Result<Issued, ChallengeError> {
        let svc = self.service(service, tier)?;
        let offer = self.challenger.offer(svc, tier, prepaid_usd).await?;
        let s = &svc.service;
        let now = self.clock.now_unix();
        let expires_at = now.saturating_add(s.token_lifetime_secs);
        let mut caveats = vec![format!("{}_valid_until={expires_at}", s.name)];
        if let Some(t) = tier
            .checked_sub(1)
            .and_then(|i| s.tiers.get(usize::from(i)))
            && !t.capabilities.is_empty()
        {
            caveats.push(format!(
                "{}_capabilities={}",
                s.name,
                t.capabilities.join(",")
            ));
        }
        let request = MintRequest::new(
            offer.payment_hash,
            &[format!("{}:{tier}", s.name)],
            &caveats,
        )
        .map_err(mint_to_challenge)?;
        let minted = self.mint.mint(&request).await.map_err(mint_to_challenge)?;
        let record = TokenRecord {
            token_id: minted.token_id,
            payment_hash: offer.payment_hash,
            service: s.name.clone(),
            tier,
            rail: offer.rail,
            price_micro_usd: micro(offer.price_usd),
            msat: offer.msat,
            units: offer.asset.as_ref().map(|a| a.units),
            prepaid_micro_usd: offer.prepaid_usd.map(micro),
            created_at: now,
            expires_at,
        };
        self.store
            .record_token(&record)
            .await
            .map_err(|e| mint_to_challenge(MintError::Store(e)))?;
        self.metrics.challenge(&s.name, offer.rail);
        Ok(Issued {
            offer,
            macaroon: minted.macaroon,
            token_id: minted.token_id,
            token_expires_at: expires_at,
            token_lifetime_secs: s.token_lifetime_secs,
        })
    }

    async fn pay(&self, req: &AuthRequest<'_>, reason: Option<Reason>, detail: String) -> Verdict {
        if let Some(r) = reason {
            self.metrics.refusal(r);
        }
        // Boxed, as is every wait of `decide` that a paid call with a settled token does not
        // reach: `decide`'s own future, which every request allocates, stays small.
        let challenge = Box::pin(self.issue(req.service, req.tier_required, None))
            .await
            .map(Box::new);
        Verdict::Pay {
            reason,
            detail,
            challenge,
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The cached root key and ledger entry of `token_id`, from memory only; `None` also when
    /// the entry is older than [`ROOT_KEY_STALENESS`] and this caller is the one to confirm it
    /// with the store ([`Gate::load`]). Callers that find it stale while another confirms it
    /// use it meanwhile.
    fn cache_get(&self, token_id: &TokenId) -> Option<Arc<Cached>> {
        let c = self
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token_id)
            .map(Arc::clone)?;
        let now = self.elapsed_ms();
        let checked = c.checked_ms.load(Ordering::Relaxed);
        let stale_after = u64::try_from(ROOT_KEY_STALENESS.as_millis()).unwrap_or(u64::MAX);
        if now.saturating_sub(checked) <= stale_after {
            return Some(c);
        }
        match c
            .checked_ms
            .compare_exchange(checked, now, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => None,
            Err(_) => Some(c),
        }
    }

    /// The root key and ledger entry of `token_id` from the store, cached: a revoked (or
    /// unknown) token leaves the cache, and a confirmed one keeps its entry (and whether its
    /// payment was counted).
    async fn load(&self, token_id: &TokenId) -> Result<Option<Arc<Cached>>, StoreError> {
        let Some(key) = self.store.get(token_id).await? else {
            self.cache
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(token_id);
            return Ok(None);
        };
        let now = self.elapsed_ms();
        let known = self
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token_id)
            .map(Arc::clone);
        if let Some(c) = known
            && c.key == key
        {
            c.checked_ms.store(now, Ordering::Relaxed);
            return Ok(Some(c));
        }
        let record = self.store.token(token_id).await?.map(|v| v.record);
        let c = Arc::new(Cached {
            key,
            record,
            counted: AtomicBool::new(false),
            checked_ms: AtomicU64::new(now),
        });
        self.cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(*token_id, Arc::clone(&c));
        Ok(Some(c))
    }

    async fn decide(&self, req: AuthRequest<'_>) -> Verdict {
        let Some(svc) = self.services.get(req.service) else {
            return Verdict::Unavailable {
                code: "unavailable",
                detail: "no such service".into(),
            };
        };
        let s = &svc.service;
        if req.authorization.is_empty() {
            if let Some(limit) = s.free_calls_per_client {
                match Box::pin(self.store.take_free_call(&s.name, req.client, limit)).await {
                    Ok(true) => return Verdict::Free,
                    Ok(false) => {}
                    Err(e) => {
                        return store_down(&e);
                    }
                }
            }
            return self
                .pay(
                    &req,
                    None,
                    format!(
                        "{} costs ${} per {}; pay the invoice and retry with Authorization: L402 <macaroon>:<preimage>",
                        s.name,
                        svc.price_usd(req.tier_required),
                        if s.prepaid_usd.is_some() { "call, from a prepaid balance" } else { "token" }
                    ),
                )
                .await;
        }
        let ctx = RequestContext {
            service: &s.name,
            method: req.method,
            path: req.path,
            now: self.clock.now_unix(),
        };
        // The common case verifies in place against the in-memory cache ([`verify::verify_header`]);
        // a token not in the cache yet is loaded from the store and verified once more.
        let mut hit = None;
        let mut missed = None;
        let lookup = |id: &TokenId| match self.cache_get(id) {
            Some(c) => {
                let key = c.key.clone();
                hit = Some(c);
                Some(key)
            }
            None => {
                missed = Some(*id);
                None
            }
        };
        let mut verified = match req.memo {
            Some(memo) => {
                let mut memo = memo.lock().unwrap_or_else(PoisonError::into_inner);
                verify::verify_header_memo(req.authorization, &ctx, lookup, &mut memo)
            }
            None => verify::verify_header(req.authorization, &ctx, lookup),
        };
        if let Some(id) = missed {
            match Box::pin(self.load(&id)).await {
                Ok(Some(c)) => {
                    let key = c.key.clone();
                    hit = Some(c);
                    verified = verify::verify_header(req.authorization, &ctx, |_| Some(key));
                }
                Ok(None) => {}
                Err(e) => {
                    return store_down(&e);
                }
            }
        }
        let cached = hit;
        let decision = match verified {
            Ok(d) => d,
            Err(e) => {
                let reason = reason_of(&e);
                return self.pay(&req, Some(reason), e.to_string()).await;
            }
        };
        if decision.tier < req.tier_required {
            return self
                .pay(
                    &req,
                    Some(Reason::WrongTier),
                    format!(
                        "this path needs tier {} of {}; the token has tier {}",
                        req.tier_required, s.name, decision.tier
                    ),
                )
                .await;
        }
        let Some(cached) = cached else {
            // verify_credential refuses a token without a key, so this is unreachable; answer
            // as it would.
            return self
                .pay(
                    &req,
                    Some(Reason::Revoked),
                    "unknown or revoked token".into(),
                )
                .await;
        };
        if self.settings.strict_settlement {
            let settled = if self.tracker.seen(&decision.payment_hash) {
                Ok(Settled::Yes)
            } else {
                Box::pin(self.tracker.is_settled(&decision.payment_hash, &self.lnd)).await
            };
            match settled {
                Ok(Settled::Yes) => {}
                Ok(Settled::NotYet | Settled::Unknown) => {
                    self.metrics.refusal(Reason::Unpaid);
                    return Verdict::NotSettled {
                        detail: "the token's invoice is not settled yet; if you paid it, retry in a moment (no new invoice is issued, so you cannot pay twice)".into(),
                    };
                }
                Err(TrackerError::Node(e)) => {
                    return Verdict::Unavailable {
                        code: NODE_UNAVAILABLE,
                        detail: format!(
                            "cannot confirm the token's payment with the seller's node: {e}"
                        ),
                    };
                }
                Err(TrackerError::Store(e)) => {
                    return store_down(&e);
                }
            }
        }
        // Read first: once counted, every later call only reads the flag, so the cache line
        // the workers share stays shared instead of moving between cores on each call.
        if !cached.counted.load(Ordering::Relaxed)
            && !cached.counted.swap(true, Ordering::Relaxed)
            && let Some(r) = &cached.record
        {
            self.metrics.payment(r);
        }
        let r = &decision.restrictions;
        let capabilities = r
            .capabilities
            .as_ref()
            .map(|c| c.iter().collect::<Vec<_>>().join(","));
        let mut pass = Pass {
            token_id: decision.token_id,
            tier: decision.tier,
            capabilities,
            rail: cached.record.as_ref().map(|r| r.rail),
            charged_usd: usd(0),
            balance_usd: None,
            token_price_usd: None,
            replayed: false,
        };
        let prepaid = cached.record.as_ref().and_then(|r| r.prepaid_micro_usd);
        let price = match prepaid {
            Some(_) => micro(svc.price_usd(decision.tier)),
            None => {
                // A token bought outright: its price was its budget's whole spend, so a call
                // costs nothing against its dollar caps (only its call caps count).
                if let (Some(budget), Some(rec)) = (r.budget_usd, &cached.record)
                    && usd(rec.price_micro_usd) > budget
                {
                    return self
                        .pay(
                            &req,
                            Some(Reason::OverBudget),
                            format!("the token's budget ${budget} is below its price"),
                        )
                        .await;
                }
                pass.token_price_usd = cached.record.as_ref().map(|r| usd(r.price_micro_usd));
                if decision.meters.is_empty() {
                    return Verdict::Pass(pass);
                }
                0
            }
        };
        if let Some(prepaid) = prepaid
            && let Err(e) = Box::pin(self.store.open_balance(&decision.token_id, prepaid)).await
        {
            return store_down(&e);
        }
        let day = ctx.now / SECS_PER_DAY;
        let meters: Vec<MeterDebit> = decision
            .meters
            .iter()
            .map(|m| MeterDebit {
                key: m.key,
                period: if m.kind == MeterKind::UsdPerDay {
                    day
                } else {
                    0
                },
                cap: m.cap,
                amount: if m.kind == MeterKind::Calls { 1 } else { price },
            })
            .collect();
        let charge = Charge {
            token_id: &decision.token_id,
            balance_micro_usd: prepaid.map(|_| price),
            meters: &meters,
            idempotency_key: req.idempotency_key,
        };
        match Box::pin(self.store.charge(&charge)).await {
            Ok(ChargeOutcome::Charged {
                remaining_micro_usd,
                replayed,
            }) => {
                pass.replayed = replayed;
                if prepaid.is_some() {
                    pass.charged_usd = if replayed { usd(0) } else { usd(price) };
                    pass.balance_usd = remaining_micro_usd.map(usd);
                    if !replayed {
                        self.metrics.debit(&s.name, price);
                    }
                }
                Verdict::Pass(pass)
            }
            Ok(ChargeOutcome::MeterFull { index, used }) => {
                let Some(m) = meters.get(index) else {
                    return Verdict::Unavailable {
                        code: "unavailable",
                        detail: "the store named a meter the call does not have".into(),
                    };
                };
                let (reason, detail) = match decision.meters.iter().nth(index).map(|m| m.kind) {
                    Some(MeterKind::Calls) => (
                        Reason::TooManyCalls,
                        format!(
                            "a caveat of the token allows {} calls and they are used",
                            m.cap
                        ),
                    ),
                    Some(MeterKind::UsdPerDay) => (
                        Reason::OverBudget,
                        format!(
                            "a caveat of the token caps it at ${} per day (UTC); ${} is spent today and a call costs ${}; it resets at 00:00 UTC",
                            usd(m.cap),
                            usd(used),
                            usd(price)
                        ),
                    ),
                    _ => (
                        Reason::OverBudget,
                        format!(
                            "a caveat of the token caps its spending at ${}; ${} is spent and a call costs ${}",
                            usd(m.cap),
                            usd(used),
                            usd(price)
                        ),
                    ),
                };
                self.pay(&req, Some(reason), detail).await
            }
            Ok(ChargeOutcome::Insufficient {
                remaining_micro_usd,
            }) => {
                self.pay(
                    &req,
                    Some(Reason::BalanceExhausted),
                    format!(
                        "the prepaid balance is ${}, less than the ${} a call costs; pay the new invoice to top up with a new token",
                        usd(remaining_micro_usd),
                        usd(price)
                    ),
                )
                .await
            }
            Ok(ChargeOutcome::NoBalance) => Verdict::Unavailable {
                code: "unavailable",
                detail: "the token's prepaid balance was not found".into(),
            },
            Err(e) => store_down(&e),
        }
    }
}

impl<S, L, T> Authenticator for Gate<S, L, T>
where
    S: RootKeyStore + SettlementStore + TokenLedger + BalanceStore + MeterStore + 'static,
    L: Invoices + Clone + 'static,
    T: AssetInvoices + Rates + Clone + 'static,
{
    fn authenticate<'a>(&'a self, req: AuthRequest<'a>) -> BoxFuture<'a, Verdict> {
        Box::pin(self.decide(req))
    }

    fn challenge(
        &self,
        service: usize,
        tier: u8,
        prepaid_usd: Option<Decimal>,
    ) -> BoxFuture<'_, Result<Issued, ChallengeError>> {
        Box::pin(self.issue(service, tier, prepaid_usd))
    }

    fn services(&self) -> &[PricedService] {
        &self.services
    }

    fn preview(
        &self,
        service: usize,
        tier: u8,
    ) -> BoxFuture<'_, Result<(u64, Option<u64>), ChallengeError>> {
        Box::pin(async move {
            let svc = self.service(service, tier)?;
            self.challenger.preview(svc, tier).await
        })
    }

    fn node_pubkey(&self) -> &str {
        &self.settings.node_pubkey
    }

    fn settlements_streaming(&self) -> bool {
        self.tracker.is_streaming()
    }

    fn settlement_stream_leader(&self) -> bool {
        self.tracker.is_leading()
    }
}

/// The refusal reason of a verification error.
pub fn reason_of(e: &VerifyError) -> Reason {
    match e {
        VerifyError::Expired { .. } => Reason::Expired,
        VerifyError::UnknownToken => Reason::Revoked,
        VerifyError::PreimageMismatch => Reason::BadPreimage,
        VerifyError::MethodNotAllowed(_) => Reason::WrongMethod,
        VerifyError::Caveat(CaveatError::ServiceNotAllowed(_) | CaveatError::NoServices) => {
            Reason::WrongService
        }
        _ => Reason::Invalid,
    }
}

fn mint_to_challenge(e: MintError) -> ChallengeError {
    ChallengeError::Mint(Box::new(e))
}

/// Dollars as whole micro-dollars (prices have at most six places; anything finer is rounded
/// up so a balance is never debited less than the price).
pub fn micro(d: Decimal) -> u64 {
    let m = (d * Decimal::from(MICRO)).ceil();
    u64::try_from(m.mantissa() / 10i128.pow(m.scale())).unwrap_or(u64::MAX)
}

/// Micro-dollars as dollars, written with at least cents (`0.98`, `0.00`, `0.000125`).
pub fn usd(micro: u64) -> Decimal {
    let mut d = Decimal::from_i128_with_scale(i128::from(micro), 6).normalize();
    if d.scale() < 2 {
        d.rescale(2);
    }
    d
}

/// Whether a service is settled in the asset (for bodies).
pub fn is_asset(svc: &PricedService) -> bool {
    matches!(svc.rail, RailSpec::Asset { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micro_dollars_round_trip() {
        assert_eq!(micro(Decimal::new(2, 2)), 20_000);
        assert_eq!(micro(Decimal::new(1, 0)), 1_000_000);
        assert_eq!(micro(Decimal::new(1, 7)), 1);
        assert_eq!(usd(20_000).to_string(), "0.02");
        assert_eq!(usd(0).to_string(), "0.00");
        assert_eq!(usd(1_000_000).to_string(), "1.00");
        assert_eq!(usd(125).to_string(), "0.000125");
    }

    #[test]
    fn every_reason_has_a_distinct_name() {
        let names: std::collections::HashSet<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Reason::ALL.len());
    }
}
