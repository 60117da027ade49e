//! `MFMT`: stores a file's modification time where listings and other Swift tools find it (the format is
//! `mtime.rs`).
//!
//! Both places `mtime.rs` names (`X-Object-Meta-Mtime` and the `Content-Type` parameter) are written with one
//! metadata `POST`, which replaces all of the object's metadata: what it had
//! (user metadata such as `X-Object-Meta-Md5`, a DLO's `X-Object-Manifest`, expiry, disposition) is read with a
//! `HEAD` first and sent again. The two requests are not atomic: an upload that lands between them gets the
//! time (and the metadata) of the object it replaced.
//!
//! Right after this session created a small file (`write.rs`: a new plain object, nothing on it but its
//! `Content-Type`), the `MFMT` a client such as lftp sends for it skips the `HEAD`: what the object carries is
//! known. That is half of what setting the time costs, for every file of an `mput` or `mirror -R`. The window
//! in which another writer can replace the object unnoticed is the same as between the `HEAD` and the `POST`.
//!
//! Deliberately not here: reading times back (listings and `MDTM` use `mtime.rs`'s codec).

use super::error::FtpError;
use super::location::Location;
use super::login::SwiftUser;
use super::mtime::{JUST_STORED_FOR, MTIME_META, format_seconds, parse_seconds, with_time};
use super::storage::{SwiftStorage, is_marker, not_found};
use std::time::SystemTime;

impl SwiftStorage {
    /// MFMT: stores `time` on the file at `loc`; returns the time stored (microsecond precision).
    pub(super) async fn set_time(
        &self,
        user: &SwiftUser,
        loc: &Location,
        time: SystemTime,
    ) -> Result<SystemTime, FtpError> {
        let not_a_file = || FtpError::Refused {
            location: loc.clone(),
            what: "only files have a modification time to set",
        };
        let Location::Object { container, key } = loc else {
            return Err(not_a_file());
        };
        let session = &user.session;
        let just_stored = user
            .just_stored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .filter(|j| j.loc == *loc && j.at.elapsed() < JUST_STORED_FOR);
        let (content_type, kept_on_post) = match just_stored {
            Some(just) => (Some(just.content_type), Vec::new()),
            None => {
                let head = session
                    .head_object(container, key)
                    .await
                    .map_err(|e| not_found(e, loc))?;
                if is_marker(&head) {
                    return Err(not_a_file());
                }
                (head.content_type, head.kept_on_post)
            }
        };
        let stored = parse_seconds(&format_seconds(time)).unwrap_or(time);
        let seconds = format_seconds(stored);
        let content_type = with_time(content_type.as_deref(), stored);
        let mut headers: Vec<(&str, &str)> = kept_on_post
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case(MTIME_META))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        headers.push((MTIME_META, &seconds));
        headers.push(("Content-Type", &content_type));
        session
            .post_object(container, key, &headers)
            .await
            .map_err(|e| not_found(e, loc))?;
        tracing::debug!(%loc, mtime = %seconds, "modification time set");
        Ok(stored)
    }
}
