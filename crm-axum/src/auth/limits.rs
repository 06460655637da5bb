//! Rate-limit counters and caches: the rate limits of the auth routes and the principal cache
//! (moka, as crm-core's caches).
//!
//! Every counter lives in a bounded moka cache keyed by a SHA-256 digest (never the caller's raw
//! input) that forgets it once its window has passed, so a flood of distinct keys cannot grow
//! memory past the bound. With the `redis` feature and a Redis URL, the counters that decide
//! live in Redis instead (one hash per key, updated by one Lua script with Redis's clock, so two
//! instances spend one budget); the in-process counters keep counting beside them and decide
//! whenever Redis does not answer (see `shared.rs`).

use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Counters each limiter keeps at most (about 150 bytes each); the least used go first.
pub(crate) const LIMITER_CAPACITY: u64 = 50_000;

/// The first wait of a backoff limiter once its budget is spent; it doubles with every further
/// failure, up to the window.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// A limiter's key: the SHA-256 of what it counts (an address, an account and an address…).
pub(crate) type LimitKey = [u8; 32];

/// The key of `parts` (each length-prefixed, so that `("ab", "c")` and `("a", "bc")` differ).
pub(crate) fn limit_key(parts: &[&[u8]]) -> LimitKey {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// How a limiter refuses once `max` hits are counted.
#[derive(Debug, Clone, Copy)]
enum Policy {
    /// Until the fixed window that began with the first hit ends.
    Window,
    /// For [`FIRST_BACKOFF`] after the last hit, doubling with each further hit, at most the
    /// window; the counter is forgotten after two windows without a hit.
    Backoff,
}

/// A counter as read at one moment (in process or from Redis).
#[derive(Debug, Clone, Copy)]
struct Seen {
    hits: u32,
    since_first: Duration,
    since_last: Duration,
}

/// The counter of the `redis` feature, run atomically by Redis: `KEYS[1]` is the counter (a hash
/// of `n` hits, `f` first and `l` last hit in milliseconds of Redis's clock), `ARGV` are the
/// operation (`hit` or `check`), the window in milliseconds and the policy (`window` or
/// `backoff`). It answers `{hits, ms since the first hit, ms since the last}`, `{0, 0, 0}` for
/// no counter. A window counter expires when its window ends; a backoff counter two windows
/// after its last hit, as the in-process ones.
#[cfg(feature = "redis")]
const COUNTER_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'n', 'f', 'l')
local n, f, l = tonumber(h[1]) or 0, tonumber(h[2]), tonumber(h[3])
local window = tonumber(ARGV[2])
if ARGV[1] == 'hit' then
  if f == nil or (ARGV[3] == 'window' and now >= f + window) then n = 0; f = now end
  n = n + 1
  l = now
  redis.call('HSET', KEYS[1], 'n', n, 'f', f, 'l', l)
  if ARGV[3] == 'window' then
    redis.call('PEXPIREAT', KEYS[1], f + window)
  else
    redis.call('PEXPIRE', KEYS[1], 2 * window)
  end
end
if f == nil then return {0, 0, 0} end
return {n, now - f, now - l}
";

#[derive(Debug, Clone, Copy)]
struct Counter {
    hits: u32,
    first: Instant,
    last: Instant,
}

/// A counter per key, in a bounded cache (and in Redis when one is configured).
pub(crate) struct RateLimiter {
    /// What it limits, for the `crm_rate_limited_total` metric (`sign_in_address`…).
    kind: &'static str,
    max: u32,
    window: Duration,
    policy: Policy,
    counters: moka::sync::Cache<LimitKey, Arc<Mutex<Counter>>>,
    #[cfg(feature = "redis")]
    shared: Option<Arc<super::shared::SharedStore>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("kind", &self.kind)
            .field("max", &self.max)
            .field("window", &self.window)
            .field("policy", &self.policy)
            .field("shared", &self.is_shared())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// At most `max` hits per key in each fixed `window`; `kind` names it in metrics.
    pub(crate) fn window(kind: &'static str, max: u32, window: Duration, capacity: u64) -> Self {
        Self::new(kind, max, window, Policy::Window, capacity)
    }

    /// `max` hits per key, then exponential backoff (1 s, 2 s, 4 s… at most `window`); `kind`
    /// names it in metrics.
    pub(crate) fn backoff(kind: &'static str, max: u32, window: Duration, capacity: u64) -> Self {
        Self::new(kind, max, window, Policy::Backoff, capacity)
    }

