/*
 * Referrers: once images are copied, the signatures, SBOMs and attestations
 * attached to them (manifests whose "subject" is the image) follow.
 *
 * They are found with the OCI 1.1 referrers API (GET /v2/<repo>/referrers/
 * <digest>) or, on a registry without it, through the fallback tag
 * "sha256-<hex>", an index of them that tools like cosign and oras maintain.
 * A fallback tag is copied as the index it is (with every referrer in it);
 * referrers listed by the API are copied by digest, and a destination without
 * the API gets the fallback tag too, merged with the one it may already have.
 * Each round then looks for referrers of what it copied (the signature of an
 * SBOM), up to a few rounds.
 */
#include "engine/referrers.h"

#include "common/json_depth.h"
#include "common/log.h"
#include "common/queue.h"
#include "engine/copy.h"
#include "engine/endpoint.h"
#include "engine/transport.h"
#include "oci/oci.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROUNDS 4
#define MAX_REFERRERS 1000
#define AT_ONCE 8

/* One subject: an image already at the destination, whose referrers are looked for. */
struct subject {
    struct ref_run *run;
    size_t parent;           /* the item of the caller's run it hangs from */
    char src[600], dst[600]; /* "registry/repository" */
    char digest[OCI_DIGEST_MAX];
    int state;
    struct proto_registry *sreg, *dreg;
    struct proto_reg_op op;
    json_t *found;    /* the referrers' descriptors (array), or NULL */
    json_t *existing; /* the destination's fallback index manifests, or NULL */
    bool fallback;    /* found through the source's fallback tag */
    bool dst_api;     /* the destination has the referrers API */
    char *index;      /* owned: the fallback index to push to the destination */
    size_t index_len;
    int err;
    char msg[512];
    struct queue link;
};

enum { S_SRC_API, S_DST_API, S_DST_TAG, S_SRC_TAG, S_PUT, S_DONE };

struct ref_run {
    struct engine_session s;
    const struct ocisync_copy_opts *opts;
    struct queue pending;
    unsigned active;
};

static void subj_next(struct subject *s);

static void fallback_tag(const char *digest, char *out, size_t len)
{
    const char *colon = strchr(digest, ':');
    snprintf(out, len, "%.*s-%s", (int)(colon - digest), digest, colon + 1);
}

/* The "manifests" array of the index document op answered with, or NULL. */
static json_t *index_manifests(const struct proto_reg_op *op)
{
    size_t len;
    const char *data = proto_reg_body(op, &len);
    json_error_t jerr;
    json_t *doc, *m;
    /* A referrers list is an index: held to an index's caps before it is parsed. */
    if (ocisync__json_values(data ? data : "", len, OCI_MANIFEST_MAX_VALUES) >
        OCI_MANIFEST_MAX_VALUES)
        return NULL;
    doc = json_loadb(data ? data : "", len, 0, &jerr);
    if (doc == NULL)
        return NULL;
    m = json_object_get(doc, "manifests");
    if (!json_is_array(m)) {
        json_decref(doc);
        return NULL;
    }
    json_incref(m);
    json_decref(doc);
    return m;
}

static void pump(struct ref_run *run);

static void subj_finish(struct subject *s)
{
    s->state = S_DONE;
    if (s->sreg != NULL) {
        proto_registry_dispose(s->sreg);
        free(s->sreg);
        s->sreg = NULL;
    }
    if (s->dreg != NULL) {
        proto_registry_dispose(s->dreg);
        free(s->dreg);
        s->dreg = NULL;
    }
    s->run->active--;
    pump(s->run);
}

/* The merged fallback index for the destination: what it had, plus what was found. */
static int build_index(struct subject *s)
{
    json_t *doc = json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType", OCI_MT_OCI_INDEX,
                            "manifests");
    json_t *arr = json_object_get(doc, "manifests"), *v;
    size_t i;
    if (doc == NULL)
        return UV_ENOMEM;
    json_array_foreach(s->existing, i, v) json_array_append(arr, v);
    json_array_foreach(s->found, i, v)
    {
        const char *d = json_string_value(json_object_get(v, "digest"));
        bool dup = false;
        json_t *w;
        size_t k;
        json_array_foreach(s->existing, k, w)
        {
            const char *e = json_string_value(json_object_get(w, "digest"));
            if (d != NULL && e != NULL && strcmp(d, e) == 0)
                dup = true;
        }
        if (!dup)
            json_array_append(arr, v);
    }
    s->index = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (s->index == NULL)
        return UV_ENOMEM;
    s->index_len = strlen(s->index);
    return 0;
}

