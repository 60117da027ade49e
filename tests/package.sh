#!/usr/bin/env bash
# The Debian package: built by `cargo deb` (metadata in Cargo.toml), installed with dpkg on this machine, checked,
# purged. Checked: `swiftftp --version` from /usr/bin, `man -w swiftftp`, the bash/zsh/fish completions, the
# conffile /etc/swiftftp.conf (dpkg lists it; the installed binary reads it by default; a local change survives a
# reinstall), the system user the maintainer script creates, `systemd-analyze verify`
# of the installed unit, README/CHANGELOG in /usr/share/doc; after `dpkg --purge` nothing of it is left.
#
# Usage: tests/package.sh [path/to/swiftftp]   (default: target/debug/swiftftp, built if missing)
#   PACKAGE_PROFILE=release   package the release build instead (cargo deb builds it); the default packages the
#                             given debug binary (stripped), so that CI builds nothing twice
#   PACKAGE_KEEP=1            leave the package installed
# Needs root (or sudo) for dpkg. Installs, where missing: cargo-deb (crates.io), man-db and systemd (Debian).
# Refuses to run where a swiftftp package is installed already: it would be replaced and purged.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
LAB_NAME=package
PACKAGES=(man-db systemd)
# shellcheck source=tests/lab-common.sh
. "$here/lab-common.sh"
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
CARGO_DEB_VERSION=3.8.0
PROFILE=${PACKAGE_PROFILE:-dev}
sudo_=()
[ "$(id -u)" = 0 ] || sudo_=(sudo)

cd "$repo"
gateway_binary "${1:-}"
command -v man >/dev/null && command -v systemd-analyze >/dev/null || cmd_install
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
  say "installing cargo-deb $CARGO_DEB_VERSION"
  cargo install --locked --quiet "cargo-deb@$CARGO_DEB_VERSION" || die "cargo install cargo-deb"
fi
if dpkg-query -W -f='${Status}' swiftftp 2>/dev/null | grep -q installed; then
  die "a swiftftp package is installed on this machine already; this test would replace and purge it"
fi

say "the generated assets: man page, completions, the unit with /usr/bin"
assets=$repo/target/deb-assets
rm -rf "$assets"
mkdir -p "$assets"
"$BIN" --print-man-page | gzip -9n >"$assets/swiftftp.1.gz"
"$BIN" --print-completions bash >"$assets/swiftftp.bash"
"$BIN" --print-completions zsh >"$assets/_swiftftp"
"$BIN" --print-completions fish >"$assets/swiftftp.fish"
sed 's#/usr/local/bin/swiftftp#/usr/bin/swiftftp#g' examples/swiftftp.service >"$assets/swiftftp.service"

say "cargo deb ($PROFILE)"
args=(--locked --output target/debian/)
if [ "$PROFILE" = release ]; then
  args+=(--profile release)
else
  # The asset target/release/swiftftp means "the profile's binary": target/debug/swiftftp here, already built.
  args+=(--profile "$PROFILE" --no-build)
fi
deb=$(cargo deb "${args[@]}" | tail -n 1)
[ -f "$deb" ] || die "cargo deb wrote no package ($deb)"
say "built $deb ($(du -h "$deb" | cut -f1))"

cleanup() {
  if [ "${PACKAGE_KEEP:-0}" != 1 ]; then
    "${sudo_[@]}" dpkg --purge swiftftp >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
"${sudo_[@]}" dpkg -i "$deb" >/dev/null || die "dpkg -i"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
[ "$(/usr/bin/swiftftp --version)" = "swiftftp $version" ] || die "/usr/bin/swiftftp --version: $(/usr/bin/swiftftp --version)"
[ "$(man -w swiftftp)" = /usr/share/man/man1/swiftftp.1.gz ] || die "man -w swiftftp: $(man -w swiftftp 2>&1)"
man -P cat swiftftp 2>/dev/null | grep -q -- '--tls-implicit-port' || die "the man page lacks --tls-implicit-port"
for f in /usr/share/bash-completion/completions/swiftftp /usr/share/zsh/vendor-completions/_swiftftp \
  /usr/share/fish/vendor_completions.d/swiftftp.fish /usr/share/doc/swiftftp/README.md \
  /usr/share/doc/swiftftp/CHANGELOG.md /usr/share/doc/swiftftp/copyright; do
  [ -s "$f" ] || die "missing $f"
done
grep -q -- '--passive-ports' /usr/share/bash-completion/completions/swiftftp || die "bash completion lacks options"
dpkg-query -W -f='${Conffiles}\n' swiftftp | grep -q '^ /etc/swiftftp.conf ' || die "/etc/swiftftp.conf is not a conffile"
getent passwd swiftftp >/dev/null || die "no swiftftp system user"
out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify /lib/systemd/system/swiftftp.service 2>&1) ||
  die "systemd-analyze verify: $out"
[ -z "$(printf '%s\n' "$out" | grep swiftftp.service)" ] || die "systemd-analyze verify: $out"
say "installed: binary, man page, completions, docs, conffile, user, unit"

# A local change to the conffile (a key swiftftp does not know) is what the installed binary reads by default: it
# stops, naming the key and the file. The change survives a reinstall.
"${sudo_[@]}" sh -c 'printf "\n# a local change\nno-such-key = 1\n" >> /etc/swiftftp.conf'
set +e
out=$(timeout 10 /usr/bin/swiftftp --foreground --port 0 2>&1)
rc=$?
set -e
[ "$rc" = 2 ] && printf '%s' "$out" | grep -q 'no-such-key' && printf '%s' "$out" | grep -q '/etc/swiftftp.conf' ||
  die "with a local change to the conffile: exit $rc, $out"
"${sudo_[@]}" dpkg -i "$deb" >/dev/null || die "dpkg -i again"
grep -q '^no-such-key = 1' /etc/swiftftp.conf || die "the reinstall dropped the local change to /etc/swiftftp.conf"

[ "${PACKAGE_KEEP:-0}" = 1 ] && { say "left installed (PACKAGE_KEEP=1)"; trap - EXIT; exit 0; }
"${sudo_[@]}" dpkg --purge swiftftp >/dev/null || die "dpkg --purge"
trap - EXIT
for f in /usr/bin/swiftftp /etc/swiftftp.conf /lib/systemd/system/swiftftp.service; do
  [ ! -e "$f" ] || die "$f is still there after the purge"
done
! getent passwd swiftftp >/dev/null || die "the swiftftp user is still there after the purge"
say "the package builds, installs, works and purges cleanly"
