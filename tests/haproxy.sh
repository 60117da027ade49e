#!/usr/bin/env bash
# HAProxy deployment test (#20): Debian's HAProxy in TCP mode in front of two swiftftp instances that share one
# memcached and one cache secret, on ONE address, with examples/haproxy.cfg as it is written. Run by tests/run.sh.
#
# Every part has its own loopback address:
#   127.0.0.10  the balancer's public address: control port 2121 (send-proxy-v2 + health check to the instances),
#               passive ranges 30000-30009 (forwarded to ftp1) and 30010-30019 (to ftp2), both with send-proxy-v2,
#               status page :8404
#   127.0.0.9   the address the balancer connects to the instances from (their --proxy-protocol-from)
#   127.0.0.11  ftp1, 127.0.0.12 ftp2 (each announces 127.0.0.10 in PASV: masquerade-firewall)
#   127.0.0.13  memcached :11211
#   127.0.0.20  the FTP clients (lftp net:socket-bind-ipv4, curl --interface): a client that is not the balancer
#   127.0.0.21  a second client (scenario G)
#
# Scenarios (each reports PASS or FAIL; the script goes on after a failure and exits 1 if any failed):
#   A  lftp mirror -R of HAPROXY_TEST_FILES (500) small random files through the balancer, mirror back, diff -r;
#      sessions on both instances; no passive data connection refused (each reached the instance that announced it).
#   B  read-your-writes across instances: a listing cached on one instance, an upload through the other, the
#      listing again on the first one (within cache-ttl) shows the file, and its download is identical.
#   C  rolling restart: one HAPROXY_TEST_UPLOAD_MB (200) MiB curl upload on each instance (the second at half the
#      rate), SIGTERM the first instance, wait for it to drain and exit, start it, then the same for the second
#      while its upload still runs; both uploads end with 226 and Swift holds their bytes (length, and the MD5 of
#      the bytes read back); short sessions through the balancer meanwhile all succeed.
#   E  SIGKILL of the instance an HAPROXY_TEST_KILL_MB (30) MiB upload runs on: the client sees a failure, nothing
#      is visible at the name, `lftp put -c` through the balancer completes the file, and no segment of the killed
#      upload is left outside the final manifest.
#   F  failed logins through the balancer lock out the client's address (each instance counts its own), not the
#      balancer's: the right password is refused afterwards, and the lockout lines name the client.
#   H  python ftplib through the balancer: STOR, NLST, RETR of a 300 kB file, SHA-256 compared.
#   G  max-cons-per-ip (8 per instance) counts the real client address: of 20 connections held open from
#      127.0.0.21, 16 are greeted and 4 get 421, while another client address is still served.
#   D  the instances log the real client address (127.0.0.20), not the balancer's.
#   Checks of the logs: no data connection refused, no ERROR line (HAProxy's health checks are no error).
#
# Usage: tests/haproxy.sh [path/to/swiftftp]   (default: target/debug/swiftftp; not built here)
# Env: HAPROXY_TEST_FILES (500), HAPROXY_TEST_UPLOAD_MB (200), HAPROXY_TEST_KILL_MB (30), HAPROXY_TEST_RATE
#      (curl --limit-rate of the first upload, 8M),
#      HAPROXY_TEST_CLIENT_ADDR (127.0.0.20; 127.0.0.9, the balancer's own source, hides the data-connection
#      check and so tests the rest), HAPROXY_TEST_KEEP=1 keeps the work directory (logs) even when all passed.
# Needs root (installs haproxy and memcached with apt-get when missing) and the lab (tests/swift-lab.sh start,
# run here, is idempotent).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=tests/lib.sh
. "$here/lib.sh"

BIN=${1:-$repo/target/debug/swiftftp}
[ -x "$BIN" ] || die "no swiftftp binary at $BIN (build it first: cargo build --locked --bin swiftftp)"
NFILES=${HAPROXY_TEST_FILES:-500}
UPLOAD_MB=${HAPROXY_TEST_UPLOAD_MB:-200}
KILL_MB=${HAPROXY_TEST_KILL_MB:-30}
RATE=${HAPROXY_TEST_RATE:-8M}
MAX_FAILURES=3
MAX_PER_IP=8
CLIENT2=127.0.0.21
CLIENT=${HAPROXY_TEST_CLIENT_ADDR:-127.0.0.20}

