/*
 * Layers recompressed as a stream (oci/recompress.h): gzip (one member and
 * several), zstd and plain tars into gzip and zstd, checked by decompressing
 * the output again; the same bytes whatever the pieces the input comes in;
 * the output's digest and the diff_id; the levels; and what must fail:
 * bytes that do not decompress, a stream that ends early, an empty layer, a
 * diff_id that does not match, a level out of range.
 */
#include "oci/recompress.h"
#include "ocisync.h"
#include "test.h"

#include <zlib.h>
#include <zstd.h>

/* Half random, half repetitive: something for the compressors to find. */
static void make_tar(struct test_buf *t, size_t n)
{
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        unsigned char c;
        x = x * 1103515245u + 12345u;
        c = (i / 4096) % 2 ? (unsigned char)(x >> 24) : (unsigned char)('a' + i % 7);
        test_buf_add(t, &c, 1);
    }
}

static void gzip_of(const struct test_buf *in, struct test_buf *out, int members)
{
    size_t per = in->len / (size_t)members + 1;
    for (size_t off = 0; off < in->len; off += per) {
        size_t n = in->len - off < per ? in->len - off : per;
        z_stream z;
        unsigned char buf[65536];
        int zr;
        memset(&z, 0, sizeof(z));
        CHECK_INT(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
        z.next_in = in->data + off;
        z.avail_in = (uInt)n;
        do {
            z.next_out = buf;
            z.avail_out = sizeof(buf);
            zr = deflate(&z, Z_FINISH);
            test_buf_add(out, buf, sizeof(buf) - z.avail_out);
        } while (zr == Z_OK);
        CHECK_INT(zr, Z_STREAM_END);
        deflateEnd(&z);
    }
}

static void zstd_of(const struct test_buf *in, struct test_buf *out)
{
    size_t cap = ZSTD_compressBound(in->len), n;
    unsigned char *p = malloc(cap);
    n = ZSTD_compress(p, cap, in->data, in->len, 3);
    CHECK(!ZSTD_isError(n));
    test_buf_add(out, p, n);
    free(p);
}

static void gunzip(const struct test_buf *in, struct test_buf *out)
{
    z_stream z;
    unsigned char buf[65536];
    int zr = Z_OK;
    memset(&z, 0, sizeof(z));
    CHECK_INT(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = in->data;
    z.avail_in = (uInt)in->len;
    while (zr == Z_OK) {
        z.next_out = buf;
        z.avail_out = sizeof(buf);
        zr = inflate(&z, Z_NO_FLUSH);
        test_buf_add(out, buf, sizeof(buf) - z.avail_out);
    }
    CHECK_INT(zr, Z_STREAM_END);
    CHECK_INT(z.avail_in, 0); /* one member */
    inflateEnd(&z);
}

static void unzstd(const struct test_buf *in, struct test_buf *out)
{
    ZSTD_DStream *d = ZSTD_createDStream();
    ZSTD_inBuffer ib = {in->data, in->len, 0};
    unsigned char buf[65536];
    size_t r = 1;
    while (ib.pos < ib.size || r != 0) {
        ZSTD_outBuffer ob = {buf, sizeof(buf), 0};
        r = ZSTD_decompressStream(d, &ob, &ib);
        if (ZSTD_isError(r)) {
            CHECK(!"zstd output does not decompress");
            break;
        }
        test_buf_add(out, buf, ob.pos);
        if (ob.pos == 0 && ib.pos == ib.size && r != 0) {
            CHECK(!"zstd output ends early");
            break;
        }
    }
    ZSTD_freeDStream(d);
}

/* Recompresses in (pieces of piece bytes) into to; the output in out; returns the result. */
static int run(const struct test_buf *in, size_t piece, enum oci_compression to, int level,
               struct test_buf *out, struct oci_recompress *r, const struct oci_digest *diff_id,
               char *why, size_t whylen)
{
    int rc = oci_recompress_init(r, in->len, to, level, "layer sha256:test");
    why[0] = '\0';
    for (size_t off = 0; rc == 0 && off < in->len; off += piece) {
        size_t n = in->len - off < piece ? in->len - off : piece, len;
        unsigned char *p;
        rc = oci_recompress_feed(r, in->data + off, n, why, whylen);
        p = oci_recompress_take(r, &len);
        test_buf_add(out, p, len);
        free(p);
    }
    if (rc == 0) {
        size_t len;
        unsigned char *p;
        rc = oci_recompress_finish(r, diff_id, why, whylen);
        p = oci_recompress_take(r, &len);
        test_buf_add(out, p, len);
        free(p);
    }
    return rc;
}

static void check_roundtrip(const struct test_buf *tar, const struct test_buf *in,
                            enum oci_compression to, int level)
{
    struct test_buf out = {0}, back = {0};
    struct oci_recompress r;
    struct oci_digest want_diff, want_digest;
    char why[512];
    CHECK_INT(run(in, 100000, to, level, &out, &r, NULL, why, sizeof(why)), 0);
    if (to == OCI_COMPRESS_GZIP)
        gunzip(&out, &back);
    else
        unzstd(&out, &back);
    CHECK_INT(back.len, tar->len);
    CHECK(back.len == tar->len && memcmp(back.data, tar->data, tar->len) == 0);
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, tar->data, tar->len, &want_diff), 0);
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, out.data, out.len, &want_digest), 0);
    CHECK_STR(r.diff_id.str, want_diff.str);
    CHECK_STR(r.digest.str, want_digest.str);
    CHECK_INT(r.total_out, out.len);
    CHECK(r.finished);
    oci_recompress_dispose(&r);
    test_buf_free(&out);
    test_buf_free(&back);
}

