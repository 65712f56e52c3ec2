//! The code `build.rs` generates from `proto/`: messages, clients and servers for the lnd and tapd
//! services tapgate speaks, one module per protobuf package.
//!
//! Only the adapters in `lightning/` (and the simulated network's servers) may use these types;
//! they are `pub(crate)` so that nothing generated reaches tapgate's public API. The `.proto`
//! files are tapgate's own subsets of upstream's, with upstream's package, message and field
//! names and numbers, so the wire format is lnd's and tapd's. The tests below pin the field
//! numbers that matter against the reference tables, so a wrong number fails a test rather than
//! a payment.
//!
//! The lints allowed on each module are for generated code we do not write: missing docs on
//! fields the `.proto` leaves uncommented, clippy's style lints, and items no adapter uses yet.

/// lnd's `lnrpc`: the `Lightning` service (invoices, node info, payment request decoding) and
/// the `Invoice`/`Payment` messages the other packages embed.
#[allow(missing_docs, dead_code, clippy::all)]
pub mod lnrpc {
    tonic::include_proto!("lnrpc");
}

/// lnd's `routerrpc`: `SendPaymentV2` and `TrackPaymentV2`.
#[allow(missing_docs, dead_code, clippy::all)]
pub mod routerrpc {
    tonic::include_proto!("routerrpc");
}

/// lnd's `invoicesrpc`: hold invoices and single-invoice subscriptions.
#[allow(missing_docs, dead_code, clippy::all)]
pub mod invoicesrpc {
    tonic::include_proto!("invoicesrpc");
}

/// tapd's `taprpc`: assets, balances, asset metadata (decimal display) and daemon info.
#[allow(missing_docs, dead_code, clippy::all)]
pub mod taprpc {
    tonic::include_proto!("taprpc");
}

/// tapd's `rfqrpc`: buy and sell quotes with asset channel peers.
#[allow(missing_docs, dead_code, clippy::all)]
pub mod rfqrpc {
    tonic::include_proto!("rfqrpc");
}

/// tapd's `priceoraclerpc`: the price oracle service tapd calls.
#[allow(missing_docs, dead_code, clippy::all)]
pub mod priceoraclerpc {
    tonic::include_proto!("priceoraclerpc");
}

/// tapd's `tapchannelrpc`: asset invoices and asset payments over asset channels.
#[allow(missing_docs, dead_code, clippy::all)]
pub mod tapchannelrpc {
    tonic::include_proto!("tapchannelrpc");
}

#[cfg(test)]
mod tests {
    //! Field numbers and enum values checked against the reference tables
    //! (`shared/reference/tapd-lnd-api.md`, read from tapd v0.8.1 and lnd v0.21.2-beta). Each
    //! check encodes a message with exactly one field set, so the encoding must begin with that
    //! field's key, and decodes it back to the same message.

    use super::*;
    use prost::Message;
    use std::fmt::Debug;

    /// The protobuf wire types the checks use.
    const VARINT: u8 = 0;
    const LEN: u8 = 2;

