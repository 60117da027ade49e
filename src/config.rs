//! The validated [`Config`]: command line over configuration file over defaults, in one function
//! ([`Config::from_cli`]).
//!
//! The file is ftp-cloudfs's INI format and takes every key the old tool took, so an old
//! `/etc/ftpcloudfs.conf` works as it is, with its bugs fixed: booleans are booleans (`no` means false),
//! `passive-ports = 9000:10000` is compared as numbers, an unknown key in `[swiftftp]` is an error that names it
//! (a typo is never silently ignored) while one in an old `[ftpcloudfs]` section is a warning (that tool ignored
//! it), `insecure` and `keystone-auth` set to a no-value in `[ftpcloudfs]` are warned about (ftp-cloudfs read
//! them as yes), and the deprecated `workers` and `service-net` are accepted with a warning.
//!
//! Options whose feature is not built yet are parsed and validated all the same, and [`Config::warnings`] says at
//! start that they have no effect yet.

use crate::cli::Cli;
use anyhow::{Context, anyhow, bail};
use reqwest::Url;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

/// The default files, in the order they are looked for, with the section each must use.
const DEFAULT_FILES: [(&str, &str); 2] = [
    ("/etc/swiftftp.conf", "swiftftp"),
    ("/etc/ftpcloudfs.conf", "ftpcloudfs"),
];

/// The greeting when the file sets no `banner`; `%v` is swiftftp's version.
pub const DEFAULT_BANNER: &str = "swiftftp %v ready.";

/// Keys the configuration file takes (ftp-cloudfs's full set).
pub const KNOWN_KEYS: &[&str] = &[
    "banner",
    "port",
    "bind-address",
    "auth-url",
    "insecure",
    "memcache",
    "max-cons-per-ip",
    "permit-foreign-addresses",
    "split-large-files",
    "hide-part-dir",
    "mfmt",
    "verbose",
    "syslog",
    "log-file",
    "pid-file",
    "uid",
    "gid",
    "masquerade-firewall",
    "passive-ports",
    "keystone-auth",
    "keystone-auth-version",
    "keystone-region-name",
    "keystone-tenant-separator",
    "keystone-domain-separator",
    "keystone-service-type",
    "keystone-endpoint-type",
    "rackspace-service-net",
    "storage-policy",
    "ca-file",
    "swift-timeout",
    "log-format",
    "max-connections",
    "max-sessions-per-user",
    "rename-max-objects",
    "idle-timeout",
    "max-login-failures",
    "login-lockout",
    "cache-ttl",
    "dlo-check",
    "segment-size",
    "hide-segments",
    "tls-cert",
    "tls-key",
    "tls-required",
    "proxy-protocol",
    "proxy-protocol-from",
    "cache-secret",
    "cache-secret-file",
    "login-timeout",
    "login-cache-ttl",
    "shutdown-grace",
    "metrics-address",
    "workers",
    "service-net",
];

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable text, one line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// The PEM files of the FTPS certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// The smallest segment size taken: below it, a large upload would need absurdly many segments.
pub const MIN_SEGMENT_SIZE: u64 = 1024 * 1024;

/// `--segment-size` (binary units: `64M` is 64 MiB) or else ftp-cloudfs's `split-large-files` (MB of 10^6
/// bytes; 0 means "not set" there, as ftp-cloudfs's default).
fn segment_size(size: Option<String>, split_mb: Option<u64>) -> anyhow::Result<Option<u64>> {
    let bytes = match (size, split_mb) {
        (Some(s), _) => Some(
            parse_size::Config::new()
                .with_binary()
                .parse_size(s.trim())
                .map_err(|e| anyhow::anyhow!("segment-size {s:?}: {e}"))?,
        ),
        (None, Some(mb)) if mb > 0 => Some(mb.saturating_mul(1_000_000)),
        (None, _) => None,
    };
    match bytes {
        Some(b) if b < MIN_SEGMENT_SIZE => {
            bail!("segment-size of {b} bytes: at least 1M (1 MiB) please")
        }
        other => Ok(other),
    }
}

