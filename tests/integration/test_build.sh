#!/usr/bin/env bash
# ocisync build-push and build against the real registry, checked with real
# clients: from scratch and from a multi-platform base; podman pulls each
# platform and `podman image mount` shows exactly the files and modes of the
# input directories; the entrypoint (a static busybox) runs under chroot of
# the mounted image; gzip and zstd both pull; the base's layers are mounted,
# never downloaded; two builds give the same digest; build to oci:DIR and
# oci-archive: reads back with skopeo and umoci; symlinks that point out of
# their tree (absolute, climbing) are stored as they are, their targets unread.
. "$(dirname "$0")/lib.sh"

registry_start reg
export SOURCE_DATE_EPOCH=1700000000

# --- inputs -------------------------------------------------------------------------------------
mkdir -p "$TMP/ctx/amd64/bin" "$TMP/ctx/arm64/bin" "$TMP/ctx/common/static/css"
cp /bin/busybox "$TMP/ctx/amd64/bin/busybox"
cp /bin/busybox "$TMP/ctx/arm64/bin/busybox"
echo "amd64 build" >"$TMP/ctx/amd64/VERSION"
echo "arm64 build" >"$TMP/ctx/arm64/VERSION"
printf 'body{}\n' >"$TMP/ctx/common/static/css/site.css"
printf 'secret\n' >"$TMP/ctx/common/static/private.txt"
chmod 0600 "$TMP/ctx/common/static/private.txt"
chmod 0750 "$TMP/ctx/common/static/css"
ln -s css/site.css "$TMP/ctx/common/static/link.css"
head -c 300000 /dev/urandom >"$TMP/ctx/common/static/blob.bin"

# tree_listing DIR: "mode type path [-> target]" for every entry under DIR, sorted.
tree_listing() {
  (cd "$1" && find . -mindepth 1 -printf '%m %y %p %l\n' | sed 's/ $//' | LC_ALL=C sort)
}

# --- build-push from scratch, two platforms, shared layer, gzip -----------------------------------
run_ocisync build-push --base scratch \
  --platform "linux/amd64=$TMP/ctx/amd64:/app" --platform "linux/arm64=$TMP/ctx/arm64:/app" \
  --layer "$TMP/ctx/common:/app" --workdir /app --entrypoint '["/app/bin/busybox","echo","hello from ocisync"]' \
  --env PORT=8080 --expose 8080 --user 0 --label org.opencontainers.image.version=1.4.0 \
  --tag "$REG_ADDR/team/app:1.4.0;$REG_ADDR/team/app:latest" --digest-file "$TMP/digest"
expect_success "build-push from scratch"
digest=$(cat "$TMP/digest")
assert_eq "$(skopeo_digest "$REG_ADDR/team/app:1.4.0")" "$digest" "tag 1.4.0 points to the printed digest"
assert_eq "$(skopeo_digest "$REG_ADDR/team/app:latest")" "$digest" "tag latest points to the same index"
skopeo_raw "$REG_ADDR/team/app:1.4.0" "$TMP/index.json"
assert_eq "$(index_children "$TMP/index.json" | cut -d' ' -f2 | sort | tr '\n' ' ')" "linux/amd64 linux/arm64 " \
  "the index lists both platforms"

for plat in amd64 arm64; do
  ref="$REG_ADDR/team/app:1.4.0"
  podman_pull "$ref" --platform "linux/$plat"
  mnt=$(podman_cmd image mount "$ref") || fail "podman image mount failed"
  [ -d "$mnt/app" ] || fail "no /app in the mounted image"
  (cd "$TMP/ctx/$plat" && find . -mindepth 1) >/dev/null
  mkdir -p "$TMP/expect-$plat/app"
  cp -a "$TMP/ctx/common/." "$TMP/expect-$plat/app/"
  cp -a "$TMP/ctx/$plat/." "$TMP/expect-$plat/app/"
  assert_eq "$(tree_listing "$mnt/app")" "$(tree_listing "$TMP/expect-$plat/app")" \
    "linux/$plat: podman image mount shows exactly the input files, modes and links"
  assert_eq "$(cat "$mnt/app/VERSION")" "$plat build" "linux/$plat got its own layer"
  cmp -s "$mnt/app/static/blob.bin" "$TMP/ctx/common/static/blob.bin" || fail "blob.bin differs"
  if [ "$plat" = amd64 ]; then
    out=$(chroot "$mnt" /app/bin/busybox echo "hello from ocisync" 2>&1) || fail "chroot run failed: $out"
    assert_eq "$out" "hello from ocisync" "the entrypoint binary runs under chroot of the mounted image"
  fi
  podman_cmd image unmount "$ref" >/dev/null 2>&1 || true
  podman_cmd rmi -f "$ref" >/dev/null 2>&1 || true
