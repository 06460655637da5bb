//! PostgreSQL: a pool of connections that remember which tenant they are bound to.
//!
//! Row-level security (see `crm-core/migrations/postgres`) lets the `crm_app` role see a row only
//! when its `organization_id` equals the session setting `crm.org_id`. Setting it costs a round
//! trip, and a read that does `BEGIN / set_config / SELECT / COMMIT` pays four. So each pooled
//! connection records the tenant it was last bound to (a session-level setting, made outside any
//! transaction so no rollback can undo it) and rebinds only when a different tenant takes it: a
//! read for the tenant the connection already serves is a single round trip.
//!
//! Every connection runs `set_config('role', 'crm_app', false)` (and sets its
//! `statement_timeout`) once when it opens, so even a superuser URL (which would bypass
//! row-level security) is held to the policies. The pool is [`bb8`] over plain
//! [`PgConnection`]s because sqlx's own pool has no place for per-connection state; migrations
//! run on a separate connection with the URL's own role.
//!
//! The tenant binding and the role are *session* state: a pooler that hands each transaction
//! to another server connection (PgBouncer's transaction mode) would mix them up between
//! clients. Only session pooling (or none) is supported: [`PgPool::connect`] refuses a pooler
//! that serves two clients from one server connection (before migrations or anything else run
//! through it), and [`Manager::connect`] refuses a connection whose settings do not survive from
//! one statement to the next. A session pooler may hand over a server connection another client
//! used: each new connection clears the tenant binding in its first round trip.
//!
//! When the server goes away (a restart, a failover, `pg_terminate_backend`), a connection it
//! dropped is discarded as soon as it reports it, and the other idle connections opened before
//! are pinged once before their next use (after a restart they are all dead). A plain `select`
//! (outside a transaction) and a tenant rebind that met a dropped connection are retried on
//! another one; a write never is (the caller gets [`Error::Unavailable`] and decides).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sqlx::postgres::{PgArguments, PgConnectOptions};
use sqlx::types::Json;
use sqlx::{Arguments as _, Connection as _, PgConnection};
use uuid::Uuid;

use super::pooled::{self, is_dropped, track};
use super::rows::Array;
use super::visibility::ReadBinding;
use super::{Arg, Tx};
use crate::error::{Error, Result};
use crate::storage::PoolSettings;

/// The session setting the row-level-security policies read.
const TENANT_SETTING: &str = "crm.org_id";

/// Why a pooler that does not keep sessions is refused.
const TRANSACTION_POOLER: &str = "the database URL leads to a pooler that shares server \
    connections between clients (PgBouncer pool_mode=transaction or statement): the tenant \
    binding is session state and would pass from one client to another, so this is refused; \
    use pool_mode=session (see docs/scaling.md)";

/// A pooled connection.
pub(crate) type PooledConn = bb8::PooledConnection<'static, Manager>;

/// The PostgreSQL pool.
#[derive(Clone)]
pub(crate) struct PgPool {
    pool: bb8::Pool<Manager>,
    /// The manager's count of dropped connections.
    dropped: std::sync::Arc<AtomicU64>,
    /// For migrations, which run with the URL's own role on a connection of their own.
    options: std::sync::Arc<PgConnectOptions>,
    /// The application role and the role a restricted reader's connection switches to (see
    /// [`READER_ROLE`]); `None` when the connections keep the URL's role.
    roles: Option<Arc<(String, String)>>,
}

/// The role a restricted reader's connection acts as: the application role's privileges, and
/// the `record_visibility` policies (migrations `0018_record_visibility`,
/// `0020_visibility_by_ids`), which apply to it alone (so that readers who see everything pay
/// nothing for them).
const READER_ROLE: &str = "crm_reader";

impl std::fmt::Debug for PgPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The options hold the password: show only the pool's state.
        f.debug_struct("PgPool")
            .field("state", &self.pool.state())
            .finish_non_exhaustive()
    }
}

/// What a connection's tenant settings hold, as far as this process knows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Binding {
    /// Bound to this tenant (or to none), and to a restricted reader or not.
    Known(Option<Uuid>, Option<Arc<ReadBinding>>),
    /// A rebind was sent but did not report back (it failed, or the call was cancelled while
    /// it ran): the server may hold the old tenant or the new one. The next checkout rebinds.
    Unknown,
}

/// A connection and the tenant it is bound to.
#[derive(Debug)]
pub(crate) struct TenantConn {
    conn: PgConnection,
    binding: Binding,
    /// Set when an I/O or protocol error, or the server terminating the session, left the
    /// connection unusable; bb8 then drops it.
    broken: AtomicBool,
    /// The pool's [`Manager::dropped`] count when this connection was last known alive.
    checked: u64,
}