static void on_op(struct proto_reg_op *op, int err)
{
    struct subject *s = op->data;
    int status = proto_reg_status(op);
    if (err != 0 && s->state != S_PUT) {
        /* A registry that cannot answer has no referrers to give: note it, go on. */
        snprintf(s->msg, sizeof(s->msg), "%s", op->errmsg);
        s->err = err;
        proto_reg_op_dispose(op);
        subj_finish(s);
        return;
    }
    switch (s->state) {
    case S_SRC_API:
        if (status == 200) {
            s->found = index_manifests(op);
            s->state = s->found != NULL && json_array_size(s->found) > 0 ? S_DST_API : S_DONE;
        } else {
            s->state = S_SRC_TAG;
        }
        break;
    case S_SRC_TAG:
        if (status == 200) {
            s->found = index_manifests(op);
            s->fallback = s->found != NULL && json_array_size(s->found) > 0;
        }
        s->state = S_DONE;
        break;
    case S_DST_API:
        s->dst_api = status == 200;
        s->state = s->dst_api ? S_DONE : S_DST_TAG;
        break;
    case S_DST_TAG:
        if (status == 200)
            s->existing = index_manifests(op);
        s->state = S_DONE;
        break;
    case S_PUT:
        if (err != 0) {
            s->err = err;
            snprintf(s->msg, sizeof(s->msg), "%s", op->errmsg);
        }
        s->state = S_DONE;
        break;
    default:
        break;
    }
    proto_reg_op_dispose(op);
    if (s->state == S_DONE)
        subj_finish(s);
    else
        subj_next(s);
}

static void subj_next(struct subject *s)
{
    const char *slash;
    char tag[OCI_DIGEST_MAX + 8];
    int err = 0;
    fallback_tag(s->digest, tag, sizeof(tag));
    switch (s->state) {
    case S_SRC_API:
        slash = strchr(s->src, '/');
        err = proto_reg_referrers(&s->op, s->sreg, slash + 1, s->digest);
        break;
    case S_SRC_TAG:
        slash = strchr(s->src, '/');
        err = proto_reg_manifest_get(&s->op, s->sreg, slash + 1, tag, false);
        s->op.expect[1] = 404;
        break;
    case S_DST_API:
        slash = strchr(s->dst, '/');
        err = proto_reg_referrers(&s->op, s->dreg, slash + 1, s->digest);
        break;
    case S_DST_TAG:
        slash = strchr(s->dst, '/');
        err = proto_reg_manifest_get(&s->op, s->dreg, slash + 1, tag, false);
        s->op.expect[1] = 404;
        break;
    case S_PUT:
        slash = strchr(s->dst, '/');
        err = proto_reg_manifest_put(&s->op, s->dreg, slash + 1, tag, OCI_MT_OCI_INDEX, s->index,
                                     s->index_len);
        break;
    default:
        return;
    }
    s->op.data = s;
    if (err == 0)
        err = proto_reg_op_start(&s->op, on_op);
    if (err != 0) {
        s->err = err;
        snprintf(s->msg, sizeof(s->msg), "%s", s->op.errmsg);
        proto_reg_op_dispose(&s->op);
        subj_finish(s);
    }
}

static void subj_start(struct subject *s)
{
    struct ref_run *run = s->run;
    char reg[300];
    int err;
    run->active++;
    snprintf(reg, sizeof(reg), "%.*s", (int)strcspn(s->src, "/"), s->src);
    err = engine_endpoint_get(&run->s.endpoints, reg, strchr(s->src, '/') + 1, &run->opts->src,
                              false, &s->sreg, s->msg, sizeof(s->msg));
    if (err == 0) {
        snprintf(s->sreg->scope, sizeof(s->sreg->scope), "repository:%s:pull",
                 strchr(s->src, '/') + 1);
        snprintf(reg, sizeof(reg), "%.*s", (int)strcspn(s->dst, "/"), s->dst);
        err = engine_endpoint_get(&run->s.endpoints, reg, strchr(s->dst, '/') + 1, &run->opts->dst,
                                  true, &s->dreg, s->msg, sizeof(s->msg));
    }
    if (err != 0) {
        s->err = err;
        subj_finish(s);
        return;
    }
    snprintf(s->dreg->scope, sizeof(s->dreg->scope), "repository:%s:pull,push",
             strchr(s->dst, '/') + 1);
    subj_next(s);
}

