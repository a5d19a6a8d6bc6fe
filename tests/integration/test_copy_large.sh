#!/usr/bin/env bash
# An image with a 65 MiB layer (random bytes, so gzip cannot shrink it)
# copies with its digests intact: same manifest digest, and the layer the
# destination serves hashes to its digest and has its size.
. "$(dirname "$0")/lib.sh"

registry_start src
registry_start dst

size=$((65 * 1024 * 1024))
log "generating a $size-byte layer"
want=$(mkimage --out "$TMP/img" --platforms linux/amd64 --layers 1 --layer-size "$size" --seed large)
manifest="$TMP/img/blobs/sha256/${want#sha256:}"
big=$(json_eval "$manifest" 'max(d["layers"], key=lambda l: l["size"])["digest"]')
big_size=$(json_eval "$manifest" 'max(l["size"] for l in d["layers"])')
[ "$big_size" -gt "$size" ] || fail "generated layer is $big_size bytes, expected more than $size"
pass "generated layer ${big:0:19}... is $big_size bytes compressed"
push_image "$TMP/img" "$SRC_ADDR/lib/large:v1"
rm -rf "$TMP/img/blobs" # 65 MiB we no longer need

run_ocisync copy --digestfile "$TMP/digest" "docker://$SRC_ADDR/lib/large:v1" "docker://$DST_ADDR/lib/large:v1"
expect_success "copy of an image with a 65 MiB layer"
assert_eq "$(skopeo_digest "$DST_ADDR/lib/large:v1")" "$want" "destination digest equals source"
assert_eq "$(tr -d '[:space:]' <"$TMP/digest")" "$want" "--digestfile holds the digest"

skopeo_raw "$DST_ADDR/lib/large:v1" "$TMP/dst-manifest.json"
assert_blobs_present "$DST_ADDR" lib/large "$TMP/dst-manifest.json" "the manifest"
curl -fsS --max-time 60 -o "$TMP/big.blob" "http://$DST_ADDR/v2/lib/large/blobs/$big" ||
  fail "GET of the large blob from the destination failed"
assert_eq "$(stat -c %s "$TMP/big.blob")" "$big_size" "large blob size at the destination"
assert_eq "$(file_digest "$TMP/big.blob")" "$big" "large blob served by the destination hashes to its digest"
gzip -t "$TMP/big.blob" || fail "large blob at the destination is not valid gzip"
pass "large blob at the destination is valid gzip"
rm -f "$TMP/big.blob"

done_ok
