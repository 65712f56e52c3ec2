//! The JSON that lnd's REST gateway reads and writes, hand-written for the few messages the
//! simnet's REST endpoints carry (prost messages derive no serde).
//!
//! lnd's gateway marshals with `protojson.MarshalOptions{EmitUnpopulated: true, UseProtoNames:
//! true}` and unmarshals with `protojson.UnmarshalOptions{AllowPartial: false}` (lnd v0.21.0-beta
//! `lnrpc/rpc_utils.go` `RESTJsonMarshalOpts`/`RESTJsonUnmarshalOpts`, installed on the mux in
//! `lnd.go` through `proxy.WithMarshalerOption(proxy.MIMEWildcard, &proxy.JSONPb{…})`). So, as
//! protojson (google.golang.org/protobuf `encoding/protojson`, the proto3 JSON mapping) does:
//!
//! - **out**: proto field names; every field, populated or not (an unset message field is
//!   `null`, an empty list `[]`, an empty map `{}`); `int64`/`uint64` as decimal strings, 32-bit
//!   integers as numbers; `bytes` as standard base64 with padding; enums by name (a value the
//!   enum does not name, as its number); map keys as strings.
//! - **in**: a field by its proto name or its lowerCamel JSON name (both at once is a duplicate);
//!   `null` leaves a field unset; integers as numbers or decimal strings; `bytes` as standard or
//!   URL-safe base64, padded or not; enums by name or number; an unknown field is refused.
//!
//! Only the fields simnet's `proto/*.proto` define are mapped. Fields that lnd v0.21.0-beta
//! defines and simnet's subset leaves out are accepted in requests and ignored (listed per
//! message below), so a request lnd accepts is not refused for naming them. Error texts follow
//! protojson's (`proto: unknown field "x"`), without its `(line L:C)` position.

use std::collections::{BTreeMap, HashMap, HashSet};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Map, Number, Value};

use crate::lightning::proto::{lnrpc, routerrpc};

/// A request body that is not the JSON form of the message, in protojson's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("proto: {0}")]
pub struct JsonError(String);

impl JsonError {
    fn invalid(kind: &str, field: &str, value: &Value) -> Self {
        JsonError(format!("invalid value for {kind} field {field}: {value}"))
    }
}

/// A message lnd's gateway writes: its protojson form.
pub trait ToJson {
    /// The message as protojson with lnd's REST options.
    fn to_json(&self) -> Value;
}

/// A message lnd's gateway reads from a request body.
pub trait FromJson: Default {
    /// Sets the field whose proto name is `field` from `value` (`null` = unset). `Ok(false)`:
    /// the message has no such field.
    fn set(&mut self, field: &str, value: &Value) -> Result<bool, JsonError>;
}

/// Parses a request body as protojson does: the whole of `value` must be an object of the
/// message's fields.
pub fn from_json<T: FromJson>(value: &Value) -> Result<T, JsonError> {
    let Value::Object(fields) = value else {
        return Err(JsonError(format!("unexpected token {value}")));
    };
    let mut message = T::default();
    let mut seen = HashSet::new();
    for (key, value) in fields {
        let field = proto_name(key);
        if !seen.insert(field.clone()) {
            return Err(JsonError(format!("duplicate field {key:?}")));
        }
        if !message.set(&field, value)? {
            return Err(JsonError(format!("unknown field {key:?}")));
        }
    }
    Ok(message)
}

/// The proto name a JSON key stands for: a lowerCamel JSON name (`rHash`) back to its proto name
/// (`r_hash`); a proto name as it is. protojson's JSON name drops each `_` and capitalises the
/// letter after it, which this inverts for every field mapped here.
fn proto_name(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The `google.rpc.Status` body grpc-gateway writes for a failed call (grpc-gateway v2.16.0
/// `runtime/errors.go` `DefaultHTTPErrorHandler`: `s.Proto()` through the mux's marshaler, so
/// with lnd's options `details` is `[]` when there are none).
pub fn status_json(code: i32, message: &str) -> Value {
    object([
        ("code", Value::from(code)),
        ("message", Value::from(message)),
        ("details", Value::Array(Vec::new())),
    ])
}

// ---------------------------------------------------------------------------------------------
// Writing.

fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Map<_, _>>(),
    )
}