export FTP_PUBLIC_ADDR=127.0.0.10 FTP_BALANCER_SOURCE=127.0.0.9 FTP_PORT=2121
export FTP_INSTANCE1=127.0.0.11 FTP_INSTANCE2=127.0.0.12 FTP_STATS_ADDR=127.0.0.10:8404
MEMCACHED=127.0.0.13:11211
PASSIVE1=30000:30009
PASSIVE2=30010:30019
GRACE=120
HAPROXY_CFG=$repo/examples/haproxy.cfg

# shellcheck source=tests/lab-common.sh
. "$here/lab-common.sh"
LAB_NAME=haproxy
PACKAGES=(haproxy memcached)
cmd_install
for tool in haproxy memcached lftp curl python3 md5sum; do command -v "$tool" >/dev/null || die "$tool is missing"; done
timeout 600 "$here/swift-lab.sh" start >/dev/null || die "tests/swift-lab.sh start"

work=$(mktemp -d "${TMPDIR:-/tmp}/swiftftp-haproxy.XXXXXX")
tag="ha-$$"
FAILED=()
declare -A PID=()

cleanup() {
  local name
  for name in "${!PID[@]}"; do stop "$name"; done
  if [ -n "${SWIFT_TOKEN:-}" ]; then
    for c in A B C; do swift_delete_containers "$tag-$c"; done
  fi
  if [ "${#FAILED[@]}" -gt 0 ] || [ "${HAPROXY_TEST_KEEP:-}" = 1 ]; then
    say "logs kept in $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

pass() { say "PASS: $*"; }
fail() { say "FAIL: $*"; FAILED+=("$*"); }

# Nothing of ours may already listen there (another run, or another service on 0.0.0.0).
for addr in "$FTP_PUBLIC_ADDR:$FTP_PORT" "$FTP_INSTANCE1:$FTP_PORT" "$FTP_INSTANCE2:$FTP_PORT" "$MEMCACHED" \
  "$FTP_STATS_ADDR" "$FTP_PUBLIC_ADDR:30000" "$FTP_PUBLIC_ADDR:30019"; do
  if (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; then die "something already listens on $addr"; fi
done

swift_login
for c in A B C; do
  curl -fsS -m 30 -o /dev/null -X PUT -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$tag-$c" || die "PUT container $tag-$c"
done

# --- memcached, the cache secret, the instances, HAProxy ---------------------------------------------------------

memcached -u root -l "${MEMCACHED%:*}" -p "${MEMCACHED##*:}" -U 0 -m 64 >"$work/memcached.log" 2>&1 &
PID[memcached]=$!
echo "${PID[memcached]}" >"$work/memcached.pid"

head -c 32 /dev/urandom | base64 >"$work/cache-secret"
chmod 600 "$work/cache-secret"

for n in 1 2; do
  range_var=PASSIVE$n
  printf '[swiftftp]\npassive-ports = %s\nmasquerade-firewall = %s\n' "${!range_var}" "$FTP_PUBLIC_ADDR" >"$work/ftp$n.conf"
done

# start_instance N: starts ftpN in the foreground (log appended to $work/ftpN.log) and waits until it serves.
start_instance() {
  local n=$1 addr_var=FTP_INSTANCE$1 before
  local log="$work/ftp$n.log"
  touch "$log"
  before=$(grep -c 'serving FTP' "$log" || true)
  printf '=== %s: start\n' "$(date +%T)" >>"$log"
  "$BIN" --foreground --config "$work/ftp$n.conf" --auth-url "$LAB_AUTH_URL" \
    --bind-address "${!addr_var}" --port "$FTP_PORT" \
    --proxy-protocol --proxy-protocol-from "$FTP_BALANCER_SOURCE/32" \
    --memcache "$MEMCACHED" --cache-secret-file "$work/cache-secret" \
    --pid-file "$work/ftp$n.pid" --shutdown-grace "$GRACE" --max-login-failures "$MAX_FAILURES" \
    --max-cons-per-ip "$MAX_PER_IP" >>"$log" 2>&1 &
  PID[ftp$n]=$!
  for _ in $(seq 1 100); do
    [ "$(grep -c 'serving FTP' "$log" || true)" -gt "$before" ] && return 0
    kill -0 "${PID[ftp$n]}" 2>/dev/null || { tail -n 20 "$log" >&2; die "ftp$n exited at start"; }
    sleep 0.1
  done
  die "ftp$n did not start serving"
}

# server_status NAME: HAProxy's status (UP, DOWN, ...) of that server of swiftftp_control.
server_status() {
  curl -fsS -m 5 "http://$FTP_STATS_ADDR/stats;csv" 2>/dev/null |
    awk -F, -v s="$1" '$1=="swiftftp_control" && $2==s {print $18}'
}
# wait_status NAME STATE SECONDS
wait_status() {
  local deadline=$((SECONDS + $3))
  while [ "$SECONDS" -lt "$deadline" ]; do
    case "$(server_status "$1")" in "$2"*) return 0 ;; esac
    sleep 0.5
  done
  return 1
}

start_instance 1
start_instance 2
say "ftp1 (pid ${PID[ftp1]}) and ftp2 (pid ${PID[ftp2]}) serve; starting HAProxy with $HAPROXY_CFG"
haproxy -c -f "$HAPROXY_CFG" >"$work/haproxy-check.log" 2>&1 || { cat "$work/haproxy-check.log" >&2; die "haproxy -c"; }
haproxy -db -f "$HAPROXY_CFG" >"$work/haproxy.log" 2>&1 &
PID[haproxy]=$!
echo "${PID[haproxy]}" >"$work/haproxy.pid"
t_checks_start=$SECONDS
for s in ftp1 ftp2; do
  wait_status "$s" UP 20 || { tail -n 20 "$work/haproxy.log" >&2; die "HAProxy does not see $s UP"; }
done
say "HAProxy sees ftp1 and ftp2 UP"

# --- clients -----------------------------------------------------------------------------------------------------

ftp_url="ftp://$(urlpart "$LAB_USER"):$(urlpart "$LAB_KEY")@$FTP_PUBLIC_ADDR:$FTP_PORT"
# lftp_do LOG COMMANDS: one lftp run through the balancer from the client address, bounded in time.
lftp_do() {
  local log=$1
  shift
  timeout 300 lftp -e "set net:socket-bind-ipv4 $CLIENT; set net:timeout 20; set net:max-retries 2; \
    set net:reconnect-interval-base 1; set cmd:fail-exit yes; set xfer:clobber on; $*; quit" \
    -u "$LAB_USER,$LAB_KEY" -p "$FTP_PORT" "$FTP_PUBLIC_ADDR" >"$log" 2>&1
}
curl_ftp() { timeout 120 curl -sS -m 100 --interface "$CLIENT" "$@"; }

logins() { grep -c 'logged in' "$work/ftp$1.log" || true; }
# mark; ...one session...; landed: which instance(s) logged a session in meanwhile.
mark() { L1=$(logins 1); L2=$(logins 2); }
landed() {
  local d1=$(($(logins 1) - L1)) d2=$(($(logins 2) - L2))
  if [ "$d1" -gt 0 ] && [ "$d2" -eq 0 ]; then echo ftp1
  elif [ "$d2" -gt 0 ] && [ "$d1" -eq 0 ]; then echo ftp2
  elif [ "$d1" -gt 0 ]; then echo both
  else echo none; fi
}
refused_data() { grep -c 'does not match the IP' "$work/ftp$1.log" || true; }

# --- A: mirror -R and back ---------------------------------------------------------------------------------------

say "A: lftp mirror -R of $NFILES files through the balancer, then mirror back"
src="$work/A-src"
mkdir -p "$src/d1/d2" "$src/d3"
for i in $(seq 1 "$NFILES"); do
  case $((i % 3)) in 0) d=$src ;; 1) d=$src/d1/d2 ;; *) d=$src/d3 ;; esac
  head -c $((RANDOM * 2 % 65536)) /dev/urandom >"$d/f$i.bin"
