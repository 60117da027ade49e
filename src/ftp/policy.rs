//! `--storage-policy`: new containers are created with it, and the root listing shows only containers of it.
//!
//! Swift's account listing does not say which policy a container has, so each container's policy comes from
//! a container `HEAD`, made concurrently and remembered per account for [`POLICY_TTL`] (a container's policy
//! never changes while it exists; only a container deleted and created again under the same name could have
//! another one). The first root listing of an account with N containers costs N HEADs; later ones none.
//!
//! Deliberately not here: hiding is not confinement. A container of another policy can still be entered,
//! read and written by its path (Swift's ACLs say who may; the policy says only where bytes are stored).
//! A container whose policy cannot be read (a HEAD that fails) is shown: hiding it would look like data loss.

use super::storage::HEAD_CONCURRENCY;
use crate::swift;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a container's policy is trusted without asking again.
pub const POLICY_TTL: Duration = Duration::from_secs(600);
/// Containers remembered at most (all accounts together); past it the memory starts over.
const MAX_REMEMBERED: usize = 100_000;

/// The configured policy and what is known of containers' policies.
#[derive(Debug, Default)]
pub struct PolicyFilter {
    wanted: Option<String>,
    /// `(account storage URL, container)` → (policy, when it was read).
    known: Mutex<HashMap<(String, String), (String, Instant)>>,
}

impl PolicyFilter {
    /// A filter for `wanted` (`None`: every container is shown, new ones get Swift's default policy).
    pub fn new(wanted: Option<String>) -> Self {
        Self {
            wanted,
            known: Mutex::default(),
        }
    }

    /// The policy new containers are created with.
    pub fn wanted(&self) -> Option<&str> {
        self.wanted.as_deref()
    }

    /// The headers that create a container with the configured policy.
    pub fn create_headers(&self) -> Vec<(&'static str, &str)> {
        self.wanted
            .iter()
            .map(|p| ("X-Storage-Policy", p.as_str()))
            .collect()
    }

    /// Which of `containers` to show, in order.
    pub async fn shown(&self, session: &swift::Session, containers: &[String]) -> Vec<bool> {
        let Some(wanted) = &self.wanted else {
            return vec![true; containers.len()];
        };
        let account = session.account();
        // Owned names: a closure over borrowed ones is not `Send` enough for libunftp's boxed futures.
        futures_util::stream::iter(containers.to_vec())
            .map(|name: String| {
                let account = account.clone();
                async move {
                    match self.policy_of(session, &account, &name).await {
                        Some(policy) => policy.eq_ignore_ascii_case(wanted),
                        None => true,
                    }
                }
            })
            .buffered(HEAD_CONCURRENCY)
            .collect()
            .await
    }

    async fn policy_of(
        &self,
        session: &swift::Session,
        account: &str,
        container: &str,
    ) -> Option<String> {
        let key = (account.to_owned(), container.to_owned());
        if let Some((policy, at)) = self.lock().get(&key)
            && at.elapsed() < POLICY_TTL
        {
            return Some(policy.clone());
        }
        match session.head_container(container).await {
            Ok(head) => {
                let policy = head.storage_policy?;
                let mut known = self.lock();
                if known.len() >= MAX_REMEMBERED {
                    known.clear();
                }
                known.insert(key, (policy.clone(), Instant::now()));
                Some(policy)
            }
            Err(e) => {
                tracing::info!(container, error = %e, "cannot read a container's storage policy: shown");
                None
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), (String, Instant)>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}
