/*
 * A layer recompressed as a stream (skopeo's --dest-compress-format): the
 * compressed bytes go in, in pieces of any size; the layer decompressed
 * (oci/unpack.h: gzip of any number of members, zstd or a plain tar, told by
 * its first bytes), hashed (its diff_id) and compressed again comes out.
 * Synchronous and without global state, so a copy runs the pieces on the
 * thread pool one after another.
 *
 * The output is a pure function of the uncompressed tar, the compression
 * and the level: gzip is one member with a fixed header (mtime 0, OS 255),
 * zstd one single-threaded frame with a content checksum. The same layer
 * recompressed twice, on any machine, gives the same blob.
 *
 * Memory is the decompressor's and compressor's state plus the output not
 * yet taken, which the caller takes after each piece: at most
 * OCI_RECOMPRESS_OUT_MAX (a piece whose output would pass it fails). The
 * decompressed size is capped as oci/unpack.h caps it.
 */
#ifndef OCI_RECOMPRESS_H
#define OCI_RECOMPRESS_H

#include "oci/digest.h"
#include "oci/layer.h"
#include "oci/unpack.h"

#include <zlib.h>
#include <zstd.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most output one piece may leave before the caller takes it. */
#define OCI_RECOMPRESS_OUT_MAX (64 * 1024 * 1024)

struct oci_recompress {
    struct oci_unpack un; /* set up at the first bytes, which tell the compression */
    bool un_ready;
    uint64_t csize; /* the compressed layer's size, for the decompression cap */
    enum oci_compression to;
    int level;
    z_stream z;       /* gzip out */
    gz_header gzhead; /* zlib reads it at the first deflate: it lives as long as z */
    bool z_open;
    ZSTD_CCtx *zc;      /* zstd out; owned */
    unsigned char *out; /* output not yet taken; owned */
    size_t out_len, out_cap;
    struct oci_hasher h; /* of everything output */
    uint64_t total_out;
    bool finished;
    struct oci_digest digest;  /* of the output, after oci_recompress_finish */
    struct oci_digest diff_id; /* of the tar, after oci_recompress_finish */
    char what[OCI_UNPACK_WHAT_MAX];
};

/*
 * Sets r up to recompress a layer of csize compressed bytes into to (level 0:
 * gzip 6, zstd 3; else gzip 1-9, zstd 1-19). what names the layer in
 * messages. Returns 0, OCISYNC_EUSAGE for a level out of range, or UV_ENOMEM;
 * call oci_recompress_dispose after any return.
 */
int oci_recompress_init(struct oci_recompress *r, uint64_t csize, enum oci_compression to,
                        int level, const char *what);
/*
 * Takes the next n compressed bytes; what they give is appended to r->out.
 * Returns 0, or oci_unpack_feed's errors (the bytes do not decompress, a
 * decompression bomb), OCISYNC_ETOOBIG past OCI_RECOMPRESS_OUT_MAX, UV_EIO
 * when the compressor fails; with a sentence in err.
 */
int oci_recompress_feed(struct oci_recompress *r, const void *p, size_t n, char *err,
                        size_t errlen);
/*
 * At the end of the input: the stream must be complete and, unless diff_id
 * is NULL, decompress to it; the compressor's last bytes go to r->out, and
 * r->digest and r->diff_id are set (r->digest covers output already taken).
 */
int oci_recompress_finish(struct oci_recompress *r, const struct oci_digest *diff_id, char *err,
                          size_t errlen);
/*
 * Hands the output so far to the caller (who frees it; NULL when there is
 * none) and starts r->out afresh.
 */
unsigned char *oci_recompress_take(struct oci_recompress *r, size_t *len);
void oci_recompress_dispose(struct oci_recompress *r);

#endif
