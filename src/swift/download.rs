//! Downloads: an object's bytes from an offset as one stream, read with one or more ranged `GET`s and, read
//! whole, checked against the object's MD5.
//!
//! Why ranges: Swift checks what it serves whole. On a full `GET` the object server hashes the file to find
//! bit rot (and quarantines it once the bytes are sent: the reader gets them either way), and for a Static
//! Large Object the proxy hashes each segment against the manifest and cuts the answer at a bad one. A range
//! that cuts an object or a segment skips both. Measured on the lab (a 512 MiB object, 2 cores shared with
//! Swift): Swift spent about half the CPU on ranged reads, and a gateway reading ranges (rclone) ran 15-25 %
//! faster than one reading whole. So:
//!
//! - **From offset 0, a plain object or a large object with its MD5 stored** (`X-Object-Meta-Md5`, which this
//!   gateway writes): ranges of [`FIRST_RANGE`], doubling up to [`LARGEST_RANGE`], each with `If-Match` on the
//!   first answer's ETag. A large object's bytes are hashed on the way and compared with the stored MD5 at the
//!   end: ours replaces the segment check Swift skipped, and a mismatch is an error after the last byte, so the
//!   caller reports a failed transfer instead of success. A plain object's are not: Swift's check of those
//!   never protected the reader (see above), and hashing costs about a quarter of the download speed.
//! - **Otherwise** (a Dynamic Large Object, a large object of another writer with no stored MD5): the first
//!   range, then the rest in one open-ended request, so Swift checks the whole segments in it as it always
//!   did. A download from an offset reads from there in one request.
//! - **One version only**: a later range whose object changed (`If-Match` refused, or another ETag) ends the
//!   stream with an error, never with bytes of two versions spliced (DLOs excepted: Swift reads those segment
//!   by segment, never as one version).
//!
//! Not here: timeouts between chunks (the consumer's), what the bytes are for (`ftp/read.rs`).

use super::ObjectHead;
use super::client::{Replay, Session};
use super::error::{Error, Op};
use super::hashing::Md5Worker;
use super::urls::{header_str, object_url};
use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use reqwest::{Response, StatusCode};
use std::pin::Pin;
use std::sync::Arc;

/// The first `GET` of a download asks for this many bytes: a small file comes whole in it.
pub const FIRST_RANGE: u64 = 8 << 20;

/// Ranges double from [`FIRST_RANGE`] up to this.
pub const LARGEST_RANGE: u64 = 256 << 20;

/// A body, chunk by chunk.
type Body = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send + Sync>>;

/// An object being downloaded: its headers, and its bytes on demand ([`Download::into_stream`]).
pub struct Download {
    /// What the first `GET` answered, with `content_length` the whole object's size (not the range's).
    pub head: ObjectHead,
    reader: Reader,
}

/// What the stream needs to go on after its current body.
struct Reader {
    session: Arc<Session>,
    container: String,
    key: String,
    op: Op,
    body: Body,
    /// Where the next range starts (the end of the current body).
    next: u64,
    /// The object's size.
    size: u64,
    /// How the rest is read once the current body ends.
    rest: Rest,
    /// The ETag every later range must have (`If-Match`).
    etag: Option<String>,
    /// The MD5 the bytes must have, and the hasher they go through; `None` when not checked.
    check: Option<(String, Md5Worker, tokio::sync::mpsc::Sender<Bytes>)>,
}

/// What follows the current body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rest {
    /// Nothing: the current body ends the object.
    Nothing,
    /// Ranges of this length (doubling up to [`LARGEST_RANGE`]).
    Ranges(u64),
    /// One open-ended request from `next`.
    Whole,
}

