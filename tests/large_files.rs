//! Large files against the real Swift, with 1 MiB segments to stay fast: uploads over the segment size become
//! Static Large Objects (segments in `<container>_segments`, manifest last, content MD5 stored and answered by
//! `SITE MD5`); overwrite, delete and rename leave exactly the segments still in use; a client reset, a Swift
//! cut and a corrupted segment each fail the command and leave no segment behind; DLOs written by
//! python-swiftclient and ftp-cloudfs are deleted with their own segments and nothing else; an SLO written by
//! python-swiftclient is sized, read with REST, renamed by manifest and deleted with its segments.

use crate::common::faulty::{FaultProxy, swift_addr};
use crate::common::process::wait_for;
use crate::common::swift::Fixture;
use crate::common::{RawFtp, TestGateway, md5_hex, random};
use std::io::Write;
use std::time::Duration;

const MIB: usize = 1 << 20;

fn gateway() -> TestGateway {
    TestGateway::start_with(&["--segment-size", "1M"])
}

/// Waits (a failed upload's clean-up may still be running) until `segments` holds exactly `want`.
fn segments_become(segments: &Fixture, want: usize) {
    wait_for("the segments container", Duration::from_secs(20), || {
        segments.names().len() == want
    });
}

/// Waits until `key` has at least `n` segments of its own in `segments`.
fn own_segments_reach(segments: &Fixture, key: &str, n: usize) {
    wait_for("segments of an upload", Duration::from_secs(30), || {
        segments
            .names()
            .iter()
            .filter(|s| s.starts_with(&format!("{key}/slo/")))
            .count()
            >= n
    });
}

fn retr(raw: &mut RawFtp, path: &str) -> Vec<u8> {
    let (replies, bytes) = raw.transfer(&format!("RETR {path}"));
    assert_eq!(replies.last().unwrap().0, 226, "{replies:?}");
    bytes
}

#[test]
fn a_file_over_the_segment_size_becomes_a_static_large_object() {
    let fx = Fixture::new("slo");
    let gw = gateway();
    let mut raw = gw.raw_logged_in();
    let body = random(3 * MIB + MIB / 2);
    let path = fx.path("big.bin");
    assert_eq!(raw.upload(&format!("STOR {path}"), &body), 226);
    let segments = fx.segments();
    let head = fx.head("big.bin").unwrap();
    assert!(head.static_large_object);
    assert_eq!(head.content_length, body.len() as u64);
    assert_eq!(head.meta_md5.as_deref(), Some(md5_hex(&body).as_str()));
    let names = segments.names();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(
        names.iter().all(|n| n.starts_with("big.bin/slo/")),
        "{names:?}"
    );
    // Whole, from an offset, sized, and with its true MD5.
    assert_eq!(retr(&mut raw, &path), body);
    assert_eq!(raw.cmd("REST 2500000").0, 350);
    assert_eq!(retr(&mut raw, &path), &body[2_500_000..]);
    assert_eq!(
        raw.cmd(&format!("SIZE {path}")),
        (213, body.len().to_string())
    );
    let (code, text) = raw.cmd(&format!("SITE MD5 {path}"));
    assert_eq!(code, 213);
    assert!(text.starts_with(&md5_hex(&body)), "{text}");
    let (replies, listing) = raw.transfer(&format!("LIST {}", fx.path("")));
    assert_eq!(replies.last().unwrap().0, 226);
    let line = String::from_utf8(listing).unwrap();
    assert!(line.contains(&format!(" {} ", body.len())), "{line}");
}

#[test]
fn files_up_to_the_segment_size_stay_plain_objects() {
    let fx = Fixture::new("plain");
    let gw = gateway();
    let mut raw = gw.raw_logged_in();
    let body = random(MIB);
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("exact.bin")), &body),
        226
    );
    let head = fx.head("exact.bin").unwrap();
    assert!(!head.static_large_object);
    assert_eq!(head.etag.as_deref(), Some(md5_hex(&body).as_str()));
    let (code, text) = raw.cmd(&format!("SITE MD5 {}", fx.path("exact.bin")));
    assert_eq!(
        (code, text.starts_with(&md5_hex(&body))),
        (213, true),
        "{text}"
    );
    // No segments container was needed.
    let missing = fx.block_on(
        fx.session
            .head_container(&format!("{}_segments", fx.container)),
    );
    assert_eq!(
        missing.map(|_| ()).unwrap_err().kind(),
        swiftftp::swift::ErrorKind::NotFound
    );
    // One byte more is a large object of two segments.
    let body = random(MIB + 1);
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("over.bin")), &body),
        226
    );
    let segments = fx.segments();
    assert_eq!(segments.names().len(), 2);
    assert_eq!(fx.get("over.bin"), body);
}

