//! The write path against the real Swift: STOR, MKD, RMD, DELE, and the offsets libunftp passes to uploads
//! (APPE, REST + STOR, a stale REST), with exact replies and what Swift holds afterwards.

use crate::common::swift::Fixture;
use crate::common::{TestGateway, random};
use std::io::{Cursor, Write};
use std::time::Duration;

#[test]
fn stor_streams_into_swift_with_a_guessed_type() {
    let fx = Fixture::new("stor");
    let gw = TestGateway::start();
    let mut ftp = gw.ftp();
    let big = random(3_000_000);
    let cases: [(&str, &[u8], &str); 4] = [
        ("empty.bin", b"", "application/octet-stream"),
        ("notes ünï ☺.txt", b"hello\n", "text/plain"),
        ("deep/er/big.bin", &big, "application/octet-stream"),
        ("page.html", b"<p>x</p>", "text/html"),
    ];
    for (key, body, content_type) in cases {
        ftp.put_file(fx.path(key), &mut Cursor::new(body)).unwrap();
        let head = fx
            .head(key)
            .unwrap_or_else(|| panic!("{key} is not in Swift"));
        assert_eq!(head.content_length, body.len() as u64, "{key}");
        assert_eq!(head.content_type.as_deref(), Some(content_type), "{key}");
        assert!(fx.get(key) == body, "{key}: bytes differ");
    }
    // Overwriting replaces the content.
    ftp.put_file(fx.path("empty.bin"), &mut Cursor::new(b"now full"))
        .unwrap();
    assert_eq!(fx.get("empty.bin"), b"now full");
}

#[test]
fn stor_outside_a_container_or_over_a_directory_is_550() {
    let fx = Fixture::new("stor-bad");
    fx.put_with("dir", "", &[("Content-Type", "application/directory")]);
    fx.put("pseudo/child", "c");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    for target in [
        "/at-root.bin".to_owned(),
        fx.path(""),
        fx.path("dir"),
        fx.path("pseudo"),
        "/no-such-container-here/x.bin".to_owned(),
    ] {
        let code = raw.upload(&format!("STOR {target}"), b"payload");
        assert_eq!(code, 550, "STOR {target}");
        assert!(
            raw.silent_for(Duration::from_millis(100)),
            "STOR {target}: a second reply"
        );
    }
    assert_eq!(fx.names(), ["dir", "pseudo/child"]);
}

#[test]
fn mkd_makes_containers_and_markers_idempotently() {
    let fx = Fixture::new("mkd");
    fx.put("file", "f");
    let new_container = format!("{}-made", fx.container);
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    assert_eq!(raw.cmd(&format!("MKD /{new_container}")).0, 257);
    assert_eq!(
        raw.cmd(&format!("MKD /{new_container}")).0,
        257,
        "MKD is idempotent"
    );
    assert_eq!(raw.cmd(&format!("RMD /{new_container}")).0, 250);
    assert_eq!(raw.cmd(&format!("CWD /{new_container}")).0, 550);

    assert_eq!(raw.cmd(&format!("MKD {}", fx.path("a"))).0, 257);
    assert_eq!(raw.cmd(&format!("MKD {}", fx.path("a"))).0, 257);
    assert_eq!(raw.cmd(&format!("MKD {}", fx.path("a/b c ☺"))).0, 257);
    let marker = fx.head("a/b c ☺").unwrap();
    assert_eq!(
        marker.content_type.as_deref(),
        Some("application/directory")
    );
    assert_eq!(marker.content_length, 0);
    // A file is never turned into a directory.
    assert_eq!(raw.cmd(&format!("MKD {}", fx.path("file"))).0, 550);
    assert_eq!(fx.get("file"), b"f");
    assert_eq!(raw.cmd("MKD /no-such-container-here/x").0, 550);
    assert!(raw.silent_for(Duration::from_millis(100)));
}

