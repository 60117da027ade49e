# shellcheck shell=bash
# Shared shell helpers for the end-to-end suite and the benchmarks (sourced, not run).
# Needs: $repo (the repository root), set by the script that sources this. Every process started here is stopped
# by its pid.
# shellcheck disable=SC2154  # $repo comes from the sourcing script

LAB_AUTH_URL=${SWIFTFTP_TEST_AUTH_URL:-http://127.0.0.1:8080/auth/v1.0}
LAB_USER=${SWIFTFTP_TEST_USER:-test:tester}
LAB_KEY=${SWIFTFTP_TEST_KEY:-testing}

say() { printf '%s: [%3ss] %s\n' "${0##*/}" "$SECONDS" "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

# Sets SWIFT_URL and SWIFT_TOKEN from a v1 login.
swift_login() {
  local headers
  headers=$(curl -fsS -D - -o /dev/null -H "X-Auth-User: $LAB_USER" -H "X-Auth-Key: $LAB_KEY" "$LAB_AUTH_URL" | tr -d '\r')
  SWIFT_URL=$(printf '%s\n' "$headers" | awk 'tolower($1)=="x-storage-url:"{print $2}')
  SWIFT_TOKEN=$(printf '%s\n' "$headers" | awk 'tolower($1)=="x-auth-token:"{print $2}')
  if [ -z "$SWIFT_URL" ] || [ -z "$SWIFT_TOKEN" ]; then die "cannot log in to the test Swift at $LAB_AUTH_URL"; fi
}

# Percent-encodes one URL component (user, password): every reserved character, slashes and colons included.
urlpart() { /usr/bin/python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

# Percent-encodes a path, keeping slashes.
urlpath() { /usr/bin/python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="/"))' "$1"; }

# swift_put CONTAINER/OBJECT FILE: uploads through the Swift API.
swift_put() {
  curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $SWIFT_TOKEN" -T "$2" "$SWIFT_URL/$(urlpath "$1")" ||
    die "PUT $1"
}

# swift_put_container NAME: creates the container (after a swift_login).
swift_put_container() {
  curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$(urlpath "$1")" || die "PUT container $1"
}

# swift_delete_container NAME: deletes every object (bulk delete, 10,000 per request), then the container.
swift_delete_container() {
  local listing
  listing=$(mktemp)
  while curl -fsS -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$(urlpath "$1")?format=plain" 2>/dev/null |
    /usr/bin/python3 -c 'import sys, urllib.parse
c = sys.argv[1]
for n in sys.stdin.read().splitlines():
    print(urllib.parse.quote("/%s/%s" % (c, n)))' "$1" >"$listing" && [ -s "$listing" ]; do
    curl -fsS -o /dev/null -X POST -H "X-Auth-Token: $SWIFT_TOKEN" -H 'Content-Type: text/plain' \
      --data-binary @"$listing" "$SWIFT_URL?bulk-delete" || break
  done
  rm -f "$listing"
  curl -fsS -o /dev/null -X DELETE -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$(urlpath "$1")" 2>/dev/null || true
}

# swift_delete_containers NAME: NAME and NAME_segments, as swift_delete_container does (after a swift_login).
swift_delete_containers() {
  [ -n "${SWIFT_TOKEN:-}" ] || return 0
  swift_delete_container "$1"
  swift_delete_container "${1}_segments"
}

# gateway_binary [PATH]: sets BIN to the swiftftp binary a script tests: PATH, else target/debug/swiftftp, built
# first if it is missing.
gateway_binary() {
  BIN=${1:-$repo/target/debug/swiftftp}
  [ -x "$BIN" ] || (cd "$repo" && cargo build --locked --bin swiftftp) || die "cannot build swiftftp"
}

# start_gateway BINARY LOGFILE [extra args]: starts swiftftp on a free port; sets GW_PID and GW_PORT.
# A command in the array GW_WRAP (e.g. /usr/bin/time -v) runs the gateway as its child; GW_AUTH_URL overrides the
# lab's auth URL.
GW_WRAP=()
start_gateway() {
  local bin=$1 logfile=$2
  shift 2
  "${GW_WRAP[@]}" "$bin" --foreground --port 0 --auth-url "${GW_AUTH_URL:-$LAB_AUTH_URL}" --config "$repo/tests/fixtures/empty.conf" "$@" \
    >"$logfile" 2>&1 &
  GW_PID=$!
  GW_PORT=
  for _ in $(seq 1 100); do
    GW_PORT=$(sed -n 's/.*listen=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$logfile" | head -n 1)
    [ -n "$GW_PORT" ] && break
    kill -0 "$GW_PID" 2>/dev/null || { cat "$logfile" >&2; die "swiftftp exited at start"; }
    sleep 0.1
  done
  [ -n "$GW_PORT" ] || die "swiftftp did not report its port"
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$GW_PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  die "swiftftp does not accept connections on $GW_PORT"
}

stop_gateway() {
  [ -n "${GW_PID:-}" ] || return 0
  kill -TERM "$GW_PID" 2>/dev/null || true
  wait "$GW_PID" 2>/dev/null || true
  GW_PID=
}

# stop NAME: SIGTERMs the process the script started and recorded as PID[NAME] (the script declares
# `declare -A PID=()`), SIGKILLs it after 15 s, reaps it, and forgets it.
stop() {
  local pid=${PID[$1]:-}
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  PID[$1]=
}
