#!/usr/bin/env bash
# Fuzzes the parsing swiftftp owns (fuzz/fuzz_targets: FTP paths, login names, listing names and LIST lines) with
# cargo fuzz (libFuzzer, nightly toolchain), each target for its share of FUZZ_SECONDS (default 600 in all).
# Installs cargo-fuzz when missing. Not part of CI. A crash leaves its input under fuzz/artifacts/ and fails.
#
# Usage: tests/fuzz.sh [target ...]      (default: every target)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
total=${FUZZ_SECONDS:-600}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(location login listing)
each=$((total / ${#targets[@]}))
for t in "${targets[@]}"; do
  printf '== fuzzing %s for %ss\n' "$t" "$each" >&2
  cargo +nightly fuzz run "$t" -- -max_total_time="$each" -max_len=4096
done
printf '== no crash in %ss\n' "$total" >&2
