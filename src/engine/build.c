/*
 * Build: new layers from local directories on top of a base image, for
 * several platforms, into one index pushed under several tags.
 *
 * 1. The base is resolved: its index (or manifest), each platform's
 *    manifest and config, with GETs of a few KiB.
 * 2. Two things run at once: a thread of its own builds the new layers (tar,
 *    then gzip or zstd on the thread pool) into a private staging layout,
 *    while this thread relays (or mounts) the base's layers to every
 *    destination with the copy engine, blobs only.
 * 3. The configs, manifests and the index are written into the staging
 *    layout, which the copy engine then pushes to every tag, taking the
 *    blobs it lacks (the base's, by now at the destination) from the base's
 *    repository. Nothing is tagged before everything it names is there.
 */
#include "engine/build.h"
#include "engine/cache.h"

#include "common/log.h"
#include "oci/archive.h"
#include "engine/copy.h"
#include "engine/endpoint.h"
#include "engine/transport.h"
#include "oci/imgconfig.h"
#include "oci/layer.h"
#include "engine/layer_push.h"
#include "oci/layout.h"
#include "oci/oci.h"
#include "engine/stop.h"
#include "oci/tar.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PLATFORMS 16
/* New layers: distinct ones in a build, and stacked in one image. */
#define MAX_LAYERS 256
#define MAX_SOURCES 64
/* Registries the new layers stream to while they are built (the first repository named on each). */
#define MAX_STREAMS 4
/*
 * The most files a layer takes its cache key from while it builds (their
 * digests are kept until the end: about 110 bytes each); a larger layer
 * hashes its files for the key first, as a build with a cache to look in does.
 */
#define MAX_SUMS (256 * 1024)

struct build;

/* One new layer: what it is made of, and what building it gave. */
struct new_layer {
    struct build *owner;
    const struct engine_build_layer *def; /* the spec's */
    struct oci_tar_plan plan;
    bool planned;                 /* plan was built here from the spec's sources */
    const struct oci_tar_plan *p; /* what the layer is made of: &plan, or the spec's */
    struct oci_layer_build build;
    bool built;
    struct oci_digest key; /* in the build cache, when keyed */
    bool keyed, cached;
    /* Owned: one per plan entry when the key is made from the build's own reads (on_layer). */
    struct oci_tar_file_sum *sums;
    bool remote;                /* cached in the registry cache: its blob is there, not here */
    struct engine_cache_at *at; /* owned: where a cached layer was pushed before */
    /* Where the streamed pushes left it: "registry" and repository of each. */
    char streamed_to[MAX_STREAMS][2][256];
    int err;
    char msg[1024];
    /* Streamed uploads of the layer while it builds, one per destination registry. */
    struct engine_layer_push pushes[MAX_STREAMS];
    bool pushing[MAX_STREAMS]; /* pushes[i] was started and has not called back */
    uint64_t streamed;         /* pushes that committed the blob at their registry */
    uint64_t found;            /* pushes that found it there already (not committed) */
};

struct plat {
    struct oci_platform p;
    char name[96];
    /* The base's image for this platform (none for scratch). */
    char *base_manifest, *base_config; /* owned */
    size_t base_manifest_len, base_config_len, base_layers;
    struct oci_digest base_digest;
    bool docker;
    const struct engine_build_image *img; /* the spec's */
    char *config, *manifest;              /* owned: what the build wrote */
    size_t config_len, manifest_len;
    struct oci_digest config_digest, manifest_digest;
    char manifest_mt[OCI_MEDIA_TYPE_MAX];
};

struct build {
    const struct engine_build_spec *spec;
    const struct ocisync_build_opts *o;
    struct ocisync_build_result *res;
    bool scratch;
    struct oci_ref base;
    char base_repo[600]; /* "registry/repository" */
    char *base_top;      /* owned: the base's top-level document */
    size_t base_top_len;
    struct oci_digest base_top_digest;
    struct plat plats[MAX_PLATFORMS];
    size_t n_plats;
    struct new_layer *layers; /* owned: one per spec layer */
    size_t n_layers;
    char staging[4200];
    int64_t created;
    const char *comp_mt;
    struct engine_cache cache;
    /* The registry cache: read (rfrom.n entries; none when off), and written when to_on. */
    struct engine_rcache rfrom;
    struct oci_ref rto;
    bool to_on;
    struct oci_ref *pushed; /* owned: the registry tags the image went to, n_pushed */
    size_t n_pushed;
    unsigned pending; /* builder thread: layers and pushes that have not called back */
};

static void build_free(struct build *b);

/* ------------------------------------------------------------------------------------------ */
/* Step 1: the base, fetched with a small loop of its own */

struct fetcher {
    struct engine_session s;
    struct proto_registry *reg;
};

static int fetch(struct fetcher *f, const char *repo, const char *ref, bool blob, char **out,
                 size_t *len, char *ct, size_t ctlen, char *msg, size_t msglen)
{
    return engine_session_get(&f->s, f->reg, repo, ref, blob, out, len, ct, ctlen, msg, msglen);
}

static bool digest_ok(const char *data, size_t len, const struct oci_digest *want)
{
    struct oci_digest got;
    return oci_digest_buffer(want->alg, data, len, &got) == 0 && oci_digest_equal(&got, want);
}

