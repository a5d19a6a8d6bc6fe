/*
 * Docker archives (docker-archive:FILE[:REF]), what `docker save` writes and
 * `docker load` / `podman load` read: manifest.json listing, per image, its
 * config file, its repository tags and its layer tar files.
 *
 * As a source, the unpacked archive becomes an OCI layout next to it (the
 * config and layer files linked in as blobs, an OCI manifest written for
 * them), each layer checked against its diff_id first. As a destination, an
 * image copied into a temp layout is written out in that form: layers
 * decompressed to the tar files docker load expects, each checked against
 * its diff_id, then packed atomically. Either way a layer is decompressed as
 * a stream, in bounded memory and within a cap on its size.
 */
#include "oci/docker_archive.h"

#include "common/json_depth.h"
#include "common/msg.h"
#include "common/sysio.h"
#include "oci/archive.h"
#include "oci/imgconfig.h"
#include "oci/layout.h"
#include "oci/oci.h"
#include "oci/unpack.h"
#include "ocisync.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define MANIFEST_JSON_MAX (4 * 1024 * 1024)
#define BUF (256 * 1024)
/* Image configs nest a few levels (history, labels); as imgconfig.c allows. */
#define CONFIG_MAX_DEPTH 64
/* How many characters of a file name a message quotes. */
#define QUOTE_MAX 200
/* A layer as messages name it: "FILE: layer PATH" or "layer sha256:...". */
#define WHAT_MAX (2 * QUOTE_MAX + 64)

/* Reads up to BUF bytes; 0 at the end. */
static ssize_t get(int fd, unsigned char *buf)
{
    ssize_t n;
    while ((n = read(fd, buf, BUF)) < 0 && errno == EINTR)
        ;
    return n;
}

/*
 * The config's rootfs.diff_ids, which must be n digests, one per layer:
 * *out receives them (malloc'ed). Messages start with prefix.
 */
static int config_diff_ids(const char *config, size_t len, size_t n, const char *prefix,
                           struct oci_digest **out, char *err, size_t errlen)
{
    struct oci_digest *ids = NULL;
    json_t *cfg = NULL, *list;
    int rc = OCISYNC_EMANIFEST;