done
mark
r1=$(refused_data 1)
r2=$(refused_data 2)
a_ok=1
lftp_do "$work/A-up.log" "mirror -R --parallel=4 --no-perms '$src' '/$tag-A/tree'" || {
  a_ok=0
  fail "A: lftp mirror -R exited non-zero: $(grep -v '^$' "$work/A-up.log" | tail -n 3 | tr '\n' '|')"
}
if [ "$a_ok" = 1 ]; then
  lftp_do "$work/A-down.log" "mirror --parallel=4 '/$tag-A/tree' '$work/A-down'" || {
    a_ok=0
    fail "A: lftp mirror exited non-zero: $(grep -v '^$' "$work/A-down.log" | tail -n 3 | tr '\n' '|')"
  }
fi
if [ "$a_ok" = 1 ]; then
  if diff -r "$src" "$work/A-down" >"$work/A-diff.log" 2>&1; then
    pass "A: $NFILES files mirrored up and back, byte-identical"
  else
    fail "A: the mirrored-back tree differs: $(head -n 3 "$work/A-diff.log" | tr '\n' '|')"
  fi
fi
a1=$(($(logins 1) - L1))
a2=$(($(logins 2) - L2))
say "A: sessions logged in: ftp1 $a1, ftp2 $a2; data connections refused: ftp1 $(($(refused_data 1) - r1)), ftp2 $(($(refused_data 2) - r2))"
if [ "$a1" -gt 0 ] && [ "$a2" -gt 0 ]; then pass "A: sessions landed on both instances"; else fail "A: sessions did not land on both instances (ftp1 $a1, ftp2 $a2)"; fi

