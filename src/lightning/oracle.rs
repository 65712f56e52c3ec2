//! A price-oracle client (`priceoraclerpc.PriceOracle`, the service tapd asks for rates): lets
//! an operator see the rate an edge's oracle would quote before tapd negotiates with it.
//! Generated types stay in this file.

use serde::Serialize;

use super::error::BackendError;
use super::grpc::{AuthChannel, NodeConnection, connect_lazy_unauthenticated};
use super::lnd::CallCtx;
use super::proto::priceoraclerpc::{self, price_oracle_client::PriceOracleClient};
use super::types::AssetRef;
use crate::pricing::FixedPoint;

/// tapd's `TransactionType`: which side of the trade the rate is for. Oracles quote the two
/// sides differently (tapd's sample oracle: more units per BTC for `Purchase`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OracleSide {
    /// tapd's `PURCHASE`.
    Purchase,
    /// tapd's `SALE`.
    Sale,
}

/// The oracle's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OracleRate {
    /// Asset units per BTC.
    pub rate: FixedPoint,
    /// Unix seconds until which the rate holds.
    pub expires_at: u64,
}

/// A price oracle reached over pinned TLS (oracles take no macaroon).
#[derive(Clone, Debug)]
pub struct OracleClient {
    client: PriceOracleClient<AuthChannel>,
    ctx: CallCtx,
}

impl OracleClient {
    /// A lazily connected client; `conn.macaroon_path` is not used.
    pub fn connect(conn: &NodeConnection) -> Result<Self, BackendError> {
        Ok(Self {
            client: PriceOracleClient::new(connect_lazy_unauthenticated(conn)?),
            ctx: CallCtx::new(conn),
        })
    }

    /// The rate for `max_units` of `asset` against BTC.
    pub async fn query_rate(
        &self,
        asset: &AssetRef,
        side: OracleSide,
        max_units: u64,
    ) -> Result<OracleRate, BackendError> {
        const CALL: &str = "QueryAssetRates";
        use priceoraclerpc::asset_specifier::Id;
        let subject = match asset {
            AssetRef::Id(id) => Id::AssetId(id.to_vec()),
            AssetRef::GroupKey(k) => Id::GroupKey(k.clone()),
        };
        let req = priceoraclerpc::QueryAssetRatesRequest {
            transaction_type: match side {
                OracleSide::Purchase => priceoraclerpc::TransactionType::Purchase as i32,
                OracleSide::Sale => priceoraclerpc::TransactionType::Sale as i32,
            },
            subject_asset: Some(priceoraclerpc::AssetSpecifier { id: Some(subject) }),
            subject_asset_max_amount: max_units,
            // BTC is the all-zero asset id.
            payment_asset: Some(priceoraclerpc::AssetSpecifier {
                id: Some(Id::AssetId(vec![0; 32])),
            }),
            ..Default::default()
        };
        let resp = self
            .client
            .clone()
            .query_asset_rates(req)
            .await
            .map_err(|s| self.ctx.err(CALL, s))?
            .into_inner();
        use priceoraclerpc::query_asset_rates_response::Result as R;
        match resp.result {
            Some(R::Ok(ok)) => {
                let rates = ok.asset_rates.ok_or_else(|| {
                    BackendError::invalid_response(CALL, "no rates in the answer")
                })?;
                let fp = rates
                    .subject_asset_rate
                    .ok_or_else(|| BackendError::invalid_response(CALL, "no subject asset rate"))?;
                let rate = FixedPoint::from_parts(&fp.coefficient, fp.scale)
                    .map_err(|e| BackendError::invalid_response(CALL, format!("rate: {e}")))?;
                Ok(OracleRate {
                    rate,
                    expires_at: rates.expiry_timestamp,
                })
            }
            Some(R::Error(e)) => Err(BackendError::QuoteRejected {
                peer: None,
                reason: format!("price oracle: {}", e.message),
                status: tonic::Status::failed_precondition(e.message),
            }),
            None => Err(BackendError::invalid_response(CALL, "empty answer")),
        }
    }
}