/* Resolves the base per platform: manifest, config, layer count. */
static int resolve_base(struct build *b)
{
    struct fetcher f;
    struct oci_manifest top;
    bool top_parsed = false;
    char ct[128], msg[1024];
    int err;

    memset(&f, 0, sizeof(f));
    err = engine_session_init(&f.s, &b->o->copy);
    if (err != 0)
        return err;
    err = engine_endpoint_get(&f.s.endpoints, b->base.registry, b->base.repository, &b->o->copy.src,
                              false, &f.reg, msg, sizeof(msg));
    if (err != 0) {
        snprintf(b->res->error, sizeof(b->res->error), "base %s: %s", b->base_repo, msg);
        goto out;
    }
    snprintf(f.reg->scope, sizeof(f.reg->scope), "repository:%s:pull", b->base.repository);
    err = fetch(&f, b->base.repository, oci_ref_target(&b->base), false, &b->base_top,
                &b->base_top_len, ct, sizeof(ct), msg, sizeof(msg));
    if (err == 0)
        err = oci_manifest_parse(ct, b->base_top, b->base_top_len, &top, msg, sizeof(msg));
    if (err != 0) {
        snprintf(b->res->error, sizeof(b->res->error), "base image %s/%s:%s: %s", b->base.registry,
                 b->base.repository, oci_ref_target(&b->base), msg);
        goto out;
    }
    top_parsed = true;
    oci_digest_buffer(OCI_DIGEST_SHA256, b->base_top, b->base_top_len, &b->base_top_digest);
    if (b->base.has_digest && !oci_digest_equal(&b->base_top_digest, &b->base.digest)) {
        err = OCISYNC_EDIGESTMISMATCH;
        snprintf(b->res->error, sizeof(b->res->error),
                 "base image %s@%s: the registry returned a manifest with digest %s", b->base_repo,
                 b->base.digest.str, b->base_top_digest.str);
        goto out;
    }
    for (size_t i = 0; i < b->n_plats; i++) {
        struct plat *p = &b->plats[i];
        struct oci_manifest m;
        const struct oci_descriptor *pick = NULL;
        if (top.kind == OCI_KIND_INDEX) {
            for (size_t k = 0; k < top.n_manifests && pick == NULL; k++)
                if (top.manifests[k].has_platform &&
                    oci_platform_match(&p->p, &top.manifests[k].platform))
                    pick = &top.manifests[k];
            if (pick == NULL) {
                err = OCISYNC_ENOPLATFORM;
                snprintf(b->res->error, sizeof(b->res->error), "base image %s has no image for %s",
                         b->base_repo, p->name);
                goto out;
            }
            err = fetch(&f, b->base.repository, pick->digest.str, false, &p->base_manifest,
                        &p->base_manifest_len, ct, sizeof(ct), msg, sizeof(msg));
            if (err == 0 && !digest_ok(p->base_manifest, p->base_manifest_len, &pick->digest)) {
                err = OCISYNC_EDIGESTMISMATCH;
                snprintf(msg, sizeof(msg), "the manifest does not match its digest");
            }
            p->base_digest = pick->digest;
        } else {
            p->base_manifest = malloc(b->base_top_len);
            if (p->base_manifest == NULL) {
                err = UV_ENOMEM;
                goto out;
            }
            memcpy(p->base_manifest, b->base_top, b->base_top_len);
            p->base_manifest_len = b->base_top_len;
            p->base_digest = b->base_top_digest;
        }
        if (err == 0)
            err = oci_manifest_parse(ct, p->base_manifest, p->base_manifest_len, &m, msg,
                                     sizeof(msg));
        if (err != 0) {
            snprintf(b->res->error, sizeof(b->res->error), "base image %s for %s: %s", b->base_repo,
                     p->name, msg);
            goto out;
        }
        /*
         * The new image is OCI whatever the base: a Docker manifest can hold
         * neither zstd layers nor annotations; its gzip layers keep their bytes.
         */
        p->docker = false;
        p->base_layers = m.n_layers;
        err = fetch(&f, b->base.repository, m.config.digest.str, true, &p->base_config,
                    &p->base_config_len, NULL, 0, msg, sizeof(msg));
        if (err == 0 && !digest_ok(p->base_config, p->base_config_len, &m.config.digest)) {
            err = OCISYNC_EDIGESTMISMATCH;
            snprintf(msg, sizeof(msg), "the config does not match its digest");
        }
        oci_manifest_free(&m);
        if (err != 0) {
            snprintf(b->res->error, sizeof(b->res->error), "base image %s for %s: config: %s",
                     b->base_repo, p->name, msg);
            goto out;
        }
    }
out:
    if (top_parsed)
        oci_manifest_free(&top);
    if (f.reg != NULL) {
        proto_registry_dispose(f.reg);
        free(f.reg);
    }
    engine_session_close(&f.s);
    return err;
}

/*
 * Resolves base for one platform into b (zeroed here; build_free it after,
 * whatever the result): its manifest, config and digest.
 */
static int resolve_one(struct build *b, struct ocisync_build_result *res,
                       const struct ocisync_build_opts *o, const char *base, const char *platform,
                       char *err, size_t errlen)
{
    int rc;

    memset(b, 0, sizeof(*b));
    memset(res, 0, sizeof(*res));
    b->o = o;
    b->res = res;
    rc = oci_ref_parse(base, &b->base, err, errlen);
    if (rc != 0)
        return rc;
    snprintf(b->base_repo, sizeof(b->base_repo), "%s/%s", b->base.registry, b->base.repository);
    if (oci_platform_parse(platform, &b->plats[0].p) != 0) {
        snprintf(err, errlen, "invalid platform \"%s\"", platform);
        return OCISYNC_EPLATFORM;
    }
    oci_platform_format(&b->plats[0].p, b->plats[0].name, sizeof(b->plats[0].name));
    b->n_plats = 1;
    rc = resolve_base(b);
    if (rc != 0)
        snprintf(err, errlen, "%s", res->error);
    return rc;
}

int engine_build_base_config(const struct ocisync_build_opts *o, const char *base,
                             const char *platform, char **config, size_t *len, char *err,
                             size_t errlen)
{
    struct ocisync_build_result res;
    struct build b;
    int rc;

    *config = NULL;
    *len = 0;
    rc = resolve_one(&b, &res, o, base, platform, err, errlen);
    if (rc == 0) {
        *config = b.plats[0].base_config;
        *len = b.plats[0].base_config_len;
        b.plats[0].base_config = NULL;
    }
    build_free(&b);
    return rc;
}

void engine_base_layers_free(struct engine_base_layers *bl)
{
    free(bl->path);
    free(bl->diff_id);
    memset(bl, 0, sizeof(*bl));
}

int engine_build_base_layers(const struct ocisync_build_opts *o, const char *base,
                             const char *platform, const char *cache_dir,
                             struct engine_base_layers *out, char *err, size_t errlen)
{
    struct ocisync_build_result res;
    struct build b;
    struct oci_manifest m;
    bool parsed = false;
    json_t *cfg = NULL, *ids;
    struct engine_copy_item item;
    struct engine_transport from, to;
    struct ocisync_copy_result cres;
    char src[1200], dst[PATH_MAX + 16], msg[1024];
    int rc;

    memset(out, 0, sizeof(*out));
    rc = resolve_one(&b, &res, o, base, platform, err, errlen);
    if (rc != 0)
        goto out;
    rc = oci_manifest_parse(NULL, b.plats[0].base_manifest, b.plats[0].base_manifest_len, &m, msg,
                            sizeof(msg));
    if (rc != 0) {
        snprintf(err, errlen, "base image %s: %s", base, msg);
        goto out;
    }
    parsed = true;
    cfg = json_loadb(b.plats[0].base_config, b.plats[0].base_config_len, 0, NULL);
    ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
    if (json_array_size(ids) != m.n_layers) {
        snprintf(err, errlen, "base image %s: its config lists %zu diff_ids for %zu layers", base,
                 json_array_size(ids), m.n_layers);
        rc = OCISYNC_EMANIFEST;
        goto out;
    }
    out->path = calloc(m.n_layers ? m.n_layers : 1, sizeof(*out->path));
    out->diff_id = calloc(m.n_layers ? m.n_layers : 1, sizeof(*out->diff_id));
    if (out->path == NULL || out->diff_id == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < m.n_layers; i++) {
        json_t *v = json_array_get(ids, i);
        if (!json_is_string(v) || oci_digest_parse_str(json_string_value(v), &out->diff_id[i])) {
            snprintf(err, errlen, "base image %s: diff_id %zu is not a digest", base, i);
            rc = OCISYNC_EMANIFEST;
            goto out;
        }
        snprintf(out->path[i], sizeof(out->path[i]), "%s/blobs/sha256/%s", cache_dir,
                 oci_digest_hex(&m.layers[i].digest));
    }
    out->n = m.n_layers;
    out->manifest = b.plats[0].base_digest;

