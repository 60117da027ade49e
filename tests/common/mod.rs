//! Test harness: the real test Swift (started by `tests/swift-lab.sh start`), a gateway started in-process on
//! 127.0.0.1:0, a real FTP client (suppaftp), and a raw control-channel client for exact reply checks.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

pub mod faulty;
pub mod process;
pub mod swift;

use clap::Parser;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use suppaftp::FtpStream;
use swiftftp::cli::Cli;
use swiftftp::config::Config;

/// The auth URL of the test Swift (`tests/swift-lab.sh env`).
pub fn auth_url() -> String {
    std::env::var("SWIFTFTP_TEST_AUTH_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8080/auth/v1.0".to_owned())
}

/// The test account's current token, straight from the v1 auth service (tempauth hands the same one out while
/// it is valid): what must never show in a log or a cache.
pub fn swift_token() -> String {
    let url = auth_url();
    let host = url.split('/').nth(2).unwrap();
    let path = format!("/{}", url.splitn(4, '/').nth(3).unwrap());
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nX-Auth-User: {USER}\r\nX-Auth-Key: {KEY}\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-auth-token")
                .then(|| v.trim().to_owned())
        })
        .unwrap()
}

/// The admin login of the test account.
pub const USER: &str = "test:tester";
/// Its key.
pub const KEY: &str = "testing";

/// An empty configuration file, so that no `/etc/swiftftp.conf` of the machine running the tests applies.
fn empty_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/empty.conf")
}

