#!/usr/bin/env bash
# Prints the path of a Debian minbase root filesystem as a tarball
# (`mmdebstrap --variant=minbase SUITE`, default bookworm, for the host's
# architecture), built once into a cache of the tests' own
# ($OCISYNC_TEST_CACHE, else ~/.cache/ocisync-tests) and kept there. The
# cache key is the suite, the variant, the architecture and the recipe
# version below: bump RECIPE when the mmdebstrap command changes, so that an
# old tarball is never taken for the new one. The tarball holds no device
# nodes (--skip=output/dev), so it unpacks into a directory that any build
# can take. The mirror is $OCISYNC_DEBIAN_MIRROR (default
# http://deb.debian.org/debian). Exits non-zero, saying why on stderr, when
# it cannot be had (no mmdebstrap, no network, the mirror failing).
set -euo pipefail
RECIPE=1
suite=${1:-bookworm}
mirror=${OCISYNC_DEBIAN_MIRROR:-http://deb.debian.org/debian}
command -v dpkg >/dev/null || { echo "debian-minbase: dpkg is missing (not a Debian host)" >&2; exit 1; }
arch=$(dpkg --print-architecture)
cache="${OCISYNC_TEST_CACHE:-$HOME/.cache/ocisync-tests}/debian-minbase"
tarball="$cache/$suite-minbase-$arch-r$RECIPE.tar"
if [ -s "$tarball" ]; then
  echo "$tarball"
  exit 0
fi
command -v mmdebstrap >/dev/null ||
  { echo "debian-minbase: mmdebstrap is missing (scripts/bootstrap.sh installs it)" >&2; exit 1; }
mkdir -p "$cache"
work=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Two tests building at once each write their own file and rename it into
# place; the second rename replaces an identical tarball.
if ! TMPDIR="$work" mmdebstrap --variant=minbase --architectures="$arch" \
  --skip=output/dev "$suite" "$work/rootfs.tar" "$mirror" >"$work/mmdebstrap.log" 2>&1; then
  # apt's first error says what went wrong (a mirror not reached, a
  # package missing); mmdebstrap's last lines only that apt failed.
  why=$(grep -m1 '^E: ' "$work/mmdebstrap.log" || tail -n 3 "$work/mmdebstrap.log")
  echo "debian-minbase: mmdebstrap --variant=minbase $suite from $mirror failed: $why" >&2
  exit 1
fi
mv "$work/rootfs.tar" "$tarball"
echo "$tarball"
