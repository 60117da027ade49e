//! Streaming an object up: bytes go from any `AsyncRead` to one chunked `PUT` as they arrive, while their MD5
//! is computed; Swift's ETag must match it.
//!
//! Memory is one read buffer ([`CHUNK`]) plus hyper's send buffer, whatever the object's size. Swift commits a
//! chunked `PUT` only when the final chunk arrives: if the source fails (the FTP client resets the data
//! connection) the request is aborted and nothing is created, and an object being overwritten stays as it was.
//! A source that simply ends early (a clean close) cannot be told from a complete upload: stream mode FTP has no
//! length.
//!
//! Timeouts bound Swift's silence, never the upload's length: Swift not taking bytes for the answer timeout (its
//! socket stays full) fails the upload, and so does no answer within that time after the last byte.
//!
//! An upload that goes past the cluster's `max_file_size` is stopped at that point ([`UploadError::TooLarge`])
//! instead of streaming gigabytes that Swift would then refuse with 413. Storing such objects needs segments
//! (`large/`).

use super::client::Replay;
use super::error::{Error, Op};
use super::hashing::Md5Worker;
use super::{ObjectHead, Session};
use bytes::Bytes;
use futures_util::StreamExt;

use std::sync::{Arc, Mutex};
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

/// Bytes read from the source at a time (and so the size of most HTTP chunks).
pub(super) const CHUNK: usize = 256 * 1024;

/// A finished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// Bytes stored.
    pub bytes: u64,
    /// Hex MD5 of the content (for a plain object, equal to the ETag Swift answered).
    pub md5: String,
    /// Segments of a Static Large Object; 0 for a plain object.
    pub segments: usize,
}

/// Why an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Reading the source failed; the request was aborted and nothing was stored.
    #[error("reading the upload failed after {bytes} bytes: {source}")]
    Source {
        /// Bytes read before the failure.
        bytes: u64,
        /// The source's error.
        source: std::io::Error,
    },
    /// Swift refused or failed.
    #[error(transparent)]
    Swift(#[from] Error),
    /// The source went past the largest object the cluster takes (`max_file_size`); stopped there, nothing stored.
    #[error("the upload is larger than the cluster's max_file_size of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// Swift stored content whose MD5 differs from what was sent; the object was deleted again.
    #[error(
        "Swift's ETag {etag} does not match the MD5 {md5} of the bytes sent; the object was deleted"
    )]
    Checksum {
        /// The MD5 of what was sent.
        md5: String,
        /// What Swift answered.
        etag: String,
    },
}

/// Where the MD5 an upload's ETag must match comes from.
pub(super) enum Md5From {
    /// Computed by the upload itself, beside the network path.
    Own,
    /// Computed by the caller over the same bytes (a segment's, by the large-object hasher), delivered once the
    /// last byte went through.
    Given(tokio::sync::oneshot::Receiver<String>),
}

/// Added to the answer deadline: the body's "last byte" left this process, but megabytes of it may still sit in
/// the kernel's socket buffers (several MiB on a fast local link) on their way to a slow Swift.
const IN_FLIGHT_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Resolves `idle` (plus [`IN_FLIGHT_GRACE`]) after the body's last byte went out: the upload's answer deadline.
/// Swift answers a streamed PUT only after the last byte, so there is no deadline while the body flows; if the
/// body never ends (the request failed first), this never resolves and the request's own error wins.
async fn answer_deadline(ended: tokio::sync::oneshot::Receiver<()>, idle: std::time::Duration) {
    if ended.await.is_err() {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(idle + IN_FLIGHT_GRACE).await;
}

/// Since when hyper has held the last chunk without asking for the next: Swift is not taking the bytes.
type Held = Arc<Mutex<Option<std::time::Instant>>>;

/// Where an upload's bytes go to be hashed.
type HashSender = tokio::sync::mpsc::Sender<Bytes>;

/// Resolves when Swift has not taken a chunk for `idle` (its socket buffers are full and stay full): a stalled
/// Swift, which would otherwise hold the upload (and the FTP client behind it) forever. A slow FTP client does
/// not count: hyper is then waiting for the next chunk, not holding one.
async fn swift_stalled(held: Held, idle: std::time::Duration) {
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let since = *held.lock().unwrap_or_else(|e| e.into_inner());
        if since.is_some_and(|t| t.elapsed() >= idle) {
            return;
        }
    }
}

