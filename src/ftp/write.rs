//! Writing: STOR (and APPE/STOU, which libunftp turns into the same `put`), MKD, RMD and DELE.
//!
//! - **Uploads** become a plain object or a Static Large Object (`swift/large/`): bounded memory, MD5 checked
//!   against the ETags, `226` only after Swift confirmed the object, nothing created when the client resets the
//!   connection.
//!   A file goes inside a container (never at `/` or as a container), never over a directory. Uploads at an
//!   offset (`REST n` + `STOR`, `APPE`) continue a file: `resume.rs`.
//! - **MKD** creates a container at the top level and an `application/directory` marker below; it is idempotent,
//!   and refuses to turn a file into a directory.
//! - **RMD** removes an empty container or the marker(s) of an empty directory; it never deletes recursively.
//! - **DELE** removes files only (and a partial upload of the name, `swift/resume.rs`); a large object goes with
//!   the segments in its container's own segment container (`Session::segments_of`), never with what its manifest names
//!   elsewhere: a manifest may have been planted by a user with fewer rights than the one deleting.
//! - **Overwriting** a large object deletes its old segments (the same rule) once the new object is in place.
//!
//! Not here: rename (`rename.rs`), how an upload becomes a plain object or segments (`swift/large/`).

use super::error::FtpError;
use super::location::Location;
use super::storage::{SwiftStorage, is_marker};
use super::subdirs::{Known, PAGE, Subdirs};
use super::upload_gate;
use crate::swift;
use bytes::Bytes;
use std::collections::HashSet;
use tokio::io::AsyncRead;

/// `Content-Type` of directory markers (ftp-cloudfs and swiftclient write this one).
pub(super) const MARKER_CONTENT_TYPE: &str = "application/directory";

/// What a `STOR` stored.
pub(super) struct Stored {
    /// The bytes.
    pub(super) bytes: u64,
    /// The `Content-Type` of a small file created at a new name, with nothing else on it (`mtime.rs`).
    pub(super) new_small: Option<String>,
}

impl Stored {
    fn other(bytes: u64) -> Self {
        Self {
            bytes,
            new_small: None,
        }
    }
}

/// The segments of the large object being replaced, read while its manifest still names them (none for a plain
/// object; none, logged, when they cannot be read: they stay).
async fn segments_being_replaced(
    session: &swift::Session,
    loc: &Location,
    head: &swift::ObjectHead,
) -> Vec<swift::ObjectRef> {
    let Location::Object { container, key } = loc else {
        return Vec::new();
    };
    session
        .segments_of(container, key, head)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, path = %loc, "cannot read the segments of the object being replaced: they stay");
            Vec::new()
        })
}

