#!/usr/bin/env python3
"""Fault-injecting HTTP/1.1 proxy for ocisync's integration tests (stdlib only).

    fault_proxy.py --upstream http://127.0.0.1:PORT [--rule RULE]... [--rules FILE]
                   [--seed N] [--log FILE] [--ready-file FILE] [--addr IP] [--port N]

A threaded HTTP/1.1 server on a loopback address that forwards every request
to the registry at --upstream (plain HTTP) unchanged - method, target, every
header but the hop-by-hop ones (so Host stays the proxy's address and the
registry's upload Locations keep pointing at the proxy), and the body - and
relays the response unchanged, streaming bodies in both directions in 64 KiB
pieces (nothing is buffered whole: blobs may be large). One upstream
connection is opened per request; the client's connection is kept alive.

Unless a rule fires. A rule is one string of whitespace-separated fields:

    METHODS PATH_RE ACTION [WHEN...]

  METHODS   "GET", "HEAD|GET", "PATCH|PUT", or "*" for any method.
  PATH_RE   a Python regex that must match the whole request target, path
            and query (re.fullmatch), e.g. "/v2/.*/blobs/sha256:.*",
            "/v2/.*/blobs/uploads/.*", ".*/manifests/.*".
  ACTION    one of
    status:CODE[:retry-after=VALUE]
              answer CODE at once with a small distribution-style JSON error
              body (the request body is read and dropped first, so the
              connection stays usable); the registry never sees the request.
              VALUE is sent as it is ("1", or an HTTP-date in a JSON rule),
              except "date+N" which becomes the HTTP-date N seconds from the
              moment the fault fires.
    reset-after:BYTES
              a request with a body (upload): forward its first BYTES bytes,
              then reset the client connection (TCP RST, SO_LINGER 0) and
              drop the upstream one mid-body. A request without a body
              (download): forward it, send the response headers and BYTES
              bytes of the body, then reset. (Bytes still in the kernel's
              send buffer are lost by a reset: the client may get fewer.)
    stall:SECONDS[:after=BYTES]
              say nothing for SECONDS, then close the connection (FIN; a
              reset if a request body was left unread). Plain: the request
              is not forwarded and nothing at all is answered.
              With after=BYTES: forward, send the headers and BYTES bytes of
              the body, then stall and close.
    truncate:BYTES
              forward; send the response headers unchanged (Content-Length
              included) but close the connection (FIN) after BYTES bytes.
    flip:OFFSET
              forward; XOR the response body byte at OFFSET with 0xff.
    close-after-response
              forward and answer normally, without "Connection: close", then
              close the connection (FIN): the client finds out when it next
              uses the kept-alive connection.
    delay:SECONDS
              wait SECONDS, then forward normally.
    throttle:BYTES_PER_SECOND
              forward; send the response body no faster than that.
    referrers-api
              for GET /v2/<repo>/referrers/<alg>:<hex>: answer as a registry
              with the OCI 1.1 referrers API would, from the fallback tag
              <alg>-<hex> the registry behind holds (its index, or an empty
              one), so a real registry without the API can stand in for one
              that has it.
  BYTES/OFFSET take an optional K or M suffix (KiB, MiB).
  WHEN      (default: times=1, the first applicable match only)
    times=N   fire on at most N applicable matches
    always    fire on every applicable match
    every=K   fire on every Kth applicable match (K, 2K, ...)
    prob=P    fire with probability P (a random.Random seeded with --seed
              and the rule's number, so runs repeat)
    skip=M    let the first M applicable matches through first
    min-body=BYTES, max-body=BYTES
              match only requests whose body (Content-Length) is at least /
              at most that long; a chunked body counts as unbounded. E.g.
              "PUT .*/blobs/uploads/.* status:503 max-body=0" hits the PUT
              closing a chunked upload, not a monolithic one.
    id=NAME   the rule's name in the log (default: its number, from 1)
  every= and prob= fire without limit unless times= is given too.

"Applicable": a rule counts a request only when its action can take effect
there. reset-after/stall-after/truncate/flip/throttle act on a 2xx response
body longer than BYTES/OFFSET (HEAD, 201 and 204 answers have none; the small
config blob is not "a blob longer than 1 MB"); reset-after on an upload needs
a request body longer than BYTES (or one of unknown length: chunked). status,
plain stall and delay apply to every match. Rules are tried in their order:
at the request (status, stall, delay, upload reset-after), then, for the
others, once the registry's response headers are in; the first rule that
fires takes the request, and later rules never count it.

--rules FILE: a JSON list whose items are rule strings as above or objects
{"methods": "GET", "path": "...", "action": "status:429:retry-after=Wed, 21
Oct 2015 07:28:00 GMT", "times": 2, "every": 3, "prob": 0.5, "skip": 1,
"always": true, "min-body": 0, "max-body": 0, "id": "x"} (all but path and
action optional), for values with spaces such as an HTTP-date.

The log (--log, default stderr) has one line per event, each starting with
HH:MM:SS.mmm and a word:
    listening URL upstream=URL
    rule id=ID METHODS PATH_RE ACTION WHEN
    connect conn=N peer=PORT
    request id=N conn=N method=M target=T status=S length=L fault=ID|-
    fault id=N conn=N rule=ID action=ACTION method=M target=T [detail]
    error id=N conn=N what=... (client went away, upstream unreachable...)
A "request" line is written as soon as its status is known (before the body
is relayed; status=- when the fault leaves no status), a "fault" line just
before the fault takes effect, so a client that finished finds both logged.
Upload _state tokens are shortened to "_state=...". If the registry cannot
be reached, the client's connection is reset (as the registry's own would
be), never answered by the proxy.
"""

