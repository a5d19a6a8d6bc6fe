#!/usr/bin/env bash
# Builds ocisync's own container image with ocisync, and pushes it:
#
#   scripts/image.sh -t registry.example.com/tools/ocisync:0.1.0 [-t REF...] [BUILD-PUSH OPTIONS]
#
# The image is FROM scratch for this machine's platform: the static ocisync
# (-DOCISYNC_STATIC=ON, built in build-static/ unless OCISYNC_STATIC_BIN names
# one) as /usr/local/bin/ocisync, the host's CA certificates as
# /etc/ssl/certs/ca-certificates.crt (SSL_CERT_FILE points there), an
# /etc/passwd and /etc/group naming nobody (65534) and a /tmp; user 65534,
# entrypoint ocisync. The static ocisync itself runs `build-push --base
# scratch`: every argument is passed to it (tags, --dest-creds, ...). Time
# stamps come from the last commit (SOURCE_DATE_EPOCH), so a rebuild of the
# same commit gives the same layer.
#
#   OCISYNC_STATIC_BIN=FILE   use this static ocisync instead of building one
#   CA_BUNDLE=FILE            the CA certificates (default /etc/ssl/certs/ca-certificates.crt)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [ $# -eq 0 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
  exit 0
fi

bin=${OCISYNC_STATIC_BIN:-}
if [ -z "$bin" ]; then
  cmake -S "$root" -B "$root/build-static" -DCMAKE_BUILD_TYPE=Release -DOCISYNC_STATIC=ON \
    -DOCISYNC_BUILD_TESTS=OFF -DOCISYNC_DOCS=OFF >/dev/null
  cmake --build "$root/build-static" -j2 --target ocisync
  bin="$root/build-static/ocisync"
fi
if readelf -l "$bin" 2>/dev/null | grep 'INTERP\|DYNAMIC' >/dev/null; then
  echo "image.sh: $bin is not a static binary (build it with -DOCISYNC_STATIC=ON)" >&2
  exit 1
fi
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$ca" ] || {
  echo "image.sh: no CA certificates at $ca (Debian's ca-certificates)" >&2
  exit 1
}

case $(uname -m) in
x86_64) platform=linux/amd64 ;;
aarch64) platform=linux/arm64 ;;
armv7l) platform=linux/arm/v7 ;;
ppc64le | s390x | riscv64) platform=linux/$(uname -m) ;;
*)
  echo "image.sh: no image platform known for $(uname -m)" >&2
  exit 1
  ;;
esac

rootfs=$(mktemp -d "${TMPDIR:-/tmp}/ocisync-image.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"
install -m 0755 "$bin" "$rootfs/usr/local/bin/ocisync"
strip "$rootfs/usr/local/bin/ocisync" 2>/dev/null || true
install -m 0644 "$ca" "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"

version=$("$bin" version | sed -n '1s/^ocisync //p')
extra=()
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
  export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct)}
  extra+=(--revision "$(git -C "$root" rev-parse HEAD)")
fi

exec "$bin" build-push --base scratch --platform "$platform=$rootfs:/" \
  --entrypoint '["/usr/local/bin/ocisync"]' --cmd '["--help"]' --user 65534:65534 --workdir /tmp \
  --env PATH=/usr/local/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --label org.opencontainers.image.title=ocisync --version "$version" "${extra[@]}" "$@"
