#!/usr/bin/env bash
# ocisync index create / append against real registries, skopeo and podman
# reading what they left:
#   - two single-platform images from two repositories become one OCI index
#     under two tags: skopeo --raw shows the platforms (read from the
#     configs) and the children by their digests, podman pulls each
#     platform, and within one registry every blob was mounted, not sent;
#   - a source on another registry (blobs relayed), a Docker schema 2 child
#     (its media type kept) and an index as a source (its children join);
#   - two images of one platform: an error that names both, nothing
#     written, unless --replace (the later wins);
#   - append keeps the index's children and annotations and adds the new
#     ones, --replace replaces a platform in place;
#   - a child that cannot be copied (its source lost a layer): no index is
#     pushed, no tag changes;
#   - bad input (an unknown source, append to a missing tag) fails with a
#     clear error and no manifest PUT.
. "$(dirname "$0")/lib.sh"

registry_start reg
registry_start other

amd=$(mkimage --out "$TMP/amd" --platforms linux/amd64 --layers 2 --layer-size 20000 --seed ix-amd --tag v1)
arm=$(mkimage --out "$TMP/arm" --platforms linux/arm64/v8 --layers 2 --layer-size 20000 --seed ix-arm --tag v1)
amd2=$(mkimage --out "$TMP/amd2" --platforms linux/amd64 --layers 1 --seed ix-amd2 --tag v1)
armv7=$(mkimage --out "$TMP/armv7" --platforms linux/arm/v7 --layers 2 --layer-size 30000 --seed ix-armv7 --tag v1)
s390x=$(mkimage --out "$TMP/s390x" --platforms linux/s390x --layers 1 --seed ix-s390x --docker --tag v1)
multi=$(mkimage --out "$TMP/multi" --platforms linux/ppc64le,linux/riscv64 --layers 1 --seed ix-multi --tag v1)
push_image "$TMP/amd" "$REG_ADDR/team/amd:v1"
push_image "$TMP/arm" "$REG_ADDR/team/arm:v1"
push_image "$TMP/amd2" "$REG_ADDR/team/amd2:v1"
push_image "$TMP/s390x" "$REG_ADDR/team/s390x:v1"
push_image "$TMP/multi" "$REG_ADDR/team/multi:v1"
push_image "$TMP/armv7" "$OTHER_ADDR/lib/armv7:v1"

OCI_INDEX=application/vnd.oci.image.index.v1+json
# children REF: "DIGEST os/arch[/variant]" per child of the index at REF.
children() {
  skopeo_raw "$1" "$TMP/children.json"
  index_children "$TMP/children.json"
}
no_manifest_put() {
  assert_eq "$(registry_log_count "$1" '^PUT /v2/[^ ]*/manifests/' "$2")" 0 "$3: no manifest PUT"
}

# --- create, within one registry ------------------------------------------------
mark=$(registry_log_mark reg)
run_ocisync index create --tag "$REG_ADDR/lib/app:v1" --tag "$REG_ADDR/lib/app:latest" \
  --annotation org.example.note=joined "$REG_ADDR/team/amd:v1" "docker://$REG_ADDR/team/arm:v1"
expect_success "index create of two images from two repositories"
want=$(printf '%s linux/amd64\n%s linux/arm64/v8' "$amd" "$arm")
assert_eq "$(children "$REG_ADDR/lib/app:v1")" "$want" "skopeo: the children, by digest, with their platforms"
skopeo_raw "$REG_ADDR/lib/app:v1" "$TMP/app.json"
assert_eq "$(json_eval "$TMP/app.json" 'd["mediaType"]')" "$OCI_INDEX" "an OCI index"
assert_eq "$(json_eval "$TMP/app.json" 'd["annotations"]["org.example.note"]')" joined "the annotation is on the index"
idx=$(file_digest "$TMP/app.json")
assert_eq "$(skopeo_digest "$REG_ADDR/lib/app:latest")" "$idx" "both tags name the index"
assert_contains "$OCISYNC_STDOUT" "Index $idx" "the output names the index's digest"
for d in "$amd" "$arm"; do
  assert_eq "$(skopeo_digest "$REG_ADDR/lib/app@$d")" "$d" "child $d is in lib/app"
  skopeo_raw "$REG_ADDR/lib/app@$d" "$TMP/child.json"
  assert_blobs_present "$REG_ADDR" lib/app "$TMP/child.json"
done
assert_eq "$(registry_log_count reg '^(PATCH|PUT) /v2/lib/app/blobs/uploads/' "$mark")" 0 \
  "no blob uploaded within the registry"
assert_ne "$(registry_log_count reg '^POST /v2/lib/app/blobs/uploads/.*mount=.* 201$' "$mark")" 0 \
  "the blobs were mounted"