#[test]
fn rmd_removes_only_empty_directories() {
    let fx = Fixture::new("rmd");
    fx.put_with("marker", "", &[("Content-Type", "application/directory")]);
    fx.put("slash/", "");
    fx.put_with("full", "", &[("Content-Type", "application/directory")]);
    fx.put("full/child.txt", "c");
    fx.put("pseudo/child.txt", "c");
    fx.put("file.txt", "f");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    let (code, text) = raw.cmd(&format!("RMD {}", fx.path("full")));
    assert_eq!((code, text.as_str()), (550, "Directory not empty"));
    assert_eq!(raw.cmd(&format!("RMD {}", fx.path("pseudo"))).0, 550);
    assert_eq!(
        raw.cmd(&format!("RMD {}", fx.path(""))).0,
        550,
        "a non-empty container stays"
    );
    assert_eq!(raw.cmd(&format!("RMD {}", fx.path("file.txt"))).0, 550);
    assert_eq!(raw.cmd(&format!("RMD {}", fx.path("missing"))).0, 550);
    assert_eq!(raw.cmd("RMD /").0, 550);
    assert_eq!(raw.cmd(&format!("RMD {}", fx.path("marker"))).0, 250);
    assert_eq!(raw.cmd(&format!("RMD {}", fx.path("slash"))).0, 250);
    assert!(raw.silent_for(Duration::from_millis(100)));
    assert_eq!(
        fx.names(),
        ["file.txt", "full", "full/child.txt", "pseudo/child.txt"]
    );
}

#[test]
fn dele_removes_files_only() {
    let fx = Fixture::new("dele");
    fx.put("a.txt", "a");
    fx.put("keep/b.txt", "b");
    fx.put_with("marker", "", &[("Content-Type", "application/directory")]);
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    assert_eq!(raw.cmd(&format!("DELE {}", fx.path("a.txt"))).0, 250);
    assert_eq!(raw.cmd(&format!("DELE {}", fx.path("a.txt"))).0, 550);
    assert_eq!(raw.cmd(&format!("DELE {}", fx.path("keep"))).0, 550);
    assert_eq!(raw.cmd(&format!("DELE {}", fx.path("marker"))).0, 550);
    assert_eq!(raw.cmd(&format!("DELE {}", fx.path(""))).0, 550);
    assert_eq!(raw.cmd("DELE /").0, 550);
    assert!(raw.silent_for(Duration::from_millis(100)));
    assert_eq!(fx.names(), ["keep/b.txt", "marker"]);
}

#[test]
fn appe_and_rest_continue_files_and_stale_offsets_never_reach_an_upload() {
    let fx = Fixture::new("offsets");
    fx.put("keep.txt", "original");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    assert_eq!(raw.cmd("TYPE I").0, 200);

    // APPE appends (tests/resume.rs has the large files and the resumes).
    assert_eq!(
        raw.upload(&format!("APPE {}", fx.path("keep.txt")), b" more"),
        226
    );
    assert_eq!(fx.get("keep.txt"), b"original more");
    // APPE to a new file is a plain upload.
    assert_eq!(
        raw.upload(&format!("APPE {}", fx.path("new.txt")), b"fresh"),
        226
    );
    assert_eq!(fx.get("new.txt"), b"fresh");

    // A REST used by a failed RETR is gone: the next STOR writes the whole file.
    assert_eq!(raw.cmd("REST 5").0, 350);
    let (replies, _) = raw.transfer(&format!("RETR {}", fx.path("missing")));
    assert_eq!(replies.last().unwrap().0, 550);
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("keep.txt")), b"yy"),
        226
    );
    assert_eq!(fx.get("keep.txt"), b"yy");
    // REST 0 is an ordinary upload.
    assert_eq!(raw.cmd("REST 0").0, 350);
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("keep.txt")), b"zz"),
        226
    );
    assert_eq!(fx.get("keep.txt"), b"zz");
}

#[test]
fn a_read_only_acl_refuses_writes_with_550() {
    let fx = Fixture::new("readonly");
    fx.put("doc.txt", "read me");
    fx.block_on(
        fx.session
            .put_container(&fx.container, &[("X-Container-Read", "test:reader")]),
    )
    .unwrap();
    let gw = TestGateway::start();
    let mut raw = gw.raw();
    raw.cmd("USER test:reader");
    assert_eq!(raw.cmd("PASS reading").0, 230);
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("new.txt")), b"nope"),
        550
    );
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("doc.txt")), b"nope"),
        550
    );
    assert_eq!(raw.cmd(&format!("DELE {}", fx.path("doc.txt"))).0, 550);
    assert_eq!(raw.cmd(&format!("MKD {}", fx.path("d"))).0, 550);
    assert_eq!(fx.names(), ["doc.txt"]);
    assert_eq!(fx.get("doc.txt"), b"read me");
}

