//! The FTP listener: binds, accepts, hands each connection to libunftp, and shuts down gracefully.
//!
//! [`bind`] binds the FTP socket and the metrics socket (port 0 picks a free port, which the tests use), so the
//! caller can drop privileges before serving. [`Bound::serve`] accepts connections itself and gives each one to
//! libunftp's `Server::service` (a `Server` per connection: building one is a few `Arc` clones), rather than
//! letting libunftp's `listen` bind and accept, because:
//!
//! - the socket must be bound before the privilege drop, and libunftp's `listen` binds by address inside;
//! - libunftp's own shutdown closes every control connection at once, transfers or not (its control loop has a
//!   TODO for exactly that). Here the first signal closes the listening socket (new clients are refused), new
//!   transfers are refused with `451`, and running ones may finish within the grace period; then the process
//!   ends, closing idle sessions;
//! - connection limits (`max-connections`, `max-cons-per-ip`) must apply before libunftp greets: over them the
//!   client gets `421` and the socket is closed.
//!
//! Not here: FTP semantics (`ftp/`), process concerns (`daemon.rs`).

use crate::cache::{Cache, SharedTokenCache};
use crate::config::{Config, EndpointType, KeystoneVersion};
use crate::ftp::Shared;
use crate::ftp::limits::{Lockout, UserSessions};
use crate::ftp::listing_cache::ListingCache;
use crate::ftp::login::{SwiftAuthenticator, SwiftUser};
use crate::ftp::login_name::LoginScheme;
use crate::ftp::storage::SwiftStorage;
use crate::swift;
use crate::tls::Certificate;
use anyhow::Context;
use libunftp::ServerBuilder;
use libunftp::options::{ActivePassiveMode, FtpsRequired, PassiveHost, SiteMd5};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// After the last transfer ended, how long libunftp gets to write its final reply before the process ends.
const SETTLE: Duration = Duration::from_millis(300);

/// A gateway whose sockets are bound and whose Swift client is built (files such as `--ca-file` are read
/// before any privilege drop), ready to serve.
#[derive(Debug)]
pub struct Bound {
    config: Config,
    listener: std::net::TcpListener,
    addr: SocketAddr,
    metrics: Option<std::net::TcpListener>,
    /// The implicit FTPS listener and its address, if any.
    implicit: Option<(std::net::TcpListener, SocketAddr)>,
    shared: Arc<Shared>,
    /// The FTPS certificate (read now, before privileges are dropped; again on SIGHUP: `tls.rs`).
    tls: Option<Arc<Certificate>>,
}

/// Binds the FTP listening socket and the metrics listener, if any, and builds the Swift client and caches.
pub fn bind(config: Config) -> anyhow::Result<Bound> {
    // Swift requests are counted in our metrics; the Swift client only reports them.
    crate::swift::observe_requests(crate::metrics::swift_request);
    let (listener, addr) = listen(config.listen)?;
    let implicit = config.tls_implicit.map(listen).transpose()?;
    let metrics = config
        .metrics_address
        .map(crate::metrics::bind)
        .transpose()?;
    let shared = Arc::new(shared_state(&config)?);
    let tls = match &config.tls {
        Some(files) => Some(Arc::new(Certificate::load(files.clone())?)),
        None => None,
    };
    Ok(Bound {
        config,
        listener,
        addr,
        metrics,
        implicit,
        shared,
        tls,
    })
}

/// A non-blocking listening socket on `at`, and the address it got (`at` with port 0 picks one).
fn listen(at: SocketAddr) -> anyhow::Result<(std::net::TcpListener, SocketAddr)> {
    let listener =
        std::net::TcpListener::bind(at).with_context(|| format!("cannot listen on {at}"))?;
    listener
        .set_nonblocking(true)
        .context("setting the FTP socket non-blocking")?;
    let addr = listener.local_addr().context("reading the bound address")?;
    Ok((listener, addr))
}

