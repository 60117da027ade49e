//! FTP login = Swift login: libunftp's `Authenticator` and `UserDetailProvider`, and the [`SwiftUser`] a session
//! carries.
//!
//! libunftp authenticates in two steps that cannot pass a value to each other: `authenticate` sees the password
//! and returns only a name, then `provide_user_detail` gets that name and must return the user. The Swift session
//! made in the first step therefore waits in a small side table keyed by login name, from which the second step
//! (run right after, in the same task) takes it. Entries older than a minute are dropped, so an aborted login
//! leaves nothing behind. Two simultaneous logins of one name both hold valid sessions of that name; which one
//! each connection gets does not matter.
//!
//! Every refusal is `BadPassword`, whether the user exists or not, so the `530` tells nothing. Why a login failed
//! (the auth service's answer, no endpoint in the catalog, the service unreachable, a lockout, the session cap)
//! goes to the log only. Brute force is met here (`limits.rs`): a locked-out user and address pair is refused
//! before the auth service is asked, and every refusal of bad credentials waits [`FAILURE_DELAY`] first.

use super::Shared;
use super::limits::{Lockout, SessionSlot, UserSessions};
use super::listing::owner_name;
use super::login_name::{LoginScheme, parse_login};
use crate::swift::{self, AuthMethod};
use async_trait::async_trait;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::Instrument;
use unftp_core::auth::{
    AuthenticationError, Authenticator, Credentials, Principal, UserDetail, UserDetailError,
    UserDetailProvider,
};

/// How long a refusal of bad credentials (or of a locked-out pair) waits before it is answered: a guesser gets
/// one try per connection per this, while other sessions are not slowed.
pub const FAILURE_DELAY: Duration = Duration::from_millis(1000);

/// A logged-in FTP user: the login as typed, the owner name `LIST` shows, and the Swift session.
pub struct SwiftUser {
    /// Its place under `max-sessions-per-user`, freed when the session ends.
    pub slot: Option<SessionSlot>,
    /// This FTP session's id in the logs (libunftp's trace id, `0x` and 16 hex digits).
    pub id: String,
    /// The `session{id client user}` span every log line of this session runs in.
    pub span: tracing::Span,
    /// The span's registration, for libunftp's lines of this session; ends with the session.
    _registered: crate::logging::Registered,
    /// The login as typed (`account:user`).
    pub login: String,
    /// The user part of the login, as `LIST` shows it for owner and group.
    pub owner: String,
    /// The Swift session all of this user's commands use.
    pub session: Arc<swift::Session>,
    /// The small file this session has just created, for the `MFMT` clients send right after (`mtime.rs`).
    pub(super) just_stored: std::sync::Mutex<Option<super::mtime::JustStored>>,
    /// Which names are directories, as this session last saw them (`subdirs.rs`).
    pub(super) subdirs: super::subdirs::Subdirs,
    /// Directories this user's sessions saw exist a moment ago (`known_dirs.rs`).
    pub(super) known_dirs: Arc<super::known_dirs::KnownDirs>,
    /// The file a `RETR` opened before its `150`, for the transfer that follows (`retrieve.rs`).
    pub(super) opened: super::retrieve::Prepared,
}

impl fmt::Debug for SwiftUser {
    // Hand-written: libunftp's tracing spans Debug-print the user, and the session holds the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwiftUser")
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for SwiftUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (session {})", self.login, self.id)
    }
}

impl UserDetail for SwiftUser {}

/// How long a Swift session waits between the two login steps before it is dropped.
const PENDING_TTL: Duration = Duration::from_secs(60);

/// A session waiting between the two login steps.
struct Parked {
    /// When it was made.
    at: Instant,
    session: Arc<swift::Session>,
    /// The owner name for `LIST`.
    owner: String,
    /// Its place under the per-user cap.
    slot: Option<SessionSlot>,
    /// Its id and span in the logs.
    id: String,
    span: tracing::Span,
}

/// Logs FTP users in against Swift.
pub struct SwiftAuthenticator {
    shared: Arc<Shared>,
    auth: AuthMethod,
    scheme: LoginScheme,
    pending: Mutex<HashMap<String, Vec<Parked>>>,
    lockout: Lockout,
    sessions: UserSessions,
    known_dirs: super::known_dirs::KnownDirsByUser,
}

impl fmt::Debug for SwiftAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwiftAuthenticator").finish_non_exhaustive()
    }
}

impl SwiftAuthenticator {
    /// An authenticator using `auth`, reading login names per `scheme`, with the gateway's shared HTTP client.
    pub fn new(
        shared: Arc<Shared>,
        auth: AuthMethod,
        scheme: LoginScheme,
        lockout: Lockout,
        sessions: UserSessions,
    ) -> Self {
        Self {
            shared,
            auth,
            scheme,
            pending: Mutex::new(HashMap::new()),
            lockout,
            sessions,
            known_dirs: Default::default(),
        }
    }

    /// Counts a refusal of bad credentials against `identity`, then waits before it is answered.
    async fn refused(&self, identity: &str, ip: std::net::IpAddr) -> AuthenticationError {
        crate::metrics::login(crate::metrics::Login::Refused);
        if self.lockout.failed(identity, ip) {
            tracing::warn!(
                "too many failed logins: this user is locked out from this address for a while"
            );
        }
        tokio::time::sleep(FAILURE_DELAY).await;
        AuthenticationError::BadPassword
    }

