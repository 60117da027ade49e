#!/usr/bin/env bash
# Checks the systemd units in examples/ with `systemd-analyze verify` (installing Debian's systemd package where it
# is missing). verify needs ExecStart's program to exist, so each unit is checked in a copy whose
# /usr/local/bin/swiftftp points at the binary given (default: target/debug/swiftftp). Any line of verify's output
# about our units fails the check, warnings included. (examples/swiftftp.conf is checked by a unit test in
# src/config/tests.rs.)
#
# Usage: tests/check-examples.sh [path/to/swiftftp]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
bin=$(realpath "${1:-$repo/target/debug/swiftftp}")
LAB_NAME=check-examples
PACKAGES=(systemd)
# shellcheck source=tests/lab-common.sh
. "$here/lab-common.sh"
command -v systemd-analyze >/dev/null || cmd_install

work=$(mktemp -d "${TMPDIR:-/tmp}/swiftftp-units.XXXXXX")
trap 'rm -rf "$work"' EXIT
units=()
for unit in "$repo"/examples/*.service; do
  sed "s#/usr/local/bin/swiftftp#$bin#g" "$unit" >"$work/${unit##*/}"
  units+=("$work/${unit##*/}")
done
out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "${units[@]}" 2>&1) || {
  printf '%s\n' "$out" >&2
  log "systemd-analyze verify failed"
  exit 1
}
# Other units of the machine may be reported too; only lines about ours count.
if printf '%s\n' "$out" | grep -F -e "$work" -e swiftftp >&2; then
  log "systemd-analyze verify warned about the units above"
  exit 1
fi
log "systemd-analyze verify accepts: ${units[*]##*/}"
