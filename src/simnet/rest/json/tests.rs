#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

#[test]
fn int64_is_a_string_bytes_standard_base64_enums_names_and_unpopulated_fields_emitted() {
    let invoice = lnrpc::Invoice {
        memo: "coffee".into(),
        r_hash: vec![0xfb; 3],
        value: 1_000,
        expiry: 3_600,
        add_index: u64::MAX,
        state: lnrpc::invoice::InvoiceState::Settled as i32,
        ..Default::default()
    };
    let j = invoice.to_json();
    assert_eq!(j["memo"], "coffee");
    assert_eq!(j["value"], "1000");
    assert_eq!(j["value_msat"], "0");
    assert_eq!(j["add_index"], "18446744073709551615");
    // Standard alphabet with padding: 0xfbfbfb is "+/v7", never "-_v7".
    assert_eq!(j["r_hash"], "+/v7");
    assert_eq!(j["r_preimage"], "");
    assert_eq!(j["state"], "SETTLED");
    assert_eq!(j["settled"], false);
    assert_eq!(j["route_hints"], json!([]));
    assert_eq!(j["htlcs"], json!([]));
    assert_eq!(
        j.as_object().unwrap().len(),
        22,
        "every field of simnet's Invoice"
    );
}

#[test]
fn unset_messages_are_null_and_32_bit_integers_numbers() {
    let balance = lnrpc::ChannelBalanceResponse {
        local_balance: Some(lnrpc::Amount {
            sat: 5,
            msat: 5_000,
        }),
        ..Default::default()
    };
    assert_eq!(
        balance.to_json(),
        json!({
            "local_balance": {"sat": "5", "msat": "5000"},
            "remote_balance": null,
            "custom_channel_data": "",
        })
    );
    let info = lnrpc::GetInfoResponse {
        block_height: 500,
        chains: vec![lnrpc::Chain {
            chain: "bitcoin".into(),
            network: "regtest".into(),
        }],
        ..Default::default()
    };
    let j = info.to_json();
    assert_eq!(j["block_height"], 500);
    assert_eq!(j["best_header_timestamp"], "0");
    assert_eq!(
        j["chains"],
        json!([{"chain": "bitcoin", "network": "regtest"}])
    );
    assert_eq!(j["uris"], json!([]));
}

#[test]
fn a_payment_has_status_and_failure_reason_by_name_and_maps_keyed_by_strings() {
    let payment = lnrpc::Payment {
        status: lnrpc::payment::PaymentStatus::Failed as i32,
        failure_reason: lnrpc::PaymentFailureReason::FailureReasonNoRoute as i32,
        first_hop_custom_records: [(65_536, vec![1, 2])].into_iter().collect(),
        htlcs: vec![lnrpc::HtlcAttempt {
            status: lnrpc::htlc_attempt::HtlcStatus::Failed as i32,
            ..Default::default()
        }],
        ..Default::default()
    };
    let j = payment.to_json();
    assert_eq!(j["status"], "FAILED");
    assert_eq!(j["failure_reason"], "FAILURE_REASON_NO_ROUTE");
    assert_eq!(j["first_hop_custom_records"], json!({"65536": "AQI="}));
    assert_eq!(j["htlcs"][0]["status"], "FAILED");
    assert_eq!(j["htlcs"][0]["attempt_id"], "0");
    // A number the enum does not name is written as the number.
    let odd = lnrpc::Payment {
        status: 42,
        ..Default::default()
    };
    assert_eq!(odd.to_json()["status"], 42);
}

