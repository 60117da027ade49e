//! Objects of any size: an upload becomes a plain object or a Static Large Object, and the segments of large
//! objects are found and removed when their manifest is replaced or deleted.
//!
//! **Plain or segmented, when the size is not known.** FTP announces no size. The first bytes are read into
//! memory, up to [`PLAIN_LOOKAHEAD`] or the segment size, whichever is smaller. An upload that ends within them
//! is a plain object: one `PUT`, its MD5 checked against the ETag. An upload that goes on becomes a Static Large
//! Object: segments of the segment size streamed to `<container>_segments/<key>/slo/<upload id>/<index>`, then
//! the manifest at `<key>`, written last and only after every segment succeeded. The trade-off, chosen deliberately:
//!
//! - No window: no reader ever sees a partial file at `<key>`, and the object being overwritten stays whole
//!   until the manifest replaces it. Segments live elsewhere until then.
//! - No extra Swift work: every byte is sent once. (The alternatives cost up to twice the bytes: streaming to
//!   `<key>` and to a first segment at once, or streaming to a segment and server-side copying small files.)
//! - The price: a file bigger than the lookahead but smaller than the segment size is a Static Large Object of
//!   one segment, not a plain object. It reads, ranges, copies and deletes like any object through swiftftp and
//!   the Swift API, but its ETag is Swift's manifest ETag; the content MD5 is in `X-Object-Meta-Md5`. With a
//!   segment size at or below the lookahead (say `--segment-size 8M`), every file up to the segment size is
//!   plain, as the rule "files up to the segment size stay plain objects" asks.
//!
//! **Memory.** The lookahead, then per segment a queue of [`SEGMENT_QUEUE`] chunks; at most two segment PUTs in
//! flight (the next one streams while the previous one waits for Swift's answer). No segment is ever held
//! whole.
//!
//! **Integrity.** Each segment's MD5 is checked against its ETag (`upload.rs`); the whole content's MD5 is
//! computed while streaming, stored on the manifest as `X-Object-Meta-Md5`, and returned. One hasher computes
//! both, hashing the first segment's bytes once (`hashing.rs`): MD5 is most of the gateway's CPU on an upload. Any failure (source, Swift, checksum, the manifest) deletes every segment this upload may have
//! written, also when the upload is dropped half-way (a guard spawns the clean-up).
//!
//! Not here: deciding *whether* old segments may go (the caller reads them before the upload with
//! [`Session::segments_of`] and deletes them after it with [`Session::delete_segments`]).

use super::client::object_url_with;
use super::error::{Error, Op};
use super::hashing::{HashFeed, SegmentsMd5};
use super::upload::client_gone;
use super::upload::{CHUNK, Md5From};
use super::{ObjectEntry, ObjectHead, Session, UploadError, Uploaded};
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::ReaderStream;

/// Bytes read into memory before deciding between a plain object and segments.
pub const PLAIN_LOOKAHEAD: u64 = 8 * 1024 * 1024;

/// The lookahead's first buffer: a small file fits, a larger one grows it by [`CHUNK`]s.
const FIRST_READ: usize = 16 * 1024;

/// Chunks ([`CHUNK`] bytes each) queued towards one segment's PUT.
const SEGMENT_QUEUE: usize = 4;

/// Segment PUTs in flight at once.
const SEGMENTS_IN_FLIGHT: usize = 2;

/// Deletes in flight at once when removing segments.
const DELETE_CONCURRENCY: usize = 8;

/// The suffix of the container holding a container's segments (python-swiftclient's convention).
pub const SEGMENTS_SUFFIX: &str = "_segments";

/// The metadata header holding a large object's content MD5.
pub const MD5_META: &str = "X-Object-Meta-Md5";

/// The read ACL a `<container>_segments` needs beside its container's `acl`: the same readers (whoever reads a
/// Static Large Object reads its segments, and Swift answers `409` to a reader who may not), without
/// `.rlistings` (nobody needs to list segments). `None`: no read ACL.
pub fn segments_read_acl(acl: Option<&str>) -> Option<String> {
    let kept: Vec<&str> = acl
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && *e != ".rlistings")
        .collect();
    (!kept.is_empty()).then(|| kept.join(","))
}

/// How large uploads are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentPlan {
    /// Bytes per segment (the last one may be shorter).
    pub segment_size: u64,
    /// Most segments one manifest may list (the cluster's `max_manifest_segments`).
    pub max_segments: usize,
    /// The smallest segment Swift takes before the last one (the cluster's `min_segment_size`).
    pub min_segment_size: u64,
}

/// One object a large object is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRef {
    /// Its container.
    pub container: String,
    /// Its name.
    pub key: String,
}

/// A segment as a manifest lists it (and as a partial upload's record keeps it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// `/container/name` of the segment.
    pub path: String,
    /// Its ETag (MD5).
    pub etag: String,
    /// Its size.
    pub size_bytes: u64,
    /// The part of it used, `first-last` (inclusive), when not all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
}

