#!/usr/bin/env bash
# What other tools must be able to read, with skopeo 1.9.3, podman and umoci
# as the reference on the same registries:
# - a Docker-format image (schema 2 manifest, manifest list) written to oci:
#   or oci-archive: takes OCI media types as skopeo gives them (skopeo,
#   podman and umoci open the layout); --preserve-digests refuses instead;
# - docker-archive: writes the platform asked for (arm64 loads in podman as
#   arm64) and reports the manifest written, not the index;
# - dir: (skopeo's directory format) both ways, byte for byte what skopeo
#   writes, digests kept through registry -> dir: -> registry;
# - sync --src dir / --dest dir give skopeo's names, --append-suffix its tag
#   set plus the suffix, --digestfile a REF@DIGEST line per image.
. "$(dirname "$0")/lib.sh"

registry_start src
registry_start dst

multi=$(mkimage --out "$TMP/multi" --platforms linux/amd64,linux/arm64/v8 --layers 2 --docker --index \
  --seed formats-multi --tag v1)
one=$(mkimage --out "$TMP/one" --platforms linux/amd64 --layers 2 --docker --seed formats-one --tag v1)
push_image "$TMP/multi" "$SRC_ADDR/lib/multi:v1"
push_image "$TMP/one" "$SRC_ADDR/lib/one:v1"
push_image "$TMP/one" "$SRC_ADDR/lib/one:v2"
assert_eq "$(skopeo_digest "$SRC_ADDR/lib/multi:v1")" "$multi" "the source list is pushed as built"
skopeo_raw "$SRC_ADDR/lib/multi:v1" "$TMP/multi.raw"
assert_eq "$(json_eval "$TMP/multi.raw" 'd["mediaType"]')" \
  application/vnd.docker.distribution.manifest.list.v2+json "the source is a Docker manifest list"

# same_fields A B LABEL: two manifests (or indexes) alike in every field but
# the config's digest and size, and the children's digests: skopeo re-encodes
# the config through its OCI struct (new digest), ocisync keeps its bytes.
same_fields() {
  python3 - "$1" "$2" <<'EOF' || fail "$3: the manifests differ (above)"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def norm(d):
    d = json.loads(json.dumps(d))
    if "config" in d:
        d["config"].pop("digest"); d["config"].pop("size")
    for m in d.get("manifests", []):
        m.pop("digest"); m.pop("size")
    return d
if norm(a) != norm(b):
    print("ocisync:", json.dumps(norm(a), sort_keys=True))
    print("skopeo: ", json.dumps(norm(b), sort_keys=True))
    sys.exit(1)
EOF
  pass "$3"
}

# layout_manifest DIR NAME [PLATFORM]: the bytes of NAME's manifest (an index's child for PLATFORM).
layout_manifest() {
  local d
  d=$(json_eval "$1/index.json" "[m['digest'] for m in d['manifests'] if m.get('annotations', {}).get('org.opencontainers.image.ref.name') == '$2']")
  if [ -n "${3:-}" ]; then
    d=$(index_children "$1/blobs/sha256/${d#sha256:}" | awk -v p="$3" '$2 == p {print $1}')
  fi
  [ -n "$d" ] || fail "no manifest for $2 ${3:-} in $1"
  cat "$1/blobs/sha256/${d#sha256:}"
}

# --- Docker-format images into OCI layouts -------------------------------------------------------
run_ocisync copy "docker://$SRC_ADDR/lib/one:v1" "oci:$TMP/lay:one"
expect_success "a Docker schema 2 image into an OCI layout"
conv=$(json_eval "$TMP/lay/index.json" "[m['digest'] for m in d['manifests']]")
assert_contains "$OCISYNC_STDOUT" "$one -> $conv" "the output says the digest changed: old -> new"
assert_contains "$OCISYNC_STDOUT" "Copied docker://$SRC_ADDR/lib/one:v1 -> oci:$TMP/lay:one: $conv" \
  "the digest reported is the layout's"
