//! The permissions lnd and tapd bake into their macaroons, and the permissions each RPC that
//! simnet serves requires, as the daemons define them:
//!
//! - lnd v0.21.0-beta (github.com/lightningnetwork/lnd): `rpcserver.go` (`readPermissions`,
//!   `writePermissions`, `invoicePermissions`, `MainRPCServerPermissions`), `lnd.go`
//!   (`genDefaultMacaroons`, `adminPermissions`), `lnrpc/routerrpc/router_server.go` and
//!   `lnrpc/invoicesrpc/invoices_server.go` (`macPermissions`).
//! - taproot-assets v0.8.1 (github.com/lightninglabs/taproot-assets): `taprpc/perms.go`
//!   (`RequiredPermissions`); tapd's `admin.macaroon` is baked by lndclient v0.21.0-1
//!   `macaroon_service.go` with every entity/action pair of that map (`extractPerms`).
//!
//! A permission travels in the macaroon's identifier, as go-macaroon-bakery v2.0.1 writes it
//! (`bakery/oven.go`, `bakery/internal/macaroonpb/id.proto`): byte 3 (`bakery.Version3`), then the
//! protobuf `MacaroonId { nonce = 1; storageId = 2; repeated Op ops = 3 }` with
//! `Op { entity = 1; repeated actions = 2 }`, the operations sorted by entity then action and
//! grouped per entity. lnd and tapd bake with storage id `"0"` (lnd `macaroons/store.go`
//! `DefaultRootKeyID`). lnd's own copy of the message is `lnrpc/lightning.proto` `MacaroonId`.
//!
//! This module is pure data and encoding; `simnet::auth` checks calls against it.

use prost::Message;

/// One permission: an action on an entity (go-macaroon-bakery's `bakery.Op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Op {
    /// What the permission is about (`offchain`, `invoices`, `assets`, …).
    pub entity: &'static str,
    /// What it allows on the entity (`read`, `write`, `generate`).
    pub action: &'static str,
}

const fn op(entity: &'static str, action: &'static str) -> Op {
    Op { entity, action }
}

/// The entity whose action is a full method path, granting that one method (lnd
/// `macaroons/service.go` `PermissionEntityCustomURI`; checked after the method's own
/// permissions, as `CheckMacAuth` does).
pub const URI_ENTITY: &str = "uri";

/// lnd's `readPermissions` (lnd v0.21.0-beta `rpcserver.go`): `readonly.macaroon`.
pub const LND_READ: &[Op] = &[
    op("onchain", "read"),
    op("offchain", "read"),
    op("address", "read"),
    op("message", "read"),
    op("peers", "read"),
    op("info", "read"),
    op("invoices", "read"),
    op("signer", "read"),
    op("macaroon", "read"),
];

/// lnd's `writePermissions` (lnd v0.21.0-beta `rpcserver.go`); `admin.macaroon` carries these and
/// [`LND_READ`] (`lnd.go` `adminPermissions`).
pub const LND_WRITE: &[Op] = &[
    op("onchain", "write"),
    op("offchain", "write"),
    op("address", "write"),
    op("message", "write"),
    op("peers", "write"),
    op("info", "write"),
    op("invoices", "write"),
    op("signer", "generate"),
    op("macaroon", "generate"),
    op("macaroon", "write"),
];

/// lnd's `invoicePermissions` (lnd v0.21.0-beta `rpcserver.go`): `invoice.macaroon`.
pub const LND_INVOICE: &[Op] = &[
    op("invoices", "read"),
    op("invoices", "write"),
    op("address", "read"),
    op("address", "write"),
    op("onchain", "read"),
];

/// tapd's `admin.macaroon`: every entity/action pair in taproot-assets v0.8.1 `taprpc/perms.go`
/// `RequiredPermissions` (deduplicated by lndclient v0.21.0-1 `extractPerms`).
pub const TAPD_ADMIN: &[Op] = &[
    op("addresses", "read"),
    op("addresses", "write"),
    op("assets", "read"),
    op("assets", "write"),
    op("channels", "read"),
    op("channels", "write"),
    op("daemon", "read"),
    op("daemon", "write"),
    op("macaroon", "write"),
    op("mailbox", "read"),
    op("mailbox", "write"),
    op("mint", "read"),
    op("mint", "write"),
    op("proofs", "read"),
    op("proofs", "write"),
    op("rfq", "read"),
    op("rfq", "write"),
    op("universe", "read"),
    op("universe", "write"),
];

