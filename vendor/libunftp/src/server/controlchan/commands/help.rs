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

#[cfg(test)]
mod tests {
    use super::COMMANDS;
    use crate::server::controlchan::{command::Command, line_parser::parse};

    // swiftftp patch: HELP and the parser cannot drift apart.
    #[test]
    fn help_lists_exactly_the_commands_the_parser_takes() {
        // Every listed command is one the parser knows (an unknown one parses as `Other`).
        for name in COMMANDS {
            let parsed = parse(format!("{name}\r\n"));
            assert!(
                !matches!(parsed, Ok(Command::Other { .. })),
                "HELP lists {name}, which the parser does not take"
            );
        }
        // Every command the parser's match takes is listed, but for the aliases of listed ones.
        let aliases = ["BYE", "XCWD", "XMKD", "XPWD"];
        let source = include_str!("../line_parser/parser.rs");
        for line in source.lines().map(str::trim_start).filter(|l| l.starts_with('"') && l.contains("=>")) {
            let arms = line.split("=>").next().unwrap_or_default();
            for name in arms.split('|').map(|n| n.trim().trim_matches('"')) {
                let is_command = !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
                // AUTH's arguments (TLS, SSL) and MD5's styles are matched the same way; they are listed or aliases.
                if is_command && !["TLS", "SSL"].contains(&name) && !aliases.contains(&name) {
                    assert!(COMMANDS.contains(&name), "the parser takes {name}, which HELP does not list");
                }
            }
        }
    }
}