impl ManifestEntry {
    /// The bytes of the segment this entry contributes.
    pub fn used_bytes(&self) -> u64 {
        match self.range_bounds() {
            Some((first, last)) => (last + 1).saturating_sub(first),
            None => self.size_bytes,
        }
    }

    /// The `first-last` of the range, when it has one that parses.
    fn range_bounds(&self) -> Option<(u64, u64)> {
        let (a, b) = self.range.as_deref()?.split_once('-')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    }

    /// Whether the entry makes sense: no range, or one within the segment (`first <= last < size`).
    pub fn is_sound(&self) -> bool {
        match (&self.range, self.range_bounds()) {
            (None, _) => true,
            (Some(_), Some((first, last))) => first <= last && last < self.size_bytes,
            (Some(_), None) => false,
        }
    }
}

/// The first `n` bytes of what `entries` add up to, the last entry cut with a range where needed; `None` when
/// they hold fewer than `n` bytes.
pub fn first_bytes_of(entries: &[ManifestEntry], n: u64) -> Option<Vec<ManifestEntry>> {
    let mut kept = Vec::new();
    let mut have = 0u64;
    for e in entries {
        if have == n {
            break;
        }
        let len = e.used_bytes();
        let start = e.range_bounds().map_or(0, |(first, _)| first);
        let mut e = e.clone();
        if have + len > n {
            let take = n - have;
            e.range = Some(format!("{start}-{}", start + take - 1));
            have += take;
        } else {
            have += len;
        }
        kept.push(e);
    }
    (have == n).then_some(kept)
}

/// Those of `segments` that `manifest` does not list (the ones a new manifest leaves behind).
pub fn not_listed(segments: Vec<SegmentRef>, manifest: &[ManifestEntry]) -> Vec<SegmentRef> {
    segments
        .into_iter()
        .filter(|s| {
            !manifest
                .iter()
                .filter_map(|m| SegmentRef::from_slo_path(&m.path))
                .any(|m| &m == s)
        })
        .collect()
}

/// A segment as `multipart-manifest=get` shows it (the stored form, every Swift version alike).
#[derive(Debug, Deserialize)]
struct StoredEntry {
    name: String,
    #[serde(default)]
    hash: String,
    #[serde(default)]
    bytes: u64,
    range: Option<String>,
}

/// Deletes what an unfinished upload may have written, when dropped armed: a cancelled upload future (the FTP
/// session went away mid-transfer) must not leave segments behind either.
struct CleanupGuard {
    session: Arc<Session>,
    container: String,
    prefix: String,
    started: Arc<AtomicUsize>,
    armed: bool,
}

impl CleanupGuard {
    fn segments(&self) -> Vec<SegmentRef> {
        (0..self.started.load(Ordering::SeqCst))
            .map(|i| SegmentRef {
                container: self.container.clone(),
                key: segment_name(&self.prefix, i),
            })
            .collect()
    }

    /// Deletes now (the failure paths, which can wait for it); what cannot be deleted now (Swift unreachable:
    /// often the very reason the upload failed) is retried in the background for [`CLEANUP_RETRY_FOR`].
    async fn run(mut self) {
        self.armed = false;
        let left = self.session.delete_segments(self.segments()).await;
        if !left.is_empty() {
            retry_in_background(Arc::clone(&self.session), left);
        }
    }
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        if self.armed {
            retry_in_background(Arc::clone(&self.session), self.segments());
        }
    }
}

/// How long the segments of a failed upload are retried for when Swift cannot delete them at once.
const CLEANUP_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(120);

/// Deletes `segments` from a task of its own, trying again every few seconds until they are gone or
/// [`CLEANUP_RETRY_FOR`] has passed (then logs what stays behind).
fn retry_in_background(session: Arc<Session>, mut segments: Vec<SegmentRef>) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    rt.spawn(async move {
        let until = tokio::time::Instant::now() + CLEANUP_RETRY_FOR;
        loop {
            segments = session.delete_segments(segments).await;
            if segments.is_empty() {
                return;
            }
            if tokio::time::Instant::now() >= until {
                let names: Vec<&str> = segments.iter().map(|s| s.key.as_str()).collect();
                tracing::error!(
                    left = segments.len(),
                    ?names,
                    "giving up deleting the segments of a failed upload"
                );
                return;
            }
            tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        }
    });
}

/// What [`Session::stream_segments`] stored.
struct Streamed {
    bytes: u64,
    md5: String,
    /// (name, upload) of each segment, in order.
    segments: Vec<(String, Uploaded)>,
    /// Why the source stopped early, when its client went away.
    interrupted: Option<std::io::Error>,
}

fn segment_name(prefix: &str, index: usize) -> String {
    format!("{prefix}{index:08}")
}

