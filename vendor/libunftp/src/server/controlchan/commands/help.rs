//! The `HELP` command
//
// A HELP request asks for human-readable information from the server. The server may accept this request with code 211 or 214, or reject it with code 502.
//
// A HELP request may include a parameter. The meaning of the parameter is defined by the server. Some servers interpret the parameter as an FTP verb,
// and respond by briefly explaining the syntax of the verb.

use crate::{
    auth::UserDetail,
    server::controlchan::{
        Reply, ReplyCode,
        error::ControlChanError,
        handler::{CommandContext, CommandHandler},
    },
    storage::{Metadata, StorageBackend},
};
use async_trait::async_trait;

/// swiftftp patch: every command the parser takes, for HELP.
const COMMANDS: [&str; 46] = [
    "ABOR", "ACCT", "ALLO", "APPE", "AUTH", "CCC", "CDUP", "CWD", "DELE", "EPSV", "FEAT", "HASH", "HELP", "LIST", "MD5", "MDTM", "MFMT", "MKD", "MLSD", "MLST",
    "MODE", "NLST", "NOOP", "OPTS", "PASS", "PASV", "PBSZ", "PORT", "PROT", "PWD", "QUIT", "REST", "RETR", "RMD", "RNFR", "RNTO", "SITE", "SIZE", "STAT",
    "STOR", "STOU", "STRU", "SYST", "TYPE", "USER", "XMD5",
];

#[derive(Debug)]
pub struct Help;

#[async_trait]
impl<Storage, User> CommandHandler<Storage, User> for Help
where
    User: UserDetail + 'static,
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
{
    #[tracing_attributes::instrument]
    async fn handle(&self, _args: CommandContext<Storage, User>) -> Result<Reply, ControlChanError> {
        // swiftftp patch: the commands this server recognises (RFC 959), not another product's name and docs.
        let mut text = vec!["The following commands are recognized:".to_string()];
        text.extend(COMMANDS.chunks(10).map(|line| line.join(" ")));
        text.push("SITE HELP lists the SITE commands.".to_string());
        text.push("Help OK.".to_string());
        Ok(Reply::new_multiline(ReplyCode::HelpMessage, text))
    }
}
