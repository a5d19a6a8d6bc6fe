#!/usr/bin/env bash
# ocisync sync against real registries: skopeo's YAML format and ocisync's
# own, tag filters (regex, semver, latest N, exact), a catalog with prefix
# rewriting, a re-run that uploads nothing, a blob shared by several
# repositories fetched once, --shard partitions, --dry-run, --json, and a
# missing image that fails alone.
. "$(dirname "$0")/lib.sh"

registry_start src
registry_start dst

# Source: lib/alpine with version tags, lib/busybox, team/app and team/tool.
# alpine:3.20.0 and busybox:1.36.1 are the same image (every blob shared).
mk() { mkimage --out "$TMP/$1" --layers 2 --layer-size 30000 --seed "$1" --tag x >/dev/null; }
for s in a318 a319 a320 arc bb1 edge tool app; do mk "$s"; done
push_image "$TMP/a318" "$SRC_ADDR/lib/alpine:3.18.0"
push_image "$TMP/a319" "$SRC_ADDR/lib/alpine:3.19.1"
push_image "$TMP/a320" "$SRC_ADDR/lib/alpine:3.20.0"
push_image "$TMP/arc" "$SRC_ADDR/lib/alpine:3.20.1-rc1"
push_image "$TMP/edge" "$SRC_ADDR/lib/alpine:edge"
push_image "$TMP/bb1" "$SRC_ADDR/lib/busybox:1.36.0"
push_image "$TMP/a320" "$SRC_ADDR/lib/busybox:1.36.1"
push_image "$TMP/bb1" "$SRC_ADDR/lib/busybox:latest"
push_image "$TMP/app" "$SRC_ADDR/team/app:v1"
push_image "$TMP/tool" "$SRC_ADDR/team/tools/tool:v2"

# dst_tags REPO: the destination's tags of REPO, sorted, space-separated.
dst_tags() {
  curl -s "http://$DST_ADDR/v2/$1/tags/list" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(sorted(d.get("tags") or [])))'
}

# --- skopeo's format, as skopeo sync takes it --------------------------------------------------
cat >"$TMP/skopeo.yml" <<YML
$SRC_ADDR:
  images:
    lib/busybox: []
  images-by-tag-regex:
    lib/alpine: ^3\.2[0-9]\.
  images-by-semver:
    lib/alpine: ">= 3.19.0"
  tls-verify: false
YML
mark_src=$(registry_log_mark src)
run_ocisync sync --src yaml --dest docker "$TMP/skopeo.yml" "$DST_ADDR/mirror"
expect_success "sync with skopeo's YAML format"
assert_eq "$(dst_tags mirror/busybox)" "1.36.0 1.36.1 latest" "images: [] took every busybox tag"
assert_eq "$(dst_tags mirror/alpine)" "3.19.1 3.20.0 3.20.1-rc1" \
  "regex ^3\\.2[0-9]\\. and semver >= 3.19.0 (no prerelease) together"
for t in 3.19.1 3.20.0 3.20.1-rc1; do
  assert_eq "$(skopeo_digest "$DST_ADDR/mirror/alpine:$t")" "$(skopeo_digest "$SRC_ADDR/lib/alpine:$t")" \
    "mirror/alpine:$t has the source's digest"
done
assert_contains "$OCISYNC_STDOUT" "Synced 6 images" "the summary counts the images"

# alpine:3.20.0 and busybox:1.36.1 share every blob: each was downloaded once.
for d in $(manifest_blobs "$TMP/a320/blobs/sha256/$(json_eval "$TMP/a320/index.json" 'd["manifests"][0]["digest"]' | cut -d: -f2)"); do
  assert_eq "$(registry_log_count src "^GET /v2/lib/(alpine|busybox)/blobs/$d " "$mark_src")" 1 \
    "shared blob ${d:7:12} fetched once from the source"
done

# --- a re-run costs no upload ------------------------------------------------------------------
mark=$(registry_log_mark dst)
mark_src=$(registry_log_mark src)
run_ocisync sync --src yaml --dest docker "$TMP/skopeo.yml" "$DST_ADDR/mirror"
expect_success "re-run"
assert_eq "$(registry_log_count dst '^(POST|PUT|PATCH) ' "$mark")" 0 "the re-run uploaded nothing"
assert_eq "$(registry_log_count src '^GET /v2/.*/blobs/' "$mark_src")" 0 "the re-run downloaded no blob"
assert_contains "$OCISYNC_STDOUT" "6 up to date" "the summary says all 6 were up to date"

