//! Renaming a directory or a container that holds files: every object under it is copied server-side to its
//! new name, and the sources are deleted only after every copy succeeded.
//!
//! - At most `rename-max-objects` objects (default 10,000) are moved by one command; a bigger tree gets a `550`
//!   that says so, before anything is copied.
//! - Copies run [`COPY_CONCURRENCY`] at a time. Large objects move by manifest (`multipart-manifest=get`), so
//!   their data is never copied: a Static Large Object's segments stay where they are; a Dynamic Large Object
//!   whose segments are inside the moved tree (ftp-cloudfs's `FILE.part/`) gets its `X-Object-Manifest`
//!   pointed at their new place. A Static Large Object whose segments are inside the tree is refused up front
//!   (its manifest would point at deleted segments); swiftftp and python-swiftclient keep segments in
//!   `<container>_segments`, so this is rare.
//! - A failure while copying (or re-pointing a manifest) deletes the copies made so far and leaves the source
//!   as it was. A gateway killed midway leaves the source complete and a partial copy at the new name.
//!   A failure while deleting the sources leaves both names (the new one complete) and says so (`451`).
//! - The target must not exist (moving into an existing directory moves inside it, like `mv`; see `rename.rs`),
//!   and a tree cannot move into itself.
//!
//! Not atomic (Swift has no rename): other clients see both trees while it runs.

use super::error::FtpError;
use super::location::Location;
use super::login::SwiftUser;
use super::storage::SwiftStorage;
use crate::swift::{self, ObjectEntry, ObjectInfo, ObjectRef};
use futures_util::{StreamExt, TryStreamExt};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

/// Server-side copies in flight at once for one rename (Swift does the work).
pub(super) const COPY_CONCURRENCY: usize = 16;

/// A tree: every object of `container` whose name starts with `prefix` (`""`: the whole container), plus the
/// directory's own marker object `marker` (`dir` beside `dir/…`), when it has one.
#[derive(Debug, Clone)]
pub(super) struct Tree {
    pub(super) container: String,
    pub(super) prefix: String,
    pub(super) marker: Option<String>,
}

impl Tree {
    /// The tree at a location: a whole container, or a directory `key` (with its `key` marker if `has_marker`).
    pub(super) fn at(loc: &Location, has_marker: bool) -> Option<Self> {
        match loc {
            Location::Root => None,
            Location::Container(c) => Some(Self {
                container: c.clone(),
                prefix: String::new(),
                marker: None,
            }),
            Location::Object { container, key } => Some(Self {
                container: container.clone(),
                prefix: Location::dir_prefix(key),
                marker: has_marker.then(|| key.clone()),
            }),
        }
    }

    /// Whether `other` lies inside this tree (or is it).
    fn contains(&self, other: &Self) -> bool {
        self.container == other.container && other.prefix.starts_with(&self.prefix)
    }

    /// The name `name` (an object of this tree) gets in `to`; `None` for the directory's own markers (`dir`,
    /// `dir/`) when `to` is a whole container.
    fn moved_name(&self, name: &str, to: &Self) -> Option<String> {
        let moved = if Some(name) == self.marker.as_deref() {
            to.prefix.strip_suffix('/').unwrap_or(&to.prefix).to_owned()
        } else {
            format!(
                "{}{}",
                to.prefix,
                &name[self.prefix.len().min(name.len())..]
            )
        };
        (!moved.is_empty()).then_some(moved)
    }

    /// Where a segment (or a DLO's segment prefix) of this tree is in `to`; `None` when it is not in this tree.
    fn moved_ref(&self, seg: &ObjectRef, to: &Self) -> Option<ObjectRef> {
        (seg.container == self.container && seg.key.starts_with(&self.prefix)).then(|| ObjectRef {
            container: to.container.clone(),
            key: format!("{}{}", to.prefix, &seg.key[self.prefix.len()..]),
        })
    }
}

