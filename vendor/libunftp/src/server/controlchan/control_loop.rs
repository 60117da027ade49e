use crate::server::switchboard::SocketAddrPair;
use crate::{
    auth::{AuthenticationPipeline, UserDetail},
    metrics::MetricsMiddleware,
    notification::{DataListener, PresenceListener},
    options::ActivePassiveMode,
    server::{
        Event, Session, SessionState,
        chancomms::{ControlChanMsg, SwitchboardMessage, SwitchboardSender},
        controlchan::{
            Reply, ReplyCode,
            active_passive::ActivePassiveEnforcerMiddleware,
            auth::AuthMiddleware,
            codecs::FtpCodec,
            command::Command,
            commands::{self, AuthParam},
            error::ControlChanError,
            error::ControlChanErrorKind,
            ftps::{FtpsControlChanEnforcerMiddleware, FtpsDataChanEnforcerMiddleware},
            handler::{CommandContext, CommandDone, CommandHandler},
            log::LoggingMiddleware,
            middleware::ControlChanMiddleware,
            notify::EventDispatcherMiddleware,
        },
        failed_logins::FailedLoginsCache,
        ftpserver::options::{FtpsRequired, PassiveHost, SiteCommandHandler, SiteMd5},
        session::SharedSession,
        shutdown,
        tls::FtpsConfig,
    },
    storage::{Metadata, StorageBackend},
};
use async_trait::async_trait;
use futures_util::{SinkExt, StreamExt};
use rustls::ServerConnection;
use std::{collections::HashMap, net::SocketAddr, ops::RangeInclusive, sync::Arc, time::Duration};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    sync::{
        Mutex,
        mpsc::{Receiver, Sender, channel},
    },
    task::JoinHandle,
};
use tokio_util::codec::{Decoder, Framed};

trait AsyncReadAsyncWriteSendUnpin: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncReadAsyncWriteSendUnpin for T {}

#[derive(Debug, Clone)]
pub struct Config<Storage, User>
where
    Storage: StorageBackend<User>,
    User: UserDetail,
{
    pub storage: Storage,
    pub greeting: &'static str,
    pub auth_pipeline: Arc<AuthenticationPipeline<User>>,
    pub passive_ports: RangeInclusive<u16>,
    pub passive_host: PassiveHost,
    pub ftps_config: FtpsConfig,
    pub collect_metrics: bool,
    pub idle_session_timeout: Duration,
    pub logger: slog::Logger,
    pub ftps_required_control_chan: FtpsRequired,
    pub ftps_required_data_chan: FtpsRequired,
    pub site_md5: SiteMd5,
    pub permit_foreign_addresses: bool,
    /// swiftftp patch: see `ServerBuilder::login_timeout`.
    pub login_timeout: Option<Duration>,
    /// swiftftp patch: see `ServerBuilder::data_peer`.
    pub data_peer: Option<Arc<dyn crate::options::DataPeer>>,
    pub site_handlers: Arc<HashMap<String, Arc<dyn SiteCommandHandler<Storage, User>>>>,
    pub data_listener: Arc<dyn DataListener>,
    pub presence_listener: Arc<dyn PresenceListener>,
    pub active_passive_mode: ActivePassiveMode,
    pub binder: Arc<std::sync::Mutex<Option<Box<dyn crate::options::Binder>>>>,
}

/// Does TCP processing when an FTP client connects
#[tracing_attributes::instrument]
pub(crate) async fn spawn<Storage, User>(
    config: Config<Storage, User>,
    tcp_stream: TcpStream,
    control_connection: Option<SocketAddrPair>,
    switchboard_msg_tx: Option<SwitchboardSender<Storage, User>>,
    shutdown: shutdown::Listener,
    failed_logins: Option<Arc<FailedLoginsCache>>,
) -> Result<JoinHandle<()>, ControlChanError>
where
    User: UserDetail + 'static,
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
{
    spawn_for_client(config, tcp_stream, None, control_connection, switchboard_msg_tx, shutdown, failed_logins, false).await
}