/// A macaroon file a simnet node writes, by the daemon that bakes it and its permission set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// lnd's `admin.macaroon`: [`LND_READ`] and [`LND_WRITE`].
    LndAdmin,
    /// lnd's `invoice.macaroon`: [`LND_INVOICE`].
    LndInvoice,
    /// lnd's `readonly.macaroon`: [`LND_READ`].
    LndReadonly,
    /// tapd's `admin.macaroon`: [`TAPD_ADMIN`].
    TapdAdmin,
}

impl Grant {
    /// The macaroon's location: the name the daemon's macaroon service is created with (lnd
    /// `config_builder.go` `"lnd"`, taproot-assets `tapconfig/config.go` `TapdMacaroonLocation`).
    pub fn location(self) -> &'static str {
        match self {
            Grant::LndAdmin | Grant::LndInvoice | Grant::LndReadonly => "lnd",
            Grant::TapdAdmin => "tapd",
        }
    }

    /// The permissions baked in, in the daemon's order (the identifier sorts them).
    pub fn ops(self) -> Vec<Op> {
        match self {
            Grant::LndAdmin => [LND_READ, LND_WRITE].concat(),
            Grant::LndInvoice => LND_INVOICE.to_vec(),
            Grant::LndReadonly => LND_READ.to_vec(),
            Grant::TapdAdmin => TAPD_ADMIN.to_vec(),
        }
    }
}

const INFO_READ: &[Op] = &[op("info", "read")];
const OFFCHAIN_READ: &[Op] = &[op("offchain", "read")];
const OFFCHAIN_WRITE: &[Op] = &[op("offchain", "write")];
const INVOICES_READ: &[Op] = &[op("invoices", "read")];
const INVOICES_WRITE: &[Op] = &[op("invoices", "write")];
const DAEMON_READ: &[Op] = &[op("daemon", "read")];
const ASSETS_READ: &[Op] = &[op("assets", "read")];
const RFQ_READ: &[Op] = &[op("rfq", "read")];
const RFQ_WRITE: &[Op] = &[op("rfq", "write")];
const CHANNELS_READ: &[Op] = &[op("channels", "read")];
const CHANNELS_WRITE: &[Op] = &[op("channels", "write")];

/// What each RPC simnet serves behind a macaroon requires, by full method path. Every served
/// method has a row (a unit test compares this table with `proto/`); a path without one is
/// refused, as lnd and tapd refuse a method missing from their maps.
const REQUIRED: &[(&str, &[Op])] = &[
    // lnd v0.21.0-beta rpcserver.go MainRPCServerPermissions.
    ("/lnrpc.Lightning/GetInfo", INFO_READ),
    ("/lnrpc.Lightning/AddInvoice", INVOICES_WRITE),
    ("/lnrpc.Lightning/LookupInvoice", INVOICES_READ),
    ("/lnrpc.Lightning/SubscribeInvoices", INVOICES_READ),
    ("/lnrpc.Lightning/DecodePayReq", OFFCHAIN_READ),
    ("/lnrpc.Lightning/ChannelBalance", OFFCHAIN_READ),
    // lnd v0.21.0-beta lnrpc/routerrpc/router_server.go macPermissions.
    ("/routerrpc.Router/SendPaymentV2", OFFCHAIN_WRITE),
    ("/routerrpc.Router/TrackPaymentV2", OFFCHAIN_READ),
    // lnd v0.21.0-beta lnrpc/invoicesrpc/invoices_server.go macPermissions.
    (
        "/invoicesrpc.Invoices/SubscribeSingleInvoice",
        INVOICES_READ,
    ),
    ("/invoicesrpc.Invoices/CancelInvoice", INVOICES_WRITE),
    ("/invoicesrpc.Invoices/AddHoldInvoice", INVOICES_WRITE),
    ("/invoicesrpc.Invoices/SettleInvoice", INVOICES_WRITE),
    // taproot-assets v0.8.1 taprpc/perms.go RequiredPermissions.
    ("/taprpc.TaprootAssets/ListAssets", ASSETS_READ),
    ("/taprpc.TaprootAssets/ListBalances", ASSETS_READ),
    ("/taprpc.TaprootAssets/GetInfo", DAEMON_READ),
    ("/taprpc.TaprootAssets/FetchAssetMeta", ASSETS_READ),
    ("/rfqrpc.Rfq/AddAssetBuyOrder", RFQ_WRITE),
    ("/rfqrpc.Rfq/AddAssetSellOrder", RFQ_WRITE),
    ("/rfqrpc.Rfq/QueryPeerAcceptedQuotes", RFQ_READ),
    (
        "/tapchannelrpc.TaprootAssetChannels/SendPayment",
        CHANNELS_WRITE,
    ),
    (
        "/tapchannelrpc.TaprootAssetChannels/AddInvoice",
        CHANNELS_WRITE,
    ),
    (
        "/tapchannelrpc.TaprootAssetChannels/DecodeAssetPayReq",
        CHANNELS_READ,
    ),
];

