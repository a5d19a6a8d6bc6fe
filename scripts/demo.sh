#!/usr/bin/env bash
# ocisync's main job, end to end: build ocisync, start two throwaway
# registries on loopback, push a small two-platform image to the first
# with skopeo, copy it to the second with `ocisync copy`, and compare the
# digests on both sides; then build-push a two-platform image on top of it,
# from directories and from a Dockerfile, and sync the repositories back with a config file (twice: the second
# run finds everything there). The registries are stopped on exit.
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

echo
echo "==> ocisync build-push: a two-platform image from directories, on top of the copied one"
mkdir -p "$TMP/ctx/amd64" "$TMP/ctx/arm64" "$TMP/ctx/common"
echo "built for amd64" >"$TMP/ctx/amd64/VERSION"
echo "built for arm64" >"$TMP/ctx/arm64/VERSION"
echo "shared by both" >"$TMP/ctx/common/README"
set +e
SOURCE_DATE_EPOCH=1700000000 "$OCISYNC_BIN" build-push --base "$dst" \
  --platform "linux/amd64=$TMP/ctx/amd64:/app" --platform "linux/arm64=$TMP/ctx/arm64:/app" \
  --layer "$TMP/ctx/common:/app/doc" --workdir /app --env MODE=demo \
  --tag "$TWO_ADDR/demo/app:1.0;$TWO_ADDR/demo/app:latest" --digest-file "$TMP/built"
rc=$?
set -e
[ "$rc" -eq 0 ] || { echo "demo: build-push failed with exit $rc" >&2; exit 1; }
echo "built index       $(cat "$TMP/built") (tags 1.0 and latest; the base's layers were mounted)"

echo
echo "==> ocisync build-push -f: the same from a Dockerfile, COPY --from the image just built"
cat >"$TMP/ctx/Dockerfile" <<EOF
ARG BASE
FROM \$BASE
ARG TARGETARCH
COPY --from=$TWO_ADDR/demo/app:1.0 /app/VERSION /app/BUILT_FROM
COPY common/ /app/doc/
LABEL org.example.arch=\$TARGETARCH
WORKDIR /app
ENTRYPOINT ["/bin/sh"]
EOF
set +e
SOURCE_DATE_EPOCH=1700000000 "$OCISYNC_BIN" build-push -f "$TMP/ctx/Dockerfile" "$TMP/ctx" \
  --build-arg "BASE=$dst" -p linux/amd64 -p linux/arm64 \
  --tag "$TWO_ADDR/demo/dockerfile:1.0" --digest-file "$TMP/built-df"
rc=$?
set -e
[ "$rc" -eq 0 ] || { echo "demo: build-push -f failed with exit $rc" >&2; exit 1; }
echo "built index       $(cat "$TMP/built-df") (from the Dockerfile; run it again: every layer a cache hit)"

echo
echo "==> ocisync sync: both repositories of the second registry into the first, from a config"
cat >"$TMP/mirrors.yml" <<YML
mirrors:
  - from: $TWO_ADDR/demo
    to: $ONE_ADDR/mirror
    repositories: all
YML
set +e
"$OCISYNC_BIN" sync --src yaml "$TMP/mirrors.yml"
rc=$?
set -e
[ "$rc" -eq 0 ] || { echo "demo: sync failed with exit $rc" >&2; exit 1; }
echo "==> the same sync again: every tag is already there, so it costs a HEAD per side"
"$OCISYNC_BIN" sync --src yaml "$TMP/mirrors.yml" | tail -n 1
