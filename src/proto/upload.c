/* The blob upload protocol (see upload.h for the life of an upload). */
#include "proto/upload.h"

#include "common/log.h"
#include "ocisync.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {
    [PROTO_UPLOAD_OPENING] = "opening",
    [PROTO_UPLOAD_SENDING] = "sending",
    [PROTO_UPLOAD_SENT] = "sent",
    [PROTO_UPLOAD_CUT] = "cut",
    [PROTO_UPLOAD_BACKOFF] = "backoff",
    [PROTO_UPLOAD_ASKING] = "asking",
    [PROTO_UPLOAD_COMMITTING] = "committing",
    [PROTO_UPLOAD_ENDING] = "ending",
    [PROTO_UPLOAD_DONE] = "done",
};

static void next_request(struct proto_upload *u);
static void on_op(struct proto_reg_op *op, int err);

const char *proto_upload_state_name(enum proto_upload_state s)
{
    return (size_t)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

static void set_state(struct proto_upload *u, enum proto_upload_state s)
{
    LOG_DEBUG("upload to %s/%s: %s -> %s", u->reg->name, u->repo, state_names[u->state],
              state_names[s]);
    u->state = s;
}

static bool unlimited(uint64_t chunk)
{
    return chunk == 0 || chunk == UINT64_MAX;
}

void proto_upload_init(struct proto_upload *u, struct proto_registry *reg, const char *repo,
                       int64_t size)
{
    memset(u, 0, sizeof(*u));
    u->reg = reg;
    snprintf(u->repo, sizeof(u->repo), "%s", repo);
    u->size = size;
    u->available = UINT64_MAX;
}

/* Calls back once nothing is in flight any more. */
static void settle(struct proto_upload *u)
{
    if (u->state != PROTO_UPLOAD_ENDING || u->op_active || u->backoff.armed)
        return;
    free(u->location);
    u->location = NULL;
    set_state(u, PROTO_UPLOAD_DONE);
    /* The last thing: the owner may free u. */
    u->cbs->done(u, u->err);
}

/* Records the outcome (the first counts) and winds down; errmsg may already be set. */
__attribute__((format(printf, 3, 4))) static void end(struct proto_upload *u, int err,
                                                      const char *fmt, ...)
{
    if (u->state == PROTO_UPLOAD_ENDING || u->state == PROTO_UPLOAD_DONE)
        return;
    u->err = err;
    if (err != 0 && fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(u->errmsg, sizeof(u->errmsg), fmt, ap);
        va_end(ap);
    }
    set_state(u, PROTO_UPLOAD_ENDING);
    loop_delay_cancel(&u->backoff);
    /* A request in flight ends now; its callback settles. */
    if (u->op_active)
        proto_http_abort(&u->op.http, err != 0 ? err : UV_ECANCELED);
    settle(u);
}

/* ------------------------------------------------------------------------------------------ */
/* The body: the owner's source, counted */

static int up_peek(void *arg, const char **data, size_t *len)
{
    struct proto_upload *u = arg;
    *len = 0;
    if (u->state == PROTO_UPLOAD_ENDING || u->state == PROTO_UPLOAD_DONE)
        return u->err != 0 ? u->err : UV_ECANCELED;
    return u->source.peek(u->source.arg, data, len);
}

static void up_consume(void *arg, size_t n)
{
    struct proto_upload *u = arg;
    u->consumed += n;
    u->source.consume(u->source.arg, n);
}

/* ------------------------------------------------------------------------------------------ */
/* Requests */

/*
 * Starts u->op (prepared with err from its constructor): 0, or the error,
 * kept in u->errmsg, with the op disposed of.
 */
static int start_op(struct proto_upload *u, int err)
{
    u->op.data = u;
    if (err == 0)
        err = proto_reg_op_start(&u->op, on_op);
    if (err != 0) {
        snprintf(u->errmsg, sizeof(u->errmsg), "%s",
                 u->op.errmsg[0] ? u->op.errmsg : ocisync_strerror(err));
        proto_reg_op_dispose(&u->op);
        return err;
    }
    u->op_active = true;
    return 0;
}

/* start_op for a request after the first: a failure ends the upload. */
static void send_op(struct proto_upload *u, int err)
{
    err = start_op(u, err);
    if (err != 0)
        end(u, err, NULL);
}

/* PUT ?digest=: with the whole body (a one-request upload), or closing the PATCHes. */
static void commit(struct proto_upload *u)
{
    struct proto_body body = {.peek = up_peek, .consume = up_consume, .arg = u};
    bool with_body = u->one_put && u->size > 0;
    set_state(u, PROTO_UPLOAD_COMMITTING);
    body.length = u->size;
    u->req_len = with_body ? (uint64_t)u->size : 0;
    send_op(u,
            proto_reg_upload_put(&u->op, u->reg, u->location, u->digest, with_body ? &body : NULL));
}

/* Starts the next PATCH, or moves to the commit, when the source allows. */
static void next_request(struct proto_upload *u)
{
    struct proto_body body = {.peek = up_peek, .consume = up_consume, .arg = u};
    uint64_t total, have;

    if (u->state != PROTO_UPLOAD_SENDING || u->op_active)
        return;
    if (u->size >= 0 && u->sent == (uint64_t)u->size) {
        set_state(u, PROTO_UPLOAD_SENT);
        if (u->finished)
            commit(u);
        return;
    }
    if (unlimited(u->chunk)) {
        /* One streamed PATCH for everything: its body ends when the source says so. */
        if (u->sent > 0)
            return;
        body.length = -1;
        u->req_len = 0;
    } else {
        total = u->size >= 0 ? (uint64_t)u->size : UINT64_MAX;
        have = (u->finished ? total : (u->available < total ? u->available : total)) - u->sent;
        if (have == 0 || (have < u->chunk && !u->finished && u->available != UINT64_MAX))
            return;
        body.length = (int64_t)(have < u->chunk ? have : u->chunk);
        u->req_len = (uint64_t)body.length;
    }
    send_op(u, proto_reg_upload_patch(&u->op, u->reg, u->location, u->sent, &body));
}

/* A request failed: resume a cut PATCH if the owner can, else end with the error. */
static void failed(struct proto_upload *u, int err)
{
    struct proto_reg_op *op = &u->op;
    bool patch = u->state == PROTO_UPLOAD_SENDING;
    u->transient = proto_reg_op_transient(op, err);
    /* The registry layer retries what it can resend; a streamed body it cannot. */
    u->restartable = err == OCISYNC_EUNAUTHORIZED ||
                     (op->http.has_body && op->http.body.rewind == NULL && u->transient);
    /* An upload the registry no longer knows ("resumed at wrong offset"): start over. */
    if (u->state == PROTO_UPLOAD_ASKING)
        u->transient = u->restartable = true;
    snprintf(u->errmsg, sizeof(u->errmsg), "%s",
             op->errmsg[0] ? op->errmsg : ocisync_strerror(err));
    proto_reg_op_dispose(op);
    if (patch && u->cbs->cut != NULL && u->location != NULL && u->transient &&
        err != UV_ECANCELED && u->resumes < u->reg->retry.max_retries) {
        LOG_DEBUG("upload to %s/%s: PATCH cut at %llu bytes (%s); retry from the registry's offset",
                  u->reg->name, u->repo, (unsigned long long)u->sent, u->errmsg);
        set_state(u, PROTO_UPLOAD_CUT);
        if (u->cbs->cut(u))
            return;
    }
    end(u, err, NULL);
}

/* The registry answered a status GET: continue from its offset, or give up. */
static void resumed(struct proto_upload *u)
{
    int64_t have = proto_reg_upload_offset(&u->op);
    char *loc = proto_reg_upload_location(&u->op);
    int err;
    proto_reg_op_dispose(&u->op);
    /* Unknown ("0-0"), or more than was ever sent: no safe place to continue. */
    if (have < 0 || (uint64_t)have < u->sent || (uint64_t)have > u->consumed || loc == NULL) {
        free(loc);
        u->transient = u->restartable = true;
        end(u, OCISYNC_EUPLOAD, "registry %s: upload to %s: the registry reports no usable offset",
            u->reg->name, u->repo);
        return;
    }
    LOG_DEBUG("upload to %s/%s: the registry holds %lld bytes; continuing from there", u->reg->name,
              u->repo, (long long)have);
    free(u->location);
    u->location = loc;
    u->sent = u->consumed = (uint64_t)have;
    err = u->cbs->rewind(u, (uint64_t)have);
    if (err != 0) {
        end(u, err, "upload to %s/%s: cannot go back to byte %lld: %s", u->reg->name, u->repo,
            (long long)have, ocisync_strerror(err));
        return;
    }
    set_state(u, PROTO_UPLOAD_SENDING);
    next_request(u);
}

/* The upload is open (202): how the bytes will go. */
static void opened(struct proto_upload *u, char *loc)
{
    uint64_t min = proto_reg_chunk_min(&u->op);
    proto_reg_op_dispose(&u->op);
    u->location = loc;
    if (!unlimited(u->chunk) && min > u->chunk)
        u->chunk = min;
    u->one_put = u->size >= 0 && u->digest[0] != '\0' &&
                 (unlimited(u->chunk) || (uint64_t)u->size <= u->chunk);
    if (u->cbs->opened != NULL)
        u->cbs->opened(u);
    if (u->state != PROTO_UPLOAD_OPENING)
        return; /* the owner ended it */
    if (u->one_put && u->size > 0) {
        /* The source holds back its last byte until verified: the commit is safe at once. */
        commit(u);
        return;
    }
    if (u->one_put) {
        /* Nothing to send: the commit waits for the owner's word that the blob is right. */
        set_state(u, PROTO_UPLOAD_SENT);
        if (u->finished)
            commit(u);
        return;
    }
    set_state(u, PROTO_UPLOAD_SENDING);
    next_request(u);
}

static void on_op(struct proto_reg_op *op, int err)
{
    struct proto_upload *u = op->data;
    char *loc;

    u->op_active = false;
    if (u->state == PROTO_UPLOAD_ENDING) {
        proto_reg_op_dispose(op);
        settle(u);
        return;
    }
    if (err != 0) {
        failed(u, err);
        return;
    }
    switch (u->state) {
    case PROTO_UPLOAD_OPENING:
        if (proto_reg_status(op) == 201) {
            proto_reg_op_dispose(op);
            u->mounted = true;
            end(u, 0, NULL);
            return;
        }
        /* 202, like a PATCH's answer, carries the newest Location. */
        __attribute__((fallthrough));
    case PROTO_UPLOAD_SENDING:
        loc = proto_reg_upload_location(op);
        if (loc == NULL) {
            snprintf(u->errmsg, sizeof(u->errmsg), "%s", op->errmsg);
            proto_reg_op_dispose(op);
            end(u, OCISYNC_EUPLOAD, NULL);
            return;
        }
        if (u->state == PROTO_UPLOAD_OPENING) {
            opened(u, loc);
            return;
        }
        /* A chunk landed: the connection took exactly its body (http caps it at its length). */
        u->sent = u->req_len > 0 ? u->sent + u->req_len : u->consumed;
        proto_reg_op_dispose(op);
        free(u->location);
        u->location = loc;
        next_request(u);
        return;
    case PROTO_UPLOAD_ASKING:
        resumed(u);
        return;
    case PROTO_UPLOAD_COMMITTING: {
        const char *dcd = proto_http_header(&op->http, "Docker-Content-Digest");
        if (dcd != NULL && strcmp(dcd, u->digest) != 0) {
            char got[PROTO_UPLOAD_DIGEST_MAX];
            snprintf(got, sizeof(got), "%s", dcd);
            proto_reg_op_dispose(op);
            end(u, OCISYNC_EDIGESTMISMATCH, "registry %s: upload of %s was stored as %s",
                u->reg->name, u->digest, got);
            return;
        }
        proto_reg_op_dispose(op);
        u->sent = u->size >= 0 ? (uint64_t)u->size : u->consumed;
        end(u, 0, NULL);
        return;
    }
    default:
        proto_reg_op_dispose(op);
        return;
    }
}

static void ask_now(struct loop_delay *d)
{
    struct proto_upload *u = container_of(d, struct proto_upload, backoff);
    if (u->state == PROTO_UPLOAD_ENDING) {
        settle(u);
        return;
    }
    set_state(u, PROTO_UPLOAD_ASKING);
    send_op(u, proto_reg_upload_status(&u->op, u->reg, u->location));
}

/* ------------------------------------------------------------------------------------------ */
/* API */

int proto_upload_start(struct proto_upload *u)
{
    int err;
    u->state = PROTO_UPLOAD_OPENING;
    err =
        proto_reg_upload_start(&u->op, u->reg, u->repo,
                               u->mount_digest[0] != '\0' ? u->mount_digest : NULL, u->mount_from);
    u->op.scope = u->scope;
    return start_op(u, err);
}

void proto_upload_body_ready(struct proto_upload *u, uint64_t available)
{
    u->available = available;
    if (u->op_active && (u->state == PROTO_UPLOAD_SENDING || u->state == PROTO_UPLOAD_COMMITTING))
        proto_http_body_ready(&u->op.http);
    else
        next_request(u);
}

void proto_upload_finish(struct proto_upload *u, const char *digest, int64_t size)
{
    if (u->state >= PROTO_UPLOAD_ENDING)
        return;
    if (digest != NULL)
        snprintf(u->digest, sizeof(u->digest), "%s", digest);
    if (size >= 0)
        u->size = size;
    u->finished = true;
    /* A streamed PATCH whose every byte is out needs to hear that its body has ended. */
    if (u->op_active)
        proto_http_body_ready(&u->op.http);
    if (u->state == PROTO_UPLOAD_SENT)
        commit(u);
    else
        next_request(u);
}

void proto_upload_continue(struct proto_upload *u)
{
    uint64_t ms;
    if (u->state != PROTO_UPLOAD_CUT)
        return;
    ms = proto_reg_backoff_ms(&u->reg->retry, u->resumes, NULL);
    u->resumes++;
    set_state(u, PROTO_UPLOAD_BACKOFF);
    loop_delay_start(u->reg->client->loop, &u->backoff, ms, ask_now);
}

void proto_upload_abort(struct proto_upload *u, int err)
{
    end(u, err != 0 ? err : UV_ECANCELED, "upload to %s/%s stopped", u->reg->name, u->repo);
}
