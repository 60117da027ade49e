//! Unit tests of the configuration: defaults, file over default, command line over file, and every refusal.

#![allow(clippy::unwrap_used)]

use super::values::{default_pid_file, segment_size};
use super::*;
use clap::Parser;
use std::io::Write;

fn cli(args: &[&str]) -> Cli {
    let mut all = vec!["swiftftp"];
    all.extend_from_slice(args);
    Cli::try_parse_from(all).unwrap()
}

/// A throwaway config file, removed on drop (no tempfile crate for one test helper).
struct TempConf(PathBuf);

impl TempConf {
    fn arg(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn file(content: &str) -> TempConf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("swiftftp-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{n}.conf"));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(content.as_bytes())
        .unwrap();
    TempConf(path)
}

#[test]
fn defaults_match_ftpcloudfs() {
    let f = file("[ftpcloudfs]\n");
    let c = Config::from_cli(cli(&[
        "-f",
        "-a",
        "http://127.0.0.1:8080/auth/v1.0",
        "--config",
        &f.arg(),
    ]))
    .unwrap();
    assert_eq!(c.listen, "127.0.0.1:2021".parse().unwrap());
    assert_eq!(
        c.banner,
        format!("swiftftp {} ready.", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(c.keystone.tenant_separator, ".");
    assert_eq!(c.keystone.domain_separator, "@");
    assert_eq!(c.keystone.service_type, "object-store");
    assert_eq!(c.keystone.endpoint_type, EndpointType::Public);
    assert_eq!(c.keystone.version, KeystoneVersion::V2);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn file_values_apply_and_the_cli_overrides_them() {
    let f = file(
        "[ftpcloudfs]\nport = 3021\nbind-address = 0.0.0.0\nauth-url = http://h/auth/v1.0\n\
         insecure = no\nverbose = yes\npassive-ports = 9000:10000\nbanner = hello %v\n\
         masquerade-firewall = ftp.example.com\nmemcache = 127.0.0.1:11211, 10.0.0.1:11211\n",
    );
    let c = Config::from_cli(cli(&[
        "-f",
        "--config",
        &f.arg(),
        "-p",
        "4021",
        "--memcache",
        "m:1",
    ]))
    .unwrap();
    assert_eq!(c.listen, "0.0.0.0:4021".parse().unwrap());
    assert_eq!(c.auth_url.as_str(), "http://h/auth/v1.0");
    assert!(!c.insecure, "`insecure = no` must mean false");
    assert!(c.logging.verbose);
    assert_eq!(c.passive_ports, Some(9000..=10000));
    assert_eq!(c.banner, format!("hello {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(c.masquerade_firewall.as_deref(), Some("ftp.example.com"));
    assert_eq!(c.memcache, vec!["127.0.0.1:11211", "10.0.0.1:11211", "m:1"]);
}

#[test]
fn security_defaults_and_the_proxy_protocol_trust_rule() {
    let f = file("[swiftftp]\nauth-url = http://h/auth/v1.0\n");
    let c = Config::from_cli(cli(&["-f", "--config", &f.arg()])).unwrap();
    assert_eq!(c.limits.max_cons_per_ip, DEFAULT_MAX_CONS_PER_IP);
    assert_eq!(
        c.limits.login_timeout,
        Some(std::time::Duration::from_secs(30))
    );
    assert_eq!(
        c.limits.login_cache_ttl,
        std::time::Duration::from_secs(300)
    );
    let c = Config::from_cli(cli(&["-f", "--config", &f.arg(), "--login-timeout", "0"])).unwrap();
    assert_eq!(c.limits.login_timeout, None);
    // PROXY headers only from named balancers.
    let e = Config::from_cli(cli(&["-f", "--config", &f.arg(), "--proxy-protocol"])).unwrap_err();
    assert!(format!("{e:#}").contains("proxy-protocol-from"), "{e:#}");
    let c = Config::from_cli(cli(&[
        "-f",
        "--config",
        &f.arg(),
        "--proxy-protocol",
        "--proxy-protocol-from",
        "10.0.0.5,10.1.0.0/24",
        "--proxy-protocol-from",
        "::1",
    ]))
    .unwrap();
    let nets: Vec<String> = c
        .proxy_protocol_from
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(nets, ["10.0.0.5/32", "10.1.0.0/24", "::1/128"]);
    let e = Config::from_cli(cli(&[
        "-f",
        "--config",
        &f.arg(),
        "--proxy-protocol-from",
        "10.0.0.0/33",
    ]))
    .unwrap_err();
    assert!(format!("{e:#}").contains("--proxy-protocol-from"), "{e:#}");
    let f = file(
        "[swiftftp]\nauth-url = http://h\nproxy-protocol = yes\nproxy-protocol-from = 10.0.0.x\n",
    );
    let e = Config::from_cli(cli(&["-f", "--config", &f.arg()])).unwrap_err();
    assert!(
        format!("{e:#}").contains("key `proxy-protocol-from`"),
        "{e:#}"
    );
}

#[test]
fn the_cache_secret_comes_from_a_private_file_and_argv_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let conf = file("[swiftftp]\nauth-url = http://h/auth/v1.0\n");
    let secret = file("s3cret\nignored\n");
    std::fs::set_permissions(&secret.0, std::fs::Permissions::from_mode(0o644)).unwrap();
    let conf = conf.arg();
    let args = |extra: &[&str]| {
        let mut a = vec!["-f", "--config", conf.as_str()];
        a.extend_from_slice(extra);
        cli(&a)
    };
    let e = Config::from_cli(args(&["--cache-secret-file", &secret.arg()])).unwrap_err();
    assert!(format!("{e:#}").contains("chmod 600"), "{e:#}");
    std::fs::set_permissions(&secret.0, std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = Config::from_cli(args(&["--cache-secret-file", &secret.arg()])).unwrap();
    assert_eq!(c.cache_secret.as_deref(), Some("s3cret"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    if std::env::var_os("SWIFTFTP_CACHE_SECRET").is_none() {
        let c = Config::from_cli(args(&["--cache-secret", "x"])).unwrap();
        assert!(
            c.warnings.iter().any(|w| w.contains("process list")),
            "{:?}",
            c.warnings
        );
    }
}

#[test]
fn a_pid_file_never_lands_in_the_shared_temporary_directory() {
    let some = |s: &str| Some(std::ffi::OsString::from(s));
    assert_eq!(
        default_pid_file(some("/run/user/1000"), false),
        Some(PathBuf::from("/run/user/1000/swiftftp.pid"))
    );
    assert_eq!(
        default_pid_file(some("/run/swiftftp:/run/other"), false),
        Some(PathBuf::from("/run/swiftftp/swiftftp.pid"))
    );
    assert_eq!(
        default_pid_file(None, true),
        Some(PathBuf::from("/run/swiftftp.pid"))
    );
    assert_eq!(default_pid_file(None, false), None);
}

#[test]
fn swiftftp_section_is_accepted() {
    let f = file("[swiftftp]\nauth-url = http://h/auth/v1.0\n");
    let c = Config::from_cli(cli(&["-f", "--config", &f.arg()])).unwrap();
    assert_eq!(c.auth_url.as_str(), "http://h/auth/v1.0");
}

#[test]
fn bad_files_are_errors_that_name_the_problem() {
    let cases = [
        (
            "[swiftftp]\nauth-url = http://h\nprot = 21\n",
            "unknown key `prot`",
        ),
        ("[other]\nport = 1\n", "unknown section [other]"),
        ("port = 1\n", "outside a section"),
        (
            "[ftpcloudfs]\nauth-url = http://h\ninsecure = maybe\n",
            "key `insecure`",
        ),
        (
            "[ftpcloudfs]\nauth-url = http://h\npassive-ports = 10000:9000\n",
            "key `passive-ports`",
        ),
        (
            "[ftpcloudfs]\nauth-url = http://h\npassive-ports = 60000\n",
            "key `passive-ports`",
        ),
        (
            "[ftpcloudfs]\nauth-url = http://h\nport = http\n",
            "key `port`",
        ),
        (
            "[ftpcloudfs]\n[swiftftp]\nauth-url = http://h\n",
            "keep one",
        ),
        (
            "[ftpcloudfs]\nauth-url = http://h\nmemcache = nohost\n",
            "memcache",
        ),
        (
            "[ftpcloudfs]\nauth-url = http://h\nkeystone-endpoint-type = public\n",
            "key `keystone-endpoint-type` in",
        ),
        (
            "[ftpcloudfs]\nauth-url = http://h\nkeystone-endpoint-type = public\n",
            "\"public\" is not one of publicURL, internalURL, adminURL",
        ),
        (
            "[ftpcloudfs]\nauth-url = http://h\nkeystone-auth-version = 4\n",
            "\"4\" is not one of 2.0, 3",
        ),
        (
            "[swiftftp]\nauth-url = http://h\ndlo-check = some\n",
            "key `dlo-check` in",
        ),
        (
            "[swiftftp]\nauth-url = http://h\nlog-format = xml\n",
            "\"xml\" is not one of text, json",
        ),
        ("[ftpcloudfs]\n", "authentication URL is required"),
        ("[ftpcloudfs]\nauth-url = ftp://h\n", "http:// or https://"),
        (
            "[ftpcloudfs]\nauth-url = http://h\nbind-address = localhost\n",
            "not an IP address",
        ),
        (
            "[ftpcloudfs]\nauth-url = http://h\nkeystone-auth = yes\nkeystone-tenant-separator =\n",
            "must not be empty",
        ),
        ("[ftpcloudfs]\nauth-url = http://h\nuid = 'x y'\n", "--uid"),
    ];
    for (content, want) in cases {
        let f = file(content);
        let err = Config::from_cli(cli(&["-f", "--config", &f.arg()])).unwrap_err();
        let shown = format!("{err:#}");
        assert!(
            shown.contains(want),
            "{content:?}: {shown:?} lacks {want:?}"
        );
        // A missing auth URL names the file that was read (it had none).
        if want == "authentication URL is required" {
            assert!(
                shown.contains(&f.arg()),
                "{shown:?} does not name {}",
                f.arg()
            );
        }
    }
}

#[test]
fn the_example_file_documents_every_key_and_is_accepted() {
    let example = include_str!("../../examples/swiftftp.conf");
    for key in KNOWN_KEYS {
        assert!(
            example.contains(&format!("# {key} = ")) || example.contains(&format!("\n{key} = ")),
            "examples/swiftftp.conf does not document {key}"
        );
    }
    let f = file(example);
    let c = Config::from_cli(cli(&["--config", &f.arg()])).unwrap();
    assert_eq!(c.auth_url.as_str(), "http://127.0.0.1:8080/auth/v1.0");
}

/// An old ftp-cloudfs file keeps working: an unknown key there is a warning naming it, and the two booleans
/// ftp-cloudfs read as yes whatever they said are warned about when they say no.
#[test]
fn an_ftp_cloudfs_file_with_a_stray_key_starts_with_warnings() {
    let f = file(
        "[ftpcloudfs]\nauth-url = http://h\nprot = 21\ninsecure = no\nkeystone-auth = off\nverbose = no\n",
    );
    let c = Config::from_cli(cli(&["--config", &f.arg()])).unwrap();
    let all = c.warnings.join("\n");
    for want in [
        "`prot`",
        "`insecure` in",
        "= no: ftp-cloudfs took",
        "`keystone-auth` in",
    ] {
        assert!(all.contains(want), "{all:?} lacks {want:?}");
    }
    assert!(!all.contains("`verbose`"), "{all}");
    assert!(!c.insecure && !c.keystone.enabled);
}

#[test]
fn deprecated_and_pending_options_warn() {
    let f = file(
        "[ftpcloudfs]\nauth-url = http://h\nworkers = 4\nservice-net = yes\nrackspace-service-net = yes\n",
    );
    let c = Config::from_cli(cli(&["--config", &f.arg(), "--keystone-region-name", "r1"])).unwrap();
    let all = c.warnings.join("\n");
    for want in [
        "`workers`",
        "`service-net`",
        "rackspace-service-net",
        "--keystone-*",
    ] {
        assert!(all.contains(want), "{all:?} lacks {want:?}");
    }
}

#[test]
fn segment_sizes_take_units_and_ftp_cloudfs_megabytes() {
    assert_eq!(
        segment_size(Some("64M".into()), None).unwrap(),
        Some(64 << 20)
    );
    assert_eq!(
        segment_size(Some("1GiB".into()), Some(5)).unwrap(),
        Some(1 << 30)
    );
    assert_eq!(segment_size(None, Some(100)).unwrap(), Some(100_000_000));
    assert_eq!(segment_size(None, Some(0)).unwrap(), None);
    assert_eq!(segment_size(None, None).unwrap(), None);
    assert!(segment_size(Some("10K".into()), None).is_err());
    assert!(segment_size(Some("lots".into()), None).is_err());
}

#[test]
fn missing_explicit_file_is_an_error() {
    let err = Config::from_cli(cli(&[
        "-a",
        "http://h",
        "--config",
        "/nonexistent/swiftftp.conf",
    ]))
    .unwrap_err();
    assert!(format!("{err:#}").contains("/nonexistent/swiftftp.conf"));
}

#[test]
fn booleans_and_ranges_parse_strictly() {
    for (v, b) in [
        ("yes", true),
        ("No", false),
        ("1", true),
        ("off", false),
        ("TRUE", true),
    ] {
        assert_eq!(parse_bool(v).unwrap(), b, "{v}");
    }
    assert!(parse_bool("").is_err());
    assert_eq!(parse_port_range("9000:10000").unwrap(), 9000..=10000);
    assert_eq!(parse_port_range(" 60000 : 65535 ").unwrap(), 60000..=65535);
    assert!(parse_port_range("0:10").is_err());
    assert!(parse_port_range("a:b").is_err());
}

#[test]
fn word_options_take_their_words_on_the_command_line_and_refuse_others() {
    let c = Config::from_cli(cli(&[
        "-f",
        "-a",
        "http://h/auth/v1.0",
        "--log-format",
        "json",
        "--dlo-check",
        "none",
        "--keystone-auth-version",
        "3",
        "--keystone-endpoint-type",
        "internalURL",
    ]))
    .unwrap();
    assert_eq!(c.logging.format, LogFormat::Json);
    assert_eq!(c.dlo_check, DloCheck::None);
    assert_eq!(c.keystone.version, KeystoneVersion::V3);
    assert_eq!(c.keystone.endpoint_type, EndpointType::Internal);
    // The command line wins over the file, as for every option.
    let f = file("[swiftftp]\nauth-url = http://h\nlog-format = json\ndlo-check = all\n");
    let c = Config::from_cli(cli(&["-f", "--config", &f.arg(), "--log-format", "text"])).unwrap();
    assert_eq!(
        (c.logging.format, c.dlo_check),
        (LogFormat::Text, DloCheck::All)
    );
    for (flag, bad) in [
        ("--log-format", "xml"),
        ("--dlo-check", "some"),
        ("--keystone-auth-version", "2"),
        ("--keystone-endpoint-type", "public"),
    ] {
        let err = Cli::try_parse_from(["swiftftp", "-a", "http://h", flag, bad]).unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains(bad) && shown.contains(flag),
            "{flag} {bad}: {shown}"
        );
    }
}

/// On/off options go both ways on the command line: `--flag` and `--flag=yes` on, `--flag=no` off over the
/// file's `yes`; and the keys that were file-only have flags that win over the file.
#[test]
fn the_command_line_overrides_the_file_both_ways_and_for_every_key() {
    let conf = file(
        "[swiftftp]\nauth-url = http://127.0.0.1:1/auth/v1.0\nhide-segments = yes\ninsecure = yes\n\
         passive-ports = 60000:60010\nbanner = from the file\nhide-part-dir = yes\n",
    );
    let c = Config::from_cli(cli(&["--config", &conf.arg()])).unwrap();
    assert!(c.hide_segments && c.insecure && c.hide_part_dir);
    assert_eq!(c.passive_ports, Some(60000..=60010));
    assert_eq!(c.banner, "from the file");
    let c = Config::from_cli(cli(&[
        "--config",
        &conf.arg(),
        "--hide-segments=no",
        "--insecure=no",
        "--hide-part-dir=no",
        "--passive-ports",
        "50000:50001",
        "--banner",
        "from the flag",
        "--masquerade-firewall",
        "ftp.example.org",
    ]))
    .unwrap();
    assert!(!c.hide_segments && !c.insecure && !c.hide_part_dir);
    assert_eq!(c.passive_ports, Some(50000..=50001));
    assert_eq!(c.banner, "from the flag");
    assert_eq!(c.masquerade_firewall.as_deref(), Some("ftp.example.org"));
    // A bare flag is on, as in ftp-cloudfs; `=yes` too; other words are refused.
    let c = Config::from_cli(cli(&["--config", &conf.arg(), "--tls-required=no", "-v"])).unwrap();
    assert!(!c.tls_required && c.logging.verbose);
    let bare = Config::from_cli(cli(&[
        "-a",
        "http://127.0.0.1:1/auth/v1.0",
        "--insecure",
        "--keystone-auth=yes",
    ]))
    .unwrap();
    assert!(bare.insecure && bare.keystone.enabled);
    assert!(Cli::try_parse_from(["swiftftp", "--insecure=maybe"]).is_err());
    let err =
        Config::from_cli(cli(&["--config", &conf.arg(), "--passive-ports", "9:1"])).unwrap_err();
    assert!(format!("{err:#}").contains("--passive-ports"), "{err:#}");
}
