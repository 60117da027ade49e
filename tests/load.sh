#!/usr/bin/env bash
# Load test: LOAD_SESSIONS (200) concurrent FTP sessions held for LOAD_SECONDS (120) against the swiftftp binary
# (python ftplib, one thread per session). Each logs in once, then loops NLST, RETR of a small file (bytes
# compared), every fifth loop STOR + SIZE + DELE of its own file, with LOAD_THINK (5) seconds of think time (200
# sessions then make about 120 Swift requests a second, what the single-node test Swift on 2 cores serves), and
# quits at the end; a session that fails reconnects. In three rounds of a third of the time each: after each,
# swiftftp's open file descriptors must come back to their idle level (from /proc), and its RSS must not keep
# growing (glibc keeps the memory a peak needed, so one higher peak raises it once; a leak raises it every round).
#
# What fails the test: a protocol error (a permanent 5xx, a broken or hung connection, wrong bytes), no completed
# loop at all, or temporary 4xx refusals for more than 5% of the loops. A few 4xx are counted, not failed: on a
# 2-core machine this many sessions overload the single-node Swift itself (its container server answers 503), and
# swiftftp's part is then to answer 451 and carry on.
#
# Usage: tests/load.sh [path/to/swiftftp]   (LOAD_SESSIONS, LOAD_SECONDS, LOAD_THINK)
# The gateway's log is kept in $TMPDIR/swiftftp-load-gateway.log.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
gateway_binary "${1:-}"
SESSIONS=${LOAD_SESSIONS:-200}
SECONDS_=${LOAD_SECONDS:-120}
THINK=${LOAD_THINK:-5}
"$here/swift-lab.sh" start >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/swiftftp-load.XXXXXX")
container="load-$$"
cleanup() {
  stop_gateway
  [ -f "$work/gateway.log" ] && cp "$work/gateway.log" "${TMPDIR:-/tmp}/swiftftp-load-gateway.log"
  [ -n "${SWIFT_TOKEN:-}" ] && swift_delete_container "$container"
  rm -rf "$work"
}
trap cleanup EXIT
swift_login
swift_put_container "$container"
head -c 4096 /dev/urandom >"$work/small.bin"
swift_put "$container/small.bin" "$work/small.bin"

# Every session comes from 127.0.0.1 here: the per-address cap (64 by default) would turn most of them away.
start_gateway "$BIN" "$work/gateway.log" --max-connections 1000 --max-cons-per-ip 0
fds() { find "/proc/$GW_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$GW_PID/status"; }
# One session first, so that idle means "has served", not "just started".
curl -fsS -o /dev/null "ftp://$(urlpart "$LAB_USER"):$(urlpart "$LAB_KEY")@127.0.0.1:$GW_PORT/$container/small.bin"
sleep 1
idle_fds=$(fds)
idle_rss=$(rss_kb)
say "idle: $idle_fds fds, $((idle_rss / 1024)) MiB RSS; $SESSIONS sessions for ${SECONDS_}s"

