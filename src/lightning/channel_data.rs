//! tapd's asset channel balances, as lnd's `ChannelBalance` carries them in
//! `custom_channel_data`: the JSON's shape, and its parsing into tapgate's own types.
//!
//! This module owns that JSON and nothing else: no I/O, no proto types. The lnd adapter hands
//! it the field's bytes; the simnet writes its answers with the same wire struct, so both sides
//! agree on the field names, which the tests below pin to what a real node sends.
//!
//! ## Where the JSON comes from
//! lnd fills `custom_channel_data` with its own binary encoding of every open and pending
//! channel's custom commitment blob. When tapd runs inside lnd's process (litd integrated mode,
//! or tapd-integrated), lnd hands the response to tapd, which replaces the bytes with JSON
//! (taproot-assets v0.8.1, `tapchannelmsg/custom_channel_data.go`, `BalanceCustomData.AsJson`,
//! reached through `ParseCustomChannelData`; the Go type is `rfqmsg.JsonAssetChannelBalances`
//! in `rfqmsg/custom_channel_data.go`):
//!
//! ```json
//! {"open_channels":{"<asset id hex>":{"asset_id":"<asset id hex>","name":"USD",
//!                                     "local_balance":2000000,"remote_balance":998000000}},
//!  "open_channels_by_group":{"<group key hex>":{"local_balance":2000000,"remote_balance":998000000}},
//!  "pending_channels":{},
//!  "pending_channels_by_group":{}}
//! ```
//!
//! - Units are summed per asset id over all channels (and per group key, for grouped assets);
//!   entries of the `_by_group` maps carry no `asset_id` or `name` (tapd omits empty strings).
//! - Amounts are this node's (`local_balance`) and its peers' (`remote_balance`) commitment
//!   outputs; units locked in HTLCs are in neither.
//! - With no channels at all, open or pending, the field is empty. With only BTC channels it is
//!   the object above with four empty maps.
//! - Without tapd in the process (a plain lnd), the field keeps lnd's binary encoding, which is
//!   not JSON: [`parse`] refuses it rather than guess.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::types::AssetRef;

/// Units of one asset (or one asset group) on each side of a node's channels, summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChannelUnits {
    /// This node's side: units it can spend over its channels.
    pub local: u64,
    /// The peers' side: units this node can receive.
    pub remote: u64,
}

/// A node's asset channel balances, as tapd reports them through lnd's `ChannelBalance`.
/// Keys are lower-case hex, as tapd writes them: asset ids (32 bytes) in the per-asset maps,
/// compressed group keys (33 bytes) in the per-group maps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AssetChannelBalances {
    /// Open channels, per asset id.
    pub open: BTreeMap<String, ChannelUnits>,
    /// Open channels, per group key (grouped assets only).
    pub open_by_group: BTreeMap<String, ChannelUnits>,
    /// Channels still being opened, per asset id. Not spendable yet.
    pub pending: BTreeMap<String, ChannelUnits>,
    /// Channels still being opened, per group key.
    pub pending_by_group: BTreeMap<String, ChannelUnits>,
}

impl AssetChannelBalances {
    /// `asset`'s units in open channels: by asset id, or by group key (every asset id of the
    /// group together). Zero when the node has no open channel of that asset.
    pub fn open_units(&self, asset: &AssetRef) -> ChannelUnits {
        lookup(&self.open, &self.open_by_group, asset)
    }

    /// `asset`'s units in channels still being opened.
    pub fn pending_units(&self, asset: &AssetRef) -> ChannelUnits {
        lookup(&self.pending, &self.pending_by_group, asset)
    }
}

fn lookup(
    by_id: &BTreeMap<String, ChannelUnits>,
    by_group: &BTreeMap<String, ChannelUnits>,
    asset: &AssetRef,
) -> ChannelUnits {
    let map = match asset {
        AssetRef::Id(_) => by_id,
        AssetRef::GroupKey(_) => by_group,
    };
    map.get(&asset.to_string()).copied().unwrap_or_default()
}

