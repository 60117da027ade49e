//! The last word before an upload becomes visible: the client is still there, and the name may take a file.
//!
//! A client killed mid-upload closes its data connection like one that finished; only its control connection,
//! closed too a moment later, tells them apart (libunftp's `ClientCheck`, vendored). Waiting for that moment
//! before sending Swift the last bytes put a fixed wait on every upload. Here the wait runs beside the work:
//!
//! - [`held_back`]: a small file's body whose last byte goes to Swift only once its gate opens. The `PUT`
//!   starts at once (Swift connects, authorizes, takes all but one byte) while the client check (a shorter
//!   look, [`NEW_FILE_LOOK`]: a new name only, since a file already there makes Swift refuse the `PUT` and the
//!   overwrite looks for the full grace) and the directory check finish; a gate that does not open ends the
//!   body early, and Swift, short of its `Content-Length`, stores nothing.
//! - Uploads that commit only at their end (segments, then a manifest) hand the check back
//!   (`ClientCheck::release`): libunftp's reader then waits at the end itself, as it did before.
//!
//! Not here: what is checked about the name (`write.rs`), the check itself (libunftp's `datachan.rs`).

use crate::swift;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use libunftp::ClientCheck;
use tokio::io::AsyncRead;

/// The error an upload's source ends with when its client is gone.
pub(super) fn client_gone() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "the client closed its control connection before the upload's end: the upload is incomplete",
    )
}

/// How long after its data's end a new name's small file looks at its client once more (libunftp's own look,
/// for everything else, is 3 ms). The wait runs beside the `PUT`, and Swift spends about 2 ms on one before it
/// wants the last byte: 1 ms (at most 2, as tokio's timer rounds up) costs nothing, where 3 ms cost every small
/// upload ~1.5 ms. What the shorter look gives up: a dying client on the gateway's own busy cores, preempted
/// between its two closes, is missed a little more often (~3 in 100 such kills instead of ~1), and then a
/// truncated new file is stored; it never replaces a file (an overwrite looks again for 3 ms).
pub(super) const NEW_FILE_LOOK: std::time::Duration = std::time::Duration::from_millis(1);

/// Whether the client of this upload stayed to its end (no check: it did, the reader waited itself).
pub(super) async fn client_stayed(check: Option<&ClientCheck>) -> bool {
    match check {
        Some(check) => check.client_stayed().await,
        None => true,
    }
}

/// [`client_stayed`], looked at [`NEW_FILE_LOOK`] after the data's end.
pub(super) async fn new_file_client_stayed(check: Option<&ClientCheck>) -> bool {
    match check {
        Some(check) => check.client_stayed_by(NEW_FILE_LOOK).await,
        None => true,
    }
}

/// `body` as a reader whose last byte waits for `gate` (`Err` ends the body there). An empty body has no
/// byte to hold: its caller waits for the gate before sending it.
pub(super) fn held_back(
    body: impl Into<swift::Head>,
    gate: BoxFuture<'static, std::io::Result<()>>,
) -> impl AsyncRead + Send + Unpin + 'static {
    let mut pieces = body.into().into_pieces();
    let last = match pieces.last_mut() {
        Some(piece) => piece.split_off(piece.len().saturating_sub(1)),
        None => Bytes::new(),
    };
    let last = futures_util::stream::once(async move { gate.await.map(|()| last) });
    let chunks = futures_util::stream::iter(pieces.into_iter().map(Ok))
        .chain(last)
        .filter(|chunk| std::future::ready(chunk.as_ref().map_or(true, |c| !c.is_empty())));
    tokio_util::io::StreamReader::new(Box::pin(chunks))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// `body` (holding `content`) comes through [`held_back`] but for its last byte, which waits for the gate.
    async fn held_until_the_gate_opens(body: impl Into<swift::Head>, content: &[u8]) {
        let (tx, rx) = tokio::sync::oneshot::channel::<std::io::Result<()>>();
        let gate = Box::pin(async move { rx.await.unwrap_or(Ok(())) });
        let mut reader = held_back(body, gate);
        let mut first = vec![0u8; content.len() - 1];
        reader.read_exact(&mut first).await.unwrap();
        assert_eq!(first, content[..content.len() - 1]);
        let mut one = [0u8; 1];
        let early =
            tokio::time::timeout(std::time::Duration::from_millis(50), reader.read(&mut one)).await;
        assert!(early.is_err(), "the last byte came before the gate opened");
        tx.send(Ok(())).unwrap();
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, content[content.len() - 1..]);
    }

    #[tokio::test]
    async fn the_last_byte_waits_for_the_gate() {
        held_until_the_gate_opens(Bytes::from_static(b"hello"), b"hello").await;
    }

    #[tokio::test]
    async fn a_closed_gate_ends_the_body_with_its_error() {
        let gate = Box::pin(async { Err(client_gone()) });
        let mut reader = held_back(Bytes::from_static(b"hello"), gate);
        let mut all = Vec::new();
        let err = reader.read_to_end(&mut all).await.unwrap_err();
        assert_eq!(all, b"hell");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
    }

    #[tokio::test]
    async fn one_byte_is_all_held_back() {
        let gate = Box::pin(async { Ok(()) });
        let mut all = Vec::new();
        held_back(Bytes::from_static(b"x"), gate)
            .read_to_end(&mut all)
            .await
            .unwrap();
        assert_eq!(all, b"x");
    }

    #[tokio::test]
    async fn a_body_in_pieces_holds_back_only_its_last_byte() {
        let content: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
        let plan = swift::SegmentPlan {
            segment_size: 1 << 20,
            max_segments: 1000,
            min_segment_size: 1,
        };
        let swift::Lookahead::Whole(head) = swift::read_lookahead(&mut &content[..], plan)
            .await
            .unwrap()
        else {
            panic!("600 kB within a 1 MiB lookahead was not whole");
        };
        assert!(head.clone().into_pieces().len() > 1);
        held_until_the_gate_opens(head, &content).await;
    }
}
