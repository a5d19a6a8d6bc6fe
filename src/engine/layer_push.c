#include "engine/layer_push.h"

#include "common/log.h"
#include "common/queue.h"
#include "ocisync.h"
#include "proto/http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum push_state {
    ST_OPENING,    /* POST in flight */
    ST_SENDING,    /* PATCHes: one in flight, or waiting for the file to hold the next chunk */
    ST_COMMITTING, /* PUT ?digest= in flight */
    ST_ENDING,     /* outcome known; waiting for the request or a read to return */
    ST_DONE,
};

static const char *const state_names[] = {"opening", "sending", "committing", "ending", "done"};

static void next_request(struct engine_layer_push *p);
static void start_read(struct engine_layer_push *p);

static void set_state(struct engine_layer_push *p, enum push_state s)
{
    LOG_DEBUG("layer push to %s/%s: %s -> %s", p->reg->name, p->repo, state_names[p->state],
              state_names[s]);
    p->state = s;
}

/* Calls back once nothing is in flight any more: no request, no read. */
static void settle(struct engine_layer_push *p)
{
    if (p->state != ST_ENDING || p->op_active || p->bufs[0].reading || p->bufs[1].reading)
        return;
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    for (int i = 0; i < 2; i++) {
        free(p->bufs[i].data);
        p->bufs[i].data = NULL;
    }
    free(p->location);
    p->location = NULL;
    set_state(p, ST_DONE);
    /* The last thing: the caller may free p. */
    p->cb(p, p->err, p->msg);
}

/* Records the outcome (the first one counts) and winds down. */
static void end(struct engine_layer_push *p, int err, const char *fmt, const char *detail)
{
    if (p->state == ST_ENDING || p->state == ST_DONE)
        return;
    p->err = err;
    if (err != 0)
        snprintf(p->msg, sizeof(p->msg), fmt, detail);
    set_state(p, ST_ENDING);
    /* A request waiting for body bytes learns of the end from its next peek. */
    if (p->op_active)
        proto_http_body_ready(&p->op.http);
    settle(p);
}

/* ------------------------------------------------------------------------------------------ */
/* The request body: the file, through two buffers */

static int body_peek(void *arg, const char **data, size_t *len)
{
    struct engine_layer_push *p = arg;
    struct engine_layer_push_buf *b = &p->bufs[p->head];

    *len = 0;
    if (p->state != ST_SENDING)
        return p->err != 0 ? p->err : UV_ECANCELED;
    if (b->pos < b->len) {
        *data = b->data + b->pos;
        *len = b->len - b->pos;
        return 0;
    }
    if (p->chunk == 0 && p->finished && p->consumed == p->size)
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
    if (p->state == ST_ENDING) {
        settle(p);
        return;
    }
    if (n <= 0) {
        end(p, n < 0 ? (int)n : UV_EIO, "cannot read the layer being built: %s",
            n < 0 ? uv_strerror((int)n) : "the file is shorter than written");
        return;
    }
    b->len = (size_t)n;
    p->read_off += (uint64_t)n;
    p->tail ^= 1;
    if (p->op_active)
        proto_http_body_ready(&p->op.http);
    start_read(p);
}

/* Reads the next bytes of the file into the next free buffer, one read at a time, in order. */
static void start_read(struct engine_layer_push *p)
{
    struct engine_layer_push_buf *b = &p->bufs[p->tail];
    uv_buf_t buf;
    uint64_t left = p->written - p->read_off;
    int err;

    if (p->state != ST_SENDING || p->fd < 0 || left == 0 || b->reading || b->len > 0 ||
        p->bufs[p->tail ^ 1].reading)
        return;
    buf = uv_buf_init(b->data,
                      (unsigned)(left < ENGINE_LAYER_PUSH_BUF ? left : ENGINE_LAYER_PUSH_BUF));
    b->req.data = p;
    err = uv_fs_read(p->loop, &b->req, p->fd, &buf, 1, (int64_t)p->read_off, on_read);
    if (err != 0) {
        end(p, err, "cannot read the layer being built: %s", uv_strerror(err));
        return;
    }
    b->reading = true;
}

/* ------------------------------------------------------------------------------------------ */
/* The requests */

static void on_done(struct proto_reg_op *op, int err);

static void start_op(struct engine_layer_push *p, int err)
{
    p->op.data = p;
    if (err == 0)
        err = proto_reg_op_start(&p->op, on_done);
    if (err != 0) {
        proto_reg_op_dispose(&p->op);
        end(p, err, "cannot start a request: %s", ocisync_strerror(err));
        return;
    }
    p->op_active = true;
}

/* Starts the next PATCH, or the closing PUT, when the file allows. */
static void next_request(struct engine_layer_push *p)
{
    struct proto_body body = {.peek = body_peek, .consume = body_consume, .arg = p};

    if (p->state != ST_SENDING || p->op_active)
        return;
    if (p->finished && p->sent == p->size) {
        set_state(p, ST_COMMITTING);
        start_op(p, proto_reg_upload_put(&p->op, p->reg, p->location, p->digest.str, NULL));
        return;
    }
    if (p->chunk == 0) {
        /* One PATCH for everything; the body ends with the build. */
        if (p->sent > 0)
            return;
        body.length = -1;
    } else {
        uint64_t have = (p->finished ? p->size : p->written) - p->sent;
        if (have < p->chunk && !p->finished)
            return;
        body.length = (int64_t)(have < p->chunk ? have : p->chunk);
    }
    start_op(p, proto_reg_upload_patch(&p->op, p->reg, p->location, p->sent, &body));
    start_read(p);
}