/// A gateway serving in a thread of its own until dropped.
pub struct TestGateway {
    pub addr: SocketAddr,
    /// The implicit FTPS address (`--tls-implicit-port`), if served.
    pub implicit_tls: Option<SocketAddr>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl TestGateway {
    /// A gateway in front of the test Swift.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A gateway with extra command-line arguments (`-a` and `--config` may be overridden by them).
    pub fn start_with(extra: &[&str]) -> Self {
        swift::ensure_lab();
        let config_file = empty_config();
        let auth = auth_url();
        let mut args = vec!["swiftftp", "-f", "-p", "0"];
        if !extra.contains(&"--config") {
            args.extend(["--config", config_file.to_str().unwrap()]);
        }
        if !extra.contains(&"-a") {
            args.extend(["-a", &auth]);
        }
        args.extend_from_slice(extra);
        let config = Config::from_cli(Cli::try_parse_from(args).unwrap()).unwrap();
        let bound = swiftftp::server::bind(config).unwrap();
        let addr = bound.local_addr();
        let implicit_tls = bound.implicit_tls_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(bound.serve(async {
                let _ = rx.await;
            }))
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "the gateway did not start listening on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            addr,
            implicit_tls,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    /// A logged-in suppaftp client.
    pub fn ftp(&self) -> FtpStream {
        self.ftp_as(USER, KEY)
    }

    /// A suppaftp client logged in as another user.
    pub fn ftp_as(&self, user: &str, key: &str) -> FtpStream {
        let mut ftp = FtpStream::connect(self.addr).unwrap();
        // A gateway that never answers fails the test instead of hanging it (suppaftp waits for ever by default).
        ftp.get_ref()
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        ftp.login(user, key).unwrap();
        // suppaftp would rewrite line ends of uploads in its default ASCII mode.
        ftp.transfer_type(suppaftp::types::FileType::Binary)
            .unwrap();
        ftp
    }

    /// Runs lftp (the Debian package) logged in as the test admin: `script` is its `-e` command list; `quit` and
    /// `set cmd:fail-exit yes` (the first failing command ends it with a failure) are added.
    pub fn lftp(&self, script: &str) -> std::process::Output {
        self.lftp_as(USER, KEY, script)
    }

    /// [`TestGateway::lftp`] as another user.
    pub fn lftp_as(&self, user: &str, key: &str, script: &str) -> std::process::Output {
        std::process::Command::new("lftp")
            .args([
                "-e",
                &format!("set cmd:fail-exit yes; set net:max-retries 1; {script}; quit"),
                "-u",
                &format!("{user},{key}"),
                "-p",
                &self.addr.port().to_string(),
                "127.0.0.1",
            ])
            .output()
            .unwrap()
    }

    /// An `ftp://` URL of `path` on this gateway with the test admin's credentials, for curl.
    pub fn curl_url(&self, path: &str) -> String {
        format!(
            "ftp://{}:{}@127.0.0.1:{}{path}",
            USER.replace(':', "%3A"),
            KEY,
            self.addr.port()
        )
    }

    /// A raw control connection, greeting read, not logged in.
    pub fn raw(&self) -> RawFtp {
        RawFtp::connect(self.addr)
    }

    /// A raw control connection, logged in.
    pub fn raw_logged_in(&self) -> RawFtp {
        RawFtp::logged_in(self.addr)
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        // libunftp waits for sessions to end within its grace period; tests close theirs before dropping.
        if let Some(t) = self.thread.take() {
            // A gateway that panicked or failed fails the test that ran it (unless that test is failing already).
            let outcome = t.join();
            if !std::thread::panicking() {
                match outcome {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => panic!("the gateway stopped with an error: {e:#}"),
                    Err(_) => panic!("the gateway thread panicked"),
                }
            }
        }
    }
}

/// A TCP connection to `addr` from `source` (bound before connecting).
pub fn tcp_from(source: std::net::IpAddr, addr: SocketAddr) -> TcpStream {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(source, 0).into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    socket.into()
}

/// A line-level FTP control connection, for checking exact replies (codes, count, order).
pub struct RawFtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RawFtp {
    pub fn connect(addr: SocketAddr) -> Self {
        Self::connect_after(addr, b"")
    }

    /// Connects, sends `preamble` (a PROXY protocol header) before anything else, and reads the greeting.
    pub fn connect_after(addr: SocketAddr, preamble: &[u8]) -> Self {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(preamble).unwrap();
        Self::from_stream(stream)
    }

    /// [`RawFtp::connect_after`] from `source`: a load balancer's address (another loopback address), so that
    /// the data connections, from the default one, are the client's own.
    pub fn connect_from(source: std::net::IpAddr, addr: SocketAddr, preamble: &[u8]) -> Self {
        let mut stream = tcp_from(source, addr);
        stream.write_all(preamble).unwrap();
        Self::from_stream(stream)
    }

    /// Takes a connected stream and reads the greeting.
    pub fn from_stream(stream: TcpStream) -> Self {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut raw = Self {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        let (code, _) = raw.reply();
        assert_eq!(code, 220);
        raw
    }

    /// Connects to `addr` and logs in as the test admin.
    pub fn logged_in(addr: SocketAddr) -> Self {
        let mut raw = Self::connect(addr);
        assert_eq!(raw.cmd(&format!("USER {USER}")).0, 331);
        assert_eq!(raw.cmd(&format!("PASS {KEY}")).0, 230);
        raw
    }

    /// The client side's address (as the gateway's logs name the client).
    pub fn local_addr(&self) -> SocketAddr {
        self.writer.local_addr().unwrap()
    }

    /// Reads one reply (multi-line replies joined with `\n`).
    pub fn reply(&mut self) -> (u32, String) {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.len() >= 4, "short reply line {line:?}");
        let code: u32 = line[..3].parse().unwrap();
        let mut text = line[4..].trim_end().to_owned();
        if line.as_bytes()[3] == b'-' {
            loop {
                let mut next = String::new();
                self.reader.read_line(&mut next).unwrap();
                assert!(
                    !next.is_empty(),
                    "connection closed inside a multi-line reply"
                );
                let end = next.len() >= 4 && next[..3] == line[..3] && next.as_bytes()[3] == b' ';
                text.push('\n');
                text.push_str(next.trim_end());
                if end {
                    break;
                }
            }
        }
        (code, text)
    }

    /// Sends a command line and reads its reply.
    pub fn cmd(&mut self, line: &str) -> (u32, String) {
        self.send(line);
        self.reply()
    }

    /// Sends raw bytes (no line end added): malformed commands, invalid UTF-8.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// Sends `bytes` as TCP urgent data (Telnet's Synch sends its DM that way).
    pub fn send_urgent(&mut self, bytes: &[u8]) {
        socket2::SockRef::from(&self.writer)
            .send_out_of_band(bytes)
            .unwrap();
    }

    /// Reads one reply, or `None` if the server closed the connection instead.
    pub fn try_reply(&mut self) -> Option<(u32, String)> {
        let mut line = String::new();
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(_) => line.push_str(&String::from_utf8_lossy(&buf)),
        }
        let code: u32 = line.get(..3)?.parse().ok()?;
        let mut text = line.get(4..).unwrap_or("").trim_end().to_owned();
        if line.as_bytes().get(3) == Some(&b'-') {
            loop {
                let mut next = Vec::new();
                if self.reader.read_until(b'\n', &mut next).ok()? == 0 {
                    return None;
                }
                let next = String::from_utf8_lossy(&next).into_owned();
                text.push('\n');
                text.push_str(next.trim_end());
                if next.len() >= 4 && next[..3] == line[..3] && next.as_bytes()[3] == b' ' {
                    break;
                }
            }
        }
        Some((code, text))
    }

    pub fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
    }

