//! The model's types as lnd's and tapd's protobuf messages, and request fields back into model
//! types. Only fields our protos carry are filled; everything else keeps its protobuf default.
//!
//! Conversions only: no model calls, no I/O.

use tonic::Status;

use crate::lightning::channel_data::{AssetBalanceJson, ChannelBalancesJson};
use crate::lightning::proto::{lnrpc, rfqrpc, taprpc};
use crate::pricing::FixedPoint;
use crate::simnet::model::{
    AssetChannelUnits, AssetId, AssetInfo, BuyQuote, FINAL_CLTV_DELTA, FailureReason, Invoice,
    InvoiceState, NodePubkey, PayReq, Payment, PaymentHash, PaymentStatus, Preimage, RouteHint,
    SellQuote,
};

/// msat → i64 for lnd's signed amount fields (saturating: no simnet amount comes near).
pub(crate) fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A non-negative i64 request field as u64, or `InvalidArgument` naming the field.
pub(crate) fn unsigned(v: i64, field: &str) -> Result<u64, Status> {
    u64::try_from(v).map_err(|_| Status::invalid_argument(format!("{field} must not be negative")))
}

/// A 32-byte hash from a `bytes` field.
pub(crate) fn hash(bytes: &[u8], field: &str) -> Result<PaymentHash, Status> {
    PaymentHash::from_slice(bytes).ok_or_else(|| {
        Status::invalid_argument(format!(
            "{field} must be 32 bytes, got {}; pass the raw payment hash",
            bytes.len()
        ))
    })
}

/// A 32-byte preimage from a `bytes` field.
pub(crate) fn preimage(bytes: &[u8], field: &str) -> Result<Preimage, Status> {
    Preimage::from_slice(bytes).ok_or_else(|| {
        Status::invalid_argument(format!(
            "{field} must be 32 bytes, got {}; pass the raw preimage",
            bytes.len()
        ))
    })
}

/// An optional peer key from a `bytes` field: empty means "any peer".
pub(crate) fn peer(bytes: &[u8], field: &str) -> Result<Option<NodePubkey>, Status> {
    if bytes.is_empty() {
        return Ok(None);
    }
    NodePubkey::from_slice(bytes).map(Some).ok_or_else(|| {
        Status::invalid_argument(format!(
            "{field} must be a 33-byte compressed public key, got {} bytes",
            bytes.len()
        ))
    })
}

/// The asset named by an `asset_id` or `group_key` pair of `bytes` fields (exactly one set),
/// resolved against the simnet's one asset. An unknown id is passed through so the model can
/// say it does not know it; an unknown group key has no id to pass, so it is refused here.
pub(crate) fn asset_ref(
    asset: &AssetInfo,
    asset_id: &[u8],
    group_key: &[u8],
) -> Result<AssetId, Status> {
    match (asset_id.is_empty(), group_key.is_empty()) {
        (false, true) => AssetId::from_slice(asset_id).ok_or_else(|| {
            Status::invalid_argument(format!("asset_id must be 32 bytes, got {}", asset_id.len()))
        }),
        (true, false) => match &asset.group_key {
            Some(g) if g.0.as_slice() == group_key => Ok(asset.asset_id),
            _ => Err(Status::not_found(format!(
                "no asset with group key {}; the simnet's asset is listed by ListAssets",
                hex::encode(group_key)
            ))),
        },
        (false, false) => Err(Status::invalid_argument(
            "cannot set both asset_id and group_key",
        )),
        (true, true) => Err(Status::invalid_argument(
            "either asset_id or group_key must be set",
        )),
    }
}

/// The asset named by an `rfqrpc.AssetSpecifier`.
pub(crate) fn rfq_asset(
    asset: &AssetInfo,
    spec: Option<&rfqrpc::AssetSpecifier>,
) -> Result<AssetId, Status> {
    use rfqrpc::asset_specifier::Id;
    let decode = |s: &str, what: &str| {
        hex::decode(s).map_err(|_| Status::invalid_argument(format!("{what} is not hex")))
    };
    match spec.and_then(|s| s.id.as_ref()) {
        Some(Id::AssetId(b)) => asset_ref(asset, b, &[]),
        Some(Id::AssetIdStr(s)) => asset_ref(asset, &decode(s, "asset_id_str")?, &[]),
        Some(Id::GroupKey(b)) => asset_ref(asset, &[], b),
        Some(Id::GroupKeyStr(s)) => asset_ref(asset, &[], &decode(s, "group_key_str")?),
        None => Err(Status::invalid_argument("asset_specifier must be set")),
    }
}

