use async_trait::async_trait;

use crate::{
    auth::UserDetail,
    server::{
        Command, ControlChanErrorKind, Event, Reply, ReplyCode, controlchan::commands::ProtParam, controlchan::error::ControlChanError,
        controlchan::middleware::ControlChanMiddleware, ftpserver::options::FtpsRequired, session::SharedSession,
    },
    storage::{Metadata, StorageBackend},
};

// Middleware that enforces FTPS on the control channel according to the specified setting/requirement.
pub struct FtpsControlChanEnforcerMiddleware<Storage, User, Next>
where
    User: UserDetail + 'static,
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
    Next: ControlChanMiddleware,
{
    pub session: SharedSession<Storage, User>,
    pub ftps_requirement: FtpsRequired,
    pub next: Next,
}

#[async_trait]
impl<Storage, User, Next> ControlChanMiddleware for FtpsControlChanEnforcerMiddleware<Storage, User, Next>
where
    User: UserDetail + 'static,
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
    Next: ControlChanMiddleware,
{
    async fn handle(&mut self, event: Event) -> Result<Reply, ControlChanError> {
        match (self.ftps_requirement, event) {
            (FtpsRequired::None, event) => self.next.handle(event).await,
            (FtpsRequired::All, event) => match event {
                Event::Command(Command::Ccc) => Ok(Reply::new(ReplyCode::FtpsRequired, "Cannot downgrade connection, TLS enforced.")),
                Event::Command(Command::User { .. }) | Event::Command(Command::Pass { .. }) => {
                    let is_tls = async {
                        let session = self.session.lock().await;
                        session.cmd_tls
                    }
                    .await;
                    match is_tls {
                        true => self.next.handle(event).await,
                        false => Ok(Reply::new(ReplyCode::FtpsRequired, "A TLS connection is required on the control channel")),
                    }
                }
                _ => self.next.handle(event).await,
            },
            (FtpsRequired::Accounts, event) => {
                let (is_tls, username) = async {
                    let session = self.session.lock().await;
                    (session.cmd_tls, session.username.clone())
                }
                .await;
                match (is_tls, event) {
                    (true, event) => self.next.handle(event).await,
                    (false, Event::Command(Command::User { username })) => {
                        if is_anonymous_user(&username[..])? {
                            self.next.handle(Event::Command(Command::User { username })).await
                        } else {
                            Ok(Reply::new(ReplyCode::FtpsRequired, "A TLS connection is required on the control channel"))
                        }
                    }
                    (false, Event::Command(Command::Pass { password })) => {
                        match username {
                            None => {
                                // Should not happen, username should have already been provided.
                                Err(ControlChanError::new(ControlChanErrorKind::IllegalState))
                            }
                            Some(username) => {
                                if is_anonymous_user(username)? {
                                    self.next.handle(Event::Command(Command::Pass { password })).await
                                } else {
                                    Ok(Reply::new(ReplyCode::FtpsRequired, "A TLS connection is required on the control channel"))
                                }
                            }
                        }
                    }
                    (false, event) => self.next.handle(event).await,
                }
            }
        }
    }
}

// Middleware that enforces FTPS on the data channel according to the specified setting/requirement.
pub struct FtpsDataChanEnforcerMiddleware<Storage, User, Next>
where
    User: UserDetail + 'static,
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
    Next: ControlChanMiddleware,
{
    pub session: SharedSession<Storage, User>,
    pub ftps_requirement: FtpsRequired,
    pub next: Next,
}

#[async_trait]
impl<Storage, User, Next> ControlChanMiddleware for FtpsDataChanEnforcerMiddleware<Storage, User, Next>
where
    User: UserDetail + 'static,
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
    Next: ControlChanMiddleware,
{
    // swiftftp patch: 0.24 checked only PASV (not EPSV or PORT), and in Accounts mode looked at the control
    // channel's TLS instead of the data channel's, so `PROT C` + `EPSV` moved data in plaintext. Now `PROT C` is
    // refused where data TLS is required, and so is every command that sets up or uses a data connection
    // unless `PROT P` is in force.
    async fn handle(&mut self, event: Event) -> Result<Reply, ControlChanError> {
        if self.ftps_requirement == FtpsRequired::None || !uses_data_channel(&event) {
            return self.next.handle(event).await;
        }
        let (data_tls, username) = async {
            let session = self.session.lock().await;
            (session.data_tls, session.username.clone())
        }
        .await;
        let required = match self.ftps_requirement {
            FtpsRequired::None => false,
            FtpsRequired::All => true,
            // Before login (no user yet) nothing data-related may happen anyway; anonymous is exempt.
            FtpsRequired::Accounts => match username {
                Some(u) => !is_anonymous_user(u)?,
                None => true,
            },
        };
        match (required, &event) {
            (true, Event::Command(Command::Prot { param: ProtParam::Clear })) => Ok(Reply::new(
                ReplyCode::FtpsRequired,
                "A TLS connection is required on the data channel: PROT C refused",
            )),
            (true, Event::Command(Command::Prot { .. })) => self.next.handle(event).await,
            (true, _) if !data_tls => Ok(Reply::new(
                ReplyCode::FtpsRequired,
                "A TLS connection is required on the data channel: send PROT P first",
            )),
            _ => self.next.handle(event).await,
        }
    }
}

/// The commands that choose the data channel's protection, set up a data connection, or transfer over one.
fn uses_data_channel(event: &Event) -> bool {
    matches!(
        event,
        Event::Command(
            Command::Prot { .. }
                | Command::Pasv
                | Command::Epsv
                | Command::Port { .. }
                | Command::List { .. }
                | Command::Nlst { .. }
                | Command::Mlsd { .. }
                | Command::Retr { .. }
                | Command::Stor { .. }
                | Command::Appe { .. }
                | Command::Stou
        )
    )
}

fn is_anonymous_user(username: impl AsRef<[u8]>) -> Result<bool, std::str::Utf8Error> {
    let username_str = std::str::from_utf8(username.as_ref())?;
    Ok(username_str == "anonymous")
}