/// One object to move.
struct Move {
    from: ObjectInfo,
    /// Its new name; `None` for a directory's own marker when the directory becomes a container (a container
    /// needs no marker: the source's is only deleted).
    to: Option<String>,
}

impl SwiftStorage {
    /// Moves every object of `from` to `to` (see the module doc); `to`'s container exists. Returns how many
    /// objects moved.
    pub(super) async fn move_tree(
        &self,
        user: &SwiftUser,
        from: &Tree,
        to: &Tree,
    ) -> Result<usize, FtpError> {
        let session = &user.session;
        let from_loc = tree_location(from);
        if from.contains(to) {
            return Err(FtpError::Refused {
                location: tree_location(to),
                what: "a directory cannot move into itself",
            });
        }
        let moves = self.objects_to_move(session, from, to, &from_loc).await?;
        self.refuse_slo_with_inner_segments(session, from, &moves)
            .await?;

        // Copy everything; on a failure, start no more copies and take back those made. (Owned names in the
        // streams of this file: closures over borrowed items trip rustc's higher-ranked `Send` check,
        // rust-lang/rust#64552, inside libunftp's boxed futures.)
        let copies: Vec<(String, String)> = moves
            .iter()
            .filter_map(|m| Some((m.from.name.clone(), m.to.clone()?)))
            .collect();
        // Each copy answers with the name it may have made: `Some` once attempted (a failed copy may still have
        // landed in Swift if only its reply was lost), `None` when skipped after an earlier failure. Only those
        // are taken back: a failure early in 2000 copies must not cost 2000 deletes before its reply.
        let failed = AtomicBool::new(false);
        let results: Vec<(Option<String>, Result<(), swift::Error>)> =
            futures_util::stream::iter(copies)
                .map(|(from_name, to_name): (String, String)| {
                    let failed = &failed;
                    async move {
                        if failed.load(Ordering::Relaxed) {
                            return (None, Ok(()));
                        }
                        let result = session
                            .copy_object(&from.container, &from_name, &to.container, &to_name)
                            .await;
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        (Some(to_name), result)
                    }
                })
                .buffer_unordered(COPY_CONCURRENCY)
                .collect()
                .await;
        let (made, outcomes): (Vec<Option<String>>, Vec<Result<(), swift::Error>>) =
            results.into_iter().unzip();
        let copied: Vec<String> = made.into_iter().flatten().collect();
        if let Some(e) = outcomes.iter().find_map(|r| r.as_ref().err()) {
            tracing::warn!(error = %e, from = %from_loc, "rename: a copy failed; taking back the copies");
            let kind = e.kind();
            self.delete_names(session, &to.container, copied).await;
            return Err(FtpError::RenameFailed {
                location: from_loc,
                what: "a copy failed: nothing was moved",
                kind,
            });
        }
        if let Err(e) = self.repoint_dlo_manifests(session, from, to, &moves).await {
            tracing::warn!(error = %e, from = %from_loc, "rename: a manifest could not be re-pointed; taking back the copies");
            self.delete_names(session, &to.container, copied).await;
            return Err(FtpError::RenameFailed {
                location: from_loc,
                what: "a large file's manifest could not be updated: nothing was moved",
                kind: e.kind(),
            });
        }

        // Every copy is there: now the sources go.
        let sources: Vec<String> = moves.iter().map(|m| m.from.name.clone()).collect();
        let left = self.delete_names(session, &from.container, sources).await;
        self.forget_listings(user, from, to, &moves).await;
        if left > 0 {
            return Err(FtpError::RenameFailed {
                location: from_loc,
                what: "copied, but some old names could not be removed: both names exist now",
                kind: swift::ErrorKind::Unavailable,
            });
        }
        Ok(moves.len())
    }

