#include "oci/layer.h"

#include "common/log.h"
#include "common/msg.h"
#include "common/sysio.h"
#include "common/queue.h"
#include "ocisync.h"

#include <zlib.h>
#include <zstd.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TMP_PREFIX ".tmp-layer-"
#define GZIP_DEFAULT_LEVEL 6
#define ZSTD_DEFAULT_LEVEL 3
#define ZSTD_MAX_LEVEL 19
/* libuv's own default and ceiling for UV_THREADPOOL_SIZE. */
#define POOL_DEFAULT 4
#define POOL_MAX 1024
/* A compressed gzip block never needs more than this (deflateBound plus the flush marker). */
#define GZIP_OUT_MAX (2 * OCI_LAYER_BLOCK_SIZE)

void (*oci__layer_test_hook)(uint64_t seq, int after);

enum build_state {
    ST_OPENING,   /* the open job creates the temp file */
    ST_RUNNING,   /* blocks move through the pipeline */
    ST_FINISHING, /* the finish job publishes or discards the blob */
    ST_DONE,      /* the callback has run (or is running) */
};

static const char *const state_names[] = {"opening", "running", "finishing", "done"};

/* What a slot holds and which job, if any, is working on it. */
enum slot_state {
    SLOT_FREE,
    SLOT_READING,     /* a read job fills in */
    SLOT_READ,        /* in holds a block waiting for compression */
    SLOT_COMPRESSING, /* a compression job runs (zstd: and writes) */
    SLOT_COMPRESSED,  /* gzip: out waits for its turn to be written */
    SLOT_WRITING,     /* gzip: a write job appends out to the file */
    SLOT_SPENT,       /* compressed and written; the hash job has yet to take it */
};

static void pump(struct oci_layer_build *b);

static void set_state(struct oci_layer_build *b, enum build_state s)
{
    LOG_DEBUG("layer %s: %s -> %s", b->blobs_dir, state_names[b->state], state_names[s]);
    b->state = s;
}

/*
 * The pool size libuv uses, read the way libuv reads it. It only sizes the
 * pipeline; the bytes produced never depend on it.
 */
static unsigned pool_size(void)
{
    const char *v = getenv("UV_THREADPOOL_SIZE");
    long n = POOL_DEFAULT;

    if (v != NULL)
        n = strtol(v, NULL, 10);
    if (n <= 0)
        n = v != NULL && n < 0 ? POOL_MAX : 1;
    return n > POOL_MAX ? POOL_MAX : (unsigned)n;
}

/* Records the first error of the build; later ones are consequences. */
static void fail(struct oci_layer_build *b, int rc, const char *msg)
{
    if (b->rc != 0 || rc == 0)
        return;
    b->rc = rc;
    snprintf(b->msg, sizeof(b->msg), "%s", msg);
}

/*
 * Appends compressed bytes to the temp file and to the blob digest. Only one
 * job that writes runs at a time (open, then the writers in order, then
 * finish), and libuv's queue orders them, so nothing here needs a lock.
 */
static int emit(struct oci_layer_build *b, const void *data, size_t len, char *msg, size_t msglen)
{
    int rc;

    if (len == 0)
        return 0;
    rc = ocisync__write_full(b->fd, data, len);
    if (rc != 0) {
        ocisync__errf(msg, msglen, "cannot write layer blob %s/%s: %s", b->blobs_dir, b->tmp_name,
                      uv_strerror(rc));
        return rc;
    }
    oci_hasher_update(&b->blob_hash, data, len);
    b->result.size += len;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Pool jobs
 */

/* Sets up libzstd: one frame, checksummed, made by worker threads with a fixed job size. */
static int zstd_setup(struct oci_layer_build *b, char *msg, size_t msglen)
{
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    unsigned workers = uv_available_parallelism();
    size_t r;

    if (cctx == NULL || (b->zbuf = malloc(ZSTD_CStreamOutSize())) == NULL) {
        ZSTD_freeCCtx(cctx);
        ocisync__errf(msg, msglen, "cannot compress layer blob %s/%s: out of memory", b->blobs_dir,
                      b->tmp_name);
        return UV_ENOMEM;
    }
    b->zcctx = cctx;
    b->zbuf_cap = ZSTD_CStreamOutSize();
    workers = workers < 2 ? 2 : workers;
    workers = workers > OCI_LAYER_ZSTD_MAX_WORKERS ? OCI_LAYER_ZSTD_MAX_WORKERS : workers;
    r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, b->level);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    if (ZSTD_isError(r))
        goto fail;
    /*
     * A libzstd built without threads refuses workers; it then compresses on
     * the pool thread itself, which is slower and (since multi-threaded frames
     * are cut into jobs) gives other bytes, but still one valid frame.
     */
    r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, (int)workers);
    if (!ZSTD_isError(r)) {
        b->zstd_workers = workers;
        r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_jobSize, OCI_LAYER_ZSTD_JOB_SIZE);
        if (ZSTD_isError(r))
            goto fail;
    }
    return 0;

