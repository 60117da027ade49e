//! Faults of Swift, made to happen with a TCP proxy in front of the real Swift: the proxy stopped mid-upload and
//! mid-download (451 within seconds, nothing partial committed, service resumes when Swift is back) and bytes
//! corrupted on their way to Swift (the MD5 check catches it, the object is deleted, 451).

use crate::common::TestGateway;
use crate::common::faulty::{FaultProxy, swift_addr};
use crate::common::swift::Fixture;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// A gateway whose every Swift request goes through `proxy`.
fn gateway_through(proxy: &FaultProxy) -> TestGateway {
    let url = proxy.auth_url();
    TestGateway::start_with(&["-a", &url])
}

#[test]
fn swift_stopped_mid_upload_gets_451_quickly_and_service_resumes() {
    let fx = Fixture::new("cut-up");
    let proxy = FaultProxy::start(swift_addr());
    let gw = gateway_through(&proxy);
    let mut raw = gw.raw_logged_in();
    let mut data = raw.data();
    raw.send(&format!("STOR {}", fx.path("partial.bin")));
    assert_eq!(raw.reply().0, 150);
    data.write_all(&vec![1u8; 2_000_000]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let cut_at = Instant::now();
    proxy.cut();
    // The client keeps sending until the gateway gives up; the gateway must answer within seconds.
    data.set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let chunk = vec![2u8; 64 * 1024];
    while cut_at.elapsed() < Duration::from_secs(5) && data.write_all(&chunk).is_ok() {}
    drop(data);
    let (code, _) = raw.reply();
    assert_eq!(code, 451);
    assert!(
        cut_at.elapsed() < Duration::from_secs(15),
        "took {:?}",
        cut_at.elapsed()
    );
    assert!(raw.silent_for(Duration::from_millis(200)), "a second reply");

    proxy.heal();
    assert!(
        fx.head("partial.bin").is_none(),
        "a partial object was committed"
    );
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("after.bin")), b"back again"),
        226
    );
    assert_eq!(fx.get("after.bin"), b"back again");
}

#[test]
fn swift_stopped_mid_download_gets_451_quickly_and_service_resumes() {
    let fx = Fixture::new("cut-down");
    let stored = crate::common::random(64 * 1024 * 1024);
    fx.put("big.bin", stored.clone());
    let proxy = FaultProxy::start(swift_addr());
    let gw = gateway_through(&proxy);
    let mut raw = gw.raw_logged_in();
    let mut data = raw.data();
    raw.send(&format!("RETR {}", fx.path("big.bin")));
    assert_eq!(raw.reply().0, 150);
    let mut buf = vec![0u8; 1024 * 1024];
    data.read_exact(&mut buf).unwrap();
    let cut_at = Instant::now();
    proxy.cut();
    let mut rest = Vec::new();
    let _ = data.read_to_end(&mut rest);
    let (code, _) = raw.reply();
    assert_eq!(code, 451);
    assert!(
        cut_at.elapsed() < Duration::from_secs(15),
        "took {:?}",
        cut_at.elapsed()
    );
    assert!(
        buf.len() + rest.len() < 64 * 1024 * 1024,
        "the whole object arrived despite the cut"
    );
    assert!(raw.silent_for(Duration::from_millis(200)), "a second reply");

    proxy.heal();
    let (replies, body) = raw.transfer(&format!("RETR {}", fx.path("big.bin")));
    assert_eq!(replies.last().unwrap().0, 226);
    assert!(body == stored, "the bytes after the cut differ");
}

#[test]
fn a_listing_while_swift_is_down_gets_451_and_login_530() {
    let fx = Fixture::new("cut-list");
    fx.put("x", "x");
    let proxy = FaultProxy::start(swift_addr());
    let gw = gateway_through(&proxy);
    let mut raw = gw.raw_logged_in();
    proxy.cut();
    let started = Instant::now();
    let (replies, _) = raw.transfer(&format!("LIST {}", fx.path("")));
    assert_eq!(replies.last().unwrap().0, 451, "{replies:?}");
    assert_eq!(raw.cmd(&format!("SIZE {}", fx.path("x"))).0, 451);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    // A login that needs the auth service fails (the same user would reuse the token its session holds).
    let mut other = gw.raw();
    other.cmd("USER test2:tester2");
    assert_eq!(other.cmd("PASS testing2").0, 530);
    proxy.heal();
    assert_eq!(
        raw.cmd(&format!("SIZE {}", fx.path("x"))),
        (213, "1".to_owned())
    );
}

#[test]
fn corruption_on_the_way_to_swift_is_caught_and_nothing_kept() {
    let fx = Fixture::new("corrupt");
    let proxy = FaultProxy::start(swift_addr());
    let gw = gateway_through(&proxy);
    let mut raw = gw.raw_logged_in();
    proxy.corrupt(b"PRISTINE-PAYLOAD", b"CORRUPTED-BYTES!");
    let payload = b"PRISTINE-PAYLOAD".repeat(10_000);
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("file.bin")), &payload),
        451
    );
    assert!(
        fx.head("file.bin").is_none(),
        "the corrupted object is still there"
    );
}

