//! FTPS against the real Swift with real clients: curl (`--ssl-reqd`), lftp and python's `ftplib.FTP_TLS`
//! transfer over explicit TLS (1.2 and 1.3); with `--tls-required` a plaintext login and every unprotected data
//! connection (`PROT C`, or no `PROT P`, on PASV and EPSV) get 534; 200 logins with each client report their
//! failure rate (the AUTH TLS race of libunftp 0.24, fixed in the vendored copy, failed a few % of ftplib's).

use crate::common::swift::Fixture;
use crate::common::{KEY, TestGateway, USER, ok, random};
use std::path::PathBuf;
use std::process::{Command, Output};

/// A self-signed certificate for 127.0.0.1 in a temporary directory, removed on drop.
struct Cert {
    dir: PathBuf,
}

impl Cert {
    fn new() -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "swiftftp-tls-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1"])
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .output()
            .expect("openssl (installed by tests/swift-lab.sh)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    fn cert(&self) -> String {
        self.dir.join("cert.pem").to_str().unwrap().to_owned()
    }

    fn key(&self) -> String {
        self.dir.join("key.pem").to_str().unwrap().to_owned()
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Cert {
    /// Runs `curl -fsS --cacert <this certificate>` with `args`; the test fails unless curl succeeds.
    fn curl(&self, what: &str, args: &[&str]) {
        let cafile = self.cert();
        let out = Command::new("curl")
            .args(["-fsS", "--cacert", cafile.as_str()])
            .args(args)
            .output()
            .unwrap();
        ok(out, what);
    }
}

fn tls_gateway(cert: &Cert, required: bool) -> TestGateway {
    let (c, k) = (cert.cert(), cert.key());
    let mut args = vec!["--tls-cert", c.as_str(), "--tls-key", k.as_str()];
    if required {
        args.push("--tls-required");
    }
    TestGateway::start_with(&args)
}

/// Runs a python `ftplib` script (Debian's interpreter) after a prelude defining `session(timeout)`: an FTPS
/// session to the gateway on `port`, logged in, trusting the certificate in `cafile`.
fn python(cafile: &str, script: &str, port: u16) -> Output {
    let prelude = format!(
        r#"
import ftplib, socket, ssl, sys
port, user, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile={cafile:?})
def session(timeout=30):
    ftp = ftplib.FTP_TLS(context=ctx, timeout=timeout)
    ftp.connect("127.0.0.1", port)
    ftp.auth()
    ftp.login(user, key)
    return ftp
"#
    );
    Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .args([&port.to_string(), USER, KEY])
        .output()
        .unwrap()
}

