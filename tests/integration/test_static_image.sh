#!/usr/bin/env bash
# The static ocisync and ocisync's own image. A build with -DOCISYNC_STATIC=ON
# (a build directory of its own, only the ocisync target) gives a binary with
# no dynamic section (file, ldd, readelf agree) that copies an image between
# two real registries and runs in an empty chroot (no libraries, no NSS
# modules: glibc's files and dns lookups are built in). scripts/image.sh pushes
# ocisync's image, built by that binary with build-push --base scratch;
# podman pulls it, its config says user 65534 and entrypoint ocisync, and
# under chroot (podman image mount) `ocisync version` runs as 65534, and
# `ocisync digest` reads the image's own digest from the registry.
. "$(dirname "$0")/lib.sh"

# Expensive (a second build of the library): the plain build runs it; the sanitizer build
# cannot link statically.
[ "${OCISYNC_SANITIZED:-0}" != 1 ] || skip_test "runs in the plain build only (a static build of its own)"
[ "$(id -u)" = 0 ] || skip_test "needs root (podman image mount, chroot)"
for tool in file ldd readelf cmake chroot; do
  command -v "$tool" >/dev/null || skip_test "$tool is not installed (scripts/bootstrap.sh installs it)"
done

b="$TMP/build-static"
start=$(date +%s)
cmake -S "$OCISYNC_SOURCE_DIR" -B "$b" -DCMAKE_BUILD_TYPE=Release -DOCISYNC_STATIC=ON \
  -DOCISYNC_BUILD_TESTS=OFF -DOCISYNC_DOCS=OFF >"$TMP/static-build.log" 2>&1 &&
  cmake --build "$b" -j2 --target ocisync >>"$TMP/static-build.log" 2>&1 ||
  fail "the static build failed: $(grep -E 'error|Error' "$TMP/static-build.log" | head -n 5)"
static="$b/ocisync"
log "static build: $(($(date +%s) - start)) s, $(stat -c %s "$static") bytes"

file "$static" | grep 'statically linked' >/dev/null || fail "file does not call it statically linked: $(file "$static")"
ldd "$static" >"$TMP/ldd.out" 2>&1 || true
grep -q 'not a dynamic executable' "$TMP/ldd.out" || fail "ldd: $(cat "$TMP/ldd.out")"
readelf -l "$static" | grep -E 'INTERP|DYNAMIC' >/dev/null && fail "the static ocisync has a dynamic section or interpreter"
pass "the static ocisync has no dynamic section (file: statically linked; ldd: not a dynamic executable)"

registry_start src
registry_start dst
want=$(mkimage --out "$TMP/img" --platforms linux/amd64,linux/arm64 --layers 2 --layer-size 40000 \
  --seed static --tag v1)
push_image "$TMP/img" "$SRC_ADDR/lib/app:v1"
OCISYNC_BIN=$static run_ocisync copy "docker://$SRC_ADDR/lib/app:v1" "docker://$DST_ADDR/static/app:v1"
expect_success "the static ocisync copies between two registries"
assert_eq "$(skopeo_digest "$DST_ADDR/static/app:v1")" "$want" "the destination holds the source's digest"

# Nothing but the binary, /etc/hosts and /etc/resolv.conf: "localhost" resolves from /etc/hosts.
empty="$TMP/empty-root"
mkdir -p "$empty/etc" "$empty/tmp"
cp "$static" "$empty/ocisync"
printf '127.0.0.1 localhost\n' >"$empty/etc/hosts"
cp /etc/resolv.conf "$empty/etc/" 2>/dev/null || true
got=$(chroot "$empty" /ocisync digest "localhost:$DST_PORT/static/app:v1" 2>"$TMP/chroot.err") ||
  fail "the static ocisync in an empty chroot: $(cat "$TMP/chroot.err")"
assert_eq "$got" "$want" "in an empty chroot it resolves localhost (/etc/hosts, no NSS module) and reads the digest"

# --- ocisync's image, built by ocisync ------------------------------------------------------------
ref="$DST_ADDR/tools/ocisync:test"
OCISYNC_STATIC_BIN=$static timeout 300 bash "$OCISYNC_SOURCE_DIR/scripts/image.sh" -t "$ref" -t "$DST_ADDR/tools/ocisync:latest" \
  --digest-file "$TMP/image.digest" >"$TMP/image.out" 2>&1 || fail "scripts/image.sh failed: $(tail -n 10 "$TMP/image.out")"
image_digest=$(cat "$TMP/image.digest")
assert_eq "$(skopeo_digest "$ref")" "$image_digest" "scripts/image.sh pushed the image it reports"

podman_pull "$ref"
assert_eq "$(podman_inspect "$ref" '{{.Config.User}}')" "65534:65534" "the image runs as 65534"
assert_eq "$(podman_inspect "$ref" '{{json .Config.Entrypoint}}')" '["/usr/local/bin/ocisync"]' "the entrypoint is ocisync"
mnt=$(podman_cmd image mount "$ref" 2>>"$TMP/podman.log") || fail "podman image mount: $(tail -n 3 "$TMP/podman.log")"
[ -s "$mnt/etc/ssl/certs/ca-certificates.crt" ] || fail "the image has no CA certificates"
grep -q 'BEGIN CERTIFICATE' "$mnt/etc/ssl/certs/ca-certificates.crt" || fail "the image's CA file holds no certificate"
pass "the image holds the CA certificates"
chroot --userspec=65534:65534 "$mnt" /usr/local/bin/ocisync version >"$TMP/version.out" 2>&1 ||
  fail "ocisync version under chroot: $(cat "$TMP/version.out")"
grep -q "^ocisync [0-9]" "$TMP/version.out" || fail "ocisync version printed: $(cat "$TMP/version.out")"
pass "ocisync version runs from the image under chroot as 65534: $(head -1 "$TMP/version.out")"
got=$(chroot --userspec=65534:65534 "$mnt" /usr/local/bin/ocisync digest "$ref" 2>"$TMP/digest.err") ||
  fail "ocisync digest under chroot: $(cat "$TMP/digest.err")"
assert_eq "$got" "$image_digest" "ocisync in its image reads its own image's digest from the registry"
podman_cmd image unmount "$ref" >/dev/null 2>>"$TMP/podman.log" || true

done_ok
