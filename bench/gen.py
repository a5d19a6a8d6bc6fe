#!/usr/bin/env python3
"""Synthetic images for ocisync's benchmarks, generated deterministically.

One OCI layout holds a whole workload: N images, each with the same shape
(platforms, layers per platform, payload bytes per layer), every layer
different (seeded by workload seed, image, platform and layer), so no
registry or tool can mount or skip a blob it has seen before. Layers are
real gzip tars of random bytes, as in tests/tools/mkimage.py, but written in
16 MiB pieces so a 1 GiB layer needs little memory. index.json lists every
image with its reference in org.opencontainers.image.ref.name
("bench/w1-003:v1"); the basenames are distinct, which skopeo sync needs
(it names destination repositories after the source's last component).

    gen.py build --out DIR --images N [--platforms linux/amd64,linux/arm64]
                 [--layers L] [--layer-size BYTES] [--seed S] [--prefix P]
    gen.py stats DIR [--first N]            blobs, bytes, manifests (JSON)
    gen.py refs DIR [--first N]             one "repo:tag" a line
    gen.py skopeo-yaml DIR REGISTRY [--first N]   a `skopeo sync --src yaml` file
    gen.py ocisync-yaml DIR REGISTRY DEST [--first N]
                                            an `ocisync sync --src yaml` file:
                                            one mirror per image, exact tag
    gen.py view SRC OUT                     the same images as a layout whose
                                            names are tags (see below)
    gen.py oci-pairs DIR DEST [--first N]   "oci:DIR:NAME docker://DEST/BASE:NAME"
                                            lines for `xargs -n 2 ... copy`

`build` does nothing when DIR already holds a complete layout made with the
same arguments, so workloads are generated once and reused across runs.

`view` is for pushing from a layout (workload 3): `ocisync sync --src oci`
pushes each named image of a layout to DEST/BASE:NAME (BASE the layout
directory's name), so a name must be a tag. The view names each image of
SRC by its repository's last component ("bench/w1-003:v1" becomes
"w1-003") and hard-links SRC's blob files (copies them across
filesystems), so the bytes pushed are those of SRC. load() reads such a
name as repository BASE, tag NAME; limit.py then pushes and checks
DEST/BASE:NAME, as ocisync and `oci-pairs` do.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tarfile
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "tools"))
import mkimage  # noqa: E402  (media types, timestamps, platform parsing)

PIECE = 16 * 1024 * 1024


class HashingWriter:
    """A sink for tarfile: hashes the raw tar (the diff_id) and gzips it
    into a file while hashing the compressed bytes (the blob digest)."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.raw = hashlib.sha256()
        self.blob = hashlib.sha256()
        self.size = 0
        self.z = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip wrapper, mtime 0

    def _out(self, data):
        if data:
            self.blob.update(data)
            self.size += len(data)
            self.f.write(data)

    def write(self, data):
        self.raw.update(data)
        self._out(self.z.compress(data))
        return len(data)

    def close(self):
        self._out(self.z.flush())
        self.f.close()


class RandomReader:
    """A file-like object of SIZE seeded random bytes, made PIECE at a time."""

    def __init__(self, key, size):
        self.rng = random.Random(key)
        self.left = size
        self.buf = memoryview(b"")

    def read(self, n=-1):
        if not self.buf and self.left:
            k = min(PIECE, self.left)
            self.buf = memoryview(self.rng.randbytes(k))
            self.left -= k
        n = len(self.buf) if n is None or n < 0 else n
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def make_layer(blobs_dir, key, index, size, label):
    """Writes one layer into blobs_dir; returns (digest, size, diff_id)."""
    tmp = os.path.join(blobs_dir, f".layer.{os.getpid()}.tmp")
    w = HashingWriter(tmp)
    with tarfile.open(fileobj=w, mode="w|", format=tarfile.USTAR_FORMAT,
                      bufsize=1 << 20, copybufsize=PIECE) as tar:
        def info(name, size, kind=tarfile.REGTYPE, mode=0o644):
            ti = tarfile.TarInfo(name)
            ti.mtime = mkimage.EPOCH
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            ti.type = kind
            ti.mode = mode
            ti.size = size
            return ti

        note = f"ocisync bench layer {index}: {label}\n".encode()
        tar.addfile(info("ocisync", 0, tarfile.DIRTYPE, 0o755))
        tar.addfile(info(f"ocisync/layer-{index}.txt", len(note)), _Bytes(note))
        tar.addfile(info(f"ocisync/layer-{index}.bin", size), RandomReader(key, size))
    w.close()
    digest = "sha256:" + w.blob.hexdigest()
    os.replace(tmp, os.path.join(blobs_dir, digest[7:]))
    return digest, w.size, "sha256:" + w.raw.hexdigest()


