#!/usr/bin/env bash
# A hostile source registry fishing for credentials, and one serving
# manifests that are not what was asked for (tests/tools/hostile.py in front
# of a real registry; the destination is a real registry):
#   1. a Basic-auth registry redirects blob GETs (307) to another host that
#      asks for Basic credentials; then to one that asks for a Bearer token
#      (its own realm); then to localhost on its own port while it was named
#      127.0.0.1: none of them ever gets an Authorization header or a token
#      request, the copy fails naming the rule, the destination has no tag;
#   2. a destination that redirects a manifest PUT elsewhere: refused, the
#      other host gets nothing;
#   3. a tag HEAD says X, the GET of X returns Y's bytes; a tag GET whose
#      Docker-Content-Digest disagrees with its bytes: both fail, no tag.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_tls.sh"
. "$(dirname "$0")/lib_hostile.sh"

PASS="hostile-pw-$RANDOM$RANDOM"
registry_start src
registry_start dst
want=$(mkimage --out "$TMP/img" --platforms linux/amd64 --layers 2 --layer-size 30000 --seed auth --tag v1)
push_image "$TMP/img" "$SRC_ADDR/lib/app:v1"
other=$(mkimage --out "$TMP/img2" --platforms linux/amd64 --layers 1 --layer-size 20000 --seed other --tag v2)
push_image "$TMP/img2" "$SRC_ADDR/lib/app:v2"


# --- 1. blob GETs redirected to someone who asks for credentials --------------------------------
# fishing N CATCHER: copies through a front that redirects blob GETs to CATCHER's URL.
fishing() {
  local n=$1 catcher=$2 front="front$1" cv fv
  cv="$(echo "$catcher" | tr '[:lower:]' '[:upper:]')_URL"
  hostile_start "$front" --upstream "$SRC_ADDR" --basic "alice:$PASS" --redirect-blobs "${!cv}"
  fv="$(echo "$front" | tr '[:lower:]' '[:upper:]')_ADDR"
  run_ocisync copy --retry-times 0 --src-creds "alice:$PASS" "docker://${!fv}/lib/app:v1" \
    "docker://$DST_ADDR/fish$n/app:v1"
  expect_failure "run $n: a copy whose blobs are redirected to a host asking for credentials"
  assert_contains "$OCISYNC_STDERR" "credentials are never sent to a redirect target" \
    "run $n: the message names the rule"
  assert_ne "$(hostile_log_count "$front" 'authorization=yes auth=Basic .*action=redirect status=307')" 0 \
    "run $n: the registry itself got the credentials"
  assert_ne "$(hostile_log_count "$catcher" 'action=caught')" 0 "run $n: the redirects reached $catcher"
  assert_eq "$(hostile_log_count "$catcher" 'authorization=yes')" 0 \
    "run $n: no request to $catcher carried an Authorization header"
  assert_eq "$(hostile_log_count "$catcher" 'path=/token')" 0 "run $n: no token was asked of $catcher's realm"
  assert_eq "$(tag_status "$DST_ADDR" "fish$n/app" v1)" 404 "run $n: the destination has no tag"
}
hostile_catcher_start basicc basic 127.0.0.2
fishing 1 basicc
hostile_catcher_start bearerc bearer 127.0.0.2
fishing 2 bearerc

# The same server, named another way: 127.0.0.1:PORT redirects to localhost:PORT.
hostile_start selfie --upstream "$SRC_ADDR" --basic "alice:$PASS" --redirect-blobs SELF \
  --host-is-other localhost
run_ocisync copy --retry-times 0 --src-creds "alice:$PASS" "docker://$SELFIE_ADDR/lib/app:v1" \
  "docker://$DST_ADDR/fish3/app:v1"
expect_failure "a copy whose blobs are redirected to localhost on the same port"
assert_contains "$OCISYNC_STDERR" "credentials are never sent to a redirect target" "the message names the rule"
assert_ne "$(hostile_log_count selfie 'host=localhost:.*action=caught')" 0 "the redirects reached localhost:$SELFIE_PORT"
assert_eq "$(hostile_log_count selfie 'host=localhost:.*authorization=yes')" 0 \
  "no request to localhost:$SELFIE_PORT carried an Authorization header"
assert_eq "$(tag_status "$DST_ADDR" fish3/app v1)" 404 "the destination has no tag"
assert_no_secret "$PASS" "no ocisync run printed the password" "$TMP"/ocisync.*.stdout "$TMP"/ocisync.*.stderr

# --- 2. a manifest PUT redirected elsewhere ----------------------------------------------------
hostile_catcher_start putc basic 127.0.0.2
hostile_start dfront --upstream "$DST_ADDR" --basic "bob:$PASS" --redirect-manifest-put "$PUTC_URL"
run_ocisync copy --retry-times 0 --dest-creds "bob:$PASS" "docker://$SRC_ADDR/lib/app:v1" \
  "docker://$DFRONT_ADDR/put/app:v1"
expect_failure "a push whose manifest PUT is redirected"
assert_contains "$OCISYNC_STDERR" "a manifest is only pushed to the registry itself" "the message says why"
assert_eq "$(hostile_log_count putc .)" 0 "the other host got no request at all"
assert_eq "$(tag_status "$DST_ADDR" put/app v1)" 404 "the destination has no tag"

# --- 3. manifests that are not what was asked for ---------------------------------------------
# The tag HEAD says $want; GET $want returns v2's bytes.
hostile_start swap1 --upstream "$SRC_ADDR" --swap-manifest "$want=v2"
run_ocisync copy --retry-times 0 "docker://$SWAP1_ADDR/lib/app:v1" "docker://$DST_ADDR/swap1/app:v1"
expect_failure "a manifest fetched by the digest its tag's HEAD gave, with other bytes"
assert_contains "$OCISYNC_STDERR" "refused" "the copy says it refused the manifest"
assert_contains "$OCISYNC_STDERR" "$other" "and names the digest the bytes have"
assert_ne "$(hostile_log_count swap1 "action=swap from=$want")" 0 "the swapped GET was made"
assert_eq "$(tag_status "$DST_ADDR" swap1/app v1)" 404 "the destination has no tag"

# No digest from the HEAD: the GET by tag carries v1's digest but v2's bytes.
hostile_start swap2 --upstream "$SRC_ADDR" --no-head-digest --swap-manifest "v1=v2" --swap-header from
run_ocisync copy --retry-times 0 "docker://$SWAP2_ADDR/lib/app:v1" "docker://$DST_ADDR/swap2/app:v1"
expect_failure "a tag GET whose Docker-Content-Digest disagrees with its bytes"
assert_contains "$OCISYNC_STDERR" "Docker-Content-Digest says $want" "the message names both digests"
assert_eq "$(tag_status "$DST_ADDR" swap2/app v1)" 404 "the destination has no tag"

# The honest server copies fine (the tests above fail for the right reason).
hostile_start honest --upstream "$SRC_ADDR" --no-head-digest
run_ocisync copy --retry-times 0 "docker://$HONEST_ADDR/lib/app:v1" "docker://$DST_ADDR/honest/app:v1"
expect_success "the same copy through an honest front"
assert_eq "$(skopeo_digest "$DST_ADDR/honest/app:v1")" "$want" "the digest is preserved"

done_ok
