//! MD5 of an upload's bytes, computed beside its network path: one hasher for plain uploads ([`Md5Worker`])
//! and for segmented ones ([`SegmentsMd5`], the whole content's digest and each segment's).
//!
//! The bytes reach the hasher through a bounded channel ([`HASH_QUEUE`] chunks: the memory it can hold back);
//! when it falls behind by that much, the upload waits for it. Hashing in the body stream itself put it on the
//! upload's critical path (on a 2-core machine shared with Swift, a 2 GiB upload ran at about 0.7 of a direct
//! PUT). Each large chunk is hashed on the blocking pool and the thread given back at once: a hasher that held
//! a thread for its whole upload gave every open upload a thread (63 under the load test), and slow uploads
//! that filled the pool (512 threads) would have stalled every other upload's hashing. Small chunks are hashed
//! in place: a few microseconds, less than the hand-off.
//!
//! Not here: comparing the digest with Swift's ETag (`upload.rs`, `large/`).

use bytes::Bytes;
use md5::{Digest, Md5};

/// Chunks waiting to be hashed at most: a bound on the memory hashing can hold back (`HASH_QUEUE` × the
/// upload's chunk size).
pub(super) const HASH_QUEUE: usize = 8;

/// Chunks up to this size are hashed on the async task itself (MD5 runs at about 500 MB/s: 30 µs).
const INLINE: usize = 16 * 1024;

/// A task that folds fed items into a state, in order, and answers the state's digest once every sender is gone.
struct Worker<T> {
    tx: tokio::sync::mpsc::Sender<T>,
    done: tokio::task::JoinHandle<Option<String>>,
}

impl<T: Send + 'static> Worker<T> {
    /// `step` folds one item in (on the blocking pool when `size` of it is over [`INLINE`]); `digest` ends.
    fn start<S: Send + 'static>(
        mut state: S,
        step: fn(&mut S, T),
        size: fn(&T) -> usize,
        digest: fn(S) -> String,
    ) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<T>(HASH_QUEUE);
        let done = tokio::spawn(async move {
            while let Some(item) = rx.recv().await {
                if size(&item) <= INLINE {
                    step(&mut state, item);
                } else {
                    state = tokio::task::spawn_blocking(move || {
                        step(&mut state, item);
                        state
                    })
                    .await
                    .ok()?;
                }
            }
            Some(digest(state))
        });
        Self { tx, done }
    }

    /// The digest of everything fed, once every other sender is gone too (`None` if the hashing failed).
    async fn finish(self) -> Option<String> {
        drop(self.tx);
        self.done.await.ok().flatten()
    }
}

/// The MD5 of a plain upload's bytes.
pub(super) struct Md5Worker(Worker<Bytes>);

impl Md5Worker {
    pub(super) fn start() -> Self {
        Self(Worker::start(
            Md5::new(),
            |md5, chunk: Bytes| md5.update(&chunk),
            Bytes::len,
            |md5| hex::encode(md5.finalize()),
        ))
    }

    /// Another handle to feed it.
    pub(super) fn sender(&self) -> tokio::sync::mpsc::Sender<Bytes> {
        self.0.tx.clone()
    }

    /// The hex digest of everything fed, once every sender is gone.
    pub(super) async fn finish(self) -> Option<String> {
        self.0.finish().await
    }
}

/// What the segmented-upload hasher is fed: the bytes, and where each segment ends.
pub(super) enum HashFeed {
    Chunk(Bytes),
    /// The segment fed so far is complete: send its MD5 here.
    EndSegment(tokio::sync::oneshot::Sender<String>),
}

/// The whole content's MD5 and each segment's, hashing most bytes once: until the first segment ends both
/// digests have seen the same bytes, so the first segment's MD5 is a copy of the whole hasher's state (a
/// one-segment upload costs one MD5 pass, not two); later segments need a hasher of their own.
pub(super) struct SegmentsMd5(Worker<HashFeed>);

/// The whole hasher, and the current segment's (`None` while in the first segment).
type SegmentsState = (Md5, Option<Md5>);

