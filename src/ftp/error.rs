//! The one place where a failure becomes an FTP reply.
//!
//! [`FtpError`] says what went wrong in FTP terms; [`FtpError::into_storage_error`] maps it, and every
//! `swift::ErrorKind`, to libunftp's `ErrorKind` (which fixes the reply code and text) in exhaustive matches:
//! a new variant anywhere forces a decision here.
//!
//! | cause | reply |
//! |---|---|
//! | Swift 404, a missing path | `550` |
//! | Swift 401 (after one re-login) / 403 | `550 Permission denied` |
//! | Swift 409 | `550` |
//! | Swift 413 (over `max_file_size`, quota), an upload past `max_file_size` | `552` |
//! | Swift 507 | `452` |
//! | Swift 5xx, 408, 429, timeouts, refused or cut connections, unusable answers | `451` |
//! | a name over the cluster's limits, a non-UTF-8 path | `553` |
//! | the FTP client closed the data connection (upload or download) | `426` |
//! | uploaded bytes and Swift's ETag differ (object deleted again) | `451` |
//! | a directory not empty (RMD, rename) | `550 Directory not empty` |
//! | a file at the top level, DELE of a directory, RMD of `/` | `550 Permission denied` |
//! | an operation this gateway does not offer (yet) | `502` |
//!
//! libunftp sends a fixed text per code, so the reason (Swift's status, the operation, the object) goes to the
//! log at the point of failure, never into a `530`.

use super::location::{Location, PathError};
use crate::swift;
use libunftp::options::{Reply, ReplyCode};
use unftp_core::storage::{Error as StorageError, ErrorKind as FtpKind};

