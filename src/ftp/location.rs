//! FTP path → [`Location`]: which account, container or object a path names.
//!
//! libunftp hands the backend `cwd.join(argument)` without normalising it (and MLST/STAT hand the raw argument),
//! so this is where `.`, `..` and repeated slashes are folded and the result is confined to `/`: `..` at the
//! root stays at the root, exactly as a Unix shell does at `/`. It is a pure function of the path.
//!
//! Invariants of a parsed `Location`:
//! - a container name is non-empty and has no `/`;
//! - an object key is non-empty, has no empty, `.` or `..` component, and no leading or trailing `/`;
//! - both fit the cluster's name limits (`/info`), checked by [`Location::check_limits`].
//!
//! Object names that a path cannot address (`a//b`, `x/./y`, a trailing `/`) exist in Swift; listings skip them
//! (`listing.rs`), and this module never produces them.

use std::fmt;
use std::path::Path;

/// What an FTP path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `/`: the account; its directories are containers.
    Root,
    /// `/c`: a container.
    Container(String),
    /// `/c/a/b.txt`: object (or pseudo-directory) `a/b.txt` in container `c`.
    Object {
        /// The container.
        container: String,
        /// The object name within it.
        key: String,
    },
}

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is not valid UTF-8 (Swift names are UTF-8).
    #[error("the path is not valid UTF-8")]
    NotUtf8,
    /// A container name is longer than the cluster allows.
    #[error("container name of {len} bytes is over the cluster's limit of {max}")]
    ContainerNameTooLong {
        /// Its length in bytes.
        len: usize,
        /// The cluster's `max_container_name_length`.
        max: usize,
    },
    /// An object name is longer than the cluster allows.
    #[error("object name of {len} bytes is over the cluster's limit of {max}")]
    ObjectNameTooLong {
        /// Its length in bytes.
        len: usize,
        /// The cluster's `max_object_name_length`.
        max: usize,
    },
}

impl Location {
    /// Resolves a path as libunftp passes it. A relative path (MLST, STAT) is taken relative to `/`.
    pub fn parse(path: &Path) -> Result<Self, PathError> {
        let s = path.to_str().ok_or(PathError::NotUtf8)?;
        Ok(Self::parse_str(s))
    }

    /// Resolves a path string: folds `.`, `..` and empty components, confined to `/`.
    pub fn parse_str(path: &str) -> Self {
        let mut parts: Vec<&str> = Vec::new();
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                other => parts.push(other),
            }
        }
        let mut parts = parts.into_iter();
        match parts.next() {
            None => Self::Root,
            Some(container) => {
                let key = parts.collect::<Vec<_>>().join("/");
                if key.is_empty() {
                    Self::Container(container.to_owned())
                } else {
                    Self::Object {
                        container: container.to_owned(),
                        key,
                    }
                }
            }
        }
    }

    /// Checks the names against the cluster's limits (`553` material: refused before any data moves).
    pub fn check_limits(&self, max_container: usize, max_object: usize) -> Result<(), PathError> {
        let (container, key) = match self {
            Self::Root => return Ok(()),
            Self::Container(c) => (c, None),
            Self::Object { container, key } => (container, Some(key)),
        };
        if container.len() > max_container {
            return Err(PathError::ContainerNameTooLong {
                len: container.len(),
                max: max_container,
            });
        }
        if let Some(key) = key
            && key.len() > max_object
        {
            return Err(PathError::ObjectNameTooLong {
                len: key.len(),
                max: max_object,
            });
        }
        Ok(())
    }

    /// The listing prefix for the entries inside the pseudo-directory `key` (a container's own entries take no
    /// prefix).
    pub fn dir_prefix(key: &str) -> String {
        format!("{key}/")
    }

    /// The directory containing this path and the name within it; `None` for the root.
    pub fn parent_and_name(&self) -> Option<(Self, String)> {
        match self {
            Self::Root => None,
            Self::Container(c) => Some((Self::Root, c.clone())),
            Self::Object { container, key } => Some(match key.rsplit_once('/') {
                Some((dir, name)) => (
                    Self::Object {
                        container: container.clone(),
                        key: dir.to_owned(),
                    },
                    name.to_owned(),
                ),
                None => (Self::Container(container.clone()), key.clone()),
            }),
        }
    }
}

impl fmt::Display for Location {
    /// The normalised absolute FTP path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Root => f.write_str("/"),
            Self::Container(c) => write!(f, "/{c}"),
            Self::Object { container, key } => write!(f, "/{container}/{key}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod parent_tests {
    use super::Location;

    #[test]
    fn parents_go_up_to_the_root() {
        let obj = |k: &str| Location::Object {
            container: "c".into(),
            key: k.into(),
        };
        assert_eq!(
            obj("a/b/f").parent_and_name(),
            Some((obj("a/b"), "f".into()))
        );
        assert_eq!(
            obj("f").parent_and_name(),
            Some((Location::Container("c".into()), "f".into()))
        );
        assert_eq!(
            Location::Container("c".into()).parent_and_name(),
            Some((Location::Root, "c".into()))
        );
        assert_eq!(Location::Root.parent_and_name(), None);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn obj(c: &str, k: &str) -> Location {
        Location::Object {
            container: c.into(),
            key: k.into(),
        }
    }

    #[test]
    fn a_directory_s_entries_are_listed_under_its_key_and_a_slash() {
        assert_eq!(Location::dir_prefix("a/b"), "a/b/");
        assert_eq!(Location::dir_prefix("x"), "x/");
    }

    #[test]
    fn paths_fold_and_stay_confined() {
        let table = [
            ("/", Location::Root),
            ("", Location::Root),
            (".", Location::Root),
            ("/..", Location::Root),
            ("/c/../../..", Location::Root),
            ("/c/d/../../../x", Location::Container("x".into())),
            ("/c", Location::Container("c".into())),
            ("c/", Location::Container("c".into())),
            ("//c///", Location::Container("c".into())),
            ("/c/a/b.txt", obj("c", "a/b.txt")),
            ("/c/./a//b/../b.txt", obj("c", "a/b.txt")),
            ("relative/x", obj("relative", "x")),
            ("/c/with space/ünï ☺.txt", obj("c", "with space/ünï ☺.txt")),
            ("/c/...", obj("c", "...")),
            ("/c/a/..b", obj("c", "a/..b")),
        ];
        for (input, want) in table {
            assert_eq!(Location::parse_str(input), want, "path {input:?}");
        }
    }

    #[test]
    fn display_is_the_normalised_path() {
        assert_eq!(Location::parse_str("/c/x/../y").to_string(), "/c/y");
        assert_eq!(Location::parse_str("/../").to_string(), "/");
    }

    #[test]
    fn limits_are_checked_in_bytes() {
        let loc = Location::parse_str("/ccc/☺");
        assert_eq!(loc.check_limits(3, 3), Ok(()));
        assert_eq!(
            loc.check_limits(2, 3),
            Err(PathError::ContainerNameTooLong { len: 3, max: 2 })
        );
        assert_eq!(
            loc.check_limits(3, 2),
            Err(PathError::ObjectNameTooLong { len: 3, max: 2 })
        );
        assert_eq!(Location::Root.check_limits(0, 0), Ok(()));
    }
}
