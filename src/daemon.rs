//! The process around the server: detaching (daemon mode), the pid file and its lock, dropping privileges, and
//! signals.
//!
//! Order at start (`main.rs`), chosen so every failure is reported on the terminal with an exit code:
//! resolve `--uid`/`--gid` → bind the sockets → lock the pid file → detach ([`detach`]: the parent waits on a
//! pipe until the daemon says it serves, then exits 0, or prints the daemon's error and exits 1) → write the pid
//! → set up logging → [`drop_privileges`] → start the async runtime → tell the parent "ready" → serve.
//!
//! - The pid file is locked with `flock` before forking (the lock is shared with the daemon through the fork and
//!   outlives the parent), so a second instance fails at once with the holder's pid; it is removed on exit.
//! - Privileges are dropped after the listening sockets are bound (port 21 needs root) and before any thread
//!   exists, in daemon and foreground mode alike: setgid, setgroups (only that group), setuid, then a check that
//!   root cannot be regained.
//! - Under systemd (`Type=notify`) READY=1 is sent once the sockets are bound and privileges dropped, and
//!   STOPPING=1 when the graceful shutdown begins.
//! - SIGTERM/SIGINT start a graceful shutdown; a second one exits at once. SIGHUP reopens the log file and
//!   reloads the FTPS certificate.
//!
//! Not here: what runs (`server.rs`) and how lines are written (`logging.rs`).

use anyhow::{Context, anyhow, bail};
use nix::fcntl::{Flock, FlockArg};
use nix::unistd::{Gid, Group, Uid, User};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The user and group to switch to, resolved while names can still be looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user to become, if any.
    pub uid: Option<Uid>,
    /// The group to become (the user's primary group when only a user was named).
    pub gid: Option<Gid>,
}

/// Resolves `--uid` and `--gid` (numbers or names). `None` when neither was given.
pub fn resolve_identity(uid: Option<&str>, gid: Option<&str>) -> anyhow::Result<Option<Identity>> {
    if uid.is_none() && gid.is_none() {
        return Ok(None);
    }
    let user = uid
        .map(|u| {
            let found = match u.parse::<u32>() {
                Ok(n) => User::from_uid(Uid::from_raw(n)),
                Err(_) => User::from_name(u),
            };
            match found {
                Ok(Some(user)) => Ok((user.uid, Some(user.gid))),
                // A bare number needs no passwd entry (containers often have none).
                Ok(None) => match u.parse::<u32>() {
                    Ok(n) => Ok((Uid::from_raw(n), None)),
                    Err(_) => Err(anyhow!("--uid {u}: no such user")),
                },
                Err(e) => Err(anyhow!("--uid {u}: cannot look the user up: {e}")),
            }
        })
        .transpose()?;
    let group = gid
        .map(|g| match g.parse::<u32>() {
            Ok(n) => Ok(Gid::from_raw(n)),
            Err(_) => match Group::from_name(g) {
                Ok(Some(group)) => Ok(group.gid),
                Ok(None) => Err(anyhow!("--gid {g}: no such group")),
                Err(e) => Err(anyhow!("--gid {g}: cannot look the group up: {e}")),
            },
        })
        .transpose()?;
    let gid = group.or(user.and_then(|(_, primary)| primary));
    if user.is_some() && gid.is_none() {
        // Switching only the user would keep group 0 and root's supplementary groups.
        bail!(
            "--uid {}: no passwd entry gives its group: add --gid",
            uid.unwrap_or_default()
        );
    }
    Ok(Some(Identity {
        uid: user.map(|(uid, _)| uid),
        gid,
    }))
}

