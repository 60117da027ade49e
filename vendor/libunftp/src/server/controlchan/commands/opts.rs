//! The RFC 2389 Options (`OPTS`) command
//
// The OPTS (options) command allows a user-PI to specify the desired
// behavior of a server-FTP process when another FTP command (the target
// command) is later issued.  The exact behavior, and syntax, will vary
// with the target command indicated, and will be specified with the
// definition of that command.  Where no OPTS behavior is defined for a
// particular command there are no options available for that command.

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

/// The parameters that can be given to the `OPTS` command, specifying the option the client wants
/// to set.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Opt {
    /// The client wants us to enable UTF-8 encoding for file paths and such.
    Utf8 { on: bool },
    /// `OPTS HASH [algorithm]` (draft-bryan-ftpext-hash): MD5 is the only one there is.
    Hash { algorithm: String },
    /// swiftftp patch: `OPTS MLST fact;fact;...` (RFC 3659 7.9): the facts a client wants in MLSD and MLST lines.
    Mlst { facts: Vec<String> },
}

/// swiftftp patch: the facts MLSD and MLST lines carry.
const MLST_FACTS: [&str; 5] = super::mlst::FACTS;

#[derive(Debug)]
pub struct Opts {
    option: Opt,
}

impl Opts {
    pub fn new(option: Opt) -> Self {
        Opts { option }
    }
}

#[async_trait]
impl<Storage, User> CommandHandler<Storage, User> for Opts
where
    User: UserDetail + 'static,
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
{
    #[tracing_attributes::instrument]
    async fn handle(&self, _args: CommandContext<Storage, User>) -> Result<Reply, ControlChanError> {
        match &self.option {
            Opt::Utf8 { on: true } => Ok(Reply::new(ReplyCode::CommandOkay, "Always in UTF-8 mode.")),
            Opt::Utf8 { on: false } => Ok(Reply::new(ReplyCode::CommandNotImplementedForParameter, "Non UTF-8 mode not supported")),
            Opt::Hash { algorithm } if algorithm.is_empty() || algorithm == "MD5" => Ok(Reply::new(ReplyCode::CommandOkay, "MD5")),
            Opt::Hash { .. } => Ok(Reply::new(ReplyCode::ParameterSyntaxError, "Unknown algorithm, only MD5 is supported")),
            // swiftftp patch: the answer names the requested facts this server has (RFC 3659 7.9); the lines keep
            // all of them, which every client asks for (0.24 answered 501 and node's basic-ftp closed the connection).
            Opt::Mlst { facts } => {
                let selected: String = MLST_FACTS
                    .iter()
                    .filter(|known| facts.iter().any(|f| f.eq_ignore_ascii_case(known)))
                    .map(|known| format!("{known};"))
                    .collect();
                let text = if selected.is_empty() {
                    "MLST OPTS".to_owned()
                } else {
                    format!("MLST OPTS {selected}")
                };
                Ok(Reply::new_with_string(ReplyCode::CommandOkay, text))
            }
        }
    }
}
