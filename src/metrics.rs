//! Prometheus metrics and the optional HTTP listener that serves them (`--metrics-address`): `GET /metrics` in
//! the text exposition format, `GET /health` answering 200 when Swift answers and 503 when it does not.
//!
//! Everything is in prometheus's default registry, where libunftp's own collectors (`ftp_*`: sessions, commands,
//! replies, bytes, auth failures) also live once `ServerBuilder::metrics` is on; ours are `swiftftp_*`. Recording
//! is a few atomic adds, so it happens whether or not anyone serves the figures.
//!
//! Not here: what "Swift answers" means for a deployment (the caller passes the check, see `server.rs`), and any
//! authentication of the listener: bind it to an address only the monitoring system reaches.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, TextEncoder,
};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// Registers a collector in the default registry. A name clash is a programming error caught by the first test
/// that gathers; in production it only costs that one series.
fn registered<C: prometheus::core::Collector + Clone + 'static>(c: C) -> C {
    if let Err(e) = prometheus::register(Box::new(c.clone())) {
        tracing::warn!(error = %e, "cannot register a metric");
    }
    c
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    // Only the constant names and labels of this file reach here: construction cannot fail.
    registered(
        IntCounterVec::new(Opts::new(name, help), labels)
            .unwrap_or_else(|e| unreachable!("a constant metric definition: {e}")),
    )
}

static LOGINS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "swiftftp_logins_total",
        "FTP logins by result: ok, refused (bad credentials), error (the auth service failed).",
        &["result"],
    )
});

static SESSIONS: LazyLock<IntGauge> = LazyLock::new(|| {
    let g = IntGauge::new("swiftftp_sessions", "FTP control connections open now.")
        .unwrap_or_else(|_| unreachable!("a constant metric definition"));
    registered(g)
});

/// A counter without labels, registered.
fn counter(name: &str, help: &str) -> IntCounter {
    registered(
        IntCounter::new(name, help)
            .unwrap_or_else(|e| unreachable!("a constant metric definition: {e}")),
    )
}

/// `swiftftp_build_info{version}`, always 1: which version runs, to join onto any series.
static BUILD_INFO: LazyLock<prometheus::IntGaugeVec> = LazyLock::new(|| {
    let info = prometheus::IntGaugeVec::new(
        Opts::new("swiftftp_build_info", "Always 1; the version running."),
        &["version"],
    )
    .unwrap_or_else(|_| unreachable!("a constant metric definition"));
    info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    registered(info)
});

/// The `process_*` series (CPU seconds, resident and virtual memory, open and maximum file descriptors, start
/// time), from prometheus's own collector for this process.
static PROCESS: LazyLock<()> = LazyLock::new(|| {
    let collector = prometheus::process_collector::ProcessCollector::for_self();
    if let Err(e) = prometheus::register(Box::new(collector)) {
        tracing::warn!(error = %e, "cannot register the process metrics");
    }
});

static SESSIONS_STARTED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "swiftftp_sessions_started_total",
        "FTP control connections accepted.",
    )
});

static TRANSFERS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "swiftftp_transfers_total",
        "File transfers by command (RETR, STOR) and result (ok, failed).",
        &["command", "result"],
    )
});

static BYTES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "swiftftp_transfer_bytes_total",
        "File bytes moved, by direction: in (clients to Swift), out (Swift to clients).",
        &["direction"],
    )
});

static SWIFT_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "swiftftp_swift_requests_total",
        "Requests to Swift and its auth service, by operation and HTTP status (or error, timeout).",
        &["op", "status"],
    )
});

static SWIFT_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    let h = HistogramVec::new(
        HistogramOpts::new(
            "swiftftp_swift_request_seconds",
            "Time until Swift's answer headers, by operation (a streamed upload counts until its answer).",
        )
        .buckets(vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
        ]),
        &["op"],
    )
    .unwrap_or_else(|_| unreachable!("a constant metric definition"));
    registered(h)
});

/// Outcome of a login, for [`login`].
#[derive(Debug, Clone, Copy)]
pub enum Login {
    /// Swift accepted the credentials.
    Ok,
    /// The credentials were refused (or malformed).
    Refused,
    /// The auth service failed or could not be reached.
    Error,
}

/// Counts a login.
pub fn login(result: Login) {
    let label = match result {
        Login::Ok => "ok",
        Login::Refused => "refused",
        Login::Error => "error",
    };
    LOGINS.with_label_values(&[label]).inc();
}

/// A control connection: counted while alive.
#[derive(Debug)]
pub struct SessionGuard(());

impl SessionGuard {
    /// Counts a new session until the guard is dropped.
    pub fn start() -> Self {
        SESSIONS.inc();
        SESSIONS_STARTED.inc();
        Self(())
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        SESSIONS.dec();
    }
}

static REFUSED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "swiftftp_connections_refused_total",
        "Connections turned away with 421 (max-connections, max-cons-per-ip).",
    )
});