#[test]
fn over_quota_gets_552_and_stores_nothing() {
    let fx = Fixture::new("quota");
    fx.put("existing.bin", vec![0u8; 100]);
    fx.block_on(
        fx.session
            .put_container(&fx.container, &[("X-Container-Meta-Quota-Bytes", "50")]),
    )
    .unwrap();
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("more.bin")), &random(100_000)),
        552
    );
    assert_eq!(fx.names(), ["existing.bin"]);
}

#[test]
fn a_reset_mid_upload_gets_426_and_creates_nothing() {
    let fx = Fixture::new("reset");
    fx.put("kept.bin", "old content");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    for key in ["new.bin", "kept.bin"] {
        let data = raw.data();
        raw.send(&format!("STOR {}", fx.path(key)));
        assert_eq!(raw.reply().0, 150);
        let mut data = data;
        data.write_all(&random(1_000_000)).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // SO_LINGER 0: closing sends a reset, which is what a crashed or killed client looks like.
        socket2::SockRef::from(&data)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(data);
        assert_eq!(raw.reply().0, 426, "{key}");
        assert!(
            raw.silent_for(Duration::from_millis(200)),
            "{key}: a second reply"
        );
    }
    assert_eq!(fx.names(), ["kept.bin"]);
    assert_eq!(fx.get("kept.bin"), b"old content");
    assert_eq!(raw.cmd("NOOP").0, 200);
}

#[test]
fn slow_transfers_are_never_cut_by_the_answer_timeout() {
    // With a 2 s answer timeout, an upload and a download that each last about 5 s must succeed: the timeout
    // bounds Swift's silence, not the length of a transfer paced by the FTP client.
    let fx = Fixture::new("slow");
    let gw = TestGateway::start_with(&["--swift-timeout", "2"]);
    let mut raw = gw.raw_logged_in();
    let mut data = raw.data();
    raw.send(&format!("STOR {}", fx.path("slow.bin")));
    assert_eq!(raw.reply().0, 150);
    let sent = crate::common::random(20 * 32 * 1024);
    for piece in sent.chunks(32 * 1024) {
        data.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(data);
    assert_eq!(raw.reply().0, 226);
    assert_eq!(fx.get("slow.bin"), sent);

    let stored = crate::common::random(32 << 20);
    fx.put("big.bin", stored.clone());
    let mut data = raw.data();
    raw.send(&format!("RETR {}", fx.path("big.bin")));
    assert_eq!(raw.reply().0, 150);
    let mut got = Vec::with_capacity(32 << 20);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut data, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if got.len() < 8 << 20 {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    assert_eq!(raw.reply().0, 226);
    assert!(got == stored, "the slow download's bytes differ");
}

#[test]
fn a_write_only_acl_is_a_drop_box() {
    let fx = Fixture::new("dropbox");
    fx.block_on(
        fx.session
            .put_container(&fx.container, &[("X-Container-Write", "test:reader")]),
    )
    .unwrap();
    let gw = TestGateway::start();
    let mut raw = gw.raw();
    raw.cmd("USER test:reader");
    assert_eq!(raw.cmd("PASS reading").0, 230);
    // The user can neither list nor HEAD, but may put files in.
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("incoming.txt")), b"dropped"),
        226
    );
    assert_eq!(fx.get("incoming.txt"), b"dropped");
}

