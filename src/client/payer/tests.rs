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

    fn pay(&self, rail: Rail, req: &str, fee_limit: u64) -> Result<PaymentOutcome, BackendError> {
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

    async fn preview_asset_payment(&self, req: &str, _: &AssetRef) -> Result<u64, BackendError> {
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
