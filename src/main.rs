//! The `swiftftp` binary: command line → configuration → pid file → detach → logging → runtime → serve → exit
//! code. The order, and why, is in `daemon.rs`.
//!
//! Exit codes: 0 after a clean shutdown (and, in the starting process of daemon mode, once the daemon serves),
//! 1 when starting or serving failed, 2 for a bad command line or configuration.

use clap::Parser;
use std::process::ExitCode;
use swiftftp::cli::Cli;
use swiftftp::config::Config;
use swiftftp::{daemon, logging, server};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(printed) = swiftftp::cli::print_generated(&cli, &mut std::io::stdout().lock()) {
        return match printed {
            Ok(()) => ExitCode::SUCCESS,
            // Piped into `head`, say: not a failure.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("swiftftp: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::from_cli(cli).and_then(absolute_paths) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("swiftftp: {e:#}");
            return ExitCode::from(2);
        }
    };
    let identity = match daemon::resolve_identity(config.uid.as_deref(), config.gid.as_deref()) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("swiftftp: {e:#}");
            return ExitCode::from(2);
        }
    };
    match start(config, identity) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("swiftftp: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn start(config: Config, identity: Option<daemon::Identity>) -> anyhow::Result<()> {
    // Bound (and the pid file locked) before detaching, so that those failures reach the terminal.
    let bound = server::bind(config.clone())?;
    let mut pid_file = config
        .pid_file_path()
        .map(|p| daemon::PidFile::lock(&p))
        .transpose()?;
    let readiness = if config.foreground {
        daemon::Readiness::default()
    } else {
        daemon::detach()?
    };
    let result = serve(config, identity, bound, pid_file.as_mut(), &readiness);
    if let Err(e) = &result {
        readiness.failed(&format!("{e:#}"));
    }
    drop(pid_file);
    result
}

fn serve(
    config: Config,
    identity: Option<daemon::Identity>,
    bound: server::Bound,
    pid_file: Option<&mut daemon::PidFile>,
    readiness: &daemon::Readiness,
) -> anyhow::Result<()> {
    if let Some(pid_file) = pid_file {
        pid_file.write_pid()?;
    }
    let logs = logging::init(&config)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    // The sockets are bound: nothing needs root any more. Dropped before the runtime starts its threads.
    if let Some(id) = &identity {
        daemon::drop_privileges(id)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    // Handlers first: a signal right after "ready" must start a graceful shutdown, not kill the process.
    let signals = {
        let _in_runtime = runtime.enter();
        daemon::on_hangup(logs, bound.certificate());
        daemon::ShutdownSignals::install()?
    };
    readiness.ready();
    let shutdown = signals.first();
    let result = runtime.block_on(bound.serve(async move {
        shutdown.await;
        daemon::stopping();
    }));
    // Blocking tasks (an upload's hashing, a DNS lookup) cut by the grace period must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// Daemon mode works from `/`: paths given relative to where swiftftp was started are made absolute first.
fn absolute_paths(mut config: Config) -> anyhow::Result<Config> {
    for path in [
        &mut config.logging.log_file,
        &mut config.pid_file,
        &mut config.ca_file,
    ]
    .into_iter()
    .flatten()
    {
        *path = std::path::absolute(&*path)?;
    }
    Ok(config)
}
