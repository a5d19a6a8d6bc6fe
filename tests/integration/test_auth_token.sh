#!/usr/bin/env bash
# Token authentication (distribution's `auth: token`) against real TLS
# registries and tests/tools/token_server.py, whose JWTs the registries
# verify (x5c chain to the test CA):
#   - a copy between two registries with --src-creds/--dest-creds asks for
#     repository:SRC:pull at the source's service and repository:DST:pull,push
#     at the destination's (never push at the source), with Basic credentials;
#   - a wrong password fails (401/unauthorized) and pushes nothing;
#   - --src-registry-token is used as it is (no token request for it);
#   - tokens that expire mid-copy (the registry refuses them 2 s after they
#     were issued; a proxy slows the source so the copy lasts longer) are
#     fetched again and the copy completes;
#   - an https registry whose realm is http:// gets no Basic credentials
#     at that realm (ocisync may then fail or go on anonymously);
#   - a copy within one registry mounts every blob with one token whose
#     access holds pull on the source repository and pull,push on the
#     destination one;
#   - build-push streams its new layer through token auth (one PATCH);
#   - no password and no token handed out appears in ocisync's output,
#     --debug included.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_tls.sh"

PASS="ocisync-pw-$RANDOM$RANDOM-t0ken"
WRONG="ocisync-wrong-$RANDOM$RANDOM"
printf 'alice:%s\nshorty:%s\nfixture:%s\n' "$PASS" "$PASS" "$PASS" >"$TMP/users"

pki_init
# shorty's tokens expire after 2 s; the others' after 240 s.
token_server_start tok --users "$TMP/users" --tls "$PKI_SERVER_CERT" "$PKI_SERVER_KEY" --short-lived shorty 2
certs_d_for tok # the realm's certificate is trusted through certs.d
registry_start_tls src "$PKI_SERVER_CERT" "$PKI_SERVER_KEY" --token "$TOK_REALM" src-registry "$TOKEN_ISSUER" "$PKI_CA_CERT"
registry_start_tls dst "$PKI_SERVER_CERT" "$PKI_SERVER_KEY" --token "$TOK_REALM" dst-registry "$TOKEN_ISSUER" "$PKI_CA_CERT"

want=$(mkimage --out "$TMP/img" --platforms linux/amd64 --layers 2 --layer-size 20000 --seed token --tag v1)
push_image_tls "$TMP/img" "$SRC_ADDR/lib/app:v1" --dest-cert-dir "$PKI_CERTDIR_CA" --dest-creds "fixture:$PASS"
assert_eq "$(skopeo_tls_digest "$SRC_ADDR/lib/app:v1" --cert-dir "$PKI_CERTDIR_CA" --creds "fixture:$PASS")" "$want" \
  "skopeo pushed and read back through the token server (the registry accepts its JWTs)"
src_ref="docker://$SRC_ADDR/lib/app:v1"
tls=(--src-cert-dir "$PKI_CERTDIR_CA" --dest-cert-dir "$PKI_CERTDIR_CA")
creds=(--src-creds "alice:$PASS" --dest-creds "alice:$PASS")

dst_digest() { skopeo_tls_digest "$DST_ADDR/$1" --cert-dir "$PKI_CERTDIR_CA" --creds "fixture:$PASS"; }
# tok_count ERE SINCE: token requests logged since the mark that match ERE.
tok_count() { helper_log_count tok "$1" "$2"; }
PULLPUSH='(pull,push|push,pull)'

# --- pull and push scopes -------------------------------------------------------
t0=$(helper_log_mark tok)
run_ocisync copy "${tls[@]}" "${creds[@]}" "$src_ref" "docker://$DST_ADDR/team/app:v1"
expect_success "copy between two token-auth registries with --src-creds/--dest-creds"
assert_eq "$(dst_digest team/app:v1)" "$want" "destination digest equals source"
helper_log_lines tok . "$t0" | sed 's/^/    token request: /' | cut -c1-260
assert_ne "$(tok_count "auth=Basic user=alice .*scope=repository:lib/app:pull( |$).*service=src-registry .*status=200" "$t0")" 0 \
  "a token for repository:lib/app:pull at src-registry, with Basic credentials"
assert_ne "$(tok_count "auth=Basic user=alice .*scope=repository:team/app:$PULLPUSH( |$).*service=dst-registry .*status=200" "$t0")" 0 \
  "a token for repository:team/app:pull,push at dst-registry, with Basic credentials"
assert_eq "$(tok_count "scope=repository:lib/app:[a-z,*]*(push|delete|\\*).*service=src-registry" "$t0")" 0 \
  "no push (or more) asked for on the source"
assert_eq "$(tok_count "status=(401|400)" "$t0")" 0 "no token request was refused"

