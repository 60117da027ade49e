//! The RFC 959 Retrieve (`RETR`) command
//
// This command causes the server-DTP to transfer a copy of the
// file, specified in the pathname, to the server- or user-DTP
// at the other end of the data connection.  The status and
// contents of the file at the server site shall be unaffected.

use crate::{
    auth::UserDetail,
    server::{
        ReplyCode,
        chancomms::{ControlChanMsg, DataChanCmd, DataChanRequest},
        controlchan::{
            Reply,
            command::Command,
            error::ControlChanError,
            handler::{CommandContext, CommandHandler},
        },
    },
    storage::{Metadata, StorageBackend},
};
use async_trait::async_trait;
use std::sync::Arc;

#[derive(Debug)]
pub struct Retr;

#[async_trait]
impl<Storage, User> CommandHandler<Storage, User> for Retr
where
    User: UserDetail + 'static,
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
{
    #[tracing_attributes::instrument]
    async fn handle(&self, args: CommandContext<Storage, User>) -> Result<Reply, ControlChanError> {
        let mut session = args.session.lock().await;
        let (cmd, path): (DataChanCmd, String) = match args.parsed_command.clone() {
            Command::Retr { path } => {
                let path_clone = path.clone();
                (DataChanCmd::Retr { path }, path_clone)
            }
            _ => panic!("Programmer error, expected command to be RETR"),
        };

        let logger = args.logger;
        match session.data_cmd_tx.take() {
            Some(tx) => {
                // swiftftp patch: the file is opened before the 150, so that a RETR that cannot start gets its
                // error alone (0.24 answered 150, then 550). Dropping `tx` unsent closes the data connection.
                // The offset is the one the data channel will take.
                let user = session.user.clone();
                let storage = Arc::clone(&session.storage);
                let full_path = session.cwd.join(&path);
                let start_pos = session.start_pos;
                let transfer = Arc::clone(&session.transfer);
                let control = args.tx_control_chan.clone();
                let session_arc = Arc::clone(&args.session);
                let done = args.done;
                tokio::spawn(async move {
                    let _done = done;
                    let Some(user) = (*user).as_ref() else {
                        return;
                    };
                    let msg = match storage.prepare_get(user, &full_path, start_pos).await {
                        Ok(()) => ControlChanMsg::CommandChannelReply(Reply::new(ReplyCode::FileStatusOkay, "Sending data")),
                        Err(err) => {
                            slog::debug!(logger, "RETR: could not open {:?}: {}", full_path, err);
                            // The REST offset was for this transfer (the data channel, never told, cannot take it).
                            session_arc.lock().await.start_pos = 0;
                            if let Err(err) = control.send(ControlChanMsg::StorageError(err)).await {
                                slog::warn!(logger, "RETR: could not send the error reply: {}", err);
                            }
                            return;
                        }
                    };
                    // The 150 goes out before the data channel can answer 226.
                    if let Err(err) = control.send(msg).await {
                        slog::warn!(logger, "RETR: could not send the 150 reply: {}", err);
                        return;
                    }
                    // The transfer runs from now (before this command counts as answered), for ABOR, STAT and the
                    // commands that wait for it.
                    let request = DataChanRequest {
                        cmd,
                        transfer: transfer.begin("RETR", path),
                    };
                    if let Err(err) = tx.send(request).await {
                        slog::warn!(logger, "RETR: could not notify data channel to respond with RETR. {}", err);
                        super::passive_common::data_channel_gone(&control, err.0).await;
                    }
                });
                Ok(Reply::none())
            }
            None => {
                slog::warn!(logger, "RETR: no data connection established for RETRing {:?}", path);

                Ok(Reply::new(ReplyCode::CantOpenDataConnection, "No data connection established"))
            }
        }
    }
}