# --- B: read-your-writes across instances ------------------------------------------------------------------------

say "B: read-your-writes across instances"
printf 'read your writes %s\n' "$tag" >"$work/B.txt"
b_list() { curl_ftp -l "$ftp_url/$tag-B/" >"$work/B-list-$1.out" 2>"$work/B-list-$1.err"; }
mark
b_list 1 || fail "B: first listing: $(tr '\n' '|' <"$work/B-list-1.err")"
list_on=$(landed)
# The upload must land on the other instance: sessions alternate (roundrobin), else a few listings move it on.
for try in 1 2 3 4; do
  mark
  curl_ftp -T "$work/B.txt" "$ftp_url/$tag-B/rw.txt" 2>"$work/B-up.err" && up_rc=0 || up_rc=$?
  up_on=$(landed)
  [ "$up_on" != "$list_on" ] && break
  say "B: upload $try landed on $up_on as the listing did; again"
done
found=0
for try in 1 2 3 4; do
  mark
  b_list "2-$try" && l_rc=0 || l_rc=$?
  again_on=$(landed)
  if [ "$again_on" = "$list_on" ]; then found=1; break; fi
done
say "B: listing 1 on $list_on, upload on $up_on (curl exit $up_rc), listing 2 on $again_on (curl exit $l_rc)"
if [ "$up_rc" != 0 ]; then
  fail "B: upload through $up_on: curl exit $up_rc: $(tr '\n' '|' <"$work/B-up.err")"
elif [ "$found" != 1 ] || [ "$up_on" = "$list_on" ]; then
  fail "B: could not get the upload and the listings on different instances"
elif [ "$l_rc" != 0 ]; then
  fail "B: second listing through $again_on: curl exit $l_rc: $(tr '\n' '|' <"$work/B-list-2-$try.err")"
elif ! grep -qx 'rw.txt' "$work/B-list-2-$try.out"; then
  fail "B: written through $up_on, not listed through $again_on (which had cached the listing): $(tr '\n' ' ' <"$work/B-list-2-$try.out")"
