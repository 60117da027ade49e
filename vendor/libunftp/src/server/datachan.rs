//! Contains code pertaining to the FTP *data* channel

use super::{
    chancomms::{ControlChanMsg, DataChanMsg},
    tls::FtpsConfig,
};
use crate::server::session::SharedSession;
use crate::{
    auth::UserDetail,
    storage::{Error, ErrorKind, Metadata, StorageBackend},
};

use crate::server::chancomms::{DataChanCmd, DataChanRequest};
use std::{path::PathBuf, sync::Arc};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{Receiver, Sender};
use tokio_rustls::TlsAcceptor;

use crate::metrics;

#[derive(Debug)]
struct DataCommandExecutor<Storage, User>
where
    Storage: StorageBackend<User>,
    Storage::Metadata: Metadata,
    User: UserDetail,
{
    pub user: Arc<Option<User>>,
    /// swiftftp patch: the data connection, its TLS handshake done first thing (see [`DataStream`]).
    pub stream: DataStream,
    pub control_msg_tx: Sender<ControlChanMsg>,
    pub storage: Arc<Storage>,
    pub cwd: PathBuf,
    pub ftps_mode: FtpsConfig,
    pub logger: slog::Logger,
    pub data_cmd_rx: Option<Receiver<DataChanRequest>>,
    pub data_abort_rx: Option<Receiver<()>>,
    /// swiftftp patch: the control connection, peeked at when an upload's data ends (see [`ClientGoneReader`]).
    pub control_peek: Option<Arc<std::net::TcpStream>>,
    /// swiftftp patch: whether the control loop has read a QUIT.
    pub quit_received: crate::server::session::QuitReceived,
    /// swiftftp patch: see [`StallGuard`].
    pub stall_timeout: std::time::Duration,
    /// swiftftp patch: the session's running transfer, whose ABOR this connection's reads and writes obey.
    pub transfer: Arc<crate::server::transfer::TransferState>,
}

/// swiftftp patch: a data connection, opened (its TLS handshake done, with `PROT P`) as soon as it is accepted,
/// before its command: 0.24 started the handshake only once the command had come. node's basic-ftp starts its
/// handshake at connect time and an upload as soon as the handshake looks far enough along; with the server's
/// half still to come when the `150` arrived, an empty upload closed the connection mid-handshake (451, one in
/// six). Clients that start TLS after the `150` (python's ftplib) are served the same: the handshake waits for
/// their ClientHello while the command goes ahead.
enum DataStream {
    /// Accepted, not opened yet.
    Unopened(TcpStream),
    Plain(StallGuard<TcpStream>),
    Tls(Box<tokio_rustls::server::TlsStream<StallGuard<TcpStream>>>),
    /// The handshake failed: the transfer fails with the reason.
    Failed(crate::server::tls::FailedTls),
}

impl std::fmt::Debug for DataStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DataStream::Unopened(_) => "Unopened",
            DataStream::Plain(_) => "Plain",
            DataStream::Tls(_) => "Tls",
            DataStream::Failed(_) => "Failed",
        })
    }
}

impl DataStream {
    /// Opens an accepted connection: in clear, or with the TLS handshake of `ftps_mode`.
    async fn open(self, stall_timeout: std::time::Duration, ftps_mode: &FtpsConfig, transfer: Arc<crate::server::transfer::TransferState>) -> DataStream {
        let DataStream::Unopened(socket) = self else { return self };
        let socket = StallGuard::new(socket, stall_timeout, transfer);
        match ftps_mode {
            FtpsConfig::On { tls_config } => {
                let acceptor: TlsAcceptor = crate::server::tls::data_acceptor(tls_config);
                match crate::server::tls::accept_data_tls(acceptor, socket).await {
                    Ok(tls_stream) => DataStream::Tls(Box::new(tls_stream)),
                    Err(failed) => DataStream::Failed(failed),
                }
            }
            _ => DataStream::Plain(socket),
        }
    }
}

