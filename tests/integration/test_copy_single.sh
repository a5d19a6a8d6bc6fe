#!/usr/bin/env bash
# A single-platform image copied between two registries arrives byte for
# byte (same manifest digest, every blob present), --digestfile names it,
# and podman can pull and unpack it into the same files as the original.
. "$(dirname "$0")/lib.sh"

registry_start src
registry_start dst

want=$(mkimage --out "$TMP/img" --platforms linux/amd64 --layers 3 --layer-size 100000 \
  --seed single --tag v1)
push_image "$TMP/img" "$SRC_ADDR/lib/single:v1"
assert_eq "$(skopeo_digest "$SRC_ADDR/lib/single:v1")" "$want" "source digest is the generated one"

run_ocisync copy --digestfile "$TMP/digest" \
  "docker://$SRC_ADDR/lib/single:v1" "docker://$DST_ADDR/copied/single:v1"
expect_success "copy between two registries"

assert_eq "$(skopeo_digest "$DST_ADDR/copied/single:v1")" "$want" "destination digest equals source"
[ -f "$TMP/digest" ] || fail "--digestfile $TMP/digest was not written"
assert_eq "$(tr -d '[:space:]' <"$TMP/digest")" "$want" "--digestfile holds the destination digest"

skopeo_raw "$DST_ADDR/copied/single:v1" "$TMP/dst-manifest.json"
cmp -s "$TMP/dst-manifest.json" "$TMP/img/blobs/sha256/${want#sha256:}" ||
  fail "destination manifest bytes differ from the generated manifest"
pass "destination manifest is byte for byte the generated one"
assert_blobs_present "$DST_ADDR" copied/single "$TMP/dst-manifest.json" "the manifest"

# Fetching by digest works too (the manifest is stored under its digest).
assert_eq "$(skopeo_digest "$DST_ADDR/copied/single@$want")" "$want" "destination answers by digest"

podman_pull "$DST_ADDR/copied/single:v1"
assert_eq "$(podman_inspect "$DST_ADDR/copied/single:v1" '{{.Digest}}')" "$want" "podman sees the source digest"
assert_eq "$(podman_inspect "$DST_ADDR/copied/single:v1" '{{.Os}}/{{.Architecture}}')" "linux/amd64" \
  "podman sees the platform"
podman_rootfs_sums "$DST_ADDR/copied/single:v1" >"$TMP/podman.sums"
layout_rootfs_sums "$TMP/img" >"$TMP/umoci.sums"
[ "$(wc -l <"$TMP/umoci.sums")" -eq 6 ] || fail "umoci unpacked $(wc -l <"$TMP/umoci.sums") files, expected 6"
cmp -s "$TMP/podman.sums" "$TMP/umoci.sums" ||
  fail "files podman unpacked differ from the original's: $(diff "$TMP/umoci.sums" "$TMP/podman.sums" | head)"
pass "podman unpacked the same 6 files (sha256) umoci unpacks from the original layout"

done_ok