done
config=$(podman_cmd inspect --format '{{json .Config}}' "$REG_ADDR/team/app:1.4.0" 2>/dev/null || true)

# The config as a client sees it.
skopeo inspect --config --tls-verify=false "docker://$REG_ADDR/team/app:1.4.0" >"$TMP/config.json" 2>/dev/null ||
  fail "skopeo cannot read the config"
assert_eq "$(json_eval "$TMP/config.json" 'd["config"]["Entrypoint"]')" \
  "$(printf '/app/bin/busybox\necho\nhello from ocisync')" "Entrypoint"
assert_eq "$(json_eval "$TMP/config.json" 'd["config"]["WorkingDir"]')" /app "WorkingDir"
assert_contains "$TMP/config.json" '"PORT=8080"' "Env has PORT"
assert_contains "$TMP/config.json" '"8080/tcp"' "ExposedPorts has 8080/tcp"
assert_eq "$(json_eval "$TMP/config.json" 'd["created"]')" "2023-11-14T22:13:20Z" "created honours SOURCE_DATE_EPOCH"
assert_eq "$(json_eval "$TMP/config.json" 'len(d["rootfs"]["diff_ids"])')" 2 "two new layers: shared and own"

# Reproducible: the same inputs give the same digest.
mark=$(registry_log_mark reg)
run_ocisync build-push --base scratch \
  --platform "linux/amd64=$TMP/ctx/amd64:/app" --platform "linux/arm64=$TMP/ctx/arm64:/app" \
  --layer "$TMP/ctx/common:/app" --workdir /app --entrypoint '["/app/bin/busybox","echo","hello from ocisync"]' \
  --env PORT=8080 --expose 8080 --user 0 --label org.opencontainers.image.version=1.4.0 \
  --tag "$REG_ADDR/team/again:1" --digest-file "$TMP/digest2"
expect_success "the same build again"
assert_eq "$(cat "$TMP/digest2")" "$digest" "two builds of the same input give the same digest"
# The build cache: every layer found by its content, none compressed or uploaded again.
assert_contains "$OCISYNC_STDOUT" "3 new layers (3 from the cache" "all three layers came from the build cache"
assert_eq "$(registry_log_count reg '^PATCH /v2/team/again/blobs/' "$mark")" 0 \
  "no layer was uploaded again"
assert_eq "$(registry_log_count reg '^PUT /v2/team/again/blobs/' "$mark")" 2 \
  "only the two configs went up whole"
assert_eq "$(registry_log_count reg '^POST /v2/team/again/blobs/uploads/\?.*mount=.*from=team(/|%2F)app 201' "$mark")" 3 \
  "the three layers were mounted from team/app, where the cache says they are"
# A changed file: its layer alone is built again.
cp -a "$TMP/ctx/amd64" "$TMP/ctx/amd64-changed"
echo "amd64 build, changed" >"$TMP/ctx/amd64-changed/VERSION"
run_ocisync build-push --base scratch \
  --platform "linux/amd64=$TMP/ctx/amd64-changed:/app" --platform "linux/arm64=$TMP/ctx/arm64:/app" \
  --layer "$TMP/ctx/common:/app" --tag "$REG_ADDR/team/again:2"
