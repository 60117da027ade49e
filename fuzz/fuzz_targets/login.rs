//! Login names → credentials under every scheme: never a panic; a parsed login never has an empty user.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swiftftp::ftp::login_name::{LoginScheme, parse_login};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (login, password) = text.split_once('\n').unwrap_or((text, "pw"));
    for scheme in [
        LoginScheme::V1,
        LoginScheme::KeystoneV2 { tenant_sep: ".".into() },
        LoginScheme::KeystoneV2 { tenant_sep: "\\".into() },
        LoginScheme::KeystoneV3 {
            tenant_sep: ".".into(),
            domain_sep: "@".into(),
        },
        LoginScheme::KeystoneV3 {
            tenant_sep: "/".into(),
            domain_sep: "@".into(),
        },
    ] {
        if let Ok((creds, owner)) = parse_login(&scheme, login, password) {
            let _ = creds.display_user();
            assert!(!owner.is_empty(), "{scheme:?}: {login:?} parsed with an empty owner");
            assert!(!creds.identity().is_empty());
        }
    }
});
