#!/usr/bin/env bash
# A real, single-node, single-replica OpenStack Swift on 127.0.0.1 for swiftftp's tests and demos.
#
#   tests/swift-lab.sh install   install Debian's Swift packages and the test clients (idempotent)
#   tests/swift-lab.sh start     install if needed, write the configs, start what is not running, wait for health
#   tests/swift-lab.sh stop      stop exactly the processes this script started, by pid (and their groups)
#   tests/swift-lab.sh status    print each process and whether it answers
#   tests/swift-lab.sh env       print the variables the tests read (auth URL, accounts)
#
# State (configs, rings, data, logs, pid files) lives in $SWIFT_LAB_DIR (default: target/swift-lab in the
# repository). Only /etc/swift/swift.conf is outside it: Swift reads the hash prefix and the storage policies
# from that fixed path. A second `start` on a healthy lab does nothing.
#
# tempauth accounts (login account:user, key):
#   test:tester   testing   (.admin of AUTH_test)
#   test:reader   reading   (plain user of AUTH_test: no container access unless an ACL grants it)
#   test2:tester2 testing2  (.admin of AUTH_test2)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
LAB=${SWIFT_LAB_DIR:-$repo/target/swift-lab}
PROXY_PORT=${SWIFT_LAB_PROXY_PORT:-8080}
MEMCACHE_PORT=${SWIFT_LAB_MEMCACHE_PORT:-11611}
OBJECT_PORT=6200
CONTAINER_PORT=6201
ACCOUNT_PORT=6202
# Debian's swift modules import only with Debian's interpreter (python3 on PATH may be pyenv's).
PY=/usr/bin/python3
PACKAGES=(swift swift-proxy swift-account swift-container swift-object python3-swiftclient memcached curl attr
  lftp time eatmydata openssl)

LAB_NAME=swift-lab
# shellcheck source=tests/lab-common.sh
. "$here/lab-common.sh"

write_configs() {
  mkdir -p "$LAB/etc" "$LAB/srv/sdb1" "$LAB/cache" "$LAB/run" "$LAB/log"
  local user
  user=$(id -un)
  mkdir -p /etc/swift
  write_if_changed /etc/swift/swift.conf <<EOF
# Written by swiftftp's tests/swift-lab.sh for a local test Swift.
[swift-hash]
swift_hash_path_prefix = swiftftp-lab
swift_hash_path_suffix = swiftftp-lab

[storage-policy:0]
name = gold
default = yes

[storage-policy:1]
name = silver
EOF
  local common="[DEFAULT]
bind_ip = 127.0.0.1
devices = $LAB/srv
mount_check = false
swift_dir = $LAB/etc
user = $user
workers = 1
log_level = WARNING
"
  write_if_changed "$LAB/etc/account-server.conf" <<EOF
$common
bind_port = $ACCOUNT_PORT

[pipeline:main]
pipeline = healthcheck account-server

[app:account-server]
use = egg:swift#account

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
  write_if_changed "$LAB/etc/container-server.conf" <<EOF
$common
bind_port = $CONTAINER_PORT

[pipeline:main]
pipeline = healthcheck container-server

[app:container-server]
use = egg:swift#container

[filter:healthcheck]
use = egg:swift#healthcheck

[container-updater]
# Object counts and bytes reach the account listing through this sweep: keep it short for tests, and the
# partition power small so the sweep stays cheap (real-swift.md).
interval = 5
concurrency = 1
EOF
  write_if_changed "$LAB/etc/object-server.conf" <<EOF
$common
bind_port = $OBJECT_PORT

[pipeline:main]
pipeline = healthcheck object-server

[app:object-server]
use = egg:swift#object

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
  write_if_changed "$LAB/etc/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PROXY_PORT
swift_dir = $LAB/etc
user = $user
workers = 1
log_level = WARNING
expose_info = true

[pipeline:main]
# The upstream sample order, as real clusters run it.
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl ratelimit tempauth copy container-quotas account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:tempauth]
use = egg:swift#tempauth
reseller_prefix = AUTH
token_life = 86400
user_test_tester = testing .admin
user_test_reader = reading
user_test2_tester2 = testing2 .admin
# Only tests/ftp_write.rs's token-renewal test uses it: it makes Swift forget this user's token.
user_test_renewal = renewing .admin

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHE_PORT
# The default pool of 2 connections starves under a few hundred concurrent requests: token lookups then miss and
# tempauth answers 401 (and its auth endpoint 503). Production proxies raise it too.
memcache_max_connections = 64
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:ratelimit]
use = egg:swift#ratelimit
[filter:copy]
use = egg:swift#copy
[filter:container-quotas]
use = egg:swift#container_quotas
[filter:account-quotas]
use = egg:swift#account_quotas
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
[filter:symlink]
use = egg:swift#symlink
EOF
  if [ ! -f "$LAB/etc/object.ring.gz" ] || [ ! -f "$LAB/etc/object-1.ring.gz" ]; then
    # One Python process instead of nine swift-ring-builder calls (about 1 s each).
    "$PY" - "$LAB/etc" "$ACCOUNT_PORT" "$CONTAINER_PORT" "$OBJECT_PORT" <<'EOF'
