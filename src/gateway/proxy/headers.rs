//! What the proxy changes in a request's target and headers on the way to the upstream, and in
//! a response's headers on the way back: pure functions of the message, so every rule is tested
//! without a socket.
//!
//! The rules, and why:
//!
//! - Hop-by-hop fields describe one connection, not the message, so they are dropped in both
//!   directions (RFC 9110 §7.6.1): `Connection` and every field it names, `Keep-Alive`,
//!   `Proxy-Connection`, `Proxy-Authenticate`, `Proxy-Authorization`, `TE`, `Transfer-Encoding`
//!   and `Upgrade`. `TE: trailers` alone is passed on in requests, because gRPC servers read it
//!   as "this client can take trailers". hyper frames each side again (chunked or a length).
//! - `Trailer` is kept, unlike in Go's hop list: RFC 9110 §6.6.2 makes it an end-to-end field,
//!   and hyper's HTTP/1.1 encoder sends only the trailer fields it announces, so dropping it
//!   would silently drop an upstream's trailers for HTTP/1.1 clients.
//! - An `Authorization` value in the L402 or LSAT scheme is the buyer's bearer credential for
//!   the gateway; it never reaches the upstream. Other schemes are the upstream's own business
//!   and pass.
//! - `X-Tapgate-*` is the gateway's namespace for what it tells the upstream (the token, the
//!   tier). Whatever the client sent under it is dropped, so the upstream can trust it.
//! - `X-Forwarded-For` is extended with the client's address, `X-Forwarded-Proto` set, and
//!   `Host` is the upstream's (HTTP/2 carries it as `:authority`, from the URI).
//!
//! This module must not do I/O, read a clock or look at bodies.

use std::net::IpAddr;
use std::str::FromStr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme, Uri};

use crate::config::{Upstream, UpstreamScheme};

/// The prefix of the headers only the gateway may set.
pub const GATEWAY_HEADER_PREFIX: &str = "x-tapgate-";

/// `X-Forwarded-For`, which `http` has no constant for.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The hop-by-hop fields that are always dropped (besides those `Connection` names). `TE` is
/// handled apart because `trailers` survives in requests.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TRANSFER_ENCODING,
];

/// How the upstream is spoken to, which follows from its scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `http://`: HTTP/1.1, connections pooled.
    Http1,
    /// `grpc://`: HTTP/2 with prior knowledge (h2c), one connection multiplexed.
    H2c,
}

impl Protocol {
    /// The protocol for `upstream`, or `None` for a scheme the proxy cannot speak (`https`: no
    /// TLS client yet; the settings refuse such an upstream at start).
    pub fn of(upstream: &Upstream) -> Option<Self> {
        match upstream.scheme() {
            UpstreamScheme::Http => Some(Self::Http1),
            UpstreamScheme::Grpc => Some(Self::H2c),
            UpstreamScheme::Https => None,
        }
    }

    /// The version requests are sent as.
    pub fn version(self) -> http::Version {
        match self {
            Self::Http1 => http::Version::HTTP_11,
            Self::H2c => http::Version::HTTP_2,
        }
    }
}

/// Why a target URI could not be made.
#[derive(Debug, PartialEq, Eq)]
pub enum TargetError {
    /// The upstream's host, port or base path is not valid in a URI (the settings check the
    /// host and port, not the path's characters).
    Upstream(String),
    /// The request's target is not a path (`OPTIONS *`, or an authority-form target).
    Request(String),
}

