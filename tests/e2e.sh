#!/usr/bin/env bash
# End-to-end suite: real FTP clients (lftp, curl) against the swiftftp binary in front of the real test Swift.
#
# Objects are written with the Swift API (curl), then downloaded through the gateway with `lftp mirror` and with
# curl, and every byte is compared by SHA-256: a 1 GiB object (E2E_BIG_MB to change its size), a nested tree,
# names with spaces and non-ASCII characters, an empty file. Also: RETR of a missing file fails with 550 before
# any data, REST resumes (curl -C), `CWD ../../..` from a container lands at `/`, and SIGTERM exits cleanly.
#
# Usage: tests/e2e.sh [path/to/swiftftp]   (default: target/debug/swiftftp, built if missing)
# Needs the lab: tests/swift-lab.sh start (tests/run.sh does both).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=tests/lib.sh
. "$here/lib.sh"

BIN=${1:-$repo/target/debug/swiftftp}
BIG_MB=${E2E_BIG_MB:-1024}
[ -x "$BIN" ] || (cd "$repo" && cargo build --locked --bin swiftftp)

work=$(mktemp -d "${TMPDIR:-/tmp}/swiftftp-e2e.XXXXXX")
container="e2e-$$-tree"
cleanup() {
  stop_gateway
  [ -n "${SWIFT_TOKEN:-}" ] && swift_delete_container "$container"
  rm -rf "$work"
}
trap cleanup EXIT

swift_login
say "writing the source tree through the Swift API"
src="$work/src"
mkdir -p "$src/nested/deeper/deepest" "$src/with space" "$src/ünïcödé ☺"
head -c $((BIG_MB * 1024 * 1024)) /dev/urandom >"$src/big.bin"
printf 'top level\n' >"$src/top.txt"
: >"$src/empty.txt"
head -c 300000 /dev/urandom >"$src/nested/a.bin"
head -c 70000 /dev/urandom >"$src/nested/deeper/b.bin"
printf 'deep\n' >"$src/nested/deeper/deepest/c.txt"
printf 'spaces\n' >"$src/with space/file with space.txt"
printf 'unicode\n' >"$src/ünïcödé ☺/fïlé ☺ ✓.txt"
curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$container" || die "PUT container"
(cd "$src" && find . -type f | sed 's|^\./||') | while IFS= read -r rel; do
  swift_put "$container/$rel" "$src/$rel"
done
(cd "$src" && find . -type f -exec sha256sum {} + | sort -k2) >"$work/src.sums"

start_gateway "$BIN" "$work/gateway.log"
say "gateway on port $GW_PORT"
ftp_url="ftp://$(urlpath "$LAB_USER" | sed 's/:/%3A/g'):$LAB_KEY@127.0.0.1:$GW_PORT"

say "lftp mirror"
lftp -e "set net:max-retries 1; set net:timeout 30; set xfer:clobber on; mirror --parallel=2 /$container $work/lftp; quit" \
  -u "$LAB_USER,$LAB_KEY" -p "$GW_PORT" 127.0.0.1 >"$work/lftp.log" 2>&1 || { cat "$work/lftp.log" >&2; die "lftp mirror"; }
(cd "$work/lftp" && find . -type f -exec sha256sum {} + | sort -k2) >"$work/lftp.sums"
diff -u "$work/src.sums" "$work/lftp.sums" || die "lftp mirror copy differs from the source"
say "lftp mirror: $(wc -l <"$work/lftp.sums") files byte-identical"

say "curl downloads"
mkdir -p "$work/curl"
(cd "$src" && find . -type f | sed 's|^\./||') | while IFS= read -r rel; do
  mkdir -p "$work/curl/$(dirname "$rel")"
  curl -fsS --ftp-method singlecwd -o "$work/curl/$rel" "$ftp_url/$container/$(urlpath "$rel")" || die "curl RETR $rel"
done
(cd "$work/curl" && find . -type f -exec sha256sum {} + | sort -k2) >"$work/curl.sums"
diff -u "$work/src.sums" "$work/curl.sums" || die "curl copy differs from the source"
say "curl: $(wc -l <"$work/curl.sums") files byte-identical"

say "curl resume (REST) of a half-downloaded file"
head -c 150000 "$src/nested/a.bin" >"$work/resumed.bin"
curl -fsS -C - -o "$work/resumed.bin" "$ftp_url/$container/nested/a.bin" || die "curl -C -"
cmp "$work/resumed.bin" "$src/nested/a.bin" || die "resumed download differs"

say "missing file: 550, no data"
set +e
curl -sS -v -o "$work/missing.out" "$ftp_url/$container/no-such-file" 2>"$work/missing.log"
rc=$?
set -e
[ "$rc" = 78 ] || { cat "$work/missing.log" >&2; die "curl RETR of a missing file: exit $rc, expected 78 (550)"; }
grep -q '^< 550' "$work/missing.log" || die "no 550 reply for the missing file"
[ ! -s "$work/missing.out" ] || die "data was written for a missing file"

say "CWD ../../.. from a container lands at /"
# curl sends -Q commands after login and, for the URL `/`, lists without changing directory itself.
out=$(curl -fsS -l -Q "CWD /$container" -Q "CWD ../../.." "$ftp_url/") || die "curl NLST after CWD ../../.."
printf '%s\n' "$out" | grep -qx "$container" || die "the listing after CWD ../../.. is not the account: $out"

say "CWD into a file: 550"
out=$(lftp -e "quote CWD /$container/top.txt; quit" -u "$LAB_USER,$LAB_KEY" -p "$GW_PORT" 127.0.0.1 2>&1 || true)
printf '%s\n' "$out" | grep -q '550' || die "CWD into a file did not get 550: $out"

say "SIGTERM: clean exit"
kill -TERM "$GW_PID"
rc=0
wait "$GW_PID" || rc=$?
GW_PID=
[ "$rc" = 0 ] || die "swiftftp exited with $rc after SIGTERM"
grep -q 'SIGTERM: shutting down' "$work/gateway.log" || die "no shutdown line in the log"

say "all end-to-end checks passed"
