#!/usr/bin/env bash
# Broken connections are retried (issue #7). tests/tools/fault_proxy.py sits
# in front of the source or the destination registry and, once:
#   - resets the connection (TCP RST) 1,000,000 bytes into a 5 MiB blob
#     download;
#   - resets it 500,000 bytes into a chunk upload (PATCH, --chunk-size 1M),
#     into the first chunk and into a later one (the registry has kept part
#     of the cut chunk: distribution 2.8.2 appends what it got);
#   - resets it 1,000,000 bytes into a monolithic upload PUT;
#   - closes a blob download after 1,000,000 bytes (the headers promised
#     more: a truncated body);
#   - on every response, source and destination, closes the kept-alive
#     connection after answering, without "Connection: close";
#   - stalls (says nothing) past --timeout 2: on the manifest GET, on a blob
#     GET before the headers, and in the middle of a blob body. The stall
#     outlasts the whole run's limit, so only ocisync's own timeout ends it.
# Each copy completes (exit 0) with the source's digest, read back with
# skopeo, every blob of it present, and the fault fired at least once.
. "$(dirname "$0")/netns.sh"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fault.sh"
# Each run takes seconds: a hang should not cost lib.sh's default 120 s.
export OCISYNC_TIMEOUT=${OCISYNC_TIMEOUT:-40}

registry_start src
registry_start dst

# Two 5 MiB layers (random bytes: the compressed blobs are a little larger).
want=$(mkimage --out "$TMP/img" --platforms linux/amd64 --layers 2 --layer-size $((5 * 1024 * 1024)) --seed connection)
push_image "$TMP/img" "$SRC_ADDR/lib/app:v1"
skopeo_raw "$SRC_ADDR/lib/app:v1" "$TMP/manifest.json"
src_path=lib/app:v1
fast=(--retry-delay 0.1)

n=0
# scenario LABEL SIDE RULE [OCISYNC_ARGS...]: the fault proxy in front of
# SIDE (src, dst, or both: the same rule on each side); the copy must
# succeed with the source's digest and the fault must have fired, and
# --debug must show a retry (unless NO_RETRY_NEEDED=1). Sets $scen_ms and
# $scen_proxies.
scenario() {
  local label=$1 side=$2 rule=$3 s=$SRC_ADDR d=$DST_ADDR p fired=0 repo start v
  shift 3
  n=$((n + 1))
  repo=t/c$n
  scen_proxies=()
  log "--- $label ($side: $rule)"
  if [ "$side" = src ] || [ "$side" = both ]; then
    p=fs$n
    fault_proxy_start "$p" "$SRC_ADDR" "$rule"
    v="FS${n}_ADDR"
    s=${!v}
    scen_proxies+=("$p")
  fi
  if [ "$side" = dst ] || [ "$side" = both ]; then
    p=fd$n
    fault_proxy_start "$p" "$DST_ADDR" "$rule"
    v="FD${n}_ADDR"
    d=${!v}
    scen_proxies+=("$p")
  fi
  start=$(date +%s%N)
  run_ocisync copy --debug "${fast[@]}" "$@" "docker://$s/$src_path" "docker://$d/$repo:v1"
  scen_ms=$(elapsed_ms "$start")
  expect_success "$label: the copy"
  assert_eq "$(skopeo_digest "$DST_ADDR/$repo:v1")" "$want" "$label: destination digest equals source"
  assert_blobs_present "$DST_ADDR" "$repo" "$TMP/manifest.json" "$label: the image"
  for p in "${scen_proxies[@]}"; do
    v=$(fault_count "$p")
    [ "$v" -gt 0 ] || fail "$label: proxy $p fired no fault (the rule matched nothing): $(fault_requests "$p" | cut -c1-160 | tr '\n' ';')"
    pass "$label: proxy $p fired $v fault(s)"
    fired=$((fired + v))
  done
  # A connection closed between requests needs no retry when the client
  # sees the close before it reuses the connection.
  if [ "${NO_RETRY_NEEDED:-0}" = 1 ]; then
    log "$label: $(grep -ci 'retry' "$OCISYNC_STDERR" || true) retry lines in --debug"
    return 0
  fi
  if ! grep -qi 'retry' "$OCISYNC_STDERR"; then
    fail "$label: --debug printed no retry line"
  fi
  pass "$label: --debug shows a retry ($(grep -m1 -io 'retry.*' "$OCISYNC_STDERR" | cut -c1-160))"
}
stop_proxies() {
  local p
  for p in "${scen_proxies[@]}"; do fault_proxy_stop "$p"; done
}

BLOB_GET='GET /v2/.*/blobs/sha256:[0-9a-f]{64}'

# --- resets -----------------------------------------------------------------
# The config blob (under 1 KB) is too short for these rules: they hit a layer.
scenario "reset 1000000 bytes into a blob download" src "$BLOB_GET reset-after:1000000 times=1"
stop_proxies
scenario "reset 500000 bytes into the first chunk PATCH" dst \
  "PATCH /v2/.*/blobs/uploads/.* reset-after:500000 times=1" --chunk-size 1M --jobs 1
stop_proxies
scenario "reset 500000 bytes into a later chunk PATCH" dst \
  "PATCH /v2/.*/blobs/uploads/.* reset-after:500000 skip=2 times=1" --chunk-size 1M --jobs 1
stop_proxies
scenario "reset 1000000 bytes into a monolithic upload PUT" dst \
  "PUT /v2/.*/blobs/uploads/.* reset-after:1000000 times=1"
stop_proxies

# --- a truncated body ---------------------------------------------------------
scenario "a blob body cut (FIN) after 1000000 bytes" src "$BLOB_GET truncate:1000000 times=1"
stop_proxies

# --- keep-alive connections closed between requests --------------------------
NO_RETRY_NEEDED=1 scenario "every connection closed after its response" both "* .* close-after-response always"
for p in "${scen_proxies[@]}"; do
  reqs=$(fault_log_count "$p" '^[0-9:.]+ request ')
  conns=$(fault_log_count "$p" '^[0-9:.]+ connect ')
  [ "$conns" -ge "$reqs" ] || fail "proxy $p: $reqs requests on only $conns connections although each was closed"
  pass "proxy $p: $reqs requests took $conns connections (none reused after its close)"
done
stop_proxies

# --- stalls past --timeout ------------------------------------------------------
# The proxy stalls for an hour: without a working --timeout the run would
# hit OCISYNC_TIMEOUT (40 s by default here) and the test fails there.
for what in "the manifest GET|GET /v2/.*/manifests/.* stall:3600 times=1" \
  "a blob GET, before the headers|$BLOB_GET stall:3600 times=1" \
  "a blob GET, 1000000 bytes into the body|$BLOB_GET stall:3600:after=1000000 times=1"; do
  scenario "a stall past --timeout 2 on ${what%%|*}" src "${what#*|}" --timeout 2
  [ "$scen_ms" -ge 1500 ] || fail "stall on ${what%%|*}: the copy took only $scen_ms ms, less than --timeout 2"
  pass "stall on ${what%%|*}: the copy took $scen_ms ms (the timeout, 2 s, came first)"
  stop_proxies
done

done_ok
