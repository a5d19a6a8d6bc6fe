#!/usr/bin/env bash
# build-push to several repositories and tags of one registry (issue 18),
# counted in the registry's access log:
#   - the new layer is streamed to the first repository while it builds and
#     committed there once; every other repository mounts it from there (no
#     PATCH, no PUT of its bytes); a second tag of a repository already
#     pushed costs no blob request at all;
#   - the same input built again without the cache: the layer streams, but a
#     HEAD once its digest is known finds it at the registry, so it is not
#     committed a second time (no PUT ?digest= of it), and the other
#     repository still mounts it;
#   - the same with --chunk-size (the dropped upload is deleted when no chunk
#     was on its way, else left to the registry's purge).
# Every tag is read back with skopeo.
. "$(dirname "$0")/lib.sh"

registry_start reg
export SOURCE_DATE_EPOCH=1700000000

mkdir -p "$TMP/ctx/data"
head -c 6000000 /dev/urandom >"$TMP/ctx/data/big.bin"
echo hello >"$TMP/ctx/data/small.txt"

# requests_since MARK: the registry's requests after MARK, "METHOD URI STATUS" a line.
requests_since() {
  registry_log_sync reg
  registry_requests reg "$1"
}

# count PATTERN FILE: lines of FILE matching the extended regex PATTERN.
count() {
  grep -cE -- "$1" "$2" || true
}

# --- first push: one commit, mounts everywhere else --------------------------------------------
mark=$(registry_log_mark reg)
run_ocisync build-push --base scratch --platform "linux/amd64=$TMP/ctx:/" \
  --tag "$REG_ADDR/a/app:1" --tag "$REG_ADDR/b/app:1" --tag "$REG_ADDR/c/app:1" \
  --tag "$REG_ADDR/a/app:2"
expect_success "build-push to three repositories, four tags"
assert_contains "$OCISYNC_STDOUT" "(1 while building)" "the layer went up while it was built"
requests_since "$mark" >"$TMP/req1"
digest=$(skopeo_digest "$REG_ADDR/a/app:1")
for t in b/app:1 c/app:1 a/app:2; do
  assert_eq "$(skopeo_digest "$REG_ADDR/$t")" "$digest" "$t names the image"
done
skopeo_raw "$REG_ADDR/a/app@$digest" "$TMP/index.json"
child=$(json_eval "$TMP/index.json" 'd["manifests"][0]["digest"]')
skopeo_raw "$REG_ADDR/a/app@$child" "$TMP/manifest.json"
layer=$(json_eval "$TMP/manifest.json" 'd["layers"][0]["digest"]')
for r in a/app b/app c/app; do
  assert_blobs_present "$REG_ADDR" "$r" "$TMP/manifest.json" "$r"
done
assert_eq "$(count "^PUT /v2/[^ ]*/blobs/uploads/.*digest=$layer 201" "$TMP/req1")" 1 \
  "the layer was committed once in all"
assert_eq "$(count "^PUT /v2/a/app/blobs/uploads/.*digest=$layer 201" "$TMP/req1")" 1 \
  "... in a/app, the repository it streamed to"
assert_eq "$(count "^PATCH /v2/a/app/blobs/uploads/" "$TMP/req1")" 1 "one streamed PATCH to a/app"
for r in b/app c/app; do
  assert_eq "$(count "^PATCH /v2/$r/" "$TMP/req1")" 0 "$r: no PATCH"
  assert_eq "$(count "^(PATCH|PUT) /v2/$r/blobs/uploads/.*$layer" "$TMP/req1")" 0 \
    "$r: the layer's bytes were not sent"
  grep -E "^POST /v2/$r/blobs/uploads/" "$TMP/req1" | grep -F "mount=$layer" >"$TMP/mounts" || true
  assert_eq "$(count ' 201$' "$TMP/mounts")" 1 "$r mounted the layer once"