/// Which 0-byte listing entries are HEADed: a Dynamic Large Object manifest lists as 0 bytes, and only a HEAD
/// tells it from an empty file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DloCheck {
    /// Only those with segments where the known writers put them: `<container>_segments/<prefix><name>/`
    /// (python-swiftclient, rclone) or a `<name>.part/` folder beside them (ftp-cloudfs). One extra listing
    /// instead of one HEAD per empty file.
    Segments,
    /// Every one (manifests pointing anywhere are found; costs one HEAD per empty file on the first listing).
    All,
    /// None: DLO manifests show as 0 bytes.
    None,
}

/// Keystone API versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeystoneVersion {
    /// Identity v2.0 (`/tokens`), ftp-cloudfs's default.
    V2,
    /// Identity v3 (`/auth/tokens`).
    V3,
}

/// Which catalog endpoint of Swift to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointType {
    /// `publicURL` (v3 interface `public`).
    Public,
    /// `internalURL` (v3 interface `internal`).
    Internal,
    /// `adminURL` (v3 interface `admin`).
    Admin,
}

/// Keystone settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoneConfig {
    /// Whether `--keystone-auth` was asked for.
    pub enabled: bool,
    /// API version.
    pub version: KeystoneVersion,
    /// Region of the Swift endpoint.
    pub region: Option<String>,
    /// Separator between tenant and user.
    pub tenant_separator: String,
    /// Separator between a name and its domain (v3).
    pub domain_separator: String,
    /// Catalog service type of Swift.
    pub service_type: String,
    /// Catalog endpoint type.
    pub endpoint_type: EndpointType,
}

/// Everything the gateway runs with, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the FTP control connection listens.
    pub listen: SocketAddr,
    /// The auth endpoint.
    pub auth_url: Url,
    /// Keystone settings.
    pub keystone: KeystoneConfig,
    /// Skip TLS verification towards auth and Swift.
    pub insecure: bool,
    /// Extra CA certificates (PEM) to trust towards auth and Swift.
    pub ca_file: Option<PathBuf>,
    /// How long Swift may take to start answering, or stay silent within a download.
    pub swift_timeout: std::time::Duration,
    /// Memcache servers (`host:port`).
    pub memcache: Vec<String>,
    /// How long a listing is reused (zero: not cached).
    pub cache_ttl: std::time::Duration,
    /// Which 0-byte entries are HEADed for their real size.
    pub dlo_check: DloCheck,
    /// Secret for cache keys and the encryption of cached values (random per process when unset).
    pub cache_secret: Option<String>,
    /// Debug logging.
    pub verbose: bool,
    /// Run in the foreground.
    pub foreground: bool,
    /// Log file instead of stderr.
    pub log_file: Option<PathBuf>,
    /// Log to syslog.
    pub syslog: bool,
    /// Pid file (always one in daemon mode: see [`Config::pid_file_path`]).
    pub pid_file: Option<PathBuf>,
    /// Log line format.
    pub log_format: LogFormat,
    /// How long transfers may go on after a shutdown signal.
    pub shutdown_grace: std::time::Duration,
    /// Where the metrics and health listener listens, if anywhere.
    pub metrics_address: Option<SocketAddr>,
    /// User to run as.
    pub uid: Option<String>,
    /// Group to run as.
    pub gid: Option<String>,
    /// Storage policy of new containers, and the only one listed.
    pub storage_policy: Option<String>,
    /// The `220` greeting, substitutions applied.
    pub banner: String,
    /// Connections allowed per client IP (0: no limit).
    pub max_cons_per_ip: u32,
    /// Connections allowed at once in all (0: no limit).
    pub max_connections: u32,
    /// Sessions of one user at once (0: no limit).
    pub max_sessions_per_user: u32,
    /// Most objects one directory or container rename may move (0: no limit).
    pub rename_max_objects: u64,
    /// How long a control connection may stay silent, and a data connection move no byte.
    pub idle_timeout: std::time::Duration,
    /// How long a new connection has to log in (`None`: no limit).
    pub login_timeout: Option<std::time::Duration>,
    /// How long a password the auth service accepted lets later logins reuse its token (zero: never).
    pub login_cache_ttl: std::time::Duration,
    /// Failed logins of a user from an IP before the pair is locked out (0: never).
    pub max_login_failures: u32,
    /// How long a lockout lasts.
    pub login_lockout: std::time::Duration,
    /// Ports for passive data connections.
    pub passive_ports: Option<RangeInclusive<u16>>,
    /// Address (IP or name) announced in `PASV` replies.
    pub masquerade_firewall: Option<String>,
    /// Accept data connections from an address other than the control connection's.
    pub permit_foreign_addresses: bool,
    /// Segment size for large uploads in bytes (`--segment-size`, or ftp-cloudfs's `split-large-files` in
    /// MB); `None`: the cluster's `max_file_size`.
    pub segment_size: Option<u64>,
    /// Hide `FILE.part` segment directories (ftp-cloudfs's DLO layout) beside their file in listings.
    pub hide_part_dir: bool,
    /// Hide `<container>_segments` beside `<container>` in the root listing.
    pub hide_segments: bool,
    /// Offer `MFMT` (setting a file's modification time; `--no-mfmt` / `mfmt = no` turns it off).
    pub mfmt: bool,
    /// FTPS certificate chain and key (PEM), when FTPS is on.
    pub tls: Option<TlsFiles>,
    /// Login and data connections only over TLS.
    pub tls_required: bool,
    /// A PROXY protocol header starts every control connection.
    pub proxy_protocol: bool,
    /// Where PROXY headers are trusted from (the load balancers); never empty when `proxy_protocol` is on.
    pub proxy_protocol_from: Vec<ipnet::IpNet>,
    /// Use Rackspace ServiceNet storage URLs.
    pub rackspace_service_net: bool,
    /// The configuration file read, if any.
    pub config_file: Option<PathBuf>,
    /// What to tell the operator at start: deprecated keys, options that have no effect yet.
    pub warnings: Vec<String>,
}

