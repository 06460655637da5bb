//! [`PoolStats`]: what a connection pool reports about itself, for an operator's metrics.

use super::Backend;

/// A snapshot of the connection pool ([`crate::Crm::pool_stats`]): how many connections are
/// open, how many of them are idle, and how often callers had to wait for one.
///
/// The library records no metrics itself (it depends on no metrics crate); a host turns these
/// numbers into gauges and counters when it is scraped (crm-axum's `metrics` module does).
/// Counters count from when the pool was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// The backend of the pool.
    pub backend: Backend,
    /// Connections open now, in use or idle.
    pub connections: u32,
    /// Connections open and idle now.
    pub idle: u32,
    /// The most connections the pool opens ([`crate::PoolSettings::max_connections`]; one for an
    /// in-memory SQLite database).
    pub max_connections: u32,
    /// Callers waiting for a connection right now. `None` where a pool does not tell (both
    /// backends' pools do).
    pub pending: Option<u64>,
    /// Checkouts that found no idle connection and had to wait for one. `None` where a pool
    /// does not count them (both backends' pools do).
    pub waits: Option<u64>,
    /// Checkouts that waited longer than the acquire timeout and failed. `None` where a pool
    /// does not count them (both backends' pools do).
    pub timeouts: Option<u64>,
}