#[test]
fn overwrite_delete_and_rename_keep_exactly_the_segments_in_use() {
    let fx = Fixture::new("slolife");
    let gw = gateway();
    let mut raw = gw.raw_logged_in();
    let path = fx.path("f.bin");
    assert_eq!(raw.upload(&format!("STOR {path}"), &random(3 * MIB)), 226);
    let segments = fx.segments();
    assert_eq!(segments.names().len(), 3);
    // A smaller large object replaces it: only its own two segments remain.
    let smaller = random(2 * MIB - 5);
    assert_eq!(raw.upload(&format!("STOR {path}"), &smaller), 226);
    segments_become(&segments, 2);
    assert_eq!(fx.get("f.bin"), smaller);
    // A plain file replaces that: no segment remains.
    assert_eq!(raw.upload(&format!("STOR {path}"), b"tiny"), 226);
    segments_become(&segments, 0);
    assert_eq!(fx.get("f.bin"), b"tiny");
    // Rename moves the manifest, not the data: the same segments, readable under the new name.
    let body = random(2 * MIB + 7);
    assert_eq!(raw.upload(&format!("STOR {path}"), &body), 226);
    let before = segments.names();
    assert_eq!(raw.cmd(&format!("RNFR {path}")).0, 350);
    assert_eq!(raw.cmd(&format!("RNTO {}", fx.path("moved.bin"))).0, 250);
    assert_eq!(segments.names(), before);
    assert!(fx.head("f.bin").is_none());
    assert_eq!(retr(&mut raw, &fx.path("moved.bin")), body);
    // Deleting it leaves its segments: they are filed under the old name, where a manifest someone planted could
    // point just as well (deleting through it would delete another file's data; see tests/security.rs).
    assert_eq!(raw.cmd(&format!("DELE {}", fx.path("moved.bin"))).0, 250);
    assert_eq!(fx.names(), Vec::<String>::new());
    assert_eq!(segments.names(), before);
}

#[test]
fn a_client_reset_mid_upload_shows_no_file_and_the_old_file_stays_whole() {
    let fx = Fixture::new("sloreset");
    fx.put("kept.bin", "old content");
    let gw = gateway();
    let mut raw = gw.raw_logged_in();
    let segments = fx.segments();
    for key in ["new.bin", "kept.bin"] {
        let mut data = raw.data();
        raw.send(&format!("STOR {}", fx.path(key)));
        assert_eq!(raw.reply().0, 150);
        data.write_all(&random(2 * MIB + MIB / 2)).unwrap();
        // Two segments are committed (looked at in Swift, not guessed from a sleep).
        own_segments_reach(&segments, key, 2);
        socket2::SockRef::from(&data)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(data);
        assert_eq!(raw.reply().0, 426, "{key}");
    }
    // Nothing is visible; the new file's bytes are kept as a partial upload (SIZE tells, DELE discards it),
    // the overwrite's are not.
    assert_eq!(fx.names(), ["kept.bin"]);
    assert_eq!(fx.get("kept.bin"), b"old content");
    let (code, size) = raw.cmd(&format!("SIZE {}", fx.path("new.bin")));
    assert_eq!(code, 213);
    assert!(size.parse::<usize>().unwrap() >= 2 * MIB, "{size}");
    assert_eq!(raw.cmd(&format!("DELE {}", fx.path("new.bin"))).0, 250);
    assert_eq!(raw.cmd(&format!("SIZE {}", fx.path("new.bin"))).0, 550);
    // No segment is left; the cut-off overwrite left only its mark (which refuses a resume onto the old file).
    segments_become(&segments, 1);
    assert_eq!(segments.names(), [".swiftftp-partial/kept.bin"]);
}

