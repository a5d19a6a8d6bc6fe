#!/usr/bin/env bash
# ocisync against skopeo and against the registry's own limit (issue #6), on
# one machine, in one run.
#
#   bench/run.sh [--quick] [--rounds N] [--workloads 1,2,3,4,5,6] [--out FILE]
#                [--limit-workers N] [--parallel P] [--scale 10,100,1000]
#
#   --quick            small workloads, one round: checks the harness works
#                      (CI smoke test, under 2 minutes); numbers mean little
#   --rounds N         measured runs per tool and case (default 3; quick 1)
#   --workloads LIST   which workloads (default 1,2,3,4,5,6; quick: 1,2,4,6,
#                      and `--quick --workloads 3,5` runs the other two small)
#   --out FILE         the markdown report (default bench/results/DATE.md,
#                      DATE-HHMMSS.md if that exists; quick: DATE-quick.md)
#   --limit-workers N  connections of the minimal client (default 8)
#   --parallel P       parallel `ocisync copy` / `skopeo copy` runs in
#                      workload 6 (default 8)
#   --scale LIST       image counts of workload 6 (default 10,100,1000)
#
#   OCISYNC_BIN          the binary (default build/ocisync)
#   OCISYNC_BIN_BASE     a second ocisync binary (say, main before a change):
#                        workloads 1, 2 and 6 then also run \`base-sync\`, the
#                        reference row's command with it, in the same rounds;
#                        workload 5 runs \`base-bp-gzip\` and \`base-bp-zstd\`,
#                        each right after its ocisync row
#   OCISYNC_BENCH_CACHE  where generated images are kept between runs
#                        (default /tmp/ocisync-bench-cache; about 2.6 GiB)
#   OCISYNC_KEEP_TMP=1   keep the run's temp dir (registry logs, tool output)
#
# Workloads (full size; --quick shrinks each):
#   1  mirror, large blobs: 8 images x 2 platforms x 6 layers of 4 MiB
#   2  mirror, small blobs: 40 images x 10 layers of 20 KiB
#   3  bulk push from an OCI layout (the CI case): the image sets of 1 and 2,
#      read from a local layout instead of a source registry
#   4  one 1 GiB layer: throughput and peak RSS
#   5  build-push: a 1 GiB directory of real files (bench/tree.py: from
#      /usr/lib/x86_64-linux-gnu and /usr/share) into one gzip or zstd
#      layer, against compression alone (tar | pigz -6, tar | zstd -3 -T0)
#      and against the skopeo route (bench/skopeo_route.sh: tar | pigz -6,
#      wrapped into a layout, pushed with skopeo copy); quick: 20 MiB
#   6  scaling: 10, 100, 1000 images of 3 layers of 20 KiB
#
# ocisync runs two ways in workloads 1, 2 and 6: `ocisync sync` (the
# reference column: one process for all the workload's images, one shared
# queue of blob transfers, from an ocisync YAML file naming each image's
# exact tag and destination) and, for comparison, `ocisync copy` once per
# image (one after another in 1 and 2, P at a time through xargs -P in 6).
# Workload 4 is one image: `ocisync copy` only. Workload 3 pushes from a
# layout (gen.py view: the set's layout with its images named by tags, blob
# files hard-linked): `ocisync sync --src oci` (every image of the layout
# in one run) against `ocisync copy oci:` and `skopeo copy --all oci:` once
# per image (skopeo sync has no oci source), all to DEST/LAYOUTNAME:NAME.
#
# Method: images are generated deterministically (bench/gen.py, random
# payloads), cached, and pushed once into a source registry that every run
# reads. Every measured run gets a new destination docker-registry with
# empty storage (127.0.0.1 only; lib.sh starts and stops them), and
# skopeo's blob-info cache is removed first, so no run can mount or skip a
# blob thanks to an earlier one. Rounds alternate the tools (the order
# rotates each round). Time is wall-clock around the tool's process(es);
# peak RSS is /usr/bin/time's maximum over the processes of the run. The
# limit is bench/limit.py: POST + one monolithic PUT per blob, then the
# manifests, over N keep-alive connections, reading from the local layout.
# Workloads 1, 2 and 6 also measure the relay limit (limit.py --source): the
# same client GETting each blob from the source registry into its PUT, so
# the source's share of a machine both registries run on is in it too.
# After every run the destination is checked (each tag's digest; in
# workload 5 the pushed tag, or that compression alone wrote a file).
# Timings never fail the script; a failed run does (exit 1), after the
# report.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

