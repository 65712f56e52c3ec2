//! Property: whatever sequence of invoices, payments, holds, faults and time steps, the
//! network neither creates nor destroys sats or asset units; a failed operation moves nothing;
//! a preimage is only ever known to a payer whose payment succeeded; and the edge (paid fees
//! and the spread) ends no poorer.

use proptest::prelude::*;
use proptest::sample::Index;

use super::types::sha256;
use super::*;

#[derive(Clone, Debug)]
enum Op {
    Plain {
        payee: u8,
        msat: u64,
        hold: bool,
    },
    Asset {
        payee: u8,
        units: u64,
        expiry: u64,
        hold: bool,
    },
    PaySats {
        payer: u8,
        inv: Index,
        max_fee: u64,
    },
    PayAsset {
        payer: u8,
        inv: Index,
        overpay: bool,
    },
    Settle {
        inv: Index,
    },
    Cancel {
        inv: Index,
    },
    Advance(u64),
    Down {
        node: u8,
        down: bool,
    },
    Reject(bool),
}

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![1u64..1_000_000, 1u64..3_000_000_000]
}

/// Node indices weighted toward the usual role (payee: merchant; sats payer: bob; asset
/// payer: alice), so most sequences pay something, while every other pairing still occurs.
/// The edge never pays: its own spending would (rightly) make it poorer.
fn weighted(favourite: u8) -> impl Strategy<Value = u8> {
    prop_oneof![4 => Just(favourite), 1 => Just(0u8), 1 => Just(1u8), 1 => Just(3u8)]
}

fn op() -> impl Strategy<Value = Op> {
    let payee = prop_oneof![6 => weighted(3), 1 => Just(2u8)];
    let expiry = prop_oneof![Just(0u64), 0u64..900];
    prop_oneof![
        3 => (payee.clone(), amount(), any::<bool>())
            .prop_map(|(payee, msat, hold)| Op::Plain { payee, msat, hold }),
        3 => (payee, amount(), expiry, any::<bool>())
            .prop_map(|(payee, units, expiry, hold)| Op::Asset { payee, units, expiry, hold }),
        4 => (weighted(1), any::<Index>(), 0u64..5_000_000)
            .prop_map(|(payer, inv, max_fee)| Op::PaySats { payer, inv, max_fee }),
        4 => (weighted(0), any::<Index>(), any::<bool>())
            .prop_map(|(payer, inv, overpay)| Op::PayAsset { payer, inv, overpay }),
        2 => any::<Index>().prop_map(|inv| Op::Settle { inv }),
        1 => any::<Index>().prop_map(|inv| Op::Cancel { inv }),
        1 => (0u64..700).prop_map(Op::Advance),
        1 => (0u8..4, prop::bool::weighted(0.3)).prop_map(|(node, down)| Op::Down { node, down }),
        1 => prop::bool::weighted(0.3).prop_map(Op::Reject),
    ]
}

struct Run {
    net: Simnet,
    now: u64,
    /// (payee, payment request, hold preimage)
    invoices: Vec<(NodeId, String, Option<Preimage>)>,
    secrets: u64,
}

fn node(i: u8) -> NodeId {
    NodeId::ALL[usize::from(i % 4)]
}

impl Run {
    fn secret(&mut self, hold: bool) -> (InvoiceSecret, Option<Preimage>) {
        if !hold {
            return (InvoiceSecret::Generate, None);
        }
        self.secrets += 1;
        let p = Preimage(sha256(&[b"prop", &self.secrets.to_be_bytes()]));
        (InvoiceSecret::Hold(p.payment_hash()), Some(p))
    }

    /// One of the four newest invoices (older ones are mostly paid or expired).
    fn pick(&self, inv: &Index) -> Option<(NodeId, String, Option<Preimage>)> {
        let len = self.invoices.len();
        let back = inv.index(len.clamp(1, 4));
        len.checked_sub(1 + back).map(|i| self.invoices[i].clone())
    }

