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
/// How long one memcached operation may take before the gateway goes on without it.
const MEMCACHED_TIMEOUT: Duration = Duration::from_millis(500);
/// After a failure, how long memcached is left alone before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// memcached operations in flight at once (each holds a blocking-pool thread).
const MEMCACHED_IN_FLIGHT: usize = 32;
/// The most this process keeps in its own cache (keys, values and bookkeeping); beyond it, it starts afresh.
const LOCAL_LIMIT: usize = 64 * 1024 * 1024;
/// Bookkeeping counted per local entry, beside its key and value.
const LOCAL_OVERHEAD: usize = 128;
/// How often the local cache drops its expired entries. Without it they stayed until the cache was full: every
/// listing stored after a write is a new entry, so a busy gateway grew towards `LOCAL_LIMIT` in dead listings.
const LOCAL_SWEEP_EVERY: Duration = Duration::from_secs(10);
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
        let value_key = hmac::Key::new(
            hmac::HMAC_SHA256,
            hmac::sign(&key, b"memcached values").as_ref(),
        );
        Self {
            backend: Backend::Memcached(Box::new(Memcached {
                value_key,
                servers: servers.to_vec(),
                client: Mutex::new(None),
                down_since: Mutex::new(None),
                said_down: AtomicBool::new(false),
                in_flight: Arc::new(tokio::sync::Semaphore::new(MEMCACHED_IN_FLIGHT)),
                tag_key: key.clone(),
            })),
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

/// One entry of this process's cache.
struct LocalEntry {
    expires: Instant,
    version: u64,
    value: Vec<u8>,
}

/// This process's cache: a map with expiry times, bounded in bytes, swept of expired entries every
/// [`LOCAL_SWEEP_EVERY`].
#[derive(Default)]
struct Local {
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

    fn get(&mut self, key: &str) -> (Option<Vec<u8>>, Seen) {
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

    fn set(&mut self, key: &str, value: Vec<u8>, ttl: Duration) {
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

    fn set_if(&mut self, key: &str, seen: &Seen, value: Vec<u8>, ttl: Duration) -> bool {
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

    fn delete(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.bytes -= Self::cost(key, &e.value);
        }
    }
}

/// memcached through the `memcache` crate (synchronous, pooled), run on the blocking pool.
struct Memcached {
    servers: Vec<String>,
    client: Mutex<Option<Arc<memcache::Client>>>,
    down_since: Mutex<Option<Instant>>,
    said_down: AtomicBool,
    in_flight: Arc<tokio::sync::Semaphore>,
    /// Every stored value starts with a tag of its key, checked on read: a pooled connection left out of step
    /// by a timeout can never hand one key's value to another.
    tag_key: hmac::Key,
    /// Derives the key that encrypts an entry's values before they leave the process: one AES key per entry
    /// name, so that no key seals anywhere near the 2^32 values after which random 96-bit nonces may repeat.
    value_key: hmac::Key,
}

/// The length of the key tag at the start of every stored value.
const TAG: usize = 8;
/// After the tag: the value itself follows, or a part count (u32, big endian).
const WHOLE: u8 = 0;
const SPLIT: u8 = 1;

/// A memcached call gave nothing: memcached is down, slow or broken (already logged and counted).
struct Down;

impl Memcached {
    /// The AES-256-GCM key of entry `key`'s values.
    fn sealing_key(&self, key: &str) -> LessSafeKey {
        aead_key(hmac::sign(&self.value_key, key.as_bytes()).as_ref())
    }

    fn tag(&self, key: &str) -> [u8; TAG] {
        let t = hmac::sign(&self.tag_key, key.as_bytes());
        let mut out = [0u8; TAG];
        out.copy_from_slice(&t.as_ref()[..TAG]);
        out
    }

    /// The client, built on the blocking pool without holding any lock; `None` while memcached is considered
    /// down (for [`RETRY_AFTER`] after a failure).
    async fn client(&self) -> Option<Arc<memcache::Client>> {
        if self
            .down_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|t| t.elapsed() < RETRY_AFTER)
        {
            return None;
        }
        if let Some(c) = self
            .client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            return Some(Arc::clone(c));
        }
        let servers = self.servers.clone();
        let timeout = MEMCACHED_TIMEOUT.as_secs_f64();
        let build = tokio::task::spawn_blocking(move || {
            let mut builder = memcache::Client::builder()
                .with_connection_timeout(MEMCACHED_TIMEOUT)
                .with_read_timeout(MEMCACHED_TIMEOUT)
                .with_write_timeout(MEMCACHED_TIMEOUT)
                .with_max_pool_size(MEMCACHED_IN_FLIGHT as u32)
                .with_min_idle_conns(0);
            for s in &servers {
                // The URL's timeout applies to every pooled connection, not only the first.
                builder = builder
                    .add_server(format!("memcache://{s}?tcp_nodelay=true&timeout={timeout}"))?;
            }
            builder.build()
        });
        match tokio::time::timeout(MEMCACHED_TIMEOUT * 4, build).await {
            Ok(Ok(Ok(c))) => {
                let c = Arc::new(c);
                *self.client.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&c));
                Some(c)
            }
            Ok(Ok(Err(e))) => {
                self.failed(&e.to_string());
                None
            }
            Ok(Err(e)) => {
                self.failed(&e.to_string());
                None
            }
            Err(_) => {
                self.failed("connecting timed out");
                None
            }
        }
    }

    fn failed(&self, e: &str) {
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

    /// Runs `op` with the client on the blocking pool, bounded in time and in calls in flight.
    async fn run<T, F>(&self, op: F) -> Result<T, Down>
    where
        T: Send + 'static,
        F: FnOnce(&memcache::Client) -> Result<T, memcache::MemcacheError> + Send + 'static,
    {
        let Ok(permit) = Arc::clone(&self.in_flight).try_acquire_owned() else {
            // Every slot is busy: memcached is slow. Going on without it beats queueing behind it.
            return Err(Down);
        };
        let client = self.client().await.ok_or(Down)?;
        let call = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            op(&client)
        });
        let result = match tokio::time::timeout(MEMCACHED_TIMEOUT * 2, call).await {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(e.to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".to_owned()),
        };
        match result {
            Ok(v) => {
                self.worked();
                Ok(v)
            }
            Err(e) => {
                self.failed(&e);
                Err(Down)
            }
        }
    }

    async fn get(&self, key: &str) -> (Option<Vec<u8>>, Seen) {
        let owned = key.to_owned();
        let tag = self.tag(key);
        let result = self
            .run(move |c| {
                let Some((head, _flags, cas)) = c.get::<(Vec<u8>, u32, Option<u64>)>(&owned)?
                else {
                    return Ok((None, Seen::Absent));
                };
                let seen = cas.map_or(Seen::Unknown, Seen::Version);
                if head.len() <= TAG || head[..TAG] != tag {
                    return Ok((None, seen));
                }
                let body = &head[TAG..];
                match body.split_first() {
                    Some((&WHOLE, rest)) => Ok((Some(rest.to_vec()), seen)),
                    Some((&SPLIT, count)) if count.len() == 4 => {
                        let n =
                            u32::from_be_bytes([count[0], count[1], count[2], count[3]]) as usize;
                        let names: Vec<String> = (0..n).map(|i| format!("{owned}.{i}")).collect();
                        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                        let mut parts = c.gets::<Vec<u8>>(&refs)?;
                        let mut out = Vec::new();
                        for name in &names {
                            match parts.remove(name) {
                                // Parts carry the head's tag: a part of another value is never mixed in.
                                Some(p) if p.len() >= TAG && p[..TAG] == tag => {
                                    out.extend_from_slice(&p[TAG..])
                                }
                                _ => return Ok((None, seen)),
                            }
                        }
                        Ok((Some(out), seen))
                    }
                    _ => Ok((None, seen)),
                }
            })
            .await;
        match result {
            // A value that does not open (another secret, tampered with) is a miss.
            Ok((found, seen)) => (
                found.and_then(|sealed| open(&self.sealing_key(key), key, sealed)),
                seen,
            ),
            Err(Down) => (None, Seen::Unknown),
        }
    }

    /// Stores (conditionally, when `only_if` is given); true when stored.
    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration, only_if: Option<Seen>) -> bool {
        let owned = key.to_owned();
        let tag = self.tag(key);
        let Some(value) = seal(&self.sealing_key(key), key, value) else {
            return false;
        };
        // memcached reads expirations over 30 days as absolute times; MAX_TTL keeps ours below that.
        let ttl = ttl.as_secs().clamp(1, MAX_TTL.as_secs()) as u32;
        let result = self
            .run(move |c| {
                let mut head = tag.to_vec();
                if value.len() < PART {
                    head.push(WHOLE);
                    head.extend_from_slice(&value);
                } else {
                    let parts: Vec<&[u8]> = value.chunks(PART).collect();
                    for (i, p) in parts.iter().enumerate() {
                        let mut part = tag.to_vec();
                        part.extend_from_slice(p);
                        c.set(&format!("{owned}.{i}"), part.as_slice(), ttl)?;
                    }
                    head.push(SPLIT);
                    head.extend_from_slice(&(parts.len() as u32).to_be_bytes());
                }
                match only_if {
                    None => c.set(&owned, head.as_slice(), ttl).map(|()| true),
                    Some(Seen::Version(v)) => c.cas(&owned, head.as_slice(), ttl, v),
                    Some(Seen::Absent) => match c.add(&owned, head.as_slice(), ttl) {
                        Ok(()) => Ok(true),
                        // Someone stored it meanwhile: not a failure of memcached.
                        Err(memcache::MemcacheError::CommandError(
                            memcache::CommandError::KeyExists,
                        )) => Ok(false),
                        Err(e) => Err(e),
                    },
                    Some(Seen::Unknown) => Ok(false),
                }
            })
            .await;
        result.unwrap_or(false)
    }

    async fn delete(&self, key: &str) -> bool {
        let key = key.to_owned();
        // Deleting the head is enough: parts without a head are never read, and expire.
        self.run(move |c| c.delete(&key).map(|_| ())).await.is_ok()
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
        (id, aead_key(secret.as_ref()))
    }
}

