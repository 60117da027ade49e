//! Modification times: lftp `mirror -R` preserves local times through `MFMT` (a second mirror then has nothing
//! to do), `LIST`/`MLSD`/`MDTM` show them, Swift holds them as `X-Object-Meta-Mtime` for other tools, a large
//! object keeps its MD5 and a DLO its manifest, a rename keeps the time, and the refusals are clear.

use crate::common::swift::Fixture;
use crate::common::{TempDir, TestGateway, md5_hex, ok, random};
use std::process::Command;

/// Sets a local file's modification time (`touch -d`, UTC).
fn touch(path: &std::path::Path, when: &str) {
    let out = Command::new("touch")
        .args(["-d", when])
        .arg(path)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    ok(out, "touch");
}

#[test]
fn lftp_mirror_preserves_times_and_a_second_mirror_transfers_nothing() {
    let fx = Fixture::new("mtime");
    let _segments = fx.segments();
    let local = TempDir::new("mtime");
    let tree = local.join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    let big = random(3 * 1024 * 1024 + 17);
    std::fs::write(tree.join("small.txt"), "small file").unwrap();
    std::fs::write(tree.join("sub/big.bin"), &big).unwrap();
    touch(&tree.join("small.txt"), "2021-03-04 05:06:07");
    touch(&tree.join("sub/big.bin"), "2019-12-31 23:59:58");
    let gw = TestGateway::start_with(&["--segment-size", "1M"]);
    // --no-perms: Swift has no modes (SITE CHMOD gets 502, which `cmd:fail-exit` would make fatal).
    let mirror = format!(
        "mirror -R --no-perms --verbose=1 {} {}",
        tree.display(),
        fx.path("tree")
    );
    ok(gw.lftp(&mirror), "lftp mirror -R");
    assert_eq!(fx.get("tree/sub/big.bin"), big);

    // Swift holds the times where python-swiftclient and rclone look for them.
    let head = fx.head("tree/small.txt").unwrap();
    assert!(
        head.kept_on_post
            .iter()
            .any(|(k, v)| k == "x-object-meta-mtime" && v == "1614834367"),
        "{:?}",
        head.kept_on_post
    );
    // The large object kept its content MD5 (which XMD5 answers) through the metadata POST.
    let head = fx.head("tree/sub/big.bin").unwrap();
    assert!(head.static_large_object);
    assert_eq!(head.meta_md5.as_deref(), Some(md5_hex(&big).as_str()));

    // MDTM, MLSD and LIST show them.
    let mut raw = gw.raw_logged_in();
    assert_eq!(
        raw.cmd(&format!("MDTM {}", fx.path("tree/small.txt"))),
        (213, "20210304050607".to_owned())
    );
    assert_eq!(
        raw.cmd(&format!("MDTM {}", fx.path("tree/sub/big.bin"))),
        (213, "20191231235958".to_owned())
    );
    let (_, listing) = raw.transfer(&format!("MLSD {}", fx.path("tree")));
    let listing = String::from_utf8(listing).unwrap();
    assert!(
        listing
            .lines()
            .any(|l| l.contains("modify=20210304050607") && l.ends_with("small.txt")),
        "{listing}"
    );
    let (_, listing) = raw.transfer(&format!("LIST {}", fx.path("tree/sub")));
    let listing = String::from_utf8(listing).unwrap();
    assert!(listing.contains("Dec 31  2019 big.bin"), "{listing}");
    drop(raw);

    // A second mirror finds everything up to date: nothing is transferred.
    let out = ok(gw.lftp(&mirror), "second lftp mirror -R");
    assert!(
        !out.contains("Transferring file"),
        "the second mirror transferred files again:\n{out}"
    );
}

#[test]
fn mfmt_replies_keeps_manifests_and_survives_a_rename() {
    let fx = Fixture::new("mfmt");
    fx.put("plain.txt", "plain");
    fx.put("parts/big/1", "hello ");
    fx.put("parts/big/2", "world");
    let manifest = format!("{}/parts/big/", fx.container);
    fx.put_with("dlo", "", &[("X-Object-Manifest", manifest.as_str())]);
    fx.put_with("dir", "", &[("Content-Type", "application/directory")]);
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    let (_, feat) = raw.cmd("FEAT");
    assert!(feat.contains(" MFMT"), "{feat}");
    assert!(
        feat.contains(" MLST type*;size*;modify*;perm*;UNIX.mode*;"),
        "{feat}"
    );

    assert_eq!(
        raw.cmd(&format!("MFMT 20200102030405 {}", fx.path("plain.txt"))),
        (
            213,
            format!("Modify=20200102030405; {}", fx.path("plain.txt"))
        )
    );
    // Relative to the current directory, with a fraction of a second.
    assert_eq!(raw.cmd(&format!("CWD {}", fx.path(""))).0, 250);
    assert_eq!(
        raw.cmd("MFMT 20180101000000.5 dlo"),
        (213, "Modify=20180101000000; dlo".to_owned())
    );
    // The DLO is still a DLO: same content, size and manifest.
    let head = fx.head("dlo").unwrap();
    assert_eq!(head.dlo_manifest.as_deref(), Some(manifest.as_str()));
    assert_eq!(fx.get("dlo"), b"hello world");
    assert_eq!(raw.cmd("MDTM dlo"), (213, "20180101000000".to_owned()));
    assert_eq!(raw.cmd("SIZE dlo"), (213, "11".to_owned()));

    // Refusals: a bad time, a missing file, a directory.
    assert_eq!(raw.cmd("MFMT 2020-01-02 plain.txt").0, 501);
    assert_eq!(raw.cmd("MFMT 20201302030405 plain.txt").0, 501);
    assert_eq!(raw.cmd("MFMT 20200102030405 nothing-here").0, 550);
    assert_eq!(raw.cmd("MFMT 20200102030405 dir").0, 550);
    assert_eq!(raw.cmd("MFMT 20200102030405").0, 501);

    // A rename (server-side copy) keeps the time.
    assert_eq!(raw.cmd("RNFR plain.txt").0, 350);
    assert_eq!(raw.cmd("RNTO renamed.txt").0, 250);
    assert_eq!(
        raw.cmd("MDTM renamed.txt"),
        (213, "20200102030405".to_owned())
    );
    // A new upload is new: its time is its upload time again.
    assert_eq!(raw.upload("STOR renamed.txt", b"new content"), 226);
    let (code, text) = raw.cmd("MDTM renamed.txt");
    assert_eq!(code, 213);
    // Within two minutes of now (UTC), whatever the year.
    let earliest = (chrono::Utc::now() - chrono::Duration::seconds(120))
        .format("%Y%m%d%H%M%S")
        .to_string();
    assert!(text >= earliest, "{text} is older than {earliest}");
}

