#!/usr/bin/env bash
# --referrers: signatures, SBOMs and attestations attached to an image (OCI
# artifact manifests whose subject is the image, listed under the fallback
# tag sha256-<hex> as cosign and oras do on registries without the referrers
# API, which distribution 2.8 lacks) are copied along by copy and sync, and
# so are referrers of referrers; without the flag nothing of them is copied.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fault.sh"

registry_start src
registry_start dst

want=$(mkimage --out "$TMP/img" --platforms linux/amd64,linux/arm64/v8 --layers 1 --layer-size 20000 \
  --seed referrers --tag v1)
push_image "$TMP/img" "$SRC_ADDR/lib/app:v1"
size=$(stat -c %s "$TMP/img/blobs/sha256/${want#sha256:}")
attach() { python3 "$OCISYNC_SOURCE_DIR/tests/tools/attach.py" "$@" || fail "attach.py $* failed"; }
sig=$(attach "$SRC_ADDR" lib/app "$want" application/vnd.oci.image.index.v1+json "$size" \
  application/vnd.dev.cosign.simplesigning.v1+json "signature of v1")
sbom=$(attach "$SRC_ADDR" lib/app "$want" application/vnd.oci.image.index.v1+json "$size" \
  application/spdx+json '{"spdxVersion":"SPDX-2.3"}')
sig_size=$(curl -s "http://$SRC_ADDR/v2/lib/app/manifests/$sig" -H 'Accept: application/vnd.oci.image.manifest.v1+json' | wc -c)
sigsig=$(attach "$SRC_ADDR" lib/app "$sig" application/vnd.oci.image.manifest.v1+json "$sig_size" \
  application/vnd.dev.cosign.simplesigning.v1+json "signature of the signature")

# manifest_status ADDR REPO REF: the HTTP status of GET on the manifest.
manifest_status() {
  curl -s -o /dev/null -w '%{http_code}' "http://$1/v2/$2/manifests/$3" \
    -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json'
}
fallback=${want/:/-}
sig_fallback=${sig/:/-}

# --- without --referrers: nothing of them ------------------------------------------------------
run_ocisync copy "docker://$SRC_ADDR/lib/app:v1" "docker://$DST_ADDR/plain/app:v1"
expect_success "copy without --referrers"
assert_eq "$(manifest_status "$DST_ADDR" plain/app "$fallback")" 404 "no fallback tag without --referrers"
assert_eq "$(manifest_status "$DST_ADDR" plain/app "$sig")" 404 "no signature without --referrers"

# --- copy --referrers --------------------------------------------------------------------------
run_ocisync copy --referrers "docker://$SRC_ADDR/lib/app:v1" "docker://$DST_ADDR/team/app:v1"
expect_success "copy with --referrers"
assert_eq "$(skopeo_digest "$DST_ADDR/team/app:$fallback")" "$(skopeo_digest "$SRC_ADDR/lib/app:$fallback")" \
  "the fallback tag's index arrived unchanged"
for m in "$sig" "$sbom" "$sigsig"; do
  assert_eq "$(manifest_status "$DST_ADDR" team/app "$m")" 200 "referrer ${m:7:12} is at the destination"
  skopeo_raw "$DST_ADDR/team/app@$m" "$TMP/ref.json"
  assert_blobs_present "$DST_ADDR" team/app "$TMP/ref.json" "referrer ${m:7:12}"
done
assert_eq "$(skopeo_digest "$DST_ADDR/team/app:$sig_fallback")" "$(skopeo_digest "$SRC_ADDR/lib/app:$sig_fallback")" \
  "the signature's own referrers (a referrer of a referrer) arrived too"

mark=$(registry_log_mark dst)
run_ocisync copy --referrers "docker://$SRC_ADDR/lib/app:v1" "docker://$DST_ADDR/team/app:v1"
expect_success "the same copy again"
assert_eq "$(registry_log_count dst '^(POST|PATCH|PUT) ' "$mark")" 0 "a re-run uploads nothing"

# --- sync --referrers --------------------------------------------------------------------------
cat >"$TMP/sync.yml" <<YML
$SRC_ADDR:
  images:
    lib/app: [v1]
YML
run_ocisync sync --referrers --src yaml --dest docker "$TMP/sync.yml" "$DST_ADDR/mirror"
expect_success "sync with --referrers"
assert_eq "$(manifest_status "$DST_ADDR" mirror/app "$fallback")" 200 "sync copied the fallback tag"
assert_eq "$(manifest_status "$DST_ADDR" mirror/app "$sigsig")" 200 "sync copied the referrer of the referrer"

# --- a source with the OCI 1.1 referrers API ----------------------------------------------------
# tests/tools/fault_proxy.py answers GET /v2/<repo>/referrers/<digest> from the real
# registry's fallback tag, as a registry with the API would; the destination (distribution
# 2.8) has no API, so ocisync copies each referrer by digest and writes the fallback tag
# there itself, merged with what it already holds.
fault_proxy_start api "$SRC_ADDR" 'GET /v2/.*/referrers/.* referrers-api always'
mark=$(registry_log_mark dst)
run_ocisync copy --referrers "docker://$API_ADDR/lib/app:v1" "docker://$DST_ADDR/viaapi/app:v1"
expect_success "copy with --referrers from a source with the referrers API"
assert_contains "$TMP/api.log" "referrers-api" "the referrers API was asked"
assert_eq "$(registry_log_count dst '^PUT /v2/viaapi/app/manifests/sha256-' "$mark")" 2 \
  "the destination without the API got the fallback tags written (image and signature)"
skopeo_raw "$DST_ADDR/viaapi/app:$fallback" "$TMP/api-index.json"
assert_eq "$(json_eval "$TMP/api-index.json" 'sorted(m["digest"] for m in d["manifests"])' | tr '\n' ' ')" \
  "$(printf '%s\n' "$sig" "$sbom" | sort | tr '\n' ' ')" "the written fallback index lists both referrers"
for m in "$sig" "$sbom" "$sigsig"; do
  assert_eq "$(manifest_status "$DST_ADDR" viaapi/app "$m")" 200 "referrer ${m:7:12} arrived by digest"
done

done_ok
