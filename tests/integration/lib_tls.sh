# shellcheck shell=bash
# TLS, authentication and redirect helpers for ocisync's integration tests.
# Source it after lib.sh:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/lib_tls.sh"
#
# What it gives:
#   pki_init                  a test CA and certificates in $TMP/pki ($PKI_*)
#   registry_start_tls NAME CERT KEY [--htpasswd FILE]
#                      [--token REALM SERVICE ISSUER BUNDLE] [--client-ca CA]
#                             a docker-registry speaking HTTPS (and checking
#                             Basic or token auth, client certificates)
#   certs_d_for NAME [--client]   $TMP/certs.d/ADDR/ca.crt for $OCISYNC_CERTS_DIRS
#   htpasswd_make FILE USER PASS  a bcrypt htpasswd entry (appended)
#   token_server_start NAME [--users FILE] [--expires S] [--tls CERT KEY] ...
#                             tests/tools/token_server.py
#   redirect_proxy_start NAME UPSTREAM TARGET [--tls CERT KEY] [--delay S] ...
#   recorder_start NAME IP UPSTREAM [--tls CERT KEY] [--upstream-creds U:P]
#                             tests/tools/redirect_proxy.py's two modes
#   helper_log_mark NAME, helper_log_lines/helper_log_count NAME ERE [SINCE]
#                             what a helper server logged (one line a request)
#   cred_helper_install NAME USER SECRET [SERVER]
#                             $TMP/bin/docker-credential-NAME
#   authfile_write FILE REGISTRY USER PASS, registry_url NAME,
#   skopeo_tls_digest REF ARGS..., push_image_tls LAYOUT REF ARGS...,
#   assert_stderr_matches ERE MSG, assert_no_secret SECRET MSG FILE...
#
# lib.sh's registry_log_sync / registry_log_count / registry_log_mark work
# for these registries too (they reach them with the CA and, for mutual
# TLS, the client certificate; a 401 counts as an answer).
#
# The developer's own credentials and certificates never matter: HOME,
# XDG_RUNTIME_DIR and OCISYNC_CERTS_DIRS point into $TMP, REGISTRY_AUTH_FILE,
# DOCKER_CONFIG and every OCISYNC_{,PULL_,PUSH_}{USERNAME,PASSWORD,TOKEN}
# are unset, and $TMP/bin (credential helpers) comes first in PATH. Tests
# that want one of them set it for the one command that needs it.
#
# Helper servers (token server, proxies, recorders) listen on loopback
# addresses only, at ports the kernel picks; their logs are $TMP/NAME.log
# (one line per request, never a secret) and they are stopped, before the
# registries, when the test ends. If the test fails, the last lines of each
# helper's log are printed.

TOKEN_SERVER="$OCISYNC_SOURCE_DIR/tests/tools/token_server.py"
REDIRECT_PROXY="$OCISYNC_SOURCE_DIR/tests/tools/redirect_proxy.py"

# --- a hermetic environment ---------------------------------------------------
export HOME="$TMP/home" XDG_RUNTIME_DIR="$TMP/run" OCISYNC_CERTS_DIRS="$TMP/certs.d"
mkdir -p "$HOME" "$XDG_RUNTIME_DIR" "$OCISYNC_CERTS_DIRS" "$TMP/bin"
chmod 700 "$XDG_RUNTIME_DIR"
unset REGISTRY_AUTH_FILE DOCKER_CONFIG XDG_CONFIG_HOME
for _tls_v in USERNAME PASSWORD TOKEN; do
  unset "OCISYNC_$_tls_v" "OCISYNC_PULL_$_tls_v" "OCISYNC_PUSH_$_tls_v"
done
unset _tls_v
export PATH="$TMP/bin:$PATH"

_TLS_HELPERS=() # names of running helper servers

