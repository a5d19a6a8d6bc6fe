#!/usr/bin/env python3
"""Hostile registry for ocisync's security tests (stdlib only).

    hostile.py --upstream http://127.0.0.1:PORT [OPTIONS...]
               [--log FILE] [--ready-file FILE] [--addr IP] [--port N]
    hostile.py --catcher basic|bearer
               [--log FILE] [--ready-file FILE] [--addr IP] [--port N]

A threaded HTTP/1.1 server on a loopback address that fronts a real registry
(--upstream, plain HTTP; "127.0.0.1:PORT" gets http://) and forwards every
request to it unchanged - method, path and query, every header but the
hop-by-hop ones (so Host stays the server's own address and the registry's
upload Locations keep pointing here), and the body - and relays the response
unchanged, streaming bodies in both directions in 64 KiB pieces (nothing is
ever buffered whole). One upstream connection per request; the client's
connection is kept alive. EXCEPT where one of the options below says
otherwise; several may be combined in one process. Without --upstream,
requests that would be forwarded are answered 502 (action=no-upstream).

A request PATTERN is "METHODS PATH_RE" (one argument): METHODS is "GET",
"HEAD|GET" ... or "*"; PATH_RE a Python regex matched with re.fullmatch
against the path WITHOUT the query, e.g. "GET /v2/.*/blobs/.*".
SELF in a redirect TARGET_BASE ("SELF" or "SELF/prefix") stands for
http://localhost:<this server's port> (http://NAME:<port> with
--host-is-other NAME): the same port under another host name.

Order in which a request is looked at (the first that applies answers it):
--catcher; --host-is-other; --basic (a /v2 request without the right
credentials is challenged); --retry-after; --hang; the self-served
manifests (--big-index, --huge-layers); the listings (--catalog, --tags);
--redirect-blobs; --redirect-manifest-put; --swap-manifest;
--no-head-digest; plain forwarding. So the hostile behaviours act on
authenticated requests only when --basic is given.

AUTH / REDIRECTS
  --basic USER:PASS
      every /v2 request must carry "Authorization: Basic base64(USER:PASS)";
      without it, or with other credentials, it is answered 401 with
      WWW-Authenticate: Basic realm="hostile" and a distribution-style JSON
      error (action=challenge). Good ones go on, without the Authorization
      header when forwarded. Other paths are not checked.
  --redirect-blobs TARGET_BASE
      GET /v2/<name>/blobs/<digest> is answered 307 with
      Location: TARGET_BASE/v2/<name>/blobs/<digest>[?query] (action=redirect).
  --redirect-manifest-put TARGET_BASE
      PUT /v2/<name>/manifests/<ref>: the body is read and dropped, then 307
      to TARGET_BASE + the same path and query (action=redirect-put).
  --catcher basic|bearer
      another mode (no upstream): the host a redirect points to. EVERY
      request (GET /token included) is answered 401 with
      WWW-Authenticate: Basic realm="catcher", or
      Bearer realm="http://<its addr:port>/token",service="catcher"
      (action=caught). The log shows whether an Authorization header ever
      arrived.
  --host-is-other NAME [--catcher-scheme basic|bearer]
      a request whose Host header names NAME (the host name, any port,
      case-insensitive; e.g. "localhost" while the test calls the server
      127.0.0.1) is treated as if it had reached a catcher: 401 with a Basic
      challenge (realm="catcher"), or a Bearer one (realm
      "http://NAME:<port>/token", service "catcher") with
      --catcher-scheme bearer; action=caught, never forwarded. With NAME
      "localhost" the server also listens on [::1] at the same port if it
      can, in case localhost resolves to ::1 first.
      --redirect-blobs SELF then makes a 307 to localhost:<the same port>.

MANIFEST DIGESTS
  --swap-manifest FROM=TO  (repeatable)
      GET /v2/<name>/manifests/FROM (FROM and TO: tags or digests in the
      repository of the request) is answered with the upstream's GET
      response for /v2/<name>/manifests/TO: its status, body and
      Content-Type (action=swap from=FROM to=TO digest=<header sent>|-).
      HEAD requests are NOT swapped.
  --swap-header from|to|none  (default from)
      the Docker-Content-Digest a swapped GET carries: "from" the one the
      real FROM has (the upstream's answer to a HEAD of FROM, with the
      client's Accept; FROM itself if that has none and FROM is a digest),
      "to" the one TO has, "none" no header at all.
  --no-head-digest
      HEAD /v2/<name>/manifests/<ref> is forwarded but the answer loses its
      Docker-Content-Digest (action=forward-no-digest).

REQUESTS THAT NEVER END
  --hang KIND  applies to requests matching --hang-match PATTERN (default
  "* .*"); the upstream never sees them (but for trickle-body). The request
  body is read and dropped first (but for trickle-body, which forwards it).
  One line is logged when the hang starts (action=hang-KIND status=S) and
  one when it is over (action=hang-end kind=KIND elapsed=SECONDS bytes=N
  end=client-gone|limit|done|no-body status=S): "bytes" counts what was
  written to the client, "limit" means the 256 MiB cap of the fast kinds
  was reached. The connection is closed after a hang. The bytes are the
  same for a HEAD request (a client that believes the response is over
  reads the rest as the next one).
    status-line      "HTTP/1.1 200 " then an endless reason phrase of
                     letters, in 16 KiB writes as fast as the client reads
                     them, until 256 MiB or the client goes away.
    continue         "HTTP/1.1 100 Continue\\r\\n\\r\\n" over and over (same
                     rule). If the request has "Expect: 100-continue" the
                     server's usual 100 precedes them.
    trickle-headers  "HTTP/1.1 200 OK\\r\\n", then the header
                     "X-Slow: aaaa..." one byte every --interval seconds
                     (default 5), never ended, until the client goes away.
    trickle-body     forwarded; the upstream's status line and headers go
                     out at once, then the body one byte every --interval
                     seconds (1-byte chunks if the upstream sent no length).
    error-body       "HTTP/1.1 404 Not Found", Transfer-Encoding: chunked,
                     an endless body: a valid distribution JSON error, then
                     spaces (fast, same rule; never terminated).
    redirect-body    "HTTP/1.1 302 Found", Location: the same path and
                     query (or --hang-location URL), chunked endless body
                     (fast, same rule).
    silent           nothing at all (not even "100 Continue") until the
                     client goes away.
  --retry-after VALUE [--retry-after-status 503|429] [--retry-after-match PATTERN]
      matching requests (default: --hang-match's pattern) are answered with
      that status (default 503), "Retry-After: VALUE" as given and a small
      JSON error body; the connection stays alive (action=retry-after).
      Looked at before --hang.

MEMORY
  --big-index REPO:TAG --children N --child-size BYTES
              --config-digest D --config-size S --layer-digest L --layer-size Z
      GET/HEAD /v2/REPO/manifests/TAG (or the index's digest) is answered
      by the server itself with an OCI image index of N children
      (action=big-index), each with platform linux/amd64 and annotations
      {"i": "<n>"} in its descriptor. Child n is an OCI image manifest with
      config {D, S} (application/vnd.oci.image.config.v1+json) and one layer
      {L, Z} (application/vnd.oci.image.layer.v1.tar+gzip) - blobs the test
      pushed to the upstream under REPO - and annotations {"i": "<n>",
      "pad": "xxx..."}, padded to exactly BYTES bytes. Children are served
      by digest (GET/HEAD /v2/REPO/manifests/sha256:<hex>, action=big-child
      i=<n>) with Content-Type, Content-Length and Docker-Content-Digest.
      Their digests are computed at start-up (each child generated in
      pieces, hashed, dropped); a child's bytes are generated again, in
      pieces, whenever it is asked for: memory stays small whatever N x BYTES.
      Blobs and everything else in REPO are forwarded.
  --huge-layers REPO:TAG --count N [--huge-shape objects|zeros|descriptors]
                [--huge-max-bytes B]
      GET/HEAD /v2/REPO/manifests/TAG (or its digest) is answered with one
      OCI image manifest (built once at start-up) whose "layers" array has
      N entries (action=huge-layers count=<entries>): "objects" (default)
      {} each, "zeros" 0 each, "descriptors" a layer descriptor with a digest
      of zeros and size 1 each. Its config is {D, S} from --config-digest /
      --config-size if given, else the OCI empty descriptor. The document is
      kept within --huge-max-bytes (default 4 MiB, distribution's manifest
      cap): if N entries do not fit, as many as fit are served (about 1.39
      million objects, 2.09 million zeros, 32 thousand descriptors), and the
      "listening" line says so.

LISTINGS
  --catalog NAME[,NAME...]  (repeatable; names cannot contain commas)
      GET/HEAD /v2/_catalog (any query) is answered {"repositories": [...]}
      with exactly those names, in that order (action=catalog).
      Whatever is given, every GET/HEAD of a path ending in /tags/list that
      is forwarded is logged with action=tags-list (the raw path as sent).
  --tags REPO=TAG1,TAG2,...  (repeatable)
      GET/HEAD /v2/REPO/tags/list is answered {"name": REPO, "tags": [...]}
      (action=tags). In each tag \\e, \\r, \\n, \\t, \\\\ and \\xHH are
      decoded (after splitting on commas: \\x2c is a comma in a tag); the
      JSON escapes them. "REPO=" gives no tags, "REPO=a,,b" an empty one.

Options common to both modes: --addr (a loopback address, default
127.0.0.1), --port (default: one the kernel picks), --ready-file (the port is
written there once listening, after the start-up work), --log (default
stderr).

The log has one line per request (and per hang's end), each starting with
HH:MM:SS.mmm:
    method=GET path=/v2/... query=...|- host=<Host header>|- authorization=yes|no
    auth=Basic|Bearer|none|other|empty action=ACTION [DETAILS...] status=CODE|-
"path" is the request target's path as the client sent it (not normalised),
"authorization" whether the request carried an Authorization header and
"auth" its scheme; a credential is never written. Whitespace, control and
non-ASCII characters are written as \\xHH; upload _state tokens are cut to
"_state=...". A line is written as soon as its status is known (before the
body is relayed), so a client that finished finds it logged; hang-end lines
come after the client went away. ACTION is forward, tags-list, challenge,
caught, redirect, redirect-put, swap, forward-no-digest, retry-after,
hang-KIND, hang-end, big-index, big-child, huge-layers, catalog, tags,
upstream-error (the upstream could not be reached or failed: 502, the
connection is closed) or no-upstream (502). Other lines (no "method="):
    listening URL mode=hostile|catcher ...
    error peer=PORT error=... (a handler failed)
"""

