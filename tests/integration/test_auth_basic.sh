#!/usr/bin/env bash
# Basic authentication (htpasswd) at a TLS destination registry, with
# credentials from every place ocisync looks, in its order:
#   --dest-creds; $OCISYNC_PUSH_USERNAME/PASSWORD (not $OCISYNC_PULL_*, which
#   are the source's); $OCISYNC_USERNAME/PASSWORD; --authfile,
#   $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json and
#   ~/.docker/config.json (auths with base64 "auth"; credHelpers and
#   credsStore running docker-credential-NAME get).
# A wrong password and no credentials fail with 401/unauthorized and push
# nothing. `ocisync login` checks the password against the registry, then
# writes auths[REGISTRY].auth to a 0600 auth file that a later copy uses
# without any flag; `logout` removes just that entry. The password and its
# base64 never appear in ocisync's output, --debug included.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_tls.sh"

USER_NAME=alice
PASS="ocisync-pw-$RANDOM$RANDOM-s3cret"
WRONG="ocisync-wrong-$RANDOM$RANDOM"
B64=$(printf '%s:%s' "$USER_NAME" "$PASS" | base64 -w0)

pki_init
htpasswd_make "$TMP/htpasswd" "$USER_NAME" "$PASS"
registry_start src
registry_start_tls reg "$PKI_SERVER_CERT" "$PKI_SERVER_KEY" --htpasswd "$TMP/htpasswd"

want=$(mkimage --out "$TMP/img" --platforms linux/amd64 --layers 2 --layer-size 20000 --seed basic --tag v1)
push_image "$TMP/img" "$SRC_ADDR/lib/app:v1"
src_ref="docker://$SRC_ADDR/lib/app:v1"
tls=(--dest-cert-dir "$PKI_CERTDIR_CA")

# reg_digest REPO:TAG: the digest skopeo reads from the registry, as alice.
reg_digest() { skopeo_tls_digest "$REG_ADDR/$1" --cert-dir "$PKI_CERTDIR_CA" --creds "$USER_NAME:$PASS"; }
# copied_ok TAG MSG: the last run succeeded and the registry has the image.
copied_ok() {
  expect_success "$2"
  assert_eq "$(reg_digest "team/app:$1")" "$want" "$2: destination digest equals source"
}
# refused MSG SINCE: the last run failed for want of valid credentials and
# pushed nothing.
refused() {
  expect_failure "$1"
  assert_stderr_matches '401|unauthori[sz]ed|authentication' "$1: the reason is given"
  assert_contains "$OCISYNC_STDERR" "$REG_ADDR" "$1: stderr names the registry"
  assert_eq "$(registry_log_count reg '^(POST|PUT|PATCH|DELETE) .* 20[0-9]$' "$2")" 0 "$1: nothing was written"
}

# --- --dest-creds -------------------------------------------------------------
run_ocisync copy "${tls[@]}" --dest-creds "$USER_NAME:$PASS" "$src_ref" "docker://$REG_ADDR/team/app:creds"
copied_ok creds "copy with --dest-creds"

mark=$(registry_log_mark reg)
run_ocisync copy "${tls[@]}" --dest-creds "$USER_NAME:$WRONG" "$src_ref" "docker://$REG_ADDR/team/app:wrong"
refused "a wrong password" "$mark"
assert_no_secret "$WRONG" "a wrong password: it is not echoed" "$OCISYNC_STDOUT" "$OCISYNC_STDERR"

run_ocisync copy "${tls[@]}" "$src_ref" "docker://$REG_ADDR/team/app:anon"
refused "no credentials (anonymous)" "$mark"

# --- environment ----------------------------------------------------------------
OCISYNC_PUSH_USERNAME=$USER_NAME OCISYNC_PUSH_PASSWORD=$PASS \
  run_ocisync copy "${tls[@]}" "$src_ref" "docker://$REG_ADDR/team/app:pushenv"
copied_ok pushenv "credentials from \$OCISYNC_PUSH_USERNAME/PASSWORD"

mark=$(registry_log_mark reg)
OCISYNC_PULL_USERNAME=$USER_NAME OCISYNC_PULL_PASSWORD=$PASS \
  run_ocisync copy "${tls[@]}" "$src_ref" "docker://$REG_ADDR/team/app:pullenv"
refused "\$OCISYNC_PULL_* only (the source's variables)" "$mark"

OCISYNC_USERNAME=$USER_NAME OCISYNC_PASSWORD=$PASS \
  run_ocisync copy "${tls[@]}" "$src_ref" "docker://$REG_ADDR/team/app:env"
