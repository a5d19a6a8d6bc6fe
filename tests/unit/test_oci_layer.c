/*
 * The layer builder: real trees (a 5 MiB random file, 1 MiB of zeros, small
 * files) planned with oci/tar.h and built on a uv loop with gzip and zstd.
 * Each blob must decompress to exactly the tar the stream produces, hash to
 * its name, pass gzip -t, Python's gzip and zstd -t, and be one gzip member or
 * one zstd frame. Then determinism (repeated builds, gzip blocks forced to
 * finish out of order, other pool sizes in a child process, libzstd with 1 to
 * 4 workers), an empty plan, cancels, a file truncated after planning and a
 * missing layout.
 */
#include "oci/layer.h"
#include "oci/tar.h"
#include "ocisync.h"
#include "test.h"

#include <uv.h>
#include <zlib.h>
#include <zstd.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define RANDOM_SIZE (5 * 1024 * 1024)
#define ZEROS_SIZE (1024 * 1024)
/* The child build run by pool_size_independent: "srcdir:layoutdir:comp". */
#define CHILD_ENV "OCISYNC_TEST_LAYER_CHILD"

static char err[1024];

/* ---------------------------------------------------------------------------------------------
 * Helpers: files and trees
 */

static void temp_dir(char *out, size_t len)
{
    snprintf(out, len, "/tmp/ocisync-layer-XXXXXX");
    if (mkdtemp(out) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
}

static void rm_tree(const char *dir)
{
    char cmd[8300];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK_INT(write(fd, data, len), (long long)len);
    close(fd);
}

static int read_file(const char *path, struct test_buf *out)
{
    unsigned char tmp[65536];
    ssize_t n;
    int fd = open(path, O_RDONLY);

    memset(out, 0, sizeof(*out));
    if (fd < 0)
        return -1;
    while ((n = read(fd, tmp, sizeof(tmp))) > 0)
        test_buf_add(out, tmp, (size_t)n);
    close(fd);
    return n < 0 ? -1 : 0;
}

/*
 * root/src: small files, a 5 MiB file of pseudo-random bytes (fixed seed: the
 * blobs of one test run compare with each other, and with the same seed
 * across runs), 1 MiB of zeros and a symlink; root/layout/blobs/sha256.
 */
static void make_tree(const char *root, char *src, size_t srclen, char *layout, size_t layoutlen)
{
    char p[4200];
    unsigned char *rnd = malloc(RANDOM_SIZE), *zeros = calloc(1, ZEROS_SIZE);
    uint64_t x = 0x9e3779b97f4a7c15ull;

    snprintf(src, srclen, "%s/src", root);
    CHECK_INT(mkdir(src, 0755), 0);
    snprintf(p, sizeof(p), "%s/sub", src);
    CHECK_INT(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/a.txt", src);
    write_file(p, "hello\n", 6);
    snprintf(p, sizeof(p), "%s/sub/b.txt", src);
    write_file(p, "layer\n", 6);
    for (size_t i = 0; i < RANDOM_SIZE; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        rnd[i] = (unsigned char)(x >> 24);
    }
    snprintf(p, sizeof(p), "%s/random.bin", src);
    write_file(p, rnd, RANDOM_SIZE);
    snprintf(p, sizeof(p), "%s/sub/zeros.bin", src);
    write_file(p, zeros, ZEROS_SIZE);
    snprintf(p, sizeof(p), "%s/link", src);
    CHECK_INT(symlink("a.txt", p), 0);
    free(rnd);
    free(zeros);

    snprintf(layout, layoutlen, "%s/layout", root);
    CHECK_INT(mkdir(layout, 0755), 0);
    snprintf(p, sizeof(p), "%s/blobs", layout);
    CHECK_INT(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/blobs/sha256", layout);
    CHECK_INT(mkdir(p, 0755), 0);
}

static int plan_dir(const char *src, struct oci_tar_plan *plan)
{
    struct oci_tar_source s = {.src = src, .dest = "/"};

    return oci_tar_plan_build(plan, &s, 1, NULL, err, sizeof(err));
}

/* The tar the stream produces for plan, in odd-sized reads. */
static int tar_bytes(const struct oci_tar_plan *plan, struct test_buf *out)
{
    struct oci_tar_stream s;
    unsigned char tmp[70001];
    size_t n;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = oci_tar_stream_init(&s, plan);
    while (rc == 0) {
        rc = oci_tar_stream_read(&s, tmp, sizeof(tmp), &n, err, sizeof(err));
        if (rc != 0 || n == 0)
            break;
        test_buf_add(out, tmp, n);
    }
    oci_tar_stream_dispose(&s);
    return rc;
}

/* Entries of layout/blobs/sha256: all of them, and the temp files among them. */
static void count_blobs(const char *layout, int *all, int *tmp)
{
    char p[4200];
    struct dirent *de;
    DIR *d;

    *all = *tmp = 0;
    snprintf(p, sizeof(p), "%s/blobs/sha256", layout);
    d = opendir(p);
    CHECK(d != NULL);
    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        (*all)++;
        if (strncmp(de->d_name, ".tmp", 4) == 0)
            (*tmp)++;
    }
    closedir(d);
}

static void empty_blobs(const char *layout)
{
    char cmd[4300];

    snprintf(cmd, sizeof(cmd), "rm -f '%s'/blobs/sha256/*", layout);
    CHECK_INT(system(cmd), 0);
}

/* ---------------------------------------------------------------------------------------------
 * Helpers: decompression
 */

/* Inflates one gzip member; fails if anything follows it. */
static int gunzip(const struct test_buf *in, struct test_buf *out)
{
    unsigned char tmp[65536];
    z_stream zs;
    int zrc;

    memset(out, 0, sizeof(*out));
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 31) != Z_OK)
        return -1;
    zs.next_in = in->data;
    zs.avail_in = (uInt)in->len;
    do {
        zs.next_out = tmp;
        zs.avail_out = sizeof(tmp);
        zrc = inflate(&zs, Z_NO_FLUSH);
        test_buf_add(out, tmp, sizeof(tmp) - zs.avail_out);
    } while (zrc == Z_OK);
    inflateEnd(&zs);
    return zrc == Z_STREAM_END && zs.avail_in == 0 ? 0 : -1;
}