static void on_done(struct proto_reg_op *op, int err)
{
    struct engine_layer_push *p = op->data;
    char *loc = NULL;

    p->op_active = false;
    if (p->state == ST_ENDING) {
        proto_reg_op_dispose(op);
        settle(p);
        return;
    }
    if (err != 0) {
        char msg[sizeof(p->msg)];
        snprintf(msg, sizeof(msg), "%s", op->errmsg[0] ? op->errmsg : ocisync_strerror(err));
        proto_reg_op_dispose(op);
        end(p, err, "%s", msg);
        return;
    }
    if (p->aborted) {
        proto_reg_op_dispose(op);
        end(p, UV_ECANCELED, "%s", "the layer's build failed");
        return;
    }
    switch (p->state) {
    case ST_OPENING:
    case ST_SENDING: {
        uint64_t min = proto_reg_chunk_min(op);
        loc = proto_reg_upload_location(op);
        if (loc == NULL) {
            char msg[sizeof(p->msg)];
            snprintf(msg, sizeof(msg), "%s", op->errmsg);
            proto_reg_op_dispose(op);
            end(p, OCISYNC_EUPLOAD, "%s", msg);
            return;
        }
        if (p->state == ST_OPENING) {
            if (p->chunk > 0 && min > p->chunk)
                p->chunk = min;
            set_state(p, ST_SENDING);
        } else {
            /* The connection took exactly this request's body (http caps it at its length). */
            p->sent = p->consumed;
        }
        proto_reg_op_dispose(op);
        free(p->location);
        p->location = loc;
        next_request(p);
        return;
    }
    case ST_COMMITTING: {
        const char *dcd = proto_http_header(&op->http, "Docker-Content-Digest");
        if (dcd != NULL && strcmp(dcd, p->digest.str) != 0) {
            char msg[sizeof(p->msg)];
            snprintf(msg, sizeof(msg), "registry %s: upload of %s was stored as %s", p->reg->name,
                     p->digest.str, dcd);
            proto_reg_op_dispose(op);
            end(p, OCISYNC_EDIGESTMISMATCH, "%s", msg);
            return;
        }
        proto_reg_op_dispose(op);
        end(p, 0, "%s", "");
        return;
    }
    default:
        proto_reg_op_dispose(op);
        return;
    }
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
    p->chunk = chunk;
    p->cb = cb;
    p->fd = -1;
    p->state = ST_OPENING;
    if (snprintf(p->repo, sizeof(p->repo), "%s", repo) >= (int)sizeof(p->repo))
        return UV_ENAMETOOLONG;
    for (int i = 0; i < 2; i++) {
        p->bufs[i].data = malloc(ENGINE_LAYER_PUSH_BUF);
        if (p->bufs[i].data == NULL) {
            free(p->bufs[0].data);
            return UV_ENOMEM;
        }
    }
    err = proto_reg_upload_start(&p->op, reg, p->repo, NULL, NULL);
    p->op.data = p;
    if (err == 0)
        err = proto_reg_op_start(&p->op, on_done);
    if (err != 0) {
        proto_reg_op_dispose(&p->op);
        free(p->bufs[0].data);
        free(p->bufs[1].data);
        return err;
    }
    p->op_active = true;
    return 0;
}

void engine_layer_push_grow(struct engine_layer_push *p, int fd, uint64_t written)
{
    if (p->state >= ST_ENDING || p->finished)
        return;
    if (p->fd < 0) {
        p->fd = dup(fd);
        if (p->fd < 0) {
            end(p, uv_translate_sys_error(errno), "cannot follow the layer being built: %s",
                strerror(errno));
            return;
        }
    }
    p->written = written;
    start_read(p);
    next_request(p);
}

void engine_layer_push_finish(struct engine_layer_push *p, const struct oci_digest *digest,
                              uint64_t size)
{
    if (p->state >= ST_ENDING)
        return;
    if (p->fd < 0) {
        end(p, UV_EIO, "%s", "the layer was built without the push seeing its file");
        return;
    }
    p->finished = true;
    p->digest = *digest;
    p->size = size;
    p->written = size;
    start_read(p);
    /* A streamed PATCH whose every byte is out needs to hear that the body has ended. */
    if (p->op_active)
        proto_http_body_ready(&p->op.http);
    next_request(p);
}

void engine_layer_push_abort(struct engine_layer_push *p)
{
    if (p->state >= ST_ENDING)
        return;
    p->aborted = true;
    /* A POST in flight cannot be taken back: its answer ends the push. */
    if (p->state == ST_OPENING)
        return;
    end(p, UV_ECANCELED, "%s", "the layer's build failed");
}
