/*
 * The blob relay (src/oci/relay.c): a bounded ring between a source body and
 * a destination upload that hashes what passes and holds back the final byte
 * until size and digest are verified.
 */
#include "test.h"

#include "ocisync.h"
#include "engine/relay.h"

#include <stdint.h>
#include <uv.h>

#define SHA256_EMPTY "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Deterministic, non-repeating bytes (xorshift), so a misplaced span shows. */
static char *make_blob(size_t n, uint64_t seed)
{
    char *b = malloc(n ? n : 1);
    uint64_t x = seed | 1;
    if (b == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (char)(x >> 24);
    }
    return b;
}

static struct oci_digest digest_of(enum oci_digest_alg alg, const char *data, size_t n)
{
    struct oci_digest d;
    if (oci_digest_buffer(alg, data, n, &d) != 0)
        abort();
    return d;
}

/*
 * Drives a relay the way the copy engine does: the producer pushes pieces
 * until told to pause, the consumer takes odd-sized spans and may take less
 * than offered, and a consume that reports "may resume" restarts the
 * producer. Checks every byte and that the final byte is never offered
 * before verification.
 */
static void relay_roundtrip(enum oci_digest_alg alg, size_t size, size_t piece)
{
    static const size_t steps[] = {1, 4093, 65537, 333333, 7, 1048576, 99991, 3};
    char *src = make_blob(size, size * 31 + piece);
    struct oci_digest d = digest_of(alg, src, size);
    struct engine_relay r;
    uint64_t in = 0;
    bool paused = false;
    unsigned pauses = 0, resumes = 0, iter = 0, mismatches = 0, early_final = 0;
    size_t step_i = 0;

    CHECK_INT(engine_relay_init(&r, &d, size), 0);
    while (r.out < size && iter++ < 1000000) {
        while (!paused && in < size) {
            size_t n = size - in < piece ? (size_t)(size - in) : piece;
            int rc = engine_relay_push(&r, src + in, n);
            CHECK(rc == 0 || rc == 1);
            if (rc < 0)
                goto out;
            in += n;
            CHECK_INT(r.in, in);
            if (rc == 1) {
                paused = true;
                pauses++;
                /* Told to pause exactly at the high water mark. */
                CHECK(r.in - r.out >= ENGINE_RELAY_HIGH_WATER);
            } else {
                CHECK(r.in - r.out < ENGINE_RELAY_HIGH_WATER);
            }
        }
        const char *p = NULL;
        size_t max = steps[step_i++ % (sizeof(steps) / sizeof(steps[0]))];
        size_t k = engine_relay_peek(&r, &p, max);
        CHECK(k <= max);
        if (k == 0) {
            /* Nothing to offer: only legitimate if all but nothing is left. */
            CHECK(r.out == size);
            break;
        }
        if (!r.verified && r.out + k >= size)
            early_final++;
        /* Sometimes the destination writes only part of what it was offered. */
        size_t take = (iter % 5 == 0 && k > 1) ? k / 2 : k;
        if (memcmp(p, src + r.out, take) != 0)
            mismatches++;
        bool resume = engine_relay_consume(&r, take);
        if (resume) {
            CHECK(paused);
            CHECK(r.in - r.out < ENGINE_RELAY_HIGH_WATER / 2);
            paused = false;
            resumes++;
        }
    }
    CHECK_INT(mismatches, 0);
    CHECK_INT(early_final, 0);
    CHECK_INT(r.out, size);
    CHECK_INT(r.in, size);
    CHECK(r.verified);
    CHECK(!r.failed);
    CHECK(pauses > 0);
    CHECK_INT(resumes, pauses - (paused ? 1 : 0));
    /* The ring wrapped around more than once. */
    CHECK(size > 2 * ENGINE_RELAY_CAPACITY);
out:
    engine_relay_dispose(&r);
    free(src);
}

TEST(roundtrip_wraparound_sha256)
{
    relay_roundtrip(OCI_DIGEST_SHA256, 6 * 1024 * 1024 + 12345, 256 * 1024);
}

TEST(roundtrip_wraparound_sha512)
{
    relay_roundtrip(OCI_DIGEST_SHA512, 5 * 1024 * 1024 + 1, 256 * 1024);
}

TEST(roundtrip_odd_pieces)
{
    /* Source pieces that do not divide the ring either. */
    relay_roundtrip(OCI_DIGEST_SHA256, 4 * 1024 * 1024 + 777, 65521);
}