skopeo copy -q --src-tls-verify=false "docker://$SRC_ADDR/lib/one:v1" "oci:$TMP/sk:one"
layout_manifest "$TMP/lay" one >"$TMP/oc.one.json"
layout_manifest "$TMP/sk" one >"$TMP/sk.one.json"
same_fields "$TMP/oc.one.json" "$TMP/sk.one.json" "the manifest has skopeo's media types and fields"
assert_eq "$(json_eval "$TMP/oc.one.json" 'd["config"]["mediaType"]')" \
  application/vnd.oci.image.config.v1+json "config media type"
skopeo_raw "$SRC_ADDR/lib/one:v1" "$TMP/one.raw"
cfg=$(json_eval "$TMP/one.raw" 'd["config"]["digest"]')
assert_eq "$(json_eval "$TMP/oc.one.json" 'd["config"]["digest"]')" "$cfg" "the config bytes are kept"
assert_eq "$(json_eval "$TMP/oc.one.json" '[l["digest"] for l in d["layers"]]' | tr '\n' ' ')" \
  "$(json_eval "$TMP/one.raw" '[l["digest"] for l in d["layers"]]' | tr '\n' ' ')" "the layer bytes are kept"
assert_eq "$(skopeo inspect --format '{{.Digest}}' "oci:$TMP/lay:one")" "$conv" "skopeo inspect opens the layout"
mkdir -p "$TMP/unpack"
umoci unpack --rootless --image "$TMP/lay:one" "$TMP/unpack/one" >"$TMP/umoci.out" 2>&1 ||
  fail "umoci unpack failed: $(tail -n 5 "$TMP/umoci.out")"
pass "umoci unpacks the converted image"
# podman names the image after the layout's path, which must be lowercase: a relative one is.
(cd "$TMP" && podman_cmd pull oci:lay:one) >>"$TMP/podman.log" 2>&1 ||
  fail "podman pull oci: failed: $(tail -n 5 "$TMP/podman.log")"
pass "podman pulls oci:$TMP/lay:one"

run_ocisync copy "docker://$SRC_ADDR/lib/one:v1" "oci:$TMP/lay:one"
expect_success "the same copy again"
assert_contains "$OCISYNC_STDOUT" "is up to date: $conv" "a re-run finds the converted image up to date"

run_ocisync copy "docker://$SRC_ADDR/lib/multi:v1" "oci:$TMP/lay:multi"
expect_success "a Docker manifest list into an OCI layout"
skopeo copy -q --all --src-tls-verify=false "docker://$SRC_ADDR/lib/multi:v1" "oci:$TMP/sk:multi"
layout_manifest "$TMP/lay" multi >"$TMP/oc.multi.json"
layout_manifest "$TMP/sk" multi >"$TMP/sk.multi.json"
same_fields "$TMP/oc.multi.json" "$TMP/sk.multi.json" "the list became an OCI index as skopeo writes it"
for p in linux/amd64 linux/arm64/v8; do
  layout_manifest "$TMP/lay" multi $p >"$TMP/oc.child.json"
  layout_manifest "$TMP/sk" multi $p >"$TMP/sk.child.json"
  same_fields "$TMP/oc.child.json" "$TMP/sk.child.json" "child $p converted as skopeo converts it"
done
assert_contains "$OCISYNC_STDOUT" "$multi -> " "the output names the list's old digest"
skopeo inspect "oci:$TMP/lay:multi" >/dev/null 2>"$TMP/skopeo.err" ||
  fail "skopeo inspect oci:…:multi failed: $(cat "$TMP/skopeo.err")"
pass "skopeo inspect opens the converted index"
(cd "$TMP" && podman_cmd pull --platform linux/arm64/v8 oci:lay:multi) >>"$TMP/podman.log" 2>&1 ||
  fail "podman pull of the converted index failed: $(tail -n 5 "$TMP/podman.log")"
pass "podman pulls arm64 from the converted index"