#[test]
fn swift_cut_mid_upload_fails_and_the_segments_are_cleaned_up_once_it_is_back() {
    let fx = Fixture::new("slocut");
    let segments = fx.segments();
    let proxy = FaultProxy::start(swift_addr());
    let gw = TestGateway::start_with(&["-a", &proxy.auth_url(), "--segment-size", "1M"]);
    let mut raw = gw.raw_logged_in();
    let mut data = raw.data();
    raw.send(&format!("STOR {}", fx.path("cut.bin")));
    assert_eq!(raw.reply().0, 150);
    data.write_all(&random(2 * MIB + MIB / 2)).unwrap();
    // A segment is in Swift before the cut, so the clean-up has something to do.
    own_segments_reach(&segments, "cut.bin", 1);
    proxy.cut();
    data.set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let chunk = vec![3u8; 64 * 1024];
    for _ in 0..200 {
        if data.write_all(&chunk).is_err() {
            break;
        }
    }
    drop(data);
    assert_eq!(raw.reply().0, 451);
    proxy.heal();
    segments_become(&segments, 0);
    assert!(fx.head("cut.bin").is_none());
}

#[test]
fn a_corrupted_segment_fails_the_upload_and_leaves_nothing() {
    let fx = Fixture::new("slocorrupt");
    let segments = fx.segments();
    let proxy = FaultProxy::start(swift_addr());
    let gw = TestGateway::start_with(&["-a", &proxy.auth_url(), "--segment-size", "1M"]);
    let mut raw = gw.raw_logged_in();
    // A marker only the second of three segments holds, changed on its way to Swift.
    let mut body = random(3 * MIB);
    body[MIB + 1000..MIB + 1016].copy_from_slice(b"MARKER-MARKER-XY");
    proxy.corrupt(b"MARKER-MARKER-XY", b"MARKER-MARKER-ZZ");
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("bad.bin")), &body),
        451
    );
    segments_become(&segments, 0);
    assert!(fx.head("bad.bin").is_none());
}

/// Swift's own manifest check would reject the manifest in the end, after every later segment was sent: the
/// per-segment ETag check stops the upload at the first bad segment, and no manifest is ever sent.
#[test]
fn a_corrupted_first_segment_stops_the_upload_before_the_later_segments_are_sent() {
    let fx = Fixture::new("slofailfast");
    let segments = fx.segments();
    let proxy = FaultProxy::start(swift_addr());
    let gw = TestGateway::start_with(&["-a", &proxy.auth_url(), "--segment-size", "1M"]);
    let mut raw = gw.raw_logged_in();
    let mut body = random(8 * MIB);
    body[1000..1016].copy_from_slice(b"MARKER-MARKER-XY");
    proxy.corrupt(b"MARKER-MARKER-XY", b"MARKER-MARKER-ZZ");
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("early.bin")), &body),
        451
    );
    let puts = proxy.requests_starting("PUT /v1/");
    let segment_puts = puts.iter().filter(|l| l.contains("/slo/")).count();
    assert!(
        !puts.iter().any(|l| l.contains("multipart-manifest=put")),
        "a manifest was sent: {puts:?}"
    );
    // The first segment and the ones in flight beside it, not all eight.
    assert!(segment_puts <= 4, "{segment_puts} segment PUTs: {puts:?}");
    segments_become(&segments, 0);
    assert!(fx.head("early.bin").is_none());
}

