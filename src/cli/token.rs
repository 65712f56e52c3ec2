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
use crate::l402::caveat::{self, Caveat, CaveatError};
use crate::l402::header::{self, HeaderError};
use crate::l402::{Identifier, Macaroon, PaymentHash, RequestContext, TokenId};
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
    /// The tokens `tapgate pay` cached (in DATA_DIR/tapgate-client.sqlite), expired ones
    /// flagged, with what each cost; never the macaroon or the preimage.
    #[cfg(feature = "sqlite")]
    List,
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
            print_json(&serde_json::to_value(decision)?)
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
    if settings.store.backend == crate::config::StoreBackend::Sqlite {
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
        caveat::check_narrowing(&chain).map_err(CliError::caveat)?;
        m.add_first_party_caveat(c.as_bytes())?;
    }
    Ok(m.to_base64())
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
