//! The simnet's configuration and its defaults.
//!
//! | setting | default | why |
//! |---|---|---|
//! | `seed` | none | none: secrets from the OS CSPRNG; `N`: a reproducible network (same keys, preimages, quote ids) |
//! | `usd_per_btc` | 100,000 | makes 1 unit of a 6-decimal coin worth exactly 1 msat, so test numbers read at a glance |
//! | `spread_ppm` | 10,000 (±1 %) | visible in tests, well inside tapd's 5 % `acceptpricedeviationppm` |
//! | `quote_lifetime_secs` | unset: tapd's sample oracle's rule, 300 s, or 60 s for orders above 100,000 units | the oracle the edge imitates (see [`SampleOracleLifetime`]); set it for one fixed lifetime, ≥ tapd's 10 s minimum |
//! | `invoice_expiry_secs` | 86,400 | plain invoices created with expiry 0, as lnd's `DefaultInvoiceExpiry` |
//! | `fees` | 1,000 msat + 1,000 ppm | lnd's default base fee and a 0.1 % rate an edge LSP might charge |
//! | `balances` | see [`InitialBalances`] | alice $1,000, bob 0.1 BTC, the merchant empty |
//! | `block_height` | 200 | a regtest chain past coinbase maturity |
//! | `asset_grouped` | false | a plain asset id, like most test mints |
//! | `legacy_quote_expiry` | false | tapd ≥ 0.8 refuses invoices that outlive their quote |

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::error::ConfigError;

/// Default dollar price of one bitcoin: $100,000 makes one 6-decimal unit exactly one msat.
pub const DEFAULT_USD_PER_BTC: u64 = 100_000;
/// Default half-spread of the edge node around the mid price: 1 % (10,000 ppm), well inside
/// tapd's default 5 % deviation band so a real tapd wallet would accept these quotes.
pub const DEFAULT_SPREAD_PPM: u32 = 10_000;
/// The sample oracle's default quote lifetime: 300 s ("Set the rate expiry to 5 minutes by
/// default", lightninglabs/taproot-assets docs/examples/basic-price-oracle/main.go
/// `getAssetRates`, v0.8.1). See [`SampleOracleLifetime`] for the whole rule.
pub const DEFAULT_QUOTE_LIFETIME_SECS: u64 = 300;
/// tapd refuses quotes that live less than 10 s (`minAssetRatesExpiryLifetime`).
pub const MIN_QUOTE_LIFETIME_SECS: u64 = 10;

/// How long the quotes of tapd's sample oracle live, which simnet's edge oracle imitates
/// (lightninglabs/taproot-assets docs/examples/basic-price-oracle/main.go `getAssetRates`,
/// v0.8.1): 300 s, or 60 s when the request's `subject_asset_max_amount` is above 100,000
/// units.
///
/// What that amount is depends on the order (taproot-assets rfq/portfolio_pilot.go
/// `ResolveRequest` and rfq/oracle.go `RpcPriceOracle`, v0.8.1): a buy request (a payee's
/// asset invoice) passes its `AssetMaxAmt`, so every asset invoice the edge can carry (above
/// the ~350,000-unit minimum at $100,000/BTC) gets a 60 s quote; a sell request (paying with
/// the asset) passes none, so its quote lives 300 s. tapd's built-in mock oracle instead gives
/// every quote 3,600 s (taproot-assets tapcfg/server.go `NewMockPriceOracle(3600, …)`, v0.8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleOracleLifetime;

impl SampleOracleLifetime {
    /// Requests for more units than this get the short lifetime.
    pub const LARGE_ORDER_UNITS: u64 = 100_000;
    /// The short lifetime: 60 s ("set the rate expiry to 1 minute").
    pub const LARGE_ORDER_SECS: u64 = 60;
    /// The default lifetime: 300 s.
    pub const SECS: u64 = DEFAULT_QUOTE_LIFETIME_SECS;

    /// The lifetime of a quote for a request naming `subject_asset_max_amount` units (0 when
    /// the request names none).
    pub fn secs(subject_asset_max_amount: u64) -> u64 {
        if subject_asset_max_amount > Self::LARGE_ORDER_UNITS {
            Self::LARGE_ORDER_SECS
        } else {
            Self::SECS
        }
    }
}