impl SwiftStorage {
    /// STOR: streams `input` into the object at `loc`; the bytes stored.
    pub(super) async fn store<R>(
        &self,
        session: &std::sync::Arc<swift::Session>,
        loc: &Location,
        input: R,
        start_pos: u64,
        check: Option<libunftp::ClientCheck>,
        subdirs: &Subdirs,
    ) -> Result<Stored, FtpError>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let Location::Object { container, key } = loc else {
            return Err(FtpError::Refused {
                location: loc.clone(),
                what: "files live inside a container, not at the top level",
            });
        };
        if start_pos > 0 {
            return self
                .store_at(session, loc, container, key, input, start_pos)
                .await
                .map(Stored::other);
        }
        // Whether the name is a directory is checked while the first bytes arrive: for a small file both take
        // about one Swift round trip, and in sequence they were most of a STOR's time. A refusal stops the reading.
        let mut input = input;
        let plan = self.shared.segment_plan();
        let mut not_below = Box::pin(self.not_a_directory(session, subdirs, loc, container, key));
        let (checked, lookahead) = {
            let mut first = std::pin::pin!(swift::read_lookahead(&mut input, plan));
            tokio::select! {
                biased;
                checked = &mut not_below => {
                    checked?;
                    (true, first.await)
                }
                read = &mut first => (false, read),
            }
        };
        let content_type = mime_guess::from_path(key).first_or_octet_stream();
        let content_type = content_type.essence_str();
        let lookahead = match lookahead {
            Ok(swift::Lookahead::Whole(body)) => {
                let below = async {
                    match checked {
                        true => Ok(()),
                        false => not_below.await,
                    }
                };
                let stored = self
                    .store_new_small(
                        session,
                        loc,
                        body.clone(),
                        content_type,
                        below,
                        check.clone(),
                    )
                    .await?;
                if let Some(bytes) = stored {
                    return Ok(Stored {
                        bytes,
                        new_small: Some(content_type.to_owned()),
                    });
                }
                // Something is at the name (or the token needs renewing): the checked path.
                if !upload_gate::client_stayed(check.as_ref()).await {
                    let e = swift::UploadError::Source {
                        bytes: body.len() as u64,
                        source: upload_gate::client_gone(),
                    };
                    return Err(self.upload_failed(session, loc, e, false, None).await);
                }
                swift::Lookahead::Whole(body)
            }
            Ok(started) => {
                if !checked {
                    not_below.await?;
                }
                started
            }
            Err(e) => return Err(self.first_read_failed(session, loc, e).await),
        };
        // Committed only at its end (segments, then a manifest): the reader waits for the client check itself.
        if let Some(check) = &check {
            check.release();
        }
        self.store_checked(session, loc, lookahead, input, content_type, plan)
            .await
    }

    /// Nothing at `key` is a directory (what the session knows, else one narrow listing). A write-only ACL (a
    /// drop box) lets the `PUT` through but not the listing: then Swift decides.
    async fn not_a_directory(
        &self,
        session: &swift::Session,
        subdirs: &Subdirs,
        loc: &Location,
        container: &str,
        key: &str,
    ) -> Result<(), FtpError> {
        match self.known_dir(session, subdirs, container, key).await {
            Some(false) => return Ok(()),
            Some(true) => return Err(FtpError::NotAFile(loc.clone())),
            None => {}
        }
        match self.below(session, container, key).await {
            Ok((false, false)) => Ok(()),
            Ok(_) => Err(FtpError::NotAFile(loc.clone())),
            Err(FtpError::Swift(e)) if e.kind() == swift::ErrorKind::PermissionDenied => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The first read of an upload failed. Whether a vanished client cut an overwrite (to mark it) is only known
    /// after a look at the name.
    async fn first_read_failed(
        &self,
        session: &swift::Session,
        loc: &Location,
        e: swift::UploadError,
    ) -> FtpError {
        let gone =
            matches!(&e, swift::UploadError::Source { source, .. } if swift::client_gone(source));
        let there = match loc {
            Location::Object { container, key } if gone => {
                session.head_object(container, key).await.is_ok()
            }
            _ => false,
        };
        self.upload_failed(session, loc, e, !there, None).await
    }

    /// The upload after its first bytes, when the name may hold something: a `HEAD` first (a directory marker is
    /// refused; a large object's segments are read to be deleted after it is replaced), then the plain object
    /// or Static Large Object (`swift/large/`) cut by `plan`.
    async fn store_checked<R>(
        &self,
        session: &std::sync::Arc<swift::Session>,
        loc: &Location,
        lookahead: swift::Lookahead,
        input: R,
        content_type: &str,
        plan: swift::SegmentPlan,
    ) -> Result<Stored, FtpError>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let Location::Object { container, key } = loc else {
            return Err(FtpError::NotAFile(loc.clone()));
        };
        let head = match session.head_object(container, key).await {
            Ok(head) if is_marker(&head) => return Err(FtpError::NotAFile(loc.clone())),
            Ok(head) => Some(head),
            Err(e) if e.kind() == swift::ErrorKind::NotFound => None,
            Err(e) if e.kind() == swift::ErrorKind::PermissionDenied => None,
            Err(e) => return Err(e.into()),
        };
        let old_segments = match &head {
            Some(head) => segments_being_replaced(session, loc, head).await,
            None => Vec::new(),
        };
        // A new name keeps what arrived if its client goes away (`swift/resume.rs`); an interrupted overwrite
        // leaves the old file as it was and nothing else. A partial upload is only ever kept for a name with
        // nothing at it, so only then is its record looked for, before the upload, which may write its own.
        let keep_partial = head.is_none();
        let partial = match keep_partial {
            true => session.partial_upload(container, key).await.ok().flatten(),
            false => None,
        };
        let uploaded = match session
            .upload_after_lookahead(
                container,
                key,
                lookahead,
                input,
                &[("Content-Type", content_type)],
                plan,
                keep_partial,
            )
            .await
        {
            Ok(uploaded) => uploaded,
            Err(e) => {
                return Err(self
                    .upload_failed(session, loc, e, keep_partial, partial)
                    .await);
            }
        };
        tracing::info!(path = %loc, bytes = uploaded.bytes, md5 = %uploaded.md5, segments = uploaded.segments, "stored");
        delete_objects(session, loc, old_segments).await;
        // Uploaded whole again: an older partial upload of this name is over.
        if let Some(partial) = partial {
            session.forget_partial(container, key, &partial, &[]).await;
        }
        Ok(Stored::other(uploaded.bytes))
    }

    /// Whether `key` is a directory, from what this session knows of its directory (`subdirs.rs`); `None`
    /// when not known (ask Swift about the name).
    async fn known_dir(
        &self,
        session: &swift::Session,
        subdirs: &Subdirs,
        container: &str,
        key: &str,
    ) -> Option<bool> {
        let (prefix, name) = match key.rfind('/') {
            Some(i) => (&key[..=i], &key[i + 1..]),
            None => ("", key),
        };
        match subdirs.lookup(container, prefix, name) {
            Known::NotADir => Some(false),
            Known::Ask => None,
            Known::ListParent => {
                let page = session
                    .list_objects_page(container, prefix, Some('/'), None, Some(PAGE))
                    .await
                    .ok()?;
                if page.len() >= PAGE as usize {
                    subdirs.remember(container, prefix, None);
                    return None;
                }
                let names: HashSet<String> = page
                    .iter()
                    .filter_map(|entry| match entry {
                        swift::ObjectEntry::Subdir(p) => p
                            .strip_prefix(prefix)
                            .and_then(|n| n.strip_suffix('/'))
                            .map(str::to_owned),
                        swift::ObjectEntry::Object(_) => None,
                    })
                    .collect();
                let is_dir = names.contains(name);
                subdirs.remember(container, prefix, Some(names));
                Some(is_dir)
            }
        }
    }

    /// A small file (all of it in `body`) to a name with nothing at it: one `PUT` that Swift refuses if
    /// anything is there (`If-None-Match: *`), so no `HEAD` before it. It starts at once; its last byte waits
    /// for `below` (nothing under the name) and the client check (`upload_gate.rs`). Only for a new name can a
    /// partial upload of it exist, so its record is looked for meanwhile (`swift/resume.rs`; rarely a request).
    /// `None` when something is at the name.
    async fn store_new_small(
        &self,
        session: &swift::Session,
        loc: &Location,
        body: Bytes,
        content_type: &str,
        below: impl std::future::Future<Output = Result<(), FtpError>>,
        check: Option<libunftp::ClientCheck>,
    ) -> Result<Option<u64>, FtpError> {
        let Location::Object { container, key } = loc else {
            return Err(FtpError::NotAFile(loc.clone()));
        };
        let len = body.len() as u64;
        let (below_tx, below_rx) = tokio::sync::oneshot::channel::<bool>();
        let gate = Box::pin(async move {
            if !below_rx.await.unwrap_or(false) {
                return Err(std::io::Error::other("the name is a directory"));
            }
            match upload_gate::client_stayed(check.as_ref()).await {
                true => Ok(()),
                false => Err(upload_gate::client_gone()),
            }
        });
        let checking = async {
            let below = below.await;
            let _ = below_tx.send(below.is_ok());
            below
        };
        let headers = [("Content-Type", content_type), ("If-None-Match", "*")];
        let put = async {
            if len == 0 {
                // No byte to hold back: the gate first.
                gate.await
                    .map_err(|source| swift::UploadError::Source { bytes: 0, source })?;
                return session
                    .put_sized(container, key, tokio::io::empty(), 0, &headers)
                    .await;
            }
            let body = upload_gate::held_back(body, gate);
            session.put_sized(container, key, body, len, &headers).await
        };
        let find_partial = async { session.partial_upload(container, key).await.ok().flatten() };
        let (below, (result, partial)) =
            tokio::join!(checking, async { tokio::join!(put, find_partial) });
        // A refusal of the name stopped the body short: nothing was stored.
        below?;
        match result {
            Ok(uploaded) => {
                tracing::info!(path = %loc, bytes = uploaded.bytes, md5 = %uploaded.md5, "stored");
                if let Some(partial) = partial {
                    session.forget_partial(container, key, &partial, &[]).await;
                }
                Ok(Some(uploaded.bytes))
            }
            // Something is there: the checked path takes over. So it does after a 401: a streamed body is not
            // sent again with a renewed token, but the checked path's first request (a HEAD) renews it.
            Err(swift::UploadError::Swift(e))
                if e.status() == Some(412) || e.kind() == swift::ErrorKind::Unauthenticated =>
            {
                Ok(None)
            }
            Err(e) => Err(self.upload_failed(session, loc, e, true, partial).await),
        }
    }

    /// What a failed upload leaves: a partial upload it superseded goes, and an overwrite cut by a vanished
    /// client is marked so that a resume of it is refused with its reason (`swift/resume.rs`).
    async fn upload_failed(
        &self,
        session: &swift::Session,
        loc: &Location,
        e: swift::UploadError,
        keep_partial: bool,
        partial: Option<swift::PartialUpload>,
    ) -> FtpError {
        let Location::Object { container, key } = loc else {
            return e.into();
        };
        if let Some(old) = &partial {
            session.drop_superseded_partial(container, key, old).await;
        }
        if let swift::UploadError::Source { source, .. } = &e
            && swift::client_gone(source)
            && !keep_partial
            && let Err(mark) = session.mark_interrupted_overwrite(container, key).await
        {
            tracing::warn!(error = %mark, path = %loc, "cannot mark an interrupted overwrite");
        }
        e.into()
    }

    /// MKD: a container at the top level, a marker below; success if a directory is already there.
    pub(super) async fn make_dir(
        &self,
        session: &swift::Session,
        loc: &Location,
    ) -> Result<(), FtpError> {
        match loc {
            Location::Root => Ok(()),
            Location::Container(container) => {
                let headers = self.shared.policy.create_headers();
                match session.put_container(container, &headers).await {
                    Ok(()) => Ok(()),
                    // It exists, with another storage policy: MKD of an existing directory succeeds.
                    Err(e) if e.kind() == swift::ErrorKind::Conflict && !headers.is_empty() => {
                        tracing::info!(
                            container,
                            "MKD: the container exists with another storage policy"
                        );
                        Ok(())
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Location::Object { container, key } => {
                // One request when the name is free (the common case: a tree being uploaded): Swift refuses the
                // marker if anything is at the name, and only then is it looked at. A pseudo-directory (objects
                // below, no marker) gets its marker: harmless, it was a directory already.
                let marker = [
                    ("Content-Type", MARKER_CONTENT_TYPE),
                    ("If-None-Match", "*"),
                ];
                match session
                    .put_object(container, key, Bytes::new(), &marker)
                    .await
                {
                    Ok(_) => return Ok(()),
                    Err(e) if e.kind() == swift::ErrorKind::PreconditionFailed => {}
                    Err(e) => {
                        return Err(super::storage::not_found(
                            e,
                            &Location::Container(container.clone()),
                        ));
                    }
                }
                let probe = self.probe(session, container, key).await?;
                if probe.is_dir() {
                    return Ok(());
                }
                if probe.exists() {
                    return Err(FtpError::FileExists(loc.clone()));
                }
                // Gone between the two requests: made without the condition.
                session
                    .put_object(
                        container,
                        key,
                        Bytes::new(),
                        &[("Content-Type", MARKER_CONTENT_TYPE)],
                    )
                    .await?;
                Ok(())
            }
        }
    }

    /// RMD: an empty container, or the marker(s) of an empty directory.
    pub(super) async fn remove_dir(
        &self,
        session: &swift::Session,
        loc: &Location,
    ) -> Result<(), FtpError> {
        match loc {
            Location::Root => Err(FtpError::Refused {
                location: loc.clone(),
                what: "the root cannot be removed",
            }),
            Location::Container(container) => {
                ensure_empty_container(session, loc, container).await?;
                match session.delete_container(container).await {
                    Ok(()) => {
                        // Its `<container>_segments` goes too once empty: users never made it, and the root
                        // listing would fill with them. A failure there does not undo the RMD.
                        if !container.ends_with(swift::SEGMENTS_SUFFIX) {
                            match session.delete_empty_segments_container(container).await {
                                Ok(true) => {
                                    tracing::info!(%container, "its empty segments container went too")
                                }
                                Ok(false) => {}
                                Err(e) => {
                                    tracing::warn!(%container, error = %e, "segments container left")
                                }
                            }
                        }
                        Ok(())
                    }
                    // Swift's container listing and its delete check can disagree for a moment (409).
                    Err(e) if e.kind() == swift::ErrorKind::Conflict => {
                        Err(FtpError::DirectoryNotEmpty(loc.clone()))
                    }
                    Err(e) => Err(super::storage::not_found(e, loc)),
                }
            }
            Location::Object { container, key } => {
                let probe = self.probe(session, container, key).await?;
                if !probe.exists() {
                    return Err(FtpError::NotFound(loc.clone()));
                }
                if !probe.is_dir() {
                    return Err(FtpError::NotADirectory(loc.clone()));
                }
                if probe.has_children {
                    return Err(FtpError::DirectoryNotEmpty(loc.clone()));
                }
                self.delete_markers(session, container, key, &probe).await
            }
        }
    }

    /// Deletes a directory's marker objects (`key` with a directory type, and `key/`).
    pub(super) async fn delete_markers(
        &self,
        session: &swift::Session,
        container: &str,
        key: &str,
        probe: &super::storage::Probe,
    ) -> Result<(), FtpError> {
        if probe.head.as_ref().is_some_and(is_marker) {
            ignore_missing(session.delete_object(container, key).await)?;
        }
        if probe.slash_marker {
            ignore_missing(
                session
                    .delete_object(container, &Location::dir_prefix(key))
                    .await,
            )?;
        }
        Ok(())
    }

    /// DELE: a file (with its segments, for a Static Large Object).
    pub(super) async fn delete_file(
        &self,
        session: &swift::Session,
        loc: &Location,
    ) -> Result<(), FtpError> {
        let Location::Object { container, key } = loc else {
            return Err(FtpError::Refused {
                location: loc.clone(),
                what: "DELE removes files; use RMD for directories and containers",
            });
        };
        let probe = self.probe(session, container, key).await?;
        let head = match &probe.head {
            _ if probe.is_dir() => return Err(FtpError::NotAFile(loc.clone())),
            // A partial upload (what `SIZE` shows for the name) is discarded by DELE like a file.
            None => match session.partial_upload(container, key).await {
                Ok(Some(partial)) => {
                    session.forget_partial(container, key, &partial, &[]).await;
                    tracing::info!(path = %loc, "deleted a partial upload");
                    return Ok(());
                }
                _ => return Err(FtpError::NotFound(loc.clone())),
            },
            Some(head) => head,
        };
        // The segments are listed while the manifest still names them, and go after it. Not through Swift's
        // `multipart-manifest=delete`: that deletes whatever an SLO lists, anywhere in the account, with our
        // token, and a manifest is something any writer of the container can plant (`segments_of`).
        let segments = session.segments_of(container, key, head).await?;
        session
            .delete_object(container, key)
            .await
            .map_err(|e| super::storage::not_found(e, loc))?;
        delete_objects(session, loc, segments).await;
        if head.static_large_object {
            // A resumed file's record, should one have outlived its resume, would name deleted segments.
            session.delete_partial_record(container, key).await;
        }
        tracing::info!(path = %loc, "deleted");
        Ok(())
    }
}

/// `Ok` when the container exists and holds nothing; `DirectoryNotEmpty` or `NotFound` otherwise.
pub(super) async fn ensure_empty_container(
    session: &swift::Session,
    loc: &Location,
    container: &str,
) -> Result<(), FtpError> {
    let page = session
        .list_objects_page(container, "", None, None, Some(1))
        .await
        .map_err(|e| super::storage::not_found(e, loc))?;
    if page.is_empty() {
        Ok(())
    } else {
        Err(FtpError::DirectoryNotEmpty(loc.clone()))
    }
}

/// Deletes the segments a replaced or deleted large object at `loc` owned; a failure is logged, not reported (the
/// command itself succeeded; a leftover segment costs space, never correctness).
pub(super) async fn delete_objects(
    session: &swift::Session,
    loc: &Location,
    segments: Vec<swift::ObjectRef>,
) {
    if segments.is_empty() {
        return;
    }
    let count = segments.len();
    let failed = session.delete_objects(segments).await.len();
    tracing::info!(path = %loc, count, failed, "deleted the segments of a large object");
}

/// A 404 on a delete means someone else deleted it first: the goal is reached.
fn ignore_missing(result: Result<(), swift::Error>) -> Result<(), FtpError> {
    match result {
        Err(e) if e.kind() == swift::ErrorKind::NotFound => Ok(()),
        other => Ok(other?),
    }
}
