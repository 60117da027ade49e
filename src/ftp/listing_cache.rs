//! Directory listings cached per user for a short time (`cache-ttl`), in this process or in memcached
//! (`src/cache.rs`), and the sizes of possible Dynamic Large Objects, cached per object version.
//!
//! - What a client sees: its own writes at once (every write through this gateway invalidates the written path
//!   and every directory above it, on every instance sharing memcached), other clients' writes within the TTL.
//! - One listing serves the per-file questions that follow it: `SIZE`, `MDTM`, `MLST` and `CWD` of an entry are
//!   answered from the cached listing of its parent (FileZilla's LIST, then SIZE and MDTM of each file, costs one
//!   Swift listing). An entry missing from that listing is looked up in Swift, never refused from the cache.
//! - Keys carry the account's storage URL and the login: users never see each other's cached listings (the
//!   ftp-cloudfs leak of 0.25.1 cannot happen), and the HMAC hides both from memcached; the snapshots
//!   themselves (names, sizes, times) reach memcached encrypted (`src/cache.rs`).
//! - Two levels, so that a listing is decoded once, not once per `SIZE`: the listing's key holds only the id of a
//!   stored snapshot (`ls` → id), the snapshot holds the entries (`snap` → data), and the last few snapshots are
//!   kept decoded in this process. A lookup costs one small cache read (the id) and, for a snapshot already
//!   decoded here, nothing more. Invalidation deletes the id: snapshots are immutable and simply expire.
//! - Races: a write stores a tombstone (not a deletion) in the keys it invalidates, and a listing fetched from
//!   Swift is stored only if its key is still as it was before the fetch (memcached CAS), so a slow LIST can
//!   never put back what a write in another session of the user just invalidated. If an invalidation cannot be
//!   written (memcached down), this process ignores the cache for one TTL.
//! - A 0-byte entry's HEAD result is kept under the object's name *and* last-modified time: "not a manifest"
//!   for a day (a changed object has a new time), a DLO manifest's size only for the listing TTL (segments can
//!   be added without changing the manifest). 0-byte files are never answered from a cached listing.
//!
//! Not here: fetching listings (`storage.rs`), deciding what a write touches (the callers name the path).

use super::listing::{DirEntries, Listing, Meta};
use super::location::Location;
use super::login::SwiftUser;
use crate::cache::{Cache, Seen};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long a possible DLO's HEAD result is kept (it is keyed by the object's version, so only memory bounds it).
const DLO_TTL: Duration = Duration::from_secs(24 * 3600);

/// An entry as stored: name, directory flag, size, link count, modification time (nanoseconds since 1970).
type WireEntry = (String, bool, u64, u64, Option<u128>);

#[derive(Serialize, Deserialize)]
enum Wire {
    Dir(Vec<WireEntry>),
    File(WireEntry),
}

fn to_wire(name: &str, m: &Meta) -> WireEntry {
    let t = m
        .modified
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos());
    (name.to_owned(), m.dir, m.size, m.links, t)
}

fn from_wire(w: WireEntry) -> (String, Meta) {
    let (name, dir, size, links, t) = w;
    let modified = t.and_then(|n| {
        let secs = u64::try_from(n / 1_000_000_000).ok()?;
        let nanos = u32::try_from(n % 1_000_000_000).ok()?;
        SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
    });
    (
        name,
        Meta {
            dir,
            size,
            modified,
            links,
        },
    )
}

/// Decoded snapshots kept in this process (the most recent ones).
const DECODED: usize = 4;

/// The listing cache of the gateway.
#[derive(Debug)]
pub struct ListingCache {
    cache: Arc<Cache>,
    ttl: Duration,
    /// Recently used snapshots, decoded: (snapshot id, listing), most recent last.
    decoded: std::sync::Mutex<std::collections::VecDeque<(String, Arc<Listing>)>>,
    /// Until when this process ignores the cache because an invalidation could not be written (memcached
    /// down or slow): listings cached before it may be stale.
    distrust_until: std::sync::Mutex<Option<std::time::Instant>>,
}

