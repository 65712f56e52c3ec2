//! Paying one `402` challenge under the budget: decode, price both rails, reserve, pay,
//! settle (or release, or keep as unknown), and cache the token.
//!
//! This module owns the order of those steps and the meaning of a node's error for the
//! reservation. It reaches the node only through [`Payments`] and [`Rates`] and the ledger only
//! through [`ClientLedger`]; it must not speak HTTP (the caller sends and retries), print or
//! log a token or preimage, or call the node before the reservation is committed.
//!
//! **Rates.** Both rails are valued at the edge's sell quote for the invoice plus the fee
//! limit, the quote tapd itself asks for when paying (`paymentMaxAmt`, lightninglabs/
//! taproot-assets `rpcserver.go` `SendPayment`, v0.8.1): the asset rail spends exactly that, and a
//! sats payment is valued at what the same payment would cost in the stablecoin, as
//! `tapgate node … pay --max-usd` does. The asset rail's worst case also takes tapd's preview
//! of the invoice (`DecodeAssetPayReq`): units it asks for above the quote's are added. With
//! both rails valued alike their worst cases tie, and the tie goes to the stablecoin, the
//! currency the budget is written in. A node the edge will
//! not quote (no asset channel) pays in sats valued at [`Holdings::sats_rate`].
//!
//! **Unknown outcomes.** A node error that proves nothing was sent (a failed payment, no
//! asset channel, a refused quote, a refused request) releases the reservation; any other
//! (a deadline, a dropped stream, an answer tapgate cannot read) keeps it held as unknown, to
//! be followed up by its payment hash and never paid again.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::budget::{Budget, BudgetError};
use super::challenge::{ChallengeError, PaymentRequired, check_commitment};
use super::cost::{self, CapError, CapRate, RailCost, RateSource};
use super::invoice::{self, InvoiceError};
use super::ledger::{
    CachedToken, ClientLedger, LedgerError, NewSpend, PendingToken, SpendState, Spent, TokenSlot,
};
use super::owner::{Liveness, Owner};
use crate::lightning::error::BackendError;
use crate::lightning::traits::{Payments, Rates};
use crate::lightning::types::{AssetRef, PaymentOutcome, TrackedPayment};
use crate::pricing::{self, FixedPoint, PricingError};
use crate::store::Rail;

/// How long the quote asked for to price a payment lives, seconds: long enough to pay under it,
/// and at least tapd's 10 s minimum (lightninglabs/taproot-assets `rfq/manager.go`, v0.8.1).
const PRICING_QUOTE_SECS: u64 = 60;

/// What the payer holds and may spend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holdings {
    /// The stablecoin: the asset the budget's dollars are counted in.
    pub asset: AssetRef,
    /// The edge node (hex pubkey) that quotes and routes asset payments.
    pub edge_peer: String,
    /// Whether the node may pay with the asset over its asset channel.
    pub pay_with_asset: bool,
    /// Whether the node may pay in sats from its own channels.
    pub pay_with_sats: bool,
    /// The routing fee allowance asked for; lowered to what the budget leaves.
    pub max_fee_msat: u64,
    /// Asset units per BTC to value sats at when the edge will not quote this node (it has no
    /// asset channel); without it such a node cannot pay under a dollar budget.
    pub sats_rate: Option<FixedPoint>,
}

/// The node that pays, the tapd that prices, and what they may spend.
#[derive(Debug)]
pub struct Wallet<'a, P, R> {
    /// Pays invoices (lnd, and tapd for the asset).
    pub payments: &'a P,
    /// Quotes the edge's rate and the asset's decimals (tapd).
    pub rates: &'a R,
    /// What may be spent.
    pub holdings: &'a Holdings,
}

impl<P, R> Clone for Wallet<'_, P, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P, R> Copy for Wallet<'_, P, R> {}

/// Why a challenge was not paid, or its payment's outcome is unknown.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    /// The `402` answer holds no challenge to pay.
    #[error(transparent)]
    Challenge(#[from] ChallengeError),
    /// The invoice does not decode.
    #[error(transparent)]
    Invoice(#[from] InvoiceError),
    /// The invoice has no amount.
    #[error("the challenge's invoice names no amount, so no budget can bound it; nothing was paid")]
    NoAmount,
    /// The invoice expired before it could be paid.
    #[error(
        "the challenge's invoice expired at {expires_at}; nothing was paid. Send the request again for a fresh challenge"
    )]
    Expired {
        /// Unix seconds.
        expires_at: u64,
    },
    /// The payer may use neither rail.
    #[error(
        "the payer may pay neither with the asset nor in sats; allow one of them; nothing was paid"
    )]
    NoRail,
    /// The budget refuses it.
    #[error(transparent)]
    Budget(#[from] BudgetError),
    /// The ledger refuses it or failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The amounts do not convert at the edge's rate.
    #[error("the payment cannot be priced in dollars; nothing was paid")]
    Pricing(#[source] PricingError),
    /// The node refused or failed before anything was sent; the reservation was released.
    #[error("the node did not pay, and nothing was spent: {0}")]
    NotPaid(#[source] BackendError),
    /// The node gave no final answer: the payment may still complete. It stays reserved and
    /// is never paid again.
    #[error(
        "the payment of invoice {payment_hash} has an unknown outcome ({source}); it stays reserved against the budget and will not be paid again. Follow it up by its payment hash (lnd's TrackPaymentV2)"
    )]
    OutcomeUnknown {
        /// The invoice's payment hash, hex.
        payment_hash: String,
        /// What the node said.
        #[source]
        source: BackendError,
    },
}

