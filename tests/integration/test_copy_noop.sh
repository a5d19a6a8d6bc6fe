#!/usr/bin/env bash
# Blobs already at the destination are skipped: with one platform's image
# already there, a copy uploads only the other platform's blobs; copying
# again uploads nothing at all (no POST, PATCH or PUT under
# /blobs/uploads/) and still exits 0 with the same digest.
. "$(dirname "$0")/lib.sh"

registry_start src
registry_start dst

gen=(--layers 2 --shared-layers 1 --layer-size 40000 --seed noop)
want=$(mkimage --out "$TMP/img" --platforms linux/amd64,linux/arm64/v8 "${gen[@]}" --tag v1)
# The same seed with one platform makes the same amd64 image, blob for blob.
amd64=$(mkimage --out "$TMP/amd64" --platforms linux/amd64 "${gen[@]}")
push_image "$TMP/img" "$SRC_ADDR/lib/noop:v1"
push_image "$TMP/amd64" "$DST_ADDR/lib/noop:amd64-only"

index_children "$TMP/img/blobs/sha256/${want#sha256:}" >"$TMP/children"
arm64=$(awk '$2 == "linux/arm64/v8" { print $1 }' "$TMP/children")
grep -q "^$amd64 linux/amd64\$" "$TMP/children" || fail "generator: the amd64 image differs from the index's child"
blobs_of() { manifest_blobs "$TMP/img/blobs/sha256/${1#sha256:}"; }
# Blobs the destination lacks: arm64's config and its own layer.
mapfile -t missing < <(comm -13 <(blobs_of "$amd64" | sort) <(blobs_of "$arm64" | sort))
[ "${#missing[@]}" -eq 2 ] || fail "generator: expected arm64 to add 2 blobs, got ${#missing[@]}"
layers_of() { json_eval "$TMP/img/blobs/sha256/${1#sha256:}" '[l["digest"] for l in d["layers"]]'; }

# uploaded_blobs SINCE: digests whose upload completed (PUT or monolithic
# POST with ?digest=, or a mount, answered 201) since the mark, sorted.
uploaded_blobs() {
  registry_log_sync dst
  registry_requests dst "$1" |
    sed -nE 's#^(PUT|POST) /v2/lib/noop/blobs/uploads/[^ ]*[?&](digest|mount)=(sha256:[0-9a-f]{64})[^ ]* 201$#\3#p' | sort
}
upload_requests() {
  registry_log_count dst '^(POST|PATCH|PUT) /v2/[^ ]*/blobs/uploads/' "$1"
}

mark=$(registry_log_mark dst)
run_ocisync copy "docker://$SRC_ADDR/lib/noop:v1" "docker://$DST_ADDR/lib/noop:v1"
expect_success "first copy, with the amd64 image already at the destination"
assert_eq "$(skopeo_digest "$DST_ADDR/lib/noop:v1")" "$want" "destination digest equals source"
assert_eq "$(uploaded_blobs "$mark" | tr '\n' ' ')" "$(printf '%s ' "${missing[@]}")" \
  "only arm64's ${#missing[@]} missing blobs (config and own layer) were uploaded"
first_uploads=$(upload_requests "$mark")
[ "$first_uploads" -gt 0 ] || fail "first copy made no upload request at all"
pass "first copy made $first_uploads upload requests"

src_mark=$(registry_log_mark src)
mark=$(registry_log_mark dst)
run_ocisync copy --digestfile "$TMP/digest" "docker://$SRC_ADDR/lib/noop:v1" "docker://$DST_ADDR/lib/noop:v1"
expect_success "second copy of the same image"
assert_eq "$(registry_log_count dst '^POST /v2/[^ ]*/blobs/uploads/' "$mark")" 0 \
  "second copy: no POST .../blobs/uploads/ at the destination"
assert_eq "$(upload_requests "$mark")" 0 "second copy: no POST, PATCH or PUT under /blobs/uploads/"
assert_eq "$(skopeo_digest "$DST_ADDR/lib/noop:v1")" "$want" "destination digest unchanged"
assert_eq "$(tr -d '[:space:]' <"$TMP/digest")" "$want" "--digestfile written on a no-op copy"
layer_re=$( (layers_of "$amd64"; layers_of "$arm64") | sort -u | paste -sd'|')
assert_eq "$(registry_log_count src "^GET /v2/lib/noop/blobs/($layer_re) " "$src_mark")" 0 \
  "second copy: no layer was downloaded from the source"

done_ok
