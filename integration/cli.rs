//! The `tapgate` binary end to end: configuration layering, token inspect/attenuate, and
//! mint → attenuate → verify → revoke against a real SQLite store across separate processes.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const MAC: &str = "AgEEbHNhdAJCAACfcuoM9JU248ZseH9wUYbfmkN4CDdTrpU21ls61/zdxDMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzAAIOc2VydmljZXM9c3ZjOjAAAAYgMhGOTzBwhH01+TTSs/Czt2wCshcooHKpXoye029+Ew0=";

fn tapgate(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tapgate"))
        .current_dir(dir)
        .env_remove("TAPGATE_CONFIG")
        .args(args)
        .output()
        .unwrap()
}

fn ok_json(dir: &Path, args: &[&str]) -> Value {
    let out = tapgate(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let out = tapgate(dir, args);
    assert!(
        !out.status.success(),
        "{args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn config_check_shows_layers_and_names_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let out = tapgate(p, &["config", "check"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("backend = \"sqlite\"") && text.contains("location = \"tapgate\""),
        "{text}"
    );

    std::fs::write(p.join("my.toml"), "[l402]\nlocation = \"from-file\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tapgate"))
        .current_dir(p)
        .env("TAPGATE_STORE__BACKEND", "memory")
        .args(["--config", "my.toml", "config", "check"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("from-file") && text.contains("backend = \"memory\""),
        "{text}"
    );

    std::fs::write(p.join("bad.toml"), "[l402]\nlocaton = \"typo\"\n").unwrap();
    let err = fails(p, &["--config", "bad.toml", "config", "check"]);
    assert!(err.contains("locaton"), "{err}");
    let err = fails(p, &["config", "check", "--set", "store.backend=mysql"]);
    assert!(
        err.contains("store.backend") && err.contains("memory"),
        "{err}"
    );
    let err = fails(p, &["--config", "missing.toml", "config", "check"]);
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn inspect_and_attenuate() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let v = ok_json(p, &["token", "inspect", MAC]);
    assert_eq!(v["version"], 0);
    assert_eq!(v["token_id"], "33".repeat(32));
    assert_eq!(v["caveats"], serde_json::json!(["services=svc:0"]));

    let out = tapgate(
        p,
        &[
            "token",
            "attenuate",
            MAC,
            "--caveat",
            "svc_methods=GET",
            "--caveat",
            "svc_max_calls=5",
        ],
    );
    assert!(out.status.success());
    let narrowed = String::from_utf8(out.stdout).unwrap();
    let v = ok_json(p, &["token", "inspect", narrowed.trim()]);
    assert_eq!(
        v["caveats"],
        serde_json::json!(["services=svc:0", "svc_methods=GET", "svc_max_calls=5"])
    );

    let err = fails(p, &["token", "inspect", "not-a-macaroon!"]);
    assert!(err.contains("not base64"), "{err}");
    let err = fails(p, &["token", "inspect", &format!("L402 {MAC}:abc")]);
    assert!(err.contains("preimage"), "{err}");
    let err = fails(
        p,
        &[
            "token",
            "attenuate",
            MAC,
            "--caveat",
            "svc_valid_until=soon",
        ],
    );
    assert!(err.contains("svc_valid_until"), "{err}");
}