/// A challenge paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paid {
    /// The token to send (secrets redacted from `Debug`).
    pub token: CachedToken,
    /// The rail used.
    pub rail: Rail,
    /// Dollars spent, routing fees included.
    pub usd: Decimal,
    /// The invoice amount, msat.
    pub msat: u64,
    /// Routing fees, msat.
    pub fee_msat: u64,
    /// Asset units spent, on the asset rail.
    pub units: Option<u64>,
    /// The worst case that was reserved, dollars.
    pub reserved_usd: Decimal,
}

/// Where the paid request went: the origin and service its token is cached under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    /// The full URL, for the ledger.
    pub url: &'a str,
    /// `scheme://host[:port]`.
    pub origin: &'a str,
    /// The host, for the allowlist.
    pub host: &'a str,
    /// The service's name (the body's `service`, or what the caller names).
    pub service: &'a str,
}

/// Whether a node error proves nothing was sent.
fn nothing_sent(e: &BackendError) -> bool {
    matches!(
        e,
        BackendError::PaymentFailed { .. }
            | BackendError::NoAssetChannel { .. }
            | BackendError::QuoteRejected { .. }
            | BackendError::BelowMinTransportable { .. }
            | BackendError::BelowMinTransportableMsat { .. }
            | BackendError::QuoteExpired { .. }
            | BackendError::QuoteOutlivedByInvoice { .. }
            | BackendError::InvalidRequest { .. }
            | BackendError::Unauthorized { .. }
            | BackendError::Connect { .. }
            | BackendError::Tls { .. }
    )
}