/// protojson writes 64-bit integers as strings (the proto3 JSON mapping).
fn int64(v: i64) -> Value {
    Value::String(v.to_string())
}

fn uint64(v: u64) -> Value {
    Value::String(v.to_string())
}

fn bytes(v: &[u8]) -> Value {
    Value::String(STANDARD.encode(v))
}

fn list<T: ToJson>(items: &[T]) -> Value {
    Value::Array(items.iter().map(ToJson::to_json).collect())
}

fn message<T: ToJson>(m: Option<&T>) -> Value {
    m.map_or(Value::Null, ToJson::to_json)
}

/// An enum by its name, or by its number when the enum has no such value (protojson).
fn enumeration(name: Option<&'static str>, number: i32) -> Value {
    name.map_or_else(|| Value::from(number), Value::from)
}

fn bytes_map(m: &HashMap<u64, Vec<u8>>) -> Value {
    // Sorted, as protojson (deterministic) and Go's encoding/json write map keys.
    let sorted: BTreeMap<u64, &Vec<u8>> = m.iter().map(|(k, v)| (*k, v)).collect();
    Value::Object(
        sorted
            .into_iter()
            .map(|(k, v)| (k.to_string(), bytes(v)))
            .collect(),
    )
}

impl ToJson for lnrpc::GetInfoResponse {
    fn to_json(&self) -> Value {
        object([
            (
                "identity_pubkey",
                Value::from(self.identity_pubkey.as_str()),
            ),
            ("alias", Value::from(self.alias.as_str())),
            (
                "num_pending_channels",
                Value::from(self.num_pending_channels),
            ),
            ("num_active_channels", Value::from(self.num_active_channels)),
            ("num_peers", Value::from(self.num_peers)),
            ("block_height", Value::from(self.block_height)),
            ("block_hash", Value::from(self.block_hash.as_str())),
            ("synced_to_chain", Value::from(self.synced_to_chain)),
            ("uris", Value::from(self.uris.clone())),
            ("best_header_timestamp", int64(self.best_header_timestamp)),
            ("version", Value::from(self.version.as_str())),
            (
                "num_inactive_channels",
                Value::from(self.num_inactive_channels),
            ),
            ("chains", list(&self.chains)),
            ("color", Value::from(self.color.as_str())),
            ("synced_to_graph", Value::from(self.synced_to_graph)),
            ("commit_hash", Value::from(self.commit_hash.as_str())),
        ])
    }
}

impl ToJson for lnrpc::Chain {
    fn to_json(&self) -> Value {
        object([
            ("chain", Value::from(self.chain.as_str())),
            ("network", Value::from(self.network.as_str())),
        ])
    }
}

impl ToJson for lnrpc::Amount {
    fn to_json(&self) -> Value {
        object([("sat", uint64(self.sat)), ("msat", uint64(self.msat))])
    }
}

impl ToJson for lnrpc::ChannelBalanceResponse {
    fn to_json(&self) -> Value {
        object([
            ("local_balance", message(self.local_balance.as_ref())),
            ("remote_balance", message(self.remote_balance.as_ref())),
            ("custom_channel_data", bytes(&self.custom_channel_data)),
        ])
    }
}

impl ToJson for lnrpc::HopHint {
    fn to_json(&self) -> Value {
        object([
            ("node_id", Value::from(self.node_id.as_str())),
            ("chan_id", uint64(self.chan_id)),
            ("fee_base_msat", Value::from(self.fee_base_msat)),
            (
                "fee_proportional_millionths",
                Value::from(self.fee_proportional_millionths),
            ),
            ("cltv_expiry_delta", Value::from(self.cltv_expiry_delta)),
        ])
    }
}

impl ToJson for lnrpc::RouteHint {
    fn to_json(&self) -> Value {
        object([("hop_hints", list(&self.hop_hints))])
    }
}

