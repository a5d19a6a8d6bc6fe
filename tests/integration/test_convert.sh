#!/usr/bin/env bash
# What copy and sync write when asked to change it, against skopeo 1.9.3 on
# the same real registries:
# - -f/--format v2s2: an OCI index and a lone OCI manifest become Docker
#   schema 2 with the very digests skopeo gives them; -f oci: a Docker list
#   becomes an OCI index with OCI manifests (config and layer bytes kept);
#   what schema 2 cannot hold (zstd layers, an OCI layout) and
#   --preserve-digests are refused, naming why, with nothing pushed.
# - --dest-compress-format zstd|gzip (and --dest-compress-level): layers in
#   another compression are recompressed on the way (several pieces, the
#   relay's back-pressure), the config and its diff_ids are untouched and
#   each new layer decompresses to its diff_id; layers already in the
#   target compression keep their digests; manifests and the index are
#   renamed (a Docker list given zstd becomes OCI); the output says which
#   digests changed; podman pulls the results and unpacks the same files;
#   the same output on a second run (deterministic bytes); into an oci:
#   layout (podman pulls it); sync takes the flags too; refusals
#   (--preserve-digests, v2s2 with zstd, a level out of range, a layer
#   that does not decompress: exit 1 and no tag); -f v2s2 with gzip
#   recompression turns a zstd image into one old Docker daemons read.
. "$(dirname "$0")/lib.sh"

command -v skopeo >/dev/null || skip_test "skopeo is not installed"
command -v zstd >/dev/null || skip_test "zstd is not installed"

registry_start src
registry_start dst
# skopeo reuses a blob it knows at the destination in any compression:
# its recompression is compared on a registry of its own.
registry_start skz

mkimage --out "$TMP/multi" --platforms linux/amd64,linux/arm64 --layers 2 --shared-layers 1 \
  --layer-size 300000 --seed convert-multi --tag v1 >/dev/null
mkimage --out "$TMP/single" --layers 2 --layer-size 200000 --seed convert-single --tag v1 >/dev/null
mkimage --out "$TMP/dmulti" --platforms linux/amd64,linux/arm64 --layers 2 --layer-size 200000 \
  --seed convert-docker --docker --tag v1 >/dev/null
# Several relay-fulls: the recompression runs in many pieces, with back-pressure.
mkimage --out "$TMP/big" --layers 1 --layer-size 6000000 --seed convert-big --tag v1 >/dev/null
push_image "$TMP/multi" "$SRC_ADDR/lib/multi:v1"
push_image "$TMP/single" "$SRC_ADDR/lib/single:v1"
push_image "$TMP/dmulti" "$SRC_ADDR/lib/dmulti:v1"
push_image "$TMP/big" "$SRC_ADDR/lib/big:v1"

sk_copy() {
  skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "$@" >>"$TMP/skopeo.log" 2>&1 ||
    fail "skopeo copy $* failed: $(tail -n 5 "$TMP/skopeo.log")"
}

# media_types FILE: the document's media type, then its descriptors'.
media_types() {
  json_eval "$1" '[d["mediaType"]] + [x["mediaType"] for x in ([d["config"]] + d["layers"] if "layers" in d else d["manifests"])]'
}

# check_diff_ids ADDR REPO MANIFEST_FILE: each layer the manifest names
# decompresses (as its media type says) to the diff_id its config lists.
check_diff_ids() {
  local addr=$1 repo=$2 file=$3 cfg i=0 mt dg want got
  cfg=$(json_eval "$file" 'd["config"]["digest"]')
  curl -sf "http://$addr/v2/$repo/blobs/$cfg" -o "$TMP/cfg.json" || fail "config $cfg missing in $repo"
  while read -r mt dg; do
    want=$(json_eval "$TMP/cfg.json" "d['rootfs']['diff_ids'][$i]")
    case $mt in
    *zstd) got=$(curl -sf "http://$addr/v2/$repo/blobs/$dg" | zstd -dc | sha256sum | cut -d' ' -f1) ;;
    *gzip) got=$(curl -sf "http://$addr/v2/$repo/blobs/$dg" | gzip -dc | sha256sum | cut -d' ' -f1) ;;
    *) fail "layer $dg of $repo is $mt" ;;
    esac
    assert_eq "sha256:$got" "$want" "layer $i of $repo ($mt) decompresses to its diff_id"
    i=$((i + 1))
  done < <(json_eval "$file" '[l["mediaType"] + " " + l["digest"] for l in d["layers"]]')
}