run_ocisync copy "docker://$SRC_ADDR/lib/multi:v1" "oci-archive:$TMP/multi.tar:multi"
expect_success "a Docker manifest list into an OCI archive"
skopeo inspect "oci-archive:$TMP/multi.tar:multi" >/dev/null 2>"$TMP/skopeo.err" ||
  fail "skopeo inspect oci-archive: failed: $(cat "$TMP/skopeo.err")"
pass "skopeo inspect opens the OCI archive"

run_ocisync copy --preserve-digests "docker://$SRC_ADDR/lib/multi:v1" "oci:$TMP/keep:multi"
expect_failure "--preserve-digests refuses a conversion"
assert_contains "$OCISYNC_STDERR" "docker://$SRC_ADDR/lib/multi:v1" "the message names the image"
assert_contains "$OCISYNC_STDERR" "--preserve-digests forbids" "and says why"
assert_eq "$( [ -f "$TMP/keep/index.json" ] && json_eval "$TMP/keep/index.json" 'len(d["manifests"])' || echo 0)" 0 \
  "the refused image is not in the layout"
run_ocisync copy --preserve-digests "docker://$SRC_ADDR/lib/multi:v1" "dir:$TMP/keepdir"
expect_success "--preserve-digests into dir: (no conversion needed)"

# --- docker-archive: of one platform of an index -------------------------------------------------
arm=$(index_children "$TMP/multi.raw" | awk '$2 == "linux/arm64/v8" {print $1}')
amd=$(index_children "$TMP/multi.raw" | awk '$2 == "linux/amd64" {print $1}')
run_ocisync copy -p linux/arm64 "docker://$SRC_ADDR/lib/multi:v1" "docker-archive:$TMP/arm.tar:lib/multi:arm"
expect_success "copy -p linux/arm64 into a docker archive"
assert_contains "$OCISYNC_STDOUT" "$arm (linux/arm64/v8)" "the output names the arm64 manifest and platform"
podman_cmd load -i "$TMP/arm.tar" >>"$TMP/podman.log" 2>&1 ||
  fail "podman load failed: $(tail -n 5 "$TMP/podman.log")"
assert_eq "$(podman_inspect localhost/lib/multi:arm '{{.Architecture}}')" arm64 "podman loads it as arm64"
assert_eq "$(podman_inspect localhost/lib/multi:arm '{{index .Labels "org.ocisync.test.platform"}}')" \
  linux/arm64/v8 "and it is the arm64 image"
run_ocisync copy "docker://$SRC_ADDR/lib/multi:v1" "docker-archive:$TMP/host.tar:lib/multi:host"
expect_success "no -p: the host's platform"
assert_contains "$OCISYNC_STDOUT" "$amd (linux/amd64)" "the host's (amd64) manifest is written"
mkdir -p "$TMP/ctx" && echo arm >"$TMP/ctx/hello.txt"
run_ocisync build --platform "linux/arm64=$TMP/ctx:/app" --output "docker-archive:$TMP/built-arm.tar:lib/built:arm"
expect_success "build --platform linux/arm64 --output docker-archive:"
podman_cmd load -i "$TMP/built-arm.tar" >>"$TMP/podman.log" 2>&1 ||
  fail "podman load of the built archive failed: $(tail -n 5 "$TMP/podman.log")"
assert_eq "$(podman_inspect localhost/lib/built:arm '{{.Architecture}}')" arm64 "the built arm64 archive loads as arm64"
tar -xOf "$TMP/built-arm.tar" manifest.json >"$TMP/built-arm.manifest.json"
built_cfg=$(json_eval "$TMP/built-arm.manifest.json" 'd[0]["Config"]')
assert_eq "sha256:${built_cfg%.json}" "$(podman_inspect localhost/lib/built:arm '{{.ID}}' | sed 's/^/sha256:/')" \
  "the archive's config is the image podman loaded"
assert_contains "$OCISYNC_STDOUT" "(linux/arm64)" "build names the platform the archive holds"
grep -q "Wrote docker-archive:.*: sha256:[0-9a-f]\{64\} (linux/arm64)" "$OCISYNC_STDOUT" ||
  fail "build did not report the manifest written: $(cat "$OCISYNC_STDOUT")"
