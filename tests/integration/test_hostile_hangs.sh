#!/usr/bin/env bash
# Requests that never end, and a stop that does not wait for them
# (tests/tools/hostile.py in front of a real registry). With --timeout 3
# --retry-times 0, each of these ends with exit 1 and a message naming
# what was wrong, well within its deadline:
#   a status line that never ends; endless "100 Continue"; a header byte
#   every second (the idle timeout never trips, the 6 s deadline does); a
#   blob body byte every second (the low-speed limit); a 404 and a 302 whose
#   bodies never end.
# Then SIGTERM ends, within a second and with exit 130, a copy from a
# silent source (--timeout 30), a copy waiting out a Retry-After of
# 999999 s (capped at 60), a sync listing a silent registry, and a
# build-push resolving its base from one; no tag is pushed by any of them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_tls.sh"
. "$(dirname "$0")/lib_hostile.sh"

registry_start src
registry_start dst
want=$(mkimage --out "$TMP/img" --platforms linux/amd64 --layers 1 --layer-size 200000 --seed hang --tag v1)
push_image "$TMP/img" "$SRC_ADDR/lib/app:v1"


# hang KIND MATCH MAX_MS MESSAGE [hostile.py options...]: a copy through a
# server that hangs MATCH requests that way ends in MAX_MS with MESSAGE.
hang() {
  local kind=$1 match=$2 max=$3 msg=$4 name="h_${1//-/_}" v start ms
  shift 4
  hostile_start "$name" --upstream "$SRC_ADDR" --hang "$kind" --hang-match "$match" "$@"
  v="$(echo "$name" | tr '[:lower:]' '[:upper:]')_ADDR"
  start=$(date +%s%N)
  OCISYNC_TIMEOUT=60 run_ocisync copy --timeout 3 --retry-times 0 "docker://${!v}/lib/app:v1" \
    "docker://$DST_ADDR/$name/app:v1"
  ms=$((($(date +%s%N) - start) / 1000000))
  expect_failure "$kind: the copy fails"
  assert_contains "$OCISYNC_STDERR" "$msg" "$kind: the message says why"
  [ "$ms" -le "$max" ] || fail "$kind: the copy took $ms ms, more than $max"
  pass "$kind: over in $ms ms (at most $max)"
  assert_ne "$(hostile_log_count "$name" "action=hang-$kind")" 0 "$kind: the server did hang the request"
  assert_eq "$(tag_status "$DST_ADDR" "$name/app" v1)" 404 "$kind: the destination has no tag"
}

hang status-line '* /v2/.*/manifests/.*' 10000 "input exceeds a limit"
hang continue '* /v2/.*/manifests/.*' 10000 "input exceeds a limit"
# A HEAD and then a GET each meet the 6 s deadline.
hang trickle-headers '* /v2/.*/manifests/.*' 20000 "no complete answer within 6 s" --interval 1
hang trickle-body 'GET /v2/.*/blobs/.*' 15000 "below the low-speed limit" --interval 1
hang error-body '* /v2/.*/manifests/.*' 10000 "HTTP 404"
hang redirect-body '* /v2/.*/manifests/.*' 10000 "more than 5 redirects"

# --- SIGTERM --------------------------------------------------------------------------------------
# term_after WAIT_ERE ARGS...: starts ocisync ARGS, waits until its stderr
# matches WAIT_ERE (or 2 s when WAIT_ERE is empty), sends SIGTERM and sets
# TERM_RC and TERM_MS (from the signal to the exit).
term_after() {
  local ere=$1 pid start i
  shift
  _LIB_RUN_N=$((_LIB_RUN_N + 1))
  OCISYNC_STDOUT="$TMP/ocisync.$_LIB_RUN_N.stdout"
  OCISYNC_STDERR="$TMP/ocisync.$_LIB_RUN_N.stderr"
  log "+ ocisync $* (then SIGTERM)"
  "$OCISYNC_BIN" "$@" </dev/null >"$OCISYNC_STDOUT" 2>"$OCISYNC_STDERR" &
  pid=$!
  if [ -n "$ere" ]; then
    for i in $(seq 1 100); do
      grep -qE -- "$ere" "$OCISYNC_STDERR" && break
      sleep 0.1
    done
    grep -qE -- "$ere" "$OCISYNC_STDERR" || { kill -9 "$pid"; fail "never saw /$ere/ on stderr: $(tail -n 5 "$OCISYNC_STDERR")"; }
  else
    sleep 2
  fi
  start=$(date +%s%N)
  kill -TERM "$pid"
  set +e
  wait "$pid"
  TERM_RC=$?
  set -e
  TERM_MS=$((($(date +%s%N) - start) / 1000000))
  log "  exit $TERM_RC ${TERM_MS} ms after SIGTERM"
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error: ' "$OCISYNC_STDERR"; then
    fail "sanitizer report: $(grep -m1 -E 'Sanitizer|runtime error' "$OCISYNC_STDERR")"
  fi
}

# expect_term LABEL: the run ended with 130 within a second of SIGTERM, saying so.
expect_term() {
  assert_eq "$TERM_RC" 130 "$1: exit code after SIGTERM"
  [ "$TERM_MS" -le 1000 ] || fail "$1: ocisync exited $TERM_MS ms after SIGTERM, more than a second"
  pass "$1: over $TERM_MS ms after SIGTERM"
  assert_contains "$OCISYNC_STDERR" "interrupted by SIGTERM" "$1: the message says so"
}

hostile_start silent --upstream "$SRC_ADDR" --hang silent --hang-match '* /v2/.*/(manifests|tags)/.*'
term_after "" copy --timeout 30 "docker://$SILENT_ADDR/lib/app:v1" "docker://$DST_ADDR/term1/app:v1"
expect_term "copy from a silent source"
assert_eq "$(tag_status "$DST_ADDR" term1/app v1)" 404 "copy: no tag"

hostile_start later --upstream "$SRC_ADDR" --retry-after 999999 --retry-after-status 503 \
  --retry-after-match '* /v2/.*/manifests/.*'
term_after 'retry 1 of 3 in 60000 ms' copy --debug --retry-times 3 \
  "docker://$LATER_ADDR/lib/app:v1" "docker://$DST_ADDR/term2/app:v1"
pass "a Retry-After of 999999 s is waited out for 60 s at most"
expect_term "copy waiting out a Retry-After"
assert_eq "$(tag_status "$DST_ADDR" term2/app v1)" 404 "Retry-After: no tag"

term_after "" sync --timeout 30 --src docker --dest docker "$SILENT_ADDR/lib/app" "$DST_ADDR/term3"
expect_term "sync listing a silent registry"
assert_eq "$(tag_status "$DST_ADDR" term3/app v1)" 404 "sync: no tag"

mkdir -p "$TMP/ctx"
echo hello >"$TMP/ctx/hello.txt"
term_after "" build-push --timeout 30 --base "$SILENT_ADDR/lib/app:v1" \
  --platform "linux/amd64=$TMP/ctx:/app" --tag "$DST_ADDR/term4/app:v1"
expect_term "build-push resolving its base from a silent registry"
assert_eq "$(tag_status "$DST_ADDR" term4/app v1)" 404 "build-push: no tag"

done_ok
