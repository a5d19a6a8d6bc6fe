/*
 * Reading images: where from (a registry over one session, or a layout),
 * the documents read with their digests verified, and the public entry
 * points of the read commands (digest, manifest, config, inspect, blob).
 *
 * Each call opens one session (its loop, pool and endpoint) and runs its
 * few requests one after another on that loop to their end: reads are
 * short sequences, so they need no state machine of their own beyond the
 * blob download's (below).
 */
#include "engine/read.h"

#include "common/log.h"
#include "common/sysio.h"
#include "engine/stop.h"
#include "oci/archive.h"
#include "oci/dir.h"
#include "oci/docker_archive.h"
#include "oci/ref.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void ocisync_read_result_free(struct ocisync_read_result *r)
{
    if (r == NULL)
        return;
    free(r->data);
    r->data = NULL;
    r->len = 0;
}

static bool is_local(enum engine_transport_kind k)
{
    return k != ENGINE_TRANSPORT_REGISTRY;
}

/* Unpacks an archive into a temp layout (as copy does for an archive source). */
static int open_archive(struct engine_read_src *r, char *err, size_t errlen)
{
    bool docker = r->t.kind == ENGINE_TRANSPORT_DOCKER_ARCHIVE;
    char unpack[ENGINE_TRANSPORT_PATH_MAX + 16], lay[ENGINE_TRANSPORT_PATH_MAX + 16];
    int rc = oci_archive_tempdir(r->tmpdir, sizeof(r->tmpdir), err, errlen);
    if (rc != 0) {
        r->tmpdir[0] = '\0';
        return rc;
    }
    if (r->t.kind == ENGINE_TRANSPORT_DIR) {
        /* skopeo's directory format, read into a layout (blobs hard-linked). */
        snprintf(lay, sizeof(lay), "%s/layout", r->tmpdir);
        rc = oci_dir_to_layout(r->t.path, lay, "image", err, errlen);
        if (rc == UV_ENOENT || rc == OCISYNC_EMANIFEST)
            rc = OCISYNC_EUSAGE;
        if (rc == 0)
            engine_transport_layout(&r->t, lay, "image");
        return rc;
    }
    /* A docker archive is unpacked beside the layout made from it, never around it. */
    snprintf(unpack, sizeof(unpack), "%s%s", r->tmpdir, docker ? "/archive" : "");
    if (docker && mkdir(unpack, 0700) != 0) {
        rc = ocisync__sys_error();
        snprintf(err, errlen, "cannot create %s: %s", unpack, uv_strerror(rc));
        return rc;
    }
    rc = oci_archive_unpack(r->t.path, unpack, docker, err, errlen);
    if (rc == OCISYNC_ENOTFOUND)
        rc = OCISYNC_EUSAGE;
    if (rc == 0 && docker) {
        snprintf(lay, sizeof(lay), "%s/layout", r->tmpdir);
        rc = oci_docker_archive_to_layout(unpack, r->t.name, r->t.path, lay, "image", err, errlen);
        if (rc == OCISYNC_ENOTFOUND || rc == OCISYNC_EMANIFEST)
            rc = OCISYNC_EUSAGE;
        if (rc == 0)
            engine_transport_layout(&r->t, lay, "image");
    } else if (rc == 0) {
        char name[ENGINE_TRANSPORT_NAME_MAX];
        snprintf(name, sizeof(name), "%s", r->t.name);
        engine_transport_layout(&r->t, r->tmpdir, name);
    }
    return rc;
}

