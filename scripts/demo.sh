#!/usr/bin/env bash
# ocisync's main job, end to end: build ocisync, start two throwaway
# registries on loopback, push a small two-platform image to the first
# with skopeo, copy it to the second with `ocisync copy`, and compare the
# digests on both sides. The registries are stopped on exit.
#
#   OCISYNC_BIN=/path/to/ocisync  use that binary instead of building one
#   OCISYNC_KEEP_TMP=1            keep the temp dir (registry logs, image)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

echo "==> bootstrap"
bash scripts/bootstrap.sh

if [ -z "${OCISYNC_BIN:-}" ]; then
  echo "==> build (build/)"
  cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$root/build" -j2
  OCISYNC_BIN="$root/build/ocisync"
  if [ ! -x "$OCISYNC_BIN" ]; then
    echo "demo: $OCISYNC_BIN was not built (is src/cli/main.c there yet?)" >&2
    exit 1
  fi
fi
export OCISYNC_BIN OCISYNC_SOURCE_DIR="$root"

# The integration tests' helpers: temp dir, registries, cleanup on exit.
# shellcheck source=tests/integration/lib.sh
. "$root/tests/integration/lib.sh"

echo "==> two registries on loopback"
registry_start one
registry_start two

echo "==> a two-platform image (linux/amd64, linux/arm64/v8), pushed with skopeo"
made=$(mkimage --out "$TMP/image" --platforms linux/amd64,linux/arm64/v8 \
  --layers 2 --shared-layers 1 --layer-size 1048576 --seed demo --tag 1.0)
push_image "$TMP/image" "$ONE_ADDR/demo/hello:1.0"
src="$ONE_ADDR/demo/hello:1.0"
dst="$TWO_ADDR/demo/hello:1.0"

echo "==> ocisync copy docker://$src docker://$dst"
set +e
"$OCISYNC_BIN" copy --digestfile "$TMP/digest" "docker://$src" "docker://$dst"
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  echo "demo: ocisync copy failed with exit $rc" >&2
  exit 1
fi

src_digest=$(skopeo_digest "$src")
dst_digest=$(skopeo_digest "$dst")
echo
echo "generated:        $made"
echo "source      $src -> $src_digest"
echo "destination $dst -> $dst_digest"
echo "--digestfile      $(tr -d '[:space:]' <"$TMP/digest" 2>/dev/null || echo '(not written)')"
skopeo_raw "$dst" "$TMP/index.json"
index_children "$TMP/index.json" | sed 's/^/  child /'
if [ "$src_digest" = "$dst_digest" ]; then
  echo "MATCH: the destination serves the same image, byte for byte"
else
  echo "MISMATCH: the digests differ" >&2
  exit 1
fi
