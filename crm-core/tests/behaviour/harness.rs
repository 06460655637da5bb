//! Test harness: a fresh database per test, on SQLite always and on PostgreSQL when
//! `CRM_TEST_DATABASE_URL` is set (each test in its own schema, so tests run in parallel).
//!
//! With `CRM_TEST_LEDGER` set (CI sets it), every test that really reaches a server backend
//! appends a line to that file (see [`record_backend`]); `.ci/backend-gate` then checks that every
//! test that must reach one did, so a skipped PostgreSQL (or Redis) test cannot pass for a run one.

use crm_core::sqlx::{self, Connection as _, Executor as _};
use std::pin::Pin;

use crm_core::{
    Account, Contact, Crm, CustomFieldType, Entity, EntityKind, EntityVisitor, Id, Lead,
    NewCustomField, NewOrganization, NewUser, OrganizationId, Record, Role, Tenant, TenantContext,
    UserId,
};
use serde_json::{Value, json};
use uuid::Uuid;

/// A migrated in-memory SQLite database.
pub(crate) async fn sqlite() -> Crm {
    connect("sqlite::memory:").await.expect("SQLite in memory")
}

/// A library on `url`, migrated, with a job queue of its own: PostgreSQL tests share the
/// `apalis` schema of the test database, and each test's workers must see its jobs only.
/// Webhooks may go to plain `http` on this machine, where the tests' receivers listen.
pub(crate) async fn connect(url: &str) -> crm_core::Result<Crm> {
    Crm::builder()
        .database_url(url)
        .job_queue(format!("test-{}", Uuid::now_v7().simple()))
        .webhook_policy(crm_core::WebhookPolicy {
            allow_http: true,
            allow_private_networks: true,
        })
        .build()
        .await
}

/// The PostgreSQL URL of the test server, if any. With `CRM_TEST_REQUIRE_POSTGRES` set (CI
/// sets it) a missing URL fails the test instead of skipping it.
pub(crate) fn postgres_url() -> Option<String> {
    service_url(
        "CRM_TEST_DATABASE_URL",
        "CRM_TEST_REQUIRE_POSTGRES",
        "PostgreSQL",
    )
}

/// The URL of the test run's Redis (`CRM_TEST_REDIS_URL`), if any. With
/// `CRM_TEST_REQUIRE_REDIS` set (CI sets it) a missing URL fails the test instead of skipping it.
#[allow(dead_code, reason = "crm-axum's Redis tests use it, crm-core has none")]
pub(crate) fn redis_url() -> Option<String> {
    service_url("CRM_TEST_REDIS_URL", "CRM_TEST_REQUIRE_REDIS", "Redis")
}

/// The URL in the environment variable `var`, or `None` (the test skips) when it is unset; a
/// failure instead when the variable `require` is set.
fn service_url(var: &str, require: &str, suite: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os(require).is_none(),
                "{require} is set but {var} is not: the {suite} suite would be skipped"
            );
            eprintln!("skipped: {var} is not set");
            None
        }
    }
}

/// How the test PgBouncer instances (`.ci/pgbouncer`) pool server connections.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PoolMode {
    /// `pool_mode = session`, at `CRM_TEST_PGBOUNCER_SESSION_URL`.
    Session,
    /// `pool_mode = transaction`, at `CRM_TEST_PGBOUNCER_TRANSACTION_URL`.
    Transaction,
}

/// A fresh database on the test server, reached through the PgBouncer instance in `mode`:
/// the pooled URL and the direct one (as the database's owner). PgBouncer 1.18 passes no
/// `options` startup parameter, so the per-schema isolation of [`postgres_schema_url`] is not
/// available: each test gets a database of its own, dropped by [`drop_database`]. With
/// `CRM_TEST_REQUIRE_PGBOUNCER` set (CI sets it) a missing URL fails the test.
pub(crate) async fn pgbouncer_database(mode: PoolMode) -> Option<(String, String)> {
    let var = match mode {
        PoolMode::Session => "CRM_TEST_PGBOUNCER_SESSION_URL",
        PoolMode::Transaction => "CRM_TEST_PGBOUNCER_TRANSACTION_URL",
    };
    let pooler = service_url(var, "CRM_TEST_REQUIRE_PGBOUNCER", "PgBouncer")?;
    let server = postgres_url().expect("the PgBouncer suite needs CRM_TEST_DATABASE_URL too");
    let name = format!("crm_pgb_{}", Uuid::now_v7().simple());
    on_server(&server, format!("create database {name}")).await;
    let at = |url: &str| with_database(url, &name);
    // Reached once the pooler has answered: the caller connects through it first.
    Some((at(&pooler), at(&server)))
}

/// Drops the database `url` names (one of [`pgbouncer_database`]), ending its sessions.
pub(crate) async fn drop_database(url: &str) {
    let (_, path) = split_database(url);
    let name = path.split('?').next().unwrap_or_default();
    let server = postgres_url().expect("CRM_TEST_DATABASE_URL");
    on_server(
        &server,
        format!("drop database if exists {name} with (force)"),
    )
    .await;
}

