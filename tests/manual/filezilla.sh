#!/usr/bin/env bash
# FileZilla against swiftftp, driven under Xvfb with xdotool (run by hand: a GUI driven by screen positions is
# too fragile for CI). For each of plain FTP, explicit FTPS and implicit FTPS: connect (Site Manager entry, the
# self-signed certificate accepted), upload a file (double-click in the local list), rename it (F2), download it
# back (double-click in the remote list), delete it (Del, confirmed). Checked: the bytes through the Swift API and
# on disk, every step's reply in FileZilla's own log; a screenshot of each mode is kept.
#
# Usage: tests/manual/filezilla.sh [path/to/swiftftp]   (default: target/debug/swiftftp)
# Needs the lab (tests/swift-lab.sh start); installs Debian's filezilla, xvfb, xdotool, imagemagick if missing.
# Leaves its screenshots and FileZilla's log in $FZ_OUT (default: a new folder under $TMPDIR, printed).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=tests/lib.sh
. "$here/lib.sh"

gateway_binary "${1:-}"
for cmd in filezilla Xvfb xdotool import; do
  command -v "$cmd" >/dev/null && continue
  say "installing filezilla xvfb xdotool imagemagick (Debian)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q filezilla xvfb xdotool imagemagick >/dev/null ||
    die "apt-get install"
  break
done