#[test]
fn mfmt_right_after_a_small_upload_is_one_post_and_never_turns_a_directory_into_a_file() {
    use crate::common::faulty::{FaultProxy, swift_addr};
    let fx = Fixture::new("mfmt-fast");
    let proxy = FaultProxy::start(swift_addr());
    let gw = TestGateway::start_with(&["-a", &proxy.auth_url()]);
    let mut raw = gw.raw_logged_in();
    let requests = |method: &str, key: &str| {
        let line = format!("{method} /v1/AUTH_test/{}/{key} ", fx.container);
        String::from_utf8_lossy(&proxy.recorded())
            .match_indices(line.as_str())
            .count()
    };

    // A new small file: one PUT and no HEAD; its MFMT: one POST and no HEAD; the time lands in both places.
    let body = random(4096);
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("new.txt")), &body),
        226
    );
    assert_eq!(
        raw.cmd(&format!("MFMT 20200102030405 {}", fx.path("new.txt")))
            .0,
        213
    );
    assert_eq!(requests("PUT", "new.txt"), 1);
    assert_eq!(requests("POST", "new.txt"), 1);
    assert_eq!(requests("HEAD", "new.txt"), 0);
    let head = fx.head("new.txt").unwrap();
    assert_eq!(
        head.content_type.as_deref(),
        Some("text/plain;swiftftp_mtime=1577934245")
    );
    assert!(
        head.kept_on_post
            .iter()
            .any(|(k, v)| k == "x-object-meta-mtime" && v == "1577934245"),
        "{:?}",
        head.kept_on_post
    );
    assert_eq!(head.content_length, 4096);
    assert_eq!(fx.get("new.txt"), body);
    assert_eq!(
        raw.cmd(&format!("MDTM {}", fx.path("new.txt"))),
        (213, "20200102030405".to_owned())
    );

    // The shortcut is for the file just stored only: after a DELE and MKD of the name, MFMT looks (and
    // refuses: a directory has no time), and the marker stays a marker.
    assert_eq!(raw.upload(&format!("STOR {}", fx.path("d")), b"x"), 226);
    assert_eq!(raw.cmd(&format!("DELE {}", fx.path("d"))).0, 250);
    assert_eq!(raw.cmd(&format!("MKD {}", fx.path("d"))).0, 257);
    assert_eq!(
        raw.cmd(&format!("MFMT 20200102030405 {}", fx.path("d"))).0,
        550
    );
    assert_eq!(
        fx.head("d").unwrap().content_type.as_deref(),
        Some("application/directory")
    );
}

/// `--no-mfmt`: `FEAT` does not offer `MFMT` (so lftp and FileZilla do not send it) and one sent anyway gets
/// `502`, leaving the file's time alone; uploads work as ever.
#[test]
fn mfmt_turned_off_is_not_offered_and_changes_nothing() {
    let fx = Fixture::new("nomfmt");
    fx.put("f.txt", "data");
    let gw = TestGateway::start_with(&["--no-mfmt"]);
    let mut raw = gw.raw_logged_in();
    let (_, feat) = raw.cmd("FEAT");
    assert!(!feat.contains("MFMT"), "{feat}");
    assert!(
        feat.contains(" MLST type*;size*;modify*;perm*;UNIX.mode*;"),
        "{feat}"
    );
    let before = raw.cmd(&format!("MDTM {}", fx.path("f.txt")));
    assert_eq!(before.0, 213);
    let (code, text) = raw.cmd(&format!("MFMT 20200102030405 {}", fx.path("f.txt")));
    assert_eq!(code, 502, "{text}");
    assert_eq!(raw.cmd(&format!("MDTM {}", fx.path("f.txt"))), before);
    let content_type = fx.head("f.txt").unwrap().content_type.unwrap_or_default();
    assert!(!content_type.contains("swiftftp_mtime"), "{content_type}");
    let body = random(4096);
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("new.bin")), &body),
        226
    );
    assert_eq!(md5_hex(&fx.get("new.bin")), md5_hex(&body));
}
