#!/usr/bin/env python3
"""Front proxy and recording server for redirect tests (stdlib only).

Two modes, both threaded HTTP/1.1 servers on a loopback address that
stream bodies in 64 KiB pieces (request bodies with Content-Length or
chunked, responses with Content-Length or re-chunked):

  redirect_proxy.py proxy --upstream URL --redirect-to BASE [options]
      Forwards every request to the registry at URL unchanged (method, path,
      query, headers - Host and Authorization included - and body) EXCEPT
      GET /v2/<name>/blobs/sha256:<hex>, which it answers itself with
          307 Temporary Redirect
          Location: BASE/v2/<name>/blobs/sha256:<hex>[?query]
      as registries backed by object storage do. With --require-auth, a
      blob GET without an Authorization header is forwarded instead, so that
      the registry challenges it as a real one would before redirecting.
      --no-redirect forwards
      those too (a plain proxy); --delay S sleeps S seconds before
      forwarding each request, and with --serial those sleeps are taken one
      at a time, so that N requests take at least N x S seconds however
      many a client sends at once (to make a copy outlive a token).

  redirect_proxy.py recorder --upstream URL [--upstream-creds USER:PASS]
      Serves what it is asked by forwarding it to the registry at URL, as
      the object store behind a redirect would. It drops the client's
      Authorization header and, with --upstream-creds, sends its own Basic
      credentials instead (standing in for a presigned URL), so that the
      registry can serve a client that rightly sent no credentials.

Both log one line per request to --log:
    method=GET path=/v2/... query=... authorization=no auth=none
    headers=Accept,User-Agent,... action=redirect|forward status=307
"authorization" says whether the request carried an Authorization header
and "auth" its scheme (Basic, Bearer); the value is never written.

Options common to both: --addr (a loopback address, default 127.0.0.1),
--port (default: one the kernel picks), --ready-file (the port is written
there once listening), --tls CERT KEY (serve HTTPS), --upstream-ca FILE
(CA for an https:// upstream).
"""

import argparse
import base64
import http.client
import http.server
import os
import re
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse

import toolslib

PIECE = 64 * 1024
BLOB_GET = re.compile(r"^/v2/.+/blobs/sha256:[0-9a-f]{64}$")
# Hop-by-hop headers (RFC 9110 7.6.1) plus Expect, which the server side
# already answered with 100 Continue.
HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
       "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "expect"}


class Config:
    args = None
    upstream = None  # urllib.parse.SplitResult
    upstream_ctx = None
    log_f = None
    lock = threading.Lock()
    serial_lock = threading.Lock()