out=${FZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/swiftftp-filezilla.XXXXXX")}
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/swiftftp-fz-work.XXXXXX")
container="filezilla-$$"
XVFB_PID=
FZ_PID=
cleanup() {
  [ -n "$FZ_PID" ] && kill "$FZ_PID" 2>/dev/null
  [ -n "$XVFB_PID" ] && kill "$XVFB_PID" 2>/dev/null
  stop_gateway
  swift_delete_containers "$container"
  rm -rf "$work"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
swift_login
swift_put_container "$container"
start_gateway "$BIN" "$work/gateway.log" --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --tls-implicit-port 0
implicit=$(sed -n 's/.*implicit_tls=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/gateway.log" | head -n 1)

display=:$((90 + RANDOM % 100))
Xvfb "$display" -screen 0 1280x900x24 >/dev/null 2>&1 &
XVFB_PID=$!
export DISPLAY=$display
sleep 1

# FileZilla's configuration: its log, no update check or welcome page, and one site per mode.
home="$work/home"
mkdir -p "$home/.config/filezilla"
cat >"$home/.config/filezilla/filezilla.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<FileZilla3><Settings>
  <Setting name="Logging file">$out/filezilla.log</Setting>
  <Setting name="Logging debuglevel">3</Setting>
  <Setting name="Update Check">0</Setting>
  <Setting name="Greeting version">3.63.0</Setting>
  <Setting name="Greeting resources">1</Setting>
</Settings></FileZilla3>
EOF
pass=$(printf '%s' "$LAB_KEY" | base64)
site() { # NAME PROTOCOL PORT: FileZilla's protocol numbers: 6 plain FTP, 4 explicit FTPS, 3 implicit FTPS
  printf '<Server><Host>127.0.0.1</Host><Port>%s</Port><Protocol>%s</Protocol><Type>0</Type><User>%s</User>' "$3" "$2" "$LAB_USER"
  printf '<Pass encoding="base64">%s</Pass><Logontype>1</Logontype><PasvMode>MODE_PASSIVE</PasvMode>' "$pass"
  printf '<EncodingType>UTF-8</EncodingType><Name>%s</Name><LocalDir>%s</LocalDir>' "$1" "$work/local-$1"
  printf '<RemoteDir>1 0 %s %s %s %s</RemoteDir><SyncBrowsing>0</SyncBrowsing></Server>\n' \
    "${#container}" "$container" "$((${#1} + 3))" "fz-$1"
}
{
  echo '<?xml version="1.0" encoding="UTF-8"?><FileZilla3><Servers>'
  site plain 6 "$GW_PORT"
  site explicit 4 "$GW_PORT"
  site implicit 3 "$implicit"
  echo '</Servers></FileZilla3>'
} >"$home/.config/filezilla/sitemanager.xml"

# Screen positions of the default layout at 1280x900: the first file of each list (below "..").
LOCAL_FIRST=(90 494)
REMOTE_FIRST=(700 494)
log_count() { grep -c -- "$1" "$out/filezilla.log" 2>/dev/null || true; }
wait_log() { # PATTERN WHAT [N]: waits up to 20 s for FileZilla's log to show PATTERN (N times)
  for _ in $(seq 1 100); do [ "$(log_count "$1")" -ge "${3:-1}" ] && return 0; sleep 0.2; done
  import -window root "$out/failed.png" 2>/dev/null || true
  die "FileZilla: $2 (no \"$1\" in its log; screenshot $out/failed.png)"
}

for mode in plain explicit implicit; do
  say "FileZilla, $mode"
  mkdir -p "$work/local-$mode"
  head -c 300000 /dev/urandom >"$work/local-$mode/up-$mode.bin"
  # The remote folder, as a directory marker (curl -T would append its file's name to a URL ending in /).
  curl -fsS -o /dev/null -X PUT -H "X-Auth-Token: $SWIFT_TOKEN" -H 'Content-Type: application/directory' \
    --data-binary '' "$SWIFT_URL/$container/fz-$mode/" || die "PUT the folder fz-$mode"
  : >"$out/filezilla.log"
  HOME=$home filezilla -c "0/$mode" >"$work/fz-$mode.out" 2>&1 &
  FZ_PID=$!
  if [ "$mode" = plain ]; then
    wait_log "Plain FTP is insecure" "no warning about plain FTP"
    sleep 1
    xdotool key Return # "Using plain FTP is insecure": go on
  else
    wait_log "nitializing TLS" "TLS not started"
    sleep 2
    xdotool key Return # the unknown certificate: trusted for this session
  fi
  wait_log "Directory listing of \"/$container/fz-$mode\" successful" "no listing after login"

  xdotool mousemove "${LOCAL_FIRST[@]}" click --repeat 2 --delay 80 1
  wait_log "File transfer successful" "upload"
  wait_log "Directory listing of" "the listing after the upload" 2
  got=$(curl -fsS -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$container/fz-$mode/up-$mode.bin" | sha256sum)
  [ "$got" = "$(sha256sum <"$work/local-$mode/up-$mode.bin")" ] || die "FileZilla $mode: the upload differs"

  sleep 1
  xdotool mousemove "${REMOTE_FIRST[@]}" click 1
  sleep 0.5
  xdotool key F2
  sleep 0.5
  xdotool key ctrl+a type "renamed-$mode.bin"
  xdotool key Return
  wait_log "Command: RNTO renamed-$mode.bin" "rename"
  wait_log "Response: 250" "rename reply"
  sleep 2
  # A double-click while FileZilla redraws the list is lost now and then: once more if nothing started.
  for _ in 1 2 3; do
    xdotool mousemove "${REMOTE_FIRST[@]}" click --repeat 2 --delay 80 1
    for _ in $(seq 1 25); do [ "$(log_count "Command: RETR renamed-$mode.bin")" -ge 1 ] && break 2; sleep 0.2; done
  done
  wait_log "Command: RETR renamed-$mode.bin" "download"
  for _ in $(seq 1 50); do [ -f "$work/local-$mode/renamed-$mode.bin" ] && break; sleep 0.2; done
  wait_log "File transfer successful" "download end" 2
  cmp "$work/local-$mode/renamed-$mode.bin" "$work/local-$mode/up-$mode.bin" || die "FileZilla $mode: the download differs"
  import -window root "$out/$mode.png" 2>/dev/null || true

  # The file is still selected, the remote list focused (a click on a selected name would start renaming it).
  xdotool key Delete
  sleep 1
  xdotool key Return # "Really delete?"
  wait_log "Command: DELE renamed-$mode.bin" "delete"
  sleep 1
  code=$(curl -s -o /dev/null -w '%{http_code}' -I -H "X-Auth-Token: $SWIFT_TOKEN" "$SWIFT_URL/$container/fz-$mode/renamed-$mode.bin")
  [ "$code" = 404 ] || die "FileZilla $mode: the deleted file is still there ($code)"
  cp "$out/filezilla.log" "$out/filezilla-$mode.log"
  kill "$FZ_PID" 2>/dev/null
  wait "$FZ_PID" 2>/dev/null || true
  FZ_PID=
  say "FileZilla $mode: connect, upload, rename, download, delete: all as expected"
done
say "FileZilla passed; screenshots and logs in $out"
