//! Invoices: creation (plain and hold), lookup, decoding, settle and cancel, expiry.
//!
//! Each node keeps its invoices in creation order and the order in which they settled; an
//! invoice's `add_index` and `settle_index` are its 1-based positions in those two lists, so
//! both strictly increase per node, as lnd's do. Asset invoices are created in
//! `asset_invoice.rs` and stored here like any other, carrying their quote.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Simnet;
use super::error::InvoiceError;
use super::payreq;
use super::rfq::BuyQuote;
use super::route::Pending;
use super::types::{AssetId, NodeId, NodePubkey, PaymentHash, Preimage};

/// lnd's default final CLTV delta on regtest invoices.
pub const FINAL_CLTV_DELTA: u32 = 80;

/// lnd's `Invoice.InvoiceState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum InvoiceState {
    /// Waiting for payment.
    Open,
    /// Paid; the preimage is released.
    Settled,
    /// Cancelled by the payee (or expired and swept); never payable again.
    Canceled,
    /// A hold invoice whose HTLCs arrived: waiting for settle or cancel.
    Accepted,
}

/// Where an invoice's preimage comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum InvoiceSecret {
    /// Draw one from the simnet's seeded randomness (lnd's default).
    #[default]
    Generate,
    /// Use this one (lnd's `r_preimage`).
    Preimage(Preimage),
    /// A hold invoice: only the hash is known until `settle_invoice` brings the preimage.
    Hold(PaymentHash),
}

/// What to invoice (lnd's `AddInvoice` / `AddHoldInvoice` inputs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InvoiceRequest {
    /// Amount, msat; must be positive.
    pub value_msat: u64,
    /// Description.
    pub memo: String,
    /// Seconds until expiry; 0 for the configured default.
    pub expiry_secs: u64,
    /// Preimage source.
    pub secret: InvoiceSecret,
    /// lnd's `description_hash`: when set, the invoice carries this hash (BOLT 11 `h`)
    /// instead of the memo (`d`).
    pub description_hash: Option<[u8; 32]>,
}

/// lnd's `HopHint`: how a payer reaches the payee through a private channel (for asset
/// invoices, the edge and the quote's SCID alias).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteHint {
    /// The hop's node (the edge).
    pub node: NodePubkey,
    /// The SCID (for asset invoices, the RFQ alias).
    pub chan_id: u64,
    /// The edge's base fee, msat.
    pub fee_base_msat: u64,
    /// The edge's proportional fee, ppm.
    pub fee_ppm: u64,
    /// CLTV delta.
    pub cltv_expiry_delta: u32,
}

/// What makes an invoice an asset invoice: the units the payee gets and the quote that prices
/// them. Strict forwarding: only asset HTLCs under that quote can pay it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AssetTerms {
    /// The asset.
    pub asset_id: AssetId,
    /// Units the payee receives.
    pub units: u64,
    /// The buy quote (its SCID is the route hint's channel).
    pub quote: BuyQuote,
}

/// An invoice as its node stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invoice {
    /// The payee.
    pub node: NodeId,
    /// sha256 of the preimage.
    pub payment_hash: PaymentHash,
    /// Known from creation, except for hold invoices (known once settled).
    pub preimage: Option<Preimage>,
    /// BOLT 11 payment address (random, informational).
    pub payment_addr: [u8; 32],
    /// The string payers pay.
    pub payment_request: String,
    /// Description.
    pub memo: String,
    /// The description hash the invoice carries instead of the memo, if any.
    pub description_hash: Option<[u8; 32]>,
    /// Amount, msat.
    pub value_msat: u64,
    /// Unix seconds.
    pub created_at: u64,
    /// Seconds after `created_at` it stays payable.
    pub expiry_secs: u64,
    /// A hold invoice.
    pub hold: bool,
    /// Present on asset invoices.
    pub asset: Option<AssetTerms>,
    /// Hop hints (one per quote on asset invoices, none on plain ones).
    pub route_hints: Vec<RouteHint>,
    /// Current state.
    pub state: InvoiceState,
    /// Position in the node's creation order, from 1.
    pub add_index: u64,
    /// Position in the node's settlement order, from 1; 0 until settled.
    pub settle_index: u64,
    /// When settled.
    pub settled_at: Option<u64>,
    /// msat received (the invoice value once settled).
    pub amt_paid_msat: u64,
    /// Locked HTLCs of an ACCEPTED hold invoice.
    pub(crate) pending: Option<Pending>,
}

