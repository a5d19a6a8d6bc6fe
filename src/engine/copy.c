/*
 * The copy engine: images (each a manifest, or an index and the manifests it
 * lists) from registry repositories to others, many at once on one loop.
 *
 * Order of work for each image, so the destination never names what it does
 * not hold:
 *   1. resolve the source: the top manifest, then each selected child;
 *   2. ask the destination what it already has: the tag (a re-run stops
 *      here), then each child manifest (a child already there needs no blobs);
 *   3. move the blobs the remaining children need, each unique blob once,
 *      largest first, `jobs` at a time: mounted when both sides are the same
 *      registry, skipped when present, otherwise relayed from the source GET
 *      straight into the destination upload; a blob another image of the run
 *      is sending to the same destination registry waits for it, then is
 *      mounted from there, so it travels once;
 *   4. push each child manifest once its blobs are confirmed, then the index
 *      (or the single manifest) under the tag, last.
 */
#include "engine/copy_internal.h"

#include "common/log.h"
#include "common/sysio.h"
#include "oci/archive.h"
#include "oci/dir.h"
#include "oci/docker_archive.h"
#include "oci/imgconfig.h"
#include "engine/endpoint.h"
#include "oci/layout.h"
#include "engine/referrers.h"
#include "engine/relay.h"

#include <errno.h>
#include <jansson.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define fail engine__job_fail
#define job_settle engine__job_settle
#define pump engine__pump
#define emit engine__emit
static void adapt_limit(struct copy_job *job);
static void check_run_done(struct copy_ctx *ctx);
static void job_release(struct copy_job *job);
static void reap_now(struct loop_delay *d);
static void push_top(struct copy_job *job);
static void push_child(struct copy_child *c);
static void check_dest(struct copy_job *job);
static void tag_checked(struct copy_job *job, bool present);
static void children_checked(struct copy_job *job);
static void heads_done(struct copy_job *job);
static void start_blobs(struct copy_job *job);

static const char *const job_state_names[] = {
    [JOB_WAITING] = "waiting",
    [JOB_LOOKING] = "looking",
    [JOB_FETCHING] = "fetching",
    [JOB_CHECKING_TAG] = "checking the tag",
    [JOB_CHECKING_CHILDREN] = "checking the children",
    [JOB_MOVING] = "moving blobs",
    [JOB_PUSHING] = "pushing",
    [JOB_ENDING] = "ending",
    [JOB_DONE] = "done",
};

static void set_job_state(struct copy_job *job, enum job_state s)
{
    LOG_DEBUG("image %zu: %s -> %s", job->index, job_state_names[job->state], job_state_names[s]);
    job->state = s;
}

/*
 * The requests of the current phase have all come back (pending_ops is 0):
 * on to the next phase. Every callback of a phase's requests ends here.
 */
static void phase_done(struct copy_job *job)
{
    if (job->err != 0 || job->pending_ops > 0)
        return;
    switch (job->state) {
    case JOB_LOOKING:
        heads_done(job);
        return;
    case JOB_FETCHING:
        check_dest(job);
        return;
    case JOB_CHECKING_CHILDREN:
        children_checked(job);
        return;
    default:
        return;
    }
}

/* The destination holds the image already: nothing more to do. */
static void found_there(struct copy_job *job)
{
    engine__emit(job, OCISYNC_EV_MANIFEST_SKIPPED, job->push_digest.str,
                 job->top_media_type[0] ? job->top_media_type : NULL, NULL,
                 job->push_len > 0 ? (int64_t)job->push_len : -1);
    set_job_state(job, JOB_ENDING);
}

/*
 * c's manifest is pushed, present, or no longer wanted: its bytes leave the
 * store and its reservation (or its place in the store's queue) goes.
 */
static void child_release(struct copy_child *c)
{
    struct engine_mstore *ms = &c->job->ctx->mstore;
    if (c->stored) {
        engine_mstore_drop(ms, &c->mref);
        c->stored = false;
        c->raw = NULL;
        c->raw_len = 0;
    }
    if (c->mw.waiting || c->mw.holds)
        engine_mstore_release(ms, &c->mw);
    if (c->own != NULL) {
        if (c->raw == c->own) {
            c->raw = NULL;
            c->raw_len = 0;
        }
        free(c->own);
        c->own = NULL;
    }
}

void engine__job_fail(struct copy_job *job, int err, const char *fmt, ...)
{
    va_list ap;
    if (job->err != 0)
        return;
    job->err = err;
    va_start(ap, fmt);
    vsnprintf(job->res->error, sizeof(job->res->error), fmt, ap);
    va_end(ap);
    LOG_DEBUG("copy of image %zu failed: %s", job->index, job->res->error);
    if (job->state < JOB_ENDING)
        set_job_state(job, JOB_ENDING);
    /* Stop what is in flight: nothing more will be pushed. */
    if (job->queued) {
        queue_remove(&job->queue_link);
        job->queued = false;
    }
    for (size_t i = 0; i < job->n_blobs; i++)
        engine__blob_abort(&job->blobs[i]);
    /*
     * Manifests waiting for another image's push of the same one, or for
     * their turn in the manifest store, wait no more; what is not in flight
     * gives its memory back now.
     */
    for (size_t i = 0; i < job->n_children; i++) {
        struct copy_child *c = &job->children[i];
        if (c->w.waiting) {
            queue_remove(&c->w.link);
            c->w.waiting = false;
            job->pending_ops--;
        }
        if (c->mw.waiting)
            job->pending_ops--;
        if (!c->fetching && !c->putting)
            child_release(c);
    }
    if (job->top_w.waiting) {
        queue_remove(&job->top_w.link);
        job->top_w.waiting = false;
        job->pending_ops--;
    }
    /* Probes end too. */
    for (size_t i = 0; i < job->n_blobs; i++)
        if (job->blobs[i].probe != NULL)
            proto_reg_op_abort(job->blobs[i].probe, UV_ECANCELED);
}

/* An event of the image; source_digest names what digest was made from, when it is new. */
static void emit_from(struct copy_job *job, ocisync_event_kind kind, const char *digest,
                      const char *source_digest, const char *media_type, const char *platform,
                      int64_t size)
{
    struct ocisync_event ev;
    if (job->opts->on_event == NULL)
        return;
    memset(&ev, 0, sizeof(ev));
    ev.kind = kind;
    ev.image = job->index;
    ev.digest = digest;
    ev.source_digest = source_digest;
    ev.media_type = media_type;
    ev.platform = platform;
    ev.size = size;
    job->opts->on_event(&ev, job->opts->event_arg);
}

void engine__emit(struct copy_job *job, ocisync_event_kind kind, const char *digest,
                  const char *media_type, const char *platform, int64_t size)
{
    emit_from(job, kind, digest, NULL, media_type, platform, size);
}

/*
 * Starts op, prepared with err from its constructor, for data: one more
 * request of the job's phase. On failure the job fails with op's message
 * and op is disposed of; returns err.
 */
