//! Contains shared code for the PASV and EPSV commands.

use crate::{
    auth::UserDetail,
    server::{
        ControlChanErrorKind, ControlChanMsg,
        chancomms::{DataChanRequest, PortAllocationError, SwitchboardMessage, SwitchboardSender},
        controlchan::{Reply, ReplyCode, error::ControlChanError, handler::CommandContext},
        datachan,
        session::SharedSession,
    },
    storage::{Metadata, StorageBackend},
};
use async_trait::async_trait;
use std::{fmt::Debug, io, net::SocketAddr, ops::RangeInclusive, time::Duration};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{
    mpsc::{Receiver, Sender, channel},
    oneshot,
};

const BIND_RETRIES: u8 = 10;

#[async_trait]
pub(crate) trait LegacyReplyProducer<Storage, User>: Send + Sync + Debug
where
    Storage: StorageBackend<User> + 'static,
    User: UserDetail + 'static,
{
    async fn build_reply(&self, args: &CommandContext<Storage, User>, port: u16) -> Result<Reply, ControlChanError>;
}

/// swiftftp patch: returns the port listening. Listening is part of taking the port: two sessions may bind one
/// port at the same moment (both with `SO_REUSEADDR`, neither listening yet), and then the second one's `listen`
/// fails with `EADDRINUSE`. That is a port taken: another is tried. (The error ended the session before.)
#[tracing_attributes::instrument]
pub(crate) fn try_port_range(local_addr: SocketAddr, passive_ports: RangeInclusive<u16>) -> io::Result<TcpListener> {
    let ip = local_addr.ip();
    let rng_length = passive_ports.end() - passive_ports.start() + 1;

    let mut socket: io::Result<TcpListener> = Err(io::Error::new(io::ErrorKind::InvalidInput, "Bind retries cannot be 0"));

    for _ in 1..BIND_RETRIES {
        let random_u32 = {
            let mut data = [0; 4];
            getrandom::fill(&mut data).expect("Error generating random port");
            u32::from_ne_bytes(data)
        };

        let port = random_u32 % rng_length as u32 + *passive_ports.start() as u32;
        let s = match ip {
            std::net::IpAddr::V4(_) => TcpSocket::new_v4()?,
            std::net::IpAddr::V6(_) => TcpSocket::new_v6()?,
        };
        s.set_reuseaddr(true)?;
        match s.bind(std::net::SocketAddr::new(ip, port as u16)).and_then(|()| s.listen(1024)) {
            Ok(listener) => return Ok(listener),
            Err(e) => socket = Err(e),
        }
    }

    socket
}

// modifies the session by adding channels that are used to communicate with the data connection
// processing loop.
#[tracing_attributes::instrument]
pub(crate) async fn setup_inter_loop_comms<S, U>(session: SharedSession<S, U>, control_loop_tx: Sender<ControlChanMsg>)
where
    U: UserDetail + 'static,
    S: StorageBackend<U> + 'static,
    S::Metadata: Metadata,
{
    let (cmd_tx, cmd_rx): (Sender<DataChanRequest>, Receiver<DataChanRequest>) = channel(1);
    let (data_abort_tx, data_abort_rx): (Sender<()>, Receiver<()>) = channel(1);

    let mut session = session.lock().await;
    session.passive_generation += 1;
    session.data_cmd_tx = Some(cmd_tx);
    session.data_cmd_rx = Some(cmd_rx);
    session.data_abort_tx = Some(data_abort_tx);
    session.data_abort_rx = Some(data_abort_rx);
    session.control_msg_tx = Some(control_loop_tx);
}