impl ToJson for lnrpc::InvoiceHtlc {
    fn to_json(&self) -> Value {
        let state = lnrpc::InvoiceHtlcState::try_from(self.state).ok();
        object([
            ("chan_id", uint64(self.chan_id)),
            ("htlc_index", uint64(self.htlc_index)),
            ("amt_msat", uint64(self.amt_msat)),
            ("accept_height", Value::from(self.accept_height)),
            ("accept_time", int64(self.accept_time)),
            ("resolve_time", int64(self.resolve_time)),
            ("expiry_height", Value::from(self.expiry_height)),
            (
                "state",
                enumeration(state.map(|s| s.as_str_name()), self.state),
            ),
            ("custom_records", bytes_map(&self.custom_records)),
            ("mpp_total_amt_msat", uint64(self.mpp_total_amt_msat)),
            ("custom_channel_data", bytes(&self.custom_channel_data)),
        ])
    }
}

impl ToJson for lnrpc::Invoice {
    fn to_json(&self) -> Value {
        let state = lnrpc::invoice::InvoiceState::try_from(self.state).ok();
        object([
            ("memo", Value::from(self.memo.as_str())),
            ("r_preimage", bytes(&self.r_preimage)),
            ("r_hash", bytes(&self.r_hash)),
            ("value", int64(self.value)),
            ("value_msat", int64(self.value_msat)),
            ("settled", Value::from(self.settled)),
            ("creation_date", int64(self.creation_date)),
            ("settle_date", int64(self.settle_date)),
            (
                "payment_request",
                Value::from(self.payment_request.as_str()),
            ),
            ("description_hash", bytes(&self.description_hash)),
            ("expiry", int64(self.expiry)),
            ("cltv_expiry", uint64(self.cltv_expiry)),
            ("route_hints", list(&self.route_hints)),
            ("private", Value::from(self.private)),
            ("add_index", uint64(self.add_index)),
            ("settle_index", uint64(self.settle_index)),
            ("amt_paid_sat", int64(self.amt_paid_sat)),
            ("amt_paid_msat", int64(self.amt_paid_msat)),
            (
                "state",
                enumeration(state.map(|s| s.as_str_name()), self.state),
            ),
            ("htlcs", list(&self.htlcs)),
            ("is_keysend", Value::from(self.is_keysend)),
            ("payment_addr", bytes(&self.payment_addr)),
        ])
    }
}

impl ToJson for lnrpc::AddInvoiceResponse {
    fn to_json(&self) -> Value {
        object([
            ("r_hash", bytes(&self.r_hash)),
            (
                "payment_request",
                Value::from(self.payment_request.as_str()),
            ),
            ("add_index", uint64(self.add_index)),
            ("payment_addr", bytes(&self.payment_addr)),
        ])
    }
}

impl ToJson for lnrpc::PayReq {
    fn to_json(&self) -> Value {
        object([
            ("destination", Value::from(self.destination.as_str())),
            ("payment_hash", Value::from(self.payment_hash.as_str())),
            ("num_satoshis", int64(self.num_satoshis)),
            ("timestamp", int64(self.timestamp)),
            ("expiry", int64(self.expiry)),
            ("description", Value::from(self.description.as_str())),
            (
                "description_hash",
                Value::from(self.description_hash.as_str()),
            ),
            ("fallback_addr", Value::from(self.fallback_addr.as_str())),
            ("cltv_expiry", int64(self.cltv_expiry)),
            ("route_hints", list(&self.route_hints)),
            ("payment_addr", bytes(&self.payment_addr)),
            ("num_msat", int64(self.num_msat)),
        ])
    }
}

impl ToJson for lnrpc::HtlcAttempt {
    fn to_json(&self) -> Value {
        let status = lnrpc::htlc_attempt::HtlcStatus::try_from(self.status).ok();
        object([
            (
                "status",
                enumeration(status.map(|s| s.as_str_name()), self.status),
            ),
            ("attempt_time_ns", int64(self.attempt_time_ns)),
            ("resolve_time_ns", int64(self.resolve_time_ns)),
            ("preimage", bytes(&self.preimage)),
            ("attempt_id", uint64(self.attempt_id)),
        ])
    }
}