/// What the body stream leaves behind for the caller once the request is over.
#[derive(Default)]
struct Progress {
    bytes: u64,
    failure: Option<std::io::Error>,
    too_large: bool,
}

impl Session {
    /// Streams `source` into `container/key` with the given headers (e.g. `Content-Type`).
    pub async fn upload<R>(
        &self,
        container: &str,
        key: &str,
        source: R,
        headers: &[(&str, &str)],
        max_bytes: u64,
    ) -> Result<Uploaded, UploadError>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let chunks = ReaderStream::with_capacity(source, CHUNK);
        self.upload_stream(container, key, chunks, headers, max_bytes, Md5From::Own)
            .await
    }

    /// Streams `chunks` into `container/key`; the MD5 its ETag must match comes from `digest`.
    pub(super) async fn upload_stream<S>(
        &self,
        container: &str,
        key: &str,
        chunks: S,
        headers: &[(&str, &str)],
        max_bytes: u64,
        digest: Md5From,
    ) -> Result<Uploaded, UploadError>
    where
        S: futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    {
        let op = Op::PutObject {
            container: container.to_owned(),
            key: key.to_owned(),
        };
        let own = match digest {
            Md5From::Own => Ok(Md5Worker::start()),
            Md5From::Given(rx) => Err(rx),
        };
        // The stream's senders go away when the source ends (the `chain`ed end below), not when hyper drops the
        // body, so that `finish` never waits on hyper's bookkeeping.
        let to_hash = Arc::new(Mutex::new(own.as_ref().ok().map(Md5Worker::sender)));
        let at_end = Arc::clone(&to_hash);
        let progress = Arc::new(Mutex::new(Progress::default()));
        // Moved, not shared: an empty body of declared length is never polled (no end is seen), and then dropping
        // the body is what drops the last sender, so that `finish` below returns.
        let stream = counted_and_hashed(chunks, max_bytes, to_hash, Arc::clone(&progress));
        // The end of the source also starts the clock for Swift's answer (see `answer_deadline`).
        let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<()>();
        let ended_tx = Mutex::new(Some(ended_tx));
        let source_ended = Arc::new(move || {
            at_end.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(tx) = ended_tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = tx.send(());
            }
        });
        let at_source_end = Arc::clone(&source_ended);
        let end = futures_util::stream::poll_fn(move |_| {
            at_source_end();
            std::task::Poll::Ready(None::<std::io::Result<Bytes>>)
        });
        let stream = stream.chain(end);
        // A body of declared length is not polled past its last byte by hyper: its end is where its length is.
        let declared: Option<u64> = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
            .and_then(|(_, v)| v.parse().ok());
        let mut handed = 0u64;
        // Stamped when a chunk goes to hyper, cleared when hyper asks for the next one.
        let held: Held = Arc::new(Mutex::new(None));
        let stamp = Arc::clone(&held);
        let mut stream = Box::pin(stream);
        let stream = futures_util::stream::poll_fn(move |cx| {
            *stamp.lock().unwrap_or_else(|e| e.into_inner()) = None;
            let next = stream.as_mut().poll_next_unpin(cx);
            if let std::task::Poll::Ready(Some(Ok(chunk))) = &next {
                handed += chunk.len() as u64;
                if Some(handed) == declared {
                    source_ended();
                } else {
                    *stamp.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(std::time::Instant::now());
                }
            }
            next
        });
        let mut body = Some(reqwest::Body::wrap_stream(stream));
        let put = self.send(&op, Replay::Never, |http, base| {
            let mut req = http.put(super::urls::object_url(base, container, key));
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            match body.take() {
                Some(b) => req.body(b),
                None => req,
            }
        });
        let result = tokio::select! {
            result = put => result,
            () = answer_deadline(ended_rx, self.idle_timeout()) => Err(Error::timed_out(op.clone())),
            () = swift_stalled(held, self.idle_timeout()) => {
                tracing::warn!(%container, %key, "Swift stopped taking the upload: giving up");
                Err(Error::timed_out(op.clone()))
            }
        };
        let (bytes, failure, too_large) = {
            let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
            (p.bytes, p.failure.take(), p.too_large)
        };
        if too_large {
            return Err(UploadError::TooLarge { limit: max_bytes });
        }
        if let Some(source) = failure {
            return Err(UploadError::Source { bytes, source });
        }
        let head = ObjectHead::from_headers(result?.headers());
        // Dropping the request dropped the body stream and its sender: the hasher has seen every chunk.
        let md5 = match own {
            Ok(hasher) => hasher.finish().await,
            Err(given) => given.await.ok(),
        }
        .unwrap_or_default();
        self.checked_against_etag(container, key, head, md5, bytes)
            .await
    }

    /// The upload's result once Swift answered: its ETag must be the MD5 of the bytes sent, else the object is
    /// deleted and the upload fails.
    async fn checked_against_etag(
        &self,
        container: &str,
        key: &str,
        head: ObjectHead,
        md5: String,
        bytes: u64,
    ) -> Result<Uploaded, UploadError> {
        match head.etag {
            Some(etag) if etag.eq_ignore_ascii_case(&md5) => Ok(Uploaded {
                bytes,
                md5,
                segments: 0,
            }),
            other => {
                let etag = other.unwrap_or_default();
                tracing::error!(%container, %key, %md5, %etag, "checksum mismatch after upload: deleting the object");
                if let Err(e) = self.delete_object(container, key).await {
                    tracing::error!(error = %e, "cannot delete the object with the wrong checksum");
                }
                Err(UploadError::Checksum { md5, etag })
            }
        }
    }
}