    *out = NULL;
    if (ocisync__json_too_deep(config, len, CONFIG_MAX_DEPTH) ||
        (cfg = json_loadb(config, len, 0, NULL)) == NULL) {
        ocisync__errf(err, errlen, "%sthe image config is not valid JSON", prefix);
        goto out;
    }
    list = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
    if (!json_is_array(list) || json_array_size(list) != n) {
        ocisync__errf(err, errlen, "%sthe image config lists %zu diff_ids for %zu layers", prefix,
                      json_array_size(list), n);
        goto out;
    }
    ids = calloc(n > 0 ? n : 1, sizeof(*ids));
    if (ids == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (oci_digest_parse_str(json_string_value(json_array_get(list, i)), &ids[i]) != 0) {
            ocisync__errf(err, errlen, "%sthe image config has an invalid diff_id (layer %zu)",
                          prefix, i + 1);
            goto out;
        }
    }
    *out = ids;
    ids = NULL;
    rc = 0;
out:
    free(ids);
    json_decref(cfg);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Decompressing layers */

/* Where write_layer's decompressed layer goes: a file. */
struct fd_sink {
    int fd;
    const char *what; /* the layer, for messages */
};

static int write_out(void *arg, const void *p, size_t n, char *err, size_t errlen)
{
    const struct fd_sink *o = arg;
    int rc = ocisync__write_full(o->fd, p, n);

    if (rc != 0)
        ocisync__errf(err, errlen, "cannot write the decompressed %s: %s", o->what,
                      uv_strerror(rc));
    return rc;
}

/* Reads fd to its end, feeding it to u and hashing it into h (unless NULL) as well. */
static int drain(int fd, struct oci_hasher *h, struct oci_unpack *u, char *err, size_t errlen)
{
    unsigned char *buf = malloc(BUF);
    ssize_t n = 0;
    int rc = 0;

    if (buf == NULL)
        return UV_ENOMEM;
    while (rc == 0 && (n = get(fd, buf)) > 0) {
        if (h != NULL)
            oci_hasher_update(h, buf, (size_t)n);
        rc = oci_unpack_feed(u, buf, (size_t)n, err, errlen);
    }
    if (rc == 0 && n < 0) {
        rc = ocisync__sys_error();
        ocisync__errf(err, errlen, "cannot read %s: %s", u->what, uv_strerror(rc));
    }
    free(buf);
    return rc;
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

/*
 * sha256 and size of the layer file at path, which must decompress (gzip or
 * zstd by its first bytes, as docker load tells them, else a plain tar) to
 * diff_id within the cap; *mt receives its OCI media type. what names the
 * layer in messages; an error without one is a system error on the file.
 */
static int read_layer(const char *path, const char *what, const struct oci_digest *diff_id,
                      struct oci_digest *d, uint64_t *size, const char **mt, char *err,
                      size_t errlen)
{
    static const char *const types[] = {
        [OCI_COMP_TAR] = OCI_MT_OCI_LAYER,
        [OCI_COMP_GZIP] = OCI_MT_OCI_LAYER_GZIP,
        [OCI_COMP_ZSTD] = OCI_MT_OCI_LAYER_ZSTD,
    };
    unsigned char head[4] = {0};
    struct oci_hasher h;
    struct oci_unpack u;
    enum oci_comp comp;
    struct stat st;
    int fd, rc;

    memset(&h, 0, sizeof(h));
    memset(&u, 0, sizeof(u));
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &st) != 0 || pread(fd, head, sizeof(head), 0) < 0) {
        rc = ocisync__sys_error();
        goto out;
    }
    comp = oci_comp_of_head(head);
    *mt = types[comp];
    rc = oci_unpack_init(&u, comp, (uint64_t)st.st_size, NULL, NULL, what);
    if (rc == 0)
        rc = oci_hasher_init(&h, OCI_DIGEST_SHA256);
    if (rc == 0)
        rc = drain(fd, &h, &u, err, errlen);
    if (rc == 0) {
        *size = h.n_bytes;
        rc = oci_hasher_final(&h, d);
    }
    if (rc == 0)
        rc = oci_unpack_finish(&u, diff_id, err, errlen);
out:
    oci_hasher_dispose(&h);
    oci_unpack_dispose(&u);
    if (fd >= 0)
        close(fd);
    return rc;
}