# --- a wrong password ------------------------------------------------------------
t0=$(helper_log_mark tok)
mark=$(registry_log_mark dst)
run_ocisync copy "${tls[@]}" --src-creds "alice:$PASS" --dest-creds "alice:$WRONG" "$src_ref" \
  "docker://$DST_ADDR/team/app:wrong"
expect_failure "a wrong destination password"
assert_stderr_matches '401|unauthori[sz]ed|authentication' "wrong password: the reason is given"
assert_contains "$OCISYNC_STDERR" "$DST_ADDR" "wrong password: stderr names the registry"
assert_ne "$(tok_count "user=alice .*service=dst-registry .*status=401" "$t0")" 0 "the token server refused the password"
assert_eq "$(registry_log_count dst '^(POST|PUT|PATCH|DELETE) .* 20[0-9]$' "$mark")" 0 "wrong password: nothing was written"
assert_no_secret "$WRONG" "wrong password: it is not echoed" "$OCISYNC_STDOUT" "$OCISYNC_STDERR"

# --- a registry token used as it is ------------------------------------------------
curl -sS --fail -K "$TMP/src.curlrc" -u "alice:$PASS" -o "$TMP/pull-token.json" \
  "$TOK_REALM?service=src-registry&scope=repository:lib/app:pull" || fail "could not get a token with curl"
pull_token=$(json_eval "$TMP/pull-token.json" 'd["token"]')
t0=$(helper_log_mark tok)
run_ocisync copy "${tls[@]}" --src-registry-token "$pull_token" --dest-creds "alice:$PASS" "$src_ref" \
  "docker://$DST_ADDR/team/app:regtoken"
expect_success "copy with --src-registry-token"
assert_eq "$(dst_digest team/app:regtoken)" "$want" "--src-registry-token: destination digest equals source"
assert_eq "$(tok_count "service=src-registry" "$t0")" 0 "--src-registry-token: no token request for the source"
assert_no_secret "$pull_token" "--src-registry-token: the token is not printed" "$OCISYNC_STDOUT" "$OCISYNC_STDERR"

# --- tokens expiring mid-copy --------------------------------------------------
# 30 layers through a proxy that spaces the source's requests 0.15 s apart:
# 31 blob GETs take over 4.5 s (with any parallelism), while shorty's tokens
# last 2 to 3 s.
mkimage --out "$TMP/many" --platforms linux/amd64 --layers 30 --layer-size 1000 --seed many --tag v1 >"$TMP/many.digest"
many=$(cat "$TMP/many.digest")
push_image_tls "$TMP/many" "$SRC_ADDR/lib/many:v1" --dest-cert-dir "$PKI_CERTDIR_CA" --dest-creds "fixture:$PASS"
redirect_proxy_start slow "$(registry_url src)" - --no-redirect --delay 0.15 --serial --tls "$PKI_SERVER_CERT" "$PKI_SERVER_KEY"
t0=$(helper_log_mark tok)
smark=$(registry_log_mark src)
start=$(date +%s%N)
run_ocisync copy --jobs 1 --src-cert-dir "$PKI_CERTDIR_CA" --dest-cert-dir "$PKI_CERTDIR_CA" \
  --src-creds "shorty:$PASS" --dest-creds "shorty:$PASS" \
  "docker://$SLOW_ADDR/lib/many:v1" "docker://$DST_ADDR/team/many:v1"
ms=$((($(date +%s%N) - start) / 1000000))
expect_success "copy of 30 layers with tokens that expire after 2 s"
[ "$ms" -gt 4000 ] || fail "the copy took only $ms ms: too short to outlive a token (harness problem)"
pass "the copy took $ms ms, longer than a token lives"
assert_eq "$(dst_digest team/many:v1)" "$many" "expiring tokens: destination digest equals source"
n_src=$(tok_count "user=shorty .*service=src-registry .*status=200" "$t0")
n_dst=$(tok_count "user=shorty .*service=dst-registry .*status=200" "$t0")
log "tokens fetched during the copy: $n_src for the source, $n_dst for the destination; the source registry refused $(registry_log_count src ' 401$' "$smark") requests"
[ "$n_src" -ge 2 ] || fail "only $n_src token fetched for the source while the copy outlived it"
pass "the source's token was fetched again after it expired ($n_src fetches)"

# --- an http:// realm from an https registry ----------------------------------------
token_server_start plaintok --users "$TMP/users"
registry_start_tls plainrealm "$PKI_SERVER_CERT" "$PKI_SERVER_KEY" \
  --token "$PLAINTOK_REALM" plain-registry "$TOKEN_ISSUER" "$PKI_CA_CERT"
t0=$(helper_log_mark plaintok)
run_ocisync copy "${tls[@]}" --src-creds "alice:$PASS" --dest-creds "alice:$PASS" "$src_ref" \
  "docker://$PLAINREALM_ADDR/team/app:v1"
