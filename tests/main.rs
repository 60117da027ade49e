//! Integration tests: one binary (fast to link), against the real test Swift started by
//! `tests/swift-lab.sh start`, with a real FTP client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod caching;
mod common;
mod daemon;
mod downloads;
mod ftp_faults;
mod ftp_keystone;
mod ftp_login;
mod ftp_read;
mod ftp_rename;
mod ftp_write;
mod ftps;
mod large_files;
mod limits;
mod metrics;
mod mtime;
mod options_doc;
mod protocol;
mod resume;
mod security;
mod site_commands;
mod storage_policy;
mod swift_client;
