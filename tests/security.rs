//! Attacks from the security review (#16), each reproduced against the real Swift and shown to fail: what a
//! user with fewer rights can plant for an admin's command to act on, and names that would misdirect deletes.

use crate::common::swift::Fixture;
use crate::common::{TestGateway, random};
use std::process::Command;

const MIB: usize = 1 << 20;
const READER: (&str, &str) = ("test:reader", "reading");

/// A Swift request as the plain user `test:reader` (curl, so nothing of swiftftp's client is involved):
/// returns the HTTP status.
fn as_reader(method: &str, path: &str, headers: &[&str], body: &[u8]) -> u16 {
    let auth = Command::new("curl")
        .args(["-sS", "-m", "10", "-o", "/dev/null", "-D", "-", "-H"])
        .arg(format!("X-Auth-User: {}", READER.0))
        .args(["-H", &format!("X-Auth-Key: {}", READER.1)])
        .arg(crate::common::auth_url())
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&auth.stdout).to_string();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no {name} in {head}"))
    };
    let (url, token) = (header("X-Storage-Url"), header("X-Auth-Token"));
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["-X", method, "-H", &format!("X-Auth-Token: {token}")]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let body_file = std::env::temp_dir().join(format!("swiftftp-sec-{}-{n}", std::process::id()));
    std::fs::write(&body_file, body).unwrap();
    if method == "PUT" {
        cmd.arg("--data-binary")
            .arg(format!("@{}", body_file.display()));
    }
    let out = cmd.arg(format!("{url}/{path}")).output().unwrap();
    let _ = std::fs::remove_file(&body_file);
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// `victim` holds data the reader may read (so Swift accepts an SLO naming it) but not delete; `shared` is
/// writable by the reader.
fn containers() -> (Fixture, Fixture) {
    let victim = Fixture::new("victim");
    for i in 0..3 {
        victim.put(&format!("data/{i}"), format!("precious {i}"));
    }
    victim
        .block_on(
            victim
                .session
                .put_container(&victim.container, &[("X-Container-Read", "test:reader")]),
        )
        .unwrap();
    let shared = Fixture::new("shared");
    shared
        .block_on(shared.session.put_container(
            &shared.container,
            &[
                ("X-Container-Read", "test:reader"),
                ("X-Container-Write", "test:reader"),
            ],
        ))
        .unwrap();
    // The reader really cannot delete the victim's data.
    assert_eq!(
        as_reader("DELETE", &format!("{}/data/0", victim.container), &[], b""),
        403
    );
    (victim, shared)
}

fn victim_intact(victim: &Fixture) {
    assert_eq!(victim.names(), ["data/0", "data/1", "data/2"]);
}

#[test]
fn a_planted_dlo_manifest_does_not_make_an_admin_delete_another_containers_objects() {
    let (victim, shared) = containers();
    let plant = |name: &str| {
        let manifest = format!("X-Object-Manifest: {}/data/", victim.container);
        let status = as_reader(
            "PUT",
            &format!("{}/{name}", shared.container),
            &[&manifest],
            b"",
        );
        assert_eq!(status, 201);
    };
    plant("report.txt");
    plant("other.txt");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    // The admin overwrites one planted name and deletes the other.
    assert_eq!(
        raw.upload(&format!("STOR {}", shared.path("report.txt")), b"fresh"),
        226
    );
    assert_eq!(shared.get("report.txt"), b"fresh");
    assert_eq!(
        raw.cmd(&format!("DELE {}", shared.path("other.txt"))).0,
        250
    );
    victim_intact(&victim);
    assert_eq!(shared.names(), ["report.txt"]);
}