    fn new(kind: &'static str, max: u32, window: Duration, policy: Policy, capacity: u64) -> Self {
        let builder = moka::sync::Cache::builder().max_capacity(capacity);
        let counters = match policy {
            Policy::Window => builder.time_to_live(window),
            Policy::Backoff => builder.time_to_idle(window.saturating_mul(2)),
        }
        .build();
        Self {
            kind,
            max,
            window,
            policy,
            counters,
            #[cfg(feature = "redis")]
            shared: None,
        }
    }

    /// Counts in `store` (shared with other instances) while it answers.
    #[cfg(feature = "redis")]
    pub(crate) fn shared(mut self, store: Option<Arc<super::shared::SharedStore>>) -> Self {
        self.shared = store;
        self
    }

    #[cfg(feature = "redis")]
    fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    #[cfg(not(feature = "redis"))]
    fn is_shared(&self) -> bool {
        false
    }

    /// `Ok` when `key` may go on (without counting it); otherwise the 429 with how long it must
    /// wait (counted in the `crm_rate_limited_total` metric by the limiter's kind).
    pub(crate) async fn check(&self, key: &LimitKey) -> Result<(), crm_core::Error> {
        let seen = match self.shared_call(key, "check").await {
            Some(seen) => seen,
            None => self.local(key),
        };
        match seen.and_then(|seen| self.wait(seen)) {
            Some(retry_after) => {
                #[cfg(feature = "metrics")]
                crate::metrics::rate_limited(self.kind);
                Err(crm_core::Error::RateLimited { retry_after })
            }
            None => Ok(()),
        }
    }

    /// Checks `key` and, when it may go on, counts the hit.
    pub(crate) async fn spend(&self, key: LimitKey) -> Result<(), crm_core::Error> {
        self.check(&key).await?;
        self.hit(key).await;
        Ok(())
    }

    /// The in-process counter of `key` as seen now.
    fn local(&self, key: &LimitKey) -> Option<Seen> {
        let counter = self.counters.get(key)?;
        let c = *counter.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        Some(Seen {
            hits: c.hits,
            since_first: now.saturating_duration_since(c.first),
            since_last: now.saturating_duration_since(c.last),
        })
    }

    /// How long a counter seen as `seen` must still wait, if at all.
    fn wait(&self, seen: Seen) -> Option<Duration> {
        if seen.hits < self.max {
            return None;
        }
        let (blocked_for, since) = match self.policy {
            Policy::Window => (self.window, seen.since_first),
            Policy::Backoff => {
                let doublings = (seen.hits - self.max).min(30);
                let backoff = FIRST_BACKOFF.saturating_mul(1 << doublings);
                (backoff.min(self.window), seen.since_last)
            }
        };
        blocked_for.checked_sub(since).filter(|d| !d.is_zero())
    }

    /// Counts one hit of `key` (in Redis when it answers, and in process in any case, so that
    /// the limit still holds per process while Redis is away).
    pub(crate) async fn hit(&self, key: LimitKey) {
        self.shared_call(&key, "hit").await;
        let now = Instant::now();
        let fresh = Counter {
            hits: 0,
            first: now,
            last: now,
        };
        let entry = self.counters.get_with(key, || Arc::new(Mutex::new(fresh)));
        let mut c = entry.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(self.policy, Policy::Window) && now >= c.first + self.window {
            *c = fresh;
        }
        c.hits = c.hits.saturating_add(1);
        c.last = now;
    }

    /// Forgets `key` (a successful sign-in clears its failures).
    pub(crate) async fn reset(&self, key: &LimitKey) {
        #[cfg(feature = "redis")]
        if let Some(store) = &self.shared {
            let _: Option<i64> = store
                .query(bb8_redis::redis::cmd("DEL").arg(self.redis_key(key)))
                .await;
        }
        self.counters.invalidate(key);
    }

    /// Runs the counter script on Redis (`op` is `hit` or `check`): `None` without Redis or when
    /// it does not answer, `Some(None)` when it holds no counter for `key`.
    #[cfg(feature = "redis")]
    async fn shared_call(&self, key: &LimitKey, op: &str) -> Option<Option<Seen>> {
        let store = self.shared.as_ref()?;
        let window_ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        let policy = match self.policy {
            Policy::Window => "window",
            Policy::Backoff => "backoff",
        };
        let mut cmd = bb8_redis::redis::cmd("EVAL");
        cmd.arg(COUNTER_SCRIPT)
            .arg(1)
            .arg(self.redis_key(key))
            .arg(op)
            .arg(window_ms)
            .arg(policy);
        let reply: Vec<u64> = store.query(&cmd).await?;
        let &[hits, since_first, since_last] = reply.as_slice() else {
            return None;
        };
        Some((hits > 0).then(|| Seen {
            hits: u32::try_from(hits).unwrap_or(u32::MAX),
            since_first: Duration::from_millis(since_first),
            since_last: Duration::from_millis(since_last),
        }))
    }

