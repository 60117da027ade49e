//! Modification times: `MFMT` stores a file's time, and `LIST`, `MLSD`, `MLST` and `MDTM` show it.
//!
//! Where the time lives: in `X-Object-Meta-Mtime` (seconds since the epoch, the convention of python-swiftclient
//! and rclone, so `swift download` and `rclone` restore it), and again as a `swiftftp_mtime` parameter of the
//! object's `Content-Type` (`application/octet-stream;swiftftp_mtime=1700000000.5`). The parameter is what makes
//! it cheap: Swift's container listings carry each object's content type but none of its metadata, so a
//! listing of 20,000 files shows their times with no HEAD at all. Swift keeps both across server-side copies
//! (renames), and a new upload to the name replaces both (its time is its upload time until set again).
//!
//! Setting it (`MFMT`) is `mfmt.rs`; this file is the codec both sides use.
//!
//! Deliberately not done: objects written by other tools with `X-Object-Meta-Mtime` but no parameter show
//! their Swift `Last-Modified` in listings, `MDTM` and `MLST` alike (showing theirs would need one `HEAD` per
//! listed file, or differ between a listing and `MDTM`); directories have no time to set (`550`).

use super::location::Location;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `Content-Type` parameter that carries the time into listings.
pub const MTIME_PARAM: &str = "swiftftp_mtime";
/// The metadata header other Swift tools read the time from.
pub const MTIME_META: &str = "X-Object-Meta-Mtime";

/// The time a content type carries, if any.
pub fn from_content_type(content_type: &str) -> Option<SystemTime> {
    content_type
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(MTIME_PARAM))
        .and_then(|(_, v)| parse_seconds(v.trim()))
}

/// `content_type` with its time parameter set to `time` (other parameters kept); no type: the generic one.
pub fn with_time(content_type: Option<&str>, time: SystemTime) -> String {
    let content_type = content_type.unwrap_or("application/octet-stream");
    let mut parts: Vec<String> = content_type
        .split(';')
        .enumerate()
        .filter(|(i, p)| {
            *i == 0
                || !p
                    .split_once('=')
                    .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case(MTIME_PARAM))
        })
        .map(|(_, p)| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    parts.push(format!("{MTIME_PARAM}={}", format_seconds(time)));
    parts.join(";")
}

/// Seconds since the epoch with up to six decimals, as python-swiftclient writes them (`1700000000.25`).
pub fn format_seconds(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let micros = since.subsec_micros();
    if micros == 0 {
        since.as_secs().to_string()
    } else {
        format!("{}.{micros:06}", since.as_secs())
            .trim_end_matches('0')
            .to_owned()
    }
}

/// The inverse of [`format_seconds`]; negative, non-finite or absurd values are no time.
pub fn parse_seconds(text: &str) -> Option<SystemTime> {
    let seconds: f64 = text.parse().ok()?;
    if !seconds.is_finite() || !(0.0..1e11).contains(&seconds) {
        return None;
    }
    Some(UNIX_EPOCH + Duration::from_micros((seconds * 1e6).round() as u64))
}

/// A small file this session has just created: where, with which `Content-Type`, when.
#[derive(Debug)]
pub struct JustStored {
    pub(super) loc: Location,
    pub(super) content_type: String,
    pub(super) at: std::time::Instant,
}

/// How long after its upload a file's `MFMT` may skip the `HEAD`: clients send it at once.
pub(super) const JUST_STORED_FOR: Duration = Duration::from_secs(2);

impl JustStored {
    /// Remembers that `loc` was just created as a plain object with only `content_type` on it.
    pub fn new(loc: Location, content_type: String) -> Self {
        Self {
            loc,
            content_type,
            at: std::time::Instant::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_through_the_content_type() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let ct = with_time(Some("text/plain; charset=utf-8"), t);
        assert_eq!(ct, "text/plain;charset=utf-8;swiftftp_mtime=1700000000.25");
        assert_eq!(from_content_type(&ct), Some(t));
        // Set again: replaced, not added.
        let later = t + Duration::from_secs(10);
        let again = with_time(Some(&ct), later);
        assert_eq!(
            again,
            "text/plain;charset=utf-8;swiftftp_mtime=1700000010.25"
        );
        assert_eq!(from_content_type(&again), Some(later));
        // Swift's listing drops the space after `;`; HEAD keeps it: both read.
        assert_eq!(
            from_content_type("a/b; SWIFTFTP_MTIME=1600000000"),
            Some(UNIX_EPOCH + Duration::from_secs(1_600_000_000))
        );
        assert_eq!(
            with_time(None, UNIX_EPOCH + Duration::from_secs(5)),
            "application/octet-stream;swiftftp_mtime=5"
        );
    }

    #[test]
    fn other_content_types_carry_no_time() {
        assert_eq!(from_content_type("application/octet-stream"), None);
        assert_eq!(from_content_type("swiftftp_mtime=5"), None);
        assert_eq!(from_content_type("a/b;swiftftp_mtime=soon"), None);
        assert_eq!(from_content_type("a/b;swiftftp_mtime=-5"), None);
        assert_eq!(from_content_type("a/b;swiftftp_mtime=inf"), None);
    }

    #[test]
    fn seconds_are_written_like_swiftclient_writes_them() {
        assert_eq!(format_seconds(UNIX_EPOCH + Duration::from_secs(7)), "7");
        assert_eq!(
            format_seconds(UNIX_EPOCH + Duration::from_nanos(1_500_000_123)),
            "1.5"
        );
        assert_eq!(
            parse_seconds("1700000000.123456"),
            Some(UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456))
        );
    }
}
