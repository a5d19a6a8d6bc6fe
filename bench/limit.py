#!/usr/bin/env python3
"""The registry's own limit: a minimal client pushing a workload as fast as
the destination registry takes it.

`push` uploads the images of a gen.py layout to a registry with nothing but
what the distribution API requires: every unique blob as one monolithic
upload (POST /v2/REPO/blobs/uploads/, then PUT LOCATION?digest= with the
whole body), then each child manifest by digest, then each image's top
manifest (or index) by tag. N worker threads each keep one HTTP/1.1
keep-alive connection; blobs go largest first. The data is read from the
local layout (page cache), so there is no source registry to GET from:
what is left is the destination registry's cost. The time printed is from
the first request to the last response (Python's start-up not included).
The benchmark also uses it to fill the source registry.

With --source HOST:PORT, `push` is the relay limit instead: each blob is
GET from the source registry (the repository the layout names) and its
body streamed straight into the PUT, as a mirror must; manifests still
come from the layout. On a machine where both registries share the CPUs,
this is the ceiling a mirror can reach; the plain limit leaves the
source's cost out.

`verify` checks that a registry serves every image's tag with the digest
the layout says (HEAD on the manifest), after a tool's run. `tag-info`
checks one pushed tag (workload 5, where no layout says what to expect):
it follows an index to its first manifest and prints the digest and the
layers' total size as JSON; with --digest, the tag must have that digest.

    limit.py push     LAYOUT HOST:PORT [--workers N] [--first N] [--dest-prefix P]
                      [--source HOST:PORT]
    limit.py verify   LAYOUT HOST:PORT [--first N] [--dest-prefix P]
    limit.py tag-info HOST:PORT REPO:TAG [--digest sha256:...]

With --dest-prefix P, image bench/w1-003 goes to P/w1-003 (the last
component kept, as `skopeo sync` names it); without, to bench/w1-003.
`push` prints one JSON line: seconds, blobs, bytes, requests.
"""

import argparse
import http.client
import json
import os
import queue
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


class Conn:
    """One keep-alive connection; reconnects if the server closed it."""

    def __init__(self, hostport):
        host, port = hostport.rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.c = None
        self.requests = 0

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=300,
                                                    blocksize=1 << 20)
            try:
                if hasattr(body, "seekable") and body.seekable():
                    body.seek(0)
                self.c.request(method, path, body=body, headers=headers or {})
                r = self.c.getresponse()
                data = r.read()
                self.requests += 1
                if r.will_close:
                    self.c.close()
                    self.c = None
                return r, data
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                # An idle keep-alive connection the server dropped: once more on a new one.
                self.c.close()
                self.c = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def dest_repo(repo, prefix):
    return f"{prefix}/{repo.rsplit('/', 1)[-1]}" if prefix else repo


def relay_body(conn, src_repo, desc):
    """GETs a blob from conn.src; returns the response, a file-like body to stream."""
    src = conn.src
    if src.c is None:
        src.c = http.client.HTTPConnection(src.host, src.port, timeout=300, blocksize=1 << 20)
    src.c.request("GET", f"/v2/{src_repo}/blobs/{desc['digest']}")
    r = src.c.getresponse()
    src.requests += 1
    if r.status != 200:
        raise RuntimeError(f"GET blob {desc['digest']} from {src_repo}: {r.status}")
    return r


def push_blob(conn, repo, desc, layout, src_repo=None):
    r, data = conn.request("POST", f"/v2/{repo}/blobs/uploads/", body=b"",
                           headers={"Content-Length": "0"})
    if r.status != 202:
        raise RuntimeError(f"POST /v2/{repo}/blobs/uploads/: {r.status} {data[:300]!r}")
    loc = urllib.parse.urlsplit(r.getheader("Location"))
    query = (loc.query + "&" if loc.query else "") + "digest=" + urllib.parse.quote(desc["digest"])
    path = f"{loc.path}?{query}"
    headers = {"Content-Length": str(desc["size"]), "Content-Type": "application/octet-stream"}
    if src_repo is not None:
        got = relay_body(conn, src_repo, desc)
        body = got if desc["size"] > (1 << 20) else got.read()
        r, data = conn.request("PUT", path, body=body, headers=headers)
        got.read()
    else:
        with open(os.path.join(layout, "blobs", "sha256", desc["digest"][7:]), "rb") as f:
            body = f if desc["size"] > (1 << 20) else f.read()
            r, data = conn.request("PUT", path, body=body, headers=headers)
    if r.status != 201:
        raise RuntimeError(f"PUT blob {desc['digest']} to {repo}: {r.status} {data[:300]!r}")


def push_manifest(conn, repo, ref, media_type, raw):
    r, data = conn.request("PUT", f"/v2/{repo}/manifests/{ref}", body=raw,
                           headers={"Content-Type": media_type, "Content-Length": str(len(raw))})
    if r.status != 201:
        raise RuntimeError(f"PUT manifest {repo}:{ref}: {r.status} {data[:300]!r}")