/// The first byte of a listing key's value when a write invalidated it (a tombstone, not a deletion: a reader
/// that saw the key before the write then fails its conditional store).
const TOMBSTONE: u8 = b'x';

impl ListingCache {
    /// Listings kept for `ttl` in `cache`; a zero `ttl` turns listing caching off (and the caching of DLO sizes;
    /// "not a DLO" answers are still kept).
    pub fn new(cache: Arc<Cache>, ttl: Duration) -> Self {
        Self {
            cache,
            ttl,
            decoded: std::sync::Mutex::new(std::collections::VecDeque::new()),
            distrust_until: std::sync::Mutex::new(None),
        }
    }

    fn distrusted(&self) -> bool {
        self.distrust_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|until| std::time::Instant::now() < until)
    }

    fn remember(&self, id: &str, listing: Arc<Listing>) {
        let mut d = self.decoded.lock().unwrap_or_else(|p| p.into_inner());
        d.retain(|(i, _)| i != id);
        d.push_back((id.to_owned(), listing));
        while d.len() > DECODED {
            d.pop_front();
        }
    }

    fn recall(&self, id: &str) -> Option<Arc<Listing>> {
        let d = self.decoded.lock().unwrap_or_else(|p| p.into_inner());
        d.iter().find(|(i, _)| i == id).map(|(_, l)| Arc::clone(l))
    }

    /// The current snapshot of `loc`'s listing, decoded, and what was seen of its key (for [`ListingCache::put`]).
    pub async fn lookup(&self, user: &SwiftUser, loc: &Location) -> (Option<Arc<Listing>>, Seen) {
        if self.ttl.is_zero() || self.distrusted() {
            return (None, Seen::Unknown);
        }
        let (id, seen) = self
            .cache
            .get_seen(&self.key(user, "ls", &loc.to_string()))
            .await;
        let listing = match id {
            Some(id) if id.first() != Some(&TOMBSTONE) => self.decode(id).await,
            _ => None,
        };
        (listing, seen)
    }

    async fn snapshot(&self, user: &SwiftUser, loc: &Location) -> Option<Arc<Listing>> {
        self.lookup(user, loc).await.0
    }

    async fn decode(&self, id: Vec<u8>) -> Option<Arc<Listing>> {
        let id = String::from_utf8(id).ok()?;
        if let Some(listing) = self.recall(&id) {
            return Some(listing);
        }
        let bytes = self.cache.get(&self.snapshot_key(&id)).await?;
        let listing = Arc::new(match serde_json::from_slice::<Wire>(&bytes).ok()? {
            Wire::Dir(entries) => {
                Listing::Dir(DirEntries::from_entries(entries.into_iter().map(from_wire)))
            }
            Wire::File(entry) => {
                let (name, meta) = from_wire(entry);
                Listing::File(name, meta)
            }
        });
        self.remember(&id, Arc::clone(&listing));
        Some(listing)
    }

    fn snapshot_key(&self, id: &str) -> String {
        self.cache.key(&["snap", id])
    }

    fn key(&self, user: &SwiftUser, what: &str, path: &str) -> String {
        self.cache
            .key(&[what, &user.session.account(), &user.login, path])
    }

    /// Caches the listing of `loc`, fetched after [`ListingCache::lookup`] saw `seen`: if a write invalidated
    /// the key meanwhile, the listing may predate it and is not stored.
    pub async fn put(&self, user: &SwiftUser, loc: &Location, listing: &Arc<Listing>, seen: Seen) {
        if self.ttl.is_zero() || seen == Seen::Unknown {
            return;
        }
        let wire = match listing.as_ref() {
            Listing::Dir(dir) => Wire::Dir(dir.entries().map(|(n, m)| to_wire(n, m)).collect()),
            Listing::File(name, meta) => Wire::File(to_wire(name, meta)),
        };
        let Ok(bytes) = serde_json::to_vec(&wire) else {
            return;
        };
        let id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        self.remember(&id, Arc::clone(listing));
        // The snapshot first, then the id that makes it current: a reader never finds an id without data.
        if !self
            .cache
            .set(&self.snapshot_key(&id), bytes, self.ttl)
            .await
        {
            return;
        }
        self.cache
            .set_if(
                &self.key(user, "ls", &loc.to_string()),
                &seen,
                id.into_bytes(),
                self.ttl,
            )
            .await;
    }

    /// An entry's metadata from its parent's cached listing: `None` when that listing is not cached or does not
    /// show the entry.
    pub async fn entry(&self, user: &SwiftUser, loc: &Location) -> Option<Meta> {
        let (parent, name) = loc.parent_and_name()?;
        match self.snapshot(user, &parent).await?.as_ref() {
            // Not a 0-byte file: libunftp's APPE starts at the size it is told, and a file another client
            // filled within the TTL must not be appended to (overwritten) at 0.
            Listing::Dir(dir) => dir.get(&name).filter(|m| m.dir || m.size > 0).cloned(),
            Listing::File(..) => None,
        }
    }

    /// Forgets what a write to `loc` may have changed: its own listing and those of every directory above it
    /// (a new file can create pseudo-directories all the way up; the account listing shows container sizes).
    pub async fn invalidate(&self, user: &SwiftUser, loc: &Location) {
        if self.ttl.is_zero() {
            return;
        }
        let mut at = Some(loc.clone());
        while let Some(l) = at {
            let tombstone = format!("x{:016x}", fastrand::u64(..)).into_bytes();
            if !self
                .cache
                .set(&self.key(user, "ls", &l.to_string()), tombstone, self.ttl)
                .await
            {
                // The cache may still hold what this write changed: ignore it for as long as that can live.
                *self
                    .distrust_until
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) =
                    Some(std::time::Instant::now() + self.ttl);
            }
            at = l.parent_and_name().map(|(p, _)| p);
        }
    }

    /// The remembered HEAD result of a 0-byte entry: `Some(Some(size))` for a DLO manifest, `Some(None)` for a
    /// plain empty object, `None` when unknown.
    pub async fn dlo_size(
        &self,
        user: &SwiftUser,
        path: &str,
        modified: Option<SystemTime>,
    ) -> Option<Option<u64>> {
        let modified = modified?;
        let bytes = self.cache.get(&self.dlo_key(user, path, modified)).await?;
        let text = String::from_utf8(bytes).ok()?;
        match text.as_str() {
            "-" => Some(None),
            n => n.parse().ok().map(Some),
        }
    }

    /// Remembers a 0-byte entry's HEAD result (see [`ListingCache::dlo_size`]).
    pub async fn set_dlo_size(
        &self,
        user: &SwiftUser,
        path: &str,
        modified: Option<SystemTime>,
        size: Option<u64>,
    ) {
        let Some(modified) = modified else { return };
        // A manifest's size changes when segments are added under its prefix, its own time does not: trusted
        // for a listing's time only. "Not a manifest" holds for as long as the object is this version.
        let ttl = if size.is_some() { self.ttl } else { DLO_TTL };
        if ttl.is_zero() {
            return;
        }
        let value = size.map_or_else(|| "-".to_owned(), |s| s.to_string());
        self.cache
            .set(&self.dlo_key(user, path, modified), value.into_bytes(), ttl)
            .await;
    }

    fn dlo_key(&self, user: &SwiftUser, path: &str, modified: SystemTime) -> String {
        let version = modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            .to_string();
        self.key(user, "dlo", &format!("{path}\0{version}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_the_wire() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_790_000_000, 123_456_789);
        for meta in [
            Meta::file(42, Some(t)),
            Meta::dir(),
            Meta {
                dir: true,
                size: 7,
                modified: Some(t),
                links: 3,
            },
        ] {
            let (name, back) = from_wire(to_wire("a b ☺", &meta));
            assert_eq!(name, "a b ☺");
            assert_eq!(back, meta);
        }
    }
}
