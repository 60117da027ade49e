use crate::{
    auth::UserDetail,
    options::SiteCommandContext,
    server::controlchan::{
        Reply, ReplyCode,
        error::ControlChanError,
        handler::{CommandContext, CommandHandler},
    },
    storage::{Metadata, StorageBackend},
};
use async_trait::async_trait;

#[derive(Debug)]
pub struct Site {
    command: String,
    arguments: String,
}

impl Site {
    pub fn new(command: String, arguments: String) -> Self {
        Site { command, arguments }
    }

    /// Narrow a Command context into a SiteCommandContext
    async fn narrow<Storage, User>(&self, context: &CommandContext<Storage, User>) -> SiteCommandContext<Storage, User>
    where
        User: UserDetail,
        Storage: StorageBackend<User> + 'static,
        Storage::Metadata: Metadata,
    {
        let (username, cwd, storage, user) = {
            let session = context.session.lock().await;
            (session.username.clone(), session.cwd.clone(), session.storage.clone(), session.user.clone())
        };
        SiteCommandContext {
            command: self.command.clone(),
            arguments: self.arguments.clone(),
            username,
            cwd,
            storage,
            user,
            logger: context.logger.clone(),
        }
    }
}

#[async_trait]
impl<Storage, User> CommandHandler<Storage, User> for Site
where
    User: UserDetail,
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
{
    #[tracing_attributes::instrument]
    async fn handle(&self, context: CommandContext<Storage, User>) -> Result<Reply, ControlChanError> {
        // swiftftp patch: SITE HELP lists the SITE commands there are (0.24: 502 Unknown SITE command).
        if self.command.eq_ignore_ascii_case("HELP") {
            let mut names: Vec<String> = context.site_handlers.keys().cloned().collect();
            if !matches!(context.sitemd5, crate::options::SiteMd5::None) {
                names.push("MD5".to_string());
            }
            names.sort();
            let text = vec![
                "The following SITE commands are recognized:".to_string(),
                names.join(" "),
                "Help OK.".to_string(),
            ];
            return Ok(Reply::new_multiline(ReplyCode::HelpMessage, text));
        }
        let Some(handler) = context.site_handlers.get(&self.command) else {
            return Ok(Reply::new(ReplyCode::CommandNotImplemented, "Unknown SITE command"));
        };
        let site_context = self.narrow(&context).await;
        Ok(handler.handle(&site_context).await)
    }
}