/// A name unique to one upload: the time in microseconds and 32 random bits.
pub(super) fn upload_id() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    format!("{micros}-{:08x}", fastrand::u32(..))
}

/// The first bytes of an upload, read to choose between a plain object and segments.
#[derive(Debug)]
pub enum Lookahead {
    /// The whole upload: it ended within the lookahead.
    Whole(Bytes),
    /// Its first bytes: more follow in the source.
    Started(Bytes),
}

/// Reads the first bytes of `source` (up to [`PLAIN_LOOKAHEAD`] or the segment size, whichever is smaller, plus
/// one byte to know that more follow). Separate from the upload so that a caller can check the target meanwhile.
pub async fn read_lookahead<R>(source: &mut R, plan: SegmentPlan) -> Result<Lookahead, UploadError>
where
    R: AsyncRead + Unpin,
{
    let limit = plan.segment_size.min(PLAIN_LOOKAHEAD);
    let mut head = BytesMut::new();
    loop {
        // Small first: most uploads are small files, and a 256 KiB buffer for each made glibc raise its mmap
        // threshold and serve them from its heaps, which then kept growing under load (the load test's RSS).
        if head.capacity() - head.len() < FIRST_READ / 4 {
            head.reserve(if head.is_empty() { FIRST_READ } else { CHUNK });
        }
        let n = (&mut *source)
            .take(limit + 1 - head.len() as u64)
            .read_buf(&mut head)
            .await
            .map_err(|e| UploadError::Source {
                bytes: head.len() as u64,
                source: e,
            })?;
        if n == 0 || head.len() as u64 > limit {
            break;
        }
    }
    let whole = head.len() as u64 <= limit;
    let head = head.freeze();
    Ok(if whole {
        Lookahead::Whole(head)
    } else {
        Lookahead::Started(head)
    })
}

