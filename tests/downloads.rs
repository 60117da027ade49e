//! RETR in ranges against the real Swift (`swift/download.rs`): a file over the first range arrives whole
//! through several ranged `GET`s pinned to one ETag; a large object whose bytes do not match its stored MD5
//! fails after its last byte (451, not 226); an object replaced while it is read fails the transfer and the
//! client never gets bytes of two versions.

use crate::common::faulty::{FaultProxy, swift_addr};
use crate::common::swift::Fixture;
use crate::common::{TestGateway, md5_hex, random};
use std::io::Read;

const MIB: usize = 1 << 20;

#[test]
fn a_file_over_the_first_range_arrives_whole_through_ranges_pinned_to_its_etag() {
    let fx = Fixture::new("ranges");
    // 8 MiB, then 16, then the rest: three GETs.
    let body = random(25 * MIB + 123);
    fx.put("big.bin", body.clone());
    let etag = fx.head("big.bin").unwrap().etag.unwrap();
    let proxy = FaultProxy::start(swift_addr());
    let gw = TestGateway::start_with(&["-a", &proxy.auth_url()]);
    let mut raw = gw.raw_logged_in();
    assert_eq!(raw.cmd("TYPE I").0, 200);
    let (replies, got) = raw.transfer(&format!("RETR {}", fx.path("big.bin")));
    assert_eq!(replies.last().unwrap().0, 226, "{replies:?}");
    assert_eq!(got.len(), body.len());
    assert_eq!(md5_hex(&got), md5_hex(&body));

    let sent = String::from_utf8_lossy(&proxy.recorded()).to_lowercase();
    let gets: Vec<&str> = sent
        .split("get /v1/")
        .skip(1)
        .filter(|r| r.contains("big.bin"))
        .collect();
    assert_eq!(gets.len(), 3, "{gets:?}");
    let last = body.len() - 1;
    for (i, range) in [
        "range: bytes=0-8388607".to_owned(),
        "range: bytes=8388608-25165823".to_owned(),
        format!("range: bytes=25165824-{last}"),
    ]
    .iter()
    .enumerate()
    {
        let request = gets[i].split("\r\n\r\n").next().unwrap();
        assert!(request.contains(range.as_str()), "GET {i}: {request}");
        let pinned = format!("if-match: \"{etag}\"");
        assert_eq!(request.contains(&pinned), i > 0, "GET {i}: {request}");
    }
}

#[test]
fn a_large_object_whose_bytes_do_not_match_its_stored_md5_fails_after_its_last_byte() {
    let fx = Fixture::new("slo-md5");
    let _segments = fx.segments();
    let gw = TestGateway::start_with(&["--segment-size", "1M"]);
    let mut raw = gw.raw_logged_in();
    assert_eq!(raw.cmd("TYPE I").0, 200);
    let body = random(10 * MIB + 7);
    let path = fx.path("big.bin");
    assert_eq!(raw.upload(&format!("STOR {path}"), &body), 226);
    let head = fx.head("big.bin").unwrap();
    assert!(head.static_large_object);
    assert_eq!(head.meta_md5.as_deref(), Some(md5_hex(&body).as_str()));
    let (replies, got) = raw.transfer(&format!("RETR {path}"));
    assert_eq!(replies.last().unwrap().0, 226, "{replies:?}");
    assert!(got == body, "the bytes of a good large object differ");

    // What a bad segment looks like from here: bytes whose MD5 is not the stored one.
    let wrong = md5_hex(b"something else");
    fx.block_on(fx.session.post_object(
        &fx.container,
        "big.bin",
        &[("X-Object-Meta-Md5", wrong.as_str())],
    ))
    .unwrap();
    let (replies, got) = raw.transfer(&format!("RETR {path}"));
    assert_eq!(replies.last().unwrap().0, 451, "{replies:?}");
    assert_eq!(got.len(), body.len(), "every byte is sent before the check");
    assert!(
        raw.silent_for(std::time::Duration::from_millis(200)),
        "a second reply"
    );
}

#[test]
fn an_object_replaced_while_it_is_read_fails_and_never_mixes_versions() {
    let fx = Fixture::new("replaced");
    let old = random(64 * MIB);
    fx.put("moving.bin", old.clone());
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    assert_eq!(raw.cmd("TYPE I").0, 200);
    let mut data = raw.data_small_window();
    raw.send(&format!("RETR {}", fx.path("moving.bin")));
    assert_eq!(raw.reply().0, 150);
    let mut got = vec![0u8; MIB];
    data.read_exact(&mut got).unwrap();
    // With the small window the gateway is little ahead of what was read: in its first range.
    // (`random` is the same every time: the new version is the old one reversed.)
    let new: Vec<u8> = old.iter().rev().copied().collect();
    fx.put("moving.bin", new);
    data.read_to_end(&mut got).unwrap();
    let (code, text) = raw.reply();
    let same = got.iter().zip(&old).take_while(|(a, b)| a == b).count();
    assert_eq!(
        same,
        got.len(),
        "bytes of another version after the old one's"
    );
    assert!(got.len() < old.len(), "all {} bytes arrived", got.len());
    assert_eq!(code, 451, "{text} after {} bytes", got.len());
}
