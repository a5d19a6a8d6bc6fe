#!/usr/bin/env bash
# A copy to another repository of the same registry mounts every blob
# (POST /v2/<dst>/blobs/uploads/?mount=<digest>&from=<src>, answered 201)
# instead of uploading it: no PATCH or PUT of blob data, no layer
# downloaded, and the result is byte for byte the source and pullable.
. "$(dirname "$0")/lib.sh"

registry_start reg

want=$(mkimage --out "$TMP/img" --platforms linux/amd64,linux/arm64/v8 \
  --layers 2 --shared-layers 1 --layer-size 40000 --seed mount --tag v1)
push_image "$TMP/img" "$REG_ADDR/src/app:v1"

index_children "$TMP/img/blobs/sha256/${want#sha256:}" >"$TMP/children"
mapfile -t all_blobs < <(while read -r c _; do
  manifest_blobs "$TMP/img/blobs/sha256/${c#sha256:}"
done <"$TMP/children" | sort -u)
mapfile -t all_layers < <(while read -r c _; do
  json_eval "$TMP/img/blobs/sha256/${c#sha256:}" '[l["digest"] for l in d["layers"]]'
done <"$TMP/children" | sort -u)
[ "${#all_blobs[@]}" -eq 5 ] || fail "generator: expected 5 distinct blobs, got ${#all_blobs[@]}"

mark=$(registry_log_mark reg)
run_ocisync copy "docker://$REG_ADDR/src/app:v1" "docker://$REG_ADDR/dst/app:v1"
expect_success "copy to another repository of the same registry"
assert_eq "$(skopeo_digest "$REG_ADDR/dst/app:v1")" "$want" "destination digest equals source"

registry_log_sync reg
registry_requests reg "$mark" >"$TMP/requests"
grep -E '^POST /v2/dst/app/blobs/uploads/' "$TMP/requests" >"$TMP/posts" || true
[ -s "$TMP/posts" ] || fail "no POST /v2/dst/app/blobs/uploads/ at all: blobs neither mounted nor uploaded?"
assert_eq "$(grep -cvE '[?&]mount=sha256:[0-9a-f]{64}(&| )' "$TMP/posts" || true)" 0 \
  "every POST to dst/app/blobs/uploads/ asks for a mount"
assert_eq "$(grep -cvE '[?&]from=src/app(&| )' "$TMP/posts" || true)" 0 "every mount names from=src/app"
assert_eq "$(grep -cvE ' 201$' "$TMP/posts" || true)" 0 "every mount was answered 201 Created"
assert_eq "$(sed -nE 's#.*[?&]mount=(sha256:[0-9a-f]{64}).* 201$#\1#p' "$TMP/posts" | sort -u | tr '\n' ' ')" \
  "$(printf '%s ' "${all_blobs[@]}")" "all ${#all_blobs[@]} distinct blobs (configs and layers) were mounted"
assert_eq "$(grep -cE '^PATCH /v2/dst/app/blobs/uploads/' "$TMP/requests" || true)" 0 \
  "no PATCH of blob data to dst/app"
assert_eq "$(grep -cE '^PUT /v2/dst/app/blobs/uploads/' "$TMP/requests" || true)" 0 \
  "no PUT completing a blob upload to dst/app"
layer_re=$(printf '%s\n' "${all_layers[@]}" | paste -sd'|')
assert_eq "$(grep -cE "^GET /v2/src/app/blobs/($layer_re) " "$TMP/requests" || true)" 0 \
  "no layer was downloaded from src/app"

while read -r c plat; do
  skopeo_raw "$REG_ADDR/dst/app@$c" "$TMP/child.json"
  assert_blobs_present "$REG_ADDR" dst/app "$TMP/child.json" "child $plat"
done <"$TMP/children"

podman_pull "$REG_ADDR/dst/app:v1" --platform linux/arm64/v8
assert_eq "$(podman_inspect "$REG_ADDR/dst/app:v1" '{{index .Labels "org.ocisync.test.platform"}}')" \
  linux/arm64/v8 "podman pulled the arm64/v8 image of the mounted copy"
assert_eq "$(podman_rootfs_sums "$REG_ADDR/dst/app:v1" | wc -l | tr -d ' ')" 4 \
  "podman unpacked both layers (4 files)"

done_ok
