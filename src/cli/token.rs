//! `tapgate token inspect|attenuate|mint|verify|revoke|list`: parse, call the library, print.
//!
//! `inspect` and `attenuate` work on a macaroon alone (no store, no root key): they show a
//! macaroon's contents, never its signature, and narrow it by the protocol's own rules.
//! `mint`, `verify` and `revoke` go through [`crate::mint`] against the configured store; this
//! file only turns flags into its arguments (the time `verify` judges at included) and its
//! results into JSON. `mint` and `attenuate` print whole macaroons, which are bearer
//! credentials; root keys are never printed. `list` (feature `sqlite`) shows the tokens the
//! client (`tapgate pay`) cached in its ledger, through [`crate::client::ledger::TokenRow`],
//! which holds neither macaroon nor preimage.

use clap::{Args, Subcommand};
use serde_json::json;

use super::error::CliError;
use super::output::print_json;
use crate::config::{Settings, Sources};
use crate::l402::caveat::{self, Caveat, CaveatError, Condition, ServiceTier};
use crate::l402::header::{self, Credential, HeaderError};
use crate::l402::verify::VerifyError;
use crate::l402::{Identifier, Macaroon, PaymentHash, Preimage, RequestContext, TokenId};
use crate::mint::{Mint, MintRequest, Minted};
use crate::store::AnyStore;

/// `tapgate token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Show what a macaroon, an `L402 …` credential or a challenge contains (nothing secret).
    Inspect {
        /// Base64 macaroon, `L402 <macaroon>:<preimage>`, or `L402 macaroon="…", invoice="…"`.
        input: String,
    },
    /// Narrow a token for a sub-agent (budget, call cap, expiry, methods; no root key needed)
    /// and print the narrower token: a credential `<macaroon>:<preimage>` if one came in.
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
    /// The tokens `tapgate pay` cached (in DATA_DIR/tapgate-client.sqlite), expired ones
    /// flagged, with what each cost; never the macaroon or the preimage.
    #[cfg(feature = "sqlite")]
    List,
}

/// `tapgate token attenuate`
#[derive(Debug, Default, Args)]
#[command(after_help = "\
Examples:
  tapgate token attenuate 'L402 AgEH…:9f3c…' --budget-usd 0.50 --max-calls 100 --valid-for 10m
  tapgate token attenuate AgEH… --services weather --methods GET --budget-usd-per-day 0.10

