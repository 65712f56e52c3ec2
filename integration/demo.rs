//! `tapgate demo` through the binary, as the README's first command: a simnet, the gateway and
//! three buyers in one process. The table must show the three services, alice on the asset
//! rail, bob on the sats rail, the seller's receipts, and the sub-agent refused `over_budget`;
//! `--json` says the same and carries no secret. With `TAPGATE_REGTEST_NETWORK` the same
//! scenario runs against the real regtest network. Nothing here is timed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Output;

use serde_json::Value;
use tapgate::client::ledger::{ClientLedger, FILE_NAME};

/// `tapgate demo ARGS` run in a fresh directory (no config/tapgate.toml to pick up); it must
/// exit 0.
fn demo(cwd: &std::path::Path, args: &[&str]) -> Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tapgate"))
        .arg("demo")
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tapgate demo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The table's rows as cells (columns are separated by two spaces or more), header first.
fn rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| !l.contains(" refused on ") && !l.contains(" payments ("))
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// The leading number of a cell such as `999,999 units`.
fn amount(cell: &str) -> u64 {
    cell.split(' ')
        .next()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap()
}

#[test]
fn the_demo_prints_who_paid_what_and_the_sub_agents_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo(dir.path(), &[]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let rows = rows(&stdout);
    let header = &rows[0];
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {header:?}"))
    };
    let (who, service, rail, received, result) = (
        col("who"),
        col("service"),
        col("rail"),
        col("seller received"),
        col("result"),
    );
    for r in &rows {
        assert_eq!(r.len(), header.len(), "{r:?} in\n{stdout}");
    }
    let find = |w: &str, s: &str| {
        rows.iter()
            .find(|r| r[who] == w && r[service] == s)
            .unwrap_or_else(|| panic!("no row for {w} on {s} in\n{stdout}"))
    };
    // alice pays the stablecoin for time and for echo's prepaid balance; the seller gets units.
    for s in ["time", "echo"] {
        let r = find("alice", s);
        assert_eq!(r[rail], "asset", "{r:?}");
        assert!(
            r[received].ends_with(" units") && amount(&r[received]) > 0,
            "{r:?}"
        );
        assert!(r[result].starts_with("200"), "{r:?}");
    }
    assert!(find("alice", "echo")[result].contains("balance $0.998"));
    // bob pays sats for weather; the seller gets msat.
    let r = find("bob", "weather");
    assert_eq!(r[rail], "sats", "{r:?}");
    assert!(
        r[received].ends_with(" msat") && amount(&r[received]) > 0,
        "{r:?}"
    );
    // The sub-agent's calls come from alice's balance until its budget refuses one.
    let sub: Vec<_> = rows
        .iter()
        .filter(|r| r[who] == "alice/sub-agent")
        .collect();
    assert!(sub.len() >= 2, "{stdout}");
    let (last, passed) = sub.split_last().unwrap();
    assert_eq!(last[result], "401 over_budget", "{stdout}");
    assert!(
        passed.iter().all(|r| r[result].starts_with("200")),
        "{stdout}"
    );
    assert!(
        sub.iter()
            .all(|r| r[service] == "echo" && r[rail] == "balance")
    );
    assert!(
        stdout.contains("alice/sub-agent refused on echo: over_budget: "),
        "{stdout}"
    );
    let summary = stdout.lines().last().unwrap();
    assert!(
        summary.starts_with("3 payments (2 in the stablecoin, 1 in sats)"),
        "{summary}"
    );
    assert!(summary.contains("refused over_budget"), "{summary}");
    // Progress went to stderr, and the run's temporary files are gone.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stopped cleanly"), "{stderr}");
}

/// The JSON report over the network `file` (or a simnet): three payments on the expected
/// rails, the seller paid, the sub-agent refused; and no token in the output.
fn check_json(args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("kept");
    let kept_arg = kept.display().to_string();
    let mut all = vec!["--json", "--dir", &kept_arg];
    all.extend_from_slice(args);
    let out = demo(dir.path(), &all);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = v["report"]["steps"].as_array().unwrap();
    let paid: Vec<_> = steps.iter().filter(|s| !s["rail"].is_null()).collect();
    let who_rail: Vec<_> = paid
        .iter()
        .map(|s| {
            (
                s["who"].as_str().unwrap(),
                s["service"].as_str().unwrap(),
                s["rail"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        who_rail,
        [
            ("alice", "time", "asset"),
            ("alice", "echo", "asset"),
            ("bob", "weather", "sats")
        ]
    );
    for s in &paid {
        let got = s["seller_units"].as_u64().or(s["seller_msat"].as_u64());
        assert!(got.unwrap_or(0) > 0, "{s}");
        assert_eq!(s["token_id"].as_str().map(str::len), Some(64), "{s}");
    }
    let sub: Vec<_> = steps
        .iter()
        .filter(|s| s["who"] == "alice/sub-agent")
        .collect();
    assert_eq!(sub.last().unwrap()["refusal"]["code"], "over_budget");
    assert!(sub[0]["refusal"].is_null() && sub[0]["status"] == 200);
    // The tokens alice and bob cached (kept with --dir) appear nowhere in the output: neither
    // macaroon nor preimage.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("L402 "), "{text}");
    let origin = v["report"]["gateway"].as_str().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (who, service) in [("alice", "time"), ("alice", "echo"), ("bob", "weather")] {
        let path = kept.join("demo").join(who).join(FILE_NAME);
        let token = runtime.block_on(async {
            let ledger = ClientLedger::open(&path).await.unwrap();
            ledger.token(origin, service, 0).await.unwrap()
        });
        let token = token.unwrap_or_else(|| panic!("{who} cached no token for {service}"));
        assert!(!text.contains(&token.macaroon), "{who}'s macaroon printed");
        assert!(
            !text.contains(&hex::encode(token.preimage.expose())),
            "{who}'s preimage printed"
        );
    }
}

#[test]
fn the_json_report_says_the_same_and_no_secret() {
    check_json(&[]);
}

#[test]
fn the_demo_runs_against_the_real_regtest_network() {
    let Some(file) = std::env::var_os("TAPGATE_REGTEST_NETWORK") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs against the real network: set TAPGATE_REGTEST_NETWORK"
        );
        eprintln!("TAPGATE_REGTEST_NETWORK not set: simnet only");
        return;
    };
    let file = std::path::PathBuf::from(file);
    check_json(&["--network", file.to_str().unwrap()]);
}
