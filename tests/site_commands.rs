//! `SITE ACL/PUBLIC/UNLISTED/PRIVATE/QUOTA` through lftp's `quote`, checked where it matters: what an
//! anonymous HTTP client (curl, no token) may then read and list straight from Swift.

use crate::common::swift::Fixture;
use crate::common::{TestGateway, ok};
use std::process::Command;

/// The HTTP status an anonymous GET of `url` gets.
fn anonymous_get(url: &str) -> u16 {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-m",
            "10",
            url,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).parse().unwrap()
}

/// lftp `quote` of one command; its output (lftp prints the reply lines).
fn quote(gw: &TestGateway, command: &str) -> std::process::Output {
    gw.lftp(&format!("quote {command}"))
}

#[test]
fn site_public_unlisted_private_change_what_anonymous_visitors_may_read() {
    let fx = Fixture::new("acl");
    fx.put("hello.txt", "hello world");
    // A grant to another account must survive every change of visibility.
    fx.block_on(
        fx.session
            .post_container(&fx.container, &[("X-Container-Read", "test2:*")]),
    )
    .unwrap();
    let base = fx.session.storage_url().unwrap();
    let container_url = format!("{}/{}", base.as_str().trim_end_matches('/'), fx.container);
    let object_url = format!("{container_url}/hello.txt");
    let gw = TestGateway::start();
    assert_eq!(anonymous_get(&object_url), 401);

    let out = ok(
        quote(&gw, &format!("SITE PUBLIC {}", fx.path(""))),
        "SITE PUBLIC",
    );
    assert!(out.contains("is now public"), "{out}");
    assert!(
        out.contains(&container_url),
        "the public URL is told: {out}"
    );
    assert_eq!(anonymous_get(&object_url), 200);
    assert_eq!(anonymous_get(&container_url), 200);
    let out = ok(
        quote(&gw, &format!("SITE ACL {}", fx.path("hello.txt"))),
        "SITE ACL",
    );
    assert!(out.contains("Read ACL: test2:*,.r:*,.rlistings"), "{out}");
    assert!(out.contains("is public"), "{out}");

    // Relative to the current directory, as FileZilla's and lftp's `quote` send it.
    let out = ok(
        gw.lftp(&format!("cd {}; quote SITE UNLISTED", fx.path(""))),
        "SITE UNLISTED",
    );
    assert!(out.contains("is now unlisted"), "{out}");
    assert_eq!(anonymous_get(&object_url), 200);
    assert_eq!(anonymous_get(&container_url), 401);

    ok(
        quote(&gw, &format!("SITE PRIVATE {}", fx.path(""))),
        "SITE PRIVATE",
    );
    assert_eq!(anonymous_get(&object_url), 401);
    assert_eq!(anonymous_get(&container_url), 401);
    let head = fx
        .block_on(fx.session.head_container(&fx.container))
        .unwrap();
    assert_eq!(head.read_acl.as_deref(), Some("test2:*"));
}

#[test]
fn site_acl_refusals_are_clear() {
    let fx = Fixture::new("acl-no");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    let (code, text) = raw.cmd("SITE PUBLIC /");
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("name a container"), "{text}");
    let (code, text) = raw.cmd("SITE ACL /no-such-container-at-all");
    assert_eq!((code, text.as_str()), (550, "No such container"));
    assert_eq!(raw.cmd("SITE NOSUCHTHING x").0, 502);
    // A user Swift does not let change container metadata: refused, and nothing changed.
    let mut reader = crate::common::RawFtp::connect(gw.addr);
    assert_eq!(reader.cmd("USER test:reader").0, 331);
    assert_eq!(reader.cmd("PASS reading").0, 230);
    let (code, text) = reader.cmd(&format!("SITE PUBLIC {}", fx.path("")));
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("Permission denied"), "{text}");
    let head = fx
        .block_on(fx.session.head_container(&fx.container))
        .unwrap();
    assert_eq!(head.read_acl, None);
}

