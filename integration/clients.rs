//! L402 clients that are not tapgate's read tapgate's challenge: lsat-js 2.0.6 (npm, the
//! JavaScript L402/LSAT client library) and the Python BOLT 11 decoder `bolt11` 2.2.0 (PyPI),
//! each run as a script (`integration/clients/`, installed by `bash .ci/setup-interop`).
//!
//! Against simnet: a real regtest invoice from the merchant's lnd, a token minted for its
//! payment hash by tapgate's mint, the `WWW-Authenticate` value from tapgate's own
//! [`Challenge::to_header_value`]. Both clients must read back every field tapgate knows
//! (payment hash, amount, expiry, description, payee = the merchant's GetInfo key, token id,
//! caveats, macaroon bytes); once bob pays the invoice, the `Authorization` value lsat-js
//! builds from the preimage must pass tapgate's verification. The same reading is repeated on
//! an invoice from the real lnd of the regtest network `TAPGATE_REGTEST_NETWORK` names (as
//! `bash .ci/test` sets it), unpaid.
//!
//! lsat-js is an LSAT-era client: `Lsat.fromHeader` drops the first four characters as the
//! scheme without comparing them (so `L402` passes as well as `LSAT`), `toToken` always
//! writes `LSAT <macaroon>:<preimage>` (which tapgate accepts, as bLIP-26 asks), and
//! `Lsat.fromToken` refuses an `L402 …` credential. See integration/clients/README.md.
//!
//! Without node, the lsat-js install or bolt11 in .venv the test says so and passes locally;
//! under CI (`CI` set) it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
#[path = "clients/foreign.rs"]
mod foreign;

use std::time::{SystemTime, UNIX_EPOCH};

use tapgate::app::{NetworkAddresses, Node};
use tapgate::l402::header::{self, Scheme};
use tapgate::l402::{Challenge, RequestContext};
use tapgate::lightning::traits::{Invoices, NodeInfoSource};
use tapgate::lightning::types::{CreatedInvoice, InvoiceRequest};
use tapgate::mint::{Mint, MintRequest, Minted};
use tapgate::store::MemoryStore;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A challenge tapgate issued, and what the foreign clients read in it.
struct Issued {
    invoice: CreatedInvoice,
    minted: Minted,
    challenge: Challenge,
    www: String,
    valid_until: u64,
    parsed: foreign::ForeignParse,
}