/// Switches to `identity`: setgid, setgroups (that group only), setuid; then checks the switch took and, when a
/// user was asked for, that root cannot be regained. Any failure is an error: the caller must not serve as root.
pub fn drop_privileges(identity: &Identity) -> anyhow::Result<()> {
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        // Without root nothing can be switched; running as the asked-for identity already is fine.
        let same_user = identity.uid.is_none_or(|u| u == euid);
        let same_group = identity.gid.is_none_or(|g| g == nix::unistd::getegid());
        if same_user && same_group {
            return Ok(());
        }
        bail!(
            "--uid/--gid: cannot switch identity when not started as root (running as uid {euid})"
        );
    }
    if let Some(gid) = identity.gid {
        nix::unistd::setgid(gid).with_context(|| format!("setgid({gid})"))?;
        nix::unistd::setgroups(&[gid]).with_context(|| format!("setgroups([{gid}])"))?;
    } else if identity.uid.is_some() {
        // Not reached (a uid always comes with a group), but never keep root's groups for another user.
        nix::unistd::setgroups(&[]).context("setgroups([])")?;
    }
    if let Some(uid) = identity.uid {
        nix::unistd::setuid(uid).with_context(|| format!("setuid({uid})"))?;
    }
    let (ruid, euid) = (nix::unistd::getuid(), nix::unistd::geteuid());
    if let Some(uid) = identity.uid {
        if ruid != uid || euid != uid {
            bail!("privilege drop did not take: uid {ruid}/{euid}, wanted {uid}");
        }
        if !uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
            bail!("privilege drop did not take: root could be regained");
        }
    }
    if let Some(gid) = identity.gid
        && (nix::unistd::getgid() != gid || nix::unistd::getegid() != gid)
    {
        bail!("privilege drop did not take: gid is not {gid}");
    }
    tracing::info!(
        uid = %nix::unistd::getuid(),
        gid = %nix::unistd::getgid(),
        "privileges dropped"
    );
    Ok(())
}

/// A locked pid file; removed when dropped (if the directory still lets us).
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    file: Flock<File>,
}

impl PidFile {
    /// Opens and locks `path`. Another running instance holding it is an error naming its pid.
    pub fn lock(path: &Path) -> anyhow::Result<Self> {
        // An instance that is exiting unlinks its file while still holding the lock: a lock taken on that
        // unlinked file would lock nothing anyone sees. Retry until the locked file is the one at the path.
        for _ in 0..10 {
            if let Some(locked) = Self::try_lock(path)? {
                return Ok(locked);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        bail!("the pid file {} keeps being replaced", path.display())
    }

    fn try_lock(path: &Path) -> anyhow::Result<Option<Self>> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            // Never follow a link planted where the pid file goes (we may be root, and we truncate it).
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(path)
            .with_context(|| format!("opening the pid file {}", path.display()))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(file) => {
                let same = match (file.metadata(), std::fs::symlink_metadata(path)) {
                    (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                    _ => false,
                };
                Ok(same.then(|| Self {
                    path: path.to_owned(),
                    file,
                }))
            }
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                bail!(
                    "swiftftp is already running (pid {}): {} is locked",
                    pid.trim(),
                    path.display()
                )
            }
            Err((_, e)) => Err(anyhow!("locking the pid file {}: {e}", path.display())),
        }
    }

