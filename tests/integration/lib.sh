# shellcheck shell=bash
# Shared helpers for ocisync's integration tests. Source it first:
#
#   . "$(dirname "$0")/lib.sh"
#
# Environment:
#   OCISYNC_BIN         the ocisync binary under test (ctest sets it)
#   OCISYNC_SOURCE_DIR  the source tree (defaults to this file's ../..)
#   OCISYNC_KEEP_TMP=1  keep the per-test temp dir (registry logs, ocisync
#                       output, podman storage) after the test
#   OCISYNC_TIMEOUT     seconds one ocisync run may take (default 120)
#   OCISYNC_STDIN       file run_ocisync feeds ocisync on stdin (default
#                       /dev/null), e.g. for `login --password-stdin`
#
# Each test gets a temp dir $TMP that an EXIT trap removes, after stopping
# every registry the test started. Registries are real `docker-registry`
# (distribution 2.8.2) processes on 127.0.0.1 at ephemeral ports.
#
# About the registry's logs, which tests count requests in: distribution
# 2.8.2 writes its access log (one Apache "combined" line per request, e.g.
#   127.0.0.1 - - [22/Nov/2026:02:57:09 +0000] "POST /v2/t/b/blobs/uploads/?from=t%2Fa&mount=sha256%3A64... HTTP/1.1" 201 0 "" "skopeo/1.9.3"
# ) to STDOUT, and its logrus application log (time=... level=... msg=...,
# several messages per request, some requests none at level info) to
# stderr. Both go to $TMP/NAME.log. The query string is percent-encoded
# and its parameter order is the client's, so registry_requests decodes it
# and tests should match "mount=" and "from=" separately.

set -euo pipefail

OCISYNC_SOURCE_DIR=${OCISYNC_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MKIMAGE="$OCISYNC_SOURCE_DIR/tests/tools/mkimage.py"
TEST_NAME=$(basename "${0%.sh}")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ocisync-$TEST_NAME.XXXXXX")
export TMP
# Each test has a build cache of its own (ocisync build keeps layers there).
export XDG_CACHE_HOME="$TMP/cache"

_LIB_MAIN_PID=$$     # the test's shell (fail() may run in a subshell)
_LIB_REGISTRIES=()   # names of running registries
_LIB_RUN_N=0         # ocisync runs so far
_LIB_CHECKS=0        # checks that passed
_LIB_WATCHDOG=""

OCISYNC_RC=""        # exit code of the last run_ocisync
OCISYNC_STDOUT=""    # file with its stdout
OCISYNC_STDERR=""    # file with its stderr

log() { printf '[%s] %s\n' "$TEST_NAME" "$*"; }

# fail MSG: prints MSG and ends the test with status 1, also when called
# in a subshell such as "$(skopeo_digest REF)": the main shell is told by
# SIGUSR1, so a failed helper never yields an empty value that a check
# could then accept.
fail() {
  printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2
  if [ "$BASHPID" != "$_LIB_MAIN_PID" ]; then
    kill -USR1 "$_LIB_MAIN_PID" 2>/dev/null || true
  fi
  exit 1
}

# pass MSG: records and prints one check that held.
pass() {
  _LIB_CHECKS=$((_LIB_CHECKS + 1))
  printf '[%s] ok: %s\n' "$TEST_NAME" "$*"
}

# assert_eq A B MSG
assert_eq() {
  if [ "$1" != "$2" ]; then
    fail "$3: expected '$2', got '$1'"
  fi
  pass "$3 ($1)"
}

# assert_ne A B MSG
assert_ne() {
  if [ "$1" = "$2" ]; then
    fail "$3: both are '$1'"
  fi
  pass "$3 ('$1' != '$2')"
}

# assert_contains FILE STRING MSG: FILE contains STRING (fixed string).
assert_contains() {
  if ! grep -qF -- "$2" "$1"; then
    fail "$3: '$2' not found in $(basename "$1"): $(head -c 2000 "$1")"
  fi
  pass "$3"
}

# skip_test WHY: ends the test as skipped (exit 77, which ctest reports as
# "Skipped", not "Passed"), saying why; for checks that need something the
# machine lacks (a mirror, a tool). Checks that passed before it stay printed.
skip_test() {
  log "SKIP: $* (after $_LIB_CHECKS checks that passed)"
  exit 77
}

# done_ok: prints the closing line; call it last.
done_ok() {
  log "PASS: $_LIB_CHECKS checks"
}

_lib_cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM USR1
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
    printf '[%s] test failed (exit %s); context follows\n' "$TEST_NAME" "$rc" >&2
    if [ -n "$OCISYNC_STDERR" ] && [ -s "$OCISYNC_STDERR" ]; then
      printf '[%s] --- stderr of the last ocisync run (last 40 lines):\n' "$TEST_NAME" >&2
      tail -n 40 "$OCISYNC_STDERR" >&2
    fi
    local n
    for n in "${_LIB_REGISTRIES[@]}"; do
      printf '[%s] --- registry %s: last 25 requests, then errors:\n' "$TEST_NAME" "$n" >&2
      registry_requests "$n" 2>/dev/null | tail -n 25 >&2
      grep -E 'level=(error|fatal|panic)' "$TMP/$n.log" 2>/dev/null |
        grep -vE 'err.code="(blob|manifest) unknown"' | tail -n 5 | cut -c1-400 >&2
    done
  fi
  local n
  for n in "${_LIB_REGISTRIES[@]}"; do
    registry_stop "$n"
  done
  if [ -n "$_LIB_WATCHDOG" ]; then
    kill "$_LIB_WATCHDOG" 2>/dev/null
    wait "$_LIB_WATCHDOG" 2>/dev/null
  fi
  if [ -s "$TMP/podman/runroot" ]; then
    rm -rf "$(cat "$TMP/podman/runroot")"
  fi
  if [ "${OCISYNC_KEEP_TMP:-0}" = 1 ]; then
    printf '[%s] kept %s\n' "$TEST_NAME" "$TMP" >&2
  else
    # podman's vfs layers contain read-only directories.
    rm -rf "$TMP" 2>/dev/null || { chmod -R u+w "$TMP"; rm -rf "$TMP"; }
  fi
  exit "$rc"
}
trap _lib_cleanup EXIT
trap 'exit 1' USR1
trap 'exit 130' INT
trap 'exit 143' TERM

