#!/usr/bin/env bash
# The vendored libunftp 0.24.0 and unftp-core 0.1.1 as a patch series on the crates as published.
#
#   vendor/patches/series.sh generate   rewrites vendor/patches/*.patch from git history: one patch per commit
#                                       that touched vendor/ (only its vendor/ part), each a diff from the tree
#                                       before it; an import commit's patch is its difference from the published
#                                       crate (Cargo.toml trimmed, files left out).
#   vendor/patches/series.sh check      applies the series to the published crates (from cargo's cache, else
#                                       fetched by cargo) and fails unless the result is vendor/ exactly.
#
# Run `generate` after committing a change to vendor/, then commit the new patch: `check` (in tests/run.sh) fails
# until the series matches the tree. The published crates are checked against their crates.io SHA-256 first.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
CRATES=("libunftp 0.24.0 7d94587cfb90dd87b7cced3bff07d32cb56ad1192baa5d688dfaa8728f22d48d"
        "unftp-core 0.1.1 a884aa38af3fe0b85fa742c17b9d9649e7794ce323518ad9ce0d4b2ac50b0e83")
die() { printf 'series.sh: %s\n' "$*" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/swiftftp-series.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The .crate file of $1 $2 in cargo's download cache, fetched by cargo (through its configured registry) if absent.
crate_file() {
  local name=$1 version=$2 f
  f=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$name-$version.crate" 2>/dev/null | head -n 1 || true)
  if [ -z "$f" ]; then
    mkdir -p "$work/fetch/src"
    printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n%s = "=%s"\n' \
      "$name" "$version" >"$work/fetch/Cargo.toml"
    : >"$work/fetch/src/lib.rs"
    (cd "$work/fetch" && cargo fetch -q) || die "cargo could not fetch $name $version"
    f=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$name-$version.crate" | head -n 1)
  fi
  printf '%s\n' "$f"
}

# Every path ever tracked under vendor/<dir>/ (relative to it), the patches excepted.
tracked_ever() {
  git log --format= --name-only -- "vendor/$1" | sed -n "s|^vendor/$1/||p" | sort -u
}

# $work/base/vendor/{libunftp,unftp-core}: the published crates, only the files vendor/ ever held.
published_base() {
  local entry name version sum f dir
  for entry in "${CRATES[@]}"; do
    read -r name version sum <<<"$entry"
    f=$(crate_file "$name" "$version")
    [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$sum" ] || die "$f is not the published $name $version"
    mkdir -p "$work/crate-$name"
    tar -xzf "$f" -C "$work/crate-$name"
    dir=$work/base/vendor/$name
    mkdir -p "$dir"
    tracked_ever "$name" | while read -r p; do
      [ -f "$work/crate-$name/$name-$version/$p" ] || continue
      mkdir -p "$dir/$(dirname "$p")"
      cp "$work/crate-$name/$name-$version/$p" "$dir/$p"
    done
  done
}

generate() {
  published_base
  local replay=$work/replay n=0 c subject dir
  mkdir -p "$replay"
  cp -a "$work/base/vendor" "$replay/"
  git -C "$replay" init -q && git -C "$replay" add -A && git -C "$replay" -c user.name=s -c user.email=s@s commit -qm base
  rm -f "$here"/*.patch
  for c in $(git log --reverse --format=%H -- vendor/libunftp vendor/unftp-core); do
    for dir in libunftp unftp-core; do
      # A crate not yet imported at this commit stays as published.
      git cat-file -e "$c:vendor/$dir" 2>/dev/null || continue
      rm -rf "${replay:?}/vendor/$dir"
      mkdir -p "$replay/vendor/$dir"
      git archive "$c" "vendor/$dir" | tar -x -C "$replay"
    done
    git -C "$replay" add -A
    git -C "$replay" diff --cached --quiet && continue
    n=$((n + 1))
    subject=$(git log -1 --format=%s "$c")
    {
      printf 'From: swiftftp history, commit %s\nSubject: %s\n\n' "$c" "$subject"
      git -C "$replay" diff --cached --binary
    } >"$here/$(printf '%04d' "$n")-$(printf '%s' "$subject" | tr -c 'A-Za-z0-9' '-' | tr -s '-' | cut -c1-50 | sed 's/-$//').patch"
    git -C "$replay" -c user.name=s -c user.email=s@s commit -qm "$c"
  done
  printf 'series.sh: %d patches written to vendor/patches/\n' "$n" >&2
}

check() {
  published_base
  local tree=$work/base p
  git -C "$tree" init -q
  for p in "$here"/*.patch; do
    git -C "$tree" apply --whitespace=nowarn "$p" || die "$(basename "$p") does not apply"
  done
  rm -rf "$tree/.git"
  mkdir -p "$work/head"
  git archive HEAD vendor/libunftp vendor/unftp-core | tar -x -C "$work/head"
  # What is committed, not what the working tree holds (the series is made from commits).
  diff -r "$work/head/vendor" "$tree/vendor" >"$work/diff" ||
    { head -n 40 "$work/diff" >&2; die "vendor/ differs from the published crates + vendor/patches (run: vendor/patches/series.sh generate)"; }
  printf 'series.sh: vendor/ is the published crates + %d patches\n' "$(ls "$here"/*.patch | wc -l)" >&2
}

case "${1:-}" in
  generate) generate ;;
  check) check ;;
  *) die "usage: vendor/patches/series.sh generate|check" ;;
esac
