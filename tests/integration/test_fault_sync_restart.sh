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

registry_detach dst
listening_before=$(grep -c 'listening on' "$TMP/dst.log")
(
  for _ in $(seq 1 600); do
    grep -qE '"POST /v2/m/[a-z]+/blobs/uploads/' "$TMP/dst.log" && break
    sleep 0.05
  done
  if ! grep -qE '"POST /v2/m/[a-z]+/blobs/uploads/' "$TMP/dst.log"; then
    echo "no upload started within 30 s" >"$TMP/restart.skipped"
    exit 0
  fi
  sleep 0.7
  date +%s%N >"$TMP/killed.at"
  registry_kill dst
  sleep 1
  registry_restart dst
  date +%s%N >"$TMP/restarted.at"
) &
restarter=$!

start=$(date +%s%N)
run_ocisync sync --src yaml --debug --jobs 4 --retry-delay 0.2 --retry-times 6 "$TMP/sync.yml"
ended=$(date +%s%N)
wait "$restarter" || fail "the restarting subshell failed"
[ ! -f "$TMP/restart.skipped" ] || fail "harness: $(cat "$TMP/restart.skipped")"
[ -f "$TMP/restarted.at" ] || fail "harness: the destination was not restarted"
killed_at=$(cat "$TMP/killed.at")
[ "$killed_at" -lt "$ended" ] ||
  fail "harness: the destination was killed after the sync ended (exit $OCISYNC_RC): too late to test anything"
pass "the destination was killed $(((killed_at - start) / 1000000)) ms into a sync of $(((ended - start) / 1000000)) ms"
[ "$(grep -c 'listening on' "$TMP/dst.log")" -gt "$listening_before" ] || fail "the restarted registry never said it was listening"

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
