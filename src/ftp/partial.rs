//! Partial uploads: what a large upload stored before its client went away, kept so that `REST n` + `STOR` or
//! `APPE` can continue it, and the marks of interrupted overwrites.
//!
//! **Partial uploads.** When the client of a segmented upload to a new name goes away (its connection reset, or
//! closed while its control connection was closed too), the segments already stored, the last one ending where
//! the bytes stopped, are recorded in `<container>_segments/.swiftftp-partial/<key>` (a small JSON object): the
//! manifest entries and the byte count. No object appears at `<key>`; the record is what a later `SIZE`
//! reports and what `REST n` + `STOR` (or `APPE`) continues (`resume.rs`). A record older than
//! [`PARTIAL_TTL`] is ignored and removed with its segments when next looked at.
//!
//! **Looking costs no request most of the time**: a session trusts for 5 s that a container has no segments
//! container, or that its segments container holds no record at all (one listing of one name); only where
//! records exist does each new name cost a `GET` of its record.
//!
//! **Interrupted overwrites** keep nothing (the old file stays whole), but leave a record saying so: a resume of
//! the name before it is written whole again is refused, because the size a client sees is the old file's, and
//! continuing from it would append the new file's rest to the old one.
//!
//! **Trust.** `<container>_segments` is an ordinary container its users may write to: a record is used (and
//! its segments ever deleted) only if every segment is the name's own and the sizes add up
//! ([`PartialUpload::is_sound`]).
//!
//! Not here: storing and deleting segments (`swift/large/`), when a resume is valid (`resume.rs`, `write.rs`).

use crate::swift::{self, ManifestEntry, ObjectRef, SEGMENTS_SUFFIX};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where partial upload records live inside `<container>_segments`.
pub(super) const PARTIAL_FOLDER: &str = ".swiftftp-partial/";

/// How long a partial upload can be resumed.
pub(super) const PARTIAL_TTL: Duration = Duration::from_secs(7 * 86_400);

/// A partial upload's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PartialUpload {
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
    /// Whether a record read back can be trusted: every segment is one of this name's own
    /// (`/<container>_segments/<key>/slo/<upload id>/<index>`, not those of `<key>/slo/<other>`:
    /// [`ObjectRef::is_own_slo_segment_of`]), every range lies within its segment, and the sizes add up.
    fn is_sound(&self, container: &str, key: &str) -> bool {
        let is_own = |path: &str| {
            ObjectRef::from_slo_path(path).is_some_and(|s| s.is_own_slo_segment_of(container, key))
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
        now_secs().saturating_sub(self.saved) > PARTIAL_TTL.as_secs()
    }

    /// The segment objects it holds.
    pub(super) fn segment_refs(&self) -> Vec<ObjectRef> {
        self.segments
            .iter()
            .filter_map(|e| ObjectRef::from_slo_path(&e.path))
            .collect()
    }

    fn new(segments: Vec<ManifestEntry>, bytes: u64, content_type: Option<String>) -> Self {
        Self {
            segments,
            bytes,
            content_type,
            saved: now_secs(),
            interrupted_overwrite: false,
            saved_ms: now_ms(),
        }
    }
}

/// What keeps an interrupted upload of a new name: its record ([`swift::KeepInterrupted`]).
pub(super) struct KeepAsPartial<'a> {
    /// The session writing the record.
    pub(super) session: &'a swift::Session,
    /// The container.
    pub(super) container: &'a str,
    /// The name.
    pub(super) key: &'a str,
    /// The `Content-Type` the file will have.
    pub(super) content_type: Option<&'a str>,
}

