//! The `tapgate` command line: argument parsing and one function per command.
//!
//! Commands print their result on stdout (JSON; TOML for `config check`; the bare macaroon for
//! `token attenuate`) and errors on stderr, and exit non-zero on any error. Root keys are never
//! printed. The only preimage printed is the one `node pay` obtains: it is the payer's proof of
//! payment, which the payer needs. `token inspect` shows a macaroon's contents, not its
//! signature; `token mint` and `token attenuate` print whole macaroons, which are bearer
//! credentials.
//!
//! Input is checked before anything is written or dialled: flag values by the parsers in
//! [`parse`], arguments that contradict each other by clap, caveats before the store is opened.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::config::{ConfigError, Settings, Sources};
use crate::l402::caveat::{self, Caveat, CaveatError, Condition};
use crate::l402::header::{self, HeaderError};
use crate::l402::verify::{self, VerifyError};
use crate::l402::{
    Identifier, IdentifierError, Macaroon, MacaroonError, PaymentHash, RequestContext, TokenId,
};
use crate::store::{AnyStore, RootKeyStore, StoreError};

pub mod parse;
pub mod report;
#[cfg(feature = "node")]
pub mod spend_cap;

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
    /// The price in dollars, above zero, e.g. 1.00.
    #[arg(long, allow_negative_numbers = true, value_parser = parse::positive_usd)]
    pub usd: rust_decimal::Decimal,
    /// The dollar price of one bitcoin, e.g. 97123.45.
    #[arg(long, allow_negative_numbers = true, value_parser = parse::positive_usd_per_btc)]
    pub usd_per_btc: Option<rust_decimal::Decimal>,
    /// Or the rate as tapd's RFQ gives it: FixedPoint coefficient (asset units per BTC) …
    #[arg(long, value_name = "COEFF")]
    pub rate: Option<String>,
    /// … and its scale (default 0; only with --rate).
    #[arg(long, requires = "rate", conflicts_with = "usd_per_btc")]
    pub scale: Option<u32>,
    /// The stablecoin's decimal display.
    #[arg(long, default_value_t = 6)]
    pub decimals: u8,
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
    /// A caveat given on the command line is invalid, or widens an earlier one.
    #[error("caveat refused: {source}{}", if *.allow_unknown_helps { "; pass --allow-unknown to add it anyway (tapgate itself will then refuse the token)" } else { "" })]
    Caveat {
        /// Why.
        #[source]
        source: CaveatError,
        /// Whether `--allow-unknown` would let it through: only for `token attenuate`, and
        /// only for a caveat tapgate does not recognise (never for a widening).
        allow_unknown_helps: bool,
    },
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
    /// `token verify` or `token revoke` found no root-key store where the settings point.
    #[error(
        "no root-key store at {}: tokens are verified and revoked against the store that minted them. Run where `tapgate token mint` ran, or point at its data directory with --set data_dir=DIR, TAPGATE_DATA_DIR=DIR or data_dir in --config FILE (default ./data)", path.display()
    )]
    NoStore {
        /// Where the store was looked for (`data_dir/tapgate.sqlite`).
        path: PathBuf,
    },
    /// `tapgate node` without a network file or configured nodes.
    #[cfg(feature = "node")]
    #[error(
        "no nodes are configured, so node {node:?} cannot be found: pass --network DIR/network.toml (written by `tapgate simnet --dir DIR` or integration/regtest/up.sh DIR) or --config FILE with a [nodes.{node}] section (e.g. config/polar.toml)"
    )]
    NoNodes {
        /// The node asked for.
        node: String,
    },
    /// The node refused to pay an expired invoice.
    #[cfg(feature = "node")]
    #[error("the invoice expired at {valid_until}; nothing was paid: ask the payee for a new one")]
    InvoiceExpired {
        /// The expiry, as the node reports it (lnd: `2026-11-29 23:47:11 +0000 UTC`).
        valid_until: String,
        /// The node's error.
        #[source]
        source: Box<crate::lightning::error::BackendError>,
    },
    /// `--max-usd` refuses the payment before paying.
    #[cfg(feature = "node")]
    #[error(transparent)]
    Cap(#[from] spend_cap::CapError),
    /// A payment under `--max-usd` failed after its fee limit was lowered to keep the cap.
    #[cfg(feature = "node")]
    #[error(
        "the payment failed with its routing fee limited to {} msat, all that --max-usd {} leaves after the invoice's ${}; nothing was paid. The route may need a higher fee: --max-usd {} would allow the whole --max-fee-msat {}",
        .cap.fee_limit_msat, .cap.max_usd, .cap.invoice_usd, .cap.usd_for_requested_fee_limit, .cap.requested_fee_limit_msat
    )]
    FailedUnderCap {
        /// The payment as planned under the cap.
        cap: Box<spend_cap::CappedPayment>,
        /// The node's error.
        #[source]
        source: Box<crate::lightning::error::BackendError>,
    },
    /// The payment succeeded but cost more than `--max-usd`: the edge's rate moved between
    /// tapgate's check and the quote tapd negotiated for the payment.
    #[cfg(feature = "node")]
    #[error(
        "the payment succeeded (its result, with the preimage, is on stdout) but cost ${spent_usd}, more than --max-usd {max_usd}: the edge's rate changed between tapgate's quote and the one tapd negotiated for the payment"
    )]
    CapBrokenAfterPayment {
        /// What was spent.
        spent_usd: rust_decimal::Decimal,
        /// The cap.
        max_usd: rust_decimal::Decimal,
    },
    /// `--max-usd` on a sats payment, with no rate to value sats in dollars.
    #[cfg(feature = "node")]
    #[error(
        "--max-usd on a sats payment needs the dollar value of a sat, and neither source has it: {node} has no asset channel to ask the edge for a quote, and the network names no price oracle (oracle_endpoint in network.toml); pay without --max-usd (--max-fee-msat still bounds the fee) or from a node with an asset channel"
    )]
    NoUsdRate {
        /// The paying node.
        node: String,
    },
    /// Node wiring problem (unknown node, unreadable network file, bad asset id).
    #[cfg(feature = "node")]
    #[error(transparent)]
    NodeSetup(#[from] crate::app::BuildError),
    /// A node call failed.
    #[cfg(feature = "node")]
    #[error(transparent)]
    Backend(crate::lightning::error::BackendError),
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
    /// Random source failure.
    #[error("cannot draw a token id from the OS random source")]
    Random(#[source] getrandom::Error),
    /// Writing to stdout failed.
    #[error("cannot print the result: {0}")]
    Output(#[from] serde_json::Error),
}

impl CliError {
    fn caveat(source: CaveatError) -> Self {
        CliError::Caveat {
            source,
            allow_unknown_helps: false,
        }
    }
}

#[cfg(feature = "node")]
impl From<crate::lightning::error::BackendError> for CliError {
    /// Node errors, with the ones a user acts on differently recognised by their text.
    fn from(e: crate::lightning::error::BackendError) -> Self {
        match expired_until(&e) {
            Some(valid_until) => CliError::InvoiceExpired {
                valid_until,
                source: Box::new(e),
            },
            None => CliError::Backend(e),
        }
    }
}

/// lnd refuses to pay an expired invoice with an RPC error "invoice expired. Valid until
/// 2026-11-29 23:47:11 +0000 UTC" (lightningnetwork/lnd lnrpc/routerrpc/router_backend.go,
/// v0.21.0-beta; tapd passes it on). The text sits in the gRPC status the error keeps as a
/// source; this returns the time after "Valid until".
#[cfg(feature = "node")]
fn expired_until(e: &crate::lightning::error::BackendError) -> Option<String> {
    const MARK: &str = "invoice expired. valid until ";
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(status) = err.downcast_ref::<tonic::Status>() {
            let message = status.message();
            // ASCII lower-casing keeps byte offsets, so the index applies to the original.
            if let Some(at) = message.to_ascii_lowercase().find(MARK) {
                let rest = message.get(at + MARK.len()..).unwrap_or_default();
                return Some(rest.trim().to_owned());
            }
        }
        next = err.source();
    }
    None
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
    // Colour only for a terminal: escape codes in a log file or a pipe are noise.
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

pub(crate) fn print_json(value: &serde_json::Value) -> Result<(), CliError> {
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
            // Refuse bad input before the store (and its file) is created.
            let request = MintRequest::parse(&args)?;
            let store = AnyStore::open(&settings).await?;
            print_json(&mint(&settings, &store, &request).await?)
        }
        Command::Token(TokenCommand::Verify(args)) => {
            let settings = sources.load()?;
            let store = open_existing_store(&settings).await?;
            print_json(&verify_cmd(&store, &args).await?)
        }
        Command::Token(TokenCommand::Revoke { token_id }) => {
            let id = TokenId::from_hex(token_id.trim()).map_err(|source| CliError::Identifier {
                what: "token id",
                source,
            })?;
            let settings = sources.load()?;
            let store = open_existing_store(&settings).await?;
            let revoked = store.revoke(&id).await?;
            print_json(&json!({ "token_id": id, "revoked": revoked }))
        }
    }
}

