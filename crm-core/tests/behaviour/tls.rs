//! TLS to PostgreSQL (feature `tls`): the URL's `sslmode` decides, and a TLS setup that cannot
//! work fails with a message that says why instead of an opaque storage error.

use crm_core::sqlx::{self, Connection as _, PgConnection};
use crm_core::{Crm, Error};

use crate::harness;

/// `url` with `param` added to its query.
fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

/// The message of a refused connection, which must be a configuration error.
async fn refused(url: &str) -> String {
    let err = Crm::connect(url)
        .await
        .expect_err("the connection is refused");
    assert!(matches!(err, Error::Config(_)), "{url}: {err:?}");
    err.to_string()
}

/// A server that offers no TLS: `sslmode=require` (and `verify-full`) is refused with the
/// driver's reason and a pointer to the URL's `sslmode`.
#[tokio::test]
async fn sslmode_require_fails_clearly_against_a_server_without_tls() {
    let addr = harness::server_without_tls();
    for mode in ["require", "verify-full"] {
        let message = refused(&format!("postgres://crm@{addr}/crm?sslmode={mode}")).await;
        assert_eq!(
            message,
            "configuration error: cannot set up TLS to the database: server does not support \
             TLS (check the database URL's sslmode, and its sslrootcert for verify-ca and \
             verify-full)",
            "{mode}"
        );
    }
}

/// Whether the connection `url` opens is encrypted, as the server sees it.
async fn encrypted(url: &str) -> bool {
    harness::ask(
        url,
        "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
    )
    .await
}

/// The test server, whichever way it is set up: `sslmode=disable` keeps working unencrypted; if
/// the server has TLS, `sslmode=require` connects encrypted and `verify-full` refuses its
/// certificate (a test server's is self-signed, for another name than 127.0.0.1); if it has
/// none, `sslmode=require` is refused.
#[tokio::test]
async fn the_test_server_is_reached_as_sslmode_says() {
    let Some(url) = harness::postgres_schema_url().await else {
        return;
    };
    let plain = with_param(&url, "sslmode=disable");
    let crm = Crm::connect(&plain)
        .await
        .expect("sslmode=disable connects and migrates");
    assert!(crm.organizations().list(None, 1).await.unwrap().is_empty());
    crm.close().await;
    assert!(!encrypted(&plain).await);

    let mut conn = PgConnection::connect(&plain).await.unwrap();
    let (ssl,): (String,) = sqlx::query_as("show ssl")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
    let require = with_param(&url, "sslmode=require");
    if ssl == "on" {
        let crm = Crm::connect(&require)
            .await
            .expect("sslmode=require connects over TLS");
        assert!(crm.organizations().list(None, 1).await.unwrap().is_empty());
        crm.close().await;
        assert!(encrypted(&require).await);

        let message = refused(&with_param(&url, "sslmode=verify-full")).await;
        assert!(
            message.starts_with(
                "configuration error: cannot set up TLS to the database: invalid peer \
                 certificate"
            ) && message.contains("sslrootcert"),
            "{message}"
        );
    } else {
        let message = refused(&require).await;
        assert!(message.contains("server does not support TLS"), "{message}");
    }
}

/// A root certificate that cannot be read is named before any connection is tried (sqlx would
/// read it only while connecting, and report it as the database being unreachable).
#[tokio::test]
async fn verify_full_with_an_unreadable_root_certificate_names_the_file() {
    let missing = std::env::temp_dir().join(format!(
        "crm-no-such-root-{}.crt",
        uuid::Uuid::now_v7().simple()
    ));
    // Nothing listens on port 1: the error must come before connecting.
    let url = format!(
        "postgres://crm@127.0.0.1:1/crm?sslmode=verify-full&sslrootcert={}",
        missing.display()
    );
    let message = refused(&url).await;
    assert_eq!(
        message,
        format!(
            "configuration error: cannot read the PostgreSQL TLS file sslrootcert={}: No such \
             file or directory (os error 2)",
            missing.display()
        )
    );

    // `sslmode=require` verifies nothing: the root certificate is not needed and not read.
    let url = url.replace("verify-full", "require");
    let err = Crm::connect(&url).await.expect_err("nothing listens");
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
}
