//! libunftp's `StorageBackend` for [`SwiftStorage`]: each method resolves its path to a [`Location`], hands it to
//! the file of its command family (`read.rs`, `write.rs`, `rename.rs`, `resume.rs`, `mfmt.rs`), and turns a
//! failure into its reply; every operation gets its one log line (`oplog.rs`) in the session's span, and a
//! transfer its metrics.
//!
//! Deliberately not here: what any command does in Swift.

use super::error::FtpError;
use super::listing::Listing;
use super::listing::Meta;
use super::location::Location;
use super::login::SwiftUser;
use super::oplog::{Log, logged, transferred};
use super::storage::{SwiftStorage, is_marker, not_found};
use async_trait::async_trait;
use futures_util::TryStreamExt;
use std::fmt::Debug;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::Instrument;
use unftp_core::storage::{
    Error as StorageError, FEATURE_MFMT, FEATURE_RESTART, FEATURE_SITEMD5, Fileinfo, Metadata,
    Result, StorageBackend,
};

/// What a failure is about, for its reply: "File not found" or "Directory not found".
#[derive(Debug, Clone, Copy)]
enum On {
    File,
    Dir,
}

impl SwiftStorage {
    /// Resolves `path`, runs `f` on the location, and turns a failure into its reply, logged with its cause:
    /// the one shape of every backend method.
    #[allow(clippy::too_many_arguments)] // each says what the one shape of every method varies in
    async fn at<T, F, Fut>(
        &self,
        user: &SwiftUser,
        op: &'static str,
        path: &Path,
        on: On,
        log: Log<'_>,
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
            let result = result.map_err(|e| match on {
                On::File => e.into_storage_error(),
                On::Dir => e.in_directory_context(),
            });
            logged(op, path, log, &result);
            result
        }
        .instrument(user.span.clone())
        .await
    }
}

impl SwiftStorage {
    /// [`SwiftStorage::at`] for a command that writes: once `f` is done (successful or not: a failure may have
    /// changed something), the cached listings the location touches are forgotten.
    #[allow(clippy::too_many_arguments)]
    async fn write_at<T, F, Fut>(
        &self,
        user: &SwiftUser,
        op: &'static str,
        path: &Path,
        on: On,
        log: Log<'_>,
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
        self.at(user, op, path, on, log, |loc| async move {
            let touched = loc.clone();
            let result = f(loc).await;
            self.shared.listings.invalidate(user, &touched).await;
            result
        })
        .await
    }
}

#[async_trait]
impl StorageBackend<SwiftUser> for SwiftStorage {
    type Metadata = Meta;

    fn name(&self) -> &str {
        "swift"
    }

    fn supported_features(&self) -> u32 {
        // REST for downloads and uploads (`resume.rs` continues files), SITE MD5 and its kin, MFMT unless the
        // operator traded it for one request less per uploaded file (`--no-mfmt`; libunftp then answers MFMT
        // with 502 itself).
        let mfmt = if self.shared.options.mfmt {
            FEATURE_MFMT
        } else {
            0
        };
        FEATURE_RESTART | FEATURE_SITEMD5 | mfmt
    }

