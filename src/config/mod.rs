//! The validated [`Config`]: command line over configuration file over defaults ([`Config::from_cli`]).
//!
//! The file is ftp-cloudfs's INI format and takes every key the old tool took, so an old
//! `/etc/ftpcloudfs.conf` works as it is, with its bugs fixed: booleans are booleans (`no` means false),
//! `passive-ports = 9000:10000` is compared as numbers, an unknown key in `[swiftftp]` is an error that names it
//! (a typo is never silently ignored) while one in an old `[ftpcloudfs]` section is a warning (that tool ignored
//! it), `insecure` and `keystone-auth` set to a no-value in `[ftpcloudfs]` are warned about (ftp-cloudfs read
//! them as yes), and the deprecated `workers` and `service-net` are accepted with a warning.
//!
//! Options whose feature is not built yet are parsed and validated all the same, and [`Config::warnings`] says at
//! start that they have no effect yet. Layout:
//!
//! - this file: the types, and [`Config::from_cli`] putting the groups together and checking them as a whole;
//! - `sections.rs`: one function per group of options (as in the options table of `docs/operations.md`);
//! - `file.rs`: reading the INI file (sections, known keys) and its values as text, booleans, numbers, choices;
//! - `choices.rs`: the options that take one of a few words (clap parses them on the command line too);
//! - `values.rs`: single values that need more than parsing (sizes, ids, networks, the cache secret file).
//!
//! Each default is written once: in `sections.rs`, or as the `Default` of its enum in `choices.rs`; `tests/options_doc.rs` holds the options table, `--help`
//! and `examples/swiftftp.conf` to it.

pub mod choices;
mod file;
mod sections;
#[cfg(test)]
mod tests;
mod values;

pub use choices::{DloCheck, EndpointType, KeystoneVersion, LogFormat};
pub use file::{KNOWN_KEYS, parse_bool, parse_port_range};
pub use values::expand_banner;

use crate::cli::Cli;
use anyhow::bail;
use reqwest::Url;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;

const ONE_SECOND: std::time::Duration = std::time::Duration::from_secs(1);
const ONE_DAY: std::time::Duration = std::time::Duration::from_secs(86_400);

/// The greeting when the file sets no `banner`; `%v` is swiftftp's version.
pub const DEFAULT_BANNER: &str = "swiftftp %v ready.";

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

/// Where and how the log is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logging {
    /// Debug logging.
    pub verbose: bool,
    /// Log file instead of stderr.
    pub log_file: Option<PathBuf>,
    /// Log to syslog.
    pub syslog: bool,
    /// Log line format.
    pub format: LogFormat,
}

