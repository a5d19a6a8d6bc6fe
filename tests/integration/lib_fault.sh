# shellcheck shell=bash
# Fault-injection helpers for ocisync's integration tests. Source it after
# lib.sh (and after lib_tls.sh, if the test uses that too):
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/lib_fault.sh"
#
# What it gives:
#   fault_proxy_start NAME UPSTREAM_ADDR [--seed N] [--rules FILE] RULE...
#                      tests/tools/fault_proxy.py in front of a registry
#   fault_proxy_stop NAME
#   fault_count NAME [RULE_ID]     faults the proxy fired (of one rule)
#   fault_requests NAME [ERE]      "request" lines the proxy logged
#   fault_log_count NAME ERE       lines of its log matching ERE
#   assert_dest_consistent ADDR REPO TAG [LABEL]
#                      no manifest at ADDR/REPO names a missing blob or child
#   registry_kill NAME, registry_restart NAME, registry_detach NAME
#                      kill -9 a registry; start it again on the same port,
#                      config and storage (also from a background subshell,
#                      after registry_detach in the test's shell)
#   elapsed_ms START_NS            milliseconds since $(date +%s%N)
#   assert_stderr_matches ERE MSG  (lib_tls.sh's, when that is not sourced)
#
# A fault proxy listens on 127.0.0.1 at a port the kernel picks and logs one
# line per connection, request, fired fault and error to $TMP/NAME.log (see
# the proxy's --help for the rule syntax and the log format). Proxies are
# stopped, before the registries, when the test ends; if it failed, the
# last lines of each proxy's log are printed.

FAULT_PROXY="$OCISYNC_SOURCE_DIR/tests/tools/fault_proxy.py"
_FAULT_PROXIES=() # names of running proxies

_fault_cleanup() {
  local rc=$1 n pid
  set +e
  if [ "$rc" -ne 0 ]; then
    for n in "${_FAULT_PROXIES[@]}"; do
      printf '[%s] --- fault proxy %s: last 15 log lines:\n' "$TEST_NAME" "$n" >&2
      tail -n 15 "$TMP/$n.log" 2>/dev/null | cut -c1-300 >&2
    done
  fi
  for n in "${_FAULT_PROXIES[@]}"; do
    fault_proxy_stop "$n"
  done
  # Registries restarted by registry_restart (maybe in a subshell, so the
  # main shell's registry_stop may not know their pid).
  if [ -f "$TMP/.fault-restarted" ]; then
    while read -r n pid; do
      kill "$pid" 2>/dev/null
    done <"$TMP/.fault-restarted"
    sleep 0.2
    while read -r n pid; do
      kill -9 "$pid" 2>/dev/null
    done <"$TMP/.fault-restarted"
  fi
}

_fault_exit() {
  local rc=$?
  _fault_cleanup "$rc"
  if declare -F _tls_cleanup >/dev/null; then
    (exit "$rc")
    _tls_cleanup
  fi
  (exit "$rc")
  _lib_cleanup
}
trap _fault_exit EXIT

_fault_upper() { printf '%s' "$1" | tr '[:lower:]' '[:upper:]'; }

# assert_stderr_matches ERE MSG: the last ocisync run's stderr matches the
# case-insensitive extended regex ERE (as in lib_tls.sh, which may be
# sourced or not).
if ! declare -F assert_stderr_matches >/dev/null; then
  assert_stderr_matches() {
    if ! grep -qiE -- "$1" "$OCISYNC_STDERR"; then
      fail "$2: stderr does not match /$1/i: $(head -c 1500 "$OCISYNC_STDERR")"
    fi
    pass "$2 ($(grep -m1 -oiE -- "$1" "$OCISYNC_STDERR" | cut -c1-200))"
  }
fi

# elapsed_ms START: milliseconds since START (a `date +%s%N` value).
elapsed_ms() { echo $((($(date +%s%N) - $1) / 1000000)); }