# child_of ADDR REPO:TAG PLATFORM OUT: the platform's manifest of the index into OUT.
child_of() {
  local d
  skopeo_raw "$1/$2" "$TMP/idx.json"
  d=$(json_eval "$TMP/idx.json" "[m['digest'] for m in d['manifests'] if m['platform']['architecture'] == '$3'][0]")
  skopeo_raw "$1/${2%%:*}@$d" "$4"
}

log "== -f v2s2 / -f oci"
run_ocisync copy -f v2s2 "$SRC_ADDR/lib/multi:v1" "$DST_ADDR/oc/multi:v1"
expect_success "copy -f v2s2 of an OCI index"
assert_contains "$OCISYNC_STDOUT" "now application/vnd.docker.distribution.manifest.list.v2+json (new digest)" \
  "the output names the new digest and type"
sk_copy --all -f v2s2 "docker://$SRC_ADDR/lib/multi:v1" "docker://$DST_ADDR/sk/multi:v1"
assert_eq "$(skopeo_digest "$DST_ADDR/oc/multi:v1")" "$(skopeo_digest "$DST_ADDR/sk/multi:v1")" \
  "the list has skopeo's digest"
child_of "$DST_ADDR" oc/multi:v1 arm64 "$TMP/oc.child.json"
child_of "$DST_ADDR" sk/multi:v1 arm64 "$TMP/sk.child.json"
assert_eq "$(file_digest "$TMP/oc.child.json")" "$(file_digest "$TMP/sk.child.json")" \
  "the arm64 manifest has skopeo's digest"
assert_eq "$(media_types "$TMP/oc.child.json" | sort -u | tr '\n' ' ')" \
  "application/vnd.docker.container.image.v1+json application/vnd.docker.distribution.manifest.v2+json application/vnd.docker.image.rootfs.diff.tar.gzip " \
  "the manifest has Docker media types only"

run_ocisync copy --format=v2s2 "$SRC_ADDR/lib/single:v1" "$DST_ADDR/oc/single:v1"
expect_success "copy --format=v2s2 of a lone OCI manifest"
sk_copy -f v2s2 "docker://$SRC_ADDR/lib/single:v1" "docker://$DST_ADDR/sk/single:v1"
assert_eq "$(skopeo_digest "$DST_ADDR/oc/single:v1")" "$(skopeo_digest "$DST_ADDR/sk/single:v1")" \
  "the lone manifest has skopeo's digest"
run_ocisync copy -f v2s2 "$SRC_ADDR/lib/single:v1" "$DST_ADDR/oc/single:v1"
expect_success "the same copy again"
assert_contains "$OCISYNC_STDOUT" "is up to date" "a second run finds the converted image there"

run_ocisync copy -f oci "$SRC_ADDR/lib/dmulti:v1" "$DST_ADDR/oc/dmulti:v1"
expect_success "copy -f oci of a Docker manifest list"
skopeo_raw "$DST_ADDR/oc/dmulti:v1" "$TMP/oc.dmulti.json"
assert_eq "$(media_types "$TMP/oc.dmulti.json" | sort -u | tr '\n' ' ')" \
  "application/vnd.oci.image.index.v1+json application/vnd.oci.image.manifest.v1+json " \
  "the list became an OCI index of OCI manifests"
child_of "$DST_ADDR" oc/dmulti:v1 amd64 "$TMP/oc.dchild.json"
assert_eq "$(media_types "$TMP/oc.dchild.json" | sort -u | tr '\n' ' ')" \
  "application/vnd.oci.image.config.v1+json application/vnd.oci.image.layer.v1.tar+gzip application/vnd.oci.image.manifest.v1+json " \
  "its manifests have OCI media types"