/// The permissions `path` (`/package.Service/Method`) requires, or `None` for a method with no
/// row, which the caller must refuse.
pub fn required(path: &str) -> Option<&'static [Op]> {
    REQUIRED
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, ops)| *ops)
}

/// go-macaroon-bakery's `macaroonpb.MacaroonId` (field numbers from
/// `bakery/internal/macaroonpb/id.proto`, v2.0.1).
#[derive(Clone, PartialEq, prost::Message)]
struct MacaroonId {
    #[prost(bytes = "vec", tag = "1")]
    nonce: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    storage_id: Vec<u8>,
    #[prost(message, repeated, tag = "3")]
    ops: Vec<IdOp>,
}

/// go-macaroon-bakery's `macaroonpb.Op`: one entity and its actions.
#[derive(Clone, PartialEq, Eq, prost::Message)]
struct IdOp {
    #[prost(string, tag = "1")]
    entity: String,
    #[prost(string, repeated, tag = "2")]
    actions: Vec<String>,
}

/// go-macaroon-bakery's `bakery.Version3`, the identifier's first byte.
const ID_VERSION: u8 = 3;

/// The storage id lnd and tapd bake with (lnd `macaroons/store.go` `DefaultRootKeyID`).
const STORAGE_ID: &[u8] = b"0";

/// The nonce's length (bakery takes the first 16 bytes of a UUID).
pub const NONCE_LEN: usize = 16;

/// Why an identifier names no permissions. Messages are lnd's (`macaroons/service.go`
/// `ErrInvalidID`) and go-macaroon-bakery's (`bakery/oven.go`, wrapped by `bakery/checker.go`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// Empty, or not version 3.
    #[error("invalid ID")]
    Version,
    /// The protobuf does not decode.
    #[error("cannot retrieve macaroon: cannot unmarshal macaroon id: {0}")]
    Unmarshal(String),
    /// No operation, or an entity without actions first.
    #[error("cannot retrieve macaroon: no operations found in macaroon")]
    NoOps,
}

/// The identifier bakery writes for `ops`: version byte 3, then the protobuf with `nonce`,
/// storage id `"0"` and `ops` sorted, deduplicated and grouped by entity (`CanonicalOps`,
/// `macaroonIdOps`).
pub fn encode_identifier(nonce: [u8; NONCE_LEN], ops: &[Op]) -> Vec<u8> {
    let mut sorted = ops.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut id_ops: Vec<IdOp> = Vec::new();
    for o in sorted {
        match id_ops.last_mut() {
            Some(last) if last.entity == o.entity => last.actions.push(o.action.to_owned()),
            _ => id_ops.push(IdOp {
                entity: o.entity.to_owned(),
                actions: vec![o.action.to_owned()],
            }),
        }
    }
    let id = MacaroonId {
        nonce: nonce.to_vec(),
        storage_id: STORAGE_ID.to_vec(),
        ops: id_ops,
    };
    [&[ID_VERSION][..], &id.encode_to_vec()].concat()
}

/// The permissions a macaroon identifier grants, decoded as bakery's `decodeMacaroonId` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    ops: Vec<IdOp>,
}

impl Granted {
    /// Decodes `identifier` (see [`encode_identifier`]).
    pub fn decode(identifier: &[u8]) -> Result<Self, IdentifierError> {
        let Some((&ID_VERSION, body)) = identifier.split_first() else {
            return Err(IdentifierError::Version);
        };
        let id = MacaroonId::decode(body).map_err(|e| IdentifierError::Unmarshal(e.to_string()))?;
        match id.ops.first() {
            Some(first) if !first.actions.is_empty() => Ok(Granted { ops: id.ops }),
            _ => Err(IdentifierError::NoOps),
        }
    }

