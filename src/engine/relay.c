#include "engine/relay.h"

#include "ocisync.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

int engine_relay_init(struct engine_relay *r, const struct oci_digest *expected, uint64_t size)
{
    int err;
    memset(r, 0, sizeof(*r));
    /* A small blob needs no more room than itself: most layers of most images are small. */
    r->cap = size < ENGINE_RELAY_CAPACITY ? (size > 0 ? (size_t)size : 1) : ENGINE_RELAY_CAPACITY;
    r->buf = malloc(r->cap);
    if (r->buf == NULL)
        return UV_ENOMEM;
    r->expected = *expected;
    r->size = size;
    err = oci_hasher_init(&r->hasher, expected->alg);
    if (err != 0) {
        free(r->buf);
        r->buf = NULL;
        return err;
    }
    if (size == 0) {
        /* Nothing will arrive: the digest of no bytes is checked now. */
        struct oci_digest got;
        err = oci_hasher_final(&r->hasher, &got);
        if (err == 0 && !oci_digest_equal(&got, expected))
            r->failed = true;
        else
            r->verified = err == 0;
    }
    return err;
}

void engine_relay_dispose(struct engine_relay *r)
{
    oci_hasher_dispose(&r->hasher);
    free(r->buf);
    r->buf = NULL;
}

int engine_relay_push(struct engine_relay *r, const char *data, size_t len)
{
    uint64_t fill = r->in - r->out;
    size_t pos, first;
    if (len > r->size - r->in) {
        r->failed = true;
        return OCISYNC_ESIZEMISMATCH;
    }
    /* The producer pauses at the high water mark, so one read buffer always fits. */
    if (len > r->cap - fill)
        return UV_ENOBUFS;
    /* After a rewind the first bytes again are already in the digest. */
    if (r->in + len > r->hashed) {
        size_t skip = r->hashed > r->in ? (size_t)(r->hashed - r->in) : 0;
        oci_hasher_update(&r->hasher, data + skip, len - skip);
        r->hashed = r->in + len;
    }
    pos = (size_t)(r->in % r->cap);
    first = r->cap - pos < len ? r->cap - pos : len;
    memcpy(r->buf + pos, data, first);
    memcpy(r->buf, data + first, len - first);
    r->in += len;
    /* Only the push that hashes the last bytes finishes the digest (empty pushes may follow). */
    if (len > 0 && r->in == r->size && !r->verified) {
        struct oci_digest got;
        int err = oci_hasher_final(&r->hasher, &got);
        if (err != 0)
            return err;
        if (!oci_digest_equal(&got, &r->expected)) {
            r->failed = true;
            return OCISYNC_EDIGESTMISMATCH;
        }
        r->verified = true;
    }
    if (r->in - r->out >= ENGINE_RELAY_HIGH_WATER) {
        r->producer_paused = true;
        return 1;
    }
    return 0;
}

size_t engine_relay_peek(struct engine_relay *r, const char **data, uint64_t max)
{
    uint64_t avail = r->in - r->out;
    size_t pos = (size_t)(r->out % r->cap);
    if (r->failed)
        return 0;
    /* Hold back the final byte until the whole blob is verified. */
    if (!r->verified && r->size > 0 && r->out + avail >= r->size)
        avail = r->size - 1 - r->out;
    if (avail > r->cap - pos)
        avail = r->cap - pos;
    if (avail > max)
        avail = max;
    *data = r->buf + pos;
    return (size_t)avail;
}

void engine_relay_rewind(struct engine_relay *r, uint64_t offset)
{
    if (offset > r->in)
        offset = r->in;
    r->in = r->out = offset;
    r->producer_paused = false;
}

bool engine_relay_consume(struct engine_relay *r, size_t n)
{
    r->out += n;
    if (r->producer_paused && r->in - r->out < ENGINE_RELAY_HIGH_WATER / 2) {
        r->producer_paused = false;
        return true;
    }
    return false;
}