fail:
    ocisync__errf(msg, msglen, "cannot set up zstd for layer blob %s/%s: %s", b->blobs_dir,
                  b->tmp_name, ZSTD_getErrorName(r));
    return UV_EIO;
}

/* Opens blobs/sha256 and creates the temp file; for gzip, writes the fixed header. */
static void open_work(uv_work_t *req)
{
    struct oci_layer_build *b = container_of(req, struct oci_layer_build, ctl);
    /*
     * mtime 0, XFL 0, OS 255 (unknown): nothing in the header depends on the
     * machine or the time, as with Go's gzip writer.
     */
    static const unsigned char gzip_header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
    char rnd[17];
    int rc;

    b->dirfd = open(b->blobs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (b->dirfd < 0) {
        rc = ocisync__sys_error();
        ocisync__errf(b->ctl_msg, sizeof(b->ctl_msg), "cannot open layout directory %s: %s",
                      b->blobs_dir, uv_strerror(rc));
        goto out;
    }
    rc = UV_EEXIST;
    for (int attempt = 0; attempt < 4 && rc == UV_EEXIST; attempt++) {
        rc = ocisync__random_hex16(rnd);
        if (rc != 0)
            break;
        snprintf(b->tmp_name, sizeof(b->tmp_name), TMP_PREFIX "%s", rnd);
        b->fd =
            openat(b->dirfd, b->tmp_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        rc = b->fd < 0 ? ocisync__sys_error() : 0;
    }
    if (rc != 0) {
        ocisync__errf(b->ctl_msg, sizeof(b->ctl_msg), "cannot create a temp file in %s: %s",
                      b->blobs_dir, uv_strerror(rc));
        b->tmp_name[0] = '\0';
        goto out;
    }
    if (b->comp == OCI_COMPRESS_GZIP)
        rc = emit(b, gzip_header, sizeof(gzip_header), b->ctl_msg, sizeof(b->ctl_msg));
    else
        rc = zstd_setup(b, b->ctl_msg, sizeof(b->ctl_msg));
out:
    b->ctl_rc = rc;
}

/*
 * Fills the slot with the next block of the tar stream: a full block unless
 * the stream ends, in which case the slot is the last (possibly empty). Read
 * jobs run one at a time and in order, so the stream, the diff_id hasher and
 * the gzip tail are theirs alone.
 */
static void read_work(uv_work_t *req)
{
    struct oci_layer_slot *s = container_of(req, struct oci_layer_slot, work);
    struct oci_layer_build *b = s->b;
    size_t n;
    int rc = 0;

    s->in_len = 0;
    s->last = false;
    s->n_segs = 0;
    s->segs_full = false;
    b->stream.content_arg = s;
    while (s->in_len < OCI_LAYER_BLOCK_SIZE) {
        rc = oci_tar_stream_read(&b->stream, s->in + s->in_len, OCI_LAYER_BLOCK_SIZE - s->in_len,
                                 &n, s->msg, sizeof(s->msg));
        if (rc != 0)
            goto out;
        if (n == 0) {
            s->last = true;
            break;
        }
        s->in_len += n;
    }
    if (s->segs_full) {
        ocisync__errf(s->msg, sizeof(s->msg), "layer blob %s/%s: too many files in one block",
                      b->blobs_dir, b->tmp_name);
        rc = UV_EIO;
        goto out;
    }
    if (b->comp == OCI_COMPRESS_GZIP) {
        /* The block is primed with the tail of the bytes before it, which the next read replaces.
         */
        memcpy(s->dict, b->tail, b->tail_len);
        s->dict_len = b->tail_len;
        if (s->in_len >= OCI_LAYER_DICT_SIZE) {
            memcpy(b->tail, s->in + s->in_len - OCI_LAYER_DICT_SIZE, OCI_LAYER_DICT_SIZE);
            b->tail_len = OCI_LAYER_DICT_SIZE;
        } else {
            size_t keep = OCI_LAYER_DICT_SIZE - s->in_len;

            if (keep > b->tail_len)
                keep = b->tail_len;
            memmove(b->tail, b->tail + b->tail_len - keep, keep);
            memcpy(b->tail + keep, s->in, s->in_len);
            b->tail_len = keep + s->in_len;
        }
    }
out:
    s->rc = rc;
}

/* The tar stream's hook (file_sums): where each piece of file content went in the block. */
static void record_piece(void *arg, size_t entry, const unsigned char *data, size_t len, bool end)
{
    struct oci_layer_slot *s = arg;

    if (s->n_segs == OCI_LAYER_MAX_SEGS) {
        s->segs_full = true;
        return;
    }
    s->segs[s->n_segs++] = (struct oci_layer_seg){
        .entry = (uint32_t)entry,
        .off = data != NULL ? (uint32_t)(data - s->in) : 0,
        .len = (uint32_t)len,
        .end = end,
    };
}

/*
 * Hashes a block read: the diff_id over all of it and, with file_sums, each
 * file's pieces into that file's digest. Hash jobs run one at a time, in
 * block order, beside the block's compression (both only read it), so the
 * hashers are theirs alone.
 */
static void hash_work(uv_work_t *req)
{
    struct oci_layer_slot *s = container_of(req, struct oci_layer_slot, hash_work);
    struct oci_layer_build *b = s->b;
    int rc = 0;

    oci_hasher_update(&b->tar_hash, s->in, s->in_len);
    for (size_t i = 0; i < s->n_segs && rc == 0; i++) {
        const struct oci_layer_seg *g = &s->segs[i];
        struct oci_digest d;

        if (!b->file_open) {
            rc = oci_hasher_init(&b->file_hash, OCI_DIGEST_SHA256);
            if (rc != 0)
                break;
            b->file_open = true;
        }
        if (g->len > 0)
            oci_hasher_update(&b->file_hash, s->in + g->off, g->len);
        if (!g->end)
            continue;
        b->file_open = false;
        rc = oci_hasher_final(&b->file_hash, &d);
        if (rc == 0) {
            snprintf(b->file_sums[g->entry].hex, sizeof(b->file_sums[g->entry].hex), "%s",
                     oci_digest_hex(&d));
            b->file_sums[g->entry].done = true;
        }
    }
    s->hash_rc = rc;
}

/* gzip: one block of raw deflate, byte-aligned at its end so blocks concatenate. */
static void deflate_work(uv_work_t *req)
{
    struct oci_layer_slot *s = container_of(req, struct oci_layer_slot, work);
    struct oci_layer_build *b = s->b;
    z_stream *zs = s->zs;
    int flush = s->last ? Z_FINISH : Z_SYNC_FLUSH;
    int zrc = Z_OK, rc = 0;

    if (oci__layer_test_hook != NULL)
        oci__layer_test_hook(s->seq, 0);
    if (zs == NULL) {
        zs = calloc(1, sizeof(*zs));
        if (zs == NULL) {
            rc = UV_ENOMEM;
            goto fail;
        }
        zrc = deflateInit2(zs, b->level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
        if (zrc != Z_OK) {
            free(zs);
            rc = zrc == Z_MEM_ERROR ? UV_ENOMEM : UV_EIO;
            goto fail;
        }
        s->zs = zs;
    } else if ((zrc = deflateReset(zs)) != Z_OK) {
        rc = UV_EIO;
        goto fail;
    }
    if (s->out == NULL) {
        s->out_cap = deflateBound(zs, OCI_LAYER_BLOCK_SIZE) + 64;
        s->out = malloc(s->out_cap);
        if (s->out == NULL) {
            rc = UV_ENOMEM;
            goto fail;
        }
    }
    if (s->dict_len > 0 && (zrc = deflateSetDictionary(zs, s->dict, (uInt)s->dict_len)) != Z_OK) {
        rc = UV_EIO;
        goto fail;
    }
    zs->next_in = s->in;
    zs->avail_in = (uInt)s->in_len;
    zs->next_out = s->out;
    zs->avail_out = (uInt)s->out_cap;
    for (;;) {
        zrc = deflate(zs, flush);
        if (zrc == Z_STREAM_ERROR) {
            rc = UV_EIO;
            goto fail;
        }
        /* A flush is complete only when deflate had room left over. */
        if (s->last ? zrc == Z_STREAM_END : zs->avail_in == 0 && zs->avail_out > 0)
            break;
        if (zs->avail_out == 0) {
            size_t used = s->out_cap;
            unsigned char *p;

            /* deflateBound makes this unreachable; it is here so a zlib surprise is an error. */
            if (s->out_cap >= GZIP_OUT_MAX) {
                zrc = Z_BUF_ERROR;
                rc = UV_EIO;
                goto fail;
            }
            p = realloc(s->out, GZIP_OUT_MAX);
            if (p == NULL) {
                rc = UV_ENOMEM;
                goto fail;
            }
            s->out = p;
            s->out_cap = GZIP_OUT_MAX;
            zs->next_out = p + used;
            zs->avail_out = (uInt)(GZIP_OUT_MAX - used);
        }
    }
    s->out_len = s->out_cap - zs->avail_out;
    s->crc = (uint32_t)crc32(0L, s->in, (uInt)s->in_len);
    if (oci__layer_test_hook != NULL)
        oci__layer_test_hook(s->seq, 1);
    s->rc = 0;
    return;

fail:
    ocisync__errf(s->msg, sizeof(s->msg), "cannot compress layer blob %s/%s: %s", b->blobs_dir,
                  b->tmp_name, rc == UV_ENOMEM ? "out of memory" : zError(zrc));
    s->rc = rc;
}

/* gzip: appends a compressed block; the write jobs run one at a time, in block order. */
static void write_work(uv_work_t *req)
{
    struct oci_layer_slot *s = container_of(req, struct oci_layer_slot, work);
    struct oci_layer_build *b = s->b;

    s->rc = emit(b, s->out, s->out_len, s->msg, sizeof(s->msg));
    if (s->rc == 0)
        b->crc = (uint32_t)crc32_combine(b->crc, s->crc, (z_off_t)s->in_len);
}

/*
 * zstd: feeds a block to libzstd, whose workers compress while this job
 * waits, and writes whatever it hands back. One such job runs at a time, in
 * block order; the frame ends after the last block.
 */
static void zstd_work(uv_work_t *req)
{
    struct oci_layer_slot *s = container_of(req, struct oci_layer_slot, work);
    struct oci_layer_build *b = s->b;
    ZSTD_inBuffer in = {s->in, s->in_len, 0};
    size_t r = 0;
    int rc = 0;

    if (oci__layer_test_hook != NULL)
        oci__layer_test_hook(s->seq, 0);
    /* ZSTD_e_continue only: the frame is cut into jobs at fixed sizes, never at block edges. */
    while (in.pos < in.size) {
        ZSTD_outBuffer out = {b->zbuf, b->zbuf_cap, 0};

        r = ZSTD_compressStream2(b->zcctx, &out, &in, ZSTD_e_continue);
        if (ZSTD_isError(r))
            goto zfail;
        rc = emit(b, b->zbuf, out.pos, s->msg, sizeof(s->msg));
        if (rc != 0)
            goto out;
    }
    if (s->last) {
        do {
            ZSTD_outBuffer out = {b->zbuf, b->zbuf_cap, 0};

            r = ZSTD_compressStream2(b->zcctx, &out, &in, ZSTD_e_end);
            if (ZSTD_isError(r))
                goto zfail;
            rc = emit(b, b->zbuf, out.pos, s->msg, sizeof(s->msg));
            if (rc != 0)
                goto out;
        } while (r != 0);
    }
    goto out;

zfail:
    ocisync__errf(s->msg, sizeof(s->msg), "cannot compress layer blob %s/%s: %s", b->blobs_dir,
                  b->tmp_name, ZSTD_getErrorName(r));
    rc = UV_EIO;
out:
    if (oci__layer_test_hook != NULL)
        oci__layer_test_hook(s->seq, 1);
    s->rc = rc;
}

/* Publishes the blob: trailer, digests, fsync, rename to its digest, fsync of the directory. */
static int publish(struct oci_layer_build *b, char *msg, size_t msglen)
{
    unsigned char trailer[8];
    uint64_t tar_size = b->tar_hash.n_bytes;
    const char *hex;
    int rc;

    if (b->comp == OCI_COMPRESS_GZIP) {
        /* CRC-32 and the length mod 2^32, both little-endian (RFC 1952). */
        for (int i = 0; i < 4; i++) {
            trailer[i] = (unsigned char)(b->crc >> (8 * i));
            trailer[4 + i] = (unsigned char)(tar_size >> (8 * i));
        }
        rc = emit(b, trailer, sizeof(trailer), msg, msglen);
        if (rc != 0)
            return rc;
    }
    b->result.tar_size = tar_size;
    rc = oci_hasher_final(&b->tar_hash, &b->result.diff_id);
    if (rc == 0)
        rc = oci_hasher_final(&b->blob_hash, &b->result.digest);
    if (rc != 0) {
        ocisync__errf(msg, msglen, "cannot hash layer blob %s/%s: %s", b->blobs_dir, b->tmp_name,
                      uv_strerror(rc));
        return rc;
    }
    hex = oci_digest_hex(&b->result.digest);
    if (snprintf(b->result.path, sizeof(b->result.path), "%s/%s", b->blobs_dir, hex) >=
        (int)sizeof(b->result.path)) {
        ocisync__errf(msg, msglen, "layer blob path %s/%s is too long", b->blobs_dir, hex);
        return UV_ENAMETOOLONG;
    }
    /* The data must be on disk before its name is, or a crash could publish a hole. */
    rc = !b->scratch && fsync(b->fd) != 0 ? ocisync__sys_error() : 0;
    if (close(b->fd) != 0 && rc == 0)
        rc = ocisync__sys_error();
    b->fd = -1;
    if (rc == 0 && renameat(b->dirfd, b->tmp_name, b->dirfd, hex) != 0)
        rc = ocisync__sys_error();
    if (rc != 0) {
        ocisync__errf(msg, msglen, "cannot store layer blob %s/%s: %s", b->blobs_dir, b->tmp_name,
                      uv_strerror(rc));
        return rc;
    }
    b->tmp_name[0] = '\0';
    /* The name must be durable before a manifest that points at it is written. */
    if (!b->scratch && fsync(b->dirfd) != 0) {
        rc = ocisync__sys_error();
        ocisync__errf(msg, msglen, "cannot store layer blob %s: %s", b->result.path,
                      uv_strerror(rc));
        return rc;
    }
    return 0;
}

/*
 * Runs once every other job has returned: publishes the blob when the build
 * succeeded (ctl_rc 0 on entry), then releases what the build holds on files
 * and threads, removing the temp file if it is still there.
 */
static void finish_work(uv_work_t *req)
{
    struct oci_layer_build *b = container_of(req, struct oci_layer_build, ctl);

    if (b->ctl_rc == 0)
        b->ctl_rc = publish(b, b->ctl_msg, sizeof(b->ctl_msg));
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
    if (b->dirfd >= 0) {
        if (b->tmp_name[0] != '\0')
            unlinkat(b->dirfd, b->tmp_name, 0);
        close(b->dirfd);
    }
    b->dirfd = -1;
    /* Freeing the context joins libzstd's workers, which can take a moment. */
    ZSTD_freeCCtx(b->zcctx);
    b->zcctx = NULL;
    for (unsigned i = 0; i < b->n_slots; i++) {
        if (b->slots[i].zs != NULL) {
            deflateEnd(b->slots[i].zs);
            free(b->slots[i].zs);
            b->slots[i].zs = NULL;
        }
    }
    oci_tar_stream_dispose(&b->stream);
    oci_hasher_dispose(&b->file_hash);
}

/* ---------------------------------------------------------------------------------------------
 * The loop side: sequencing
 */

static void release(struct oci_layer_build *b)
{
    for (unsigned i = 0; i < b->n_slots; i++) {
        struct oci_layer_slot *s = &b->slots[i];

        free(s->in);
        free(s->out);
        free(s->dict);
        free(s->segs);
        s->in = s->out = s->dict = NULL;
        s->segs = NULL;
    }
    free(b->zbuf);
    b->zbuf = NULL;
    oci_hasher_dispose(&b->tar_hash);
    oci_hasher_dispose(&b->blob_hash);
}

static void on_finish(uv_work_t *req, int status)
{
    struct oci_layer_build *b = container_of(req, struct oci_layer_build, ctl);
    oci_layer_cb cb = b->cb;
    int rc = b->rc;

    b->jobs--;
    if (rc == 0 && b->ctl_rc != 0) {
        rc = b->ctl_rc;
        snprintf(b->msg, sizeof(b->msg), "%s", b->ctl_msg);
    }
    if (rc == 0 && status != 0) {
        rc = status;
        ocisync__errf(b->msg, sizeof(b->msg), "layer blob %s: %s", b->result.path, uv_strerror(rc));
    }
    if (rc != 0)
        memset(&b->result, 0, sizeof(b->result));
    else
        b->msg[0] = '\0';
    b->rc = rc;
    release(b);
    set_state(b, ST_DONE);
    /* The last thing: the caller may free b in the callback. */
    cb(b, rc, b->msg);
}

static void start_finish(struct oci_layer_build *b)
{
    int rc;

    if (b->rc == 0 && b->canceled) {
        b->rc = UV_ECANCELED;
        ocisync__errf(b->msg, sizeof(b->msg), "building layer blob %s/%s was canceled",
                      b->blobs_dir, b->tmp_name[0] != '\0' ? b->tmp_name : TMP_PREFIX "*");
    }
    /* finish_work publishes only when ctl_rc is 0 on entry. */
    b->ctl_rc = b->rc;
    b->ctl_msg[0] = '\0';
    set_state(b, ST_FINISHING);
    rc = uv_queue_work(b->loop, &b->ctl, finish_work, on_finish);
    if (rc != 0) {
        /* Only invalid arguments make uv_queue_work fail; clean up here rather than leak. */
        finish_work(&b->ctl);
        b->jobs++;
        on_finish(&b->ctl, rc);
        return;
    }
    b->jobs++;
}

static void on_slot_done(uv_work_t *req, int status);

static int start_job(struct oci_layer_build *b, struct oci_layer_slot *s, enum slot_state st,
                     uv_work_cb work)
{
    int rc;

    s->state = st;
    s->rc = 0;
    s->msg[0] = '\0';
    rc = uv_queue_work(b->loop, &s->work, work, on_slot_done);
    if (rc != 0) {
        s->state = SLOT_FREE;
        ocisync__errf(s->msg, sizeof(s->msg), "cannot queue work for layer blob %s/%s: %s",
                      b->blobs_dir, b->tmp_name, uv_strerror(rc));
        fail(b, rc, s->msg);
        return rc;
    }
    b->jobs++;
    return 0;
}

/* Allocates a slot's buffers on first use, so a small layer takes little memory. */
static int slot_alloc(struct oci_layer_build *b, struct oci_layer_slot *s)
{
    if (s->in == NULL)
        s->in = malloc(OCI_LAYER_BLOCK_SIZE);
    if (b->comp == OCI_COMPRESS_GZIP && s->dict == NULL)
        s->dict = malloc(OCI_LAYER_DICT_SIZE);
    if (b->file_sums != NULL && s->segs == NULL)
        s->segs = malloc(OCI_LAYER_MAX_SEGS * sizeof(*s->segs));
    if (s->in == NULL || (b->comp == OCI_COMPRESS_GZIP && s->dict == NULL) ||
        (b->file_sums != NULL && s->segs == NULL)) {
        ocisync__errf(s->msg, sizeof(s->msg), "cannot build layer blob %s/%s: out of memory",
                      b->blobs_dir, b->tmp_name);
        fail(b, UV_ENOMEM, s->msg);
        return UV_ENOMEM;
    }
    return 0;
}

static struct oci_layer_slot *find_slot(struct oci_layer_build *b, enum slot_state st, uint64_t seq,
                                        bool any_seq)
{
    for (unsigned i = 0; i < b->n_slots; i++) {
        if (b->slots[i].state == (int)st && (any_seq || b->slots[i].seq == seq))
            return &b->slots[i];
    }
    return NULL;
}

/* The block the next hash job takes: read, not hashed yet, next in order. NULL if none. */
static struct oci_layer_slot *hash_slot(struct oci_layer_build *b)
{
    for (unsigned i = 0; i < b->n_slots; i++) {
        struct oci_layer_slot *s = &b->slots[i];

        if (s->state != SLOT_FREE && s->state != SLOT_READING && !s->hashed &&
            s->seq == b->next_hash)
            return s;
    }
    return NULL;
}

/* A block is done with when it is both written out (or compressed, zstd) and hashed. */
static void spend(struct oci_layer_build *b, struct oci_layer_slot *s, bool ok)
{
    if (s->last && ok)
        b->written_last = true;
    s->state = s->hashed ? SLOT_FREE : SLOT_SPENT;
    b->complete = b->written_last && b->hashed_last;
}

static void on_hash_done(uv_work_t *req, int status)
{
    struct oci_layer_slot *s = container_of(req, struct oci_layer_slot, hash_work);
    struct oci_layer_build *b = s->b;
    int rc = status != 0 ? status : s->hash_rc;

    b->jobs--;
    b->hashing = false;
    if (rc != 0) {
        char msg[512];

        ocisync__errf(msg, sizeof(msg), "cannot hash layer blob %s/%s: %s", b->blobs_dir,
                      b->tmp_name, uv_strerror(rc));
        fail(b, rc, msg);
    }
    s->hashed = true;
    b->next_hash++;
    if (s->last && rc == 0)
        b->hashed_last = true;
    if (s->state == SLOT_SPENT)
        s->state = SLOT_FREE;
    b->complete = b->written_last && b->hashed_last;
    pump(b);
}

static int start_hash(struct oci_layer_build *b, struct oci_layer_slot *s)
{
    int rc;

    s->hash_rc = 0;
    rc = uv_queue_work(b->loop, &s->hash_work, hash_work, on_hash_done);
    if (rc != 0) {
        char msg[512];

        ocisync__errf(msg, sizeof(msg), "cannot queue work for layer blob %s/%s: %s", b->blobs_dir,
                      b->tmp_name, uv_strerror(rc));
        fail(b, rc, msg);
        return rc;
    }
    b->jobs++;
    b->hashing = true;
    return 0;
}

/*
 * Starts every job that may run now: the next write (gzip) or compression
 * (zstd) in order, every gzip compression that has its block, and the next
 * read while a slot is free. Once nothing is in flight and the build is
 * complete, failed or canceled, the finish job runs.
 */
static void pump(struct oci_layer_build *b)
{
    struct oci_layer_slot *s;

    if (b->state != ST_RUNNING)
        return;
    while (b->rc == 0 && !b->canceled) {
        bool started = false;

        if (b->comp == OCI_COMPRESS_GZIP) {
            if (!b->writing && (s = find_slot(b, SLOT_COMPRESSED, b->next_write, false)) != NULL) {
                if (start_job(b, s, SLOT_WRITING, write_work) != 0)
                    break;
                b->writing = true;
                started = true;
            }
            while ((s = find_slot(b, SLOT_READ, 0, true)) != NULL) {
                if (start_job(b, s, SLOT_COMPRESSING, deflate_work) != 0)
                    break;
                started = true;
            }
        } else if (!b->compressing &&
                   (s = find_slot(b, SLOT_READ, b->next_compress, false)) != NULL) {
            if (start_job(b, s, SLOT_COMPRESSING, zstd_work) != 0)
                break;
            b->compressing = true;
            started = true;
        }
        if (!b->hashing && (s = hash_slot(b)) != NULL) {
            if (start_hash(b, s) != 0)
                break;
            started = true;
        }
        if (!b->reading && !b->eof && (s = find_slot(b, SLOT_FREE, 0, true)) != NULL) {
            if (slot_alloc(b, s) != 0)
                break;
            s->hashed = false;
            s->seq = b->next_read++;
            if (start_job(b, s, SLOT_READING, read_work) != 0)
                break;
            b->reading = true;
            started = true;
        }
        if (!started)
            break;
    }
    if (b->jobs == 0 && (b->complete || b->rc != 0 || b->canceled))
        start_finish(b);
}

static void on_slot_done(uv_work_t *req, int status)
{
    struct oci_layer_slot *s = container_of(req, struct oci_layer_slot, work);
    struct oci_layer_build *b = s->b;
    int rc = status != 0 ? status : s->rc;
    bool written = false;

    b->jobs--;
    if (rc != 0) {
        if (s->msg[0] == '\0')
            ocisync__errf(s->msg, sizeof(s->msg), "layer blob %s/%s: %s", b->blobs_dir, b->tmp_name,
                          uv_strerror(rc));
        fail(b, rc, s->msg);
    }
    switch (s->state) {
    case SLOT_READING:
        b->reading = false;
        if (s->last)
            b->eof = true;
        s->state = SLOT_READ;
        break;
    case SLOT_COMPRESSING:
        if (b->comp == OCI_COMPRESS_ZSTD) {
            b->compressing = false;
            b->next_compress++;
            spend(b, s, rc == 0);
            written = true;
            break;
        }
        /* An earlier block still waiting or compressing means this one overtook it. */
        for (unsigned i = 0; i < b->n_slots; i++) {
            if ((b->slots[i].state == SLOT_READ || b->slots[i].state == SLOT_COMPRESSING) &&
                b->slots[i].seq < s->seq) {
                b->reordered++;
                break;
            }
        }
        s->state = SLOT_COMPRESSED;
        break;
    case SLOT_WRITING:
        b->writing = false;
        written = true;
        b->next_write++;
        spend(b, s, rc == 0);
        break;
    default:
        break;
    }
    /* Before pump, which may start the job that closes the file. */
    if (written && b->rc == 0 && b->on_progress != NULL)
        b->on_progress(b, b->fd, b->result.size);
    pump(b);
}

static void on_open(uv_work_t *req, int status)
{
    struct oci_layer_build *b = container_of(req, struct oci_layer_build, ctl);

    b->jobs--;
    if (status != 0 && b->ctl_rc == 0) {
        b->ctl_rc = status;
        ocisync__errf(b->ctl_msg, sizeof(b->ctl_msg), "cannot open layout directory %s: %s",
                      b->blobs_dir, uv_strerror(status));
    }
    fail(b, b->ctl_rc, b->ctl_msg);
    /* Before the first read job: the caller may have asked for the files' digests. */
    b->stream.sums = b->file_sums;
    if (b->file_sums != NULL)
        b->stream.on_content = record_piece;
    set_state(b, ST_RUNNING);
    pump(b);
}

/* ---------------------------------------------------------------------------------------------
 * API
 */

int oci_layer_build(struct oci_layer_build *b, uv_loop_t *loop, const struct oci_tar_plan *plan,
                    enum oci_compression comp, int level, const char *dir, oci_layer_cb cb,
                    void *data)
{
    unsigned slots;
    int rc;

    if (b == NULL)
        return OCISYNC_EUSAGE;
    memset(b, 0, sizeof(*b));
    b->fd = -1;
    b->dirfd = -1;
    b->data = data;
    if (loop == NULL || plan == NULL || dir == NULL || cb == NULL) {
        ocisync__errf(b->msg, sizeof(b->msg), "layer build: missing argument");
        return OCISYNC_EUSAGE;
    }
    if (comp == OCI_COMPRESS_GZIP) {
        if (level == 0)
            level = GZIP_DEFAULT_LEVEL;
        if (level < 1 || level > 9) {
            ocisync__errf(b->msg, sizeof(b->msg), "gzip level %d is out of range (1-9)", level);
            return OCISYNC_EUSAGE;
        }
        slots = 2 * pool_size();
    } else if (comp == OCI_COMPRESS_ZSTD) {
        if (level == 0)
            level = ZSTD_DEFAULT_LEVEL;
        if (level < 1 || level > ZSTD_MAX_LEVEL) {
            ocisync__errf(b->msg, sizeof(b->msg), "zstd level %d is out of range (1-%d)", level,
                          ZSTD_MAX_LEVEL);
            return OCISYNC_EUSAGE;
        }
        slots = OCI_LAYER_ZSTD_SLOTS;
    } else {
        ocisync__errf(b->msg, sizeof(b->msg), "unknown layer compression %d", (int)comp);
        return OCISYNC_EUSAGE;
    }
    if (snprintf(b->blobs_dir, sizeof(b->blobs_dir), "%s/blobs/sha256", dir) + 1 + 64 + 1 >
        (int)sizeof(b->blobs_dir)) {
        struct ocisync__clipped c;

        ocisync__errf(b->msg, sizeof(b->msg), "layout directory %s is too long",
                      ocisync__clip(dir, 128, &c));
        return UV_ENAMETOOLONG;
    }
    slots = slots < OCI_LAYER_MIN_SLOTS ? OCI_LAYER_MIN_SLOTS : slots;
    b->n_slots = slots > OCI_LAYER_MAX_SLOTS ? OCI_LAYER_MAX_SLOTS : slots;
    for (unsigned i = 0; i < b->n_slots; i++)
        b->slots[i].b = b;
    b->loop = loop;
    b->plan = plan;
    b->comp = comp;
    b->level = level;
    b->cb = cb;
    b->state = ST_OPENING;
    rc = oci_hasher_init(&b->tar_hash, OCI_DIGEST_SHA256);
    if (rc == 0)
        rc = oci_hasher_init(&b->blob_hash, OCI_DIGEST_SHA256);
    if (rc == 0)
        rc = oci_tar_stream_init(&b->stream, plan);
    if (rc != 0) {
        ocisync__errf(b->msg, sizeof(b->msg), "cannot start layer blob in %s: %s", b->blobs_dir,
                      uv_strerror(rc));
        goto fail;
    }
    rc = uv_queue_work(loop, &b->ctl, open_work, on_open);
    if (rc != 0) {
        ocisync__errf(b->msg, sizeof(b->msg), "cannot start layer blob in %s: %s", b->blobs_dir,
                      uv_strerror(rc));
        goto fail_stream;
    }
    b->jobs++;
    return 0;

fail_stream:
    oci_tar_stream_dispose(&b->stream);
fail:
    oci_hasher_dispose(&b->tar_hash);
    oci_hasher_dispose(&b->blob_hash);
    return rc;
}

void oci_layer_cancel(struct oci_layer_build *b)
{
    if (b == NULL || b->state == ST_FINISHING || b->state == ST_DONE || b->canceled)
        return;
    LOG_DEBUG("layer %s: canceled", b->blobs_dir);
    b->canceled = true;
    pump(b);
}