load_round() {
  /usr/bin/python3 - "$GW_PORT" "$LAB_USER" "$LAB_KEY" "$container" "$work/small.bin" "$SESSIONS" "$SECONDS_" \
  "$GW_PID" "$THINK" <<'PY' || { grep -E 'WARN|ERROR' "$work/gateway.log" | tail -n 20 >&2 || true; die "load: failures (above)"; }
import ftplib, io, sys, threading, time
port, user, key, container, small, n, secs, pid, think = sys.argv[1:10]
think = float(think)
port, n, secs = int(port), int(n), float(secs)
want = open(small, "rb").read()
stop = time.monotonic() + secs
lock = threading.Lock()
ops = [0]
errors = []
temporary = []
peak = {"fds": 0, "rss": 0}

def connect():
    ftp = ftplib.FTP(timeout=60)
    ftp.connect("127.0.0.1", port)
    ftp.login(user, key)
    ftp.voidcmd("TYPE I")
    ftp.cwd("/" + container)
    return ftp

def session(i):
    loop = 0
    ftp = None
    time.sleep(think * i / n)  # spread the sessions over the think time
    while time.monotonic() < stop:
        loop += 1
        try:
            if ftp is None:
                ftp = connect()
            ftp.nlst()
            got = io.BytesIO()
            ftp.retrbinary("RETR small.bin", got.write)
            assert got.getvalue() == want, "RETR bytes differ"
            if loop % 5 == 0:
                name = "s%03d-%d.bin" % (i, loop)
                ftp.storbinary("STOR " + name, io.BytesIO(want))
                assert ftp.size(name) == len(want), "SIZE"
                ftp.delete(name)
            with lock:
                ops[0] += 1
        except ftplib.error_temp as e:
            with lock:
                temporary.append("session %d loop %d: %r" % (i, loop, e))
        except Exception as e:  # every other failure fails the test
            with lock:
                errors.append("session %d loop %d: %r" % (i, loop, e))
            try:
                ftp.close()
            except Exception:
                pass
            ftp = None
        time.sleep(think)
    if ftp is not None:
        try:
            ftp.quit()
        except Exception as e:
            with lock:
                errors.append("session %d quit: %r" % (i, e))

def watch():
    while time.monotonic() < stop:
        try:
            import os
            fds = len(os.listdir("/proc/%s/fd" % pid))
            rss = int([l for l in open("/proc/%s/status" % pid) if l.startswith("VmRSS:")][0].split()[1])
            peak["fds"] = max(peak["fds"], fds)
            peak["rss"] = max(peak["rss"], rss)
        except Exception:
            pass
        time.sleep(1)

threads = [threading.Thread(target=session, args=(i,)) for i in range(n)]
w = threading.Thread(target=watch)
w.start()
for t in threads:
    t.start()
for t in threads:
    t.join()
w.join()
print("load: %d operation loops, %d errors, %d temporary (4xx) refusals, peak %d fds, peak %d MiB RSS"
      % (ops[0], len(errors), len(temporary), peak["fds"], peak["rss"] // 1024))
import collections
kinds = collections.Counter(e.split(": ", 1)[1] for e in errors)
for kind, count in kinds.most_common(10):
    print("%6d x %s" % (count, kind))
for e in temporary[:5]:
    print("temporary:", e)
# Refusals are the single-node Swift's overload, not failures, but a gateway refusing everything must not pass:
# no loop at all, or more than 5% of them refused, fails.
if ops[0] == 0:
    print("load: not one operation loop completed")
    sys.exit(1)
if len(temporary) * 20 > ops[0]:
    print("load: %d temporary refusals for %d loops (more than 5%%)" % (len(temporary), ops[0]))
    sys.exit(1)
sys.exit(1 if errors else 0)
PY
}

# settle: waits until the descriptors are back to the idle level; sets settled_fds and settled_rss.
settle() {
  # Sessions end at once; pooled connections to Swift close after their 20 s idle timeout.
  for _ in $(seq 1 60); do
    settled_fds=$(fds)
    settled_rss=$(rss_kb)
    [ "$settled_fds" -le $((idle_fds + 4)) ] && break
    sleep 1
  done
  [ "$settled_fds" -le $((idle_fds + 4)) ] || die "file descriptors did not come back: $settled_fds (idle $idle_fds)"
}

# Three rounds of a third of the time: descriptors must come back after each, and memory must not keep growing.
# glibc keeps the high-water mark of its heap, so a round with a higher peak than the ones before (more Swift
# connections at once, by chance) raises the settled RSS once; a leak raises it every round. So: growth in both
# steps, or a large growth overall, fails.
third=$((SECONDS_ / 3))
rounds_rss=()
for round in 1 2 3; do
  SECONDS_=$third load_round
  settle
  rounds_rss+=("$settled_rss")
  say "after round $round: $settled_fds fds (idle $idle_fds), $((settled_rss / 1024)) MiB RSS (idle before any load $((idle_rss / 1024)))"
done
r1=${rounds_rss[0]} r2=${rounds_rss[1]} r3=${rounds_rss[2]}
if [ "$r2" -gt $((r1 + 8 * 1024)) ] && [ "$r3" -gt $((r2 + 8 * 1024)) ]; then
  die "RSS grew round after round: ${r1} kB, ${r2} kB, ${r3} kB"
fi
[ "$r3" -le $((r1 + 24 * 1024)) ] || die "RSS grew from round 1 to round 3: ${r1} kB, then ${r3} kB"
[ "$r3" -le $((idle_rss * 2 + 32 * 1024)) ] || die "RSS stayed far above idle: ${r3} kB (idle ${idle_rss} kB)"
say "load test passed"