quick=0
rounds=""
workloads=""
out=""
limit_workers=8
par=8
scale=""
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --rounds) rounds=${2:?--rounds needs N}; shift ;;
    --rounds=*) rounds=${1#*=} ;;
    --workloads) workloads=${2:?--workloads needs a list}; shift ;;
    --workloads=*) workloads=${1#*=} ;;
    --out) out=${2:?--out needs a file}; shift ;;
    --out=*) out=${1#*=} ;;
    --limit-workers) limit_workers=${2:?}; shift ;;
    --limit-workers=*) limit_workers=${1#*=} ;;
    --parallel) par=${2:?}; shift ;;
    --parallel=*) par=${1#*=} ;;
    --scale) scale=${2:?}; shift ;;
    --scale=*) scale=${1#*=} ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$rounds" ] || rounds=$([ "$quick" = 1 ] && echo 1 || echo 3)
# Quick leaves 3 and 5 out unless asked for: the CI smoke test checks the
# rows of 1, 2, 4 and 6 and nothing else.
[ -n "$workloads" ] || workloads=$([ "$quick" = 1 ] && echo 1,2,4,6 || echo 1,2,3,4,5,6)
[ -n "$scale" ] || scale=$([ "$quick" = 1 ] && echo 5,20 || echo 10,100,1000)
for v in "$rounds" "$limit_workers" "$par" ${scale//,/ }; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: '$v' is not a positive number" >&2; exit 2; }
done
for w in ${workloads//,/ }; do
  case $w in 1 | 2 | 3 | 4 | 5 | 6) ;; *) echo "run.sh: no workload '$w' (1-6)" >&2; exit 2 ;; esac
done

bin=${OCISYNC_BIN:-$root/build/ocisync}
[ -x "$bin" ] || { echo "run.sh: $bin not found; build first or set OCISYNC_BIN" >&2; exit 1; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
base_bin=${OCISYNC_BIN_BASE:-}
if [ -n "$base_bin" ]; then
  [ -x "$base_bin" ] || { echo "run.sh: OCISYNC_BIN_BASE=$base_bin is not an executable file" >&2; exit 1; }
  base_bin=$(cd "$(dirname "$base_bin")" && pwd)/$(basename "$base_bin")
fi
cache=${OCISYNC_BENCH_CACHE:-/tmp/ocisync-bench-cache}
if [ -z "$out" ]; then
  suffix=""
  [ "$quick" = 0 ] || suffix=-quick
  out="$root/bench/results/$(date +%F)$suffix.md"
  [ "$quick" = 1 ] || [ ! -e "$out" ] || out="${out%.md}-$(date +%H%M%S).md"
fi
mkdir -p "$(dirname "$out")" "$cache"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
has_w() { [[ ,$workloads, == *,$1,* ]]; }
needs=(skopeo docker-registry /usr/bin/time python3 curl xargs)
! has_w 5 || needs+=(tar pigz zstd tee sha256sum mkfifo)
for t in "${needs[@]}"; do
  command -v "$t" >/dev/null || { echo "run.sh: $t is needed" >&2; exit 1; }
done

export OCISYNC_SOURCE_DIR=$root
# lib.sh gives us $TMP, registry_start/stop on 127.0.0.1 and a cleanup trap
# that stops every registry, also when this script fails or is interrupted.
# shellcheck source=../tests/integration/lib.sh
. "$root/tests/integration/lib.sh"
# shellcheck disable=SC2034  # lib.sh prefixes its messages with it
TEST_NAME=bench
tool_timeout=$([ "$quick" = 1 ] && echo 60 || echo 1800)
mkdir -p "$TMP/runs"
: >"$TMP/meta.tsv"
: >"$TMP/raw.tsv"
any_fail=0

gen() { python3 "$here/gen.py" "$@"; }

# clear_skopeo_cache: removes skopeo's blob-info cache (root's and a
# rootless user's). Other skopeo processes on the machine may be writing it
# at the same moment, so a failed removal is retried, then only reported.
clear_skopeo_cache() {
  local d
  for d in /var/lib/containers/cache "${HOME:-/root}/.local/share/containers/cache"; do
    for _ in 1 2 3 4 5; do
      rm -rf "$d" 2>/dev/null && break
      sleep 0.2
    done
    [ ! -e "$d" ] || log "warning: could not remove $d (in use by another skopeo?)"
  done
}

# fresh_dst: a new destination registry with empty storage, on a new port.
fresh_dst() {
  registry_stop dst
  rm -rf "$TMP/dst"
  registry_start dst >>"$TMP/harness.log"
}

# gen_layout W IMAGES PLATFORMS LAYERS SIZE: generates (or reuses) the
# workload's layout in the cache, prints its path.
gen_layout() {
  local w=$1 n=$2 plats=$3 layers=$4 size=$5 dir
  dir="$cache/w$w-${n}img-${plats//[\/,]/_}-${layers}x$size"
  if [ ! -f "$dir/bench-params.json" ]; then
    log "generating $dir" >&2
  fi
  gen build --out "$dir" --images "$n" --platforms "$plats" --layers "$layers" \
    --layer-size "$size" --seed "bench-w$w" --prefix "bench/w$w" >&2 ||
    fail "gen.py build $dir failed"
  printf '%s\n' "$dir"
}

# layout W IMAGES PLATFORMS LAYERS SIZE: gen_layout, then pushes the
# layout into the source registry.
layout() {
  local dir
  dir=$(gen_layout "$@")
  python3 "$here/limit.py" push "$dir" "$SRC_ADDR" --workers 8 >>"$TMP/harness.log" 2>&1 ||
    fail "pushing $dir into the source registry failed: $(tail -n 3 "$TMP/harness.log")"
  printf '%s\n' "$dir"
}

# view_layout LAYOUT: workload 3's view of a layout (gen.py view: hard
# links, each image named by a tag, as `sync --src oci` wants it); prints
# its path. Its name is the destination repository's last component.
view_layout() {
  local dir
  dir="$cache/w3/$(basename "$1")"
  mkdir -p "$cache/w3"
  gen view "$1" "$dir" >&2 || fail "gen.py view $1 failed"
  printf '%s\n' "$dir"
}

# tree_dir BYTES: workload 5's directory of real files (built once, then
# reused); prints its path.
tree_dir() {
  local dir="$cache/w5-tree-$1"
  if [ ! -f "$dir.json" ]; then
    log "copying $(($1 / 1048576)) MiB of files from /usr/lib/x86_64-linux-gnu and /usr/share into $dir" >&2
  fi
  python3 "$here/tree.py" build --out "$dir" --size "$1" >&2 || fail "tree.py build $dir failed"
  printf '%s\n' "$dir"
}

# write_cmd TOOL LAYOUT FIRST PREFIX: the command a run executes, as a
# script ($TMP/cmd.sh), written once the destination (if any) is up. In
# workload 5, LAYOUT is the directory to build from, and what a tool
# writes goes to $TMP/w5-out.
write_cmd() {
  local tool=$1 lay=$2 first=$3 prefix=$4 p=1 o="$TMP/w5-out"
  case $tool in
    ocisync-oci-* | skopeo-copy-oci) gen oci-pairs "$lay" "$DST_ADDR/$prefix" --first "$first" >"$TMP/pairs" ;;
    limit* | ocisync-bp-* | base-bp-* | skopeo-pigz | pigz | zstd) ;;
    *)
      gen refs "$lay" --first "$first" |
        awk -v s="$SRC_ADDR" -v d="$DST_ADDR/$prefix" '{ n = split($0, a, "/"); print "docker://" s "/" $0, "docker://" d "/" a[n] }' \
          >"$TMP/pairs" ;;
  esac
  case $tool in
    *-par) p=$par ;;
  esac
  case $tool in
    ocisync-oci-sync)
      printf 'exec %q sync -q --src oci --dest docker %q %q\n' "$bin" "$lay" "$DST_ADDR/$prefix" ;;
    ocisync-bp-gzip | ocisync-bp-zstd | base-bp-gzip | base-bp-zstd)
      # A build cache of its own each round: the first build's cost (the layer is built, and
      # its files hashed for the cache key), never a hit from an earlier round.
      printf 'export XDG_CACHE_HOME=%q\nexec %q build-push -q --base scratch --platform %q --compression %s --digest-file %q --tag %q\n' \
        "$o/cache" "$([ "${tool#base-}" = "$tool" ] && echo "$bin" || echo "$base_bin")" "linux/amd64=$lay" \
        "${tool#*-bp-}" "$o/digest" "$DST_ADDR/$prefix/w5:${tool#*-bp-}" ;;
    pigz)
      printf 'set -o pipefail\ntar -C %q -cf - . | pigz -6 >%q\n' "$lay" "$o/layer.tar.gz" ;;
    zstd)
      printf 'set -o pipefail\ntar -C %q -cf - . | zstd -q -3 -T0 >%q\n' "$lay" "$o/layer.tar.zst" ;;
    skopeo-pigz)
      printf 'exec bash %q %q %q %q\n' "$here/skopeo_route.sh" "$lay" "$o" "docker://$DST_ADDR/$prefix/w5:gzip" ;;
    ocisync-sync | base-sync)
      gen ocisync-yaml "$lay" "$SRC_ADDR" "$DST_ADDR/$prefix" --first "$first" >"$TMP/mirrors.yaml"
      printf 'exec %q sync -q --src yaml %q\n' "$([ "$tool" = base-sync ] && echo "$base_bin" || echo "$bin")" \
        "$TMP/mirrors.yaml" ;;
    ocisync-*)
      printf 'exec xargs -P %d -n 2 %q copy -q <%q\n' "$p" "$bin" "$TMP/pairs" ;;
    skopeo-copy-oci)
      printf 'exec xargs -P 1 -n 2 skopeo copy -q --all --dest-tls-verify=false <%q\n' "$TMP/pairs" ;;
    skopeo-copy*)
      printf 'exec xargs -P %d -n 2 skopeo copy -q --all --src-tls-verify=false --dest-tls-verify=false <%q\n' \
        "$p" "$TMP/pairs" ;;
    skopeo-sync)
      gen skopeo-yaml "$lay" "$SRC_ADDR" --first "$first" >"$TMP/sync.yaml"
      printf 'exec skopeo sync --all --src yaml --dest docker --dest-tls-verify=false %q %q\n' \
        "$TMP/sync.yaml" "$DST_ADDR/$prefix" ;;
    limit)
      printf 'exec python3 %q push %q %q --workers %d --first %d --dest-prefix %q >%q\n' \
        "$here/limit.py" "$lay" "$DST_ADDR" "$limit_workers" "$first" "$prefix" "$TMP/limit.json" ;;
    limit-relay)
      printf 'exec python3 %q push %q %q --workers %d --first %d --dest-prefix %q --source %q >%q\n' \
        "$here/limit.py" "$lay" "$DST_ADDR" "$limit_workers" "$first" "$prefix" "$SRC_ADDR" "$TMP/limit.json" ;;
    *) fail "unknown tool $tool" ;;
  esac >"$TMP/cmd.sh"
}

