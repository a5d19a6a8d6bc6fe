#!/usr/bin/env python3
"""Generate an OCI image layout deterministically from a seed.

The same arguments always give the same bytes, hence the same digests, so
tests can compare what a registry serves with what was generated.

Each layer is a real gzip-compressed tar (a small text file plus a file of
random bytes, so compression cannot shrink it) that podman and umoci can
unpack. Each config is a valid image config whose rootfs.diff_ids are the
digests of the uncompressed tars.

    mkimage.py --out DIR [--platforms linux/amd64,linux/arm64/v8] [--layers N]
               [--layer-size BYTES] [--shared-layers K] [--seed S]
               [--docker] [--index] [--tag T]

One platform gives a single image manifest (no index unless --index);
several give an image index. The layout's index.json points at that one
top-level manifest or index, annotated with org.opencontainers.image.ref.name
when --tag is given. The top-level digest is printed on stdout; with
--verbose the child manifests are printed to stderr as well.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import sys
import tarfile

OCI = {
    "index": "application/vnd.oci.image.index.v1+json",
    "manifest": "application/vnd.oci.image.manifest.v1+json",
    "config": "application/vnd.oci.image.config.v1+json",
    "layer": "application/vnd.oci.image.layer.v1.tar+gzip",
}
DOCKER = {
    "index": "application/vnd.docker.distribution.manifest.list.v2+json",
    "manifest": "application/vnd.docker.distribution.manifest.v2+json",
    "config": "application/vnd.docker.container.image.v1+json",
    "layer": "application/vnd.docker.image.rootfs.diff.tar.gzip",
}
# A fixed timestamp keeps tar headers and configs reproducible.
EPOCH = 1700000000
CREATED = "2023-11-14T22:13:20Z"


def parse_platform(text):
    parts = text.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise argparse.ArgumentTypeError(f"bad platform {text!r}: want os/arch[/variant]")
    plat = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        plat["variant"] = parts[2]
    return plat


def platform_key(plat):
    return "/".join(filter(None, [plat["os"], plat["architecture"], plat.get("variant")]))


class Layout:
    def __init__(self, out):
        self.out = out
        self.blobs = os.path.join(out, "blobs", "sha256")
        os.makedirs(self.blobs, exist_ok=True)

    def put(self, data):
        """Writes a blob and returns its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = os.path.join(self.blobs, digest[len("sha256:"):])
        if not os.path.exists(path):
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        return digest

    def put_json(self, obj):
        data = json.dumps(obj, separators=(",", ":"), sort_keys=False).encode()
        return self.put(data), len(data)


def make_layer(key, index, size, label):
    """Returns (compressed bytes, diff_id) of one layer.

    The payload depends only on key, so layers with the same key are
    identical byte for byte, whichever platform asks for them.
    """
    rng = random.Random(key)
    # randbytes takes at most 2**31 bits at once; larger payloads come in pieces.
    piece = 64 * 1024 * 1024
    payload = b"".join(rng.randbytes(min(piece, size - off)) for off in range(0, size, piece))
    note = f"ocisync test layer {index}: {label}\n".encode()

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        def add(name, data=None, mode=0o644):
            info = tarfile.TarInfo(name)
            info.mtime = EPOCH
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = mode
                tar.addfile(info, io.BytesIO(data))

        add("ocisync")
        add(f"ocisync/layer-{index}.txt", note)
        add(f"ocisync/layer-{index}.bin", payload)
    raw = buf.getvalue()
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    return gzip.compress(raw, compresslevel=1, mtime=0), diff_id


