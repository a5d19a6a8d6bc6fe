#!/usr/bin/env bash
# Where a mirror's CPU goes: runs workload 1 or 2 of bench/run.sh once per
# tool (the limit, the relay limit, ocisync sync, skopeo sync), each into a
# fresh destination registry, and prints for each run the wall time and the
# CPU seconds (user + system) of the tool, the source registry and the
# destination registry, with their sum as a share of all the machine's
# cores. On a machine where the registries share the cores with the tool,
# a run is CPU-bound when that share is high, and the registries' seconds
# are then a floor that no client can go under.
#
#   bench/cpu_split.sh [1|2|6] [ROUNDS]
#
# 6 is workload 6's largest case (1000 small images). TOOLS (default
# "limit limit-relay ocisync-sync skopeo-sync") picks the runs.
#
# Uses the images bench/run.sh generated (run it once first, or
# `bench/run.sh --workloads 1,2` makes them); OCISYNC_BIN as there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
w=${1:-1}
rounds=${2:-2}
bin=${OCISYNC_BIN:-$here/../build/ocisync}
cache=${OCISYNC_BENCH_CACHE:-/tmp/ocisync-bench-cache}
case $w in
  1) lay="$cache/w1-8img-linux_amd64_linux_arm64-6x4194304" ;;
  2) lay="$cache/w2-40img-linux_amd64-10x20480" ;;
  6) lay="$cache/w6-1000img-linux_amd64-3x20480" ;;
  *) echo "usage: $0 [1|2|6] [ROUNDS]" >&2 && exit 2 ;;
esac
[ -f "$lay/index.json" ] || { echo "$0: no images at $lay: run bench/run.sh --workloads $w first" >&2; exit 1; }
tmp=$(mktemp -d /tmp/ocisync-cpu.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_registry NAME: a registry with empty storage; sets NAME_port and NAME_pid.
start_registry() {
  local name=$1 port
  port=$(free_port)
  rm -rf "${tmp:?}/$name"
  mkdir -p "$tmp/$name"
  cat >"$tmp/$name.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $tmp/$name
http:
  addr: 127.0.0.1:$port
log:
  level: error
  accesslog:
    disabled: true
EOF
  docker-registry serve "$tmp/$name.yml" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  printf -v "${name}_pid" '%s' "$!"
  printf -v "${name}_port" '%s' "$port"
  for _ in $(seq 1 50); do
    curl -sf "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "$0: registry $name did not start: $(tail -n 3 "$tmp/$name.log")" >&2
  exit 1
}

cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# measure LABEL CMD...: the command against a fresh destination, with the CPU split.
measure() {
  local label=$1 s0 d0 t0 t1 s1 d1 u s
  shift
  [ -z "${dst_pid:-}" ] || kill "$dst_pid"
  start_registry dst
  export DST=$dst_port # the commands name the destination as 127.0.0.1:$DST
  s0=$(cpu "$src_pid") d0=$(cpu "$dst_pid") t0=$(date +%s%N)
  /usr/bin/time -f "%U %S" -o "$tmp/time" "$@" >"$tmp/out" 2>&1 ||
    { echo "$0: $label failed: $(tail -n 3 "$tmp/out")" >&2; exit 1; }
  t1=$(date +%s%N) s1=$(cpu "$src_pid") d1=$(cpu "$dst_pid")
  read -r u s <"$tmp/time"
  awk -v l="$label" -v ms=$(((t1 - t0) / 1000000)) -v sc=$((s1 - s0)) -v dc=$((d1 - d0)) \
    -v u="$u" -v s="$s" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" 'BEGIN {
      t = u + s + sc / hz + dc / hz
      printf "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f%% |\n", l, ms / 1000, u + s, sc / hz, dc / hz, t, 100 * t / (n * ms / 1000)
    }'
}

start_registry src
python3 "$here/limit.py" push "$lay" "127.0.0.1:$src_port" --workers 8 >/dev/null
python3 "$here/gen.py" ocisync-yaml "$lay" "127.0.0.1:$src_port" "DST/o" >"$tmp/mirrors.tmpl"
python3 "$here/gen.py" skopeo-yaml "$lay" "127.0.0.1:$src_port" >"$tmp/skopeo.yaml"
echo "Workload $w on $(nproc) cores; CPU seconds (user + system) per process:"
echo
echo "| run | wall s | tool | source registry | destination registry | all | of the machine |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for _ in $(seq 1 "$rounds"); do
  for tool in ${TOOLS:-limit limit-relay ocisync-sync skopeo-sync}; do
    case $tool in
      limit) measure "$tool" bash -c "python3 '$here/limit.py' push '$lay' 127.0.0.1:\$DST --workers 8 --dest-prefix l" ;;
      limit-relay) measure "$tool" bash -c "python3 '$here/limit.py' push '$lay' 127.0.0.1:\$DST --workers 8 --dest-prefix l --source 127.0.0.1:$src_port" ;;
      ocisync-sync) measure "$tool" bash -c "sed \"s/DST/127.0.0.1:\$DST/\" '$tmp/mirrors.tmpl' >'$tmp/mirrors.yaml' && exec '$bin' sync -q --src yaml '$tmp/mirrors.yaml'" ;;
      skopeo-sync) measure "$tool" bash -c "exec skopeo sync --all --src yaml --dest docker --src-tls-verify=false --dest-tls-verify=false '$tmp/skopeo.yaml' 127.0.0.1:\$DST/s" ;;
    esac
  done
done
