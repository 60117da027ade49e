//! A small OpenStack Swift client: log in, list, HEAD, GET and PUT, with retries and token renewal.
//!
//! It knows nothing of FTP (it never imports libunftp): the `ftp` module is its only caller in the gateway, and
//! the tests use it to write fixtures straight into Swift. Layout:
//!
//! - `auth/`: turning credentials into a storage URL and a token (v1, Keystone v2.0 and v3).
//! - `token.rs`: tokens shared by the sessions of one set of credentials, renewed before expiry, single-flight.
//! - `client.rs`: the shared HTTP [`Client`] and a user's [`Session`]: sending, re-authenticating, retrying.
//! - `operations.rs`: one [`Session`] method per Swift call (accounts, containers, objects).
//! - `urls.rs`: request URLs (every path segment encoded) and header parsing.
//! - `download.rs`: an object's bytes from an offset, in ranged `GET`s, checked against its MD5 when read whole.
//! - `upload.rs`: streaming an object up from any `AsyncRead`, with its MD5 checked against Swift's ETag.
//! - `hashing.rs`: the MD5 of an upload's bytes (and of each segment), computed beside its network path.
//! - `large/`: plain object or Static Large Object (segments, manifest), the segments of large objects, and the
//!   segments an interrupted upload leaves to its caller ([`KeepInterrupted`]).
//! - `list.rs`: listings as streams that page with `marker` until Swift returns an empty page.
//! - `retry.rs`: which failures are retried and the backoff between attempts.
//! - `observe.rs`: who is told of each request and its answer (the caller counts them; no metrics here).
//! - `error.rs`: [`Error`] (operation + object + kind).
//!
//! The types below are what listings and HEADs answer, parsed once here so callers never see JSON or headers.

mod auth;
mod client;
mod download;
mod error;
mod hashing;
mod large;
mod list;
mod observe;
mod operations;
mod retry;
mod token;
mod upload;
mod urls;

pub use auth::{AuthMethod, CatalogFilter, Credentials, Interface, Secret, Token};
pub use client::SEGMENTS_SEEN_FOR;
pub use client::{Client, ClientConfig, ClientError, Session};
pub use download::{Download, FIRST_RANGE, LARGEST_RANGE};
pub use error::{Error, ErrorKind, Op};
pub use large::{
    Head, KeepInterrupted, Lookahead, MD5_META, ManifestEntry, PLAIN_LOOKAHEAD, SEGMENTS_SUFFIX,
    SegmentPlan, UploadTarget, first_bytes_of, not_listed, read_lookahead, segments_read_acl,
};
pub use observe::{Answer, RequestObserver, observe_requests};
pub use operations::ObjectDownload;
pub use retry::RetryConfig;
pub use token::SharedTokens;
pub use upload::client_gone;
pub use upload::{UploadError, Uploaded};

use chrono::NaiveDateTime;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use urls::{header_str, header_timestamp, header_u64};

/// A container as the account listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// The container's name.
    pub name: String,
    /// Objects in it (as of the last container-updater sweep: account listings lag).
    pub count: u64,
    /// Bytes used by it (same lag).
    pub bytes: u64,
    /// When it last changed, where the cluster reports it.
    pub last_modified: Option<SystemTime>,
}

/// One entry of a container listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectEntry {
    /// A name prefix rolled up by `delimiter`, e.g. `photos/2026/`, with its trailing delimiter.
    Subdir(String),
    /// An object.
    Object(ObjectInfo),
}

impl ObjectEntry {
    /// The name the next page's `marker` must be: the object name, or the subdir with its trailing delimiter
    /// (Swift skips a subdir equal to the marker, and only then; see the container backend's listing loop).
    pub fn marker(&self) -> &str {
        match self {
            Self::Subdir(prefix) => prefix,
            Self::Object(info) => &info.name,
        }
    }
}

/// An object as a container listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The full object name within its container.
    pub name: String,
    /// Its size. Static Large Objects show their total; Dynamic Large Object manifests show 0.
    pub bytes: u64,
    /// The ETag (MD5 of the content for plain objects).
    pub hash: Option<String>,
    /// The stored `Content-Type`.
    pub content_type: Option<String>,
    /// When it was last written.
    pub last_modified: Option<SystemTime>,
    /// A Static Large Object manifest (the listing shows its `slo_etag`).
    pub static_large_object: bool,
}