/// The one boolean `sql` answers on a connection of its own to `url`.
pub(crate) async fn ask(url: &str, sql: &'static str) -> bool {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let (answer,): (bool,) = sqlx::query_as(sql)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.ok();
    answer
}

/// Runs `sql` (made of test-generated names only) on a connection of its own to `url`.
async fn on_server(url: &str, sql: String) {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .expect("connect to CRM_TEST_DATABASE_URL");
    conn.execute(sqlx::AssertSqlSafe(sql.as_str()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.ok();
}

/// `url` (`postgres://user@host:port/db?query`) at the start, and what follows its authority.
fn split_database(url: &str) -> (&str, &str) {
    let authority = url.find("://").expect("a PostgreSQL URL") + 3;
    let slash = url[authority..]
        .find('/')
        .map_or(url.len(), |i| authority + i);
    (&url[..slash], url[slash..].trim_start_matches('/'))
}

/// `url` with the database `name` (its query kept).
fn with_database(url: &str, name: &str) -> String {
    let (server, rest) = split_database(url);
    match rest.split_once('?') {
        Some((_, query)) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// Creates an empty schema on the test server and returns a URL whose connections use it.
pub(crate) async fn postgres_schema_url() -> Option<String> {
    let url = postgres_url()?;
    let schema = format!("crm_test_{}", Uuid::now_v7().simple());
    on_server(&url, format!("create schema {schema}")).await;
    record_backend("postgres");
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{sep}options=-c%20search_path%3D{schema}"))
}

/// A stand-in for a PostgreSQL server without TLS, on a port of its own: it answers every
/// connection's `SSLRequest` with `N` ("no TLS here"), as such a server does, and hangs up. On a
/// thread of its own, so that it also answers a `crm` process the test waits for.
pub(crate) fn server_without_tls() -> std::net::SocketAddr {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            // The SSLRequest: length 8, code 80877103.
            let mut request = [0u8; 8];
            if conn.read_exact(&mut request).is_ok() && request == [0, 0, 0, 8, 4, 210, 22, 47] {
                let _ = conn.write_all(b"N");
            }
        }
    });
    addr
}

/// Notes in the ledger file named by `CRM_TEST_LEDGER`, if set, that the running test reached
/// `backend` (`postgres` or `redis`): one line `<backend> <test binary> <test name>`.
///
/// Call it only once the backend answered. The test name is the name of the thread libtest runs
/// the test on; `.ci/backend-gate` compares the ledger with `cargo test -- --list`.
pub(crate) fn record_backend(backend: &str) {
    use std::io::Write as _;
    let Some(path) = std::env::var_os("CRM_TEST_LEDGER") else {
        return;
    };
    let thread = std::thread::current();
    let test = thread.name().filter(|name| *name != "main").expect(
        "CRM_TEST_LEDGER needs the test's own thread (do not run tests on the main thread)",
    );
    let exe = std::env::current_exe().expect("the test binary's path");
    let binary = exe
        .file_name()
        .expect("the test binary's file name")
        .to_string_lossy();
    // One `write_all` of one short line to a file opened for appending: concurrent tests (and
    // test binaries) do not interleave their lines.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut ledger| ledger.write_all(format!("{backend} {binary} {test}\n").as_bytes()))
        .expect("append to CRM_TEST_LEDGER");
}

/// A migrated PostgreSQL schema of its own, or `None` when PostgreSQL tests are skipped.
pub(crate) async fn postgres() -> Option<Crm> {
    postgres_with_url().await.map(|(crm, _)| crm)
}

/// [`postgres`] and the schema's URL (for connections of the test's own, as the schema's owner).
pub(crate) async fn postgres_with_url() -> Option<(Crm, String)> {
    let url = postgres_schema_url().await?;
    let crm = connect(&url).await;
    Some((crm.expect("connect and migrate PostgreSQL"), url))
}

/// Fails if `text` shows any part of the secret of the API key `token`
/// (`crm_key_<org>_<id>_<secret>`): the whole secret, or any 12 characters of it in a row, not
/// only the whole token.
#[track_caller]
pub(crate) fn assert_no_api_key_secret(text: &str, token: &str) {
    let secret = token
        .strip_prefix("crm_key_")
        .and_then(|rest| rest.get(66..))
        .unwrap_or_else(|| panic!("not an API key: {token}"));
    assert_eq!(secret.len(), 43, "the secret of {token}");
    for part in secret.as_bytes().windows(12) {
        let part = std::str::from_utf8(part).expect("base64url");
        assert!(
            !text.contains(part),
            "the API key's secret shows (`{part}`) in: {text}"
        );
    }
}

/// An organization with a company admin and a plain user.
pub(crate) struct Org {
    pub(crate) id: OrganizationId,
    pub(crate) admin: UserId,
    pub(crate) user: UserId,
}

impl Org {
    pub(crate) async fn new(crm: &Crm, name: &str) -> Org {
        let org = crm
            .organizations()
            .create(NewOrganization {
                name: format!("{name} {}", Uuid::now_v7().simple()),
                slug: None,
            })
            .await
            .expect("create organization");
        let system = crm.tenant(&TenantContext::system(org.id));
        let mk = |email: &str, role| NewUser {
            email: email.to_owned(),
            name: email.to_owned(),
            password: None,
            role,
        };
        let admin = system
            .users()
            .create(mk("admin@example.com", Role::CompanyAdmin))
            .await
            .expect("admin");
        let user = system
            .users()
            .create(mk("user@example.com", Role::User))
            .await
            .expect("user");
        Org {
            id: org.id,
            admin: admin.id,
            user: user.id,
        }
    }

    /// Defines custom fields without options on `entity` (as an admin).
    pub(crate) async fn define_fields(
        &self,
        crm: &Crm,
        entity: EntityKind,
        fields: &[(&str, CustomFieldType)],
    ) {
        for (key, ty) in fields {
            define(crm, self, entity, key, *ty, &[]).await;
        }
    }

    pub(crate) fn admin(&self, crm: &Crm) -> Tenant {
        crm.tenant(&TenantContext::user(
            self.id,
            self.admin,
            Role::CompanyAdmin,
        ))
    }

    pub(crate) fn user(&self, crm: &Crm) -> Tenant {
        crm.tenant(&TenantContext::user(self.id, self.user, Role::User))
    }
}

/// Runs each listed `async fn(Crm)` of the calling module once per backend:
/// `sqlite::name` always, `postgres::name` when PostgreSQL is configured.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::harness::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(crm) = $crate::harness::postgres().await {
                        super::$name(crm).await
                    }
                }
            )*
        }
    };
}

