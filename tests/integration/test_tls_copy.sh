#!/usr/bin/env bash
# TLS to registries that speak only HTTPS. Loopback registries are plain
# HTTP by default, so every run says HTTPS for each side with a flag
# (--*-cert-dir, --*-tls-verify) or a certs.d entry ($OCISYNC_CERTS_DIRS).
#   - --src-cert-dir/--dest-cert-dir holding the test CA: the copy arrives
#     byte for byte (skopeo, trusting the same CA, reads the same digest);
#   - without the CA: refused, "unknown authority", nothing pushed;
#   - --dest-tls-verify=false: accepted without the CA;
#   - certs.d entries found through $OCISYNC_CERTS_DIRS (a list);
#   - a certificate for another name, a self-signed one and an expired one:
#     refused, each with its reason, naming the registry;
#   - mutual TLS: client.cert/client.key from the cert dir (or certs.d) are
#     presented; without them the copy fails.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_tls.sh"

pki_init
registry_start_tls src "$PKI_SERVER_CERT" "$PKI_SERVER_KEY"
registry_start_tls dst "$PKI_SERVER_CERT" "$PKI_SERVER_KEY"

want=$(mkimage --out "$TMP/img" --platforms linux/amd64 --layers 2 --layer-size 30000 --seed tls --tag v1)
push_image_tls "$TMP/img" "$SRC_ADDR/lib/tls:v1" --dest-cert-dir "$PKI_CERTDIR_CA"
assert_eq "$(skopeo_tls_digest "$SRC_ADDR/lib/tls:v1" --cert-dir "$PKI_CERTDIR_CA")" "$want" \
  "source digest (skopeo over TLS) is the generated one"
src_ref="docker://$SRC_ADDR/lib/tls:v1"
ca_both=(--src-cert-dir "$PKI_CERTDIR_CA" --dest-cert-dir "$PKI_CERTDIR_CA")

# dst_digest REPO:TAG: the destination's digest as skopeo reads it with the CA.
dst_digest() { skopeo_tls_digest "$DST_ADDR/$1" --cert-dir "$PKI_CERTDIR_CA"; }
# no_writes REGISTRY SINCE MSG: nothing was written since the mark.
no_writes() {
  assert_eq "$(registry_log_count "$1" '^(POST|PUT|PATCH|DELETE) ' "$2")" 0 "$3: nothing was written to $1"
}
UNKNOWN_CA='unknown authority|unable to get local issuer|unknown ca|not trusted|untrusted'

# --- the CA in cert dirs --------------------------------------------------
run_ocisync copy "${ca_both[@]}" "$src_ref" "docker://$DST_ADDR/lib/tls:v1"
expect_success "copy between two TLS registries with --src-cert-dir/--dest-cert-dir"
assert_eq "$(dst_digest lib/tls:v1)" "$want" "skopeo (--cert-dir) reads the source digest at the destination"
assert_eq "$(registry_log_count dst '^PUT /v2/lib/tls/manifests/v1 201$')" 1 "the destination stored the manifest once"

# --- without the CA ---------------------------------------------------------
mark=$(registry_log_mark dst)
run_ocisync copy --src-cert-dir "$PKI_CERTDIR_CA" --dest-tls-verify=true "$src_ref" "docker://$DST_ADDR/lib/noca:v1"
expect_failure "destination certificate from an unknown CA (--dest-tls-verify=true, no CA)"
assert_stderr_matches "$UNKNOWN_CA" "unknown CA: the reason is given"
assert_contains "$OCISYNC_STDERR" "$DST_ADDR" "unknown CA: stderr names the destination registry"
no_writes dst "$mark" "unknown CA"

mkdir -p "$TMP/empty-certdir"
run_ocisync copy --src-cert-dir "$PKI_CERTDIR_CA" --dest-cert-dir "$TMP/empty-certdir" "$src_ref" \
  "docker://$DST_ADDR/lib/noca:v1"
expect_failure "a --dest-cert-dir without the CA"
assert_stderr_matches "$UNKNOWN_CA" "empty cert dir: the reason is given"
no_writes dst "$mark" "empty cert dir"

run_ocisync copy --src-tls-verify=true --dest-cert-dir "$PKI_CERTDIR_CA" "$src_ref" "docker://$DST_ADDR/lib/noca:v1"
expect_failure "source certificate from an unknown CA (--src-tls-verify=true, no CA)"
assert_stderr_matches "$UNKNOWN_CA" "unknown source CA: the reason is given"
assert_contains "$OCISYNC_STDERR" "$SRC_ADDR" "unknown source CA: stderr names the source registry"
no_writes dst "$mark" "unknown source CA"

