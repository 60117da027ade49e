//! The listing cache: read-your-writes and the TTL for others' changes, one Swift listing for FileZilla's
//! LIST-then-SIZE-then-MDTM, DLO HEADs remembered; and two gateway processes sharing a real memcached (listings,
//! tokens, nothing readable in it, and going on when it is stopped).

use crate::common::faulty::{FaultProxy, swift_addr};
use crate::common::process::{Foreground, free_port, http_get, metric, wait_for};
use crate::common::swift::Fixture;
use crate::common::{KEY, RawFtp, TestGateway, USER, auth_url, swift_token};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The names a `NLST` of `path` shows.
fn names(raw: &mut RawFtp, path: &str) -> Vec<String> {
    let (replies, bytes) = raw.transfer(&format!("NLST {path}"));
    assert_eq!(replies.last().unwrap().0, 226, "{replies:?}");
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_client_sees_its_own_writes_at_once_and_others_within_the_ttl() {
    let fx = Fixture::new("cache-ryw");
    fx.put("a.txt", "a");
    let gw = TestGateway::start_with(&["--cache-ttl", "3"]);
    let mut raw = gw.raw_logged_in();
    let dir = fx.path("");
    assert_eq!(names(&mut raw, &dir), ["a.txt"]);
    // Someone else writes: not seen within the TTL.
    fx.put("other.txt", "o");
    assert_eq!(names(&mut raw, &dir), ["a.txt"]);
    // Our own writes are seen at once, and the listing is fresh again (it shows the other file too).
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("mine.txt")), b"m"),
        226
    );
    assert_eq!(names(&mut raw, &dir), ["a.txt", "mine.txt", "other.txt"]);
    // Deep writes refresh every directory above them.
    assert_eq!(raw.cmd(&format!("MKD {}", fx.path("d"))).0, 257);
    assert_eq!(names(&mut raw, &fx.path("d")), Vec::<String>::new());
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("d/e/f.txt")), b"f"),
        226
    );
    assert_eq!(names(&mut raw, &fx.path("d")), ["e"]);
    assert_eq!(raw.cmd(&format!("SIZE {}", fx.path("d/e/f.txt"))).0, 213);
    assert_eq!(raw.cmd(&format!("DELE {}", fx.path("mine.txt"))).0, 250);
    assert_eq!(names(&mut raw, &dir), ["a.txt", "d", "other.txt"]);
    assert_eq!(raw.cmd(&format!("SIZE {}", fx.path("mine.txt"))).0, 550);
    assert_eq!(raw.cmd(&format!("RNFR {}", fx.path("a.txt"))).0, 350);
    assert_eq!(raw.cmd(&format!("RNTO {}", fx.path("d/a.txt"))).0, 250);
    assert_eq!(names(&mut raw, &dir), ["d", "other.txt"]);
    assert_eq!(names(&mut raw, &fx.path("d")), ["a.txt", "e"]);
    // Another client's change shows once the TTL is over.
    fx.put("late.txt", "l");
    assert_eq!(names(&mut raw, &dir), ["d", "other.txt"]);
    std::thread::sleep(Duration::from_millis(3200));
    assert_eq!(names(&mut raw, &dir), ["d", "late.txt", "other.txt"]);
    assert_eq!(raw.cmd("QUIT").0, 221);
}

/// Requests that reached Swift through the proxy: lines starting with `method` and naming `container`.
fn requests(proxy: &FaultProxy, method: &str, container: &str) -> usize {
    let recorded = String::from_utf8_lossy(&proxy.recorded()).into_owned();
    recorded
        .split("\r\n")
        .filter(|l| l.starts_with(&format!("{method} ")) && l.contains(container))
        .count()
}

