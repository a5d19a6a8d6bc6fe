# shellcheck shell=bash
# Sourced first by a test that injects network faults: re-runs the test inside
# a network namespace of its own (unshare -n) whose only interface is its own
# loopback, so iptables rules, tc qdiscs, registries and proxies never touch
# the host's network. Needs root (CI and the developers' machines are); where
# unshare -n is not allowed the test says so and runs on the host's loopback.
if [ -z "${OCISYNC_IN_NETNS:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 &&
    unshare -n true 2>/dev/null; then
    export OCISYNC_IN_NETNS=1
    exec unshare -n bash -c 'ip link set lo up && exec bash "$@"' bash "$0" "$@"
  fi
  echo "[$(basename "${0%.sh}")] note: no network namespace (needs root and unshare -n); using the host's loopback" >&2
  export OCISYNC_IN_NETNS=0
fi
