//! The edge node's price oracle (`priceoraclerpc.PriceOracle`), answering the way tapd's sample
//! oracle (`docs/examples/basic-price-oracle`) does, with the edge's rates:
//!
//! 1. the payment asset must be BTC (32 zero bytes), else an `error` answer;
//! 2. the subject asset must be the simnet's asset, else `error{"unsupported subject asset"}`
//!    (a missing subject is a gRPC error);
//! 3. a request carrying `asset_rates_hint` gets the hint back verbatim;
//! 4. otherwise `subjectAssetRate` is the edge's bid (PURCHASE: the edge buys the asset) or ask
//!    (SALE) rate, `paymentAssetRate` is msat per BTC and the rates expire a quote lifetime
//!    from now: the sample oracle's 300 s, or 60 s when `subject_asset_max_amount` is above
//!    100,000 (`getAssetRates` in lightninglabs/taproot-assets
//!    docs/examples/basic-price-oracle/main.go, v0.8.1), unless the simnet fixes a lifetime.
//!
//! Like the sample oracle it takes no macaroon.

use tonic::{Request, Response, Status};

use super::{NodeService, asset_of, status};
use crate::lightning::proto::priceoraclerpc::{
    self as oracle, AssetRates, FixedPoint, QueryAssetRatesErrResponse, QueryAssetRatesRequest,
    QueryAssetRatesResponse, TransactionType, asset_specifier::Id,
    query_asset_rates_response::Result as Answer,
};
use crate::simnet::model::{AssetInfo, OracleSide};

/// The edge's price oracle.
pub(crate) struct Oracle(pub(crate) NodeService);

/// tapd's `rfqmsg.MilliSatPerBtc`: 100,000,000,000 msat per BTC, as `{100000000000, 9}`.
fn msat_per_btc() -> FixedPoint {
    FixedPoint {
        coefficient: "100000000000".into(),
        scale: 9,
    }
}

/// The raw bytes an `AssetSpecifier` names, and whether they are an id (else a group key).
fn spec_bytes(spec: &oracle::AssetSpecifier) -> Option<(Vec<u8>, bool)> {
    match spec.id.as_ref()? {
        Id::AssetId(b) => Some((b.clone(), true)),
        Id::AssetIdStr(s) => hex::decode(s).ok().map(|b| (b, true)),
        Id::GroupKey(b) => Some((b.clone(), false)),
        Id::GroupKeyStr(s) => hex::decode(s).ok().map(|b| (b, false)),
    }
}

/// tapd's `IsAssetBtc`: an asset id of 32 zero bytes.
fn is_btc(spec: Option<&oracle::AssetSpecifier>) -> bool {
    matches!(spec.and_then(spec_bytes), Some((b, true)) if b == [0u8; 32])
}

fn is_our_asset(asset: &AssetInfo, spec: &oracle::AssetSpecifier) -> bool {
    match spec_bytes(spec) {
        Some((b, true)) => b == asset.asset_id.0,
        Some((b, false)) => asset.group_key.is_some_and(|g| g.0.as_slice() == b),
        None => false,
    }
}

fn error_answer(message: &str, code: oracle::ErrorCode) -> QueryAssetRatesResponse {
    QueryAssetRatesResponse {
        result: Some(Answer::Error(QueryAssetRatesErrResponse {
            message: message.to_owned(),
            code: code as i32,
        })),
    }
}

fn ok_answer(rates: AssetRates) -> QueryAssetRatesResponse {
    QueryAssetRatesResponse {
        result: Some(Answer::Ok(oracle::QueryAssetRatesOkResponse {
            asset_rates: Some(rates),
        })),
    }
}

#[tonic::async_trait]
impl oracle::price_oracle_server::PriceOracle for Oracle {
    async fn query_asset_rates(
        &self,
        req: Request<QueryAssetRatesRequest>,
    ) -> Result<Response<QueryAssetRatesResponse>, Status> {
        let svc = self.0.gate().await?;
        let r = req.into_inner();
        let side = match TransactionType::try_from(r.transaction_type) {
            Ok(TransactionType::Purchase) => OracleSide::Purchase,
            Ok(TransactionType::Sale) => OracleSide::Sale,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "unknown transaction_type {}",
                    r.transaction_type
                )));
            }
        };
        let Some(subject) = r.subject_asset.as_ref() else {
            return Err(Status::invalid_argument("subject asset must be specified"));
        };
        if !is_btc(r.payment_asset.as_ref()) {
            return Ok(Response::new(error_answer(
                "unsupported payment asset, only BTC is supported",
                oracle::ErrorCode::UnspecifiedOracleErrorCode,
            )));
        }
        let asset = svc.net.read(asset_of);
        if !is_our_asset(&asset, subject) {
            return Ok(Response::new(error_answer(
                "unsupported subject asset",
                oracle::ErrorCode::UnsupportedAssetOracleErrorCode,
            )));
        }
        if let Some(hint) = r.asset_rates_hint {
            return Ok(Response::new(ok_answer(hint)));
        }
        let now = svc.net.now();
        let units = r.subject_asset_max_amount;
        let rate = svc
            .net
            .read(|m| m.oracle_rate(&asset.asset_id, side, units, now));
        let rate = rate.map_err(|e| status::rfq(e, None))?;
        Ok(Response::new(ok_answer(AssetRates {
            subject_asset_rate: Some(FixedPoint {
                coefficient: rate.rate.coefficient(),
                scale: u32::from(rate.rate.scale()),
            }),
            payment_asset_rate: Some(msat_per_btc()),
            expiry_timestamp: rate.expiry,
        })))
    }
}