/// Pays the preferred challenge of `required` from `wallet` under `budget`, recording every
/// step in `ledger`, and caches the token under `target`'s origin and service.
pub async fn pay_challenge<P: Payments, R: Rates>(
    wallet: &Wallet<'_, P, R>,
    ledger: &ClientLedger,
    budget: &Budget,
    required: &PaymentRequired,
    target: &Target<'_>,
    now: u64,
) -> Result<Paid, PayError> {
    let Wallet {
        payments: node,
        rates,
        holdings,
    } = *wallet;
    budget.allows_host(target.host)?;
    let challenge = required.preferred();
    let decoded = invoice::decode(&challenge.challenge.invoice)?;
    check_commitment(challenge, &decoded.payment_hash)?;
    let invoice_msat = decoded
        .amount_msat
        .filter(|m| *m > 0)
        .ok_or(PayError::NoAmount)?;
    if decoded.expired_at(now) {
        return Err(PayError::Expired {
            expires_at: decoded.expires_at,
        });
    }
    let committed = ledger.committed(now).await?;
    // With no cap at all, the plan caps nothing (a cap beyond every u64 amount).
    let headroom = budget
        .headroom(committed.today_usd, committed.total_usd)
        .unwrap_or(Decimal::MAX);
    let mut holdings_asset_closed = false;
    let decimals = rates
        .decimal_display(&holdings.asset)
        .await
        .map_err(PayError::NotPaid)?;
    let quote = rates
        .sell_quote(
            &holdings.asset,
            invoice_msat.saturating_add(holdings.max_fee_msat),
            &holdings.edge_peer,
            PRICING_QUOTE_SECS,
        )
        .await;
    let at = match (quote, &holdings.sats_rate) {
        (Ok(q), _) => CapRate {
            rate: q.rate,
            decimals,
            source: RateSource::EdgeSellQuote,
        },
        // No asset channel: the asset rail is closed, and sats are valued at the payer's rate.
        (Err(BackendError::NoAssetChannel { .. }), Some(rate)) if holdings.pay_with_sats => {
            holdings_asset_closed = true;
            CapRate {
                rate: rate.clone(),
                decimals,
                source: RateSource::Configured,
            }
        }
        (Err(e), _) => return Err(PayError::NotPaid(e)),
    };
    let plan = match cost::plan(invoice_msat, holdings.max_fee_msat, headroom, &at) {
        Ok(plan) => plan,
        Err(CapError::InvoiceAboveCap { .. }) => {
            // Name the cap that refuses the invoice alone.
            let alone = pricing::units_to_usd(
                pricing::units_covering(invoice_msat, &at.rate).map_err(PayError::Pricing)?,
                decimals,
            )
            .map_err(PayError::Pricing)?;
            // The headroom is the least room any cap leaves, so one of them refuses it.
            return Err(budget
                .check(alone, committed.today_usd, committed.total_usd)
                .err()
                .map_or(
                    PayError::Pricing(PricingError::Overflow("dollars")),
                    PayError::Budget,
                ));
        }
        Err(CapError::NoAmount) => return Err(PayError::NoAmount),
        Err(CapError::Pricing(e)) => return Err(PayError::Pricing(e)),
    };
    let mut options = Vec::with_capacity(2);
    if holdings.pay_with_asset && !holdings_asset_closed {
        // tapd's own preview (`DecodeAssetPayReq`) of the units the invoice costs now; should
        // it ask for more than the quote says, the difference is added to the worst case.
        let preview = node
            .preview_asset_payment(&challenge.challenge.invoice, &holdings.asset)
            .await
            .map_err(PayError::NotPaid)?;
        let mut asset_plan = plan.clone();
        if let Some(extra) = preview.checked_sub(plan.invoice_units).filter(|e| *e > 0) {
            asset_plan.worst_case_units = asset_plan.worst_case_units.saturating_add(extra);
            asset_plan.worst_case_usd =
                pricing::units_to_usd(asset_plan.worst_case_units, decimals)
                    .map_err(PayError::Pricing)?;
        }
        options.push(RailCost {
            rail: Rail::Asset,
            plan: asset_plan,
        });
    }
    if holdings.pay_with_sats {
        options.push(RailCost {
            rail: Rail::Sats,
            plan,
        });
    }
    let chosen = cost::cheaper(&options).ok_or(PayError::NoRail)?;
    let scheme = match challenge.scheme {
        crate::l402::header::Scheme::L402 => "L402",
        crate::l402::header::Scheme::Lsat => "LSAT",
    };
    let macaroon = challenge.challenge.macaroon.to_base64();
    let id = ledger
        .reserve(
            &NewSpend {
                url: target.url.to_owned(),
                host: target.host.to_owned(),
                rail: chosen.rail,
                invoice_msat,
                fee_limit_msat: chosen.plan.fee_limit_msat,
                worst_case_usd: chosen.plan.worst_case_usd,
                rate_units_per_btc: at.rate.to_string(),
                payment_hash: decoded.payment_hash,
                owner: Owner::current(),
                token: Some(PendingToken {
                    origin: target.origin.to_owned(),
                    service: target.service.to_owned(),
                    scheme: scheme.to_owned(),
                    macaroon: macaroon.clone(),
                    expires_at: challenge.expires_at,
                }),
            },
            budget,
            now,
        )
        .await?;
    let invoice = challenge.challenge.invoice.as_str();
    let paid = match chosen.rail {
        Rail::Asset => {
            node.pay_with_asset(
                invoice,
                &holdings.asset,
                &holdings.edge_peer,
                chosen.plan.fee_limit_msat,
            )
            .await
        }
        Rail::Sats => node.pay_sats(invoice, chosen.plan.fee_limit_msat).await,
    };
    let out: PaymentOutcome = match paid {
        Ok(out) => out,
        Err(e) if nothing_sent(&e) => {
            ledger.release(id, now).await?;
            return Err(PayError::NotPaid(e));
        }
        Err(e) => {
            ledger.mark_unknown(id, now).await?;
            return Err(PayError::OutcomeUnknown {
                payment_hash: decoded.payment_hash.to_string(),
                source: e,
            });
        }
    };
    // What was spent: the units the node reports on the asset rail; on the sats rail, the
    // msat sent valued at the quote, as the reservation was.
    let spent_units = match (chosen.rail, out.units_spent) {
        (Rail::Asset, Some(units)) => units,
        _ => pricing::units_covering(out.value_msat.saturating_add(out.fee_msat), &at.rate)
            .map_err(PayError::Pricing)?,
    };
    let usd = pricing::units_to_usd(spent_units, decimals).map_err(PayError::Pricing)?;
    let token = CachedToken {
        scheme: scheme.to_owned(),
        macaroon,
        preimage: out.preimage.clone(),
        expires_at: challenge.expires_at,
    };
    // The payment is made: record it and cache the token kept with the reservation, in one
    // transaction.
    ledger
        .settle(
            id,
            &Spent {
                usd,
                fee_msat: out.fee_msat,
                units: out.units_spent,
            },
            &out.preimage,
            TokenSlot::Replace,
            now,
        )
        .await?;
    Ok(Paid {
        token,
        rail: chosen.rail,
        usd,
        msat: out.value_msat,
        fee_msat: out.fee_msat,
        units: out.units_spent,
        reserved_usd: chosen.plan.worst_case_usd,
    })
}

