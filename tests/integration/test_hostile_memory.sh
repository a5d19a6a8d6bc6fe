#!/usr/bin/env bash
# Memory per index, whatever a registry serves (tests/tools/hostile.py in
# front of a real registry):
#   - an index of 256 children, each an image manifest padded to 4,000,000
#     bytes (1 GB of manifests): copied, every child and the index arrive
#     byte for byte, and the peak RSS of ocisync (ru_maxrss, which is
#     /proc's VmHWM at exit) stays under the bound the README states for
#     manifests (64 MiB) plus the process's own (40 MiB); under ASan, whose
#     shadow memory makes RSS meaningless, 64 children and no RSS check;
#   - a 3 MB manifest whose "layers" array has a million elements: refused
#     before it is parsed (the cap of 65,536 JSON values), in little memory.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_tls.sh"
. "$(dirname "$0")/lib_hostile.sh"

registry_start src
registry_start dst
top=$(mkimage --out "$TMP/img" --platforms linux/amd64 --layers 1 --layer-size 1000 --seed mem --tag v1)
push_image "$TMP/img" "$SRC_ADDR/lib/app:v1"
mapfile -t blobs < <(manifest_blobs "$TMP/img/blobs/sha256/${top#sha256:}")
size_of() { stat -c %s "$TMP/img/blobs/sha256/${1#sha256:}"; }

asan=0
if ldd "$OCISYNC_BIN" 2>/dev/null | grep -q libasan; then
  asan=1
fi
children=256
[ "$asan" = 0 ] || children=64
child_size=4000000
bound_kib=$(((64 + 40) * 1024))

hostile_start big --upstream "$SRC_ADDR" --big-index "lib/app:big" --children "$children" \
  --child-size "$child_size" --config-digest "${blobs[0]}" --config-size "$(size_of "${blobs[0]}")" \
  --layer-digest "${blobs[1]}" --layer-size "$(size_of "${blobs[1]}")" \
  --huge-layers "lib/app:huge" --count 1000000

# --- 256 children of 4 MB ------------------------------------------------------------------------
skopeo_raw "$BIG_ADDR/lib/app:big" "$TMP/big.json"
want=$(file_digest "$TMP/big.json")
assert_eq "$(json_eval "$TMP/big.json" 'len(d["manifests"])')" "$children" "the index lists $children children"
# timed_copy NAME SRC DST: copies under GNU time; sets RC and RSS (its peak
# RSS in KiB: ru_maxrss, which is /proc's VmHWM when the process ends).
timed_copy() {
  set +e
  /usr/bin/time -f '%M' -o "$TMP/rss.$1" timeout 300 "$OCISYNC_BIN" copy --retry-times 0 "$2" "$3" \
    >"$TMP/$1.out" 2>"$TMP/$1.err"
  RC=$?
  set -e
  RSS=$(tail -n 1 "$TMP/rss.$1")
  log "copy $2: exit $RC, peak RSS $RSS KiB"
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error: ' "$TMP/$1.err"; then
    fail "sanitizer report from the copy of $2: $(grep -m1 -E 'Sanitizer|runtime error' "$TMP/$1.err")"
  fi
}
timed_copy big "docker://$BIG_ADDR/lib/app:big" "docker://$DST_ADDR/mirror/app:big"
rc=$RC rss=$RSS
[ "$rc" = 0 ] || fail "copy of the big index: exit $rc: $(tail -n 5 "$TMP/big.err")"
pass "the index of $children children of $child_size bytes was copied"
assert_eq "$(skopeo_digest "$DST_ADDR/mirror/app:big")" "$want" "the index arrived byte for byte"
n=0
for d in $(json_eval "$TMP/big.json" '[m["digest"] for m in d["manifests"]]'); do
  st=$(tag_status "$DST_ADDR" mirror/app "$d")
  [ "$st" = 200 ] || fail "child $d is missing at the destination ($st)"
  n=$((n + 1))
done
assert_eq "$n" "$children" "every child is at the destination"
last=$(json_eval "$TMP/big.json" 'd["manifests"][-1]["digest"]')
skopeo_raw "$DST_ADDR/mirror/app@$last" "$TMP/last.json"
assert_eq "$(file_digest "$TMP/last.json")" "$last" "the last child arrived byte for byte"
assert_eq "$(stat -c %s "$TMP/last.json")" "$child_size" "and is $child_size bytes"
log "peak RSS of the copy: $rss KiB for $((children * child_size / 1000000)) MB of manifests"
if [ "$asan" = 0 ]; then
  [ "$rss" -le "$bound_kib" ] || fail "peak RSS $rss KiB is over the bound of $bound_kib KiB"
  pass "peak RSS $rss KiB is within the bound ($bound_kib KiB)"
else
  log "AddressSanitizer build: the RSS bound is checked in the plain build"
fi

# --- a million-element layers array --------------------------------------------------------------
timed_copy huge "docker://$BIG_ADDR/lib/app:huge" "docker://$DST_ADDR/mirror/app:huge"
rc=$RC rss=$RSS
[ "$rc" = 1 ] || fail "copy of the huge manifest: expected exit 1, got $rc: $(tail -n 3 "$TMP/huge.err")"
assert_contains "$TMP/huge.err" "holds more than 65536 values" "a million-element array is refused by its count"
if [ "$asan" = 0 ]; then
  [ "$rss" -le $((48 * 1024)) ] || fail "peak RSS $rss KiB refusing a 3 MB manifest, over 48 MiB"
  pass "refused in $rss KiB of peak RSS"
fi

done_ok