# If this shell is killed outright (SIGKILL from a timeout), the EXIT trap
# never runs: a watchdog then stops the registries listed in $TMP/.pids
# and removes $TMP (unless OCISYNC_KEEP_TMP=1).
# Its output goes to /dev/null so that it does not hold ctest's pipe open.
_lib_start_watchdog() {
  local parent=$$ pids="$TMP/.pids"
  (
    trap '' INT
    # A killed parent stays a zombie until reaped: treat state Z as gone.
    while kill -0 "$parent" 2>/dev/null &&
      [ "$(sed 's/.*) //' "/proc/$parent/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]; do
      sleep 1
    done
    if [ -f "$pids" ]; then
      while read -r p; do kill "$p" 2>/dev/null; done <"$pids"
    fi
    [ ! -s "$TMP/podman/runroot" ] || rm -rf "$(cat "$TMP/podman/runroot")"
    if [ "${OCISYNC_KEEP_TMP:-0}" != 1 ]; then
      sleep 1
      rm -rf "$TMP" 2>/dev/null || { chmod -R u+w "$TMP"; rm -rf "$TMP"; }
    fi
  ) </dev/null >/dev/null 2>&1 &
  _LIB_WATCHDOG=$!
}
_lib_start_watchdog

_lib_check_name() {
  [[ "$1" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || fail "bad registry name '$1' (want a shell identifier)"
}

_lib_free_port() {
  python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# free_port: prints a loopback port that nothing listens on (for tests of
# unreachable registries; it may be taken again later, so use it at once).
free_port() { _lib_free_port; }

# stop_pid PID [TENTHS]: stops a process this test started (TERM, then KILL
# after TENTHS tenths of a second, default 30) and reaps it.
stop_pid() {
  local pid=$1
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 "${2:-30}"); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# registry_start NAME [--no-delete]: starts a registry on 127.0.0.1 at a
# free port, with its storage in $TMP/NAME and its logs in $TMP/NAME.log,
# and waits until GET /v2/ answers. Sets and exports NAME_PORT and
# NAME_ADDR ("127.0.0.1:PORT") with NAME upper-cased: `registry_start src`
# gives $SRC_PORT and $SRC_ADDR. `registry_addr NAME` prints the address
# too. Deletes are enabled (storage.delete.enabled) unless --no-delete,
# where the registry answers DELETE with 405 UNSUPPORTED.
registry_start() {
  case ${2:-} in
    "") _lib_registry_start "$1" http "" "" ;;
    --no-delete) _LIB_DELETE=false _lib_registry_start "$1" http "" "" ;;
    *) fail "registry_start: unknown option $2" ;;
  esac
}

