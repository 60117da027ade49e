//! Builds the libunftp server from a [`Config`] and runs it until the shutdown future resolves.
//!
//! [`bind`] resolves the listening address first (port 0 picks a free port, which the tests use), so a caller
//! learns the address before serving, and binds the metrics listener; [`run`] is `bind` then `serve`. libunftp
//! binds the FTP socket itself inside `listen`, so the port is reserved by binding and releasing it: another
//! process could take it in between, in which case `serve` fails with the bind error rather than serving
//! elsewhere. For the same reason `serve` learns that libunftp is listening by watching the kernel's socket
//! table (`/proc/net/tcp`), and only then runs the caller's `on_listening` hook (the privilege drop and the
//! daemon's "ready").

use crate::config::{Config, EndpointType, KeystoneVersion};
use crate::ftp::Shared;
use crate::ftp::auth::{SwiftAuthenticator, SwiftUser};
use crate::ftp::login::LoginScheme;
use crate::ftp::storage::SwiftStorage;
use crate::swift;
use anyhow::Context;
use libunftp::ServerBuilder;
use libunftp::options::{PassiveHost, Shutdown, SiteMd5};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long `serve` waits for libunftp to be listening before giving up.
const LISTEN_WAIT: Duration = Duration::from_secs(10);

/// A gateway whose listening address is decided, ready to serve.
#[derive(Debug)]
pub struct Bound {
    config: Config,
    addr: SocketAddr,
    metrics: Option<std::net::TcpListener>,
}

/// Decides the listening address (checking it can be bound) and binds the metrics listener, if any.
pub fn bind(config: Config) -> anyhow::Result<Bound> {
    let probe = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = probe.local_addr().context("reading the bound address")?;
    drop(probe);
    let metrics = config.metrics_address.map(crate::metrics::bind).transpose()?;
    Ok(Bound {
        config,
        addr,
        metrics,
    })
}

/// Whether the kernel's socket table shows a TCP socket listening on `addr`'s port (`/proc/net/tcp` or
/// `/proc/net/tcp6`).
fn listening(addr: SocketAddr) -> bool {
    let table = if addr.is_ipv4() {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    };
    std::fs::read_to_string(table).is_ok_and(|t| table_has_listener(&t, addr.port()))
}

/// Parses a `/proc/net/tcp` table: is some socket in state LISTEN (`0A`) on `port`?
fn table_has_listener(table: &str, port: u16) -> bool {
    table.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1);
        let state = fields.nth(1);
        state == Some("0A")
            && local
                .and_then(|l| l.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                == Some(port)
    })
}

/// What `serve` runs once libunftp listens, before the first client is likely to be served: the privilege drop
/// and the daemon's "ready". An error stops the server.
pub type OnListening = Box<dyn FnOnce() -> anyhow::Result<()> + Send>;

impl Bound {
    /// The address FTP clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves FTP until `shutdown` resolves, then lets transfers finish for the configured grace period.
    pub async fn serve<F>(self, shutdown: F) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + Sync + 'static,
    {
        self.serve_with(shutdown, Box::new(|| Ok(()))).await
    }

