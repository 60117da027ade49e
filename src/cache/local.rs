//! This process's cache: a map with expiry times and versions, bounded in bytes, swept of expired entries.
//!
//! Not here: keys (`mod.rs` makes them) or sharing between instances (`memcached.rs`).

use super::Seen;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The most this process keeps in its own cache (keys, values and bookkeeping); beyond it, it starts afresh.
const LOCAL_LIMIT: usize = 64 * 1024 * 1024;
/// Bookkeeping counted per local entry, beside its key and value.
const LOCAL_OVERHEAD: usize = 128;
/// How often the local cache drops its expired entries. Without it they stayed until the cache was full: every
/// listing stored after a write is a new entry, so a busy gateway grew towards `LOCAL_LIMIT` in dead listings.
const LOCAL_SWEEP_EVERY: Duration = Duration::from_secs(10);

/// One entry of this process's cache.
struct LocalEntry {
    expires: Instant,
    version: u64,
    value: Vec<u8>,
}

/// This process's cache: a map with expiry times, bounded in bytes, swept of expired entries every
/// [`LOCAL_SWEEP_EVERY`].
#[derive(Default)]
pub(super) struct Local {
    entries: HashMap<String, LocalEntry>,
    bytes: usize,
    versions: u64,
    /// When the next write sweeps (`None`: at the next write).
    next_sweep: Option<Instant>,
}

impl Local {
    fn cost(key: &str, value: &[u8]) -> usize {
        key.len() + value.len() + LOCAL_OVERHEAD
    }

    pub(super) fn get(&mut self, key: &str) -> (Option<Vec<u8>>, Seen) {
        let now = Instant::now();
        match self.entries.get(key) {
            Some(e) if e.expires > now => (Some(e.value.clone()), Seen::Version(e.version)),
            Some(_) => {
                self.delete(key);
                (None, Seen::Absent)
            }
            None => (None, Seen::Absent),
        }
    }

    pub(super) fn set(&mut self, key: &str, value: Vec<u8>, ttl: Duration) {
        let cost = Self::cost(key, &value);
        if cost > LOCAL_LIMIT / 4 {
            self.delete(key);
            return;
        }
        self.delete(key);
        let now = Instant::now();
        if self.bytes + cost > LOCAL_LIMIT || self.next_sweep.is_none_or(|at| now >= at) {
            self.sweep(now);
        }
        if self.bytes + cost > LOCAL_LIMIT {
            // Still full of live entries: start afresh rather than scan for the oldest under the lock.
            self.entries.clear();
            self.bytes = 0;
        }
        self.versions += 1;
        self.bytes += cost;
        self.entries.insert(
            key.to_owned(),
            LocalEntry {
                expires: now + ttl,
                version: self.versions,
                value,
            },
        );
    }

    pub(super) fn set_if(&mut self, key: &str, seen: &Seen, value: Vec<u8>, ttl: Duration) -> bool {
        let (_, now_seen) = self.get(key);
        if &now_seen != seen {
            return false;
        }
        self.set(key, value, ttl);
        true
    }

    /// Drops the expired entries (and the map's room for them once it is mostly empty).
    fn sweep(&mut self, now: Instant) {
        self.entries.retain(|_, e| e.expires > now);
        self.bytes = self
            .entries
            .iter()
            .map(|(k, e)| Self::cost(k, &e.value))
            .sum();
        if self.entries.capacity() > 4 * self.entries.len().max(256) {
            self.entries.shrink_to_fit();
        }
        self.next_sweep = Some(now + LOCAL_SWEEP_EVERY);
    }

    pub(super) fn delete(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.bytes -= Self::cost(key, &e.value);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn expired_entries_are_swept_without_waiting_for_the_cache_to_fill() {
        let mut l = Local::default();
        for i in 0..10_000 {
            l.set(
                &format!("old{i}"),
                vec![0u8; 100],
                Duration::from_millis(20),
            );
        }
        assert!(l.entries.len() >= 9_000, "swept too early");
        std::thread::sleep(Duration::from_millis(40));
        // The sweep is due (as it is every LOCAL_SWEEP_EVERY): the next write drops every expired entry.
        l.next_sweep = Some(Instant::now());
        l.set("new", vec![1], Duration::from_secs(60));
        assert_eq!(l.entries.len(), 1);
        assert_eq!(l.bytes, Local::cost("new", &[1]));
        assert!(l.entries.capacity() < 4096, "{}", l.entries.capacity());
    }

    #[test]
    fn the_local_cache_stays_within_its_limit() {
        let mut l = Local::default();
        let big = vec![0u8; LOCAL_LIMIT / 5];
        for i in 0..10 {
            l.set(&format!("k{i}"), big.clone(), Duration::from_secs(60));
        }
        assert!(l.bytes <= LOCAL_LIMIT);
        assert!(l.get("k9").0.is_some());
        for i in 0..100_000 {
            l.set(&format!("small{i}"), vec![1], Duration::from_secs(60));
        }
        assert!(l.bytes <= LOCAL_LIMIT);
    }
}