/// swiftftp patch: [`spawn`] for a connection whose client is `client` rather than the socket's peer (the address a
/// PROXY protocol header named, the socket's peer being the load balancer): the session's source, which the
/// authenticator sees and data connections must come from.
#[allow(clippy::too_many_arguments)] // swiftftp patch: `implicit_tls` is the eighth
pub(crate) async fn spawn_for_client<Storage, User>(
    config: Config<Storage, User>,
    tcp_stream: TcpStream,
    client: Option<SocketAddr>,
    control_connection: Option<SocketAddrPair>,
    switchboard_msg_tx: Option<SwitchboardSender<Storage, User>>,
    mut shutdown: shutdown::Listener,
    failed_logins: Option<Arc<FailedLoginsCache>>,
    implicit_tls: bool,
) -> Result<JoinHandle<()>, ControlChanError>
where
    User: UserDetail + 'static,
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
{
    let Config {
        storage,
        auth_pipeline,
        passive_ports,
        passive_host,
        ftps_config,
        ftps_required_control_chan,
        ftps_required_data_chan,
        collect_metrics,
        idle_session_timeout,
        logger,
        site_md5: sitemd5,
        permit_foreign_addresses,
        login_timeout,
        data_peer,
        site_handlers,
        data_listener,
        presence_listener,
        active_passive_mode,
        binder,
        ..
    } = config;

    let tls_configured = matches!(ftps_config, FtpsConfig::On { .. });
    // swiftftp patch: implicit FTPS (TLS from the first byte) requires TLS on the data connections too.
    let (ftps_required_control_chan, ftps_required_data_chan) = match implicit_tls {
        true => (FtpsRequired::All, FtpsRequired::All),
        false => (ftps_required_control_chan, ftps_required_data_chan),
    };
    let storage_features = storage.supported_features();
    // swiftftp patch: room for every message that can be outstanding at once (a transfer's replies and one
    // command's; one command runs at a time). With 0.24's capacity of 1, a CWD, RMD or RNTO (answered through this
    // channel from inside the loop, the channel's only reader) blocked for ever when a transfer's 226 had just
    // filled it: the session, its connection slot and its lock were never freed.
    let (control_msg_tx, mut control_msg_rx): (Sender<ControlChanMsg>, Receiver<ControlChanMsg>) = channel(16);
    let local_addr = tcp_stream.local_addr()?;
    let source = match client {
        Some(client) => client,
        None => tcp_stream.peer_addr()?,
    };
    // A duplicate of the socket (same connection, same non-blocking mode), peeked at by uploads at their end.
    let control_peek = {
        use std::os::fd::AsFd;
        tcp_stream.as_fd().try_clone_to_owned().ok().map(|fd| Arc::new(std::net::TcpStream::from(fd)))
    };
    let mut session: Session<Storage, User> = Session::new(Arc::new(storage), source)
        .ftps(ftps_config.clone())
        .metrics(collect_metrics)
        .control_msg_tx(control_msg_tx.clone())
        .control_connection(control_connection)
        .failed_logins(failed_logins);
    if let Some(b) = binder.lock().unwrap().take() {
        session = session.binder(b);
    }
    session.control_peek = control_peek.clone();
    session.data_stall_timeout = idle_session_timeout;
    session.data_peer = data_peer;
    let quit_received = Arc::clone(&session.quit_received);

    let mut logger = logger.new(
        slog::o!("trace-id" => format!("{}", session.trace_id), "source" => format!("{}", session.control_connection.map(|p| p.source).unwrap_or(session.source))),
    );

    let shared_session: SharedSession<Storage, User> = Arc::new(Mutex::new(session));
    let answering: AnsweringSlot = Arc::new(std::sync::Mutex::new(None));

    let event_chain = PrimaryEventHandler {
        answering: Arc::clone(&answering),
        logger: logger.clone(),
        session: shared_session.clone(),
        auth_pipeline: auth_pipeline.clone(),
        tls_configured,
        passive_ports,
        passive_host,
        tx_control_chan: control_msg_tx,
        local_addr,
        storage_features,
        tx_proxy_loop: switchboard_msg_tx.clone(),
        sitemd5,
        permit_foreign_addresses,
        site_handlers,
    };

    let event_chain = EventDispatcherMiddleware::new(data_listener, presence_listener, event_chain);

    let event_chain = ActivePassiveEnforcerMiddleware {
        mode: active_passive_mode,
        next: event_chain,
    };

    let event_chain = AuthMiddleware {
        session: shared_session.clone(),
        next: event_chain,
    };

    let event_chain = FtpsControlChanEnforcerMiddleware {
        session: shared_session.clone(),
        ftps_requirement: ftps_required_control_chan,
        next: event_chain,
    };

    let event_chain = FtpsDataChanEnforcerMiddleware {
        session: shared_session.clone(),
        ftps_requirement: ftps_required_data_chan,
        next: event_chain,
    };

    let event_chain = LoggingMiddleware {
        logger: logger.clone(),
        sequence_nr: 0,
        next: event_chain,
    };

    let mut event_chain = MetricsMiddleware {
        collect_metrics,
        next: event_chain,
    };

    // swiftftp patch: implicit FTPS: the TLS handshake comes first, before the greeting, within the same time
    // limit as AUTH TLS's; the session is then as after AUTH TLS and PROT P (its data protected by default).
    let tcp_stream = super::urgent::ControlStream::new(tcp_stream);
    let io: Box<dyn AsyncReadAsyncWriteSendUnpin> = match implicit_tls {
        false => Box::new(tcp_stream),
        true => {
            let acceptor: tokio_rustls::TlsAcceptor = match ftps_config.clone() {
                FtpsConfig::On { tls_config } => tls_config.into(),
                _ => return Err(ControlChanError::new(ControlChanErrorKind::InternalServerError)),
            };
            let stream = match tokio::time::timeout(crate::server::tls::TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp_stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => return Err(err.into()),
                Err(_) => return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the TLS handshake did not finish in time").into()),
            };
            {
                let mut session = shared_session.lock().await;
                session.cmd_tls = true;
                session.data_tls = true;
                if let Some(certs) = stream.get_ref().1.peer_certificates() {
                    session.cert_chain = Some(certs.iter().map(|c| unftp_core::auth::ClientCert(c.as_ref().to_vec())).collect());
                }
            }
            Box::new(stream)
        }
    };
    let codec = FtpCodec::new();
    let cmd_and_reply_stream: Framed<Box<dyn AsyncReadAsyncWriteSendUnpin>, FtpCodec> = codec.framed(io);
    let (mut reply_sink, mut command_source) = cmd_and_reply_stream.split();

    reply_sink.send(Reply::new(ReplyCode::ServiceReady, config.greeting)).await?;
    reply_sink.flush().await?;

    let jh = tokio::spawn(async move {
        // swiftftp patch: the duplicate of the socket would keep the connection open after this loop ends; the
        // connection ends with the loop.
        struct ShutdownOnDrop(Option<Arc<std::net::TcpStream>>);
        impl Drop for ShutdownOnDrop {
            fn drop(&mut self) {
                if let Some(socket) = &self.0 {
                    let _ = socket.shutdown(std::net::Shutdown::Both);
                }
            }
        }
        let _connection = ShutdownOnDrop(control_peek);
        // The control channel event loop
        slog::info!(logger, "control connection opened");
        // swiftftp patch: the command being answered by a task of its own; until it is done, no further command is
        // read (what the client pipelined waits in the socket and its buffer), so a session asks the backend one
        // thing at a time. 0.24 read on and spawned a task per command: 3,000 pipelined STATs meant 3,000
        // concurrent listings.
        let mut answering_now: Option<tokio::sync::oneshot::Receiver<()>> = None;
        // swiftftp patch: a command read while a transfer runs, other than ABOR, STAT and NOOP, waits here until
        // the transfer has ended (its final reply sent), and so does every command after it, in order. Reading
        // goes on meanwhile (ABOR must get through), up to PARKED_MAX waiting commands.
        let transfer = Arc::clone(&shared_session.lock().await.transfer);
        let mut parked: std::collections::VecDeque<Command> = std::collections::VecDeque::new();
        // swiftftp patch: the time by which the session must be logged in; nothing the client sends moves it.
        let mut login_deadline = login_timeout.map(|t| Box::pin(tokio::time::sleep(t)));
        loop {
            let incoming = {
                #[allow(unused_assignments)]
                let mut incoming = None;
                let mut timeout_delay = Box::pin(tokio::time::sleep(idle_session_timeout));
                tokio::select! {
                    // The reply a task sends goes out before its command counts as done (it sends, then drops
                    // its guard): polled first, so a pipelined command's reply never overtakes it.
                    biased;
                    Some(msg) = control_msg_rx.recv() => {
                        incoming = Some(Ok(Event::InternalMsg(msg)));
                    },
                    _ = async { if let Some(rx) = answering_now.as_mut() { let _ = rx.await; } }, if answering_now.is_some() => {
                        answering_now = None;
                    },
                    () = transfer.ended(), if !parked.is_empty() && answering_now.is_none() => {
                        incoming = parked.pop_front().map(|cmd| match cmd {
                            Command::Malformed(kind) => Err(ControlChanError::new(kind)),
                            cmd => Ok(Event::Command(cmd)),
                        });
                    },
                    // swiftftp patch: a QUIT is read and flagged under one lock (see `QuitReceived`).
                    cmd = futures_util::future::poll_fn(|cx| {
                        let mut quit = quit_received.lock().unwrap_or_else(|e| e.into_inner());
                        let polled = command_source.poll_next_unpin(cx);
                        if matches!(polled, std::task::Poll::Ready(Some(Ok(Command::Quit)))) {
                            *quit = true;
                        }
                        polled
                    }), if answering_now.is_none() && parked.len() < PARKED_MAX => {
                        let running = transfer.current().is_some();
                        match cmd {
                            Some(Ok(cmd)) if (running && !answered_during_transfer(&cmd)) || (!running && !parked.is_empty()) => {
                                parked.push_back(cmd);
                            }
                            Some(cmd_result) => {
                                incoming = Some(match cmd_result {
                                    Ok(Command::Malformed(kind)) => Err(ControlChanError::new(kind)),
                                    other => other.map(Event::Command),
                                })
                            }
                            None => {
                                slog::info!(logger, "Control connection was closed.");
                                incoming = Some(Ok(Event::InternalMsg(ControlChanMsg::ExitControlLoop)))
                            }
                        }
                    },
                    _ = &mut timeout_delay => {
                        let session = shared_session.lock().await;
                        match session.data_busy || answering_now.is_some() {
                            true => incoming = None,
                            false => incoming = Some(Err(ControlChanError::new(ControlChanErrorKind::ControlChannelTimeout)))
                        };
                    },
                    _ = async { if let Some(d) = login_deadline.as_mut() { d.await } }, if login_deadline.is_some() => {
                        let logged_in = matches!(shared_session.lock().await.state, SessionState::WaitCmd);
                        login_deadline = None;
                        if !logged_in {
                            slog::warn!(logger, "Closing a control connection not logged in within {:?}", login_timeout.unwrap_or_default());
                            incoming = Some(Err(ControlChanError::new(ControlChanErrorKind::LoginTimeout)));
                        }
                    },
                    _ = shutdown.listen() => {
                        slog::info!(logger, "Closing open control connection because of shutdown signal");
                        incoming = Some(Ok(Event::InternalMsg(ControlChanMsg::ExitControlLoop)))
                        // TODO: Do we want to wait a bit for a data transfer to complete i.e. session.data_busy is true?
                    }
                }
                incoming
            };
            match incoming {
                None => {} // Loop again
                Some(Ok(Event::InternalMsg(ControlChanMsg::ExitControlLoop))) => {
                    let _ = event_chain.handle(Event::InternalMsg(ControlChanMsg::ExitControlLoop)).await;
                    if let Some(tx) = switchboard_msg_tx
                        && let Err(err) = tx.send(SwitchboardMessage::CloseDataPortCommand(shared_session.clone())).await
                    {
                        slog::warn!(logger, "Could not send CloseDataPortCommand to channel: {}", err);
                        return;
                    };
                    slog::debug!(logger, "Exiting control loop");
                    return;
                }
                Some(Ok(event)) => {
                    // swiftftp patch: AUTH TLS upgrades right after its 234 is sent, in this iteration, before
                    // anything else is read. 0.24 sent the 234 and asked for the upgrade through a spawned task
                    // and a channel, so this loop could read the client's ClientHello first and take it for a
                    // command (a failed login in a few % of fast-link logins).
                    let upgrade_after_reply = matches!(&event, Event::Command(Command::Auth { protocol: AuthParam::Tls }));

                    if let Event::Command(Command::User { username }) = &event {
                        let s: String = String::from_utf8_lossy(username).into();
                        logger = logger.new(slog::o!("username" => s));
                    }

                    // TODO: Handle Event::InternalMsg(InternalMsg::PlaintextControlChannel)

                    let is_command = matches!(event, Event::Command(_));
                    let handled = event_chain.handle(event).await;
                    // Only a command sets what is being answered: an internal message (a transfer's reply, say)
                    // arriving meanwhile must not lift the wait for the command still being answered.
                    if is_command {
                        answering_now = answering
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .take()
                            .and_then(|mut rx| match rx.try_recv() {
                                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => Some(rx),
                                _ => None,
                            });
                    }
                    let handle_result = match handled {
                        Err(e) => Err(e),
                        Ok(reply) => {
                            let upgrade = upgrade_after_reply
                                && matches!(
                                    &reply,
                                    Reply::CodeAndMsg {
                                        code: ReplyCode::AuthOkayNoDataNeeded,
                                        ..
                                    }
                                );
                            let limit = send_limit(idle_session_timeout, login_deadline.as_ref());
                            send_within(&mut reply_sink, reply, limit).await.map(|()| upgrade)
                        }
                    };

                    match handle_result {
                        Err(chan_err) => {
                            slog::warn!(logger, "Event handler chain error: {:?}. Closing control connection", chan_err);
                            return;
                        }
                        Ok(true) => match secure(reply_sink, command_source, &ftps_config, &shared_session, &logger).await {
                            Some((sink, src)) => {
                                reply_sink = sink;
                                command_source = src;
                            }
                            None => return,
                        },
                        Ok(false) => {}
                    }
                }
                Some(Err(e)) => {
                    let (reply, close_connection) = handle_control_channel_error(logger.clone(), e);
                    let limit = send_limit(idle_session_timeout, login_deadline.as_ref());
                    let result = send_within(&mut reply_sink, reply, limit).await;
                    if result.is_err() {
                        slog::warn!(logger, "Could not send error reply to client");
                        return;
                    }
                    if close_connection {
                        return;
                    }
                }
            }
        }
    });

    Ok(jh)
}