#[test]
fn mint_attenuate_verify_revoke_with_the_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    // sha256 of 32 bytes of 0x22.
    let hash = "9f72ea0cf49536e3c66c787f705186df9a4378083753ae9536d65b3ad7fcddc4";
    let pre = "22".repeat(32);
    let minted = ok_json(
        p,
        &[
            "token",
            "mint",
            "--payment-hash",
            hash,
            "--service",
            "svc:1",
            "--caveat",
            "svc_valid_until=4000000000",
        ],
    );
    let mac = minted["macaroon"].as_str().unwrap();
    let token_id = minted["token_id"].as_str().unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(p.join("data/tapgate.sqlite"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A new process finds the root key in the database.
    let d = ok_json(
        p,
        &[
            "token",
            "verify",
            "--header",
            &format!("L402 {mac}:{pre}"),
            "--service",
            "svc",
        ],
    );
    assert_eq!(d["tier"], 1);
    assert_eq!(d["token_id"], token_id);
    assert_eq!(d["service"], "svc");

    let out = tapgate(
        p,
        &["token", "attenuate", mac, "--caveat", "svc_methods=GET"],
    );
    let narrowed = String::from_utf8(out.stdout).unwrap();
    let h = format!("L402 {}:{pre}", narrowed.trim());
    ok_json(
        p,
        &[
            "token",
            "verify",
            "--header",
            &h,
            "--service",
            "svc",
            "--method",
            "GET",
        ],
    );
    let err = fails(
        p,
        &[
            "token",
            "verify",
            "--header",
            &h,
            "--service",
            "svc",
            "--method",
            "POST",
        ],
    );
    assert!(err.contains("POST"), "{err}");
    let err = fails(
        p,
        &[
            "token",
            "verify",
            "--header",
            &h,
            "--service",
            "svc",
            "--now",
            "4000000000",
        ],
    );
    assert!(err.contains("expired"), "{err}");
    let err = fails(
        p,
        &[
            "token",
            "verify",
            "--header",
            &format!("L402 {mac}:{}", "23".repeat(32)),
            "--service",
            "svc",
        ],
    );
    assert!(err.contains("preimage"), "{err}");

    let r = ok_json(p, &["token", "revoke", token_id]);
    assert_eq!(r["revoked"], true);
    let err = fails(
        p,
        &[
            "token",
            "verify",
            "--header",
            &format!("L402 {mac}:{pre}"),
            "--service",
            "svc",
        ],
    );
    assert!(err.contains("unknown or revoked"), "{err}");
}

#[test]
fn price_convert_matches_tapds_arithmetic() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let q = ok_json(
        p,
        &[
            "price",
            "convert",
            "--usd",
            "1.00",
            "--usd-per-btc",
            "97123.45",
            "--decimals",
            "6",
        ],
    );
    assert_eq!(q["units"], 1_000_000);
    assert_eq!(q["msat"], 1_029_617);
    assert_eq!(q["units_from_msat"], 999_999);
    assert_eq!(q["min_transportable_units"], 343_817);
    let q = ok_json(
        p,
        &[
            "price",
            "convert",
            "--usd",
            "0.01",
            "--rate",
            "100000000000",
            "--scale",
            "0",
        ],
    );
    assert_eq!(q["msat"], 10_000);
    assert_eq!(q["asset_invoice_possible"], false);
    assert_eq!(q["min_transportable_msat"], 354_001);
    let err = fails(
        p,
        &[
            "price",
            "convert",
            "--usd",
            "0.0000001",
            "--rate",
            "100000000000",
        ],
    );
    assert!(err.contains("decimal display"), "{err}");
    let err = fails(p, &["price", "convert", "--usd", "1", "--rate", "abc"]);
    assert!(err.contains("abc"), "{err}");
}

/// The Polar scenario script, run against a simnet it starts itself: the same commands and
/// assertions a Polar user runs against real litd nodes.
#[cfg(feature = "node")]
#[test]
fn polar_script_passes_against_simnet() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("integration/polar/run.sh"))
        .arg("--simnet")
        .env("TAPGATE_POLAR_BIN", env!("CARGO_BIN_EXE_tapgate"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(", 0 failed"), "{stdout}");
    // simnet's ±1 % spread makes the edge's rate round: it forwards the floor, one unit short
    // (tapd v0.8.1 rfq/order.go).
    assert!(
        stdout.contains("merchant received 999999 units"),
        "{stdout}"
    );
}

#[test]
fn amounts_are_checked_where_they_are_read_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    // No network file exists: a value that got past the parser would fail on reading it.
    let node = |args: &[&str]| {
        let mut all = vec!["node", "--network", "missing.toml", "--node", "merchant"];
        all.extend_from_slice(args);
        fails(p, &all)
    };
    for usd in ["-1.00", "0", "0.00"] {
        for (flag, args) in [
            ("--usd", vec!["invoice", "--usd", usd]),
            ("--usd", vec!["quote", "--usd", usd]),
            ("--max-usd", vec!["pay", "lnbcrt1", "--max-usd", usd]),
        ] {
            let err = node(&args);
            assert!(
                err.contains(flag) && err.contains("not a positive dollar amount"),
                "{args:?}: {err}"
            );
        }
        let err = fails(
            p,
            &["price", "convert", "--usd", usd, "--usd-per-btc", "100000"],
        );
        assert!(err.contains("not a positive dollar amount"), "{err}");
    }
    let err = fails(
        p,
        &["price", "convert", "--usd", "1", "--usd-per-btc", "-100000"],
    );
    assert!(
        err.contains("--usd-per-btc") && err.contains("not a positive price"),
        "{err}"
    );
    // Beyond u64, and beyond lnd's int64: both are input errors that name --msat.
    for msat in ["99999999999999999999999", "18446744073709551615"] {
        let err = node(&["invoice", "--msat", msat]);
        assert!(
            err.contains("--msat") && err.contains("more than a node accepts"),
            "{err}"
        );
    }
    let err = node(&[
        "pay",
        "lnbcrt1",
        "--max-fee-msat",
        "99999999999999999999999",
    ]);
    assert!(err.contains("--max-fee-msat"), "{err}");
}