Given a credential (with its preimage), the output is the narrower credential
<macaroon>:<preimage>, to send as `Authorization: L402 <output>`; given a bare macaroon, the
narrower macaroon. No root key is needed. A flag that would widen the token (a higher budget, a
later expiry, more methods) is refused.")]
pub struct AttenuateArgs {
    /// The token: a base64 macaroon, or a credential `<macaroon>:<preimage>` (also as
    /// `L402 <macaroon>:<preimage>`). With a preimage the output is the credential
    /// `<macaroon>:<preimage>`, usable directly as `Authorization: L402 <output>`.
    #[arg(value_name = "TOKEN")]
    pub macaroon: String,
    /// A raw caveat `key=value`; repeat for several, applied in order after the flags' caveats.
    #[arg(long = "caveat", value_name = "KEY=VALUE")]
    pub caveats: Vec<String>,
    /// The services the flags below apply to (comma separated), which the token is also
    /// narrowed to. Default: the token's one service; required when it grants several.
    #[arg(long, value_delimiter = ',', value_name = "NAME[,NAME…]")]
    pub services: Vec<String>,
    /// Spending cap in dollars (`<svc>_budget_usd`), counted by the gateway against this
    /// token and every token narrowed from it.
    #[arg(long, value_name = "USD")]
    pub budget_usd: Option<String>,
    /// Spending cap in dollars per UTC day (`<svc>_budget_usd_per_day`).
    #[arg(long, value_name = "USD")]
    pub budget_usd_per_day: Option<String>,
    /// Call cap (`<svc>_max_calls`).
    #[arg(long, value_name = "N")]
    pub max_calls: Option<u64>,
    /// Expiry from now (`<svc>_valid_until`): `90s`, `10m`, `2h`, `7d`, or seconds.
    #[arg(long, value_name = "DURATION")]
    pub valid_for: Option<String>,
    /// Capabilities kept (`<svc>_capabilities`), comma separated.
    #[arg(long, value_name = "LIST")]
    pub capabilities: Option<String>,
    /// HTTP methods allowed (`<svc>_methods`), comma separated, upper case: `GET,POST`.
    #[arg(long, value_name = "LIST")]
    pub methods: Option<String>,
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

/// Runs `tapgate token …`.
pub async fn run(command: TokenCommand, sources: &Sources) -> Result<(), CliError> {
    match command {
        TokenCommand::Inspect { input } => print_json(&inspect(&input)?),
        TokenCommand::Attenuate(args) => {
            println!("{}", attenuate(&args)?);
            Ok(())
        }
        TokenCommand::Mint(args) => {
            let settings = sources.load()?;
            // Refuse bad input before the store (and its file) is created.
            let request = mint_request(&args)?;
            let store = AnyStore::open(&settings).await?;
            let minted = mint_of(store, &settings).mint(&request).await?;
            print_json(&minted_json(&minted))
        }
        TokenCommand::Verify(args) => {
            let settings = sources.load()?;
            let store = open_existing_store(&settings).await?;
            let values: Vec<&str> = args.headers.iter().map(|h| strip_header_name(h)).collect();
            let ctx = RequestContext {
                service: &args.service,
                method: &args.method,
                path: &args.path,
                now: args
                    .now
                    .unwrap_or_else(|| crate::clock::Clock::now_unix(&crate::clock::SystemClock)),
            };
            let decision = mint_of(store, &settings).verify(&values, &ctx).await?;
            // The decision is for the service asked about; it is named here, not copied into
            // every decision on the request path.
            let mut out = serde_json::to_value(decision)?;
            out["service"] = json!(args.service);
            print_json(&out)
        }
        TokenCommand::Revoke { token_id } => {
            let id = TokenId::from_hex(token_id.trim()).map_err(|source| CliError::Identifier {
                what: "token id",
                source,
            })?;
            let settings = sources.load()?;
            let store = open_existing_store(&settings).await?;
            let revoked = mint_of(store, &settings).revoke(&id).await?;
            print_json(&json!({ "token_id": id, "revoked": revoked }))
        }
        #[cfg(feature = "sqlite")]
        TokenCommand::List => {
            use crate::client::ledger::{ClientLedger, FILE_NAME};
            let settings = sources.load()?;
            let ledger = ClientLedger::open(&settings.data_dir.join(FILE_NAME)).await?;
            let now = crate::clock::Clock::now_unix(&crate::clock::SystemClock);
            print_json(&json!({ "tokens": ledger.tokens(now).await? }))
        }
    }
}

/// The mint over the configured store, its macaroons naming `l402.location`.
fn mint_of(store: AnyStore, settings: &Settings) -> Mint<AnyStore> {
    Mint::new(store, settings.l402.location.clone())
}

/// The time `token verify` judges at without `--now`: this machine's clock, unix seconds. The
/// mint never reads a clock itself; the command line is where "now" is decided.
/// The configured store for a command that only reads or deletes keys: a SQLite store must
/// already exist, since opening one that does not would create an empty database (in the
/// current directory, by default) and then report every token as unknown.
async fn open_existing_store(settings: &Settings) -> Result<AnyStore, CliError> {
    #[cfg(feature = "sqlite")]
    if settings.store.backend() == crate::config::StoreBackend::Sqlite {
        let path = settings.data_dir.join(crate::store::sqlite::FILE_NAME);
        if !path.exists() {
            return Err(CliError::NoStore { path });
        }
    }
    Ok(AnyStore::open(settings).await?)
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

/// `token attenuate`: the narrower macaroon (standard base64), or the narrower credential
/// `<macaroon>:<preimage>` when the input carried a preimage. `--valid-for` counts from this
/// machine's clock.
pub fn attenuate(args: &AttenuateArgs) -> Result<String, CliError> {
    attenuate_at(
        args,
        crate::clock::Clock::now_unix(&crate::clock::SystemClock),
    )
}

/// [`attenuate`] with `--valid-for` counted from `now` (unix seconds).
///
/// The flags become caveats first (`services`, then for each service `_valid_until`,
/// `_methods`, `_capabilities`, `_budget_usd`, `_budget_usd_per_day`, `_max_calls`), then the
/// raw `--caveat`s in order. Each must parse (unless `--allow-unknown`, for raw caveats) and
/// must not widen an earlier one, by the rules verification applies: a widened token would be
/// refused by every tapgate anyway.
pub fn attenuate_at(args: &AttenuateArgs, now: u64) -> Result<String, CliError> {
    let (mut m, preimage) = token_of(&args.macaroon)?;
    let mut chain: Vec<Vec<u8>> = m
        .caveats()
        .filter(|c| !c.is_third_party())
        .map(|c| c.id.to_vec())
        .collect();
    let flagged = flag_caveats(args, &chain, now)?;
    if flagged.is_empty() && args.caveats.is_empty() {
        return Err(CliError::NothingToAttenuate);
    }
    for c in &flagged {
        Caveat::parse(c).map_err(CliError::caveat)?;
    }
    for c in flagged.iter().chain(&args.caveats) {
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
        caveat::check_narrowing(&chain).map_err(CliError::caveat)?;
        m.add_first_party_caveat(c.as_bytes())?;
    }
    Ok(match preimage {
        Some(p) => format!("{}:{}", m.to_base64(), hex::encode(p.expose())),
        None => m.to_base64(),
    })
}

/// The macaroon of `input` (a bare macaroon, or a credential with or without its `L402`
/// scheme and header name) and the preimage that came with it.
fn token_of(input: &str) -> Result<(Macaroon, Option<Preimage>), CliError> {
    let t = strip_header_name(input);
    if !t.contains(':') {
        return Ok((Macaroon::from_base64(t)?, None));
    }
    let scheme = t.split([' ', '\t']).next().unwrap_or("");
    let is_l402 = scheme.eq_ignore_ascii_case("L402") || scheme.eq_ignore_ascii_case("LSAT");
    let cred = if is_l402 {
        header::parse_credential(t)?
    } else {
        header::parse_credential(&format!("L402 {t}"))?
    };
    let Credential {
        mut macaroons,
        preimage,
        ..
    } = cred;
    if macaroons.len() != 1 {
        return Err(
            HeaderError::Malformed("attenuate takes one macaroon, not a discharge list").into(),
        );
    }
    let m = macaroons.remove(0);
    if let Ok(id) = Identifier::decode(m.identifier())
        && !preimage.payment_hash().ct_eq(&id.payment_hash)
    {
        return Err(VerifyError::PreimageMismatch.into());
    }
    Ok((m, Some(preimage)))
}

/// The caveats `token attenuate`'s flags ask for, given the token's caveats so far.
fn flag_caveats(
    args: &AttenuateArgs,
    chain: &[Vec<u8>],
    now: u64,
) -> Result<Vec<String>, CliError> {
    let scoped = args.budget_usd.is_some()
        || args.budget_usd_per_day.is_some()
        || args.max_calls.is_some()
        || args.valid_for.is_some()
        || args.capabilities.is_some()
        || args.methods.is_some();
    if !scoped && args.services.is_empty() {
        return Ok(Vec::new());
    }
    // What the token grants now: its last `services` caveat (later ones only narrow).
    let granted: Option<Vec<ServiceTier>> = chain
        .iter()
        .rev()
        .filter_map(|c| std::str::from_utf8(c).ok())
        .filter_map(|c| match Caveat::parse(c) {
            Ok(Caveat {
                condition: Condition::Services(list),
                ..
            }) => Some(list),
            _ => None,
        })
        .next();
    let names = |list: &[ServiceTier]| list.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    let mut out = Vec::new();
    let targets: Vec<String> = match (&granted, args.services.is_empty()) {
        (Some(list), true) => match list.as_slice() {
            [only] => vec![only.name.clone()],
            _ => {
                return Err(CliError::AmbiguousService {
                    granted: names(list),
                });
            }
        },
        (None, true) => return Err(CliError::AmbiguousService { granted: vec![] }),
        (Some(list), false) => {
            let mut kept = Vec::new();
            for name in &args.services {
                let tier = list.iter().find(|s| s.name == *name).ok_or_else(|| {
                    CliError::ServiceNotGranted {
                        name: name.clone(),
                        granted: names(list),
                    }
                })?;
                kept.push(format!("{}:{}", tier.name, tier.tier));
            }
            if kept.len() < list.len() {
                out.push(format!("services={}", kept.join(",")));
            }
            args.services.clone()
        }
        // No services caveat to narrow: the flags apply to the names given.
        (None, false) => args.services.clone(),
    };
    let valid_until = args
        .valid_for
        .as_deref()
        .map(|d| parse_duration(d).map(|secs| now.saturating_add(secs)))
        .transpose()?;
    for svc in &targets {
        if let Some(t) = valid_until {
            out.push(format!("{svc}_valid_until={t}"));
        }
        if let Some(m) = &args.methods {
            out.push(format!("{svc}_methods={m}"));
        }
        if let Some(c) = &args.capabilities {
            out.push(format!("{svc}_capabilities={c}"));
        }
        if let Some(b) = &args.budget_usd {
            out.push(format!("{svc}_budget_usd={b}"));
        }
        if let Some(b) = &args.budget_usd_per_day {
            out.push(format!("{svc}_budget_usd_per_day={b}"));
        }
        if let Some(n) = args.max_calls {
            out.push(format!("{svc}_max_calls={n}"));
        }
    }
    Ok(out)
}

/// `90s`, `10m`, `2h`, `7d` or bare seconds, as seconds.
fn parse_duration(text: &str) -> Result<u64, CliError> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((at, c)) if c.is_ascii_alphabetic() => (&t[..at], c),
        _ => (t, 's'),
    };
    let per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return Err(CliError::BadDuration(text.to_owned())),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(per))
        .filter(|_| !digits.is_empty())
        .ok_or_else(|| CliError::BadDuration(text.to_owned()))
}

