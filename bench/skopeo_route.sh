#!/usr/bin/env bash
# Workload 5's skopeo route: what a CI job without ocisync does to push a
# directory as a layer. tar | pigz -6 makes the layer, hashing the tar (the
# config's diff_id, through a FIFO into sha256sum) and the compressed layer
# (the blob's digest) in the same pass; bench/tree.py wrap makes an OCI
# layout of it (config, manifest, index.json); skopeo copy pushes it.
#
#   bench/skopeo_route.sh DIR OUTDIR docker://HOST:PORT/REPO:TAG
#
# OUTDIR must not exist yet, or be empty; it keeps the layout. The time of
# each phase goes to OUTDIR/phases ("compress 12.34 s + wrap 0.05 s + push
# 3.21 s"): run.sh times the whole script and reports the phases as notes.
set -euo pipefail

dir=${1:?DIR} out=${2:?OUTDIR} dest=${3:?DEST}
here=$(cd "$(dirname "$0")" && pwd)
now() { date +%s%N; }

mkdir -p "$out/oci"
mkfifo "$out/tar.fifo"
t0=$(now)
sha256sum <"$out/tar.fifo" >"$out/diff_id" &
h=$!
tar -C "$dir" -cf - . | tee "$out/tar.fifo" | pigz -6 | tee "$out/oci/layer.tmp" | sha256sum >"$out/digest"
wait "$h"
t1=$(now)
python3 "$here/tree.py" wrap --layer "$out/oci/layer.tmp" --out "$out/oci" --name w5 \
  --diff-id "sha256:$(cut -c1-64 "$out/diff_id")" --digest "sha256:$(cut -c1-64 "$out/digest")"
t2=$(now)
skopeo copy -q --dest-tls-verify=false "oci:$out/oci:w5" "$dest"
t3=$(now)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" \
  'BEGIN { printf "compress %.2f s + wrap %.2f s + push %.2f s\n", (b - a) / 1e9, (c - b) / 1e9, (d - c) / 1e9 }' \
  >"$out/phases"
