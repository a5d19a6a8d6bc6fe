/*
 * Docker archives (docker-archive:FILE[:REF]), what `docker save` writes and
 * `docker load` / `podman load` read: manifest.json listing, per image, its
 * config file, its repository tags and its layer tar files.
 *
 * As a source, the unpacked archive becomes an OCI layout next to it (the
 * config and layer files linked in as blobs, an OCI manifest written for
 * them). As a destination, an image copied into a temp layout is written out
 * in that form: layers decompressed to the tar files docker load expects,
 * each checked against its diff_id, then packed atomically.
 */
#include "oci/docker_archive.h"

#include "common/json_depth.h"
#include "common/sysio.h"
#include "oci/archive.h"
#include "oci/imgconfig.h"
#include "oci/layout.h"
#include "oci/oci.h"
#include "ocisync.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <uv.h>
#include <zlib.h>
#include <zstd.h>

#define MANIFEST_JSON_MAX (4 * 1024 * 1024)
#define BUF (256 * 1024)

/* Reads a small file whole (at most max bytes). */
static int read_small(const char *path, size_t max, char **out, size_t *len)
{
    struct stat st;
    char *buf;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), err = 0;
    if (fd < 0)
        return uv_translate_sys_error(errno);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        close(fd);
        return OCISYNC_ETOOBIG;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return UV_ENOMEM;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = n == 0 ? UV_EIO : uv_translate_sys_error(errno);
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (err != 0) {
        free(buf);
        return err;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

/* sha256 and size of a file, and its first bytes (for the compression's magic). */
static int hash_file(const char *path, struct oci_digest *d, uint64_t *size, unsigned char *head)
{
    struct oci_hasher h;
    char *buf = malloc(BUF);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), err = 0;
    memset(head, 0, 4);
    if (fd < 0 || buf == NULL) {
        err = fd < 0 ? uv_translate_sys_error(errno) : UV_ENOMEM;
        goto out;
    }
    err = oci_hasher_init(&h, OCI_DIGEST_SHA256);
    if (err != 0)
        goto out;
    for (;;) {
        ssize_t n = read(fd, buf, BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = uv_translate_sys_error(errno);
            break;
        }
        if (n == 0)
            break;
        if (h.n_bytes == 0)
            memcpy(head, buf, n < 4 ? (size_t)n : 4);
        oci_hasher_update(&h, buf, (size_t)n);
    }
    *size = h.n_bytes;
    if (err == 0)
        err = oci_hasher_final(&h, d);
    else
        oci_hasher_dispose(&h);
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return err;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading */

/* The manifest.json entry named by ref ("repo:tag", "@N"), or the only one. */
static json_t *pick_entry(json_t *list, const char *ref, const char *file, char *err, size_t errlen)
{
    size_t i;
    json_t *e;
    if (ref == NULL || *ref == '\0') {
        if (json_array_size(list) == 1)
            return json_array_get(list, 0);
        snprintf(err, errlen, "%s holds %zu images: name one (docker-archive:FILE:REPO:TAG)", file,
                 json_array_size(list));
        return NULL;
    }
    if (ref[0] == '@') {
        char *end;
        unsigned long n = strtoul(ref + 1, &end, 10);
        if (*end == '\0' && end != ref + 1 && n < json_array_size(list))
            return json_array_get(list, n);
    }
    json_array_foreach(list, i, e)
    {
        json_t *tags = json_object_get(e, "RepoTags"), *t;
        size_t k;
        json_array_foreach(tags, k, t)
        {
            /* "x/one:1" and "docker.io/x/one:1" are the same image, as docker says. */
            const char *s = json_string_value(t);
            struct oci_ref a, b;
            if (s != NULL &&
                (strcmp(s, ref) == 0 ||
                 (oci_ref_parse(s, &a, NULL, 0) == 0 && oci_ref_parse(ref, &b, NULL, 0) == 0 &&
                  strcmp(a.registry, b.registry) == 0 && strcmp(a.repository, b.repository) == 0 &&
                  strcmp(a.tag, b.tag) == 0)))
                return e;
        }
    }
    snprintf(err, errlen, "%s has no image %s", file, ref);
    return NULL;
}

/* Links (or copies) the file at path into the layout as the blob d. */
static int add_blob(struct oci_layout *lay, const char *path, const struct oci_digest *d,
                    uint64_t size, char *err, size_t errlen)
{
    struct oci_layout_writer w;
    char *buf;
    int fd, rc;
    if (oci_layout_blob_exists(lay, d, (int64_t)size))
        return 0;
    rc = oci_layout_blob_begin(lay, d, (int64_t)size, &w, err, errlen);
    if (rc != 0)
        return rc;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    buf = malloc(BUF);
    if (fd < 0 || buf == NULL) {
        rc = fd < 0 ? uv_translate_sys_error(errno) : UV_ENOMEM;
        snprintf(err, errlen, "cannot read %s: %s", path, ocisync_strerror(rc));
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? uv_translate_sys_error(errno) : 0;
            break;
        }
        rc = oci_layout_blob_write(&w, buf, (size_t)n, err, errlen);
        if (rc != 0)
            break;
    }
    if (rc == 0) {
        rc = oci_layout_blob_commit(&w, err, errlen);
        goto done;
    }
out:
    oci_layout_blob_abort(&w);
done:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

int oci_docker_archive_to_layout(const char *dir, const char *ref, const char *file,
                                 const char *layout_dir, const char *name, char *err, size_t errlen)
{
    char path[4600], *mj = NULL, *manifest = NULL;
    size_t mj_len = 0;
    json_t *list = NULL, *entry, *layers, *doc = NULL, *jl;
    json_error_t jerr;
    struct oci_layout lay;
    bool lay_open = false;
    struct oci_digest cd, md;
    uint64_t csize;
    unsigned char head[4];
    int rc;

    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    rc = read_small(path, MANIFEST_JSON_MAX, &mj, &mj_len);
    if (rc != 0) {
        snprintf(err, errlen, "%s is not a docker archive: manifest.json: %s", file,
                 ocisync_strerror(rc));
        return OCISYNC_EUSAGE;
    }
    if (ocisync__json_too_deep(mj, mj_len, 16) ||
        (list = json_loadb(mj, mj_len, 0, &jerr)) == NULL || !json_is_array(list)) {
        snprintf(err, errlen, "%s: manifest.json is not a list of images", file);
        rc = OCISYNC_EMANIFEST;
        goto out;
    }
    entry = pick_entry(list, ref, file, err, errlen);
    if (entry == NULL) {
        rc = ref != NULL && *ref != '\0' ? OCISYNC_ENOTFOUND : OCISYNC_EUSAGE;
        goto out;
    }
    layers = json_object_get(entry, "Layers");
    if (!oci_archive_path_inside(json_string_value(json_object_get(entry, "Config"))) ||
        !json_is_array(layers) || json_array_size(layers) > 1024) {
        snprintf(err, errlen, "%s: manifest.json has no usable Config and Layers", file);
        rc = OCISYNC_EMANIFEST;
        goto out;
    }
    rc = oci_layout_open(&lay, layout_dir, true, err, errlen);
    if (rc != 0)
        goto out;
    lay_open = true;
    snprintf(path, sizeof(path), "%s/%s", dir, json_string_value(json_object_get(entry, "Config")));
    rc = hash_file(path, &cd, &csize, head);
    if (rc == 0)
        rc = add_blob(&lay, path, &cd, csize, err, errlen);
    if (rc != 0) {
        if (err[0] == '\0')
            snprintf(err, errlen, "%s: config: %s", file, ocisync_strerror(rc));
        goto out;
    }
    doc = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[]}", "schemaVersion", 2, "mediaType",
                    OCI_MT_OCI_MANIFEST, "config", "mediaType", OCI_MT_OCI_CONFIG, "digest", cd.str,
                    "size", (json_int_t)csize, "layers");
    if (doc == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    {
        size_t i;
        json_t *v;
        json_array_foreach(layers, i, v)
        {
            struct oci_digest ld;
            uint64_t lsize;
            const char *rel = json_string_value(v), *mt = OCI_MT_OCI_LAYER;
            if (!oci_archive_path_inside(rel)) {
                snprintf(err, errlen, "%s: manifest.json names a layer outside the archive", file);
                rc = OCISYNC_EMANIFEST;
                goto out;
            }
            snprintf(path, sizeof(path), "%s/%s", dir, rel);
            rc = hash_file(path, &ld, &lsize, head);
            if (rc == 0)
                rc = add_blob(&lay, path, &ld, lsize, err, errlen);
            if (rc != 0) {
                if (err[0] == '\0')
                    snprintf(err, errlen, "%s: layer %s: %s", file, rel,
                             rc == UV_ELOOP ? "a symbolic link (not followed)"
                                            : ocisync_strerror(rc));
                goto out;
            }
            if (head[0] == 0x1f && head[1] == 0x8b)
                mt = OCI_MT_OCI_LAYER_GZIP;
            else if (head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd)
                mt = OCI_MT_OCI_LAYER_ZSTD;
            jl = json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest", ld.str, "size",
                           (json_int_t)lsize);
            if (jl == NULL || json_array_append_new(json_object_get(doc, "layers"), jl) != 0) {
                rc = UV_ENOMEM;
                goto out;
            }
        }
    }
    manifest = json_dumps(doc, JSON_COMPACT);
    if (manifest == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    rc = oci_digest_buffer(OCI_DIGEST_SHA256, manifest, strlen(manifest), &md);
    if (rc == 0)
        rc = oci_layout_put_blob(&lay, &md, manifest, strlen(manifest), err, errlen);
    if (rc == 0) {
        struct oci_descriptor d;
        memset(&d, 0, sizeof(d));
        snprintf(d.media_type, sizeof(d.media_type), "%s", OCI_MT_OCI_MANIFEST);
        d.digest = md;
        d.size = (int64_t)strlen(manifest);
        rc = oci_layout_add(&lay, &d, name, err, errlen);
    }
    if (rc == 0)
        rc = oci_layout_commit(&lay, err, errlen);
out:
    if (lay_open)
        oci_layout_close(&lay);
    json_decref(doc);
    json_decref(list);
    free(mj);
    free(manifest);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Writing */

/* Writes n bytes, hashing them. */
static int put(int out, struct oci_hasher *h, const unsigned char *p, size_t n)
{
    oci_hasher_update(h, p, n);
    return ocisync__write_full(out, p, n);
}

/* Reads up to BUF bytes; 0 at the end. */
static ssize_t get(int fd, unsigned char *buf)
{
    ssize_t n;
    while ((n = read(fd, buf, BUF)) < 0 && errno == EINTR)
        ;
    return n;
}

/* Decompresses the blob at fd (by media type) into out, checking the result's sha256. */
static int write_layer(int fd, const char *mt, int out, const struct oci_digest *diff_id, char *err,
                       size_t errlen)
{
    unsigned char *in = malloc(BUF), *o = malloc(BUF);
    struct oci_hasher h;
    struct oci_digest got;
    ssize_t n;
    int rc = 0;

    if (in == NULL || o == NULL || oci_hasher_init(&h, OCI_DIGEST_SHA256) != 0) {
        free(in);
        free(o);
        return UV_ENOMEM;
    }
    if (strstr(mt, "gzip") != NULL) {
        z_stream z;
        int zr = Z_OK;
        memset(&z, 0, sizeof(z));
        if (inflateInit2(&z, 15 + 32) != Z_OK) {
            rc = UV_ENOMEM;
            goto out;
        }
        for (;;) {
            if (z.avail_in == 0) {
                n = get(fd, in);
                if (n < 0) {
                    rc = uv_translate_sys_error(errno);
                    break;
                }
                if (n == 0)
                    break;
                z.next_in = in;
                z.avail_in = (uInt)n;
            }
            if (zr == Z_STREAM_END)
                inflateReset(&z); /* the next member of a multi-member gzip */
            z.next_out = o;
            z.avail_out = BUF;
            zr = inflate(&z, Z_NO_FLUSH);
            if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
                rc = OCISYNC_EDIGESTMISMATCH;
                snprintf(err, errlen, "a layer does not decompress (gzip: %s)",
                         z.msg ? z.msg : "error");
                break;
            }
            rc = put(out, &h, o, BUF - z.avail_out);
            if (rc != 0)
                break;
        }
        if (rc == 0 && zr != Z_STREAM_END) {
            rc = OCISYNC_EDIGESTMISMATCH;
            snprintf(err, errlen, "a gzip layer ends early");
        }
        inflateEnd(&z);
    } else if (strstr(mt, "zstd") != NULL) {
        ZSTD_DStream *zd = ZSTD_createDStream();
        size_t last = 1;
        if (zd == NULL) {
            rc = UV_ENOMEM;
            goto out;
        }
        while (rc == 0 && (n = get(fd, in)) > 0) {
            ZSTD_inBuffer ib = {in, (size_t)n, 0};
            while (rc == 0 && ib.pos < ib.size) {
                ZSTD_outBuffer ob = {o, BUF, 0};
                last = ZSTD_decompressStream(zd, &ob, &ib);
                if (ZSTD_isError(last)) {
                    rc = OCISYNC_EDIGESTMISMATCH;
                    snprintf(err, errlen, "a layer does not decompress (zstd: %s)",
                             ZSTD_getErrorName(last));
                    break;
                }
                rc = put(out, &h, o, ob.pos);
            }
        }
        if (rc == 0 && last != 0) {
            rc = OCISYNC_EDIGESTMISMATCH;
            snprintf(err, errlen, "a zstd layer ends early");
        }
        ZSTD_freeDStream(zd);
    } else {
        while (rc == 0 && (n = get(fd, in)) > 0)
            rc = put(out, &h, in, (size_t)n);
    }
    if (rc != 0)
        goto out;
    rc = oci_hasher_final(&h, &got);
    if (rc == 0 && !oci_digest_equal(&got, diff_id)) {
        rc = OCISYNC_EDIGESTMISMATCH;
        snprintf(err, errlen, "a layer decompresses to %s, but the config says %s", got.str,
                 diff_id->str);
    }
    free(in);
    free(o);
    return rc;
out:
    oci_hasher_dispose(&h);
    free(in);
    free(o);
    return rc;
}

