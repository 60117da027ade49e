//! Keystone logins against a real Keystone v3 (and Swift's proxy with `authtoken` + `keystoneauth` on 8081), and
//! against a test-only endpoint speaking the v2.0 wire format that hands out tokens the real Swift accepts; both
//! started by `tests/keystone-lab.sh start`. Tokens there live for seconds, so expiry is exercised for real.

use crate::common::{RawFtp, TestGateway};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The lab's variables (`tests/keystone-lab.sh env`).
fn lab() -> &'static HashMap<String, String> {
    static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keystone-lab.sh");
        let out = std::process::Command::new(script)
            .arg("env")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tests/keystone-lab.sh env failed: run `tests/keystone-lab.sh start` first\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect()
    })
}

fn var(name: &str) -> String {
    lab()
        .get(name)
        .unwrap_or_else(|| panic!("keystone lab env lacks {name}"))
        .clone()
}

fn v3(extra: &[&str]) -> TestGateway {
    let url = var("SWIFTFTP_TEST_KEYSTONE_V3_URL");
    let mut args = vec![
        "-a",
        url.as_str(),
        "--keystone-auth",
        "--keystone-auth-version",
        "3",
    ];
    args.extend_from_slice(extra);
    TestGateway::start_with(&args)
}

fn v2(url: &str, extra: &[&str]) -> TestGateway {
    let mut args = vec!["-a", url, "--keystone-auth"];
    args.extend_from_slice(extra);
    TestGateway::start_with(&args)
}

fn login(gw: &TestGateway, user: &str, password: &str) -> (RawFtp, u32, String) {
    let mut raw = gw.raw();
    raw.cmd(&format!("USER {user}"));
    let (code, text) = raw.cmd(&format!("PASS {password}"));
    (raw, code, text)
}

/// Makes a container, uploads, lists and downloads through a logged-in session; cleans up.
fn round_trip(raw: &mut RawFtp, tag: &str) {
    let container = format!("ks-{tag}-{}", std::process::id());
    assert_eq!(raw.cmd(&format!("MKD /{container}")).0, 257, "MKD as {tag}");
    let body = format!("hello from {tag}").into_bytes();
    assert_eq!(
        raw.upload(&format!("STOR /{container}/file ☺.txt"), &body),
        226,
        "STOR as {tag}"
    );
    let (replies, listing) = raw.transfer(&format!("NLST /{container}"));
    assert_eq!(replies.last().unwrap().0, 226);
    assert_eq!(String::from_utf8_lossy(&listing).trim(), "file ☺.txt");
    let (replies, got) = raw.transfer(&format!("RETR /{container}/file ☺.txt"));
    assert_eq!(replies.last().unwrap().0, 226);
    assert_eq!(got, body);
    assert_eq!(raw.cmd(&format!("DELE /{container}/file ☺.txt")).0, 250);
    assert_eq!(raw.cmd(&format!("RMD /{container}")).0, 250);
}

fn assert_refused(gw: &TestGateway, user: &str, password: &str) {
    let (_, code, text) = login(gw, user, password);
    assert_eq!(code, 530, "{user}: {text}");
    for leak in ["Keystone", "401", "catalog", "endpoint", "http"] {
        assert!(!text.contains(leak), "530 text {text:?} leaks {leak:?}");
    }
}

#[test]
fn v3_password_logins_with_and_without_domains() {
    let gw = v3(&[]);
    let (mut raw, code, text) = login(&gw, "demo.alice", "alice-pw");
    assert_eq!(code, 230, "{text}");
    round_trip(&mut raw, "v3-alice");
    // The auth URL works without its version suffix too, and domains with dots need another separator.
    let base = var("SWIFTFTP_TEST_KEYSTONE_V3_URL")
        .trim_end_matches("/v3")
        .to_owned();
    let gw = TestGateway::start_with(&[
        "-a",
        &base,
        "--keystone-auth",
        "--keystone-auth-version",
        "3",
        "--keystone-tenant-separator",
        "/",
    ]);
    let (mut raw, code, text) = login(&gw, "proj2@example.org/carol@example.org", "carol-pw");
    assert_eq!(code, 230, "{text}");
    round_trip(&mut raw, "v3-carol");
    let (_, code, _) = login(&gw, "space project@Default/bob", "bob-pw");
    assert_eq!(code, 230);
}