/// The configuration file's settings, by key, as text.
#[derive(Debug, Default)]
struct FileSettings {
    path: Option<PathBuf>,
    values: BTreeMap<String, String>,
    /// The section read: `[swiftftp]` or ftp-cloudfs's `[ftpcloudfs]`.
    section: Option<String>,
    /// Unknown keys of an `[ftpcloudfs]` section, left out with a warning (ftp-cloudfs ignored them).
    ignored: Vec<String>,
}

impl FileSettings {
    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    fn context(&self, key: &str) -> String {
        match &self.path {
            Some(p) => format!("key `{key}` in {}", p.display()),
            None => format!("key `{key}`"),
        }
    }

    fn bool(&self, key: &str) -> anyhow::Result<Option<bool>> {
        self.get(key)
            .map(|v| parse_bool(v).with_context(|| self.context(key)))
            .transpose()
    }

    /// The command line's value, else the file's, else `default`.
    fn number<T: std::str::FromStr>(
        &self,
        cli: Option<T>,
        key: &str,
        default: T,
    ) -> anyhow::Result<T>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        match cli {
            Some(v) => Ok(v),
            None => Ok(self.parsed(key)?.unwrap_or(default)),
        }
    }

    fn parsed<T: std::str::FromStr>(&self, key: &str) -> anyhow::Result<Option<T>>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        self.get(key)
            .map(|v| {
                v.trim()
                    .parse::<T>()
                    .map_err(|e| anyhow!("{v:?}: {e}"))
                    .with_context(|| self.context(key))
            })
            .transpose()
    }

    fn string(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
}

/// Booleans as Python's ConfigParser reads them (ftp-cloudfs used `get`, so `no` was true there: not here).
pub fn parse_bool(value: &str) -> anyhow::Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" => Ok(false),
        other => bail!("{other:?} is not a boolean (use yes/no, true/false, on/off or 1/0)"),
    }
}

/// `min:max`, both ends included, compared as numbers.
pub fn parse_port_range(value: &str) -> anyhow::Result<RangeInclusive<u16>> {
    let (lo, hi) = value.trim().split_once(':').ok_or_else(|| {
        anyhow!("{value:?} is not a port range: expected MIN:MAX, e.g. 60000:65535")
    })?;
    let lo: u16 = lo
        .trim()
        .parse()
        .with_context(|| format!("{lo:?} is not a port"))?;
    let hi: u16 = hi
        .trim()
        .parse()
        .with_context(|| format!("{hi:?} is not a port"))?;
    if lo == 0 || lo > hi {
        bail!("{value:?}: the range must be MIN:MAX with 1 <= MIN <= MAX");
    }
    Ok(lo..=hi)
}

