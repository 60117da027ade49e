//! A TCP proxy in front of the real Swift that a test controls: pass traffic, cut every connection and refuse
//! new ones (the Swift proxy "stopped"), stall (connections open, no byte moving: a hung Swift), slow (a rate
//! limit), heal, or rewrite bytes on their way to Swift (corruption in transit).
//! Faults a real Swift cannot be made to produce on demand, without stopping the Swift other tests use.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Default)]
struct Rules {
    refusing: bool,
    /// Connections stay open but no byte moves, either way (a hung Swift).
    stalled: bool,
    /// Bytes per second each way, when set (a slow link).
    rate: Option<u64>,
    corrupt: Option<(Vec<u8>, Vec<u8>)>,
    /// Everything sent towards Swift, up to [`RECORD_LIMIT`] bytes.
    recorded: Vec<u8>,
}

const RECORD_LIMIT: usize = 16 << 20;

/// The proxy; it runs until dropped.
pub struct FaultProxy {
    pub addr: SocketAddr,
    rules: Arc<Mutex<Rules>>,
    generation: watch::Sender<u64>,
    _rt: tokio::runtime::Runtime,
}

impl FaultProxy {
    /// A proxy on 127.0.0.1:0 forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let rules = Arc::new(Mutex::new(Rules::default()));
        let (generation, _) = watch::channel(0u64);
        let (r, g) = (Arc::clone(&rules), generation.clone());
        rt.spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if r.lock().unwrap().refusing {
                    let _ =
                        socket2::SockRef::from(&client).set_linger(Some(std::time::Duration::ZERO));
                    drop(client); // a reset, like a port nobody listens on
                    continue;
                }
                tokio::spawn(pump(client, upstream, Arc::clone(&r), g.subscribe()));
            }
        });
        Self {
            addr,
            rules,
            generation,
            _rt: rt,
        }
    }

    /// The auth URL of the test Swift, reached through this proxy (tempauth then hands out storage URLs on the
    /// proxy's address too, so every request of the session goes through it).
    pub fn auth_url(&self) -> String {
        let upstream = super::auth_url();
        let path = upstream.splitn(4, '/').nth(3).unwrap_or("auth/v1.0");
        format!("http://{}/{path}", self.addr)
    }

    /// Cuts every open connection and refuses new ones.
    pub fn cut(&self) {
        self.rules.lock().unwrap().refusing = true;
        self.generation.send_modify(|g| *g += 1);
    }

    /// Lets traffic through again, at full speed.
    pub fn heal(&self) {
        let mut r = self.rules.lock().unwrap();
        r.refusing = false;
        r.stalled = false;
        r.rate = None;
    }

    /// Keeps every connection open but moves no byte until healed (a hung Swift).
    pub fn stall(&self) {
        self.rules.lock().unwrap().stalled = true;
    }

    /// Lets at most `bytes_per_second` through each way, per connection.
    pub fn slow(&self, bytes_per_second: u64) {
        self.rules.lock().unwrap().rate = Some(bytes_per_second);
    }

    /// What was sent towards Swift so far (the first few MiB).
    pub fn recorded(&self) -> Vec<u8> {
        self.rules.lock().unwrap().recorded.clone()
    }

    /// v1 logins that reached the auth service through this proxy so far.
    pub fn auth_requests(&self) -> usize {
        String::from_utf8_lossy(&self.recorded())
            .split("\r\n")
            .filter(|l| l.starts_with("GET /auth/"))
            .count()
    }

    /// Request lines sent towards Swift so far that start with `start` (say `"PUT /v1/"`).
    pub fn requests_starting(&self, start: &str) -> Vec<String> {
        let recorded = self.recorded();
        let text = String::from_utf8_lossy(&recorded);
        text.match_indices(start)
            .filter_map(|(at, _)| text[at..].split("\r\n").next())
            .map(str::to_owned)
            .collect()
    }

    /// Replaces `from` with `to` (same length) in what is sent to Swift.
    pub fn corrupt(&self, from: &[u8], to: &[u8]) {
        assert_eq!(from.len(), to.len());
        self.rules.lock().unwrap().corrupt = Some((from.to_vec(), to.to_vec()));
    }
}

/// The address of the real Swift behind the auth URL.
pub fn swift_addr() -> SocketAddr {
    let url = super::auth_url();
    let host = url.split('/').nth(2).unwrap();
    host.parse().unwrap()
}

/// Waits while stalled, then as long as the rate asks for `n` bytes; false if the connection should end.
async fn obey(rules: &Arc<Mutex<Rules>>, n: usize) -> bool {
    loop {
        let (stalled, rate) = {
            let r = rules.lock().unwrap();
            (r.stalled, r.rate)
        };
        if stalled {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        }
        if let Some(rate) = rate {
            let secs = n as f64 / rate.max(1) as f64;
            tokio::time::sleep(std::time::Duration::from_secs_f64(secs)).await;
        }
        return true;
    }
}

async fn pump(
    client: TcpStream,
    upstream: SocketAddr,
    rules: Arc<Mutex<Rules>>,
    mut cut: watch::Receiver<u64>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let chunk = &mut buf[..n];
            {
                let mut r = rules.lock().unwrap();
                let room = RECORD_LIMIT
                    .saturating_sub(r.recorded.len())
                    .min(chunk.len());
                r.recorded.extend_from_slice(&chunk[..room]);
                if let Some((from, to)) = r.corrupt.as_ref() {
                    let mut i = 0;
                    while i + from.len() <= chunk.len() {
                        if &chunk[i..i + from.len()] == from.as_slice() {
                            chunk[i..i + from.len()].copy_from_slice(to);
                            i += from.len();
                        } else {
                            i += 1;
                        }
                    }
                }
            }
            if !obey(&rules, n).await || sw.write_all(chunk).await.is_err() {
                break;
            }
        }
        let _ = sw.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if !obey(&rules, n).await || cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = cw.shutdown().await;
    };
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        _ = cut.changed() => {}
    }
}