import sys
from swift.common.ring import RingBuilder
etc, ports = sys.argv[1], dict(account=int(sys.argv[2]), container=int(sys.argv[3]), object=int(sys.argv[4]))
for name, port in (("account", ports["account"]), ("container", ports["container"]),
                   ("object", ports["object"]), ("object-1", ports["object"])):
    b = RingBuilder(3, 1, 1)
    b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
               "device": "sdb1", "weight": 100, "meta": ""})
    b.rebalance()
    b.save("%s/%s.builder" % (etc, name))
    b.get_ring().save("%s/%s.ring.gz" % (etc, name))
EOF
    touch "$LAB/.changed"
  fi
  # Swift keeps its metadata in user.* xattrs: fail early and clearly where the filesystem cannot hold them.
  local probe="$LAB/srv/sdb1/.xattr-probe"
  touch "$probe"
  if ! setfattr -n user.swiftftp -v "$(printf '%0300d' 0)" "$probe" 2>/dev/null; then
    log "the filesystem under $LAB cannot store 300-byte user.* xattrs; set SWIFT_LAB_DIR to ext4/xfs"
    exit 1
  fi
  rm -f "$probe"
}

# name:command:health-port (port 0 = no HTTP health check). The storage servers run under eatmydata: a test lab
# needs no fsync, and without it every object PUT waits for the disk (about 10x slower for small objects).
services() {
  cat <<EOF
memcached:memcached -u $(id -un) -l 127.0.0.1 -p $MEMCACHE_PORT -U 0 -m 64:0
account:eatmydata swift-account-server $LAB/etc/account-server.conf -v:$ACCOUNT_PORT
container:eatmydata swift-container-server $LAB/etc/container-server.conf -v:$CONTAINER_PORT
object:eatmydata swift-object-server $LAB/etc/object-server.conf -v:$OBJECT_PORT
updater:swift-container-updater $LAB/etc/container-server.conf -v:0
proxy:swift-proxy-server $LAB/etc/proxy-server.conf -v:$PROXY_PORT
EOF
}

running() { local pid; pid=$(cat "$LAB/run/$1.pid" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

healthy() { curl -fsS -m 2 "http://127.0.0.1:$1/healthcheck" >/dev/null 2>&1; }

stop_one() {
  local name=$1 pid
  pid=$(cat "$LAB/run/$name.pid" 2>/dev/null) || return 0
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    # Each was started with setsid, so its pid is its process group: the group holds its workers.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$LAB/run/$name.pid"
}

cmd_stop() {
  [ -d "$LAB/run" ] || return 0
  local name
  for name in proxy updater object container account memcached; do stop_one "$name"; done
  log "stopped"
}

cmd_start() {
  cmd_install
  rm -f "$LAB/.changed"
  write_configs
  if [ -f "$LAB/.changed" ]; then
    log "configuration changed: restarting what runs"
    cmd_stop 2>/dev/null
  fi
  local line name command port started=0
  while IFS= read -r line; do
    name=${line%%:*}
    port=${line##*:}
    command=${line#*:}
    command=${command%:*}
    if running "$name"; then continue; fi
    # shellcheck disable=SC2086
    setsid $command >>"$LAB/log/$name.log" 2>&1 </dev/null &
    echo $! >"$LAB/run/$name.pid"
    started=1
  done < <(services)
  local deadline=$((SECONDS + 60))
  while IFS= read -r line; do
    name=${line%%:*}
    port=${line##*:}
    [ "$port" = 0 ] && continue
    until healthy "$port"; do
      if ! running "$name"; then
        log "$name exited; its log says:"
        tail -n 30 "$LAB/log/$name.log" >&2
        exit 1
      fi
      [ $SECONDS -lt $deadline ] || { log "$name does not answer on $port"; exit 1; }
      sleep 0.2
    done
  done < <(services | grep -v '^memcached:')
  # The auth round trip proves the whole pipeline (tempauth, memcache, account server) works.
  until curl -fsS -m 5 -o /dev/null -H 'X-Auth-User: test:tester' -H 'X-Auth-Key: testing' \
    "http://127.0.0.1:$PROXY_PORT/auth/v1.0"; do
    [ $SECONDS -lt $deadline ] || { log "tempauth does not answer"; exit 1; }
    sleep 0.2
  done
  if [ $started = 1 ]; then log "up: http://127.0.0.1:$PROXY_PORT/auth/v1.0"; fi
}

cmd_status() {
  local line name port state
  while IFS= read -r line; do
    name=${line%%:*}
    port=${line##*:}
    state=stopped
    if running "$name"; then
      state="running (pid $(cat "$LAB/run/$name.pid"))"
      if [ "$port" != 0 ]; then healthy "$port" && state="$state, healthy" || state="$state, not answering"; fi
    fi
    printf '%-10s %s\n' "$name" "$state"
  done < <(services)
}

cmd_env() {
  cat <<EOF
SWIFTFTP_TEST_AUTH_URL=http://127.0.0.1:$PROXY_PORT/auth/v1.0
SWIFTFTP_TEST_USER=test:tester
SWIFTFTP_TEST_KEY=testing
EOF
}

lab_main 10 "$@"
