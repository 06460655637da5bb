//! What the pools of both backends share: each is [`bb8`] over plain sqlx connections (sqlx's
//! own pool pings every connection when it comes back, one more round trip per call), built from
//! the same [`PoolSettings`], reporting the same [`PoolStats`], and dropping a connection once
//! an error said it is unusable.

use std::sync::atomic::{AtomicBool, Ordering};

use super::{Backend, PoolSettings, PoolStats};
use crate::error::{Error, Result};

/// Builds a pool of `manager`'s connections as `settings` say. No ping on checkout: a ping
/// would double the round trips of every read, and a broken connection is detected from the
/// error it returns instead ([`track`]).
pub(crate) async fn build<M>(manager: M, settings: &PoolSettings) -> Result<bb8::Pool<M>>
where
    M: bb8::ManageConnection<Error = sqlx::Error>,
{
    Ok(bb8::Pool::builder()
        .max_size(settings.max_connections)
        .min_idle(Some(settings.min_connections).filter(|n| *n > 0))
        .connection_timeout(settings.acquire_timeout)
        .idle_timeout(settings.idle_timeout)
        .max_lifetime(settings.max_lifetime)
        .test_on_check_out(false)
        .build(manager)
        .await?)
}

/// Takes a connection from `pool`; none free within the acquire timeout is
/// [`Error::Unavailable`] (`PoolTimedOut`).
pub(crate) async fn checkout<M>(pool: &bb8::Pool<M>) -> Result<bb8::PooledConnection<'static, M>>
where
    M: bb8::ManageConnection<Error = sqlx::Error>,
{
    pool.get_owned().await.map_err(|e| match e {
        bb8::RunError::User(e) => Error::from(e),
        bb8::RunError::TimedOut => Error::Unavailable(sqlx::Error::PoolTimedOut),
    })
}

/// What bb8 reports about `pool`: open and idle connections, and how often a checkout had to
/// wait.
pub(crate) fn stats<M: bb8::ManageConnection>(backend: Backend, pool: &bb8::Pool<M>) -> PoolStats {
    let state = pool.state();
    let s = &state.statistics;
    PoolStats {
        backend,
        connections: state.connections,
        idle: state.idle_connections,
        max_connections: pool.config().max_size,
        pending: Some(s.pending_gets()),
        waits: Some(s.get_waited),
        timeouts: Some(s.get_timed_out),
    }
}

/// Whether `e` says the server dropped the connection before the statement ran to an end: it
/// is gone (I/O), or the server terminated the session (PostgreSQL's `admin_shutdown`,
/// `crash_shutdown`, `cannot_connect_now`, connection exceptions of class `08`; SQLite has no
/// such codes).
pub(crate) fn is_dropped(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// Marks the connection `broken` when `e` says it is unusable (dropped, a protocol or TLS
/// failure, or on SQLite its worker thread gone), so that the pool drops it instead of taking
/// it back; converts the error.
pub(crate) fn track(e: sqlx::Error, broken: &AtomicBool) -> Error {
    if is_dropped(&e)
        || matches!(
            e,
            sqlx::Error::Protocol(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed
        )
    {
        broken.store(true, Ordering::Relaxed);
    }
    Error::from(e)
}