/// An object by container and name: a segment of a large object, or any object a rename moves or a clean-up
/// deletes ([`Session::delete_objects`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// Its container.
    pub container: String,
    /// Its name.
    pub key: String,
}

/// What a container `HEAD` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerHead {
    /// Objects in the container.
    pub count: u64,
    /// Bytes used.
    pub bytes: u64,
    /// When it was created (`X-Timestamp`).
    pub created: Option<SystemTime>,
    /// The settings a copy of this container must carry to be the same container: user metadata, ACLs,
    /// versioning, sync, quotas and the storage policy, as `(header, value)` pairs ready to `PUT`.
    pub settings: Vec<(String, String)>,
    /// `X-Container-Read`: who may read (`.r:*` is anyone, `.rlistings` lets them list).
    pub read_acl: Option<String>,
    /// `X-Container-Write`.
    pub write_acl: Option<String>,
    /// `X-Storage-Policy`: the policy its objects are stored with.
    pub storage_policy: Option<String>,
    /// `X-Container-Meta-Quota-Bytes` (the `container_quotas` middleware's limit).
    pub quota_bytes: Option<u64>,
    /// `X-Container-Meta-Quota-Count`.
    pub quota_count: Option<u64>,
}

/// What an account `HEAD` tells: usage, and the quota the `account_quotas` middleware enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountHead {
    /// Bytes stored (as of the last updater sweep).
    pub bytes: u64,
    /// Objects stored.
    pub objects: u64,
    /// Containers.
    pub containers: u64,
    /// `X-Account-Meta-Quota-Bytes`, set by a reseller admin.
    pub quota_bytes: Option<u64>,
}

impl AccountHead {
    fn from_headers(h: &HeaderMap) -> Self {
        Self {
            bytes: header_u64(h, "X-Account-Bytes-Used").unwrap_or(0),
            objects: header_u64(h, "X-Account-Object-Count").unwrap_or(0),
            containers: header_u64(h, "X-Account-Container-Count").unwrap_or(0),
            quota_bytes: header_u64(h, "X-Account-Meta-Quota-Bytes"),
        }
    }
}

/// Container headers that are settings (copied when a container is renamed), by prefix or exact name.
const CONTAINER_SETTINGS: [&str; 7] = [
    "x-container-meta-",
    "x-container-read",
    "x-container-write",
    "x-container-sync-",
    "x-versions-location",
    "x-history-location",
    "x-storage-policy",
];

impl ContainerHead {
    fn from_headers(h: &HeaderMap) -> Self {
        let settings = headers_named(h, &CONTAINER_SETTINGS);
        Self {
            count: header_u64(h, "X-Container-Object-Count").unwrap_or(0),
            bytes: header_u64(h, "X-Container-Bytes-Used").unwrap_or(0),
            created: header_timestamp(h),
            settings,
            read_acl: header_str(h, "X-Container-Read").map(str::to_owned),
            write_acl: header_str(h, "X-Container-Write").map(str::to_owned),
            storage_policy: header_str(h, "X-Storage-Policy").map(str::to_owned),
            quota_bytes: header_u64(h, "X-Container-Meta-Quota-Bytes"),
            quota_count: header_u64(h, "X-Container-Meta-Quota-Count"),
        }
    }
}

/// What an object `HEAD` (or the headers of a `GET`) tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    /// `Content-Length`: the whole size for a HEAD, the body's length for a ranged GET.
    pub content_length: u64,
    /// The ETag without quotes (the content MD5 for plain objects only).
    pub etag: Option<String>,
    /// The stored `Content-Type`.
    pub content_type: Option<String>,
    /// When it was last written (`X-Timestamp`).
    pub last_modified: Option<SystemTime>,
    /// `X-Object-Manifest`: set on Dynamic Large Object manifests.
    pub dlo_manifest: Option<String>,
    /// `X-Static-Large-Object: True`.
    pub static_large_object: bool,
    /// The content MD5 stored on a large object by its writer (`X-Object-Meta-Md5`).
    pub meta_md5: Option<String>,
    /// What a metadata `POST` replaces and must therefore send again to keep the object as it is: user
    /// metadata, `Content-Disposition`, `Content-Encoding`, `X-Delete-At`, and a DLO's `X-Object-Manifest`
    /// (a POST without it turns the manifest into a plain 0-byte object).
    pub kept_on_post: Vec<(String, String)>,
}

