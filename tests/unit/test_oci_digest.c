/*
 * Digest parsing (strict: only sha256 / sha512 in lowercase hex) and the
 * streaming hasher, checked against the FIPS 180 known answers.
 */
#include "test.h"

#include "ocisync.h"
#include "oci/digest.h"

#include <uv.h>

#define HEX64_A "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA256_EMPTY "sha256:" HEX64_A
#define SHA256_ABC "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA256_448 "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
#define SHA256_MILLION_A "sha256:cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
#define SHA512_EMPTY                                                                               \
    "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff831" \
    "8d2877eec2f63b931bd47417a81a538327af927da3e"
#define SHA512_ABC                                                                                 \
    "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3" \
    "c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
#define SHA512_896                                                                                 \
    "sha512:8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b9" \
    "9dec4b5433ac7d329eeb6dd26545e96e55b874be909"
#define SHA512_MILLION_A                                                                           \
    "sha512:e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973ebde0ff244877ea60a4cb04" \
    "32ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b"

#define MSG_448 "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
#define MSG_896                                                                                    \
    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmno" \
    "p"                                                                                            \
    "qrsmnopqrstnopqrstu"

/* True if every byte of d is zero, as a failed parse must leave it. */
static int is_zeroed(const struct oci_digest *d)
{
    const unsigned char *p = (const unsigned char *)d;
    for (size_t i = 0; i < sizeof(*d); i++) {
        if (p[i] != 0)
            return 0;
    }
    return 1;
}

/* Parses s both ways and expects a rejection from each, with out cleared. */
static void expect_bad_str(const char *s)
{
    struct oci_digest d;

    memset(&d, 0x5a, sizeof(d));
    CHECK_INT(oci_digest_parse_str(s, &d), OCISYNC_EDIGEST);
    CHECK(is_zeroed(&d));
    if (s != NULL) {
        memset(&d, 0x5a, sizeof(d));
        CHECK_INT(oci_digest_parse(s, strlen(s), &d), OCISYNC_EDIGEST);
        CHECK(is_zeroed(&d));
    }
}

/* Parses exactly len bytes from a heap copy, so ASan sees any read past them. */
static int parse_exact(const char *s, size_t len, struct oci_digest *d)
{
    char *copy = malloc(len ? len : 1);
    int rc;

    memcpy(copy, s, len);
    rc = oci_digest_parse(copy, len, d);
    free(copy);
    return rc;
}

TEST(parse_sha256)
{
    struct oci_digest d;

    CHECK_INT(oci_digest_parse_str(SHA256_ABC, &d), 0);
    CHECK_INT(d.alg, OCI_DIGEST_SHA256);
    CHECK_STR(d.str, SHA256_ABC);
    CHECK_STR(oci_digest_hex(&d), SHA256_ABC + 7);
    CHECK_INT(strlen(oci_digest_hex(&d)), 64);
    CHECK(oci_digest_hex(&d) >= d.str && oci_digest_hex(&d) < d.str + sizeof(d.str));

    CHECK_INT(oci_digest_parse(SHA256_EMPTY, strlen(SHA256_EMPTY), &d), 0);
    CHECK_STR(d.str, SHA256_EMPTY);
    CHECK_INT(parse_exact(SHA256_EMPTY, strlen(SHA256_EMPTY), &d), 0);
    CHECK_STR(d.str, SHA256_EMPTY);
}

TEST(parse_sha512)
{
    struct oci_digest d;

    CHECK_INT(oci_digest_parse_str(SHA512_ABC, &d), 0);
    CHECK_INT(d.alg, OCI_DIGEST_SHA512);
    CHECK_STR(d.str, SHA512_ABC);
    CHECK_INT(strlen(d.str), 135);
    CHECK_INT(strlen(oci_digest_hex(&d)), 128);
    CHECK_STR(oci_digest_hex(&d), SHA512_ABC + 7);
    /* The longest digest fills the buffer exactly, terminator included. */
    CHECK_INT(strlen(d.str) + 1, OCI_DIGEST_MAX);
    CHECK_INT(parse_exact(SHA512_EMPTY, strlen(SHA512_EMPTY), &d), 0);
    CHECK_STR(d.str, SHA512_EMPTY);
}

