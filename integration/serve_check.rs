//! `tapgate serve --check` through the binary, against a simnet started with `tapgate simnet
//! --dir`: every check passes on a good configuration; a node that is down, a taken port and
//! an unreachable PostgreSQL server each fail their own line (the others still run) with a
//! non-zero exit; the password in `store.url` is never printed. Every run of the binary is
//! bounded, so a hang fails the test instead of holding it up.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The longest a `serve --check` may take here: well above its own 15 s bound per check.
const RUN_BOUND: Duration = Duration::from_secs(60);

/// A `tapgate simnet --dir net` in a temporary directory, killed when dropped.
struct Simnet {
    child: Child,
    dir: tempfile::TempDir,
}

impl Simnet {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tapgate"))
            .current_dir(dir.path())
            .env_remove("TAPGATE_CONFIG")
            .args(["simnet", "--dir", "net"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The start-up JSON is printed once the nodes listen; it ends with a lone "}".
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            if line.unwrap() == "}" {
                break;
            }
        }
        assert!(
            dir.path().join("net/network.toml").exists(),
            "simnet did not start"
        );
        Simnet { child, dir }
    }

    fn network_file(&self) -> PathBuf {
        self.dir.path().join("net/network.toml")
    }
}

impl Drop for Simnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A local address nothing listens on: port 1 (tcpmux) is privileged and unused on a test
/// machine, where a port picked by binding port 0 and releasing it may be handed to another
/// test's listener a moment later.
const CLOSED: &str = "127.0.0.1:1";

/// A configuration selling one service per rail on `network`. Both listeners are on port 0,
/// which always binds: a taken port is set by the test that wants one.
fn config(dir: &Path, network: &Path, extra: &str) -> PathBuf {
    let file = dir.join("tapgate.toml");
    let text = format!(
        r#"data_dir = "{data}"
{extra}
[network]
file = "{network}"

[gateway]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[[services]]
name = "weather"
paths = ["/v1/weather"]
upstream = "http://127.0.0.1:9"
price_usd = "0.01"
settlement = "sats"

[[services]]
name = "time"
paths = ["/v1/time"]
upstream = "http://127.0.0.1:9"
price_usd = "0.50"
settlement = {{ asset = "default" }}
"#,
        data = dir.join("data").display(),
        network = network.display(),
    );
    std::fs::write(&file, text).unwrap();
    file
}

/// A simnet, a working directory, and a configuration there on the simnet's network.
fn setup(extra: &str) -> (Simnet, tempfile::TempDir, PathBuf) {
    let net = Simnet::start();
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), &net.network_file(), extra);
    (net, dir, file)
}

struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The line for check `name` (`ok   store: …`).
    fn line(&self, name: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| {
                l.get(5..)
                    .is_some_and(|rest| rest.starts_with(&format!("{name}:")))
            })
            .unwrap_or_else(|| panic!("no line for {name}:\n{}", self.stdout))
    }

    fn assert_ok(&self, name: &str) {
        let line = self.line(name);
        assert!(line.starts_with("ok   "), "{line}\n{}", self.stdout);
    }

    fn assert_fail(&self, name: &str) -> &str {
        let line = self.line(name);
        assert!(line.starts_with("FAIL "), "{line}\n{}", self.stdout);
        line
    }
}