import argparse
import email.utils
import http.client
import http.server
import itertools
import json
import os
import random
import re
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

import toolslib

PIECE = 64 * 1024
# Hop-by-hop headers (RFC 9110 7.6.1) plus Expect, which the server side
# already answered with 100 Continue.
HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
       "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "expect"}
ERROR_CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "DENIED", 404: "NOT_FOUND",
               405: "UNSUPPORTED", 416: "RANGE_INVALID", 429: "TOOMANYREQUESTS",
               500: "UNKNOWN", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "UNAVAILABLE"}
REQUEST_PHASE = {"status", "stall", "delay", "referrers-api"}  # plus reset-after on a request with a body


class Config:
    upstream = None  # urllib.parse.SplitResult
    rules = []
    log_f = None
    log_lock = threading.Lock()
    ids = itertools.count(1)
    conns = itertools.count(1)


def log(line):
    toolslib.log_line(Config.log_f, Config.log_lock, line)


def short(target):
    return re.sub(r"_state=[^&]*", "_state=...", target)


def parse_size(text):
    m = re.fullmatch(r"(\d+)([KkMm]?)", text)
    if not m:
        raise ValueError(f"bad byte count {text!r}")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]


class Action:
    """One parsed ACTION: kind plus its numbers."""

    def __init__(self, text):
        self.text = text
        self.retry_after = None
        self.after = None
        m = re.fullmatch(r"status:(\d{3})(?::retry-after=(.+))?", text, re.S)
        if m:
            self.kind, self.code, self.retry_after = "status", int(m.group(1)), m.group(2)
            return
        m = re.fullmatch(r"stall:(\d+(?:\.\d*)?)(?::after=(\w+))?", text)
        if m:
            self.kind, self.seconds = "stall", float(m.group(1))
            self.after = parse_size(m.group(2)) if m.group(2) else None
            return
        m = re.fullmatch(r"(reset-after|truncate|flip):(\w+)", text)
        if m:
            self.kind, self.offset = m.group(1), parse_size(m.group(2))
            return
        m = re.fullmatch(r"delay:(\d+(?:\.\d*)?)", text)
        if m:
            self.kind, self.seconds = "delay", float(m.group(1))
            return
        m = re.fullmatch(r"throttle:(\w+)", text)
        if m:
            self.kind, self.rate = "throttle", parse_size(m.group(1))
            if self.rate <= 0:
                raise ValueError("throttle needs a positive rate")
            return
        if text == "close-after-response":
            self.kind = "close-after-response"
            return
        if text == "referrers-api":
            self.kind = "referrers-api"
            return
        raise ValueError(f"unknown action {text!r}")

    def request_phase(self, req_has_body):
        if self.kind == "stall":
            return self.after is None
        if self.kind == "reset-after":
            return req_has_body
        return self.kind in REQUEST_PHASE

    def applies_to_request(self, req_len):
        """Upload reset-after: the body must be longer than BYTES (or unknown)."""
        if self.kind == "reset-after":
            return req_len is None or req_len > self.offset
        return True

    def applies_to_response(self, method, status, length):
        if self.kind == "close-after-response":
            return True
        if method == "HEAD" or not 200 <= status < 300 or status in (204, 304):
            return False
        if length is None:  # chunked or until EOF: unknown, so maybe
            return True
        if self.kind == "throttle":
            return length > 0
        if self.kind == "stall":
            return length > self.after
        return length > self.offset


