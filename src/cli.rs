//! The `tapgate` command line: argument parsing and one function per command.
//!
//! Commands print JSON (or TOML for `config check`) on stdout and errors on stderr, and exit
//! non-zero on any error. Nothing secret is printed: root keys and preimages never are, and
//! `token inspect` shows a macaroon's contents, not its signature.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::config::{ConfigError, Settings, Sources};
use crate::l402::caveat::{Caveat, CaveatError};
use crate::l402::header::{self, HeaderError};
use crate::l402::verify::{self, VerifyError};
use crate::l402::{
    Identifier, IdentifierError, Macaroon, MacaroonError, PaymentHash, RequestContext, TokenId,
};
use crate::store::{AnyStore, RootKeyStore, StoreError};

/// tapgate: L402 for APIs priced in dollars, paid in sats or a Taproot Assets stablecoin.
#[derive(Debug, Parser)]
#[command(name = "tapgate", version, about)]
pub struct Cli {
    /// Configuration file (default: config/tapgate.toml when it exists).
    #[arg(long, global = true, value_name = "FILE", env = "TAPGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Override one setting, highest precedence; repeatable (e.g. --set store.backend=memory).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// L402 tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Prices: check what a dollar price comes to in asset units and msat.
    #[command(subcommand)]
    Price(PriceCommand),
    /// Start the simulated regtest network (alice, bob, edge, merchant) and run until Ctrl-C.
    #[cfg(feature = "node")]
    Simnet(crate::cli_node::SimnetArgs),
    /// Talk to one node of a simnet, Polar or real network.
    #[cfg(feature = "node")]
    Node(crate::cli_node::NodeArgs),
}

/// `tapgate price …`
#[derive(Debug, Subcommand)]
pub enum PriceCommand {
    /// Convert a dollar price to asset units and msat with tapd's exact arithmetic, and show
    /// the smallest amount an asset HTLC can carry at that rate.
    Convert(ConvertArgs),
}

/// `tapgate price convert`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("rate_source").required(true).args(["usd_per_btc", "rate"])))]
pub struct ConvertArgs {
    /// The price in dollars, e.g. 1.00.
    #[arg(long, value_parser = parse_decimal)]
    pub usd: rust_decimal::Decimal,
    /// The dollar price of one bitcoin, e.g. 97123.45.
    #[arg(long, value_parser = parse_decimal)]
    pub usd_per_btc: Option<rust_decimal::Decimal>,
    /// Or the rate as tapd's RFQ gives it: FixedPoint coefficient (asset units per BTC) …
    #[arg(long, value_name = "COEFF")]
    pub rate: Option<String>,
    /// … and its scale.
    #[arg(long, default_value_t = 0, requires = "rate")]
    pub scale: u32,
    /// The stablecoin's decimal display.
    #[arg(long, default_value_t = 6)]
    pub decimals: u8,
}

fn parse_decimal(s: &str) -> Result<rust_decimal::Decimal, String> {
    rust_decimal::Decimal::from_str_exact(s.trim())
        .map_err(|e| format!("{s:?} is not a decimal amount like 1.25 ({e})"))
}

/// `tapgate config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (secrets redacted) after every layer is applied.
    Check,
}

/// `tapgate token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Show what a macaroon, an `L402 …` credential or a challenge contains (nothing secret).
    Inspect {
        /// Base64 macaroon, `L402 <macaroon>:<preimage>`, or `L402 macaroon="…", invoice="…"`.
        input: String,
    },
    /// Add caveats to a macaroon (no root key needed) and print the narrower macaroon.
    Attenuate(AttenuateArgs),
    /// Mint a token for a payment hash, with its root key in the configured store.
    Mint(MintArgs),
    /// Verify an `Authorization` value against the store and print the decision.
    Verify(VerifyArgs),
    /// Revoke a token by deleting its root key.
    Revoke {
        /// The token id (64 hex characters), as `token inspect` shows it.
        token_id: String,
    },
}

/// `tapgate token attenuate`
#[derive(Debug, Args)]
pub struct AttenuateArgs {
    /// The macaroon, base64 (standard or URL-safe).
    pub macaroon: String,
    /// A caveat `key=value`; repeat for several, applied in order.
    #[arg(long = "caveat", required = true, value_name = "KEY=VALUE")]
    pub caveats: Vec<String>,
    /// Allow caveats tapgate does not recognise (tapgate itself will then refuse the token).
    #[arg(long)]
    pub allow_unknown: bool,
}