impl ToJson for lnrpc::Payment {
    fn to_json(&self) -> Value {
        let status = lnrpc::payment::PaymentStatus::try_from(self.status).ok();
        let reason = lnrpc::PaymentFailureReason::try_from(self.failure_reason).ok();
        object([
            ("payment_hash", Value::from(self.payment_hash.as_str())),
            (
                "payment_preimage",
                Value::from(self.payment_preimage.as_str()),
            ),
            ("value_sat", int64(self.value_sat)),
            ("value_msat", int64(self.value_msat)),
            (
                "payment_request",
                Value::from(self.payment_request.as_str()),
            ),
            (
                "status",
                enumeration(status.map(|s| s.as_str_name()), self.status),
            ),
            ("fee_sat", int64(self.fee_sat)),
            ("fee_msat", int64(self.fee_msat)),
            ("creation_time_ns", int64(self.creation_time_ns)),
            ("htlcs", list(&self.htlcs)),
            ("payment_index", uint64(self.payment_index)),
            (
                "failure_reason",
                enumeration(reason.map(|r| r.as_str_name()), self.failure_reason),
            ),
            (
                "first_hop_custom_records",
                bytes_map(&self.first_hop_custom_records),
            ),
        ])
    }
}

// ---------------------------------------------------------------------------------------------
// Reading. Each reader takes the field's proto name for its error and maps `null` to the
// field's default, as protojson does.

fn parse_i128(field: &str, kind: &str, value: &Value) -> Result<Option<i128>, JsonError> {
    let parsed = match value {
        Value::Null => return Ok(None),
        Value::Number(n) => number_as_i128(n),
        // protojson takes a quoted integer for every integer kind.
        Value::String(s) => s.trim().parse::<i128>().ok().filter(|_| s.trim() == s),
        _ => None,
    };
    parsed
        .map(Some)
        .ok_or_else(|| JsonError::invalid(kind, field, value))
}

/// An integral JSON number (protojson also takes `1e3` or `5.0` when the value is integral).
fn number_as_i128(n: &Number) -> Option<i128> {
    if let Some(i) = n.as_i64() {
        return Some(i128::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Some(i128::from(u));
    }
    let f = n.as_f64()?;
    // 2^64 as f64 is exact; anything integral below it converts without loss of meaning.
    (f.fract() == 0.0 && f.abs() < 18_446_744_073_709_551_616.0).then(|| {
        #[allow(clippy::cast_possible_truncation)]
        let i = f as i128;
        i
    })
}

fn integer<T: TryFrom<i128> + Default>(
    field: &str,
    kind: &str,
    value: &Value,
) -> Result<T, JsonError> {
    match parse_i128(field, kind, value)? {
        None => Ok(T::default()),
        Some(i) => T::try_from(i).map_err(|_| JsonError::invalid(kind, field, value)),
    }
}

fn int64_in(field: &str, value: &Value) -> Result<i64, JsonError> {
    integer(field, "int64", value)
}

fn uint64_in(field: &str, value: &Value) -> Result<u64, JsonError> {
    integer(field, "uint64", value)
}

fn int32_in(field: &str, value: &Value) -> Result<i32, JsonError> {
    integer(field, "int32", value)
}

fn uint32_in(field: &str, value: &Value) -> Result<u32, JsonError> {
    integer(field, "uint32", value)
}

fn bool_in(field: &str, value: &Value) -> Result<bool, JsonError> {
    match value {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        _ => Err(JsonError::invalid("bool", field, value)),
    }
}

fn string_in(field: &str, value: &Value) -> Result<String, JsonError> {
    match value {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        _ => Err(JsonError::invalid("string", field, value)),
    }
}

/// Standard or URL-safe base64, padded or not: protojson picks the alphabet by whether the
/// text holds `-` or `_`, and the padding by the length.
fn bytes_in(field: &str, value: &Value) -> Result<Vec<u8>, JsonError> {
    let text = match value {
        Value::Null => return Ok(Vec::new()),
        Value::String(s) => s,
        _ => return Err(JsonError::invalid("bytes", field, value)),
    };
    let url = text.contains(['-', '_']);
    let padded = text.len() % 4 == 0;
    let engine = match (url, padded) {
        (false, true) => &STANDARD,
        (false, false) => &STANDARD_NO_PAD,
        (true, true) => &URL_SAFE,
        (true, false) => &URL_SAFE_NO_PAD,
    };
    engine
        .decode(text)
        .map_err(|_| JsonError::invalid("bytes", field, value))
}

fn double_in(field: &str, value: &Value) -> Result<f64, JsonError> {
    match value {
        Value::Null => Ok(0.0),
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| JsonError::invalid("double", field, value)),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| JsonError::invalid("double", field, value)),
        },
        _ => Err(JsonError::invalid("double", field, value)),
    }
}