#[test]
fn a_planted_slo_manifest_does_not_make_an_admin_delete_another_containers_objects() {
    let (victim, shared) = containers();
    let entries: Vec<String> = (0..3)
        .map(|i| {
            let body = format!("precious {i}");
            format!(
                r#"{{"path":"/{}/data/{i}","etag":"{}","size_bytes":{}}}"#,
                victim.container,
                crate::common::md5_hex(body.as_bytes()),
                body.len()
            )
        })
        .collect();
    let manifest = format!("[{}]", entries.join(","));
    for name in ["report.bin", "other.bin"] {
        let status = as_reader(
            "PUT",
            &format!("{}/{name}?multipart-manifest=put", shared.container),
            &[],
            manifest.as_bytes(),
        );
        assert_eq!(status, 201, "the reader's SLO manifest is accepted");
    }
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    let body = random(2 * MIB);
    assert_eq!(
        raw.upload(&format!("STOR {}", shared.path("report.bin")), &body),
        226
    );
    assert_eq!(shared.get("report.bin"), body);
    assert_eq!(
        raw.cmd(&format!("DELE {}", shared.path("other.bin"))).0,
        250
    );
    victim_intact(&victim);
    assert_eq!(shared.names(), ["report.bin"]);
}

/// A planted SLO manifest naming the segments of a live large file, or of one renamed away from its segments'
/// folder, makes an admin's DELE or overwrite delete none of them: both files still read back whole.
#[test]
fn a_planted_manifest_naming_a_live_or_renamed_files_segments_deletes_none() {
    let (_victim, shared) = containers();
    let segments = shared.segments();
    segments
        .block_on(
            segments
                .session
                .put_container(&segments.container, &[("X-Container-Read", "test:reader")]),
        )
        .unwrap();
    let gw = TestGateway::start_with(&["--segment-size", "1M"]);
    let mut raw = gw.raw_logged_in();
    let live = random(2 * MIB + 5);
    let moved = random(2 * MIB + 7);
    assert_eq!(
        raw.upload(&format!("STOR {}", shared.path("live.bin")), &live),
        226
    );
    assert_eq!(
        raw.upload(&format!("STOR {}", shared.path("tmp.bin")), &moved),
        226
    );
    assert_eq!(raw.cmd(&format!("RNFR {}", shared.path("tmp.bin"))).0, 350);
    assert_eq!(
        raw.cmd(&format!("RNTO {}", shared.path("final.bin"))).0,
        250
    );
    let before = segments.names();
    assert_eq!(before.len(), 6, "{before:?}");
    // The reader plants one manifest per file, naming that file's segments.
    for (planted, of) in [("p1.bin", "live.bin/"), ("p2.bin", "tmp.bin/")] {
        let entries: Vec<String> = before
            .iter()
            .filter(|n| n.starts_with(of))
            .map(|n| {
                let head = segments.head(n).unwrap();
                format!(
                    r#"{{"path":"/{}/{n}","etag":"{}","size_bytes":{}}}"#,
                    segments.container,
                    head.etag.unwrap().trim_matches('"'),
                    head.content_length
                )
            })
            .collect();
        let status = as_reader(
            "PUT",
            &format!("{}/{planted}?multipart-manifest=put", shared.container),
            &[],
            format!("[{}]", entries.join(",")).as_bytes(),
        );
        assert_eq!(status, 201, "the reader's SLO manifest is accepted");
    }
    assert_eq!(raw.cmd(&format!("DELE {}", shared.path("p1.bin"))).0, 250);
    assert_eq!(
        raw.upload(&format!("STOR {}", shared.path("p2.bin")), b"small"),
        226
    );
    assert_eq!(segments.names(), before);
    for (name, body) in [("live.bin", &live), ("final.bin", &moved)] {
        let (replies, got) = raw.transfer(&format!("RETR {}", shared.path(name)));
        assert_eq!(replies.last().unwrap().0, 226);
        assert!(&got == body, "{name} came back different");
    }
}

