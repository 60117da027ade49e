//! Uploads that continue: a partial upload kept when its client went away, and large objects continued at an
//! offset (`REST n` + `STOR`, `APPE`), by reusing stored segments rather than sending their bytes again.
//!
//! **Partial uploads.** When the client of a segmented upload goes away (its connection reset, or closed
//! while its control connection was closed too), the segments already stored, the last one ending where the
//! bytes stopped, are recorded in `<container>_segments/.swiftftp-partial/<key>` (a small JSON object): the
//! manifest entries and the byte count. No object appears at `<key>`; the record is what a later `SIZE` reports
//! and what `REST n` + `STOR` (or `APPE`) continues. A record older than [`PARTIAL_TTL`] is ignored and removed
//! with its segments when next looked at.
//!
//! **Continuing an object.** The first `n` bytes come from what is stored: a partial upload's segments, a
//! Static Large Object's segments (the last one cut with a manifest `range`), or, for a plain object, a
//! server-side copy of it into the segments container. The new bytes follow as new segments; the manifest is
//! written last. The content MD5 of such an object is not known (its first part is not read again), so it gets
//! no `X-Object-Meta-Md5`.
//!
//! **Interrupted overwrites** keep nothing (the old file stays whole), but leave a record saying so: a resume of
//! the name (`REST n` + `STOR`, `APPE`) before it is written whole again is refused, because the size a client
//! sees is the old file's, and continuing from it would append the new file's rest to the old one.
//!
//! Not here: the FTP decisions (which offsets are valid, small objects rewritten whole): `ftp/write.rs`.

use super::error::{Error, Op};
use super::large::{ManifestEntry, SEGMENTS_SUFFIX};
use super::urls::object_url_with;
use super::{Session, UploadError};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where partial upload records live inside `<container>_segments`.
pub const PARTIAL_FOLDER: &str = ".swiftftp-partial/";

/// How long a partial upload can be resumed.
pub const PARTIAL_TTL: Duration = Duration::from_secs(7 * 86_400);

/// A partial upload's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialUpload {
    /// The bytes stored so far, in order.
    pub segments: Vec<ManifestEntry>,
    /// Their total: where the upload continues.
    pub bytes: u64,
    /// The `Content-Type` the object will have.
    #[serde(default)]
    pub content_type: Option<String>,
    /// When it was recorded (seconds since the epoch).
    pub saved: u64,
    /// Not a partial upload but the mark of an interrupted *overwrite*: the old file is still whole at the name
    /// (nothing was kept), and its size is not where the new upload stopped.
    #[serde(default)]
    pub interrupted_overwrite: bool,
    /// When it was recorded, in milliseconds since the epoch (to compare with a file's time).
    #[serde(default)]
    pub saved_ms: u64,
}

impl PartialUpload {
    /// Whether a record read back can be trusted: `<container>_segments` is an ordinary container its users
    /// may write to, so a record is used (and its segments ever deleted) only if every segment is one of this
    /// name's own (`/<container>_segments/<key>/slo/<upload id>/<index>`, not those of `<key>/slo/<other>`:
    /// [`super::ObjectRef::is_own_slo_segment_of`]),
    /// every range lies within its segment, and the sizes add up.
    fn is_sound(&self, container: &str, key: &str) -> bool {
        let is_own = |path: &str| {
            super::ObjectRef::from_slo_path(path)
                .is_some_and(|s| s.is_own_slo_segment_of(container, key))
        };
        let mut total = 0u64;
        for e in &self.segments {
            if !is_own(&e.path) || !e.is_sound() {
                return false;
            }
            total = match total.checked_add(e.used_bytes()) {
                Some(t) => t,
                None => return false,
            };
        }
        total == self.bytes
    }

    fn expired(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        now.saturating_sub(self.saved) > PARTIAL_TTL.as_secs()
    }

    /// The segment objects it holds.
    pub fn segment_refs(&self) -> Vec<super::ObjectRef> {
        self.segments
            .iter()
            .filter_map(|e| super::ObjectRef::from_slo_path(&e.path))
            .collect()
    }
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn record_name(key: &str) -> String {
    format!("{PARTIAL_FOLDER}{key}")
}

impl Session {
    /// Records a partial upload of `container/key`.
    pub(super) async fn save_partial(
        &self,
        container: &str,
        key: &str,
        segments: &[ManifestEntry],
        bytes: u64,
        headers: &[(&str, &str)],
    ) -> Result<(), Error> {
        let record = PartialUpload {
            segments: segments.to_vec(),
            bytes,
            content_type: headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Content-Type"))
                .map(|(_, v)| (*v).to_owned()),
            saved: now_secs(),
            interrupted_overwrite: false,
            saved_ms: now_ms(),
        };
        self.put_record(container, key, &record).await?;
        tracing::info!(%container, %key, bytes, segments = segments.len(), "partial upload kept for a resume");
        Ok(())
    }

