//! Where log lines go and what they look like.
//!
//! - Destination: `--syslog` (daemon facility; it wins over `--log-file`, as in ftp-cloudfs), else `--log-file`
//!   (appended, reopened by [`Logging::reopen`] on SIGHUP so logrotate can move it), else stderr in the
//!   foreground. A daemon with neither logs to syslog: ftp-cloudfs lost those lines to /dev/null.
//! - Format: text, or JSON lines (`--log-format json`). `-v` turns on debug; `RUST_LOG` overrides both.
//! - Sessions: every line about an FTP session runs in one `session{id=… client=… user=…}` span (JSON:
//!   `"span":{"id":…,"client":…,"user":…}`), ours and libunftp's alike, under one id: libunftp's own
//!   (`trace-id`), which `ftp/login.rs` gets with the credentials. [`session_span`] makes it; a logged-in
//!   session's span is [`register`]ed, and libunftp's lines of that session are emitted inside it, so they carry
//!   the user too. A connection not logged in gets the same fields without the user.
//! - libunftp logs through `slog`: [`libunftp_logger`] hands its records, with their keys, to tracing. Its
//!   tracing spans Debug-print whole sessions (kilobytes a line), so they are filtered out.
//! - What INFO says: one line per connection, per login (or refusal), per change (`STOR`, `DELE`, `MKD`, `RMD`,
//!   `RNTO`, `MFMT`, ...) and per download, each with its outcome; listings and lookups only when they fail
//!   for another reason than "not found" (at debug otherwise). `ftp/backend.rs` writes the operation lines.
//!
//! Secrets never reach a log: tokens and passwords live in `swift::Secret`, whose Debug and Display print a
//! placeholder, and no line prints a request's headers.

use crate::config::{Config, LogFormat};
use anyhow::Context;
use std::collections::HashMap;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::{self, MakeWriter, writer::BoxMakeWriter};
use tracing_subscriber::prelude::*;

/// The installed logger, for reopening its file.
#[derive(Debug, Default, Clone)]
pub struct Logging {
    file: Option<Arc<ReopenableFile>>,
}

impl Logging {
    /// Reopens the log file at its path (after logrotate moved it). A failure keeps writing to the old file.
    pub fn reopen(&self) {
        let Some(file) = &self.file else { return };
        match file.reopen() {
            Ok(()) => tracing::info!(path = %file.path.display(), "log file reopened"),
            Err(e) => {
                tracing::error!(path = %file.path.display(), error = %e, "cannot reopen the log file: still writing to the old one")
            }
        }
    }
}

/// A log file that can be swapped for a fresh open of the same path.
#[derive(Debug)]
struct ReopenableFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl ReopenableFile {
    fn open(path: PathBuf) -> std::io::Result<Self> {
        let file = Self::open_file(&path)?;
        Ok(Self {
            path,
            file: Mutex::new(file),
        })
    }

    /// Never through a symbolic link, nor a file with other hard links: the file is opened as root before the
    /// privilege drop, in a directory the unprivileged user may write to, where a planted link would make root
    /// append to any file.
    fn open_file(path: &std::path::Path) -> std::io::Result<File> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .mode(0o640)
            .open(path)?;
        if file.metadata()?.nlink() > 1 {
            return Err(std::io::Error::other(format!(
                "{} has other hard links: not writing a log through them",
                path.display()
            )));
        }
        Ok(file)
    }

    fn reopen(&self) -> std::io::Result<()> {
        let fresh = Self::open_file(&self.path)?;
        *self.file.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }
}

/// One formatted event is written with one `write_all`, under the lock.
struct FileWriter<'a>(&'a ReopenableFile);

impl Write for FileWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0
            .file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Clone)]
struct SharedFile(Arc<ReopenableFile>);

impl<'a> MakeWriter<'a> for SharedFile {
    type Writer = FileWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        FileWriter(&self.0)
    }
}

/// Where the lines go, decided from the configuration.
enum Destination {
    Syslog,
    File(PathBuf),
    Stderr,
}

fn destination(config: &Config) -> Destination {
    match (
        &config.logging.log_file,
        config.logging.syslog,
        config.foreground,
    ) {
        (_, true, _) | (None, false, false) => Destination::Syslog,
        (Some(path), false, _) => Destination::File(path.clone()),
        (None, false, true) => Destination::Stderr,
    }
}

