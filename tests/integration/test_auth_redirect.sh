#!/usr/bin/env bash
# Blob downloads redirected elsewhere (as registries backed by object
# storage do) never carry the registry's credentials. A TLS registry with
# Basic auth sits behind tests/tools/redirect_proxy.py, which forwards
# everything but answers an authenticated GET /v2/*/blobs/sha256:* (an
# unauthenticated one is challenged by the registry) with 307 to a recording
# server (it logs each request's headers and serves the blob with its own
# credentials):
#   run 1: the recorder is on another address, 127.0.0.2;
#   run 2: the recorder is on another port of the same address, 127.0.0.1
#          (another origin all the same).
# Each copy succeeds, byte for byte; the proxy saw Basic credentials on
# the requests to the registry (blob GETs included), while no request that
# reached a recorder had an Authorization header.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_tls.sh"

PASS="ocisync-pw-$RANDOM$RANDOM-redir"
pki_init
htpasswd_make "$TMP/htpasswd" alice "$PASS"
registry_start_tls reg "$PKI_SERVER_CERT" "$PKI_SERVER_KEY" --htpasswd "$TMP/htpasswd"

want=$(mkimage --out "$TMP/img" --platforms linux/amd64 --layers 3 --layer-size 50000 --seed redirect --tag v1)
push_image_tls "$TMP/img" "$REG_ADDR/lib/app:v1" --dest-cert-dir "$PKI_CERTDIR_CA" --dest-creds "alice:$PASS"
mapfile -t blobs < <(manifest_blobs "$TMP/img/blobs/sha256/${want#sha256:}")
[ "${#blobs[@]}" -eq 4 ] || fail "generator: expected 4 blobs (config + 3 layers), got ${#blobs[@]}"

# redirected_copy N RECORDER_IP: runs one copy through a proxy that sends
# blob GETs to a recorder on RECORDER_IP, and checks what each one saw.
redirected_copy() {
  local n=$1 ip=$2 rec="rec$1" front="front$1" dst="dst$1" rv fv dv total noauth withauth d
  recorder_start "$rec" "$ip" "$(registry_url reg)" --tls "$PKI_SERVER_CERT" "$PKI_SERVER_KEY" \
    --upstream-creds "alice:$PASS"
  rv="REC${n}_URL"
  redirect_proxy_start "$front" "$(registry_url reg)" "${!rv}" --tls "$PKI_SERVER_CERT" "$PKI_SERVER_KEY" \
    --require-auth
  registry_start "$dst"
  # Both servers are HTTPS with the test CA: trusted through certs.d, for
  # whichever way ocisync looks up the CA of a redirect's target.
  certs_d_for "$front"
  certs_d_for "$rec"
  fv="FRONT${n}_ADDR"
  dv="DST${n}_ADDR"
  log "run $n: registry behind $front (${!fv}), blob GETs redirected to ${!rv}"
  run_ocisync copy --src-cert-dir "$PKI_CERTDIR_CA" --src-creds "alice:$PASS" \
    "docker://${!fv}/lib/app:v1" "docker://${!dv}/lib/app:v1"
  expect_success "run $n: copy from a registry that redirects blob GETs to ${!rv}"
  assert_eq "$(skopeo_digest "${!dv}/lib/app:v1")" "$want" "run $n: destination digest equals source"
  skopeo_raw "${!dv}/lib/app:v1" "$TMP/dst$n.json"
  assert_blobs_present "${!dv}" lib/app "$TMP/dst$n.json" "run $n's copy"

  helper_log_lines "$front" . | sed 's/^/    proxy: /' | cut -c1-200
  helper_log_lines "$rec" . | sed 's/^/    recorder: /' | cut -c1-200
  assert_ne "$(helper_log_count "$front" 'authorization=yes auth=Basic .*action=forward status=200')" 0 \
    "run $n: requests forwarded to the registry carried Basic credentials"
  assert_ne "$(helper_log_count "$front" 'authorization=yes auth=Basic .*action=redirect status=307')" 0 \
    "run $n: the redirected blob GETs themselves carried Basic credentials (to the registry's address)"
  total=$(helper_log_count "$rec" .)
  noauth=$(helper_log_count "$rec" 'authorization=no ')
  withauth=$(helper_log_count "$rec" 'authorization=yes')
  [ "$total" -gt 0 ] || fail "run $n: no request reached the recorder: were blob GETs redirected at all?"
  assert_eq "$withauth" 0 "run $n: no request to the redirect target ${!rv} carried an Authorization header ($total requests)"
  for d in "${blobs[@]:1}"; do
    [ "$(helper_log_count "$rec" "method=GET path=/v2/lib/app/blobs/$d .*status=200")" -ge 1 ] ||
      fail "run $n: layer $d was not fetched from the recorder"
  done
  pass "run $n: each of the $((${#blobs[@]} - 1)) layers was fetched from the redirect target, without credentials ($noauth requests)"
  assert_eq "$(helper_log_count "$rec" 'status=(401|403)')" 0 "run $n: the recorder never refused a request"
}

redirected_copy 1 127.0.0.2
redirected_copy 2 127.0.0.1
assert_ne "$REC1_ADDR" "$REC2_ADDR" "the two redirect targets differ"
assert_no_secret "$PASS" "no ocisync run printed the password" "$TMP"/ocisync.*.stdout "$TMP"/ocisync.*.stderr

done_ok
