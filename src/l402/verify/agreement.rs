//! The allocation-free way through [`verify_header`] agrees with parsing the credential and
//! then verifying it ([`verify_parsed`]: [`header::parse_authorization`], then
//! [`verify_credential`]): the same decision or the same refusal, on any input.

use proptest::prelude::*;

use super::*;
use crate::l402::macaroon::decode_base64_liberal;

const KEY: [u8; 32] = [0x11; 32];
const PREIMAGE: [u8; 32] = [0x22; 32];
const TOKEN: [u8; 32] = [0x33; 32];

/// Caveats near the grammar, and some far from it.
fn caveat() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(("(svc|other|svc_x|a)", 0u16..300), 0..3).prop_map(|v| {
            let items: Vec<String> = v.iter().map(|(n, t)| format!("{n}:{t}")).collect();
            format!("services={}", items.join(","))
        }),
        "services ?= ?(svc|other|svc_x):[0-3]( ?, ?(svc|b):[0-3])?",
        "(svc|other|svc_x|zz)(_valid_until|_methods|_capabilities|_budget_usd|_budget_usd_per_day|_max_calls|_region)=[0-9A-Za-z., :]{0,12}",
        (1_699_999_990u64..1_700_000_010).prop_map(|t| format!("svc_valid_until={t}")),
        "(svc|other)_methods=(GET|POST|GET,POST|get| GET , PUT|)",
        "(svc|other)_(budget_usd|budget_usd_per_day|max_calls)=[0-9]{1,3}(\\.[0-9]{0,3})?",
        ".{1,20}",
    ]
}

/// Everything a request can vary: the token, how the header carries it, and the request.
#[derive(Debug, Clone)]
struct Case {
    caveats: Vec<String>,
    location: String,
    identifier: Option<Vec<u8>>,
    sign_with_other_key: bool,
    preimage: [u8; 32],
    url_safe: bool,
    strip_padding: bool,
    scheme: &'static str,
    /// 0: one header value; 1: the same credential twice; 2: a second, different one;
    /// 3: a discharge macaroon after the token.
    shape: u8,
    edits: Vec<(usize, Option<char>)>,
    key_known: bool,
    service: &'static str,
    method: &'static str,
    now: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (
            proptest::collection::vec(caveat(), 0..6),
            "[a-z]{0,8}",
            proptest::option::weighted(0.1, proptest::collection::vec(any::<u8>(), 0..70)),
            proptest::bool::weighted(0.1),
            prop_oneof![9 => Just(PREIMAGE), 1 => any::<[u8; 32]>()],
            any::<bool>(),
            any::<bool>(),
        ),
        (
            prop_oneof![Just("L402"), Just("LSAT"), Just("l402"), Just("Bearer")],
            prop_oneof![7 => Just(0u8), 1 => Just(1), 1 => Just(2), 1 => Just(3)],
            proptest::collection::vec((any::<usize>(), proptest::option::of(any::<char>())), 0..2)
                .prop_map(|e| if e.len() == 1 { Vec::new() } else { e }),
            proptest::bool::weighted(0.95),
            prop_oneof![Just("svc"), Just("other"), Just("svc_x"), Just("nope")],
            prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("get")],
            1_699_999_995u64..1_700_000_005,
        ),
    )
        .prop_map(|(a, b)| Case {
            caveats: a.0,
            location: a.1,
            identifier: a.2,
            sign_with_other_key: a.3,
            preimage: a.4,
            url_safe: a.5,
            strip_padding: a.6,
            scheme: b.0,
            shape: b.1,
            edits: b.2,
            key_known: b.3,
            service: b.4,
            method: b.5,
            now: b.6,
        })
}

fn mint(c: &Case, caveats: &[String]) -> String {
    let pre = Preimage::from_bytes(PREIMAGE);
    let id = c.identifier.clone().unwrap_or_else(|| {
        Identifier::new(pre.payment_hash(), TokenId(TOKEN))
            .encode()
            .to_vec()
    });
    let key = RootKey::from_bytes(if c.sign_with_other_key { [9; 32] } else { KEY });
    let mut m = Macaroon::new(&key, &id, &c.location);
    for cv in caveats {
        // Caveats the minting side refuses (empty, too long) are left out.
        let _ = m.add_first_party_caveat(cv.as_bytes());
    }
    let mut b64 = m.to_base64();
    if c.url_safe {
        b64 = b64.replace('+', "-").replace('/', "_");
    }
    if c.strip_padding {
        b64 = b64.trim_end_matches('=').to_owned();
    }
    b64
}

fn headers(c: &Case) -> Vec<String> {
    let token = mint(c, &c.caveats);
    let pre = hex::encode(c.preimage);
    let mut values = match c.shape {
        0 => vec![format!("{} {token}:{pre}", c.scheme)],
        1 => vec![
            format!("LSAT {token}:{pre}"),
            format!("{} {token}:{pre}", c.scheme),
        ],
        2 => vec![
            format!("{} {token}:{pre}", c.scheme),
            format!(
                "{} {}:{pre}",
                c.scheme,
                mint(c, &c.caveats[..c.caveats.len() / 2])
            ),
        ],
        _ => vec![format!("{} {token},{token}:{pre}", c.scheme)],
    };
    // Edits land in the first value: replace one character, or delete it.
    let mut chars: Vec<char> = values[0].chars().collect();
    for &(at, with) in &c.edits {
        if chars.is_empty() {
            break;
        }
        let at = at % chars.len();
        match with {
            Some(ch) => chars[at] = ch,
            None => {
                chars.remove(at);
            }
        }
    }
    values[0] = chars.into_iter().collect();
    values
}

