//! `swift::Error`: what failed (the operation and the object it touched) and a small `ErrorKind` callers branch
//! on.
//!
//! The kind is derived once, here, from the HTTP status or the transport failure. The FTP adapter maps kinds to
//! replies in its own single match (`ftp/error.rs`); this module knows nothing of FTP. Error texts never carry a
//! token, a key or a full URL: only the operation, the container and object names, and the status.

use std::fmt;

/// Which Swift operation failed, with the names it touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Logging in at the auth endpoint.
    Authenticate,
    /// Reading the cluster's `/info`.
    Info,
    /// Listing the account's containers.
    ListAccount,
    /// `HEAD` of the account (usage and quota).
    HeadAccount,
    /// Listing a container's objects.
    ListContainer {
        /// The container listed.
        container: String,
    },
    /// `HEAD` of a container.
    HeadContainer {
        /// The container.
        container: String,
    },
    /// `PUT` of a container.
    PutContainer {
        /// The container.
        container: String,
    },
    /// `POST` of a container's metadata (ACLs).
    PostContainer {
        /// The container.
        container: String,
    },
    /// `DELETE` of a container.
    DeleteContainer {
        /// The container.
        container: String,
    },
    /// `HEAD` of an object.
    HeadObject {
        /// The container.
        container: String,
        /// The object name.
        key: String,
    },
    /// `GET` of an object (including reading its body).
    GetObject {
        /// The container.
        container: String,
        /// The object name.
        key: String,
    },
    /// `PUT` of an object.
    PutObject {
        /// The container.
        container: String,
        /// The object name.
        key: String,
    },
    /// `POST` of an object's metadata.
    PostObject {
        /// The container.
        container: String,
        /// The object name.
        key: String,
    },
    /// Server-side copy of an object.
    CopyObject {
        /// `container/key` of the source.
        from: String,
        /// The destination container.
        container: String,
        /// The destination object name.
        key: String,
    },
    /// `DELETE` of an object.
    DeleteObject {
        /// The container.
        container: String,
        /// The object name.
        key: String,
    },
}

impl Op {
    /// A short stable name of the operation, for metrics labels.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Authenticate => "authenticate",
            Self::Info => "info",
            Self::ListAccount => "list_account",
            Self::HeadAccount => "head_account",
            Self::ListContainer { .. } => "list_container",
            Self::HeadContainer { .. } => "head_container",
            Self::PutContainer { .. } => "put_container",
            Self::PostContainer { .. } => "post_container",
            Self::DeleteContainer { .. } => "delete_container",
            Self::HeadObject { .. } => "head_object",
            Self::GetObject { .. } => "get_object",
            Self::PutObject { .. } => "put_object",
            Self::PostObject { .. } => "post_object",
            Self::CopyObject { .. } => "copy_object",
            Self::DeleteObject { .. } => "delete_object",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Authenticate => f.write_str("authenticating"),
            Self::Info => f.write_str("reading /info"),
            Self::ListAccount => f.write_str("listing the account"),
            Self::HeadAccount => f.write_str("HEAD of the account"),
            Self::ListContainer { container } => write!(f, "listing container {container:?}"),
            Self::HeadContainer { container } => write!(f, "HEAD of container {container:?}"),
            Self::PutContainer { container } => write!(f, "PUT of container {container:?}"),
            Self::PostContainer { container } => write!(f, "POST of container {container:?}"),
            Self::DeleteContainer { container } => write!(f, "DELETE of container {container:?}"),
            Self::HeadObject { container, key } => write!(f, "HEAD of {container:?}/{key:?}"),
            Self::GetObject { container, key } => write!(f, "GET of {container:?}/{key:?}"),
            Self::PutObject { container, key } => write!(f, "PUT of {container:?}/{key:?}"),
            Self::PostObject { container, key } => write!(f, "POST of {container:?}/{key:?}"),
            Self::CopyObject {
                from,
                container,
                key,
            } => {
                write!(f, "copy of {from:?} to {container:?}/{key:?}")
            }
            Self::DeleteObject { container, key } => write!(f, "DELETE of {container:?}/{key:?}"),
        }
    }
}

