//! simnet's lnd REST API, driven over HTTPS by a real client: `integration/rest/client.py`
//! (Python's standard library: `urllib.request` with `ssl.create_default_context(cafile=
//! tls.cert)`, hostname checked) walks through what an L402 client does against lnd's REST
//! gateway and prints every status and body, and this test holds them to lnd's REST API (lnd
//! v0.21.0-beta `lnrpc/lightning.yaml`, `lnrpc/routerrpc/router.yaml`, JSON with
//! `lnrpc.RESTJsonMarshalOpts`, errors as grpc-gateway v2.16.0 writes them).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tapgate::simnet::run::NetworkFile;

mod common;
use common::start_simnet;

/// `python3 integration/rest/client.py NETWORK_FILE` (`$PYTHON` overrides the interpreter;
/// 3.11+ for `tomllib`).
fn client(network_file: &Path) -> std::process::Command {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/rest/client.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let mut command = std::process::Command::new(python);
    command.arg(script).arg(network_file);
    command
}

/// Runs the Python client against `network_file` and parses what it prints.
fn run_client(network_file: &Path) -> Value {
    let out = client(network_file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the Python client (3.11+ needed): {e}"));
    assert!(
        out.status.success(),
        "client.py failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "client.py printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// grpc-gateway's error body: `{"code", "message", "details": []}` with the mapped status.
fn assert_error(call: &Value, http: u64, code: u64) -> String {
    assert_eq!(call["status"], http, "{call}");
    let body = &call["body"];
    assert_eq!(body["code"], code, "{call}");
    assert_eq!(body["details"], Value::Array(vec![]), "{call}");
    assert_eq!(body.as_object().unwrap().len(), 3, "{call}");
    assert_eq!(call["content_type"], "application/json");
    body["message"].as_str().unwrap().to_owned()
}

/// An int64/uint64 field: a JSON string holding a decimal integer.
fn int64(v: &Value) -> i64 {
    v.as_str()
        .unwrap_or_else(|| panic!("64-bit integers are strings in lnd's REST JSON: {v}"))
        .parse()
        .unwrap()
}

fn base64_bytes(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_l402_client_pays_through_lnds_rest_api() {
    let (running, _dir) = start_simnet().await;
    let network = NetworkFile::read(running.network_file()).unwrap();
    let file = running.network_file().to_owned();
    let r = tokio::task::spawn_blocking(move || run_client(&file))
        .await
        .unwrap();

    // getinfo, by name and by IP, with each node's admin macaroon.
    for node in &network.nodes {
        let call = &r["getinfo"][&node.name];
        assert_eq!(call["status"], 200, "{call}");
        assert_eq!(call["content_type"], "application/json");
        assert_eq!(call["body"]["identity_pubkey"], node.pubkey.as_str());
        int64(&call["body"]["best_header_timestamp"]);
        assert!(call["body"]["block_height"].is_u64(), "uint32 is a number");
        assert!(call["body"]["uris"].is_array());
    }
    assert_eq!(r["getinfo_by_ip"]["status"], 200);
    let alice = network.node("alice").unwrap();
    assert_eq!(
        r["getinfo_by_ip"]["body"]["identity_pubkey"],
        alice.pubkey.as_str()
    );
    assert_eq!(
        r["wrong_hostname"],
        "Hostname mismatch, certificate is not valid for 'not-the-node.example'.",
        "the client checks the hostname"
    );

    // Channel balances: uint64 as strings, custom_channel_data as base64 (tapd's JSON for
    // alice's asset channel).
    let bob_balance = &r["balance"]["bob"]["body"];
    assert!(
        int64(&bob_balance["local_balance"]["sat"]) > 0,
        "{bob_balance}"
    );
    assert_eq!(
        int64(&bob_balance["local_balance"]["msat"]),
        int64(&bob_balance["local_balance"]["sat"]) * 1_000
    );
    let alice_data = base64_bytes(&r["balance"]["alice"]["body"]["custom_channel_data"]);
    let alice_assets: Value = serde_json::from_slice(&alice_data).unwrap();
    assert!(alice_assets.is_object(), "{alice_assets}");

    // The merchant's invoice: r_hash standard base64 of 32 bytes, add_index a string.
    let created = &r["add_invoice"];
    assert_eq!(created["status"], 200, "{created}");
    let r_hash = base64_bytes(&created["body"]["r_hash"]);
    assert_eq!(r_hash.len(), 32);
    assert!(int64(&created["body"]["add_index"]) > 0);
    assert!(
        created["body"]["payment_request"]
            .as_str()
            .unwrap()
            .starts_with("lnbcrt")
    );

    let open = &r["lookup_open"]["body"];
    assert_eq!(r["lookup_open"]["status"], 200, "{}", r["lookup_open"]);
    assert_eq!(open["state"], "OPEN");
    assert_eq!(open["value"], "2000");
    assert_eq!(open["memo"], "rest");
    assert_eq!(open["expiry"], "600");
    assert_eq!(base64_bytes(&open["r_hash"]), r_hash);
    assert_eq!(open["settled"], false, "unpopulated fields are emitted");
    assert_eq!(open["amt_paid_sat"], "0");

    let decoded = &r["decode"]["body"];
    assert_eq!(r["decode"]["status"], 200, "{}", r["decode"]);
    assert_eq!(decoded["payment_hash"], hex::encode(&r_hash));
    assert_eq!(decoded["num_satoshis"], "2000");
    assert_eq!(decoded["num_msat"], "2000000");
    assert_eq!(
        decoded["destination"],
        network.node("merchant").unwrap().pubkey.as_str()
    );

    // The payment: newline-delimited {"result": Payment}, ending SUCCEEDED with the preimage.
    let send = &r["send"];
    assert_eq!(send["status"], 200, "{send}");
    let lines = send["lines"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .all(|l| l.as_object().unwrap().len() == 1 && l["result"].is_object())
    );
    let last = &lines.last().unwrap()["result"];
    assert_eq!(last["status"], "SUCCEEDED", "{send}");
    assert_eq!(last["failure_reason"], "FAILURE_REASON_NONE");
    assert_eq!(last["value_sat"], "2000");
    let preimage = hex::decode(last["payment_preimage"].as_str().unwrap()).unwrap();
    assert_eq!(Sha256::digest(&preimage).as_slice(), r_hash.as_slice());
    assert_eq!(r["preimage_hashes_to_r_hash"], true);
    let settled = &r["lookup_settled"]["body"];
    assert_eq!(settled["state"], "SETTLED", "{settled}");
    assert_eq!(settled["amt_paid_sat"], "2000");
    assert_eq!(base64_bytes(&settled["r_preimage"]), preimage);

    // alice has no sats channel: FAILED with a reason, in the stream.
    let failed = &r["send_failed"];
    assert_eq!(failed["status"], 200, "{failed}");
    let last = &failed["lines"].as_array().unwrap().last().unwrap()["result"];
    assert_eq!(last["status"], "FAILED", "{failed}");
    assert_eq!(last["failure_reason"], "FAILURE_REASON_NO_ROUTE");
    assert_eq!(last["payment_preimage"], "");

    // Errors, as grpc-gateway writes the node's gRPC status.
    for case in ["bad_macaroon", "no_macaroon", "other_nodes_macaroon"] {
        let message = assert_error(&r[case], 401, 16);
        assert_eq!(r[case]["www_authenticate"], message.as_str(), "{case}");
    }
    assert_eq!(
        r["no_macaroon"]["body"]["message"],
        "expected 1 macaroon, got 0"
    );
    assert_eq!(
        r["other_nodes_macaroon"]["body"]["message"],
        "verification failed: signature mismatch"
    );
    let message = assert_error(&r["unknown_invoice"], 404, 5);
    assert!(message.contains("unable to locate invoice"), "{message}");
    assert_eq!(
        assert_error(&r["bad_hash"], 500, 2),
        "encoding/hex: invalid byte: U+0078 'x'"
    );
    assert_eq!(
        assert_error(&r["bad_body"], 400, 3),
        r#"proto: invalid value for int64 field value: "ten""#
    );
    assert_error(&r["not_json"], 400, 3);
    assert_eq!(assert_error(&r["unknown_path"], 404, 5), "Not Found");
    assert_eq!(
        assert_error(&r["wrong_method"], 501, 12),
        "Method Not Allowed"
    );
    // A payment the node refuses outright: one `{"error": …}` line with its HTTP status.
    let refused = &r["send_refused"];
    // zpay32's error, as lnd's router returns it: gRPC Unknown, HTTP 500.
    assert_eq!(refused["status"], 500, "{refused}");
    assert_eq!(refused["lines"][0]["error"]["code"], 2, "{refused}");
    assert_eq!(
        refused["lines"][0]["error"]["message"],
        "failed converting data to bytes: invalid character not part of charset: 98",
        "{refused}"
    );

    // The stop signal closes the REST listeners at once.
    let rest = alice.rest_endpoint.clone().unwrap();
    let started = Instant::now();
    running.shutdown().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(tokio::net::TcpStream::connect(&rest).await.is_err());
}

/// A payment held at the merchant (a hold invoice) stays IN_FLIGHT; cutting bob's streams then
/// makes the gRPC stream fail after its first message, which grpc-gateway forwards as a last
/// line `{"error": Status}` after a 200 (grpc-gateway v2.16.0 `runtime/handler.go`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_mid_stream_is_a_last_error_line() {
    use std::io::{BufRead, BufReader};
    use tapgate::app::{NetworkAddresses, Node};
    use tapgate::l402::Preimage;
    use tapgate::lightning::types::InvoiceRequest;
    use tapgate::simnet::model::NodeId;

    let (running, _dir) = start_simnet().await;
    let addrs = NetworkAddresses::from_network_file(running.network_file()).unwrap();
    let merchant = Node::connect(addrs.node("merchant").unwrap()).unwrap();
    let hold = merchant
        .lnd
        .create_hold_invoice(
            &Preimage::from_bytes([7; 32]).payment_hash(),
            &InvoiceRequest {
                value_msat: 1_000_000,
                memo: "held".into(),
                expiry_secs: 600,
            },
        )
        .await
        .unwrap();

    let mut child = client(running.network_file())
        .args(["pay", "bob", &hold.payment_request])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(serde_json::from_str(&line.unwrap()).unwrap());
        }
    });
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("client.py printed nothing for 20 s")
    };
    assert_eq!(next().await.unwrap(), serde_json::json!({"status": 200}));
    let first = next().await.unwrap();
    assert_eq!(first["result"]["status"], "IN_FLIGHT", "{first}");

    running.model().update(|m| m.drop_streams(NodeId::Bob));
    let last = next().await.unwrap();
    let error = &last["error"];
    assert_eq!(last.as_object().unwrap().len(), 1, "{last}");
    assert_eq!(error["code"], 14, "UNAVAILABLE: {last}");
    assert!(
        error["message"].as_str().unwrap().contains("drop-streams"),
        "{last}"
    );
    assert_eq!(error["details"], Value::Array(vec![]));
    assert!(next().await.is_none(), "the error line is the last");
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    running.shutdown().await.unwrap();
}

