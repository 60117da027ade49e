//! Cuts an upload's source into segment `PUT`s: a queue of chunks per segment, at most [`SEGMENTS_IN_FLIGHT`]
//! segments in flight, the content MD5 and each segment's MD5 computed by one hasher on the way.
//!
//! Not here: what the segments become (the manifest, `mod.rs`) or deleting them when the upload fails
//! (`cleanup.rs`).

use crate::swift::hashing::{HashFeed, SegmentsMd5};
use crate::swift::upload::client_gone;
use crate::swift::upload::{CHUNK, Md5From};
use crate::swift::{Session, UploadError, Uploaded};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

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

/// Chunks ([`CHUNK`] bytes each) queued towards one segment's PUT.
pub(super) const SEGMENT_QUEUE: usize = 4;

/// Segment PUTs in flight at once.
const SEGMENTS_IN_FLIGHT: usize = 2;

/// What [`Session::stream_segments`] stored.
pub(super) struct Streamed {
    pub(super) bytes: u64,
    pub(super) md5: String,
    /// (name, upload) of each segment, in order.
    pub(super) segments: Vec<(String, Uploaded)>,
    /// Why the source stopped early, when its client went away.
    pub(super) interrupted: Option<std::io::Error>,
}

pub(super) fn segment_name(prefix: &str, index: usize) -> String {
    format!("{prefix}{index:08}")
}

/// A name unique to one upload: the time in microseconds and 32 random bits.
pub(in crate::swift) fn upload_id() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    format!("{micros}-{:08x}", fastrand::u32(..))
}

impl Session {
    /// Cuts `source` into segment PUTs, at most [`SEGMENTS_IN_FLIGHT`] at once; the total bytes, the content
    /// MD5 and the segments (name, upload) in order.
    pub(super) async fn stream_segments<R>(
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
        let (seg_tx, mut seg_rx) = tokio::sync::mpsc::channel::<Feed>(1);
        let hasher = SegmentsMd5::start();
        let to_hash = hasher.sender();
        let size = plan.segment_size;
        let feeder = feed_segments(source, plan, started, seg_tx, to_hash);
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
}

/// A segment to `PUT`: its index, its bytes as they come, and its MD5 once it is complete.
type Feed = (
    usize,
    tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    tokio::sync::oneshot::Receiver<String>,
);

/// Reads `source` and cuts it into segments of `plan.segment_size`: each new segment goes to `segments` (to be
/// `PUT`), each chunk to its segment and to the hasher. The total bytes read, and why the source stopped early
/// when its client went away (what it sent is kept for a resume: the segment in progress ends there).
async fn feed_segments<R>(
    source: R,
    plan: SegmentPlan,
    started: &AtomicUsize,
    seg_tx: tokio::sync::mpsc::Sender<Feed>,
    to_hash: tokio::sync::mpsc::Sender<HashFeed>,
) -> Result<(u64, Option<std::io::Error>), UploadError>
where
    R: AsyncRead + Send + Unpin + 'static,
{
    let size = plan.segment_size;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_sort_in_order() {
        assert!(segment_name("p/", 9) < segment_name("p/", 10));
        assert_eq!(segment_name("k/slo/1/", 3), "k/slo/1/00000003");
    }
}