# check_w5 TOOL PREFIX: workload 5's check after a run: the tag a push
# made is served (with the digest ocisync printed), or compression alone
# wrote a file. Prints the compressed layer's size in bytes.
check_w5() {
  local tool=$1 prefix=$2 o="$TMP/w5-out" f want=()
  case $tool in
    pigz | zstd)
      f="$o/layer.tar.gz"
      [ "$tool" = pigz ] || f="$o/layer.tar.zst"
      [ -s "$f" ] || { echo "run.sh: $f is missing or empty" >&2; return 1; }
      stat -c %s "$f" ;;
    *)
      [ "$tool" = skopeo-pigz ] || want=(--digest "$(cat "$o/digest")")
      python3 "$here/limit.py" tag-info "$DST_ADDR" "$prefix/w5:$([ "${tool#*-bp-}" = zstd ] && echo zstd || echo gzip)" \
        "${want[@]}" >"$o/tag.json" || return 1
      json_eval "$o/tag.json" 'd["layer_bytes"]' ;;
  esac
}

# registry_cpu NAME: the CPU seconds (user + system) the running registry
# NAME has used so far, from /proc; empty if it cannot be read.
registry_cpu() {
  local v="_LIB_PID_$1" f
  [ -r "/proc/${!v:-x}/stat" ] || return 0
  read -r -a f <"/proc/${!v}/stat"
  # Fields 14 and 15 (utime, stime) in clock ticks; the name (field 2) has no spaces here.
  awk -v u="${f[13]}" -v s="${f[14]}" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (u + s) / hz }'
}

