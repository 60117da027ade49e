//! Swift tokens in the shared cache, so that instances behind one address log a user in once: stored sealed
//! under a key derived from the cache secret and the credentials, password included, so only a login with the
//! same credentials finds and reads them.
//!
//! Not here: when a token is used or renewed (`swift/token.rs`).

use super::Cache;
use super::seal::{aead_key, open, seal};
use crate::swift::{SharedTokens, Token};
use aws_lc_rs::aead::LessSafeKey;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Swift tokens in the shared cache, encrypted per credentials.
#[derive(Debug)]
pub struct SharedTokenCache {
    cache: Arc<Cache>,
}

impl SharedTokenCache {
    /// Tokens stored in `cache` (memcached).
    pub fn new(cache: Arc<Cache>) -> Self {
        Self { cache }
    }

    fn names(&self, material: &[u8]) -> (String, LessSafeKey) {
        let material = hex::encode(material);
        let id = self.cache.key(&["token", &material]);
        let secret = self.cache.mac(&["token-key", &material]);
        (id, aead_key(secret.as_ref()))
    }
}

/// What is encrypted: the token and where it is valid.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredToken {
    storage_url: String,
    token: String,
    expires_at: Option<u64>,
    issued_at: u64,
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A v1 token with no announced expiry is shared for this long.
const TOKEN_TTL_UNKNOWN: Duration = Duration::from_secs(3600);

#[async_trait::async_trait]
impl SharedTokens for SharedTokenCache {
    async fn load(&self, material: &[u8]) -> Option<Token> {
        let (id, key) = self.names(material);
        let plain = open(&key, &id, self.cache.get(&id).await?)?;
        let t: StoredToken = serde_json::from_slice(&plain).ok()?;
        Some(Token {
            storage_url: t.storage_url.parse().ok()?,
            token: crate::swift::Secret::new(t.token),
            expires_at: t
                .expires_at
                .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s)),
            issued_at: SystemTime::UNIX_EPOCH + Duration::from_secs(t.issued_at),
        })
    }

    async fn store(&self, material: &[u8], token: &Token) {
        let (id, key) = self.names(material);
        let ttl = match token.expires_at {
            Some(e) => match e.duration_since(SystemTime::now()) {
                Ok(left) => left,
                Err(_) => return,
            },
            None => TOKEN_TTL_UNKNOWN,
        };
        let plain = StoredToken {
            storage_url: token.storage_url.to_string(),
            token: token.token.expose().to_owned(),
            expires_at: token.expires_at.map(secs),
            issued_at: secs(token.issued_at),
        };
        let Some(value) = serde_json::to_vec(&plain)
            .ok()
            .and_then(|json| seal(&key, &id, json))
        else {
            return;
        };
        self.cache.set(&id, value, ttl).await;
    }

    async fn forget(&self, material: &[u8]) {
        let (id, _) = self.names(material);
        self.cache.delete(&id).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_are_sealed_per_credentials() {
        let cache = Arc::new(Cache::local(b"secret"));
        let tokens = SharedTokenCache::new(Arc::clone(&cache));
        let token = Token {
            storage_url: "http://127.0.0.1:8080/v1/AUTH_test".parse().unwrap(),
            token: crate::swift::Secret::new("AUTH_tk0123456789"),
            expires_at: Some(SystemTime::now() + Duration::from_secs(600)),
            issued_at: SystemTime::now(),
        };
        tokens.store(b"user+password", &token).await;
        let back = tokens.load(b"user+password").await.unwrap();
        assert_eq!(back.token.expose(), "AUTH_tk0123456789");
        assert_eq!(back.storage_url, token.storage_url);
        assert!(tokens.load(b"user+other password").await.is_none());
        // What is stored does not show the token.
        let (id, _) = tokens.names(b"user+password");
        let raw = cache.get(&id).await.unwrap();
        assert!(!raw.windows(4).any(|w| w == b"AUTH"));
        tokens.forget(b"user+password").await;
        assert!(tokens.load(b"user+password").await.is_none());
    }
}
