#!/usr/bin/env python3
"""Compare two images file by file and field by field (stdlib only).

    treecmp.py [--allow FILE]... [--names LEFT,RIGHT] [--each-layer] [--strict] IMAGE_A IMAGE_B
    treecmp.py --dump IMAGE

IMAGE is oci:DIR[:NAME] (an OCI layout; an index is followed to its
linux/amd64 manifest, or its only one), dir:DIR (what skopeo, buildah and
podman write with the dir: transport, Docker or OCI media types) or
rootfs:DIR (an unpacked root filesystem, such as umoci's, read with lstat;
it has no config, so no config field is compared).

With --each-layer the two images must have as many layers, and their trees
are compared after every layer, not only at the end; each difference is
shown once, with the layers after which it shows ("[layers 2-7]"). With
--strict a rule of the allow-list that allows no difference is an error too,
so that a list cannot keep rules for differences that went away.

Each image's layers are read from their tar headers, never unpacked, and
laid over each other as a runtime would (whiteouts and opaque directories
applied), so owners, modes and device numbers are what the layers say and
not what the user running this may create. For every path of the resulting
tree it compares the type, permission bits (set-id and sticky included),
uid, gid, symlink target, size, sha256 of the contents, the other paths that
are the same file (hardlinks), mtime, xattrs (name=value, a binary value
in hex: "security.capability=0x0100000200...") and device numbers. From the
config it compares os, architecture, variant, created, author and the fields of
config a Dockerfile sets: Env, Entrypoint, Cmd, WorkingDir, User, Labels,
ExposedPorts, Volumes, StopSignal, Healthcheck, Shell, OnBuild. A field that
is absent, null or empty counts as absent (Docker's configs write [] and {}
where OCI ones leave the key out).

Every difference is one line, e.g.

    tree /etc/app/a.yaml  mode: buildah 0644 | ocisync 0600
    config Labels[io.buildah.version]: buildah '1.28.2' | ocisync <absent>

An allow-list file has one rule a line, each followed by its reason after
"#" (a rule without a reason is an error):

    KIND GLOB FIELD [A=VALUE] [B=VALUE]   # why this difference is expected

KIND is tree or config; GLOB a pattern (* and ? are wildcards, nothing
else) on the path (tree) or on the config field with its key
("Labels[io.buildah.version]", "Env[PATH]", "Env(order)"); FIELD a field
name or *; A= and B= pin the values shown (as printed, "<absent>" for none),
so that a rule allows exactly the difference it explains. A difference no
rule allows is an error. Exit status: 0 the images match but for allowed
differences (and, with --strict, every rule allowed one), 1 they differ,
2 usage or input error.
"""

import fnmatch
import gzip
import hashlib
import io
import json
import os
import shlex
import stat
import subprocess
import sys
import tarfile

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
CONFIG_FIELDS = (
    "Env", "Entrypoint", "Cmd", "WorkingDir", "User", "Labels", "ExposedPorts",
    "Volumes", "StopSignal", "Healthcheck", "Shell", "OnBuild",
)
TOP_FIELDS = ("os", "architecture", "variant", "created", "author")
ABSENT = "<absent>"


class InputError(Exception):
    pass


# --- reading images ---------------------------------------------------------


def _read_json(path):
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read {path}: {e}") from e


def _pick_child(index, where):
    """The linux/amd64 manifest of an index, or its only one."""
    ms = index.get("manifests") or []
    amd = [m for m in ms if m.get("platform", {}).get("os") == "linux"
           and m.get("platform", {}).get("architecture") == "amd64"]
    if len(amd) == 1:
        return amd[0]
    if len(ms) == 1:
        return ms[0]
    raise InputError(f"{where}: an index with {len(ms)} manifests and no single linux/amd64 one")


