//! MKD, RMD and DELE.
//!
//! - **MKD** creates a container at the top level and an `application/directory` marker below; it is idempotent,
//!   and refuses to turn a file into a directory. A directory this user saw a moment ago (`known_dirs.rs`)
//!   costs one request (the container's `PUT`, or the conditional marker) and no look at what is there.
//! - **RMD** removes an empty container or the marker(s) of an empty directory; it never deletes recursively.
//! - **DELE** removes files only (and a partial upload of the name, `partial.rs`); a large object goes with
//!   the segments in its container's own segment container (`Session::segments_of`), never with what its manifest names
//!   elsewhere: a manifest may have been planted by a user with fewer rights than the one deleting.
//!
//! Not here: STOR (`store.rs`), uploads at an offset (`resume.rs`), rename (`rename.rs`).

use super::error::FtpError;
use super::location::Location;
use super::storage::{SwiftStorage, is_marker};
use crate::swift;
use bytes::Bytes;

/// `Content-Type` of directory markers (ftp-cloudfs and swiftclient write this one).
pub(super) const MARKER_CONTENT_TYPE: &str = "application/directory";

impl SwiftStorage {
    /// MKD: a container at the top level, a marker below; success if a directory is already there. `known`:
    /// this user saw a directory at `loc` a moment ago (`known_dirs.rs`).
    pub(super) async fn make_dir(
        &self,
        session: &swift::Session,
        loc: &Location,
        known: bool,
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
                    // Something is at the name, and this user saw a directory there a moment ago: its marker
                    // (or a file beside it; the directory wins).
                    Err(e) if e.kind() == swift::ErrorKind::PreconditionFailed && known => {
                        return Ok(());
                    }
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
                                    tracing::debug!(%container, "its empty segments container went too")
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
            None => match super::partial::find(session, container, key).await {
                Ok(Some(partial)) => {
                    super::partial::forget(session, container, key, &partial, &[]).await;
                    tracing::debug!(path = %loc, "deleted a partial upload");
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
            super::partial::delete_record(session, container, key).await;
        }
        tracing::debug!(path = %loc, "deleted");
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
    tracing::debug!(path = %loc, count, failed, "deleted the segments of a large object");
}

/// A 404 on a delete means someone else deleted it first: the goal is reached.
fn ignore_missing(result: Result<(), swift::Error>) -> Result<(), FtpError> {
    match result {
        Err(e) if e.kind() == swift::ErrorKind::NotFound => Ok(()),
        other => Ok(other?),
    }
}
