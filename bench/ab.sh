#!/usr/bin/env bash
# Two ocisync binaries on one workload's image set, strictly alternated
# (A B A B ...), each run against a new empty destination registry: for a
# before/after comparison of a change, where run.sh's rotation puts each
# tool after the same neighbour every round.
#
#   bench/ab.sh [--workload 1|2|6] [--rounds N] A_BIN B_BIN
#
#   --workload W   run.sh's full-size set: 1 (8 images x 2 platforms x 6
#                  layers of 4 MiB, the default), 2 (40 images x 10 layers
#                  of 20 KiB) or 6 (100 images x 3 layers of 20 KiB)
#   --rounds N     pairs of runs (default 10)
#
# Each run is `BIN sync -q --src yaml FILE` (run.sh's reference command).
# Prints one line per run (binary, wall ms, user s, sys s, peak RSS KiB),
# then each binary's medians and the median of the per-pair ratios B/A
# (above 1: A is faster). The images are cached where run.sh keeps them.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
w=1 rounds=10
while [ $# -gt 2 ]; do
  case $1 in
    --workload) w=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "ab.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -eq 2 ] || { sed -n '7,10p' "$0" >&2; exit 2; }
A=$(realpath "$1") B=$(realpath "$2")
for b in "$A" "$B"; do [ -x "$b" ] || { echo "ab.sh: $b is not executable" >&2; exit 2; }; done
case $w in
  1) n=8 plats=linux/amd64,linux/arm64 layers=6 size=4194304 ;;
  2) n=40 plats=linux/amd64 layers=10 size=20480 ;;
  6) n=100 plats=linux/amd64 layers=3 size=20480 ;;
  *) echo "ab.sh: --workload is 1, 2 or 6" >&2; exit 2 ;;
esac
cache=${OCISYNC_BENCH_CACHE:-/tmp/ocisync-bench-cache}
lay="$cache/w$w-${n}img-${plats//[\/,]/_}-${layers}x$size"
mkdir -p "$cache"
python3 "$here/gen.py" build --out "$lay" --images "$n" --platforms "$plats" --layers "$layers" \
  --layer-size "$size" --seed "bench-w$w" --prefix "bench/w$w" >&2 || exit 1

export OCISYNC_SOURCE_DIR=$root
# shellcheck source=../tests/integration/lib.sh
. "$root/tests/integration/lib.sh"
# shellcheck disable=SC2034  # lib.sh prefixes its messages with it
TEST_NAME=ab
registry_start src >/dev/null
python3 "$here/limit.py" push "$lay" "$SRC_ADDR" --workers 8 >"$TMP/push.log" 2>&1 ||
  fail "pushing $lay into the source registry failed"
: >"$TMP/runs"
for r in $(seq 1 "$rounds"); do
  for which in A B; do
    bin=${!which}
    registry_stop dst
    rm -rf "$TMP/dst"
    registry_start dst >/dev/null
    python3 "$here/gen.py" ocisync-yaml "$lay" "$SRC_ADDR" "$DST_ADDR/o" --first "$n" >"$TMP/m.yaml"
    sync
    s=$(date +%s%N)
    /usr/bin/time -f "%U %S %M" -o "$TMP/time" "$bin" sync -q --src yaml "$TMP/m.yaml" >"$TMP/out" 2>&1 ||
      fail "$which ($bin) failed in round $r: $(tail -n 3 "$TMP/out")"
    e=$(date +%s%N)
    echo "$which $(((e - s) / 1000000)) $(tail -n 1 "$TMP/time")" | tee -a "$TMP/runs"
  done
done
awk '
  function med(v, k,   i, j, t, c) {
    c = k; for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return c % 2 ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2
  }
  { k = ++n[$1]; wall[$1, k] = $2; usr[$1, k] = $3; sys[$1, k] = $4; rss[$1, k] = $5 }
  END {
    split("A B", who, " ")
    for (x = 1; x <= 2; x++) {
      t = who[x]; m = n[t]
      for (i = 1; i <= m; i++) { a[i] = wall[t, i]; b[i] = usr[t, i]; c[i] = sys[t, i]; d[i] = rss[t, i] }
      printf "%s: median wall %d ms, user %.2f s, sys %.2f s, peak RSS %d KiB (%d runs)\n", t, med(a, m), med(b, m), med(c, m), med(d, m), m
    }
    m = n["A"] < n["B"] ? n["A"] : n["B"]
    for (i = 1; i <= m; i++) q[i] = wall["B", i] / wall["A", i]
    printf "B/A wall, median of %d pairs: %.3f\n", m, med(q, m)
  }' "$TMP/runs"
