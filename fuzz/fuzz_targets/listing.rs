//! Swift listing names → directory entries and `LIST` lines: never a panic, and no line an attacker-chosen
//! object name could split (no CR or LF inside a line).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::{Duration, SystemTime};
use swiftftp::ftp::listing::{DirEntries, Meta, list_line};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut dir = DirEntries::default();
    for (i, name) in text.split('\u{1}').enumerate() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(i as u64 * 7_777_777);
        let meta = if i % 3 == 0 {
            Meta::dir()
        } else {
            Meta::file(i as u64 * 1000, Some(t))
        };
        dir.add(name, meta);
    }
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    for (name, meta) in dir.entries() {
        let line = list_line(name, meta, "owner", now);
        let body = line.strip_suffix("\r\n").unwrap_or(&line);
        assert!(!body.contains('\r') && !body.contains('\n'), "{line:?}");
    }
});