    /// Writes the current process's pid (call it in the daemon, after forking).
    pub fn write_pid(&mut self) -> anyhow::Result<()> {
        let f: &mut File = &mut self.file;
        f.set_len(0)
            .and_then(|()| f.rewind())
            .and_then(|()| writeln!(f, "{}", std::process::id()))
            .and_then(|()| f.flush())
            .with_context(|| format!("writing the pid file {}", self.path.display()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Removed while still locked, so a new instance never sees our file unlocked with our pid in it.
        if let Err(e) = std::fs::remove_file(&self.path) {
            // After a privilege drop the directory is usually not ours (systemd's RuntimeDirectory= is): empty the
            // file through the descriptor opened before, so no stale pid is left to mislead.
            let f: &mut File = &mut self.file;
            let emptied = f.set_len(0).is_ok();
            tracing::info!(path = %self.path.display(), error = %e, emptied, "cannot remove the pid file (give the user a directory of its own for it)");
        }
    }
}

/// The daemon's end of the pipe its starting parent waits on.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<Mutex<Option<std::io::PipeWriter>>>);

impl Readiness {
    /// Tells the parent the daemon serves: it exits 0. Later calls do nothing. Under systemd (`Type=notify`,
    /// `NOTIFY_SOCKET` set) tells systemd too: the sockets are bound and privileges dropped by now.
    pub fn ready(&self) {
        self.send("ready\n");
        notify_systemd(sd_notify::NotifyState::Ready);
    }

    /// Tells the parent why the daemon could not start: it prints that and exits 1. Does nothing once ready.
    pub fn failed(&self, why: &str) {
        self.send(&format!("{why}\n"));
    }

    fn send(&self, what: &str) {
        if let Some(mut pipe) = self.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            // The parent may be gone (killed); the daemon goes on regardless.
            let _ = pipe.write_all(what.as_bytes());
        }
    }
}

/// Tells systemd that the graceful shutdown began (`STOPPING=1`): it then waits for the exit, not for a reply.
pub fn stopping() {
    notify_systemd(sd_notify::NotifyState::Stopping);
}

/// One sd_notify message; nothing without `NOTIFY_SOCKET`, and a failure is only logged (the service runs on).
fn notify_systemd(state: sd_notify::NotifyState<'_>) {
    if let Err(e) = sd_notify::notify(&[state]) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Detaches from the terminal (double fork, setsid, stdio to /dev/null, working directory `/`). Returns in the
/// daemon only; the starting process waits until the daemon reports through [`Readiness`] and exits with 0 or 1.
/// Call it before any thread is started (before the async runtime).
pub fn detach() -> anyhow::Result<Readiness> {
    let (mut reader, writer) = std::io::pipe().context("creating the start-up pipe")?;
    match daemonize::Daemonize::new().umask(0o027).execute() {
        daemonize::Outcome::Parent(Ok(_)) => {
            drop(writer);
            let mut said = String::new();
            let _ = reader.read_to_string(&mut said);
            // exit, not return: destructors (the pid file's lock) must not run in this process.
            if said.trim() == "ready" {
                std::process::exit(0);
            }
            let said = said.trim();
            if said.is_empty() {
                eprintln!("swiftftp: the daemon exited before it was ready (see its log)");
            } else {
                eprintln!("swiftftp: {said}");
            }
            std::process::exit(1);
        }
        daemonize::Outcome::Parent(Err(e)) => Err(anyhow!("cannot start the daemon: {e}")),
        daemonize::Outcome::Child(Ok(_)) => {
            drop(reader);
            Ok(Readiness(Arc::new(Mutex::new(Some(writer)))))
        }
        daemonize::Outcome::Child(Err(e)) => {
            let mut writer = writer;
            let _ = writeln!(writer, "cannot detach: {e}");
            std::process::exit(1);
        }
    }
}

/// SIGTERM and SIGINT handlers, installed as soon as the runtime exists (before the daemon says it is ready,
/// so an early signal is never the default "die now").
#[derive(Debug)]
pub struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Installs the handlers; call it inside the runtime.
    pub fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    /// Resolves on the first SIGTERM or SIGINT, and arms a second one to exit the process at once.
    pub async fn first(self) {
        let Self { mut term, mut int } = self;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down, letting transfers finish"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down, letting transfers finish"),
        }
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            tracing::warn!("second signal: exiting now, cutting running transfers");
            std::process::exit(1);
        });
    }
}

/// On every SIGHUP: reopens the log file (for logrotate) and reloads the FTPS certificate, if any (`tls.rs`).
pub fn on_hangup(
    logging: crate::logging::Logging,
    certificate: Option<std::sync::Arc<crate::tls::Certificate>>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!(
            "cannot install the SIGHUP handler: log files will not be reopened, nor certificates reloaded"
        );
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            logging.reopen();
            if let Some(certificate) = &certificate {
                certificate.reload_logged();
            }
        }
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ids_need_no_passwd_entry() {
        let id = resolve_identity(Some("64999"), Some("64998"))
            .unwrap()
            .unwrap();
        assert_eq!(id.uid, Some(Uid::from_raw(64999)));
        assert_eq!(id.gid, Some(Gid::from_raw(64998)));
    }

    #[test]
    fn a_user_name_brings_its_primary_group() {
        let id = resolve_identity(Some("root"), None).unwrap().unwrap();
        assert_eq!(id.uid, Some(Uid::from_raw(0)));
        assert_eq!(id.gid, Some(Gid::from_raw(0)));
        assert!(resolve_identity(None, None).unwrap().is_none());
        assert!(resolve_identity(Some("no-such-user-xyz"), None).is_err());
        assert!(resolve_identity(None, Some("no-such-group-xyz")).is_err());
    }

    #[test]
    fn a_second_lock_of_the_pid_file_names_the_holder() {
        let path = std::env::temp_dir().join(format!("swiftftp-pid-test-{}", std::process::id()));
        let mut first = PidFile::lock(&path).unwrap();
        first.write_pid().unwrap();
        let err = PidFile::lock(&path).unwrap_err().to_string();
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(first);
        assert!(!path.exists());
        drop(PidFile::lock(&path).unwrap());
    }
}
