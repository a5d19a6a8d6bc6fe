#!/usr/bin/env bash
# Dockerfile builds against buildah, the daemonless peer on Debian, on the
# same release-style Dockerfile (FROM scratch, COPY a directory of real
# files, ENTRYPOINT), into an OCI layout on local disk (no registry: what is
# timed is building the image, not the network):
#
#   ocisync-cold  ocisync build -f, an empty build cache (the layer is built
#                 and its files hashed for the cache key)
#   ocisync-warm  the same build again, the cache kept (a hit: a stat walk,
#                 no compression)
#   buildah       buildah bud --isolation chroot --layers=false, then
#                 buildah push to oci:DIR (what ocisync writes in one step)
#
# Rounds alternate the three; each figure is the median (min-max) of the
# rounds, wall seconds and peak RSS from /usr/bin/time.
#
#   bench/dockerfile.sh [--size BYTES] [--rounds N] [--bin OCISYNC]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
size=$((256 * 1024 * 1024))
rounds=5
bin="$here/../build/ocisync"
while [ $# -gt 0 ]; do
  case $1 in
    --size) size=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "dockerfile.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v buildah >/dev/null || { echo "dockerfile.sh: buildah is not installed" >&2; exit 2; }

work=${BENCH_DIR:-/tmp/ocisync-bench-dockerfile}
mkdir -p "$work"
ctx="$work/ctx"
python3 "$here/tree.py" build --out "$ctx/tree" --size "$size" >/dev/null
cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY tree /app
ENTRYPOINT ["/app/server"]
EOF
export SOURCE_DATE_EPOCH=1700000000
storage=(--root "$work/buildah/root" --runroot "$work/buildah/run" --storage-driver vfs)
printf 'unqualified-search-registries = []\n' >"$work/registries.conf"
export CONTAINERS_REGISTRIES_CONF="$work/registries.conf"

# run NAME CMD...: one timed run; appends "NAME wall_s rss_kib" to results.
run() {
  local name=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/$name.log" 2>&1 ||
    { echo "dockerfile.sh: $name failed: $(tail -n 5 "$work/$name.log")" >&2; exit 1; }
  echo "$name $(cat "$work/time")" >>"$work/results"
}

: >"$work/results"
for r in $(seq 1 "$rounds"); do
  rm -rf "$work/cache" "$work/out-cold" "$work/out-warm" "$work/out-buildah" "$work/buildah"
  run ocisync-cold "$bin" build -q -f "$ctx/Dockerfile" "$ctx" -p linux/amd64 \
    --cache-dir "$work/cache" --output "oci:$work/out-cold:1"
  run ocisync-warm "$bin" build -q -f "$ctx/Dockerfile" "$ctx" -p linux/amd64 \
    --cache-dir "$work/cache" --output "oci:$work/out-warm:1"
  run buildah sh -c "buildah ${storage[*]} bud -q --isolation chroot --layers=false --timestamp 1700000000 \
    -t bench:$r -f '$ctx/Dockerfile' '$ctx' >/dev/null && \
    buildah ${storage[*]} push -q bench:$r 'oci:$work/out-buildah:1'"
done

echo "Dockerfile build of $(du -sh "$ctx/tree" | cut -f1) of real files ($(find "$ctx/tree" -type f | wc -l) files), $rounds rounds:"
for name in ocisync-cold ocisync-warm buildah; do
  python3 - "$work/results" "$name" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.split()[0] == sys.argv[2]]
w = [float(r[1]) for r in rows]; m = [int(r[2]) / 1024 for r in rows]
print(f"  {sys.argv[2]:13} wall {statistics.median(w):6.2f} s ({min(w):.2f}-{max(w):.2f})"
      f"   peak RSS {statistics.median(m):6.0f} MiB")
PY
done
