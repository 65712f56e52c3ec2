//! Fuzz target `authorization`: the `Authorization` credential parser, and the
//! `WWW-Authenticate` challenge parser beside it.
//!
//! The input, as lossy UTF-8, is split on '\n' into up to three header values
//! (the raw values of every `Authorization` header on one request; the third
//! keeps any further newlines). Neither `parse_authorization` nor
//! `parse_challenge` (on the first value) may panic on any input. What parses
//! must survive a round trip through the header value emitted for it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapgate::l402::header::{parse_authorization, parse_challenge};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let values: Vec<&str> = text.splitn(3, '\n').collect();

    if let Ok(credential) = parse_authorization(&values) {
        let emitted = credential.to_header_value();
        match parse_authorization(&[emitted.as_str()]) {
            Ok(again) => assert_eq!(credential, again, "credential changed through {emitted:?}"),
            Err(e) => panic!("emitted credential {emitted:?} does not parse: {e}"),
        }
    }

    if let Some(first) = values.first() {
        if let Ok(challenge) = parse_challenge(first) {
            let emitted = challenge.to_header_value();
            match parse_challenge(&emitted) {
                Ok(again) => assert_eq!(challenge, again, "challenge changed through {emitted:?}"),
                Err(e) => panic!("emitted challenge {emitted:?} does not parse: {e}"),
            }
        }
    }
});