    /// [`Bound::serve`], running `on_listening` once the FTP port listens.
    pub async fn serve_with<F>(self, shutdown: F, on_listening: OnListening) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + Sync + 'static,
    {
        let config = self.config;
        let grace = config.shutdown_grace;
        let ca_pem = match &config.ca_file {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("reading the CA file {}", path.display()))?,
            ),
            None => None,
        };
        let client = swift::Client::new(&swift::ClientConfig {
            insecure: config.insecure,
            ca_pem,
            read_timeout: config.swift_timeout,
            ..swift::ClientConfig::default()
        })
        .context("building the HTTP client")?;
        let shared = Arc::new(Shared::new(client, config.auth_url.clone()));
        let (auth, scheme) = auth_of(&config);
        let authenticator = Arc::new(SwiftAuthenticator::new(Arc::clone(&shared), auth, scheme));
        let storage_shared = Arc::clone(&shared);
        // libunftp wants a 'static greeting; it is made once per process.
        let greeting: &'static str = Box::leak(config.banner.clone().into_boxed_str());
        let mut builder = ServerBuilder::<SwiftStorage, SwiftUser>::with_user_detail_provider(
            Box::new(move || SwiftStorage::new(Arc::clone(&storage_shared))),
            Arc::clone(&authenticator) as _,
        )
        // Without this, libunftp's default AnonymousAuthenticator would let everyone in.
        .authenticator(authenticator)
        .greeting(greeting)
        .logger(crate::logging::libunftp_logger())
        .sitemd5(SiteMd5::None)
        .shutdown_indicator(async move {
            shutdown.await;
            Shutdown::new().grace_period(grace)
        });
        let metrics_task = match self.metrics {
            Some(listener) => {
                builder = builder.metrics();
                let listener = tokio::net::TcpListener::from_std(listener)
                    .context("serving the metrics listener")?;
                let health_shared = Arc::clone(&shared);
                let health: crate::metrics::HealthCheck = Arc::new(move || {
                    let shared = Arc::clone(&health_shared);
                    Box::pin(async move { shared.health().await })
                });
                tracing::info!(address = %config.metrics_address.map(|a| a.to_string()).unwrap_or_default(), "serving /metrics and /health");
                Some(AbortOnDrop(tokio::spawn(crate::metrics::serve(listener, health))))
            }
            None => None,
        };
        if let Some(range) = &config.passive_ports {
            builder = builder.passive_ports(range.clone());
        }
        if let Some(host) = &config.masquerade_firewall {
            builder = builder.passive_host(PassiveHost::from(host.as_str()));
        }
        let server = builder.build().context("configuring the FTP server")?;
        tracing::info!(
            listen = %self.addr,
            auth_url = %config.auth_url,
            keystone = config.keystone.enabled,
            "swiftftp {} serving FTP", env!("CARGO_PKG_VERSION")
        );
        let addr = self.addr;
        let mut listen = std::pin::pin!(server.listen(addr.to_string()));
        let waited = tokio::time::Instant::now();
        loop {
            tokio::select! {
                result = &mut listen => {
                    return result.with_context(|| format!("serving FTP on {addr}"));
                }
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
            if listening(addr) {
                break;
            }
            if waited.elapsed() > LISTEN_WAIT {
                anyhow::bail!("libunftp did not start listening on {addr} within {LISTEN_WAIT:?}");
            }
        }
        on_listening()?;
        let result = listen
            .await
            .with_context(|| format!("serving FTP on {addr}"));
        drop(metrics_task);
        result
    }
}

/// A spawned task that stops when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The auth method and login-name scheme the configuration asks for.
fn auth_of(config: &Config) -> (swift::AuthMethod, LoginScheme) {
    let k = &config.keystone;
    let catalog = swift::CatalogFilter {
        service_type: k.service_type.clone(),
        region: k.region.clone(),
        interface: match k.endpoint_type {
            EndpointType::Public => swift::Interface::Public,
            EndpointType::Internal => swift::Interface::Internal,
            EndpointType::Admin => swift::Interface::Admin,
        },
    };
    let auth_url = config.auth_url.clone();
    match (k.enabled, k.version) {
        (false, _) => (swift::AuthMethod::V1 { auth_url }, LoginScheme::V1),
        (true, KeystoneVersion::V2) => (
            swift::AuthMethod::KeystoneV2 { auth_url, catalog },
            LoginScheme::KeystoneV2 {
                tenant_sep: k.tenant_separator.clone(),
            },
        ),
        (true, KeystoneVersion::V3) => (
            swift::AuthMethod::KeystoneV3 { auth_url, catalog },
            LoginScheme::KeystoneV3 {
                tenant_sep: k.tenant_separator.clone(),
                domain_sep: k.domain_separator.clone(),
            },
        ),
    }
}

/// Serves FTP per `config` until `shutdown` resolves.
pub async fn run<F>(config: Config, shutdown: F) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + Sync + 'static,
{
    bind(config)?.serve(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::table_has_listener;

    #[test]
    fn reads_listeners_from_the_kernel_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:07E5 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n\
   1: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1\n";
        assert!(table_has_listener(table, 2021));
        // Established, not listening.
        assert!(!table_has_listener(table, 8080));
        assert!(!table_has_listener(table, 21));
        assert!(!table_has_listener("", 2021));
    }
}