    /// Marks `container/key` as the target of an overwrite whose client went away: continuing "the file" at an
    /// offset would then append the new file's rest to the old file, which a resume after it is refused for
    /// (until the name is written whole again).
    pub async fn mark_interrupted_overwrite(
        &self,
        container: &str,
        key: &str,
    ) -> Result<(), Error> {
        let segments_container = format!("{container}{SEGMENTS_SUFFIX}");
        self.ensure_segments_container(container, &segments_container)
            .await?;
        let record = PartialUpload {
            segments: Vec::new(),
            bytes: 0,
            content_type: None,
            saved: now_secs(),
            interrupted_overwrite: true,
            saved_ms: now_ms(),
        };
        self.put_record(container, key, &record).await
    }

    async fn put_record(
        &self,
        container: &str,
        key: &str,
        record: &PartialUpload,
    ) -> Result<(), Error> {
        let op = Op::PutObject {
            container: container.to_owned(),
            key: key.to_owned(),
        };
        let body = serde_json::to_vec(record).map_err(|e| Error::protocol(op, e.to_string()))?;
        let segments_container = format!("{container}{SEGMENTS_SUFFIX}");
        self.put_object(
            &segments_container,
            &record_name(key),
            Bytes::from(body),
            &[("Content-Type", "application/json")],
        )
        .await?;
        Ok(())
    }

