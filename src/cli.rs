//! The command line, flag for flag as ftp-cloudfs had it (names, short flags, defaults), so an operator can swap
//! the binary. Every flag can also come from a `SWIFTFTP_*` environment variable.
//!
//! This is only the raw shape: every value is optional here, because the configuration file fills what the
//! command line leaves out. Defaults, validation and the merge live in `config/`;
//! the enum-valued options are `config`'s types, parsed here by clap. The man page and the shell completions are
//! generated from it ([`print_generated`]).

// The doc comments below are `--help` texts, where `[default: 2021]` and `[swiftftp]` are plain text, not links.
#![allow(rustdoc::broken_intra_doc_links)]

use clap::{ArgAction, CommandFactory, Parser};
use std::io::Write;
use std::path::PathBuf;

/// What `--print-man-page` or `--print-completions` asks for, written to `out`; `None` when neither was given
/// (then swiftftp runs). Both come from this very definition, so they cannot drift from `--help`.
pub fn print_generated(cli: &Cli, out: &mut dyn Write) -> Option<std::io::Result<()>> {
    let mut command = Cli::command();
    if cli.print_man_page {
        return Some(clap_mangen::Man::new(command).render(out));
    }
    let shell = cli.print_completions?;
    clap_complete::generate(shell, &mut command, "swiftftp", out);
    Some(Ok(()))
}

/// An on/off option: `--flag` or `--flag=yes` turns it on, `--flag=no` off (over the file's value); the same
/// words in its `SWIFTFTP_*` variable.
fn yes_no(value: &str) -> Result<bool, String> {
    parse_bool(value).map_err(|e| e.to_string())
}

/// Booleans as Python's ConfigParser reads them (ftp-cloudfs used `get`, so `no` was true there: not here).
pub fn parse_bool(value: &str) -> anyhow::Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" => Ok(false),
        other => {
            anyhow::bail!("{other:?} is not a boolean (use yes/no, true/false, on/off or 1/0)")
        }
    }
}

