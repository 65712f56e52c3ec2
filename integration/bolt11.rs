//! simnet's invoices are real regtest BOLT 11: every kind it issues (lnd `AddInvoice` with a
//! memo or a description hash, `AddHoldInvoice`, tapd's asset `AddInvoice`) is decoded by lnd's
//! own decoder, `zpay32` from the lnd module `integration/regtest/go.mod` pins, built here as
//! `integration/regtest/bolt11check` and run as a separate process. It shares no code with the
//! Rust encoder (rust-lightning's `lightning-invoice`), verifies the checksum and recovers the
//! payee from the signature; the test then checks payee, hash, amount, expiry, description,
//! CLTV, payment address and, for the asset invoice, the hop hint through the edge with the
//! quote's SCID alias.
//!
//! Needs Go (the machine's, or /usr/local/go/bin/go). Without it the test says so and passes
//! locally; under CI (`CI` set) it fails, so CI cannot skip it.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use tapgate::app::{NetworkAddresses, Node};
use tapgate::lightning::traits::{AssetInvoices, Invoices, NodeInfoSource};
use tapgate::lightning::types::{AssetInvoiceRequest, InvoiceRequest};
use tapgate::simnet::model::{self, InvoiceSecret, NodeId, PaymentHash};

fn go() -> Option<PathBuf> {
    let on_path = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if on_path {
        return Some(PathBuf::from("go"));
    }
    let official = PathBuf::from("/usr/local/go/bin/go");
    official.exists().then_some(official)
}

/// Builds `bolt11check` into target/regtest/bin (Go's build cache makes a rebuild a no-op).
fn decoder() -> Option<PathBuf> {
    let Some(go) = go() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must check simnet's invoices with lnd's decoder, but no Go was found"
        );
        eprintln!("skipping: no Go on PATH or in /usr/local/go to build lnd's BOLT 11 decoder");
        return None;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("target/regtest/bin/bolt11check");
    let built = Command::new(go)
        .current_dir(root.join("integration/regtest"))
        .env("CGO_ENABLED", "0")
        .args([
            "build",
            "-trimpath",
            "-tags",
            "signrpc walletrpc chainrpc invoicesrpc peersrpc",
        ])
        .arg("-o")
        .arg(&out)
        .arg("./bolt11check")
        .status()
        .unwrap();
    assert!(built.success(), "go build ./bolt11check failed");
    Some(out)
}

