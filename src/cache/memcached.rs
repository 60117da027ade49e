//! memcached as the cache (`--memcache`): values tagged with their key, sealed (`seal.rs`), split over several
//! keys when large; every call bounded in time and in number, memcached down costs a fast failure and one
//! warning, and it is tried again every few seconds.
//!
//! Not here: keys (`mod.rs`).

use super::seal::{aead_key, open, seal};
use super::{MAX_TTL, Seen};
use aws_lc_rs::aead::LessSafeKey;
use aws_lc_rs::hmac;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The largest piece stored under one memcached key (its default item limit is 1 MiB, key and header included).
const PART: usize = 900 * 1024;
/// How long one memcached operation may take before the gateway goes on without it.
const MEMCACHED_TIMEOUT: Duration = Duration::from_millis(500);
/// After a failure, how long memcached is left alone before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// memcached operations in flight at once (each holds a blocking-pool thread).
const MEMCACHED_IN_FLIGHT: usize = 32;

/// memcached through the `memcache` crate (synchronous, pooled), run on the blocking pool.
pub(super) struct Memcached {
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
    /// A client of `servers` (`host:port` each), tagging and sealing under keys derived from `key`.
    pub(super) fn new(key: &hmac::Key, servers: &[String]) -> Self {
        let value_key = hmac::Key::new(
            hmac::HMAC_SHA256,
            hmac::sign(key, b"memcached values").as_ref(),
        );
        Self {
            value_key,
            servers: servers.to_vec(),
            client: Mutex::new(None),
            down_since: Mutex::new(None),
            said_down: AtomicBool::new(false),
            in_flight: Arc::new(tokio::sync::Semaphore::new(MEMCACHED_IN_FLIGHT)),
            tag_key: key.clone(),
        }
    }

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

    pub(super) async fn get(&self, key: &str) -> (Option<Vec<u8>>, Seen) {
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
    pub(super) async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
        only_if: Option<Seen>,
    ) -> bool {
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

    pub(super) async fn delete(&self, key: &str) -> bool {
        let key = key.to_owned();
        // Deleting the head is enough: parts without a head are never read, and expire.
        self.run(move |c| c.delete(&key).map(|_| ())).await.is_ok()
    }
}