    /// Whether `entity`/`action` is granted.
    fn has(&self, entity: &str, action: &str) -> bool {
        self.ops
            .iter()
            .any(|o| o.entity == entity && o.actions.iter().any(|a| a == action))
    }

    /// Whether these permissions allow a call of `path` that requires `required`: all of them,
    /// or else the permission `uri`/`path` (lnd `macaroons/service.go` `CheckMacAuth`).
    pub fn allows(&self, required: &[Op], path: &str) -> bool {
        required.iter().all(|o| self.has(o.entity, o.action)) || self.has(URI_ENTITY, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every `/package.Service/Method` declared in `proto/`, except the price oracle's (which
    /// takes no macaroon, like tapd's sample oracle).
    fn proto_method_paths() -> BTreeSet<String> {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "proto") {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto"),
            &mut files,
        );
        let mut paths = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let mut package = String::new();
            let mut service = String::new();
            for line in text.lines().map(str::trim) {
                let word = |prefix: &str| {
                    line.strip_prefix(prefix).map(|rest| {
                        rest.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
                            .next()
                            .unwrap_or_default()
                            .to_owned()
                    })
                };
                if let Some(p) = word("package ") {
                    package = p;
                } else if let Some(s) = word("service ") {
                    service = s;
                } else if let Some(m) = word("rpc ") {
                    paths.insert(format!("/{package}.{service}/{m}"));
                }
            }
        }
        // The price oracle is the edge's service, and tapgate's own admin API is not lnd's or
        // tapd's: simnet serves neither under lnd's macaroons.
        paths.retain(|p| !p.starts_with("/priceoraclerpc.") && !p.starts_with("/tapgate."));
        paths
    }

    /// Every path the generated servers (`build.rs` output, `OUT_DIR`) route to a handler: the
    /// `"/package.Service/Method" => {` arms of their `call`, except the price oracle's.
    fn generated_server_paths() -> BTreeSet<String> {
        let mut paths = BTreeSet::new();
        for entry in std::fs::read_dir(env!("OUT_DIR")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines().map(str::trim) {
                if let Some(arm) = line
                    .strip_prefix('"')
                    .and_then(|l| l.strip_suffix("\" => {"))
                    .filter(|arm| arm.starts_with('/'))
                {
                    paths.insert(arm.to_owned());
                }
            }
        }
        // The price oracle is the edge's service, and tapgate's own admin API is not lnd's or
        // tapd's: simnet serves neither under lnd's macaroons.
        paths.retain(|p| !p.starts_with("/priceoraclerpc.") && !p.starts_with("/tapgate."));
        paths
    }

    #[test]
    fn every_served_method_has_a_row_and_every_row_is_served() {
        let table: BTreeSet<String> = REQUIRED.iter().map(|(p, _)| (*p).to_owned()).collect();
        assert_eq!(table.len(), REQUIRED.len(), "duplicate rows");
        for (source, served) in [
            ("proto/", proto_method_paths()),
            ("the generated servers", generated_server_paths()),
        ] {
            assert!(served.len() >= 20, "{source}: too few methods: {served:?}");
            let missing: Vec<_> = served.difference(&table).collect();
            assert!(
                missing.is_empty(),
                "{source}: served without a permission row: {missing:?}"
            );
            let extra: Vec<_> = table.difference(&served).collect();
            assert!(
                extra.is_empty(),
                "{source}: rows for methods not served: {extra:?}"
            );
        }
        assert_eq!(required("/lnrpc.Lightning/ListPeers"), None);
        assert_eq!(
            required("/priceoraclerpc.PriceOracle/QueryAssetRates"),
            None
        );
    }

    fn granted(grant: Grant) -> Granted {
        Granted::decode(&encode_identifier([7; NONCE_LEN], &grant.ops())).unwrap()
    }