/// The lifetime of a quote for `subject_asset_max_amount` units: `fixed` when set, else the
/// sample oracle's rule.
pub(crate) fn quote_lifetime_secs(fixed: Option<u64>, subject_asset_max_amount: u64) -> u64 {
    fixed.unwrap_or_else(|| SampleOracleLifetime::secs(subject_asset_max_amount))
}
/// Default expiry of a plain invoice created with expiry 0: lnd's `DefaultInvoiceExpiry`, 24 h
/// (lightningnetwork/lnd `lnrpc/invoicesrpc/addinvoice.go`, v0.21.0-beta).
pub const DEFAULT_INVOICE_EXPIRY_SECS: u64 = 86_400;
/// Default base fee the edge charges per forwarded payment: 1 sat, lnd's default.
pub const DEFAULT_FEE_BASE_MSAT: u64 = 1_000;
/// Default proportional fee: 1,000 ppm (0.1 %), visible in tests, typical of an LSP.
pub const DEFAULT_FEE_PPM: u64 = 1_000;
/// Default block height: a regtest chain past coinbase maturity (100 blocks) with channels.
pub const DEFAULT_BLOCK_HEIGHT: u32 = 200;

/// What the edge node charges to forward a payment (lnd's channel policy). Fees are charged on
/// the amount the edge forwards, only when the edge is neither payer nor payee.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeePolicy {
    /// Flat fee per payment, msat.
    pub base_msat: u64,
    /// Proportional fee, parts per million of the forwarded msat.
    pub ppm: u64,
}

impl Default for FeePolicy {
    fn default() -> Self {
        Self {
            base_msat: DEFAULT_FEE_BASE_MSAT,
            ppm: DEFAULT_FEE_PPM,
        }
    }
}

impl FeePolicy {
    /// lnd's fee for forwarding `amt_msat`: `base + amt · ppm / 10^6`, truncated.
    pub fn fee_msat(&self, amt_msat: u64) -> u64 {
        let prop = u128::from(amt_msat) * u128::from(self.ppm) / 1_000_000;
        self.base_msat
            .saturating_add(u64::try_from(prop).unwrap_or(u64::MAX))
    }
}

/// Opening balances of the four channels. Sats in msat, the asset in units (6 decimals:
/// 1,000,000 units = $1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InitialBalances {
    /// alice's side of the alice–edge asset channel: 1e9 units = $1,000.
    pub alice_units: u64,
    /// edge's side of the alice–edge asset channel: 1e8 units = $100, so alice can receive.
    pub edge_units_to_alice: u64,
    /// bob's side of the bob–edge sats channel: 10,000,000 sat (0.1 BTC).
    pub bob_msat: u64,
    /// edge's side of the bob–edge sats channel: 1,000,000 sat, so bob can receive.
    pub edge_msat_to_bob: u64,
    /// edge's side of the edge–merchant sats channel: 10,000,000 sat of outbound liquidity.
    pub edge_msat_to_merchant: u64,
    /// merchant's side of the edge–merchant sats channel: 0, so every sat it holds was earned.
    pub merchant_msat: u64,
    /// edge's side of the edge–merchant asset channel: 1e9 units = $1,000.
    pub edge_units_to_merchant: u64,
    /// merchant's side of the edge–merchant asset channel: 0.
    pub merchant_units: u64,
}

impl Default for InitialBalances {
    fn default() -> Self {
        Self {
            alice_units: 1_000_000_000,
            edge_units_to_alice: 100_000_000,
            bob_msat: 10_000_000_000,
            edge_msat_to_bob: 1_000_000_000,
            edge_msat_to_merchant: 10_000_000_000,
            merchant_msat: 0,
            edge_units_to_merchant: 1_000_000_000,
            merchant_units: 0,
        }
    }
}

/// Everything the simnet starts from. Deserializable (unknown keys are errors) so a
/// `simnet.toml` can set any subset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimnetConfig {
    /// Seed of every random value (node keys, preimages, RFQ ids, the asset's genesis).
    /// `None` (the default): drawn from the OS CSPRNG, so no two networks share a secret.
    pub seed: Option<u64>,
    /// The edge's mid price, dollars per bitcoin.
    pub usd_per_btc: Decimal,
    /// The edge's half-spread around the mid rate, ppm: buy quotes are priced that much below
    /// mid (fewer units per BTC) and sell quotes that much above.
    pub spread_ppm: u32,
    /// How long every RFQ quote lives, seconds; unset (the default) for the sample oracle's
    /// rule ([`SampleOracleLifetime`]).
    pub quote_lifetime_secs: Option<u64>,
    /// Expiry of a plain invoice created with expiry 0, seconds.
    pub invoice_expiry_secs: u64,
    /// The edge's forwarding fee.
    pub fees: FeePolicy,
    /// Opening channel balances.
    pub balances: InitialBalances,
    /// Block height every node reports at start.
    pub block_height: u32,
    /// Give the asset a (fake, deterministic) group key.
    pub asset_grouped: bool,
    /// Behave like tapd ≤ 0.7: create asset invoices that outlive their quote (issue #1341),
    /// so an invoice can still be open when its quote has expired.
    pub legacy_quote_expiry: bool,
}

