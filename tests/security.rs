//! Attacks from the security review (#16), each reproduced against the real Swift and shown to fail: what a
//! user with fewer rights can plant for an admin's command to act on, and names that would misdirect deletes.

use crate::common::swift::Fixture;
use crate::common::{TestGateway, random};
use std::process::Command;

const MIB: usize = 1 << 20;
const READER: (&str, &str) = ("test:reader", "reading");

/// A Swift request as the plain user `test:reader` (curl, so nothing of swiftftp's client is involved):
/// returns the HTTP status.
fn as_reader(method: &str, path: &str, headers: &[&str], body: &[u8]) -> u16 {
    let auth = Command::new("curl")
        .args(["-sS", "-m", "10", "-o", "/dev/null", "-D", "-", "-H"])
        .arg(format!("X-Auth-User: {}", READER.0))
        .args(["-H", &format!("X-Auth-Key: {}", READER.1)])
        .arg(crate::common::auth_url())
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&auth.stdout).to_string();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no {name} in {head}"))
    };
    let (url, token) = (header("X-Storage-Url"), header("X-Auth-Token"));
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["-X", method, "-H", &format!("X-Auth-Token: {token}")]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let body_file = std::env::temp_dir().join(format!("swiftftp-sec-{}-{n}", std::process::id()));
    std::fs::write(&body_file, body).unwrap();
    if method == "PUT" {
        cmd.arg("--data-binary")
            .arg(format!("@{}", body_file.display()));
    }
    let out = cmd.arg(format!("{url}/{path}")).output().unwrap();
    let _ = std::fs::remove_file(&body_file);
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// `victim` holds data the reader may read (so Swift accepts an SLO naming it) but not delete; `shared` is
/// writable by the reader.
fn containers() -> (Fixture, Fixture) {
    let victim = Fixture::new("victim");
    for i in 0..3 {
        victim.put(&format!("data/{i}"), format!("precious {i}"));
    }
    victim
        .block_on(
            victim
                .session
                .put_container(&victim.container, &[("X-Container-Read", "test:reader")]),
        )
        .unwrap();
    let shared = Fixture::new("shared");
    shared
        .block_on(shared.session.put_container(
            &shared.container,
            &[
                ("X-Container-Read", "test:reader"),
                ("X-Container-Write", "test:reader"),
            ],
        ))
        .unwrap();
    // The reader really cannot delete the victim's data.
    assert_eq!(
        as_reader("DELETE", &format!("{}/data/0", victim.container), &[], b""),
        403
    );
    (victim, shared)
}

fn victim_intact(victim: &Fixture) {
    assert_eq!(victim.names(), ["data/0", "data/1", "data/2"]);
}

#[test]
fn a_planted_dlo_manifest_does_not_make_an_admin_delete_another_containers_objects() {
    let (victim, shared) = containers();
    let plant = |name: &str| {
        let manifest = format!("X-Object-Manifest: {}/data/", victim.container);
        let status = as_reader(
            "PUT",
            &format!("{}/{name}", shared.container),
            &[&manifest],
            b"",
        );
        assert_eq!(status, 201);
    };
    plant("report.txt");
    plant("other.txt");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    // The admin overwrites one planted name and deletes the other.
    assert_eq!(
        raw.upload(&format!("STOR {}", shared.path("report.txt")), b"fresh"),
        226
    );
    assert_eq!(shared.get("report.txt"), b"fresh");
    assert_eq!(
        raw.cmd(&format!("DELE {}", shared.path("other.txt"))).0,
        250
    );
    victim_intact(&victim);
    assert_eq!(shared.names(), ["report.txt"]);
}

