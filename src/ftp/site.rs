//! The `SITE` commands swiftftp adds: who may read a container, and how much space is used.
//!
//! | command | what it does |
//! |---|---|
//! | `SITE ACL [path]` | shows the read and write ACLs of the container holding `path` (default: the current directory) |
//! | `SITE PUBLIC [path]` | anyone may read its objects and list it (`.r:*,.rlistings` in `X-Container-Read`) |
//! | `SITE UNLISTED [path]` | anyone may read an object whose name they know, nobody else may list (`.r:*`) |
//! | `SITE PRIVATE [path]` | only the account (and the accounts the ACL names) may read: every `.r:` entry and `.rlistings` go |
//! | `SITE QUOTA [path]` | the account's usage and quota; inside a container, that container's too |
//!
//! Grants to other accounts or users in the read ACL are kept by all three setters: they change only what
//! anonymous visitors may do. The container's `<container>_segments` gets the same readers (without
//! `.rlistings`), since a large file is read through its segments; one made later by an upload inherits them
//! (`swift/large/`). Containers are private when created (Swift's default): making one public is a
//! deliberate `SITE PUBLIC`. Changing an ACL needs a user Swift lets write container metadata (an account
//! admin); others get `550 Permission denied`.
//!
//! Not here: write ACLs (granting uploads to other accounts is better done with the `swift` tool, knowingly),
//! `SITE CHMOD` (Unix modes have no sound mapping onto Swift ACLs: it gets a `502` that says so), and `SITE MD5`,
//! which libunftp answers.

use super::error::FtpError;
use super::location::Location;
use super::login::SwiftUser;
use super::storage::SwiftStorage;
use crate::swift;
use async_trait::async_trait;
use libunftp::options::{Reply, ReplyCode, SiteCommandContext, SiteCommandHandler};

/// The read ACL entry that lets anyone read objects.
const PUBLIC_READ: &str = ".r:*";
/// The read ACL entry that lets those who may read also list.
const PUBLIC_LISTINGS: &str = ".rlistings";

/// What anonymous visitors may do with a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Nothing.
    Private,
    /// Read objects whose names they know.
    Unlisted,
    /// Read and list.
    Public,
}

impl Visibility {
    /// What a read ACL grants anonymous visitors.
    pub fn of(acl: Option<&str>) -> Self {
        let entries: Vec<&str> = entries(acl).collect();
        match (
            entries.contains(&PUBLIC_READ),
            entries.contains(&PUBLIC_LISTINGS),
        ) {
            (true, true) => Self::Public,
            (true, false) => Self::Unlisted,
            (false, _) => Self::Private,
        }
    }

    /// `acl` changed to grant exactly this to anonymous visitors, other entries kept in order. `None`: the ACL
    /// is left empty (to be removed).
    pub fn applied_to(self, acl: Option<&str>) -> Option<String> {
        let mut kept: Vec<&str> = entries(acl)
            .filter(|e| *e != PUBLIC_LISTINGS && *e != PUBLIC_READ)
            .filter(|e| self != Self::Private || !e.starts_with(".r:"))
            .collect();
        match self {
            Self::Private => {}
            Self::Unlisted => kept.push(PUBLIC_READ),
            Self::Public => kept.extend([PUBLIC_READ, PUBLIC_LISTINGS]),
        }
        (!kept.is_empty()).then(|| kept.join(","))
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Private => "private: only the account and the accounts its ACL names may read it",
            Self::Unlisted => {
                "unlisted: anyone may read an object whose name they know, nobody else may list it"
            }
            Self::Public => "public: anyone may read and list it",
        }
    }
}

fn entries(acl: Option<&str>) -> impl Iterator<Item = &str> {
    acl.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
}

/// `SITE ACL`, `SITE PUBLIC`, `SITE UNLISTED`, `SITE PRIVATE`, `SITE QUOTA`: one handler, registered under each
/// name.
#[derive(Debug, Clone, Copy)]
pub struct SiteCommands;

/// The names [`SiteCommands`] answers, for registration.
pub const SITE_COMMANDS: [&str; 6] = ["ACL", "PUBLIC", "UNLISTED", "PRIVATE", "QUOTA", "CHMOD"];

