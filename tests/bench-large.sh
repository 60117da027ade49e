#!/usr/bin/env bash
# Large-file benchmark: files of BENCH_LARGE_MB sizes (1 GiB and 6 GiB) uploaded and downloaded with curl through
# swiftftp, next to the direct client in the same run: curl (one PUT, one GET) where a single object can hold the
# file, `swift upload --use-slo` (python-swiftclient, same segment size) where it needs segments. Each size runs
# with a small segment size (BENCH_SEGMENT, 64M) and with the default (the cluster's max_file_size, 5 GiB), as
# ratios, with swiftftp's peak RSS for each. Every case is checked: the file also goes up with lftp and comes
# back through swiftftp with the source's MD5, `XMD5` answers it for the curl upload, and after the deletes no
# segment is left in <container>_segments.
#
# Targets: ratio >= 0.9 for plain uploads and downloads, >= 0.8 for segmented uploads; peak RSS < 64 MiB.
# Usage: tests/bench-large.sh   (BENCH_LARGE_MB="1024 6144", BENCH_SEGMENT=64M; needs ~2x the largest size
# free in $TMPDIR and in the Swift lab's disk). Release build, not part of CI.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=tests/lib.sh
. "$here/lib.sh"

SIZES=${BENCH_LARGE_MB:-1024 6144}
SEGMENT=${BENCH_SEGMENT:-64M}
"$here/swift-lab.sh" start
(cd "$repo" && cargo build --release --locked --bin swiftftp)
BIN=$repo/target/release/swiftftp
work=$(mktemp -d "${TMPDIR:-/tmp}/swiftftp-bench-large.XXXXXX")
container="bench-large-$$"
cleanup() {
  stop_gateway
  swift_delete_containers "$container"
  rm -rf "$work"
}
trap cleanup EXIT

swift_login
swift_put_container "$container"
max_file_size=$(curl -fsS "${SWIFT_URL%%/v1/*}/info" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["swift"]["max_file_size"])')
to_bytes() { case $1 in *M) echo $((${1%M} * 1024 * 1024)) ;; *G) echo $((${1%G} * 1024 * 1024 * 1024)) ;; *) echo "$1" ;; esac; }
seg_bytes=$(to_bytes "$SEGMENT")

secs() { awk -v a="$1" -v b="$2" 'BEGIN{print b-a}'; }
now() { date +%s.%N; }
mbs() { awk -v bytes="$1" -v s="$2" 'BEGIN{printf "%.0f", bytes/s/1e6}'; }
lftp_gw() { lftp -e "set cmd:fail-exit yes; set net:max-retries 1; set xfer:clobber on; $1; bye" -u "$LAB_USER,$LAB_KEY" -p "$GW_PORT" 127.0.0.1; }
# GNU time is the gateway's parent: stop the gateway itself, so that time writes its report and exits.
stop_timed_gateway() {
  local child
  child=$(pgrep -P "$GW_PID" | head -n 1)
  [ -n "$child" ] && kill -TERM "$child"
  wait "$GW_PID" 2>/dev/null || true
  GW_PID=
}
segments_left() {
  curl -fsS -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/${container}_segments?format=plain" 2>/dev/null | wc -l
}

