//! The raw Swift calls: one method per operation, on a logged-in [`Session`].
//!
//! Every request goes through [`Session::send`], which adds the token and `X-Forwarded-For`, re-authenticates
//! once on a 401 (single-flight: concurrent requests that all see the same expired token log in once), and
//! retries idempotent requests on transient failures (`retry.rs`).
//!
//! Timeouts: a connect timeout, and an answer timeout ([`ClientConfig::read_timeout`]) applied here per request:
//! Swift must start answering within it (a server-side copy gets [`COPY_WAIT`]). A streamed upload has no answer
//! deadline while its body flows (Swift answers after the last byte); it gets the same timeout from its last byte
//! on (`upload.rs`), and downloads get it between two chunks of the body (the caller). There is no total timeout,
//! so a slow but moving transfer paced by an FTP client is never cut. (reqwest's own `read_timeout` is not used:
//! it runs from the request's start until the answer's headers, so it would cut every upload longer than it.)
//!
//! Deliberately not here: anything about FTP, paths or listings' meaning (the `ftp` module), and paging
//! (`list.rs`).
//!
//! The operations themselves are in `operations.rs`; URLs and header parsing in `urls.rs`.

use super::Info;
use super::auth::{AuthMethod, Credentials, Secret, Token};
use super::error::{Error, ErrorKind, Op};
use super::retry::RetryConfig;
use super::token::{SharedTokens, TokenSlot, TokenStore};
use super::urls::info_url;
use bytes::Bytes;
use reqwest::{RequestBuilder, Response, Url};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How the HTTP side of the client behaves.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Skip TLS certificate verification towards the auth service and Swift (`--insecure`).
    pub insecure: bool,
    /// Extra trusted CA certificates (PEM), added to the system's (`--ca-file`).
    pub ca_pem: Option<Vec<u8>>,
    /// Time allowed to open a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest wait for Swift to start answering, and longest silence between two chunks of a body. Not a total
    /// timeout.
    pub read_timeout: Duration,
    /// Retries of idempotent requests.
    pub retry: RetryConfig,
    /// How long after the auth service accepted a password a new login with it may reuse the token it gave
    /// instead of asking again: the most a changed or revoked password keeps working (zero: every login asks).
    pub login_reuse: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            insecure: false,
            ca_pem: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            retry: RetryConfig::default(),
            login_reuse: Duration::from_secs(300),
        }
    }
}

/// How long the longest server-side copy may take before Swift answers (Swift answers a copy only when done).
pub(crate) const COPY_WAIT: Duration = Duration::from_secs(3600);

/// Whether a request may be sent again, and how long its answer may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Idempotent, with a body that can be rebuilt: retried on 401 and transient failures; answered within the
    /// client's answer timeout.
    Retry,
    /// Like `Retry`, but Swift does the work before answering (server-side copy): answered within [`COPY_WAIT`].
    RetryPatient,
    /// A streamed body: sent once, no answer deadline here (the caller times the end of the body).
    Never,
}

/// Idle connections kept per Swift host for reuse.
const POOL_IDLE_PER_HOST: usize = 32;
/// How long an idle connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// The shared HTTP client: cheap to clone, one connection pool and one token store for every session.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    retry: RetryConfig,
    idle: Duration,
    tokens: Arc<TokenStore>,
    shared_tokens: Option<Arc<dyn SharedTokens>>,
    login_reuse: Duration,
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The HTTP client (TLS set-up, CA certificates).
    #[error("setting up HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// The system's random generator.
    #[error("no random numbers for the token store's key")]
    Random,
}

impl Client {
    /// Builds the one HTTP client the gateway uses.
    pub fn new(config: &ClientConfig) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .tls_danger_accept_invalid_certs(config.insecure)
            .tcp_nodelay(true)
            // Connections kept for reuse after a burst: a few, not long (each is a descriptor and a Swift
            // worker's socket).
            .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .user_agent(concat!("swiftftp/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &config.ca_pem {
            builder = builder.tls_certs_merge(reqwest::Certificate::from_pem_bundle(pem)?);
        }
        Ok(Self {
            http: builder.build()?,
            retry: config.retry.clone(),
            idle: config.read_timeout,
            tokens: Arc::new(TokenStore::new().map_err(|_| ClientError::Random)?),
            shared_tokens: None,
            login_reuse: config.login_reuse,
        })
    }