    async fn md5<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &SwiftUser,
        path: P,
    ) -> Result<String> {
        self.at(user, "MD5", path.as_ref(), On::File, Log::Lookup, |loc| async move {
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
        self.write_at(
            user,
            "MFMT",
            path.as_ref(),
            On::File,
            Log::Change { to: None },
            |loc| async move { self.set_time(user, &loc, modified).await },
        )
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
            Log::Lookup,
            |loc| async move {
                let mut result = self.metadata_of(user, &loc).await;
                // A new file whose upload was cut off: its size is what `put -c`/`curl -C -` continue from,
                // less one byte: a client that had sent everything would otherwise find the file "complete"
                // and never send the command that makes it one. A failed lookup is a failure (libunftp's APPE
                // would otherwise start at 0 and store only the rest).
                if let (Err(FtpError::NotFound(_)), Location::Object { container, key }) =
                    (&result, &loc)
                {
                    match super::partial::find(&user.session, container, key).await {
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
            .at(
                user,
                "list",
                path.as_ref(),
                On::Dir,
                Log::Lookup,
                |loc| async move { self.listing(user, &loc).await },
            )
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
            .await;
        user.span
            .in_scope(|| logged("LIST", path, Log::Lookup, &lines));
        let lines = lines?;
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
            .await;
        user.span
            .in_scope(|| logged("STAT", path, Log::Lookup, &lines));
        let lines = lines?;
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
            .at(
                user,
                "NLST",
                path.as_ref(),
                On::Dir,
                Log::Lookup,
                |loc| async move { self.listing(user, &loc).await },
            )
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

    async fn prepare_get<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &SwiftUser,
        path: P,
        start_pos: u64,
    ) -> Result<()> {
        let started = std::time::Instant::now();
        let path = path.as_ref();
        let result = self
            .at(
                user,
                "RETR",
                path,
                On::File,
                Log::Transfer,
                |loc| async move { user.opened.open(&user.session, &loc, path, start_pos).await },
            )
            .await;
        // A RETR that never started is logged and counted as the failed transfer it is.
        if result.is_err() {
            transferred(user, "RETR", path, started, (0, None), &result);
        }
        result
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
        let path = path.as_ref();
        let result = self
            .at(user, "RETR", path, On::File, Log::Transfer, |loc| {
                let sent = &sent;
                async move {
                    let _running = self
                        .shared
                        .transfers
                        .begin()
                        .ok_or(FtpError::ShuttingDown)?;
                    user.opened
                        .send(&user.session, &loc, path, start_pos, output, sent)
                        .await
                }
            })
            .await;
        transferred(
            user,
            "RETR",
            path,
            started,
            (sent.into_inner(), None),
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
        self.at(
            user,
            "GET",
            path.as_ref(),
            On::File,
            Log::Lookup,
            |loc| async move {
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
            },
        )
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
            .write_at(
                user,
                "STOR",
                path.as_ref(),
                On::File,
                Log::Transfer,
                |loc| async move {
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
                    let mut stored = self.store(user, &loc, input, start_pos, check).await?;
                    if let Location::Object { container, key } = &loc {
                        user.subdirs.note_write(container, key, false);
                        user.known_dirs.note_parents_of(container, key);
                    }
                    if let Some(content_type) = stored.new_small.take() {
                        *user.just_stored.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(super::mtime::JustStored::new(loc, content_type));
                    }
                    Ok(stored)
                },
            )
            .await;
        let (bytes, md5) = match &result {
            Ok(stored) => (stored.bytes, stored.md5.as_deref()),
            Err(_) => (0, None),
        };
        transferred(user, "STOR", path.as_ref(), started, (bytes, md5), &result);
        result.map(|stored| stored.bytes)
    }

    async fn del<P: AsRef<Path> + Send + Debug>(&self, user: &SwiftUser, path: P) -> Result<()> {
        self.write_at(
            user,
            "DELE",
            path.as_ref(),
            On::File,
            Log::Change { to: None },
            |loc| async move {
                if let Location::Object { container, key } = &loc {
                    // A pseudo-directory above ends with its last file.
                    user.known_dirs.forget(container, key);
                }
                self.delete_file(&user.session, &loc).await
            },
        )
        .await
    }

    async fn mkd<P: AsRef<Path> + Send + Debug>(&self, user: &SwiftUser, path: P) -> Result<()> {
        self.write_at(
            user,
            "MKD",
            path.as_ref(),
            On::File,
            Log::Change { to: None },
            |loc| async move {
                let known = match &loc {
                    Location::Object { container, key } => user.known_dirs.is_known(container, key),
                    Location::Container(_) | Location::Root => false,
                };
                self.make_dir(&user.session, &loc, known).await?;
                match &loc {
                    Location::Object { container, key } => {
                        user.subdirs.note_write(container, key, true);
                        user.known_dirs.note(container, key);
                    }
                    Location::Container(container) => user.known_dirs.note(container, ""),
                    Location::Root => {}
                }
                Ok(())
            },
        )
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
        let log = Log::Change { to: Some(to) };
        self.write_at(
            user,
            "RNTO",
            from.as_ref(),
            On::File,
            log,
            |from| async move {
                let to = self.locate(to)?;
                // Directories may move: what this session knew of them is listed again.
                user.subdirs.forget();
                user.known_dirs.forget_all();
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
            },
        )
        .await
    }

    async fn rmd<P: AsRef<Path> + Send + Debug>(&self, user: &SwiftUser, path: P) -> Result<()> {
        self.write_at(
            user,
            "RMD",
            path.as_ref(),
            On::Dir,
            Log::Change { to: None },
            |loc| async move {
                match &loc {
                    Location::Object { container, key } => user.known_dirs.forget(container, key),
                    Location::Container(container) => user.known_dirs.forget(container, ""),
                    Location::Root => {}
                }
                self.remove_dir(&user.session, &loc).await
            },
        )
        .await
    }

    async fn cwd<P: AsRef<Path> + Send + Debug>(&self, user: &SwiftUser, path: P) -> Result<()> {
        self.at(
            user,
            "CWD",
            path.as_ref(),
            On::Dir,
            Log::Lookup,
            |loc| async move {
                let (container, key) = match &loc {
                    Location::Root => return Ok(()),
                    Location::Container(c) => (c.as_str(), ""),
                    Location::Object { container, key } => (container.as_str(), key.as_str()),
                };
                // Made or entered a moment ago (`lftp mirror -R`: MKD d, CWD d, ..., CWD ..): no need to ask.
                if user.known_dirs.is_known(container, key) {
                    return Ok(());
                }
                let meta = self.metadata_of(user, &loc).await?;
                if meta.dir {
                    user.known_dirs.note(container, key);
                    Ok(())
                } else {
                    Err(FtpError::NotADirectory(loc))
                }
            },
        )
        .await
    }
}