def load_image(spec):
    """Returns (config, [layer blob paths]) for oci:DIR[:NAME] or dir:DIR."""
    if spec.startswith("oci:"):
        rest = spec[4:]
        d, _, name = rest.partition(":")
        blob = lambda dg: os.path.join(d, "blobs", *dg.split(":", 1))  # noqa: E731
        index = _read_json(os.path.join(d, "index.json"))
        ms = index.get("manifests") or []
        if name:
            ms = [m for m in ms if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == name]
        if len(ms) != 1:
            raise InputError(f"{spec}: {len(ms)} manifests named {name or '(any)'} in index.json")
        desc = ms[0]
        manifest = _read_json(blob(desc["digest"]))
        while manifest.get("mediaType", desc.get("mediaType")) in INDEX_TYPES or "manifests" in manifest:
            desc = _pick_child(manifest, spec)
            manifest = _read_json(blob(desc["digest"]))
    elif spec.startswith("dir:"):
        d = spec[4:]
        blob = lambda dg: os.path.join(d, dg.split(":", 1)[1])  # noqa: E731
        manifest = _read_json(os.path.join(d, "manifest.json"))
        if "manifests" in manifest:
            raise InputError(f"{spec}: a manifest list; copy one platform with the dir: transport")
    else:
        raise InputError(f"unknown image {spec!r}: want oci:DIR[:NAME] or dir:DIR")
    config = _read_json(blob(manifest["config"]["digest"]))
    layers = [blob(l["digest"]) for l in manifest.get("layers", [])]
    return config, layers


def _open_layer(path):
    """A file object with the layer's uncompressed tar (gzip, zstd or none)."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic == b"\x28\xb5\x2f\xfd":
        try:
            out = subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout
        except (OSError, subprocess.CalledProcessError) as e:
            raise InputError(f"cannot decompress zstd layer {path}: {e}") from e
        return io.BytesIO(out)
    return open(path, "rb")


def _norm(name):
    """A tar member name as an absolute path without a trailing slash."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InputError(f"layer entry {name!r} climbs out with ..")
    return "/" + "/".join(parts)


def _parent(path):
    return path.rsplit("/", 1)[0] or "/"


TYPES = {
    tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file",
    tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo",
}


class Tree:
    """The filesystem that a stack of layers gives."""

    def __init__(self):
        self.entries = {}  # path -> dict of fields (plus "_inode")
        self._inodes = 0

    def _remove_tree(self, path, keep=None):
        """Removes path and everything below it (not what keep holds)."""
        prefix = path.rstrip("/") + "/"
        for p in [p for p in self.entries if p == path or p.startswith(prefix)]:
            if keep is None or p not in keep:
                del self.entries[p]

    def apply(self, layer_path):
        members = []
        with _open_layer(layer_path) as fo:
            with tarfile.open(fileobj=fo, mode="r|") as tf:
                for m in tf:
                    e = {"_name": _norm(m.name), "_member": m}
                    if m.isreg():
                        h = hashlib.sha256()
                        f = tf.extractfile(m)
                        while True:
                            chunk = f.read(1 << 20)
                            if not chunk:
                                break
                            h.update(chunk)
                        e["_sha"] = h.hexdigest()
                    members.append(e)
        # Whiteouts hide what the layers below have, never this layer's own entries.
        for e in members:
            path = e["_name"]
            base = path.rsplit("/", 1)[1]
            if base == ".wh..wh..opq":
                d = _parent(path)
                below = [p for p in self.entries if p.startswith(d.rstrip("/") + "/")]
                for p in below:
                    del self.entries[p]
            elif base.startswith(".wh."):
                self._remove_tree(_parent(path).rstrip("/") + "/" + base[4:])
        for e in members:
            path, m = e["_name"], e["_member"]
            if path.rsplit("/", 1)[1].startswith(".wh."):
                continue
            if m.islnk():
                target = _norm(m.linkname)
                t = self.entries.get(target)
                if t is None or t["type"] != "file":
                    raise InputError(f"{layer_path}: hardlink {path} -> {target}, not a file")
                self._remove_tree(path)
                self.entries[path] = dict(t)
                continue
            typ = TYPES.get(m.type)
            if typ is None:
                raise InputError(f"{layer_path}: {path} has tar type {m.type!r}")
            old = self.entries.get(path)
            if not (typ == "dir" and old is not None and old["type"] == "dir"):
                self._remove_tree(path)
            ent = {
                "type": typ,
                "mode": "%04o" % stat.S_IMODE(m.mode),
                "uid": m.uid,
                "gid": m.gid,
                "mtime": int(m.mtime),
            }
            if typ == "file":
                self._inodes += 1
                ent["size"] = m.size
                ent["sha256"] = e["_sha"]
                ent["_inode"] = self._inodes
            elif typ == "symlink":
                ent["target"] = m.linkname
            elif typ in ("char", "block"):
                ent["dev"] = "%d,%d" % (m.devmajor, m.devminor)
            # tarfile decodes a binary value with surrogateescape: undo it.
            xattrs = {k[len("SCHILY.xattr."):]: v.encode("utf-8", "surrogateescape")
                      for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}
            if xattrs:
                ent["xattrs"] = show_xattrs(xattrs)
            self.entries[path] = ent

    def finish(self):
        """Adds to each file the other paths that are the same file."""
        groups = {}
        for p, e in self.entries.items():
            if "_inode" in e:
                groups.setdefault(e["_inode"], []).append(p)
        # Copies: the tree may take more layers and be finished again.
        out = {p: {k: v for k, v in e.items() if not k.startswith("_")}
               for p, e in self.entries.items()}
        for p, e in self.entries.items():
            if "_inode" in e:
                others = sorted(q for q in groups[e["_inode"]] if q != p)
                if others:
                    out[p]["hardlinks"] = " ".join(others)
        return out