# _lib_registry_start NAME SCHEME EXTRA_YAML CURLRC: the body of
# registry_start, shared with lib_tls.sh's registry_start_tls. EXTRA_YAML
# is appended to the config right after the http: section's last key, so
# it may add http keys (two spaces in: "  tls:") and then top-level
# sections ("auth:"). CURLRC, if not empty, is a curl config file (curl -K)
# with what it takes to reach the registry (CA file, client certificate);
# registry_log_sync uses it too. GET /v2/ answering 200, or 401 for a
# registry with authentication, counts as up.
_lib_registry_start() {
  local name=$1 scheme=$2 extra=$3 curlrc=$4 var port cfg logf pid up unset_env=() v code
  local curl_k=() shown
  _lib_check_name "$name"
  var=$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')
  cfg="$TMP/$name.yml"
  logf="$TMP/$name.log"
  [ -z "$curlrc" ] || curl_k=(-K "$curlrc")
  mkdir -p "$TMP/$name/data"
  # REGISTRY_* variables override the config file: keep the caller's out.
  for v in $(compgen -e); do
    case $v in REGISTRY_*) unset_env+=(-u "$v") ;; esac
  done
  for _ in 1 2 3 4 5; do
    port=$(_lib_free_port)
    cat >"$cfg" <<EOF
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $TMP/$name/data
  delete:
    enabled: ${_LIB_DELETE:-true}
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: ocisync-integration-test-secret
  headers:
    X-Content-Type-Options: [nosniff]
EOF
    [ -z "$extra" ] || printf '%s\n' "$extra" >>"$cfg"
    : >"$logf"
    env "${unset_env[@]+"${unset_env[@]}"}" docker-registry serve "$cfg" </dev/null >>"$logf" 2>&1 &
    pid=$!
    echo "$pid" >>"$TMP/.pids"
    up=0
    for _ in $(seq 1 100); do
      if ! kill -0 "$pid" 2>/dev/null; then
        break
      fi
      if grep -q "listening on 127.0.0.1:$port" "$logf"; then
        code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 2 "${curl_k[@]+"${curl_k[@]}"}" \
          "$scheme://127.0.0.1:$port/v2/" 2>/dev/null || true)
        case $code in 200 | 401) up=1 && break ;; esac
      fi
      sleep 0.1
    done
    if [ "$up" = 1 ]; then
      printf -v "${var}_PORT" '%s' "$port"
      printf -v "${var}_ADDR" '%s' "127.0.0.1:$port"
      export "${var}_PORT" "${var}_ADDR"
      printf -v "_LIB_PID_$name" '%s' "$pid"
      printf -v "_LIB_ADDR_$name" '%s' "127.0.0.1:$port"
      printf -v "_LIB_URL_$name" '%s' "$scheme://127.0.0.1:$port"
      printf -v "_LIB_CURLRC_$name" '%s' "$curlrc"
      _LIB_REGISTRIES+=("$name")
      shown="127.0.0.1:$port"
      [ "$scheme" = http ] || shown="$scheme://$shown"
      log "registry $name listening on $shown (pid $pid, log $logf)"
      return 0
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if grep -q 'address already in use' "$logf"; then
      log "registry $name: port $port was taken, retrying"
      continue
    fi
    fail "registry $name did not start on $scheme://127.0.0.1:$port: $(tail -n 5 "$logf")"
  done
  fail "registry $name: no free port after 5 attempts"
}

# registry_addr NAME: prints "127.0.0.1:PORT".
registry_addr() {
  local v="_LIB_ADDR_$1"
  [ -n "${!v:-}" ] || fail "registry $1 is not running"
  printf '%s\n' "${!v}"
}

# registry_stop NAME: stops the registry (its log and storage stay).
registry_stop() {
  local name=$1 v="_LIB_PID_$1" pid
  pid=${!v:-}
  [ -n "$pid" ] || return 0
  stop_pid "$pid" 50
  printf -v "_LIB_PID_$name" '%s' ""
  local keep=() n
  for n in "${_LIB_REGISTRIES[@]}"; do
    [ "$n" = "$name" ] || keep+=("$n")
  done
  _LIB_REGISTRIES=("${keep[@]+"${keep[@]}"}")
}

