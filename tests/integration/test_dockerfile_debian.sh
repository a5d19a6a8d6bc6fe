#!/usr/bin/env bash
# Dockerfile RUN on a real distribution: a Debian minbase (mmdebstrap,
# cached between runs by tests/tools/debian-minbase.sh) is made a base image
# (FROM scratch + ADD of the rootfs tarball, owners and links as they are)
# and pushed to a throwaway registry; a Dockerfile FROM it runs
# `apt-get update && apt-get install -y --no-install-recommends
# ca-certificates` for the host's platform. That needs what apt needs of the
# sandbox: the host's network and resolv.conf, /dev/null, /proc, the _apt
# user's privilege drop (setgroups, setresuid), dpkg's writes, renames and
# fsyncs on the overlay, maintainer scripts (update-ca-certificates). podman
# pulls the image: /etc/ssl/certs/ca-certificates.crt holds certificates,
# `dpkg -s ca-certificates` under chroot says installed, the package lists
# are gone. A second build runs nothing: every layer comes from the cache.
# Skipped (exit 77, saying why) when no minbase can be had (no mmdebstrap, or
# no mirror for its first build) or the mirror cannot be reached for the
# RUN: apt needs deb.debian.org.
. "$(dirname "$0")/lib.sh"

# Expensive (a 160 MiB base, apt over the network): the plain build runs it; under the sanitizers,
# test_dockerfile_run covers the same code of ocisync.
[ "${OCISYNC_SANITIZED:-0}" != 1 ] || skip_test "runs in the plain build only (expensive; test_dockerfile_run covers the sanitized build)"

