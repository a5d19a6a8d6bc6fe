#!/usr/bin/env bash
# build-push uploads each new layer while it is being built (issue #4):
#   - gzip, default: one streamed PATCH; when the layer is built most of it
#     is already at the registry (the debug log says how much), the blob is
#     PUT once with its digest, and nothing uploads it again;
#   - --no-stream: the same input again uploads nothing (HEAD first);
#   - zstd with --chunk-size 1M: PATCHes with Content-Range, several of them,
#     the first ones sent before the build ended;
#   - a registry that refuses PATCH (416, behind the test proxy): the push
#     still succeeds, the layer going up in one PUT from the built file;
#   - a layer whose input changes during the build: the build fails, the
#     streamed upload is dropped uncommitted, and nothing is tagged;
#   - build --output oci-archive:out.tar opens no upload (the name also parses
#     as an image on docker.io).
# Each pushed image is read back with skopeo and its layer unpacked and
# compared with the input.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fault.sh"
export OCISYNC_TIMEOUT=${OCISYNC_TIMEOUT:-120}

registry_start reg
export SOURCE_DATE_EPOCH=1700000000

mkdir -p "$TMP/ctx/data" "$TMP/ctx2"
# Random bytes: compression is slow and gives nothing back, so the build takes a while.
head -c 24000000 /dev/urandom >"$TMP/ctx/data/big.bin"
echo hello >"$TMP/ctx/data/small.txt"
head -c 12000000 /dev/urandom >"$TMP/ctx2/other.bin"

# check_layer REF FILE...: skopeo copies REF to a layout; its last layer unpacks to the
# files. Sets LAYER to that layer's digest.
check_layer() {
  local ref=$1 out="$TMP/check-$RANDOM"
  mkdir -p "$out"
  shift
  skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$out/layout:x" >/dev/null 2>"$out.err" ||
    fail "skopeo cannot copy $ref: $(tail -n 3 "$out.err")"
  local m layer
  LAYER=""
  m=$(json_eval "$out/layout/index.json" 'd["manifests"][0]["digest"]')
  layer=$(json_eval "$out/layout/blobs/sha256/${m#sha256:}" 'd["layers"][-1]["digest"]')
  mkdir -p "$out/root"
  case $(json_eval "$out/layout/blobs/sha256/${m#sha256:}" 'd["layers"][-1]["mediaType"]') in
    *zstd) zstd -dc "$out/layout/blobs/sha256/${layer#sha256:}" | tar -x -C "$out/root" ;;
    *) tar -xzf "$out/layout/blobs/sha256/${layer#sha256:}" -C "$out/root" ;;
  esac
  for f in "$@"; do
    cmp -s "$out/root/${f#"$TMP"/ctx*/}" "$f" || fail "$ref: ${f##*/} differs from the input"
  done
  pass "$ref: skopeo reads it back and the layer holds the input files"
  LAYER=$layer
}

# sent_at_build_end: from the last run's debug log, the bytes already sent when the layer was built.
sent_at_build_end() {
  sed -n 's/.* built: \([0-9]*\) bytes, \([0-9]*\) of them already sent to .*/\2 \1/p' "$OCISYNC_STDERR" | head -n 1
}

# --- gzip: one streamed PATCH ------------------------------------------------------------------
mark=$(registry_log_mark reg)
run_ocisync build-push --debug --base scratch --platform "linux/amd64=$TMP/ctx:/" \
  --tag "$REG_ADDR/stream/app:gz" --dest-tls-verify=false
expect_success "build-push, gzip"
assert_contains "$OCISYNC_STDOUT" "(1 while building)" "the new layer went up while it was built"
read -r sent size <<<"$(sent_at_build_end)"
[ -n "$sent" ] || fail "the debug log does not say how much was sent during the build"
[ "$sent" -gt 0 ] || fail "nothing of the layer was sent before it was built"
pass "when the layer was built, $sent of its $size bytes were already at the registry"
check_layer "$REG_ADDR/stream/app:gz" "$TMP/ctx/data/big.bin" "$TMP/ctx/data/small.txt"
assert_eq "$(registry_log_count reg "^PATCH /v2/stream/app/blobs/uploads/" "$mark")" 1 \
  "gzip: one PATCH carried the whole layer"
assert_eq "$(registry_log_count reg "^PUT /v2/stream/app/blobs/uploads/.*digest=$LAYER 201" "$mark")" 1 \
  "the layer was committed once, and not uploaded again from the built file"

# --no-stream: the same layer again goes nowhere, since a HEAD finds it there.
mark=$(registry_log_mark reg)
run_ocisync build-push --no-stream --base scratch --platform "linux/amd64=$TMP/ctx:/" \
  --tag "$REG_ADDR/stream/app:again" --dest-tls-verify=false