sk_copy --all -f oci "docker://$SRC_ADDR/lib/dmulti:v1" "docker://$DST_ADDR/sk/dmulti:v1"
child_of "$DST_ADDR" sk/dmulti:v1 amd64 "$TMP/sk.dchild.json"
assert_eq "$(json_eval "$TMP/oc.dchild.json" '[l["mediaType"] + l["digest"] for l in d["layers"]]')" \
  "$(json_eval "$TMP/sk.dchild.json" '[l["mediaType"] + l["digest"] for l in d["layers"]]')" \
  "the layers as skopeo names them (skopeo also rewrites the config; ocisync keeps its bytes)"
podman_pull "$DST_ADDR/oc/dmulti:v1"

run_ocisync copy -f v2s2 "$SRC_ADDR/lib/multi:v1" "oci:$TMP/lay:multi"
expect_failure "-f v2s2 into an OCI layout"
assert_eq "$OCISYNC_RC" 2 "a usage error"
assert_contains "$OCISYNC_STDERR" "OCI layout holds images with OCI media types only" "it says why"
[ ! -e "$TMP/lay/index.json" ] || fail "the refused copy wrote a layout"
pass "no layout written"
run_ocisync copy -f v2s2 --preserve-digests "$SRC_ADDR/lib/single:v1" "$DST_ADDR/oc/pd:v1"
expect_failure "-f v2s2 with --preserve-digests"
assert_contains "$OCISYNC_STDERR" "--preserve-digests forbids that" "it names the flag"
assert_eq "$(tag_status "$DST_ADDR" oc/pd v1)" 404 "no tag pushed"
run_ocisync copy -f v1 "$SRC_ADDR/lib/single:v1" "$DST_ADDR/oc/x:v1"
expect_failure "-f v1"
assert_contains "$OCISYNC_STDERR" "--format takes oci or v2s2" "it names the values"

log "== --dest-compress-format zstd"
run_ocisync copy --dest-compress-format zstd "$SRC_ADDR/lib/multi:v1" "$DST_ADDR/z/multi:v1"
expect_success "copy --dest-compress-format zstd of an index"
assert_eq "$(grep -c 'recompressed as application/vnd.oci.image.layer.v1.tar+zstd' "$OCISYNC_STDOUT")" 3 \
  "three layers (one shared by both platforms) recompressed, each reported with its new digest"
skopeo_raw "$DST_ADDR/z/multi:v1" "$TMP/z.idx.json"
assert_ne "$(file_digest "$TMP/z.idx.json")" "$(skopeo_digest "$SRC_ADDR/lib/multi:v1")" "the index has a new digest"
assert_eq "$(json_eval "$TMP/z.idx.json" 'len(d["manifests"])')" 2 "both platforms listed"
for arch in amd64 arm64; do
  child_of "$DST_ADDR" z/multi:v1 "$arch" "$TMP/z.$arch.json"
  child_of "$SRC_ADDR" lib/multi:v1 "$arch" "$TMP/s.$arch.json"
  assert_eq "$(json_eval "$TMP/z.$arch.json" 'd["config"]["digest"]')" \
    "$(json_eval "$TMP/s.$arch.json" 'd["config"]["digest"]')" "$arch: the config (and its diff_ids) untouched"
  assert_eq "$(json_eval "$TMP/z.$arch.json" '[l["mediaType"] for l in d["layers"]]' | sort -u)" \
    "application/vnd.oci.image.layer.v1.tar+zstd" "$arch: every layer is zstd"
  check_diff_ids "$DST_ADDR" z/multi "$TMP/z.$arch.json"
  assert_blobs_present "$DST_ADDR" z/multi "$TMP/z.$arch.json" "$arch"
done
sk_copy --all --dest-compress-format zstd "docker://$SRC_ADDR/lib/multi:v1" "docker://$SKZ_ADDR/skz/multi:v1"
child_of "$SKZ_ADDR" skz/multi:v1 arm64 "$TMP/skz.arm64.json"
assert_eq "$(media_types "$TMP/z.arm64.json" | tr '\n' ' ')" "$(media_types "$TMP/skz.arm64.json" | tr '\n' ' ')" \
  "the media types skopeo gives"
