//! The `[store]` settings: which store keeps tapgate's state, and where.
//!
//! `store.url` selects PostgreSQL; without it, `store.backend` picks SQLite (the default) or
//! memory. This module owns these keys, their defaults and their checks; it must not open a
//! store (that is `store::AnyStore::open`), and it must never show the URL's password: the
//! URL's `Debug`, its serialization (`tapgate config check`) and every error print it redacted.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Connections in the PostgreSQL store's pool when `store.max_connections` is not set: enough
/// for the gateway's workers to charge concurrently without queueing on one another, and few
/// enough that several replicas stay well inside PostgreSQL's default `max_connections` (100).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// Which store keeps tapgate's state.
///
/// Equal when they select the same store the same way: an unset `backend` equals the one it
/// stands for, so the settings `config check` prints (backend filled in) load back equal.
#[derive(Clone, Debug, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// The backend as written; None: PostgreSQL when `url` is set, SQLite otherwise. Read it
    /// through [`StoreSettings::backend`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<StoreBackend>,
    /// The PostgreSQL server and database; setting it selects PostgreSQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<StoreUrl>,
    /// Most connections the PostgreSQL store opens ([`DEFAULT_MAX_CONNECTIONS`]).
    pub max_connections: u32,
}

impl PartialEq for StoreSettings {
    fn eq(&self, other: &Self) -> bool {
        self.backend() == other.backend()
            && self.url == other.url
            && self.max_connections == other.max_connections
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            // Unset, so that a `url` alone selects PostgreSQL and a `backend` written next to
            // one can be told apart from the default (and refused).
            backend: None,
            url: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Store backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// SQLite file `tapgate.sqlite` in `data_dir`.
    Sqlite,
    /// Process memory; every key is lost at exit. For tests and demos.
    Memory,
    /// The PostgreSQL database `store.url` names.
    Postgres,
}

impl StoreSettings {
    /// The backend in effect: `backend` if written, else PostgreSQL with a `url`, else SQLite
    /// (keys must survive a restart or every sold token dies with it).
    pub fn backend(&self) -> StoreBackend {
        match (self.backend, &self.url) {
            (Some(b), _) => b,
            (None, Some(_)) => StoreBackend::Postgres,
            (None, None) => StoreBackend::Sqlite,
        }
    }

    /// Checks that the keys agree and that the URL is one PostgreSQL accepts.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let value = |key: &str, reason: String| ConfigError::Value {
            key: key.into(),
            reason,
        };
        match (self.backend, &self.url) {
            (Some(b @ (StoreBackend::Sqlite | StoreBackend::Memory)), Some(_)) => {
                let name = if b == StoreBackend::Sqlite {
                    "sqlite"
                } else {
                    "memory"
                };
                return Err(value(
                    "store.url",
                    format!(
                        "is set, and store.backend is \"{name}\": a url selects PostgreSQL; remove store.url or store.backend"
                    ),
                ));
            }
            (Some(StoreBackend::Postgres), None) => {
                return Err(value(
                    "store.url",
                    "is required with store.backend = \"postgres\": set it to postgres://user:password@host:5432/database".into(),
                ));
            }
            _ => {}
        }
        if self.max_connections == 0 {
            return Err(value(
                "store.max_connections",
                "must be at least 1 (16 by default)".into(),
            ));
        }
        if let Some(url) = &self.url {
            url.check().map_err(|reason| value("store.url", reason))?;
        }
        Ok(())
    }
}

/// A PostgreSQL URL, `postgres://user:password@host:port/database?sslmode=…`. It may carry a
/// password, so it is shown only redacted (`postgres://user:***@host:port/database`); the
/// store reads it through [`StoreUrl::expose`].
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct StoreUrl(String);

impl StoreUrl {
    /// The URL as written, password included: for connecting only, never for printing.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password (in the user part or a `password=` parameter) replaced by
    /// `***`. Anything that does not look like a URL is not echoed at all.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }

    /// Why PostgreSQL would refuse the URL, if it would; the reason never holds the password.
    fn check(&self) -> Result<(), String> {
        let raw = self.0.trim();
        if !(raw.starts_with("postgres://") || raw.starts_with("postgresql://")) {
            return Err(format!(
                "{} is not a PostgreSQL URL; write postgres://user:password@host:5432/database",
                self.redacted()
            ));
        }
        #[cfg(feature = "postgres")]
        {
            use std::str::FromStr;
            sqlx::postgres::PgConnectOptions::from_str(raw).map_err(|e| {
                format!(
                    "{} is not a PostgreSQL URL ({}); write postgres://user:password@host:5432/database",
                    self.redacted(),
                    scrub(&e.to_string(), &self.0)
                )
            })?;
            Ok(())
        }
        #[cfg(not(feature = "postgres"))]
        Err("this tapgate was built without the `postgres` feature, so it has no PostgreSQL store; rebuild with default features or use store.backend = \"sqlite\"".into())
    }
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for StoreUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl From<&str> for StoreUrl {
    fn from(url: &str) -> Self {
        Self(url.to_owned())
    }
}

/// `url` with the password of its user part and of any `password`/`sslpassword` parameter
/// replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a value that is not a URL)".into();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        None => tail.to_owned(),
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _))
                        if k.eq_ignore_ascii_case("password")
                            || k.eq_ignore_ascii_case("sslpassword") =>
                    {
                        format!("{k}=***")
                    }
                    _ => p.to_owned(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
    };
    format!("{scheme}://{authority}{tail}")
}

/// `message` with any password `url` holds replaced by `***`, for errors of a URL parser that
/// may quote its input.
#[cfg(feature = "postgres")]
fn scrub(message: &str, url: &str) -> String {
    let mut out = message.to_owned();
    for secret in passwords(url) {
        if !secret.is_empty() {
            out = out.replace(secret, "***");
        }
    }
    out
}

/// The passwords `url` holds: the user part's and any `password=` parameter's.
#[cfg(feature = "postgres")]
fn passwords(url: &str) -> Vec<&str> {
    let mut found = Vec::new();
    if let Some((_, rest)) = url.split_once("://") {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some((userinfo, _)) = rest[..end].rsplit_once('@')
            && let Some((_, pass)) = userinfo.split_once(':')
        {
            found.push(pass);
        }
        if let Some((_, query)) = rest.split_once('?') {
            found.extend(query.split('&').filter_map(|p| {
                p.split_once('=')
                    .filter(|(k, _)| k.to_ascii_lowercase().ends_with("password"))
                    .map(|(_, v)| v)
            }));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_everywhere() {
        let url = StoreUrl::from(
            "postgres://app:s3cret@db.example:5432/tapgate?sslmode=require&password=p2",
        );
        let shown = [
            url.redacted(),
            format!("{url:?}"),
            serde_json::to_string(&url).unwrap(),
        ];
        for s in shown {
            assert!(!s.contains("s3cret") && !s.contains("p2"), "{s}");
            assert!(
                s.contains("postgres://app:***@db.example:5432/tapgate"),
                "{s}"
            );
            assert!(s.contains("sslmode=require&password=***"), "{s}");
        }
        assert_eq!(
            StoreUrl::from("postgres://db/x").redacted(),
            "postgres://db/x"
        );
        assert_eq!(
            StoreUrl::from("app:s3cret@db").redacted(),
            "(a value that is not a URL)"
        );
    }
}