#[test]
fn list_then_size_and_mdtm_of_each_file_costs_one_listing() {
    let fx = Fixture::new("cache-fz");
    let files: Vec<String> = (0..40).map(|i| format!("f{i:02}.bin")).collect();
    fx.put_many(files.clone(), b"0123456789", 8);
    let proxy = FaultProxy::start(swift_addr());
    let gw = TestGateway::start_with(&["-a", &proxy.auth_url(), "--cache-ttl", "30"]);
    let mut raw = gw.raw_logged_in();
    // FileZilla: CWD into the directory, LIST it, then SIZE and MDTM of each file.
    assert_eq!(raw.cmd(&format!("CWD {}", fx.path(""))).0, 250);
    let heads = requests(&proxy, "HEAD", &fx.container);
    let (replies, _) = raw.transfer(&format!("LIST {}", fx.path("")));
    assert_eq!(replies.last().unwrap().0, 226);
    let listings = requests(&proxy, "GET", &format!("/{}?", fx.container));
    for f in &files {
        assert_eq!(raw.cmd(&format!("SIZE {}", fx.path(f))), (213, "10".into()));
        assert_eq!(raw.cmd(&format!("MDTM {}", fx.path(f))).0, 213);
    }
    assert_eq!(requests(&proxy, "HEAD", &fx.container), heads);
    assert_eq!(
        requests(&proxy, "GET", &format!("/{}?", fx.container)),
        listings,
        "SIZE/MDTM/CWD went to Swift"
    );
    assert!(listings <= 2, "{listings} listing requests");
    assert_eq!(raw.cmd("QUIT").0, 221);
}

#[test]
fn empty_files_are_headed_once_per_version_and_manifests_once_per_listing_ttl() {
    let fx = Fixture::new("cache-dlo");
    let files: Vec<String> = (0..30).map(|i| format!("e{i:02}")).collect();
    fx.put_many(files, b"", 8);
    fx.put_with(
        "dlo",
        "",
        &[("X-Object-Manifest", &format!("{}/e", fx.container))],
    );
    let proxy = FaultProxy::start(swift_addr());
    // TTL 0: listings are not cached, so only the remembered HEAD results can spare the HEADs. The manifest
    // points where no known writer puts segments: only `dlo-check = all` finds it.
    let gw = TestGateway::start_with(&[
        "-a",
        &proxy.auth_url(),
        "--cache-ttl",
        "0",
        "--dlo-check",
        "all",
    ]);
    let mut raw = gw.raw_logged_in();
    let (replies, _) = raw.transfer(&format!("LIST {}", fx.path("")));
    assert_eq!(replies.last().unwrap().0, 226);
    let first = requests(&proxy, "HEAD", &fx.container);
    assert_eq!(first, 31);
    // The 30 plain empty files are remembered; the manifest is HEADed again: its size changes when segments are
    // added, without the manifest changing, so it is trusted for the listing TTL only (0 here).
    let (replies, _) = raw.transfer(&format!("LIST {}", fx.path("")));
    assert_eq!(replies.last().unwrap().0, 226);
    assert_eq!(requests(&proxy, "HEAD", &fx.container), first + 1);
    fx.put("e99", "abc");
    let (replies, bytes) = raw.transfer(&format!("LIST {}", fx.path("")));
    assert_eq!(replies.last().unwrap().0, 226);
    assert_eq!(requests(&proxy, "HEAD", &fx.container), first + 2);
    let text = String::from_utf8(bytes).unwrap();
    let dlo = text.lines().find(|l| l.ends_with(" dlo")).unwrap();
    assert_eq!(dlo.split_whitespace().nth(4), Some("3"), "{dlo}");
    // A new version of a plain empty file is HEADed again.
    std::thread::sleep(Duration::from_millis(1100));
    fx.put("e00", "");
    let (replies, _) = raw.transfer(&format!("LIST {}", fx.path("")));
    assert_eq!(replies.last().unwrap().0, 226);
    assert_eq!(requests(&proxy, "HEAD", &fx.container), first + 4);
    assert_eq!(raw.cmd("QUIT").0, 221);
}

