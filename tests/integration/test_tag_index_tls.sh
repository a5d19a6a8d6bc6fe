#!/usr/bin/env bash
# tag, delete, index create and index append, each once against a TLS
# registry with token authentication (tests/tools/token_server.py), with
# --cert-dir and --creds: skopeo (with the CA and credentials) reads what
# each left, and the token server was asked for the scopes each needs
# (pull,push for writes, delete for a delete). Without credentials, tag
# fails (401) and writes nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_tls.sh"

PASS="ocisync-pw-$RANDOM$RANDOM-t0ken"
printf 'alice:%s\nfixture:%s\n' "$PASS" "$PASS" >"$TMP/users"

pki_init
token_server_start tok --users "$TMP/users" --tls "$PKI_SERVER_CERT" "$PKI_SERVER_KEY"
certs_d_for tok
registry_start_tls reg "$PKI_SERVER_CERT" "$PKI_SERVER_KEY" --token "$TOK_REALM" reg-registry "$TOKEN_ISSUER" "$PKI_CA_CERT"

amd=$(mkimage --out "$TMP/amd" --platforms linux/amd64 --layers 2 --layer-size 20000 --seed tls-amd --tag v1)
arm=$(mkimage --out "$TMP/arm" --platforms linux/arm64/v8 --layers 1 --seed tls-arm --tag v1)
armv7=$(mkimage --out "$TMP/armv7" --platforms linux/arm/v7 --layers 1 --seed tls-armv7 --tag v1)
skopeo_push=(--dest-cert-dir "$PKI_CERTDIR_CA" --dest-creds "fixture:$PASS")
push_image_tls "$TMP/amd" "$REG_ADDR/lib/amd:v1" "${skopeo_push[@]}"
push_image_tls "$TMP/arm" "$REG_ADDR/lib/arm:v1" "${skopeo_push[@]}"
push_image_tls "$TMP/armv7" "$REG_ADDR/lib/armv7:v1" "${skopeo_push[@]}"

opts=(--cert-dir "$PKI_CERTDIR_CA" --creds "alice:$PASS")
digest_of() { skopeo_tls_digest "$REG_ADDR/$1" --cert-dir "$PKI_CERTDIR_CA" --creds "fixture:$PASS"; }
raw_of() {
  skopeo inspect --raw --cert-dir "$PKI_CERTDIR_CA" --creds "fixture:$PASS" "docker://$REG_ADDR/$1" >"$2" ||
    fail "skopeo inspect --raw $1 failed"
}

# --- tag ----------------------------------------------------------------------------
t0=$(helper_log_mark tok)
run_ocisync tag "${opts[@]}" "$REG_ADDR/lib/amd:v1" v1.0 "$REG_ADDR/lib/amd:stable"
expect_success "tag over TLS with token auth"
assert_eq "$(digest_of lib/amd:v1.0)" "$amd" "skopeo reads the image under :v1.0"
assert_eq "$(digest_of lib/amd:stable)" "$amd" "skopeo reads the image under :stable"
assert_ne "$(helper_log_count tok 'user=alice .*scope=repository:lib/amd:pull,push.*status=200' "$t0")" 0 \
  "tag asked for pull,push on lib/amd"

mark=$(registry_log_mark reg)
run_ocisync tag --cert-dir "$PKI_CERTDIR_CA" "$REG_ADDR/lib/amd:v1" anon
expect_failure "tag without credentials"
assert_eq "$OCISYNC_RC" 1 "refused: exit 1"
assert_eq "$(registry_log_count reg '^PUT .* 2[0-9][0-9]$' "$mark")" 0 "nothing was written without credentials (the PUT was refused)"
if skopeo inspect --raw --cert-dir "$PKI_CERTDIR_CA" --creds "fixture:$PASS" \
  "docker://$REG_ADDR/lib/amd:anon" >/dev/null 2>&1; then
  fail "a tag appeared without credentials"
fi
pass "no tag :anon"

# --- index create, append ---------------------------------------------------------
run_ocisync index create "${opts[@]}" --tag "$REG_ADDR/lib/idx:v1" "$REG_ADDR/lib/amd:v1" "$REG_ADDR/lib/arm:v1"
expect_success "index create over TLS with token auth"
raw_of lib/idx:v1 "$TMP/idx.json"
assert_eq "$(index_children "$TMP/idx.json")" "$(printf '%s linux/amd64\n%s linux/arm64/v8' "$amd" "$arm")" \
  "skopeo: the index's children and platforms"
assert_eq "$(digest_of "lib/idx@$arm")" "$arm" "the arm64 child is in lib/idx"

run_ocisync index append "${opts[@]}" --tag "$REG_ADDR/lib/idx:v1" "$REG_ADDR/lib/armv7:v1"
expect_success "index append over TLS with token auth"
raw_of lib/idx:v1 "$TMP/idx2.json"
assert_eq "$(index_children "$TMP/idx2.json")" \
  "$(printf '%s linux/amd64\n%s linux/arm64/v8\n%s linux/arm/v7' "$amd" "$arm" "$armv7")" \
  "skopeo: the appended index"

# --- delete -------------------------------------------------------------------------
t0=$(helper_log_mark tok)
run_ocisync delete "${opts[@]}" "$REG_ADDR/lib/amd:stable"
expect_success "delete over TLS with token auth"
assert_ne "$(helper_log_count tok 'user=alice .*scope=repository:lib/amd:pull,delete.*status=200' "$t0")" 0 \
  "delete asked for pull,delete on lib/amd"
if skopeo inspect --raw --cert-dir "$PKI_CERTDIR_CA" --creds "fixture:$PASS" \
  "docker://$REG_ADDR/lib/amd@$amd" >/dev/null 2>&1; then
  fail "the deleted manifest is still served"
fi
pass "the deleted manifest is gone"

done_ok
