//! Runs the L402 clients that are not tapgate's (integration/clients/: lsat-js and the Python
//! `bolt11` decoder) on a `WWW-Authenticate` value and reads what they make of it.
//!
//! Shared by the test crates that need it. Each integration test is a crate of its own, so a
//! test includes this file by path (a plain `mod clients;` would find both `clients.rs` and
//! `clients/`):
//!
//! ```ignore
//! #[path = "clients/foreign.rs"]
//! mod foreign;
//! if !foreign::available() { return; } // skips locally, panics under CI
//! let parsed = foreign::parse_with_foreign_clients(&www_authenticate);
//! ```
//!
//! The scripts' I/O contract is written at the top of `js/parse.js` and `py/parse.py`; the
//! structs below mirror it.

#![allow(clippy::unwrap_used, dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    root().join(".venv/bin/python")
}

fn js_dir() -> PathBuf {
    root().join("integration/clients/js")
}

/// What is missing to run both clients, if anything.
fn missing() -> Option<String> {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node {
        return Some("no `node` on PATH".into());
    }
    if !js_dir().join("node_modules/lsat-js/package.json").exists() {
        return Some("integration/clients/js/node_modules/lsat-js is missing".into());
    }
    let bolt11 = Command::new(python())
        .args(["-c", "import bolt11"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !bolt11 {
        return Some("the Python package bolt11 does not import in .venv".into());
    }
    None
}

/// Whether both clients can run. When not: under CI (`CI` set) this panics, so CI cannot skip
/// the test; elsewhere it says why on stderr and returns `false`.
pub fn available() -> bool {
    let Some(why) = missing() else { return true };
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the foreign L402 clients, but {why}: run `bash .ci/setup-interop`"
    );
    eprintln!("skipping: {why} (run `bash .ci/setup-interop` to install the L402 clients)");
    false
}

/// A client's refusal: `{"ok": false, "stage", "error"}`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Refusal {
    /// Where it refused: lsat-js `challenge` or `preimage`; bolt11 `header` or `decode`.
    pub stage: String,
    /// The library's message.
    pub error: String,
}

/// lsat-js's identifier fields (`Identifier.fromString` on the macaroon's identifier).
#[derive(Clone, Debug, Deserialize)]
pub struct LsatJsIdentifier {
    pub version: u16,
    pub payment_hash: String,
    pub token_id: String,
}

/// The macaroon as lsat-js's macaroon library imported it.
#[derive(Clone, Debug, Deserialize)]
pub struct LsatJsMacaroon {
    pub location: String,
    pub identifier_hex: String,
    pub signature_hex: String,
}

/// One caveat as lsat-js's `Caveat.decode` split it.
#[derive(Clone, Debug, Deserialize)]
pub struct LsatJsCaveat {
    pub condition: String,
    pub comp: String,
    pub value: String,
    /// `Caveat#encode()`: condition, comparator, value.
    pub encoded: String,
}

/// What lsat-js (`Lsat.fromHeader`) made of a challenge; see `js/parse.js`.
#[derive(Clone, Debug, Deserialize)]
pub struct LsatJs {
    pub scheme: String,
    /// From the invoice (lsat-js does not compare it with the macaroon's).
    pub payment_hash: String,
    pub invoice: String,
    /// Whole sats; 0 when the invoice's msat are not whole sats.
    pub invoice_amount_sat: u64,
    /// lsat-js's bolt11 decode, as the decimal string it gives.
    pub invoice_amount_msat: Option<String>,
    pub identifier: LsatJsIdentifier,
    pub macaroon: LsatJsMacaroon,
    pub caveats: Vec<LsatJsCaveat>,
    /// lsat-js reads only its own `expiration=` caveat; 0 without one.
    pub valid_until: u64,
    pub is_expired: bool,
    pub is_pending: bool,
    /// `Lsat#toToken()` before payment: `LSAT <macaroon>:`.
    pub token: String,
    /// `Lsat#toToken()` after `setPreimage`, when a preimage was given.
    pub authorization: Option<String>,
    pub is_satisfied: Option<bool>,
    /// `Lsat.fromToken` on the given `authorization` input, when one was given.
    pub parsed_authorization: Option<Value>,
}

