//! A small key-value cache with a time to live: in this process, or in memcached (`--memcache`) so that several
//! gateway instances share it. Used for directory listings (`ftp/listing_cache.rs`) and, with memcached, for
//! Swift tokens ([`SharedTokenCache`]).
//!
//! - Keys are HMAC-SHA256 (hex) of what they name under `cache-secret`: memcached sees no path, user or
//!   password, and instances share entries only when they share the secret.
//! - Values in memcached are encrypted (AES-256-GCM under a key derived from the secret and the entry's name, which
//!   is also the associated data): whoever reads memcached sees no file name, size or time, and cannot move a value
//!   to another key. The cache in this process keeps them in clear.
//! - Values larger than memcached's default item limit (1 MB) are split over several keys; a missing part is a
//!   miss.
//! - memcached down: every call fails fast (short timeouts), the gateway works without the cache, one warning is
//!   logged, and memcached is tried again every few seconds (one info line when it is back).
//! - Tokens are stored encrypted (AES-256-GCM) with a key derived from the secret *and* the credentials,
//!   password included: only a login with the same credentials can find and read them.
//!
//! Not here: what is cached and when it is invalidated (the callers), file data (never cached).
//!
//! The parts: `local.rs` (this process's map), `memcached.rs` (the shared one, its values split, tagged and
//! sealed), `seal.rs` (AES-256-GCM), `tokens.rs` (Swift tokens in the shared cache).

mod local;
mod memcached;
mod seal;
mod tokens;

pub use tokens::SharedTokenCache;

use aws_lc_rs::hmac;
use local::Local;
use memcached::Memcached;
use std::sync::Mutex;
use std::time::Duration;

/// The longest time to live (a larger one is clamped, so no clock arithmetic can overflow).
const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Where entries live.
enum Backend {
    Local(Mutex<Local>),
    Memcached(Box<Memcached>),
}

/// The cache.
pub struct Cache {
    key: hmac::Key,
    backend: Backend,
}

/// What a read saw of a key, for a later conditional store ([`Cache::set_if`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The key was absent (or expired).
    Absent,
    /// The key held a value of this version (memcached's CAS).
    Version(u64),
    /// The cache could not be read: a conditional store must not happen.
    Unknown,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.backend {
            Backend::Local(_) => "local",
            Backend::Memcached(_) => "memcached",
        };
        f.debug_struct("Cache").field("backend", &kind).finish()
    }
}

impl Cache {
    /// A cache in this process only.
    pub fn local(secret: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            backend: Backend::Local(Mutex::new(Local::default())),
        }
    }

    /// A cache in memcached (`host:port` each; keys are spread over the servers by hash).
    pub fn memcached(secret: &[u8], servers: &[String]) -> Self {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        Self {
            backend: Backend::Memcached(Box::new(Memcached::new(&key, servers))),
            key,
        }
    }

    /// Whether entries are shared with other processes.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Memcached(_))
    }

    /// The key naming `parts` (joined unambiguously), as hex HMAC.
    pub fn key(&self, parts: &[&str]) -> String {
        hex::encode(self.mac(parts))
    }

    pub(super) fn mac(&self, parts: &[&str]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        for p in parts {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p.as_bytes());
        }
        ctx.sign()
    }

    /// The value under `key`, if present and not expired.
    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.get_seen(key).await.0
    }

    /// The value under `key` and what was seen, for [`Cache::set_if`].
    pub async fn get_seen(&self, key: &str) -> (Option<Vec<u8>>, Seen) {
        match &self.backend {
            Backend::Local(l) => l.lock().unwrap_or_else(|p| p.into_inner()).get(key),
            Backend::Memcached(m) => m.get(key).await,
        }
    }

    /// Stores `value` under `key` for `ttl`; false when the cache could not be written.
    pub async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> bool {
        let ttl = ttl.min(MAX_TTL);
        match &self.backend {
            Backend::Local(l) => {
                l.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .set(key, value, ttl);
                true
            }
            Backend::Memcached(m) => m.set(key, value, ttl, None).await,
        }
    }

    /// Stores `value` under `key` only if the key is still as `seen` (absent, or that version): a store based on
    /// what was read before a concurrent change must not overwrite the change. True when stored.
    pub async fn set_if(&self, key: &str, seen: &Seen, value: Vec<u8>, ttl: Duration) -> bool {
        let ttl = ttl.min(MAX_TTL);
        match (&self.backend, seen) {
            (_, Seen::Unknown) => false,
            (Backend::Local(l), seen) => l
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .set_if(key, seen, value, ttl),
            (Backend::Memcached(m), seen) => m.set(key, value, ttl, Some(seen.clone())).await,
        }
    }

    /// Removes `key`; false when the cache could not be written.
    pub async fn delete(&self, key: &str) -> bool {
        match &self.backend {
            Backend::Local(l) => {
                l.lock().unwrap_or_else(|p| p.into_inner()).delete(key);
                true
            }
            Backend::Memcached(m) => m.delete(key).await,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_the_secret_and_on_every_part() {
        let a = Cache::local(b"one");
        let b = Cache::local(b"two");
        assert_ne!(a.key(&["ls", "/x"]), b.key(&["ls", "/x"]));
        assert_ne!(a.key(&["ls", "/x"]), a.key(&["ls", "/y"]));
        // Parts are length-prefixed: moving a boundary changes the key.
        assert_ne!(a.key(&["ab", "c"]), a.key(&["a", "bc"]));
        assert_eq!(a.key(&["ls", "/x"]).len(), 64);
    }

    #[tokio::test]
    async fn local_entries_expire_and_can_be_deleted() {
        let c = Cache::local(b"s");
        c.set("k", b"v".to_vec(), Duration::from_millis(100)).await;
        assert_eq!(c.get("k").await.unwrap(), b"v");
        c.delete("k").await;
        assert!(c.get("k").await.is_none());
        c.set("k", b"v".to_vec(), Duration::from_millis(50)).await;
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(c.get("k").await.is_none());
    }

    #[tokio::test]
    async fn a_conditional_store_loses_to_a_change_made_meanwhile() {
        let c = Cache::local(b"s");
        let (_, seen) = c.get_seen("k").await;
        assert_eq!(seen, Seen::Absent);
        // A concurrent writer changes the key after our read...
        assert!(c.set("k", b"newer".to_vec(), Duration::from_secs(60)).await);
        // ...so our store, based on the older read, does not happen.
        assert!(
            !c.set_if("k", &seen, b"older".to_vec(), Duration::from_secs(60))
                .await
        );
        assert_eq!(c.get("k").await.unwrap(), b"newer");
        let (_, seen) = c.get_seen("k").await;
        assert!(
            c.set_if("k", &seen, b"next".to_vec(), Duration::from_secs(60))
                .await
        );
        assert!(
            !c.set_if("k", &Seen::Unknown, b"x".to_vec(), Duration::from_secs(60))
                .await
        );
        // A huge TTL is clamped, not an overflow.
        assert!(c.set("forever", b"v".to_vec(), Duration::MAX).await);
    }
}