podman_pull "$DST_ADDR/z/multi:v1" --arch arm64
podman_pull "$SRC_ADDR/lib/multi:v1" --arch arm64
assert_eq "$(podman_rootfs_sums "$DST_ADDR/z/multi:v1")" "$(podman_rootfs_sums "$SRC_ADDR/lib/multi:v1")" \
  "podman unpacks the same files from the zstd image"

run_ocisync copy --dest-compress-format zstd "$SRC_ADDR/lib/multi:v1" "$DST_ADDR/z2/multi:v1"
expect_success "the same recompression into another repository"
assert_eq "$(skopeo_digest "$DST_ADDR/z2/multi:v1")" "$(file_digest "$TMP/z.idx.json")" \
  "the same digest: the recompressed bytes are deterministic"

run_ocisync copy --dest-compress-format zstd "$DST_ADDR/z/multi:v1" "$DST_ADDR/z3/multi:v1"
expect_success "zstd layers asked for zstd"
assert_eq "$(skopeo_digest "$DST_ADDR/z3/multi:v1")" "$(file_digest "$TMP/z.idx.json")" \
  "layers already zstd are kept byte for byte: the digest stays"
assert_eq "$(grep -c 'recompressed' "$OCISYNC_STDOUT" || true)" 0 "nothing recompressed"

log "== --dest-compress-format gzip, a level, many pieces"
run_ocisync copy --dest-compress-format gzip --dest-compress-level 1 "$DST_ADDR/z/multi:v1" "$DST_ADDR/g/multi:v1"
expect_success "zstd back to gzip at level 1"
child_of "$DST_ADDR" g/multi:v1 amd64 "$TMP/g.amd64.json"
assert_eq "$(json_eval "$TMP/g.amd64.json" '[l["mediaType"] for l in d["layers"]]' | sort -u)" \
  "application/vnd.oci.image.layer.v1.tar+gzip" "every layer is gzip again"
check_diff_ids "$DST_ADDR" g/multi "$TMP/g.amd64.json"

run_ocisync copy --dest-compress-format zstd --dest-compress-level 19 "$SRC_ADDR/lib/big:v1" "$DST_ADDR/z/big:v1"
expect_success "a 6 MB layer at zstd level 19"
skopeo_raw "$DST_ADDR/z/big:v1" "$TMP/z.big.json"
check_diff_ids "$DST_ADDR" z/big "$TMP/z.big.json"

log "== Docker schema 2 sources"
run_ocisync copy --dest-compress-format zstd "$SRC_ADDR/lib/dmulti:v1" "$DST_ADDR/z/dmulti:v1"
expect_success "a Docker list given zstd layers"
skopeo_raw "$DST_ADDR/z/dmulti:v1" "$TMP/z.dmulti.json"
assert_eq "$(media_types "$TMP/z.dmulti.json" | sort -u | tr '\n' ' ')" \
  "application/vnd.oci.image.index.v1+json application/vnd.oci.image.manifest.v1+json " \
  "it became an OCI index of OCI manifests (schema 2 has no zstd)"
child_of "$DST_ADDR" z/dmulti:v1 amd64 "$TMP/z.damd64.json"
check_diff_ids "$DST_ADDR" z/dmulti "$TMP/z.damd64.json"
podman_pull "$DST_ADDR/z/dmulti:v1"

run_ocisync copy --dest-compress-format gzip "$DST_ADDR/z/dmulti:v1" "$DST_ADDR/g/dmulti:v1"
expect_success "and back to gzip"
child_of "$DST_ADDR" g/dmulti:v1 amd64 "$TMP/g.damd64.json"
check_diff_ids "$DST_ADDR" g/dmulti "$TMP/g.damd64.json"