static void pump(struct ref_run *run)
{
    while (run->active < AT_ONCE && !queue_empty(&run->pending)) {
        struct queue *q = queue_head(&run->pending);
        queue_remove(q);
        subj_start(container_of(q, struct subject, link));
    }
    if (run->active == 0)
        loop_ctx_close(&run->s.loop);
}

/* Runs the subjects' state machines (from state) on a loop of their own. */
static void run_subjects(const struct ocisync_copy_opts *opts, struct subject *subs, size_t n,
                         int state)
{
    struct ref_run run;
    memset(&run, 0, sizeof(run));
    run.opts = opts;
    queue_init(&run.pending);
    if (engine_session_init(&run.s, opts) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        subs[i].run = &run;
        if (state == S_PUT && subs[i].index == NULL)
            continue;
        subs[i].state = state;
        queue_insert_tail(&run.pending, &subs[i].link);
    }
    pump(&run);
    uv_run(&run.s.uv, UV_RUN_DEFAULT);
    engine_session_close(&run.s);
}

/* One side of an item as "registry/repository"; false for what is not a registry image. */
static bool repo_of(const struct engine_copy_item *item, bool dst, char *out, size_t len)
{
    const struct engine_transport *typed = dst ? item->dst : item->src;
    struct engine_transport t;
    if (typed == NULL) {
        if (engine_transport_parse(dst ? item->it.dst : item->it.src, &t, NULL, 0) != 0)
            return false;
        typed = &t;
    }
    if (typed->kind != ENGINE_TRANSPORT_REGISTRY)
        return false;
    snprintf(out, len, "%s/%s", typed->ref.registry, typed->ref.repository);
    return true;
}

static void subjects_free(struct subject *subs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(subs[i].found);
        json_decref(subs[i].existing);
        free(subs[i].index);
    }
    free(subs);
}

static void add_counts(struct ocisync_copy_result *to, const struct ocisync_copy_result *from)
{
    to->blobs_copied += from->blobs_copied;
    to->blobs_mounted += from->blobs_mounted;
    to->blobs_skipped += from->blobs_skipped;
    to->bytes_copied += from->bytes_copied;
    to->manifests_pushed += from->manifests_pushed;
}

