//! [`PoolSettings`]: how many connections, how long to wait for one, and how long a statement
//! may run.

use std::time::Duration;

use crate::error::{Error, Result};

/// The environment variable [`PoolSettings::from_env`] reads the statement timeout from, in
/// milliseconds (`0` switches it off).
pub const STATEMENT_TIMEOUT_ENV: &str = "CRM_STATEMENT_TIMEOUT_MS";

/// Connection-pool settings.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Most connections open at once (default 10).
    pub max_connections: u32,
    /// Connections kept open when idle (default 0).
    pub min_connections: u32,
    /// How long a call waits for a free connection (default 10 s); also SQLite's busy timeout.
    pub acquire_timeout: Duration,
    /// Idle connections are closed after this long (default 10 min).
    pub idle_timeout: Option<Duration>,
    /// Connections are replaced after this long (default 30 min).
    pub max_lifetime: Option<Duration>,
    /// PostgreSQL: the longest one statement may run before the server cancels it (its
    /// `statement_timeout`, default 30 s, as the ready-made server's request timeout), so that a
    /// request the server gave up on does not keep its query running and its connection busy.
    /// A cancelled statement is [`Error::Unavailable`]. `None` lets statements run without a
    /// bound. Migrations are not subject to it. SQLite ignores it.
    pub statement_timeout: Option<Duration>,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            statement_timeout: Some(Duration::from_secs(30)),
        }
    }
}

impl PoolSettings {
    /// The defaults, with the statement timeout from [`STATEMENT_TIMEOUT_ENV`] when it is set.
    ///
    /// # Errors
    /// [`Error::Config`] when the variable is not a number of milliseconds.
    pub fn from_env() -> Result<Self> {
        let mut settings = Self::default();
        if let Ok(v) = std::env::var(STATEMENT_TIMEOUT_ENV) {
            let ms: u64 = v.trim().parse().map_err(|_| {
                Error::Config(format!(
                    "{STATEMENT_TIMEOUT_ENV} must be a number of milliseconds"
                ))
            })?;
            settings.statement_timeout = (ms > 0).then(|| Duration::from_millis(ms));
        }
        Ok(settings)
    }
}