    /// The key (field number and wire type) as protobuf encodes it: a varint of
    /// `field << 3 | wire_type`.
    fn key(field: u32, wire_type: u8) -> Vec<u8> {
        let mut v = (u64::from(field) << 3) | u64::from(wire_type);
        let mut out = Vec::new();
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    /// Builds an `M` with one field set by `set`, and asserts that it encodes with the key of
    /// `field` first and survives a decode unchanged.
    #[track_caller]
    fn check<M: Message + Default + PartialEq + Debug>(
        set: impl FnOnce(&mut M),
        field: u32,
        wire_type: u8,
    ) {
        let mut msg = M::default();
        set(&mut msg);
        let bytes = msg.encode_to_vec();
        let expected = key(field, wire_type);
        assert!(
            bytes.starts_with(&expected),
            "{msg:?} encodes as {bytes:02x?}; expected field {field} (key {expected:02x?}) first"
        );
        assert_eq!(M::decode(bytes.as_slice()).unwrap(), msg, "round trip");
    }

    #[test]
    fn key_encoding_matches_protobuf() {
        assert_eq!(key(1, LEN), [0x0a]);
        assert_eq!(key(15, VARINT), [0x78]);
        assert_eq!(key(16, VARINT), [0x80, 0x01]);
        assert_eq!(key(23, VARINT), [0xb8, 0x01]);
    }

    #[test]
    fn invoice_value_msat_is_field_23() {
        let invoice = lnrpc::Invoice {
            value_msat: 1,
            ..Default::default()
        };
        // Key 23/varint, then the value 1: nothing else.
        assert_eq!(invoice.encode_to_vec(), [0xb8, 0x01, 0x01]);
        check::<lnrpc::Invoice>(|m| m.value_msat = 1, 23, VARINT);
    }

    #[test]
    fn lnrpc_field_numbers() {
        use lnrpc::invoice::InvoiceState;
        use lnrpc::payment::PaymentStatus;
        use lnrpc::{
            AddInvoiceResponse, GetInfoResponse, HopHint, Invoice, InvoiceHtlc,
            InvoiceSubscription, PayReq, PayReqString, Payment, PaymentFailureReason, PaymentHash,
        };
        check::<Invoice>(|m| m.memo = "m".into(), 1, LEN);
        check::<Invoice>(|m| m.r_preimage = vec![1; 32], 3, LEN);
        check::<Invoice>(|m| m.r_hash = vec![1; 32], 4, LEN);
        check::<Invoice>(|m| m.value = 5, 5, VARINT);
        check::<Invoice>(|m| m.payment_request = "lnbc".into(), 9, LEN);
        check::<Invoice>(|m| m.expiry = 300, 11, VARINT);
        check::<Invoice>(|m| m.route_hints = vec![Default::default()], 14, LEN);
        check::<Invoice>(|m| m.private = true, 15, VARINT);
        check::<Invoice>(|m| m.add_index = 7, 16, VARINT);
        check::<Invoice>(|m| m.settle_index = 7, 17, VARINT);
        check::<Invoice>(|m| m.amt_paid_msat = 7, 20, VARINT);
        check::<Invoice>(|m| m.state = InvoiceState::Settled as i32, 21, VARINT);
        check::<Invoice>(|m| m.htlcs = vec![Default::default()], 22, LEN);
        check::<Invoice>(|m| m.payment_addr = vec![1; 32], 26, LEN);
        check::<InvoiceHtlc>(|m| m.amt_msat = 1, 3, VARINT);
        check::<InvoiceHtlc>(|m| m.custom_records = [(65536, vec![1])].into(), 9, LEN);
        check::<InvoiceHtlc>(|m| m.custom_channel_data = b"{}".to_vec(), 12, LEN);
        check::<HopHint>(|m| m.chan_id = 1, 2, VARINT);

        check::<AddInvoiceResponse>(|m| m.r_hash = vec![1; 32], 1, LEN);
        check::<AddInvoiceResponse>(|m| m.payment_request = "lnbc".into(), 2, LEN);
        check::<AddInvoiceResponse>(|m| m.add_index = 1, 16, VARINT);
        check::<AddInvoiceResponse>(|m| m.payment_addr = vec![1; 32], 17, LEN);
        check::<PaymentHash>(|m| m.r_hash = vec![1; 32], 2, LEN);
        check::<InvoiceSubscription>(|m| m.add_index = 9, 1, VARINT);
        check::<InvoiceSubscription>(|m| m.settle_index = 9, 2, VARINT);
        check::<PayReqString>(|m| m.pay_req = "lnbc".into(), 1, LEN);
        check::<PayReq>(|m| m.num_satoshis = 1, 3, VARINT);
        check::<PayReq>(|m| m.num_msat = 1, 12, VARINT);
        check::<GetInfoResponse>(|m| m.identity_pubkey = "02".into(), 1, LEN);
        check::<GetInfoResponse>(|m| m.synced_to_chain = true, 9, VARINT);
        check::<GetInfoResponse>(|m| m.version = "0.21.2-beta".into(), 14, LEN);
        check::<GetInfoResponse>(|m| m.chains = vec![Default::default()], 16, LEN);

        check::<Payment>(|m| m.payment_hash = "00".into(), 1, LEN);
        check::<Payment>(|m| m.payment_preimage = "00".into(), 6, LEN);
        check::<Payment>(|m| m.status = PaymentStatus::Succeeded as i32, 10, VARINT);
        check::<Payment>(|m| m.fee_msat = 1, 12, VARINT);
        check::<Payment>(|m| m.htlcs = vec![Default::default()], 14, LEN);
        let no_route = PaymentFailureReason::FailureReasonNoRoute as i32;
        check::<Payment>(|m| m.failure_reason = no_route, 16, VARINT);
    }

    #[test]
    fn lnrpc_enum_values() {
        use lnrpc::invoice::InvoiceState;
        use lnrpc::payment::PaymentStatus;
        assert_eq!(InvoiceState::Settled as i32, 1);
        assert_eq!(InvoiceState::Canceled as i32, 2);
        assert_eq!(InvoiceState::Accepted as i32, 3);
        assert_eq!(PaymentStatus::InFlight as i32, 1);
        assert_eq!(PaymentStatus::Succeeded as i32, 2);
        assert_eq!(PaymentStatus::Failed as i32, 3);
        assert_eq!(PaymentStatus::Initiated as i32, 4);
        assert_eq!(
            lnrpc::PaymentFailureReason::FailureReasonInsufficientBalance as i32,
            5
        );
        assert_eq!(lnrpc::InvoiceHtlcState::Settled as i32, 1);
        assert_eq!(lnrpc::htlc_attempt::HtlcStatus::Failed as i32, 2);
    }

    #[test]
    fn router_and_invoices_field_numbers() {
        use invoicesrpc::{
            AddHoldInvoiceRequest, AddHoldInvoiceResp, CancelInvoiceMsg, SettleInvoiceMsg,
            SubscribeSingleInvoiceRequest,
        };
        use routerrpc::{SendPaymentRequest, TrackPaymentRequest};
        check::<SendPaymentRequest>(|m| m.payment_request = "lnbc".into(), 5, LEN);
        check::<SendPaymentRequest>(|m| m.timeout_seconds = 60, 6, VARINT);
        check::<SendPaymentRequest>(|m| m.amt_msat = 1, 12, VARINT);
        check::<SendPaymentRequest>(|m| m.fee_limit_msat = 1, 13, VARINT);
        check::<SendPaymentRequest>(|m| m.allow_self_payment = true, 15, VARINT);
        check::<SendPaymentRequest>(|m| m.no_inflight_updates = true, 18, VARINT);
        check::<SendPaymentRequest>(|m| m.outgoing_chan_ids = vec![1], 19, LEN);
        let records = [(65540, vec![1])];
        check::<SendPaymentRequest>(|m| m.first_hop_custom_records = records.into(), 25, LEN);
        check::<TrackPaymentRequest>(|m| m.payment_hash = vec![1; 32], 1, LEN);
        check::<TrackPaymentRequest>(|m| m.no_inflight_updates = true, 2, VARINT);

        check::<SubscribeSingleInvoiceRequest>(|m| m.r_hash = vec![1; 32], 2, LEN);
        check::<AddHoldInvoiceRequest>(|m| m.hash = vec![1; 32], 2, LEN);
        check::<AddHoldInvoiceRequest>(|m| m.expiry = 300, 5, VARINT);
        check::<AddHoldInvoiceRequest>(|m| m.value_msat = 1, 10, VARINT);
        check::<AddHoldInvoiceResp>(|m| m.add_index = 1, 2, VARINT);
        check::<AddHoldInvoiceResp>(|m| m.payment_addr = vec![1; 32], 3, LEN);
        check::<SettleInvoiceMsg>(|m| m.preimage = vec![1; 32], 1, LEN);
        check::<CancelInvoiceMsg>(|m| m.payment_hash = vec![1; 32], 1, LEN);
    }

    #[test]
    fn taprpc_field_numbers() {
        use taprpc::fetch_asset_meta_request::Asset as MetaOf;
        use taprpc::list_balances_request::GroupBy;
        use taprpc::{
            Asset, AssetBalance, AssetGroup, AssetMetaType, DecimalDisplay, FetchAssetMetaRequest,
            FetchAssetMetaResponse, GenesisInfo, GetInfoResponse, ListAssetRequest,
            ListBalancesRequest, ListBalancesResponse,
        };
        check::<DecimalDisplay>(|m| m.decimal_display = 6, 1, VARINT);
        check::<Asset>(|m| m.asset_genesis = Some(Default::default()), 2, LEN);
        check::<Asset>(|m| m.amount = 1, 4, VARINT);
        check::<Asset>(|m| m.asset_group = Some(Default::default()), 11, LEN);
        check::<Asset>(|m| m.decimal_display = Some(Default::default()), 20, LEN);
        check::<GenesisInfo>(|m| m.name = "USD".into(), 2, LEN);
        check::<GenesisInfo>(|m| m.asset_id = vec![1; 32], 4, LEN);
        check::<AssetGroup>(|m| m.tweaked_group_key = vec![2; 33], 2, LEN);
        check::<ListAssetRequest>(|m| m.include_spent = true, 2, VARINT);

        check::<ListBalancesRequest>(|m| m.group_by = Some(GroupBy::AssetId(true)), 1, VARINT);
        check::<ListBalancesRequest>(|m| m.group_by = Some(GroupBy::GroupKey(true)), 2, VARINT);
        check::<ListBalancesRequest>(|m| m.asset_filter = vec![1; 32], 3, LEN);
        let by_id = [("ab".to_owned(), AssetBalance::default())];
        check::<ListBalancesResponse>(|m| m.asset_balances = by_id.into(), 1, LEN);
        check::<AssetBalance>(|m| m.balance = 1, 3, VARINT);
        check::<AssetBalance>(|m| m.group_key = vec![2; 33], 4, LEN);

        check::<FetchAssetMetaRequest>(|m| m.asset = Some(MetaOf::AssetId(vec![1; 32])), 1, LEN);
        check::<FetchAssetMetaRequest>(|m| m.asset = Some(MetaOf::AssetIdStr("ab".into())), 3, LEN);
        let json = AssetMetaType::MetaTypeJson as i32;
        check::<FetchAssetMetaResponse>(|m| m.r#type = json, 2, VARINT);
        check::<FetchAssetMetaResponse>(|m| m.decimal_display = 6, 5, VARINT);

        check::<GetInfoResponse>(|m| m.lnd_identity_pubkey = "02".into(), 4, LEN);
        check::<GetInfoResponse>(|m| m.block_height = 1, 6, VARINT);
        check::<GetInfoResponse>(|m| m.sync_to_chain = true, 8, VARINT);
    }

    #[test]
    fn fixed_point_encoding() {
        let rate = rfqrpc::FixedPoint {
            coefficient: "1".into(),
            scale: 2,
        };
        // Field 1 (the string "1"), then field 2 (varint 2).
        let wire = [0x0a, 0x01, b'1', 0x10, 0x02];
        assert_eq!(rate.encode_to_vec(), wire);
        assert_eq!(rfqrpc::FixedPoint::decode(&wire[..]).unwrap(), rate);
        // The oracle's FixedPoint is a message of its own with the same shape.
        let oracle = priceoraclerpc::FixedPoint {
            coefficient: "1".into(),
            scale: 2,
        };
        assert_eq!(oracle.encode_to_vec(), wire);
    }

    #[test]
    fn rfqrpc_field_numbers() {
        use rfqrpc::add_asset_buy_order_response::Response;
        use rfqrpc::asset_specifier::Id;
        use rfqrpc::{
            AddAssetBuyOrderRequest, AddAssetBuyOrderResponse, AddAssetSellOrderRequest,
            AssetSpecifier, ExecutionPolicy, PeerAcceptedBuyQuote, PeerAcceptedSellQuote,
            QueryPeerAcceptedQuotesResponse, QuoteRespStatus,
        };
        check::<AssetSpecifier>(|m| m.id = Some(Id::AssetId(vec![1; 32])), 1, LEN);
        check::<AssetSpecifier>(|m| m.id = Some(Id::GroupKey(vec![2; 33])), 3, LEN);

        check::<AddAssetBuyOrderRequest>(|m| m.asset_specifier = Some(Default::default()), 1, LEN);
        check::<AddAssetBuyOrderRequest>(|m| m.asset_max_amt = 1, 2, VARINT);
        check::<AddAssetBuyOrderRequest>(|m| m.expiry = 1, 3, VARINT);
        check::<AddAssetBuyOrderRequest>(|m| m.peer_pub_key = vec![2; 33], 4, LEN);
        check::<AddAssetBuyOrderRequest>(|m| m.timeout_seconds = 30, 5, VARINT);
        check::<AddAssetBuyOrderRequest>(|m| m.price_oracle_metadata = "{}".into(), 7, LEN);
        // proto3 `optional`: an explicit zero is still sent.
        check::<AddAssetBuyOrderRequest>(|m| m.asset_min_amt = Some(0), 8, VARINT);
        let fok = ExecutionPolicy::Fok as i32;
        check::<AddAssetBuyOrderRequest>(|m| m.execution_policy = fok, 10, VARINT);
        check::<AddAssetSellOrderRequest>(|m| m.payment_max_amt = 1, 2, VARINT);

        check::<PeerAcceptedBuyQuote>(|m| m.peer = "02".into(), 1, LEN);
        check::<PeerAcceptedBuyQuote>(|m| m.id = vec![1; 32], 2, LEN);
        check::<PeerAcceptedBuyQuote>(|m| m.scid = 1, 3, VARINT);
        check::<PeerAcceptedBuyQuote>(|m| m.asset_max_amount = 1, 4, VARINT);
        check::<PeerAcceptedBuyQuote>(|m| m.ask_asset_rate = Some(Default::default()), 5, LEN);
        check::<PeerAcceptedBuyQuote>(|m| m.expiry = 1, 6, VARINT);
        check::<PeerAcceptedBuyQuote>(|m| m.min_transportable_units = 1, 7, VARINT);
        check::<PeerAcceptedBuyQuote>(|m| m.accepted_max_amount = 1, 10, VARINT);
        check::<PeerAcceptedSellQuote>(|m| m.asset_amount = 1, 4, VARINT);
        check::<PeerAcceptedSellQuote>(|m| m.bid_asset_rate = Some(Default::default()), 5, LEN);
        check::<PeerAcceptedSellQuote>(|m| m.min_transportable_msat = 1, 7, VARINT);

        let quote = Response::AcceptedQuote(Default::default());
        check::<AddAssetBuyOrderResponse>(|m| m.response = Some(quote), 1, LEN);
        let invalid = Response::InvalidQuote(Default::default());
        check::<AddAssetBuyOrderResponse>(|m| m.response = Some(invalid), 2, LEN);
        let rejected = Response::RejectedQuote(Default::default());
        check::<AddAssetBuyOrderResponse>(|m| m.response = Some(rejected), 3, LEN);
        let sells = vec![PeerAcceptedSellQuote::default()];
        check::<QueryPeerAcceptedQuotesResponse>(|m| m.sell_quotes = sells, 2, LEN);

        assert_eq!(QuoteRespStatus::PriceOracleQueryErr as i32, 2);
        assert_eq!(QuoteRespStatus::ValidAcceptQuote as i32, 4);
        assert_eq!(ExecutionPolicy::Fok as i32, 1);
    }

    #[test]
    fn priceoraclerpc_field_numbers() {
        use priceoraclerpc::query_asset_rates_response::Result as Outcome;
        use priceoraclerpc::{
            AssetRates, ErrorCode, Intent, QueryAssetRatesRequest, QueryAssetRatesResponse,
            TransactionType,
        };
        check::<AssetRates>(|m| m.subject_asset_rate = Some(Default::default()), 1, LEN);
        check::<AssetRates>(|m| m.payment_asset_rate = Some(Default::default()), 2, LEN);
        check::<AssetRates>(|m| m.expiry_timestamp = 1, 3, VARINT);

        let sale = TransactionType::Sale as i32;
        check::<QueryAssetRatesRequest>(|m| m.transaction_type = sale, 1, VARINT);
        check::<QueryAssetRatesRequest>(|m| m.subject_asset = Some(Default::default()), 2, LEN);
        check::<QueryAssetRatesRequest>(|m| m.subject_asset_max_amount = 1, 3, VARINT);
        check::<QueryAssetRatesRequest>(|m| m.payment_asset = Some(Default::default()), 4, LEN);
        check::<QueryAssetRatesRequest>(|m| m.payment_asset_max_amount = 1, 5, VARINT);
        check::<QueryAssetRatesRequest>(|m| m.asset_rates_hint = Some(Default::default()), 6, LEN);
        let recv = Intent::RecvPayment as i32;
        check::<QueryAssetRatesRequest>(|m| m.intent = recv, 7, VARINT);
        check::<QueryAssetRatesRequest>(|m| m.counterparty_id = vec![2; 33], 8, LEN);
        check::<QueryAssetRatesRequest>(|m| m.metadata = "{}".into(), 9, LEN);
        check::<QueryAssetRatesRequest>(|m| m.node_id = vec![2; 33], 10, LEN);

        let ok = Outcome::Ok(Default::default());
        check::<QueryAssetRatesResponse>(|m| m.result = Some(ok), 1, LEN);
        let err = Outcome::Error(Default::default());
        check::<QueryAssetRatesResponse>(|m| m.result = Some(err), 2, LEN);

        assert_eq!(TransactionType::Purchase as i32, 0);
        assert_eq!(TransactionType::Sale as i32, 1);
        assert_eq!(Intent::PayInvoiceQualify as i32, 3);
        assert_eq!(Intent::RecvPaymentQualify as i32, 6);
        assert_eq!(ErrorCode::UnsupportedAssetOracleErrorCode as i32, 1);
    }

    #[test]
    fn tapchannelrpc_field_numbers() {
        use tapchannelrpc::send_payment_response::Result as Update;
        use tapchannelrpc::{
            AddInvoiceRequest, AddInvoiceResponse, AssetPayReq, AssetPayReqResponse, HodlInvoice,
            SendPaymentRequest, SendPaymentResponse,
        };
        // The edge node's pubkey: field 3, the 33 raw bytes.
        let edge = AddInvoiceRequest {
            peer_pubkey: vec![2; 33],
            ..Default::default()
        };
        let mut wire = vec![0x1a, 33];
        wire.extend([2; 33]);
        assert_eq!(edge.encode_to_vec(), wire);

        check::<AddInvoiceRequest>(|m| m.asset_id = vec![1; 32], 1, LEN);
        check::<AddInvoiceRequest>(|m| m.asset_amount = 500_000, 2, VARINT);
        check::<AddInvoiceRequest>(|m| m.peer_pubkey = vec![2; 33], 3, LEN);
        check::<AddInvoiceRequest>(|m| m.invoice_request = Some(Default::default()), 4, LEN);
        check::<AddInvoiceRequest>(|m| m.hodl_invoice = Some(Default::default()), 5, LEN);
        check::<AddInvoiceRequest>(|m| m.group_key = vec![2; 33], 6, LEN);
        check::<AddInvoiceRequest>(|m| m.price_oracle_metadata = "{}".into(), 7, LEN);
        check::<AddInvoiceRequest>(|m| m.asset_min_amt = Some(1), 9, VARINT);
        check::<AddInvoiceRequest>(|m| m.asset_rate_limit = Some(Default::default()), 10, LEN);
        let fok = rfqrpc::ExecutionPolicy::Fok as i32;
        check::<AddInvoiceRequest>(|m| m.execution_policy = fok, 11, VARINT);
        check::<HodlInvoice>(|m| m.payment_hash = vec![1; 32], 1, LEN);
        check::<AddInvoiceResponse>(|m| m.accepted_buy_quote = Some(Default::default()), 1, LEN);
        check::<AddInvoiceResponse>(|m| m.invoice_result = Some(Default::default()), 2, LEN);

        check::<SendPaymentRequest>(|m| m.asset_id = vec![1; 32], 1, LEN);
        check::<SendPaymentRequest>(|m| m.peer_pubkey = vec![2; 33], 3, LEN);
        check::<SendPaymentRequest>(|m| m.payment_request = Some(Default::default()), 4, LEN);
        check::<SendPaymentRequest>(|m| m.rfq_id = vec![1; 32], 5, LEN);
        check::<SendPaymentRequest>(|m| m.allow_overpay = true, 6, VARINT);
        check::<SendPaymentRequest>(|m| m.group_key = vec![2; 33], 7, LEN);
        check::<SendPaymentRequest>(|m| m.price_oracle_metadata = "{}".into(), 8, LEN);
        let first = Update::AcceptedSellOrder(Default::default());
        check::<SendPaymentResponse>(|m| m.result = Some(first), 1, LEN);
        let payment = Update::PaymentResult(Default::default());
        check::<SendPaymentResponse>(|m| m.result = Some(payment), 2, LEN);
        let all = Update::AcceptedSellOrders(Default::default());
        check::<SendPaymentResponse>(|m| m.result = Some(all), 3, LEN);

        check::<AssetPayReq>(|m| m.asset_id = vec![1; 32], 1, LEN);
        check::<AssetPayReq>(|m| m.pay_req_string = "lnbc".into(), 2, LEN);
        check::<AssetPayReq>(|m| m.group_key = vec![2; 33], 3, LEN);
        check::<AssetPayReq>(|m| m.price_oracle_metadata = "{}".into(), 4, LEN);
        check::<AssetPayReqResponse>(|m| m.asset_amount = 1, 1, VARINT);
        check::<AssetPayReqResponse>(|m| m.decimal_display = Some(Default::default()), 2, LEN);
        check::<AssetPayReqResponse>(|m| m.asset_group = Some(Default::default()), 3, LEN);
        check::<AssetPayReqResponse>(|m| m.genesis_info = Some(Default::default()), 4, LEN);
        check::<AssetPayReqResponse>(|m| m.pay_req = Some(Default::default()), 5, LEN);
    }

    /// A message from a newer daemon carries fields these subsets leave out; decoding skips
    /// them and keeps the rest. Simulated by appending an unknown field 99.
    #[test]
    fn unknown_fields_are_skipped() {
        let quote = rfqrpc::PeerAcceptedBuyQuote {
            scid: 42,
            ..Default::default()
        };
        let mut bytes = quote.encode_to_vec();
        bytes.extend(key(99, VARINT));
        bytes.push(7);
        assert_eq!(
            rfqrpc::PeerAcceptedBuyQuote::decode(bytes.as_slice()).unwrap(),
            quote
        );
    }

    /// The generated servers answer on upstream's service names (the gRPC path prefix).
    #[test]
    fn services_have_upstream_names() {
        assert_eq!(lnrpc::lightning_server::SERVICE_NAME, "lnrpc.Lightning");
        assert_eq!(routerrpc::router_server::SERVICE_NAME, "routerrpc.Router");
        assert_eq!(
            invoicesrpc::invoices_server::SERVICE_NAME,
            "invoicesrpc.Invoices"
        );
        assert_eq!(
            taprpc::taproot_assets_server::SERVICE_NAME,
            "taprpc.TaprootAssets"
        );
        assert_eq!(rfqrpc::rfq_server::SERVICE_NAME, "rfqrpc.Rfq");
        assert_eq!(
            priceoraclerpc::price_oracle_server::SERVICE_NAME,
            "priceoraclerpc.PriceOracle"
        );
        assert_eq!(
            tapchannelrpc::taproot_asset_channels_server::SERVICE_NAME,
            "tapchannelrpc.TaprootAssetChannels"
        );
    }

    /// A client is generated for every service too, and builds over a plain tonic channel
    /// (never dialled here).
    #[tokio::test]
    async fn clients_exist_for_every_service() {
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
        let _ = lnrpc::lightning_client::LightningClient::new(channel.clone());
        let _ = routerrpc::router_client::RouterClient::new(channel.clone());
        let _ = invoicesrpc::invoices_client::InvoicesClient::new(channel.clone());
        let _ = taprpc::taproot_assets_client::TaprootAssetsClient::new(channel.clone());
        let _ = rfqrpc::rfq_client::RfqClient::new(channel.clone());
        let _ = priceoraclerpc::price_oracle_client::PriceOracleClient::new(channel.clone());
        let _ =
            tapchannelrpc::taproot_asset_channels_client::TaprootAssetChannelsClient::new(channel);
    }
}