#[async_trait]
impl SiteCommandHandler<SwiftStorage, SwiftUser> for SiteCommands {
    async fn handle(&self, ctx: &SiteCommandContext<SwiftStorage, SwiftUser>) -> Reply {
        let Some(user) = ctx.user.as_ref() else {
            return Reply::new(ReplyCode::NotLoggedIn, "Not logged in");
        };
        if ctx.command == "CHMOD" {
            // lftp's mirror and FileZilla send it after uploads: say why it is not done, not just "unknown".
            return Reply::new(
                ReplyCode::CommandNotImplemented,
                "SITE CHMOD: Swift objects have no permissions (SITE PUBLIC/UNLISTED/PRIVATE set a container's)",
            );
        }
        let path = ctx.cwd.join(ctx.arguments.trim());
        let result = async {
            let loc = ctx.storage.locate(&path)?;
            match ctx.command.as_str() {
                "ACL" => show_acl(&user.session, &loc).await,
                "PUBLIC" => set_visibility(&user.session, &loc, Visibility::Public).await,
                "UNLISTED" => set_visibility(&user.session, &loc, Visibility::Unlisted).await,
                "PRIVATE" => set_visibility(&user.session, &loc, Visibility::Private).await,
                "QUOTA" => show_quota(&user.session, &loc).await,
                _ => Err(FtpError::NotImplemented("unknown SITE command")),
            }
        }
        .await;
        let _in = user.span.enter();
        match result {
            Ok(reply) => {
                tracing::info!(command = %ctx.command, path = %path.display(), "SITE");
                reply
            }
            Err(e) => {
                tracing::info!(command = %ctx.command, path = %path.display(), error = %e, "SITE failed");
                e.into_site_reply()
            }
        }
    }
}

/// The container a path is in; the root has none.
fn container_of(loc: &Location) -> Result<&str, FtpError> {
    match loc {
        Location::Root => Err(FtpError::Refused {
            location: loc.clone(),
            what: "name a container (or a path inside one): the root is the account",
        }),
        Location::Container(c) | Location::Object { container: c, .. } => Ok(c),
    }
}

/// Where anonymous visitors reach the container, when the storage URL is known.
fn public_url(session: &swift::Session, container: &str) -> Option<String> {
    let mut url = session.storage_url()?;
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend([container, ""]);
    Some(url.into())
}

async fn show_acl(session: &swift::Session, loc: &Location) -> Result<Reply, FtpError> {
    let container = container_of(loc)?;
    let head = session.head_container(container).await?;
    let visibility = Visibility::of(head.read_acl.as_deref());
    let mut lines = vec![
        format!("Container {container:?} is {}", visibility.describe()),
        format!("Read ACL: {}", head.read_acl.as_deref().unwrap_or("(none)")),
        format!(
            "Write ACL: {}",
            head.write_acl.as_deref().unwrap_or("(none)")
        ),
    ];
    if visibility != Visibility::Private
        && let Some(url) = public_url(session, container)
    {
        lines.push(format!("Public URL: {url}"));
    }
    lines.push("End".to_owned());
    Ok(Reply::new_multiline(ReplyCode::SystemStatus, lines))
}

async fn set_visibility(
    session: &swift::Session,
    loc: &Location,
    visibility: Visibility,
) -> Result<Reply, FtpError> {
    let container = container_of(loc)?;
    let head = session.head_container(container).await?;
    match visibility.applied_to(head.read_acl.as_deref()) {
        Some(acl) => {
            session
                .post_container(container, &[("X-Container-Read", &acl)])
                .await?
        }
        None => {
            session
                .post_container(container, &[("X-Remove-Container-Read", "x")])
                .await?
        }
    }
    let segments =
        set_segments_readers(session, container, head.read_acl.as_deref(), visibility).await?;
    let mut text = format!("Container {container:?} is now {}", visibility.describe());
    if let Some(segments) = segments {
        text.push_str(&format!(" (its large files' segments in {segments:?} too)"));
    }
    if visibility != Visibility::Private
        && let Some(url) = public_url(session, container)
    {
        text.push_str(&format!(" at {url}"));
    }
    Ok(Reply::new_with_string(ReplyCode::CommandOkay, text))
}

