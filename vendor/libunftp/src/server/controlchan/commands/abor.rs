//! The RFC 959 Abort (`ABOR`) command
//
// This command tells the server to abort the previous FTP
// service command and any associated transfer of data. The
// abort command may require "special action", as discussed in
// the Section on FTP Commands, to force recognition by the
// server.  No action is to be taken if the previous command
// has been completed (including data transfer).  The control
// connection is not to be closed by the server, but the data
// connection must be closed.

use crate::server::chancomms::ControlChanMsg;
use crate::server::controlchan::{
    Reply, ReplyCode,
    error::ControlChanError,
    handler::{CommandContext, CommandHandler},
};
use async_trait::async_trait;
use std::sync::Arc;
use unftp_core::auth::UserDetail;
use unftp_core::storage::{Metadata, StorageBackend};

#[derive(Debug)]
pub struct Abor;

#[async_trait]
impl<Storage, User> CommandHandler<Storage, User> for Abor
where
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
    User: UserDetail + 'static,
{
    #[tracing_attributes::instrument]
    async fn handle(&self, args: CommandContext<Storage, User>) -> Result<Reply, ControlChanError> {
        let mut session = args.session.lock().await;
        let logger = args.logger;
        // swiftftp patch: a running transfer is stopped (its reads and writes fail), answers for itself (426), and
        // then ABOR gets its 226 (RFC 959: 426 for the transfer, then 226). 0.24 answered only after the transfer
        // had ended by itself.
        if let Some(running) = session.transfer.current() {
            running.abort.cancel();
            // A transfer whose data connection never came: its command waits in the channel, dropped here.
            let unconnected = session.data_cmd_rx.is_some();
            if unconnected {
                session.data_cmd_tx = None;
                session.data_cmd_rx = None;
                session.data_abort_tx = None;
                session.data_abort_rx = None;
            }
            let transfer = Arc::clone(&session.transfer);
            drop(session);
            let control = args.tx_control_chan.clone();
            let done = args.done;
            slog::info!(logger, "ABOR of a running {} {:?}", running.command, running.path);
            tokio::spawn(async move {
                let _done = done;
                transfer.ended().await;
                if unconnected {
                    let reply = Reply::new(ReplyCode::ConnectionClosed, "Transfer aborted");
                    let _ = control.send(ControlChanMsg::CommandChannelReply(reply)).await;
                }
                let reply = Reply::new(ReplyCode::ClosingDataConnection, "Transfer aborted");
                let _ = control.send(ControlChanMsg::CommandChannelReply(reply)).await;
            });
            return Ok(Reply::none());
        }
        match session.data_abort_tx.take() {
            Some(tx) => {
                tokio::spawn(async move {
                    if let Err(err) = tx.send(()).await {
                        slog::warn!(logger, "abort failed: {}", err);
                    }
                });
                Ok(Reply::new(ReplyCode::ClosingDataConnection, "Closed data channel"))
            }
            None => Ok(Reply::new(ReplyCode::ClosingDataConnection, "Data channel already closed")),
        }
    }
}
