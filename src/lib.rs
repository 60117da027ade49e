//! swiftftp: an FTP gateway that shows an OpenStack Swift account to ordinary FTP clients.
//!
//! # Layout
//!
//! Three layers, each knowing only the one below:
//!
//! - `src/main.rs`: parse the command line, lock the pid file, detach, set up logging, build the runtime,
//!   serve, turn errors into an exit code.
//! - [`server`], [`config`], [`cli`], [`daemon`], [`logging`], [`metrics`], [`cache`]: the process. `cli` is the raw command
//!   line, `config` the validated settings (command line over INI file over defaults), `daemon` detaching, the
//!   pid file, privilege drop and signals, `logging` where lines go, `metrics` the Prometheus figures and their
//!   HTTP listener, `cache` the local or memcached cache, `server` binds, accepts and hands connections to
//!   libunftp, [`proxy_protocol`] reads who the client is behind a load balancer.
//! - [`ftp`]: the adapter, the only place where libunftp and Swift meet: path mapping, listings, the
//!   `StorageBackend`, login, and the one error → reply map.
//! - [`swift`]: a Swift client that knows nothing of FTP.
//!
//! # One request, traced through
//!
//! `RETR /photos/2026/a.jpg` after `REST 100`: libunftp parses the command and calls
//! `SwiftStorage::get_into("/photos/2026/a.jpg", 100, socket)` (`ftp/backend.rs`), which resolves the path to
//! `Location::Object { container: "photos", key: "2026/a.jpg" }` (`ftp/location.rs`) and calls `download`
//! (`ftp/read.rs`), which asks the user's `swift::Session` for `get_object("photos", "2026/a.jpg", 100)`
//! (`swift/operations.rs`; sending is `swift/client.rs`'s). The session sends
//! `GET /v1/AUTH_x/photos/2026/a.jpg` with `Range: bytes=100-`, the token and `X-Forwarded-For`, logging in again
//! once on a 401 and retrying on a 503; the body is streamed chunk by chunk to the data socket. A Swift 404
//! becomes `FtpError::NotFound`, which `ftp/error.rs` maps to `550`.

pub mod cache;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod ftp;
pub mod logging;
pub mod metrics;
pub mod proxy_protocol;
pub mod server;
pub mod swift;
pub mod tls;

pub use server::run;