type ReplySink = futures_util::stream::SplitSink<Framed<Box<dyn AsyncReadAsyncWriteSendUnpin>, FtpCodec>, Reply>;

/// swiftftp patch: sends a reply, failing once it has waited `limit` for the client to read: a client that sends
/// commands and never reads the replies would otherwise block the loop in this send for ever, with no timer (idle,
/// login) ever looked at again.
async fn send_within(sink: &mut ReplySink, reply: Reply, limit: Duration) -> Result<(), ControlChanError> {
    match tokio::time::timeout(limit, sink.send(reply)).await {
        Ok(sent) => sent,
        Err(_) => Err(ControlChanError::new(ControlChanErrorKind::ControlChannelTimeout)),
    }
}

/// swiftftp patch: how long a reply may wait to be sent: the idle timeout, and before login no longer than the
/// login deadline (at least a second, so that a reply due right at the deadline still goes out).
fn send_limit(idle: Duration, login_deadline: Option<&std::pin::Pin<Box<tokio::time::Sleep>>>) -> Duration {
    let to_login = login_deadline.map(|d| d.deadline().saturating_duration_since(tokio::time::Instant::now()));
    match to_login {
        Some(left) => idle.min(left.max(Duration::from_secs(1))),
        None => idle,
    }
}
type CommandSource = futures_util::stream::SplitStream<Framed<Box<dyn AsyncReadAsyncWriteSendUnpin>, FtpCodec>>;

