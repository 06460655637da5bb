//! Storage: the connection pools of both backends behind one small interface.
//!
//! The record machinery writes each statement once as a [`Sql`]; this module runs it on
//! whichever backend the [`crate::Crm`] was built with. A [`Session`] is a pooled connection
//! already bound to one tenant (on PostgreSQL: the row-level-security setting is in place), so
//! nothing below it can forget the tenant.

mod dialect;
pub(crate) mod jobs;
mod pooled;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
mod rows;
mod settings;
mod sql;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;
#[cfg(test)]
#[cfg(feature = "sqlite")]
mod sqlite_pool_tests;
#[cfg(feature = "sqlite")]
mod statement_deadline;
mod stats;
mod unit;
mod visibility;

pub(crate) use jobs::{JobRow, JobStore, with_apalis_storage};
pub(crate) use rows::{Array, Rows};
pub use settings::{MAX_CONNECTIONS_ENV, PoolSettings, STATEMENT_TIMEOUT_ENV};
pub(crate) use sql::{Arg, FieldKey, Sql, escape_like};
pub use stats::PoolStats;
pub(crate) use unit::{Unit, UnitSession};
pub(crate) use visibility::{ReadBinding, TableBinding, TableRead};

use crate::error::Result;
use crate::organizations::OrganizationId;

/// Rows that decode on every compiled-in backend.
#[cfg(all(feature = "postgres", feature = "sqlite"))]
pub(crate) trait FromDbRow:
    for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
    + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
    + Send
    + Unpin
{
}
#[cfg(all(feature = "postgres", feature = "sqlite"))]
impl<T> FromDbRow for T where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + Send
        + Unpin
{
}

/// Rows that decode on every compiled-in backend.
#[cfg(all(feature = "postgres", not(feature = "sqlite")))]
pub(crate) trait FromDbRow:
    for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin
{
}
#[cfg(all(feature = "postgres", not(feature = "sqlite")))]
impl<T> FromDbRow for T where T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin {}

/// Rows that decode on every compiled-in backend.
#[cfg(all(feature = "sqlite", not(feature = "postgres")))]
pub(crate) trait FromDbRow:
    for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin
{
}
#[cfg(all(feature = "sqlite", not(feature = "postgres")))]
impl<T> FromDbRow for T where T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin {}

#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
compile_error!("crm-core needs at least one backend: enable the `postgres` or `sqlite` feature");

/// The backend a connection talks to; its SQL differences are methods of it (`dialect.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL 15+.
    Postgres,
    /// SQLite 3.38+ (bundled).
    Sqlite,
}

/// The pool of one backend.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    #[cfg(feature = "postgres")]
    Postgres(postgres::PgPool),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::SqlitePool),
}

impl Pool {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => Backend::Postgres,
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// A connection bound to `org`: every statement on it sees only that organization's rows
    /// (enforced by row-level security on PostgreSQL; by the machinery's filters on SQLite).
    pub(crate) async fn tenant(&self, org: OrganizationId) -> Result<Session> {
        match self {
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => Ok(Session::Postgres(p.session(Some(org.uuid())).await?)),
            // SQLite has no row-level security: the machinery's filters carry the tenant.
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => {
                let _ = org;
                Ok(Session::Sqlite(p.acquire().await?))
            }
        }
    }

    /// A connection bound to `org` for a reader restricted by `reader` (on PostgreSQL the
    /// row-level-security policies then let through only what the reader may see; see
    /// [`ReadBinding`]); as [`Pool::tenant`] when `reader` is `None`.
    pub(crate) async fn tenant_reading(
        &self,
        org: OrganizationId,
        reader: Option<&std::sync::Arc<ReadBinding>>,
    ) -> Result<Session> {
        match self {
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => Ok(Session::Postgres(
                p.session_reading(Some(org.uuid()), reader.cloned()).await?,
            )),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => self.tenant(org).await,
        }
    }

    /// A connection bound to no tenant: it reaches only the global tables (organizations).
    pub(crate) async fn global(&self) -> Result<Session> {
        match self {
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => Ok(Session::Postgres(p.session(None).await?)),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => Ok(Session::Sqlite(p.acquire().await?)),
        }
    }