/// `host:port` (a bracketed IPv6 address is fine).
fn check_host_port(value: &str) -> anyhow::Result<()> {
    let (host, port) = value
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("{value:?} is not host:port"))?;
    if host.is_empty() {
        bail!("{value:?} has no host");
    }
    port.parse::<u16>()
        .with_context(|| format!("{value:?}: {port:?} is not a port"))?;
    Ok(())
}

/// A user or group given by number or by name.
fn check_id(what: &str, value: &str) -> anyhow::Result<()> {
    let numeric = value.chars().all(|c| c.is_ascii_digit());
    let name = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if value.is_empty() || !(numeric || name) {
        bail!("--{what} {value:?} is neither a number nor a valid name");
    }
    Ok(())
}

fn read_file(path: &Path, sections: &[&str]) -> anyhow::Result<FileSettings> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let ini =
        ini::Ini::load_from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut values = BTreeMap::new();
    let mut found = None;
    let mut ignored = Vec::new();
    for (section, props) in &ini {
        match section {
            None => {
                if let Some((key, _)) = props.iter().next() {
                    bail!(
                        "{}: key `{key}` is outside a section; put it under [{}]",
                        path.display(),
                        sections[0]
                    );
                }
            }
            Some(name) if sections.contains(&name) => {
                if let Some(other) = found.replace(name) {
                    bail!(
                        "{}: both [{other}] and [{name}] are present; keep one",
                        path.display()
                    );
                }
                for (key, value) in props.iter() {
                    // An old ftp-cloudfs file may hold keys that tool ignored: it keeps working. Our own
                    // section stays strict, so that a typo is never silently ignored there.
                    if !KNOWN_KEYS.contains(&key) && name == "ftpcloudfs" {
                        ignored.push(key.to_owned());
                        continue;
                    }
                    if !KNOWN_KEYS.contains(&key) {
                        bail!(
                            "{}: unknown key `{key}` in [{name}] (known keys: {})",
                            path.display(),
                            KNOWN_KEYS.join(", ")
                        );
                    }
                    values.insert(key.to_owned(), value.to_owned());
                }
            }
            Some(name) => bail!(
                "{}: unknown section [{name}] (expected [{}])",
                path.display(),
                sections.join("] or [")
            ),
        }
    }
    Ok(FileSettings {
        path: Some(path.to_owned()),
        values,
        section: found.map(str::to_owned),
        ignored,
    })
}

fn load_file(explicit: Option<&Path>) -> anyhow::Result<FileSettings> {
    if let Some(path) = explicit {
        return read_file(path, &["swiftftp", "ftpcloudfs"]);
    }
    for (path, section) in DEFAULT_FILES {
        let path = Path::new(path);
        if path.exists() {
            return read_file(path, &[section]);
        }
    }
    Ok(FileSettings::default())
}

/// Applies ftp-cloudfs's banner substitutions: `%v` (swiftftp's version), `%f` (the FTP library, libunftp),
/// `%s` (the Swift client: swiftftp's own).
pub fn expand_banner(banner: &str) -> String {
    let version = env!("CARGO_PKG_VERSION");
    banner
        .replace("%v", version)
        .replace("%f", "libunftp 0.24")
        .replace("%s", version)
}

impl Config {
    /// The pid file to write: the configured one, or in daemon mode the default in the runtime directory
    /// (systemd's `$RUNTIME_DIRECTORY`, else `$XDG_RUNTIME_DIR`, else `/run` when running as root). In the
    /// foreground there is one only when asked for. `None` in daemon mode: a non-root user with no runtime
    /// directory, refused by [`Config::from_cli`] (the shared temporary directory would let another local user
    /// create or lock the file first).
    pub fn pid_file_path(&self) -> Option<PathBuf> {
        if let Some(p) = &self.pid_file {
            return Some(p.clone());
        }
        if self.foreground {
            return None;
        }
        let runtime = ["RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR"]
            .iter()
            .find_map(|v| std::env::var_os(v).filter(|d| !d.is_empty()));
        default_pid_file(runtime, nix::unistd::geteuid().is_root())
    }

