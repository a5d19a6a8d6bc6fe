/*
 * Layers decompressed as a stream: gzip (any number of members), zstd or a
 * plain tar, told by the layer's first bytes or its media type. What comes
 * out is hashed (for the diff_id), held to the decompression cap of
 * OCI_LAYER_UNPACK_RATIO / _MIN (oci/docker_archive.h) and handed to a sink
 * in pieces of at most OCI_UNPACK_BUF bytes. Memory is that buffer plus the
 * decompressor's, whatever the layer's size.
 */
#ifndef OCI_UNPACK_H
#define OCI_UNPACK_H

#include "oci/digest.h"

#include <zlib.h>
#include <zstd.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most bytes one call to the sink gets. */
#define OCI_UNPACK_BUF (256 * 1024)
/* The longest name of a layer in messages (longer ones are cut). */
#define OCI_UNPACK_WHAT_MAX 512

enum oci_comp { OCI_COMP_TAR, OCI_COMP_GZIP, OCI_COMP_ZSTD };

/* The compression a layer's first bytes announce (gzip or zstd magic); a plain tar otherwise. */
enum oci_comp oci_comp_of_head(const unsigned char head[4]);

/*
 * Receives the next n decompressed bytes. A non-zero return (with a sentence
 * in err) stops the layer; oci_unpack_feed returns it.
 */
typedef int (*oci_unpack_sink)(void *arg, const void *p, size_t n, char *err, size_t errlen);

struct oci_unpack {
    enum oci_comp comp;
    z_stream z;
    bool z_open;
    int zr;           /* the last inflate result */
    ZSTD_DStream *zd; /* owned */
    size_t zlast;     /* the last ZSTD_decompressStream result: 0 at the end of a frame */
    struct oci_hasher h;
    unsigned char *o; /* output, OCI_UNPACK_BUF bytes; owned */
    oci_unpack_sink sink;
    void *arg;
    uint64_t csize, limit, produced;
    struct oci_digest digest;       /* what the layer decompressed to, after finish */
    char what[OCI_UNPACK_WHAT_MAX]; /* the layer, for messages */
};

/*
 * Sets u up for a layer of csize compressed bytes (the cap is worked out
 * from it), whose output goes to sink (NULL: only hashed and capped). what
 * names the layer in messages ("layer sha256:..."). Returns 0 or UV_ENOMEM;
 * call oci_unpack_dispose after any return.
 */
int oci_unpack_init(struct oci_unpack *u, enum oci_comp comp, uint64_t csize, oci_unpack_sink sink,
                    void *arg, const char *what);
/*
 * Decompresses the next n bytes of the layer. Returns 0;
 * OCISYNC_EDIGESTMISMATCH when they do not decompress; OCISYNC_ETOOBIG past
 * the cap ("... refused as a decompression bomb"); or what the sink returned.
 */
int oci_unpack_feed(struct oci_unpack *u, const void *p, size_t n, char *err, size_t errlen);
/*
 * At the end of the layer: the stream must be complete (OCISYNC_EDIGESTMISMATCH,
 * "... ends early") and, unless diff_id is NULL, hash to it
 * (OCISYNC_EDIGESTMISMATCH, "... decompresses to X, but the config's diff_id
 * is Y"). On success u->digest holds what it hashed to.
 */
int oci_unpack_finish(struct oci_unpack *u, const struct oci_digest *diff_id, char *err,
                      size_t errlen);
/* Releases what u holds (safe on a zeroed or disposed one). */
void oci_unpack_dispose(struct oci_unpack *u);

#endif
