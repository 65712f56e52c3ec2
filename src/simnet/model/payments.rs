//! Paying invoices: with sats (lnd's `SendPaymentV2`) or with the asset (tapd's
//! `tapchannelrpc.SendPayment`), a dry-run cost preview, and the payer's payment records
//! (`TrackPaymentV2`, `ListPayments`).
//!
//! Every route runs through `edge`: `payer → edge` (sats, or the asset under a sell quote),
//! then `edge → payee` (sats for a plain invoice; the asset under the invoice's buy quote for
//! an asset invoice — strict forwarding both ways). The edge charges its fee on the invoice
//! amount when it forwards (neither payer nor payee). A payment is planned in full (`&self`)
//! before anything moves, so a failure leaves every balance untouched and never reveals the
//! preimage.
//!
//! **Rounding of asset payments: the floor, as tapd v0.8.1 does.**
//! * The payer spends `msat_to_units(invoice + fee, bid)` rounded *down*: tapd's
//!   `ProduceHtlcExtraData` puts `MilliSatoshiToUnits(totalAmount, rate).ScaleTo(0)` units in
//!   the HTLC (lightninglabs/taproot-assets tapchannel/aux_traffic_shaper.go, v0.8.1), and the
//!   edge accepts them because it adds one unit before comparing their msat with what it
//!   forwards (`roundingCorrection` in `AssetPurchasePolicy.CheckHtlcCompliance`, rfq/order.go,
//!   v0.8.1). `allow_overpay` changes nothing in the units: it only lets a payment below
//!   `min_transportable_msat` through (`checkOverpayment` in rpcserver/rpcserver.go, v0.8.1);
//!   what is overpaid is the HTLC's 354-sat on-chain anchor, which simnet does not model.
//! * On an asset invoice the edge forwards `msat_to_units(invoice msat, ask)` rounded *down*
//!   (`AssetSalePolicy.GenerateInterceptorResponse`, rfq/order.go, v0.8.1). The invoice's msat
//!   are themselves the floor of its units' value, so with a rate that does not divide evenly
//!   the payee typically receives one unit less than invoiced; its tapd still settles the
//!   invoice in full, allowing one unit of rounding per HTLC (`handleInvoiceAccept` in
//!   tapchannel/aux_invoice_manager.go, v0.8.1), so lnd reports `amt_paid` = the invoice.

use serde::Serialize;

use super::Simnet;
use super::error::{FailureReason, PayError, QueryError};
use super::invoices::InvoiceState;
use super::network::ChannelKind;
use super::payments_book::{AssetSpend, Payment};
use super::payreq;
use super::rfq::SellQuote;
use super::route::{Hop, Pending};
use super::types::{AssetId, NodeId, NodePubkey, PaymentHash, Preimage};
use crate::pricing::{FixedPoint, min_transportable_msat, msat_to_units};

/// tapd's `SendPayment` inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetPayment<'a> {
    /// The invoice to pay.
    pub payment_request: &'a str,
    /// The asset to pay with.
    pub asset_id: AssetId,
    /// The RFQ peer (the edge), or `None` for any peer with an asset channel.
    pub peer: Option<NodePubkey>,
    /// Most msat the edge may charge (the sell order covers invoice + this).
    pub fee_limit_msat: u64,
    /// Pay the minimum transportable amount when the payment is smaller.
    pub allow_overpay: bool,
}

/// What an asset payment costs, computed without paying.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AssetPaymentPreview {
    /// Units the payer would spend.
    pub units: u64,
    /// The invoice amount.
    pub value_msat: u64,
    /// The edge's forwarding fee.
    pub fee_msat: u64,
    /// msat the payment sends and the units are the floor of: invoice + fee.
    pub msat_sent: u64,
    /// The bid rate used, units per BTC.
    pub bid_rate: FixedPoint,
    /// The sell quote's minimum.
    pub min_transportable_msat: u64,
    /// True when `allow_overpay` let a payment below the minimum through.
    pub overpaid: bool,
}

/// The invoice a payment request points at.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) payee: NodeId,
    pub(crate) pos: usize,
    pub(crate) hash: PaymentHash,
    pub(crate) value_msat: u64,
    pub(crate) payment_request: String,
}

