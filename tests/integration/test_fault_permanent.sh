#!/usr/bin/env bash
# Faults that do not go away fail the copy cleanly (issue #7), with
# tests/tools/fault_proxy.py in front of one registry:
#   - 404 on one layer's GET at the source, every time: exit 1, the message
#     names the blob's digest, the 404 is not retried, no manifest PUT
#     reaches the destination;
#   - 403 on every upload POST at the destination: exit 1, the message has
#     403, and the fault fired exactly once (client errors are not retried);
#   - one byte flipped (offset 1000) in one layer's GET, every time: exit 1,
#     the message says the content does not match its digest and names it;
#     the blob is not committed, no manifest is pushed;
#   - 500 on every attempt with --retry-times 2, on the manifest GET and on
#     one blob GET: exit 1 after exactly 3 attempts of that request, and
#     the message mentions 500.
# In each case the destination holds no manifest naming a missing blob
# (assert_dest_consistent), and the message names the registry.
. "$(dirname "$0")/netns.sh"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fault.sh"
# Each run takes seconds: a hang should not cost lib.sh's default 120 s.
export OCISYNC_TIMEOUT=${OCISYNC_TIMEOUT:-40}

registry_start src
registry_start dst

want=$(mkimage --out "$TMP/img" --platforms linux/amd64 --layers 2 --layer-size 1500000 --seed permanent)
push_image "$TMP/img" "$SRC_ADDR/lib/app:v1"
skopeo_raw "$SRC_ADDR/lib/app:v1" "$TMP/manifest.json"
layer=$(json_eval "$TMP/manifest.json" 'd["layers"][0]["digest"]')
src_path=lib/app:v1
fast=(--retry-delay 0.1)
log "source image $want; the faults target layer $layer"

# failed_cleanly LABEL REPO MARK: exit 1, the destination got no manifest
# since MARK and is consistent.
failed_cleanly() {
  local label=$1 repo=$2 mark=$3
  expect_failure "$label"
  assert_eq "$OCISYNC_RC" 1 "$label: exit code"
  assert_eq "$(registry_log_count dst "^PUT /v2/$repo/manifests/" "$mark")" 0 \
    "$label: no manifest PUT reached the destination"
  assert_dest_consistent "$DST_ADDR" "$repo" v1 "$label"
}

# --- 404 on a blob, every time ----------------------------------------------
log "--- 404 on every GET of layer $layer at the source"
fault_proxy_start nf "$SRC_ADDR" "GET /v2/.*/blobs/$layer status:404 always"
mark=$(registry_log_mark dst)
run_ocisync copy --debug "${fast[@]}" "docker://$NF_ADDR/$src_path" "docker://$DST_ADDR/t/p404:v1"
failed_cleanly "404 on a source blob" t/p404 "$mark"
assert_contains "$OCISYNC_STDERR" "$layer" "404: the message names the blob's digest"
assert_stderr_matches '404|not found|unknown' "404: the message gives the status"
assert_contains "$OCISYNC_STDERR" "$NF_ADDR" "404: the message names the registry"
assert_eq "$(fault_count nf)" 1 "404: the blob was asked for once (a 404 is not retried)"
fault_proxy_stop nf

# --- 403 on upload POST -------------------------------------------------------
# --jobs 1: one upload at a time, so a second POST could only be a retry.
log "--- 403 on every upload POST at the destination"
fault_proxy_start den "$DST_ADDR" "POST /v2/.*/blobs/uploads/.* status:403 always"
mark=$(registry_log_mark dst)
run_ocisync copy --debug --jobs 1 "${fast[@]}" "docker://$SRC_ADDR/$src_path" "docker://$DEN_ADDR/t/p403:v1"
failed_cleanly "403 on upload POST" t/p403 "$mark"
assert_stderr_matches '\b403\b' "403: the message gives the status"
assert_contains "$OCISYNC_STDERR" "$DEN_ADDR" "403: the message names the registry"
assert_eq "$(fault_count den)" 1 "403: the POST was sent once (client errors are not retried)"
if grep -iE 'retry' "$OCISYNC_STDERR" | grep -qE '\b403\b'; then
  fail "403: --debug shows a retry after the 403: $(grep -iE 'retry' "$OCISYNC_STDERR" | grep -m1 -E '\b403\b')"
fi
pass "403: --debug shows no retry after it"
fault_proxy_stop den

# --- a flipped byte, every time -------------------------------------------------
log "--- byte 1000 of layer $layer flipped on every GET"
fault_proxy_start flip "$SRC_ADDR" "GET /v2/.*/blobs/$layer flip:1000 always"
mark=$(registry_log_mark dst)
run_ocisync copy --debug "${fast[@]}" "docker://$FLIP_ADDR/$src_path" "docker://$DST_ADDR/t/pflip:v1"
failed_cleanly "a flipped byte on every GET" t/pflip "$mark"
assert_contains "$OCISYNC_STDERR" "does not match its digest" "flip: the message says the content does not match"
assert_contains "$OCISYNC_STDERR" "$layer" "flip: the message names the blob's digest"
[ "$(fault_count flip)" -ge 1 ] || fail "flip: the fault never fired"
pass "flip: the corrupted blob was served $(fault_count flip) time(s)"
assert_eq "$(blob_status "$DST_ADDR" t/pflip "$layer")" 404 "flip: the corrupted blob was not committed"
assert_eq "$(registry_log_count dst "^PUT /v2/t/pflip/blobs/uploads/.*digest=$layer.* 201$" "$mark")" 0 \
  "flip: no upload of that blob was completed"
fault_proxy_stop flip

# --- 500 on every attempt with --retry-times 2 --------------------------------------
i=0
for what in "the manifest GET|GET /v2/.*/manifests/.*" "a blob GET|GET /v2/.*/blobs/$layer"; do
  i=$((i + 1))
  label="500 on every attempt of ${what%%|*} with --retry-times 2"
  log "--- $label"
  fault_proxy_start "ise$i" "$SRC_ADDR" "${what#*|} status:500 always"
  v="ISE${i}_ADDR"
  ise=${!v}
  mark=$(registry_log_mark dst)
  repo=t/p500-$i
  run_ocisync copy --debug --retry-times 2 "${fast[@]}" "docker://$ise/$src_path" "docker://$DST_ADDR/$repo:v1"
  failed_cleanly "$label" "$repo" "$mark"
  assert_stderr_matches '\b500\b' "$label: the message mentions 500"
  assert_contains "$OCISYNC_STDERR" "$ise" "$label: the message names the registry"
  fault_requests "ise$i" ' 500 fault=' | cut -c1-120 | sed 's/^/    answered: /'
  assert_eq "$(fault_count "ise$i")" 3 "$label: attempts of the request (1 + 2 retries)"
  fault_proxy_stop "ise$i"
done

done_ok
