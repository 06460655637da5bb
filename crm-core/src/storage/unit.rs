//! Units of work: one connection in one transaction, shared by every service call made through
//! the [`crate::Tenant`] that [`crate::Tenant::transaction`] hands out. Each call on it runs in
//! a savepoint of that transaction (so a failed call undoes only itself, and PostgreSQL's
//! transaction stays usable); the unit commits or rolls back as a whole.
//!
//! The transaction is begun and ended with plain statements (`begin`, `savepoint`, `commit`)
//! rather than sqlx's `Transaction`, which borrows its connection and could not be shared by
//! handles that outlive one call.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

use super::{Conn, Session, Sql, Tx};
use crate::error::{Error, Result};

/// The savepoint each call in a unit runs in. One name serves every level: `release` and
/// `rollback to` address the most recent savepoint of that name.
macro_rules! savepoint {
    ($verb:literal) => {
        concat!($verb, " crm_unit")
    };
}

/// The shared connection of a unit of work (`None` once it has committed or rolled back).
pub(crate) struct Unit {
    session: Arc<Mutex<Option<Session>>>,
}

impl std::fmt::Debug for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unit").finish_non_exhaustive()
    }
}

impl Unit {
    /// Begins a transaction on `session` (on SQLite `begin immediate`, as every write there).
    pub(crate) async fn begin(mut session: Session) -> Result<Self> {
        let begin = session.conn_in_transaction().backend().begin_write();
        session
            .conn_in_transaction()
            .execute(&Sql::new(begin))
            .await?;
        Ok(Self {
            session: Arc::new(Mutex::new(Some(session))),
        })
    }

    /// The connection, for one call at a time (calls made concurrently on one unit queue).
    pub(crate) async fn lock(&self) -> Result<UnitSession> {
        OwnedMutexGuard::try_map(self.session.clone().lock_owned().await, Option::as_mut)
            .map(UnitSession)
            .map_err(|_| Error::conflict("unit_ended", "this unit of work has already ended"))
    }

    /// Opens a savepoint that spans several calls (a unit of work nested in this one).
    pub(crate) async fn open_savepoint(&self) -> Result<()> {
        let mut session = self.lock().await?;
        session.savepoint().await.map(drop)
    }

    /// Releases (`keep`) or rolls back to the savepoint [`Unit::open_savepoint`] opened.
    pub(crate) async fn close_savepoint(&self, keep: bool) -> Result<()> {
        let mut session = self.lock().await?;
        let mut conn = session.conn_in_transaction();
        if keep {
            release(&mut conn).await
        } else {
            rollback_to(&mut conn).await
        }
    }

    /// Commits (`commit`) or rolls back the whole unit; later calls on its handles fail.
    pub(crate) async fn end(&self, commit: bool) -> Result<()> {
        let mut guard = self.session.lock().await;
        let Some(mut session) = guard.take() else {
            return Err(Error::conflict(
                "unit_ended",
                "this unit of work has already ended",
            ));
        };
        let statement = if commit { "commit" } else { "rollback" };
        session
            .conn_in_transaction()
            .execute(&Sql::new(statement))
            .await?;
        Ok(())
    }
}

impl Drop for Unit {
    /// A unit dropped before it ended (its future was cancelled, or its work panicked) must not
    /// return its connection to the pool inside an open transaction: it is rolled back on a
    /// task of its own, or, without a runtime, closed.
    fn drop(&mut self) {
        let Ok(mut guard) = self.session.try_lock() else {
            return;
        };
        let Some(session) = guard.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let mut session = session;
                    let _ = session
                        .conn_in_transaction()
                        .execute(&Sql::new("rollback"))
                        .await;
                });
            }
            Err(_) => session.discard(),
        }
    }
}

/// The connection of a unit of work, held for one call.
pub(crate) struct UnitSession(OwnedMappedMutexGuard<Option<Session>, Session>);

impl UnitSession {
    /// Starts a savepoint: the call's own atomic part of the unit.
    pub(crate) async fn savepoint(&mut self) -> Result<Tx<'_>> {
        let mut conn = self.0.conn_in_transaction();
        conn.execute(&Sql::new(savepoint!("savepoint"))).await?;
        Ok(Tx::Savepoint(conn))
    }
}

/// Releases the savepoint of a call that succeeded.
pub(super) async fn release(conn: &mut Conn<'_>) -> Result<()> {
    conn.execute(&Sql::new(savepoint!("release savepoint")))
        .await
        .map(drop)
}

/// Undoes the call whose savepoint this is.
pub(super) async fn rollback_to(conn: &mut Conn<'_>) -> Result<()> {
    conn.execute(&Sql::new(savepoint!("rollback to savepoint")))
        .await?;
    release(conn).await
}

impl Deref for UnitSession {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.0
    }
}

impl DerefMut for UnitSession {
    fn deref_mut(&mut self) -> &mut Session {
        &mut self.0
    }
}
