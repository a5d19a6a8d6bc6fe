/*
 * Layers recompressed as a stream: oci/unpack.c decompresses, and its sink
 * compresses what comes out into a growing output buffer.
 */
#include "oci/recompress.h"

#include "common/msg.h"
#include "ocisync.h"

#include <uv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The output buffer grows by at least this much. */
#define OUT_STEP (256 * 1024)

/* Room for need more bytes of output, within the cap. */
static int out_reserve(struct oci_recompress *r, size_t need, char *err, size_t errlen)
{
    size_t cap;
    unsigned char *p;
    if (r->out_cap - r->out_len >= need)
        return 0;
    if (need > OCI_RECOMPRESS_OUT_MAX - r->out_len) {
        ocisync__errf(err, errlen,
                      "%s: one piece recompressed to more than %d MiB; refused to hold more",
                      r->what, OCI_RECOMPRESS_OUT_MAX >> 20);
        return OCISYNC_ETOOBIG;
    }
    cap = r->out_cap * 2;
    if (cap < r->out_len + need)
        cap = r->out_len + need;
    if (cap < OUT_STEP)
        cap = OUT_STEP;
    if (cap > OCI_RECOMPRESS_OUT_MAX)
        cap = OCI_RECOMPRESS_OUT_MAX;
    p = realloc(r->out, cap);
    if (p == NULL)
        return UV_ENOMEM;
    r->out = p;
    r->out_cap = cap;
    return 0;
}

/* The compressor's output of n bytes was written at r->out + r->out_len: counted and hashed. */
static void out_added(struct oci_recompress *r, size_t n)
{
    oci_hasher_update(&r->h, r->out + r->out_len, n);
    r->out_len += n;
    r->total_out += n;
}

/* Compresses (p, n) of tar; finish: the end of the stream. */
static int squeeze(struct oci_recompress *r, const void *p, size_t n, bool finish, char *err,
                   size_t errlen)
{
    int rc;
    if (r->to == OCI_COMPRESS_GZIP) {
        r->z.next_in = (Bytef *)p;
        r->z.avail_in = (uInt)n;
        for (;;) {
            size_t room;
            int zr;
            rc = out_reserve(r, OUT_STEP / 4, err, errlen);
            if (rc != 0)
                return rc;
            room = r->out_cap - r->out_len;
            r->z.next_out = r->out + r->out_len;
            r->z.avail_out = (uInt)(room > UINT32_MAX ? UINT32_MAX : room);
            zr = deflate(&r->z, finish ? Z_FINISH : Z_NO_FLUSH);
            if (zr == Z_STREAM_ERROR) {
                ocisync__errf(err, errlen, "%s: gzip compression failed", r->what);
                return UV_EIO;
            }
            out_added(r, room - r->z.avail_out);
            if (finish ? zr == Z_STREAM_END : (r->z.avail_in == 0 && r->z.avail_out > 0))
                return 0;
        }
    }
    {
        ZSTD_inBuffer ib = {p, n, 0};
        for (;;) {
            ZSTD_outBuffer ob;
            size_t left;
            rc = out_reserve(r, ZSTD_CStreamOutSize(), err, errlen);
            if (rc != 0)
                return rc;
            ob = (ZSTD_outBuffer){r->out + r->out_len, r->out_cap - r->out_len, 0};
            left = ZSTD_compressStream2(r->zc, &ob, &ib, finish ? ZSTD_e_end : ZSTD_e_continue);
            if (ZSTD_isError(left)) {
                ocisync__errf(err, errlen, "%s: zstd compression failed: %s", r->what,
                              ZSTD_getErrorName(left));
                return UV_EIO;
            }
            out_added(r, ob.pos);
            if (finish ? left == 0 : (ib.pos == ib.size && ob.pos < ob.size))
                return 0;
        }
    }
}

static int sink(void *arg, const void *p, size_t n, char *err, size_t errlen)
{
    return squeeze(arg, p, n, false, err, errlen);
}

int oci_recompress_init(struct oci_recompress *r, uint64_t csize, enum oci_compression to,
                        int level, const char *what)
{
    int rc;
    memset(r, 0, sizeof(*r));
    r->csize = csize;
    r->to = to;
    snprintf(r->what, sizeof(r->what), "%s", what);
    if (to == OCI_COMPRESS_GZIP) {
        r->level = level == 0 ? 6 : level;
        if (r->level < 1 || r->level > 9)
            return OCISYNC_EUSAGE;
    } else if (to == OCI_COMPRESS_ZSTD) {
        r->level = level == 0 ? 3 : level;
        if (r->level < 1 || r->level > 19)
            return OCISYNC_EUSAGE;
    } else {
        return OCISYNC_EUSAGE;
    }
    rc = oci_hasher_init(&r->h, OCI_DIGEST_SHA256);
    if (rc != 0)
        return rc;
    if (to == OCI_COMPRESS_GZIP) {
        /* windowBits 15 + 16: a gzip wrapper; the header is fixed by deflateSetHeader. */
        if (deflateInit2(&r->z, r->level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return UV_ENOMEM;
        r->z_open = true;
        r->gzhead.os = 255;
        if (deflateSetHeader(&r->z, &r->gzhead) != Z_OK)
            return UV_ENOMEM;
        return 0;
    }
    r->zc = ZSTD_createCCtx();
    if (r->zc == NULL ||
        ZSTD_isError(ZSTD_CCtx_setParameter(r->zc, ZSTD_c_compressionLevel, r->level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(r->zc, ZSTD_c_checksumFlag, 1)))
        return UV_ENOMEM;
    return 0;
}

int oci_recompress_feed(struct oci_recompress *r, const void *p, size_t n, char *err, size_t errlen)
{
    int rc;
    if (n == 0)
        return 0;
    if (!r->un_ready) {
        /* The first bytes tell the compression (a gzip media type on a plain tar happens). */
        unsigned char head[4] = {0};
        memcpy(head, p, n < 4 ? n : 4);
        rc = oci_unpack_init(&r->un, oci_comp_of_head(head), r->csize, sink, r, r->what);
        r->un_ready = true;
        if (rc != 0)
            return rc;
    }
    return oci_unpack_feed(&r->un, p, n, err, errlen);
}

int oci_recompress_finish(struct oci_recompress *r, const struct oci_digest *diff_id, char *err,
                          size_t errlen)
{
    int rc;
    if (!r->un_ready) {
        ocisync__errf(err, errlen, "%s is empty, which no compression gives", r->what);
        return OCISYNC_EDIGESTMISMATCH;
    }
    rc = oci_unpack_finish(&r->un, diff_id, err, errlen);
    if (rc == 0)
        rc = squeeze(r, NULL, 0, true, err, errlen);
    if (rc == 0)
        rc = oci_hasher_final(&r->h, &r->digest);
    if (rc != 0)
        return rc;
    r->diff_id = r->un.digest;
    r->finished = true;
    return 0;
}

unsigned char *oci_recompress_take(struct oci_recompress *r, size_t *len)
{
    unsigned char *p = r->out;
    *len = r->out_len;
    r->out = NULL;
    r->out_len = 0;
    r->out_cap = 0;
    return p;
}

void oci_recompress_dispose(struct oci_recompress *r)
{
    if (r->un_ready)
        oci_unpack_dispose(&r->un);
    r->un_ready = false;
    if (r->z_open)
        deflateEnd(&r->z);
    r->z_open = false;
    ZSTD_freeCCtx(r->zc);
    r->zc = NULL;
    oci_hasher_dispose(&r->h);
    free(r->out);
    r->out = NULL;
    r->out_len = r->out_cap = 0;
}