#[test]
fn only_empty_files_with_segments_where_writers_put_them_are_headed() {
    let fx = Fixture::new("cache-dlo-conv");
    let segments = fx.segments();
    let files: Vec<String> = (0..200).map(|i| format!("d/e{i:03}")).collect();
    fx.put_many(files, b"", 16);
    // python-swiftclient's DLO layout: `<container>_segments/<name>/<mtime>/<size>/<segment size>/<index>`.
    segments.put("d/swift/1.0/5/3/00000000", "abc");
    segments.put("d/swift/1.0/5/3/00000001", "de");
    let manifest = format!("{}/d/swift/1.0/5/3/", segments.container);
    fx.put_with("d/swift", "", &[("X-Object-Manifest", &manifest)]);
    // ftp-cloudfs's: `<name>.part/<index>` beside the manifest.
    fx.put("d/cloudfs.part/000000", "1234");
    let manifest = format!("{}/d/cloudfs.part/", fx.container);
    fx.put_with("d/cloudfs", "", &[("X-Object-Manifest", &manifest)]);
    let proxy = FaultProxy::start(swift_addr());
    let sizes = |check: &str| {
        let gw = TestGateway::start_with(&["-a", &proxy.auth_url(), "--dlo-check", check]);
        let mut raw = gw.raw_logged_in();
        let before = requests(&proxy, "HEAD", &fx.container);
        let (replies, bytes) = raw.transfer(&format!("LIST {}", fx.path("d")));
        assert_eq!(replies.last().unwrap().0, 226);
        let heads = requests(&proxy, "HEAD", &fx.container) - before;
        let text = String::from_utf8(bytes).unwrap();
        let size = |name: &str| {
            let line = text
                .lines()
                .find(|l| l.ends_with(&format!(" {name}")))
                .unwrap();
            line.split_whitespace().nth(4).unwrap().to_owned()
        };
        assert_eq!(text.lines().count(), 203, "{text}");
        (heads, size("swift"), size("cloudfs"))
    };
    // Default: two HEADs (the two manifests) after one listing of the segments container, both sized.
    assert_eq!(sizes("segments"), (2, "5".into(), "4".into()));
    assert_eq!(sizes("all"), (202, "5".into(), "4".into()));
    assert_eq!(sizes("none"), (0, "0".into(), "0".into()));
}

/// A memcached of the test's own (not the Swift lab's), stopped by its pid.
struct Memcached {
    child: Child,
    addr: SocketAddr,
}