/// The asset side of a planned payment.
#[derive(Clone, Debug)]
struct AssetSpendPlan {
    asset_id: AssetId,
    preview: AssetPaymentPreview,
    /// The sell quote to issue, without its id until the payment goes ahead.
    quote: SellQuote,
}

#[derive(Clone, Debug)]
struct Plan {
    target: Target,
    fee_msat: u64,
    hops: Vec<Hop>,
    spend: Option<AssetSpendPlan>,
}

enum Method<'a> {
    Sats { max_fee_msat: u64 },
    Asset(&'a AssetPayment<'a>),
}

impl Simnet {
    /// lnd's `SendPaymentV2` from `payer`: pays `payment_request` with sats, the edge's fee
    /// capped at `max_fee_msat`. Returns the payment: SUCCEEDED with the preimage, or IN_FLIGHT
    /// for a hold invoice (track it by hash until the payee settles or cancels).
    pub fn pay_sats(
        &mut self,
        payer: NodeId,
        payment_request: &str,
        max_fee_msat: u64,
        now: u64,
    ) -> Result<Payment, PayError> {
        self.pay(payer, payment_request, Method::Sats { max_fee_msat }, now)
    }

    /// tapd's `SendPayment` from `payer`: pays with the asset under a sell quote from the edge.
    pub fn pay_with_asset(
        &mut self,
        payer: NodeId,
        req: &AssetPayment<'_>,
        now: u64,
    ) -> Result<Payment, PayError> {
        self.pay(payer, req.payment_request, Method::Asset(req), now)
    }

    /// What [`Self::pay_with_asset`] would spend, checking everything it would check, without
    /// moving anything or issuing a quote.
    pub fn preview_asset_payment(
        &self,
        payer: NodeId,
        req: &AssetPayment<'_>,
        now: u64,
    ) -> Result<AssetPaymentPreview, PayError> {
        let target = self.resolve(payer, req.payment_request)?;
        let plan = self.plan(payer, target, &Method::Asset(req), now)?;
        plan.spend
            .map(|s| s.preview)
            .ok_or_else(|| PayError::NoRoute("no asset hop".into()))
    }

    fn pay(
        &mut self,
        payer: NodeId,
        payment_request: &str,
        method: Method<'_>,
        now: u64,
    ) -> Result<Payment, PayError> {
        let target = self.resolve(payer, payment_request)?;
        match self.plan(payer, target.clone(), &method, now) {
            Ok(plan) => Ok(self.execute(payer, plan, now)),
            Err(e) => {
                // lnd refuses an expired payment request before it creates a payment, so
                // nothing is recorded (lightningnetwork/lnd lnrpc/routerrpc/router_backend.go,
                // v0.21.0-beta).
                if !matches!(e, PayError::InvoiceExpired { .. }) {
                    self.record_failure(payer, &target, &e, now);
                }
                Err(e)
            }
        }
    }

    /// The invoice behind a payment request, as the payer's node decodes it.
    fn resolve(&self, payer: NodeId, payment_request: &str) -> Result<Target, PayError> {
        self.require_up(payer).map_err(PayError::NodeDown)?;
        let d = payreq::decode(payment_request).map_err(PayError::InvalidPaymentRequest)?;
        // An invoice signed by a key outside this network: lnd knows no path to its payee.
        let payee = self.keys.node(&d.payee).ok_or_else(|| {
            PayError::NoRoute(format!("{} is not a node of this network", d.payee))
        })?;
        let unknown = PayError::UnknownInvoice {
            node: payee,
            hash: d.hash,
        };
        let book = &self.nodes[payee.index()].invoices;
        let pos = book.position(&d.hash).ok_or(unknown.clone())?;
        let inv = book.invoices.get(pos).ok_or(unknown)?;
        Ok(Target {
            payee,
            pos,
            hash: d.hash,
            value_msat: inv.value_msat,
            payment_request: inv.payment_request.clone(),
        })
    }