/// The request's URI moved onto the upstream: the upstream's scheme and authority, its base
/// path (without a trailing `/`) followed by the request's path and query.
pub fn target_uri(upstream: &Upstream, request: &Uri) -> Result<(Uri, Authority), TargetError> {
    let authority = Authority::from_str(upstream.authority())
        .map_err(|e| TargetError::Upstream(format!("authority {:?}: {e}", upstream.authority())))?;
    let base = base_path(upstream);
    if !base.is_empty() {
        PathAndQuery::from_str(base)
            .map_err(|e| TargetError::Upstream(format!("base path {base:?}: {e}")))?;
    }
    let path = request.path();
    if !path.starts_with('/') {
        return Err(TargetError::Request(format!(
            "target {path:?} is not a path"
        )));
    }
    let path_and_query = match (base.is_empty(), request.path_and_query()) {
        // No base path: the request's own path and query, already parsed, as they are.
        (true, Some(pq)) if pq.as_str().starts_with('/') => pq.clone(),
        _ => {
            let joined = match request.query() {
                Some(q) => format!("{base}{path}?{q}"),
                None => format!("{base}{path}"),
            };
            PathAndQuery::from_str(&joined)
                .map_err(|e| TargetError::Request(format!("path {joined:?}: {e}")))?
        }
    };
    let uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(authority.clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|e| TargetError::Request(e.to_string()))?;
    Ok((uri, authority))
}

/// The upstream URL's path without its trailing `/`: `""` for `http://h:1` and `http://h:1/`,
/// `/api` for `http://h:1/api/`.
pub(super) fn base_path(upstream: &Upstream) -> &str {
    let raw = upstream.as_str();
    let after_scheme = raw.split_once("://").map_or(raw, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    path.trim_end_matches('/')
}

/// Which way a message travels, for the one rule that differs (`TE: trailers`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client to upstream.
    Request,
    /// Upstream to client.
    Response,
}

/// Whether `name` is a hop-by-hop field whatever `Connection` says.
fn always_hop_by_hop(name: &HeaderName) -> bool {
    *name == header::TE || *name == header::UPGRADE || HOP_BY_HOP.contains(name)
}

/// Drops the hop-by-hop fields (see the module documentation).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, direction: Direction) {
    // Most messages have none: one look at each name (a comparison of standard names, no
    // hashing) instead of a removal, each a hash lookup, per field. Fields `Connection` names
    // need `Connection`, which is one of them.
    if !headers.keys().any(always_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    let te_trailers = direction == Direction::Request
        && headers
            .get_all(header::TE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            // RFC 9110 gives `trailers` no weight, but `trailers;q=1` means the same.
            .filter_map(|t| t.split(';').next())
            .any(|t| t.trim().eq_ignore_ascii_case("trailers"));
    for name in named.iter().chain(&HOP_BY_HOP) {
        headers.remove(name);
    }
    headers.remove(header::TE);
    headers.remove(header::UPGRADE);
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Whether an `Authorization` value is in the L402 or LSAT scheme (any case), as
/// [`crate::l402::header`] reads it.
pub fn is_l402_credential(value: &HeaderValue) -> bool {
    let scheme = value
        .as_bytes()
        .trim_ascii_start()
        .split(|b| b.is_ascii_whitespace())
        .next()
        .unwrap_or_default();
    scheme.eq_ignore_ascii_case(b"L402") || scheme.eq_ignore_ascii_case(b"LSAT")
}

/// Drops every L402/LSAT `Authorization` value, keeping the others in order.
pub fn strip_l402_credentials(headers: &mut HeaderMap) {
    let all = headers.get_all(header::AUTHORIZATION);
    if !all.iter().any(is_l402_credential) {
        return;
    }
    let kept: Vec<HeaderValue> = all
        .iter()
        .filter(|v| !is_l402_credential(v))
        .cloned()
        .collect();
    headers.remove(header::AUTHORIZATION);
    for v in kept {
        headers.append(header::AUTHORIZATION, v);
    }
}

/// Drops every header in the gateway's `X-Tapgate-` namespace.
pub fn strip_gateway_headers(headers: &mut HeaderMap) {
    let ours: Vec<HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().starts_with(GATEWAY_HEADER_PREFIX))
        .cloned()
        .collect();
    for name in ours {
        headers.remove(name);
    }
}

/// `X-Forwarded-For` with `client` appended to what earlier proxies wrote (all its values,
/// joined in order). An IPv4 client seen on an IPv6 socket is written as IPv4.
pub fn forwarded_for(
    headers: &HeaderMap,
    client: IpAddr,
) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    let earlier = headers.get_all(X_FORWARDED_FOR);
    if earlier.iter().next().is_none() {
        // The usual case, no earlier proxy: the address is written on the stack (an IPv6
        // address is at most 45 characters) and copied once into the header.
        let mut buf = [0u8; 64];
        let mut rest = &mut buf[..];
        if std::io::Write::write_fmt(&mut rest, format_args!("{}", client.to_canonical())).is_ok() {
            let len = 64 - rest.len();
            return HeaderValue::from_bytes(buf.get(..len).unwrap_or_default());
        }
    }
    let mut joined: Vec<u8> = Vec::new();
    for v in earlier {
        let v = v.as_bytes().trim_ascii();
        if !v.is_empty() {
            joined.extend_from_slice(v);
            joined.extend_from_slice(b", ");
        }
    }
    // Writing into a Vec cannot fail.
    let _ = std::io::Write::write_fmt(&mut joined, format_args!("{}", client.to_canonical()));
    HeaderValue::from_bytes(&joined)
}

