//! Contains the `add...metric` functions that are used for gathering metrics.
#![cfg_attr(not(feature = "prometheus"), allow(unused_imports, unused_variables, dead_code))]

use crate::server::{Command, ControlChanError, ControlChanErrorKind, ControlChanMiddleware, ControlChanMsg, Event, Reply, ReplyCode};

use async_trait::async_trait;
use lazy_static::*;
#[cfg(feature = "prometheus")]
use prometheus::{IntCounter, IntCounterVec, opts, register_int_counter, register_int_counter_vec};

// Control channel middleware that adds metrics
pub struct MetricsMiddleware<Next>
where
    Next: ControlChanMiddleware,
{
    pub collect_metrics: bool,
    pub next: Next,
}

#[async_trait]
impl<Next> ControlChanMiddleware for MetricsMiddleware<Next>
where
    Next: ControlChanMiddleware,
{
    async fn handle(&mut self, event: Event) -> Result<Reply, ControlChanError> {
        if self.collect_metrics {
            add_event_metric(&event);
        }
        let (evt_type_label, evt_label) = event_to_labels(&event);
        let result: Result<Reply, ControlChanError> = self.next.handle(event).await;
        if self.collect_metrics {
            match &result {
                Ok(reply) => add_reply_metric(reply, evt_type_label, evt_label),
                Err(e) => add_error_metric(e.kind(), evt_type_label, evt_label),
            }
        }
        result
    }
}

// swiftftp patch: one family, `swiftftp_ftp_*`, following Prometheus naming (counters end in `_total`, units in
// the names, label values from closed sets). The session, backend byte and file counters are gone: swiftftp's own
// `swiftftp_sessions`, `swiftftp_sessions_started_total`, `swiftftp_transfers_total` and
// `swiftftp_transfer_bytes_total` count the same. 0.24's `ftp_sessions_total` was a gauge, `ftp_sessions_count` a
// counter, several counters lacked `_total`, and label values were fragments of Rust Debug output.
#[cfg(feature = "prometheus")]
lazy_static! {
    static ref FTP_AUTH_FAILURES: IntCounter = register_int_counter!(opts!("swiftftp_ftp_auth_failures_total", "Logins refused (PASS answered 530).")).unwrap();
    static ref FTP_COMMAND_TOTAL: IntCounterVec =
        register_int_counter_vec!("swiftftp_ftp_commands_total", "FTP commands received, by command.", &["command"]).unwrap();
    static ref FTP_REPLY_TOTAL: IntCounterVec = register_int_counter_vec!(
        "swiftftp_ftp_replies_total",
        "FTP replies sent, by class (1xx-5xx) and what they answered (a command, or an event of the session).",
        &["class", "event_type", "event"],
    )
    .unwrap();
    static ref FTP_ERROR_TOTAL: IntCounterVec = register_int_counter_vec!(
        "swiftftp_ftp_errors_total",
        "Errors of the FTP control channel, by kind and what caused them.",
        &["kind", "event_type", "event"]
    )
    .unwrap();
    static ref FTP_SENT_BYTES: IntCounterVec = register_int_counter_vec!(
        "swiftftp_ftp_data_sent_bytes_total",
        "Bytes sent on data connections (files and listings), by command.",
        &["command"]
    )
    .unwrap();
    static ref FTP_RECEIVED_BYTES: IntCounterVec = register_int_counter_vec!(
        "swiftftp_ftp_data_received_bytes_total",
        "Bytes received on data connections, by command.",
        &["command"]
    )
    .unwrap();
    static ref FTP_TRANSFERRED_TOTAL: IntCounterVec = register_int_counter_vec!(
        "swiftftp_ftp_data_transfers_total",
        "Data connection transfers (files and listings) attempted, by command and outcome.",
        &["command", "status"]
    )
    .unwrap();
}

/// swiftftp patch: a label value from a closed set: the leading word of a Debug or Display text (an enum
/// variant's name, lower case), never what follows it (paths, names, error details a client could vary).
fn closed_label(text: &str) -> String {
    let word: String = text.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    if word.is_empty() { "unknown".to_owned() } else { word.to_ascii_lowercase() }
}

/// Add a metric for an event.
fn add_event_metric(event: &Event) {
    #[cfg(feature = "prometheus")]
    match event {
        Event::Command(cmd) => {
            add_command_metric(cmd);
        }
        Event::InternalMsg(ControlChanMsg::AuthFailed) => FTP_AUTH_FAILURES.inc(),
        Event::InternalMsg(_) => {}
    }
}

/// Increase the amount of bytes sent (/downloaded/ from client perspective)
pub fn inc_sent_bytes(bytes: usize, command: &'static str) {
    #[cfg(feature = "prometheus")]
    FTP_SENT_BYTES.with_label_values(&[command]).inc_by(bytes.try_into().unwrap());
}

/// Increase the amount of bytes received (/uploaded/ from client perspective)
pub fn inc_received_bytes(bytes: usize, command: &'static str) {
    #[cfg(feature = "prometheus")]
    FTP_RECEIVED_BYTES.with_label_values(&[command]).inc_by(bytes.try_into().unwrap());
}

/// Increase the number of file and directory listing transfer attempts
pub fn inc_transferred(command: &'static str, status: &'static str) {
    #[cfg(feature = "prometheus")]
    FTP_TRANSFERRED_TOTAL.with_label_values(&[command, status]).inc();
}

/// swiftftp patch: sessions are counted by swiftftp (`swiftftp_sessions`, `swiftftp_sessions_started_total`).
pub fn inc_session() {}

/// swiftftp patch: see [`inc_session`].
pub fn dec_session() {}

fn add_command_metric(cmd: &Command) {
    #[cfg(feature = "prometheus")]
    {
        let label = command_to_label(cmd);
        FTP_COMMAND_TOTAL.with_label_values(&[&label]).inc();
    }
}

/// Error during command processing
fn add_error_metric(error: &ControlChanErrorKind, evt_type_label: String, evt_label: String) {
    #[cfg(feature = "prometheus")]
    {
        let label = closed_label(&format!("{error:?}"));
        FTP_ERROR_TOTAL.with_label_values(&[&label, &evt_type_label, &evt_label]).inc();
    }
}

/// Add a metric for an FTP reply.
fn add_reply_metric(reply: &Reply, evt_type_label: String, evt_label: String) {
    match *reply {
        Reply::None => {}
        Reply::CodeAndMsg { code, .. } => add_replycode_metric(code, evt_type_label, evt_label),
        Reply::MultiLine { code, .. } => add_replycode_metric(code, evt_type_label, evt_label),
    }
}

fn add_replycode_metric(code: ReplyCode, evt_type_label: String, evt_label: String) {
    #[cfg(feature = "prometheus")]
    {
        let range = format!("{}xx", code as u32 / 100 % 10);
        FTP_REPLY_TOTAL.with_label_values(&[&range, &evt_type_label, &evt_label]).inc();
    }
}

fn event_to_labels(evt: &Event) -> (String, String) {
    let (evt_type_str, evt_str) = match evt {
        Event::Command(cmd) => ("command".into(), cmd.to_string()),
        Event::InternalMsg(msg) => ("ctrl-chan-msg".into(), msg.to_string()),
    };
    (evt_type_str, closed_label(&evt_str))
}

fn command_to_label(cmd: &Command) -> String {
    closed_label(&cmd.to_string())
}