    fn plan(
        &self,
        payer: NodeId,
        target: Target,
        method: &Method<'_>,
        now: u64,
    ) -> Result<Plan, PayError> {
        self.check_payable(payer, &target, now)?;
        let last = self.last_hop(&target, now)?;
        let forwards = payer != NodeId::Edge && target.payee != NodeId::Edge;
        let fee_msat = if forwards {
            self.config.fees.fee_msat(target.value_msat)
        } else {
            0
        };
        let (first, spend) = match method {
            Method::Sats { max_fee_msat } => (
                self.first_hop_sats(payer, &target, fee_msat, *max_fee_msat)?,
                None,
            ),
            Method::Asset(req) => {
                let (hop, spend) = self.first_hop_asset(payer, &target, fee_msat, req)?;
                (Some(hop), Some(spend))
            }
        };
        let hops: Vec<Hop> = first.into_iter().chain(last).collect();
        self.check_hops(payer, &hops)?;
        Ok(Plan {
            target,
            fee_msat,
            hops,
            spend,
        })
    }

    /// Payee up, invoice open and unexpired, not a self-payment.
    fn check_payable(&self, payer: NodeId, t: &Target, now: u64) -> Result<(), PayError> {
        self.require_up(t.payee).map_err(PayError::NodeDown)?;
        let inv = &self.nodes[t.payee.index()].invoices.invoices[t.pos];
        // The payer's lnd refuses an expired payment request before it looks for a route, so
        // this comes before the invoice's state (which lnd's expiry watcher has made CANCELED).
        if inv.is_expired(now) {
            return Err(PayError::InvoiceExpired {
                expired_at: inv.expires_at(),
            });
        }
        match inv.state {
            InvoiceState::Settled | InvoiceState::Accepted => {
                // The payer's own lnd refuses a hash it already paid (or is paying); another
                // payer's HTLC reaches the payee, whose lnd rejects it as for an unknown invoice:
                // FAILED, INCORRECT_PAYMENT_DETAILS (lightningnetwork/lnd invoices/
                // invoiceregistry.go, v0.21.0-beta; seen on the real regtest network).
                let own = self.nodes[payer.index()]
                    .payments
                    .get(&t.hash)
                    .is_some_and(|p| !p.is_failed());
                return Err(if own {
                    PayError::AlreadyPaid(t.hash)
                } else {
                    PayError::SettledByAnother(t.hash)
                });
            }
            InvoiceState::Canceled => return Err(PayError::InvoiceCanceled(t.hash)),
            InvoiceState::Open => {}
        }
        if payer == t.payee {
            return Err(PayError::NoRoute(format!(
                "{payer} cannot pay its own invoice"
            )));
        }
        Ok(())
    }

    /// `edge → payee`: the asset under the invoice's live buy quote, or sats.
    fn last_hop(&self, t: &Target, now: u64) -> Result<Option<Hop>, PayError> {
        if t.payee == NodeId::Edge {
            return Ok(None);
        }
        self.require_up(NodeId::Edge).map_err(PayError::NodeDown)?;
        let inv = &self.nodes[t.payee.index()].invoices.invoices[t.pos];
        let (kind, amount) = match &inv.asset {
            Some(terms) => {
                if self.rfq.live_buy(&terms.quote.id, now).is_none() {
                    return Err(PayError::QuoteExpired {
                        quote: terms.quote.id,
                        expired_at: terms.quote.expiry,
                    });
                }
                // The edge forwards the floor of the invoice's msat in units at the quote's
                // ask rate (rfq/order.go `GenerateInterceptorResponse`, taproot-assets v0.8.1).
                let units = msat_to_units(t.value_msat, &terms.quote.ask_rate)?;
                (ChannelKind::Asset(terms.asset_id), units)
            }
            None => (ChannelKind::Sats, t.value_msat),
        };
        let hop = self.hop(NodeId::Edge, t.payee, kind, amount);
        hop.map(Some).ok_or_else(|| {
            PayError::NoRoute(format!(
                "edge has no {kind} channel to {}; ask the payee for an invoice it can receive",
                t.payee
            ))
        })
    }

    fn is_asset_invoice(&self, t: &Target) -> bool {
        self.nodes[t.payee.index()].invoices.invoices[t.pos]
            .asset
            .is_some()
    }

