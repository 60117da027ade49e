//! RNFR/RNTO against the real Swift: files by server-side copy, into directories, onto themselves, empty
//! directories and containers (with their settings), and the refusals.

use crate::common::TestGateway;
use crate::common::faulty::{FaultProxy, swift_addr};
use crate::common::process::{Foreground, wait_for};
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
fn directories_move_and_never_replace_a_file() {
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
    // A directory with a file in it moves too, marker included.
    assert_eq!(
        rename(&mut raw, &fx.path("full"), &fx.path("elsewhere")).0,
        250
    );
    // A directory never replaces a file.
    assert_eq!(
        rename(&mut raw, &fx.path("renamed/slash"), &fx.path("file.txt")).0,
        550
    );
    assert_eq!(
        fx.names(),
        [
            "elsewhere",
            "elsewhere/inner.txt",
            "file.txt",
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

/// A tree of `n` files in 10 folders, with a marker for `tree`, a `tree/a-poison` file and an ftp-cloudfs DLO
/// (`tree/big` whose segments are `tree/big.part/…`): the names, sorted.
fn make_tree(fx: &Fixture, n: usize) -> Vec<String> {
    let mut keys: Vec<String> = (0..n)
        .map(|i| format!("tree/d{}/f{i:05}", i % 10))
        .collect();
    keys.push("tree/a-poison".to_owned());
    fx.put_many(keys.clone(), b"0123456789", 32);
    fx.put_with("tree", "", &[("Content-Type", "application/directory")]);
    fx.put("tree/big.part/000", "hello ");
    fx.put("tree/big.part/001", "world");
    let manifest = format!("{}/tree/big.part/", fx.container);
    fx.put_with("tree/big", "", &[("X-Object-Manifest", manifest.as_str())]);
    keys.extend(["tree", "tree/big", "tree/big.part/000", "tree/big.part/001"].map(str::to_owned));
    keys.sort();
    keys
}

/// `names` with `tree` replaced by `to` at their start.
fn renamed(names: &[String], to: &str) -> Vec<String> {
    let mut out: Vec<String> = names
        .iter()
        .map(|n| format!("{to}{}", &n["tree".len()..]))
        .collect();
    out.sort();
    out
}

fn under(fx: &Fixture, top: &str) -> Vec<String> {
    fx.names()
        .into_iter()
        .filter(|n| n == top || n.starts_with(&format!("{top}/")))
        .collect()
}

#[test]
fn a_directory_of_2000_files_moves_in_one_command_and_failures_leave_the_source_whole() {
    const N: usize = 2000;
    let fx = Fixture::new("mvtree");
    let names = make_tree(&fx, N);
    assert_eq!(under(&fx, "tree"), names);

    // Over the limit: refused before anything moves, with a reason.
    let limited = TestGateway::start_with(&["--rename-max-objects", "100"]);
    let mut raw = limited.raw_logged_in();
    let (code, text) = rename(&mut raw, &fx.path("tree"), &fx.path("moved"));
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("rename-max-objects"), "{text}");
    drop(raw);
    drop(limited);

    // One copy fails (Swift says 404 for its source, which sorts early): the copies made are taken back.
    let proxy = FaultProxy::start(swift_addr());
    let faulty = TestGateway::start_with(&["-a", &proxy.auth_url()]);
    proxy.corrupt(b"tree/a-poison", b"tree/a-poisoN");
    let mut raw = faulty.raw_logged_in();
    let (code, text) = rename(&mut raw, &fx.path("tree"), &fx.path("failed"));
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("nothing was moved"), "{text}");
    assert_eq!(under(&fx, "tree"), names);
    assert_eq!(under(&fx, "failed"), Vec::<String>::new());
    drop(raw);
    drop(faulty);

    // The gateway killed midway: the source is complete.
    let port = crate::common::process::free_port();
    let gw = Foreground::start(port, &crate::common::auth_url(), &[]);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut raw = crate::common::RawFtp::logged_in(addr);
    assert_eq!(raw.cmd(&format!("RNFR {}", fx.path("tree"))).0, 350);
    raw.send(&format!("RNTO {}", fx.path("killed")));
    wait_for("copies to start", Duration::from_secs(60), || {
        fx.block_on(
            fx.session
                .list_objects_page(&fx.container, "killed/", None, None, Some(100)),
        )
        .unwrap()
        .len()
            >= 100
    });
    nix::sys::signal::kill(gw.pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
    drop(gw);
    let partial = under(&fx, "killed");
    assert!(
        !partial.is_empty() && partial.len() < names.len(),
        "killed midway: {} of {} copied",
        partial.len(),
        names.len()
    );
    assert_eq!(under(&fx, "tree"), names, "the source is complete");
    fx.block_on(async {
        for name in &partial {
            fx.session.delete_object(&fx.container, name).await.unwrap();
        }
    });

    // An ftp-cloudfs segment folder alone would leave its file empty: refused. (Listings live a minute here, so
    // that a stale cached listing after the move would show.)
    let gw = TestGateway::start_with(&["--cache-ttl", "60"]);
    let mut raw = gw.raw_logged_in();
    let (code, text) = rename(&mut raw, &fx.path("tree/big.part"), &fx.path("parts"));
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("segments of the large file"), "{text}");
    // Both places listed (and cached) before the move.
    let (_, listing) = raw.transfer(&format!("NLST {}", fx.path("tree/d3")));
    assert_eq!(String::from_utf8(listing).unwrap().lines().count(), N / 10);
    let (_, listing) = raw.transfer(&format!("NLST {}", fx.path("moved/d3")));
    assert!(listing.is_empty());
    drop(raw);

    // And with lftp's `mv`: exactly the renamed tree, the DLO re-pointed at its moved segments.
    let started = std::time::Instant::now();
    crate::common::ok(
        gw.lftp(&format!("mv {} {}", fx.path("tree"), fx.path("moved"))),
        "lftp mv",
    );
    eprintln!(
        "renamed a directory of {} objects in {:.1} s",
        names.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(under(&fx, "tree"), Vec::<String>::new());
    assert_eq!(under(&fx, "moved"), renamed(&names, "moved"));
    assert_eq!(fx.get("moved/big"), b"hello world");
    assert_eq!(
        fx.head("moved/big").unwrap().dlo_manifest.as_deref(),
        Some(format!("{}/moved/big.part/", fx.container).as_str())
    );
    assert_eq!(fx.get("moved/d3/f00003"), b"0123456789");
    let marker = fx.head("moved").unwrap();
    assert_eq!(
        marker.content_type.as_deref(),
        Some("application/directory")
    );
    // Listed where it went, at once (no stale cached listing of the old tree).
    let mut raw = gw.raw_logged_in();
    let (_, listing) = raw.transfer(&format!("NLST {}", fx.path("moved/d3")));
    assert_eq!(String::from_utf8(listing).unwrap().lines().count(), N / 10);
    let (_, listing) = raw.transfer(&format!("NLST {}", fx.path("tree/d3")));
    assert!(listing.is_empty());
}

#[test]
fn containers_move_whole_into_new_containers_and_into_directories() {
    let fx = Fixture::new("mvfull");
    let source = Fixture::new("mvfull-src");
    let segments = source.segments();
    source.put("a.txt", "alpha");
    source.put("dir/b.txt", "beta");
    source
        .block_on(
            source
                .session
                .post_container(&source.container, &[("X-Container-Meta-Color", "green")]),
        )
        .unwrap();
    let gw = TestGateway::start_with(&["--segment-size", "1M"]);
    // A large file whose segments live in `<source>_segments`: the move carries the manifest only.
    let big = crate::common::random(2 * 1024 * 1024 + 3);
    let mut raw = gw.raw_logged_in();
    assert_eq!(
        raw.upload(&format!("STOR {}", source.path("big.bin")), &big),
        226
    );
    // Its segments container cannot be renamed: manifests point into it.
    let (code, text) = rename(&mut raw, &segments.path(""), "/elsewhere-segments");
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("segments"), "{text}");

    // A whole container into a new one: settings and content.
    let target = Fixture::new("mvfull-dst");
    target
        .block_on(target.session.delete_container(&target.container))
        .unwrap();
    assert_eq!(rename(&mut raw, &source.path(""), &target.path("")).0, 250);
    assert!(
        source
            .block_on(source.session.head_container(&source.container))
            .is_err(),
        "the old container is gone"
    );
    assert_eq!(target.names(), ["a.txt", "big.bin", "dir/b.txt"]);
    assert_eq!(target.get("big.bin"), big);
    let head = target
        .block_on(target.session.head_container(&target.container))
        .unwrap();
    assert!(
        head.settings
            .iter()
            .any(|(k, v)| k == "x-container-meta-color" && v == "green"),
        "{:?}",
        head.settings
    );
    // Onto an existing container: it moves inside, as a directory; then it is gone as a container.
    assert_eq!(rename(&mut raw, &target.path(""), &fx.path("")).0, 250);
    let inside = format!("{}/", target.container);
    assert_eq!(
        fx.names(),
        ["a.txt", "big.bin", "dir/b.txt"].map(|n| format!("{inside}{n}"))
    );
    assert_eq!(fx.get(&format!("{inside}big.bin")), big);
    // Into itself, and onto an existing name: refused.
    let (code, text) = rename(
        &mut raw,
        &fx.path(&target.container),
        &fx.path(&format!("{inside}dir/x")),
    );
    assert_eq!(code, 550, "{text}");
    let (code, text) = rename(
        &mut raw,
        &fx.path(&format!("{inside}dir")),
        &fx.path(&format!("{inside}a.txt")),
    );
    assert_eq!(code, 550, "{text}");
    // Overwriting the moved large file later leaves its segments: they sit in the old container's
    // `_segments`, which is not the new container's, and a manifest pointing into another container is exactly
    // what a less privileged user could plant (tests/security.rs). Space, never correctness.
    let kept = segments.names();
    assert_eq!(kept.len(), 3, "{kept:?}");
    assert_eq!(
        raw.upload(
            &format!("STOR {}", fx.path(&format!("{inside}big.bin"))),
            b"small"
        ),
        226
    );
    assert_eq!(fx.get(&format!("{inside}big.bin")), b"small");
    assert_eq!(segments.names(), kept);
}