_tls_cleanup() {
  local rc=$? n
  set +e
  if [ "$rc" -ne 0 ]; then
    for n in "${_TLS_HELPERS[@]}"; do
      printf '[%s] --- helper %s: last 15 log lines:\n' "$TEST_NAME" "$n" >&2
      tail -n 15 "$TMP/$n.log" 2>/dev/null | cut -c1-400 >&2
    done
  fi
  for n in "${_TLS_HELPERS[@]}"; do
    helper_stop "$n"
  done
  return "$rc"
}
# lib.sh's _lib_cleanup takes the test's status from $?: hand it on.
trap '_tls_cleanup || _lib_cleanup; _lib_cleanup' EXIT

_tls_upper() { printf '%s' "$1" | tr '[:lower:]' '[:upper:]'; }

# --- certificates -------------------------------------------------------------

# pki_init: makes, with the openssl command line, in $TMP/pki:
#   ca.crt ca.key            the test CA (exported PKI_CA_CERT, PKI_CA_KEY)
#   server.crt server.key    CA-signed, valid for IP:127.0.0.1, IP:127.0.0.2,
#                            DNS:localhost (PKI_SERVER_CERT, PKI_SERVER_KEY)
#   wrong.crt                CA-signed for DNS:wrong.example only, key
#                            server.key (PKI_WRONG_CERT, PKI_WRONG_KEY)
#   self.crt self.key        self-signed for the same names (PKI_SELF_*)
#   expired.crt              CA-signed for the same names, valid only in
#                            2020, key server.key (PKI_EXPIRED_*)
#   client.cert client.key   CA-signed client certificate (PKI_CLIENT_*)
#   token.crt token.key      RSA token signing certificate (PKI_TOKEN_*)
#   token-ec.crt token-ec.key  P-256 one (PKI_TOKEN_EC_*)
# and two docker-style certificate directories:
#   certdir-ca/ca.crt                           (PKI_CERTDIR_CA)
#   certdir-client/{ca.crt,client.cert,client.key}  (PKI_CERTDIR_CLIENT)
pki_init() {
  local d="$TMP/pki"
  mkdir -p "$d/db/new" "$d/certdir-ca" "$d/certdir-client"
  : >"$d/db/index.txt"
  echo 1000 >"$d/db/serial"
  cat >"$d/openssl.cnf" <<'EOF'
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = ocisync test CA
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ ca ]
default_ca = testca
[ testca ]
dir = ./db
database = $dir/index.txt
new_certs_dir = $dir/new
serial = $dir/serial
certificate = ./ca.crt
private_key = ./ca.key
default_md = sha256
default_days = 30
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
[ policy_any ]
commonName = supplied
[ server_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, IP:127.0.0.2, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ wrong_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ self_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, IP:127.0.0.2, DNS:localhost
subjectKeyIdentifier = hash
[ client_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ signer_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  (
    set -e
    cd "$d"
    rsa() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }
    sign() { # NAME CN EXTENSIONS [openssl ca args...]
      local name=$1 cn=$2 ext=$3 key=$4
      shift 4
      openssl req -new -key "$key" -subj "/CN=$cn" -out "$name.csr"
      openssl ca -batch -config openssl.cnf -extensions "$ext" -notext \
        -in "$name.csr" -out "$name.crt" "$@"
    }
    rsa ca.key
    openssl req -x509 -new -config openssl.cnf -extensions v3_ca -key ca.key -days 30 -out ca.crt
    rsa server.key
    sign server 127.0.0.1 server_ext server.key
    sign wrong wrong.example wrong_ext server.key
    sign expired 127.0.0.1 server_ext server.key -startdate 20200101000000Z -enddate 20210101000000Z
    rsa self.key
    openssl req -x509 -new -config openssl.cnf -extensions self_ext -key self.key -days 30 \
      -subj /CN=127.0.0.1 -out self.crt
    rsa client.key
    sign client ocisync-test-client client_ext client.key
    mv client.crt client.cert
    rsa token.key
    sign token ocisync-test-token-signer signer_ext token.key
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out token-ec.key 2>/dev/null
    sign token-ec ocisync-test-token-signer-ec signer_ext token-ec.key
    cp ca.crt certdir-ca/ca.crt
    cp ca.crt client.cert client.key certdir-client/
  ) >"$TMP/pki.log" 2>&1 || fail "pki_init: openssl failed: $(tail -n 5 "$TMP/pki.log")"
  # The expired certificate must really be expired, the others valid.
  openssl x509 -checkend 0 -noout -in "$d/expired.crt" >/dev/null &&
    fail "pki_init: expired.crt is not expired: $(openssl x509 -noout -dates -in "$d/expired.crt")"
  local c
  for c in ca.crt server.crt wrong.crt self.crt client.cert token.crt token-ec.crt; do
    openssl x509 -checkend 3600 -noout -in "$d/$c" >/dev/null || fail "pki_init: $c is not valid now"
  done
  openssl verify -CAfile "$d/ca.crt" -verify_ip 127.0.0.1 "$d/server.crt" >/dev/null 2>&1 ||
    fail "pki_init: server.crt does not verify for 127.0.0.1"
  export PKI_DIR="$d"
  export PKI_CA_CERT="$d/ca.crt" PKI_CA_KEY="$d/ca.key"
  export PKI_SERVER_CERT="$d/server.crt" PKI_SERVER_KEY="$d/server.key"
  export PKI_WRONG_CERT="$d/wrong.crt" PKI_WRONG_KEY="$d/server.key"
  export PKI_SELF_CERT="$d/self.crt" PKI_SELF_KEY="$d/self.key"
  export PKI_EXPIRED_CERT="$d/expired.crt" PKI_EXPIRED_KEY="$d/server.key"
  export PKI_CLIENT_CERT="$d/client.cert" PKI_CLIENT_KEY="$d/client.key"
  export PKI_TOKEN_CERT="$d/token.crt" PKI_TOKEN_KEY="$d/token.key"
  export PKI_TOKEN_EC_CERT="$d/token-ec.crt" PKI_TOKEN_EC_KEY="$d/token-ec.key"
  export PKI_CERTDIR_CA="$d/certdir-ca" PKI_CERTDIR_CLIENT="$d/certdir-client"
  log "pki in $d: CA, server (127.0.0.1, 127.0.0.2, localhost), wrong-name, self-signed, expired ($(openssl x509 -noout -enddate -in "$d/expired.crt")), client, token signers"
}