#[test]
fn v3_application_credentials_log_in() {
    let gw = v3(&[]);
    let id = var("SWIFTFTP_TEST_APP_CRED_ID");
    let secret = var("SWIFTFTP_TEST_APP_CRED_SECRET");
    let (mut raw, code, text) = login(&gw, &format!(".appcred.{id}"), &secret);
    assert_eq!(code, 230, "{text}");
    round_trip(&mut raw, "v3-appcred");
    assert_refused(&gw, &format!(".appcred.{id}"), "wrong-secret");
}

#[test]
fn v3_refusals_are_plain_530s() {
    let gw = v3(&[]);
    assert_refused(&gw, "demo.alice", "wrong");
    assert_refused(&gw, "no-such-project.alice", "alice-pw");
    assert_refused(&gw, "demo.nobody", "alice-pw");
    assert_refused(&gw, "alice", "alice-pw"); // no project part: the old tool crashed here
    let gw = v3(&["--keystone-region-name", "RegionTwo"]);
    assert_refused(&gw, "demo.alice", "alice-pw");
    let gw = v3(&["--keystone-service-type", "not-object-store"]);
    assert_refused(&gw, "demo.alice", "alice-pw");
}

#[test]
fn v2_logins_with_every_separator() {
    let url = var("SWIFTFTP_TEST_KEYSTONE_V2_URL");
    let gw = v2(&url, &[]);
    let (mut raw, code, text) = login(&gw, "demo.alice", "alice-pw");
    assert_eq!(code, 230, "{text}");
    round_trip(&mut raw, "v2-alice");
    let (mut raw, code, _) = login(&gw, "space tenant.bob", "bob-pw");
    assert_eq!(code, 230);
    round_trip(&mut raw, "v2-bob");
    assert_refused(&gw, "demo.alice", "wrong");
    assert_refused(&gw, "alice", "alice-pw");
    // Without the version suffix, and with a `\\` separator.
    let gw = v2(
        url.trim_end_matches("/v2.0"),
        &["--keystone-tenant-separator", "\\"],
    );
    let (mut raw, code, text) = login(&gw, "dot.tenant\\dave", "dave-pw");
    assert_eq!(code, 230, "{text}");
    round_trip(&mut raw, "v2-dave");
    let gw = v2(&url, &["--keystone-region-name", "RegionTwo"]);
    assert_refused(&gw, "demo.alice", "alice-pw");
}

#[test]
fn tls_to_keystone_and_swift_needs_the_ca_or_insecure() {
    let url = var("SWIFTFTP_TEST_KEYSTONE_V2_TLS_URL");
    let ca = var("SWIFTFTP_TEST_KEYSTONE_CA");
    let gw = v2(&url, &["--ca-file", &ca]);
    let (_, code, text) = login(&gw, "demo.alice", "alice-pw");
    assert_eq!(code, 230, "{text}");
    // This tenant's catalog points at Swift over TLS (a TLS front of the real Swift with the same certificate).
    let (mut raw, code, text) = login(&gw, "tls tenant.erin", "erin-pw");
    assert_eq!(code, 230, "{text}");
    round_trip(&mut raw, "v2-tls");
    let gw = v2(&url, &["--insecure"]);
    let (mut raw, code, _) = login(&gw, "tls tenant.erin", "erin-pw");
    assert_eq!(code, 230);
    round_trip(&mut raw, "v2-insecure");
    // Neither: the TLS handshake with Keystone fails, and so does the login.
    let gw = v2(&url, &[]);
    assert_refused(&gw, "demo.alice", "alice-pw");
    // Keystone over plain HTTP but Swift over TLS without the CA: logged in, and Swift requests fail with 451.
    let gw = v2(&var("SWIFTFTP_TEST_KEYSTONE_V2_URL"), &[]);
    let (mut raw, code, _) = login(&gw, "tls tenant.erin", "erin-pw");
    assert_eq!(code, 230);
    let (replies, _) = raw.transfer("LIST /");
    assert_eq!(replies.last().unwrap().0, 451, "{replies:?}");
}