/// Upgrades the control connection to TLS (after a 234): the TLS handshake on the reunited stream, bounded by
/// `TLS_HANDSHAKE_TIMEOUT`, then the codec again. `None`: the connection is to be closed (logged).
async fn secure<Storage, User>(
    reply_sink: ReplySink,
    command_source: CommandSource,
    ftps_config: &FtpsConfig,
    shared_session: &SharedSession<Storage, User>,
    logger: &slog::Logger,
) -> Option<(ReplySink, CommandSource)>
where
    User: UserDetail + 'static,
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
{
    slog::info!(logger, "Upgrading control channel to TLS");
    let codec_io = match reply_sink.reunite(command_source) {
        Ok(io) => io,
        Err(err) => {
            slog::warn!(logger, "Closing control channel: cannot reunite it for TLS: {}", err);
            return None;
        }
    };
    if !codec_io.read_buffer().is_empty() {
        // The client sent more after AUTH TLS without waiting for the 234: not FTP, and not TLS either.
        slog::warn!(logger, "Closing control channel: bytes after AUTH TLS before the handshake");
        return None;
    }
    let io = codec_io.into_inner();
    let acceptor: tokio_rustls::TlsAcceptor = match ftps_config.clone() {
        FtpsConfig::On { tls_config } => tls_config.into(),
        _ => {
            slog::warn!(logger, "Closing control channel: AUTH TLS without a TLS configuration");
            return None;
        }
    };
    let stream = match tokio::time::timeout(crate::server::tls::TLS_HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => {
            slog::warn!(logger, "Closing control channel. Could not upgrade to TLS: {}", err);
            return None;
        }
        Err(_) => {
            slog::warn!(logger, "Closing control channel: the TLS handshake did not finish in time");
            return None;
        }
    };
    let s: &ServerConnection = stream.get_ref().1;
    {
        let mut session = shared_session.lock().await;
        session.cmd_tls = true;
        if let Some(certs) = s.peer_certificates() {
            session.cert_chain = Some(certs.iter().map(|c| unftp_core::auth::ClientCert(c.as_ref().to_vec())).collect());
        }
    }
    let io: Box<dyn AsyncReadAsyncWriteSendUnpin> = Box::new(stream);
    Some(FtpCodec::new().framed(io).split())
}

