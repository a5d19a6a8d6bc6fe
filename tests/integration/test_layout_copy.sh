#!/usr/bin/env bash
# OCI image layouts (oci:DIR[:NAME]) as copy sources and destinations:
# registry -> layout -> registry round trips keep every digest, skopeo and
# umoci read what ocisync wrote, a re-run writes nothing, and bad input
# (a corrupted or symlinked blob, a source that serves wrong bytes) fails
# with a clear error while leaving no index entry that names a missing blob.
. "$(dirname "$0")/lib.sh"

registry_start src
registry_start dst

want=$(mkimage --out "$TMP/img" --platforms linux/amd64,linux/arm64/v8 --layers 2 \
  --layer-size 1500000 --shared-layers 1 --seed layout --tag v1)
push_image "$TMP/img" "$SRC_ADDR/lib/app:v1"
single=$(mkimage --out "$TMP/one" --platforms linux/amd64 --layers 2 --layer-size 200000 --seed one --tag 1.0)

# layout_ok DIR LABEL: every blob file is named by its own sha256, and no temp file is left.
layout_ok() {
  local f n=0
  for f in "$1"/blobs/sha256/*; do
    [ "sha256:$(basename "$f")" = "$(file_digest "$f")" ] || fail "$2: $f does not match its name"
    n=$((n + 1))
  done
  assert_eq "$(find "$1" -name '.tmp-*' | wc -l | tr -d ' ')" 0 "$2: no temp file left"
  pass "$2: all $n blobs match their names"
}

# --- registry -> layout ------------------------------------------------------------------------
run_ocisync copy "docker://$SRC_ADDR/lib/app:v1" "oci:$TMP/lay:v1"
expect_success "copy into a new layout"
assert_eq "$(skopeo inspect --raw "oci:$TMP/lay:v1" | sha256sum | cut -d' ' -f1)" "${want#sha256:}" \
  "skopeo reads the layout's v1: the source's index digest"
layout_ok "$TMP/lay" "layout after the copy"
assert_eq "$(json_eval "$TMP/lay/index.json" '[m["annotations"]["org.opencontainers.image.ref.name"] for m in d["manifests"]]')" \
  v1 "index.json names the image v1"
umoci ls --layout "$TMP/lay" >"$TMP/umoci.ls" 2>&1 || fail "umoci ls failed: $(cat "$TMP/umoci.ls")"
assert_contains "$TMP/umoci.ls" v1 "umoci lists v1"

mark=$(registry_log_mark src)
run_ocisync copy "docker://$SRC_ADDR/lib/app:v1" "oci:$TMP/lay:v1"
expect_success "the same copy again"
assert_contains "$OCISYNC_STDOUT" "up to date" "a re-run says the layout is up to date"
assert_eq "$(registry_log_count src '^GET /v2/.*/blobs/' "$mark")" 0 "a re-run downloads no blob"

# A second image in the same layout keeps the first.
push_image "$TMP/one" "$SRC_ADDR/lib/one:1.0"
run_ocisync copy "docker://$SRC_ADDR/lib/one:1.0" "oci:$TMP/lay:one"
expect_success "a second image into the layout"
assert_eq "$(json_eval "$TMP/lay/index.json" 'sorted(m["annotations"]["org.opencontainers.image.ref.name"] for m in d["manifests"])' | tr '\n' ' ')" \
  "one v1 " "index.json names both images"
mkdir -p "$TMP/unpack"
umoci unpack --rootless --image "$TMP/lay:one" "$TMP/unpack/one" >"$TMP/umoci.out" 2>&1 ||
  fail "umoci unpack of the single-platform image failed: $(tail -n 5 "$TMP/umoci.out")"
pass "umoci unpacks the single-platform image ocisync wrote"

# --- layout -> registry (the CI hand-off) and layout -> layout -----------------------------------
run_ocisync copy "oci:$TMP/lay:v1" "docker://$DST_ADDR/team/app:v1"
expect_success "push from the layout"
assert_eq "$(skopeo_digest "$DST_ADDR/team/app:v1")" "$want" "pushed index digest equals the source's"
podman_pull "$DST_ADDR/team/app:v1" --platform linux/arm64/v8
assert_eq "$(podman_inspect "$DST_ADDR/team/app:v1" '{{index .Labels "org.ocisync.test.platform"}}')" \
  linux/arm64/v8 "podman pulls the arm64 image pushed from the layout"
run_ocisync copy "oci:$TMP/one:1.0" "docker://$DST_ADDR/team/one:1.0"
expect_success "push from a layout another tool wrote"
assert_eq "$(skopeo_digest "$DST_ADDR/team/one:1.0")" "$single" "digest kept"
run_ocisync copy "oci:$TMP/lay:v1" "oci:$TMP/lay2:copy"
expect_success "layout to layout"
layout_ok "$TMP/lay2" "second layout"
assert_eq "$(skopeo inspect --raw "oci:$TMP/lay2:copy" | sha256sum | cut -d' ' -f1)" "${want#sha256:}" "digest kept"

# --- OCI archives (oci-archive:FILE[:NAME]) ------------------------------------------------------
run_ocisync copy "docker://$SRC_ADDR/lib/app:v1" "oci-archive:$TMP/app.tar:v1"
expect_success "copy into an OCI archive"
assert_eq "$(skopeo inspect --raw "oci-archive:$TMP/app.tar:v1" | sha256sum | cut -d' ' -f1)" "${want#sha256:}" \
  "skopeo reads the archive ocisync wrote"
assert_eq "$(find "$TMP" -maxdepth 1 -name 'app.tar.tmp-*' | wc -l | tr -d ' ')" 0 "no temp archive left"
run_ocisync copy "oci-archive:$TMP/app.tar:v1" "docker://$DST_ADDR/fromtar/app:v1"
expect_success "push from the OCI archive"
assert_eq "$(skopeo_digest "$DST_ADDR/fromtar/app:v1")" "$want" "digest kept through the archive"
skopeo copy -q --src-tls-verify=false "docker://$SRC_ADDR/lib/one:1.0" "oci-archive:$TMP/skopeo.tar:1.0" \
  >"$TMP/skopeo-archive.log" 2>&1 || fail "skopeo could not write an archive: $(cat "$TMP/skopeo-archive.log")"
run_ocisync copy "oci-archive:$TMP/skopeo.tar:1.0" "docker://$DST_ADDR/fromtar/one:1.0"
expect_success "push from an archive skopeo wrote"
assert_eq "$(skopeo_digest "$DST_ADDR/fromtar/one:1.0")" "$single" "digest kept"

# A failed copy leaves no archive; a hostile archive is refused.
run_ocisync copy "docker://$SRC_ADDR/lib/nosuch:v1" "oci-archive:$TMP/none.tar"
expect_failure 1 "a copy of a missing image into an archive"
[ ! -e "$TMP/none.tar" ] || fail "a failed copy left an archive behind"
pass "a failed copy writes no archive"
python3 - "$TMP/evil.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    data = b'{"imageLayoutVersion":"1.0.0"}'
    ti = tarfile.TarInfo("../escaped")
    ti.size = len(data)
    t.addfile(ti, io.BytesIO(data))
PY
run_ocisync copy "oci-archive:$TMP/evil.tar" "docker://$DST_ADDR/x/evil:v1"
expect_failure 2 "an archive with a path that climbs out"
assert_contains "$OCISYNC_STDERR" "outside the layout" "the error says the entry would land outside"
[ ! -e "$TMP/escaped" ] && [ ! -e "/tmp/escaped" ] || fail "a file escaped the temp directory"
pass "nothing was written outside"

# --- docker archives (docker save / docker load) -------------------------------------------------
run_ocisync copy "docker://$SRC_ADDR/lib/one:1.0" "docker-archive:$TMP/one-docker.tar:example.com/team/one:1.0"
expect_success "copy into a docker archive"
skopeo inspect "docker-archive:$TMP/one-docker.tar" >"$TMP/dinspect.json" 2>"$TMP/dinspect.err" ||
  fail "skopeo cannot read the docker archive: $(cat "$TMP/dinspect.err")"
tar -xOf "$TMP/one-docker.tar" manifest.json >"$TMP/dmanifest.json" || fail "no manifest.json in the docker archive"
assert_eq "$(json_eval "$TMP/dmanifest.json" 'd[0]["RepoTags"]')" "example.com/team/one:1.0" "manifest.json names the image"
podman_cmd load -i "$TMP/one-docker.tar" >"$TMP/podman-load.log" 2>&1 ||
  fail "podman load failed: $(tail -n 5 "$TMP/podman-load.log")"
assert_contains "$TMP/podman-load.log" "example.com/team/one:1.0" "podman load accepts the docker archive"
run_ocisync copy "docker-archive:$TMP/one-docker.tar" "docker://$DST_ADDR/fromdocker/one:1.0"
expect_success "push from the docker archive"
skopeo_raw "$DST_ADDR/fromdocker/one:1.0" "$TMP/dman.json"
assert_blobs_present "$DST_ADDR" fromdocker/one "$TMP/dman.json" "image from the docker archive"
podman_pull "$DST_ADDR/fromdocker/one:1.0"
pass "podman pulls what came from the docker archive"
skopeo copy -q --src-tls-verify=false "docker://$SRC_ADDR/lib/one:1.0" "docker-archive:$TMP/skopeo-docker.tar:x/one:1" \
  >"$TMP/skopeo-docker.log" 2>&1 || fail "skopeo could not write a docker archive: $(cat "$TMP/skopeo-docker.log")"
run_ocisync copy "docker-archive:$TMP/skopeo-docker.tar:x/one:1" "docker://$DST_ADDR/fromdocker/skopeo:1"
expect_success "push from a docker archive skopeo wrote"
run_ocisync copy "docker-archive:$TMP/skopeo-docker.tar:x/other:1" "docker://$DST_ADDR/fromdocker/skopeo:2"
expect_failure 2 "an image the docker archive does not have"
assert_contains "$OCISYNC_STDERR" "x/other:1" "the error names the missing image"

# --- bad input ---------------------------------------------------------------------------------
run_ocisync copy "oci:$TMP/lay:nosuch" "docker://$DST_ADDR/team/x:v1"
expect_failure 1 "a name the layout does not have"
assert_contains "$OCISYNC_STDERR" "nosuch" "the error names the missing name"
run_ocisync copy "oci:$TMP/nolayout" "docker://$DST_ADDR/team/x:v1"
expect_failure 2 "a directory that is not a layout"
assert_contains "$OCISYNC_STDERR" "$TMP/nolayout" "the error names the directory"

# A layer file corrupted on disk: the push fails naming it; nothing is pushed for it.
cp -r "$TMP/one" "$TMP/bad"
layer=$(json_eval "$TMP/bad/blobs/sha256/${single#sha256:}" 'd["layers"][0]["digest"]')
python3 - "$TMP/bad/blobs/sha256/${layer#sha256:}" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(1000)
    b = f.read(1)
    f.seek(1000)
    f.write(bytes([b[0] ^ 0x55]))
PY
mark=$(registry_log_mark dst)
run_ocisync copy "oci:$TMP/bad:1.0" "docker://$DST_ADDR/team/bad:1.0"
expect_failure 1 "a corrupted blob in the source layout"
assert_contains "$OCISYNC_STDERR" "$layer" "the error names the blob"
assert_eq "$(registry_log_count dst '^PUT /v2/team/bad/manifests/' "$mark")" 0 "no manifest was pushed"

# A blob that is a symbolic link is refused, whatever it points to.
cp -r "$TMP/one" "$TMP/sym"
mv "$TMP/sym/blobs/sha256/${layer#sha256:}" "$TMP/elsewhere"
ln -s "$TMP/elsewhere" "$TMP/sym/blobs/sha256/${layer#sha256:}"
run_ocisync copy "oci:$TMP/sym:1.0" "docker://$DST_ADDR/team/sym:1.0"
expect_failure 1 "a symlinked blob in the source layout"
assert_contains "$OCISYNC_STDERR" "${layer} in layout $TMP/sym is a symbolic link" "the error names the blob and says it is a symbolic link"

# A source that serves wrong bytes: the layout gets neither the blob nor an index entry.
push_image "$TMP/one" "$SRC_ADDR/lib/broken:1.0"
hex=${layer#sha256:}
data="$TMP/src/data/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
[ -f "$data" ] || fail "registry storage layout unexpected: $data missing"
python3 - "$data" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(500)
    b = f.read(1)
    f.seek(500)
    f.write(bytes([b[0] ^ 0x55]))
PY
run_ocisync copy "docker://$SRC_ADDR/lib/broken:1.0" "oci:$TMP/lay3:broken"
expect_failure 1 "a source that serves a corrupted blob"
assert_contains "$OCISYNC_STDERR" "$layer" "the error names the blob"
[ ! -e "$TMP/lay3/blobs/sha256/$hex" ] || fail "the corrupted blob was committed into the layout"
pass "the corrupted blob is not in the layout"
if [ -f "$TMP/lay3/index.json" ]; then
  assert_eq "$(json_eval "$TMP/lay3/index.json" 'len(d["manifests"])')" 0 "index.json names nothing"
else
  pass "no index.json was written"
fi
assert_eq "$(find "$TMP/lay3" -name '.tmp-*' | wc -l | tr -d ' ')" 0 "no temp file left"

done_ok