static int job_op_start(struct copy_job *job, struct proto_reg_op *op, int err, void *data,
                        proto_reg_cb cb)
{
    op->data = data;
    if (err == 0)
        err = proto_reg_op_start(op, cb);
    if (err != 0) {
        fail(job, err, "%s", op->errmsg);
        proto_reg_op_dispose(op);
        return err;
    }
    job->pending_ops++;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Docker media types into an OCI layout */

/* A manifest or index written with other media types: from is now to. */
static void emit_converted(struct copy_job *job, const struct oci_digest *from,
                           const struct oci_digest *to, const char *media_type,
                           const char *platform, int64_t size)
{
    emit_from(job, OCISYNC_EV_MANIFEST_CONVERTED, to->str, from->str, media_type, platform, size);
}

/* The media type a document of kind (image or index) takes when converted. */
static const char *converted_type(const struct copy_job *job, enum oci_manifest_kind kind)
{
    if (job->convert == CONVERT_DOCKER)
        return kind == OCI_KIND_INDEX ? OCI_MT_DOCKER_LIST : OCI_MT_DOCKER_MANIFEST;
    return kind == OCI_KIND_INDEX ? OCI_MT_OCI_INDEX : OCI_MT_OCI_MANIFEST;
}

/*
 * Whether a document of media type mt (digest) must change media types on its
 * way to the destination: into an oci: layout (skopeo, podman and umoci find
 * no image in a layout whose index names a Docker manifest), or as --format
 * asks. A refusal under preserve_digests fails the job (false, job->err set).
 */
static bool must_convert(struct copy_job *job, const char *mt, const char *digest)
{
    bool docker = oci_media_type_is_docker(mt);
    const char *what =
        oci_media_type_is_index(mt) ? (docker ? "manifest list" : "index") : "manifest";
    if (job->convert == CONVERT_NONE || docker == (job->convert == CONVERT_DOCKER))
        return false;
    if (job->opts->preserve_digests && job->opts->format == OCISYNC_FORMAT_KEEP) {
        fail(job, OCISYNC_EUSAGE,
             "%s: %s is a Docker-format %s; an OCI layout holds it only with OCI media types, "
             "which changes its digest, and --preserve-digests forbids that (copy it to "
             "docker-archive: or dir:, or leave out --preserve-digests)",
             job->item->src, digest, what);
        return false;
    }
    if (job->opts->preserve_digests) {
        fail(job, OCISYNC_EUSAGE,
             "%s: %s is an %s %s; --format %s writes it with other media types, which changes "
             "its digest, and --preserve-digests forbids that",
             job->item->src, digest, docker ? "Docker-format" : "OCI", what,
             job->convert == CONVERT_DOCKER ? "v2s2" : "oci");
        return false;
    }
    return true;
}

/* The bytes (raw, len) in the job's target format: *out (owned by the caller) and its digest. */
static int to_format(struct copy_job *job, const char *raw, size_t len,
                     const struct oci_converted *map, size_t n, const struct oci_digest *from,
                     char **out, size_t *out_len, struct oci_digest *d)
{
    char msg[512] = "";
    int err;
    if (job->convert == CONVERT_DOCKER)
        err = oci_manifest_to_docker(
            raw, len, map, n, job->opts->recompress && job->opts->compression == OCISYNC_GZIP, out,
            out_len, msg, sizeof(msg));
    else
        err = oci_manifest_to_oci(raw, len, map, n, out, out_len);
    if (err == 0)
        err = oci_digest_buffer(OCI_DIGEST_SHA256, *out, *out_len, d);
    if (err != 0) {
        if (job->convert == CONVERT_DOCKER)
            fail(job, err, "%s: cannot write %s as Docker schema 2 (--format v2s2): %s",
                 job->item->src, from->str, msg[0] ? msg : ocisync_strerror(err));
        else
            fail(job, err, "%s: cannot give %s OCI media types: %s", job->item->src, from->str,
                 ocisync_strerror(err));
        free(*out);
        *out = NULL;
    }
    return err;
}

/*
 * The top level for an OCI layout: a lone Docker manifest converted, or an
 * index that is a Docker list or names converted children rewritten to name
 * the new bytes. Runs once every child is received, before the destination
 * is asked, so a layout already holding the converted image is up to date.
 */
static int convert_top(struct copy_job *job)
{
    struct oci_converted *map = NULL;
    struct oci_digest old = job->push_digest, nd;
    char *out = NULL;
    size_t out_len = 0, n = 0;
    bool any = false;
    int err;

    for (size_t i = 0; i < job->n_children && job->top.kind == OCI_KIND_INDEX; i++)
        any |= job->children[i].converted;
    if (!any && !must_convert(job, job->top_media_type, job->push_digest.str))
        return job->err;
    if (any) {
        map = calloc(job->n_children, sizeof(*map));
        if (map == NULL) {
            fail(job, UV_ENOMEM, "out of memory");
            return UV_ENOMEM;
        }
        for (size_t i = 0; i < job->n_children; i++) {
            const struct copy_child *c = &job->children[i];
            if (!c->converted)
                continue;
            map[n].from = c->src_digest;
            map[n].to = c->desc.digest;
            map[n++].size = c->desc.size;
        }
    }
    err = to_format(job, job->push_raw, job->push_len, map, n, &old, &out, &out_len, &nd);
    free(map);
    if (err != 0)
        return err;
    if (job->push_raw != job->top_raw)
        free(job->push_raw);
    job->push_raw = out;
    job->push_len = out_len;
    job->push_digest = nd;
    snprintf(job->top_media_type, sizeof(job->top_media_type), "%s",
             converted_type(job, job->top.kind));
    if (job->top.kind != OCI_KIND_INDEX) {
        /* The lone manifest is the top level: its child stands for the new bytes. */
        struct copy_child *c = &job->children[0];
        c->src_digest = c->desc.digest;
        c->desc.digest = nd;
        c->desc.size = (int64_t)out_len;
        snprintf(c->desc.media_type, sizeof(c->desc.media_type), "%s",
                 converted_type(job, OCI_KIND_IMAGE));
        snprintf(c->media_type, sizeof(c->media_type), "%s", converted_type(job, OCI_KIND_IMAGE));
        c->raw = out;
        c->raw_len = out_len;
        c->converted = true;
    }
    emit_converted(job, &old, &nd, job->top_media_type, NULL, (int64_t)out_len);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Recompressed layers renamed in the manifests that list them */

/* A manifest or index's new bytes out (taken) as the job's: digest, and the event. */
static int relinked_digest(struct copy_job *job, const char *what, const struct oci_digest *old,
                           int err, const char *out, size_t out_len, struct oci_digest *nd)
{
    if (err == 0)
        err = oci_digest_buffer(OCI_DIGEST_SHA256, out, out_len, nd);
    if (err != 0)
        fail(job, err, "%s: cannot name the recompressed layers in %s %s: %s", job->item->src, what,
             old->str, ocisync_strerror(err));
    return err;
}

const char *engine__recompressed_type(const struct ocisync_copy_opts *opts, bool docker)
{
    if (opts->compression == OCISYNC_ZSTD)
        return OCI_MT_OCI_LAYER_ZSTD;
    return docker ? OCI_MT_DOCKER_LAYER_GZIP : OCI_MT_OCI_LAYER_GZIP;
}

/*
 * c's manifest names its recompressed layers, once they are all made (at its
 * push): new bytes, a new digest. A Docker manifest given zstd layers becomes
 * an OCI one, as skopeo converts it: schema 2 has no zstd.
 */
static int relink_child(struct copy_child *c)
{
    struct copy_job *job = c->job;
    bool docker = oci_media_type_is_docker(c->media_type);
    bool zstd = job->opts->compression == OCISYNC_ZSTD;
    const char *mt = docker && !zstd ? OCI_MT_DOCKER_MANIFEST : OCI_MT_OCI_MANIFEST;
    struct oci_digest old = c->desc.digest, nd;
    struct oci_relink *map;
    char *out = NULL;
    size_t out_len = 0, n = 0;
    int err = 0;

    if (!job->opts->recompress || job->item->blobs_only || c->relinked)
        return 0;
    map = calloc(job->n_blobs ? job->n_blobs : 1, sizeof(*map));
    if (map == NULL) {
        fail(job, UV_ENOMEM, "out of memory");
        return UV_ENOMEM;
    }
    for (size_t i = 0; i < job->n_blobs; i++) {
        const struct copy_blob *b = &job->blobs[i];
        for (size_t k = 0; b->recompressed && k < b->n_children; k++) {
            if (b->children[k] != c)
                continue;
            map[n].from = b->src_digest;
            map[n].to = b->desc.digest;
            map[n].size = b->desc.size;
            snprintf(map[n++].media_type, sizeof(map->media_type), "%s",
                     engine__recompressed_type(job->opts, docker));
            break;
        }
    }
    if (n == 0)
        goto out;
    err = oci_manifest_relink(c->raw, c->raw_len, map, n, &out, &out_len);
    if (err == 0 && docker && zstd) {
        char *oci = NULL;
        size_t oci_len = 0;
        err = oci_manifest_to_oci(out, out_len, NULL, 0, &oci, &oci_len);
        free(out);
        out = oci;
        out_len = oci_len;
    }
    err = relinked_digest(job, "manifest", &old, err, out, out_len, &nd);
    if (err != 0)
        goto out;
    c->relinked = true;
    c->pre_relink = old;
    c->desc.digest = nd;
    c->desc.size = (int64_t)out_len;
    snprintf(c->desc.media_type, sizeof(c->desc.media_type), "%s", mt);
    snprintf(c->media_type, sizeof(c->media_type), "%s", mt);
    c->raw = out;
    c->raw_len = out_len;
    if (job->top.kind == OCI_KIND_INDEX) {
        c->own = out;
    } else {
        /* The lone manifest is the top level. */
        if (job->push_raw != job->top_raw)
            free(job->push_raw);
        job->push_raw = out;
        job->push_len = out_len;
        job->push_digest = nd;
        snprintf(job->top_media_type, sizeof(job->top_media_type), "%s", mt);
    }
    out = NULL;
    emit_converted(job, &old, &nd, mt, c->platform[0] ? c->platform : NULL, c->desc.size);
out:
    free(map);
    free(out);
    return err;
}

/*
 * The index names its children's new digests (relink_child). A Docker list
 * whose children became OCI manifests becomes an OCI index.
 */
static int relink_top(struct copy_job *job)
{
    struct oci_relink *map;
    struct oci_converted *conv;
    struct oci_digest old = job->push_digest, nd;
    bool to_oci = false;
    char *out = NULL;
    size_t out_len = 0, n = 0;
    int err;

    if (job->top.kind != OCI_KIND_INDEX || job->top_relinked)
        return 0;
    job->top_relinked = true;
    map = calloc(job->n_children ? job->n_children : 1, sizeof(*map));
    conv = calloc(job->n_children ? job->n_children : 1, sizeof(*conv));
    if (map == NULL || conv == NULL) {
        free(map);
        free(conv);
        fail(job, UV_ENOMEM, "out of memory");
        return UV_ENOMEM;
    }
    for (size_t i = 0; i < job->n_children; i++) {
        const struct copy_child *c = &job->children[i];
        if (!c->relinked)
            continue;
        to_oci |= !oci_media_type_is_docker(c->media_type);
        conv[n].from = map[n].from = c->pre_relink;
        conv[n].to = map[n].to = c->desc.digest;
        conv[n].size = map[n].size = c->desc.size;
        n++;
    }
    to_oci = to_oci && oci_media_type_is_docker(job->top_media_type);
    err = 0;
    if (n > 0) {
        if (to_oci)
            err = oci_manifest_to_oci(job->push_raw, job->push_len, conv, n, &out, &out_len);
        else
            err = oci_manifest_relink(job->push_raw, job->push_len, map, n, &out, &out_len);
        err = relinked_digest(job, "index", &old, err, out, out_len, &nd);
    }
    free(map);
    free(conv);
    if (err != 0 || n == 0) {
        free(out);
        return err;
    }
    if (job->push_raw != job->top_raw)
        free(job->push_raw);
    job->push_raw = out;
    job->push_len = out_len;
    job->push_digest = nd;
    if (to_oci)
        snprintf(job->top_media_type, sizeof(job->top_media_type), "%s", OCI_MT_OCI_INDEX);
    emit_converted(job, &old, &nd, job->top_media_type, NULL, (int64_t)out_len);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The source (step 1) */

/* Copies the response's media type: the document's own, else Content-Type. */
static void doc_media_type(const char *ct, const struct oci_manifest *m, char *out, size_t len)
{
    if (m->media_type[0])
        snprintf(out, len, "%s", m->media_type);
    else if (ct != NULL)
        snprintf(out, len, "%.*s", (int)strcspn(ct, "; "), ct);
    else
        snprintf(out, len, "%s", OCI_MT_OCI_MANIFEST);
}

/* Whether m names digest as its subject. */
static bool subject_is(const struct oci_manifest *m, const char *digest)
{
    return m->has_subject && strcmp(m->subject.digest.str, digest) == 0;
}

/* A child manifest's bytes arrived (raw is taken over): verified, parsed and kept. */
static void child_received(struct copy_child *c, char *raw, size_t len, const char *content_type)
{
    struct copy_job *job = c->job;
    char msg[512];
    int err;
    {
        struct oci_digest got;
        err = oci_digest_buffer(c->desc.digest.alg, raw, len, &got);
        if (err != 0 || !oci_digest_equal(&got, &c->desc.digest) || (int64_t)len != c->desc.size) {
            fail(job, OCISYNC_EDIGESTMISMATCH,
                 "manifest %s in %s/%s does not match the digest or size its index gives",
                 c->desc.digest.str, job->src.registry, job->src.repository);
            goto out;
        }
    }
    err = oci_manifest_parse(content_type, raw, len, &c->m, msg, sizeof(msg));
    if (err != 0) {
        fail(job, err, "manifest %s in %s/%s: %s", c->desc.digest.str, job->src.registry,
             job->src.repository, msg);
        goto out;
    }
    c->parsed = true;
    if (job->child_subjects && !subject_is(&c->m, job->item->subject)) {
        fail(job, OCISYNC_EMANIFEST,
             "manifest %s in %s/%s is listed as a referrer of %s, but its subject is %s",
             c->desc.digest.str, job->src.registry, job->src.repository, job->item->subject,
             c->m.has_subject ? c->m.subject.digest.str : "missing");
        goto out;
    }
    if (c->m.kind != OCI_KIND_IMAGE) {
        fail(job, OCISYNC_EMEDIATYPE,
             "manifest %s in %s/%s is an index inside an index, which ocisync does not copy yet",
             c->desc.digest.str, job->src.registry, job->src.repository);
        goto out;
    }
    doc_media_type(content_type, &c->m, c->media_type, sizeof(c->media_type));
    if (must_convert(job, c->media_type, c->desc.digest.str)) {
        char *out = NULL;
        size_t out_len = 0;
        struct oci_digest nd;
        if (to_format(job, raw, len, NULL, 0, &c->desc.digest, &out, &out_len, &nd) != 0)
            goto out;
        free(raw);
        raw = out;
        len = out_len;
        c->src_digest = c->desc.digest;
        c->desc.digest = nd;
        c->desc.size = (int64_t)len;
        snprintf(c->desc.media_type, sizeof(c->desc.media_type), "%s",
                 converted_type(job, OCI_KIND_IMAGE));
        snprintf(c->media_type, sizeof(c->media_type), "%s", converted_type(job, OCI_KIND_IMAGE));
        c->converted = true;
        emit_converted(job, &c->src_digest, &nd, c->media_type, c->platform[0] ? c->platform : NULL,
                       c->desc.size);
    } else if (job->err != 0) {
        goto out;
    }
    /* Keep the bytes until the push: they are pushed as they are, so the digest stays. */
    err = engine_mstore_keep(&job->ctx->mstore, &c->mref, raw, len, msg, sizeof(msg));
    raw = NULL;
    if (err != 0) {
        fail(job, err, "manifest %s: %s", c->desc.digest.str, msg);
        goto out;
    }
    c->stored = true;
    c->raw = c->mref.mem;
    c->raw_len = c->mref.mem != NULL ? len : 0;
out:
    free(raw);
}

static void on_child_fetched(struct proto_reg_op *op, int err)
{
    struct copy_child *c = op->data;
    struct copy_job *job = c->job;
    job->pending_ops--;
    c->fetching = false;
    /* The response buffer becomes the kept manifest (or is spilled): the reservation ends. */
    engine_mstore_release(&job->ctx->mstore, &c->mw);
    if (err == 0 && job->err != 0) {
        /* The image failed meanwhile: nothing to keep. */
    } else if (err != 0) {
        fail(job, err, "%s", op->errmsg);
    } else {
        size_t len;
        char *raw = proto_reg_take_body(op, &len);
        child_received(c, raw, len, proto_reg_header(op, "Content-Type"));
    }
    proto_reg_op_dispose(op);
    phase_done(job);
    job_settle(job);
}

/* Reads a manifest from the source layout; NULL with the job failed when it cannot. */
static char *layout_read(struct copy_job *job, const struct oci_descriptor *d, size_t *len)
{
    char msg[512], *raw = NULL;
    int err = oci_layout_blob_read(&job->src_lay->lay, &d->digest, OCI_MANIFEST_MAX_SIZE, &raw, len,
                                   msg, sizeof(msg));
    if (err != 0) {
        fail(job, err, "%s", msg);
        return NULL;
    }
    return raw;
}

/* What a child's fetch may take: the size its index gives, which the response must match. */
static size_t child_size(const struct copy_child *c)
{
    return c->desc.size > 0 && c->desc.size <= OCI_MANIFEST_MAX_SIZE ? (size_t)c->desc.size
                                                                     : OCI_MANIFEST_MAX_SIZE;
}

/* GETs child c (its store reservation held; counted in pending_ops). */
static int start_fetch(struct copy_child *c)
{
    struct copy_job *job = c->job;
    int err = proto_reg_manifest_get(&c->op, job->src_reg, job->src.repository, c->desc.digest.str,
                                     false);
    /* More than the index says is wrong anyway: refused at the index's size, not 4 MiB. */
    proto_reg_set_body_max(&c->op, child_size(c));
    c->op.data = c;
    if (err == 0)
        err = proto_reg_op_start(&c->op, on_child_fetched);
    if (err != 0) {
        fail(job, err, "%s", c->op.errmsg);
        proto_reg_op_dispose(&c->op);
        engine_mstore_release(&job->ctx->mstore, &c->mw);
        job->pending_ops--;
        return err;
    }
    c->fetching = true;
    return 0;
}

static void resume_fetch(struct engine_mstore_waiter *w)
{
    struct copy_child *c = container_of(w, struct copy_child, mw);
    struct copy_job *job = c->job;
    if (job->err != 0) {
        engine_mstore_release(&job->ctx->mstore, &c->mw);
        job->pending_ops--;
        job_settle(job);
        return;
    }
    if (start_fetch(c) != 0)
        job_settle(job);
}

static bool platform_selected(struct copy_job *job, const struct oci_descriptor *d)
{
    if (job->n_platforms == 0)
        return true;
    if (!d->has_platform)
        return false;
    for (size_t i = 0; i < job->n_platforms; i++)
        if (oci_platform_match(&job->platforms[i], &d->platform))
            return true;
    return false;
}

static int plan_index(struct copy_job *job)
{
    size_t n = 0;
    int err;
    job->children = calloc(job->top.n_manifests ? job->top.n_manifests : 1, sizeof(*job->children));
    if (job->children == NULL)
        return UV_ENOMEM;
    for (size_t i = 0; i < job->top.n_manifests; i++) {
        const struct oci_descriptor *d = &job->top.manifests[i];
        if (!platform_selected(job, d))
            continue;
        struct copy_child *c = &job->children[n++];
        c->job = job;
        c->desc = *d;
        if (d->has_platform)
            oci_platform_format(&d->platform, c->platform, sizeof(c->platform));
    }
    if (job->opts->index_only) {
        /* The index alone, as skopeo's --multi-arch index-only: no image it lists moves. */
        LOG_DEBUG("%s/%s: index only, %zu images not copied", job->src.registry,
                  job->src.repository, n);
        job->n_children = 0;
        return 0;
    }
    job->n_children = n;
    if (n == 0) {
        fail(job, OCISYNC_ENOPLATFORM, "%s/%s has no manifest for the requested platforms",
             job->src.registry, job->src.repository);
        return OCISYNC_ENOPLATFORM;
    }
    if (job->n_platforms > 0 && job->opts->preserve_digests) {
        fail(job, OCISYNC_EUSAGE,
             "%s/%s: copying only some platforms writes a new index with another digest than "
             "%s, and --preserve-digests forbids that: drop --platform, or --preserve-digests",
             job->src.registry, job->src.repository, job->top_digest.str);
        return OCISYNC_EUSAGE;
    }
    if (job->n_platforms > 0) {
        /* A subset is a new index, with a new digest. */
        char *out = NULL;
        size_t out_len = 0;
        err = oci_index_filter(job->top_raw, job->top_len, job->platforms, job->n_platforms, &out,
                               &out_len);
        if (err != 0) {
            fail(job, err, "%s/%s: cannot write the platform subset: %s", job->src.registry,
                 job->src.repository, ocisync_strerror(err));
            return err;
        }
        job->push_raw = out;
        job->push_len = out_len;
        err = oci_digest_buffer(OCI_DIGEST_SHA256, out, out_len, &job->push_digest);
        if (err != 0)
            return err;
        if (job->opts->on_event != NULL) {
            struct ocisync_event ev;
            memset(&ev, 0, sizeof(ev));
            ev.kind = OCISYNC_EV_INDEX_FILTERED;
            ev.image = job->index;
            ev.digest = job->push_digest.str;
            ev.source_digest = job->top_digest.str;
            ev.media_type = job->top_media_type;
            ev.size = (int64_t)out_len;
            job->opts->on_event(&ev, job->opts->event_arg);
        }
    }
    for (size_t i = 0; i < job->n_children; i++) {
        struct copy_child *c = &job->children[i];
        if (job->src_lay != NULL) {
            size_t len;
            char *raw = layout_read(job, &c->desc, &len);
            if (raw == NULL)
                return job->err;
            child_received(c, raw, len, c->desc.media_type);
            if (job->err != 0)
                return job->err;
            continue;
        }
        /* Each fetch waits for its share of the manifest store; pending until it is done. */
        job->pending_ops++;
        if (engine_mstore_reserve(&job->ctx->mstore, &c->mw, child_size(c), resume_fetch) &&
            start_fetch(c) != 0)
            return job->err;
    }
    return 0;
}

/* The source's top-level document arrived (raw is taken over): plan the image from it. */
static void top_received(struct copy_job *job, char *raw, size_t len, const char *content_type)
{
    char msg[512];
    int err;
    job->top_raw = raw;
    job->top_len = len;
    err = oci_manifest_parse(content_type, job->top_raw, job->top_len, &job->top, msg, sizeof(msg));
    if (err != 0) {
        fail(job, err, "%s/%s:%s: %s", job->src.registry, job->src.repository,
             oci_ref_target(&job->src), msg);
        goto out;
    }
    job->top_parsed = true;
    doc_media_type(content_type, &job->top, job->top_media_type, sizeof(job->top_media_type));
    err = oci_digest_buffer(job->src.has_digest ? job->src.digest.alg : OCI_DIGEST_SHA256,
                            job->top_raw, job->top_len, &job->top_digest);
    if (err != 0) {
        fail(job, err, "cannot hash manifest");
        goto out;
    }
    if (job->src.has_digest && !oci_digest_equal(&job->top_digest, &job->src.digest)) {
        fail(job, OCISYNC_EDIGESTMISMATCH,
             "%s/%s@%s: the registry returned a manifest with digest %s", job->src.registry,
             job->src.repository, job->src.digest.str, job->top_digest.str);
        goto out;
    }
    if (job->item->subject != NULL && !subject_is(&job->top, job->item->subject)) {
        /* A referrer names its subject; a fallback index (no subject) holds ones that do. */
        if (job->top.kind == OCI_KIND_INDEX && !job->top.has_subject) {
            job->child_subjects = true;
        } else {
            fail(job, OCISYNC_EMANIFEST,
                 "%s/%s@%s is listed as a referrer of %s, but its subject is %s", job->src.registry,
                 job->src.repository, job->top_digest.str, job->item->subject,
                 job->top.has_subject ? job->top.subject.digest.str : "missing");
            goto out;
        }
    }
    snprintf(job->res->source_digest, sizeof(job->res->source_digest), "%s", job->top_digest.str);
    job->push_raw = job->top_raw;
    job->push_len = job->top_len;
    job->push_digest = job->top_digest;
    if (job->top.kind == OCI_KIND_INDEX) {
        if (plan_index(job) != 0)
            goto out;
    } else {
        job->children = calloc(1, sizeof(*job->children));
        if (job->children == NULL) {
            fail(job, UV_ENOMEM, "out of memory");
            goto out;
        }
        struct copy_child *c = &job->children[0];
        job->n_children = 1;
        c->job = job;
        c->desc.digest = job->top_digest;
        c->desc.size = (int64_t)job->top_len;
        snprintf(c->desc.media_type, sizeof(c->desc.media_type), "%s", job->top_media_type);
        snprintf(c->media_type, sizeof(c->media_type), "%s", job->top_media_type);
        /* The lone manifest shares its parsed form with the top level. */
        c->m = job->top;
        c->raw = job->top_raw;
        c->raw_len = job->top_len;
    }
out:;
}

static void on_top_fetched(struct proto_reg_op *op, int err)
{
    struct copy_job *job = op->data;
    job->pending_ops--;
    if (err != 0) {
        char ref[600];
        oci_ref_format(&job->src, ref, sizeof(ref));
        if (err == OCISYNC_ENOTFOUND)
            fail(job, err, "%s: image not found (%s)", ref, op->errmsg);
        else
            fail(job, err, "%s: %s", ref, op->errmsg);
    } else {
        size_t len;
        char *raw = proto_reg_take_body(op, &len);
        top_received(job, raw, len, proto_reg_header(op, "Content-Type"));
    }
    proto_reg_op_dispose(op);
    phase_done(job);
    job_settle(job);
}

/* ------------------------------------------------------------------------------------------ */
/* What the destination has (step 2) */

static void on_child_head(struct proto_reg_op *op, int err)
{
    struct copy_child *c = op->data;
    struct copy_job *job = c->job;
    job->pending_ops--;
    if (err != 0) {
        fail(job, err, "%s", op->errmsg);
    } else if (proto_reg_status(op) == 200) {
        c->present = true;
        child_release(c);
        emit(job, OCISYNC_EV_MANIFEST_SKIPPED, c->desc.digest.str, c->media_type,
             c->platform[0] ? c->platform : NULL, c->desc.size);
    }
    proto_reg_op_dispose(op);
    phase_done(job);
    job_settle(job);
}

/* Every child is checked; those present need nothing more: the blobs of the others move. */
static void children_checked(struct copy_job *job)
{
    unsigned missing = 0;
    for (size_t i = 0; i < job->n_children; i++)
        missing += !job->children[i].present;
    job->children_left = missing;
    if (missing == 0) {
        push_top(job);
        return;
    }
    set_job_state(job, JOB_MOVING);
    start_blobs(job);
}

static void check_children(struct copy_job *job)
{
    set_job_state(job, JOB_CHECKING_CHILDREN);
    if (job->dst_lay != NULL && job->top.kind == OCI_KIND_INDEX) {
        /* Child manifests are written after their blobs: one present is complete. */
        for (size_t i = 0; i < job->n_children; i++) {
            struct copy_child *c = &job->children[i];
            c->present = oci_layout_blob_exists(&job->dst_lay->lay, &c->desc.digest, c->desc.size);
            if (!c->present)
                continue;
            child_release(c);
            emit(job, OCISYNC_EV_MANIFEST_SKIPPED, c->desc.digest.str, c->media_type,
                 c->platform[0] ? c->platform : NULL, c->desc.size);
        }
        children_checked(job);
        return;
    }
    if (job->top.kind != OCI_KIND_INDEX || job->n_children == 0 || job->dst_new) {
        /* A lone manifest: the tag check already said it is not there; a new repository has none.
         */
        children_checked(job);
        return;
    }
    for (size_t i = 0; i < job->n_children; i++) {
        struct copy_child *c = &job->children[i];
        int err = proto_reg_manifest_get(&c->op, job->dst_reg, job->dst.repository,
                                         c->desc.digest.str, true);
        c->op.expect[1] = 404;
        if (job_op_start(job, &c->op, err, c, on_child_head) != 0)
            return;
    }
}

static void on_tag_head(struct proto_reg_op *op, int err)
{
    struct copy_job *job = op->data;
    bool present = false;
    job->pending_ops--;
    if (err != 0) {
        fail(job, err, "%s", op->errmsg);
    } else {
        /* The destination already points at exactly this: nothing to do. */
        const char *dcd = proto_reg_header(op, "Docker-Content-Digest");
        present =
            proto_reg_status(op) == 200 && dcd != NULL && strcmp(dcd, job->push_digest.str) == 0;
    }
    proto_reg_op_dispose(op);
    if (job->err == 0)
        tag_checked(job, present);
    job_settle(job);
}

/* What the destination's tag names is known: the image is there, or its children are asked. */
static void tag_checked(struct copy_job *job, bool present)
{
    if (present)
        found_there(job);
    else
        check_children(job);
}

static void check_dest(struct copy_job *job)
{
    const char *ref;
    int err;
    set_job_state(job, JOB_CHECKING_TAG);
    if (job->convert && convert_top(job) != 0)
        return;
    if (job->opts->recompress && !job->item->blobs_only) {
        /*
         * What the destination should hold is known only once the layers are
         * recompressed: everything goes (layers in the target compression
         * already are asked for one by one), as skopeo does.
         */
        children_checked(job);
        return;
    }
    ref = job->dst.tag[0] ? job->dst.tag : job->push_digest.str;
    if (job->dst_lay != NULL) {
        /* A layout holds the image if its index names it (by name, or by digest when unnamed). */
        struct oci_descriptor d;
        const char *name = job->dst_lref[0] ? job->dst_lref : job->push_digest.str;
        char msg[512];
        tag_checked(job, oci_layout_resolve(&job->dst_lay->lay, name, &d, msg, sizeof(msg)) == 0 &&
                             oci_digest_equal(&d.digest, &job->push_digest) &&
                             oci_layout_blob_exists(&job->dst_lay->lay, &d.digest, d.size));
        return;
    }
    if (job->dst_known && job->n_platforms == 0) {
        /* The first HEADs already said the destination has something else, or nothing. */
        tag_checked(job, strcmp(job->dst_head, job->push_digest.str) == 0);
        return;
    }
    err = proto_reg_manifest_get(&job->top_op, job->dst_reg, job->dst.repository, ref, true);
    job->top_op.expect[1] = 404;
    job_op_start(job, &job->top_op, err, job, on_tag_head);
}

/* ------------------------------------------------------------------------------------------ */
/* Blobs (step 3; their transfers are blob.c's) */

void engine__job_blob_done(struct copy_job *job, struct copy_blob *b)
{
    adapt_limit(job);
    switch (b->outcome) {
    case OCISYNC_EV_BLOB_COPIED:
        job->res->blobs_copied++;
        job->res->bytes_copied += (uint64_t)b->desc.size;
        break;
    case OCISYNC_EV_BLOB_MOUNTED:
        job->res->blobs_mounted++;
        break;
    default:
        job->res->blobs_skipped++;
        break;
    }
    emit(job, (ocisync_event_kind)b->outcome, b->desc.digest.str, b->desc.media_type, NULL,
         b->desc.size);
    if (b->recompressed)
        emit_from(job, OCISYNC_EV_BLOB_RECOMPRESSED, b->desc.digest.str, b->src_digest.str,
                  b->desc.media_type, NULL, b->desc.size);
    for (size_t i = 0; i < b->n_children; i++) {
        struct copy_child *c = b->children[i];
        if (b->outcome == OCISYNC_EV_BLOB_COPIED)
            c->n_copied++;
        else if (b->outcome == OCISYNC_EV_BLOB_MOUNTED)
            c->n_mounted++;
        else
            c->n_skipped++;
        if (--c->blobs_left == 0)
            push_child(c);
    }
}

/*
 * Adapts the number of transfers at once, additive increase and
 * multiplicative decrease: a registry that throttles (429) halves it, and
 * every `limit` transfers finished without a new throttle add one back.
 */
static void adapt_limit(struct copy_job *job)
{
    struct copy_ctx *ctx = job->ctx;
    unsigned seen =
        (job->src_reg ? job->src_reg->throttled : 0) + (job->dst_reg ? job->dst_reg->throttled : 0);
    if (seen != job->throttles_seen) {
        job->throttles_seen = seen;
        ctx->jobs_limit = ctx->jobs_limit > 1 ? ctx->jobs_limit / 2 : 1;
        ctx->jobs_grow = 0;
        LOG_DEBUG("throttled: at most %u transfers at once now", ctx->jobs_limit);
    } else if (ctx->jobs_limit < ctx->max_active && ++ctx->jobs_grow >= ctx->jobs_limit) {
        ctx->jobs_limit++;
        ctx->jobs_grow = 0;
    }
}

/* The next blob waiting for a slot: woken waiters first, then the queued images in order. */
static struct copy_blob *next_blob(struct copy_ctx *ctx)
{
    if (!queue_empty(&ctx->wake_queue)) {
        struct queue *q = queue_head(&ctx->wake_queue);
        queue_remove(q);
        return container_of(q, struct copy_blob, wait_link);
    }
    while (!queue_empty(&ctx->blob_queue)) {
        struct copy_job *job =
            container_of(queue_head(&ctx->blob_queue), struct copy_job, queue_link);
        if (job->err == 0 && job->next_blob < job->n_blobs) {
            struct copy_blob *b = &job->blobs[job->next_blob++];
            engine__blob_probe_ahead(job);
            return b;
        }
        queue_remove(&job->queue_link);
        job->queued = false;
    }
    return NULL;
}

static void job_start(struct copy_job *job);
static struct copy_job *new_job(struct copy_ctx *ctx, size_t i);

/*
 * Starts what may start: images up to max_running, then blobs while
 * transfer slots are free. Re-entrant calls (a blob that completes at once
 * pumps again) only ask the outer loop for another round.
 */
void engine__pump(struct copy_ctx *ctx)
{
    if (ctx->pumping) {
        ctx->pump_again = true;
        return;
    }
    ctx->pumping = true;
    do {
        ctx->pump_again = false;
        while (!ctx->stopping && ctx->running < ctx->max_running && ctx->next_job < ctx->n_jobs) {
            size_t i = ctx->next_job++;
            struct copy_job *job = new_job(ctx, i);
            if (job == NULL) {
                ctx->errs[i] = UV_ENOMEM;
                snprintf(ctx->results[i].error, sizeof(ctx->results[i].error), "out of memory");
                ctx->finished++;
                continue;
            }
            job_start(job);
        }
        while (ctx->active < ctx->jobs_limit) {
            struct copy_blob *b = next_blob(ctx);
            if (b == NULL)
                break;
            if (b->job->err != 0) {
                /* Its image failed while it waited to be woken. */
                engine__blob_drop(b);
                continue;
            }
            engine__blob_begin(b);
        }
    } while (ctx->pump_again);
    ctx->pumping = false;
    if (ctx->finished == ctx->n_jobs || (ctx->stopping && ctx->running == 0))
        check_run_done(ctx);
}

static int cmp_blob_size(const void *a, const void *b)
{
    const struct copy_blob *x = a, *y = b;
    if (x->desc.size != y->desc.size)
        return x->desc.size > y->desc.size ? -1 : 1;
    return strcmp(x->desc.digest.str, y->desc.digest.str);
}

/* One blob as one child lists it, for sorting: the same digest twice is one blob. */
struct blob_use {
    const struct oci_descriptor *d;
    struct copy_child *c;
};

static int cmp_use(const void *a, const void *b)
{
    const struct blob_use *x = a, *y = b;
    int r = strcmp(x->d->digest.str, y->d->digest.str);
    if (r != 0)
        return r;
    return x->c < y->c ? -1 : x->c > y->c;
}

/* A hint that places d in repository repo of registry: NULL if none. */
static const struct engine_mount_hint *hint_for(const struct copy_job *job,
                                                const struct oci_descriptor *d,
                                                const char *registry, const char *repo)
{
    for (size_t i = 0; i < job->eitem->n_hints; i++) {
        const struct engine_mount_hint *h = &job->eitem->hints[i];
        if (oci_digest_equal(&h->digest, &d->digest) && strcmp(h->registry, registry) == 0 &&
            (repo == NULL ? strcmp(h->repository, job->dst.repository) != 0
                          : strcmp(h->repository, repo) == 0))
            return h;
    }
    return NULL;
}

/*
 * Whether d is a layer that ocisync_copy_opts.recompress makes in another
 * compression: a gzip, zstd or plain tar layer not already in the one asked
 * for. Foreign and nondistributable layers, configs and artifacts' blobs
 * are never touched.
 */
static bool wants_recompress(const struct copy_job *job, const struct oci_descriptor *d)
{
    static const struct {
        const char *mt;
        int comp; /* 0 plain, else OCISYNC_GZIP + 1 / OCISYNC_ZSTD + 1 */
    } layers[] = {
        {OCI_MT_OCI_LAYER, 0},
        {OCI_MT_DOCKER_LAYER, 0},
        {OCI_MT_OCI_LAYER_GZIP, OCISYNC_GZIP + 1},
        {OCI_MT_DOCKER_LAYER_GZIP, OCISYNC_GZIP + 1},
        {OCI_MT_OCI_LAYER_ZSTD, OCISYNC_ZSTD + 1},
        {OCI_MT_DOCKER_LAYER_ZSTD, OCISYNC_ZSTD + 1},
    };
    if (!job->opts->recompress || job->item->blobs_only)
        return false;
    for (size_t i = 0; i < sizeof(layers) / sizeof(layers[0]); i++)
        if (strcmp(d->media_type, layers[i].mt) == 0)
            return layers[i].comp != (int)job->opts->compression + 1;
    return false;
}

/*
 * A new blob of job for d. One the source layout lacks comes from an origin:
 * the holder when a hint places it there, else the base image.
 */
static int new_blob(struct copy_job *job, const struct oci_descriptor *d)
{
    struct copy_blob *b = &job->blobs[job->n_blobs++];
    const struct engine_mount_hint *h;
    b->job = job;
    b->fd = -1;
    b->desc = *d;
    if (job->n_origins > 0 && !oci_layout_blob_exists(&job->src_lay->lay, &d->digest, d->size)) {
        for (size_t i = job->n_origins; i-- > 0 && b->origin == NULL;) {
            struct copy_origin *o = &job->origins[i];
            if (o != job->holder || hint_for(job, d, o->ref.registry, o->ref.repository) != NULL)
                b->origin = o;
        }
        if (b->origin != NULL && b->origin->same_dst) {
            b->mount_from = strdup(b->origin->ref.repository);
            b->mount_scope = strdup(job->dst_reg->scope);
            if (b->mount_from == NULL || b->mount_scope == NULL)
                return UV_ENOMEM;
        }
    }
    /* Where a hint places it in another repository of the destination registry: a mount. */
    if (b->origin == NULL && job->dst_reg != NULL &&
        (h = hint_for(job, d, job->dst.registry, NULL)) != NULL) {
        b->mount_from = strdup(h->repository);
        b->mount_scope = malloc(PROTO_REG_SCOPE_MAX);
        if (b->mount_from == NULL || b->mount_scope == NULL)
            return UV_ENOMEM;
        snprintf(b->mount_scope, PROTO_REG_SCOPE_MAX, "%s repository:%s:pull", job->dst_reg->scope,
                 h->repository);
    }
    b->recompress = wants_recompress(job, d);
    if (b->recompress) {
        /* A mount would give the bytes as they are. */
        free(b->mount_from);
        free(b->mount_scope);
        b->mount_from = b->mount_scope = NULL;
    }
    return 0;
}

static int blob_add_child(struct copy_blob *b, struct copy_child *c)
{
    struct copy_child **nc = realloc(b->children, (b->n_children + 1) * sizeof(*nc));
    if (nc == NULL)
        return UV_ENOMEM;
    b->children = nc;
    b->children[b->n_children++] = c;
    c->blobs_left++;
    return 0;
}

/*
 * The unique blobs of the children still to copy, found by sorting what
 * they list (an index of 1024 children of 1024 layers is a million entries:
 * no quadratic search), at most COPY_MAX_BLOBS of them.
 */
static int plan_blobs(struct copy_job *job)
{
    struct blob_use *uses;
    size_t n = 0, unique = 0;
    int err = 0;
    for (size_t i = 0; i < job->n_children; i++)
        if (!job->children[i].present)
            n += 1 + job->children[i].m.n_layers;
    uses = malloc((n ? n : 1) * sizeof(*uses));
    if (uses == NULL)
        return UV_ENOMEM;
    n = 0;
    for (size_t i = 0; i < job->n_children; i++) {
        struct copy_child *c = &job->children[i];
        if (c->present)
            continue;
        uses[n++] = (struct blob_use){&c->m.config, c};
        for (size_t k = 0; k < c->m.n_layers; k++)
            uses[n++] = (struct blob_use){&c->m.layers[k], c};
    }
    qsort(uses, n, sizeof(*uses), cmp_use);
    for (size_t i = 0; i < n; i++)
        unique += i == 0 || !oci_digest_equal(&uses[i].d->digest, &uses[i - 1].d->digest);
    if (unique > COPY_MAX_BLOBS) {
        fail(job, OCISYNC_ETOOBIG,
             "%s/%s lists %zu different blobs; at most %d per image are copied", job->src.registry,
             job->src.repository, unique, COPY_MAX_BLOBS);
        free(uses);
        return OCISYNC_ETOOBIG;
    }
    job->blobs = calloc(unique ? unique : 1, sizeof(*job->blobs));
    if (job->blobs == NULL)
        err = UV_ENOMEM;
    for (size_t i = 0; err == 0 && i < n; i++) {
        bool first = i == 0 || !oci_digest_equal(&uses[i].d->digest, &uses[i - 1].d->digest);
        if (first)
            err = new_blob(job, uses[i].d);
        /* One blob listed twice by the same manifest still counts once for it. */
        if (err == 0 && (first || uses[i].c != uses[i - 1].c))
            err = blob_add_child(&job->blobs[job->n_blobs - 1], uses[i].c);
    }
    free(uses);
    if (err != 0)
        fail(job, err, "out of memory");
    return err;
}

/* Collects the unique blobs of the children still to copy and queues them for transfer slots. */
static void start_blobs(struct copy_job *job)
{
    if (plan_blobs(job) != 0)
        return;
    /* What the children list is in the blobs now: their parsed forms go. */
    if (job->top.kind == OCI_KIND_INDEX) {
        for (size_t i = 0; i < job->n_children; i++) {
            struct copy_child *c = &job->children[i];
            if (c->parsed)
                oci_manifest_free(&c->m);
            c->parsed = false;
        }
    }
    /* Largest first, so the longest transfer is not the one left running alone at the end. */
    qsort(job->blobs, job->n_blobs, sizeof(*job->blobs), cmp_blob_size);
    engine__blob_probe_ahead(job);
    queue_insert_tail(&job->ctx->blob_queue, &job->queue_link);
    job->queued = true;
    pump(job->ctx);
}

/* ------------------------------------------------------------------------------------------ */
/* Manifests (step 4) */

static void resume_top(struct copy_waiter *w)
{
    struct copy_job *job = container_of(w, struct copy_job, top_w);
    job->pending_ops--;
    push_top(job);
    job_settle(job);
}

static void on_top_pushed(struct proto_reg_op *op, int err)
{
    struct copy_job *job = op->data;
    job->pending_ops--;
    engine__mlock_release(&job->top_lock, err == 0);
    if (err != 0) {
        fail(job, err, "%s", op->errmsg);
    } else {
        job->res->manifests_pushed++;
        emit(job, OCISYNC_EV_MANIFEST_PUSHED, job->push_digest.str, job->top_media_type, NULL,
             (int64_t)job->push_len);
        set_job_state(job, JOB_ENDING);
    }
    proto_reg_op_dispose(op);
    job_settle(job);
}

/* Writes a manifest into the destination layout (and names the top level in index.json). */
static int layout_put(struct copy_job *job, const struct oci_digest *d, const char *media_type,
                      const char *raw, size_t len, bool top)
{
    struct oci_layout *lay = &job->dst_lay->lay;
    char msg[512];
    int err = oci_layout_put_blob(lay, d, raw, len, msg, sizeof(msg));
    if (err == 0 && top) {
        struct oci_descriptor desc;
        memset(&desc, 0, sizeof(desc));
        snprintf(desc.media_type, sizeof(desc.media_type), "%s", media_type);
        desc.digest = *d;
        desc.size = (int64_t)len;
        err = oci_layout_add(lay, &desc, job->dst_lref[0] ? job->dst_lref : NULL, msg, sizeof(msg));
        /* index.json is replaced last, once everything it names is in place. */
        if (err == 0)
            err = oci_layout_commit(lay, msg, sizeof(msg));
    }
    if (err != 0)
        fail(job, err, "%s", msg);
    return err;
}

static void push_top(struct copy_job *job)
{
    const char *ref;
    int err;
    if (job->err != 0 || relink_top(job) != 0)
        return;
    ref = job->dst.tag[0] ? job->dst.tag : job->push_digest.str;
    if (job->state != JOB_PUSHING)
        set_job_state(job, JOB_PUSHING);
    if (job->item->blobs_only) {
        set_job_state(job, JOB_ENDING);
        job_settle(job);
        return;
    }
    if (job->dst_lay != NULL) {
        if (layout_put(job, &job->push_digest, job->top_media_type, job->push_raw, job->push_len,
                       true) == 0) {
            set_job_state(job, JOB_ENDING);
            job->res->manifests_pushed++;
            emit(job, OCISYNC_EV_MANIFEST_PUSHED, job->push_digest.str, job->top_media_type, NULL,
                 (int64_t)job->push_len);
        }
        job_settle(job);
        return;
    }
    {
        struct copy_mlock *m = engine__mlock_get(job, &job->push_digest);
        if (m != NULL && m->busy) {
            engine__mlock_wait(m, &job->top_w, resume_top);
            job->pending_ops++;
            return;
        }
        if (m != NULL) {
            m->busy = true;
            job->top_lock = m;
        }
    }
    err = proto_reg_manifest_put(&job->top_op, job->dst_reg, job->dst.repository, ref,
                                 job->top_media_type, job->push_raw, job->push_len);
    if (job_op_start(job, &job->top_op, err, job, on_top_pushed) != 0)
        engine__mlock_release(&job->top_lock, false);
}

/* A child manifest is at the destination with all its blobs; the last one lets the top go. */
static void child_complete(struct copy_child *c)
{
    struct copy_job *job = c->job;
    if (job->opts->on_event != NULL) {
        struct ocisync_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.kind = OCISYNC_EV_IMAGE_DONE;
        ev.image = job->index;
        ev.digest = c->desc.digest.str;
        ev.media_type = c->media_type;
        ev.platform = c->platform[0] ? c->platform : NULL;
        ev.size = c->desc.size;
        ev.blobs_copied = c->n_copied;
        ev.blobs_mounted = c->n_mounted;
        ev.blobs_skipped = c->n_skipped;
        job->opts->on_event(&ev, job->opts->event_arg);
    }
    if (--job->children_left == 0)
        push_top(job);
}

static void resume_child(struct copy_waiter *w)
{
    struct copy_child *c = container_of(w, struct copy_child, w);
    struct copy_job *job = c->job;
    job->pending_ops--;
    push_child(c);
    job_settle(job);
}

static void on_child_pushed(struct proto_reg_op *op, int err)
{
    struct copy_child *c = op->data;
    struct copy_job *job = c->job;
    job->pending_ops--;
    c->putting = false;
    engine__mlock_release(&c->lock, err == 0);
    child_release(c);
    if (err != 0) {
        fail(job, err, "%s", op->errmsg);
    } else {
        c->pushed = true;
        job->res->manifests_pushed++;
        emit(job, OCISYNC_EV_MANIFEST_PUSHED, c->desc.digest.str, c->media_type,
             c->platform[0] ? c->platform : NULL, c->desc.size);
        child_complete(c);
    }
    proto_reg_op_dispose(op);
    job_settle(job);
}

static void resume_push(struct engine_mstore_waiter *w)
{
    struct copy_child *c = container_of(w, struct copy_child, mw);
    struct copy_job *job = c->job;
    job->pending_ops--;
    push_child(c);
    job_settle(job);
}

/* All of c's blobs are at the destination: push its manifest. */
static void push_child(struct copy_child *c)
{
    struct copy_job *job = c->job;
    int err;
    if (job->err != 0)
        return;
    if (job->top.kind != OCI_KIND_INDEX || job->item->blobs_only) {
        /* A lone manifest is the top level: it goes under the tag, by child_complete. */
        if (relink_child(c) != 0)
            return;
        child_release(c);
        child_complete(c);
        return;
    }
    if (c->stored && c->raw == NULL) {
        /* Loaded for its push in turn, so that a thousand children done at once stay bounded. */
        char msg[512];
        if (!engine_mstore_reserve(&job->ctx->mstore, &c->mw, c->mref.len, resume_push)) {
            job->pending_ops++;
            return;
        }
        err = engine_mstore_load(&job->ctx->mstore, &c->mref, &c->raw, msg, sizeof(msg));
        if (err != 0) {
            fail(job, err, "manifest %s: %s", c->desc.digest.str, msg);
            return;
        }
        c->raw_len = c->mref.len;
    }
    if (relink_child(c) != 0) {
        child_release(c);
        return;
    }
    if (job->dst_lay != NULL) {
        err = layout_put(job, &c->desc.digest, c->media_type, c->raw, c->raw_len, false);
        child_release(c);
        if (err == 0) {
            c->pushed = true;
            job->res->manifests_pushed++;
            emit(job, OCISYNC_EV_MANIFEST_PUSHED, c->desc.digest.str, c->media_type,
                 c->platform[0] ? c->platform : NULL, c->desc.size);
            child_complete(c);
        }
        return;
    }
    {
        struct copy_mlock *m = engine__mlock_get(job, &c->desc.digest);
        if (m != NULL && m->done) {
            /* Another image of the run pushed this very manifest here. */
            c->pushed = true;
            child_release(c);
            child_complete(c);
            return;
        }
        if (m != NULL && m->busy) {
            engine__mlock_wait(m, &c->w, resume_child);
            job->pending_ops++;
            return;
        }
        if (m != NULL) {
            m->busy = true;
            c->lock = m;
        }
    }
    err = proto_reg_manifest_put(&c->op, job->dst_reg, job->dst.repository, c->desc.digest.str,
                                 c->media_type, c->raw, c->raw_len);
    if (job_op_start(job, &c->op, err, c, on_child_pushed) != 0) {
        engine__mlock_release(&c->lock, false);
        child_release(c);
        return;
    }
    c->putting = true;
}

/* ------------------------------------------------------------------------------------------ */

void engine__job_settle(struct copy_job *job)
{
    struct copy_ctx *ctx = job->ctx;
    /* Only ENDING ends: a failure, the top manifest's push, or finding it there. */
    if (job->state != JOB_ENDING || job->pending_ops > 0 || job->blobs_open > 0)
        return;
    set_job_state(job, JOB_DONE);
    if (job->err == 0)
        snprintf(job->res->digest, sizeof(job->res->digest), "%s", job->push_digest.str);
    if (job->opts->on_event != NULL) {
        struct ocisync_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.kind = OCISYNC_EV_DONE;
        ev.image = job->index;
        ev.src = job->item->src;
        ev.dst = job->item->dst;
        ev.digest = job->err == 0 ? job->push_digest.str : NULL;
        ev.media_type = job->top_media_type[0] ? job->top_media_type : NULL;
        ev.size = (int64_t)job->push_len;
        ev.err = job->err;
        ev.message = job->err != 0 ? job->res->error : NULL;
        ev.blobs_copied = job->res->blobs_copied;
        ev.blobs_mounted = job->res->blobs_mounted;
        ev.blobs_skipped = job->res->blobs_skipped;
        ev.bytes = job->res->bytes_copied;
        job->opts->on_event(&ev, job->opts->event_arg);
    }
    ctx->running--;
    ctx->finished++;
    ctx->errs[job->index] = job->err;
    if (job->queued) {
        queue_remove(&job->queue_link);
        job->queued = false;
    }
    queue_insert_tail(&ctx->reap_queue, &job->reap_link);
    if (!ctx->reap.armed)
        loop_delay_start(&ctx->s.loop, &ctx->reap, 0, reap_now);
    pump(ctx);
}

/* Ends the run once every image is finished (or, when interrupted, every started one). */
static void check_run_done(struct copy_ctx *ctx)
{
    if (ctx->done || ctx->running > 0)
        return;
    if (ctx->finished < ctx->n_jobs && !ctx->stopping)
        return;
    ctx->done = true;
    engine_stop_watch_close(&ctx->s.stop);
    loop_ctx_close(&ctx->s.loop);
}

/* ------------------------------------------------------------------------------------------ */
/* Images */

static void reap_now(struct loop_delay *d)
{
    struct copy_ctx *ctx = container_of(d, struct copy_ctx, reap);
    while (!queue_empty(&ctx->reap_queue)) {
        struct queue *q = queue_head(&ctx->reap_queue);
        struct copy_job *job = container_of(q, struct copy_job, reap_link);
        queue_remove(q);
        job_release(job);
        ctx->jobs[job->index] = NULL;
        free(job);
    }
}

/*
 * Image i's state, allocated as it starts. Without memory it is finished at
 * once with the error, and the run goes on with the next.
 */
static struct copy_job *new_job(struct copy_ctx *ctx, size_t i)
{
    struct copy_job *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return NULL;
    job->ctx = ctx;
    job->opts = ctx->opts;
    job->index = i;
    job->eitem = &ctx->items[i];
    job->item = &ctx->items[i].it;
    job->res = &ctx->results[i];
    job->chunk_size = ctx->opts->chunk_size ? ctx->opts->chunk_size : DEFAULT_CHUNK;
    ctx->jobs[i] = job;
    return job;
}

/* Frees what an image held once it is finished: manifests, blobs, registry clones. */
static void job_release(struct copy_job *job)
{
    struct copy_ctx *ctx = job->ctx;
    for (size_t i = 0; i < job->n_blobs; i++)
        engine__blob_free(&job->blobs[i]);
    free(job->blobs);
    job->blobs = NULL;
    job->n_blobs = 0;
    for (size_t i = 0; i < job->n_children; i++) {
        struct copy_child *c = &job->children[i];
        /* A lone manifest's child shares the top level's memory. */
        if (job->top.kind == OCI_KIND_INDEX) {
            if (c->parsed)
                oci_manifest_free(&c->m);
            child_release(c);
        }
    }
    free(job->children);
    job->children = NULL;
    job->n_children = 0;
    if (job->push_raw != job->top_raw)
        free(job->push_raw);
    free(job->top_raw);
    job->push_raw = job->top_raw = NULL;
    if (job->top_parsed)
        oci_manifest_free(&job->top);
    job->top_parsed = false;
    for (size_t side = 0; side < 2 + job->n_origins; side++) {
        struct proto_registry *reg = side == 0   ? job->src_reg
                                     : side == 1 ? job->dst_reg
                                                 : job->origins[side - 2].reg;
        if (reg == NULL)
            continue;
        /* What one image learnt about a registry's authentication spares the next a 401. */
        engine_endpoint_learn(&ctx->s.endpoints, reg);
        ctx->retries += reg->retries;
        proto_registry_dispose(reg);
        free(reg);
    }
    job->src_reg = job->dst_reg = NULL;
    job->n_origins = 0;
    job->holder = NULL;
}

/*
 * A registry endpoint for one image: cloned from the run's endpoint for the
 * same registry and options, which is configured (certificates, TLS context,
 * credentials) the first time it is needed.
 */
static int job_endpoint(struct copy_job *job, bool push, struct proto_registry **out)
{
    const struct ocisync_copy_opts *opts = job->opts;
    const struct oci_ref *ref = push ? &job->dst : &job->src;
    const struct ocisync_registry_opts *ro =
        push ? (job->item->dst_opts ? job->item->dst_opts : &opts->dst)
             : (job->item->src_opts ? job->item->src_opts : &opts->src);
    return engine_endpoint_get(&job->ctx->s.endpoints, ref->registry, ref->repository, ro, push,
                               out, job->res->error, sizeof(job->res->error));
}

/* GETs the source's top-level document (by the digest its HEAD gave, if any). */
static void fetch_top(struct copy_job *job)
{
    const char *ref = job->src_head[0] ? job->src_head : oci_ref_target(&job->src);
    int err;
    set_job_state(job, JOB_FETCHING);
    if (job->src_lay != NULL) {
        struct oci_descriptor d;
        char msg[512], *raw;
        size_t len;
        err = oci_layout_resolve(&job->src_lay->lay, job->src_lref[0] ? job->src_lref : NULL, &d,
                                 msg, sizeof(msg));
        if (err != 0) {
            fail(job, err, "%s", msg);
        } else if ((raw = layout_read(job, &d, &len)) != NULL) {
            if ((int64_t)len != d.size) {
                free(raw);
                fail(job, OCISYNC_ESIZEMISMATCH,
                     "layout %s: %s has %zu bytes, index.json says %lld", job->src_lay->dir,
                     d.digest.str, len, (long long)d.size);
            } else {
                top_received(job, raw, len, d.media_type);
                phase_done(job);
            }
        }
        job_settle(job);
        return;
    }
    err = proto_reg_manifest_get(&job->top_op, job->src_reg, job->src.repository, ref, false);
    if (job_op_start(job, &job->top_op, err, job, on_top_fetched) != 0)
        job_settle(job);
}

/* Whether the destination repository has a tag: an answer says it has none, or nothing. */
static void on_repo_peek(struct proto_reg_op *op, int err)
{
    struct copy_job *job = op->data;
    int status = err == 0 ? proto_reg_status(op) : 0;
    job->pending_ops--;
    if (status == 404) {
        job->dst_new = true;
    } else if (status == 200) {
        size_t len;
        char *body = proto_reg_take_body(op, &len);
        json_t *root = body != NULL ? json_loadb(body, len, 0, NULL) : NULL;
        json_t *tags = json_object_get(root, "tags");
        job->dst_new = root != NULL && (json_is_null(tags) || tags == NULL ||
                                        (json_is_array(tags) && json_array_size(tags) == 0));
        json_decref(root);
        free(body);
    }
    /* Anything else decides nothing: blobs are asked for one by one, as ever. */
    LOG_DEBUG("image %zu: %s/%s %s", job->index, job->dst.registry, job->dst.repository,
              job->dst_new ? "has no tag: blobs go without HEADs" : "has tags (or did not say)");
    proto_reg_op_dispose(op);
    phase_done(job);
    job_settle(job);
}

/*
 * The destination's tag is missing: one request asks whether its repository
 * has any tag, alongside the source's fetch. One that has none holds nothing
 * of the image worth a HEAD per blob.
 */
static void peek_repo(struct copy_job *job)
{
    int err = proto_reg_tags_peek(&job->head_op, job->dst_reg, job->dst.repository);
    job->head_op.expect[1] = 404;
    job->head_op.data = job;
    if (err == 0)
        err = proto_reg_op_start(&job->head_op, on_repo_peek);
    if (err != 0) {
        proto_reg_op_dispose(&job->head_op);
        return;
    }
    job->pending_ops++;
}

/* Both HEADs are back: the same digest on both sides ends the image here. */
static void heads_done(struct copy_job *job)
{
    struct oci_digest d;
    /*
     * The same digest on both sides means nothing is to do, unless the copy
     * changes what it writes (--format, recompression): the destination may
     * hold the source's form.
     */
    if (job->src_head[0] != '\0' && oci_digest_parse_str(job->src_head, &d) == 0 &&
        (!job->src.has_digest || oci_digest_equal(&d, &job->src.digest)) &&
        strcmp(job->src_head, job->dst_head) == 0 && job->opts->format == OCISYNC_FORMAT_KEEP &&
        !job->opts->recompress) {
        job->push_digest = d;
        job->top_digest = d;
        snprintf(job->res->source_digest, sizeof(job->res->source_digest), "%s", d.str);
        found_there(job);
        return;
    }
    if (job->src_head[0] != '\0' && oci_digest_parse_str(job->src_head, &d) != 0)
        job->src_head[0] = '\0';
    fetch_top(job);
    if (job->err == 0 && job->state == JOB_FETCHING && job->dst_known && job->dst_head[0] == '\0' &&
        job->dst_reg != NULL)
        peek_repo(job);
}

static void on_head(struct proto_reg_op *op, int err)
{
    struct copy_job *job = op->data;
    bool src = op == &job->top_op;
    const char *dcd = err == 0 ? proto_reg_header(op, "Docker-Content-Digest") : NULL;
    job->pending_ops--;
    if (src) {
        /* A failed HEAD is not the verdict: the GET that follows says what is wrong. */
        if (err == 0 && dcd != NULL && strlen(dcd) < sizeof(job->src_head))
            snprintf(job->src_head, sizeof(job->src_head), "%s", dcd);
    } else if (err != 0) {
        fail(job, err, "%s", op->errmsg);
    } else {
        job->dst_known = proto_reg_status(op) == 404 || dcd != NULL;
        if (proto_reg_status(op) == 200 && dcd != NULL && strlen(dcd) < sizeof(job->dst_head))
            snprintf(job->dst_head, sizeof(job->dst_head), "%s", dcd);
    }
    proto_reg_op_dispose(op);
    phase_done(job);
    job_settle(job);
}

/* Asks both sides for the digest the reference points to, at once. */
static void start_heads(struct copy_job *job)
{
    const char *dref = job->dst.tag[0] ? job->dst.tag : job->dst.digest.str;
    int err;
    set_job_state(job, JOB_LOOKING);
    err = proto_reg_manifest_get(&job->top_op, job->src_reg, job->src.repository,
                                 oci_ref_target(&job->src), true);
    job->top_op.data = job;
    if (err == 0)
        err = proto_reg_op_start(&job->top_op, on_head);
    if (err != 0) {
        proto_reg_op_dispose(&job->top_op);
        fetch_top(job);
        return;
    }
    job->pending_ops++;
    err = proto_reg_manifest_get(&job->head_op, job->dst_reg, job->dst.repository, dref, true);
    job->head_op.expect[1] = 404;
    job_op_start(job, &job->head_op, err, job, on_head);
}

/* Creates the directories above path, as mkdir -p would; what fails shows when it is used. */
static void make_parents(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return;
        *p = '/';
    }
}

/* The run's layout in dir, opened (for writing: created if missing) the first time. */
static int open_layout(struct copy_ctx *ctx, const char *dir, bool write, struct copy_layout **out,
                       char *msg, size_t msglen)
{
    struct copy_layout *l;
    int err;
    for (l = ctx->layouts; l != NULL; l = l->next)
        if (strcmp(l->dir, dir) == 0)
            break;
    if (l != NULL && write && !l->write) {
        /* Read first, written now: it exists, so opening it again would find the same. */
        l->write = true;
    }
    if (l == NULL) {
        l = calloc(1, sizeof(*l));
        if (l == NULL || (l->dir = strdup(dir)) == NULL) {
            free(l);
            return UV_ENOMEM;
        }
        if (write)
            make_parents(dir);
        err = oci_layout_open(&l->lay, dir, write, msg, msglen);
        if (err != 0) {
            free(l->dir);
            free(l);
            return err;
        }
        l->write = write;
        l->next = ctx->layouts;
        ctx->layouts = l;
    }
    *out = l;
    return 0;
}

/*
 * One side of an item, typed: a registry reference, or a layout (shared by
 * the run's images). Archives were made layouts before the run began.
 */
static int take_side(struct copy_job *job, const struct engine_transport *t, bool dst, char *msg,
                     size_t msglen)
{
    struct oci_ref *ref = dst ? &job->dst : &job->src;
    int err;
    switch (t->kind) {
    case ENGINE_TRANSPORT_REGISTRY:
        *ref = t->ref;
        return 0;
    case ENGINE_TRANSPORT_LAYOUT:
        err = open_layout(job->ctx, t->path, dst, dst ? &job->dst_lay : &job->src_lay, msg, msglen);
        if (err != 0)
            return err == UV_ENOMEM ? err : OCISYNC_EUSAGE;
        snprintf(dst ? job->dst_lref : job->src_lref, sizeof(job->src_lref), "%s", t->name);
        /* For messages: "oci:DIR" stands where a registry would. */
        snprintf(ref->registry, sizeof(ref->registry), "oci:%s", t->path);
        snprintf(ref->repository, sizeof(ref->repository), "%s", t->name);
        return 0;
    default:
        snprintf(msg, msglen, "%s: an archive reached the copy engine unmapped",
                 dst ? job->item->dst : job->item->src);
        return OCISYNC_EUSAGE;
    }
}

/* One side of an item: the caller's typed value, or its string parsed now. */
static int parse_side(struct copy_job *job, bool dst, char *msg, size_t msglen)
{
    const struct engine_transport *typed = dst ? job->eitem->dst : job->eitem->src;
    struct engine_transport t;
    int err;
    if (typed != NULL)
        return take_side(job, typed, dst, msg, msglen);
    err = engine_transport_parse(dst ? job->item->dst : job->item->src, &t, msg, msglen);
    return err != 0 ? err : take_side(job, &t, dst, msg, msglen);
}

/* An origin's registry endpoint, for blobs a layout source does not hold (what names it). */
static int add_origin(struct copy_job *job, const char *what, const char *ref,
                      const struct oci_ref *typed, char *msg, size_t msglen)
{
    const struct ocisync_registry_opts *ro =
        job->item->src_opts ? job->item->src_opts : &job->opts->src;
    struct copy_origin *o = &job->origins[job->n_origins];
    struct engine_transport t;
    int err = 0;

    if (typed != NULL) {
        o->ref = *typed;
    } else {
        err = engine_transport_parse(ref, &t, msg, msglen);
        if (err == 0 && t.kind != ENGINE_TRANSPORT_REGISTRY) {
            snprintf(msg, msglen, "%s \"%s\": not a registry repository", what, ref);
            err = OCISYNC_EUSAGE;
        }
        if (err != 0)
            return err;
        o->ref = t.ref;
    }
    err = engine_endpoint_get(&job->ctx->s.endpoints, o->ref.registry, o->ref.repository, ro, false,
                              &o->reg, msg, msglen);
    if (err != 0)
        return err;
    job->n_origins++;
    snprintf(o->reg->scope, sizeof(o->reg->scope), "repository:%s:pull", o->ref.repository);
    o->same_dst = job->dst_reg != NULL && strcmp(o->reg->base, job->dst_reg->base) == 0 &&
                  strcmp(o->ref.repository, job->dst.repository) != 0;
    return 0;
}

static int job_setup(struct copy_job *job)
{
    const struct ocisync_copy_opts *opts = job->opts;
    const struct ocisync_copy_item *it = job->item;
    const char *const *platforms = it->n_platforms ? it->platforms : opts->platforms;
    size_t n_platforms = it->n_platforms ? it->n_platforms : opts->n_platforms;
    char *msg = job->res->error;
    size_t msglen = sizeof(job->res->error);
    int err;

    err = parse_side(job, false, msg, msglen);
    if (err == 0)
        err = parse_side(job, true, msg, msglen);
    if (err != 0)
        return err;
    if (n_platforms > sizeof(job->platforms) / sizeof(job->platforms[0])) {
        snprintf(msg, msglen, "too many platforms (at most %zu)",
                 sizeof(job->platforms) / sizeof(job->platforms[0]));
        return OCISYNC_EUSAGE;
    }
    for (size_t i = 0; i < n_platforms; i++) {
        err = oci_platform_parse(platforms[i], &job->platforms[i]);
        if (err != 0) {
            snprintf(msg, msglen,
                     "invalid platform \"%s\": expected os/arch[/variant], like linux/arm64/v8",
                     platforms[i]);
            return err;
        }
    }
    job->n_platforms = n_platforms;
    /* Blobs only (a build's base layers into its cache) write no manifest to convert. */
    if (it->blobs_only)
        job->convert = CONVERT_NONE;
    else if (job->opts->format == OCISYNC_FORMAT_V2S2)
        job->convert = CONVERT_DOCKER;
    else if (job->opts->format == OCISYNC_FORMAT_OCI ||
             (job->dst_lay != NULL && !job->eitem->keep_media_types))
        job->convert = CONVERT_OCI;
    if (job->opts->recompress && !it->blobs_only) {
        const char *why = NULL;
        if (job->opts->preserve_digests)
            why = "--preserve-digests forbids the new digests recompressed layers take";
        else if (job->opts->format == OCISYNC_FORMAT_V2S2 && job->opts->compression == OCISYNC_ZSTD)
            why = "Docker schema 2 (--format v2s2) has no zstd layers";
        else if (job->dst.has_digest && job->dst.tag[0] == '\0')
            why = "the destination is a digest, and recompressed layers give the image another "
                  "one: give the destination a tag";
        if (why != NULL) {
            snprintf(msg, msglen, "--dest-compress-format: %s", why);
            return OCISYNC_EUSAGE;
        }
    }
    if (job->convert == CONVERT_DOCKER && job->dst_lay != NULL && !job->eitem->keep_media_types) {
        snprintf(msg, msglen,
                 "--format v2s2: an OCI layout holds images with OCI media types only (skopeo, "
                 "podman and umoci read no other); write Docker schema 2 to a registry, "
                 "docker-archive: or dir:");
        return OCISYNC_EUSAGE;
    }
    if (job->dst.has_digest && job->dst.tag[0] == '\0' && job->n_platforms > 0) {
        snprintf(msg, msglen,
                 "the destination is a digest, but a platform subset makes a new index with "
                 "another digest: give the destination a tag");
        return OCISYNC_EUSAGE;
    }
    if (job->src_lay == NULL)
        err = job_endpoint(job, false, &job->src_reg);
    if (err == 0 && job->dst_lay == NULL)
        err = job_endpoint(job, true, &job->dst_reg);
    if (err == 0 && it->base != NULL && job->src_lay != NULL)
        err = add_origin(job, "base", it->base, NULL, msg, msglen);
    if (err == 0 && job->eitem->holder != NULL && job->src_lay != NULL) {
        err = add_origin(job, "cache", NULL, job->eitem->holder, msg, msglen);
        if (err == 0)
            job->holder = &job->origins[job->n_origins - 1];
    }
    if (err != 0)
        return err;
    if (job->src_lay != NULL || job->dst_lay != NULL) {
        if (job->dst_reg != NULL) {
            size_t len = (size_t)snprintf(job->dst_reg->scope, sizeof(job->dst_reg->scope),
                                          "repository:%s:pull,push", job->dst.repository);
            /* Mounts from an origin on the destination registry need pull there too. */
            for (size_t i = 0; i < job->n_origins && len < sizeof(job->dst_reg->scope); i++)
                if (job->origins[i].same_dst)
                    len += (size_t)snprintf(job->dst_reg->scope + len,
                                            sizeof(job->dst_reg->scope) - len,
                                            " repository:%s:pull", job->origins[i].ref.repository);
        }
        if (job->src_reg != NULL)
            snprintf(job->src_reg->scope, sizeof(job->src_reg->scope), "repository:%s:pull",
                     job->src.repository);
        return 0;
    }
    job->same_registry = strcmp(job->src_reg->base, job->dst_reg->base) == 0 &&
                         strcmp(job->src.repository, job->dst.repository) != 0;
    /* One token per side covers the image: mounts also need pull on the source repository. */
    snprintf(job->src_reg->scope, sizeof(job->src_reg->scope), "repository:%s:pull",
             job->src.repository);
    snprintf(job->dst_reg->scope, sizeof(job->dst_reg->scope), "repository:%s:pull,push%s%s%s",
             job->dst.repository, job->same_registry ? " repository:" : "",
             job->same_registry ? job->src.repository : "", job->same_registry ? ":pull" : "");
    return 0;
}

static void job_start(struct copy_job *job)
{
    struct copy_ctx *ctx = job->ctx;
    int err;
    ctx->running++;
    if (job->opts->on_event != NULL) {
        struct ocisync_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.kind = OCISYNC_EV_IMAGE_START;
        ev.image = job->index;
        ev.src = job->item->src;
        ev.dst = job->item->dst;
        job->opts->on_event(&ev, job->opts->event_arg);
    }
    err = job_setup(job);
    if (err != 0) {
        job->err = err;
        set_job_state(job, JOB_ENDING);
        job_settle(job);
        return;
    }
    if (job->n_platforms == 0 && job->src_lay == NULL && job->dst_lay == NULL) {
        start_heads(job);
        return;
    }
    fetch_top(job);
}

/* ------------------------------------------------------------------------------------------ */
/* The public entry points */

static void on_stop(struct engine_session *sess)
{
    struct copy_ctx *ctx = sess->data;
    uint64_t copied = 0, mounted = 0, skipped = 0;
    /* A second signal while stopping changes nothing: the first one already ends the run. */
    if (ctx->stopping)
        return;
    ctx->stopping = true;
    for (size_t i = 0; i < ctx->n_jobs; i++) {
        copied += ctx->results[i].blobs_copied;
        mounted += ctx->results[i].blobs_mounted;
        skipped += ctx->results[i].blobs_skipped;
    }
    snprintf(ctx->stop_msg, sizeof(ctx->stop_msg),
             "interrupted by %s: %" PRIu64 " blobs were copied, %" PRIu64 " mounted and %" PRIu64
             " skipped before it; nothing half-done was committed, and a rerun completes "
             "what is missing",
             engine_stop_name(), copied, mounted, skipped);
    for (size_t i = 0; i < ctx->n_jobs; i++) {
        struct copy_job *job = ctx->jobs[i];
        if (job != NULL && job->state != JOB_WAITING && job->state != JOB_DONE) {
            fail(job, OCISYNC_EINTERRUPTED, "%s", ctx->stop_msg);
            job_settle(job);
        }
    }
    /* Requests in flight, backoffs and token fetches end now rather than when they would. */
    loop_ctx_abort(&ctx->s.loop);
    pump(ctx);
}

static int copy_run(const struct engine_copy_item *items, size_t n,
                    const struct ocisync_copy_opts *opts, struct ocisync_copy_result *results)
{
    static const struct ocisync_copy_opts defaults;
    struct copy_ctx *ctx;
    struct sigaction ign, old_pipe;
    int err = 0;

    if (opts == NULL)
        opts = &defaults;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        memset(&results[i], 0, sizeof(results[i]));
    ocisync__debug = opts->debug;
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return UV_ENOMEM;
    ctx->jobs = calloc(n, sizeof(*ctx->jobs));
    ctx->errs = calloc(n, sizeof(*ctx->errs));
    if (ctx->jobs == NULL || ctx->errs == NULL) {
        free(ctx->jobs);
        free(ctx->errs);
        free(ctx);
        return UV_ENOMEM;
    }
    ctx->items = items;
    ctx->results = results;
    ctx->opts = opts;
    ctx->n_jobs = n;
    ctx->jobs_limit = ctx->max_active = opts->jobs ? opts->jobs : DEFAULT_JOBS;
    ctx->max_running = ctx->max_active * IMAGES_PER_JOB;
    queue_init(&ctx->blob_queue);
    queue_init(&ctx->wake_queue);
    queue_init(&ctx->reap_queue);

    /*
     * A peer that closes while a request is being written would kill the
     * process with SIGPIPE; the write's EPIPE is what the engine handles. As
     * curl does, the disposition is restored when the run ends.
     */
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old_pipe);
    if (opts->handle_signals) {
        engine_stop_enter();
        ctx->signals = true;
    }
    err = engine_session_init(&ctx->s, opts);
    if (err != 0)
        goto out_free;
    ctx->s.on_stop = on_stop;
    ctx->s.data = ctx;
    ctx->s.loop.max_conns_per_host =
        opts->max_conns_per_host ? opts->max_conns_per_host : 2 * ctx->max_active + 2;
    engine_mstore_init(&ctx->mstore);
    queue_init(&ctx->io_reap);
    pump(ctx);
    uv_run(&ctx->s.uv, UV_RUN_DEFAULT);

    /* The first failure is the run's; images never started (interrupted) say so. */
    for (size_t i = 0; i < n; i++) {
        struct copy_job *job = ctx->jobs[i];
        int e = ctx->errs[i];
        if (i >= ctx->next_job) {
            e = ctx->stopping ? OCISYNC_EINTERRUPTED : OCISYNC_EUPLOAD;
            snprintf(results[i].error, sizeof(results[i].error), "not started: %s",
                     ctx->stopping ? ctx->stop_msg : "the run ended early");
        } else if (job != NULL && job->state != JOB_DONE) {
            e = job->err != 0 ? job->err : OCISYNC_EUPLOAD;
            if (job->err == 0)
                snprintf(results[i].error, sizeof(results[i].error),
                         "copy stopped before it was complete");
        }
        if (err == 0 && e != 0)
            err = e;
    }

    loop_delay_cancel(&ctx->reap);
    engine__blob_reap(ctx);
    for (size_t i = 0; i < n; i++) {
        if (ctx->jobs[i] != NULL) {
            job_release(ctx->jobs[i]);
            free(ctx->jobs[i]);
        }
    }
    engine_mstore_dispose(&ctx->mstore);
    while (ctx->layouts != NULL) {
        struct copy_layout *l = ctx->layouts;
        ctx->layouts = l->next;
        oci_layout_close(&l->lay);
        free(l->dir);
        free(l);
    }
    engine_session_close(&ctx->s);
out_free:
    if (ctx->signals)
        engine_stop_leave();
    sigaction(SIGPIPE, &old_pipe, NULL);
    engine__shared_free_all(ctx);
    engine__mlock_free_all(ctx);
    free(ctx->jobs);
    free(ctx->errs);
    free(ctx);
    return err;
}

/* An oci-archive: side of a run: unpacked (a source) or to be packed (a destination). */
struct archive {
    struct engine_transport t;      /* as the item named it */
    struct engine_transport layout; /* the temp layout the items naming it use instead */
    bool dst;
    char dir[4200]; /* the temp directory holding its layout */
    int err;        /* unpacking failed: every item naming it fails with msg */
    char msg[1024];
    size_t users; /* items writing to it */
    /* A docker archive destination: the platform asked for (borrowed), or NULL. */
    const char *want;
};

static bool is_archive(enum engine_transport_kind k)
{
    return k == ENGINE_TRANSPORT_OCI_ARCHIVE || k == ENGINE_TRANSPORT_DOCKER_ARCHIVE ||
           k == ENGINE_TRANSPORT_DIR;
}

/*
 * The staging layout of a dir: destination, beside it (DIR.stage-XXXXXX), so
 * that its blobs are hard-linked into the directory, not copied.
 */
static int stage_beside(const char *path, char *out, size_t len, char *msg, size_t msglen)
{
    make_parents(path);
    snprintf(out, len, "%s.stage-XXXXXX", path);
    if (mkdtemp(out) == NULL) {
        int e = ocisync__sys_error();
        snprintf(msg, msglen, "cannot create %s: %s", out, uv_strerror(e));
        out[0] = '\0';
        return e;
    }
    return 0;
}

/* The kind of one side of an item: its typed value's, or its string's (0 when malformed). */
static enum engine_transport_kind side_kind(const struct engine_copy_item *item, bool dst)
{
    const struct engine_transport *t = dst ? item->dst : item->src;
    return t != NULL
               ? t->kind
               : (enum engine_transport_kind)ocisync_location_of(dst ? item->it.dst : item->it.src);
}

/*
 * Where an archive side goes: the temp layout of archive t, unpacked (a
 * source) the first time it is named. *which is its index in ar.
 */
static int map_archive(struct archive *ar, size_t *n_ar, size_t max,
                       const struct engine_transport *t, bool dst, size_t *which, char *msg,
                       size_t msglen)
{
    bool docker = t->kind == ENGINE_TRANSPORT_DOCKER_ARCHIVE;
    bool isdir = t->kind == ENGINE_TRANSPORT_DIR;
    char unpack[4300];
    struct archive *a = NULL;
    for (size_t i = 0; i < *n_ar; i++)
        if (ar[i].dst == dst && ar[i].t.kind == t->kind && strcmp(ar[i].t.path, t->path) == 0 &&
            (!docker || dst || strcmp(ar[i].t.name, t->name) == 0))
            a = &ar[i];
    if (a == NULL) {
        if (*n_ar == max)
            return UV_ENOMEM;
        a = &ar[(*n_ar)++];
        memset(a, 0, sizeof(*a));
        a->t = *t;
        a->dst = dst;
        if (isdir && dst) {
            a->err = oci_dir_check_dest(t->path, a->msg, sizeof(a->msg));
            if (a->err == 0)
                a->err = stage_beside(t->path, a->dir, sizeof(a->dir), a->msg, sizeof(a->msg));
            /*
             * The image already there seeds the staging layout (hard links),
             * so a rerun moves only what changed. A directory that is not
             * readable as an image seeds nothing.
             */
            if (a->err == 0) {
                char seed[1024];
                struct stat st;
                snprintf(unpack, sizeof(unpack), "%s/manifest.json", t->path);
                if (stat(unpack, &st) == 0 &&
                    oci_dir_to_layout(t->path, a->dir, "image", seed, sizeof(seed)) != 0)
                    LOG_DEBUG("dir:%s: not reused: %s", t->path, seed);
            }
        } else {
            a->err = oci_archive_tempdir(a->dir, sizeof(a->dir), a->msg, sizeof(a->msg));
        }
        if (a->err == 0 && isdir && !dst) {
            char lay[4300];
            snprintf(lay, sizeof(lay), "%s/layout", a->dir);
            a->err = oci_dir_to_layout(t->path, lay, "image", a->msg, sizeof(a->msg));
            if (a->err == UV_ENOENT || a->err == OCISYNC_EMANIFEST)
                a->err = OCISYNC_EUSAGE;
        }
        /*
         * A docker archive is unpacked beside the layout made from it, never
         * around it: entries of the archive cannot prefill the layout.
         */
        snprintf(unpack, sizeof(unpack), "%s%s", a->dir, docker ? "/archive" : "");
        if (isdir) {
            /* Made a layout above, or written from one after the run. */
        } else if (a->err == 0 && !dst && docker && mkdir(unpack, 0700) != 0) {
            a->err = ocisync__sys_error();
            snprintf(a->msg, sizeof(a->msg), "cannot create %s: %s", unpack, uv_strerror(a->err));
        }
        if (a->err == 0 && !dst && !isdir) {
            a->err = oci_archive_unpack(t->path, unpack, docker, a->msg, sizeof(a->msg));
            if (a->err == OCISYNC_ENOTFOUND)
                a->err = OCISYNC_EUSAGE;
        }
        if (a->err == 0 && !dst && docker) {
            char lay[4300];
            snprintf(lay, sizeof(lay), "%s/layout", a->dir);
            a->err = oci_docker_archive_to_layout(unpack, t->name, t->path, lay, "image", a->msg,
                                                  sizeof(a->msg));
            if (a->err == OCISYNC_ENOTFOUND || a->err == OCISYNC_EMANIFEST)
                a->err = OCISYNC_EUSAGE;
        }
        if (docker || isdir) {
            char lay[4300];
            snprintf(lay, sizeof(lay), "%s%s", a->dir, dst ? "" : "/layout");
            engine_transport_layout(&a->layout, lay, "image");
        } else {
            engine_transport_layout(&a->layout, a->dir, t->name);
        }
    }
    if (a->err != 0) {
        snprintf(msg, msglen, "%s", a->msg);
        return a->err;
    }
    if ((docker || isdir) && dst && a->users > 0) {
        snprintf(msg, msglen, "%s: a %s holds one image", t->path,
                 docker ? "docker archive" : "dir: directory");
        return OCISYNC_EUSAGE;
    }
    if (dst)
        a->users++;
    *which = (size_t)(a - ar);
    return 0;
}

/* The run, then the referrers of what it copied when opts asks. */
static int run_with_referrers(const struct engine_copy_item *items, size_t n,
                              const struct ocisync_copy_opts *opts,
                              struct ocisync_copy_result *results)
{
    int err = copy_run(items, n, opts, results);
    if (opts != NULL && opts->referrers && err != OCISYNC_EINTERRUPTED) {
        int rerr = engine_referrers_copy(items, n, opts, results, copy_run);
        if (err == 0)
            err = rerr;
    }
    return err;
}

int engine_copy_many(const struct engine_copy_item *items, size_t n,
                     const struct ocisync_copy_opts *opts, struct ocisync_copy_result *results)
{
    struct engine_copy_item *run_items = NULL;
    struct ocisync_copy_result *run_res = NULL;
    size_t *which = NULL, *dst_ar = NULL, n_run = 0, n_ar = 0;
    struct archive *ar = NULL;
    int err = 0;
    bool any = false;

    for (size_t i = 0; i < n && !any; i++)
        any = is_archive(side_kind(&items[i], false)) || is_archive(side_kind(&items[i], true));
    if (!any)
        return run_with_referrers(items, n, opts, results);

    /* Archives become layouts in temp directories; the items that name them use those. */
    run_items = calloc(n, sizeof(*run_items));
    run_res = calloc(n, sizeof(*run_res));
    which = calloc(n, sizeof(*which));
    dst_ar = calloc(n, sizeof(*dst_ar));
    ar = calloc(2 * n, sizeof(*ar));
    if (run_items == NULL || run_res == NULL || which == NULL || dst_ar == NULL || ar == NULL) {
        err = UV_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct engine_copy_item it = items[i];
        int e = 0;
        memset(&results[i], 0, sizeof(results[i]));
        dst_ar[i] = SIZE_MAX;
        for (int d = 0; d < 2 && e == 0; d++) {
            const struct engine_transport **side = d ? &it.dst : &it.src;
            struct engine_transport parsed;
            size_t k = 0;
            if (!is_archive(side_kind(&it, d)))
                continue;
            if (*side == NULL) {
                e = engine_transport_parse(d ? it.it.dst : it.it.src, &parsed, results[i].error,
                                           sizeof(results[i].error));
                if (e != 0)
                    break;
            }
            e = map_archive(ar, &n_ar, 2 * n, *side != NULL ? *side : &parsed, d, &k,
                            results[i].error, sizeof(results[i].error));
            if (e == 0) {
                *side = &ar[k].layout;
                if (d)
                    dst_ar[i] = k;
                /* docker save's format holds Docker manifests as they are. */
                /* skopeo's dir: keeps manifests byte for byte, whatever their types. */
                if (d && ar[k].t.kind == ENGINE_TRANSPORT_DIR)
                    it.keep_media_types = true;
                if (d && ar[k].t.kind == ENGINE_TRANSPORT_DOCKER_ARCHIVE) {
                    it.keep_media_types = true;
                    if (it.it.n_platforms > 0)
                        ar[k].want = it.it.platforms[0];
                    else if (opts != NULL && opts->n_platforms > 0)
                        ar[k].want = opts->platforms[0];
                }
            }
        }
        if (e != 0) {
            if (err == 0)
                err = e;
            continue;
        }
        which[n_run] = i;
        run_items[n_run++] = it;
    }
    if (n_run > 0) {
        int e = run_with_referrers(run_items, n_run, opts, run_res);
        if (err == 0)
            err = e;
        for (size_t k = 0; k < n_run; k++)
            results[which[k]] = run_res[k];
    }
    /* An archive is written only if everything meant for it arrived. */
    for (size_t a = 0; a < n_ar; a++) {
        bool ok = ar[a].dst && ar[a].err == 0 && ar[a].users > 0;
        for (size_t i = 0; i < n && ok; i++)
            if (dst_ar[i] == a)
                ok = results[i].error[0] == '\0';
        if (!ok)
            continue;
        if (ar[a].t.kind == ENGINE_TRANSPORT_DOCKER_ARCHIVE) {
            struct oci_descriptor w;
            memset(&w, 0, sizeof(w));
            const char *names[1 + OCISYNC_MAX_ADDITIONAL_TAGS];
            size_t n_names = 0;
            names[n_names++] = ar[a].t.name;
            for (size_t k = 0; opts != NULL && k < opts->n_additional_tags &&
                               n_names < sizeof(names) / sizeof(names[0]);
                 k++)
                names[n_names++] = opts->additional_tags[k];
            ar[a].err = oci_docker_archive_write(ar[a].dir, "image", names, n_names, ar[a].want,
                                                 ar[a].t.path, &w, ar[a].msg, sizeof(ar[a].msg));
            /* What the archive holds is one platform's manifest, not the index copied. */
            for (size_t i = 0; i < n && ar[a].err == 0; i++) {
                if (dst_ar[i] != a)
                    continue;
                snprintf(results[i].digest, sizeof(results[i].digest), "%s", w.digest.str);
                if (w.has_platform)
                    oci_platform_format(&w.platform, results[i].platform,
                                        sizeof(results[i].platform));
            }
        } else if (ar[a].t.kind == ENGINE_TRANSPORT_DIR) {
            ar[a].err =
                oci_dir_write(ar[a].dir, "image", ar[a].t.path, ar[a].msg, sizeof(ar[a].msg));
        } else
            ar[a].err = oci_archive_pack(ar[a].dir, ar[a].t.path, ar[a].msg, sizeof(ar[a].msg));
        if (ar[a].err == 0)
            continue;
        if (err == 0)
            err = ar[a].err;
        for (size_t i = 0; i < n; i++)
            if (dst_ar[i] == a && results[i].error[0] == '\0')
                snprintf(results[i].error, sizeof(results[i].error), "%s: %s", ar[a].t.path,
                         ar[a].msg);
    }
out:
    for (size_t a = 0; ar != NULL && a < n_ar; a++)
        oci_archive_remove_dir(ar[a].dir);
    free(run_items);
    free(run_res);
    free(which);
    free(dst_ar);
    free(ar);
    return err;
}

int ocisync_copy_many(const struct ocisync_copy_item *items, size_t n,
                      const struct ocisync_copy_opts *opts, struct ocisync_copy_result *results)
{
    struct engine_copy_item *eitems;
    int err;
    if (n == 0)
        return 0;
    eitems = calloc(n, sizeof(*eitems));
    if (eitems == NULL)
        return UV_ENOMEM;
    for (size_t i = 0; i < n; i++)
        eitems[i].it = items[i];
    err = engine_copy_many(eitems, n, opts, results);
    free(eitems);
    return err;
}

int ocisync_copy(const char *src, const char *dst, const struct ocisync_copy_opts *opts,
                 struct ocisync_copy_result *result)
{
    struct ocisync_copy_item item;
    struct ocisync_copy_result local;
    memset(&item, 0, sizeof(item));
    item.src = src;
    item.dst = dst;
    return ocisync_copy_many(&item, 1, opts, result != NULL ? result : &local);
}