copied_ok env "credentials from \$OCISYNC_USERNAME/PASSWORD"

OCISYNC_PUSH_USERNAME=$USER_NAME OCISYNC_PUSH_PASSWORD=$PASS OCISYNC_USERNAME=$USER_NAME OCISYNC_PASSWORD=$WRONG \
  run_ocisync copy "${tls[@]}" "$src_ref" "docker://$REG_ADDR/team/app:pushfirst"
copied_ok pushfirst "\$OCISYNC_PUSH_* come before \$OCISYNC_* (wrong generic password ignored)"

mark=$(registry_log_mark reg)
OCISYNC_PUSH_USERNAME=$USER_NAME OCISYNC_PUSH_PASSWORD=$PASS \
  run_ocisync copy "${tls[@]}" --dest-creds "$USER_NAME:$WRONG" "$src_ref" "docker://$REG_ADDR/team/app:flagfirst"
refused "--dest-creds comes before the environment (wrong flag, right variables)" "$mark"

# --- auth files ---------------------------------------------------------------
authfile_write "$TMP/auth.json" "$REG_ADDR" "$USER_NAME" "$PASS"
run_ocisync copy "${tls[@]}" --authfile "$TMP/auth.json" "$src_ref" "docker://$REG_ADDR/team/app:authfile"
copied_ok authfile "credentials from --authfile (auths with base64 auth)"

REGISTRY_AUTH_FILE="$TMP/auth.json" run_ocisync copy "${tls[@]}" "$src_ref" "docker://$REG_ADDR/team/app:regauthfile"
copied_ok regauthfile "credentials from \$REGISTRY_AUTH_FILE"

authfile_write "$XDG_RUNTIME_DIR/containers/auth.json" "$REG_ADDR" "$USER_NAME" "$PASS"
run_ocisync copy "${tls[@]}" "$src_ref" "docker://$REG_ADDR/team/app:xdg"
copied_ok xdg "credentials from \$XDG_RUNTIME_DIR/containers/auth.json"
rm -f "$XDG_RUNTIME_DIR/containers/auth.json"

authfile_write "$HOME/.docker/config.json" "$REG_ADDR" "$USER_NAME" "$PASS"
run_ocisync copy "${tls[@]}" "$src_ref" "docker://$REG_ADDR/team/app:dockercfg"
copied_ok dockercfg "credentials from ~/.docker/config.json"

mark=$(registry_log_mark reg)
authfile_write "$TMP/wrong-auth.json" "$REG_ADDR" "$USER_NAME" "$WRONG"
REGISTRY_AUTH_FILE="$TMP/wrong-auth.json" run_ocisync copy "${tls[@]}" "$src_ref" "docker://$REG_ADDR/team/app:authorder"
refused "\$REGISTRY_AUTH_FILE comes before ~/.docker/config.json (wrong password in it)" "$mark"
rm -f "$HOME/.docker/config.json"

