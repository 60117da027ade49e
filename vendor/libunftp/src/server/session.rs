//! The session module implements per-connection session handling and currently also
//! implements the handling for the *data* channel.

use super::{chancomms::ControlChanMsg, tls::FtpsConfig};
use crate::metrics;
use crate::server::chancomms::DataChanRequest;
use crate::server::failed_logins::FailedLoginsCache;
use crate::server::switchboard::SocketAddrPair;
use crate::server::switchboard::SwitchboardKey;
use std::{
    fmt::{Debug, Formatter},
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
};
use tokio::sync::mpsc::{Receiver, Sender};
use unftp_core::auth::UserDetail;
use unftp_core::storage::{Metadata, StorageBackend};

// TraceId is an identifier used to correlate logs statements together.
/// swiftftp patch: `path` with `.`, `..` and repeated or trailing slashes resolved, never above `/`: the
/// directory PWD shows and MKD's reply names (0.24 kept the text as typed: `CWD ../..` gave `"/c/sub/../.."`).
pub(crate) fn normalized(path: &std::path::Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(name) => out.push(name),
            _ => {}
        }
    }
    out
}

/// swiftftp patch: a path as RFC 959 quotes it in a 257 reply: in double quotes, each quote inside doubled.
pub(crate) fn quoted(path: &std::path::Path) -> String {
    format!("\"{}\"", path.to_string_lossy().replace('"', "\"\""))
}

/// swiftftp patch: whether the control loop has read a `QUIT`. The loop reads each command holding this lock and
/// sets the flag before it lets go, so a look at the control connection made under the lock (an upload's client
/// check) finds a `QUIT` either still in the socket or in the flag: never in neither, as when the check ran after
/// the loop had taken the bytes from the socket and before it had set the flag.
pub type QuitReceived = Arc<std::sync::Mutex<bool>>;

#[derive(PartialEq, Eq, Copy, Clone)]
pub struct TraceId(u64);

impl TraceId {
    pub fn new() -> Self {
        let mut id = [0; 8];
        // For now keep it simple. Later we may need something more sophisticated
        getrandom::fill(&mut id).expect("Error generating random TraceId");

        TraceId(u64::from_ne_bytes(id))
    }
}

