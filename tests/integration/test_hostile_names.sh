#!/usr/bin/env bash
# What a hostile registry says is not used as it is:
#   - tag lists with escape sequences, line breaks and "../": the valid tags
#     are synced, the others are skipped and reported on one line each, with
#     no escape byte reaching the terminal, and never requested;
#   - a catalog naming "../evil": never requested (no tags/list for it);
#   - a fallback tag sha256-<hex> listing a manifest whose subject is another
#     image: the referrer copy fails, no fallback index is written at the
#     destination, and the image itself still arrives;
#   - a layout whose blobs/sha256 is a symbolic link to a directory outside
#     it (holding a private file): refused as a source and as a destination.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_tls.sh"
. "$(dirname "$0")/lib_hostile.sh"

registry_start src
registry_start dst
want=$(mkimage --out "$TMP/img" --platforms linux/amd64 --layers 1 --layer-size 20000 --seed names --tag v1)
push_image "$TMP/img" "$SRC_ADDR/lib/app:v1"


# --- tag lists and catalogs ---------------------------------------------------------------------
hostile_start names --upstream "$SRC_ADDR" --tags 'lib/app=v1,\e[31mred\e[0m,two\nlines,..\x2f..\x2fup,cr\rhere' \
  --catalog '../evil,lib/app'
run_ocisync sync --src docker --dest docker "$NAMES_ADDR/lib/app" "$DST_ADDR/names"
expect_failure "a sync of a repository whose tag list holds invalid names"
assert_eq "$(tag_status "$DST_ADDR" names/app v1)" 200 "the valid tag was synced"
assert_contains "$OCISYNC_STDERR" "the registry listed 4 names that are not valid tags" "the others are reported"
assert_eq "$(grep -c $'\e' "$OCISYNC_STDOUT" "$OCISYNC_STDERR" | awk -F: '{s += $2} END {print s}')" 0 \
  "no escape byte reached the output"
assert_eq "$(grep -c $'\r' "$OCISYNC_STDERR" || true)" 0 "no carriage return either"
assert_eq "$(hostile_log_count names 'path=/v2/lib/app/manifests/(\\x1b|two|cr|\.\.)')" 0 \
  "none of them was requested"

cat >"$TMP/mirrors.yml" <<YML
mirrors:
  - from: $NAMES_ADDR
    to: $DST_ADDR/cat
    repositories: all
YML
run_ocisync sync --src yaml "$TMP/mirrors.yml"
expect_failure "a sync of a catalog that names ../evil"
assert_contains "$OCISYNC_STDERR" "not valid repository names" "the bad name is reported"
assert_ne "$(hostile_log_count names 'action=catalog')" 0 "the catalog was listed"
assert_eq "$(hostile_log_count names 'path=[^ ]*(\.\.|evil)')" 0 "no request named ../evil"
assert_eq "$(tag_status "$DST_ADDR" cat/lib/app v1)" 200 "the valid repository was synced"

# --- a false referrer -----------------------------------------------------------------------------
other=$(mkimage --out "$TMP/img2" --platforms linux/amd64 --layers 1 --layer-size 10000 --seed other --tag v2)
push_image "$TMP/img2" "$SRC_ADDR/lib/app:v2"
size2=$(stat -c %s "$TMP/img2/blobs/sha256/${other#sha256:}")
# A real signature of v2, then the fallback tag of v1 made to list it.
sig=$(python3 "$OCISYNC_SOURCE_DIR/tests/tools/attach.py" "$SRC_ADDR" lib/app "$other" \
  application/vnd.oci.image.manifest.v1+json "$size2" application/vnd.dev.cosign.simplesigning.v1+json \
  "signature of v2") || fail "attach.py failed"
curl -sf "http://$SRC_ADDR/v2/lib/app/manifests/${other/:/-}" -H 'Accept: application/vnd.oci.image.index.v1+json' \
  -o "$TMP/fallback.json" || fail "no fallback index for v2"
curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' --data-binary "@$TMP/fallback.json" \
  "http://$SRC_ADDR/v2/lib/app/manifests/${want/:/-}" || fail "cannot write the false fallback tag"
run_ocisync copy --referrers "docker://$SRC_ADDR/lib/app:v1" "docker://$DST_ADDR/ref/app:v1"
expect_failure "a copy whose fallback tag lists another image's referrer"
assert_contains "$OCISYNC_STDERR" "is listed as a referrer of $want, but its subject is $other" "the message names both"
assert_eq "$(tag_status "$DST_ADDR" ref/app "${want/:/-}")" 404 "no fallback index was written at the destination"
assert_eq "$(tag_status "$DST_ADDR" ref/app "$sig")" 404 "the false referrer was not pushed"
assert_eq "$(tag_status "$DST_ADDR" ref/app v1)" 200 "the image itself arrived"

# --- a layout whose blobs/sha256 is a symbolic link -------------------------------------------
run_ocisync copy "docker://$SRC_ADDR/lib/app:v1" "oci:$TMP/lay:v1"
expect_success "a layout written"
mkdir -p "$TMP/outside"
cp -a "$TMP/lay/blobs/sha256/." "$TMP/outside/"
chmod 600 "$TMP/outside/"*
rm -rf "$TMP/lay/blobs/sha256"
ln -s "$TMP/outside" "$TMP/lay/blobs/sha256"
run_ocisync copy "oci:$TMP/lay:v1" "docker://$DST_ADDR/lay/app:v1"
expect_failure "a layout source whose blobs/sha256 is a symbolic link"
assert_contains "$OCISYNC_STDERR" "blobs/sha256 in layout $TMP/lay is a symbolic link; refused" "the message names it"
assert_eq "$(tag_status "$DST_ADDR" lay/app v1)" 404 "nothing was pushed"
before=$(ls "$TMP/outside" | wc -l)
run_ocisync copy "docker://$SRC_ADDR/lib/app:v2" "oci:$TMP/lay:v2"
expect_failure "a layout destination whose blobs/sha256 is a symbolic link"
assert_eq "$(ls "$TMP/outside" | wc -l)" "$before" "nothing was written through the link"

done_ok
