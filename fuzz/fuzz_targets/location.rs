//! FTP paths → `Location`: never a panic, always confined (no `..`, no empty component), limits honoured, and
//! normalising twice changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swiftftp::ftp::location::Location;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new(std::ffi::OsStr::new(
        std::str::from_utf8(data).unwrap_or("/"),
    ));
    let Ok(loc) = Location::parse(path) else {
        return;
    };
    let (container, key) = match &loc {
        Location::Root => return,
        Location::Container(c) => (c.clone(), String::new()),
        Location::Object { container, key } => (container.clone(), key.clone()),
    };
    for part in std::iter::once(container.as_str()).chain(key.split('/').filter(|_| !key.is_empty())) {
        assert!(!part.is_empty() && part != "." && part != "..", "{loc:?}");
    }
    // The rendering is a fixed point of parsing.
    assert_eq!(Location::parse_str(&loc.to_string()), loc);
    if loc.check_limits(256, 1024).is_ok() {
        assert!(container.len() <= 256 && key.len() <= 1024);
    }
    let _ = loc.parent_and_name();
});
