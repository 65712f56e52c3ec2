//! Interoperability with three independent macaroon implementations, both directions:
//! Go `gopkg.in/macaroon.v2` (what Aperture and LND use), Python `pymacaroons`, and npm
//! `macaroon` 3.x. Each runs as a small harness (`integration/interop/`) that takes a batch of
//! JSON operations on stdin; `bash .ci/setup-interop` installs and builds them.
//!
//! Proven here: identical inputs give byte-identical V2 macaroons; tokens minted by tapgate
//! verify there; tokens minted there with Aperture's identifier layout pass tapgate's full L402
//! verification; attenuation in either direction verifies in the other; tampering and
//! widening are refused on both sides.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use tapgate::l402::caveat::CaveatError;
use tapgate::l402::verify::{VerifyError, verify_header};
use tapgate::l402::{Identifier, Macaroon, Preimage, RequestContext, RootKey, TokenId};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Clone, Copy, Debug)]
enum Impl {
    Go,
    Python,
    Js,
}

const ALL: [Impl; 3] = [Impl::Go, Impl::Python, Impl::Js];

impl Impl {
    fn command(self) -> Command {
        let r = root();
        let need = |p: &Path| {
            assert!(
                p.exists(),
                "{} is missing: run `bash .ci/setup-interop` once to install the interop harnesses",
                p.display()
            );
        };
        match self {
            Impl::Go => {
                let bin = r.join("target/interop/go-harness");
                need(&bin);
                Command::new(bin)
            }
            Impl::Python => {
                let py = r.join(".venv/bin/python");
                need(&py);
                let mut c = Command::new(py);
                c.arg(r.join("integration/interop/py/harness.py"));
                c
            }
            Impl::Js => {
                need(&r.join("integration/interop/js/node_modules/macaroon"));
                let mut c = Command::new("node");
                c.arg(r.join("integration/interop/js/harness.js"));
                c
            }
        }
    }

    /// Runs a batch of operations; every result must be `ok`.
    fn run(self, ops: &[Value]) -> Vec<Value> {
        let mut child = self
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{self:?} harness did not start: {e}"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(Value::Array(ops.to_vec()).to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{self:?} harness exited with {}",
            out.status
        );
        let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(results.len(), ops.len());
        for (op, r) in ops.iter().zip(&results) {
            assert_eq!(r["ok"], true, "{self:?} failed {op}: {r}");
        }
        results
    }
}

/// One token's inputs.
struct Case {
    key: [u8; 32],
    id: Vec<u8>,
    location: &'static str,
    caveats: Vec<String>,
}

impl Case {
    fn mint_op(&self) -> Value {
        json!({"op": "mint", "root_key_hex": hex::encode(self.key), "id_hex": hex::encode(&self.id),
               "location": self.location, "caveats": self.caveats})
    }

