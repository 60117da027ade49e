#!/usr/bin/env bash
# Download benchmark: a 1 GiB object through swiftftp (curl over FTP) next to a direct curl GET of the same object
# from the same Swift, in the same run, alternating, and swiftftp's peak RSS (GNU time -v).
#
# Usage: tests/bench-download.sh          (BENCH_MB=1024 and BENCH_RUNS=3 by default)
# It builds the release binary (not part of CI) and needs the lab: tests/swift-lab.sh start.
# Targets: ratio >= 0.9, peak RSS < 40 MiB. Figures on these shared machines move by up to 2x between runs; the
# ratio, measured in one run, is what to compare.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=tests/lib.sh
. "$here/lib.sh"

MB=${BENCH_MB:-1024}
RUNS=${BENCH_RUNS:-3}
"$here/swift-lab.sh" start
(cd "$repo" && cargo build --release --locked --bin swiftftp)
BIN=$repo/target/release/swiftftp

work=$(mktemp -d "${TMPDIR:-/tmp}/swiftftp-bench.XXXXXX")
container="bench-$$"
gw_child=
cleanup() {
  [ -n "$gw_child" ] && kill -TERM "$gw_child" 2>/dev/null
  stop_gateway
  [ -n "${SWIFT_TOKEN:-}" ] && swift_delete_container "$container"
  rm -rf "$work"
}
trap cleanup EXIT

swift_login
head -c $((MB * 1024 * 1024)) /dev/urandom >"$work/object.bin"
curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$container" || die "PUT container"
swift_put "$container/object.bin" "$work/object.bin"
rm -f "$work/object.bin"

# GNU time runs the gateway as its child and reports the child's peak RSS when it exits.
GW_WRAP=(/usr/bin/time -v -o "$work/time.txt")
start_gateway "$BIN" "$work/gateway.log"
gw_child=$(pgrep -P "$GW_PID" | head -n 1)
ftp_url="ftp://$(printf '%s' "$LAB_USER" | sed 's/:/%3A/g'):$LAB_KEY@127.0.0.1:$GW_PORT"

direct=()
gateway=()
for run in $(seq 1 "$RUNS"); do
  d=$(curl -fsS -o /dev/null -w '%{speed_download}' -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$container/object.bin")
  g=$(curl -fsS -o /dev/null -w '%{speed_download}' "$ftp_url/$container/object.bin")
  direct+=("$d")
  gateway+=("$g")
  say "run $run: direct $(awk -v b="$d" 'BEGIN{printf "%.0f", b/1e6}') MB/s, swiftftp $(awk -v b="$g" 'BEGIN{printf "%.0f", b/1e6}') MB/s"
done

kill -TERM "$gw_child"
wait "$GW_PID" 2>/dev/null || true
GW_PID=
gw_child=
rss_kb=$(awk -F': ' '/Maximum resident set size/{print $2}' "$work/time.txt")

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
d=$(median "${direct[@]}")
g=$(median "${gateway[@]}")
printf '\n%-34s %12s\n' "1 GiB download (median of $RUNS)" "MB/s"
printf '%-34s %12.0f\n' "direct curl GET from Swift" "$(awk -v b="$d" 'BEGIN{print b/1e6}')"
printf '%-34s %12.0f\n' "curl RETR through swiftftp" "$(awk -v b="$g" 'BEGIN{print b/1e6}')"
printf '%-34s %12.2f   (target >= 0.90)\n' "ratio swiftftp / direct" "$(awk -v a="$g" -v b="$d" 'BEGIN{print a/b}')"
printf '%-34s %12.1f   (target < 40 MiB)\n' "swiftftp peak RSS (MiB)" "$(awk -v k="$rss_kb" 'BEGIN{print k/1024}')"