#[test]
fn dlos_of_other_tools_are_deleted_with_their_own_segments_only() {
    let fx = Fixture::new("dlodel");
    let segments = fx.segments();
    // python-swiftclient: segments in <container>_segments/<name>/<mtime>/<size>/<segment size>/.
    segments.put("swift.bin/1.0/6/3/00000000", "abc");
    segments.put("swift.bin/1.0/6/3/00000001", "def");
    segments.put("other.bin/1.0/3/3/00000000", "xyz");
    let manifest = format!("{}/swift.bin/1.0/6/3/", segments.container);
    fx.put_with("swift.bin", "", &[("X-Object-Manifest", &manifest)]);
    // ftp-cloudfs: `FILE.part/NNNNNN` beside it, manifest prefix without the slash.
    fx.put("cfs.bin.part/000000", "123");
    fx.put("cfs.bin.partX", "not a segment");
    let manifest = format!("{}/cfs.bin.part", fx.container);
    fx.put_with("cfs.bin", "", &[("X-Object-Manifest", &manifest)]);
    // A prefix that is not a folder of its own: only the manifest goes.
    fx.put("e1", "e");
    let manifest = format!("{}/e", fx.container);
    fx.put_with("loose", "", &[("X-Object-Manifest", &manifest)]);
    let gw = gateway();
    let mut raw = gw.raw_logged_in();
    assert_eq!(retr(&mut raw, &fx.path("swift.bin")), b"abcdef");
    for name in ["swift.bin", "cfs.bin", "loose"] {
        assert_eq!(raw.cmd(&format!("DELE {}", fx.path(name))).0, 250, "{name}");
    }
    assert_eq!(segments.names(), ["other.bin/1.0/3/3/00000000"]);
    assert_eq!(fx.names(), ["cfs.bin.partX", "e1"]);
}

#[test]
fn segment_folders_and_containers_hide_when_asked() {
    let fx = Fixture::new("hide");
    let segments = fx.segments();
    fx.put("cfs.bin.part/000000", "123");
    let manifest = format!("{}/cfs.bin.part", fx.container);
    fx.put_with("cfs.bin", "", &[("X-Object-Manifest", &manifest)]);
    fx.put("lone.part/x", "a folder without its file stays");
    let dir = std::env::temp_dir().join(format!("swiftftp-hide-{}", std::process::id()));
    std::fs::write(&dir, "[swiftftp]\nhide-part-dir = yes\n").unwrap();
    let gw = TestGateway::start_with(&["--config", dir.to_str().unwrap(), "--hide-segments"]);
    let mut raw = gw.raw_logged_in();
    let names = |raw: &mut RawFtp, path: &str| {
        let (replies, bytes) = raw.transfer(&format!("NLST {path}"));
        assert_eq!(replies.last().unwrap().0, 226);
        String::from_utf8(bytes).unwrap()
    };
    assert_eq!(names(&mut raw, &fx.path("")), "cfs.bin\r\nlone.part\r\n");
    let root = names(&mut raw, "/");
    assert!(root.contains(&format!("{}\r\n", fx.container)), "{root}");
    assert!(!root.contains(&segments.container), "{root}");
    // Hidden, not gone: both can still be entered.
    assert_eq!(raw.cmd(&format!("CWD {}", fx.path("cfs.bin.part"))).0, 250);
    assert_eq!(raw.cmd(&format!("CWD /{}", segments.container)).0, 250);
    std::fs::remove_file(&dir).unwrap();
}

#[test]
fn md5_xmd5_and_hash_answer_the_content_md5_in_their_own_formats() {
    let fx = Fixture::new("md5cmds");
    let gw = gateway();
    let mut raw = gw.raw_logged_in();
    let small = random(1000);
    let large = random(2 * MIB + 3);
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("s.bin")), &small),
        226
    );
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("l.bin")), &large),
        226
    );
    let segments = fx.segments();
    for (name, body) in [("s.bin", &small), ("l.bin", &large)] {
        let path = fx.path(name);
        let sum = md5_hex(body);
        assert_eq!(
            raw.cmd(&format!("MD5 {path}")),
            (251, format!("\"{path}\" {}", sum.to_uppercase()))
        );
        assert_eq!(raw.cmd(&format!("XMD5 {path}")), (250, sum.clone()));
        assert_eq!(
            raw.cmd(&format!("HASH {path}")),
            (213, format!("MD5 0-{} {sum} {path}", body.len()))
        );
    }
    assert_eq!(raw.cmd("OPTS HASH").0, 200);
    assert_eq!(raw.cmd("OPTS HASH MD5").0, 200);
    assert_eq!(raw.cmd("OPTS HASH SHA-256").0, 501);
    let (code, feat) = raw.cmd("FEAT");
    assert_eq!(code, 211);
    for want in [" MD5", " XMD5", " HASH MD5*", " SITE MD5"] {
        assert!(feat.lines().any(|l| l == want), "{want:?} not in {feat}");
    }
    // Not a file: a clear 550, the session goes on.
    assert_eq!(raw.cmd(&format!("XMD5 {}", fx.path("missing"))).0, 550);
    assert_eq!(raw.cmd(&format!("MD5 {}", fx.path(""))).0, 550);
    assert_eq!(raw.cmd("NOOP").0, 200);
    drop(segments);
}