    /* The blobs into the cache, an OCI layout: the copy engine fetches, verifies and retries. */
    memset(&from, 0, sizeof(from));
    from.kind = ENGINE_TRANSPORT_REGISTRY;
    from.ref = b.base;
    from.ref.tag[0] = '\0';
    from.ref.has_digest = true;
    from.ref.digest = b.plats[0].base_digest;
    engine_transport_layout(&to, cache_dir, "");
    oci_ref_format(&from.ref, src, sizeof(src));
    snprintf(dst, sizeof(dst), "oci:%s", cache_dir);
    memset(&item, 0, sizeof(item));
    memset(&cres, 0, sizeof(cres));
    item.it.src = src;
    item.it.dst = dst;
    item.it.blobs_only = 1;
    item.src = &from;
    item.dst = &to;
    {
        struct ocisync_copy_opts copts = o->copy;
        copts.platforms = NULL;
        copts.n_platforms = 0;
        copts.referrers = 0;
        copts.on_event = NULL;
        rc = engine_copy_many(&item, 1, &copts, &cres);
    }
    if (rc != 0)
        snprintf(err, errlen, "base image %s for %s: %s", base, platform,
                 cres.error[0] ? cres.error : ocisync_strerror(rc));
    for (size_t i = 0; rc == 0 && i < out->n; i++)
        engine_cache_touch(out->path[i]);
out:
    if (parsed)
        oci_manifest_free(&m);
    json_decref(cfg);
    build_free(&b);
    if (rc != 0)
        engine_base_layers_free(out);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Step 2: the new layers, on a thread of their own, while the base's layers travel */

struct stream_target {
    struct proto_registry *reg; /* owned */
    char repo[256];
};

static void on_pushed(struct engine_layer_push *p, int err, const char *msg)
{
    struct new_layer *l = p->data;
    size_t i = (size_t)(p - l->pushes);

    l->pushing[i] = false;
    l->owner->pending--;
    if (err == 0) {
        /* Committed, or found there: either way other repositories of that registry mount it. */
        size_t k = l->streamed + l->found;
        snprintf(l->streamed_to[k][0], sizeof(l->streamed_to[0][0]), "%s", p->reg->name);
        snprintf(l->streamed_to[k][1], sizeof(l->streamed_to[0][1]), "%s", p->repo);
        if (p->present)
            l->found++;
        else
            l->streamed++;
        LOG_DEBUG("layer %s: %s %s/%s while it was built", l->build.result.digest.str,
                  p->present ? "already at" : "streamed to", p->reg->name, p->repo);
    } else if (err != UV_ECANCELED) {
        /* Not fatal: the copy that pushes the image uploads the built file in one piece. */
        LOG_DEBUG("layer %s: streaming to %s/%s stopped (%s); it goes up once built", l->def->label,
                  p->reg->name, p->repo, msg);
    }
}

static void on_progress(struct oci_layer_build *lb, int fd, uint64_t written)
{
    struct new_layer *l = lb->data;
    for (size_t i = 0; i < MAX_STREAMS; i++)
        if (l->pushing[i])
            engine_layer_push_grow(&l->pushes[i], fd, written);
}

static void on_layer(struct oci_layer_build *lb, int err, const char *msg)
{
    struct new_layer *l = lb->data;
    l->owner->pending--;
    l->err = err;
    l->built = err == 0;
    if (err == 0 && l->sums != NULL) {
        char kmsg[512];
        struct build *b = l->owner;
        enum oci_compression comp =
            b->o->compression == OCISYNC_ZSTD ? OCI_COMPRESS_ZSTD : OCI_COMPRESS_GZIP;
        /* Not fatal: a layer without a key is just not cached. */
        if (engine_cache_key_sums(&b->cache, l->p, comp, b->o->level, l->sums, &l->key, kmsg,
                                  sizeof(kmsg)) == 0)
            l->keyed = true;
        else
            LOG_DEBUG("layer %s: no cache key: %s", l->def->label, kmsg);
    }
    if (err == 0 && l->keyed)
        engine_cache_put(&l->owner->cache, &l->key, &lb->result);
    if (err != 0)
        snprintf(l->msg, sizeof(l->msg), "%s", msg != NULL ? msg : ocisync_strerror(err));
    for (size_t i = 0; i < MAX_STREAMS; i++) {
        if (!l->pushing[i])
            continue;
        if (err == 0) {
            LOG_DEBUG("layer %s built: %llu bytes, %llu of them already sent to %s/%s",
                      lb->result.digest.str, (unsigned long long)lb->result.size,
                      (unsigned long long)l->pushes[i].consumed, l->pushes[i].reg->name,
                      l->pushes[i].repo);
            engine_layer_push_finish(&l->pushes[i], &lb->result.digest, lb->result.size);
        } else {
            engine_layer_push_abort(&l->pushes[i]);
        }
    }
}

/*
 * A tag that names a registry: its reference. Layouts and archives are not
 * (and "oci-archive:out.tar" must not pass for docker.io/library/oci-archive).
 */
static bool registry_tag(const char *tag, struct oci_ref *out)
{
    struct engine_transport t;
    if (engine_transport_parse(tag, &t, NULL, 0) != 0 || t.kind != ENGINE_TRANSPORT_REGISTRY)
        return false;
    *out = t.ref;
    return true;
}

/*
 * The registries the layers stream to: for each destination registry, the
 * first repository a tag names there. Any other repository gets the blob
 * from the copy that pushes the image.
 */
static size_t stream_targets(struct build *b, struct engine_session *s, struct stream_target *t)
{
    const struct ocisync_build_opts *o = b->o;
    size_t n = 0;

    for (size_t i = 0; i < o->n_tags && n < MAX_STREAMS; i++) {
        struct oci_ref dst;
        char msg[512];
        bool seen = false;
        if (!registry_tag(o->tags[i], &dst))
            continue; /* a layout or an archive, or an error the copy will report */
        for (size_t k = 0; k < n; k++)
            seen |= strcmp(t[k].reg->name, dst.registry) == 0;
        if (seen)
            continue;
        if (engine_endpoint_get(&s->endpoints, dst.registry, dst.repository, &o->copy.dst, true,
                                &t[n].reg, msg, sizeof(msg)) != 0) {
            LOG_DEBUG("%s: no streaming of layers: %s", dst.registry, msg);
            continue;
        }
        snprintf(t[n].reg->scope, sizeof(t[n].reg->scope), "repository:%s:pull,push",
                 dst.repository);
        snprintf(t[n].repo, sizeof(t[n].repo), "%s", dst.repository);
        n++;
    }
    return n;
}

/* SIGINT or SIGTERM on the builder's loop: the layers in progress stop where they are. */
static void builder_stop(struct engine_session *s)
{
    struct build *b = s->data;
    for (size_t i = 0; i < b->n_layers; i++)
        if (b->layers[i].owner != NULL)
            oci_layer_cancel(&b->layers[i].build);
}

/* Whether SIGINT or SIGTERM stopped the run (when it handles them). */
static bool stopped(const struct build *b)
{
    return b->o->copy.handle_signals && engine_stop_requested() != 0;
}

static void build_layers(void *arg)
{
    struct build *b = arg;
    struct engine_session s;
    struct stream_target targets[MAX_STREAMS];
    size_t n_targets = 0;
    enum oci_compression comp =
        b->o->compression == OCISYNC_ZSTD ? OCI_COMPRESS_ZSTD : OCI_COMPRESS_GZIP;
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    char dir[4300];
    bool can_hit;

    if (engine_session_init(&s, &b->o->copy) != 0) {
        b->layers[0].err = UV_ENOMEM;
        return;
    }
    s.on_stop = builder_stop;
    s.data = b;
    if (!b->o->no_stream)
        n_targets = stream_targets(b, &s, targets);
    snprintf(dir, sizeof(dir), "%s", b->staging);
    /*
     * A cache with nothing in it (a first build, a CI runner's fresh one) and
     * no registry cache to read: no lookup can hit, so no layer reads its
     * files for a key beforehand; each takes the key from its own reads.
     */
    can_hit = b->rfrom.n > 0 || engine_cache_has_layers(&b->cache);
    for (size_t i = 0; i < b->n_layers; i++) {
        struct new_layer *l = &b->layers[i];
        struct oci_tar_opts topts = l->def->topts;
        if (stopped(b)) {
            l->err = OCISYNC_EINTERRUPTED;
            continue;
        }
        if (sde != NULL && *sde != '\0') {
            topts.clamp_mtime = true;
            topts.mtime_max = b->created;
        }
        if (l->def->plan != NULL) {
            l->p = l->def->plan;
        } else if (l->def->n_src > 0 || l->def->key == NULL) {
            l->err = oci_tar_plan_build(&l->plan, l->def->src, l->def->n_src, &topts, l->msg,
                                        sizeof(l->msg));
            if (l->err != 0)
                continue;
            l->planned = true;
            l->p = &l->plan;
        }
        if ((b->cache.dir[0] != '\0' || b->to_on) && l->def->key == NULL && !can_hit &&
            l->p != NULL && l->p->n_entries <= MAX_SUMS &&
            (l->sums = calloc(l->p->n_entries ? l->p->n_entries : 1, sizeof(*l->sums))) != NULL) {
            LOG_DEBUG("layer %s: nothing cached to find; its key comes from the build's reads",
                      l->def->label);
        } else if (b->cache.dir[0] != '\0' || b->rfrom.n > 0 || b->to_on || l->def->key != NULL) {
            char blobs[4400];
            const struct engine_rcache_entry *e;
            if (l->def->key != NULL)
                l->key = *l->def->key;
            else
                l->err = engine_cache_key(&b->cache, l->p, comp, b->o->level, &l->key, l->msg,
                                          sizeof(l->msg));
            if (l->err != 0)
                continue;
            l->keyed = true;
            snprintf(blobs, sizeof(blobs), "%s/blobs/sha256", dir);
            if (l->at == NULL && (l->at = malloc(sizeof(*l->at))) == NULL) {
                l->err = UV_ENOMEM;
                continue;
            }
            if (engine_cache_get(&b->cache, &l->key, blobs, &l->build.result, l->at)) {
                LOG_DEBUG("layer %s: from the build cache (%s)", l->def->label,
                          l->build.result.digest.str);
                l->built = l->cached = true;
                continue;
            }
            if ((e = engine_rcache_find(&b->rfrom, &l->key)) != NULL) {
                LOG_DEBUG("layer %s: from the registry cache (%s)", l->def->label, e->r.digest.str);
                l->build.result = e->r;
                l->build.result.path[0] = '\0';
                l->built = l->cached = l->remote = true;
                continue;
            }
        }
        if (l->p == NULL) {
            /* Planned from its key alone: a RUN step found in the cache, which lost it since. */
            l->err = UV_ENOENT;
            snprintf(l->msg, sizeof(l->msg), "its build cache entry %s is gone; build again",
                     l->key.str);
            continue;
        }
        l->err = oci_layer_build(&l->build, &s.uv, l->p, comp, b->o->level, dir, on_layer, l);
        if (l->err != 0) {
            snprintf(l->msg, sizeof(l->msg), "cannot start building the layer: %s",
                     ocisync_strerror(l->err));
            continue;
        }
        l->owner = b; /* building: its callbacks count down b->pending */
        b->pending++;
        l->build.on_progress = on_progress;
        l->build.scratch = true; /* the staging layout is removed when the run ends */
        l->build.file_sums = l->sums;
        for (size_t t = 0; t < n_targets; t++) {
            int err = engine_layer_push_start(&l->pushes[t], &s.uv, targets[t].reg, targets[t].repo,
                                              b->o->copy.chunk_size, on_pushed, l);
            l->pushing[t] = err == 0;
            b->pending += err == 0;
        }
    }
    while (b->pending > 0)
        uv_run(&s.uv, UV_RUN_ONCE);
    for (size_t t = 0; t < n_targets; t++) {
        proto_registry_dispose(targets[t].reg);
        free(targets[t].reg);
    }
    engine_session_close(&s);
}

/*
 * The order the image goes to the tags: first one tag of each repository
 * (and every layout or archive), all at once; then, returned as from the
 * count on, the other tags of a repository already named, which then only
 * need their tag once the first has put the image there. Two copies into
 * one repository at once would each check, mount and push the same blobs
 * and manifests.
 */
static size_t order_tags(const struct ocisync_build_opts *o, size_t *order)
{
    size_t n = 0, first = 0;

    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            first = n;
        for (size_t t = 0; t < o->n_tags; t++) {
            struct oci_ref dst, prev;
            bool again = false;
            if (registry_tag(o->tags[t], &dst))
                for (size_t k = 0; k < t && !again; k++)
                    again = registry_tag(o->tags[k], &prev) &&
                            strcmp(prev.registry, dst.registry) == 0 &&
                            strcmp(prev.repository, dst.repository) == 0;
            if (again == (pass == 1))
                order[n++] = t;
        }
    }
    return first;
}