expect_success "a build with one changed file"
assert_contains "$OCISYNC_STDOUT" "3 new layers (2 from the cache" "only the changed layer was built again"
run_ocisync build-push --no-cache --base scratch --platform "linux/arm64=$TMP/ctx/arm64:/app" \
  --tag "$REG_ADDR/team/again:3"
expect_success "a build with --no-cache"
assert_contains "$OCISYNC_STDOUT" "1 new layer (0 from the cache" "--no-cache builds every layer"

# --- zstd ---------------------------------------------------------------------------------------
run_ocisync build-push --platform "linux/amd64=$TMP/ctx/amd64" --compression zstd \
  --entrypoint /bin/busybox --tag "$REG_ADDR/team/zstd:1"
expect_success "build-push with zstd layers"
skopeo_raw "$REG_ADDR/team/zstd:1" "$TMP/zindex.json"
child=$(index_children "$TMP/zindex.json" | head -n1 | cut -d' ' -f1)
skopeo_raw "$REG_ADDR/team/zstd@$child" "$TMP/zman.json"
assert_contains "$TMP/zman.json" "tar+zstd" "the layer is zstd"
podman_pull "$REG_ADDR/team/zstd:1" --platform linux/amd64
pass "podman pulls the zstd image"

# --- a multi-platform base on the same registry: its layers are mounted -------------------------
base=$(mkimage --out "$TMP/base" --platforms linux/amd64,linux/arm64 --layers 2 --layer-size 200000 --seed base --tag 1)
push_image "$TMP/base" "$REG_ADDR/lib/base:1"
mark=$(registry_log_mark reg)
run_ocisync build-push --base "$REG_ADDR/lib/base:1" \
  --platform "linux/amd64=$TMP/ctx/amd64:/app" --platform "linux/arm64=$TMP/ctx/arm64:/app" \
  --layer "$TMP/ctx/common:/srv" --tag "$REG_ADDR/team/onbase:1"
expect_success "build-push on a multi-platform base"
skopeo_raw "$REG_ADDR/team/onbase:1" "$TMP/bindex.json"
assert_contains "$TMP/bindex.json" "org.opencontainers.image.base.name" "the index names its base"
while read -r c plat; do
  skopeo_raw "$REG_ADDR/team/onbase@$c" "$TMP/bman.json"
  assert_eq "$(json_eval "$TMP/bman.json" 'len(d["layers"])')" 4 "$plat: 2 base layers + shared + own"
  assert_blobs_present "$REG_ADDR" team/onbase "$TMP/bman.json" "$plat"
  assert_contains "$TMP/bman.json" "org.opencontainers.image.base.digest" "$plat names its base digest"
done < <(index_children "$TMP/bindex.json")
base_layers=$(for c in $(index_children "$TMP/base/blobs/sha256/${base#sha256:}" | cut -d' ' -f1); do
  json_eval "$TMP/base/blobs/sha256/${c#sha256:}" '[l["digest"] for l in d["layers"]]'; done | sort -u | paste -sd'|')
assert_eq "$(registry_log_count reg "^GET /v2/lib/base/blobs/($base_layers) " "$mark")" 0 \
  "no base layer was downloaded"
[ "$(registry_log_count reg '^POST /v2/team/onbase/blobs/uploads/\?.*mount=' "$mark")" -gt 0 ] ||
  fail "the base layers were not mounted"
pass "the base layers were mounted from lib/base"
podman_pull "$REG_ADDR/team/onbase:1" --platform linux/arm64
assert_eq "$(podman_inspect "$REG_ADDR/team/onbase:1" '{{index .Labels "org.ocisync.test.platform"}}')" \
  linux/arm64 "the base's labels survive in the new config"

# --- a base on another registry: its layers are relayed once each, never stored -------------------
registry_start other
push_image "$TMP/base" "$OTHER_ADDR/lib/base:1"
mark_o=$(registry_log_mark other)
run_ocisync build-push --base "$OTHER_ADDR/lib/base:1" --platform "linux/amd64=$TMP/ctx/amd64:/app" \
  --tag "$REG_ADDR/team/relayed:1"