#[test]
fn network_files_without_rest_endpoint_still_parse() {
    let old = r#"
network = "regtest"
edge_pubkey = "02aa"
asset_id = "00"
asset_name = "USD"
decimal_display = 6

[[nodes]]
name = "alice"
pubkey = "02bb"
lnd_endpoint = "127.0.0.1:1"
tapd_endpoint = "127.0.0.1:1"
tls_cert_path = "/x/tls.cert"
lnd_macaroon_path = "/x/admin.macaroon"
lnd_invoice_macaroon_path = "/x/invoice.macaroon"
lnd_readonly_macaroon_path = "/x/readonly.macaroon"
tapd_macaroon_path = "/x/tapd.macaroon"
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("network.toml");
    std::fs::write(&path, old).unwrap();
    let file = NetworkFile::read(&path).unwrap();
    assert_eq!(file.nodes[0].rest_endpoint, None);
    assert!(!toml::to_string(&file).unwrap().contains("rest_endpoint"));
}

/// The keys of a JSON object, each with the JSON kind of its value.
fn shape(v: &Value) -> std::collections::BTreeMap<String, &'static str> {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .iter()
        .map(|(k, v)| (k.clone(), kind(v)))
        .collect()
}

/// Every field simnet writes is one the real lnd writes, under the same name with the same JSON
/// kind (lnd writes more: fields simnet's protos leave out).
fn same_fields(what: &str, sim: &Value, real: &Value) {
    let (sim, real) = (shape(sim), shape(real));
    for (key, kind) in &sim {
        // An empty repeated field is `[]` on both; a missing message is `null` on both.
        assert_eq!(
            real.get(key),
            Some(kind),
            "{what}: simnet's {key:?} ({kind}) vs lnd's {real:?}"
        );
    }
}