/// What tapgate does for a 402: an invoice on `merchant` (21 sats, 600 s), a token minted for
/// its payment hash, the challenge from [`Challenge::to_header_value`]. Then both foreign
/// clients read it, and every field they report is checked against what tapgate knows: the
/// invoice it asked for, the node's own record of it, the node's GetInfo key and the token.
async fn issue_and_read(merchant: &Node, mint: &Mint<MemoryStore>) -> Issued {
    let merchant_key = merchant.lnd.node_info().await.unwrap().pubkey;
    let invoice = merchant
        .lnd
        .create_invoice(&InvoiceRequest {
            value_msat: 21_000,
            memo: "tapgate svc GET /v1/quote".into(),
            expiry_secs: 600,
        })
        .await
        .unwrap();
    let record = merchant
        .lnd
        .lookup_invoice(&invoice.payment_hash)
        .await
        .unwrap()
        .unwrap();
    let valid_until = now() + 3_600;
    let minted = mint
        .mint(
            &MintRequest::new(
                invoice.payment_hash,
                &["svc:0".into()],
                &[
                    format!("svc_valid_until={valid_until}"),
                    "svc_methods=GET,POST".into(),
                    "svc_budget_usd=0.50".into(),
                ],
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let challenge = Challenge::new(minted.macaroon.clone(), invoice.payment_request.clone());
    let www = challenge.to_header_value();
    assert!(www.starts_with("L402 macaroon=\""), "{www}");
    assert_eq!(header::parse_challenge(&www).unwrap(), challenge);

    let hash_hex = hex::encode(invoice.payment_hash.0);
    let parsed = foreign::parse_with_foreign_clients(&www);
    // lsat-js: the macaroon, its identifier and caveats, and the invoice's hash and amount.
    let js = &parsed.lsat_js;
    assert_eq!(js.scheme, "L402");
    assert_eq!(js.invoice, invoice.payment_request);
    assert_eq!(js.payment_hash, hash_hex);
    assert_eq!(js.identifier.version, 0);
    assert_eq!(js.identifier.payment_hash, hash_hex);
    assert_eq!(js.identifier.token_id, hex::encode(minted.token_id.0));
    assert_eq!(
        js.macaroon.identifier_hex,
        hex::encode(minted.macaroon.identifier())
    );
    assert_eq!(js.macaroon.location, "tapgate");
    assert_eq!(
        js.macaroon.signature_hex,
        hex::encode(minted.macaroon.signature())
    );
    let encoded: Vec<&str> = js.caveats.iter().map(|c| c.encoded.as_str()).collect();
    assert_eq!(encoded, minted.caveats, "every caveat, in order");
    let split: Vec<(&str, &str, &str)> = js
        .caveats
        .iter()
        .map(|c| (c.condition.as_str(), c.comp.as_str(), c.value.as_str()))
        .collect();
    let until = valid_until.to_string();
    assert_eq!(
        split,
        [
            ("services", "=", "svc:0"),
            ("svc_valid_until", "=", until.as_str()),
            ("svc_methods", "=", "GET,POST"),
            ("svc_budget_usd", "=", "0.50"),
        ]
    );
    assert_eq!(js.invoice_amount_sat, 21);
    assert_eq!(js.invoice_amount_msat.as_deref(), Some("21000"));
    // lsat-js knows only its own `expiration=` caveat, so it sees no expiry on the token.
    assert_eq!(js.valid_until, 0);
    assert!(js.is_pending && !js.is_expired);
    assert_eq!(js.token, format!("LSAT {}:", minted.macaroon.to_base64()));

    // Python bolt11: every field of the invoice, against the node's record and GetInfo.
    let py = &parsed.bolt11_py;
    assert_eq!(py.scheme, "L402");
    assert_eq!(py.currency, "bcrt");
    assert_eq!(py.network_prefix, "lnbcrt");
    assert!(invoice.payment_request.starts_with("lnbcrt"));
    assert_eq!(py.payment_hash, hash_hex);
    assert_eq!(py.amount_msat, Some(record.value_msat));
    assert_eq!(py.amount_msat, Some(21_000));
    assert_eq!(py.expiry, record.expiry_secs);
    assert_eq!(py.expiry, 600);
    assert_eq!(py.timestamp, record.creation_date);
    assert_eq!(py.description.as_deref(), Some(record.memo.as_str()));
    assert_eq!(py.description_hash, None);
    assert_eq!(py.payee, merchant_key, "signed by the merchant's key");
    assert!(py.payment_secret.is_some());
    assert_eq!(py.strict_error, None);

    Issued {
        invoice,
        minted,
        challenge,
        www,
        valid_until,
        parsed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_clients_read_tapgates_challenge_and_lsat_js_credentials_verify() {
    if !foreign::available() {
        return;
    }
    let (running, _dir) = common::start_simnet().await;
    let addrs = NetworkAddresses::from_network_file(running.network_file()).unwrap();
    let merchant = Node::connect(addrs.node("merchant").unwrap()).unwrap();
    let bob = Node::connect(addrs.node("bob").unwrap()).unwrap();
    let merchant_key = merchant.lnd.node_info().await.unwrap().pubkey;
    let mint = Mint::new(MemoryStore::default(), "tapgate");
    let issued = issue_and_read(&merchant, &mint).await;
    let (invoice, minted, www) = (&issued.invoice, &issued.minted, issued.www.as_str());
    let valid_until = issued.valid_until;
    let hash_hex = hex::encode(invoice.payment_hash.0);
    let js = &issued.parsed.lsat_js;
    assert_eq!(issued.parsed.bolt11_py.min_final_cltv_expiry, 80);

    // bob pays; lsat-js turns the preimage into the Authorization value it would send.
    let paid = bob
        .lnd
        .pay_sats(&invoice.payment_request, 10_000)
        .await
        .unwrap();
    let preimage_hex = hex::encode(paid.preimage.expose());
    let authorization = foreign::lsat_js_authorization(www, &preimage_hex);
    assert_eq!(
        authorization,
        format!("LSAT {}:{preimage_hex}", minted.macaroon.to_base64()),
        "lsat-js passes the macaroon through byte for byte"
    );
    let ctx = RequestContext {
        service: "svc",
        method: "GET",
        path: "/v1/quote",
        now: now(),
    };
    let decision = mint.verify(&[&authorization], &ctx).await.unwrap();
    assert_eq!(decision.token_id, minted.token_id);
    assert_eq!(decision.payment_hash, invoice.payment_hash);
    assert_eq!(decision.tier, 0);
    assert_eq!(decision.restrictions.valid_until, Some(valid_until));
    assert_eq!(
        decision.restrictions.budget_usd.unwrap().to_string(),
        "0.50"
    );
    // The same credential under the current scheme name verifies too.
    let l402 = authorization.replacen("LSAT ", "L402 ", 1);
    mint.verify(&[&l402], &ctx).await.unwrap();

    // lsat-js checks the preimage against the invoice's hash before building a token.
    let wrong = foreign::lsat_js(www, Some(&"00".repeat(32)), None).unwrap_err();
    assert_eq!(wrong.stage, "preimage");
    assert!(wrong.error.contains("did not match"), "{wrong:?}");

    // As a parser of credentials (`Lsat.fromToken`), lsat-js takes LSAT only.
    let read = foreign::lsat_js(www, None, Some(&authorization)).unwrap();
    let read = read.parsed_authorization.unwrap();
    assert_eq!(read["ok"], true, "{read}");
    assert_eq!(read["payment_hash"], hash_hex.as_str());
    assert_eq!(read["preimage"], preimage_hex.as_str());
    assert_eq!(read["token_id"], hex::encode(minted.token_id.0).as_str());
    let read = foreign::lsat_js(www, None, Some(&l402)).unwrap();
    let read = read.parsed_authorization.unwrap();
    assert_eq!(read["ok"], false);
    assert_eq!(read["error"], "Token must include LSAT prefix");

    // Aperture's first, legacy challenge (`LSAT macaroon=…`) reads the same.
    let lsat_www = Challenge {
        scheme: Scheme::Lsat,
        ..issued.challenge.clone()
    }
    .to_header_value();
    let legacy = foreign::parse_with_foreign_clients(&lsat_www);
    assert_eq!(legacy.lsat_js.scheme, "LSAT");
    assert_eq!(legacy.lsat_js.identifier.token_id, js.identifier.token_id);
    assert_eq!(legacy.bolt11_py.payment_hash, hash_hex);

    // An amount that is not whole sats (a USD price converted to msat can be), no memo, lnd's
    // default expiry: lsat-js's `invoiceAmount` counts whole sats only and says 0, its bolt11
    // decode and Python bolt11 have the exact msat.
    let odd = merchant
        .lnd
        .create_invoice(&InvoiceRequest {
            value_msat: 21_500,
            memo: String::new(),
            expiry_secs: 0,
        })
        .await
        .unwrap();
    let odd_token = mint
        .mint(&MintRequest::new(odd.payment_hash, &["svc".into()], &[]).unwrap())
        .await
        .unwrap();
    let odd_www = Challenge::new(odd_token.macaroon, odd.payment_request.clone()).to_header_value();
    let odd_parsed = foreign::parse_with_foreign_clients(&odd_www);
    assert_eq!(odd_parsed.lsat_js.invoice_amount_sat, 0);
    assert_eq!(
        odd_parsed.lsat_js.invoice_amount_msat.as_deref(),
        Some("21500")
    );
    assert_eq!(
        odd_parsed.lsat_js.identifier.token_id,
        hex::encode(odd_token.token_id.0)
    );
    let odd_py = &odd_parsed.bolt11_py;
    assert_eq!(odd_py.amount_msat, Some(21_500));
    assert_eq!(odd_py.payment_hash, hex::encode(odd.payment_hash.0));
    assert_eq!(odd_py.expiry, 86_400);
    assert_eq!(odd_py.description.as_deref(), Some(""));
    assert_eq!(odd_py.payee, merchant_key);

    running.shutdown().await.unwrap();
}

/// The same reading of a challenge whose invoice comes from the real lnd (zpay32's encoder, not
/// simnet's) on the regtest network `TAPGATE_REGTEST_NETWORK` names, as `bash .ci/test` sets
/// it. Nothing is paid, so the shared network's balances do not move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_clients_read_a_challenge_with_a_real_lnd_invoice() {
    let Some(path) = std::env::var_os("TAPGATE_REGTEST_NETWORK") else {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "CI is set but TAPGATE_REGTEST_NETWORK is not: run the tests through `bash .ci/test`"
        );
        eprintln!("skipping: TAPGATE_REGTEST_NETWORK is not set");
        return;
    };
    if !foreign::available() {
        return;
    }
    let addrs = NetworkAddresses::from_network_file(std::path::Path::new(&path)).unwrap();
    let merchant = Node::connect(addrs.node("merchant").unwrap()).unwrap();
    let mint = Mint::new(MemoryStore::default(), "tapgate");
    let issued = issue_and_read(&merchant, &mint).await;
    assert!(issued.parsed.bolt11_py.payment_secret.is_some());
}
