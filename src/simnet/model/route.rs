//! Hops: the amounts a payment moves over each channel, and the three things that can happen
//! to them (lock when the HTLCs are offered, settle to the receiving side, refund to the
//! sending side). Route *choice* is in `payments.rs`; this file only moves balances, and every
//! move keeps each channel's total unchanged.

use super::Simnet;
use super::error::PayError;
use super::network::ChannelKind;
use super::types::NodeId;

/// One hop of a payment: `amount` in the channel's unit (msat or asset units).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hop {
    pub(crate) channel: usize,
    pub(crate) from: NodeId,
    pub(crate) to: NodeId,
    pub(crate) amount: u64,
}

/// HTLCs a held invoice has accepted: locked on every hop until settle or cancel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) payer: NodeId,
    pub(crate) hops: Vec<Hop>,
}

impl Simnet {
    /// The hop `from → to` over their channel of `kind`, if there is one.
    pub(crate) fn hop(
        &self,
        from: NodeId,
        to: NodeId,
        kind: ChannelKind,
        amount: u64,
    ) -> Option<Hop> {
        self.channel_between(from, to, kind).map(|channel| Hop {
            channel,
            from,
            to,
            amount,
        })
    }

    /// Every hop's sender has the amount. The payer's own shortfall is `InsufficientBalance`;
    /// the edge's is `NoRoute` (a payer cannot fix the edge's liquidity).
    pub(crate) fn check_hops(&self, payer: NodeId, hops: &[Hop]) -> Result<(), PayError> {
        for hop in hops {
            let Some(ch) = self.channels.get(hop.channel) else {
                return Err(PayError::NoRoute("unknown channel".into()));
            };
            let available = ch.side(hop.from).map_or(0, |s| ch.balance[s]);
            if available >= hop.amount {
                continue;
            }
            let unit = ch.kind.unit();
            return Err(if hop.from == payer {
                PayError::InsufficientBalance {
                    node: payer,
                    chan_id: ch.chan_id,
                    needed: hop.amount,
                    available,
                    unit,
                }
            } else {
                PayError::NoRoute(format!(
                    "{} has only {available} {unit} outbound to {} but the payment needs {}",
                    hop.from, hop.to, hop.amount
                ))
            });
        }
        Ok(())
    }

    /// Moves each amount from the sender's side into flight. Call after [`Self::check_hops`].
    pub(crate) fn lock_hops(&mut self, hops: &[Hop]) {
        for hop in hops {
            let Some(ch) = self.channels.get_mut(hop.channel) else {
                continue;
            };
            if let Some(s) = ch.side(hop.from) {
                let amount = hop.amount.min(ch.balance[s]);
                ch.balance[s] -= amount;
                ch.in_flight += amount;
            }
        }
    }

    /// Moves each locked amount to the receiver's side.
    pub(crate) fn settle_hops(&mut self, hops: &[Hop]) {
        self.release_hops(hops, true);
    }

    /// Returns each locked amount to the sender's side.
    pub(crate) fn refund_hops(&mut self, hops: &[Hop]) {
        self.release_hops(hops, false);
    }

    fn release_hops(&mut self, hops: &[Hop], to_receiver: bool) {
        for hop in hops {
            let Some(ch) = self.channels.get_mut(hop.channel) else {
                continue;
            };
            let who = if to_receiver { hop.to } else { hop.from };
            if let Some(s) = ch.side(who) {
                let amount = hop.amount.min(ch.in_flight);
                ch.in_flight -= amount;
                ch.balance[s] = ch.balance[s].saturating_add(amount);
            }
        }
    }
}