    /// Builds the configuration from the command line and the configuration file it points to (or the default
    /// one). Errors name the flag or key and the file.
    pub fn from_cli(cli: Cli) -> anyhow::Result<Self> {
        let file = load_file(cli.config.as_deref())?;
        let mut warnings = Vec::new();
        for key in &file.ignored {
            warnings.push(format!(
                "{} is not a key swiftftp knows: ignored, as ftp-cloudfs ignored it",
                file.context(key)
            ));
        }
        if file.section.as_deref() == Some("ftpcloudfs") {
            // ftp-cloudfs read these two with a plain `get`: any text, `no` included, turned them on.
            for key in ["insecure", "keystone-auth"] {
                if let Some(value) = file.get(key)
                    && !value.is_empty()
                    && parse_bool(value).is_ok_and(|on| !on)
                {
                    warnings.push(format!(
                        "{} = {value}: ftp-cloudfs took any value as yes; swiftftp reads it as no",
                        file.context(key)
                    ));
                }
            }
        }
        for key in ["workers", "service-net"] {
            if file.get(key).is_some() {
                warnings.push(format!(
                    "{} is deprecated and has no effect",
                    file.context(key)
                ));
            }
        }

        let port = file.number(cli.port, "port", 2021)?;
        let bind = cli
            .bind_address
            .or_else(|| file.string("bind-address"))
            .unwrap_or_else(|| "127.0.0.1".to_owned());
        let bind: IpAddr = bind
            .parse()
            .map_err(|_| anyhow!("bind address {bind:?} is not an IP address"))?;

        let auth_url = cli.auth_url.or_else(|| file.string("auth-url")).ok_or_else(|| {
            anyhow!("An authentication URL is required and it wasn't provided (--auth-url or auth-url in the config file)")
        })?;
        let auth_url = Url::parse(&auth_url).with_context(|| format!("auth URL {auth_url:?}"))?;
        if !matches!(auth_url.scheme(), "http" | "https") {
            bail!("auth URL {auth_url} must be http:// or https://");
        }

        let flag = |cli_value: bool, key: &str| -> anyhow::Result<bool> {
            Ok(cli_value || file.bool(key)?.unwrap_or(false))
        };
        let insecure = flag(cli.insecure, "insecure")?;
        let verbose = flag(cli.verbose, "verbose")?;
        let syslog = flag(cli.syslog, "syslog")?;

        let keystone = KeystoneConfig {
            enabled: flag(cli.keystone_auth, "keystone-auth")?,
            version: match cli
                .keystone_auth_version
                .or_else(|| file.string("keystone-auth-version"))
                .as_deref()
            {
                None | Some("2.0") => KeystoneVersion::V2,
                Some("3") => KeystoneVersion::V3,
                Some(other) => bail!("keystone auth version {other:?}: use 2.0 or 3"),
            },
            region: cli
                .keystone_region_name
                .or_else(|| file.string("keystone-region-name")),
            tenant_separator: separator(
                cli.keystone_tenant_separator,
                file.get("keystone-tenant-separator"),
                ".",
                "keystone-tenant-separator",
            )?,
            domain_separator: separator(
                cli.keystone_domain_separator,
                file.get("keystone-domain-separator"),
                "@",
                "keystone-domain-separator",
            )?,
            service_type: cli
                .keystone_service_type
                .or_else(|| file.string("keystone-service-type"))
                .unwrap_or_else(|| "object-store".to_owned()),
            endpoint_type: match cli
                .keystone_endpoint_type
                .or_else(|| file.string("keystone-endpoint-type"))
                .as_deref()
            {
                None | Some("publicURL") => EndpointType::Public,
                Some("internalURL") => EndpointType::Internal,
                Some("adminURL") => EndpointType::Admin,
                Some(other) => bail!(
                    "keystone endpoint type {other:?}: use publicURL, internalURL or adminURL"
                ),
            },
        };

        let mut memcache: Vec<String> = file
            .get("memcache")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        memcache.extend(
            cli.memcache
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
        );
        for m in &memcache {
            check_host_port(m).context("memcache server")?;
        }

        let uid = cli.uid.or_else(|| file.string("uid"));
        let gid = cli.gid.or_else(|| file.string("gid"));
        if let Some(uid) = &uid {
            check_id("uid", uid)?;
        }
        if let Some(gid) = &gid {
            check_id("gid", gid)?;
        }

        let passive_ports = file
            .get("passive-ports")
            .map(|v| parse_port_range(v).with_context(|| file.context("passive-ports")))
            .transpose()?;

        let config = Self {
            listen: SocketAddr::new(bind, port),
            auth_url,
            keystone,
            insecure,
            ca_file: cli
                .ca_file
                .or_else(|| file.string("ca-file").map(PathBuf::from)),
            swift_timeout: std::time::Duration::from_secs(file.number(
                cli.swift_timeout,
                "swift-timeout",
                60,
            )?)
            .max(std::time::Duration::from_secs(1)),
            memcache,
            // Capped at a day: longer makes no sense for listings, and keeps time arithmetic far from overflow.
            cache_ttl: std::time::Duration::from_secs(
                file.number(cli.cache_ttl, "cache-ttl", 5)?.min(86_400),
            ),
            dlo_check: match cli
                .dlo_check
                .or_else(|| file.string("dlo-check"))
                .as_deref()
            {
                None | Some("segments") => DloCheck::Segments,
                Some("all") => DloCheck::All,
                Some("none") => DloCheck::None,
                Some(other) => bail!("dlo-check {other:?}: use segments, all or none"),
            },
            cache_secret: cache_secret(
                cli.cache_secret,
                cli.cache_secret_file,
                &file,
                &mut warnings,
            )?,
            verbose,
            foreground: cli.foreground,
            log_file: cli
                .log_file
                .or_else(|| file.string("log-file").map(PathBuf::from)),
            syslog,
            pid_file: cli
                .pid_file
                .or_else(|| file.string("pid-file").map(PathBuf::from)),
            log_format: match cli
                .log_format
                .or_else(|| file.string("log-format"))
                .as_deref()
            {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => bail!("log format {other:?}: use text or json"),
            },
            shutdown_grace: std::time::Duration::from_secs(file.number(
                cli.shutdown_grace,
                "shutdown-grace",
                10,
            )?),
            metrics_address: cli
                .metrics_address
                .or_else(|| file.string("metrics-address"))
                .map(|a| {
                    a.parse::<SocketAddr>()
                        .map_err(|_| anyhow!("metrics address {a:?} is not IP:PORT"))
                })
                .transpose()?,
            uid,
            gid,
            storage_policy: cli.storage_policy.or_else(|| file.string("storage-policy")),
            banner: expand_banner(file.get("banner").unwrap_or(DEFAULT_BANNER)),
            max_cons_per_ip: file.number(
                cli.max_cons_per_ip,
                "max-cons-per-ip",
                DEFAULT_MAX_CONS_PER_IP,
            )?,
            max_connections: file.number(cli.max_connections, "max-connections", 1000)?,
            max_sessions_per_user: file.number(
                cli.max_sessions_per_user,
                "max-sessions-per-user",
                0,
            )?,
            rename_max_objects: file.number(
                cli.rename_max_objects,
                "rename-max-objects",
                10_000,
            )?,
            idle_timeout: std::time::Duration::from_secs(
                file.number(cli.idle_timeout, "idle-timeout", 300)?.max(1),
            ),
            login_timeout: Some(std::time::Duration::from_secs(file.number(
                cli.login_timeout,
                "login-timeout",
                30,
            )?))
            .filter(|t| !t.is_zero()),
            login_cache_ttl: std::time::Duration::from_secs(
                file.number(cli.login_cache_ttl, "login-cache-ttl", 300)?
                    .min(86_400),
            ),
            max_login_failures: file.number(cli.max_login_failures, "max-login-failures", 5)?,
            login_lockout: std::time::Duration::from_secs(
                file.number(cli.login_lockout, "login-lockout", 300)?
                    .min(7 * 86_400),
            ),
            passive_ports,
            masquerade_firewall: file.string("masquerade-firewall"),
            permit_foreign_addresses: file.bool("permit-foreign-addresses")?.unwrap_or(false),
            segment_size: segment_size(
                cli.segment_size.or_else(|| file.string("segment-size")),
                file.parsed::<u64>("split-large-files")?,
            )?,
            hide_part_dir: file.bool("hide-part-dir")?.unwrap_or(false),
            hide_segments: flag(cli.hide_segments, "hide-segments")?,
            mfmt: !cli.no_mfmt && file.bool("mfmt")?.unwrap_or(true),
            tls: match (
                cli.tls_cert
                    .or_else(|| file.string("tls-cert").map(PathBuf::from)),
                cli.tls_key
                    .or_else(|| file.string("tls-key").map(PathBuf::from)),
            ) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                (None, None) => None,
                _ => bail!("tls-cert and tls-key go together"),
            },
            tls_required: flag(cli.tls_required, "tls-required")?,
            proxy_protocol: flag(cli.proxy_protocol, "proxy-protocol")?,
            proxy_protocol_from: networks(cli.proxy_protocol_from, &file, "proxy-protocol-from")?,
            rackspace_service_net: file.bool("rackspace-service-net")?.unwrap_or(false),
            config_file: file.path.clone(),
            warnings,
        };
        config.check_not_yet_built()
    }

    /// Refuses what would run wrongly, and lists what is accepted but has no effect yet.
    fn check_not_yet_built(mut self) -> anyhow::Result<Self> {
        if self.tls_required && self.tls.is_none() {
            bail!("tls-required needs tls-cert and tls-key");
        }
        if !self.foreground && self.pid_file_path().is_none() {
            bail!(
                "daemon mode as a non-root user needs --pid-file (or $XDG_RUNTIME_DIR): a pid file in the shared \
                 temporary directory could be created or locked first by another local user"
            );
        }
        if self.proxy_protocol && self.proxy_protocol_from.is_empty() {
            bail!(
                "proxy-protocol needs proxy-protocol-from: the addresses of the load balancers whose PROXY headers \
                 are trusted (anyone else could name any client address)"
            );
        }
        if !self.proxy_protocol && !self.proxy_protocol_from.is_empty() {
            self.warnings
                .push("proxy-protocol-from has no effect without proxy-protocol".to_owned());
        }
        let mut pending = Vec::new();
        let set = [(self.rackspace_service_net, "rackspace-service-net")];
        pending.extend(set.iter().filter(|(on, _)| *on).map(|(_, name)| *name));
        for name in pending {
            self.warnings.push(format!(
                "{name}: not available in this version of swiftftp yet; it has no effect"
            ));
        }
        if self.permit_foreign_addresses {
            self.warnings.push(
                "permit-foreign-addresses: PORT may connect to any address a client names (FXP, and the bounce \
                 attack that comes with it); ports below 1024 stay refused"
                    .to_owned(),
            );
        }
        if !self.memcache.is_empty() && self.cache_secret.is_none() {
            self.warnings.push(
                "--memcache without cache-secret: this instance's cache keys are its own (random secret), so \
                 other instances cannot share its listings and tokens; set the same cache-secret on all of them"
                    .to_owned(),
            );
        }
        let keystone_only = [
            self.keystone.version != KeystoneVersion::V2,
            self.keystone.region.is_some(),
            self.keystone.tenant_separator != ".",
            self.keystone.domain_separator != "@",
            self.keystone.service_type != "object-store",
            self.keystone.endpoint_type != EndpointType::Public,
        ];
        if !self.keystone.enabled && keystone_only.iter().any(|x| *x) {
            self.warnings
                .push("--keystone-* options are ignored without --keystone-auth".to_owned());
        }
        Ok(self)
    }
}

