/*
 * The build cache in a registry repository (--cache-from / --cache-to, as
 * buildx's type=registry): one image whose layers are the cached layers and
 * whose config lists, for each, the key it was built under (see cache.h)
 * and its digests and sizes. The layers being in the manifest keeps them
 * alive through the registry's garbage collection, and lets a build mount
 * them into its destinations instead of uploading them.
 *
 * The image (an OCI manifest with an artifact type, so other tools show it
 * for what it is):
 *   config: application/vnd.ocisync.build-cache.config.v1+json
 *     {"layers": [{"key": "sha256:...", "diff_id": ..., "digest": ...,
 *                  "size": N, "tar_size": N, "media_type": ...}, ...]}
 *   layers: the cached blobs, each once, in key order.
 */
#include "engine/cache.h"

#include "common/log.h"
#include "engine/endpoint.h"
#include "engine/transport.h"
#include "oci/manifest.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_ARTIFACT "application/vnd.ocisync.build-cache.v1"
#define CACHE_CONFIG_MT "application/vnd.ocisync.build-cache.config.v1+json"
/* The most entries one cache image may list. */
#define CACHE_MAX_ENTRIES 20000

int engine_rcache_ref(const char *spec, const char *flag, struct oci_ref *out, char *err,
                      size_t errlen)
{
    char ref[1200] = "";
    struct engine_transport t;
    int rc;

    /* buildx's form: type=registry,ref=REF[,mode=max,...]; or REF alone. */
    if (strchr(spec, '=') != NULL) {
        char buf[1200], *save = NULL;
        bool registry = false;
        if (strlen(spec) >= sizeof(buf)) {
            snprintf(err, errlen, "%s: too long", flag);
            return OCISYNC_EUSAGE;
        }
        snprintf(buf, sizeof(buf), "%s", spec);
        for (char *kv = strtok_r(buf, ",", &save); kv != NULL; kv = strtok_r(NULL, ",", &save)) {
            if (strcmp(kv, "type=registry") == 0) {
                registry = true;
            } else if (strncmp(kv, "type=", 5) == 0) {
                snprintf(err, errlen, "%s %s: only type=registry is supported", flag, spec);
                return OCISYNC_EUSAGE;
            } else if (strncmp(kv, "ref=", 4) == 0) {
                snprintf(ref, sizeof(ref), "%s", kv + 4);
            } else if (strncmp(kv, "mode=", 5) != 0 && strncmp(kv, "ignore-error=", 13) != 0 &&
                       strncmp(kv, "oci-mediatypes=", 15) != 0) {
                snprintf(err, errlen, "%s %s: unknown option \"%s\"", flag, spec, kv);
                return OCISYNC_EUSAGE;
            }
        }
        if (!registry || ref[0] == '\0') {
            snprintf(err, errlen, "%s %s: expected REF or type=registry,ref=REF", flag, spec);
            return OCISYNC_EUSAGE;
        }
    } else {
        snprintf(ref, sizeof(ref), "%s", spec);
    }
    rc = engine_transport_parse(ref, &t, err, errlen);
    if (rc == 0 && t.kind != ENGINE_TRANSPORT_REGISTRY) {
        snprintf(err, errlen, "%s %s: the cache must be a registry repository", flag, ref);
        rc = OCISYNC_EUSAGE;
    }
    if (rc == 0 && t.ref.tag[0] == '\0') {
        snprintf(err, errlen, "%s %s: give the cache a tag, not a digest", flag, ref);
        rc = OCISYNC_EUSAGE;
    }
    if (rc == 0)
        *out = t.ref;
    return rc;
}

static int cmp_key(const void *a, const void *b)
{
    const struct engine_rcache_entry *x = a, *y = b;
    return strcmp(x->key.str, y->key.str);
}

