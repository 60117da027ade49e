//! Until the write path lands, every writing command is refused with `502`, nothing reaches Swift, and a REST
//! offset left over from a failed transfer (a libunftp defect) cannot turn into a partial write.

use crate::common::TestGateway;
use crate::common::swift::Fixture;
use std::io::Write;
use std::time::Duration;

#[test]
fn writing_commands_get_502_and_write_nothing() {
    let fx = Fixture::new("ro");
    fx.put("keep.txt", "original");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    for cmd in ["STOR", "APPE"] {
        let mut data = raw.data();
        raw.send(&format!("{cmd} {}", fx.path("keep.txt")));
        let first = raw.reply();
        if first.0 == 150 {
            let _ = data.write_all(b"new content");
            drop(data);
            assert_eq!(raw.reply().0, 502, "{cmd}");
        } else {
            assert_eq!(first.0, 502, "{cmd}");
        }
        assert!(raw.silent_for(Duration::from_millis(100)));
    }
    assert_eq!(raw.cmd(&format!("MKD {}", fx.path("newdir"))).0, 502);
    assert_eq!(raw.cmd(&format!("RMD {}", fx.path("keep.txt"))).0, 502);
    assert_eq!(raw.cmd(&format!("DELE {}", fx.path("keep.txt"))).0, 502);
    assert_eq!(raw.cmd(&format!("RNFR {}", fx.path("keep.txt"))).0, 350);
    assert_eq!(raw.cmd(&format!("RNTO {}", fx.path("moved.txt"))).0, 502);

    // A stale REST after a failed RETR.
    assert_eq!(raw.cmd("REST 5").0, 350);
    let (replies, _) = raw.transfer(&format!("RETR {}", fx.path("missing")));
    assert_eq!(replies.last().unwrap().0, 550);
    let mut data = raw.data();
    raw.send(&format!("STOR {}", fx.path("keep.txt")));
    if raw.reply().0 == 150 {
        let _ = data.write_all(b"xx");
        drop(data);
        assert_eq!(raw.reply().0, 502);
    }

    let mut ftp = gw.ftp();
    let body = ftp
        .retr_as_buffer(&fx.path("keep.txt"))
        .unwrap()
        .into_inner();
    assert_eq!(body, b"original");
    let names = ftp.nlst(Some(&fx.path(""))).unwrap();
    assert_eq!(names, ["keep.txt"]);
}