    fn first_hop_sats(
        &self,
        payer: NodeId,
        t: &Target,
        fee_msat: u64,
        max_fee_msat: u64,
    ) -> Result<Option<Hop>, PayError> {
        // lnd's path finding refuses first when the payer's whole outbound balance is below the
        // amount, before any fee is considered: FAILURE_REASON_INSUFFICIENT_BALANCE
        // (lightningnetwork/lnd routing/pathfind.go `findPath`, v0.21.0-beta).
        // A payer without any sats channel (alice) keeps simnet's NoRoute below.
        let own_sats = self
            .channels
            .iter()
            .find(|c| c.kind == ChannelKind::Sats && c.side(payer).is_some());
        if let (false, Some(first)) = (payer == NodeId::Edge, own_sats) {
            let outbound: u64 = self
                .channels
                .iter()
                .filter(|c| c.kind == ChannelKind::Sats)
                .filter_map(|c| c.side(payer).map(|s| c.balance[s]))
                .sum();
            if outbound < t.value_msat {
                let chan_id = first.chan_id;
                return Err(PayError::InsufficientBalance {
                    node: payer,
                    chan_id,
                    needed: t.value_msat,
                    available: outbound,
                    unit: ChannelKind::Sats.unit(),
                });
            }
        }
        if fee_msat > max_fee_msat {
            return Err(PayError::FeeLimitExceeded {
                fee_msat,
                max_fee_msat,
            });
        }
        if payer == NodeId::Edge {
            if self.is_asset_invoice(t) {
                return Err(PayError::AssetInvoiceNeedsAsset(payer));
            }
            return Ok(None);
        }
        self.require_up(NodeId::Edge).map_err(PayError::NodeDown)?;
        let amount = t.value_msat.saturating_add(fee_msat);
        let hop = self.hop(payer, NodeId::Edge, ChannelKind::Sats, amount);
        hop.map(Some).ok_or_else(|| {
            PayError::NoRoute(format!(
                "{payer} has no sats channel with edge; pay with the asset (tapd SendPayment) instead"
            ))
        })
    }

    fn first_hop_asset(
        &self,
        payer: NodeId,
        t: &Target,
        fee_msat: u64,
        req: &AssetPayment<'_>,
    ) -> Result<(Hop, AssetSpendPlan), PayError> {
        if fee_msat > req.fee_limit_msat {
            return Err(PayError::FeeLimitExceeded {
                fee_msat,
                max_fee_msat: req.fee_limit_msat,
            });
        }
        self.require_up(NodeId::Edge).map_err(PayError::NodeDown)?;
        let edge = self.asset_peer(payer, &req.asset_id, req.peer.as_ref())?;
        let bid = self.quoting_rates()?.bid;
        let min_msat = min_transportable_msat(&bid)?;
        let needed = t.value_msat.saturating_add(fee_msat);
        // tapd checks the invoice amount plus the fee *limit* against the minimum
        // (`paymentMaxAmt` in lightninglabs/taproot-assets rpcserver/rpcserver.go, v0.8.1).
        let payment_max = t.value_msat.saturating_add(req.fee_limit_msat);
        let overpaid = payment_max < min_msat;
        if overpaid && !req.allow_overpay {
            return Err(PayError::BelowMinTransportable {
                msat: payment_max,
                min_msat,
            });
        }
        let msat_sent = needed;
        // tapd's HTLC carries the floor (tapchannel/aux_traffic_shaper.go
        // `ProduceHtlcExtraData`, taproot-assets v0.8.1), and refuses an HTLC of no units.
        let units = msat_to_units(msat_sent, &bid)?;
        if units == 0 {
            return Err(PayError::BelowMinTransportable {
                msat: payment_max,
                min_msat,
            });
        }
        let hop = self
            .hop(payer, edge, ChannelKind::Asset(req.asset_id), units)
            .ok_or(PayError::NoAssetChannel {
                node: payer,
                asset: req.asset_id,
            })?;
        let preview = AssetPaymentPreview {
            units,
            value_msat: t.value_msat,
            fee_msat,
            msat_sent,
            bid_rate: bid.clone(),
            min_transportable_msat: min_msat,
            overpaid,
        };
        let quote = self.sell_quote_draft(payer, &req.asset_id, payment_max, &bid)?;
        let spend = AssetSpendPlan {
            asset_id: req.asset_id,
            preview,
            quote,
        };
        Ok((hop, spend))
    }