int engine_read_open(struct engine_read_src *r, const char *s, const struct ocisync_read_opts *o,
                     bool local, char *err, size_t errlen)
{
    int rc;
    memset(r, 0, sizeof(*r));
    r->layout.dirfd = -1;
    oci_ref_quote(s, r->shown, sizeof(r->shown));
    rc = engine_transport_parse(s, &r->t, err, errlen);
    if (rc != 0)
        return rc;
    if (o->copy.handle_signals) {
        engine_stop_enter();
        r->stop_entered = true;
    }
    if (is_local(r->t.kind)) {
        if (!local) {
            snprintf(err, errlen, "%s: expected a registry reference (docker://REF)", r->shown);
            return OCISYNC_EUSAGE;
        }
        if (r->t.kind != ENGINE_TRANSPORT_LAYOUT) {
            rc = open_archive(r, err, errlen);
            if (rc != 0)
                return rc;
        }
        rc = oci_layout_open(&r->layout, r->t.path, false, err, errlen);
        if (rc == UV_ENOENT || rc == UV_ENOTDIR) {
            snprintf(err, errlen, "%s: no OCI layout at %s", r->shown, r->t.path);
            rc = OCISYNC_EUSAGE;
        }
        r->layout_open = rc == 0;
        return rc;
    }
    rc = engine_session_init(&r->s, &o->copy);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start an event loop: %s", uv_strerror(rc));
        return rc;
    }
    r->session = true;
    if (o->copy.debug)
        ocisync_set_debug(1);
    rc = engine_endpoint_get(&r->s.endpoints, r->t.ref.registry, r->t.ref.repository, &o->copy.src,
                             false, &r->reg, err, errlen);
    if (rc != 0)
        return rc;
    snprintf(r->reg->scope, sizeof(r->reg->scope), "repository:%s:pull", r->t.ref.repository);
    return 0;
}

void engine_read_close(struct engine_read_src *r)
{
    if (r->reg != NULL) {
        proto_registry_dispose(r->reg);
        free(r->reg);
        r->reg = NULL;
    }
    if (r->session)
        engine_session_close(&r->s);
    r->session = false;
    if (r->layout_open)
        oci_layout_close(&r->layout);
    r->layout_open = false;
    if (r->tmpdir[0] != '\0')
        oci_archive_remove_dir(r->tmpdir);
    r->tmpdir[0] = '\0';
    if (r->stop_entered)
        engine_stop_leave();
    r->stop_entered = false;
}

void engine_read_doc_free(struct engine_read_doc *d)
{
    free(d->data);
    if (d->parsed)
        oci_manifest_free(&d->m);
    memset(d, 0, sizeof(*d));
}

/* An error of a read: interrupted when a signal stopped it. */
static int stopped(int err)
{
    if (err != 0 && engine_stop_requested())
        return OCISYNC_EINTERRUPTED;
    return err;
}

/* Parses d's bytes (the digest is already known and verified). */
static int parse_doc(struct engine_read_src *r, struct engine_read_doc *d, const char *what,
                     char *err, size_t errlen)
{
    char msg[512];
    int rc = oci_manifest_parse(d->media_type[0] ? d->media_type : NULL, d->data, d->len, &d->m,
                                msg, sizeof(msg));
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s: %s", r->shown, what, msg);
        return rc;
    }
    d->parsed = true;
    if (d->media_type[0] == '\0')
        snprintf(d->media_type, sizeof(d->media_type), "%s", d->m.media_type);
    return 0;
}

/* GET of a manifest by tag or digest from the registry: the digest of its bytes. */
static int get_manifest(struct engine_read_src *r, const char *ref, struct engine_read_doc *d,
                        char *err, size_t errlen)
{
    struct oci_digest want;
    bool by_digest = oci_digest_parse_str(ref, &want) == 0;
    int rc = engine_session_get(&r->s, r->reg, r->t.ref.repository, ref, false, &d->data, &d->len,
                                d->media_type, sizeof(d->media_type), err, errlen);
    if (rc != 0)
        return stopped(rc);
    rc = oci_digest_buffer(by_digest ? want.alg : OCI_DIGEST_SHA256, d->data, d->len, &d->digest);
    if (rc == 0 && by_digest && !oci_digest_equal(&want, &d->digest)) {
        /* proto checks this already; a second look costs nothing and guards the promise. */
        snprintf(err, errlen, "%s: the manifest served for %s hashes to %s", r->shown, ref,
                 d->digest.str);
        return OCISYNC_EDIGESTMISMATCH;
    }
    return rc;
}