    /// A connection of its own as the database URL's role (the migrations' role, not the
    /// application role), bound to `org`: for an operator's maintenance the application role
    /// may not do, such as deleting expired events. Row-level security still confines it to
    /// `org` unless that role bypasses it.
    pub(crate) async fn owner(&self, org: OrganizationId) -> Result<OwnerSession> {
        match self {
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => Ok(OwnerSession::Postgres(
                p.owner(org.uuid()).await?,
                std::sync::atomic::AtomicBool::new(false),
            )),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => {
                let _ = org;
                Ok(OwnerSession::Sqlite(p.acquire().await?))
            }
        }
    }

    /// What the pool reports about itself now.
    pub(crate) fn stats(&self) -> PoolStats {
        match self {
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => p.stats(),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => p.stats(),
        }
    }

    /// Closes every connection.
    pub(crate) async fn close(&self) {
        match self {
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => {}
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => p.close().await,
        }
    }
}

/// A pooled connection, bound to a tenant (or to none) for as long as it is held.
pub(crate) enum Session {
    #[cfg(feature = "postgres")]
    Postgres(postgres::PgSession),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::PooledConn),
}

impl Session {
    /// Runs statements outside a transaction (single-statement reads).
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            #[cfg(feature = "postgres")]
            Session::Postgres(c) => Conn::PostgresSession(c),
            #[cfg(feature = "sqlite")]
            Session::Sqlite(c) => c.conn(),
        }
    }

    /// Runs statements inside a transaction begun by hand (a unit of work's): a statement that
    /// fails because the server dropped the connection is never retried on another one, which
    /// would not be in that transaction.
    pub(crate) fn conn_in_transaction(&mut self) -> Conn<'_> {
        match self {
            #[cfg(feature = "postgres")]
            Session::Postgres(c) => c.in_transaction(),
            #[cfg(feature = "sqlite")]
            Session::Sqlite(c) => c.conn(),
        }
    }

    /// Starts a transaction. On SQLite it is `BEGIN IMMEDIATE`, so two writers queue on the
    /// busy timeout instead of failing when a read lock would have to be upgraded.
    pub(crate) async fn begin(&mut self) -> Result<Tx<'_>> {
        match self {
            #[cfg(feature = "postgres")]
            Session::Postgres(c) => c.begin().await,
            #[cfg(feature = "sqlite")]
            Session::Sqlite(c) => c.begin().await,
        }
    }

    /// Drops the connection instead of returning it to the pool (it may be inside a
    /// transaction nobody will end).
    pub(crate) fn discard(self) {
        match self {
            #[cfg(feature = "postgres")]
            Session::Postgres(c) => c.discard(),
            #[cfg(feature = "sqlite")]
            Session::Sqlite(c) => c.discard(),
        }
    }
}

/// The connection one call runs on: the tenant's own pooled [`Session`], or the shared one of
/// the unit of work the tenant handle belongs to ([`crate::Tenant::transaction`]).
pub(crate) enum SessionRef {
    Own(Session),
    Unit(UnitSession),
}

impl SessionRef {
    /// Runs statements outside a transaction of the call's own (in a unit: inside the unit's).
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            SessionRef::Own(s) => s.conn(),
            SessionRef::Unit(s) => s.conn_in_transaction(),
        }
    }

    /// Starts the call's transaction: a transaction of its own, or a savepoint of the unit's.
    pub(crate) async fn begin(&mut self) -> Result<Tx<'_>> {
        match self {
            SessionRef::Own(s) => s.begin().await,
            SessionRef::Unit(s) => s.savepoint().await,
        }
    }
}

/// An open transaction; [`Tx::settle`] commits or rolls it back (dropped, it rolls back when its
/// connection is next used).
pub(crate) enum Tx<'c> {
    #[cfg(feature = "postgres")]
    Postgres(
        sqlx::Transaction<'c, sqlx::Postgres>,
        &'c std::sync::atomic::AtomicBool,
    ),
    #[cfg(feature = "sqlite")]
    Sqlite(
        sqlx::Transaction<'c, sqlx::Sqlite>,
        &'c std::sync::atomic::AtomicBool,
        &'c statement_deadline::StatementDeadline,
    ),
    /// A savepoint of a unit of work's transaction.
    Savepoint(Conn<'c>),
}