/// [`forwarded_for`], given `alone`: what it gives for `client` with no earlier proxy, made
/// once for a connection by the caller. A request that names no earlier proxy (the usual
/// case) gets a copy of it (a reference count, not a formatting of the address).
pub fn forwarded_for_with(
    headers: &HeaderMap,
    client: IpAddr,
    alone: Option<&HeaderValue>,
) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    match alone {
        Some(v) if !headers.contains_key(X_FORWARDED_FOR) => Ok(v.clone()),
        _ => forwarded_for(headers, client),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(raw: &str) -> Upstream {
        Upstream::parse(raw).unwrap()
    }

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn names(h: &HeaderMap) -> Vec<&str> {
        let mut n: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        n.sort_unstable();
        n
    }

    #[test]
    fn the_uri_moves_onto_the_upstream_base_path() {
        for (up, req, want) in [
            (
                "http://127.0.0.1:9000",
                "/v1/x?a=1&b",
                "http://127.0.0.1:9000/v1/x?a=1&b",
            ),
            (
                "http://127.0.0.1:9000/",
                "/v1/x",
                "http://127.0.0.1:9000/v1/x",
            ),
            ("http://h:1/api", "/v1/x", "http://h:1/api/v1/x"),
            ("http://h:1/api/", "/", "http://h:1/api/"),
            ("http://h", "/x", "http://h/x"),
            (
                "grpc://[::1]:50051",
                "/pkg.Svc/Call",
                "http://[::1]:50051/pkg.Svc/Call",
            ),
            (
                "http://h:1",
                "http://gateway.example:8402/a%20b?q=%2F",
                "http://h:1/a%20b?q=%2F",
            ),
        ] {
            let req: Uri = req.parse().unwrap();
            let (uri, authority) = target_uri(&upstream(up), &req).unwrap();
            assert_eq!(uri.to_string(), want, "{up} + {req}");
            assert_eq!(Some(&authority), uri.authority());
        }
        let star: Uri = "*".parse().unwrap();
        assert!(matches!(
            target_uri(&upstream("http://h:1"), &star),
            Err(TargetError::Request(_))
        ));
        assert!(matches!(
            target_uri(&upstream("http://h:1/a b"), &"/x".parse().unwrap()),
            Err(TargetError::Upstream(_))
        ));
    }

    #[test]
    fn hop_by_hop_fields_go_and_end_to_end_fields_stay() {
        let sent = [
            ("connection", "keep-alive, X-Hop , upgrade"),
            ("connection", "x-other-hop"),
            ("x-hop", "1"),
            ("x-other-hop", "2"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("proxy-authenticate", "Basic"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("te", "gzip, trailers;q=1"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("trailer", "grpc-status"),
            ("content-type", "application/json"),
            ("x-end", "3"),
        ];
        let mut req = map(&sent);
        strip_hop_by_hop(&mut req, Direction::Request);
        assert_eq!(names(&req), ["content-type", "te", "trailer", "x-end"]);
        assert_eq!(req[header::TE], "trailers");
        let mut resp = map(&sent);
        strip_hop_by_hop(&mut resp, Direction::Response);
        assert_eq!(names(&resp), ["content-type", "trailer", "x-end"]);
        // `trailers` only counts as a whole token, and a TE without it is dropped.
        let mut no = map(&[("te", "gzip, x-trailers")]);
        strip_hop_by_hop(&mut no, Direction::Request);
        assert!(no.is_empty());
        // A Connection token that is not a header name is ignored, not an error.
        let mut odd = map(&[("connection", "a b, , x-hop"), ("x-hop", "1"), ("x", "2")]);
        strip_hop_by_hop(&mut odd, Direction::Request);
        assert_eq!(names(&odd), ["x"]);
    }

    #[test]
    fn only_l402_and_lsat_credentials_are_dropped() {
        for v in ["L402 abc:def", "l402 abc", "LSAT x:y", "  lsat\tx", "L402"] {
            assert!(
                is_l402_credential(&HeaderValue::from_str(v).unwrap()),
                "{v}"
            );
        }
        for v in ["Bearer L402", "Basic Zm9v", "L4021 x", "", "LSATx y"] {
            assert!(
                !is_l402_credential(&HeaderValue::from_str(v).unwrap()),
                "{v}"
            );
        }
        let mut h = map(&[
            ("authorization", "Bearer up"),
            ("authorization", "L402 mac:pre"),
            ("authorization", "Basic b"),
        ]);
        strip_l402_credentials(&mut h);
        let left: Vec<_> = h.get_all(header::AUTHORIZATION).iter().collect();
        assert_eq!(left, ["Bearer up", "Basic b"]);
        let mut only = map(&[("authorization", "LSAT mac:pre")]);
        strip_l402_credentials(&mut only);
        assert!(only.is_empty());
    }

    #[test]
    fn clients_cannot_set_gateway_headers() {
        let mut h = map(&[
            ("x-tapgate-tier", "gold"),
            ("X-Tapgate-Token-Id", "forged"),
            ("x-tapgateway", "not ours"),
        ]);
        strip_gateway_headers(&mut h);
        assert_eq!(names(&h), ["x-tapgateway"]);
    }

    #[test]
    fn forwarded_for_with_a_connections_value_writes_what_forwarded_for_writes() {
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let alone = forwarded_for(&HeaderMap::new(), client).unwrap();
        assert_eq!(alone, "192.0.2.7");
        let earlier = map(&[("x-forwarded-for", "203.0.113.9")]);
        for h in [HeaderMap::new(), earlier] {
            assert_eq!(
                forwarded_for_with(&h, client, Some(&alone)).unwrap(),
                forwarded_for(&h, client).unwrap()
            );
            assert_eq!(
                forwarded_for_with(&h, client, None).unwrap(),
                forwarded_for(&h, client).unwrap()
            );
        }
    }

    #[test]
    fn forwarded_for_extends_what_earlier_proxies_wrote() {
        let v4: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(
            forwarded_for(&HeaderMap::new(), v4).unwrap(),
            "198.51.100.7"
        );
        let h = map(&[
            ("x-forwarded-for", "203.0.113.1, 203.0.113.2"),
            ("x-forwarded-for", " "),
            ("x-forwarded-for", "203.0.113.3"),
        ]);
        assert_eq!(
            forwarded_for(&h, v4).unwrap(),
            "203.0.113.1, 203.0.113.2, 203.0.113.3, 198.51.100.7"
        );
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
        assert_eq!(
            forwarded_for(&HeaderMap::new(), mapped).unwrap(),
            "198.51.100.7"
        );
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(forwarded_for(&HeaderMap::new(), v6).unwrap(), "2001:db8::1");
    }
}