/// The daemon's pid file when none is named: in the runtime directory (the first of a colon-separated systemd
/// list), else `/run` for root, else none (never the shared temporary directory).
fn default_pid_file(runtime: Option<std::ffi::OsString>, root: bool) -> Option<PathBuf> {
    let dir = runtime
        .map(|d| {
            let d = d.to_string_lossy().into_owned();
            PathBuf::from(d.split(':').next().unwrap_or_default())
        })
        .or_else(|| root.then(|| PathBuf::from("/run")))?;
    Some(dir.join("swiftftp.pid"))
}

/// Connections per client address by default: a NAT'd office of 20 FileZilla users (a control connection and
/// two transfers each) fits, one host cannot take every slot of `max-connections`.
pub const DEFAULT_MAX_CONS_PER_IP: u32 = 64;

/// The cache secret: `--cache-secret` (warned about when it came from the command line, where every local user
/// sees it in the process list), else `--cache-secret-file` (first line; refused when others may read it), else
/// the file's keys of the same names.
fn cache_secret(
    cli_secret: Option<String>,
    cli_file: Option<PathBuf>,
    file: &FileSettings,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Option<String>> {
    if let Some(secret) = cli_secret.filter(|s| !s.is_empty()) {
        if std::env::var_os("SWIFTFTP_CACHE_SECRET").is_none() {
            warnings.push(
                "--cache-secret on the command line shows in the process list to every local user: use \
                 --cache-secret-file, SWIFTFTP_CACHE_SECRET or cache-secret in the configuration file"
                    .to_owned(),
            );
        }
        return Ok(Some(secret));
    }
    let Some(path) = cli_file.or_else(|| file.string("cache-secret-file").map(PathBuf::from))
    else {
        return Ok(file.string("cache-secret").filter(|s| !s.is_empty()));
    };
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    // Checked on the opened file, not the path, so that what is read is what was checked.
    let mut file = std::fs::File::open(&path)
        .with_context(|| format!("reading the cache secret file {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("reading the cache secret file {}", path.display()))?;
    if meta.mode() & 0o077 != 0 {
        bail!(
            "the cache secret file {} may be read by other users (mode {:o}): chmod 600 it",
            path.display(),
            meta.mode() & 0o777
        );
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid && meta.uid() != 0 {
        bail!(
            "the cache secret file {} belongs to another user (uid {}): it must be this user's or root's",
            path.display(),
            meta.uid()
        );
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .with_context(|| format!("reading the cache secret file {}", path.display()))?;
    let secret = text.lines().next().unwrap_or_default().trim().to_owned();
    if secret.is_empty() {
        bail!("the cache secret file {} is empty", path.display());
    }
    Ok(Some(secret))
}

/// Addresses or CIDR networks from the command line, else from the file's comma-separated `key`.
fn networks(cli: Vec<String>, file: &FileSettings, key: &str) -> anyhow::Result<Vec<ipnet::IpNet>> {
    let from_cli = !cli.is_empty();
    let items: Vec<String> = if from_cli {
        cli
    } else {
        file.get(key)
            .map(|v| v.split(',').map(str::to_owned).collect())
            .unwrap_or_default()
    };
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    let whence = if from_cli {
                        format!("--{key}")
                    } else {
                        file.context(key)
                    };
                    anyhow!("{whence}: {s:?} is not an IP address or CIDR network")
                })
        })
        .collect()
}

fn separator(
    cli: Option<String>,
    file: Option<&str>,
    default: &str,
    name: &str,
) -> anyhow::Result<String> {
    // Not trimmed: a separator may be any character, even a blank one.
    let value = cli
        .or_else(|| file.map(str::to_owned))
        .unwrap_or_else(|| default.to_owned());
    if value.is_empty() {
        bail!("--{name} must not be empty");
    }
    Ok(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
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
        assert!(c.verbose);
        assert_eq!(c.passive_ports, Some(9000..=10000));
        assert_eq!(c.banner, format!("hello {}", env!("CARGO_PKG_VERSION")));
        assert_eq!(c.masquerade_firewall.as_deref(), Some("ftp.example.com"));
        assert_eq!(c.memcache, vec!["127.0.0.1:11211", "10.0.0.1:11211", "m:1"]);
    }

    #[test]
    fn security_defaults_and_the_proxy_protocol_trust_rule() {
        let f = file("[swiftftp]\nauth-url = http://h/auth/v1.0\n");
        let c = Config::from_cli(cli(&["-f", "--config", &f.arg()])).unwrap();
        assert_eq!(c.max_cons_per_ip, DEFAULT_MAX_CONS_PER_IP);
        assert_eq!(c.login_timeout, Some(std::time::Duration::from_secs(30)));
        assert_eq!(c.login_cache_ttl, std::time::Duration::from_secs(300));
        let c =
            Config::from_cli(cli(&["-f", "--config", &f.arg(), "--login-timeout", "0"])).unwrap();
        assert_eq!(c.login_timeout, None);
        // PROXY headers only from named balancers.
        let e =
            Config::from_cli(cli(&["-f", "--config", &f.arg(), "--proxy-protocol"])).unwrap_err();
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
                "endpoint type",
            ),
            (
                "[ftpcloudfs]\nauth-url = http://h\nkeystone-auth-version = 4\n",
                "2.0 or 3",
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
        }
    }

    #[test]
    fn the_example_file_documents_every_key_and_is_accepted() {
        let example = include_str!("../examples/swiftftp.conf");
        for key in KNOWN_KEYS {
            assert!(
                example.contains(&format!("# {key} = "))
                    || example.contains(&format!("\n{key} = ")),
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
        let c =
            Config::from_cli(cli(&["--config", &f.arg(), "--keystone-region-name", "r1"])).unwrap();
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
}
