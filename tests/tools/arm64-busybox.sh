#!/usr/bin/env bash
# Prints the path of a static arm64 busybox (Debian's busybox-static:arm64),
# downloaded once with apt into a cache of the tests' own
# ($OCISYNC_TEST_CACHE, else ~/.cache/ocisync-tests) and kept there. apt runs
# with a private state directory and APT::Architectures=arm64, so the host's
# apt configuration and package lists are never touched. Exits non-zero,
# saying why on stderr, when it cannot be had (no network, no apt).
set -euo pipefail
cache="${OCISYNC_TEST_CACHE:-$HOME/.cache/ocisync-tests}/arm64"
bin="$cache/busybox"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
command -v apt-get >/dev/null || { echo "arm64-busybox: apt-get is missing" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/state/lists/partial" "$work/cache/archives/partial" "$cache"
apt=(apt-get -q -o "Dir::State=$work/state" -o "Dir::Cache=$work/cache"
  -o APT::Architecture=arm64 -o "APT::Architectures::=arm64" -o Debug::NoLocking=1)
(cd "$work" && "${apt[@]}" update >"$work/update.log" 2>&1) ||
  { echo "arm64-busybox: apt-get update failed: $(tail -n 3 "$work/update.log")" >&2; exit 1; }
(cd "$work" && "${apt[@]}" download busybox-static:arm64 >"$work/download.log" 2>&1) ||
  { echo "arm64-busybox: apt-get download failed: $(tail -n 3 "$work/download.log")" >&2; exit 1; }
dpkg-deb -x "$work"/busybox-static_*_arm64.deb "$work/x"
[ -x "$work/x/bin/busybox" ] || { echo "arm64-busybox: no bin/busybox in the package" >&2; exit 1; }
cp "$work/x/bin/busybox" "$bin.tmp"
mv "$bin.tmp" "$bin"
echo "$bin"