#[test]
fn site_quota_shows_usage_and_the_container_quota() {
    let fx = Fixture::new("quota");
    fx.put("a.bin", vec![7u8; 600]);
    fx.block_on(fx.session.post_container(
        &fx.container,
        &[
            ("X-Container-Meta-Quota-Bytes", "1000"),
            ("X-Container-Meta-Quota-Count", "5"),
        ],
    ))
    .unwrap();
    let gw = TestGateway::start();
    let out = ok(
        gw.lftp(&format!("cd {}; quote SITE QUOTA", fx.path(""))),
        "SITE QUOTA",
    );
    assert!(out.contains("Account: "), "{out}");
    assert!(out.contains("Account quota: none"), "{out}");
    assert!(
        out.contains(&format!(
            "Container {:?}: 600 bytes in 1 objects",
            fx.container
        )),
        "{out}"
    );
    assert!(
        out.contains("Container quota: 1000 bytes (400 bytes left)"),
        "{out}"
    );
    assert!(
        out.contains("Container object quota: 5 objects (4 left)"),
        "{out}"
    );
    // The quota is what Swift enforces: a file over it gets 552 and is not there. (Swift judges by the usage
    // its proxy has cached, which may lag: a file larger than the whole quota is refused whatever it saw.)
    let mut raw = gw.raw_logged_in();
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("b.bin")), &[1u8; 1500]),
        552
    );
    assert_eq!(fx.names(), ["a.bin"]);
}

/// An anonymous GET of `url`: its status and body.
fn anonymous_fetch(url: &str) -> (u16, Vec<u8>) {
    let body = crate::common::TempDir::new("anonymous-fetch");
    let file = body.join("body");
    let out = Command::new("curl")
        .args(["-s", "-w", "%{http_code}", "-m", "30", "-o"])
        .arg(&file)
        .arg(url)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout).parse().unwrap();
    (status, std::fs::read(&file).unwrap_or_default())
}

#[test]
fn large_files_follow_their_container_s_visibility() {
    use crate::common::{md5_hex, random};
    let gw = TestGateway::start_with(&["--segment-size", "8M"]);
    let base = {
        let fx = Fixture::new("acl-large-url");
        fx.session
            .storage_url()
            .unwrap()
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    };
    let body = random(20_000_000);

    // Uploaded while private, then made public: its segments become readable too.
    let fx = Fixture::new("acl-large");
    let mut raw = gw.raw_logged_in();
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("f.bin")), &body),
        226
    );
    let segments = fx.segments();
    assert!(segments.names().len() >= 3, "a 3-segment large object");
    let url = format!("{base}/{}/f.bin", fx.container);
    assert_eq!(anonymous_fetch(&url).0, 401);
    let out = ok(
        quote(&gw, &format!("SITE PUBLIC {}", fx.path(""))),
        "SITE PUBLIC",
    );
    assert!(
        out.contains("_segments"),
        "the reply names the segments container: {out}"
    );
    let (status, got) = anonymous_fetch(&url);
    assert_eq!(
        status, 200,
        "an anonymous read of a large file in a public container"
    );
    assert_eq!(md5_hex(&got), md5_hex(&body));
    // Segments are read through their file, never listed.
    let segments_head = fx
        .block_on(fx.session.head_container(&segments.container))
        .unwrap();
    assert_eq!(segments_head.read_acl.as_deref(), Some(".r:*"));
    ok(
        quote(&gw, &format!("SITE UNLISTED {}", fx.path(""))),
        "SITE UNLISTED",
    );
    assert_eq!(anonymous_fetch(&url).0, 200);
    ok(
        quote(&gw, &format!("SITE PRIVATE {}", fx.path(""))),
        "SITE PRIVATE",
    );
    assert_eq!(anonymous_fetch(&url).0, 401);
    let segments_head = fx
        .block_on(fx.session.head_container(&segments.container))
        .unwrap();
    assert_eq!(segments_head.read_acl, None);

    // Made public first: the segments container the first large upload makes inherits the readers.
    let fx = Fixture::new("acl-large-first");
    ok(
        quote(&gw, &format!("SITE PUBLIC {}", fx.path(""))),
        "SITE PUBLIC",
    );
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("f.bin")), &body),
        226
    );
    let _segments = fx.segments();
    let (status, got) = anonymous_fetch(&format!("{base}/{}/f.bin", fx.container));
    assert_eq!(status, 200, "a large file uploaded into a public container");
    assert_eq!(md5_hex(&got), md5_hex(&body));
}