TEST(parse_length_delimited)
{
    struct oci_digest d;
    char buf[256];

    /* A prefix of a longer string is parsed on its own, without its NUL. */
    snprintf(buf, sizeof(buf), "%s trailing junk", SHA256_ABC);
    CHECK_INT(oci_digest_parse(buf, strlen(SHA256_ABC), &d), 0);
    CHECK_STR(d.str, SHA256_ABC);
    CHECK_INT(oci_digest_parse_str(buf, &d), OCISYNC_EDIGEST);

    /* Truncation by one byte, at every length, is rejected. */
    for (size_t n = 0; n < strlen(SHA256_ABC); n++)
        CHECK_INT(parse_exact(SHA256_ABC, n, &d), OCISYNC_EDIGEST);
    for (size_t n = 0; n < strlen(SHA512_ABC); n++)
        CHECK_INT(parse_exact(SHA512_ABC, n, &d), OCISYNC_EDIGEST);

    /* A NUL inside the counted bytes is never hex. */
    memcpy(buf, SHA256_ABC, strlen(SHA256_ABC) + 1);
    buf[40] = '\0';
    CHECK_INT(oci_digest_parse(buf, strlen(SHA256_ABC), &d), OCISYNC_EDIGEST);
    CHECK(is_zeroed(&d));
    memcpy(buf, SHA256_ABC, strlen(SHA256_ABC) + 1);
    buf[6] = '\0'; /* the ':' */
    CHECK_INT(oci_digest_parse(buf, strlen(SHA256_ABC), &d), OCISYNC_EDIGEST);
    /* Counting the terminator makes it one byte too long. */
    CHECK_INT(oci_digest_parse(SHA256_ABC, strlen(SHA256_ABC) + 1, &d), OCISYNC_EDIGEST);

    CHECK_INT(oci_digest_parse(NULL, 0, &d), OCISYNC_EDIGEST);
    CHECK_INT(oci_digest_parse(NULL, 71, &d), OCISYNC_EDIGEST);
    CHECK_INT(oci_digest_parse("", 0, &d), OCISYNC_EDIGEST);
}