/* Decompresses a zstd blob; fails unless it is exactly one frame. */
static int unzstd(const struct test_buf *in, struct test_buf *out)
{
    unsigned char tmp[65536];
    ZSTD_DCtx *d = ZSTD_createDCtx();
    ZSTD_inBuffer zin = {in->data, in->len, 0};
    size_t r = 1;

    memset(out, 0, sizeof(*out));
    if (ZSTD_findFrameCompressedSize(in->data, in->len) != in->len) {
        ZSTD_freeDCtx(d);
        return -1;
    }
    while (zin.pos < zin.size || r != 0) {
        ZSTD_outBuffer zout = {tmp, sizeof(tmp), 0};

        r = ZSTD_decompressStream(d, &zout, &zin);
        if (ZSTD_isError(r))
            break;
        test_buf_add(out, tmp, zout.pos);
        if (zin.pos == zin.size && zout.pos == 0 && r != 0) {
            r = 1;
            break;
        }
    }
    ZSTD_freeDCtx(d);
    return r == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------------------------------------
 * Helpers: running a build
 */

struct run {
    int calls;
    int err;
    char msg[1024];
    struct oci_layer_result result;
    uint64_t reordered;
};

static void on_built(struct oci_layer_build *b, int e, const char *msg)
{
    struct run *r = b->data;

    r->calls++;
    r->err = e;
    snprintf(r->msg, sizeof(r->msg), "%s", msg ? msg : "(null)");
    r->result = b->result;
    r->reordered = b->reordered;
    /* The caller may free the build in its callback. */
    free(b);
}

/* Cancels the build it carries from the loop thread, when a pool job asks. */
static uv_async_t cancel_async;
static struct oci_layer_build *cancel_target;
static uv_mutex_t hook_mu;
static uv_cond_t hook_cv;
static bool hook_flag;

static void on_cancel_async(uv_async_t *a)
{
    oci_layer_cancel(cancel_target);
    uv_mutex_lock(&hook_mu);
    hook_flag = true;
    uv_cond_broadcast(&hook_cv);
    uv_mutex_unlock(&hook_mu);
    uv_close((uv_handle_t *)a, NULL);
}

/* Waits (10 s at most, so a broken builder fails instead of hanging) for hook_flag. */
static void wait_flag(void)
{
    uv_mutex_lock(&hook_mu);
    while (!hook_flag) {
        if (uv_cond_timedwait(&hook_cv, &hook_mu, 10ull * 1000 * 1000 * 1000) == UV_ETIMEDOUT)
            break;
    }
    uv_mutex_unlock(&hook_mu);
}

static void set_flag(void)
{
    uv_mutex_lock(&hook_mu);
    hook_flag = true;
    uv_cond_broadcast(&hook_cv);
    uv_mutex_unlock(&hook_mu);
}

enum run_mode { RUN_PLAIN, RUN_CANCEL_AT_ONCE, RUN_CANCEL_MIDWAY };

/* Set on every build run_build starts (NULL: none). */
static void (*g_on_progress)(struct oci_layer_build *b, int fd, uint64_t written);
static struct oci_tar_file_sum *g_sums;

static void run_build(const struct oci_tar_plan *plan, enum oci_compression comp, int level,
                      const char *layout, enum run_mode mode, struct run *r)
{
    struct oci_layer_build *b = malloc(sizeof(*b));
    uv_loop_t loop;
    int rc;

    memset(r, 0, sizeof(*r));
    CHECK_INT(uv_loop_init(&loop), 0);
    if (mode == RUN_CANCEL_MIDWAY) {
        CHECK_INT(uv_async_init(&loop, &cancel_async, on_cancel_async), 0);
        cancel_target = b;
    }
    rc = oci_layer_build(b, &loop, plan, comp, level, layout, on_built, r);
    CHECK_INT(rc, 0);
    if (rc == 0) {
        b->on_progress = g_on_progress;
        b->file_sums = g_sums;
    }
    if (rc != 0) {
        free(b);
        r->err = rc;
    }
    if (rc == 0 && mode == RUN_CANCEL_AT_ONCE)
        oci_layer_cancel(b);
    CHECK_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_INT(r->calls, rc == 0 ? 1 : 0);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* The blob's checks shared by gzip and zstd: names, sizes, digests and content. */
static void check_blob(const struct run *r, const char *layout, const struct test_buf *tar,
                       enum oci_compression comp, struct test_buf *blob)
{
    struct oci_digest d;
    struct test_buf plain;
    char want[4200];

    CHECK_INT(r->err, 0);
    CHECK_STR(r->msg, "");
    snprintf(want, sizeof(want), "%s/blobs/sha256/%s", layout, oci_digest_hex(&r->result.digest));
    CHECK_STR(r->result.path, want);
    CHECK_INT(read_file(r->result.path, blob), 0);
    CHECK_INT(r->result.size, blob->len);
    CHECK_INT(r->result.tar_size, tar->len);
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, blob->data, blob->len, &d), 0);
    CHECK_STR(r->result.digest.str, d.str);
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, tar->data, tar->len, &d), 0);
    CHECK_STR(r->result.diff_id.str, d.str);
    CHECK_INT(comp == OCI_COMPRESS_GZIP ? gunzip(blob, &plain) : unzstd(blob, &plain), 0);
    CHECK_INT(plain.len, tar->len);
    CHECK(plain.len == tar->len && memcmp(plain.data, tar->data, tar->len) == 0);
    test_buf_free(&plain);
}