#[test]
fn uploads_into_one_directory_ask_swift_once_and_still_never_land_on_a_directory() {
    use crate::common::faulty::{FaultProxy, swift_addr};
    let fx = Fixture::new("stor-run");
    let proxy = FaultProxy::start(swift_addr());
    let gw = TestGateway::start_with(&["-a", &proxy.auth_url()]);
    let mut raw = gw.raw_logged_in();
    let narrow = |name: &str| {
        let query = format!("prefix=a%2F{name}%2F");
        String::from_utf8_lossy(&proxy.recorded())
            .match_indices(query.as_str())
            .count()
    };

    // The first upload asks about its name, the second lists the directory, the rest ask nothing.
    for i in 0..6 {
        let body = random(1000 + i);
        assert_eq!(
            raw.upload(&format!("STOR {}", fx.path(&format!("a/f{i}"))), &body),
            226
        );
        assert_eq!(fx.get(&format!("a/f{i}")), body);
    }
    assert_eq!(narrow("f0"), 1);
    for i in 2..6 {
        assert_eq!(narrow(&format!("f{i}")), 0, "f{i}");
    }

    // What this session made since is known at once: a directory, a file's folder.
    assert_eq!(raw.cmd(&format!("MKD {}", fx.path("a/made"))).0, 257);
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("a/made")), b"x"),
        550
    );
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("a/sub/f")), b"x"),
        226
    );
    assert_eq!(raw.upload(&format!("STOR {}", fx.path("a/sub")), b"x"), 550);
    // A directory another client made is seen once the session's view is older than its 5 s.
    fx.put("a/theirs/f", "theirs");
    std::thread::sleep(Duration::from_millis(5100));
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("a/theirs")), b"x"),
        550
    );
    assert_eq!(fx.get("a/theirs/f"), b"theirs");
    let mut names = fx.names();
    names.retain(|n| !n.starts_with("a/f"));
    assert_eq!(names, ["a/made", "a/sub/f", "a/theirs/f"]);
}

/// Makes tempauth forget `user`'s current token: it lives in the lab's memcached under the MD5 of
/// `AUTH_/token/<token>` (and the user's pointer to it under `AUTH_/user/<user>`), as Swift's memcache client
/// names keys. The next request with it gets 401.
fn forget_swift_token(user: &str, key: &str) {
    use std::io::{BufRead, BufReader};
    let out = std::process::Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", "-H"])
        .arg(format!("X-Auth-User: {user}"))
        .args(["-H", &format!("X-Auth-Key: {key}")])
        .arg(crate::common::auth_url())
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&out.stdout);
    let token = headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("X-Auth-Token: ")
                .or_else(|| l.strip_prefix("x-auth-token: "))
        })
        .expect("a token from tempauth")
        .trim()
        .to_owned();
    let port = std::env::var("SWIFT_LAB_MEMCACHE_PORT").unwrap_or_else(|_| "11611".to_owned());
    let mut memcached = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    let mut replies = BufReader::new(memcached.try_clone().unwrap());
    for name in [format!("AUTH_/token/{token}"), format!("AUTH_/user/{user}")] {
        let digest = crate::common::md5_hex(name.as_bytes());
        memcached
            .write_all(format!("delete {digest}\r\n").as_bytes())
            .unwrap();
        let mut reply = String::new();
        replies.read_line(&mut reply).unwrap();
        assert_eq!(reply.trim(), "DELETED", "memcached: {name}");
    }
}

#[test]
fn a_small_upload_whose_token_swift_forgot_is_stored_with_a_renewed_one() {
    // A user of the test account that no other test logs in as: its token is the one made invalid.
    const RENEWAL_USER: &str = "test:renewal";
    const RENEWAL_KEY: &str = "renewing";
    let fx = Fixture::new("stor-401");
    let gw = TestGateway::start();
    let mut raw = gw.raw();
    assert_eq!(raw.cmd(&format!("USER {RENEWAL_USER}")).0, 331);
    assert_eq!(raw.cmd(&format!("PASS {RENEWAL_KEY}")).0, 230);
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("before")), b"one"),
        226
    );
    // The token the gateway holds is no longer valid: the small file's one PUT gets 401 and is not sent again
    // (its body is a stream); the checked path renews the token and stores the file.
    forget_swift_token(RENEWAL_USER, RENEWAL_KEY);
    let body = random(4096);
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("after")), &body),
        226
    );
    assert_eq!(fx.get("after"), body);
}