import argparse
import base64
import hashlib
import http.client
import http.server
import json
import os
import re
import select
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

import toolslib

PIECE = 64 * 1024
WRITE = 16 * 1024
HANG_LIMIT = 256 * 1024 * 1024
# Hop-by-hop headers (RFC 9110 7.6.1) plus Expect, which the server side
# already answered with 100 Continue.
HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
       "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "expect"}
ERROR_CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "DENIED", 404: "NOT_FOUND",
               405: "UNSUPPORTED", 429: "TOOMANYREQUESTS", 500: "UNKNOWN",
               502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "UNAVAILABLE"}
INDEX_MT = "application/vnd.oci.image.index.v1+json"
MANIFEST_MT = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MT = "application/vnd.oci.image.config.v1+json"
LAYER_MT = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY_MT = "application/vnd.oci.empty.v1+json"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
MANIFEST_PATH = re.compile(r"/v2/(.+)/manifests/([^/]+)")
BLOB_PATH = re.compile(r"/v2/(.+)/blobs/[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
TAGS_PATH = re.compile(r"/v2/(.+)/tags/list")
HANG_KINDS = ("status-line", "continue", "trickle-headers", "trickle-body", "error-body",
              "redirect-body", "silent")
LETTERS = (b"abcdefghijklmnopqrstuvwxyz" * (WRITE // 26 + 1))[:WRITE]
CONTINUES = b"HTTP/1.1 100 Continue\r\n\r\n" * (WRITE // 25)
SPACES = b" " * WRITE
PAD = b"x" * PIECE


class Config:
    args = None
    upstream = None  # urllib.parse.SplitResult or None
    port = None
    log_f = None
    lock = threading.Lock()
    hang_match = None
    retry_match = None
    swaps = {}
    tags = {}
    catalog = None
    big = None
    huge = None
    redirect_blobs = None
    redirect_put = None
    other_host = None


def log(line):
    toolslib.log_line(Config.log_f, Config.lock, line)


def clean(text):
    """One log field: no whitespace, control or non-ASCII characters."""
    return re.sub(r"[^\x21-\x7e]", lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                  else f"\\u{ord(m.group()):04x}", text)


def error_body(status, message):
    return json.dumps({"errors": [{"code": ERROR_CODES.get(status, "UNKNOWN"), "message": message,
                                   "detail": None}]}).encode() + b"\n"


def decode_escapes(text):
    """\\e \\r \\n \\t \\\\ and \\xHH in an option value."""
    out, i = [], 0
    simple = {"e": "\x1b", "r": "\r", "n": "\n", "t": "\t", "\\": "\\"}
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            n = text[i + 1]
            if n in simple:
                out.append(simple[n])
                i += 2
                continue
            if n == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2:i + 4]):
                out.append(chr(int(text[i + 2:i + 4], 16)))
                i += 4
                continue
        out.append(c)
        i += 1
    return "".join(out)


def split_repo_tag(text, opt):
    repo, sep, tag = text.rpartition(":")
    if not sep or not repo or not tag or "/" in tag:
        raise ValueError(f"{opt}: want REPO:TAG, got {text!r}")
    return repo, tag


class Pattern:
    """METHODS PATH_RE, matched against the method and the query-less path."""

    def __init__(self, text):
        fields = text.split(None, 1)
        if len(fields) != 2:
            raise ValueError(f"pattern {text!r}: want 'METHODS PATH_RE'")
        self.text = text
        self.methods = None if fields[0] in ("*", ".*", "ANY") else set(fields[0].upper().split("|"))
        self.path = re.compile(fields[1])

    def matches(self, method, path):
        if self.methods is not None and method not in self.methods:
            return False
        return self.path.fullmatch(path) is not None


def canonical(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


class BigIndex:
    """An index of N children of BYTES bytes each, none of them kept."""

    def __init__(self, repo, tag, n, size, cfg_d, cfg_s, layer_d, layer_s):
        self.repo, self.tag, self.n, self.size = repo, tag, n, size
        self.cfg = {"mediaType": CONFIG_MT, "digest": cfg_d, "size": cfg_s}
        self.layer = {"mediaType": LAYER_MT, "digest": layer_d, "size": layer_s}
        self.digests = []
        self.by_digest = {}
        for i in range(n):
            h = hashlib.sha256()
            for piece in self.pieces(i):
                h.update(piece)
            d = "sha256:" + h.hexdigest()
            self.digests.append(d)
            self.by_digest[d] = i
        self.index = canonical({
            "schemaVersion": 2, "mediaType": INDEX_MT,
            "manifests": [{"mediaType": MANIFEST_MT, "digest": d, "size": size,
                           "platform": {"architecture": "amd64", "os": "linux"},
                           "annotations": {"i": str(i)}} for i, d in enumerate(self.digests)]})
        self.index_digest = "sha256:" + hashlib.sha256(self.index).hexdigest()

    def parts(self, i):
        """(prefix, pad length, suffix) of child i."""
        skeleton = canonical({"schemaVersion": 2, "mediaType": MANIFEST_MT, "config": self.cfg,
                              "layers": [self.layer], "annotations": {"i": str(i), "pad": ""}})
        cut = skeleton.rindex(b'"pad":""') + len(b'"pad":"')
        pad = self.size - len(skeleton)
        if pad < 0:
            raise ValueError(f"--child-size {self.size} is less than the {len(skeleton)} bytes a child needs")
        return skeleton[:cut], pad, skeleton[cut:]

    def pieces(self, i):
        prefix, pad, suffix = self.parts(i)
        yield prefix
        while pad > 0:
            yield PAD[:min(pad, PIECE)]
            pad -= PIECE
        yield suffix


class HugeLayers:
    def __init__(self, repo, tag, count, shape, max_bytes, cfg):
        self.repo, self.tag, self.wanted = repo, tag, count
        entry = {"objects": b"{}", "zeros": b"0",
                 "descriptors": canonical({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                           "digest": "sha256:" + "0" * 64, "size": 1})}[shape]
        head = canonical({"schemaVersion": 2, "mediaType": MANIFEST_MT, "config": cfg})[:-1] + b',"layers":['
        tail = b"]}"
        fit = max(0, (max_bytes - len(head) - len(tail) + 1) // (len(entry) + 1))
        self.count = min(count, fit)
        body = head + ((entry + b",") * (self.count - 1) + entry if self.count else b"") + tail
        self.body = body
        self.digest = "sha256:" + hashlib.sha256(body).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ocisync-hostile"

    def log_message(self, fmt, *args):
        pass

    def handle_expect_100(self):
        # "silent" says nothing at all, not even 100 Continue.
        if self.hang_kind_for(self.command, self.path.partition("?")[0]) == "silent" and \
                not Config.args.catcher:
            return True
        return super().handle_expect_100()

    # -- logging ---------------------------------------------------------------
    def note(self, action, status, extra=""):
        words = self.requestline.split()
        target = words[1] if len(words) >= 2 else self.path
        path, _, query = target.partition("?")
        query = re.sub(r"_state=[^&]*", "_state=...", query)
        h = self.headers.get("Authorization")
        scheme = "none" if h is None else (h.split(" ", 1)[0] or "empty")
        if not scheme.isalnum():
            scheme = "other"
        host = self.headers.get("Host")
        log(f"method={clean(self.command)} path={clean(path)} query={clean(query) or '-'} "
            f"host={clean(host) if host else '-'} authorization={'no' if h is None else 'yes'} "
            f"auth={clean(scheme)} action={action}{' ' + extra if extra else ''} status={status}")

    # -- request bodies ----------------------------------------------------------
    def body_pieces(self):
        """Yields the request body in pieces, de-chunked if need be."""
        return toolslib.body_pieces(self.rfile, self.headers, PIECE)

    def drain(self):
        for _ in self.body_pieces():
            pass

    # -- answers of its own --------------------------------------------------------
    def answer(self, status, body, headers, action, extra="", reason=None):
        """A whole answer: the body is bytes, or an iterable of bytes with
        Content-Length given in headers."""
        self.note(action, status, extra)
        self.send_response_only(status, reason)
        length = None
        for k, v in headers:
            self.send_header(k, v)
            if k.lower() == "content-length":
                length = v
        if length is None:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            for piece in ([body] if isinstance(body, bytes) else body):
                self.wfile.write(piece)
        self.wfile.flush()

    def json_error(self, status, message, action, extra_headers=(), extra=""):
        self.answer(status, error_body(status, message),
                    [("Content-Type", "application/json; charset=utf-8"),
                     ("Docker-Distribution-Api-Version", "registry/2.0")] + list(extra_headers),
                    action, extra)

    def catch(self, scheme, hostport):
        self.drain()
        if scheme == "bearer":
            challenge = f'Bearer realm="http://{hostport}/token",service="catcher"'
        else:
            challenge = 'Basic realm="catcher"'
        self.json_error(401, "authentication required", "caught", [("WWW-Authenticate", challenge)])

    def redirect(self, base, action):
        self.drain()
        self.answer(307, b"", [("Location", base.rstrip("/") + self.path), ("Content-Length", "0"),
                               ("Docker-Distribution-Api-Version", "registry/2.0")], action)

    def host_name(self):
        host = (self.headers.get("Host") or "").strip()
        if host.startswith("["):
            return host[1:].split("]", 1)[0].lower()
        return host.rsplit(":", 1)[0].lower() if host.count(":") == 1 else host.lower()

    def basic_ok(self):
        h = self.headers.get("Authorization") or ""
        scheme, _, value = h.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            return base64.b64decode(value.strip(), validate=True).decode("utf-8") == Config.args.basic
        except (ValueError, UnicodeDecodeError):
            return False

    # -- forwarding ----------------------------------------------------------------
    def open_upstream(self, method, target, send_body):
        up = Config.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=60)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            chunked = send_body and "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            if "Host" not in self.headers:
                conn.putheader("Host", up.netloc)
            for k, v in self.headers.items():
                lk = k.lower()
                if lk in HOP or (lk == "authorization" and self.drop_auth):
                    continue
                if not send_body and lk in ("content-length", "content-type"):
                    continue
                conn.putheader(k, v)
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            if send_body:
                toolslib.send_pieces(conn.send, self.body_pieces(), chunked)
            return conn, conn.getresponse()
        except BaseException:
            conn.close()
            raise

    def upstream_failed(self, action, e):
        self.close_connection = True
        self.json_error(502, f"upstream error: {e}", "upstream-error",
                        extra=f"for={action} error={clean(type(e).__name__)}")

    def forward(self, action, extra="", strip=(), hang=False):
        if Config.upstream is None:
            self.close_connection = True
            self.drain()
            self.json_error(502, "no upstream", "no-upstream")
            return
        try:
            conn, resp = self.open_upstream(self.command, self.path, True)
        except (OSError, ValueError, http.client.HTTPException) as e:
            self.upstream_failed(action, e)
            return
        try:
            self.relay(resp, action, extra, strip, (), hang)
        finally:
            conn.close()

    def relay(self, resp, action, extra="", strip=(), add=(), hang=False):
        length = resp.getheader("Content-Length")
        no_body = self.command == "HEAD" or resp.status in (204, 304) or resp.status < 200
        rechunk = not no_body and length is None
        self.note("hang-trickle-body" if hang else action, resp.status, extra)
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            lk = k.lower()
            if lk not in HOP and lk not in strip:
                self.send_header(k, v)
        for k, v in add:
            self.send_header(k, v)
        if rechunk:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        if hang:
            self.trickle_body(resp, no_body, rechunk)
            return
        if not no_body:
            toolslib.send_pieces(self.wfile.write, toolslib.response_pieces(resp, PIECE), rechunk)
        self.wfile.flush()

    # -- hangs ---------------------------------------------------------------------
    def hang_kind_for(self, method, path):
        a = Config.args
        if a.hang and Config.hang_match.matches(method, path):
            return a.hang
        return None

    def client_gone(self, seconds):
        """Waits up to SECONDS (None: for ever) for the client to close its
        end; True if it did. Whatever it sends meanwhile is dropped."""
        deadline = None if seconds is None else time.monotonic() + seconds
        sock = self.connection
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            try:
                ready, _, _ = select.select([sock], [], [], left)
                if not ready:
                    return False
                if not sock.recv(PIECE):
                    return True
            except OSError:
                return True

    def hang_end(self, kind, status, start, sent, end):
        self.note("hang-end", status,
                  f"kind={kind} elapsed={time.monotonic() - start:.3f} bytes={sent} end={end}")

    def hang(self, kind):
        self.close_connection = True
        if kind == "trickle-body":
            self.hang_start = time.monotonic()
            self.hang_sent = 0
            self.forward("hang-trickle-body", hang=True)
            return
        try:
            self.drain()
        except (OSError, ConnectionError):
            self.note(f"hang-{kind}", "-")
            self.hang_end(kind, "-", time.monotonic(), 0, "client-gone")
            return
        start = time.monotonic()
        sent = 0
        end = "client-gone"
        status = {"status-line": 200, "continue": 100, "trickle-headers": 200, "error-body": 404,
                  "redirect-body": 302, "silent": "-"}[kind]
        self.note(f"hang-{kind}", status)
        w = self.wfile
        try:
            if kind == "silent":
                self.client_gone(None)
            elif kind == "trickle-headers":
                head = b"HTTP/1.1 200 OK\r\n"
                w.write(head)
                sent += len(head)
                header = b"X-Slow: "
                i = 0
                while True:
                    w.write(header[i:i + 1] if i < len(header) else b"a")
                    sent += 1
                    i += 1
                    if self.client_gone(Config.args.interval):
                        break
            else:
                if kind == "status-line":
                    first, more, frame = b"HTTP/1.1 200 ", LETTERS, False
                elif kind == "continue":
                    first, more, frame = b"", CONTINUES, False
                elif kind == "error-body":
                    first = (b"HTTP/1.1 404 Not Found\r\n"
                             b"Content-Type: application/json; charset=utf-8\r\n"
                             b"Docker-Distribution-Api-Version: registry/2.0\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
                    body = error_body(404, "manifest unknown; the rest of this body never ends")
                    first += b"%x\r\n%s\r\n" % (len(body), body)
                    more, frame = SPACES, True
                else:  # redirect-body
                    loc = Config.args.hang_location or self.path
                    first = (b"HTTP/1.1 302 Found\r\nLocation: " + loc.encode("latin-1", "replace") +
                             b"\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n")
                    body = b"<html><body>Found. This body never ends.</body></html>\n"
                    first += b"%x\r\n%s\r\n" % (len(body), body)
                    more, frame = SPACES, True
                if frame:
                    more = b"%x\r\n%s\r\n" % (len(more), more)
                if first:
                    w.write(first)
                    sent += len(first)
                while sent < HANG_LIMIT:
                    w.write(more)
                    sent += len(more)
                end = "limit"
        except (OSError, ValueError):
            end = "client-gone"
        self.hang_end(kind, status, start, sent, end)

    def trickle_body(self, resp, no_body, rechunk):
        start, sent, end = self.hang_start, 0, "done"
        try:
            if no_body:
                end = "no-body"
            else:
                gone = False
                while not gone:
                    piece = resp.read(PIECE)
                    if not piece:
                        break
                    for i in range(len(piece)):
                        b = piece[i:i + 1]
                        self.wfile.write(b"1\r\n%s\r\n" % b if rechunk else b)
                        sent += 1
                        if self.client_gone(Config.args.interval):
                            gone = True
                            end = "client-gone"
                            break
                if not gone and rechunk:
                    self.wfile.write(b"0\r\n\r\n")
        except (OSError, ValueError, http.client.HTTPException):
            end = "client-gone"
        self.hang_end("trickle-body", resp.status, start, sent, end)

    # -- the self-served documents -------------------------------------------------
    def serve_manifest(self, repo, ref):
        """True if one of the documents of its own answered."""
        big, huge = Config.big, Config.huge
        if big and repo == big.repo:
            if ref in (big.tag, big.index_digest):
                self.drain()
                self.answer(200, big.index, [("Content-Type", INDEX_MT),
                                             ("Docker-Content-Digest", big.index_digest),
                                             ("Docker-Distribution-Api-Version", "registry/2.0")],
                            "big-index", f"children={big.n}")
                return True
            if ref in big.by_digest:
                i = big.by_digest[ref]
                self.drain()
                self.answer(200, big.pieces(i), [("Content-Type", MANIFEST_MT),
                                                 ("Content-Length", str(big.size)),
                                                 ("Docker-Content-Digest", ref),
                                                 ("Docker-Distribution-Api-Version", "registry/2.0")],
                            "big-child", f"i={i}")
                return True
        if huge and repo == huge.repo and ref in (huge.tag, huge.digest):
            self.drain()
            self.answer(200, huge.body, [("Content-Type", MANIFEST_MT),
                                         ("Docker-Content-Digest", huge.digest),
                                         ("Docker-Distribution-Api-Version", "registry/2.0")],
                        "huge-layers", f"count={huge.count}")
            return True
        return False

    def swap(self, repo, frm, to):
        if Config.upstream is None:
            self.drain()
            self.json_error(502, "no upstream", "no-upstream")
            return
        digest = None
        mode = Config.args.swap_header
        try:
            if mode == "from":
                conn, resp = self.open_upstream("HEAD", f"/v2/{repo}/manifests/{frm}", False)
                try:
                    digest = resp.getheader("Docker-Content-Digest")
                    resp.read()
                finally:
                    conn.close()
                if digest is None and frm.startswith("sha256:"):
                    digest = frm
            query = self.path.partition("?")[2]
            conn, resp = self.open_upstream("GET", f"/v2/{repo}/manifests/{to}" + ("?" + query if query else ""),
                                            True)
        except (OSError, ValueError, http.client.HTTPException) as e:
            self.upstream_failed("swap", e)
            return
        try:
            if mode == "to":
                digest = resp.getheader("Docker-Content-Digest")
            add = [("Docker-Content-Digest", digest)] if digest else []
            self.relay(resp, "swap", f"from={clean(frm)} to={clean(to)} digest={digest or '-'}",
                       {"docker-content-digest"}, add)
        finally:
            conn.close()

    # -- the request -----------------------------------------------------------------
    def handle_any(self):
        a = Config.args
        self.drop_auth = False
        method = self.command
        path = self.path.partition("?")[0]
        try:
            if a.catcher:
                self.catch(a.catcher, f"{a.addr if ':' not in a.addr else '[' + a.addr + ']'}:{Config.port}")
                return
            if Config.other_host and self.host_name() == Config.other_host:
                self.catch(a.catcher_scheme, f"{Config.other_host}:{Config.port}")
                return
            if a.basic and (path == "/v2" or path.startswith("/v2/")):
                if not self.basic_ok():
                    self.drain()
                    self.json_error(401, "authentication required", "challenge",
                                    [("WWW-Authenticate", 'Basic realm="hostile"')])
                    return
                self.drop_auth = True
            if Config.retry_match and Config.retry_match.matches(method, path):
                self.drain()
                self.json_error(a.retry_after_status, "come back later", "retry-after",
                                [("Retry-After", a.retry_after)], f"retry-after={clean(a.retry_after)}")
                return
            kind = self.hang_kind_for(method, path)
            if kind:
                self.hang(kind)
                return
            m = MANIFEST_PATH.fullmatch(path)
            if m and method in ("GET", "HEAD") and self.serve_manifest(m.group(1), m.group(2)):
                return
            if path == "/v2/_catalog" and Config.catalog is not None and method in ("GET", "HEAD"):
                self.drain()
                self.answer(200, json.dumps({"repositories": Config.catalog}).encode() + b"\n",
                            [("Content-Type", "application/json; charset=utf-8"),
                             ("Docker-Distribution-Api-Version", "registry/2.0")], "catalog")
                return
            action = "forward"
            if path.endswith("/tags/list") and method in ("GET", "HEAD"):
                t = TAGS_PATH.fullmatch(path)
                if t and t.group(1) in Config.tags:
                    self.drain()
                    self.answer(200, json.dumps({"name": t.group(1), "tags": Config.tags[t.group(1)]}).encode()
                                + b"\n", [("Content-Type", "application/json; charset=utf-8"),
                                          ("Docker-Distribution-Api-Version", "registry/2.0")], "tags")
                    return
                action = "tags-list"
            if Config.redirect_blobs and method == "GET" and BLOB_PATH.fullmatch(path):
                self.redirect(Config.redirect_blobs, "redirect")
                return
            if Config.redirect_put and method == "PUT" and m:
                self.redirect(Config.redirect_put, "redirect-put")
                return
            if m and method == "GET" and m.group(2) in Config.swaps:
                self.swap(m.group(1), m.group(2), Config.swaps[m.group(2)])
                return
            if m and method == "HEAD" and a.no_head_digest:
                self.forward("forward-no-digest", strip={"docker-content-digest"})
                return
            self.forward(action)
        except (OSError, ValueError, http.client.HTTPException) as e:
            # The client went away, or the upstream failed mid-way.
            self.close_connection = True
            log(f"error peer={self.client_address[1]} what=aborted method-was={clean(self.command)} "
                f"path-was={clean(path)} error={clean(type(e).__name__)}:{clean(str(e))[:200]}")

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 64

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        log(f"error peer={client_address[1]} error={clean(type(exc).__name__)}:{clean(str(exc))[:200]}")


class Server6(Server):
    address_family = socket.AF_INET6


def resolve_target(text):
    if text is None:
        return None
    if text == "SELF" or text.startswith("SELF/"):
        return f"http://{Config.other_host or 'localhost'}:{Config.port}" + text[4:]
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--addr", default="127.0.0.1", help="loopback address to listen on")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ready-file", help="the port is written there once listening")
    ap.add_argument("--log", help="request log (default stderr)")
    ap.add_argument("--upstream", help="http://127.0.0.1:PORT (or 127.0.0.1:PORT) of the registry")
    ap.add_argument("--catcher", choices=["basic", "bearer"], help="catcher mode")
    ap.add_argument("--basic", metavar="USER:PASS")
    ap.add_argument("--redirect-blobs", metavar="TARGET_BASE")
    ap.add_argument("--redirect-manifest-put", metavar="TARGET_BASE")
    ap.add_argument("--host-is-other", metavar="NAME")
    ap.add_argument("--catcher-scheme", choices=["basic", "bearer"], default="basic")
    ap.add_argument("--swap-manifest", action="append", default=[], metavar="FROM=TO")
    ap.add_argument("--swap-header", choices=["from", "to", "none"], default="from")
    ap.add_argument("--no-head-digest", action="store_true")
    ap.add_argument("--hang", choices=HANG_KINDS)
    ap.add_argument("--hang-match", default="* .*", metavar="'METHODS PATH_RE'")
    ap.add_argument("--hang-location", metavar="URL")
    ap.add_argument("--interval", type=float, default=5.0, help="trickle-*: seconds between bytes")
    ap.add_argument("--retry-after", metavar="VALUE")
    ap.add_argument("--retry-after-status", type=int, choices=[503, 429], default=503)
    ap.add_argument("--retry-after-match", metavar="'METHODS PATH_RE'")
    ap.add_argument("--big-index", metavar="REPO:TAG")
    ap.add_argument("--children", type=int)
    ap.add_argument("--child-size", type=int)
    ap.add_argument("--config-digest")
    ap.add_argument("--config-size", type=int)
    ap.add_argument("--layer-digest")
    ap.add_argument("--layer-size", type=int)
    ap.add_argument("--huge-layers", metavar="REPO:TAG")
    ap.add_argument("--count", type=int)
    ap.add_argument("--huge-shape", choices=["objects", "zeros", "descriptors"], default="objects")
    ap.add_argument("--huge-max-bytes", type=int, default=4 * 1024 * 1024)
    ap.add_argument("--catalog", action="append", default=[], metavar="NAME[,NAME...]")
    ap.add_argument("--tags", action="append", default=[], metavar="REPO=TAG1,TAG2,...")
    args = ap.parse_args()
    if not (args.addr.startswith("127.") or args.addr == "::1"):
        ap.error("refusing to listen on a non-loopback address")
    Config.args = args
    try:
        if args.upstream:
            upstream = args.upstream if "://" in args.upstream else "http://" + args.upstream
            Config.upstream = urllib.parse.urlsplit(upstream)
            if Config.upstream.scheme != "http":
                raise ValueError("only a plain http:// upstream is supported")
        if args.hang:
            Config.hang_match = Pattern(args.hang_match)
        if args.retry_after is not None:
            Config.retry_match = Pattern(args.retry_after_match or args.hang_match)
        for s in args.swap_manifest:
            frm, sep, to = s.partition("=")
            if not sep or not frm or not to:
                raise ValueError(f"--swap-manifest: want FROM=TO, got {s!r}")
            Config.swaps[frm] = to
        for s in args.tags:
            repo, sep, tags = s.partition("=")
            if not sep or not repo:
                raise ValueError(f"--tags: want REPO=TAG1,TAG2,..., got {s!r}")
            Config.tags[repo] = [decode_escapes(t) for t in tags.split(",")] if tags else []
        if args.catalog:
            Config.catalog = [n for c in args.catalog for n in c.split(",")]
        if args.big_index:
            need = ["children", "child_size", "config_digest", "config_size", "layer_digest", "layer_size"]
            missing = [n for n in need if getattr(args, n) is None]
            if missing:
                raise ValueError("--big-index needs " + ", ".join("--" + n.replace("_", "-") for n in missing))
            repo, tag = split_repo_tag(args.big_index, "--big-index")
            Config.big = BigIndex(repo, tag, args.children, args.child_size, args.config_digest,
                                  args.config_size, args.layer_digest, args.layer_size)
        if args.huge_layers:
            if args.count is None:
                raise ValueError("--huge-layers needs --count")
            repo, tag = split_repo_tag(args.huge_layers, "--huge-layers")
            if args.config_digest and args.config_size is not None:
                cfg = {"mediaType": CONFIG_MT, "digest": args.config_digest, "size": args.config_size}
            else:
                cfg = {"mediaType": EMPTY_MT, "digest": EMPTY_DIGEST, "size": 2}
            Config.huge = HugeLayers(repo, tag, args.count, args.huge_shape, args.huge_max_bytes, cfg)
        if args.host_is_other:
            Config.other_host = args.host_is_other.lower()
    except (ValueError, re.error) as e:
        ap.error(str(e))
    Config.log_f = open(args.log, "a", buffering=1) if args.log else sys.stderr

    server_cls = Server6 if ":" in args.addr else Server
    httpd = server_cls((args.addr, args.port), Handler)
    Config.port = port = httpd.server_address[1]
    Config.redirect_blobs = resolve_target(args.redirect_blobs)
    Config.redirect_put = resolve_target(args.redirect_manifest_put)
    also = ""
    if Config.other_host == "localhost" and server_cls is Server:
        try:
            httpd6 = Server6(("::1", port), Handler)
            threading.Thread(target=httpd6.serve_forever, daemon=True).start()
            also = " also=[::1]:%d" % port
        except OSError:
            also = " also=none"
    shown = f"[{args.addr}]" if ":" in args.addr else args.addr
    if args.catcher:
        log(f"listening http://{shown}:{port} mode=catcher scheme={args.catcher}")
    else:
        desc = [f"upstream={Config.upstream.geturl() if Config.upstream else '-'}"]
        if args.basic:
            desc.append(f"basic={clean(args.basic.partition(':')[0])}:***")
        if Config.redirect_blobs:
            desc.append(f"redirect-blobs={clean(Config.redirect_blobs)}")
        if Config.redirect_put:
            desc.append(f"redirect-manifest-put={clean(Config.redirect_put)}")
        if Config.other_host:
            desc.append(f"host-is-other={clean(Config.other_host)} catcher-scheme={args.catcher_scheme}{also}")
        for frm, to in Config.swaps.items():
            desc.append(f"swap={clean(frm)}>{clean(to)}")
        if Config.swaps:
            desc.append(f"swap-header={args.swap_header}")
        if args.no_head_digest:
            desc.append("no-head-digest")
        if args.retry_after is not None:
            desc.append(f"retry-after={clean(args.retry_after)} status={args.retry_after_status} "
                        f"match={clean(Config.retry_match.text)}")
        if args.hang:
            desc.append(f"hang={args.hang} match={clean(args.hang_match)} interval={args.interval}")
        if Config.big:
            b = Config.big
            desc.append(f"big-index={clean(b.repo)}:{clean(b.tag)} digest={b.index_digest} "
                        f"children={b.n} child-size={b.size}")
        if Config.huge:
            h = Config.huge
            desc.append(f"huge-layers={clean(h.repo)}:{clean(h.tag)} digest={h.digest} "
                        f"count={h.count} wanted={h.wanted} bytes={len(h.body)}"
                        + (" (TRUNCATED: that many do not fit)" if h.count < h.wanted else ""))
        if Config.catalog is not None:
            desc.append(f"catalog={len(Config.catalog)}")
        for repo, tags in Config.tags.items():
            desc.append(f"tags={clean(repo)}:{len(tags)}")
        log(f"listening http://{shown}:{port} mode=hostile " + " ".join(desc))
    toolslib.serve(httpd, args.ready_file)


if __name__ == "__main__":
    main()
