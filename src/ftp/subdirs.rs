//! Which names in a directory are directories, as this session last saw them: what lets a run of uploads into
//! one directory skip the "is the name a directory?" listing before each file.
//!
//! A `STOR` must not put a file where a directory is (`write.rs`). Asking Swift costs one listing per file, as
//! much as the upload itself on a small file. From the second upload into a directory, the session lists that
//! directory once (one page, delimited: its subdirectories come rolled up) and answers from that for
//! [`SEEN_FOR`]; a directory larger than one page is asked per file as before.
//!
//! - This session's own writes keep it true: every directory a write implies (`MKD a/b`, a file `a/b/f`, a
//!   rename's target) joins the sets of the directories above it ([`Subdirs::note_write`]).
//! - The first upload into a directory takes its names from the listing cache when the directory was listed a
//!   moment ago (`lftp mirror -R` and FileZilla list a directory before uploading into it): no request at all.
//! - Other sessions' new directories are seen within [`SEEN_FOR`] (plus the listing cache's TTL when the names
//!   came from there); a file uploaded meanwhile to the same name lands beside that directory, and listings
//!   show the directory (the rule for such clashes).
//! - Only "not a directory" is answered from memory; a name seen as a directory is asked again, so a directory
//!   removed meanwhile never refuses an upload.
//!
//! Not here: the check itself (`write.rs`, `storage.rs`: `below`).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a directory's set of subdirectories is trusted.
pub(super) const SEEN_FOR: Duration = Duration::from_secs(5);

/// Entries of the one page listed; a directory with more is not remembered.
pub(super) const PAGE: u32 = 1000;

/// Directories remembered at most per session, and the bytes of subdirectory names one may hold: what a
/// session keeps stays under a few hundred KiB whatever names a user plants (a directory with more counts as
/// larger than a page).
const MAX_DIRS: usize = 16;
const MAX_NAME_BYTES: usize = 16 * 1024;

/// What one session saw, per (container, directory prefix).
#[derive(Debug, Default)]
pub(super) struct Subdirs(Mutex<HashMap<(String, String), Seen>>);

#[derive(Debug)]
enum Seen {
    /// Uploaded into once (when): the next upload lists the directory.
    Once(Instant),
    /// The names of its subdirectories, when listed.
    Listed(HashSet<String>, Instant),
    /// More than one page: asked per file.
    TooBig(Instant),
}

/// What the session knows of a name.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Known {
    /// Not a directory (as of its directory's listing).
    NotADir,
    /// Worth listing the directory (a second upload into it).
    ListParent,
    /// Nothing known of the directory yet (a first upload into it): a cached listing of it may answer, else ask
    /// about the name itself.
    Unseen,
    /// Ask about the name itself.
    Ask,
}

impl Subdirs {
    /// What is known of `name` in the directory `prefix` (`""` or ending in `/`) of `container`.
    pub(super) fn lookup(&self, container: &str, prefix: &str, name: &str) -> Known {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = (container.to_owned(), prefix.to_owned());
        match seen.get(&key) {
            Some(Seen::Listed(names, at)) if at.elapsed() < SEEN_FOR => {
                match names.contains(name) {
                    true => Known::Ask,
                    false => Known::NotADir,
                }
            }
            Some(Seen::TooBig(at)) if at.elapsed() < SEEN_FOR => Known::Ask,
            Some(Seen::Once(_)) => Known::ListParent,
            _ => {
                if seen.len() >= MAX_DIRS {
                    seen.retain(|_, s| match s {
                        Seen::Once(at) | Seen::Listed(_, at) | Seen::TooBig(at) => {
                            at.elapsed() < SEEN_FOR
                        }
                    });
                }
                if seen.len() >= MAX_DIRS {
                    // Uploads into many directories at once: start again rather than grow.
                    seen.clear();
                }
                seen.insert(key, Seen::Once(Instant::now()));
                Known::Unseen
            }
        }
    }