impl Session {
    /// Stores `source` at `container/key`: a plain object when it ends within the lookahead, else a Static Large
    /// Object cut by `plan`. `headers` (e.g. `Content-Type`) go on the object or the manifest.
    pub async fn upload_any<R>(
        self: &Arc<Self>,
        container: &str,
        key: &str,
        mut source: R,
        headers: &[(&str, &str)],
        plan: SegmentPlan,
        keep_partial: bool,
    ) -> Result<Uploaded, UploadError>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let lookahead = read_lookahead(&mut source, plan).await?;
        self.upload_after_lookahead(
            container,
            key,
            lookahead,
            source,
            headers,
            plan,
            keep_partial,
        )
        .await
    }

    /// [`Session::upload_any`] once [`read_lookahead`] has read the first bytes from `source`.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_after_lookahead<R>(
        self: &Arc<Self>,
        container: &str,
        key: &str,
        lookahead: Lookahead,
        source: R,
        headers: &[(&str, &str)],
        plan: SegmentPlan,
        keep_partial: bool,
    ) -> Result<Uploaded, UploadError>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let head = match lookahead {
            Lookahead::Whole(head) => return self.put_whole(container, key, head, headers).await,
            Lookahead::Started(head) => head,
        };
        let source = std::io::Cursor::new(head).chain(source);
        self.upload_after(
            container,
            key,
            Vec::new(),
            source,
            headers,
            plan,
            keep_partial,
        )
        .await
    }

    /// A plain object from memory: streamed like any upload (`upload.rs`), so that a slow Swift taking the
    /// bytes slowly is never cut by a whole-request timeout; its MD5 is checked against the ETag there.
    async fn put_whole(
        &self,
        container: &str,
        key: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> Result<Uploaded, UploadError> {
        let len = body.len() as u64;
        self.put_sized(container, key, std::io::Cursor::new(body), len, headers)
            .await
    }

    /// A plain object of `len` bytes from `source`, its size declared (`Content-Length`), not chunked: Swift's
    /// quota middlewares can only judge an upload whose size they are told. A source that ends short of `len`
    /// (or fails) leaves nothing stored.
    pub async fn put_sized<R>(
        &self,
        container: &str,
        key: &str,
        source: R,
        len: u64,
        headers: &[(&str, &str)],
    ) -> Result<Uploaded, UploadError>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let len_text = len.to_string();
        let mut headers = headers.to_vec();
        headers.push(("Content-Length", &len_text));
        self.upload(container, key, source, &headers, len).await
    }

    /// A Static Large Object of `kept` (segments already stored: a resumed upload's first part) followed by
    /// `source` cut by `plan`. With nothing kept the content MD5 is known and stored; after kept segments it is
    /// not (their bytes are not read again).
    ///
    /// With `keep_partial`, a source that fails because its client went away (`upload.rs`: [`client_gone`])
    /// ends its last segment where the bytes stopped, and what was stored (kept and new) is recorded as a
    /// partial upload that a later `REST`/`APPE` continues. Any other failure deletes the new segments and
    /// leaves `kept` as it was.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_after<R>(
        self: &Arc<Self>,
        container: &str,
        key: &str,
        kept: Vec<ManifestEntry>,
        source: R,
        headers: &[(&str, &str)],
        plan: SegmentPlan,
        keep_partial: bool,
    ) -> Result<Uploaded, UploadError>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let segments_container = format!("{container}{SEGMENTS_SUFFIX}");
        self.ensure_segments_container(container, &segments_container)
            .await?;
        let prefix = format!("{key}/slo/{}/", upload_id());
        let started = Arc::new(AtomicUsize::new(0));
        let guard = CleanupGuard {
            session: Arc::clone(self),
            container: segments_container.clone(),
            prefix: prefix.clone(),
            started: Arc::clone(&started),
            armed: true,
        };
        let kept_bytes: u64 = kept.iter().map(ManifestEntry::used_bytes).sum();
        let plan = SegmentPlan {
            max_segments: plan.max_segments.saturating_sub(kept.len()),
            ..plan
        };
        let result = async {
            let streamed = self
                .stream_segments(&segments_container, &prefix, source, plan, &started)
                .await?;
            let mut manifest = kept.clone();
            manifest.extend(streamed.segments.iter().map(|(name, up)| ManifestEntry {
                path: format!("/{segments_container}/{name}"),
                etag: up.md5.clone(),
                size_bytes: up.bytes,
                range: None,
            }));
            let bytes = kept_bytes + streamed.bytes;
            if let Some(gone) = streamed.interrupted {
                if keep_partial && streamed.bytes > 0 {
                    // A last segment below the cluster's minimum could not sit in the middle of the continued
                    // manifest: it is left out (and deleted), the upload continues from before it.
                    let mut manifest = manifest;
                    let mut bytes = bytes;
                    if let Some(last) = manifest.last()
                        && last.used_bytes() < plan.min_segment_size
                        && manifest.len() > kept.len()
                        && let Some(short) = manifest.pop()
                    {
                        bytes -= short.used_bytes();
                        if let Some(seg) = SegmentRef::from_slo_path(&short.path) {
                            self.delete_segments(vec![seg]).await;
                        }
                    }
                    self.save_partial(container, key, &manifest, bytes, headers)
                        .await?;
                }
                return Err(UploadError::Source {
                    bytes: streamed.bytes,
                    source: gone,
                });
            }
            let body = serde_json::to_vec(&manifest).map_err(|e| {
                Error::protocol(
                    Op::PutObject {
                        container: container.to_owned(),
                        key: key.to_owned(),
                    },
                    e.to_string(),
                )
            })?;
            let md5 = if kept.is_empty() {
                streamed.md5
            } else {
                String::new()
            };
            let mut all: Vec<(&str, &str)> = headers.to_vec();
            if !md5.is_empty() {
                all.push((MD5_META, &md5));
            }
            self.put_manifest(container, key, Bytes::from(body), &all)
                .await?;
            Ok(Uploaded {
                bytes,
                md5,
                segments: manifest.len(),
            })
        }
        .await;
        match result {
            Ok(uploaded) => {
                let mut guard = guard;
                guard.armed = false;
                Ok(uploaded)
            }
            // Recorded as a partial upload: its segments stay for the resume.
            Err(UploadError::Source { bytes, source })
                if keep_partial && client_gone(&source) && bytes > 0 =>
            {
                let mut guard = guard;
                guard.armed = false;
                Err(UploadError::Source { bytes, source })
            }
            Err(e) => {
                guard.run().await;
                Err(e)
            }
        }
    }

    /// Creates `<container>_segments` when missing, with the storage policy of `container` (so a large object's
    /// bytes live where its container says). An existing one is left as it is.
    /// Deletes `<container>_segments` if it exists and is empty (once its container is gone): `Ok(true)` when it
    /// was deleted. One that holds anything (a partial upload, another tool's segments) stays: Swift refuses to
    /// delete a container that is not empty.
    pub async fn delete_empty_segments_container(&self, container: &str) -> Result<bool, Error> {
        let segments = format!("{container}{SEGMENTS_SUFFIX}");
        match self.delete_container(&segments).await {
            Ok(()) => {
                self.segments_seen.set(&segments, false);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    super::ErrorKind::NotFound | super::ErrorKind::Conflict
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Makes `segments` if it is missing, with `container`'s storage policy and its readers
    /// ([`segments_read_acl`]): a large file in a public container must be readable by the public too.
    pub(super) async fn ensure_segments_container(
        &self,
        container: &str,
        segments: &str,
    ) -> Result<(), Error> {
        match self.head_container(segments).await {
            Ok(_) => {
                self.segments_seen.set(segments, true);
                return Ok(());
            }
            Err(e) if e.kind() == super::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let inherited: Vec<(String, String)> = match self.head_container(container).await {
            Ok(h) => {
                let read = segments_read_acl(h.read_acl.as_deref())
                    .map(|acl| ("X-Container-Read".to_owned(), acl));
                h.settings
                    .into_iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case("X-Storage-Policy"))
                    .chain(read)
                    .collect()
            }
            Err(_) => Vec::new(),
        };
        let headers: Vec<(&str, &str)> = inherited
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let made = match self.put_container(segments, &headers).await {
            // Created meanwhile by another upload, with another policy: use it as it is.
            Err(e) if e.kind() == super::ErrorKind::Conflict => Ok(()),
            other => other,
        };
        if made.is_ok() {
            self.segments_seen.set(segments, true);
        }
        made
    }

    /// Cuts `source` into segment PUTs, at most [`SEGMENTS_IN_FLIGHT`] at once; the total bytes, the content
    /// MD5 and the segments (name, upload) in order.
    async fn stream_segments<R>(
        &self,
        segments_container: &str,
        prefix: &str,
        source: R,
        plan: SegmentPlan,
        started: &AtomicUsize,
    ) -> Result<Streamed, UploadError>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        type Feed = (
            usize,
            tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
            tokio::sync::oneshot::Receiver<String>,
        );
        let (seg_tx, mut seg_rx) = tokio::sync::mpsc::channel::<Feed>(1);
        let hasher = SegmentsMd5::start();
        let to_hash = hasher.sender();
        let size = plan.segment_size;
        let feeder = async move {
            let mut chunks = ReaderStream::with_capacity(source, CHUNK);
            let mut total = 0u64;
            let mut in_segment = 0u64;
            // The current segment: where its bytes go, and where its MD5 goes once it is complete.
            let mut current: Option<(
                tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
                tokio::sync::oneshot::Sender<String>,
            )> = None;
            let mut interrupted = None;
            while let Some(item) = chunks.next().await {
                let mut chunk = match item {
                    Ok(chunk) => chunk,
                    // The client went away: what it sent is kept (the segment in progress ends here) for a
                    // resume.
                    Err(e) if client_gone(&e) => {
                        interrupted = Some(e);
                        break;
                    }
                    // On any other source failure, returning drops the segment PUTs in flight: aborted,
                    // nothing committed.
                    Err(e) => {
                        return Err(UploadError::Source {
                            bytes: total,
                            source: e,
                        });
                    }
                };
                total += chunk.len() as u64;
                while !chunk.is_empty() {
                    if current.is_none() {
                        let index = started.load(Ordering::SeqCst);
                        if index >= plan.max_segments {
                            return Err(UploadError::TooLarge {
                                limit: size.saturating_mul(plan.max_segments as u64),
                            });
                        }
                        let (tx, rx) = tokio::sync::mpsc::channel(SEGMENT_QUEUE);
                        let (digest_tx, digest_rx) = tokio::sync::oneshot::channel();
                        started.fetch_add(1, Ordering::SeqCst);
                        if seg_tx.send((index, rx, digest_rx)).await.is_err() {
                            // The PUTs stopped on an error, which they report.
                            std::future::pending::<()>().await;
                        }
                        in_segment = 0;
                        current = Some((tx, digest_tx));
                    }
                    let room = size - in_segment;
                    let part = if chunk.len() as u64 > room {
                        chunk.split_to(room as usize)
                    } else {
                        std::mem::take(&mut chunk)
                    };
                    in_segment += part.len() as u64;
                    // The hasher lives until `finish` below: a send cannot fail before then.
                    let _ = to_hash.send(HashFeed::Chunk(part.clone())).await;
                    if let Some((tx, _)) = &current
                        && tx.send(Ok(part)).await.is_err()
                    {
                        // That segment's PUT ended early: it reports why.
                        std::future::pending::<()>().await;
                    }
                    if in_segment == size
                        && let Some((_, digest)) = current.take()
                    {
                        let _ = to_hash.send(HashFeed::EndSegment(digest)).await;
                    }
                }
            }
            if let Some((_, digest)) = current.take() {
                let _ = to_hash.send(HashFeed::EndSegment(digest)).await;
            }
            Ok((total, interrupted))
        };
        let putter = futures_util::stream::poll_fn(move |cx| seg_rx.poll_recv(cx))
            .map(|(index, mut rx, digest): Feed| async move {
                let name = segment_name(prefix, index);
                let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
                let up = self
                    .upload_stream(
                        segments_container,
                        &name,
                        body,
                        &[],
                        size,
                        Md5From::Given(digest),
                    )
                    .await?;
                Ok::<_, UploadError>((name, up))
            })
            .buffered(SEGMENTS_IN_FLIGHT)
            .try_collect::<Vec<_>>();
        let ((bytes, interrupted), segments) =
            futures_util::future::try_join(feeder, putter).await?;
        let md5 = hasher.finish().await.unwrap_or_default();
        Ok(Streamed {
            bytes,
            md5,
            segments,
            interrupted,
        })
    }

    /// `PUT ?multipart-manifest=put`: Swift checks every segment's ETag and size before storing it.
    async fn put_manifest(
        &self,
        container: &str,
        key: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> Result<ObjectHead, Error> {
        self.put_object_with(
            container,
            key,
            body,
            headers,
            &[("multipart-manifest", "put")],
        )
        .await
    }

    /// The segments a large object owns, read before it is replaced or deleted, so that they can be deleted
    /// after it: only those where swiftftp, python-swiftclient, rclone or ftp-cloudfs put this file's own
    /// segments, named exactly as they name them (see [`SegmentRef::is_own_segment_of`] and
    /// [`SegmentRef::is_own_folder_of`]). A manifest is something any user with write access to the container
    /// can plant; following it elsewhere (another container, another file's folder, a nested name's folder) would
    /// delete, with the token of whoever replaces the file, objects the planter could not touch. Reading through
    /// a manifest is Swift's business (it checks the reader's rights); deleting through one is ours. Nothing for
    /// a plain object.
    ///
    /// So the segments a renamed file keeps under its old name are left when it is deleted (logged): nothing a
    /// planter cannot also write says they are not another file's.
    pub async fn segments_of(
        &self,
        container: &str,
        key: &str,
        head: &ObjectHead,
    ) -> Result<Vec<SegmentRef>, Error> {
        if head.static_large_object {
            let listed = self.slo_segments(container, key).await?;
            let total = listed.len();
            let owned: Vec<SegmentRef> = listed
                .into_iter()
                .filter(|s| s.is_own_segment_of(container, key))
                .collect();
            if owned.len() < total {
                tracing::warn!(%container, %key, left = total - owned.len(), "leaving segments an SLO manifest names outside the file's own segment folder");
            }
            return Ok(owned);
        }
        let Some(manifest) = head.dlo_manifest.as_deref() else {
            return Ok(Vec::new());
        };
        let Some(SegmentRef {
            container: seg_container,
            key: prefix,
        }) = SegmentRef::from_manifest_header(manifest)
        else {
            return Ok(Vec::new());
        };
        // ftp-cloudfs wrote `c/FILE.part` (no slash, so `FILE.partX` would match too): its own are under `FILE.part/`.
        let prefix = if seg_container == container && prefix == format!("{key}.part") {
            format!("{prefix}/")
        } else {
            prefix
        };
        let folder = SegmentRef {
            container: seg_container,
            key: prefix,
        };
        if !folder.key.ends_with('/') || !folder.is_own_folder_of(container, key) {
            tracing::warn!(%container, %key, manifest, "leaving a DLO's segments: its prefix is not the file's own segment folder");
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        let mut entries = std::pin::pin!(self.list_objects(&folder.container, &folder.key, None));
        while let Some(e) = entries.try_next().await? {
            if let ObjectEntry::Object(o) = e {
                // Only segments right in the folder, named like segments (`00000003`): what lies deeper belongs
                // to a file whose name starts like this folder's.
                let direct = o
                    .name
                    .strip_prefix(&folder.key)
                    .is_some_and(|rest| numbered_parts(rest, 1..=1));
                if direct {
                    found.push(SegmentRef {
                        container: folder.container.clone(),
                        key: o.name,
                    });
                }
            }
        }
        Ok(found)
    }

    /// The segments a Static Large Object's manifest lists (read in its stored form), wherever they are.
    pub async fn slo_segments(&self, container: &str, key: &str) -> Result<Vec<SegmentRef>, Error> {
        Ok(self
            .slo_manifest(container, key)
            .await?
            .iter()
            .filter_map(|e| SegmentRef::from_slo_path(&e.path))
            .collect())
    }

    /// A Static Large Object's manifest, read in its stored form (`multipart-manifest=get`).
    pub async fn slo_manifest(
        &self,
        container: &str,
        key: &str,
    ) -> Result<Vec<ManifestEntry>, Error> {
        let op = Op::GetObject {
            container: container.to_owned(),
            key: key.to_owned(),
        };
        let body = self
            .fetch_small(&op, |http, base| {
                http.get(object_url_with(
                    base,
                    container,
                    key,
                    &[("multipart-manifest", "get")],
                ))
            })
            .await?;
        let entries: Vec<StoredEntry> = serde_json::from_slice(&body)
            .map_err(|e| Error::protocol(op.clone(), e.to_string()))?;
        Ok(entries
            .into_iter()
            .map(|e| ManifestEntry {
                path: if e.name.starts_with('/') {
                    e.name
                } else {
                    format!("/{}", e.name)
                },
                etag: e.hash,
                size_bytes: e.bytes,
                range: e.range,
            })
            .collect())
    }

    /// Deletes segments, a few at a time; already gone is fine. Returns those that could not
    /// be deleted (logged: a leftover segment costs space, never correctness).
    pub async fn delete_segments(&self, segments: Vec<SegmentRef>) -> Vec<SegmentRef> {
        futures_util::stream::iter(segments)
            .map(|s| async move {
                match self.delete_object(&s.container, &s.key).await {
                    Ok(()) => None,
                    Err(e) if e.kind() == super::ErrorKind::NotFound => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot delete a segment");
                        Some(s)
                    }
                }
            })
            .buffer_unordered(DELETE_CONCURRENCY)
            .filter_map(|left| async move { left })
            .collect()
            .await
    }
}

impl SegmentRef {
    /// Reads an SLO manifest's segment path (`/container/key`): Swift stores and resolves it as written, so a
    /// `%41` in it is three characters, not an `A`.
    pub fn from_slo_path(path: &str) -> Option<Self> {
        split_path(path)
    }

    /// Reads an `X-Object-Manifest` value (`container/prefix`): Swift percent-decodes it, and
    /// [`Self::to_manifest_value`] encodes it.
    pub fn from_manifest_header(value: &str) -> Option<Self> {
        let decoded = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .ok()?;
        split_path(&decoded)
    }

    /// Whether this SLO segment is one of `container/key`'s own, named exactly as its writers name them:
    /// `<container>_segments/<key>/slo/<id>/<index>` (swiftftp), `<key>/slo/<mtime>/<size>/<segment size>/<index>`
    /// (python-swiftclient), or `<container>/<key>.part/<index>` (ftp-cloudfs). Every part after the name is a
    /// number or time, so the segments of a file named `<key>/a` or `<key>/slo/x` are never `<key>`'s.
    pub fn is_own_segment_of(&self, container: &str, key: &str) -> bool {
        self.is_own_slo_segment_of(container, key)
            || (self.container == container
                && self
                    .key
                    .strip_prefix(&format!("{key}.part/"))
                    .is_some_and(|rest| numbered_parts(rest, 1..=1)))
    }

    /// The `<container>_segments/<key>/slo/...` case of [`Self::is_own_segment_of`] (the only one swiftftp writes).
    pub fn is_own_slo_segment_of(&self, container: &str, key: &str) -> bool {
        self.container == format!("{container}{SEGMENTS_SUFFIX}")
            && self
                .key
                .strip_prefix(&format!("{key}/slo/"))
                .is_some_and(|rest| numbered_parts(rest, 2..=usize::MAX))
    }

    /// Whether this DLO prefix is the file's own segment folder: `<container>_segments/<key>/<time>/<size>/`
    /// (rclone), `.../<key>/<mtime>/<size>/<segment size>/` (python-swiftclient), or `<container>/<key>.part/`
    /// (ftp-cloudfs). Stricter than a prefix test: `<key>/` alone would also hold the segments of every file named
    /// `<key>/...`. Only the segments right in it are taken (see [`Session::segments_of`]).
    pub fn is_own_folder_of(&self, container: &str, key: &str) -> bool {
        if self.container == container {
            return self.key == format!("{key}.part/");
        }
        self.container == format!("{container}{SEGMENTS_SUFFIX}")
            && self
                .key
                .strip_prefix(&format!("{key}/"))
                .and_then(|rest| rest.strip_suffix('/'))
                .is_some_and(|rest| numbered_parts(rest, 1..=4))
    }

    /// `container/key`, percent-encoded where a header value needs it (Swift decodes it).
    pub fn to_manifest_value(&self) -> String {
        const SET: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
            .add(b' ')
            .add(b'%')
            .add(b'?')
            .add(b'#')
            .add(b'"');
        format!(
            "{}/{}",
            percent_encoding::utf8_percent_encode(&self.container, SET),
            percent_encoding::utf8_percent_encode(&self.key, SET)
        )
    }
}

/// Whether `rest` is `count` `/`-separated parts, each what segment writers put after a file's name: a number, a
/// time (`1580702706.000000`) or swiftftp's upload id (`1733240000000000-1a2b3c4d`). Never `slo`, `..` or a name.
fn numbered_parts(rest: &str, count: std::ops::RangeInclusive<usize>) -> bool {
    let numbered = |part: &str| {
        part.starts_with(|c: char| c.is_ascii_digit())
            && part
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == '.' || c == '-')
    };
    count.contains(&rest.split('/').count()) && rest.split('/').all(numbered)
}

/// `/container/key` or `container/key` into its parts, taken as written.
fn split_path(path: &str) -> Option<SegmentRef> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let (container, key) = path.split_once('/')?;
    (!container.is_empty() && !key.is_empty()).then(|| SegmentRef {
        container: container.to_owned(),
        key: key.to_owned(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_readable_by_their_container_s_readers_and_listed_by_nobody() {
        assert_eq!(
            segments_read_acl(Some(".r:*,.rlistings")).as_deref(),
            Some(".r:*")
        );
        assert_eq!(
            segments_read_acl(Some("test2:*, .r:*")).as_deref(),
            Some("test2:*,.r:*")
        );
        assert_eq!(segments_read_acl(Some(".rlistings")), None);
        assert_eq!(segments_read_acl(Some("")), None);
        assert_eq!(segments_read_acl(None), None);
    }

    #[test]
    fn slo_paths_are_taken_as_written_and_headers_decoded() {
        assert_eq!(
            SegmentRef::from_slo_path("/c_segments/a%41.bin/slo/1/00000000"),
            Some(SegmentRef {
                container: "c_segments".into(),
                key: "a%41.bin/slo/1/00000000".into()
            })
        );
        assert_eq!(
            SegmentRef::from_manifest_header("c/a%20b.part/").map(|s| s.key),
            Some("a b.part/".into())
        );
        assert_eq!(
            SegmentRef::from_manifest_header("c_segments/a%2541.bin/").map(|s| s.key),
            Some("a%41.bin/".into())
        );
        assert_eq!(split_path("/c"), None);
        assert_eq!(split_path("/c/"), None);
        let owned = |c: &str, k: &str| SegmentRef {
            container: c.into(),
            key: k.into(),
        };
        // A header value written by to_manifest_value reads back as the same folder.
        let folder = owned("c_segments", "d i r/ä%2F.bin/");
        assert_eq!(
            SegmentRef::from_manifest_header(&folder.to_manifest_value()),
            Some(folder)
        );
    }

    #[test]
    fn only_a_files_own_segments_are_deleted_with_it() {
        let seg = |c: &str, k: &str| SegmentRef {
            container: c.into(),
            key: k.into(),
        };
        // Where each writer puts a file's own segments.
        assert!(seg("c", "big.part/00000001").is_own_segment_of("c", "big"));
        assert!(
            seg("c_segments", "d/x/slo/1733240000000000-1a2b3c4d/00000000")
                .is_own_segment_of("c", "d/x")
        );
        assert!(
            seg("c_segments", "d/x/slo/1580702706.000000/6/3/00000001")
                .is_own_segment_of("c", "d/x")
        );
        assert!(seg("c_segments", "d/x/1580702706.000000/6/3/").is_own_folder_of("c", "d/x"));
        assert!(seg("c_segments", "d/x/1580702706.5/6/").is_own_folder_of("c", "d/x"));
        assert!(seg("c", "big.part/").is_own_folder_of("c", "big"));
        // A renamed file's segments under its old name: left (a planted manifest could name them just as well).
        assert!(!seg("c_segments", "old/slo/1/00000000").is_own_segment_of("c", "new"));
        // Nested names: the segments of `d/x/a` and `d/x/slo/y` are not `d/x`'s, nor is `d/x/` a folder of its own.
        assert!(!seg("c_segments", "d/x/a/slo/1/00000000").is_own_segment_of("c", "d/x"));
        assert!(!seg("c_segments", "d/x/slo/y/slo/1/00000000").is_own_segment_of("c", "d/x"));
        assert!(!seg("c_segments", "d/x/").is_own_folder_of("c", "d/x"));
        assert!(!seg("c_segments", "d/x/a/").is_own_folder_of("c", "d/x"));
        assert!(!seg("c_segments", "d/x/slo/").is_own_folder_of("c", "d/x"));
        // Another container: what a planted manifest points at.
        assert!(!seg("victim", "data/1").is_own_segment_of("shared", "report.txt"));
        assert!(
            !seg("victim_segments", "report.txt/slo/1/00000000")
                .is_own_segment_of("shared", "report.txt")
        );
        assert!(
            !seg("victim_segments", "report.txt/1/2/").is_own_folder_of("shared", "report.txt")
        );
        // Dots and control characters are never segment names.
        assert!(!seg("c_segments", "d/x/slo/../00000000").is_own_segment_of("c", "d/x"));
        assert!(!seg("c_segments", "d/x/slo/.\t./00000000").is_own_segment_of("c", "d/x"));
        assert!(!seg("c", "big.part/..").is_own_segment_of("c", "big"));
        // A DLO prefix: another file's folder, the whole segments container, a name's prefix, the manifest's own
        // folder.
        assert!(!seg("c_segments", "d/xy/1/").is_own_folder_of("c", "d/x"));
        assert!(!seg("c_segments", "").is_own_folder_of("c", "d/x"));
        assert!(!seg("c", "e").is_own_folder_of("c", "dlo"));
        assert!(!seg("c", "d/").is_own_folder_of("c", "d/big"));
        assert!(!seg("c", "big.partX/1").is_own_segment_of("c", "big"));
        assert!(!seg("c", "big.part/sub/1").is_own_segment_of("c", "big"));
    }

    #[test]
    fn segment_names_sort_in_order() {
        assert!(segment_name("p/", 9) < segment_name("p/", 10));
        assert_eq!(segment_name("k/slo/1/", 3), "k/slo/1/00000003");
    }
}
