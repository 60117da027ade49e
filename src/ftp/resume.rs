//! Uploads at an offset: `REST n` + `STOR` and `APPE` (which libunftp turns into `put` at the file's size).
//! The file's first `n` bytes are kept and the client's bytes follow them; the result replaces the file only
//! once complete (a failure leaves the file, or the partial upload, as it was).
//!
//! Where the first `n` bytes come from, in this order:
//! - a partial upload of this name (a new file whose client went away mid-upload; `swift/resume.rs`): its
//!   segments, up to `n`. `SIZE` of such a name answers the partial size, which is what `lftp put -c` and
//!   `curl -C -` ask before continuing;
//! - the file itself, when `n` is at most its size: up to [`REWRITE_LIMIT`] bytes are read back and written
//!   again with the new ones (a small file stays a plain object, with its MD5); beyond that a Static Large
//!   Object's segments are reused, cut at `n`, and a plain object becomes the first segment by a server-side
//!   copy. A Dynamic Large Object is refused (`502`): its segments are a prefix listing, not a list to extend.
//! - nothing: an offset beyond what is stored gets `550` and nothing is written.
//!
//! After an interrupted *overwrite* the old file is still whole (partial uploads are kept for new names only),
//! so `SIZE` answers the old size and `put -c` would append the rest of the new file to the old one: such a
//! resume is refused (`550` with the reason, from the mark `swift/resume.rs` leaves) until the file is written
//! whole again. (The refusal comes after libunftp's `150`, so clients report it rather than fall back.)

use super::error::FtpError;
use super::location::Location;
use super::storage::{SwiftStorage, is_marker};
use crate::swift::{self, PLAIN_LOOKAHEAD, first_bytes_of};
use futures_util::TryStreamExt;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Files continued at an offset up to this size are read back and written again whole (plain, MD5 known).
pub(super) const REWRITE_LIMIT: u64 = PLAIN_LOOKAHEAD;

/// The partial upload a resume of `loc` continues (`head`: what is at the name). A partial upload is only ever
/// kept for a name with nothing at it; a file there may instead carry the mark of an interrupted overwrite,
/// which refuses the resume while the file is still the old one.
async fn continuable_partial(
    session: &swift::Session,
    loc: &Location,
    head: Option<&swift::ObjectHead>,
) -> Result<Option<super::partial::PartialUpload>, FtpError> {
    let Location::Object { container, key } = loc else {
        return Ok(None);
    };
    let partial = super::partial::find(session, container, key).await?;
    if let (Some(head), Some(record)) = (head, &partial)
        && record.interrupted_overwrite
        && head
            .last_modified
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .is_some_and(|t| t.as_millis() < u128::from(record.saved_ms))
    {
        return Err(FtpError::Refused {
            location: loc.clone(),
            what: "an upload over this file was cut off, and the file is still the old one: continuing it would mix old and new; upload the file whole",
        });
    }
    Ok(match (head, partial) {
        (None, Some(p)) if !p.interrupted_overwrite => Some(p),
        _ => None,
    })
}

/// The first `start_pos` bytes of a file too large to rewrite, as manifest entries: a Static Large Object's
/// segments cut at the offset, or a plain object copied (server-side) into one segment, which is returned as
/// made (deleted again if the attempt fails). `None` when the file holds fewer bytes.
async fn first_bytes_of_file(
    session: &swift::Session,
    container: &str,
    key: &str,
    head: &swift::ObjectHead,
    start_pos: u64,
) -> Result<Option<(Vec<swift::ManifestEntry>, Vec<swift::ObjectRef>)>, FtpError> {
    if head.static_large_object {
        let entries = session.slo_manifest(container, key).await?;
        return Ok(first_bytes_of(&entries, start_pos).map(|kept| (kept, Vec::new())));
    }
    let etag = head.etag.clone().unwrap_or_default();
    let base = session
        .object_as_segment(container, key, head.content_length, &etag)
        .await?;
    let made: Vec<swift::ObjectRef> = swift::ObjectRef::from_slo_path(&base.path)
        .into_iter()
        .collect();
    match first_bytes_of(std::slice::from_ref(&base), start_pos) {
        Some(kept) => Ok(Some((kept, made))),
        None => {
            session.delete_objects(made).await;
            Ok(None)
        }
    }
}

impl SwiftStorage {
    /// STOR/APPE at `start_pos` (> 0) of `container/key`.
    pub(super) async fn store_at<R>(
        &self,
        session: &Arc<swift::Session>,
        loc: &Location,
        container: &str,
        key: &str,
        input: R,
        start_pos: u64,
    ) -> Result<u64, FtpError>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let probe = self.probe(session, container, key).await?;
        if probe.is_dir() {
            return Err(FtpError::NotAFile(loc.clone()));
        }
        let partial = continuable_partial(session, loc, probe.head.as_ref()).await?;
        let content_type = mime_guess::from_path(key).first_or_octet_stream();
        let headers = [("Content-Type", content_type.essence_str())];
        let plan = self.shared.segment_plan();
        let beyond = |size: u64| FtpError::RestartBeyondEnd {
            location: loc.clone(),
            offset: start_pos,
            size,
        };

