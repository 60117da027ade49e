//! The first bytes of an upload, read into memory to choose between a plain object and segments
//! ([`read_lookahead`]), kept as the pieces they were read into ([`Head`]).
//!
//! **Why pieces, not one buffer.** One buffer grown to the lookahead's 8 MiB was, once freed, glibc's signal to
//! raise its mmap threshold to 8 MiB (and its trim threshold to twice that). From the first large upload on,
//! every large buffer came from glibc's heaps and stayed there: the gateway's RSS grew by about 15 MiB per
//! large transfer, to a plateau of about 44 MiB, with nothing in use. Pieces of at most [`CHUNK`] bounded that
//! threshold to one piece; each piece is also freed as soon as it has been sent, not when the upload ends.
//!
//! Not here: what is done with the bytes (`mod.rs`: a plain `PUT` or the first segment's).

use super::super::UploadError;
use super::super::upload::CHUNK;
use super::SegmentPlan;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes read into memory before deciding between a plain object and segments.
pub const PLAIN_LOOKAHEAD: u64 = 8 * 1024 * 1024;

/// The lookahead's first piece: a small file fits, a larger one continues in pieces of [`CHUNK`].
const FIRST_READ: usize = 16 * 1024;

/// The first bytes of an upload, read to choose between a plain object and segments.
#[derive(Debug)]
pub enum Lookahead {
    /// The whole upload: it ended within the lookahead.
    Whole(Head),
    /// Its first bytes: more follow in the source.
    Started(Head),
}

/// Bytes held in memory, in pieces of at most 256 KiB (the upload chunk), none empty.
#[derive(Debug, Clone, Default)]
pub struct Head {
    pieces: Vec<Bytes>,
    len: usize,
}

impl Head {
    /// How many bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No byte at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pieces, in order.
    pub fn into_pieces(self) -> Vec<Bytes> {
        self.pieces
    }

    /// The bytes as a reader that frees each piece once it is read.
    pub fn into_reader(self) -> impl AsyncRead + Send + Unpin + 'static {
        let pieces = self.pieces.into_iter().map(Ok::<_, std::io::Error>);
        tokio_util::io::StreamReader::new(futures_util::stream::iter(pieces))
    }

    fn push(&mut self, piece: Bytes) {
        if !piece.is_empty() {
            self.len += piece.len();
            self.pieces.push(piece);
        }
    }
}

impl From<Bytes> for Head {
    fn from(bytes: Bytes) -> Self {
        let mut head = Self::default();
        head.push(bytes);
        head
    }
}

/// Reads the first bytes of `source` (up to [`PLAIN_LOOKAHEAD`] or the segment size, whichever is smaller, plus
/// one byte to know that more follow). Separate from the upload so that a caller can check the target meanwhile.
pub async fn read_lookahead<R>(source: &mut R, plan: SegmentPlan) -> Result<Lookahead, UploadError>
where
    R: AsyncRead + Unpin,
{
    let limit = plan.segment_size.min(PLAIN_LOOKAHEAD);
    let mut head = Head::default();
    // Small first: most uploads are small files, and a 256 KiB buffer for each made glibc raise its mmap
    // threshold and serve them from its heaps, which then kept growing under load (the load test's RSS).
    let mut piece = BytesMut::with_capacity(FIRST_READ);
    loop {
        if piece.capacity() - piece.len() < FIRST_READ / 4 {
            head.push(std::mem::replace(&mut piece, BytesMut::with_capacity(CHUNK)).freeze());
        }
        let read = (head.len() + piece.len()) as u64;
        let n = (&mut *source)
            .take(limit + 1 - read)
            .read_buf(&mut piece)
            .await
            .map_err(|e| UploadError::Source {
                bytes: read,
                source: e,
            })?;
        if n == 0 || read + n as u64 > limit {
            break;
        }
    }
    head.push(piece.freeze());
    Ok(if head.len() as u64 <= limit {
        Lookahead::Whole(head)
    } else {
        Lookahead::Started(head)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn plan(segment_size: u64) -> SegmentPlan {
        SegmentPlan {
            segment_size,
            max_segments: 1000,
            min_segment_size: 1,
        }
    }

    fn content(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    async fn read_back(head: Head) -> Vec<u8> {
        let mut back = Vec::new();
        head.into_reader().read_to_end(&mut back).await.unwrap();
        back
    }

    #[tokio::test]
    async fn an_upload_within_the_lookahead_is_whole_and_kept_in_small_pieces() {
        let bytes = content(3 * CHUNK + 5);
        let Lookahead::Whole(head) = read_lookahead(&mut &bytes[..], plan(8 << 20))
            .await
            .unwrap()
        else {
            panic!("an upload within the lookahead was not whole");
        };
        assert_eq!(head.len(), bytes.len());
        let pieces = head.clone().into_pieces();
        assert!(pieces.iter().all(|p| !p.is_empty() && p.len() <= CHUNK));
        assert_eq!(read_back(head).await, bytes);
    }

    #[tokio::test]
    async fn an_upload_past_the_lookahead_has_started_with_one_byte_more() {
        let limit = 2 * CHUNK as u64;
        let bytes = content(5 * CHUNK);
        let mut source = &bytes[..];
        let Lookahead::Started(head) = read_lookahead(&mut source, plan(limit)).await.unwrap()
        else {
            panic!("an upload past the lookahead was whole");
        };
        assert_eq!(head.len() as u64, limit + 1);
        assert!(head.clone().into_pieces().iter().all(|p| p.len() <= CHUNK));
        let mut all = read_back(head).await;
        all.extend_from_slice(source);
        assert_eq!(all, bytes);
    }

    #[tokio::test]
    async fn an_upload_of_exactly_the_lookahead_is_whole() {
        let bytes = content(CHUNK);
        let read = read_lookahead(&mut &bytes[..], plan(CHUNK as u64)).await;
        assert!(matches!(read.unwrap(), Lookahead::Whole(h) if h.len() == CHUNK));
    }

    #[tokio::test]
    async fn an_empty_upload_is_whole_and_empty() {
        let read = read_lookahead(&mut &b""[..], plan(1 << 20)).await.unwrap();
        let Lookahead::Whole(head) = read else {
            panic!("an empty upload was not whole");
        };
        assert!(head.is_empty() && head.into_pieces().is_empty());
    }
}
