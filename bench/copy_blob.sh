#!/usr/bin/env bash
# Copies one image holding a single large layer between two fresh
# docker-registry processes on loopback and reports wall time, throughput and
# peak RSS for ocisync and for skopeo, plus the registry's own limit: the
# same blob uploaded by curl as one monolithic PUT. Rounds alternate tools;
# every round copies into a new repository, and skopeo's blob-info cache is
# cleared first so it cannot mount from an earlier round.
#
#   bench/copy_blob.sh [SIZE_MIB] [ROUNDS]      (defaults: 256, 3)
#   OCISYNC_BIN=path/to/ocisync                 (default: build/ocisync)
set -euo pipefail

size_mib=${1:-256}
rounds=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=${OCISYNC_BIN:-$root/build/ocisync}
[ -x "$bin" ] || { echo "copy_blob.sh: $bin not found; build first (cmake --build build)" >&2; exit 1; }
export OCISYNC_SOURCE_DIR=$root
# The integration helpers start and stop registries; their checks count as ours.
# shellcheck source=../tests/integration/lib.sh
. "$root/tests/integration/lib.sh"

registry_start src
registry_start dst
log "generating a ${size_mib} MiB layer"
mkimage --out "$TMP/img" --platforms linux/amd64 --layers 1 --layer-size $((size_mib * 1024 * 1024)) \
  --seed bench >/dev/null
push_image "$TMP/img" "$SRC_ADDR/bench/blob:v1"
skopeo_raw "$SRC_ADDR/bench/blob:v1" "$TMP/m.json"
layer=$(json_eval "$TMP/m.json" 'd["layers"][0]["digest"]')
bytes=$(json_eval "$TMP/m.json" 'd["layers"][0]["size"]')

clear_skopeo_cache() {
  rm -rf /var/lib/containers/cache "${HOME:-/root}/.local/share/containers/cache"
}

# measure NAME CMD...: runs CMD under /usr/bin/time, prints "NAME seconds kbytes".
measure() {
  local name=$1
  shift
  /usr/bin/time -f "%e %M" -o "$TMP/time" "$@" >/dev/null 2>"$TMP/err" ||
    fail "$name failed: $(tail -n 5 "$TMP/err")"
  printf '%s %s\n' "$name" "$(cat "$TMP/time")" >>"$TMP/results"
}

# limit REPO: the registry's own ceiling for this blob, one monolithic PUT by curl.
limit() {
  local repo=$1 loc
  loc=$(curl -s -i -X POST "http://$DST_ADDR/v2/$repo/blobs/uploads/" | tr -d '\r' |
    awk 'tolower($1) == "location:" {print $2}')
  case $loc in http*) ;; *) loc="http://$DST_ADDR$loc" ;; esac
  curl -s -f -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
    -T "$TMP/img/blobs/sha256/${layer#sha256:}" "$loc&digest=$layer"
}

: >"$TMP/results"
for r in $(seq 1 "$rounds"); do
  export DST_ADDR TMP layer
  clear_skopeo_cache
  measure ocisync "$bin" copy -q "docker://$SRC_ADDR/bench/blob:v1" "docker://$DST_ADDR/o$r/blob:v1"
  clear_skopeo_cache
  measure skopeo skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
    "docker://$SRC_ADDR/bench/blob:v1" "docker://$DST_ADDR/s$r/blob:v1"
  measure limit bash -c "$(declare -f limit); limit l$r/blob"
done

python3 - "$TMP/results" "$bytes" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
size = int(sys.argv[2])
med = {}
for tool in ("ocisync", "skopeo", "limit"):
    t = [float(r[1]) for r in rows if r[0] == tool]
    m = [int(r[2]) for r in rows if r[0] == tool]
    med[tool] = statistics.median(t)
    print(f"{tool:8s} median {med[tool]:6.2f} s  {size / med[tool] / 2**20:7.1f} MiB/s  "
          f"peak RSS {max(m) / 1024:6.1f} MiB  ({len(t)} rounds: {' '.join(f'{x:.2f}' for x in t)})")
print(f"ocisync / skopeo throughput: {med['skopeo'] / med['ocisync']:.2f}x; "
      f"ocisync / limit: {med['limit'] / med['ocisync']:.0%}")
PY