    fn park(&self, login: &str, parked: Parked) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        pending.retain(|_, v| {
            v.retain(|p| now.duration_since(p.at) < PENDING_TTL);
            !v.is_empty()
        });
        pending.entry(login.to_owned()).or_default().push(parked);
    }

    fn take(&self, login: &str) -> Option<Parked> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let list = pending.get_mut(login)?;
        let parked = list.pop()?;
        if list.is_empty() {
            pending.remove(login);
        }
        Some(parked)
    }
}

#[async_trait]
impl Authenticator for SwiftAuthenticator {
    async fn authenticate(
        &self,
        username: &str,
        creds: &Credentials,
    ) -> Result<Principal, AuthenticationError> {
        // libunftp's id of the connection, so that its lines and ours name one session (a random one where a
        // caller gives none).
        let id = creds
            .session_id
            .clone()
            .unwrap_or_else(|| format!("{:#018x}", fastrand::u64(..)));
        let client = creds
            .source
            .map_or_else(|| creds.source_ip.to_string(), |a| a.to_string());
        let span = crate::logging::session_span(&id, &client);
        span.record("user", tracing::field::display(username));
        let (principal, session) = self
            .log_in(username, creds, &id, &span)
            .instrument(span.clone())
            .await?;
        // Outside the session's span: what it logs is the cluster's, not this session's.
        self.shared.learn_limits(&session).await;
        Ok(principal)
    }

    fn name(&self) -> &str {
        "swift"
    }
}

impl SwiftAuthenticator {
    /// [`Authenticator::authenticate`] inside the session's `span`, which it parks with the Swift session and
    /// the session's `id`; the Swift session is returned too.
    async fn log_in(
        &self,
        username: &str,
        creds: &Credentials,
        id: &str,
        span: &tracing::Span,
    ) -> Result<(Principal, Arc<swift::Session>), AuthenticationError> {
        let password = creds.password.as_deref().unwrap_or("");
        let ip = creds.source_ip;
        let parsed = parse_login(&self.scheme, username, password);
        // Failures count against who logs in, not against the spelling: the login as typed only when it names
        // nobody.
        let identity = match &parsed {
            Ok((swift_creds, _)) => swift_creds.identity(),
            Err(_) => username.to_owned(),
        };
        // One attempt of this identity from this address at a time, held until it is counted and answered (the
        // failure delay included): parallel sessions cannot outrun the lockout.
        let _turn = self.lockout.one_at_a_time(&identity, ip).await;
        if self.lockout.is_locked(&identity, ip) {
            tracing::info!("login refused: locked out after failed logins");
            crate::metrics::login(crate::metrics::Login::Refused);
            tokio::time::sleep(FAILURE_DELAY).await;
            return Err(AuthenticationError::BadPassword);
        }
        if username.is_empty() || password.is_empty() {
            tracing::info!("login refused: no user name or no password");
            return Err(self.refused(&identity, ip).await);
        }
        let (swift_creds, owner) = match parsed {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::info!(reason = %e, "login refused");
                return Err(self.refused(&identity, ip).await);
            }
        };
        match self
            .shared
            .client
            .login(&self.auth, swift_creds, Some(ip))
            .await
        {
            Ok(session) => {
                self.lockout.succeeded(&identity, ip);
                let Some(slot) = self.sessions.acquire(username) else {
                    tracing::warn!(
                        "login refused: this user has max-sessions-per-user sessions already"
                    );
                    crate::metrics::login(crate::metrics::Login::Refused);
                    return Err(AuthenticationError::new("too many sessions of this user"));
                };
                let session = Arc::new(session);
                tracing::info!("logged in");
                crate::metrics::login(crate::metrics::Login::Ok);
                self.park(
                    username,
                    Parked {
                        at: Instant::now(),
                        session: Arc::clone(&session),
                        owner: owner_name(&owner),
                        slot: Some(slot),
                        id: id.to_owned(),
                        span: span.clone(),
                    },
                );
                let principal = Principal {
                    username: username.to_owned(),
                };
                Ok((principal, session))
            }
            Err(e) if e.kind() == swift::ErrorKind::Unauthenticated => {
                tracing::info!(reason = %e, "login refused by the auth service");
                Err(self.refused(&identity, ip).await)
            }
            Err(e) => {
                tracing::warn!(error = %crate::logging::chain(&e), "login failed");
                crate::metrics::login(crate::metrics::Login::Error);
                Err(AuthenticationError::new(
                    "login failed (the log line before says why)",
                ))
            }
        }
    }
}

#[async_trait]
impl UserDetailProvider for SwiftAuthenticator {
    type User = SwiftUser;

    async fn provide_user_detail(
        &self,
        principal: &Principal,
    ) -> Result<SwiftUser, UserDetailError> {
        let Parked {
            session,
            owner,
            slot,
            id,
            span,
            ..
        } = self
            .take(&principal.username)
            .ok_or_else(|| UserDetailError::new("the Swift session of this login has expired"))?;
        let _registered = crate::logging::register(&id, &span);
        let known_dirs = self.known_dirs.of(&session.account(), &principal.username);
        Ok(SwiftUser {
            slot,
            id,
            span,
            _registered,
            login: principal.username.clone(),
            owner,
            session,
            just_stored: Default::default(),
            opened: Default::default(),
            subdirs: Default::default(),
            known_dirs,
        })
    }
}