else
  mark
  if curl_ftp -o "$work/B.back" "$ftp_url/$tag-B/rw.txt" 2>"$work/B-get.err" && cmp -s "$work/B.txt" "$work/B.back"; then
    pass "B: written through $up_on, listed at once and read back through $list_on (download on $(landed))"
  else
    fail "B: download of rw.txt: $(tr '\n' '|' <"$work/B-get.err")"
  fi
fi

# --- C: rolling restart while uploads run ------------------------------------------------------------------------

# restart NAME: SIGTERM that instance, wait until it has drained and exited, start it again, wait until HAProxy
# has it UP. Failures are recorded.
restart() {
  local victim=$1 n=${1#ftp} t_term exited=0 vrc
  say "C: SIGTERM $victim (pid ${PID[$victim]})"
  t_term=$SECONDS
  kill -TERM "${PID[$victim]}"
  for _ in $(seq 1 $(((GRACE + 30) * 10))); do
    kill -0 "${PID[$victim]}" 2>/dev/null || { exited=1; break; }
    sleep 0.1
  done
  if [ "$exited" = 1 ]; then
    wait "${PID[$victim]}" && vrc=0 || vrc=$?
    say "C: $victim exited with status $vrc after $((SECONDS - t_term)) s"
    PID[$victim]=
  else
    fail "C: $victim still runs $((GRACE + 30)) s after SIGTERM"
    stop "$victim"
  fi
  wait_status "$victim" DOWN 10 || say "C: HAProxy did not mark $victim DOWN (status $(server_status "$victim"))"
  start_instance "$n"
  if wait_status "$victim" UP 20; then say "C: $victim restarted and UP in HAProxy"; else fail "C: $victim not UP in HAProxy after its restart"; fi
}

# One upload per instance, the second at half the rate: the first instance drains its upload and comes back
# while the second upload still runs, and then the second instance is restarted under it.
say "C: rolling restart of both instances while ${UPLOAD_MB} MiB uploads run on each (at $RATE/s and half that)"
declare -A UP_PID=() UP_ON=()
for k in 1 2; do
  head -c $((UPLOAD_MB * 1024 * 1024)) /dev/urandom >"$work/C-$k.bin"
done
rate_bytes=$(numfmt --from=iec "$RATE")
for k in 1 2; do
  mark
  # -v: the 226 shows in the trace. The bound: the upload at its rate, plus the restarts.
  timeout 900 curl -sS -v --interface "$CLIENT" --limit-rate $((rate_bytes / k)) -T "$work/C-$k.bin" "$ftp_url/$tag-C/up$k.bin" \
    >"$work/C-$k.out" 2>"$work/C-$k.err" &
  UP_PID[$k]=$!
  PID[curl$k]=${UP_PID[$k]}
  for _ in $(seq 1 50); do [ "$(landed)" != none ] && break; sleep 0.1; done
  UP_ON[$k]=$(landed)
  say "C: upload $k (curl pid ${UP_PID[$k]}) on ${UP_ON[$k]}"
done
[ "${UP_ON[1]}" != "${UP_ON[2]}" ] || fail "C: both uploads landed on ${UP_ON[1]}"
sleep 3
# Short sessions through the balancer all along the restarts: each must log in and list.
(
  ok=0 bad=0
  while [ ! -e "$work/C-probe.stop" ]; do
    if curl_ftp -m 15 -l "$ftp_url/$tag-B/" >/dev/null 2>>"$work/C-probe.err"; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
    echo "$ok $bad" >"$work/C-probe.count"
    sleep 0.3
  done
) &
PID[probe]=$!
first=${UP_ON[1]}
case $first in ftp1) second=ftp2 ;; *) first=ftp1 second=ftp2 ;; esac
restart "$first"
kill -0 "${UP_PID[2]}" 2>/dev/null || say "C: upload 2 had ended before $second was restarted"
restart "$second"
touch "$work/C-probe.stop"
wait "${PID[probe]}" 2>/dev/null || true
PID[probe]=
read -r probe_ok probe_bad <"$work/C-probe.count" || { probe_ok=0 probe_bad=0; }
if [ "$probe_bad" = 0 ] && [ "$probe_ok" -gt 0 ]; then
  pass "C: $probe_ok short sessions during the restarts, none failed"
