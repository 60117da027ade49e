//! The real binary as an operator runs it: daemon mode, the pid file lock, the privilege drop (read back from
//! /proc), log reopening on SIGHUP, no secret in any log, graceful and immediate shutdown, and the metrics and
//! health listener.

use crate::common::faulty::{FaultProxy, swift_addr};
use crate::common::process::{BIN, Foreground, base_args, free_port, http_get, metric, wait_for};
use crate::common::swift::Fixture;
use crate::common::{KEY, RawFtp, USER, auth_url, swift_token};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A scratch directory, removed on drop; world-writable so a dropped-privilege daemon can reopen its log there.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("swiftftp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        Self(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A daemon started by the test; stopped by its pid (SIGKILL) if still running at the end.
struct Daemon {
    pid: Pid,
    ftp: SocketAddr,
    pid_file: PathBuf,
}

impl Daemon {
    /// Starts `swiftftp` in daemon mode; the starting process must exit 0 once the daemon serves.
    fn start(port: u16, pid_file: &Path, extra: &[&str]) -> Self {
        let mut args = base_args(port, &auth_url());
        args.extend(["--pid-file".into(), pid_file.to_string_lossy().into_owned()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let out = run_bounded(Command::new(BIN).args(&args), Duration::from_secs(30));
        assert!(
            out.status.success(),
            "daemon start failed: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let pid: i32 = std::fs::read_to_string(pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        Self {
            pid: Pid::from_raw(pid),
            ftp: SocketAddr::from(([127, 0, 0, 1], port)),
            pid_file: pid_file.to_owned(),
        }
    }

    fn alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
            && !std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
                .unwrap_or_default()
                .contains(") Z ")
    }

    fn signal(&self, s: Signal) {
        kill(self.pid, s).unwrap();
    }

    /// Waits for the daemon to be gone; false if it still runs after `limit`.
    fn wait_gone(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.alive() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    fn raw_logged_in(&self) -> RawFtp {
        RawFtp::logged_in(self.ftp)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.alive() {
            let _ = kill(self.pid, Signal::SIGKILL);
        }
    }
}

/// Runs a command that must end by itself within `limit` (the starting process of daemon mode).
fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Uid and gid lines of every thread of `pid`.
fn ids_of_all_threads(pid: Pid) -> Vec<(String, String)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|t| {
            let status = std::fs::read_to_string(t.unwrap().path().join("status")).unwrap();
            let field = |name: &str| {
                status
                    .lines()
                    .find(|l| l.starts_with(name))
                    .unwrap()
                    .to_owned()
            };
            (field("Uid:"), field("Gid:"))
        })
        .collect()
}

#[test]
fn daemon_mode_locks_its_pid_file_drops_privileges_counts_reopens_logs_and_leaks_no_secret() {
    let fx = Fixture::new("daemon");
    let dir = Scratch::new("daemon");
    let (port, metrics_port) = (free_port(), free_port());
    let metrics_addr = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    let log = dir.join("swiftftp.log");
    let pid_file = dir.join("swiftftp.pid");
    let root = nix::unistd::geteuid().is_root();
    let mut extra = vec![
        "-v".to_owned(),
        "--log-file".into(),
        log.to_string_lossy().into_owned(),
        "--metrics-address".into(),
        metrics_addr.to_string(),
    ];
    if root {
        extra.extend(["--uid".into(), "nobody".into()]);
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let daemon = Daemon::start(port, &pid_file, &extra);

    // Detached: not our child, in a session of its own (whose leader, the first fork, is gone).
    let stat_of = |pid: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = stat.rsplit_once(')').unwrap().1.to_owned();
        after
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let fields = stat_of(daemon.pid.as_raw() as u32);
    let ours = stat_of(std::process::id());
    assert_ne!(fields[1], std::process::id().to_string(), "parent pid");
    assert_ne!(fields[3], ours[3], "session id");

    if root {
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        for (uid, gid) in ids_of_all_threads(daemon.pid) {
            let u = nobody.uid.to_string();
            let g = nobody.gid.to_string();
            assert_eq!(uid, format!("Uid:\t{u}\t{u}\t{u}\t{u}"));
            assert_eq!(gid, format!("Gid:\t{g}\t{g}\t{g}\t{g}"));
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid)).unwrap();
        let groups = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
        assert_eq!(groups.trim(), format!("Groups:\t{}", nobody.gid).trim());
    } else {
        // CI runs as root: there the privilege drop is checked; elsewhere skipping it must be asked for.
        assert!(
            std::env::var_os("SWIFTFTP_TEST_SKIP_ROOT_ONLY").is_some(),
            "not root: the privilege drop cannot be checked; set SWIFTFTP_TEST_SKIP_ROOT_ONLY=1 to skip it knowingly"
        );
        eprintln!("not root: the privilege drop is not exercised (SWIFTFTP_TEST_SKIP_ROOT_ONLY)");
    }

    // A second instance with the same pid file refuses to start and names the first.
    let mut second = base_args(free_port(), &auth_url());
    second.extend(["--pid-file".into(), pid_file.to_string_lossy().into_owned()]);
    let out = run_bounded(Command::new(BIN).args(&second), Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("already running (pid {})", daemon.pid)),
        "{err}"
    );
    assert!(daemon.alive());

    // Metrics move after a session.
    let (code, before) = http_get(metrics_addr, "/metrics");
    assert_eq!(code, 200);
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut raw = daemon.raw_logged_in();
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("up.bin")), &payload),
        226
    );
    let (replies, back) = raw.transfer(&format!("RETR {}", fx.path("up.bin")));
    assert_eq!(replies.last().unwrap().0, 226);
    assert_eq!(back, payload);
    assert_eq!(raw.cmd("QUIT").0, 221);
    assert_eq!(fx.get("up.bin"), payload);
    let (_, after) = http_get(metrics_addr, "/metrics");
    for (name, at_least) in [
        ("swiftftp_logins_total{result=\"ok\"}", 1.0),
        ("swiftftp_sessions_started_total", 1.0),
        ("swiftftp_transfer_bytes_total{direction=\"in\"}", 3e6),
        ("swiftftp_transfer_bytes_total{direction=\"out\"}", 3e6),
        (
            "swiftftp_transfers_total{command=\"STOR\",result=\"ok\"}",
            1.0,
        ),
        (
            "swiftftp_swift_requests_total{op=\"put_object\",status=\"201\"}",
            1.0,
        ),
        (
            "swiftftp_swift_request_seconds_count{op=\"get_object\"}",
            1.0,
        ),
        ("swiftftp_ftp_commands_total{command=\"stor\"}", 1.0),
    ] {
        let grew = metric(&after, name) - metric(&before, name);
        assert!(grew >= at_least, "{name} grew by {grew}:\n{after}");
    }
    let (code, body) = http_get(metrics_addr, "/health");
    assert_eq!(code, 200, "{body}");

    // logrotate: move the file away, SIGHUP, and the daemon writes to a new file at the same path.
    let rotated = dir.join("swiftftp.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    daemon.signal(Signal::SIGHUP);
    wait_for("the reopened log file", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("log file reopened"))
    });
    let mut raw = daemon.raw_logged_in();
    let (replies, _) = raw.transfer(&format!("LIST {}", fx.path("")));
    assert_eq!(replies.last().unwrap().0, 226);
    assert_eq!(raw.cmd("QUIT").0, 221);
    wait_for(
        "the second session in the new log",
        Duration::from_secs(10),
        || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("QUIT")),
    );
    let old = std::fs::read_to_string(&rotated).unwrap();
    let new = std::fs::read_to_string(&log).unwrap();
    assert!(old.contains("STOR") && old.contains("up.bin"), "{old}");
    assert!(!old.contains("log file reopened"));
    // Every line about the session names it, ours and libunftp's alike: its span from the login line on.
    let span = new
        .lines()
        .find(|l| l.contains("logged in"))
        .and_then(|l| l.split("}: ").next()?.split_once("session{"))
        .map(|(_, fields)| format!("session{{{fields}}}"))
        .unwrap_or_else(|| panic!("{new}"));
    assert!(span.contains(&format!("user={USER}")), "{span}");
    let quit = new.lines().find(|l| l.contains("QUIT")).unwrap();
    assert!(quit.contains(&span), "{quit}");

    // No secret in any log, at debug level.
    let token = swift_token();
    for (name, text) in [("rotated", &old), ("current", &new)] {
        assert!(!text.contains(KEY), "the password is in the {name} log");
        assert!(!text.contains(&token), "the token is in the {name} log");
        assert!(!text.contains("panic"), "{text}");
    }

    daemon.signal(Signal::SIGTERM);
    assert!(daemon.wait_gone(Duration::from_secs(15)));
    assert!(
        !daemon.pid_file.exists()
            || std::fs::read_to_string(&daemon.pid_file)
                .unwrap()
                .is_empty()
    );
}

