//! A small key-value cache with a time to live: in this process, or in memcached (`--memcache`) so that several
//! gateway instances share it. Used for directory listings (`ftp/listing_cache.rs`) and, with memcached, for
//! Swift tokens ([`SharedTokenCache`]).
//!
//! - Keys are HMAC-SHA256 (hex) of what they name under `cache-secret`: memcached sees no path, user or
//!   password, and instances share entries only when they share the secret.
//! - Values larger than memcached's default item limit (1 MB) are split over several keys; a missing part is a
//!   miss.
//! - memcached down: every call fails fast (short timeouts), the gateway works without the cache, one warning is
//!   logged, and memcached is tried again every few seconds (one info line when it is back).
//! - Tokens are stored encrypted (AES-256-GCM) with a key derived from the secret *and* the credentials,
//!   password included: only a login with the same credentials can find and read them.
//!
//! Not here: what is cached and when it is invalidated (the callers), file data (never cached).

use crate::swift::{SharedTokens, Token};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The largest piece stored under one memcached key (its default item limit is 1 MiB, key and header included).
const PART: usize = 900 * 1024;
/// How long memcached may take before the gateway goes on without it.
const MEMCACHED_TIMEOUT: Duration = Duration::from_millis(500);
/// After a failure, how long memcached is left alone before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// The most this process keeps in its own cache (values' bytes); beyond it, the oldest entries go.
const LOCAL_LIMIT: usize = 64 * 1024 * 1024;

/// Where entries live.
enum Backend {
    Local(Mutex<Local>),
    Memcached(Memcached),
}

/// The cache.
pub struct Cache {
    key: hmac::Key,
    backend: Backend,
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
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            backend: Backend::Memcached(Memcached {
                servers: servers.to_vec(),
                client: Mutex::new(None),
                down_since: Mutex::new(None),
                said_down: AtomicBool::new(false),
            }),
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

    fn mac(&self, parts: &[&str]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        for p in parts {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p.as_bytes());
        }
        ctx.sign()
    }

    /// The value under `key`, if present and not expired.
    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        match &self.backend {
            Backend::Local(l) => l.lock().unwrap_or_else(|p| p.into_inner()).get(key),
            Backend::Memcached(m) => m.get(key).await,
        }
    }

    /// Stores `value` under `key` for `ttl`.
    pub async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        match &self.backend {
            Backend::Local(l) => l
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .set(key, value, ttl),
            Backend::Memcached(m) => m.set(key, value, ttl).await,
        }
    }

    /// Removes `key`.
    pub async fn delete(&self, key: &str) {
        match &self.backend {
            Backend::Local(l) => l.lock().unwrap_or_else(|p| p.into_inner()).delete(key),
            Backend::Memcached(m) => m.delete(key).await,
        }
    }
}

/// This process's cache: a map with expiry times, bounded in bytes.
#[derive(Default)]
struct Local {
    entries: HashMap<String, (Instant, Instant, Vec<u8>)>,
    bytes: usize,
}

impl Local {
    fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        let now = Instant::now();
        match self.entries.get(key) {
            Some((_, expires, v)) if *expires > now => Some(v.clone()),
            Some(_) => {
                self.delete(key);
                None
            }
            None => None,
        }
    }

    fn set(&mut self, key: &str, value: Vec<u8>, ttl: Duration) {
        if value.len() > LOCAL_LIMIT / 4 {
            return;
        }
        self.delete(key);
        let now = Instant::now();
        if self.bytes + value.len() > LOCAL_LIMIT {
            self.entries.retain(|_, (_, expires, _)| *expires > now);
            self.bytes = self.entries.values().map(|(_, _, v)| v.len()).sum();
        }
        while self.bytes + value.len() > LOCAL_LIMIT {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (stored, _, _))| *stored)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.delete(&oldest);
        }
        self.bytes += value.len();
        self.entries.insert(key.to_owned(), (now, now + ttl, value));
    }

    fn delete(&mut self, key: &str) {
        if let Some((_, _, v)) = self.entries.remove(key) {
            self.bytes -= v.len();
        }
    }
}

/// memcached through the `memcache` crate (synchronous, pooled), run on the blocking pool.
struct Memcached {
    servers: Vec<String>,
    client: Mutex<Option<Arc<memcache::Client>>>,
    down_since: Mutex<Option<Instant>>,
    said_down: AtomicBool,
}

/// The first byte of a stored value: the value itself follows, or a part count (u32, big endian).
const WHOLE: u8 = 0;
const SPLIT: u8 = 1;