/// swiftftp patch: a data connection whose read or write stays pending for `timeout` fails: a client that stops
/// sending (STOR) or reading (RETR, LIST) without closing. The error is `ConnectionAborted`, so an upload ends as
/// one whose client went away (`426`, nothing stored) and its buffers are freed. 0.24 waited forever, with the
/// control connection's idle timeout suspended meanwhile. Only time the transfer spends waiting on the client
/// counts: time spent on the storage backend, between two polls, does not.
struct StallGuard<S> {
    inner: S,
    /// The session's transfer: its ABOR fails this connection's reads and writes, and its byte count is kept.
    transfer: Arc<crate::server::transfer::TransferState>,
    /// The running transfer's abort and byte count, once it has begun.
    running: Option<(Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>, Arc<std::sync::atomic::AtomicU64>)>,
    timeout: std::time::Duration,
    /// Since when the current read or write has been pending (`None` after it completed).
    waiting_since: Option<Instant>,
    /// Armed at `waiting_since + timeout`.
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<S> StallGuard<S> {
    fn new(inner: S, timeout: std::time::Duration, transfer: Arc<crate::server::transfer::TransferState>) -> Self {
        StallGuard {
            inner,
            transfer,
            running: None,
            timeout,
            waiting_since: None,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// After the inner stream returned `Pending`: an error once it has been pending for the timeout, else `None`
    /// with the deadline's wake-up registered.
    fn stalled(&mut self, cx: &mut Context<'_>) -> Option<std::io::Error> {
        let since = match self.waiting_since {
            Some(since) => since,
            None => {
                let now = Instant::now();
                self.waiting_since = Some(now);
                self.deadline.as_mut().reset(tokio::time::Instant::from_std(now + self.timeout));
                now
            }
        };
        if self.deadline.as_mut().poll(cx).is_pending() {
            return None;
        }
        self.waiting_since = None;
        Some(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            format!(
                "no data moved on the data connection for {} s (since {:?} ago)",
                self.timeout.as_secs(),
                since.elapsed()
            ),
        ))
    }

    /// An error once the running transfer was aborted (ABOR); its wake-up registered otherwise.
    fn aborted(&mut self, cx: &mut Context<'_>) -> Option<std::io::Error> {
        if self.running.is_none()
            && let Some(running) = self.transfer.current()
        {
            self.running = Some((Box::pin(running.abort.cancelled_owned()), running.bytes));
        }
        let (abort, _) = self.running.as_mut()?;
        abort
            .as_mut()
            .poll(cx)
            .is_ready()
            .then(|| std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "the transfer was aborted (ABOR)"))
    }

    fn moved(&self, n: usize) {
        if let Some((_, bytes)) = &self.running {
            bytes.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The inner stream's answer, through the stall check.
    fn guard<T>(&mut self, cx: &mut Context<'_>, polled: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        match polled {
            Poll::Pending => match self.stalled(cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
            ready => {
                self.waiting_since = None;
                ready
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallGuard<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if let Some(e) = self.aborted(cx) {
            return Poll::Ready(Err(e));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.moved(buf.filled().len() - before);
        }
        self.guard(cx, polled)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallGuard<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if let Some(e) = self.aborted(cx) {
            return Poll::Ready(Err(e));
        }
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.moved(n);
        }
        self.guard(cx, polled)
    }

    // Vectored writes reach the socket as one: the default would write the first buffer only, so a TLS
    // handshake's records (rustls writes ServerHello, ChangeCipherSpec and the encrypted flight together) went
    // out one segment each (TCP_NODELAY), and node's basic-ftp, which starts an upload once ServerHello has
    // named the cipher, closed an empty upload's connection before the handshake was done (451, half the time).
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        if let Some(e) = self.aborted(cx) {
            return Poll::Ready(Err(e));
        }
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.moved(n);
        }
        self.guard(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.guard(cx, polled)
    }
}

/// swiftftp patch: a TLS upload that ends before its first byte ends well even without the TLS `close_notify`.
/// node's basic-ftp, uploading an empty file, closes the data connection as soon as its handshake is done, and
/// about one time in four without `close_notify` (rustls: `UnexpectedEof`, the upload failed with 426). With a
/// byte received, the strict rule holds: a connection cut without `close_notify` may have been truncated, and
/// its upload fails.
struct EmptyUploadEof<R> {
    inner: R,
    read_any: bool,
}

impl<R: AsyncRead + Unpin> AsyncRead for EmptyUploadEof<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof && !self.read_any => Poll::Ready(Ok(())),
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.read_any = true;
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// swiftftp patch: an upload's data connection, whose end of file becomes a `ConnectionAborted` error when the
/// client's control connection is closed by then. A client that dies (killed, crashed, cable pulled and the
/// kernel closing both sockets) closes its data connection like one that finished, and a truncated upload would
/// otherwise be stored as complete; a client that finished keeps its control connection open for the reply.
struct ClientGoneReader<R> {
    inner: R,
    state: Arc<ClientGoneState>,
    /// Set at the data's end while the control connection still looked open: a dying client's sockets close
    /// within microseconds of each other, but not in a set order, so it is looked at once more after this.
    grace: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// What an upload's reader and its [`ClientCheck`] share.
struct ClientGoneState {
    control: Option<Arc<std::net::TcpStream>>,
    /// The session's "QUIT was read" flag: a client that said goodbye is not gone, it is done.
    quit: crate::server::session::QuitReceived,
    /// A [`ClientCheck`] was taken: the reader ends at once, and the backend asks the check before it commits.
    deferred: std::sync::atomic::AtomicBool,
    /// When the data ended (deferred mode).
    ended_at: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// A look found the client gone: every later look says so too.
    gone: std::sync::atomic::AtomicBool,
}

/// How long the end of an upload's data waits for a closing control connection to show.
///
/// A dead client's kernel closes its sockets within microseconds, and their ends arrive in the order sent. The
/// order follows the descriptors, the higher one first as observed on Linux 6: the control socket, opened
/// first and so usually the lower, then closes just after the data's, and the grace is what sees it (when the
/// data socket holds the lower, reused descriptor, the first look does). The grace is measured from when the
/// gateway saw the data's end, so a busy gateway does not shorten it. 3 ms: the ends of a client on another
/// machine arrive microseconds apart, but a client on the gateway's own busy cores can be preempted between
/// its two closes (by the gateway thread its first close woke) for milliseconds; a loop of such kills missed
/// ~1 in 100 at 3 ms and ~3 in 100 at 1 ms. A backend whose commit overlaps the wait may choose a shorter one
/// ([`ClientCheck::client_stayed_by`]).
const CLIENT_GONE_GRACE: std::time::Duration = std::time::Duration::from_millis(3);

impl ClientGoneState {
    /// Whether the control connection is closed (or broken) without a QUIT.
    fn control_closed(&self) -> bool {
        let Some(control) = &self.control else {
            return false;
        };
        // Held across the peek: the control loop cannot take a QUIT from the socket meanwhile.
        let quit = self.quit.lock().unwrap_or_else(|e| e.into_inner());
        if *quit {
            return false;
        }
        let mut probe = [0u8; 1];
        match control.peek(&mut probe) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted),
        }
    }
}

tokio::task_local! {
    static CLIENT_CHECK: ClientCheck;
}

/// swiftftp patch: the end-of-upload check, for a storage backend that can wait for it while it works.
///
/// By default an upload's reader holds back its end of file for [`CLIENT_GONE_GRACE`] and then looks at the
/// control connection once more; that wait is on every upload's critical path. A backend that takes this check
/// (with [`ClientCheck::take`], inside `StorageBackend::put`) gets the end of file at once instead, and must
/// call [`ClientCheck::client_stayed`] before it makes the upload visible: the wait then overlaps whatever the
/// backend does meanwhile (starting its own request, for one).
#[derive(Clone)]
pub struct ClientCheck(Arc<ClientGoneState>);

impl std::fmt::Debug for ClientCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCheck").finish_non_exhaustive()
    }
}

impl ClientCheck {
    /// The check of the upload this task is storing (`None` outside a `STOR`/`APPE`/`STOU`). From then on
    /// the upload's reader ends without waiting.
    pub fn take() -> Option<ClientCheck> {
        CLIENT_CHECK
            .try_with(|check| {
                check.0.deferred.store(true, std::sync::atomic::Ordering::SeqCst);
                check.clone()
            })
            .ok()
    }