TEST(reject_malformed)
{
    char buf[512];

    expect_bad_str(NULL);
    expect_bad_str("");
    expect_bad_str("sha256");
    expect_bad_str("sha256:");
    expect_bad_str(":" HEX64_A);
    expect_bad_str(HEX64_A);
    /* Uppercase anywhere: algorithm or hex. */
    expect_bad_str("SHA256:" HEX64_A);
    expect_bad_str("Sha256:" HEX64_A);
    expect_bad_str("sha256:E3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect_bad_str("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85F");
    /* Wrong length for the algorithm. */
    expect_bad_str("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85");
    expect_bad_str("sha256:" HEX64_A "0");
    expect_bad_str("sha256:" HEX64_A HEX64_A);
    expect_bad_str("sha512:" HEX64_A);
    expect_bad_str("sha512:" HEX64_A HEX64_A "0");
    expect_bad_str("sha512:" HEX64_A HEX64_A "00");
    /* Non-hex characters of every sort. */
    expect_bad_str("sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect_bad_str("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85 ");
    expect_bad_str(" sha256:" HEX64_A);
    expect_bad_str("sha256: " HEX64_A);
    expect_bad_str("sha256:" HEX64_A "\n");
    expect_bad_str("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8\xc3\xa9");
    expect_bad_str("sha256:-3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect_bad_str("sha256:+3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* Path characters must never reach a file name or URL. */
    expect_bad_str("sha256:../x");
    expect_bad_str("sha256:../../../../../../../../../../../../../../../../../../etc/passwd000");
    expect_bad_str("sha256:/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85");
    expect_bad_str("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b785/..");
    expect_bad_str("sha256/" HEX64_A);
    /* Algorithms other than the two supported ones, and go-digest's extensions. */
    expect_bad_str("md5:d41d8cd98f00b204e9800998ecf8427e");
    expect_bad_str("sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709");
    expect_bad_str("sha384:38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edeb"
                   "fe76f65fbd51ad2f14898b95b");
    expect_bad_str("sha256+b64:" HEX64_A);
    expect_bad_str("sha256::" HEX64_A);
    expect_bad_str("blake3:" HEX64_A);
    expect_bad_str("sha25:" HEX64_A "0");

    /* Overlong input: a digest followed by far more hex. */
    memset(buf, 'a', sizeof(buf) - 1);
    buf[sizeof(buf) - 1] = '\0';
    memcpy(buf, "sha256:", 7);
    expect_bad_str(buf);
    memcpy(buf, "sha512:", 7);
    expect_bad_str(buf);
}

TEST(reject_huge_string)
{
    /* parse_str must not scan a long hostile string to its end. */
    size_t n = 1 << 20;
    char *big = malloc(n + 1);
    struct oci_digest d;

    memset(big, 'a', n);
    memcpy(big, "sha256:", 7);
    big[n] = '\0';
    CHECK_INT(oci_digest_parse_str(big, &d), OCISYNC_EDIGEST);
    CHECK_INT(oci_digest_parse(big, n, &d), OCISYNC_EDIGEST);
    free(big);
}

TEST(equal)
{
    struct oci_digest a, b, c, e;

    CHECK_INT(oci_digest_parse_str(SHA256_ABC, &a), 0);
    CHECK_INT(oci_digest_parse_str(SHA256_ABC, &b), 0);
    CHECK_INT(oci_digest_parse_str(SHA256_EMPTY, &c), 0);
    CHECK_INT(oci_digest_parse_str(SHA512_ABC, &e), 0);
    CHECK(oci_digest_equal(&a, &b));
    CHECK(oci_digest_equal(&a, &a));
    CHECK(!oci_digest_equal(&a, &c));
    CHECK(!oci_digest_equal(&a, &e));
    CHECK(!oci_digest_equal(&a, NULL));
    CHECK(!oci_digest_equal(NULL, &a));

    /* A zeroed digest has an empty hex part, not a stray pointer. */
    memset(&a, 0, sizeof(a));
    CHECK_STR(oci_digest_hex(&a), "");
}

TEST(known_answers)
{
    struct oci_digest d;

    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, "", 0, &d), 0);
    CHECK_STR(d.str, SHA256_EMPTY);
    CHECK_INT(d.alg, OCI_DIGEST_SHA256);
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, NULL, 0, &d), 0);
    CHECK_STR(d.str, SHA256_EMPTY);
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, "abc", 3, &d), 0);
    CHECK_STR(d.str, SHA256_ABC);
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, MSG_448, strlen(MSG_448), &d), 0);
    CHECK_STR(d.str, SHA256_448);

    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA512, "", 0, &d), 0);
    CHECK_STR(d.str, SHA512_EMPTY);
    CHECK_INT(d.alg, OCI_DIGEST_SHA512);
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA512, "abc", 3, &d), 0);
    CHECK_STR(d.str, SHA512_ABC);
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA512, MSG_896, strlen(MSG_896), &d), 0);
    CHECK_STR(d.str, SHA512_896);

    /* "abc" differs from "abd" and from "ab": the hash really covers the data. */
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, "abd", 3, &d), 0);
    CHECK(strcmp(d.str, SHA256_ABC) != 0);
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, "abc", 2, &d), 0);
    CHECK(strcmp(d.str, SHA256_ABC) != 0);
}

TEST(million_a_streamed)
{
    /* The FIPS 180 long message, fed in 1000 pieces of 1000 bytes. */
    static char chunk[1000];
    struct oci_hasher h256, h512;
    struct oci_digest d;

    memset(chunk, 'a', sizeof(chunk));
    CHECK_INT(oci_hasher_init(&h256, OCI_DIGEST_SHA256), 0);
    CHECK_INT(oci_hasher_init(&h512, OCI_DIGEST_SHA512), 0);
    for (int i = 0; i < 1000; i++) {
        oci_hasher_update(&h256, chunk, sizeof(chunk));
        oci_hasher_update(&h512, chunk, sizeof(chunk));
    }
    CHECK_INT(h256.n_bytes, 1000000);
    CHECK_INT(oci_hasher_final(&h256, &d), 0);
    CHECK_STR(d.str, SHA256_MILLION_A);
    CHECK_INT(oci_hasher_final(&h512, &d), 0);
    CHECK_STR(d.str, SHA512_MILLION_A);
    CHECK_INT(h512.n_bytes, 1000000);
    CHECK(h256.md_ctx == NULL);
    CHECK(h512.md_ctx == NULL);
}