impl Memcached {
    /// The client, unless memcached failed less than [`RETRY_AFTER`] ago.
    fn client(&self) -> Option<Arc<memcache::Client>> {
        if self
            .down_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|t| t.elapsed() < RETRY_AFTER)
        {
            return None;
        }
        let mut slot = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.as_ref() {
            return Some(Arc::clone(c));
        }
        let mut builder = memcache::Client::builder()
            .with_connection_timeout(MEMCACHED_TIMEOUT)
            .with_read_timeout(MEMCACHED_TIMEOUT)
            .with_write_timeout(MEMCACHED_TIMEOUT)
            .with_max_pool_size(8)
            .with_min_idle_conns(0);
        for s in &self.servers {
            builder = match builder.add_server(format!("memcache://{s}?tcp_nodelay=true")) {
                Ok(b) => b,
                Err(e) => {
                    self.failed(&e);
                    return None;
                }
            };
        }
        match builder.build() {
            Ok(c) => {
                let c = Arc::new(c);
                *slot = Some(Arc::clone(&c));
                Some(c)
            }
            Err(e) => {
                self.failed(&e);
                None
            }
        }
    }

    fn failed(&self, e: &dyn std::fmt::Display) {
        *self.down_since.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        // Connections may be half-dead: start from a new pool next time.
        *self.client.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if !self.said_down.swap(true, Ordering::Relaxed) {
            tracing::warn!(servers = ?self.servers, error = %e, "memcached is unreachable: working without the shared cache until it is back");
        }
    }

    fn worked(&self) {
        *self.down_since.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if self.said_down.swap(false, Ordering::Relaxed) {
            tracing::info!(servers = ?self.servers, "memcached is back: using the shared cache again");
        }
    }

    /// Runs `op` with the client on the blocking pool; `None` when memcached is down or fails.
    async fn run<T, F>(&self, op: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(&memcache::Client) -> Result<T, memcache::MemcacheError> + Send + 'static,
    {
        let client = self.client()?;
        match tokio::task::spawn_blocking(move || op(&client)).await {
            Ok(Ok(v)) => {
                self.worked();
                Some(v)
            }
            Ok(Err(e)) => {
                self.failed(&e);
                None
            }
            Err(e) => {
                self.failed(&e);
                None
            }
        }
    }

    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let key = key.to_owned();
        self.run(move |c| {
            let Some(head) = c.get::<Vec<u8>>(&key)? else {
                return Ok(None);
            };
            match head.split_first() {
                Some((&WHOLE, rest)) => Ok(Some(rest.to_vec())),
                Some((&SPLIT, count)) if count.len() == 4 => {
                    let n = u32::from_be_bytes([count[0], count[1], count[2], count[3]]) as usize;
                    let names: Vec<String> = (0..n).map(|i| format!("{key}.{i}")).collect();
                    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                    let mut parts = c.gets::<Vec<u8>>(&refs)?;
                    let mut out = Vec::new();
                    for name in &names {
                        match parts.remove(name) {
                            Some(p) => out.extend_from_slice(&p),
                            None => return Ok(None),
                        }
                    }
                    Ok(Some(out))
                }
                _ => Ok(None),
            }
        })
        .await
        .flatten()
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        let key = key.to_owned();
        // memcached reads expirations over 30 days as absolute times; ours are far shorter.
        let ttl = ttl.as_secs().clamp(1, 30 * 24 * 3600) as u32;
        self.run(move |c| {
            if value.len() < PART {
                let mut whole = Vec::with_capacity(value.len() + 1);
                whole.push(WHOLE);
                whole.extend_from_slice(&value);
                return c.set(&key, whole.as_slice(), ttl);
            }
            let parts: Vec<&[u8]> = value.chunks(PART).collect();
            for (i, p) in parts.iter().enumerate() {
                c.set(&format!("{key}.{i}"), *p, ttl)?;
            }
            let mut head = vec![SPLIT];
            head.extend_from_slice(&(parts.len() as u32).to_be_bytes());
            c.set(&key, head.as_slice(), ttl)
        })
        .await;
    }

    async fn delete(&self, key: &str) {
        let key = key.to_owned();
        // Deleting the head is enough: parts without a head are never read, and expire.
        self.run(move |c| c.delete(&key).map(|_| ())).await;
    }
}

/// Swift tokens in the shared cache, encrypted per credentials.
#[derive(Debug)]
pub struct SharedTokenCache {
    cache: Arc<Cache>,
}

impl SharedTokenCache {
    /// Tokens stored in `cache` (memcached).
    pub fn new(cache: Arc<Cache>) -> Self {
        Self { cache }
    }