/// A rate as `rfqrpc.FixedPoint`.
pub(crate) fn rfq_rate(rate: &FixedPoint) -> rfqrpc::FixedPoint {
    rfqrpc::FixedPoint {
        coefficient: rate.coefficient(),
        scale: u32::from(rate.scale()),
    }
}

fn asset_spec(asset: &AssetInfo, id: &AssetId) -> rfqrpc::AssetSpec {
    rfqrpc::AssetSpec {
        id: id.0.to_vec(),
        group_pub_key: asset.group_key.map(|g| g.0.to_vec()).unwrap_or_default(),
    }
}

/// `rfqrpc.PeerAcceptedBuyQuote`. `accepted_max_amount` is the whole order (asset units): the
/// edge never fills partially.
pub(crate) fn buy_quote(
    asset: &AssetInfo,
    peer: &NodePubkey,
    q: &BuyQuote,
) -> rfqrpc::PeerAcceptedBuyQuote {
    rfqrpc::PeerAcceptedBuyQuote {
        peer: peer.to_hex(),
        id: q.id.0.to_vec(),
        scid: q.scid,
        asset_max_amount: q.asset_max_amount,
        ask_asset_rate: Some(rfq_rate(&q.ask_rate)),
        expiry: q.expiry,
        min_transportable_units: q.min_transportable_units,
        price_oracle_metadata: String::new(),
        asset_spec: Some(asset_spec(asset, &q.asset_id)),
        accepted_max_amount: q.asset_max_amount,
    }
}

/// `rfqrpc.PeerAcceptedSellQuote`. `accepted_max_amount` is the whole order (msat).
pub(crate) fn sell_quote(
    asset: &AssetInfo,
    peer: &NodePubkey,
    q: &SellQuote,
) -> rfqrpc::PeerAcceptedSellQuote {
    rfqrpc::PeerAcceptedSellQuote {
        peer: peer.to_hex(),
        id: q.id.0.to_vec(),
        scid: q.scid,
        asset_amount: q.asset_amount,
        bid_asset_rate: Some(rfq_rate(&q.bid_rate)),
        expiry: q.expiry,
        min_transportable_msat: q.min_transportable_msat,
        price_oracle_metadata: String::new(),
        asset_spec: Some(asset_spec(asset, &q.asset_id)),
        accepted_max_amount: q.payment_max_msat,
    }
}

/// One single-hop `lnrpc.RouteHint` per hop hint, as tapd builds them.
pub(crate) fn route_hints(hints: &[RouteHint]) -> Vec<lnrpc::RouteHint> {
    let u32_of = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    hints
        .iter()
        .map(|h| lnrpc::RouteHint {
            hop_hints: vec![lnrpc::HopHint {
                node_id: h.node.to_hex(),
                chan_id: h.chan_id,
                fee_base_msat: u32_of(h.fee_base_msat),
                fee_proportional_millionths: u32_of(h.fee_ppm),
                cltv_expiry_delta: h.cltv_expiry_delta,
            }],
        })
        .collect()
}

fn invoice_state(s: InvoiceState) -> lnrpc::invoice::InvoiceState {
    match s {
        InvoiceState::Open => lnrpc::invoice::InvoiceState::Open,
        InvoiceState::Settled => lnrpc::invoice::InvoiceState::Settled,
        InvoiceState::Canceled => lnrpc::invoice::InvoiceState::Canceled,
        InvoiceState::Accepted => lnrpc::invoice::InvoiceState::Accepted,
    }
}

/// The HTLC that paid (or holds) an invoice. On asset invoices its `custom_channel_data` is
/// the JSON litd's aux data parser writes in integrated mode, so a client can read the units.
fn invoice_htlc(inv: &Invoice, chan_id: u64) -> Option<lnrpc::InvoiceHtlc> {
    let state = match inv.state {
        InvoiceState::Settled => lnrpc::InvoiceHtlcState::Settled,
        InvoiceState::Accepted => lnrpc::InvoiceHtlcState::Accepted,
        InvoiceState::Open | InvoiceState::Canceled => return None,
    };
    let custom_channel_data = inv
        .asset
        .as_ref()
        .map(|a| {
            serde_json::json!({
                "balances": [{"asset_id": a.asset_id.to_hex(), "amount": a.units}],
                "rfq_id": a.quote.id.to_hex(),
            })
            .to_string()
            .into_bytes()
        })
        .unwrap_or_default();
    let resolved = inv.settled_at.unwrap_or_default();
    Some(lnrpc::InvoiceHtlc {
        chan_id,
        amt_msat: inv.value_msat,
        accept_time: signed(inv.created_at),
        resolve_time: signed(resolved),
        state: state as i32,
        mpp_total_amt_msat: inv.value_msat,
        custom_channel_data,
        ..Default::default()
    })
}

