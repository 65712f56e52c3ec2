//! The stages of verification timed one by one (header parse, base64, macaroon decode,
//! signature chain, caveat evaluation, preimage hash), to see where `verify`'s time goes.
//! `cargo bench --bench verify_parts`.

#![allow(clippy::unwrap_used, missing_docs)]
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tapgate::l402::header::parse_authorization;
use tapgate::l402::{Identifier, Macaroon, Preimage, RootKey, TokenId};
fn stages(c: &mut Criterion) {
    let pre = Preimage::from_bytes([0x22; 32]);
    let key = RootKey::from_bytes([0x11; 32]);
    let id = Identifier::new(pre.payment_hash(), TokenId([0x33; 32]));
    let mut m = Macaroon::new(&key, &id.encode(), "tapgate");
    for cv in [
        "services=svc:0",
        "svc_valid_until=1900000000",
        "svc_methods=GET,POST",
    ] {
        m.add_first_party_caveat(cv.as_bytes()).unwrap();
    }
    let h = format!("L402 {}:{}", m.to_base64(), hex::encode(pre.expose()));
    let b64 = m.to_base64();
    let bytes = m.encode();
    c.bench_function("parse_authorization", |bn| {
        bn.iter(|| parse_authorization(&[black_box(&h)]).is_ok())
    });
    c.bench_function("b64", |bn| {
        bn.iter(|| {
            tapgate::l402::macaroon::decode_base64_liberal(black_box(&b64))
                .unwrap()
                .len()
        })
    });
    c.bench_function("decode", |bn| {
        bn.iter(|| Macaroon::decode(black_box(&bytes)).is_ok())
    });
    c.bench_function("verify_sig", |bn| {
        bn.iter(|| m.verify_signature(black_box(&key)).is_ok())
    });
    c.bench_function("evaluate", |bn| {
        bn.iter(|| {
            tapgate::l402::caveat::evaluate(m.caveats().map(|c| c.id), black_box("svc")).is_ok()
        })
    });
    c.bench_function("sha", |bn| bn.iter(|| black_box(&pre).payment_hash()));
}
criterion_group!(g, stages);
criterion_main!(g);
