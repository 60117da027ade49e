#!/usr/bin/env bash
# Benchmark of the load-balanced deployment (#20): the aggregate throughput of many small-file FTP sessions with
# one swiftftp instance reached directly, and through HAProxy with 1, 2 and 3 instances, in one run on the lab's
# Swift. HAProxy runs with the settings of examples/haproxy.cfg (TCP mode, send-proxy-v2 on the control port and
# on each instance's passive range, health checks), written out here for N instances; the instances share one
# memcached and one cache secret.
#
#   workload   BENCH_SESSIONS (16) lftp sessions at once, each mput of BENCH_FILES (25) files of 4 KiB into a
#              folder of its own (lftp sends MFMT after each), then as many sessions mget them back; files/s over
#              all sessions, wall clock from the first start to the last end. Every byte read back is compared.
#   rounds     BENCH_ROUNDS (3), the configurations in a rotated order each round; medians reported.
#
# Usage: tests/bench-haproxy.sh [path/to/swiftftp]   (default: target/release/swiftftp, built if missing)
# Not part of CI. Needs root (installs haproxy and memcached when missing) and starts the lab. Everything listens
# on 127.0.0.29-34. On a 2-core machine that also runs Swift, more instances cannot add throughput: the figures
# show what the balancer and the sharing cost, not scaling.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
# shellcheck source=tests/lab-common.sh
. "$here/lab-common.sh"
LAB_NAME=bench-haproxy
PACKAGES=(haproxy memcached lftp)
cmd_install

BIN=${1:-}
if [ -z "$BIN" ]; then
  [ -x "$repo/target/release/swiftftp" ] || (cd "$repo" && cargo build --release --locked --bin swiftftp)
  BIN=$repo/target/release/swiftftp
fi
SESSIONS=${BENCH_SESSIONS:-16}
FILES=${BENCH_FILES:-25}
ROUNDS=${BENCH_ROUNDS:-3}
PUBLIC=127.0.0.30 SOURCE=127.0.0.29 MEMCACHED=127.0.0.34:11211 PORT=2121
INSTANCES=(127.0.0.31 127.0.0.32 127.0.0.33)
CONFIGS=(direct lb1 lb2 lb3)

timeout 600 "$here/swift-lab.sh" start >/dev/null || die "tests/swift-lab.sh start"
swift_login
work=$(mktemp -d "${TMPDIR:-/tmp}/swiftftp-bench-haproxy.XXXXXX")
tag="bh-$$"
declare -A PID=()
cleanup() {
  local name
  for name in "${!PID[@]}"; do stop "$name"; done
  swift_delete_containers "$tag"
  rm -rf "$work"
}
trap cleanup EXIT

swift_put_container "$tag"
memcached -u root -l "${MEMCACHED%:*}" -p "${MEMCACHED##*:}" -U 0 -m 64 >"$work/memcached.log" 2>&1 &
PID[memcached]=$!
head -c 32 /dev/urandom | base64 >"$work/cache-secret"
chmod 600 "$work/cache-secret"

# start_instances N BALANCED: N instances (behind the balancer: PROXY protocol from it, its address in PASV).
start_instances() {
  local n=$1 balanced=$2 i addr extra
  for i in $(seq 1 "$n"); do
    addr=${INSTANCES[$((i - 1))]}
    extra=()
    if [ "$balanced" = yes ]; then
      extra=(--proxy-protocol --proxy-protocol-from "$SOURCE/32" --masquerade-firewall "$PUBLIC")
    fi
    "$BIN" --foreground --auth-url "$LAB_AUTH_URL" --bind-address "$addr" --port "$PORT" \
      --passive-ports "$((30000 + 100 * i)):$((30099 + 100 * i))" "${extra[@]}" \
      --memcache "$MEMCACHED" --cache-secret-file "$work/cache-secret" >"$work/ftp$i.log" 2>&1 &
    PID[ftp$i]=$!
  done
  for i in $(seq 1 "$n"); do
    for _ in $(seq 1 100); do grep -q 'serving FTP' "$work/ftp$i.log" && break; sleep 0.1; done
    grep -q 'serving FTP' "$work/ftp$i.log" || die "instance $i did not start"
  done
}

