#!/usr/bin/env bash
# The destination registry dies (kill -9) and comes back on the same port and
# storage in the middle of a sync of four repositories (issue #7). The
# source's blob GETs go through tests/tools/fault_proxy.py at 2 MB/s so the
# sync lasts a few seconds. Then:
#   - the kill really happened while the sync ran;
#   - every image either arrived (the source's digest at the destination) or
#     is listed as failed in the summary, and the exit code says which;
#   - no destination repository holds a manifest naming a missing blob or
#     child (assert_dest_consistent reads every manifest revision stored);
#   - a rerun without faults completes every image, and a third run uploads
#     nothing.
. "$(dirname "$0")/netns.sh"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fault.sh"

registry_start src
registry_start dst

names="alpha beta gamma delta"
declare -A want
for n in $names; do
  want[$n]=$(mkimage --out "$TMP/$n" --platforms linux/amd64,linux/arm64/v8 --layers 3 \
    --layer-size 1000000 --seed "sync-restart-$n")
  push_image "$TMP/$n" "$SRC_ADDR/lib/$n:v1"
  rm -rf "$TMP/$n/blobs"
done

fault_proxy_start slow "$SRC_ADDR" 'GET /v2/.*/blobs/sha256:.* throttle:2M always'
{
  echo "mirrors:"
  for n in $names; do
    printf '  - from: %s/lib/%s\n    to: %s/m/%s\n    tags: [v1]\n' "$SLOW_ADDR" "$n" "$DST_ADDR" "$n"
  done
} >"$TMP/sync.yml"

dst_restart_during '"POST /v2/m/[a-z]+/blobs/uploads/' 0.7
run_ocisync sync --src yaml --debug --jobs 4 --retry-delay 0.2 --retry-times 6 "$TMP/sync.yml"
dst_restart_check sync

ok=0
for n in $names; do
  st=$(curl -s -o /dev/null -w '%{http_code}' "http://$DST_ADDR/v2/m/$n/manifests/v1" \
    -H 'Accept: application/vnd.oci.image.index.v1+json')
  if [ "$st" = 200 ]; then
    assert_eq "$(skopeo_digest "$DST_ADDR/m/$n:v1")" "${want[$n]}" "m/$n arrived with the source's digest"
    ok=$((ok + 1))
  else
    assert_contains "$OCISYNC_STDERR" "m/$n:v1" "m/$n is missing and the summary lists it as failed"
  fi
  assert_dest_consistent "$DST_ADDR" "m/$n" v1 "m/$n after the restart"
done
if [ "$ok" = 4 ]; then
  assert_eq "$OCISYNC_RC" 0 "every image arrived: exit 0"
else
  assert_eq "$OCISYNC_RC" 1 "$((4 - ok)) images failed: exit 1"
fi

# --- the reruns ---------------------------------------------------------------------------------
sed -i "s#$SLOW_ADDR#$SRC_ADDR#" "$TMP/sync.yml"
run_ocisync sync --src yaml --jobs 4 "$TMP/sync.yml"
expect_success "the rerun without faults"
for n in $names; do
  assert_eq "$(skopeo_digest "$DST_ADDR/m/$n:v1")" "${want[$n]}" "after the rerun: m/$n has the source's digest"
  assert_dest_consistent "$DST_ADDR" "m/$n" v1 "m/$n after the rerun"
done
mark=$(registry_log_mark dst)
run_ocisync sync --src yaml --jobs 4 "$TMP/sync.yml"
expect_success "a third run"
assert_eq "$(registry_log_count dst '^(POST|PUT|PATCH) ' "$mark")" 0 "the third run uploads nothing"

done_ok
