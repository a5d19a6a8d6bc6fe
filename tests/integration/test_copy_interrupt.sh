#!/usr/bin/env bash
# SIGINT or SIGTERM in the middle of a copy stops it cleanly: exit 130, a
# message saying what was done, nothing committed that names a missing blob
# (no manifest, no tag), and a rerun completes only what is missing.
. "$(dirname "$0")/lib.sh"

registry_start src
registry_start dst

# One large layer (so the copy is still running when the signal comes) and small ones.
want=$(mkimage --out "$TMP/img" --platforms linux/amd64 --layers 3 --layer-size 40000000 --seed interrupt)
push_image "$TMP/img" "$SRC_ADDR/lib/int:v1"
skopeo_raw "$SRC_ADDR/lib/int:v1" "$TMP/manifest.json"
nblobs=$(manifest_blobs "$TMP/manifest.json" | wc -l)

for sig in INT TERM; do
  repo=lib/int-$(printf '%s' "$sig" | tr '[:upper:]' '[:lower:]')
  mark=$(registry_log_mark dst)
  log "+ ocisync copy (SIG$sig once the first blob upload is under way)"
  set +e
  timeout -k 5 120 "$OCISYNC_BIN" copy --chunk-size 1M "docker://$SRC_ADDR/lib/int:v1" \
    "docker://$DST_ADDR/$repo:v1" >"$TMP/$sig.out" 2>"$TMP/$sig.err" &
  pid=$!
  # Wait for a PATCH to reach the destination: a blob is then half-way.
  for _ in $(seq 1 200); do
    [ "$(registry_log_count dst "^PATCH /v2/$repo/" "$mark")" -gt 0 ] && break
    sleep 0.05
  done
  kill -"$sig" "$pid"
  wait "$pid"
  rc=$?
  set -e
  assert_eq "$rc" 130 "SIG$sig: exit code"
  assert_contains "$TMP/$sig.err" "interrupted by SIG$sig" "SIG$sig: stderr says it was interrupted"
  assert_contains "$TMP/$sig.err" "nothing half-done was committed" "SIG$sig: stderr says nothing half-done was kept"
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMP/$sig.err"; then
    fail "SIG$sig: sanitizer report: $(grep -m1 -E 'Sanitizer|runtime error' "$TMP/$sig.err")"
  fi
  assert_eq "$(registry_log_count dst "^PUT /v2/$repo/manifests/" "$mark")" 0 "SIG$sig: no manifest was pushed"
  assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "http://$DST_ADDR/v2/$repo/manifests/v1")" 404 \
    "SIG$sig: the tag does not exist at the destination"

  # The rerun finishes the job and uploads only what is missing.
  mark=$(registry_log_mark dst)
  run_ocisync copy --chunk-size 1M "docker://$SRC_ADDR/lib/int:v1" "docker://$DST_ADDR/$repo:v1"
  expect_success "SIG$sig: the rerun"
  assert_eq "$(skopeo_digest "$DST_ADDR/$repo:v1")" "$want" "SIG$sig: the rerun's digest equals the source"
  assert_blobs_present "$DST_ADDR" "$repo" "$TMP/manifest.json" "the image after the rerun"
  started=$(registry_log_count dst "^POST /v2/$repo/blobs/uploads/" "$mark")
  [ "$started" -le "$nblobs" ] || fail "SIG$sig: the rerun started $started uploads for $nblobs blobs"
  pass "SIG$sig: the rerun started $started uploads for $nblobs blobs"
done

done_ok