    /// The objects of `from` and their new names, within the configured limit.
    async fn objects_to_move(
        &self,
        session: &swift::Session,
        from: &Tree,
        to: &Tree,
        from_loc: &Location,
    ) -> Result<Vec<Move>, FtpError> {
        let limit = self.shared.options.rename_max_objects;
        let mut moves = Vec::new();
        if let Some(marker) = &from.marker {
            let head = session.head_object(&from.container, marker).await?;
            moves.push(Move {
                from: ObjectInfo {
                    name: marker.clone(),
                    bytes: 0,
                    hash: head.etag,
                    content_type: head.content_type,
                    last_modified: head.last_modified,
                    static_large_object: false,
                },
                to: from.moved_name(marker, to),
            });
        }
        let page = self.shared.listing_page();
        let mut entries =
            std::pin::pin!(session.list_objects_paged(&from.container, &from.prefix, None, page));
        while let Some(entry) = entries
            .try_next()
            .await
            .map_err(|e| super::storage::not_found(e, from_loc))?
        {
            let ObjectEntry::Object(info) = entry else {
                continue;
            };
            if limit > 0 && moves.len() as u64 >= limit {
                return Err(FtpError::TooManyToRename {
                    location: from_loc.clone(),
                    limit,
                });
            }
            let to_name = from.moved_name(&info.name, to);
            moves.push(Move {
                from: info,
                to: to_name,
            });
        }
        Ok(moves)
    }

    /// A Static Large Object of the tree whose segments are also in it would lose them with the sources.
    async fn refuse_slo_with_inner_segments(
        &self,
        session: &swift::Session,
        from: &Tree,
        moves: &[Move],
    ) -> Result<(), FtpError> {
        let slos: Vec<String> = moves
            .iter()
            .filter(|m| m.from.static_large_object)
            .map(|m| m.from.name.clone())
            .collect();
        let inner: Vec<bool> = futures_util::stream::iter(slos)
            .map(|name: String| async move {
                let segments = session.slo_segments(&from.container, &name).await?;
                Ok::<_, swift::Error>(
                    segments
                        .iter()
                        .any(|s| s.container == from.container && s.key.starts_with(&from.prefix)),
                )
            })
            .buffered(COPY_CONCURRENCY)
            .try_collect()
            .await?;
        if inner.into_iter().any(|x| x) {
            return Err(FtpError::Refused {
                location: tree_location(from),
                what: "a large file in it keeps its segments inside it too; move that file out first",
            });
        }
        Ok(())
    }