/// `lnrpc.Invoice`. `chan_id` is the payee's channel its HTLC arrives on (for the HTLC list).
pub(crate) fn invoice(inv: &Invoice, chan_id: u64) -> lnrpc::Invoice {
    let paid = inv.amt_paid_msat;
    lnrpc::Invoice {
        memo: inv.memo.clone(),
        r_preimage: inv.preimage.map(|p| p.0.to_vec()).unwrap_or_default(),
        r_hash: inv.payment_hash.0.to_vec(),
        value: signed(inv.value_msat / 1_000),
        value_msat: signed(inv.value_msat),
        settled: inv.state == InvoiceState::Settled,
        creation_date: signed(inv.created_at),
        settle_date: signed(inv.settled_at.unwrap_or_default()),
        payment_request: inv.payment_request.clone(),
        expiry: signed(inv.expiry_secs),
        cltv_expiry: u64::from(FINAL_CLTV_DELTA),
        route_hints: route_hints(&inv.route_hints),
        private: !inv.route_hints.is_empty(),
        add_index: inv.add_index,
        settle_index: inv.settle_index,
        amt_paid_sat: signed(paid / 1_000),
        amt_paid_msat: signed(paid),
        state: invoice_state(inv.state) as i32,
        htlcs: invoice_htlc(inv, chan_id).into_iter().collect(),
        payment_addr: inv.payment_addr.to_vec(),
        ..Default::default()
    }
}

/// `lnrpc.PayReq`.
pub(crate) fn pay_req(p: &PayReq) -> lnrpc::PayReq {
    lnrpc::PayReq {
        destination: p.destination.to_hex(),
        payment_hash: p.payment_hash.to_hex(),
        num_satoshis: signed(p.num_msat / 1_000),
        num_msat: signed(p.num_msat),
        timestamp: signed(p.timestamp),
        expiry: signed(p.expiry),
        description: p.description.clone(),
        cltv_expiry: i64::try_from(p.cltv_expiry).unwrap_or(i64::MAX),
        route_hints: route_hints(&p.route_hints),
        payment_addr: p.payment_addr.to_vec(),
        ..Default::default()
    }
}

fn failure_reason(r: FailureReason) -> lnrpc::PaymentFailureReason {
    use FailureReason as F;
    use lnrpc::PaymentFailureReason as P;
    match r {
        F::NoRoute => P::FailureReasonNoRoute,
        F::Error => P::FailureReasonError,
        F::IncorrectPaymentDetails => P::FailureReasonIncorrectPaymentDetails,
        F::InsufficientBalance => P::FailureReasonInsufficientBalance,
        F::Canceled => P::FailureReasonCanceled,
    }
}

/// True once a payment can no longer change.
pub(crate) fn is_final(p: &Payment) -> bool {
    !matches!(p.status, PaymentStatus::InFlight)
}

fn nanos(secs: u64) -> i64 {
    signed(secs).saturating_mul(1_000_000_000)
}

/// `lnrpc.Payment` as it stands.
pub(crate) fn payment(p: &Payment) -> lnrpc::Payment {
    use lnrpc::htlc_attempt::HtlcStatus;
    use lnrpc::payment::PaymentStatus as S;
    let (status, preimage, reason, htlc) = match &p.status {
        PaymentStatus::InFlight => (S::InFlight, None, None, HtlcStatus::InFlight),
        PaymentStatus::Succeeded { preimage, .. } => {
            (S::Succeeded, Some(*preimage), None, HtlcStatus::Succeeded)
        }
        PaymentStatus::Failed { reason, .. } => (
            S::Failed,
            None,
            Some(failure_reason(*reason)),
            HtlcStatus::Failed,
        ),
    };
    let resolved = match &p.status {
        PaymentStatus::InFlight => 0,
        PaymentStatus::Succeeded { settled_at, .. } => nanos(*settled_at),
        PaymentStatus::Failed { failed_at, .. } => nanos(*failed_at),
    };
    lnrpc::Payment {
        payment_hash: p.payment_hash.to_hex(),
        payment_preimage: preimage.map(|x| x.to_hex()).unwrap_or_default(),
        value_sat: signed(p.value_msat / 1_000),
        value_msat: signed(p.value_msat),
        payment_request: p.payment_request.clone(),
        status: status as i32,
        fee_sat: signed(p.fee_msat / 1_000),
        fee_msat: signed(p.fee_msat),
        creation_time_ns: nanos(p.created_at),
        htlcs: vec![lnrpc::HtlcAttempt {
            status: htlc as i32,
            attempt_time_ns: nanos(p.created_at),
            resolve_time_ns: resolved,
            preimage: preimage.map(|x| x.0.to_vec()).unwrap_or_default(),
            attempt_id: p.payment_index,
        }],
        payment_index: p.payment_index,
        failure_reason: reason.map_or(0, |r| r as i32),
        ..Default::default()
    }
}

