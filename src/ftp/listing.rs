//! Swift listing entries → FTP directory entries, and the text of `LIST` lines.
//!
//! The quirks of the object-storage model are handled here, where they meet the directory model:
//! - A directory is a `subdir` of a delimiter listing, or a marker object: `Content-Type`
//!   `application/directory` (ftp-cloudfs, swiftclient), `application/x-directory` or `text/directory`.
//!   0-byte objects named `dir/` (Cyberduck, rclone, S3 tools) are rolled into `subdir`s by the delimiter and
//!   show up only as the listed directory's own marker, which is skipped.
//! - A directory and a file with the same name (`x` and `x/...`): the directory wins (the ftp-cloudfs rule),
//!   the file is hidden, and the clash is logged.
//! - Names a path cannot address (empty, `.`, `..`, containing `/`, CR or LF) are skipped with a debug log:
//!   an empty name would render as a broken line, and CR/LF would forge listing lines.
//! - Entries come out in Swift's order (bytewise by name), which is also what a sorted `LIST` shows.
//!
//! Not here: fetching (`storage.rs`) and the MLSD facts, which libunftp formats itself.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};
use unftp_core::storage::{Metadata, Permissions};

/// What `LIST` of a path found: a directory's entries, or the one file the path names.
#[derive(Debug)]
pub enum Listing {
    /// The entries of a directory (or container, or the account).
    Dir(DirEntries),
    /// The path is a file: its name and metadata.
    File(String, Meta),
}

/// The `Metadata` of one FTP directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// A directory (account root, container, pseudo-directory or marker) rather than a file.
    pub dir: bool,
    /// Bytes: the object size, or a container's bytes used.
    pub size: u64,
    /// Last change, where known (pseudo-directories have none).
    pub modified: Option<SystemTime>,
    /// Link count: a container's object count, 1 otherwise.
    pub links: u64,
}

impl Meta {
    /// A directory entry without a known time (pseudo-directories, the root).
    pub fn dir() -> Self {
        Self {
            dir: true,
            size: 0,
            modified: None,
            links: 1,
        }
    }

    /// A file entry.
    pub fn file(size: u64, modified: Option<SystemTime>) -> Self {
        Self {
            dir: false,
            size,
            modified,
            links: 1,
        }
    }
}

impl Metadata for Meta {
    fn len(&self) -> u64 {
        self.size
    }
    fn is_dir(&self) -> bool {
        self.dir
    }
    fn is_file(&self) -> bool {
        !self.dir
    }
    fn is_symlink(&self) -> bool {
        false
    }
    fn modified(&self) -> unftp_core::storage::Result<SystemTime> {
        // A pseudo-directory has no time of its own; "now" is what ftp-cloudfs showed and what clients expect
        // of a directory that exists.
        Ok(self.modified.unwrap_or_else(SystemTime::now))
    }
    fn gid(&self) -> u32 {
        0
    }
    fn uid(&self) -> u32 {
        0
    }
    fn links(&self) -> u64 {
        self.links
    }
    fn permissions(&self) -> Permissions {
        Permissions(if self.dir { 0o755 } else { 0o644 })
    }
    fn readlink(&self) -> Option<&Path> {
        None
    }
}

/// Whether a `Content-Type` marks a directory object (parameters such as `; charset=` are ignored).
pub fn is_marker_content_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    [
        "application/directory",
        "application/x-directory",
        "text/directory",
    ]
    .iter()
    .any(|m| essence.eq_ignore_ascii_case(m))
}

/// A name an FTP path can address and a listing line can carry: no `/`, not `.` or `..`, and no control
/// character (FTP commands refuse them, and a listing line must not break).
pub fn addressable(name: &str) -> bool {
    !(name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.chars().any(char::is_control))
}

/// Entries of one directory, merged by name (directory wins), in name order.
#[derive(Debug, Default)]
pub struct DirEntries {
    entries: BTreeMap<String, Meta>,
}

impl DirEntries {
    /// Adds an entry; on a name clash a directory replaces a file, and two directories (a marker and its
    /// `subdir`) merge, keeping the marker's time.
    pub fn add(&mut self, name: &str, meta: Meta) {
        if !addressable(name) {
            tracing::debug!(name, "skipping a name no FTP path can address");
            return;
        }
        match self.entries.get_mut(name) {
            None => {
                self.entries.insert(name.to_owned(), meta);
            }
            Some(existing) => match (existing.dir, meta.dir) {
                (true, true) => {
                    if existing.modified.is_none() {
                        existing.modified = meta.modified;
                    }
                }
                (false, true) => {
                    tracing::info!(
                        name,
                        "a file and a directory share this name: showing the directory"
                    );
                    *existing = meta;
                }
                (true, false) => {
                    tracing::info!(
                        name,
                        "a file and a directory share this name: showing the directory"
                    );
                }
                (false, false) => *existing = meta,
            },
        }
    }