def log(line):
    toolslib.log_line(Config.log_f, Config.lock, line)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ocisync-test-proxy"

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(60)
            self.request.do_handshake()
        super().setup()

    def log_message(self, fmt, *args):
        pass

    # -- logging ---------------------------------------------------------
    def note(self, action, status):
        path, _, query = self.path.partition("?")
        h = self.headers.get("Authorization")
        scheme = "none" if h is None else (h.split(" ", 1)[0] or "empty")
        if not scheme.isalnum():
            scheme = "other"
        names = ",".join(sorted({k for k in self.headers.keys()}))
        log(f"method={self.command} path={path} query={query or '-'} "
            f"authorization={'no' if h is None else 'yes'} auth={scheme} headers={names} "
            f"action={action} status={status}")

    # -- request bodies ------------------------------------------------------
    def body_pieces(self):
        """Yields the request body in pieces, de-chunked if need be."""
        return toolslib.body_pieces(self.rfile, self.headers, PIECE)

    def has_body(self):
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower() or \
            int(self.headers.get("Content-Length") or 0) > 0

    # -- forwarding ------------------------------------------------------
    def forward(self, action, drop_auth=False, basic=None):
        up = Config.upstream
        if up.scheme == "https":
            conn = http.client.HTTPSConnection(up.hostname, up.port or 443, timeout=60,
                                               context=Config.upstream_ctx)
        else:
            conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=60)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            for k, v in self.headers.items():
                lk = k.lower()
                if lk in HOP or (lk == "authorization" and (drop_auth or basic)):
                    continue
                conn.putheader(k, v)
            if basic:
                conn.putheader("Authorization", "Basic " + base64.b64encode(basic.encode()).decode())
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            toolslib.send_pieces(conn.send, self.body_pieces(), chunked)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            self.close_connection = True
            self.note(action, 502)
            body = f"upstream error: {e}\n".encode()
            self.send_response(502)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        try:
            # Logged before the client can have the whole response, so a
            # test that reads the log after its client finished sees it.
            self.note(action, resp.status)
            self.send_response_only(resp.status, resp.reason)
            length = resp.getheader("Content-Length")
            no_body = self.command == "HEAD" or resp.status in (204, 304) or resp.status < 200
            for k, v in resp.getheaders():
                if k.lower() not in HOP:
                    self.send_header(k, v)
            rechunk = not no_body and length is None
            if rechunk:
                self.send_header("Transfer-Encoding", "chunked")
            if resp.getheader("Connection", "").lower() == "close" and not rechunk and length is None:
                self.close_connection = True
            self.end_headers()
            if not no_body:
                toolslib.send_pieces(self.wfile.write, toolslib.response_pieces(resp, PIECE), rechunk)
            self.wfile.flush()
        finally:
            conn.close()

    def redirect(self):
        target = Config.args.redirect_to.rstrip("/") + self.path
        # Drain a (unexpected) body so that the connection stays usable.
        for _ in self.body_pieces():
            pass
        self.note("redirect", 307)
        self.send_response_only(307, "Temporary Redirect")
        self.send_header("Location", target)
        self.send_header("Content-Length", "0")
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        self.end_headers()

    def handle_any(self):
        a = Config.args
        if a.delay and a.serial:
            with Config.serial_lock:
                time.sleep(a.delay)
        elif a.delay:
            time.sleep(a.delay)
        if a.mode == "proxy":
            if self.command == "GET" and not a.no_redirect and BLOB_GET.match(self.path.partition("?")[0]) and \
                    (not a.require_auth or self.headers.get("Authorization") is not None):
                self.redirect()
            else:
                self.forward("forward")
        else:
            self.forward("serve", drop_auth=True, basic=a.upstream_creds)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        log(f"connection-error peer={client_address[0]}:{client_address[1]} error={type(exc).__name__}:{exc}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["proxy", "recorder"])
    ap.add_argument("--addr", default="127.0.0.1", help="loopback address to listen on")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ready-file")
    ap.add_argument("--upstream", required=True, help="http(s)://127.0.0.1:PORT of the registry")
    ap.add_argument("--upstream-ca", help="CA file for an https upstream")
    ap.add_argument("--upstream-creds", help="recorder: USER:PASS it sends upstream (Basic)")
    ap.add_argument("--redirect-to", help="proxy: http(s)://HOST:PORT blob GETs are redirected to")
    ap.add_argument("--no-redirect", action="store_true", help="proxy: forward blob GETs too")
    ap.add_argument("--require-auth", action="store_true",
                    help="proxy: forward blob GETs without Authorization (the registry challenges them)")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds to wait before each request")
    ap.add_argument("--serial", action="store_true",
                    help="take the --delay waits one at a time, so N requests take N x delay however parallel")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--log", help="request log (default stderr)")
    args = ap.parse_args()
    if args.mode == "proxy" and not args.redirect_to and not args.no_redirect:
        ap.error("proxy needs --redirect-to (or --no-redirect)")
    if not (args.addr.startswith("127.") or args.addr == "::1"):
        ap.error("refusing to listen on a non-loopback address")

    Config.args = args
    Config.upstream = urllib.parse.urlsplit(args.upstream)
    if Config.upstream.scheme == "https":
        Config.upstream_ctx = ssl.create_default_context(cafile=args.upstream_ca)
    Config.log_f = open(args.log, "a", buffering=1) if args.log else sys.stderr

    httpd = Server((args.addr, args.port), Handler)
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    port = httpd.server_address[1]
    log(f"listening {'https' if args.tls else 'http'}://{args.addr}:{port} mode={args.mode} "
        f"upstream={args.upstream} redirect_to={args.redirect_to or '-'} delay={args.delay}")
    toolslib.serve(httpd, args.ready_file)


if __name__ == "__main__":
    main()
