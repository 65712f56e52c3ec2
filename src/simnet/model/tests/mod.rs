//! Scenario tests: each payment path and each failure, reached by input.

mod lifecycle;
mod payments;

use super::*;

pub(super) const T0: u64 = 1_700_000_000;

pub(super) fn net_with(config: SimnetConfig) -> Simnet {
    Simnet::new(config).unwrap()
}

pub(super) fn net() -> Simnet {
    net_with(SimnetConfig::default())
}

pub(super) fn usd(n: &Simnet) -> AssetId {
    n.asset().asset_id
}

pub(super) fn plain(n: &mut Simnet, payee: NodeId, msat: u64, expiry_secs: u64) -> AddedInvoice {
    let req = InvoiceRequest {
        value_msat: msat,
        memo: "test".into(),
        expiry_secs,
        secret: InvoiceSecret::Generate,
        description_hash: None,
    };
    n.add_invoice(payee, req, T0).unwrap()
}

pub(super) fn asset_invoice(
    n: &mut Simnet,
    payee: NodeId,
    units: u64,
    expiry_secs: u64,
) -> Result<AddedAssetInvoice, InvoiceError> {
    let req = AssetInvoiceRequest {
        asset_id: usd(n),
        asset_amount: units,
        peer: Some(n.pubkey(NodeId::Edge)),
        memo: "asset".into(),
        expiry_secs,
        secret: InvoiceSecret::Generate,
    };
    n.add_asset_invoice(payee, req, T0)
}

pub(super) fn asset_pay<'a>(
    n: &Simnet,
    payment_request: &'a str,
    overpay: bool,
) -> AssetPayment<'a> {
    AssetPayment {
        payment_request,
        asset_id: usd(n),
        peer: None,
        fee_limit_msat: 100_000,
        allow_overpay: overpay,
    }
}

/// (node, local) for every channel end: what must not move when a payment fails.
pub(super) fn snapshot(n: &Simnet) -> Vec<(u64, [u64; 2], u64)> {
    n.channels
        .iter()
        .map(|c| (c.chan_id, c.balance, c.in_flight))
        .collect()
}

pub(super) fn local(n: &Simnet, node: NodeId, kind: ChannelKind, peer: NodeId) -> u64 {
    let c = n.channels(node).unwrap();
    c.iter()
        .find(|c| c.kind == kind && c.peer == peer)
        .unwrap()
        .local
}
