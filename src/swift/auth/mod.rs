//! Logging in to Swift: turns credentials into a storage URL, a token and the token's expiry.
//!
//! Three protocols, one [`AuthMethod`]:
//! - v1 (TempAuth, swauth): `GET auth_url` with `X-Auth-User`/`X-Auth-Key`.
//! - Keystone v2.0: `POST {auth}/v2.0/tokens` with `tenantName` and `passwordCredentials`; the storage URL comes
//!   from the service catalog.
//! - Keystone v3: `POST {auth}/v3/auth/tokens`, password method scoped to a project, or an application
//!   credential; the token is the `X-Subject-Token` header, the storage URL comes from the catalog.
//!
//! The auth URL may be given with or without its version suffix (`/v2.0`, `/v3`). This module keeps no state:
//! sharing, renewing and re-using tokens is `client.rs`'s job, and how an FTP login name splits into tenant,
//! user and domains is the FTP adapter's. Secrets are wrapped in [`Secret`], whose `Debug` prints nothing.
//!
//! Here: the credentials and what a login gives, v1, and the HTTP both protocols share. Keystone's request body
//! and its service catalog are in `keystone.rs`.

mod keystone;

pub use keystone::{CatalogFilter, Interface};

use super::error::{Error, Op};
use keystone::{parse_v2, parse_v3, v3_body};
use reqwest::Url;
use serde_json::json;
use std::fmt;
use std::net::IpAddr;
use std::time::SystemTime;

/// A password, key or token: `Debug` never shows it.
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

/// What a user logs in with, per protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// v1: the user (`account:user`) and key as given.
    V1 {
        /// `X-Auth-User`.
        user: String,
        /// `X-Auth-Key`.
        key: Secret,
    },
    /// Keystone v2.0: tenant, user, password.
    V2 {
        /// `tenantName`.
        tenant: String,
        /// `username`.
        user: String,
        /// `password`.
        password: Secret,
    },
    /// Keystone v3 password login scoped to a project.
    V3Password {
        /// Project name.
        project: String,
        /// Domain name of the project.
        project_domain: String,
        /// User name.
        user: String,
        /// Domain name of the user.
        user_domain: String,
        /// Password.
        password: Secret,
    },
    /// Keystone v3 application credential (project-scoped by construction).
    V3ApplicationCredential {
        /// Its id.
        id: String,
        /// Its secret.
        secret: Secret,
    },
}

impl Credentials {
    /// The user name, for logs.
    pub fn display_user(&self) -> String {
        match self {
            Self::V1 { user, .. } => user.clone(),
            Self::V2 { tenant, user, .. } => format!("{user} (tenant {tenant})"),
            Self::V3Password {
                project,
                project_domain,
                user,
                user_domain,
                ..
            } => format!("{user}@{user_domain} (project {project}@{project_domain})"),
            Self::V3ApplicationCredential { id, .. } => format!("application credential {id}"),
        }
    }

    /// Whose password is tried, whatever the login's spelling or scope: the user (in its domain for v3), case
    /// folded for Keystone (whose name lookups usually ignore case), without the project or tenant, which only
    /// scope the token. `demo.alice`, `other@Default.ALICE@default` are one identity. What failed logins are
    /// counted against: a spelling of its own would be a failure budget of its own.
    pub fn identity(&self) -> String {
        let parts: Vec<String> = match self {
            // tempauth and swauth compare names exactly.
            Self::V1 { user, .. } => vec!["v1".into(), user.clone()],
            Self::V2 { user, .. } => vec!["keystone".into(), "default".into(), user.to_lowercase()],
            Self::V3Password {
                user, user_domain, ..
            } => vec![
                "keystone".into(),
                user_domain.to_lowercase(),
                user.to_lowercase(),
            ],
            Self::V3ApplicationCredential { id, .. } => vec!["v3-appcred".into(), id.clone()],
        };
        // Length-prefixed, so no choice of names can make two identities one.
        parts.iter().map(|p| format!("{}:{p}", p.len())).collect()
    }

