//! `SwiftStorage`: libunftp's `StorageBackend`, each method resolving its path to a [`Location`] and making one
//! or two Swift calls.
//!
//! The read path lives here: metadata (SIZE, MDTM, MLST), CWD, LIST/NLST/MLSD/STAT listings, RETR with REST.
//! Writes delegate to `write.rs` (STOR, MKD, RMD, DELE) and `rename.rs` (RNFR/RNTO).
//!
//! Costs, per command: CWD and SIZE/MDTM of an object make a HEAD and a two-entry prefix listing concurrently
//! (the prefix listing is what finds pseudo-directories with no marker, and lets a directory win over a file of
//! the same name); listings page through Swift until an empty page and HEAD only the 0-byte files that may be
//! Dynamic Large Object manifests (whose listing size is 0), at most [`HEAD_CONCURRENCY`] at a time. Which ones
//! may be is `dlo-check`: by default only those whose segments are where the known writers put them, found
//! with one listing of `<container>_segments` (so a folder of thousands of empty files costs two listings,
//! not thousands of HEADs); DLOs whose manifests point elsewhere then show 0 bytes unless `dlo-check = all`.

use super::Shared;
use super::auth::SwiftUser;
use super::error::FtpError;
use super::listing::{DirEntries, Meta, is_marker_content_type, list_line};
use super::listing_cache::Listing;
use super::location::Location;
use crate::config::DloCheck;
use crate::swift::{self, ObjectHead};
use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use std::fmt::Debug;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tracing::Instrument;
use unftp_core::storage::{
    Error as StorageError, FEATURE_MFMT, FEATURE_RESTART, FEATURE_SITEMD5, Fileinfo, Metadata,
    Result, StorageBackend,
};

/// HEADs in flight at once while sizing 0-byte listing entries.
pub const HEAD_CONCURRENCY: usize = 16;

/// The backend libunftp creates per control connection (cheap: an `Arc` and an empty slot).
#[derive(Debug)]
pub struct SwiftStorage {
    pub(super) shared: Arc<Shared>,
    /// The last path whose metadata could not be read for a reason other than "not found". libunftp's APPE asks
    /// for the file's size first and, on *any* error, appends at 0, i.e. overwrites: an upload to this path is
    /// refused once (451) rather than risk replacing a file that may well exist.
    unknown_state: std::sync::Mutex<Option<Location>>,
    /// Counts this connection in the sessions gauge while it lives.
    _counted: crate::metrics::SessionGuard,
}

/// What exists at an object path.
#[derive(Debug)]
pub(super) struct Probe {
    /// `HEAD` of the key itself, when it exists (a file, or a marker object).
    pub(super) head: Option<ObjectHead>,
    /// A `key/` object exists (the trailing-slash marker convention).
    pub(super) slash_marker: bool,
    /// Something other than that marker exists below `key/`.
    pub(super) has_children: bool,
}

impl Probe {
    /// Anything at all is there.
    pub(super) fn exists(&self) -> bool {
        self.head.is_some() || self.slash_marker || self.has_children
    }

    /// It is a directory: a marker of either convention, or children (a directory wins over a same-named file).
    pub(super) fn is_dir(&self) -> bool {
        self.head.as_ref().is_some_and(is_marker) || self.slash_marker || self.has_children
    }
}

