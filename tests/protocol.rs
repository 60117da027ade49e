//! Replies as RFC 959 and RFC 3659 shape them, checked on a raw control connection (#17): a 257 reply quotes its
//! path with any quote inside doubled, and PWD shows the directory the session is in, normalised.

use crate::common::swift::Fixture;
use crate::common::{RawFtp, TestGateway};

#[test]
fn pwd_shows_the_normalised_directory_in_quotes() {
    let fx = Fixture::new("pwd");
    fx.put("sub/x", "x");
    fx.put("q\"d/x", "x");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    let c = &fx.container;
    for (cwd, want) in [
        (format!("/{c}/sub"), format!("\"/{c}/sub\"")),
        ("../../..".to_owned(), "\"/\"".to_owned()),
        (format!("/{c}//sub/"), format!("\"/{c}/sub\"")),
        (format!("/{c}/./sub"), format!("\"/{c}/sub\"")),
        ("..".to_owned(), format!("\"/{c}\"")),
        ("q\"d".to_owned(), format!("\"/{c}/q\"\"d\"")),
    ] {
        assert_eq!(raw.cmd(&format!("CWD {cwd}")).0, 250, "CWD {cwd}");
        let (code, text) = raw.cmd("PWD");
        assert_eq!(code, 257, "{text}");
        assert!(
            text.starts_with(&want),
            "after CWD {cwd}: PWD said {text}, not {want}"
        );
    }
    assert_eq!(raw.cmd("CDUP").0, 250);
    assert!(raw.cmd("PWD").1.starts_with(&format!("\"/{c}\"")));
}

/// `257 "/path" directory created`: the path in quotes (RFC 959), normalised, quotes inside doubled; python's
/// ftplib reads it back (it returned '' for the unquoted `257 /path`).
#[test]
fn mkd_names_the_directory_made_in_quotes() {
    let fx = Fixture::new("mkd257");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    let c = &fx.container;
    assert_eq!(
        raw.cmd(&format!("MKD /{c}/made")),
        (257, format!("\"/{c}/made\" directory created"))
    );
    assert_eq!(raw.cmd(&format!("CWD /{c}/made")).0, 250);
    assert_eq!(
        raw.cmd("MKD ../q\"d"),
        (257, format!("\"/{c}/q\"\"d\" directory created"))
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &format!(
            "import ftplib; f = ftplib.FTP(); f.connect('127.0.0.1', {}); f.login('test:tester', 'testing'); \
             print(f.mkd('/{c}/by ftplib'))",
            gw.addr.port()
        )])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("/{c}/by ftplib"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `OPTS MLST` with a fact list (RFC 3659 7.9) is answered with the facts this server has; node's basic-ftp sends
/// this after every login and closed the connection on the `501` it used to get.
#[test]
fn opts_mlst_selects_the_facts_there_are() {
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    assert_eq!(
        raw.cmd(
            "OPTS MLST type;size;modify;unique;unix.mode;unix.owner;unix.group;unix.ownername;unix.groupname;"
        ),
        (200, "MLST OPTS type;size;modify;UNIX.mode;".to_owned())
    );
    assert_eq!(
        raw.cmd("OPTS MLST Size;"),
        (200, "MLST OPTS size;".to_owned())
    );
    assert_eq!(raw.cmd("OPTS MLST"), (200, "MLST OPTS".to_owned()));
    // The session goes on.
    assert_eq!(raw.cmd("PWD").0, 257);
}

/// `MD5` names the file in quotes, as ftp-cloudfs did: a name with spaces stays unambiguous.
#[test]
fn md5_quotes_the_name_it_answers_for() {
    let fx = Fixture::new("md5q");
    fx.put("a b.txt", "hello");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    let path = fx.path("a b.txt");
    assert_eq!(
        raw.cmd(&format!("MD5 {path}")),
        (251, format!("\"{path}\" 5D41402ABC4B2A76B9719D911017C592"))
    );
}

/// HELP lists the commands there are and SITE HELP the SITE commands (so they can be found from a client);
/// neither HELP nor STAT names another product or its docs.
#[test]
fn help_and_site_help_list_what_there_is() {
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    let (code, help) = raw.cmd("HELP");
    assert_eq!(code, 214, "{help}");
    for command in ["RETR", "STOR", "MLSD", "MFMT", "SITE"] {
        assert!(help.contains(command), "HELP without {command}: {help}");
    }
    let (code, site) = raw.cmd("SITE HELP");
    assert_eq!(code, 214, "{site}");
    for command in ["ACL", "PUBLIC", "UNLISTED", "PRIVATE", "QUOTA", "MD5"] {
        assert!(
            site.contains(command),
            "SITE HELP without {command}: {site}"
        );
    }
    let (code, stat) = raw.cmd("STAT");
    assert_eq!(code, 211, "{stat}");
    for text in [help, site, stat] {
        assert!(!text.to_lowercase().contains("unftp"), "{text}");
    }
}

/// SIZE is a file's size (RFC 3659 4.1): a directory or a container gets 550.
#[test]
fn size_of_a_directory_is_550() {
    let fx = Fixture::new("sizedir");
    fx.put("d/f.txt", "12345");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    assert_eq!(
        raw.cmd(&format!("SIZE {}", fx.path("d/f.txt"))),
        (213, "5".to_owned())
    );
    assert_eq!(raw.cmd(&format!("SIZE {}", fx.path("d"))).0, 550);
    assert_eq!(raw.cmd(&format!("SIZE /{}", fx.container)).0, 550);
    assert_eq!(raw.cmd("SIZE /").0, 550);
}

/// MLST and STAT resolve a relative path from the current directory; STAT of a path is a 213 reply with the
/// listing between its first and last line (RFC 959).
#[test]
fn mlst_and_stat_take_relative_paths_and_stat_lists_in_a_213() {
    let fx = Fixture::new("statrel");
    fx.put("f.txt", "12345");
    fx.put("sub/g.txt", "1");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    assert_eq!(raw.cmd(&format!("CWD {}", fx.path(""))).0, 250);
    let (code, text) = raw.cmd("MLST f.txt");
    assert_eq!(code, 250, "{text}");
    assert!(text.contains("type=file;size=5;"), "{text}");
    assert!(text.contains(&fx.path("f.txt")), "{text}");
    let (code, text) = raw.cmd("STAT sub");
    assert_eq!(code, 213, "{text}");
    assert!(text.lines().any(|l| l.ends_with(" g.txt")), "{text}");
    let (code, text) = raw.cmd(&format!("STAT /{}", fx.container));
    assert_eq!(code, 213, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("Status of"), "{text}");
    assert!(lines.iter().any(|l| l.ends_with(" f.txt")), "{text}");
    assert!(lines.iter().any(|l| l.ends_with(" sub")), "{text}");
}

/// MLSD and MLST carry `perm` and `UNIX.mode` (FileZilla's Permissions column, node's basic-ftp asks for them),
/// and FEAT says so.
#[test]
fn mlsd_and_mlst_carry_perm_and_unix_mode() {
    let fx = Fixture::new("perm");
    fx.put("f.txt", "12345");
    fx.put("sub/g.txt", "1");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    let (_, feat) = raw.cmd("FEAT");
    assert!(
        feat.contains(" MLST type*;size*;modify*;perm*;UNIX.mode*;"),
        "{feat}"
    );
    assert_eq!(raw.cmd(&format!("CWD {}", fx.path(""))).0, 250);
    let (replies, listing) = raw.transfer("MLSD");
    assert_eq!(replies.last().unwrap().0, 226);
    let listing = String::from_utf8(listing).unwrap();
    let line = |name: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("no {name} in {listing}"))
            .to_owned()
    };
    assert!(
        line("f.txt").contains(";perm=adfrw;UNIX.mode=0644;"),
        "{listing}"
    );
    assert!(
        line("sub").contains(";perm=cdeflmp;UNIX.mode=0755;"),
        "{listing}"
    );
    let (code, text) = raw.cmd("MLST f.txt");
    assert_eq!(code, 250, "{text}");
    assert!(text.contains("perm=adfrw;UNIX.mode=0644;"), "{text}");
}