/// Installs the global tracing subscriber per the configuration. Call it after daemonizing (syslog and file
/// handles then belong to the daemon) and before dropping privileges (the log file may be root's).
pub fn init(config: &Config) -> anyhow::Result<Logging> {
    let default = if config.logging.verbose {
        "debug"
    } else {
        "info"
    };
    let env_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let no_libunftp_spans =
        filter_fn(|meta| !(meta.is_span() && meta.target().starts_with("libunftp")));
    let mut logging = Logging::default();
    // syslog stamps its own time and program name.
    let (writer, ansi, with_time) = match destination(config) {
        Destination::Syslog => {
            let identity = c"swiftftp";
            let syslog = syslog_tracing::Syslog::new(
                identity,
                syslog_tracing::Options::LOG_PID,
                syslog_tracing::Facility::Daemon,
            )
            .context("opening syslog")?
            .invalid_chars(syslog_tracing::InvalidCharAction::Remove);
            (BoxMakeWriter::new(syslog), false, false)
        }
        Destination::File(path) => {
            let file = Arc::new(
                ReopenableFile::open(path.clone())
                    .with_context(|| format!("opening the log file {}", path.display()))?,
            );
            logging.file = Some(Arc::clone(&file));
            (BoxMakeWriter::new(SharedFile(file)), false, true)
        }
        Destination::Stderr => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::stderr().is_terminal(),
            true,
        ),
    };
    let layer = match (config.logging.format, with_time) {
        (LogFormat::Json, _) => fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .boxed(),
        (LogFormat::Text, true) => fmt::layer().with_ansi(ansi).with_writer(writer).boxed(),
        (LogFormat::Text, false) => fmt::layer()
            .with_ansi(false)
            .without_time()
            .with_writer(writer)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(env_filter).with_filter(no_libunftp_spans))
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the logger: {e}"))?;
    // A daemon's stderr is /dev/null: a panic (in any task) must reach the log, or it is silent.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(panic = %info, "panic");
        default_hook(info);
    }));
    Ok(logging)
}

/// `tracing::event!` at a level chosen at run time (the macro wants a constant one), with or without a target.
macro_rules! event_at {
    (target: $target:expr, $level:expr, $($rest:tt)+) => {
        match $level {
            tracing::Level::ERROR => tracing::event!(target: $target, tracing::Level::ERROR, $($rest)+),
            tracing::Level::WARN => tracing::event!(target: $target, tracing::Level::WARN, $($rest)+),
            tracing::Level::INFO => tracing::event!(target: $target, tracing::Level::INFO, $($rest)+),
            tracing::Level::DEBUG => tracing::event!(target: $target, tracing::Level::DEBUG, $($rest)+),
            tracing::Level::TRACE => tracing::event!(target: $target, tracing::Level::TRACE, $($rest)+),
        }
    };
    ($level:expr, $($rest:tt)+) => {
        match $level {
            tracing::Level::ERROR => tracing::event!(tracing::Level::ERROR, $($rest)+),
            tracing::Level::WARN => tracing::event!(tracing::Level::WARN, $($rest)+),
            tracing::Level::INFO => tracing::event!(tracing::Level::INFO, $($rest)+),
            tracing::Level::DEBUG => tracing::event!(tracing::Level::DEBUG, $($rest)+),
            tracing::Level::TRACE => tracing::event!(tracing::Level::TRACE, $($rest)+),
        }
    };
}
pub(crate) use event_at;

/// An error with its causes, each said once: `a: b: c`, a cause whose text the one before already contains left
/// out (many errors print their source in their own text).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// The span of one FTP session: its id (libunftp's trace id), the client's address; `user` is recorded at login.
/// At ERROR level so that it is on whenever any line is: a WARN line of a session must name it too.
pub fn session_span(id: &str, client: &str) -> tracing::Span {
    tracing::error_span!("session", id = %id, client = %client, user = tracing::field::Empty)
}

/// The spans of logged-in sessions by id, for libunftp's lines of those sessions.
static SESSIONS: LazyLock<Mutex<HashMap<String, tracing::Span>>> = LazyLock::new(Default::default);

/// Registers `span` as session `id`'s until the returned guard drops (with the session).
pub fn register(id: &str, span: &tracing::Span) -> Registered {
    SESSIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.to_owned(), span.clone());
    Registered(id.to_owned())
}

