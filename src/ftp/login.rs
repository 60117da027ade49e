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
    /// This FTP session's id in the logs (8 hex digits).
    pub id: String,
    /// The `session{id user}` span every log line of this session runs in.
    pub span: tracing::Span,
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
    /// Directories this session saw exist a moment ago (`known_dirs.rs`).
    pub(super) known_dirs: super::known_dirs::KnownDirs,
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
    // libunftp logs this in its login line, next to its own trace id: that line ties the two ids together.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (session {})", self.login, self.id)
    }
}

impl UserDetail for SwiftUser {}

/// How long a Swift session waits between the two login steps before it is dropped.
const PENDING_TTL: Duration = Duration::from_secs(60);

/// A session waiting between the two login steps: when it was made, the session, the owner name for `LIST`, its
/// place under the per-user cap.
type Parked = (Instant, Arc<swift::Session>, String, Option<SessionSlot>);

/// Logs FTP users in against Swift.
pub struct SwiftAuthenticator {
    shared: Arc<Shared>,
    auth: AuthMethod,
    scheme: LoginScheme,
    pending: Mutex<HashMap<String, Vec<Parked>>>,
    lockout: Lockout,
    sessions: UserSessions,
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
        }
    }

    /// Counts a refusal of bad credentials against `identity`, then waits before it is answered.
    async fn refused(
        &self,
        login: &str,
        identity: &str,
        ip: std::net::IpAddr,
    ) -> AuthenticationError {
        crate::metrics::login(crate::metrics::Login::Refused);
        if self.lockout.failed(identity, ip) {
            tracing::warn!(user = login, client = %ip, "too many failed logins: this user is locked out from this address for a while");
        }
        tokio::time::sleep(FAILURE_DELAY).await;
        AuthenticationError::BadPassword
    }

    fn park(
        &self,
        login: &str,
        session: Arc<swift::Session>,
        owner: String,
        slot: Option<SessionSlot>,
    ) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        pending.retain(|_, v| {
            v.retain(|(t, _, _, _)| now.duration_since(*t) < PENDING_TTL);
            !v.is_empty()
        });
        pending
            .entry(login.to_owned())
            .or_default()
            .push((now, session, owner, slot));
    }

    fn take(&self, login: &str) -> Option<(Arc<swift::Session>, String, Option<SessionSlot>)> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let list = pending.get_mut(login)?;
        let (_, session, owner, slot) = list.pop()?;
        if list.is_empty() {
            pending.remove(login);
        }
        Some((session, owner, slot))
    }
}

#[async_trait]
impl Authenticator for SwiftAuthenticator {
    async fn authenticate(
        &self,
        username: &str,
        creds: &Credentials,
    ) -> Result<Principal, AuthenticationError> {
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
            tracing::info!(user = username, client = %ip, "login refused: locked out after failed logins");
            crate::metrics::login(crate::metrics::Login::Refused);
            tokio::time::sleep(FAILURE_DELAY).await;
            return Err(AuthenticationError::BadPassword);
        }
        if username.is_empty() || password.is_empty() {
            return Err(self.refused(username, &identity, ip).await);
        }
        let (swift_creds, owner) = match parsed {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::info!(user = username, client = %ip, reason = %e, "login refused");
                return Err(self.refused(username, &identity, ip).await);
            }
        };
        match self
            .shared
            .client
            .login(&self.auth, swift_creds, Some(creds.source_ip))
            .await
        {
            Ok(session) => {
                self.lockout.succeeded(&identity, ip);
                let Some(slot) = self.sessions.acquire(username) else {
                    tracing::warn!(user = username, client = %ip, "login refused: this user has max-sessions-per-user sessions already");
                    crate::metrics::login(crate::metrics::Login::Refused);
                    return Err(AuthenticationError::new("too many sessions of this user"));
                };
                let session = Arc::new(session);
                self.shared.learn_limits(&session).await;
                tracing::info!(user = username, client = %ip, "login accepted by Swift");
                crate::metrics::login(crate::metrics::Login::Ok);
                self.park(username, session, owner_name(&owner), Some(slot));
                Ok(Principal {
                    username: username.to_owned(),
                })
            }
            Err(e) if e.kind() == swift::ErrorKind::Unauthenticated => {
                tracing::info!(user = username, client = %ip, reason = %e, "login refused by the auth service");
                Err(self.refused(username, &identity, ip).await)
            }
            Err(e) => {
                tracing::warn!(user = username, client = %creds.source_ip, error = %e, "login failed");
                crate::metrics::login(crate::metrics::Login::Error);
                Err(AuthenticationError::new(
                    "login failed (the log line before says why)",
                ))
            }
        }
    }

    fn name(&self) -> &str {
        "swift"
    }
}

#[async_trait]
impl UserDetailProvider for SwiftAuthenticator {
    type User = SwiftUser;

    async fn provide_user_detail(
        &self,
        principal: &Principal,
    ) -> Result<SwiftUser, UserDetailError> {
        let (session, owner, slot) = self
            .take(&principal.username)
            .ok_or_else(|| UserDetailError::new("the Swift session of this login has expired"))?;
        let id = format!("{:08x}", fastrand::u32(..));
        let span = tracing::info_span!("session", id = %id, user = %principal.username);
        Ok(SwiftUser {
            slot,
            id,
            span,
            login: principal.username.clone(),
            owner,
            session,
            just_stored: Default::default(),
            opened: Default::default(),
            subdirs: Default::default(),
            known_dirs: Default::default(),
        })
    }
}