pass "build reports the archive's manifest digest, not the index's"
run_ocisync copy -p linux/s390x "docker://$SRC_ADDR/lib/multi:v1" "docker-archive:$TMP/s390x.tar"
expect_failure "a platform the index lacks"
[ ! -e "$TMP/s390x.tar" ] || fail "a failed docker-archive copy left $TMP/s390x.tar"

# --- dir: ----------------------------------------------------------------------------------------
run_ocisync copy "docker://$SRC_ADDR/lib/multi:v1" "dir:$TMP/d/multi"
expect_success "a list into dir:"
mkdir -p "$TMP/skd" # skopeo wants the parent to exist; ocisync makes it
skopeo copy -q --all --src-tls-verify=false "docker://$SRC_ADDR/lib/multi:v1" "dir:$TMP/skd/multi"
assert_eq "$(cd "$TMP/d/multi" && ls | sort | tr '\n' ' ')" "$(cd "$TMP/skd/multi" && ls | sort | tr '\n' ' ')" \
  "the same files as skopeo's dir: (version, manifest.json, <hex>.manifest.json, <hex>)"
for f in "$TMP"/skd/multi/*; do
  cmp -s "$f" "$TMP/d/multi/$(basename "$f")" || fail "dir: $(basename "$f") differs from skopeo's"
done
pass "every file byte for byte as skopeo writes it"
run_ocisync copy "docker://$SRC_ADDR/lib/one:v1" "dir:$TMP/d/one"
expect_success "one image into dir:"
skopeo copy -q --src-tls-verify=false "docker://$SRC_ADDR/lib/one:v1" "dir:$TMP/skd/one"
assert_eq "$(cd "$TMP/d/one" && ls | sort | tr '\n' ' ')" "$(cd "$TMP/skd/one" && ls | sort | tr '\n' ' ')" \
  "one image: skopeo's files"
cmp -s "$TMP/d/one/manifest.json" "$TMP/skd/one/manifest.json" || fail "manifest.json differs from skopeo's"
pass "one image: skopeo's manifest.json"

run_ocisync inspect "dir:$TMP/skd/one"
expect_success "inspect dir:"
assert_eq "$(json_eval "$OCISYNC_STDOUT" 'd["Digest"]')" "$(skopeo inspect --format '{{.Digest}}' "dir:$TMP/skd/one")" \
  "inspect dir: gives skopeo's digest"
run_ocisync copy "dir:$TMP/d/multi" "docker://$DST_ADDR/rt/multi:v1"
expect_success "dir: -> registry"
assert_eq "$(skopeo_digest "$DST_ADDR/rt/multi:v1")" "$multi" "registry -> dir: -> registry keeps the digest"
skopeo copy -q --all --dest-tls-verify=false "dir:$TMP/d/multi" "docker://$DST_ADDR/sk/multi:v1" 2>"$TMP/skopeo.err" ||
  fail "skopeo cannot read ocisync's dir: $(cat "$TMP/skopeo.err")"
assert_eq "$(skopeo_digest "$DST_ADDR/sk/multi:v1")" "$multi" "skopeo reads ocisync's dir:"
run_ocisync copy "dir:$TMP/skd/one" "docker://$DST_ADDR/oc/one:v1"
expect_success "ocisync reads skopeo's dir:"
assert_eq "$(skopeo_digest "$DST_ADDR/oc/one:v1")" "$one" "digest kept from skopeo's dir:"

mark=$(registry_log_mark src)
run_ocisync copy "docker://$SRC_ADDR/lib/multi:v1" "dir:$TMP/d/multi"
expect_success "the same dir: copy again"
assert_contains "$OCISYNC_STDOUT" "up to date" "a re-run finds the dir: up to date"
assert_eq "$(registry_log_count src '^GET /v2/.*/blobs/' "$mark")" 0 "a re-run downloads no blob"
assert_eq "$(find "$TMP/d" -maxdepth 1 -name '*.tmp-*' -o -maxdepth 1 -name '*.stage-*' -o -maxdepth 1 -name '*.old-*' | wc -l | tr -d ' ')" \
  0 "no temp directory left beside dir:"