def build_image(layout, mt, plat, args, shared_cache):
    layers = []
    diff_ids = []
    history = []
    for i in range(args.layers):
        if i < args.shared_layers:
            cache_key = f"seed={args.seed}/shared/{i}"
            label = "shared"
        else:
            cache_key = f"seed={args.seed}/{platform_key(plat)}/{i}"
            label = platform_key(plat)
        if cache_key in shared_cache:
            blob_digest, blob_size, diff_id = shared_cache[cache_key]
        else:
            blob, diff_id = make_layer(cache_key, i, args.layer_size, label)
            blob_digest, blob_size = layout.put(blob), len(blob)
            shared_cache[cache_key] = (blob_digest, blob_size, diff_id)
        layers.append({"mediaType": mt["layer"], "digest": blob_digest, "size": blob_size})
        diff_ids.append(diff_id)
        history.append({"created": CREATED, "created_by": f"mkimage.py layer {i} ({label})"})

    config = {
        "created": CREATED,
        "architecture": plat["architecture"],
        "os": plat["os"],
    }
    if "variant" in plat:
        config["variant"] = plat["variant"]
    config["config"] = {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Labels": {"org.ocisync.test.seed": str(args.seed),
                   "org.ocisync.test.platform": platform_key(plat)},
    }
    if args.cmd:
        config["config"]["Cmd"] = json.loads(args.cmd)
    config["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
    config["history"] = history
    cfg_digest, cfg_size = layout.put_json(config)

    manifest = {
        "schemaVersion": 2,
        "mediaType": mt["manifest"],
        "config": {"mediaType": mt["config"], "digest": cfg_digest, "size": cfg_size},
        "layers": layers,
    }
    digest, size = layout.put_json(manifest)
    return {"mediaType": mt["manifest"], "digest": digest, "size": size, "platform": plat}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="layout directory to write")
    ap.add_argument("--platforms", default="linux/amd64",
                    help="comma-separated os/arch[/variant] list (default linux/amd64)")
    ap.add_argument("--layers", type=int, default=2, help="layers per image (default 2)")
    ap.add_argument("--layer-size", type=int, default=4096,
                    help="random payload bytes per layer (default 4096)")
    ap.add_argument("--shared-layers", type=int, default=0,
                    help="the first K layers are identical across platforms")
    ap.add_argument("--seed", default="0", help="seed; same seed, same bytes")
    ap.add_argument("--docker", action="store_true",
                    help="Docker schema 2 media types instead of OCI")
    ap.add_argument("--index", action="store_true",
                    help="write an index even for a single platform")
    ap.add_argument("--tag", help="org.opencontainers.image.ref.name in index.json")
    ap.add_argument("--cmd", help="config.Cmd, as a JSON array")
    ap.add_argument("--verbose", "-v", action="store_true",
                    help="print child manifests to stderr")
    args = ap.parse_args(argv)

    try:
        plats = [parse_platform(p) for p in args.platforms.split(",") if p.strip()]
    except argparse.ArgumentTypeError as e:
        ap.error(str(e))
    if not plats:
        ap.error("--platforms is empty")
    if len({platform_key(p) for p in plats}) != len(plats):
        ap.error("--platforms lists a platform twice")
    if args.layers < 1 or args.layer_size < 0:
        ap.error("--layers must be >= 1 and --layer-size >= 0")
    if not 0 <= args.shared_layers <= args.layers:
        ap.error("--shared-layers must be between 0 and --layers")

    mt = DOCKER if args.docker else OCI
    layout = Layout(args.out)
    cache = {}
    children = [build_image(layout, mt, p, args, cache) for p in plats]

    if len(children) == 1 and not args.index:
        top = {k: v for k, v in children[0].items() if k != "platform"}
    else:
        index = {"schemaVersion": 2, "mediaType": mt["index"], "manifests": children}
        digest, size = layout.put_json(index)
        top = {"mediaType": mt["index"], "digest": digest, "size": size}
    if args.tag:
        top["annotations"] = {"org.opencontainers.image.ref.name": args.tag}

    with open(os.path.join(args.out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": OCI["index"], "manifests": [top]}, f)

    if args.verbose:
        for c in children:
            print(f"{platform_key(c['platform'])} {c['digest']}", file=sys.stderr)
    print(top["digest"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
