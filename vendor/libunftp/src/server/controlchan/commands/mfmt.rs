//! The `MFMT` command (draft-somers-ftp-mfxx): sets a file's modification time, answered by
//! `StorageBackend::set_modified` when the backend advertises `FEATURE_MFMT`.
//!
//! `MFMT YYYYMMDDHHMMSS[.sss] path` (UTC) gets `213 Modify=<time stored>; path`, `501` for a malformed time,
//! `502` when the backend cannot set times, and the storage error's reply otherwise.

use crate::{
    auth::UserDetail,
    server::{
        chancomms::ControlChanMsg,
        controlchan::{
            Reply, ReplyCode,
            error::ControlChanError,
            handler::{CommandContext, CommandHandler},
        },
    },
    storage::{FEATURE_MFMT, Metadata, StorageBackend},
};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, offset::Utc};
use std::{path::PathBuf, sync::Arc, time::SystemTime};

const RFC3659_TIME: &str = "%Y%m%d%H%M%S";

#[derive(Debug)]
pub struct Mfmt {
    time: String,
    path: PathBuf,
}

impl Mfmt {
    pub fn new(time: String, path: PathBuf) -> Self {
        Mfmt { time, path }
    }
}

/// `YYYYMMDDHHMMSS` with an optional fraction of a second, UTC (RFC 3659 `time-val`).
fn parse_time(text: &str) -> Option<SystemTime> {
    let (whole, fraction) = match text.split_once('.') {
        Some((_, "")) => return None,
        Some(parts) => parts,
        None => (text, ""),
    };
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let time = NaiveDateTime::parse_from_str(whole, RFC3659_TIME).ok()?;
    let mut time = time.and_utc();
    if !fraction.is_empty() {
        let digits = &fraction[..fraction.len().min(9)];
        let nanos: i64 = digits.parse::<i64>().ok()? * 10_i64.pow(9 - digits.len() as u32);
        time += chrono::Duration::nanoseconds(nanos);
    }
    Some(time.into())
}

#[async_trait]
impl<Storage, User> CommandHandler<Storage, User> for Mfmt
where
    User: UserDetail,
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: 'static + Metadata,
{
    #[tracing_attributes::instrument]
    async fn handle(&self, args: CommandContext<Storage, User>) -> Result<Reply, ControlChanError> {
        if args.storage_features & FEATURE_MFMT == 0 {
            return Ok(Reply::new(ReplyCode::CommandNotImplemented, "Not supported by the selected storage back-end."));
        }
        if self.path.as_os_str().is_empty() {
            return Ok(Reply::new(ReplyCode::ParameterSyntaxError, "Usage: MFMT YYYYMMDDHHMMSS[.sss] path"));
        }
        let Some(modified) = parse_time(&self.time) else {
            return Ok(Reply::new(ReplyCode::ParameterSyntaxError, "Invalid time: expected YYYYMMDDHHMMSS[.sss] (UTC)"));
        };
        let session = args.session.lock().await;
        let user = session.user.clone();
        let storage = Arc::clone(&session.storage);
        let path = session.cwd.join(self.path.clone());
        let shown = self.path.display().to_string();
        let tx = args.tx_control_chan.clone();
        let logger = args.logger;

        // swiftftp patch: the session's next command waits until this one is answered.
        let done = args.done;
        tokio::spawn(async move {
            let _done = done;
            let Some(user) = (*user).as_ref() else {
                return;
            };
            let msg = match storage.set_modified(user, &path, modified).await {
                Ok(stored) => {
                    slog::debug!(logger, "MFMT: modification time of {:?} set", path);
                    let time = DateTime::<Utc>::from(stored).format(RFC3659_TIME);
                    ControlChanMsg::CommandChannelReply(Reply::new_with_string(ReplyCode::FileStatus, format!("Modify={time}; {shown}")))
                }
                Err(err) => ControlChanMsg::StorageError(err),
            };
            if let Err(err) = tx.send(msg).await {
                slog::warn!(logger, "MFMT: Could not send internal message: {}", err);
            }
        });
        Ok(Reply::none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_parsed_as_utc() {
        let t = parse_time("20260102030405").unwrap();
        assert_eq!(DateTime::<Utc>::from(t).to_rfc3339(), "2026-01-02T03:04:05+00:00");
        let t = parse_time("20260102030405.25").unwrap();
        assert_eq!(DateTime::<Utc>::from(t).timestamp_subsec_millis(), 250);
        for bad in ["", "2026010203040", "2026010203040x", "20261302030405", "20260102030405.", "20260102030405.x"] {
            assert!(parse_time(bad).is_none(), "{bad}");
        }
    }
}
