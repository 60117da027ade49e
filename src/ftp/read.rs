//! The read path: metadata (SIZE, MDTM, MLST), CWD, LIST/NLST/MLSD/STAT listings (RETR is `retrieve.rs`).
//!
//! Costs, per command: CWD and SIZE/MDTM of an object make a HEAD and a two-entry prefix listing concurrently
//! (the prefix listing is what finds pseudo-directories with no marker, and lets a directory win over a file of
//! the same name); listings page through Swift until an empty page and HEAD only the 0-byte files that may be
//! Dynamic Large Object manifests (whose listing size is 0), at most [`HEAD_CONCURRENCY`] at a time. Which ones
//! may be is `dlo-check`: by default only those whose segments are where the known writers put them, found
//! with one listing of `<container>_segments` (so a folder of thousands of empty files costs two listings,
//! not thousands of HEADs); DLOs whose manifests point elsewhere then show 0 bytes unless `dlo-check = all`.
//!
//! Deliberately not here: resolving paths and probing (`storage.rs`), replies (`backend.rs`).

use super::error::FtpError;
use super::listing::Listing;
use super::listing::{DirEntries, Meta, list_line};
use super::location::Location;
use super::login::SwiftUser;
use super::storage::{HEAD_CONCURRENCY, SwiftStorage, file_time, is_marker, not_found};
use crate::config::DloCheck;
use crate::swift::{self};
use futures_util::{StreamExt, TryStreamExt};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;
use unftp_core::storage::Error as StorageError;

impl SwiftStorage {
    pub(super) async fn metadata_of(
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
    pub(super) async fn listing(
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

    pub(super) async fn listing_from_swift(
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
                let page = self.shared.listing_page();
                let mut entries =
                    std::pin::pin!(session.list_objects_paged(container, "", Some('/'), page));
                while let Some(e) = entries.try_next().await.map_err(|e| not_found(e, loc))? {
                    dir.add_swift_entry("", e);
                }
                if dir.is_empty() && !user.known_dirs.is_known(container, "") {
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
                let page = self.shared.listing_page();
                let mut entries =
                    std::pin::pin!(session.list_objects_paged(container, &prefix, Some('/'), page));
                // Anything under `key/`, even only the `key/` marker object itself, makes it a directory.
                let mut exists = false;
                while let Some(e) = entries.try_next().await.map_err(|e| not_found(e, loc))? {
                    exists = true;
                    dir.add_swift_entry(&prefix, e);
                }
                if !exists {
                    // A directory this user just made or entered (`known_dirs.rs`), still empty.
                    if user.known_dirs.is_known(container, key) {
                        return Ok(Listing::Dir(dir));
                    }
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
    pub(super) async fn size_large_objects(
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
    pub(super) async fn segmented_names(
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
        let page = self.shared.listing_page();
        let mut entries =
            std::pin::pin!(
                user.session
                    .list_objects_paged(&segments, prefix, Some('/'), page)
            );
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
    pub(super) async fn list_lines(
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
}
