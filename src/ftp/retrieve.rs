//! RETR: the file is opened (its first `GET` answered) before libunftp sends `150`, then copied to the client.
//!
//! Opening first is what lets a `RETR` that cannot start (no such file, a directory, a `REST` offset beyond the
//! end) be answered by its error alone, as RFC 959 wants, instead of `150` and then `550`. libunftp calls
//! `prepare_get` before the `150`; what it opened waits in the session ([`Prepared`]) for the `get_into` that
//! follows on the data connection, so opening first costs no second request. A `get_into` with nothing waiting
//! (another caller, or a prepared file that did not match) opens the file itself.
//!
//! Not here: how the object is read from Swift (ranges, version pinning, MD5: `swift/download.rs`), the
//! listing path (`read.rs`).

use super::error::FtpError;
use super::location::Location;
use super::storage::is_marker;
use crate::swift;
use futures_util::TryStreamExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// A session's file that `prepare_get` opened for the transfer that follows, if any.
#[derive(Default)]
pub(super) struct Prepared(std::sync::Mutex<Option<Opened>>);

/// An opened file: which path and offset it is for, and what the transfer will send.
struct Opened {
    path: PathBuf,
    start_pos: u64,
    ready: Ready,
}

/// What an opened file sends.
enum Ready {
    /// Nothing: a `REST` offset exactly at the end (Swift answers 416 there, yet the transfer is valid).
    Nothing,
    /// The object's bytes, its first request answered.
    Body(Box<swift::Download>),
}

impl Prepared {
    /// Opens `loc` at `start_pos` and keeps it for the `get_into` of `path` at `start_pos` (replacing whatever
    /// an earlier `RETR` opened and never sent).
    pub(super) async fn open(
        &self,
        session: &Arc<swift::Session>,
        loc: &Location,
        path: &Path,
        start_pos: u64,
    ) -> std::result::Result<(), FtpError> {
        // What an earlier RETR left (its data connection never came) goes first: it holds a Swift connection.
        drop(self.take());
        let ready = open(session, loc, start_pos).await?;
        *self.slot() = Some(Opened {
            path: path.to_owned(),
            start_pos,
            ready,
        });
        Ok(())
    }

    /// Sends `loc` from `start_pos` to `output`: what [`Prepared::open`] opened for `path` at that offset, or
    /// opened now. The number of bytes sent is also kept in `sent_so_far` as they go, for the log of a transfer
    /// that fails midway.
    pub(super) async fn send<W>(
        &self,
        session: &Arc<swift::Session>,
        loc: &Location,
        path: &Path,
        start_pos: u64,
        output: &mut W,
        sent_so_far: &std::sync::atomic::AtomicU64,
    ) -> std::result::Result<u64, FtpError>
    where
        W: AsyncWrite + Unpin + Send + ?Sized,
    {
        let Location::Object { container, key } = loc else {
            return Err(FtpError::NotAFile(loc.clone()));
        };
        let ready = match self.take() {
            Some(o) if o.path == path && o.start_pos == start_pos => o.ready,
            _ => open(session, loc, start_pos).await?,
        };
        let download = match ready {
            Ready::Nothing => return Ok(0),
            Ready::Body(download) => download,
        };
        let mut body = download.into_stream();
        let mut sent = 0u64;
        let idle = session.idle_timeout();
        loop {
            // Swift may pause between chunks, but not for longer than the client's answer timeout.
            let next = tokio::time::timeout(idle, body.try_next())
                .await
                .map_err(|_| {
                    swift::Error::timed_out(swift::Op::GetObject {
                        container: container.clone(),
                        key: key.clone(),
                    })
                })?;
            let Some(chunk) = next? else { break };
            output
                .write_all(&chunk)
                .await
                .map_err(FtpError::ClientGone)?;
            sent += chunk.len() as u64;
            sent_so_far.store(sent, std::sync::atomic::Ordering::Relaxed);
        }
        output.flush().await.map_err(FtpError::ClientGone)?;
        Ok(sent)
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Opened>> {
        // A poisoned lock only means another task panicked holding it; the slot itself is always valid.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self) -> Option<Opened> {
        self.slot().take()
    }
}

/// The first request of a read of `loc` from `start_pos`, or why it cannot start.
async fn open(
    session: &Arc<swift::Session>,
    loc: &Location,
    start_pos: u64,
) -> std::result::Result<Ready, FtpError> {
    let Location::Object { container, key } = loc else {
        return Err(FtpError::NotAFile(loc.clone()));
    };
    let download = match session.download(container, key, start_pos).await {
        Ok(d) => d,
        Err(e) if e.kind() == swift::ErrorKind::RangeNotSatisfiable => {
            // Swift answers 416 for `bytes=N-` at N == size too; restarting exactly at the end is a valid,
            // empty transfer.
            let head = session.head_object(container, key).await?;
            if is_marker(&head) {
                return Err(FtpError::NotAFile(loc.clone()));
            }
            if head.content_length == start_pos {
                return Ok(Ready::Nothing);
            }
            return Err(FtpError::RestartBeyondEnd {
                location: loc.clone(),
                offset: start_pos,
                size: head.content_length,
            });
        }
        Err(e) if e.kind() == swift::ErrorKind::NotFound => {
            return Err(FtpError::NotFound(loc.clone()));
        }
        Err(e) => return Err(e.into()),
    };
    if is_marker(&download.head) {
        return Err(FtpError::NotAFile(loc.clone()));
    }
    Ok(Ready::Body(Box::new(download)))
}