fn v2_stats_total() -> u64 {
    let url = var("SWIFTFTP_TEST_KEYSTONE_V2_URL");
    let base = url.trim_end_matches("/v2.0");
    let out = std::process::Command::new("curl")
        .args(["-fsS", &format!("{base}/_stats")])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["tokens_issued"]["space tenant/bob"].as_u64().unwrap_or(0)
}

#[test]
fn fifty_concurrent_logins_make_one_token_request() {
    let url = var("SWIFTFTP_TEST_KEYSTONE_V2_URL");
    let gw = v2(&url, &[]);
    let before = v2_stats_total();
    let addr = gw.addr;
    let sessions: Vec<_> = (0..50)
        .map(|_| {
            std::thread::spawn(move || {
                let mut raw = RawFtp::connect(addr);
                raw.cmd("USER space tenant.bob");
                let code = raw.cmd("PASS bob-pw").0;
                (raw, code)
            })
        })
        .collect();
    let mut held = Vec::new();
    for s in sessions {
        let (raw, code) = s.join().unwrap();
        assert_eq!(code, 230);
        held.push(raw);
    }
    assert_eq!(
        v2_stats_total() - before,
        1,
        "50 logins of one user made more than one token request"
    );
    // A wrong password never reuses that token.
    assert_refused(&gw, "space tenant.bob", "not-bobs");
}

#[test]
fn sessions_and_uploads_outlive_their_tokens() {
    let ttl: u64 = var("SWIFTFTP_TEST_KEYSTONE_TOKEN_TTL").parse().unwrap();
    let gw = v3(&[]);
    let (mut raw, code, text) = login(&gw, "demo.alice", "alice-pw");
    assert_eq!(code, 230, "{text}");
    let container = format!("ks-expiry-{}", std::process::id());
    assert_eq!(raw.cmd(&format!("MKD /{container}")).0, 257);
    // Idle past the token's life, then work again without an error reply.
    std::thread::sleep(Duration::from_secs(ttl + 2));
    let (replies, _) = raw.transfer(&format!("NLST /{container}"));
    assert_eq!(replies.last().unwrap().0, 226, "{replies:?}");
    // An upload that lasts longer than a token lives.
    let mut data = raw.data();
    raw.send(&format!("STOR /{container}/slow.bin"));
    assert_eq!(raw.reply().0, 150);
    let started = Instant::now();
    let mut sent = 0usize;
    while started.elapsed() < Duration::from_secs(ttl + 3) {
        data.write_all(&[7u8; 64 * 1024]).unwrap();
        sent += 64 * 1024;
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(data);
    assert_eq!(raw.reply().0, 226);
    let (code, size) = raw.cmd(&format!("SIZE /{container}/slow.bin"));
    assert_eq!((code, size), (213, sent.to_string()));
    let mut data = raw.data();
    raw.send(&format!("RETR /{container}/slow.bin"));
    assert_eq!(raw.reply().0, 150);
    let mut got = Vec::new();
    data.read_to_end(&mut got).unwrap();
    assert_eq!(raw.reply().0, 226);
    assert_eq!(got.len(), sent);
    assert_eq!(raw.cmd(&format!("DELE /{container}/slow.bin")).0, 250);
    assert_eq!(raw.cmd(&format!("RMD /{container}")).0, 250);
}

/// `demo.alice`, `demo@Default.alice`, `demo.alice@Default` and `demo@Default.alice@Default` are one Keystone
/// identity: their failures count against one budget, and the lockout they earn holds for every spelling.
#[test]
fn four_spellings_of_one_v3_identity_share_one_failure_budget() {
    let gw = v3(&["--max-login-failures", "4"]);
    let spellings = [
        "demo.alice",
        "demo@Default.alice",
        "demo.alice@Default",
        "demo@Default.alice@Default",
    ];
    for spelling in spellings {
        assert_refused(&gw, spelling, "wrong");
    }
    // Locked: the right password, in any spelling, is refused now.
    for spelling in spellings {
        let (_, code, text) = login(&gw, spelling, "alice-pw");
        assert_eq!(code, 530, "{spelling} got in after the lockout: {text}");
    }
    // Another identity is not touched by it.
    let (_, code, text) = login(&gw, "space project.bob", "bob-pw");
    assert_eq!(code, 230, "{text}");
}
