#!/usr/bin/env bash
# The build cache in a registry (--cache-to / --cache-from, as buildx's
# type=registry cache): a build writes its layers' cache image; a build on a
# fresh machine (empty local cache) that reads it builds nothing, mounts the
# layers from the cache repository on the same registry (no upload), relays
# them from it to another registry, and fetches them for a layout output;
# the results are whole images (skopeo copies them, checking every digest).
# A changed file rebuilds its layer only and the cache image follows. Bad
# options are refused by name; a cache image that cannot be used is a
# warning, and the build goes on without it.
. "$(dirname "$0")/lib.sh"

registry_start reg
registry_start other
REG_ADDR=$(registry_addr reg)
OTHER_ADDR=$(registry_addr other)
export SOURCE_DATE_EPOCH=1700000000

ctx="$TMP/ctx"
mkdir -p "$ctx/app" "$ctx/conf" "$ctx/www"
head -c 300000 /dev/urandom >"$ctx/app/server"
echo "a: 1" >"$ctx/conf/a.yaml"
for i in 1 2 3; do head -c 20000 /dev/urandom >"$ctx/www/page$i.html"; done
cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY app/ /app/
COPY conf/ /etc/app/
COPY www/ /srv/www/
ENTRYPOINT ["/app/server"]
EOF
cache="$REG_ADDR/cache/app:buildcache"

# Blobs a build sent in full into repository $1 since mark $2 (the upload's closing PUT).
uploads() { registry_log_count reg "^PUT /v2/$1/blobs/uploads/" "$2"; }
summary_counts() { sed -nE 's/.* ([0-9]+) new layers? \(([0-9]+) from the cache.*/\1 \2/p' "$OCISYNC_STDOUT"; }

# --- the first build writes the cache image --------------------------------------------------------
export XDG_CACHE_HOME="$TMP/machine1"
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -p linux/amd64 -p linux/arm64 \
  -t "$REG_ADDR/team/app:1" --cache-to "$cache" --digest-file "$TMP/d1"
expect_success "a build that writes the registry cache"
assert_eq "$(summary_counts)" "3 0" "three layers built, none from a cache"
skopeo inspect --raw --tls-verify=false "docker://$cache" >"$TMP/cache.json" || fail "no cache image at $cache"
assert_eq "$(json_eval "$TMP/cache.json" 'd["artifactType"]')" application/vnd.ocisync.build-cache.v1 \
  "the cache image says what it is"
assert_eq "$(json_eval "$TMP/cache.json" 'len(d["layers"])')" 3 "it holds the three layers"
skopeo copy --tls-verify=false "docker://$cache" "oci:$TMP/cache-layout:c" >/dev/null 2>&1 ||
  fail "the cache image is not whole (skopeo could not copy it)"
pass "the cache image is whole: skopeo copied it, checking its digests"
cfg=$(json_eval "$TMP/cache.json" 'd["config"]["digest"]')
curl -fsS "http://$REG_ADDR/v2/cache/app/blobs/$cfg" >"$TMP/cache-config.json" || fail "no cache config blob"
assert_eq "$(json_eval "$TMP/cache-config.json" '" ".join(sorted(set(e["digest"] for e in d["layers"])))')" \
  "$(json_eval "$TMP/cache.json" '" ".join(sorted(l["digest"] for l in d["layers"]))')" \
  "the config's entries are the manifest's layers"

# --- a fresh machine: nothing built, nothing uploaded, layers mounted from the cache -------------
export XDG_CACHE_HOME="$TMP/machine2"
mark=$(registry_log_mark reg)
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -p linux/amd64 -p linux/arm64 \
  -t "$REG_ADDR/team/app2:2" --cache-from "type=registry,ref=$cache" --digest-file "$TMP/d2"
expect_success "a build on an empty local cache that reads the registry cache"
assert_eq "$(summary_counts)" "3 3" "every layer came from the registry cache"
assert_eq "$(cat "$TMP/d2")" "$(cat "$TMP/d1")" "the same image as the build that wrote the cache"
assert_eq "$(uploads team/app2 "$mark")" 2 "only the two configs were uploaded, no layer"
assert_eq "$(registry_log_count reg '^POST /v2/team/app2/blobs/uploads/\?mount=.*&from=cache/app 201' "$mark")" 3 \
  "the layers were mounted from the cache repository"
[ ! -d "$TMP/machine2/ocisync/blobs/sha256" ] || [ -z "$(ls "$TMP/machine2/ocisync/blobs/sha256")" ] ||
  fail "the hits were downloaded into the local cache"
skopeo copy --all --tls-verify=false "docker://$REG_ADDR/team/app2:2" "oci:$TMP/app2:x" >/dev/null 2>&1 ||
  fail "the image built from the registry cache is not whole"
pass "the image built from the registry cache is whole"

# --- another registry: the layers are relayed from the cache repository ---------------------------
export XDG_CACHE_HOME="$TMP/machine3"
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -p linux/amd64 \
  -t "$OTHER_ADDR/team/app:3" --cache-from "$cache"
expect_success "a build for another registry from the registry cache"
assert_eq "$(summary_counts)" "3 3" "every layer came from the registry cache"
skopeo copy --all --tls-verify=false "docker://$OTHER_ADDR/team/app:3" "oci:$TMP/app3:x" >/dev/null 2>&1 ||
  fail "the image on the other registry is not whole"
pass "the layers were relayed to the other registry from the cache repository"

