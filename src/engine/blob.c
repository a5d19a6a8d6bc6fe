/*
 * One blob's transfer from its source (a registry GET, or a file of the
 * source layout) to its destination (a registry upload, or a temp file of
 * the destination layout), through a relay that hashes what passes.
 *
 * The life of a blob (enum blob_state; set_state logs every change):
 *
 *   QUEUED --slot--> CHECKING (HEAD) ----404----> MOVING --both halves done--> DONE
 *      |               |200 -> DONE (skipped)        |
 *      +--> PROBING (its HEAD sent ahead) ---------->+ (or DONE when present)
 *      +--> PARKED (another image sends it here) --woken--> QUEUED path again,
 *      |                                                    mounting from there
 *      +--> MOVING at once (a mount: same registry, or where another image put it)
 *
 *   MOVING --failure--> STOPPING --both halves stopped--> BACKOFF --> MOVING
 *                                                     \--> DONE (failed)
 *
 * While MOVING, two halves run side by side (h2o's http1client keeps a
 * request and a response half the same way):
 *   source: IDLE -> RUNNING -> DONE (every byte in the relay, digest verified)
 *           RUNNING -> BACKOFF -> RUNNING (a GET cut on the way goes on with Range)
 *   sink:   IDLE -> RUNNING -> DONE (committed or mounted)
 *           RUNNING -> CUT -> RUNNING (a PATCH cut on the way goes on from the
 *           registry's offset, once the source has stopped and gone back there)
 * The relay holds back the last byte until the digest is verified, so the
 * sink can never commit content the source has not proven.
 *
 * Every event of either half ends in settle(), the one place that decides
 * what the blob does next.
 */
#include "engine/copy_internal.h"

#include "common/log.h"
#include "oci/recompress.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_READ_SIZE (256 * 1024)
/* Layout sink writes, at most this much at a time. */
#define SINK_WRITE_MAX (4 * 1024 * 1024)
/* A recompressed blob: compressed bytes taken from the relay per piece on the thread pool. */
#define XC_PIECE (256 * 1024)

/*
 * A blob recompressed on the way. Between the relay (the source's bytes,
 * verified as ever) and the sink sits a two-stage pipeline: a piece of the
 * relay is recompressed on the thread pool while the sink sends the output
 * of the piece before (ready). The last piece is the finish, which flushes
 * the compressor and gives the new digest and size; only then is the source
 * half DONE and the sink told the name to commit under. The output cannot
 * be made again from the middle, so a cut upload starts the blob over.
 */
struct copy_xcode {
    struct oci_recompress r;
    bool r_ready;
    uv_work_t work;
    bool busy;                /* a piece, or the finish, is on the pool */
    bool finishing;           /* the work is the finish */
    bool got_all;             /* the source ended: every byte is in the relay, verified */
    bool abort;               /* stop at the work in flight */
    bool kicking, kick_again; /* inside xc_kick, and asked for another round meanwhile */
    unsigned char *in;        /* XC_PIECE bytes; owned */
    size_t in_len;
    int rc;
    char msg[512];
    unsigned char *ready; /* output for the sink; owned */
    size_t ready_len, ready_off;
};

static const char *const state_names[] = {
    [BLOB_QUEUED] = "queued",     [BLOB_PARKED] = "parked", [BLOB_PROBING] = "probing",
    [BLOB_CHECKING] = "checking", [BLOB_MOVING] = "moving", [BLOB_STOPPING] = "stopping",
    [BLOB_BACKOFF] = "backoff",   [BLOB_DONE] = "done",
};
static const char *const src_names[] = {
    [SRC_IDLE] = "idle", [SRC_RUNNING] = "running", [SRC_BACKOFF] = "backoff", [SRC_DONE] = "done"};
static const char *const sink_names[] = {
    [SINK_IDLE] = "idle", [SINK_RUNNING] = "running", [SINK_CUT] = "cut", [SINK_DONE] = "done"};

static void settle(struct copy_blob *b);
static void xc_adopt(struct copy_blob *b);
static void xc_kick(struct copy_blob *b);
static void start_move(struct copy_blob *b);
static int start_source(struct copy_blob *b);
static void stop_source(struct copy_blob *b);
static void stop_sink(struct copy_blob *b);
static void release(struct copy_blob *b, bool ok);
static void route(struct copy_blob *b);

static void set_state(struct copy_blob *b, enum blob_state s)
{
    LOG_DEBUG("blob %.19s: %s -> %s", b->desc.digest.str, state_names[b->state], state_names[s]);
    b->state = s;
}

static void set_src(struct copy_blob *b, enum blob_src s)
{
    LOG_DEBUG("blob %.19s: source %s -> %s", b->desc.digest.str, src_names[b->src], src_names[s]);
    b->src = s;
}

static void set_sink(struct copy_blob *b, enum blob_sink s)
{
    LOG_DEBUG("blob %.19s: sink %s -> %s", b->desc.digest.str, sink_names[b->sink], sink_names[s]);
    b->sink = s;
}

/* Whether b is read from the source layout (else from a registry). */
static bool from_file(const struct copy_blob *b)
{
    return b->job->src_lay != NULL && b->origin == NULL;
}

static bool to_layout(const struct copy_blob *b)
{
    return b->job->dst_lay != NULL;
}

static void xc_free(struct copy_blob *b)
{
    struct copy_xcode *x = b->xc;
    if (x == NULL || x->busy)
        return;
    if (x->r_ready)
        oci_recompress_dispose(&x->r);
    free(x->in);
    free(x->ready);
    free(x);
    b->xc = NULL;
}