/// `taprpc.GenesisInfo`.
pub(crate) fn genesis(a: &AssetInfo) -> taprpc::GenesisInfo {
    taprpc::GenesisInfo {
        genesis_point: a.genesis_point.clone(),
        name: a.name.clone(),
        meta_hash: a.meta_hash.to_vec(),
        asset_id: a.asset_id.0.to_vec(),
        asset_type: taprpc::AssetType::Normal as i32,
        output_index: a.output_index,
    }
}

/// `taprpc.AssetGroup`, for grouped assets.
pub(crate) fn asset_group(a: &AssetInfo) -> Option<taprpc::AssetGroup> {
    a.group_key.map(|g| taprpc::AssetGroup {
        raw_group_key: g.0.to_vec(),
        tweaked_group_key: g.0.to_vec(),
        ..Default::default()
    })
}

/// `taprpc.DecimalDisplay`.
pub(crate) fn decimal_display(a: &AssetInfo) -> taprpc::DecimalDisplay {
    taprpc::DecimalDisplay {
        decimal_display: u32::from(a.decimal_display),
    }
}

/// `ChannelBalanceResponse.custom_channel_data` as tapd writes it inside lnd (see
/// [`crate::lightning::channel_data`]): empty for a node with no channels at all, otherwise the
/// JSON object, with the per-asset sums and, for grouped assets, per-group sums. Every simnet
/// channel is open from the start, so the pending maps are always empty.
pub(crate) fn asset_channel_data(
    channels: usize,
    units: &[AssetChannelUnits],
) -> Result<Vec<u8>, Status> {
    if channels == 0 {
        return Ok(Vec::new());
    }
    let mut json = ChannelBalancesJson::default();
    for u in units {
        let by_id = json
            .open_channels
            .entry(u.asset.asset_id.to_hex())
            .or_insert_with(|| AssetBalanceJson {
                asset_id: u.asset.asset_id.to_hex(),
                name: u.asset.name.clone(),
                ..Default::default()
            });
        by_id.local_balance = by_id.local_balance.saturating_add(u.local);
        by_id.remote_balance = by_id.remote_balance.saturating_add(u.remote);
        if let Some(group) = u.asset.group_key {
            let by_group = json
                .open_channels_by_group
                .entry(group.to_hex())
                .or_default();
            by_group.local_balance = by_group.local_balance.saturating_add(u.local);
            by_group.remote_balance = by_group.remote_balance.saturating_add(u.remote);
        }
    }
    serde_json::to_vec(&json)
        .map_err(|e| Status::internal(format!("cannot encode custom_channel_data: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lightning::channel_data;
    use crate::lightning::types::AssetRef;
    use crate::simnet::model::{Simnet, SimnetConfig};

    #[test]
    fn no_channels_means_empty_custom_channel_data() {
        assert!(asset_channel_data(0, &[]).unwrap().is_empty());
    }

    #[test]
    fn asset_channel_data_sums_per_asset_id_and_per_group() {
        let grouped = SimnetConfig {
            asset_grouped: true,
            ..SimnetConfig::default()
        };
        let asset = Simnet::new(grouped).unwrap().asset().clone();
        let units = |local, remote| AssetChannelUnits {
            asset: asset.clone(),
            local,
            remote,
        };
        let bytes = asset_channel_data(3, &[units(1, 2), units(10, 20)]).unwrap();
        let parsed = channel_data::parse(&bytes).unwrap();
        let by_id = AssetRef::Id(asset.asset_id.0);
        let group = AssetRef::GroupKey(asset.group_key.unwrap().0.to_vec());
        for key in [by_id, group] {
            let u = parsed.open_units(&key);
            assert_eq!((u.local, u.remote), (11, 22), "{key:?}");
        }
        // The per-group entry carries no asset id or name, as tapd's does not.
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text.matches("\"asset_id\"").count(), 1, "{text}");
    }
}