impl Session {
    /// Downloads `container/key` from byte `start` (see the module doc for how it is read).
    pub async fn download(
        self: &Arc<Self>,
        container: &str,
        key: &str,
        start: u64,
    ) -> Result<Download, Error> {
        let op = Op::GetObject {
            container: container.to_owned(),
            key: key.to_owned(),
        };
        let last = match start {
            0 => Some(FIRST_RANGE - 1),
            _ => None,
        };
        let resp = self
            .get_range(&op, container, key, start, last, None)
            .await?;
        let mut head = ObjectHead::from_headers(resp.headers());
        let Span {
            size,
            end: next,
            skip,
        } = span(&resp, start, &op)?;
        head.content_length = size;
        let Plan { rest, check, etag } = plan(start, next, size, &head);
        let check = check.map(|md5| {
            let worker = Md5Worker::start();
            let feed = worker.sender();
            (md5, worker, feed)
        });
        Ok(Download {
            head,
            reader: Reader {
                session: Arc::clone(self),
                container: container.to_owned(),
                key: key.to_owned(),
                body: skip_bytes(body_of(resp, op.clone()), skip),
                op,
                next,
                size,
                rest,
                etag,
                check,
            },
        })
    }

    /// One `GET` of `start..=last` (`None`: to the end; from 0 to the end, no `Range` at all), `If-Match` `etag`
    /// when given. [`Session::get_object`] is this from `start` to the end.
    pub(super) async fn get_range(
        &self,
        op: &Op,
        container: &str,
        key: &str,
        start: u64,
        last: Option<u64>,
        etag: Option<&str>,
    ) -> Result<Response, Error> {
        let range = match (start, last) {
            (0, None) => None,
            (_, None) => Some(format!("bytes={start}-")),
            (_, Some(last)) => Some(format!("bytes={start}-{last}")),
        };
        self.send(op, Replay::Retry, |http, base| {
            let mut req = http.get(object_url(base, container, key));
            if let Some(range) = &range {
                req = req.header("Range", range);
            }
            if let Some(etag) = etag {
                req = req.header("If-Match", format!("\"{etag}\""));
            }
            req
        })
        .await
    }
}

impl Download {
    /// The bytes, chunk by chunk: an error ends it (a cut connection, an object that changed between ranges,
    /// bytes whose MD5 is not the object's, this last one after every byte was passed on).
    pub fn into_stream(self) -> Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>> {
        Box::pin(futures_util::stream::try_unfold(
            Some(self.reader),
            |reader| async move {
                let Some(mut reader) = reader else {
                    return Ok(None);
                };
                loop {
                    if let Some(chunk) = reader.body.try_next().await? {
                        if let Some((_, _, feed)) = &reader.check {
                            // The hasher only stops by being dropped with the reader: a send cannot fail before.
                            let _ = feed.send(chunk.clone()).await;
                        }
                        return Ok(Some((chunk, Some(reader))));
                    }
                    if !reader.open_next().await? {
                        reader.verify().await?;
                        return Ok(None);
                    }
                }
            },
        ))
    }
}

impl Reader {
    /// The current body ended: the next one, if any is left (`false` when the object is read).
    async fn open_next(&mut self) -> Result<bool, Error> {
        let last = match self.rest {
            Rest::Nothing => return Ok(false),
            Rest::Whole => None,
            Rest::Ranges(len) => Some((self.next + len).min(self.size) - 1),
        };
        let resp = self
            .session
            .get_range(
                &self.op,
                &self.container,
                &self.key,
                self.next,
                last,
                self.etag.as_deref(),
            )
            .await?;
        let etag = header_str(resp.headers(), "Etag").map(|e| e.trim_matches('"').to_owned());
        if etag != self.etag {
            tracing::warn!(container = %self.container, key = %self.key, "the object changed while it was read");
            return Err(Error::protocol(
                self.op.clone(),
                "the object changed while it was read (another ETag)",
            ));
        }
        let Span { end, skip, .. } = span(&resp, self.next, &self.op)?;
        if end <= self.next {
            return Err(Error::protocol(
                self.op.clone(),
                format!("no bytes from {} of {}", self.next, self.size),
            ));
        }
        self.body = skip_bytes(body_of(resp, self.op.clone()), skip);
        self.next = end;
        self.rest = match self.rest {
            _ if self.next >= self.size => Rest::Nothing,
            Rest::Ranges(len) => Rest::Ranges((len * 2).min(LARGEST_RANGE)),
            other => other,
        };
        Ok(true)
    }

