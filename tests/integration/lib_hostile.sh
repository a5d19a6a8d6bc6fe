# shellcheck shell=bash
# Hostile-registry helpers for ocisync's security tests. Source it after
# lib.sh and lib_tls.sh:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/lib_tls.sh"
#   . "$(dirname "$0")/lib_hostile.sh"
#
# What it gives (see tests/tools/hostile.py --help for every option and the
# log format):
#   hostile_start NAME [hostile.py OPTIONS...]
#                      tests/tools/hostile.py in front of a registry
#                      (--upstream ADDR or URL), e.g.
#                        hostile_start evil --upstream "$SRC_ADDR" --basic "u:$PASS" \
#                          --redirect-blobs SELF --host-is-other localhost
#   hostile_catcher_start NAME basic|bearer [ADDR]
#                      hostile.py --catcher: answers everything 401 and logs
#                      whether credentials ever arrived
#   hostile_stop NAME  stops it (its log stays)
#   hostile_log_mark NAME, hostile_log_lines NAME ERE [SINCE],
#   hostile_log_count NAME ERE [SINCE]
#                      its request lines (lib_tls.sh's helper_log_*)
#   hostile_log_wait NAME ERE [COUNT] [SECONDS]
#                      waits until COUNT (default 1) request lines match ERE
#                      (a hang's "action=hang-end" line is only written once
#                      the client went away)
#
# The servers are lib_tls.sh helpers: they listen on loopback addresses at
# ports the kernel picks, export NAME_PORT, NAME_ADDR (IP:PORT) and NAME_URL
# (http://IP:PORT) with NAME upper-cased, log one line per request to
# $TMP/NAME.log (emptied when started; never a credential), their stdout and
# stderr go to $TMP/NAME.out, and they are stopped, before the registries,
# when the test ends (the last lines of their logs are printed if it failed).

declare -F _tls_helper_start >/dev/null ||
  fail "lib_hostile.sh: source lib.sh and lib_tls.sh first"

HOSTILE="$OCISYNC_SOURCE_DIR/tests/tools/hostile.py"

# hostile_start NAME [OPTIONS...]: starts hostile.py with OPTIONS passed as
# they are (--upstream 127.0.0.1:PORT gets http://; --addr IP picks the
# loopback address, default 127.0.0.1). Waits for it to listen, then
# exports NAME_PORT, NAME_ADDR, NAME_URL. The wait is _tls_helper_start's
# 10 s, and a --big-index hashes every child before it listens (about 0.6 s
# per GB of N x BYTES here): keep N x BYTES under a few GB. Its
# "listening" line (with the digests of the --big-index and --huge-layers
# documents) is printed.
hostile_start() {
  local name=$1 ip=127.0.0.1 i prev=""
  shift || fail "usage: hostile_start NAME [hostile.py options...]"
  for i in "$@"; do
    [ "$prev" != --addr ] || ip=$i
    case $i in --addr=*) ip=${i#--addr=} ;; esac
    prev=$i
  done
  case $ip in 127.*) ;; *) fail "hostile_start: $ip is not a loopback IPv4 address" ;; esac
  _lib_check_name "$name"
  : >"$TMP/$name.log" # a new server, a new log
  _tls_helper_start "$name" "$ip" http python3 "$HOSTILE" \
    --log "$TMP/$name.log" "$@"
  { grep -m1 ' listening ' "$TMP/$name.log" || true; } | sed "s/^/    $name: /" | cut -c1-400
}

# hostile_catcher_start NAME basic|bearer [ADDR]: starts hostile.py
# --catcher on ADDR (default 127.0.0.1; 127.0.0.2 is "another host"). Every
# request gets a 401 with a Basic realm="catcher" challenge, or a Bearer
# realm="$NAME_URL/token",service="catcher" one; each is logged with
# action=caught and whether it carried an Authorization header.
hostile_catcher_start() {
  local name=$1 kind=${2:-} ip=${3:-127.0.0.1}
  case $kind in basic | bearer) ;; *) fail "usage: hostile_catcher_start NAME basic|bearer [ADDR]" ;; esac
  case $ip in 127.*) ;; *) fail "hostile_catcher_start: $ip is not a loopback IPv4 address" ;; esac
  _lib_check_name "$name"
  : >"$TMP/$name.log"
  _tls_helper_start "$name" "$ip" http python3 "$HOSTILE" --catcher "$kind" --addr "$ip" \
    --log "$TMP/$name.log"
}

# hostile_stop NAME: stops the server (its log stays).
hostile_stop() { helper_stop "$1"; }

# hostile_log_mark NAME: how many request lines so far (pass as SINCE).
hostile_log_mark() { helper_log_mark "$1"; }

# hostile_log_lines NAME ERE [SINCE]: the request lines after the first
# SINCE (default 0) that match the extended regex ERE, e.g.
# 'authorization=yes', 'action=redirect status=307', 'action=hang-end '.
hostile_log_lines() { helper_log_lines "$@"; }

# hostile_log_count NAME ERE [SINCE]: counts them.
hostile_log_count() { helper_log_count "$@"; }

# hostile_log_wait NAME ERE [COUNT] [SECONDS]: waits up to SECONDS (default
# 10) until at least COUNT (default 1) request lines match ERE; fails the
# test if they do not.
hostile_log_wait() {
  local name=$1 ere=$2 want=${3:-1} secs=${4:-10} n=0
  for _ in $(seq 1 $((secs * 10))); do
    n=$(helper_log_count "$name" "$ere")
    [ "$n" -lt "$want" ] || return 0
    sleep 0.1
  done
  fail "hostile server $name: $n of $want lines matching /$ere/ after ${secs}s: $(tail -n 5 "$TMP/$name.log" | cut -c1-300)"
}
