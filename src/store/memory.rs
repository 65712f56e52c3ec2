//! A store in process memory: for tests and demos; every key, token and balance dies with the
//! process.
//!
//! All state sits in one struct behind one mutex, so each operation is atomic by holding the
//! lock for its whole duration (never across an await). This module must not log keys.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::{
    AMOUNT_TOO_LARGE, BalanceStore, Charge, ChargeOutcome, Debit, METER_TOO_LARGE, MeterStore,
    Rail, RevenueRow, RootKeyStore, SETTLEMENT_TOO_LARGE, SettlementStore, StoreError, TokenLedger,
    TokenRecord, TokenView, check_charge, check_idempotency_key, check_record, fresh_key, storable,
};
use crate::l402::verify::MeterKey;
use crate::l402::{PaymentHash, RootKey, TokenId};

/// Every kind of state in one struct behind a mutex (never held across an await).
#[derive(Default)]
pub struct MemoryStore {
    /// Boxed so that a `MemoryStore` (and `AnyStore` holding one) is a pointer, not eight maps.
    state: Box<Mutex<State>>,
}

#[derive(Default)]
struct State {
    keys: HashMap<TokenId, RootKey>,
    /// Settled payment hashes and the amount first recorded for each.
    settled: HashMap<PaymentHash, u64>,
    /// The highest settle_index ever recorded; only rises.
    cursor: u64,
    /// Ledger entries in recording order; `token_index` holds each one's position.
    tokens: Vec<LedgerEntry>,
    /// Token id -> index into `tokens`; one entry per element of `tokens`.
    token_index: HashMap<TokenId, usize>,
    /// Prepaid balances; opened once, then only debited (never below zero).
    balances: HashMap<TokenId, u64>,
    /// (token, idempotency key) -> balance left right after that key's successful debit (0
    /// for a charge without a balance).
    debit_keys: HashMap<(TokenId, String), u64>,
    /// (meter, period) -> what it counted; never above the cap it was charged under.
    meters: HashMap<(MeterKey, u64), u64>,
    /// (service, client) -> free calls taken.
    free_calls: HashMap<(String, String), u32>,
}

struct LedgerEntry {
    record: TokenRecord,
    revoked: bool,
}

impl State {
    fn view(&self, e: &LedgerEntry) -> TokenView {
        TokenView {
            record: e.record.clone(),
            settled: self.settled.contains_key(&e.record.payment_hash),
            balance_micro_usd: self.balances.get(&e.record.token_id).copied(),
            revoked: e.revoked,
        }
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore")
    }
}

impl MemoryStore {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // Every operation checks its inputs before its first write and cannot panic between
        // writes, so a panic while holding the lock cannot leave the state half-updated: a
        // poisoned lock is still safe to use.
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

impl RootKeyStore for MemoryStore {
    async fn create(&self, token_id: &TokenId) -> Result<RootKey, StoreError> {
        let key = fresh_key()?;
        self.with(|s| match s.keys.entry(*token_id) {
            Entry::Occupied(_) => Err(StoreError::Duplicate(*token_id)),
            Entry::Vacant(v) => Ok(v.insert(key).clone()),
        })
    }

    async fn get(&self, token_id: &TokenId) -> Result<Option<RootKey>, StoreError> {
        Ok(self.with(|s| s.keys.get(token_id).cloned()))
    }

    async fn revoke(&self, token_id: &TokenId) -> Result<bool, StoreError> {
        Ok(self.with(|s| s.keys.remove(token_id).is_some()))
    }
}

/// One process holds a memory store, so the lease is always its own.
impl super::StreamLease for MemoryStore {
    async fn try_lease(&self) -> Result<Option<super::Lease>, StoreError> {
        Ok(Some(super::Lease::local()))
    }
}

impl SettlementStore for MemoryStore {
    async fn settle_cursor(&self) -> Result<u64, StoreError> {
        Ok(self.with(|s| s.cursor))
    }

    async fn record_settled(
        &self,
        hash: &PaymentHash,
        amt_paid_msat: u64,
        settle_index: u64,
    ) -> Result<(), StoreError> {
        storable(amt_paid_msat, SETTLEMENT_TOO_LARGE)?;
        storable(settle_index, SETTLEMENT_TOO_LARGE)?;
        self.with(|s| {
            s.settled.entry(*hash).or_insert(amt_paid_msat);
            s.cursor = s.cursor.max(settle_index);
        });
        Ok(())
    }

    async fn is_settled(&self, hash: &PaymentHash) -> Result<bool, StoreError> {
        Ok(self.with(|s| s.settled.contains_key(hash)))
    }
}

impl TokenLedger for MemoryStore {
    async fn record_token(&self, t: &TokenRecord) -> Result<(), StoreError> {
        check_record(t)?;
        self.with(|s| match s.token_index.entry(t.token_id) {
            Entry::Occupied(_) => Err(StoreError::Duplicate(t.token_id)),
            Entry::Vacant(v) => {
                v.insert(s.tokens.len());
                s.tokens.push(LedgerEntry {
                    record: t.clone(),
                    revoked: false,
                });
                Ok(())
            }
        })
    }

    async fn token(&self, id: &TokenId) -> Result<Option<TokenView>, StoreError> {
        Ok(self.with(|s| {
            let e = s.tokens.get(*s.token_index.get(id)?)?;
            Some(s.view(e))
        }))
    }

    async fn list_tokens(
        &self,
        limit: u32,
        settled_only: bool,
    ) -> Result<Vec<TokenView>, StoreError> {
        Ok(self.with(|s| {
            // Recording order reversed, then a stable sort by time: ties stay later-first.
            let mut views: Vec<TokenView> = s.tokens.iter().rev().map(|e| s.view(e)).collect();
            views.retain(|v| v.settled || !settled_only);
            views.sort_by_key(|v| std::cmp::Reverse(v.record.created_at));
            views.truncate(limit as usize);
            views
        }))
    }