/* Builds plan with gzip and with zstd: check_blob, and gzip -t / zstd -t accept the blob. */
static void build_both_and_test(const struct oci_tar_plan *plan, const char *layout,
                                const struct test_buf *tar)
{
    for (int c = OCI_COMPRESS_GZIP; c <= OCI_COMPRESS_ZSTD; c++) {
        struct test_buf blob;
        struct run r;
        char cmd[1200];

        run_build(plan, c, 0, layout, RUN_PLAIN, &r);
        check_blob(&r, layout, tar, c, &blob);
        snprintf(cmd, sizeof(cmd), "%s '%s'", c == OCI_COMPRESS_GZIP ? "gzip -t" : "zstd -q -t",
                 r.result.path);
        CHECK_INT(system(cmd), 0);
        test_buf_free(&blob);
    }
}

/* One tree for every test, built on first use and removed at exit. */
static char g_root[256], g_src[512], g_layout[512];
static struct oci_tar_plan g_plan;
static struct test_buf g_tar;

static void teardown(void)
{
    char cmd[300];

    oci_tar_plan_free(&g_plan);
    test_buf_free(&g_tar);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_root);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", g_root);
}

static void setup(void)
{
    if (g_root[0] != '\0')
        return;
    temp_dir(g_root, sizeof(g_root));
    atexit(teardown);
    make_tree(g_root, g_src, sizeof(g_src), g_layout, sizeof(g_layout));
    CHECK_INT(plan_dir(g_src, &g_plan), 0);
    CHECK_INT(tar_bytes(&g_plan, &g_tar), 0);
    CHECK(g_tar.len > RANDOM_SIZE + ZEROS_SIZE);
    uv_mutex_init(&hook_mu);
    uv_cond_init(&hook_cv);
}

/* ---------------------------------------------------------------------------------------------
 * Tests
 */