# fault_proxy_start NAME UPSTREAM_ADDR [--seed N] [--rules FILE] RULE...:
# starts tests/tools/fault_proxy.py on 127.0.0.1 in front of the plain-HTTP
# registry at UPSTREAM_ADDR (127.0.0.1:PORT), with each RULE (one string:
# "METHODS PATH_RE ACTION [WHEN...]", e.g.
#   'GET /v2/.*/blobs/sha256:.* status:503 times=1'
#   'PATCH /v2/.*/blobs/uploads/.* reset-after:500000'
#   '* .* close-after-response always').
# Exports NAME_PORT and NAME_ADDR (upper-cased NAME); log $TMP/NAME.log,
# emptied first (a name used again starts counting from zero).
fault_proxy_start() {
  local name=$1 upstream=$2 var ready pid port="" args=()
  shift 2 || fail "usage: fault_proxy_start NAME UPSTREAM_ADDR RULE..."
  _lib_check_name "$name"
  while [ $# -gt 0 ]; do
    case $1 in
      --seed | --rules) args+=("$1" "$2") && shift 2 ;;
      --*) fail "fault_proxy_start: unknown option $1" ;;
      *) args+=(--rule "$1") && shift ;;
    esac
  done
  var=$(_fault_upper "$name")
  ready="$TMP/$name.port"
  rm -f "$ready"
  : >"$TMP/$name.log" # a new proxy, a new log (as registry_start does)
  python3 "$FAULT_PROXY" --upstream "http://$upstream" --log "$TMP/$name.log" \
    --ready-file "$ready" "${args[@]+"${args[@]}"}" </dev/null >>"$TMP/$name.out" 2>&1 &
  pid=$!
  echo "$pid" >>"$TMP/.pids"
  printf -v "_FAULT_PID_$name" '%s' "$pid"
  _FAULT_PROXIES+=("$name")
  for _ in $(seq 1 100); do
    if [ -s "$ready" ]; then
      port=$(cat "$ready")
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || fail "fault proxy $name did not start: $(tail -n 5 "$TMP/$name.out" "$TMP/$name.log" 2>/dev/null)"
  printf -v "${var}_PORT" '%s' "$port"
  printf -v "${var}_ADDR" '%s' "127.0.0.1:$port"
  export "${var}_PORT" "${var}_ADDR"
  log "fault proxy $name on 127.0.0.1:$port -> $upstream (pid $pid, log $TMP/$name.log)"
  awk -v n="$name" '/ listening /{ b = "" } / rule id=/{ sub(/^[^ ]* rule /, ""); b = b "    " n " rule " $0 "\n" } END { printf "%s", b }' \
    "$TMP/$name.log"
}

# fault_proxy_stop NAME: stops the proxy (its log stays).
fault_proxy_stop() {
  local name=$1 v="_FAULT_PID_$1" pid keep=() n
  pid=${!v:-}
  [ -n "$pid" ] || return 0
  stop_pid "$pid"
  printf -v "_FAULT_PID_$name" '%s' ""
  for n in "${_FAULT_PROXIES[@]}"; do
    [ "$n" = "$name" ] || keep+=("$n")
  done
  _FAULT_PROXIES=("${keep[@]+"${keep[@]}"}")
}

# fault_log_count NAME ERE: lines of the proxy's log matching ERE.
fault_log_count() {
  { grep -cE -- "$2" "$TMP/$1.log" 2>/dev/null || true; } | tr -d ' '
}

# fault_count NAME [RULE_ID]: how many faults the proxy fired (of that rule:
# its id= or its number, from 1, in the order given).
fault_count() {
  if [ -n "${2:-}" ]; then
    fault_log_count "$1" "^[0-9:.]+ fault .* rule=$2 "
  else
    fault_log_count "$1" '^[0-9:.]+ fault '
  fi
}

# fault_requests NAME [ERE]: the proxy's request lines (matching ERE), as
# "METHOD TARGET STATUS fault=ID|-".
fault_requests() {
  grep -E '^[0-9:.]+ request ' "$TMP/$1.log" 2>/dev/null |
    sed -E 's/^.* method=([^ ]+) target=([^ ]+) status=([^ ]+) length=[^ ]+ fault=([^ ]+)$/\1 \2 \3 fault=\4/' |
    { grep -E -- "${2:-.}" || true; }
}

