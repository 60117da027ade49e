#!/usr/bin/env bash
# Runs every test swiftftp has, on a fresh machine too: installs and starts the local Swift (tests/swift-lab.sh),
# checks formatting, lints and docs, runs `cargo test` (unit tests and integration tests against the real Swift
# with a Rust FTP client), then the end-to-end suite with lftp and curl (tests/e2e.sh).
#
# The lab is left running if it was running before, and stopped (by pid) if this run started it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"

lab_was_up=0
"$here/swift-lab.sh" status 2>/dev/null | grep -q '^proxy .*healthy' && lab_was_up=1
"$here/swift-lab.sh" start
if [ "$lab_was_up" = 0 ]; then trap '"$here/swift-lab.sh" stop' EXIT; fi

step() { printf '\n== %s\n' "$*" >&2; }
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy -D warnings"
cargo clippy --locked --all-targets -- -D warnings
step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --document-private-items
step "cargo test"
cargo test --locked
step "end-to-end: lftp and curl"
"$here/e2e.sh" "$repo/target/debug/swiftftp"
step "all tests passed"