impl Memcached {
    fn start() -> Self {
        let port = free_port();
        let mut cmd = Command::new("memcached");
        cmd.args([
            "-l",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "0",
            "-m",
            "64",
        ]);
        if nix::unistd::geteuid().is_root() {
            cmd.args(["-u", "nobody"]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("memcached (installed by tests/swift-lab.sh)");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_for("memcached", Duration::from_secs(10), || {
            TcpStream::connect(addr).is_ok()
        });
        Self { child, addr }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Every key and value in it (text protocol: `lru_crawler metadump all`, then `get` each key).
    fn dump(&self) -> Vec<(String, Vec<u8>)> {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        s.write_all(b"lru_crawler metadump all\r\n").unwrap();
        let mut keys = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line == "END" || line.is_empty() {
                break;
            }
            if let Some(k) = line.strip_prefix("key=") {
                keys.push(k.split(' ').next().unwrap().to_owned());
            }
        }
        let mut out = Vec::new();
        for k in keys {
            s.write_all(format!("get {k}\r\n").as_bytes()).unwrap();
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            if header.starts_with("END") {
                continue;
            }
            let len: usize = header
                .trim_end()
                .rsplit(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let mut value = vec![0u8; len + 2];
            std::io::Read::read_exact(&mut reader, &mut value).unwrap();
            value.truncate(len);
            let mut end = String::new();
            reader.read_line(&mut end).unwrap();
            out.push((k, value));
        }
        out
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        self.stop();
    }
}

fn login(port: u16) -> RawFtp {
    RawFtp::logged_in(SocketAddr::from(([127, 0, 0, 1], port)))
}

#[test]
fn two_instances_share_listings_and_tokens_through_memcached_and_survive_its_loss() {
    let fx = Fixture::new("cache-two");
    fx.put("seed.txt", "s");
    let mut mc = Memcached::start();
    let (pa, pb, mb) = (free_port(), free_port(), free_port());
    let metrics_b = SocketAddr::from(([127, 0, 0, 1], mb));
    let shared = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "--memcache",
            &mc.addr.to_string(),
            "--cache-secret",
            "test-secret-for-two-instances",
            "--cache-ttl",
            "4",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let args_a = shared(&[]);
    let args_b = shared(&["--metrics-address", &metrics_b.to_string()]);
    let _a = Foreground::start(
        pa,
        &auth_url(),
        &args_a.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let _b = Foreground::start(
        pb,
        &auth_url(),
        &args_b.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let dir = fx.path("");

    // A logs in first; B then finds the token in memcached and never asks the auth service.
    let mut a = login(pa);
    let mut b = login(pb);
    let (_, m) = http_get(metrics_b, "/metrics");
    assert_eq!(
        metric(&m, "swiftftp_swift_requests_total{op=\"authenticate\""),
        0.0,
        "{m}"
    );

    // B caches the listing; a write through A is seen through B at once.
    assert_eq!(names(&mut b, &dir), ["seed.txt"]);
    assert_eq!(
        a.upload(&format!("STOR {}", fx.path("via-a.txt")), b"a"),
        226
    );
    assert_eq!(names(&mut b, &dir), ["seed.txt", "via-a.txt"]);
    // A write from outside shows through both within the TTL.
    fx.put("outside.txt", "o");
    assert_eq!(names(&mut b, &dir), ["seed.txt", "via-a.txt"]);
    // memcached counts expiry in whole seconds: a TTL of 4 may last up to 5.
    std::thread::sleep(Duration::from_millis(5500));
    assert_eq!(
        names(&mut b, &dir),
        ["outside.txt", "seed.txt", "via-a.txt"]
    );
    assert_eq!(
        names(&mut a, &dir),
        ["outside.txt", "seed.txt", "via-a.txt"]
    );

    // Nothing readable in memcached carries the password or the token.
    let token = swift_token();
    let dump = mc.dump();
    assert!(dump.len() >= 2, "memcached holds {} entries", dump.len());
    for (k, v) in &dump {
        let text = String::from_utf8_lossy(v);
        // Nor any name, size or time of a listing (they are encrypted).
        for secret in [
            KEY,
            token.as_str(),
            USER,
            "AUTH_test",
            "seed.txt",
            "via-a.txt",
            "outside.txt",
            fx.container.as_str(),
        ] {
            assert!(
                !k.contains(secret) && !text.contains(secret),
                "{secret:?} readable under {k}"
            );
        }
    }

    // memcached goes away: both instances go on, and see writes at once (nothing is cached any more).
    mc.stop();
    assert_eq!(
        a.upload(&format!("STOR {}", fx.path("after.txt")), b"x"),
        226
    );
    assert_eq!(
        names(&mut b, &dir),
        ["after.txt", "outside.txt", "seed.txt", "via-a.txt"]
    );
    let mut c = login(pb);
    assert_eq!(names(&mut c, &dir).len(), 4);
    for mut raw in [a, b, c] {
        assert_eq!(raw.cmd("QUIT").0, 221);
    }
}

#[test]
fn values_over_memcacheds_item_limit_are_split_and_read_back() {
    let mc = Memcached::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cache = swiftftp::cache::Cache::memcached(b"s", &[mc.addr.to_string()]);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    rt.block_on(async {
        cache.set("big", big.clone(), Duration::from_secs(60)).await;
        assert_eq!(cache.get("big").await.unwrap(), big);
        cache
            .set("small", b"v".to_vec(), Duration::from_secs(60))
            .await;
        assert_eq!(cache.get("small").await.unwrap(), b"v");
        cache.delete("big").await;
        assert!(cache.get("big").await.is_none());
    });
}

#[test]
fn an_unreachable_memcached_never_stalls_the_gateway() {
    let fx = Fixture::new("cache-nomc");
    fx.put("a.txt", "a");
    // Nothing listens there: every connection attempt is refused.
    let nowhere = format!("127.0.0.1:{}", free_port());
    let gw = TestGateway::start_with(&["--memcache", &nowhere, "--cache-secret", "s"]);
    let started = std::time::Instant::now();
    let mut raw = gw.raw_logged_in();
    assert_eq!(names(&mut raw, &fx.path("")), ["a.txt"]);
    // Past the retry delay the client is built again (and fails again): still no stall.
    std::thread::sleep(Duration::from_millis(5500));
    assert_eq!(raw.upload(&format!("STOR {}", fx.path("b.txt")), b"b"), 226);
    assert_eq!(names(&mut raw, &fx.path("")), ["a.txt", "b.txt"]);
    assert_eq!(raw.cmd(&format!("SIZE {}", fx.path("b.txt"))).0, 213);
    assert_eq!(raw.cmd("QUIT").0, 221);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}