# assert_dest_consistent ADDR REPO TAG [LABEL]: the destination holds no
# manifest that names something missing. If REPO:TAG exists, every
# manifest reachable from it (an index's children, then each image's config
# and layers) must be there, each blob answering HEAD 200 with the size its
# descriptor gives; a missing tag is consistent too (nothing was
# committed). When ADDR is a registry of this test, every manifest revision
# stored in REPO (children pushed by digest before a failure included) is
# checked the same way, read from the registry by digest.
assert_dest_consistent() {
  local addr=$1 repo=$2 tag=$3 label=${4:-$1/$2:$3} storage="" n v out
  for n in "${_LIB_REGISTRIES[@]}"; do
    v="_LIB_ADDR_$n"
    if [ "${!v:-}" = "$addr" ]; then
      storage="$TMP/$n/data/docker/registry/v2/repositories/$repo/_manifests/revisions/sha256"
    fi
  done
  out=$(python3 - "$addr" "$repo" "$tag" "$storage" <<'EOF'
import hashlib, http.client, json, os, sys
addr, repo, tag, storage = sys.argv[1:]
host, port = addr.rsplit(":", 1)
ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json"])
problems, notes = [], []
def req(method, path):
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        c.request(method, path, headers={"Accept": ACCEPT})
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        c.close()
checked = set()
def check_manifest(ref, via):
    st, h, body = req("GET", f"/v2/{repo}/manifests/{ref}")
    if st != 200:
        problems.append(f"{via} names manifest {ref}, which answers {st}")
        return None
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    if ref.startswith("sha256:") and digest != ref:
        problems.append(f"manifest {ref} served bytes hashing to {digest}")
    if digest in checked:
        return digest
    checked.add(digest)
    try:
        d = json.loads(body)
    except ValueError:
        problems.append(f"manifest {ref} is not JSON")
        return digest
    if "manifests" in d:
        for m in d["manifests"]:
            check_manifest(m["digest"], f"index {digest[:19]}")
        notes.append(f"index {digest[:19]}: {len(d['manifests'])} children")
    else:
        descs = ([d["config"]] if "config" in d else []) + d.get("layers", [])
        for b in descs:
            st, h, _ = req("HEAD", f"/v2/{repo}/blobs/{b['digest']}")
            if st != 200:
                problems.append(f"manifest {digest[:19]} names blob {b['digest']}, which answers HEAD {st}")
            elif "size" in b and h.get("content-length") != str(b["size"]):
                problems.append(f"blob {b['digest']} is {h.get('content-length')} bytes, manifest {digest[:19]} says {b['size']}")
        notes.append(f"image {digest[:19]}: {len(descs)} blobs")
    return digest
st, _, _ = req("HEAD", f"/v2/{repo}/manifests/{tag}")
if st == 200:
    check_manifest(tag, f"tag {tag}")
elif st == 404:
    notes.append(f"tag {tag} absent")
else:
    problems.append(f"HEAD of the tag {tag} answered {st}")
stored = 0
if storage and os.path.isdir(storage):
    for hexd in sorted(os.listdir(storage)):
        # A deleted manifest keeps its directory but loses its link file.
        if not os.path.isfile(os.path.join(storage, hexd, "link")):
            continue
        stored += 1
        if "sha256:" + hexd not in checked:
            check_manifest("sha256:" + hexd, "the repository's storage")
    notes.append(f"{stored} manifest revisions stored")
print("; ".join(notes))
for p in problems:
    print("PROBLEM: " + p)
sys.exit(1 if problems else 0)
EOF
) || fail "$label: the destination is inconsistent: $(grep PROBLEM <<<"$out" | head -n 10 | tr '\n' ' ')"
  pass "$label: consistent ($out)"
}

# _fault_registry_pid NAME: the registry's current pid (after a restart in a
# subshell too).
_fault_registry_pid() {
  local name=$1 v="_LIB_PID_$1" pid
  pid=${!v:-}
  if [ -f "$TMP/.fault-restarted" ]; then
    pid=$(awk -v n="$name" '$1 == n { p = $2 } END { print p }' "$TMP/.fault-restarted")
    [ -n "$pid" ] || pid=${!v:-}
  fi
  printf '%s\n' "$pid"
}

# registry_detach NAME: call in the test's shell before a background
# subshell kills NAME: the registry is a job of the test's shell, which
# would otherwise print "Killed" for it.
registry_detach() {
  local pid
  pid=$(_fault_registry_pid "$1")
  [ -z "$pid" ] || disown "$pid" 2>/dev/null || true
}

# registry_kill NAME: kill -9 the registry (no graceful shutdown: uploads in
# flight are cut, connections reset). Its storage and log stay.
registry_kill() {
  local name=$1 pid
  pid=$(_fault_registry_pid "$name")
  [ -n "$pid" ] || fail "registry_kill: registry $name is not running"
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  log "registry $name killed (kill -9 $pid)"
}

