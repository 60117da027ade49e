#!/usr/bin/env bash
# Listing benchmark: a directory of BENCH_LIST_N objects (20,000) listed through swiftftp, cold (a fresh gateway,
# empty cache) and warm (the same listing again, from the cache), next to the same listing made directly against
# Swift with curl (every page, plain text); then 1,000 SIZE+MDTM pairs after a LIST (FileZilla's pattern,
# answered from the cached listing) next to 1,000 HEADs made directly with one keep-alive curl. Each figure is
# the median of BENCH_RUNS runs, measured in the same run as its baseline; swiftftp's peak RSS over the whole
# run comes from GNU time.
#
# Targets: warm LIST at least 10x faster than cold; cold LIST within 1.2x of the direct listing.
# Then a folder of BENCH_EMPTY_N (5,000) empty files (each a possible Dynamic Large Object manifest) listed cold
# with the default dlo-check and with dlo-check all (a HEAD per file), next to its direct listing.
# Usage: tests/bench-listing.sh   (BENCH_LIST_N=20000, BENCH_PAIRS=1000, BENCH_RUNS=5, BENCH_EMPTY_N=5000)
# The objects (1 byte each, so no DLO HEADs) are created once with one bulk extract-archive PUT and kept in the
# container bench-list-N between runs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=tests/lib.sh
. "$here/lib.sh"

N=${BENCH_LIST_N:-20000}
PAIRS=${BENCH_PAIRS:-1000}
RUNS=${BENCH_RUNS:-5}
EMPTY=${BENCH_EMPTY_N:-5000}
"$here/swift-lab.sh" start
(cd "$repo" && cargo build --release --locked --bin swiftftp)
BIN=$repo/target/release/swiftftp
work=$(mktemp -d "${TMPDIR:-/tmp}/swiftftp-bench-list.XXXXXX")
gw_child=
cleanup() {
  [ -n "$gw_child" ] && kill -TERM "$gw_child" 2>/dev/null
  stop_gateway
  rm -rf "$work"
}
trap cleanup EXIT