/* ------------------------------------------------------------------------------------------ */
/* Step 3: configs, manifests, the index */

static int write_image(struct build *b, struct oci_layout *lay, char *msg, size_t msglen)
{
    struct oci_index_entry entries[MAX_PLATFORMS];
    struct oci_annotation ann[64 + 4];
    char keys[64][256], created[64], base_name[700];
    size_t n_ann = 0;
    char *index = NULL;
    size_t index_len = 0;
    struct oci_digest index_digest;
    struct oci_descriptor d;
    int err = 0;

    oci_time_rfc3339(b->created, created, sizeof(created));
    for (size_t i = 0; i < b->o->n_annotations && i < 64; i++) {
        err = oci_annotation_parse(b->o->annotations[i], &ann[n_ann], keys[n_ann], sizeof(keys[0]),
                                   msg, msglen);
        if (err != 0)
            return err;
        n_ann++;
    }
    ann[n_ann++] = (struct oci_annotation){"org.opencontainers.image.created", created};
    if (!b->scratch) {
        snprintf(base_name, sizeof(base_name), "%s/%s:%s", b->base.registry, b->base.repository,
                 b->base.tag[0] ? b->base.tag : "latest");
        ann[n_ann++] = (struct oci_annotation){"org.opencontainers.image.base.name", base_name};
    }
    for (size_t i = 0; i < b->n_plats; i++) {
        struct plat *p = &b->plats[i];
        struct oci_build_layer nl[MAX_LAYERS];
        struct oci_build_changes ch = p->img->ch;
        struct oci_annotation pann[64 + 6];
        size_t n_nl = 0, n_pann = 0;
        for (size_t k = 0; k < p->img->n_layers; k++) {
            struct new_layer *l = &b->layers[p->img->layers[k]];
            nl[n_nl].diff_id = l->build.result.diff_id;
            nl[n_nl].digest = l->build.result.digest;
            nl[n_nl].size = l->build.result.size;
            nl[n_nl].media_type = b->comp_mt;
            nl[n_nl].created_by = l->def->created_by;
            n_nl++;
        }
        ch.created = b->created;
        err = oci_build_config(p->base_config, p->base_config_len, p->base_layers, &p->p, &ch, nl,
                               n_nl, &p->config, &p->config_len, msg, msglen);
        if (err == 0)
            err = oci_digest_buffer(OCI_DIGEST_SHA256, p->config, p->config_len, &p->config_digest);
        if (err == 0)
            err =
                oci_layout_put_blob(lay, &p->config_digest, p->config, p->config_len, msg, msglen);
        for (size_t k = 0; k < n_ann; k++)
            pann[n_pann++] = ann[k];
        if (!b->scratch)
            pann[n_pann++] =
                (struct oci_annotation){"org.opencontainers.image.base.digest", p->base_digest.str};
        if (err == 0)
            err = oci_build_manifest(p->base_manifest, p->base_manifest_len, &p->config_digest,
                                     p->config_len, p->docker, nl, n_nl, pann, n_pann, &p->manifest,
                                     &p->manifest_len, msg, msglen);
        if (err == 0)
            err = oci_digest_buffer(OCI_DIGEST_SHA256, p->manifest, p->manifest_len,
                                    &p->manifest_digest);
        if (err == 0)
            err = oci_layout_put_blob(lay, &p->manifest_digest, p->manifest, p->manifest_len, msg,
                                      msglen);
        if (err != 0)
            return err;
        snprintf(p->manifest_mt, sizeof(p->manifest_mt), "%s",
                 p->docker ? OCI_MT_DOCKER_MANIFEST : OCI_MT_OCI_MANIFEST);
        entries[i].digest = p->manifest_digest;
        entries[i].size = p->manifest_len;
        entries[i].media_type = p->manifest_mt;
        entries[i].platform = p->p;
    }
    if (!b->scratch)
        ann[n_ann++] =
            (struct oci_annotation){"org.opencontainers.image.base.digest", b->base_top_digest.str};
    err = oci_build_index(entries, b->n_plats, false, ann, n_ann, &index, &index_len, msg, msglen);
    if (err == 0)
        err = oci_digest_buffer(OCI_DIGEST_SHA256, index, index_len, &index_digest);
    if (err == 0)
        err = oci_layout_put_blob(lay, &index_digest, index, index_len, msg, msglen);
    if (err == 0) {
        memset(&d, 0, sizeof(d));
        snprintf(d.media_type, sizeof(d.media_type), "%s", OCI_MT_OCI_INDEX);
        d.digest = index_digest;
        d.size = (int64_t)index_len;
        err = oci_layout_add(lay, &d, "build", msg, msglen);
    }
    if (err == 0)
        err = oci_layout_commit(lay, msg, msglen);
    if (err == 0)
        snprintf(b->res->digest, sizeof(b->res->digest), "%s", index_digest.str);
    free(index);
    return err;
}

