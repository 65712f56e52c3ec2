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
mod tests;

#[cfg(test)]
mod follow_up_tests;
