//! Streaming an object up: bytes go from any `AsyncRead` to one chunked `PUT` as they arrive, while their MD5
//! is computed; Swift's ETag must match it.
//!
//! Memory is one read buffer ([`CHUNK`]) plus hyper's send buffer, whatever the object's size. Swift commits a
//! chunked `PUT` only when the final chunk arrives: if the source fails (the FTP client resets the data
//! connection) the request is aborted and nothing is created, and an object being overwritten stays as it was.
//! A source that simply ends early (a clean close) cannot be told from a complete upload: stream mode FTP has no
//! length.
//!
//! Not here: objects larger than the cluster's `max_file_size` (Swift refuses them with 413 once the bytes have
//! been sent), which need segments.

use super::client::Replay;
use super::error::{Error, Op};
use super::{ObjectHead, Session};
use bytes::Bytes;
use futures_util::StreamExt;
use md5::{Digest, Md5};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

/// Bytes read from the source at a time (and so the size of most HTTP chunks).
const CHUNK: usize = 256 * 1024;

/// A finished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// Bytes stored.
    pub bytes: u64,
    /// Hex MD5 of the content, equal to the ETag Swift answered.
    pub md5: String,
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

/// What the body stream leaves behind for the caller once the request is over.
#[derive(Default)]
struct Progress {
    hasher: Md5,
    bytes: u64,
    failure: Option<std::io::Error>,
}

impl Session {
    /// Streams `source` into `container/key` with the given headers (e.g. `Content-Type`).
    pub async fn upload<R>(
        &self,
        container: &str,
        key: &str,
        source: R,
        headers: &[(&str, &str)],
    ) -> Result<Uploaded, UploadError>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let op = Op::PutObject {
            container: container.to_owned(),
            key: key.to_owned(),
        };
        let progress = Arc::new(Mutex::new(Progress::default()));
        let seen = Arc::clone(&progress);
        let stream =
            ReaderStream::with_capacity(source, CHUNK).map(move |item: std::io::Result<Bytes>| {
                // A std mutex, locked for a hash update and never across an await.
                let mut p = seen.lock().unwrap_or_else(|e| e.into_inner());
                match item {
                    Ok(chunk) => {
                        p.hasher.update(&chunk);
                        p.bytes += chunk.len() as u64;
                        Ok(chunk)
                    }
                    Err(e) => {
                        // Keep the cause for the caller; hyper only needs to know the body failed.
                        let copy = std::io::Error::new(e.kind(), e.to_string());
                        p.failure = Some(e);
                        Err(copy)
                    }
                }
            });
        let mut body = Some(reqwest::Body::wrap_stream(stream));
        let result = self
            .send(&op, Replay::Never, |http, base| {
                let mut req = http.put(super::client::object_url(base, container, key));
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                match body.take() {
                    Some(b) => req.body(b),
                    None => req,
                }
            })
            .await;
        let (md5, bytes, failure) = {
            let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
            let hasher = std::mem::take(&mut p.hasher);
            (hex::encode(hasher.finalize()), p.bytes, p.failure.take())
        };
        if let Some(source) = failure {
            return Err(UploadError::Source { bytes, source });
        }
        let head = ObjectHead::from_headers(result?.headers());
        match head.etag {
            Some(etag) if etag.eq_ignore_ascii_case(&md5) => Ok(Uploaded { bytes, md5 }),
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
