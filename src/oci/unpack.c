/*
 * Streaming decompression of layers, shared by docker archives (which write
 * the output to a file) and the image stack (which parses it as a tar).
 */
#include "oci/unpack.h"

#include "common/msg.h"
#include "oci/docker_archive.h"
#include "ocisync.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

enum oci_comp oci_comp_of_head(const unsigned char head[4])
{
    if (head[0] == 0x1f && head[1] == 0x8b)
        return OCI_COMP_GZIP;
    if (head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd)
        return OCI_COMP_ZSTD;
    return OCI_COMP_TAR;
}

int oci_unpack_init(struct oci_unpack *u, enum oci_comp comp, uint64_t csize, oci_unpack_sink sink,
                    void *arg, const char *what)
{
    int rc;

    memset(u, 0, sizeof(*u));
    u->comp = comp;
    u->sink = sink;
    u->arg = arg;
    u->csize = csize;
    u->limit =
        csize > UINT64_MAX / OCI_LAYER_UNPACK_RATIO ? UINT64_MAX : csize * OCI_LAYER_UNPACK_RATIO;
    if (u->limit < OCI_LAYER_UNPACK_MIN)
        u->limit = OCI_LAYER_UNPACK_MIN;
    u->zr = Z_OK;
    u->zlast = 1;
    snprintf(u->what, sizeof(u->what), "%s", what);
    u->o = malloc(OCI_UNPACK_BUF);
    if (u->o == NULL)
        return UV_ENOMEM;
    rc = oci_hasher_init(&u->h, OCI_DIGEST_SHA256);
    if (rc != 0)
        return rc;
    if (comp == OCI_COMP_GZIP) {
        if (inflateInit2(&u->z, 15 + 32) != Z_OK)
            return UV_ENOMEM;
        u->z_open = true;
    } else if (comp == OCI_COMP_ZSTD) {
        u->zd = ZSTD_createDStream();
        if (u->zd == NULL)
            return UV_ENOMEM;
    }
    return 0;
}

/* Hashes, caps and hands on n bytes of the decompressed layer. */
static int emit(struct oci_unpack *u, const unsigned char *p, size_t n, char *err, size_t errlen)
{
    if (n > u->limit - u->produced) {
        ocisync__errf(err, errlen,
                      "%s (%" PRIu64 " bytes compressed) decompresses to more than %" PRIu64
                      " bytes (stopped at %" PRIu64 "): over both %" PRIu64
                      " MiB and %d times its compressed size, refused as a decompression bomb",
                      u->what, u->csize, u->limit, u->produced + n, OCI_LAYER_UNPACK_MIN >> 20,
                      OCI_LAYER_UNPACK_RATIO);
        return OCISYNC_ETOOBIG;
    }
    u->produced += n;
    oci_hasher_update(&u->h, p, n);
    if (u->sink == NULL || n == 0)
        return 0;
    return u->sink(u->arg, p, n, err, errlen);
}

int oci_unpack_feed(struct oci_unpack *u, const void *p, size_t n, char *err, size_t errlen)
{
    int rc = 0;

    if (u->comp == OCI_COMP_TAR)
        return emit(u, p, n, err, errlen);
    if (u->comp == OCI_COMP_GZIP) {
        u->z.next_in = (Bytef *)p;
        u->z.avail_in = (uInt)n;
        do {
            if (u->zr == Z_STREAM_END) {
                if (u->z.avail_in == 0)
                    break;
                inflateReset(&u->z); /* the next member of a multi-member gzip */
            }
            u->z.next_out = u->o;
            u->z.avail_out = OCI_UNPACK_BUF;
            u->zr = inflate(&u->z, Z_NO_FLUSH);
            if (u->zr != Z_OK && u->zr != Z_STREAM_END && u->zr != Z_BUF_ERROR) {
                ocisync__errf(err, errlen, "%s does not decompress (gzip: %s)", u->what,
                              u->z.msg ? u->z.msg : "error");
                return OCISYNC_EDIGESTMISMATCH;
            }
            rc = emit(u, u->o, OCI_UNPACK_BUF - u->z.avail_out, err, errlen);
        } while (rc == 0 && (u->z.avail_in > 0 || u->z.avail_out == 0));
        return rc;
    }
    {
        ZSTD_inBuffer ib = {p, n, 0};
        ZSTD_outBuffer ob;
        do {
            ob = (ZSTD_outBuffer){u->o, OCI_UNPACK_BUF, 0};
            u->zlast = ZSTD_decompressStream(u->zd, &ob, &ib);
            if (ZSTD_isError(u->zlast)) {
                ocisync__errf(err, errlen, "%s does not decompress (zstd: %s)", u->what,
                              ZSTD_getErrorName(u->zlast));
                return OCISYNC_EDIGESTMISMATCH;
            }
            /* A full output buffer may leave more to flush, even with the input used up. */
            rc = emit(u, u->o, ob.pos, err, errlen);
        } while (rc == 0 && (ib.pos < ib.size || ob.pos == ob.size));
    }
    return rc;
}

int oci_unpack_finish(struct oci_unpack *u, const struct oci_digest *diff_id, char *err,
                      size_t errlen)
{
    int rc;

    if ((u->comp == OCI_COMP_GZIP && u->zr != Z_STREAM_END) ||
        (u->comp == OCI_COMP_ZSTD && u->zlast != 0)) {
        ocisync__errf(err, errlen, "%s ends early (%s)", u->what,
                      u->comp == OCI_COMP_GZIP ? "gzip" : "zstd");
        return OCISYNC_EDIGESTMISMATCH;
    }
    rc = oci_hasher_final(&u->h, &u->digest);
    if (rc != 0) {
        ocisync__errf(err, errlen, "cannot hash %s: %s", u->what, uv_strerror(rc));
        return rc;
    }
    if (diff_id != NULL && !oci_digest_equal(&u->digest, diff_id)) {
        ocisync__errf(err, errlen, "%s decompresses to %s, but the config's diff_id is %s", u->what,
                      u->digest.str, diff_id->str);
        return OCISYNC_EDIGESTMISMATCH;
    }
    return 0;
}

void oci_unpack_dispose(struct oci_unpack *u)
{
    if (u->z_open)
        inflateEnd(&u->z);
    u->z_open = false;
    ZSTD_freeDStream(u->zd);
    u->zd = NULL;
    oci_hasher_dispose(&u->h);
    free(u->o);
    u->o = NULL;
}
