//! `SwiftStorage`, the backend libunftp creates per control connection, and the questions every command asks
//! of Swift before it acts: where a path points (`locate`), what exists there
//! (`probe`: one HEAD and a two-entry prefix listing, concurrently; the listing is what finds
//! pseudo-directories with no marker, and lets a directory win over a file of the same name), and how a Swift
//! 404 reads for the path the user named (`not_found`).
//!
//! Each command family has a file of its own that uses these: `backend.rs` (libunftp's `StorageBackend`: it
//! resolves the path, calls the family, turns a failure into its reply), `read.rs` (SIZE, MDTM, MLST, CWD,
//! listings, RETR), `write.rs` (STOR, MKD, RMD, DELE), `rename.rs` and `rename_tree.rs` (RNFR/RNTO), `resume.rs`
//! (REST + STOR, APPE), `mfmt.rs` (MFMT), `site.rs` (SITE).
//!
//! Deliberately not here: what any one command does.

use super::Shared;
use super::error::FtpError;
use super::listing::{Meta, is_marker_content_type};
use super::location::Location;
use crate::swift::{self, ObjectHead};
use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

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

    pub(super) fn remember_unknown(&self, loc: Option<Location>) {
        *self.unknown_state.lock().unwrap_or_else(|e| e.into_inner()) = loc;
    }

    /// Whether an upload to `loc` must be refused because a size lookup of it just failed (see `unknown_state`).
    pub(super) fn take_unknown(&self, loc: &Location) -> bool {
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
    pub(super) async fn stat_object(
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
}

/// A file's time: the one `MFMT` set (`mtime.rs`), else when Swift last wrote it; the same rule as listings.
pub(super) fn file_time(head: &ObjectHead) -> Option<SystemTime> {
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