def show_xattrs(xattrs):
    """name=value pairs, sorted; a value that is not printable text in hex."""
    out = []
    for k in sorted(xattrs):
        v = xattrs[k]
        try:
            text = v.decode("ascii")
            shown = text if text.isprintable() and text[:2] != "0x" else None
        except UnicodeDecodeError:
            shown = None
        out.append(f"{k}={shown if shown is not None else '0x' + v.hex()}")
    return " ".join(out)


def image_tree(layers):
    t = Tree()
    for layer in layers:
        t.apply(layer)
    return t.finish()


def image_trees(layers):
    """The tree after each layer, the first layer's first."""
    t, trees = Tree(), []
    for layer in layers:
        t.apply(layer)
        trees.append(t.finish())
    return trees


def rootfs_tree(root):
    """The tree of an unpacked root filesystem (umoci's rootfs), read with lstat."""
    if not os.path.isdir(root):
        raise InputError(f"rootfs:{root}: not a directory")
    types = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink",
             stat.S_IFCHR: "char", stat.S_IFBLK: "block", stat.S_IFIFO: "fifo"}
    entries, inodes = {}, {}
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            full = os.path.join(d, name)
            path = "/" + os.path.relpath(full, root)
            st = os.lstat(full)
            typ = types.get(stat.S_IFMT(st.st_mode))
            if typ is None:
                raise InputError(f"{full}: a socket or unknown file type")
            ent = {"type": typ, "mode": "%04o" % stat.S_IMODE(st.st_mode), "uid": st.st_uid,
                   "gid": st.st_gid, "mtime": int(st.st_mtime)}
            if typ == "file":
                h = hashlib.sha256()
                with open(full, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                ent["size"], ent["sha256"] = st.st_size, h.hexdigest()
                ent["_inode"] = inodes.setdefault((st.st_dev, st.st_ino), len(inodes) + 1)
            elif typ == "symlink":
                ent["target"] = os.readlink(full)
            elif typ in ("char", "block"):
                ent["dev"] = "%d,%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
            xattrs = {k: os.getxattr(full, k, follow_symlinks=False)
                      for k in os.listxattr(full, follow_symlinks=False)}
            if xattrs:
                ent["xattrs"] = show_xattrs(xattrs)
            entries[path] = ent
    t = Tree()
    t.entries = entries
    return t.finish()


# --- comparing ---------------------------------------------------------------


def _empty(v):
    return v is None or v == [] or v == {} or v == ""


def config_fields(config):
    """Flattens the compared config fields to {"Labels[k]": value, ...}."""
    out = {}
    for k in TOP_FIELDS:
        if not _empty(config.get(k)):
            out[k] = config[k]
    c = config.get("config") or {}
    for k in CONFIG_FIELDS:
        v = c.get(k)
        if _empty(v):
            continue
        if k in ("Labels", "ExposedPorts", "Volumes"):
            for sub, sv in v.items():
                out[f"{k}[{sub}]"] = sv if k == "Labels" else "present"
        elif k == "Env":
            for item in v:
                name, _, val = item.partition("=")
                out[f"Env[{name}]"] = val
            out["Env(order)"] = " ".join(item.partition("=")[0] for item in v)
        elif k == "Healthcheck":
            for sub, sv in v.items():
                if not _empty(sv):
                    out[f"Healthcheck[{sub}]"] = sv
        else:
            out[k] = v
    return out


def show(v):
    if v is None:
        return ABSENT
    if isinstance(v, str):
        return v
    return json.dumps(v)


def diff(a, b):
    """Yields (kind, key, field, value_a, value_b), values shown as text."""
    for path in sorted(set(a["tree"]) | set(b["tree"])):
        ea, eb = a["tree"].get(path), b["tree"].get(path)
        if ea is None or eb is None:
            yield ("tree", path, "exists", show(ea and ea["type"]), show(eb and eb["type"]))
            continue
        for f in ("type", "mode", "uid", "gid", "target", "size", "sha256", "hardlinks",
                  "mtime", "xattrs", "dev"):
            va, vb = ea.get(f), eb.get(f)
            if va != vb:
                yield ("tree", path, f, show(va), show(vb))
    if a["config"] is None or b["config"] is None:
        return  # an unpacked rootfs has no config
    for key in sorted(set(a["config"]) | set(b["config"])):
        va, vb = a["config"].get(key), b["config"].get(key)
        if va != vb:
            yield ("config", key, "value", show(va), show(vb))


class Rule:
    def __init__(self, text, where):
        body, sep, reason = text.partition("#")
        if not sep or not reason.strip():
            raise InputError(f"{where}: a rule needs its reason after '#': {text.strip()!r}")
        try:
            words = shlex.split(body)
        except ValueError as e:
            raise InputError(f"{where}: {e}") from e
        if len(words) < 3 or words[0] not in ("tree", "config"):
            raise InputError(f"{where}: want 'tree|config GLOB FIELD [A=V] [B=V] # reason'")
        self.kind, self.glob, self.field = words[:3]
        # Only * and ? are wildcards: "[" is literal, as in "Labels[k]".
        self.pattern = self.glob.replace("[", "[[]")
        self.pins = {}
        for w in words[3:]:
            side, eq, val = w.partition("=")
            if not eq or side not in ("A", "B"):
                raise InputError(f"{where}: bad pin {w!r} (want A=VALUE or B=VALUE)")
            self.pins[side] = val
        self.reason = reason.strip()
        self.where = where
        self.used = 0

    def allows(self, kind, key, field, va, vb):
        return (kind == self.kind and fnmatch.fnmatchcase(key, self.pattern)
                and self.field in ("*", field)
                and self.pins.get("A", va) == va and self.pins.get("B", vb) == vb)


def load_rules(paths):
    rules = []
    for p in paths:
        try:
            with open(p) as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise InputError(f"cannot read allow-list {p}: {e}") from e
        for n, line in enumerate(lines, 1):
            if line.strip() and not line.lstrip().startswith("#"):
                rules.append(Rule(line, f"{p}:{n}"))
    return rules


def describe(spec, each_layer=False):
    if spec.startswith("rootfs:"):
        return {"tree": rootfs_tree(spec[len("rootfs:"):]), "config": None, "layers": 0}
    config, layers = load_image(spec)
    img = {"config": config_fields(config), "layers": len(layers)}
    if each_layer:
        img["trees"] = image_trees(layers)
        img["tree"] = img["trees"][-1] if layers else {}
    else:
        img["tree"] = image_tree(layers)
    return img


def diffs(a, b, each_layer):
    """(kind, key, field, value_a, value_b, layers): with each_layer, the
    trees are compared after every layer and each difference is given once
    with the layers (1 is the first) after which it shows."""
    if not each_layer:
        for d in diff(a, b):
            yield d + ("",)
        return
    if a["layers"] != b["layers"]:
        raise InputError(f"--each-layer: {a['layers']} layers and {b['layers']} layers")
    seen = {}
    for i, (ta, tb) in enumerate(zip(a["trees"], b["trees"]), 1):
        for d in diff({"tree": ta, "config": {}}, {"tree": tb, "config": {}}):
            seen.setdefault(d, []).append(i)
    for d in diff({"tree": {}, "config": a["config"]}, {"tree": {}, "config": b["config"]}):
        seen.setdefault(d, [])
    for d, layers in sorted(seen.items(), key=lambda kv: (kv[0][0] != "tree", kv[0][1], kv[0][2])):
        yield d + (_ranges(layers),)


def _ranges(ns):
    """[1, 2, 3, 5] -> "layers 1-3,5"."""
    if not ns:
        return ""
    parts, start = [], ns[0]
    for prev, n in zip(ns, ns[1:] + [None]):
        if n != prev + 1:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = n
    return ("layer " if len(ns) == 1 else "layers ") + ",".join(parts)


def dump(spec):
    img = describe(spec)
    for path, e in sorted(img["tree"].items()):
        extra = " ".join(f"{k}={v}" for k, v in e.items() if k not in ("type", "mode", "uid", "gid", "mtime"))
        print(f"{e['type']:7} {e['mode']} {e['uid']}:{e['gid']} {e['mtime']} {path} {extra}".rstrip())
    for k, v in sorted(img["config"].items()):
        print(f"config {k} = {show(v)}")


def main(argv):
    args, allow, names, each_layer, strict = [], [], ("A", "B"), False, False
    i = 0
    try:
        while i < len(argv):
            if argv[i] == "--allow":
                allow.append(argv[i + 1])
                i += 2
            elif argv[i] == "--names":
                names = tuple(argv[i + 1].split(",", 1))
                i += 2
            elif argv[i] == "--each-layer":
                each_layer = True
                i += 1
            elif argv[i] == "--strict":
                strict = True
                i += 1
            elif argv[i] == "--dump":
                dump(argv[i + 1])
                return 0
            else:
                args.append(argv[i])
                i += 1
        if len(args) != 2 or len(names) != 2:
            print(__doc__.split("\n\n")[1], file=sys.stderr)
            return 2
        rules = load_rules(allow)
        a, b = describe(args[0], each_layer), describe(args[1], each_layer)
        found = list(diffs(a, b, each_layer))
    except (InputError, IndexError) as e:
        print(f"treecmp: {e}", file=sys.stderr)
        return 2
    na, nb = names
    bad = allowed = 0
    for kind, key, field, va, vb, layers in found:
        rule = next((r for r in rules if r.allows(kind, key, field, va, vb)), None)
        line = f"{kind} {key}  {field}: {na} {va} | {nb} {vb}" + (f"  [{layers}]" if layers else "")
        if rule:
            rule.used += 1
            allowed += 1
            print(f"  allowed: {line}  ({rule.where}: {rule.reason})")
        else:
            bad += 1
            print(f"  DIFF:    {line}")
    unused = [r for r in rules if not r.used]
    for r in unused:
        print(f"  {'UNUSED' if strict else 'unused'}:  {r.where}: a rule no difference needs: "
              f"{r.kind} {r.glob} {r.field}")
    print(f"treecmp: {len(a['tree'])} paths ({na}) and {len(b['tree'])} paths ({nb}), "
          f"{0 if a['config'] is None or b['config'] is None else len(set(a['config']) | set(b['config']))}"
          f" config fields"
          f"{', after each of %d layers' % a['layers'] if each_layer else ''}: "
          f"{bad} unexpected difference(s), {allowed} allowed")
    return 1 if bad or (strict and unused) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