/// What one client, one user or the whole server may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections allowed at once in all (0: no limit).
    pub max_connections: u32,
    /// Connections allowed per client IP (0: no limit).
    pub max_cons_per_ip: u32,
    /// How long a new connection has to log in (`None`: no limit).
    pub login_timeout: Option<std::time::Duration>,
    /// Sessions of one user at once (0: no limit).
    pub max_sessions_per_user: u32,
    /// Most objects one directory or container rename may move (0: no limit).
    pub rename_max_objects: u64,
    /// How long a control connection may stay silent, and a data connection move no byte.
    pub idle_timeout: std::time::Duration,
    /// Failed logins of a user from an IP before the pair is locked out (0: never).
    pub max_login_failures: u32,
    /// How long a lockout lasts.
    pub login_lockout: std::time::Duration,
    /// How long a password the auth service accepted lets later logins reuse its token (zero: never).
    pub login_cache_ttl: std::time::Duration,
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
    /// Where and how the log is written.
    pub logging: Logging,
    /// Run in the foreground.
    pub foreground: bool,
    /// Pid file (always one in daemon mode: see [`Config::pid_file_path`]).
    pub pid_file: Option<PathBuf>,
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
    /// Connection, session, login and rename limits.
    pub limits: Limits,
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
    /// Where implicit FTPS is served too (the FTP address's IP, this port), if anywhere.
    pub tls_implicit: Option<SocketAddr>,
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
        values::default_pid_file(runtime, nix::unistd::geteuid().is_root())
    }

    /// Builds the configuration from the command line and the configuration file it points to (or the default
    /// one). Errors name the flag or key and the file.
    pub fn from_cli(cli: Cli) -> anyhow::Result<Self> {
        let file = file::load_file(cli.config.as_deref())?;
        let mut warnings = sections::file_warnings(&file);
        let listen = sections::listen(&cli, &file)?;
        let config = Self {
            listen,
            auth_url: sections::auth_url(&cli, &file)?,
            keystone: sections::keystone(&cli, &file)?,
            insecure: file.flag(cli.insecure, "insecure")?,
            ca_file: file.path_or(&cli.ca_file, "ca-file"),
            swift_timeout: file
                .secs(cli.swift_timeout, "swift-timeout", 60)?
                .max(ONE_SECOND),
            memcache: sections::memcache(&cli, &file)?,
            // Capped at a day: longer makes no sense for listings, and keeps time arithmetic far from overflow.
            cache_ttl: file.secs(cli.cache_ttl, "cache-ttl", 5)?.min(ONE_DAY),
            dlo_check: file.choice(cli.dlo_check, "dlo-check")?,
            cache_secret: values::cache_secret(
                cli.cache_secret.clone(),
                cli.cache_secret_file.clone(),
                &file,
                &mut warnings,
            )?,
            logging: sections::logging(&cli, &file)?,
            foreground: cli.foreground,
            pid_file: file.path_or(&cli.pid_file, "pid-file"),
            shutdown_grace: file.secs(cli.shutdown_grace, "shutdown-grace", 10)?,
            metrics_address: sections::metrics_address(&cli, &file)?,
            uid: sections::identity(&cli.uid, &file, "uid")?,
            gid: sections::identity(&cli.gid, &file, "gid")?,
            storage_policy: file.string_or(&cli.storage_policy, "storage-policy"),
            banner: expand_banner(
                cli.banner
                    .as_deref()
                    .or(file.get("banner"))
                    .unwrap_or(DEFAULT_BANNER),
            ),
            limits: sections::limits(&cli, &file)?,
            passive_ports: match &cli.passive_ports {
                Some(range) => Some(anyhow::Context::context(
                    parse_port_range(range),
                    "--passive-ports",
                )?),
                None => file.port_range("passive-ports")?,
            },
            masquerade_firewall: file.string_or(&cli.masquerade_firewall, "masquerade-firewall"),
            permit_foreign_addresses: file
                .flag(cli.permit_foreign_addresses, "permit-foreign-addresses")?,
            segment_size: values::segment_size(
                file.string_or(&cli.segment_size, "segment-size"),
                match cli.split_large_files {
                    Some(mb) => Some(mb),
                    None => file.parsed::<u64>("split-large-files")?,
                },
            )?,
            hide_part_dir: file.flag(cli.hide_part_dir, "hide-part-dir")?,
            hide_segments: file.flag(cli.hide_segments, "hide-segments")?,
            mfmt: !cli.no_mfmt && file.bool("mfmt")?.unwrap_or(true),
            tls: sections::tls(&cli, &file)?,
            tls_required: file.flag(cli.tls_required, "tls-required")?,
            tls_implicit: match cli.tls_implicit_port {
                Some(port) => Some(port),
                None => file.parsed::<u16>("tls-implicit-port")?,
            }
            .map(|port| SocketAddr::new(listen.ip(), port)),
            proxy_protocol: file.flag(cli.proxy_protocol, "proxy-protocol")?,
            proxy_protocol_from: values::networks(
                cli.proxy_protocol_from.clone(),
                &file,
                "proxy-protocol-from",
            )?,
            rackspace_service_net: file.flag(cli.rackspace_service_net, "rackspace-service-net")?,
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
        if self.tls_implicit.is_some() && self.tls.is_none() {
            bail!("tls-implicit-port needs tls-cert and tls-key");
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

/// Connections per client address by default: a NAT'd office of 20 FileZilla users (a control connection and
/// two transfers each) fits, one host cannot take every slot of `max-connections`.
pub const DEFAULT_MAX_CONS_PER_IP: u32 = 64;
