//! The configuration file: ftp-cloudfs's INI format, read into text values by key, with the typed getters the
//! option groups use (booleans, numbers, seconds, paths, choices).
//!
//! Not here: what each key means and its default (`sections.rs`).

pub use crate::cli::parse_bool;
use anyhow::{Context, anyhow, bail};
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

/// The default files, in the order they are looked for, with the section each must use.
pub(super) const DEFAULT_FILES: [(&str, &str); 2] = [
    ("/etc/swiftftp.conf", "swiftftp"),
    ("/etc/ftpcloudfs.conf", "ftpcloudfs"),
];

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
    "tls-implicit-port",
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

/// The configuration file's settings, by key, as text.
#[derive(Debug, Default)]
pub(super) struct FileSettings {
    /// The file read, if any.
    pub(super) path: Option<PathBuf>,
    values: BTreeMap<String, String>,
    /// The section read: `[swiftftp]` or ftp-cloudfs's `[ftpcloudfs]`.
    pub(super) section: Option<String>,
    /// Unknown keys of an `[ftpcloudfs]` section, left out with a warning (ftp-cloudfs ignored them).
    pub(super) ignored: Vec<String>,
}

impl FileSettings {
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub(super) fn context(&self, key: &str) -> String {
        match &self.path {
            Some(p) => format!("key `{key}` in {}", p.display()),
            None => format!("key `{key}`"),
        }
    }

    pub(super) fn bool(&self, key: &str) -> anyhow::Result<Option<bool>> {
        self.get(key)
            .map(|v| parse_bool(v).with_context(|| self.context(key)))
            .transpose()
    }

    /// The command line's value, else the file's, else `default`.
    pub(super) fn number<T: std::str::FromStr>(
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

    pub(super) fn parsed<T: std::str::FromStr>(&self, key: &str) -> anyhow::Result<Option<T>>
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

    pub(super) fn string(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The command line's text, else the file's.
    pub(super) fn string_or(&self, cli: &Option<String>, key: &str) -> Option<String> {
        cli.clone().or_else(|| self.string(key))
    }

    /// The command line's path, else the file's.
    pub(super) fn path_or(&self, cli: &Option<PathBuf>, key: &str) -> Option<PathBuf> {
        cli.clone().or_else(|| self.string(key).map(PathBuf::from))
    }

    /// An on/off flag: the command line's `--flag[=yes|no]` (or its `SWIFTFTP_*` variable), else the file's
    /// boolean, else off.
    pub(super) fn flag(&self, cli: Option<bool>, key: &str) -> anyhow::Result<bool> {
        match cli {
            Some(on) => Ok(on),
            None => Ok(self.bool(key)?.unwrap_or(false)),
        }
    }

    /// Seconds from the command line, else the file, else `default`.
    pub(super) fn secs(
        &self,
        cli: Option<u64>,
        key: &str,
        default: u64,
    ) -> anyhow::Result<std::time::Duration> {
        Ok(std::time::Duration::from_secs(
            self.number(cli, key, default)?,
        ))
    }

    /// One of a set of values (the command line's, checked by clap; else the file's), else the default one.
    pub(super) fn choice<T: clap::ValueEnum + Default>(
        &self,
        cli: Option<T>,
        key: &str,
    ) -> anyhow::Result<T> {
        if let Some(v) = cli {
            return Ok(v);
        }
        let Some(text) = self.string(key) else {
            return Ok(T::default());
        };
        T::from_str(&text, false).map_err(|_| {
            let names: Vec<String> = T::value_variants()
                .iter()
                .filter_map(|v| v.to_possible_value())
                .map(|v| v.get_name().to_owned())
                .collect();
            anyhow!(
                "{}: {text:?} is not one of {}",
                self.context(key),
                names.join(", ")
            )
        })
    }

    /// A `min:max` port range, if the file sets one.
    pub(super) fn port_range(&self, key: &str) -> anyhow::Result<Option<RangeInclusive<u16>>> {
        self.get(key)
            .map(|v| parse_port_range(v).with_context(|| self.context(key)))
            .transpose()
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

pub(super) fn load_file(explicit: Option<&Path>) -> anyhow::Result<FileSettings> {
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
