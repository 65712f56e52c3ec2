//! A root-key store in process memory: for tests and demos; every key dies with the process.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;

use super::{RootKeyStore, StoreError, fresh_key};
use crate::l402::{RootKey, TokenId};

/// Keys in a `HashMap` behind a mutex (never held across an await).
#[derive(Default)]
pub struct MemoryStore {
    keys: Mutex<HashMap<TokenId, RootKey>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore")
    }
}

impl MemoryStore {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<TokenId, RootKey>) -> T) -> T {
        // A panic while holding the lock cannot leave the map half-updated (every operation
        // is a single insert/get/remove), so a poisoned lock is still safe to use.
        let mut guard = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

impl RootKeyStore for MemoryStore {
    async fn create(&self, token_id: &TokenId) -> Result<RootKey, StoreError> {
        let key = fresh_key()?;
        self.with(|m| match m.entry(*token_id) {
            Entry::Occupied(_) => Err(StoreError::Duplicate(*token_id)),
            Entry::Vacant(v) => Ok(v.insert(key).clone()),
        })
    }

    async fn get(&self, token_id: &TokenId) -> Result<Option<RootKey>, StoreError> {
        Ok(self.with(|m| m.get(token_id).cloned()))
    }

    async fn revoke(&self, token_id: &TokenId) -> Result<bool, StoreError> {
        Ok(self.with(|m| m.remove(token_id).is_some()))
    }
}

#[cfg(test)]
mod tests {
    crate::store_conformance!(async { super::super::MemoryStore::default() });
}
