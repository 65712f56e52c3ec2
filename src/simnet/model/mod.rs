//! The simnet's state machine: four nodes, four channels, an RFQ desk, invoices and payments,
//! with the constraints of lnd + tapd that make payments fail in real life.
//!
//! It owns all of the simulated network's state and every rule; it does no I/O, holds no
//! clock (every call that depends on time takes `now`, unix seconds) and never sleeps. It is a
//! plain struct with `&mut self` methods: the gRPC servers wrap it in a mutex, translate
//! requests into these calls and answers into protos, and apply the latency and stream-drop
//! knobs it stores. Amount conversions all go through [`crate::pricing`].
//!
//! ```text
//!  alice ══asset══ edge ══sats══ merchant        edge: price oracle + RFQ desk + router
//!                 │  ╲══asset══ merchant
//!  bob ───sats─────┘
//! ```
//!
//! ```
//! use tapgate::simnet::model::{AssetInvoiceRequest, NodeId, Simnet, SimnetConfig};
//!
//! let mut net = Simnet::new(SimnetConfig::default()).unwrap();
//! let usd = net.asset().asset_id;
//! let now = 1_700_000_000;
//! // The merchant asks for $1 in the stablecoin; the edge quotes it and prices the invoice.
//! let req = AssetInvoiceRequest {
//!     asset_id: usd,
//!     asset_amount: 1_000_000,
//!     peer: None,
//!     memo: "1 API call".into(),
//!     expiry_secs: 0,
//!     secret: Default::default(),
//! };
//! let added = net.add_asset_invoice(NodeId::Merchant, req, now).unwrap();
//! // bob pays it in sats through the edge; the merchant receives the stablecoin.
//! let paid = net.pay_sats(NodeId::Bob, &added.invoice.payment_request, 10_000, now + 1).unwrap();
//! assert_eq!(paid.preimage().unwrap().payment_hash(), added.invoice.payment_hash);
//! // The edge forwards the floor of the invoice's 1,010,101 msat at 0.99 units per msat.
//! assert_eq!(net.balances(NodeId::Merchant).unwrap().assets[0].units, 999_999);
//! ```

mod asset;
mod asset_invoice;
mod config;
mod error;
mod events;
mod invoices;
mod keys;
mod network;
mod payments;
mod payments_book;
mod payreq;
mod rfq;
mod route;
mod types;

#[cfg(test)]
mod conservation;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::Serialize;

pub use asset::{ASSET_DECIMALS, ASSET_NAME, AssetChannelUnits, AssetHolding, AssetInfo, Balances};
pub use asset_invoice::{AddedAssetInvoice, AssetInvoiceRequest, AssetPayReq};
pub use config::{
    DEFAULT_BLOCK_HEIGHT, DEFAULT_FEE_BASE_MSAT, DEFAULT_FEE_PPM, DEFAULT_INVOICE_EXPIRY_SECS,
    DEFAULT_QUOTE_LIFETIME_SECS, DEFAULT_SPREAD_PPM, DEFAULT_USD_PER_BTC, FeePolicy,
    InitialBalances, MIN_QUOTE_LIFETIME_SECS, SimnetConfig,
};
pub use error::{ConfigError, FailureReason, InvoiceError, PayError, QueryError, RfqError};
pub use events::{InvoiceEvent, InvoiceEvents};
pub use invoices::{
    AddedInvoice, AssetTerms, FINAL_CLTV_DELTA, Invoice, InvoiceRequest, InvoiceSecret,
    InvoiceState, PayReq, RouteHint,
};
pub use network::{ChannelInfo, ChannelKind, Faults, LND_VERSION, NodeInfo, TAPD_VERSION};
pub use payments::{AssetPayment, AssetPaymentPreview};
pub use payments_book::{AssetSpend, Payment, PaymentStatus};
pub use payreq::MAX_INVOICE_MSAT;
pub use rfq::{
    AcceptedQuotes, BuyQuote, EdgeRates, OracleRate, OracleSide, RfqSettings, SellQuote,
};
pub use types::{AssetId, NetworkSecret, NodeId, NodePubkey, PaymentHash, Preimage, QuoteId};

/// What a channel's balances are counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Unit {
    /// Millisatoshis (sats channels).
    Msat,
    /// Units of the channel's asset (asset channels).
    AssetUnits,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Msat => "msat",
            Unit::AssetUnits => "asset units",
        })
    }
}

/// One node's state.
#[derive(Clone, Debug, Default)]
struct Node {
    faults: network::Faults,
    invoices: invoices::InvoiceBook,
    payments: payments_book::PaymentBook,
}

/// The simulated network.
#[derive(Clone, Debug)]
pub struct Simnet {
    config: SimnetConfig,
    asset: AssetInfo,
    /// Indexed by [`NodeId::index`].
    nodes: [Node; 4],
    /// The fixed topology (`network::open_channels`); only balances change.
    channels: Vec<network::Channel>,
    rfq: rfq::RfqDesk,
    rng: types::Rng,
    /// The nodes' identity keys (derived from the network secret, kept across restarts).
    keys: keys::NodeKeys,
    block_height: u32,
    /// Bumped by every mutation (see [`Simnet::generation`]).
    generation: u64,
}

impl Simnet {
    /// A fresh network from `config`: reproducible when `config.seed` is set, otherwise with
    /// secrets from the OS CSPRNG.
    pub fn new(config: SimnetConfig) -> Result<Self, ConfigError> {
        let secret = NetworkSecret::new(config.seed).map_err(ConfigError::Random)?;
        Self::with_secret(config, &secret, 0)
    }

    /// Run `run` (0 for the first) of the network whose secret is `secret`: the node keys and
    /// the asset derive from the secret alone, so they are the same in every run; preimages,
    /// payment addresses and quote ids are drawn per run, so no run repeats another's.
    pub fn with_secret(
        config: SimnetConfig,
        secret: &NetworkSecret,
        run: u64,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let rng = types::Rng::new(secret, run);
        let keys = keys::NodeKeys::derive(&rng);
        let asset = AssetInfo::derive(&rng, config.asset_grouped);
        let rfq = rfq::RfqDesk {
            usd_per_btc: config.usd_per_btc,
            spread_ppm: config.spread_ppm,
            lifetime_secs: config.quote_lifetime_secs,
            reject: None,
            buy: Vec::new(),
            sell: Vec::new(),
        };
        rfq.rates(asset.decimal_display)
            .map_err(|source| ConfigError::Price {
                usd_per_btc: config.usd_per_btc,
                source,
            })?;
        Ok(Self {
            channels: network::open_channels(&config.balances, asset.asset_id),
            block_height: config.block_height,
            nodes: Default::default(),
            generation: 0,
            config,
            asset,
            rfq,
            rng,
            keys,
        })
    }

    /// The configuration it was built from (price knobs change the RFQ desk, not this).
    pub fn config(&self) -> &SimnetConfig {
        &self.config
    }

    /// The node owning `key`, for requests that name peers by key.
    pub fn node_by_pubkey(&self, key: &NodePubkey) -> Option<NodeId> {
        self.keys.node(key)
    }

    /// `node`'s identity key (what `GetInfo` reports and its invoices are signed with).
    pub fn pubkey(&self, node: NodeId) -> NodePubkey {
        self.keys.pubkey(node)
    }
}