/// `token mint`'s flags, checked by the mint: nothing is stored until all of them are valid.
pub fn mint_request(args: &MintArgs) -> Result<MintRequest, CliError> {
    let payment_hash =
        PaymentHash::from_hex(args.payment_hash.trim()).map_err(|source| CliError::Identifier {
            what: "payment hash",
            source,
        })?;
    Ok(MintRequest::new(
        payment_hash,
        &args.services,
        &args.caveats,
    )?)
}

/// `token mint`'s output: the token, its id, its payment hash and its caveats.
fn minted_json(minted: &Minted) -> serde_json::Value {
    json!({
        "macaroon": minted.macaroon.to_base64(),
        "token_id": minted.token_id,
        "payment_hash": minted.payment_hash,
        "caveats": minted.caveats,
    })
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
            ..AttenuateArgs::default()
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
            ..AttenuateArgs::default()
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

    /// A token for services `svc` and `b`, and its preimage (the reference vector's key and
    /// identifier, whose preimage is 0x22…).
    fn two_service_credential() -> String {
        let mut m = Macaroon::from_base64(MAC).unwrap();
        // MAC grants svc only; mint a fresh one for two services instead.
        m = Macaroon::new(
            &crate::l402::RootKey::from_bytes([0x11; 32]),
            m.identifier(),
            "lsat",
        );
        m.add_first_party_caveat(b"services=svc:0,b:1").unwrap();
        format!("L402 {}:{}", m.to_base64(), "22".repeat(32))
    }

    fn flags(token: &str) -> AttenuateArgs {
        AttenuateArgs {
            macaroon: token.into(),
            ..AttenuateArgs::default()
        }
    }

    #[test]
    fn scoped_flags_become_caveats_and_the_preimage_comes_along() {
        let cred = format!("{MAC}:{}", "22".repeat(32));
        let args = AttenuateArgs {
            budget_usd: Some("0.50".into()),
            budget_usd_per_day: Some("0.10".into()),
            max_calls: Some(100),
            valid_for: Some("10m".into()),
            methods: Some("GET".into()),
            capabilities: Some("read".into()),
            ..flags(&cred)
        };
        let out = attenuate_at(&args, 1_000).unwrap();
        let (mac, pre) = out.split_once(':').unwrap();
        assert_eq!(pre, "22".repeat(32));
        assert_eq!(
            inspect(mac).unwrap()["caveats"],
            json!([
                "services=svc:0",
                "svc_valid_until=1600",
                "svc_methods=GET",
                "svc_capabilities=read",
                "svc_budget_usd=0.50",
                "svc_budget_usd_per_day=0.10",
                "svc_max_calls=100"
            ])
        );
        // The output is a credential as the gateway reads it, and as this command reads it.
        let h = inspect(&format!("L402 {out}")).unwrap();
        assert_eq!(h["preimage_matches_payment_hash"], true);
        let again = attenuate_at(
            &AttenuateArgs {
                budget_usd: Some("0.25".into()),
                ..flags(&format!("Authorization: L402 {out}"))
            },
            1_000,
        )
        .unwrap();
        assert!(again.ends_with(&"22".repeat(32)));
        // A bare macaroon in, a bare macaroon out.
        let bare = attenuate_at(
            &AttenuateArgs {
                max_calls: Some(1),
                ..flags(MAC)
            },
            0,
        )
        .unwrap();
        assert!(!bare.contains(':'));
    }

    #[test]
    fn scoped_flags_need_one_service_and_never_widen() {
        let two = two_service_credential();
        let e = attenuate_at(
            &AttenuateArgs {
                budget_usd: Some("1".into()),
                ..flags(&two)
            },
            0,
        )
        .unwrap_err();
        assert!(matches!(e, CliError::AmbiguousService { .. }), "{e}");
        assert!(e.to_string().contains("--services"), "{e}");
        let out = attenuate_at(
            &AttenuateArgs {
                budget_usd: Some("1".into()),
                services: vec!["b".into()],
                ..flags(&two)
            },
            0,
        )
        .unwrap();
        let (mac, _) = out.split_once(':').unwrap();
        assert_eq!(
            inspect(mac).unwrap()["caveats"],
            json!(["services=svc:0,b:1", "services=b:1", "b_budget_usd=1"])
        );
        let e = attenuate_at(
            &AttenuateArgs {
                services: vec!["zzz".into()],
                max_calls: Some(1),
                ..flags(&two)
            },
            0,
        )
        .unwrap_err();
        assert!(matches!(e, CliError::ServiceNotGranted { .. }), "{e}");
        // A higher budget than the parent's is a widening, refused.
        let parent = attenuate_at(
            &AttenuateArgs {
                budget_usd: Some("0.50".into()),
                ..flags(MAC)
            },
            0,
        )
        .unwrap();
        let e = attenuate_at(
            &AttenuateArgs {
                budget_usd: Some("0.60".into()),
                ..flags(&parent)
            },
            0,
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                CliError::Caveat {
                    source: CaveatError::Widening(_),
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("widens"), "{e}");
        // Nothing to add, a bad duration, a wrong preimage.
        assert!(matches!(
            attenuate_at(&flags(MAC), 0),
            Err(CliError::NothingToAttenuate)
        ));
        let e = attenuate_at(
            &AttenuateArgs {
                valid_for: Some("10 weeks".into()),
                ..flags(MAC)
            },
            0,
        )
        .unwrap_err();
        assert!(matches!(e, CliError::BadDuration(_)), "{e}");
        let wrong = format!("{MAC}:{}", "23".repeat(32));
        assert!(matches!(
            attenuate_at(
                &AttenuateArgs {
                    max_calls: Some(1),
                    ..flags(&wrong)
                },
                0
            ),
            Err(CliError::Refused(VerifyError::PreimageMismatch))
        ));
    }

    #[test]
    fn durations_parse() {
        for (text, secs) in [
            ("90s", 90),
            ("10m", 600),
            ("2h", 7_200),
            ("7d", 604_800),
            ("45", 45),
        ] {
            assert_eq!(parse_duration(text).unwrap(), secs, "{text}");
        }
        for text in ["", "m", "-5m", "1.5h", "3w", "99999999999999999999d"] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }

    #[test]
    fn mint_refuses_bad_caveats_without_suggesting_a_flag_it_lacks() {
        let args = |c: &str| MintArgs {
            payment_hash: "9f".repeat(32),
            services: vec!["svc".into()],
            caveats: vec![c.into()],
        };
        for c in ["color=blue", "svc_methods=get", "svc_region=eu"] {
            let e = mint_request(&args(c)).unwrap_err();
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
            mint_request(&widening),
            Err(CliError::Caveat {
                source: CaveatError::Widening(_),
                ..
            })
        ));
    }
}
