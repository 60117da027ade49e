//! How FTP maps onto Swift: the only module that knows both libunftp and the `swift` client.
//!
//! | FTP | Swift |
//! |---|---|
//! | `USER`/`PASS` | v1 or Keystone login (`login_name.rs` splits the name); the token lives in the session (`login.rs`) |
//! | `CWD`, `CDUP` | `HEAD` container, or object `HEAD` + two-entry `prefix=key/` listing |
//! | `LIST`, `NLST`, `MLSD`, `STAT path` | account listing, or container listing with `prefix` + `delimiter=/`, paged |
//! | `SIZE`, `MDTM`, `MLST` | `HEAD` (plus the prefix probe, so a directory wins over a same-named file) |
//! | `RETR` (after `REST n`) | the first `GET` before the `150` (`retrieve.rs`), then ranged `GET`s pinned to one version (`swift/download.rs`; after `REST n`: `Range: bytes=n-`) |
//! | `STOR` (and `STOU`) | one streamed `PUT`, or a Static Large Object's segments and manifest; MD5 checked against the ETags |
//! | `REST n` + `STOR`, `APPE` | the first `n` bytes kept (segments reused, a partial upload continued), the new ones after |
//! | `MFMT` | metadata `POST`: `X-Object-Meta-Mtime` and a `Content-Type` parameter listings carry |
//! | `SITE ACL/PUBLIC/UNLISTED/PRIVATE/QUOTA` | container `HEAD`/`POST` (`X-Container-Read`), account `HEAD` |
//! | `MKD`, `RMD` | `PUT`/`DELETE` of a container, or of an `application/directory` marker |
//! | `DELE` | `DELETE` (a Static Large Object with its segments) |
//! | `RNFR`/`RNTO` | server-side copy, then `DELETE` of the source (every object under a directory or container) |
//!
//! Files: `location.rs` (path → container/object), `listing.rs` (Swift entries → directory entries and LIST
//! lines), `storage.rs` (the `StorageBackend` and the read path), `retrieve.rs` (RETR), `store.rs` (STOR), `write.rs` (MKD, RMD, DELE),
//! `rename.rs` (RNFR/RNTO) and `rename_tree.rs` (directories with content), `resume.rs` (uploads at an offset),
//! `partial.rs` (partial uploads kept for a resume, marks of interrupted overwrites),
//! `mtime.rs` (MFMT and the times listings show), `site.rs` (SITE commands), `policy.rs` (`--storage-policy`),
//! `login.rs` (login), `error.rs` (the one error → reply map), `transfers.rs` (transfers
//! in flight, for the graceful shutdown), `listing_cache.rs` (listings and DLO sizes, cached per user), `limits.rs`
//! (brute-force lockout, sessions per user).
//!
//! Limits of the model, said once: Swift has no rename (copy + delete, not atomic), directories are names with a
//! `/` in them (plus optional marker objects), and there are no permissions, owners or links to show.

mod backend;
pub mod error;
mod known_dirs;
pub mod limits;
pub mod listing;
pub mod listing_cache;
pub mod location;
pub mod login;
pub mod login_name;
mod mfmt;
pub mod mtime;
mod oplog;
mod partial;
pub mod policy;
mod read;
mod rename;
mod rename_tree;
mod resume;
mod retrieve;
pub mod site;
pub mod storage;
mod store;
mod subdirs;
pub mod transfers;
mod upload_gate;
mod write;

use crate::swift;
use reqwest::Url;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// State every FTP session shares: the HTTP client and the cluster's limits.
#[derive(Debug)]
pub struct Shared {
    /// The one HTTP client (and connection pool) towards Swift.
    pub client: swift::Client,
    info: RwLock<swift::Info>,
    info_known: AtomicBool,
    auth_url: Url,
    /// A storage URL from the latest login: where `/health` finds Swift.
    storage_url: RwLock<Option<Url>>,
    /// Transfers in flight, for the graceful shutdown.
    pub transfers: transfers::Transfers,
    /// Cached listings and DLO sizes.
    pub listings: listing_cache::ListingCache,
    /// How listings and uploads treat large objects.
    pub options: StorageOptions,
    /// `--storage-policy`: the policy of new containers, and the only one the root listing shows.
    pub policy: policy::PolicyFilter,
}

/// The settings that shape listings and uploads, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct StorageOptions {
    /// Which 0-byte listing entries are HEADed for a DLO manifest's size.
    pub dlo_check: crate::config::DloCheck,
    /// The configured segment size (`None`: the cluster's `max_file_size`).
    pub segment_size: Option<u64>,
    /// Hide `FILE.part` folders beside `FILE` in listings.
    pub hide_part_dir: bool,
    /// Hide `<container>_segments` beside `<container>` in the root listing.
    pub hide_segments: bool,
    /// Most objects one directory or container rename may move (0: no limit).
    pub rename_max_objects: u64,
    /// `MFMT` is offered (in `FEAT`) and answered.
    pub mfmt: bool,
}