log "copy to a registry with an http:// realm exited $OCISYNC_RC; $(helper_log_count plaintok . "$t0") requests reached the http realm"
helper_log_lines plaintok . "$t0" | sed 's/^/    http realm request: /' | cut -c1-200
assert_eq "$(helper_log_count plaintok 'authorization=yes' "$t0")" 0 \
  "no Authorization header (no Basic credentials) was sent to the http:// realm"
if [ "$OCISYNC_RC" != 0 ]; then
  expect_failure "the copy to a registry with an http:// realm failed cleanly"
fi

# --- mounts within one registry -----------------------------------------------------
t0=$(helper_log_mark tok)
mark=$(registry_log_mark src)
run_ocisync copy "${tls[@]}" "${creds[@]}" "$src_ref" "docker://$SRC_ADDR/other/app:v1"
expect_success "copy to another repository of the same token-auth registry"
assert_eq "$(skopeo_tls_digest "$SRC_ADDR/other/app:v1" --cert-dir "$PKI_CERTDIR_CA" --creds "fixture:$PASS")" \
  "$want" "same-registry copy: destination digest equals source"
registry_log_sync src
registry_requests src "$mark" >"$TMP/mount-requests"
skopeo_raw_blobs=$(manifest_blobs "$TMP/img/blobs/sha256/${want#sha256:}" | wc -l | tr -d ' ')
assert_eq "$(grep -cE '^POST /v2/other/app/blobs/uploads/\?.*mount=sha256:[0-9a-f]{64}.* 201$' "$TMP/mount-requests" || true)" \
  "$skopeo_raw_blobs" "every blob ($skopeo_raw_blobs) was mounted (201)"
assert_eq "$(grep -cE '^(PATCH|PUT) /v2/other/app/blobs/uploads/' "$TMP/mount-requests" || true)" 0 "no blob was uploaded"
assert_ne "$(helper_log_lines tok "granted=[^ ]*repository:other/app:$PULLPUSH" "$t0" |
  { grep -cE 'granted=[^ ]*repository:lib/app:pull' || true; })" 0 \
  "one token's access held other/app:pull,push and lib/app:pull"

# --- build-push streams its layer through token auth ---------------------------------------
# The upload is opened (POST: a 401, then a token for pull,push) and fed while the layer
# builds, for a user with long-lived tokens and one with 2 s tokens.
head -c 16000000 /dev/urandom >"$TMP/ctx-big.bin"
mkdir -p "$TMP/ctx" && mv "$TMP/ctx-big.bin" "$TMP/ctx/big.bin"
for user in alice shorty; do
  # Each build its own content: two builds in the same second would otherwise make the same
  # image, and the second would find its manifest and config already there.
  echo "$user" >"$TMP/ctx/user.txt"
  mark=$(registry_log_mark dst)
  run_ocisync build-push --debug --level 9 --dest-cert-dir "$PKI_CERTDIR_CA" --dest-creds "$user:$PASS" \
    --base scratch --platform "linux/amd64=$TMP/ctx:/" --tag "$DST_ADDR/team/built:$user"
  expect_success "build-push to a token-auth registry as $user"
  assert_contains "$OCISYNC_STDOUT" "(1 while building)" "$user: the layer went up while it was built"
  assert_eq "$(registry_log_count dst "^PATCH /v2/team/built/blobs/uploads/.* 202" "$mark")" 1 \
    "$user: one streamed PATCH"
  assert_eq "$(registry_log_count dst "^PUT /v2/team/built/blobs/uploads/.*digest=.* 201" "$mark")" 2 \
    "$user: two blobs committed (the layer and the config), none uploaded twice"
done

# --- --debug: no password, no token -------------------------------------------------
run_ocisync copy --debug "${tls[@]}" "${creds[@]}" "$src_ref" "docker://$DST_ADDR/team/app:debug"
expect_success "copy with --debug"
assert_no_secret "$PASS" "--debug output holds no password" "$OCISYNC_STDOUT" "$OCISYNC_STDERR"
assert_no_secret "$(printf 'alice:%s' "$PASS" | base64 -w0)" "--debug output holds no base64(user:password)" \
  "$OCISYNC_STDOUT" "$OCISYNC_STDERR"
n=0
while read -r kind secret; do
  # A JWT's signature alone is secret enough to look for.
  assert_no_secret "${secret##*.}" "no ocisync run printed $kind #$((n += 1))" "$TMP"/ocisync.*.stdout "$TMP"/ocisync.*.stderr >/dev/null
done <"$TMP/tok.tokens"
[ "$n" -gt 0 ] || fail "the token server handed out no token?"
pass "none of the $n tokens handed out appears in any ocisync output"
assert_no_secret "$PASS" "no ocisync run printed the password" "$TMP"/ocisync.*.stdout "$TMP"/ocisync.*.stderr

done_ok