/// What [`follow_up`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FollowUp {
    /// Spends found paid and settled.
    pub settled: usize,
    /// Spends found not paid and released.
    pub released: usize,
    /// Spends whose node still gave no final answer; they stay held.
    pub still_unknown: usize,
    /// Tokens bought by the payments found paid and cached for their origin and service.
    pub tokens_recovered: usize,
    /// Reservations left alone because the process that made them still runs (or the
    /// system cannot tell): their payments may be in flight.
    pub in_flight_elsewhere: usize,
}

/// A reservation this young whose payment the node says it never started is left held by
/// [`follow_up`]: the process that made it may have handed the payment to the node just
/// before it stopped, and the node may not have taken it up yet.
pub const NOT_INITIATED_GRACE_SECS: u64 = 60;

/// Follows up, by payment hash, every spend whose outcome is unknown (and, with
/// `after_restart`, every spend left reserved by a process that has since stopped, seen from
/// the pid and start time kept with it), then settles what was paid and releases what was
/// not. A reservation whose process still runs, or made by this process, is left alone: its
/// payment may be in flight. A reservation without a recorded process (written before the
/// ledger kept one) is followed up only with `after_restart`, which then must come before
/// this process pays anything.
///
/// A payment found paid caches the token kept with its reservation, unlocked by the preimage
/// the node reports, unless a token bought since holds its origin and service's slot.
pub async fn follow_up<P: Payments, R: Rates>(
    wallet: &Wallet<'_, P, R>,
    ledger: &ClientLedger,
    after_restart: bool,
    now: u64,
) -> Result<FollowUp, PayError> {
    let mut done = FollowUp::default();
    let open = ledger.open_spends().await?;
    if open.is_empty() {
        return Ok(done);
    }
    let decimals = wallet
        .rates
        .decimal_display(&wallet.holdings.asset)
        .await
        .map_err(PayError::NotPaid)?;
    for row in open {
        if row.state == SpendState::Reserved {
            if !after_restart {
                continue;
            }
            let running = match row.owner {
                Some(owner) => {
                    Owner::current() == Some(owner) || owner.liveness() != Liveness::Gone
                }
                None => false,
            };
            if running {
                done.in_flight_elsewhere += 1;
                continue;
            }
        }
        let id = super::ledger::SpendId(row.id);
        let hash = hex::decode(&row.payment_hash)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(crate::l402::PaymentHash)
            .ok_or(LedgerError::Corrupt("payment_hash"))?;
        match wallet.payments.track_payment(&hash).await {
            Ok(TrackedPayment::Succeeded(out)) => {
                let rate = Decimal::from_str(&row.rate_units_per_btc)
                    .ok()
                    .and_then(|d| FixedPoint::from_decimal(d).ok())
                    .ok_or(LedgerError::Corrupt("rate_units_per_btc"))?;
                let units = match out.units_spent {
                    Some(units) => units,
                    None => {
                        pricing::units_covering(out.value_msat.saturating_add(out.fee_msat), &rate)
                            .map_err(PayError::Pricing)?
                    }
                };
                let usd = pricing::units_to_usd(units, decimals).map_err(PayError::Pricing)?;
                let spent = Spent {
                    usd,
                    fee_msat: out.fee_msat,
                    units: out.units_spent,
                };
                if ledger
                    .settle(id, &spent, &out.preimage, TokenSlot::IfFree, now)
                    .await?
                    .is_some()
                {
                    done.tokens_recovered += 1;
                }
                done.settled += 1;
            }
            Ok(TrackedPayment::NotInitiated)
                if row.state == SpendState::Reserved
                    && now < row.created_at.saturating_add(NOT_INITIATED_GRACE_SECS) =>
            {
                done.still_unknown += 1;
            }
            Ok(TrackedPayment::Failed { .. } | TrackedPayment::NotInitiated) => {
                ledger.release(id, now).await?;
                done.released += 1;
            }
            Err(_) => done.still_unknown += 1,
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::challenge::parse_payment_required;
    use crate::client::ledger::{FILE_NAME, SpendState};
    use crate::l402::header::Challenge;
    use crate::l402::{Identifier, Macaroon, Preimage, RootKey, TokenId};
    use crate::lightning::types::{BuyQuote, SellQuote};
    use std::sync::Mutex;

    pub(super) const NOW: u64 = 1_767_225_600 + 60;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) enum Answer {
        Pay,
        Fail,
        Timeout,
        /// Only for `TrackPaymentV2`: lnd never started the payment.
        NotInitiated,
    }

    /// A node at $100,000 per BTC (1 msat = 1 unit of a 6-decimal coin) that answers
    /// payments as told and records the fee limits it was handed.
    pub(super) struct FakeNode {
        preimage: Preimage,
        answer: Answer,
        fee_msat: u64,
        /// Units tapd's preview asks for above the quote's.
        preview_extra: u64,
        pub(super) calls: Mutex<Vec<(Rail, u64)>>,
    }

    impl FakeNode {
        pub(super) fn new(preimage: Preimage, answer: Answer) -> Self {
            Self {
                preimage,
                answer,
                fee_msat: 7,
                preview_extra: 0,
                calls: Mutex::new(Vec::new()),
            }
        }

        fn pay(
            &self,
            rail: Rail,
            req: &str,
            fee_limit: u64,
        ) -> Result<PaymentOutcome, BackendError> {
            self.calls.lock().unwrap().push((rail, fee_limit));
            let value_msat = invoice::decode(req).unwrap().amount_msat.unwrap();
            match self.answer {
                Answer::Pay => Ok(PaymentOutcome {
                    payment_hash: self.preimage.payment_hash(),
                    preimage: self.preimage.clone(),
                    value_msat,
                    fee_msat: self.fee_msat,
                    units_spent: (rail == Rail::Asset).then_some(value_msat + self.fee_msat),
                }),
                Answer::Fail => Err(BackendError::PaymentFailed {
                    reason: "FAILURE_REASON_NO_ROUTE".into(),
                }),
                Answer::Timeout | Answer::NotInitiated => Err(timeout()),
            }
        }
    }

    fn timeout() -> BackendError {
        BackendError::Deadline {
            call: "SendPaymentV2",
            after: std::time::Duration::from_secs(60),
            status: tonic::Status::deadline_exceeded("timeout"),
        }
    }

    fn rate() -> FixedPoint {
        FixedPoint::from_parts("100000000000", 0).unwrap()
    }

    impl Rates for FakeNode {
        async fn buy_quote(
            &self,
            _: &AssetRef,
            _: u64,
            _: &str,
            _: u64,
        ) -> Result<BuyQuote, BackendError> {
            Err(BackendError::InvalidRequest {
                call: "buy_quote",
                what: "not used".into(),
            })
        }

        async fn sell_quote(
            &self,
            _: &AssetRef,
            max_msat: u64,
            edge: &str,
            expiry: u64,
        ) -> Result<SellQuote, BackendError> {
            Ok(SellQuote {
                peer: edge.into(),
                id: "00".repeat(32),
                scid: 1,
                rate: rate(),
                expires_at: NOW + expiry,
                max_units: max_msat,
                min_transportable_msat: 1,
            })
        }

        async fn decimal_display(&self, _: &AssetRef) -> Result<u8, BackendError> {
            Ok(6)
        }
    }

    impl Payments for FakeNode {
        async fn pay_sats(&self, req: &str, fee: u64) -> Result<PaymentOutcome, BackendError> {
            self.pay(Rail::Sats, req, fee)
        }

        async fn preview_asset_payment(
            &self,
            req: &str,
            _: &AssetRef,
        ) -> Result<u64, BackendError> {
            Ok(invoice::decode(req).unwrap().amount_msat.unwrap() + self.preview_extra)
        }

        async fn pay_with_asset(
            &self,
            req: &str,
            _: &AssetRef,
            _: &str,
            fee: u64,
        ) -> Result<PaymentOutcome, BackendError> {
            self.pay(Rail::Asset, req, fee)
        }

        async fn track_payment(
            &self,
            _: &crate::l402::PaymentHash,
        ) -> Result<TrackedPayment, BackendError> {
            // lnd knows the msat of a payment, not the units: as for a sats payment.
            match self.answer {
                Answer::Pay => Ok(TrackedPayment::Succeeded(PaymentOutcome {
                    payment_hash: self.preimage.payment_hash(),
                    preimage: self.preimage.clone(),
                    value_msat: 50_000,
                    fee_msat: self.fee_msat,
                    units_spent: None,
                })),
                Answer::Fail => Ok(TrackedPayment::Failed {
                    reason: "FAILURE_REASON_TIMEOUT".into(),
                }),
                Answer::Timeout => Err(timeout()),
                Answer::NotInitiated => Ok(TrackedPayment::NotInitiated),
            }
        }
    }

    pub(super) fn holdings(asset: bool, sats: bool) -> Holdings {
        Holdings {
            asset: AssetRef::Id([1; 32]),
            edge_peer: "02".repeat(33),
            pay_with_asset: asset,
            pay_with_sats: sats,
            max_fee_msat: 1_000,
            sats_rate: None,
        }
    }

    /// A challenge for `msat` whose token commits to `preimage`'s hash.
    fn required(preimage: &Preimage, msat: u64) -> PaymentRequired {
        let hash = preimage.payment_hash();
        let id = Identifier::new(hash, TokenId([2; 32]));
        let m = Macaroon::new(&RootKey::from_bytes([3; 32]), &id.encode(), "tapgate");
        let inv = invoice::invoice(Some(msat), hash.0, NOW - 60, 600);
        let www = Challenge::new(m, inv).to_header_value();
        parse_payment_required(&[&www], None).unwrap()
    }

    pub(super) const TARGET: Target<'static> = Target {
        url: "http://api.example.com/v1/weather",
        origin: "http://api.example.com",
        host: "api.example.com",
        service: "weather",
    };

    /// A ledger in a fresh directory, a node answering `answer`, and a $0.05 challenge.
    pub(super) struct Fixture {
        _dir: tempfile::TempDir,
        pub(super) ledger: ClientLedger,
        node: FakeNode,
        pub(super) preimage: Preimage,
        required: PaymentRequired,
    }

    impl Fixture {
        pub(super) async fn new(answer: Answer) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let ledger = ClientLedger::open(&dir.path().join(FILE_NAME))
                .await
                .unwrap();
            let preimage = Preimage::from_bytes([9; 32]);
            Self {
                _dir: dir,
                ledger,
                node: FakeNode::new(preimage.clone(), answer),
                required: required(&preimage, 50_000),
                preimage,
            }
        }

        pub(super) async fn pay(
            &self,
            h: &Holdings,
            budget: &Budget,
            now: u64,
        ) -> Result<Paid, PayError> {
            self.pay_with(&self.node, h, budget, now).await
        }

        async fn pay_with(
            &self,
            node: &FakeNode,
            h: &Holdings,
            budget: &Budget,
            now: u64,
        ) -> Result<Paid, PayError> {
            let wallet = Wallet {
                payments: node,
                rates: node,
                holdings: h,
            };
            pay_challenge(&wallet, &self.ledger, budget, &self.required, &TARGET, now).await
        }

        fn calls(&self) -> Vec<(Rail, u64)> {
            self.node.calls.lock().unwrap().clone()
        }
    }

    #[tokio::test]
    async fn pays_with_the_stablecoin_records_it_caches_the_token_and_never_pays_twice() {
        let f = Fixture::new(Answer::Pay).await;
        let budget = Budget {
            per_call_usd: Some(d("0.10")),
            ..Budget::default()
        };
        let paid = f.pay(&holdings(true, true), &budget, NOW).await.unwrap();
        assert_eq!(paid.rail, Rail::Asset);
        assert_eq!(
            (paid.msat, paid.fee_msat, paid.units),
            (50_000, 7, Some(50_007))
        );
        assert_eq!(paid.usd, d("0.050007"));
        assert_eq!(paid.reserved_usd, d("0.051"));
        assert_eq!(
            paid.token.authorization(),
            format!(
                "L402 {}:{}",
                f.required.preferred().challenge.macaroon.to_base64(),
                "09".repeat(32)
            )
        );
        let cached = f
            .ledger
            .token(TARGET.origin, TARGET.service, NOW)
            .await
            .unwrap();
        assert_eq!(cached.as_ref(), Some(&paid.token));
        let rows = f.ledger.spends(0).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].state, rows[0].usd),
            (SpendState::Settled, d("0.050007"))
        );
        assert_eq!(rows[0].payment_hash, f.preimage.payment_hash().to_string());
        // The same challenge again: refused by the ledger, the node not asked.
        let again = f.pay(&holdings(true, true), &budget, NOW).await;
        assert!(
            matches!(again, Err(PayError::Ledger(LedgerError::AlreadyPaid(_)))),
            "{again:?}"
        );
        assert_eq!(f.calls().len(), 1);
    }

    #[tokio::test]
    async fn a_cap_below_the_invoice_refuses_before_the_node_is_asked_to_pay() {
        let f = Fixture::new(Answer::Pay).await;
        let budget = Budget {
            per_day_usd: Some(d("0.049999")),
            ..Budget::default()
        };
        let err = f
            .pay(&holdings(true, true), &budget, NOW)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                PayError::Budget(BudgetError::OverCap {
                    cap: crate::client::budget::Cap::PerDay,
                    ..
                })
            ),
            "{err:?}"
        );
        assert!(f.calls().is_empty());
        assert!(f.ledger.spends(0).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_tight_cap_lowers_the_fee_limit_handed_to_the_node() {
        let f = Fixture::new(Answer::Pay).await;
        let budget = Budget {
            total_usd: Some(d("0.0501")),
            ..Budget::default()
        };
        f.pay(&holdings(false, true), &budget, NOW).await.unwrap();
        // 100 units of room above the invoice: a fee limit of 100 msat, on the sats rail.
        assert_eq!(f.calls(), vec![(Rail::Sats, 100)]);
    }

    #[tokio::test]
    async fn a_preview_above_the_quote_raises_the_asset_worst_case_and_sats_win() {
        let mut f = Fixture::new(Answer::Pay).await;
        f.node.preview_extra = 2_000;
        let paid = f
            .pay(&holdings(true, true), &Budget::default(), NOW)
            .await
            .unwrap();
        assert_eq!(paid.rail, Rail::Sats);
        // Only the asset: its worst case carries the preview's 2,000 extra units.
        let mut f = Fixture::new(Answer::Pay).await;
        f.node.preview_extra = 2_000;
        let paid = f
            .pay(&holdings(true, false), &Budget::default(), NOW)
            .await
            .unwrap();
        assert_eq!(paid.reserved_usd, d("0.053"));
    }

    #[tokio::test]
    async fn a_failed_payment_is_released_and_an_unknown_one_stays_held_and_unpaid() {
        let f = Fixture::new(Answer::Fail).await;
        let any = Budget::default();
        let asset = holdings(true, false);
        let err = f.pay(&asset, &any, NOW).await.unwrap_err();
        assert!(matches!(err, PayError::NotPaid(_)), "{err:?}");
        assert_eq!(
            f.ledger.committed(NOW).await.unwrap().total_usd,
            Decimal::ZERO
        );
        // Released: the invoice may be tried again; this time the node times out.
        let stuck = FakeNode::new(f.preimage.clone(), Answer::Timeout);
        let err = f.pay_with(&stuck, &asset, &any, NOW).await.unwrap_err();
        assert!(matches!(err, PayError::OutcomeUnknown { .. }), "{err:?}");
        assert!(err.to_string().contains("TrackPaymentV2"), "{err}");
        assert_eq!(f.ledger.committed(NOW).await.unwrap().total_usd, d("0.051"));
        let err = f.pay_with(&stuck, &asset, &any, NOW).await.unwrap_err();
        assert!(
            matches!(err, PayError::Ledger(LedgerError::OutcomeUnknown(_))),
            "{err:?}"
        );
        assert_eq!(stuck.calls.lock().unwrap().len(), 1);
        assert_eq!(f.ledger.open_spends().await.unwrap().len(), 1);
        let token = f.ledger.token(TARGET.origin, TARGET.service, NOW).await;
        assert_eq!(token.unwrap(), None);
    }

    #[tokio::test]
    async fn expired_amountless_and_foreign_challenges_are_refused_unpaid() {
        let f = Fixture::new(Answer::Pay).await;
        let any = Budget::default();
        let h = holdings(true, true);
        let late = f.pay(&h, &any, NOW + 600).await;
        assert!(matches!(late, Err(PayError::Expired { .. })), "{late:?}");
        let only = Budget {
            allowed_hosts: Some(vec!["other.example.com".into()]),
            ..Budget::default()
        };
        let foreign = f.pay(&h, &only, NOW).await;
        assert!(
            matches!(
                foreign,
                Err(PayError::Budget(BudgetError::HostNotAllowed { .. }))
            ),
            "{foreign:?}"
        );
        let none = f.pay(&holdings(false, false), &any, NOW).await;
        assert!(matches!(none, Err(PayError::NoRail)), "{none:?}");
        assert!(f.calls().is_empty());
        assert!(f.ledger.spends(0).await.unwrap().is_empty());
    }
}