/// FTP gateway to OpenStack Swift: `/` is your account, top-level folders are containers, deeper folders are
/// pseudo-directories, files are objects. Logging in is Swift authentication.
#[derive(Debug, Parser)]
#[command(
    name = "swiftftp",
    version,
    about,
    after_help = "Settings not given on the command line (or in its SWIFTFTP_* variable) are read from the \
                  configuration file: --config FILE, else /etc/swiftftp.conf (section [swiftftp]), else \
                  /etc/ftpcloudfs.conf (section [ftpcloudfs]); its keys are the long option names (mfmt = no for \
                  --no-mfmt). On/off \
                  options take --flag, --flag=yes or --flag=no. Every key, commented: examples/swiftftp.conf in \
                  the source tree."
)]
pub struct Cli {
    /// Print the man page (roff) and exit: `swiftftp --print-man-page > swiftftp.1` (for packaging)
    #[arg(long = "print-man-page", hide = true)]
    pub print_man_page: bool,

    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell) and exit
    #[arg(long = "print-completions", hide = true, value_name = "SHELL")]
    pub print_completions: Option<clap_complete::Shell>,

    /// Port to listen on [default: 2021]
    #[arg(
        help_heading = "Listening",
        short = 'p',
        long,
        env = "SWIFTFTP_PORT",
        value_name = "PORT"
    )]
    pub port: Option<u16>,

    /// IP address to listen on [default: 127.0.0.1]
    #[arg(
        help_heading = "Listening",
        short = 'b',
        long = "bind-address",
        env = "SWIFTFTP_BIND_ADDRESS",
        value_name = "IP"
    )]
    pub bind_address: Option<String>,

    /// Expect a PROXY protocol header (v1 or v2, e.g. from HAProxy `send-proxy`) on every control connection:
    /// limits, logs and logins then see the client it names; a connection without one is closed. Needs
    /// --proxy-protocol-from [default: no]
    #[arg(
        help_heading = "Listening",
        long = "proxy-protocol",
        env = "SWIFTFTP_PROXY_PROTOCOL", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_name = "yes|no", value_parser = yes_no)]
    pub proxy_protocol: Option<bool>,

    /// The load balancers whose PROXY headers are trusted, as addresses or CIDR networks (repeatable or
    /// comma-separated, e.g. 10.0.0.5,10.1.0.0/24); a connection from anywhere else is closed without a greeting
    #[arg(help_heading = "Listening", long = "proxy-protocol-from", action = ArgAction::Append, env = "SWIFTFTP_PROXY_PROTOCOL_FROM", value_name = "CIDR", value_delimiter = ',')]
    pub proxy_protocol_from: Vec<String>,

    /// Serve Prometheus metrics (/metrics) and a health check (/health) over HTTP on this address, e.g.
    /// 127.0.0.1:9121 (off unless set)
    #[arg(
        help_heading = "Listening",
        long = "metrics-address",
        env = "SWIFTFTP_METRICS_ADDRESS",
        value_name = "IP:PORT"
    )]
    pub metrics_address: Option<String>,

    /// The 220 greeting; %v is swiftftp's version, %f the FTP library's, %s the Swift client's [default:
    /// swiftftp %v ready.]
    #[arg(
        help_heading = "Listening",
        long,
        env = "SWIFTFTP_BANNER",
        value_name = "TEXT"
    )]
    pub banner: Option<String>,

    /// Ports for passive data connections, MIN:MAX, e.g. 60000:65535 [default: chosen by the OS]
    #[arg(
        help_heading = "Listening",
        long = "passive-ports",
        env = "SWIFTFTP_PASSIVE_PORTS",
        value_name = "MIN:MAX"
    )]
    pub passive_ports: Option<String>,

    /// IPv4 address or host name announced in PASV replies, for a gateway behind NAT [default: the control
    /// connection's address]
    #[arg(
        help_heading = "Listening",
        long = "masquerade-firewall",
        env = "SWIFTFTP_MASQUERADE_FIREWALL",
        value_name = "HOST"
    )]
    pub masquerade_firewall: Option<String>,

    /// Let PORT connect to addresses other than the client's (FXP; allows bounce attacks) [default: no]
    #[arg(help_heading = "Listening", long = "permit-foreign-addresses", env = "SWIFTFTP_PERMIT_FOREIGN_ADDRESSES", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_name = "yes|no", value_parser = yes_no)]
    pub permit_foreign_addresses: Option<bool>,

    /// Swift (v1) or Keystone authentication URL (required), e.g. http://127.0.0.1:8080/auth/v1.0
    #[arg(
        help_heading = "Swift",
        short = 'a',
        long = "auth-url",
        env = "SWIFTFTP_AUTH_URL",
        value_name = "URL"
    )]
    pub auth_url: Option<String>,

    /// Do not verify TLS certificates of the auth service and Swift [default: no]
    #[arg(help_heading = "Swift", long, env = "SWIFTFTP_INSECURE", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_name = "yes|no", value_parser = yes_no)]
    pub insecure: Option<bool>,

    /// Seconds Swift may take to start answering, or stay silent within a download; never a limit on a whole
    /// transfer [default: 60]
    #[arg(
        help_heading = "Swift",
        long = "swift-timeout",
        env = "SWIFTFTP_SWIFT_TIMEOUT",
        value_name = "SECONDS"
    )]
    pub swift_timeout: Option<u64>,

    /// Also trust the CA certificate(s) in this PEM file for TLS to the auth service and Swift
    #[arg(
        help_heading = "Swift",
        long = "ca-file",
        env = "SWIFTFTP_CA_FILE",
        value_name = "FILE"
    )]
    pub ca_file: Option<PathBuf>,

    /// Storage policy: new containers get it, and the root listing shows only containers of it
    #[arg(
        help_heading = "Swift",
        long = "storage-policy",
        env = "SWIFTFTP_STORAGE_POLICY",
        value_name = "POLICY"
    )]
    pub storage_policy: Option<String>,

    /// Rackspace's internal service network (not available yet: accepted with a warning, no effect) [default: no]
    #[arg(help_heading = "Swift", long = "rackspace-service-net", env = "SWIFTFTP_RACKSPACE_SERVICE_NET", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_name = "yes|no", value_parser = yes_no)]
    pub rackspace_service_net: Option<bool>,

    /// Use Keystone authentication: logins TENANT.USER (v2.0), PROJECT[@DOMAIN].USER[@DOMAIN] or .appcred.ID
    /// with an application credential's secret as password (v3) [default: no]
    #[arg(
        help_heading = "Keystone",
        long = "keystone-auth",
        env = "SWIFTFTP_KEYSTONE_AUTH", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_name = "yes|no", value_parser = yes_no)]
    pub keystone_auth: Option<bool>,

    /// Keystone API version: 2.0 or 3 [default: 2.0]
    #[arg(
        help_heading = "Keystone",
        long = "keystone-auth-version",
        env = "SWIFTFTP_KEYSTONE_AUTH_VERSION",
        value_name = "VERSION",
        value_enum,
        hide_possible_values = true
    )]
    pub keystone_auth_version: Option<crate::config::choices::KeystoneVersion>,

    /// Keystone region of the Swift endpoint
    #[arg(
        help_heading = "Keystone",
        long = "keystone-region-name",
        env = "SWIFTFTP_KEYSTONE_REGION_NAME",
        value_name = "REGION"
    )]
    pub keystone_region_name: Option<String>,

    /// Separator between tenant (project) and user in Keystone logins [default: .]
    #[arg(
        help_heading = "Keystone",
        long = "keystone-tenant-separator",
        env = "SWIFTFTP_KEYSTONE_TENANT_SEPARATOR",
        value_name = "SEP"
    )]
    pub keystone_tenant_separator: Option<String>,

    /// Separator between a name and its domain in Keystone v3 logins [default: @]
    #[arg(
        help_heading = "Keystone",
        long = "keystone-domain-separator",
        env = "SWIFTFTP_KEYSTONE_DOMAIN_SEPARATOR",
        value_name = "SEP"
    )]
    pub keystone_domain_separator: Option<String>,

    /// Service type of Swift in the Keystone catalog [default: object-store]
    #[arg(
        help_heading = "Keystone",
        long = "keystone-service-type",
        env = "SWIFTFTP_KEYSTONE_SERVICE_TYPE",
        value_name = "TYPE"
    )]
    pub keystone_service_type: Option<String>,

    /// Endpoint type in the Keystone catalog: publicURL, internalURL or adminURL [default: publicURL]
    #[arg(
        help_heading = "Keystone",
        long = "keystone-endpoint-type",
        env = "SWIFTFTP_KEYSTONE_ENDPOINT_TYPE",
        value_name = "TYPE",
        value_enum,
        hide_possible_values = true
    )]
    pub keystone_endpoint_type: Option<crate::config::choices::EndpointType>,

    /// Uploads larger than this become Static Large Objects of segments this size, e.g. 64M, 1G (binary units;
    /// at least 1M) [default: the cluster's max_file_size, 5G unless configured otherwise]
    #[arg(
        help_heading = "Storage",
        long = "segment-size",
        env = "SWIFTFTP_SEGMENT_SIZE",
        value_name = "SIZE"
    )]
    pub segment_size: Option<String>,

    /// Hide `<container>_segments` containers (where large objects keep their segments) from the root listing
    /// when `<container>` is listed too; they can still be entered by name [default: no]
    #[arg(
        help_heading = "Storage",
        long = "hide-segments",
        env = "SWIFTFTP_HIDE_SEGMENTS", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_name = "yes|no", value_parser = yes_no)]
    pub hide_segments: Option<bool>,

    /// Do not offer MFMT: clients that set each uploaded file's time (lftp, FileZilla) then skip it, one Swift
    /// POST less per file, and files show their upload time (file key: mfmt = no)
    #[arg(help_heading = "Storage", long = "no-mfmt", env = "SWIFTFTP_NO_MFMT")]
    pub no_mfmt: bool,

    /// Which 0-byte files are HEADed to find Dynamic Large Object manifests: `segments` (those whose segments
    /// are where python-swiftclient, rclone or ftp-cloudfs put them), `all`, or `none` [default: segments]
    #[arg(
        help_heading = "Storage",
        long = "dlo-check",
        env = "SWIFTFTP_DLO_CHECK",
        value_name = "WHICH",
        value_enum,
        hide_possible_values = true
    )]
    pub dlo_check: Option<crate::config::choices::DloCheck>,

    /// Hide ftp-cloudfs's FILE.part segment folders beside FILE in listings (still reachable by name)
    /// [default: no]
    #[arg(help_heading = "Storage", long = "hide-part-dir", env = "SWIFTFTP_HIDE_PART_DIR", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_name = "yes|no", value_parser = yes_no)]
    pub hide_part_dir: Option<bool>,

    /// ftp-cloudfs's segment size in MB (10^6 bytes); --segment-size wins [default: 0]
    #[arg(
        help_heading = "Storage",
        long = "split-large-files",
        env = "SWIFTFTP_SPLIT_LARGE_FILES",
        value_name = "MB"
    )]
    pub split_large_files: Option<u64>,

    /// PEM certificate chain for FTPS (explicit, AUTH TLS, and implicit with --tls-implicit-port; TLS 1.2 and
    /// 1.3); needs --tls-key; reloaded on SIGHUP
    #[arg(
        help_heading = "TLS",
        long = "tls-cert",
        env = "SWIFTFTP_TLS_CERT",
        value_name = "FILE"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert (read before privileges are dropped)
    #[arg(
        help_heading = "TLS",
        long = "tls-key",
        env = "SWIFTFTP_TLS_KEY",
        value_name = "FILE"
    )]
    pub tls_key: Option<PathBuf>,

    /// Require TLS: login only after AUTH TLS, and every data connection protected (PROT P); PROT C and
    /// transfers without PROT P get 534 [default: no]
    #[arg(
        help_heading = "TLS",
        long = "tls-required",
        env = "SWIFTFTP_TLS_REQUIRED", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_name = "yes|no", value_parser = yes_no)]
    pub tls_required: Option<bool>,

    /// Also serve implicit FTPS (ftps://, TLS from the first byte; 990 by custom) on this port of --bind, beside
    /// the explicit FTPS of --port; its data connections must be protected. Needs --tls-cert
    #[arg(
        help_heading = "TLS",
        long = "tls-implicit-port",
        env = "SWIFTFTP_TLS_IMPLICIT_PORT",
        value_name = "PORT"
    )]
    pub tls_implicit_port: Option<u16>,

    /// Most FTP connections at once, all clients together; more get 421 [default: 1000; 0: no limit]
    #[arg(
        help_heading = "Limits",
        long = "max-connections",
        env = "SWIFTFTP_MAX_CONNECTIONS",
        value_name = "N"
    )]
    pub max_connections: Option<u32>,

    /// Most FTP connections from one client IP address; more get 421 (the file's max-cons-per-ip)
    /// [default: 64, room for a NAT'd office of 20 FileZilla users; 0: no limit]
    #[arg(
        help_heading = "Limits",
        long = "max-cons-per-ip",
        env = "SWIFTFTP_MAX_CONS_PER_IP",
        value_name = "N"
    )]
    pub max_cons_per_ip: Option<u32>,

    /// Most sessions logged in as the same user at once; more are refused at login [default: 0, no limit]
    #[arg(
        help_heading = "Limits",
        long = "max-sessions-per-user",
        env = "SWIFTFTP_MAX_SESSIONS_PER_USER",
        value_name = "N"
    )]
    pub max_sessions_per_user: Option<u32>,

    /// Most objects one rename of a directory or container may move; more get 550 [default: 10000; 0: no limit]
    #[arg(
        help_heading = "Limits",
        long = "rename-max-objects",
        env = "SWIFTFTP_RENAME_MAX_OBJECTS",
        value_name = "N"
    )]
    pub rename_max_objects: Option<u64>,

    /// Seconds a control connection may stay silent (no transfer running) before it is closed, and a data
    /// connection may move no byte before its transfer is aborted with 426 [default: 300]
    #[arg(
        help_heading = "Limits",
        long = "idle-timeout",
        env = "SWIFTFTP_IDLE_TIMEOUT",
        value_name = "SECONDS"
    )]
    pub idle_timeout: Option<u64>,

    /// Seconds after the auth service accepted a password during which another login with it reuses the token
    /// instead of asking again: the longest a changed password keeps working; 0: every login asks [default: 300]
    #[arg(
        help_heading = "Limits",
        long = "login-cache-ttl",
        env = "SWIFTFTP_LOGIN_CACHE_TTL",
        value_name = "SECONDS"
    )]
    pub login_cache_ttl: Option<u64>,

    /// Seconds a new connection has to log in; nothing sent before the login extends it [default: 30; 0: no
    /// limit]
    #[arg(
        help_heading = "Limits",
        long = "login-timeout",
        env = "SWIFTFTP_LOGIN_TIMEOUT",
        value_name = "SECONDS"
    )]
    pub login_timeout: Option<u64>,

    /// Failed logins (of one user from one IP address) before that pair is locked out [default: 5; 0: never]
    #[arg(
        help_heading = "Limits",
        long = "max-login-failures",
        env = "SWIFTFTP_MAX_LOGIN_FAILURES",
        value_name = "N"
    )]
    pub max_login_failures: Option<u32>,

    /// Seconds a locked-out user and IP pair stays locked (every attempt meanwhile fails without reaching the
    /// auth service) [default: 300]
    #[arg(
        help_heading = "Limits",
        long = "login-lockout",
        env = "SWIFTFTP_LOGIN_LOCKOUT",
        value_name = "SECONDS"
    )]
    pub login_lockout: Option<u64>,

    /// Seconds running transfers may go on after SIGTERM or SIGINT before the process exits; a second signal
    /// exits at once [default: 10]
    #[arg(
        help_heading = "Limits",
        long = "shutdown-grace",
        env = "SWIFTFTP_SHUTDOWN_GRACE",
        value_name = "SECONDS"
    )]
    pub shutdown_grace: Option<u64>,

    /// Log debug messages [default: no]
    #[arg(
        help_heading = "Process and logging",
        short = 'v',
        long,
        env = "SWIFTFTP_VERBOSE", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_name = "yes|no", value_parser = yes_no)]
    pub verbose: Option<bool>,

    /// Stay in the foreground, logging to stderr; without it swiftftp detaches (daemon mode), writes a pid file
    /// and logs to --log-file, else to syslog
    #[arg(
        help_heading = "Process and logging",
        short = 'f',
        long,
        env = "SWIFTFTP_FOREGROUND"
    )]
    pub foreground: bool,

    /// Write the log to this file instead of stderr
    #[arg(
        help_heading = "Process and logging",
        short = 'l',
        long = "log-file",
        env = "SWIFTFTP_LOG_FILE",
        value_name = "FILE"
    )]
    pub log_file: Option<PathBuf>,

    /// Log to syslog, daemon facility (overrides --log-file, as in ftp-cloudfs) [default: no]
    #[arg(help_heading = "Process and logging", long, env = "SWIFTFTP_SYSLOG", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_name = "yes|no", value_parser = yes_no)]
    pub syslog: Option<bool>,

    /// Pid file, locked while running so a second instance refuses to start; removed on exit [default in daemon
    /// mode: $RUNTIME_DIRECTORY, $XDG_RUNTIME_DIR, /run (root) or the temporary directory, + /swiftftp.pid]
    #[arg(
        help_heading = "Process and logging",
        long = "pid-file",
        env = "SWIFTFTP_PID_FILE",
        value_name = "FILE"
    )]
    pub pid_file: Option<PathBuf>,

    /// User to run as after binding the listening socket, numeric or name (its primary group unless --gid)
    #[arg(
        help_heading = "Process and logging",
        long,
        env = "SWIFTFTP_UID",
        value_name = "UID"
    )]
    pub uid: Option<String>,

    /// Group to run as after binding the listening socket, numeric or name
    #[arg(
        help_heading = "Process and logging",
        long,
        env = "SWIFTFTP_GID",
        value_name = "GID"
    )]
    pub gid: Option<String>,

    /// Log format: text (one line per event) or json (one JSON object per line) [default: text]
    #[arg(
        help_heading = "Process and logging",
        long = "log-format",
        env = "SWIFTFTP_LOG_FORMAT",
        value_name = "FORMAT",
        value_enum,
        hide_possible_values = true
    )]
    pub log_format: Option<crate::config::choices::LogFormat>,

    /// Configuration file (INI, section [swiftftp] or [ftpcloudfs])
    #[arg(
        help_heading = "Process and logging",
        long,
        env = "SWIFTFTP_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// memcached server(s) for the cache shared by several swiftftp instances (listings and tokens), host:port;
    /// repeatable or comma-separated; adds to the file's list
    #[arg(help_heading = "Caching", long, action = ArgAction::Append, env = "SWIFTFTP_MEMCACHE", value_name = "HOST:PORT", value_delimiter = ',')]
    pub memcache: Vec<String>,

    /// Seconds a directory listing is reused (per user; every write through swiftftp invalidates what it
    /// touches at once); 0 turns listing caching off [default: 5]
    #[arg(
        help_heading = "Caching",
        long = "cache-ttl",
        env = "SWIFTFTP_CACHE_TTL",
        value_name = "SECONDS"
    )]
    pub cache_ttl: Option<u64>,

    /// Secret for the cache's keys (HMAC) and the encryption of what memcached holds; instances sharing memcached
    /// need the same one. On the command line it shows in the process list: prefer --cache-secret-file or
    /// SWIFTFTP_CACHE_SECRET [default: random per process]
    #[arg(
        help_heading = "Caching",
        long = "cache-secret",
        env = "SWIFTFTP_CACHE_SECRET",
        value_name = "SECRET"
    )]
    pub cache_secret: Option<String>,

    /// File holding the cache secret (its first line; the file must not be readable by others)
    #[arg(
        help_heading = "Caching",
        long = "cache-secret-file",
        env = "SWIFTFTP_CACHE_SECRET_FILE",
        value_name = "FILE"
    )]
    pub cache_secret_file: Option<PathBuf>,
}