# registry_log_sync NAME: waits until every request answered so far is in
# the log. The access line is written as the handler returns, which can be
# just after the client saw the response; a marker request (GET /v2/ with
# a unique query, skipped by registry_requests) orders things. A registry
# with authentication answers it 401, which is logged all the same.
registry_log_sync() {
  local name=$1 addr token url_v="_LIB_URL_$1" rc_v="_LIB_CURLRC_$1" curl_k=() code
  addr=$(registry_addr "$name")
  [ -z "${!rc_v:-}" ] || curl_k=(-K "${!rc_v}")
  token="$$-$RANDOM$RANDOM"
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "${curl_k[@]+"${curl_k[@]}"}" \
    "${!url_v:-http://$addr}/v2/?ocisync-log-sync=$token" 2>/dev/null || true)
  case $code in
    200 | 401) ;;
    *) fail "registry $name does not answer GET /v2/ (status '$code')" ;;
  esac
  for _ in $(seq 1 100); do
    grep -q "ocisync-log-sync=$token" "$TMP/$name.log" && return 0
    sleep 0.05
  done
  fail "registry $name: log sync marker never appeared in $TMP/$name.log"
}

# registry_requests NAME [SINCE]: prints the requests the registry served
# after the first SINCE (default 0), one per line as
#   METHOD URI STATUS
# with the URI percent-decoded and upload _state tokens cut short, e.g.
#   POST /v2/dst/app/blobs/uploads/?from=src/app&mount=sha256:ab.. 201
#   PUT /v2/dst/app/blobs/uploads/UUID?_state=...&digest=sha256:ab.. 201
registry_requests() {
  local name=$1 since=${2:-0}
  python3 - "$TMP/$name.log" "$since" <<'EOF'
import re, sys, urllib.parse
line_re = re.compile(r'^\S+ \S+ \S+ \[[^\]]*\] "([A-Z]+) (\S+) HTTP/[0-9.]+" (\d{3}) ')
since = int(sys.argv[2])
n = 0
with open(sys.argv[1], errors="replace") as f:
    for line in f:
        m = line_re.match(line)
        if not m or "ocisync-log-sync=" in m.group(2):
            continue
        n += 1
        if n > since:
            uri = re.sub(r"_state=[^&]*", "_state=...", m.group(2))
            print(m.group(1), urllib.parse.unquote(uri), m.group(3))
EOF
}

# registry_log_mark NAME: prints how many requests the registry has served;
# pass it as SINCE to registry_log_count / registry_requests.
registry_log_mark() {
  registry_log_sync "$1"
  registry_requests "$1" | wc -l | tr -d ' '
}

# registry_log_count NAME PATTERN [SINCE]: counts the requests (in the
# "METHOD URI STATUS" form of registry_requests) matching the extended
# regex PATTERN, e.g. "^POST /v2/.*/blobs/uploads/".
registry_log_count() {
  local name=$1 pattern=$2 since=${3:-0}
  registry_log_sync "$name"
  registry_requests "$name" "$since" | { grep -cE -- "$pattern" || true; }
}

# skopeo_raw REF FILE: stores the raw manifest of docker://REF in FILE.
skopeo_raw() {
  skopeo inspect --raw --tls-verify=false "docker://$1" >"$2" 2>"$TMP/skopeo-inspect.err" ||
    fail "skopeo inspect --raw docker://$1 failed: $(cat "$TMP/skopeo-inspect.err")"
}

# skopeo_digest REF: prints the digest ("sha256:...") of the manifest that
# docker://REF points to, hashed from the exact bytes the registry serves.
skopeo_digest() {
  local f="$TMP/raw.$RANDOM$RANDOM"
  skopeo_raw "$1" "$f"
  printf 'sha256:%s\n' "$(sha256sum <"$f" | cut -d' ' -f1)"
  rm -f "$f"
}

# file_digest FILE: prints "sha256:..." of FILE.
file_digest() {
  printf 'sha256:%s\n' "$(sha256sum <"$1" | cut -d' ' -f1)"
}

# json_eval FILE EXPR: evaluates the Python expression EXPR with d bound to
# the parsed JSON in FILE; prints a list one item a line, else the value.
json_eval() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    d = json.load(f)
v = eval(sys.argv[2])
for x in (v if isinstance(v, (list, tuple)) else [v]):
    print(x if isinstance(x, str) else json.dumps(x))
EOF
}

# manifest_blobs FILE: prints the config and layer digests of the image
# manifest in FILE.
manifest_blobs() {
  json_eval "$1" '[d["config"]["digest"]] + [l["digest"] for l in d["layers"]]'
}

