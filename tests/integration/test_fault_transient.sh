#!/usr/bin/env bash
# Transient server errors are retried (issue #7). tests/tools/fault_proxy.py
# sits in front of the source or the destination registry and answers one
# request with 500, 502 or 503 (or 429 with Retry-After) instead of the
# registry; for each of
#   - a blob GET and a manifest GET at the source,
#   - an upload POST, a chunk PATCH (--chunk-size 1M), a monolithic upload
#     PUT, the PUT closing a chunked upload, a blob HEAD and the manifest
#     PUT at the destination,
# the copy succeeds (exit 0), the destination's digest equals the source's
# (read back with skopeo), the fault fired, and --debug printed a line with
# "retry" and the status. 429 with "Retry-After: 1" and with an HTTP-date
# about 2 s ahead, on the manifest GET and on a blob GET: the run takes at
# least ~1 s (a loose lower bound; no upper bound is ever asserted). With --retry-times 0 the same 503 fails the copy
# (exit 1, a message with 503, no second attempt) and the destination holds
# no manifest naming a missing blob.
. "$(dirname "$0")/netns.sh"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fault.sh"
# Each run takes seconds: a hang should not cost lib.sh's default 120 s.
export OCISYNC_TIMEOUT=${OCISYNC_TIMEOUT:-40}

registry_start src
registry_start dst

# Two 1.5 MB layers: with --chunk-size 1M each goes up in two PATCHes.
want=$(mkimage --out "$TMP/img" --platforms linux/amd64 --layers 2 --layer-size 1500000 --seed transient)
push_image "$TMP/img" "$SRC_ADDR/lib/app:v1"
src_path=lib/app:v1
# A short first backoff keeps the test quick; the retry count is the default.
fast=(--retry-delay 0.1)

n=0
# scenario LABEL SIDE RULE [OCISYNC_ARGS...]: the proxy in front of SIDE (src
# or dst) with RULE; the copy must succeed with the right digest, the fault
# must have fired, and --debug must show a retry for it. Sets $scen_ms (the
# run's wall time) and $scen_repo.
scenario() {
  local label=$1 side=$2 rule=$3 p s d fired code start
  shift 3
  n=$((n + 1))
  p=fp$n
  scen_repo=t/s$n
  log "--- $label ($side: $rule)"
  if [ "$side" = src ]; then
    fault_proxy_start "$p" "$SRC_ADDR" "$rule"
    s="FP${n}_ADDR"
    s=${!s}
    d=$DST_ADDR
  else
    fault_proxy_start "$p" "$DST_ADDR" "$rule"
    s=$SRC_ADDR
    d="FP${n}_ADDR"
    d=${!d}
  fi
  start=$(date +%s%N)
  run_ocisync copy --debug "${fast[@]}" "$@" "docker://$s/$src_path" "docker://$d/$scen_repo:v1"
  scen_ms=$(elapsed_ms "$start")
  expect_success "$label: the copy"
  assert_eq "$(skopeo_digest "$DST_ADDR/$scen_repo:v1")" "$want" "$label: destination digest equals source"
  fired=$(fault_count "$p")
  [ "$fired" -gt 0 ] || fail "$label: the fault never fired (the rule matched nothing): $(fault_requests "$p" | cut -c1-160 | tr '\n' ';')"
  pass "$label: the fault fired $fired time(s)"
  code=$(sed -E 's/^status:([0-9]{3}).*/\1/' <<<"$(awk '{print $3}' <<<"$rule")")
  # The status, not a delay such as "in 500 ms".
  assert_stderr_matches "retry.*\b$code\b($|[^ ]| [^m])|\b$code\b($|[^ ]| [^m]).*retry" \
    "$label: --debug shows the retry and its reason"
  fault_proxy_stop "$p"
}

BLOB_GET='GET /v2/.*/blobs/sha256:[0-9a-f]{64}'
MANIFEST_GET='GET /v2/.*/manifests/.*'
UPLOAD_POST='POST /v2/.*/blobs/uploads/'
UPLOAD_PATCH='PATCH /v2/.*/blobs/uploads/.*'
UPLOAD_PUT='PUT /v2/.*/blobs/uploads/.*'

