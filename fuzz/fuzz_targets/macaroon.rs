//! Fuzz target `macaroon`: the binary (V2) and base64 macaroon decoders.
//!
//! Decoding arbitrary bytes must never panic. Whatever decodes must survive a
//! round trip: `decode(encode(m)) == m`, and encoding is stable from then on
//! (`encode(decode(encode(m))) == encode(m)`), so a canonical input
//! re-encodes to itself; `from_base64(to_base64(m)) == m` too. The same holds
//! for what `from_base64` accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapgate::l402::macaroon::Macaroon;

fn check_round_trip(m: &Macaroon) {
    let encoded = m.encode();
    let again = match Macaroon::decode(&encoded) {
        Ok(again) => again,
        Err(e) => panic!("decode(encode(m)) failed: {e:?}\nencoded: {encoded:02x?}"),
    };
    assert_eq!(*m, again, "decode(encode(m)) != m");
    assert_eq!(
        encoded,
        again.encode(),
        "encode(decode(encode(m))) != encode(m)"
    );
    match Macaroon::from_base64(&m.to_base64()) {
        Ok(again) => assert_eq!(*m, again, "from_base64(to_base64(m)) != m"),
        Err(e) => panic!("from_base64(to_base64(m)) failed: {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Macaroon::decode(data) {
        check_round_trip(&m);
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(m) = Macaroon::from_base64(&text) {
        check_round_trip(&m);
    }
});
