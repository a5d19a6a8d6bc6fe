#!/usr/bin/env bash
# Multi-platform images (an OCI index with three platforms, and a Docker
# manifest list) are copied whole by default and with --all: the index and
# every child manifest keep their bytes and digests, every blob arrives,
# layers shared between platforms are uploaded once, and podman pulls the
# arm64 child by platform.
. "$(dirname "$0")/lib.sh"

registry_start src
registry_start dst

oci=$(mkimage --out "$TMP/oci" --platforms linux/amd64,linux/arm64/v8,linux/arm/v7 \
  --layers 3 --shared-layers 2 --layer-size 50000 --seed multi --tag v1)
docker=$(mkimage --out "$TMP/docker" --platforms linux/amd64,linux/arm64/v8 \
  --layers 2 --shared-layers 1 --layer-size 20000 --seed multi-docker --docker)
push_image "$TMP/oci" "$SRC_ADDR/lib/multi:v1"
push_image "$TMP/docker" "$SRC_ADDR/lib/multi-docker:v1"

# check_index_copy REPO TAG DIGEST NCHILDREN MEDIATYPE
check_index_copy() {
  local repo=$1 tag=$2 want=$3 n=$4 mt=$5 child plat got
  assert_eq "$(skopeo_digest "$DST_ADDR/$repo:$tag")" "$want" "$repo: index digest equals source"
  skopeo_raw "$SRC_ADDR/$repo:$tag" "$TMP/src-index.json"
  skopeo_raw "$DST_ADDR/$repo:$tag" "$TMP/dst-index.json"
  cmp -s "$TMP/src-index.json" "$TMP/dst-index.json" || fail "$repo: index bytes differ"
  assert_eq "$(json_eval "$TMP/dst-index.json" 'd["mediaType"]')" "$mt" "$repo: index media type"
  index_children "$TMP/dst-index.json" >"$TMP/children"
  assert_eq "$(wc -l <"$TMP/children" | tr -d ' ')" "$n" "$repo: children listed"
  while read -r child plat; do
    got=$(skopeo_digest "$DST_ADDR/$repo@$child")
    assert_eq "$got" "$child" "$repo: child $plat fetched by digest from destination"
    assert_eq "$(skopeo_digest "$SRC_ADDR/$repo@$child")" "$child" "$repo: child $plat same at source"
    skopeo_raw "$DST_ADDR/$repo@$child" "$TMP/child.json"
    assert_blobs_present "$DST_ADDR" "$repo" "$TMP/child.json" "child $plat"
  done <"$TMP/children"
}

run_ocisync copy "docker://$SRC_ADDR/lib/multi:v1" "docker://$DST_ADDR/lib/multi:v1"
expect_success "copy of a 3-platform OCI index without flags"
check_index_copy lib/multi v1 "$oci" 3 application/vnd.oci.image.index.v1+json

run_ocisync copy --all --digestfile "$TMP/digest" \
  "docker://$SRC_ADDR/lib/multi-docker:v1" "docker://$DST_ADDR/lib/multi-docker:v1"
expect_success "copy --all of a 2-platform Docker manifest list"
check_index_copy lib/multi-docker v1 "$docker" 2 \
  application/vnd.docker.distribution.manifest.list.v2+json
assert_eq "$(tr -d '[:space:]' <"$TMP/digest")" "$docker" "--digestfile holds the index digest"

# The two layers every platform of lib/multi shares reached the
# destination once each: one completed upload (PUT or monolithic POST with
# ?digest=, answered 201) per shared blob, however many children use it.
amd64=$(index_children "$TMP/oci/blobs/sha256/${oci#sha256:}" | awk '$2 == "linux/amd64" { print $1 }')
[ -n "$amd64" ] || fail "no linux/amd64 child in the generated index"
for d in $(json_eval "$TMP/oci/blobs/sha256/${amd64#sha256:}" '[l["digest"] for l in d["layers"][:2]]'); do
  n=$(registry_log_count dst "^(PUT|POST) /v2/lib/multi/blobs/uploads/[^ ]*[?&]digest=$d 201$")
  assert_eq "$n" 1 "shared layer ${d:0:19}... uploaded once to the destination"
done

podman_pull "$DST_ADDR/lib/multi:v1" --platform linux/arm64/v8
assert_eq "$(podman_inspect "$DST_ADDR/lib/multi:v1" '{{.Os}}/{{.Architecture}}')" linux/arm64 \
  "podman pulled the arm64 child"
assert_eq "$(podman_inspect "$DST_ADDR/lib/multi:v1" '{{index .Labels "org.ocisync.test.platform"}}')" \
  linux/arm64/v8 "the pulled config is the arm64/v8 one"
assert_eq "$(podman_rootfs_sums "$DST_ADDR/lib/multi:v1" | wc -l | tr -d ' ')" 6 \
  "podman unpacked all 3 layers (6 files)"

podman_pull "$DST_ADDR/lib/multi-docker:v1" --arch amd64
assert_eq "$(podman_inspect "$DST_ADDR/lib/multi-docker:v1" '{{index .Labels "org.ocisync.test.platform"}}')" \
  linux/amd64 "podman pulled the amd64 child of the Docker list"

done_ok
