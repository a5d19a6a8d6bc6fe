#!/usr/bin/env python3
"""Attach an artifact (a signature, an SBOM) to a manifest in a registry, the
way cosign and oras do on registries without the OCI 1.1 referrers API.

Pushes an empty config, one layer holding PAYLOAD, an OCI artifact manifest
whose "subject" is the given manifest, and then the fallback tag
"sha256-<subject hex>": an index of every referrer of the subject (the
existing index is kept and extended). Prints the artifact manifest's digest.

    attach.py ADDR REPO SUBJECT_DIGEST SUBJECT_MEDIA_TYPE SUBJECT_SIZE ARTIFACT_TYPE PAYLOAD
"""

import hashlib
import json
import sys
import urllib.error
import urllib.request

EMPTY = b"{}"
EMPTY_MT = "application/vnd.oci.empty.v1+json"
MANIFEST_MT = "application/vnd.oci.image.manifest.v1+json"
INDEX_MT = "application/vnd.oci.image.index.v1+json"


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def request(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, dict(r.headers), r.read()


def push_blob(base, repo, data):
    d = digest(data)
    _, h, _ = request("POST", f"{base}/v2/{repo}/blobs/uploads/")
    loc = h["Location"]
    if loc.startswith("/"):
        loc = base + loc
    sep = "&" if "?" in loc else "?"
    request("PUT", f"{loc}{sep}digest={d}", data, {"Content-Type": "application/octet-stream"})
    return d


def main():
    addr, repo, subj, subj_mt, subj_size, art_type, payload = sys.argv[1:8]
    base = f"http://{addr}"
    push_blob(base, repo, EMPTY)
    layer = payload.encode()
    layer_d = push_blob(base, repo, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MT,
        "artifactType": art_type,
        "config": {"mediaType": EMPTY_MT, "digest": digest(EMPTY), "size": len(EMPTY)},
        "layers": [{"mediaType": art_type, "digest": layer_d, "size": len(layer)}],
        "subject": {"mediaType": subj_mt, "digest": subj, "size": int(subj_size)},
    }
    raw = json.dumps(manifest, separators=(",", ":")).encode()
    md = digest(raw)
    request("PUT", f"{base}/v2/{repo}/manifests/{md}", raw, {"Content-Type": MANIFEST_MT})
    tag = subj.replace(":", "-")
    index = {"schemaVersion": 2, "mediaType": INDEX_MT, "manifests": []}
    try:
        _, _, body = request("GET", f"{base}/v2/{repo}/manifests/{tag}", headers={"Accept": INDEX_MT})
        index = json.loads(body)
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise
    index["manifests"].append(
        {"mediaType": MANIFEST_MT, "digest": md, "size": len(raw), "artifactType": art_type})
    ri = json.dumps(index, separators=(",", ":")).encode()
    request("PUT", f"{base}/v2/{repo}/manifests/{tag}", ri, {"Content-Type": INDEX_MT})
    print(md)


if __name__ == "__main__":
    main()
