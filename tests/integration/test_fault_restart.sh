#!/usr/bin/env bash
# The destination registry dies (kill -9) and comes back on the same port
# and storage in the middle of a copy (issue #7). The workload: an index of
# 3 images with 4 layers of 2 MB each, --jobs 2, the source's blob GETs
# throttled to 2 MB/s by tests/tools/fault_proxy.py so that the copy lasts a
# few seconds. A background subshell waits for the destination's first blob
# upload to start, lets it run for a moment, kills the registry, keeps it
# down for a second and restarts it (registry_restart). Then:
#   - the kill really happened while ocisync was running;
#   - the copy completed (retried past the outage: the source's digest is at
#     the destination, read back with skopeo) or failed cleanly (exit 1 and
#     a message naming the destination);
#   - either way the destination holds no manifest naming a missing blob or
#     child (assert_dest_consistent, which also reads every manifest
#     revision stored in the repository);
#   - a second copy, with no fault, succeeds with the source's digest.
. "$(dirname "$0")/netns.sh"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fault.sh"

registry_start src
registry_start dst

want=$(mkimage --out "$TMP/img" --platforms linux/amd64,linux/arm64/v8,linux/s390x --layers 4 \
  --layer-size 2000000 --seed restart)
push_image "$TMP/img" "$SRC_ADDR/lib/multi:v1"
rm -rf "$TMP/img/blobs"
repo=t/multi

# 2 MB/s per blob GET: 12 layers at --jobs 2 take about 6 s.
fault_proxy_start slow "$SRC_ADDR" 'GET /v2/.*/blobs/sha256:.* throttle:2M always'

dst_restart_during '"POST /v2/t/multi/blobs/uploads/' 0.5 # 0.5 s on, uploads are streaming
run_ocisync copy --debug --jobs 2 --retry-delay 0.2 --retry-times 6 \
  "docker://$SLOW_ADDR/lib/multi:v1" "docker://$DST_ADDR/$repo:v1"
dst_restart_check copy

# Requests the restarted registry served (its access lines come after its
# "listening" line), for the record.
after=$(awk -v n="$((DST_LISTENING_BEFORE + 1))" '/listening on/ { c++ } c >= n && /"(GET|HEAD|POST|PUT|PATCH) \/v2\/t\/multi/' "$TMP/dst.log" | wc -l)
log "the restarted destination served $after requests of the copy; ocisync retried $(grep -ci 'retry' "$OCISYNC_STDERR" || true) times:"
grep -i 'retry' "$OCISYNC_STDERR" | head -n 8 | cut -c1-200 | sed 's/^/    /'

if [ "$OCISYNC_RC" = 0 ]; then
  pass "the copy completed across the restart (exit 0)"
  [ "$after" -gt 0 ] || fail "the copy succeeded but never talked to the restarted registry: the kill hit nothing"
  pass "the copy went on with the restarted registry ($after requests)"
  assert_eq "$(skopeo_digest "$DST_ADDR/$repo:v1")" "$want" "destination digest equals source"
else
  expect_failure "the copy gave up during the outage"
  assert_eq "$OCISYNC_RC" 1 "the failed copy's exit code"
  assert_contains "$OCISYNC_STDERR" "$DST_ADDR" "the failure names the destination registry"
fi
assert_dest_consistent "$DST_ADDR" "$repo" v1 "after the restart"

# --- the rerun ----------------------------------------------------------------
run_ocisync copy --jobs 2 "docker://$SRC_ADDR/lib/multi:v1" "docker://$DST_ADDR/$repo:v1"
expect_success "the rerun without faults"
assert_eq "$(skopeo_digest "$DST_ADDR/$repo:v1")" "$want" "after the rerun: destination digest equals source"
assert_dest_consistent "$DST_ADDR" "$repo" v1 "after the rerun"
skopeo_raw "$DST_ADDR/$repo:v1" "$TMP/index.json"
assert_eq "$(index_children "$TMP/index.json" | wc -l | tr -d ' ')" 3 "the index lists 3 images"

done_ok