    /// Gives the wait back to the reader: its end of file waits and looks again itself, as before [`take`].
    /// For an upload that commits only at its end; call it before the reader's end is read.
    ///
    /// [`take`]: ClientCheck::take
    pub fn release(&self) {
        self.0.deferred.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Once the upload's data has ended: whether its client is still there (control connection open, or
    /// QUIT sent), looked at [`CLIENT_GONE_GRACE`] after the end.
    pub async fn client_stayed(&self) -> bool {
        self.client_stayed_by(CLIENT_GONE_GRACE).await
    }

    /// [`client_stayed`](Self::client_stayed), looked at `grace` after the data's end: for a commit whose wait
    /// runs beside other work and costs nothing up to some length. A look that found the client gone is final
    /// (later calls say so at once); one that found it there may be followed by a longer one.
    pub async fn client_stayed_by(&self, grace: std::time::Duration) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        if self.0.gone.load(SeqCst) {
            return false;
        }
        let ended = *self.0.ended_at.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ended) = ended {
            tokio::time::sleep_until(ended + grace).await;
        }
        if self.0.control_closed() {
            self.0.gone.store(true, SeqCst);
        }
        !self.0.gone.load(SeqCst)
    }
}

impl<R> ClientGoneReader<R> {
    fn new(inner: R, control: Option<Arc<std::net::TcpStream>>, quit: crate::server::session::QuitReceived) -> (Self, ClientCheck) {
        let state = Arc::new(ClientGoneState {
            control,
            quit,
            deferred: std::sync::atomic::AtomicBool::new(false),
            ended_at: std::sync::Mutex::new(None),
            gone: std::sync::atomic::AtomicBool::new(false),
        });
        let check = ClientCheck(Arc::clone(&state));
        (ClientGoneReader { inner, state, grace: None }, check)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for ClientGoneReader<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let gone = || {
            Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "the client closed its control connection before the upload's end: the upload is incomplete",
            )))
        };
        if let Some(grace) = self.grace.as_mut() {
            if grace.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.grace = None;
            return if self.state.control_closed() { gone() } else { Poll::Ready(Ok(())) };
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && buf.filled().len() == before
            && self.state.control.is_some()
        {
            if self.state.control_closed() {
                return gone();
            }
            if self.state.deferred.load(std::sync::atomic::Ordering::SeqCst) {
                self.state
                    .ended_at
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert_with(tokio::time::Instant::now);
                return Poll::Ready(Ok(()));
            }
            let mut grace = Box::pin(tokio::time::sleep(CLIENT_GONE_GRACE));
            if grace.as_mut().poll(cx).is_pending() {
                self.grace = Some(grace);
                return Poll::Pending;
            }
            return if self.state.control_closed() { gone() } else { Poll::Ready(Ok(())) };
        }
        polled
    }
}

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

struct MeasuringWriter<W> {
    writer: W,
    command: &'static str,
}

struct MeasuringReader<R> {
    reader: R,
    command: &'static str,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for MeasuringWriter<W> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> std::task::Poll<Result<usize, std::io::Error>> {
        let this = self.get_mut();

        let result = Pin::new(&mut this.writer).poll_write(cx, buf);
        if let Poll::Ready(Ok(bytes_written)) = &result {
            metrics::inc_sent_bytes(*bytes_written, this.command);
        }

        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        Pin::new(&mut this.writer).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        Pin::new(&mut this.writer).poll_shutdown(cx)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for MeasuringReader<R> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.reader).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &result {
            let bytes_read = buf.filled().len();
            metrics::inc_received_bytes(bytes_read, this.command);
        }
        result
    }
}

impl<W> MeasuringWriter<W> {
    fn new(writer: W, command: &'static str) -> MeasuringWriter<W> {
        Self { writer, command }
    }
}

impl<R> MeasuringReader<R> {
    fn new(reader: R, command: &'static str) -> MeasuringReader<R> {
        Self { reader, command }
    }
}

