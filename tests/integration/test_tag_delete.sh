#!/usr/bin/env bash
# ocisync tag and ocisync delete against real registries, skopeo reading
# what they left:
#   - tag points new tags (bare, or full references in the same repository)
#     at an image and at an index: skopeo reads the same digest under each,
#     and the registry saw manifest PUTs only, no blob upload;
#   - a second run changes nothing (HEADs only, no PUT), --json says so;
#   - bad input (a missing image, a tag in another repository, a malformed
#     tag) fails with a clear error and no manifest PUT;
#   - delete of a tag removes its manifest by digest (404 afterwards, other
#     tags of it too), delete by digest works, a second delete fails (404);
#   - a registry with deletes disabled answers 405 UNSUPPORTED: the error
#     says so, exit 1, and the image is still there.
. "$(dirname "$0")/lib.sh"

registry_start reg
registry_start nodel --no-delete

app=$(mkimage --out "$TMP/app" --platforms linux/amd64 --layers 2 --layer-size 20000 --seed tag-app --tag v1)
multi=$(mkimage --out "$TMP/multi" --platforms linux/amd64,linux/arm64/v8 --layers 1 --seed tag-multi --tag v1)
push_image "$TMP/app" "$REG_ADDR/lib/app:v1"
push_image "$TMP/multi" "$REG_ADDR/lib/multi:v1"
push_image "$TMP/app" "$NODEL_ADDR/lib/app:v1"

# no_manifest_put REGISTRY SINCE MSG
no_manifest_put() {
  assert_eq "$(registry_log_count "$1" '^PUT /v2/[^ ]*/manifests/' "$2")" 0 "$3: no manifest PUT"
}
# no_blob_writes REGISTRY SINCE MSG
no_blob_writes() {
  assert_eq "$(registry_log_count "$1" '^(POST|PATCH|PUT) /v2/[^ ]*/blobs/' "$2")" 0 "$3: no blob upload"
}

# --- tag ---------------------------------------------------------------------
mark=$(registry_log_mark reg)
run_ocisync tag "$REG_ADDR/lib/app:v1" v1.0 latest "$REG_ADDR/lib/app:stable"
expect_success "tag an image with a bare tag, latest and a full reference"
for t in v1.0 latest stable; do
  assert_eq "$(skopeo_digest "$REG_ADDR/lib/app:$t")" "$app" "skopeo reads the image under :$t"
done
assert_contains "$OCISYNC_STDOUT" "Tagged $app: v1.0" "the output names the digest and the tag"
assert_eq "$(registry_log_count reg '^PUT /v2/lib/app/manifests/(v1.0|latest|stable) 201$' "$mark")" 3 \
  "one manifest PUT per new tag"
no_blob_writes reg "$mark" "tag"

mark=$(registry_log_mark reg)
run_ocisync tag --json "docker://$REG_ADDR/lib/app:v1" v1.0 stable
expect_success "tag again with tags that already name the image"
assert_eq "$(json_eval "$OCISYNC_STDOUT" '[t["changed"] for t in d["tags"]]' | sort -u)" false \
  "--json: no tag changed"
assert_eq "$(json_eval "$OCISYNC_STDOUT" 'd["digest"]')" "$app" "--json: the image's digest"
no_manifest_put reg "$mark" "tag of tags already there"

mark=$(registry_log_mark reg)
run_ocisync tag "$REG_ADDR/lib/multi@$multi" v1-all
expect_success "tag an index by digest"
assert_eq "$(skopeo_digest "$REG_ADDR/lib/multi:v1-all")" "$multi" "skopeo reads the index under the new tag"
skopeo_raw "$REG_ADDR/lib/multi:v1-all" "$TMP/multi.json"
cmp -s "$TMP/multi.json" "$TMP/multi/blobs/sha256/${multi#sha256:}" || fail "the index's bytes changed"
pass "the index was written byte for byte"
no_blob_writes reg "$mark" "tag of an index"

