//! STOR (and APPE/STOU, which libunftp turns into the same `put`) from offset 0: bounded memory, MD5 checked
//! against the ETags, `226` only after Swift confirmed the object, nothing created when the client resets the
//! connection.
//!
//! - A file goes inside a container (never at `/` or as a container), never over a directory.
//! - A small file to a new name is one `PUT` with `If-None-Match: *`, its last byte held back until the
//!   directory check and the client check answer (`upload_gate.rs`); anything else takes the checked path: a
//!   `HEAD`, then a plain object or a Static Large Object (`swift/large/`).
//! - **Overwriting** a large object deletes its old segments (the rule in `write.rs`'s `delete_objects`) once the
//!   new object is in place; an overwrite cut by a vanished client is marked (`partial.rs`).
//!
//! Not here: uploads at an offset (`REST n` + `STOR`, `APPE`: `resume.rs`), how an upload becomes a plain object
//! or segments (`swift/large/`), MKD/RMD/DELE (`write.rs`).

use super::error::FtpError;
use super::listing::Listing;
use super::location::Location;
use super::login::SwiftUser;
use super::storage::{SwiftStorage, is_marker};
use super::subdirs::{Known, PAGE};
use super::upload_gate;
use super::write::delete_objects;
use crate::swift;
use std::collections::HashSet;
use tokio::io::AsyncRead;

/// What a `STOR` stored.
pub(super) struct Stored {
    /// The bytes.
    pub(super) bytes: u64,
    /// Their MD5 (hex), where the whole file went up in this upload (not one continued at an offset).
    pub(super) md5: Option<String>,
    /// The `Content-Type` of a small file created at a new name, with nothing else on it (`mtime.rs`).
    pub(super) new_small: Option<String>,
}