/* ------------------------------------------------------------------------------------------ */

/*
 * Where the new layers are already: streamed this run, pushed by an earlier
 * build (the cache remembers), or in the registry cache. The copy mounts
 * them from there into the other repositories of the same registry instead
 * of uploading them (and fetches those of the registry cache from it).
 */
static int make_hints(struct build *b, struct engine_mount_hint **out, char (**strs)[2][256],
                      size_t *n)
{
    size_t cap = 0;

    *n = 0;
    for (size_t i = 0; i < b->n_layers; i++)
        cap += b->layers[i].streamed + b->layers[i].found +
               (b->layers[i].at ? b->layers[i].at->n : 0) + b->layers[i].remote;
    if (cap == 0)
        return 0;
    *out = calloc(cap, sizeof(**out));
    *strs = calloc(cap, sizeof(**strs));
    if (*out == NULL || *strs == NULL)
        return UV_ENOMEM;
    for (size_t i = 0; i < b->n_layers; i++) {
        struct new_layer *l = &b->layers[i];
        if (l->remote)
            (*out)[(*n)++] = (struct engine_mount_hint){
                b->rfrom.ref.registry, b->rfrom.ref.repository, l->build.result.digest};
        for (size_t k = 0; k < l->streamed + l->found; k++) {
            memcpy((*strs)[*n], l->streamed_to[k], sizeof((*strs)[0]));
            (*out)[*n] =
                (struct engine_mount_hint){(*strs)[*n][0], (*strs)[*n][1], l->build.result.digest};
            (*n)++;
        }
        for (size_t k = 0; l->at != NULL && k < l->at->n; k++) {
            const char *slash = strchr(l->at->v[k], '/');
            if (slash == NULL || (size_t)(slash - l->at->v[k]) >= sizeof((*strs)[0][0]) ||
                strlen(slash + 1) >= sizeof((*strs)[0][1]))
                continue;
            snprintf((*strs)[*n][0], sizeof((*strs)[0][0]), "%.*s", (int)(slash - l->at->v[k]),
                     l->at->v[k]);
            snprintf((*strs)[*n][1], sizeof((*strs)[0][1]), "%s", slash + 1);
            (*out)[*n] =
                (struct engine_mount_hint){(*strs)[*n][0], (*strs)[*n][1], l->build.result.digest};
            (*n)++;
        }
    }
    return 0;
}

/*
 * The registry cache of o: cache_to's image checked, cache_from's read
 * (unless no_cache). A cache_from that cannot be read is a warning: the
 * build goes on without it, as it does without a local cache.
 */
static int open_registry_cache(struct build *b)
{
    const struct ocisync_build_opts *o = b->o;
    char msg[1024];
    int err;

    if (o->cache_to != NULL) {
        err = engine_rcache_ref(o->cache_to, "--cache-to", &b->rto, b->res->error,
                                sizeof(b->res->error));
        if (err != 0)
            return err;
        b->to_on = true;
    }
    if (o->cache_from == NULL)
        return 0;
    err = engine_rcache_ref(o->cache_from, "--cache-from", &b->rfrom.ref, b->res->error,
                            sizeof(b->res->error));
    if (err != 0 || o->no_cache)
        return err;
    if (engine_rcache_load(&b->rfrom, &o->copy, msg, sizeof(msg)) != 0)
        snprintf(b->res->cache_warning, sizeof(b->res->cache_warning), "%s; building without it",
                 msg);
    return 0;
}

/*
 * Writes the registry cache: an image of this build's layers, into the
 * staging layout and from there to cache_to, once the tags are pushed (so
 * its layers mount from them; those from cache_from come from there).
 */