int engine_read_top(struct engine_read_src *r, struct engine_read_doc *d, char *err, size_t errlen)
{
    int rc;
    memset(d, 0, sizeof(*d));
    if (!is_local(r->t.kind)) {
        rc = get_manifest(r, oci_ref_target(&r->t.ref), d, err, errlen);
    } else {
        struct oci_descriptor desc;
        rc = oci_layout_resolve(&r->layout, r->t.name, &desc, err, errlen);
        if (rc == 0)
            rc = oci_layout_blob_read(&r->layout, &desc.digest, OCI_MANIFEST_MAX_SIZE, &d->data,
                                      &d->len, err, errlen);
        if (rc == 0) {
            d->digest = desc.digest;
            snprintf(d->media_type, sizeof(d->media_type), "%s", desc.media_type);
        }
    }
    if (rc == 0)
        rc = parse_doc(r, d, d->digest.str, err, errlen);
    return rc;
}

int engine_read_child(struct engine_read_src *r, const struct oci_descriptor *desc,
                      struct engine_read_doc *d, char *err, size_t errlen)
{
    int rc;
    memset(d, 0, sizeof(*d));
    if (!is_local(r->t.kind)) {
        rc = get_manifest(r, desc->digest.str, d, err, errlen);
    } else {
        rc = oci_layout_blob_read(&r->layout, &desc->digest, OCI_MANIFEST_MAX_SIZE, &d->data,
                                  &d->len, err, errlen);
        if (rc == 0)
            d->digest = desc->digest;
    }
    if (rc == 0 && desc->size >= 0 && (uint64_t)desc->size != d->len) {
        snprintf(err, errlen, "%s: manifest %s is %zu bytes, the index says %lld", r->shown,
                 desc->digest.str, d->len, (long long)desc->size);
        rc = OCISYNC_ESIZEMISMATCH;
    }
    if (rc == 0) {
        snprintf(d->media_type, sizeof(d->media_type), "%s", desc->media_type);
        rc = parse_doc(r, d, desc->digest.str, err, errlen);
    }
    if (rc == 0 && d->m.kind != OCI_KIND_IMAGE) {
        snprintf(err, errlen, "%s: manifest %s of the index is not an image manifest", r->shown,
                 desc->digest.str);
        rc = OCISYNC_EMANIFEST;
    }
    return rc;
}

/* A small blob (a config), its size and digest verified. */
static int read_config(struct engine_read_src *r, const struct oci_descriptor *desc, char **data,
                       size_t *len, char *err, size_t errlen)
{
    struct oci_digest got;
    int rc;
    *data = NULL;
    if (desc->size > ENGINE_READ_CONFIG_MAX) {
        snprintf(err, errlen, "%s: config %s is %lld bytes, more than the %d a config may have",
                 r->shown, desc->digest.str, (long long)desc->size, ENGINE_READ_CONFIG_MAX);
        return OCISYNC_ETOOBIG;
    }
    if (is_local(r->t.kind))
        return oci_layout_blob_read(&r->layout, &desc->digest, ENGINE_READ_CONFIG_MAX, data, len,
                                    err, errlen);
    rc = engine_session_get(&r->s, r->reg, r->t.ref.repository, desc->digest.str, true, data, len,
                            NULL, 0, err, errlen);
    if (rc != 0)
        return stopped(rc);
    rc = oci_digest_buffer(desc->digest.alg, *data, *len, &got);
    if (rc == 0 && !oci_digest_equal(&got, &desc->digest)) {
        snprintf(err, errlen, "%s: config %s: the registry served content that hashes to %s",
                 r->shown, desc->digest.str, got.str);
        rc = OCISYNC_EDIGESTMISMATCH;
    }
    if (rc == 0 && desc->size >= 0 && (uint64_t)desc->size != *len) {
        snprintf(err, errlen, "%s: config %s is %zu bytes, the manifest says %lld", r->shown,
                 desc->digest.str, *len, (long long)desc->size);
        rc = OCISYNC_ESIZEMISMATCH;
    }
    if (rc != 0) {
        free(*data);
        *data = NULL;
    }
    return rc;
}