#[cfg(test)]
mod follow_up_tests {
    use super::*;
    use crate::client::ledger::SpendState;
    use crate::l402::Preimage;

    /// Leaves one payment of unknown outcome in a fresh ledger, and follows it up through a
    /// node whose `TrackPaymentV2` answers `answer`.
    async fn unknown_then_tracked(answer: tests::Answer) -> (FollowUp, tests::Fixture) {
        let f = tests::Fixture::new(tests::Answer::Timeout).await;
        let h = tests::holdings(true, false);
        let err = f.pay(&h, &Budget::default(), tests::NOW).await.unwrap_err();
        assert!(matches!(err, PayError::OutcomeUnknown { .. }), "{err:?}");
        let tracker = tests::FakeNode::new(f.preimage.clone(), answer);
        let wallet = Wallet {
            payments: &tracker,
            rates: &tracker,
            holdings: &h,
        };
        let done = follow_up(&wallet, &f.ledger, false, tests::NOW + 5)
            .await
            .unwrap();
        (done, f)
    }

    #[tokio::test]
    async fn an_unknown_payment_found_paid_is_settled_at_what_it_cost() {
        let (done, f) = unknown_then_tracked(tests::Answer::Pay).await;
        assert_eq!((done.settled, done.released, done.still_unknown), (1, 0, 0));
        let rows = f.ledger.spends(0).await.unwrap();
        assert_eq!(rows[0].state, SpendState::Settled);
        // 50,000 msat + 7 msat fee at 1 unit per msat: $0.050007.
        assert_eq!(rows[0].usd, Decimal::new(50_007, 6));
    }