TEST(streaming_equals_one_shot)
{
    /* Piece sizes straddle the 64- and 128-byte block boundaries. */
    static const size_t pieces[] = {1, 0, 7, 55, 56, 63, 64, 65, 111, 112, 127, 128, 129, 4096, 3};
    size_t n = 256 * 1024, off, k;
    unsigned char *buf = malloc(n);
    uint32_t x = 2463534242u;
    struct oci_digest one, streamed;
    struct oci_hasher h;

    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
    for (int alg = OCI_DIGEST_SHA256; alg <= OCI_DIGEST_SHA512; alg++) {
        CHECK_INT(oci_digest_buffer(alg, buf, n, &one), 0);
        CHECK_INT(oci_hasher_init(&h, alg), 0);
        for (off = 0, k = 0; off < n; k++) {
            size_t len = pieces[k % (sizeof(pieces) / sizeof(pieces[0]))];
            if (len > n - off)
                len = n - off;
            oci_hasher_update(&h, buf + off, len);
            off += len;
        }
        CHECK_INT(h.n_bytes, n);
        CHECK_INT(oci_hasher_final(&h, &streamed), 0);
        CHECK_STR(streamed.str, one.str);
        CHECK(oci_digest_equal(&streamed, &one));

        /* What the hasher writes is a canonical digest that parses back. */
        struct oci_digest parsed;
        CHECK_INT(oci_digest_parse_str(streamed.str, &parsed), 0);
        CHECK(oci_digest_equal(&parsed, &streamed));

        /* One flipped bit changes the digest. */
        buf[n / 2] ^= 1;
        CHECK_INT(oci_digest_buffer(alg, buf, n, &streamed), 0);
        CHECK(!oci_digest_equal(&streamed, &one));
        buf[n / 2] ^= 1;
    }
    free(buf);
}

TEST(hasher_lifecycle)
{
    struct oci_hasher h;
    struct oci_digest d;

    /* Unknown algorithms are refused and leave nothing to free. */
    CHECK_INT(oci_hasher_init(&h, (enum oci_digest_alg)0), UV_EINVAL);
    CHECK(h.md_ctx == NULL);
    CHECK_INT(oci_hasher_init(&h, (enum oci_digest_alg)99), UV_EINVAL);
    CHECK(h.md_ctx == NULL);
    CHECK_INT(oci_digest_buffer((enum oci_digest_alg)3, "abc", 3, &d), UV_EINVAL);
    CHECK(is_zeroed(&d));
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, NULL, 3, &d), UV_EINVAL);

    /* Final on a zeroed hasher fails; dispose on it is harmless. */
    memset(&h, 0, sizeof(h));
    oci_hasher_update(&h, "abc", 3);
    CHECK_INT(oci_hasher_final(&h, &d), UV_EINVAL);
    CHECK(is_zeroed(&d));
    oci_hasher_dispose(&h);

    /* Dispose without final, twice. */
    CHECK_INT(oci_hasher_init(&h, OCI_DIGEST_SHA256), 0);
    oci_hasher_update(&h, "abc", 3);
    oci_hasher_dispose(&h);
    CHECK(h.md_ctx == NULL);
    oci_hasher_dispose(&h);

    /* Final twice: the second has nothing left to finish. */
    CHECK_INT(oci_hasher_init(&h, OCI_DIGEST_SHA256), 0);
    oci_hasher_update(&h, "a", 1);
    oci_hasher_update(&h, NULL, 0);
    oci_hasher_update(&h, "bc", 2);
    CHECK_INT(oci_hasher_final(&h, &d), 0);
    CHECK_STR(d.str, SHA256_ABC);
    CHECK_INT(h.n_bytes, 3);
    CHECK_INT(oci_hasher_final(&h, &d), UV_EINVAL);
    oci_hasher_dispose(&h);

    /* Re-initialising a finished hasher starts afresh. */
    CHECK_INT(oci_hasher_init(&h, OCI_DIGEST_SHA512), 0);
    CHECK_INT(h.n_bytes, 0);
    CHECK_INT(oci_hasher_final(&h, &d), 0);
    CHECK_STR(d.str, SHA512_EMPTY);
}

TEST_MAIN(T(parse_sha256), T(parse_sha512), T(parse_length_delimited), T(reject_malformed),
          T(reject_huge_string), T(equal), T(known_answers), T(million_a_streamed),
          T(streaming_equals_one_shot), T(hasher_lifecycle))