swift_login
# Makes (once) a container of N objects of SIZE bytes with one bulk extract-archive PUT.
ensure_container() {
  local container=$1 n=$2 size=$3 have count
  have=$(curl -sS -o /dev/null -w "%{http_code}" -I -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$container" 2>/dev/null || true)
  count=$(curl -fsS -I -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$container" 2>/dev/null |
    awk 'tolower($1)=="x-container-object-count:"{print $2+0}' || true)
  if [ "$have" != 204 ] || [ "${count:-0}" -lt "$n" ]; then
    say "creating $n objects of $size bytes in $container (one extract-archive PUT)"
    curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$container"
    /usr/bin/python3 - "$n" "$size" "$work/objects.tar" <<'PY'
import io, sys, tarfile
n, size, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with tarfile.open(path, "w") as tar:
    for i in range(n):
        info = tarfile.TarInfo("object-%06d.dat" % i)
        info.size = size
        tar.addfile(info, io.BytesIO(b"x" * size))
PY
    curl -fsS -o "$work/extract.txt" -X PUT -H "X-Auth-Token: $SWIFT_TOKEN" -H 'Accept: application/json' \
      -T "$work/objects.tar" "$SWIFT_URL/$container?extract-archive=tar" || die "extract-archive"
    grep -q '"Number Files Created": *'"$n" "$work/extract.txt" || die "extract-archive: $(cat "$work/extract.txt")"
  fi
}
container="bench-list-$N"
ensure_container "$container" "$N" 1
empty="bench-empty-$EMPTY"
ensure_container "$empty" "$EMPTY" 0

# Direct: every page of the plain-text listing of container $1 (at least $2 entries), as `swift list` does.
direct_list() {
  local container=$1 n=$2 marker="" total=0 t0 t1 page
  t0=$(date +%s.%N)
  while :; do
    page=$(curl -fsS -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$container?marker=$marker")
    [ -z "$page" ] && break
    total=$((total + $(printf '%s\n' "$page" | wc -l)))
    marker=$(printf '%s\n' "$page" | tail -n 1)
  done
  t1=$(date +%s.%N)
  [ "$total" -ge "$n" ] || die "direct listing showed $total entries"
  awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}'
}

# Seconds of one cold LIST of container $2 ($3 entries) through a fresh gateway started with the options after.
cold_list() {
  local tag=$1 container=$2 n=$3 t
  local -a GW_WRAP=()
  shift 3
  start_gateway "$BIN" "$work/gateway-$tag.log" "$@"
  # Inside $(...) set -e does not apply: the listing is checked before its time is printed, and a failure dies.
  t=$(/usr/bin/python3 - "$GW_PORT" "$LAB_USER" "$LAB_KEY" "$container" "$n" <<'PY'
import ftplib, sys, time
port, user, key, container, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", port)
ftp.login(user, key)
lines = []
t0 = time.monotonic()
ftp.retrlines("LIST /" + container, lines.append)
took = time.monotonic() - t0
assert len(lines) >= n, "LIST /%s: %d lines, expected %d" % (container, len(lines), n)
ftp.quit()
print(took)
PY
) || { stop_gateway; die "cold LIST of $container ($tag) failed"; }
  stop_gateway
  echo "$t"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
GW_WRAP=(/usr/bin/time -v -o "$work/time.txt")

direct=() cold=() warm=() pairs=() heads=() edirect=() ecold=() eall=()
for run in $(seq 1 "$RUNS"); do
  # A folder of empty files (possible DLO manifests): default dlo-check, and every one HEADed.
  edirect+=("$(direct_list "$empty" "$EMPTY")")
  ecold+=("$(cold_list "empty-$run" "$empty" "$EMPTY")")
  eall+=("$(cold_list "empty-all-$run" "$empty" "$EMPTY" --dlo-check all)")
  direct+=("$(direct_list "$container" "$N")")
  # A fresh gateway per run: its cache is empty. One ftplib session: the cold LIST, then the same LIST warm.
  # (Not curl: curl 7.88 sometimes waits a second before connecting the data stream of a repeated transfer.)
  start_gateway "$BIN" "$work/gateway-$run.log" --cache-ttl 60
  [ -z "$gw_child" ] && gw_child=$(pgrep -P "$GW_PID" | head -n 1)
  times=$(/usr/bin/python3 - "$GW_PORT" "$LAB_USER" "$LAB_KEY" "$container" "$N" <<'PY'
import ftplib, sys, time
port, user, key, container, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", port)
ftp.login(user, key)
for _ in range(2):
    lines = []
    t0 = time.monotonic()
    ftp.retrlines("LIST /" + container, lines.append)
    print(time.monotonic() - t0)
    assert len(lines) >= n, len(lines)
ftp.quit()
PY
)
  cold+=("$(printf '%s\n' "$times" | sed -n 1p)")
  warm+=("$(printf '%s\n' "$times" | sed -n 2p)")
  # FileZilla's pattern: LIST, then SIZE and MDTM of PAIRS files, in one session.
  pairs+=("$(/usr/bin/python3 - "$GW_PORT" "$LAB_USER" "$LAB_KEY" "$container" "$PAIRS" <<'PY'
import ftplib, sys, time
port, user, key, container, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", port)
ftp.login(user, key)
ftp.voidcmd("TYPE I")
ftp.cwd("/" + container)
lines = []
ftp.retrlines("LIST", lines.append)
t0 = time.monotonic()
for i in range(n):
    name = "object-%06d.dat" % i
    assert ftp.sendcmd("SIZE " + name).startswith("213")
    assert ftp.sendcmd("MDTM " + name).startswith("213")
print(time.monotonic() - t0)
ftp.quit()
PY
)")
  # Direct: the same number of HEADs, one keep-alive curl.
  for i in $(seq 0 $((PAIRS - 1))); do
    printf 'url = "%s/%s/object-%06d.dat"\noutput = "/dev/null"\n' "$SWIFT_URL" "$container" "$i"
  done >"$work/heads.cfg"
  t0=$(date +%s.%N)
  curl -fsS -I -H "X-Auth-Token: $SWIFT_TOKEN" -K "$work/heads.cfg" || die "direct HEADs"
  t1=$(date +%s.%N)
  heads+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")
  say "run $run: $EMPTY empty files: direct ${edirect[-1]}s, LIST cold ${ecold[-1]}s, with dlo-check all ${eall[-1]}s"
  say "run $run: direct listing ${direct[-1]}s, LIST cold ${cold[-1]}s, warm ${warm[-1]}s; $PAIRS SIZE+MDTM ${pairs[-1]}s, $PAIRS direct HEADs ${heads[-1]}s"
  kill -TERM "$gw_child"
  wait "$GW_PID" 2>/dev/null || true
  GW_PID=
  gw_child=
  rss_kb=$(awk -F': ' '/Maximum resident set size/{print $2}' "$work/time.txt")
  rss+=("$rss_kb")
done

ms() { awk -v s="$1" 'BEGIN{printf "%.0f", s*1000}'; }
d=$(median "${direct[@]}") c=$(median "${cold[@]}") w=$(median "${warm[@]}") p=$(median "${pairs[@]}") h=$(median "${heads[@]}")
printf '\n%-46s %10s %10s %8s\n' "median of $RUNS runs (ms)" "baseline" "swiftftp" "ratio"
printf '%-46s %10s %10s %8.2f   (target <= 1.2)\n' "LIST $N entries, cold vs direct listing" "$(ms "$d")" "$(ms "$c")" "$(awk -v a="$c" -v b="$d" 'BEGIN{print a/b}')"
printf '%-46s %10s %10s %8.1f   (target >= 10: cold / warm)\n' "LIST $N entries, warm vs cold" "$(ms "$c")" "$(ms "$w")" "$(awk -v a="$c" -v b="$w" 'BEGIN{print a/b}')"
ed=$(median "${edirect[@]}") ec=$(median "${ecold[@]}") ea=$(median "${eall[@]}")
printf '%-46s %10s %10s %8.2f   (close to 1: no HEAD per empty file)\n' "LIST $EMPTY empty files, cold vs direct" "$(ms "$ed")" "$(ms "$ec")" "$(awk -v a="$ec" -v b="$ed" 'BEGIN{print a/b}')"
printf '%-46s %10s %10s %8.2f\n' "  the same with dlo-check all (a HEAD each)" "$(ms "$ed")" "$(ms "$ea")" "$(awk -v a="$ea" -v b="$ed" 'BEGIN{print a/b}')"
printf '%-46s %10s %10s %8.2f\n' "$PAIRS SIZE+MDTM after LIST vs $PAIRS direct HEADs" "$(ms "$h")" "$(ms "$p")" "$(awk -v a="$p" -v b="$h" 'BEGIN{print a/b}')"
printf '%-46s %10s %10.1f\n' "swiftftp peak RSS (MiB), max over runs" "" "$(printf '%s\n' "${rss[@]}" | sort -n | tail -n 1 | awk '{print $1/1024}')"