/// Names Swift and percent-encoding could read two ways: each large file's segments go with it, and nobody
/// else's.
#[test]
fn large_files_with_percent_space_and_unicode_names_leave_no_segment_behind() {
    // The container's name too: Swift decodes %XX in manifest headers, not in SLO paths.
    let fx = Fixture::new("p%41 c ä€");
    let segments = fx.segments();
    let gw = TestGateway::start_with(&["--segment-size", "1M"]);
    let mut raw = gw.raw_logged_in();
    let names = ["a%41.bin", "aA.bin", "d i r/b%2F c.bin", "ä ö/%zz€.bin"];
    for name in names {
        assert_eq!(
            raw.upload(&format!("STOR {}", fx.path(name)), &random(2 * MIB + 1)),
            226,
            "{name}"
        );
    }
    assert_eq!(segments.names().len(), 4 * 3);
    // Overwrite the first with a small file: exactly its three segments go.
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path(names[0])), b"small"),
        226
    );
    assert_eq!(segments.names().len(), 3 * 3);
    assert!(
        segments.names().iter().all(|s| !s.starts_with("a%41.bin/")),
        "{:?}",
        segments.names()
    );
    for name in &names[1..] {
        assert_eq!(raw.cmd(&format!("DELE {}", fx.path(name))).0, 250, "{name}");
    }
    assert_eq!(segments.names(), Vec::<String>::new());
    assert_eq!(fx.get(names[0]), b"small");
}

/// 40 wrong `PASS` lines and the right one in one write: each is checked in turn (one check in flight per
/// session), so the auth service is asked once, not 41 times, and the right password does not slip through.
#[test]
fn pipelined_pass_lines_are_checked_one_at_a_time_and_never_walk_past_the_lockout() {
    use crate::common::faulty::{FaultProxy, swift_addr};
    let proxy = FaultProxy::start(swift_addr());
    let gw = TestGateway::start_with(&["-a", &proxy.auth_url(), "--max-login-failures", "5"]);
    let started = std::time::Instant::now();
    let mut raw = gw.raw();
    let mut burst = format!("USER {}\r\n", crate::common::USER);
    for _ in 0..40 {
        burst.push_str("PASS wrong\r\n");
    }
    burst.push_str(&format!("PASS {}\r\n", crate::common::KEY));
    raw.send_bytes(burst.as_bytes());
    let mut codes = Vec::new();
    while codes.len() < 42 {
        match raw.try_reply() {
            Some((code, _)) => codes.push(code),
            None => break,
        }
    }
    assert_eq!(codes.first(), Some(&331), "{codes:?}");
    assert!(
        !codes.contains(&230),
        "the right password got in: {codes:?}"
    );
    assert_eq!(codes.len(), 42, "one reply per line: {codes:?}");
    assert_eq!(
        proxy.auth_requests(),
        1,
        "one password reached the auth service"
    );
    // The failure was counted and delayed like any other.
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
}

/// A process's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Requests other than logins that reached Swift through `proxy`.
fn swift_requests(proxy: &crate::common::faulty::FaultProxy, container: &str) -> usize {
    String::from_utf8_lossy(&proxy.recorded())
        .split("\r\n")
        .filter(|l| l.contains(container) && !l.starts_with("GET /auth/"))
        .filter(|l| {
            ["GET ", "HEAD ", "PUT ", "POST ", "DELETE "]
                .iter()
                .any(|m| l.starts_with(m))
        })
        .count()
}

