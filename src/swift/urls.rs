//! Swift URLs and headers: every path segment percent-encoded so that no name can address another object,
//! `/info` at the proxy's root, and the few header values read as numbers and times.
//!
//! Not here: sending anything (`client.rs`).

use reqwest::Url;
use reqwest::header::HeaderMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `/info` sits at the proxy's root: the storage URL's path up to its `/v1/...` part.
pub(super) fn info_url(storage_url: &Url) -> Url {
    let mut url = storage_url.clone();
    let path = url.path().to_owned();
    let root = path.find("/v1/").map_or("", |at| &path[..at]);
    url.set_path(&format!("{root}/info"));
    url.set_query(None);
    url
}

/// What is percent-encoded in a path segment: everything but unreserved and harmless characters. Control
/// characters above all: a URL parser drops TAB, CR and LF from a path (`url`'s segment pushing does too), so a
/// name holding them would address another object, and `.\t.` would become `..`.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Appends `/` and `segment`, encoded. `.` and `..` have no encoding a URL parser would not resolve (`%2e` is a
/// dot too), and resolved they would move the request to another object or container: they become `%00`, which
/// Swift refuses (412), so such a request fails instead of reaching anything.
fn push_segment(path: &mut String, segment: &str) {
    path.push('/');
    if segment == "." || segment == ".." {
        path.push_str("%00");
    } else {
        path.extend(percent_encoding::utf8_percent_encode(segment, SEGMENT));
    }
}

/// `base` with `segments` appended to its path, each encoded as one segment.
fn with_segments<'a>(base: &Url, segments: impl IntoIterator<Item = &'a str>) -> Url {
    let mut url = base.clone();
    let mut path = url.path().trim_end_matches('/').to_owned();
    for segment in segments {
        push_segment(&mut path, segment);
    }
    url.set_path(&path);
    url
}

/// `<storage>/<container>`, the container percent-encoded as one path segment.
pub(super) fn container_url(base: &Url, container: &str) -> Url {
    with_segments(base, [container])
}

/// `<storage>/<container>/<key>`, each `/`-separated part of the key encoded as its own segment so that the
/// slashes of pseudo-directories stay slashes.
pub(crate) fn object_url(base: &Url, container: &str, key: &str) -> Url {
    with_segments(base, std::iter::once(container).chain(key.split('/')))
}

/// [`object_url`] with query parameters (none: no `?`).
pub(crate) fn object_url_with(
    base: &Url,
    container: &str,
    key: &str,
    query: &[(&str, &str)],
) -> Url {
    let mut url = object_url(base, container, key);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    url
}

/// Parses a header as text.
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Parses a header as an unsigned number.
pub(crate) fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    header_str(headers, name).and_then(|v| v.trim().parse().ok())
}

/// `X-Timestamp` (seconds since the epoch, with decimals) as a time.
pub(crate) fn header_timestamp(headers: &HeaderMap) -> Option<SystemTime> {
    let secs: f64 = header_str(headers, "X-Timestamp")?.trim().parse().ok()?;
    // A garbled header must not panic: from_secs_f64 and SystemTime addition both can.
    UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(secs).ok()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_each_segment() {
        let base = Url::parse("http://127.0.0.1:8080/v1/AUTH_test").unwrap();
        assert_eq!(
            object_url(&base, "my c", "a b/ü?.txt").as_str(),
            "http://127.0.0.1:8080/v1/AUTH_test/my%20c/a%20b/%C3%BC%3F.txt"
        );
        assert_eq!(
            container_url(&base, "c%#").as_str(),
            "http://127.0.0.1:8080/v1/AUTH_test/c%25%23"
        );
        // Nothing a parser would drop or resolve: no name leaves its container or becomes another name.
        let cases = [
            (".\t./victim/obj", "/v1/AUTH_test/c/.%09./victim/obj"),
            ("a/../../victim", "/v1/AUTH_test/c/a/%00/%00/victim"),
            ("./x", "/v1/AUTH_test/c/%00/x"),
            ("%2e%2e/x", "/v1/AUTH_test/c/%252e%252e/x"),
            ("a\tb\r\n", "/v1/AUTH_test/c/a%09b%0D%0A"),
            ("back\\slash", "/v1/AUTH_test/c/back%5Cslash"),
            ("dir/", "/v1/AUTH_test/c/dir/"),
        ];
        for (key, path) in cases {
            assert_eq!(object_url(&base, "c", key).path(), path, "{key:?}");
        }
        assert_eq!(container_url(&base, "..").path(), "/v1/AUTH_test/%00");
        let trailing = Url::parse("http://h/v1/AUTH_t/").unwrap();
        assert_eq!(object_url(&trailing, "c", "k").path(), "/v1/AUTH_t/c/k");
    }

    #[test]
    fn info_url_is_at_the_proxy_root() {
        let base = Url::parse("https://swift.example:443/v1/AUTH_x").unwrap();
        assert_eq!(info_url(&base).as_str(), "https://swift.example/info");
        let prefixed = Url::parse("https://h/object-store/v1/KEY_1?x=y").unwrap();
        assert_eq!(info_url(&prefixed).as_str(), "https://h/object-store/info");
    }
}
