//! Single option values that need more than parsing: segment sizes with units, user and group ids, `host:port`,
//! networks, separators, the banner's substitutions, the default pid file and the cache secret file (whose
//! owner and mode are checked).
//!
//! Not here: which option takes which of these, and defaults (`sections.rs`).

use super::MIN_SEGMENT_SIZE;
use super::file::FileSettings;
use anyhow::{Context, anyhow, bail};
use std::net::IpAddr;
use std::path::PathBuf;

/// `--segment-size` (binary units: `64M` is 64 MiB) or else ftp-cloudfs's `split-large-files` (MB of 10^6
/// bytes; 0 means "not set" there, as ftp-cloudfs's default).
pub(super) fn segment_size(
    size: Option<String>,
    split_mb: Option<u64>,
) -> anyhow::Result<Option<u64>> {
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

/// `host:port` (a bracketed IPv6 address is fine).
pub(super) fn check_host_port(value: &str) -> anyhow::Result<()> {
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
pub(super) fn check_id(what: &str, value: &str) -> anyhow::Result<()> {
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

/// Applies ftp-cloudfs's banner substitutions: `%v` (swiftftp's version), `%f` (the FTP library, libunftp),
/// `%s` (the Swift client: swiftftp's own).
pub fn expand_banner(banner: &str) -> String {
    let version = env!("CARGO_PKG_VERSION");
    banner
        .replace("%v", version)
        .replace("%f", "libunftp 0.24")
        .replace("%s", version)
}

/// The daemon's pid file when none is named: in the runtime directory (the first of a colon-separated systemd
/// list), else `/run` for root, else none (never the shared temporary directory).
pub(super) fn default_pid_file(runtime: Option<std::ffi::OsString>, root: bool) -> Option<PathBuf> {
    let dir = runtime
        .map(|d| {
            let d = d.to_string_lossy().into_owned();
            PathBuf::from(d.split(':').next().unwrap_or_default())
        })
        .or_else(|| root.then(|| PathBuf::from("/run")))?;
    Some(dir.join("swiftftp.pid"))
}

/// The cache secret: `--cache-secret` (warned about when it came from the command line, where every local user
/// sees it in the process list), else `--cache-secret-file` (first line; refused when others may read it), else
/// the file's keys of the same names.
pub(super) fn cache_secret(
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
pub(super) fn networks(
    cli: Vec<String>,
    file: &FileSettings,
    key: &str,
) -> anyhow::Result<Vec<ipnet::IpNet>> {
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

pub(super) fn separator(
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