    #[tokio::test]
    async fn an_unknown_payment_found_paid_recovers_the_token_it_bought() {
        let (done, f) = unknown_then_tracked(tests::Answer::Pay).await;
        assert_eq!((done.settled, done.tokens_recovered), (1, 1));
        let t = tests::TARGET;
        let token = f.ledger.token(t.origin, t.service, tests::NOW + 5).await;
        let token = token
            .unwrap()
            .expect("the token is cached after the follow-up");
        assert_eq!(token.preimage, f.preimage);
        assert_eq!(token.scheme, "L402");
    }

    /// A reservation as `pay_challenge` writes it, by `owner`, for the invoice of `preimage`.
    async fn reserved_by(
        ledger: &ClientLedger,
        owner: Option<Owner>,
        preimage: &Preimage,
        at: u64,
    ) -> crate::client::ledger::SpendId {
        let t = tests::TARGET;
        ledger
            .reserve(
                &NewSpend {
                    url: t.url.into(),
                    host: t.host.into(),
                    rail: Rail::Sats,
                    invoice_msat: 50_000,
                    fee_limit_msat: 500,
                    worst_case_usd: Decimal::new(5_050, 5),
                    rate_units_per_btc: "100000000000".into(),
                    payment_hash: preimage.payment_hash(),
                    owner,
                    token: Some(PendingToken {
                        origin: t.origin.into(),
                        service: t.service.into(),
                        scheme: "L402".into(),
                        macaroon: "AgEB".into(),
                        expires_at: None,
                    }),
                },
                &Budget::default(),
                at,
            )
            .await
            .unwrap()
    }