TEST(gzip_layer)
{
    struct test_buf blob, single;
    struct run r;
    char cmd[4600];
    uLongf single_len;

    setup();
    run_build(&g_plan, OCI_COMPRESS_GZIP, 0, g_layout, RUN_PLAIN, &r);
    check_blob(&r, g_layout, &g_tar, OCI_COMPRESS_GZIP, &blob);
    /* The fixed header: deflate, no flags, mtime 0, OS 255. */
    CHECK(blob.len > 18);
    CHECK(blob.len > 18 && memcmp(blob.data, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10) == 0);
    snprintf(cmd, sizeof(cmd), "gzip -t '%s'", r.result.path);
    CHECK_INT(system(cmd), 0);
    snprintf(cmd, sizeof(cmd),
             "python3 -c 'import gzip,sys; d=gzip.decompress(open(sys.argv[1],\"rb\").read()); "
             "sys.exit(0 if len(d)==int(sys.argv[2]) else 1)' '%s' %zu",
             r.result.path, g_tar.len);
    CHECK_INT(system(cmd), 0);
    /* Blocks primed with their predecessor's tail cost almost nothing against one deflate. */
    single_len = compressBound(g_tar.len);
    single.data = malloc(single_len);
    CHECK_INT(compress2(single.data, &single_len, g_tar.data, g_tar.len, 6), Z_OK);
    CHECK(blob.len < single_len + single_len / 100);
    printf("  gzip: tar %zu, blob %zu, single-threaded zlib %lu\n", g_tar.len, blob.len,
           (unsigned long)single_len);
    free(single.data);
    test_buf_free(&blob);
    empty_blobs(g_layout);
}

TEST(zstd_layer)
{
    struct test_buf blob;
    struct run r;
    char cmd[4600];
    FILE *p;
    char line[256];
    int frames = -1;
    bool xxh = false;

    setup();
    run_build(&g_plan, OCI_COMPRESS_ZSTD, 0, g_layout, RUN_PLAIN, &r);
    check_blob(&r, g_layout, &g_tar, OCI_COMPRESS_ZSTD, &blob);
    /* Magic, then the frame header descriptor, whose bit 2 is the content checksum flag. */
    CHECK(blob.len > 5 && memcmp(blob.data, "\x28\xb5\x2f\xfd", 4) == 0);
    CHECK(blob.len > 5 && (blob.data[4] & 0x04) != 0);
    snprintf(cmd, sizeof(cmd), "zstd -q -t '%s'", r.result.path);
    CHECK_INT(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "zstd -lv '%s' 2>/dev/null", r.result.path);
    p = popen(cmd, "r");
    CHECK(p != NULL);
    while (p != NULL && fgets(line, sizeof(line), p) != NULL) {
        if (strncmp(line, "# Zstandard Frames: ", 20) == 0)
            frames = atoi(line + 20);
        if (strstr(line, "Check: XXH64") != NULL)
            xxh = true;
    }
    if (p != NULL)
        CHECK_INT(pclose(p), 0);
    CHECK_INT(frames, 1);
    CHECK(xxh);
    printf("  zstd: tar %zu, blob %zu\n", g_tar.len, blob.len);
    test_buf_free(&blob);
    empty_blobs(g_layout);
}

TEST(levels)
{
    struct test_buf blob;
    struct run r;
    uint64_t sizes[2];
    int levels[2] = {1, 9};

    setup();
    for (int i = 0; i < 2; i++) {
        run_build(&g_plan, OCI_COMPRESS_GZIP, levels[i], g_layout, RUN_PLAIN, &r);
        check_blob(&r, g_layout, &g_tar, OCI_COMPRESS_GZIP, &blob);
        sizes[i] = blob.len;
        test_buf_free(&blob);
    }
    CHECK(sizes[1] <= sizes[0]);
    run_build(&g_plan, OCI_COMPRESS_ZSTD, 1, g_layout, RUN_PLAIN, &r);
    check_blob(&r, g_layout, &g_tar, OCI_COMPRESS_ZSTD, &blob);
    test_buf_free(&blob);
    empty_blobs(g_layout);
}

/* Block 0 cannot start compressing until block 1 has finished. */
static void reorder_hook(uint64_t seq, int after)
{
    if (seq == 1 && after)
        set_flag();
    if (seq == 0 && !after)
        wait_flag();
}