static void relay_free(struct copy_blob *b)
{
    xc_free(b);
    if (b->relay_ready) {
        engine_relay_dispose(&b->relay);
        b->relay_ready = false;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Ending */

/* b's transfer worked (outcome: copied, mounted, skipped). */
static void done(struct copy_blob *b, int outcome)
{
    struct copy_job *job = b->job;
    b->outcome = outcome;
    release(b, true);
    relay_free(b);
    engine__job_blob_done(job, b);
    engine__pump(job->ctx);
}

/* b's transfer ended without it (failed, or stopped with its image): the image goes on. */
static void ended(struct copy_blob *b)
{
    struct copy_job *job = b->job;
    release(b, false);
    relay_free(b);
    engine__job_settle(job);
    engine__pump(job->ctx);
}

/*
 * b cannot be transferred: its image fails (with a message naming the
 * blob for the two failures that are the content's own).
 */
static void fail_job(struct copy_blob *b, int err, const char *msg)
{
    struct copy_job *job = b->job;
    if (job->err != 0)
        return;
    if (b->xc != NULL && b->xc->rc == err && b->xc->msg[0])
        engine__job_fail(job, err, "%s", b->xc->msg); /* the recompression's, naming the layer */
    else if (err == OCISYNC_EDIGESTMISMATCH)
        engine__job_fail(job, err,
                         "blob %s from %s/%s does not match its digest; nothing was pushed for it",
                         b->desc.digest.str, job->src.registry, job->src.repository);
    else if (err == OCISYNC_ESIZEMISMATCH)
        engine__job_fail(
            job, err, "blob %s from %s/%s does not have the size its manifest gives (%lld)",
            b->desc.digest.str, job->src.registry, job->src.repository, (long long)b->desc.size);
    else
        engine__job_fail(job, err, "%s", msg != NULL && msg[0] ? msg : ocisync_strerror(err));
}

/*
 * Stops b's transfer (why: start over, or fail the image with err): both
 * halves are told, and settle() goes on once neither is running.
 */
static void stop(struct copy_blob *b, enum blob_stop why, int err, const char *msg)
{
    if (why == STOP_FAIL)
        fail_job(b, err, msg); /* engine__job_fail calls engine__blob_abort, which stops b */
    if (b->state == BLOB_STOPPING) {
        if (why == STOP_FAIL)
            b->stop = STOP_FAIL;
        return;
    }
    if (b->state != BLOB_MOVING) {
        /* Nothing of it runs (a HEAD failed, a start failed): it ends here. */
        if (b->state != BLOB_DONE)
            ended(b);
        return;
    }
    b->stop = why;
    set_state(b, BLOB_STOPPING);
    stop_source(b);
    stop_sink(b);
    settle(b);
}

/*
 * Whether a failure (transient or not; restartable: the registry layer
 * could not retry it) starts b over: an expired token at once, up to
 * twice; a transient failure after a backoff, up to --retry-times.
 */
static bool may_restart(struct copy_blob *b, int err, bool transient, bool restartable,
                        const char *msg)
{
    struct copy_job *job = b->job;
    const struct proto_retry *policy;
    if (job->err != 0 || err == UV_ECANCELED || to_layout(b) || !restartable)
        return false;
    policy = &job->dst_reg->retry;
    if (err == OCISYNC_EUNAUTHORIZED && b->auth_restarts < 2) {
        b->auth_restarts++;
        b->restart_delay_ms = 0;
    } else if (transient && b->restarts < policy->max_retries) {
        b->restart_delay_ms = proto_reg_backoff_ms(policy, b->restarts, NULL);
        b->restarts++;
    } else {
        return false;
    }
    LOG_DEBUG("blob %s: retry of the whole transfer in %llu ms after: %s", b->desc.digest.str,
              (unsigned long long)b->restart_delay_ms,
              msg != NULL && msg[0] ? msg : ocisync_strerror(err));
    return true;
}

static void restart_now(struct loop_delay *d)
{
    struct copy_blob *b = container_of(d, struct copy_blob, backoff);
    relay_free(b);
    b->stop = STOP_NONE;
    start_move(b);
}

/*
 * The one place that decides what b does next, after any event of either
 * half: a blob whose halves are done is done; a blob stopping whose halves
 * have stopped starts over or ends; a cut upload resumes once its source
 * has stopped.
 */
static void settle(struct copy_blob *b)
{
    struct copy_job *job = b->job;
    switch (b->state) {
    case BLOB_MOVING:
        if (b->sink == SINK_CUT && b->src != SRC_RUNNING) {
            if (b->src == SRC_BACKOFF) {
                loop_delay_cancel(&b->get_backoff);
                set_src(b, SRC_IDLE);
            }
            set_sink(b, SINK_RUNNING);
            proto_upload_continue(&b->io->up);
            return;
        }
        if (b->sink == SINK_DONE && b->io != NULL && !to_layout(b) && b->io->up.mounted &&
            b->src != SRC_RUNNING) {
            done(b, OCISYNC_EV_BLOB_MOUNTED);
            return;
        }
        if (b->sink == SINK_DONE && b->src == SRC_DONE) {
            if (b->xc != NULL)
                xc_adopt(b);
            done(b, OCISYNC_EV_BLOB_COPIED);
        }
        return;
    case BLOB_STOPPING:
        if (b->src == SRC_RUNNING || b->sink == SINK_RUNNING || b->sink_busy ||
            (b->xc != NULL && b->xc->busy))
            return;
        if (b->src == SRC_BACKOFF) {
            loop_delay_cancel(&b->get_backoff);
            set_src(b, SRC_IDLE);
        }
        if (b->stop == STOP_RESTART && job->err == 0) {
            set_state(b, BLOB_BACKOFF);
            loop_delay_start(&job->ctx->s.loop, &b->backoff, b->restart_delay_ms, restart_now);
            return;
        }
        ended(b);
        return;
    default:
        return;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Progress events */

/* Reports the start of b's transfer once, then its progress at most ten times a second. */
static void progress(struct copy_blob *b)
{
    struct copy_job *job = b->job;
    uint64_t now;
    if (job->opts->on_event == NULL)
        return;
    if (!b->start_emitted) {
        b->start_emitted = true;
        b->progress_ms = uv_now(&job->ctx->s.uv);
        engine__emit(job, OCISYNC_EV_BLOB_START, b->desc.digest.str, b->desc.media_type, NULL,
                     b->desc.size);
        return;
    }
    now = uv_now(&job->ctx->s.uv);
    if (now - b->progress_ms < 100 && b->relay.in < (uint64_t)b->desc.size)
        return;
    b->progress_ms = now;
    {
        struct ocisync_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.kind = OCISYNC_EV_BLOB_PROGRESS;
        ev.image = job->index;
        ev.digest = b->desc.digest.str;
        ev.media_type = b->desc.media_type;
        ev.size = b->desc.size;
        ev.bytes = b->relay.in;
        job->opts->on_event(&ev, job->opts->event_arg);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The source half */

static void sink_kick(struct copy_blob *b);

/* The sink has more bytes to take. */
static void sink_wake(struct copy_blob *b)
{
    if (to_layout(b))
        sink_kick(b);
    else if (b->sink == SINK_RUNNING)
        proto_upload_body_ready(&b->io->up, UINT64_MAX);
}

/* Bytes reached the relay: the sink (or the recompression before it) may take them. */
static void source_bytes(struct copy_blob *b)
{
    progress(b);
    if (b->xc != NULL)
        xc_kick(b);
    else
        sink_wake(b);
}

static void resume_get(struct loop_delay *d)
{
    struct copy_blob *b = container_of(d, struct copy_blob, get_backoff);
    int err;
    LOG_DEBUG("blob %s: resuming the download at byte %llu", b->desc.digest.str,
              (unsigned long long)b->relay.in);
    err = start_source(b);
    if (err != 0) {
        set_src(b, SRC_IDLE);
        stop(b, STOP_FAIL, err, b->io->get.errmsg);
    }
}

/*
 * The source ended (op: its GET, or NULL for a layout file). On success
 * the relay holds verified content; otherwise the source goes on with
 * Range, or the blob starts over or fails.
 */
static void source_end(struct copy_blob *b, struct proto_reg_op *op, int err, const char *msg)
{
    struct copy_job *job = b->job;
    bool transient = op != NULL && proto_reg_op_transient(op, err);
    bool passed = op != NULL && proto_reg_op_body_bytes(op) > 0;
    char why[PROTO_REG_ERRMSG_MAX];
    snprintf(why, sizeof(why), "%s", msg != NULL ? msg : "");
    if (op != NULL)
        proto_reg_op_dispose(op);
    if (err == 0 && b->relay.in != b->relay.size)
        err = OCISYNC_ESIZEMISMATCH;
    if (err == 0 && !b->relay.verified)
        err = OCISYNC_EDIGESTMISMATCH;
    if (err == 0 && b->xc != NULL) {
        /* Still RUNNING: the recompression ends the source half (xc_after). */
        b->xc->got_all = true;
        xc_kick(b);
        return;
    }
    if (err == 0) {
        set_src(b, SRC_DONE);
        if (to_layout(b))
            sink_kick(b); /* the held-back byte may go now, then the commit */
        else if (b->sink == SINK_RUNNING || b->sink == SINK_CUT)
            proto_upload_finish(&b->io->up, NULL, -1);
        settle(b);
        return;
    }
    set_src(b, SRC_IDLE);
    /* Stopped on purpose: for a stop, or for a cut upload that goes back to an earlier byte. */
    if (b->state == BLOB_STOPPING || b->sink == SINK_CUT || job->err != 0) {
        settle(b);
        if (b->state == BLOB_MOVING && job->err != 0)
            stop(b, STOP_FAIL, err, why);
        return;
    }
    /* A GET cut after some bytes: ask for the rest with Range while the sink waits. */
    if (op != NULL && err != UV_ERANGE && !b->relay.failed && b->relay.in > 0 &&
        b->relay.in < b->relay.size && transient) {
        const struct proto_retry *policy =
            b->origin ? &b->origin->reg->retry : &job->src_reg->retry;
        if (b->get_resumes < policy->max_retries) {
            uint64_t ms = proto_reg_backoff_ms(policy, b->get_resumes, NULL);
            b->get_resumes++;
            LOG_DEBUG("blob %s: download cut at byte %llu (%s); retry with Range in %llu ms",
                      b->desc.digest.str, (unsigned long long)b->relay.in, why,
                      (unsigned long long)ms);
            set_src(b, SRC_BACKOFF);
            loop_delay_start(&job->ctx->s.loop, &b->get_backoff, ms, resume_get);
            return;
        }
    }
    /* The source would not resume where we stopped (another range, a 200): start over. */
    if (err == UV_ERANGE) {
        if (may_restart(b, err, true, true, why)) {
            stop(b, STOP_RESTART, 0, NULL);
            return;
        }
        err = OCISYNC_EREGISTRY;
    } else if (op != NULL &&
               may_restart(b, err, transient, passed || err == OCISYNC_EUNAUTHORIZED, why)) {
        stop(b, STOP_RESTART, 0, NULL);
        return;
    }
    stop(b, STOP_FAIL, err, why[0] ? why : b->file_err);
}

static int get_on_body(struct proto_reg_op *op, const char *data, size_t len)
{
    struct copy_blob *b = op->data;
    int rc = engine_relay_push(&b->relay, data, len);
    if (rc < 0)
        return rc;
    source_bytes(b);
    return rc == 1 ? PROTO_PAUSE : 0;
}

static void on_get_done(struct proto_reg_op *op, int err)
{
    struct copy_blob *b = op->data;
    source_end(b, op, err, op->errmsg);
}

/* Closes the source layout's file, if open. */
static void close_file(struct copy_blob *b)
{
    if (b->fd >= 0) {
        uv_fs_t req;
        uv_fs_close(NULL, &req, b->fd, NULL);
        uv_fs_req_cleanup(&req);
        b->fd = -1;
    }
}

/* A layout source: read on the thread pool, pushed into the relay. */
static void file_finish(struct copy_blob *b, int err)
{
    close_file(b);
    source_end(b, NULL, err, b->file_err);
}

static void file_empty_done(struct loop_delay *d)
{
    struct copy_blob *b = container_of(d, struct copy_blob, get_backoff);
    file_finish(b, b->job->err != 0 ? UV_ECANCELED : 0);
}

static void file_read_next(struct copy_blob *b);

static void on_file_read(uv_fs_t *req)
{
    struct copy_blob *b = container_of(req, struct copy_blob, fs);
    ssize_t n = req->result;
    int rc;
    uv_fs_req_cleanup(req);
    if (b->file_abort || b->job->err != 0) {
        b->file_abort = false;
        file_finish(b, UV_ECANCELED);
        return;
    }
    if (n <= 0) {
        rc = n == 0 ? OCISYNC_ESIZEMISMATCH : (int)n;
        snprintf(b->file_err, sizeof(b->file_err), "blob %s in layout %s: %s", b->desc.digest.str,
                 b->job->src_lay->dir,
                 n == 0 ? "shorter than its descriptor says" : uv_strerror((int)n));
        file_finish(b, rc);
        return;
    }
    rc = engine_relay_push(&b->relay, b->fbuf, (size_t)n);
    if (rc < 0) {
        file_finish(b, rc);
        return;
    }
    source_bytes(b);
    if (b->relay.in >= b->relay.size) {
        file_finish(b, 0);
        return;
    }
    if (rc == 1)
        b->file_wait = true; /* relay_consumed reads on once there is room */
    else
        file_read_next(b);
}

static void file_read_next(struct copy_blob *b)
{
    uint64_t left = b->relay.size - b->relay.in;
    uv_buf_t buf = uv_buf_init(b->fbuf, left < FILE_READ_SIZE ? (unsigned)left : FILE_READ_SIZE);
    int err;
    b->file_wait = false;
    err =
        uv_fs_read(&b->job->ctx->s.uv, &b->fs, b->fd, &buf, 1, (int64_t)b->relay.in, on_file_read);
    if (err != 0) {
        snprintf(b->file_err, sizeof(b->file_err), "blob %s in layout %s: %s", b->desc.digest.str,
                 b->job->src_lay->dir, uv_strerror(err));
        b->file_abort = false;
        file_finish(b, err);
    }
}

/* Opens b's file in the source layout and starts reading at the relay's offset. */
static int start_file(struct copy_blob *b)
{
    struct copy_job *job = b->job;
    uint64_t size;
    int err;
    if (b->fbuf == NULL && (b->fbuf = malloc(FILE_READ_SIZE)) == NULL)
        return UV_ENOMEM;
    if (b->fd < 0) {
        err = oci_layout_blob_open(&job->src_lay->lay, &b->desc.digest, &b->fd, &size, b->file_err,
                                   sizeof(b->file_err));
        if (err != 0) {
            b->fd = -1;
            return err;
        }
        if (size != (uint64_t)b->desc.size) {
            snprintf(b->file_err, sizeof(b->file_err),
                     "blob %s in layout %s has %llu bytes, its descriptor says %lld",
                     b->desc.digest.str, job->src_lay->dir, (unsigned long long)size,
                     (long long)b->desc.size);
            return OCISYNC_ESIZEMISMATCH;
        }
    }
    set_src(b, SRC_RUNNING);
    if (b->relay.size == 0) {
        /* Nothing to read: the empty relay is already verified. */
        loop_delay_start(&job->ctx->s.loop, &b->get_backoff, 0, file_empty_done);
        return 0;
    }
    file_read_next(b);
    return 0;
}

/* Starts the source at the relay's offset: a (ranged) GET, or the layout file. */
static int start_source(struct copy_blob *b)
{
    struct copy_job *job = b->job;
    int err;
    progress(b);
    if (from_file(b))
        return start_file(b);
    err =
        proto_reg_blob_fetch(&b->io->get, b->origin ? b->origin->reg : job->src_reg,
                             b->origin ? b->origin->ref.repository : job->src.repository,
                             b->desc.digest.str, b->relay.in, (uint64_t)b->desc.size, get_on_body);
    b->io->get.data = b;
    if (err == 0)
        err = proto_reg_op_start(&b->io->get, on_get_done);
    if (err != 0) {
        snprintf(b->file_err, sizeof(b->file_err), "%s",
                 b->io->get.errmsg[0] ? b->io->get.errmsg : ocisync_strerror(err));
        proto_reg_op_dispose(&b->io->get);
        return err;
    }
    set_src(b, SRC_RUNNING);
    return 0;
}

/* The relay is ready (made now if need be) and the source running: 0 or an error. */
static int feed(struct copy_blob *b)
{
    int err;
    if (!b->relay_ready) {
        err = engine_relay_init(&b->relay, &b->desc.digest, (uint64_t)b->desc.size);
        if (err != 0)
            return err;
        b->relay_ready = true;
    }
    return b->src == SRC_IDLE ? start_source(b) : 0;
}

/* Stops the source; it reports its end through source_end. */
static void stop_source(struct copy_blob *b)
{
    if (b->src == SRC_BACKOFF) {
        loop_delay_cancel(&b->get_backoff);
        set_src(b, SRC_IDLE);
        return;
    }
    if (b->src != SRC_RUNNING)
        return;
    if (b->xc != NULL && b->xc->got_all) {
        /* Only the recompression runs: the work in flight, if any, ends it. */
        if (b->xc->busy)
            b->xc->abort = true;
        else
            set_src(b, SRC_IDLE);
        return;
    }
    if (!from_file(b)) {
        proto_reg_op_abort(&b->io->get, UV_ECANCELED);
    } else if (b->file_wait || b->get_backoff.armed) {
        /* No read in flight: end it here. */
        loop_delay_cancel(&b->get_backoff);
        b->file_wait = false;
        file_finish(b, UV_ECANCELED);
    } else {
        b->file_abort = true; /* the read in flight ends it */
    }
}

/* The relay has room again: a paused source goes on. */
static void source_resume(struct copy_blob *b)
{
    if (b->src != SRC_RUNNING || (b->xc != NULL && b->xc->got_all))
        return;
    if (!from_file(b))
        proto_reg_op_resume(&b->io->get);
    else if (b->file_wait)
        file_read_next(b);
}

/* The sink took n bytes out of the relay: a paused source may go on. */
static void relay_consumed(struct copy_blob *b, size_t n)
{
    if (engine_relay_consume(&b->relay, n))
        source_resume(b);
}

/* ------------------------------------------------------------------------------------------ */
/* Recompression between the relay and the sink (struct copy_xcode) */

/* The sink's bytes: the recompressed output when recompressing, else the relay's. */
static size_t sink_peek(struct copy_blob *b, const char **data, uint64_t max)
{
    struct copy_xcode *x = b->xc;
    size_t n;
    if (x == NULL)
        return engine_relay_peek(&b->relay, data, max);
    n = x->ready_len - x->ready_off;
    if (n > max)
        n = (size_t)max;
    *data = (const char *)x->ready + x->ready_off;
    return n;
}

/* The sink took n bytes of sink_peek's. */
static void sink_took(struct copy_blob *b, size_t n)
{
    struct copy_xcode *x = b->xc;
    if (x == NULL) {
        relay_consumed(b, n);
        return;
    }
    x->ready_off += n;
    if (x->ready_off == x->ready_len)
        xc_kick(b);
}

/* Whether the sink has taken every byte there will be (the source half is DONE). */
static bool sink_all_taken(const struct copy_blob *b)
{
    const struct copy_xcode *x = b->xc;
    if (x == NULL)
        return b->relay.out == b->relay.size;
    return x->ready_off == x->ready_len && x->r.out_len == 0;
}

/* The media type of a layer recompressed as ocisync_copy_opts.compression asks. */
static const char *xc_media_type(const struct copy_blob *b)
{
    bool docker = b->job->convert == CONVERT_DOCKER ||
                  strncmp(b->desc.media_type, "application/vnd.docker.", 23) == 0;
    return engine__recompressed_type(b->job->opts, docker);
}

/* A fresh recompression for b's transfer (again, when it starts over). */
static int xc_start(struct copy_blob *b)
{
    struct copy_job *job = b->job;
    struct copy_xcode *x;
    char what[OCI_UNPACK_WHAT_MAX];
    int err;
    xc_free(b);
    x = calloc(1, sizeof(*x));
    if (x == NULL)
        return UV_ENOMEM;
    b->xc = x;
    x->in = malloc(XC_PIECE);
    if (x->in == NULL)
        return UV_ENOMEM;
    snprintf(what, sizeof(what), "layer %s from %s/%s", b->desc.digest.str,
             b->origin ? b->origin->ref.registry : job->src.registry,
             b->origin ? b->origin->ref.repository : job->src.repository);
    err = oci_recompress_init(&x->r, (uint64_t)b->desc.size,
                              job->opts->compression == OCISYNC_ZSTD ? OCI_COMPRESS_ZSTD
                                                                     : OCI_COMPRESS_GZIP,
                              job->opts->compression_level, what);
    x->r_ready = true;
    if (err == OCISYNC_EUSAGE)
        snprintf(b->file_err, sizeof(b->file_err),
                 "--dest-compress-level %d is out of range for %s (gzip 1-9, zstd 1-19)",
                 job->opts->compression_level,
                 job->opts->compression == OCISYNC_ZSTD ? "zstd" : "gzip");
    return err;
}

static void xc_work(uv_work_t *req)
{
    struct copy_xcode *x = container_of(req, struct copy_xcode, work);
    if (x->finishing)
        x->rc = oci_recompress_finish(&x->r, NULL, x->msg, sizeof(x->msg));
    else
        x->rc = oci_recompress_feed(&x->r, x->in, x->in_len, x->msg, sizeof(x->msg));
}

static void xc_after(uv_work_t *req, int status)
{
    struct copy_blob *b = req->data;
    struct copy_xcode *x = b->xc;
    int err = status != 0 ? status : x->rc;
    x->busy = false;
    if (x->abort || b->state != BLOB_MOVING) {
        x->abort = false;
        if (b->src == SRC_RUNNING && x->got_all)
            set_src(b, SRC_IDLE);
        settle(b);
        return;
    }
    if (err != 0) {
        stop(b, STOP_FAIL, err, x->msg[0] ? x->msg : "the layer's recompression failed");
        return;
    }
    if (x->finishing) {
        /* Every byte of the new blob exists: the sink learns its name. */
        LOG_DEBUG("blob %s: recompressed to %s (%llu bytes; diff_id %s)", b->desc.digest.str,
                  x->r.digest.str, (unsigned long long)x->r.total_out, x->r.diff_id.str);
        set_src(b, SRC_DONE);
        if (to_layout(b)) {
            if (oci_layout_blob_rename(&b->w, &x->r.digest, (int64_t)x->r.total_out) != 0) {
                stop(b, STOP_FAIL, OCISYNC_EDIGEST, "cannot name the recompressed layer");
                return;
            }
        } else if (b->sink == SINK_RUNNING || b->sink == SINK_CUT) {
            proto_upload_finish(&b->io->up, x->r.digest.str, (int64_t)x->r.total_out);
        }
    }
    xc_kick(b);
    settle(b);
}

/*
 * One step of xc_kick; returns after anything that may call back into the
 * blob (the sink told of new bytes, the source resumed, a stop), so that
 * xc_kick can see what became of it.
 */
static void xc_step(struct copy_blob *b)
{
    struct copy_xcode *x = b->xc;
    const char *data;
    size_t n;
    bool resume = false;
    int err;
    if (x->busy || b->state != BLOB_MOVING)
        return;
    if (x->ready_off == x->ready_len && x->r.out_len > 0) {
        free(x->ready);
        x->ready = oci_recompress_take(&x->r, &x->ready_len);
        x->ready_off = 0;
        x->kick_again = true;
        sink_wake(b);
        return;
    }
    if (x->r.out_len > 0 || x->r.finished || b->src != SRC_RUNNING)
        return;
    x->in_len = 0;
    while (x->in_len < XC_PIECE &&
           (n = engine_relay_peek(&b->relay, &data, XC_PIECE - x->in_len)) > 0) {
        memcpy(x->in + x->in_len, data, n);
        x->in_len += n;
        resume |= engine_relay_consume(&b->relay, n);
    }
    x->finishing = x->in_len == 0;
    if (x->finishing && !(x->got_all && b->relay.out == b->relay.size))
        return; /* waiting for the source */
    x->work.data = b;
    err = uv_queue_work(&b->job->ctx->s.uv, &x->work, xc_work, xc_after);
    if (err != 0) {
        stop(b, STOP_FAIL, err, "cannot queue the layer's recompression");
        return;
    }
    x->busy = true;
    if (resume)
        source_resume(b);
}

/*
 * Moves the recompression on: output made goes to the sink once the sink
 * has taken the last; the next piece of the relay (or the finish, once the
 * source has ended) goes to the pool once the output before it is out.
 * Calls from inside (the sink taking bytes at once) only ask for another
 * round.
 */
static void xc_kick(struct copy_blob *b)
{
    struct copy_xcode *x = b->xc;
    if (x == NULL)
        return;
    if (x->kicking) {
        x->kick_again = true;
        return;
    }
    x->kicking = true;
    do {
        x->kick_again = false;
        xc_step(b);
        if (b->xc != x)
            return; /* the blob ended meanwhile, and x with it */
    } while (x->kick_again && b->state == BLOB_MOVING);
    x->kicking = false;
}

/* b's recompressed blob is at the destination: desc names it from now on. */
static void xc_adopt(struct copy_blob *b)
{
    struct copy_xcode *x = b->xc;
    b->src_digest = b->desc.digest;
    b->desc.digest = x->r.digest;
    b->desc.size = (int64_t)x->r.total_out;
    snprintf(b->desc.media_type, sizeof(b->desc.media_type), "%s", xc_media_type(b));
    b->recompressed = true;
}

/* ------------------------------------------------------------------------------------------ */
/* The sink half: an upload to the destination registry */

static int up_peek(void *arg, const char **data, size_t *len)
{
    struct copy_blob *b = arg;
    *len = sink_peek(b, data, UINT64_MAX);
    /* A recompressed blob goes in a body of unknown length, which ends here. */
    if (*len == 0 && b->xc != NULL && b->src == SRC_DONE && sink_all_taken(b))
        return PROTO_BODY_EOF;
    return 0;
}

static void up_consume(void *arg, size_t n)
{
    sink_took(arg, n);
}

/* The registry opened an upload: a source that waited for a mount's answer starts now. */
static void up_opened(struct proto_upload *u)
{
    struct copy_blob *b = u->data;
    int err;
    b->opened = true;
    err = feed(b);
    if (err != 0) {
        proto_upload_abort(u, err);
        stop(b, STOP_FAIL, err, b->file_err);
    }
}

/* A PATCH was cut: the source stops, and settle() resumes the upload once it has. */
static bool up_cut(struct proto_upload *u)
{
    struct copy_blob *b = u->data;
    /* Recompressed output cannot be made again from the middle: it starts over instead. */
    if (b->state != BLOB_MOVING || b->job->err != 0 || b->xc != NULL)
        return false;
    set_sink(b, SINK_CUT);
    stop_source(b);
    settle(b);
    return true;
}

/* The registry holds have bytes: the relay goes back there, and the source with it. */
static int up_rewind(struct proto_upload *u, uint64_t have)
{
    struct copy_blob *b = u->data;
    engine_relay_rewind(&b->relay, have);
    if (have < (uint64_t)b->desc.size) {
        if (b->src == SRC_DONE)
            set_src(b, SRC_IDLE);
        return start_source(b);
    }
    return 0;
}

static void up_done(struct proto_upload *u, int err)
{
    struct copy_blob *b = u->data;
    struct copy_job *job = b->job;
    set_sink(b, err == 0 ? SINK_DONE : SINK_IDLE);
    if (err == 0 || b->state != BLOB_MOVING) {
        settle(b);
        return;
    }
    if (b->mounting && !b->opened && b->mount_from != NULL && !job->same_registry &&
        job->err == 0) {
        /* The mount from another image's repository was refused: send the blob itself. */
        LOG_DEBUG("blob %s: mount from %s refused (%s); uploading it", b->desc.digest.str,
                  b->mount_from, u->errmsg);
        free(b->mount_from);
        b->mount_from = NULL;
        set_state(b, BLOB_QUEUED);
        route(b);
        return;
    }
    if (may_restart(b, err, u->transient, u->restartable, u->errmsg)) {
        stop(b, STOP_RESTART, 0, NULL);
        return;
    }
    stop(b, STOP_FAIL, err, u->errmsg);
}

static const struct proto_upload_cbs up_cbs = {
    .opened = up_opened,
    .cut = up_cut,
    .rewind = up_rewind,
    .done = up_done,
};

/*
 * The upload, and the source with it: unless a mount may make it
 * unnecessary, the source starts with the POST instead of after it (the
 * relay fills, and pauses the GET, until the upload begins), saving one
 * round trip per blob.
 */
static int start_upload(struct copy_blob *b)
{
    struct copy_job *job = b->job;
    struct proto_upload *u = &b->io->up;
    int err;
    proto_upload_init(u, job->dst_reg, job->dst.repository, b->xc != NULL ? -1 : b->desc.size);
    if (b->xc == NULL)
        snprintf(u->digest, sizeof(u->digest), "%s", b->desc.digest.str);
    u->chunk = job->chunk_size;
    u->source.peek = up_peek;
    u->source.consume = up_consume;
    u->source.arg = b;
    u->cbs = &up_cbs;
    u->data = b;
    b->opened = false;
    b->mounting = b->xc == NULL && (job->same_registry || b->mount_from != NULL);
    if (!b->mounting) {
        /* Nothing to mount. */
    } else if (b->mount_from != NULL) {
        snprintf(u->mount_digest, sizeof(u->mount_digest), "%s", b->desc.digest.str);
        u->mount_from = b->mount_from;
        u->scope = b->mount_scope;
    } else if (job->same_registry) {
        snprintf(u->mount_digest, sizeof(u->mount_digest), "%s", b->desc.digest.str);
        u->mount_from = job->src.repository;
    }
    if (!b->mounting && b->desc.size > 0) {
        err = feed(b);
        if (err != 0)
            return err;
    }
    err = proto_upload_start(u);
    if (err != 0) {
        snprintf(b->file_err, sizeof(b->file_err), "%s", u->errmsg);
        return err;
    }
    set_sink(b, SINK_RUNNING);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The sink half: a temp file of the destination layout, written on the thread pool */

static void sink_work(uv_work_t *req)
{
    struct copy_blob *b = container_of(req, struct copy_blob, work);
    if (b->sink_commit)
        b->sink_err = oci_layout_blob_commit(&b->w, b->sink_msg, sizeof(b->sink_msg));
    else
        b->sink_err = oci_layout_blob_write(&b->w, b->sink_data, b->sink_len, b->sink_msg,
                                            sizeof(b->sink_msg));
}

static void sink_after(uv_work_t *req, int status)
{
    struct copy_blob *b = container_of(req, struct copy_blob, work);
    int err = status != 0 ? status : b->sink_err;
    b->sink_busy = false;
    if (b->sink_commit)
        b->w_open = false; /* a commit, failed or not, leaves nothing open */
    if (err == 0 && b->state == BLOB_MOVING) {
        if (b->sink_commit) {
            set_sink(b, SINK_DONE);
            settle(b);
            return;
        }
        sink_took(b, b->sink_len);
        sink_kick(b);
        return;
    }
    if (b->w_open) {
        oci_layout_blob_abort(&b->w);
        b->w_open = false;
    }
    set_sink(b, SINK_IDLE);
    if (b->state == BLOB_MOVING)
        stop(b, STOP_FAIL, err, b->sink_msg);
    else
        settle(b);
}

/* Writes what the relay holds, or commits once everything is written and verified. */
static void sink_kick(struct copy_blob *b)
{
    const char *data;
    size_t n;
    int err;
    if (b->sink_busy || b->sink != SINK_RUNNING || b->state != BLOB_MOVING)
        return;
    n = sink_peek(b, &data, SINK_WRITE_MAX);
    if (n > 0) {
        b->sink_commit = false;
        b->sink_data = data;
        b->sink_len = n;
    } else if (b->src == SRC_DONE && sink_all_taken(b)) {
        b->sink_commit = true;
    } else {
        return;
    }
    err = uv_queue_work(&b->job->ctx->s.uv, &b->work, sink_work, sink_after);
    if (err != 0) {
        stop(b, STOP_FAIL, err, "cannot queue a write to the layout");
        return;
    }
    b->sink_busy = true;
}

/* A layout destination: the blob is written to a temp file as it arrives. */
static int start_layout_sink(struct copy_blob *b)
{
    struct copy_job *job = b->job;
    int err = oci_layout_blob_begin(&job->dst_lay->lay, &b->desc.digest,
                                    b->xc != NULL ? -1 : b->desc.size, &b->w, b->file_err,
                                    sizeof(b->file_err));
    if (err != 0)
        return err;
    b->w_open = true;
    set_sink(b, SINK_RUNNING);
    return feed(b);
}

/* Stops the sink; it reports its end through up_done, or sink_after / settle. */
static void stop_sink(struct copy_blob *b)
{
    if (b->sink != SINK_RUNNING && b->sink != SINK_CUT)
        return;
    if (to_layout(b)) {
        /* A write on the pool cannot be stopped: its completion settles. */
        if (!b->sink_busy) {
            if (b->w_open) {
                oci_layout_blob_abort(&b->w);
                b->w_open = false;
            }
            set_sink(b, SINK_IDLE);
        }
        return;
    }
    proto_upload_abort(&b->io->up, UV_ECANCELED);
}

/* ------------------------------------------------------------------------------------------ */
/* Starting */

/* Both halves start (again). */
static void start_move(struct copy_blob *b)
{
    struct copy_job *job = b->job;
    int err;
    set_state(b, BLOB_MOVING);
    b->src = SRC_IDLE;
    b->sink = SINK_IDLE;
    err = b->recompress ? xc_start(b) : 0;
    if (err != 0) {
        /* Nothing runs yet. */
    } else if (to_layout(b)) {
        if (b->xc == NULL &&
            oci_layout_blob_exists(&job->dst_lay->lay, &b->desc.digest, b->desc.size)) {
            done(b, OCISYNC_EV_BLOB_SKIPPED);
            return;
        }
        err = start_layout_sink(b);
    } else {
        err = start_upload(b);
    }
    if (err != 0) {
        if (b->w_open) {
            oci_layout_blob_abort(&b->w);
            b->w_open = false;
        }
        set_sink(b, SINK_IDLE);
        stop_source(b);
        set_state(b, BLOB_STOPPING);
        b->stop = STOP_FAIL;
        fail_job(b, err, b->file_err);
        settle(b);
    }
}

static void on_head(struct proto_reg_op *op, int err)
{
    struct copy_blob *b = op->data;
    int status = proto_reg_status(op);
    char msg[PROTO_REG_ERRMSG_MAX];
    snprintf(msg, sizeof(msg), "%s", op->errmsg);
    proto_reg_op_dispose(op);
    if (b->state != BLOB_CHECKING)
        return; /* released meanwhile */
    if (err != 0 || b->job->err != 0) {
        stop(b, STOP_FAIL, err != 0 ? err : UV_ECANCELED, msg);
        return;
    }
    if (status == 200)
        done(b, OCISYNC_EV_BLOB_SKIPPED);
    else
        start_move(b);
}

/*
 * Where b goes with its slot: straight to a mount or a layout, by what its
 * probe said, or through a HEAD of its own.
 */
static void route(struct copy_blob *b)
{
    struct copy_job *job = b->job;
    int err;
    /* A recompressed layer's name is known only once it is made: nothing to ask. */
    if (to_layout(b) || job->same_registry || b->mount_from != NULL || b->recompress ||
        job->dst_new) {
        start_move(b);
        return;
    }
    switch (b->probe_state) {
    case PROBE_PENDING:
        set_state(b, BLOB_PROBING);
        return;
    case PROBE_PRESENT:
        done(b, OCISYNC_EV_BLOB_SKIPPED);
        return;
    case PROBE_ABSENT:
        start_move(b);
        return;
    default:
        break;
    }
    set_state(b, BLOB_CHECKING);
    err = proto_reg_blob_head(&b->io->head, job->dst_reg, job->dst.repository, b->desc.digest.str);
    b->io->head.expect[1] = 404;
    b->io->head.data = b;
    if (err == 0)
        err = proto_reg_op_start(&b->io->head, on_head);
    if (err != 0) {
        char msg[PROTO_REG_ERRMSG_MAX];
        snprintf(msg, sizeof(msg), "%s", b->io->head.errmsg);
        proto_reg_op_dispose(&b->io->head);
        stop(b, STOP_FAIL, err, msg);
    }
}

void engine__blob_begin(struct copy_blob *b)
{
    struct copy_job *job = b->job;
    struct copy_ctx *ctx = job->ctx;
    struct copy_shared *sh = NULL;
    /* A woken PARKED blob is open already, and out of every queue (engine__pump took it). */
    if (b->state == BLOB_QUEUED)
        job->blobs_open++;
    b->state = BLOB_QUEUED;
    if (!job->same_registry && !to_layout(b) && !b->recompress) {
        sh = engine__shared_get(ctx, job->dst_reg->base, &b->desc.digest);
        if (sh != NULL && sh->owner != NULL) {
            /* Another image sends it here: this one waits, without a slot. */
            set_state(b, BLOB_PARKED);
            queue_insert_tail(&sh->waiters, &b->wait_link);
            return;
        }
    }
    ctx->active++;
    if (b->io == NULL && (b->io = calloc(1, sizeof(*b->io))) == NULL) {
        stop(b, STOP_FAIL, UV_ENOMEM, "out of memory");
        return;
    }
    if (sh != NULL && sh->repo != NULL) {
        /* It is at that registry already: skipped, or mounted from where it is. */
        if (strcmp(sh->repo, job->dst.repository) == 0) {
            done(b, OCISYNC_EV_BLOB_SKIPPED);
            return;
        }
        free(b->mount_from);
        free(b->mount_scope);
        b->mount_from = strdup(sh->repo);
        b->mount_scope = malloc(PROTO_REG_SCOPE_MAX);
        if (b->mount_from == NULL || b->mount_scope == NULL) {
            stop(b, STOP_FAIL, UV_ENOMEM, "out of memory");
            return;
        }
        snprintf(b->mount_scope, PROTO_REG_SCOPE_MAX, "%s repository:%s:pull", job->dst_reg->scope,
                 sh->repo);
        start_move(b);
        return;
    }
    if (sh != NULL) {
        sh->owner = b;
        b->shared = sh;
    }
    route(b);
}

/* ------------------------------------------------------------------------------------------ */
/* Probes: the destination's HEADs, a window ahead of the transfers */

static void on_probe(struct proto_reg_op *op, int err)
{
    struct copy_blob *b = op->data;
    struct copy_job *job = b->job;
    job->pending_ops--;
    /* A failed probe decides nothing: the blob asks again in its turn. */
    b->probe_state = err != 0                      ? PROBE_NONE
                     : proto_reg_status(op) == 200 ? PROBE_PRESENT
                                                   : PROBE_ABSENT;
    proto_reg_op_dispose(op);
    free(op);
    b->probe = NULL;
    if (b->state == BLOB_PROBING) {
        if (job->err != 0)
            stop(b, STOP_FAIL, UV_ECANCELED, NULL);
        else
            route(b);
    }
    engine__job_settle(job);
}

/* Asks the destination about b ahead of its transfer, where a HEAD would decide its fate. */
static void probe(struct copy_blob *b)
{
    struct copy_job *job = b->job;
    int err;
    if (job->same_registry || b->mount_from != NULL || job->dst_lay != NULL ||
        job->item->blobs_only || b->recompress || job->dst_new)
        return;
    b->probe = malloc(sizeof(*b->probe));
    if (b->probe == NULL)
        return;
    err = proto_reg_blob_head(b->probe, job->dst_reg, job->dst.repository, b->desc.digest.str);
    b->probe->expect[1] = 404;
    b->probe->data = b;
    if (err == 0)
        err = proto_reg_op_start(b->probe, on_probe);
    if (err != 0) {
        proto_reg_op_dispose(b->probe);
        free(b->probe);
        b->probe = NULL;
        return;
    }
    b->probe_state = PROBE_PENDING;
    job->pending_ops++;
}

void engine__blob_probe_ahead(struct copy_job *job)
{
    while (job->next_probe < job->n_blobs && job->next_probe < job->next_blob + PROBE_AHEAD)
        probe(&job->blobs[job->next_probe++]);
}

/* ------------------------------------------------------------------------------------------ */
/* Ending and freeing */

/* Frees the requests of done blobs, outside their callbacks (see release). */
static void reap_io(struct loop_delay *d)
{
    engine__blob_reap(container_of(d, struct copy_ctx, io_reap_delay));
}

void engine__blob_reap(struct copy_ctx *ctx)
{
    loop_delay_cancel(&ctx->io_reap_delay);
    while (!queue_empty(&ctx->io_reap)) {
        struct queue *q = queue_head(&ctx->io_reap);
        queue_remove(q);
        free(container_of(q, struct copy_blob_io, reap_link));
    }
}

/*
 * b leaves the set of open blobs: its transfer slot goes back, and if it was
 * the transfer other images waited for, they are woken: to mount it from
 * where it now is (ok), or to try themselves (it failed).
 */
static void release(struct copy_blob *b, bool ok)
{
    struct copy_job *job = b->job;
    struct copy_ctx *ctx = job->ctx;
    enum blob_state was = b->state;
    set_state(b, BLOB_DONE);
    job->blobs_open--;
    if (was == BLOB_PARKED)
        queue_remove(&b->wait_link);
    else
        ctx->active--;
    if (b->io != NULL && !b->io_reaped) {
        /* Its last callback may still be on the stack: the memory goes on the next turn. */
        b->io_reaped = true;
        queue_insert_tail(&ctx->io_reap, &b->io->reap_link);
        if (!ctx->io_reap_delay.armed)
            loop_delay_start(&ctx->s.loop, &ctx->io_reap_delay, 0, reap_io);
    }
    if (b->shared != NULL) {
        struct copy_shared *sh = b->shared;
        b->shared = NULL;
        sh->owner = NULL;
        if (ok && sh->repo == NULL)
            sh->repo = strdup(job->dst.repository);
        /* Woken, still PARKED (and open): engine__pump gives each a slot of its own. */
        while (!queue_empty(&sh->waiters)) {
            struct queue *q = queue_head(&sh->waiters);
            queue_remove(q);
            queue_insert_tail(&ctx->wake_queue, q);
        }
    }
}

void engine__blob_drop(struct copy_blob *b)
{
    struct copy_job *job = b->job;
    /* Taken from the wake queue (out of it already): it holds no slot. */
    b->state = BLOB_DONE;
    job->blobs_open--;
    engine__job_settle(job);
}

void engine__blob_abort(struct copy_blob *b)
{
    switch (b->state) {
    case BLOB_PARKED:
    case BLOB_PROBING:
        /* Nothing in flight of its own (a probe reports to the image): it ends now. */
        release(b, false);
        return;
    case BLOB_CHECKING:
        proto_reg_op_abort(&b->io->head, UV_ECANCELED);
        return;
    case BLOB_MOVING:
        stop(b, STOP_FAIL, UV_ECANCELED, NULL);
        return;
    case BLOB_STOPPING:
        b->stop = STOP_FAIL;
        return;
    case BLOB_BACKOFF:
        loop_delay_cancel(&b->backoff);
        release(b, false);
        relay_free(b);
        return;
    default:
        return;
    }
}

void engine__blob_free(struct copy_blob *b)
{
    close_file(b);
    if (b->w_open)
        oci_layout_blob_abort(&b->w);
    if (!b->io_reaped)
        free(b->io);
    b->io = NULL;
    free(b->fbuf);
    free(b->children);
    free(b->mount_from);
    free(b->mount_scope);
    relay_free(b);
}