/// The same Python client against the real regtest network's lnd (`restlisten`, written to
/// network.toml by integration/regtest/up.sh) and against simnet: the same statuses, error
/// bodies and stream shapes, and simnet's fields a subset of lnd's with the same names and JSON
/// kinds. The regtest nodes run without macaroons, so the macaroon refusals are simnet's alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simnet_answers_as_the_real_lnds_rest_api() {
    let Some(real_file) = std::env::var_os("TAPGATE_REGTEST_NETWORK") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must compare simnet's REST API with the real lnd's: set TAPGATE_REGTEST_NETWORK"
        );
        eprintln!(
            "skipped: TAPGATE_REGTEST_NETWORK is not set (integration/regtest/up.sh DIR starts a network)"
        );
        return;
    };
    let (running, _dir) = start_simnet().await;
    let sim = run_client(running.network_file());
    let real = run_client(Path::new(&real_file));

    for call in [
        "unknown_invoice",
        "bad_hash",
        "unknown_path",
        "wrong_method",
    ] {
        assert_eq!(sim[call]["status"], real[call]["status"], "{call}");
        assert_eq!(
            sim[call]["body"], real[call]["body"],
            "{call}: the same error body"
        );
    }
    for call in ["bad_body", "not_json"] {
        assert_eq!(sim[call]["status"], real[call]["status"], "{call}");
        assert_eq!(
            sim[call]["body"]["code"], real[call]["body"]["code"],
            "{call}"
        );
    }
    assert_eq!(
        sim["send_refused"], real["send_refused"],
        "a bad invoice on /v2/router/send"
    );
    assert_eq!(sim["preimage_hashes_to_r_hash"], true);
    assert_eq!(real["preimage_hashes_to_r_hash"], true);
    assert_eq!(sim["wrong_hostname"], real["wrong_hostname"]);

    same_fields(
        "getinfo",
        &sim["getinfo"]["alice"]["body"],
        &real["getinfo"]["alice"]["body"],
    );
    same_fields(
        "balance",
        &sim["balance"]["alice"]["body"],
        &real["balance"]["alice"]["body"],
    );
    same_fields(
        "balance.local_balance",
        &sim["balance"]["alice"]["body"]["local_balance"],
        &real["balance"]["alice"]["body"]["local_balance"],
    );
    for call in ["add_invoice", "lookup_open", "lookup_settled", "decode"] {
        assert_eq!(sim[call]["status"], 200, "{call}");
        assert_eq!(real[call]["status"], 200, "{call}");
        same_fields(call, &sim[call]["body"], &real[call]["body"]);
    }
    // `send_failed` is alice paying a plain invoice. simnet's asset channels carry units only,
    // so it fails there (NO_ROUTE); the real alice–edge asset channel also holds alice's own
    // BTC from its funding, and the payment succeeds. Only its shape is compared.
    for call in ["send", "send_failed"] {
        let (s, r) = (
            sim[call]["lines"].as_array().unwrap(),
            real[call]["lines"].as_array().unwrap(),
        );
        let (s_last, r_last) = (&s[s.len() - 1]["result"], &r[r.len() - 1]["result"]);
        if call == "send" {
            assert_eq!(s_last["status"], "SUCCEEDED");
            assert_eq!(r_last["status"], "SUCCEEDED");
        }
        same_fields(call, s_last, r_last);
        for line in s.iter().chain(r) {
            assert_eq!(
                shape(line).keys().collect::<Vec<_>>(),
                ["result"],
                "{call}: {line}"
            );
        }
    }
    running.shutdown().await.unwrap();
}