    /// Carries out a checked plan: issues the sell quote, locks the HTLCs, then settles them
    /// (or leaves them ACCEPTED on a hold invoice).
    fn execute(&mut self, payer: NodeId, plan: Plan, now: u64) -> Payment {
        let asset = plan.spend.map(|s| {
            let quote = self.store_sell_quote(s.quote, now);
            AssetSpend {
                asset_id: s.asset_id,
                units: s.preview.units,
                overpaid: s.preview.overpaid,
                quote,
            }
        });
        let t = plan.target;
        let mut payment = Payment::in_flight(payer, &t, plan.fee_msat, asset, now);
        self.lock_hops(&plan.hops);
        let inv = &self.nodes[t.payee.index()].invoices.invoices[t.pos];
        match inv.preimage.filter(|_| !inv.hold) {
            Some(preimage) => {
                self.settle_hops(&plan.hops);
                self.mark_settled(t.payee, t.pos, preimage, now);
                payment.succeed(preimage, now);
            }
            None => {
                let inv = &mut self.nodes[t.payee.index()].invoices.invoices[t.pos];
                inv.state = InvoiceState::Accepted;
                // lnd counts accepted HTLCs in amt_paid, and keeps the figure if the payee then
                // cancels (seen on the real regtest network, lnd v0.21.0-beta).
                inv.amt_paid_msat = inv.value_msat;
                inv.pending = Some(Pending {
                    payer,
                    hops: plan.hops,
                });
            }
        }
        self.record_payment(payer, payment)
    }

    /// A held invoice's payee settles: HTLCs to the receivers, preimage to the payer.
    pub(crate) fn settle_held(&mut self, node: NodeId, pos: usize, preimage: Preimage, now: u64) {
        let inv = &mut self.nodes[node.index()].invoices.invoices[pos];
        let (hash, pending) = (inv.payment_hash, inv.pending.take());
        if let Some(p) = pending {
            self.settle_hops(&p.hops);
            self.update_payment(p.payer, &hash, |pay| pay.succeed(preimage, now));
        }
        self.mark_settled(node, pos, preimage, now);
    }

    /// A held invoice's payee cancels: HTLCs back to the senders, the payment fails.
    pub(crate) fn cancel_held(&mut self, node: NodeId, pos: usize, now: u64) {
        let inv = &mut self.nodes[node.index()].invoices.invoices[pos];
        let (hash, pending) = (inv.payment_hash, inv.pending.take());
        if let Some(p) = pending {
            self.refund_hops(&p.hops);
            let message = "the payee cancelled the held invoice".to_owned();
            // The payee's lnd fails the HTLCs back as for an unknown invoice:
            // INCORRECT_PAYMENT_DETAILS, as the real regtest network shows (lnd v0.21.0-beta).
            self.update_payment(p.payer, &hash, |pay| {
                pay.fail(FailureReason::IncorrectPaymentDetails, message, now)
            });
        }
        self.set_canceled(node, pos);
    }

    fn record_failure(&mut self, payer: NodeId, t: &Target, e: &PayError, now: u64) {
        let mut payment = Payment::in_flight(payer, t, 0, None, now);
        payment.fail(e.failure_reason(), e.to_string(), now);
        self.record_payment(payer, payment);
    }

    /// lnd's `TrackPaymentV2` lookup: `payer`'s payment for `hash`.
    pub fn payment(&self, payer: NodeId, hash: &PaymentHash) -> Result<&Payment, QueryError> {
        self.require_up(payer).map_err(QueryError::NodeDown)?;
        self.nodes[payer.index()]
            .payments
            .get(hash)
            .ok_or(QueryError::UnknownPayment {
                node: payer,
                hash: *hash,
            })
    }

    /// lnd's `ListPayments`: `payer`'s payments in the order first attempted.
    pub fn payments(&self, payer: NodeId) -> Result<&[Payment], QueryError> {
        self.require_up(payer).map_err(QueryError::NodeDown)?;
        Ok(self.nodes[payer.index()].payments.all())
    }
}