/// 3,000 `STAT`s of a 300-object directory in one write: the session asks Swift one thing at a time, each
/// answer in order, so the gateway neither floods Swift nor grows with the pipeline. (The gateway is a process of
/// its own here, so that its memory is measured alone.)
#[test]
fn pipelined_commands_are_answered_one_at_a_time_in_order() {
    use crate::common::faulty::{FaultProxy, swift_addr};
    use crate::common::process::{Foreground, free_port};
    let fx = Fixture::new("pipeline");
    fx.put_many((0..300).map(|i| format!("big/f{i:03}")).collect(), b"x", 16);
    fx.put("one.txt", "12345");
    let proxy = FaultProxy::start(swift_addr());
    let port = free_port();
    // Listings live long enough to serve every STAT that waits its turn: one Swift listing in all. Run
    // concurrently (0.24), every STAT missed the cache at once.
    let gw = Foreground::start(port, &proxy.auth_url(), &["--cache-ttl", "60"]);
    let mut raw = crate::common::RawFtp::logged_in(([127, 0, 0, 1], port).into());
    // Order: each reply belongs to the command in its place.
    let one = fx.path("one.txt");
    raw.send_bytes(
        format!("SIZE {one}\r\nNOOP\r\nSIZE {one}.missing\r\nMDTM {one}\r\nNOOP\r\n").as_bytes(),
    );
    let codes: Vec<u32> = (0..5).map(|_| raw.reply().0).collect();
    assert_eq!(codes, [213, 200, 550, 213, 200]);

    let before = rss_kib(gw.0.id());
    let asked_before = swift_requests(&proxy, &fx.container);
    let mut burst = String::new();
    for _ in 0..3000 {
        burst.push_str(&format!("STAT {}\r\n", fx.path("big")));
    }
    raw.send_bytes(burst.as_bytes());
    for i in 0..3000 {
        let (code, text) = raw.reply();
        assert!((200..300).contains(&code), "STAT {i}: {code} {text}");
    }
    assert_eq!(raw.cmd("NOOP").0, 200);
    let grown_mib = rss_kib(gw.0.id()).saturating_sub(before) / 1024;
    let asked = swift_requests(&proxy, &fx.container) - asked_before;
    eprintln!("3,000 pipelined STATs: {asked} Swift requests, RSS +{grown_mib} MiB");
    // One at a time, the listing cache answers all but the first (0.24: ~750 concurrent listings).
    assert!(asked <= 2, "{asked} Swift requests for 3,000 STATs");
    assert!(grown_mib < 16, "RSS grew by {grown_mib} MiB");
}

/// 500 `PASV` in one write: each closes the session's previous unused listener, so the passive range is not
/// emptied for everyone else.
#[test]
fn pipelined_pasv_holds_at_most_one_listener() {
    let (low, high) = (47_000u16, 47_999u16);
    let conf = std::env::temp_dir().join(format!("swiftftp-pasv-{}.conf", std::process::id()));
    std::fs::write(&conf, format!("[swiftftp]\npassive-ports = {low}:{high}\n")).unwrap();
    let gw = TestGateway::start_with(&["--config", conf.to_str().unwrap()]);
    let _ = std::fs::remove_file(&conf);
    let mut raw = gw.raw_logged_in();
    raw.send_bytes("PASV\r\n".repeat(500).as_bytes());
    for i in 0..500 {
        assert_eq!(raw.reply().0, 227, "PASV {i}");
    }
    assert_eq!(raw.cmd("NOOP").0, 200);
    // The superseded listeners close in their own tasks: give them a moment.
    let mut held = usize::MAX;
    for _ in 0..50 {
        held = listening_in(low..=high);
        if held <= 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(held <= 1, "{held} passive listeners held");
    // The last one still works.
    let fx = Fixture::new("pasv");
    fx.put("f.txt", "after the burst");
    let (replies, got) = raw.transfer(&format!("RETR {}", fx.path("f.txt")));
    assert_eq!(replies.last().unwrap().0, 226);
    assert_eq!(got, b"after the burst");
}

/// Listening TCP sockets (this machine, IPv4 and IPv6) on a port in `ports`.
fn listening_in(ports: std::ops::RangeInclusive<u16>) -> usize {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| t.lines().skip(1).map(str::to_owned).collect::<Vec<_>>())
        .filter(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let port = fields
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            fields.get(3) == Some(&"0A") && port.is_some_and(|p| ports.contains(&p))
        })
        .count()
}