/// Asserts that `err` is [`crm_core::Error::NotFound`] of `entity` (`"account"`, `"user"`…).
#[track_caller]
pub(crate) fn assert_not_found(err: &crm_core::Error, entity: &str) {
    assert!(
        matches!(err, crm_core::Error::NotFound { entity: e, .. } if *e == entity),
        "expected {entity} not found, got {err:?}"
    );
}

/// Defines a custom field (as an admin of `org`).
pub(crate) async fn define(
    crm: &Crm,
    org: &Org,
    entity: EntityKind,
    key: &str,
    ty: CustomFieldType,
    options: &[&str],
) {
    let mut field = NewCustomField::new(key, key, ty);
    field.options = options.iter().map(|o| (*o).to_owned()).collect();
    org.admin(crm)
        .custom_fields()
        .define(entity, field)
        .await
        .expect("define custom field");
}

/// Fixtures: records with only the field that names them, created by the tenant's actor (so
/// `created_by` and the trash permissions follow from which tenant handle creates them). Each
/// fails the test if the create fails.
pub(crate) trait Fixtures {
    /// Creates an `E` from its JSON input, as a client would send it.
    async fn create_json<E: Entity>(&self, input: Value) -> crm_core::Result<Record<E>>;
    /// Applies a JSON patch, as a client would send it, to record `id`.
    async fn update_json<E: Entity>(&self, id: Id<E>, patch: Value) -> crm_core::Result<Record<E>>;
    /// An account named `name`.
    async fn account(&self, name: &str) -> Record<Account> {
        let input = json!({ "name": name });
        self.create_json(input).await.expect("create account")
    }
    /// A contact with only a last name.
    async fn contact(&self, last_name: &str) -> Record<Contact> {
        let input = json!({ "last_name": last_name });
        self.create_json(input).await.expect("create contact")
    }
    /// A lead with only a last name.
    async fn lead(&self, last_name: &str) -> Record<Lead> {
        let input = json!({ "last_name": last_name });
        self.create_json(input).await.expect("create lead")
    }
}

impl Fixtures for Tenant {
    async fn create_json<E: Entity>(&self, input: Value) -> crm_core::Result<Record<E>> {
        let new = serde_json::from_value(input).expect("an input of the kind");
        self.records::<E>().create(new).await
    }

    async fn update_json<E: Entity>(&self, id: Id<E>, patch: Value) -> crm_core::Result<Record<E>> {
        let patch = serde_json::from_value(patch).expect("a patch of the kind");
        self.records::<E>().update(id, patch).await
    }
}

/// Creates a record of the visited kind from its JSON input and answers its id:
/// `kind.visit(CreateJson(&tenant, input))`.
pub(crate) struct CreateJson<'a>(pub(crate) &'a Tenant, pub(crate) Value);

impl<'a> EntityVisitor for CreateJson<'a> {
    type Output = Pin<Box<dyn Future<Output = crm_core::Result<Uuid>> + 'a>>;

    fn visit<E: Entity>(self) -> Self::Output {
        Box::pin(async move { Ok(self.0.create_json::<E>(self.1).await?.id.uuid()) })
    }
}
