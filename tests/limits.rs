//! Limits: connections per client address and in all (421 before any greeting), sessions per user, the idle
//! timeout, and the brute-force lockout (which must not reach the auth service); behind a load balancer, the
//! PROXY protocol header names the client those limits, logins and Swift see.

use crate::common::faulty::{FaultProxy, swift_addr};
use crate::common::swift::Fixture;
use crate::common::{KEY, RawFtp, TestGateway, USER};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Opens `n` connections and reads each one's first line; keeps them open.
fn open_many(gw: &TestGateway, n: usize) -> Vec<(String, TcpStream)> {
    (0..n)
        .map(|_| {
            let s = TcpStream::connect(gw.addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut line = String::new();
            BufReader::new(s.try_clone().unwrap())
                .read_line(&mut line)
                .unwrap();
            (line, s)
        })
        .collect()
}

fn count(lines: &[(String, TcpStream)], prefix: &str) -> usize {
    lines.iter().filter(|(l, _)| l.starts_with(prefix)).count()
}

#[test]
fn exactly_the_connections_over_max_cons_per_ip_get_421() {
    let gw = TestGateway::start_with(&["--max-cons-per-ip", "20"]);
    let conns = open_many(&gw, 300);
    assert_eq!(count(&conns, "220 "), 20);
    assert_eq!(
        count(&conns, "421 Too many connections from the same IP address."),
        280
    );
    drop(conns);
    // The slots come back once the sessions end.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let again = open_many(&gw, 20);
        if count(&again, "220 ") == 20 {
            break;
        }
        drop(again);
        assert!(Instant::now() < deadline, "slots not freed");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_global_cap_turns_away_the_excess() {
    let gw = TestGateway::start_with(&["--max-connections", "5"]);
    let conns = open_many(&gw, 7);
    assert_eq!(count(&conns, "220 "), 5);
    assert_eq!(
        count(&conns, "421 Too many connections, try again later."),
        2
    );
}

#[test]
fn sessions_per_user_are_capped() {
    let gw = TestGateway::start_with(&["--max-sessions-per-user", "2"]);
    let a = gw.raw_logged_in();
    let _b = gw.raw_logged_in();
    let mut c = gw.raw();
    assert_eq!(c.cmd(&format!("USER {USER}")).0, 331);
    assert_eq!(c.cmd(&format!("PASS {KEY}")).0, 530);
    // Another user is not affected.
    let mut other = gw.raw();
    assert_eq!(other.cmd("USER test:reader").0, 331);
    assert_eq!(other.cmd("PASS reading").0, 230);
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut d = gw.raw();
        assert_eq!(d.cmd(&format!("USER {USER}")).0, 331);
        if d.cmd(&format!("PASS {KEY}")).0 == 230 {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was not freed");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn an_idle_control_connection_is_closed() {
    let gw = TestGateway::start_with(&["--idle-timeout", "2"]);
    let mut raw = gw.raw_logged_in();
    let started = Instant::now();
    // 421, the code of a connection the server closes (libunftp 0.24 said 221, the answer to QUIT).
    let (code, text) = raw.reply();
    assert_eq!(code, 421, "{text}");
    assert!(text.contains("timed out"), "{text}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(started.elapsed() < Duration::from_secs(10));
}

fn login(gw: &TestGateway, user: &str, key: &str) -> u32 {
    let mut raw = gw.raw();
    assert_eq!(raw.cmd(&format!("USER {user}")).0, 331);
    raw.cmd(&format!("PASS {key}")).0
}

#[test]
fn failed_logins_lock_the_user_and_address_without_asking_the_auth_service() {
    let proxy = FaultProxy::start(swift_addr());
    let gw = TestGateway::start_with(&[
        "-a",
        &proxy.auth_url(),
        "--max-login-failures",
        "3",
        "--login-lockout",
        "4",
    ]);
    for _ in 0..3 {
        assert_eq!(login(&gw, USER, "wrong"), 530);
    }
    let asked = proxy.auth_requests();
    // Locked: even the right password gets the same 530, and nothing reaches the auth service.
    let started = Instant::now();
    assert_eq!(login(&gw, USER, KEY), 530);
    assert_eq!(login(&gw, USER, "wrong again"), 530);
    assert_eq!(proxy.auth_requests(), asked);
    // Another user from the same address is not locked.
    assert_eq!(login(&gw, "test:reader", "reading"), 230);
    // After the lockout, the right password works again.
    let left = Duration::from_secs(4).saturating_sub(started.elapsed());
    std::thread::sleep(left + Duration::from_millis(300));
    assert_eq!(login(&gw, USER, KEY), 230);
}

#[test]
fn a_refused_login_takes_a_second_and_the_reply_does_not_tell_users_apart() {
    let gw = TestGateway::start();
    let started = Instant::now();
    let mut raw = gw.raw();
    assert_eq!(raw.cmd("USER nosuch:user").0, 331);
    let unknown = raw.cmd("PASS whatever");
    assert!(started.elapsed() >= Duration::from_millis(900));
    let mut raw = gw.raw();
    assert_eq!(raw.cmd(&format!("USER {USER}")).0, 331);
    let wrong = raw.cmd("PASS wrong");
    assert_eq!(unknown, wrong);
    assert_eq!(unknown.0, 530);
    let _ = RawFtp::connect(gw.addr);
}

/// A PROXY protocol v2 header for a TCP/IPv4 client.
fn proxy_v2(client: [u8; 4], port: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend([0x21, 0x11, 0, 12]);
    h.extend(client);
    h.extend([127, 0, 0, 1]);
    h.extend(port.to_be_bytes());
    h.extend(21u16.to_be_bytes());
    h
}

#[test]
fn a_proxy_protocol_header_names_the_client_for_limits_logins_and_swift() {
    let fx = Fixture::new("proxyproto");
    let proxy = FaultProxy::start(swift_addr());
    let gw = TestGateway::start_with(&[
        "-a",
        &proxy.auth_url(),
        "--proxy-protocol",
        "--proxy-protocol-from",
        "127.0.0.2",
        "--max-cons-per-ip",
        "1",
    ]);
    // The balancer's control connections come from 127.0.0.2; the clients' data connections straight from
    // their own address.
    let balancer: std::net::IpAddr = [127, 0, 0, 2].into();
    // v1, naming 127.0.0.1 (where this test's data connections come from): a whole session works.
    let mut a = RawFtp::connect_from(
        balancer,
        gw.addr,
        b"PROXY TCP4 127.0.0.1 127.0.0.1 40001 21\r\n",
    );
    assert_eq!(a.cmd(&format!("USER {USER}")).0, 331);
    assert_eq!(a.cmd(&format!("PASS {KEY}")).0, 230);
    assert_eq!(
        a.upload(&format!("STOR {}", fx.path("p.txt")), b"via proxy"),
        226
    );
    assert_eq!(fx.get("p.txt"), b"via proxy");
    // v2, naming 192.0.2.9: Swift hears of that client.
    let mut b = RawFtp::connect_from(balancer, gw.addr, &proxy_v2([192, 0, 2, 9], 40002));
    assert_eq!(b.cmd(&format!("USER {USER}")).0, 331);
    assert_eq!(b.cmd(&format!("PASS {KEY}")).0, 230);
    assert_eq!(b.cmd(&format!("SIZE {}", fx.path("p.txt"))).0, 213);
    let sent = String::from_utf8_lossy(&proxy.recorded()).to_lowercase();
    assert!(
        sent.contains("\r\nx-forwarded-for: 192.0.2.9\r\n"),
        "{sent}"
    );
    // max-cons-per-ip counts the named clients: 127.0.0.1 already has its one, 192.0.2.10 has none.
    let mut c = crate::common::tcp_from(balancer, gw.addr);
    c.write_all(b"PROXY TCP4 127.0.0.1 127.0.0.1 40003 21\r\n")
        .unwrap();
    let mut line = String::new();
    BufReader::new(&c).read_line(&mut line).unwrap();
    assert!(line.starts_with("421"), "{line}");
    let mut d = RawFtp::connect_from(balancer, gw.addr, &proxy_v2([192, 0, 2, 10], 40004));
    assert_eq!(d.cmd("NOOP").0, 200);
    // Without a header (or with garbage), the connection is closed with no greeting.
    let mut e = crate::common::tcp_from(balancer, gw.addr);
    e.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    e.write_all(b"USER someone\r\n").unwrap();
    let mut rest = String::new();
    // Closed with the line unread: an end of file, or a reset.
    match BufReader::new(&e).read_line(&mut rest) {
        Ok(0) => {}
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("{other:?}: {rest}"),
    }
    for raw in [&mut a, &mut b, &mut d] {
        assert_eq!(raw.cmd("QUIT").0, 221);
    }
}

#[test]
fn a_transfer_whose_data_connection_never_comes_gets_425_and_the_session_goes_on() {
    let fx = Fixture::new("nodata");
    fx.put("f.txt", "data");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    // PASV, then a transfer, and no connection to the data port: 150, then 425 once the port gives up (15 s).
    let (code, _) = raw.cmd("PASV");
    assert_eq!(code, 227);
    let started = Instant::now();
    assert_eq!(raw.cmd(&format!("RETR {}", fx.path("f.txt"))).0, 150);
    let (code, text) = raw.reply();
    assert_eq!(code, 425, "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
    // The session goes on: a later transfer without PASV is refused at once, and one with PASV works.
    assert_eq!(raw.cmd("NOOP").0, 200);
    let (replies, bytes) = raw.transfer(&format!("RETR {}", fx.path("f.txt")));
    assert_eq!(replies.last().unwrap().0, 226, "{replies:?}");
    assert_eq!(bytes, b"data");
    assert_eq!(raw.cmd("QUIT").0, 221);
}

/// `PORT` to a listener of ours on `ip`, then `RETR path`: the bytes the gateway sent there (150 and 226 checked).
fn active_retr(raw: &mut RawFtp, ip: [u8; 4], path: &str) -> Vec<u8> {
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::from(ip), 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let [a, b, c, d] = ip;
    let (code, text) = raw.cmd(&format!(
        "PORT {a},{b},{c},{d},{},{}",
        port >> 8,
        port & 0xff
    ));
    assert_eq!(code, 200, "{text}");
    raw.send(&format!("RETR {path}"));
    let (mut data, _) = listener.accept().unwrap();
    assert_eq!(raw.reply().0, 150);
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut data, &mut got).unwrap();
    assert_eq!(raw.reply().0, 226);
    got
}

#[test]
fn port_connects_back_to_the_client_only_and_never_to_a_privileged_port() {
    let fx = Fixture::new("active");
    fx.put("f.txt", "active data");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    // Active mode to our own address: the gateway connects to our listener and sends the file.
    assert_eq!(
        active_retr(&mut raw, [127, 0, 0, 1], &fx.path("f.txt")),
        b"active data"
    );
    // Elsewhere (FXP, a bounce) or a privileged port: 501, nothing connects.
    assert_eq!(raw.cmd("PORT 192,0,2,1,200,10").0, 501);
    assert_eq!(raw.cmd("PORT 127,0,0,1,0,22").0, 501);
    assert_eq!(raw.cmd("QUIT").0, 221);
}

#[test]
fn permit_foreign_addresses_lets_port_reach_another_address() {
    let fx = Fixture::new("fxp");
    fx.put("f.txt", "to elsewhere");
    let dir = std::env::temp_dir().join(format!("swiftftp-fxp-{}", std::process::id()));
    std::fs::write(&dir, "[swiftftp]\npermit-foreign-addresses = yes\n").unwrap();
    let gw = TestGateway::start_with(&["--config", dir.to_str().unwrap()]);
    let mut raw = gw.raw_logged_in();
    // 127.0.0.2 is another address than the client's 127.0.0.1 (Linux routes all of 127/8 to loopback).
    assert_eq!(
        active_retr(&mut raw, [127, 0, 0, 2], &fx.path("f.txt")),
        b"to elsewhere"
    );
    // Privileged ports stay refused.
    assert_eq!(raw.cmd("PORT 127,0,0,2,0,25").0, 501);
    assert_eq!(raw.cmd("QUIT").0, 221);
    std::fs::remove_file(&dir).unwrap();
}

/// Sessions taking the ports of a small passive range all at once: a port another session bound at the same
/// moment is no error of the session (its `listen` failed with EADDRINUSE, and the session was closed: lftp
/// then waited before reconnecting, a stall of seconds per collision). Every PASV gets 227 or, with every port
/// taken, 425, and every session goes on.
#[test]
fn sessions_racing_for_a_small_passive_range_keep_their_sessions() {
    let first = crate::common::process::free_port();
    let range = format!("{first}:{}", first + 1);
    let gw = TestGateway::start_with(&["--passive-ports", &range]);
    let addr = gw.addr;
    let sessions: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut raw = RawFtp::logged_in(addr);
                let codes: Vec<u32> = (0..60).map(|_| raw.cmd("PASV").0).collect();
                (codes, raw.cmd("NOOP").0)
            })
        })
        .collect();
    let mut opened = 0;
    for session in sessions {
        let (codes, noop) = session.join().unwrap();
        assert!(codes.iter().all(|c| [227, 425].contains(c)), "{codes:?}");
        opened += codes.iter().filter(|c| **c == 227).count();
        assert_eq!(noop, 200);
    }
    assert!(opened > 0);
}