TEST(gzip_to_zstd_and_back)
{
    struct test_buf tar = {0}, gz = {0}, gz3 = {0}, zs = {0};
    make_tar(&tar, 3 * 1024 * 1024 + 17);
    gzip_of(&tar, &gz, 1);
    gzip_of(&tar, &gz3, 3);
    zstd_of(&tar, &zs);
    check_roundtrip(&tar, &gz, OCI_COMPRESS_ZSTD, 0);
    check_roundtrip(&tar, &gz3, OCI_COMPRESS_ZSTD, 19); /* several gzip members */
    check_roundtrip(&tar, &zs, OCI_COMPRESS_GZIP, 0);
    check_roundtrip(&tar, &zs, OCI_COMPRESS_GZIP, 1);
    check_roundtrip(&tar, &tar, OCI_COMPRESS_GZIP, 9); /* a plain tar */
    check_roundtrip(&tar, &tar, OCI_COMPRESS_ZSTD, 1);
    test_buf_free(&tar);
    test_buf_free(&gz);
    test_buf_free(&gz3);
    test_buf_free(&zs);
}

/* The bytes depend on the tar, the compression and the level only: not on the pieces. */
TEST(same_bytes_whatever_the_pieces)
{
    struct test_buf tar = {0}, gz = {0};
    make_tar(&tar, 600 * 1024);
    gzip_of(&tar, &gz, 1);
    for (int to = OCI_COMPRESS_GZIP; to <= OCI_COMPRESS_ZSTD; to++) {
        struct test_buf a = {0}, b = {0}, c = {0};
        struct oci_recompress r;
        char why[512];
        CHECK_INT(run(&gz, gz.len, to, 0, &a, &r, NULL, why, sizeof(why)), 0);
        oci_recompress_dispose(&r);
        CHECK_INT(run(&gz, 7, to, 0, &b, &r, NULL, why, sizeof(why)), 0);
        oci_recompress_dispose(&r);
        CHECK_INT(run(&gz, 65536, to, 0, &c, &r, NULL, why, sizeof(why)), 0);
        oci_recompress_dispose(&r);
        CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
        CHECK(a.len == c.len && memcmp(a.data, c.data, a.len) == 0);
        test_buf_free(&a);
        test_buf_free(&b);
        test_buf_free(&c);
    }
    test_buf_free(&tar);
    test_buf_free(&gz);
}

TEST(failures)
{
    struct test_buf tar = {0}, gz = {0}, out = {0}, bad = {0}, cut = {0}, empty = {0};
    struct oci_recompress r;
    struct oci_digest wrong;
    char why[512];
    make_tar(&tar, 200000);
    gzip_of(&tar, &gz, 1);

    /* gzip's magic, then garbage. */
    test_buf_add(&bad, "\x1f\x8b\x08\x00garbage, not deflate", 24);
    CHECK_INT(run(&bad, 1000, OCI_COMPRESS_ZSTD, 0, &out, &r, NULL, why, sizeof(why)),
              OCISYNC_EDIGESTMISMATCH);
    CHECK(strstr(why, "layer sha256:test does not decompress (gzip") != NULL);
    oci_recompress_dispose(&r);

    test_buf_add(&cut, gz.data, gz.len / 2);
    CHECK_INT(run(&cut, 1000, OCI_COMPRESS_ZSTD, 0, &out, &r, NULL, why, sizeof(why)),
              OCISYNC_EDIGESTMISMATCH);
    CHECK(strstr(why, "ends early") != NULL);
    oci_recompress_dispose(&r);

    CHECK_INT(run(&empty, 1000, OCI_COMPRESS_GZIP, 0, &out, &r, NULL, why, sizeof(why)),
              OCISYNC_EDIGESTMISMATCH);
    CHECK(strstr(why, "is empty") != NULL);
    oci_recompress_dispose(&r);

    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, "x", 1, &wrong), 0);
    CHECK_INT(run(&gz, 1000, OCI_COMPRESS_ZSTD, 0, &out, &r, &wrong, why, sizeof(why)),
              OCISYNC_EDIGESTMISMATCH);
    CHECK(strstr(why, "but the config's diff_id is") != NULL);
    oci_recompress_dispose(&r);

    CHECK_INT(oci_recompress_init(&r, 10, OCI_COMPRESS_GZIP, 10, "x"), OCISYNC_EUSAGE);
    oci_recompress_dispose(&r);
    CHECK_INT(oci_recompress_init(&r, 10, OCI_COMPRESS_ZSTD, 20, "x"), OCISYNC_EUSAGE);
    oci_recompress_dispose(&r);
    CHECK_INT(oci_recompress_init(&r, 10, OCI_COMPRESS_ZSTD, 19, "x"), 0);
    oci_recompress_dispose(&r);
    test_buf_free(&tar);
    test_buf_free(&gz);
    test_buf_free(&out);
    test_buf_free(&bad);
    test_buf_free(&cut);
}

TEST_MAIN(T(gzip_to_zstd_and_back), T(same_bytes_whatever_the_pieces), T(failures))