#[async_trait::async_trait]
impl swift::KeepInterrupted for KeepAsPartial<'_> {
    async fn keep(&self, manifest: &[ManifestEntry], bytes: u64) -> Result<(), swift::Error> {
        let record = PartialUpload::new(
            manifest.to_vec(),
            bytes,
            self.content_type.map(str::to_owned),
        );
        put_record(self.session, self.container, self.key, &record).await?;
        tracing::debug!(container = %self.container, key = %self.key, bytes, segments = manifest.len(), "partial upload kept for a resume");
        Ok(())
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

fn segments_of(container: &str) -> String {
    format!("{container}{SEGMENTS_SUFFIX}")
}

/// Marks `container/key` as the target of an overwrite whose client went away: continuing "the file" at an
/// offset would then append the new file's rest to the old file, which a resume after it is refused for
/// (until the name is written whole again).
pub(super) async fn mark_interrupted_overwrite(
    session: &swift::Session,
    container: &str,
    key: &str,
) -> Result<(), swift::Error> {
    session
        .ensure_segments_container(container, &segments_of(container))
        .await?;
    let record = PartialUpload {
        interrupted_overwrite: true,
        ..PartialUpload::new(Vec::new(), 0, None)
    };
    put_record(session, container, key, &record).await
}

async fn put_record(
    session: &swift::Session,
    container: &str,
    key: &str,
    record: &PartialUpload,
) -> Result<(), swift::Error> {
    let body = serde_json::to_vec(record).map_err(|e| {
        swift::Error::protocol(
            swift::Op::PutObject {
                container: container.to_owned(),
                key: key.to_owned(),
            },
            e.to_string(),
        )
    })?;
    let segments = segments_of(container);
    // Before the PUT: landed or not, the session looks again.
    session.wrote_under(&segments, PARTIAL_FOLDER);
    session
        .put_object(
            &segments,
            &record_name(key),
            Bytes::from(body),
            &[("Content-Type", "application/json")],
        )
        .await?;
    Ok(())
}

/// The partial upload of `container/key`, if one can be resumed. An expired one is removed (with its
/// segments) and is none.
pub(super) async fn find(
    session: &swift::Session,
    container: &str,
    key: &str,
) -> Result<Option<PartialUpload>, swift::Error> {
    let segments_container = segments_of(container);
    if !session
        .segments_container_exists(&segments_container)
        .await?
        || !session
            .may_hold(&segments_container, PARTIAL_FOLDER, &record_name(key))
            .await?
    {
        return Ok(None);
    }
    let body = match session
        .get_small_object(&segments_container, &record_name(key))
        .await
    {
        Ok(body) => body,
        Err(e) if e.kind() == swift::ErrorKind::NotFound => return Ok(None),
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
        let keep: Vec<ManifestEntry> = match session.head_object(container, key).await {
            Ok(head) if head.static_large_object => session
                .slo_manifest(container, key)
                .await
                .unwrap_or_else(|_| record.segments.clone()),
            Ok(_) => Vec::new(),
            Err(e) if e.kind() == swift::ErrorKind::NotFound => Vec::new(),
            Err(_) => record.segments.clone(),
        };
        tracing::info!(%container, %key, "removing an expired partial upload");
        forget(session, container, key, &record, &keep).await;
        return Ok(None);
    }
    Ok(Some(record))
}

/// After an upload that started from (or over) the partial upload `old` failed: if a new record replaced
/// it (the client went away again), the segments of `old` the new one does not name are deleted.
pub(super) async fn drop_superseded(
    session: &swift::Session,
    container: &str,
    key: &str,
    old: &PartialUpload,
) {
    if let Ok(Some(now)) = find(session, container, key).await
        && now != *old
    {
        session
            .delete_objects(swift::not_listed(old.segment_refs(), &now.segments))
            .await;
    }
}

/// Deletes the record of `container/key`, if any, leaving segments alone (a file's `DELE` has just taken
/// those its manifest listed).
pub(super) async fn delete_record(session: &swift::Session, container: &str, key: &str) {
    match session
        .delete_object(&segments_of(container), &record_name(key))
        .await
    {
        Ok(()) => {}
        Err(e) if e.kind() == swift::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(error = %e, %container, %key, "cannot delete a partial upload's record")
        }
    }
}

/// Deletes a partial upload's record, and its segments except those `still_used` lists (a continued
/// upload's manifest names them now).
pub(super) async fn forget(
    session: &swift::Session,
    container: &str,
    key: &str,
    record: &PartialUpload,
    still_used: &[ManifestEntry],
) {
    delete_record(session, container, key).await;
    session
        .delete_objects(swift::not_listed(record.segment_refs(), still_used))
        .await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Segment `name` of an upload of `dir/f` in container `c`.
    fn own(name: &str, size: u64, range: Option<&str>) -> ManifestEntry {
        ManifestEntry {
            path: format!("/c_segments/dir/f/slo/1-a/0000000{name}"),
            etag: "e".into(),
            size_bytes: size,
            range: range.map(str::to_owned),
        }
    }

    #[test]
    fn only_sound_records_of_the_names_own_segments_are_trusted() {
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
            segments: vec![own("0", 10, None)],
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
        assert!(!PartialUpload::new(Vec::new(), 0, None).expired());
    }
}