# --- a layout output: the layers are fetched from the cache repository ---------------------------
export XDG_CACHE_HOME="$TMP/machine4"
run_ocisync build -f "$ctx/Dockerfile" "$ctx" -p linux/arm64 --output "oci:$TMP/out:app" --cache-from "$cache"
expect_success "a build into a layout from the registry cache"
assert_eq "$(summary_counts)" "3 3" "every layer came from the registry cache"
skopeo copy --all "oci:$TMP/out:app" "oci:$TMP/out-copy:app" >"$TMP/sk.log" 2>&1 ||
  fail "the layout is not whole: $(tail -3 "$TMP/sk.log")"
pass "the layout holds every layer, fetched from the cache repository"

# --- one changed file: its layer alone is built; the cache image follows --------------------------
echo "a: 2" >"$ctx/conf/a.yaml"
export XDG_CACHE_HOME="$TMP/machine5"
mark=$(registry_log_mark reg)
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -p linux/amd64 -p linux/arm64 \
  -t "$REG_ADDR/team/app4:4" --cache-from "$cache" --cache-to "$cache"
expect_success "a build with one changed file, reading and writing the cache"
assert_eq "$(summary_counts)" "3 2" "exactly the changed layer was built"
assert_eq "$(uploads team/app4 "$mark")" 3 "only the changed layer (and the two configs) were uploaded"
assert_eq "$(uploads cache/app "$mark")" 1 "the cache image took its layers by mount: only its config was uploaded"
skopeo copy --tls-verify=false "docker://$cache" "oci:$TMP/cache-layout2:c" >/dev/null 2>&1 ||
  fail "the new cache image is not whole"
export XDG_CACHE_HOME="$TMP/machine6"
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -p linux/amd64 -p linux/arm64 \
  -t "$REG_ADDR/team/app:5" --cache-from "$cache"
expect_success "the next fresh machine"
assert_eq "$(summary_counts)" "3 3" "the rewritten cache has the changed layer"

# The same cache serves flag builds (build-push --platform DIR) of the same content.
export XDG_CACHE_HOME="$TMP/machine7"
run_ocisync build-push --base scratch -p "linux/amd64=$ctx/www:/srv/www" -t "$REG_ADDR/team/flags:1" \
  --cache-to "$REG_ADDR/cache/flags:c"
expect_success "a flag build that writes a cache"
export XDG_CACHE_HOME="$TMP/machine8"
run_ocisync build-push --base scratch -p "linux/amd64=$ctx/www:/srv/www" -t "$REG_ADDR/team/flags:2" \
  --cache-from "$REG_ADDR/cache/flags:c"
expect_success "a flag build that reads it"
assert_eq "$(summary_counts)" "1 1" "the flag build's layer came from the registry cache"

# --no-cache: the registry cache is not read.
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -p linux/amd64 -t "$REG_ADDR/team/app:6" \
  --cache-from "$cache" --no-cache
expect_success "--no-cache with --cache-from"
assert_eq "$(summary_counts)" "3 0" "--no-cache builds every layer"

# --- the local cache keeps within --cache-max: least recently used first ----------------------------
export XDG_CACHE_HOME="$TMP/machine9"
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -p linux/amd64 -t "$REG_ADDR/team/app:10" --cache-max 200K
expect_success "a build with a cache cap below its layers' size"
blobs="$TMP/machine9/ocisync/blobs/sha256"
total=$(find "$blobs" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
[ "$total" -le 204800 ] || fail "the cache holds $total bytes, over --cache-max 200K"
pass "the cache was trimmed to $total bytes (cap 200K)"
kept=$(ls "$blobs" | wc -l)
[ "$kept" -lt 3 ] || fail "nothing was evicted ($kept blobs)"
for e in "$TMP/machine9/ocisync/layers/"*; do
  [ -e "$e" ] || continue
  d=$(json_eval "$e" 'd["digest"]')
  [ -f "$blobs/${d#sha256:}" ] || fail "layer entry $(basename "$e") outlived its blob"
done
pass "no layer entry outlived its blob"
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -p linux/amd64 -t "$REG_ADDR/team/app:11"
expect_success "the next build after a trim"
n=$(summary_counts)
[ "${n#* }" -lt 3 ] || fail "evicted layers still came from the cache ($n)"
pass "evicted layers are built again ($n)"

# --- what is refused, and what only warns ---------------------------------------------------------
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -p linux/amd64 -t "$REG_ADDR/team/app:7" \
  --cache-from "type=local,src=$TMP/x"
expect_failure "a cache type other than registry"
assert_eq "$OCISYNC_RC" 2 "a usage error"
assert_contains "$OCISYNC_STDERR" "only type=registry" "the error names the option"
assert_eq "$(tag_status "$REG_ADDR" team/app 7)" 404 "nothing was pushed"
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -p linux/amd64 -t "$REG_ADDR/team/app:7" \
  --cache-to "oci:$TMP/layout-cache"
expect_failure "a cache that is not a registry repository"
assert_contains "$OCISYNC_STDERR" "--cache-to" "the error names the option"

# A cache image that is not one: a warning, and the build goes on.
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -p linux/amd64 -t "$REG_ADDR/team/app:8" \
  --cache-from "$REG_ADDR/team/app:1"
expect_success "a --cache-from that is an ordinary image"
assert_contains "$OCISYNC_STDERR" "not an ocisync build cache" "the warning says why"
# None there yet: quiet.
run_ocisync build-push -f "$ctx/Dockerfile" "$ctx" -p linux/amd64 -t "$REG_ADDR/team/app:9" \
  --cache-from "$REG_ADDR/cache/none:yet"
expect_success "a --cache-from with no image yet"
assert_eq "$(grep -c warning "$OCISYNC_STDERR" || true)" 0 "no warning for a cache not written yet"

done_ok