/// lnd's decoding of each invoice, in order; `Err` holds zpay32's message.
fn decode_with_lnd(decoder: &Path, invoices: &[&str]) -> Vec<Result<Value, String>> {
    let mut child = Command::new(decoder)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for inv in invoices {
            writeln!(stdin, "{inv}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), invoices.len());
    lines
        .into_iter()
        .map(|v| match v.get("error") {
            Some(e) => Err(e.as_str().unwrap().to_owned()),
            None => Ok(v),
        })
        .collect()
}

fn hex32(h: &PaymentHash) -> String {
    h.to_hex()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_simnet_invoice_decodes_with_lnds_decoder() {
    let Some(decoder) = decoder() else { return };
    let (running, _dir) = common::start_simnet().await;
    let addrs = NetworkAddresses::from_network_file(running.network_file()).unwrap();
    let merchant = Node::connect(addrs.node("merchant").unwrap()).unwrap();
    let merchant_key = merchant.lnd.node_info().await.unwrap().pubkey;
    assert_eq!(
        merchant_key,
        running.network().node("merchant").unwrap().pubkey
    );
    let edge_key = addrs.edge_pubkey.clone().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    // lnd AddInvoice over gRPC.
    let plain = merchant
        .lnd
        .create_invoice(&InvoiceRequest {
            value_msat: 1_234_567,
            memo: "one coffee".into(),
            expiry_secs: 600,
        })
        .await
        .unwrap();
    // AddHoldInvoice over gRPC.
    let hold_hash = PaymentHash::from_slice(&[0x42; 32]).unwrap();
    let hold = merchant
        .lnd
        .create_hold_invoice(
            &tapgate::l402::PaymentHash(hold_hash.0),
            &InvoiceRequest {
                value_msat: 5_000_000,
                memo: "held".into(),
                expiry_secs: 0,
            },
        )
        .await
        .unwrap();
    // tapd's AddInvoice: an asset invoice under a fresh buy quote from the edge.
    let asset = merchant
        .tapd
        .create_asset_invoice(&AssetInvoiceRequest {
            asset: addrs.asset.clone().unwrap(),
            units: 2_000_000,
            edge_peer: Some(edge_key.clone()),
            memo: "two dollars".into(),
            // Inside the 60 s the sample oracle gives a quote above 100,000 units.
            expiry_secs: 45,
        })
        .await
        .unwrap();
    // An invoice with a description hash (lnd's `description_hash`), made through the model
    // the servers share.
    let described = running
        .model()
        .update_now(|m, now| {
            m.add_invoice(
                NodeId::Merchant,
                model::InvoiceRequest {
                    value_msat: 10_000,
                    memo: String::new(),
                    expiry_secs: 0,
                    secret: InvoiceSecret::Generate,
                    description_hash: Some([0xab; 32]),
                },
                now,
            )
        })
        .unwrap();

    let strings = [
        plain.payment_request.as_str(),
        hold.payment_request.as_str(),
        asset.invoice.payment_request.as_str(),
        described.payment_request.as_str(),
    ];
    let decoded: Vec<Value> = decode_with_lnd(&decoder, &strings)
        .into_iter()
        .map(|r| r.unwrap())
        .collect();

    let addr_of = |hash: &PaymentHash| {
        running.model().read(|m| {
            hex::encode(
                m.lookup_invoice(NodeId::Merchant, hash)
                    .unwrap()
                    .payment_addr,
            )
        })
    };
    let expect = [
        (
            hex32(&PaymentHash(plain.payment_hash.0)),
            1_234_567u64,
            600i64,
        ),
        (hex32(&hold_hash), 5_000_000, 86_400),
        (
            hex32(&PaymentHash(asset.invoice.payment_hash.0)),
            asset.value_msat,
            45,
        ),
        (hex32(&described.payment_hash), 10_000, 86_400),
    ];
    for (d, (hash, msat, expiry)) in decoded.iter().zip(&expect) {
        assert_eq!(
            d["payee"],
            merchant_key.as_str(),
            "signed by the merchant's key: {d}"
        );
        assert_eq!(d["payment_hash"], hash.as_str());
        assert_eq!(d["amount_msat"], *msat);
        assert_eq!(d["expiry_secs"], *expiry);
        let ts = d["timestamp"].as_u64().unwrap();
        assert!(ts.abs_diff(now) < 60, "timestamp {ts} is now ({now})");
        assert_eq!(d["min_final_cltv_expiry"], 80);
        let hash = PaymentHash::from_hex(hash).unwrap();
        assert_eq!(d["payment_addr"], addr_of(&hash).as_str(), "payment secret");
        let features: Vec<u64> = d["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_u64().unwrap())
            .collect();
        assert!(
            features.contains(&14),
            "payment secret required: {features:?}"
        );
        assert!(features.contains(&8), "var-onion required: {features:?}");
    }
    assert_eq!(decoded[0]["description"], "one coffee");
    assert_eq!(decoded[1]["description"], "held");
    assert_eq!(decoded[3]["description"], Value::Null);
    assert_eq!(decoded[3]["description_hash"], hex::encode([0xab; 32]));
    assert_eq!(decoded[0]["route_hints"], serde_json::json!([]));
    let hint = &decoded[2]["route_hints"][0][0];
    assert_eq!(
        hint["node"],
        edge_key.as_str(),
        "the hop hint goes through the edge"
    );
    assert_eq!(
        hint["scid"], asset.quote.scid,
        "with the quote's SCID alias"
    );
    assert_eq!(decoded[2]["route_hints"][0].as_array().unwrap().len(), 1);

    // The decoder can refuse: one character changed breaks the checksum.
    let mut tampered = plain.payment_request.clone().into_bytes();
    let i = tampered.len() - 8;
    tampered[i] = if tampered[i] == b'q' { b'p' } else { b'q' };
    let tampered = String::from_utf8(tampered).unwrap();
    let refused = decode_with_lnd(&decoder, &[&tampered]);
    assert!(
        refused[0]
            .as_ref()
            .is_err_and(|e| e.starts_with("checksum failed")),
        "{refused:?}"
    );
    // simnet's DecodePayReq refuses it in the same words.
    let e = merchant
        .lnd
        .decode_amount_msat(&tampered)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("checksum failed"), "{e}");
    running.shutdown().await.unwrap();
}