impl Stored {
    fn other(bytes: u64, md5: Option<String>) -> Self {
        Self {
            bytes,
            md5,
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
        user: &SwiftUser,
        loc: &Location,
        input: R,
        start_pos: u64,
        check: Option<libunftp::ClientCheck>,
    ) -> Result<Stored, FtpError>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let session = &user.session;
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
                .map(|bytes| Stored::other(bytes, None));
        }
        // Whether the name is a directory is checked while the first bytes arrive: for a small file both take
        // about one Swift round trip, and in sequence they were most of a STOR's time. A refusal stops the reading.
        let mut input = input;
        let plan = self.shared.segment_plan();
        let mut not_below = Box::pin(self.not_a_directory(user, loc, container, key));
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
                if let Some(uploaded) = stored {
                    return Ok(Stored {
                        bytes: uploaded.bytes,
                        md5: Some(uploaded.md5),
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
        user: &SwiftUser,
        loc: &Location,
        container: &str,
        key: &str,
    ) -> Result<(), FtpError> {
        let session = &user.session;
        match self.known_dir(user, loc, container, key).await {
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
        // A new name keeps what arrived if its client goes away (`partial.rs`); an interrupted overwrite
        // leaves the old file as it was and nothing else. A partial upload is only ever kept for a name with
        // nothing at it, so only then is its record looked for, before the upload, which may write its own.
        let keep_partial = head.is_none();
        let partial = match keep_partial {
            true => super::partial::find(session, container, key)
                .await
                .ok()
                .flatten(),
            false => None,
        };
        let keeper = super::partial::KeepAsPartial {
            session,
            container,
            key,
            content_type: Some(content_type),
        };
        let to = swift::UploadTarget {
            container,
            key,
            headers: &[("Content-Type", content_type)],
            plan,
            keep: keep_partial.then_some(&keeper as &dyn swift::KeepInterrupted),
        };
        let uploaded = match session.upload_after_lookahead(to, lookahead, input).await {
            Ok(uploaded) => uploaded,
            Err(e) => {
                return Err(self
                    .upload_failed(session, loc, e, keep_partial, partial)
                    .await);
            }
        };
        tracing::debug!(path = %loc, bytes = uploaded.bytes, segments = uploaded.segments, "stored");
        delete_objects(session, loc, old_segments).await;
        // Uploaded whole again: an older partial upload of this name is over.
        if let Some(partial) = partial {
            super::partial::forget(session, container, key, &partial, &[]).await;
        }
        Ok(Stored::other(uploaded.bytes, Some(uploaded.md5)))
    }

    /// Whether `key` is a directory, from what this session knows of its directory (`subdirs.rs`); `None`
    /// when not known (ask Swift about the name).
    async fn known_dir(
        &self,
        user: &SwiftUser,
        loc: &Location,
        container: &str,
        key: &str,
    ) -> Option<bool> {
        let (session, subdirs) = (&user.session, &user.subdirs);
        let (prefix, name) = match key.rfind('/') {
            Some(i) => (&key[..=i], &key[i + 1..]),
            None => ("", key),
        };
        match subdirs.lookup(container, prefix, name) {
            Known::NotADir => Some(false),
            Known::Ask => None,
            Known::Unseen => {
                let names = self.cached_subdirs(user, loc).await?;
                let is_dir = names.contains(name);
                subdirs.remember(container, prefix, Some(names));
                // Only "not a directory" is answered from memory (`subdirs.rs`).
                (!is_dir).then_some(false)
            }
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

    /// The directories beside `loc` as the listing cache holds its directory's listing (a client that lists a
    /// directory before uploading into it, as `lftp mirror -R` and FileZilla do); `None` when it holds none, and
    /// for a `.part` name while such folders are hidden from listings (the cached listing may have left one out).
    async fn cached_subdirs(&self, user: &SwiftUser, loc: &Location) -> Option<HashSet<String>> {
        let (dir, name) = loc.parent_and_name()?;
        if self.shared.options.hide_part_dir && name.ends_with(".part") {
            return None;
        }
        let (listing, _) = self.shared.listings.lookup(user, &dir).await;
        match listing?.as_ref() {
            Listing::Dir(entries) => Some(
                entries
                    .entries()
                    .filter(|(_, meta)| meta.dir)
                    .map(|(name, _)| name.clone())
                    .collect(),
            ),
            Listing::File(..) => None,
        }
    }

    /// A small file (all of it in `body`) to a name with nothing at it: one `PUT` that Swift refuses if
    /// anything is there (`If-None-Match: *`), so no `HEAD` before it. It starts at once; its last byte waits
    /// for `below` (nothing under the name) and the client check (`upload_gate.rs`). Only for a new name can a
    /// partial upload of it exist, so its record is looked for meanwhile (`partial.rs`; rarely a request).
    /// `None` when something is at the name.
    async fn store_new_small(
        &self,
        session: &swift::Session,
        loc: &Location,
        body: swift::Head,
        content_type: &str,
        below: impl std::future::Future<Output = Result<(), FtpError>>,
        check: Option<libunftp::ClientCheck>,
    ) -> Result<Option<swift::Uploaded>, FtpError> {
        let Location::Object { container, key } = loc else {
            return Err(FtpError::NotAFile(loc.clone()));
        };
        let len = body.len() as u64;
        let (below_tx, below_rx) = tokio::sync::oneshot::channel::<bool>();
        let gate = Box::pin(async move {
            if !below_rx.await.unwrap_or(false) {
                return Err(std::io::Error::other("the name is a directory"));
            }
            match upload_gate::new_file_client_stayed(check.as_ref()).await {
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
        let find_partial = async {
            super::partial::find(session, container, key)
                .await
                .ok()
                .flatten()
        };
        let (below, (result, partial)) =
            tokio::join!(checking, async { tokio::join!(put, find_partial) });
        // A refusal of the name stopped the body short: nothing was stored.
        below?;
        match result {
            Ok(uploaded) => {
                if let Some(partial) = partial {
                    super::partial::forget(session, container, key, &partial, &[]).await;
                }
                Ok(Some(uploaded))
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
    /// client is marked so that a resume of it is refused with its reason (`partial.rs`).
    async fn upload_failed(
        &self,
        session: &swift::Session,
        loc: &Location,
        e: swift::UploadError,
        keep_partial: bool,
        partial: Option<super::partial::PartialUpload>,
    ) -> FtpError {
        let Location::Object { container, key } = loc else {
            return e.into();
        };
        if let Some(old) = &partial {
            super::partial::drop_superseded(session, container, key, old).await;
        }
        if let swift::UploadError::Source { source, .. } = &e
            && swift::client_gone(source)
            && !keep_partial
            && let Err(mark) =
                super::partial::mark_interrupted_overwrite(session, container, key).await
        {
            tracing::warn!(error = %mark, path = %loc, "cannot mark an interrupted overwrite");
        }
        e.into()
    }
}
