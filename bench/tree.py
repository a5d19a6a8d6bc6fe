#!/usr/bin/env python3
"""Workload 5 (build-push): a directory of real files, and the OCI layout
that wraps a layer compressed outside ocisync (the skopeo route).

    tree.py build --out DIR --size BYTES [--from DIR,DIR...]
    tree.py stats DIR
    tree.py wrap --layer FILE --diff-id sha256:... --digest sha256:...
                 --out LAYOUT [--name NAME] [--media-type TYPE]

`build` copies regular files from the --from directories (default
/usr/lib/x86_64-linux-gnu and /usr/share) into DIR, under their own paths
(DIR/usr/share/...), until their contents add up to BYTES: each source
gets an equal share, in sorted walk order, and the last one fills what the
others could not. Libraries and data files compress as real layers do,
unlike gen.py's random payloads. Symbolic links, devices and unreadable
files are skipped (what is measured is file contents), and
modes are kept without set-id bits. Then it measures the directory as GNU
tar streams it (`tar -C DIR -cf - .`, which also brings it into the page
cache) and writes DIR/../NAME.json (files, bytes, tar bytes). A DIR with a
stamp of the same parameters is kept: built once, reused by every run.

`stats` prints that JSON. `wrap` turns one compressed tar into an OCI
layout holding a linux/amd64 image of that layer: it renames FILE into the
layout's blobs (FILE must be on the layout's filesystem), then writes the
config (rootfs diff_ids: the tar's sha256), the manifest and index.json,
naming the image NAME. The digests come from the caller, computed while
the layer was compressed (tee into sha256sum), so no byte is read twice.
"""

import argparse
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys

SOURCES = "/usr/lib/x86_64-linux-gnu,/usr/share"
CREATED = "2023-11-14T22:13:20Z"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"


def stamp_path(out):
    out = os.path.abspath(out)
    return os.path.join(os.path.dirname(out), os.path.basename(out) + ".json")


def copy_from(src, out, budget):
    """Copies regular files of src into out in sorted walk order, skipping
    those that would overshoot, until budget bytes (within 64 KiB) are
    copied or src is exhausted; returns (files, bytes)."""
    files = done = 0
    for root, dirs, names in os.walk(src):
        dirs.sort()
        for name in sorted(names):
            if budget - done < 65536:
                return files, done
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
                if (not stat.S_ISREG(st.st_mode) or done + st.st_size > budget
                        or not os.access(path, os.R_OK)):
                    continue
                dest = os.path.join(out, path.lstrip("/"))
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                shutil.copyfile(path, dest)
            except OSError:
                continue  # vanished or unreadable: a real tree has such files
            os.chmod(dest, (st.st_mode & 0o777) | 0o600)
            files += 1
            done += st.st_size
    return files, done


def build(args):
    sources = [s for s in args.sources.split(",") if s]
    params = {"size": args.size, "sources": sources}
    sp = stamp_path(args.out)
    if os.path.exists(sp):
        with open(sp) as f:
            if {k: v for k, v in json.load(f).items() if k in params} == params:
                return 0
    # A half-built or different tree: start again.
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    if os.path.exists(sp):
        os.remove(sp)
    os.makedirs(args.out)
    files = done = 0
    for i, src in enumerate(sources):
        left = args.size - done
        share = left if i == len(sources) - 1 else min(left, args.size // len(sources))
        f, b = copy_from(src, args.out, share)
        files += f
        done += b
    if done < args.size * 0.9:
        sys.exit(f"tree.py: only {done} bytes of files in {', '.join(sources)}, want {args.size}")
    tar = subprocess.Popen(["tar", "-C", args.out, "-cf", "-", "."], stdout=subprocess.PIPE)
    tar_bytes = 0
    while True:
        chunk = tar.stdout.read(1 << 20)
        if not chunk:
            break
        tar_bytes += len(chunk)
    if tar.wait() != 0:
        sys.exit(f"tree.py: tar -C {args.out} failed")
    stamp = dict(params, files=files, bytes=done, tar_bytes=tar_bytes)
    tmp = sp + ".tmp"
    with open(tmp, "w") as f:
        json.dump(stamp, f)
    os.replace(tmp, sp)
    return 0


def stats(args):
    with open(stamp_path(args.dir)) as f:
        print(f.read().strip())
    return 0


def put_json(blobs, obj):
    raw = json.dumps(obj, separators=(",", ":")).encode()
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    with open(os.path.join(blobs, digest[7:]), "wb") as f:
        f.write(raw)
    return digest, len(raw)


def wrap(args):
    for d in (args.diff_id, args.digest):
        if not (d.startswith("sha256:") and len(d) == 71):
            sys.exit(f"tree.py wrap: '{d}' is not a sha256 digest")
    blobs = os.path.join(args.out, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    size = os.path.getsize(args.layer)
    os.replace(args.layer, os.path.join(blobs, args.digest[7:]))
    config = {"created": CREATED, "architecture": "amd64", "os": "linux",
              "config": {}, "rootfs": {"type": "layers", "diff_ids": [args.diff_id]},
              "history": [{"created": CREATED, "created_by": "bench/tree.py wrap"}]}
    cd, cs = put_json(blobs, config)
    man = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
           "config": {"mediaType": MT_CONFIG, "digest": cd, "size": cs},
           "layers": [{"mediaType": args.media_type, "digest": args.digest, "size": size}]}
    md, ms = put_json(blobs, man)
    with open(os.path.join(args.out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [
            {"mediaType": MT_MANIFEST, "digest": md, "size": ms,
             "annotations": {"org.opencontainers.image.ref.name": args.name}}]}, f)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--out", required=True)
    b.add_argument("--size", type=int, required=True)
    b.add_argument("--from", dest="sources", default=SOURCES)
    s = sub.add_parser("stats")
    s.add_argument("dir")
    w = sub.add_parser("wrap")
    w.add_argument("--layer", required=True)
    w.add_argument("--diff-id", required=True)
    w.add_argument("--digest", required=True)
    w.add_argument("--out", required=True)
    w.add_argument("--name", default="w5")
    w.add_argument("--media-type", default="application/vnd.oci.image.layer.v1.tar+gzip")
    args = ap.parse_args()
    if args.cmd == "build" and args.size < 1:
        ap.error("--size must be >= 1")
    return {"build": build, "stats": stats, "wrap": wrap}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