/// A registered session span; dropping it unregisters it.
#[derive(Debug)]
pub struct Registered(String);

impl Drop for Registered {
    fn drop(&mut self) {
        SESSIONS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
    }
}

/// The span a libunftp line of session `id` belongs in: the logged-in session's, else a fresh one.
fn span_of(id: &str, client: &str, user: Option<&str>) -> tracing::Span {
    let known = SESSIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(id)
        .cloned();
    known.unwrap_or_else(|| {
        let span = session_span(id, client);
        if let Some(user) = user {
            span.record("user", tracing::field::display(user));
        }
        span
    })
}

/// A slog logger for libunftp whose records become tracing events (target `libunftp`), keeping the keys libunftp
/// attaches to a session's logger (`trace-id`, `source`) as fields.
pub fn libunftp_logger() -> slog::Logger {
    slog::Logger::root(SlogToTracing, slog::o!())
}

/// The slog → tracing drain. (tracing-slog exists but drops the logger's own keys, which is where libunftp puts
/// the session's trace id.)
struct SlogToTracing;

/// Collects slog key-values as `key=value` pairs.
#[derive(Default)]
struct KeyValues {
    trace_id: Option<String>,
    source: Option<String>,
    username: Option<String>,
    rest: String,
}

impl slog::Serializer for KeyValues {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments<'_>) -> slog::Result {
        match key {
            "trace-id" => self.trace_id = Some(val.to_string()),
            "source" => self.source = Some(val.to_string()),
            // The session's span names the user (and a line outside one has no user key).
            "username" => self.username = Some(val.to_string()),
            _ => {
                if !self.rest.is_empty() {
                    self.rest.push(' ');
                }
                self.rest.push_str(&format!("{key}={val}"));
            }
        }
        Ok(())
    }
}

impl slog::Drain for SlogToTracing {
    type Ok = ();
    type Err = slog::Never;

    fn log(
        &self,
        record: &slog::Record<'_>,
        values: &slog::OwnedKVList,
    ) -> Result<Self::Ok, Self::Err> {
        use slog::KV;
        let level = match record.level() {
            slog::Level::Critical | slog::Level::Error => tracing::Level::ERROR,
            slog::Level::Warning => tracing::Level::WARN,
            slog::Level::Info => tracing::Level::INFO,
            slog::Level::Debug => tracing::Level::DEBUG,
            slog::Level::Trace => tracing::Level::TRACE,
        };
        // Most of libunftp's lines are debug: skip the work for a line nobody will see.
        let enabled = match level {
            tracing::Level::ERROR => tracing::enabled!(target: "libunftp", tracing::Level::ERROR),
            tracing::Level::WARN => tracing::enabled!(target: "libunftp", tracing::Level::WARN),
            tracing::Level::INFO => tracing::enabled!(target: "libunftp", tracing::Level::INFO),
            tracing::Level::DEBUG => tracing::enabled!(target: "libunftp", tracing::Level::DEBUG),
            tracing::Level::TRACE => tracing::enabled!(target: "libunftp", tracing::Level::TRACE),
        };
        if !enabled {
            return Ok(());
        }
        let mut kv = KeyValues::default();
        let _ = values.serialize(record, &mut kv);
        let _ = record.kv().serialize(record, &mut kv);
        let msg = record.msg().to_string();
        let extra = Some(kv.rest.as_str()).filter(|s| !s.is_empty());
        let emit = || event_at!(target: "libunftp", level, extra, "{msg}");
        match &kv.trace_id {
            Some(id) => span_of(
                id,
                kv.source.as_deref().unwrap_or_default(),
                kv.username.as_deref(),
            )
            .in_scope(emit),
            None => emit(),
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_log_file_is_never_opened_through_a_link() {
        let dir = std::env::temp_dir().join(format!("swiftftp-log-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("target");
        std::fs::write(&target, "not for logs").unwrap();
        let symlink = dir.join("symlink.log");
        let _ = std::fs::remove_file(&symlink);
        std::os::unix::fs::symlink(&target, &symlink).unwrap();
        assert!(ReopenableFile::open(symlink).is_err());
        let hardlink = dir.join("hardlink.log");
        let _ = std::fs::remove_file(&hardlink);
        std::fs::hard_link(&target, &hardlink).unwrap();
        assert!(ReopenableFile::open(hardlink).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "not for logs");
        assert!(ReopenableFile::open(dir.join("plain.log")).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
