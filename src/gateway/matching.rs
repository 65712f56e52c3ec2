//! Which configured service a request belongs to: its host and path against each service's
//! `host` and `paths`, services in file order, the first match wins.
//!
//! A path pattern is a path whose segments are literals or `*`:
//!
//! | pattern | matches | does not match |
//! |---|---|---|
//! | `/health` | `/health` | `/health/`, `/health/x` |
//! | `/api/v1/*` | `/api/v1`, `/api/v1/`, `/api/v1/a/b` | `/api/v10`, `/api` |
//! | `/users/*/profile` | `/users/42/profile` | `/users//profile`, `/users/1/2/profile` |
//! | `/*` | every path | |
//!
//! A final `*` matches the pattern's prefix and everything below it; a `*` elsewhere matches
//! exactly one non-empty segment. A `*` inside a segment (`/v1/img*`) is refused rather than
//! guessed at. Paths are compared as the client sent them (no percent-decoding), and a query
//! string is ignored. Hosts compare case-insensitively, without the port.
//!
//! This module is pure: no I/O, no clock. It must not know about prices or payment; what a
//! matched service costs is the mint's business.

use std::fmt;

use crate::config::Service;

/// A parsed path pattern (see the module documentation for the syntax). In the settings it is
/// the string as written; a bad one is refused while the settings are read.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PathPattern {
    /// As written in the configuration, shown back in `config check` and errors.
    raw: String,
    /// The segments before a final `*`, or all of them.
    segments: Vec<Segment>,
    /// The pattern ended in `/*`: it also matches anything below its segments.
    rest: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `*` before the last segment: exactly one non-empty segment.
    One,
}

/// Why a path pattern cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Request paths always start with `/`, so this pattern would never match.
    #[error("{0:?} does not start with /, so no request path can match it; write /{0}")]
    NoLeadingSlash(String),
    /// An empty segment (`//`, or a trailing `/`).
    #[error(
        "{0:?} has an empty segment (// or a trailing /); write /a/b for one path or /a/b/* for everything under it"
    )]
    EmptySegment(String),
    /// A `*` that is not a whole segment.
    #[error(
        "{0:?} has a * inside a segment; a * must be a whole segment, as in /api/* or /users/*/profile"
    )]
    PartialWildcard(String),
    /// A `?` or `#`: the gateway matches paths, not query strings or fragments.
    #[error("{0:?} contains ? or #; patterns match the path only (query strings are ignored)")]
    QueryOrFragment(String),
}

