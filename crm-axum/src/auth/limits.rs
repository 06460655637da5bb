//! In-process counters and caches: login rate limits (fixed windows) and the principal cache
//! (moka, as crm-core's caches).
//!
//! Per process: behind a load balancer each instance counts on its own (a shared store such as
//! Redis would make the limits global; not done yet).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before a map is swept of expired ones.
const SWEEP_AT: usize = 10_000;

/// A fixed-window counter per key.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    max: u32,
    window: Duration,
    hits: Mutex<HashMap<String, (u32, Instant)>>,
}

impl RateLimiter {
    pub(crate) fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` is still under its limit (without counting).
    pub(crate) fn allows(&self, key: &str) -> bool {
        let now = Instant::now();
        let hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        match hits.get(key) {
            Some((n, start)) if now.duration_since(*start) < self.window => *n < self.max,
            _ => true,
        }
    }

    /// Counts one hit of `key`.
    pub(crate) fn hit(&self, key: &str) {
        let now = Instant::now();
        let mut hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        if hits.len() >= SWEEP_AT {
            let window = self.window;
            hits.retain(|_, (_, start)| now.duration_since(*start) < window);
        }
        let entry = hits.entry(key.to_owned()).or_insert((0, now));
        if now.duration_since(entry.1) >= self.window {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
    }

    /// Forgets `key` (a successful login clears its account's failures).
    pub(crate) fn reset(&self, key: &str) {
        self.hits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
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

    #[test]
    fn limiter_counts_within_a_window() {
        let l = RateLimiter::new(2, Duration::from_secs(60));
        assert!(l.allows("a"));
        l.hit("a");
        l.hit("a");
        assert!(!l.allows("a") && l.allows("b"));
        l.reset("a");
        assert!(l.allows("a"));
    }

    #[test]
    fn cache_with_zero_ttl_keeps_nothing() {
        let c = TtlCache::new(Duration::ZERO);
        c.insert(1, 1);
        assert_eq!(c.get(&1), None);
    }
}