class Rule:
    def __init__(self, number, methods, path, action, times=None, every=None, prob=None,
                 skip=0, always=False, name=None, seed=1, min_body=None, max_body=None):
        self.id = name or str(number)
        self.methods_text = methods
        self.methods = None if methods in ("*", ".*", "ANY") else set(methods.upper().split("|"))
        self.path_text = path
        self.path = re.compile(path)
        self.action = Action(action)
        self.every = every
        self.prob = prob
        self.skip = skip
        self.always = always
        self.min_body = min_body
        self.max_body = max_body
        if times is None and not (always or every or prob is not None):
            times = 1
        self.times = times
        self.rng = random.Random(f"{seed}/{number}")
        self.lock = threading.Lock()
        self.seen = 0
        self.fired = 0

    def describe(self):
        when = []
        if self.always:
            when.append("always")
        if self.every:
            when.append(f"every={self.every}")
        if self.prob is not None:
            when.append(f"prob={self.prob}")
        if self.times is not None:
            when.append(f"times={self.times}")
        if self.skip:
            when.append(f"skip={self.skip}")
        if self.min_body is not None:
            when.append(f"min-body={self.min_body}")
        if self.max_body is not None:
            when.append(f"max-body={self.max_body}")
        return f"id={self.id} {self.methods_text} {self.path_text} {self.action.text} {' '.join(when)}"

    def matches(self, method, target, req_len):
        if self.methods is not None and method not in self.methods:
            return False
        if self.min_body is not None and req_len is not None and req_len < self.min_body:
            return False
        if self.max_body is not None and (req_len is None or req_len > self.max_body):
            return False
        return self.path.fullmatch(target) is not None

    def decide(self):
        """Counts one applicable match; True when the rule fires on it."""
        with self.lock:
            self.seen += 1
            n = self.seen - self.skip
            if n <= 0:
                return False
            if self.times is not None and self.fired >= self.times:
                return False
            if self.every:
                fire = n % self.every == 0
            elif self.prob is not None:
                fire = self.rng.random() < self.prob
            else:
                fire = True  # always, or within the first `times`
            if fire:
                self.fired += 1
            return fire


def parse_rule_string(number, text, seed):
    fields = text.split()
    if len(fields) < 3:
        raise ValueError(f"rule {text!r}: want METHODS PATH_RE ACTION [WHEN...]")
    kw = {}
    for f in fields[3:]:
        if f == "always":
            kw["always"] = True
            continue
        k, sep, v = f.partition("=")
        if not sep:
            raise ValueError(f"rule {text!r}: bad field {f!r}")
        if k in ("times", "every", "skip"):
            kw[k] = int(v)
        elif k == "prob":
            kw[k] = float(v)
        elif k == "id":
            kw["name"] = v
        elif k in ("min-body", "max-body"):
            kw[k.replace("-", "_")] = parse_size(v)
        else:
            raise ValueError(f"rule {text!r}: unknown field {k!r}")
    return Rule(number, fields[0], fields[1], fields[2], seed=seed, **kw)


def parse_rule_object(number, obj, seed):
    if isinstance(obj, str):
        return parse_rule_string(number, obj, seed)
    unknown = set(obj) - {"methods", "method", "path", "action", "times", "every", "prob",
                          "skip", "always", "id", "min-body", "max-body"}
    if unknown:
        raise ValueError(f"rule {obj!r}: unknown keys {sorted(unknown)}")
    return Rule(number, obj.get("methods", obj.get("method", "*")), obj["path"], obj["action"],
                times=obj.get("times"), every=obj.get("every"), prob=obj.get("prob"),
                skip=obj.get("skip", 0), always=obj.get("always", False), name=obj.get("id"),
                seed=seed, min_body=obj.get("min-body"), max_body=obj.get("max-body"))


class ResetConnection(Exception):
    """The fault (or a lost upstream) resets the client's connection."""