#[test]
fn sigterm_lets_a_running_upload_finish_in_daemon_mode() {
    let fx = Fixture::new("sigterm");
    let dir = Scratch::new("sigterm");
    let daemon = Daemon::start(
        free_port(),
        &dir.join("p.pid"),
        &["--log-file", dir.join("log").to_str().unwrap()],
    );
    let mut raw = daemon.raw_logged_in();
    let mut data = raw.data();
    raw.send(&format!("STOR {}", fx.path("during-shutdown.bin")));
    assert_eq!(raw.reply().0, 150);
    // More than loopback buffers hold: the gateway is reading, so the upload has started on its side.
    let sent = crate::common::random(32 << 20);
    let mut pieces = sent.chunks(1 << 20);
    for piece in pieces.by_ref().take(24) {
        data.write_all(piece).unwrap();
    }
    daemon.signal(Signal::SIGTERM);
    // No new sessions once shutting down (the listening socket is closed).
    wait_for("connections to be refused", Duration::from_secs(10), || {
        TcpStream::connect(daemon.ftp).is_err()
    });
    assert!(daemon.alive(), "exited with a transfer running");
    for piece in pieces {
        data.write_all(piece).unwrap();
    }
    drop(data);
    assert_eq!(raw.reply().0, 226);
    assert!(
        fx.get("during-shutdown.bin") == sent,
        "the upload finished during shutdown differs"
    );
    assert!(daemon.wait_gone(Duration::from_secs(15)));
    assert!(!dir.join("p.pid").exists());
    let log = std::fs::read_to_string(dir.join("log")).unwrap();
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
}