expect_success "build-push on a base from another registry"
skopeo_raw "$REG_ADDR/team/relayed:1" "$TMP/rindex.json"
rchild=$(index_children "$TMP/rindex.json" | cut -d' ' -f1)
skopeo_raw "$REG_ADDR/team/relayed@$rchild" "$TMP/rman.json"
assert_blobs_present "$REG_ADDR" team/relayed "$TMP/rman.json" "the image on a relayed base"
amd_layers=$(json_eval "$TMP/base/blobs/sha256/$(index_children "$TMP/base/blobs/sha256/${base#sha256:}" | grep amd64 | cut -d' ' -f1 | cut -d: -f2)" '[l["digest"] for l in d["layers"]]' | paste -sd'|')
for l in ${amd_layers//|/ }; do
  assert_eq "$(registry_log_count other "^GET /v2/lib/base/blobs/$l " "$mark_o")" 1 "base layer ${l:7:12} was fetched once"
done

# --- provenance from git --------------------------------------------------------------------------
git -C "$TMP/ctx" init -q && git -C "$TMP/ctx" -c user.email=t@example.com -c user.name=t commit -q --allow-empty -m init &&
  git -C "$TMP/ctx" remote add origin https://example.com/team/app.git || fail "git setup failed"
run_ocisync build-push --platform "linux/amd64=$TMP/ctx/amd64" --version 9.9.9 --tag "$REG_ADDR/team/git:1"
expect_success "build-push from a git checkout"
skopeo_raw "$REG_ADDR/team/git:1" "$TMP/gindex.json"
assert_eq "$(json_eval "$TMP/gindex.json" 'd["annotations"]["org.opencontainers.image.revision"]')" \
  "$(git -C "$TMP/ctx" rev-parse HEAD)" "revision from git"
assert_eq "$(json_eval "$TMP/gindex.json" 'd["annotations"]["org.opencontainers.image.source"]')" \
  https://example.com/team/app.git "source from the git remote"
assert_eq "$(json_eval "$TMP/gindex.json" 'd["annotations"]["org.opencontainers.image.version"]')" 9.9.9 "version from --version"
run_ocisync build-push --platform "linux/amd64=$TMP/ctx/amd64" --annotation org.opencontainers.image.base.name=evil \
  --tag "$REG_ADDR/team/git:2"
expect_failure 2 "an annotation that would override a computed one"
assert_contains "$OCISYNC_STDERR" "org.opencontainers.image.base.name" "the error names the annotation"

# --- build to a layout and an archive -----------------------------------------------------------
run_ocisync build --base "$REG_ADDR/lib/base:1" --platform "linux/amd64=$TMP/ctx/amd64:/app" \
  --output "oci:$TMP/out:1.0" --output "oci-archive:$TMP/out.tar:1.0"
expect_success "build into a layout and an archive"
skopeo inspect --raw "oci:$TMP/out:1.0" >/dev/null 2>&1 || fail "skopeo cannot read the layout"
skopeo inspect --raw "oci-archive:$TMP/out.tar:1.0" >/dev/null 2>&1 || fail "skopeo cannot read the archive"
pass "skopeo reads the layout and the archive"
umoci ls --layout "$TMP/out" >"$TMP/umoci.log" 2>&1 || fail "umoci ls failed: $(cat "$TMP/umoci.log")"
assert_contains "$TMP/umoci.log" "1.0" "umoci lists the built image"
skopeo copy -q "oci:$TMP/out:1.0" "oci:$TMP/skopeo-out:1.0" >"$TMP/skopeo-copy.log" 2>&1 ||
  fail "skopeo cannot copy the built layout: $(cat "$TMP/skopeo-copy.log")"
pass "skopeo copies the built layout (every blob present and valid)"
run_ocisync push "oci-archive:$TMP/out.tar:1.0" "docker://$REG_ADDR/team/pushed:1.0"
expect_success "push the archive later"
run_ocisync build --platform "linux/amd64=$TMP/ctx/amd64:/app" --entrypoint /app/bin/busybox \
  --output "docker-archive:$TMP/app-docker.tar:example.com/team/app:1.0"
expect_success "build into a docker archive"
podman_cmd load -i "$TMP/app-docker.tar" >"$TMP/load.log" 2>&1 || fail "podman load failed: $(tail -n 5 "$TMP/load.log")"
assert_contains "$TMP/load.log" "example.com/team/app:1.0" "podman load accepts the docker archive"
mnt=$(podman_cmd image mount example.com/team/app:1.0) || fail "podman image mount of the loaded image failed"
out=$(chroot "$mnt" /app/bin/busybox echo loaded 2>&1) || fail "chroot run failed: $out"
assert_eq "$out" loaded "the loaded image's entrypoint runs under chroot"

# --- trees as they are: every symlink stored verbatim, none followed ------------------------------
# The links real trees have (a busybox /bin/sh, Debian's alternatives, a
# venv's interpreter, a relative link that climbs out), named through a
# link to the directory (followed once, as docker follows its context).
mkdir -p "$TMP/links/tree/bin" "$TMP/links/tree/usr/bin" "$TMP/links/tree/venv/bin" "$TMP/links/outside"
echo "OUTSIDE-MARKER-$$-must-not-be-in-the-layer" >"$TMP/links/outside/secret"
ln -s /bin/busybox "$TMP/links/tree/bin/sh"
ln -s /etc/alternatives/vi "$TMP/links/tree/usr/bin/vi"
ln -s /usr/bin/python3 "$TMP/links/tree/venv/bin/python"
ln -s ../../../outside/secret "$TMP/links/tree/venv/bin/climb"
ln -s "$TMP/links/outside/secret" "$TMP/links/tree/abs"
ln -s "$TMP/links/outside" "$TMP/links/tree/outdir"
ln -s tree "$TMP/links/via"
run_ocisync build --platform "linux/amd64=$TMP/links/via:/" --output "oci:$TMP/links-oci:1"
expect_success "build a tree whose links point outside it"
(cd "$TMP" && umoci unpack --rootless --image links-oci:1 links/bundle >"$TMP/links/umoci.log" 2>&1) ||
  fail "umoci unpack failed: $(cat "$TMP/links/umoci.log")"
rootfs="$TMP/links/bundle/rootfs"
assert_eq "$(readlink "$rootfs/bin/sh")" /bin/busybox "bin/sh -> /bin/busybox kept"
assert_eq "$(readlink "$rootfs/usr/bin/vi")" /etc/alternatives/vi "usr/bin/vi -> /etc/alternatives/vi kept"
assert_eq "$(readlink "$rootfs/venv/bin/python")" /usr/bin/python3 "the venv's python link kept"
assert_eq "$(readlink "$rootfs/venv/bin/climb")" ../../../outside/secret "a relative link that climbs out kept"
assert_eq "$(readlink "$rootfs/abs")" "$TMP/links/outside/secret" "an absolute link to a real file kept"
[ -L "$rootfs/outdir" ] || fail "the link to a directory outside became something else"
pass "every link is a link in the image"
for blob in "$TMP"/links-oci/blobs/sha256/*; do
  if (gzip -dc "$blob" 2>/dev/null || cat "$blob") | grep -q "OUTSIDE-MARKER-$$"; then
    fail "the content a link points to entered a blob (${blob##*/})"
  fi
done
pass "no link's target content is in any blob"

# --- bad input ----------------------------------------------------------------------------------
mark=$(registry_log_mark reg)
run_ocisync build-push --platform "linux/amd64=$TMP/nosuch" --tag "$REG_ADDR/team/bad:1"
expect_failure 1 "a missing directory"
assert_contains "$OCISYNC_STDERR" "$TMP/nosuch" "the error names the directory"
run_ocisync build-push --platform "linux/amd64=$TMP/ctx/amd64:/../x" --tag "$REG_ADDR/team/bad:1"
expect_failure 2 "a destination with .."
assert_eq "$(registry_log_count reg '^PUT /v2/team/bad/manifests/' "$mark")" 0 "nothing was tagged for the failed builds"

done_ok