/// An enum by name or by number.
fn enum_in(
    field: &str,
    value: &Value,
    from_name: fn(&str) -> Option<i32>,
) -> Result<i32, JsonError> {
    match value {
        Value::String(name) => {
            from_name(name).ok_or_else(|| JsonError::invalid("enum", field, value))
        }
        _ => int32_in(field, value),
    }
}

fn list_in<T>(
    field: &str,
    value: &Value,
    item: impl Fn(&Value) -> Result<T, JsonError>,
) -> Result<Vec<T>, JsonError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(item).collect(),
        _ => Err(JsonError::invalid("repeated", field, value)),
    }
}

fn bytes_map_in(field: &str, value: &Value) -> Result<HashMap<u64, Vec<u8>>, JsonError> {
    match value {
        Value::Null => Ok(HashMap::new()),
        Value::Object(entries) => entries
            .iter()
            .map(|(k, v)| {
                let key = uint64_in(field, &Value::String(k.clone()))?;
                Ok((key, bytes_in(field, v)?))
            })
            .collect(),
        _ => Err(JsonError::invalid("map", field, value)),
    }
}

/// Whether `field` is one lnd's message has and simnet's subset leaves out: accepted, ignored.
fn lnd_only(fields: &[&str], field: &str) -> bool {
    fields.contains(&field)
}