# index_children FILE: prints "DIGEST os/arch[/variant]" for each manifest
# listed in the index (or Docker manifest list) in FILE.
index_children() {
  json_eval "$1" '[m["digest"] + " " + "/".join(filter(None, [m.get("platform", {}).get("os"), m.get("platform", {}).get("architecture"), m.get("platform", {}).get("variant")])) for m in d["manifests"]]'
}

# blob_status ADDR REPO DIGEST: prints the HTTP status of HEAD on the blob.
blob_status() {
  curl -s -o /dev/null -I --max-time 10 -w '%{http_code}' "http://$1/v2/$2/blobs/$3" || true
}

# tag_status ADDR REPO REF: prints the HTTP status of HEAD on the manifest
# (image or index) REF, e.g. 404 where a failed copy must have left no tag.
tag_status() {
  curl -s -o /dev/null -I --max-time 10 -w '%{http_code}' "http://$1/v2/$2/manifests/$3" \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' || true
}

# assert_blobs_present ADDR REPO MANIFEST_FILE [LABEL]: every blob the
# image manifest names answers HEAD with 200 in ADDR/REPO.
assert_blobs_present() {
  local addr=$1 repo=$2 file=$3 label=${4:-$(basename "$3")} d n=0 st
  for d in $(manifest_blobs "$file"); do
    st=$(blob_status "$addr" "$repo" "$d")
    [ "$st" = 200 ] || fail "blob $d missing from $addr/$repo (HEAD answered $st)"
    n=$((n + 1))
  done
  pass "all $n blobs of $label present in $repo"
}

# mkimage ARGS...: runs tests/tools/mkimage.py; prints the top digest.
mkimage() {
  python3 "$MKIMAGE" "$@" 2>"$TMP/mkimage.err" || fail "mkimage.py $* failed: $(cat "$TMP/mkimage.err")"
}

# push_image LAYOUT_DIR REF: pushes an OCI layout to docker://REF, digests
# preserved.
push_image() {
  log "push $1 -> $2"
  skopeo copy --all --preserve-digests --dest-tls-verify=false "oci:$1" "docker://$2" \
    >>"$TMP/skopeo-push.log" 2>&1 || fail "skopeo push of $1 to $2 failed: $(tail -n 5 "$TMP/skopeo-push.log")"
}

# run_ocisync ARGS...: runs $OCISYNC_BIN ARGS under a timeout. Never fails
# by itself on a non-zero exit: sets OCISYNC_RC, OCISYNC_STDOUT and
# OCISYNC_STDERR (files) for expect_success / expect_failure. It does fail
# the test when a sanitizer reported something or the run timed out.
run_ocisync() {
  [ -n "${OCISYNC_BIN:-}" ] || fail "OCISYNC_BIN is not set"
  [ -x "$OCISYNC_BIN" ] || fail "OCISYNC_BIN=$OCISYNC_BIN is not an executable file"
  _LIB_RUN_N=$((_LIB_RUN_N + 1))
  OCISYNC_STDOUT="$TMP/ocisync.$_LIB_RUN_N.stdout"
  OCISYNC_STDERR="$TMP/ocisync.$_LIB_RUN_N.stderr"
  local start ms
  log "+ ocisync $*"
  start=$(date +%s%N)
  set +e
  timeout -k 5 "${OCISYNC_TIMEOUT:-120}" "$OCISYNC_BIN" "$@" \
    <"${OCISYNC_STDIN:-/dev/null}" >"$OCISYNC_STDOUT" 2>"$OCISYNC_STDERR"
  OCISYNC_RC=$?
  set -e
  ms=$((($(date +%s%N) - start) / 1000000))
  log "  exit $OCISYNC_RC after ${ms} ms"
  if [ "$OCISYNC_RC" = 124 ] || [ "$OCISYNC_RC" = 137 ]; then
    fail "ocisync timed out after ${OCISYNC_TIMEOUT:-120}s: ocisync $*"
  fi
  if grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error: |AddressSanitizer:DEADLYSIGNAL' "$OCISYNC_STDERR"; then
    fail "sanitizer report from ocisync $*: $(grep -m1 -E 'Sanitizer|runtime error' "$OCISYNC_STDERR")"
  fi
  return 0
}

# expect_success MSG: the last run_ocisync exited 0.
expect_success() {
  if [ "$OCISYNC_RC" != 0 ]; then
    fail "$1: ocisync exited $OCISYNC_RC; stderr: $(tail -n 20 "$OCISYNC_STDERR")"
  fi
  pass "$1 (exit 0)"
}