impl<Storage, User> DataCommandExecutor<Storage, User>
where
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
    User: UserDetail + 'static,
{
    async fn execute(mut self, session_arc: SharedSession<Storage, User>) {
        let mut data_cmd_rx = self.data_cmd_rx.take().unwrap();
        let mut data_abort_rx = self.data_abort_rx.take().unwrap();
        // swiftftp patch: the configured timeout (0.24: 5 minutes), and a set-up superseded by a newer PASV or PORT
        // (its channels dropped) ends at once instead of holding its socket until then.
        let mut timeout_delay = Box::pin(tokio::time::sleep(self.stall_timeout));
        let unopened = std::mem::replace(&mut self.stream, DataStream::Failed(crate::server::tls::FailedTls(String::new())));
        let opening = unopened.open(self.stall_timeout, &self.ftps_mode, Arc::clone(&self.transfer));
        tokio::select! {
            opened = opening => self.stream = opened,
            _ = data_abort_rx.recv() => {
                slog::info!(self.logger, "Data channel abort received while opening");
                session_arc.lock().await.data_busy = false;
                return;
            },
            _ = &mut timeout_delay => {
                slog::warn!(self.logger, "Data channel connection timed out while opening");
                session_arc.lock().await.data_busy = false;
                return;
            }
        }
        tokio::select! {
            request = data_cmd_rx.recv() => {
                let Some(DataChanRequest { cmd: command, transfer }) = request else {
                    slog::debug!(self.logger, "Data connection superseded before its command came: closed");
                    let mut session = session_arc.lock().await;
                    session.data_busy = false;
                    return;
                };
                // swiftftp patch: a REST offset applies to the transfer that follows it, whatever its outcome
                // (it was reset only on success, and leaked into the next transfer after a failed one).
                // swiftftp patch: the session is not locked during the transfer (0.24 held it throughout, so ABOR
                // and STAT waited for the end); the control loop holds other commands back meanwhile.
                let start_pos = std::mem::take(&mut session_arc.lock().await.start_pos);
                self.handle_incoming(DataChanMsg::ExternalCommand(command), start_pos).await;
                // The transfer has answered: it ends, and what waited for it goes on.
                drop(transfer);
            },
            _ = data_abort_rx.recv() => {
                self.handle_incoming(DataChanMsg::Abort, 0).await;
            },
            _ = &mut timeout_delay => {
                slog::warn!(self.logger, "Data channel connection timed out");
            }
        };
        let mut session = session_arc.lock().await;
        session.data_busy = false;
    }

    #[tracing_attributes::instrument]
    async fn handle_incoming(self, incoming: DataChanMsg, start_pos: u64) {
        match incoming {
            DataChanMsg::Abort => {
                slog::info!(self.logger, "Data channel abort received");
            }
            DataChanMsg::ExternalCommand(command) => {
                let p = command.path().unwrap_or_default();
                slog::debug!(self.logger, "Data channel command received: {:?}", command; "path" => p);
                self.execute_command(command, start_pos).await;
            }
        }
    }

    #[tracing_attributes::instrument]
    async fn execute_command(self, cmd: DataChanCmd, start_pos: u64) {
        match cmd {
            DataChanCmd::Retr { path } => {
                self.exec_retr(path, start_pos).await;
            }
            DataChanCmd::Stor { path } => {
                self.exec_stor(path, start_pos).await;
            }
            DataChanCmd::Appe { path } => {
                self.exec_appe(path).await;
            }
            DataChanCmd::List { path, .. } => {
                self.exec_list_variant(path, ListCommand::List).await;
            }
            DataChanCmd::Nlst { path } => {
                self.exec_list_variant(path, ListCommand::Nlst).await;
            }
            DataChanCmd::Mlsd { path } => {
                self.exec_mlsd(path).await;
            }
        }
    }

    #[tracing_attributes::instrument]
    async fn exec_retr(self, path: String, start_pos: u64) {
        let path = self.cwd.join(path);
        let tx: Sender<ControlChanMsg> = self.control_msg_tx.clone();
        let mut output = Self::writer(self.stream, "retr").await;

        let start_time = Instant::now();
        let result = self
            .storage
            .get_into((*self.user).as_ref().unwrap(), path.clone(), start_pos, &mut output)
            .await;

        if let Err(err) = output.shutdown().await {
            match err.kind() {
                std::io::ErrorKind::BrokenPipe => {
                    slog::debug!(self.logger, "Output stream was already closed by peer after RETR: {:?}", err);
                }
                std::io::ErrorKind::NotConnected => {
                    slog::debug!(self.logger, "Output stream was already closed after RETR: {:?}", err);
                }
                _ => slog::warn!(self.logger, "Could not shutdown output stream after RETR: {:?}", err),
            }
        }

        let duration = start_time.elapsed();
        match result {
            Ok(bytes_copied) => {
                slog::debug!(
                    self.logger,
                    "Successful RETR {:?}; Duration {}; Bytes copied {}; Transfer speed {}; start_pos={}",
                    &path,
                    HumanDuration(duration),
                    HumanBytes(bytes_copied),
                    TransferSpeed(bytes_copied as f64 / duration.as_secs_f64()),
                    start_pos,
                );

                // only register transfer of a single file transfer
                if start_pos == 0 {
                    metrics::inc_transferred("retr", "success");
                }

                if let Err(err) = tx
                    .send(ControlChanMsg::SentData {
                        bytes: bytes_copied,
                        path: path.to_string_lossy().to_string(),
                    })
                    .await
                {
                    slog::error!(self.logger, "Could not notify control channel of successful RETR: {:?}", err);
                }
            }
            Err(err) => {
                let io_error_kind = err.get_io_error().map(|e| e.kind());

                if io_error_kind == Some(std::io::ErrorKind::BrokenPipe) {
                    if start_pos == 0 {
                        slog::debug!(
                            self.logger,
                            "Client halted RETR transfer (BrokenPipe). Certain FTP clients may do this to download file sections separately, in which case RESTarts may occur and will be logged at DEBUG level. Refer to your FTP client's documentation if this causes issues. Path {:?}; Duration {} (number of bytes copied unknown).",
                            &path,
                            HumanDuration(duration)
                        );
                    } else {
                        slog::debug!(
                            self.logger,
                            "RETR transfer stopped by client (BrokenPipe). Remember, this could be standard for some FTP clients. Path {:?}; Duration {} (number of bytes copied unknown); start_pos {}",
                            &path,
                            HumanDuration(duration),
                            start_pos
                        );
                    }
                } else {
                    slog::debug!(
                        self.logger,
                        "Error during RETR {:?} transfer after {}: {:?}; start_pos={}",
                        &path,
                        HumanDuration(duration),
                        err,
                        start_pos
                    );
                }

                // only register transfer errors for a single file transfer once
                if start_pos == 0 {
                    categorize_and_register_error(&self.logger, &err, "retr");
                }

                if let Err(err) = tx.send(ControlChanMsg::StorageError(err)).await {
                    slog::warn!(self.logger, "Could not notify control channel of error with RETR: {:?}", err);
                }
            }
        }
    }

    #[tracing_attributes::instrument]
    async fn exec_stor(self, path: String, start_pos: u64) {
        let path = self.cwd.join(path);
        let tx = self.control_msg_tx.clone();

        let start_time = Instant::now();
        let (reader, check) = ClientGoneReader::new(
            Self::reader(self.stream, "stor").await,
            self.control_peek.clone(),
            Arc::clone(&self.quit_received),
        );
        let put_result = CLIENT_CHECK
            .scope(check, self.storage.put((*self.user).as_ref().unwrap(), reader, path.clone(), start_pos))
            .await;
        let duration = start_time.elapsed();

        match put_result {
            Ok(bytes) => {
                slog::debug!(
                    self.logger,
                    "Successful STOR {:?}; Duration {}; Bytes copied {}; Transfer speed {}; start_pos={}",
                    &path,
                    HumanDuration(duration),
                    HumanBytes(bytes),
                    TransferSpeed(bytes as f64 / duration.as_secs_f64()),
                    start_pos,
                );

                // only register transfer of a single file transfer
                if start_pos == 0 {
                    metrics::inc_transferred("stor", "success");
                }

                if let Err(err) = tx
                    .send(ControlChanMsg::WrittenData {
                        bytes,
                        path: path.to_string_lossy().to_string(),
                    })
                    .await
                {
                    slog::error!(self.logger, "Could not notify control channel of successful STOR: {:?}", err);
                }
            }
            Err(err) => {
                slog::debug!(self.logger, "Error during STOR transfer after {}: {:?}", HumanDuration(duration), err);

                // only register transfer errors for a single file transfer once
                if start_pos == 0 {
                    categorize_and_register_error(&self.logger, &err, "stor");
                }

                if let Err(err) = tx.send(ControlChanMsg::StorageError(err)).await {
                    slog::error!(self.logger, "Could not notify control channel of error with STOR: {:?}", err);
                }
            }
        }
    }

    #[tracing_attributes::instrument]
    async fn exec_appe(self, path: String) {
        let path = self.cwd.join(&path);
        let tx = self.control_msg_tx.clone();

        // Get current file size, or 0 if file doesn't exist
        let start_pos = match self.storage.metadata((*self.user).as_ref().unwrap(), &path).await {
            Ok(meta) => meta.len(),
            Err(_) => 0,
        };

        let start_time = Instant::now();
        let (reader, check) = ClientGoneReader::new(
            Self::reader(self.stream, "appe").await,
            self.control_peek.clone(),
            Arc::clone(&self.quit_received),
        );
        let put_result = CLIENT_CHECK
            .scope(check, self.storage.put((*self.user).as_ref().unwrap(), reader, path.clone(), start_pos))
            .await;
        let duration = start_time.elapsed();

        match put_result {
            Ok(bytes) => {
                slog::debug!(
                    self.logger,
                    "Successful APPE {:?}; Duration {}; Bytes copied {}; Transfer speed {}; start_pos={}",
                    &path,
                    HumanDuration(duration),
                    HumanBytes(bytes),
                    TransferSpeed(bytes as f64 / duration.as_secs_f64()),
                    start_pos,
                );

                metrics::inc_transferred("appe", "success");

                if let Err(err) = tx
                    .send(ControlChanMsg::WrittenData {
                        bytes,
                        path: path.to_string_lossy().to_string(),
                    })
                    .await
                {
                    slog::error!(self.logger, "Could not notify control channel of successful APPE: {:?}", err);
                }
            }
            Err(err) => {
                slog::debug!(self.logger, "Error during APPE transfer after {}: {:?}", HumanDuration(duration), err);

                categorize_and_register_error(&self.logger, &err, "appe");

                if let Err(err) = tx.send(ControlChanMsg::StorageError(err)).await {
                    slog::error!(self.logger, "Could not notify control channel of error with APPE: {:?}", err);
                }
            }
        }
    }

    #[tracing_attributes::instrument]
    async fn exec_list_variant(self, path: Option<String>, command: ListCommand) {
        let path = self.resolve_path(path);
        let tx = self.control_msg_tx.clone();
        let mut output = Self::writer(self.stream, command.as_lower_str()).await;

        let start_time = Instant::now();

        let list_result = match command {
            ListCommand::List => self.storage.list_fmt((*self.user).as_ref().unwrap(), path.clone()).await,
            ListCommand::Nlst => self
                .storage
                .nlst((*self.user).as_ref().unwrap(), path.clone())
                .await
                .map_err(|e| Error::new(ErrorKind::PermanentDirectoryNotAvailable, e)),
        };

        match list_result {
            Ok(cursor) => {
                slog::debug!(self.logger, "Copying future for {}", command.as_str());
                let mut input = cursor;
                let result = tokio::io::copy(&mut input, &mut output).await;

                if let Err(err) = output.shutdown().await {
                    match err.kind() {
                        std::io::ErrorKind::BrokenPipe => {
                            slog::debug!(self.logger, "Output stream was already closed by peer after {}: {:?}", command.as_str(), err);
                        }
                        std::io::ErrorKind::NotConnected => {
                            slog::debug!(self.logger, "Output stream was already closed after {}: {:?}", command.as_str(), err);
                        }
                        _ => slog::warn!(self.logger, "Could not shutdown output stream after {}: {:?}", command.as_str(), err),
                    }
                }
                let duration = start_time.elapsed();

                match result {
                    Ok(bytes) => {
                        slog::debug!(
                            self.logger,
                            "Successful LIST {:?}; Duration {}; Bytes copied {}; Transfer speed {}",
                            path,
                            HumanDuration(duration),
                            HumanBytes(bytes),
                            TransferSpeed(bytes as f64 / duration.as_secs_f64()),
                        );
                        metrics::inc_transferred(command.as_lower_str(), "success");
                        if let Err(err) = tx.send(ControlChanMsg::DirectorySuccessfullyListed).await {
                            slog::error!(self.logger, "Could not notify control channel of error with {}: {:?}", command.as_str(), err);
                        }
                    }
                    Err(e) => {
                        let duration = start_time.elapsed();
                        slog::warn!(
                            self.logger,
                            "Failed to send directory list for path {:?} ({} command) after {}: {:?}",
                            path,
                            command.as_str(),
                            HumanDuration(duration),
                            e,
                        );

                        let err = Error::from(e);
                        categorize_and_register_error(&self.logger, &err, command.as_lower_str());
                    }
                }
            }
            Err(err) => {
                let duration = start_time.elapsed();

                slog::debug!(
                    self.logger,
                    "Failed to retrieve directory list for path {:?} ({} command) from storage backend after {}: {:?}",
                    path,
                    command.as_str(),
                    HumanDuration(duration),
                    err,
                );

                categorize_and_register_error(&self.logger, &err, command.as_lower_str());

                if let Err(err) = tx.send(ControlChanMsg::StorageError(err)).await {
                    slog::error!(self.logger, "Could not notify control channel of error with {}: {:?}", command.as_str(), err);
                }
            }
        }
    }

    #[tracing_attributes::instrument]
    async fn exec_mlsd(self, path: Option<String>) {
        let path = self.resolve_path(path);
        let tx = self.control_msg_tx.clone();
        let mut output = Self::writer(self.stream, "mlsd").await;

        let start_time = Instant::now();

        let list_result = self.storage.list((*self.user).as_ref().unwrap(), path.clone()).await;

        match list_result {
            Ok(files) => {
                let mut buffer = String::new();
                for file_info in files {
                    let filename = file_info
                        .path
                        .as_path()
                        .components()
                        .next_back()
                        .map(|component| component.as_os_str().to_string_lossy())
                        .unwrap_or("unknown".into());

                    let facts_str = crate::server::controlchan::commands::mlst::format_facts(&file_info.metadata);
                    let line = format!("{} {}", facts_str, filename);
                    buffer.push_str(&line);
                    buffer.push_str("\r\n");
                }

                // Send the formatted data
                let mut input = std::io::Cursor::new(buffer.into_bytes());
                let result = tokio::io::copy(&mut input, &mut output).await;

                if let Err(err) = output.shutdown().await {
                    match err.kind() {
                        std::io::ErrorKind::BrokenPipe => {
                            slog::debug!(self.logger, "Output stream was already closed by peer after MLSD: {:?}", err);
                        }
                        std::io::ErrorKind::NotConnected => {
                            slog::debug!(self.logger, "Output stream was already closed after MLSD: {:?}", err);
                        }
                        _ => slog::warn!(self.logger, "Could not shutdown output stream after MLSD: {:?}", err),
                    }
                }

                let duration = start_time.elapsed();

                match result {
                    Ok(bytes) => {
                        slog::debug!(
                            self.logger,
                            "Successful MLSD {:?}; Duration {}; Bytes copied {}; Transfer speed {}",
                            path,
                            HumanDuration(duration),
                            HumanBytes(bytes),
                            TransferSpeed(bytes as f64 / duration.as_secs_f64())
                        );

                        metrics::inc_transferred("mlsd", "success");

                        if let Err(err) = tx.send(ControlChanMsg::DirectorySuccessfullyListed).await {
                            slog::error!(self.logger, "Could not notify control channel of successful MLSD: {:?}", err);
                        }
                    }
                    Err(err) => {
                        slog::warn!(
                            self.logger,
                            "Failed to copy MLSD data to client after {}. Error: {:?}",
                            HumanDuration(duration),
                            err
                        );
                        if let Err(err) = tx.send(ControlChanMsg::WriteFailed).await {
                            slog::error!(self.logger, "Could not notify control channel of failed MLSD: {:?}", err);
                        }
                    }
                }
            }
            Err(err) => {
                let duration = start_time.elapsed();
                slog::debug!(
                    self.logger,
                    "Failed to retrieve directory list for path {:?} (MLSD command) from storage backend after {}: {:?}",
                    path,
                    HumanDuration(duration),
                    err,
                );

                categorize_and_register_error(&self.logger, &err, "mlsd");

                if let Err(err) = tx.send(ControlChanMsg::StorageError(err)).await {
                    slog::error!(self.logger, "Could not notify control channel of error with MLSD: {:?}", err);
                }
            }
        }
    }

    #[tracing_attributes::instrument(skip(stream))]
    async fn writer(stream: DataStream, command: &'static str) -> Box<dyn AsyncWrite + Send + Unpin + Sync> {
        match stream {
            DataStream::Plain(socket) => Box::new(MeasuringWriter::new(socket, command)),
            DataStream::Tls(tls_stream) => Box::new(MeasuringWriter::new(tls_stream, command)),
            DataStream::Failed(failed) => Box::new(failed),
            DataStream::Unopened(_) => Box::new(crate::server::tls::FailedTls("the data connection was not opened".to_owned())),
        }
    }

    #[tracing_attributes::instrument(skip(stream))]
    async fn reader(stream: DataStream, command: &'static str) -> Box<dyn AsyncRead + Send + Unpin + Sync> {
        match stream {
            DataStream::Plain(socket) => Box::new(MeasuringReader::new(socket, command)),
            DataStream::Tls(tls_stream) => Box::new(MeasuringReader::new(
                EmptyUploadEof {
                    inner: tls_stream,
                    read_any: false,
                },
                command,
            )),
            DataStream::Failed(failed) => Box::new(failed),
            DataStream::Unopened(_) => Box::new(crate::server::tls::FailedTls("the data connection was not opened".to_owned())),
        }
    }

    fn resolve_path(&self, path: Option<String>) -> PathBuf {
        match path {
            Some(path) => {
                if path == "." {
                    self.cwd.clone()
                } else {
                    self.cwd.join(path)
                }
            }
            None => self.cwd.clone(),
        }
    }
}

