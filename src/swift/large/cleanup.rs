//! Deleting segments: a few at a time, and those of a failed or abandoned upload by a guard that also runs when
//! the upload future is dropped half-way, retried in the background while Swift cannot answer.
//!
//! Not here: deciding which segments may go (`ownership.rs`).

use super::stream::segment_name;
use crate::swift::ObjectRef;
use crate::swift::upload::client_gone;
use crate::swift::{RetryConfig, Session, UploadError, Uploaded};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Deletes what an unfinished upload may have written, when dropped armed: a cancelled upload future (the FTP
/// session went away mid-transfer) must not leave segments behind either.
pub(super) struct CleanupGuard {
    pub(super) session: Arc<Session>,
    pub(super) container: String,
    pub(super) prefix: String,
    pub(super) started: Arc<AtomicUsize>,
    pub(super) armed: bool,
}

impl CleanupGuard {
    fn segments(&self) -> Vec<ObjectRef> {
        (0..self.started.load(Ordering::SeqCst))
            .map(|i| ObjectRef {
                container: self.container.clone(),
                key: segment_name(&self.prefix, i),
            })
            .collect()
    }

    /// Ends the upload's guard by its `result`: a stored upload, or a partial one kept for a resume (its client
    /// went away after sending something), keeps its segments; any other failure deletes them now.
    pub(super) async fn settle(
        mut self,
        result: &Result<Uploaded, UploadError>,
        kept_by_caller: bool,
    ) {
        let kept = match result {
            Ok(_) => true,
            Err(UploadError::Source { bytes, source }) => {
                kept_by_caller && client_gone(source) && *bytes > 0
            }
            Err(_) => false,
        };
        if kept {
            self.armed = false;
        } else {
            self.run().await;
        }
    }

    /// Deletes now (the failure paths, which can wait for it); what cannot be deleted now (Swift unreachable:
    /// often the very reason the upload failed) is retried in the background for [`CLEANUP_RETRY`].
    async fn run(mut self) {
        self.armed = false;
        let left = self.session.delete_objects(self.segments()).await;
        if !left.is_empty() {
            retry_in_background(Arc::clone(&self.session), left);
        }
    }
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        if self.armed {
            retry_in_background(Arc::clone(&self.session), self.segments());
        }
    }
}

/// How the segments of a failed upload are retried when Swift cannot delete them at once: every 4 s for two
/// minutes (Swift unreachable is often the very reason the upload failed; no jitter: a background task).
const CLEANUP_RETRY: RetryConfig = RetryConfig {
    max_retries: 30,
    initial_backoff: std::time::Duration::from_secs(4),
    max_backoff: std::time::Duration::from_secs(4),
};

/// Deletes `segments` from a task of its own, trying again every few seconds until they are gone or
/// [`CLEANUP_RETRY`] has passed (then logs what stays behind).
fn retry_in_background(session: Arc<Session>, mut segments: Vec<ObjectRef>) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    rt.spawn(async move {
        let mut retries = 0;
        loop {
            segments = session.delete_objects(segments).await;
            if segments.is_empty() {
                return;
            }
            if retries >= CLEANUP_RETRY.max_retries {
                let names: Vec<&str> = segments.iter().map(|s| s.key.as_str()).collect();
                tracing::error!(
                    left = segments.len(),
                    ?names,
                    "giving up deleting the segments of a failed upload"
                );
                return;
            }
            tokio::time::sleep(CLEANUP_RETRY.backoff(retries, 1.0)).await;
            retries += 1;
        }
    });
}
