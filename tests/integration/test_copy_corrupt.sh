#!/usr/bin/env bash
# A source that serves wrong bytes for a blob is caught while the bytes pass:
# the copy fails with a message naming the blob's digest, the destination
# never commits that blob and never receives a manifest or tag.
#
# The real registry serves whatever its storage holds, so corrupting the
# stored file (one flipped byte, or a truncated file) makes a real registry
# misbehave the way a broken mirror or disk would.
. "$(dirname "$0")/lib.sh"

registry_start src
registry_start dst

want=$(mkimage --out "$TMP/img" --platforms linux/amd64 --layers 2 --layer-size 3000000 --seed corrupt)
push_image "$TMP/img" "$SRC_ADDR/lib/bad:v1"
skopeo_raw "$SRC_ADDR/lib/bad:v1" "$TMP/manifest.json"
layer=$(json_eval "$TMP/manifest.json" 'd["layers"][0]["digest"]')
hex=${layer#sha256:}
data="$TMP/src/data/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
[ -f "$data" ] || fail "registry storage layout unexpected: $data missing"
cp "$data" "$TMP/layer.orig"

# dst_clean LABEL: no manifest or tag, and the corrupted blob absent.
dst_clean() {
  assert_eq "$(registry_log_count dst '^PUT /v2/[^ ]*/manifests/')" 0 "$1: no manifest was pushed"
  assert_eq "$(blob_status "$DST_ADDR" "$2" "$layer")" 404 "$1: the bad blob was not committed"
  assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "http://$DST_ADDR/v2/$2/manifests/v1")" 404 \
    "$1: the tag does not exist at the destination"
}

# --- one byte flipped in the middle: same size, wrong digest -----------------
python3 - "$data" <<'PY'
import sys
p = sys.argv[1]
with open(p, "r+b") as f:
    f.seek(1500000)
    b = f.read(1)
    f.seek(1500000)
    f.write(bytes([b[0] ^ 0x55]))
PY
run_ocisync copy "docker://$SRC_ADDR/lib/bad:v1" "docker://$DST_ADDR/lib/flip:v1"
expect_failure "a flipped byte in a source blob"
assert_contains "$OCISYNC_STDERR" "$layer" "the error names the blob's digest"
assert_contains "$OCISYNC_STDERR" "does not match its digest" "the error says the content is wrong"
dst_clean "flipped byte" lib/flip

# --- the same with chunked uploads: the closing PUT is never sent -------------
run_ocisync copy --chunk-size 1M "docker://$SRC_ADDR/lib/bad:v1" "docker://$DST_ADDR/lib/flipchunk:v1"
expect_failure "a flipped byte with chunked uploads"
assert_contains "$OCISYNC_STDERR" "$layer" "chunked: the error names the blob's digest"
dst_clean "flipped byte, chunked" lib/flipchunk
assert_eq "$(registry_log_count dst "^PUT /v2/lib/flipchunk/blobs/uploads/.*digest=$layer")" 0 \
  "chunked: the upload of the bad blob was never closed"

# --- a truncated file: the registry serves fewer bytes than the manifest says -
head -c 1000000 "$TMP/layer.orig" >"$data"
run_ocisync copy "docker://$SRC_ADDR/lib/bad:v1" "docker://$DST_ADDR/lib/short:v1"
expect_failure "a truncated source blob"
assert_contains "$OCISYNC_STDERR" "$layer" "truncated: the error names the blob's digest"
dst_clean "truncated" lib/short

# --- restored: the same copy now succeeds, so the failures above were the data -
cp "$TMP/layer.orig" "$data"
run_ocisync copy "docker://$SRC_ADDR/lib/bad:v1" "docker://$DST_ADDR/lib/flip:v1"
expect_success "the copy with the blob restored"
assert_eq "$(skopeo_digest "$DST_ADDR/lib/flip:v1")" "$want" "restored: the destination digest equals the source"

done_ok