/// Starts processing for the data connection. This will spawn a new async task that will wait for
/// a command from the control channel after which it will start to process the specified socket
/// that is connected to the client.
///
/// logger: logger set up with needed context for use by the data channel.
/// session_arc: the user session that is also shared with the control channel.
/// socket: the data socket we'll be working with.
#[tracing_attributes::instrument]
pub async fn spawn_processing<Storage, User>(logger: slog::Logger, session_arc: SharedSession<Storage, User>, socket: TcpStream)
where
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
    User: UserDetail + 'static,
{
    spawn_processing_checked(logger, session_arc, socket, true).await
}

/// swiftftp patch: [`spawn_processing`] for a data connection this server opened itself (PORT), whose peer is the
/// address the client named: the check that the peer is the control connection's client applies only to
/// connections the server accepted (and would refuse an FXP target that `permit_foreign_addresses` allowed).
pub async fn spawn_processing_opened<Storage, User>(logger: slog::Logger, session_arc: SharedSession<Storage, User>, socket: TcpStream)
where
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
    User: UserDetail + 'static,
{
    spawn_processing_checked(logger, session_arc, socket, false).await
}

async fn spawn_processing_checked<Storage, User>(logger: slog::Logger, session_arc: SharedSession<Storage, User>, mut socket: TcpStream, check_peer: bool)
where
    Storage: StorageBackend<User> + 'static,
    Storage::Metadata: Metadata,
    User: UserDetail + 'static,
{
    // swiftftp patch: no Nagle delay on data connections: the last small segment of a transfer would otherwise
    // wait for the client's delayed ACK (~40 ms per file).
    let _ = socket.set_nodelay(true);

    // swiftftp patch: behind a load balancer that forwards the passive ports, the TCP peer is the balancer: the
    // server's `DataPeer` says which client the connection is (from a header the balancer sent first), and that
    // client is what the check below compares with the control connection's.
    let data_peer = if check_peer { session_arc.lock().await.data_peer.clone() } else { None };
    let peer = match (socket.peer_addr(), data_peer) {
        (Ok(peer), Some(data_peer)) => match data_peer.client_of(&mut socket, peer).await {
            Ok(client) => Ok(client),
            Err(err) => {
                slog::warn!(logger, "Refusing a data connection from {}: {}", peer, err);
                let _ = socket.shutdown().await;
                let (generation, tx) = {
                    let session = session_arc.lock().await;
                    (session.passive_generation, session.control_msg_tx.clone())
                };
                if let Some(tx) = tx {
                    crate::server::controlchan::commands::passive_common::never_opened(&session_arc, generation, &tx).await;
                }
                return;
            }
        },
        (peer, _) => peer,
    };

    // We introduce a block scope here to keep the lock on the session minimal. We basically copy the needed info
    // out and then unlock.

    let command_executor = {
        let mut session = session_arc.lock().await;

        match peer {
            Ok(datachan_addr) => {
                let controlchan_ip = session.source.ip();
                if check_peer && controlchan_ip != datachan_addr.ip() {
                    if let Err(err) = socket.shutdown().await {
                        slog::error!(
                            logger,
                            "Couldn't close datachannel for IP ({}) that does not match the IP({}) of the control channel: {:?}",
                            datachan_addr.ip(),
                            controlchan_ip,
                            err
                        )
                    } else {
                        slog::warn!(
                            logger,
                            "Closing datachannel for IP ({}) that does not match the IP({}) of the control channel.",
                            datachan_addr.ip(),
                            controlchan_ip
                        )
                    }
                    // swiftftp patch: the transfer waiting for this connection gets its 425 (it waited for ever).
                    let (generation, tx) = (session.passive_generation, session.control_msg_tx.clone());
                    drop(session);
                    if let Some(tx) = tx {
                        crate::server::controlchan::commands::passive_common::never_opened(&session_arc, generation, &tx).await;
                    }
                    return;
                }
            }
            Err(err) => {
                // swiftftp patch: a connection reset before it was accepted has no peer address; the transfer
                // waiting for it gets its 425 instead of waiting for ever (the session with it).
                slog::error!(logger, "Couldn't determine data channel address: {:?}", err);
                let (generation, tx) = (session.passive_generation, session.control_msg_tx.clone());
                drop(session);
                if let Some(tx) = tx {
                    crate::server::controlchan::commands::passive_common::never_opened(&session_arc, generation, &tx).await;
                }
                return;
            }
        }

        let username = session.username.as_ref().cloned().unwrap_or_else(|| String::from("unknown"));
        let logger = logger.new(slog::o!("username" => username));
        let control_msg_tx: Sender<ControlChanMsg> = match session.control_msg_tx {
            Some(ref tx) => tx.clone(),
            None => {
                slog::error!(logger, "Control loop message sender expected to be set up. Aborting data loop.");
                return;
            }
        };
        let data_cmd_rx = match session.data_cmd_rx.take() {
            Some(rx) => rx,
            None => {
                slog::error!(logger, "Data loop command receiver expected to be set up. Aborting data loop.");
                return;
            }
        };
        let data_abort_rx = match session.data_abort_rx.take() {
            Some(rx) => rx,
            None => {
                slog::error!(logger, "Data loop abort receiver expected to be set up. Aborting data loop.");
                return;
            }
        };
        let ftps_mode = if session.data_tls { session.ftps_config.clone() } else { FtpsConfig::Off };
        let command_executor = DataCommandExecutor {
            user: session.user.clone(),
            stream: DataStream::Unopened(socket),
            control_msg_tx,
            storage: Arc::clone(&session.storage),
            cwd: session.cwd.clone(),
            ftps_mode,
            logger,
            data_abort_rx: Some(data_abort_rx),
            data_cmd_rx: Some(data_cmd_rx),
            control_peek: session.control_peek.clone(),
            quit_received: Arc::clone(&session.quit_received),
            stall_timeout: session.data_stall_timeout,
            transfer: Arc::clone(&session.transfer),
        };

        // The control channel need to know if the data channel is busy so that it doesn't time out
        // while the session is still in progress.
        session.data_busy = true;

        command_executor
    };

    tokio::spawn(command_executor.execute(session_arc));
}