_tls_need_pki() {
  [ -n "${PKI_CA_CERT:-}" ] || fail "$1: call pki_init first"
}

# --- registries -------------------------------------------------------------

# registry_start_tls NAME CERT KEY [--htpasswd FILE] [--token REALM SERVICE
#   ISSUER ROOTCERTBUNDLE] [--client-ca CAFILE]: registry_start with
#   http.tls.certificate/key (and http.tls.clientcas: mutual TLS), and
#   auth.htpasswd (realm, path) or auth.token (realm, service, issuer,
#   rootcertbundle). Waits until https://127.0.0.1:PORT/v2/ answers (401
#   counts): with --cacert $PKI_CA_CERT when CERT verifies against it for
#   127.0.0.1, else (wrong-name, self-signed, expired) with --insecure; with
#   the client certificate when --client-ca is given.
registry_start_tls() {
  local name=$1 cert=$2 key=$3 auth="" clientca="" curlrc
  shift 3 || fail "usage: registry_start_tls NAME CERT KEY [options]"
  _tls_need_pki registry_start_tls
  while [ $# -gt 0 ]; do
    case $1 in
      --htpasswd)
        auth="auth:
  htpasswd:
    realm: ocisync-test
    path: $2"
        shift 2 ;;
      --token)
        auth="auth:
  token:
    realm: $2
    service: $3
    issuer: $4
    rootcertbundle: $5"
        shift 5 ;;
      --client-ca)
        clientca=$2
        shift 2 ;;
      *) fail "registry_start_tls: unknown option $1" ;;
    esac
  done
  curlrc="$TMP/$name.curlrc"
  if openssl verify -CAfile "$PKI_CA_CERT" -verify_ip 127.0.0.1 "$cert" >/dev/null 2>&1; then
    printf 'cacert = "%s"\n' "$PKI_CA_CERT" >"$curlrc"
  else
    printf 'insecure\n' >"$curlrc"
  fi
  if [ -n "$clientca" ]; then
    printf 'cert = "%s"\nkey = "%s"\n' "$PKI_CLIENT_CERT" "$PKI_CLIENT_KEY" >>"$curlrc"
  fi
  local extra="  tls:
    certificate: $cert
    key: $key"
  if [ -n "$clientca" ]; then
    extra+="
    clientcas:
      - $clientca"
  fi
  [ -z "$auth" ] || extra+="
