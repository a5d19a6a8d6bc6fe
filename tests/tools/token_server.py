#!/usr/bin/env python3
"""A Docker registry token server for integration tests (stdlib only).

Implements the token protocol a registry configured with `auth: token:`
points clients at (https://distribution.github.io/distribution/spec/auth/token/):

    GET /token?service=S&scope=repository:NAME:pull,push[&scope=...]
        [&account=U][&offline_token=true][&client_id=C]
        with optional "Authorization: Basic base64(user:password)"
    -> 200 {"token": JWT, "access_token": JWT, "expires_in": N,
            "issued_at": RFC3339[, "refresh_token": R]}

    POST /token (OAuth2, application/x-www-form-urlencoded)
        grant_type=password&username=U&password=P&service=S&scope=...
        grant_type=refresh_token&refresh_token=R&service=S&scope=...
        [&access_type=offline][&client_id=C]
    -> 200 {"access_token": JWT, "expires_in": N, "issued_at": ...,
            "scope": ...[, "refresh_token": R]}

Users come from --users (lines "user:password", plain text). An
authenticated user is granted every action it asks for (pull, push, delete,
*); an anonymous client gets pull only, or a 401 with --no-anonymous. Wrong
credentials get a 401.

The JWT is what distribution 2.8 (registry/auth/token/token.go) verifies:
header {"typ":"JWT","alg":"RS256"|"ES256","x5c":[leaf, intermediates...]}
(standard base64 DER; the registry verifies the chain against its
`rootcertbundle` and the signature with the leaf's key), claims iss (must
equal the registry's `issuer`), sub, aud (a string; must equal its
`service`), exp, nbf, iat, jti and access=[{type,name,actions}]. The
signature is made by the openssl command line (no third-party Python
modules): RS256 is `openssl dgst -sha256 -sign` as is (PKCS#1 v1.5), ES256
converts openssl's DER ECDSA signature to the raw r||s JOSE wants.

--user-expires USER=SECONDS gives one user's tokens another lifetime, so
that a test can push its fixtures with long-lived tokens and let the client
under test have short-lived ones.

distribution 2.8 accepts a token up to 60 s after its exp (token.Leeway).
--exp-leeway 60 subtracts that from exp, so that the registry really
refuses a token --expires seconds after it was issued: that is how a test
makes a token expire in the middle of a copy (clients treat an expires_in
under 60 as 60, as Docker does, so they only notice through the 401).

Every request is logged, one line each, to --log: method, path, the query
(password and refresh_token values replaced by ***), whether an
Authorization header came and its scheme (never its value), the user name,
the requested scopes, what was granted and the status. The secrets it hands
out (tokens, refresh tokens) go to --tokens-file only, so that a test can
check that a client never prints them.

The port is chosen by the kernel unless --port is given; once listening,
the server writes the port to --ready-file.
"""

import argparse
import base64
import binascii
import http.server
import json
import math
import os
import secrets
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

import toolslib

ALLOWED_ACTIONS = ("pull", "push", "delete", "*")
MAX_BODY = 64 * 1024


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def read_pem_certs(path):
    """Returns the DER bytes of each certificate in a PEM file."""
    out = []
    with open(path) as f:
        text = f.read()
    marker_begin, marker_end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    pos = 0
    while True:
        start = text.find(marker_begin, pos)
        if start < 0:
            break
        end = text.find(marker_end, start)
        if end < 0:
            raise ValueError(f"{path}: unterminated certificate")
        body = text[start + len(marker_begin):end]
        out.append(base64.b64decode("".join(body.split())))
        pos = end + len(marker_end)
    if not out:
        raise ValueError(f"{path}: no certificate")
    return out


def der_ecdsa_to_raw(der, size=32):
    """ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } -> r || s."""

    def read_len(buf, i):
        n = buf[i]
        i += 1
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(buf[i:i + k], "big")
            i += k
        return n, i

    if der[0] != 0x30:
        raise ValueError("ECDSA signature is not a DER SEQUENCE")
    _, i = read_len(der, 1)
    parts = []
    for _ in range(2):
        if der[i] != 0x02:
            raise ValueError("ECDSA signature: INTEGER expected")
        n, i = read_len(der, i + 1)
        v = int.from_bytes(der[i:i + n], "big")
        i += n
        parts.append(v.to_bytes(size, "big"))
    return b"".join(parts)


