//! The PostgreSQL store over TLS, against the throwaway server of `.ci/postgres start DIR`,
//! which serves TLS with a certificate for 127.0.0.1 from a CA of its own (DIR/ca.crt):
//!
//! - `sslmode=verify-full&sslrootcert=DIR/ca.crt` checks the server's certificate against that
//!   CA and for 127.0.0.1, the connection is encrypted (`pg_stat_ssl`), and the store works;
//! - `sslmode=require` encrypts without checking, and the store works;
//! - `verify-full` against a CA that did not sign the server's certificate is refused at
//!   connect, with an error that says what to check and, as its cause, the certificate.
//!
//! Needs `TAPGATE_TEST_POSTGRES_URL` and `TAPGATE_TEST_POSTGRES_DIR` (`.ci/test` sets both);
//! without them a test says so and passes, except under CI, where it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use sqlx::Connection;
use tapgate::config::StoreUrl;
use tapgate::l402::TokenId;
use tapgate::store::{PostgresStore, RootKeyStore, StoreError};

/// A fresh database on the test server (its URL, without TLS parameters) and the server's
/// CA certificate; None (outside CI) when the variables naming them are unset.
async fn server(what: &str) -> Option<(String, PathBuf)> {
    let ca = common::postgres_dir(what)?.join("ca.crt");
    let url = common::fresh_postgres_database("tls", what).await?;
    assert!(
        ca.is_file(),
        "{} is missing: start the server with .ci/postgres, which writes it",
        ca.display()
    );
    Some((url, ca))
}

/// `url` with the query `params`.
fn with(url: &str, params: &str) -> String {
    format!("{url}?{params}")
}

/// `url` asking for `verify-full` against the CA certificate in `ca`.
fn verify_full(url: &str, ca: &std::path::Path) -> String {
    with(
        url,
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    )
}

/// Whether a connection made from `url` is encrypted, as the server sees it.
async fn over_tls(url: &str) -> bool {
    let mut conn = sqlx::postgres::PgConnection::connect(url).await.unwrap();
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    ssl
}

/// Opens tapgate's store on `url` (creating its schema) and uses it: a root key created, read
/// back and revoked.
async fn round_trip(url: &str) {
    let store = PostgresStore::connect(&StoreUrl::from(url), 2)
        .await
        .unwrap_or_else(|e| panic!("{e} (cause: {:?})", std::error::Error::source(&e)));
    let mut id = [0u8; 32];
    getrandom::fill(&mut id).unwrap();
    let id = TokenId(id);
    let key = store.create(&id).await.unwrap();
    assert_eq!(store.get(&id).await.unwrap(), Some(key));
    assert!(store.revoke(&id).await.unwrap());
    assert_eq!(store.get(&id).await.unwrap(), None);
    store.close().await;
}

#[tokio::test]
async fn verify_full_checks_the_server_against_its_ca_and_the_store_works() {
    let Some((url, ca)) = server("TLS to PostgreSQL (verify-full)").await else {
        return;
    };
    let checked = verify_full(&url, &ca);
    assert!(
        over_tls(&checked).await,
        "verify-full connected without TLS"
    );
    round_trip(&checked).await;
    // The check can tell: the same server without TLS is seen without it.
    assert!(
        !over_tls(&with(&url, "sslmode=disable")).await,
        "pg_stat_ssl says TLS on a connection without it"
    );
}

#[tokio::test]
async fn require_encrypts_and_the_store_works() {
    let Some((url, _)) = server("TLS to PostgreSQL (require)").await else {
        return;
    };
    let required = with(&url, "sslmode=require");
    assert!(over_tls(&required).await, "require connected without TLS");
    round_trip(&required).await;
}

#[tokio::test]
async fn verify_full_against_another_ca_is_refused_with_a_clear_error() {
    let Some((url, _)) = server("TLS to PostgreSQL (a wrong CA)").await else {
        return;
    };
    // A CA of its own, which never signed the server's certificate.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.crt");
    let made = Command::new("openssl")
        .args(["req", "-x509", "-new", "-newkey", "ec"])
        .args([
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args(["-subj", "/CN=another CA"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .arg("-keyout")
        .arg(dir.path().join("other-ca.key"))
        .arg("-out")
        .arg(&other)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let err = PostgresStore::connect(&StoreUrl::from(verify_full(&url, &other).as_str()), 2)
        .await
        .unwrap_err();
    let shown = err.to_string();
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    eprintln!("the error: {shown}\nits cause: {cause:?}");
    assert!(matches!(err, StoreError::Connect { .. }), "{shown}");
    // What to check: the server's address and the TLS settings, by name.
    assert!(
        shown.contains("cannot connect to the PostgreSQL store at postgres://"),
        "{shown}"
    );
    assert!(shown.contains("sslmode=verify-full"), "{shown}");
    assert!(
        shown.contains("sslrootcert names the CA that signed the server's certificate"),
        "{shown}"
    );
    // Why: the server's certificate, not an unreachable server or a timeout.
    let cause = cause.unwrap_or_default();
    assert!(
        cause.contains("invalid peer certificate") && cause.contains("UnknownIssuer"),
        "{cause}"
    );
}