$auth"
  _lib_registry_start "$name" https "$extra" "$curlrc"
}

# registry_url NAME: prints "https://127.0.0.1:PORT" (or http://).
registry_url() {
  local v="_LIB_URL_$1"
  [ -n "${!v:-}" ] || fail "registry $1 is not running"
  printf '%s\n' "${!v}"
}

# certs_d_for NAME [--client]: creates $TMP/certs.d/ADDR/ca.crt (the test CA)
# for the registry or helper server NAME (ADDR is $NAME_ADDR), plus
# client.cert/client.key with --client. $OCISYNC_CERTS_DIRS is $TMP/certs.d:
# from then on every ocisync run finds it.
certs_d_for() {
  local name=$1 var addr dir
  _tls_need_pki certs_d_for
  var="$(_tls_upper "$name")_ADDR"
  addr=${!var:-}
  [ -n "$addr" ] || fail "certs_d_for: \$$var is not set"
  dir="$TMP/certs.d/$addr"
  mkdir -p "$dir"
  cp "$PKI_CA_CERT" "$dir/ca.crt"
  if [ "${2:-}" = --client ]; then
    cp "$PKI_CLIENT_CERT" "$dir/client.cert"
    cp "$PKI_CLIENT_KEY" "$dir/client.key"
  fi
  log "certs.d entry $dir ($(cd "$dir" && echo *))"
}

# htpasswd_make FILE USER PASS: appends USER's bcrypt entry to FILE.
htpasswd_make() {
  htpasswd -Bbn "$2" "$3" 2>"$TMP/htpasswd.err" | grep -v '^$' >>"$1" ||
    fail "htpasswd -Bbn $2 failed: $(cat "$TMP/htpasswd.err")"
}

# --- helper servers ---------------------------------------------------------

# _tls_helper_start NAME ADDR_IP SCHEME CMD...: runs CMD (which takes
# --ready-file FILE last) in the background, waits for the port, exports
# NAME_PORT, NAME_ADDR (IP:PORT) and NAME_URL (SCHEME://IP:PORT).
_tls_helper_start() {
  local name=$1 ip=$2 scheme=$3 var ready pid port=""
  shift 3
  _lib_check_name "$name"
  var=$(_tls_upper "$name")
  ready="$TMP/$name.port"
  rm -f "$ready"
  : >>"$TMP/$name.log"
  "$@" --ready-file "$ready" </dev/null >>"$TMP/$name.out" 2>&1 &
  pid=$!
  echo "$pid" >>"$TMP/.pids"
  printf -v "_TLS_PID_$name" '%s' "$pid"
  _TLS_HELPERS+=("$name")
  for _ in $(seq 1 100); do
    if [ -s "$ready" ]; then
      port=$(cat "$ready")
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || fail "$name did not start: $(tail -n 5 "$TMP/$name.out" "$TMP/$name.log" 2>/dev/null)"
  printf -v "${var}_PORT" '%s' "$port"
  printf -v "${var}_ADDR" '%s' "$ip:$port"
  printf -v "${var}_URL" '%s' "$scheme://$ip:$port"
  export "${var}_PORT" "${var}_ADDR" "${var}_URL"
  log "$name listening on $scheme://$ip:$port (pid $pid, log $TMP/$name.log)"
}

# helper_stop NAME: stops a helper server (its log stays).
helper_stop() {
  local name=$1 v="_TLS_PID_$1" pid keep=() n
  pid=${!v:-}
  [ -n "$pid" ] || return 0
  stop_pid "$pid"
  printf -v "_TLS_PID_$name" '%s' ""
  for n in "${_TLS_HELPERS[@]}"; do
    [ "$n" = "$name" ] || keep+=("$n")
  done
  _TLS_HELPERS=("${keep[@]+"${keep[@]}"}")
}