int engine_read_pick(const struct oci_manifest *index, const char *platform,
                     const struct oci_descriptor **out, char *err, size_t errlen)
{
    struct oci_platform want;
    char have[512] = "", one[100], wanted[100];
    size_t hl = 0;
    *out = NULL;
    if (platform != NULL) {
        const char *problem = oci_platform_problem(platform);
        if (problem != NULL || oci_platform_parse(platform, &want) != 0) {
            char q[400];
            oci_ref_quote(platform, q, sizeof(q));
            snprintf(err, errlen, "platform \"%s\" %s", q,
                     problem != NULL ? problem : "is not os/arch[/variant]");
            return OCISYNC_EPLATFORM;
        }
    } else {
        want = *oci_platform_host();
    }
    for (size_t i = 0; i < index->n_manifests; i++) {
        const struct oci_descriptor *d = &index->manifests[i];
        if (!d->has_platform)
            continue;
        if (oci_platform_match(&want, &d->platform)) {
            *out = d;
            return 0;
        }
        oci_platform_format(&d->platform, one, sizeof(one));
        if (hl < sizeof(have))
            hl += (size_t)snprintf(have + hl, sizeof(have) - hl, "%s%s", hl ? ", " : "", one);
    }
    oci_platform_format(&want, wanted, sizeof(wanted));
    snprintf(err, errlen, "the index has no image for %s%s (it has: %s)", wanted,
             platform == NULL ? " (this machine's platform; choose one with --platform)" : "",
             have[0] ? have : "no platforms");
    return OCISYNC_ENOPLATFORM;
}

/*
 * The image manifest ref names: itself, or for an index the entry for
 * platform (the host's when NULL). top keeps the top document; img is
 * the image's (a copy of nothing: when top is an image, img->data is
 * NULL and the caller uses top).
 */
static int resolve_image(struct engine_read_src *r, const char *platform,
                         struct engine_read_doc *top, struct engine_read_doc *img, char *err,
                         size_t errlen)
{
    const struct oci_descriptor *d;
    char msg[700];
    int rc = engine_read_top(r, top, err, errlen);
    memset(img, 0, sizeof(*img));
    if (rc != 0 || top->m.kind == OCI_KIND_IMAGE)
        return rc;
    rc = engine_read_pick(&top->m, platform, &d, msg, sizeof(msg));
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", r->shown, msg);
        return rc;
    }
    return engine_read_child(r, d, img, err, errlen);
}

static const struct engine_read_doc *image_of(const struct engine_read_doc *top,
                                              const struct engine_read_doc *img)
{
    return img->data != NULL ? img : top;
}

static void result_init(struct ocisync_read_result *res)
{
    memset(res, 0, sizeof(*res));
}

static void take_doc(struct ocisync_read_result *res, struct engine_read_doc *d)
{
    snprintf(res->digest, sizeof(res->digest), "%s", d->digest.str);
    snprintf(res->media_type, sizeof(res->media_type), "%s", d->media_type);
    res->data = d->data;
    res->len = d->len;
    d->data = NULL;
}