TEST(deterministic)
{
    struct run r1, r2, r3;
    struct test_buf blob;

    setup();
    for (int c = OCI_COMPRESS_GZIP; c <= OCI_COMPRESS_ZSTD; c++) {
        run_build(&g_plan, c, 0, g_layout, RUN_PLAIN, &r1);
        run_build(&g_plan, c, 0, g_layout, RUN_PLAIN, &r2);
        CHECK_INT(r1.err, 0);
        CHECK_INT(r2.err, 0);
        CHECK_STR(r1.result.digest.str, r2.result.digest.str);
        CHECK_STR(r1.result.diff_id.str, r2.result.diff_id.str);
        CHECK_INT(r1.result.size, r2.result.size);
    }
    /* gzip blocks finishing out of order still land in order. */
    run_build(&g_plan, OCI_COMPRESS_GZIP, 0, g_layout, RUN_PLAIN, &r1);
    hook_flag = false;
    oci__layer_test_hook = reorder_hook;
    run_build(&g_plan, OCI_COMPRESS_GZIP, 0, g_layout, RUN_PLAIN, &r3);
    oci__layer_test_hook = NULL;
    CHECK(r3.reordered >= 1);
    CHECK_STR(r1.result.digest.str, r3.result.digest.str);
    check_blob(&r3, g_layout, &g_tar, OCI_COMPRESS_GZIP, &blob);
    test_buf_free(&blob);
    empty_blobs(g_layout);
}

/*
 * libzstd's multi-threaded frames do not depend on the number of workers (>= 1)
 * nor on how the input is handed over: the same parameters with 1 to 4
 * workers and the whole tar at once give the builder's bytes.
 */
TEST(zstd_workers_independent)
{
    struct test_buf blob, out;
    struct run r;

    setup();
    run_build(&g_plan, OCI_COMPRESS_ZSTD, 0, g_layout, RUN_PLAIN, &r);
    CHECK_INT(r.err, 0);
    CHECK_INT(read_file(r.result.path, &blob), 0);
    for (int workers = 1; workers <= 4; workers++) {
        ZSTD_CCtx *c = ZSTD_createCCtx();
        ZSTD_inBuffer in = {g_tar.data, g_tar.len, 0};
        unsigned char tmp[65536];
        size_t rem;

        memset(&out, 0, sizeof(out));
        CHECK(!ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 3)));
        CHECK(!ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1)));
        CHECK(!ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_nbWorkers, workers)));
        CHECK(!ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_jobSize, OCI_LAYER_ZSTD_JOB_SIZE)));
        while (in.pos < in.size) {
            ZSTD_outBuffer o = {tmp, sizeof(tmp), 0};

            CHECK(!ZSTD_isError(ZSTD_compressStream2(c, &o, &in, ZSTD_e_continue)));
            test_buf_add(&out, tmp, o.pos);
        }
        do {
            ZSTD_outBuffer o = {tmp, sizeof(tmp), 0};

            rem = ZSTD_compressStream2(c, &o, &in, ZSTD_e_end);
            CHECK(!ZSTD_isError(rem));
            test_buf_add(&out, tmp, o.pos);
        } while (rem != 0 && !ZSTD_isError(rem));
        ZSTD_freeCCtx(c);
        CHECK_INT(out.len, blob.len);
        CHECK(out.len == blob.len && memcmp(out.data, blob.data, blob.len) == 0);
        test_buf_free(&out);
    }
    test_buf_free(&blob);
    empty_blobs(g_layout);
}

/* Runs in a child process (see pool_size_independent): prints the digests of both blobs. */
TEST(child_build)
{
    const char *spec = getenv(CHILD_ENV);
    struct oci_tar_plan plan;
    char src[512], layout[512];
    struct run r;

    if (spec == NULL || sscanf(spec, "%511[^:]:%511s", src, layout) != 2)
        return;
    CHECK_INT(plan_dir(src, &plan), 0);
    for (int c = OCI_COMPRESS_GZIP; c <= OCI_COMPRESS_ZSTD; c++) {
        run_build(&plan, c, 0, layout, RUN_PLAIN, &r);
        printf("digest %d %s\n", c, r.result.digest.str);
    }
    oci_tar_plan_free(&plan);
}

