//! `<container>_segments`: made when a container's first large file needs it (with the container's storage
//! policy and readers), removed once empty after its container is gone.
//!
//! Also the one segment a plain object becomes when it is continued at an offset (a server-side copy).
//!
//! Not here: the segments in it (`stream.rs`, `cleanup.rs`).

use super::ManifestEntry;
use super::stream::upload_id;
use crate::swift::client::{Under, name_hash};
use crate::swift::error::Error;
use crate::swift::{ObjectEntry, Session, UploadError};
use std::sync::Arc;

/// The suffix of the container holding a container's segments (python-swiftclient's convention).
pub const SEGMENTS_SUFFIX: &str = "_segments";

/// The most names under a prefix a session keeps (`Session::may_hold`); past them it asks for each name. Records
/// of interrupted uploads are few: a folder with this many is rare, and then costs what it did before.
const NAMES_UNDER: u32 = 100;

/// The read ACL a `<container>_segments` needs beside its container's `acl`: the same readers (whoever reads a
/// Static Large Object reads its segments, and Swift answers `409` to a reader who may not), without
/// `.rlistings` (nobody needs to list segments). `None`: no read ACL.
pub fn segments_read_acl(acl: Option<&str>) -> Option<String> {
    let kept: Vec<&str> = acl
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && *e != ".rlistings")
        .collect();
    (!kept.is_empty()).then(|| kept.join(","))
}

impl Session {
    /// Deletes `<container>_segments` if it exists and is empty (once its container is gone): `Ok(true)` when it
    /// was deleted. One that holds anything (a partial upload, another tool's segments) stays: Swift refuses to
    /// delete a container that is not empty.
    pub async fn delete_empty_segments_container(&self, container: &str) -> Result<bool, Error> {
        let segments = format!("{container}{SEGMENTS_SUFFIX}");
        match self.delete_container(&segments).await {
            Ok(()) => {
                self.segments_seen.set(&segments, false);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    crate::swift::ErrorKind::NotFound | crate::swift::ErrorKind::Conflict
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Makes `segments` if it is missing, with `container`'s storage policy and its readers
    /// ([`segments_read_acl`]): a large file in a public container must be readable by the public too.
    pub async fn ensure_segments_container(
        &self,
        container: &str,
        segments: &str,
    ) -> Result<(), Error> {
        match self.head_container(segments).await {
            Ok(_) => {
                self.segments_seen.set(segments, true);
                return Ok(());
            }
            Err(e) if e.kind() == crate::swift::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let inherited: Vec<(String, String)> = match self.head_container(container).await {
            Ok(h) => {
                let read = segments_read_acl(h.read_acl.as_deref())
                    .map(|acl| ("X-Container-Read".to_owned(), acl));
                h.settings
                    .into_iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case("X-Storage-Policy"))
                    .chain(read)
                    .collect()
            }
            Err(_) => Vec::new(),
        };
        let headers: Vec<(&str, &str)> = inherited
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let made = match self.put_container(segments, &headers).await {
            // Created meanwhile by another upload, with another policy: use it as it is.
            Err(e) if e.kind() == crate::swift::ErrorKind::Conflict => Ok(()),
            other => other,
        };
        if made.is_ok() {
            self.segments_seen.set(segments, true);
        }
        made
    }

    /// Whether `segments` exists: looked up (a `HEAD`) at most every [`SEGMENTS_SEEN_FOR`](crate::swift::SEGMENTS_SEEN_FOR) per session, and
    /// known at once after this session made it.
    pub async fn segments_container_exists(&self, segments: &str) -> Result<bool, Error> {
        if let Some(exists) = self.segments_seen.get(segments) {
            return Ok(exists);
        }
        let exists = match self.head_container(segments).await {
            Ok(_) => true,
            Err(e) if e.kind() == crate::swift::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        self.segments_seen.set(segments, exists);
        Ok(exists)
    }

    /// Whether `container` may hold `name` (which starts with `prefix`): from one listing of the names under
    /// `prefix` (at most `NAMES_UNDER`, 100), trusted for [`SEGMENTS_SEEN_FOR`](crate::swift::SEGMENTS_SEEN_FOR).
    /// `true` where more names are there than that, or where this session wrote under `prefix` in that
    /// time: the caller then asks for `name` itself. A missing container holds nothing. For a caller that
    /// would otherwise ask for one object under `prefix` on every upload: the segments container of a folder
    /// that had a large file exists, and asking it for a record per small file put a `GET` beside every small
    /// upload's `PUT` (and so did a single record of another file, when only emptiness was remembered).
    pub async fn may_hold(&self, container: &str, prefix: &str, name: &str) -> Result<bool, Error> {
        let key = format!("{container}/{prefix}");
        let under = match self.prefixes_seen.get(&key) {
            Some(under) => under,
            None => {
                let under = match self
                    .list_objects_page(container, prefix, None, None, Some(NAMES_UNDER))
                    .await
                {
                    Ok(page) if page.len() < NAMES_UNDER as usize => Under::Names(Arc::new(
                        page.into_iter()
                            .filter_map(|entry| match entry {
                                ObjectEntry::Object(object) => Some(name_hash(&object.name)),
                                ObjectEntry::Subdir(_) => None,
                            })
                            .collect(),
                    )),
                    Ok(_) => Under::Unknown,
                    Err(e) if e.kind() == crate::swift::ErrorKind::NotFound => {
                        Under::Names(Arc::default())
                    }
                    Err(e) => return Err(e),
                };
                self.prefixes_seen.set(&key, under.clone());
                under
            }
        };
        Ok(match under {
            Under::Names(names) => names.contains(&name_hash(name)),
            Under::Unknown => true,
        })
    }

    /// This session wrote under `prefix` of `container`: [`may_hold`](Self::may_hold) answers `true` (a listing
    /// could still miss what was just written).
    pub fn wrote_under(&self, container: &str, prefix: &str) {
        self.prefixes_seen
            .set(&format!("{container}/{prefix}"), Under::Unknown);
    }

    /// A plain object's bytes as the first segment of its continuation: a server-side copy into
    /// `<container>_segments/<key>/slo/<id>/base`.
    pub async fn object_as_segment(
        &self,
        container: &str,
        key: &str,
        size: u64,
        etag: &str,
    ) -> Result<ManifestEntry, UploadError> {
        let segments_container = format!("{container}{SEGMENTS_SUFFIX}");
        self.ensure_segments_container(container, &segments_container)
            .await?;
        let name = format!("{key}/slo/{}/base", upload_id());
        self.copy_object(container, key, &segments_container, &name)
            .await?;
        Ok(ManifestEntry {
            path: format!("/{segments_container}/{name}"),
            etag: etag.to_owned(),
            size_bytes: size,
            range: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_readable_by_their_container_s_readers_and_listed_by_nobody() {
        assert_eq!(
            segments_read_acl(Some(".r:*,.rlistings")).as_deref(),
            Some(".r:*")
        );
        assert_eq!(
            segments_read_acl(Some("test2:*, .r:*")).as_deref(),
            Some("test2:*,.r:*")
        );
        assert_eq!(segments_read_acl(Some(".rlistings")), None);
        assert_eq!(segments_read_acl(Some("")), None);
        assert_eq!(segments_read_acl(None), None);
    }
}