# --- tag: bad input ------------------------------------------------------------
mark=$(registry_log_mark reg)
run_ocisync tag "$REG_ADDR/lib/app:nope" v9
expect_failure "tag of a missing image"
assert_eq "$OCISYNC_RC" 1 "a missing image exits 1"
assert_contains "$OCISYNC_STDERR" "lib/app:nope" "the error names the missing image"
assert_contains "$OCISYNC_STDERR" "404" "the error gives the registry's status"
assert_eq "$(tag_status "$REG_ADDR" lib/app v9)" 404 "no tag v9 appeared"

run_ocisync tag "$REG_ADDR/lib/app:v1" "$REG_ADDR/lib/other:v1"
expect_failure "tag into another repository"
assert_eq "$OCISYNC_RC" 2 "another repository is a usage error"
assert_contains "$OCISYNC_STDERR" "another repository" "the error says why"

run_ocisync tag "$REG_ADDR/lib/app:v1" 'bad tag!'
expect_failure "a malformed tag"
assert_eq "$OCISYNC_RC" 2 "a malformed tag is a usage error"

run_ocisync tag "$REG_ADDR/lib/app:v1"
expect_failure "tag without a new tag"
assert_eq "$OCISYNC_RC" 2 "no new tag: usage"
no_manifest_put reg "$mark" "bad tag input"

# --- delete ---------------------------------------------------------------------
mark=$(registry_log_mark reg)
run_ocisync delete "$REG_ADDR/lib/app:v1.0"
expect_success "delete by tag"
assert_contains "$OCISYNC_STDOUT" "Deleted $app" "the output names the digest deleted"
assert_eq "$(registry_log_count reg "^DELETE /v2/lib/app/manifests/$app 202\$" "$mark")" 1 \
  "one DELETE, by digest"
assert_eq "$(tag_status "$REG_ADDR" lib/app "$app")" 404 "the manifest is gone (404 by digest)"
for t in v1 v1.0 latest stable; do
  assert_eq "$(tag_status "$REG_ADDR" lib/app "$t")" 404 "its tag :$t is gone too"
done

run_ocisync delete "$REG_ADDR/lib/app@$app"
expect_failure "delete of a manifest already deleted"
assert_eq "$OCISYNC_RC" 1 "an absent manifest exits 1"
assert_contains "$OCISYNC_STDERR" "404" "the error gives the status"

run_ocisync delete --json "$REG_ADDR/lib/multi@$multi"
expect_success "delete by digest (an index)"
assert_eq "$(json_eval "$OCISYNC_STDOUT" 'd["digest"]')" "$multi" "--json names the digest"
assert_eq "$(tag_status "$REG_ADDR" lib/multi v1)" 404 "the index is gone"

run_ocisync delete "$REG_ADDR/lib/app"
expect_failure "delete of a tag that does not exist (latest)"
assert_eq "$OCISYNC_RC" 1 "exit 1"

# --- delete on a registry that refuses ----------------------------------------
mark=$(registry_log_mark nodel)
run_ocisync delete "$NODEL_ADDR/lib/app:v1"
expect_failure "delete on a registry with deletes disabled"
assert_eq "$OCISYNC_RC" 1 "a refused delete exits 1"
assert_contains "$OCISYNC_STDERR" "UNSUPPORTED" "the error quotes the registry's code"
assert_contains "$OCISYNC_STDERR" "405" "the error gives the status"
assert_contains "$OCISYNC_STDERR" "does not allow deleting" "the error says deletes are off"
assert_eq "$(skopeo_digest "$NODEL_ADDR/lib/app:v1")" "$app" "the image is still there"
assert_eq "$(registry_log_count nodel '^DELETE ' "$mark")" 1 "one DELETE was tried"
no_manifest_put nodel "$mark" "refused delete"

run_ocisync delete --help
expect_success "delete --help"
run_ocisync delete
assert_eq "$OCISYNC_RC" 2 "delete without a reference: usage"

done_ok