static int push_registry_cache(struct build *b, struct oci_layout *lay,
                               const struct engine_mount_hint *hints, size_t n_hints)
{
    struct ocisync_build_result *res = b->res;
    struct engine_rcache_entry *e = calloc(b->n_layers + 1, sizeof(*e));
    struct engine_mount_hint *more = calloc(n_hints + b->n_pushed * b->n_layers + 1, sizeof(*more));
    struct engine_copy_item item;
    struct engine_transport from, to;
    struct ocisync_copy_result cres;
    struct ocisync_copy_opts copts = b->o->copy;
    char src[4400], dst[1200];
    size_t n = 0;
    int err;

    if (e == NULL || more == NULL) {
        free(e);
        free(more);
        return UV_ENOMEM;
    }
    /* The layers are now in the repositories of the tags too: mounts from there. */
    memcpy(more, hints, n_hints * sizeof(*hints));
    for (size_t t = 0; t < b->n_pushed; t++)
        for (size_t i = 0; i < b->n_layers; i++)
            more[n_hints++] = (struct engine_mount_hint){
                b->pushed[t].registry, b->pushed[t].repository, b->layers[i].build.result.digest};
    for (size_t i = 0; i < b->n_layers; i++) {
        if (!b->layers[i].keyed)
            continue;
        e[n].key = b->layers[i].key;
        e[n].r = b->layers[i].build.result;
        snprintf(e[n].media_type, sizeof(e[n].media_type), "%s", b->comp_mt);
        n++;
    }
    err = engine_rcache_write(lay, "cache", e, n, res->error, sizeof(res->error));
    if (err == 0)
        err = oci_layout_commit(lay, res->error, sizeof(res->error));
    free(e);
    if (err != 0)
        goto out;
    memset(&item, 0, sizeof(item));
    memset(&to, 0, sizeof(to));
    memset(&cres, 0, sizeof(cres));
    to.kind = ENGINE_TRANSPORT_REGISTRY;
    to.ref = b->rto;
    oci_ref_format(&b->rto, dst, sizeof(dst));
    snprintf(src, sizeof(src), "oci:%s:cache", b->staging);
    item.it.src = src;
    item.it.dst = dst;
    engine_transport_layout(&from, b->staging, "cache");
    item.src = &from;
    item.dst = &to;
    item.hints = more;
    item.n_hints = n_hints;
    item.holder = b->rfrom.n > 0 ? &b->rfrom.ref : NULL;
    copts.platforms = NULL;
    copts.n_platforms = 0;
    copts.referrers = 0;
    copts.on_event = NULL;
    err = engine_copy_many(&item, 1, &copts, &cres);
    if (err != 0)
        snprintf(res->error, sizeof(res->error), "--cache-to %s: %s (the image itself was pushed)",
                 dst, cres.error[0] ? cres.error : ocisync_strerror(err));
out:
    free(more);
    return err;
}

/* The build's layers and platforms from the spec, checked. */
static int plan_build(struct build *b)
{
    const struct engine_build_spec *spec = b->spec;
    char *msg = b->res->error;
    size_t msglen = sizeof(b->res->error);

    if (spec->n_images == 0 || spec->n_images > MAX_PLATFORMS) {
        snprintf(msg, msglen, "give 1 to %d platforms", MAX_PLATFORMS);
        return OCISYNC_EUSAGE;
    }
    if (b->o->n_tags == 0) {
        snprintf(msg, msglen, "give at least one tag (destination)");
        return OCISYNC_EUSAGE;
    }
    if (spec->n_layers > MAX_LAYERS) {
        snprintf(msg, msglen, "too many new layers (at most %d)", MAX_LAYERS);
        return OCISYNC_EUSAGE;
    }
    b->layers = calloc(spec->n_layers ? spec->n_layers : 1, sizeof(*b->layers));
    if (b->layers == NULL)
        return UV_ENOMEM;
    for (size_t i = 0; i < spec->n_layers; i++)
        b->layers[i].def = &spec->layers[i];
    b->n_layers = spec->n_layers;
    for (size_t i = 0; i < spec->n_images; i++) {
        struct plat *p = &b->plats[i];
        const struct engine_build_image *img = &spec->images[i];
        if (oci_platform_parse(img->platform, &p->p) != 0) {
            snprintf(msg, msglen,
                     "invalid platform \"%s\": expected os/arch[/variant], like linux/arm64",
                     img->platform);
            return OCISYNC_EPLATFORM;
        }
        oci_platform_format(&p->p, p->name, sizeof(p->name));
        for (size_t k = 0; k < i; k++) {
            if (strcmp(b->plats[k].name, p->name) == 0) {
                snprintf(msg, msglen, "platform %s is given twice", p->name);
                return OCISYNC_EUSAGE;
            }
        }
        if (img->n_layers > MAX_LAYERS) {
            snprintf(msg, msglen, "%s: too many new layers (at most %d)", p->name, MAX_LAYERS);
            return OCISYNC_EUSAGE;
        }
        for (size_t k = 0; k < img->n_layers; k++) {
            if (img->layers[k] >= spec->n_layers) {
                snprintf(msg, msglen, "%s: layer %zu does not exist", p->name, img->layers[k]);
                return OCISYNC_EUSAGE;
            }
        }
        p->img = img;
        b->n_plats++;
    }
    return 0;
}

static void build_free(struct build *b)
{
    engine_rcache_free(&b->rfrom);
    free(b->pushed);
    for (size_t i = 0; i < b->n_layers; i++) {
        if (b->layers[i].planned)
            oci_tar_plan_free(&b->layers[i].plan);
        free(b->layers[i].at);
        free(b->layers[i].sums);
    }
    free(b->layers);
    for (size_t i = 0; i < b->n_plats; i++) {
        free(b->plats[i].base_manifest);
        free(b->plats[i].base_config);
        free(b->plats[i].config);
        free(b->plats[i].manifest);
    }
    free(b->base_top);
}