// For legacy mode we choose a data port here and start listening on it while letting the control
// channel know (via method return) what the address is that the client should connect to.
#[tracing_attributes::instrument]
pub(crate) async fn handle_legacy_mode<S, U, T>(cmd: &T, args: CommandContext<S, U>) -> Result<Reply, ControlChanError>
where
    U: UserDetail + 'static,
    S: StorageBackend<U> + 'static,
    S::Metadata: Metadata,
    T: LegacyReplyProducer<S, U>,
{
    // swiftftp patch: the session's previous passive listener, unused, is closed before another port is taken
    // (0.24 kept each one 15 s: 500 pipelined PASV held 500 ports of the range).
    drop(args.session.lock().await.passive_listening.take());
    let listener = match args.session.lock().await.binder {
        Some(ref mut binder) => binder
            .bind(args.local_addr.ip(), args.passive_ports.clone())
            .await
            .and_then(|socket| socket.listen(1024)),
        _ => try_port_range(args.local_addr, args.passive_ports.clone()),
    };
    // swiftftp patch: a port that cannot be listened on is a 425 like a port that cannot be bound.
    let listener = match listener {
        Err(_) => return Ok(Reply::new(ReplyCode::CantOpenDataConnection, "No data connection established")),
        Ok(l) => l,
    };

    let port = listener.local_addr()?.port();

    let reply = cmd.build_reply(&args, port).await?;
    if reply.is_positive() {
        setup_inter_loop_comms(args.session.clone(), args.tx_control_chan.clone()).await;
        let (listening, superseded) = oneshot::channel::<()>();
        let generation = {
            let mut session = args.session.lock().await;
            session.passive_listening = Some(listening);
            session.passive_generation
        };
        // Open the data connection in a new task and process it.
        // We cannot await this since we first need to let the client know where to connect :-)
        tokio::spawn(async move {
            // Timeout if the client doesn't connect to the socket in a while, to avoid leaving the socket hanging open permanently.
            let r = tokio::select! {
                r = tokio::time::timeout(Duration::from_secs(15), listener.accept()) => r,
                _ = superseded => {
                    slog::debug!(args.logger, "Passive listener superseded before its connection came: closed");
                    return;
                }
            };
            match r {
                Ok(Ok((socket, _socket_addr))) => datachan::spawn_processing(args.logger, args.session, socket).await,
                Ok(Err(e)) => {
                    slog::error!(args.logger, "Error waiting for data connection: {}", e);
                    never_opened(&args.session, generation, &args.tx_control_chan).await;
                }
                Err(_) => {
                    slog::warn!(args.logger, "Client did not connect to data port in time");
                    never_opened(&args.session, generation, &args.tx_control_chan).await;
                }
            }
        });
    }

    Ok(reply)
}

// For delegated mode, we prepare the session and let the listener loop know (via channel) that it
// should choose a data port and check for connections on it.
#[tracing_attributes::instrument]
pub(crate) async fn handle_delegated_mode<S, U>(args: CommandContext<S, U>, tx: SwitchboardSender<S, U>) -> Result<Reply, ControlChanError>
where
    U: UserDetail + 'static,
    S: StorageBackend<U> + 'static,
    S::Metadata: Metadata,
{
    setup_inter_loop_comms(args.session.clone(), args.tx_control_chan).await;

    let (oneshot_tx, oneshot_rx) = oneshot::channel::<Result<Reply, PortAllocationError>>();

    tx.send(SwitchboardMessage::AssignDataPortCommand(args.session.clone(), oneshot_tx))
        .await
        .map_err(|_| ControlChanErrorKind::InternalServerError)?;

    match oneshot_rx.await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(_)) => Ok(Reply::new(ReplyCode::CantOpenDataConnection, "Could not allocate passive port")),
        Err(_) => Ok(Reply::new(ReplyCode::CantOpenDataConnection, "Internal error: Channel closed")),
    }
}

/// swiftftp patch: the `425` of a transfer command whose data connection was refused or gave up (`never_opened`)
/// after the command took the data channel but before it sent its request: the request comes back, and is
/// kept until its `425` has gone (its transfer ends with it). Without this the command got no final reply.
pub(crate) async fn data_channel_gone(control: &Sender<ControlChanMsg>, request: DataChanRequest) {
    let _ = control.send(ControlChanMsg::DataConnectionNeverOpened).await;
    drop(request);
}

/// swiftftp patch: the data connection of passive set-up `generation` never came. A transfer command already
/// waiting for it gets 425 (0.24 left it waiting, and the session with it, until the client gave up); the
/// channels are dropped so that a later transfer gets its "no data connection" reply at once. A newer PASV or
/// EPSV is left alone.
pub(crate) async fn never_opened<S, U>(session: &SharedSession<S, U>, generation: u64, tx: &Sender<ControlChanMsg>)
where
    U: UserDetail + 'static,
    S: StorageBackend<U> + 'static,
    S::Metadata: Metadata,
{
    let waiting = {
        let mut session = session.lock().await;
        if session.passive_generation != generation {
            return;
        }
        // The request is kept until its 425 has gone: its transfer ends with it, and what waits for that goes on.
        let waiting = session.data_cmd_rx.as_mut().and_then(|rx| rx.try_recv().ok());
        session.data_cmd_tx = None;
        session.data_cmd_rx = None;
        session.data_abort_tx = None;
        session.data_abort_rx = None;
        waiting
    };
    if let Some(request) = waiting {
        let _ = tx.send(ControlChanMsg::DataConnectionNeverOpened).await;
        drop(request);
    }
}
