//! swiftftp patch: the transfer a session is running, shared outside the session's lock by the command handlers
//! that start it, the data channel that runs it and the control loop. While it runs, `ABOR` stops it and `STAT`
//! reports it; every other command the client sends waits until it has ended (RFC 959 4.1.3). 0.24 kept the
//! session locked for the whole transfer, so `ABOR` and `STAT` were answered only after it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;

/// The session's transfer, if one is running.
#[derive(Debug, Default)]
pub struct TransferState {
    running: Mutex<Option<(u64, Running)>>,
    generation: AtomicU64,
    ended: tokio::sync::Notify,
}

/// A running transfer: its command and path, the bytes moved on its data connection so far, and its abort.
#[derive(Debug, Clone)]
pub struct Running {
    pub command: &'static str,
    pub path: String,
    pub bytes: Arc<AtomicU64>,
    pub abort: CancellationToken,
}

/// Travels with a transfer's command to the data channel; dropping it (the transfer answered, or its command
/// dropped unrun) ends the transfer.
#[derive(Debug)]
pub struct TransferGuard {
    state: Arc<TransferState>,
    generation: u64,
}

impl TransferState {
    /// Marks a transfer as running until the returned guard is dropped.
    pub fn begin(self: &Arc<Self>, command: &'static str, path: String) -> TransferGuard {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let running = Running {
            command,
            path,
            bytes: Arc::default(),
            abort: CancellationToken::new(),
        };
        *self.lock() = Some((generation, running));
        TransferGuard {
            state: Arc::clone(self),
            generation,
        }
    }

    /// The running transfer, if any.
    pub fn current(&self) -> Option<Running> {
        self.lock().as_ref().map(|(_, r)| r.clone())
    }

    /// Completes once no transfer is running.
    pub async fn ended(&self) {
        loop {
            let notified = self.ended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().is_none() {
                return;
            }
            notified.await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<(u64, Running)>> {
        // A poisoned lock only means a panic elsewhere while it was held; the state itself stays valid.
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for TransferGuard {
    fn drop(&mut self) {
        let mut running = self.state.lock();
        if running.as_ref().is_some_and(|(g, _)| *g == self.generation) {
            *running = None;
        }
        drop(running);
        self.state.ended.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ended_waits_for_the_guard_and_a_stale_guard_ends_nothing() {
        let state = Arc::new(TransferState::default());
        state.ended().await;
        let first = state.begin("RETR", "/a".to_owned());
        assert_eq!(state.current().map(|r| r.path), Some("/a".to_owned()));
        let waiter = tokio::spawn({
            let state = Arc::clone(&state);
            async move { state.ended().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(first);
        waiter.await.unwrap();
        assert!(state.current().is_none());
        let old = state.begin("STOR", "/b".to_owned());
        let new = state.begin("LIST", "/c".to_owned());
        drop(old);
        assert_eq!(state.current().map(|r| r.command), Some("LIST"));
        drop(new);
        assert!(state.current().is_none());
    }
}