/* The host's architecture in OCI terms. */
static const char *host_arch(void)
{
    struct utsname u;
    if (uname(&u) != 0)
        return "amd64";
    if (strcmp(u.machine, "x86_64") == 0)
        return "amd64";
    if (strcmp(u.machine, "aarch64") == 0)
        return "arm64";
    /* Others by their kernel name would rarely match an image's: amd64 is the usual fallback. */
    return "amd64";
}

int oci_docker_archive_write(const char *layout_dir, const char *name, const char *repotag,
                             const char *file, char *err, size_t errlen)
{
    struct oci_layout lay;
    struct oci_descriptor top;
    struct oci_manifest idx, m;
    bool lay_open = false, idx_parsed = false, m_parsed = false;
    char *raw = NULL, *mraw = NULL, *config = NULL, *mj = NULL, outdir[4200] = "", path[4600];
    size_t raw_len, mraw_len, config_len;
    json_t *cfg = NULL, *diff_ids, *entry = NULL;
    int rc;

    rc = oci_layout_open(&lay, layout_dir, false, err, errlen);
    if (rc != 0)
        return rc;
    lay_open = true;
    rc = oci_layout_resolve(&lay, name, &top, err, errlen);
    if (rc == 0)
        rc = oci_layout_blob_read(&lay, &top.digest, OCI_MANIFEST_MAX_SIZE, &raw, &raw_len, err,
                                  errlen);
    if (rc != 0)
        goto out;
    rc = oci_manifest_parse(top.media_type, raw, raw_len, &idx, err, errlen);
    if (rc != 0)
        goto out;
    idx_parsed = true;
    if (idx.kind == OCI_KIND_INDEX) {
        /* A docker archive holds one image: the host's platform, else linux/amd64. */
        const struct oci_descriptor *pick = NULL;
        for (int pass = 0; pass < 2 && pick == NULL; pass++)
            for (size_t i = 0; i < idx.n_manifests && pick == NULL; i++)
                if (idx.manifests[i].has_platform &&
                    strcmp(idx.manifests[i].platform.os, "linux") == 0 &&
                    strcmp(idx.manifests[i].platform.arch, pass == 0 ? host_arch() : "amd64") == 0)
                    pick = &idx.manifests[i];
        if (pick == NULL) {
            snprintf(err, errlen,
                     "a docker archive holds one image, and this index has none for linux/%s "
                     "or linux/amd64: copy one platform with --platform",
                     host_arch());
            rc = OCISYNC_ENOPLATFORM;
            goto out;
        }
        rc = oci_layout_blob_read(&lay, &pick->digest, OCI_MANIFEST_MAX_SIZE, &mraw, &mraw_len, err,
                                  errlen);
        if (rc == 0)
            rc = oci_manifest_parse(pick->media_type, mraw, mraw_len, &m, err, errlen);
    } else {
        rc = oci_manifest_parse(top.media_type, raw, raw_len, &m, err, errlen);
    }
    if (rc != 0)
        goto out;
    m_parsed = true;
    rc = oci_layout_blob_read(&lay, &m.config.digest, OCI_CONFIG_MAX_SIZE, &config, &config_len,
                              err, errlen);
    if (rc != 0)
        goto out;
    cfg = json_loadb(config, config_len, 0, NULL);
    diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
    if (!json_is_array(diff_ids) || json_array_size(diff_ids) != m.n_layers) {
        snprintf(err, errlen, "the image config's diff_ids do not match its layers");
        rc = OCISYNC_EMANIFEST;
        goto out;
    }
    rc = oci_archive_tempdir(outdir, sizeof(outdir), err, errlen);
    if (rc != 0)
        goto out;
    entry = json_pack("{s:s+, s:[], s:[]}", "Config", oci_digest_hex(&m.config.digest), ".json",
                      "RepoTags", "Layers");
    if (entry == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    if (repotag != NULL && *repotag != '\0')
        json_array_append_new(json_object_get(entry, "RepoTags"), json_string(repotag));
    snprintf(path, sizeof(path), "%s/%s.json", outdir, oci_digest_hex(&m.config.digest));
    {
        FILE *f = fopen(path, "wb");
        if (f == NULL || fwrite(config, 1, config_len, f) != config_len || fclose(f) != 0) {
            rc = UV_EIO;
            snprintf(err, errlen, "cannot write %s", path);
            goto out;
        }
    }
    for (size_t i = 0; i < m.n_layers; i++) {
        struct oci_digest diff;
        const char *ds = json_string_value(json_array_get(diff_ids, i));
        uint64_t size;
        int in, out;
        char rel[200];
        if (ds == NULL || oci_digest_parse_str(ds, &diff) != 0) {
            snprintf(err, errlen, "the image config has an invalid diff_id");
            rc = OCISYNC_EMANIFEST;
            goto out;
        }
        snprintf(rel, sizeof(rel), "%s.tar", oci_digest_hex(&diff));
        snprintf(path, sizeof(path), "%s/%s", outdir, rel);
        rc = oci_layout_blob_open(&lay, &m.layers[i].digest, &in, &size, err, errlen);
        if (rc != 0)
            goto out;
        out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out < 0) {
            rc = uv_translate_sys_error(errno);
            close(in);
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            goto out;
        }
        rc = write_layer(in, m.layers[i].media_type, out, &diff, err, errlen);
        close(in);
        if (close(out) != 0 && rc == 0)
            rc = UV_EIO;
        if (rc != 0)
            goto out;
        json_array_append_new(json_object_get(entry, "Layers"), json_string(rel));
    }
    {
        json_t *list = json_array();
        json_array_append(list, entry);
        mj = json_dumps(list, JSON_COMPACT);
        json_decref(list);
    }
    snprintf(path, sizeof(path), "%s/manifest.json", outdir);
    {
        FILE *f = fopen(path, "wb");
        if (mj == NULL || f == NULL || fputs(mj, f) < 0 || fclose(f) != 0) {
            rc = UV_EIO;
            snprintf(err, errlen, "cannot write %s", path);
            goto out;
        }
    }
    rc = oci_archive_pack(outdir, file, err, errlen);
out:
    if (outdir[0] != '\0')
        oci_archive_remove_dir(outdir);
    if (m_parsed)
        oci_manifest_free(&m);
    if (idx_parsed)
        oci_manifest_free(&idx);
    if (lay_open)
        oci_layout_close(&lay);
    json_decref(entry);
    json_decref(cfg);
    free(raw);
    free(mraw);
    free(config);
    free(mj);
    return rc;
}