int oci_docker_archive_to_layout(const char *dir, const char *ref, const char *file,
                                 const char *layout_dir, const char *name, char *err, size_t errlen)
{
    char path[4600], *mj = NULL, *manifest = NULL, *config = NULL, prefix[QUOTE_MAX + 8];
    size_t mj_len = 0, config_len = 0;
    json_t *list = NULL, *entry, *layers, *doc = NULL, *jl;
    json_error_t jerr;
    struct oci_layout lay;
    bool lay_open = false;
    struct oci_digest cd, md, *diff_ids = NULL;
    struct ocisync__clipped c;
    int rc;

    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    rc = ocisync__read_small(path, MANIFEST_JSON_MAX, true, &mj, &mj_len);
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
    /* The config says what each layer decompresses to: one diff_id per layer. */
    snprintf(path, sizeof(path), "%s/%s", dir, json_string_value(json_object_get(entry, "Config")));
    rc = ocisync__read_small(path, OCI_CONFIG_MAX_SIZE, true, &config, &config_len);
    if (rc != 0) {
        snprintf(err, errlen, "%s: config: %s", file, ocisync_strerror(rc));
        goto out;
    }
    snprintf(prefix, sizeof(prefix), "%s: ", ocisync__clip(file, QUOTE_MAX, &c));
    rc = config_diff_ids(config, config_len, json_array_size(layers), prefix, &diff_ids, err,
                         errlen);
    if (rc != 0)
        goto out;
    rc = oci_layout_open(&lay, layout_dir, true, err, errlen);
    if (rc != 0)
        goto out;
    lay_open = true;
    rc = oci_digest_buffer(OCI_DIGEST_SHA256, config, config_len, &cd);
    if (rc == 0)
        rc = oci_layout_put_blob(&lay, &cd, config, config_len, err, errlen);
    if (rc != 0)
        goto out;
    doc = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[]}", "schemaVersion", 2, "mediaType",
                    OCI_MT_OCI_MANIFEST, "config", "mediaType", OCI_MT_OCI_CONFIG, "digest", cd.str,
                    "size", (json_int_t)config_len, "layers");
    if (doc == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    {
        size_t i;
        json_t *v;
        json_array_foreach(layers, i, v)
        {
            struct ocisync__clipped c2;
            struct oci_digest ld;
            uint64_t lsize = 0;
            const char *rel = json_string_value(v), *mt = OCI_MT_OCI_LAYER;
            char what[WHAT_MAX];
            if (!oci_archive_path_inside(rel)) {
                snprintf(err, errlen, "%s: manifest.json names a layer outside the archive", file);
                rc = OCISYNC_EMANIFEST;
                goto out;
            }
            snprintf(path, sizeof(path), "%s/%s", dir, rel);
            snprintf(what, sizeof(what), "%slayer %s", prefix, ocisync__clip(rel, QUOTE_MAX, &c2));
            rc = read_layer(path, what, &diff_ids[i], &ld, &lsize, &mt, err, errlen);
            if (rc == 0)
                rc = add_blob(&lay, path, &ld, lsize, err, errlen);
            if (rc != 0) {
                if (err[0] == '\0')
                    snprintf(err, errlen, "%s: %s", what,
                             rc == UV_ELOOP ? "a symbolic link (not followed)"
                                            : ocisync_strerror(rc));
                goto out;
            }
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
    free(diff_ids);
    free(config);
    free(mj);
    free(manifest);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Writing */

/*
 * Decompresses the layer blob at fd (size bytes, compressed as its media type
 * says) into out, within the cap, checking that it hashes to diff_id.
 */
static int write_layer(int fd, uint64_t size, const struct oci_descriptor *layer, int out,
                       const struct oci_digest *diff_id, char *err, size_t errlen)
{
    enum oci_comp comp = strstr(layer->media_type, "gzip") != NULL   ? OCI_COMP_GZIP
                         : strstr(layer->media_type, "zstd") != NULL ? OCI_COMP_ZSTD
                                                                     : OCI_COMP_TAR;
    char what[WHAT_MAX];
    struct fd_sink o = {out, what};
    struct oci_unpack u;
    int rc;

    snprintf(what, sizeof(what), "layer %s", layer->digest.str);
    rc = oci_unpack_init(&u, comp, size, write_out, &o, what);
    if (rc == 0)
        rc = drain(fd, NULL, &u, err, errlen);
    if (rc == 0)
        rc = oci_unpack_finish(&u, diff_id, err, errlen);
    oci_unpack_dispose(&u);
    return rc;
}

/* An index entry an image of which docker load can make sense: one with a real platform. */
static bool real_platform(const struct oci_descriptor *d)
{
    return d->has_platform && strcmp(d->platform.os, "unknown") != 0;
}

/* The entry of idx a docker archive takes (see oci_docker_archive_write), or NULL. */
static const struct oci_descriptor *pick_platform(const struct oci_manifest *idx,
                                                  const struct oci_platform *want)
{
    const struct oci_descriptor *only = NULL;
    size_t n = 0;
    struct oci_platform amd64;
    if (want != NULL) {
        for (size_t i = 0; i < idx->n_manifests; i++)
            if (real_platform(&idx->manifests[i]) &&
                oci_platform_match(want, &idx->manifests[i].platform))
                return &idx->manifests[i];
        return NULL;
    }
    for (size_t i = 0; i < idx->n_manifests; i++)
        if (real_platform(&idx->manifests[i])) {
            only = &idx->manifests[i];
            n++;
        }
    if (n == 1)
        return only;
    if (n == 0 && idx->n_manifests == 1)
        return &idx->manifests[0];
    oci_platform_parse("linux/amd64", &amd64);
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < idx->n_manifests; i++)
            if (real_platform(&idx->manifests[i]) &&
                oci_platform_match(pass == 0 ? oci_platform_host() : &amd64,
                                   &idx->manifests[i].platform))
                return &idx->manifests[i];
    return NULL;
}

int oci_docker_archive_write(const char *layout_dir, const char *name, const char *const *repotags,
                             size_t n_repotags, const char *want, const char *file,
                             struct oci_descriptor *written, char *err, size_t errlen)
{
    struct oci_layout lay;
    struct oci_descriptor top;
    struct oci_manifest idx, m;
    bool lay_open = false, idx_parsed = false, m_parsed = false;
    char *raw = NULL, *mraw = NULL, *config = NULL, *mj = NULL, outdir[4200] = "", path[4600];
    size_t raw_len, mraw_len, config_len;
    struct oci_digest *diff_ids = NULL;
    json_t *entry = NULL;
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
        /* A docker archive holds one image. */
        struct oci_platform wp;
        const struct oci_descriptor *pick = NULL;
        char have[512] = "";
        size_t hl = 0;
        if (want != NULL && oci_platform_parse(want, &wp) != 0) {
            snprintf(err, errlen, "invalid platform \"%s\"", want);
            rc = OCISYNC_EPLATFORM;
            goto out;
        }
        pick = pick_platform(&idx, want != NULL ? &wp : NULL);
        if (pick == NULL) {
            for (size_t i = 0; i < idx.n_manifests && hl < sizeof(have) - 100; i++) {
                char p[96];
                if (!real_platform(&idx.manifests[i]))
                    continue;
                oci_platform_format(&idx.manifests[i].platform, p, sizeof(p));
                hl += (size_t)snprintf(have + hl, sizeof(have) - hl, "%s%s", hl ? ", " : "", p);
            }
            if (want != NULL)
                snprintf(err, errlen,
                         "a docker archive holds one image, and this index has none "
                         "for %s (it has %s)",
                         want, hl ? have : "no platforms");
            else
                snprintf(err, errlen,
                         "a docker archive holds one image, and this index has none "
                         "for linux/%s or linux/amd64 (it has %s): choose one with --platform",
                         oci_platform_host()->arch, hl ? have : "no platforms");
            rc = OCISYNC_ENOPLATFORM;
            goto out;
        }
        if (written != NULL)
            *written = *pick;
        rc = oci_layout_blob_read(&lay, &pick->digest, OCI_MANIFEST_MAX_SIZE, &mraw, &mraw_len, err,
                                  errlen);
        if (rc == 0)
            rc = oci_manifest_parse(pick->media_type, mraw, mraw_len, &m, err, errlen);
    } else {
        rc = oci_manifest_parse(top.media_type, raw, raw_len, &m, err, errlen);
        if (written != NULL)
            *written = top;
    }
    if (rc != 0)
        goto out;
    m_parsed = true;
    rc = oci_layout_blob_read(&lay, &m.config.digest, OCI_CONFIG_MAX_SIZE, &config, &config_len,
                              err, errlen);
    if (rc != 0)
        goto out;
    if (written != NULL && !written->has_platform) {
        /* A lone manifest: its platform is its config's. */
        json_t *c = json_loadb(config, config_len, 0, NULL);
        const char *os = json_string_value(json_object_get(c, "os"));
        const char *arch = json_string_value(json_object_get(c, "architecture"));
        const char *var = json_string_value(json_object_get(c, "variant"));
        if (os != NULL && arch != NULL) {
            written->has_platform = true;
            snprintf(written->platform.os, sizeof(written->platform.os), "%s", os);
            snprintf(written->platform.arch, sizeof(written->platform.arch), "%s", arch);
            snprintf(written->platform.variant, sizeof(written->platform.variant), "%s",
                     var != NULL ? var : "");
        }
        json_decref(c);
    }
    rc = config_diff_ids(config, config_len, m.n_layers, "", &diff_ids, err, errlen);
    if (rc != 0)
        goto out;
    rc = oci_archive_tempdir(outdir, sizeof(outdir), err, errlen);
    if (rc != 0)
        goto out;
    entry = json_pack("{s:s+, s:[], s:[]}", "Config", oci_digest_hex(&m.config.digest), ".json",
                      "RepoTags", "Layers");
    if (entry == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n_repotags; i++)
        if (repotags[i] != NULL && *repotags[i] != '\0' &&
            json_array_append_new(json_object_get(entry, "RepoTags"), json_string(repotags[i])) !=
                0) {
            rc = UV_ENOMEM;
            goto out;
        }
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
        uint64_t size;
        int in, out;
        char rel[200];
        snprintf(rel, sizeof(rel), "%s.tar", oci_digest_hex(&diff_ids[i]));
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
        rc = write_layer(in, size, &m.layers[i], out, &diff_ids[i], err, errlen);
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
    free(diff_ids);
    free(raw);
    free(mraw);
    free(config);
    free(mj);
    return rc;
}