#[test]
fn a_python_swiftclient_slo_is_listed_read_renamed_and_deleted_with_its_segments() {
    let fx = Fixture::new("pyslo");
    let segments = fx.segments();
    let file = std::env::temp_dir().join(format!("swiftftp-pyslo-{}.bin", std::process::id()));
    let body = random(3 * MIB + 77);
    std::fs::write(&file, &body).unwrap();
    let out = std::process::Command::new("swift")
        .args(["-A", &crate::common::auth_url(), "-U", crate::common::USER])
        .args([
            "-K",
            crate::common::KEY,
            "upload",
            "--use-slo",
            "-S",
            "1048576",
        ])
        .args(["--object-name", "py.bin", &fx.container])
        .arg(&file)
        .output()
        .expect("python-swiftclient (installed by tests/swift-lab.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&file).unwrap();
    assert!(fx.head("py.bin").unwrap().static_large_object);
    let written = segments.names();
    assert_eq!(written.len(), 4, "{written:?}");
    let gw = gateway();
    let mut raw = gw.raw_logged_in();
    assert_eq!(
        raw.cmd(&format!("SIZE {}", fx.path("py.bin"))),
        (213, body.len().to_string())
    );
    assert_eq!(raw.cmd("REST 1000000").0, 350);
    assert_eq!(retr(&mut raw, &fx.path("py.bin")), &body[1_000_000..]);
    // No MD5 was stored by that writer: a clear refusal, not a wrong answer.
    assert_eq!(raw.cmd(&format!("XMD5 {}", fx.path("py.bin"))).0, 502);
    assert_eq!(raw.cmd(&format!("RNFR {}", fx.path("py.bin"))).0, 350);
    assert_eq!(raw.cmd(&format!("RNTO {}", fx.path("moved.bin"))).0, 250);
    assert_eq!(segments.names(), written);
    assert_eq!(retr(&mut raw, &fx.path("moved.bin")), body);
    // Under its own name, its segments go with it.
    assert_eq!(raw.cmd(&format!("RNFR {}", fx.path("moved.bin"))).0, 350);
    assert_eq!(raw.cmd(&format!("RNTO {}", fx.path("py.bin"))).0, 250);
    assert_eq!(raw.cmd(&format!("DELE {}", fx.path("py.bin"))).0, 250);
    segments_become(&segments, 0);
    assert_eq!(fx.names(), Vec::<String>::new());
}

/// RMD of a container takes its `<container>_segments` along once that is empty (users never made it, and the
/// root listing would fill with them); one that still holds something stays, and so does its content.
#[test]
fn rmd_of_a_container_removes_its_empty_segments_container_only() {
    let exists = |fx: &Fixture, name: &str| fx.block_on(fx.session.head_container(name)).is_ok();
    let gw = gateway();
    let mut raw = gw.raw_logged_in();
    for keep_something in [false, true] {
        let fx = Fixture::new("rmdseg");
        let segments = fx.segments();
        assert_eq!(
            raw.upload(
                &format!("STOR {}", fx.path("big.bin")),
                &random(2 * MIB + 5)
            ),
            226
        );
        own_segments_reach(&segments, "big.bin", 3);
        assert_eq!(raw.cmd(&format!("DELE {}", fx.path("big.bin"))).0, 250);
        segments_become(&segments, 0);
        if keep_something {
            segments.put("other-tool/1", "x");
        }
        assert_eq!(raw.cmd(&format!("RMD /{}", fx.container)).0, 250);
        assert!(!exists(&fx, &fx.container));
        assert_eq!(exists(&fx, &segments.container), keep_something);
        if keep_something {
            assert_eq!(segments.names(), ["other-tool/1"]);
        }
    }
}
