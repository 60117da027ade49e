#!/usr/bin/env bash
# Midnight Commander's FTP link (ftpfs) against swiftftp, driven in tmux (run by hand: keystrokes timed against
# a terminal UI are too fragile for CI). mc's URLs cannot carry a user name with a colon (`account:user`), so the
# gateway logs in through the Keystone lab's v2.0 endpoint as `demo.alice` (tenant.user). In the right panel: cd
# to ftp://demo.alice:alice-pw@127.0.0.1:PORT/CONTAINER; copy a file there (F5), rename it (F6), copy it back
# (F5), delete it (F8). Checked: the bytes through the Swift API and on disk; the screen is printed at each step.
#
# Usage: tests/manual/mc.sh [path/to/swiftftp]   (default: target/debug/swiftftp)
# Needs both labs (tests/swift-lab.sh start; tests/keystone-lab.sh start); installs Debian's mc and tmux if
# missing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=tests/lib.sh
. "$here/lib.sh"

gateway_binary "${1:-}"
command -v mc >/dev/null && command -v tmux >/dev/null ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q mc tmux >/dev/null || die "apt-get install mc tmux"
eval "$("$here/keystone-lab.sh" env)"

work=$(mktemp -d "${TMPDIR:-/tmp}/swiftftp-mc.XXXXXX")
container="mc-$$"
session="swiftftp-mc-$$"
cleanup() {
  tmux kill-session -t "$session" 2>/dev/null || true
  stop_gateway
  swift_delete_containers "$container"
  rm -rf "$work"
}
trap cleanup EXIT

swift_login
swift_put_container "$container"
GW_AUTH_URL=$SWIFTFTP_TEST_KEYSTONE_V2_URL start_gateway "$BIN" "$work/gateway.log" --keystone-auth
mkdir -p "$work/local" "$work/home"
head -c 200000 /dev/urandom >"$work/local/a-up.bin"

screen() { tmux capture-pane -p -t "$session"; }
keys() { tmux send-keys -t "$session" "$@"; sleep "${PAUSE:-1.5}"; }
object_sha() { curl -fsS -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$container/$1" | sha256sum; }
show() { say "$1"; screen | sed -n '1,12p' >&2; }

tmux new-session -d -s "$session" -x 160 -y 40 \
  "HOME=$work/home TERM=xterm mc --nosubshell --nocolor '$work/local' '$work/local'"
sleep 2
# Right panel: the gateway.
keys Tab
keys "cd ftp://demo.alice:alice-pw@127.0.0.1:$GW_PORT/$container" Enter
PAUSE=3 keys ""
show "mc: right panel on the gateway"
# Left panel: the file (first entry after ..), copied over.
keys Tab
keys Home Down
keys F5
PAUSE=4 keys Enter
[ "$(object_sha a-up.bin)" = "$(sha256sum <"$work/local/a-up.bin")" ] || { show "upload"; die "mc: the upload differs"; }
say "mc: F5 upload: identical"
# Right panel: rename the file (F6, a name in the same folder).
keys Tab
keys C-r # re-read the remote folder
keys Home Down
keys F6
keys Home C-k
PAUSE=4 keys "b-renamed.bin" Enter
code=$(curl -s -o /dev/null -w '%{http_code}' -I -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$container/b-renamed.bin")
[ "$code" = 200 ] || { show "rename"; die "mc: F6 rename: the new name is not there ($code)"; }
say "mc: F6 rename: done"
# Copy it back to the left panel.
keys C-r
keys Home Down
keys F5
PAUSE=4 keys Enter
cmp "$work/local/b-renamed.bin" "$work/local/a-up.bin" || { show "download"; die "mc: the download differs"; }
say "mc: F5 download: identical"
# Delete it.
keys Home Down
keys F8
PAUSE=3 keys Enter
code=$(curl -s -o /dev/null -w '%{http_code}' -I -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$container/b-renamed.bin")
[ "$code" = 404 ] || { show "delete"; die "mc: F8 delete: still there ($code)"; }
say "mc: F8 delete: gone"
keys F10
say "Midnight Commander passed"