/// Counts a connection turned away by a limit.
pub fn connection_refused() {
    REFUSED.inc();
}

/// Counts a finished transfer: `command` is `RETR` or `STOR`; `bytes` moved (also for a failed one).
pub fn transfer(command: &str, ok: bool, bytes: u64) {
    TRANSFERS
        .with_label_values(&[command, if ok { "ok" } else { "failed" }])
        .inc();
    let direction = if command == "RETR" { "out" } else { "in" };
    BYTES.with_label_values(&[direction]).inc_by(bytes);
}

pub use crate::swift::Answer;

/// Counts a request to Swift and how long its answer took.
pub fn swift_request(op: &str, answer: Answer, elapsed: Duration) {
    let status = match answer {
        Answer::Status(s) => s.to_string(),
        Answer::Timeout => "timeout".to_owned(),
        Answer::Error => "error".to_owned(),
    };
    SWIFT_REQUESTS.with_label_values(&[op, &status]).inc();
    SWIFT_SECONDS
        .with_label_values(&[op])
        .observe(elapsed.as_secs_f64());
}

/// Every metric in the default registry, in the text exposition format.
pub fn render() -> String {
    // Touch ours so that they show (at zero) before their first event.
    LazyLock::force(&LOGINS);
    LazyLock::force(&SESSIONS);
    LazyLock::force(&SESSIONS_STARTED);
    LazyLock::force(&REFUSED);
    LazyLock::force(&TRANSFERS);
    LazyLock::force(&BYTES);
    LazyLock::force(&SWIFT_REQUESTS);
    LazyLock::force(&SWIFT_SECONDS);
    LazyLock::force(&BUILD_INFO);
    LazyLock::force(&PROCESS);
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&prometheus::gather(), &mut out) {
        tracing::warn!(error = %e, "cannot encode the metrics");
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The health check: `Ok(what was checked)` or `Err(why it failed)`.
pub type HealthCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> + Send + Sync>;

/// Connections the metrics listener holds at once; one more is closed as soon as it is accepted. Each lives at
/// most [`CONNECTION_LIFETIME`] and carries one request, so idle or half-sent connections cannot hold every slot
/// for longer than that: a health probe gets in within seconds however many there are.
const MAX_CONNECTIONS: usize = 256;
/// How long a client has to send its request's headers: shorter than any health probe's interval.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one connection may last in all (one request, no keep-alive).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(10);
/// How long a health answer is reused: a scraper hammering `/health` costs Swift one request per period.
const HEALTH_REUSE: Duration = Duration::from_secs(2);

/// A health check that asks Swift at most once per [`HEALTH_REUSE`], whoever asks (single-flight).
fn reused(check: HealthCheck) -> HealthCheck {
    type Last = Option<(std::time::Instant, Result<String, String>)>;
    let last: Arc<tokio::sync::Mutex<Last>> = Arc::new(tokio::sync::Mutex::new(None));
    Arc::new(move || {
        let (check, last) = (Arc::clone(&check), Arc::clone(&last));
        Box::pin(async move {
            let mut last = last.lock().await;
            if let Some((at, result)) = last.as_ref()
                && at.elapsed() < HEALTH_REUSE
            {
                return result.clone();
            }
            let result = check().await;
            *last = Some((std::time::Instant::now(), result.clone()));
            result
        })
    })
}

/// Serves `/metrics` and `/health` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, health: HealthCheck) {
    let health = reused(health);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "metrics listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Accepting never waits for a slot (a full table would leave a probe in the backlog): over the cap the
        // newcomer is closed at once.
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%peer, "metrics listener: every slot busy, connection closed");
            continue;
        };
        let health = Arc::clone(&health);
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req| answer(req, Arc::clone(&health)));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_LIFETIME, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, %peer, "metrics connection ended with an error")
                }
                Err(_) => tracing::debug!(%peer, "metrics connection closed: it lasted too long"),
            }
        });
    }
}

async fn answer(
    req: Request<Incoming>,
    health: HealthCheck,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (status, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, render()),
        (&Method::GET, "/health") => match health().await {
            Ok(what) => (StatusCode::OK, format!("ok: {what}\n")),
            Err(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("unhealthy: {why}\n"),
            ),
        },
        (&Method::GET, _) => (
            StatusCode::NOT_FOUND,
            "try /metrics or /health\n".to_owned(),
        ),
        _ => (StatusCode::METHOD_NOT_ALLOWED, "GET only\n".to_owned()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(
        if status == StatusCode::OK && req.uri().path() == "/metrics" {
            "text/plain; version=0.0.4"
        } else {
            "text/plain; charset=utf-8"
        },
    ) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    Ok(resp)
}

/// Binds the metrics listener (before any privilege drop, like the FTP port).
pub fn bind(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    use anyhow::Context;
    let l = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot listen for metrics on {addr}"))?;
    l.set_nonblocking(true)
        .context("setting the metrics socket non-blocking")?;
    Ok(l)
}
