//! A payer's payment records (lnd's payment database): one per payment hash, in the order
//! first attempted, so `TrackPaymentV2` and `ListPayments` can be answered.
//!
//! A record only moves forward: a failed attempt may be replaced by a later one, but a failure
//! never overwrites an IN_FLIGHT or SUCCEEDED record (paying twice fails with `AlreadyPaid`
//! and leaves the first payment's record alone).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Simnet;
use super::error::FailureReason;
use super::payments::Target;
use super::rfq::SellQuote;
use super::types::{AssetId, NodeId, PaymentHash, Preimage};

/// What an asset payment spent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AssetSpend {
    /// The asset.
    pub asset_id: AssetId,
    /// Units that left the payer's channel.
    pub units: u64,
    /// True when `allow_overpay` raised the payment to the minimum transportable amount.
    pub overpaid: bool,
    /// The sell quote it was paid under.
    pub quote: SellQuote,
}

/// lnd's `Payment.PaymentStatus` (with what each state knows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentStatus {
    /// HTLCs locked at a hold invoice, waiting for the payee.
    InFlight,
    /// Paid: the preimage is the proof.
    Succeeded {
        /// The preimage.
        preimage: Preimage,
        /// When, unix seconds.
        settled_at: u64,
    },
    /// Failed: no preimage, ever.
    Failed {
        /// lnd's reason code.
        reason: FailureReason,
        /// The error's message.
        message: String,
        /// When, unix seconds.
        failed_at: u64,
    },
}

/// One payment of one payer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    /// lnd's `payment_index`: position in the payer's list, from 1.
    pub payment_index: u64,
    /// Who paid.
    pub payer: NodeId,
    /// Who was paid.
    pub payee: NodeId,
    /// The hash.
    pub payment_hash: PaymentHash,
    /// The request paid.
    pub payment_request: String,
    /// The invoice amount, msat.
    pub value_msat: u64,
    /// The edge's fee, msat (0 on failure).
    pub fee_msat: u64,
    /// Asset payments: what was spent.
    pub asset: Option<AssetSpend>,
    /// When first attempted, unix seconds.
    pub created_at: u64,
    /// Where it stands.
    pub status: PaymentStatus,
}

impl Payment {
    pub(crate) fn in_flight(
        payer: NodeId,
        t: &Target,
        fee_msat: u64,
        asset: Option<AssetSpend>,
        now: u64,
    ) -> Self {
        Self {
            payment_index: 0,
            payer,
            payee: t.payee,
            payment_hash: t.hash,
            payment_request: t.payment_request.clone(),
            value_msat: t.value_msat,
            fee_msat,
            asset,
            created_at: now,
            status: PaymentStatus::InFlight,
        }
    }

    pub(crate) fn succeed(&mut self, preimage: Preimage, now: u64) {
        self.status = PaymentStatus::Succeeded {
            preimage,
            settled_at: now,
        };
    }

    pub(crate) fn fail(&mut self, reason: FailureReason, message: String, now: u64) {
        self.status = PaymentStatus::Failed {
            reason,
            message,
            failed_at: now,
        };
    }

    /// The preimage, only once the payment succeeded.
    pub fn preimage(&self) -> Option<Preimage> {
        match self.status {
            PaymentStatus::Succeeded { preimage, .. } => Some(preimage),
            _ => None,
        }
    }

    /// Asset units spent, for asset payments.
    pub fn units_spent(&self) -> Option<u64> {
        self.asset.as_ref().map(|a| a.units)
    }

    pub(crate) fn is_failed(&self) -> bool {
        matches!(self.status, PaymentStatus::Failed { .. })
    }
}

/// A payer's payments.
#[derive(Clone, Debug, Default)]
pub(crate) struct PaymentBook {
    /// In first-attempt order: `payments[i].payment_index == i + 1`.
    payments: Vec<Payment>,
    by_hash: BTreeMap<PaymentHash, usize>,
}

impl PaymentBook {
    pub(crate) fn get(&self, hash: &PaymentHash) -> Option<&Payment> {
        self.by_hash.get(hash).and_then(|i| self.payments.get(*i))
    }

    pub(crate) fn all(&self) -> &[Payment] {
        &self.payments
    }

    /// Files `p`, replacing an earlier failed attempt; refuses to let a failure replace a
    /// live or successful record.
    fn upsert(&mut self, mut p: Payment) {
        match self.by_hash.get(&p.payment_hash).copied() {
            Some(i) => {
                let Some(old) = self.payments.get_mut(i) else {
                    return;
                };
                if old.is_failed() || !p.is_failed() {
                    p.payment_index = old.payment_index;
                    p.created_at = old.created_at;
                    *old = p;
                }
            }
            None => {
                p.payment_index = u64::try_from(self.payments.len()).unwrap_or(u64::MAX) + 1;
                self.by_hash.insert(p.payment_hash, self.payments.len());
                self.payments.push(p);
            }
        }
    }
}

impl Simnet {
    /// Files `p` for `payer` and returns the record as stored (with its payment index).
    pub(crate) fn record_payment(&mut self, payer: NodeId, p: Payment) -> Payment {
        let hash = p.payment_hash;
        let book = &mut self.nodes[payer.index()].payments;
        book.upsert(p.clone());
        let stored = book.get(&hash).cloned().unwrap_or(p);
        self.touch();
        stored
    }

    pub(crate) fn update_payment(
        &mut self,
        payer: NodeId,
        hash: &PaymentHash,
        f: impl FnOnce(&mut Payment),
    ) {
        let book = &mut self.nodes[payer.index()].payments;
        if let Some(p) = book
            .by_hash
            .get(hash)
            .and_then(|i| book.payments.get_mut(*i))
        {
            f(p);
        }
        self.touch();
    }
}