class _Bytes:
    def __init__(self, data):
        self.data = data

    def read(self, n=-1):
        out, self.data = (self.data, b"") if n is None or n < 0 else (self.data[:n], self.data[n:])
        return out


def build(args):
    params = {k: getattr(args, k) for k in ("images", "platforms", "layers", "layer_size", "seed", "prefix", "tag")}
    stamp = os.path.join(args.out, "bench-params.json")
    if os.path.exists(stamp):
        with open(stamp) as f:
            if json.load(f) == params:
                return 0
        sys.exit(f"gen.py: {args.out} holds a different workload; remove it first")
    plats = [mkimage.parse_platform(p) for p in args.platforms.split(",") if p.strip()]
    layout = mkimage.Layout(args.out)
    mt = mkimage.OCI
    tops = []
    for i in range(args.images):
        repo = f"{args.prefix}-{i:0{max(3, len(str(args.images - 1)))}d}"
        children = []
        for plat in plats:
            pk = mkimage.platform_key(plat)
            layers, diff_ids = [], []
            for li in range(args.layers):
                key = f"seed={args.seed}/{repo}/{pk}/{li}"
                d, s, diff = make_layer(layout.blobs, key, li, args.layer_size, f"{repo} {pk}")
                layers.append({"mediaType": mt["layer"], "digest": d, "size": s})
                diff_ids.append(diff)
            config = {
                "created": mkimage.CREATED, "architecture": plat["architecture"], "os": plat["os"],
                **({"variant": plat["variant"]} if "variant" in plat else {}),
                "config": {"Labels": {"org.ocisync.bench": repo}},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
            cd, cs = layout.put_json(config)
            man = {"schemaVersion": 2, "mediaType": mt["manifest"],
                   "config": {"mediaType": mt["config"], "digest": cd, "size": cs}, "layers": layers}
            md, ms = layout.put_json(man)
            children.append({"mediaType": mt["manifest"], "digest": md, "size": ms, "platform": plat})
        if len(children) == 1:
            top = {k: v for k, v in children[0].items() if k != "platform"}
        else:
            idx = {"schemaVersion": 2, "mediaType": mt["index"], "manifests": children}
            d, s = layout.put_json(idx)
            top = {"mediaType": mt["index"], "digest": d, "size": s}
        top["annotations"] = {"org.opencontainers.image.ref.name": f"{repo}:{args.tag}"}
        tops.append(top)
    # Written whole then renamed, the stamp last: another build of the same
    # workload running at the same time (writing the same bytes) never sees
    # a half-written file, and an interrupted build is redone.
    write_json(os.path.join(args.out, "oci-layout"), {"imageLayoutVersion": "1.0.0"})
    write_json(os.path.join(args.out, "index.json"),
               {"schemaVersion": 2, "mediaType": mt["index"], "manifests": tops})
    write_json(stamp, params)
    return 0


def write_json(path, obj):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def load(layout, first=None):
    """Returns [(repo, tag, top descriptor, [child manifests as dicts], top bytes)]."""
    with open(os.path.join(layout, "index.json")) as f:
        tops = json.load(f)["manifests"]
    if first is not None:
        if first > len(tops):
            sys.exit(f"gen.py: {layout} has {len(tops)} images, not {first}")
        tops = tops[:first]

    def blob(d):
        with open(os.path.join(layout, "blobs", "sha256", d[7:]), "rb") as f:
            return f.read()

    out = []
    for t in tops:
        name = t["annotations"]["org.opencontainers.image.ref.name"]
        if ":" in name:
            repo, tag = name.rsplit(":", 1)
        else:
            # A view's name is a tag of the repository named after the layout.
            repo, tag = os.path.basename(os.path.abspath(layout)), name
        raw = blob(t["digest"])
        doc = json.loads(raw)
        if "manifests" in doc:
            kids = [(m, blob(m["digest"])) for m in doc["manifests"]]
        else:
            kids = []
        out.append({"repo": repo, "tag": tag, "top": t, "raw": raw, "doc": doc,
                    "children": kids})
    return out


def image_blobs(img):
    """The config and layer descriptors of every image manifest in img."""
    mans = [json.loads(raw) for _, raw in img["children"]] or [img["doc"]]
    return [d for m in mans for d in [m["config"]] + m["layers"]]


def stats(args):
    imgs = load(args.layout, args.first)
    blobs = {}
    man_n = man_bytes = 0
    for img in imgs:
        for d in image_blobs(img):
            blobs[d["digest"]] = d["size"]
        man_n += 1 + len(img["children"])
        man_bytes += len(img["raw"]) + sum(len(r) for _, r in img["children"])
    json.dump({"images": len(imgs), "blobs": len(blobs), "blob_bytes": sum(blobs.values()),
               "manifests": man_n, "manifest_bytes": man_bytes,
               "bytes": sum(blobs.values()) + man_bytes}, sys.stdout)
    print()


def refs(args):
    for img in load(args.layout, args.first):
        print(f"{img['repo']}:{img['tag']}")


def skopeo_yaml(args):
    # One registry entry, plain HTTP; skopeo sync --src yaml copies exactly these tags.
    imgs = load(args.layout, args.first)
    print(f"{args.registry}:")
    print("  tls-verify: false")
    print("  images:")
    for img in imgs:
        print(f"    {img['repo']}: [\"{img['tag']}\"]")


def ocisync_yaml(args):
    # ocisync's own format: each mirror names its destination, DEST/NAME as
    # skopeo sync names it (the repository's last component), so one check
    # (limit.py verify --dest-prefix) serves both tools. The exact tag means
    # no tag listing; 127.0.0.1 is plain HTTP by default, no registries: entry.
    # Strings are written as JSON, which YAML reads as double-quoted scalars.
    print("mirrors:")
    for img in load(args.layout, args.first):
        print(f"  - from: {json.dumps(args.registry + '/' + img['repo'])}")
        print(f"    to: {json.dumps(args.dest + '/' + img['repo'].rsplit('/', 1)[-1])}")
        print(f"    tags: [{json.dumps(img['tag'])}]")


def view(args):
    src, out = os.path.abspath(args.src), os.path.abspath(args.out)
    with open(os.path.join(src, "index.json"), "rb") as f:
        raw = f.read()
    stamp_path = os.path.join(out, "bench-view.json")
    stamp = {"view_of": src, "index_sha256": hashlib.sha256(raw).hexdigest()}
    if os.path.exists(stamp_path):
        with open(stamp_path) as f:
            if json.load(f) == stamp:
                return 0
        # A view of an older SRC: links to blobs SRC no longer has.
        shutil.rmtree(out)
    tops = json.loads(raw)["manifests"]
    names = set()
    for t in tops:
        name = t["annotations"]["org.opencontainers.image.ref.name"].rsplit(":", 1)[0].rsplit("/", 1)[-1]
        if name in names:
            sys.exit(f"gen.py view: two images of {src} would both be named {name}")
        names.add(name)
        t["annotations"]["org.opencontainers.image.ref.name"] = name
    src_blobs = os.path.join(src, "blobs", "sha256")
    dst_blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(dst_blobs, exist_ok=True)
    for name in os.listdir(src_blobs):
        if name.startswith("."):
            continue  # a temp file of an interrupted build
        s, d = os.path.join(src_blobs, name), os.path.join(dst_blobs, name)
        if os.path.exists(d):
            continue
        try:
            os.link(s, d)
        except OSError:
            shutil.copyfile(s, d)
    write_json(os.path.join(out, "oci-layout"), {"imageLayoutVersion": "1.0.0"})
    write_json(os.path.join(out, "index.json"),
               {"schemaVersion": 2, "mediaType": mkimage.OCI["index"], "manifests": tops})
    write_json(stamp_path, stamp)
    return 0


def oci_pairs(args):
    base = os.path.basename(os.path.abspath(args.layout))
    for img in load(args.layout, args.first):
        if img["repo"] != base:
            sys.exit(f"gen.py oci-pairs: {args.layout} names images as repositories; make a view first")
        print(f"oci:{os.path.abspath(args.layout)}:{img['tag']} docker://{args.dest}/{base}:{img['tag']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--out", required=True)
    b.add_argument("--images", type=int, default=1)
    b.add_argument("--platforms", default="linux/amd64")
    b.add_argument("--layers", type=int, default=1)
    b.add_argument("--layer-size", type=int, default=4096)
    b.add_argument("--seed", default="bench")
    b.add_argument("--prefix", default="bench/img")
    b.add_argument("--tag", default="v1")
    v = sub.add_parser("view")
    v.add_argument("src")
    v.add_argument("out")
    for name in ("stats", "refs", "skopeo-yaml", "ocisync-yaml", "oci-pairs"):
        p = sub.add_parser(name)
        p.add_argument("layout")
        if name in ("skopeo-yaml", "ocisync-yaml"):
            p.add_argument("registry", help="the source, HOST:PORT")
        if name in ("ocisync-yaml", "oci-pairs"):
            p.add_argument("dest", help="the destination, HOST:PORT/PREFIX")
        p.add_argument("--first", type=int)
    args = ap.parse_args()
    if args.cmd == "build":
        if args.images < 1 or args.layers < 1 or args.layer_size < 0:
            ap.error("--images and --layers must be >= 1, --layer-size >= 0")
        return build(args)
    return {"stats": stats, "refs": refs, "skopeo-yaml": skopeo_yaml,
            "ocisync-yaml": ocisync_yaml, "view": view,
            "oci-pairs": oci_pairs}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