/// Opens connections for [`bb8`] and puts each under the application role.
#[derive(Debug)]
pub(crate) struct Manager {
    options: PgConnectOptions,
    role: Option<String>,
    /// `statement_timeout` of every pooled connection (`0`: none).
    statement_timeout: String,
    /// How many connections were found dropped by the server. When it moves, every idle
    /// connection older than the move is checked (one ping) before its next use: after a
    /// restart they are all dead, and each would otherwise fail one request.
    dropped: std::sync::Arc<AtomicU64>,
}

impl bb8::ManageConnection for Manager {
    type Connection = TenantConn;
    type Error = sqlx::Error;

    async fn connect(&self) -> Result<TenantConn, sqlx::Error> {
        let mut conn = PgConnection::connect_with(&self.options).await?;
        // One round trip: the role (unless the URL's own is kept: `none` resets one a previous
        // client of a pooled server connection set), the statement timeout, no JIT and no
        // tenant, all for the session. The backend's pid tells whether the session is really
        // ours. JIT compiles a plan whose estimated cost passes `jit_above_cost`, which a
        // sort across a link of 10,000 rows does: 30 ms of compiling for a 40 ms query
        // (docs/benchmarks.md, "At a million contacts"). The CRM's queries are short, so it
        // never pays.
        let (pid,): (i32,) = sqlx::query_as(
            "select pg_backend_pid() from (select set_config('statement_timeout', $1, false), \
             set_config('role', coalesce($2, 'none'), false), \
             set_config('jit', 'off', false), \
             set_config($3, '', false)) s",
        )
        .bind(&self.statement_timeout)
        .bind(self.role.as_deref())
        .bind(TENANT_SETTING)
        .fetch_one(&mut conn)
        .await?;
        // A transaction-mode pooler runs the next statement wherever it likes: the tenant
        // binding would leak between clients. Refuse rather than serve with it.
        let (same, timeout): (bool, String) =
            sqlx::query_as("select pg_backend_pid() = $1, current_setting('statement_timeout')")
                .bind(pid)
                .fetch_one(&mut conn)
                .await?;
        if !same {
            return Err(sqlx::Error::Configuration(TRANSACTION_POOLER.into()));
        }
        tracing::trace!(statement_timeout = %timeout, "connection opened");
        Ok(TenantConn {
            conn,
            binding: Binding::Known(None, None),
            broken: AtomicBool::new(false),
            checked: self.dropped.load(Ordering::Relaxed),
        })
    }

    async fn is_valid(&self, conn: &mut TenantConn) -> Result<(), sqlx::Error> {
        conn.conn.ping().await
    }

    fn has_broken(&self, conn: &mut TenantConn) -> bool {
        let broken = conn.broken.load(Ordering::Relaxed);
        if broken {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        broken
    }
}

impl PgPool {
    /// Builds the pool; `role` is the role the connections act as (`None` keeps the URL's role,
    /// which disables row-level security when that role is a superuser or owns the tables).
    pub(crate) async fn connect(
        options: PgConnectOptions,
        role: Option<String>,
        settings: &PoolSettings,
    ) -> Result<Self> {
        refuse_shared_sessions(&options).await?;
        let dropped = std::sync::Arc::new(AtomicU64::new(0));
        // Migration 0018 makes the reader role a member of the application role it creates.
        let roles = role
            .as_deref()
            .filter(|r| *r == "crm_app")
            .map(|r| Arc::new((r.to_owned(), READER_ROLE.to_owned())));
        let manager = Manager {
            options: options.clone(),
            role,
            statement_timeout: settings
                .statement_timeout
                .map_or_else(|| "0".to_owned(), |t| format!("{}ms", t.as_millis().max(1))),
            dropped: dropped.clone(),
        };
        let pool = pooled::build(manager, settings).await?;
        Ok(Self {
            pool,
            dropped,
            options: std::sync::Arc::new(options),
            roles,
        })
    }

    /// A session: a connection bound to `tenant` (or to none), rebinding only on change.
    pub(crate) async fn session(&self, tenant: Option<Uuid>) -> Result<PgSession> {
        self.session_reading(tenant, None).await
    }

    /// A session bound to `tenant` and, for a restricted reader, to what they may read (the
    /// policies of migration `0020_visibility_by_ids`), rebinding only on change.
    pub(crate) async fn session_reading(
        &self,
        tenant: Option<Uuid>,
        reader: Option<Arc<ReadBinding>>,
    ) -> Result<PgSession> {
        Ok(PgSession {
            conn: self.tenant(tenant, reader.clone()).await?,
            pool: self.clone(),
            tenant,
            reader,
        })
    }