/* The pool size sets how many blocks are in flight, never the bytes. */
TEST(pool_size_independent)
{
    static const char *const sizes[] = {"1", "2", "7"};
    struct run r[2];
    char self[1024], cmd[3000], line[256];
    ssize_t n;

    setup();
    run_build(&g_plan, OCI_COMPRESS_GZIP, 0, g_layout, RUN_PLAIN, &r[0]);
    run_build(&g_plan, OCI_COMPRESS_ZSTD, 0, g_layout, RUN_PLAIN, &r[1]);
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    CHECK(n > 0);
    if (n <= 0)
        return;
    self[n] = '\0';
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        int seen = 0;
        FILE *p;

        snprintf(cmd, sizeof(cmd), "UV_THREADPOOL_SIZE=%s " CHILD_ENV "='%s:%s' '%s' child_build",
                 sizes[i], g_src, g_layout, self);
        p = popen(cmd, "r");
        CHECK(p != NULL);
        while (p != NULL && fgets(line, sizeof(line), p) != NULL) {
            int c;
            char digest[200];

            if (sscanf(line, "digest %d %199s", &c, digest) == 2 && c >= 1 && c <= 2) {
                CHECK_STR(digest, r[c - 1].result.digest.str);
                seen++;
            }
        }
        if (p != NULL)
            CHECK_INT(pclose(p), 0);
        CHECK_INT(seen, 2);
    }
    empty_blobs(g_layout);
}

TEST(empty_plan)
{
    char root[256], src[512], layout[512], p[600];
    struct oci_tar_plan plan;
    struct test_buf tar;

    temp_dir(root, sizeof(root));
    snprintf(src, sizeof(src), "%s/empty", root);
    CHECK_INT(mkdir(src, 0755), 0);
    snprintf(layout, sizeof(layout), "%s/layout", root);
    snprintf(p, sizeof(p), "mkdir -p '%s/blobs/sha256'", layout);
    CHECK_INT(system(p), 0);
    CHECK_INT(plan_dir(src, &plan), 0);
    CHECK_INT(plan.n_entries, 0);
    CHECK_INT(tar_bytes(&plan, &tar), 0);
    CHECK_INT(tar.len, 1024);
    build_both_and_test(&plan, layout, &tar);
    test_buf_free(&tar);
    oci_tar_plan_free(&plan);
    rm_tree(root);
}

/*
 * A tar of exactly two blocks (one file: 512 bytes of header, the data, 1024
 * zero bytes at the end) ends with an empty block, which still closes the
 * gzip stream and the zstd frame.
 */
TEST(block_boundary)
{
    char root[256], src[512], layout[512], p[600];
    size_t len = 2 * OCI_LAYER_BLOCK_SIZE - 1536;
    unsigned char *data = malloc(len);
    struct oci_tar_plan plan;
    struct test_buf tar;

    temp_dir(root, sizeof(root));
    snprintf(src, sizeof(src), "%s/src", root);
    CHECK_INT(mkdir(src, 0755), 0);
    for (size_t i = 0; i < len; i++)
        data[i] = (unsigned char)("layer blocks "[i % 13] + (i / 4096) % 7);
    snprintf(p, sizeof(p), "%s/f", src);
    write_file(p, data, len);
    free(data);
    snprintf(layout, sizeof(layout), "%s/layout", root);
    snprintf(p, sizeof(p), "mkdir -p '%s/blobs/sha256'", layout);
    CHECK_INT(system(p), 0);
    CHECK_INT(plan_dir(src, &plan), 0);
    CHECK_INT(tar_bytes(&plan, &tar), 0);
    CHECK_INT(tar.len, 2 * OCI_LAYER_BLOCK_SIZE);
    build_both_and_test(&plan, layout, &tar);
    test_buf_free(&tar);
    oci_tar_plan_free(&plan);
    rm_tree(root);
}