#[test]
fn requests_take_proto_or_json_names_integers_as_numbers_or_strings_and_either_base64() {
    let a: lnrpc::Invoice = from_json(&json!({
        "memo": "m",
        "value": "1500",
        "expiry": 600,
        "rPreimage": "-_-_",
        "description_hash": "AQI",
        "private": null,
        "state": "ACCEPTED",
        "route_hints": [{"hopHints": [{"node_id": "02ab", "chan_id": "7", "fee_base_msat": "1"}]}],
    }))
    .unwrap();
    assert_eq!(a.memo, "m");
    assert_eq!(a.value, 1_500);
    assert_eq!(a.expiry, 600);
    assert_eq!(
        a.r_preimage,
        vec![0xfb, 0xff, 0xbf],
        "URL-safe \"-_-_\" is standard \"+/+/\""
    );
    assert_eq!(a.description_hash, vec![1, 2]);
    assert!(!a.private);
    assert_eq!(a.state, lnrpc::invoice::InvoiceState::Accepted as i32);
    assert_eq!(a.route_hints[0].hop_hints[0].chan_id, 7);
    assert_eq!(a.route_hints[0].hop_hints[0].fee_base_msat, 1);

    let p: routerrpc::SendPaymentRequest = from_json(&json!({
        "payment_request": "lnbcrt1",
        "timeoutSeconds": 60,
        "fee_limit_sat": "10",
        "outgoing_chan_ids": ["1", 2],
        "time_pref": "0.5",
        "first_hop_custom_records": {"65536": "AQI="},
        "amt": 1e3,
    }))
    .unwrap();
    assert_eq!(p.payment_request, "lnbcrt1");
    assert_eq!(p.timeout_seconds, 60);
    assert_eq!(p.fee_limit_sat, 10);
    assert_eq!(p.outgoing_chan_ids, vec![1, 2]);
    assert!((p.time_pref - 0.5).abs() < f64::EPSILON);
    assert_eq!(p.first_hop_custom_records[&65_536], vec![1, 2]);
    assert_eq!(p.amt, 1_000);
}

#[test]
fn fields_only_lnd_has_are_accepted_and_ignored() {
    let a: lnrpc::Invoice =
        from_json(&json!({"value": 1, "is_amp": true, "fallbackAddr": "x"})).unwrap();
    assert_eq!(a.value, 1);
    let p: routerrpc::SendPaymentRequest =
        from_json(&json!({"dest_features": [9], "outgoing_chan_id": "1"})).unwrap();
    assert_eq!(p, routerrpc::SendPaymentRequest::default());
}

#[test]
fn bad_requests_are_refused_in_protojsons_words() {
    let err = |v: Value| from_json::<lnrpc::Invoice>(&v).unwrap_err().to_string();
    assert_eq!(err(json!({"nope": 1})), r#"proto: unknown field "nope""#);
    assert_eq!(
        err(json!({"route_hints": [{"hop_hints": [{"x": 1}]}]})),
        r#"proto: unknown field "x""#
    );
    assert_eq!(
        err(json!({"value": "ten"})),
        r#"proto: invalid value for int64 field value: "ten""#
    );
    assert_eq!(
        err(json!({"value": 1.5})),
        "proto: invalid value for int64 field value: 1.5"
    );
    assert_eq!(
        err(json!({"add_index": -1})),
        "proto: invalid value for uint64 field add_index: -1"
    );
    assert_eq!(
        err(json!({"r_hash": "not base64!"})),
        r#"proto: invalid value for bytes field r_hash: "not base64!""#
    );
    assert_eq!(
        err(json!({"private": "yes"})),
        r#"proto: invalid value for bool field private: "yes""#
    );
    assert_eq!(
        err(json!({"state": "DONE"})),
        r#"proto: invalid value for enum field state: "DONE""#
    );
    assert_eq!(
        err(json!({"r_hash": "AA==", "rHash": "AA=="})),
        r#"proto: duplicate field "r_hash""#
    );
    assert_eq!(err(json!([1])), "proto: unexpected token [1]");
    let overflow =
        from_json::<routerrpc::SendPaymentRequest>(&json!({"timeout_seconds": 4_294_967_296_u64}));
    assert_eq!(
        overflow.unwrap_err().to_string(),
        "proto: invalid value for int32 field timeout_seconds: 4294967296"
    );
}

#[test]
fn a_status_is_code_message_and_empty_details() {
    assert_eq!(
        status_json(16, "verification failed: signature mismatch"),
        json!({"code": 16, "message": "verification failed: signature mismatch", "details": []})
    );
}

#[test]
fn json_names_map_back_to_proto_names() {
    assert_eq!(proto_name("rHash"), "r_hash");
    assert_eq!(
        proto_name("firstHopCustomRecords"),
        "first_hop_custom_records"
    );
    assert_eq!(proto_name("r_hash"), "r_hash");
}
