# shellcheck shell=bash
# Helpers shared by tests/swift-lab.sh and tests/keystone-lab.sh (sourced, not run). The sourcing script sets
# LAB_NAME (for messages and the apt log), LAB (its state directory) and PACKAGES (Debian packages it needs).
# shellcheck disable=SC2154  # LAB_NAME, LAB and PACKAGES come from the sourcing script

log() { printf '%s: %s\n' "$LAB_NAME" "$*" >&2; }

# Installs the missing PACKAGES; `apt-get update` only when an install fails (fresh machines have no lists).
cmd_install() {
  local missing=() p apt_log="${TMPDIR:-/tmp}/$LAB_NAME-apt.log"
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$apt_log" 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$apt_log" 2>&1 ||
      { cat "$apt_log" >&2; exit 1; }
  fi
}

# Writes $1 with the content on stdin only when it changed; records the change in $LAB/.changed.
write_if_changed() {
  local target=$1 tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [ -f "$target" ] && cmp -s "$tmp" "$target"; then
    rm -f "$tmp"
  else
    mv "$tmp" "$target"
    chmod 0644 "$target"
    touch "$LAB/.changed"
  fi
}

# Runs the subcommand $2 (install, start, stop, status, env) of the sourcing lab; anything else prints the
# script's header comment (lines 2 to $1) and exits 2.
lab_main() {
  local usage_end=$1
  case "${2:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *) sed -n "2,${usage_end}p" "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
}
