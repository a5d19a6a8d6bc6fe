/*
 * What the images of one run share: blobs sent once to each destination
 * registry (the first image that needs one transfers it, the others wait,
 * then mount it from where it went), and manifests pushed to a repository
 * one at a time (a registry storing the same manifest twice concurrently
 * may lose one: distribution 2.8 was seen answering "manifest blob unknown"
 * to an index pushed meanwhile).
 */
#include "engine/copy_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t shared_hash(const char *base, const struct oci_digest *d, size_t cap)
{
    /* The digest is already uniformly random; mix in the registry for the rare multi-target run. */
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = base; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    for (const char *p = oci_digest_hex(d); *p != '\0' && p < oci_digest_hex(d) + 16; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return (size_t)(h % cap);
}

struct copy_shared *engine__shared_get(struct copy_ctx *ctx, const char *base,
                                       const struct oci_digest *d)
{
    struct copy_shared *sh;
    size_t i;
    if (ctx->shared == NULL) {
        ctx->shared_cap = 4096;
        ctx->shared = calloc(ctx->shared_cap, sizeof(*ctx->shared));
        if (ctx->shared == NULL)
            return NULL;
    }
    i = shared_hash(base, d, ctx->shared_cap);
    for (sh = ctx->shared[i]; sh != NULL; sh = sh->next)
        if (oci_digest_equal(&sh->digest, d) && strcmp(sh->base, base) == 0)
            return sh;
    sh = calloc(1, sizeof(*sh));
    if (sh == NULL)
        return NULL;
    snprintf(sh->base, sizeof(sh->base), "%s", base);
    sh->digest = *d;
    queue_init(&sh->waiters);
    sh->next = ctx->shared[i];
    ctx->shared[i] = sh;
    return sh;
}

void engine__shared_free_all(struct copy_ctx *ctx)
{
    for (size_t i = 0; i < ctx->shared_cap; i++) {
        struct copy_shared *sh = ctx->shared[i], *next;
        for (; sh != NULL; sh = next) {
            next = sh->next;
            free(sh->repo);
            free(sh);
        }
    }
    free(ctx->shared);
    ctx->shared = NULL;
}

struct copy_mlock *engine__mlock_get(struct copy_job *job, const struct oci_digest *d)
{
    struct copy_ctx *ctx = job->ctx;
    struct copy_mlock *m;
    char key[LOOP_HOST_MAX + OCI_REF_REPO_MAX + OCI_DIGEST_MAX + 40];
    snprintf(key, sizeof(key), "%s/%s@%s", job->dst_reg->base, job->dst.repository, d->str);
    for (m = ctx->mlocks; m != NULL; m = m->next)
        if (strcmp(m->key, key) == 0)
            return m;
    m = calloc(1, sizeof(*m));
    if (m == NULL || (m->key = strdup(key)) == NULL) {
        free(m);
        return NULL;
    }
    queue_init(&m->waiters);
    m->next = ctx->mlocks;
    ctx->mlocks = m;
    return m;
}

void engine__mlock_release(struct copy_mlock **held, bool ok)
{
    struct copy_mlock *m = *held;
    if (m == NULL)
        return;
    *held = NULL;
    m->busy = false;
    if (ok)
        m->done = true;
    while (!queue_empty(&m->waiters)) {
        struct queue *q = queue_head(&m->waiters);
        struct copy_waiter *w = container_of(q, struct copy_waiter, link);
        queue_remove(q);
        w->waiting = false;
        w->resume(w);
        /* The first resumed may have taken the lock again: the rest wait for it. */
        if (m->busy)
            break;
    }
}

void engine__mlock_wait(struct copy_mlock *m, struct copy_waiter *w,
                        void (*resume)(struct copy_waiter *w))
{
    w->resume = resume;
    w->waiting = true;
    queue_insert_tail(&m->waiters, &w->link);
}

void engine__mlock_free_all(struct copy_ctx *ctx)
{
    while (ctx->mlocks != NULL) {
        struct copy_mlock *m = ctx->mlocks;
        ctx->mlocks = m->next;
        free(m->key);
        free(m);
    }
}
