//! RNFR/RNTO. Swift has no rename: a file is copied server-side (`X-Copy-From`; a large object's manifest, not
//! its data) and its source deleted only after the copy succeeded, so a failure leaves the source whole (at
//! worst both exist). It is not atomic: another client may see both names for a moment.
//!
//! - Onto itself: nothing to do, success.
//! - Onto an existing directory (or container): the source moves inside it, as `mv` does.
//! - Onto an existing file: the file is replaced.
//! - An empty directory (marker) or an empty container can be renamed: a container keeps its settings (metadata,
//!   ACLs, versioning, quotas, storage policy). A directory or container holding files moves with everything in
//!   it, by `rename_tree.rs` (copy all, then delete all), onto a name that does not exist yet.
//! - Containers of segments (`<container>_segments`) and what is in them are not renamed: the manifests of
//!   large files elsewhere point into them; nor is an ftp-cloudfs `FILE.part` folder beside its `FILE`.
//! - A file cannot become a container, and `/` cannot be renamed or be a target.

use super::error::FtpError;
use super::location::Location;
use super::login::SwiftUser;
use super::rename_tree::Tree;
use super::storage::{Probe, SwiftStorage};
use super::write::{MARKER_CONTENT_TYPE, ensure_empty_container};
use crate::swift;
use bytes::Bytes;

/// What the rename source is.
enum Source {
    File,
    EmptyDir(Probe),
    EmptyContainer,
    /// A directory with something in it (and whether it has a `key` marker object of its own).
    FullDir {
        has_marker: bool,
    },
    FullContainer,
}

/// Deleting a container just emptied by a rename: Swift may answer `409` until its listing catches up (up to
/// 5 tries after the first, 200 ms doubling to 1 s, about 3.4 s in all; no jitter: one session's own wait).
const EMPTIED_CONTAINER_RETRY: swift::RetryConfig = swift::RetryConfig {
    max_retries: 5,
    initial_backoff: std::time::Duration::from_millis(200),
    max_backoff: std::time::Duration::from_secs(1),
};

impl SwiftStorage {
    /// Renames `from` to `to` (both normalised).
    pub(super) async fn rename_path(
        &self,
        user: &SwiftUser,
        from: &Location,
        to: &Location,
    ) -> Result<(), FtpError> {
        let session = &user.session;
        if from == to {
            return Ok(());
        }
        let source = self.rename_source(session, from).await?;
        let to = self.rename_target(session, from, to).await?;
        if &to == from {
            return Ok(());
        }
        match (source, from, &to) {
            (_, _, Location::Root) | (_, Location::Root, _) => Err(FtpError::Refused {
                location: to.clone(),
                what: "the root cannot be renamed or replaced",
            }),
            (
                Source::File,
                Location::Object { container, key },
                Location::Object {
                    container: tc,
                    key: tk,
                },
            ) => {
                session
                    .copy_object(container, key, tc, tk)
                    .await
                    .map_err(|e| super::storage::not_found(e, &to))?;
                session.delete_object(container, key).await?;
                tracing::debug!(%from, %to, "renamed file");
                Ok(())
            }
            (Source::File, _, Location::Container(_))
            | (Source::File, Location::Container(_), _) => Err(FtpError::Refused {
                location: to.clone(),
                what: "files live inside a container, not at the top level",
            }),
            (Source::EmptyDir(probe), Location::Object { container, key }, _) => {
                self.refuse_file_target(session, &to).await?;
                self.create_dir_like(session, &to, None).await?;
                self.delete_markers(session, container, key, &probe).await?;
                tracing::debug!(%from, %to, "renamed empty directory");
                Ok(())
            }
            (Source::EmptyContainer, Location::Container(container), _) => {
                self.rename_empty_container(session, container, &to).await
            }
            (Source::FullDir { has_marker }, _, _) => {
                self.refuse_existing_target(session, &to).await?;
                let Some(from_tree) = Tree::at(from, has_marker) else {
                    return Err(FtpError::Refused {
                        location: from.clone(),
                        what: "the root cannot be renamed",
                    });
                };
                self.rename_full(user, from, &from_tree, &to, None).await
            }
            (Source::FullContainer, Location::Container(container), _) => {
                self.rename_full_container(user, container, &to).await
            }
            (Source::EmptyDir(_), _, _)
            | (Source::EmptyContainer, _, _)
            | (Source::FullContainer, _, _) => Err(FtpError::Refused {
                location: to.clone(),
                what: "cannot rename this",
            }),
        }
    }