/// `chunks` counted into `progress` (failing past `max_bytes`: Swift would refuse it with 413, but only after
/// every byte had been sent) and fed to the hasher while `to_hash` holds its sender; a source error is kept in
/// `progress` for the caller (hyper only needs to know the body failed).
fn counted_and_hashed<S>(
    chunks: S,
    max_bytes: u64,
    to_hash: Arc<Mutex<Option<HashSender>>>,
    progress: Arc<Mutex<Progress>>,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static
where
    S: futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
{
    chunks.then(move |item: std::io::Result<Bytes>| {
        let to_hash = to_hash.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let seen = Arc::clone(&progress);
        async move {
            match item {
                Ok(chunk) => {
                    {
                        // A std mutex, locked for a counter update and never across an await.
                        let mut p = seen.lock().unwrap_or_else(|e| e.into_inner());
                        p.bytes += chunk.len() as u64;
                        if p.bytes > max_bytes {
                            p.too_large = true;
                            return Err(std::io::Error::other("over the cluster's max_file_size"));
                        }
                    }
                    if let Some(tx) = to_hash {
                        // The receiver lives until `finish`; a send cannot fail before then.
                        let _ = tx.send(chunk.clone()).await;
                    }
                    Ok(chunk)
                }
                Err(e) => {
                    let copy = std::io::Error::new(e.kind(), e.to_string());
                    seen.lock().unwrap_or_else(|e| e.into_inner()).failure = Some(e);
                    Err(copy)
                }
            }
        }
    })
}

/// Whether a source error means the client went away mid-upload (as opposed to a failure worth reporting):
/// reset, aborted (libunftp's end of data with the control connection closed), broken, cut short.
pub fn client_gone(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::UnexpectedEof
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_gone_is_told_from_other_failures() {
        use std::io::{Error, ErrorKind};
        assert!(client_gone(&Error::from(ErrorKind::ConnectionReset)));
        assert!(client_gone(&Error::from(ErrorKind::ConnectionAborted)));
        assert!(!client_gone(&Error::from(ErrorKind::TimedOut)));
        assert!(!client_gone(&Error::other("tls")));
    }
}
