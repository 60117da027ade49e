//! Logging in: Swift v1 auth decides, a refusal says nothing about why, and the session basics answer.

use crate::common::{KEY, TestGateway, USER};

#[test]
fn login_with_swift_credentials_gets_230() {
    let gw = TestGateway::start();
    let mut raw = gw.raw();
    assert_eq!(raw.cmd(&format!("USER {USER}")).0, 331);
    let (code, _) = raw.cmd(&format!("PASS {KEY}"));
    assert_eq!(code, 230);
    assert_eq!(raw.cmd("QUIT").0, 221);
}

#[test]
fn wrong_password_gets_530_without_backend_text() {
    let gw = TestGateway::start();
    let mut raw = gw.raw();
    raw.cmd(&format!("USER {USER}"));
    let (code, text) = raw.cmd("PASS wrong");
    assert_eq!(code, 530);
    for leak in ["Swift", "401", "403", "auth", "http"] {
        assert!(!text.contains(leak), "530 text {text:?} leaks {leak:?}");
    }
    // Unknown users get the very same answer.
    raw.cmd("USER nobody:nobody");
    assert_eq!(raw.cmd("PASS wrong"), (code, text));
    // Commands other than login are refused before login.
    assert_eq!(raw.cmd("PWD").0, 530);
}

#[test]
fn unreachable_auth_service_gets_530() {
    // Port 9 (discard) on loopback: nothing listens there on these machines.
    let gw = TestGateway::start_with(&["-a", "http://127.0.0.1:9/auth/v1.0"]);
    let mut raw = gw.raw();
    raw.cmd(&format!("USER {USER}"));
    let (code, text) = raw.cmd(&format!("PASS {KEY}"));
    assert_eq!(code, 530, "{text}");
}

#[test]
fn session_basics_answer() {
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    assert_eq!(raw.cmd("SYST"), (215, "UNIX Type: L8".to_owned()));
    assert_eq!(raw.cmd("NOOP").0, 200);
    assert_eq!(raw.cmd("OPTS UTF8 ON").0, 200);
    assert_eq!(raw.cmd("TYPE I").0, 200);
    let (code, feat) = raw.cmd("FEAT");
    assert_eq!(code, 211);
    for f in [
        "UTF8",
        "SIZE",
        "MDTM",
        "MLST type*;size*;modify*;perm*;UNIX.mode*;",
        "MLSD",
        "MFMT",
        "EPSV",
        "REST STREAM",
    ] {
        assert!(
            feat.lines().any(|l| l.trim() == f),
            "FEAT lacks {f}: {feat}"
        );
    }
    assert_eq!(raw.cmd("PWD"), (257, "\"/\"".to_owned()));
    assert!(raw.silent_for(std::time::Duration::from_millis(200)));
}

#[test]
fn banner_comes_from_the_config() {
    let gw = TestGateway::start();
    let ftp = suppaftp::FtpStream::connect(gw.addr).unwrap();
    let welcome = ftp.get_welcome_msg().unwrap_or_default().to_owned();
    assert!(
        welcome.contains(&format!("swiftftp {} ready.", env!("CARGO_PKG_VERSION"))),
        "{welcome:?}"
    );
    // The file's banner, with its version substituted.
    let conf = std::env::temp_dir().join(format!("swiftftp-banner-{}.conf", std::process::id()));
    std::fs::write(
        &conf,
        "[swiftftp]\nbanner = Welcome to the test gateway %v\n",
    )
    .unwrap();
    let gw = TestGateway::start_with(&["--config", conf.to_str().unwrap()]);
    let _ = std::fs::remove_file(&conf);
    let ftp = suppaftp::FtpStream::connect(gw.addr).unwrap();
    let welcome = ftp.get_welcome_msg().unwrap_or_default().to_owned();
    assert!(
        welcome.contains(&format!(
            "Welcome to the test gateway {}",
            env!("CARGO_PKG_VERSION")
        )),
        "{welcome:?}"
    );
    assert!(!welcome.contains("ready."), "{welcome:?}");
}
