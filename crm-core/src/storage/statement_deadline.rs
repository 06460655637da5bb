//! SQLite's statement timeout. SQLite has no `statement_timeout` of its own: each connection
//! gets a progress handler (called every [`OPS_PER_CHECK`] virtual-machine instructions) that
//! interrupts the running statement once it is past its deadline, which the library sets as
//! [`PoolSettings::statement_timeout`](super::PoolSettings) after the statement's start.
//!
//! The cost on the hot path is one clock read and two atomic stores per statement; no round
//! trip, no allocation. Statements run outside [`StatementDeadline::arm`] (migrations, `BEGIN`,
//! `COMMIT`, `ROLLBACK`, pings) have no deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::SqliteConnection;

/// How many virtual-machine instructions SQLite runs between two looks at the deadline: about
/// a tenth of a millisecond of work, so that a statement overruns its deadline by little, and a
/// look (an atomic load and a clock read) costs well under 1 % of it.
const OPS_PER_CHECK: i32 = 10_000;

/// No deadline: the value of [`StatementDeadline`]'s atomic between statements.
const NONE: u64 = u64::MAX;

/// The deadline of the statement a SQLite connection runs, which its progress handler checks.
#[derive(Debug)]
pub(crate) struct StatementDeadline {
    /// How long one statement may run; `None`: no handler was installed.
    timeout: Option<Duration>,
    /// When the connection opened: deadlines are counted in nanoseconds from it.
    epoch: Instant,
    /// The running statement's deadline, in nanoseconds after `epoch`; [`NONE`] between
    /// statements. Shared with the progress handler on the connection's worker thread.
    deadline: Arc<AtomicU64>,
}

impl StatementDeadline {
    /// Installs the progress handler on `conn` when there is a `timeout` (one trip to the
    /// connection's worker thread, when it opens).
    pub(crate) async fn install(
        conn: &mut SqliteConnection,
        timeout: Option<Duration>,
    ) -> Result<Self, sqlx::Error> {
        let epoch = Instant::now();
        let deadline = Arc::new(AtomicU64::new(NONE));
        if timeout.is_some() {
            let shared = deadline.clone();
            conn.lock_handle()
                .await?
                .set_progress_handler(OPS_PER_CHECK, move || {
                    let at = shared.load(Ordering::Relaxed);
                    // `false` interrupts the statement (`SQLITE_INTERRUPT`).
                    at == NONE || nanos(epoch.elapsed()) <= at
                });
        }
        Ok(Self {
            timeout,
            epoch,
            deadline,
        })
    }

    /// Starts the clock of one statement: its deadline holds until the guard is dropped.
    pub(crate) fn arm(&self) -> Armed<'_> {
        if let Some(timeout) = self.timeout {
            let at = nanos(self.epoch.elapsed().saturating_add(timeout));
            self.deadline.store(at, Ordering::Relaxed);
        }
        Armed(self)
    }
}

/// A statement's deadline in force; dropped, the connection has none again.
pub(crate) struct Armed<'d>(&'d StatementDeadline);

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        if self.0.timeout.is_some() {
            self.0.deadline.store(NONE, Ordering::Relaxed);
        }
    }
}

/// Whether `e` is SQLite's `SQLITE_INTERRUPT` (9): a statement the progress handler stopped.
/// SQLite may have rolled back the transaction it ran in, behind sqlx's back: the connection
/// is not to be used again.
pub(crate) fn interrupted(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("9"))
}

/// `d` in nanoseconds, saturating below [`NONE`] (585 years).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).map_or(NONE - 1, |n| n.min(NONE - 1))
}
