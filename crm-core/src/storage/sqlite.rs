//! SQLite: the embedded default. One file (or one in-memory database), WAL mode, foreign keys
//! on, writers serialized by `BEGIN IMMEDIATE` and a busy timeout, connections pooled by
//! [`bb8`] as PostgreSQL's are (see [`SqlitePool`]).
//!
//! SQLite has no row-level security: tenancy rests on the machinery's `organization_id`
//! filters (and the composite keys), which the same tests exercise on both backends.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteJournalMode};
use sqlx::types::Json;
use sqlx::{Arguments as _, Connection as _, SqliteConnection};

use super::pooled::{self, track};
use super::statement_deadline::{self, StatementDeadline};
use super::{Arg, Tx};
use crate::error::{Error, Result};
use crate::storage::PoolSettings;

/// A pooled connection.
pub(crate) type PooledConn = bb8::PooledConnection<'static, Manager>;

/// The SQLite pool: [`bb8`] over plain [`SqliteConnection`]s, as for PostgreSQL. sqlx's own
/// pool pings every connection it takes back (for SQLite a trip to the connection's worker
/// thread and back, from a task it spawns), which made a read cost about half as much again as
/// the statement alone; bb8 takes a connection back as it is.
#[derive(Clone)]
pub(crate) struct SqlitePool {
    pool: bb8::Pool<Manager>,
    /// Set by [`SqlitePool::close`]: no connection is handed out or opened any more.
    closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for SqlitePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlitePool")
            .field("state", &self.pool.state())
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}

/// A connection, and whether an error left it unusable.
#[derive(Debug)]
pub(crate) struct SqliteConn {
    conn: SqliteConnection,
    /// Set when the connection's worker thread is gone (or [`SqliteConn::discard`] asked): bb8
    /// then drops the connection instead of taking it back.
    broken: AtomicBool,
    /// The running statement's deadline, from [`PoolSettings::statement_timeout`].
    deadline: StatementDeadline,
}

impl SqliteConn {
    /// Runs statements on the connection, outside a transaction of its own.
    pub(crate) fn conn(&mut self) -> super::Conn<'_> {
        super::Conn::Sqlite(&mut self.conn, &self.broken, &self.deadline)
    }

    /// Starts a `BEGIN IMMEDIATE` transaction: two writers queue on the busy timeout instead of
    /// failing when a read lock would have to be upgraded.
    pub(crate) async fn begin(&mut self) -> Result<Tx<'_>> {
        match self.conn.begin_with("BEGIN IMMEDIATE").await {
            Ok(tx) => Ok(Tx::Sqlite(tx, &self.broken, &self.deadline)),
            Err(e) => Err(track(e, &self.broken)),
        }
    }

    /// Has the pool drop the connection instead of taking it back (it may be inside a
    /// transaction nobody will end).
    pub(crate) fn discard(&self) {
        self.broken.store(true, Ordering::Relaxed);
    }
}

/// Opens connections for [`bb8`], each with the pragmas of [`connect`] and the statement
/// timeout.
#[derive(Debug)]
pub(crate) struct Manager {
    options: SqliteConnectOptions,
    statement_timeout: Option<Duration>,
    closed: Arc<AtomicBool>,
}

impl bb8::ManageConnection for Manager {
    type Connection = SqliteConn;
    type Error = sqlx::Error;

    async fn connect(&self) -> Result<SqliteConn, sqlx::Error> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(sqlx::Error::PoolClosed);
        }
        let mut conn = SqliteConnection::connect_with(&self.options).await?;
        let deadline = StatementDeadline::install(&mut conn, self.statement_timeout).await?;
        Ok(SqliteConn {
            conn,
            broken: AtomicBool::new(false),
            deadline,
        })
    }

    async fn is_valid(&self, conn: &mut SqliteConn) -> Result<(), sqlx::Error> {
        conn.conn.ping().await
    }

    fn has_broken(&self, conn: &mut SqliteConn) -> bool {
        conn.broken.load(Ordering::Relaxed) || self.closed.load(Ordering::Relaxed)
    }
}