#[test]
fn a_second_signal_exits_at_once_and_the_cut_upload_is_not_stored() {
    let fx = Fixture::new("sigterm2");
    let port = free_port();
    let mut gw = Foreground::start(port, &auth_url(), &[]);
    let mut raw = RawFtp::logged_in(SocketAddr::from(([127, 0, 0, 1], port)));
    let mut data = raw.data();
    raw.send(&format!("STOR {}", fx.path("cut.bin")));
    assert_eq!(raw.reply().0, 150);
    // More than loopback buffers hold: the gateway is reading, so the upload has started on its side.
    for _ in 0..24 {
        data.write_all(&vec![1u8; 1 << 20]).unwrap();
    }
    kill(gw.pid(), Signal::SIGTERM).unwrap();
    wait_for("connections to be refused", Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_err()
    });
    assert!(
        gw.0.try_wait().unwrap().is_none(),
        "exited at the first signal"
    );
    let second = Instant::now();
    kill(gw.pid(), Signal::SIGINT).unwrap();
    let status = loop {
        if let Some(s) = gw.0.try_wait().unwrap() {
            break s;
        }
        assert!(second.elapsed() < Duration::from_secs(5), "still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    assert!(fx.head("cut.bin").is_none(), "a cut upload became visible");
}

#[test]
fn health_turns_unhealthy_while_swift_is_down_and_back_and_json_logs_parse() {
    let proxy = FaultProxy::start(swift_addr());
    let dir = Scratch::new("health");
    let log = dir.join("log.json");
    let (port, metrics_port) = (free_port(), free_port());
    let metrics = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    let gw = Foreground::start(
        port,
        &proxy.auth_url(),
        &[
            "--metrics-address",
            &metrics.to_string(),
            "--swift-timeout",
            "3",
            "--log-format",
            "json",
            "--log-file",
            log.to_str().unwrap(),
        ],
    );
    // Answers are reused for 2 s: wait for each change, within a bound.
    let health_becomes = |code: u16| {
        wait_for(&format!("/health {code}"), Duration::from_secs(10), || {
            http_get(metrics, "/health").0 == code
        })
    };
    // Before any login: Swift's proxy at the auth URL's address.
    health_becomes(200);
    proxy.cut();
    health_becomes(503);
    proxy.heal();
    health_becomes(200);
    // After a login: the proxy of that login's storage URL. The session downloads a file, so that a line of
    // ours (the transfer's) runs in its span.
    let fx = Fixture::new("jsonlog");
    fx.put("f.txt", "logged");
    let mut raw = RawFtp::logged_in(SocketAddr::from(([127, 0, 0, 1], port)));
    let (replies, got) = raw.transfer(&format!("RETR {}", fx.path("f.txt")));
    assert_eq!(replies.last().unwrap().0, 226);
    assert_eq!(got, b"logged");
    assert_eq!(raw.cmd("QUIT").0, 221);
    wait_for("/health after a login", Duration::from_secs(10), || {
        let (code, body) = http_get(metrics, "/health");
        code == 200 && body.starts_with("ok: Swift answers /info\n")
    });
    proxy.cut();
    health_becomes(503);
    proxy.heal();
    health_becomes(200);
    let (code, _) = http_get(metrics, "/nothing");
    assert_eq!(code, 404);

    // One JSON object per line; our lines about the session carry it as their span.
    drop(gw);
    let (text, lines) = json_log(&log);
    assert!(lines.iter().any(|l| {
        l["span"]["id"].is_string()
            && l["span"]["client"].is_string()
            && l["fields"]["message"] == "logged in"
    }));
    assert!(
        lines.iter().any(|l| l["span"]["name"] == "session"
            && l["span"]["user"] == USER
            && l["fields"]["message"] == "RETR"),
        "no transfer line in the session's span: {text}"
    );
}

/// INFO is one line per operation: an upload is one line, with the session's id, user and client as JSON
/// fields; the session's other lines (connection, login, logout) carry the same three.
#[test]
fn an_upload_logs_one_info_line_with_session_user_and_client() {
    let fx = Fixture::new("oneline");
    let dir = Scratch::new("oneline");
    let log = dir.join("log.json");
    let port = free_port();
    let gw = Foreground::start(
        port,
        &auth_url(),
        &["--log-format", "json", "--log-file", log.to_str().unwrap()],
    );
    let mut raw = RawFtp::logged_in(SocketAddr::from(([127, 0, 0, 1], port)));
    let local = raw.local_addr();
    let payload = b"one line per operation";
    let path = fx.path("logged.txt");
    // What clients send around an upload: a probe of the name first (a miss), the upload, its time.
    assert_eq!(raw.cmd(&format!("SIZE {path}")).0, 550);
    assert_eq!(raw.upload(&format!("STOR {path}"), payload), 226);
    assert_eq!(raw.cmd(&format!("SIZE {path}")).0, 213);
    assert_eq!(raw.cmd("QUIT").0, 221);
    drop(raw);
    wait_for("the logout line", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("QUIT"))
    });
    drop(gw);
    let (text, lines) = json_log(&log);
    let session: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["span"]["client"] == local.to_string().as_str())
        .collect();
    assert!(session.len() >= 4, "{text}");
    let id = session[0]["span"]["id"].as_str().unwrap();
    for line in &session {
        assert_eq!(line["span"]["id"], id, "{line}");
        assert_eq!(line["level"], "INFO", "{line}");
    }
    let about_the_file: Vec<_> = session
        .iter()
        .filter(|l| l.to_string().contains("logged.txt"))
        .collect();
    assert_eq!(about_the_file.len(), 1, "{about_the_file:#?}");
    let stor = about_the_file[0];
    assert_eq!(stor["fields"]["message"], "STOR");
    assert_eq!(stor["fields"]["result"], "ok");
    assert_eq!(stor["fields"]["bytes"], payload.len());
    assert_eq!(stor["fields"]["md5"], crate::common::md5_hex(payload));
    assert_eq!(stor["span"]["user"], USER);
    let messages: Vec<&str> = session
        .iter()
        .map(|l| l["fields"]["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "control connection opened",
            "logged in",
            "STOR",
            "QUIT: User logged out"
        ],
        "{text}"
    );
}