        // What the first `start_pos` bytes are, what the old file's segments were, and what this attempt made
        // (a copy of a plain file: deleted again if the attempt fails).
        let (kept, old_segments, made) = match (&probe.head, &partial) {
            (None, Some(p)) if start_pos <= p.bytes => {
                let kept = first_bytes_of(&p.segments, start_pos).ok_or_else(|| beyond(p.bytes))?;
                (kept, Vec::new(), Vec::new())
            }
            (None, Some(p)) => return Err(beyond(p.bytes)),
            (None, None) => return Err(beyond(0)),
            (Some(head), _) if is_marker(head) => return Err(FtpError::NotAFile(loc.clone())),
            (Some(head), _) if start_pos > head.content_length => {
                return Err(beyond(head.content_length));
            }
            (Some(head), _) if head.dlo_manifest.is_some() => {
                return Err(FtpError::NotImplemented(
                    "continuing a Dynamic Large Object is not supported: upload the file whole",
                ));
            }
            (Some(head), _) if start_pos <= REWRITE_LIMIT => {
                return self
                    .rewrite_with(session, loc, container, key, head, input, start_pos)
                    .await;
            }
            (Some(head), _) => {
                let old = session.segments_of(container, key, head).await?;
                let (kept, made) = first_bytes_of_file(session, container, key, head, start_pos)
                    .await?
                    .ok_or_else(|| beyond(head.content_length))?;
                (kept, old, made)
            }
        };

        // Every kept piece sits before new segments: each must be as large as the cluster requires.
        if kept.iter().any(|e| e.used_bytes() < plan.min_segment_size) {
            session.delete_objects(made).await;
            return Err(FtpError::NotImplemented(
                "cannot continue the file at this offset: the cluster's min_segment_size is larger than a piece it leaves; upload the file whole",
            ));
        }
        // Only a new name's upload is kept when its client goes away (`partial.rs`).
        let keeper = super::partial::KeepAsPartial {
            session,
            container,
            key,
            content_type: Some(content_type.essence_str()),
        };
        let to = swift::UploadTarget {
            container,
            key,
            headers: &headers,
            plan,
            keep: probe
                .head
                .is_none()
                .then_some(&keeper as &dyn swift::KeepInterrupted),
        };
        let result = session.upload_after(to, kept.clone(), input).await;
        match result {
            Ok(uploaded) => {
                tracing::debug!(path = %loc, offset = start_pos, bytes = uploaded.bytes, segments = uploaded.segments, "stored at an offset");
                if let Some(p) = &partial {
                    super::partial::forget(session, container, key, p, &kept).await;
                }
                let unused = swift::not_listed(old_segments, &kept);
                super::write::delete_objects(session, loc, unused).await;
                Ok(uploaded.bytes - start_pos)
            }
            Err(e) => {
                // The copy of a plain file made for this attempt goes with it (a partial upload of a new name
                // never has one).
                session.delete_objects(made).await;
                // Cut off again: the new record replaced the old one, whose segments past the offset no
                // record names any more.
                if let Some(old) = &partial {
                    super::partial::drop_superseded(session, container, key, old).await;
                }
                Err(e.into())
            }
        }
    }

    /// A small file continued at `start_pos`: its first bytes read back from Swift, then the client's, written
    /// as a new object in its place.
    #[allow(clippy::too_many_arguments)]
    async fn rewrite_with<R>(
        &self,
        session: &Arc<swift::Session>,
        loc: &Location,
        container: &str,
        key: &str,
        head: &swift::ObjectHead,
        input: R,
        start_pos: u64,
    ) -> Result<u64, FtpError>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let old_segments = session.segments_of(container, key, head).await?;
        let download = session.get_object(container, key, 0).await?;
        let first = Exactly {
            inner: tokio_util::io::StreamReader::new(
                download.into_stream().map_err(std::io::Error::other),
            )
            .take(start_pos),
            left: start_pos,
        };
        let content_type = mime_guess::from_path(key).first_or_octet_stream();
        let to = swift::UploadTarget {
            container,
            key,
            headers: &[("Content-Type", content_type.essence_str())],
            plan: self.shared.segment_plan(),
            keep: None,
        };
        let uploaded = session.upload_any(to, first.chain(input)).await?;
        tracing::debug!(path = %loc, offset = start_pos, bytes = uploaded.bytes, md5 = %uploaded.md5, "stored at an offset (rewritten whole)");
        super::write::delete_objects(session, loc, old_segments).await;
        Ok(uploaded.bytes - start_pos)
    }
}

/// The first `left` bytes of a file read back, or a failure (never a short end: the file changed meanwhile,
/// and writing fewer old bytes than the offset would corrupt it).
struct Exactly<R> {
    inner: R,
    left: u64,
}

impl<R: AsyncRead + Unpin> AsyncRead for Exactly<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = polled {
            let read = (buf.filled().len() - before) as u64;
            if read == 0 && self.left > 0 {
                return std::task::Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "the stored file is shorter than the restart offset (it changed meanwhile)",
                )));
            }
            self.left -= read.min(self.left);
        }
        polled
    }
}