impl FromJson for lnrpc::HopHint {
    fn set(&mut self, field: &str, v: &Value) -> Result<bool, JsonError> {
        match field {
            "node_id" => self.node_id = string_in(field, v)?,
            "chan_id" => self.chan_id = uint64_in(field, v)?,
            "fee_base_msat" => self.fee_base_msat = uint32_in(field, v)?,
            "fee_proportional_millionths" => {
                self.fee_proportional_millionths = uint32_in(field, v)?;
            }
            "cltv_expiry_delta" => self.cltv_expiry_delta = uint32_in(field, v)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl FromJson for lnrpc::RouteHint {
    fn set(&mut self, field: &str, v: &Value) -> Result<bool, JsonError> {
        match field {
            "hop_hints" => self.hop_hints = list_in(field, v, from_json)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// lnd v0.21.0-beta `lnrpc/lightning.proto` `InvoiceHTLC` fields simnet leaves out.
const INVOICE_HTLC_LND_ONLY: &[&str] = &["amp"];

impl FromJson for lnrpc::InvoiceHtlc {
    fn set(&mut self, field: &str, v: &Value) -> Result<bool, JsonError> {
        match field {
            "chan_id" => self.chan_id = uint64_in(field, v)?,
            "htlc_index" => self.htlc_index = uint64_in(field, v)?,
            "amt_msat" => self.amt_msat = uint64_in(field, v)?,
            "accept_height" => self.accept_height = int32_in(field, v)?,
            "accept_time" => self.accept_time = int64_in(field, v)?,
            "resolve_time" => self.resolve_time = int64_in(field, v)?,
            "expiry_height" => self.expiry_height = int32_in(field, v)?,
            "state" => {
                self.state = enum_in(field, v, |n| {
                    lnrpc::InvoiceHtlcState::from_str_name(n).map(|s| s as i32)
                })?;
            }
            "custom_records" => self.custom_records = bytes_map_in(field, v)?,
            "mpp_total_amt_msat" => self.mpp_total_amt_msat = uint64_in(field, v)?,
            "custom_channel_data" => self.custom_channel_data = bytes_in(field, v)?,
            other => return Ok(lnd_only(INVOICE_HTLC_LND_ONLY, other)),
        }
        Ok(true)
    }
}

/// lnd v0.21.0-beta `lnrpc/lightning.proto` `Invoice` fields simnet leaves out.
const INVOICE_LND_ONLY: &[&str] = &[
    "fallback_addr",
    "amt_paid",
    "features",
    "amp_invoice_state",
    "is_amp",
    "is_blinded",
    "blinded_path_config",
];

impl FromJson for lnrpc::Invoice {
    fn set(&mut self, field: &str, v: &Value) -> Result<bool, JsonError> {
        match field {
            "memo" => self.memo = string_in(field, v)?,
            "r_preimage" => self.r_preimage = bytes_in(field, v)?,
            "r_hash" => self.r_hash = bytes_in(field, v)?,
            "value" => self.value = int64_in(field, v)?,
            "value_msat" => self.value_msat = int64_in(field, v)?,
            "settled" => self.settled = bool_in(field, v)?,
            "creation_date" => self.creation_date = int64_in(field, v)?,
            "settle_date" => self.settle_date = int64_in(field, v)?,
            "payment_request" => self.payment_request = string_in(field, v)?,
            "description_hash" => self.description_hash = bytes_in(field, v)?,
            "expiry" => self.expiry = int64_in(field, v)?,
            "cltv_expiry" => self.cltv_expiry = uint64_in(field, v)?,
            "route_hints" => self.route_hints = list_in(field, v, from_json)?,
            "private" => self.private = bool_in(field, v)?,
            "add_index" => self.add_index = uint64_in(field, v)?,
            "settle_index" => self.settle_index = uint64_in(field, v)?,
            "amt_paid_sat" => self.amt_paid_sat = int64_in(field, v)?,
            "amt_paid_msat" => self.amt_paid_msat = int64_in(field, v)?,
            "state" => {
                self.state = enum_in(field, v, |n| {
                    lnrpc::invoice::InvoiceState::from_str_name(n).map(|s| s as i32)
                })?;
            }
            "htlcs" => self.htlcs = list_in(field, v, from_json)?,
            "is_keysend" => self.is_keysend = bool_in(field, v)?,
            "payment_addr" => self.payment_addr = bytes_in(field, v)?,
            other => return Ok(lnd_only(INVOICE_LND_ONLY, other)),
        }
        Ok(true)
    }
}

/// lnd v0.21.0-beta `lnrpc/routerrpc/router.proto` `SendPaymentRequest` fields simnet leaves
/// out (`outgoing_chan_id` is deprecated upstream, `dest_features` a list of feature bits).
const SEND_PAYMENT_LND_ONLY: &[&str] = &["outgoing_chan_id", "dest_features"];

impl FromJson for routerrpc::SendPaymentRequest {
    fn set(&mut self, field: &str, v: &Value) -> Result<bool, JsonError> {
        match field {
            "dest" => self.dest = bytes_in(field, v)?,
            "amt" => self.amt = int64_in(field, v)?,
            "payment_hash" => self.payment_hash = bytes_in(field, v)?,
            "final_cltv_delta" => self.final_cltv_delta = int32_in(field, v)?,
            "payment_request" => self.payment_request = string_in(field, v)?,
            "timeout_seconds" => self.timeout_seconds = int32_in(field, v)?,
            "fee_limit_sat" => self.fee_limit_sat = int64_in(field, v)?,
            "cltv_limit" => self.cltv_limit = int32_in(field, v)?,
            "route_hints" => self.route_hints = list_in(field, v, from_json)?,
            "dest_custom_records" => self.dest_custom_records = bytes_map_in(field, v)?,
            "amt_msat" => self.amt_msat = int64_in(field, v)?,
            "fee_limit_msat" => self.fee_limit_msat = int64_in(field, v)?,
            "last_hop_pubkey" => self.last_hop_pubkey = bytes_in(field, v)?,
            "allow_self_payment" => self.allow_self_payment = bool_in(field, v)?,
            "max_parts" => self.max_parts = uint32_in(field, v)?,
            "no_inflight_updates" => self.no_inflight_updates = bool_in(field, v)?,
            "outgoing_chan_ids" => {
                self.outgoing_chan_ids = list_in(field, v, |item| uint64_in(field, item))?;
            }
            "payment_addr" => self.payment_addr = bytes_in(field, v)?,
            "max_shard_size_msat" => self.max_shard_size_msat = uint64_in(field, v)?,
            "amp" => self.amp = bool_in(field, v)?,
            "time_pref" => self.time_pref = double_in(field, v)?,
            "cancelable" => self.cancelable = bool_in(field, v)?,
            "first_hop_custom_records" => {
                self.first_hop_custom_records = bytes_map_in(field, v)?;
            }
            other => return Ok(lnd_only(SEND_PAYMENT_LND_ONLY, other)),
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
