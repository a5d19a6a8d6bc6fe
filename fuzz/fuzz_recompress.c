/*
 * libFuzzer target for the streaming recompressor (oci/recompress.h): the
 * first byte picks the output (gzip or zstd), the level and the size of the
 * pieces the rest is fed in; the rest is the layer (gzip, zstd or a plain
 * tar as its first bytes say). Beyond "no crash": the output of a layer
 * that recompresses is decompressed again and must hash to the diff_id the
 * recompressor reported, and to the digest it reported for its own bytes.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc fuzz/fuzz_recompress.c \
 *       src/oci/recompress.c src/oci/unpack.c src/oci/digest.c src/common/error.c \
 *       src/common/log.c src/common/msg.c -luv -lcrypto -lz -lzstd
 *   ./a.out fuzz/corpus/recompress
 */
#include "oci/recompress.h"
#include "ocisync.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf {
    unsigned char *p;
    size_t len;
};

static void add(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    b->p = realloc(b->p, b->len + n);
    if (b->p == NULL)
        abort();
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* The output decompressed (as oci_unpack reads it) must hash to diff_id. */
static int sink_none(void *arg, const void *p, size_t n, char *err, size_t errlen)
{
    (void)arg, (void)p, (void)n, (void)err, (void)errlen;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct oci_recompress r;
    struct buf out = {0};
    struct oci_digest d;
    char why[512];
    size_t piece;
    enum oci_compression to;
    int level, rc;

    if (size < 1)
        return 0;
    to = (data[0] & 1) ? OCI_COMPRESS_ZSTD : OCI_COMPRESS_GZIP;
    level = 1 + ((data[0] >> 1) & 3); /* low levels: the fuzzer's time goes to the input */
    piece = (size_t)1 << ((data[0] >> 3) & 15);
    data++;
    size--;
    if (oci_recompress_init(&r, size, to, level, "layer sha256:fuzz") != 0)
        abort();
    rc = 0;
    for (size_t off = 0; rc == 0 && off < size; off += piece) {
        size_t n = size - off < piece ? size - off : piece, len;
        unsigned char *p;
        rc = oci_recompress_feed(&r, data + off, n, why, sizeof(why));
        if (rc != 0 && (rc > 0 || why[0] == '\0'))
            abort(); /* errors are negative, with a message */
        p = oci_recompress_take(&r, &len);
        add(&out, p, len);
        free(p);
    }
    if (rc == 0 && oci_recompress_finish(&r, NULL, why, sizeof(why)) == 0) {
        struct oci_unpack u;
        size_t len;
        unsigned char *p = oci_recompress_take(&r, &len);
        add(&out, p, len);
        free(p);
        if (out.len != r.total_out ||
            oci_digest_buffer(OCI_DIGEST_SHA256, out.p, out.len, &d) != 0 ||
            !oci_digest_equal(&d, &r.digest))
            abort();
        /* Decompressed again, the output gives the layer's diff_id. */
        if (oci_unpack_init(&u, to == OCI_COMPRESS_ZSTD ? OCI_COMP_ZSTD : OCI_COMP_GZIP, out.len,
                            sink_none, NULL, "output") != 0 ||
            oci_unpack_feed(&u, out.p, out.len, why, sizeof(why)) != 0 ||
            oci_unpack_finish(&u, &r.diff_id, why, sizeof(why)) != 0) {
            fprintf(stderr, "recompressed output does not give the diff_id: %s\n", why);
            abort();
        }
        oci_unpack_dispose(&u);
    }
    oci_recompress_dispose(&r);
    free(out.p);
    return 0;
}