#[test]
fn a_tree_upload_asks_swift_once_per_new_directory() {
    use crate::common::faulty::{FaultProxy, swift_addr};
    let fx = Fixture::new("tree-up");
    fx.put("file", "f");
    let proxy = FaultProxy::start(swift_addr());
    let gw = TestGateway::start_with(&["-a", &proxy.auth_url()]);
    let mut raw = gw.raw_logged_in();
    // Request lines to Swift sent since the last call (the proxy records them all).
    let mut seen = 0;
    let mut since = || {
        let recorded = String::from_utf8_lossy(&proxy.recorded()).into_owned();
        let lines: Vec<String> = recorded
            .split("\r\n")
            .filter(|l| l.ends_with(" HTTP/1.1") && !l.contains("/auth/"))
            .map(str::to_owned)
            .collect();
        let new = lines[seen..].to_vec();
        seen = lines.len();
        (new.len(), new)
    };
    since();

    // lftp mirror -R's steps for each directory: MKD d, CWD d, a listing of d, files, CWD back.
    assert_eq!(raw.cmd(&format!("MKD {}", fx.path("d"))).0, 257);
    let (n, lines) = since();
    assert_eq!(n, 1, "MKD of a free name is one conditional PUT: {lines:?}");
    assert_eq!(raw.cmd(&format!("CWD {}", fx.path("d"))).0, 250);
    assert_eq!(since().0, 0, "CWD into the directory just made");
    let (replies, listed) = raw.transfer("MLSD");
    assert_eq!(replies.last().unwrap().0, 226);
    assert!(listed.is_empty(), "{}", String::from_utf8_lossy(&listed));
    assert_eq!(
        since().0,
        1,
        "the empty listing needs no HEAD to know it exists"
    );
    // The files' directory check answers from that listing: their PUTs, and no listing of d or of their names.
    assert_eq!(raw.upload("STOR f1", b"one"), 226);
    assert_eq!(raw.upload("STOR f2", b"two"), 226);
    let (_, lines) = since();
    let object_requests: Vec<&String> = lines.iter().filter(|l| !l.contains("_segments")).collect();
    assert_eq!(object_requests.len(), 2, "{lines:?}");
    // (A line may start with the previous request's body: the proxy records the stream.)
    assert!(
        object_requests.iter().all(|l| l.contains("PUT /v1/")),
        "{lines:?}"
    );
    assert_eq!(raw.cmd(&format!("CWD /{}", fx.container)).0, 250);
    assert_eq!(
        since().0,
        0,
        "CWD back to the container, known from the file below"
    );
    // lftp mirror -R after mkdir -p makes the target's path again: its conditional PUT, refused, and no look
    // at what is there.
    assert_eq!(raw.cmd(&format!("MKD {}", fx.path("d"))).0, 257);
    let (n, lines) = since();
    assert_eq!(n, 1, "MKD of a directory just seen: {lines:?}");
    // The user's next session knows them too (FileZilla's transfer connections, lftp's next command).
    let mut next = gw.raw_logged_in();
    assert_eq!(next.cmd(&format!("CWD {}", fx.path("d"))).0, 250);
    assert_eq!(since().0, 0, "CWD in the user's next session");
    drop(next);

    // What is at a name still decides: a file is no directory, an existing directory is made again.
    assert_eq!(raw.cmd(&format!("MKD {}", fx.path("file"))).0, 550);
    assert_eq!(fx.get("file"), b"f");
    assert_eq!(raw.cmd(&format!("MKD {}", fx.path("d"))).0, 257);
    assert_eq!(raw.cmd(&format!("CWD {}", fx.path("file"))).0, 550);
    // Removed by this session: forgotten at once.
    assert_eq!(raw.cmd(&format!("DELE {}", fx.path("d/f1"))).0, 250);
    assert_eq!(raw.cmd(&format!("DELE {}", fx.path("d/f2"))).0, 250);
    assert_eq!(raw.cmd(&format!("RMD {}", fx.path("d"))).0, 250);
    assert_eq!(raw.cmd(&format!("CWD {}", fx.path("d"))).0, 550);
    // Made again, then removed by another client: seen once the session's view is older than its 5 s.
    assert_eq!(raw.cmd(&format!("MKD {}", fx.path("d"))).0, 257);
    fx.block_on(fx.session.delete_object(&fx.container, "d"))
        .unwrap();
    std::thread::sleep(Duration::from_millis(5100));
    assert_eq!(raw.cmd(&format!("CWD {}", fx.path("d"))).0, 550);
    assert_eq!(fx.names(), ["file"]);
}