#[test]
fn contradicting_flags_are_refused_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let err = fails(
        p,
        &[
            "node",
            "--network",
            "missing.toml",
            "--node",
            "merchant",
            "invoice",
            "--msat",
            "5000",
            "--asset",
            "default",
        ],
    );
    assert!(err.contains("cannot be used with"), "{err}");
    let err = fails(
        p,
        &[
            "price",
            "convert",
            "--usd",
            "1",
            "--usd-per-btc",
            "100000",
            "--scale",
            "3",
        ],
    );
    assert!(
        err.contains("--scale") && err.contains("cannot be used with"),
        "{err}"
    );
}

#[cfg(feature = "node")]
#[test]
fn node_without_a_network_says_what_to_pass() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails(dir.path(), &["node", "--node", "alice", "info"]);
    for part in [
        "--network DIR/network.toml",
        "tapgate simnet --dir DIR",
        "integration/regtest/up.sh DIR",
        "--config FILE",
        "[nodes.alice]",
    ] {
        assert!(err.contains(part), "{part:?} missing: {err}");
    }
}

#[test]
fn token_mint_and_attenuate_refuse_bad_caveats_accurately() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let hash = "9f72ea0cf49536e3c66c787f705186df9a4378083753ae9536d65b3ad7fcddc4";
    for caveat in ["color=blue", "svc_max_calls=ten"] {
        let err = fails(
            p,
            &[
                "token",
                "mint",
                "--payment-hash",
                hash,
                "--service",
                "svc",
                "--caveat",
                caveat,
            ],
        );
        // mint has no --allow-unknown, so it must not suggest it.
        assert!(!err.contains("--allow-unknown"), "{err}");
        assert!(err.contains("caveat refused"), "{err}");
    }
    // Nothing was stored for refused input.
    assert!(!p.join("data").exists());

    let err = fails(
        p,
        &[
            "token",
            "attenuate",
            MAC,
            "--caveat",
            "svc_max_calls=5",
            "--caveat",
            "svc_max_calls=10",
        ],
    );
    assert!(
        err.contains("svc_max_calls") && err.contains("widens an earlier caveat"),
        "{err}"
    );
    let err = fails(
        p,
        &[
            "token",
            "attenuate",
            MAC,
            "--allow-unknown",
            "--caveat",
            "services=svc:0,extra:0",
        ],
    );
    assert!(err.contains("widens an earlier caveat"), "{err}");
}

#[test]
fn verify_and_revoke_without_a_store_say_where_they_looked() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let header = format!("L402 {MAC}:{}", "22".repeat(32));
    let err = fails(
        p,
        &["token", "verify", "--header", &header, "--service", "svc"],
    );
    for part in ["data/tapgate.sqlite", "--set data_dir=DIR", "--config FILE"] {
        assert!(err.contains(part), "{part:?} missing: {err}");
    }
    let err = fails(p, &["token", "revoke", &"33".repeat(32)]);
    assert!(err.contains("data/tapgate.sqlite"), "{err}");
    // And nothing was created in the working directory.
    assert!(!p.join("data").exists(), "an empty store was created");
    // Pointed elsewhere, it looks there.
    let err = fails(
        p,
        &[
            "--set",
            "data_dir=elsewhere",
            "token",
            "verify",
            "--header",
            &header,
            "--service",
            "svc",
        ],
    );
    assert!(err.contains("elsewhere/tapgate.sqlite"), "{err}");
}