#[test]
fn a_planted_slo_manifest_does_not_make_an_admin_delete_another_containers_objects() {
    let (victim, shared) = containers();
    let entries: Vec<String> = (0..3)
        .map(|i| {
            let body = format!("precious {i}");
            format!(
                r#"{{"path":"/{}/data/{i}","etag":"{}","size_bytes":{}}}"#,
                victim.container,
                crate::common::md5_hex(body.as_bytes()),
                body.len()
            )
        })
        .collect();
    let manifest = format!("[{}]", entries.join(","));
    for name in ["report.bin", "other.bin"] {
        let status = as_reader(
            "PUT",
            &format!("{}/{name}?multipart-manifest=put", shared.container),
            &[],
            manifest.as_bytes(),
        );
        assert_eq!(status, 201, "the reader's SLO manifest is accepted");
    }
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    let body = random(2 * MIB);
    assert_eq!(
        raw.upload(&format!("STOR {}", shared.path("report.bin")), &body),
        226
    );
    assert_eq!(shared.get("report.bin"), body);
    assert_eq!(
        raw.cmd(&format!("DELE {}", shared.path("other.bin"))).0,
        250
    );
    victim_intact(&victim);
    assert_eq!(shared.names(), ["report.bin"]);
}

/// Names Swift and percent-encoding could read two ways: each large file's segments go with it, and nobody
/// else's.
#[test]
fn large_files_with_percent_space_and_unicode_names_leave_no_segment_behind() {
    let fx = Fixture::new("pct");
    let segments = fx.segments();
    let gw = TestGateway::start_with(&["--segment-size", "1M"]);
    let mut raw = gw.raw_logged_in();
    let names = ["a%41.bin", "aA.bin", "d i r/b%2F c.bin", "ä ö/%zz€.bin"];
    for name in names {
        assert_eq!(
            raw.upload(&format!("STOR {}", fx.path(name)), &random(2 * MIB + 1)),
            226,
            "{name}"
        );
    }
    assert_eq!(segments.names().len(), 4 * 3);
    // Overwrite the first with a small file: exactly its three segments go.
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path(names[0])), b"small"),
        226
    );
    assert_eq!(segments.names().len(), 3 * 3);
    assert!(
        segments.names().iter().all(|s| !s.starts_with("a%41.bin/")),
        "{:?}",
        segments.names()
    );
    for name in &names[1..] {
        assert_eq!(raw.cmd(&format!("DELE {}", fx.path(name))).0, 250, "{name}");
    }
    assert_eq!(segments.names(), Vec::<String>::new());
    assert_eq!(fx.get(names[0]), b"small");
}

/// 40 wrong `PASS` lines and the right one in one write: each is checked in turn (one check in flight per
/// session), so the auth service is asked once, not 41 times, and the right password does not slip through.
#[test]
fn pipelined_pass_lines_are_checked_one_at_a_time_and_never_walk_past_the_lockout() {
    use crate::common::faulty::{FaultProxy, swift_addr};
    let proxy = FaultProxy::start(swift_addr());
    let gw = TestGateway::start_with(&["-a", &proxy.auth_url(), "--max-login-failures", "5"]);
    let started = std::time::Instant::now();
    let mut raw = gw.raw();
    let mut burst = format!("USER {}\r\n", crate::common::USER);
    for _ in 0..40 {
        burst.push_str("PASS wrong\r\n");
    }
    burst.push_str(&format!("PASS {}\r\n", crate::common::KEY));
    raw.send_bytes(burst.as_bytes());
    let mut codes = Vec::new();
    while codes.len() < 42 {
        match raw.try_reply() {
            Some((code, _)) => codes.push(code),
            None => break,
        }
    }
    assert_eq!(codes.first(), Some(&331), "{codes:?}");
    assert!(
        !codes.contains(&230),
        "the right password got in: {codes:?}"
    );
    assert_eq!(codes.len(), 42, "one reply per line: {codes:?}");
    let recorded = String::from_utf8_lossy(&proxy.recorded()).to_string();
    let asked = recorded
        .split("\r\n")
        .filter(|l| l.starts_with("GET /auth/"))
        .count();
    assert_eq!(asked, 1, "one password reached the auth service");
    // The failure was counted and delayed like any other.
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
}