# registry_restart NAME: starts the registry NAME again with the same config
# ($TMP/NAME.yml: same port, storage and upload secret), appending to its
# log, and waits until GET /v2/ answers. Stops it first (kill -9) if it
# still runs. Works from a background subshell: the new pid is recorded in
# $TMP/.fault-restarted, where the EXIT trap and registry_kill find it.
registry_restart() {
  local name=$1 v="_LIB_ADDR_$1" addr pid old cfg="$TMP/$1.yml" logf="$TMP/$1.log" code
  addr=${!v:-}
  if [ -z "$addr" ] || [ ! -f "$cfg" ]; then
    fail "registry_restart: no registry $name was started"
  fi
  old=$(_fault_registry_pid "$name")
  if [ -n "$old" ] && kill -0 "$old" 2>/dev/null; then
    registry_kill "$name"
  fi
  local unset_env=()
  for v in $(compgen -e); do
    case $v in REGISTRY_*) unset_env+=(-u "$v") ;; esac
  done
  for _ in $(seq 1 20); do
    env "${unset_env[@]+"${unset_env[@]}"}" docker-registry serve "$cfg" </dev/null >>"$logf" 2>&1 &
    pid=$!
    echo "$pid" >>"$TMP/.pids"
    echo "$name $pid" >>"$TMP/.fault-restarted"
    printf -v "_LIB_PID_$name" '%s' "$pid"
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 2 "http://$addr/v2/" 2>/dev/null || true)
      if [ "$code" = 200 ] || [ "$code" = 401 ]; then
        log "registry $name restarted on $addr (pid $pid)"
        return 0
      fi
      sleep 0.05
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # The port may linger for a moment after a kill: try again.
    sleep 0.2
  done
  fail "registry $name did not restart on $addr: $(tail -n 5 "$logf")"
}

# dst_restart_during PATTERN DELAY: in the background, once the registry dst
# has logged a request matching the extended regex PATTERN (e.g. an upload's
# POST), waits DELAY seconds, kills it (-9), keeps it down for a second and
# restarts it. Sets DST_LISTENING_BEFORE (its "listening on" lines so far: the
# restarted registry adds one) and RESTART_T0 (now, in ns). Run the tool,
# then dst_restart_check.
dst_restart_during() {
  local pattern=$1 delay=$2
  # The subshell kills a job of this shell: keep bash from reporting it.
  registry_detach dst
  DST_LISTENING_BEFORE=$(grep -c 'listening on' "$TMP/dst.log")
  (
    for _ in $(seq 1 600); do
      grep -qE "$pattern" "$TMP/dst.log" && break
      sleep 0.05
    done
    if ! grep -qE "$pattern" "$TMP/dst.log"; then
      echo "no upload started within 30 s" >"$TMP/restart.skipped"
      exit 0
    fi
    sleep "$delay"
    date +%s%N >"$TMP/killed.at"
    registry_kill dst
    sleep 1
    registry_restart dst
    date +%s%N >"$TMP/restarted.at"
  ) &
  _FAULT_RESTARTER=$!
  RESTART_T0=$(date +%s%N)
}

# dst_restart_check WHAT: right after the run dst_restart_during watched (a
# WHAT, "copy" or "sync"): the kill happened while it ran and the registry
# came back, or the test fails as a harness fault.
dst_restart_check() {
  local what=$1 ended killed_at
  ended=$(date +%s%N)
  wait "$_FAULT_RESTARTER" || fail "the restarting subshell failed"
  [ ! -f "$TMP/restart.skipped" ] || fail "harness: $(cat "$TMP/restart.skipped")"
  [ -f "$TMP/restarted.at" ] || fail "harness: the destination was not restarted"
  killed_at=$(cat "$TMP/killed.at")
  [ "$killed_at" -lt "$ended" ] ||
    fail "harness: the destination was killed $(((killed_at - ended) / 1000000)) ms after the $what ended (exit $OCISYNC_RC): too late to test anything"
  pass "the destination was killed $(((killed_at - RESTART_T0) / 1000000)) ms into a $what of $(((ended - RESTART_T0) / 1000000)) ms, down for $((($(cat "$TMP/restarted.at") - killed_at) / 1000000)) ms"
  [ "$(grep -c 'listening on' "$TMP/dst.log")" -gt "$DST_LISTENING_BEFORE" ] ||
    fail "the restarted registry never said it was listening"
}