    /// Sends `EPSV`: the data port the server opened.
    pub fn epsv_port(&mut self) -> u16 {
        let (code, text) = self.cmd("EPSV");
        assert_eq!(code, 229, "{text}");
        text.split("|||")
            .nth(1)
            .and_then(|s| s.split('|').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("cannot parse EPSV reply {text:?}"))
    }

    /// Opens a passive data connection (EPSV).
    pub fn data(&mut self) -> TcpStream {
        let port = self.epsv_port();
        let ip = self.writer.peer_addr().unwrap().ip();
        let stream = TcpStream::connect((ip, port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream
    }

    /// A passive data connection whose receive buffer is small and fixed (no autotuning), so that the gateway can
    /// only be a little ahead of what the client read.
    pub fn data_small_window(&mut self) -> TcpStream {
        let port = self.epsv_port();
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(64 * 1024).unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        socket.connect(&addr.into()).unwrap();
        let stream: TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream
    }

    /// Runs a data command: the replies in order, and the bytes the server sent on the data connection.
    pub fn transfer(&mut self, line: &str) -> (Vec<(u32, String)>, Vec<u8>) {
        let mut data = self.data();
        self.send(line);
        let first = self.reply();
        let mut replies = vec![first.clone()];
        let mut bytes = Vec::new();
        if first.0 == 150 || first.0 == 125 {
            data.read_to_end(&mut bytes).unwrap();
            replies.push(self.reply());
        }
        (replies, bytes)
    }

    /// Runs an upload command (STOR, APPE, STOU) sending `payload` on a data connection; the final reply code
    /// (or the first, when it is not `150`). Also checks that no second reply follows.
    pub fn upload(&mut self, command: &str, payload: &[u8]) -> u32 {
        let mut data = self.data();
        self.send(command);
        let (code, _) = self.reply();
        if code != 150 {
            return code;
        }
        // The server may refuse mid-way and close the data connection: a failed write is expected then.
        let _ = data.write_all(payload);
        drop(data);
        let code = self.reply().0;
        assert!(
            self.silent_for(Duration::from_millis(100)),
            "{command}: a second reply"
        );
        code
    }

    /// Whether the server sends anything more within `wait` (there should be exactly one reply per command).
    pub fn silent_for(&mut self, wait: Duration) -> bool {
        let stream = self.reader.get_ref();
        stream.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 1];
        let silent = match self.reader.get_ref().peek(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        self.reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        silent && self.reader.buffer().is_empty()
    }
}

/// `len` pseudo-random bytes (xorshift; the same every time): content no layer can compress or mistake.
pub fn random(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9E37_79B9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Hex MD5 of `bytes`.
pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(bytes))
}

/// The stdout of a client that must have succeeded (its output in the panic message otherwise).
pub fn ok(out: std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A directory for a test's local files, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh, empty directory named after `name` and this process.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("swiftftp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
