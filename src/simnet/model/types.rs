//! Identifiers (nodes, keys, hashes, quote ids) and the simnet's randomness.
//!
//! Everything random in the simnet (node keys, preimages, payment addresses, RFQ ids) derives
//! from one [`NetworkSecret`]: 32 bytes from the OS CSPRNG, or from a seed when a test wants a
//! reproducible run (the same seed and the same calls give the same bytes).

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// sha256 over the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// One of the simnet's four nodes. The names are the API: configs, CLIs and servers use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeId {
    /// An agent holding the USD stablecoin in an asset channel with `edge`.
    Alice,
    /// An agent with a sats channel with `edge`.
    Bob,
    /// The edge node: price oracle, RFQ counterparty and router; channels to everyone.
    Edge,
    /// The seller, reachable only through `edge` (a sats channel and an asset channel).
    Merchant,
}

impl NodeId {
    /// All nodes, in index order.
    pub const ALL: [NodeId; 4] = [NodeId::Alice, NodeId::Bob, NodeId::Edge, NodeId::Merchant];

    /// The node's name (`"alice"`, …).
    pub fn name(self) -> &'static str {
        match self {
            NodeId::Alice => "alice",
            NodeId::Bob => "bob",
            NodeId::Edge => "edge",
            NodeId::Merchant => "merchant",
        }
    }

    /// The node called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.name() == name)
    }

    pub(crate) fn index(self) -> usize {
        match self {
            NodeId::Alice => 0,
            NodeId::Bob => 1,
            NodeId::Edge => 2,
            NodeId::Merchant => 3,
        }
    }

    #[cfg(test)]
    pub(crate) fn from_index(i: u8) -> Option<Self> {
        Self::ALL.get(usize::from(i)).copied()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A node's identity key: a compressed secp256k1 public key (33 bytes), as lnd reports it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodePubkey(pub [u8; 33]);

impl NodePubkey {
    /// From the 33 raw bytes a gRPC `bytes` field carries.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 33]>::try_from(bytes).ok().map(Self)
    }

    /// From the hex string lnd uses in `string` fields (`identity_pubkey`, `node_id`).
    pub fn from_hex(s: &str) -> Option<Self> {
        Self::from_slice(&hex::decode(s).ok()?)
    }

    /// Lower-case hex, as lnd prints keys.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for NodePubkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// As a hex string (for JSON output).
impl Serialize for NodePubkey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl fmt::Debug for NodePubkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodePubkey({})", self.to_hex())
    }
}

macro_rules! bytes32 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// From the 32 raw bytes a gRPC `bytes` field carries.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; 32]>::try_from(bytes).ok().map(Self)
            }

            /// From 64 hex digits.
            pub fn from_hex(s: &str) -> Option<Self> {
                Self::from_slice(&hex::decode(s).ok()?)
            }

            /// Lower-case hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.to_hex())
            }
        }

        /// As a hex string (for JSON output).
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }
    };
}

bytes32!(
    /// A Taproot Asset id.
    AssetId
);
bytes32!(
    /// sha256 of a [`Preimage`].
    PaymentHash
);
bytes32!(
    /// The secret a payee reveals to settle; learning it proves payment. (Simnet secrets are
    /// test data, so `Debug` shows them.)
    Preimage
);
bytes32!(
    /// An RFQ quote id; its last 8 bytes are the quote's SCID alias.
    QuoteId
);

impl Preimage {
    /// sha256 of the preimage.
    pub fn payment_hash(&self) -> PaymentHash {
        PaymentHash(sha256(&[&self.0]))
    }
}

/// lnd's SCID alias range starts at block 16,000,000 and spans 250,000 blocks; tapd only
/// issues RFQ ids whose SCID falls inside it (`rfqmsg.NewID`).
const ALIAS_START_BLOCK: u32 = 16_000_000;
const ALIAS_BLOCKS: u32 = 250_000;

impl QuoteId {
    /// The SCID alias: the big-endian `u64` of the last 8 bytes (tapd's `(*ID).Scid`).
    pub fn scid(&self) -> u64 {
        let mut tail = [0u8; 8];
        tail.copy_from_slice(&self.0[24..]);
        u64::from_be_bytes(tail)
    }

    /// An id from random bytes, with the SCID's block-height bytes (24..27) forced into lnd's
    /// alias range, as tapd only ever hands out such ids.
    pub(crate) fn from_random(mut bytes: [u8; 32]) -> Self {
        let r = u32::from_be_bytes([0, bytes[24], bytes[25], bytes[26]]);
        let block = ALIAS_START_BLOCK + r % ALIAS_BLOCKS;
        bytes[24..27].copy_from_slice(&block.to_be_bytes()[1..]);
        Self(bytes)
    }
}