int ocisync_manifest(const char *ref, const struct ocisync_read_opts *opts,
                     struct ocisync_read_result *res)
{
    struct engine_read_src r;
    struct engine_read_doc top = {0}, img = {0};
    int rc;
    result_init(res);
    rc = engine_read_open(&r, ref, opts, true, res->error, sizeof(res->error));
    if (rc == 0 && opts->platform == NULL)
        rc = engine_read_top(&r, &top, res->error, sizeof(res->error));
    else if (rc == 0)
        rc = resolve_image(&r, opts->platform, &top, &img, res->error, sizeof(res->error));
    if (rc == 0)
        take_doc(res, img.data != NULL ? &img : &top);
    engine_read_doc_free(&top);
    engine_read_doc_free(&img);
    engine_read_close(&r);
    return rc;
}

struct op_wait {
    bool done;
    int err;
};

static void on_op_done(struct proto_reg_op *op, int err)
{
    struct op_wait *w = op->data;
    w->done = true;
    w->err = err;
}

/* Runs op (prepared, with nothing in data) on the session's loop to its end. */
static int run_op(struct engine_read_src *r, struct proto_reg_op *op)
{
    struct op_wait w = {false, 0};
    int rc;
    op->data = &w;
    rc = proto_reg_op_start(op, on_op_done);
    if (rc != 0)
        return rc;
    while (!w.done)
        uv_run(&r->s.uv, UV_RUN_ONCE);
    return w.err;
}

/* The digest a HEAD answers (Docker-Content-Digest); *have false when the registry sent none. */
static int head_digest(struct engine_read_src *r, struct oci_digest *out, bool *have, char *err,
                       size_t errlen)
{
    struct proto_reg_op op;
    const char *ref = oci_ref_target(&r->t.ref);
    int rc = proto_reg_manifest_get(&op, r->reg, r->t.ref.repository, ref, true);
    *have = false;
    if (rc == 0)
        rc = run_op(r, &op);
    if (rc != 0) {
        snprintf(err, errlen, "%s", op.errmsg[0] ? op.errmsg : ocisync_strerror(rc));
    } else {
        const char *h = proto_reg_header(&op, "Docker-Content-Digest");
        if (h != NULL && oci_digest_parse_str(h, out) == 0) {
            *have = true;
        } else if (h != NULL) {
            char q[400];
            oci_ref_quote(h, q, sizeof(q));
            snprintf(err, errlen, "%s: the registry answered HEAD with an invalid digest \"%s\"",
                     r->shown, q);
            rc = OCISYNC_EREGISTRY;
        }
    }
    engine_endpoint_learn(&r->s.endpoints, r->reg);
    proto_reg_op_dispose(&op);
    return stopped(rc);
}

int ocisync_digest(const char *ref, const struct ocisync_read_opts *opts,
                   struct ocisync_read_result *res)
{
    struct engine_read_src r;
    struct engine_read_doc top = {0}, img = {0};
    struct oci_digest d;
    bool have = false;
    int rc;
    result_init(res);
    rc = engine_read_open(&r, ref, opts, true, res->error, sizeof(res->error));
    if (rc == 0 && opts->platform == NULL && !is_local(r.t.kind)) {
        rc = head_digest(&r, &d, &have, res->error, sizeof(res->error));
        /* By digest the answer must be that digest: a registry cannot redirect it. */
        if (rc == 0 && have && r.t.ref.has_digest && !oci_digest_equal(&d, &r.t.ref.digest)) {
            snprintf(res->error, sizeof(res->error), "%s: the registry answered with digest %s",
                     r.shown, d.str);
            rc = OCISYNC_EDIGESTMISMATCH;
        }
        if (rc == 0 && !have && r.t.ref.has_digest) {
            d = r.t.ref.digest;
            have = true;
        }
        if (rc == 0 && have)
            snprintf(res->digest, sizeof(res->digest), "%s", d.str);
    }
    /* A platform, a layout, or a registry that sent no digest: the documents, hashed. */
    if (rc == 0 && !have) {
        if (opts->platform == NULL)
            rc = engine_read_top(&r, &top, res->error, sizeof(res->error));
        else
            rc = resolve_image(&r, opts->platform, &top, &img, res->error, sizeof(res->error));
        if (rc == 0) {
            const struct engine_read_doc *e = image_of(&top, &img);
            snprintf(res->digest, sizeof(res->digest), "%s", e->digest.str);
            snprintf(res->media_type, sizeof(res->media_type), "%s", e->media_type);
        }
    }
    engine_read_doc_free(&top);
    engine_read_doc_free(&img);
    engine_read_close(&r);
    return rc;
}