    /// The subdirectories of `prefix` as one listing page showed them (`None`: more than a page).
    pub(super) fn remember(&self, container: &str, prefix: &str, names: Option<HashSet<String>>) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = (container.to_owned(), prefix.to_owned());
        if !seen.contains_key(&key) && seen.len() >= MAX_DIRS {
            seen.clear();
        }
        let now = Instant::now();
        let entry = match names {
            Some(names) if names.iter().map(String::len).sum::<usize>() <= MAX_NAME_BYTES => {
                Seen::Listed(names, now)
            }
            _ => Seen::TooBig(now),
        };
        seen.insert(key, entry);
    }

    /// This session wrote `key` (a file or a directory) in `container`: each directory above it gains its
    /// next component as a subdirectory (the last component too when `key` is a directory).
    pub(super) fn note_write(&self, container: &str, key: &str, is_dir: bool) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let parts: Vec<&str> = key.split('/').filter(|p| !p.is_empty()).collect();
        let dirs = match is_dir {
            true => parts.len(),
            false => parts.len().saturating_sub(1),
        };
        for depth in 0..dirs {
            let prefix: String = parts[..depth].iter().map(|p| format!("{p}/")).collect();
            let key = (container.to_owned(), prefix);
            if let Some(Seen::Listed(names, at)) = seen.get_mut(&key) {
                names.insert(parts[depth].to_owned());
                if names.iter().map(String::len).sum::<usize>() > MAX_NAME_BYTES {
                    let at = *at;
                    seen.insert(key, Seen::TooBig(at));
                }
            }
        }
    }

    /// Forgets everything (a rename or removal of directories: simpler to list again).
    pub(super) fn forget(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> Option<HashSet<String>> {
        Some(names.iter().map(|n| (*n).to_owned()).collect())
    }

    #[test]
    fn the_second_upload_lists_and_later_ones_are_answered() {
        let s = Subdirs::default();
        assert_eq!(s.lookup("c", "a/", "f1"), Known::Unseen);
        assert_eq!(s.lookup("c", "a/", "f2"), Known::ListParent);
        s.remember("c", "a/", set(&["sub"]));
        assert_eq!(s.lookup("c", "a/", "f3"), Known::NotADir);
        assert_eq!(s.lookup("c", "a/", "sub"), Known::Ask);
        assert_eq!(s.lookup("other", "a/", "f3"), Known::Unseen);
    }

    #[test]
    fn names_from_a_cached_listing_answer_the_first_upload() {
        let s = Subdirs::default();
        assert_eq!(s.lookup("c", "a/", "f1"), Known::Unseen);
        // What `known_dir` does with a cached listing of `a/`.
        s.remember("c", "a/", set(&["sub"]));
        assert_eq!(s.lookup("c", "a/", "f2"), Known::NotADir);
        assert_eq!(s.lookup("c", "a/", "sub"), Known::Ask);
    }

    #[test]
    fn own_writes_add_the_directories_they_imply() {
        let s = Subdirs::default();
        s.remember("c", "", set(&[]));
        s.remember("c", "a/", set(&[]));
        s.note_write("c", "a/new/f", false);
        assert_eq!(s.lookup("c", "a/", "new"), Known::Ask);
        assert_eq!(s.lookup("c", "", "a"), Known::Ask);
        s.note_write("c", "a/made", true);
        assert_eq!(s.lookup("c", "a/", "made"), Known::Ask);
        s.note_write("c", "a/file", false);
        assert_eq!(s.lookup("c", "a/", "file"), Known::NotADir);
    }

    #[test]
    fn long_names_count_as_a_large_directory() {
        let s = Subdirs::default();
        let long: Vec<String> = (0..20)
            .map(|i| format!("{i}{}", "x".repeat(1000)))
            .collect();
        s.remember("c", "a/", Some(long.into_iter().collect()));
        assert_eq!(s.lookup("c", "a/", "f"), Known::Ask);
        s.remember("c", "b/", set(&[]));
        s.note_write(
            "c",
            &format!("b/{}/f", "y".repeat(MAX_NAME_BYTES + 1)),
            false,
        );
        assert_eq!(s.lookup("c", "b/", "f"), Known::Ask);
    }

    #[test]
    fn a_directory_over_a_page_is_asked_per_name_and_forget_clears() {
        let s = Subdirs::default();
        s.remember("c", "big/", None);
        assert_eq!(s.lookup("c", "big/", "f"), Known::Ask);
        s.remember("c", "a/", set(&[]));
        s.forget();
        assert_eq!(s.lookup("c", "a/", "f"), Known::Unseen);
    }
}
