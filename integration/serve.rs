//! `tapgate serve --simnet` as a new user runs it (README's first run): the binary starts a
//! simnet, the sample upstream and the gateway in one process; an HTTP client gets a `402` with
//! the dollar price, `tapgate node … pay` pays it, and the retry gets `200`. Its JSON logs carry
//! no secret, its admin port counts the payment, and SIGTERM stops it cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// One HTTP/1.1 request over a fresh connection; status, headers (lower-cased names), body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect::<Vec<_>>();
    // Bodies here are small JSON; a chunked one is de-chunked crudely.
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        out
    } else {
        body.to_owned()
    };
    (status, headers, body)
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn a_first_run_sells_a_paid_call_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let simnet_dir = dir.path().join("sim");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tapgate"))
        .current_dir(dir.path())
        .env_remove("TAPGATE_CONFIG")
        .env("RUST_LOG", "info")
        .args([
            "--log-format",
            "json",
            "--set",
            "gateway.listen=127.0.0.1:0",
            "--set",
            "gateway.admin_listen=127.0.0.1:0",
            "serve",
            "--simnet",
            "--simnet-dir",
        ])
        .arg(&simnet_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The start-up JSON (pretty-printed) on stdout.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "serve exited: {text}"
        );
        text.push_str(&line);
        if line == "}\n" {
            break;
        }
    }
    let started: Value = serde_json::from_str(&text).unwrap();
    let addr = started["listen"].as_str().unwrap().to_owned();
    let admin = started["admin_listen"].as_str().unwrap().to_owned();
    let network = started["simnet_network_file"].as_str().unwrap().to_owned();
    assert_eq!(started["services"][0]["name"], "weather");

    // A priced endpoint without a token: 402, the dollar price, the invoice.
    let (status, h, body) = http(&addr, "GET", "/v1/weather", &[]);
    assert_eq!(status, 402, "{body}");
    let challenge: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(challenge["price_usd"], "0.01");
    let invoice = challenge["invoice"].as_str().unwrap().to_owned();
    let macaroon = challenge["macaroon"].as_str().unwrap().to_owned();
    assert!(header(&h, "www-authenticate").unwrap().contains(&invoice));

    // Paid with the CLI, as README shows.
    let paid = Command::new(env!("CARGO_BIN_EXE_tapgate"))
        .current_dir(dir.path())
        .args([
            "node",
            "--network",
            &network,
            "--node",
            "bob",
            "pay",
            &invoice,
        ])
        .output()
        .unwrap();
    assert!(
        paid.status.success(),
        "{}",
        String::from_utf8_lossy(&paid.stderr)
    );
    let outcome: Value = serde_json::from_slice(&paid.stdout).unwrap();
    let preimage = outcome["payment"]["preimage"].as_str().unwrap().to_owned();

    let auth = format!("L402 {macaroon}:{preimage}");
    let (status, h, body) = http(&addr, "GET", "/v1/weather", &[("Authorization", &auth)]);
    assert_eq!(status, 200, "{body}");
    let receipt = header(&h, "tapgate-receipt").unwrap();
    assert!(
        receipt.contains("charged_usd=0.00; token_price_usd=0.01; rail=sats"),
        "{receipt}"
    );
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["conditions"], "sunny", "{answer}");
    assert_eq!(answer["tapgate"]["x-tapgate-service"], "weather");

    // The admin port: health, and the payment counted in dollars.
    let (status, _, _) = http(&admin, "GET", "/healthz", &[]);
    assert_eq!(status, 200);
    let (_, _, metrics) = http(&admin, "GET", "/metrics", &[]);
    assert!(
        metrics.lines().any(
            |l| l.starts_with("tapgate_payments_usd_micro_total{replica=\"")
                && l.ends_with(",service=\"weather\",rail=\"sats\"} 10000")
        ),
        "{metrics}"
    );

    // SIGTERM: a clean stop, and logs without secrets.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("tapgate stopped in"), "{err}");
    let mut json_lines = 0;
    for line in err.lines().filter(|l| l.starts_with('{')) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.get("level").is_some());
        json_lines += 1;
    }
    assert!(json_lines > 0, "JSON log lines expected: {err}");
    assert!(!err.contains(&preimage), "a preimage reached the logs");
    assert!(
        !err.contains(&macaroon[..40]),
        "a macaroon reached the logs"
    );
}