int ocisync_config(const char *ref, const struct ocisync_read_opts *opts,
                   struct ocisync_read_result *res)
{
    struct engine_read_src r;
    struct engine_read_doc top = {0}, img = {0};
    int rc;
    result_init(res);
    rc = engine_read_open(&r, ref, opts, true, res->error, sizeof(res->error));
    if (rc == 0)
        rc = resolve_image(&r, opts->platform, &top, &img, res->error, sizeof(res->error));
    if (rc == 0) {
        const struct oci_descriptor *c = &image_of(&top, &img)->m.config;
        rc = read_config(&r, c, &res->data, &res->len, res->error, sizeof(res->error));
        if (rc == 0) {
            snprintf(res->digest, sizeof(res->digest), "%s", c->digest.str);
            snprintf(res->media_type, sizeof(res->media_type), "%s", c->media_type);
        }
    }
    engine_read_doc_free(&top);
    engine_read_doc_free(&img);
    engine_read_close(&r);
    return rc;
}

static int inspect(const char *ref, const struct ocisync_read_opts *opts,
                   struct ocisync_read_result *res, bool config_only)
{
    struct engine_read_src r;
    struct engine_read_doc top = {0}, img = {0};
    char *config = NULL, **tags = NULL, name[600] = "";
    size_t config_len = 0, n_tags = 0;
    int rc;
    result_init(res);
    rc = engine_read_open(&r, ref, opts, true, res->error, sizeof(res->error));
    if (rc == 0)
        rc = resolve_image(&r, opts->platform, &top, &img, res->error, sizeof(res->error));
    if (rc == 0)
        rc = read_config(&r, &image_of(&top, &img)->m.config, &config, &config_len, res->error,
                         sizeof(res->error));
    if (rc == 0 && config_only) {
        rc = engine_inspect_config_json(config, config_len, &res->data, &res->len, res->error,
                                        sizeof(res->error));
        goto out;
    }
    /* skopeo lists the repository's tags for a registry image only. */
    if (rc == 0 && !is_local(r.t.kind)) {
        snprintf(name, sizeof(name), "%s/%s", r.t.ref.registry, r.t.ref.repository);
        if (!opts->no_tags)
            rc = engine__list(&r.s, r.reg, r.t.ref.repository, &tags, &n_tags, res->error,
                              sizeof(res->error));
    }
    if (rc == 0) {
        const struct engine_read_doc *e = image_of(&top, &img);
        rc = engine_inspect_json(name, top.digest.str, (const char *const *)tags, n_tags, e->data,
                                 e->len, config, config_len,
                                 top.m.kind == OCI_KIND_INDEX ? &top.m : NULL, &res->data,
                                 &res->len, res->error, sizeof(res->error));
    }
out:
    if (rc == 0) {
        snprintf(res->digest, sizeof(res->digest), "%s", top.digest.str);
        snprintf(res->media_type, sizeof(res->media_type), "%s", top.media_type);
    }
    for (size_t i = 0; i < n_tags; i++)
        free(tags[i]);
    free(tags);
    free(config);
    engine_read_doc_free(&top);
    engine_read_doc_free(&img);
    engine_read_close(&r);
    return stopped(rc);
}

int ocisync_inspect(const char *ref, const struct ocisync_read_opts *opts,
                    struct ocisync_read_result *res)
{
    return inspect(ref, opts, res, false);
}

int ocisync_inspect_config(const char *ref, const struct ocisync_read_opts *opts,
                           struct ocisync_read_result *res)
{
    return inspect(ref, opts, res, true);
}