    /// Every field, secret included, as bytes that identify these credentials exactly (for keyed hashing).
    pub(crate) fn fingerprint_material(&self) -> Vec<u8> {
        let parts: Vec<&str> = match self {
            Self::V1 { user, key } => vec!["v1", user, key.expose()],
            Self::V2 {
                tenant,
                user,
                password,
            } => vec!["v2", tenant, user, password.expose()],
            Self::V3Password {
                project,
                project_domain,
                user,
                user_domain,
                password,
            } => vec![
                "v3",
                project,
                project_domain,
                user,
                user_domain,
                password.expose(),
            ],
            Self::V3ApplicationCredential { id, secret } => vec!["v3-ac", id, secret.expose()],
        };
        // Length-prefixed, so that no two different field lists give the same bytes.
        let mut out = Vec::new();
        for p in parts {
            out.extend_from_slice(&(p.len() as u64).to_be_bytes());
            out.extend_from_slice(p.as_bytes());
        }
        out
    }
}

/// A storage URL, the token that opens it, and when the token expires.
#[derive(Debug, Clone)]
pub struct Token {
    /// The account's URL, e.g. `http://127.0.0.1:8080/v1/AUTH_test`.
    pub storage_url: Url,
    /// The `X-Auth-Token` value.
    pub token: Secret,
    /// When Keystone says it expires (v1 tokens carry no expiry here).
    pub expires_at: Option<SystemTime>,
    /// When it was obtained.
    pub issued_at: SystemTime,
}

/// How this gateway logs users in.
#[derive(Debug, Clone)]
pub enum AuthMethod {
    /// Swift v1 auth.
    V1 {
        /// E.g. `http://127.0.0.1:8080/auth/v1.0`.
        auth_url: Url,
    },
    /// Keystone v2.0.
    KeystoneV2 {
        /// The identity URL, with or without `/v2.0`.
        auth_url: Url,
        /// Which endpoint to use.
        catalog: CatalogFilter,
    },
    /// Keystone v3.
    KeystoneV3 {
        /// The identity URL, with or without `/v3`.
        auth_url: Url,
        /// Which endpoint to use.
        catalog: CatalogFilter,
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
        match (self, creds) {
            (Self::V1 { auth_url }, Credentials::V1 { user, key }) => {
                login_v1(http, auth_url, user, key, forwarded_for).await
            }
            (
                Self::KeystoneV2 { auth_url, catalog },
                Credentials::V2 {
                    tenant,
                    user,
                    password,
                },
            ) => {
                let body = json!({"auth": {"tenantName": tenant,
                    "passwordCredentials": {"username": user, "password": password.expose()}}});
                let url = versioned(auth_url, "v2.0", "tokens");
                let (_, bytes) = post_json(http, url, &body, forwarded_for).await?;
                parse_v2(&bytes, catalog)
            }
            (
                Self::KeystoneV3 { auth_url, catalog },
                creds @ (Credentials::V3Password { .. }
                | Credentials::V3ApplicationCredential { .. }),
            ) => {
                let body = v3_body(creds);
                let url = versioned(auth_url, "v3", "auth/tokens");
                let (headers, bytes) = post_json(http, url, &body, forwarded_for).await?;
                let token = headers
                    .get("X-Subject-Token")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        Error::protocol(
                            Op::Authenticate,
                            "Keystone's answer has no X-Subject-Token",
                        )
                    })?
                    .to_owned();
                parse_v3(&bytes, token, catalog)
            }
            _ => Err(Error::protocol(
                Op::Authenticate,
                "these credentials do not fit the configured auth method",
            )),
        }
    }
}

/// `base` with `/<version>/<path>` appended, whether or not `base` already ends with the version.
fn versioned(base: &Url, version: &str, path: &str) -> Url {
    let mut url = base.clone();
    let trimmed = url.path().trim_end_matches('/').to_owned();
    let root = trimmed
        .strip_suffix(&format!("/{version}"))
        .unwrap_or(&trimmed);
    url.set_path(&format!("{root}/{version}/{path}"));
    url
}