#[test]
fn config_check_validates_network_ids_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let g = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    let set = |k: &str, v: &str| format!("{k}=\"{v}\"");
    let out = tapgate(
        p,
        &[
            "--set",
            &set("network.asset_id", &"7e".repeat(32)),
            "--set",
            &set("network.edge_pubkey", g),
            "config",
            "check",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (key, value) in [
        ("network.asset_id", "zz".to_string()),
        ("network.asset_id", "7e".repeat(31)),
        ("network.edge_pubkey", "00".to_string()),
        ("network.edge_pubkey", format!("04{}", &g[2..])),
    ] {
        let err = fails(p, &["--set", &set(key, &value), "config", "check"]);
        assert!(err.contains(key), "{key}={value}: {err}");
    }
}

#[test]
fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let out = tapgate(
        dir.path(),
        &[
            "token",
            "mint",
            "--payment-hash",
            "9f72ea0cf49536e3c66c787f705186df9a4378083753ae9536d65b3ad7fcddc4",
            "--service",
            "svc",
        ],
    );
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    // The store logs its migration at info level: there is a log line to look at.
    assert!(log.contains("migrated"), "{log}");
    assert!(!log.contains('\u{1b}'), "{log:?}");
}

/// A `tapgate simnet` process for one test, stopped (by its own pid) when dropped.
#[cfg(feature = "node")]
struct Simnet {
    child: std::process::Child,
    dir: tempfile::TempDir,
    info: Value,
}

#[cfg(feature = "node")]
impl Simnet {
    /// 3,600 s quotes, as on the real networks, so the default 300 s asset invoices are valid
    /// (simnet's default follows tapd's sample oracle: 60 s above 100,000 units).
    const ARGS: [&str; 2] = ["--quote-lifetime-secs", "3600"];

    fn start() -> Self {
        Self::start_with(&Self::ARGS)
    }

    fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (child, info) = Self::spawn(dir.path(), extra);
        Simnet { child, dir, info }
    }

    /// `tapgate simnet --dir net EXTRA…` in `cwd`, once its nodes listen.
    fn spawn(cwd: &Path, extra: &[&str]) -> (std::process::Child, Value) {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_tapgate"))
            .current_dir(cwd)
            .env_remove("TAPGATE_CONFIG")
            .args(["simnet", "--dir", "net"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The start-up JSON is printed once the nodes listen; it ends with a lone "}".
        let mut text = String::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            text.push_str(&line);
            if line == "}" {
                break;
            }
        }
        let info = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (child, info)
    }

    /// Ctrl-C: SIGINT to the process, then its exit; returns how long it took and its stderr.
    fn interrupt(&mut self) -> (std::time::Duration, String) {
        self.signal("-INT")
    }

    /// `kill SIGNAL pid`, then the process's exit: how long it took, and its stderr.
    fn signal(&mut self, signal: &str) -> (std::time::Duration, String) {
        use std::io::Read;
        let pid = self.child.id().to_string();
        let sent = std::time::Instant::now();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        let took = sent.elapsed();
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut stderr).unwrap();
        }
        assert!(status.success(), "simnet exited with {status}: {stderr}");
        (took, stderr)
    }

    /// Stops this simnet and starts it again on the same directory.
    fn restart(&mut self) {
        if self.child.try_wait().unwrap().is_none() {
            self.interrupt();
        }
        let (child, info) = Self::spawn(self.dir.path(), &Self::ARGS);
        self.child = child;
        self.info = info;
    }

    fn pubkeys(&self) -> Vec<String> {
        self.info["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["pubkey"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The preimage bob learns paying a fresh 10-sat invoice from the merchant.
    fn paid_preimage(&self) -> String {
        let inv = self.invoice("merchant", &["--msat", "10000"]);
        let v = self.ok("bob", &["pay", &inv]);
        v["payment"]["preimage"].as_str().unwrap().to_owned()
    }

    fn network(&self) -> String {
        self.dir
            .path()
            .join("net/network.toml")
            .to_string_lossy()
            .into_owned()
    }

    fn run(&self, node: &str, args: &[&str]) -> Output {
        let network = self.network();
        let mut all = vec!["node", "--network", &network, "--node", node];
        all.extend_from_slice(args);
        tapgate(self.dir.path(), &all)
    }

    fn ok(&self, node: &str, args: &[&str]) -> Value {
        let out = self.run(node, args);
        assert!(
            out.status.success(),
            "{node} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn fails(&self, node: &str, args: &[&str]) -> String {
        let out = self.run(node, args);
        assert!(
            !out.status.success(),
            "{node} {args:?} should fail: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// A new invoice from `payee`: `--usd X` (asset) or `--msat N` (sats), with extra flags.
    fn invoice(&self, payee: &str, args: &[&str]) -> String {
        let mut all = vec!["invoice"];
        all.extend_from_slice(args);
        let v = self.ok(payee, &all);
        let inv = &v["invoice"];
        inv["invoice"]["payment_request"]
            .as_str()
            .or_else(|| inv["payment_request"].as_str())
            .unwrap()
            .to_owned()
    }

    fn units(&self, node: &str) -> u64 {
        self.ok(node, &["balance"])["asset"]["units"]
            .as_u64()
            .unwrap()
    }

    fn sats_msat(&self, node: &str) -> u64 {
        self.ok(node, &["balance"])["sats"]["local_msat"]
            .as_u64()
            .unwrap()
    }
}

#[cfg(feature = "node")]
impl Drop for Simnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(feature = "node")]
fn usd(v: &Value) -> rust_decimal::Decimal {
    v.as_str().unwrap().parse().unwrap()
}

/// simnet's edge charges 1,000 msat + 1,000 ppm and sells at 101e9 units per BTC: a $1.00 asset
/// invoice is 1,010,101 msat, its fee 2,010 msat, and paying it spends $1.022233. Before the
/// fix, `--max-usd 1.0205` checked the fee-free preview ($1.020202) and paid $1.022233.
#[cfg(feature = "node")]
#[test]
fn node_pay_max_usd_is_a_hard_cap_that_includes_routing_fees() {
    let net = Simnet::start();
    let a0 = net.units("alice");
    let inv = net.invoice("merchant", &["--usd", "1.00"]);

    // The fee the edge charges does not fit under the cap: the fee limit is lowered to what
    // the cap leaves (295 msat), the node finds no route within it, nothing is spent.
    let err = net.fails(
        "alice",
        &["pay", &inv, "--asset", "default", "--max-usd", "1.0205"],
    );
    assert!(
        err.contains("routing fee limited to 295 msat") && err.contains("nothing was paid"),
        "{err}"
    );
    assert_eq!(net.units("alice"), a0);

    // The invoice alone is over the cap: refused before paying, naming cap, price and fee.
    let err = net.fails(
        "alice",
        &["pay", &inv, "--asset", "default", "--max-usd", "1.00"],
    );
    for part in [
        "more than --max-usd 1.00",
        "$1.020203",
        "10000 msat",
        "nothing was paid",
    ] {
        assert!(err.contains(part), "{part:?} missing: {err}");
    }
    assert_eq!(net.units("alice"), a0);

    // Room for the fee but not for the whole --max-fee-msat: paid, within the cap.
    let v = net.ok(
        "alice",
        &["pay", &inv, "--asset", "default", "--max-usd", "1.025"],
    );
    assert_eq!(v["fee_limit_msat"], 4_750);
    let spent = v["payment"]["units_spent"].as_u64().unwrap();
    assert!(usd(&v["usd_spent"]) <= "1.025".parse().unwrap(), "{v}");
    assert!(usd(&v["cap"]["worst_case_usd"]) <= "1.025".parse().unwrap());
    assert_eq!(net.units("alice"), a0 - spent);

    // Sats under a dollar cap: bob has no asset channel, so sats are valued at the edge's
    // price oracle. 500,000 msat + 10,000 msat of fee limit is $0.5151 at 101e9 units per BTC.
    let inv = net.invoice("merchant", &["--msat", "500000"]);
    let b0 = net.sats_msat("bob");
    let err = net.fails("bob", &["pay", &inv, "--max-usd", "0.40"]);
    assert!(err.contains("more than --max-usd 0.40"), "{err}");
    assert_eq!(net.sats_msat("bob"), b0);
    let v = net.ok("bob", &["pay", &inv, "--max-usd", "0.60"]);
    assert_eq!(v["cap"]["rate_source"], "price_oracle");
    assert_eq!(v["cap"]["worst_case_usd"], "0.515100");
    let paid =
        v["payment"]["value_msat"].as_u64().unwrap() + v["payment"]["fee_msat"].as_u64().unwrap();
    assert_eq!(net.sats_msat("bob"), b0 - paid);
}

#[cfg(feature = "node")]
#[test]
fn paying_an_expired_invoice_says_it_expired() {
    let net = Simnet::start();
    let inv = net.invoice("merchant", &["--msat", "500000", "--expiry", "1"]);
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    for (payer, extra) in [("bob", &[][..]), ("alice", &["--asset", "default"][..])] {
        let mut args = vec!["pay", inv.as_str()];
        args.extend_from_slice(extra);
        let err = net.fails(payer, &args);
        assert!(
            err.starts_with("error: the invoice expired at ")
                && err.contains(" UTC; nothing was paid: ask the payee for a new one"),
            "{payer}: {err}"
        );
    }
}

#[cfg(feature = "node")]
#[test]
fn node_errors_do_not_repeat_themselves() {
    let net = Simnet::start();
    // A status from the node: its message once, no "caused by: code: '…', message: …".
    let err = net.fails("bob", &["pay", "lnbcrt1notaninvoice"]);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("caused by"), "{err}");

    // A transport failure: alice's endpoint moved to a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let alice = net.info["nodes"][0]["endpoint"].as_str().unwrap();
    let text = std::fs::read_to_string(net.network()).unwrap();
    let moved = net.dir.path().join("moved.toml");
    std::fs::write(&moved, text.replace(alice, &format!("127.0.0.1:{port}"))).unwrap();
    let err = fails(
        net.dir.path(),
        &[
            "node",
            "--network",
            moved.to_str().unwrap(),
            "--node",
            "alice",
            "info",
        ],
    );
    assert!(err.contains("cannot connect"), "{err}");
    assert_eq!(err.matches("Connection refused").count(), 1, "{err}");
    assert!(!err.contains("transport error"), "{err}");
}

/// Each network draws its secrets from the OS: two networks share no node key and no preimage.
/// A restart on the same directory keeps the node keys and still draws new preimages. `--seed`
/// makes a network reproducible.
#[cfg(feature = "node")]
#[test]
fn simnet_secrets_are_fresh_per_network_and_kept_per_directory() {
    let mut a = Simnet::start();
    let b = Simnet::start();
    let (keys_a, keys_b) = (a.pubkeys(), b.pubkeys());
    assert_eq!(keys_a.len(), 4);
    assert!(
        keys_a.iter().all(|k| !keys_b.contains(k)),
        "{keys_a:?} {keys_b:?}"
    );
    let (pa, pb) = (a.paid_preimage(), b.paid_preimage());
    assert_eq!(pa.len(), 64);
    assert_ne!(pa, pb, "two networks, two preimages");

    let cert = a.dir.path().join("net/volumes/litd/alice/lnd/tls.cert");
    let cert_before = std::fs::read(&cert).unwrap();
    a.restart();
    assert_eq!(a.pubkeys(), keys_a, "a restart keeps the node identities");
    assert_eq!(
        std::fs::read(&cert).unwrap(),
        cert_before,
        "and the TLS certificate"
    );
    let again = a.paid_preimage();
    assert_ne!(again, pa, "a restart never reuses a preimage");
    let state = std::fs::read_to_string(a.dir.path().join("net/simnet.toml")).unwrap();
    assert!(state.contains("runs = 2"), "{state}");

    let mut args = Simnet::ARGS.to_vec();
    args.extend(["--seed", "7"]);
    let (s1, s2) = (Simnet::start_with(&args), Simnet::start_with(&args));
    assert_eq!(s1.pubkeys(), s2.pubkeys(), "--seed: the same keys");
    assert_eq!(
        s1.paid_preimage(),
        s2.paid_preimage(),
        "--seed: the same preimages"
    );
    assert!(s1.pubkeys().iter().all(|k| !keys_a.contains(k)));
}

/// One simnet per directory: a second one fails at once naming the first's pid. Ctrl-C stops
/// the first within SHUTDOWN_GRACE (400 ms) plus process exit and removes network.toml.
#[cfg(feature = "node")]
#[test]
fn one_simnet_per_directory_and_ctrl_c_stops_it_cleanly() {
    let mut net = Simnet::start();
    let pid = net.child.id();
    let started = std::time::Instant::now();
    let second = tapgate(net.dir.path(), &["simnet", "--dir", "net"]);
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("a simnet is already running on") && err.contains(&format!("(pid {pid})")),
        "{err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "fails at once"
    );
    // The first one is untouched: its nodes still answer.
    net.ok("alice", &["info"]);

    // A client holding a connection open does not hold the shutdown up.
    let (took, stderr) = net.interrupt();
    eprintln!("simnet stopped {took:?} after SIGINT");
    assert!(took < std::time::Duration::from_secs(3), "took {took:?}");
    assert!(stderr.contains("simnet stopped in"), "{stderr}");
    assert!(
        !net.dir.path().join("net/network.toml").exists(),
        "no stale network.toml"
    );
    // The lock went with the process: the directory can be run again.
    net.restart();
    net.ok("alice", &["info"]);
    // SIGTERM (a service manager, `kill`) stops it the same way.
    let (took, stderr) = net.signal("-TERM");
    assert!(took < std::time::Duration::from_secs(3), "took {took:?}");
    assert!(stderr.contains("simnet stopped in"), "{stderr}");
    assert!(!net.dir.path().join("net/network.toml").exists());
}

/// On a default simnet (quotes as tapd's sample oracle gives them: 60 s above 100,000 units)
/// an asset invoice with the default expiry is created; one that outlives its quote is refused
/// saying so.
#[cfg(feature = "node")]
#[test]
fn default_asset_invoice_expiry_fits_the_sample_oracles_quotes() {
    let net = Simnet::start_with(&[]);
    let v = net.ok("merchant", &["invoice", "--usd", "1.00"]);
    assert_eq!(v["kind"], "asset", "{v}");
    let err = net.fails("merchant", &["invoice", "--usd", "1.00", "--expiry", "300"]);
    assert!(
        err.contains("every quote expires before the invoice would"),
        "{err}"
    );
}

/// The shipped simnet configuration passes `config check` once TAPGATE_SIMNET_DIR is set, shows
/// its services, and a bad price or a missing variable is refused naming the key.
#[test]
fn simnet_config_checks_with_its_directory_and_names_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/simnet.toml");
    let check = |config: &Path, simnet_dir: Option<&Path>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tapgate"));
        cmd.current_dir(p).env_remove("TAPGATE_CONFIG");
        match simnet_dir {
            Some(d) => cmd.env("TAPGATE_SIMNET_DIR", d),
            None => cmd.env_remove("TAPGATE_SIMNET_DIR"),
        };
        cmd.arg("--config")
            .arg(config)
            .args(["config", "check"])
            .output()
            .unwrap()
    };

    let out = check(&shipped, Some(p));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for part in [
        "[[services]]",
        "name = \"weather\"",
        "settlement = \"sats\"",
        "name = \"llm\"",
        "asset = \"default\"",
        "listen = \"127.0.0.1:8402\"",
    ] {
        assert!(text.contains(part), "{part}:\n{text}");
    }

    let out = check(&shipped, None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("network.file") && err.contains("TAPGATE_SIMNET_DIR"),
        "{err}"
    );

    let original = std::fs::read_to_string(&shipped).unwrap();
    let bad = original.replace("price_usd = \"0.02\"", "price_usd = \"0.0000001\"");
    assert_ne!(bad, original, "the llm service's price moved");
    std::fs::write(p.join("bad.toml"), bad).unwrap();
    let out = check(&p.join("bad.toml"), Some(p));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("services.1.price_usd") && err.contains("decimal places"),
        "{err}"
    );
}

/// `network.file` is read at start-up: `tapgate node --config config/simnet.toml` finds the
/// running simnet through `TAPGATE_SIMNET_DIR`, with no `--network`.
#[cfg(feature = "node")]
#[test]
fn config_simnet_toml_reaches_a_running_simnet() {
    let net = Simnet::start();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/simnet.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_tapgate"))
        .current_dir(net.dir.path())
        .env_remove("TAPGATE_CONFIG")
        .env("TAPGATE_SIMNET_DIR", net.dir.path().join("net"))
        .arg("--config")
        .arg(&shipped)
        .args(["node", "--node", "alice", "info"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["lnd"]["pubkey"], net.pubkeys()[0].as_str(), "{info}");
}
