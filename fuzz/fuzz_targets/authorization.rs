//! Fuzz target `authorization`: the `Authorization` header parser.
//!
//! The input, as lossy UTF-8, is split on '\n' into up to three header values
//! (the raw values of every `Authorization` header on one request; the third
//! keeps any further newlines). Neither `parse_authorization` nor
//! `parse_challenge` may panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapgate::l402::header::{parse_authorization, parse_challenge};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let values: Vec<&str> = text.splitn(3, '\n').collect();
    let _ = parse_authorization(&values);
    if let Some(first) = values.first() {
        let _ = parse_challenge(first);
    }
});
