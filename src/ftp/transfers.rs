//! Transfers in flight, for the graceful shutdown: `server.rs` stops accepting, calls [`Transfers::drain`], and
//! from then on [`Transfers::begin`] refuses new transfers (`451`) while running ones finish.
//!
//! Not here: the signal handling (`daemon.rs`) or closing sessions (the process simply ends after the drain).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Counts running transfers and says whether new ones may start.
#[derive(Debug, Default)]
pub struct Transfers {
    running: AtomicUsize,
    draining: AtomicBool,
}

/// A running transfer; it ends when dropped.
#[derive(Debug)]
pub struct Running<'a>(&'a Transfers);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Transfers {
    /// Starts a transfer, or `None` while shutting down.
    pub fn begin(&self) -> Option<Running<'_>> {
        self.running.fetch_add(1, Ordering::SeqCst);
        let running = Running(self);
        // Checked after counting, so a transfer either is seen by `drain` or sees the flag.
        if self.draining.load(Ordering::SeqCst) {
            return None;
        }
        Some(running)
    }

    /// Transfers running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Refuses new transfers and waits up to `grace` for the running ones; then `settle` more, so that the last
    /// one's final reply gets written.
    pub async fn drain(&self, grace: Duration, settle: Duration) {
        self.draining.store(true, Ordering::SeqCst);
        // A grace too long to add means "wait as long as it takes".
        let deadline = tokio::time::Instant::now().checked_add(grace);
        let waited_for = self.running();
        if waited_for > 0 {
            tracing::info!(
                transfers = waited_for,
                grace_seconds = grace.as_secs(),
                "waiting for running transfers"
            );
        }
        while self.running() > 0 {
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                tracing::warn!(
                    transfers = self.running(),
                    "grace period over: cutting running transfers"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if waited_for > 0 {
            tokio::time::sleep(settle).await;
        }
        tracing::info!("shut down");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_running_transfers_and_refuses_new_ones() {
        let t = std::sync::Arc::new(Transfers::default());
        let running = t.begin().unwrap();
        let t2 = std::sync::Arc::clone(&t);
        let drain = tokio::spawn(async move {
            t2.drain(Duration::from_secs(10), Duration::ZERO).await;
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(t.begin().is_none());
        assert!(!drain.is_finished());
        drop(running);
        drain.await.unwrap();
        assert_eq!(t.running(), 0);
    }

    #[tokio::test]
    async fn drain_gives_up_after_the_grace_period() {
        let t = Transfers::default();
        let _stuck = t.begin().unwrap();
        let started = std::time::Instant::now();
        t.drain(Duration::from_millis(200), Duration::ZERO).await;
        // It waited the grace period (a drain that returned at once would pass an upper bound alone), no more.
        assert!(
            started.elapsed() >= Duration::from_millis(190),
            "{:?}",
            started.elapsed()
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