for code in 500 502 503; do
  scenario "$code on a source blob GET" src "$BLOB_GET status:$code times=1"
  scenario "$code on the source manifest GET" src "$MANIFEST_GET status:$code times=1"
  scenario "$code on an upload POST" dst "$UPLOAD_POST status:$code times=1"
  scenario "$code on a chunk PATCH" dst "$UPLOAD_PATCH status:$code times=1" --chunk-size 1M
  # Default chunk size: each blob goes up in one PUT with a body.
  scenario "$code on a monolithic upload PUT" dst "$UPLOAD_PUT status:$code times=1 min-body=1"
done
# The PUT that closes a chunked upload has no body (the config blob, under
# 1M, still goes up in one PUT with a body: max-body=0 leaves it alone).
scenario "503 on the PUT closing a chunked upload" dst "$UPLOAD_PUT status:503 times=1 max-body=0" --chunk-size 1M
# Blobs are asked for with HEAD only in a repository that has a tag (one
# with none gets them without asking): this scenario's gets one first.
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "docker://$SRC_ADDR/$src_path" \
  "docker://$DST_ADDR/t/s$((n + 1)):seed" >>"$TMP/skopeo.log" 2>&1 ||
  fail "skopeo copy of the seed tag failed: $(tail -n 5 "$TMP/skopeo.log")"
scenario "503 on a destination blob HEAD" dst "HEAD /v2/.*/blobs/sha256:.* status:503 times=1"
scenario "503 on the destination manifest PUT" dst "PUT /v2/.*/manifests/.* status:503 times=1"

# --- 429 with Retry-After -----------------------------------------------------
# The backoff alone would wait about 0.1 s: a run of a second or more shows
# that Retry-After was honoured. Lower bounds only. Each form is tried on the
# manifest GET and on a blob GET (where a failed request restarts the whole
# blob transfer). "date+2" is an HTTP-date 2 s ahead when the fault fires
# (whole seconds: between 1 and 2 s of wait).
for where in "the source manifest GET|$MANIFEST_GET" "a source blob GET|$BLOB_GET"; do
  for ra in 1 date+2; do
    case $ra in 1) form="Retry-After: 1" ;; *) form="an HTTP-date Retry-After" ;; esac
    scenario "429 with $form on ${where%%|*}" src "${where#*|} status:429:retry-after=$ra times=1"
    sent=$(grep -m1 -oE ' fault .* retry-after=[^ ]+' "$TMP/fp$n.log" | sed -E 's/.* retry-after=//; s/_/ /g' || true)
    [ "$scen_ms" -ge 900 ] ||
      fail "429 with $form ($sent) on ${where%%|*}: the copy took only $scen_ms ms: Retry-After was not honoured"
    pass "429 with $form ($sent) on ${where%%|*}: the copy took $scen_ms ms (>= ~1 s)"
  done
done

# --- no retries: the same fault is final --------------------------------------
log "--- --retry-times 0: a 503 on a source blob GET fails the copy"
fault_proxy_start once "$SRC_ADDR" "$BLOB_GET status:503 times=1"
mark=$(registry_log_mark dst)
run_ocisync copy --debug --retry-times 0 "${fast[@]}" "docker://$ONCE_ADDR/$src_path" "docker://$DST_ADDR/t/noretry:v1"
expect_failure "--retry-times 0 with a 503"
assert_eq "$OCISYNC_RC" 1 "--retry-times 0: exit code"
assert_stderr_matches '503' "--retry-times 0: the message gives the status"
assert_contains "$OCISYNC_STDERR" "$ONCE_ADDR" "--retry-times 0: the message names the registry"
assert_eq "$(fault_count once)" 1 "--retry-times 0: the fault fired once"
blob=$(fault_requests once ' 503 fault=' | awk '{print $2}' | sed 's|.*/blobs/||')
assert_eq "$(fault_requests once "^GET [^ ]*/blobs/$blob " | wc -l | tr -d ' ')" 1 \
  "--retry-times 0: the failed blob was not asked for again"
assert_eq "$(registry_log_count dst '^PUT /v2/t/noretry/manifests/' "$mark")" 0 "--retry-times 0: no manifest was pushed"
assert_dest_consistent "$DST_ADDR" t/noretry v1 "--retry-times 0"

done_ok