/// A JSON log file's text and its lines, each of which must be one JSON object.
fn json_log(path: &Path) -> (String, Vec<serde_json::Value>) {
    let text = std::fs::read_to_string(path).unwrap();
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (text, lines)
}

/// syslog(3) writes datagrams to /dev/log. Where no syslog daemon runs (containers, CI), the test plays it.
#[test]
fn syslog_gets_the_lines_with_the_daemon_facility() {
    let dev_log = Path::new("/dev/log");
    if dev_log.exists() || !nix::unistd::geteuid().is_root() {
        // CI runs as root on a machine with no syslog daemon: there this test must run, never pass unrun.
        assert!(
            std::env::var_os("SWIFTFTP_TEST_SKIP_ROOT_ONLY").is_some(),
            "/dev/log exists or not root: the syslog test cannot play the syslog daemon here; set \
             SWIFTFTP_TEST_SKIP_ROOT_ONLY=1 to skip it knowingly"
        );
        eprintln!("syslog test skipped (SWIFTFTP_TEST_SKIP_ROOT_ONLY)");
        return;
    }
    let sock = std::os::unix::net::UnixDatagram::bind(dev_log).unwrap();
    struct Remove;
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file("/dev/log");
        }
    }
    let _remove = Remove;
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let port = free_port();
    let gw = Foreground::start(port, &auth_url(), &["--syslog"]);
    let mut raw = RawFtp::logged_in(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(raw.cmd("QUIT").0, 221);
    let tag = format!("swiftftp[{}]:", gw.pid());
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        let Ok(n) = sock.recv(&mut buf) else { break };
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        let done = msg.contains("logged in");
        seen.push(msg);
        if done {
            break;
        }
    }
    let login = seen
        .iter()
        .find(|m| m.contains("logged in"))
        .unwrap_or_else(|| panic!("{seen:#?}"));
    // <PRI>: facility daemon (3) * 8 + severity (syslog-tracing maps INFO to notice, 5).
    let pri: u32 = login[1..login.find('>').unwrap()].parse().unwrap();
    assert_eq!(pri / 8, 3, "{login}");
    assert!(login.contains(&tag), "{login}");
    assert!(seen.iter().all(|m| !m.contains(KEY)));
}