# token_server_start NAME [--users FILE] [--expires SECONDS]
#   [--short-lived USER SECONDS] [--tls CERT KEY] [--no-anonymous] [--ec]
#   [-- EXTRA token_server.py ARGS]: starts
#   tests/tools/token_server.py on 127.0.0.1, signing with $PKI_TOKEN_KEY
#   (RS256; --ec: $PKI_TOKEN_EC_KEY, ES256) and the issuer
#   "ocisync-test-issuer". Exports NAME_PORT, NAME_ADDR, NAME_URL and
#   NAME_REALM ($NAME_URL/token). Its request log is $TMP/NAME.log, the
#   tokens it hands out $TMP/NAME.tokens (to check that none is printed).
#   --expires S sets expires_in to S and exp to S - 60 seconds from now, so
#   that distribution 2.8 (which allows 60 s of clock skew past exp) refuses
#   the token S seconds after it was issued. --short-lived USER S does the
#   same for USER's tokens only (others live 300 - 60 s): fixtures can be
#   pushed as another user with tokens that outlive the push.
#   A registry using it: registry_start_tls R CERT KEY --token
#   "$NAME_REALM" SERVICE "$TOKEN_ISSUER" "$PKI_CA_CERT".
TOKEN_ISSUER=ocisync-test-issuer
token_server_start() {
  local name=$1 args=() scheme=http key cert
  shift
  _tls_need_pki token_server_start
  key=$PKI_TOKEN_KEY
  cert=$PKI_TOKEN_CERT
  while [ $# -gt 0 ]; do
    case $1 in
      --users) args+=(--users "$2") && shift 2 ;;
      --expires) args+=(--expires "$2" --exp-leeway 60) && shift 2 ;;
      --short-lived) args+=(--user-expires "$2=$3" --exp-leeway 60) && shift 3 ;;
      --tls) args+=(--tls "$2" "$3") && scheme=https && shift 3 ;;
      --no-anonymous) args+=(--no-anonymous) && shift ;;
      --ec) key=$PKI_TOKEN_EC_KEY && cert=$PKI_TOKEN_EC_CERT && shift ;;
      --) shift && args+=("$@") && break ;;
      *) fail "token_server_start: unknown option $1" ;;
    esac
  done
  _tls_helper_start "$name" 127.0.0.1 "$scheme" python3 "$TOKEN_SERVER" \
    --key "$key" --cert "$cert" --issuer "$TOKEN_ISSUER" \
    --log "$TMP/$name.log" --tokens-file "$TMP/$name.tokens" "${args[@]}"
  local var url_v
  var=$(_tls_upper "$name")
  url_v="${var}_URL"
  printf -v "${var}_REALM" '%s' "${!url_v}/token"
  export "${var}_REALM"
}

# redirect_proxy_start NAME UPSTREAM TARGET [--tls CERT KEY] [--upstream-ca CA]
#   [--delay S [--serial]] [--no-redirect] [--require-auth]: starts redirect_proxy.py proxy on 127.0.0.1
#   in front of the registry at UPSTREAM (a URL: `registry_url R`). It
#   forwards every request unchanged but answers GET /v2/*/blobs/sha256:*
#   with 307 to TARGET/<same path> (TARGET: a URL such as $REC_URL, or an
#   IP:PORT that gets https:// when the proxy itself has --tls, else
#   http://; "-" with --no-redirect). UPSTREAM's CA defaults to
#   $PKI_CA_CERT. --require-auth: blob GETs without an Authorization header
#   are forwarded, not redirected (the registry challenges them first, as
#   real ones do). --delay S waits S seconds before forwarding each request
#   (--serial: those waits one at a time). Exports NAME_PORT, NAME_ADDR,
#   NAME_URL; log $TMP/NAME.log.
redirect_proxy_start() {
  local name=$1 upstream=$2 target=$3 args=() scheme=http
  shift 3
  while [ $# -gt 0 ]; do
    case $1 in
      --tls) args+=(--tls "$2" "$3") && scheme=https && shift 3 ;;
      --upstream-ca) args+=(--upstream-ca "$2") && shift 2 ;;
      --delay) args+=(--delay "$2") && shift 2 ;;
      --serial) args+=(--serial) && shift ;;
      --no-redirect) args+=(--no-redirect) && shift ;;
      --require-auth) args+=(--require-auth) && shift ;;
      *) fail "redirect_proxy_start: unknown option $1" ;;
    esac
  done
  case " ${args[*]-} " in *" --upstream-ca "*) ;; *) [ -z "${PKI_CA_CERT:-}" ] || args+=(--upstream-ca "$PKI_CA_CERT") ;; esac
  if [ "$target" != - ]; then
    case $target in http://* | https://*) ;; *) target="$scheme://$target" ;; esac
    args+=(--redirect-to "$target")
  fi
  _tls_helper_start "$name" 127.0.0.1 "$scheme" python3 "$REDIRECT_PROXY" proxy \
    --upstream "$upstream" --log "$TMP/$name.log" "${args[@]}"
}

