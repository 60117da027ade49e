#!/usr/bin/env bash
# Runs every test swiftftp has, on a fresh machine too: installs and starts the local Swift (tests/swift-lab.sh)
# and Keystone (tests/keystone-lab.sh), checks formatting, lints, the vendored libunftp's patch series
# (vendor/patches/series.sh) and docs, runs `cargo test` (unit tests and integration tests against the real Swift
# and Keystone with a Rust FTP client, and of the real binary as a daemon), verifies the example systemd units
# (tests/check-examples.sh), builds, installs and purges the Debian package (tests/package.sh), then the end-to-end
# suite with lftp and curl (tests/e2e.sh), the client matrix (tests/clients.sh: python ftplib and ftputil, wget,
# rclone, node basic-ftp, curl over implicit FTPS), the load test (tests/load.sh) and the HAProxy deployment of two
# instances (tests/haproxy.sh).
#
# The labs are left running if they were running before, and stopped (by pid) if this run started them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"

stop_after=()
"$here/swift-lab.sh" status 2>/dev/null | grep -q '^proxy .*healthy' || stop_after+=(swift-lab.sh)
"$here/keystone-lab.sh" status 2>/dev/null | grep -q '^keystone .*healthy' || stop_after+=(keystone-lab.sh)
cleanup() {
  local lab
  # Keystone's proxy leans on Swift's storage servers: stop it first.
  for lab in keystone-lab.sh swift-lab.sh; do
    [[ " ${stop_after[*]} " == *" $lab "* ]] && "$here/$lab" stop
  done
  return 0
}
trap cleanup EXIT
"$here/swift-lab.sh" start
"$here/keystone-lab.sh" start

step() { printf '\n== %s\n' "$*" >&2; }
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy -D warnings"
cargo clippy --locked --all-targets -- -D warnings
step "vendor/: the published libunftp and unftp-core + vendor/patches"
"$repo/vendor/patches/series.sh" check
step "imports: no circle in src/, swift/ imports neither ftp/ nor metrics"
"$here/check-imports.sh"
step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --document-private-items
step "cargo test"
cargo test --locked
step "cargo test: the vendored libunftp's own unit tests"
cargo test --locked -p libunftp -p unftp-core --lib
step "examples: systemd units"
"$here/check-examples.sh" "$repo/target/debug/swiftftp"
step "the Debian package: cargo deb, dpkg -i, checks, dpkg --purge"
"$here/package.sh" "$repo/target/debug/swiftftp"
step "end-to-end: lftp and curl"
"$here/e2e.sh" "$repo/target/debug/swiftftp"
step "clients: ftplib, ftputil, wget, rclone, node basic-ftp, curl ftps://"
"$here/clients.sh" "$repo/target/debug/swiftftp"
step "load: 200 sessions for two minutes"
"$here/load.sh" "$repo/target/debug/swiftftp"
step "HAProxy in front of two instances: mirror, read-your-writes, rolling restart, SIGKILL, lockout"
"$here/haproxy.sh" "$repo/target/debug/swiftftp"
step "all tests passed"