impl Tx<'_> {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            #[cfg(feature = "postgres")]
            Tx::Postgres(tx, broken) => Conn::Postgres(&mut *tx, broken),
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(tx, broken, deadline) => Conn::Sqlite(&mut *tx, broken, deadline),
            Tx::Savepoint(c) => c.reborrow(),
        }
    }

    /// Commits when `out` is `Ok`, rolls back when it is an error, and returns `out`.
    ///
    /// Rolling back explicitly matters: a transaction merely dropped would release its row
    /// locks only when its connection is next used.
    pub(crate) async fn settle<T>(self, out: Result<T>) -> Result<T> {
        match out {
            Ok(v) => {
                self.commit().await?;
                Ok(v)
            }
            Err(e) => {
                // The original error is the one to report; a failed rollback marks a broken
                // PostgreSQL connection, and the pool discards it.
                let _ = self.rollback().await;
                Err(e)
            }
        }
    }

    /// Rolls back.
    pub(crate) async fn rollback(self) -> Result<()> {
        match self {
            #[cfg(feature = "postgres")]
            Tx::Postgres(tx, broken) => tx.rollback().await.map_err(|e| pooled::track(e, broken)),
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(tx, broken, _) => tx.rollback().await.map_err(|e| pooled::track(e, broken)),
            Tx::Savepoint(mut c) => unit::rollback_to(&mut c).await,
        }
    }

    async fn commit(self) -> Result<()> {
        match self {
            #[cfg(feature = "postgres")]
            Tx::Postgres(tx, broken) => tx.commit().await.map_err(|e| pooled::track(e, broken)),
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(tx, broken, _) => tx.commit().await.map_err(|e| pooled::track(e, broken)),
            Tx::Savepoint(mut c) => unit::release(&mut c).await,
        }
    }
}

/// A connection as the database URL's role ([`Pool::owner`]).
pub(crate) enum OwnerSession {
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgConnection, std::sync::atomic::AtomicBool),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::PooledConn),
}

impl OwnerSession {
    /// Starts a transaction, as [`Session::begin`] does.
    pub(crate) async fn begin(&mut self) -> Result<Tx<'_>> {
        match self {
            #[cfg(feature = "postgres")]
            OwnerSession::Postgres(c, broken) => {
                use sqlx::Connection as _;
                match c.begin().await {
                    Ok(tx) => Ok(Tx::Postgres(tx, broken)),
                    Err(e) => Err(pooled::track(e, broken)),
                }
            }
            #[cfg(feature = "sqlite")]
            OwnerSession::Sqlite(c) => c.begin().await,
        }
    }
}

/// A borrowed connection (plain or inside a transaction) that runs [`Sql`].
pub(crate) enum Conn<'c> {
    /// Inside a transaction.
    #[cfg(feature = "postgres")]
    Postgres(
        &'c mut sqlx::PgConnection,
        &'c std::sync::atomic::AtomicBool,
    ),
    /// Outside a transaction: a read that met a connection the server dropped is retried on
    /// another one.
    #[cfg(feature = "postgres")]
    PostgresSession(&'c mut postgres::PgSession),
    /// Inside a transaction or not: SQLite has no server to drop the connection. Each
    /// statement runs with its deadline ([`statement_deadline`]).
    #[cfg(feature = "sqlite")]
    Sqlite(
        &'c mut sqlx::SqliteConnection,
        &'c std::sync::atomic::AtomicBool,
        &'c statement_deadline::StatementDeadline,
    ),
}

/// Runs the same body for each backend with `$conn` bound to the driver connection and `$args`
/// to that driver's arguments.
macro_rules! dispatch {
    ($self:ident, $sql:ident, |$conn:ident, $args:ident| $body:expr) => {
        match $self {
            #[cfg(feature = "postgres")]
            Conn::Postgres(c, broken) => {
                let $args = postgres::args($sql.args())?;
                let $conn = &mut **c;
                let result: std::result::Result<_, sqlx::Error> = $body;
                result.map_err(|e| pooled::track(e, broken))
            }
            #[cfg(feature = "postgres")]
            Conn::PostgresSession(session) => {
                let mut redials = session.redials();
                loop {
                    let $args = postgres::args($sql.args())?;
                    let $conn = session.connection();
                    let result: std::result::Result<_, sqlx::Error> = $body;
                    match result {
                        Ok(v) => break Ok(v),
                        Err(e) if session.may_retry(&e, $sql.text(), &mut redials) => {
                            tracing::debug!(error = %e, "the server dropped the connection; reading again on another");
                            session.redial().await?;
                        }
                        Err(e) => break Err(session.track(e)),
                    }
                }
            }
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(c, broken, deadline) => {
                let $args = sqlite::args($sql.args())?;
                let $conn = &mut **c;
                let armed = deadline.arm();
                let result: std::result::Result<_, sqlx::Error> = $body;
                drop(armed);
                result.map_err(|e| sqlite::failed(e, broken))
            }
        }
    };
}