/* The entries of config that name a layer of m (the rest are dropped: nothing keeps them). */
static int parse_config(struct engine_rcache *c, const struct oci_manifest *m, const char *config,
                        size_t len, char *msg, size_t msglen)
{
    json_error_t je;
    json_t *j = json_loadb(config, len, 0, &je), *layers, *v;
    size_t i;
    int err = 0;

    layers = json_object_get(j, "layers");
    if (!json_is_array(layers)) {
        snprintf(msg, msglen, "its config is not an ocisync build cache's");
        err = OCISYNC_EJSON;
        goto out;
    }
    if (json_array_size(layers) > CACHE_MAX_ENTRIES) {
        snprintf(msg, msglen, "more than %d entries", CACHE_MAX_ENTRIES);
        err = OCISYNC_ETOOBIG;
        goto out;
    }
    c->e = calloc(json_array_size(layers) + 1, sizeof(*c->e));
    if (c->e == NULL) {
        err = UV_ENOMEM;
        goto out;
    }
    json_array_foreach(layers, i, v)
    {
        struct engine_rcache_entry *e = &c->e[c->n];
        const char *key, *diff_id, *digest, *mt;
        json_int_t size, tar_size;
        bool listed = false;
        if (json_unpack(v, "{s:s, s:s, s:s, s:I, s:I, s:s}", "key", &key, "diff_id", &diff_id,
                        "digest", &digest, "size", &size, "tar_size", &tar_size, "media_type",
                        &mt) != 0 ||
            oci_digest_parse_str(key, &e->key) != 0 ||
            oci_digest_parse_str(diff_id, &e->r.diff_id) != 0 ||
            oci_digest_parse_str(digest, &e->r.digest) != 0 || size < 0 || tar_size < 0 ||
            strlen(mt) >= sizeof(e->media_type))
            continue;
        for (size_t k = 0; k < m->n_layers && !listed; k++)
            listed =
                oci_digest_equal(&m->layers[k].digest, &e->r.digest) && m->layers[k].size == size;
        if (!listed)
            continue;
        e->r.size = (uint64_t)size;
        e->r.tar_size = (uint64_t)tar_size;
        snprintf(e->media_type, sizeof(e->media_type), "%s", mt);
        c->n++;
    }
    qsort(c->e, c->n, sizeof(*c->e), cmp_key);
out:
    json_decref(j);
    return err;
}

int engine_rcache_load(struct engine_rcache *c, const struct ocisync_copy_opts *co, char *msg,
                       size_t msglen)
{
    struct engine_session s;
    struct proto_registry *reg = NULL;
    struct oci_manifest m;
    bool parsed = false;
    char *top = NULL, *config = NULL, ct[128], why[1024];
    size_t top_len = 0, config_len = 0;
    struct oci_digest got;
    int err;

    c->e = NULL;
    c->n = 0;
    err = engine_session_init(&s, co);
    if (err != 0)
        return err;
    err = engine_endpoint_get(&s.endpoints, c->ref.registry, c->ref.repository, &co->src, false,
                              &reg, why, sizeof(why));
    if (err != 0)
        goto out;
    snprintf(reg->scope, sizeof(reg->scope), "repository:%s:pull", c->ref.repository);
    err = engine_session_get(&s, reg, c->ref.repository, c->ref.tag, false, &top, &top_len, ct,
                             sizeof(ct), why, sizeof(why));
    if (err == OCISYNC_ENOTFOUND) {
        /* The first build that writes it finds none: not worth a warning. */
        LOG_DEBUG("build cache %s/%s:%s: none yet", c->ref.registry, c->ref.repository, c->ref.tag);
        err = 0;
        goto out;
    }
    if (err == 0)
        err = oci_manifest_parse(ct, top, top_len, &m, why, sizeof(why));
    if (err != 0)
        goto out;
    parsed = true;
    if (m.kind != OCI_KIND_IMAGE || strcmp(m.config.media_type, CACHE_CONFIG_MT) != 0) {
        snprintf(why, sizeof(why), "not an ocisync build cache (its config is %s)",
                 m.kind == OCI_KIND_IMAGE ? m.config.media_type : "missing: an index");
        err = OCISYNC_EMEDIATYPE;
        goto out;
    }
    err = engine_session_get(&s, reg, c->ref.repository, m.config.digest.str, true, &config,
                             &config_len, NULL, 0, why, sizeof(why));
    if (err == 0 && (oci_digest_buffer(m.config.digest.alg, config, config_len, &got) != 0 ||
                     !oci_digest_equal(&got, &m.config.digest))) {
        snprintf(why, sizeof(why), "its config does not match its digest %s", m.config.digest.str);
        err = OCISYNC_EDIGESTMISMATCH;
    }
    if (err == 0)
        err = parse_config(c, &m, config, config_len, why, sizeof(why));
    if (err == 0)
        LOG_DEBUG("build cache %s/%s:%s: %zu layers", c->ref.registry, c->ref.repository,
                  c->ref.tag, c->n);
out:
    if (err != 0)
        snprintf(msg, msglen, "build cache %s/%s:%s: %s", c->ref.registry, c->ref.repository,
                 c->ref.tag, why);
    if (parsed)
        oci_manifest_free(&m);
    free(top);
    free(config);
    if (reg != NULL) {
        proto_registry_dispose(reg);
        free(reg);
    }
    engine_session_close(&s);
    return err;
}