TEST(high_water_pause_resume)
{
    const size_t piece = 256 * 1024;
    size_t size = 4 * 1024 * 1024;
    char *src = make_blob(size, 7);
    struct oci_digest d = digest_of(OCI_DIGEST_SHA256, src, size);
    struct engine_relay r;
    const char *p;
    CHECK_INT(engine_relay_init(&r, &d, size), 0);
    CHECK_INT(engine_relay_push(&r, src, piece), 0);
    CHECK_INT(engine_relay_push(&r, src + piece, piece), 0);
    CHECK_INT(engine_relay_push(&r, src + 2 * piece, piece), 0);
    /* 1 MiB in the ring: pause. */
    CHECK_INT(engine_relay_push(&r, src + 3 * piece, piece), 1);
    CHECK(r.producer_paused);
    /* Draining to exactly half the mark is not yet enough. */
    CHECK_INT(engine_relay_peek(&r, &p, 512 * 1024), 512 * 1024);
    CHECK(memcmp(p, src, 512 * 1024) == 0);
    CHECK(!engine_relay_consume(&r, 512 * 1024));
    CHECK(r.producer_paused);
    /* One byte more and the producer may go on; it is told once. */
    CHECK_INT(engine_relay_peek(&r, &p, 1), 1);
    CHECK(engine_relay_consume(&r, 1));
    CHECK(!r.producer_paused);
    CHECK_INT(engine_relay_peek(&r, &p, 100), 100);
    CHECK(!engine_relay_consume(&r, 100));
    /* A producer that ignores the pause fills the ring and is refused, not overrun. */
    uint64_t in = r.in;
    int rc = 0;
    while (rc >= 0 && in + piece <= size) {
        rc = engine_relay_push(&r, src + in, piece);
        if (rc >= 0)
            in += piece;
    }
    CHECK_INT(rc, UV_ENOBUFS);
    CHECK_INT(r.in, in);
    CHECK(r.in - r.out <= ENGINE_RELAY_CAPACITY);
    CHECK(!r.failed);
    /* What was accepted is still intact. */
    size_t k = engine_relay_peek(&r, &p, UINT64_MAX);
    CHECK(k > 0);
    CHECK(memcmp(p, src + r.out, k) == 0);
    engine_relay_dispose(&r);
    free(src);
}

TEST(final_byte_held_until_verified)
{
    size_t size = 1000;
    char *src = make_blob(size, 99);
    struct oci_digest d = digest_of(OCI_DIGEST_SHA256, src, size);
    struct engine_relay r;
    const char *p;
    size_t k;
    CHECK_INT(engine_relay_init(&r, &d, size), 0);
    for (size_t off = 0; off < size; off += 100) {
        /* Before each push, everything received so far has gone out, never the final byte. */
        k = engine_relay_peek(&r, &p, UINT64_MAX);
        CHECK(r.out + k <= r.in);
        CHECK(r.out + k < size);
        if (k > 0) {
            CHECK(memcmp(p, src + r.out, k) == 0);
            engine_relay_consume(&r, k);
        }
        CHECK(!r.verified);
        CHECK_INT(engine_relay_push(&r, src + off, 100), 0);
    }
    CHECK(r.verified);
    k = engine_relay_peek(&r, &p, UINT64_MAX);
    CHECK_INT(k, 100);
    CHECK(memcmp(p, src + 900, 100) == 0);
    engine_relay_consume(&r, k);
    CHECK_INT(r.out, size);
    CHECK_INT(engine_relay_peek(&r, &p, UINT64_MAX), 0);
    engine_relay_dispose(&r);

    /* One byte blob: nothing until it is verified. */
    d = digest_of(OCI_DIGEST_SHA256, "x", 1);
    CHECK_INT(engine_relay_init(&r, &d, 1), 0);
    CHECK_INT(engine_relay_peek(&r, &p, UINT64_MAX), 0);
    CHECK_INT(engine_relay_push(&r, "x", 1), 0);
    CHECK_INT(engine_relay_peek(&r, &p, UINT64_MAX), 1);
    CHECK(p[0] == 'x');
    engine_relay_dispose(&r);
    free(src);
}

TEST(wrong_digest)
{
    size_t size = 300000;
    char *src = make_blob(size, 5);
    char *other = make_blob(size, 6);
    /* The digest of different content of the same size. */
    struct oci_digest d = digest_of(OCI_DIGEST_SHA256, other, size);
    struct engine_relay r;
    const char *p;
    size_t k;
    CHECK_INT(engine_relay_init(&r, &d, size), 0);
    CHECK_INT(engine_relay_push(&r, src, 100000), 0);
    k = engine_relay_peek(&r, &p, UINT64_MAX);
    CHECK_INT(k, 100000);
    engine_relay_consume(&r, k);
    CHECK_INT(engine_relay_push(&r, src + 100000, 199999), 0);
    k = engine_relay_peek(&r, &p, UINT64_MAX);
    CHECK_INT(k, 199999);
    engine_relay_consume(&r, k);
    CHECK_INT(r.out, size - 1);
    /* The final byte makes the verdict: mismatch, and nothing more leaves. */
    CHECK_INT(engine_relay_push(&r, src + size - 1, 1), OCISYNC_EDIGESTMISMATCH);
    CHECK(r.failed);
    CHECK(!r.verified);
    CHECK_INT(engine_relay_peek(&r, &p, UINT64_MAX), 0);
    CHECK_INT(r.out, size - 1);
    engine_relay_dispose(&r);

    /* All in one push: nothing ever offered. */
    CHECK_INT(engine_relay_init(&r, &d, size), 0);
    CHECK_INT(engine_relay_push(&r, src, size), OCISYNC_EDIGESTMISMATCH);
    CHECK_INT(engine_relay_peek(&r, &p, UINT64_MAX), 0);
    CHECK_INT(r.out, 0);
    engine_relay_dispose(&r);

    /* Right bytes, but the digest of another algorithm's idea of them: sha512 expected. */
    d = digest_of(OCI_DIGEST_SHA512, other, size);
    CHECK_INT(engine_relay_init(&r, &d, size), 0);
    CHECK_INT(engine_relay_push(&r, src, size), OCISYNC_EDIGESTMISMATCH);
    CHECK_INT(engine_relay_peek(&r, &p, UINT64_MAX), 0);
    engine_relay_dispose(&r);
    free(src);
    free(other);
}