    #[cfg(not(feature = "redis"))]
    async fn shared_call(&self, _key: &LimitKey, _op: &str) -> Option<Option<Seen>> {
        None
    }

    /// The Redis key of `key`: `crm:rate:<kind>:<hex digest>`.
    #[cfg(feature = "redis")]
    fn redis_key(&self, key: &LimitKey) -> String {
        use std::fmt::Write as _;
        let mut k = format!("crm:rate:{}:", self.kind);
        for b in key {
            let _ = write!(k, "{b:02x}");
        }
        k
    }

    /// How many counters are kept (after the cache's pending evictions).
    #[cfg(test)]
    fn len(&self) -> u64 {
        self.counters.run_pending_tasks();
        self.counters.entry_count()
    }
}

/// A map whose entries expire after a fixed time (moka); with a zero time it keeps nothing.
pub(crate) struct TtlCache<K, V> {
    entries: Option<moka::sync::Cache<K, V>>,
}

impl<K, V> std::fmt::Debug for TtlCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtlCache")
            .field("enabled", &self.entries.is_some())
            .finish_non_exhaustive()
    }
}

impl<K, V> TtlCache<K, V>
where
    K: Eq + Hash + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(ttl: Duration) -> Self {
        let entries = (!ttl.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build()
        });
        Self { entries }
    }

    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.entries.as_ref()?.get(key)
    }

    pub(crate) fn insert(&self, key: K, value: V) {
        if let Some(entries) = &self.entries {
            entries.insert(key, value);
        }
    }

    pub(crate) fn clear(&self) {
        if let Some(entries) = &self.entries {
            entries.invalidate_all();
        }
    }

    pub(crate) fn remove(&self, key: &K) {
        if let Some(entries) = &self.entries {
            entries.invalidate(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> LimitKey {
        limit_key(&[s.as_bytes()])
    }

    #[tokio::test]
    async fn a_window_limiter_counts_within_its_window_and_says_how_long_to_wait() {
        let l = RateLimiter::window("test", 2, Duration::from_secs(60), 100);
        assert!(l.check(&k("a")).await.is_ok());
        l.hit(k("a")).await;
        l.hit(k("a")).await;
        let Err(crm_core::Error::RateLimited { retry_after }) = l.check(&k("a")).await else {
            panic!("limited expected")
        };
        assert!(retry_after > Duration::from_secs(59) && retry_after <= Duration::from_secs(60));
        assert!(l.check(&k("b")).await.is_ok());
        l.reset(&k("a")).await;
        assert!(l.check(&k("a")).await.is_ok());
    }

    #[tokio::test]
    async fn a_backoff_limiter_doubles_its_wait() {
        let l = RateLimiter::backoff("test", 2, Duration::from_secs(60), 100);
        async fn wait(l: &RateLimiter) -> Duration {
            match l.check(&k("a")).await {
                Err(crm_core::Error::RateLimited { retry_after }) => retry_after,
                _ => Duration::ZERO,
            }
        }
        l.hit(k("a")).await;
        assert_eq!(wait(&l).await, Duration::ZERO);
        l.hit(k("a")).await;
        assert!(
            wait(&l).await > Duration::from_millis(900) && wait(&l).await <= Duration::from_secs(1)
        );
        l.hit(k("a")).await;
        l.hit(k("a")).await;
        assert!(
            wait(&l).await > Duration::from_millis(3900)
                && wait(&l).await <= Duration::from_secs(4)
        );
    }

    #[tokio::test]
    async fn a_flood_of_distinct_keys_stays_within_the_bound() {
        let l = RateLimiter::window("test", 5, Duration::from_secs(900), 1_000);
        for i in 0..20_000 {
            l.hit(k(&format!("attacker-{i}"))).await;
        }
        assert!(l.len() <= 1_000, "{} counters kept", l.len());
    }

    #[test]
    fn keys_are_length_prefixed() {
        assert_ne!(limit_key(&[b"ab", b"c"]), limit_key(&[b"a", b"bc"]));
    }

    #[test]
    fn cache_with_zero_ttl_keeps_nothing() {
        let c = TtlCache::new(Duration::ZERO);
        c.insert(1, 1);
        assert_eq!(c.get(&1), None);
    }
}
