//! The read path against the real Swift, driven by real FTP clients: navigation, listings, SIZE/MDTM, RETR with
//! REST, names with spaces and non-ASCII characters, large listings and Dynamic Large Objects.

use crate::common::TestGateway;
use crate::common::swift::Fixture;
use std::collections::HashSet;
use std::time::Duration;

const MARKER: (&str, &str) = ("Content-Type", "application/directory");

/// A small tree with every directory convention.
fn tree(name: &str) -> Fixture {
    let fx = Fixture::new(name);
    fx.put("top.txt", "top level\n");
    fx.put("dir a/héllo wörld ☺.txt", "non-ascii\n");
    fx.put("dir a/nested/deep.bin", vec![7u8; 1000]);
    fx.put_with("marker", "", &[MARKER]);
    fx.put_with("xdir", "", &[("Content-Type", "application/x-directory")]);
    fx.put("slashdir/", ""); // a trailing-slash marker (Cyberduck, rclone, S3 tools)
    fx.put("empty.txt", "");
    fx
}

#[test]
fn cwd_pwd_cdup_and_confinement() {
    let fx = tree("nav");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    assert_eq!(raw.cmd(&format!("CWD {}", fx.path(""))).0, 250);
    assert_eq!(raw.cmd("CWD dir a").0, 250);
    assert_eq!(raw.cmd("PWD"), (257, format!("\"{}\"", fx.path("dir a"))));
    assert_eq!(raw.cmd("CDUP").0, 250);
    assert_eq!(raw.cmd("PWD"), (257, format!("\"{}\"", fx.path(""))));
    // Every convention of directory can be entered.
    for dir in ["marker", "xdir", "slashdir", "dir a/nested"] {
        assert_eq!(
            raw.cmd(&format!("CWD {}", fx.path(dir))).0,
            250,
            "CWD {dir}"
        );
    }
    // CWD into a file, or into nothing, is 550.
    assert_eq!(raw.cmd(&format!("CWD {}", fx.path("top.txt"))).0, 550);
    assert_eq!(raw.cmd(&format!("CWD {}", fx.path("missing"))).0, 550);
    assert_eq!(raw.cmd("CWD /no-such-container-for-sure").0, 550);

    // `CWD ../../..` from a container lands at `/`: what the session then sees is the account.
    assert_eq!(raw.cmd(&format!("CWD {}", fx.path(""))).0, 250);
    assert_eq!(raw.cmd("CWD ../../..").0, 250);
    let (replies, body) = raw.transfer("NLST");
    assert_eq!(replies.last().unwrap().0, 226);
    let names: Vec<&str> = std::str::from_utf8(&body).unwrap().lines().collect();
    assert!(names.contains(&fx.container.as_str()), "{names:?}");
    // And relative paths resolve from `/`.
    assert_eq!(
        raw.cmd(&format!("SIZE {}/top.txt", fx.container)),
        (213, "10".to_owned())
    );
    assert_eq!(raw.cmd("CWD /..").0, 250);
    assert_eq!(
        raw.cmd(&format!(
            "SIZE ../{}/../{}/top.txt",
            fx.container, fx.container
        ))
        .0,
        213
    );
}