use std::time::Duration;

struct HumanDuration(Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total_secs = self.0.as_secs();

        let hours = total_secs / 3600;
        let minutes = (total_secs % 3600) / 60;
        let seconds = total_secs % 60;
        let millis = self.0.subsec_millis();

        if hours > 0 {
            write!(f, "{}h {}m {}s {}ms", hours, minutes, seconds, millis)
        } else if minutes > 0 {
            write!(f, "{}m {}s {}ms", minutes, seconds, millis)
        } else if seconds > 0 {
            write!(f, "{}s {}ms", seconds, millis)
        } else {
            write!(f, "{}ms", millis)
        }
    }
}

struct HumanBytes(u64);

impl fmt::Display for HumanBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const KIB: u64 = 1024;
        const MIB: u64 = KIB * 1024;
        const GIB: u64 = MIB * 1024;
        const TIB: u64 = GIB * 1024;

        if self.0 >= TIB {
            write!(f, "{:.2} TiB", (self.0 as f64) / (TIB as f64))
        } else if self.0 >= GIB {
            write!(f, "{:.2} GiB", (self.0 as f64) / (GIB as f64))
        } else if self.0 >= MIB {
            write!(f, "{:.2} MiB", (self.0 as f64) / (MIB as f64))
        } else if self.0 >= KIB {
            write!(f, "{:.2} KiB", (self.0 as f64) / (KIB as f64))
        } else {
            write!(f, "{} B", self.0)
        }
    }
}

