#!/usr/bin/env bash
# Credentials from the auth files containers-auth.json(5) names, written by
# the real tools, read by ocisync exactly where skopeo 1.9.3 reads them.
# A TLS registry with htpasswd basic auth; `podman login` into
#   --authfile FILE (and $REGISTRY_AUTH_FILE), $XDG_RUNTIME_DIR/containers/
#   auth.json, /run/containers/$UID/auth.json (XDG_RUNTIME_DIR unset, in a
#   private mount namespace over a temporary /run: the host's is never
#   touched) and a repository-scoped login (REG/team/app);
# docker-style files written by hand: ~/.docker/config.json (key
# "https://REG/v2/"), ~/.config/containers/auth.json, the legacy ~/.dockercfg.
# After each, `ocisync copy` and `ocisync inspect` work, and skopeo (without
# --authfile or --creds) agrees. Two files where the first has nothing for
# the registry: the second is used, also after --authfile (as skopeo 1.9.3;
# --authfile replaces only $XDG_RUNTIME_DIR's file). Two keys with different passwords: the longest key
# that matches the repository wins, in both directions, also within one
# copy whose source and destination repositories need different ones.
# `ocisync login` writes where podman does, and podman and skopeo use it;
# `logout` says which file still has credentials it did not write.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_tls.sh"

command -v podman >/dev/null || skip_test "podman is not installed"
command -v unshare >/dev/null || skip_test "unshare is not installed"

USER_NAME=alice
PASS="ocisync-pw-$RANDOM$RANDOM-s3cret"
WRONG="ocisync-wrong-$RANDOM$RANDOM"

pki_init
htpasswd_make "$TMP/htpasswd" "$USER_NAME" "$PASS"
registry_start src
registry_start_tls reg "$PKI_SERVER_CERT" "$PKI_SERVER_KEY" --htpasswd "$TMP/htpasswd"
certs_d_for reg # ocisync finds the CA in $OCISYNC_CERTS_DIRS; podman and skopeo get --cert-dir

want=$(mkimage --out "$TMP/img" --platforms linux/amd64 --layers 1 --layer-size 4000 --seed files --tag v1)
push_image "$TMP/img" "$SRC_ADDR/lib/app:v1"
push_image_tls "$TMP/img" "$REG_ADDR/team/app:v1" --dest-cert-dir "$PKI_CERTDIR_CA" --dest-creds "$USER_NAME:$PASS"
push_image_tls "$TMP/img" "$REG_ADDR/mirror/app:v1" --dest-cert-dir "$PKI_CERTDIR_CA" --dest-creds "$USER_NAME:$PASS"
src_ref="docker://$SRC_ADDR/lib/app:v1"
cfg_home="$HOME/.config/containers/auth.json"
docker_cfg="$HOME/.docker/config.json"
xdg_file="$XDG_RUNTIME_DIR/containers/auth.json"