/// Object headers a metadata `POST` replaces, by prefix or exact name.
const OBJECT_POST_HEADERS: [&str; 5] = [
    "x-object-meta-",
    "content-disposition",
    "content-encoding",
    "x-delete-at",
    "x-object-manifest",
];

impl ObjectHead {
    /// The MD5 of the content, when known: a plain object's ETag, or a large object's stored MD5.
    pub fn content_md5(&self) -> Option<&str> {
        if self.static_large_object || self.dlo_manifest.is_some() {
            self.meta_md5.as_deref()
        } else {
            self.etag.as_deref()
        }
    }

    fn from_headers(h: &HeaderMap) -> Self {
        Self {
            content_length: header_u64(h, "Content-Length").unwrap_or(0),
            etag: header_str(h, "ETag").map(|e| e.trim_matches('"').to_owned()),
            content_type: header_str(h, "Content-Type").map(str::to_owned),
            last_modified: header_timestamp(h),
            dlo_manifest: header_str(h, "X-Object-Manifest").map(str::to_owned),
            static_large_object: header_str(h, "X-Static-Large-Object")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            meta_md5: header_str(h, large::MD5_META).map(str::to_owned),
            kept_on_post: headers_named(h, &OBJECT_POST_HEADERS),
        }
    }
}

/// The headers whose (lower-case) names start with one of `prefixes`, as `(name, value)` pairs ready to send.
fn headers_named(h: &HeaderMap, prefixes: &[&str]) -> Vec<(String, String)> {
    h.iter()
        .filter(|(name, _)| prefixes.iter().any(|p| name.as_str().starts_with(p)))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

/// The cluster's limits, from `/info` (with Swift's defaults where a key is missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Largest single object, in bytes.
    pub max_file_size: u64,
    /// Longest object name, in bytes.
    pub max_object_name_length: usize,
    /// Longest container name, in bytes.
    pub max_container_name_length: usize,
    /// Largest page of a container listing.
    pub container_listing_limit: u64,
    /// Most segments one Static Large Object manifest may list.
    pub max_manifest_segments: usize,
    /// The smallest segment a manifest may list before its last one.
    pub min_segment_size: u64,
    /// The storage policies' names and aliases (empty when `/info` does not list them).
    pub policies: Vec<String>,
}

impl Default for Info {
    fn default() -> Self {
        Self {
            max_file_size: 5 * 1024 * 1024 * 1024 + 2,
            max_object_name_length: 1024,
            max_container_name_length: 256,
            container_listing_limit: 10_000,
            max_manifest_segments: 1000,
            min_segment_size: 1,
            policies: Vec::new(),
        }
    }
}

impl Info {
    fn from_json(body: &[u8]) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct Raw {
            swift: RawSwift,
            slo: Option<RawSlo>,
        }
        #[derive(Deserialize)]
        struct RawSlo {
            max_manifest_segments: Option<usize>,
            min_segment_size: Option<u64>,
        }
        #[derive(Deserialize)]
        struct RawSwift {
            max_file_size: Option<u64>,
            max_object_name_length: Option<usize>,
            max_container_name_length: Option<usize>,
            container_listing_limit: Option<u64>,
            #[serde(default)]
            policies: Vec<RawPolicy>,
        }
        #[derive(Deserialize)]
        struct RawPolicy {
            name: String,
            aliases: Option<String>,
        }
        let raw: Raw = serde_json::from_slice(body)?;
        let d = Self::default();
        Ok(Self {
            max_file_size: raw.swift.max_file_size.unwrap_or(d.max_file_size),
            max_object_name_length: raw
                .swift
                .max_object_name_length
                .unwrap_or(d.max_object_name_length),
            max_container_name_length: raw
                .swift
                .max_container_name_length
                .unwrap_or(d.max_container_name_length),
            container_listing_limit: raw
                .swift
                .container_listing_limit
                .unwrap_or(d.container_listing_limit),
            max_manifest_segments: raw
                .slo
                .as_ref()
                .and_then(|s| s.max_manifest_segments)
                .unwrap_or(d.max_manifest_segments),
            min_segment_size: raw
                .slo
                .as_ref()
                .and_then(|s| s.min_segment_size)
                .unwrap_or(d.min_segment_size)
                .max(1),
            policies: raw
                .swift
                .policies
                .into_iter()
                .flat_map(|p| {
                    let aliases = p.aliases.unwrap_or_default();
                    std::iter::once(p.name).chain(
                        aliases
                            .split(',')
                            .map(|a| a.trim().to_owned())
                            .filter(|a| !a.is_empty())
                            .collect::<Vec<_>>(),
                    )
                })
                .collect(),
        })
    }
}