    /// Whether `segments_container` exists: looked up (a `HEAD`) at most every [`SEGMENTS_SEEN_FOR`](super::SEGMENTS_SEEN_FOR) per
    /// session, and known at once after this session created it.
    async fn segments_container_exists(&self, segments_container: &str) -> Result<bool, Error> {
        if let Some(exists) = self.segments_seen.get(segments_container) {
            return Ok(exists);
        }
        let exists = match self.head_container(segments_container).await {
            Ok(_) => true,
            Err(e) if e.kind() == super::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        self.segments_seen.set(segments_container, exists);
        Ok(exists)
    }

    /// The partial upload of `container/key`, if one can be resumed. An expired one is removed (with its
    /// segments) and is none.
    pub async fn partial_upload(
        &self,
        container: &str,
        key: &str,
    ) -> Result<Option<PartialUpload>, Error> {
        let segments_container = format!("{container}{SEGMENTS_SUFFIX}");
        if !self.segments_container_exists(&segments_container).await? {
            return Ok(None);
        }
        let name = record_name(key);
        let op = Op::GetObject {
            container: segments_container.clone(),
            key: name.clone(),
        };
        let body = match self
            .fetch_small(&op, |http, base| {
                http.get(object_url_with(base, &segments_container, &name, &[]))
            })
            .await
        {
            Ok(body) => body,
            Err(e) if e.kind() == super::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let record: PartialUpload = match serde_json::from_slice(&body) {
            Ok(record) => record,
            Err(e) => {
                tracing::warn!(%container, %key, error = %e, "ignoring an unreadable partial upload record");
                return Ok(None);
            }
        };
        if !record.is_sound(container, key) {
            tracing::warn!(%container, %key, "ignoring a partial upload record that names segments not its own");
            return Ok(None);
        }
        if record.expired() {
            // A file written at the name since may use these segments (a record whose delete failed after
            // its resume): then only the record goes.
            let keep: Vec<ManifestEntry> = match self.head_object(container, key).await {
                Ok(head) if head.static_large_object => self
                    .slo_manifest(container, key)
                    .await
                    .unwrap_or_else(|_| record.segments.clone()),
                Ok(_) => Vec::new(),
                Err(e) if e.kind() == super::ErrorKind::NotFound => Vec::new(),
                Err(_) => record.segments.clone(),
            };
            tracing::info!(%container, %key, "removing an expired partial upload");
            self.forget_partial(container, key, &record, &keep).await;
            return Ok(None);
        }
        Ok(Some(record))
    }

    /// After an upload that started from (or over) the partial upload `old` failed: if a new record replaced
    /// it (the client went away again), the segments of `old` the new one does not name are deleted.
    pub async fn drop_superseded_partial(&self, container: &str, key: &str, old: &PartialUpload) {
        if let Ok(Some(now)) = self.partial_upload(container, key).await
            && now != *old
        {
            self.delete_objects(super::not_listed(old.segment_refs(), &now.segments))
                .await;
        }
    }

    /// Deletes the record of `container/key`, if any, leaving segments alone (a file's `DELE` has just taken
    /// those its manifest listed).
    pub async fn delete_partial_record(&self, container: &str, key: &str) {
        let segments_container = format!("{container}{SEGMENTS_SUFFIX}");
        match self
            .delete_object(&segments_container, &record_name(key))
            .await
        {
            Ok(()) => {}
            Err(e) if e.kind() == super::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(error = %e, %container, %key, "cannot delete a partial upload's record")
            }
        }
    }

    /// Deletes a partial upload's record, and its segments except those `still_used` lists (a continued
    /// upload's manifest names them now).
    pub async fn forget_partial(
        &self,
        container: &str,
        key: &str,
        record: &PartialUpload,
        still_used: &[ManifestEntry],
    ) {
        self.delete_partial_record(container, key).await;
        self.delete_objects(super::not_listed(record.segment_refs(), still_used))
            .await;
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
        let name = format!("{key}/slo/{}/base", super::large::upload_id());
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::swift::large::first_bytes_of;

    fn entry(name: &str, size: u64) -> ManifestEntry {
        ManifestEntry {
            path: format!("/c_segments/{name}"),
            etag: "e".into(),
            size_bytes: size,
            range: None,
        }
    }

    #[test]
    fn the_first_bytes_of_segments_cut_the_last_one_with_a_range() {
        let all = [entry("a", 10), entry("b", 10), entry("c", 5)];
        assert_eq!(first_bytes_of(&all, 0).unwrap(), Vec::new());
        assert_eq!(first_bytes_of(&all, 10).unwrap(), vec![entry("a", 10)]);
        let cut = first_bytes_of(&all, 13).unwrap();
        assert_eq!(cut.len(), 2);
        assert_eq!(cut[1].range.as_deref(), Some("0-2"));
        assert_eq!(cut[1].used_bytes(), 3);
        assert_eq!(first_bytes_of(&all, 25).unwrap().len(), 3);
        assert_eq!(first_bytes_of(&all, 26), None);
        // An entry that is a range already is cut within it.
        let ranged = [ManifestEntry {
            range: Some("100-199".into()),
            ..entry("r", 1000)
        }];
        let cut = first_bytes_of(&ranged, 50).unwrap();
        assert_eq!(cut[0].range.as_deref(), Some("100-149"));
    }

    #[test]
    fn only_sound_records_of_the_names_own_segments_are_trusted() {
        let own = |name: &str, size: u64, range: Option<&str>| ManifestEntry {
            path: format!("/c_segments/dir/f/slo/1-a/0000000{name}"),
            etag: "e".into(),
            size_bytes: size,
            range: range.map(str::to_owned),
        };
        let record = |segments: Vec<ManifestEntry>, bytes: u64| PartialUpload {
            segments,
            bytes,
            content_type: None,
            saved: 1,
            interrupted_overwrite: false,
            saved_ms: 1000,
        };
        assert!(
            record(vec![own("0", 10, None), own("1", 10, Some("0-4"))], 15).is_sound("c", "dir/f")
        );
        // Sizes that do not add up, ranges outside their segment or backwards, foreign paths: refused.
        assert!(!record(vec![own("0", 10, None)], 11).is_sound("c", "dir/f"));
        assert!(!record(vec![own("0", 10, Some("5-10"))], 6).is_sound("c", "dir/f"));
        assert!(!record(vec![own("0", 10, Some("10-0"))], 0).is_sound("c", "dir/f"));
        assert!(!record(vec![own("0", 10, Some("x-1"))], 10).is_sound("c", "dir/f"));
        assert!(!record(vec![own("0", 10, None)], 10).is_sound("c", "dir/g"));
        assert!(!record(vec![own("0", 10, None)], 10).is_sound("d", "dir/f"));
        let foreign = ManifestEntry {
            path: "/other/precious".into(),
            ..own("0", 10, None)
        };
        assert!(!record(vec![foreign], 10).is_sound("c", "dir/f"));
        let escape = ManifestEntry {
            path: "/c_segments/dir/f/slo/../../../other".into(),
            ..own("0", 10, None)
        };
        assert!(!record(vec![escape], 10).is_sound("c", "dir/f"));
        // The segments of a file named `dir/f/slo/x` are not `dir/f`'s.
        let longer_name = ManifestEntry {
            path: "/c_segments/dir/f/slo/x/slo/1-a/00000000".into(),
            ..own("0", 10, None)
        };
        assert!(!record(vec![longer_name], 10).is_sound("c", "dir/f"));
    }

    #[test]
    fn records_read_back() {
        let record = PartialUpload {
            segments: vec![entry("a", 10)],
            bytes: 10,
            content_type: Some("text/plain".into()),
            saved: 1,
            interrupted_overwrite: false,
            saved_ms: 1000,
        };
        let json = serde_json::to_vec(&record).unwrap();
        assert_eq!(
            serde_json::from_slice::<PartialUpload>(&json).unwrap(),
            record
        );
        assert!(record.expired());
    }
}
