//! The PROXY protocol (v1 text and v2 binary, as HAProxy and most TCP load balancers send it) at the start of a
//! control connection: who the client really is, when the socket's peer is a load balancer.
//!
//! The header is read exactly (peeked first, so no byte of the FTP conversation that follows is consumed), then
//! parsed with the `proxy-protocol` crate. The client's address is what limits, logs, logins and the
//! data-connection check use. A `LOCAL` v2 header (the balancer's own health check) or an `UNKNOWN` v1 header
//! keeps the socket's peer.
//!
//! Data connections: where the balancer forwards the passive ports too, [`ForwardedData`] reads the header it
//! sends on them (HAProxy: `send-proxy-v2` on those backends), so that libunftp's check that a data connection
//! is the control connection's client compares the real client. Data connections straight from clients carry
//! no header and need none.

use proxy_protocol::{ProxyHeader, version1, version2};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

/// How long a connection may take to send its header.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest header taken: a v1 line is at most 107 bytes; v2 carries addresses and optional TLVs.
const MAX_HEADER: usize = 536;

/// The v2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// Why a connection's header was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Reading failed, or the connection closed first.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
    /// Not a PROXY header, or a malformed one.
    #[error("not a valid PROXY protocol header")]
    Invalid,
    /// Nothing complete within [`HEADER_TIMEOUT`].
    #[error("no PROXY header within {HEADER_TIMEOUT:?}")]
    TimedOut,
}

/// Whether `peer` is one of the `proxy-protocol-from` networks (an IPv4 peer on an IPv6 socket included).
pub fn trusted(from: &[ipnet::IpNet], peer: std::net::IpAddr) -> bool {
    let peer = peer.to_canonical();
    from.iter().any(|net| net.contains(&peer))
}

/// libunftp's [`DataPeer`](libunftp::options::DataPeer) for passive data connections a balancer forwards: from
/// the `proxy-protocol-from` addresses, the client the connection's PROXY header names; from anywhere else, the
/// socket's peer.
#[derive(Debug)]
pub struct ForwardedData {
    /// The `proxy-protocol-from` networks.
    pub from: Vec<ipnet::IpNet>,
}

#[async_trait::async_trait]
impl libunftp::options::DataPeer for ForwardedData {
    async fn client_of(
        &self,
        socket: &mut TcpStream,
        peer: SocketAddr,
    ) -> std::io::Result<SocketAddr> {
        if !trusted(&self.from, peer.ip()) {
            return Ok(peer);
        }
        read_client(socket, peer)
            .await
            .map_err(std::io::Error::other)
    }
}

/// Reads the header of `stream` (whose socket peer is `peer`) and returns the client it names.
pub async fn read_client(
    stream: &mut TcpStream,
    peer: SocketAddr,
) -> Result<SocketAddr, ProxyError> {
    tokio::time::timeout(HEADER_TIMEOUT, read(stream, peer))
        .await
        .map_err(|_| ProxyError::TimedOut)?
}

async fn read(stream: &mut TcpStream, peer: SocketAddr) -> Result<SocketAddr, ProxyError> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; MAX_HEADER];
    let len = loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        match header_len(&buf[..n]) {
            Some(Ok(len)) => break len,
            Some(Err(())) => return Err(ProxyError::Invalid),
            // Incomplete: wait for more (peek returns what is there, so give the sender a moment).
            None if n == MAX_HEADER => return Err(ProxyError::Invalid),
            None => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    };
    let mut header = vec![0u8; len];
    stream.read_exact(&mut header).await?;
    client_of(&header, peer)
}

/// The length of the header at the start of `bytes`: `None` while incomplete, `Err` when it is none.
fn header_len(bytes: &[u8]) -> Option<Result<usize, ()>> {
    let v1 = b"PROXY ";
    if bytes.len() >= V2_SIGNATURE.len() && bytes.starts_with(V2_SIGNATURE) {
        if bytes.len() < 16 {
            return None;
        }
        let len = 16 + usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
        return Some(if len > MAX_HEADER { Err(()) } else { Ok(len) });
    }
    let prefix = bytes.len().min(v1.len());
    if bytes[..prefix] == v1[..prefix] {
        // A line not yet at its CRLF (or at 107 bytes) is waited for; "PROX" alone too.
        return match bytes.windows(2).position(|w| w == b"\r\n") {
            Some(pos) if pos + 2 <= 107 => Some(Ok(pos + 2)),
            Some(_) => Some(Err(())),
            None if bytes.len() >= 107 => Some(Err(())),
            None => None,
        };
    }
    let prefix = bytes.len().min(V2_SIGNATURE.len());
    if bytes[..prefix] == V2_SIGNATURE[..prefix] {
        return None;
    }
    Some(Err(()))
}

