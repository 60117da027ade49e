//! Directories a user's sessions know exist, for a few seconds: what lets `CWD` into a directory they just made or
//! entered, and the listing of such a directory while it is still empty, skip asking Swift, and what lets `MKD`
//! of it again (`lftp mirror -R` after `mkdir -p` makes the target's path twice) skip looking at what is there.
//!
//! `lftp mirror -R` and FileZilla upload a tree as `MKD d`, `CWD d`, a listing of `d`, the files, then `CWD ..`:
//! asking Swift whether `d` exists at each step cost three round trips per directory, a tenth of a small-file
//! tree's upload time (rclone keeps its directories in memory and asks nothing).
//!
//! - What notes a directory: `MKD` of it, a `CWD` that Swift confirmed, a file stored below it (every directory
//!   above a file exists, as a marker or as a pseudo-directory). Each note holds for [`KNOWN_FOR`].
//! - What forgets: `RMD` and `DELE` (a pseudo-directory ends with its last file), a rename (everything).
//! - Only "exists" is answered from memory, and only to the user whose session saw it: another client's removal
//!   of the directory within [`KNOWN_FOR`] shows as an empty directory to `CWD` and `LIST` (the same few seconds
//!   the listing cache allows), never as a file or as something another user made.
//! - A user's sessions in this process share what they saw ([`KnownDirsByUser`]), for the same few seconds:
//!   FileZilla's transfer connections, and each new `lftp` command, enter the directories the previous one just
//!   made or entered.
//!
//! Not here: where directories are looked up in Swift (`storage.rs`: `probe`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a directory seen to exist is trusted to.
pub(super) const KNOWN_FOR: Duration = Duration::from_secs(5);

/// Directories remembered at most per user (the oldest go first when full).
const MAX_KNOWN: usize = 64;

/// What one user's sessions saw, per (container, key): `""` is the container itself.
#[derive(Debug, Default)]
pub(super) struct KnownDirs(Mutex<HashMap<(String, String), Instant>>);

/// Each user's [`KnownDirs`], shared by the user's sessions, and kept after the last one ends while it still
/// holds something fresh (for the next `lftp` command): this holds no more than the users who had a session in
/// the last [`KNOWN_FOR`].
#[derive(Debug, Default)]
pub(super) struct KnownDirsByUser(Mutex<HashMap<(String, String), Arc<KnownDirs>>>);

impl KnownDirsByUser {
    /// The directories known to `login`'s sessions on the account at `account` (its storage URL).
    pub(super) fn of(&self, account: &str, login: &str) -> Arc<KnownDirs> {
        let mut users = self.0.lock().unwrap_or_else(|e| e.into_inner());
        users.retain(|_, known| Arc::strong_count(known) > 1 || known.holds_fresh());
        let known = users
            .entry((account.to_owned(), login.to_owned()))
            .or_default();
        Arc::clone(known)
    }
}

impl KnownDirs {
    /// `key` in `container` is a directory (`""`: the container), and so is everything above it.
    pub(super) fn note(&self, container: &str, key: &str) {
        let now = Instant::now();
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for dir in with_ancestors(key) {
            known.insert((container.to_owned(), dir.to_owned()), now);
        }
        if known.len() > MAX_KNOWN {
            known.retain(|_, at| at.elapsed() < KNOWN_FOR);
            while known.len() > MAX_KNOWN {
                let Some(oldest) = known
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                known.remove(&oldest);
            }
        }
    }

    /// The directories above a file stored at `key` (not `key` itself).
    pub(super) fn note_parents_of(&self, container: &str, key: &str) {
        match key.rsplit_once('/') {
            Some((parent, _)) => self.note(container, parent),
            None => self.note(container, ""),
        }
    }

    /// Whether anything it holds was seen within [`KNOWN_FOR`].
    fn holds_fresh(&self) -> bool {
        let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        known.values().any(|at| at.elapsed() < KNOWN_FOR)
    }