/// What kind of failure it was: the one thing callers branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 404: no such account, container or object.
    NotFound,
    /// 401 after one re-authentication, or credentials refused at login.
    Unauthenticated,
    /// 403: the token is valid but the ACLs refuse the operation.
    PermissionDenied,
    /// 409: e.g. deleting a container that still holds objects.
    Conflict,
    /// 412 / 422: a precondition or checksum did not hold.
    PreconditionFailed,
    /// 413: the object is larger than the cluster's `max_file_size`, or a quota refuses it.
    TooLarge,
    /// 416: a `Range` starts at or beyond the end of the object.
    RangeNotSatisfiable,
    /// 507: the cluster has no space.
    InsufficientStorage,
    /// 408, 429, 5xx, timeouts, refused or cut connections: worth retrying later.
    Unavailable,
    /// Swift answered in a way we cannot use (a missing header, unparsable JSON, another 4xx).
    Protocol,
}

/// A failed Swift operation.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {detail}")]
pub struct Error {
    op: Op,
    kind: ErrorKind,
    status: Option<u16>,
    detail: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// An error from an HTTP status Swift answered with.
    pub fn from_status(op: Op, status: u16) -> Self {
        let kind = kind_of_status(status);
        let detail = if op == Op::Authenticate {
            format!("the auth service answered {status}")
        } else {
            format!("Swift answered {status}")
        };
        Self {
            op,
            kind,
            status: Some(status),
            detail,
            source: None,
        }
    }

    /// An error from the HTTP transport (connect, timeout, cut body). The text names the server (scheme, host
    /// and port); the rest of the URL is stripped from the source so that no storage URL path (which names the
    /// account) or query reaches a log line.
    pub fn from_transport(op: Op, err: reqwest::Error) -> Self {
        let kind = if err.is_builder() {
            ErrorKind::Protocol
        } else {
            ErrorKind::Unavailable
        };
        let at = err
            .url()
            .map(|u| format!(" at {}", u.origin().ascii_serialization()))
            .unwrap_or_default();
        let detail = if err.is_timeout() {
            format!("Swift{at} did not answer in time")
        } else if err.is_connect() {
            format!("cannot connect to Swift{at}")
        } else {
            format!("the connection to Swift{at} failed")
        };
        Self {
            op,
            kind,
            status: None,
            detail,
            source: Some(Box::new(err.without_url())),
        }
    }

    /// Swift did not start answering (or went silent) within the client's timeout.
    pub fn timed_out(op: Op) -> Self {
        Self {
            op,
            kind: ErrorKind::Unavailable,
            status: None,
            detail: "Swift did not answer in time".to_owned(),
            source: None,
        }
    }

    /// An answer we cannot use (missing header, bad JSON): `detail` says what was wrong.
    pub fn protocol(op: Op, detail: impl Into<String>) -> Self {
        Self {
            op,
            kind: ErrorKind::Protocol,
            status: None,
            detail: detail.into(),
            source: None,
        }
    }

    /// The kind, for callers that branch on it.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status, when Swift answered at all.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The operation that failed.
    pub fn op(&self) -> &Op {
        &self.op
    }
}

/// Maps an HTTP status to the kind callers branch on. Only called for non-2xx answers.
pub(crate) fn kind_of_status(status: u16) -> ErrorKind {
    match status {
        401 => ErrorKind::Unauthenticated,
        403 => ErrorKind::PermissionDenied,
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        412 | 422 => ErrorKind::PreconditionFailed,
        413 => ErrorKind::TooLarge,
        416 => ErrorKind::RangeNotSatisfiable,
        507 => ErrorKind::InsufficientStorage,
        408 | 429 | 498 => ErrorKind::Unavailable,
        500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::Protocol,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        let table = [
            (401, ErrorKind::Unauthenticated),
            (403, ErrorKind::PermissionDenied),
            (404, ErrorKind::NotFound),
            (409, ErrorKind::Conflict),
            (413, ErrorKind::TooLarge),
            (416, ErrorKind::RangeNotSatisfiable),
            (422, ErrorKind::PreconditionFailed),
            (429, ErrorKind::Unavailable),
            (500, ErrorKind::Unavailable),
            (503, ErrorKind::Unavailable),
            (507, ErrorKind::InsufficientStorage),
            (400, ErrorKind::Protocol),
        ];
        for (status, kind) in table {
            assert_eq!(kind_of_status(status), kind, "status {status}");
        }
    }

    #[test]
    fn display_names_operation_and_object() {
        let e = Error::from_status(
            Op::GetObject {
                container: "c".into(),
                key: "a/b".into(),
            },
            404,
        );
        assert_eq!(e.to_string(), r#"GET of "c"/"a/b": Swift answered 404"#);
    }
}