int engine_build_run(const struct engine_build_spec *spec, struct ocisync_build_result *res)
{
    const struct ocisync_build_opts *o = spec->o;
    struct build b;
    struct oci_layout lay;
    bool lay_open = false;
    uv_thread_t builder;
    bool builder_started = false;
    struct engine_copy_item *items = NULL;
    struct engine_transport *sides = NULL, staging;
    struct ocisync_copy_result *cres = NULL;
    struct engine_mount_hint *hints = NULL;
    char(*hint_strs)[2][256] = NULL;
    size_t n_hints = 0, *order = NULL, n_first;
    char src[4400];
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    int err;

    memset(&b, 0, sizeof(b));
    b.spec = spec;
    b.o = o;
    b.res = res;
    if (o->copy.handle_signals)
        engine_stop_enter();
    b.created = sde != NULL && *sde != '\0' ? strtoll(sde, NULL, 10) : (int64_t)time(NULL);
    b.comp_mt = o->compression == OCISYNC_ZSTD ? OCI_MT_OCI_LAYER_ZSTD : OCI_MT_OCI_LAYER_GZIP;
    if (!o->no_cache)
        engine_cache_open(&b.cache, o->cache_dir);
    err = plan_build(&b);
    if (err == 0)
        err = open_registry_cache(&b);
    if (err != 0)
        goto out;
    b.scratch = spec->base == NULL || strcmp(spec->base, "scratch") == 0;
    if (!b.scratch) {
        err = oci_ref_parse(spec->base, &b.base, res->error, sizeof(res->error));
        if (err != 0)
            goto out;
        snprintf(b.base_repo, sizeof(b.base_repo), "%s/%s", b.base.registry, b.base.repository);
        err = resolve_base(&b);
        if (err != 0)
            goto out;
    }
    err = oci_archive_tempdir(b.staging, sizeof(b.staging), res->error, sizeof(res->error));
    if (err != 0)
        goto out;
    err = oci_layout_open(&lay, b.staging, true, res->error, sizeof(res->error));
    if (err != 0)
        goto out;
    lay_open = true;
    /* The layout's blob directory must exist before the builders write into it. */
    err = oci_layout_commit(&lay, res->error, sizeof(res->error));
    if (err != 0)
        goto out;

    /* Step 2: layers on their thread; the base's layers to every destination meanwhile. */
    err = uv_thread_create(&builder, build_layers, &b);
    if (err != 0)
        goto out;
    builder_started = true;
    items = calloc(o->n_tags * (b.n_plats + 1), sizeof(*items));
    cres = calloc(o->n_tags * (b.n_plats + 1), sizeof(*cres));
    if (items == NULL || cres == NULL) {
        err = UV_ENOMEM;
        goto out;
    }
    if (!b.scratch) {
        size_t n = 0;
        char(*refs)[2][800] = calloc(o->n_tags * b.n_plats, sizeof(*refs));
        sides = calloc(2 * o->n_tags * b.n_plats, sizeof(*sides));
        if (refs == NULL || sides == NULL) {
            free(refs);
            err = UV_ENOMEM;
            goto out;
        }
        for (size_t t = 0; t < o->n_tags; t++) {
            struct oci_ref dst;
            /* A registry destination: its repository; a layout takes the blobs as it is. */
            if (!registry_tag(o->tags[t], &dst))
                continue;
            for (size_t i = 0; i < b.n_plats; i++) {
                /* Each platform's base image, by digest, from the base to the destination. */
                struct engine_transport *from = &sides[2 * n], *to = &sides[2 * n + 1];
                from->kind = to->kind = ENGINE_TRANSPORT_REGISTRY;
                from->ref = b.base;
                to->ref = dst;
                from->ref.tag[0] = to->ref.tag[0] = '\0';
                from->ref.has_digest = to->ref.has_digest = true;
                from->ref.digest = to->ref.digest = b.plats[i].base_digest;
                oci_ref_format(&from->ref, refs[n][0], sizeof(refs[n][0]));
                oci_ref_format(&to->ref, refs[n][1], sizeof(refs[n][1]));
                items[n].it.src = refs[n][0];
                items[n].it.dst = refs[n][1];
                items[n].it.blobs_only = 1;
                items[n].src = from;
                items[n].dst = to;
                n++;
            }
        }
        if (n > 0) {
            struct ocisync_copy_opts copts = o->copy;
            copts.platforms = NULL;
            copts.n_platforms = 0;
            copts.referrers = 0;
            err = engine_copy_many(items, n, &copts, cres);
            for (size_t i = 0; i < n; i++) {
                res->blobs_copied += cres[i].blobs_copied;
                res->blobs_mounted += cres[i].blobs_mounted;
                res->blobs_skipped += cres[i].blobs_skipped;
                if (err != 0 && cres[i].error[0] != '\0' && res->error[0] == '\0')
                    snprintf(res->error, sizeof(res->error), "base layers: %s", cres[i].error);
            }
        }
        free(refs);
        if (err != 0) {
            if (res->error[0] == '\0')
                snprintf(res->error, sizeof(res->error), "base layers: %s", ocisync_strerror(err));
            goto out;
        }
    }
    uv_thread_join(&builder);
    builder_started = false;
    for (size_t i = 0; i < b.n_layers; i++) {
        struct new_layer *l = &b.layers[i];
        if (l->err != 0 || !l->built) {
            err = l->err != 0 ? l->err : UV_EIO;
            snprintf(res->error, sizeof(res->error), "layer %s: %s", l->def->label,
                     l->msg[0] ? l->msg : ocisync_strerror(err));
            goto out;
        }
        res->layers_built++;
        res->layers_cached += l->cached;
        res->bytes_built += l->build.result.size;
        res->tar_bytes += l->build.result.tar_size;
        res->blobs_streamed += l->streamed;
    }

    /* Step 3: the image into the staging layout, then out to every tag. */
    oci_layout_close(&lay);
    lay_open = false;
    err = oci_layout_open(&lay, b.staging, false, res->error, sizeof(res->error));
    if (err != 0)
        goto out;
    lay_open = true;
    err = write_image(&b, &lay, res->error, sizeof(res->error));
    if (err != 0)
        goto out;
    /* The staging layout goes to copy as a value; the string only labels its events. */
    engine_transport_layout(&staging, b.staging, "build");
    snprintf(src, sizeof(src), "oci:%s:build", b.staging);
    memset(items, 0, o->n_tags * sizeof(*items));
    memset(cres, 0, o->n_tags * sizeof(*cres));
    err = make_hints(&b, &hints, &hint_strs, &n_hints);
    if (err != 0)
        goto out;
    order = calloc(o->n_tags, sizeof(*order));
    if (order == NULL) {
        err = UV_ENOMEM;
        goto out;
    }
    n_first = order_tags(o, order);
    for (size_t k = 0; k < o->n_tags; k++) {
        items[k].it.src = src;
        items[k].it.dst = o->tags[order[k]];
        items[k].it.base = b.scratch ? NULL : b.base_repo;
        items[k].src = &staging;
        items[k].hints = hints;
        items[k].n_hints = n_hints;
        items[k].holder = b.rfrom.n > 0 ? &b.rfrom.ref : NULL;
    }
    {
        struct ocisync_copy_opts copts = o->copy;
        copts.platforms = NULL;
        copts.n_platforms = 0;
        err = engine_copy_many(items, n_first, &copts, cres);
        /* More tags in repositories that now hold the image: each costs a HEAD or two and a PUT. */
        if (n_first < o->n_tags && !stopped(&b)) {
            int err2 =
                engine_copy_many(items + n_first, o->n_tags - n_first, &copts, cres + n_first);
            err = err != 0 ? err : err2;
        }
    }
    for (size_t k = 0; k < o->n_tags; k++) {
        res->blobs_copied += cres[k].blobs_copied;
        res->blobs_mounted += cres[k].blobs_mounted;
        res->blobs_skipped += cres[k].blobs_skipped;
        if (cres[k].error[0] != '\0' && res->error[0] == '\0')
            snprintf(res->error, sizeof(res->error), "%s: %s", o->tags[order[k]], cres[k].error);
    }
    if (o->tag_results != NULL)
        memcpy(o->tag_results, cres, o->n_tags * sizeof(*cres));
    /* The cache remembers where its layers now are, for mounts next time. */
    for (size_t k = 0; k < o->n_tags; k++) {
        struct oci_ref dst;
        char where[ENGINE_CACHE_AT_LEN];
        if (cres[k].error[0] != '\0' || !registry_tag(o->tags[order[k]], &dst))
            continue;
        snprintf(where, sizeof(where), "%s/%s", dst.registry, dst.repository);
        if (b.pushed == NULL && (b.pushed = calloc(o->n_tags, sizeof(*b.pushed))) == NULL) {
            err = UV_ENOMEM;
            goto out;
        }
        b.pushed[b.n_pushed++] = dst;
        for (size_t i = 0; i < b.n_layers; i++)
            if (b.layers[i].keyed)
                engine_cache_note(&b.cache, &b.layers[i].key, where);
    }
    if (err == 0 && b.to_on)
        err = push_registry_cache(&b, &lay, hints, n_hints);
    /* The copy found the streamed layers already there; they were uploaded all the same. */
    res->blobs_copied += res->blobs_streamed;
    res->blobs_skipped -=
        res->blobs_streamed < res->blobs_skipped ? res->blobs_streamed : res->blobs_skipped;
out:
    free(hints);
    free(hint_strs);
    free(order);
    if (builder_started)
        uv_thread_join(&builder);
    if (lay_open)
        oci_layout_close(&lay);
    if (b.staging[0] != '\0')
        oci_archive_remove_dir(b.staging);
    engine_cache_trim(&b.cache, o->cache_max);
    free(items);
    free(sides);
    free(cres);
    build_free(&b);
    if (err != 0 && stopped(&b)) {
        err = OCISYNC_EINTERRUPTED;
        snprintf(res->error, sizeof(res->error),
                 "interrupted by %s: nothing half-done was committed (no tag was pushed unless "
                 "the image was complete); a rerun builds and pushes what is missing",
                 engine_stop_name());
    }
    if (err != 0 && res->error[0] == '\0')
        snprintf(res->error, sizeof(res->error), "%s", ocisync_strerror(err));
    if (o->copy.handle_signals)
        engine_stop_leave();
    return err;
}