/// What a load balancer's TCP health check does (HAProxy: connect, then reset at once) is no error of the
/// gateway's: nothing is logged at ERROR, and the gateway goes on serving.
#[test]
fn connections_reset_before_their_greeting_log_no_error() {
    let dir = Scratch::new("healthcheck");
    let log = dir.join("log");
    let port = free_port();
    let gw = Foreground::start(port, &auth_url(), &["--log-file", log.to_str().unwrap()]);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..30 {
        let s = socket2::Socket::from(TcpStream::connect(addr).unwrap());
        s.set_linger(Some(Duration::ZERO)).unwrap();
        drop(s);
    }
    let mut raw = RawFtp::logged_in(addr);
    assert_eq!(raw.cmd("QUIT").0, 221);
    drop(gw);
    let text = std::fs::read_to_string(&log).unwrap();
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(text.contains("logged in"), "{text}");
}

/// Under systemd `Type=notify`: READY=1 once the FTP socket accepts, STOPPING=1 on SIGTERM, then the exit.
#[test]
fn systemd_hears_ready_once_serving_and_stopping_on_sigterm() {
    use std::os::unix::net::UnixDatagram;
    let scratch = Scratch::new("notify");
    let socket_path = scratch.join("notify.sock");
    let systemd = UnixDatagram::bind(&socket_path).unwrap();
    systemd
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let port = free_port();
    let mut args = base_args(port, &auth_url());
    args.push("--foreground".into());
    let mut child = Command::new(BIN)
        .args(&args)
        .env("NOTIFY_SOCKET", &socket_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(child.id() as i32);
    let mut buf = [0u8; 256];
    let n = systemd.recv(&mut buf).expect("READY=1 within 30 s");
    assert_eq!(&buf[..n], b"READY=1\n");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "ready before the FTP socket accepts"
    );
    kill(pid, Signal::SIGTERM).unwrap();
    let n = systemd.recv(&mut buf).expect("STOPPING=1 after SIGTERM");
    assert_eq!(&buf[..n], b"STOPPING=1\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no exit after STOPPING=1");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(child.wait().unwrap().success());
}

/// With the auth service down, the log says where it tried and what the system answered.
#[test]
fn a_login_with_the_auth_service_down_logs_its_address_and_the_os_error() {
    let dir = Scratch::new("authdown");
    let log = dir.join("log");
    let (port, closed) = (free_port(), free_port());
    let auth = format!("http://127.0.0.1:{closed}/auth/v1.0");
    let gw = Foreground::start(port, &auth, &["--log-file", log.to_str().unwrap()]);
    let mut raw = RawFtp::connect(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(raw.cmd(&format!("USER {USER}")).0, 331);
    assert_eq!(raw.cmd(&format!("PASS {KEY}")).0, 530);
    drop(raw);
    drop(gw);
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("login failed"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains(&format!(
            "cannot connect to Swift at http://127.0.0.1:{closed}"
        )),
        "{line}"
    );
    assert!(line.contains("Connection refused (os error 111)"), "{line}");
    assert!(line.contains(&format!("user={USER}")), "{line}");
    assert!(!text.contains("None"), "{text}");
}