impl StorageOptions {
    /// The options `config` sets.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            dlo_check: config.dlo_check,
            segment_size: config.segment_size,
            hide_part_dir: config.hide_part_dir,
            hide_segments: config.hide_segments,
            rename_max_objects: config.limits.rename_max_objects,
            mfmt: config.mfmt,
        }
    }
}

impl Shared {
    /// Shared state over `client`; the limits start at Swift's defaults until a login reads `/info`.
    pub fn new(
        client: swift::Client,
        auth_url: Url,
        listings: listing_cache::ListingCache,
        options: StorageOptions,
        storage_policy: Option<String>,
    ) -> Self {
        Self {
            client,
            info: RwLock::new(swift::Info::default()),
            info_known: AtomicBool::new(false),
            auth_url,
            storage_url: RwLock::new(None),
            transfers: transfers::Transfers::default(),
            listings,
            options,
            policy: policy::PolicyFilter::new(storage_policy),
        }
    }

    /// Whether Swift answers: `GET /info` on the proxy of the latest login's storage URL. Before any login, the
    /// proxy at the auth URL's address (a v1 auth URL is usually Swift's own proxy; a Keystone one is not, and
    /// then only "the auth service answers" can be said).
    pub async fn health(&self) -> Result<String, String> {
        let known = self
            .storage_url
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match known {
            Some(url) => match self.client.info(&url, None).await {
                Ok(_) => Ok("Swift answers /info".to_owned()),
                Err(e) => Err(e.to_string()),
            },
            None => match self.client.info(&self.auth_url, None).await {
                Ok(_) => Ok("Swift answers /info at the auth URL's address".to_owned()),
                Err(e) if e.status().is_some() => {
                    Ok(format!("no login yet; the auth service answers ({e})"))
                }
                Err(e) => Err(e.to_string()),
            },
        }
    }

    /// The cluster's limits as last read.
    pub fn info(&self) -> swift::Info {
        self.info.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The page size for object listings when the cluster said it (`/info`): a shorter page is then the last
    /// one, and a listing costs one request less (`swift/list.rs`).
    pub fn listing_page(&self) -> Option<u32> {
        if !self.info_known.load(Ordering::Relaxed) {
            return None;
        }
        u32::try_from(self.info().container_listing_limit)
            .ok()
            .filter(|&n| n > 0)
    }

    /// How uploads are cut: the configured segment size, never above the cluster's `max_file_size`.
    pub fn segment_plan(&self) -> swift::SegmentPlan {
        let info = self.info();
        swift::SegmentPlan {
            segment_size: self
                .options
                .segment_size
                .unwrap_or(info.max_file_size)
                .min(info.max_file_size)
                .max(crate::config::MIN_SEGMENT_SIZE),
            max_segments: info.max_manifest_segments,
            min_segment_size: info.min_segment_size,
        }
    }

    /// Reads `/info` once, through the first session that logs in (the cluster's address is only known from a
    /// storage URL). Failure keeps the defaults and is tried again at the next login.
    pub async fn learn_limits(&self, session: &swift::Session) {
        if let Some(url) = session.storage_url() {
            *self.storage_url.write().unwrap_or_else(|p| p.into_inner()) = Some(url);
        }
        if self.info_known.load(Ordering::Relaxed) {
            return;
        }
        match session.info().await {
            Ok(info) => {
                let mut policies = info.policies.clone();
                policies.dedup();
                tracing::info!(
                    max_file_size = info.max_file_size,
                    max_object_name_length = info.max_object_name_length,
                    max_container_name_length = info.max_container_name_length,
                    container_listing_limit = info.container_listing_limit,
                    max_manifest_segments = info.max_manifest_segments,
                    min_segment_size = info.min_segment_size,
                    policies = %policies.join(","),
                    "cluster limits read from /info"
                );
                if let Some(wanted) = self.policy.wanted()
                    && !info.policies.is_empty()
                    && !info.policies.iter().any(|p| p.eq_ignore_ascii_case(wanted))
                {
                    tracing::error!(
                        storage_policy = wanted,
                        known = ?info.policies,
                        "the configured storage-policy is not one of the cluster's: MKD of a container will fail"
                    );
                }
                *self.info.write().unwrap_or_else(|p| p.into_inner()) = info;
                self.info_known.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(error = %crate::logging::chain(&e), "cannot read /info: using Swift's default limits")
            }
        }
    }
}