/// 1,000 idle connections from one address get at most `max-cons-per-ip` (64 by default) slots; a client from
/// another address still logs in.
#[test]
fn idle_sockets_from_one_address_cannot_hold_every_slot() {
    use std::io::{BufRead, BufReader};
    let gw = TestGateway::start();
    let port = gw.addr.port();
    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    }
    let mut refused = 0;
    for s in &idle {
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        if line.starts_with("421") {
            refused += 1;
        } else {
            assert!(line.starts_with("220"), "{line}");
        }
    }
    assert_eq!(refused, 1000 - 64);
    // Another address of the same machine.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let other = rt.block_on(async {
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        socket.connect(gw.addr).await.unwrap().into_std().unwrap()
    });
    other.set_nonblocking(false).unwrap();
    let mut raw = crate::common::RawFtp::from_stream(other);
    assert_eq!(raw.cmd(&format!("USER {}", crate::common::USER)).0, 331);
    assert_eq!(raw.cmd(&format!("PASS {}", crate::common::KEY)).0, 230);
}

/// A connection has `login-timeout` seconds to log in, and `NOOP`s meanwhile do not extend it.
#[test]
fn a_connection_that_does_not_log_in_is_closed_whatever_it_sends() {
    let gw = TestGateway::start_with(&["--login-timeout", "2"]);
    let mut raw = gw.raw();
    let started = std::time::Instant::now();
    let closed = loop {
        raw.send("NOOP");
        match raw.try_reply() {
            Some((200, _)) => std::thread::sleep(std::time::Duration::from_millis(300)),
            Some((421, text)) => break text,
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    };
    let took = started.elapsed();
    assert!(closed.contains("Login timed out"), "{closed}");
    assert!(took >= std::time::Duration::from_millis(1900), "{took:?}");
    assert!(raw.try_reply().is_none(), "still open after 421");
    // Logged in in time: the session lives on past the limit.
    let mut raw = gw.raw_logged_in();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(raw.cmd("NOOP").0, 200);
}

/// An upload whose bytes stop coming (the client neither sends nor closes) is aborted once `idle-timeout`
/// passes: `426`, nothing stored, and the session goes on. A download the client stops reading, the same.
#[test]
fn stalled_transfers_are_aborted_within_the_idle_timeout() {
    use std::io::Write;
    let fx = Fixture::new("stall");
    fx.put("big.bin", random(48 * MIB));
    let gw = TestGateway::start_with(&["--idle-timeout", "2"]);
    let mut raw = gw.raw_logged_in();
    let mut data = raw.data();
    raw.send(&format!("STOR {}", fx.path("stalled.bin")));
    assert_eq!(raw.reply().0, 150);
    data.write_all(&random(MIB)).unwrap();
    let started = std::time::Instant::now();
    let (code, text) = raw.reply();
    let took = started.elapsed();
    assert_eq!(code, 426, "{text}");
    assert!(took < std::time::Duration::from_secs(6), "{took:?}");
    assert!(
        fx.head("stalled.bin").is_none(),
        "a stalled upload was stored"
    );
    assert_eq!(raw.cmd("NOOP").0, 200);
    drop(data);

    let data = raw.data();
    raw.send(&format!("RETR {}", fx.path("big.bin")));
    assert_eq!(raw.reply().0, 150);
    // Not a byte read.
    let started = std::time::Instant::now();
    let (code, text) = raw.reply();
    assert_eq!(code, 426, "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(8));
    assert_eq!(raw.cmd("NOOP").0, 200);
    drop(data);
}

/// A name that is not UTF-8, or carries a CR (as CR NUL, the only way a line can), is refused with `553`
/// before any command acts on it; the session goes on, and no reply ever carries a bare CR.
#[test]
fn names_that_are_not_utf8_or_hold_a_cr_are_refused() {
    let fx = Fixture::new("names");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    let dir = fx.path("");
    for line in [
        [b"MKD ".as_slice(), dir.as_bytes(), b"a\xffb\r\n"].concat(),
        [
            b"MKD ".as_slice(),
            dir.as_bytes(),
            b"a\xef\xbf\xbdb\xff\r\n",
        ]
        .concat(),
        [b"MLST ".as_slice(), dir.as_bytes(), b"x\r\0y\r\n"].concat(),
        [
            b"STOR ".as_slice(),
            dir.as_bytes(),
            b"x\r\x00226 forged\r\n",
        ]
        .concat(),
        [b"DELE ".as_slice(), dir.as_bytes(), b"x\0y\r\n"].concat(),
        // A TAB would be dropped by a URL parser: `a<TAB>b` would be `ab`.
        [b"STOR ".as_slice(), dir.as_bytes(), b"a\tb\r\n"].concat(),
        [b"MKD ".as_slice(), dir.as_bytes(), b"a\x1bb\r\n"].concat(),
    ] {
        raw.send_bytes(&line);
        let (code, text) = raw.reply();
        assert_eq!(code, 553, "{}: {text}", String::from_utf8_lossy(&line));
        assert!(!text.contains('\r'), "{text:?}");
    }
    assert_eq!(raw.cmd("NOOP").0, 200);
    assert_eq!(fx.names(), Vec::<String>::new());
}

/// PROXY headers are believed only from `proxy-protocol-from`: from anywhere else, however valid the header,
/// no greeting and the connection is closed.
#[test]
fn a_proxy_header_from_outside_proxy_protocol_from_is_not_believed() {
    use std::io::{Read, Write};
    // This test connects from 127.0.0.1: not a trusted balancer here.
    let gw = TestGateway::start_with(&[
        "--proxy-protocol",
        "--proxy-protocol-from",
        "192.0.2.0/24,10.0.0.5",
    ]);
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(b"PROXY TCP4 198.51.100.7 127.0.0.1 40001 21\r\nUSER x\r\n")
        .unwrap();
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got)),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }
    // Trusted: the same header works.
    let gw = TestGateway::start_with(&["--proxy-protocol", "--proxy-protocol-from", "127.0.0.0/8"]);
    let mut raw = crate::common::RawFtp::connect_after(
        gw.addr,
        b"PROXY TCP4 198.51.100.7 127.0.0.1 40001 21\r\n",
    );
    assert_eq!(raw.cmd("NOOP").0, 200);
}