/// The Swift client, the cache (in this process, or memcached shared with other instances) and the listing cache.
fn shared_state(config: &Config) -> anyhow::Result<Shared> {
    let ca_pem = match &config.ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("reading the CA file {}", path.display()))?,
        ),
        None => None,
    };
    let mut client = swift::Client::new(&swift::ClientConfig {
        insecure: config.insecure,
        ca_pem,
        read_timeout: config.swift_timeout,
        login_reuse: config.limits.login_cache_ttl,
        ..swift::ClientConfig::default()
    })
    .context("building the HTTP client")?;
    let secret = match &config.cache_secret {
        Some(s) => s.as_bytes().to_vec(),
        None => {
            use aws_lc_rs::rand::{SecureRandom, SystemRandom};
            let mut random = vec![0u8; 32];
            SystemRandom::new()
                .fill(&mut random)
                .map_err(|_| anyhow::anyhow!("no random numbers for the cache secret"))?;
            random
        }
    };
    let cache = Arc::new(if config.memcache.is_empty() {
        Cache::local(&secret)
    } else {
        Cache::memcached(&secret, &config.memcache)
    });
    if cache.is_shared() {
        client = client.with_shared_tokens(Arc::new(SharedTokenCache::new(Arc::clone(&cache))));
    }
    let listings = ListingCache::new(cache, config.cache_ttl);
    Ok(Shared::new(
        client,
        config.auth_url.clone(),
        listings,
        crate::ftp::StorageOptions::from_config(config),
        config.storage_policy.clone(),
    ))
}

impl Bound {
    /// The address FTP clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address implicit FTPS clients (`ftps://`) connect to, if served.
    pub fn implicit_tls_addr(&self) -> Option<SocketAddr> {
        self.implicit.as_ref().map(|(_, addr)| *addr)
    }

    /// The FTPS certificate, to reload on SIGHUP (`None` without FTPS).
    pub fn certificate(&self) -> Option<Arc<Certificate>> {
        self.tls.clone()
    }

    /// Serves FTP until `shutdown` resolves, then lets running transfers finish within the grace period.
    pub async fn serve<F>(self, shutdown: F) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let config = self.config;
        let shared = self.shared;
        let (auth, scheme) = auth_of(&config);
        let authenticator = Arc::new(SwiftAuthenticator::new(
            Arc::clone(&shared),
            auth,
            scheme,
            Lockout::new(
                config.limits.max_login_failures,
                config.limits.login_lockout,
            ),
            UserSessions::new(config.limits.max_sessions_per_user),
        ));
        let make_server = server_factory(
            &config,
            &shared,
            authenticator,
            self.tls.clone(),
            self.metrics.is_some(),
        );
        // A configuration libunftp refuses is found at start, not at the first client.
        make_server().context("configuring the FTP server")?;

        let _metrics_task = match self.metrics {
            Some(listener) => Some(serve_metrics(listener, &shared, &config)?),
            None => None,
        };

        let listener =
            tokio::net::TcpListener::from_std(self.listener).context("serving the FTP socket")?;
        let implicit_addr = self.implicit.as_ref().map(|(_, a)| a.to_string());
        let implicit = match self.implicit {
            Some((l, _)) => Some(
                tokio::net::TcpListener::from_std(l).context("serving the implicit FTPS socket")?,
            ),
            None => None,
        };
        tracing::info!(
            listen = %self.addr,
            implicit_tls = implicit_addr.as_deref().map(tracing::field::display),
            auth_url = %config.auth_url,
            keystone = config.keystone.enabled,
            "swiftftp {} serving FTP", env!("CARGO_PKG_VERSION")
        );
        let connections = Arc::new(Connections::new(
            config.limits.max_connections,
            config.limits.max_cons_per_ip,
        ));
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            // Which listener: the implicit FTPS one starts every connection with a TLS handshake.
            let (accepted, tls) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => (accepted, Tls::Explicit),
                Some(accepted) = async {
                    match &implicit {
                        Some(l) => Some(l.accept().await),
                        None => None,
                    }
                } => (accepted, Tls::Implicit),
            };
            // Replies go out at once: with Nagle's algorithm, the reply after a transfer's 150 waited for the
            // client's delayed ACK, ~40 ms per file (#15).
            if let Ok((stream, _)) = &accepted {
                let _ = stream.set_nodelay(true);
            }
            match accepted {
                Ok((_, peer))
                    if config.proxy_protocol
                        && !crate::proxy_protocol::trusted(
                            &config.proxy_protocol_from,
                            peer.ip(),
                        ) =>
                {
                    // Its header would name any client it liked: no greeting, and the socket is closed.
                    tracing::warn!(peer = %peer, "closing a connection from outside proxy-protocol-from");
                    crate::metrics::connection_refused();
                }
                Ok((stream, peer)) if config.proxy_protocol => {
                    // The header is read in the connection's own task: a slow one must not hold the others.
                    let connections = Arc::clone(&connections);
                    let make_server = make_server.clone();
                    tokio::spawn(async move {
                        let mut stream = stream;
                        match crate::proxy_protocol::read_client(&mut stream, peer).await {
                            Ok(client) => serve_connection(
                                stream,
                                client,
                                true,
                                tls,
                                &connections,
                                &make_server,
                            ),
                            Err(e) => {
                                tracing::warn!(peer = %peer, error = %e, "closing a connection without a valid PROXY header");
                            }
                        }
                    });
                }
                Ok((stream, peer)) => {
                    serve_connection(stream, peer, false, tls, &connections, &make_server);
                }
                Err(e) => {
                    // Out of file descriptors, typically: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        drop(listener);
        shared.transfers.drain(config.shutdown_grace, SETTLE).await;
        Ok(())
    }
}