/// The configured store for a command that only reads or deletes keys: a SQLite store must
/// already exist, since opening one that does not would create an empty database (in the
/// current directory, by default) and then report every token as unknown.
async fn open_existing_store(settings: &Settings) -> Result<AnyStore, CliError> {
    #[cfg(feature = "sqlite")]
    if settings.store.backend == crate::config::StoreBackend::Sqlite {
        let path = settings.data_dir.join(crate::store::sqlite::FILE_NAME);
        if !path.exists() {
            return Err(CliError::NoStore { path });
        }
    }
    Ok(AnyStore::open(settings).await?)
}

/// `price convert`: the [`crate::pricing::Quote`] as JSON.
pub fn price_convert(args: &ConvertArgs) -> Result<serde_json::Value, CliError> {
    use crate::pricing::{FixedPoint, quote_usd, rate_from_usd_per_btc};
    let rate = match (&args.rate, args.usd_per_btc) {
        (Some(coefficient), _) => {
            FixedPoint::from_parts(coefficient.trim(), args.scale.unwrap_or(0))?
        }
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
///
/// Each caveat must parse (unless `--allow-unknown`) and must not widen an earlier one, by the
/// rules verification applies: a widened token would be refused by every tapgate anyway.
pub fn attenuate(args: &AttenuateArgs) -> Result<String, CliError> {
    let mut m = Macaroon::from_base64(args.macaroon.trim())?;
    let mut chain: Vec<Vec<u8>> = m
        .caveats()
        .filter(|c| !c.is_third_party())
        .map(|c| c.id.to_vec())
        .collect();
    for c in &args.caveats {
        if !args.allow_unknown {
            Caveat::parse(c).map_err(|source| CliError::Caveat {
                allow_unknown_helps: matches!(
                    source,
                    CaveatError::Unrecognized(_) | CaveatError::UnknownForService(_)
                ),
                source,
            })?;
        }
        chain.push(c.as_bytes().to_vec());
        check_narrowing(&chain).map_err(CliError::caveat)?;
        m.add_first_party_caveat(c.as_bytes())?;
    }
    Ok(m.to_base64())
}

/// Refuses a caveat chain in which a caveat widens an earlier one, using the L402 core's own
/// rules ([`caveat::evaluate`], as verification does). `evaluate` judges the `services`
/// caveats and the caveats of one service, so it runs once for every service the chain names;
/// its other refusals (a service missing, say) are for verification to report, not this.
fn check_narrowing(chain: &[Vec<u8>]) -> Result<(), CaveatError> {
    let mut services = BTreeSet::new();
    for text in chain.iter().filter_map(|c| std::str::from_utf8(c).ok()) {
        match Caveat::parse(text) {
            Ok(Caveat {
                service: Some(svc), ..
            }) => {
                services.insert(svc);
            }
            Ok(Caveat {
                condition: Condition::Services(list),
                ..
            }) => services.extend(list.into_iter().map(|s| s.name)),
            _ => {}
        }
    }
    for svc in &services {
        if let Err(e @ CaveatError::Widening(_)) =
            caveat::evaluate(chain.iter().map(Vec::as_slice), svc)
        {
            return Err(e);
        }
    }
    Ok(())
}

fn parse_service(s: &str) -> Result<String, CliError> {
    let (name, tier) = s.split_once(':').unwrap_or((s, "0"));
    let text = format!("services={name}:{tier}");
    match Caveat::parse(&text) {
        Ok(_) => Ok(format!("{name}:{tier}")),
        Err(_) => Err(CliError::BadService(s.to_owned())),
    }
}

/// `token mint`'s input, checked: nothing is stored until all of it is valid.
#[derive(Debug)]
pub struct MintRequest {
    payment_hash: PaymentHash,
    caveats: Vec<String>,
}

impl MintRequest {
    /// Checks the payment hash, the services and the caveats, including that no caveat
    /// widens an earlier one.
    pub fn parse(args: &MintArgs) -> Result<Self, CliError> {
        let payment_hash = PaymentHash::from_hex(args.payment_hash.trim()).map_err(|source| {
            CliError::Identifier {
                what: "payment hash",
                source,
            }
        })?;
        let services = args
            .services
            .iter()
            .map(|s| parse_service(s))
            .collect::<Result<Vec<_>, _>>()?;
        let mut caveats = vec![format!("services={}", services.join(","))];
        for c in &args.caveats {
            Caveat::parse(c).map_err(CliError::caveat)?;
            caveats.push(c.clone());
        }
        let chain: Vec<Vec<u8>> = caveats.iter().map(|c| c.as_bytes().to_vec()).collect();
        check_narrowing(&chain).map_err(CliError::caveat)?;
        Ok(Self {
            payment_hash,
            caveats,
        })
    }
}

/// `token mint`: a fresh token with its root key stored.
pub async fn mint(
    settings: &Settings,
    store: &impl RootKeyStore,
    request: &MintRequest,
) -> Result<serde_json::Value, CliError> {
    let MintRequest {
        payment_hash,
        caveats,
    } = request;
    let payment_hash = *payment_hash;
    let token_id = TokenId::generate().map_err(CliError::Random)?;
    let id = Identifier::new(payment_hash, token_id);
    let root_key = store.create(&token_id).await?;
    let mut m = Macaroon::new(&root_key, &id.encode(), &settings.l402.location);
    for c in caveats {
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
            Err(CliError::Caveat { .. })
        ));
        assert!(matches!(
            attenuate(&args("color=blue", false)),
            Err(CliError::Caveat { .. })
        ));
        assert!(attenuate(&args("color=blue", true)).is_ok());
    }

    fn attenuate_with(caveats: &[&str], allow_unknown: bool) -> Result<String, CliError> {
        attenuate(&AttenuateArgs {
            macaroon: MAC.into(),
            caveats: caveats.iter().map(|c| c.to_string()).collect(),
            allow_unknown,
        })
    }

    #[test]
    fn attenuate_refuses_a_widening_caveat() {
        for caveats in [
            &["svc_max_calls=5", "svc_max_calls=10"][..],
            &["svc_methods=GET", "svc_methods=GET,POST"],
            &["svc_valid_until=100", "svc_valid_until=101"],
            // MAC grants services=svc:0; adding a service or a tier widens it.
            &["services=svc:0,b:0"],
            &["services=svc:1"],
        ] {
            for allow_unknown in [false, true] {
                match attenuate_with(caveats, allow_unknown) {
                    Err(
                        e @ CliError::Caveat {
                            source: CaveatError::Widening(_),
                            ..
                        },
                    ) => assert!(!e.to_string().contains("--allow-unknown"), "{e}"),
                    other => panic!("{caveats:?}: {other:?}"),
                }
            }
        }
        // Narrowing, and caveats for different services, are fine.
        let out = attenuate_with(
            &["svc_max_calls=10", "svc_max_calls=5", "other_max_calls=50"],
            false,
        )
        .unwrap();
        assert_eq!(
            inspect(&out).unwrap()["caveats"].as_array().unwrap().len(),
            4
        );
    }

    #[test]
    fn mint_refuses_bad_caveats_without_suggesting_a_flag_it_lacks() {
        let args = |c: &str| MintArgs {
            payment_hash: "9f".repeat(32),
            services: vec!["svc".into()],
            caveats: vec![c.into()],
        };
        for c in ["color=blue", "svc_methods=get", "svc_region=eu"] {
            let e = MintRequest::parse(&args(c)).unwrap_err();
            assert!(matches!(e, CliError::Caveat { .. }), "{c}: {e:?}");
            assert!(!e.to_string().contains("--allow-unknown"), "{c}: {e}");
        }
        // `token attenuate` has the flag, and says so for what it would let through.
        let e = attenuate_with(&["color=blue"], false).unwrap_err();
        assert!(e.to_string().contains("--allow-unknown"), "{e}");
        let e = attenuate_with(&["svc_methods=get"], false).unwrap_err();
        assert!(!e.to_string().contains("--allow-unknown"), "{e}");
        let mut widening = args("svc_max_calls=5");
        widening.caveats.push("svc_max_calls=6".into());
        assert!(matches!(
            MintRequest::parse(&widening),
            Err(CliError::Caveat {
                source: CaveatError::Widening(_),
                ..
            })
        ));
    }

    #[cfg(feature = "node")]
    #[test]
    fn an_expired_invoice_is_reported_as_expired() {
        use crate::lightning::error::BackendError;
        for message in [
            // lnd's router, word for word.
            "invoice expired. Valid until 2026-11-29 23:47:11 +0000 UTC",
            // The same passed on inside another message.
            "unable to send payment: invoice expired. Valid until 2026-11-29 23:47:11 +0000 UTC",
        ] {
            let e = BackendError::from_status("SendPaymentV2", tonic::Status::unknown(message));
            let e = CliError::from(e);
            match &e {
                CliError::InvoiceExpired { valid_until, .. } => {
                    assert_eq!(valid_until, "2026-11-29 23:47:11 +0000 UTC")
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(
                e.to_string(),
                "the invoice expired at 2026-11-29 23:47:11 +0000 UTC; nothing was paid: ask the payee for a new one"
            );
        }
        let other = BackendError::from_status("SendPaymentV2", tonic::Status::unknown("boom"));
        assert!(matches!(CliError::from(other), CliError::Backend(_)));
    }
}