class CloseConnection(Exception):
    """The fault ends with an orderly close (FIN) of the client's connection."""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ocisync-fault-proxy"

    def setup(self):
        super().setup()
        self.conn_id = next(Config.conns)
        log(f"connect conn={self.conn_id} peer={self.client_address[1]}")

    def log_message(self, fmt, *args):
        pass

    # -- request bodies ------------------------------------------------------
    def req_length(self):
        """The request body's length; None when chunked (unknown)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None
        return int(self.headers.get("Content-Length") or 0)

    def body_pieces(self):
        """Yields the request body in pieces, de-chunked if need be."""
        return toolslib.body_pieces(self.rfile, self.headers, PIECE)

    # -- connection endings ----------------------------------------------------
    def reset(self):
        """Closes the client connection with a TCP RST (SO_LINGER 0)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # The socket closes for real only once rfile (a makefile) is closed
        # too; the server's own shutdown/close then fail quietly.
        try:
            self.rfile.close()
        finally:
            self.connection.close()

    def pick(self, request_phase, req_len=None, status=None, length=None):
        method, target = self.command, self.path
        has_body = req_len is None or req_len > 0
        for rule in Config.rules:
            a = rule.action
            if a.request_phase(has_body) != request_phase or not rule.matches(method, target, req_len):
                continue
            if request_phase and not a.applies_to_request(req_len):
                continue
            if not request_phase and not a.applies_to_response(method, status, length):
                continue
            if rule.decide():
                return rule
        return None

    def fault(self, rule, detail=""):
        log(f"fault id={self.req_id} conn={self.conn_id} rule={rule.id} action={rule.action.text} "
            f"method={self.command} target={short(self.path)}{' ' + detail if detail else ''}")

    def note(self, status, length, rule):
        log(f"request id={self.req_id} conn={self.conn_id} method={self.command} "
            f"target={short(self.path)} status={status} length={'-' if length is None else length} "
            f"fault={rule.id if rule else '-'}")

    # -- the request -----------------------------------------------------------
    def handle_any(self):
        self.req_id = next(Config.ids)
        up = None
        try:
            req_len = self.req_length()
            rule = self.pick(True, req_len=req_len)
            cut = None
            if rule:
                a = rule.action
                if a.kind == "status":
                    self.answer_status(rule)
                    return
                if a.kind == "referrers-api":
                    self.answer_referrers(rule)
                    return
                if a.kind == "stall":
                    self.note("-", None, rule)
                    self.fault(rule)
                    time.sleep(a.seconds)
                    raise CloseConnection()
                if a.kind == "delay":
                    self.fault(rule)
                    time.sleep(a.seconds)
                    rule = None  # forwarded normally; response rules still apply
                elif a.kind == "reset-after":
                    cut = rule
            up, resp = self.send_upstream(cut)
            length = resp.getheader("Content-Length")
            length = int(length) if length is not None and length.isdigit() else None
            no_body = self.command == "HEAD" or resp.status in (204, 304) or resp.status < 200
            if rule is None:
                rule = self.pick(False, req_len=req_len, status=resp.status, length=0 if no_body else length)
            self.relay(resp, rule, length, no_body)
        except ResetConnection:
            self.reset()
        except CloseConnection:
            self.close_connection = True
        except (OSError, ValueError, http.client.HTTPException) as e:
            # The client went away or the upstream failed mid-way.
            log(f"error id={self.req_id} conn={self.conn_id} what=aborted method={self.command} "
                f"target={short(self.path)} error={type(e).__name__}:{e}")
            try:
                self.reset()
            except OSError:
                pass
        finally:
            if up is not None:
                up.close()

    def answer_referrers(self, rule):
        m = re.fullmatch(r"/v2/(.+)/referrers/([a-z0-9]+):([a-f0-9]+)(\?.*)?", self.path)
        index_mt = "application/vnd.oci.image.index.v1+json"
        body = json.dumps({"schemaVersion": 2, "mediaType": index_mt, "manifests": []}).encode()
        if m:
            up = Config.upstream
            conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=60)
            try:
                conn.request("GET", f"/v2/{m.group(1)}/manifests/{m.group(2)}-{m.group(3)}",
                             headers={"Accept": index_mt})
                resp = conn.getresponse()
                data = resp.read()
                if resp.status == 200:
                    body = data
            finally:
                conn.close()
        self.note(200, len(body), rule)
        self.fault(rule)
        self.send_response_only(200)
        self.send_header("Content-Type", index_mt)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def answer_status(self, rule):
        a = rule.action
        for _ in self.body_pieces():
            pass
        retry_after = a.retry_after
        if retry_after is not None:
            m = re.fullmatch(r"date([+-]\d+)", retry_after)
            if m:
                retry_after = email.utils.formatdate(time.time() + int(m.group(1)), usegmt=True)
        code = ERROR_CODES.get(a.code, "UNKNOWN")
        body = json.dumps({"errors": [{"code": code, "message": f"injected fault: {a.code}",
                                       "detail": {"rule": rule.id}}]}).encode() + b"\n"
        self.note(a.code, len(body), rule)
        self.fault(rule, f"retry-after={retry_after.replace(' ', '_')}" if retry_after else "")
        self.send_response_only(a.code)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def send_upstream(self, cut):
        """Sends the request upstream; with `cut` (an upload reset-after
        rule), only its first BYTES bytes of body, then resets."""
        up = Config.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=60)
        try:
            conn.connect()
        except OSError as e:
            conn.close()
            self.note("-", None, None)
            log(f"error id={self.req_id} conn={self.conn_id} what=upstream-unreachable "
                f"error={type(e).__name__}:{e} (resetting the client connection)")
            raise ResetConnection() from e
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            for k, v in self.headers.items():
                if k.lower() not in HOP:
                    conn.putheader(k, v)
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            sent = 0
            for piece in self.body_pieces():
                if cut and sent + len(piece) >= cut.action.offset:
                    piece = piece[:cut.action.offset - sent]
                    conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked and piece else piece)
                    sent += len(piece)
                    self.note("-", None, cut)
                    self.fault(cut, f"request-bytes={sent}")
                    raise ResetConnection()
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            if cut:  # a chunked body shorter than BYTES: reset after it
                self.note("-", None, cut)
                self.fault(cut, f"request-bytes={sent} (whole body, shorter than the offset)")
                raise ResetConnection()
            if chunked:
                conn.send(b"0\r\n\r\n")
            return conn, conn.getresponse()
        except BaseException:
            conn.close()
            raise

    def relay(self, resp, rule, length, no_body):
        a = rule.action if rule else None
        self.note(resp.status, length, rule)
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP:
                self.send_header(k, v)
        rechunk = not no_body and length is None
        if rechunk:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if a and a.kind in ("reset-after", "truncate") and not no_body:
            stop_at = a.offset
        elif a and a.kind == "stall" and not no_body:
            stop_at = a.after
        else:
            stop_at = None
        if a and a.kind in ("flip", "throttle", "close-after-response"):
            self.fault(rule, f"status={resp.status}")
        sent = 0
        start = time.monotonic()
        if not no_body:
            while True:
                piece = resp.read(PIECE)
                if not piece:
                    break
                if stop_at is not None and sent + len(piece) >= stop_at:
                    piece = piece[:stop_at - sent]
                    if piece:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if rechunk else piece)
                    sent += len(piece)
                    self.wfile.flush()
                    self.fault(rule, f"response-bytes={sent} status={resp.status}")
                    if a.kind == "reset-after":
                        raise ResetConnection()
                    if a.kind == "stall":
                        time.sleep(a.seconds)
                    raise CloseConnection()
                if a and a.kind == "flip" and sent <= a.offset < sent + len(piece):
                    b = bytearray(piece)
                    b[a.offset - sent] ^= 0xFF
                    piece = bytes(b)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if rechunk else piece)
                sent += len(piece)
                if a and a.kind == "throttle":
                    ahead = start + sent / a.rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
            if rechunk:
                self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        if stop_at is not None:
            # A chunked body that ended before the offset: the fault acts
            # at its end instead.
            self.fault(rule, f"response-bytes={sent} status={resp.status} (whole body)")
            raise ResetConnection() if a.kind == "reset-after" else CloseConnection()
        if a and a.kind == "close-after-response":
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        log(f"error what=handler peer={client_address[1]} error={type(exc).__name__}:{exc}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--addr", default="127.0.0.1", help="loopback address to listen on")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ready-file", help="the port is written there once listening")
    ap.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT (or 127.0.0.1:PORT) of the registry")
    ap.add_argument("--rule", action="append", default=[], help="a rule (repeatable)")
    ap.add_argument("--rules", help="a JSON file with a list of rules")
    ap.add_argument("--seed", default="1", help="seed for prob= rules")
    ap.add_argument("--log", help="event log (default stderr)")
    args = ap.parse_args()
    if not (args.addr.startswith("127.") or args.addr == "::1"):
        ap.error("refusing to listen on a non-loopback address")
    upstream = args.upstream if "://" in args.upstream else "http://" + args.upstream
    Config.upstream = urllib.parse.urlsplit(upstream)
    if Config.upstream.scheme != "http":
        ap.error("only a plain http:// upstream is supported")
    specs = list(args.rule)
    if args.rules:
        with open(args.rules) as f:
            specs += json.load(f)
    try:
        Config.rules = [parse_rule_object(i + 1, s, args.seed) for i, s in enumerate(specs)]
    except (ValueError, KeyError, re.error) as e:
        ap.error(str(e))
    Config.log_f = open(args.log, "a", buffering=1) if args.log else sys.stderr

    httpd = Server((args.addr, args.port), Handler)
    port = httpd.server_address[1]
    log(f"listening http://{args.addr}:{port} upstream={upstream}")
    for r in Config.rules:
        log("rule " + r.describe())
    toolslib.serve(httpd, args.ready_file)


if __name__ == "__main__":
    main()
