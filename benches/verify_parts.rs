//! The stages of verification timed one by one, to see where `verify_header`'s time goes:
//! the allocation-free request path (header split, base64 into a stack buffer, the macaroon
//! read in place, signature chain, caveat evaluation, preimage hash, root-key lookup) and,
//! for comparison, the owned parse (`parse_authorization`, `Macaroon::decode`).
//! `cargo bench --bench verify_parts`.

#![allow(clippy::unwrap_used, missing_docs)]
use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tapgate::l402::header::parse_authorization;
use tapgate::l402::macaroon::{MacaroonRef, decode_base64_liberal_into};
use tapgate::l402::verify::{verify_credential, verify_header};
use tapgate::l402::{IdHashing, Identifier, Macaroon, Preimage, RequestContext, RootKey, TokenId};

fn stages(c: &mut Criterion) {
    let pre = Preimage::from_bytes([0x22; 32]);
    let key = RootKey::from_bytes([0x11; 32]);
    let token_id = TokenId([0x33; 32]);
    let id = Identifier::new(pre.payment_hash(), token_id);
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
    let borrowed = MacaroonRef::decode(&bytes).unwrap();
    let ctx = RequestContext {
        service: "svc",
        method: "GET",
        path: "/v1/data",
        now: 1_700_000_000,
    };
    let cache: HashMap<TokenId, RootKey, IdHashing> = (0..10_000u32)
        .map(|i| {
            let mut t = [0u8; 32];
            t[..4].copy_from_slice(&i.to_be_bytes());
            (TokenId(t), RootKey::from_bytes([i as u8; 32]))
        })
        .chain([(token_id, key.clone())])
        .collect();

    c.bench_function("full/verify_header", |bn| {
        bn.iter(|| verify_header(&[black_box(&h)], &ctx, |t| cache.get(t).cloned()).is_ok())
    });
    c.bench_function("full/parse_then_verify_credential", |bn| {
        bn.iter(|| {
            let cred = parse_authorization(&[black_box(&h)]).unwrap();
            verify_credential(&cred, &ctx, |t| cache.get(t).cloned()).is_ok()
        })
    });
    c.bench_function("b64_into_stack", |bn| {
        bn.iter(|| {
            let mut buf = [0u8; 512];
            decode_base64_liberal_into(black_box(&b64), &mut buf).unwrap()
        })
    });
    c.bench_function("decode_borrowed", |bn| {
        bn.iter(|| MacaroonRef::decode(black_box(&bytes)).is_ok())
    });
    c.bench_function("verify_sig_borrowed", |bn| {
        bn.iter(|| black_box(&borrowed).verify_signature(&key).is_ok())
    });
    c.bench_function("evaluate_borrowed", |bn| {
        bn.iter(|| {
            tapgate::l402::caveat::evaluate(
                black_box(&borrowed).caveats().map(|c| c.id),
                black_box("svc"),
            )
            .is_ok()
        })
    });
    c.bench_function("sha", |bn| bn.iter(|| black_box(&pre).payment_hash()));
    c.bench_function("lookup", |bn| {
        bn.iter(|| cache.get(black_box(&token_id)).cloned().is_some())
    });
    c.bench_function("owned/parse_authorization", |bn| {
        bn.iter(|| parse_authorization(&[black_box(&h)]).is_ok())
    });
    c.bench_function("owned/b64", |bn| {
        bn.iter(|| {
            tapgate::l402::macaroon::decode_base64_liberal(black_box(&b64))
                .unwrap()
                .len()
        })
    });
    c.bench_function("owned/decode", |bn| {
        bn.iter(|| Macaroon::decode(black_box(&bytes)).is_ok())
    });
}
criterion_group!(g, stages);
criterion_main!(g);