# --- credential helpers -----------------------------------------------------------
cred_helper_install ocitest "$USER_NAME" "$PASS" "$REG_ADDR"
printf '{"credHelpers": {"%s": "ocitest"}}\n' "$REG_ADDR" >"$TMP/helpers.json"
run_ocisync copy "${tls[@]}" --authfile "$TMP/helpers.json" "$src_ref" "docker://$REG_ADDR/team/app:credhelper"
copied_ok credhelper "credentials from credHelpers (docker-credential-ocitest)"
assert_eq "$(grep -cE "^get (https?://)?$REG_ADDR/?$" "$TMP/cred-helper-ocitest.log" || true)" 1 \
  "docker-credential-ocitest was asked once: get $REG_ADDR"

cred_helper_install ocistore "$USER_NAME" "$PASS" "$REG_ADDR"
printf '{"credsStore": "ocistore"}\n' >"$TMP/store.json"
run_ocisync copy "${tls[@]}" --authfile "$TMP/store.json" "$src_ref" "docker://$REG_ADDR/team/app:credstore"
copied_ok credstore "credentials from credsStore (docker-credential-ocistore)"
assert_contains "$TMP/cred-helper-ocistore.log" "get" "docker-credential-ocistore was asked"

# --- login / logout ---------------------------------------------------------------
certs_d_for reg # from here on no TLS flag: the registry's CA is in certs.d
mark=$(registry_log_mark reg)
run_ocisync login -u "$USER_NAME" -p "$WRONG" "$REG_ADDR"
expect_failure "login with a wrong password"
assert_stderr_matches '401|unauthori[sz]ed|authentication|invalid' "wrong login: the reason is given"
[ ! -s "$XDG_RUNTIME_DIR/containers/auth.json" ] || ! grep -q "$REG_ADDR" "$XDG_RUNTIME_DIR/containers/auth.json" ||
  fail "a failed login stored credentials: $(cat "$XDG_RUNTIME_DIR/containers/auth.json")"
pass "a failed login stored nothing"
assert_ne "$(registry_log_count reg ' 401$' "$mark")" 0 "login checked the password against the registry (it answered 401)"

run_ocisync login -u "$USER_NAME" -p "$PASS" "$REG_ADDR"
expect_success "login (default auth file \$XDG_RUNTIME_DIR/containers/auth.json)"
af="$XDG_RUNTIME_DIR/containers/auth.json"
[ -f "$af" ] || fail "login wrote no $af"
assert_eq "$(stat -c %a "$af")" 600 "the auth file's mode"
[ "$(json_eval "$af" "d['auths']['$REG_ADDR']['auth']")" = "$B64" ] ||
  fail "auths[$REG_ADDR].auth in $af is not base64(user:password)"
pass "auths[$REG_ADDR].auth is base64(user:password)"

run_ocisync copy "$src_ref" "docker://$REG_ADDR/team/app:login"
copied_ok login "copy after login, without any flag"

# login/logout with an explicit --authfile that holds another registry too,
# the password given on stdin.
authfile_write "$TMP/shared.json" "other.example:5000" bob bobs-password
chmod 644 "$TMP/shared.json"
printf '%s\n' "$PASS" >"$TMP/stdin"
OCISYNC_STDIN="$TMP/stdin" run_ocisync login --authfile "$TMP/shared.json" -u "$USER_NAME" --password-stdin \
  --cert-dir "$PKI_CERTDIR_CA" "$REG_ADDR"
expect_success "login --authfile --password-stdin --cert-dir"
[ "$(json_eval "$TMP/shared.json" "d['auths']['$REG_ADDR']['auth']")" = "$B64" ] ||
  fail "login --authfile: auths[$REG_ADDR].auth is not base64(user:password)"
pass "login --authfile: auths[$REG_ADDR].auth written"
assert_eq "$(json_eval "$TMP/shared.json" "sorted(d['auths'])" | tr '\n' ' ')" \
  "$(printf '%s\n' "$REG_ADDR" other.example:5000 | sort | tr '\n' ' ')" "login --authfile: the other registry's entry kept"
assert_eq "$(stat -c %a "$TMP/shared.json")" 600 "login --authfile: the file's mode"

run_ocisync logout --authfile "$TMP/shared.json" "$REG_ADDR"
expect_success "logout --authfile"
assert_eq "$(json_eval "$TMP/shared.json" "sorted(d.get('auths', {}))" | tr '\n' ' ')" "other.example:5000 " \
  "logout removed only $REG_ADDR's entry"

run_ocisync logout "$REG_ADDR"
expect_success "logout (default auth file)"
if [ -f "$af" ]; then
  assert_eq "$(json_eval "$af" "'$REG_ADDR' in d.get('auths', {})")" false "logout removed the entry from $af"
else
  pass "logout removed $af (it held nothing else)"
fi
mark=$(registry_log_mark reg)
run_ocisync copy "$src_ref" "docker://$REG_ADDR/team/app:afterlogout"
refused "a copy after logout" "$mark"

# --- --debug shows no secret ----------------------------------------------------
run_ocisync copy --debug --dest-creds "$USER_NAME:$PASS" "$src_ref" "docker://$REG_ADDR/team/app:debug"
copied_ok debug "copy with --debug"
[ -s "$OCISYNC_STDERR" ] || [ -s "$OCISYNC_STDOUT" ] || fail "--debug printed nothing"
pass "--debug printed $(cat "$OCISYNC_STDOUT" "$OCISYNC_STDERR" | wc -l | tr -d ' ') lines"
assert_no_secret "$PASS" "--debug output holds no password" "$OCISYNC_STDOUT" "$OCISYNC_STDERR"
assert_no_secret "$B64" "--debug output holds no base64(user:password)" "$OCISYNC_STDOUT" "$OCISYNC_STDERR"

# And no run at all printed either.
assert_no_secret "$PASS" "no ocisync run printed the password" "$TMP"/ocisync.*.stdout "$TMP"/ocisync.*.stderr
assert_no_secret "$B64" "no ocisync run printed base64(user:password)" "$TMP"/ocisync.*.stdout "$TMP"/ocisync.*.stderr
assert_no_secret "$WRONG" "no ocisync run printed the wrong password" "$TMP"/ocisync.*.stdout "$TMP"/ocisync.*.stderr

done_ok