/// Gives `<container>_segments`, when there is one, the readers of its container's new ACL: a large file is
/// read through its segments. The name of the segments container changed, if any.
async fn set_segments_readers(
    session: &swift::Session,
    container: &str,
    old_acl: Option<&str>,
    visibility: Visibility,
) -> Result<Option<String>, FtpError> {
    if container.ends_with(swift::SEGMENTS_SUFFIX) {
        return Ok(None);
    }
    let segments = format!("{container}{}", swift::SEGMENTS_SUFFIX);
    match session.head_container(&segments).await {
        Ok(_) => {}
        Err(e) if e.kind() == swift::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let acl = visibility.applied_to(old_acl);
    match swift::segments_read_acl(acl.as_deref()) {
        Some(acl) => {
            session
                .post_container(&segments, &[("X-Container-Read", &acl)])
                .await?
        }
        None => {
            session
                .post_container(&segments, &[("X-Remove-Container-Read", "x")])
                .await?
        }
    }
    Ok(Some(segments))
}

async fn show_quota(session: &swift::Session, loc: &Location) -> Result<Reply, FtpError> {
    let account = session.head_account().await?;
    let mut lines = vec![
        format!(
            "Account: {} in {} objects, {} containers",
            bytes(account.bytes),
            account.objects,
            account.containers
        ),
        format!(
            "Account quota: {}",
            quota(account.bytes, account.quota_bytes)
        ),
    ];
    if let Location::Container(c) | Location::Object { container: c, .. } = loc {
        let head = session.head_container(c).await?;
        lines.push(format!(
            "Container {c:?}: {} in {} objects",
            bytes(head.bytes),
            head.count
        ));
        lines.push(format!(
            "Container quota: {}",
            quota(head.bytes, head.quota_bytes)
        ));
        if let Some(max) = head.quota_count {
            lines.push(format!(
                "Container object quota: {max} objects ({} left)",
                max.saturating_sub(head.count)
            ));
        }
        if let Some(policy) = &head.storage_policy {
            lines.push(format!("Storage policy: {policy}"));
        }
    }
    lines.push("Usage figures lag writes by up to a few seconds (Swift's updaters)".to_owned());
    Ok(Reply::new_multiline(ReplyCode::SystemStatus, lines))
}

/// `12345 bytes (12.1 KiB)`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{n} bytes ({value:.1} {})", UNITS[unit])
}

/// `none`, or the limit and what is left of it.
fn quota(used: u64, limit: Option<u64>) -> String {
    match limit {
        None => "none".to_owned(),
        Some(limit) => format!(
            "{} ({} left)",
            bytes(limit),
            bytes(limit.saturating_sub(used))
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_is_read_from_the_acl() {
        assert_eq!(Visibility::of(None), Visibility::Private);
        assert_eq!(Visibility::of(Some("")), Visibility::Private);
        assert_eq!(Visibility::of(Some("test2:*")), Visibility::Private);
        assert_eq!(Visibility::of(Some(".r:*")), Visibility::Unlisted);
        assert_eq!(
            Visibility::of(Some(" .rlistings , .r:* ")),
            Visibility::Public
        );
        // Listing rights without read rights grant anonymous visitors nothing.
        assert_eq!(Visibility::of(Some(".rlistings")), Visibility::Private);
    }

    #[test]
    fn setting_visibility_keeps_grants_to_accounts() {
        let acl = Some("test2:*,.r:*,.rlistings,acct:user");
        assert_eq!(
            Visibility::Private.applied_to(acl).as_deref(),
            Some("test2:*,acct:user")
        );
        assert_eq!(
            Visibility::Unlisted.applied_to(acl).as_deref(),
            Some("test2:*,acct:user,.r:*")
        );
        assert_eq!(
            Visibility::Public.applied_to(Some("test2:*")).as_deref(),
            Some("test2:*,.r:*,.rlistings")
        );
        assert_eq!(
            Visibility::Public.applied_to(None).as_deref(),
            Some(".r:*,.rlistings")
        );
        assert_eq!(Visibility::Private.applied_to(Some(".r:*")), None);
        // Referrer grants are public access too: private removes them.
        assert_eq!(
            Visibility::Private.applied_to(Some(".r:.example.com,.r:-bad.example.com")),
            None
        );
        // Public twice is public once.
        assert_eq!(
            Visibility::Public
                .applied_to(Some(".r:*,.rlistings"))
                .as_deref(),
            Some(".r:*,.rlistings")
        );
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(bytes(0), "0 bytes");
        assert_eq!(bytes(1023), "1023 bytes");
        assert_eq!(bytes(1536), "1536 bytes (1.5 KiB)");
        assert_eq!(bytes(5 << 30), "5368709120 bytes (5.0 GiB)");
        assert_eq!(quota(10, None), "none");
        assert_eq!(
            quota(2048, Some(1024)),
            "1024 bytes (1.0 KiB) (0 bytes left)"
        );
    }
}