const struct engine_rcache_entry *engine_rcache_find(const struct engine_rcache *c,
                                                     const struct oci_digest *key)
{
    struct engine_rcache_entry probe;
    if (c->n == 0)
        return NULL;
    probe.key = *key;
    return bsearch(&probe, c->e, c->n, sizeof(*c->e), cmp_key);
}

void engine_rcache_free(struct engine_rcache *c)
{
    free(c->e);
    c->e = NULL;
    c->n = 0;
}

/* Puts text into lay as a blob; d describes it with media type mt. */
static int put_json(struct oci_layout *lay, json_t *j, const char *mt, struct oci_descriptor *d,
                    char *msg, size_t msglen)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    int err;

    if (text == NULL)
        return UV_ENOMEM;
    memset(d, 0, sizeof(*d));
    snprintf(d->media_type, sizeof(d->media_type), "%s", mt);
    d->size = (int64_t)strlen(text);
    err = oci_digest_buffer(OCI_DIGEST_SHA256, text, strlen(text), &d->digest);
    if (err == 0)
        err = oci_layout_put_blob(lay, &d->digest, text, strlen(text), msg, msglen);
    free(text);
    return err;
}

int engine_rcache_write(struct oci_layout *lay, const char *name, struct engine_rcache_entry *e,
                        size_t n, char *msg, size_t msglen)
{
    json_t *config = json_object(), *entries = json_array(), *manifest = NULL, *layers = NULL;
    struct oci_descriptor cd, md;
    int err = UV_ENOMEM;

    qsort(e, n, sizeof(*e), cmp_key);
    if (config == NULL || entries == NULL || json_object_set(config, "layers", entries) != 0)
        goto out;
    layers = json_array();
    if (layers == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        if (json_array_append_new(
                entries, json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "key", e[i].key.str, "diff_id",
                                   e[i].r.diff_id.str, "digest", e[i].r.digest.str, "size",
                                   (json_int_t)e[i].r.size, "tar_size", (json_int_t)e[i].r.tar_size,
                                   "media_type", e[i].media_type)) != 0)
            goto out;
        for (size_t k = 0; k < i && !seen; k++)
            seen = oci_digest_equal(&e[k].r.digest, &e[i].r.digest);
        if (!seen &&
            json_array_append_new(layers, json_pack("{s:s, s:s, s:I}", "mediaType", e[i].media_type,
                                                    "digest", e[i].r.digest.str, "size",
                                                    (json_int_t)e[i].r.size)) != 0)
            goto out;
    }
    err = put_json(lay, config, CACHE_CONFIG_MT, &cd, msg, msglen);
    if (err != 0)
        goto out;
    err = UV_ENOMEM;
    manifest = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:I}, s:O}", "schemaVersion", 2, "mediaType",
                         OCI_MT_OCI_MANIFEST, "artifactType", CACHE_ARTIFACT, "config", "mediaType",
                         CACHE_CONFIG_MT, "digest", cd.digest.str, "size", (json_int_t)cd.size,
                         "layers", layers);
    if (manifest == NULL)
        goto out;
    err = put_json(lay, manifest, OCI_MT_OCI_MANIFEST, &md, msg, msglen);
    if (err == 0)
        err = oci_layout_add(lay, &md, name, msg, msglen);
out:
    if (err == UV_ENOMEM)
        snprintf(msg, msglen, "out of memory");
    json_decref(layers);
    json_decref(manifest);
    json_decref(entries);
    json_decref(config);
    return err;
}
