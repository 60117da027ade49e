//! Logging in to Swift: turns credentials into a storage URL and a token.
//!
//! v1 (TempAuth, swauth, and any auth service that speaks `X-Auth-User`/`X-Auth-Key`) lives here. Keystone
//! v2.0/v3 is a later addition to the same `AuthMethod` enum. This module keeps no state: the token a session
//! holds, and re-authenticating on 401, are `client.rs`'s job.
//!
//! Secrets are wrapped in [`Secret`], whose `Debug` prints nothing of them, because libunftp's tracing spans
//! `Debug`-print the user type that holds a session.

use super::error::{Error, Op};
use reqwest::Url;
use std::fmt;
use std::net::IpAddr;

/// A password, key or token: `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret string.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// What the user typed at the FTP login.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The login name, as given (`account:user` for v1).
    pub user: String,
    /// The password or key.
    pub key: Secret,
}

/// A storage URL and the token that opens it.
#[derive(Debug, Clone)]
pub struct Token {
    /// The account's URL, e.g. `http://127.0.0.1:8080/v1/AUTH_test`.
    pub storage_url: Url,
    /// The `X-Auth-Token` value.
    pub token: Secret,
}

/// How this gateway logs users in.
#[derive(Debug, Clone)]
pub enum AuthMethod {
    /// Swift v1 auth: `GET auth_url` with `X-Auth-User` and `X-Auth-Key`.
    V1 {
        /// E.g. `http://127.0.0.1:8080/auth/v1.0`.
        auth_url: Url,
    },
}

impl AuthMethod {
    /// Logs in; `Unauthenticated` when the credentials are refused.
    pub async fn login(
        &self,
        http: &reqwest::Client,
        creds: &Credentials,
        forwarded_for: Option<IpAddr>,
    ) -> Result<Token, Error> {
        match self {
            Self::V1 { auth_url } => login_v1(http, auth_url, creds, forwarded_for).await,
        }
    }
}

async fn login_v1(
    http: &reqwest::Client,
    auth_url: &Url,
    creds: &Credentials,
    forwarded_for: Option<IpAddr>,
) -> Result<Token, Error> {
    let mut req = http
        .get(auth_url.clone())
        .header("X-Auth-User", &creds.user)
        .header("X-Auth-Key", creds.key.expose());
    if let Some(ip) = forwarded_for {
        req = req.header("X-Forwarded-For", ip.to_string());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| Error::from_transport(Op::Authenticate, e))?;
    let status = resp.status();
    if !status.is_success() {
        // 401 and 403 both mean "these credentials do not log in" to the user; keep the difference for logs.
        let status = if status.as_u16() == 403 {
            401
        } else {
            status.as_u16()
        };
        return Err(Error::from_status(Op::Authenticate, status));
    }
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let storage_url = header("X-Storage-Url")
        .ok_or_else(|| Error::protocol(Op::Authenticate, "the auth answer has no X-Storage-Url"))?;
    let token = header("X-Auth-Token")
        .or_else(|| header("X-Storage-Token"))
        .ok_or_else(|| Error::protocol(Op::Authenticate, "the auth answer has no X-Auth-Token"))?;
    let storage_url = Url::parse(&storage_url).map_err(|_| {
        Error::protocol(
            Op::Authenticate,
            "the auth answer's X-Storage-Url is not a URL",
        )
    })?;
    Ok(Token {
        storage_url,
        token: Secret::new(token),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug() {
        let creds = Credentials {
            user: "test:tester".into(),
            key: Secret::new("hunter2"),
        };
        let shown = format!("{creds:?}");
        assert!(shown.contains("test:tester"));
        assert!(!shown.contains("hunter2"));
    }
}
