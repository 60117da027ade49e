//! Which segments are a file's own, and so may be deleted with it: exactly those named the way their writers
//! (swiftftp, python-swiftclient, rclone, ftp-cloudfs) name a file's own segments. A manifest is something any
//! user with write access to the container can plant; these rules keep a planted one from making the gateway
//! delete another file's or another container's objects.
//!
//! Not here: the deleting (`cleanup.rs`, [`Session::delete_objects`]).

use super::container::SEGMENTS_SUFFIX;
use crate::swift::error::Error;
use crate::swift::{ObjectEntry, ObjectHead, ObjectRef, Session};
use futures_util::TryStreamExt;

impl Session {
    /// The segments a large object owns, read before it is replaced or deleted, so that they can be deleted
    /// after it: only those where swiftftp, python-swiftclient, rclone or ftp-cloudfs put this file's own
    /// segments, named exactly as they name them (see [`ObjectRef::is_own_segment_of`] and
    /// [`ObjectRef::is_own_folder_of`]). A manifest is something any user with write access to the container
    /// can plant; following it elsewhere (another container, another file's folder, a nested name's folder) would
    /// delete, with the token of whoever replaces the file, objects the planter could not touch. Reading through
    /// a manifest is Swift's business (it checks the reader's rights); deleting through one is ours. Nothing for
    /// a plain object.
    ///
    /// So the segments a renamed file keeps under its old name are left when it is deleted (logged): nothing a
    /// planter cannot also write says they are not another file's.
    pub async fn segments_of(
        &self,
        container: &str,
        key: &str,
        head: &ObjectHead,
    ) -> Result<Vec<ObjectRef>, Error> {
        if head.static_large_object {
            let listed = self.slo_segments(container, key).await?;
            let total = listed.len();
            let owned: Vec<ObjectRef> = listed
                .into_iter()
                .filter(|s| s.is_own_segment_of(container, key))
                .collect();
            if owned.len() < total {
                tracing::warn!(%container, %key, left = total - owned.len(), "leaving segments an SLO manifest names outside the file's own segment folder");
            }
            return Ok(owned);
        }
        let Some(manifest) = head.dlo_manifest.as_deref() else {
            return Ok(Vec::new());
        };
        let Some(ObjectRef {
            container: seg_container,
            key: prefix,
        }) = ObjectRef::from_manifest_header(manifest)
        else {
            return Ok(Vec::new());
        };
        // ftp-cloudfs wrote `c/FILE.part` (no slash, so `FILE.partX` would match too): its own are under `FILE.part/`.
        let prefix = if seg_container == container && prefix == format!("{key}.part") {
            format!("{prefix}/")
        } else {
            prefix
        };
        let folder = ObjectRef {
            container: seg_container,
            key: prefix,
        };
        if !folder.key.ends_with('/') || !folder.is_own_folder_of(container, key) {
            tracing::warn!(%container, %key, manifest, "leaving a DLO's segments: its prefix is not the file's own segment folder");
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        let mut entries = std::pin::pin!(self.list_objects(&folder.container, &folder.key, None));
        while let Some(e) = entries.try_next().await? {
            if let ObjectEntry::Object(o) = e {
                // Only segments right in the folder, named like segments (`00000003`): what lies deeper belongs
                // to a file whose name starts like this folder's.
                let direct = o
                    .name
                    .strip_prefix(&folder.key)
                    .is_some_and(|rest| numbered_parts(rest, 1..=1));
                if direct {
                    found.push(ObjectRef {
                        container: folder.container.clone(),
                        key: o.name,
                    });
                }
            }
        }
        Ok(found)
    }
}

impl ObjectRef {
    /// Reads an SLO manifest's segment path (`/container/key`): Swift stores and resolves it as written, so a
    /// `%41` in it is three characters, not an `A`.
    pub fn from_slo_path(path: &str) -> Option<Self> {
        split_path(path)
    }