    /// An empty container moves: the target made like it (its settings), then the old one deleted.
    async fn rename_empty_container(
        &self,
        session: &swift::Session,
        container: &str,
        to: &Location,
    ) -> Result<(), FtpError> {
        if matches!(to, Location::Object { container: tc, .. } if tc == container) {
            return Err(FtpError::Refused {
                location: to.clone(),
                what: "a container cannot move into itself",
            });
        }
        self.refuse_file_target(session, to).await?;
        let settings = session.head_container(container).await?.settings;
        self.create_dir_like(session, to, Some(&settings)).await?;
        let from = Location::Container(container.to_owned());
        if let Err(e) = session.delete_container(container).await {
            tracing::warn!(error = %e, %from, %to, "renamed container: the old one could not be deleted");
            return Err(e.into());
        }
        tracing::debug!(%from, %to, "renamed empty container");
        Ok(())
    }

    /// A container with everything in it moves (`rename_tree.rs`), then the emptied one is deleted.
    async fn rename_full_container(
        &self,
        user: &SwiftUser,
        container: &str,
        to: &Location,
    ) -> Result<(), FtpError> {
        let session = &user.session;
        let from = Location::Container(container.to_owned());
        self.refuse_existing_target(session, to).await?;
        let settings = session.head_container(container).await?.settings;
        let from_tree = Tree::at(&from, false).ok_or(FtpError::Refused {
            location: from.clone(),
            what: "the root cannot be renamed",
        })?;
        self.rename_full(user, &from, &from_tree, to, Some(&settings))
            .await?;
        // Swift's container listing and its delete check can disagree for a moment (409).
        let mut tries = 0;
        loop {
            match session.delete_container(container).await {
                Ok(()) => return Ok(()),
                Err(e)
                    if e.kind() == swift::ErrorKind::Conflict
                        && tries < EMPTIED_CONTAINER_RETRY.max_retries =>
                {
                    tokio::time::sleep(EMPTIED_CONTAINER_RETRY.backoff(tries, 1.0)).await;
                    tries += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, %from, %to, "renamed container: the old, empty one could not be deleted");
                    return Err(e.into());
                }
            }
        }
    }

    /// Classifies the source; non-empty directories and missing paths end the rename here.
    async fn rename_source(
        &self,
        session: &swift::Session,
        from: &Location,
    ) -> Result<Source, FtpError> {
        match from {
            Location::Root => Err(FtpError::Refused {
                location: from.clone(),
                what: "the root cannot be renamed",
            }),
            Location::Container(container) => {
                refuse_segments(from, container)?;
                match ensure_empty_container(session, from, container).await {
                    Ok(()) => Ok(Source::EmptyContainer),
                    Err(FtpError::DirectoryNotEmpty(_)) => Ok(Source::FullContainer),
                    Err(e) => Err(e),
                }
            }
            Location::Object { container, key } => {
                let probe = self.probe(session, container, key).await?;
                if !probe.exists() {
                    Err(FtpError::NotFound(from.clone()))
                } else if probe.has_children {
                    refuse_segments(from, container)?;
                    refuse_part_folder(session, from, container, key).await?;
                    Ok(Source::FullDir {
                        has_marker: probe.head.as_ref().is_some_and(super::storage::is_marker),
                    })
                } else if probe.is_dir() {
                    Ok(Source::EmptyDir(probe))
                } else {
                    Ok(Source::File)
                }
            }
        }
    }

    /// The final target: `to` itself, or `to/<name of from>` when `to` is an existing directory.
    async fn rename_target(
        &self,
        session: &swift::Session,
        from: &Location,
        to: &Location,
    ) -> Result<Location, FtpError> {
        let is_dir = match to {
            Location::Root => true,
            Location::Container(container) => container_exists(session, container).await?,
            Location::Object { container, key } => {
                match self.probe(session, container, key).await {
                    Ok(probe) => probe.is_dir(),
                    Err(e) => return Err(e),
                }
            }
        };
        if !is_dir {
            return Ok(to.clone());
        }
        let name = match from {
            Location::Root => return Ok(to.clone()),
            Location::Container(c) => c.as_str(),
            Location::Object { key, .. } => key.rsplit('/').next().unwrap_or(key),
        };
        Ok(Location::parse_str(&format!("{to}/{name}")))
    }

    /// Moves a full directory or container `from` to `to`, which does not exist: a new container is created
    /// first (with `settings` when the source was a container, else with the configured storage policy) and
    /// removed again if nothing could be moved.
    async fn rename_full(
        &self,
        user: &SwiftUser,
        from: &Location,
        from_tree: &Tree,
        to: &Location,
        settings: Option<&[(String, String)]>,
    ) -> Result<(), FtpError> {
        let session = &user.session;
        let (to_tree, created) = match to {
            Location::Root => {
                return Err(FtpError::Refused {
                    location: to.clone(),
                    what: "the root cannot be replaced",
                });
            }
            Location::Container(c) => {
                match settings {
                    Some(settings) => self.create_dir_like(session, to, Some(settings)).await?,
                    None => {
                        let headers = self.shared.policy.create_headers();
                        session.put_container(c, &headers).await?;
                    }
                }
                (Tree::at(to, false), true)
            }
            Location::Object { .. } => (Tree::at(to, false), false),
        };
        let Some(to_tree) = to_tree else {
            return Err(FtpError::NotFound(to.clone()));
        };
        match self.move_tree(user, from_tree, &to_tree).await {
            Ok(moved) => {
                tracing::debug!(%from, %to, objects = moved, "renamed directory");
                Ok(())
            }
            Err(e) => {
                if created && let Location::Container(c) = to {
                    let _ = session.delete_container(c).await;
                }
                Err(e)
            }
        }
    }

    /// A tree moves only onto a name nothing has yet.
    async fn refuse_existing_target(
        &self,
        session: &swift::Session,
        to: &Location,
    ) -> Result<(), FtpError> {
        let exists = match to {
            Location::Root => true,
            Location::Container(c) => container_exists(session, c).await?,
            Location::Object { container, key } => {
                self.probe(session, container, key).await?.exists()
            }
        };
        if exists {
            return Err(FtpError::Refused {
                location: to.clone(),
                what: "the new name exists already",
            });
        }
        Ok(())
    }

    /// A directory never replaces a file.
    async fn refuse_file_target(
        &self,
        session: &swift::Session,
        to: &Location,
    ) -> Result<(), FtpError> {
        if let Location::Object { container, key } = to {
            let probe = self.probe(session, container, key).await?;
            if probe.exists() && !probe.is_dir() {
                return Err(FtpError::FileExists(to.clone()));
            }
        }
        Ok(())
    }

    /// Creates the directory a renamed empty directory becomes: a container (with `settings`, when the source was
    /// one) or a marker object.
    async fn create_dir_like(
        &self,
        session: &swift::Session,
        to: &Location,
        settings: Option<&[(String, String)]>,
    ) -> Result<(), FtpError> {
        match to {
            Location::Root => Err(FtpError::Refused {
                location: to.clone(),
                what: "the root cannot be replaced",
            }),
            Location::Container(container) => {
                let headers: Vec<(&str, &str)> = settings
                    .unwrap_or_default()
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                Ok(session.put_container(container, &headers).await?)
            }
            Location::Object { container, key } => {
                session
                    .put_object(
                        container,
                        key,
                        Bytes::new(),
                        &[("Content-Type", MARKER_CONTENT_TYPE)],
                    )
                    .await
                    .map_err(|e| super::storage::not_found(e, to))?;
                Ok(())
            }
        }
    }
}

/// Containers of segments, and what is in them, stay where the manifests of large files point.
fn refuse_segments(from: &Location, container: &str) -> Result<(), FtpError> {
    if container.ends_with(swift::SEGMENTS_SUFFIX) {
        return Err(FtpError::Refused {
            location: from.clone(),
            what: "this holds the segments of large files, which their manifests point to: not renamed",
        });
    }
    Ok(())
}

/// Whether `container` exists (a `HEAD`).
async fn container_exists(session: &swift::Session, container: &str) -> Result<bool, FtpError> {
    match session.head_container(container).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == swift::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// ftp-cloudfs kept a large file's segments in a `FILE.part` folder beside `FILE`, whose manifest points into
/// it: moving the folder alone would leave `FILE` empty. (Moving their common parent moves both.)
async fn refuse_part_folder(
    session: &swift::Session,
    from: &Location,
    container: &str,
    key: &str,
) -> Result<(), FtpError> {
    let Some(file) = key.strip_suffix(".part") else {
        return Ok(());
    };
    match session.head_object(container, file).await {
        Ok(head) if head.dlo_manifest.is_some() => Err(FtpError::Refused {
            location: from.clone(),
            what: "this folder holds the segments of the large file beside it: rename that file's folder instead",
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == swift::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}