def detect_alg(key_path):
    text = subprocess.run(["openssl", "pkey", "-in", key_path, "-noout", "-text"],
                          check=True, capture_output=True, text=True).stdout
    if "prime256v1" in text or "P-256" in text:
        return "ES256"
    if "modulus" in text.lower():
        return "RS256"
    raise ValueError(f"{key_path}: neither an RSA nor a P-256 key")


class Signer:
    def __init__(self, key_path, cert_path, chain_path, alg):
        self.key_path = key_path
        self.alg = alg or detect_alg(key_path)
        if self.alg not in ("RS256", "ES256"):
            raise ValueError(f"unsupported --alg {self.alg}")
        ders = read_pem_certs(cert_path)
        if chain_path:
            ders += read_pem_certs(chain_path)
        self.x5c = [base64.b64encode(d).decode("ascii") for d in ders]

    def sign(self, signing_input):
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key_path],
                             input=signing_input, check=True, capture_output=True).stdout
        if self.alg == "ES256":
            sig = der_ecdsa_to_raw(sig)
        return sig

    def jwt(self, claims):
        header = {"typ": "JWT", "alg": self.alg, "x5c": self.x5c}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        return signing_input + "." + b64url(self.sign(signing_input.encode("ascii")))


def parse_scope(text):
    """"repository:a/b:pull,push" -> ("repository", "a/b", ["pull", "push"]).
    The name may hold colons (a registry:port prefix); type and actions not."""
    first = text.find(":")
    last = text.rfind(":")
    if first < 0 or last == first:
        return None
    typ, name, actions = text[:first], text[first + 1:last], text[last + 1:]
    if not typ or not name:
        return None
    return typ, name, [a for a in actions.split(",") if a]


class State:
    def __init__(self, args):
        self.args = args
        self.users = {}
        if args.users:
            with open(args.users) as f:
                for line in f:
                    line = line.rstrip("\r\n")
                    if not line or line.startswith("#") or ":" not in line:
                        continue
                    u, p = line.split(":", 1)
                    self.users[u] = p
        self.user_expires = {}
        for item in args.user_expires or []:
            u, sep, n = item.rpartition("=")
            if not sep or not u:
                raise SystemExit(f"--user-expires {item!r}: want USER=SECONDS")
            self.user_expires[u] = int(n)
        self.signer = Signer(args.key, args.cert, args.chain, args.alg)
        self.lock = threading.Lock()
        self.refresh = {}  # refresh token -> user
        self.log_f = open(args.log, "a", buffering=1) if args.log else sys.stderr
        self.tokens_f = open(args.tokens_file, "a", buffering=1) if args.tokens_file else None

    def log(self, line):
        with self.lock:
            now = time.time()
            self.log_f.write(time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d} " + line + "\n")
            self.log_f.flush()

    def record_secret(self, kind, value):
        if self.tokens_f:
            with self.lock:
                self.tokens_f.write(f"{kind} {value}\n")
                self.tokens_f.flush()

    def grant(self, user, scopes):
        """Returns the access list for the requested scopes."""
        access = []
        for s in scopes:
            p = parse_scope(s)
            if p is None:
                continue
            typ, name, actions = p
            if user is None:
                if typ != "repository":
                    continue
                allowed = [a for a in actions if a == "pull"]
            else:
                allowed = [a for a in actions if a in ALLOWED_ACTIONS]
            # One entry per resource, actions merged in request order.
            for e in access:
                if e["type"] == typ and e["name"] == name:
                    e["actions"] += [a for a in allowed if a not in e["actions"]]
                    break
            else:
                access.append({"type": typ, "name": name, "actions": list(dict.fromkeys(allowed))})
        return access

    def issue(self, user, service, access):
        t = time.time()
        now = int(t)
        expires = self.user_expires.get(user, self.args.expires)
        claims = {
            "iss": self.args.issuer,
            "sub": user or "",
            "aud": service,
            # Rounded up: the token lives at least `expires` seconds.
            "exp": math.ceil(t) + expires - self.args.exp_leeway,
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        token = self.signer.jwt(claims)
        self.record_secret("token", token)
        return token, expires, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))

    def new_refresh_token(self, user):
        r = secrets.token_urlsafe(24)
        with self.lock:
            self.refresh[r] = user
        self.record_secret("refresh_token", r)
        return r


