//! In-process counters and caches: the rate limits of the auth routes and the principal cache
//! (moka, as crm-core's caches).
//!
//! Per process: behind a load balancer each instance counts on its own (a shared store such as
//! Redis would make the limits global; not done yet). Every counter lives in a bounded moka
//! cache keyed by a SHA-256 digest (never the caller's raw input) that forgets it once its
//! window has passed, so a flood of distinct keys cannot grow memory past the bound.

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

#[derive(Debug, Clone, Copy)]
struct Counter {
    hits: u32,
    first: Instant,
    last: Instant,
}

/// A counter per key, in a bounded cache.
pub(crate) struct RateLimiter {
    /// What it limits, for the `crm_rate_limited_total` metric (`sign_in_address`…).
    kind: &'static str,
    max: u32,
    window: Duration,
    policy: Policy,
    counters: moka::sync::Cache<LimitKey, Arc<Mutex<Counter>>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("kind", &self.kind)
            .field("max", &self.max)
            .field("window", &self.window)
            .field("policy", &self.policy)
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
        }
    }

    /// `Ok` when `key` may go on (without counting it); otherwise the 429 with how long it must
    /// wait (counted in the `crm_rate_limited_total` metric by the limiter's kind).
    pub(crate) fn check(&self, key: &LimitKey) -> Result<(), crm_core::Error> {
        let Some(counter) = self.counters.get(key) else {
            return Ok(());
        };
        let counter = *counter.lock().unwrap_or_else(|p| p.into_inner());
        match self.wait(&counter, Instant::now()) {
            Some(retry_after) => {
                #[cfg(feature = "metrics")]
                crate::metrics::rate_limited(self.kind);
                Err(crm_core::Error::RateLimited { retry_after })
            }
            None => Ok(()),
        }
    }

    /// How long `counter` must still wait at `now`, if at all.
    fn wait(&self, c: &Counter, now: Instant) -> Option<Duration> {
        if c.hits < self.max {
            return None;
        }
        let until = match self.policy {
            Policy::Window => c.first + self.window,
            Policy::Backoff => {
                let doublings = (c.hits - self.max).min(30);
                c.last
                    + FIRST_BACKOFF
                        .saturating_mul(1 << doublings)
                        .min(self.window)
            }
        };
        until.checked_duration_since(now).filter(|d| !d.is_zero())
    }

    /// Counts one hit of `key`.
    pub(crate) fn hit(&self, key: LimitKey) {
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
    pub(crate) fn reset(&self, key: &LimitKey) {
        self.counters.invalidate(key);
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

    #[test]
    fn a_window_limiter_counts_within_its_window_and_says_how_long_to_wait() {
        let l = RateLimiter::window("test", 2, Duration::from_secs(60), 100);
        assert!(l.check(&k("a")).is_ok());
        l.hit(k("a"));
        l.hit(k("a"));
        let Err(crm_core::Error::RateLimited { retry_after }) = l.check(&k("a")) else {
            panic!("limited expected")
        };
        assert!(retry_after > Duration::from_secs(59) && retry_after <= Duration::from_secs(60));
        assert!(l.check(&k("b")).is_ok());
        l.reset(&k("a"));
        assert!(l.check(&k("a")).is_ok());
    }

    #[test]
    fn a_backoff_limiter_doubles_its_wait() {
        let l = RateLimiter::backoff("test", 2, Duration::from_secs(60), 100);
        let wait = |l: &RateLimiter| match l.check(&k("a")) {
            Err(crm_core::Error::RateLimited { retry_after }) => retry_after,
            _ => Duration::ZERO,
        };
        l.hit(k("a"));
        assert_eq!(wait(&l), Duration::ZERO);
        l.hit(k("a"));
        assert!(wait(&l) > Duration::from_millis(900) && wait(&l) <= Duration::from_secs(1));
        l.hit(k("a"));
        l.hit(k("a"));
        assert!(wait(&l) > Duration::from_millis(3900) && wait(&l) <= Duration::from_secs(4));
    }

    #[test]
    fn a_flood_of_distinct_keys_stays_within_the_bound() {
        let l = RateLimiter::window("test", 5, Duration::from_secs(900), 1_000);
        for i in 0..20_000 {
            l.hit(k(&format!("attacker-{i}")));
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