# --- ocisync's format: latest N, exact tags, prefix rewriting, catalog --------------------------
cat >"$TMP/ocisync.yml" <<YML
registries:
  $SRC_ADDR: {tls-verify: false}
mirrors:
  - from: $SRC_ADDR/lib/alpine
    to: $DST_ADDR/own/alpine
    latest: 2
    exclude-regex: '-rc'
  - from: $SRC_ADDR/lib
    to: $DST_ADDR/own/lib
    repositories: [busybox]
    tags: ["1.36.0"]
  - from: $SRC_ADDR/team
    to: $DST_ADDR/own/team
    repositories: all
YML
run_ocisync sync --src yaml "$TMP/ocisync.yml"
expect_success "sync with ocisync's format"
assert_eq "$(dst_tags own/alpine)" "3.19.1 3.20.0" "latest: 2 without prereleases"
assert_eq "$(dst_tags own/lib/busybox)" "1.36.0" "an exact tag under a rewritten prefix"
assert_eq "$(dst_tags own/team/app)" "v1" "the catalog found team/app"
assert_eq "$(dst_tags own/team/tools/tool)" "v2" "the catalog found team/tools/tool"

# --- a registry's max-concurrency caps the connections to it -------------------------------------
cat >"$TMP/limited.yml" <<YML
registries:
  $DST_ADDR: {max-concurrency: 1}
mirrors:
  - from: $SRC_ADDR/lib/alpine
    to: $DST_ADDR/limited/alpine
YML
run_ocisync sync --src yaml --debug --jobs 8 "$TMP/limited.yml"
expect_success "sync with max-concurrency: 1 on the destination"
assert_eq "$(dst_tags limited/alpine)" "3.18.0 3.19.1 3.20.0 3.20.1-rc1 edge" "every tag arrived"
peak=$(python3 - "$OCISYNC_STDERR" "$DST_ADDR" <<'PY'
import re, sys
addr, open_now, peak = sys.argv[2], set(), 0
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"conn (0x[0-9a-f]+) connected to (\S+)", line)
    if m and m.group(2) == addr:
        open_now.add(m.group(1))
        peak = max(peak, len(open_now))
    m = re.search(r"conn (0x[0-9a-f]+) to \S+ closed", line)
    if m:
        open_now.discard(m.group(1))
print(peak)
PY
)
assert_eq "$peak" 1 "never more than one connection to the limited registry at once"

# --- --shard partitions the repositories; --dry-run and --json ----------------------------------
run_ocisync sync --src yaml --dry-run --json "$TMP/ocisync.yml"
expect_success "dry run"
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$OCISYNC_STDOUT" ||
  fail "--json printed a line that is not JSON"
grep '"event":"plan"' "$OCISYNC_STDOUT" | sort >"$TMP/plan.all"
assert_eq "$(wc -l <"$TMP/plan.all" | tr -d ' ')" 5 "the dry run plans 5 images"
: >"$TMP/plan.shards"
for i in 0 1 2; do
  run_ocisync sync --src yaml --dry-run --json --shard "$i/3" "$TMP/ocisync.yml"
  expect_success "dry run of shard $i/3"
  grep '"event":"plan"' "$OCISYNC_STDOUT" >>"$TMP/plan.shards" || true
done
sort "$TMP/plan.shards" >"$TMP/plan.shards.sorted"
assert_eq "$(cat "$TMP/plan.shards.sorted")" "$(cat "$TMP/plan.all")" "three shards add up to the whole plan, once each"

# --- listings follow Link pagination (one name a page) ----------------------------------------------
# distribution 2.8 pages its catalog (its tag lists come whole, whatever n says; the
# unit test test_proto_http.tag_list_pages covers tag pages and a Link to another host).
mark=$(registry_log_mark src)
OCISYNC_LIST_PAGE_SIZE=1 run_ocisync sync --src yaml --dry-run --json "$TMP/ocisync.yml"
expect_success "dry run with one name a page"
grep '"event":"plan"' "$OCISYNC_STDOUT" | sort >"$TMP/plan.paged"
grep '"event":"plan"' "$TMP/plan.all" | sort >"$TMP/plan.whole"
assert_eq "$(cat "$TMP/plan.paged")" "$(cat "$TMP/plan.whole")" "the same plan, page by page"
[ "$(registry_log_count src '^GET /v2/_catalog\?.*last=' "$mark")" -ge 2 ] ||
  fail "the catalog was not fetched page by page (Link)"
