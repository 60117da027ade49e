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
//! **Memory.** The lookahead, then per segment a queue of [`stream::SEGMENT_QUEUE`] chunks; at most two segment PUTs in
//! flight (the next one streams while the previous one waits for Swift's answer). No segment is ever held
//! whole.
//!
//! **Integrity.** Each segment's MD5 is checked against its ETag (`upload.rs`); the whole content's MD5 is
//! computed while streaming, stored on the manifest as `X-Object-Meta-Md5`, and returned. One hasher computes
//! both, hashing the first segment's bytes once (`hashing.rs`): MD5 is most of the gateway's CPU on an upload.
//! Any failure (source, Swift, checksum, the manifest) deletes every segment this upload may have written, also
//! when the upload is dropped half-way (a guard spawns the clean-up, `cleanup.rs`).
//!
//! Not here: deciding *whether* old segments may go (the caller reads them before the upload with
//! [`Session::segments_of`] and deletes them after it with [`Session::delete_objects`]).
//!
//! The parts: `stream.rs` cuts a source into segment `PUT`s; `manifest.rs` reads and shapes manifests;
//! `ownership.rs` decides which segments are a file's own (and so may be deleted with it); `cleanup.rs` deletes
//! segments, also those of a failed upload; `container.rs` makes and removes `<container>_segments`.

mod cleanup;
mod container;
mod lookahead;
mod manifest;
mod ownership;
mod stream;

pub use container::{SEGMENTS_SUFFIX, segments_read_acl};
pub use lookahead::{Head, Lookahead, PLAIN_LOOKAHEAD, read_lookahead};
pub use manifest::{ManifestEntry, first_bytes_of, not_listed};
pub use stream::SegmentPlan;
pub(super) use stream::upload_id;

use super::error::{Error, Op};
use super::{ObjectHead, ObjectRef, Session, UploadError, Uploaded};
use bytes::Bytes;
use cleanup::CleanupGuard;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The metadata header holding a large object's content MD5.
pub const MD5_META: &str = "X-Object-Meta-Md5";

/// Where an upload goes and how: the object, the headers it gets, how it is cut, and who keeps what it stored if
/// its client goes away.
#[derive(Clone, Copy)]
pub struct UploadTarget<'a> {
    /// The container.
    pub container: &'a str,
    /// The object's name.
    pub key: &'a str,
    /// Headers for the object or the manifest (e.g. `Content-Type`).
    pub headers: &'a [(&'a str, &'a str)],
    /// How a large upload is cut.
    pub plan: SegmentPlan,
    /// Who keeps the segments of an upload whose client went away (`None`: they are deleted).
    pub keep: Option<&'a dyn KeepInterrupted>,
}

/// The caller's say over the segments of a large upload whose client went away ([`super::client_gone`]) after
/// sending something: whatever makes them continuable later (the gateway records them as a partial upload,
/// `ftp/partial.rs`). This client only stores and deletes; what a kept upload means is not its business.
#[async_trait::async_trait]
pub trait KeepInterrupted: Send + Sync {
    /// `manifest` (the kept segments, then the new ones, the last one ending where the bytes stopped) holds
    /// `bytes` in all. An error deletes the new segments, as for any other failure.
    async fn keep(&self, manifest: &[ManifestEntry], bytes: u64) -> Result<(), Error>;
}

