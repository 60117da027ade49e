use crate::{
    auth::UserDetail,
    server::{
        chancomms::ControlChanMsg,
        controlchan::{
            Reply, ReplyCode,
            command::Md5Style,
            error::ControlChanError,
            handler::{CommandContext, CommandHandler},
        },
        ftpserver::options::SiteMd5,
    },
    storage::{FEATURE_SITEMD5, Metadata, StorageBackend},
};
use async_trait::async_trait;
use std::{path::PathBuf, sync::Arc};
use tokio::sync::mpsc::Sender;

#[derive(Debug)]
pub struct Md5 {
    path: PathBuf,
    style: Md5Style,
}

impl Md5 {
    pub fn new(path: PathBuf, style: Md5Style) -> Self {
        Md5 { path, style }
    }
}

#[async_trait]
impl<Storage, User> CommandHandler<Storage, User> for Md5
where
    User: UserDetail,
    Storage: StorageBackend<User> + 'static,
{
    #[tracing_attributes::instrument]
    async fn handle(&self, args: CommandContext<Storage, User>) -> Result<Reply, ControlChanError> {
        let session = args.session.lock().await;
        let user = session.user.clone();
        let storage = Arc::clone(&session.storage);
        let path = session.cwd.join(self.path.clone());
        let tx_success: Sender<ControlChanMsg> = args.tx_control_chan.clone();
        let tx_fail: Sender<ControlChanMsg> = args.tx_control_chan.clone();
        let logger = args.logger;
        let style = self.style;
        // The path as the client gave it, for the replies that echo it.
        let asked = self.path.display().to_string();

        match args.sitemd5 {
            SiteMd5::All => {}
            SiteMd5::Accounts => match &session.username {
                Some(u) => {
                    if u == "anonymous" || u == "ftp" {
                        return Ok(Reply::new(ReplyCode::CommandNotImplemented, "Command is not available."));
                    }
                }
                None => {
                    slog::error!(logger, "NoneError for username. This shouldn't happen.");
                    return Ok(Reply::new(ReplyCode::NotLoggedIn, "Please open a new connection to re-authenticate"));
                }
            },
            SiteMd5::None => {
                return Ok(Reply::new(ReplyCode::CommandNotImplemented, "Command is not available."));
            }
        }
        if args.storage_features & FEATURE_SITEMD5 == 0 {
            return Ok(Reply::new(ReplyCode::CommandNotImplemented, "Not supported by the selected storage back-end."));
        }

        // swiftftp patch: the session's next command waits until this one is answered.
        let done = args.done;
        tokio::spawn(async move {
            let _done = done;
            let Some(user) = (*user).as_ref() else {
                slog::error!(logger, "MD5: no user in a logged-in session");
                return;
            };
            // HASH names the byte range it covers: the whole file.
            let size = match style {
                Md5Style::Hash => storage.metadata(user, &path).await.map(|m| Some(m.len())),
                _ => Ok(None),
            };
            let result = match size {
                Ok(size) => storage.md5(user, &path).await.map(|md5| (md5, size)),
                Err(e) => Err(e),
            };
            match result {
                Ok((md5, size)) => {
                    let reply = match style {
                        Md5Style::Site => Reply::new_with_string(ReplyCode::FileStatus, format!("{}    {}", md5, path.as_path().display())),
                        // swiftftp patch: the path in quotes (as ftp-cloudfs answered), so that a name with spaces
                        // stays unambiguous.
                        Md5Style::Md5 => Reply::new_with_string(
                            ReplyCode::FileChecksum,
                            format!("{} {}", crate::server::session::quoted(std::path::Path::new(&asked)), md5.to_ascii_uppercase()),
                        ),
                        Md5Style::Xmd5 => Reply::new_with_string(ReplyCode::FileActionOkay, md5),
                        Md5Style::Hash => Reply::new_with_string(ReplyCode::FileStatus, format!("MD5 0-{} {} {}", size.unwrap_or(0), md5, asked)),
                    };
                    if let Err(err) = tx_success.send(ControlChanMsg::CommandChannelReply(reply)).await {
                        slog::warn!(logger, "MD5: Could not send internal message to notify of MD5 success: {}", err);
                    }
                }
                Err(err) => {
                    slog::debug!(logger, "MD5: Failed to retrieve MD5 sum for {:?} from backend: {}", path, err);
                    if let Err(err) = tx_fail.send(ControlChanMsg::StorageError(err)).await {
                        slog::warn!(logger, "MD5: Could not send internal message to notify of MD5 failure: {}", err);
                    }
                }
            }
        });
        Ok(Reply::none())
    }
}
