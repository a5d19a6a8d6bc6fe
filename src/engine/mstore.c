/* _GNU_SOURCE: fallocate's FALLOC_FL_PUNCH_HOLE */
#define _GNU_SOURCE
#include "engine/mstore.h"

#include "common/log.h"
#include "common/sysio.h"
#include "ocisync.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

void engine_mstore_init(struct engine_mstore *ms)
{
    memset(ms, 0, sizeof(*ms));
    queue_init(&ms->waiters);
    ms->fd = -1;
    ms->inflight_max = ENGINE_MSTORE_INFLIGHT;
    ms->keep_max = ENGINE_MSTORE_KEEP;
}

void engine_mstore_dispose(struct engine_mstore *ms)
{
    if (ms->fd >= 0)
        close(ms->fd);
    ms->fd = -1;
    if (ms->peak_kept > 0 || ms->spilled > 0)
        LOG_DEBUG("manifests: at most %llu bytes in flight and %llu kept in memory; %llu "
                  "written to a temp file",
                  (unsigned long long)ms->peak_inflight, (unsigned long long)ms->peak_kept,
                  (unsigned long long)ms->spilled);
}

static bool fits(const struct engine_mstore *ms, size_t size)
{
    return ms->inflight == 0 || ms->inflight + size <= ms->inflight_max;
}

static void grant(struct engine_mstore *ms, struct engine_mstore_waiter *w, size_t size)
{
    w->size = size;
    w->holds = true;
    ms->inflight += size;
    if (ms->inflight > ms->peak_inflight)
        ms->peak_inflight = ms->inflight;
}

bool engine_mstore_reserve(struct engine_mstore *ms, struct engine_mstore_waiter *w, size_t size,
                           void (*resume)(struct engine_mstore_waiter *w))
{
    w->resume = resume;
    if (w->holds)
        return true;
    /* First come, first served: nobody overtakes a waiter that does not fit yet. */
    if (queue_empty(&ms->waiters) && fits(ms, size)) {
        grant(ms, w, size);
        return true;
    }
    w->size = size;
    w->waiting = true;
    queue_insert_tail(&ms->waiters, &w->link);
    return false;
}

void engine_mstore_release(struct engine_mstore *ms, struct engine_mstore_waiter *w)
{
    if (w->waiting) {
        queue_remove(&w->link);
        w->waiting = false;
    }
    if (w->holds) {
        w->holds = false;
        ms->inflight -= w->size;
    }
    while (!queue_empty(&ms->waiters)) {
        struct engine_mstore_waiter *next =
            container_of(queue_head(&ms->waiters), struct engine_mstore_waiter, link);
        if (!fits(ms, next->size))
            break;
        queue_remove(&next->link);
        next->waiting = false;
        grant(ms, next, next->size);
        next->resume(next);
    }
}

/* The temp file, created on first use in $TMPDIR and unlinked at once: nothing is left behind. */
static int open_file(struct engine_mstore *ms, char *err, size_t errlen)
{
    const char *dir;
    char path[4096];
    int rc;
    if (ms->fd >= 0)
        return 0;
    rc = ocisync__tmp_template(path, sizeof(path), "ocisync-manifests-XXXXXX", &dir, err, errlen);
    if (rc != 0)
        return rc;
    ms->fd = mkostemp(path, O_CLOEXEC);
    if (ms->fd < 0) {
        int e = ocisync__sys_error();
        snprintf(err, errlen, "cannot create a temp file for manifests in %s: %s", dir,
                 uv_strerror(e));
        return e;
    }
    unlink(path);
    return 0;
}

int engine_mstore_keep(struct engine_mstore *ms, struct engine_mstore_ref *ref, char *raw,
                       size_t len, char *err, size_t errlen)
{
    int rc;
    ref->len = len;
    ref->off = -1;
    if (ms->kept + len <= ms->keep_max) {
        ref->mem = raw;
        ref->counted = true;
        ms->kept += len;
        if (ms->kept > ms->peak_kept)
            ms->peak_kept = ms->kept;
        return 0;
    }
    ref->mem = NULL;
    ref->counted = false;
    rc = open_file(ms, err, errlen);
    if (rc == 0) {
        ssize_t n = pwrite(ms->fd, raw, len, (off_t)ms->file_end);
        rc = n == (ssize_t)len ? 0 : n < 0 ? ocisync__sys_error() : UV_EIO;
        if (rc != 0)
            snprintf(err, errlen, "cannot write a manifest to the temp file: %s", uv_strerror(rc));
    }
    if (rc == 0) {
        ref->off = (int64_t)ms->file_end;
        ms->file_end += len;
        ms->spilled++;
    }
    free(raw);
    return rc;
}

int engine_mstore_load(struct engine_mstore *ms, struct engine_mstore_ref *ref, const char **data,
                       char *err, size_t errlen)
{
    if (ref->mem == NULL && ref->off >= 0) {
        ssize_t n;
        ref->mem = malloc(ref->len ? ref->len : 1);
        if (ref->mem == NULL)
            return UV_ENOMEM;
        n = pread(ms->fd, ref->mem, ref->len, (off_t)ref->off);
        if (n != (ssize_t)ref->len) {
            int rc = n < 0 ? ocisync__sys_error() : UV_EIO;
            free(ref->mem);
            ref->mem = NULL;
            snprintf(err, errlen, "cannot read a manifest back from the temp file: %s",
                     uv_strerror(rc));
            return rc;
        }
    }
    *data = ref->mem;
    return 0;
}

void engine_mstore_drop(struct engine_mstore *ms, struct engine_mstore_ref *ref)
{
    if (ref->counted)
        ms->kept -= ref->len;
    free(ref->mem);
    if (ref->off >= 0 && ms->fd >= 0)
        /* Best effort: the disk space of a pushed manifest goes back at once. */
        (void)fallocate(ms->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, ref->off,
                        (off_t)ref->len);
    memset(ref, 0, sizeof(*ref));
    ref->off = -1;
}