[ "$(id -u)" = 0 ] || fail "this test runs as root (podman image mount, chroot; the rootless case becomes nobody itself)"
mirror=${OCISYNC_DEBIAN_MIRROR:-http://deb.debian.org/debian}

tarball=$(bash "$OCISYNC_SOURCE_DIR/tests/tools/debian-minbase.sh" bookworm 2>"$TMP/minbase.err") ||
  skip_test "no Debian minbase: $(tail -n 3 "$TMP/minbase.err")"
log "minbase: $tarball ($(du -m "$tarball" | cut -f1) MiB)"

registry_start reg
REG_ADDR=$(registry_addr reg)
export SOURCE_DATE_EPOCH=1700000000
export TMPDIR="$TMP/tmpdir"
mkdir -p "$TMPDIR"

# --- the base: the minbase tarball as one layer ------------------------------------------------------
# zstd: the 160 MiB layer compresses several times faster than with gzip.
mkdir -p "$TMP/basectx"
ln "$tarball" "$TMP/basectx/rootfs.tar" 2>/dev/null || cp "$tarball" "$TMP/basectx/rootfs.tar"
printf 'FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n' >"$TMP/basectx/Dockerfile"
run_ocisync build-push -f "$TMP/basectx/Dockerfile" "$TMP/basectx" --compression zstd \
  -t "$REG_ADDR/library/debian:bookworm"
expect_success "a Debian bookworm minbase base image"
rm -f "$TMP/basectx/rootfs.tar"

# apt needs the mirror from here on.
if ! curl -fsS -o /dev/null --max-time 15 "$mirror/dists/bookworm/InRelease" 2>"$TMP/mirror.err"; then
  skip_test "$mirror cannot be reached for apt-get in RUN: $(head -c 300 "$TMP/mirror.err")"
fi

# --- apt-get install in RUN --------------------------------------------------------------------------
ctx="$TMP/ctx"
mkdir -p "$ctx"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $REG_ADDR/library/debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
DOCKERFILE
ref="$REG_ADDR/team/debian-ca:1"
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -t "$ref" --digest-file "$TMP/d1"
expect_success "RUN apt-get install -y --no-install-recommends ca-certificates"
assert_contains "$OCISYNC_STDERR" "Setting up ca-certificates" "dpkg configured the package in the RUN"

podman_pull "$ref"
mnt=$(podman_cmd image mount "$ref") || fail "podman image mount $ref failed"
[ -s "$mnt/etc/ssl/certs/ca-certificates.crt" ] || fail "no /etc/ssl/certs/ca-certificates.crt in the image"
n=$(grep -c 'BEGIN CERTIFICATE' "$mnt/etc/ssl/certs/ca-certificates.crt")
[ "$n" -ge 100 ] || fail "/etc/ssl/certs/ca-certificates.crt holds only $n certificates"
pass "/etc/ssl/certs/ca-certificates.crt holds $n certificates (update-ca-certificates ran)"
out=$(chroot "$mnt" /usr/bin/dpkg -s ca-certificates 2>&1) || fail "chroot dpkg -s ca-certificates failed: $out"
assert_eq "$(printf '%s\n' "$out" | sed -n 's/^Status: //p')" "install ok installed" \
  "dpkg -s ca-certificates in the image"
out=$(chroot "$mnt" /usr/bin/dpkg --audit 2>&1) || fail "chroot dpkg --audit failed: $out"
assert_eq "$out" "" "dpkg --audit: no package half installed or half configured"
assert_eq "$(find "$mnt/var/lib/apt/lists" -mindepth 1 -maxdepth 1 -name '*_dists_*' | wc -l)" 0 \
  "the package lists the RUN removed are gone"
[ ! -e "$mnt/dev" ] || [ -z "$(ls -A "$mnt/dev")" ] || fail "the sandbox's /dev is in the image: $(ls -A "$mnt/dev")"
pass "nothing of the sandbox's /dev is in the image"
podman_cmd image unmount "$ref" >/dev/null 2>&1 || true

# The RUN's layer: what apt and dpkg wrote, and nothing of the sandbox (its
# mount points, the resolv.conf and hosts bound over the base's).
# Only that layer is fetched: the base's is 160 MiB.
skopeo_raw "$ref" "$TMP/index.json"
m=$(json_eval "$TMP/index.json" '[x["digest"] for x in d["manifests"] if x["platform"]["architecture"] != "unknown"][0]')
curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' -o "$TMP/manifest.json" \
  "http://$REG_ADDR/v2/team/debian-ca/manifests/$m" || fail "GET manifest $m failed"
top=$(json_eval "$TMP/manifest.json" 'd["layers"][-1]["digest"]')
curl -fsS "http://$REG_ADDR/v2/team/debian-ca/blobs/$top" | gzip -dc | tar -tv >"$TMP/run-layer.txt" ||
  fail "the RUN's layer $top does not list"
grep -qE ' usr/sbin/update-ca-certificates$' "$TMP/run-layer.txt" || fail "the RUN's layer lacks update-ca-certificates"
grep -qE ' var/lib/dpkg/info/ca-certificates\.list$' "$TMP/run-layer.txt" || fail "the RUN's layer lacks dpkg's file list"
pass "the RUN's layer holds the package and dpkg's records ($(wc -l <"$TMP/run-layer.txt") entries)"
if grep -E ' (dev|proc|sys|run/secrets)/| etc/(hosts|resolv\.conf)$' "$TMP/run-layer.txt"; then
  fail "the RUN's layer holds the sandbox's mount points or bound files"
fi
pass "no mount point or bound file of the sandbox in the RUN's layer"

# --- the cache: nothing runs again -------------------------------------------------------------------
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -t "$REG_ADDR/team/debian-ca:2" --digest-file "$TMP/d2"
expect_success "the same build again"
grep -qE ' ([0-9]+) new layers? \(\1 from the cache' "$OCISYNC_STDOUT" ||
  fail "not every layer came from the cache: $(cat "$OCISYNC_STDOUT")"
pass "every layer came from the cache: $(grep -oE '[0-9]+ new layers? \([^;]*' "$OCISYNC_STDOUT")"
assert_eq "$(grep -c ': cached$' "$OCISYNC_STDERR")" 1 "the RUN did not run again"
assert_eq "$(cat "$TMP/d2")" "$(cat "$TMP/d1")" "the same image (SOURCE_DATE_EPOCH)"

done_ok