    /// A process that has exited.
    fn gone() -> Owner {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let owner = Owner::of(child.id()).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        owner
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_reservation_left_by_a_stopped_process_is_followed_up_and_one_in_flight_is_not() {
        let f = tests::Fixture::new(tests::Answer::Pay).await;
        let h = tests::holdings(true, true);
        // The process that reserved the fixture's invoice stopped mid-payment; another,
        // still running (this one), holds a second invoice's reservation.
        reserved_by(&f.ledger, Some(gone()), &f.preimage, tests::NOW).await;
        let other = Preimage::from_bytes([0x0b; 32]);
        reserved_by(&f.ledger, Owner::current(), &other, tests::NOW).await;
        let node = tests::FakeNode::new(f.preimage.clone(), tests::Answer::Pay);
        let wallet = Wallet {
            payments: &node,
            rates: &node,
            holdings: &h,
        };
        // Without `after_restart` reservations are not touched.
        let done = follow_up(&wallet, &f.ledger, false, tests::NOW + 5).await;
        assert_eq!(done.unwrap(), FollowUp::default());
        let done = follow_up(&wallet, &f.ledger, true, tests::NOW + 5)
            .await
            .unwrap();
        assert_eq!(
            (
                done.settled,
                done.tokens_recovered,
                done.in_flight_elsewhere
            ),
            (1, 1, 1)
        );
        let states: Vec<_> = f
            .ledger
            .spends(0)
            .await
            .unwrap()
            .iter()
            .map(|r| r.state)
            .collect();
        assert_eq!(states, [SpendState::Settled, SpendState::Reserved]);
        let t = tests::TARGET;
        let token = f.ledger.token(t.origin, t.service, tests::NOW + 5).await;
        assert_eq!(token.unwrap().unwrap().preimage, f.preimage);
        // Nothing was paid by the follow-up itself.
        assert!(node.calls.lock().unwrap().is_empty());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_stopped_process_reservation_the_node_never_started_is_released_after_a_grace() {
        let f = tests::Fixture::new(tests::Answer::Pay).await;
        let h = tests::holdings(true, true);
        reserved_by(&f.ledger, Some(gone()), &f.preimage, tests::NOW).await;
        let node = tests::FakeNode::new(f.preimage.clone(), tests::Answer::NotInitiated);
        let wallet = Wallet {
            payments: &node,
            rates: &node,
            holdings: &h,
        };
        // Young: the payment may still reach the node, so it stays held.
        let done = follow_up(&wallet, &f.ledger, true, tests::NOW + 5)
            .await
            .unwrap();
        assert_eq!((done.released, done.still_unknown), (0, 1));
        let later = tests::NOW + NOT_INITIATED_GRACE_SECS;
        let done = follow_up(&wallet, &f.ledger, true, later).await.unwrap();
        assert_eq!((done.released, done.still_unknown), (1, 0));
        assert_eq!(
            f.ledger.committed(later).await.unwrap().total_usd,
            Decimal::ZERO
        );
    }

    #[tokio::test]
    async fn an_unknown_payment_found_failed_is_released_and_one_still_unknown_stays_held() {
        let (done, f) = unknown_then_tracked(tests::Answer::Fail).await;
        assert_eq!((done.settled, done.released), (0, 1));
        assert_eq!(
            f.ledger.committed(tests::NOW).await.unwrap().total_usd,
            Decimal::ZERO
        );
        let (done, f) = unknown_then_tracked(tests::Answer::Timeout).await;
        assert_eq!(done.still_unknown, 1);
        assert_eq!(
            f.ledger.open_spends().await.unwrap()[0].state,
            SpendState::Unknown
        );
    }
}