impl SegmentsMd5 {
    pub(super) fn start() -> Self {
        fn step((whole, segment): &mut SegmentsState, feed: HashFeed) {
            match feed {
                HashFeed::Chunk(chunk) => {
                    whole.update(&chunk);
                    if let Some(s) = segment.as_mut() {
                        s.update(&chunk);
                    }
                }
                HashFeed::EndSegment(reply) => {
                    let digest = match segment.replace(Md5::new()) {
                        None => whole.clone().finalize(),
                        Some(s) => s.finalize(),
                    };
                    let _ = reply.send(hex::encode(digest));
                }
            }
        }
        fn size(feed: &HashFeed) -> usize {
            match feed {
                HashFeed::Chunk(chunk) => chunk.len(),
                HashFeed::EndSegment(_) => 0,
            }
        }
        Self(Worker::start(
            (Md5::new(), None),
            step,
            size,
            |(whole, _)| hex::encode(whole.finalize()),
        ))
    }

    /// Another handle to feed it.
    pub(super) fn sender(&self) -> tokio::sync::mpsc::Sender<HashFeed> {
        self.0.tx.clone()
    }

    /// The whole content's hex MD5, once every sender is gone.
    pub(super) async fn finish(self) -> Option<String> {
        self.0.finish().await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn md5_hex(bytes: &[u8]) -> String {
        hex::encode(Md5::digest(bytes))
    }

    #[tokio::test]
    async fn small_and_large_chunks_hash_in_order() {
        let worker = Md5Worker::start();
        let tx = worker.sender();
        let mut all = Vec::new();
        for (i, len) in [10, 100_000, 5, 300_000, 0, 16 * 1024]
            .into_iter()
            .enumerate()
        {
            let chunk = vec![i as u8; len];
            all.extend_from_slice(&chunk);
            tx.send(Bytes::from(chunk)).await.unwrap();
        }
        drop(tx);
        assert_eq!(worker.finish().await.unwrap(), md5_hex(&all));
    }

    #[tokio::test]
    async fn each_segment_and_the_whole_get_their_digest() {
        let worker = SegmentsMd5::start();
        let tx = worker.sender();
        let parts = [vec![1u8; 70_000], vec![2u8; 3], vec![3u8; 40_000]];
        let mut digests = Vec::new();
        for part in &parts {
            tx.send(HashFeed::Chunk(Bytes::from(part.clone())))
                .await
                .unwrap();
            let (reply, rx) = tokio::sync::oneshot::channel();
            tx.send(HashFeed::EndSegment(reply)).await.unwrap();
            digests.push(rx);
        }
        drop(tx);
        for (part, rx) in parts.iter().zip(digests) {
            assert_eq!(rx.await.unwrap(), md5_hex(part));
        }
        assert_eq!(worker.finish().await.unwrap(), md5_hex(&parts.concat()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_open_hashers_hold_no_thread() {
        // 600 uploads at once, each waiting for its client with one large chunk hashed: more than the blocking
        // pool's 512 threads, were a hasher to keep one.
        let workers: Vec<_> = (0..600).map(|_| Md5Worker::start()).collect();
        let senders: Vec<_> = workers.iter().map(Md5Worker::sender).collect();
        for tx in &senders {
            tx.send(Bytes::from(vec![7u8; 64 * 1024])).await.unwrap();
        }
        // A new upload's hashing still runs to its end.
        let late = Md5Worker::start();
        let tx = late.sender();
        tx.send(Bytes::from(vec![9u8; 64 * 1024])).await.unwrap();
        drop(tx);
        let done = tokio::time::timeout(std::time::Duration::from_secs(10), late.finish()).await;
        assert_eq!(done.unwrap().unwrap(), md5_hex(&[9u8; 64 * 1024]));
        drop(senders);
        for w in workers {
            assert_eq!(w.finish().await.unwrap(), md5_hex(&[7u8; 64 * 1024]));
        }
    }
}