    /// Also shares tokens through `shared` (other gateway processes).
    pub fn with_shared_tokens(mut self, shared: Arc<dyn SharedTokens>) -> Self {
        self.shared_tokens = Some(shared);
        self
    }

    /// Logs in and returns a session. Sessions of the same credentials (password included) share one token:
    /// a login whose credentials hold a fresh token that the auth service gave less than `login_reuse` ago
    /// (in this process or, with memcached, in another) makes no request at all; an older one is not proof
    /// that the password is still right, so the auth service is asked again.
    pub async fn login(
        &self,
        auth: &AuthMethod,
        creds: Credentials,
        forwarded_for: Option<IpAddr>,
    ) -> Result<Session, Error> {
        let mut material = format!("{auth:?}").into_bytes();
        material.extend_from_slice(&creds.fingerprint_material());
        let slot = self.tokens.slot(&material);
        let session = Session {
            client: self.clone(),
            auth: auth.clone(),
            creds,
            forwarded_for,
            slot,
            material: material.into(),
            segments_seen: Default::default(),
            prefixes_seen: Default::default(),
        };
        let reuse = self.login_reuse;
        // Read the clock at each look: a token another task fetched while this one waited is newer than any
        // time taken before (and one issued "in the future" by a skewed clock counts as new).
        let proven = |t: &Token| {
            let now = SystemTime::now();
            !super::token::needs_renewal(t, now)
                && now
                    .duration_since(t.issued_at)
                    .map_or(true, |age| age < reuse)
        };
        session
            .slot
            .fresh(proven, || session.shared_or_login(proven))
            .await?;
        Ok(session)
    }

    /// Reads the cluster's limits from `/info`, found at the root of the proxy serving `storage_url`.
    pub async fn info(
        &self,
        storage_url: &Url,
        forwarded_for: Option<IpAddr>,
    ) -> Result<Info, Error> {
        let mut req = self.http.get(info_url(storage_url));
        if let Some(ip) = forwarded_for {
            req = req.header("X-Forwarded-For", ip.to_string());
        }
        let resp = tokio::time::timeout(self.idle, req.send())
            .await
            .map_err(|_| Error::timed_out(Op::Info))?
            .map_err(|e| Error::from_transport(Op::Info, e))?;
        if !resp.status().is_success() {
            return Err(Error::from_status(Op::Info, resp.status().as_u16()));
        }
        let body = read_body(&Op::Info, resp, self.idle).await?;
        Info::from_json(&body)
            .map_err(|e| Error::protocol(Op::Info, format!("bad /info JSON: {e}")))
    }
}

/// One user's logged-in view of Swift. Shared (behind an `Arc`) by the FTP session and its data transfers.
pub struct Session {
    client: Client,
    auth: AuthMethod,
    creds: Credentials,
    forwarded_for: Option<IpAddr>,
    slot: Arc<TokenSlot>,
    /// What identifies the credentials (password included) to the token stores.
    material: Arc<[u8]>,
    /// Whether `<container>_segments` existed when last looked at, and when (`large/container.rs`).
    pub(super) segments_seen: SegmentsSeen,
    /// The names under container and prefix pairs when last looked at, and when (`large/container.rs`,
    /// `may_hold`).
    pub(super) prefixes_seen: SegmentsSeen<Under>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.creds.display_user())
            .field("forwarded_for", &self.forwarded_for)
            .finish_non_exhaustive()
    }
}

impl Session {
    async fn login(&self) -> Result<Token, Error> {
        tracing::debug!(user = %self.creds.display_user(), "logging in to Swift");
        let token = self
            .auth
            .login(&self.client.http, &self.creds, self.forwarded_for)
            .await?;
        if let Some(shared) = &self.client.shared_tokens {
            shared.store(&self.material, &token).await;
        }
        Ok(token)
    }

    /// A token from another process's login, when it has time left; else a login.
    /// A token from the shared cache when `usable` takes it, else a new one from the auth service.
    async fn shared_or_login(&self, usable: impl Fn(&Token) -> bool) -> Result<Token, Error> {
        if let Some(shared) = &self.client.shared_tokens
            && let Some(token) = shared.load(&self.material).await
            && usable(&token)
        {
            tracing::debug!(user = %self.creds.display_user(), "using a shared token");
            return Ok(token);
        }
        self.login().await
    }