/// What makes the libunftp `Server` of each connection (`Server::service_for_client`), configured once from
/// `config`: the authenticator, greeting, limits, passive ports, SITE commands, metrics and TLS.
fn server_factory(
    config: &Config,
    shared: &Arc<Shared>,
    authenticator: Arc<SwiftAuthenticator>,
    tls: Option<Arc<Certificate>>,
    metrics_on: bool,
) -> impl Fn() -> Result<libunftp::Server<SwiftStorage, SwiftUser>, libunftp::ServerError>
+ Clone
+ Send
+ Sync
+ 'static {
    let idle_timeout = config.limits.idle_timeout.as_secs();
    let login_timeout = config.limits.login_timeout;
    // libunftp wants a 'static greeting; it is made once per process.
    let greeting: &'static str = Box::leak(config.banner.clone().into_boxed_str());
    {
        let shared = Arc::clone(shared);
        let passive_ports = config.passive_ports.clone();
        let passive_host = config.masquerade_firewall.clone();
        let tls_required = config.tls_required;
        let permit_foreign = config.permit_foreign_addresses;
        let forwarded_data = config
            .proxy_protocol
            .then(|| config.proxy_protocol_from.clone());
        move || {
            let storage_shared = Arc::clone(&shared);
            let mut builder = ServerBuilder::<SwiftStorage, SwiftUser>::with_user_detail_provider(
                Box::new(move || SwiftStorage::new(Arc::clone(&storage_shared))),
                Arc::clone(&authenticator) as _,
            )
            // Without this, libunftp's default AnonymousAuthenticator would let everyone in.
            .authenticator(Arc::clone(&authenticator) as _)
            .greeting(greeting)
            .logger(crate::logging::libunftp_logger())
            .idle_session_timeout(idle_timeout)
            .login_timeout(login_timeout)
            .sitemd5(SiteMd5::All)
            // PORT as ftp-cloudfs allowed it: the patched libunftp connects only back to the client
            // unless foreign addresses are permitted, and never to a port below 1024.
            .active_passive_mode(ActivePassiveMode::ActiveAndPassive)
            .permit_foreign_addresses(permit_foreign);
            for name in crate::ftp::site::SITE_COMMANDS {
                builder = builder.site_command(name, crate::ftp::site::SiteCommands);
            }
            if metrics_on {
                builder = builder.metrics();
            }
            if let Some(from) = &forwarded_data {
                // Passive data connections forwarded by the balancer carry its PROXY header too.
                builder =
                    builder.data_peer(crate::proxy_protocol::ForwardedData { from: from.clone() });
            }
            if let Some(range) = &passive_ports {
                builder = builder.passive_ports(range.clone());
            }
            if let Some(host) = &passive_host {
                builder = builder.passive_host(PassiveHost::from(host.as_str()));
            }
            if let Some(tls) = &tls {
                // The certificate in force now: a reload (SIGHUP) reaches the connections after it.
                builder = builder.ftps_manual(tls.current());
                if tls_required {
                    builder = builder.ftps_required(FtpsRequired::All, FtpsRequired::All);
                }
            }
            builder.build()
        }
    }
}

/// Serves `/metrics` and `/health` on `listener` in a task of its own, stopped when the handle is dropped.
fn serve_metrics(
    listener: std::net::TcpListener,
    shared: &Arc<Shared>,
    config: &Config,
) -> anyhow::Result<AbortOnDrop> {
    let listener =
        tokio::net::TcpListener::from_std(listener).context("serving the metrics listener")?;
    let health_shared = Arc::clone(shared);
    let health: crate::metrics::HealthCheck = Arc::new(move || {
        let shared = Arc::clone(&health_shared);
        Box::pin(async move { shared.health().await })
    });
    tracing::info!(address = %config.metrics_address.map(|a| a.to_string()).unwrap_or_default(), "serving /metrics and /health");
    Ok(AbortOnDrop(tokio::spawn(crate::metrics::serve(
        listener, health,
    ))))
}

/// How a connection's TLS starts.
#[derive(Debug, Clone, Copy)]
enum Tls {
    /// In clear, upgraded by `AUTH TLS` if the client asks (or must).
    Explicit,
    /// With a TLS handshake before the greeting (implicit FTPS).
    Implicit,
}