# start_haproxy N: the balancer in front of N instances, as examples/haproxy.cfg sets it up.
start_haproxy() {
  local n=$1 i cfg=$work/haproxy.cfg
  {
    printf 'global\n    maxconn 4000\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 1h\n'
    printf '    timeout server 1h\n    retries 3\n    option redispatch\n    source %s\n' "$SOURCE"
    printf 'frontend ftp_control\n    bind %s:%s\n    default_backend control\n' "$PUBLIC" "$PORT"
    printf 'backend control\n    balance roundrobin\n    default-server send-proxy-v2 check inter 1s fall 2 rise 2\n'
    for i in $(seq 1 "$n"); do printf '    server ftp%s %s:%s\n' "$i" "${INSTANCES[$((i - 1))]}" "$PORT"; done
    for i in $(seq 1 "$n"); do
      printf 'frontend passive%s\n    bind %s:%s-%s\n    default_backend passive%s\n' \
        "$i" "$PUBLIC" "$((30000 + 100 * i))" "$((30099 + 100 * i))" "$i"
      printf 'backend passive%s\n    server ftp%s %s send-proxy-v2\n' "$i" "$i" "${INSTANCES[$((i - 1))]}"
    done
  } >"$cfg"
  haproxy -c -q -f "$cfg" || die "haproxy -c"
  haproxy -db -f "$cfg" >"$work/haproxy.log" 2>&1 &
  PID[haproxy]=$!
  for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/$PUBLIC/$PORT") 2>/dev/null && break; sleep 0.1; done
  sleep 2.5 # the health checks bring every instance up (rise 2, inter 1s)
}

stop_all() {
  local name
  for name in haproxy ftp1 ftp2 ftp3; do stop "$name"; done
}

mkdir -p "$work/src"
for f in $(seq 1 "$FILES"); do head -c 4096 /dev/urandom >"$work/src/f$f.bin"; done

# sessions CONFIG PHASE HOST SCRIPT: SESSIONS lftp sessions at once, each running SCRIPT with {s} replaced by its
# number; waits for all of them (a failed one stops the run).
sessions() {
  local config=$1 phase=$2 host=$3 script=$4 s
  for s in $(seq 1 "$SESSIONS"); do
    timeout 600 lftp -e "set net:max-retries 2; set net:timeout 30; set cmd:fail-exit yes; set xfer:clobber on; \
      ${script//\{s\}/$s}; quit" -u "$LAB_USER,$LAB_KEY" -p "$PORT" "$host" >"$work/$phase-$s.log" 2>&1 &
    PID[$phase$s]=$!
  done
  for s in $(seq 1 "$SESSIONS"); do
    wait "${PID[$phase$s]}" || die "$config: $phase session $s: $(tail -n 2 "$work/$phase-$s.log")"
    PID[$phase$s]=
  done
}

# run CONFIG ROUND: prints "<up files/s> <down files/s>".
run() {
  local config=$1 round=$2 host s t0 t1 t2 n=$((SESSIONS * FILES))
  case $config in
    direct) start_instances 1 no; host=${INSTANCES[0]} ;;
    lb*) start_instances "${config#lb}" yes; start_haproxy "${config#lb}"; host=$PUBLIC ;;
  esac
  local remote="/$tag/$config-$round"
  t0=$(date +%s.%N)
  sessions "$config" up "$host" "mkdir -p $remote/s{s}; cd $remote/s{s}; lcd $work/src; mput *.bin"
  t1=$(date +%s.%N)
  for s in $(seq 1 "$SESSIONS"); do rm -rf "$work/down-$s" && mkdir -p "$work/down-$s"; done
  sessions "$config" down "$host" "cd $remote/s{s}; lcd $work/down-{s}; mget *.bin"
  t2=$(date +%s.%N)
  for s in $(seq 1 "$SESSIONS"); do diff -r "$work/src" "$work/down-$s" >/dev/null || die "$config: session $s read back other bytes"; done
  stop_all
  awk -v n="$n" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "%.1f %.1f\n", n / (b - a), n / (c - b) }'
}

declare -A UP=() DOWN=()
for r in $(seq 1 "$ROUNDS"); do
  for k in $(seq 0 $((${#CONFIGS[@]} - 1))); do
    config=${CONFIGS[$(((k + r - 1) % ${#CONFIGS[@]}))]}
    run "$config" "$r" >"$work/result"
    read -r up down <"$work/result"
    say "round $r, $config: $up files/s up, $down files/s down"
    UP[$config]+="$up "
    DOWN[$config]+="$down "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '\n%s sessions x %s files of 4 KiB at once; medians of %s rounds; files/s over all sessions\n' "$SESSIONS" "$FILES" "$ROUNDS"
printf '%-42s %10s %10s %10s %10s\n' "" "up" "down" "up/direct" "down/direct"
base_up=$(median <<<"${UP[direct]}")
base_down=$(median <<<"${DOWN[direct]}")
for config in "${CONFIGS[@]}"; do
  case $config in direct) label="one instance, no balancer" ;; lb1) label="HAProxy + 1 instance" ;; *) label="HAProxy + ${config#lb} instances (shared memcached)" ;; esac
  up=$(median <<<"${UP[$config]}")
  down=$(median <<<"${DOWN[$config]}")
  printf '%-42s %10s %10s %10.2f %10.2f\n' "$label" "$up" "$down" \
    "$(awk -v a="$up" -v b="$base_up" 'BEGIN { print a / b }')" "$(awk -v a="$down" -v b="$base_down" 'BEGIN { print a / b }')"
done