    async fn mark_revoked(&self, id: &TokenId) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let Some(&i) = s.token_index.get(id) else {
                return false;
            };
            s.tokens
                .get_mut(i)
                .is_some_and(|e| !std::mem::replace(&mut e.revoked, true))
        }))
    }

    async fn revenue(&self) -> Result<Vec<RevenueRow>, StoreError> {
        Ok(self.with(|s| {
            let mut rows: BTreeMap<(&str, Rail), RevenueRow> = BTreeMap::new();
            let paid = s
                .tokens
                .iter()
                .map(|e| &e.record)
                .filter(|t| s.settled.contains_key(&t.payment_hash));
            for t in paid {
                let row = rows
                    .entry((t.service.as_str(), t.rail))
                    .or_insert_with(|| RevenueRow {
                        service: t.service.clone(),
                        rail: t.rail,
                        tokens: 0,
                        micro_usd: 0,
                        msat: 0,
                        units: 0,
                    });
                // Saturating: each value is at most i64::MAX, so only absurd totals saturate.
                row.tokens = row.tokens.saturating_add(1);
                let usd = t.prepaid_micro_usd.unwrap_or(t.price_micro_usd);
                row.micro_usd = row.micro_usd.saturating_add(usd);
                row.msat = row.msat.saturating_add(t.msat);
                row.units = row.units.saturating_add(t.units.unwrap_or(0));
            }
            rows.into_values().collect()
        }))
    }
}

impl BalanceStore for MemoryStore {
    async fn open_balance(&self, token_id: &TokenId, micro_usd: u64) -> Result<u64, StoreError> {
        storable(micro_usd, AMOUNT_TOO_LARGE)?;
        Ok(self.with(|s| *s.balances.entry(*token_id).or_insert(micro_usd)))
    }

    async fn balance(&self, token_id: &TokenId) -> Result<Option<u64>, StoreError> {
        Ok(self.with(|s| s.balances.get(token_id).copied()))
    }

    async fn debit(
        &self,
        token_id: &TokenId,
        micro_usd: u64,
        idempotency_key: Option<&str>,
    ) -> Result<Debit, StoreError> {
        storable(micro_usd, AMOUNT_TOO_LARGE)?;
        check_idempotency_key(idempotency_key)?;
        Ok(self.with(|s| {
            let slot = idempotency_key.map(|k| (*token_id, k.to_owned()));
            if let Some(&remaining_micro_usd) = slot.as_ref().and_then(|k| s.debit_keys.get(k)) {
                return Debit::Charged {
                    remaining_micro_usd,
                    replayed: true,
                };
            }
            let Some(balance) = s.balances.get_mut(token_id) else {
                return Debit::NoBalance;
            };
            let Some(remaining_micro_usd) = balance.checked_sub(micro_usd) else {
                return Debit::Insufficient {
                    remaining_micro_usd: *balance,
                };
            };
            *balance = remaining_micro_usd;
            if let Some(slot) = slot {
                s.debit_keys.insert(slot, remaining_micro_usd);
            }
            Debit::Charged {
                remaining_micro_usd,
                replayed: false,
            }
        }))
    }

    async fn take_free_call(
        &self,
        service: &str,
        client: &str,
        limit: u32,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let used = s
                .free_calls
                .entry((service.to_owned(), client.to_owned()))
                .or_insert(0);
            if *used >= limit {
                return false;
            }
            *used += 1;
            true
        }))
    }
}

impl MeterStore for MemoryStore {
    async fn charge(&self, c: &Charge<'_>) -> Result<ChargeOutcome, StoreError> {
        check_charge(c)?;
        Ok(self.with(|s| {
            let slot = c.idempotency_key.map(|k| (*c.token_id, k.to_owned()));
            if let Some(&remaining) = slot.as_ref().and_then(|k| s.debit_keys.get(k)) {
                return ChargeOutcome::Charged {
                    remaining_micro_usd: c.balance_micro_usd.map(|_| remaining),
                    replayed: true,
                };
            }
            // Check everything first: nothing is written unless all of it passes.
            for (index, m) in c.meters.iter().enumerate() {
                let used = s.meters.get(&(m.key, m.period)).copied().unwrap_or(0);
                if used.saturating_add(m.amount) > m.cap {
                    return ChargeOutcome::MeterFull { index, used };
                }
            }
            let remaining = match c.balance_micro_usd {
                None => None,
                Some(amount) => {
                    let Some(balance) = s.balances.get_mut(c.token_id) else {
                        return ChargeOutcome::NoBalance;
                    };
                    let Some(left) = balance.checked_sub(amount) else {
                        return ChargeOutcome::Insufficient {
                            remaining_micro_usd: *balance,
                        };
                    };
                    *balance = left;
                    Some(left)
                }
            };
            for m in c.meters.iter().filter(|m| m.amount > 0) {
                *s.meters.entry((m.key, m.period)).or_insert(0) += m.amount;
            }
            if let Some(slot) = slot {
                s.debit_keys.insert(slot, remaining.unwrap_or(0));
            }
            ChargeOutcome::Charged {
                remaining_micro_usd: remaining,
                replayed: false,
            }
        }))
    }

    async fn meter_used(&self, key: &MeterKey, period: u64) -> Result<u64, StoreError> {
        storable(period, METER_TOO_LARGE)?;
        Ok(self.with(|s| s.meters.get(&(*key, period)).copied().unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    crate::store_conformance!(async { super::super::MemoryStore::default() });
}