/// A RETR that cannot start is one reply, `550`, with no `150` before it (RFC 959: 1yz only when the transfer
/// begins): of a missing file, of a directory, of a container. The data connection it had is closed, and the
/// session goes on: the next RETR, on a new connection, sends the file. A RETR that does start still says 150.
#[test]
fn retr_that_cannot_start_is_a_bare_550() {
    let fx = Fixture::new("retr550");
    fx.put("d/f.txt", "12345");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    for path in [
        fx.path("missing.txt"),
        fx.path("d"),
        format!("/{}", fx.container),
    ] {
        let mut data = raw.data();
        raw.send(&format!("RETR {path}"));
        let (code, text) = raw.reply();
        assert_eq!(code, 550, "RETR {path}: {text}");
        assert!(
            raw.silent_for(std::time::Duration::from_millis(300)),
            "RETR {path}: a second reply"
        );
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut data, &mut rest);
        assert!(rest.is_empty(), "RETR {path}: data sent");
    }
    let (replies, bytes) = raw.transfer(&format!("RETR {}", fx.path("d/f.txt")));
    assert_eq!(replies.iter().map(|r| r.0).collect::<Vec<_>>(), [150, 226]);
    assert_eq!(bytes, b"12345");
}

/// A logged-in session (`TYPE I`) whose `RETR` of `path` is under way: its `150` read and the first MiB of its
/// data, the rest held back by the data connection's small window. Returns the bytes read too.
fn download_under_way(gw: &TestGateway, path: &str) -> (RawFtp, std::net::TcpStream, usize) {
    let mut raw = gw.raw_logged_in();
    assert_eq!(raw.cmd("TYPE I").0, 200);
    let mut data = raw.data_small_window();
    raw.send(&format!("RETR {path}"));
    assert_eq!(raw.reply().0, 150);
    let mut got = vec![0u8; 1024 * 1024];
    std::io::Read::read_exact(&mut data, &mut got).unwrap();
    (raw, data, got.len())
}