    /// Every byte was read: their MD5 must be the object's, when it is known.
    async fn verify(&mut self) -> Result<(), Error> {
        let Some((expected, worker, feed)) = self.check.take() else {
            return Ok(());
        };
        drop(feed);
        match worker.finish().await {
            Some(read) if read == expected => Ok(()),
            Some(read) => {
                tracing::error!(container = %self.container, key = %self.key, %expected, %read, "the bytes read from Swift do not match the object's MD5");
                Err(Error::protocol(
                    self.op.clone(),
                    format!(
                        "the bytes read do not match the object's MD5 ({expected}, read {read})"
                    ),
                ))
            }
            None => Err(Error::protocol(
                self.op.clone(),
                "the MD5 of the bytes read could not be computed",
            )),
        }
    }
}

/// How a download goes on after its first answer.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    rest: Rest,
    /// The MD5 all the bytes must have (lowercase hex), when they are checked.
    check: Option<String>,
    /// The ETag later ranges are pinned to.
    etag: Option<String>,
}

/// The rules of the module doc, for a download from `start` whose first answer ended at `next` of `size`.
fn plan(start: u64, next: u64, size: u64, head: &ObjectHead) -> Plan {
    let dlo = head.dlo_manifest.is_some();
    // A large object's stored MD5 stands in for the segment checks Swift skips on cut segments. A plain
    // object's ETag is not checked: Swift's own check of it (on full reads) quarantines after the bytes were
    // sent and so never protected the reader either.
    let slo_md5 = match head.static_large_object {
        true => head.meta_md5.as_deref().filter(|m| is_md5(m)),
        false => None,
    };
    let ranges = start == 0 && !dlo && (slo_md5.is_some() || !head.static_large_object);
    let rest = match ranges {
        _ if next >= size => Rest::Nothing,
        true => Rest::Ranges(FIRST_RANGE * 2),
        false => Rest::Whole,
    };
    Plan {
        rest,
        check: slo_md5.filter(|_| start == 0).map(str::to_ascii_lowercase),
        // A Dynamic Large Object's ETag is computed from its segment listing (Swift reads DLOs segment by
        // segment, never as one version), and not every ranged answer carries it: not pinned.
        etag: head.etag.clone().filter(|_| !dlo),
    }
}

/// What an answer to a `GET` from `from` holds.
struct Span {
    /// The whole object's size.
    size: u64,
    /// Where its body ends in the object.
    end: u64,
    /// Bytes of its body before `from` (a `200`, the whole object, answering a range).
    skip: u64,
}

/// A `206` must start at `from` and say the object's size (`Content-Range`); a `200` is the whole object,
/// whatever was asked.
fn span(resp: &Response, from: u64, op: &Op) -> Result<Span, Error> {
    let len = resp.content_length().unwrap_or(0);
    if resp.status() != StatusCode::PARTIAL_CONTENT {
        return Ok(Span {
            size: len,
            end: len,
            skip: from,
        });
    }
    match content_range(resp) {
        Some((start, size)) if start == from => Ok(Span {
            size,
            end: from + len,
            skip: 0,
        }),
        Some((start, _)) => Err(Error::protocol(
            op.clone(),
            format!("asked for bytes from {from}, Swift sent from {start}"),
        )),
        None => Err(Error::protocol(
            op.clone(),
            "a ranged answer without its Content-Range",
        )),
    }
}

/// A response's body as a stream of chunks.
pub(super) fn body_of(resp: Response, op: Op) -> Body {
    Box::pin(
        resp.bytes_stream()
            .map_err(move |e| Error::from_transport(op.clone(), e)),
    )
}

/// `body` without its first `n` bytes.
fn skip_bytes(body: Body, n: u64) -> Body {
    if n == 0 {
        return body;
    }
    let mut left = n;
    Box::pin(body.try_filter_map(move |mut chunk| {
        let drop = left.min(chunk.len() as u64);
        left -= drop;
        // `drop` is at most `chunk.len()`, so it fits a usize.
        let kept = chunk.split_off(usize::try_from(drop).unwrap_or(chunk.len()));
        std::future::ready(Ok((!kept.is_empty()).then_some(kept)))
    }))
}

fn content_range(resp: &Response) -> Option<(u64, u64)> {
    parse_content_range(header_str(resp.headers(), "Content-Range")?)
}

/// `bytes a-b/total` → (a, total).
fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let (range, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()?))
}