impl std::fmt::Display for TraceId {
    fn fmt(&self, f: &mut Formatter) -> std::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl std::fmt::Debug for TraceId {
    fn fmt(&self, f: &mut Formatter) -> std::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

#[derive(PartialEq, Eq, Debug, Clone, Copy)]
pub enum SessionState {
    New,
    WaitPass,
    // swiftftp patch: a PASS is being checked. Nothing else may start a login until its answer is in (a burst
    // of pipelined PASS lines would otherwise each run their own check, past lockout and failure delay).
    Authenticating,
    WaitCmd,
}

// The session shared via an asynchronous lock
pub type SharedSession<S, U> = Arc<tokio::sync::Mutex<Session<S, U>>>;

// This is where we keep the state for an ftp session.
#[derive(Debug)]
pub struct Session<Storage, User>
where
    Storage: StorageBackend<User>,
    Storage::Metadata: Metadata,
    User: UserDetail,
{
    // I guess this can be called session_id but for now we only use it to have traceability in our
    // logs. Rename it if you use it for more than than but then also make sure the TraceId
    // implementation makes sense.
    pub trace_id: TraceId,
    // This is extra information about a user like account details.
    pub user: Arc<Option<User>>,
    // The username used to log in. None if not logged in.
    pub username: Option<String>,
    // The storage back-end instance.
    pub storage: Arc<Storage>,
    // The control loop uses this to send commands to the data loop
    pub data_cmd_tx: Option<Sender<DataChanRequest>>,
    // The data loop uses this receive messages from the control loop
    pub data_cmd_rx: Option<Receiver<DataChanRequest>>,
    /// swiftftp patch: counts passive set-ups, so that a data port's timeout only touches its own channels.
    pub passive_generation: u64,
    /// swiftftp patch: held while the latest `PASV`/`EPSV` listener waits for its connection; replacing or
    /// dropping it closes that listener (a new `PASV`, `EPSV` or `PORT` supersedes it).
    pub passive_listening: Option<tokio::sync::oneshot::Sender<()>>,
    /// swiftftp patch: how long a data connection may go without moving a byte (or wait for its command) before
    /// it is aborted; the control connection's idle timeout.
    pub data_stall_timeout: std::time::Duration,
    /// swiftftp patch: who a passive data connection comes from behind a load balancer (`ServerBuilder::data_peer`).
    pub data_peer: Option<std::sync::Arc<dyn crate::options::DataPeer>>,
    // The control loop uses this to ask the data loop to exit.
    pub data_abort_tx: Option<Sender<()>>,
    // The data loop listens to this so it can know when to exit.
    pub data_abort_rx: Option<Receiver<()>>,
    // This may not be needed here...
    pub control_msg_tx: Option<Sender<ControlChanMsg>>,
    // The socket address of the client on the control channel
    pub source: SocketAddr,
    // The control connection over the proxy protocol
    pub(crate) control_connection: Option<SocketAddrPair>,
    // Points to the key of the active data connection
    pub(crate) switchboard_active_datachan: Option<SwitchboardKey>,
    // Current working directory
    pub cwd: std::path::PathBuf,
    // After a RNFR command this will hold the source path used by the RNTO command.
    pub rename_from: Option<PathBuf>,
    // This may need some work...
    pub state: SessionState,
    // Tells if FTPS/TLS security is available to the session or not. The variables cmd_tls and
    // data_tls tells if the channels are actually encrypted or not.
    pub ftps_config: FtpsConfig,
    // True if the command channel is in secure mode at the moment. Changed by AUTH and CCC commands.
    pub cmd_tls: bool,
    // True if the data channel is in secure mode at the moment. Changed by the PROT command.
    pub data_tls: bool,
    // True if metrics for prometheus are updated.
    pub collect_metrics: bool,
    // The starting byte for a STOR or RETR command. Set by the _Restart of Interrupted Transfer (REST)_
    // command to support resume functionality.
    pub start_pos: u64,
    // swiftftp patch: a duplicate of the control connection's socket, only ever peeked at: an upload whose data
    // connection ends while the control connection is closed was abandoned by its client, not finished.
    pub control_peek: Option<Arc<std::net::TcpStream>>,
    // swiftftp patch: set when the control loop reads QUIT: a client that says goodbye after its data (without
    // waiting for the transfer's reply) finished its upload, even if it then closes the connection.
    pub quit_received: QuitReceived,
    // Tells if the data loop is running. The control channel need to know if the data channel is
    // busy so that it doesn't time out while the session is still in progress.
    pub data_busy: bool,
    // The client certificate chain if it was received.
    pub cert_chain: Option<Vec<unftp_core::auth::ClientCert>>,
    // The failed logins cache can monitor successive failed logins and apply a policy to deter brute force attacks.
    pub failed_logins: Option<Arc<FailedLoginsCache>>,
    // An optional functor that can bind a socket
    pub binder: Option<Box<dyn crate::options::Binder>>,
    /// swiftftp patch: the transfer running, shared outside this lock (`transfer.rs`).
    pub transfer: Arc<crate::server::transfer::TransferState>,
}

impl<Storage, User> Session<Storage, User>
where
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
    User: UserDetail + 'static,
{
    pub(super) fn new(storage: Arc<Storage>, source: SocketAddr) -> Self {
        Session {
            trace_id: TraceId::new(),
            user: Arc::new(None),
            username: None,
            storage,
            data_cmd_tx: None,
            data_cmd_rx: None,
            passive_generation: 0,
            passive_listening: None,
            data_stall_timeout: std::time::Duration::from_secs(5 * 60),
            data_peer: None,
            data_abort_tx: None,
            data_abort_rx: None,
            control_msg_tx: None,
            source,
            control_connection: None,
            switchboard_active_datachan: None,
            cwd: "/".into(),
            rename_from: None,
            state: SessionState::New,
            ftps_config: FtpsConfig::Off,
            cmd_tls: false,
            data_tls: false,
            collect_metrics: false,
            start_pos: 0,
            control_peek: None,
            quit_received: Arc::default(),
            data_busy: false,
            cert_chain: None,
            failed_logins: None,
            binder: None,
            transfer: Arc::default(),
        }
    }

    pub fn ftps(mut self, mode: FtpsConfig) -> Self {
        self.ftps_config = mode;
        self
    }

    pub fn metrics(mut self, collect_metrics: bool) -> Self {
        if collect_metrics {
            metrics::inc_session();
        }
        self.collect_metrics = collect_metrics;
        self
    }

    pub fn binder(mut self, binder: Box<dyn crate::options::Binder>) -> Self {
        self.binder = Some(binder);
        self
    }

    pub fn control_msg_tx(mut self, sender: Sender<ControlChanMsg>) -> Self {
        self.control_msg_tx = Some(sender);
        self
    }

    // control_connection provides the switchboard with connection info to allocate a passive port
    pub(crate) fn control_connection(mut self, conn: Option<SocketAddrPair>) -> Self {
        self.control_connection = conn;
        self
    }

    pub fn failed_logins(mut self, failed_logins: Option<Arc<FailedLoginsCache>>) -> Self {
        self.failed_logins = failed_logins;
        self
    }
}

impl<Storage, User> Drop for Session<Storage, User>
where
    Storage: StorageBackend<User>,
    Storage::Metadata: Metadata,
    User: UserDetail,
{
    fn drop(&mut self) {
        if self.collect_metrics {
            // Decrease the sessions metrics gauge when the session goes out of scope.
            metrics::dec_session();
        }
    }
}

#[cfg(test)]
mod path_tests {
    use super::{normalized, quoted};
    use std::path::Path;

    #[test]
    fn paths_are_normalised_and_quoted_as_rfc_959_wants() {
        for (typed, want) in [
            ("/c/sub/../../..", "/"),
            ("/c//sub/", "/c/sub"),
            ("/c/./sub", "/c/sub"),
            ("/", "/"),
            ("/..", "/"),
        ] {
            assert_eq!(normalized(Path::new(typed)), Path::new(want), "{typed}");
        }
        assert_eq!(quoted(Path::new("/c/q\"d")), "\"/c/q\"\"d\"");
    }
}