# --- verification off -----------------------------------------------------
run_ocisync copy --src-cert-dir "$PKI_CERTDIR_CA" --dest-tls-verify=false "$src_ref" "docker://$DST_ADDR/lib/noverify:v1"
expect_success "--dest-tls-verify=false accepts the destination without its CA"
assert_eq "$(dst_digest lib/noverify:v1)" "$want" "--dest-tls-verify=false: destination digest equals source"

# --- certs.d through $OCISYNC_CERTS_DIRS ------------------------------------
certs_d_for src
certs_d_for dst
mkdir -p "$TMP/other-certs.d"
OCISYNC_CERTS_DIRS="$TMP/other-certs.d:$TMP/certs.d" run_ocisync copy "$src_ref" "docker://$DST_ADDR/lib/certsd:v1"
expect_success "copy with the CA only in certs.d/HOST:PORT/ca.crt (second directory of \$OCISYNC_CERTS_DIRS)"
assert_eq "$(dst_digest lib/certsd:v1)" "$want" "certs.d: destination digest equals source"
rm -rf "${TMP:?}/certs.d/"*

# --- bad server certificates --------------------------------------------------
# bad_cert NAME CERT KEY ERE WHAT: a destination with that certificate is refused.
bad_cert() {
  local name=$1 cert=$2 key=$3 ere=$4 what=$5 var m
  registry_start_tls "$name" "$cert" "$key"
  var="$(_tls_upper "$name")_ADDR"
  m=$(registry_log_mark "$name")
  run_ocisync copy "${ca_both[@]}" "$src_ref" "docker://${!var}/lib/tls:v1"
  expect_failure "destination with $what"
  assert_stderr_matches "$ere" "$what: the reason is given"
  assert_contains "$OCISYNC_STDERR" "${!var}" "$what: stderr names the registry"
  assert_eq "$(registry_log_count "$name" '.' "$m")" 0 "$what: no request got through to $name"
}
bad_cert wrongname "$PKI_WRONG_CERT" "$PKI_WRONG_KEY" 'does not match|doesn.t match|mismatch|not valid for|IP SANs' \
  "a certificate for wrong.example only"
bad_cert selfsigned "$PKI_SELF_CERT" "$PKI_SELF_KEY" 'self.signed|unknown authority' "a self-signed certificate"
bad_cert expired "$PKI_EXPIRED_CERT" "$PKI_EXPIRED_KEY" 'expired' "an expired certificate"

# --- mutual TLS ---------------------------------------------------------------
registry_start_tls mtls "$PKI_SERVER_CERT" "$PKI_SERVER_KEY" --client-ca "$PKI_CA_CERT"
run_ocisync copy --src-cert-dir "$PKI_CERTDIR_CA" --dest-cert-dir "$PKI_CERTDIR_CLIENT" "$src_ref" \
  "docker://$MTLS_ADDR/lib/tls:v1"
expect_success "copy to a registry requiring a client certificate (client.cert/client.key in --dest-cert-dir)"
assert_eq "$(skopeo_tls_digest "$MTLS_ADDR/lib/tls:v1" --cert-dir "$PKI_CERTDIR_CLIENT")" "$want" \
  "mutual TLS: destination digest equals source"

mark=$(registry_log_mark mtls)
run_ocisync copy --src-cert-dir "$PKI_CERTDIR_CA" --dest-cert-dir "$PKI_CERTDIR_CA" "$src_ref" \
  "docker://$MTLS_ADDR/lib/noclient:v1"
expect_failure "mutual TLS without a client certificate"
assert_contains "$OCISYNC_STDERR" "$MTLS_ADDR" "no client certificate: stderr names the registry"
assert_eq "$(registry_log_count mtls '.' "$mark")" 0 "no client certificate: no request got through"

run_ocisync copy --src-cert-dir "$PKI_CERTDIR_CLIENT" --dest-cert-dir "$PKI_CERTDIR_CA" \
  "docker://$MTLS_ADDR/lib/tls:v1" "docker://$DST_ADDR/lib/from-mtls:v1"
expect_success "copy from a registry requiring a client certificate (--src-cert-dir)"
assert_eq "$(dst_digest lib/from-mtls:v1)" "$want" "mutual TLS source: destination digest equals source"

certs_d_for mtls --client
run_ocisync copy --src-cert-dir "$PKI_CERTDIR_CA" "$src_ref" "docker://$MTLS_ADDR/lib/certsd:v1"
expect_success "mutual TLS with client.cert/client.key from certs.d"
assert_eq "$(skopeo_tls_digest "$MTLS_ADDR/lib/certsd:v1" --cert-dir "$PKI_CERTDIR_CLIENT")" "$want" \
  "mutual TLS via certs.d: destination digest equals source"

done_ok