/// The AES-256-GCM key of 32 bytes of HMAC-SHA256 output.
fn aead_key(secret: &[u8]) -> LessSafeKey {
    UnboundKey::new(&AES_256_GCM, secret)
        .map(LessSafeKey::new)
        .unwrap_or_else(|_| unreachable!("HMAC-SHA256 gives the 32 bytes AES-256 wants"))
}

/// `plain` encrypted under `key` with a random nonce (which leads the result), bound to `aad`.
fn seal(key: &LessSafeKey, aad: &str, mut plain: Vec<u8>) -> Option<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).ok()?;
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad.as_bytes()),
        &mut plain,
    )
    .ok()?;
    let mut value = nonce.to_vec();
    value.extend_from_slice(&plain);
    Some(value)
}

/// What [`seal`] made of it, if `sealed` opens under `key` and `aad`.
fn open(key: &LessSafeKey, aad: &str, mut sealed: Vec<u8>) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let mut body = sealed.split_off(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&sealed).ok()?;
    let len = key
        .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut body)
        .ok()?
        .len();
    body.truncate(len);
    Some(body)
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
        let plain = open(&key, &id, self.cache.get(&id).await?)?;
        let t: StoredToken = serde_json::from_slice(&plain).ok()?;
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
        let Some(value) = serde_json::to_vec(&plain)
            .ok()
            .and_then(|json| seal(&key, &id, json))
        else {
            return;
        };
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