podman_pull "$REG_ADDR/lib/app:v1" --arch amd64
assert_eq "$(podman_inspect "$REG_ADDR/lib/app:v1" '{{index .Labels "org.ocisync.test.platform"}}')" \
  linux/amd64 "podman --arch amd64 gets the amd64 image"
podman_cmd rmi -f "$REG_ADDR/lib/app:v1" >/dev/null 2>&1 || true
podman_pull "$REG_ADDR/lib/app:v1" --arch arm64
assert_eq "$(podman_inspect "$REG_ADDR/lib/app:v1" '{{index .Labels "org.ocisync.test.platform"}}')" \
  linux/arm64/v8 "podman --arch arm64 gets the arm64 image"

mark=$(registry_log_mark reg)
run_ocisync index create --json --tag "$REG_ADDR/lib/app:v1" "$REG_ADDR/team/amd:v1" \
  "$REG_ADDR/team/arm:v1" --annotation org.example.note=joined
expect_success "the same index created again"
assert_eq "$(json_eval "$OCISYNC_STDOUT" 'd["digest"]')" "$idx" "--json: the same digest"
assert_eq "$(json_eval "$OCISYNC_STDOUT" '[m["platform"] for m in d["manifests"]]' | tr '\n' ' ')" \
  "linux/amd64 linux/arm64/v8 " "--json: the platforms"
no_manifest_put reg "$mark" "an index already there"

# --- another registry, a Docker child, an index as a source -------------------
mark=$(registry_log_mark reg)
run_ocisync index create --tag "$REG_ADDR/lib/mixed:v1" "$REG_ADDR/team/amd:v1" \
  "$OTHER_ADDR/lib/armv7:v1" "$REG_ADDR/team/s390x:v1" "$REG_ADDR/team/multi:v1"
expect_success "index create from two registries, a Docker image and an index"
skopeo_raw "$REG_ADDR/team/multi:v1" "$TMP/multi.json"
mchildren=$(index_children "$TMP/multi.json")
want=$(printf '%s linux/amd64\n%s linux/arm/v7\n%s linux/s390x\n%s' "$amd" "$armv7" "$s390x" "$mchildren")
assert_eq "$(children "$REG_ADDR/lib/mixed:v1")" "$want" "skopeo: five children in order"
skopeo_raw "$REG_ADDR/lib/mixed:v1" "$TMP/mixed.json"
assert_eq "$(json_eval "$TMP/mixed.json" '[m["mediaType"] for m in d["manifests"]][2]')" \
  application/vnd.docker.distribution.manifest.v2+json "the Docker child keeps its media type"
skopeo_raw "$REG_ADDR/lib/mixed@$armv7" "$TMP/armv7.json"
assert_blobs_present "$REG_ADDR" lib/mixed "$TMP/armv7.json" "the arm/v7 child from the other registry"
assert_ne "$(registry_log_count reg '^(PUT|PATCH) /v2/lib/mixed/blobs/uploads/' "$mark")" 0 \
  "the other registry's blobs were uploaded (relayed)"
podman_pull "$REG_ADDR/lib/mixed:v1" --arch arm --variant v7
assert_eq "$(podman_inspect "$REG_ADDR/lib/mixed:v1" '{{index .Labels "org.ocisync.test.platform"}}')" \
  linux/arm/v7 "podman --arch arm --variant v7 gets the relayed image"

# --- duplicate platforms ---------------------------------------------------------
mark=$(registry_log_mark reg)
run_ocisync index create --tag "$REG_ADDR/lib/dup:v1" "$REG_ADDR/team/amd:v1" "$REG_ADDR/team/amd2:v1"
expect_failure "two images for linux/amd64"
assert_eq "$OCISYNC_RC" 2 "a duplicate platform exits 2"
assert_contains "$OCISYNC_STDERR" "platform linux/amd64 is given twice" "the error names the platform"
assert_contains "$OCISYNC_STDERR" "team/amd2:v1" "the error names the later source"
assert_contains "$OCISYNC_STDERR" "--replace" "the error says how to keep the later one"
assert_eq "$(tag_status "$REG_ADDR" lib/dup v1)" 404 "no index was tagged"
no_manifest_put reg "$mark" "duplicate platform"
assert_eq "$(registry_log_count reg '^(POST|PUT|PATCH) ' "$mark")" 0 "nothing at all was written"

run_ocisync index create --replace --tag "$REG_ADDR/lib/dup:v1" "$REG_ADDR/team/amd:v1" \
  "$REG_ADDR/team/arm:v1" "$REG_ADDR/team/amd2:v1"
expect_success "--replace: the later linux/amd64 wins"
want=$(printf '%s linux/amd64\n%s linux/arm64/v8' "$amd2" "$arm")
assert_eq "$(children "$REG_ADDR/lib/dup:v1")" "$want" "the amd64 entry is team/amd2's, in the first place"