def split_scopes(values):
    out = []
    for v in values:
        out += [s for s in v.split(" ") if s]
    return out


def redact_query(query):
    parts = []
    for item in query.split("&") if query else []:
        k, sep, _ = item.partition("=")
        if k.lower() in ("password", "refresh_token"):
            parts.append(f"{k}=***")
        else:
            parts.append(item)
    return "&".join(parts)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ocisync-test-token-server"
    state = None  # set by main
    service = None  # of the request being handled, for the log

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(30)
            self.request.do_handshake()
        super().setup()

    def log_message(self, fmt, *args):  # silence the default access log
        pass

    def reply(self, status, obj, extra_headers=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def auth_scheme(self):
        h = self.headers.get("Authorization")
        if h is None:
            return "none", None
        scheme = h.split(" ", 1)[0] if h.strip() else "empty"
        return (scheme if scheme.isalnum() else "other"), h

    def basic_user(self, header):
        """Returns (user, ok) for a Basic header; ok False for bad credentials."""
        try:
            raw = base64.b64decode(header.split(" ", 1)[1].strip(), validate=True).decode()
        except (IndexError, binascii.Error, UnicodeDecodeError):
            return "?", False
        user, sep, password = raw.partition(":")
        if not sep:
            return user, False
        return user, self.state.users.get(user) == password and user in self.state.users

    def log_line(self, status, scheme, user, scopes, granted, extra=""):
        path, _, query = self.path.partition("?")
        fields = [f"method={self.command}", f"path={path}", f"query={redact_query(query) or '-'}",
                  f"authorization={'yes' if scheme != 'none' else 'no'}", f"auth={scheme}",
                  f"user={user or '-'}"]
        fields += [f"scope={s}" for s in scopes]
        fields.append("granted=" + (";".join(f"{a['type']}:{a['name']}:{','.join(a['actions'])}"
                                             for a in granted) or "-"))
        fields.append(f"service={self.service or '-'}")
        if extra:
            fields.append(extra)
        fields.append(f"status={status}")
        self.state.log(" ".join(fields))

    def unauthorized(self, scheme, user, scopes, why):
        self.log_line(401, scheme, user, scopes, [], f"error={why.replace(' ', '_')}")
        self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": why}]},
                   [("WWW-Authenticate", 'Basic realm="ocisync test token server"')])

    def do_GET(self):
        self.service = None
        path, _, query = self.path.partition("?")
        scheme, header = self.auth_scheme()
        if path != "/token":
            self.log_line(404, scheme, None, [], [])
            self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "no such path"}]})
            return
        q = urllib.parse.parse_qs(query, keep_blank_values=True)
        scopes = split_scopes(q.get("scope", []))
        service = self.service = (q.get("service") or [""])[0]
        user = None
        if scheme == "Basic":
            user, ok = self.basic_user(header)
            if not ok:
                self.unauthorized(scheme, user, scopes, "invalid username or password")
                return
        elif scheme != "none":
            self.unauthorized(scheme, None, scopes, f"unsupported authorization scheme {scheme}")
            return
        if user is None and self.state.args.no_anonymous:
            self.unauthorized(scheme, None, scopes, "authentication required")
            return
        access = self.state.grant(user, scopes)
        token, expires, issued = self.state.issue(user, service, access)
        resp = {"token": token, "access_token": token, "expires_in": expires, "issued_at": issued}
        if user is not None and (q.get("offline_token") or [""])[0] == "true":
            resp["refresh_token"] = self.state.new_refresh_token(user)
        self.log_line(200, scheme, user, scopes, access)
        self.reply(200, resp)

    def do_POST(self):
        self.service = None
        path, _, _ = self.path.partition("?")
        scheme, _ = self.auth_scheme()
        length = int(self.headers.get("Content-Length") or 0)
        if path != "/token" or length > MAX_BODY:
            self.log_line(404 if path != "/token" else 413, scheme, None, [], [])
            self.reply(404 if path != "/token" else 413, {"error": "invalid_request"})
            return
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"),
                                     keep_blank_values=True)

        def f(k):
            return (form.get(k) or [""])[0]

        scopes = split_scopes(form.get("scope", []))
        self.service = f("service")
        grant_type = f("grant_type")
        user = None
        if grant_type == "password":
            user = f("username")
            if self.state.users.get(user) != f("password") or user not in self.state.users:
                self.log_line(401, scheme, user, scopes, [], "grant_type=password error=invalid_grant")
                self.reply(401, {"error": "invalid_grant", "error_description": "invalid username or password"})
                return
        elif grant_type == "refresh_token":
            with self.state.lock:
                user = self.state.refresh.get(f("refresh_token"))
            if user is None:
                self.log_line(401, scheme, None, scopes, [], "grant_type=refresh_token error=invalid_grant")
                self.reply(401, {"error": "invalid_grant", "error_description": "unknown refresh token"})
                return
        else:
            self.log_line(400, scheme, None, scopes, [], f"grant_type={grant_type or '-'} error=unsupported_grant_type")
            self.reply(400, {"error": "unsupported_grant_type"})
            return
        access = self.state.grant(user, scopes)
        token, expires, issued = self.state.issue(user, f("service"), access)
        resp = {"access_token": token, "expires_in": expires, "issued_at": issued,
                "scope": " ".join(scopes)}
        if f("access_type") == "offline":
            resp["refresh_token"] = self.state.new_refresh_token(user)
        self.log_line(200, scheme, user, scopes, access, f"grant_type={grant_type}")
        self.reply(200, resp)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        Handler.state.log(f"connection-error peer={client_address[0]}:{client_address[1]} error={type(exc).__name__}:{exc}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--addr", default="127.0.0.1", help="address to listen on (loopback only)")
    ap.add_argument("--port", type=int, default=0, help="port (default: one the kernel picks)")
    ap.add_argument("--ready-file", help="write the port here once listening")
    ap.add_argument("--key", required=True, help="PEM private key that signs tokens (RSA or P-256)")
    ap.add_argument("--cert", required=True, help="PEM certificate of that key (x5c[0])")
    ap.add_argument("--chain", help="PEM intermediates to append to x5c")
    ap.add_argument("--alg", choices=["RS256", "ES256"], help="default: from the key type")
    ap.add_argument("--issuer", default="ocisync-test-issuer", help="iss claim")
    ap.add_argument("--users", help="file of user:password lines")
    ap.add_argument("--no-anonymous", action="store_true", help="401 for requests without credentials")
    ap.add_argument("--expires", type=int, default=300, help="expires_in, seconds (default 300)")
    ap.add_argument("--user-expires", action="append", metavar="USER=SECONDS",
                    help="expires_in for this user's tokens instead of --expires (repeatable)")
    ap.add_argument("--exp-leeway", type=int, default=0,
                    help="subtract this from exp (60 makes distribution 2.8 refuse the token after --expires s)")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve HTTPS with this certificate")
    ap.add_argument("--log", help="request log (default stderr)")
    ap.add_argument("--tokens-file", help="append every token and refresh token handed out here")
    args = ap.parse_args()

    if not (args.addr.startswith("127.") or args.addr in ("::1", "localhost")):
        ap.error("refusing to listen on a non-loopback address")
    Handler.state = State(args)
    httpd = Server((args.addr, args.port), Handler)
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    port = httpd.server_address[1]
    Handler.state.log(f"listening {'https' if args.tls else 'http'}://{args.addr}:{port} alg={Handler.state.signer.alg} "
                      f"issuer={args.issuer} expires={args.expires} exp_leeway={args.exp_leeway}")
    toolslib.serve(httpd, args.ready_file)


if __name__ == "__main__":
    main()
