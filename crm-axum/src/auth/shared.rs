//! The Redis connection of the `redis` feature: a bb8 pool over multiplexed connections, every
//! call bounded by a timeout, and one log line when Redis goes away and one when it is back.
//!
//! A failed or timed-out call answers `None`; the caller then does what it does without Redis
//! (the rate limits count in process). Nothing here retries: the pool connects again on the next
//! call, so the first call after Redis returns already uses it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use bb8_redis::redis;

/// How long one Redis call (taking a connection included) may take before the caller goes on
/// without Redis.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_millis(250);

/// A Redis server shared by the instances of one deployment.
pub(crate) struct SharedStore {
    pool: bb8::Pool<RedisConnectionManager>,
    /// Whether the last call failed (so that only the change is logged).
    down: AtomicBool,
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: not logged.
        f.debug_struct("SharedStore")
            .field("down", &self.down.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SharedStore {
    /// A pool for `url` (`redis://[:password@]host[:port][/db]`). Nothing connects yet: a server
    /// starts while Redis is down, and counts in process until it is up.
    ///
    /// # Errors
    /// The URL does not parse.
    pub(crate) fn open(url: &str) -> Result<Self, redis::RedisError> {
        let manager = RedisConnectionManager::new(url)?;
        let pool = bb8::Pool::builder()
            .max_size(16)
            .connection_timeout(CALL_TIMEOUT)
            // No reaper task: the pool needs no runtime to be built, and a broken connection is
            // found by the check on checkout.
            .idle_timeout(None)
            .max_lifetime(None)
            .build_unchecked(manager);
        Ok(Self {
            pool,
            down: AtomicBool::new(false),
        })
    }

    /// Runs `cmd`; `None` when Redis is unreachable, slow (over [`CALL_TIMEOUT`]) or answers an
    /// error.
    pub(crate) async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Option<T> {
        let call = async {
            let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
            cmd.query_async::<T>(&mut *conn)
                .await
                .map_err(|e| e.to_string())
        };
        let outcome = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("no answer within {CALL_TIMEOUT:?}")),
        };
        match outcome {
            Ok(v) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("Redis is reachable again: rate limits are shared again");
                }
                Some(v)
            }
            Err(e) => {
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        error = %e,
                        "Redis is unreachable: rate limits count in this process until it is back"
                    );
                }
                None
            }
        }
    }
}