def run_pool(conns, tasks):
    """Runs tasks (callables taking a Conn) on one thread per connection."""
    q = queue.Queue()
    for t in tasks:
        q.put(t)
    errors = []

    def worker(conn):
        while not errors:
            try:
                t = q.get_nowait()
            except queue.Empty:
                return
            try:
                t(conn)
            except Exception as e:  # noqa: BLE001  (reported, then the run fails)
                errors.append(e)

    threads = [threading.Thread(target=worker, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def push(args):
    imgs = gen.load(args.layout, args.first)
    # Each unique blob once, into the repository of the first image naming it.
    blobs = {}
    for img in imgs:
        repo = dest_repo(img["repo"], args.dest_prefix)
        for d in gen.image_blobs(img):
            blobs.setdefault(d["digest"], (repo, d, img["repo"]))
    order = sorted(blobs.values(), key=lambda rd: -rd[1]["size"])
    conns = [Conn(args.registry) for _ in range(max(1, args.workers))]
    for c in conns:
        c.src = Conn(args.source) if args.source else None
    t0 = time.monotonic()
    run_pool(conns, [lambda c, rd=rd: push_blob(c, rd[0], rd[1], args.layout,
                                                rd[2] if args.source else None)
                     for rd in order])
    kids, tops = [], []
    for img in imgs:
        repo = dest_repo(img["repo"], args.dest_prefix)
        for m, raw in img["children"]:
            kids.append(lambda c, repo=repo, m=m, raw=raw:
                        push_manifest(c, repo, m["digest"], m["mediaType"], raw))
        tops.append(lambda c, repo=repo, img=img:
                    push_manifest(c, repo, img["tag"], img["top"]["mediaType"], img["raw"]))
    run_pool(conns, kids)
    run_pool(conns, tops)
    secs = time.monotonic() - t0
    json.dump({"seconds": round(secs, 4), "blobs": len(order),
               "bytes": sum(rd[1]["size"] for rd in order),
               "requests": sum(c.requests for c in conns)}, sys.stdout)
    print()


def verify(args):
    imgs = gen.load(args.layout, args.first)
    conn = Conn(args.registry)
    bad = 0
    for img in imgs:
        repo = dest_repo(img["repo"], args.dest_prefix)
        r, _ = conn.request("HEAD", f"/v2/{repo}/manifests/{img['tag']}", headers={"Accept": ACCEPT})
        got = r.getheader("Docker-Content-Digest")
        if r.status != 200 or got != img["top"]["digest"]:
            bad += 1
            if bad <= 3:
                print(f"limit.py verify: {args.registry}/{repo}:{img['tag']}: HEAD {r.status}, "
                      f"digest {got}, want {img['top']['digest']}", file=sys.stderr)
    if bad:
        print(f"limit.py verify: {bad} of {len(imgs)} images wrong or missing", file=sys.stderr)
        return 1
    return 0


def tag_info(args):
    conn = Conn(args.registry)
    repo, tag = args.ref.rsplit(":", 1)

    def get(ref):
        r, data = conn.request("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})
        if r.status != 200:
            raise RuntimeError(f"{args.registry}/{repo}:{ref}: GET {r.status} {data[:300]!r}")
        return r.getheader("Docker-Content-Digest"), json.loads(data)

    digest, doc = get(tag)
    if args.digest and digest != args.digest:
        raise RuntimeError(f"{args.registry}/{args.ref}: digest {digest}, want {args.digest}")
    man = get(doc["manifests"][0]["digest"])[1] if "manifests" in doc else doc
    json.dump({"digest": digest, "layers": len(man["layers"]),
               "layer_bytes": sum(d["size"] for d in man["layers"])}, sys.stdout)
    print()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tag-info")
    t.add_argument("registry", help="HOST:PORT, plain HTTP")
    t.add_argument("ref", help="REPO:TAG")
    t.add_argument("--digest", help="the digest the tag must have")
    for name in ("push", "verify"):
        p = sub.add_parser(name)
        p.add_argument("layout")
        p.add_argument("registry", help="HOST:PORT, plain HTTP")
        p.add_argument("--first", type=int, help="only the first N images of the layout")
        p.add_argument("--dest-prefix", default="")
        if name == "push":
            p.add_argument("--workers", type=int, default=8)
            p.add_argument("--source", help="HOST:PORT: relay each blob from this registry")
    args = ap.parse_args()
    try:
        if args.cmd == "push":
            push(args)
            return 0
        if args.cmd == "tag-info":
            return tag_info(args)
        return verify(args)
    except (OSError, RuntimeError, http.client.HTTPException, ValueError, KeyError, IndexError) as e:
        print(f"limit.py {args.cmd}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