/// The metrics listener cannot be starved by idle or half-sent connections: `/health` still answers.
#[test]
fn a_starved_metrics_listener_still_answers_health() {
    use crate::common::process::{free_port, http_get};
    use std::io::Write;
    let metrics: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let gw = TestGateway::start_with(&["--metrics-address", &metrics.to_string()]);
    crate::common::process::wait_for(
        "metrics listener",
        std::time::Duration::from_secs(10),
        || std::net::TcpStream::connect(metrics).is_ok(),
    );
    let mut hogs = Vec::new();
    for i in 0..100 {
        let mut s = std::net::TcpStream::connect(metrics).unwrap();
        if i % 2 == 0 {
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
        }
        hogs.push(s);
    }
    let started = std::time::Instant::now();
    let (status, body) = http_get(metrics, "/health");
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    drop(gw);
}

/// A token the auth service gave for a password stands in for that password at later logins for
/// `login-cache-ttl` only: after it, a login asks the auth service again (so a changed password stops working).
#[test]
fn a_cached_token_stands_in_for_the_password_only_for_login_cache_ttl() {
    use crate::common::faulty::{FaultProxy, swift_addr};
    let proxy = FaultProxy::start(swift_addr());
    let gw = TestGateway::start_with(&["-a", &proxy.auth_url(), "--login-cache-ttl", "2"]);
    let asked = || proxy.auth_requests();
    let _a = gw.raw_logged_in();
    assert_eq!(asked(), 1);
    let _b = gw.raw_logged_in();
    assert_eq!(asked(), 1, "a second login within the TTL reuses the token");
    std::thread::sleep(std::time::Duration::from_millis(2200));
    let _c = gw.raw_logged_in();
    assert_eq!(asked(), 2, "after the TTL the password is checked again");
}