impl PathPattern {
    /// Parses a pattern such as `/api/v1/*`.
    pub fn parse(raw: &str) -> Result<Self, PatternError> {
        let Some(body) = raw.strip_prefix('/') else {
            return Err(PatternError::NoLeadingSlash(raw.to_owned()));
        };
        if raw.contains(['?', '#']) {
            return Err(PatternError::QueryOrFragment(raw.to_owned()));
        }
        let mut parts: Vec<&str> = if body.is_empty() {
            Vec::new()
        } else {
            body.split('/').collect()
        };
        let rest = parts.last() == Some(&"*");
        if rest {
            parts.pop();
        }
        let segments = parts
            .into_iter()
            .map(|p| match p {
                "" => Err(PatternError::EmptySegment(raw.to_owned())),
                "*" => Ok(Segment::One),
                p if p.contains('*') => Err(PatternError::PartialWildcard(raw.to_owned())),
                p => Ok(Segment::Literal(p.to_owned())),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            raw: raw.to_owned(),
            segments,
            rest,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether `path` (a request path; a query string is ignored) matches.
    pub fn matches(&self, path: &str) -> bool {
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let Some(body) = path.strip_prefix('/') else {
            return false;
        };
        let parts: Vec<&str> = if body.is_empty() {
            Vec::new()
        } else {
            body.split('/').collect()
        };
        let fits = if self.rest {
            parts.len() >= self.segments.len()
        } else {
            parts.len() == self.segments.len()
        };
        fits && self.segments.iter().zip(&parts).all(|(s, p)| match s {
            Segment::Literal(l) => l == p,
            Segment::One => !p.is_empty(),
        })
    }

    /// Whether every path `other` matches is matched by `self` too (so, if `self` is tried
    /// first, `other` never matches).
    pub fn covers(&self, other: &PathPattern) -> bool {
        let fits = if self.rest {
            other.segments.len() >= self.segments.len()
        } else {
            !other.rest && other.segments.len() == self.segments.len()
        };
        fits && self
            .segments
            .iter()
            .zip(&other.segments)
            .all(|(mine, theirs)| match (mine, theirs) {
                (Segment::One, _) => true,
                (Segment::Literal(a), Segment::Literal(b)) => a == b,
                (Segment::Literal(_), Segment::One) => false,
            })
    }
}

impl fmt::Debug for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PathPattern({:?})", self.raw)
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl TryFrom<String> for PathPattern {
    type Error = PatternError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<PathPattern> for String {
    fn from(p: PathPattern) -> Self {
        p.raw
    }
}

/// A host as compared: lower case, without a port or a trailing dot.
fn host_key(host: &str) -> String {
    let host = host.trim();
    let without_port = match host.rsplit_once(':') {
        // `[::1]:8402` or `example.com:8402`; a bare IPv6 address has no brackets to end at.
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host,
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether a service's `host` (none: any host) accepts a request's `Host`.
pub fn host_matches(configured: Option<&str>, request: Option<&str>) -> bool {
    match (configured, request) {
        (None, _) => true,
        (Some(c), Some(r)) => host_key(c) == host_key(r),
        (Some(_), None) => false,
    }
}

/// The service that sells a request for `path` on `host` (the `Host` header, if any): the
/// first service, in file order, whose host accepts it and one of whose `paths` matches.
pub fn match_service<'a>(
    services: &'a [Service],
    host: Option<&str>,
    path: &str,
) -> Option<&'a Service> {
    match_index(services.iter(), host, path).and_then(|i| services.get(i))
}

/// The position of the service [`match_service`] would pick, among `services` in file order.
pub fn match_index<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    host: Option<&str>,
    path: &str,
) -> Option<usize> {
    services.into_iter().position(|s| {
        host_matches(s.host.as_deref(), host) && s.paths.iter().any(|p| p.matches(path))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(raw: &str) -> PathPattern {
        PathPattern::parse(raw).unwrap()
    }

    #[test]
    fn the_documented_table_holds() {
        let cases: [(&str, &[&str], &[&str]); 4] = [
            (
                "/health",
                &["/health", "/health?x=1"],
                &["/health/", "/health/x", "/"],
            ),
            (
                "/api/v1/*",
                &["/api/v1", "/api/v1/", "/api/v1/a/b", "/api/v1/a?q"],
                &["/api/v10", "/api", "/api/v", "api/v1/a"],
            ),
            (
                "/users/*/profile",
                &["/users/42/profile"],
                &["/users//profile", "/users/1/2/profile", "/users/42"],
            ),
            ("/*", &["/", "/a", "/a/b/"], &["", "a"]),
        ];
        for (pattern, yes, no) in cases {
            let pat = p(pattern);
            for path in yes {
                assert!(pat.matches(path), "{pattern} should match {path}");
            }
            for path in no {
                assert!(!pat.matches(path), "{pattern} should not match {path}");
            }
        }
        assert!(p("/").matches("/") && !p("/").matches("/a"));
    }

    #[test]
    fn bad_patterns_say_how_to_write_them() {
        for (raw, want) in [
            ("api/*", PatternError::NoLeadingSlash("api/*".into())),
            ("", PatternError::NoLeadingSlash(String::new())),
            ("/api//x", PatternError::EmptySegment("/api//x".into())),
            ("/api/", PatternError::EmptySegment("/api/".into())),
            ("/v1/img*", PatternError::PartialWildcard("/v1/img*".into())),
            ("/a/**", PatternError::PartialWildcard("/a/**".into())),
            ("/a?b=1", PatternError::QueryOrFragment("/a?b=1".into())),
        ] {
            assert_eq!(PathPattern::parse(raw), Err(want), "{raw}");
        }
        assert!(
            PathPattern::parse("x")
                .unwrap_err()
                .to_string()
                .contains("write /x")
        );
    }

    #[test]
    fn covers_is_exactly_the_subset_relation() {
        for (a, b, covered) in [
            ("/*", "/anything/*", true),
            ("/api/*", "/api/v1/*", true),
            ("/api/*", "/api", true),
            ("/api/*", "/api/*/x", true),
            ("/api/v1/*", "/api/*", false),
            ("/api/v1/*", "/api", false),
            ("/a", "/a", true),
            ("/a", "/a/*", false),
            ("/a/*/c", "/a/b/c", true),
            ("/a/b/c", "/a/*/c", false),
            ("/a/*", "/b/*", false),
        ] {
            assert_eq!(p(a).covers(&p(b)), covered, "{a} covers {b}");
        }
        // Spot-check against matching: whatever b matches, a covering a matches too.
        let paths = [
            "/",
            "/a",
            "/a/b",
            "/a/b/c",
            "/api",
            "/api/v1",
            "/api/v1/x/y",
        ];
        for (a, b) in [
            ("/*", "/a/*"),
            ("/api/*", "/api/v1/*"),
            ("/a/*/c", "/a/b/c"),
        ] {
            for path in paths {
                assert!(!p(b).matches(path) || p(a).matches(path), "{a} {b} {path}");
            }
        }
    }

    #[test]
    fn hosts_compare_without_case_port_or_trailing_dot() {
        assert!(host_matches(None, None));
        assert!(host_matches(None, Some("x")));
        assert!(!host_matches(Some("api.example.com"), None));
        for request in [
            "api.example.com",
            "API.Example.com:8402",
            "api.example.com.",
        ] {
            assert!(
                host_matches(Some("api.example.com"), Some(request)),
                "{request}"
            );
        }
        assert!(!host_matches(Some("api.example.com"), Some("example.com")));
        assert!(host_matches(Some("[::1]"), Some("[::1]:8402")));
    }

    fn service(name: &str, host: Option<&str>, paths: &[&str]) -> Service {
        let mut s = Service::example(name);
        s.host = host.map(str::to_owned);
        s.paths = paths.iter().map(|x| p(x)).collect();
        s
    }

    #[test]
    fn first_match_wins_in_file_order() {
        let services = [
            service("pinned", Some("api.example.com"), &["/v1/*"]),
            service("premium", None, &["/v1/premium/*"]),
            service("v1", None, &["/v1/*", "/health"]),
            service("all", None, &["/*"]),
        ];
        let name = |host, path| match_service(&services, host, path).map(|s| s.name.as_str());
        assert_eq!(
            name(Some("API.example.com:443"), "/v1/premium/x"),
            Some("pinned")
        );
        assert_eq!(
            name(Some("other.example"), "/v1/premium/x"),
            Some("premium")
        );
        assert_eq!(name(None, "/v1/premium/x"), Some("premium"));
        assert_eq!(name(None, "/v1/free"), Some("v1"));
        assert_eq!(name(None, "/health"), Some("v1"));
        assert_eq!(name(None, "/other"), Some("all"));
        assert_eq!(match_service(&services[..3], None, "/other"), None);
        assert_eq!(match_service(&[], None, "/"), None);
    }
}