mkdir -p "$TMP/d/busy" && echo keep >"$TMP/d/busy/notes.txt"
mark=$(registry_log_mark src)
run_ocisync copy "docker://$SRC_ADDR/lib/one:v1" "dir:$TMP/d/busy"
expect_failure "a non-empty directory that is no image"
assert_contains "$OCISYNC_STDERR" "not empty" "the message says why"
assert_eq "$(registry_log_count src '^GET /v2/.*/blobs/' "$mark")" 0 "refused before any blob moved"
assert_eq "$(cat "$TMP/d/busy/notes.txt")" keep "the directory is untouched"
before=$(file_digest "$TMP/d/one/manifest.json")
run_ocisync copy "docker://$SRC_ADDR/lib/none:v1" "dir:$TMP/d/one"
expect_failure "a failed copy into an existing dir:"
assert_eq "$(file_digest "$TMP/d/one/manifest.json")" "$before" "the old dir: image is left whole"
assert_eq "$(find "$TMP/d" -maxdepth 1 -name '*.tmp-*' -o -maxdepth 1 -name '*.stage-*' -o -maxdepth 1 -name '*.old-*' | wc -l | tr -d ' ')" \
  0 "no temp directory left after the failures"

# --- sync with dir: and suffixes ------------------------------------------------------------------
skopeo sync --src docker --dest dir --src-tls-verify=false "$SRC_ADDR/lib/one" "$TMP/sksync" >"$TMP/skopeo-sync.log" 2>&1 ||
  fail "skopeo sync --dest dir failed: $(tail -n 5 "$TMP/skopeo-sync.log")"
run_ocisync sync --src docker --dest dir "$SRC_ADDR/lib/one" "$TMP/ocsync"
expect_success "sync --dest dir"
assert_eq "$(cd "$TMP/ocsync" && find . | sort | tr '\n' ' ')" "$(cd "$TMP/sksync" && find . | sort | tr '\n' ' ')" \
  "sync --dest dir writes skopeo's directories and files"

skopeo sync --src dir --dest docker --dest-tls-verify=false "$TMP/sksync" "$DST_ADDR/skdir" >>"$TMP/skopeo-sync.log" 2>&1 ||
  fail "skopeo sync --src dir failed: $(tail -n 5 "$TMP/skopeo-sync.log")"
run_ocisync sync --src dir --dest docker "$TMP/sksync" "$DST_ADDR/ocdir"
expect_success "sync --src dir"
tags() { curl -s "http://$DST_ADDR/v2/$1/tags/list" | python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin)["tags"] or [])))'; }
assert_eq "$(tags ocdir/one)" "$(tags skdir/one)" "sync --src dir: skopeo's repository and tags"
assert_eq "$(skopeo_digest "$DST_ADDR/ocdir/one:v2")" "$one" "sync --src dir keeps the digest"

run_ocisync sync --src docker --dest docker --append-suffix -mirror --digestfile "$TMP/digests" \
  "$SRC_ADDR/lib/one" "$DST_ADDR/suffixed"
expect_success "sync --append-suffix --digestfile"
skopeo sync --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false "$SRC_ADDR/lib/one" \
  "$DST_ADDR/plain" >>"$TMP/skopeo-sync.log" 2>&1 || fail "skopeo sync failed: $(tail -n 5 "$TMP/skopeo-sync.log")"
assert_eq "$(tags suffixed/one)" "$(tags plain/one | tr ' ' '\n' | sed 's/$/-mirror/' | sort | tr '\n' ' ' | sed 's/ $//')" \
  "--append-suffix: skopeo's tag set, each with the suffix"
assert_eq "$(sort "$TMP/digests" | tr '\n' ' ')" \
  "$DST_ADDR/suffixed/one:v1-mirror@$one $DST_ADDR/suffixed/one:v2-mirror@$one " "--digestfile: REF@DIGEST per image"

done_ok