/// Parses `ChannelBalanceResponse.custom_channel_data`. Empty bytes mean no channels at all.
/// Fields tapd may add later are ignored; a missing balance, a negative or oversized amount, or
/// bytes that are not JSON (a plain lnd's binary encoding) are errors.
pub fn parse(custom_channel_data: &[u8]) -> Result<AssetChannelBalances, serde_json::Error> {
    if custom_channel_data.is_empty() {
        return Ok(AssetChannelBalances::default());
    }
    // Through a map first: serde would also take a JSON array for a struct, and tapd only ever
    // writes an object.
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(custom_channel_data)?;
    let wire = ChannelBalancesJson::deserialize(serde_json::Value::Object(object))?;
    let convert = |m: BTreeMap<String, AssetBalanceJson>| {
        m.into_iter()
            .map(|(key, b)| {
                let units = ChannelUnits {
                    local: b.local_balance,
                    remote: b.remote_balance,
                };
                (key.to_ascii_lowercase(), units)
            })
            .collect()
    };
    Ok(AssetChannelBalances {
        open: convert(wire.open_channels),
        open_by_group: convert(wire.open_channels_by_group),
        pending: convert(wire.pending_channels),
        pending_by_group: convert(wire.pending_channels_by_group),
    })
}

/// The JSON object tapd writes (field names from `rfqmsg.JsonAssetChannelBalances`,
/// taproot-assets v0.8.1). Shared with the simnet, which writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChannelBalancesJson {
    /// Per asset id (hex), over open channels.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) open_channels: BTreeMap<String, AssetBalanceJson>,
    /// Per group key (hex), over open channels.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) open_channels_by_group: BTreeMap<String, AssetBalanceJson>,
    /// Per asset id, over pending channels.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) pending_channels: BTreeMap<String, AssetBalanceJson>,
    /// Per group key, over pending channels.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) pending_channels_by_group: BTreeMap<String, AssetBalanceJson>,
}

/// One entry of [`ChannelBalancesJson`] (`rfqmsg.JsonAssetBalance`). tapd leaves out
/// `asset_id` and `name` when they are empty, as they are in the per-group maps; the two
/// balances are always present.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AssetBalanceJson {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) asset_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) name: String,
    pub(crate) local_balance: u64,
    pub(crate) remote_balance: u64,
}

