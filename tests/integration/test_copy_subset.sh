#!/usr/bin/env bash
# --platform copies only the platforms asked for: the destination gets a new
# index (new digest) listing exactly those children, in the source's order,
# each child byte for byte the source's, and no blob of the other
# platforms.
. "$(dirname "$0")/lib.sh"

registry_start src
registry_start dst

src_index=$(mkimage --out "$TMP/img" --platforms linux/amd64,linux/arm64/v8,linux/arm/v7 \
  --layers 2 --shared-layers 1 --layer-size 30000 --seed subset --tag v1)
push_image "$TMP/img" "$SRC_ADDR/lib/subset:v1"

index_children "$TMP/img/blobs/sha256/${src_index#sha256:}" >"$TMP/src-children"
child_of() { awk -v p="$1" '$2 == p { print $1 }' "$TMP/src-children"; }
amd64=$(child_of linux/amd64)
arm64=$(child_of linux/arm64/v8)
armv7=$(child_of linux/arm/v7)
# unique_layer DIGEST: the layer only that platform has (layers[1]).
unique_layer() { json_eval "$TMP/img/blobs/sha256/${1#sha256:}" 'd["layers"][1]["digest"]'; }

# check_subset REPO TAG CHILD...: REPO:TAG is an OCI index listing exactly
# the CHILD digests, in that order, each with its source platform.
check_subset() {
  local repo=$1 tag=$2 got
  shift 2
  got=$(skopeo_digest "$DST_ADDR/$repo:$tag")
  assert_ne "$got" "$src_index" "$repo:$tag is a new index (digest differs from the source's)"
  skopeo_raw "$DST_ADDR/$repo:$tag" "$TMP/dst-index.json"
  assert_eq "$(json_eval "$TMP/dst-index.json" 'd.get("mediaType", "")')" \
    application/vnd.oci.image.index.v1+json "$repo:$tag media type"
  assert_eq "$(json_eval "$TMP/dst-index.json" 'd["schemaVersion"]')" 2 "$repo:$tag schemaVersion"
  index_children "$TMP/dst-index.json" >"$TMP/dst-children"
  local want_list="" c
  for c in "$@"; do
    want_list+="$c $(awk -v d="$c" '$1 == d { print $2 }' "$TMP/src-children")"$'\n'
  done
  assert_eq "$(cat "$TMP/dst-children")" "${want_list%$'\n'}" \
    "$repo:$tag lists exactly $# child(ren) with the source's digests and platforms"
  for c in "$@"; do
    assert_eq "$(skopeo_digest "$DST_ADDR/$repo@$c")" "$c" "$repo: child ${c:0:19}... fetched by digest"
    skopeo_raw "$DST_ADDR/$repo@$c" "$TMP/child.json"
    assert_blobs_present "$DST_ADDR" "$repo" "$TMP/child.json" "child ${c:0:19}..."
  done
}

run_ocisync copy --platform linux/arm64/v8 --digestfile "$TMP/digest" \
  "docker://$SRC_ADDR/lib/subset:v1" "docker://$DST_ADDR/lib/arm64:v1"
expect_success "copy --platform linux/arm64/v8"
check_subset lib/arm64 v1 "$arm64"
assert_eq "$(tr -d '[:space:]' <"$TMP/digest")" "$(skopeo_digest "$DST_ADDR/lib/arm64:v1")" \
  "--digestfile holds the new index's digest"
for other in "$amd64" "$armv7"; do
  d=$(unique_layer "$other")
  assert_eq "$(blob_status "$DST_ADDR" lib/arm64 "$d")" 404 \
    "layer ${d:0:19}... of another platform was not copied"
done
assert_eq "$(registry_log_count dst "^PUT /v2/lib/arm64/manifests/($amd64|$armv7) ")" 0 \
  "no manifest of another platform was pushed"

podman_pull "$DST_ADDR/lib/arm64:v1" --platform linux/arm64/v8
assert_eq "$(podman_inspect "$DST_ADDR/lib/arm64:v1" '{{index .Labels "org.ocisync.test.platform"}}')" \
  linux/arm64/v8 "podman pulled the arm64/v8 image from the new index"

run_ocisync copy --platform linux/amd64 --platform linux/arm/v7 \
  "docker://$SRC_ADDR/lib/subset:v1" "docker://$DST_ADDR/lib/two:v1"
expect_success "copy --platform linux/amd64 --platform linux/arm/v7"
check_subset lib/two v1 "$amd64" "$armv7"
d=$(unique_layer "$arm64")
assert_eq "$(blob_status "$DST_ADDR" lib/two "$d")" 404 "arm64's own layer was not copied to lib/two"

done_ok