async fn post_json(
    http: &reqwest::Client,
    url: Url,
    body: &serde_json::Value,
    forwarded_for: Option<IpAddr>,
) -> Result<(reqwest::header::HeaderMap, bytes::Bytes), Error> {
    let mut req = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string());
    if let Some(ip) = forwarded_for {
        req = req.header("X-Forwarded-For", ip.to_string());
    }
    let resp = send_counted(req)
        .await
        .map_err(|e| Error::from_transport(Op::Authenticate, e))?;
    let status = resp.status().as_u16();
    if !resp.status().is_success() {
        // Keystone answers 401 for a wrong password and for an unknown user or project alike, 404 for some
        // unknown scopes: to the user they all mean "these credentials do not log in".
        let status = if matches!(status, 403 | 404) {
            401
        } else {
            status
        };
        return Err(Error::from_status(Op::Authenticate, status));
    }
    let headers = resp.headers().clone();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| Error::from_transport(Op::Authenticate, e))?;
    Ok((headers, bytes))
}

/// Sends a request to the auth service, reported to the request observer (`observe.rs`).
async fn send_counted(req: reqwest::RequestBuilder) -> reqwest::Result<reqwest::Response> {
    let started = std::time::Instant::now();
    let resp = req.send().await;
    let answer = match &resp {
        Ok(r) => super::Answer::Status(r.status().as_u16()),
        Err(e) if e.is_timeout() => super::Answer::Timeout,
        Err(_) => super::Answer::Error,
    };
    super::observe::observed(Op::Authenticate.name(), answer, started.elapsed());
    resp
}

async fn login_v1(
    http: &reqwest::Client,
    auth_url: &Url,
    user: &str,
    key: &Secret,
    forwarded_for: Option<IpAddr>,
) -> Result<Token, Error> {
    let mut req = http
        .get(auth_url.clone())
        .header("X-Auth-User", user)
        .header("X-Auth-Key", key.expose());
    if let Some(ip) = forwarded_for {
        req = req.header("X-Forwarded-For", ip.to_string());
    }
    let resp = send_counted(req)
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
    let url = header("X-Storage-Url")
        .ok_or_else(|| Error::protocol(Op::Authenticate, "the auth answer has no X-Storage-Url"))?;
    let token = header("X-Auth-Token")
        .or_else(|| header("X-Storage-Token"))
        .ok_or_else(|| Error::protocol(Op::Authenticate, "the auth answer has no X-Auth-Token"))?;
    Ok(Token {
        storage_url: Url::parse(&url).map_err(|_| {
            Error::protocol(
                Op::Authenticate,
                "the auth answer's X-Storage-Url is not a URL",
            )
        })?,
        token: Secret::new(token),
        expires_at: header("X-Auth-Token-Expires")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .and_then(|secs| SystemTime::now().checked_add(std::time::Duration::from_secs(secs))),
        issued_at: SystemTime::now(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug() {
        let creds = Credentials::V1 {
            user: "test:tester".into(),
            key: Secret::new("hunter2"),
        };
        let shown = format!("{creds:?}");
        assert!(shown.contains("test:tester"));
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn auth_urls_get_their_version_once() {
        let cases = [
            (
                "https://id.example/v2.0",
                "v2.0",
                "tokens",
                "https://id.example/v2.0/tokens",
            ),
            (
                "https://id.example/v2.0/",
                "v2.0",
                "tokens",
                "https://id.example/v2.0/tokens",
            ),
            (
                "https://id.example",
                "v2.0",
                "tokens",
                "https://id.example/v2.0/tokens",
            ),
            (
                "http://h:5000/v3",
                "v3",
                "auth/tokens",
                "http://h:5000/v3/auth/tokens",
            ),
            (
                "http://h:5000/identity/",
                "v3",
                "auth/tokens",
                "http://h:5000/identity/v3/auth/tokens",
            ),
        ];
        for (base, version, path, want) in cases {
            assert_eq!(
                versioned(&Url::parse(base).unwrap(), version, path).as_str(),
                want
            );
        }
    }

    #[test]
    fn fingerprints_differ_when_any_field_does() {
        let a = Credentials::V2 {
            tenant: "t".into(),
            user: "u".into(),
            password: Secret::new("p"),
        };
        let b = Credentials::V2 {
            tenant: "t".into(),
            user: "u".into(),
            password: Secret::new("q"),
        };
        let c = Credentials::V2 {
            tenant: "tu".into(),
            user: "".into(),
            password: Secret::new("p"),
        };
        assert_ne!(a.fingerprint_material(), b.fingerprint_material());
        assert_ne!(a.fingerprint_material(), c.fingerprint_material());
    }
}
