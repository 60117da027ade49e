//! Manifests: a segment as a manifest lists it ([`ManifestEntry`]), the first bytes of a list of segments (a
//! resumed upload's kept part), and a Static Large Object's manifest read in its stored form.
//!
//! Not here: which of a manifest's segments a file owns (`ownership.rs`) or writing a manifest (`mod.rs`).

use crate::swift::ObjectRef;
use crate::swift::Session;
use crate::swift::error::{Error, Op};
use crate::swift::urls::object_url_with;
use serde::{Deserialize, Serialize};

/// A segment as a manifest lists it (and as a partial upload's record keeps it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// `/container/name` of the segment.
    pub path: String,
    /// Its ETag (MD5).
    pub etag: String,
    /// Its size.
    pub size_bytes: u64,
    /// The part of it used, `first-last` (inclusive), when not all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
}

impl ManifestEntry {
    /// The bytes of the segment this entry contributes.
    pub fn used_bytes(&self) -> u64 {
        match self.range_bounds() {
            Some((first, last)) => (last + 1).saturating_sub(first),
            None => self.size_bytes,
        }
    }

    /// The `first-last` of the range, when it has one that parses.
    fn range_bounds(&self) -> Option<(u64, u64)> {
        let (a, b) = self.range.as_deref()?.split_once('-')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    }

    /// Whether the entry makes sense: no range, or one within the segment (`first <= last < size`).
    pub fn is_sound(&self) -> bool {
        match (&self.range, self.range_bounds()) {
            (None, _) => true,
            (Some(_), Some((first, last))) => first <= last && last < self.size_bytes,
            (Some(_), None) => false,
        }
    }
}

/// The first `n` bytes of what `entries` add up to, the last entry cut with a range where needed; `None` when
/// they hold fewer than `n` bytes.
pub fn first_bytes_of(entries: &[ManifestEntry], n: u64) -> Option<Vec<ManifestEntry>> {
    let mut kept = Vec::new();
    let mut have = 0u64;
    for e in entries {
        if have == n {
            break;
        }
        let len = e.used_bytes();
        let start = e.range_bounds().map_or(0, |(first, _)| first);
        let mut e = e.clone();
        if have + len > n {
            let take = n - have;
            e.range = Some(format!("{start}-{}", start + take - 1));
            have += take;
        } else {
            have += len;
        }
        kept.push(e);
    }
    (have == n).then_some(kept)
}

/// Those of `segments` that `manifest` does not list (the ones a new manifest leaves behind).
pub fn not_listed(segments: Vec<ObjectRef>, manifest: &[ManifestEntry]) -> Vec<ObjectRef> {
    segments
        .into_iter()
        .filter(|s| {
            !manifest
                .iter()
                .filter_map(|m| ObjectRef::from_slo_path(&m.path))
                .any(|m| &m == s)
        })
        .collect()
}

/// A segment as `multipart-manifest=get` shows it (the stored form, every Swift version alike).
#[derive(Debug, Deserialize)]
struct StoredEntry {
    name: String,
    #[serde(default)]
    hash: String,
    #[serde(default)]
    bytes: u64,
    range: Option<String>,
}

impl Session {
    /// The segments a Static Large Object's manifest lists (read in its stored form), wherever they are.
    pub async fn slo_segments(&self, container: &str, key: &str) -> Result<Vec<ObjectRef>, Error> {
        Ok(self
            .slo_manifest(container, key)
            .await?
            .iter()
            .filter_map(|e| ObjectRef::from_slo_path(&e.path))
            .collect())
    }

    /// A Static Large Object's manifest, read in its stored form (`multipart-manifest=get`).
    pub async fn slo_manifest(
        &self,
        container: &str,
        key: &str,
    ) -> Result<Vec<ManifestEntry>, Error> {
        let op = Op::GetObject {
            container: container.to_owned(),
            key: key.to_owned(),
        };
        let body = self
            .fetch_small(&op, |http, base| {
                http.get(object_url_with(
                    base,
                    container,
                    key,
                    &[("multipart-manifest", "get")],
                ))
            })
            .await?;
        let entries: Vec<StoredEntry> = serde_json::from_slice(&body)
            .map_err(|e| Error::protocol(op.clone(), e.to_string()))?;
        Ok(entries
            .into_iter()
            .map(|e| ManifestEntry {
                path: if e.name.starts_with('/') {
                    e.name
                } else {
                    format!("/{}", e.name)
                },
                etag: e.hash,
                size_bytes: e.bytes,
                range: e.range,
            })
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
}