// gets the reply to be sent to the client and tells if the connection should be closed.
fn handle_control_channel_error(logger: slog::Logger, error: ControlChanError) -> (Reply, bool) {
    slog::warn!(logger, "Control channel error: {:?}", error);
    match error.kind() {
        ControlChanErrorKind::UnknownCommand { .. } => (Reply::new(ReplyCode::CommandSyntaxError, "Command not implemented"), false),
        ControlChanErrorKind::Utf8Error => (Reply::new(ReplyCode::CommandSyntaxError, "Invalid UTF8 in command"), true),
        ControlChanErrorKind::LineTooLong => (Reply::new(ReplyCode::CommandSyntaxError, "Command line too long"), true),
        ControlChanErrorKind::InvalidCommand => (Reply::new(ReplyCode::ParameterSyntaxError, "Invalid Parameter"), false),
        ControlChanErrorKind::InvalidName => (
            Reply::new(ReplyCode::BadFileName, "File name not allowed: not UTF-8, or holding a control character"),
            false,
        ),
        ControlChanErrorKind::LoginTimeout => (Reply::new(ReplyCode::ServiceNotAvailable, "Login timed out. Closing control connection"), true),
        // swiftftp patch: 421, the code for a connection the server closes (0.24: 221, the answer to QUIT).
        ControlChanErrorKind::ControlChannelTimeout => (
            Reply::new(ReplyCode::ServiceNotAvailable, "Session timed out. Closing control connection"),
            true,
        ),
        _ => (Reply::new(ReplyCode::LocalError, "Unknown internal server error, please try again later"), true),
    }
}