    fn allowed(grant: Grant) -> BTreeSet<&'static str> {
        let g = granted(grant);
        REQUIRED
            .iter()
            .filter(|(path, ops)| g.allows(ops, path))
            .map(|(path, _)| *path)
            .collect()
    }

    #[test]
    fn each_macaroon_allows_what_lnd_and_tapd_let_it() {
        let lnd: BTreeSet<_> = REQUIRED
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| {
                ["/lnrpc.", "/routerrpc.", "/invoicesrpc."]
                    .iter()
                    .any(|s| p.starts_with(s))
            })
            .collect();
        let tapd: BTreeSet<_> = REQUIRED
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| !lnd.contains(p))
            .collect();
        assert_eq!(allowed(Grant::LndAdmin), lnd);
        assert_eq!(allowed(Grant::TapdAdmin), tapd);
        let read: BTreeSet<_> = [
            "/lnrpc.Lightning/GetInfo",
            "/lnrpc.Lightning/LookupInvoice",
            "/lnrpc.Lightning/SubscribeInvoices",
            "/lnrpc.Lightning/DecodePayReq",
            "/lnrpc.Lightning/ChannelBalance",
            "/routerrpc.Router/TrackPaymentV2",
            "/invoicesrpc.Invoices/SubscribeSingleInvoice",
        ]
        .into();
        assert_eq!(allowed(Grant::LndReadonly), read);
        let invoice: BTreeSet<_> = [
            "/lnrpc.Lightning/AddInvoice",
            "/lnrpc.Lightning/LookupInvoice",
            "/lnrpc.Lightning/SubscribeInvoices",
            "/invoicesrpc.Invoices/SubscribeSingleInvoice",
            "/invoicesrpc.Invoices/CancelInvoice",
            "/invoicesrpc.Invoices/AddHoldInvoice",
            "/invoicesrpc.Invoices/SettleInvoice",
        ]
        .into();
        assert_eq!(allowed(Grant::LndInvoice), invoice);
    }

    #[test]
    fn the_identifier_is_bakerys_version_3_protobuf() {
        let id = encode_identifier([0xab; NONCE_LEN], &Grant::LndInvoice.ops());
        // 03, field 1 (nonce, 16 bytes), field 2 (storage id "0"): the same opening as the hex
        // of an lnd macaroon (lnd docs/rest/websockets.md: `…02eb01030a10625e7e…`).
        let mut head = vec![3, 0x0a, 16];
        head.extend([0xab; NONCE_LEN]);
        head.extend([0x12, 1, b'0']);
        assert_eq!(&id[..head.len()], head.as_slice());
        // Sorted by entity, then action; one Op per entity.
        let decoded = MacaroonId::decode(&id[1..]).unwrap();
        let ops: Vec<(String, Vec<String>)> = decoded
            .ops
            .into_iter()
            .map(|o| (o.entity, o.actions))
            .collect();
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            ops,
            vec![
                ("address".to_owned(), s(&["read", "write"])),
                ("invoices".to_owned(), s(&["read", "write"])),
                ("onchain".to_owned(), s(&["read"])),
            ]
        );
        let admin =
            MacaroonId::decode(&encode_identifier([0; 16], &Grant::LndAdmin.ops())[1..]).unwrap();
        let macaroon = admin.ops.iter().find(|o| o.entity == "macaroon").unwrap();
        assert_eq!(macaroon.actions, s(&["generate", "read", "write"]));
    }

    #[test]
    fn identifiers_that_grant_nothing_are_refused_in_lnds_words() {
        assert_eq!(Granted::decode(&[]), Err(IdentifierError::Version));
        assert_eq!(Granted::decode(&[2; 24]), Err(IdentifierError::Version));
        assert_eq!(Granted::decode(&[3]), Err(IdentifierError::NoOps));
        let no_actions = MacaroonId {
            nonce: vec![0; 16],
            storage_id: b"0".to_vec(),
            ops: vec![IdOp {
                entity: "offchain".into(),
                actions: vec![],
            }],
        };
        let id = [&[3][..], &no_actions.encode_to_vec()].concat();
        assert_eq!(Granted::decode(&id), Err(IdentifierError::NoOps));
        let err = Granted::decode(&[3, 0x0a, 200]).unwrap_err();
        assert!(matches!(err, IdentifierError::Unmarshal(_)), "{err:?}");
        assert_eq!(IdentifierError::Version.to_string(), "invalid ID");
    }

    #[test]
    fn a_uri_permission_grants_that_method_only() {
        let ops = [Op {
            entity: URI_ENTITY,
            action: "/routerrpc.Router/SendPaymentV2",
        }];
        let g = Granted::decode(&encode_identifier([1; NONCE_LEN], &ops)).unwrap();
        let pay = "/routerrpc.Router/SendPaymentV2";
        assert!(g.allows(required(pay).unwrap(), pay));
        let track = "/routerrpc.Router/TrackPaymentV2";
        assert!(!g.allows(required(track).unwrap(), track));
    }
}