/* ---------------------------------------------------------------------------------------------
 * Blobs: one download, streamed to the caller's writer and hashed on the way.
 *
 * HEAD first (the size, which a resumed GET must name in its Range), then
 * GET; a GET cut after some bytes continues with Range from the bytes
 * passed on (BACKOFF -> FETCHING), as copy's blob source does. The writer
 * sees each byte once, in order.
 */

enum blob_state {
    BLOB_SIZING = 1, /* HEAD */
    BLOB_FETCHING,   /* GET, from offset */
    BLOB_BACKOFF,    /* waiting to resume with Range */
    BLOB_DONE,
};

struct blob_read {
    struct engine_read_src *r;
    enum blob_state state;
    struct proto_reg_op op;
    struct oci_hasher hasher;
    ocisync_write_cb write;
    void *arg;
    uint64_t size, passed;
    unsigned resumes;
    int write_err;
};

static void set_state(struct blob_read *b, enum blob_state s)
{
    LOG_DEBUG("blob %s: state %d -> %d at byte %llu", b->r->t.ref.digest.str, b->state, s,
              (unsigned long long)b->passed);
    b->state = s;
}

static int on_blob_body(struct proto_reg_op *op, const char *data, size_t len)
{
    struct blob_read *b = container_of(op, struct blob_read, op);
    int rc;
    if (b->passed + len > b->size)
        return OCISYNC_ESIZEMISMATCH;
    oci_hasher_update(&b->hasher, data, len);
    b->passed += len;
    rc = b->write(data, len, b->arg);
    if (rc != 0)
        b->write_err = rc;
    return rc;
}

static int blob_fetch(struct blob_read *b, char *err, size_t errlen)
{
    struct engine_read_src *r = b->r;
    int rc;
    set_state(b, BLOB_FETCHING);
    rc = proto_reg_blob_fetch(&b->op, r->reg, r->t.ref.repository, r->t.ref.digest.str, b->passed,
                              b->size, on_blob_body);
    if (rc == 0)
        rc = run_op(r, &b->op);
    if (rc != 0)
        snprintf(err, errlen, "%s", b->op.errmsg[0] ? b->op.errmsg : ocisync_strerror(rc));
    return rc;
}

static void on_backoff(struct loop_delay *d)
{
    (void)d;
}

static int blob_run(struct blob_read *b, char *err, size_t errlen)
{
    struct engine_read_src *r = b->r;
    const struct proto_retry *policy = &r->reg->retry;
    const char *cl;
    char *end;
    int rc;

    set_state(b, BLOB_SIZING);
    rc = proto_reg_blob_head(&b->op, r->reg, r->t.ref.repository, r->t.ref.digest.str);
    if (rc == 0)
        rc = run_op(r, &b->op);
    if (rc != 0) {
        snprintf(err, errlen, "%s", b->op.errmsg[0] ? b->op.errmsg : ocisync_strerror(rc));
        proto_reg_op_dispose(&b->op);
        return rc;
    }
    cl = proto_reg_header(&b->op, "Content-Length");
    errno = 0;
    b->size = cl != NULL && *cl >= '0' && *cl <= '9' ? strtoull(cl, &end, 10) : 0;
    if (cl == NULL || *cl < '0' || *cl > '9' || *end != '\0' || errno != 0) {
        snprintf(err, errlen, "%s: the registry's answer to HEAD has no usable Content-Length",
                 r->shown);
        proto_reg_op_dispose(&b->op);
        return OCISYNC_EREGISTRY;
    }
    engine_endpoint_learn(&r->s.endpoints, r->reg);
    proto_reg_op_dispose(&b->op);

    for (;;) {
        bool transient;
        rc = blob_fetch(b, err, errlen);
        transient = rc != 0 && b->write_err == 0 && proto_reg_op_transient(&b->op, rc);
        proto_reg_op_dispose(&b->op);
        if (rc == 0 || !transient || b->passed == 0 || b->passed >= b->size ||
            b->resumes >= policy->max_retries)
            break;
        /* Cut after some bytes (those already passed on stay so): ask for the rest. */
        {
            struct loop_delay delay;
            uint64_t ms = proto_reg_backoff_ms(policy, b->resumes++, NULL);
            LOG_DEBUG("blob %s: cut at byte %llu (%s); resuming with Range in %llu ms",
                      r->t.ref.digest.str, (unsigned long long)b->passed, err,
                      (unsigned long long)ms);
            set_state(b, BLOB_BACKOFF);
            memset(&delay, 0, sizeof(delay));
            loop_delay_start(&r->s.loop, &delay, ms, on_backoff);
            while (delay.armed)
                uv_run(&r->s.uv, UV_RUN_ONCE);
            if (engine_stop_requested())
                return OCISYNC_EINTERRUPTED;
        }
    }
    set_state(b, BLOB_DONE);
    if (rc != 0)
        return b->write_err != 0 ? b->write_err : stopped(rc);
    if (b->passed != b->size) {
        snprintf(err, errlen, "%s: the registry sent %llu bytes of a %llu-byte blob", r->shown,
                 (unsigned long long)b->passed, (unsigned long long)b->size);
        return OCISYNC_ESIZEMISMATCH;
    }
    return 0;
}