/// The client a complete header names (the socket's peer for `LOCAL` and `UNKNOWN`).
fn client_of(header: &[u8], peer: SocketAddr) -> Result<SocketAddr, ProxyError> {
    let mut bytes = header;
    match proxy_protocol::parse(&mut bytes).map_err(|_| ProxyError::Invalid)? {
        ProxyHeader::Version1 { addresses } => Ok(match addresses {
            version1::ProxyAddresses::Ipv4 { source, .. } => SocketAddr::V4(source),
            version1::ProxyAddresses::Ipv6 { source, .. } => SocketAddr::V6(source),
            version1::ProxyAddresses::Unknown => peer,
        }),
        ProxyHeader::Version2 {
            command, addresses, ..
        } => Ok(match (command, addresses) {
            (version2::ProxyCommand::Local, _) => peer,
            (_, version2::ProxyAddresses::Ipv4 { source, .. }) => SocketAddr::V4(source),
            (_, version2::ProxyAddresses::Ipv6 { source, .. }) => SocketAddr::V6(source),
            (_, _) => peer,
        }),
        _ => Err(ProxyError::Invalid),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PEER: &str = "10.0.0.1:40000";

    #[test]
    fn proxy_headers_are_trusted_from_the_listed_networks_only() {
        let from: Vec<ipnet::IpNet> =
            vec!["10.0.0.0/24".parse().unwrap(), "::1/128".parse().unwrap()];
        assert!(trusted(&from, "10.0.0.9".parse().unwrap()));
        // An IPv4 balancer seen through a dual-stack socket.
        assert!(trusted(&from, "::ffff:10.0.0.9".parse().unwrap()));
        assert!(trusted(&from, "::1".parse().unwrap()));
        assert!(!trusted(&from, "10.0.1.9".parse().unwrap()));
        assert!(!trusted(&from, "127.0.0.1".parse().unwrap()));
        assert!(!trusted(&[], "10.0.0.9".parse().unwrap()));
    }

    #[test]
    fn v1_headers_are_measured_and_read() {
        let line = b"PROXY TCP4 192.0.2.7 10.0.0.2 51234 21\r\nUSER x\r\n";
        assert_eq!(header_len(line), Some(Ok(40)));
        assert_eq!(header_len(b"PROX"), None);
        assert_eq!(header_len(b"PROXY TCP4 192.0.2.7"), None);
        assert_eq!(header_len(b"USER x\r\n"), Some(Err(())));
        assert_eq!(header_len(&[b'P'; 200]), Some(Err(())));
        let client = client_of(&line[..40], PEER.parse().unwrap()).unwrap();
        assert_eq!(client, "192.0.2.7:51234".parse().unwrap());
        let v6 = b"PROXY TCP6 2001:db8::7 2001:db8::1 51234 21\r\n";
        let client = client_of(v6, PEER.parse().unwrap()).unwrap();
        assert_eq!(client, "[2001:db8::7]:51234".parse().unwrap());
        let unknown = b"PROXY UNKNOWN\r\n";
        assert_eq!(
            client_of(unknown, PEER.parse().unwrap()).unwrap(),
            PEER.parse().unwrap()
        );
    }

    #[test]
    fn v2_headers_are_measured_and_read() {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend([0x21, 0x11, 0, 12]); // v2 PROXY, TCP over IPv4, 12 address bytes
        h.extend([192, 0, 2, 7, 10, 0, 0, 2]);
        h.extend(51234u16.to_be_bytes());
        h.extend(21u16.to_be_bytes());
        assert_eq!(header_len(&h[..10]), None);
        assert_eq!(header_len(&h[..15]), None);
        assert_eq!(header_len(&h), Some(Ok(28)));
        let client = client_of(&h, PEER.parse().unwrap()).unwrap();
        assert_eq!(client, "192.0.2.7:51234".parse().unwrap());
        // LOCAL (a health check): the socket's peer.
        let mut local = V2_SIGNATURE.to_vec();
        local.extend([0x20, 0x00, 0, 0]);
        assert_eq!(header_len(&local), Some(Ok(16)));
        assert_eq!(
            client_of(&local, PEER.parse().unwrap()).unwrap(),
            PEER.parse().unwrap()
        );
        assert!(client_of(b"garbage!", PEER.parse().unwrap()).is_err());
    }
    #[test]
    fn header_lengths_stop_at_their_limits() {
        // v1: a line of 107 bytes with its CRLF is the longest; no CRLF within 107 bytes is no header.
        let line = |len: usize| {
            let mut l = b"PROXY ".to_vec();
            l.resize(len - 2, b'x');
            l.extend(b"\r\n");
            l
        };
        assert_eq!(header_len(&line(107)), Some(Ok(107)));
        assert_eq!(header_len(&line(108)), Some(Err(())));
        let mut endless = b"PROXY ".to_vec();
        endless.resize(200, b'x');
        assert_eq!(header_len(&endless), Some(Err(())));
        // v2: the signature and 4 bytes, then as many as its length says, up to MAX_HEADER in all.
        let v2 = |len: u16| {
            let mut h = V2_SIGNATURE.to_vec();
            h.extend([0x21, 0x11]);
            h.extend(len.to_be_bytes());
            h
        };
        let most = (MAX_HEADER - 16) as u16;
        assert_eq!(header_len(&v2(most)), Some(Ok(MAX_HEADER)));
        assert_eq!(header_len(&v2(most + 1)), Some(Err(())));
    }

    /// A connected pair on 127.0.0.1: (what the gateway reads, what the client writes).
    async fn pair() -> (TcpStream, SocketAddr, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        (server, peer, client)
    }

    #[tokio::test]
    async fn a_header_in_two_pieces_is_waited_for_and_the_ftp_bytes_after_it_stay() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut server, peer, mut client) = pair().await;
        let writer = tokio::spawn(async move {
            client.write_all(b"PROXY TCP4 192.0.2.7 ").await.unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
            client
                .write_all(b"10.0.0.2 51234 21\r\nUSER x\r\n")
                .await
                .unwrap();
            client
        });
        let got = read_client(&mut server, peer).await.unwrap();
        assert_eq!(got, "192.0.2.7:51234".parse().unwrap());
        let _client = writer.await.unwrap();
        let mut rest = [0u8; 8];
        server.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"USER x\r\n");
    }

    #[tokio::test]
    async fn a_connection_closed_before_its_header_ends_at_once() {
        let (mut server, peer, client) = pair().await;
        drop(client);
        let started = std::time::Instant::now();
        let got = read_client(&mut server, peer).await;
        assert!(matches!(got, Err(ProxyError::Io(_))), "{got:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
