//! Contains the `ControlChanError` struct that that defines the control channel error type.

use super::line_parser::error::{ParseError, ParseErrorKind};
use crate::BoxError;

use derive_more::Display;
use thiserror::Error;

/// The error type returned by this library.
#[derive(Debug, Error)]
#[error("control channel error: {kind}")]
pub struct ControlChanError {
    kind: ControlChanErrorKind,
    #[source]
    source: Option<BoxError>,
}

/// A list specifying categories of FTP errors. It is meant to be used with the [ControlChanError] type.
#[derive(Eq, PartialEq, Debug, Display, Clone)]
#[allow(dead_code)]
pub enum ControlChanErrorKind {
    /// We encountered a system IO error.
    #[display("Failed to perform IO")]
    IoError,
    /// Something went wrong parsing the client's command.
    #[display("Failed to parse command")]
    ParseError,
    /// Internal Server Error. This is probably a bug, i.e. when we're unable to lock a resource we
    /// should be able to lock.
    #[display("Internal Server Error")]
    InternalServerError,
    /// Authentication backend returned an error.
    #[display("Something went wrong when trying to authenticate")]
    AuthenticationError,
    /// We received something on the data message channel that we don't understand. This should be
    /// impossible.
    #[display("Failed to map event from data channel")]
    InternalMsgError,
    /// We encountered a non-UTF8 character in the command.
    #[display("Non-UTF8 character in command")]
    Utf8Error,
    /// The client issued a command we don't know about.
    #[display("Unknown command: {}", command)]
    UnknownCommand {
        /// The command that we don't know about
        command: String,
    },
    /// The client issued a command that we know about, but in an invalid way (e.g. `USER` without
    /// an username).
    #[display("Invalid command (invalid parameter)")]
    InvalidCommand,
    /// The timer on the Control Channel elapsed.
    #[display("Encountered read timeout on the control channel")]
    ControlChannelTimeout,
    /// swiftftp patch: an argument that is not UTF-8 or holds a CR or NUL: refused, the session goes on.
    #[display("Invalid name in command")]
    InvalidName,
    /// swiftftp patch: the session was not logged in within the login timeout.
    #[display("Not logged in within the login timeout")]
    LoginTimeout,
    /// The control channel is out of sync e.g. expecting username in session after USER command but found none.
    #[display("Control channel in illegal state")]
    IllegalState,
    /// swiftftp patch: a command line longer than the codec takes (it is not buffered further).
    #[display("Command line too long")]
    LineTooLong,
}

impl ControlChanError {
    /// Creates a new FTP Error with the specific kind
    pub fn new(kind: ControlChanErrorKind) -> Self {
        ControlChanError { kind, source: None }
    }

    /// Return the inner error kind of this error.
    #[allow(unused)]
    pub fn kind(&self) -> &ControlChanErrorKind {
        &self.kind
    }

    // swiftftp patch: a load balancer's TCP health check connects and resets at once; the greeting then fails
    // with one of these, which is the peer's doing, not the server's.
    /// Whether this is an I/O error saying the peer went away (reset, aborted, broken pipe, not connected).
    pub fn is_peer_gone(&self) -> bool {
        self.kind == ControlChanErrorKind::IoError
            && self.source.as_ref().and_then(|e| e.downcast_ref::<std::io::Error>()).is_some_and(|e| {
                matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::NotConnected
                        | std::io::ErrorKind::UnexpectedEof
                )
            })
    }
}

impl From<ControlChanErrorKind> for ControlChanError {
    fn from(kind: ControlChanErrorKind) -> ControlChanError {
        ControlChanError { kind, source: None }
    }
}

impl From<std::io::Error> for ControlChanError {
    fn from(err: std::io::Error) -> ControlChanError {
        ControlChanError {
            kind: ControlChanErrorKind::IoError,
            source: Some(Box::new(err)),
        }
    }
}

impl From<std::str::Utf8Error> for ControlChanError {
    fn from(err: std::str::Utf8Error) -> ControlChanError {
        ControlChanError {
            kind: ControlChanErrorKind::Utf8Error,
            source: Some(Box::new(err)),
        }
    }
}

impl From<ParseError> for ControlChanError {
    fn from(err: ParseError) -> ControlChanError {
        let kind: ControlChanErrorKind = match err.kind().clone() {
            ParseErrorKind::InvalidUtf8 => ControlChanErrorKind::Utf8Error,
            ParseErrorKind::InvalidCommand => ControlChanErrorKind::InvalidCommand,
            ParseErrorKind::InvalidName => ControlChanErrorKind::InvalidName,
            _ => ControlChanErrorKind::InvalidCommand,
        };
        ControlChanError {
            kind,
            source: Some(Box::new(err)),
        }
    }
}