    fn tapgate_mint(&self) -> Macaroon {
        let mut m = Macaroon::new(&RootKey::from_bytes(self.key), &self.id, self.location);
        for c in &self.caveats {
            m.add_first_party_caveat(c.as_bytes()).unwrap();
        }
        m
    }
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn bytes32(seed: u64) -> [u8; 32] {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = [0u8; 32];
    for b in &mut out {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    out
}

fn preimage(seed: u64) -> Preimage {
    Preimage::from_bytes(bytes32(seed ^ 0xABCD))
}

/// A token laid out as Aperture lays it out: 66-byte identifier committing to a payment hash.
fn l402_case(seed: u64, caveats: &[&str]) -> (Case, Preimage) {
    let pre = preimage(seed);
    let id = Identifier::new(pre.payment_hash(), TokenId(bytes32(seed + 1)));
    (
        Case {
            key: bytes32(seed + 2),
            id: id.encode().to_vec(),
            location: if seed.is_multiple_of(2) {
                "lsat"
            } else {
                "tapgate"
            },
            caveats: caveats.iter().map(|s| s.to_string()).collect(),
        },
        pre,
    )
}

fn header(macaroon_b64: &str, pre: &Preimage) -> String {
    format!("L402 {macaroon_b64}:{}", hex::encode(pre.expose()))
}

fn ctx(method: &'static str) -> RequestContext<'static> {
    RequestContext {
        service: "svc",
        method,
        path: "/v1/quote",
        now: 1_700_000_000,
    }
}

const TOKEN_CAVEATS: [&str; 3] = [
    "services=svc:0,other:1",
    "svc_valid_until=1800000000",
    "svc_methods=GET,POST",
];

fn cases() -> Vec<Case> {
    let mut cases = vec![Case {
        // The shared reference vector (macaroon-vectors.json).
        key: [0x11; 32],
        id: hex::decode("00009f72ea0cf49536e3c66c787f705186df9a4378083753ae9536d65b3ad7fcddc43333333333333333333333333333333333333333333333333333333333333333").unwrap(),
        location: "lsat",
        caveats: vec!["services=svc:0".into()],
    }];
    for seed in 0..6u64 {
        let n = seed as usize % TOKEN_CAVEATS.len() + 1;
        cases.push(l402_case(seed * 10, &TOKEN_CAVEATS[..n]).0);
    }
    // Long caveats (multi-byte varints) and many of them.
    let mut long = l402_case(99, &["services=svc:0"]).0;
    long.caveats.push(
        format!("svc_capabilities={}", vec!["cap"; 60].join(",")).replace("cap,cap", "capa,capb"),
    );
    for i in 0..10 {
        long.caveats.push(format!("other_max_calls={}", 1000 - i));
    }
    cases.push(long);
    cases
}

#[test]
fn identical_inputs_give_identical_v2_bytes_in_all_four() {
    let cases = cases();
    let ops: Vec<Value> = cases.iter().map(Case::mint_op).collect();
    let ours: Vec<String> = cases.iter().map(|c| c.tapgate_mint().to_base64()).collect();
    assert_eq!(
        ours[0],
        "AgEEbHNhdAJCAACfcuoM9JU248ZseH9wUYbfmkN4CDdTrpU21ls61/zdxDMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzAAIOc2VydmljZXM9c3ZjOjAAAAYgMhGOTzBwhH01+TTSs/Czt2wCshcooHKpXoye029+Ew0="
    );
    for imp in ALL {
        let theirs = imp.run(&ops);
        for (i, r) in theirs.iter().enumerate() {
            assert_eq!(r["v2_b64"], ours[i], "{imp:?} case {i}");
        }
    }
}

#[test]
fn tapgate_tokens_verify_in_each_library_and_tampering_does_not() {
    let cases = cases();
    let mut ops = Vec::new();
    for c in &cases {
        let b64 = c.tapgate_mint().to_base64();
        ops.push(json!({"op": "verify", "macaroon_b64": b64, "root_key_hex": hex::encode(c.key), "allowed_caveats": c.caveats}));
        // Wrong key.
        ops.push(json!({"op": "verify", "macaroon_b64": b64, "root_key_hex": hex::encode(bytes32(7)), "allowed_caveats": c.caveats}));
        // A caveat changed in transit: same signature, different text.
        let mut forged = c.tapgate_mint();
        let sig = *forged.signature();
        forged = Macaroon::new(&RootKey::from_bytes(c.key), &c.id, c.location);
        for cav in &c.caveats {
            forged
                .add_first_party_caveat(cav.replace("svc", "svx").as_bytes())
                .unwrap();
        }
        let mut bytes = forged.encode();
        let n = bytes.len();
        bytes[n - 32..].copy_from_slice(&sig);
        let tampered = Macaroon::decode(&bytes).unwrap();
        let allowed: Vec<String> = c.caveats.iter().map(|s| s.replace("svc", "svx")).collect();
        ops.push(json!({"op": "verify", "macaroon_b64": tampered.to_base64(), "root_key_hex": hex::encode(c.key), "allowed_caveats": allowed}));
    }
    for imp in ALL {
        let res = imp.run(&ops);
        for (i, chunk) in res.chunks(3).enumerate() {
            assert_eq!(chunk[0]["valid"], true, "{imp:?} case {i}: {}", chunk[0]);
            assert_eq!(chunk[0]["id_hex"], hex::encode(&cases[i].id));
            assert_eq!(
                chunk[1]["valid"], false,
                "{imp:?} case {i} with a wrong key"
            );
            assert_eq!(chunk[2]["valid"], false, "{imp:?} case {i} tampered");
        }
    }
}

#[test]
fn tokens_minted_elsewhere_pass_tapgates_l402_verification() {
    for imp in ALL {
        let mut ops = Vec::new();
        let mut inputs = Vec::new();
        for seed in 0..4u64 {
            let (case, pre) = l402_case(1000 + seed, &TOKEN_CAVEATS);
            ops.push(case.mint_op());
            inputs.push((case, pre));
        }
        let minted = imp.run(&ops);
        for ((case, pre), r) in inputs.iter().zip(&minted) {
            let h = header(r["v2_b64"].as_str().unwrap(), pre);
            let key = RootKey::from_bytes(case.key);
            let id = Identifier::decode(&case.id).unwrap();
            let d = verify_header(&[&h], &ctx("GET"), |t| {
                (*t == id.token_id).then(|| key.clone())
            })
            .unwrap();
            assert_eq!(d.token_id, id.token_id, "{imp:?}");
            assert_eq!(d.payment_hash, id.payment_hash);
            assert_eq!(d.restrictions.valid_until, Some(1_800_000_000));
            // And the same token is refused for a method it does not allow, or a wrong preimage.
            assert!(matches!(
                verify_header(&[&h], &ctx("DELETE"), |_| Some(key.clone())),
                Err(VerifyError::MethodNotAllowed(_))
            ));
            let wrong = header(r["v2_b64"].as_str().unwrap(), &preimage(5));
            assert_eq!(
                verify_header(&[&wrong], &ctx("GET"), |_| Some(key.clone())),
                Err(VerifyError::PreimageMismatch)
            );
        }
    }
}

#[test]
fn attenuation_by_another_library_verifies_in_tapgate_and_narrows() {
    let (case, pre) = l402_case(2000, &TOKEN_CAVEATS);
    let ours = case.tapgate_mint().to_base64();
    let key = RootKey::from_bytes(case.key);
    for imp in ALL {
        let res = imp.run(&[
            json!({"op": "attenuate", "macaroon_b64": ours, "caveats": ["svc_methods=GET", "svc_budget_usd=0.50"]}),
            json!({"op": "attenuate", "macaroon_b64": ours, "caveats": ["svc_valid_until=1900000000"]}),
        ]);
        let narrowed = header(res[0]["v2_b64"].as_str().unwrap(), &pre);
        let d = verify_header(&[&narrowed], &ctx("GET"), |_| Some(key.clone())).unwrap();
        assert_eq!(
            d.restrictions.budget_usd.unwrap().to_string(),
            "0.50",
            "{imp:?}"
        );
        assert!(matches!(
            verify_header(&[&narrowed], &ctx("POST"), |_| Some(key.clone())),
            Err(VerifyError::MethodNotAllowed(_))
        ));
        let widened = header(res[1]["v2_b64"].as_str().unwrap(), &pre);
        assert!(
            matches!(
                verify_header(&[&widened], &ctx("GET"), |_| Some(key.clone())),
                Err(VerifyError::Caveat(CaveatError::Widening(_)))
            ),
            "{imp:?} widening accepted"
        );
        // Same bytes as tapgate's own attenuation.
        let mut m = case.tapgate_mint();
        m.add_first_party_caveat(b"svc_methods=GET").unwrap();
        m.add_first_party_caveat(b"svc_budget_usd=0.50").unwrap();
        assert_eq!(res[0]["v2_b64"], m.to_base64(), "{imp:?}");
    }
}

#[test]
fn tapgate_attenuation_of_foreign_tokens_verifies_there() {
    let (case, _) = l402_case(3000, &TOKEN_CAVEATS[..1]);
    for imp in ALL {
        let minted = imp.run(&[case.mint_op()]);
        let mut m = Macaroon::from_base64(minted[0]["v2_b64"].as_str().unwrap()).unwrap();
        m.add_first_party_caveat(b"svc_max_calls=10").unwrap();
        let mut allowed = case.caveats.clone();
        let without = allowed.clone();
        allowed.push("svc_max_calls=10".into());
        let res = imp.run(&[
            json!({"op": "verify", "macaroon_b64": m.to_base64(), "root_key_hex": hex::encode(case.key), "allowed_caveats": allowed}),
            json!({"op": "verify", "macaroon_b64": m.to_base64(), "root_key_hex": hex::encode(case.key), "allowed_caveats": without}),
            json!({"op": "decode", "macaroon_b64": m.to_base64()}),
        ]);
        assert_eq!(res[0]["valid"], true, "{imp:?}: {}", res[0]);
        assert_eq!(
            res[1]["valid"], false,
            "{imp:?} accepted an unsatisfied caveat"
        );
        assert_eq!(res[2]["signature_hex"], hex::encode(m.signature()));
        assert_eq!(res[2]["caveats"], json!(allowed));
    }
}

#[test]
fn url_safe_unpadded_output_of_other_libraries_is_accepted() {
    // pymacaroons and macaroon.js serialise URL-safe without padding when left to themselves.
    let (case, pre) = l402_case(4000, &TOKEN_CAVEATS);
    let b64 = case.tapgate_mint().to_base64();
    let url = b64
        .replace('+', "-")
        .replace('/', "_")
        .trim_end_matches('=')
        .to_owned();
    let key = RootKey::from_bytes(case.key);
    let d = verify_header(&[&header(&url, &pre)], &ctx("POST"), |_| Some(key.clone())).unwrap();
    assert_eq!(d.tier, 0);
}