/// swiftftp patch: where a command's handler leaves the receiver of its [`CommandDone`] for the control loop.
/// swiftftp patch: how many commands read during a transfer may wait for its end before reading pauses.
const PARKED_MAX: usize = 32;

/// swiftftp patch: the commands answered while a transfer runs (RFC 959 4.1.3: ABOR, STAT; NOOP, a keep-alive);
/// every other command waits for the transfer's end.
fn answered_during_transfer(cmd: &Command) -> bool {
    matches!(cmd, Command::Abor | Command::Stat { path: None } | Command::Noop)
}

type AnsweringSlot = Arc<std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>>;

#[derive(Debug)]
struct PrimaryEventHandler<Storage, User>
where
    User: UserDetail + 'static,
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
{
    logger: slog::Logger,
    session: SharedSession<Storage, User>,
    auth_pipeline: Arc<AuthenticationPipeline<User>>,
    tls_configured: bool,
    passive_ports: RangeInclusive<u16>,
    passive_host: PassiveHost,
    tx_control_chan: Sender<ControlChanMsg>,
    local_addr: SocketAddr,
    storage_features: u32,
    tx_proxy_loop: Option<SwitchboardSender<Storage, User>>,
    sitemd5: SiteMd5,
    permit_foreign_addresses: bool,
    site_handlers: Arc<HashMap<String, Arc<dyn SiteCommandHandler<Storage, User>>>>,
    answering: AnsweringSlot,
}