impl Default for SimnetConfig {
    fn default() -> Self {
        Self {
            seed: None,
            usd_per_btc: Decimal::from(DEFAULT_USD_PER_BTC),
            spread_ppm: DEFAULT_SPREAD_PPM,
            quote_lifetime_secs: None,
            invoice_expiry_secs: DEFAULT_INVOICE_EXPIRY_SECS,
            fees: FeePolicy::default(),
            balances: InitialBalances::default(),
            block_height: DEFAULT_BLOCK_HEIGHT,
            asset_grouped: false,
            legacy_quote_expiry: false,
        }
    }
}

impl SimnetConfig {
    /// Checks what can be checked without pricing (the price itself is checked by building
    /// the rates, see `Simnet::new`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_spread(self.spread_ppm)?;
        if let Some(secs) = self.quote_lifetime_secs {
            check_quote_lifetime(secs)?;
        }
        if self.invoice_expiry_secs == 0 {
            return Err(ConfigError::InvoiceExpiry);
        }
        Ok(())
    }
}

pub(crate) fn check_spread(ppm: u32) -> Result<(), ConfigError> {
    if ppm >= 1_000_000 {
        return Err(ConfigError::Spread(ppm));
    }
    Ok(())
}

pub(crate) fn check_quote_lifetime(secs: u64) -> Result<(), ConfigError> {
    if secs < MIN_QUOTE_LIFETIME_SECS {
        return Err(ConfigError::QuoteLifetime(secs));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_is_lnds_formula() {
        let p = FeePolicy::default();
        assert_eq!(p.fee_msat(0), 1_000);
        assert_eq!(p.fee_msat(1_000_000), 2_000);
        assert_eq!(p.fee_msat(999), 1_000);
        let huge = FeePolicy {
            base_msat: u64::MAX,
            ppm: 1_000_000,
        };
        assert_eq!(huge.fee_msat(u64::MAX), u64::MAX);
    }

    #[test]
    fn defaults_validate_and_bad_values_do_not() {
        assert_eq!(SimnetConfig::default().validate(), Ok(()));
        let bad = SimnetConfig {
            spread_ppm: 1_000_000,
            ..SimnetConfig::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::Spread(1_000_000)));
        let bad = SimnetConfig {
            quote_lifetime_secs: Some(9),
            ..SimnetConfig::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::QuoteLifetime(9)));
    }

    #[test]
    fn partial_toml_fills_defaults_and_unknown_keys_fail() {
        let c: SimnetConfig =
            toml::from_str("seed = 9\nusd_per_btc = \"97123.45\"\n[fees]\nppm = 0\n").unwrap();
        assert_eq!(c.seed, Some(9));
        assert_eq!(c.usd_per_btc.to_string(), "97123.45");
        assert_eq!(c.fees.base_msat, DEFAULT_FEE_BASE_MSAT);
        assert_eq!(c.fees.ppm, 0);
        assert!(toml::from_str::<SimnetConfig>("sede = 9\n").is_err());
        assert_eq!(
            c.quote_lifetime_secs, None,
            "unset: the sample oracle's rule"
        );
        let c: SimnetConfig = toml::from_str("quote_lifetime_secs = 600\n").unwrap();
        assert_eq!(c.quote_lifetime_secs, Some(600));
    }

    #[test]
    fn quote_lifetime_is_the_sample_oracles_rule_unless_fixed() {
        // 300 s, and 60 s strictly above 100,000 units (basic-price-oracle/main.go, v0.8.1).
        assert_eq!(quote_lifetime_secs(None, 0), 300);
        assert_eq!(quote_lifetime_secs(None, 100_000), 300);
        assert_eq!(quote_lifetime_secs(None, 100_001), 60);
        assert_eq!(quote_lifetime_secs(Some(600), 1_000_000), 600);
        assert_eq!(quote_lifetime_secs(Some(600), 0), 600);
    }
}