/// Go marshals a nil map as `null`; tapd always makes its maps, but `null` still means empty.
fn null_as_empty<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    const USD: &str = "4d2dfb0a8f1d3bb1f5e1c2a7b9d8e6f40a1b2c3d4e5f60718293a4b5c6d7403f";
    const GROUP: &str = "02a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

    fn usd() -> AssetRef {
        AssetRef::parse(USD).unwrap()
    }

    /// The shape a real regtest litd node returned (lncli prints the same object indented).
    #[test]
    fn parses_what_a_real_node_sends() {
        let json = format!(
            r#"{{"open_channels":{{"{USD}":{{"asset_id":"{USD}","name":"USD","local_balance":2000000,"remote_balance":998000000}}}},"open_channels_by_group":{{}},"pending_channels":{{}},"pending_channels_by_group":{{}}}}"#
        );
        let b = parse(json.as_bytes()).unwrap();
        let want = ChannelUnits {
            local: 2_000_000,
            remote: 998_000_000,
        };
        assert_eq!(b.open_units(&usd()), want);
        assert_eq!(b.pending_units(&usd()), ChannelUnits::default());
        assert!(b.open_by_group.is_empty() && b.pending.is_empty());
        let other = AssetRef::Id([7; 32]);
        assert_eq!(b.open_units(&other), ChannelUnits::default());
    }

    #[test]
    fn empty_bytes_mean_no_channels() {
        assert_eq!(parse(b"").unwrap(), AssetChannelBalances::default());
    }

    #[test]
    fn btc_channels_only_give_four_empty_maps() {
        let json = br#"{"open_channels":{},"open_channels_by_group":{},"pending_channels":{},"pending_channels_by_group":{}}"#;
        assert_eq!(parse(json).unwrap(), AssetChannelBalances::default());
        // Go's nil map and a missing key are empty too.
        let json = br#"{"open_channels":null}"#;
        assert_eq!(parse(json).unwrap(), AssetChannelBalances::default());
    }

    #[test]
    fn pending_channels_and_groups_are_kept_apart_from_open_ones() {
        let json = format!(
            r#"{{
              "open_channels": {{}},
              "open_channels_by_group": {{"{GROUP}": {{"local_balance": 5, "remote_balance": 6}}}},
              "pending_channels": {{"{USD}": {{"asset_id": "{USD}", "name": "USD",
                                               "local_balance": 100, "remote_balance": 0}}}},
              "pending_channels_by_group": {{"{GROUP}": {{"local_balance": 100, "remote_balance": 0}}}}
            }}"#
        );
        let b = parse(json.as_bytes()).unwrap();
        assert_eq!(b.open_units(&usd()), ChannelUnits::default());
        assert_eq!(
            b.pending_units(&usd()),
            ChannelUnits {
                local: 100,
                remote: 0
            }
        );
        let group = AssetRef::parse(GROUP).unwrap();
        assert_eq!(
            b.open_units(&group),
            ChannelUnits {
                local: 5,
                remote: 6
            }
        );
        assert_eq!(b.pending_units(&group).local, 100);
    }

    #[test]
    fn unknown_fields_are_ignored_and_upper_case_keys_found() {
        let json = format!(
            r#"{{"open_channels":{{"{}":{{"asset_id":"x","name":"USD","decimal_display":6,
                 "local_balance":1,"remote_balance":2,"htlcs":[]}}}},
                 "some_future_map":{{"a":1}}}}"#,
            USD.to_ascii_uppercase()
        );
        let b = parse(json.as_bytes()).unwrap();
        assert_eq!(
            b.open_units(&usd()),
            ChannelUnits {
                local: 1,
                remote: 2
            }
        );
    }

    #[test]
    fn malformed_data_is_an_error_not_a_panic() {
        let bad: &[&[u8]] = &[
            // A plain lnd's own encoding (one channel, no pending ones): not JSON.
            &[0x01, 0x00, 0x00],
            b"{",
            b"[]",
            br#"{"open_channels":[]}"#,
            br#"{"open_channels":{"ab":{"local_balance":1}}}"#,
            br#"{"open_channels":{"ab":{"local_balance":-1,"remote_balance":0}}}"#,
            br#"{"open_channels":{"ab":{"local_balance":18446744073709551616,"remote_balance":0}}}"#,
            br#"{"open_channels":{"ab":{"local_balance":"1","remote_balance":0}}}"#,
        ];
        for bytes in bad {
            assert!(parse(bytes).is_err(), "{}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn writes_the_same_bytes_tapd_does() {
        let mut open = BTreeMap::new();
        open.insert(
            USD.to_owned(),
            AssetBalanceJson {
                asset_id: USD.to_owned(),
                name: "USD".to_owned(),
                local_balance: 2_000_000,
                remote_balance: 998_000_000,
            },
        );
        let mut by_group = BTreeMap::new();
        by_group.insert(
            GROUP.to_owned(),
            AssetBalanceJson {
                local_balance: 2_000_000,
                remote_balance: 998_000_000,
                ..Default::default()
            },
        );
        let wire = ChannelBalancesJson {
            open_channels: open,
            open_channels_by_group: by_group,
            ..Default::default()
        };
        // Go's encoding/json: struct fields in declaration order, map keys sorted, no spaces,
        // empty strings omitted (`omitempty`).
        assert_eq!(
            serde_json::to_string(&wire).unwrap(),
            format!(
                r#"{{"open_channels":{{"{USD}":{{"asset_id":"{USD}","name":"USD","local_balance":2000000,"remote_balance":998000000}}}},"open_channels_by_group":{{"{GROUP}":{{"local_balance":2000000,"remote_balance":998000000}}}},"pending_channels":{{}},"pending_channels_by_group":{{}}}}"#
            )
        );
    }
}
