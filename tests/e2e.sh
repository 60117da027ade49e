#!/usr/bin/env bash
# End-to-end suite: real FTP clients (lftp, curl) against the swiftftp binary in front of the real test Swift.
#
# Reading: objects written with the Swift API (curl) are downloaded through the gateway with `lftp mirror` and
# with curl, and every byte is compared by SHA-256: a 1 GiB object (E2E_BIG_MB), a nested tree, names with
# spaces and non-ASCII characters, an empty file. Also: RETR of a missing file fails with 550 before any data,
# REST resumes (curl -C), `CWD ../../..` from a container lands at `/`.
# Writing: `lftp mirror -R` of a tree (nested directories, 1,000 small files, a 2 GiB file (E2E_WRITE_MB), names
# with spaces and non-ASCII characters, an empty directory) into a new container, checked through the Swift API
# (objects and directory markers), then `mirror` back into a new folder: identical bytes and directories. Then
# lftp renames (a file, an empty and a non-empty directory), deletes and the refusals (non-empty RMD, a file at
# the top level).
# Keystone (needs tests/keystone-lab.sh start): lftp and curl log in through v3 (PROJECT/USER, domains, an
# application credential) and v2.0 (TENANT.USER, a tenant with a space, a `\` separator), upload, list, download.
# Large files: a gateway with 4 MiB segments takes a 20 MiB file from lftp and from curl; both come back
# identical, are Static Large Objects of 6 segments, XMD5/MD5 answer the true MD5, DELE leaves no segment and
# RMD of the container no segments container.
# Beyond ftp-cloudfs: lftp mirror -R keeps file times (MFMT), lftp mv moves a folder, curl continues an upload it
# cut itself (--max-time, then -C -), SITE PUBLIC/PRIVATE change what an anonymous HTTP read gets.
# Metrics: curl reads /metrics before and after two curl downloads (logins and bytes counters move, the FTP
# series are there) and /health. Last, SIGTERM exits cleanly.
#
# Usage: tests/e2e.sh [path/to/swiftftp]   (default: target/debug/swiftftp, built if missing)
# Needs the lab: tests/swift-lab.sh start (tests/run.sh does both).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=tests/lib.sh
. "$here/lib.sh"

gateway_binary "${1:-}"
BIG_MB=${E2E_BIG_MB:-1024}
WRITE_MB=${E2E_WRITE_MB:-2048}