    /// Whether `key` in `container` (`""`: the container) was seen to be a directory within [`KNOWN_FOR`].
    pub(super) fn is_known(&self, container: &str, key: &str) -> bool {
        let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        known
            .get(&(container.to_owned(), key.to_owned()))
            .is_some_and(|at| at.elapsed() < KNOWN_FOR)
    }

    /// `key` in `container` may be gone (removed, or a pseudo-directory that lost a file): forgets it, what is
    /// below it, and what is above it (a pseudo-directory above may have held only this).
    pub(super) fn forget(&self, container: &str, key: &str) {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let below = format!("{key}/");
        known.retain(|(c, k), _| {
            c != container
                || !(key.is_empty()
                    || k == key
                    || k.starts_with(&below)
                    || key.starts_with(&format!("{k}/"))
                    || k.is_empty())
        });
    }

    /// Forgets everything (a rename moved directories).
    pub(super) fn forget_all(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// `a/b/c`, `a/b`, `a` and `""` for `a/b/c`.
fn with_ancestors(key: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(key);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.rsplit_once('/') {
            Some((parent, _)) => Some(parent),
            None if current.is_empty() => None,
            None => Some(""),
        };
        Some(current)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_noted_directory_and_everything_above_it_are_known() {
        let known = KnownDirs::default();
        known.note("c", "a/b");
        assert!(known.is_known("c", "a/b"));
        assert!(known.is_known("c", "a"));
        assert!(known.is_known("c", ""));
        assert!(!known.is_known("c", "a/b/c"));
        assert!(!known.is_known("other", "a"));
        known.note_parents_of("d", "x/y/file.txt");
        assert!(known.is_known("d", "x/y") && known.is_known("d", "x"));
        assert!(!known.is_known("d", "x/y/file.txt"));
        known.note_parents_of("e", "top.txt");
        assert!(known.is_known("e", "") && !known.is_known("e", "top.txt"));
    }

    #[test]
    fn forgetting_takes_the_directory_what_is_below_and_above_but_not_its_siblings() {
        let known = KnownDirs::default();
        known.note("c", "a/b/c");
        known.note("c", "a/s");
        known.note("other", "a/b");
        known.forget("c", "a/b");
        assert!(!known.is_known("c", "a/b") && !known.is_known("c", "a/b/c"));
        assert!(!known.is_known("c", "a") && !known.is_known("c", ""));
        assert!(known.is_known("c", "a/s"), "a sibling stays");
        assert!(known.is_known("other", "a/b"), "another container stays");
        known.forget("other", "");
        assert!(!known.is_known("other", "a/b"));
        known.forget_all();
        assert!(!known.is_known("c", "a/s"));
    }

    #[test]
    fn a_users_sessions_share_what_they_saw_while_it_is_fresh() {
        let users = KnownDirsByUser::default();
        let first = users.of("AUTH_a", "a:u");
        first.note("c", "d");
        let second = users.of("AUTH_a", "a:u");
        assert!(second.is_known("c", "d"));
        assert!(!users.of("AUTH_a", "a:other").is_known("c", "d"));
        assert!(!users.of("AUTH_b", "a:u").is_known("c", "d"));
        // The next session after the last one ended still knows it.
        drop((first, second));
        assert!(users.of("AUTH_a", "a:u").is_known("c", "d"));
        // Without a session, a user whose directories are all stale is dropped at the next login.
        let old = Instant::now() - KNOWN_FOR;
        for known in users.0.lock().unwrap().values() {
            for at in known.0.lock().unwrap().values_mut() {
                *at = old;
            }
        }
        let kept = users.of("AUTH_c", "c:u");
        assert_eq!(users.0.lock().unwrap().len(), 1, "only the new user's");
        drop(kept);
    }

    #[test]
    fn the_memory_stays_bounded() {
        let known = KnownDirs::default();
        for i in 0..1000 {
            known.note("c", &format!("dir{i}"));
        }
        assert!(known.0.lock().unwrap().len() <= MAX_KNOWN);
        assert!(known.is_known("c", "dir999"), "the newest is kept");
    }
}