/// While a download runs, STAT is answered at once and says so, a pipelined command waits for the transfer's
/// end, and ABOR stops the transfer: 426 for it, then 226 (RFC 959 4.1.3), before the command that waited.
/// The session goes on. 0.24 answered both only after the transfer had ended by itself.
#[test]
fn abor_and_stat_are_answered_while_a_download_runs() {
    let fx = Fixture::new("abor-retr");
    let size = 32 * 1024 * 1024;
    fx.put("big.bin", crate::common::random(size));
    fx.put("small.txt", "small");
    let gw = TestGateway::start();
    let (mut raw, mut data, read) = download_under_way(&gw, &fx.path("big.bin"));
    raw.send("STAT");
    raw.send("PWD");
    let (code, text) = raw.reply();
    assert_eq!(code, 211, "{text}");
    assert!(text.contains("transfer: RETR"), "{text}");
    assert!(
        raw.silent_for(std::time::Duration::from_millis(300)),
        "PWD answered during the transfer"
    );
    raw.send("ABOR");
    assert_eq!(raw.reply().0, 426);
    assert_eq!(raw.reply().0, 226);
    assert_eq!(raw.reply().0, 257);
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut data, &mut rest);
    assert!(read + rest.len() < size, "the whole file was sent");
    let (replies, bytes) = raw.transfer(&format!("RETR {}", fx.path("small.txt")));
    assert_eq!(replies.iter().map(|r| r.0).collect::<Vec<_>>(), [150, 226]);
    assert_eq!(bytes, b"small");
}

/// ABOR as RFC 959 has clients send it, and lftp does: after Telnet IP and Synch (`IAC IP IAC DM`, the DM as
/// urgent data). The Telnet bytes are no part of the command: the download is aborted, the session goes on.
/// (They made the line "invalid UTF-8" and closed the session: lftp waited out its timeout for an answer.)
#[test]
fn abor_after_telnet_interrupt_and_synch_aborts_and_the_session_goes_on() {
    let fx = Fixture::new("abor-telnet");
    let size = 16 * 1024 * 1024;
    fx.put("big.bin", crate::common::random(size));
    let gw = TestGateway::start();
    let (mut raw, data, _) = download_under_way(&gw, &fx.path("big.bin"));
    raw.send_bytes(b"\xff\xf4\xff");
    raw.send_urgent(b"\xf2");
    raw.send_bytes(b"ABOR\r\n");
    assert_eq!(raw.reply().0, 426);
    assert_eq!(raw.reply().0, 226);
    drop(data);
    // The same with the DM in band, with no transfer running.
    raw.send_bytes(b"\xff\xf4\xff\xf2ABOR\r\n");
    assert_eq!(raw.reply().0, 226);
    assert_eq!(raw.cmd("NOOP").0, 200);

    // lftp stops a download it cannot write (the local file exists) with that ABOR, then goes on.
    let dir = crate::common::TempDir::new("abor-telnet");
    let existing = dir.join("big.bin");
    std::fs::write(&existing, b"mine").unwrap();
    let out = gw.lftp(&format!(
        "set net:timeout 10; set cmd:fail-exit no; get {} -o {}; set cmd:fail-exit yes; cls -1 {}",
        fx.path("big.bin"),
        existing.display(),
        fx.path("")
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("big.bin"), "{stdout}\n{stderr}");
    assert!(!stderr.contains("Timeout"), "{stderr}");
    assert_eq!(std::fs::read(&existing).unwrap(), b"mine");
}

/// ABOR during an upload: 426 for the upload, 226 for ABOR, and nothing is stored under the name.
#[test]
fn abor_stops_an_upload_and_stores_nothing() {
    let fx = Fixture::new("abor-stor");
    let gw = TestGateway::start();
    let mut raw = gw.raw_logged_in();
    assert_eq!(raw.cmd("TYPE I").0, 200);
    let mut data = raw.data();
    raw.send(&format!("STOR {}", fx.path("cut.bin")));
    assert_eq!(raw.reply().0, 150);
    std::io::Write::write_all(&mut data, &crate::common::random(200 * 1024)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    raw.send("ABOR");
    assert_eq!(raw.reply().0, 426);
    assert_eq!(raw.reply().0, 226);
    drop(data);
    assert!(fx.head("cut.bin").is_none(), "an aborted upload was stored");
    assert_eq!(raw.cmd("NOOP").0, 200);
    assert_eq!(
        raw.upload(&format!("STOR {}", fx.path("whole.txt")), b"whole"),
        226
    );
    assert_eq!(fx.get("whole.txt"), b"whole");
}