done
# The second tag of a/app came after a/app held the image: its tag, and no blob request.
assert_eq "$(count "^PUT /v2/a/app/manifests/2 201" "$TMP/req1")" 1 "a/app:2 was tagged"
first=$(grep -nE "^PUT /v2/a/app/manifests/1 201" "$TMP/req1" | cut -d: -f1)
second=$(grep -nE "^HEAD /v2/a/app/manifests/2 " "$TMP/req1" | head -n 1 | cut -d: -f1)
[ -n "$first" ] && [ -n "$second" ] && [ "$second" -gt "$first" ] ||
  fail "a/app:2 was looked at (line ${second:-none}) before a/app:1 was pushed (line ${first:-none})"
pass "a/app:2 started once a/app:1 was pushed"
assert_eq "$(tail -n +"$second" "$TMP/req1" | grep -cE "^[A-Z]+ /v2/a/app/blobs/" || true)" 0 \
  "a/app:2 cost no blob request"
assert_eq "$(count "^PUT /v2/a/app/manifests/sha256:" "$TMP/req1")" 1 \
  "the manifest went to a/app once, not once per tag"

# --- the same input again, no cache: found at the registry, not committed again ----------------------
mark=$(registry_log_mark reg)
run_ocisync build-push --debug --no-cache --base scratch --platform "linux/amd64=$TMP/ctx:/" \
  --tag "$REG_ADDR/a/app:3" --tag "$REG_ADDR/d/app:1"
expect_success "build-push of the same input, --no-cache"
assert_contains "$OCISYNC_STDOUT" "(0 while building)" "nothing was uploaded while building"
assert_contains "$OCISYNC_STDERR" "has it already; the upload" "the debug log says the upload was dropped"
requests_since "$mark" >"$TMP/req2"
assert_eq "$(count "^POST /v2/a/app/blobs/uploads/ 202" "$TMP/req2")" 1 "the layer streamed to a/app (one upload opened)"
assert_eq "$(count "^HEAD /v2/a/app/blobs/$layer 200" "$TMP/req2")" 1 \
  "one HEAD, once the digest was known, found it there"
assert_eq "$(count "^PUT /v2/[^ ]*/blobs/uploads/.*digest=$layer" "$TMP/req2")" 0 \
  "the layer was not committed again anywhere"
grep -E "^POST /v2/d/app/blobs/uploads/" "$TMP/req2" | grep -F "mount=$layer" >"$TMP/mounts" || true
assert_eq "$(count ' 201$' "$TMP/mounts")" 1 "d/app mounted the layer"
assert_eq "$(count "^(PATCH|PUT) /v2/d/app/blobs/uploads/.*$layer" "$TMP/req2")" 0 \
  "d/app: the layer's bytes were not sent"
assert_eq "$(skopeo_digest "$REG_ADDR/d/app:1")" "$digest" "d/app:1: the same image"
assert_eq "$(skopeo_digest "$REG_ADDR/a/app:3")" "$digest" "a/app:3: the same image"

# --- in chunks: the dropped upload is deleted at the registry ----------------------------------------
mark=$(registry_log_mark reg)
run_ocisync build-push --no-cache --chunk-size 1M --base scratch --platform "linux/amd64=$TMP/ctx:/" \
  --tag "$REG_ADDR/a/app:4"
expect_success "build-push of the same input in 1 MiB chunks"
requests_since "$mark" >"$TMP/req3"
assert_eq "$(count "^PUT /v2/[^ ]*/blobs/uploads/.*digest=$layer" "$TMP/req3")" 0 \
  "chunks: the layer was not committed again"
# A chunk may be on its way when the HEAD answers; then the registry purges the upload itself.
deletes=$(count "^DELETE /v2/a/app/blobs/uploads/.* 204" "$TMP/req3")
[ "$deletes" -le 1 ] || fail "the upload was deleted $deletes times"
pass "the dropped upload was deleted ($deletes DELETE) or left to the registry's purge"
assert_eq "$(skopeo_digest "$REG_ADDR/a/app:4")" "$digest" "a/app:4: the same image"

done_ok
