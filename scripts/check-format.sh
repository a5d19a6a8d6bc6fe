#!/usr/bin/env bash
# Checks that the C sources follow .clang-format; prints the files that do not.
# With --fix, rewrites them instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null 2>&1; then
  echo "check-format: clang-format is not installed" >&2
  exit 1
fi
files=$(git ls-files 'include/*.h' 'src/*.c' 'src/*.h' 'tests/unit/*.c' 'tests/unit/*.h' 'fuzz/*.c' 'bench/*.c' 'examples/*.c')
if [ "${1:-}" = "--fix" ]; then
  # shellcheck disable=SC2086
  clang-format -i $files
  exit 0
fi
bad=0
for f in $files; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "check-format: $f is not formatted (run scripts/check-format.sh --fix)" >&2
    bad=1
  fi
done
exit $bad
