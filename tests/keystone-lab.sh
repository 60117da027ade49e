#!/usr/bin/env bash
# A real Keystone v3, a Swift proxy that authenticates with it, and a test-only Keystone v2.0 endpoint, on
# 127.0.0.1, for swiftftp's Keystone tests. Storage servers and rings come from tests/swift-lab.sh.
#
#   tests/keystone-lab.sh install   install Debian's Keystone, keystonemiddleware and uwsgi (idempotent)
#   tests/keystone-lab.sh start     start the Swift lab, then what is not running here; provision; wait for health
#   tests/keystone-lab.sh stop      stop exactly the processes this script started, by pid (not the Swift lab)
#   tests/keystone-lab.sh status    print each process and whether it answers
#   tests/keystone-lab.sh env       print the variables the tests read (URLs, CA, application credential)
#
# State (configs, sqlite database, fernet keys, certificate, logs, pid files) lives in $KEYSTONE_LAB_DIR (default:
# target/keystone-lab in the repository). A second `start` on a healthy lab does nothing.
#
#   Keystone v3 (uwsgi)   http://127.0.0.1:5000/v3   tokens live $KEYSTONE_LAB_TOKEN_TTL (20) seconds; its cache is a
#                         memcached of its own on 127.0.0.1:11612
#     domain Default:     alice / alice-pw  member on demo;  bob / bob-pw  member on "space project"
#                         admin / keystone-lab-admin (bootstrap);  swift / swift-service-pw  admin on service
#     domain example.org: carol / carol-pw  member on proj2
#     application credential "swiftftp-test" of alice on demo (id and secret: `env`)
#     catalog: object-store "swift", RegionOne only: http://127.0.0.1:8081/v1/KEY_%(project_id)s
#   Swift proxy           http://127.0.0.1:8081  authtoken + keystoneauth (KEY_), then tempauth (AUTH_, the Swift
#                         lab's users); shares rings, storage servers and memcached with the Swift lab
#   v2.0 endpoint         http://127.0.0.1:5002/v2.0 and https://127.0.0.1:5003/v2.0 (self-signed, `env` gives the
#                         certificate): tenant/user/password demo/alice/alice-pw, "space tenant"/bob/bob-pw,
#                         dot.tenant/dave/dave-pw give tempauth tokens of test:tester, test2:tester2, test:tester;
#                         "tls tenant"/erin/erin-pw too, with Swift reached over TLS (https://127.0.0.1:5004);
#                         advertised expiry $KEYSTONE_LAB_V2_TTL (20) s; GET /_stats, POST /_stats/reset
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
LAB=${KEYSTONE_LAB_DIR:-$repo/target/keystone-lab}
case $LAB in /*) ;; *) LAB=$PWD/$LAB ;; esac
SWIFT_LAB=${SWIFT_LAB_DIR:-$repo/target/swift-lab}
case $SWIFT_LAB in /*) ;; *) SWIFT_LAB=$PWD/$SWIFT_LAB ;; esac
KEYSTONE_PORT=${KEYSTONE_LAB_PORT:-5000}
PROXY_PORT=${KEYSTONE_LAB_PROXY_PORT:-8081}
V2_PORT=${KEYSTONE_LAB_V2_PORT:-5002}
V2_TLS_PORT=${KEYSTONE_LAB_V2_TLS_PORT:-5003}
V2_SWIFT_TLS_PORT=${KEYSTONE_LAB_V2_SWIFT_TLS_PORT:-5004}
SWIFT_PROXY_PORT=${SWIFT_LAB_PROXY_PORT:-8080}
MEMCACHE_PORT=${SWIFT_LAB_MEMCACHE_PORT:-11611}
KEYSTONE_MEMCACHE_PORT=${KEYSTONE_LAB_MEMCACHE_PORT:-11612}
TOKEN_TTL=${KEYSTONE_LAB_TOKEN_TTL:-20}
V2_TTL=${KEYSTONE_LAB_V2_TTL:-20}
ADMIN_PASSWORD=keystone-lab-admin
SERVICE_USER=swift
SERVICE_PASSWORD=swift-service-pw
REGION=RegionOne
KEYSTONE_URL=http://127.0.0.1:$KEYSTONE_PORT
SWIFT_ENDPOINT="http://127.0.0.1:$PROXY_PORT/v1/KEY_%(project_id)s"
# Debian's keystone and swift modules import only with Debian's interpreter (python3 on PATH may be pyenv's).
PY=/usr/bin/python3
PACKAGES=(keystone python3-keystonemiddleware python3-keystoneclient python3-memcache uwsgi-core
  uwsgi-plugin-python3 openssl curl util-linux)

LAB_NAME=keystone-lab
# shellcheck source=tests/lab-common.sh
. "$here/lab-common.sh"

write_configs() {
  mkdir -p "$LAB/etc" "$LAB/db" "$LAB/fernet-keys" "$LAB/credential-keys" "$LAB/tls" "$LAB/run" "$LAB/log"
  chmod 0700 "$LAB/fernet-keys" "$LAB/credential-keys"
  # What `env` reports, and a restart when a TTL changes.
  write_if_changed "$LAB/etc/lab.env" <<EOF
TOKEN_TTL=$TOKEN_TTL
V2_TTL=$V2_TTL
EOF
  write_if_changed "$LAB/etc/keystone.conf" <<EOF
# Written by swiftftp's tests/keystone-lab.sh for a local test Keystone.
[database]
connection = sqlite:///$LAB/db/keystone.db

[token]
provider = fernet
# Tests need tokens that expire within seconds.
expiration = $TOKEN_TTL

[fernet_tokens]
key_repository = $LAB/fernet-keys/

[fernet_receipts]
key_repository = $LAB/fernet-keys/

[credential]
key_repository = $LAB/credential-keys/

[identity]
# bcrypt's minimum: the default (12) costs about 0.25 s of CPU per password login.
password_hash_rounds = 4

[cache]
# Without it every request costs 0.5-0.8 s here (token validation from sqlite). Keystone gets a memcached of its own,
# started with it and restarted with a new database: in the Swift lab's memcached, entries outlived a recreated
# database (an old user id for alice, then 401s) and oslo.cache has no key prefix to tell databases apart.
enabled = true
backend = dogpile.cache.memcached
backend_argument = url:127.0.0.1:$KEYSTONE_MEMCACHE_PORT
EOF
  write_if_changed "$LAB/etc/keystone-uwsgi.ini" <<EOF
[uwsgi]
plugins = python3
http-socket = 127.0.0.1:$KEYSTONE_PORT
wsgi-file = /usr/bin/keystone-wsgi-public
env = OS_KEYSTONE_CONFIG_FILES=$LAB/etc/keystone.conf
chdir = $LAB
master = true
# One thread per worker: with threads, sqlite connections were finalised in threads other than their own
# ("SQLite objects created in a thread can only be used in that same thread").
processes = 4
threads = 1
enable-threads = true
# The application loads once in the master and the workers are forked from it (lazy-apps would load it in each
# worker: four times the start-up CPU).
lazy-apps = false
need-app = true
die-on-term = true
no-orphans = true
buffer-size = 65535
listen = 128
# uwsgi's http-socket closes the connection after each response without saying so (on 204s too): clients that
# keep connections alive would meet resets.
add-header = Connection: close
EOF
  # The 8081 proxy is the Swift lab's 8080 proxy (same pipeline, filters and tempauth users) with Keystone's
  # authtoken + keystoneauth before tempauth: derived from that file so the two never drift apart.
  "$PY" - "$SWIFT_LAB/etc/proxy-server.conf" "$PROXY_PORT" "$KEYSTONE_URL" "$SERVICE_USER" "$SERVICE_PASSWORD" \
    "$MEMCACHE_PORT" <<'PYEOF' | write_if_changed "$LAB/etc/proxy-server.conf"
import configparser, sys
src, port, keystone, user, password, memcache = sys.argv[1:]
conf = configparser.RawConfigParser()
conf.optionxform = str
conf.read(src)
conf["DEFAULT"]["bind_port"] = port
conf["pipeline:main"]["pipeline"] = conf["pipeline:main"]["pipeline"].replace(
    " tempauth ", " authtoken keystoneauth tempauth ")
conf["filter:authtoken"] = {
    "paste.filter_factory": "keystonemiddleware.auth_token:filter_factory",
    "delay_auth_decision": "true",
    "www_authenticate_uri": keystone,
    "auth_url": keystone,
    "auth_type": "password",
    "user_domain_id": "default",
    "project_domain_id": "default",
    "project_name": "service",
    "username": user,
    "password": password,
    "memcached_servers": "127.0.0.1:" + memcache,
    "service_token_roles_required": "true",
}
conf["filter:keystoneauth"] = {
    "use": "egg:swift#keystoneauth",
    "reseller_prefix": "KEY_",
    "operator_roles": "admin, member",
}
conf.write(sys.stdout)
PYEOF
  # A self-signed server certificate for the v2.0 endpoint's TLS port. Not a CA (basicConstraints CA:FALSE):
  # rustls/webpki refuses a CA certificate as the server's own, and accepts this one as its own trust anchor.
  write_if_changed "$LAB/tls/openssl.cnf" <<EOF
[req]
prompt = no
distinguished_name = dn
x509_extensions = server

[dn]
CN = localhost

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
EOF
  if [ ! -s "$LAB/tls/cert.pem" ] || [ ! -s "$LAB/tls/key.pem" ] || [ "$LAB/tls/openssl.cnf" -nt "$LAB/tls/cert.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -config "$LAB/tls/openssl.cnf" \
      -keyout "$LAB/tls/key.pem" -out "$LAB/tls/cert.pem" 2>"$LAB/log/openssl.log"
    chmod 0600 "$LAB/tls/key.pem"
    touch "$LAB/.changed"
  fi
}

# The database, key repositories and bootstrap, once. db_sync is the slow part (6-10 s): the key setups run beside it.
init_keystone() {
  [ -f "$LAB/db/.initialised" ] && return 0
  log "initialising Keystone's database (about 10-20 s)"
  rm -f "$LAB/.provisioned"
  stop_one memcached # its entries belong to the old database
  local manage=(keystone-manage --config-file "$LAB/etc/keystone.conf") pids=() pid
  "${manage[@]}" db_sync >>"$LAB/log/keystone-manage.log" 2>&1 & pids+=($!)
  if [ ! -e "$LAB/fernet-keys/0" ]; then
    "${manage[@]}" fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" \
      >>"$LAB/log/keystone-manage.log" 2>&1 & pids+=($!)
  fi
  if [ ! -e "$LAB/credential-keys/0" ]; then
    "${manage[@]}" credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" \
      >>"$LAB/log/keystone-manage.log" 2>&1 & pids+=($!)
  fi
  for pid in "${pids[@]}"; do
    wait "$pid" || { log "keystone-manage failed; its log says:"; tail -n 30 "$LAB/log/keystone-manage.log" >&2; exit 1; }
  done
  # Several uwsgi workers write concurrently: with sqlite's default journal they meet "database is locked".
  "$PY" -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode=WAL").fetchall()' \
    "$LAB/db/keystone.db"
  "${manage[@]}" bootstrap --bootstrap-username admin --bootstrap-password "$ADMIN_PASSWORD" \
    --bootstrap-project-name admin --bootstrap-role-name admin --bootstrap-service-name keystone \
    --bootstrap-region-id "$REGION" --bootstrap-admin-url "$KEYSTONE_URL/v3/" \
    --bootstrap-public-url "$KEYSTONE_URL/v3/" --bootstrap-internal-url "$KEYSTONE_URL/v3/" \
    >>"$LAB/log/keystone-manage.log" 2>&1 ||
    { log "keystone-manage bootstrap failed; its log says:"; tail -n 30 "$LAB/log/keystone-manage.log" >&2; exit 1; }
  touch "$LAB/db/.initialised"
}

# name|health URL (tcp:PORT: the port accepts connections)|command. Keystone is started after its database exists
# (init_keystone).
services() {
  cat <<EOF
memcached|tcp:$KEYSTONE_MEMCACHE_PORT|memcached -u $(id -un) -l 127.0.0.1 -p $KEYSTONE_MEMCACHE_PORT -U 0 -m 64
v2|http://127.0.0.1:$V2_PORT/healthcheck|$PY $here/keystone/v2_endpoint.py --port $V2_PORT --tls-port $V2_TLS_PORT --cert $LAB/tls/cert.pem --key $LAB/tls/key.pem --swift-auth http://127.0.0.1:$SWIFT_PROXY_PORT/auth/v1.0 --ttl $V2_TTL --swift-tls-port $V2_SWIFT_TLS_PORT
proxy|http://127.0.0.1:$PROXY_PORT/healthcheck|swift-proxy-server $LAB/etc/proxy-server.conf -v
keystone|$KEYSTONE_URL/v3|uwsgi-core --ini $LAB/etc/keystone-uwsgi.ini
EOF
}

# True while the process lives. A zombie counts as gone: the init of this machine reaps orphans only after a
# second or two, and kill -0 still succeeds on a zombie.
alive() {
  local stat
  kill -0 "$1" 2>/dev/null && read -r stat <"/proc/$1/stat" 2>/dev/null || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

running() { local pid; pid=$(cat "$LAB/run/$1.pid" 2>/dev/null) && [ -n "$pid" ] && alive "$pid"; }

answers() {
  case $1 in
    tcp:*) (: <"/dev/tcp/127.0.0.1/${1#tcp:}") 2>/dev/null ;;
    *) curl -fsS -m 2 -o /dev/null "$@" 2>/dev/null ;;
  esac
}

tls_answers() { answers --cacert "$LAB/tls/cert.pem" "https://127.0.0.1:$V2_TLS_PORT/healthcheck"; }

stop_one() {
  local name=$1 pid
  pid=$(cat "$LAB/run/$name.pid" 2>/dev/null) || return 0
  if [ -n "$pid" ] && alive "$pid"; then
    # Each was started with setsid, so its pid is its process group: the group holds its workers.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$LAB/run/$name.pid"
}

cmd_stop() {
  [ -d "$LAB/run" ] || return 0
  local name
  for name in proxy keystone v2 memcached; do stop_one "$name"; done
  log "stopped"
}

start_service() {
  local name=$1 line command
  line=$(services | grep "^$name|")
  command=${line#*|}
  command=${command#*|}
  running "$name" && return 1
  # shellcheck disable=SC2086
  setsid $command >>"$LAB/log/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$LAB/run/$name.pid"
}

wait_healthy() {
  local name=$1 url=$2 deadline=$3
  shift 3
  until answers "$@" "$url"; do
    if ! running "$name"; then
      log "$name exited; its log says:"
      tail -n 30 "$LAB/log/$name.log" >&2
      exit 1
    fi
    [ $SECONDS -lt "$deadline" ] || { log "$name does not answer on $url"; exit 1; }
    sleep 0.2
  done
}

app_cred_works() {
  local id secret
  id=$(cat "$LAB/app-cred-id" 2>/dev/null) && secret=$(cat "$LAB/app-cred-secret" 2>/dev/null) || return 1
  curl -fsS -m 10 -o /dev/null -H 'Content-Type: application/json' "$KEYSTONE_URL/v3/auth/tokens" --data-binary \
    "{\"auth\": {\"identity\": {\"methods\": [\"application_credential\"], \"application_credential\": {\"id\": \"$id\", \"secret\": \"$secret\"}}}}" \
    2>/dev/null
}

cmd_start() {
  cmd_install
  SWIFT_LAB_DIR=$SWIFT_LAB "$here/swift-lab.sh" start
  mkdir -p "$LAB"
  # Concurrent starts take turns. The daemons must not inherit the lock (9>&- below).
  exec 9>"$LAB/.lock"
  flock 9
  rm -f "$LAB/.changed"
  write_configs
  if [ -f "$LAB/.changed" ]; then
    if running v2 || running proxy || running keystone || running memcached; then log "configuration changed: restarting what runs"; fi
    cmd_stop 2>/dev/null
  fi
  # A changed v2.0 endpoint script restarts that endpoint only.
  local v2sum
  v2sum=$(sha256sum <"$here/keystone/v2_endpoint.py")
  if [ "$(cat "$LAB/run/v2.sha256" 2>/dev/null)" != "$v2sum" ]; then
    stop_one v2
    echo "$v2sum" >"$LAB/run/v2.sha256"
  fi
  local started=0
  # The v2.0 endpoint and the proxy need no Keystone to start: they come up while the database is made.
  start_service v2 && started=1
  start_service proxy && started=1
  init_keystone
  start_service memcached && started=1
  start_service keystone && started=1
  local deadline=$((SECONDS + 120))
  wait_healthy memcached "tcp:$KEYSTONE_MEMCACHE_PORT" $deadline
  wait_healthy v2 "http://127.0.0.1:$V2_PORT/healthcheck" $deadline
  wait_healthy v2 "https://127.0.0.1:$V2_TLS_PORT/healthcheck" $deadline --cacert "$LAB/tls/cert.pem"
  wait_healthy proxy "http://127.0.0.1:$PROXY_PORT/healthcheck" $deadline
  wait_healthy keystone "$KEYSTONE_URL/v3" $deadline
  # Provision when the provisioning or its inputs changed; after a restart, or when the stored application
  # credential stopped working, check (and recreate) the credential. The smoke test proves a Keystone token of
  # alice works on the proxy (container and object PUT, GET, DELETE).
  local fingerprint check=()
  fingerprint=$(cat "$here/keystone/provision.py" "$LAB/etc/keystone.conf" "$LAB/etc/proxy-server.conf" |
    sha256sum | cut -d' ' -f1)
  [ "$(cat "$LAB/.provisioned" 2>/dev/null)" = "$fingerprint" ] && check=(--check-only)
  if [ ${#check[@]} = 0 ] || [ $started = 1 ] || ! app_cred_works; then
    rm -f "$LAB/.provisioned"
    "$PY" "$here/keystone/provision.py" --url "$KEYSTONE_URL/v3" --admin-password "$ADMIN_PASSWORD" \
      --service-user "$SERVICE_USER" --service-password "$SERVICE_PASSWORD" --swift-url "$SWIFT_ENDPOINT" \
      --region "$REGION" --state "$LAB" --smoke "${check[@]}"
    echo "$fingerprint" >"$LAB/.provisioned"
    log "up: $KEYSTONE_URL/v3, http://127.0.0.1:$PROXY_PORT, http://127.0.0.1:$V2_PORT/v2.0, https://127.0.0.1:$V2_TLS_PORT/v2.0"
  fi
}

cmd_status() {
  local line name url state
  while IFS= read -r line; do
    name=${line%%|*}
    url=${line#*|}
    url=${url%%|*}
    state=stopped
    if running "$name"; then
      state="running (pid $(cat "$LAB/run/$name.pid"))"
      answers "$url" && state="$state, healthy" || state="$state, not answering"
      if [ "$name" = v2 ]; then tls_answers && state="$state, TLS healthy" || state="$state, TLS not answering"; fi
    fi
    printf '%-10s %s\n' "$name" "$state"
  done < <(services)
}

cmd_env() {
  local token_ttl=$TOKEN_TTL v2_ttl=$V2_TTL
  if [ -f "$LAB/etc/lab.env" ]; then
    token_ttl=$(sed -n 's/^TOKEN_TTL=//p' "$LAB/etc/lab.env")
    v2_ttl=$(sed -n 's/^V2_TTL=//p' "$LAB/etc/lab.env")
  fi
  cat <<EOF
SWIFTFTP_TEST_KEYSTONE_V3_URL=$KEYSTONE_URL/v3
SWIFTFTP_TEST_KEYSTONE_V2_URL=http://127.0.0.1:$V2_PORT/v2.0
SWIFTFTP_TEST_KEYSTONE_V2_TLS_URL=https://127.0.0.1:$V2_TLS_PORT/v2.0
SWIFTFTP_TEST_KEYSTONE_V2_STATS_URL=http://127.0.0.1:$V2_PORT/_stats
SWIFTFTP_TEST_KEYSTONE_CA=$LAB/tls/cert.pem
SWIFTFTP_TEST_KEYSTONE_SWIFT_URL=http://127.0.0.1:$PROXY_PORT
SWIFTFTP_TEST_APP_CRED_ID=$(cat "$LAB/app-cred-id" 2>/dev/null || true)
SWIFTFTP_TEST_APP_CRED_SECRET=$(cat "$LAB/app-cred-secret" 2>/dev/null || true)
SWIFTFTP_TEST_KEYSTONE_TOKEN_TTL=$token_ttl
SWIFTFTP_TEST_KEYSTONE_V2_TTL=$v2_ttl
EOF
}

lab_main 26 "$@"
