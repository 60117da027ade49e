//! Who hears about each request to Swift and its auth service: one observer per process, set by the caller
//! (swiftftp sets its Prometheus metrics), so that this client needs to know nothing of what is counted or how.
//!
//! Deliberately not here: counting, labels, exposition; a client used on its own (`examples/swift_ls.rs`) sets
//! nothing and pays one atomic load per request.

use std::sync::OnceLock;
use std::time::Duration;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP status came back.
    Status(u16),
    /// No answer within the timeout.
    Timeout,
    /// The connection failed.
    Error,
}

/// Told of every request once its answer (or its failure) is known: the operation's name ([`super::Op`]), the
/// answer and how long it took.
pub type RequestObserver = fn(&str, Answer, Duration);

static OBSERVER: OnceLock<RequestObserver> = OnceLock::new();

/// Sets what every request of this process is reported to; the first call wins (a process has one).
pub fn observe_requests(observer: RequestObserver) {
    let _ = OBSERVER.set(observer);
}

/// Reports one request to the observer, if one was set.
pub(super) fn observed(op: &str, answer: Answer, elapsed: Duration) {
    if let Some(observer) = OBSERVER.get() {
        observer(op, answer, elapsed);
    }
}
