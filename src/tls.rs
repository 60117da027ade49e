//! The FTPS certificate and key: loaded at start, loaded again on `SIGHUP` (a renewed certificate, from ACME
//! say, takes effect without a restart).
//!
//! Each new control connection gets the configuration current when it arrives (`server.rs` builds a libunftp
//! server per connection); connections already open keep theirs. A reload that fails (a missing or half-written
//! file, a key that does not match) keeps the old configuration and logs why. After `--uid`/`--gid` the files
//! are read as that user: a key only root may read loads at start but not on reload (logged).
//!
//! Not here: the TLS settings themselves (libunftp's `ftps_config`), the signal (`daemon.rs`).

use crate::config::TlsFiles;
use anyhow::Context;
use libunftp::options::TlsFlags;
use std::sync::{Arc, RwLock};

/// The FTPS configuration in force, and the files it comes from.
pub struct Certificate {
    files: TlsFiles,
    current: RwLock<Arc<libunftp::TlsServerConfig>>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// Loads the certificate chain and key of `files`.
    pub fn load(files: TlsFiles) -> anyhow::Result<Self> {
        let config = read(&files)?;
        Ok(Self {
            files,
            current: RwLock::new(config),
        })
    }

    /// The configuration for a new connection.
    pub fn current(&self) -> Arc<libunftp::TlsServerConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reads the files again; on failure the configuration in force stays, and the error says why.
    pub fn reload(&self) -> anyhow::Result<()> {
        let config = read(&self.files)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    /// [`Certificate::reload`], logged either way.
    pub fn reload_logged(&self) {
        match self.reload() {
            Ok(()) => tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded"),
            Err(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "TLS certificate not reloaded: the one loaded before stays in use"
                )
            }
        }
    }
}

fn read(files: &TlsFiles) -> anyhow::Result<Arc<libunftp::TlsServerConfig>> {
    libunftp::ftps_config(&files.cert, &files.key, flags()).with_context(|| {
        format!(
            "loading the TLS certificate {} and key {}",
            files.cert.display(),
            files.key.display()
        )
    })
}

/// TLS 1.2 and 1.3, with session resumption (by id and by ticket): clients resume the control channel's session
/// on data connections.
fn flags() -> TlsFlags {
    TlsFlags::V1_2 | TlsFlags::V1_3 | TlsFlags::RESUMPTION_SESS_ID | TlsFlags::RESUMPTION_TICKETS
}
