#!/usr/bin/env bash
# Runs every test: installs what is missing (scripts/bootstrap.sh), builds
# in build/ with warnings as errors and runs ctest there, then builds in
# build-asan/ with AddressSanitizer + UndefinedBehaviorSanitizer and runs
# ctest again, then runs every libFuzzer target for a short time
# (scripts/fuzz.sh). Exits non-zero if the format check, a build, either
# ctest run or a fuzzer fails (every step runs even when an earlier one fails).
#
#   CTEST_JOBS=N     tests run in parallel (default 2; tests use their own
#                    ports, temp dirs and podman storage)
#   CTEST_ARGS="..." extra ctest arguments, e.g. "-R integration"
#   FUZZ_SECONDS=N   how long each libFuzzer target runs at the end (default 10)
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
jobs=${CTEST_JOBS:-2}
# shellcheck disable=SC2206
extra=(${CTEST_ARGS:-})

step() { printf '\n==> %s\n' "$*"; }

step "bootstrap"
bash scripts/bootstrap.sh || { echo "test.sh: bootstrap failed" >&2; exit 1; }

# LeakSanitizer needs to stop the process's threads with ptrace-like
# machinery; it cannot run under a tracer (strace, gdb) or where the
# container forbids it. Try it on a program that leaks: if LSan does not
# report the leak, run the sanitizer build without leak detection (and say
# so) rather than failing every test on a sanitizer startup error.
lsan_works() {
  local dir rc
  dir=$(mktemp -d)
  printf '#include <stdlib.h>\nint main(void) { volatile void *p = malloc(64); p = 0; (void)p; return 0; }\n' >"$dir/leak.c"
  if ! "${CC:-cc}" -fsanitize=address -g "$dir/leak.c" -o "$dir/leak" 2>"$dir/cc.err"; then
    echo "test.sh: cannot build a sanitizer probe: $(cat "$dir/cc.err")" >&2
    rm -rf "$dir"
    return 1
  fi
  ASAN_OPTIONS=detect_leaks=1 "$dir/leak" >/dev/null 2>"$dir/run.err"
  rc=$?
  if [ "$rc" -ne 0 ] && grep -q 'ERROR: LeakSanitizer: detected memory leaks' "$dir/run.err"; then
    rm -rf "$dir"
    return 0
  fi
  echo "test.sh: LeakSanitizer probe (exit $rc): $(head -n 3 "$dir/run.err")" >&2
  rm -rf "$dir"
  return 1
}

status=0

step "format (scripts/check-format.sh)"
bash scripts/check-format.sh || status=1

step "build (build/, -DOCISYNC_WERROR=ON)"
if cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOCISYNC_WERROR=ON &&
  cmake --build "$root/build" -j2; then
  step "ctest (build/)"
  (cd "$root/build" && ctest --output-on-failure -j"$jobs" "${extra[@]}") || status=1
else
  echo "test.sh: build in build/ failed" >&2
  status=1
fi

step "build (build-asan/, -DOCISYNC_WERROR=ON -DOCISYNC_SANITIZE=ON)"
if lsan_works; then
  leaks=1
else
  leaks=0
  echo "test.sh: WARNING: LeakSanitizer does not work here; running the sanitizer build with detect_leaks=0" >&2
fi
if cmake -S "$root" -B "$root/build-asan" -DCMAKE_BUILD_TYPE=Debug -DOCISYNC_WERROR=ON -DOCISYNC_SANITIZE=ON &&
  cmake --build "$root/build-asan" -j2; then
  step "ctest (build-asan/, detect_leaks=$leaks)"
  (cd "$root/build-asan" &&
    ASAN_OPTIONS="detect_leaks=$leaks:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
      UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
      ctest --output-on-failure -j"$jobs" "${extra[@]}") || status=1
else
  echo "test.sh: build in build-asan/ failed" >&2
  status=1
fi

step "fuzz (scripts/fuzz.sh, ${FUZZ_SECONDS:-10}s per target)"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-10}" || status=1

if [ "$status" -eq 0 ]; then
  step "all tests passed (build/ and build-asan/)"
else
  step "FAILED: see the output above"
fi
exit "$status"