# measure W CASE TOOL ROUND LAYOUT FIRST: one measured run on a fresh
# destination (none for compression alone); appends a line to raw.tsv.
measure() {
  local w=$1 case=$2 tool=$3 round=$4 lay=$5 first=$6 prefix status=ok start end secs rss="" dst=1
  local rlog="$TMP/runs/w$w-${case//[ ,\/]/_}-$tool-$round.log" outb="" phases="" cpu="" regcpu="" u sy
  case $tool in ocisync-* | base-*) prefix=o ;; skopeo-sync | skopeo-pigz) prefix=s ;; skopeo-copy*) prefix=c ;; *) prefix=l ;; esac
  case $tool in pigz | zstd) dst=0 ;; esac
  [ "$dst" = 0 ] || fresh_dst
  rm -rf "$TMP/w5-out"
  mkdir -p "$TMP/w5-out"
  write_cmd "$tool" "$lay" "$first" "$prefix"
  clear_skopeo_cache
  sync
  start=$(date +%s%N)
  if timeout -k 5 "$tool_timeout" /usr/bin/time -f '%M %U %S' -o "$TMP/time" bash "$TMP/cmd.sh" >"$rlog" 2>&1; then
    end=$(date +%s%N)
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
    case $tool in limit*) secs=$(json_eval "$TMP/limit.json" 'd["seconds"]') ;; esac
    read -r rss u sy < <(tail -n 1 "$TMP/time")
    cpu=$(awk -v u="$u" -v s="$sy" 'BEGIN { printf "%.2f", u + s }')
    if [ "$w" = 5 ]; then
      outb=$(check_w5 "$tool" "$prefix" 2>>"$rlog") || status=FAIL
      [ ! -f "$TMP/w5-out/phases" ] || phases=$(cat "$TMP/w5-out/phases")
    elif ! python3 "$here/limit.py" verify "$lay" "$DST_ADDR" --first "$first" --dest-prefix "$prefix" \
      >>"$rlog" 2>&1; then
      status=FAIL
    fi
  else
    status=FAIL
    secs=""
  fi
  if [ "$status" = ok ]; then
    log "  w$w $case $tool round $round: ${secs}s, CPU ${cpu}s, peak RSS ${rss} KiB${outb:+, output $outb bytes}${phases:+ ($phases)}"
  else
    any_fail=1
    log "  w$w $case $tool round $round: FAILED: $(grep -v '^Command exited' "$rlog" | tail -n 3 | tr '\n' ' ' | cut -c1-400)"
  fi
  [ "$dst" = 0 ] || regcpu=$(registry_cpu dst)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$case" "$tool" "$round" "$secs" "$rss" "$status" \
    "$outb" "$phases" "$cpu" "$regcpu" >>"$TMP/raw.tsv"
  [ "$dst" = 0 ] || registry_stop dst
  rm -rf "$TMP/dst" "$TMP/w5-out"
}