impl Invoice {
    /// Unix second from which it can no longer be paid.
    pub fn expires_at(&self) -> u64 {
        self.created_at.saturating_add(self.expiry_secs)
    }

    /// Past its expiry at `now`.
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at()
    }

    /// Asset units the payee received (asset invoices, once settled): what the edge forwards,
    /// the floor of the invoice's msat at the quote's ask rate (see `payments.rs`).
    pub fn asset_units_paid(&self) -> Option<u64> {
        match (&self.asset, self.state) {
            (Some(a), InvoiceState::Settled) => {
                crate::pricing::msat_to_units(self.value_msat, &a.quote.ask_rate).ok()
            }
            _ => None,
        }
    }
}

/// lnd's `PayReq`: what a payment request says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PayReq {
    /// The payee's key.
    pub destination: NodePubkey,
    /// The hash.
    pub payment_hash: PaymentHash,
    /// Amount, msat.
    pub num_msat: u64,
    /// Creation time, unix seconds.
    pub timestamp: u64,
    /// Seconds.
    pub expiry: u64,
    /// The memo (empty when the invoice carries a description hash).
    pub description: String,
    /// The description hash, when the invoice carries one.
    pub description_hash: Option<[u8; 32]>,
    /// Final CLTV delta.
    pub cltv_expiry: u64,
    /// Hop hints (asset invoices: edge + RFQ SCID).
    pub route_hints: Vec<RouteHint>,
    /// Payment address.
    pub payment_addr: [u8; 32],
}

/// What `AddInvoice` returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddedInvoice {
    /// The hash.
    pub payment_hash: PaymentHash,
    /// The string to pay.
    pub payment_request: String,
    /// Its add index.
    pub add_index: u64,
    /// Its payment address.
    pub payment_addr: [u8; 32],
}

/// A node's invoices.
#[derive(Clone, Debug, Default)]
pub(crate) struct InvoiceBook {
    /// In creation order: `invoices[i].add_index == i + 1`.
    pub(crate) invoices: Vec<Invoice>,
    by_hash: BTreeMap<PaymentHash, usize>,
    /// Positions in `invoices`, in settlement order: `settle_index == position + 1`.
    pub(crate) settled: Vec<usize>,
}

impl InvoiceBook {
    pub(crate) fn position(&self, hash: &PaymentHash) -> Option<usize> {
        self.by_hash.get(hash).copied()
    }
}

