/*
 * A relay carries one blob from a source response body to destination
 * request bodies through a bounded ring buffer, hashing the bytes as they
 * pass. The producer side pauses its source when the ring is above its high
 * water mark; the consumer side offers contiguous spans to the HTTP client.
 *
 * The last byte of the blob is held back until the digest and size are
 * verified, so a destination never receives a complete blob whose content
 * is wrong: the upload stays one byte short and is abandoned.
 */
#ifndef ENGINE_RELAY_H
#define ENGINE_RELAY_H

#include "oci/digest.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENGINE_RELAY_CAPACITY (2 * 1024 * 1024)
#define ENGINE_RELAY_HIGH_WATER (1024 * 1024)

struct engine_relay {
    char *buf;       /* owned, cap bytes */
    size_t cap;      /* ENGINE_RELAY_CAPACITY, or the blob's size when smaller */
    uint64_t in;     /* bytes received from the source so far */
    uint64_t out;    /* bytes released by the destination so far */
    uint64_t size;   /* expected size */
    uint64_t hashed; /* bytes fed to the hasher: ahead of in after a rewind */
    struct oci_digest expected;
    struct oci_hasher hasher;
    bool verified; /* all bytes received and the digest matched */
    bool failed;   /* the source sent more bytes than expected or the wrong ones */
    bool producer_paused;
};

int engine_relay_init(struct engine_relay *r, const struct oci_digest *expected, uint64_t size);
void engine_relay_dispose(struct engine_relay *r);

/*
 * Takes len bytes from the source. Returns 0 if there is room for more, 1
 * (PROTO_PAUSE) if the producer should pause, OCISYNC_ESIZEMISMATCH if the
 * source sent more than size bytes, OCISYNC_EDIGESTMISMATCH if all bytes are in
 * and the digest is wrong.
 */
int engine_relay_push(struct engine_relay *r, const char *data, size_t len);
/* Bytes the consumer may take now, as one contiguous span (limited to max). */
size_t engine_relay_peek(struct engine_relay *r, const char **data, uint64_t max);
/* Releases n bytes taken by the consumer. Returns true if a paused producer may resume. */
bool engine_relay_consume(struct engine_relay *r, size_t n);

/*
 * Drops what the ring holds and continues at offset (at most what was
 * received): the source is asked again from there, for a destination that
 * lost the bytes after offset. Bytes before the furthest point already
 * hashed are not hashed twice; the digest still covers every byte once.
 */
void engine_relay_rewind(struct engine_relay *r, uint64_t offset);

#endif
