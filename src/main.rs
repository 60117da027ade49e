//! The `swiftftp` binary: command line → configuration → logging → runtime → [`swiftftp::run`] → exit code.
//!
//! Exit codes: 0 after a clean shutdown, 1 when serving failed, 2 for a bad command line or configuration.

use clap::Parser;
use std::process::ExitCode;
use swiftftp::cli::Cli;
use swiftftp::config::Config;
use swiftftp::daemon;

fn main() -> ExitCode {
    let config = match Config::from_cli(Cli::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("swiftftp: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = daemon::init_logging(&config) {
        eprintln!("swiftftp: {e:#}");
        return ExitCode::from(2);
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("swiftftp: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(swiftftp::run(config, daemon::shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("swiftftp: {e:#}");
            ExitCode::FAILURE
        }
    }
}