    /// Takes a connection and binds it to `tenant` (or to none) and `reader`, rebinding only
    /// on change. A connection the server has dropped is discarded and another one taken.
    pub(crate) async fn tenant(
        &self,
        tenant: Option<Uuid>,
        reader: Option<Arc<ReadBinding>>,
    ) -> Result<PooledConn> {
        let mut attempts = self.redials();
        loop {
            let mut c = pooled::checkout(&self.pool).await?;
            // Connections older than the last drop the server caused: make sure of this one.
            let dropped = self.dropped.load(Ordering::Relaxed);
            let alive = if c.checked < dropped {
                c.conn.ping().await.map(|()| c.checked = dropped)
            } else {
                Ok(())
            };
            let outcome = match alive {
                Ok(()) => bind(&mut c, tenant, &reader, self.roles.as_deref()).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => return Ok(c),
                Err(e) if attempts > 0 && is_dropped(&e) => attempts -= 1,
                Err(e) => return Err(track(e, &c.broken)),
            }
            c.broken.store(true, Ordering::Relaxed);
        }
    }

    /// What bb8 reports: open and idle connections, and how often a checkout had to wait.
    pub(crate) fn stats(&self) -> super::PoolStats {
        pooled::stats(super::Backend::Postgres, &self.pool)
    }

    /// How many dropped connections a call skips before it gives up: a whole pool of them, after
    /// a restart, and one more.
    fn redials(&self) -> u32 {
        self.pool.state().connections.saturating_add(1)
    }

    /// Applies the embedded migrations on a dedicated connection with the URL's own role (the
    /// owner of the tables), never the restricted application role.
    /// A connection of its own as the URL's role, bound to tenant `org` (see
    /// [`super::Pool::owner`]).
    pub(crate) async fn owner(&self, org: Uuid) -> Result<PgConnection> {
        let mut conn = PgConnection::connect_with(&self.options).await?;
        sqlx::query("select set_config($1, $2, false)")
            .bind(TENANT_SETTING)
            .bind(org.to_string())
            .execute(&mut conn)
            .await?;
        Ok(conn)
    }