    /// Adds one entry of a container listing made with `prefix` and `delimiter=/`.
    pub fn add_swift_entry(&mut self, prefix: &str, entry: crate::swift::ObjectEntry) {
        match entry {
            crate::swift::ObjectEntry::Subdir(sub) => {
                let Some(rel) = sub.strip_prefix(prefix) else {
                    return;
                };
                let rel = rel.strip_suffix('/').unwrap_or(rel);
                self.add(rel, Meta::dir());
            }
            crate::swift::ObjectEntry::Object(info) => {
                let Some(rel) = info.name.strip_prefix(prefix) else {
                    return;
                };
                if rel.is_empty() {
                    return; // the listed directory's own `dir/` marker
                }
                let marker = info
                    .content_type
                    .as_deref()
                    .is_some_and(is_marker_content_type);
                let meta = if marker {
                    Meta {
                        modified: info.last_modified,
                        ..Meta::dir()
                    }
                } else {
                    let set = info
                        .content_type
                        .as_deref()
                        .and_then(super::mtime::from_content_type);
                    Meta::file(info.bytes, set.or(info.last_modified))
                };
                self.add(rel, meta);
            }
        }
    }

    /// Names (and times) of 0-byte files: the only entries that may be Dynamic Large Object manifests, whose
    /// listing size (0) is not their real size.
    pub fn zero_byte_files(&self) -> Vec<(String, Option<SystemTime>)> {
        self.entries
            .iter()
            .filter(|(_, m)| !m.dir && m.size == 0)
            .map(|(n, m)| (n.clone(), m.modified))
            .collect()
    }

    /// Whether a `<name>.part/` folder is listed beside `name`: ftp-cloudfs's layout for a DLO's segments.
    pub fn has_part_dir(&self, name: &str) -> bool {
        self.entries
            .get(&format!("{name}.part"))
            .is_some_and(|m| m.dir)
    }