struct TransferSpeed(f64);

impl fmt::Display for TransferSpeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kb_per_second = self.0 / 1024.0;
        if kb_per_second < 1.0 {
            return write!(f, "{:.2} B/s", self.0);
        }

        let mb_per_second = kb_per_second / 1024.0;
        if mb_per_second < 1.0 {
            return write!(f, "{:.2} KB/s", kb_per_second);
        }

        let gb_per_second = mb_per_second / 1024.0;
        if gb_per_second < 1.0 {
            return write!(f, "{:.2} MB/s", mb_per_second);
        }

        write!(f, "{:.2} GB/s", gb_per_second)
    }
}

// Collapse the StorageError kind into a client-error, server-error or unknown-error.
// The PermissionDenied is seperated because it depends on specifics whether it is a server or client error
// Unknown errors should not happen but need to be handled
fn categorize_and_register_error(logger: &slog::Logger, err: &Error, command: &'static str) {
    match err.kind() {
        ErrorKind::PermanentFileNotAvailable => metrics::inc_transferred(command, "client-error"),
        ErrorKind::TransientFileNotAvailable | ErrorKind::LocalError => metrics::inc_transferred(command, "server-error"),
        ErrorKind::PermissionDenied => metrics::inc_transferred(command, "permission-error"),
        ErrorKind::ConnectionClosed => {
            if let Some(io_error) = err.get_io_error() {
                match io_error.kind() {
                    std::io::ErrorKind::ConnectionReset => metrics::inc_transferred(command, "client-interrupted"),
                    std::io::ErrorKind::BrokenPipe => {
                        // Clients like Cyberduck appear to close the connection prematurely for chunked downloading, generating many "errors"
                        if command != "retr" {
                            metrics::inc_transferred(command, "client-interrupted");
                        }
                    }
                    std::io::ErrorKind::ConnectionAborted => metrics::inc_transferred(command, "network-error"), // Could be a network issue
                    _ => {
                        slog::debug!(logger, "Unmapped ConnectionClosed io error: {:?}", io_error);
                        metrics::inc_transferred(command, "server-error")
                    }
                }
            }
        }
        _ => {
            slog::debug!(logger, "Unmapped error: {:?}", err);
            metrics::inc_transferred(command, "unknown-error")
        }
    }
}