#[test]
fn list_shows_unix_lines_with_the_owner_and_every_directory_kind() {
    let fx = tree("list");
    let gw = TestGateway::start();
    let mut ftp = gw.ftp();
    let lines = ftp.list(Some(&fx.path(""))).unwrap();
    let find = |name: &str| {
        lines
            .iter()
            .find(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("no {name} in {lines:#?}"))
            .clone()
    };
    for dir in ["dir a", "marker", "xdir", "slashdir"] {
        let l = find(dir);
        assert!(l.starts_with("drwxr-xr-x "), "{l}");
    }
    let top = find("top.txt");
    assert!(
        top.starts_with("-rw-r--r--   1 tester   tester         10 "),
        "{top}"
    );
    // `%b %d %H:%M` in UTC: e.g. `Nov 29 01:46`.
    let when = &top["-rw-r--r--   1 tester   tester         10 ".len()..][..12];
    assert!(
        chrono::NaiveTime::parse_from_str(&when[7..], "%H:%M").is_ok(),
        "time {when:?} in {top}"
    );
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.ends_with(' ')),
        "an empty name was listed: {lines:#?}"
    );

    // Inside a pseudo-directory, with a non-ASCII name.
    let inner = ftp.list(Some(&fx.path("dir a"))).unwrap();
    assert_eq!(inner.len(), 2, "{inner:#?}");
    assert!(
        inner
            .iter()
            .any(|l| l.ends_with(" héllo wörld ☺.txt") && l.starts_with('-'))
    );
    assert!(
        inner
            .iter()
            .any(|l| l.ends_with(" nested") && l.starts_with('d'))
    );

    // LIST of a file lists that file; LIST of a missing path is 550.
    let one = ftp.list(Some(&fx.path("dir a/nested/deep.bin"))).unwrap();
    assert_eq!(one.len(), 1);
    assert!(
        one[0].contains(" 1000 ") && one[0].ends_with(" deep.bin"),
        "{one:?}"
    );
    assert!(ftp.list(Some(&fx.path("nothing-here"))).is_err());
    // Empty directories list as empty.
    assert!(ftp.list(Some(&fx.path("marker"))).unwrap().is_empty());
    assert!(ftp.nlst(Some(&fx.path("slashdir"))).unwrap().is_empty());
}

#[test]
fn nlst_and_mlsd_give_names_and_facts() {
    let fx = tree("nlst");
    let gw = TestGateway::start();
    let mut ftp = gw.ftp();
    let mut names = ftp.nlst(Some(&fx.path(""))).unwrap();
    names.sort();
    assert_eq!(
        names,
        [
            "dir a",
            "empty.txt",
            "marker",
            "slashdir",
            "top.txt",
            "xdir"
        ]
    );
    let facts = ftp.mlsd(Some(&fx.path(""))).unwrap();
    let top = facts.iter().find(|l| l.ends_with(" top.txt")).unwrap();
    assert!(
        top.contains("type=file;") && top.contains("size=10;") && top.contains("modify="),
        "{top}"
    );
    let dir = facts.iter().find(|l| l.ends_with(" dir a")).unwrap();
    assert!(dir.contains("type=dir;"), "{dir}");
    let mlst = ftp.mlst(Some(&fx.path("top.txt"))).unwrap();
    assert!(mlst.contains("type=file;size=10;"), "{mlst}");
}

#[test]
fn account_listing_shows_containers_as_directories() {
    let fx = tree("account");
    let gw = TestGateway::start();
    let mut ftp = gw.ftp();
    let lines = ftp.list(None).unwrap();
    let line = lines
        .iter()
        .find(|l| l.ends_with(&format!(" {}", fx.container)))
        .unwrap_or_else(|| panic!("{} not in {lines:#?}", fx.container));
    assert!(line.starts_with("drwxr-xr-x "), "{line}");
    assert!(line.contains(" tester   tester "), "{line}");
}

#[test]
fn size_and_mdtm_come_from_swift() {
    let fx = tree("size");
    let gw = TestGateway::start();
    let mut ftp = gw.ftp();
    assert_eq!(ftp.size(fx.path("dir a/nested/deep.bin")).unwrap(), 1000);
    assert_eq!(ftp.size(fx.path("empty.txt")).unwrap(), 0);
    let mdtm = ftp.mdtm(fx.path("top.txt")).unwrap();
    let age = chrono::Utc::now().naive_utc() - mdtm;
    assert!(
        age.num_seconds().abs() < 600,
        "MDTM {mdtm} is not UTC now-ish"
    );
    let mut raw = gw.raw_logged_in();
    assert_eq!(raw.cmd(&format!("SIZE {}", fx.path("missing"))).0, 550);
    assert_eq!(raw.cmd(&format!("MDTM {}", fx.path("missing"))).0, 550);
}

