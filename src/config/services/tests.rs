//! The service catalogue's defaults, matching order and every refusal, each naming its key.

use super::*;
use crate::config::{Settings, Sources};
use std::io::Write;

const ASSET: &str = "7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e";
/// The secp256k1 generator, compressed: a valid public key.
const G: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

/// One `[[services]]` table: a valid sats service called `name` selling `/<name>/*`, with
/// `set` replacing or adding keys (a value of `""` removes the key).
fn service(name: &str, set: &[(&str, &str)]) -> String {
    let mut keys: Vec<(String, String)> = [
        ("name", format!("{name:?}")),
        ("paths", format!("[\"/{name}/*\"]")),
        ("upstream", "\"http://127.0.0.1:9000\"".into()),
        ("price_usd", "\"0.01\"".into()),
        ("settlement", "\"sats\"".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in set {
        match keys.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v.to_string(),
            None => keys.push((k.to_string(), v.to_string())),
        }
    }
    let mut out = String::from("[[services]]\n");
    for (k, v) in keys.into_iter().filter(|(_, v)| !v.is_empty()) {
        out.push_str(&format!("{k} = {v}\n"));
    }
    out
}

fn load(toml: &str) -> Result<Settings, crate::config::ConfigError> {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(toml.as_bytes()).unwrap();
    Sources {
        file: Some(f.path().to_owned()),
        overrides: Vec::new(),
        env: false,
    }
    .load()
}

#[test]
fn a_minimal_service_gets_the_documented_defaults() {
    let s = load(&service("weather", &[])).unwrap();
    assert_eq!(s.gateway, GatewaySettings::default());
    assert_eq!(s.gateway.listen.to_string(), "127.0.0.1:8402");
    assert_eq!(s.gateway.admin_listen.to_string(), "127.0.0.1:8403");
    assert_eq!(s.gateway.workers, 0);
    assert!(s.gateway.worker_threads() >= 1);
    let w = &s.services[0];
    assert_eq!(w, &Service::example("weather"));
    assert_eq!(w.token_lifetime_secs, 86_400);
    assert_eq!(w.methods, ["GET", "POST"]);
    assert_eq!(w.small_price, SmallPrice::SatsInvoice);
    assert_eq!(w.price_usd.usd(), Decimal::new(1, 2));
    assert_eq!(w.upstream.scheme(), UpstreamScheme::Http);
    assert_eq!(
        (w.upstream.host(), w.upstream.port()),
        ("127.0.0.1", Some(9000))
    );
}

#[test]
fn config_check_output_loads_back_to_the_same_settings() {
    let text = format!(
        "[network]\nasset_id = \"{ASSET}\"\nedge_pubkey = \"{G}\"\n[gateway]\nlisten = \"0.0.0.0:8080\"\n{}{}",
        service(
            "llm",
            &[
                ("host", "\"API.example.com\""),
                (
                    "settlement",
                    &format!("{{ asset = \"default\", edge_peer = \"{G}\" }}")
                ),
                ("small_price", "\"prepaid\""),
                ("prepaid_usd", "\"1.00\""),
                ("free_paths", "[\"/llm/health\"]"),
                ("free_calls_per_client", "3"),
                ("methods", "[\"POST\"]"),
                (
                    "tiers",
                    "[{ name = \"pro\", paths = [\"/llm/big/*\"], capabilities = [\"gpt\"], price_usd = \"0.10\" }]"
                ),
            ],
        ),
        service("weather", &[("upstream", "\"grpc://[::1]:50051/base\"")]),
    );
    let s = load(&text).unwrap();
    assert_eq!(s.services[1].upstream.host(), "::1");
    let printed = s.to_toml();
    assert!(
        printed.contains("[[services]]") && printed.contains("prepaid_usd = \"1.00\""),
        "{printed}"
    );
    assert_eq!(load(&printed).unwrap(), s, "{printed}");
}

/// Every refusal, each naming its key and saying what is wrong.
#[test]
fn bad_services_are_refused_naming_the_key() {
    let net = format!("[network]\nasset_id = \"{ASSET}\"\nedge_pubkey = \"{G}\"\n");
    let asset = |extra: &str| format!("{{ asset = \"{ASSET}\", edge_peer = \"{G}\"{extra} }}");
    let one = |set: &[(&str, &str)]| service("a", set);
    let cases: Vec<(String, &str, &str)> = vec![
        // Parsed while reading the layers: figment names the key and the file.
        (
            one(&[("price_usd", "\"0\"")]),
            "services.0.price_usd",
            "free_paths",
        ),
        (
            one(&[("price_usd", "\"-1\"")]),
            "services.0.price_usd",
            "decimal string",
        ),
        (
            one(&[("price_usd", "\"0.0000001\"")]),
            "services.0.price_usd",
            "decimal places",
        ),
        (
            one(&[("price_usd", "\"1e3\"")]),
            "services.0.price_usd",
            "decimal string",
        ),
        (
            one(&[("price_usd", "0.1")]),
            "services.0.price_usd",
            "string",
        ),
        (
            one(&[("price_usd", "\"99999999999999999\"")]),
            "services.0.price_usd",
            "overflows",
        ),
        (
            one(&[("upstream", "\"ftp://x\"")]),
            "services.0.upstream",
            "http, https or grpc",
        ),
        (
            one(&[("upstream", "\"http://\"")]),
            "services.0.upstream",
            "no host",
        ),
        (
            one(&[("upstream", "\"http:///x\"")]),
            "services.0.upstream",
            "no host",
        ),
        (
            one(&[("upstream", "\"localhost:9000\"")]),
            "services.0.upstream",
            "not a URL",
        ),
        (
            one(&[("upstream", "\"http://u:p@h\"")]),
            "services.0.upstream",
            "credentials",
        ),
        (
            one(&[("upstream", "\"http://h:0\"")]),
            "services.0.upstream",
            "host[:port]",
        ),
        (
            one(&[("upstream", "\"http://h?x=1\"")]),
            "services.0.upstream",
            "query",
        ),
        (
            one(&[("upstream", "\"grpc://h\"")]),
            "services.0.upstream",
            "no port",
        ),
        (
            one(&[("paths", "[\"api/*\"]")]),
            "services.0.paths",
            "start with /",
        ),
        (
            one(&[("settlement", "\"btc\"")]),
            "services.0.settlement",
            "\"sats\" or a table",
        ),
        (
            one(&[("settlement", "{ assett = \"x\" }")]),
            "services.0.settlement",
            "assett",
        ),
        (
            one(&[("small_price", "\"free\"")]),
            "services.0.small_price",
            "prepaid",
        ),
        (one(&[("colour", "\"red\"")]), "colour", "unknown field"),
        (one(&[("name", "")]), "services.0", "name"),
        // Checked on the whole catalogue.
        (
            one(&[("name", "\"a b\"")]),
            "services.0.name",
            "letters, digits",
        ),
        (
            one(&[("host", "\"a.example:80\"")]),
            "services.0.host",
            "without a port",
        ),
        (
            one(&[("host", "\"\"")]),
            "services.0.host",
            "without a port",
        ),
        (one(&[("paths", "[]")]), "services.0.paths", "is empty"),
        (
            format!(
                "{}{}",
                service("a", &[]),
                service("a", &[("paths", "[\"/b\"]")])
            ),
            "services.1.name",
            "unique",
        ),
        (
            format!(
                "{}{}",
                service("all", &[("paths", "[\"/*\"]")]),
                service("b", &[])
            ),
            "services.1.paths.0",
            "never matches: services.0 (\"all\")",
        ),
        (
            format!(
                "{}{}",
                service(
                    "pinned",
                    &[("host", "\"x.example\""), ("paths", "[\"/*\"]")]
                ),
                service("b", &[("host", "\"X.example\"")]),
            ),
            "services.1.paths.0",
            "never matches",
        ),
        (
            one(&[("settlement", "{ asset = \"default\" }")]),
            "services.0.settlement.asset",
            "network.asset_id",
        ),
        (
            format!(
                "[network]\nasset_id = \"{ASSET}\"\n{}",
                one(&[("settlement", "{ asset = \"default\" }")])
            ),
            "services.0.settlement.edge_peer",
            "network.edge_pubkey",
        ),
        (
            one(&[(
                "settlement",
                &format!("{{ asset = \"abc\", edge_peer = \"{G}\" }}"),
            )]),
            "services.0.settlement.asset",
            "64 hex",
        ),
        (
            one(&[(
                "settlement",
                &format!("{{ asset = \"{ASSET}\", edge_peer = \"{ASSET}\" }}"),
            )]),
            "services.0.settlement.edge_peer",
            "66 hex",
        ),
        (
            one(&[("token_lifetime_secs", "59")]),
            "services.0.token_lifetime_secs",
            "60 to",
        ),
        (
            one(&[("token_lifetime_secs", "31536001")]),
            "services.0.token_lifetime_secs",
            "60 to",
        ),
        (one(&[("methods", "[]")]), "services.0.methods", "is empty"),
        (
            one(&[("methods", "[\"get\"]")]),
            "services.0.methods.0",
            "upper case",
        ),
        (
            one(&[("methods", "[\"GET\", \"GET\"]")]),
            "services.0.methods.1",
            "twice",
        ),
        (
            one(&[("upstream", "\"grpc://h:1\""), ("methods", "[\"GET\"]")]),
            "services.0.methods",
            "POST",
        ),
        (
            one(&[("free_paths", "[\"/b/*\"]")]),
            "services.0.free_paths.0",
            "no pattern in service \"a\"'s paths",
        ),
        (
            format!(
                "{}{}",
                service("h", &[("paths", "[\"/b/health\"]")]),
                service("b", &[("free_paths", "[\"/b/health\"]")])
            ),
            "services.1.free_paths.0",
            "never matches: services.0",
        ),
        (
            one(&[("free_calls_per_client", "0")]),
            "services.0.free_calls_per_client",
            "leave the key out",
        ),
        (
            one(&[("tiers", "[{ name = \"p p\", paths = [\"/a/x\"] }]")]),
            "services.0.tiers.0.name",
            "letters",
        ),
        (
            one(&[(
                "tiers",
                "[{ name = \"p\", paths = [\"/a/x\"] }, { name = \"p\", paths = [\"/a/y\"] }]",
            )]),
            "services.0.tiers.1.name",
            "unique",
        ),
        (
            one(&[("tiers", "[{ name = \"p\" }]")]),
            "services.0.tiers.0",
            "grants nothing",
        ),
        (
            one(&[("tiers", "[{ name = \"p\", paths = [\"/z\"] }]")]),
            "services.0.tiers.0.paths.0",
            "never matches",
        ),
        (
            one(&[("tiers", "[{ name = \"p\", capabilities = [\"a,b\"] }]")]),
            "services.0.tiers.0.capabilities.0",
            "letters",
        ),
        (
            one(&[("small_price", "\"prepaid\""), ("prepaid_usd", "\"1\"")]),
            "services.0.small_price",
            "asset settlement",
        ),
        (
            one(&[("settlement", &asset("")), ("small_price", "\"prepaid\"")]),
            "services.0.prepaid_usd",
            "is needed",
        ),
        (
            one(&[
                ("settlement", &asset("")),
                ("small_price", "\"prepaid\""),
                ("prepaid_usd", "\"0.001\""),
            ]),
            "services.0.prepaid_usd",
            "does not pay for one call",
        ),
        (
            one(&[("settlement", &asset("")), ("prepaid_usd", "\"1\"")]),
            "services.0.prepaid_usd",
            "only with small_price",
        ),
        (
            "[gateway]\nlisten = \"127.0.0.1:9\"\nadmin_listen = \"127.0.0.1:9\"\n".into(),
            "gateway.admin_listen",
            "own port",
        ),
        (
            "[gateway]\nlisten = \"localhost\"\n".into(),
            "gateway.listen",
            "socket address",
        ),
        (
            "[gateway]\nworkers = 257\n".into(),
            "gateway.workers",
            "more than 256",
        ),
        (
            format!("{net}file = \"/n/network.toml\"\n"),
            "network.file",
            "network.asset_id is set too",
        ),
        (
            "[network]\nfile = \"${TAPGATE_TEST_SURELY_UNSET}/n\"\n".into(),
            "network.file",
            "TAPGATE_TEST_SURELY_UNSET",
        ),
    ];
    for (toml, key, why) in cases {
        let err = match load(&toml) {
            Ok(_) => panic!("accepted:\n{toml}"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(key) && err.contains(why),
            "{key} / {why}:\n{toml}\n{err}"
        );
    }
}

#[test]
fn the_network_or_its_file_lets_a_service_use_the_default_asset() {
    let default = service("a", &[("settlement", "{ asset = \"default\" }")]);
    assert!(load(&default).is_err());
    let net = format!("[network]\nasset_id = \"{ASSET}\"\nedge_pubkey = \"{G}\"\n{default}");
    assert!(load(&net).is_ok());
    let file = format!("[network]\nfile = \"/sim/network.toml\"\n{default}");
    assert_eq!(
        load(&file).unwrap().network.file.as_deref(),
        Some("/sim/network.toml")
    );
    assert!(load(&service("a", &[("host", "\"[::1]\"")])).is_ok());
    // Port 0 (pick one) on both sockets is not a clash.
    assert!(load("[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n").is_ok());
}

#[test]
fn prices_are_exact_decimal_strings() {
    for (raw, units) in [("0.000001", 1), ("1", 1_000_000), ("0.350000000", 350_000)] {
        let usd = UsdAmount::parse(raw).unwrap().usd();
        assert_eq!(
            crate::pricing::usd_to_units(usd, PRICE_DECIMALS),
            Ok(units),
            "{raw}"
        );
    }
    assert!(UsdAmount::parse(" 1").is_err());
}

/// The upstream timeouts: defaults when left out, any value in range taken, and 0 or an absurd
/// value refused naming the key.
#[test]
fn upstream_timeouts_default_and_refuse_zero_or_absurd_values() {
    let s = load(&service("a", &[])).unwrap();
    assert_eq!(
        (s.services[0].connect_timeout_ms, s.services[0].timeout_secs),
        (2_000, 30)
    );
    let set = load(&service(
        "a",
        &[("connect_timeout_ms", "250"), ("timeout_secs", "3600")],
    ))
    .unwrap();
    assert_eq!(
        (
            set.services[0].connect_timeout_ms,
            set.services[0].timeout_secs
        ),
        (250, 3_600)
    );
    for (k, v, why) in [
        ("connect_timeout_ms", "0", "outside 1 to 60000 milliseconds"),
        (
            "connect_timeout_ms",
            "60001",
            "outside 1 to 60000 milliseconds",
        ),
        ("timeout_secs", "0", "outside 1 to 3600 seconds"),
        ("timeout_secs", "86400", "outside 1 to 3600 seconds"),
        ("timeout_secs", "-1", "timeout_secs"),
        ("connect_timeout_ms", "\"2s\"", "connect_timeout_ms"),
    ] {
        let toml = service("a", &[(k, v)]);
        let err = match load(&toml) {
            Ok(_) => panic!("accepted:\n{toml}"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(&format!("services.0.{k}")) && err.contains(why),
            "{k} = {v}: {err}"
        );
    }
}

/// The proxy has no TLS client yet, so an https upstream is refused at start, naming the key,
/// rather than failing every paid request.
#[test]
fn https_upstreams_are_refused_until_the_gateway_has_a_tls_client() {
    let toml = service("a", &[("upstream", "\"https://api.example.com\"")]);
    let err = match load(&toml) {
        Ok(_) => panic!("accepted:\n{toml}"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("services.0.upstream") && err.contains("not supported yet"),
        "{err}"
    );
    // Upstream::parse itself still reads https, so the refusal can be lifted in one place.
    assert_eq!(
        Upstream::parse("https://api.example.com")
            .map(|u| u.scheme())
            .ok(),
        Some(UpstreamScheme::Https)
    );
}