    /// Drops `FILE.part` folders listed beside a file `FILE` (ftp-cloudfs's `hide-part-dir`). Only entries are
    /// hidden: the folder can still be entered by name.
    pub fn hide_part_dirs(&mut self) {
        let hidden: Vec<String> = self
            .entries
            .iter()
            .filter(|(n, m)| {
                m.dir
                    && n.strip_suffix(".part")
                        .and_then(|file| self.entries.get(file))
                        .is_some_and(|f| !f.dir)
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in hidden {
            self.entries.remove(&name);
        }
    }

    /// Drops `<container>_segments` listed beside `<container>` (the root listing's `hide-segments`).
    pub fn hide_segment_containers(&mut self) {
        let hidden: Vec<String> = self
            .entries
            .keys()
            .filter(|n| {
                n.strip_suffix(crate::swift::SEGMENTS_SUFFIX)
                    .is_some_and(|c| self.entries.contains_key(c))
            })
            .cloned()
            .collect();
        for name in hidden {
            self.entries.remove(&name);
        }
    }

    /// Corrects the size of a file entry (a DLO manifest's real size).
    pub fn set_size(&mut self, name: &str, size: u64) {
        if let Some(m) = self.entries.get_mut(name) {
            m.size = size;
        }
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in name order.
    pub fn into_entries(self) -> impl Iterator<Item = (String, Meta)> {
        self.entries.into_iter()
    }

    /// The entries in name order, borrowed.
    pub fn entries(&self) -> impl Iterator<Item = (&String, &Meta)> {
        self.entries.iter()
    }

    /// One entry by name.
    pub fn get(&self, name: &str) -> Option<&Meta> {
        self.entries.get(name)
    }

    /// Entries already merged and checked (from the cache), in any order.
    pub fn from_entries(entries: impl IntoIterator<Item = (String, Meta)>) -> Self {
        Self {
            entries: entries.into_iter().collect(),
        }
    }
}

/// Six months, the age from which `ls` (and pyftpdlib) shows the year instead of the time.
const SIX_MONTHS: Duration = Duration::from_secs(180 * 24 * 3600);

/// One `LIST` line in the classic Unix layout FileZilla, lftp and mc parse (pyftpdlib's exact format):
/// `drwxr-xr-x   1 owner    owner           0 Nov 28 10:11 name\r\n`, times in UTC.
pub fn list_line(name: &str, meta: &Meta, owner: &str, now: SystemTime) -> String {
    let perms = if meta.dir { "drwxr-xr-x" } else { "-rw-r--r--" };
    let modified = meta.modified.unwrap_or(now);
    // chrono's From<SystemTime> panics out of its range; a garbled time shows as the epoch instead.
    let when = modified
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| {
            DateTime::<Utc>::from_timestamp(i64::try_from(d.as_secs()).ok()?, d.subsec_nanos())
        })
        .unwrap_or_default();
    let old = now
        .duration_since(modified)
        .is_ok_and(|age| age > SIX_MONTHS);
    let time = if old {
        when.format("%b %d  %Y")
    } else {
        when.format("%b %d %H:%M")
    };
    format!(
        "{perms} {links:>3} {owner:<8} {owner:<8} {size:>8} {time} {name}\r\n",
        links = meta.links,
        size = meta.size
    )
}

/// The owner name shown in `LIST`: the login's user part, with blanks and control characters replaced so that
/// clients splitting the line on whitespace still find every column.
pub fn owner_name(user_part: &str) -> String {
    let cleaned: String = user_part
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if cleaned.is_empty() {
        "swift".to_owned()
    } else {
        cleaned
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::swift::{ObjectEntry, ObjectInfo};
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn object(name: &str, bytes: u64, content_type: &str) -> ObjectEntry {
        ObjectEntry::Object(ObjectInfo {
            name: name.into(),
            bytes,
            hash: None,
            content_type: Some(content_type.into()),
            last_modified: Some(at(1_795_860_672)),
            static_large_object: false,
        })
    }

    #[test]
    fn segment_folders_hide_only_beside_their_file_or_container() {
        let mut d = DirEntries::default();
        for name in [
            "big",
            "big.part",
            "lone.part",
            "c",
            "c_segments",
            "x_segments",
        ] {
            let meta = if name == "big" {
                Meta::file(5, None)
            } else {
                Meta::dir()
            };
            d.add(name, meta);
        }
        let mut parts = DirEntries::from_entries(d.entries().map(|(n, m)| (n.clone(), m.clone())));
        parts.hide_part_dirs();
        let names: Vec<&String> = parts.entries().map(|(n, _)| n).collect();
        assert_eq!(names, ["big", "c", "c_segments", "lone.part", "x_segments"]);
        d.hide_segment_containers();
        let names: Vec<&String> = d.entries().map(|(n, _)| n).collect();
        assert_eq!(names, ["big", "big.part", "c", "lone.part", "x_segments"]);
    }

    #[test]
    fn list_lines_match_pyftpdlib() {
        let now = at(1_795_860_672 + 60); // 2026-11-28 10:12:12 UTC
        let file = Meta::file(10, Some(at(1_795_860_672)));
        assert_eq!(
            list_line("a.txt", &file, "bob", now),
            "-rw-r--r--   1 bob      bob            10 Nov 28 10:11 a.txt\r\n"
        );
        let old = Meta::file(1, Some(at(1_700_000_000))); // 2023-11-14
        assert_eq!(
            list_line("old", &old, "tester", now),
            "-rw-r--r--   1 tester   tester          1 Nov 14  2023 old\r\n"
        );
        let container = Meta {
            links: 1234,
            size: 99_999_999_999,
            ..Meta::dir()
        };
        assert_eq!(
            list_line("c", &container, "a-very-long-user", now),
            "drwxr-xr-x 1234 a-very-long-user a-very-long-user 99999999999 Nov 28 10:12 c\r\n"
        );
    }

    #[test]
    fn directories_win_and_markers_merge() {
        let mut d = DirEntries::default();
        d.add_swift_entry("p/", object("p/", 0, "application/octet-stream")); // own marker
        d.add_swift_entry("p/", object("p/x", 5, "text/plain"));
        d.add_swift_entry("p/", object("p/x.txt", 3, "text/plain"));
        d.add_swift_entry("p/", ObjectEntry::Subdir("p/x/".into()));
        d.add_swift_entry("p/", object("p/m", 0, "application/directory"));
        d.add_swift_entry("p/", ObjectEntry::Subdir("p/m/".into()));
        d.add_swift_entry(
            "p/",
            object("p/n", 0, "application/x-directory; charset=utf-8"),
        );
        d.add_swift_entry("p/", object("p/t", 0, "text/directory"));
        d.add_swift_entry("p/", ObjectEntry::Subdir("p//".into())); // `p//...` cannot be addressed
        d.add_swift_entry("p/", object("p/..", 1, "text/plain"));
        d.add_swift_entry("p/", object("p/evil\r\n-rw-r--r-- fake", 1, "text/plain"));
        d.add_swift_entry("p/", object("p/empty", 0, "text/plain"));
        let zero = d.zero_byte_files();
        let all: Vec<(String, bool)> = d.into_entries().map(|(n, m)| (n, m.dir)).collect();
        assert_eq!(
            all,
            vec![
                ("empty".to_owned(), false),
                ("m".to_owned(), true),
                ("n".to_owned(), true),
                ("t".to_owned(), true),
                ("x".to_owned(), true),
                ("x.txt".to_owned(), false),
            ]
        );
        let names: Vec<String> = zero.into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["empty".to_owned()]);
    }

    #[test]
    fn marker_keeps_its_time_when_merged_with_subdir() {
        let mut d = DirEntries::default();
        d.add_swift_entry("", object("m", 0, "application/directory"));
        d.add_swift_entry("", ObjectEntry::Subdir("m/".into()));
        let (_, meta) = d.into_entries().next().unwrap();
        assert!(meta.dir);
        assert_eq!(meta.modified, Some(at(1_795_860_672)));
    }

    #[test]
    fn owner_names_keep_columns_intact() {
        assert_eq!(owner_name("tester"), "tester");
        assert_eq!(owner_name("a b\tc"), "a_b_c");
        assert_eq!(owner_name(""), "swift");
    }
}