# The recipe for old Docker daemons: zstd images back to Docker schema 2 with gzip layers.
run_ocisync copy -f v2s2 --dest-compress-format gzip "$DST_ADDR/z/multi:v1" "$DST_ADDR/v2g/multi:v1"
expect_success "-f v2s2 --dest-compress-format gzip of a zstd index"
skopeo_raw "$DST_ADDR/v2g/multi:v1" "$TMP/v2g.idx.json"
assert_eq "$(json_eval "$TMP/v2g.idx.json" 'd["mediaType"]')" \
  "application/vnd.docker.distribution.manifest.list.v2+json" "a Docker manifest list"
child_of "$DST_ADDR" v2g/multi:v1 amd64 "$TMP/v2g.amd64.json"
assert_eq "$(media_types "$TMP/v2g.amd64.json" | sort -u | tr '\n' ' ')" \
  "application/vnd.docker.container.image.v1+json application/vnd.docker.distribution.manifest.v2+json application/vnd.docker.image.rootfs.diff.tar.gzip " \
  "of Docker manifests with gzip layers"
check_diff_ids "$DST_ADDR" v2g/multi "$TMP/v2g.amd64.json"
podman_pull "$DST_ADDR/v2g/multi:v1"

log "== into a layout, and sync"
run_ocisync copy --dest-compress-format zstd "$SRC_ADDR/lib/single:v1" "oci:$TMP/zlay:v1"
expect_success "into an oci: layout"
skopeo inspect --raw "oci:$TMP/zlay:v1" >"$TMP/zlay.raw" 2>"$TMP/skopeo.err" &&
  skopeo inspect "oci:$TMP/zlay:v1" >/dev/null 2>>"$TMP/skopeo.err" ||
  fail "skopeo inspect oci:$TMP/zlay:v1 failed: $(cat "$TMP/skopeo.err")"
assert_eq "$(json_eval "$TMP/zlay.raw" '[l["mediaType"] for l in d["layers"]]' | sort -u)" \
  "application/vnd.oci.image.layer.v1.tar+zstd" "skopeo reads the zstd image from the layout"
# umoci 0.4.7 knows no zstd layers: podman reads the layout instead, from a
# lowercase path (podman names the image after it).
lc=/tmp/ocisync-zlay-$$
rm -rf "$lc" && mkdir "$lc" && cp -r "$TMP/zlay/." "$lc/"
podman_cmd pull "oci:$lc:v1" >>"$TMP/podman.log" 2>&1 ||
  { rm -rf "$lc"; fail "podman pull oci:$lc:v1 failed: $(tail -n 5 "$TMP/podman.log")"; }
zid=$(podman_cmd images --format '{{.ID}} {{.Repository}}' 2>>"$TMP/podman.log" | awk '/zlay/ {print $1; exit}')
[ -n "$zid" ] || { rm -rf "$lc"; fail "podman lists no image from oci:$lc"; }
zsums=$(podman_rootfs_sums "$zid")
rm -rf "$lc"
assert_eq "$zsums" "$(layout_rootfs_sums "$TMP/single")" \
  "podman unpacks from the layout the files umoci unpacks from the source"
ls "$TMP/zlay/blobs/sha256" | grep -q '^\.tmp' && fail "temp files left in the layout"
pass "no temp file left in the layout"

cat >"$TMP/sync.yml" <<EOF
$SRC_ADDR:
  images:
    lib/single: [v1]
EOF
run_ocisync sync --src yaml --dest docker --dest-compress-format zstd "$TMP/sync.yml" "$DST_ADDR/sync"
expect_success "sync --dest-compress-format zstd"
skopeo_raw "$DST_ADDR/sync/single:v1" "$TMP/sync.json"
assert_eq "$(json_eval "$TMP/sync.json" '[l["mediaType"] for l in d["layers"]]' | sort -u)" \
  "application/vnd.oci.image.layer.v1.tar+zstd" "sync recompressed the layers"