# reset_files: no auth file anywhere ocisync or skopeo look.
reset_files() {
  rm -f "$xdg_file" "$cfg_home" "$docker_cfg" "$HOME/.dockercfg" "$TMP"/*.auth.json
}

# auth_json FILE KEY=USER:PASS...: writes {"auths": {KEY: {"auth": ...}}}.
auth_json() {
  local f=$1
  shift
  mkdir -p "$(dirname "$f")"
  python3 - "$f" "$@" <<'EOF'
import base64, json, sys
path, pairs = sys.argv[1], sys.argv[2:]
auths = {}
for p in pairs:
    key, cred = p.split("=", 1)
    auths[key] = {"auth": base64.b64encode(cred.encode()).decode()}
with open(path, "w") as f:
    json.dump({"auths": auths}, f, indent="\t")
EOF
}

# podman_login ARGS...: podman login with the test CA, the password on stdin.
podman_login() {
  printf '%s\n' "$PASS" | podman_cmd login --cert-dir "$PKI_CERTDIR_CA" -u "$USER_NAME" --password-stdin "$@" \
    >>"$TMP/podman.log" 2>&1 || fail "podman login $* failed: $(tail -n 5 "$TMP/podman.log")"
  pass "podman login $*"
}

# skopeo_reads REPO (ok|refused) MSG [ARGS...]: skopeo inspect, with no
# credentials given, succeeds or is refused.
skopeo_reads() {
  local repo=$1 want_rc=$2 msg=$3
  shift 3
  if skopeo inspect --raw --cert-dir "$PKI_CERTDIR_CA" "$@" "docker://$REG_ADDR/$repo:v1" >/dev/null 2>"$TMP/skopeo.err"; then
    [ "$want_rc" = ok ] || fail "$msg: skopeo read $repo, expected a refusal"
  else
    [ "$want_rc" = refused ] || fail "$msg: skopeo could not read $repo: $(tail -n 3 "$TMP/skopeo.err")"
    grep -qiE 'unauthori[sz]ed|authentication' "$TMP/skopeo.err" ||
      fail "$msg: skopeo failed for another reason: $(tail -n 3 "$TMP/skopeo.err")"
  fi
  pass "$msg: skopeo inspect $repo: $want_rc"
}

# ocisync_reads REPO (ok|refused) MSG [ARGS...]: ocisync inspect and a copy
# from REPO:v1 into REPO:copy, with no credential flag.
ocisync_reads() {
  local repo=$1 want_rc=$2 msg=$3
  shift 3
  run_ocisync inspect "$@" "docker://$REG_ADDR/$repo:v1"
  if [ "$want_rc" = ok ]; then
    expect_success "$msg: ocisync inspect $repo"
    assert_eq "$(json_eval "$OCISYNC_STDOUT" "d['Digest']")" "$want" "$msg: inspect's digest"
  else
    expect_failure "$msg: ocisync inspect $repo refused"
    assert_stderr_matches '401|unauthori[sz]ed|authentication' "$msg: inspect's reason"
  fi
  run_ocisync copy "$@" "$src_ref" "docker://$REG_ADDR/$repo:copy"
  if [ "$want_rc" = ok ]; then
    expect_success "$msg: ocisync copy to $repo"
    assert_eq "$(skopeo_tls_digest "$REG_ADDR/$repo:copy" --cert-dir "$PKI_CERTDIR_CA" --creds "$USER_NAME:$PASS")" \
      "$want" "$msg: the copy is in the registry"
  else
    expect_failure "$msg: ocisync copy to $repo refused"
    assert_stderr_matches '401|unauthori[sz]ed|authentication' "$msg: copy's reason"
  fi
}

# both_read REPO (ok|refused) MSG [ARGS...]: skopeo and ocisync agree.
both_read() {
  skopeo_reads "$@"
  ocisync_reads "$@"
}

# --- nothing anywhere: both refused -------------------------------------------
reset_files
both_read team/app refused "no auth file"

# --- podman login --authfile / $REGISTRY_AUTH_FILE --------------------------------
podman_login --authfile "$TMP/given.auth.json" "$REG_ADDR"
[ -f "$TMP/given.auth.json" ] || fail "podman login --authfile wrote nothing"
both_read team/app ok "podman login --authfile, read with --authfile" --authfile "$TMP/given.auth.json"
REGISTRY_AUTH_FILE="$TMP/given.auth.json" both_read team/app ok "\$REGISTRY_AUTH_FILE"
both_read team/app refused "without --authfile, nothing else has it"
# As skopeo 1.9.3: after --authfile the read-only files are still read
# (not $XDG_RUNTIME_DIR's, which --authfile replaces).
auth_json "$TMP/other.auth.json" "other.example:5000=bob:bobs-pw"
auth_json "$docker_cfg" "$REG_ADDR=$USER_NAME:$PASS"
both_read team/app ok "--authfile without the registry: falls through to ~/.docker" --authfile "$TMP/other.auth.json"
REGISTRY_AUTH_FILE="$TMP/other.auth.json" both_read team/app ok "\$REGISTRY_AUTH_FILE without the registry: falls through"
rm -f "$docker_cfg"
auth_json "$xdg_file" "$REG_ADDR=$USER_NAME:$PASS"
both_read team/app refused "--authfile replaces \$XDG_RUNTIME_DIR's file" --authfile "$TMP/other.auth.json"

# --- podman login with XDG_RUNTIME_DIR set ----------------------------------------
reset_files
podman_login "$REG_ADDR"
[ -f "$xdg_file" ] || fail "podman login did not write $xdg_file"
pass "podman login wrote \$XDG_RUNTIME_DIR/containers/auth.json"
both_read team/app ok "podman login (\$XDG_RUNTIME_DIR)"

# Fall-through: the primary file exists but lacks the registry.
reset_files
auth_json "$xdg_file" "other.example:5000=bob:bobs-pw"
auth_json "$docker_cfg" "https://$REG_ADDR/v2/=$USER_NAME:$PASS"
both_read team/app ok "fall-through: \$XDG_RUNTIME_DIR's file lacks it, ~/.docker/config.json (https://REG/v2/) has it"
# ... and the first file that has the registry wins, even with a wrong password.
auth_json "$xdg_file" "$REG_ADDR=$USER_NAME:$WRONG"
both_read team/app refused "the first file with an entry wins"

# ~/.config/containers/auth.json, between the two.
reset_files
auth_json "$xdg_file" "other.example:5000=bob:bobs-pw"
auth_json "$cfg_home" "$REG_ADDR=$USER_NAME:$PASS"
auth_json "$docker_cfg" "$REG_ADDR=$USER_NAME:$WRONG"
both_read team/app ok "~/.config/containers/auth.json before ~/.docker/config.json"

# The legacy ~/.dockercfg, last.
reset_files
python3 - "$HOME/.dockercfg" "$REG_ADDR" "$USER_NAME:$PASS" <<'EOF'
import base64, json, sys
path, reg, cred = sys.argv[1:]
with open(path, "w") as f:
    json.dump({"https://%s/v1/" % reg: {"auth": base64.b64encode(cred.encode()).decode(), "email": ""}}, f)
EOF
both_read team/app ok "legacy ~/.dockercfg (https://REG/v1/)"

# --- repository-scoped keys: the longest match wins ----------------------------------
reset_files
podman_login "$REG_ADDR/team/app"
[ "$(json_eval "$xdg_file" "' '.join(sorted(d['auths']))")" = "$REG_ADDR/team/app" ] ||
  fail "podman login REG/team/app wrote $(json_eval "$xdg_file" "sorted(d['auths'])")"
pass "podman login REG/team/app wrote the key REG/team/app"
both_read team/app ok "repository key (podman login REG/team/app)"
both_read mirror/app refused "another repository: the team/app key does not match"

auth_json "$xdg_file" "$REG_ADDR=$USER_NAME:$WRONG" "$REG_ADDR/team/app=$USER_NAME:$PASS" "$REG_ADDR/team=$USER_NAME:$WRONG"
both_read team/app ok "REG/team/app (right) beats REG/team and REG (wrong)"
both_read mirror/app refused "REG (wrong) for another repository"
# One copy whose source and destination need different keys.
run_ocisync copy "docker://$REG_ADDR/team/app:v1" "docker://$REG_ADDR/mirror/app:one"
expect_failure "source REG/team/app (right), destination REG/mirror (wrong): refused at the destination"
assert_stderr_matches "401|unauthori[sz]ed|authentication" "the destination's key was used for the destination"

auth_json "$xdg_file" "$REG_ADDR=$USER_NAME:$PASS" "$REG_ADDR/team/app=$USER_NAME:$WRONG" "$REG_ADDR/team=$USER_NAME:$PASS"
both_read team/app refused "REG/team/app (wrong) beats REG/team and REG (right)"
both_read mirror/app ok "REG (right) for another repository"
auth_json "$xdg_file" "$REG_ADDR=$USER_NAME:$WRONG" "$REG_ADDR/team=$USER_NAME:$PASS"
both_read team/app ok "REG/team (right) beats REG (wrong) for team/app"
auth_json "$xdg_file" "$REG_ADDR=$USER_NAME:$PASS" "$REG_ADDR/team/app=$USER_NAME:$WRONG"
run_ocisync copy "docker://$REG_ADDR/mirror/app:v1" "docker://$REG_ADDR/team/app:two"
expect_failure "source REG/mirror (right), destination REG/team/app (wrong): refused"
auth_json "$xdg_file" "$REG_ADDR=$USER_NAME:$WRONG" "$REG_ADDR/team/app=$USER_NAME:$PASS" "$REG_ADDR/mirror=$USER_NAME:$PASS"
run_ocisync copy "docker://$REG_ADDR/team/app:v1" "docker://$REG_ADDR/mirror/app:three"
expect_success "source and destination each with their own repository key, in one copy"
assert_eq "$(skopeo_tls_digest "$REG_ADDR/mirror/app:three" --cert-dir "$PKI_CERTDIR_CA" --creds "$USER_NAME:$PASS")" \
  "$want" "the copy between two scoped repositories is in the registry"

# --- ocisync login: podman and skopeo use what it wrote ------------------------------
reset_files
run_ocisync login -u "$USER_NAME" -p "$PASS" "$REG_ADDR"
expect_success "ocisync login"
[ -f "$xdg_file" ] || fail "ocisync login did not write $xdg_file"
pass "ocisync login wrote \$XDG_RUNTIME_DIR/containers/auth.json"
skopeo_reads team/app ok "after ocisync login"
podman_cmd pull --cert-dir "$PKI_CERTDIR_CA" "docker://$REG_ADDR/team/app:v1" >>"$TMP/podman.log" 2>&1 ||
  fail "podman pull after ocisync login failed: $(tail -n 5 "$TMP/podman.log")"
pass "podman pull after ocisync login"
run_ocisync logout "$REG_ADDR"
expect_success "ocisync logout"
skopeo_reads team/app refused "after ocisync logout"

run_ocisync login -u "$USER_NAME" -p "$PASS" "$REG_ADDR/team/app"
expect_success "ocisync login REG/team/app"
[ "$(json_eval "$xdg_file" "' '.join(sorted(d['auths']))")" = "$REG_ADDR/team/app" ] ||
  fail "ocisync login REG/team/app wrote $(json_eval "$xdg_file" "sorted(d['auths'])")"
pass "ocisync login REG/team/app wrote the key REG/team/app, as podman"
skopeo_reads team/app ok "skopeo with ocisync's repository key"
skopeo_reads mirror/app refused "skopeo: ocisync's repository key is not the registry's"
run_ocisync logout "$REG_ADDR/team/app"
expect_success "ocisync logout REG/team/app"

# logout names the file that still has the registry.
auth_json "$docker_cfg" "$REG_ADDR=$USER_NAME:$PASS"
run_ocisync logout "$REG_ADDR"
expect_failure "ocisync logout with the entry only in ~/.docker/config.json"
assert_contains "$OCISYNC_STDERR" "$docker_cfg" "logout names the file that has it"
[ -n "$(json_eval "$docker_cfg" "d['auths'].get('$REG_ADDR')")" ] || fail "logout changed ~/.docker/config.json"
pass "logout left ~/.docker/config.json alone"

# --- XDG_RUNTIME_DIR unset: /run/containers/$UID/auth.json ----------------------------
# In a private mount namespace with a temporary /run, so the host's
# /run/containers is never read or written.
reset_files
mkdir -p "$TMP/fakerun"
[ ! -e /run/containers ] || : >"$TMP/run-containers-existed"
cat >"$TMP/norun.sh" <<'EOF'
set -u
mount --make-rprivate / && mount --bind "$TMP/fakerun" /run || exit 90
unset XDG_RUNTIME_DIR
uid=$(id -u)
f=/run/containers/$uid/auth.json
out=$TMP/norun
: >"$out"
# podman login writes /run/containers/$UID/auth.json; ocisync reads it.
printf '%s\n' "$PASS" | podman_cmd login --cert-dir "$PKI_CERTDIR_CA" -u "$USER_NAME" --password-stdin "$REG_ADDR" >>"$TMP/podman.log" 2>&1
echo "podman_login $?" >>"$out"
[ -f "$f" ]; echo "podman_file $?" >>"$out"
"$OCISYNC_BIN" inspect "docker://$REG_ADDR/team/app:v1" >"$TMP/norun.inspect" 2>"$TMP/norun.inspect.err"
echo "ocisync_inspect $?" >>"$out"
"$OCISYNC_BIN" copy "$SRC_REF" "docker://$REG_ADDR/team/app:norun" >/dev/null 2>"$TMP/norun.copy.err"
echo "ocisync_copy $?" >>"$out"
rm -f "$f"
"$OCISYNC_BIN" inspect "docker://$REG_ADDR/team/app:v1" >/dev/null 2>&1
echo "ocisync_inspect_gone $?" >>"$out"
# ocisync login writes there too; skopeo reads it.
"$OCISYNC_BIN" login -u "$USER_NAME" -p "$PASS" "$REG_ADDR" >/dev/null 2>"$TMP/norun.login.err"
echo "ocisync_login $?" >>"$out"
[ -f "$f" ]; echo "ocisync_file $?" >>"$out"
skopeo inspect --raw --cert-dir "$PKI_CERTDIR_CA" "docker://$REG_ADDR/team/app:v1" >/dev/null 2>"$TMP/norun.skopeo.err"
echo "skopeo_inspect $?" >>"$out"
EOF
export TMP PASS USER_NAME REG_ADDR PKI_CERTDIR_CA OCISYNC_BIN
export SRC_REF="$src_ref"
export -f podman_cmd
unshare -m bash "$TMP/norun.sh" || fail "the private mount namespace could not be set up (exit $?)"
norun() { awk -v k="$1" '$1 == k { print $2 }' "$TMP/norun"; }
assert_eq "$(norun podman_login)" 0 "podman login without XDG_RUNTIME_DIR"
assert_eq "$(norun podman_file)" 0 "podman wrote /run/containers/\$UID/auth.json"
assert_eq "$(norun ocisync_inspect)" 0 "ocisync inspect with /run/containers/\$UID/auth.json ($(head -c 300 "$TMP/norun.inspect.err"))"
assert_eq "$(norun ocisync_copy)" 0 "ocisync copy with /run/containers/\$UID/auth.json ($(head -c 300 "$TMP/norun.copy.err"))"
assert_eq "$(norun ocisync_inspect_gone)" 1 "without the file ocisync is refused"
assert_eq "$(norun ocisync_login)" 0 "ocisync login without XDG_RUNTIME_DIR ($(head -c 300 "$TMP/norun.login.err"))"
assert_eq "$(norun ocisync_file)" 0 "ocisync login wrote /run/containers/\$UID/auth.json"
assert_eq "$(norun skopeo_inspect)" 0 "skopeo reads what ocisync login wrote there ($(head -c 300 "$TMP/norun.skopeo.err"))"
[ ! -e /run/containers ] || [ -e "$TMP/run-containers-existed" ] || fail "the host's /run/containers appeared"

done_ok