/// A network's root secret: 32 bytes from which its fixed identities (node keys, the asset)
/// and each run's draws derive. Drawn from the OS CSPRNG for a new network, or from a seed
/// (`--seed N`) for a reproducible one; `tapgate simnet` keeps it in `DIR/simnet.toml` so a
/// restart keeps the identities. Never printed: `Debug` says only that it is there.
#[derive(Clone, PartialEq, Eq)]
pub struct NetworkSecret([u8; 32]);

impl NetworkSecret {
    /// The secret a seed stands for: the same seed, the same network.
    pub fn from_seed(seed: u64) -> Self {
        Self(sha256(&[b"tapgate-simnet/seed/", &seed.to_be_bytes()]))
    }

    /// 32 bytes from the OS CSPRNG.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// `seed`'s secret, or a random one without a seed.
    pub fn new(seed: Option<u64>) -> Result<Self, getrandom::Error> {
        seed.map_or_else(Self::random, |s| Ok(Self::from_seed(s)))
    }

    /// From the hex a network's state file holds.
    pub fn from_hex(s: &str) -> Option<Self> {
        <[u8; 32]>::try_from(hex::decode(s).ok()?).ok().map(Self)
    }

    /// Hex, for the state file only.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for NetworkSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NetworkSecret(..)")
    }
}

impl Drop for NetworkSecret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// The simnet's byte source: `sha256(run seed ‖ label ‖ counter)`, counter incremented per
/// draw, where the run seed is `sha256(secret ‖ run)`. Fixed identities use
/// [`Rng::derive`], which depends on the secret only, so they survive a restart (run `n+1`)
/// while every per-run draw (preimages, payment addresses, quote ids) changes.
#[derive(Clone)]
pub(crate) struct Rng {
    secret: [u8; 32],
    run_seed: [u8; 32],
    counter: u64,
}

impl fmt::Debug for Rng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rng")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl Rng {
    /// Run `run` of the network whose secret is `secret`.
    pub(crate) fn new(secret: &NetworkSecret, run: u64) -> Self {
        Self {
            secret: secret.0,
            run_seed: sha256(&[&secret.0, b"/run/", &run.to_be_bytes()]),
            counter: 0,
        }
    }

    /// 32 fresh bytes; `label` separates uses so two kinds of secret never coincide.
    pub(crate) fn next32(&mut self, label: &str) -> [u8; 32] {
        self.counter += 1;
        sha256(&[
            &self.run_seed,
            label.as_bytes(),
            &self.counter.to_be_bytes(),
        ])
    }

    /// Secret-derived bytes that do not advance the counter and do not change between runs
    /// (fixed identities such as the asset and the node keys).
    pub(crate) fn derive(&self, label: &str) -> [u8; 32] {
        sha256(&[&self.secret, b"/fixed/", label.as_bytes()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_round_trip() {
        for n in NodeId::ALL {
            assert_eq!(NodeId::from_name(n.name()), Some(n));
            assert_eq!(NodeId::from_index(n.index() as u8), Some(n));
        }
        assert_eq!(NodeId::from_name("carol"), None);
    }

    #[test]
    fn quote_scids_are_aliases() {
        let mut rng = Rng::new(&NetworkSecret::from_seed(7), 0);
        for _ in 0..100 {
            let id = QuoteId::from_random(rng.next32("quote"));
            let block = (id.scid() >> 40) as u32;
            assert!((ALIAS_START_BLOCK..ALIAS_START_BLOCK + ALIAS_BLOCKS).contains(&block));
        }
    }

    #[test]
    fn rng_is_deterministic_and_labelled() {
        let one = NetworkSecret::from_seed(1);
        let (mut a, mut b) = (Rng::new(&one, 0), Rng::new(&one, 0));
        assert_eq!(a.next32("x"), b.next32("x"));
        assert_ne!(a.next32("x"), b.next32("y"));
        let two = NetworkSecret::from_seed(2);
        assert_ne!(Rng::new(&one, 0).next32("x"), Rng::new(&two, 0).next32("x"));
    }

    #[test]
    fn a_restart_keeps_identities_and_changes_draws() {
        let secret = NetworkSecret::from_seed(1);
        let (mut first, mut second) = (Rng::new(&secret, 0), Rng::new(&secret, 1));
        assert_eq!(
            first.derive("node-key/alice"),
            second.derive("node-key/alice")
        );
        assert_ne!(first.next32("preimage"), second.next32("preimage"));
    }

    #[test]
    fn random_secrets_differ_and_stay_out_of_debug() {
        let (a, b) = (
            NetworkSecret::random().unwrap(),
            NetworkSecret::random().unwrap(),
        );
        assert_ne!(a, b);
        assert_eq!(NetworkSecret::from_hex(&a.to_hex()), Some(a.clone()));
        assert_eq!(format!("{a:?}"), "NetworkSecret(..)");
        assert!(!format!("{:?}", Rng::new(&a, 0)).contains(&a.to_hex()[..8]));
    }
}