int ocisync_blob(const char *ref, const struct ocisync_read_opts *opts, ocisync_write_cb write,
                 void *arg, struct ocisync_read_result *res)
{
    struct engine_read_src r;
    struct blob_read b;
    struct oci_digest got;
    int rc, hrc;
    result_init(res);
    memset(&b, 0, sizeof(b));
    rc = engine_read_open(&r, ref, opts, false, res->error, sizeof(res->error));
    if (rc == 0 && (!r.t.ref.has_digest || r.t.ref.tag[0] != '\0')) {
        snprintf(res->error, sizeof(res->error), "%s: expected REPOSITORY@DIGEST", r.shown);
        rc = OCISYNC_EUSAGE;
    }
    if (rc != 0) {
        engine_read_close(&r);
        return rc;
    }
    snprintf(res->digest, sizeof(res->digest), "%s", r.t.ref.digest.str);
    b.r = &r;
    b.write = write;
    b.arg = arg;
    rc = oci_hasher_init(&b.hasher, r.t.ref.digest.alg);
    if (rc == 0)
        rc = blob_run(&b, res->error, sizeof(res->error));
    hrc = oci_hasher_final(&b.hasher, &got);
    if (rc == 0 && hrc != 0)
        rc = hrc;
    if (rc == 0 && !oci_digest_equal(&got, &r.t.ref.digest)) {
        snprintf(res->error, sizeof(res->error),
                 "%s: the %llu bytes written hash to %s, not to the digest asked for: discard them",
                 r.shown, (unsigned long long)b.passed, got.str);
        rc = OCISYNC_EDIGESTMISMATCH;
    } else if (rc == OCISYNC_ESIZEMISMATCH && b.write_err == 0 && res->error[0] == '\0') {
        snprintf(res->error, sizeof(res->error),
                 "%s: the registry sent more than the blob's %llu bytes: discard what was written",
                 r.shown, (unsigned long long)b.size);
    }
    if (rc != 0 && b.write_err != 0 && rc == b.write_err)
        snprintf(res->error, sizeof(res->error), "%s: writing the blob failed after %llu bytes: %s",
                 r.shown, (unsigned long long)b.passed, ocisync_strerror(rc));
    res->bytes = b.passed;
    oci_hasher_dispose(&b.hasher);
    engine_read_close(&r);
    return rc;
}

void ocisync_host_platform(char *buf, size_t len)
{
    oci_platform_format(oci_platform_host(), buf, len);
}
