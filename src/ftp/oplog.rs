//! The one log line of each FTP operation: a change or a transfer at INFO whatever its outcome, named by its
//! command, with its path, bytes, time and MD5, or its reply and the cause chain of its failure; a lookup only
//! when it fails, one of a name that is not there at debug (clients probe names), a `451` at WARN. A transfer
//! is counted in the metrics here too.
//!
//! Not here: running the operations (`backend.rs`), the session's span the lines run in (`login.rs`,
//! `logging.rs`).

use super::login::SwiftUser;
use std::path::Path;
use unftp_core::storage::{Error as StorageError, Result};

/// What a command's log line is.
#[derive(Debug, Clone, Copy)]
pub(super) enum Log<'a> {
    /// A lookup or a listing: a line only for a failure, one of "not found" at debug (clients probe names).
    Lookup,
    /// A change: one line, whatever the outcome; a rename names its target.
    Change { to: Option<&'a Path> },
    /// A transfer: [`transferred`] writes its line, with the bytes and the time.
    Transfer,
}

/// The one log line and the metrics of a finished transfer (bytes of a failed upload are not known: 0); `md5`
/// of a file stored whole.
pub(super) fn transferred<T>(
    user: &SwiftUser,
    command: &'static str,
    path: &Path,
    started: std::time::Instant,
    (bytes, md5): (u64, Option<&str>),
    result: &Result<T>,
) {
    let seconds = started.elapsed().as_secs_f64();
    let _in = user.span.enter();
    let path = path.display();
    match result {
        Ok(_) => {
            let md5 = md5.map(tracing::field::display);
            tracing::info!(%path, bytes, seconds, md5, result = "ok", "{command}")
        }
        Err(e) => {
            let cause = cause_of(e);
            crate::logging::event_at!(level_of(e, Log::Transfer), %path, bytes, seconds, result = "failed", reply = %e, cause, "{command}")
        }
    }
    crate::metrics::transfer(command, result.is_ok(), bytes);
}

/// The log line of a command per its [`Log`] kind (of a transfer: none, [`transferred`] writes it).
pub(super) fn logged<T>(op: &'static str, path: &Path, log: Log<'_>, result: &Result<T>) {
    let path = path.display();
    match (log, result) {
        (Log::Transfer, _) | (Log::Lookup, Ok(_)) => {}
        (Log::Change { to }, Ok(_)) => {
            let to = to.map(|to| to.display().to_string());
            tracing::info!(%path, to, result = "ok", "{op}")
        }
        (log, Err(e)) => {
            let to = match log {
                Log::Change { to } => to.map(|to| to.display().to_string()),
                _ => None,
            };
            let cause = cause_of(e);
            crate::logging::event_at!(level_of(e, log), %path, to, result = "failed", reply = %e, cause, "{op}")
        }
    }
}

/// Why a command failed, for its log line: the cause chain below the reply (URL and OS error included).
fn cause_of(e: &StorageError) -> Option<String> {
    std::error::Error::source(e).map(crate::logging::chain)
}

/// The level of a failure's line: WARN for the gateway's or Swift's trouble (`451`), debug for a lookup of a
/// name that is not there, INFO for the rest (the client asked for something it may not have).
fn level_of(e: &StorageError, log: Log<'_>) -> tracing::Level {
    use unftp_core::storage::ErrorKind;
    match (e.kind(), log) {
        (ErrorKind::LocalError, _) => tracing::Level::WARN,
        (
            ErrorKind::PermanentFileNotAvailable | ErrorKind::PermanentDirectoryNotAvailable,
            Log::Lookup,
        ) => tracing::Level::DEBUG,
        _ => tracing::Level::INFO,
    }
}
