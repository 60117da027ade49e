//! RNFR/RNTO. Swift has no rename: a file is copied server-side (`X-Copy-From`; a large object's manifest, not
//! its data) and its source deleted only after the copy succeeded, so a failure leaves the source whole (at
//! worst both exist). It is not atomic: another client may see both names for a moment.
//!
//! - Onto itself: nothing to do, success.
//! - Onto an existing directory (or container): the source moves inside it, as `mv` does.
//! - Onto an existing file: the file is replaced.
//! - An empty directory (marker) or an empty container can be renamed: a container keeps its settings (metadata,
//!   ACLs, versioning, quotas, storage policy). A non-empty one gets `550 Directory not empty`.
//! - A file cannot become a container, and `/` cannot be renamed or be a target.

use super::error::FtpError;
use super::location::Location;
use super::storage::{Probe, SwiftStorage};
use super::write::{MARKER_CONTENT_TYPE, ensure_empty_container};
use crate::swift;
use bytes::Bytes;

/// What the rename source is.
enum Source {
    File,
    EmptyDir(Probe),
    EmptyContainer,
}

impl SwiftStorage {
    /// Renames `from` to `to` (both normalised).
    pub(super) async fn rename_path(
        &self,
        session: &swift::Session,
        from: &Location,
        to: &Location,
    ) -> Result<(), FtpError> {
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
                tracing::info!(%from, %to, "renamed file");
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
                tracing::info!(%from, %to, "renamed empty directory");
                Ok(())
            }
            (Source::EmptyContainer, Location::Container(container), _) => {
                if matches!(&to, Location::Object { container: tc, .. } if tc == container) {
                    return Err(FtpError::Refused {
                        location: to.clone(),
                        what: "a container cannot move into itself",
                    });
                }
                self.refuse_file_target(session, &to).await?;
                let settings = session.head_container(container).await?.settings;
                self.create_dir_like(session, &to, Some(&settings)).await?;
                if let Err(e) = session.delete_container(container).await {
                    tracing::warn!(error = %e, %from, %to, "renamed container: the old one could not be deleted");
                    return Err(e.into());
                }
                tracing::info!(%from, %to, "renamed empty container");
                Ok(())
            }
            (Source::EmptyDir(_), _, _) | (Source::EmptyContainer, _, _) => {
                Err(FtpError::Refused {
                    location: to.clone(),
                    what: "cannot rename this",
                })
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
                ensure_empty_container(session, from, container).await?;
                Ok(Source::EmptyContainer)
            }
            Location::Object { container, key } => {
                let probe = self.probe(session, container, key).await?;
                if !probe.exists() {
                    Err(FtpError::NotFound(from.clone()))
                } else if probe.has_children {
                    Err(FtpError::DirectoryNotEmpty(from.clone()))
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
            Location::Container(container) => match session.head_container(container).await {
                Ok(_) => true,
                Err(e) if e.kind() == swift::ErrorKind::NotFound => false,
                Err(e) => return Err(e.into()),
            },
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
