//! Builds the libunftp server from a [`Config`] and runs it until the shutdown future resolves.
//!
//! [`bind`] resolves the listening address first (port 0 picks a free port, which the tests use), so a caller
//! learns the address before serving; [`run`] is `bind` then `serve`. libunftp binds the socket itself inside
//! `listen`, so the port is reserved by binding and releasing it: another process could take it in between, in
//! which case `serve` fails with the bind error rather than serving elsewhere.

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

/// How long running transfers may go on after a shutdown signal before the process exits.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A gateway whose listening address is decided, ready to serve.
#[derive(Debug)]
pub struct Bound {
    config: Config,
    addr: SocketAddr,
}

/// Decides the listening address (checking it can be bound).
pub fn bind(config: Config) -> anyhow::Result<Bound> {
    let probe = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = probe.local_addr().context("reading the bound address")?;
    drop(probe);
    Ok(Bound { config, addr })
}

impl Bound {
    /// The address FTP clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves FTP until `shutdown` resolves, then lets transfers finish for [`SHUTDOWN_GRACE`].
    pub async fn serve<F>(self, shutdown: F) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + Sync + 'static,
    {
        let config = self.config;
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
        let shared = Arc::new(Shared::new(client));
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
        .sitemd5(SiteMd5::None)
        .shutdown_indicator(async move {
            shutdown.await;
            Shutdown::new().grace_period(SHUTDOWN_GRACE)
        });
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
        server
            .listen(self.addr.to_string())
            .await
            .with_context(|| format!("serving FTP on {}", self.addr))
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
