//! SQLite: the embedded default. One file (or one in-memory database), WAL mode, foreign keys
//! on, writers serialized by `BEGIN IMMEDIATE` and a busy timeout.
//!
//! SQLite has no row-level security: tenancy rests on the machinery's `organization_id`
//! filters (and the composite keys), which the same tests exercise on both backends.

use std::str::FromStr;

use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::types::Json;
use sqlx::{Arguments as _, SqlitePool};

use super::Arg;
use crate::error::{Error, Result};
use crate::storage::PoolSettings;

/// Opens the pool for `url` (`sqlite://path`, `sqlite:path`, `sqlite::memory:`).
///
/// An in-memory database lives in one connection, so its pool holds exactly one, kept forever.
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
    let pool = if memory {
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        SqlitePoolOptions::new()
            .max_connections(settings.max_connections)
            .min_connections(settings.min_connections)
            .idle_timeout(settings.idle_timeout)
            .max_lifetime(settings.max_lifetime)
    };
    // No ping on checkout: the connection lives in this process (a ping is one more trip to
    // its worker thread per call, and a broken one reports on its next statement anyway), and
    // the PostgreSQL pool does not ping either.
    Ok(pool
        .test_before_acquire(false)
        .acquire_timeout(settings.acquire_timeout)
        .connect_with(options)
        .await?)
}

/// What sqlx's pool reports: open and idle connections (it counts no waits).
pub(crate) fn stats(pool: &SqlitePool) -> super::PoolStats {
    let connections = pool.size();
    super::PoolStats {
        backend: super::Backend::Sqlite,
        connections,
        idle: u32::try_from(pool.num_idle()).unwrap_or(connections),
        max_connections: pool.options().get_max_connections(),
        pending: None,
        waits: None,
        timeouts: None,
    }
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
        };
        r.map_err(|e| Error::Storage(sqlx::Error::Encode(e)))?;
    }
    Ok(out)
}