# expect_failure MSG: the last run_ocisync exited non-zero by itself (1-125:
# not killed by a signal, not "command not found") and said why on stderr.
expect_failure() {
  if [ "$OCISYNC_RC" = 0 ]; then
    fail "$1: ocisync exited 0"
  fi
  if [ "$OCISYNC_RC" -gt 125 ]; then
    fail "$1: ocisync died with exit $OCISYNC_RC (signal or exec failure); stderr: $(tail -n 20 "$OCISYNC_STDERR")"
  fi
  if [ ! -s "$OCISYNC_STDERR" ]; then
    fail "$1: ocisync exited $OCISYNC_RC with nothing on stderr"
  fi
  pass "$1 (exit $OCISYNC_RC: $(grep -m1 . "$OCISYNC_STDERR" | cut -c1-160))"
}

# podman_cmd ARGS...: podman with storage of its own in $TMP/podman (vfs
# driver: no overlay or fuse needed), its temp files there too, and no
# system registries.conf. As root in this container a pull needs only
# --root/--runroot/--storage-driver; cgroupfs and a file events backend
# keep it off systemd/journald as well. podman refuses a runroot longer
# than 50 characters, which $TMP/podman/run is for a test with a long name:
# then the runroot is a directory of its own in /tmp, removed with $TMP.
podman_cmd() {
  local run="$TMP/podman/run"
  mkdir -p "$TMP/podman/tmp"
  if [ ! -f "$TMP/podman/registries.conf" ]; then
    printf 'unqualified-search-registries = []\n' >"$TMP/podman/registries.conf"
  fi
  if [ "${#run}" -gt 50 ]; then
    [ -s "$TMP/podman/runroot" ] || mktemp -d /tmp/ocisync-podman.XXXXXX >"$TMP/podman/runroot"
    run=$(cat "$TMP/podman/runroot")
  fi
  TMPDIR="$TMP/podman/tmp" CONTAINERS_REGISTRIES_CONF="$TMP/podman/registries.conf" \
    podman --root "$TMP/podman/root" --runroot "$run" \
    --tmpdir "$TMP/podman/tmp" --storage-driver vfs \
    --cgroup-manager cgroupfs --events-backend file "$@"
}

# podman_pull REF [PULL_FLAGS...]: pulls REF over plain HTTP.
podman_pull() {
  local ref=$1
  shift
  log "podman pull ${*:+$* }$ref"
  podman_cmd pull --tls-verify=false "$@" "$ref" >>"$TMP/podman.log" 2>&1 ||
    fail "podman pull $* $ref failed: $(tail -n 5 "$TMP/podman.log")"
  pass "podman pulled ${*:+$* }$ref"
}

# podman_inspect REF FORMAT: prints podman image inspect --format FORMAT.
podman_inspect() {
  podman_cmd image inspect --format "$2" "$1" 2>>"$TMP/podman.log" ||
    fail "podman image inspect $1 failed: $(tail -n 5 "$TMP/podman.log")"
}

# podman_rootfs_sums REF: prints "sha256  path" for each regular file in
# the unpacked image, sorted: proves podman could unpack every layer.
podman_rootfs_sums() {
  local ref=$1 mnt
  mnt=$(podman_cmd image mount "$ref" 2>>"$TMP/podman.log") ||
    fail "podman image mount $ref failed: $(tail -n 5 "$TMP/podman.log")"
  (cd "$mnt" && find . -type f -print0 | sort -z | xargs -0r sha256sum)
  podman_cmd image unmount "$ref" >/dev/null 2>>"$TMP/podman.log" || true
}

# layout_rootfs_sums LAYOUT_DIR: the same listing for an OCI layout made
# with --tag and OCI media types, unpacked with umoci (umoci unpacks image
# manifests only: not indexes, not Docker media types).
layout_rootfs_sums() {
  local dir=$1 out="$TMP/umoci.$RANDOM$RANDOM" tag
  tag=$(json_eval "$dir/index.json" 'd["manifests"][0].get("annotations", {}).get("org.opencontainers.image.ref.name", "")')
  [ -n "$tag" ] || fail "layout $dir has no tag for umoci"
  umoci unpack --rootless --image "$dir:$tag" "$out" >>"$TMP/umoci.log" 2>&1 ||
    fail "umoci unpack $dir:$tag failed: $(tail -n 5 "$TMP/umoci.log")"
  (cd "$out/rootfs" && find . -type f -print0 | sort -z | xargs -0r sha256sum)
  rm -rf "$out"
}