/// An invoice about to be stored.
pub(crate) struct Draft {
    pub(crate) value_msat: u64,
    pub(crate) memo: String,
    pub(crate) description_hash: Option<[u8; 32]>,
    pub(crate) expiry_secs: u64,
    pub(crate) secret: InvoiceSecret,
    pub(crate) asset: Option<AssetTerms>,
    pub(crate) route_hints: Vec<RouteHint>,
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl Simnet {
    /// lnd's `AddInvoice` (or `AddHoldInvoice` with [`InvoiceSecret::Hold`]) on `node`.
    pub fn add_invoice(
        &mut self,
        node: NodeId,
        req: InvoiceRequest,
        now: u64,
    ) -> Result<AddedInvoice, InvoiceError> {
        self.require_up(node).map_err(InvoiceError::NodeDown)?;
        let expiry_secs = match req.expiry_secs {
            0 => self.config.invoice_expiry_secs,
            e => e,
        };
        let draft = Draft {
            value_msat: req.value_msat,
            memo: req.memo,
            description_hash: req.description_hash,
            expiry_secs,
            secret: req.secret,
            asset: None,
            route_hints: Vec::new(),
        };
        self.insert_invoice(node, draft, now)
    }

    /// Stores a new invoice; refuses zero amounts and duplicate hashes.
    pub(crate) fn insert_invoice(
        &mut self,
        node: NodeId,
        draft: Draft,
        now: u64,
    ) -> Result<AddedInvoice, InvoiceError> {
        if draft.value_msat == 0 {
            return Err(InvoiceError::ZeroAmount);
        }
        let (preimage, hash) = match draft.secret {
            InvoiceSecret::Generate => {
                let p = Preimage(self.rng.next32("preimage"));
                (Some(p), p.payment_hash())
            }
            InvoiceSecret::Preimage(p) => (Some(p), p.payment_hash()),
            InvoiceSecret::Hold(h) => (None, h),
        };
        let book = &self.nodes[node.index()].invoices;
        if book.position(&hash).is_some() {
            return Err(InvoiceError::DuplicateHash { node, hash });
        }
        let add_index = count(book.invoices.len()) + 1;
        let payment_addr = self.rng.next32("payment-addr");
        let description = match draft.description_hash {
            Some(h) => payreq::Description::Hash(h),
            None => payreq::Description::Memo(draft.memo.clone()),
        };
        let fields = payreq::Fields {
            hash,
            payment_addr,
            amount_msat: draft.value_msat,
            timestamp: now,
            expiry_secs: draft.expiry_secs,
            description: &description,
            cltv_delta: FINAL_CLTV_DELTA,
            route_hints: &draft.route_hints,
        };
        let payment_request =
            payreq::encode(&self.keys, node, &fields).map_err(InvoiceError::Unencodable)?;
        let invoice = Invoice {
            node,
            payment_hash: hash,
            preimage,
            payment_addr,
            payment_request: payment_request.clone(),
            memo: draft.memo,
            description_hash: draft.description_hash,
            value_msat: draft.value_msat,
            created_at: now,
            expiry_secs: draft.expiry_secs,
            hold: preimage.is_none(),
            asset: draft.asset,
            route_hints: draft.route_hints,
            state: InvoiceState::Open,
            add_index,
            settle_index: 0,
            settled_at: None,
            amt_paid_msat: 0,
            pending: None,
        };
        let book = &mut self.nodes[node.index()].invoices;
        book.by_hash.insert(hash, book.invoices.len());
        book.invoices.push(invoice);
        self.touch();
        Ok(AddedInvoice {
            payment_hash: hash,
            payment_request,
            add_index,
            payment_addr,
        })
    }

    /// lnd's `LookupInvoice` on `node`.
    pub fn lookup_invoice(
        &self,
        node: NodeId,
        hash: &PaymentHash,
    ) -> Result<&Invoice, InvoiceError> {
        self.require_up(node).map_err(InvoiceError::NodeDown)?;
        let book = &self.nodes[node.index()].invoices;
        book.position(hash)
            .and_then(|i| book.invoices.get(i))
            .ok_or(InvoiceError::UnknownInvoice { node, hash: *hash })
    }

    /// lnd's `ListInvoices` on `node`, in add order.
    pub fn list_invoices(&self, node: NodeId) -> Result<&[Invoice], InvoiceError> {
        self.require_up(node).map_err(InvoiceError::NodeDown)?;
        Ok(&self.nodes[node.index()].invoices.invoices)
    }

    /// lnd's `DecodePayReq`, answered by `node` (which must be up): what the string says,
    /// signature checked, whoever issued it (lnd decodes any regtest invoice without looking
    /// it up; lightningnetwork/lnd `rpcserver.go` `DecodePayReq`, v0.21.0-beta). An amountless
    /// invoice decodes with `num_msat` 0.
    pub fn decode_pay_req(
        &self,
        node: NodeId,
        payment_request: &str,
    ) -> Result<PayReq, InvoiceError> {
        self.require_up(node).map_err(InvoiceError::NodeDown)?;
        let d = payreq::decode(payment_request).map_err(InvoiceError::InvalidPaymentRequest)?;
        let (description, description_hash) = match d.description {
            payreq::Description::Memo(m) => (m, None),
            payreq::Description::Hash(h) => (String::new(), Some(h)),
        };
        Ok(PayReq {
            destination: d.payee,
            payment_hash: d.hash,
            num_msat: d.amount_msat.unwrap_or(0),
            timestamp: d.timestamp,
            expiry: d.expiry_secs,
            description,
            description_hash,
            cltv_expiry: d.cltv_delta,
            route_hints: d.route_hints,
            payment_addr: d.payment_addr,
        })
    }

    fn invoice_position(&self, node: NodeId, hash: &PaymentHash) -> Result<usize, InvoiceError> {
        self.require_up(node).map_err(InvoiceError::NodeDown)?;
        self.nodes[node.index()]
            .invoices
            .position(hash)
            .ok_or(InvoiceError::UnknownInvoice { node, hash: *hash })
    }

    fn state_of(&self, node: NodeId, pos: usize) -> InvoiceState {
        self.nodes[node.index()].invoices.invoices[pos].state
    }

    /// lnd's `SettleInvoice`: settles the ACCEPTED hold invoice whose hash is sha256(`preimage`),
    /// releasing the locked HTLCs to the payee and the preimage to the payer.
    pub fn settle_invoice(
        &mut self,
        node: NodeId,
        preimage: &Preimage,
        now: u64,
    ) -> Result<(), InvoiceError> {
        let hash = preimage.payment_hash();
        let pos = self.invoice_position(node, &hash)?;
        match self.state_of(node, pos) {
            InvoiceState::Accepted => {
                self.settle_held(node, pos, *preimage, now);
                Ok(())
            }
            state => Err(InvoiceError::WrongState {
                action: "settle",
                hash,
                state,
            }),
        }
    }

    /// lnd's `CancelInvoice`: an OPEN invoice becomes unpayable; an ACCEPTED one also returns
    /// its locked HTLCs to the payer (whose payment fails without a preimage).
    pub fn cancel_invoice(
        &mut self,
        node: NodeId,
        hash: &PaymentHash,
        now: u64,
    ) -> Result<(), InvoiceError> {
        let pos = self.invoice_position(node, hash)?;
        match self.state_of(node, pos) {
            InvoiceState::Open => self.set_canceled(node, pos),
            InvoiceState::Accepted => self.cancel_held(node, pos, now),
            state => {
                return Err(InvoiceError::WrongState {
                    action: "cancel",
                    hash: *hash,
                    state,
                });
            }
        }
        Ok(())
    }

    pub(crate) fn set_canceled(&mut self, node: NodeId, pos: usize) {
        if let Some(inv) = self.nodes[node.index()].invoices.invoices.get_mut(pos) {
            inv.state = InvoiceState::Canceled;
            inv.pending = None;
        }
        self.touch();
    }

    /// Marks an invoice settled at `now` with the next settle index.
    pub(crate) fn mark_settled(&mut self, node: NodeId, pos: usize, preimage: Preimage, now: u64) {
        let book = &mut self.nodes[node.index()].invoices;
        let settle_index = count(book.settled.len()) + 1;
        if let Some(inv) = book.invoices.get_mut(pos) {
            inv.state = InvoiceState::Settled;
            inv.preimage = Some(preimage);
            inv.settle_index = settle_index;
            inv.settled_at = Some(now);
            inv.amt_paid_msat = inv.value_msat;
            inv.pending = None;
            book.settled.push(pos);
        }
        self.touch();
    }

    /// lnd's expiry watcher: cancels every OPEN invoice past its expiry (held ones wait for
    /// their payee). Servers call this before answering lookups. Returns how many it cancelled.
    pub fn cancel_expired_invoices(&mut self, now: u64) -> usize {
        let mut expired = Vec::new();
        // A down node's watcher is not running; its invoices wait until it is back.
        for node in NodeId::ALL.into_iter().filter(|n| self.is_up(*n)) {
            let book = &self.nodes[node.index()].invoices;
            for (pos, inv) in book.invoices.iter().enumerate() {
                if inv.state == InvoiceState::Open && inv.is_expired(now) {
                    expired.push((node, pos));
                }
            }
        }
        for (node, pos) in &expired {
            self.set_canceled(*node, *pos);
        }
        expired.len()
    }
}