expect_success "build-push --no-stream of the same input"
assert_contains "$OCISYNC_STDOUT" "(0 while building)" "--no-stream: nothing streamed"
assert_eq "$(registry_log_count reg "^(POST|PATCH|PUT) /v2/stream/app/blobs/" "$mark")" 0 \
  "--no-stream: the layer the registry has is not uploaded again"
assert_eq "$(skopeo_digest "$REG_ADDR/stream/app:again")" "$(skopeo_digest "$REG_ADDR/stream/app:gz")" \
  "--no-stream: the same image"

# --- zstd, chunks of 1 MiB with Content-Range ------------------------------------------------------
mark=$(registry_log_mark reg)
run_ocisync build-push --debug --base scratch --platform "linux/amd64=$TMP/ctx:/" --compression zstd \
  --chunk-size 1M --tag "$REG_ADDR/stream/app:zst" --dest-tls-verify=false
expect_success "build-push, zstd in 1 MiB chunks"
assert_contains "$OCISYNC_STDOUT" "(1 while building)" "the zstd layer went up while it was built"
read -r sent size <<<"$(sent_at_build_end)"
[ "${sent:-0}" -gt 0 ] || fail "no chunk was sent before the zstd layer was built"
check_layer "$REG_ADDR/stream/app:zst" "$TMP/ctx/data/big.bin"
patches=$(registry_log_count reg "^PATCH /v2/stream/app/blobs/uploads/.* 202" "$mark")
[ "$patches" -ge $((size / 1048576)) ] || fail "zstd: $patches PATCHes for $size bytes in 1 MiB chunks"
pass "zstd: $patches PATCH chunks for $size bytes; $sent of them sent during the build"

# --- a registry that refuses PATCH --------------------------------------------------------------
fault_proxy_start nopatch "$REG_ADDR" 'PATCH .* status:416 always'
mark=$(registry_log_mark reg)
run_ocisync build-push --debug --base scratch --platform "linux/amd64=$TMP/ctx2:/" \
  --tag "$NOPATCH_ADDR/stream/refused:1" --dest-tls-verify=false
expect_success "build-push to a registry that refuses PATCH"
assert_contains "$OCISYNC_STDOUT" "(0 while building)" "nothing was streamed"
assert_contains "$OCISYNC_STDERR" "it goes up once built" "the debug log says the layer waits for its build"
check_layer "$REG_ADDR/stream/refused:1" "$TMP/ctx2/other.bin"
assert_eq "$(registry_log_count reg "^PUT /v2/stream/refused/blobs/uploads/.*digest=$LAYER 201" "$mark")" 1 \
  "the layer went up in one PUT"
assert_eq "$(registry_log_count reg "^PATCH " "$mark")" 0 "no PATCH reached the registry"
fault_proxy_stop nopatch

# --- the input changes during the build: nothing is committed ----------------------------------------
mkdir -p "$TMP/ctx3"
head -c 20000000 /dev/urandom >"$TMP/ctx3/a-big.bin"
echo start >"$TMP/ctx3/z-growing.txt"
(for _ in $(seq 1 3000); do echo more >>"$TMP/ctx3/z-growing.txt"; sleep 0.005; done) &
grower=$!
mark=$(registry_log_mark reg)
# (--no-cache: the cache would read the file before the build, and fail there, earlier.)
run_ocisync build-push --debug --no-cache --base scratch --platform "linux/amd64=$TMP/ctx3:/" --level 9 \
  --tag "$REG_ADDR/stream/broken:1" --dest-tls-verify=false
kill "$grower" 2>/dev/null || true
wait "$grower" 2>/dev/null || true
expect_failure "a file that grows during the build"
assert_contains "$OCISYNC_STDERR" "z-growing.txt" "the error names the file"
assert_eq "$(registry_log_count reg "^PUT /v2/stream/broken/" "$mark")" 0 \
  "no blob and no manifest was committed"
assert_eq "$(registry_log_count reg "^POST /v2/stream/broken/blobs/uploads/" "$mark")" 1 \
  "the streamed upload had been opened"
status=$(curl -s -o /dev/null -w '%{http_code}' "http://$REG_ADDR/v2/stream/broken/manifests/1")
assert_eq "$status" 404 "the tag does not exist"

# --- build to an archive streams nowhere ---------------------------------------------------------
# "oci-archive:out.tar" also parses as the image docker.io/library/oci-archive:out.tar.
cd "$TMP"
run_ocisync build --debug --base scratch --platform "linux/amd64=$TMP/ctx2:/" --output oci-archive:out.tar
cd - >/dev/null
expect_success "build to a relative oci-archive: path"
[ -s "$TMP/out.tar" ] || fail "build --output oci-archive:out.tar wrote no archive"
if grep -E "layer push|docker\.io" "$OCISYNC_STDERR" >/dev/null; then
  fail "build to an archive tried a registry: $(grep -m1 -E 'layer push|docker\.io' "$OCISYNC_STDERR")"
fi
pass "build to an archive opened no upload anywhere"

done_ok