/// `tapgate ARGS…` in `cwd`, killed (and the test failed) if it outlives [`RUN_BOUND`].
fn tapgate(cwd: &Path, args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tapgate"))
        .current_dir(cwd)
        .env_remove("TAPGATE_CONFIG")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tapgate {args:?} hung for more than {RUN_BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Run {
        success: status.success(),
        stdout,
        stderr,
    }
}

fn check(cwd: &Path, config: &Path, extra: &[&str]) -> Run {
    let config = config.to_str().unwrap();
    let mut args = vec!["--config", config, "serve", "--check"];
    args.extend_from_slice(extra);
    tapgate(cwd, &args)
}

#[test]
fn a_good_configuration_passes_every_check() {
    let (_net, dir, file) = setup("");
    let run = check(dir.path(), &file, &[]);
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    for name in [
        "store",
        "lnd merchant",
        "tapd merchant",
        "gateway",
        "listen",
        "admin_listen",
    ] {
        run.assert_ok(name);
    }
    assert!(run.line("store").contains("sqlite"), "{}", run.stdout);
    assert!(
        run.line("lnd merchant").contains("(merchant)"),
        "{}",
        run.stdout
    );
    let asset = run
        .stdout
        .lines()
        .find(|l| l.starts_with("ok   asset "))
        .unwrap_or_else(|| panic!("no asset line:\n{}", run.stdout));
    assert!(asset.contains("known to tapd merchant"), "{asset}");
    assert!(!run.stdout.contains("FAIL"), "{}", run.stdout);
    assert!(
        run.line("listen").contains("127.0.0.1:0 can be bound"),
        "{}",
        run.stdout
    );

    // The same as one JSON object.
    let run = check(dir.path(), &file, &["--json"]);
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    let checks = v["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["status"] == "ok"), "{v}");
    assert!(checks.iter().any(|c| c["check"] == "lnd merchant"), "{v}");
}

#[test]
fn a_node_that_is_down_fails_its_line_and_the_store_still_passes() {
    let net = Simnet::start();
    let dir = tempfile::tempdir().unwrap();
    // The network file as written, but merchant's lnd where nothing listens.
    let mut network: toml::Table = std::fs::read_to_string(net.network_file())
        .unwrap()
        .parse()
        .unwrap();
    let nodes = network["nodes"].as_array_mut().unwrap();
    let merchant = nodes
        .iter_mut()
        .find(|n| n["name"].as_str() == Some("merchant"))
        .unwrap();
    merchant["lnd_endpoint"] = toml::Value::String(CLOSED.to_owned());
    let copy = dir.path().join("network.toml");
    std::fs::write(&copy, toml::to_string(&network).unwrap()).unwrap();

    let file = config(dir.path(), &copy, "");
    let run = check(dir.path(), &file, &[]);
    assert!(!run.success, "{}", run.stdout);
    let line = run.assert_fail("lnd merchant");
    assert!(
        line.contains(CLOSED) && line.contains("check that the node is running"),
        "{line}"
    );
    run.assert_ok("store");
    run.assert_ok("tapd merchant");
    run.assert_ok("listen");
    run.assert_ok("admin_listen");
    assert!(run.line("gateway").starts_with("skip "), "{}", run.stdout);
    assert!(run.stderr.contains("a check failed"), "{}", run.stderr);
}

#[test]
fn a_taken_listen_port_fails_listen_only() {
    let (_net, dir, file) = setup("");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let config = file.to_str().unwrap();
    let set = format!("gateway.listen={addr}");
    let run = tapgate(
        dir.path(),
        &["--config", config, "--set", &set, "serve", "--check"],
    );
    assert!(!run.success, "{}", run.stdout);
    let line = run.assert_fail("listen");
    assert!(
        line.contains(&addr) && line.contains("gateway.listen"),
        "{line}"
    );
    for name in [
        "store",
        "lnd merchant",
        "tapd merchant",
        "gateway",
        "admin_listen",
    ] {
        run.assert_ok(name);
    }
    drop(taken);
}

#[test]
fn an_unreachable_postgres_fails_the_store_and_never_prints_its_password() {
    let extra = format!("[store]\nurl = \"postgres://u:secret@{CLOSED}/db\"\n");
    let (_net, dir, file) = setup(&extra);
    let run = check(dir.path(), &file, &[]);
    assert!(!run.success, "{}", run.stdout);
    let line = run.assert_fail("store");
    assert!(
        line.contains(CLOSED) && line.contains("check that the server is running"),
        "{line}"
    );
    run.assert_ok("lnd merchant");
    run.assert_ok("listen");
    assert!(run.line("gateway").starts_with("skip "), "{}", run.stdout);
    assert!(!run.stdout.contains("secret"), "{}", run.stdout);
    assert!(!run.stderr.contains("secret"), "{}", run.stderr);
    let run = check(dir.path(), &file, &["--json"]);
    assert!(!run.success);
    assert!(!run.stdout.contains("secret") && !run.stderr.contains("secret"));
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["ok"], false);
}

#[test]
fn a_bad_value_is_the_error_serve_gives_and_simnet_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bad = ["--set", "gateway.listen=nonsense", "serve"];
    let serve = tapgate(dir.path(), &bad);
    let mut with_check = bad.to_vec();
    with_check.push("--check");
    let checked = tapgate(dir.path(), &with_check);
    assert!(!serve.success && !checked.success);
    assert!(
        checked.stderr.contains("gateway.listen"),
        "{}",
        checked.stderr
    );
    assert_eq!(serve.stderr, checked.stderr);

    let run = tapgate(dir.path(), &["serve", "--simnet", "--check"]);
    assert!(!run.success);
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
}

#[test]
fn an_asset_tapd_does_not_know_fails_its_line_and_the_gateway_still_wires() {
    let (_net, dir, file) = setup("");
    let unknown = "01".repeat(32);
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("asset = \"default\"", &format!("asset = \"{unknown}\""));
    std::fs::write(&file, text).unwrap();
    let run = check(dir.path(), &file, &[]);
    assert!(!run.success, "{}", run.stdout);
    let line = run.assert_fail(&format!("asset {unknown}"));
    assert!(
        line.contains("does not know asset") && line.contains("services.*.settlement.asset"),
        "{line}"
    );
    run.assert_ok("tapd merchant");
    run.assert_ok("gateway");
}
