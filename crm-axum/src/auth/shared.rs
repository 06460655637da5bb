//! The Redis connection of the `redis` feature: a bb8 pool over multiplexed connections, every
//! call bounded by a timeout, and one log line when Redis goes away and one when it is back.
//!
//! A failed or timed-out call answers `None`; the caller then does what it does without Redis
//! (the rate limits count in process, the caches are not trusted). Nothing here retries: the pool
//! connects again on the next call, so the first call after Redis returns already uses it.
//!
//! The cache epoch: one key, `crm:cache-epoch`, holding a random number that every write which
//! changes what the caches hold (a user's role or state, an API key, a custom-field definition)
//! replaces before it returns. Each request reads it once; a cached entry counts only if it was
//! filled under the current epoch (see `AuthState::epoch`). Random rather than counted, so that a
//! Redis that restarts empty never hands out an epoch seen before.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bb8_redis::RedisConnectionManager;
use bb8_redis::redis;

/// How long one Redis call (taking a connection included) may take before the caller goes on
/// without Redis.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_millis(250);

/// After a failed call, how long calls answer `None` at once instead of trying Redis: a hung
/// Redis then costs one request in this long [`CALL_TIMEOUT`], not every request.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The key of the cache epoch.
const EPOCH_KEY: &str = "crm:cache-epoch";

/// The current epoch, set to `ARGV[1]` first when there is none (a fresh or restarted Redis).
const EPOCH_SCRIPT: &str = "local e = redis.call('GET', KEYS[1]) \
    if not e then e = ARGV[1]; redis.call('SET', KEYS[1], e) end return e";

/// A Redis server shared by the instances of one deployment.
pub(crate) struct SharedStore {
    pool: bb8::Pool<RedisConnectionManager>,
    /// Whether the last call failed (so that only the change is logged).
    down: AtomicBool,
    /// Until when (milliseconds after `started`) calls do not try Redis, after a failure.
    pause_until_ms: AtomicU64,
    started: Instant,
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
            pause_until_ms: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    /// Runs `cmd`; `None` when Redis is unreachable, slow (over [`CALL_TIMEOUT`]) or answers an
    /// error, and for [`RETRY_AFTER`] after such a failure without trying.
    pub(crate) async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Option<T> {
        if self.elapsed_ms() < self.pause_until_ms.load(Ordering::Relaxed) {
            return None;
        }
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
                    tracing::info!(
                        "Redis is reachable again: rate limits and cache epochs are shared again"
                    );
                }
                Some(v)
            }
            Err(e) => {
                let pause = u64::try_from(RETRY_AFTER.as_millis()).unwrap_or(u64::MAX);
                let retry = self.elapsed_ms().saturating_add(pause);
                self.pause_until_ms.store(retry, Ordering::Relaxed);
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        error = %e,
                        "Redis is unreachable: until it is back, rate limits count in this process and cached principals, API keys and definitions are not used"
                    );
                }
                None
            }
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The current cache epoch; `None` when Redis does not answer.
    pub(crate) async fn epoch(&self) -> Option<u64> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(EPOCH_SCRIPT).arg(1).arg(EPOCH_KEY).arg(random());
        let epoch: String = self.query(&cmd).await?;
        epoch.parse().ok()
    }

    /// Starts a new cache epoch: what any instance cached before is not used again.
    pub(crate) async fn advance_epoch(&self) {
        let mut cmd = redis::cmd("SET");
        cmd.arg(EPOCH_KEY).arg(random());
        let _: Option<String> = self.query(&cmd).await;
    }
}

/// A random epoch (the random bits of a UUIDv7).
fn random() -> u64 {
    uuid::Uuid::now_v7().as_u64_pair().1
}