TEST(size_exceeded)
{
    char *src = make_blob(200, 3);
    struct oci_digest d = digest_of(OCI_DIGEST_SHA256, src, 100);
    struct engine_relay r;
    const char *p;
    CHECK_INT(engine_relay_init(&r, &d, 100), 0);
    CHECK_INT(engine_relay_push(&r, src, 60), 0);
    CHECK_INT(engine_relay_push(&r, src + 60, 41), OCISYNC_ESIZEMISMATCH);
    CHECK(r.failed);
    CHECK_INT(r.in, 60);
    CHECK_INT(engine_relay_peek(&r, &p, UINT64_MAX), 0);
    engine_relay_dispose(&r);

    /* More than size in one go. */
    CHECK_INT(engine_relay_init(&r, &d, 100), 0);
    CHECK_INT(engine_relay_push(&r, src, 200), OCISYNC_ESIZEMISMATCH);
    CHECK_INT(engine_relay_peek(&r, &p, UINT64_MAX), 0);
    engine_relay_dispose(&r);

    /* A byte after a verified blob. */
    CHECK_INT(engine_relay_init(&r, &d, 100), 0);
    CHECK_INT(engine_relay_push(&r, src, 100), 0);
    CHECK(r.verified);
    CHECK_INT(engine_relay_push(&r, src + 100, 1), OCISYNC_ESIZEMISMATCH);
    engine_relay_dispose(&r);
    free(src);
}

TEST(empty_blob)
{
    struct oci_digest d;
    struct engine_relay r;
    const char *p = NULL;
    CHECK_INT(oci_digest_parse_str(SHA256_EMPTY, &d), 0);
    CHECK_INT(engine_relay_init(&r, &d, 0), 0);
    CHECK(r.verified);
    CHECK(!r.failed);
    CHECK_INT(engine_relay_peek(&r, &p, UINT64_MAX), 0);
    CHECK_INT(engine_relay_push(&r, "x", 1), OCISYNC_ESIZEMISMATCH);
    engine_relay_dispose(&r);

    /* The wrong digest for nothing is caught at init too. */
    d = digest_of(OCI_DIGEST_SHA256, "x", 1);
    CHECK_INT(engine_relay_init(&r, &d, 0), 0);
    CHECK(!r.verified);
    CHECK(r.failed);
    CHECK_INT(engine_relay_peek(&r, &p, UINT64_MAX), 0);
    engine_relay_dispose(&r);
}

/* Pushing nothing is a no-op in every state, including after the verdict. */
TEST(zero_length_push)
{
    char *src = make_blob(10, 4);
    struct oci_digest d = digest_of(OCI_DIGEST_SHA256, src, 10);
    struct engine_relay r;
    CHECK_INT(engine_relay_init(&r, &d, 10), 0);
    CHECK_INT(engine_relay_push(&r, src, 0), 0);
    CHECK_INT(engine_relay_push(&r, src, 10), 0);
    CHECK(r.verified);
    CHECK_INT(engine_relay_push(&r, src + 10, 0), 0);
    CHECK(r.verified);
    CHECK(!r.failed);
    engine_relay_dispose(&r);

    CHECK_INT(oci_digest_parse_str(SHA256_EMPTY, &d), 0);
    CHECK_INT(engine_relay_init(&r, &d, 0), 0);
    CHECK_INT(engine_relay_push(&r, "", 0), 0);
    CHECK(r.verified);
    engine_relay_dispose(&r);
    free(src);
}

TEST_MAIN(T(roundtrip_wraparound_sha256), T(roundtrip_wraparound_sha512), T(roundtrip_odd_pieces),
          T(high_water_pause_resume), T(final_byte_held_until_verified), T(wrong_digest),
          T(size_exceeded), T(empty_blob), T(zero_length_push))