pass "the catalog was listed page by page, following Link"

# --- one missing image fails alone -------------------------------------------------------------
cat >"$TMP/missing.yml" <<YML
$SRC_ADDR:
  images:
    lib/busybox: ["1.36.0", "nope"]
    lib/nothing: []
  tls-verify: false
YML
run_ocisync sync --src yaml --dest docker "$TMP/missing.yml" "$DST_ADDR/m2"
expect_failure 1 "a missing tag and a missing repository"
assert_eq "$(dst_tags m2/busybox)" "1.36.0" "the image that exists was still copied"
assert_contains "$OCISYNC_STDERR" "nope" "the summary names the missing tag"
assert_contains "$OCISYNC_STDERR" "lib/nothing" "the summary names the repository it could not list"

# --- --src docker: one repository, skopeo's naming (and --scoped) -------------------------------
run_ocisync sync --src docker --dest docker "$SRC_ADDR/team/app" "$DST_ADDR/d1"
expect_success "sync of one repository"
assert_eq "$(dst_tags d1/app)" "v1" "DEST/NAME:TAG"
# --scoped keeps the source's registry and path (planned only: one image needs no listing).
run_ocisync sync --src docker --dest docker --scoped --dry-run "docker.io/library/busybox:1.36" "$DST_ADDR/d2"
expect_success "dry run of one image, scoped"
assert_contains "$OCISYNC_STDOUT" "Would copy docker.io/library/busybox:1.36 -> $DST_ADDR/d2/docker.io/library/busybox:1.36" \
  "--scoped: DEST/REGISTRY/PATH:TAG"

# --- layouts on either side --------------------------------------------------------------------
run_ocisync sync --src docker --dest oci "$SRC_ADDR/lib/alpine" "$TMP/out"
expect_success "sync of a repository into a directory of layouts"
assert_eq "$(json_eval "$TMP/out/alpine/index.json" 'sorted(m["annotations"]["org.opencontainers.image.ref.name"] for m in d["manifests"])' | tr '\n' ' ')" \
  "3.18.0 3.19.1 3.20.0 3.20.1-rc1 edge " "the layout out/alpine names every tag"
assert_eq "$(skopeo inspect --raw "oci:$TMP/out/alpine:3.20.0" | sha256sum | cut -d' ' -f1)" \
  "$(skopeo_digest "$SRC_ADDR/lib/alpine:3.20.0" | cut -d: -f2)" "skopeo reads out/alpine:3.20.0 with the source's digest"
run_ocisync sync --src oci --dest docker "$TMP/out/alpine" "$DST_ADDR/fromlayout"
expect_success "sync of a layout into a registry"
assert_eq "$(dst_tags fromlayout/alpine)" "3.18.0 3.19.1 3.20.0 3.20.1-rc1 edge" "every image of the layout arrived"
assert_eq "$(skopeo_digest "$DST_ADDR/fromlayout/alpine:edge")" "$(skopeo_digest "$SRC_ADDR/lib/alpine:edge")" \
  "digest kept through the layout"
run_ocisync sync --src yaml --dest oci --scoped "$TMP/skopeo.yml" "$TMP/scoped"
expect_success "skopeo's YAML into layouts, scoped"
[ -f "$TMP/scoped/$SRC_ADDR/lib/busybox/index.json" ] || fail "no layout at scoped/$SRC_ADDR/lib/busybox"
pass "--scoped --dest oci makes nested layout directories"

# --- bad input ---------------------------------------------------------------------------------
printf 'mirrors:\n  - from: %s/lib/alpine\n    to: %s/x\n    semver: ">= 3.x.y"\n' "$SRC_ADDR" "$DST_ADDR" >"$TMP/bad.yml"
run_ocisync sync --src yaml "$TMP/bad.yml"
expect_failure 2 "an invalid semver range"
assert_contains "$OCISYNC_STDERR" "3.x.y" "the error names the range"
printf '%s:\n  imagez:\n    a: []\n' "$SRC_ADDR" >"$TMP/bad2.yml"
run_ocisync sync --src yaml --dest docker "$TMP/bad2.yml" "$DST_ADDR/x"
expect_failure 2 "an unknown key"
assert_contains "$OCISYNC_STDERR" "imagez" "the error names the key"

done_ok
