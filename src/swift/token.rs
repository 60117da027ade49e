//! Tokens shared by every session of the same credentials, renewed before they expire, one request at a time.
//!
//! A [`TokenSlot`] holds the current token of one set of credentials (auth method, user, password: all of it).
//! Sessions hold the slot, so a hundred FTP sessions of one user share one token and one renewal: the first
//! task to find it missing or about to expire logs in while the others wait on the slot's lock, then reuse what
//! it got (single-flight). The [`TokenStore`] finds the slot of a login by an HMAC-SHA256 of the credentials
//! under a random per-process key: the password is part of the key, so a wrong password never reaches someone's
//! token, and no password is kept in the map. Slots live as long as a session holds them (the store keeps weak
//! references), so a token outlives its last session only in the memcached cache that may come later.
//!
//! When to renew: when less than a third of the token's lifetime is left, at most five minutes before expiry
//! (Keystone's hour-long tokens renew at 55 minutes; a 20-second test token at 13 seconds). v1 tokens carry no
//! expiry and are renewed only after a 401.
//!
//! Across processes: an optional [`SharedTokens`] store (memcached, `src/cache/tokens.rs`) is asked before logging in
//! and told about every new token, so several gateway instances behind one address share tokens too. After a
//! 401 the shared copy is forgotten before logging in again, so a revoked token is not handed back.

use super::auth::Token;
use super::error::Error;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

/// Tokens shared between processes, looked up by the same credential material the in-process store hashes
/// (password included). Implementations must never hand a token to other credentials, and never keep it in
/// clear where others can read it.
#[async_trait::async_trait]
pub trait SharedTokens: Send + Sync + std::fmt::Debug {
    /// The token stored for these credentials, if any.
    async fn load(&self, material: &[u8]) -> Option<Token>;
    /// Stores a new token for these credentials.
    async fn store(&self, material: &[u8], token: &Token);
    /// Drops the stored token (Swift refused it).
    async fn forget(&self, material: &[u8]);
}

/// Renew no earlier than this before expiry, however long the token lives.
const MAX_MARGIN: Duration = Duration::from_secs(300);

/// One set of credentials' current token.
#[derive(Debug)]
pub(crate) struct TokenSlot {
    // A std mutex: held only to clone or swap the Arc, never across an await.
    current: Mutex<Option<Arc<Token>>>,
    // Serialises logins for this slot (single-flight).
    renewing: tokio::sync::Mutex<()>,
}

impl TokenSlot {
    fn new() -> Self {
        Self {
            current: Mutex::new(None),
            renewing: tokio::sync::Mutex::new(()),
        }
    }

    /// The current token, whatever its age.
    pub(crate) fn current(&self) -> Option<Arc<Token>> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, token: Arc<Token>) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(token);
    }

    /// A token `usable` takes (not about to expire, typically): the current one, or a new one from `login` (one
    /// login at a time; waiters reuse its result).
    pub(crate) async fn fresh<F, Fut>(
        &self,
        usable: impl Fn(&Token) -> bool,
        login: F,
    ) -> Result<Arc<Token>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Token, Error>>,
    {
        if let Some(t) = self.current().filter(|t| usable(t)) {
            return Ok(t);
        }
        let _guard = self.renewing.lock().await;
        if let Some(t) = self.current().filter(|t| usable(t)) {
            return Ok(t);
        }
        match login().await {
            Ok(token) => {
                let token = Arc::new(token);
                self.set(Arc::clone(&token));
                Ok(token)
            }
            // The auth service refused the credentials: the password is no longer right, and a token it gave
            // before is no proof of the contrary.
            Err(e) if e.kind() == super::ErrorKind::Unauthenticated => Err(e),
            // An early renewal that fails otherwise keeps the token that still works (the auth service may be
            // down for a moment); the next request tries again.
            Err(e) => match self
                .current()
                .filter(|t| t.expires_at.is_some_and(|x| x > SystemTime::now()))
            {
                Some(still_valid) => {
                    tracing::warn!(error = %e, "renewing a token failed; using it until it expires");
                    Ok(still_valid)
                }
                None => Err(e),
            },
        }
    }

    /// After a 401 with `seen`: a new token, unless another task already replaced `seen`.
    pub(crate) async fn replace<F, Fut>(
        &self,
        seen: &Arc<Token>,
        login: F,
    ) -> Result<Arc<Token>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Token, Error>>,
    {
        let _guard = self.renewing.lock().await;
        if let Some(t) = self.current().filter(|t| !Arc::ptr_eq(t, seen)) {
            return Ok(t);
        }
        let token = Arc::new(login().await?);
        self.set(Arc::clone(&token));
        Ok(token)
    }

    /// Replaces the token outright (a token obtained elsewhere).
    pub(crate) fn install(&self, token: Token) {
        self.set(Arc::new(token));
    }
}

/// Whether `token` should be renewed at `now`.
pub(crate) fn needs_renewal(token: &Token, now: SystemTime) -> bool {
    let Some(expires) = token.expires_at else {
        return false;
    };
    let lifetime = expires.duration_since(token.issued_at).unwrap_or_default();
    let margin = (lifetime / 3).min(MAX_MARGIN);
    match expires.duration_since(now) {
        Ok(left) => left < margin,
        Err(_) => true, // already expired
    }
}