# bench_case W CASE TITLE LAYOUT FIRST TOOLS...: every round runs every
# tool once, the order rotating by one each round.
bench_case() {
  local w=$1 case=$2 title=$3 lay=$4 first=$5 st r i n
  shift 5
  local tools=("$@")
  # Workload 5's "bytes" are the directory as GNU tar streams it, its
  # "blobs" the number of files.
  if [ "$w" = 5 ]; then
    st=$(python3 "$here/tree.py" stats "$lay" |
      python3 -c 'import json,sys; d=json.load(sys.stdin); print(1, d["tar_bytes"], d["files"], 0, sep="\t")')
  else
    st=$(gen stats "$lay" --first "$first" |
      python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["images"], d["bytes"], d["blobs"], d["manifests"], sep="\t")')
  fi
  printf '%s\t%s\t%s\t%s\n' "$w" "$case" "$st" "$title" >>"$TMP/meta.tsv"
  log "workload $w, $case: $title"
  n=${#tools[@]}
  for r in $(seq 1 "$rounds"); do
    for i in $(seq 0 $((n - 1))); do
      measure "$w" "$case" "${tools[$(((i + r - 1) % n))]}" "$r" "$lay" "$first"
    done
  done
}

mib() { echo $(($1 * 1024 * 1024)); }
kib() { echo $(($1 * 1024)); }

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
rev_start=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')
# Only workloads 3 and 5 do without the source registry.
if has_w 1 || has_w 2 || has_w 4 || has_w 6; then
  registry_start src >>"$TMP/harness.log"
fi
log "ocisync: $bin; rounds: $rounds; workloads: $workloads; temp dir: $TMP"
# The image sets of workloads 1 and 2, which workload 3 pushes from layouts.
if [ "$quick" = 1 ]; then
  w1_n=2 w1_layers=2 w1_size=$(mib 1) w2_n=5 w2_layers=3 w5_size=$(mib 20)
else
  w1_n=8 w1_layers=6 w1_size=$(mib 4) w2_n=40 w2_layers=10 w5_size=$(mib 1024)
fi
w1_title="$w1_n images x 2 platforms x $w1_layers layers of $((w1_size / 1048576)) MiB"
w2_title="$w2_n images x 1 platform x $w2_layers layers of 20 KiB"
for w in ${workloads//,/ }; do
  case $w in
    1)
      lay=$(layout 1 $w1_n linux/amd64,linux/arm64 $w1_layers "$w1_size")
      bench_case 1 "$w1_n images" "$w1_title" \
        "$lay" $w1_n ocisync-sync ${base_bin:+base-sync} ocisync-seq skopeo-sync skopeo-copy limit limit-relay
      ;;
    2)
      lay=$(layout 2 $w2_n linux/amd64 $w2_layers "$(kib 20)")
      bench_case 2 "$w2_n images" "$w2_title" \
        "$lay" $w2_n ocisync-sync ${base_bin:+base-sync} ocisync-seq skopeo-sync skopeo-copy limit limit-relay
      ;;
    3)
      lay=$(view_layout "$(gen_layout 1 $w1_n linux/amd64,linux/arm64 $w1_layers "$w1_size")")
      bench_case 3 "set 1, $w1_n images" "workload 1's set from a layout: $w1_title" \
        "$lay" $w1_n ocisync-oci-sync ocisync-oci-seq skopeo-copy-oci limit
      lay=$(view_layout "$(gen_layout 2 $w2_n linux/amd64 $w2_layers "$(kib 20)")")
      bench_case 3 "set 2, $w2_n images" "workload 2's set from a layout: $w2_title" \
        "$lay" $w2_n ocisync-oci-sync ocisync-oci-seq skopeo-copy-oci limit
      ;;
    5)
      lay=$(tree_dir "$w5_size")
      title=$(json_eval "$lay.json" "'%d real files, %.0f MiB (GNU tar stream: %.0f MiB)' % (d['files'], d['bytes'] / 2**20, d['tar_bytes'] / 2**20)")
      title="$title, from /usr/lib/x86_64-linux-gnu and /usr/share, into one linux/amd64 layer on scratch"
      bench_case 5 "$((w5_size / 1048576)) MiB tree" "$title" \
        "$lay" 1 ocisync-bp-gzip ${base_bin:+base-bp-gzip} pigz skopeo-pigz ocisync-bp-zstd \
        ${base_bin:+base-bp-zstd} zstd
      ;;
    4)
      if [ "$quick" = 1 ]; then size=$(mib 32); else size=$(mib 1024); fi
      lay=$(layout 4 1 linux/amd64 1 "$size")
      bench_case 4 "$((size / 1048576)) MiB" "1 image, 1 layer of $((size / 1048576)) MiB" \
        "$lay" 1 ocisync-seq skopeo-copy limit
      ;;
    6)
      max=0
      for s in ${scale//,/ }; do [ "$s" -le "$max" ] || max=$s; done
      lay=$(layout 6 "$max" linux/amd64 3 "$(kib 20)")
      for s in ${scale//,/ }; do
        bench_case 6 "N=$s" "$s images x 1 platform x 3 layers of 20 KiB" \
          "$lay" "$s" ocisync-sync ${base_bin:+base-sync} ocisync-par skopeo-sync skopeo-copy-par limit \
          limit-relay
      done
      ;;
  esac
done
# Workloads left out of this run, named so the report says it. (The CI
# smoke test looks for "Workload 3 (...): TODO" in the quick report.)
todo=()
has_w 3 || todo+=("- Workload 3 (bulk push from an OCI layout): TODO: not in this run's \`--workloads\` ($workloads); \`bench/run.sh --workloads 3\` runs it.")
has_w 5 || todo+=("- Workload 5 (build-push): TODO: not in this run's \`--workloads\` ($workloads); \`bench/run.sh --workloads 5\` runs it.")
{
  echo "# ocisync benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')$([ "$quick" = 1 ] && echo ' (quick: harness smoke test, numbers mean little)')"
  echo
  echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), Linux $(uname -r)"
  echo "- load average (1, 5, 15 min) at the start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg). The load at the start is other work sharing the machine; it makes the numbers noisier."
  echo "- ocisync: $("$bin" version 2>&1 | head -n 1) (\`$bin\`; the source tree was at $rev_start$([ -z "$(git -C "$root" status --porcelain -- src include 2>/dev/null)" ] || echo ' with src/ or include/ modified') when the run started; that the binary was built from it is not checked), with default options: \`--jobs 8\` (blob transfers in flight, per process), every blob in one streamed PUT (no \`--chunk-size\`), all platforms, plain HTTP (the default for 127.0.0.1)"
  echo "- peers: $(skopeo --version), with \`--src-tls-verify=false --dest-tls-verify=false\` (yaml \`tls-verify: false\` for sync), default parallelism; $(docker-registry --version | awk '{print "docker-registry " $NF}'), filesystem storage, access log on"
  echo "- method: $rounds round(s), tools alternating (order rotates each round); a new destination registry with empty storage on 127.0.0.1 for every run that pushes, skopeo's blob-info cache removed before every run; one source registry shared by all runs of workloads 1, 2, 4 and 6; every run checked afterwards (each tag's digest at the destination; in workload 5 the pushed tag's digest, or that compression alone wrote its file). Times are wall-clock medians; peak RSS is the largest process of the run (/usr/bin/time)."
  echo "- limit: bench/limit.py, the registry's own ceiling: POST + one monolithic PUT per blob, then the manifests, $limit_workers keep-alive connections, blobs read from the local layout (no source GETs), timed from first request to last response. ocisync's share of it is limit time / ocisync time."
  echo "- \"ocisync vs this\": this tool's median time / that of ocisync's reference row (the one marked —: \`sync\` where it ran, else \`copy\`), i.e. ocisync's throughput ratio (2.00x = twice as fast). Targets (issue #6) are judged on the reference row; they are reported, never asserted."
  echo "- MiB/s counts blobs + manifests. In workloads 1, 2 and 6 the reference is \`ocisync sync -q --src yaml FILE\`: one process for all the workload's images, sharing one queue of \`--jobs\` blob transfers, from ocisync's YAML format (one mirror per image with its exact tag, so no tag listing; the destination names are skopeo sync's, DEST/NAME:TAG). The \`ocisync copy\` rows run one process per image, as ocisync did before it had \`sync\`: one after another in workloads 1 and 2, $par at a time (\`xargs -P $par\`) in workload 6. Workload 4 is one image: \`ocisync copy -q\`."
  if has_w 3; then
    echo "- Workload 3 pushes workload 1's and 2's image sets from a local OCI layout, no source registry: a copy of the set's layout (blob files hard-linked) whose images are named by tags (\`w1-003\`), as \`ocisync sync --src oci\` wants them. Every tool pushes image NAME to DEST/LAYOUT:NAME (LAYOUT being the layout directory's name). The reference is \`ocisync sync -q --src oci --dest docker LAYOUT DEST\`: every image of the layout in one process; then \`ocisync copy -q oci:LAYOUT:NAME docker://...\` and \`skopeo copy -q --all --dest-tls-verify=false oci:LAYOUT:NAME docker://...\` once per image, one after another (skopeo sync cannot read an OCI layout). The limit reads the same layout."
  fi
  if has_w 5; then
    echo "- Workload 5 builds one layer from a directory of real files (copied once from /usr/lib/x86_64-linux-gnu and /usr/share by bench/tree.py, in the page cache during the runs) and pushes it: \`ocisync build-push -q --base scratch --platform linux/amd64=DIR --compression gzip|zstd --tag ...\` (default levels: gzip 6, zstd 3), each run with an empty build cache of its own (a first build: the layer is built, and its files hashed once more for the cache key). Compression alone (no push, nothing hashed), the issue's reference: \`tar -C DIR -cf - . | pigz -6 >FILE\` and \`tar -C DIR -cf - . | zstd -q -3 -T0 >FILE\`. The skopeo route (bench/skopeo_route.sh) is what a CI job without ocisync does: \`tar | tee FIFO | pigz -6 | tee FILE | sha256sum\` (the FIFO into sha256sum: the diff_id), the file wrapped into an OCI layout (bench/tree.py wrap: config, manifest, index.json), then \`skopeo copy -q oci:... docker://...\`; its time is the total. MiB/s is the directory's GNU tar stream size over the time; \"output MiB\" is the compressed layer; \"time / compression alone\" divides each row's median time by that of compression alone with the same compressor (pigz for gzip rows, zstd for zstd rows), so a build-push at 1.20x takes 20% longer than compressing alone. The target (issue #6): ocisync build-push within 1.2x of compression alone."
  fi
  if [ ${#todo[@]} -gt 0 ]; then printf '%s\n' "${todo[@]}"; fi
} >"$TMP/header.md"

set +e
python3 "$here/report.py" "$TMP/header.md" "$TMP/meta.tsv" "$TMP/raw.tsv" "par=$par" "workers=$limit_workers" >"$out"
rc=$?
set -e
cat "$out"
echo
log "report written to $out"
for t in "${todo[@]}"; do log "${t#- }"; done
if [ "$rc" != 0 ] || [ "$any_fail" != 0 ]; then
  fail "some runs failed (see the report; OCISYNC_KEEP_TMP=1 keeps the logs)"
fi