int engine_referrers_copy(const struct engine_copy_item *items, size_t n,
                          const struct ocisync_copy_opts *opts, struct ocisync_copy_result *results,
                          engine_copy_run_fn copy_run)
{
    struct subject *subs = NULL;
    struct ocisync_copy_opts ropts = *opts;
    size_t n_subs = 0, total = 0;
    int first_err = 0;

    /* Referrers are copied whole, whatever platforms the images were limited to. */
    ropts.platforms = NULL;
    ropts.n_platforms = 0;
    opts = &ropts;

    /* Round 0's subjects: the images copied as they are (a platform subset has no referrers). */
    subs = calloc(n ? n : 1, sizeof(*subs));
    if (subs == NULL)
        return UV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct subject *s = &subs[n_subs];
        if (results[i].error[0] != '\0' || results[i].digest[0] == '\0' ||
            strcmp(results[i].digest, results[i].source_digest) != 0 ||
            !repo_of(&items[i], false, s->src, sizeof(s->src)) ||
            !repo_of(&items[i], true, s->dst, sizeof(s->dst)))
            continue;
        s->parent = i;
        snprintf(s->digest, sizeof(s->digest), "%s", results[i].digest);
        n_subs++;
    }
    for (int round = 0; round < MAX_ROUNDS && n_subs > 0; round++) {
        struct engine_copy_item *citems = NULL;
        struct ocisync_copy_result *cres = NULL;
        char **strs = NULL;
        size_t n_items = 0, cap = 0, n_strs = 0;
        struct subject *next = NULL;
        size_t n_next = 0;
        int err = 0;

        run_subjects(opts, subs, n_subs, S_SRC_API);
        /* What to copy: a source's fallback index whole, or each referrer by digest. */
        for (size_t i = 0; i < n_subs; i++)
            cap +=
                subs[i].found != NULL ? (subs[i].fallback ? 1 : json_array_size(subs[i].found)) : 0;
        citems = calloc(cap ? cap : 1, sizeof(*citems));
        cres = calloc(cap ? cap : 1, sizeof(*cres));
        strs = calloc(2 * (cap ? cap : 1), sizeof(*strs));
        next = calloc(cap ? cap : 1, sizeof(*next));
        if (citems == NULL || cres == NULL || strs == NULL || next == NULL)
            err = UV_ENOMEM;
        for (size_t i = 0; err == 0 && i < n_subs; i++) {
            struct subject *s = &subs[i];
            json_t *v;
            size_t k;
            if (s->err != 0)
                LOG_DEBUG("referrers of %s@%s: %s", s->src, s->digest, s->msg);
            if (s->found == NULL)
                continue;
            json_array_foreach(s->found, k, v)
            {
                const char *d = json_string_value(json_object_get(v, "digest"));
                struct oci_digest pd;
                char tag[OCI_DIGEST_MAX + 8];
                if (d == NULL || oci_digest_parse_str(d, &pd) != 0 || ++total > MAX_REFERRERS)
                    continue;
                if (!s->fallback || k == 0) {
                    size_t ls = strlen(s->src) + OCI_DIGEST_MAX + 10;
                    size_t ld = strlen(s->dst) + OCI_DIGEST_MAX + 10;
                    strs[n_strs] = malloc(ls);
                    strs[n_strs + 1] = malloc(ld);
                    if (strs[n_strs] == NULL || strs[n_strs + 1] == NULL) {
                        free(strs[n_strs]);
                        free(strs[n_strs + 1]);
                        err = UV_ENOMEM;
                        break;
                    }
                    fallback_tag(s->digest, tag, sizeof(tag));
                    if (s->fallback) {
                        snprintf(strs[n_strs], ls, "%s:%s", s->src, tag);
                        snprintf(strs[n_strs + 1], ld, "%s:%s", s->dst, tag);
                    } else {
                        snprintf(strs[n_strs], ls, "%s@%s", s->src, pd.str);
                        snprintf(strs[n_strs + 1], ld, "%s@%s", s->dst, pd.str);
                    }
                    citems[n_items].it.src = strs[n_strs];
                    citems[n_items].it.dst = strs[n_strs + 1];
                    citems[n_items].it.subject = s->digest;
                    n_strs += 2;
                    n_items++;
                }
                /* Next round: the referrer's own referrers. */
                if (n_next < cap) {
                    struct subject *t = &next[n_next++];
                    t->parent = s->parent;
                    memcpy(t->src, s->src, sizeof(t->src));
                    memcpy(t->dst, s->dst, sizeof(t->dst));
                    snprintf(t->digest, sizeof(t->digest), "%s", pd.str);
                }
            }
            if (err == 0 && !s->fallback && !s->dst_api && json_array_size(s->found) > 0)
                err = build_index(s);
        }
        if (err == 0 && n_items > 0) {
            LOG_DEBUG("referrers: round %d copies %zu", round + 1, n_items);
            copy_run(citems, n_items, opts, cres);
            /* Fold each copy into the item it hangs from; a failure fails that item. */
            for (size_t i = 0, it = 0; i < n_subs && it < n_items; i++) {
                struct subject *s = &subs[i];
                size_t cnt = s->found == NULL ? 0 : s->fallback ? 1 : json_array_size(s->found);
                for (size_t k = 0; k < cnt && it < n_items; k++, it++) {
                    struct ocisync_copy_result *pr = &results[s->parent];
                    add_counts(pr, &cres[it]);
                    if (cres[it].error[0] != '\0' && pr->error[0] == '\0') {
                        snprintf(pr->error, sizeof(pr->error), "referrer %s: %s", citems[it].it.src,
                                 cres[it].error);
                        if (first_err == 0)
                            first_err = OCISYNC_EREGISTRY;
                        /* Its fallback index must not name what did not arrive. */
                        free(s->index);
                        s->index = NULL;
                    }
                }
            }
            /* Destinations without the referrers API get the fallback index, after its manifests.
             */
            run_subjects(opts, subs, n_subs, S_PUT);
            for (size_t i = 0; i < n_subs; i++) {
                struct ocisync_copy_result *pr = &results[subs[i].parent];
                if (subs[i].index != NULL && subs[i].err != 0 && pr->error[0] == '\0') {
                    snprintf(pr->error, sizeof(pr->error), "%s", subs[i].msg);
                    if (first_err == 0)
                        first_err = subs[i].err;
                }
            }
        }
        for (size_t i = 0; i < n_strs; i++)
            free(strs[i]);
        free(strs);
        free(citems);
        free(cres);
        subjects_free(subs, n_subs);
        subs = next;
        n_subs = n_next;
        if (err != 0) {
            first_err = err;
            break;
        }
    }
    subjects_free(subs, n_subs);
    return first_err;
}