/// 32 hexadecimal digits: what an MD5 looks like (an ETag of another form is not one).
fn is_md5(value: &str) -> bool {
    value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse() {
        assert_eq!(
            parse_content_range("bytes 0-8388607/536870912"),
            Some((0, 536870912))
        );
        assert_eq!(
            parse_content_range("bytes 8388608-25165823/30000000"),
            Some((8388608, 30000000))
        );
        assert_eq!(parse_content_range("bytes */100"), None);
        assert_eq!(parse_content_range("bytes 0-9/*"), None);
        assert_eq!(parse_content_range("items 0-9/10"), None);
    }

    #[test]
    fn only_md5_shaped_etags_are_checked() {
        assert!(is_md5("1e455c41f0c210389278ac0b7e2f489f"));
        assert!(is_md5("1E455C41F0C210389278AC0B7E2F489F"));
        assert!(!is_md5("1e455c41f0c210389278ac0b7e2f489"));
        assert!(!is_md5("1e455c41f0c210389278ac0b7e2f489f-3"));
        assert!(!is_md5("zz455c41f0c210389278ac0b7e2f489f"));
    }

    fn head(slo: bool, dlo: bool, meta_md5: Option<&str>) -> ObjectHead {
        ObjectHead {
            content_length: 0,
            etag: Some("e".repeat(32)),
            content_type: None,
            last_modified: None,
            dlo_manifest: dlo.then(|| "c_segments/x/".to_owned()),
            static_large_object: slo,
            meta_md5: meta_md5.map(str::to_owned),
            kept_on_post: Vec::new(),
        }
    }

    #[test]
    fn plans_follow_the_rules() {
        const MD5: &str = "1E455C41F0C210389278AC0B7E2F489F";
        let big = 100 << 20;
        let first = FIRST_RANGE;
        let etag = Some("e".repeat(32));
        // A plain object from 0: ranges, pinned, not hashed.
        let plain = plan(0, first, big, &head(false, false, None));
        assert_eq!(plain.rest, Rest::Ranges(2 * first));
        assert_eq!((plain.check, &plain.etag), (None, &etag));
        // Our large object: ranges, hashed against its stored MD5.
        let ours = plan(0, first, big, &head(true, false, Some(MD5)));
        assert_eq!(ours.rest, Rest::Ranges(2 * first));
        assert_eq!(
            ours.check.as_deref(),
            Some(MD5.to_ascii_lowercase().as_str())
        );
        // Another writer's large object (no MD5, or not one): the rest whole, for Swift's segment checks.
        for md5 in [None, Some("not-an-md5")] {
            let theirs = plan(0, first, big, &head(true, false, md5));
            assert_eq!((theirs.rest, theirs.check), (Rest::Whole, None));
        }
        // A DLO: the rest whole, not pinned to an ETag.
        let dlo = plan(0, first, big, &head(false, true, Some(MD5)));
        assert_eq!((dlo.rest, dlo.check, dlo.etag), (Rest::Whole, None, None));
        // From an offset: one request to the end, nothing to check.
        let resumed = plan(5, big, big, &head(true, false, Some(MD5)));
        assert_eq!((resumed.rest, resumed.check), (Rest::Nothing, None));
        // All of it in the first answer.
        let small = plan(0, 4096, 4096, &head(true, false, Some(MD5)));
        assert_eq!(small.rest, Rest::Nothing);
        assert!(
            small.check.is_some(),
            "a small large object is still checked"
        );
    }

    #[tokio::test]
    async fn skipping_drops_exactly_the_first_bytes() {
        for (n, want) in [
            (0, "abcdefghi"),
            (2, "cdefghi"),
            (3, "defghi"),
            (5, "fghi"),
            (9, ""),
            (20, ""),
        ] {
            let chunks = ["abc", "defg", "hi"].map(|c| Ok(Bytes::from_static(c.as_bytes())));
            let body: Body = Box::pin(futures_util::stream::iter(chunks));
            let got: Vec<Bytes> = skip_bytes(body, n).try_collect().await.expect("no error");
            assert_eq!(got.concat(), want.as_bytes(), "skipping {n}");
        }
    }
}
