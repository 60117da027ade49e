//! swiftftp patch: a control connection's TCP stream that does not stall at urgent data.
//!
//! RFC 959 has a client send `ABOR` after Telnet IP and Synch, the Synch's DM byte as TCP urgent data (lftp
//! does). A read stops at the urgent mark; tokio takes that short read for a drained socket and waits for the
//! next readiness edge, which never comes when the rest of the line has already arrived: the session hung until
//! the client gave up waiting for the `ABOR`'s answer. So each read first asks the socket itself (a duplicate of
//! its descriptor, non-blocking like the original) and falls back to tokio's readiness only when there is
//! nothing to read. The urgent byte is skipped by the kernel (no `SO_OOBINLINE`); the codec drops the Telnet
//! commands around it.
//!
//! Not here: anything about TLS (a TLS session over this stream reads through it the same way).

use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The control connection's stream; see the module documentation.
pub(crate) struct ControlStream {
    inner: TcpStream,
    /// A duplicate of `inner`'s descriptor, for the direct reads (`None` if it could not be made: tokio's reads
    /// alone then, as before).
    direct: Option<std::net::TcpStream>,
}

impl ControlStream {
    pub(crate) fn new(inner: TcpStream) -> Self {
        use std::os::fd::AsFd;
        let direct = inner.as_fd().try_clone_to_owned().ok().map(std::net::TcpStream::from);
        Self { inner, direct }
    }
}

impl AsyncRead for ControlStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some(direct) = &this.direct {
            let unfilled = buf.initialize_unfilled();
            match (&*direct).read(unfilled) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ControlStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Bytes after an urgent byte that arrived with it are read at once: no wait for more data.
    #[tokio::test]
    async fn the_rest_of_a_line_after_urgent_data_is_read_at_once() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            std::io::Write::write_all(&mut c, b"\xff\xf4\xff").unwrap();
            socket2::SockRef::from(&c).send_out_of_band(b"\xf2").unwrap();
            std::io::Write::write_all(&mut c, b"ABOR\r\n").unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            c
        });
        let (server, _) = listener.accept().await.unwrap();
        // Everything has arrived before the first read.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let mut stream = ControlStream::new(server);
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while !got.ends_with(b"\r\n") {
            let n = tokio::time::timeout(std::time::Duration::from_secs(2), stream.read(&mut buf))
                .await
                .expect("stalled at the urgent mark")
                .unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"\xff\xf4\xffABOR\r\n");
        stream.write_all(b"226 ok\r\n").await.unwrap();
        drop(client.join().unwrap());
    }
}