    /// Points the copied Dynamic Large Object manifests whose segments were in the tree at their new place.
    async fn repoint_dlo_manifests(
        &self,
        session: &swift::Session,
        from: &Tree,
        to: &Tree,
        moves: &[Move],
    ) -> Result<(), swift::Error> {
        // Only 0-byte files can be DLO manifests (the listing shows a manifest's own size).
        let candidates: Vec<String> = moves
            .iter()
            .filter(|m| m.from.bytes == 0 && !m.from.static_large_object)
            .filter_map(|m| m.to.clone())
            .collect();
        futures_util::stream::iter(candidates)
            .map(|to_name: String| async move {
                let head = session.head_object(&to.container, &to_name).await?;
                let Some(manifest) = head.dlo_manifest.as_deref() else {
                    return Ok(());
                };
                let Some(moved) =
                    ObjectRef::from_manifest_header(manifest).and_then(|s| from.moved_ref(&s, to))
                else {
                    return Ok(());
                };
                let value = moved.to_manifest_value();
                let mut headers: Vec<(&str, &str)> = head
                    .kept_on_post
                    .iter()
                    .filter(|(k, _)| !k.eq_ignore_ascii_case("X-Object-Manifest"))
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                headers.push(("X-Object-Manifest", &value));
                session.post_object(&to.container, &to_name, &headers).await
            })
            .buffer_unordered(COPY_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Deletes `names` of `container` with the segment deleter (a few at a time; already gone is fine).
    /// Returns how many are left.
    async fn delete_names(
        &self,
        session: &swift::Session,
        container: &str,
        names: Vec<String>,
    ) -> usize {
        let objects = names
            .into_iter()
            .map(|key| ObjectRef {
                container: container.to_owned(),
                key,
            })
            .collect();
        session.delete_objects(objects).await.len()
    }

    /// Forgets the cached listings of every directory of both trees (a listing of a moved subdirectory would
    /// otherwise live on for the cache's TTL).
    async fn forget_listings(&self, user: &SwiftUser, from: &Tree, to: &Tree, moves: &[Move]) {
        let mut dirs = BTreeSet::new();
        for m in moves {
            let names = [
                Some((&from.container, m.from.name.as_str())),
                m.to.as_deref().map(|t| (&to.container, t)),
            ];
            for (container, name) in names.into_iter().flatten() {
                let mut at = name;
                while let Some((parent, _)) = at.rsplit_once('/') {
                    dirs.insert(format!("/{container}/{parent}"));
                    at = parent;
                }
            }
        }
        dirs.insert(tree_location(from).to_string());
        dirs.insert(tree_location(to).to_string());
        for dir in dirs {
            self.shared
                .listings
                .invalidate(user, &Location::parse_str(&dir))
                .await;
        }
    }
}

fn tree_location(tree: &Tree) -> Location {
    match tree.prefix.strip_suffix('/') {
        Some(key) if !key.is_empty() => Location::Object {
            container: tree.container.clone(),
            key: key.to_owned(),
        },
        _ => Location::Container(tree.container.clone()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tree(container: &str, prefix: &str, marker: Option<&str>) -> Tree {
        Tree {
            container: container.into(),
            prefix: prefix.into(),
            marker: marker.map(str::to_owned),
        }
    }

    #[test]
    fn names_move_from_one_tree_to_the_other() {
        let from = tree("c", "a/b/", Some("a/b"));
        let to = tree("d", "x/", None);
        let moved = |t: &Tree, name: &str, to: &Tree| t.moved_name(name, to);
        assert_eq!(moved(&from, "a/b/f.txt", &to).as_deref(), Some("x/f.txt"));
        assert_eq!(moved(&from, "a/b/", &to).as_deref(), Some("x/"));
        assert_eq!(
            moved(&from, "a/b/deep/er", &to).as_deref(),
            Some("x/deep/er")
        );
        assert_eq!(moved(&from, "a/b", &to).as_deref(), Some("x"));
        // A whole container into a directory, and a directory into a new container (its markers stay behind).
        let container = tree("c", "", None);
        assert_eq!(moved(&container, "f", &to).as_deref(), Some("x/f"));
        let new_container = tree("e", "", None);
        assert_eq!(moved(&from, "a/b/f", &new_container).as_deref(), Some("f"));
        assert_eq!(moved(&from, "a/b", &new_container), None);
        assert_eq!(moved(&from, "a/b/", &new_container), None);
    }

    #[test]
    fn a_tree_contains_itself_and_what_is_below() {
        let from = tree("c", "a/", None);
        assert!(from.contains(&tree("c", "a/", None)));
        assert!(from.contains(&tree("c", "a/b/", None)));
        assert!(!from.contains(&tree("c", "ab/", None)));
        assert!(!from.contains(&tree("d", "a/b/", None)));
        assert!(tree("c", "", None).contains(&tree("c", "z/", None)));
    }

    #[test]
    fn segment_prefixes_inside_the_tree_move_with_it() {
        let from = tree("c", "dir/", None);
        let to = tree("c", "new/", None);
        let inner = ObjectRef::from_manifest_header("c/dir/f.part/").unwrap();
        assert_eq!(
            from.moved_ref(&inner, &to),
            Some(ObjectRef {
                container: "c".into(),
                key: "new/f.part/".into()
            })
        );
        let outer = ObjectRef::from_manifest_header("c_segments/dir/f/").unwrap();
        assert_eq!(from.moved_ref(&outer, &to), None);
        assert_eq!(
            ObjectRef {
                container: "c".into(),
                key: "new dir/ä.part/".into()
            }
            .to_manifest_value(),
            "c/new%20dir/%C3%A4.part/"
        );
    }
}