/// Opens the pool for `url` (`sqlite://path`, `sqlite:path`, `sqlite::memory:`): foreign keys
/// on, `settings.acquire_timeout` as the busy timeout, `settings.statement_timeout` as the
/// statement timeout, the file created when missing and put in WAL mode.
///
/// An in-memory database lives in one connection, so its pool holds exactly one, kept forever,
/// and no statement timeout: an interrupted statement leaves its connection to be dropped, and
/// with it the database.
pub(crate) async fn connect(url: &str, settings: &PoolSettings) -> Result<SqlitePool> {
    let memory = url.contains(":memory:") || url.contains("mode=memory");
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| Error::Config(format!("invalid SQLite URL: {e}")))?
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(settings.acquire_timeout);
    let options = if memory {
        options
    } else {
        options.journal_mode(SqliteJournalMode::Wal)
    };
    let closed = Arc::new(AtomicBool::new(false));
    let manager = Manager {
        options,
        statement_timeout: settings.statement_timeout.filter(|_| !memory),
        closed: closed.clone(),
    };
    if memory {
        // bb8 opens the one connection (its minimum) before it returns, or reports why not.
        let settings = PoolSettings {
            max_connections: 1,
            min_connections: 1,
            idle_timeout: None,
            max_lifetime: None,
            ..settings.clone()
        };
        let pool = pooled::build(manager, &settings).await?;
        return Ok(SqlitePool { pool, closed });
    }
    // The first connection creates the file and switches it to WAL before others open it, and
    // reports a path that cannot be opened now rather than as a timeout on the first call.
    let first = bb8::ManageConnection::connect(&manager).await?;
    let pool = pooled::build(manager, settings).await?;
    // A pool whose minimum is its maximum is full already; the first connection then closes.
    let _ = pool.add(first);
    Ok(SqlitePool { pool, closed })
}

impl SqlitePool {
    /// Takes a connection: [`Error::Unavailable`] when none frees up within the acquire timeout,
    /// or once the pool is closed.
    pub(crate) async fn acquire(&self) -> Result<PooledConn> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(Error::from(sqlx::Error::PoolClosed));
        }
        pooled::checkout(&self.pool).await
    }

    /// Applies the embedded migrations, on a pooled connection (for an in-memory database the
    /// only one there is).
    pub(crate) async fn migrate(&self) -> Result<()> {
        let mut c = self.acquire().await?;
        migrator().run(&mut c.conn).await?;
        Ok(())
    }

    /// The versions recorded as applied (none when the table does not exist yet).
    pub(crate) async fn applied_migrations(&self) -> Result<Vec<i64>> {
        let mut c = self.acquire().await?;
        let rows: std::result::Result<Vec<(i64,)>, sqlx::Error> =
            sqlx::query_as("select version from _crm_migrations where success")
                .fetch_all(&mut c.conn)
                .await;
        match rows {
            Ok(rows) => Ok(rows.into_iter().map(|(v,)| v).collect()),
            Err(sqlx::Error::Database(e)) if e.message().contains("no such table") => {
                Ok(Vec::new())
            }
            Err(e) => Err(track(e, &c.broken)),
        }
    }

    /// What bb8 reports: open and idle connections, and how often a checkout had to wait.
    pub(crate) fn stats(&self) -> super::PoolStats {
        pooled::stats(super::Backend::Sqlite, &self.pool)
    }

    /// Closes the pool: calls that take a connection from now on fail with
    /// [`Error::Unavailable`] (`PoolClosed`); the idle connections close now, the ones in use
    /// when they come back, and this returns once none is open. A closed connection's database
    /// handle is released by its worker thread as the connection is dropped (the last one out
    /// checkpoints the WAL).
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        loop {
            // An idle connection is handed out at once (bb8's first poll), and dropped on its
            // return since the pool is closed. None idle: nothing to wait for here (`get` would
            // wait for one to come back, which the closed pool drops instead).
            while self.pool.state().idle_connections > 0 {
                if tokio::time::timeout(Duration::ZERO, self.pool.get())
                    .await
                    .is_err()
                {
                    break;
                }
            }
            if self.pool.state().connections == 0 {
                return;
            }
            // Connections still in use: closed as they come back.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Converts the error of a statement run on a pooled connection: one interrupted past the
/// statement timeout is [`Error::Unavailable`], as PostgreSQL's cancelled statement is, and
/// leaves the connection to be dropped (SQLite may have rolled back its transaction).
pub(crate) fn failed(e: sqlx::Error, broken: &AtomicBool) -> Error {
    if statement_deadline::interrupted(&e) {
        broken.store(true, Ordering::Relaxed);
        return Error::Unavailable(e);
    }
    track(e, broken)
}

/// The migrations in `crm-core/migrations/sqlite`, recorded in `_crm_migrations`.
pub(crate) fn migrator() -> sqlx::migrate::Migrator {
    let mut m = sqlx::migrate!("migrations/sqlite");
    m.dangerous_set_table_name("_crm_migrations");
    m
}

/// Binds the values of a statement as SQLite arguments.
pub(crate) fn args(values: &[Arg]) -> Result<SqliteArguments> {
    let mut out = SqliteArguments::default();
    for v in values {
        let r = match v {
            Arg::Uuid(v) => out.add(*v),
            Arg::Text(v) => out.add(v.clone()),
            Arg::Int(v) => out.add(*v),
            Arg::Float(v) => out.add(*v),
            Arg::Bool(v) => out.add(*v),
            Arg::Time(v) => out.add(*v),
            Arg::Date(v) => out.add(*v),
            Arg::Json(v) => out.add(v.clone().map(Json)),
            Arg::Array(_) => {
                return Err(Error::Internal("SQLite takes no array parameters".into()));
            }
        };
        r.map_err(|e| Error::Storage(sqlx::Error::Encode(e)))?;
    }
    Ok(out)
}