/// 20 sessions from one address try wrong passwords for one user at the same moment: they take turns, so no
/// more than `max-login-failures` of them reach the auth service before the lockout holds.
#[test]
fn parallel_wrong_passwords_cannot_outrun_the_lockout() {
    use crate::common::faulty::{FaultProxy, swift_addr};
    let proxy = FaultProxy::start(swift_addr());
    let gw = TestGateway::start_with(&["-a", &proxy.auth_url(), "--max-login-failures", "3"]);
    let addr = gw.addr;
    let tries: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                let mut raw = crate::common::RawFtp::connect(addr);
                assert_eq!(raw.cmd(&format!("USER {}", crate::common::USER)).0, 331);
                raw.cmd("PASS wrong").0
            })
        })
        .collect();
    for t in tries {
        assert_eq!(t.join().unwrap(), 530);
    }
    assert_eq!(
        proxy.auth_requests(),
        3,
        "wrong passwords that reached the auth service"
    );
}

/// Behind a balancer that forwards the passive ports too, a data connection from a `proxy-protocol-from` address
/// carries the balancer's PROXY header, and the client it names must be the control connection's: the real
/// client's connection is served; one naming another client, or none, is refused (`425`), and the session goes
/// on. (Before, every forwarded data connection was refused: it came from the balancer's address.)
#[test]
fn passive_data_through_a_balancer_is_checked_against_its_proxy_header() {
    use std::io::{Read, Write};
    let fx = Fixture::new("proxydata");
    fx.put("f.txt", "through the balancer");
    let gw = TestGateway::start_with(&["--proxy-protocol", "--proxy-protocol-from", "127.0.0.0/8"]);
    let mut raw = crate::common::RawFtp::connect_after(
        gw.addr,
        b"PROXY TCP4 198.51.100.7 127.0.0.1 40001 21\r\n",
    );
    assert_eq!(raw.cmd(&format!("USER {}", crate::common::USER)).0, 331);
    assert_eq!(raw.cmd(&format!("PASS {}", crate::common::KEY)).0, 230);
    assert_eq!(raw.cmd("TYPE I").0, 200);
    let retr = format!("RETR {}", fx.path("f.txt"));
    let forwarded = |raw: &mut crate::common::RawFtp, header: &[u8]| {
        let port = raw.epsv_port();
        let mut data = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        data.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        data.write_all(header).unwrap();
        data
    };

    // The client's own data connection, forwarded with its header: served.
    let mut data = forwarded(
        &mut raw,
        b"PROXY TCP4 198.51.100.7 127.0.0.1 40002 30000\r\n",
    );
    assert_eq!(raw.cmd(&retr).0, 150);
    let mut got = Vec::new();
    data.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"through the balancer");
    assert_eq!(raw.reply().0, 226);

    // Another client's (a v2 header), and one with no header at all: refused, the transfer gets 425, whether
    // the refusal comes before the RETR, during its opening of the file, or after its 150 (repeated: the
    // moment varies; a refusal while the RETR opened its file once left it with no final reply).
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v2.extend([203, 0, 113, 9, 127, 0, 0, 1, 0x9c, 0x42, 0x75, 0x30]);
    let headers: [&[u8]; 2] = [&v2, b"GET / HTTP/1.0\r\n\r\n"];
    for header in headers.iter().cycle().take(20) {
        let mut data = forwarded(&mut raw, header);
        let (code, text) = raw.cmd(&retr);
        let code = match code {
            150 => raw.reply().0,
            other => other,
        };
        assert_eq!(code, 425, "{text}");
        let mut rest = Vec::new();
        let _ = data.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    }
    assert_eq!(raw.cmd("NOOP").0, 200);
}
