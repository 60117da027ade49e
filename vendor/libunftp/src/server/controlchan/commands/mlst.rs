//! The RFC 3659 Machine List Single (`MLST`) command
//
// This command causes a listing to be sent from the server to the user. If the pathname
// specifies a file or directory, the server will return information about the file or
// directory. The information is returned in a machine-readable format.

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
use chrono::{DateTime, Utc};
use std::sync::Arc;

#[derive(Debug)]
pub struct Mlst {
    path: Option<String>,
}

impl Mlst {
    pub fn new(path: Option<String>) -> Self {
        Mlst { path }
    }
}

#[async_trait]
impl<Storage, User> CommandHandler<Storage, User> for Mlst
where
    User: UserDetail + 'static,
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
{
    #[tracing_attributes::instrument]
    async fn handle(&self, args: CommandContext<Storage, User>) -> Result<Reply, ControlChanError> {
        let (user, storage, cwd) = {
            let session = args.session.lock().await;
            (session.user.clone(), Arc::clone(&session.storage), session.cwd.clone())
        };

        // swiftftp patch: a relative path is relative to the current directory (0.24 resolved it from `/`).
        let path = match &self.path {
            Some(p) => cwd.join(p),
            None => cwd,
        };

        let metadata = match storage.metadata((*user).as_ref().unwrap(), &path).await {
            Ok(m) => m,
            Err(e) => {
                return Ok(Reply::CodeAndMsg {
                    code: ReplyCode::FileError,
                    msg: e.to_string(),
                });
            }
        };

        let facts_str = format_facts(&metadata);
        let response = format!(" {} {}", facts_str, path.display());
        Ok(Reply::new_multiline(ReplyCode::FileActionOkay, vec![" Listing", &response, "End"]))
    }
}

/// swiftftp patch: the facts MLSD and MLST lines carry, all shown by default (FEAT lists them with a `*`, and
/// `OPTS MLST` answers those of them a client asks for).
pub const FACTS: [&str; 5] = ["type", "size", "modify", "perm", "UNIX.mode"];

/// swiftftp patch: RFC 3659's `perm` fact from the owner's permission bits: what may be done with the entry.
/// Files: `r` (retrieve) when readable; `a`, `d`, `f`, `w` (append, delete, rename, store) when writable.
/// Directories: `e`, `l` (enter, list) when readable; `c`, `d`, `f`, `m`, `p` (create, delete, rename, make
/// directories, purge) when writable.
fn perm_fact(dir: bool, mode: u32) -> String {
    let (read, write) = (mode & 0o400 != 0, mode & 0o200 != 0);
    let (r, w) = if dir { ("el", "cdfmp") } else { ("r", "adfw") };
    let mut perm = String::new();
    if write {
        perm.push_str(w);
    }
    if read {
        perm.push_str(r);
    }
    let mut letters: Vec<char> = perm.chars().collect();
    letters.sort_unstable();
    letters.into_iter().collect()
}

/// Format metadata into machine-readable facts string
///
/// Returns a semicolon-separated list of facts in the format defined by RFC 3659.
/// Both MLST and MLSD use the same fact format, so this function provides
/// consistent formatting for both commands.
///
/// # Arguments
/// * `metadata` - The file/directory metadata to format
///
/// # Returns
/// A string containing semicolon-separated facts like "type=file;size=1234;modify=20231201120000"
pub fn format_facts<M: Metadata>(metadata: &M) -> String {
    let mut facts = Vec::new();

    facts.push(if metadata.is_dir() { "type=dir" } else { "type=file" }.to_string());

    facts.push(format!("size={}", metadata.len()));

    if let Ok(modified) = metadata.modified() {
        let dt: DateTime<Utc> = modified.into();
        facts.push(format!("modify={}", dt.format("%Y%m%d%H%M%S")));
    }

    // swiftftp patch: `perm` and `UNIX.mode`, from the backend's permission bits (FileZilla's Permissions
    // column, and what node's basic-ftp asks for); 0.24 had neither.
    let mode = metadata.permissions().0 & 0o7777;
    facts.push(format!("perm={}", perm_fact(metadata.is_dir(), mode)));
    facts.push(format!("UNIX.mode={mode:04o}"));

    // Choosing not to implement create, unique, lang, media-type, charset or most of the UNIX.*, MACOS.* etc
    // ones.

    if metadata.uid() > 0 {
        facts.push(format!("unix.uid={}", metadata.uid()));
    }

    if metadata.gid() > 0 {
        facts.push(format!("unix.gid={}", metadata.gid()));
    }

    format!("{};", facts.join(";"))
}

#[cfg(test)]
mod tests {
    use super::perm_fact;

    #[test]
    fn perm_says_what_the_owner_bits_allow() {
        assert_eq!(perm_fact(false, 0o644), "adfrw");
        assert_eq!(perm_fact(false, 0o444), "r");
        assert_eq!(perm_fact(false, 0o200), "adfw");
        assert_eq!(perm_fact(true, 0o755), "cdeflmp");
        assert_eq!(perm_fact(true, 0o555), "el");
        assert_eq!(perm_fact(true, 0o000), "");
    }
}