    fn names(&self, material: &[u8]) -> (String, LessSafeKey) {
        let material = hex::encode(material);
        let id = self.cache.key(&["token", &material]);
        let secret = self.cache.mac(&["token-key", &material]);
        // HMAC-SHA256 gives exactly the 32 bytes AES-256 wants.
        let key = UnboundKey::new(&AES_256_GCM, secret.as_ref())
            .map(LessSafeKey::new)
            .unwrap_or_else(|_| unreachable!("a 32-byte key is a valid AES-256 key"));
        (id, key)
    }
}

/// What is encrypted: the token and where it is valid.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredToken {
    storage_url: String,
    token: String,
    expires_at: Option<u64>,
    issued_at: u64,
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A v1 token with no announced expiry is shared for this long.
const TOKEN_TTL_UNKNOWN: Duration = Duration::from_secs(3600);

#[async_trait::async_trait]
impl SharedTokens for SharedTokenCache {
    async fn load(&self, material: &[u8]) -> Option<Token> {
        let (id, key) = self.names(material);
        let mut stored = self.cache.get(&id).await?;
        if stored.len() < NONCE_LEN {
            return None;
        }
        let mut sealed = stored.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&stored).ok()?;
        let plain = key
            .open_in_place(nonce, Aad::from(id.as_bytes()), &mut sealed)
            .ok()?;
        let t: StoredToken = serde_json::from_slice(plain).ok()?;
        Some(Token {
            storage_url: t.storage_url.parse().ok()?,
            token: crate::swift::Secret::new(t.token),
            expires_at: t
                .expires_at
                .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s)),
            issued_at: SystemTime::UNIX_EPOCH + Duration::from_secs(t.issued_at),
        })
    }

    async fn store(&self, material: &[u8], token: &Token) {
        let (id, key) = self.names(material);
        let ttl = match token.expires_at {
            Some(e) => match e.duration_since(SystemTime::now()) {
                Ok(left) => left,
                Err(_) => return,
            },
            None => TOKEN_TTL_UNKNOWN,
        };
        let plain = StoredToken {
            storage_url: token.storage_url.to_string(),
            token: token.token.expose().to_owned(),
            expires_at: token.expires_at.map(secs),
            issued_at: secs(token.issued_at),
        };
        let Ok(mut sealed) = serde_json::to_vec(&plain) else {
            return;
        };
        let mut nonce = [0u8; NONCE_LEN];
        if SystemRandom::new().fill(&mut nonce).is_err() {
            return;
        }
        if key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.as_bytes()),
                &mut sealed,
            )
            .is_err()
        {
            return;
        }
        let mut value = nonce.to_vec();
        value.extend_from_slice(&sealed);
        self.cache.set(&id, value, ttl).await;
    }

    async fn forget(&self, material: &[u8]) {
        let (id, _) = self.names(material);
        self.cache.delete(&id).await;
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

    #[test]
    fn the_local_cache_stays_within_its_limit() {
        let mut l = Local::default();
        let big = vec![0u8; LOCAL_LIMIT / 5];
        for i in 0..10 {
            l.set(&format!("k{i}"), big.clone(), Duration::from_secs(60));
        }
        assert!(l.bytes <= LOCAL_LIMIT);
        assert!(l.get("k9").is_some());
        assert!(l.get("k0").is_none());
    }

    #[tokio::test]
    async fn tokens_are_sealed_per_credentials() {
        let cache = Arc::new(Cache::local(b"secret"));
        let tokens = SharedTokenCache::new(Arc::clone(&cache));
        let token = Token {
            storage_url: "http://127.0.0.1:8080/v1/AUTH_test".parse().unwrap(),
            token: crate::swift::Secret::new("AUTH_tk0123456789"),
            expires_at: Some(SystemTime::now() + Duration::from_secs(600)),
            issued_at: SystemTime::now(),
        };
        tokens.store(b"user+password", &token).await;
        let back = tokens.load(b"user+password").await.unwrap();
        assert_eq!(back.token.expose(), "AUTH_tk0123456789");
        assert_eq!(back.storage_url, token.storage_url);
        assert!(tokens.load(b"user+other password").await.is_none());
        // What is stored does not show the token.
        let (id, _) = tokens.names(b"user+password");
        let raw = cache.get(&id).await.unwrap();
        assert!(!raw.windows(4).any(|w| w == b"AUTH"));
        tokens.forget(b"user+password").await;
        assert!(tokens.load(b"user+password").await.is_none());
    }
}