work=$(mktemp -d "${TMPDIR:-/tmp}/swiftftp-e2e.XXXXXX")
container="e2e-$$-tree"
wcontainer="e2e-$$-mirror ☺"
cleanup() {
  stop_gateway
  if [ -n "${SWIFT_TOKEN:-}" ]; then
    swift_delete_container "$container"
    swift_delete_container "$wcontainer"
    swift_delete_container "${wcontainer}_segments"
    swift_delete_container "e2e-$$-large"
    swift_delete_container "e2e-$$-large_segments"
    swift_delete_container "e2e-$$-beyond"
    swift_delete_container "e2e-$$-beyond_segments"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

swift_login
say "writing the source tree through the Swift API"
src="$work/src"
mkdir -p "$src/nested/deeper/deepest" "$src/with space" "$src/ünïcödé ☺"
head -c $((BIG_MB * 1024 * 1024)) /dev/urandom >"$src/big.bin"
printf 'top level\n' >"$src/top.txt"
: >"$src/empty.txt"
head -c 300000 /dev/urandom >"$src/nested/a.bin"
head -c 70000 /dev/urandom >"$src/nested/deeper/b.bin"
printf 'deep\n' >"$src/nested/deeper/deepest/c.txt"
printf 'spaces\n' >"$src/with space/file with space.txt"
printf 'unicode\n' >"$src/ünïcödé ☺/fïlé ☺ ✓.txt"
swift_put_container "$container"
(cd "$src" && find . -type f | sed 's|^\./||') | while IFS= read -r rel; do
  swift_put "$container/$rel" "$src/$rel"
done
(cd "$src" && find . -type f -exec sha256sum {} + | sort -k2) >"$work/src.sums"

# A free port for the metrics listener (Python's bind to port 0 picks it).
metrics_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_gateway "$BIN" "$work/gateway.log" --metrics-address "127.0.0.1:$metrics_port"
say "gateway on port $GW_PORT"
ftp_url="ftp://$(urlpart "$LAB_USER"):$(urlpart "$LAB_KEY")@127.0.0.1:$GW_PORT"

say "lftp mirror"
lftp -e "set net:max-retries 1; set net:timeout 30; set xfer:clobber on; mirror --parallel=2 /$container $work/lftp; quit" \
  -u "$LAB_USER,$LAB_KEY" -p "$GW_PORT" 127.0.0.1 >"$work/lftp.log" 2>&1 || { cat "$work/lftp.log" >&2; die "lftp mirror"; }
(cd "$work/lftp" && find . -type f -exec sha256sum {} + | sort -k2) >"$work/lftp.sums"
diff -u "$work/src.sums" "$work/lftp.sums" || die "lftp mirror copy differs from the source"
say "lftp mirror: $(wc -l <"$work/lftp.sums") files byte-identical"

say "curl downloads"
mkdir -p "$work/curl"
(cd "$src" && find . -type f | sed 's|^\./||') | while IFS= read -r rel; do
  mkdir -p "$work/curl/$(dirname "$rel")"
  curl -fsS --ftp-method singlecwd -o "$work/curl/$rel" "$ftp_url/$container/$(urlpath "$rel")" || die "curl RETR $rel"
done
(cd "$work/curl" && find . -type f -exec sha256sum {} + | sort -k2) >"$work/curl.sums"
diff -u "$work/src.sums" "$work/curl.sums" || die "curl copy differs from the source"
say "curl: $(wc -l <"$work/curl.sums") files byte-identical"

say "curl resume (REST) of a half-downloaded file"
head -c 150000 "$src/nested/a.bin" >"$work/resumed.bin"
curl -fsS -C - -o "$work/resumed.bin" "$ftp_url/$container/nested/a.bin" || die "curl -C -"
cmp "$work/resumed.bin" "$src/nested/a.bin" || die "resumed download differs"

say "missing file: 550, no data"
set +e
curl -sS -v -o "$work/missing.out" "$ftp_url/$container/no-such-file" 2>"$work/missing.log"
rc=$?
set -e
[ "$rc" = 78 ] || { cat "$work/missing.log" >&2; die "curl RETR of a missing file: exit $rc, expected 78 (550)"; }
grep -q '^< 550' "$work/missing.log" || die "no 550 reply for the missing file"
[ ! -s "$work/missing.out" ] || die "data was written for a missing file"

say "CWD ../../.. from a container lands at /"
# curl sends -Q commands after login and, for the URL `/`, lists without changing directory itself.
out=$(curl -fsS -l -Q "CWD /$container" -Q "CWD ../../.." "$ftp_url/") || die "curl NLST after CWD ../../.."
printf '%s\n' "$out" | grep -qx "$container" || die "the listing after CWD ../../.. is not the account: $out"

say "CWD into a file: 550"
out=$(lftp -e "quote CWD /$container/top.txt; quit" -u "$LAB_USER,$LAB_KEY" -p "$GW_PORT" 127.0.0.1 2>&1 || true)
# lftp prints the server's reply, alone or after the failed command (`...: 550 ...`).
printf '%s\n' "$out" | grep -qE '(^|: )550 ' || die "CWD into a file did not get 550: $out"

lftp_do() {
  lftp -e "set net:max-retries 1; set net:reconnect-interval-base 1; set cmd:fail-exit yes; $1; quit" \
    -u "$LAB_USER,$LAB_KEY" -p "$GW_PORT" 127.0.0.1
}

say "writing: building a tree with 1,000 small files and a ${WRITE_MB} MiB file"
up="$work/up"
mkdir -p "$up/many" "$up/a/b/c" "$up/spaced dir" "$up/ünï ☺" "$up/empty dir"
for i in $(seq -w 1 1000); do printf 'small file %s\n' "$i" >"$up/many/f$i.txt"; done
head -c $((WRITE_MB * 1024 * 1024)) /dev/urandom >"$up/a/huge.bin"
head -c 123456 /dev/urandom >"$up/a/b/c/mid.bin"
printf 'x\n' >"$up/spaced dir/file with spaces.txt"
printf 'y\n' >"$up/ünï ☺/fïlé ✓.txt"
: >"$up/zero.bin"
(cd "$up" && find . -type f -exec sha256sum {} + | sort -k2) >"$work/up.sums"
(cd "$up" && find . -mindepth 1 -type d | sort) >"$work/up.dirs"

say "lftp mirror -R into a new container"
lftp_do "mirror -R --parallel=4 $work/up '/$wcontainer'" >"$work/mirror-r.log" 2>&1 ||
  { cat "$work/mirror-r.log" >&2; die "lftp mirror -R"; }

say "the Swift API shows every file and a marker for every directory"
curl -fsS -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$(urlpath "$wcontainer")?format=json" >"$work/listing.json" ||
  die "listing the mirrored container"
/usr/bin/python3 - "$work/listing.json" "$work/up.sums" "$work/up.dirs" <<'PY' || die "the Swift listing does not match the tree"
import json, sys
listing = json.load(open(sys.argv[1]))
objects = {o["name"]: o for o in listing}
files = [line.split(None, 1)[1].strip()[2:] for line in open(sys.argv[2])]
dirs = [line.strip()[2:] for line in open(sys.argv[3])]
for f in files:
    assert f in objects, "missing object %r" % f
    assert not objects[f]["content_type"].startswith("application/directory"), f
for d in dirs:
    assert d in objects, "missing directory marker %r" % d
    assert objects[d]["content_type"] == "application/directory", (d, objects[d]["content_type"])
    assert objects[d]["bytes"] == 0, d
extra = set(objects) - set(files) - set(dirs)
assert not extra, "unexpected objects: %r" % sorted(extra)[:5]
assert objects["a/huge.bin"]["hash"], "no ETag"
print("swift listing: %d files, %d directory markers" % (len(files), len(dirs)))
PY

say "lftp mirror back into a new folder"
lftp_do "mirror --parallel=4 '/$wcontainer' $work/down" >"$work/mirror.log" 2>&1 ||
  { cat "$work/mirror.log" >&2; die "lftp mirror"; }
(cd "$work/down" && find . -type f -exec sha256sum {} + | sort -k2) >"$work/down.sums"
(cd "$work/down" && find . -mindepth 1 -type d | sort) >"$work/down.dirs"
diff -u "$work/up.sums" "$work/down.sums" >/dev/null || die "the mirrored-back files differ from the source"
diff -u "$work/up.dirs" "$work/down.dirs" || die "the mirrored-back directories differ from the source"
say "mirror -R then mirror: $(wc -l <"$work/down.sums") files and $(wc -l <"$work/down.dirs") directories identical"
rm -f "$up/a/huge.bin" "$work/down/a/huge.bin"

say "lftp renames, deletes and refusals"
lftp_do "cd '/$wcontainer'; mv 'spaced dir/file with spaces.txt' 'a/renamed ☺.txt'; mv a/b/c/mid.bin 'empty dir'; \
  mkdir 'new empty'; mv 'new empty' 'renamed empty'; mv 'ünï ☺' 'moved dir'; \
  rm many/f0001.txt; rmdir 'moved dir' || echo rmdir-refused; rm 'moved dir/fïlé ✓.txt'; rmdir 'moved dir'; \
  put $work/up/zero.bin -o /toplevel.bin || echo top-refused" \
  >"$work/ops.log" 2>&1 || { cat "$work/ops.log" >&2; die "lftp operations"; }
for refused in rmdir-refused top-refused; do
  grep -q "$refused" "$work/ops.log" || { cat "$work/ops.log" >&2; die "no $refused"; }
done
curl -fsS -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$(urlpath "$wcontainer")?format=plain" >"$work/after.txt"
for want in "a/renamed ☺.txt" "empty dir/mid.bin" "renamed empty"; do
  grep -qxF "$want" "$work/after.txt" || die "expected $want after the operations"
done
for gone in "spaced dir/file with spaces.txt" "a/b/c/mid.bin" "many/f0001.txt" "ünï ☺" "moved dir" \
  "new empty" "ünï ☺/fïlé ✓.txt" "moved dir/fïlé ✓.txt"; do
  ! grep -qxF "$gone" "$work/after.txt" || die "$gone should be gone"
done
curl -fsS -o /dev/null -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/toplevel.bin" 2>/dev/null &&
  die "a top-level object was created"

say "Keystone: lftp and curl through v3 (password, domains, application credential) and v2.0 logins"
eval "$("$here/keystone-lab.sh" env)"
ks_check() { # ks_check PORT LOGIN PASSWORD TAG: lftp uploads, lists and downloads; curl downloads and compares
  local port=$1 login=$2 password=$3 tag=$4 c="e2e-$$-ks-$4" url
  printf 'keystone %s\n' "$tag" >"$work/ks-$tag.txt"
  lftp -e "set net:max-retries 1; set cmd:fail-exit yes; mkdir '/$c'; put $work/ks-$tag.txt -o '/$c/up ☺.txt'; \
    cls -1 '/$c'; get '/$c/up ☺.txt' -o $work/ks-$tag.back; quit" -u "$login,$password" -p "$port" 127.0.0.1 \
    >"$work/ks-$tag.log" 2>&1 || { cat "$work/ks-$tag.log" >&2; die "lftp as $login"; }
  grep -q "/up ☺.txt$" "$work/ks-$tag.log" || die "lftp listing as $login: $(cat "$work/ks-$tag.log")"
  cmp "$work/ks-$tag.txt" "$work/ks-$tag.back" || die "lftp round trip as $login"
  url="ftp://$(urlpart "$login"):$(urlpart "$password")@127.0.0.1:$port"
  curl -fsS -o "$work/ks-$tag.curl" "$url/$c/$(urlpath "up ☺.txt")" || die "curl as $login"
  cmp "$work/ks-$tag.txt" "$work/ks-$tag.curl" || die "curl download as $login"
  curl -fsS -o /dev/null -Q "DELE /$c/up ☺.txt" -Q "RMD /$c" "$url/" || die "curl clean-up as $login"
}
ks_gateway() { # ks_gateway AUTH_URL [args]: a second gateway; sets KS_PID and KS_PORT
  local main_pid=$GW_PID main_port=$GW_PORT
  GW_AUTH_URL=$1
  shift
  start_gateway "$BIN" "$work/ks-gateway-$RANDOM.log" "$@"
  KS_PID=$GW_PID KS_PORT=$GW_PORT GW_PID=$main_pid GW_PORT=$main_port GW_AUTH_URL=
}
ks_gateway "$SWIFTFTP_TEST_KEYSTONE_V3_URL" --keystone-auth --keystone-auth-version 3 --keystone-tenant-separator /
ks_check "$KS_PORT" "demo/alice" alice-pw v3-alice
ks_check "$KS_PORT" "proj2@example.org/carol@example.org" carol-pw v3-carol
ks_check "$KS_PORT" "/appcred/$SWIFTFTP_TEST_APP_CRED_ID" "$SWIFTFTP_TEST_APP_CRED_SECRET" v3-appcred
kill -TERM "$KS_PID"; wait "$KS_PID" 2>/dev/null || true
ks_gateway "$SWIFTFTP_TEST_KEYSTONE_V2_URL" --keystone-auth
ks_check "$KS_PORT" "demo.alice" alice-pw v2-alice
ks_check "$KS_PORT" "space tenant.bob" bob-pw v2-bob
kill -TERM "$KS_PID"; wait "$KS_PID" 2>/dev/null || true
ks_gateway "$SWIFTFTP_TEST_KEYSTONE_V2_URL" --keystone-auth --keystone-tenant-separator "\\"
ks_check "$KS_PORT" 'dot.tenant\dave' dave-pw v2-dave
kill -TERM "$KS_PID"; wait "$KS_PID" 2>/dev/null || true

say "large files: 20 MiB through a gateway with 4M segments, up with lftp and curl, back identical, MD5 answered"
lc="e2e-$$-large"
main_pid=$GW_PID main_port=$GW_PORT
start_gateway "$BIN" "$work/large-gateway.log" --segment-size 4M
LG_PID=$GW_PID LG_PORT=$GW_PORT GW_PID=$main_pid GW_PORT=$main_port
head -c $((20 * 1024 * 1024 + 5)) /dev/urandom >"$work/large.bin"
sum=$(md5sum "$work/large.bin" | cut -d' ' -f1)
lftp -e "set net:max-retries 1; set cmd:fail-exit yes; mkdir '/$lc'; put $work/large.bin -o '/$lc/lftp.bin'; \
  get '/$lc/lftp.bin' -o $work/large.lftp; quote XMD5 '/$lc/lftp.bin'; quote MD5 '/$lc/lftp.bin'; quit" \
  -u "$LAB_USER,$LAB_KEY" -p "$LG_PORT" 127.0.0.1 >"$work/large.log" 2>&1 || { cat "$work/large.log" >&2; die "lftp large file"; }
cmp "$work/large.bin" "$work/large.lftp" || die "the large file came back different through lftp"
grep -q "^250 $sum" "$work/large.log" || die "XMD5 did not answer $sum: $(cat "$work/large.log")"
grep -qi "^251 .*$sum" "$work/large.log" || die "MD5 did not answer $sum: $(cat "$work/large.log")"
lg_url="ftp://$(urlpart "$LAB_USER"):$(urlpart "$LAB_KEY")@127.0.0.1:$LG_PORT"
curl -fsS -T "$work/large.bin" "$lg_url/$lc/curl.bin" || die "curl large upload"
curl -fsS -o "$work/large.curl" "$lg_url/$lc/curl.bin" || die "curl large download"
cmp "$work/large.bin" "$work/large.curl" || die "the large file came back different through curl"
for f in lftp.bin curl.bin; do
  curl -fsS -I -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$lc/$f" | tr -d '\r' | grep -qi '^x-static-large-object: true' ||
    die "$f is not a Static Large Object"
done
segs=$(curl -fsS -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/${lc}_segments" | wc -l)
[ "$segs" = 12 ] || die "expected 12 segments (6 per file), found $segs"
curl -fsS -o /dev/null -Q "DELE /$lc/lftp.bin" -Q "DELE /$lc/curl.bin" -Q "RMD /$lc" "$lg_url/" || die "curl large clean-up"
# DELE took each file's segments, and RMD of the container took the then empty segments container too.
left=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/${lc}_segments")
[ "$left" = 404 ] || die "the segments container outlived RMD (HTTP $left)"

say "beyond ftp-cloudfs: mirror keeps times, mv of a folder, curl resumes a cut upload, SITE PUBLIC/PRIVATE"
bc="e2e-$$-beyond"
mkdir -p "$work/times/sub"
for i in $(seq 1 30); do printf 'file %s\n' "$i" >"$work/times/sub/f$i.txt"; done
TZ=UTC touch -d '2020-02-03 04:05:06' "$work/times/sub/f7.txt"
lftp -e "set net:max-retries 1; set cmd:fail-exit yes; mkdir '/$bc'; mirror -R --no-perms $work/times '/$bc/tree'; \
  mv '/$bc/tree' '/$bc/moved'; quit" -u "$LAB_USER,$LAB_KEY" -p "$LG_PORT" 127.0.0.1 >"$work/beyond.log" 2>&1 ||
  { cat "$work/beyond.log" >&2; die "lftp mirror + mv"; }
listed=$(curl -fsS -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$bc")
[ "$(grep -c '^moved/sub/f' <<<"$listed")" = 30 ] || die "mv: expected 30 files under moved/: $listed"
! grep -q '^tree' <<<"$listed" || die "mv left the old folder: $listed"
curl -fsS -I -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$bc/moved/sub/f7.txt" | tr -d '\r' |
  grep -qi '^x-object-meta-mtime: 1580702706$' || die "the mirrored time was not kept"
head -c $((12 * 1024 * 1024)) /dev/urandom >"$work/cut.bin"
# curl gives up after 3 s at 2 MB/s (its own timeout closes both connections), then continues with -C -.
curl -sS --limit-rate 2M --max-time 3 -T "$work/cut.bin" "$lg_url/$bc/cut.bin" 2>/dev/null && die "the cut upload finished"
# What arrived is kept, and SIZE says how much: the next curl continues from there (a gateway that kept nothing
# would make it upload the whole file again, and the comparison below would pass all the same).
partial=$(curl -fsS -I "$lg_url/$bc/cut.bin" | tr -d '\r' | awk 'tolower($1) == "content-length:" {print $2}' || true)
[ -n "$partial" ] && [ "$partial" -gt 0 ] && [ "$partial" -lt $((12 * 1024 * 1024)) ] ||
  die "after the cut, SIZE says '${partial:-nothing}': no partial upload to continue"
curl -fsS -C - -T "$work/cut.bin" "$lg_url/$bc/cut.bin" || die "curl -C - did not continue the upload"
curl -fsS -o "$work/cut.back" "$lg_url/$bc/cut.bin" || die "download of the resumed file"
cmp "$work/cut.bin" "$work/cut.back" || die "the resumed upload came back different"
curl -fsS -o /dev/null -Q "SITE PUBLIC /$bc" "$lg_url/" || die "SITE PUBLIC"
anon=$(curl -s -o /dev/null -w '%{http_code}' "$SWIFT_URL/$bc/moved/sub/f1.txt")
[ "$anon" = 200 ] || die "a public container refused an anonymous read ($anon)"
curl -fsS -o /dev/null -Q "SITE PRIVATE /$bc" "$lg_url/" || die "SITE PRIVATE"
anon=$(curl -s -o /dev/null -w '%{http_code}' "$SWIFT_URL/$bc/moved/sub/f1.txt")
[ "$anon" = 401 ] || die "a private container answered an anonymous read with $anon"
swift_delete_container "$bc"
swift_delete_container "${bc}_segments"
kill -TERM "$LG_PID"; wait "$LG_PID" 2>/dev/null || true

say "metrics and health with curl"
metric() { curl -fsS "127.0.0.1:$metrics_port/metrics" | awk -v m="$1" 'index($0, m) == 1 {s += $NF} END {printf "%.0f\n", s}'; }
logins=$(metric 'swiftftp_logins_total{result="ok"}')
bytes_out=$(metric 'swiftftp_transfer_bytes_total{direction="out"}')
curl -fsS -o /dev/null "$ftp_url/$container/top.txt" || die "download for metrics"
curl -fsS -o /dev/null "$ftp_url/$container/nested/a.bin" || die "download for metrics"
[ "$(metric 'swiftftp_logins_total{result="ok"}')" -ge $((logins + 2)) ] || die "logins counter did not move"
[ "$(metric 'swiftftp_transfer_bytes_total{direction="out"}')" -gt "$bytes_out" ] || die "bytes counter did not move"
[ "$(metric 'swiftftp_ftp_commands_total{command="retr"}')" -ge 2 ] || die "the FTP command counter is missing"
curl -fsS "127.0.0.1:$metrics_port/health" | grep -q '^ok' || die "/health is not ok"

say "SIGTERM: clean exit"
kill -TERM "$GW_PID"
rc=0
wait "$GW_PID" || rc=$?
GW_PID=
[ "$rc" = 0 ] || die "swiftftp exited with $rc after SIGTERM"
grep -q 'SIGTERM: shutting down' "$work/gateway.log" || die "no shutdown line in the log"

say "all end-to-end checks passed"