impl<Storage, User> PrimaryEventHandler<Storage, User>
where
    User: UserDetail + 'static,
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
{
    #[tracing_attributes::instrument]
    async fn handle_internal_msg(&self, msg: ControlChanMsg) -> Result<Reply, ControlChanError> {
        use self::ControlChanMsg::*;
        use SessionState::*;

        match msg {
            NotFound => Ok(Reply::new(ReplyCode::FileError, "File not found")),
            PermissionDenied => Ok(Reply::new(ReplyCode::FileError, "Permision denied")),
            SentData { .. } => {
                let mut session = self.session.lock().await;
                session.start_pos = 0;
                Ok(Reply::new(ReplyCode::ClosingDataConnection, "Successfully sent"))
            }
            WriteFailed => Ok(Reply::new(ReplyCode::TransientFileError, "Failed to write file")),
            ConnectionReset => Ok(Reply::new(ReplyCode::ConnectionClosed, "Datachannel unexpectedly closed")),
            DataConnectionNeverOpened => Ok(Reply::new(ReplyCode::CantOpenDataConnection, "No data connection was opened in time")),
            WrittenData { .. } => {
                let mut session = self.session.lock().await;
                session.start_pos = 0;
                Ok(Reply::new(ReplyCode::ClosingDataConnection, "File successfully written"))
            }
            DataConnectionClosedAfterStor => Ok(Reply::new(ReplyCode::FileActionOkay, "unFTP holds your data for you")),
            DirectorySuccessfullyListed => Ok(Reply::new(ReplyCode::ClosingDataConnection, "Listed the directory")),
            DirectoryListFailure => Ok(Reply::new(ReplyCode::ClosingDataConnection, "Failed to list the directory")),
            CwdSuccess => Ok(Reply::new(ReplyCode::FileActionOkay, "Successfully changed working directory")),
            DelFileSuccess { .. } | RmDirSuccess { .. } => Ok(Reply::new(ReplyCode::FileActionOkay, "Successfully removed")),
            DelFail => Ok(Reply::new(ReplyCode::TransientFileError, "Failed to delete the file")),
            ExitControlLoop => Ok(Reply::none()),
            PlaintextControlChannel => {
                let mut session = self.session.lock().await;
                session.cmd_tls = false;
                Ok(Reply::none())
            }
            // swiftftp patch: `257 "/path" directory created`, quotes inside doubled (RFC 959): clients read the
            // path from between the quotes (python's ftplib returned '' for `257 /path`).
            MkDirSuccess { path } => Ok(Reply::new_with_string(
                ReplyCode::DirCreated,
                format!("{} directory created", crate::server::session::quoted(std::path::Path::new(&path))),
            )),
            MkdirFail => Ok(Reply::new(ReplyCode::FileError, "Failed to create directory")),
            RenameSuccess { .. } => Ok(Reply::new(ReplyCode::FileActionOkay, "Renamed")),
            AuthSuccess { .. } => {
                let mut session = self.session.lock().await;
                session.state = WaitCmd;
                Ok(Reply::new(ReplyCode::UserLoggedIn, "User logged in, proceed"))
            }
            AuthFailed => {
                let mut session = self.session.lock().await;
                session.state = New; // According to RFC 959, a PASS command MUST precede a USER command
                Ok(Reply::new(ReplyCode::NotLoggedIn, "Authentication failed"))
            }
            StorageError(error_type) => {
                let (code, text) = ReplyCode::for_storage_error(error_type.kind());
                // swiftftp patch: the backend's own words, when it gave some.
                Ok(Reply::new(code, error_type.reply_text().unwrap_or(text)))
            }
            CommandChannelReply(reply) => Ok(reply),
        }
    }

    #[tracing_attributes::instrument]
    async fn handle_command(&self, cmd: Command) -> Result<Reply, ControlChanError> {
        let (done, answered) = CommandDone::new();
        *self.answering.lock().unwrap_or_else(|p| p.into_inner()) = Some(answered);
        let args = CommandContext {
            done,
            parsed_command: cmd.clone(),
            session: self.session.clone(),
            auth_pipeline: self.auth_pipeline.clone(),
            tls_configured: self.tls_configured,
            passive_ports: self.passive_ports.clone(),
            passive_host: self.passive_host.clone(),
            tx_control_chan: self.tx_control_chan.clone(),
            local_addr: self.local_addr,
            storage_features: self.storage_features,
            tx_prebound_loop: self.tx_proxy_loop.clone(),
            logger: self.logger.clone(),
            sitemd5: self.sitemd5,
            permit_foreign_addresses: self.permit_foreign_addresses,
            site_handlers: self.site_handlers.clone(),
        };

        let handler: Box<dyn CommandHandler<Storage, User>> = match cmd {
            Command::User { username } => Box::new(commands::User::new(username)),
            Command::Pass { password } => Box::new(commands::Pass::new(password)),
            Command::Syst => Box::new(commands::Syst),
            Command::Stat { path } => Box::new(commands::Stat::new(path)),
            Command::Acct { .. } => Box::new(commands::Acct),
            Command::Type => Box::new(commands::Type),
            Command::Stru { structure } => Box::new(commands::Stru::new(structure)),
            Command::Mode { mode } => Box::new(commands::Mode::new(mode)),
            Command::Help => Box::new(commands::Help),
            Command::Noop => Box::new(commands::Noop),
            Command::Pasv => Box::new(commands::Pasv::new()),
            Command::Epsv => Box::new(commands::Epsv::new()),
            Command::Port { addr } => Box::new(commands::Port::new(addr)),
            Command::Retr { .. } => Box::new(commands::Retr),
            Command::Stor { .. } => Box::new(commands::Stor),
            Command::List { .. } => Box::new(commands::List),
            Command::Nlst { .. } => Box::new(commands::Nlst),
            Command::Feat => Box::new(commands::Feat),
            Command::Pwd => Box::new(commands::Pwd),
            Command::Cwd { path } => Box::new(commands::Cwd::new(path)),
            Command::Cdup => Box::new(commands::Cdup),
            Command::Opts { option } => Box::new(commands::Opts::new(option)),
            Command::Dele { path } => Box::new(commands::Dele::new(path)),
            Command::Rmd { path } => Box::new(commands::Rmd::new(path)),
            Command::Quit => Box::new(commands::Quit),
            Command::Mkd { path } => Box::new(commands::Mkd::new(path)),
            Command::Allo { .. } => Box::new(commands::Allo),
            Command::Abor => Box::new(commands::Abor),
            Command::Stou => Box::new(commands::Stou),
            Command::Rnfr { file } => Box::new(commands::Rnfr::new(file)),
            Command::Rnto { file } => Box::new(commands::Rnto::new(file)),
            Command::Auth { protocol } => Box::new(commands::Auth::new(protocol)),
            Command::Pbsz {} => Box::new(commands::Pbsz),
            Command::Ccc => Box::new(commands::Ccc),
            Command::Prot { param } => Box::new(commands::Prot::new(param)),
            Command::Size { file } => Box::new(commands::Size::new(file)),
            Command::Rest { offset } => Box::new(commands::Rest::new(offset)),
            Command::Mdtm { file } => Box::new(commands::Mdtm::new(file)),
            Command::Mfmt { time, file } => Box::new(commands::Mfmt::new(time, file)),
            Command::Md5 { file, style } => Box::new(commands::Md5::new(file, style)),
            Command::Mlst { path } => Box::new(commands::Mlst::new(path)),
            Command::Mlsd { .. } => Box::new(commands::Mlsd),
            Command::Appe { .. } => Box::new(commands::Appe),
            Command::Site { command, arguments } => Box::new(commands::Site::new(command, arguments)),
            Command::Other { .. } => return Ok(Reply::new(ReplyCode::CommandSyntaxError, "Command not implemented")),
            // Answered by the control loop before any handler sees it.
            Command::Malformed(_) => return Ok(Reply::new(ReplyCode::CommandSyntaxError, "Syntax error")),
        };

        handler.handle(args).await
    }
}

#[async_trait]
impl<Storage, User> ControlChanMiddleware for PrimaryEventHandler<Storage, User>
where
    User: UserDetail + 'static,
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
{
    async fn handle(&mut self, event: Event) -> Result<Reply, ControlChanError> {
        match event {
            Event::Command(cmd) => self.handle_command(cmd).await,
            Event::InternalMsg(msg) => self.handle_internal_msg(msg).await,
        }
    }
}
