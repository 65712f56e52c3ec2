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
    assert!(
        stdout.contains("merchant received 1,000,000 units"),
        "{stdout}"
    );
}