#[test]
fn every_swift_request_carries_x_forwarded_for() {
    let fx = Fixture::new("xff");
    fx.put("a.txt", "a");
    let proxy = FaultProxy::start(swift_addr());
    let gw = gateway_through(&proxy);
    let mut raw = gw.raw_logged_in();
    let (replies, _) = raw.transfer(&format!("LIST {}", fx.path("")));
    assert_eq!(replies.last().unwrap().0, 226);
    assert_eq!(raw.cmd(&format!("SIZE {}", fx.path("a.txt"))).0, 213);
    let (replies, _) = raw.transfer(&format!("RETR {}", fx.path("a.txt")));
    assert_eq!(replies.last().unwrap().0, 226);
    assert_eq!(raw.upload(&format!("STOR {}", fx.path("b.txt")), b"b"), 226);
    assert_eq!(raw.cmd(&format!("DELE {}", fx.path("b.txt"))).0, 250);
    let sent = String::from_utf8_lossy(&proxy.recorded()).to_lowercase();
    // Request lines end with the protocol (a body of declared length runs straight into the next request line).
    let requests = sent.matches(" http/1.1\r\n").count();
    let tagged = sent.matches("\r\nx-forwarded-for: 127.0.0.1\r\n").count();
    assert!(requests >= 8, "only {requests} requests seen");
    assert_eq!(
        tagged, requests,
        "requests without X-Forwarded-For:\n{sent}"
    );
}

#[test]
fn appe_while_swift_is_unreachable_never_overwrites() {
    // libunftp's APPE asks for the file's size and appends at 0 (overwrites) when that fails for any reason.
    let fx = Fixture::new("appe-cut");
    fx.put("log.txt", "first line\n");
    let proxy = FaultProxy::start(swift_addr());
    let gw = gateway_through(&proxy);
    let mut raw = gw.raw_logged_in();
    proxy.cut();
    assert_eq!(
        raw.upload(&format!("APPE {}", fx.path("log.txt")), b"second line\n"),
        451
    );
    proxy.heal();
    assert_eq!(fx.get("log.txt"), b"first line\n");
}

/// A gateway through `proxy` whose Swift may stay silent for 3 s at most.
fn impatient_gateway_through(proxy: &FaultProxy) -> TestGateway {
    TestGateway::start_with(&["-a", &proxy.auth_url(), "--swift-timeout", "3"])
}

#[test]
fn a_hung_swift_fails_listings_downloads_and_uploads_within_the_timeout() {
    let fx = Fixture::new("stall");
    fx.put("big.bin", vec![9u8; 32 * 1024 * 1024]);
    fx.put("x", "x");
    let proxy = FaultProxy::start(swift_addr());
    let gw = TestGateway::start_with(&[
        "-a",
        &proxy.auth_url(),
        "--swift-timeout",
        "3",
        "--cache-ttl",
        "0",
    ]);
    let mut raw = gw.raw_logged_in();

    // A listing.
    proxy.stall();
    let started = Instant::now();
    let (replies, _) = raw.transfer(&format!("LIST {}", fx.path("")));
    assert_eq!(replies.last().unwrap().0, 451, "{replies:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    proxy.heal();
    let (replies, _) = raw.transfer(&format!("LIST {}", fx.path("")));
    assert_eq!(replies.last().unwrap().0, 226);

    // A download, hung mid-body.
    let mut data = raw.data();
    raw.send(&format!("RETR {}", fx.path("big.bin")));
    assert_eq!(raw.reply().0, 150);
    let mut buf = vec![0u8; 1024 * 1024];
    data.read_exact(&mut buf).unwrap();
    proxy.stall();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = data.read_to_end(&mut rest);
    let (code, _) = raw.reply();
    assert!(code == 451 || code == 426, "{code}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(rest.len() < 31 * 1024 * 1024, "the whole object arrived");
    proxy.heal();

    // An upload: Swift stops taking bytes; the client keeps sending until the gateway gives up.
    let mut data = raw.data();
    raw.send(&format!("STOR {}", fx.path("hung.bin")));
    assert_eq!(raw.reply().0, 150);
    data.write_all(&vec![3u8; 1024 * 1024]).unwrap();
    proxy.stall();
    let started = Instant::now();
    data.set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let chunk = vec![4u8; 64 * 1024];
    while started.elapsed() < Duration::from_secs(20) && data.write_all(&chunk).is_ok() {}
    drop(data);
    let (code, _) = raw.reply();
    assert_eq!(code, 451);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
    assert!(raw.silent_for(Duration::from_millis(200)), "a second reply");
    proxy.heal();
    assert!(
        fx.head("hung.bin").is_none(),
        "a partial object was committed"
    );

    // And the gateway serves again.
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("after.bin")), b"ok"),
        226
    );
    assert_eq!(fx.get("after.bin"), b"ok");
}

#[test]
fn a_slow_swift_is_slow_but_never_timed_out_while_bytes_move() {
    let fx = Fixture::new("slow");
    let payload: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    fx.put("slow.bin", payload.clone());
    let proxy = FaultProxy::start(swift_addr());
    let gw = impatient_gateway_through(&proxy);
    let mut raw = gw.raw_logged_in();
    // 1 MB/s: the download takes about 6 s, twice the 3 s timeout, and must succeed.
    proxy.slow(1024 * 1024);
    let started = Instant::now();
    let (replies, bytes) = raw.transfer(&format!("RETR {}", fx.path("slow.bin")));
    assert_eq!(replies.last().unwrap().0, 226, "{replies:?}");
    assert!(bytes == payload, "bytes differ");
    assert!(
        started.elapsed() > Duration::from_secs(4),
        "not slowed: {:?}",
        started.elapsed()
    );
    // An upload at that rate too.
    let up: Vec<u8> = payload[..5 * 1024 * 1024].to_vec();
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("slow-up.bin")), &up),
        226
    );
    proxy.heal();
    assert!(fx.get("slow-up.bin") == up);
}