check_diff_ids "$DST_ADDR" sync/single "$TMP/sync.json"
run_ocisync sync --src yaml --dest docker -f v2s2 "$TMP/sync.yml" "$DST_ADDR/sync2"
expect_success "sync -f v2s2"
assert_eq "$(skopeo_digest "$DST_ADDR/sync2/single:v1")" "$(skopeo_digest "$DST_ADDR/sk/single:v1")" \
  "sync -f v2s2 gives skopeo's copy -f v2s2 digest"

log "== refusals"
run_ocisync copy --dest-compress-format zstd --preserve-digests "$SRC_ADDR/lib/single:v1" "$DST_ADDR/r/a:v1"
expect_failure "--dest-compress-format with --preserve-digests"
assert_eq "$OCISYNC_RC" 2 "a usage error"
assert_contains "$OCISYNC_STDERR" "--preserve-digests forbids" "it says why"
run_ocisync copy --dest-compress-format zstd -f v2s2 "$SRC_ADDR/lib/single:v1" "$DST_ADDR/r/b:v1"
expect_failure "zstd with -f v2s2"
assert_contains "$OCISYNC_STDERR" "has no zstd layers" "it says why"
run_ocisync copy -f v2s2 "$DST_ADDR/z/multi:v1" "$DST_ADDR/r/c:v1"
expect_failure "-f v2s2 of zstd layers"
assert_contains "$OCISYNC_STDERR" "which Docker schema 2 has no media type for" "it names the layer's type"
run_ocisync copy --dest-compress-format zstd --dest-compress-level 20 "$SRC_ADDR/lib/single:v1" "$DST_ADDR/r/d:v1"
expect_failure "level 20"
run_ocisync copy --dest-compress-format gzip --dest-compress-level 12 "$DST_ADDR/z/multi:v1" "$DST_ADDR/r/e:v1"
expect_failure "gzip level 12"
assert_contains "$OCISYNC_STDERR" "out of range for gzip" "it names the range"
run_ocisync copy --dest-compress-format lz4 "$SRC_ADDR/lib/single:v1" "$DST_ADDR/r/f:v1"
expect_failure "lz4"
for r in a b c d e f; do
  assert_eq "$(tag_status "$DST_ADDR" "r/$r" v1)" 404 "nothing tagged in r/$r"
done

# A layer whose bytes match its digest but do not decompress (gzip's magic,
# then garbage): pushed by hand.
printf '\037\213\010\000garbage, not deflate' >"$TMP/bad.layer"
bad="sha256:$(sha256sum <"$TMP/bad.layer" | cut -d' ' -f1)"
python3 - "$TMP/single" "$TMP/badimg" "$TMP/bad.layer" <<'EOF'
import hashlib, json, os, shutil, sys
src, dst, bad = sys.argv[1:4]
shutil.copytree(src, dst)
data = open(bad, "rb").read()
hexd = hashlib.sha256(data).hexdigest()
open(os.path.join(dst, "blobs/sha256", hexd), "wb").write(data)
idx = json.load(open(os.path.join(dst, "index.json")))
mdesc = idx["manifests"][0]
m = json.load(open(os.path.join(dst, "blobs/sha256", mdesc["digest"].split(":")[1])))
m["layers"][0] = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + hexd, "size": len(data)}
raw = json.dumps(m).encode()
mh = hashlib.sha256(raw).hexdigest()
open(os.path.join(dst, "blobs/sha256", mh), "wb").write(raw)
mdesc["digest"] = "sha256:" + mh
mdesc["size"] = len(raw)
json.dump(idx, open(os.path.join(dst, "index.json"), "w"))
EOF
push_image "$TMP/badimg" "$SRC_ADDR/lib/bad:v1"
run_ocisync copy --dest-compress-format zstd "$SRC_ADDR/lib/bad:v1" "$DST_ADDR/r/bad:v1"
expect_failure "a layer that does not decompress"
assert_eq "$OCISYNC_RC" 1 "exit 1"
assert_contains "$OCISYNC_STDERR" "$bad" "the message names the layer"
assert_contains "$OCISYNC_STDERR" "does not decompress" "and what is wrong with it"
assert_eq "$(tag_status "$DST_ADDR" r/bad v1)" 404 "no tag pushed"

done_ok