# recorder_start NAME IP UPSTREAM [--tls CERT KEY] [--upstream-creds USER:PASS]
#   [--upstream-ca CA]: starts redirect_proxy.py recorder on IP (127.0.0.2,
#   say): it logs each request's headers (Authorization: whether and which
#   scheme) to $TMP/NAME.log and serves it from the registry at UPSTREAM,
#   with its own credentials. Exports NAME_PORT, NAME_ADDR, NAME_URL.
recorder_start() {
  local name=$1 ip=$2 upstream=$3 args=() scheme=http
  shift 3
  case $ip in 127.*) ;; *) fail "recorder_start: $ip is not a loopback address" ;; esac
  while [ $# -gt 0 ]; do
    case $1 in
      --tls) args+=(--tls "$2" "$3") && scheme=https && shift 3 ;;
      --upstream-creds) args+=(--upstream-creds "$2") && shift 2 ;;
      --upstream-ca) args+=(--upstream-ca "$2") && shift 2 ;;
      *) fail "recorder_start: unknown option $1" ;;
    esac
  done
  case " ${args[*]-} " in *" --upstream-ca "*) ;; *) [ -z "${PKI_CA_CERT:-}" ] || args+=(--upstream-ca "$PKI_CA_CERT") ;; esac
  _tls_helper_start "$name" "$ip" "$scheme" python3 "$REDIRECT_PROXY" recorder --addr "$ip" \
    --upstream "$upstream" --log "$TMP/$name.log" "${args[@]}"
}

# helper_log_mark NAME: prints how many requests a helper server (token
# server, proxy, recorder) has logged; pass it as SINCE below. Each logs a
# request before its client can have the whole response, so no sync is
# needed once the client is done.
helper_log_mark() {
  grep -cE ' method=' "$TMP/$1.log" 2>/dev/null || true
}

# helper_log_lines NAME ERE [SINCE]: prints the request lines logged after
# the first SINCE (default 0) that match the extended regex ERE.
helper_log_lines() {
  grep -E ' method=' "$TMP/$1.log" 2>/dev/null | tail -n "+$((${3:-0} + 1))" | { grep -E -- "$2" || true; }
}

# helper_log_count NAME ERE [SINCE]: counts them.
helper_log_count() {
  helper_log_lines "$@" | wc -l | tr -d ' '
}

# --- credentials --------------------------------------------------------------