/// What the Python `bolt11` package made of the challenge's invoice; see `py/parse.py`.
#[derive(Clone, Debug, Deserialize)]
pub struct Bolt11Py {
    pub scheme: String,
    pub invoice: String,
    pub currency: String,
    pub network_prefix: String,
    pub payment_hash: String,
    pub amount_msat: Option<u64>,
    pub timestamp: u64,
    pub expiry: u64,
    pub description: Option<String>,
    pub description_hash: Option<String>,
    pub payee: String,
    pub payment_secret: Option<String>,
    pub min_final_cltv_expiry: u64,
    pub features: Option<Value>,
    pub strict_error: Option<String>,
}

/// Both clients' readings of one challenge, already checked to agree with each other.
#[derive(Clone, Debug)]
pub struct ForeignParse {
    pub lsat_js: LsatJs,
    pub bolt11_py: Bolt11Py,
}

/// Runs one program on one JSON object (stdin) and returns the one JSON object it prints,
/// panicking with its stderr when it fails or prints something else. Shared with
/// integration/go_clients.rs, whose Go readers follow the same I/O contract.
pub fn run_json(mut cmd: Command, name: &str, input: &Value) -> Value {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{name} did not start: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name} exited with {}: {stderr}",
        out.status
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{name} printed no JSON ({e}): {}{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs one script on one JSON object and returns its parsed answer, or its refusal.
fn run_script<T: for<'de> Deserialize<'de>>(
    cmd: Command,
    name: &str,
    input: &Value,
) -> Result<T, Refusal> {
    let v = run_json(cmd, name, input);
    if v["ok"] == true {
        Ok(serde_json::from_value(v.clone())
            .unwrap_or_else(|e| panic!("{name}'s answer does not match its contract ({e}): {v}")))
    } else {
        Err(serde_json::from_value(v.clone())
            .unwrap_or_else(|e| panic!("{name}'s refusal does not match its contract ({e}): {v}")))
    }
}

/// lsat-js on `{"www_authenticate", "preimage"?, "authorization"?}` (keys with `None` left out).
pub fn lsat_js(
    www_authenticate: &str,
    preimage_hex: Option<&str>,
    authorization: Option<&str>,
) -> Result<LsatJs, Refusal> {
    let mut input = json!({ "www_authenticate": www_authenticate });
    if let Some(p) = preimage_hex {
        input["preimage"] = p.into();
    }
    if let Some(a) = authorization {
        input["authorization"] = a.into();
    }
    let mut cmd = Command::new("node");
    cmd.arg(js_dir().join("parse.js"));
    run_script(cmd, "lsat-js (integration/clients/js/parse.js)", &input)
}

/// The Python `bolt11` decoder on the challenge's invoice.
pub fn bolt11_py(www_authenticate: &str) -> Result<Bolt11Py, Refusal> {
    let mut cmd = Command::new(python());
    cmd.arg(root().join("integration/clients/py/parse.py"));
    run_script(
        cmd,
        "bolt11 (integration/clients/py/parse.py)",
        &json!({ "www_authenticate": www_authenticate }),
    )
}

/// Feeds one `WWW-Authenticate` value to both clients. Panics if either refuses it, or if they
/// disagree on the invoice or its payment hash, or if the macaroon's identifier (as lsat-js
/// reads it) does not commit to the invoice's payment hash.
pub fn parse_with_foreign_clients(www_authenticate: &str) -> ForeignParse {
    let lsat_js = lsat_js(www_authenticate, None, None)
        .unwrap_or_else(|r| panic!("lsat-js refused {www_authenticate:?}: {r:?}"));
    let bolt11_py = bolt11_py(www_authenticate)
        .unwrap_or_else(|r| panic!("Python bolt11 refused {www_authenticate:?}: {r:?}"));
    assert_eq!(lsat_js.invoice, bolt11_py.invoice, "the same invoice");
    assert_eq!(lsat_js.payment_hash, bolt11_py.payment_hash);
    assert_eq!(
        lsat_js.identifier.payment_hash, lsat_js.payment_hash,
        "the macaroon commits to the invoice's payment hash"
    );
    ForeignParse { lsat_js, bolt11_py }
}

/// The `Authorization` value lsat-js sends once the challenge's invoice is paid.
pub fn lsat_js_authorization(www_authenticate: &str, preimage_hex: &str) -> String {
    let parsed = lsat_js(www_authenticate, Some(preimage_hex), None)
        .unwrap_or_else(|r| panic!("lsat-js refused the preimage: {r:?}"));
    assert_eq!(parsed.is_satisfied, Some(true));
    parsed.authorization.unwrap()
}