else
  fail "C: $probe_bad of $((probe_ok + probe_bad)) short sessions during the restarts failed: $(sort "$work/C-probe.err" | uniq -c | head -n 3 | tr '\n' '|')"
fi
# swift_object_ok NAME FILE: Swift holds exactly FILE's bytes at $tag-C/NAME (read back: the ETag of a Static Large
# Object is not its MD5). Prints what it found.
swift_object_ok() {
  local want_md5 got_len got_md5
  want_md5=$(md5sum <"$2" | cut -d' ' -f1)
  got_len=$(curl -sS -m 30 -I -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$1" | tr -d '\r' |
    awk 'NR==1 && $2!="200"{print "missing(" $2 ")"; exit} tolower($1)=="content-length:"{print $2}')
  got_md5=$(timeout 300 curl -sS -m 280 -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$1" | md5sum | cut -d' ' -f1)
  echo "length ${got_len:-none} md5 $got_md5 (want $(stat -c %s "$2") $want_md5)"
  [ "$got_len" = "$(stat -c %s "$2")" ] && [ "$got_md5" = "$want_md5" ]
}
for k in 1 2; do
  wait "${UP_PID[$k]}" && rc=0 || rc=$?
  PID[curl$k]=
  last=$( (grep -E '^< [0-9]{3}' "$work/C-$k.err" || true) | tail -n 1 | tr -d '\r')
  what="C: upload $k on ${UP_ON[$k]} (SIGTERMed while it ran, restarted)"
  found=$(swift_object_ok "$tag-C/up$k.bin" "$work/C-$k.bin") && obj=0 || obj=1
  if [ "$rc" = 0 ] && [[ "$last" == "< 226"* ]] && [ "$obj" = 0 ]; then
    pass "$what: 226, Swift holds its bytes: $found"
  else
    fail "$what: curl exit $rc, last reply '${last:-none}', Swift: $found; curl: $(grep -m1 -E '^curl:' "$work/C-$k.err" || true)"
  fi
done

# --- E: an instance killed mid-upload ----------------------------------------------------------------------------

say "E: SIGKILL of the instance an upload runs on; the client continues through the balancer"
head -c $((KILL_MB * 1024 * 1024)) /dev/urandom >"$work/E.bin"
mark
timeout 300 curl -sS --interface "$CLIENT" --limit-rate "$RATE" -T "$work/E.bin" "$ftp_url/$tag-C/killed.bin" \
  >"$work/E-1.out" 2>"$work/E-1.err" &
PID[curlE]=$!
for _ in $(seq 1 50); do [ "$(landed)" != none ] && break; sleep 0.1; done
e_on=$(landed)
sleep 3
if [ "$e_on" = ftp1 ] || [ "$e_on" = ftp2 ]; then
  say "E: SIGKILL $e_on (pid ${PID[$e_on]}) 3 s into the upload"
  kill -KILL "${PID[$e_on]}"
  wait "${PID[$e_on]}" 2>/dev/null || true
  PID[$e_on]=
  wait "${PID[curlE]}" && e_rc=0 || e_rc=$?
  PID[curlE]=
  e_head=$(curl -sS -m 30 -o /dev/null -w '%{http_code}' -I -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$tag-C/killed.bin")
  if [ "$e_rc" != 0 ] && [ "$e_head" = 404 ]; then
    pass "E: the cut upload failed for the client (curl exit $e_rc) and nothing is visible at its name"
  else
    fail "E: after the kill: curl exit $e_rc, Swift answers $e_head at the name (want a failure and 404)"
  fi
  wait_status "$e_on" DOWN 10 || say "E: HAProxy did not mark $e_on DOWN"
  # The retry, while the killed instance is down: the balancer sends it to the other one.
  lftp_do "$work/E-2.log" "put -c '$work/E.bin' -o '/$tag-C/killed.bin'" && e2_rc=0 || e2_rc=$?
  found=$(swift_object_ok "$tag-C/killed.bin" "$work/E.bin") && obj=0 || obj=1
  if [ "$e2_rc" = 0 ] && [ "$obj" = 0 ]; then
    pass "E: lftp put -c through the balancer completed the file: $found"
  else
    fail "E: the retry: lftp exit $e2_rc ($(grep -v '^$' "$work/E-2.log" | tail -n 2 | tr '\n' '|')), Swift: $found"
  fi
  # No segment of the killed upload is left behind: every segment under the name is one of the final manifest's.
  manifest=$(curl -sS -m 30 -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$tag-C/killed.bin?multipart-manifest=get" || true)
  orphans=0
  for seg in $(curl -sS -m 30 -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$tag-C_segments?format=plain&prefix=killed.bin/" || true); do
    case $manifest in *"$tag-C_segments/$seg"*) ;; *) orphans=$((orphans + 1)); say "E: orphan segment $seg" ;; esac
  done
  if [ "$orphans" = 0 ]; then pass "E: no segment of the killed upload is left"; else fail "E: $orphans segments of the killed upload are left"; fi
  start_instance "${e_on#ftp}"
  wait_status "$e_on" UP 20 || fail "E: $e_on not UP after its restart"
else
  fail "E: could not tell which instance the upload landed on ($e_on)"
  stop curlE
fi

# --- H: python ftplib through the balancer ----------------------------------------------------------------------

say "H: python ftplib through the balancer: store, list, retrieve, compare SHA-256"
head -c 300000 /dev/urandom >"$work/H.bin"
h=$(timeout 120 python3 - "$CLIENT" "$FTP_PUBLIC_ADDR" "$FTP_PORT" "$LAB_USER" "$LAB_KEY" "/$tag-B/ftplib.bin" "$work/H.bin" <<'PY'
import ftplib, hashlib, io, sys
src, host, port, user, key, path, local = sys.argv[1:8]
want = open(local, "rb").read()
ftp = ftplib.FTP(source_address=(src, 0), timeout=60)
ftp.connect(host, int(port))
ftp.login(user, key)
ftp.storbinary("STOR " + path, io.BytesIO(want))
listed = ftp.nlst(path.rsplit("/", 1)[0])
got = io.BytesIO()
ftp.retrbinary("RETR " + path, got.write)
ftp.quit()
same = hashlib.sha256(got.getvalue()).hexdigest() == hashlib.sha256(want).hexdigest()
print("ok" if same and any(n.endswith("ftplib.bin") for n in listed) else "mismatch", len(got.getvalue()))
PY
) || h="error (its traceback is above)"
if [ "${h%% *}" = ok ]; then pass "H: ftplib stored, listed and read back ${h#ok } bytes, SHA-256 equal"; else fail "H: ftplib: $h"; fi

# --- F: the lockout sees the real client through the balancer ---------------------------------------------------

say "F: failed logins through the balancer lock out the client's address, not the balancer's"
f_bad=0
for i in $(seq 1 $((2 * MAX_FAILURES))); do
  curl_ftp -m 20 "ftp://$(urlpart "$LAB_USER"):wrong-$i@$FTP_PUBLIC_ADDR:$FTP_PORT/" -o /dev/null 2>/dev/null || f_bad=$((f_bad + 1))
done
mark
curl_ftp -m 20 -l "$ftp_url/$tag-B/" >/dev/null 2>"$work/F-right.err" && f_rc=0 || f_rc=$?
# The balancer's own address (its health checks, and a client on it) is not locked out.
f_locks=$(grep -h 'locked out' "$work/ftp1.log" "$work/ftp2.log" | grep -c "client=$CLIENT" || true)
f_other=$(grep -h 'locked out' "$work/ftp1.log" "$work/ftp2.log" | grep -vc "client=$CLIENT" || true)
if [ "$f_bad" = $((2 * MAX_FAILURES)) ] && [ "$f_rc" != 0 ] && [ "$f_locks" -gt 0 ] && [ "$f_other" = 0 ]; then
  pass "F: after $f_bad failed logins the right password is refused too (locked out, $f_locks lines name $CLIENT, none another address)"
else
  fail "F: failed logins $f_bad, right password afterwards: curl exit $f_rc, lockout lines naming $CLIENT: $f_locks, naming another: $f_other"
fi

# --- G: the per-address connection limit sees the real client ---------------------------------------------------

say "G: $((2 * MAX_PER_IP + 4)) connections held open from $CLIENT2 through the balancer (max-cons-per-ip $MAX_PER_IP per instance)"
g=$(timeout 60 python3 - "$CLIENT2" "$FTP_PUBLIC_ADDR" "$FTP_PORT" $((2 * MAX_PER_IP + 4)) "$CLIENT" <<'PY'
import socket, sys
src, host, port, n, other = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def greet(addr):
    s = socket.socket()
    s.settimeout(20)
    s.bind((addr, 0))
    s.connect((host, port))
    line = s.makefile("rb").readline().decode(errors="replace")
    return s, line[:3]
held, codes = [], []
for _ in range(n):
    s, code = greet(src)
    held.append(s)
    codes.append(code)
# Meanwhile another client address is served.
s, other_code = greet(other)
print(codes.count("220"), codes.count("421"), other_code)
PY
) || g="error"
read -r g_ok g_refused g_other <<<"$g" || true
if [ "${g_ok:-}" = $((2 * MAX_PER_IP)) ] && [ "${g_refused:-}" = 4 ] && [ "${g_other:-}" = 220 ]; then
  pass "G: $g_ok greeted ($MAX_PER_IP on each instance), $g_refused refused with 421, another client address still served"
else
  fail "G: greeted ${g_ok:-?}, refused ${g_refused:-?}, the other client got ${g_other:-?} (want $((2 * MAX_PER_IP)), 4, 220): $g"
fi

# --- D and the logs ----------------------------------------------------------------------------------------------

for n in 1 2; do
  seen_client=$(grep -c "$CLIENT" "$work/ftp$n.log" || true)
  seen_balancer=$(grep -c "$FTP_BALANCER_SOURCE" "$work/ftp$n.log" || true)
  say "D: ftp$n log lines naming the client $CLIENT: $seen_client, the balancer $FTP_BALANCER_SOURCE: $seen_balancer"
done
if [ "$CLIENT" != "$FTP_BALANCER_SOURCE" ]; then
  if grep -q "client=$CLIENT[^ ]* .*logged in" "$work/ftp1.log" "$work/ftp2.log"; then
    pass "D: logins are logged with the real client address $CLIENT"
  else
    fail "D: no login line names the client address $CLIENT"
  fi
fi

for n in 1 2; do
  line=$(grep -m1 'does not match the IP' "$work/ftp$n.log" || true)
  say "log ftp$n: $(refused_data "$n") data connections refused${line:+; first: $line}"
done
if grep -q 'does not match the IP' "$work/ftp1.log" "$work/ftp2.log"; then
  fail "data connections forwarded by HAProxy were refused (see the lines above)"
fi
elapsed=$((SECONDS - t_checks_start))
for n in 1 2; do
  errors=$(grep -c 'ERROR' "$work/ftp$n.log" || true)
  line=$(grep -m1 'ERROR' "$work/ftp$n.log" || true)
  say "log ftp$n: $errors ERROR lines in ~${elapsed} s of health checks every 1 s${line:+; first: $line}"
done
if grep -q 'ERROR' "$work/ftp1.log" "$work/ftp2.log"; then fail "the instances logged ERROR lines (health checks?)"; fi

if [ "${#FAILED[@]}" -gt 0 ]; then
  say "${#FAILED[@]} failure(s):"
  for f in "${FAILED[@]}"; do say "  $f"; done
  exit 1
fi
say "all passed"