/* ------------------------------------------------------------------------------------------ */
/* The flags' build: directories per platform and shared layers */

/* A layer described by "SRC[:DEST]" strings, with what its spec entry borrows. */
struct flag_layer {
    struct oci_tar_source src[MAX_SOURCES];
    char *specs[MAX_SOURCES]; /* owned copies the sources point into */
    char created_by[512];
};

struct flag_spec {
    struct flag_layer *fl;             /* owned */
    struct engine_build_layer *layers; /* owned, one per fl */
    struct engine_build_image images[MAX_PLATFORMS];
    size_t idx[MAX_PLATFORMS][MAX_LAYERS + 1]; /* each image's layer indexes */
    size_t n, cap;                             /* layers used, allocated */
};

/* Splits "SRC[:DEST]" (DEST absolute) into layer l's next source. */
static int add_source(struct flag_spec *fs, size_t l, const char *spec, char *msg, size_t msglen)
{
    struct flag_layer *f = &fs->fl[l];
    struct engine_build_layer *el = &fs->layers[l];
    char *copy, *colon;

    if (el->n_src == MAX_SOURCES) {
        snprintf(msg, msglen, "too many directories for one layer (at most %d)", MAX_SOURCES);
        return OCISYNC_EUSAGE;
    }
    copy = strdup(spec);
    if (copy == NULL)
        return UV_ENOMEM;
    f->specs[el->n_src] = copy;
    colon = strrchr(copy, ':');
    if (colon != NULL && colon[1] == '/') {
        *colon = '\0';
        f->src[el->n_src].dest = colon + 1;
    } else {
        f->src[el->n_src].dest = "/";
    }
    f->src[el->n_src].src = copy;
    if (copy[0] == '\0') {
        snprintf(msg, msglen, "\"%s\": no source directory", spec);
        return OCISYNC_EUSAGE;
    }
    el->n_src++;
    if (strlen(f->created_by) + strlen(spec) + 16 < sizeof(f->created_by)) {
        if (f->created_by[0] == '\0')
            snprintf(f->created_by, sizeof(f->created_by), "ocisync build: %s", spec);
        else
            strcat(strcat(f->created_by, " "), spec);
    }
    return 0;
}

static int flag_spec_make(const struct ocisync_build_opts *o, struct flag_spec *fs,
                          struct engine_build_spec *spec, char *msg, size_t msglen)
{
    struct oci_build_changes ch;
    size_t n = o->n_layers;
    int err;

    memset(fs, 0, sizeof(*fs));
    if (o->n_platforms == 0 || o->n_platforms > MAX_PLATFORMS) {
        snprintf(msg, msglen, "give 1 to %d platforms", MAX_PLATFORMS);
        return OCISYNC_EUSAGE;
    }
    for (size_t i = 0; i < o->n_platforms; i++)
        n += o->platforms[i].n_contents > 0;
    if (n > MAX_LAYERS) {
        snprintf(msg, msglen, "too many new layers (at most %d)", MAX_LAYERS);
        return OCISYNC_EUSAGE;
    }
    fs->fl = calloc(n ? n : 1, sizeof(*fs->fl));
    fs->layers = calloc(n ? n : 1, sizeof(*fs->layers));
    if (fs->fl == NULL || fs->layers == NULL)
        return UV_ENOMEM;
    fs->cap = n;
    memset(&ch, 0, sizeof(ch));
    ch.env = o->env;
    ch.n_env = o->n_env;
    ch.entrypoint = o->entrypoint;
    ch.n_entrypoint = o->n_entrypoint;
    ch.set_entrypoint = o->set_entrypoint != 0;
    ch.cmd = o->cmd;
    ch.n_cmd = o->n_cmd;
    ch.set_cmd = o->set_cmd != 0;
    ch.workdir = o->workdir;
    ch.user = o->user;
    ch.labels = o->labels;
    ch.n_labels = o->n_labels;
    ch.expose = o->expose;
    ch.n_expose = o->n_expose;
    for (size_t i = 0; i < n; i++) {
        struct engine_build_layer *el = &fs->layers[i];
        el->src = fs->fl[i].src;
        el->topts.chown = o->chown != 0;
        el->topts.uid = o->uid;
        el->topts.gid = o->gid;
        el->label = fs->fl[i].created_by + strlen("ocisync build: ");
        el->created_by = fs->fl[i].created_by;
    }
    for (size_t i = 0; i < o->n_layers; i++) {
        err = add_source(fs, fs->n++, o->layers[i], msg, msglen);
        if (err != 0)
            return err;
    }
    for (size_t i = 0; i < o->n_platforms; i++) {
        struct engine_build_image *img = &fs->images[i];
        size_t k;
        for (k = 0; k < o->n_layers; k++)
            fs->idx[i][k] = k;
        if (o->platforms[i].n_contents > 0) {
            for (size_t c = 0; c < o->platforms[i].n_contents; c++) {
                err = add_source(fs, fs->n, o->platforms[i].contents[c], msg, msglen);
                if (err != 0)
                    return err;
            }
            fs->idx[i][k++] = fs->n++;
        }
        img->platform = o->platforms[i].platform;
        img->layers = fs->idx[i];
        img->n_layers = k;
        img->ch = ch;
    }
    memset(spec, 0, sizeof(*spec));
    spec->base = o->base;
    spec->layers = fs->layers;
    spec->n_layers = fs->n;
    spec->images = fs->images;
    spec->n_images = o->n_platforms;
    spec->o = o;
    return 0;
}

static void flag_spec_free(struct flag_spec *fs)
{
    for (size_t i = 0; fs->fl != NULL && i < fs->cap; i++) {
        for (size_t k = 0; k < MAX_SOURCES && fs->fl[i].specs[k] != NULL; k++)
            free(fs->fl[i].specs[k]);
    }
    free(fs->fl);
    free(fs->layers);
}

int ocisync_build(const struct ocisync_build_opts *o, struct ocisync_build_result *res)
{
    struct engine_build_spec spec;
    struct flag_spec *fs;
    int err;

    memset(res, 0, sizeof(*res));
    ocisync__debug = o->copy.debug;
    if (o->dockerfile != NULL)
        return engine_dockerfile_build(o, res);
    fs = calloc(1, sizeof(*fs));
    if (fs == NULL)
        return UV_ENOMEM;
    err = flag_spec_make(o, fs, &spec, res->error, sizeof(res->error));
    if (err == 0)
        err = engine_build_run(&spec, res);
    else if (res->error[0] == '\0')
        snprintf(res->error, sizeof(res->error), "%s", ocisync_strerror(err));
    flag_spec_free(fs);
    free(fs);
    return err;
}
