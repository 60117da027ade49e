//! The options that take one of a few words, as enums that clap parses on the command line (`--log-format
//! json`) and the file reader on the file's side; each enum's `Default` is the option's default.
//!
//! Apart from the rest of `config/` so that `cli.rs` can name them without importing the module that imports
//! it.

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable text, one line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Which 0-byte listing entries are HEADed: a Dynamic Large Object manifest lists as 0 bytes, and only a HEAD
/// tells it from an empty file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DloCheck {
    /// Only those with segments where the known writers put them: `<container>_segments/<prefix><name>/`
    /// (python-swiftclient, rclone) or a `<name>.part/` folder beside them (ftp-cloudfs). One extra listing
    /// instead of one HEAD per empty file.
    #[default]
    Segments,
    /// Every one (manifests pointing anywhere are found; costs one HEAD per empty file on the first listing).
    All,
    /// None: DLO manifests show as 0 bytes.
    None,
}

/// Keystone API versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KeystoneVersion {
    /// Identity v2.0 (`/tokens`), ftp-cloudfs's default.
    #[default]
    #[value(name = "2.0")]
    V2,
    /// Identity v3 (`/auth/tokens`).
    #[value(name = "3")]
    V3,
}

/// Which catalog endpoint of Swift to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EndpointType {
    /// `publicURL` (v3 interface `public`).
    #[default]
    #[value(name = "publicURL")]
    Public,
    /// `internalURL` (v3 interface `internal`).
    #[value(name = "internalURL")]
    Internal,
    /// `adminURL` (v3 interface `admin`).
    #[value(name = "adminURL")]
    Admin,
}