# --- append -----------------------------------------------------------------------
run_ocisync index append --tag "$REG_ADDR/lib/app:v1" "$OTHER_ADDR/lib/armv7:v1"
expect_success "append an image from another registry"
want=$(printf '%s linux/amd64\n%s linux/arm64/v8\n%s linux/arm/v7' "$amd" "$arm" "$armv7")
assert_eq "$(children "$REG_ADDR/lib/app:v1")" "$want" "the index's children are kept, the new one last"
skopeo_raw "$REG_ADDR/lib/app:v1" "$TMP/app2.json"
assert_eq "$(json_eval "$TMP/app2.json" 'd["annotations"]["org.example.note"]')" joined "its annotations are kept"
assert_eq "$(skopeo_digest "$REG_ADDR/lib/app:latest")" "$idx" "the other tag was left alone"

mark=$(registry_log_mark reg)
run_ocisync index append --tag "$REG_ADDR/lib/app:v1" "$REG_ADDR/team/amd2:v1"
expect_failure "append of a platform the index has"
assert_contains "$OCISYNC_STDERR" "given twice" "the error says the platform is there"
no_manifest_put reg "$mark" "append of a duplicate"

run_ocisync index append --replace --tag "$REG_ADDR/lib/app:v1" "$REG_ADDR/team/amd2:v1"
expect_success "append --replace"
want=$(printf '%s linux/amd64\n%s linux/arm64/v8\n%s linux/arm/v7' "$amd2" "$arm" "$armv7")
assert_eq "$(children "$REG_ADDR/lib/app:v1")" "$want" "linux/amd64 replaced in place"

# --- a child that cannot be copied: no index tag ------------------------------------
broken=$(mkimage --out "$TMP/broken" --platforms linux/mips64le --layers 2 --layer-size 20000 --seed ix-broken --tag v1)
push_image "$TMP/broken" "$OTHER_ADDR/lib/broken:v1"
layer=$(json_eval "$TMP/broken/blobs/sha256/${broken#sha256:}" 'd["layers"][1]["digest"]')
hex=${layer#sha256:}
rm -f "$TMP/other/data/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
mark=$(registry_log_mark reg)
run_ocisync index create --retry-times 1 --retry-delay 0.1 --tag "$REG_ADDR/lib/half:v1" \
  "$REG_ADDR/team/amd:v1" "$OTHER_ADDR/lib/broken:v1"
expect_failure "a child whose layer the source lost"
assert_eq "$OCISYNC_RC" 1 "a failed child copy exits 1"
assert_contains "$OCISYNC_STDERR" "lib/broken@$broken" "the error names the child"
assert_eq "$(tag_status "$REG_ADDR" lib/half v1)" 404 "no index was tagged"
assert_eq "$(registry_log_count reg '^PUT /v2/lib/half/manifests/v1 ' "$mark")" 0 "the index was never PUT"
assert_eq "$(tag_status "$REG_ADDR" lib/half "$broken")" 404 "the broken child is not in lib/half"

# --- bad input ------------------------------------------------------------------------
mark=$(registry_log_mark reg)
run_ocisync index create --tag "$REG_ADDR/lib/bad:v1" "$REG_ADDR/team/amd:v1" "$REG_ADDR/team/nope:v1"
expect_failure "an unknown source"
assert_eq "$OCISYNC_RC" 1 "an unknown source exits 1"
assert_contains "$OCISYNC_STDERR" "team/nope:v1" "the error names the unknown source"
assert_contains "$OCISYNC_STDERR" "404" "the error gives the registry's status"
assert_eq "$(tag_status "$REG_ADDR" lib/bad v1)" 404 "no index was tagged"

run_ocisync index append --tag "$REG_ADDR/lib/none:v1" "$REG_ADDR/team/amd:v1"
expect_failure "append to a tag that does not exist"
assert_contains "$OCISYNC_STDERR" "nothing to append to" "the error says so"

run_ocisync index create "$REG_ADDR/team/amd:v1"
assert_eq "$OCISYNC_RC" 2 "create without --tag: usage"
run_ocisync index create --tag "$REG_ADDR/lib/bad@$amd" "$REG_ADDR/team/amd:v1"
assert_eq "$OCISYNC_RC" 2 "a digest as --tag: usage"
run_ocisync index create --tag "$REG_ADDR/lib/bad:v1" --annotation novalue "$REG_ADDR/team/amd:v1"
assert_eq "$OCISYNC_RC" 2 "an annotation without '=': usage"
run_ocisync index frob
assert_eq "$OCISYNC_RC" 2 "an unknown subcommand: usage"
no_manifest_put reg "$mark" "bad input"

done_ok