impl Conn<'_> {
    /// The same connection, borrowed for less long.
    pub(crate) fn reborrow(&mut self) -> Conn<'_> {
        match self {
            #[cfg(feature = "postgres")]
            Conn::Postgres(c, broken) => Conn::Postgres(c, broken),
            #[cfg(feature = "postgres")]
            Conn::PostgresSession(s) => Conn::PostgresSession(s),
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(c, broken, deadline) => Conn::Sqlite(c, broken, deadline),
        }
    }

    /// Inside [`explain_statements`] on PostgreSQL: records the plan of `sql` (run as
    /// `EXPLAIN (format json)` on this very connection, so with its tenant binding and role)
    /// before the statement itself runs. Elsewhere: nothing but a task-local lookup.
    async fn explain_if_asked(&mut self, sql: &Sql) -> Result<()> {
        #[cfg(not(feature = "postgres"))]
        let _ = sql;
        #[cfg(feature = "postgres")]
        if let Conn::Postgres(..) | Conn::PostgresSession(_) = self
            && EXPLAINED.try_with(|_| ()).is_ok()
        {
            let text = format!("explain (format json) {}", sql.text());
            let (plan,): (sqlx::types::Json<serde_json::Value>,) =
                dispatch!(self, sql, |conn, args| {
                    sqlx::query_as_with(sqlx::AssertSqlSafe(text.clone()), args)
                        .fetch_one(conn)
                        .await
                })?;
            let statement = sql.text().to_owned();
            let _ = EXPLAINED.try_with(|e| e.borrow_mut().push((statement, plan.0)));
        }
        Ok(())
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            #[cfg(feature = "postgres")]
            Conn::Postgres(..) | Conn::PostgresSession(_) => Backend::Postgres,
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(..) => Backend::Sqlite,
        }
    }

    pub(crate) async fn fetch_optional<T: FromDbRow>(&mut self, sql: &Sql) -> Result<Option<T>> {
        self.explain_if_asked(sql).await?;
        let text = || sqlx::AssertSqlSafe(sql.text().to_owned());
        dispatch!(self, sql, |conn, args| {
            sqlx::query_as_with::<_, T, _>(text(), args)
                .fetch_optional(conn)
                .await
        })
    }

    pub(crate) async fn fetch_one<T: FromDbRow>(&mut self, sql: &Sql) -> Result<T> {
        self.explain_if_asked(sql).await?;
        let text = || sqlx::AssertSqlSafe(sql.text().to_owned());
        dispatch!(self, sql, |conn, args| {
            sqlx::query_as_with::<_, T, _>(text(), args)
                .fetch_one(conn)
                .await
        })
    }

    pub(crate) async fn fetch_all<T: FromDbRow>(&mut self, sql: &Sql) -> Result<Vec<T>> {
        self.explain_if_asked(sql).await?;
        let text = || sqlx::AssertSqlSafe(sql.text().to_owned());
        dispatch!(self, sql, |conn, args| {
            sqlx::query_as_with::<_, T, _>(text(), args)
                .fetch_all(conn)
                .await
        })
    }

    /// Runs a statement and returns the number of rows it affected.
    pub(crate) async fn execute(&mut self, sql: &Sql) -> Result<u64> {
        self.explain_if_asked(sql).await?;
        let text = || sqlx::AssertSqlSafe(sql.text().to_owned());
        dispatch!(self, sql, |conn, args| {
            sqlx::query_with(text(), args)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })
    }
}

#[cfg(feature = "postgres")]
tokio::task_local! {
    static EXPLAINED: std::cell::RefCell<Vec<(String, serde_json::Value)>>;
}

/// Runs `work` and returns, with its output, the SQL text and `EXPLAIN (format json)` plan of
/// every statement the library sent to PostgreSQL while it ran (SQLite: none).
///
/// For the index-proof test (`tests/behaviour/index_proof.rs`), so that it checks the very SQL
/// the library generates instead of a copy. Not part of the API.
#[doc(hidden)]
#[cfg(feature = "postgres")]
pub async fn explain_statements<F: std::future::Future>(
    work: F,
) -> (F::Output, Vec<(String, serde_json::Value)>) {
    let cell = std::cell::RefCell::new(Vec::new());
    EXPLAINED
        .scope(cell, async move {
            let out = work.await;
            let plans = EXPLAINED.with(|e| e.take());
            (out, plans)
        })
        .await
}
