/* A layer streamed to a registry while it is built (see layer_push.h). */
#include "engine/layer_push.h"

#include "common/log.h"
#include "ocisync.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void start_read(struct engine_layer_push *p);

/* Calls back once nothing is in flight any more: the upload has ended and no read is out. */
static void settle(struct engine_layer_push *p)
{
    if (p->done || !p->up_done || p->op_active || p->bufs[0].reading || p->bufs[1].reading)
        return;
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    for (int i = 0; i < 2; i++) {
        free(p->bufs[i].data);
        p->bufs[i].data = NULL;
    }
    p->done = true;
    /* The last thing: the caller may free p. */
    p->cb(p, p->err, p->msg);
}

static void on_up_done(struct proto_upload *u, int err)
{
    struct engine_layer_push *p = u->data;
    p->up_done = true;
    /* A dropped upload of a blob the registry has ends canceled, as it should. */
    if (p->err == 0 && err != 0 && !p->present) {
        p->err = err;
        snprintf(p->msg, sizeof(p->msg), "%s", u->errmsg);
    }
    settle(p);
}

static const struct proto_upload_cbs up_cbs = {.done = on_up_done};

/* The push fails with err (the first failure's message is the one kept): the upload stops. */
__attribute__((format(printf, 3, 4))) static void stop(struct engine_layer_push *p, int err,
                                                       const char *fmt, ...)
{
    if (p->err == 0) {
        va_list ap;
        p->err = err;
        va_start(ap, fmt);
        vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
        va_end(ap);
    }
    proto_upload_abort(&p->up, err);
    if (p->op_active)
        proto_reg_op_abort(&p->op, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Before the commit: is the blob there already? */

static void on_cancel(struct proto_reg_op *op, int err)
{
    struct engine_layer_push *p = op->data;

    if (err != 0)
        LOG_DEBUG("layer %s: the dropped upload to %s/%s could not be deleted (%s); the registry "
                  "purges it in time",
                  p->digest.str, p->reg->name, p->repo, op->errmsg);
    proto_reg_op_dispose(op);
    p->op_active = false;
    settle(p);
}

/*
 * The registry has the blob: the upload stops uncommitted and is deleted
 * there. Only an upload whose every byte sent was acknowledged can be: the
 * registry binds each Location to the offset it answered at (distribution
 * refuses an older one), so after a PATCH cut on its way the registry is
 * left to purge the upload itself, as it does with any abandoned one.
 */
static void drop_upload(struct engine_layer_push *p)
{
    bool current = p->up.location != NULL && p->up.consumed == p->up.sent;
    char *loc = current ? strdup(p->up.location) : NULL;
    int err;

    LOG_DEBUG("layer %s: %s/%s has it already; the upload (%llu bytes sent) is dropped",
              p->digest.str, p->reg->name, p->repo, (unsigned long long)p->consumed);
    p->present = true;
    /* Held while the DELETE is prepared, so that the upload's end does not call back yet. */
    p->op_active = true;
    proto_upload_abort(&p->up, UV_ECANCELED);
    err = loc != NULL ? proto_reg_upload_cancel(&p->op, p->reg, loc)
          : current   ? UV_ENOMEM
                      : UV_ECANCELED;
    free(loc);
    if (err == 0) {
        p->op.data = p;
        err = proto_reg_op_start(&p->op, on_cancel);
    }
    if (err != 0) {
        if (err != UV_ECANCELED)
            LOG_DEBUG("layer %s: cannot delete the dropped upload: %s", p->digest.str,
                      uv_strerror(err));
        proto_reg_op_dispose(&p->op); /* harmless twice: the HEAD's was disposed already */
        p->op_active = false;
        settle(p);
    }
}

static void on_head(struct proto_reg_op *op, int err)
{
    struct engine_layer_push *p = op->data;
    const char *len = err == 0 ? proto_reg_header(op, "Content-Length") : NULL;
    bool there = err == 0 && proto_reg_status(op) == 200 &&
                 (len == NULL || strtoull(len, NULL, 10) == p->size);

    proto_reg_op_dispose(op);
    p->op_active = false;
    if (p->up_done || p->err != 0) {
        settle(p);
        return;
    }
    if (there) {
        drop_upload(p);
        return;
    }
    proto_upload_finish(&p->up, p->digest.str, (int64_t)p->size);
}

/* Sends the HEAD of the finished blob; the commit waits for its answer. 0, or the error. */
static int check(struct engine_layer_push *p)
{
    int err = proto_reg_blob_head(&p->op, p->reg, p->repo, p->digest.str);
    /* Set before the start, whose callback may come at once. */
    p->op_active = err == 0;
    if (err == 0) {
        p->op.data = p;
        err = proto_reg_op_start(&p->op, on_head);
    }
    if (err != 0) {
        proto_reg_op_dispose(&p->op);
        p->op_active = false;
        return err;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The upload's source: the file, through two buffers */

static int body_peek(void *arg, const char **data, size_t *len)
{
    struct engine_layer_push *p = arg;
    struct engine_layer_push_buf *b = &p->bufs[p->head];

    *len = 0;
    if (b->pos < b->len) {
        *data = b->data + b->pos;
        *len = b->len - b->pos;
        return 0;
    }
    if (p->finished && p->consumed == p->size)
        return PROTO_BODY_EOF;
    start_read(p);
    return 0;
}

static void body_consume(void *arg, size_t n)
{
    struct engine_layer_push *p = arg;
    struct engine_layer_push_buf *b = &p->bufs[p->head];

    b->pos += n;
    p->consumed += n;
    if (b->pos == b->len) {
        b->pos = b->len = 0;
        p->head ^= 1;
        start_read(p);
    }
}

static void on_read(uv_fs_t *req)
{
    struct engine_layer_push_buf *b = container_of(req, struct engine_layer_push_buf, req);
    struct engine_layer_push *p = req->data;
    ssize_t n = req->result;

    uv_fs_req_cleanup(req);
    b->reading = false;
    if (p->up_done) {
        settle(p);
        return;
    }
    if (n <= 0) {
        stop(p, n < 0 ? (int)n : UV_EIO, "cannot read the layer being built: %s",
             n < 0 ? uv_strerror((int)n) : "the file is shorter than written");
        settle(p);
        return;
    }
    b->len = (size_t)n;
    p->read_off += (uint64_t)n;
    p->tail ^= 1;
    proto_upload_body_ready(&p->up, p->written);
    start_read(p);
}

/* Reads the next bytes of the file into the next free buffer, one read at a time, in order. */
static void start_read(struct engine_layer_push *p)
{
    struct engine_layer_push_buf *b = &p->bufs[p->tail];
    uv_buf_t buf;
    uint64_t left = p->written - p->read_off;
    int err;

    if (p->up_done || p->fd < 0 || left == 0 || b->reading || b->len > 0 ||
        p->bufs[p->tail ^ 1].reading)
        return;
    buf = uv_buf_init(b->data,
                      (unsigned)(left < ENGINE_LAYER_PUSH_BUF ? left : ENGINE_LAYER_PUSH_BUF));
    b->req.data = p;
    err = uv_fs_read(p->loop, &b->req, p->fd, &buf, 1, (int64_t)p->read_off, on_read);
    if (err != 0) {
        stop(p, err, "cannot read the layer being built: %s", uv_strerror(err));
        return;
    }
    b->reading = true;
}

/* ------------------------------------------------------------------------------------------ */
/* API */

int engine_layer_push_start(struct engine_layer_push *p, uv_loop_t *loop,
                            struct proto_registry *reg, const char *repo, uint64_t chunk,
                            engine_layer_push_cb cb, void *data)
{
    int err;

    memset(p, 0, sizeof(*p));
    p->data = data;
    p->loop = loop;
    p->reg = reg;
    p->cb = cb;
    p->fd = -1;
    if (snprintf(p->repo, sizeof(p->repo), "%s", repo) >= (int)sizeof(p->repo))
        return UV_ENAMETOOLONG;
    for (int i = 0; i < 2; i++) {
        p->bufs[i].data = malloc(ENGINE_LAYER_PUSH_BUF);
        if (p->bufs[i].data == NULL) {
            free(p->bufs[0].data);
            return UV_ENOMEM;
        }
    }
    /* Size and digest come with the end of the build; chunks start once the file holds them. */
    proto_upload_init(&p->up, reg, p->repo, -1);
    p->up.chunk = chunk;
    p->up.available = 0;
    p->up.source.peek = body_peek;
    p->up.source.consume = body_consume;
    p->up.source.arg = p;
    p->up.cbs = &up_cbs;
    p->up.data = p;
    err = proto_upload_start(&p->up);
    if (err != 0) {
        free(p->bufs[0].data);
        free(p->bufs[1].data);
        return err;
    }
    return 0;
}

void engine_layer_push_grow(struct engine_layer_push *p, int fd, uint64_t written)
{
    if (p->up_done || p->finished)
        return;
    if (p->fd < 0) {
        p->fd = dup(fd);
        if (p->fd < 0) {
            int err = uv_translate_sys_error(errno);
            stop(p, err, "cannot follow the layer being built: %s", strerror(errno));
            return;
        }
    }
    p->written = written;
    start_read(p);
    proto_upload_body_ready(&p->up, written);
}

void engine_layer_push_finish(struct engine_layer_push *p, const struct oci_digest *digest,
                              uint64_t size)
{
    if (p->up_done)
        return;
    if (p->fd < 0) {
        stop(p, UV_EIO, "the layer was built without the push seeing its file");
        return;
    }
    p->finished = true;
    p->size = size;
    p->written = size;
    p->digest = *digest;
    start_read(p);
    /* The rest of the bytes go on while the HEAD asks; a streamed body may end now. */
    proto_upload_body_ready(&p->up, size);
    if (p->up_done || p->err != 0)
        return;
    if (check(p) != 0)
        proto_upload_finish(&p->up, digest->str, (int64_t)size);
}

void engine_layer_push_abort(struct engine_layer_push *p)
{
    if (p->up_done)
        return;
    stop(p, UV_ECANCELED, "the layer's build failed");
}
