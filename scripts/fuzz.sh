#!/usr/bin/env bash
# Builds every libFuzzer target in fuzz/ with clang (-fsanitize=fuzzer,address,undefined)
# and runs each for SECONDS (default 30) on a copy of its seed corpus, with its
# dictionary. Exits non-zero if a target fails to build or finds a crash, leak
# or sanitizer report; crash inputs are left in $OUT (default build-fuzz/).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 60 h1 ref
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
secs=${1:-30}
shift || true
out=${OUT:-build-fuzz}
mkdir -p "$out/include"

# include/ocisync.h includes ocisync_version.h, which CMake makes from project(VERSION); the
# same substitution here, for builds without CMake.
version=$(sed -n 's/^project(ocisync VERSION \([0-9]*\)\.\([0-9]*\)\.\([0-9]*\).*/\1 \2 \3/p' CMakeLists.txt)
read -r major minor patch <<<"$version"
sed -e "s/@PROJECT_VERSION_MAJOR@/$major/" -e "s/@PROJECT_VERSION_MINOR@/$minor/" \
  -e "s/@PROJECT_VERSION_PATCH@/$patch/" -e "s/@PROJECT_VERSION@/$major.$minor.$patch/" \
  include/ocisync_version.h.in >"$out/include/ocisync_version.h"

common="src/common/error.c src/common/log.c src/common/msg.c src/common/json_depth.c src/common/sysio.c"
llhttp="/usr/share/llhttp/api.c /usr/share/llhttp/http.c /usr/share/llhttp/llhttp.c"
# target: the sources it needs besides fuzz/fuzz_<target>.c
declare -A srcs=(
  [ref]="src/oci/ref.c src/oci/digest.c"
  [digest]="src/oci/digest.c"
  [manifest]="src/oci/manifest.c src/oci/digest.c"
  [h1]="src/proto/h1.c $llhttp"
  [www_authenticate]="src/proto/auth.c"
  [docker_config]="src/proto/creds.c src/proto/auth.c"
  [tar]="src/oci/tar.c src/oci/digest.c"
  [tagfilter]="src/oci/tagfilter.c"
  [sync_yaml]="src/cli/config.c src/oci/ref.c src/oci/digest.c src/oci/manifest.c"
  [dockerfile]="src/oci/dockerfile.c"
  [dockerignore]="src/oci/dockerignore.c"
  [stack]="src/oci/stack.c src/oci/unpack.c src/oci/tar.c src/oci/digest.c"
  [overlay]="src/oci/overlay.c src/oci/tar.c src/oci/unpack.c src/oci/digest.c"
  [recompress]="src/oci/recompress.c src/oci/unpack.c src/oci/digest.c"
)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for t in ref digest manifest h1 www_authenticate docker_config tar sync_yaml tagfilter \
    dockerfile dockerignore stack overlay recompress; do
    [ -f "fuzz/fuzz_$t.c" ] && targets+=("$t")
  done
fi

status=0
for t in "${targets[@]}"; do
  if [ -z "${srcs[$t]+x}" ]; then
    echo "fuzz.sh: unknown target $t" >&2
    status=1
    continue
  fi
  bin="$out/fuzz_$t"
  # shellcheck disable=SC2086
  if ! clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I"$out/include" -Isrc -I/usr/share/include/llhttp \
    "fuzz/fuzz_$t.c" ${srcs[$t]} $common -ljansson -lyaml -lcrypto -luv -lz -lzstd -o "$bin" 2>"$out/$t.build.log"; then
    echo "fuzz.sh: $t: build failed:" >&2
    tail -n 20 "$out/$t.build.log" >&2
    status=1
    continue
  fi
  corpus="$out/corpus_$t"
  rm -rf "$corpus"
  mkdir -p "$corpus"
  cp -r "fuzz/corpus/$t/." "$corpus/" 2>/dev/null || true
  dict=()
  [ -f "fuzz/$t.dict" ] && dict=("-dict=fuzz/$t.dict")
  if "$bin" "${dict[@]}" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$out/crash_${t}_" \
    "$corpus" >"$out/$t.log" 2>&1; then
    execs=$(grep -m1 'stat::number_of_executed_units' "$out/$t.log" | awk '{print $2}')
    cov=$(grep -E '^#[0-9]+.*DONE' "$out/$t.log" | grep -oE 'cov: [0-9]+' | tail -1)
    echo "fuzz $t: ${secs}s, ${execs:-?} executions, ${cov:-cov: ?}, no crash"
  else
    echo "fuzz.sh: $t: FAILED (see $out/$t.log)" >&2
    grep -E 'ERROR|SUMMARY|runtime error' "$out/$t.log" | head -n 5 >&2
    status=1
  fi
done
exit $status