#[test]
fn retr_streams_exact_bytes_and_rest_resumes() {
    let fx = Fixture::new("retr");
    let content: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fx.put("sub dir/blob ☺.bin", content.clone());
    let gw = TestGateway::start();
    let mut ftp = gw.ftp();
    let got = ftp
        .retr_as_buffer(&fx.path("sub dir/blob ☺.bin"))
        .unwrap()
        .into_inner();
    assert_eq!(got.len(), content.len());
    assert!(got == content, "downloaded bytes differ");

    let mut raw = gw.raw_logged_in();
    assert_eq!(raw.cmd("TYPE I").0, 200);
    assert_eq!(raw.cmd("REST 2999000").0, 350);
    let (replies, tail) = raw.transfer(&format!("RETR {}", fx.path("sub dir/blob ☺.bin")));
    assert_eq!(replies.last().unwrap().0, 226, "{replies:?}");
    assert!(tail == content[2_999_000..], "REST tail differs");
    // Restarting exactly at the end is an empty, successful transfer.
    assert_eq!(raw.cmd("REST 3000000").0, 350);
    let (replies, tail) = raw.transfer(&format!("RETR {}", fx.path("sub dir/blob ☺.bin")));
    assert_eq!(replies.last().unwrap().0, 226, "{replies:?}");
    assert!(tail.is_empty());
    // Beyond the end: refused.
    assert_eq!(raw.cmd("REST 3000001").0, 350);
    let (replies, _) = raw.transfer(&format!("RETR {}", fx.path("sub dir/blob ☺.bin")));
    assert_eq!(replies.last().unwrap().0, 550, "{replies:?}");
    assert!(
        raw.silent_for(Duration::from_millis(200)),
        "more than one final reply"
    );
}

#[test]
fn retr_of_missing_or_directory_is_550_and_sends_no_data() {
    let fx = tree("retr-missing");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    for path in [
        fx.path("missing.bin"),
        fx.path("marker"),
        fx.path("dir a"),
        fx.path(""),
        "/".to_owned(),
    ] {
        let (replies, data) = raw.transfer(&format!("RETR {path}"));
        assert_eq!(replies.last().unwrap().0, 550, "RETR {path}: {replies:?}");
        assert!(data.is_empty(), "RETR {path} sent data");
        assert!(
            raw.silent_for(Duration::from_millis(100)),
            "RETR {path}: a second reply"
        );
    }
    // The session is still usable.
    assert_eq!(raw.cmd("NOOP").0, 200);
}

#[test]
fn more_than_ten_thousand_entries_each_listed_once() {
    // 10,055 objects take a minute to write here, so the container is kept between runs (read-only test).
    let fx = Fixture::persistent("big-listing", 10_055, |fx| {
        let keys: Vec<String> = (0..10_050).map(|i| format!("d/f{i:05}")).collect();
        fx.put_many(keys, b"x", 48);
        // Subdirectories spread over the pages, to check a subdir is never repeated across a page boundary.
        fx.put_many(
            (0..5)
                .map(|i| format!("d/f{:05}/child", i * 2500))
                .collect(),
            b"y",
            5,
        );
    });
    let gw = TestGateway::start();
    let mut ftp = gw.ftp();
    let names = ftp.nlst(Some(&fx.path("d"))).unwrap();
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "duplicates in the listing");
    // Objects f00000, f02500… and their same-named subdirs collapse into one entry each (the directory).
    assert_eq!(names.len(), 10_050);
    let lines = ftp.list(Some(&fx.path("d"))).unwrap();
    assert_eq!(lines.len(), 10_050);
    assert_eq!(lines.iter().filter(|l| l.starts_with('d')).count(), 5);
}