    pub(crate) async fn migrate(&self) -> Result<()> {
        let mut conn = PgConnection::connect_with(&self.options).await?;
        migrator().run(&mut conn).await?;
        conn.close().await?;
        Ok(())
    }
}

impl PgPool {
    /// The versions recorded as applied (none when the table does not exist yet), read with the
    /// URL's own role: the application role cannot read the migrations table.
    pub(crate) async fn applied_migrations(&self) -> Result<Vec<i64>> {
        let mut conn = PgConnection::connect_with(&self.options).await?;
        let rows: std::result::Result<Vec<(i64,)>, sqlx::Error> =
            sqlx::query_as("select version from _crm_migrations where success")
                .fetch_all(&mut conn)
                .await;
        conn.close().await.ok();
        match rows {
            Ok(rows) => Ok(rows.into_iter().map(|(v,)| v).collect()),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Refuses, with a message that names it, a certificate or key file for TLS that the URL (or
/// `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`) names but that cannot be read. sqlx reads these files
/// only when a connection opens, and reports a missing one as an I/O error, which would look
/// like the server being away (and be retried as such).
///
/// The root certificate matters only to `sslmode=verify-ca` / `verify-full` (the other modes do
/// not verify the server); the client certificate and key to every mode that may use TLS.
pub(crate) fn check_tls_files(options: &PgConnectOptions) -> Result<()> {
    use sqlx::ConnectOptions as _;
    use sqlx::postgres::PgSslMode;
    let mode = options.get_ssl_mode();
    if matches!(mode, PgSslMode::Disable | PgSslMode::Allow) {
        return Ok(());
    }
    let verifies = matches!(mode, PgSslMode::VerifyCa | PgSslMode::VerifyFull);
    let url = options.to_url_lossy();
    for (key, value) in url.query_pairs() {
        let needed = match &*key {
            "sslrootcert" => verifies,
            "sslcert" | "sslkey" => true,
            _ => false,
        };
        // sqlx shows a file as `file: <path>`; an inline PEM certificate has no file to check.
        let Some(path) = value.strip_prefix("file: ").filter(|_| needed) else {
            continue;
        };
        if let Err(e) = std::fs::File::open(path) {
            return Err(Error::Config(format!(
                "cannot read the PostgreSQL TLS file {key}={path}: {e}"
            )));
        }
    }
    Ok(())
}

/// The migrations in `crm-core/migrations/postgres`, recorded in `_crm_migrations` so that they
/// never mix with a host application's own `_sqlx_migrations`.
pub(crate) fn migrator() -> sqlx::migrate::Migrator {
    let mut m = sqlx::migrate!("migrations/postgres");
    m.dangerous_set_table_name("_crm_migrations");
    m
}

/// Refuses a URL whose connections share server sessions: two clients, both connected, served
/// by one backend, or one client served by two. Without a pooler, and behind a session-mode
/// one, a backend serves one client for as long as it stays connected; a transaction-mode
/// pooler hands the first client's idle backend to the second (PgBouncer takes the most
/// recently used one), which this sees before anything (migrations included) runs through it.
/// Simple-query protocol: no prepared statement to lose between backends.
async fn refuse_shared_sessions(options: &PgConnectOptions) -> Result<()> {
    async fn backend(conn: &mut PgConnection) -> std::result::Result<i32, sqlx::Error> {
        use sqlx::Row as _;
        sqlx::raw_sql("select pg_backend_pid()")
            .fetch_one(conn)
            .await?
            .try_get(0)
    }
    let mut first = PgConnection::connect_with(options).await?;
    let mut second = PgConnection::connect_with(options).await?;
    let (a, b, again) = (
        backend(&mut first).await?,
        backend(&mut second).await?,
        backend(&mut first).await?,
    );
    first.close().await.ok();
    second.close().await.ok();
    if a == b || a != again {
        return Err(Error::Config(TRANSACTION_POOLER.into()));
    }
    Ok(())
}

/// Binds `c` to `tenant` and `reader` unless it is known to be bound to them already: one
/// round trip whatever changes.
///
/// A restricted reader's connection also switches to the reader role (`roles`: the
/// application role and the reader's), to which alone the visibility policies apply.
async fn bind(
    c: &mut PooledConn,
    tenant: Option<Uuid>,
    reader: &Option<Arc<ReadBinding>>,
    roles: Option<&(String, String)>,
) -> std::result::Result<(), sqlx::Error> {
    let was_restricted = match &c.binding {
        Binding::Known(t, r) if *t == tenant && r == reader => return Ok(()),
        Binding::Known(_, r) => r.is_some(),
        Binding::Unknown => true,
    };
    // Until the server confirms, the binding is unknown: if this call is cancelled or fails
    // midway, the next checkout rebinds instead of trusting a stale belief.
    c.binding = Binding::Unknown;
    let value = tenant.map(|t| t.to_string()).unwrap_or_default();
    match reader {
        // The common case, a reader who sees every row of their tenant on a connection that
        // was not restricted: the tenant alone.
        None if !was_restricted => {
            sqlx::query("select set_config($1, $2, false)")
                .bind(TENANT_SETTING)
                .bind(value)
                .execute(&mut c.conn)
                .await?;
        }
        _ => {
            let mut names = vec![TENANT_SETTING.to_owned()];
            let mut values = vec![value];
            if let Some(r) = reader {
                for (name, value) in r.settings() {
                    names.push(name);
                    values.push(value);
                }
            }
            if let Some((app, restricted)) = roles {
                names.push("role".to_owned());
                values.push(if reader.is_some() { restricted } else { app }.clone());
            }
            sqlx::query(
                "select count(set_config(n, v, false)) from unnest($1::text[], $2::text[]) s (n, v)",
            )
            .bind(names)
            .bind(values)
            .execute(&mut c.conn)
            .await?;
        }
    }
    c.binding = Binding::Known(tenant, reader.clone());
    Ok(())
}

/// A pooled connection bound to a tenant, and the pool to take another one from when the
/// server has dropped it.
pub(crate) struct PgSession {
    conn: PooledConn,
    pool: PgPool,
    tenant: Option<Uuid>,
    reader: Option<Arc<ReadBinding>>,
}

impl PgSession {
    /// The connection.
    pub(crate) fn connection(&mut self) -> &mut PgConnection {
        &mut self.conn.conn
    }

    /// Drops the connection instead of returning it to the pool (PostgreSQL then ends whatever
    /// transaction it was in).
    pub(crate) fn discard(self) {
        self.conn.broken.store(true, Ordering::Relaxed);
    }

    /// Marks the connection broken when `e` says it is, and converts the error.
    pub(crate) fn track(&self, e: sqlx::Error) -> Error {
        track(e, &self.conn.broken)
    }

    /// Whether a statement that failed with `e` may run again on another connection: `e` says
    /// the server dropped this one, `text` only reads (outside a transaction), and a redial is
    /// left. The dropped connection is discarded.
    pub(crate) fn may_retry(&mut self, e: &sqlx::Error, text: &str, attempts: &mut u32) -> bool {
        let read = text
            .trim_start()
            .get(..6)
            .is_some_and(|w| w.eq_ignore_ascii_case("select"));
        if !read || *attempts == 0 || !is_dropped(e) {
            return false;
        }
        *attempts -= 1;
        self.conn.broken.store(true, Ordering::Relaxed);
        true
    }

    /// Replaces the connection with another one bound to the same tenant.
    pub(crate) async fn redial(&mut self) -> Result<()> {
        self.conn.broken.store(true, Ordering::Relaxed);
        self.pool.dropped.fetch_add(1, Ordering::Relaxed);
        self.conn = self.pool.tenant(self.tenant, self.reader.clone()).await?;
        Ok(())
    }

    /// How many times a read may be retried on another connection.
    pub(crate) fn redials(&self) -> u32 {
        self.pool.redials()
    }

    /// Starts a transaction.
    /// The connection without the retry of reads on a redial: for statements inside a
    /// transaction begun by hand (a unit of work), which another connection would not be in.
    pub(crate) fn in_transaction(&mut self) -> super::Conn<'_> {
        let TenantConn { conn, broken, .. } = &mut *self.conn;
        super::Conn::Postgres(conn, broken)
    }

    pub(crate) async fn begin(&mut self) -> Result<Tx<'_>> {
        let TenantConn { conn, broken, .. } = &mut *self.conn;
        match conn.begin().await {
            Ok(tx) => Ok(Tx::Postgres(tx, broken)),
            Err(e) => Err(track(e, broken)),
        }
    }
}

/// Binds the values of a statement as PostgreSQL arguments.
pub(crate) fn args(values: &[Arg]) -> Result<PgArguments> {
    let mut out = PgArguments::default();
    for v in values {
        let r = match v {
            Arg::Uuid(v) => out.add(*v),
            Arg::Text(v) => out.add(v.as_deref()),
            Arg::Int(v) => out.add(*v),
            Arg::Float(v) => out.add(*v),
            Arg::Bool(v) => out.add(*v),
            Arg::Time(v) => out.add(*v),
            Arg::Date(v) => out.add(*v),
            Arg::Json(v) => out.add(v.as_ref().map(Json)),
            Arg::Array(a) => match a {
                Array::Uuid(v) => out.add(v),
                Array::Text(v) => out.add(v),
                Array::Int(v) => out.add(v),
                Array::Float(v) => out.add(v),
                Array::Bool(v) => out.add(v),
                Array::Time(v) => out.add(v),
                Array::Date(v) => out.add(v),
                Array::Json(v) => {
                    out.add(v.iter().map(|v| v.as_ref().map(Json)).collect::<Vec<_>>())
                }
            },
        };
        r.map_err(|e| Error::Storage(sqlx::Error::Encode(e)))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! The library's own pooled connections are held to row-level security even though the
    //! test URL names a superuser. (Behaviour tests live in `tests/`; this one needs the pool.)
    use super::*;
    use crate::crm::Crm;
    use crate::storage::{Conn, Pool, Sql};
    use crate::{NewAccount, NewOrganization, TenantContext};

    /// A library on a fresh schema of the test server with `settings`, or `None` when the
    /// PostgreSQL tests are skipped.
    async fn fresh(settings: PoolSettings) -> Option<Crm> {
        let Ok(url) = std::env::var("CRM_TEST_DATABASE_URL") else {
            assert!(
                std::env::var_os("CRM_TEST_REQUIRE_POSTGRES").is_none(),
                "PostgreSQL suite skipped"
            );
            return None;
        };
        let schema = format!("crm_unit_{}", Uuid::now_v7().simple());
        let mut admin = PgConnection::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("create schema {schema}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{sep}options=-c%20search_path%3D{schema}");
        Some(
            Crm::builder()
                .database_url(url)
                .pool(settings)
                .build()
                .await
                .unwrap(),
        )
    }

    fn pg(crm: &Crm) -> &PgPool {
        let Pool::Postgres(pool) = crm.pool() else {
            panic!("PostgreSQL pool expected")
        };
        pool
    }

    async fn text(session: &mut PgSession, sql: &'static str) -> String {
        let (v,): (String,) = Conn::PostgresSession(session)
            .fetch_one(&Sql::new(sql))
            .await
            .unwrap();
        v
    }

    #[tokio::test]
    async fn statements_are_cancelled_after_the_statement_timeout() {
        let settings = PoolSettings {
            statement_timeout: Some(std::time::Duration::from_millis(200)),
            ..PoolSettings::default()
        };
        let Some(crm) = fresh(settings).await else {
            return;
        };
        let mut s = pg(&crm).session(None).await.unwrap();
        assert_eq!(
            text(&mut s, "select current_setting('statement_timeout')").await,
            "200ms"
        );
        let started = std::time::Instant::now();
        let slow = Conn::PostgresSession(&mut s)
            .execute(&Sql::new("select pg_sleep(5)"))
            .await;
        assert!(matches!(slow, Err(Error::Unavailable(_))), "{slow:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        // The connection serves the next statement.
        assert_eq!(text(&mut s, "select 'ok'").await, "ok");
    }

    #[tokio::test]
    async fn a_cancelled_rebind_is_redone_before_the_connection_serves_again() {
        let settings = PoolSettings {
            max_connections: 1,
            ..PoolSettings::default()
        };
        let Some(crm) = fresh(settings).await else {
            return;
        };
        let pool = pg(&crm);
        let tenants = [Uuid::now_v7(), Uuid::now_v7()];
        for round in 0..200 {
            // A call that gives up while its rebind is on the wire (polled a few times, then
            // dropped, as a timed-out request drops it).
            let mut rebind = Box::pin(pool.session(Some(tenants[round % 2])));
            for _ in 0..(round % 7) {
                if futures_poll_once(rebind.as_mut()).await {
                    break;
                }
            }
            drop(rebind);
            // The one connection, taken for no tenant, must be bound to none.
            let mut s = pool.session(None).await.unwrap();
            let bound = text(
                &mut s,
                "select coalesce(current_setting('crm.org_id', true), '')",
            )
            .await;
            assert_eq!(bound, "", "round {round}: still bound to a tenant");
        }
    }

    /// Polls `f` once (after letting other tasks run); whether it finished.
    async fn futures_poll_once<F: std::future::Future>(mut f: std::pin::Pin<&mut F>) -> bool {
        tokio::task::yield_now().await;
        std::future::poll_fn(|cx| std::task::Poll::Ready(f.as_mut().poll(cx).is_ready())).await
    }

    #[tokio::test]
    async fn pooled_connections_act_as_crm_app_and_see_one_tenant() {
        let Some(crm) = fresh(PoolSettings::default()).await else {
            return;
        };

        let mut orgs = Vec::new();
        for name in ["A", "B"] {
            let org = crm
                .organizations()
                .create(NewOrganization {
                    name: name.into(),
                    slug: None,
                })
                .await
                .unwrap();
            let t = crm.tenant(&TenantContext::system(org.id));
            for i in 0..2 {
                t.accounts()
                    .create(NewAccount {
                        name: format!("{name}{i}"),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
            }
            orgs.push(org.id);
        }
        let Pool::Postgres(pool) = crm.pool() else {
            panic!("PostgreSQL pool expected")
        };

        // Statements on a session bound to A, with no tenant filter of their own.
        let mut c = pool.session(Some(orgs[0].uuid())).await.unwrap();
        let (user,): (String,) = Conn::PostgresSession(&mut c)
            .fetch_one(&Sql::new("select current_user::text"))
            .await
            .unwrap();
        assert_eq!(user, "crm_app");
        let (n,): (i64,) = Conn::PostgresSession(&mut c)
            .fetch_one(&Sql::new("select count(*) from accounts"))
            .await
            .unwrap();
        assert_eq!(
            n, 2,
            "only A's accounts, although the statement has no tenant filter"
        );
        drop(c);

        // Rebinding the same connections to B, then to no tenant at all.
        let mut c = pool.session(Some(orgs[1].uuid())).await.unwrap();
        let (names,): (String,) = Conn::PostgresSession(&mut c)
            .fetch_one(&Sql::new(
                "select string_agg(name, ',' order by name) from accounts",
            ))
            .await
            .unwrap();
        assert_eq!(names, "B0,B1");
        drop(c);
        let mut c = pool.session(None).await.unwrap();
        let (n,): (i64,) = Conn::PostgresSession(&mut c)
            .fetch_one(&Sql::new("select count(*) from accounts"))
            .await
            .unwrap();
        assert_eq!(n, 0, "a session bound to no tenant sees no tenant rows");
    }

    /// An organization "Acme" with users named `names` (role `user`), the first holding a
    /// permission set "Rep" with `entities`; its system tenant does the writing.
    async fn org_with_rep(
        crm: &Crm,
        names: &[&str],
        entities: std::collections::BTreeMap<String, crate::access::EntityAccess>,
    ) -> (crate::Organization, Vec<crate::UserId>) {
        use crate::access::NewPermissionSet;
        use crate::{NewUser, Role};
        let org = crm
            .organizations()
            .create(NewOrganization {
                name: "Acme".into(),
                slug: None,
            })
            .await
            .unwrap();
        let admin = crm.tenant(&TenantContext::system(org.id));
        let mut users = Vec::new();
        for name in names {
            let u = admin
                .users()
                .create(NewUser {
                    email: format!("{name}@example.com"),
                    name: (*name).into(),
                    password: None,
                    role: Role::User,
                })
                .await
                .unwrap();
            users.push(u.id);
        }
        let set = admin
            .permission_sets()
            .create(NewPermissionSet {
                name: "Rep".into(),
                description: String::new(),
                entities,
                fields: std::collections::BTreeMap::new(),
            })
            .await
            .unwrap();
        admin
            .permission_sets()
            .assign_to_user(users[0], Some(set.id))
            .await
            .unwrap();
        (org, users)
    }

    /// The policies of migration `0020_visibility_by_ids` hold on their own: a connection the
    /// library binds for a restricted reader returns only what they reach (own, team, shared)
    /// to statements without any condition of the library's, and the next reader of the same
    /// connection, unrestricted, sees every row again.
    #[tokio::test]
    async fn restricted_readers_see_only_their_reach_without_the_library_filter() {
        use crate::access::{EntityAccess, Reach};
        use crate::{NewContact, Role};
        use std::collections::BTreeMap;

        let settings = PoolSettings {
            max_connections: 1,
            ..PoolSettings::default()
        };
        let Some(crm) = fresh(settings).await else {
            return;
        };
        let reach = |read| EntityAccess {
            read,
            write: read,
            delete: Reach::None,
        };
        let (org, users) = org_with_rep(
            &crm,
            &["ada", "bob", "carol"],
            BTreeMap::from([
                ("accounts".to_owned(), reach(Reach::Own)),
                ("contacts".to_owned(), reach(Reach::Team)),
            ]),
        )
        .await;
        let admin = crm.tenant(&TenantContext::system(org.id));
        let (ada, bob, carol) = (users[0], users[1], users[2]);
        let mut ids = Vec::new();
        for (name, owner) in [("Ada's", ada), ("Bob's", bob), ("Shared", carol)] {
            let a = admin
                .accounts()
                .create(NewAccount {
                    name: name.into(),
                    owner_id: Some(owner),
                    ..Default::default()
                })
                .await
                .unwrap();
            ids.push(a.id.uuid());
        }
        for (name, owner) in [("Bob", bob), ("Carol", carol)] {
            admin
                .contacts()
                .create(NewContact {
                    last_name: Some(name.into()),
                    owner_id: Some(owner),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        // Ada and Bob are a team; Carol's account is shared with Ada.
        let pool = pg(&crm);
        let mut c = pool.session(Some(org.id.uuid())).await.unwrap();
        let team = Uuid::now_v7();
        let mut q = Sql::new(
            "insert into teams (organization_id, id, name, created_at, updated_at) values (",
        );
        q.bind(org.id).push(", ").bind(team);
        q.push(", 'Sales', now(), now())");
        Conn::PostgresSession(&mut c).execute(&q).await.unwrap();
        for user in [ada, bob] {
            let mut q = Sql::new(
                "insert into team_members (organization_id, team_id, user_id, added_at) values (",
            );
            q.bind(org.id).push(", ").bind(team).push(", ").bind(user);
            q.push(", now())");
            Conn::PostgresSession(&mut c).execute(&q).await.unwrap();
        }
        let mut q = Sql::new(
            "insert into record_shares (organization_id, entity, record_id, grantee_kind, \
             grantee_id, access, created_at) values (",
        );
        q.bind(org.id).push(", 'account', ").bind(ids[2]);
        q.push(", 'user', ").bind(ada).push(", 'read', now())");
        Conn::PostgresSession(&mut c).execute(&q).await.unwrap();
        drop(c);

        let accounts =
            || Sql::new("select coalesce(string_agg(name, ',' order by name), '') from accounts");
        let contacts = || {
            Sql::new(
                "select coalesce(string_agg(last_name, ',' order by last_name), '') from contacts",
            )
        };
        let grants = crm
            .tenant(&TenantContext::user(org.id, ada, Role::User))
            .grants()
            .await
            .unwrap();
        let reader = grants.read_binding().cloned();
        assert!(reader.is_some(), "Ada is a restricted reader");
        let mut c = pool
            .session_reading(Some(org.id.uuid()), reader)
            .await
            .unwrap();
        assert_eq!(
            text(&mut c, "select current_user::text").await,
            READER_ROLE,
            "the policies apply to the reader role alone"
        );
        let (seen,): (String,) = Conn::PostgresSession(&mut c)
            .fetch_one(&accounts())
            .await
            .unwrap();
        assert_eq!(seen, "Ada's,Shared", "her own and the one shared with her");
        let (seen,): (String,) = Conn::PostgresSession(&mut c)
            .fetch_one(&contacts())
            .await
            .unwrap();
        assert_eq!(seen, "Bob", "her team's, not Carol's");
        let (n,): (i64,) = Conn::PostgresSession(&mut c)
            .fetch_one(&Sql::new("select count(*) from leads"))
            .await
            .unwrap();
        assert_eq!(n, 0);
        drop(c);
        // The same (only) connection, for an unrestricted reader: everything again.
        let mut c = pool.session(Some(org.id.uuid())).await.unwrap();
        assert_eq!(text(&mut c, "select current_user::text").await, "crm_app");
        let (seen,): (String,) = Conn::PostgresSession(&mut c)
            .fetch_one(&accounts())
            .await
            .unwrap();
        assert_eq!(seen, "Ada's,Bob's,Shared");
    }

    /// A reader with more shares on a table than their grants list
    /// ([`crate::access::grants::MAX_LISTED_SHARES`]) still sees every record shared with them
    /// and nothing else: the library looks the shares up row by row, and so do the policies
    /// (mode `ids+shares`) when they screen alone.
    #[tokio::test]
    async fn a_reader_with_more_shares_than_listed_sees_each_of_them() {
        use crate::access::grants::MAX_LISTED_SHARES;
        use crate::access::{EntityAccess, Reach};
        use crate::{ListQuery, Role};
        use std::collections::BTreeMap;

        let Some(crm) = fresh(PoolSettings::default()).await else {
            return;
        };
        let own = EntityAccess {
            read: Reach::Own,
            write: Reach::Own,
            delete: Reach::None,
        };
        let (org, users) = org_with_rep(
            &crm,
            &["ada", "carol"],
            BTreeMap::from([("contacts".to_owned(), own)]),
        )
        .await;
        let (ada, carol) = (users[0], users[1]);
        // Carol owns more contacts than a grant lists, all shared with Ada, and three more
        // that are not.
        let shared = MAX_LISTED_SHARES as i64 + 5;
        let pool = pg(&crm);
        let mut c = pool.session(Some(org.id.uuid())).await.unwrap();
        // `n` contacts of Carol's named `name`.
        let contacts = |name: &'static str, n: i64| {
            let mut q = Sql::new(
                "insert into contacts (organization_id, id, created_at, updated_at, last_name, owner_id) \
                 select ",
            );
            q.bind(org.id)
                .push(", gen_random_uuid(), now(), now(), ")
                .bind(name)
                .push(", ")
                .bind(carol)
                .push(" from generate_series(1, ")
                .bind(n)
                .push(")");
            q
        };
        Conn::PostgresSession(&mut c)
            .execute(&contacts("shared", shared))
            .await
            .unwrap();
        let mut q = Sql::new(
            "insert into record_shares (organization_id, entity, record_id, grantee_kind, \
             grantee_id, access, created_at) select organization_id, 'contact', id, 'user', ",
        );
        q.bind(ada)
            .push(", 'read', now() from contacts where organization_id = ")
            .bind(org.id);
        Conn::PostgresSession(&mut c).execute(&q).await.unwrap();
        Conn::PostgresSession(&mut c)
            .execute(&contacts("private", 3))
            .await
            .unwrap();
        drop(c);

        let t = crm.tenant(&TenantContext::user(org.id, ada, Role::User));
        let grants = t.grants().await.unwrap();
        assert_eq!(
            grants.shared_reads("contacts"),
            Some(None),
            "too many to list"
        );
        // Through the library: every shared contact, page by page, and not the others.
        let mut seen = 0;
        let mut cursor = None;
        loop {
            let page = t
                .contacts()
                .list(&ListQuery::default().limit(100).cursor(cursor))
                .await
                .unwrap();
            assert!(
                page.data
                    .iter()
                    .all(|c| c.fields.last_name.as_deref() == Some("shared"))
            );
            seen += page.data.len();
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(seen as i64, shared);
        // The policies alone: the same.
        let mut c = pool
            .session_reading(Some(org.id.uuid()), grants.read_binding().cloned())
            .await
            .unwrap();
        let (n, private): (i64, i64) = Conn::PostgresSession(&mut c)
            .fetch_one(&Sql::new(
                "select count(*), count(*) filter (where last_name = 'private') from contacts",
            ))
            .await
            .unwrap();
        assert_eq!((n, private), (shared, 0));
    }
}