    /// Reads an `X-Object-Manifest` value (`container/prefix`): Swift percent-decodes it, and
    /// [`Self::to_manifest_value`] encodes it.
    pub fn from_manifest_header(value: &str) -> Option<Self> {
        let decoded = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .ok()?;
        split_path(&decoded)
    }

    /// Whether this SLO segment is one of `container/key`'s own, named exactly as its writers name them:
    /// `<container>_segments/<key>/slo/<id>/<index>` (swiftftp), `<key>/slo/<mtime>/<size>/<segment size>/<index>`
    /// (python-swiftclient), or `<container>/<key>.part/<index>` (ftp-cloudfs). Every part after the name is a
    /// number or time, so the segments of a file named `<key>/a` or `<key>/slo/x` are never `<key>`'s.
    pub fn is_own_segment_of(&self, container: &str, key: &str) -> bool {
        self.is_own_slo_segment_of(container, key)
            || (self.container == container
                && self
                    .key
                    .strip_prefix(&format!("{key}.part/"))
                    .is_some_and(|rest| numbered_parts(rest, 1..=1)))
    }

    /// The `<container>_segments/<key>/slo/...` case of [`Self::is_own_segment_of`] (the only one swiftftp writes).
    pub fn is_own_slo_segment_of(&self, container: &str, key: &str) -> bool {
        self.container == format!("{container}{SEGMENTS_SUFFIX}")
            && self
                .key
                .strip_prefix(&format!("{key}/slo/"))
                .is_some_and(|rest| numbered_parts(rest, 2..=usize::MAX))
    }

    /// Whether this DLO prefix is the file's own segment folder: `<container>_segments/<key>/<time>/<size>/`
    /// (rclone), `.../<key>/<mtime>/<size>/<segment size>/` (python-swiftclient), or `<container>/<key>.part/`
    /// (ftp-cloudfs). Stricter than a prefix test: `<key>/` alone would also hold the segments of every file named
    /// `<key>/...`. Only the segments right in it are taken (see [`Session::segments_of`]).
    pub fn is_own_folder_of(&self, container: &str, key: &str) -> bool {
        if self.container == container {
            return self.key == format!("{key}.part/");
        }
        self.container == format!("{container}{SEGMENTS_SUFFIX}")
            && self
                .key
                .strip_prefix(&format!("{key}/"))
                .and_then(|rest| rest.strip_suffix('/'))
                .is_some_and(|rest| numbered_parts(rest, 1..=4))
    }

    /// `container/key`, percent-encoded where a header value needs it (Swift decodes it).
    pub fn to_manifest_value(&self) -> String {
        const SET: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
            .add(b' ')
            .add(b'%')
            .add(b'?')
            .add(b'#')
            .add(b'"');
        format!(
            "{}/{}",
            percent_encoding::utf8_percent_encode(&self.container, SET),
            percent_encoding::utf8_percent_encode(&self.key, SET)
        )
    }
}

/// Whether `rest` is `count` `/`-separated parts, each what segment writers put after a file's name: a number, a
/// time (`1580702706.000000`) or swiftftp's upload id (`1733240000000000-1a2b3c4d`). Never `slo`, `..` or a name.
fn numbered_parts(rest: &str, count: std::ops::RangeInclusive<usize>) -> bool {
    let numbered = |part: &str| {
        part.starts_with(|c: char| c.is_ascii_digit())
            && part
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == '.' || c == '-')
    };
    count.contains(&rest.split('/').count()) && rest.split('/').all(numbered)
}