impl SwiftStorage {
    /// A backend over the gateway's shared state.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            unknown_state: std::sync::Mutex::new(None),
            _counted: crate::metrics::SessionGuard::start(),
        }
    }

    fn remember_unknown(&self, loc: Option<Location>) {
        *self.unknown_state.lock().unwrap_or_else(|e| e.into_inner()) = loc;
    }

    /// Whether an upload to `loc` must be refused because a size lookup of it just failed (see `unknown_state`).
    fn take_unknown(&self, loc: &Location) -> bool {
        let mut slot = self.unknown_state.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref() == Some(loc) {
            *slot = None;
            return true;
        }
        false
    }

    pub(super) fn locate<P: AsRef<Path>>(
        &self,
        path: P,
    ) -> std::result::Result<Location, FtpError> {
        let loc = Location::parse(path.as_ref())?;
        let info = self.shared.info();
        loc.check_limits(info.max_container_name_length, info.max_object_name_length)?;
        Ok(loc)
    }

    /// What exists at an object path (one HEAD and a two-entry prefix listing, concurrently). A missing
    /// container is `NotFound` for the container.
    pub(super) async fn probe(
        &self,
        session: &swift::Session,
        container: &str,
        key: &str,
    ) -> std::result::Result<Probe, FtpError> {
        let (head, below) = tokio::join!(
            session.head_object(container, key),
            self.below(session, container, key),
        );
        let (slash_marker, has_children) = below?;
        let head = match head {
            Ok(h) => Some(h),
            Err(e) if e.kind() == swift::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Probe {
            head,
            slash_marker,
            has_children,
        })
    }

    /// What is below `key/`: a `key/` marker object, and anything else (one listing of two entries). A missing
    /// container is [`FtpError::NotFound`].
    pub(super) async fn below(
        &self,
        session: &swift::Session,
        container: &str,
        key: &str,
    ) -> std::result::Result<(bool, bool), FtpError> {
        let prefix = Location::dir_prefix(key);
        let children = match session
            .list_objects_page(container, &prefix, Some('/'), None, Some(2))
            .await
        {
            Ok(page) => page,
            Err(e) if e.kind() == swift::ErrorKind::NotFound => {
                return Err(FtpError::NotFound(Location::Container(
                    container.to_owned(),
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let is_slash_marker =
            |e: &swift::ObjectEntry| matches!(e, swift::ObjectEntry::Object(o) if o.name == prefix);
        Ok((
            children.iter().any(is_slash_marker),
            children.iter().any(|e| !is_slash_marker(e)),
        ))
    }

    /// What is at an object path: a directory (marker or pseudo-directory, which wins over a same-named file),
    /// a file, or nothing.
    async fn stat_object(
        &self,
        session: &swift::Session,
        loc: &Location,
        container: &str,
        key: &str,
    ) -> std::result::Result<Meta, FtpError> {
        let probe = self.probe(session, container, key).await?;
        match &probe.head {
            _ if !probe.exists() => Err(FtpError::NotFound(loc.clone())),
            Some(h) if is_marker(h) => Ok(Meta {
                modified: h.last_modified,
                ..Meta::dir()
            }),
            _ if probe.is_dir() => Ok(Meta::dir()),
            Some(h) => Ok(Meta::file(h.content_length, file_time(h))),
            None => Ok(Meta::dir()),
        }
    }

    async fn metadata_of(
        &self,
        user: &SwiftUser,
        loc: &Location,
    ) -> std::result::Result<Meta, FtpError> {
        let session = &user.session;
        if let Some(meta) = self.shared.listings.entry(user, loc).await {
            return Ok(meta);
        }
        match loc {
            Location::Root => Ok(Meta::dir()),
            Location::Container(c) => {
                let head = session
                    .head_container(c)
                    .await
                    .map_err(|e| not_found(e, loc))?;
                Ok(Meta {
                    dir: true,
                    size: head.bytes,
                    modified: head.created,
                    links: head.count,
                })
            }
            Location::Object { container, key } => {
                self.stat_object(session, loc, container, key).await
            }
        }
    }

    /// Everything `LIST`, `NLST`, `MLSD` and `STAT` show for a path: from the listing cache, or from Swift (and
    /// then cached).
    async fn listing(
        &self,
        user: &SwiftUser,
        loc: &Location,
    ) -> std::result::Result<Arc<Listing>, FtpError> {
        let (cached, seen) = self.shared.listings.lookup(user, loc).await;
        if let Some(cached) = cached {
            return Ok(cached);
        }
        let listing = Arc::new(self.listing_from_swift(user, loc).await?);
        self.shared.listings.put(user, loc, &listing, seen).await;
        Ok(listing)
    }

    async fn listing_from_swift(
        &self,
        user: &SwiftUser,
        loc: &Location,
    ) -> std::result::Result<Listing, FtpError> {
        let session = &user.session;
        let mut dir = DirEntries::default();
        match loc {
            Location::Root => {
                let mut containers = std::pin::pin!(session.list_account());
                let mut all = Vec::new();
                loop {
                    match containers.try_next().await {
                        Ok(Some(c)) => all.push(c),
                        Ok(None) => break,
                        // A user whose access comes from container ACLs may not list the account: show an
                        // empty root (as ftp-cloudfs did) so that clients can still enter the containers.
                        Err(e) if e.kind() == swift::ErrorKind::PermissionDenied => {
                            tracing::info!(user = %user.login, "the account listing is forbidden: showing an empty root");
                            break;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                let names: Vec<String> = all.iter().map(|c| c.name.clone()).collect();
                let shown = self.shared.policy.shown(session, &names).await;
                for (c, _) in all.into_iter().zip(shown).filter(|(_, shown)| *shown) {
                    let meta = Meta {
                        dir: true,
                        size: c.bytes,
                        modified: c.last_modified,
                        links: c.count,
                    };
                    dir.add(&c.name, meta);
                }
                if self.shared.options.hide_segments {
                    dir.hide_segment_containers();
                }
                return Ok(Listing::Dir(dir));
            }
            Location::Container(container) => {
                let mut entries = std::pin::pin!(session.list_objects(container, "", Some('/')));
                while let Some(e) = entries.try_next().await.map_err(|e| not_found(e, loc))? {
                    dir.add_swift_entry("", e);
                }
                if dir.is_empty() {
                    // An empty listing of a missing container is a 404 already; of an existing one, it is empty.
                    session
                        .head_container(container)
                        .await
                        .map_err(|e| not_found(e, loc))?;
                }
                self.size_large_objects(user, container, "", &mut dir).await;
                if self.shared.options.hide_part_dir {
                    dir.hide_part_dirs();
                }
            }
            Location::Object { container, key } => {
                let prefix = Location::dir_prefix(key);
                let mut entries =
                    std::pin::pin!(session.list_objects(container, &prefix, Some('/')));
                // Anything under `key/`, even only the `key/` marker object itself, makes it a directory.
                let mut exists = false;
                while let Some(e) = entries.try_next().await.map_err(|e| not_found(e, loc))? {
                    exists = true;
                    dir.add_swift_entry(&prefix, e);
                }
                if !exists {
                    // No children: an empty marker directory, a file (LIST of a file lists that file), or nothing.
                    return match session.head_object(container, key).await {
                        Ok(h) if is_marker(&h) => Ok(Listing::Dir(dir)),
                        Ok(h) => {
                            let name = key.rsplit('/').next().unwrap_or(key).to_owned();
                            Ok(Listing::File(
                                name,
                                Meta::file(h.content_length, file_time(&h)),
                            ))
                        }
                        Err(e) => Err(not_found(e, loc)),
                    };
                }
                self.size_large_objects(user, container, &prefix, &mut dir)
                    .await;
                if self.shared.options.hide_part_dir {
                    dir.hide_part_dirs();
                }
            }
        }
        Ok(Listing::Dir(dir))
    }

    /// Replaces the listing size (0) of Dynamic Large Object manifests with their real size: one HEAD per
    /// 0-byte entry (concurrently), whose result is remembered per object version. A failed HEAD leaves the
    /// entry at 0 (the listing still works; the log says why).
    async fn size_large_objects(
        &self,
        user: &SwiftUser,
        container: &str,
        prefix: &str,
        dir: &mut DirEntries,
    ) {
        let mut candidates = dir.zero_byte_files();
        match self.shared.options.dlo_check {
            DloCheck::None => return,
            DloCheck::All => {}
            // A handful costs one round of concurrent HEADs: no cheaper than the segments listing.
            DloCheck::Segments if candidates.len() <= HEAD_CONCURRENCY => {}
            DloCheck::Segments => {
                if let Some(segmented) = self.segmented_names(user, container, prefix).await {
                    candidates
                        .retain(|(name, _)| dir.has_part_dir(name) || segmented.contains(name));
                }
            }
        }
        if candidates.is_empty() {
            return;
        }
        let session = &user.session;
        let cache = &self.shared.listings;
        let sizes: Vec<(String, Option<u64>)> = futures_util::stream::iter(candidates)
            .map(|(name, modified)| async move {
                let key = format!("{prefix}{name}");
                let path = format!("{container}/{key}");
                if let Some(known) = cache.dlo_size(user, &path, modified).await {
                    return (name, known);
                }
                match session.head_object(container, &key).await {
                    Ok(h) => {
                        let size = h.dlo_manifest.is_some().then_some(h.content_length);
                        // Remembered under the version the listing showed; a HEAD racing a change may see a
                        // newer one, which then only costs another HEAD next time.
                        cache.set_dlo_size(user, &path, modified, size).await;
                        (name, size)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot size a possible large object");
                        (name, None)
                    }
                }
            })
            .buffer_unordered(HEAD_CONCURRENCY)
            .collect()
            .await;
        for (name, size) in sizes {
            if let Some(size) = size {
                dir.set_size(&name, size);
            }
        }
    }

    /// The names under `prefix` that have segments where python-swiftclient and rclone put a DLO's segments,
    /// `<container>_segments/<prefix><name>/...`: one delimited listing of that container. `None` when it cannot
    /// be told (every 0-byte entry is then HEADed); a missing or forbidden segments container holds none (a
    /// DLO whose segments the user cannot read cannot be downloaded by that user either).
    async fn segmented_names(
        &self,
        user: &SwiftUser,
        container: &str,
        prefix: &str,
    ) -> Option<std::collections::HashSet<String>> {
        let mut names = std::collections::HashSet::new();
        if container.ends_with(swift::SEGMENTS_SUFFIX) {
            return Some(names);
        }
        let segments = format!("{container}{}", swift::SEGMENTS_SUFFIX);
        let mut entries = std::pin::pin!(user.session.list_objects(&segments, prefix, Some('/')));
        loop {
            match entries.try_next().await {
                Ok(Some(swift::ObjectEntry::Subdir(sub))) => {
                    if let Some(name) = sub.strip_prefix(prefix).and_then(|n| n.strip_suffix('/')) {
                        names.insert(name.to_owned());
                    }
                }
                Ok(Some(swift::ObjectEntry::Object(_))) => {}
                Ok(None) => return Some(names),
                Err(e)
                    if matches!(
                        e.kind(),
                        swift::ErrorKind::NotFound | swift::ErrorKind::PermissionDenied
                    ) =>
                {
                    return Some(std::collections::HashSet::new());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list the segments container: checking every empty file");
                    return None;
                }
            }
        }
    }

    /// `LIST` (and `STAT path`) lines for a path.
    async fn list_lines(
        &self,
        user: &SwiftUser,
        path: &Path,
    ) -> std::result::Result<Vec<String>, StorageError> {
        let loc = self.locate(path).map_err(FtpError::into_storage_error)?;
        let listing = self
            .listing(user, &loc)
            .await
            .map_err(FtpError::in_directory_context)?;
        let now = SystemTime::now();
        Ok(match listing.as_ref() {
            Listing::Dir(dir) => dir
                .entries()
                .map(|(name, meta)| list_line(name, meta, &user.owner, now))
                .collect(),
            Listing::File(name, meta) => vec![list_line(name, meta, &user.owner, now)],
        })
    }

    async fn download<W>(
        &self,
        user: &SwiftUser,
        loc: &Location,
        start_pos: u64,
        output: &mut W,
        sent_so_far: &std::sync::atomic::AtomicU64,
    ) -> std::result::Result<u64, FtpError>
    where
        W: AsyncWrite + Unpin + Send + ?Sized,
    {
        let Location::Object { container, key } = loc else {
            return Err(FtpError::NotAFile(loc.clone()));
        };
        let session = &user.session;
        let download = match session.get_object(container, key, start_pos).await {
            Ok(d) => d,
            Err(e) if e.kind() == swift::ErrorKind::RangeNotSatisfiable => {
                // Swift answers 416 for `bytes=N-` at N == size too; restarting exactly at the end is a valid,
                // empty transfer.
                let head = session.head_object(container, key).await?;
                if head.content_length == start_pos && !is_marker(&head) {
                    return Ok(0);
                }
                return Err(FtpError::RestartBeyondEnd {
                    location: loc.clone(),
                    offset: start_pos,
                    size: head.content_length,
                });
            }
            Err(e) if e.kind() == swift::ErrorKind::NotFound => {
                return Err(FtpError::NotFound(loc.clone()));
            }
            Err(e) => return Err(e.into()),
        };
        if is_marker(&download.head) {
            return Err(FtpError::NotAFile(loc.clone()));
        }
        let mut body = download.into_stream();
        let mut sent = 0u64;
        let idle = session.idle_timeout();
        loop {
            // Swift may pause between chunks, but not for longer than the client's answer timeout.
            let next = tokio::time::timeout(idle, body.try_next())
                .await
                .map_err(|_| {
                    swift::Error::timed_out(swift::Op::GetObject {
                        container: container.clone(),
                        key: key.clone(),
                    })
                })?;
            let Some(chunk) = next? else { break };
            output
                .write_all(&chunk)
                .await
                .map_err(FtpError::ClientGone)?;
            sent += chunk.len() as u64;
            sent_so_far.store(sent, std::sync::atomic::Ordering::Relaxed);
        }
        output.flush().await.map_err(FtpError::ClientGone)?;
        Ok(sent)
    }
}

/// A file's time: the one `MFMT` set (`mtime.rs`), else when Swift last wrote it; the same rule as listings.
fn file_time(head: &ObjectHead) -> Option<SystemTime> {
    head.content_type
        .as_deref()
        .and_then(super::mtime::from_content_type)
        .or(head.last_modified)
}

pub(super) fn is_marker(head: &ObjectHead) -> bool {
    head.content_type
        .as_deref()
        .is_some_and(is_marker_content_type)
}

/// A Swift 404 on a path the user named is "no such file or directory" for that path.
pub(super) fn not_found(e: swift::Error, loc: &Location) -> FtpError {
    if e.kind() == swift::ErrorKind::NotFound {
        FtpError::NotFound(loc.clone())
    } else {
        e.into()
    }
}

/// What a failure is about, for its reply: "File not found" or "Directory not found".
#[derive(Debug, Clone, Copy)]
enum On {
    File,
    Dir,
}

impl SwiftStorage {
    /// Resolves `path`, runs `f` on the location, and turns a failure into its reply, logged with its cause:
    /// the one shape of every backend method.
    async fn at<T, F, Fut>(
        &self,
        user: &SwiftUser,
        op: &'static str,
        path: &Path,
        on: On,
        f: F,
    ) -> Result<T>
    where
        F: FnOnce(Location) -> Fut,
        Fut: Future<Output = std::result::Result<T, FtpError>>,
    {
        async {
            let result = match self.locate(path) {
                Ok(loc) => f(loc).await,
                Err(e) => Err(e),
            };
            result.map_err(|e| {
                let e = match on {
                    On::File => e.into_storage_error(),
                    On::Dir => e.in_directory_context(),
                };
                logged(op, path, e)
            })
        }
        .instrument(user.span.clone())
        .await
    }
}

impl SwiftStorage {
    /// [`SwiftStorage::at`] for a command that writes: once `f` is done (successful or not: a failure may have
    /// changed something), the cached listings the location touches are forgotten.
    async fn write_at<T, F, Fut>(
        &self,
        user: &SwiftUser,
        op: &'static str,
        path: &Path,
        on: On,
        f: F,
    ) -> Result<T>
    where
        F: FnOnce(Location) -> Fut,
        Fut: Future<Output = std::result::Result<T, FtpError>>,
    {
        if op != "MFMT" {
            // Any other write may change what `MFMT` would skip its `HEAD` for.
            *user.just_stored.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        self.at(user, op, path, on, |loc| async move {
            let touched = loc.clone();
            let result = f(loc).await;
            self.shared.listings.invalidate(user, &touched).await;
            result
        })
        .await
    }
}

/// The one log line and the metrics of a finished transfer (bytes of a failed upload are not known: 0).
fn transferred<T>(
    user: &SwiftUser,
    command: &'static str,
    path: &Path,
    started: std::time::Instant,
    bytes: u64,
    result: &Result<T>,
) {
    let seconds = started.elapsed().as_secs_f64();
    let _in = user.span.enter();
    match result {
        Ok(_) => {
            tracing::info!(command, path = %path.display(), bytes, seconds, result = "ok", "transfer")
        }
        Err(e) => {
            tracing::info!(command, path = %path.display(), bytes, seconds, result = %e, "transfer")
        }
    }
    crate::metrics::transfer(command, result.is_ok(), bytes);
}

/// Logs a failure with its cause (the reply text is fixed by libunftp) and converts it.
pub(super) fn logged(op: &'static str, path: &Path, e: StorageError) -> StorageError {
    match std::error::Error::source(&e) {
        Some(cause) => {
            tracing::info!(op, path = %path.display(), reply = %e, %cause, "command failed")
        }
        None => tracing::info!(op, path = %path.display(), reply = %e, "command failed"),
    }
    e
}

#[async_trait]
impl StorageBackend<SwiftUser> for SwiftStorage {
    type Metadata = Meta;

    fn name(&self) -> &str {
        "swift"
    }

    fn supported_features(&self) -> u32 {
        // REST for downloads and uploads (`resume.rs` continues files), SITE MD5 and its kin, MFMT.
        FEATURE_RESTART | FEATURE_SITEMD5 | FEATURE_MFMT
    }

    async fn md5<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &SwiftUser,
        path: P,
    ) -> Result<String> {
        self.at(user, "MD5", path.as_ref(), On::File, |loc| async move {
            let Location::Object { container, key } = &loc else {
                return Err(FtpError::NotAFile(loc.clone()));
            };
            let head = user
                .session
                .head_object(container, key)
                .await
                .map_err(|e| not_found(e, &loc))?;
            if is_marker(&head) {
                return Err(FtpError::NotAFile(loc.clone()));
            }
            head.content_md5()
                .map(str::to_owned)
                .ok_or(FtpError::NotImplemented(
                    "no MD5 is stored for this large file (written by another tool, or continued at an offset)",
                ))
        })
        .await
    }

    async fn set_modified<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &SwiftUser,
        path: P,
        modified: SystemTime,
    ) -> Result<SystemTime> {
        self.write_at(user, "MFMT", path.as_ref(), On::File, |loc| async move {
            self.set_time(user, &loc, modified).await
        })
        .await
    }

    async fn metadata<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &SwiftUser,
        path: P,
    ) -> Result<Self::Metadata> {
        self.at(
            user,
            "metadata",
            path.as_ref(),
            On::File,
            |loc| async move {
                let mut result = self.metadata_of(user, &loc).await;
                // A new file whose upload was cut off: its size is what `put -c`/`curl -C -` continue from,
                // less one byte: a client that had sent everything would otherwise find the file "complete"
                // and never send the command that makes it one. A failed lookup is a failure (libunftp's APPE
                // would otherwise start at 0 and store only the rest).
                if let (Err(FtpError::NotFound(_)), Location::Object { container, key }) =
                    (&result, &loc)
                {
                    match user.session.partial_upload(container, key).await {
                        Ok(Some(partial)) if !partial.interrupted_overwrite => {
                            let saved = std::time::UNIX_EPOCH
                                + std::time::Duration::from_secs(partial.saved);
                            result = Ok(Meta::file(partial.bytes.saturating_sub(1), Some(saved)));
                        }
                        Ok(_) => {}
                        Err(e) => result = Err(e.into()),
                    }
                }
                let unknown = match &result {
                    Ok(_) | Err(FtpError::NotFound(_)) => None,
                    Err(_) => Some(loc),
                };
                self.remember_unknown(unknown);
                result
            },
        )
        .await
    }

    async fn list<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &SwiftUser,
        path: P,
    ) -> Result<Vec<Fileinfo<PathBuf, Self::Metadata>>>
    where
        <Self as StorageBackend<SwiftUser>>::Metadata: Metadata,
    {
        let listing = self
            .at(user, "list", path.as_ref(), On::Dir, |loc| async move {
                self.listing(user, &loc).await
            })
            .await?;
        Ok(match listing.as_ref() {
            Listing::Dir(dir) => dir
                .entries()
                .map(|(name, metadata)| Fileinfo {
                    path: PathBuf::from(name),
                    metadata: metadata.clone(),
                })
                .collect(),
            Listing::File(name, metadata) => vec![Fileinfo {
                path: PathBuf::from(name),
                metadata: metadata.clone(),
            }],
        })
    }

    async fn list_fmt<P>(
        &self,
        user: &SwiftUser,
        path: P,
    ) -> std::result::Result<Cursor<Vec<u8>>, StorageError>
    where
        P: AsRef<Path> + Send + Debug,
        Self::Metadata: Metadata + 'static,
    {
        let path = path.as_ref();
        let lines = self
            .list_lines(user, path)
            .instrument(user.span.clone())
            .await
            .map_err(|e| user.span.in_scope(|| logged("LIST", path, e)))?;
        Ok(Cursor::new(lines.concat().into_bytes()))
    }

    async fn list_vec<P>(
        &self,
        user: &SwiftUser,
        path: P,
    ) -> std::result::Result<Vec<String>, StorageError>
    where
        P: AsRef<Path> + Send + Debug,
        Self::Metadata: Metadata + 'static,
    {
        let path = path.as_ref();
        let lines = self
            .list_lines(user, path)
            .instrument(user.span.clone())
            .await
            .map_err(|e| user.span.in_scope(|| logged("STAT", path, e)))?;
        Ok(lines
            .into_iter()
            .map(|l| l.trim_end_matches(['\r', '\n']).to_owned())
            .collect())
    }

    async fn nlst<P>(
        &self,
        user: &SwiftUser,
        path: P,
    ) -> std::result::Result<Cursor<Vec<u8>>, std::io::Error>
    where
        P: AsRef<Path> + Send + Debug,
        Self::Metadata: Metadata + 'static,
    {
        let names = self
            .at(user, "NLST", path.as_ref(), On::Dir, |loc| async move {
                self.listing(user, &loc).await
            })
            .await
            .map_err(std::io::Error::other)?;
        let mut out = String::new();
        match names.as_ref() {
            Listing::Dir(dir) => {
                for (name, _) in dir.entries() {
                    out.push_str(name);
                    out.push_str("\r\n");
                }
            }
            Listing::File(name, _) => {
                out.push_str(name);
                out.push_str("\r\n");
            }
        }
        Ok(Cursor::new(out.into_bytes()))
    }

    async fn get_into<'a, P, W: ?Sized>(
        &self,
        user: &SwiftUser,
        path: P,
        start_pos: u64,
        output: &'a mut W,
    ) -> Result<u64>
    where
        W: AsyncWrite + Unpin + Sync + Send,
        P: AsRef<Path> + Send + Debug,
    {
        let started = std::time::Instant::now();
        let sent = std::sync::atomic::AtomicU64::new(0);
        let result = self
            .at(user, "RETR", path.as_ref(), On::File, |loc| {
                let sent = &sent;
                async move {
                    let _running = self
                        .shared
                        .transfers
                        .begin()
                        .ok_or(FtpError::ShuttingDown)?;
                    self.download(user, &loc, start_pos, output, sent).await
                }
            })
            .await;
        transferred(
            user,
            "RETR",
            path.as_ref(),
            started,
            sent.into_inner(),
            &result,
        );
        result
    }

    async fn get<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &SwiftUser,
        path: P,
        start_pos: u64,
    ) -> Result<Box<dyn AsyncRead + Send + Sync + Unpin>> {
        self.at(user, "GET", path.as_ref(), On::File, |loc| async move {
            let Location::Object { container, key } = &loc else {
                return Err(FtpError::NotAFile(loc.clone()));
            };
            let download = user
                .session
                .get_object(container, key, start_pos)
                .await
                .map_err(|e| not_found(e, &loc))?;
            if is_marker(&download.head) {
                return Err(FtpError::NotAFile(loc.clone()));
            }
            let body = download.into_stream().map_err(std::io::Error::other);
            Ok(Box::new(tokio_util::io::StreamReader::new(body))
                as Box<dyn AsyncRead + Send + Sync + Unpin>)
        })
        .await
    }

    async fn put<P: AsRef<Path> + Send + Debug, R: AsyncRead + Send + Sync + Unpin + 'static>(
        &self,
        user: &SwiftUser,
        input: R,
        path: P,
        start_pos: u64,
    ) -> Result<u64> {
        let started = std::time::Instant::now();
        let result = self
            .write_at(user, "STOR", path.as_ref(), On::File, |loc| async move {
                if start_pos == 0 && self.take_unknown(&loc) {
                    return Err(FtpError::StateUnknown(loc));
                }
                let _running = self
                    .shared
                    .transfers
                    .begin()
                    .ok_or(FtpError::ShuttingDown)?;
                // Taken here, in the upload's own task: from now on the upload's reader ends without its
                // wait for a vanishing client, and `store` asks the check before anything becomes visible.
                let check = match start_pos {
                    0 => libunftp::ClientCheck::take(),
                    _ => None,
                };
                let stored = self
                    .store(&user.session, &loc, input, start_pos, check, &user.subdirs)
                    .await?;
                if let Location::Object { container, key } = &loc {
                    user.subdirs.note_write(container, key, false);
                }
                if let Some(content_type) = stored.new_small {
                    *user.just_stored.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(super::mtime::JustStored::new(loc, content_type));
                }
                Ok(stored.bytes)
            })
            .await;
        let bytes = *result.as_ref().unwrap_or(&0);
        transferred(user, "STOR", path.as_ref(), started, bytes, &result);
        result
    }

    async fn del<P: AsRef<Path> + Send + Debug>(&self, user: &SwiftUser, path: P) -> Result<()> {
        self.write_at(user, "DELE", path.as_ref(), On::File, |loc| async move {
            self.delete_file(&user.session, &loc).await
        })
        .await
    }

    async fn mkd<P: AsRef<Path> + Send + Debug>(&self, user: &SwiftUser, path: P) -> Result<()> {
        self.write_at(user, "MKD", path.as_ref(), On::File, |loc| async move {
            self.make_dir(&user.session, &loc).await?;
            if let Location::Object { container, key } = &loc {
                user.subdirs.note_write(container, key, true);
            }
            Ok(())
        })
        .await
    }

    async fn rename<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &SwiftUser,
        from: P,
        to: P,
    ) -> Result<()> {
        let to = to.as_ref();
        // The source's listings are forgotten by `write_at`; the target's here, once it is known.
        self.write_at(user, "RNTO", from.as_ref(), On::File, |from| async move {
            let to = self.locate(to)?;
            // Directories may move: what this session knew of them is listed again.
            user.subdirs.forget();
            let result = self.rename_path(user, &from, &to).await;
            let listings = &self.shared.listings;
            listings.invalidate(user, &to).await;
            // Moved into an existing directory: the file landed one level below `to`.
            if let Some((_, name)) = from.parent_and_name() {
                listings
                    .invalidate(user, &Location::parse_str(&format!("{to}/{name}")))
                    .await;
            }
            result
        })
        .await
    }

    async fn rmd<P: AsRef<Path> + Send + Debug>(&self, user: &SwiftUser, path: P) -> Result<()> {
        self.write_at(user, "RMD", path.as_ref(), On::Dir, |loc| async move {
            self.remove_dir(&user.session, &loc).await
        })
        .await
    }

    async fn cwd<P: AsRef<Path> + Send + Debug>(&self, user: &SwiftUser, path: P) -> Result<()> {
        self.at(user, "CWD", path.as_ref(), On::Dir, |loc| async move {
            let meta = self.metadata_of(user, &loc).await?;
            if meta.dir {
                Ok(())
            } else {
                Err(FtpError::NotADirectory(loc))
            }
        })
        .await
    }
}