#[derive(Debug)]
enum ListCommand {
    List,
    Nlst,
}

impl ListCommand {
    fn as_str(&self) -> &'static str {
        match self {
            ListCommand::List => "LIST",
            ListCommand::Nlst => "NLST",
        }
    }
    fn as_lower_str(&self) -> &'static str {
        match self {
            ListCommand::List => "list",
            ListCommand::Nlst => "nlst",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A client that sends `QUIT` and closes: the check must not see it gone while the control loop holds the
    /// `QUIT` it took from the socket but has not flagged yet (swiftftp patch, `QuitReceived`).
    #[test]
    fn a_quit_read_but_not_yet_flagged_is_not_a_client_gone() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let server = Arc::new(server);
        client.write_all(b"QUIT\r\n").unwrap();
        drop(client);
        let quit = crate::server::session::QuitReceived::default();
        let state = ClientGoneState {
            control: Some(Arc::clone(&server)),
            quit: Arc::clone(&quit),
            deferred: std::sync::atomic::AtomicBool::new(false),
            ended_at: std::sync::Mutex::new(None),
            gone: std::sync::atomic::AtomicBool::new(false),
        };
        // The control loop: takes the QUIT from the socket under the lock, and flags it a little later.
        let (took, taken) = std::sync::mpsc::channel();
        let control_loop = {
            let quit = Arc::clone(&quit);
            let server = Arc::clone(&server);
            std::thread::spawn(move || {
                let mut seen = quit.lock().unwrap();
                let mut line = [0u8; 6];
                (&*server).read_exact(&mut line).unwrap();
                took.send(()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(100));
                *seen = true;
            })
        };
        taken.recv().unwrap();
        // The socket now holds only the client's FIN: without the lock this answered "closed".
        assert!(!state.control_closed(), "a client that sent QUIT taken for one that went away");
        control_loop.join().unwrap();
        assert!(!state.control_closed());
    }

    /// A connected pair of loopback sockets: (our end, the client's end).
    fn pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (listener.accept().unwrap().0, client)
    }

    /// A short look that found the client there can be followed by a longer one that finds it gone (the commit
    /// that overlapped the short one did not happen); a gone verdict is final.
    #[tokio::test(start_paused = true)]
    async fn a_longer_look_after_a_short_one_can_find_the_client_gone() {
        use tokio::io::AsyncReadExt;
        let (control, control_client) = pair();
        let (data, data_client) = pair();
        control.set_nonblocking(true).unwrap();
        data.set_nonblocking(true).unwrap();
        let (mut reader, check) = ClientGoneReader::new(
            tokio::net::TcpStream::from_std(data).unwrap(),
            Some(Arc::new(control)),
            crate::server::session::QuitReceived::default(),
        );
        check.0.deferred.store(true, std::sync::atomic::Ordering::SeqCst);
        drop(data_client);
        let mut all = Vec::new();
        reader.read_to_end(&mut all).await.unwrap();
        assert!(check.client_stayed_by(std::time::Duration::from_millis(1)).await);
        drop(control_client);
        // The end reaches our socket through the loopback in real time, not in the paused clock's.
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!check.client_stayed().await);
        assert!(!check.client_stayed_by(std::time::Duration::ZERO).await);
    }

    /// The data ends first and the control connection a moment later, within the grace: the client is gone;
    /// a control connection still open after the grace: the client stayed. Paused time makes "a moment" exact.
    #[tokio::test(start_paused = true)]
    async fn a_control_connection_that_closes_within_the_grace_after_the_data_is_a_client_gone() {
        use tokio::io::AsyncReadExt;
        for (closes_after, gone) in [(Some(CLIENT_GONE_GRACE / 2), true), (None, false)] {
            let (control, control_client) = pair();
            let (data, data_client) = pair();
            // Only peeked at, never waited on (the session's duplicate of its control socket is the same).
            control.set_nonblocking(true).unwrap();
            data.set_nonblocking(true).unwrap();
            let (mut reader, check) = ClientGoneReader::new(
                tokio::net::TcpStream::from_std(data).unwrap(),
                Some(Arc::new(control)),
                crate::server::session::QuitReceived::default(),
            );
            check.0.deferred.store(true, std::sync::atomic::Ordering::SeqCst);
            drop(data_client);
            let mut all = Vec::new();
            reader.read_to_end(&mut all).await.unwrap();
            let verdict = tokio::spawn({
                let check = check.clone();
                async move { check.client_stayed().await }
            });
            if let Some(after) = closes_after {
                tokio::time::sleep(after).await;
                drop(control_client);
                // The end reaches our socket through the loopback in real time, not in the paused clock's.
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            assert_eq!(verdict.await.unwrap(), !gone, "control closed after {closes_after:?}");
        }
    }
}
