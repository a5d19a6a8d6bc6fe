#!/usr/bin/env bash
# Every read command once against a TLS registry with token authentication
# (distribution's auth: token, tests/tools/token_server.py), the CA from
# --cert-dir and the credentials from --creds, as copy takes them; then
# anonymous (refused with a message naming the registry) and through an auth
# file. Answers equal skopeo's with the same credentials.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_tls.sh"

PASS="ocisync-pw-$RANDOM$RANDOM-read"
printf 'alice:%s\n' "$PASS" >"$TMP/users"
pki_init
token_server_start tok --users "$TMP/users" --tls "$PKI_SERVER_CERT" "$PKI_SERVER_KEY" --no-anonymous
certs_d_for tok
registry_start_tls reg "$PKI_SERVER_CERT" "$PKI_SERVER_KEY" --token "$TOK_REALM" reg-service "$TOKEN_ISSUER" "$PKI_CA_CERT"
R=$REG_ADDR
sk=(--cert-dir "$PKI_CERTDIR_CA" --creds "alice:$PASS")
want=$(mkimage --out "$TMP/img" --platforms linux/amd64,linux/arm64/v8 --seed tls-read --tag v1)
push_image_tls "$TMP/img" "$R/team/app:v1" --dest-cert-dir "$PKI_CERTDIR_CA" --dest-creds "alice:$PASS"
o=(--cert-dir "$PKI_CERTDIR_CA" --creds "alice:$PASS")

run_ocisync inspect "${o[@]}" "$R/team/app:v1"
expect_success "inspect over TLS with a token"
skopeo inspect "${sk[@]}" "docker://$R/team/app:v1" >"$TMP/s.json" 2>"$TMP/s.err" || fail "skopeo inspect: $(cat "$TMP/s.err")"
for f in Name Digest RepoTags Created Architecture Os Layers Env Labels; do
  assert_eq "$(json_eval "$OCISYNC_STDOUT" "d['$f']")" "$(json_eval "$TMP/s.json" "d['$f']")" "inspect $f equals skopeo's"
done
run_ocisync inspect --raw "${o[@]}" "$R/team/app:v1"
cmp -s "$OCISYNC_STDOUT" "$TMP/img/blobs/sha256/${want#sha256:}" || fail "inspect --raw bytes differ"
pass "inspect --raw: the index bytes"
run_ocisync ls --json "${o[@]}" "$R/team/app"
expect_success "ls over TLS with a token"
assert_eq "$(json_eval "$OCISYNC_STDOUT" 'd["Repository"] + " " + ",".join(d["Tags"])')" "$R/team/app v1" "ls --json"
run_ocisync digest "${o[@]}" "$R/team/app:v1"
assert_eq "$(cat "$OCISYNC_STDOUT")" "$(skopeo_tls_digest "$R/team/app:v1" "${sk[@]}")" "digest equals skopeo's"
run_ocisync manifest "${o[@]}" -p linux/arm64/v8 "$R/team/app:v1"
expect_success "manifest --platform over TLS"
child=$(file_digest "$OCISYNC_STDOUT")
run_ocisync config "${o[@]}" -p linux/arm64/v8 "$R/team/app:v1"
expect_success "config over TLS"
cfg=$(json_eval "$TMP/img/blobs/sha256/${child#sha256:}" 'd["config"]["digest"]')
assert_eq "$(file_digest "$OCISYNC_STDOUT")" "$cfg" "config: the arm64 image's config"
layer=$(json_eval "$TMP/img/blobs/sha256/${child#sha256:}" 'd["layers"][0]["digest"]')
run_ocisync blob "${o[@]}" "$R/team/app@$layer"
expect_success "blob over TLS"
assert_eq "$(file_digest "$OCISYNC_STDOUT")" "$layer" "blob: the layer's bytes"
t0=$(helper_log_mark tok)
run_ocisync catalog "${o[@]}" "$R"
expect_success "catalog over TLS"
assert_eq "$(cat "$OCISYNC_STDOUT")" "team/app" "catalog lists the repository"
assert_ne "$(helper_log_count tok 'scope=registry:catalog:\*' "$t0")" 0 "catalog asked for a registry:catalog:* token"
assert_eq "$(helper_log_count tok 'scope=repository:team/app:[a-z,]*push' 0)" 1 \
  "no read asked for push (the one push token is the fixture's)"

# The auth file works as for copy; without credentials the registry refuses, by name.
authfile_write "$TMP/auth.json" "$R" alice "$PASS"
run_ocisync digest --cert-dir "$PKI_CERTDIR_CA" --authfile "$TMP/auth.json" "$R/team/app:v1"
expect_success "digest with --authfile"
run_ocisync inspect --cert-dir "$PKI_CERTDIR_CA" "$R/team/app:v1"
expect_failure "inspect without credentials"
assert_eq "$OCISYNC_RC" 1 "refused credentials exit 1"
assert_contains "$OCISYNC_STDERR" "$R" "the message names the registry"
run_ocisync inspect "${o[@]}" --tls-verify=maybe "$R/team/app:v1"
assert_eq "$OCISYNC_RC" 2 "a malformed --tls-verify exits 2"
run_ocisync inspect --tls-verify --creds "alice:$PASS" "$R/team/app:v1"
expect_failure "an unknown CA"
assert_stderr_matches 'certificate|verify' "the message says the certificate is not trusted"
assert_no_secret "$PASS" "no password in any output" "$TMP"/ocisync.*.stdout "$TMP"/ocisync.*.stderr
done_ok