#[test]
fn a_listing_shorter_than_the_clusters_page_is_one_request() {
    use crate::common::faulty::{FaultProxy, swift_addr};
    let fx = Fixture::new("one-page");
    for i in 0..3 {
        fx.put(&format!("d/f{i}"), "x");
    }
    let proxy = FaultProxy::start(swift_addr());
    let gw = TestGateway::start_with(&["-a", &proxy.auth_url()]);
    let mut raw = gw.raw_logged_in();
    let listings = || {
        String::from_utf8_lossy(&proxy.recorded())
            .matches("GET /v1/")
            .count()
    };
    let before = listings();
    let (replies, listed) = raw.transfer(&format!("NLST {}", fx.path("d")));
    assert_eq!(replies.last().unwrap().0, 226);
    assert_eq!(String::from_utf8_lossy(&listed).lines().count(), 3);
    // Pages of the cluster's size (/info): a page of three is the last, with no request for an empty one.
    let recorded = String::from_utf8_lossy(&proxy.recorded()).into_owned();
    assert!(recorded.contains("limit=10000"), "{recorded}");
    assert_eq!(listings() - before, 1, "{recorded}");
}

#[test]
fn dynamic_large_objects_show_and_stream_their_real_size() {
    let fx = Fixture::new("dlo");
    fx.put("big.part/000000", vec![b'a'; 1500]);
    fx.put("big.part/000001", vec![b'b'; 500]);
    let manifest = format!("{}/big.part/", fx.container);
    fx.put_with("big", "", &[("X-Object-Manifest", manifest.as_str())]);
    let gw = TestGateway::start();
    let mut ftp = gw.ftp();
    let lines = ftp.list(Some(&fx.path(""))).unwrap();
    let big = lines.iter().find(|l| l.ends_with(" big")).unwrap();
    assert!(big.contains(" 2000 "), "{big}");
    assert_eq!(ftp.size(fx.path("big")).unwrap(), 2000);
    let body = ftp.retr_as_buffer(&fx.path("big")).unwrap().into_inner();
    assert_eq!(body.len(), 2000);
    assert!(body[..1500].iter().all(|b| *b == b'a') && body[1500..].iter().all(|b| *b == b'b'));
}

#[test]
fn a_file_and_a_directory_of_the_same_name_show_as_the_directory() {
    let fx = Fixture::new("clash");
    fx.put("x", "file");
    fx.put("x/inner.txt", "inner");
    let gw = TestGateway::start();
    let mut ftp = gw.ftp();
    let lines = ftp.list(Some(&fx.path(""))).unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with('d'), "{lines:?}");
    ftp.cwd(fx.path("x")).unwrap();
}

#[test]
fn names_over_the_cluster_limits_get_553() {
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    let long_container = "c".repeat(300);
    assert_eq!(raw.cmd(&format!("SIZE /{long_container}/x")).0, 553);
    let long_key = "k".repeat(1100);
    assert_eq!(raw.cmd(&format!("SIZE /c/{long_key}")).0, 553);
}

#[test]
fn a_user_without_account_access_reads_through_container_acls() {
    let shared = Fixture::new("acl-shared");
    shared.put("doc.txt", "shared with reader");
    shared
        .block_on(shared.session.put_container(
            &shared.container,
            &[
                ("X-Container-Read", "test:reader"),
                ("X-Container-Write", ""),
            ],
        ))
        .unwrap();
    let private = Fixture::new("acl-private");
    private.put("secret.txt", "not for reader");
    let gw = TestGateway::start();
    let mut ftp = gw.ftp_as("test:reader", "reading");
    // The account listing is forbidden to this user: the root lists as empty instead of failing the session.
    assert!(ftp.list(None).unwrap().is_empty());
    ftp.cwd(shared.path("")).unwrap();
    assert_eq!(ftp.nlst(None).unwrap(), ["doc.txt"]);
    let body = ftp.retr_as_buffer("doc.txt").unwrap().into_inner();
    assert_eq!(body, b"shared with reader");
    // No ACL, no access: 550, and the session goes on.
    assert!(ftp.list(Some(&private.path(""))).is_err());
    assert!(ftp.retr_as_buffer(&private.path("secret.txt")).is_err());
    ftp.noop().unwrap();
}