/// The slots of every logged-in set of credentials.
pub(crate) struct TokenStore {
    key: hmac::Key,
    slots: Mutex<HashMap<[u8; 32], Weak<TokenSlot>>>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore").finish_non_exhaustive()
    }
}

impl TokenStore {
    /// A store with a fresh random key.
    pub(crate) fn new() -> Result<Self, aws_lc_rs::error::Unspecified> {
        let mut key = [0u8; 32];
        SystemRandom::new().fill(&mut key)?;
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            slots: Mutex::new(HashMap::new()),
        })
    }

    /// The slot of these credentials (identified by `material`), created if no session holds one.
    pub(crate) fn slot(&self, material: &[u8]) -> Arc<TokenSlot> {
        let tag = hmac::sign(&self.key, material);
        let mut id = [0u8; 32];
        id.copy_from_slice(tag.as_ref());
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get(&id).and_then(Weak::upgrade) {
            return slot;
        }
        slots.retain(|_, w| w.strong_count() > 0);
        let slot = Arc::new(TokenSlot::new());
        slots.insert(id, Arc::downgrade(&slot));
        slot
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::swift::auth::Secret;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn token(issued: SystemTime, lifetime: Option<Duration>) -> Token {
        Token {
            storage_url: "http://s/v1/AUTH_t".parse().unwrap(),
            token: Secret::new("t"),
            expires_at: lifetime.map(|l| issued + l),
            issued_at: issued,
        }
    }

    fn unexpired(t: &Token) -> bool {
        !needs_renewal(t, SystemTime::now())
    }

    #[tokio::test]
    async fn a_refused_renewal_is_final_and_a_failed_one_keeps_the_token_that_works() {
        use super::super::error::Op;
        let store = TokenStore::new().unwrap();
        let slot = store.slot(b"c");
        // Issued 57 minutes ago for an hour: due for renewal, still valid.
        let old = SystemTime::now() - Duration::from_secs(3400);
        slot.install(token(old, Some(Duration::from_secs(3600))));
        let refused = slot
            .fresh(unexpired, || async {
                Err(Error::from_status(Op::Authenticate, 401))
            })
            .await;
        assert_eq!(
            refused.map(|_| ()).unwrap_err().kind(),
            super::super::ErrorKind::Unauthenticated
        );
        let kept = slot
            .fresh(unexpired, || async {
                Err(Error::from_status(Op::Authenticate, 503))
            })
            .await
            .unwrap();
        assert_eq!(kept.issued_at, old);
        // A stricter test of the current token (a login wanting a recent proof of the password) logs in.
        let recent = |t: &Token| {
            SystemTime::now()
                .duration_since(t.issued_at)
                .is_ok_and(|age| age < Duration::from_secs(60))
        };
        let fresh = slot
            .fresh(recent, || async { Ok(token(SystemTime::now(), None)) })
            .await
            .unwrap();
        assert!(fresh.issued_at > old);
    }

    #[test]
    fn renewal_margin_is_a_third_of_the_lifetime_up_to_five_minutes() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let short = token(t0, Some(Duration::from_secs(30)));
        assert!(!needs_renewal(&short, t0 + Duration::from_secs(19)));
        assert!(needs_renewal(&short, t0 + Duration::from_secs(21)));
        let hour = token(t0, Some(Duration::from_secs(3600)));
        assert!(!needs_renewal(&hour, t0 + Duration::from_secs(3299)));
        assert!(needs_renewal(&hour, t0 + Duration::from_secs(3301)));
        assert!(needs_renewal(&hour, t0 + Duration::from_secs(4000)));
        assert!(!needs_renewal(
            &token(t0, None),
            t0 + Duration::from_secs(1_000_000)
        ));
    }

    #[tokio::test]
    async fn concurrent_logins_of_one_slot_make_one_request() {
        let store = TokenStore::new().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let slot = store.slot(b"same credentials");
            let calls = Arc::clone(&calls);
            tasks.push(tokio::spawn(async move {
                slot.fresh(unexpired, || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(token(SystemTime::now(), Some(Duration::from_secs(3600))))
                })
                .await
                .map(|_| slot)
            }));
        }
        let mut slots = Vec::new();
        for t in tasks {
            slots.push(t.await.unwrap().unwrap());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Other credentials get another slot.
        let other = store.slot(b"other credentials");
        assert!(other.current().is_none());
        assert!(!Arc::ptr_eq(&other, &slots[0]));
    }

    #[tokio::test]
    async fn a_replaced_token_is_not_replaced_twice() {
        let store = TokenStore::new().unwrap();
        let slot = store.slot(b"c");
        let first = slot
            .fresh(unexpired, || async { Ok(token(SystemTime::now(), None)) })
            .await
            .unwrap();
        let second = slot
            .replace(&first, || async { Ok(token(SystemTime::now(), None)) })
            .await
            .unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        // A second task that also saw `first` fail gets `second`, without a login.
        let third = slot
            .replace(&first, || async { panic!("no second login") })
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&second, &third));
    }
}