rows=()
for mb in $SIZES; do
  bytes=$((mb * 1024 * 1024))
  say "making a $mb MiB file"
  head -c "$bytes" /dev/urandom >"$work/src.bin"
  sum=$(md5sum "$work/src.bin" | cut -d' ' -f1)
  for seg in "$SEGMENT" default; do
    if [ "$seg" = default ]; then seg_size=$max_file_size; args=(); else seg_size=$seg_bytes; args=(--segment-size "$seg"); fi
    name="f-$mb-$seg.bin"
    # Direct: one PUT when a single object can hold the file, else python-swiftclient's SLO upload.
    t0=$(now)
    if [ "$bytes" -le "$seg_size" ] && [ "$bytes" -le "$max_file_size" ]; then
      kind=plain
      curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $SWIFT_TOKEN" -T "$work/src.bin" "$SWIFT_URL/$container/direct.bin" ||
        die "direct PUT"
    else
      kind=segmented
      swift -A "$LAB_AUTH_URL" -U "$LAB_USER" -K "$LAB_KEY" upload --use-slo -S "$seg_size" \
        --object-name direct.bin "$container" "$work/src.bin" >/dev/null || die "swift upload --use-slo"
    fi
    up_direct=$(secs "$t0" "$(now)")
    t0=$(now)
    curl -fsS -o /dev/null -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$container/direct.bin" || die "direct GET"
    down_direct=$(secs "$t0" "$(now)")
    swift -A "$LAB_AUTH_URL" -U "$LAB_USER" -K "$LAB_KEY" delete "$container" direct.bin >/dev/null || die "swift delete"

    # Through swiftftp: curl for the timed transfers (the same client as the direct figures); then lftp up and
    # back (the round trip checked by MD5 of every byte) and XMD5 of the curl upload. GNU time reports the
    # gateway's peak RSS when it exits.
    GW_WRAP=(/usr/bin/time -v -o "$work/time.txt")
    start_gateway "$BIN" "$work/gateway-$name.log" "${args[@]}"
    ftp_url="ftp://$(urlpart "$LAB_USER"):$(urlpart "$LAB_KEY")@127.0.0.1:$GW_PORT"
    t0=$(now)
    curl -fsS -T "$work/src.bin" "$ftp_url/$container/$name" || die "curl STOR $name"
    up_gw=$(secs "$t0" "$(now)")
    t0=$(now)
    curl -fsS -o /dev/null "$ftp_url/$container/$name" || die "curl RETR $name"
    down_gw=$(secs "$t0" "$(now)")
    t0=$(now)
    lftp_gw "put $work/src.bin -o /$container/lftp-$name" || die "lftp put $name"
    up_lftp=$(secs "$t0" "$(now)")
    got=$(lftp_gw "cat /$container/lftp-$name" | md5sum | cut -d' ' -f1)
    [ "$got" = "$sum" ] || die "lftp-$name came back with MD5 $got, not $sum"
    answer=$(lftp_gw "quote XMD5 /$container/$name" 2>&1)
    case $answer in *"$sum"*) ;; *) die "XMD5 of $name: $answer" ;; esac
    lftp_gw "rm /$container/$name /$container/lftp-$name" >/dev/null || die "lftp rm $name"
    stop_timed_gateway
    GW_WRAP=()
    rss=$(awk -F': ' '/Maximum resident set size/{printf "%.1f", $2/1024}' "$work/time.txt")
    left=$(segments_left)
    [ "$left" -eq 0 ] || die "$left segments left after deleting $name"
    say "$mb MiB, segments $seg ($kind): up direct $(mbs "$bytes" "$up_direct") MB/s, swiftftp $(mbs "$bytes" "$up_gw") MB/s (lftp $(mbs "$bytes" "$up_lftp")); down direct $(mbs "$bytes" "$down_direct"), swiftftp $(mbs "$bytes" "$down_gw"); RSS $rss MiB; MD5 checked"
    rows+=("$(printf '%-34s %8s %8s %6.2f' "up   $mb MiB, seg $seg ($kind)" "$(mbs "$bytes" "$up_direct")" "$(mbs "$bytes" "$up_gw")" "$(awk -v a="$up_direct" -v b="$up_gw" 'BEGIN{print a/b}')")")
    rows+=("$(printf '%-34s %8s %8s %6.2f   RSS %s MiB' "down $mb MiB, seg $seg" "$(mbs "$bytes" "$down_direct")" "$(mbs "$bytes" "$down_gw")" "$(awk -v a="$down_direct" -v b="$down_gw" 'BEGIN{print a/b}')" "$rss")")
  done
  rm -f "$work/src.bin"
done

printf '\n%-34s %8s %8s %6s\n' "MB/s (one run each)" "direct" "swiftftp" "ratio"
printf '%s\n' "${rows[@]}"
printf 'targets: plain >= 0.9 up and down, segmented up >= 0.8; peak RSS < 64 MiB. No segment left: checked.\n'
