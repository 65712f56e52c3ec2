//! The nodes' identity keys: real secp256k1 key pairs, so the invoices a node issues carry a
//! signature any BOLT 11 decoder verifies against the key `GetInfo` and `network.toml` report.
//!
//! Each secret key is derived from the network's secret ([`super::types::NetworkSecret`]),
//! not drawn per run, so a restart of the same network directory keeps every node's identity,
//! as lnd keeps its node key in its wallet.

use std::fmt;

use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey};

use super::types::{NodeId, NodePubkey, Rng};

/// The four nodes' key pairs. `Debug` shows the public keys only.
#[derive(Clone)]
pub(crate) struct NodeKeys {
    secp: Secp256k1<All>,
    secrets: [SecretKey; 4],
    pubkeys: [NodePubkey; 4],
}

impl fmt::Debug for NodeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKeys")
            .field("pubkeys", &self.pubkeys)
            .finish_non_exhaustive()
    }
}

impl NodeKeys {
    /// The keys of the network `rng` draws for. A 32-byte string is a valid secret key unless
    /// it is zero or not below the curve order (odds about 2⁻¹²⁸); such a draw is followed by
    /// the next label, so derivation always ends.
    pub(crate) fn derive(rng: &Rng) -> Self {
        let secp = Secp256k1::new();
        let secrets = NodeId::ALL.map(|node| {
            let mut attempt = 0u32;
            loop {
                let label = format!("node-key/{}/{attempt}", node.name());
                if let Ok(key) = SecretKey::from_slice(&rng.derive(&label)) {
                    break key;
                }
                attempt += 1;
            }
        });
        let pubkeys =
            secrets.map(|k| NodePubkey(PublicKey::from_secret_key(&secp, &k).serialize()));
        Self {
            secp,
            secrets,
            pubkeys,
        }
    }

    /// `node`'s identity key.
    pub(crate) fn pubkey(&self, node: NodeId) -> NodePubkey {
        self.pubkeys[node.index()]
    }

    /// The node whose identity key is `key`.
    pub(crate) fn node(&self, key: &NodePubkey) -> Option<NodeId> {
        NodeId::ALL
            .into_iter()
            .find(|n| self.pubkeys[n.index()] == *key)
    }

    /// `node`'s secret key, for signing its invoices.
    pub(crate) fn secret(&self, node: NodeId) -> &SecretKey {
        &self.secrets[node.index()]
    }

    /// The signing context.
    pub(crate) fn secp(&self) -> &Secp256k1<All> {
        &self.secp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simnet::model::types::NetworkSecret;

    #[test]
    fn keys_are_real_distinct_and_kept_across_runs() {
        let secret = NetworkSecret::from_seed(3);
        let keys = NodeKeys::derive(&Rng::new(&secret, 0));
        let again = NodeKeys::derive(&Rng::new(&secret, 7));
        for n in NodeId::ALL {
            let key = keys.pubkey(n);
            assert!(
                PublicKey::from_slice(&key.0).is_ok(),
                "{n}'s key is on the curve"
            );
            assert_eq!(keys.node(&key), Some(n));
            assert_eq!(again.pubkey(n), key, "a restart keeps {n}'s identity");
        }
        let distinct: std::collections::BTreeSet<_> =
            NodeId::ALL.map(|n| keys.pubkey(n)).into_iter().collect();
        assert_eq!(distinct.len(), 4);
        let other = NodeKeys::derive(&Rng::new(&NetworkSecret::from_seed(4), 0));
        assert_ne!(other.pubkey(NodeId::Edge), keys.pubkey(NodeId::Edge));
        assert!(!format!("{keys:?}").contains("SecretKey"));
    }
}