    /// After a 401: the shared copy is as bad as ours.
    async fn relogin(&self) -> Result<Token, Error> {
        if let Some(shared) = &self.client.shared_tokens {
            shared.forget(&self.material).await;
        }
        self.login().await
    }

    /// A token with time left (renewed first when about to expire). Called before every request, including
    /// every upload, whose streamed body could not be sent again after a 401.
    async fn token(&self) -> Result<Arc<Token>, Error> {
        let unexpired = |t: &Token| !super::token::needs_renewal(t, SystemTime::now());
        self.slot
            .fresh(unexpired, || self.shared_or_login(unexpired))
            .await
    }

    /// The account's storage URL (known once the session has a token, i.e. always after `Client::login`).
    pub fn storage_url(&self) -> Option<Url> {
        self.slot.current().map(|t| t.storage_url.clone())
    }

    /// The account as text, for keys of what is kept per account: its storage URL, empty before a login.
    pub fn account(&self) -> String {
        self.storage_url()
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// Replaces the token (keeping the storage URL), e.g. with one obtained elsewhere. A token that turns out to
    /// be invalid costs one re-login at the next request.
    pub fn set_token(&self, token: Secret) {
        let Some(storage_url) = self.storage_url() else {
            return;
        };
        self.slot.install(Token {
            storage_url,
            token,
            expires_at: None,
            issued_at: SystemTime::now(),
        });
    }

    /// The user this session logged in as, for logs.
    pub fn user(&self) -> String {
        self.creds.display_user()
    }

    /// How long Swift may stay silent: before it starts answering, and between two chunks of a body.
    pub fn idle_timeout(&self) -> Duration {
        self.client.idle
    }

    /// The cluster's limits (`/info`), asked on behalf of this session's client.
    pub async fn info(&self) -> Result<Info, Error> {
        let url = self
            .storage_url()
            .ok_or_else(|| Error::protocol(Op::Info, "the session has no storage URL yet"))?;
        self.client.info(&url, self.forwarded_for).await
    }

    /// A request whose small answer body (a manifest, a bulk-delete report) is read whole, within the answer
    /// timeout; retried like any [`Replay::Retry`] request.
    pub(crate) async fn fetch_small(
        &self,
        op: &Op,
        build: impl FnMut(&reqwest::Client, &Url) -> RequestBuilder,
    ) -> Result<Bytes, Error> {
        let resp = self.send(op, Replay::Retry, build).await?;
        read_body(op, resp, self.client.idle).await
    }

    /// Sends a request built by `build` from the storage URL, with the token and `X-Forwarded-For`.
    /// Non-2xx answers become errors of `op`.
    ///
    /// With [`Replay::Retry`] the request is rebuilt and sent again after a 401 (once, with a new token) and
    /// after transient failures (per `RetryConfig`). With [`Replay::Never`] (a streamed body, consumed by its
    /// first attempt) it is sent once: a 401 still renews the token, for the requests that follow, but fails this
    /// one.
    pub(crate) async fn send(
        &self,
        op: &Op,
        replay: Replay,
        build: impl FnMut(&reqwest::Client, &Url) -> RequestBuilder,
    ) -> Result<Response, Error> {
        let mut build = build;
        let mut relogged = false;
        let mut retries = 0;
        loop {
            let token = self.token().await?;
            let mut req = build(&self.client.http, &token.storage_url)
                .header("X-Auth-Token", token.token.expose());
            if let Some(ip) = self.forwarded_for {
                req = req.header("X-Forwarded-For", ip.to_string());
            }
            let started = std::time::Instant::now();
            let answer = match replay {
                Replay::Retry => tokio::time::timeout(self.client.idle, req.send()).await,
                Replay::RetryPatient => tokio::time::timeout(COPY_WAIT, req.send()).await,
                Replay::Never => Ok(req.send().await),
            };
            super::observe::observed(
                op.name(),
                match &answer {
                    Ok(Ok(resp)) => super::Answer::Status(resp.status().as_u16()),
                    Ok(Err(e)) if e.is_timeout() => super::Answer::Timeout,
                    Ok(Err(_)) => super::Answer::Error,
                    Err(_) => super::Answer::Timeout,
                },
                started.elapsed(),
            );
            let Ok(answer) = answer else {
                let err = Error::timed_out(op.clone());
                if retries < self.client.retry.max_retries {
                    retries += 1;
                    tracing::warn!(error = %err, retry = retries, "retrying Swift request");
                    continue;
                }
                return Err(err);
            };
            let err = match answer {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) if resp.status().as_u16() == 401 && !relogged => {
                    relogged = true;
                    tracing::info!(user = %self.creds.display_user(), "Swift answered 401: logging in again");
                    self.slot.replace(&token, || self.relogin()).await?;
                    if replay != Replay::Never {
                        continue;
                    }
                    Error::from_status(op.clone(), 401)
                }
                Ok(resp) => Error::from_status(op.clone(), resp.status().as_u16()),
                Err(e) => Error::from_transport(op.clone(), e),
            };
            if replay != Replay::Never
                && err.kind() == ErrorKind::Unavailable
                && retries < self.client.retry.max_retries
            {
                let wait = self.client.retry.backoff(retries, fastrand::f64());
                retries += 1;
                tracing::warn!(error = %err, retry = retries, wait_ms = wait.as_millis() as u64, "retrying Swift request");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(err);
        }
    }
}

/// A whole (small) answer body: a listing page, `/info`. Bounded by the answer timeout, so a Swift that sends
/// headers and then stalls cannot hold the command.
pub(super) async fn read_body(op: &Op, resp: Response, idle: Duration) -> Result<Bytes, Error> {
    tokio::time::timeout(idle, resp.bytes())
        .await
        .map_err(|_| Error::timed_out(op.clone()))?
        .map_err(|e| Error::from_transport(op.clone(), e))
}

/// How long a session trusts what it saw of a `<container>_segments` (there or not) before looking again.
///
/// A caller that looks for an object in `<container>_segments` before each upload (the gateway looks for a
/// partial upload's record, `ftp/partial.rs`) almost always finds no segments container at all; asking Swift
/// each time was one of the requests that made a small upload slow. The cost of the shortcut: an object another
/// session writes into a segments container this session saw missing within this time is not seen here until
/// it passes. The same holds for the names under a prefix of a segments container (`Session::may_hold`).
pub const SEGMENTS_SEEN_FOR: Duration = Duration::from_secs(5);

/// What one session saw of segment containers, or of prefixes in them (see [`SEGMENTS_SEEN_FOR`]).
#[derive(Debug)]
pub(super) struct SegmentsSeen<T = bool>(
    std::sync::Mutex<std::collections::HashMap<String, (T, std::time::Instant)>>,
);

impl<T> Default for SegmentsSeen<T> {
    fn default() -> Self {
        Self(Default::default())
    }
}

/// What a session saw under a prefix of a container (`Session::may_hold`).
#[derive(Debug, Clone)]
pub(super) enum Under {
    /// Every name there (a listing of fewer than its limit), as hashes ([`name_hash`]): a session keeps up to
    /// 256 of these sets, and names of up to 1 KiB each would let a user with many containers of records make
    /// each of their sessions hold megabytes. A collision only makes the caller ask for the name.
    Names(Arc<std::collections::HashSet<u64>>),
    /// Too many to keep, or the session wrote there itself: ask for each name.
    Unknown,
}

/// The hash of an object name kept in [`Under::Names`].
pub(super) fn name_hash(name: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    name.hash(&mut hasher);
    hasher.finish()
}

impl<T: Clone> SegmentsSeen<T> {
    /// Containers remembered at most: a session touching more just looks again.
    const MAX: usize = 256;

    pub(super) fn get(&self, container: &str) -> Option<T> {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(container)
            .filter(|(_, at)| at.elapsed() < SEGMENTS_SEEN_FOR)
            .map(|(seen, _)| seen.clone())
    }

    pub(super) fn set(&self, container: &str, seen: T) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if all.len() >= Self::MAX {
            all.retain(|_, (_, at)| at.elapsed() < SEGMENTS_SEEN_FOR);
        }
        if all.len() < Self::MAX {
            all.insert(container.to_owned(), (seen, std::time::Instant::now()));
        }
    }
}