/// `tapgate token mint`
#[derive(Debug, Args)]
pub struct MintArgs {
    /// Payment hash of the invoice that pays for the token (64 hex).
    #[arg(long)]
    pub payment_hash: String,
    /// Service and tier, `name:tier` (tier defaults to 0); repeatable.
    #[arg(long = "service", required = true)]
    pub services: Vec<String>,
    /// Further caveats `key=value`.
    #[arg(long = "caveat", value_name = "KEY=VALUE")]
    pub caveats: Vec<String>,
}

/// `tapgate token verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The `Authorization` value, `L402 <macaroon>:<preimage>`; repeat to pass several headers.
    #[arg(long = "header", required = true)]
    pub headers: Vec<String>,
    /// The service the request is for.
    #[arg(long)]
    pub service: String,
    /// HTTP method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Request path.
    #[arg(long, default_value = "/")]
    pub path: String,
    /// Unix time to verify at (default: now).
    #[arg(long)]
    pub now: Option<u64>,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Configuration problem.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Store problem.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The input is not a macaroon.
    #[error("input is not a macaroon: {0}")]
    Macaroon(#[from] MacaroonError),
    /// The input is not an L402 header.
    #[error("input is not a valid L402 header: {0}")]
    Header(#[from] HeaderError),
    /// A caveat given on the command line is invalid.
    #[error("caveat refused: {0} (use --allow-unknown to add it anyway)")]
    Caveat(#[from] CaveatError),
    /// Bad hex argument.
    #[error("{what}: {source}")]
    Identifier {
        /// Which argument.
        what: &'static str,
        /// Why.
        #[source]
        source: IdentifierError,
    },
    /// Verification refused the token.
    #[error("token refused: {0}")]
    Refused(#[from] VerifyError),
    /// A `--service` value that is not `name[:tier]`.
    #[error("--service {0:?} must be name or name:tier with tier 0-255")]
    BadService(String),
    /// A price that cannot be converted.
    #[error("cannot convert the price: {0}")]
    Pricing(#[from] crate::pricing::PricingError),
    /// Node wiring problem (unknown node, unreadable network file, bad asset id).
    #[cfg(feature = "node")]
    #[error(transparent)]
    NodeSetup(#[from] crate::nodes::NodeSetupError),
    /// A node call failed.
    #[cfg(feature = "node")]
    #[error(transparent)]
    Backend(#[from] crate::lightning::error::BackendError),
    /// The simnet failed to start or stop.
    #[cfg(feature = "node")]
    #[error(transparent)]
    Simnet(#[from] crate::simnet::run::SimnetError),
    /// The simnet's servers failed while stopping.
    #[cfg(feature = "node")]
    #[error(transparent)]
    SimnetShutdown(#[from] crate::simnet::run::ShutdownError),
    /// Something the command needs is not given.
    #[error("{0}")]
    Missing(&'static str),
    /// A payment would cost more than allowed.
    #[error("paying would cost ${cost}, more than --max-usd {max}; nothing was paid")]
    OverBudget {
        /// What it would cost.
        cost: rust_decimal::Decimal,
        /// The limit.
        max: rust_decimal::Decimal,
    },
    /// Random source failure.
    #[error("cannot draw a token id from the OS random source")]
    Random(#[source] getrandom::Error),
    /// Writing to stdout failed.
    #[error("cannot print the result: {0}")]
    Output(#[from] serde_json::Error),
}

impl Cli {
    fn sources(&self) -> Sources {
        Sources {
            file: self.config.clone(),
            overrides: self.overrides.clone(),
            env: true,
        }
    }
}

/// Sets up logging to stderr. Uses the configured filter when the configuration loads;
/// configuration errors are reported by the command itself.
pub fn init_tracing(cli: &Cli) {
    let filter = cli
        .sources()
        .load()
        .map(|s| s.log.filter)
        .unwrap_or_else(|_| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn print_json(value: &serde_json::Value) -> Result<(), CliError> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let sources = cli.sources();
    match cli.command {
        Command::Config(ConfigCommand::Check) => {
            let settings = sources.load()?;
            print!("{}", settings.to_toml());
            Ok(())
        }
        Command::Token(TokenCommand::Inspect { input }) => print_json(&inspect(&input)?),
        Command::Price(PriceCommand::Convert(args)) => print_json(&price_convert(&args)?),
        #[cfg(feature = "node")]
        Command::Simnet(args) => crate::cli_node::simnet(&args).await,
        #[cfg(feature = "node")]
        Command::Node(args) => {
            let settings = sources.load()?;
            print_json(&crate::cli_node::node(&args, &settings).await?)
        }
        Command::Token(TokenCommand::Attenuate(args)) => {
            println!("{}", attenuate(&args)?);
            Ok(())
        }
        Command::Token(TokenCommand::Mint(args)) => {
            let settings = sources.load()?;
            let store = AnyStore::open(&settings).await?;
            print_json(&mint(&settings, &store, &args).await?)
        }
        Command::Token(TokenCommand::Verify(args)) => {
            let settings = sources.load()?;
            let store = AnyStore::open(&settings).await?;
            print_json(&verify_cmd(&store, &args).await?)
        }
        Command::Token(TokenCommand::Revoke { token_id }) => {
            let id = TokenId::from_hex(token_id.trim()).map_err(|source| CliError::Identifier {
                what: "token id",
                source,
            })?;
            let settings = sources.load()?;
            let store = AnyStore::open(&settings).await?;
            let revoked = store.revoke(&id).await?;
            print_json(&json!({ "token_id": id, "revoked": revoked }))
        }
    }
}

/// `price convert`: the [`crate::pricing::Quote`] as JSON.
pub fn price_convert(args: &ConvertArgs) -> Result<serde_json::Value, CliError> {
    use crate::pricing::{FixedPoint, quote_usd, rate_from_usd_per_btc};
    let rate = match (&args.rate, args.usd_per_btc) {
        (Some(coefficient), _) => FixedPoint::from_parts(coefficient.trim(), args.scale)?,
        (None, Some(usd_per_btc)) => rate_from_usd_per_btc(usd_per_btc, args.decimals)?,
        (None, None) => return Err(crate::pricing::PricingError::ZeroRate.into()),
    };
    Ok(serde_json::to_value(quote_usd(
        args.usd,
        args.decimals,
        &rate,
    )?)?)
}

/// Strips an optional `Authorization:` / `WWW-Authenticate:` header name.
fn strip_header_name(input: &str) -> &str {
    let t = input.trim();
    for name in ["authorization:", "www-authenticate:"] {
        if t.len() >= name.len() && t[..name.len()].eq_ignore_ascii_case(name) {
            return t[name.len()..].trim();
        }
    }
    t
}

fn describe_macaroon(m: &Macaroon) -> serde_json::Value {
    let mut first_party = Vec::new();
    let mut third_party = Vec::new();
    for c in m.caveats() {
        if c.is_third_party() {
            third_party.push(c.location.to_owned());
        } else {
            first_party.push(String::from_utf8_lossy(c.id).into_owned());
        }
    }
    let mut out = json!({
        "location": m.location(),
        "caveats": first_party,
    });
    match Identifier::decode(m.identifier()) {
        Ok(id) => {
            out["version"] = json!(Identifier::VERSION);
            out["payment_hash"] = json!(id.payment_hash);
            out["token_id"] = json!(id.token_id);
        }
        Err(e) => {
            out["identifier_hex"] = json!(hex::encode(m.identifier()));
            out["identifier_error"] = json!(e.to_string());
        }
    }
    if !third_party.is_empty() {
        out["third_party_caveat_locations"] = json!(third_party);
    }
    out
}

/// `token inspect`: the JSON description of a macaroon, credential or challenge.
pub fn inspect(input: &str) -> Result<serde_json::Value, CliError> {
    let input = strip_header_name(input);
    let scheme = input.split([' ', '\t']).next().unwrap_or("");
    let is_l402 = scheme.eq_ignore_ascii_case("L402") || scheme.eq_ignore_ascii_case("LSAT");
    if !is_l402 {
        return Ok(describe_macaroon(&Macaroon::from_base64(input)?));
    }
    if input.contains('=')
        && (input.contains("macaroon") || input.contains("token"))
        && input.contains("invoice")
    {
        let challenge = header::parse_challenge(input)?;
        let mut out = describe_macaroon(&challenge.macaroon);
        out["invoice"] = json!(challenge.invoice);
        return Ok(out);
    }
    let cred = header::parse_credential(input)?;
    let Some((first, rest)) = cred.macaroons.split_first() else {
        return Err(HeaderError::Malformed("no macaroon").into());
    };
    let mut out = describe_macaroon(first);
    if let Ok(id) = Identifier::decode(first.identifier()) {
        out["preimage_matches_payment_hash"] =
            json!(cred.preimage.payment_hash().ct_eq(&id.payment_hash));
    }
    if !rest.is_empty() {
        out["discharge_macaroons"] = json!(rest.iter().map(describe_macaroon).collect::<Vec<_>>());
    }
    Ok(out)
}

/// `token attenuate`: the narrower macaroon, standard base64.
pub fn attenuate(args: &AttenuateArgs) -> Result<String, CliError> {
    let mut m = Macaroon::from_base64(args.macaroon.trim())?;
    for c in &args.caveats {
        if !args.allow_unknown {
            Caveat::parse(c)?;
        }
        m.add_first_party_caveat(c.as_bytes())?;
    }
    Ok(m.to_base64())
}

fn parse_service(s: &str) -> Result<String, CliError> {
    let (name, tier) = s.split_once(':').unwrap_or((s, "0"));
    let text = format!("services={name}:{tier}");
    match Caveat::parse(&text) {
        Ok(_) => Ok(format!("{name}:{tier}")),
        Err(_) => Err(CliError::BadService(s.to_owned())),
    }
}

/// `token mint`: a fresh token with its root key stored.
pub async fn mint(
    settings: &Settings,
    store: &impl RootKeyStore,
    args: &MintArgs,
) -> Result<serde_json::Value, CliError> {
    let payment_hash =
        PaymentHash::from_hex(args.payment_hash.trim()).map_err(|source| CliError::Identifier {
            what: "payment hash",
            source,
        })?;
    let services = args
        .services
        .iter()
        .map(|s| parse_service(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut caveats = vec![format!("services={}", services.join(","))];
    for c in &args.caveats {
        Caveat::parse(c)?;
        caveats.push(c.clone());
    }
    let token_id = TokenId::generate().map_err(CliError::Random)?;
    let id = Identifier::new(payment_hash, token_id);
    let root_key = store.create(&token_id).await?;
    let mut m = Macaroon::new(&root_key, &id.encode(), &settings.l402.location);
    for c in &caveats {
        m.add_first_party_caveat(c.as_bytes())?;
    }
    Ok(json!({
        "macaroon": m.to_base64(),
        "token_id": token_id,
        "payment_hash": payment_hash,
        "caveats": caveats,
    }))
}

/// `token verify`: the decision as JSON, or the refusal as an error.
pub async fn verify_cmd(
    store: &impl RootKeyStore,
    args: &VerifyArgs,
) -> Result<serde_json::Value, CliError> {
    let values: Vec<&str> = args.headers.iter().map(|h| strip_header_name(h)).collect();
    let cred = header::parse_authorization(&values)?;
    let token_id = cred
        .macaroons
        .first()
        .and_then(|m| Identifier::decode(m.identifier()).ok())
        .map(|id| id.token_id);
    let root_key = match token_id {
        Some(t) => store.get(&t).await?,
        None => None,
    };
    let now = args.now.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let ctx = RequestContext {
        service: &args.service,
        method: &args.method,
        path: &args.path,
        now,
    };
    let decision = verify::verify_credential(&cred, &ctx, |_| root_key)?;
    Ok(serde_json::to_value(decision)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: &str = "AgEEbHNhdAJCAACfcuoM9JU248ZseH9wUYbfmkN4CDdTrpU21ls61/zdxDMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzAAIOc2VydmljZXM9c3ZjOjAAAAYgMhGOTzBwhH01+TTSs/Czt2wCshcooHKpXoye029+Ew0=";

    #[test]
    fn inspect_shows_fields_and_no_signature() {
        let v = inspect(MAC).unwrap();
        assert_eq!(v["version"], 0);
        assert_eq!(
            v["payment_hash"],
            "9f72ea0cf49536e3c66c787f705186df9a4378083753ae9536d65b3ad7fcddc4"
        );
        assert_eq!(v["token_id"], "33".repeat(32));
        assert_eq!(v["location"], "lsat");
        assert_eq!(v["caveats"], json!(["services=svc:0"]));
        let text = v.to_string();
        assert!(!text.contains("32118e4f"), "{text}");
        let h = inspect(&format!("Authorization: L402 {MAC}:{}", "22".repeat(32))).unwrap();
        assert_eq!(h["preimage_matches_payment_hash"], true);
        assert!(!h.to_string().contains(&"22".repeat(32)));
    }

    #[test]
    fn attenuate_validates_caveats() {
        let args = |c: &str, allow| AttenuateArgs {
            macaroon: MAC.into(),
            caveats: vec![c.into()],
            allow_unknown: allow,
        };
        let out = attenuate(&args("svc_methods=GET", false)).unwrap();
        assert_eq!(
            inspect(&out).unwrap()["caveats"],
            json!(["services=svc:0", "svc_methods=GET"])
        );
        assert!(matches!(
            attenuate(&args("svc_methods=get", false)),
            Err(CliError::Caveat(_))
        ));
        assert!(matches!(
            attenuate(&args("color=blue", false)),
            Err(CliError::Caveat(_))
        ));
        assert!(attenuate(&args("color=blue", true)).is_ok());
    }
}