impl Session {
    /// Stores `source` at `to`: a plain object when it ends within the lookahead, else a Static Large Object.
    pub async fn upload_any<R>(
        self: &Arc<Self>,
        to: UploadTarget<'_>,
        mut source: R,
    ) -> Result<Uploaded, UploadError>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let lookahead = read_lookahead(&mut source, to.plan).await?;
        self.upload_after_lookahead(to, lookahead, source).await
    }

    /// [`Session::upload_any`] once [`read_lookahead`] has read the first bytes from `source`.
    pub async fn upload_after_lookahead<R>(
        self: &Arc<Self>,
        to: UploadTarget<'_>,
        lookahead: Lookahead,
        source: R,
    ) -> Result<Uploaded, UploadError>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let head = match lookahead {
            Lookahead::Whole(head) => {
                return self.put_whole(to.container, to.key, head, to.headers).await;
            }
            Lookahead::Started(head) => head,
        };
        self.upload_after(to, Vec::new(), head.into_reader().chain(source))
            .await
    }

    /// A plain object from memory: streamed like any upload (`upload.rs`), so that a slow Swift taking the
    /// bytes slowly is never cut by a whole-request timeout; its MD5 is checked against the ETag there.
    async fn put_whole(
        &self,
        container: &str,
        key: &str,
        body: Head,
        headers: &[(&str, &str)],
    ) -> Result<Uploaded, UploadError> {
        let len = body.len() as u64;
        self.put_sized(container, key, body.into_reader(), len, headers)
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
    /// With [`UploadTarget::keep`], a source that fails because its client went away
    /// ([`super::upload::client_gone`]) ends its last segment where the bytes stopped (a last segment under the
    /// cluster's minimum is dropped: no manifest could list it before others), and what was stored (kept and
    /// new) is handed to it. Any other failure deletes the new segments and leaves `kept` as it was.
    pub async fn upload_after<R>(
        self: &Arc<Self>,
        to: UploadTarget<'_>,
        kept: Vec<ManifestEntry>,
        source: R,
    ) -> Result<Uploaded, UploadError>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let UploadTarget {
            container,
            key,
            headers,
            plan,
            keep,
        } = to;
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
            let mut bytes = kept_bytes + streamed.bytes;
            if let Some(gone) = streamed.interrupted {
                if let Some(keep) = keep.filter(|_| streamed.bytes > 0) {
                    if let Some(short) =
                        drop_short_last(&mut manifest, kept.len(), plan.min_segment_size)
                    {
                        bytes -= short.used_bytes();
                        if let Some(seg) = ObjectRef::from_slo_path(&short.path) {
                            self.delete_objects(vec![seg]).await;
                        }
                    }
                    keep.keep(&manifest, bytes).await?;
                }
                return Err(UploadError::Source {
                    bytes: streamed.bytes,
                    source: gone,
                });
            }
            // The content MD5 is known only when every byte went through this upload.
            let md5 = match kept.is_empty() {
                true => streamed.md5,
                false => String::new(),
            };
            self.put_manifest(container, key, &manifest, &md5, headers)
                .await?;
            Ok(Uploaded {
                bytes,
                md5,
                segments: manifest.len(),
            })
        }
        .await;
        guard.settle(&result, keep.is_some()).await;
        result
    }

    /// `PUT ?multipart-manifest=put` of `manifest`, with the content MD5 when known: Swift checks every
    /// segment's ETag and size before storing it.
    async fn put_manifest(
        &self,
        container: &str,
        key: &str,
        manifest: &[ManifestEntry],
        md5: &str,
        headers: &[(&str, &str)],
    ) -> Result<ObjectHead, Error> {
        let body = serde_json::to_vec(manifest).map_err(|e| {
            Error::protocol(
                Op::PutObject {
                    container: container.to_owned(),
                    key: key.to_owned(),
                },
                e.to_string(),
            )
        })?;
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if !md5.is_empty() {
            all.push((MD5_META, md5));
        }
        self.put_object_with(
            container,
            key,
            Bytes::from(body),
            &all,
            &[("multipart-manifest", "put")],
        )
        .await
    }
}

/// Takes a partial upload's last segment out of `manifest` when it is below the cluster's minimum (it could not
/// sit in the middle of the continued manifest; the upload continues from before it). Only a new segment (past
/// the first `kept`) is ever taken.
fn drop_short_last(
    manifest: &mut Vec<ManifestEntry>,
    kept: usize,
    min_segment_size: u64,
) -> Option<ManifestEntry> {
    let short = manifest.len() > kept
        && manifest
            .last()
            .is_some_and(|last| last.used_bytes() < min_segment_size);
    short.then(|| manifest.pop()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_upload_s_short_last_segment_is_dropped_unless_kept() {
        let entry = |size: u64| ManifestEntry {
            path: format!("/c_segments/k/slo/1/{size:08}"),
            etag: String::new(),
            size_bytes: size,
            range: None,
        };
        let mut manifest = vec![entry(10), entry(3)];
        assert_eq!(drop_short_last(&mut manifest, 1, 5), Some(entry(3)));
        assert_eq!(manifest, [entry(10)]);
        // At the minimum it stays; a kept (earlier) segment is never taken.
        assert_eq!(drop_short_last(&mut manifest, 0, 10), None);
        assert_eq!(drop_short_last(&mut manifest, 1, 50), None);
        assert_eq!(manifest, [entry(10)]);
    }
}
