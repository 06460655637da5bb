//! [`PoolSettings`]: how many connections, how long to wait for one, and how long a statement
//! may run.

use std::time::Duration;

use crate::error::{Error, Result};

/// The environment variable [`PoolSettings::from_env`] reads the statement timeout from, in
/// milliseconds (`0` switches it off).
pub const STATEMENT_TIMEOUT_ENV: &str = "CRM_STATEMENT_TIMEOUT_MS";

/// The environment variable [`PoolSettings::from_env`] reads the pool's size from
/// ([`PoolSettings::max_connections`], 1 to 1,000).
pub const MAX_CONNECTIONS_ENV: &str = "CRM_POOL_MAX_CONNECTIONS";

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
    /// The longest one statement may run before it is cancelled (default 30 s, as the ready-made
    /// server's request timeout), so that a request the server gave up on does not keep its
    /// query running and its connection busy: PostgreSQL's `statement_timeout`; on SQLite the
    /// library interrupts the statement itself (a progress handler; not for an in-memory
    /// database, whose one connection an interrupted statement would take with it). A cancelled
    /// statement is [`Error::Unavailable`]. `None` lets statements run without a bound.
    /// Migrations are not subject to it.
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
    /// The defaults, with the statement timeout from [`STATEMENT_TIMEOUT_ENV`] and the pool's
    /// size from [`MAX_CONNECTIONS_ENV`] when they are set.
    ///
    /// # Errors
    /// [`Error::Config`] when the timeout is not a number of milliseconds, or the size not a
    /// number from 1 to 1,000.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`PoolSettings::from_env`] reading the variables through `var`.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut settings = Self::default();
        if let Some(v) = var(STATEMENT_TIMEOUT_ENV) {
            let ms: u64 = v.trim().parse().map_err(|_| {
                Error::Config(format!(
                    "{STATEMENT_TIMEOUT_ENV} must be a number of milliseconds"
                ))
            })?;
            settings.statement_timeout = (ms > 0).then(|| Duration::from_millis(ms));
        }
        if let Some(v) = var(MAX_CONNECTIONS_ENV) {
            settings.max_connections = v
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    Error::Config(format!(
                        "{MAX_CONNECTIONS_ENV} must be a number from 1 to 1000"
                    ))
                })?;
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<PoolSettings> {
        PoolSettings::from_vars(|name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn the_environment_sets_the_timeout_and_the_pool_size() {
        let s = from(&[(STATEMENT_TIMEOUT_ENV, "0"), (MAX_CONNECTIONS_ENV, " 32 ")]).unwrap();
        assert_eq!((s.statement_timeout, s.max_connections), (None, 32));
        let s = from(&[]).unwrap();
        assert_eq!(
            (s.statement_timeout, s.max_connections),
            (Some(Duration::from_secs(30)), 10)
        );
        for bad in ["0", "1001", "ten", "-1"] {
            let e = from(&[(MAX_CONNECTIONS_ENV, bad)]).unwrap_err();
            assert!(e.to_string().contains(MAX_CONNECTIONS_ENV), "{bad}: {e}");
        }
        assert!(from(&[(STATEMENT_TIMEOUT_ENV, "soon")]).is_err());
    }
}
