//! Process-level concerns: logging set-up and the shutdown signal.
//!
//! Logs go to stderr, or to `--log-file` (appended). libunftp logs through `slog` → `log`; the subscriber's
//! `log` bridge brings those records into the same output. `-v` turns on debug; `RUST_LOG` overrides both.
//! SIGTERM and SIGINT resolve the shutdown future; libunftp then stops accepting and gives transfers
//! `server::SHUTDOWN_GRACE` to end.
//!
//! Not yet here: daemon mode, pid file, privilege drop, syslog and log reopening (the configuration warns).

use crate::config::Config;
use anyhow::Context;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::{self, writer::BoxMakeWriter};
use tracing_subscriber::prelude::*;

/// Installs the global tracing subscriber per the configuration.
pub fn init_logging(config: &Config) -> anyhow::Result<()> {
    let default = if config.verbose { "debug" } else { "info" };
    let env_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // libunftp puts INFO spans on its handlers that Debug-print whole sessions (kilobytes per line, and the
    // user type); its log records carry the session's trace id already, so its spans are left out.
    let no_libunftp_spans =
        filter_fn(|meta| !(meta.is_span() && meta.target().starts_with("libunftp")));
    let layer = fmt::layer();
    let layer = match &config.log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening the log file {}", path.display()))?;
            layer
                .with_ansi(false)
                .with_writer(BoxMakeWriter::new(std::sync::Mutex::new(file)))
        }
        None => layer
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(BoxMakeWriter::new(std::io::stderr)),
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(env_filter).with_filter(no_libunftp_spans))
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the logger: {e}"))
}

/// Resolves on the first SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers: stop the gateway with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}
