//! RNFR/RNTO against the real Swift: files by server-side copy, into directories, onto themselves, empty
//! directories and containers (with their settings), and the refusals.

use crate::common::TestGateway;
use crate::common::swift::Fixture;
use std::time::Duration;

fn rename(raw: &mut crate::common::RawFtp, from: &str, to: &str) -> (u32, String) {
    let (code, text) = raw.cmd(&format!("RNFR {from}"));
    if code != 350 {
        return (code, text);
    }
    let reply = raw.cmd(&format!("RNTO {to}"));
    assert!(
        raw.silent_for(Duration::from_millis(100)),
        "RNTO {to}: a second reply"
    );
    reply
}

#[test]
fn files_move_by_server_side_copy() {
    let fx = Fixture::new("mv");
    let other = Fixture::new("mv-other");
    fx.put("a.txt", "alpha");
    fx.put("b.txt", "beta");
    fx.put("old.txt", "will be replaced");
    fx.put_with("dir", "", &[("Content-Type", "application/directory")]);
    fx.put("pseudo/x", "x");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    // Plain rename, with non-ASCII and spaces.
    assert_eq!(
        rename(&mut raw, &fx.path("a.txt"), &fx.path("ä b ☺.txt")).0,
        250
    );
    // Into an existing marker directory and an existing pseudo-directory: moved inside.
    assert_eq!(
        rename(&mut raw, &fx.path("ä b ☺.txt"), &fx.path("dir")).0,
        250
    );
    assert_eq!(
        rename(&mut raw, &fx.path("b.txt"), &fx.path("pseudo")).0,
        250
    );
    // Onto itself: nothing happens, success.
    assert_eq!(
        rename(
            &mut raw,
            &fx.path("pseudo/b.txt"),
            &fx.path("pseudo/./b.txt")
        )
        .0,
        250
    );
    // Onto an existing file: replaced.
    assert_eq!(
        rename(&mut raw, &fx.path("pseudo/b.txt"), &fx.path("old.txt")).0,
        250
    );
    // Across containers, relative to the current directory.
    assert_eq!(raw.cmd(&format!("CWD {}", fx.path("dir"))).0, 250);
    assert_eq!(
        rename(
            &mut raw,
            "ä b ☺.txt",
            &format!("../../{}/moved.txt", other.container)
        )
        .0,
        250
    );
    assert_eq!(fx.names(), ["dir", "old.txt", "pseudo/x"]);
    assert_eq!(fx.get("old.txt"), b"beta");
    assert_eq!(other.names(), ["moved.txt"]);
    assert_eq!(other.get("moved.txt"), b"alpha");
    // Refusals: a missing source (at RNFR), a file to the top level, into a missing container.
    assert_eq!(rename(&mut raw, &fx.path("nothing"), &fx.path("x")).0, 550);
    assert_eq!(
        rename(&mut raw, &fx.path("old.txt"), "/toplevel.txt").0,
        550
    );
    assert_eq!(
        rename(&mut raw, &fx.path("old.txt"), "/no-such-container-here/x").0,
        550
    );
    assert_eq!(fx.get("old.txt"), b"beta");
}

#[test]
fn empty_directories_move_and_full_ones_are_refused() {
    let fx = Fixture::new("mvdir");
    fx.put_with("empty", "", &[("Content-Type", "application/directory")]);
    fx.put("slash/", "");
    fx.put_with("full", "", &[("Content-Type", "application/directory")]);
    fx.put("full/inner.txt", "i");
    fx.put("file.txt", "f");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    assert_eq!(
        rename(&mut raw, &fx.path("empty"), &fx.path("renamed")).0,
        250
    );
    assert_eq!(
        rename(&mut raw, &fx.path("slash"), &fx.path("renamed")).0,
        250,
        "moved inside"
    );
    let (code, text) = rename(&mut raw, &fx.path("full"), &fx.path("elsewhere"));
    assert_eq!((code, text.as_str()), (550, "Directory not empty"));
    // A directory never replaces a file.
    assert_eq!(
        rename(&mut raw, &fx.path("renamed/slash"), &fx.path("file.txt")).0,
        550
    );
    assert_eq!(
        fx.names(),
        [
            "file.txt",
            "full",
            "full/inner.txt",
            "renamed",
            "renamed/slash"
        ]
    );
    let marker = fx.head("renamed/slash").unwrap();
    assert_eq!(
        marker.content_type.as_deref(),
        Some("application/directory")
    );
}

#[test]
fn an_empty_container_keeps_its_settings_when_renamed() {
    let fx = Fixture::new("mvc");
    let source = format!("{}-src", fx.container);
    let target = format!("{}-dst", fx.container);
    fx.block_on(fx.session.put_container(
        &source,
        &[
            ("X-Container-Meta-Color", "blue"),
            ("X-Container-Read", ".r:*,.rlistings"),
        ],
    ))
    .unwrap();
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    assert_eq!(
        rename(&mut raw, &format!("/{source}"), &format!("/{target}")).0,
        250
    );
    let head = fx.block_on(fx.session.head_container(&target)).unwrap();
    let settings: std::collections::HashMap<_, _> = head.settings.into_iter().collect();
    assert_eq!(
        settings.get("x-container-meta-color").map(String::as_str),
        Some("blue")
    );
    assert_eq!(
        settings.get("x-container-read").map(String::as_str),
        Some(".r:*,.rlistings")
    );
    assert!(
        fx.block_on(fx.session.head_container(&source)).is_err(),
        "the old container is gone"
    );
    // An empty container renamed onto an existing container moves inside it as a directory.
    assert_eq!(rename(&mut raw, &format!("/{target}"), &fx.path("")).0, 250);
    assert!(fx.block_on(fx.session.head_container(&target)).is_err());
    assert_eq!(fx.names(), vec![target.clone()]);
    assert!(fx.head(&target).is_some());
    // A non-empty container is refused.
    let (code, text) = rename(&mut raw, &fx.path(""), &format!("/{source}"));
    assert_eq!((code, text.as_str()), (550, "Directory not empty"));
}

#[test]
fn a_dynamic_large_object_is_renamed_as_a_manifest() {
    let fx = Fixture::new("mvdlo");
    fx.put("segs/000", "aaa");
    fx.put("segs/001", "bbb");
    let manifest = format!("{}/segs/", fx.container);
    fx.put_with("big", "", &[("X-Object-Manifest", manifest.as_str())]);
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    assert_eq!(
        rename(&mut raw, &fx.path("big"), &fx.path("renamed")).0,
        250
    );
    assert_eq!(fx.get("renamed"), b"aaabbb");
    assert_eq!(
        fx.head("renamed").unwrap().dlo_manifest.as_deref(),
        Some(manifest.as_str())
    );
    assert!(fx.head("big").is_none());
}