/// Admits a connection from `client` under the limits and hands it to its own libunftp `Server` (told the client's
/// address when it came from a PROXY header: `proxied`), or refuses it with `421`.
fn serve_connection<M>(
    stream: tokio::net::TcpStream,
    client: SocketAddr,
    proxied: bool,
    tls: Tls,
    connections: &Arc<Connections>,
    make_server: &M,
) where
    M: Fn() -> Result<libunftp::Server<SwiftStorage, SwiftUser>, libunftp::ServerError>,
{
    let admitted = match connections.admit(client.ip()) {
        Ok(admitted) => admitted,
        Err(refusal) => {
            tokio::spawn(refuse(stream, client, refusal));
            return;
        }
    };
    match make_server() {
        Ok(server) => {
            tokio::spawn(async move {
                let _admitted = admitted;
                let named = proxied.then_some(client);
                let served = match tls {
                    Tls::Explicit => server.service_for_client(stream, named).await,
                    Tls::Implicit => server.service_implicit_tls(stream, named).await,
                };
                if let Err(e) = served {
                    tracing::warn!(client = %client, error = %e, "control connection failed");
                }
            });
        }
        Err(e) => tracing::error!(client = %client, error = %e, "cannot serve a connection"),
    }
}

/// Why a connection is turned away before libunftp sees it.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// `max-connections` are open.
    Total,
    /// `max-cons-per-ip` are open from this address.
    PerIp,
}

/// Open control connections, in all and per client address.
#[derive(Debug)]
struct Connections {
    max_total: u32,
    max_per_ip: u32,
    open: std::sync::Mutex<(u32, std::collections::HashMap<std::net::IpAddr, u32>)>,
}

/// One admitted connection; it leaves the counts when dropped (when its session ends).
struct Admitted {
    connections: Arc<Connections>,
    ip: std::net::IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        open.0 -= 1;
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

impl Connections {
    fn new(max_total: u32, max_per_ip: u32) -> Self {
        Self {
            max_total,
            max_per_ip,
            open: std::sync::Mutex::new((0, std::collections::HashMap::new())),
        }
    }

    fn admit(self: &Arc<Self>, ip: std::net::IpAddr) -> Result<Admitted, Refusal> {
        let ip = per_address_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if self.max_total > 0 && open.0 >= self.max_total {
            return Err(Refusal::Total);
        }
        let from_ip = open.1.get(&ip).copied().unwrap_or(0);
        if self.max_per_ip > 0 && from_ip >= self.max_per_ip {
            return Err(Refusal::PerIp);
        }
        open.0 += 1;
        open.1.insert(ip, from_ip + 1);
        Ok(Admitted {
            connections: Arc::clone(self),
            ip,
        })
    }
}

/// What `max-cons-per-ip` counts as one address: an IPv4 address, or an IPv6 /64 (one host or site is given a
/// whole /64 and can pick any address in it).
fn per_address_key(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip.to_canonical() {
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            std::net::IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Tells a turned-away client why (`421`, ftp-cloudfs's text for the per-address limit) and closes.
async fn refuse(mut stream: tokio::net::TcpStream, peer: SocketAddr, refusal: Refusal) {
    use tokio::io::AsyncWriteExt;
    let reply: &[u8] = match refusal {
        Refusal::Total => b"421 Too many connections, try again later.\r\n",
        Refusal::PerIp => b"421 Too many connections from the same IP address.\r\n",
    };
    tracing::info!(client = %peer, ?refusal, "connection refused: over the limit");
    crate::metrics::connection_refused();
    // A client that does not read gets no more than a second.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(reply).await;
        let _ = stream.shutdown().await;
    })
    .await;
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
    F: Future<Output = ()> + Send + 'static,
{
    bind(config)?.serve(shutdown).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_per_address_cap_counts_an_ipv6_slash_64_as_one_address() {
        let c = Arc::new(Connections::new(0, 2));
        let _a = c.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        let _b = c.admit("2001:db8:1:2:ffff::9".parse().unwrap()).unwrap();
        assert!(c.admit("2001:db8:1:2:abcd::1".parse().unwrap()).is_err());
        assert!(c.admit("2001:db8:1:3::1".parse().unwrap()).is_ok());
        let _v4 = c.admit("192.0.2.1".parse().unwrap()).unwrap();
        let _mapped = c.admit("::ffff:192.0.2.1".parse().unwrap()).unwrap();
        assert!(c.admit("192.0.2.1".parse().unwrap()).is_err());
        assert!(c.admit("192.0.2.2".parse().unwrap()).is_ok());
    }
}
