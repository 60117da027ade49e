//! Bad input on the control channel: malformed and out-of-order commands, huge arguments, NUL and control bytes,
//! invalid UTF-8, `..` paths, names over Swift's limits. Every line gets exactly one reply (or, for bytes libunftp
//! cannot decode, a clean close), nothing is created by accident, and the server keeps serving.

use crate::common::swift::Fixture;
use crate::common::{KEY, RawFtp, TestGateway, USER};
use std::time::Duration;

/// Sends `bytes` and returns the one reply, checking nothing else follows; `None` when the server closed the
/// session instead of answering.
fn exchange(raw: &mut RawFtp, bytes: &[u8]) -> Option<(u32, String)> {
    raw.send_bytes(bytes);
    let reply = raw.try_reply()?;
    assert!((100..600).contains(&reply.0), "{reply:?}");
    assert!(
        raw.silent_for(Duration::from_millis(50)),
        "a second reply to {bytes:?}"
    );
    Some(reply)
}

fn logged_in(gw: &TestGateway) -> RawFtp {
    gw.raw_logged_in()
}

#[test]
fn every_bad_line_gets_one_reply_and_the_server_survives() {
    let fx = Fixture::new("bad-input");
    fx.put("keep.txt", "keep");
    let gw = TestGateway::start();

    // Before login: nothing but the login commands (and a few harmless ones) is served.
    let mut raw = gw.raw();
    for (line, want) in [
        ("STOR /x", 530),
        ("LIST /", 530),
        ("RETR /x", 530),
        ("DELE /x", 530),
        ("PASS nouser", 503),
        ("RNTO /x", 530),
        ("CWD /", 530),
    ] {
        let (code, text) = exchange(&mut raw, format!("{line}\r\n").as_bytes()).unwrap();
        assert_eq!(code, want, "{line}: {text}");
    }

    let long_container = "c".repeat(300);
    let long_object = format!("{}/{}", fx.container, "o".repeat(1100));
    // Just over the cap: all of it is read before the reply, so the close is clean (a bigger line could be reset
    // with its reply unread).
    let huge_arg = format!("CWD /{}", "a".repeat(9_000));
    let cases: Vec<(Vec<u8>, &[u32])> = vec![
        (b"FOO bar\r\n".to_vec(), &[500, 502]),
        (b"\r\n".to_vec(), &[500]),
        (b"NOOP\0\0\0\r\n".to_vec(), &[200, 500, 501]),
        (b"\x01\x02\x03\x1b[2J\r\n".to_vec(), &[500]),
        // libunftp answers 450 where 503 (bad sequence) is usual.
        (b"RNTO /nowhere\r\n".to_vec(), &[450, 503]),
        (b"REST abc\r\n".to_vec(), &[501]),
        (b"REST -5\r\n".to_vec(), &[501]),
        (b"TYPE Z\r\n".to_vec(), &[200, 501, 504]),
        (b"MODE Z\r\n".to_vec(), &[501, 504]),
        (b"STRU Z\r\n".to_vec(), &[501, 504]),
        (b"PORT 1,2,3\r\n".to_vec(), &[500, 501, 502]),
        (b"EPRT |9|x|y|\r\n".to_vec(), &[500, 501, 502, 522]),
        (b"SIZE\r\n".to_vec(), &[501, 550]),
        (b"MDTM\r\n".to_vec(), &[501, 550]),
        (b"DELE\r\n".to_vec(), &[501, 550]),
        (b"RMD /\r\n".to_vec(), &[550]),
        (b"DELE /\r\n".to_vec(), &[550]),
        // The root exists, and MKD of an existing directory succeeds (it is idempotent).
        (b"MKD /\r\n".to_vec(), &[257, 521, 550]),
        // Normalised to /etc: no such container.
        (b"CWD ../../../../etc\r\n".to_vec(), &[550]),
        (b"RETR ../../../../etc/passwd\r\n".to_vec(), &[425, 550]),
        (format!("MKD /{long_container}\r\n").into_bytes(), &[553]),
        (
            format!("CWD /{long_container}\r\n").into_bytes(),
            &[553, 550],
        ),
        (format!("SIZE /{long_object}\r\n").into_bytes(), &[553, 550]),
        // Over the 8 KiB line cap: 500 and the session is closed (the loop below logs in again).
        (format!("{huge_arg}\r\n").into_bytes(), &[500]),
        (
            b"SITE CHMOD 777 /x\r\n".to_vec(),
            &[500, 501, 502, 504, 550],
        ),
        (b"OPTS\r\n".to_vec(), &[501, 500]),
        (b"HELP\r\n".to_vec(), &[214]),
        (b"ALLO abc\r\n".to_vec(), &[200, 202, 501]),
        (b"ABOR\r\n".to_vec(), &[225, 226]),
        (b"PBSZ 0\r\n".to_vec(), &[200, 503, 534]),
        (b"PROT P\r\n".to_vec(), &[502, 503, 534, 536]),
        (b"AUTH SSL\r\n".to_vec(), &[502, 504, 534]),
    ];
    let mut raw = logged_in(&gw);
    let mut unexpected = Vec::new();
    let mut closed = Vec::new();
    for (bytes, allowed) in &cases {
        let (code, text) =
            exchange(&mut raw, bytes).unwrap_or_else(|| panic!("closed on {bytes:?}"));
        if !allowed.contains(&code) {
            unexpected.push(format!(
                "{:?} got {code} {text}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(60)])
            ));
        }
        // A session goes on after a malformed line (it replied first); only the over-long one closes it.
        raw.send("NOOP");
        match raw.try_reply() {
            Some((200, _)) => {}
            Some(other) => unexpected.push(format!("NOOP after {bytes:?}: {other:?}")),
            None => {
                closed.push(String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned());
                raw = logged_in(&gw);
            }
        }
    }
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    // Only the over-long line ends the session; every other malformed line is answered and the session goes on.
    assert_eq!(
        closed,
        [format!("CWD /{}", "a".repeat(35))],
        "sessions closed"
    );

    // A line that never ends is not buffered: 500 and closed at the cap, not after megabytes.
    let mut raw = logged_in(&gw);
    raw.send_bytes(format!("CWD /{}", "z".repeat(9_000)).as_bytes());
    let (code, text) = raw.try_reply().expect("a reply to an over-long line");
    assert_eq!((code, text.as_str()), (500, "Command line too long"));
    assert!(raw.try_reply().is_none(), "the session stayed open");

    // Invalid UTF-8: libunftp cannot decode it; a reply or a clean close are both fine, never a hang.
    for bytes in [
        &b"\xff\xfe\xfd\r\n"[..],
        b"CWD \xc3\x28\r\n",
        b"STOR /x\xe2\x82\r\n",
    ] {
        let mut raw = logged_in(&gw);
        if let Some((code, text)) = exchange(&mut raw, bytes) {
            assert!((400..600).contains(&code), "{code} {text}");
        }
    }

    // Nothing was created by any of it, and the server still serves new sessions.
    assert_eq!(fx.names(), ["keep.txt"]);
    let mut raw = gw.raw();
    assert_eq!(raw.cmd(&format!("USER {USER}")).0, 331);
    assert_eq!(raw.cmd(&format!("PASS {KEY}")).0, 230);
    assert_eq!(raw.cmd(&format!("SIZE {}", fx.path("keep.txt"))).0, 213);
}