    /// Applies `op`; `true` if it succeeded.
    fn apply(&mut self, op: &Op) -> bool {
        let now = self.now;
        match op {
            Op::Plain { payee, msat, hold } => {
                let (secret, p) = self.secret(*hold);
                let req = InvoiceRequest {
                    value_msat: *msat,
                    memo: String::new(),
                    expiry_secs: 0,
                    secret,
                    description_hash: None,
                };
                let r = self.net.add_invoice(node(*payee), req, now);
                r.map(|a| self.invoices.push((node(*payee), a.payment_request, p)))
                    .is_ok()
            }
            Op::Asset {
                payee,
                units,
                expiry,
                hold,
            } => {
                let (secret, p) = self.secret(*hold);
                let req = AssetInvoiceRequest {
                    asset_id: self.net.asset().asset_id,
                    asset_amount: *units,
                    peer: None,
                    memo: String::new(),
                    expiry_secs: *expiry,
                    secret,
                };
                let r = self.net.add_asset_invoice(node(*payee), req, now);
                r.map(|a| {
                    self.invoices
                        .push((node(*payee), a.invoice.payment_request, p))
                })
                .is_ok()
            }
            Op::PaySats {
                payer,
                inv,
                max_fee,
            } => match self.pick(inv) {
                Some((_, pr, _)) => self.net.pay_sats(node(*payer), &pr, *max_fee, now).is_ok(),
                None => false,
            },
            Op::PayAsset {
                payer,
                inv,
                overpay,
            } => match self.pick(inv) {
                Some((_, pr, _)) => {
                    let req = AssetPayment {
                        payment_request: &pr,
                        asset_id: self.net.asset().asset_id,
                        peer: None,
                        fee_limit_msat: 5_000_000,
                        allow_overpay: *overpay,
                    };
                    self.net.pay_with_asset(node(*payer), &req, now).is_ok()
                }
                None => false,
            },
            Op::Settle { inv } => match self.pick(inv) {
                Some((payee, _, Some(p))) => self.net.settle_invoice(payee, &p, now).is_ok(),
                _ => false,
            },
            Op::Cancel { inv } => match self.pick(inv) {
                Some((payee, pr, _)) => {
                    let hash = self.net.decode_pay_req(payee, &pr).map(|d| d.payment_hash);
                    hash.is_ok_and(|h| self.net.cancel_invoice(payee, &h, now).is_ok())
                }
                None => false,
            },
            Op::Advance(dt) => {
                self.now += dt;
                true
            }
            Op::Down { node: n, down } => {
                self.net.set_down(node(*n), *down);
                true
            }
            Op::Reject(on) => {
                self.net.set_rfq_reject(on.then(|| "knob".to_owned()));
                true
            }
        }
    }
}

fn balances(n: &Simnet) -> Vec<([u64; 2], u64)> {
    n.channels
        .iter()
        .map(|c| (c.balance, c.in_flight))
        .collect()
}

/// The edge's holdings valued at the default mid rate, where 1 unit = 1 msat.
fn edge_value(n: &Simnet) -> u128 {
    n.channels.iter().map(|c| u128::from(c.balance[0])).sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn payments_conserve_sats_and_units(ops in prop::collection::vec(op(), 1..60)) {
        let net = Simnet::new(SimnetConfig::default()).unwrap();
        let (sats, units, edge0) = (net.total_held(Unit::Msat), net.total_held(Unit::AssetUnits), edge_value(&net));
        let mut run = Run { net, now: 1_700_000_000, invoices: Vec::new(), secrets: 0 };
        for op in &ops {
            let before = balances(&run.net);
            let ok = run.apply(op);
            prop_assert_eq!(run.net.total_held(Unit::Msat), sats);
            prop_assert_eq!(run.net.total_held(Unit::AssetUnits), units);
            if !ok {
                prop_assert_eq!(balances(&run.net), before, "failed {:?} moved funds", op);
            }
        }
        for n in NodeId::ALL {
            run.net.set_down(n, false);
            for p in run.net.payments(n).unwrap() {
                if let Some(pre) = p.preimage() {
                    prop_assert_eq!(pre.payment_hash(), p.payment_hash);
                }
                let failed = matches!(p.status, PaymentStatus::Failed { .. });
                prop_assert!(!failed || p.preimage().is_none());
            }
        }
        // Resolve every held payment, then the edge must have gained (fees, spread, round-up).
        for (payee, pr, _) in run.invoices.clone() {
            let hash = run.net.decode_pay_req(payee, &pr).unwrap().payment_hash;
            if run.net.lookup_invoice(payee, &hash).unwrap().state == InvoiceState::Accepted {
                run.net.cancel_invoice(payee, &hash, run.now).unwrap();
            }
        }
        prop_assert!(run.net.channels.iter().all(|c| c.in_flight == 0));
        prop_assert!(edge_value(&run.net) >= edge0);
    }

    #[test]
    fn asset_spend_covers_the_msat_with_the_fewest_units(
        msat in 0u64..10_000_000_000_000,
        coefficient in 1_000u64..10_000_000_000_000_000,
        scale in 0u32..12,
    ) {
        use crate::pricing::{FixedPoint, units_to_msat};
        let rate = FixedPoint::from_parts(&coefficient.to_string(), scale).unwrap();
        if let Ok(u) = crate::pricing::units_covering(msat, &rate) {
            prop_assert!(units_to_msat(u, &rate).unwrap() >= msat);
            prop_assert!(u == 0 || units_to_msat(u - 1, &rate).unwrap() < msat);
        }
    }
}
