#!/usr/bin/env bash
# Failures end with a non-zero exit (not a crash) and a message on stderr
# that names what the user gave: an unknown tag, repository or digest; a
# registry nobody listens on (source or destination); malformed
# references, which are refused before any request; bad usage. Nothing is
# written to the destination and --digestfile is not written.
. "$(dirname "$0")/lib.sh"

registry_start src
registry_start dst

mkimage --out "$TMP/img" --platforms linux/amd64 --layers 1 --layer-size 2000 --seed errors >/dev/null
push_image "$TMP/img" "$SRC_ADDR/lib/err:v1"
good="docker://$SRC_ADDR/lib/err:v1"
zeros=sha256:0000000000000000000000000000000000000000000000000000000000000000

# dst_untouched: the destination registry saw no write at all.
dst_untouched() {
  assert_eq "$(registry_log_count dst '^(POST|PUT|PATCH|DELETE) ')" 0 "$1: nothing was written to the destination"
}
no_digestfile() {
  if [ -s "$TMP/digest" ]; then
    fail "$1: --digestfile was written on failure: $(cat "$TMP/digest")"
  fi
  pass "$1: no --digestfile written"
  rm -f "$TMP/digest"
}

# --- things that do not exist -------------------------------------------
run_ocisync copy --digestfile "$TMP/digest" "docker://$SRC_ADDR/lib/err:nope" "docker://$DST_ADDR/lib/err:v1"
expect_failure "unknown source tag"
assert_contains "$OCISYNC_STDERR" "lib/err" "unknown tag: stderr names the repository"
assert_contains "$OCISYNC_STDERR" "nope" "unknown tag: stderr names the tag"
no_digestfile "unknown tag"
dst_untouched "unknown tag"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "http://$DST_ADDR/v2/lib/err/tags/list")" 404 \
  "unknown tag: destination repository was not created"

run_ocisync copy "docker://$SRC_ADDR/lib/none:v1" "docker://$DST_ADDR/lib/none:v1"
expect_failure "unknown source repository"
assert_contains "$OCISYNC_STDERR" "lib/none" "unknown repository: stderr names it"

run_ocisync copy "docker://$SRC_ADDR/lib/err@$zeros" "docker://$DST_ADDR/lib/err:v1"
expect_failure "unknown source digest"
assert_contains "$OCISYNC_STDERR" "lib/err" "unknown digest: stderr names the repository"
dst_untouched "unknown repository and digest"

# --- nobody listening ---------------------------------------------------
closed=$(free_port)
start=$(date +%s)
OCISYNC_TIMEOUT=60 run_ocisync copy --digestfile "$TMP/digest" \
  "docker://127.0.0.1:$closed/lib/err:v1" "docker://$DST_ADDR/lib/err:v1"
expect_failure "unreachable source registry (closed port $closed)"
assert_contains "$OCISYNC_STDERR" "127.0.0.1:$closed" "unreachable source: stderr names the registry"
no_digestfile "unreachable source"
dst_untouched "unreachable source"

closed=$(free_port)
OCISYNC_TIMEOUT=60 run_ocisync copy --digestfile "$TMP/digest" "$good" "docker://127.0.0.1:$closed/lib/err:v1"
expect_failure "unreachable destination registry (closed port $closed)"
assert_contains "$OCISYNC_STDERR" "127.0.0.1:$closed" "unreachable destination: stderr names the registry"
no_digestfile "unreachable destination"
log "unreachable registries took $(($(date +%s) - start)) s in all"

# --- malformed references: refused before any request -------------------
long_tag=$(printf 'a%.0s' $(seq 1 129))
malformed=(
  "docker://$SRC_ADDR/Lib/Err:v1"             # upper case repository
  "docker://$SRC_ADDR/lib/err:"               # empty tag
  "docker://$SRC_ADDR/lib/err:bad tag"        # space in tag
  "docker://$SRC_ADDR/lib/err:$long_tag"      # tag over 128 characters
  "docker://$SRC_ADDR/lib//err:v1"            # empty path component
  "docker://$SRC_ADDR/lib/err@sha256:abc"     # truncated digest
  "docker://$SRC_ADDR/lib/err@sha256:ZZ${zeros:9}" # digest not hex
  "docker://"                                 # nothing
  "nosuch://$SRC_ADDR/lib/err:v1"             # unknown transport
)
src_mark=$(registry_log_mark src)
for ref in "${malformed[@]}"; do
  run_ocisync copy "$ref" "docker://$DST_ADDR/lib/err:v1"
  expect_failure "malformed source reference '${ref:0:60}'"
done
run_ocisync copy "$good" "docker://$DST_ADDR/Lib/Err:v1"
expect_failure "malformed destination reference (upper case)"
run_ocisync copy "$good" "docker://$DST_ADDR/lib/err:bad tag"
expect_failure "malformed destination reference (space in tag)"
assert_eq "$(registry_log_count src '.' "$src_mark")" 0 "malformed references: no request reached the source"
dst_untouched "malformed references"

# --- bad usage ---------------------------------------------------------------
run_ocisync copy
expect_failure "copy without references"
run_ocisync copy "$good"
expect_failure "copy with one reference"
run_ocisync copy --no-such-option "$good" "docker://$DST_ADDR/lib/err:v1"
expect_failure "unknown option"
dst_untouched "bad usage"

# After all that, a good copy still works (nothing above broke the registries).
run_ocisync copy "$good" "docker://$DST_ADDR/lib/err:v1"
expect_success "a valid copy afterwards"

done_ok
