//! One function per group of options: the command line's value, else the configuration file's, else the
//! default, which is written here and nowhere else in the code (`tests/options_doc.rs` holds the docs to it).
//!
//! Not here: reading the file (`file.rs`), checks of single values (`values.rs`), checks across groups
//! (`Config::from_cli`).

use super::file::{FileSettings, parse_bool};
use super::values::{check_host_port, check_id, separator};
use super::{DEFAULT_MAX_CONS_PER_IP, KeystoneConfig, Limits, Logging, ONE_DAY, TlsFiles};
use crate::cli::Cli;
use anyhow::{Context, anyhow, bail};
use reqwest::Url;
use std::net::{IpAddr, SocketAddr};

/// What the file itself deserves a word about: keys ftp-cloudfs ignored, its yes-for-anything booleans, and
/// deprecated keys.
pub(super) fn file_warnings(file: &FileSettings) -> Vec<String> {
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
    warnings
}

/// `port` and `bind-address`: 127.0.0.1:2021 by default, as ftp-cloudfs.
pub(super) fn listen(cli: &Cli, file: &FileSettings) -> anyhow::Result<SocketAddr> {
    let port = file.number(cli.port, "port", 2021)?;
    let bind = file
        .string_or(&cli.bind_address, "bind-address")
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    let bind: IpAddr = bind
        .parse()
        .map_err(|_| anyhow!("bind address {bind:?} is not an IP address"))?;
    Ok(SocketAddr::new(bind, port))
}

/// `auth-url`: required, http or https.
pub(super) fn auth_url(cli: &Cli, file: &FileSettings) -> anyhow::Result<Url> {
    let auth_url = file.string_or(&cli.auth_url, "auth-url").ok_or_else(|| {
        // Which file was read, or that none was: the operator's first question.
        let read = match &file.path {
            Some(path) => format!("auth-url in {}", path.display()),
            None => format!(
                "auth-url in a configuration file: none was found at {}",
                super::file::DEFAULT_FILES
                    .map(|(path, _)| path)
                    .join(" or ")
            ),
        };
        anyhow!("An authentication URL is required and it wasn't provided (--auth-url, or {read})")
    })?;
    let auth_url = Url::parse(&auth_url).with_context(|| format!("auth URL {auth_url:?}"))?;
    if !matches!(auth_url.scheme(), "http" | "https") {
        bail!("auth URL {auth_url} must be http:// or https://");
    }
    Ok(auth_url)
}

/// The `keystone-*` options.
pub(super) fn keystone(cli: &Cli, file: &FileSettings) -> anyhow::Result<KeystoneConfig> {
    Ok(KeystoneConfig {
        enabled: file.flag(cli.keystone_auth, "keystone-auth")?,
        version: file.choice(cli.keystone_auth_version, "keystone-auth-version")?,
        region: file.string_or(&cli.keystone_region_name, "keystone-region-name"),
        tenant_separator: separator(
            cli.keystone_tenant_separator.clone(),
            file.get("keystone-tenant-separator"),
            ".",
            "keystone-tenant-separator",
        )?,
        domain_separator: separator(
            cli.keystone_domain_separator.clone(),
            file.get("keystone-domain-separator"),
            "@",
            "keystone-domain-separator",
        )?,
        service_type: file
            .string_or(&cli.keystone_service_type, "keystone-service-type")
            .unwrap_or_else(|| "object-store".to_owned()),
        endpoint_type: file.choice(cli.keystone_endpoint_type, "keystone-endpoint-type")?,
    })
}

/// `memcache`: the file's comma-separated servers, then every `--memcache`, each `host:port`.
pub(super) fn memcache(cli: &Cli, file: &FileSettings) -> anyhow::Result<Vec<String>> {
    let from_file = file.get("memcache").unwrap_or_default().split(',');
    let servers: Vec<String> = from_file
        .chain(cli.memcache.iter().map(String::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    for m in &servers {
        check_host_port(m).context("memcache server")?;
    }
    Ok(servers)
}

/// `verbose`, `log-file`, `syslog`, `log-format`.
pub(super) fn logging(cli: &Cli, file: &FileSettings) -> anyhow::Result<Logging> {
    Ok(Logging {
        verbose: file.flag(cli.verbose, "verbose")?,
        log_file: file.path_or(&cli.log_file, "log-file"),
        syslog: file.flag(cli.syslog, "syslog")?,
        format: file.choice(cli.log_format, "log-format")?,
    })
}

/// `metrics-address`: off by default.
pub(super) fn metrics_address(
    cli: &Cli,
    file: &FileSettings,
) -> anyhow::Result<Option<SocketAddr>> {
    file.string_or(&cli.metrics_address, "metrics-address")
        .map(|a| {
            a.parse::<SocketAddr>()
                .map_err(|_| anyhow!("metrics address {a:?} is not IP:PORT"))
        })
        .transpose()
}

/// `uid` or `gid`: a number or a name.
pub(super) fn identity(
    cli: &Option<String>,
    file: &FileSettings,
    key: &str,
) -> anyhow::Result<Option<String>> {
    let id = file.string_or(cli, key);
    if let Some(id) = &id {
        check_id(key, id)?;
    }
    Ok(id)
}

/// The connection, session, login and rename limits.
pub(super) fn limits(cli: &Cli, file: &FileSettings) -> anyhow::Result<Limits> {
    Ok(Limits {
        max_connections: file.number(cli.max_connections, "max-connections", 1000)?,
        max_cons_per_ip: file.number(
            cli.max_cons_per_ip,
            "max-cons-per-ip",
            DEFAULT_MAX_CONS_PER_IP,
        )?,
        login_timeout: Some(file.secs(cli.login_timeout, "login-timeout", 30)?)
            .filter(|t| !t.is_zero()),
        max_sessions_per_user: file.number(
            cli.max_sessions_per_user,
            "max-sessions-per-user",
            0,
        )?,
        rename_max_objects: file.number(cli.rename_max_objects, "rename-max-objects", 10_000)?,
        idle_timeout: file
            .secs(cli.idle_timeout, "idle-timeout", 300)?
            .max(super::ONE_SECOND),
        max_login_failures: file.number(cli.max_login_failures, "max-login-failures", 5)?,
        login_lockout: file
            .secs(cli.login_lockout, "login-lockout", 300)?
            .min(7 * ONE_DAY),
        login_cache_ttl: file
            .secs(cli.login_cache_ttl, "login-cache-ttl", 300)?
            .min(ONE_DAY),
    })
}

/// `tls-cert` and `tls-key`, which go together.
pub(super) fn tls(cli: &Cli, file: &FileSettings) -> anyhow::Result<Option<TlsFiles>> {
    match (
        file.path_or(&cli.tls_cert, "tls-cert"),
        file.path_or(&cli.tls_key, "tls-key"),
    ) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
        (None, None) => Ok(None),
        _ => bail!("tls-cert and tls-key go together"),
    }
}