/// A failed FTP operation.
#[derive(Debug, thiserror::Error)]
pub enum FtpError {
    /// Swift refused or failed.
    #[error(transparent)]
    Swift(#[from] swift::Error),
    /// The path cannot name anything in Swift.
    #[error("{0}")]
    Path(#[from] PathError),
    /// Nothing exists at this path.
    #[error("{0}: no such file or directory")]
    NotFound(Location),
    /// A file was needed (RETR, SIZE) and this is a directory.
    #[error("{0} is a directory")]
    NotAFile(Location),
    /// A directory was needed (CWD) and this is a file.
    #[error("{0} is not a directory")]
    NotADirectory(Location),
    /// A download restart offset beyond the end of the file.
    #[error("restart offset {offset} is beyond the end of {location} ({size} bytes)")]
    RestartBeyondEnd {
        /// The file.
        location: Location,
        /// The REST offset.
        offset: u64,
        /// The file's size.
        size: u64,
    },
    /// The FTP client went away while data was moving.
    #[error("the client closed the data connection: {0}")]
    ClientGone(std::io::Error),
    /// An upload failed (the client, Swift, or the checksum).
    #[error(transparent)]
    Upload(#[from] swift::UploadError),
    /// Whether the file exists could not be found out just before, so writing it could overwrite it blindly.
    #[error("{0}: its state could not be read just before; refusing to write it blindly")]
    StateUnknown(Location),
    /// The gateway is shutting down: running transfers may finish, new ones are refused.
    #[error("the server is shutting down; try again in a moment")]
    ShuttingDown,
    /// A directory that must be empty for this is not.
    #[error("{0}: directory not empty")]
    DirectoryNotEmpty(Location),
    /// A file is in the way of a directory (MKD over a file).
    #[error("{0} exists and is a file")]
    FileExists(Location),
    /// An operation that makes no sense at this place, e.g. a file at the top level (files live inside a
    /// container), deleting a container with DELE, removing `/`.
    #[error("{what}: {location}")]
    Refused {
        /// The path.
        location: Location,
        /// Why, for the log.
        what: &'static str,
    },
    /// Something this gateway does not do, on purpose or not yet.
    #[error("{0}")]
    NotImplemented(&'static str),
    /// A directory or container rename that would move more objects than `rename-max-objects`.
    #[error("{location}: more than {limit} objects to move (rename-max-objects)")]
    TooManyToRename {
        /// The directory.
        location: Location,
        /// The configured limit.
        limit: u64,
    },
    /// A directory or container rename that failed; `what` says what state it left.
    #[error("renaming {location}: {what}")]
    RenameFailed {
        /// The directory.
        location: Location,
        /// What happened, and what was left.
        what: &'static str,
        /// Why (Swift's failure).
        kind: swift::ErrorKind,
    },
}

impl FtpError {
    /// The libunftp error (and so the reply) for this failure, keeping `self` as the source for logs.
    pub fn into_storage_error(self) -> StorageError {
        let kind = match &self {
            Self::Swift(e) => kind_for_swift(e.kind()),
            Self::Path(PathError::NotUtf8) => FtpKind::FileNameNotAllowedError,
            Self::Path(PathError::ContainerNameTooLong { .. }) => FtpKind::FileNameNotAllowedError,
            Self::Path(PathError::ObjectNameTooLong { .. }) => FtpKind::FileNameNotAllowedError,
            Self::NotFound(_) => FtpKind::PermanentFileNotAvailable,
            Self::NotAFile(_) => FtpKind::PermanentFileNotAvailable,
            Self::NotADirectory(_) => FtpKind::PermanentDirectoryNotAvailable,
            Self::RestartBeyondEnd { .. } => FtpKind::PermanentFileNotAvailable,
            Self::ClientGone(_) => FtpKind::ConnectionClosed,
            Self::Upload(swift::UploadError::Source { source, .. })
                if swift::client_gone(source) =>
            {
                FtpKind::ConnectionClosed
            }
            // Not the client's connection (a TLS failure on it, or the read-back of a file being continued).
            Self::Upload(swift::UploadError::Source { .. }) => FtpKind::LocalError,
            Self::Upload(swift::UploadError::Swift(e)) => kind_for_swift(e.kind()),
            Self::Upload(swift::UploadError::TooLarge { .. }) => {
                FtpKind::ExceededStorageAllocationError
            }
            Self::Upload(swift::UploadError::Checksum { .. }) => FtpKind::LocalError,
            Self::StateUnknown(_) => FtpKind::LocalError,
            Self::ShuttingDown => FtpKind::LocalError,
            Self::DirectoryNotEmpty(_) => FtpKind::PermanentDirectoryNotEmpty,
            Self::FileExists(_) => FtpKind::PermanentFileNotAvailable,
            Self::Refused { .. } => FtpKind::PermissionDenied,
            Self::NotImplemented(_) => FtpKind::CommandNotImplemented,
            Self::TooManyToRename { .. } => FtpKind::PermissionDenied,
            Self::RenameFailed { kind, .. } => match kind {
                swift::ErrorKind::Unavailable | swift::ErrorKind::Protocol => FtpKind::LocalError,
                other => kind_for_swift(*other),
            },
        };
        let text = self.reply_text();
        let error = StorageError::new(kind, self);
        match text {
            Some(text) => error.with_reply_text(text),
            None => error,
        }
    }

    /// The reply's words, for failures whose fixed libunftp text ("Permission denied") would not tell the user
    /// what happened or what to do. Never Swift's own words or anything secret.
    fn reply_text(&self) -> Option<String> {
        let text = match self {
            Self::Refused { what, .. } => upper_first(what),
            Self::NotImplemented(what) => upper_first(what),
            Self::TooManyToRename { limit, .. } => format!(
                "Not renamed: more than {limit} objects would move (the server's rename-max-objects)"
            ),
            Self::RenameFailed { what, .. } => format!("Rename failed: {what}"),
            _ => return None,
        };
        Some(text)
    }

    /// The reply to a failed `SITE` command (`site.rs`), which swiftftp words itself: the code libunftp would
    /// send for the same kind, and a text that says what to do (never Swift's own words).
    pub fn into_site_reply(self) -> Reply {
        let text = match &self {
            Self::Refused { what, .. } => (*what).to_owned(),
            Self::NotImplemented(what) => (*what).to_owned(),
            Self::NotFound(loc) => format!("{loc}: no such file or directory"),
            Self::Swift(e) | Self::Upload(swift::UploadError::Swift(e)) => match e.kind() {
                swift::ErrorKind::NotFound => "No such container".to_owned(),
                swift::ErrorKind::PermissionDenied | swift::ErrorKind::Unauthenticated => {
                    "Permission denied (this needs an account admin)".to_owned()
                }
                _ => "Swift could not do it now; try again later".to_owned(),
            },
            other => other.to_string(),
        };
        // The code libunftp's control loop gives the same kind (one map, in libunftp).
        let (code, _) = ReplyCode::for_storage_error(self.into_storage_error().kind());
        Reply::new_with_string(code, text)
    }

    /// The same failure when it happened while entering or listing a directory: "not found" then reads
    /// "Directory not found".
    pub fn in_directory_context(self) -> StorageError {
        match self {
            Self::NotFound(_) => StorageError::new(FtpKind::PermanentDirectoryNotAvailable, self),
            Self::Swift(ref e) if e.kind() == swift::ErrorKind::NotFound => {
                StorageError::new(FtpKind::PermanentDirectoryNotAvailable, self)
            }
            other => other.into_storage_error(),
        }
    }
}

/// `what` with a capital first letter, for a reply line.
fn upper_first(what: &str) -> String {
    let mut chars = what.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Swift's kinds, mapped once.
fn kind_for_swift(kind: swift::ErrorKind) -> FtpKind {
    match kind {
        swift::ErrorKind::NotFound => FtpKind::PermanentFileNotAvailable,
        swift::ErrorKind::Unauthenticated => FtpKind::PermissionDenied,
        swift::ErrorKind::PermissionDenied => FtpKind::PermissionDenied,
        swift::ErrorKind::Conflict => FtpKind::PermanentFileNotAvailable,
        swift::ErrorKind::RangeNotSatisfiable => FtpKind::PermanentFileNotAvailable,
        swift::ErrorKind::TooLarge => FtpKind::ExceededStorageAllocationError,
        swift::ErrorKind::InsufficientStorage => FtpKind::InsufficientStorageSpaceError,
        swift::ErrorKind::PreconditionFailed => FtpKind::LocalError,
        swift::ErrorKind::Unavailable => FtpKind::LocalError,
        swift::ErrorKind::Protocol => FtpKind::LocalError,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::swift::{Error as SwiftError, Op};

    fn swift_status(status: u16) -> FtpError {
        FtpError::Swift(SwiftError::from_status(Op::ListAccount, status))
    }

    #[test]
    fn swift_statuses_become_the_documented_replies() {
        let table = [
            (404, FtpKind::PermanentFileNotAvailable),
            (401, FtpKind::PermissionDenied),
            (403, FtpKind::PermissionDenied),
            (409, FtpKind::PermanentFileNotAvailable),
            (413, FtpKind::ExceededStorageAllocationError),
            (507, FtpKind::InsufficientStorageSpaceError),
            (500, FtpKind::LocalError),
            (503, FtpKind::LocalError),
            (429, FtpKind::LocalError),
        ];
        for (status, kind) in table {
            assert_eq!(
                swift_status(status).into_storage_error().kind(),
                kind,
                "status {status}"
            );
        }
    }

    #[test]
    fn gateway_failures_become_the_documented_replies() {
        let loc = Location::parse_str("/c/x");
        assert_eq!(
            FtpError::NotFound(loc.clone()).into_storage_error().kind(),
            FtpKind::PermanentFileNotAvailable
        );
        assert_eq!(
            FtpError::NotFound(loc.clone())
                .in_directory_context()
                .kind(),
            FtpKind::PermanentDirectoryNotAvailable
        );
        assert_eq!(
            swift_status(404).in_directory_context().kind(),
            FtpKind::PermanentDirectoryNotAvailable
        );
        assert_eq!(
            FtpError::NotADirectory(loc).into_storage_error().kind(),
            FtpKind::PermanentDirectoryNotAvailable
        );
        assert_eq!(
            FtpError::Path(PathError::ObjectNameTooLong {
                len: 2000,
                max: 1024
            })
            .into_storage_error()
            .kind(),
            FtpKind::FileNameNotAllowedError
        );
        assert_eq!(
            FtpError::ClientGone(std::io::ErrorKind::ConnectionReset.into())
                .into_storage_error()
                .kind(),
            FtpKind::ConnectionClosed
        );
        assert_eq!(
            FtpError::NotImplemented("x").into_storage_error().kind(),
            FtpKind::CommandNotImplemented
        );
    }
}