/// `/container/key` or `container/key` into its parts, taken as written.
fn split_path(path: &str) -> Option<ObjectRef> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let (container, key) = path.split_once('/')?;
    (!container.is_empty() && !key.is_empty()).then(|| ObjectRef {
        container: container.to_owned(),
        key: key.to_owned(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn slo_paths_are_taken_as_written_and_headers_decoded() {
        assert_eq!(
            ObjectRef::from_slo_path("/c_segments/a%41.bin/slo/1/00000000"),
            Some(ObjectRef {
                container: "c_segments".into(),
                key: "a%41.bin/slo/1/00000000".into()
            })
        );
        assert_eq!(
            ObjectRef::from_manifest_header("c/a%20b.part/").map(|s| s.key),
            Some("a b.part/".into())
        );
        assert_eq!(
            ObjectRef::from_manifest_header("c_segments/a%2541.bin/").map(|s| s.key),
            Some("a%41.bin/".into())
        );
        assert_eq!(split_path("/c"), None);
        assert_eq!(split_path("/c/"), None);
        let owned = |c: &str, k: &str| ObjectRef {
            container: c.into(),
            key: k.into(),
        };
        // A header value written by to_manifest_value reads back as the same folder.
        let folder = owned("c_segments", "d i r/ä%2F.bin/");
        assert_eq!(
            ObjectRef::from_manifest_header(&folder.to_manifest_value()),
            Some(folder)
        );
    }

    #[test]
    fn only_a_files_own_segments_are_deleted_with_it() {
        let seg = |c: &str, k: &str| ObjectRef {
            container: c.into(),
            key: k.into(),
        };
        // Where each writer puts a file's own segments.
        assert!(seg("c", "big.part/00000001").is_own_segment_of("c", "big"));
        assert!(
            seg("c_segments", "d/x/slo/1733240000000000-1a2b3c4d/00000000")
                .is_own_segment_of("c", "d/x")
        );
        assert!(
            seg("c_segments", "d/x/slo/1580702706.000000/6/3/00000001")
                .is_own_segment_of("c", "d/x")
        );
        assert!(seg("c_segments", "d/x/1580702706.000000/6/3/").is_own_folder_of("c", "d/x"));
        assert!(seg("c_segments", "d/x/1580702706.5/6/").is_own_folder_of("c", "d/x"));
        assert!(seg("c", "big.part/").is_own_folder_of("c", "big"));
        // A renamed file's segments under its old name: left (a planted manifest could name them just as well).
        assert!(!seg("c_segments", "old/slo/1/00000000").is_own_segment_of("c", "new"));
        // Nested names: the segments of `d/x/a` and `d/x/slo/y` are not `d/x`'s, nor is `d/x/` a folder of its own.
        assert!(!seg("c_segments", "d/x/a/slo/1/00000000").is_own_segment_of("c", "d/x"));
        assert!(!seg("c_segments", "d/x/slo/y/slo/1/00000000").is_own_segment_of("c", "d/x"));
        assert!(!seg("c_segments", "d/x/").is_own_folder_of("c", "d/x"));
        assert!(!seg("c_segments", "d/x/a/").is_own_folder_of("c", "d/x"));
        assert!(!seg("c_segments", "d/x/slo/").is_own_folder_of("c", "d/x"));
        // Another container: what a planted manifest points at.
        assert!(!seg("victim", "data/1").is_own_segment_of("shared", "report.txt"));
        assert!(
            !seg("victim_segments", "report.txt/slo/1/00000000")
                .is_own_segment_of("shared", "report.txt")
        );
        assert!(
            !seg("victim_segments", "report.txt/1/2/").is_own_folder_of("shared", "report.txt")
        );
        // Dots and control characters are never segment names.
        assert!(!seg("c_segments", "d/x/slo/../00000000").is_own_segment_of("c", "d/x"));
        assert!(!seg("c_segments", "d/x/slo/.\t./00000000").is_own_segment_of("c", "d/x"));
        assert!(!seg("c", "big.part/..").is_own_segment_of("c", "big"));
        // A DLO prefix: another file's folder, the whole segments container, a name's prefix, the manifest's own
        // folder.
        assert!(!seg("c_segments", "d/xy/1/").is_own_folder_of("c", "d/x"));
        assert!(!seg("c_segments", "").is_own_folder_of("c", "d/x"));
        assert!(!seg("c", "e").is_own_folder_of("c", "dlo"));
        assert!(!seg("c", "d/").is_own_folder_of("c", "d/big"));
        assert!(!seg("c", "big.partX/1").is_own_segment_of("c", "big"));
        assert!(!seg("c", "big.part/sub/1").is_own_segment_of("c", "big"));
    }
}