#[derive(Deserialize)]
struct RawContainer {
    name: String,
    #[serde(default)]
    count: u64,
    #[serde(default)]
    bytes: u64,
    last_modified: Option<String>,
}

impl From<RawContainer> for ContainerInfo {
    fn from(r: RawContainer) -> Self {
        Self {
            name: r.name,
            count: r.count,
            bytes: r.bytes,
            last_modified: r.last_modified.as_deref().and_then(parse_listing_time),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawObjectEntry {
    Subdir {
        subdir: String,
    },
    Object {
        name: String,
        #[serde(default)]
        bytes: u64,
        hash: Option<String>,
        content_type: Option<String>,
        last_modified: Option<String>,
        slo_etag: Option<String>,
    },
}

impl From<RawObjectEntry> for ObjectEntry {
    fn from(r: RawObjectEntry) -> Self {
        match r {
            RawObjectEntry::Subdir { subdir } => Self::Subdir(subdir),
            RawObjectEntry::Object {
                name,
                bytes,
                hash,
                content_type,
                last_modified,
                slo_etag,
            } => Self::Object(ObjectInfo {
                name,
                bytes,
                hash,
                content_type,
                last_modified: last_modified.as_deref().and_then(parse_listing_time),
                static_large_object: slo_etag.is_some(),
            }),
        }
    }
}

/// Listings give `2026-11-28T10:11:12.123456`, in UTC without a zone designator.
fn parse_listing_time(s: &str) -> Option<SystemTime> {
    let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    let secs = u64::try_from(t.and_utc().timestamp()).ok()?;
    Some(
        UNIX_EPOCH
            + Duration::from_secs(secs)
            + Duration::from_nanos(u64::from(t.and_utc().timestamp_subsec_nanos())),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn listing_times_are_utc() {
        let t = parse_listing_time("2026-11-28T10:11:12.500000").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap(),
            Duration::from_millis(1_795_860_672_500)
        );
        assert_eq!(parse_listing_time("yesterday"), None);
    }

    #[test]
    fn container_listing_json_parses_subdirs_and_objects() {
        let body = br#"[{"subdir": "a/"},
            {"name": "b.txt", "bytes": 5, "hash": "abc", "content_type": "text/plain",
             "last_modified": "2026-11-28T10:11:12.000000"}]"#;
        let entries: Vec<ObjectEntry> = serde_json::from_slice::<Vec<RawObjectEntry>>(body)
            .unwrap()
            .into_iter()
            .map(ObjectEntry::from)
            .collect();
        assert_eq!(entries[0], ObjectEntry::Subdir("a/".into()));
        assert_eq!(entries[0].marker(), "a/");
        match &entries[1] {
            ObjectEntry::Object(o) => {
                assert_eq!((o.name.as_str(), o.bytes), ("b.txt", 5));
                assert!(o.last_modified.is_some());
            }
            other => panic!("expected an object, got {other:?}"),
        }
    }

    #[test]
    fn info_falls_back_to_swift_defaults() {
        let info = Info::from_json(br#"{"swift": {"max_file_size": 1000}}"#).unwrap();
        assert_eq!(info.max_file_size, 1000);
        assert_eq!(info.max_object_name_length, 1024);
        assert_eq!(info.min_segment_size, 1);
        assert!(info.policies.is_empty());
    }

    #[test]
    fn info_reads_policies_with_their_aliases_and_the_slo_limits() {
        let info = Info::from_json(
            br#"{"swift": {"policies": [{"name": "gold", "aliases": "gold, fast", "default": true},
                {"name": "silver"}]}, "slo": {"min_segment_size": 1048576, "max_manifest_segments": 500}}"#,
        )
        .unwrap();
        assert_eq!(info.policies, ["gold", "gold", "fast", "silver"]);
        assert_eq!(info.min_segment_size, 1_048_576);
        assert_eq!(info.max_manifest_segments, 500);
    }
}