fn both_ways(c: &Case) -> (Result<Decision, VerifyError>, Result<Decision, VerifyError>) {
    let values = headers(c);
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let ctx = RequestContext {
        service: c.service,
        method: c.method,
        path: "/",
        now: c.now,
    };
    let lookup =
        |t: &TokenId| (c.key_known && *t == TokenId(TOKEN)).then(|| RootKey::from_bytes(KEY));
    (
        verify_header(&refs, &ctx, lookup),
        verify_parsed(&refs, &ctx, lookup),
    )
}

/// A usual token, as tapgate mints it, in a usual request.
fn usual() -> Case {
    Case {
        caveats: vec![
            "services=svc:1".into(),
            "svc_valid_until=1900000000".into(),
            "svc_methods=GET,POST".into(),
        ],
        location: "tapgate".into(),
        identifier: None,
        sign_with_other_key: false,
        preimage: PREIMAGE,
        url_safe: false,
        strip_padding: false,
        scheme: "L402",
        shape: 0,
        edits: Vec::new(),
        key_known: true,
        service: "svc",
        method: "POST",
        now: 1_700_000_000,
    }
}

#[test]
fn the_usual_token_takes_the_fast_way_and_is_granted() {
    let c = usual();
    let values = headers(&c);
    let (b64, _) = header::split_single(&[&values[0]]).unwrap();
    assert!(
        b64.len().div_ceil(4) * 3 <= SMALL_TOKEN,
        "fits the small buffer"
    );
    let mut buf = [0u8; SMALL_TOKEN];
    let len = macaroon::decode_base64_liberal_into(b64, &mut buf).unwrap();
    assert!(MacaroonRef::decode(&buf[..len]).is_ok());
    let (fast, slow) = both_ways(&c);
    assert_eq!(fast.as_ref().map(|d| d.tier), Ok(1));
    assert_eq!(fast, slow);
}

#[test]
fn larger_tokens_use_larger_buffers_and_agree() {
    let caps = |n: usize| format!("svc_capabilities={}", vec!["cap"; n].join(","));
    for caveats in [vec![caps(100)], vec![caps(250), caps(250), caps(250)]] {
        let c = Case {
            caveats: [vec!["services=svc:0".to_owned()], caveats].concat(),
            ..usual()
        };
        let (fast, slow) = both_ways(&c);
        assert!(fast.is_ok(), "{fast:?}");
        assert_eq!(fast, slow);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn fast_and_reference_agree(c in case()) {
        let (fast, slow) = both_ways(&c);
        prop_assert_eq!(fast, slow);
    }

    #[test]
    fn borrowed_and_owned_decoders_agree(
        c in case(),
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        start_valid in proptest::bool::weighted(0.8),
    ) {
        let mut bytes = if start_valid {
            decode_base64_liberal(&mint(&c, &c.caveats)).unwrap()
        } else {
            [&[2u8][..], &bytes].concat()
        };
        for (at, val) in flips {
            if !bytes.is_empty() {
                let len = bytes.len();
                bytes[at % len] = val;
            }
        }
        if bytes.first() == Some(&2) {
            let owned = Macaroon::decode(&bytes);
            let borrowed = MacaroonRef::decode(&bytes);
            match (&owned, &borrowed) {
                (Ok(o), Ok(b)) => {
                    prop_assert_eq!(o.identifier(), b.identifier());
                    prop_assert_eq!(o.location(), b.location());
                    prop_assert_eq!(o.signature(), b.signature());
                    prop_assert!(o.caveats().eq(b.caveats()));
                    prop_assert_eq!(b.caveats().len(), o.caveats().len());
                    prop_assert_eq!(
                        b.has_third_party_caveat(),
                        o.caveats().any(|c| c.is_third_party())
                    );
                    let key = RootKey::from_bytes(KEY);
                    prop_assert_eq!(o.verify_signature(&key), b.verify_signature(&key));
                }
                (Err(o), Err(b)) => prop_assert_eq!(o, b),
                _ => prop_assert!(false, "owned {:?} but borrowed {:?}", owned, borrowed),
            }
        }
    }

    #[test]
    fn base64_into_a_buffer_agrees_on_encoded_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        way in 0usize..4,
        tweak in any::<u8>(),
    ) {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        let engines = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD];
        let encoded = engines[way].encode(&bytes);
        // The encoding as is, and with its last character changed (often to one with
        // non-zero trailing bits, which both decoders must refuse alike).
        let mut changed = encoded.clone().into_bytes();
        if let Some(last) = changed.iter_mut().rev().find(|c| **c != b'=') {
            *last = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[usize::from(tweak % 64)];
        }
        let changed = String::from_utf8(changed).unwrap();
        for s in [&encoded, &changed] {
            let mut out = vec![0u8; s.len().div_ceil(4) * 3];
            let into = macaroon::decode_base64_liberal_into(s, &mut out).map(|n| out[..n].to_vec());
            prop_assert_eq!(&into, &decode_base64_liberal(s));
        }
        let mut out = vec![0u8; encoded.len().div_ceil(4) * 3];
        let n = macaroon::decode_base64_liberal_into(&encoded, &mut out).unwrap();
        prop_assert_eq!(&out[..n], &bytes[..]);
    }

    #[test]
    fn base64_into_a_buffer_agrees(s in "[A-Za-z0-9+/_=-]{0,140}|[A-Za-z0-9+/]{0,140}={0,3}|.{0,20}") {
        let mut out = vec![0u8; s.len().div_ceil(4) * 3];
        let into = macaroon::decode_base64_liberal_into(&s, &mut out).map(|n| out[..n].to_vec());
        prop_assert_eq!(into, decode_base64_liberal(&s));
    }
}