#[test]
fn curl_and_lftp_transfer_over_ftps_with_tls_required() {
    let cert = Cert::new();
    let gw = tls_gateway(&cert, true);
    let fx = Fixture::new("ftps");
    let dir = std::env::temp_dir().join(format!("swiftftp-ftps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = random(3 * 1024 * 1024 + 11);
    let src = dir.join("src.bin");
    std::fs::write(&src, &body).unwrap();
    for tls in ["--tlsv1.2 --tls-max 1.2", "--tlsv1.3"] {
        let name = format!("curl{}.bin", tls.len());
        let url = gw.curl_url(&fx.path(&name));
        let back = dir.join("back.bin");
        let tls: Vec<&str> = tls.split(' ').collect();
        let src = src.to_str().unwrap();
        cert.curl(
            "curl upload",
            &[&["--ssl-reqd", "-T", src, &url], &tls[..]].concat(),
        );
        assert_eq!(fx.get(&name), body, "{tls:?}");
        let back_path = back.to_str().unwrap();
        cert.curl(
            "curl download",
            &[&["--ssl-reqd", "-o", back_path, &url], &tls[..]].concat(),
        );
        assert_eq!(std::fs::read(&back).unwrap(), body, "{tls:?}");
    }
    let back = dir.join("lftp.bin");
    let script = format!(
        "set ssl:ca-file {}; set ftp:ssl-force yes; set ftp:ssl-protect-data yes; set cmd:fail-exit yes; \
         set net:max-retries 1; put {} -o {}; get {} -o {}; quit",
        cert.cert(),
        src.display(),
        fx.path("lftp.bin"),
        fx.path("lftp.bin"),
        back.display()
    );
    let out = Command::new("lftp")
        .args(["-e", &script, "-u", &format!("{USER},{KEY}")])
        .args(["-p", &gw.addr.port().to_string(), "127.0.0.1"])
        .output()
        .unwrap();
    ok(out, "lftp over FTPS");
    assert_eq!(fx.get("lftp.bin"), body);
    assert_eq!(std::fs::read(&back).unwrap(), body);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn with_tls_required_plaintext_logins_and_unprotected_data_get_534() {
    let cert = Cert::new();
    let gw = tls_gateway(&cert, true);
    let fx = Fixture::new("ftpsreq");
    fx.put("f.txt", "protected");
    // Plaintext: the login itself is refused.
    let mut raw = gw.raw();
    assert_eq!(raw.cmd(&format!("USER {USER}")).0, 534);
    // Over TLS: PROT C is refused, and so is a data connection (PASV or EPSV) or a transfer without PROT P.
    let script = format!(
        r#"
ftp = session()
def code(cmd):
    try:
        return ftp.sendcmd(cmd)[:3]
    except ftplib.all_errors as e:
        return str(e)[:3]
print("prot-c", code("PROT C"))
print("pasv", code("PASV"))
print("epsv", code("EPSV"))
print("retr", code("RETR {path}"))
print("port", code("PORT 127,0,0,1,200,10"))
print("list", code("LIST"))
print("stor", code("STOR {dir}new.txt"))
ftp.prot_p()
lines = []
ftp.retrlines("RETR {path}", lines.append)
print("prot-p-retr", lines)
ftp.voidcmd("TYPE I")
print("prot-p-epsv", code("EPSV"))
ftp.quit()
"#,
        path = fx.path("f.txt"),
        dir = fx.path(""),
    );
    let out = ok(
        python(&cert.cert(), &script, gw.addr.port()),
        "ftplib over FTPS",
    );
    for want in [
        "prot-c 534",
        "pasv 534",
        "epsv 534",
        "retr 534",
        "port 534",
        "list 534",
        "stor 534",
        "prot-p-retr ['protected']",
        "prot-p-epsv 229",
    ] {
        assert!(out.lines().any(|l| l == want), "{want:?} not in:\n{out}");
    }
}

#[test]
fn two_hundred_ftps_logins_with_each_client_all_succeed() {
    let cert = Cert::new();
    let gw = tls_gateway(&cert, true);
    let port = gw.addr.port();
    const N: usize = 200;
    // python ftplib: N logins (the client that saw the AUTH TLS race in 3-5% of logins against libunftp 0.24).
    let script = format!(
        r#"
failed = 0
for _ in range({N}):
    try:
        ftp = session(10)
        ftp.prot_p()
        ftp.nlst("/")
        ftp.quit()
    except Exception as e:
        failed += 1
        print("failure:", repr(e), file=sys.stderr)
print(failed)
"#
    );
    // The three clients at once (each one login at a time): the run takes as long as the slowest.
    let cafile = cert.cert();
    let ftplib = std::thread::spawn(move || python(&cafile, &script, port));
    let url = gw.curl_url("/");
    let ca = cert.cert();
    let curl = std::thread::spawn(move || {
        (0..N)
            .filter(|_| {
                !Command::new("curl")
                    .args(["-fsS", "--ssl-reqd", "--cacert", &ca, "-l", &url])
                    .output()
                    .unwrap()
                    .status
                    .success()
            })
            .count()
    });
    let lftp_script = format!(
        "set ssl:ca-file {}; set ftp:ssl-force yes; set net:max-retries 1; set cmd:fail-exit yes; cls /; quit",
        cert.cert()
    );
    let lftp_failed = (0..N)
        .filter(|_| {
            !Command::new("lftp")
                .args(["-e", &lftp_script, "-u", &format!("{USER},{KEY}")])
                .args(["-p", &port.to_string(), "127.0.0.1"])
                .output()
                .unwrap()
                .status
                .success()
        })
        .count();
    let ftplib_failed: usize = ok(ftplib.join().unwrap(), "ftplib logins")
        .trim()
        .parse()
        .unwrap();
    let curl_failed = curl.join().unwrap();
    println!(
        "FTPS logins that failed, of {N} each: ftplib {ftplib_failed}, curl {curl_failed}, lftp {lftp_failed}"
    );
    assert_eq!((ftplib_failed, curl_failed, lftp_failed), (0, 0, 0));
}

#[test]
fn a_client_that_never_finishes_the_data_tls_handshake_gets_a_reply_and_no_panic() {
    let cert = Cert::new();
    let gw = tls_gateway(&cert, false);
    let fx = Fixture::new("ftpshand");
    fx.put("f.bin", random(1000));
    let script = format!(
        r#"
ftp = session(60)
ftp.prot_p()
ftp.voidcmd("TYPE I")
host, dport = ftp.makepasv()
# Connect the data socket in plaintext, send garbage instead of a ClientHello, and close it.
s = socket.create_connection((host, dport))
print(ftp.sendcmd("RETR {path}")[:3])
s.sendall(b"this is not TLS\r\n" * 10)
s.close()
try:
    print(ftp.getresp()[:3])
except ftplib.all_errors as e:
    print(str(e)[:3])
print(ftp.sendcmd("NOOP")[:3])
ftp.prot_p()
print(ftp.retrbinary("RETR {path}", lambda b: None)[:3])
"#,
        path = fx.path("f.bin"),
    );
    let out = ok(
        python(&cert.cert(), &script, gw.addr.port()),
        "ftplib bad data handshake",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "150", "{out}");
    assert!(lines[1].starts_with('4'), "{out}");
    assert_eq!(lines[2], "200", "{out}");
    assert_eq!(lines[3], "226", "{out}");
}

/// The certificate a new FTPS connection to `port` is served (DER, hex), or the PEM file's own with `pem`.
fn certificate_of(port: u16, pem: Option<&str>) -> String {
    let script = r#"
import ftplib, ssl, sys
if len(sys.argv) > 2:
    der = ssl.PEM_cert_to_DER_cert(open(sys.argv[2]).read())
else:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ftp = ftplib.FTP_TLS(context=ctx, timeout=10)
    ftp.connect("127.0.0.1", int(sys.argv[1]))
    ftp.auth()
    der = ftp.sock.getpeercert(binary_form=True)
    ftp.close()
print(der.hex())
"#;
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg("-c").arg(script).arg(port.to_string());
    if let Some(pem) = pem {
        cmd.arg(pem);
    }
    ok(cmd.output().unwrap(), "reading a certificate")
        .trim()
        .to_owned()
}

#[test]
fn sighup_reloads_the_certificate_and_a_broken_one_keeps_the_one_in_use() {
    use crate::common::process::{Foreground, free_port, wait_for};
    use nix::sys::signal::{Signal, kill};
    let files = Cert::new();
    let first = certificate_of(0, Some(&files.cert()));
    let port = free_port();
    let mut gw = Foreground::start(
        port,
        &crate::common::auth_url(),
        &["--tls-cert", &files.cert(), "--tls-key", &files.key()],
    );
    assert_eq!(certificate_of(port, None), first);

    // A renewed certificate replaces the files (key first, as certbot's copies would), then SIGHUP.
    let renewed = Cert::new();
    let second = certificate_of(0, Some(&renewed.cert()));
    assert_ne!(first, second);
    std::fs::copy(renewed.key(), files.key()).unwrap();
    std::fs::copy(renewed.cert(), files.cert()).unwrap();
    kill(gw.pid(), Signal::SIGHUP).unwrap();
    wait_for(
        "the renewed certificate",
        std::time::Duration::from_secs(10),
        || certificate_of(port, None) == second,
    );

    // A half-written file: the reload fails and the certificate in use stays.
    std::fs::write(files.cert(), b"-----BEGIN CERTIFICATE-----\ntruncated").unwrap();
    kill(gw.pid(), Signal::SIGHUP).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(certificate_of(port, None), second);
    assert!(gw.0.try_wait().unwrap().is_none(), "the gateway exited");
}

/// Implicit FTPS (`--tls-implicit-port`): curl (`ftps://`) and lftp upload and download over it (bytes compared);
/// on a raw TLS connection the greeting comes after the handshake, `AUTH TLS` is refused, `PROT C` gets 534, and
/// a data connection is protected without any `PROT P`. The explicit port goes on as before; a client that
/// speaks plain FTP to the implicit port gets no greeting.
#[test]
fn implicit_ftps_serves_curl_lftp_and_protects_data_by_default() {
    let cert = Cert::new();
    let (c, k) = (cert.cert(), cert.key());
    let gw = TestGateway::start_with(&[
        "--tls-cert",
        c.as_str(),
        "--tls-key",
        k.as_str(),
        "--tls-implicit-port",
        "0",
    ]);
    let implicit = gw.implicit_tls.expect("an implicit FTPS address");
    assert_ne!(implicit.port(), gw.addr.port());
    let fx = Fixture::new("ftpsi");
    let dir = std::env::temp_dir().join(format!("swiftftp-ftpsi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = random(2 * 1024 * 1024 + 5);
    let src = dir.join("src.bin");
    std::fs::write(&src, &body).unwrap();
    let url = |path: &str| {
        gw.curl_url(path).replace("ftp://", "ftps://").replace(
            &format!(":{}/", gw.addr.port()),
            &format!(":{}/", implicit.port()),
        )
    };

    let implicit_url = url(&fx.path("curl.bin"));
    cert.curl(
        "curl upload over implicit FTPS",
        &["-T", src.to_str().unwrap(), &implicit_url],
    );
    assert_eq!(fx.get("curl.bin"), body);
    let back = dir.join("curl-back.bin");
    cert.curl(
        "curl download over implicit FTPS",
        &["-o", back.to_str().unwrap(), &implicit_url],
    );
    assert_eq!(std::fs::read(&back).unwrap(), body);

    let back = dir.join("lftp-back.bin");
    let script = format!(
        "set ssl:ca-file {}; set cmd:fail-exit yes; set net:max-retries 1; put {} -o {}; get {} -o {}; quit",
        cert.cert(),
        src.display(),
        fx.path("lftp.bin"),
        fx.path("lftp.bin"),
        back.display()
    );
    let out = Command::new("lftp")
        .args(["-e", &script, "-u", &format!("{USER},{KEY}")])
        .arg(format!("ftps://127.0.0.1:{}", implicit.port()))
        .output()
        .unwrap();
    ok(out, "lftp over implicit FTPS");
    assert_eq!(fx.get("lftp.bin"), body);
    assert_eq!(std::fs::read(&back).unwrap(), body);

    // Raw: the replies a client sees on the TLS connection.
    let script = format!(
        r#"
ctx = ssl.create_default_context(cafile={cafile:?})
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30), server_hostname="127.0.0.1")
f = s.makefile("rb")
def reply():
    line = f.readline().decode()
    code = line[:3]
    while line[3:4] == "-":
        line = f.readline().decode()
        if line[:3] == code and line[3:4] == " ":
            break
    return int(code)
def cmd(c):
    s.sendall((c + "\r\n").encode())
    return reply()
print("greeting", reply())
print("auth", cmd("AUTH TLS"))
print("user", cmd("USER " + user))
print("pass", cmd("PASS " + key))
print("protc", cmd("PROT C"))
s.sendall(b"EPSV\r\n")
line = f.readline().decode()
dport = int(line.split("|||")[1].split("|")[0])
plain = socket.create_connection(("127.0.0.1", dport), timeout=30)
print("retr", cmd("RETR {path}"))
d = ctx.wrap_socket(plain, server_hostname="127.0.0.1")
data = b""
while True:
    chunk = d.recv(65536)
    if not chunk:
        break
    data += chunk
print("end", reply(), len(data))
"#,
        cafile = cert.cert(),
        path = fx.path("lftp.bin"),
    );
    let out = python(&cert.cert(), &script, implicit.port());
    let text = ok(out, "raw implicit FTPS session");
    for want in [
        "greeting 220",
        "auth 503",
        "user 331",
        "pass 230",
        "protc 534",
        "retr 150",
        &format!("end 226 {}", body.len()),
    ] {
        assert!(text.lines().any(|l| l == want), "no {want:?} in:\n{text}");
    }

    // Plain FTP to the implicit port: no greeting (the server waits for a ClientHello, then gives up).
    let mut plain = std::net::TcpStream::connect(implicit).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    std::io::Write::write_all(&mut plain, b"USER x\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = std::io::Read::read(&mut plain, &mut buf).unwrap_or(0);
    assert!(!buf[..n].starts_with(b"220"), "a plaintext greeting");
    // The explicit port is still plain FTP with AUTH TLS.
    let mut raw = gw.raw();
    assert_eq!(raw.cmd("AUTH TLS").0, 234);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Uploads over TLS 1.3 data connections: curl writes the whole file, reads nothing, and closes. Session tickets
/// the server sent on the data connection were then unread, so the client's kernel reset the connection and the
/// server lost the file's tail (`426`, most 2 MiB uploads failed). Data connections send no tickets; the control
/// connection's still let clients resume their session on data connections.
#[test]
fn curl_uploads_over_tls13_data_connections_all_arrive() {
    let cert = Cert::new();
    let gw = tls_gateway(&cert, true);
    let fx = Fixture::new("ftps13");
    let dir = std::env::temp_dir().join(format!("swiftftp-ftps13-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = random(2 * 1024 * 1024 + 5);
    let src = dir.join("src.bin");
    std::fs::write(&src, &body).unwrap();
    for i in 0..8 {
        let name = format!("u{i}.bin");
        let url = gw.curl_url(&fx.path(&name));
        cert.curl(
            &format!("curl upload {i}"),
            &["--ssl-reqd", "--tlsv1.3", "-T", src.to_str().unwrap(), &url],
        );
        assert_eq!(fx.get(&name), body, "upload {i}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Data connections start TLS as soon as they are accepted, before their command: a client that finishes its
/// handshake first and sends STOR after (node's basic-ftp starts it at connect time) is served, where 0.24 waited
/// for the command before its handshake and the two waited for each other. An upload that ends before its
/// first byte is an empty file even when the client skips `close_notify` (basic-ftp does, now and then); with a
/// byte sent, a close without `close_notify` may be a truncation, and nothing is stored.
#[test]
fn data_tls_starts_at_connect_and_an_empty_upload_needs_no_close_notify() {
    let cert = Cert::new();
    let gw = tls_gateway(&cert, true);
    let fx = Fixture::new("ftpsearly");
    let script = format!(
        r#"
ftp = session()
ftp.prot_p()
def stor(name, payload, close_notify):
    ftp.sendcmd("TYPE I")
    port = int(ftp.sendcmd("EPSV").split("|||")[1].split("|")[0])
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    data = ctx.wrap_socket(raw, server_hostname="127.0.0.1")  # the whole handshake, before STOR
    ftp.putcmd("STOR " + name)
    first = ftp.getresp()
    data.sendall(payload)
    if close_notify:
        data.unwrap().close()
    else:
        data.shutdown(socket.SHUT_RDWR)  # an SSLSocket's shutdown is the socket's: no close_notify
        data.close()
    try:
        last = ftp.getresp()
    except ftplib.Error as e:
        last = str(e)
    print(name, first[:3], last[:3])
stor("{early}", b"early bird", True)
stor("{empty}", b"", False)
stor("{cut}", b"x" * 1000, False)
"#,
        early = fx.path("early.txt"),
        empty = fx.path("empty.txt"),
        cut = fx.path("cut.txt"),
    );
    let out = python(&cert.cert(), &script, gw.addr.port());
    let text = ok(out, "python FTPS uploads");
    for want in [
        format!("{} 150 226", fx.path("early.txt")),
        format!("{} 150 226", fx.path("empty.txt")),
    ] {
        assert!(text.lines().any(|l| l == want), "no {want:?} in:\n{text}");
    }
    let cut = text
        .lines()
        .find(|l| l.starts_with(&fx.path("cut.txt")))
        .unwrap_or_else(|| panic!("no line for cut.txt in:\n{text}"));
    assert!(cut.ends_with(" 426") || cut.ends_with(" 451"), "{cut}");
    assert_eq!(fx.get("early.txt"), b"early bird");
    assert_eq!(fx.get("empty.txt"), b"");
    assert!(fx.head("cut.txt").is_none(), "a cut upload was stored");
}