/* A write that fails (here: over RLIMIT_FSIZE) names the temp file and leaves nothing behind. */
TEST(write_error)
{
    struct rlimit old, lim;
    struct run r;
    int all, tmp;

    setup();
    CHECK_INT(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 1024 * 1024;
    signal(SIGXFSZ, SIG_IGN);
    for (int c = OCI_COMPRESS_GZIP; c <= OCI_COMPRESS_ZSTD; c++) {
        CHECK_INT(setrlimit(RLIMIT_FSIZE, &lim), 0);
        run_build(&g_plan, c, 0, g_layout, RUN_PLAIN, &r);
        CHECK_INT(setrlimit(RLIMIT_FSIZE, &old), 0);
        CHECK_INT(r.err, UV_EFBIG);
        CHECK(strstr(r.msg, "cannot write layer blob") != NULL);
        CHECK(strstr(r.msg, "/blobs/sha256/.tmp-layer-") != NULL);
        CHECK_STR(r.result.path, "");
        count_blobs(g_layout, &all, &tmp);
        CHECK_INT(all, 0);
    }
    signal(SIGXFSZ, SIG_DFL);
}

/* Asks for the cancel once block 1 is compressed; holds block 3 until it has been asked. */
static void cancel_hook(uint64_t seq, int after)
{
    if (seq == 1 && after)
        uv_async_send(&cancel_async);
    if (seq == 3 && !after)
        wait_flag();
}

TEST(cancel)
{
    struct run r;
    int all, tmp;

    setup();
    for (int c = OCI_COMPRESS_GZIP; c <= OCI_COMPRESS_ZSTD; c++) {
        run_build(&g_plan, c, 0, g_layout, RUN_CANCEL_AT_ONCE, &r);
        CHECK_INT(r.err, UV_ECANCELED);
        CHECK(strstr(r.msg, "canceled") != NULL);
        CHECK(strstr(r.msg, g_layout) != NULL);
        count_blobs(g_layout, &all, &tmp);
        CHECK_INT(all, 0);

        hook_flag = false;
        oci__layer_test_hook = cancel_hook;
        run_build(&g_plan, c, 0, g_layout, RUN_CANCEL_MIDWAY, &r);
        oci__layer_test_hook = NULL;
        CHECK_INT(r.err, UV_ECANCELED);
        CHECK(strstr(r.msg, ".tmp-layer-") != NULL);
        CHECK_STR(r.result.path, "");
        count_blobs(g_layout, &all, &tmp);
        CHECK_INT(all, 0);
        CHECK_INT(tmp, 0);
    }
}

/* A file that shrinks between plan and build fails with the tar stream's message. */
TEST(file_changed)
{
    char root[256], src[512], layout[512], p[600];
    struct oci_tar_plan plan;
    struct run r;
    int all, tmp;

    temp_dir(root, sizeof(root));
    make_tree(root, src, sizeof(src), layout, sizeof(layout));
    CHECK_INT(plan_dir(src, &plan), 0);
    snprintf(p, sizeof(p), "%s/random.bin", src);
    CHECK_INT(truncate(p, 1024 * 1024), 0);
    for (int c = OCI_COMPRESS_GZIP; c <= OCI_COMPRESS_ZSTD; c++) {
        run_build(&plan, c, 0, layout, RUN_PLAIN, &r);
        CHECK_INT(r.err, OCISYNC_ESIZEMISMATCH);
        CHECK(strstr(r.msg, "random.bin") != NULL);
        CHECK(strstr(r.msg, "changed") != NULL);
        count_blobs(layout, &all, &tmp);
        CHECK_INT(all, 0);
    }
    oci_tar_plan_free(&plan);
    rm_tree(root);
}

TEST(bad_layout_and_args)
{
    struct oci_layer_build b;
    char missing[600];
    struct run r;
    uv_loop_t loop;

    setup();
    snprintf(missing, sizeof(missing), "%s/no-such-layout", g_root);
    run_build(&g_plan, OCI_COMPRESS_GZIP, 0, missing, RUN_PLAIN, &r);
    CHECK_INT(r.err, UV_ENOENT);
    CHECK(strstr(r.msg, "no-such-layout/blobs/sha256") != NULL);

    CHECK_INT(uv_loop_init(&loop), 0);
    CHECK_INT(oci_layer_build(&b, &loop, &g_plan, OCI_COMPRESS_GZIP, 10, g_layout, on_built, &r),
              OCISYNC_EUSAGE);
    CHECK(strstr(b.msg, "gzip level 10") != NULL);
    CHECK_INT(oci_layer_build(&b, &loop, &g_plan, OCI_COMPRESS_ZSTD, 20, g_layout, on_built, &r),
              OCISYNC_EUSAGE);
    CHECK_INT(oci_layer_build(&b, &loop, &g_plan, OCI_COMPRESS_ZSTD, -1, g_layout, on_built, &r),
              OCISYNC_EUSAGE);
    CHECK_INT(
        oci_layer_build(&b, &loop, &g_plan, (enum oci_compression)7, 0, g_layout, on_built, &r),
        OCISYNC_EUSAGE);
    CHECK_INT(oci_layer_build(&b, &loop, NULL, OCI_COMPRESS_GZIP, 0, g_layout, on_built, &r),
              OCISYNC_EUSAGE);
    CHECK_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/*
 * What a follower (a streamed upload) sees: more bytes each time, each time
 * readable through the descriptor it is given, adding up to the blob but its
 * gzip trailer.
 */
static struct {
    int calls;
    uint64_t last;
    bool shrank;
    struct test_buf seen;
} g_prog;

static void on_progress(struct oci_layer_build *b, int fd, uint64_t written)
{
    size_t n = (size_t)(written - g_prog.last);
    unsigned char *tmp = malloc(n ? n : 1);

    (void)b;
    g_prog.calls++;
    if (written < g_prog.last) {
        g_prog.shrank = true;
        free(tmp);
        return;
    }
    CHECK_INT(pread(fd, tmp, n, (off_t)g_prog.last), (ssize_t)n);
    test_buf_add(&g_prog.seen, tmp, n);
    g_prog.last = written;
    free(tmp);
}

TEST(progress)
{
    static const enum oci_compression comps[] = {OCI_COMPRESS_GZIP, OCI_COMPRESS_ZSTD};
    struct test_buf blob;
    struct run r;

    setup();
    for (size_t i = 0; i < 2; i++) {
        memset(&g_prog, 0, sizeof(g_prog));
        g_on_progress = on_progress;
        run_build(&g_plan, comps[i], 0, g_layout, RUN_PLAIN, &r);
        g_on_progress = NULL;
        check_blob(&r, g_layout, &g_tar, comps[i], &blob);
        CHECK(!g_prog.shrank);
        /* Several blocks, several reports: the follower need not wait for the end. */
        CHECK(g_prog.calls >= 2);
        CHECK_INT(g_prog.last + (comps[i] == OCI_COMPRESS_GZIP ? 8 : 0), blob.len);
        CHECK(g_prog.seen.len <= blob.len &&
              memcmp(g_prog.seen.data, blob.data, g_prog.seen.len) == 0);
        printf("  %s: %d progress reports, %zu of %zu bytes before the callback\n",
               i == 0 ? "gzip" : "zstd", g_prog.calls, g_prog.seen.len, blob.len);
        test_buf_free(&g_prog.seen);
        test_buf_free(&blob);
        empty_blobs(g_layout);
    }
}

/*
 * With file_sums, the hash jobs also take each file's content digest (a file
 * spread over several blocks, small ones, an empty one): each is the file's
 * SHA-256, entries without content get none, and the blob is the same bytes.
 */
TEST(file_sums)
{
    static const enum oci_compression comps[] = {OCI_COMPRESS_GZIP, OCI_COMPRESS_ZSTD};
    struct test_buf blob, plain, content;
    struct run r, r0;
    char p[4200];

    setup();
    snprintf(p, sizeof(p), "%s/empty", g_src);
    write_file(p, "", 0);
    oci_tar_plan_free(&g_plan);
    CHECK_INT(plan_dir(g_src, &g_plan), 0);
    test_buf_free(&g_tar);
    CHECK_INT(tar_bytes(&g_plan, &g_tar), 0);
    for (size_t i = 0; i < 2; i++) {
        size_t files = 0;

        run_build(&g_plan, comps[i], 0, g_layout, RUN_PLAIN, &r0);
        check_blob(&r0, g_layout, &g_tar, comps[i], &plain);
        empty_blobs(g_layout);
        g_sums = calloc(g_plan.n_entries, sizeof(*g_sums));
        CHECK(g_sums != NULL);
        run_build(&g_plan, comps[i], 0, g_layout, RUN_PLAIN, &r);
        check_blob(&r, g_layout, &g_tar, comps[i], &blob);
        CHECK_STR(r.result.digest.str, r0.result.digest.str);
        CHECK_STR(r.result.diff_id.str, r0.result.diff_id.str);
        for (size_t k = 0; g_sums != NULL && k < g_plan.n_entries; k++) {
            const struct oci_tar_plan_entry *e = &g_plan.entries[k];
            struct oci_digest want;

            CHECK_INT(g_sums[k].done, e->type == '0' && e->src != NULL);
            if (!g_sums[k].done)
                continue;
            memset(&content, 0, sizeof(content));
            CHECK_INT(read_file(e->src, &content), 0);
            CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, content.data, content.len, &want), 0);
            CHECK_STR(g_sums[k].hex, oci_digest_hex(&want));
            CHECK_INT(g_sums[k].size, e->size);
            test_buf_free(&content);
            files++;
        }
        CHECK_INT(files, 5);
        free(g_sums);
        g_sums = NULL;
        test_buf_free(&blob);
        test_buf_free(&plain);
        empty_blobs(g_layout);
    }
    /* The tree as the other tests know it. */
    CHECK_INT(unlink(p), 0);
    oci_tar_plan_free(&g_plan);
    CHECK_INT(plan_dir(g_src, &g_plan), 0);
    test_buf_free(&g_tar);
    CHECK_INT(tar_bytes(&g_plan, &g_tar), 0);
}

TEST_MAIN(T(gzip_layer), T(zstd_layer), T(levels), T(deterministic), T(zstd_workers_independent),
          T(file_sums), T(child_build), T(pool_size_independent), T(empty_plan), T(block_boundary),
          T(write_error), T(cancel), T(file_changed), T(bad_layout_and_args), T(progress))