# cred_helper_install NAME USER SECRET [SERVER]: writes $TMP/bin/docker-credential-NAME
# (first in PATH). `get` reads a server URL on stdin and answers
# {"ServerURL":..,"Username":USER,"Secret":SECRET}, or, when SERVER is given
# and the URL (less any scheme and trailing slash) is another, "credentials
# not found in native keychain" with exit 1, as docker's helpers do. Each
# call is logged (action and URL, never the secret) to
# $TMP/cred-helper-NAME.log.
cred_helper_install() {
  local name=$1 user=$2 secret=$3 server=${4:-} f="$TMP/bin/docker-credential-$1"
  python3 - "$f" "$user" "$secret" "$server" "$TMP/cred-helper-$name.log" <<'EOF'
import json, sys
path, user, secret, server, logf = sys.argv[1:]
script = '''#!/usr/bin/env python3
import json, sys
USER, SECRET, SERVER, LOG = %s, %s, %s, %s
action = sys.argv[1] if len(sys.argv) > 1 else ""
data = sys.stdin.read()
url = data.strip() if action in ("get", "erase") else ""
with open(LOG, "a") as f:
    f.write("%%s %%s\\n" %% (action or "-", url or "-"))
def bare(u):
    for p in ("https://", "http://"):
        if u.startswith(p):
            u = u[len(p):]
    return u.rstrip("/")
if action == "get":
    if SERVER and bare(url) != bare(SERVER):
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps({"ServerURL": url, "Username": USER, "Secret": SECRET}))
elif action in ("store", "erase"):
    pass
elif action == "list":
    print(json.dumps({SERVER: USER} if SERVER else {}))
else:
    sys.stderr.write("unknown action\\n")
    sys.exit(1)
''' % (json.dumps(user), json.dumps(secret), json.dumps(server), json.dumps(logf))
with open(path, "w") as f:
    f.write(script)
EOF
  chmod 755 "$f"
  : >>"$TMP/cred-helper-$name.log"
  log "credential helper docker-credential-$name for ${server:-any server} (log $TMP/cred-helper-$name.log)"
}

# authfile_write FILE REGISTRY USER PASS: writes a docker-style auth file
# {"auths": {REGISTRY: {"auth": base64(USER:PASS)}}}.
authfile_write() {
  mkdir -p "$(dirname "$1")"
  python3 - "$@" <<'EOF'
import base64, json, sys
path, reg, user, pw = sys.argv[1:]
with open(path, "w") as f:
    json.dump({"auths": {reg: {"auth": base64.b64encode(f"{user}:{pw}".encode()).decode()}}}, f, indent=1)
EOF
}

# assert_stderr_matches ERE MSG: the last ocisync run's stderr matches the
# case-insensitive extended regex ERE.
assert_stderr_matches() {
  if ! grep -qiE -- "$1" "$OCISYNC_STDERR"; then
    fail "$2: stderr does not match /$1/i: $(head -c 1500 "$OCISYNC_STDERR")"
  fi
  pass "$2 ($(grep -m1 -oiE -- "$1" "$OCISYNC_STDERR"))"
}

# assert_no_secret SECRET MSG FILE...: none of the files contains SECRET.
assert_no_secret() {
  local secret=$1 msg=$2 f
  shift 2
  for f in "$@"; do
    if grep -qF -- "$secret" "$f"; then
      fail "$msg: a secret appears in $(basename "$f"): $(grep -nF -- "$secret" "$f" | head -n 3 | cut -c1-200)"
    fi
  done
  pass "$msg"
}

# --- skopeo with TLS and credentials ----------------------------------------

# skopeo_tls_digest REF SKOPEO_ARGS...: prints the manifest digest of
# docker://REF read with skopeo inspect --raw SKOPEO_ARGS (--cert-dir DIR,
# --creds U:P, --tls-verify=...), hashed from the exact bytes served.
skopeo_tls_digest() {
  local ref=$1 f="$TMP/raw.$RANDOM$RANDOM"
  shift
  skopeo inspect --raw "$@" "docker://$ref" >"$f" 2>"$TMP/skopeo-inspect.err" ||
    fail "skopeo inspect --raw $* docker://$ref failed: $(cat "$TMP/skopeo-inspect.err")"
  printf 'sha256:%s\n' "$(sha256sum <"$f" | cut -d' ' -f1)"
  rm -f "$f"
}

# push_image_tls LAYOUT_DIR REF SKOPEO_DEST_ARGS...: pushes an OCI layout
# to docker://REF, digests preserved, with skopeo copy SKOPEO_DEST_ARGS
# (--dest-cert-dir DIR, --dest-creds U:P).
push_image_tls() {
  local dir=$1 ref=$2
  shift 2
  log "push $dir -> $ref"
  skopeo copy --all --preserve-digests "$@" "oci:$dir" "docker://$ref" \
    >>"$TMP/skopeo-push.log" 2>&1 || fail "skopeo push of $dir to $ref failed: $(tail -n 5 "$TMP/skopeo-push.log")"
}
