/*
 * The tar module: layers built from real temporary trees are read back with
 * our reader and checked against GNU tar (both ways: GNU tar lists and
 * extracts what we write, and we read what GNU tar writes in its gnu, pax
 * and v7 formats). Then symlinks kept as they are, the refusals ("..",
 * fifos, unreadable files, collisions, files changing mid-stream) and
 * hostile archives (truncated, bad checksums, oversized records).
 */
#define _GNU_SOURCE /* memmem */
#include "oci/tar.h"
#include "ocisync.h"
#include "test.h"

#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define LONG150                                                                                    \
    "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn" \
    "n"                                                                                            \
    "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
#define P90                                                                                        \
    "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"
#define Q90                                                                                        \
    "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
#define T120                                                                                       \
    "tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt" \
    "tttttttttttttttttttttttttttt"
#define UTF8_NAME "h\xc3\xa9llo-w\xc3\xb6rld.txt"
#define BIG_SIZE 200000

static char err[512];

/* ---------------------------------------------------------------------------------------------
 * Helpers: temporary trees
 */

static void make_dir(const char *root, const char *rel, mode_t mode)
{
    char p[8192];

    snprintf(p, sizeof(p), "%s/%s", root, rel);
    CHECK_INT(mkdir(p, 0700), 0);
    CHECK_INT(chmod(p, mode), 0);
}

static void make_file(const char *root, const char *rel, const void *data, size_t len, mode_t mode)
{
    char p[8192];
    int fd;

    snprintf(p, sizeof(p), "%s/%s", root, rel);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK_INT(write(fd, data, len), (long long)len);
    close(fd);
    CHECK_INT(chmod(p, mode), 0);
}

static void make_symlink(const char *root, const char *rel, const char *target)
{
    char p[8192];

    snprintf(p, sizeof(p), "%s/%s", root, rel);
    CHECK_INT(symlink(target, p), 0);
}

static unsigned char *big_content(void)
{
    static unsigned char buf[BIG_SIZE];
    uint32_t x = 12345;

    for (size_t i = 0; i < sizeof(buf); i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
    return buf;
}

/* A fresh directory under /tmp; the caller removes it with rm_tree. */
static void temp_dir(char *out, size_t len)
{
    snprintf(out, len, "/tmp/ocisync-tar-XXXXXX");
    CHECK(mkdtemp(out) != NULL);
}

static void rm_tree(const char *dir)
{
    char cmd[8300];

    snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", dir, dir);
    CHECK_INT(system(cmd), 0);
}

/*
 * The test tree in root/src: files with several modes, nested directories,
 * symlinks (one up a level, still inside), a hardlink, long, split-able and
 * non-ASCII names, an empty file and a big one.
 */
static void build_tree(const char *root, char *src, size_t srclen)
{
    char p[8192];

    snprintf(src, srclen, "%s/src", root);
    CHECK_INT(mkdir(src, 0755), 0);
    CHECK_INT(chmod(src, 0755), 0);
    make_file(src, "a.txt", "hello\n", 6, 0644);
    make_file(src, "empty", "", 0, 0644);
    make_file(src, "exec.sh", "#!/bin/sh\necho hi\n", 18, 0755);
    make_file(src, "secret", "s3cret", 6, 0600);
    make_dir(src, "sub", 0750);
    make_dir(src, "sub/nested", 0755);
    make_file(src, "sub/nested/deep.txt", "deep", 4, 0644);
    make_symlink(src, "link", "a.txt");
    make_symlink(src, "sub/uplink", "../a.txt");
    make_symlink(src, "longtarget", T120);
    make_file(src, "hard1", "hardlinked", 10, 0644);
    snprintf(p, sizeof(p), "%s/hard1", src);
    {
        char q[8192];

        snprintf(q, sizeof(q), "%s/sub/hard2", src);
        CHECK_INT(link(p, q), 0);
    }
    make_file(src, LONG150, "long", 4, 0644);
    make_dir(src, "sub/" P90, 0755);
    make_file(src, "sub/" P90 "/" Q90, "split", 5, 0644);
    make_file(src, UTF8_NAME, "utf8", 4, 0644);
    make_file(src, "big.bin", big_content(), BIG_SIZE, 0644);
}

/* ---------------------------------------------------------------------------------------------
 * Helpers: writing and reading archives in memory
 */

/* Streams a plan into out, chunk bytes per read. */
static int stream_all(const struct oci_tar_plan *plan, size_t chunk, struct test_buf *out)
{
    struct oci_tar_stream s;
    unsigned char *tmp = malloc(chunk);
    size_t n;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = oci_tar_stream_init(&s, plan);
    while (rc == 0) {
        rc = oci_tar_stream_read(&s, tmp, chunk, &n, err, sizeof(err));
        if (rc != 0 || n == 0)
            break;
        test_buf_add(out, tmp, n);
    }
    oci_tar_stream_dispose(&s);
    free(tmp);
    return rc;
}

/* Plans and streams srcs into out. */
static int build(const struct oci_tar_source *srcs, size_t n, const struct oci_tar_opts *opts,
                 size_t chunk, struct test_buf *out)
{
    struct oci_tar_plan plan;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = oci_tar_plan_build(&plan, srcs, n, opts, err, sizeof(err));
    if (rc != 0)
        return rc;
    rc = stream_all(&plan, chunk, out);
    oci_tar_plan_free(&plan);
    return rc;
}

struct rec {
    char type;
    char *path, *link;
    uint64_t size;
    uint32_t mode, uid, gid;
    int64_t mtime;
    struct test_buf data;
    uint32_t devmajor, devminor;
    size_t n_xattrs;
    char *xname[8];
    struct test_buf xval[8];
};

struct parsed {
    struct rec v[256];
    size_t n;
    int abort_at; /* on_entry fails with UV_ECANCELED on this entry (1-based), if non-zero */
};

static int on_entry(void *arg, const struct oci_tar_entry *e)
{
    struct parsed *p = arg;
    struct rec *r;

    if (p->n == sizeof(p->v) / sizeof(p->v[0]))
        return UV_E2BIG;
    if (p->abort_at != 0 && (int)p->n + 1 == p->abort_at)
        return UV_ECANCELED;
    r = &p->v[p->n++];
    memset(r, 0, sizeof(*r));
    r->type = e->type;
    r->path = strdup(e->path);
    r->link = strdup(e->linkname);
    r->size = e->size;
    r->mode = e->mode;
    r->uid = e->uid;
    r->gid = e->gid;
    r->mtime = e->mtime;
    r->devmajor = e->devmajor;
    r->devminor = e->devminor;
    for (size_t i = 0; i < e->n_xattrs && i < 8; i++) {
        r->xname[i] = strdup(e->xattrs[i].name);
        test_buf_add(&r->xval[i], e->xattrs[i].value, e->xattrs[i].len);
        if (e->xattrs[i].len == 0)
            test_buf_add(&r->xval[i], "", 1), r->xval[i].len = 0;
        r->n_xattrs++;
    }
    return 0;
}

static int on_data(void *arg, const void *data, size_t len)
{
    struct parsed *p = arg;

    if (p->n == 0)
        return UV_EINVAL;
    test_buf_add(&p->v[p->n - 1].data, data, len);
    return 0;
}

static void parsed_free(struct parsed *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].path);
        free(p->v[i].link);
        free(p->v[i].data.data);
        for (size_t j = 0; j < p->v[i].n_xattrs; j++) {
            free(p->v[i].xname[j]);
            free(p->v[i].xval[j].data);
        }
    }
    p->n = 0;
}

/* Parses data in pieces of step bytes (0: all at once), then finishes. */
static int parse(const void *data, size_t len, size_t step, struct parsed *p)
{
    struct oci_tar_reader r;
    const unsigned char *d = data;
    int rc;

    memset(p, 0, offsetof(struct parsed, abort_at));
    CHECK_INT(oci_tar_reader_init(&r, on_entry, on_data, p), 0);
    if (step == 0)
        step = len ? len : 1;
    rc = 0;
    for (size_t off = 0; off < len && rc == 0; off += step)
        rc =
            oci_tar_reader_feed(&r, d + off, len - off < step ? len - off : step, err, sizeof(err));
    if (rc == 0)
        rc = oci_tar_reader_finish(&r, err, sizeof(err));
    oci_tar_reader_dispose(&r);
    return rc;
}

static const struct rec *find(const struct parsed *p, const char *path)
{
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->v[i].path, path) == 0)
            return &p->v[i];
    }
    fprintf(stderr, "entry \"%s\" not found\n", path);
    return NULL;
}

static bool same_parse(const struct parsed *a, const struct parsed *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const struct rec *x = &a->v[i], *y = &b->v[i];

        if (x->type != y->type || strcmp(x->path, y->path) != 0 || strcmp(x->link, y->link) != 0 ||
            x->size != y->size || x->mode != y->mode || x->uid != y->uid || x->gid != y->gid ||
            x->mtime != y->mtime || x->data.len != y->data.len ||
            (x->data.len && memcmp(x->data.data, y->data.data, x->data.len) != 0))
            return false;
    }
    return true;
}

static void check_file(const struct parsed *p, const char *path, uint32_t mode, const void *content,
                       size_t len)
{
    const struct rec *r = find(p, path);

    CHECK(r != NULL);
    if (r == NULL)
        return;
    CHECK_INT(r->type, '0');
    CHECK_INT(r->mode, mode);
    CHECK_INT(r->size, len);
    CHECK_INT(r->data.len, len);
    CHECK(len == 0 || (r->data.len == len && memcmp(r->data.data, content, len) == 0));
    CHECK_INT(r->uid, 0);
    CHECK_INT(r->gid, 0);
    CHECK_STR(r->link, "");
}

static void check_entry(const struct parsed *p, const char *path, char type, uint32_t mode,
                        const char *link)
{
    const struct rec *r = find(p, path);

    CHECK(r != NULL);
    if (r == NULL)
        return;
    CHECK_INT(r->type, type);
    CHECK_INT(r->mode, mode);
    CHECK_INT(r->size, 0);
    CHECK_INT(r->data.len, 0);
    CHECK_STR(r->link, link);
}

/* The tree's entries as build_tree makes them, below prefix ("" or "app/static/"). */
static void check_tree(const struct parsed *p, const char *prefix)
{
    char path[1024];

#define AT(rel) (snprintf(path, sizeof(path), "%s%s", prefix, rel), path)
    check_file(p, AT("a.txt"), 0644, "hello\n", 6);
    check_file(p, AT("empty"), 0644, "", 0);
    check_file(p, AT("exec.sh"), 0755, "#!/bin/sh\necho hi\n", 18);
    check_file(p, AT("secret"), 0600, "s3cret", 6);
    check_entry(p, AT("sub/"), '5', 0750, "");
    check_entry(p, AT("sub/nested/"), '5', 0755, "");
    check_file(p, AT("sub/nested/deep.txt"), 0644, "deep", 4);
    check_entry(p, AT("link"), '2', 0777, "a.txt");
    check_entry(p, AT("sub/uplink"), '2', 0777, "../a.txt");
    check_entry(p, AT("longtarget"), '2', 0777, T120);
    check_file(p, AT("hard1"), 0644, "hardlinked", 10);
    {
        char target[1024];

        snprintf(target, sizeof(target), "%shard1", prefix);
        check_entry(p, AT("sub/hard2"), '1', 0644, target);
    }
    check_file(p, AT(LONG150), 0644, "long", 4);
    check_entry(p, AT("sub/" P90 "/"), '5', 0755, "");
    check_file(p, AT("sub/" P90 "/" Q90), 0644, "split", 5);
    check_file(p, AT(UTF8_NAME), 0644, "utf8", 4);
    check_file(p, AT("big.bin"), 0644, big_content(), BIG_SIZE);
#undef AT
}

static bool sorted(const struct parsed *p)
{
    for (size_t i = 1; i < p->n; i++) {
        if (strcmp(p->v[i - 1].path, p->v[i].path) >= 0)
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Writer
 */

TEST(roundtrip)
{
    char root[64], src[128];
    struct oci_tar_source s;
    struct parsed p;
    struct test_buf a;

    temp_dir(root, sizeof(root));
    build_tree(root, src, sizeof(src));
    s = (struct oci_tar_source){.src = src, .dest = "/"};
    CHECK_INT(build(&s, 1, NULL, 65536, &a), 0);
    CHECK(a.len % 512 == 0);
    CHECK(a.len >= 1024);
    /* Ends with exactly two zero blocks after the last entry's data. */
    for (size_t i = a.len - 1024; i < a.len; i++) {
        if (a.data[i] != 0) {
            CHECK(!"non-zero byte in the trailer");
            break;
        }
    }
    CHECK_INT(parse(a.data, a.len, 0, &p), 0);
    CHECK_INT(p.n, 17);
    check_tree(&p, "");
    CHECK(sorted(&p));
    for (size_t i = 0; i < p.n; i++) {
        CHECK_INT(p.v[i].uid, 0);
        CHECK_INT(p.v[i].gid, 0);
        CHECK(p.v[i].path[0] != '/' && strncmp(p.v[i].path, "./", 2) != 0);
    }
    parsed_free(&p);
    free(a.data);
    rm_tree(root);
}

TEST(plan_counts)
{
    char root[64], src[128];
    struct oci_tar_source s;
    struct oci_tar_plan plan;

    temp_dir(root, sizeof(root));
    build_tree(root, src, sizeof(src));
    s = (struct oci_tar_source){.src = src, .dest = NULL};
    CHECK_INT(oci_tar_plan_build(&plan, &s, 1, NULL, err, sizeof(err)), 0);
    CHECK_INT(plan.n_entries, 17);
    /* The hardlink's content is counted once. */
    CHECK_INT(plan.content_bytes, 6 + 0 + 18 + 6 + 4 + 10 + 4 + 5 + 4 + BIG_SIZE);
    oci_tar_plan_free(&plan);
    oci_tar_plan_free(&plan);
    rm_tree(root);
}

TEST(deterministic)
{
    char root[64], src[128], p2[8192];
    struct oci_tar_source s;
    struct oci_tar_opts opts = {.clamp_mtime = true, .mtime_max = 1000000};
    struct timespec ts[2] = {{500, 0}, {500, 0}};
    struct test_buf a, b, c;
    struct parsed p;

    temp_dir(root, sizeof(root));
    build_tree(root, src, sizeof(src));
    snprintf(p2, sizeof(p2), "%s/secret", src);
    CHECK_INT(utimensat(AT_FDCWD, p2, ts, AT_SYMLINK_NOFOLLOW), 0);
    s = (struct oci_tar_source){.src = src, .dest = "/app/static"};
    /* Different read sizes, same bytes. */
    CHECK_INT(build(&s, 1, NULL, 65536, &a), 0);
    CHECK_INT(build(&s, 1, NULL, 7, &b), 0);
    CHECK_INT(a.len, b.len);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    free(b.data);

    /* Clamped: two runs identical, a touch in between changes nothing. */
    CHECK_INT(build(&s, 1, &opts, 4096, &b), 0);
    snprintf(p2, sizeof(p2), "%s/a.txt", src);
    CHECK_INT(utimensat(AT_FDCWD, p2, NULL, 0), 0);
    CHECK_INT(build(&s, 1, &opts, 100000, &c), 0);
    CHECK_INT(b.len, c.len);
    CHECK(b.len == c.len && memcmp(b.data, c.data, b.len) == 0);
    CHECK_INT(parse(c.data, c.len, 0, &p), 0);
    for (size_t i = 0; i < p.n; i++) {
        if (strcmp(p.v[i].path, "app/static/secret") == 0)
            CHECK_INT(p.v[i].mtime, 500);
        else
            CHECK_INT(p.v[i].mtime, 1000000);
    }
    parsed_free(&p);

    /* Unclamped, the implied parent has mtime 0 and real entries their own. */
    CHECK_INT(parse(a.data, a.len, 0, &p), 0);
    CHECK_INT(find(&p, "app/")->mtime, 0);
    CHECK(find(&p, "app/static/a.txt")->mtime > 1000000);
    CHECK_INT(find(&p, "app/static/secret")->mtime, 500);
    parsed_free(&p);
    free(a.data);
    free(b.data);
    free(c.data);
    rm_tree(root);
}

TEST(dest_placement)
{
    char root[64], src[128], file[256], link[256];
    struct oci_tar_source s[3];
    struct parsed p;
    struct test_buf a;

    temp_dir(root, sizeof(root));
    build_tree(root, src, sizeof(src));
    snprintf(file, sizeof(file), "%s/a.txt", src);
    s[0] = (struct oci_tar_source){.src = src, .dest = "/app//./static/"};
    s[1] = (struct oci_tar_source){.src = file, .dest = "etc/conf/"};
    s[2] = (struct oci_tar_source){.src = file, .dest = "/app/renamed.txt"};
    CHECK_INT(build(s, 3, NULL, 65536, &a), 0);
    free(a.data);
    /* A file given through a symlink keeps the name it was given by. */
    snprintf(link, sizeof(link), "%s/alias.txt", root);
    CHECK_INT(symlink(file, link), 0);
    s[1] = (struct oci_tar_source){.src = link, .dest = "etc/conf/"};
    CHECK_INT(build(s, 3, NULL, 65536, &a), 0);
    CHECK_INT(parse(a.data, a.len, 0, &p), 0);
    check_file(&p, "etc/conf/alias.txt", 0644, "hello\n", 6);
    parsed_free(&p);
    free(a.data);
    s[1] = (struct oci_tar_source){.src = file, .dest = "etc/conf/"};
    CHECK_INT(build(s, 3, NULL, 65536, &a), 0);
    CHECK_INT(parse(a.data, a.len, 0, &p), 0);
    CHECK(sorted(&p));
    CHECK_INT(p.n, 17 + 6);
    CHECK_STR(p.v[0].path, "app/");
    CHECK_STR(p.v[1].path, "app/renamed.txt");
    CHECK_STR(p.v[2].path, "app/static/");
    check_entry(&p, "app/", '5', 0755, "");
    check_entry(&p, "app/static/", '5', 0755, "");
    check_entry(&p, "etc/", '5', 0755, "");
    check_entry(&p, "etc/conf/", '5', 0755, "");
    check_file(&p, "etc/conf/a.txt", 0644, "hello\n", 6);
    check_file(&p, "app/renamed.txt", 0644, "hello\n", 6);
    check_tree(&p, "app/static/");
    parsed_free(&p);
    free(a.data);
    rm_tree(root);
}

TEST(chown_and_pax_numbers)
{
    char root[64], src[128], path[256], cmd[1024], line[512];
    struct oci_tar_source s;
    struct oci_tar_opts opts = {.chown = true, .uid = 3000000, .gid = 1000};
    struct timespec ts[2] = {{0, 0}, {-100, 0}};
    const struct rec *r;
    struct parsed p;
    struct test_buf a;
    FILE *f;
    int fd;
    bool saw_uid = false;

    temp_dir(root, sizeof(root));
    snprintf(src, sizeof(src), "%s/src", root);
    CHECK_INT(mkdir(src, 0755), 0);
    make_file(src, "old", "x", 1, 0644);
    snprintf(path, sizeof(path), "%s/old", src);
    ts[0].tv_sec = -100;
    CHECK_INT(utimensat(AT_FDCWD, path, ts, 0), 0);
    s = (struct oci_tar_source){.src = src, .dest = ""};
    CHECK_INT(build(&s, 1, &opts, 65536, &a), 0);
    CHECK_INT(parse(a.data, a.len, 0, &p), 0);
    r = find(&p, "old");
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK_INT(r->uid, 3000000);
        CHECK_INT(r->gid, 1000);
        CHECK_INT(r->mtime, -100);
    }
    parsed_free(&p);

    /* GNU tar reads the PAX uid and mtime too. */
    snprintf(path, sizeof(path), "%s/pax.tar", root);
    f = fopen(path, "wb");
    CHECK(f != NULL);
    fwrite(a.data, 1, a.len, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "TZ=UTC tar --numeric-owner -tvf '%s' 2>&1", path);
    f = popen(cmd, "r");
    CHECK(f != NULL);
    while (f && fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, "3000000/1000") && strstr(line, "old") && strstr(line, "1969-12-31"))
            saw_uid = true;
    }
    CHECK(f && pclose(f) == 0);
    CHECK(saw_uid);
    free(a.data);

    /* A file of 8 GiB or more needs a PAX size; only the headers are read here. */
    snprintf(path, sizeof(path), "%s/src/huge", root);
    fd = open(path, O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0);
    if (fd >= 0 && ftruncate(fd, (off_t)(UINT64_C(8) << 30) + 1) == 0) {
        struct oci_tar_plan plan;
        struct oci_tar_stream st;
        struct oci_tar_reader rd;
        unsigned char head[4096];
        size_t n;

        close(fd);
        fd = -1;
        CHECK_INT(oci_tar_plan_build(&plan, &s, 1, NULL, err, sizeof(err)), 0);
        CHECK_INT(plan.content_bytes, (UINT64_C(8) << 30) + 2);
        CHECK_INT(oci_tar_stream_init(&st, &plan), 0);
        CHECK_INT(oci_tar_stream_read(&st, head, sizeof(head), &n, err, sizeof(err)), 0);
        CHECK_INT(n, sizeof(head));
        oci_tar_stream_dispose(&st);
        memset(&p, 0, sizeof(p));
        CHECK_INT(oci_tar_reader_init(&rd, on_entry, NULL, &p), 0);
        CHECK_INT(oci_tar_reader_feed(&rd, head, n, err, sizeof(err)), 0);
        /* It stops inside the data of the huge file. */
        CHECK_INT(oci_tar_reader_finish(&rd, err, sizeof(err)), UV_EINVAL);
        CHECK(strstr(err, "huge") != NULL);
        oci_tar_reader_dispose(&rd);
        CHECK_INT(p.n, 1);
        CHECK_STR(p.v[0].path, "huge");
        CHECK_INT(p.v[0].size, (UINT64_C(8) << 30) + 1);
        parsed_free(&p);
        oci_tar_plan_free(&plan);
    } else {
        fprintf(stderr, "note: no sparse 8 GiB file here, PAX size not checked\n");
    }
    if (fd >= 0)
        close(fd);
    rm_tree(root);
}

/* Writes buf to path. */
static void write_out(const char *path, const struct test_buf *b)
{
    FILE *f = fopen(path, "wb");

    CHECK(f != NULL);
    if (f == NULL)
        return;
    CHECK_INT(fwrite(b->data, 1, b->len, f), b->len);
    fclose(f);
}

/* Compares an extracted file with its source: content and mode. */
static void check_extracted(const char *src, const char *out, const char *rel)
{
    char a[8192], b[8192];
    struct stat sa, sb;
    FILE *fa, *fb;
    int ca, cb;

    snprintf(a, sizeof(a), "%s/%s", src, rel);
    snprintf(b, sizeof(b), "%s/%s", out, rel);
    CHECK_INT(lstat(a, &sa), 0);
    CHECK_INT(lstat(b, &sb), 0);
    CHECK_INT(sa.st_mode & 0170000, sb.st_mode & 0170000);
    if (!S_ISLNK(sa.st_mode))
        CHECK_INT(sa.st_mode & 07777, sb.st_mode & 07777);
    if (!S_ISREG(sa.st_mode))
        return;
    fa = fopen(a, "rb");
    fb = fopen(b, "rb");
    CHECK(fa != NULL && fb != NULL);
    if (fa && fb) {
        do {
            ca = fgetc(fa);
            cb = fgetc(fb);
        } while (ca == cb && ca != EOF);
        CHECK_INT(ca, cb);
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
}

TEST(gnu_tar_reads_ours)
{
    char root[64], src[128], tarfile[256], out[256], cmd[1024], a[8192], b[8192];
    static const char *const rels[] = {
        "a.txt",
        "empty",
        "exec.sh",
        "secret",
        "sub",
        "sub/nested",
        "sub/nested/deep.txt",
        "link",
        "sub/uplink",
        "longtarget",
        "hard1",
        "sub/hard2",
        LONG150,
        "sub/" P90,
        "sub/" P90 "/" Q90,
        UTF8_NAME,
        "big.bin",
    };
    struct oci_tar_source s;
    struct stat sa, sb;
    struct test_buf ar;
    ssize_t n;

    temp_dir(root, sizeof(root));
    build_tree(root, src, sizeof(src));
    s = (struct oci_tar_source){.src = src, .dest = NULL};
    CHECK_INT(build(&s, 1, NULL, 65536, &ar), 0);
    snprintf(tarfile, sizeof(tarfile), "%s/layer.tar", root);
    write_out(tarfile, &ar);
    free(ar.data);
    snprintf(out, sizeof(out), "%s/out", root);
    CHECK_INT(mkdir(out, 0755), 0);
    /* No warnings at all: an unknown PAX keyword or a bad header would print one. */
    snprintf(cmd, sizeof(cmd), "tar -tvf '%s' >'%s/list' 2>'%s/warn' && test ! -s '%s/warn'",
             tarfile, root, root, root);
    CHECK_INT(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "tar -xpf '%s' -C '%s' 2>'%s/warn' && test ! -s '%s/warn'", tarfile,
             out, root, root);
    CHECK_INT(system(cmd), 0);
    for (size_t i = 0; i < sizeof(rels) / sizeof(rels[0]); i++)
        check_extracted(src, out, rels[i]);
    snprintf(a, sizeof(a), "%s/longtarget", out);
    n = readlink(a, b, sizeof(b) - 1);
    CHECK_INT(n, 120);
    b[n > 0 ? n : 0] = '\0';
    CHECK_STR(b, T120);
    snprintf(a, sizeof(a), "%s/hard1", out);
    snprintf(b, sizeof(b), "%s/sub/hard2", out);
    CHECK_INT(stat(a, &sa), 0);
    CHECK_INT(stat(b, &sb), 0);
    CHECK(sa.st_ino == sb.st_ino);
    rm_tree(root);
}

/* Reads a file GNU tar made and compares with what we make of the same tree. */
static void read_gnu(const char *root, const char *src, const char *format, size_t step)
{
    char tarfile[256], cmd[1024];
    struct parsed p;
    struct test_buf b = {0};
    FILE *f;
    unsigned char chunk[4096];
    size_t n;

    snprintf(tarfile, sizeof(tarfile), "%s/gnu-%s.tar", root, format);
    snprintf(cmd, sizeof(cmd),
             "tar --sort=name --owner=0 --group=0 --numeric-owner --format=%s -C '%s' -cf '%s' .",
             format, src, tarfile);
    CHECK_INT(system(cmd), 0);
    f = fopen(tarfile, "rb");
    CHECK(f != NULL);
    while (f && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        test_buf_add(&b, chunk, n);
    if (f)
        fclose(f);
    CHECK_INT(parse(b.data, b.len, step, &p), 0);
    CHECK_INT(p.n, 18);
    check_entry(&p, ".", '5', 0755, "");
    check_tree(&p, "");
    parsed_free(&p);
    free(b.data);
}

TEST(reads_gnu_tar)
{
    char root[64], src[128];

    temp_dir(root, sizeof(root));
    build_tree(root, src, sizeof(src));
    read_gnu(root, src, "gnu", 0);
    read_gnu(root, src, "pax", 0);
    read_gnu(root, src, "gnu", 333);
    read_gnu(root, src, "pax", 1);
    rm_tree(root);
}

TEST(reads_v7)
{
    char root[64], src[128], tarfile[256], cmd[1024];
    struct parsed p;
    struct test_buf b = {0};
    unsigned char chunk[4096];
    size_t n;
    FILE *f;

    temp_dir(root, sizeof(root));
    snprintf(src, sizeof(src), "%s/src", root);
    CHECK_INT(mkdir(src, 0755), 0);
    make_file(src, "a.txt", "hello\n", 6, 0640);
    make_dir(src, "d", 0700);
    make_file(src, "d/x", "xx", 2, 0644);
    make_symlink(src, "d/l", "x");
    snprintf(tarfile, sizeof(tarfile), "%s/v7.tar", root);
    snprintf(cmd, sizeof(cmd),
             "tar --owner=0 --group=0 --numeric-owner --format=v7 -C '%s' -cf '%s' a.txt d", src,
             tarfile);
    CHECK_INT(system(cmd), 0);
    f = fopen(tarfile, "rb");
    CHECK(f != NULL);
    while (f && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        test_buf_add(&b, chunk, n);
    if (f)
        fclose(f);
    CHECK_INT(parse(b.data, b.len, 0, &p), 0);
    CHECK_INT(p.n, 4);
    check_file(&p, "a.txt", 0640, "hello\n", 6);
    check_entry(&p, "d/", '5', 0700, "");
    check_file(&p, "d/x", 0644, "xx", 2);
    check_entry(&p, "d/l", '2', 0777, "x");
    parsed_free(&p);
    free(b.data);
    rm_tree(root);
}

/* Expects plan_build to fail with code and an err mentioning needle. */
static void expect_refused(const struct oci_tar_source *s, size_t n, int code, const char *needle)
{
    struct oci_tar_plan plan;

    memset(err, 0, sizeof(err));
    CHECK_INT(oci_tar_plan_build(&plan, s, n, NULL, err, sizeof(err)), code);
    CHECK(plan.entries == NULL && plan.n_entries == 0);
    if (strstr(err, needle) == NULL)
        fprintf(stderr, "err \"%s\" does not mention \"%s\"\n", err, needle);
    CHECK(strstr(err, needle) != NULL);
}

TEST(refusals)
{
    char root[64], src[128], other[256], file[256];
    struct oci_tar_source s[2];

    temp_dir(root, sizeof(root));
    build_tree(root, src, sizeof(src));

    s[0] = (struct oci_tar_source){.src = src, .dest = "/app/../etc"};
    expect_refused(s, 1, OCISYNC_EUSAGE, "/app/../etc");
    s[0] = (struct oci_tar_source){.src = src, .dest = ".."};
    expect_refused(s, 1, OCISYNC_EUSAGE, "\"..\"");

    s[0] = (struct oci_tar_source){.src = "/nonexistent/ocisync-tar", .dest = "/"};
    expect_refused(s, 1, UV_ENOENT, "/nonexistent/ocisync-tar");

    /* Two sources, one path; a file where a directory is needed. */
    s[0] = (struct oci_tar_source){.src = src, .dest = "/"};
    s[1] = (struct oci_tar_source){.src = src, .dest = ""};
    expect_refused(s, 2, OCISYNC_EUSAGE, "comes from both");
    snprintf(file, sizeof(file), "%s/a.txt", src);
    s[0] = (struct oci_tar_source){.src = file, .dest = "/app"};
    s[1] = (struct oci_tar_source){.src = src, .dest = "/app/static"};
    expect_refused(s, 2, OCISYNC_EUSAGE, "\"app");

    /* A fifo. */
    snprintf(other, sizeof(other), "%s/bad3", root);
    CHECK_INT(mkdir(other, 0755), 0);
    snprintf(file, sizeof(file), "%s/pipe", other);
    CHECK_INT(mkfifo(file, 0644), 0);
    s[0] = (struct oci_tar_source){.src = other, .dest = "/"};
    expect_refused(s, 1, OCISYNC_EUSAGE, "bad3/pipe\" is a fifo");
    rm_tree(root);
}

/* COPY --chmod, octal and symbolic, as chmod(1) reads it. */
TEST(chmod_modes)
{
    struct oci_chmod m;

    CHECK_INT(oci_chmod_parse("0755", &m, err, sizeof(err)), 0);
    CHECK_INT(oci_chmod_apply(&m, 0600, false), 0755);
    CHECK_INT(oci_chmod_parse("4711", &m, err, sizeof(err)), 0);
    CHECK_INT(oci_chmod_apply(&m, 0644, false), 04711);
    CHECK_INT(oci_chmod_parse("u+x", &m, err, sizeof(err)), 0);
    CHECK_INT(oci_chmod_apply(&m, 0644, false), 0744);
    CHECK_INT(oci_chmod_parse("g-w,o=r", &m, err, sizeof(err)), 0);
    CHECK_INT(oci_chmod_apply(&m, 0666, false), 0644);
    CHECK_INT(oci_chmod_parse("a+X", &m, err, sizeof(err)), 0);
    CHECK_INT(oci_chmod_apply(&m, 0644, false), 0644);
    CHECK_INT(oci_chmod_apply(&m, 0644, true), 0755);
    CHECK_INT(oci_chmod_apply(&m, 0744, false), 0755);
    CHECK_INT(oci_chmod_parse("+x", &m, err, sizeof(err)), 0);
    CHECK_INT(oci_chmod_apply(&m, 0600, false), 0711);
    CHECK_INT(oci_chmod_parse("u=rwx,go=rx", &m, err, sizeof(err)), 0);
    CHECK_INT(oci_chmod_apply(&m, 0000, false), 0755);
    CHECK_INT(oci_chmod_parse("", &m, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_INT(oci_chmod_parse("0758", &m, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_INT(oci_chmod_parse("17777", &m, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_INT(oci_chmod_parse("u+q", &m, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK(strstr(err, "\"u+q\"") != NULL);
    CHECK_INT(oci_chmod_parse("u+x,", &m, err, sizeof(err)), OCISYNC_EUSAGE);
}

/*
 * Sources laid over each other (COPY a b /dst/): directories merge, the later
 * file wins, --chmod reaches files and directories but not links or implied
 * parents; a file against a directory is still refused.
 */
TEST(overlay_sources)
{
    char root[64], a[128], b[128], c[128];
    struct oci_tar_source s[3];
    struct oci_tar_opts o;
    struct oci_chmod m;
    struct parsed p;
    struct test_buf t;

    temp_dir(root, sizeof(root));
    snprintf(a, sizeof(a), "%s/a", root);
    snprintf(b, sizeof(b), "%s/b", root);
    snprintf(c, sizeof(c), "%s/c", root);
    CHECK_INT(mkdir(a, 0700), 0);
    CHECK_INT(mkdir(b, 0750), 0);
    CHECK_INT(mkdir(c, 0755), 0);
    make_file(a, "same.txt", "from a", 6, 0600);
    make_file(a, "only-a", "a", 1, 0600);
    make_dir(a, "d", 0700);
    make_file(b, "same.txt", "from b!", 7, 0600);
    make_dir(b, "d", 0700);
    make_file(b, "d/x", "x", 1, 0600);
    make_symlink(b, "l", "same.txt");
    make_dir(c, "same.txt", 0755);
    memset(&o, 0, sizeof(o));
    o.overlay = true;
    CHECK_INT(oci_chmod_parse("go+rX", &m, err, sizeof(err)), 0);
    o.chmod = &m;
    s[0] = (struct oci_tar_source){.src = a, .dest = "/app"};
    s[1] = (struct oci_tar_source){.src = b, .dest = "/app"};
    CHECK_INT(build(s, 2, &o, 65536, &t), 0);
    CHECK_INT(parse(t.data, t.len, 0, &p), 0);
    check_entry(&p, "app/", '5', 0755, "");
    check_file(&p, "app/same.txt", 0644, "from b!", 7);
    check_file(&p, "app/only-a", 0644, "a", 1);
    check_entry(&p, "app/d/", '5', 0755, "");
    check_file(&p, "app/d/x", 0644, "x", 1);
    check_entry(&p, "app/l", '2', 0777, "same.txt");
    CHECK_INT(p.n, 6);
    parsed_free(&p);
    free(t.data);

    /* Without overlay, the same two sources collide. */
    o.overlay = false;
    CHECK_INT(oci_tar_plan_build(&(struct oci_tar_plan){0}, s, 2, &o, err, sizeof(err)),
              OCISYNC_EUSAGE);
    CHECK(strstr(err, "comes from both") != NULL);
    /* A directory over a file is refused even when overlaying. */
    o.overlay = true;
    s[0] = (struct oci_tar_source){.src = a, .dest = "/app"};
    s[1] = (struct oci_tar_source){.src = c, .dest = "/app"};
    s[2] = (struct oci_tar_source){.src = b, .dest = "/app"};
    CHECK_INT(oci_tar_plan_build(&(struct oci_tar_plan){0}, s, 3, &o, err, sizeof(err)),
              OCISYNC_EUSAGE);
    rm_tree(root);
}

/* A filter that drops *.log and gone/, and descends into skip/ for keep.txt only. */
static int test_filter(void *arg, const char *local, bool is_dir)
{
    const char *base = strrchr(local, '/') + 1;
    size_t n = strlen(base);

    (*(int *)arg)++;
    if (strcmp(base, "gone") == 0)
        return OCI_TAR_EXCLUDE;
    if (strcmp(base, "skip") == 0 || strcmp(base, "empty") == 0)
        return is_dir ? OCI_TAR_DESCEND : OCI_TAR_EXCLUDE;
    if (strstr(local, "/skip/") != NULL || strstr(local, "/empty/") != NULL)
        return strcmp(base, "keep.txt") == 0 ? OCI_TAR_INCLUDE : OCI_TAR_EXCLUDE;
    return n > 4 && strcmp(base + n - 4, ".log") == 0 ? OCI_TAR_EXCLUDE : OCI_TAR_INCLUDE;
}

TEST(filter_entries)
{
    char root[64];
    struct oci_tar_source s;
    struct oci_tar_opts o;
    struct parsed p;
    struct test_buf t;
    int calls = 0;

    temp_dir(root, sizeof(root));
    make_file(root, "a.txt", "a", 1, 0644);
    make_file(root, "a.log", "x", 1, 0644);
    make_dir(root, "gone", 0755);
    make_file(root, "gone/inner.txt", "x", 1, 0644);
    make_dir(root, "skip", 0750);
    make_file(root, "skip/keep.txt", "k", 1, 0644);
    make_file(root, "skip/drop.txt", "d", 1, 0644);
    make_dir(root, "empty", 0755);
    make_file(root, "empty/drop.txt", "d", 1, 0644);
    memset(&o, 0, sizeof(o));
    o.filter = test_filter;
    o.filter_arg = &calls;
    s = (struct oci_tar_source){.src = root, .dest = "/"};
    CHECK_INT(build(&s, 1, &o, 65536, &t), 0);
    CHECK_INT(parse(t.data, t.len, 0, &p), 0);
    check_file(&p, "a.txt", 0644, "a", 1);
    check_entry(&p, "skip/", '5', 0750, "");
    check_file(&p, "skip/keep.txt", 0644, "k", 1);
    CHECK_INT(p.n, 3);   /* no a.log, gone/, skip/drop.txt, nor empty/ with nothing kept */
    CHECK_INT(calls, 8); /* everything but what is below gone/ was asked about */
    parsed_free(&p);
    free(t.data);
    rm_tree(root);
}

/*
 * Symlinks are data: every one is stored as it is, wherever it points
 * (absolute, into /etc/alternatives, up and out of the source), and what it
 * points to is never read. A source that is itself a link to a directory is
 * followed once, as docker follows the context root.
 */
TEST(links_as_they_are)
{
    static const char marker[] = "OUTSIDE-CONTENT-MUST-NOT-ENTER-THE-LAYER";
    char root[64], src[128], outside[256], via[256];
    struct oci_tar_source s;
    struct parsed p;
    struct test_buf a;

    temp_dir(root, sizeof(root));
    snprintf(outside, sizeof(outside), "%s/outside", root);
    CHECK_INT(mkdir(outside, 0755), 0);
    make_file(outside, "secret.txt", marker, sizeof(marker) - 1, 0644);
    make_dir(outside, "dir", 0755);
    make_file(outside, "dir/inner.txt", marker, sizeof(marker) - 1, 0644);

    snprintf(src, sizeof(src), "%s/src", root);
    CHECK_INT(mkdir(src, 0755), 0);
    make_dir(src, "bin", 0755);
    make_dir(src, "usr", 0755);
    make_dir(src, "usr/bin", 0755);
    make_dir(src, "venv", 0755);
    make_dir(src, "venv/bin", 0755);
    make_symlink(src, "bin/sh", "/bin/busybox");
    make_symlink(src, "usr/bin/vi", "/etc/alternatives/vi");
    make_symlink(src, "venv/bin/python", "/usr/bin/python3");
    make_symlink(src, "venv/bin/up", "../../../outside/secret.txt");
    make_symlink(src, "abs-file", outside); /* absolute, to a real directory */
    {
        char target[300];

        snprintf(target, sizeof(target), "%s/secret.txt", outside);
        make_symlink(src, "abs-secret", target);
    }
    make_symlink(src, "dangling", "no/such/thing");

    /* The source named through a link to it: followed once. */
    snprintf(via, sizeof(via), "%s/via", root);
    CHECK_INT(symlink(src, via), 0);
    s = (struct oci_tar_source){.src = via, .dest = "/"};
    CHECK_INT(build(&s, 1, NULL, 65536, &a), 0);
    CHECK_INT(parse(a.data, a.len, 0, &p), 0);
    check_entry(&p, "bin/sh", '2', 0777, "/bin/busybox");
    check_entry(&p, "usr/bin/vi", '2', 0777, "/etc/alternatives/vi");
    check_entry(&p, "venv/bin/python", '2', 0777, "/usr/bin/python3");
    check_entry(&p, "venv/bin/up", '2', 0777, "../../../outside/secret.txt");
    check_entry(&p, "abs-file", '2', 0777, outside);
    check_entry(&p, "dangling", '2', 0777, "no/such/thing");
    {
        char target[300];

        snprintf(target, sizeof(target), "%s/secret.txt", outside);
        check_entry(&p, "abs-secret", '2', 0777, target);
    }
    /* bin/ usr/ usr/bin/ venv/ venv/bin/ and the seven links: nothing below abs-file. */
    CHECK_INT(p.n, 12);
    /* Not one byte of what the links point to. */
    CHECK(memmem(a.data, a.len, marker, sizeof(marker) - 1) == NULL);
    parsed_free(&p);
    free(a.data);
    rm_tree(root);
}

/*
 * An unreadable file is named in the error. Root reads everything, so as
 * root the check runs in a child that has become "nobody".
 */
TEST(unreadable)
{
    char root[64], src[128], file[256];
    struct oci_tar_source s;
    pid_t pid;
    int status = 0;

    temp_dir(root, sizeof(root));
    CHECK_INT(chmod(root, 0755), 0);
    snprintf(src, sizeof(src), "%s/src", root);
    CHECK_INT(mkdir(src, 0755), 0);
    make_file(src, "ok", "ok", 2, 0644);
    make_file(src, "locked", "no", 2, 0000);
    snprintf(file, sizeof(file), "%s/locked", src);
    s = (struct oci_tar_source){.src = src, .dest = "/"};
    if (geteuid() != 0) {
        expect_refused(&s, 1, UV_EACCES, file);
        rm_tree(root);
        return;
    }
    fflush(NULL);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct oci_tar_plan plan;
        int rc;

        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(77);
        rc = oci_tar_plan_build(&plan, &s, 1, NULL, err, sizeof(err));
        _exit(rc == UV_EACCES && strstr(err, file) != NULL && strstr(err, "permission denied") ? 0
                                                                                               : 1);
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
        fprintf(stderr, "note: cannot drop to uid 65534, unreadable-file check skipped\n");
    else
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    rm_tree(root);
}

TEST(changed_while_streaming)
{
    char root[64], src[128], file[256];
    struct oci_tar_source s;
    struct oci_tar_plan plan;
    struct oci_tar_stream st;
    unsigned char chunk[1024];
    size_t n;
    int fd, rc;
    struct test_buf b;

    temp_dir(root, sizeof(root));
    snprintf(src, sizeof(src), "%s/src", root);
    CHECK_INT(mkdir(src, 0755), 0);
    make_file(src, "f", big_content(), 4096, 0644);
    snprintf(file, sizeof(file), "%s/f", src);
    s = (struct oci_tar_source){.src = file, .dest = "/f"};

    /* Truncated between plan and stream. */
    CHECK_INT(oci_tar_plan_build(&plan, &s, 1, NULL, err, sizeof(err)), 0);
    CHECK_INT(truncate(file, 10), 0);
    CHECK_INT(stream_all(&plan, 65536, &b), OCISYNC_ESIZEMISMATCH);
    CHECK(strstr(err, "changed while the layer was being built") != NULL);
    CHECK(strstr(err, file) != NULL);
    free(b.data);
    oci_tar_plan_free(&plan);

    /* Shrinks while it is being read. */
    make_file(src, "f", big_content(), 4096, 0644);
    CHECK_INT(oci_tar_plan_build(&plan, &s, 1, NULL, err, sizeof(err)), 0);
    CHECK_INT(oci_tar_stream_init(&st, &plan), 0);
    CHECK_INT(oci_tar_stream_read(&st, chunk, sizeof(chunk), &n, err, sizeof(err)), 0);
    CHECK_INT(n, 1024);
    CHECK_INT(truncate(file, 1000), 0);
    do {
        rc = oci_tar_stream_read(&st, chunk, sizeof(chunk), &n, err, sizeof(err));
    } while (rc == 0 && n > 0);
    CHECK_INT(rc, OCISYNC_ESIZEMISMATCH);
    CHECK(strstr(err, "shorter") != NULL);
    /* Sticky. */
    CHECK_INT(oci_tar_stream_read(&st, chunk, sizeof(chunk), &n, err, sizeof(err)),
              OCISYNC_ESIZEMISMATCH);
    oci_tar_stream_dispose(&st);
    oci_tar_plan_free(&plan);

    /* Grows after its planned bytes were read. */
    make_file(src, "f", big_content(), 4096, 0644);
    CHECK_INT(oci_tar_plan_build(&plan, &s, 1, NULL, err, sizeof(err)), 0);
    CHECK_INT(oci_tar_stream_init(&st, &plan), 0);
    /* Exactly the header and the data, so the end-of-file check comes with the next read. */
    for (size_t got = 0; got < 512 + 4096; got += n) {
        size_t want = 512 + 4096 - got < sizeof(chunk) ? 512 + 4096 - got : sizeof(chunk);

        CHECK_INT(oci_tar_stream_read(&st, chunk, want, &n, err, sizeof(err)), 0);
    }
    fd = open(file, O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    CHECK_INT(write(fd, "more", 4), 4);
    close(fd);
    CHECK_INT(oci_tar_stream_read(&st, chunk, sizeof(chunk), &n, err, sizeof(err)),
              OCISYNC_ESIZEMISMATCH);
    CHECK(strstr(err, "longer") != NULL);
    oci_tar_stream_dispose(&st);
    oci_tar_plan_free(&plan);

    /* Replaced by a symlink. */
    make_file(src, "f", "x", 1, 0644);
    CHECK_INT(oci_tar_plan_build(&plan, &s, 1, NULL, err, sizeof(err)), 0);
    CHECK_INT(unlink(file), 0);
    make_symlink(src, "f", "/etc/passwd");
    CHECK_INT(stream_all(&plan, 65536, &b), OCISYNC_ESIZEMISMATCH);
    CHECK(strstr(err, "changed while the layer was being built") != NULL);
    free(b.data);
    oci_tar_plan_free(&plan);
    rm_tree(root);
}

/* ---------------------------------------------------------------------------------------------
 * Reader
 */

/* A ustar header for name with type and size field text, checksum filled in. */
static void make_header(unsigned char *h, const char *name, char type, const char *size)
{
    unsigned sum = 0;

    memset(h, 0, 512);
    memcpy(h, name, strlen(name) < 100 ? strlen(name) : 100);
    memcpy(h + 100, "0000644", 7);
    memcpy(h + 108, "0000000", 7);
    memcpy(h + 116, "0000000", 7);
    memcpy(h + 124, size, strlen(size));
    memcpy(h + 136, "00000000000", 11);
    h[156] = (unsigned char)type;
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
}

/* A small archive of our own, for the hostile-input tests. */
static void small_archive(struct test_buf *out)
{
    char root[64], src[128];
    struct oci_tar_source s;

    temp_dir(root, sizeof(root));
    build_tree(root, src, sizeof(src));
    s = (struct oci_tar_source){.src = src, .dest = NULL};
    CHECK_INT(build(&s, 1, NULL, 65536, out), 0);
    rm_tree(root);
}

TEST(reader_split_anywhere)
{
    struct parsed whole, p;
    struct test_buf a;

    small_archive(&a);
    CHECK_INT(parse(a.data, a.len, 0, &whole), 0);
    CHECK_INT(whole.n, 17);
    CHECK_INT(parse(a.data, a.len, 1, &p), 0);
    CHECK(same_parse(&whole, &p));
    parsed_free(&p);
    CHECK_INT(parse(a.data, a.len, 511, &p), 0);
    CHECK(same_parse(&whole, &p));
    parsed_free(&p);
    CHECK_INT(parse(a.data, a.len, 513, &p), 0);
    CHECK(same_parse(&whole, &p));
    parsed_free(&p);

    /* Whatever follows the end blocks is ignored. */
    test_buf_add(&a, "garbage garbage", 15);
    CHECK_INT(parse(a.data, a.len, 0, &p), 0);
    CHECK(same_parse(&whole, &p));
    parsed_free(&p);
    parsed_free(&whole);
    free(a.data);
}

TEST(reader_truncated)
{
    struct parsed p;
    struct test_buf a;

    small_archive(&a);
    /* Inside the header of the last entry (sub/uplink). */
    CHECK_INT(parse(a.data, a.len - 1024 - 100, 0, &p), UV_EINVAL);
    CHECK(strstr(err, "truncated") != NULL);
    parsed_free(&p);
    CHECK_INT(parse(a.data, 100, 0, &p), UV_EINVAL);
    CHECK(strstr(err, "inside a header") != NULL);
    parsed_free(&p);
    /* Inside big.bin's data, one byte at a time: the message names it. */
    {
        size_t cut = 0;

        CHECK_INT(parse(a.data, a.len, 0, &p), 0);
        for (size_t i = 0; i < p.n; i++) {
            if (strcmp(p.v[i].path, "big.bin") == 0)
                break;
            cut += 512;
            cut += (p.v[i].size + 511) / 512 * 512;
        }
        /* Any PAX headers before big.bin: there are none, its name is short. */
        parsed_free(&p);
        CHECK_INT(parse(a.data, cut + 512 + 1000, 1, &p), UV_EINVAL);
        CHECK(strstr(err, "big.bin") != NULL);
        parsed_free(&p);
    }
    /* At an entry boundary (after a.txt) without end blocks: accepted, as GNU tar and Go do. */
    CHECK_INT(parse(a.data, 1024, 0, &p), 0);
    CHECK_INT(p.n, 1);
    parsed_free(&p);
    /* One end block only: also accepted. */
    CHECK_INT(parse(a.data, a.len - 512, 0, &p), 0);
    CHECK_INT(p.n, 17);
    parsed_free(&p);
    free(a.data);
}

TEST(reader_bad_headers)
{
    unsigned char blk[2048];
    struct parsed p;
    struct test_buf a;

    small_archive(&a);
    a.data[0] ^= 1;
    CHECK_INT(parse(a.data, a.len, 0, &p), UV_EINVAL);
    CHECK(strstr(err, "checksum") != NULL);
    CHECK(strstr(err, "offset 0") != NULL);
    parsed_free(&p);
    free(a.data);

    /* Bad octal, negative base-256 size. */
    make_header(blk, "f", '0', "0000000001x");
    memset(blk + 512, 0, 1024);
    CHECK_INT(parse(blk, 1536, 0, &p), UV_EINVAL);
    CHECK(strstr(err, "size") != NULL);
    parsed_free(&p);
    make_header(blk, "f", '0', "");
    memset(blk + 124, 0xff, 12);
    {
        unsigned sum = 0;

        memset(blk + 148, ' ', 8);
        for (int i = 0; i < 512; i++)
            sum += blk[i];
        snprintf((char *)blk + 148, 8, "%06o", sum);
    }
    CHECK_INT(parse(blk, 1536, 0, &p), UV_EINVAL);
    parsed_free(&p);

    /* A base-256 size that is fine. */
    make_header(blk, "f", '0', "");
    blk[124] = 0x80;
    blk[135] = 3;
    {
        unsigned sum = 0;

        memset(blk + 148, ' ', 8);
        for (int i = 0; i < 512; i++)
            sum += blk[i];
        snprintf((char *)blk + 148, 8, "%06o", sum);
    }
    memcpy(blk + 512, "abc", 3);
    memset(blk + 515, 0, 2048 - 515);
    CHECK_INT(parse(blk, 2048, 0, &p), 0);
    CHECK_INT(p.n, 1);
    CHECK_INT(p.v[0].size, 3);
    CHECK_INT(p.v[0].data.len, 3);
    parsed_free(&p);

    /* A zero block followed by a header. */
    memset(blk, 0, 512);
    make_header(blk + 512, "f", '5', "00000000000");
    CHECK_INT(parse(blk, 1024, 0, &p), UV_EINVAL);
    parsed_free(&p);

    /* A PAX header right before the end. */
    make_header(blk, "PaxHeaders/x", 'x', "00000000000");
    memset(blk + 512, 0, 1024);
    CHECK_INT(parse(blk, 1536, 0, &p), UV_EINVAL);
    CHECK(strstr(err, "not followed") != NULL);
    parsed_free(&p);
}

TEST(reader_caps)
{
    unsigned char blk[1024];
    char *pax;
    struct parsed p;
    size_t len;

    /* A 2 MiB PAX header is refused from its header alone. */
    make_header(blk, "PaxHeaders/x", 'x', "10000000000");
    CHECK_INT(parse(blk, 512, 0, &p), OCISYNC_ETOOBIG);
    CHECK(strstr(err, "PAX") != NULL);
    parsed_free(&p);
    make_header(blk, "././@LongLink", 'L', "10000000000");
    CHECK_INT(parse(blk, 512, 0, &p), OCISYNC_ETOOBIG);
    parsed_free(&p);

    /* A PAX path over OCI_TAR_PATH_MAX. */
    pax = malloc(8192 + 1024);
    len = (size_t)snprintf(pax + 512, 64, "5007 path=");
    memset(pax + 512 + len, 'a', 4996);
    len += 4996;
    pax[512 + len++] = '\n';
    CHECK_INT(len, 5007);
    {
        char size[16];

        snprintf(size, sizeof(size), "%011o", (unsigned)len);
        make_header((unsigned char *)pax, "PaxHeaders/a", 'x', size);
    }
    memset(pax + 512 + len, 0, 8192 + 1024 - 512 - len);
    CHECK_INT(parse(pax, 512 + 5120, 0, &p), OCISYNC_ETOOBIG);
    CHECK(strstr(err, "4096") != NULL);
    parsed_free(&p);

    /* A record whose length does not add up. */
    memcpy(pax + 512, "5006", 4);
    CHECK_INT(parse(pax, 512 + 5120, 0, &p), UV_EINVAL);
    parsed_free(&p);
    free(pax);
}

TEST(reader_pax_records)
{
    static const char recs[] = "30 mtime=1700000000.123456789\n"
                               "12 uid=4242\n"
                               "15 unknown=zzz\n"
                               "19 path=./dir/file\n"
                               "16 linkpath=tgt\n"
                               "8 size=\n";
    unsigned char blk[4096];
    struct parsed p;
    size_t len = strlen(recs);
    char size[16];

    snprintf(size, sizeof(size), "%011o", (unsigned)len);
    make_header(blk, "PaxHeaders/x", 'x', size);
    memset(blk + 512, 0, 512);
    memcpy(blk + 512, recs, len);
    make_header(blk + 1024, "short", '2', "00000000000");
    memset(blk + 1536, 0, 1024);
    CHECK_INT(parse(blk, 2560, 0, &p), 0);
    CHECK_INT(p.n, 1);
    if (p.n == 1) {
        CHECK_STR(p.v[0].path, "dir/file");
        CHECK_STR(p.v[0].link, "tgt");
        CHECK_INT(p.v[0].uid, 4242);
        CHECK_INT(p.v[0].mtime, 1700000000);
        CHECK_INT(p.v[0].type, '2');
    }
    parsed_free(&p);
}

TEST(reader_callback_abort)
{
    struct parsed p;
    struct test_buf a;
    struct oci_tar_reader r;

    small_archive(&a);
    memset(&p, 0, sizeof(p));
    p.abort_at = 3;
    CHECK_INT(oci_tar_reader_init(&r, on_entry, on_data, &p), 0);
    CHECK_INT(oci_tar_reader_feed(&r, a.data, a.len, err, sizeof(err)), UV_ECANCELED);
    CHECK_INT(p.n, 2);
    /* Sticky. */
    CHECK_INT(oci_tar_reader_feed(&r, a.data, 10, err, sizeof(err)), UV_ECANCELED);
    CHECK_INT(oci_tar_reader_finish(&r, err, sizeof(err)), UV_ECANCELED);
    oci_tar_reader_dispose(&r);
    oci_tar_reader_dispose(&r);
    parsed_free(&p);
    CHECK_INT(oci_tar_reader_init(&r, NULL, NULL, NULL), UV_EINVAL);
    free(a.data);
}

/* ---------------------------------------------------------------------------------------------
 * Plans of explicit entries: what a RUN layer holds
 */

/* A setcap-like security.capability value (VFS_CAP_REVISION_2, cap_net_raw): binary, with NULs. */
static const unsigned char CAP_VALUE[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00,
                                            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                            0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
/* A value with every awkward byte a PAX record can hold: '\n', '=', NUL, high bytes. */
static const unsigned char ODD_VALUE[7] = {'a', '\n', '=', 0, 0xff, ' ', '\n'};

static void add_ok(struct oci_tar_plan *plan, const struct oci_tar_plan_entry *e)
{
    int rc = oci_tar_plan_add(plan, e, err, sizeof(err));

    if (rc != 0)
        fprintf(stderr, "oci_tar_plan_add %s: %s\n", e->path, err);
    CHECK_INT(rc, 0);
}

static bool xattr_is(const struct rec *r, const char *name, const void *v, size_t len)
{
    for (size_t i = 0; r != NULL && i < r->n_xattrs; i++) {
        if (strcmp(r->xname[i], name) == 0)
            return r->xval[i].len == len && (len == 0 || memcmp(r->xval[i].data, v, len) == 0);
    }
    return false;
}

/* A fifo, two devices, a whiteout, an opaque directory and a setuid file with xattrs, twice. */
static void add_special(struct oci_tar_plan *plan, const char *file, const struct stat *st,
                        struct oci_tar_xattr *xa, bool reverse)
{
    const struct oci_tar_plan_entry v[] = {
        {.path = "usr/", .type = '5', .mode = 0755},
        {.path = "usr/fifo", .type = '6', .mode = 0640, .mtime = 1700000000},
        {.path = "usr/null", .type = '3', .mode = 0666, .devmajor = 1, .devminor = 3},
        {.path = "usr/sda",
         .type = '4',
         .mode = 0660,
         .gid = 6,
         .devmajor = 8,
         .devminor = 1048575},
        {.path = "usr/.wh.gone", .type = '0'},
        {.path = "opq/.wh..wh..opq", .type = '0'},
        {.path = "opq/", .type = '5', .mode = 01777},
        {.path = "usr/ping",
         .src = (char *)file,
         .type = '0',
         .mode = 04755,
         .size = 4,
         .dev = st->st_dev,
         .ino = st->st_ino,
         .nlink = 2,
         .xattrs = xa,
         .n_xattrs = 3},
        /* The same inode again: it becomes a hardlink to usr/ping, the first by path. */
        {.path = "usr/sbin-ping",
         .src = (char *)file,
         .type = '0',
         .mode = 04755,
         .size = 4,
         .dev = st->st_dev,
         .ino = st->st_ino,
         .nlink = 2},
    };
    size_t n = sizeof(v) / sizeof(v[0]);

    memset(plan, 0, sizeof(*plan));
    for (size_t i = 0; i < n; i++)
        add_ok(plan, &v[reverse ? n - 1 - i : i]);
}

TEST(plan_special_entries)
{
    char root[64], file[128], cmd[512];
    struct oci_tar_plan plan;
    struct test_buf out;
    struct parsed p;
    struct stat st;
    struct oci_tar_xattr xa[3] = {
        {"user.odd", (unsigned char *)ODD_VALUE, sizeof(ODD_VALUE)},
        {"security.capability", (unsigned char *)CAP_VALUE, sizeof(CAP_VALUE)},
        {"user.empty", NULL, 0},
    };
    const struct rec *r;

    temp_dir(root, sizeof(root));
    make_file(root, "bin",
              "\x7f"
              "ELF",
              4, 04755);
    snprintf(file, sizeof(file), "%s/bin", root);
    CHECK_INT(stat(file, &st), 0);
    add_special(&plan, file, &st, xa, false);
    CHECK_INT(oci_tar_plan_seal(&plan, err, sizeof(err)), 0);
    CHECK_INT(plan.n_entries, 9);
    CHECK_STR(plan.entries[0].path, "opq/");
    CHECK_STR(plan.entries[1].path, "opq/.wh..wh..opq");
    CHECK_INT(plan.content_bytes, 4);
    CHECK_INT(stream_all(&plan, 700, &out), 0);

    CHECK_INT(parse(out.data, out.len, 0, &p), 0);
    CHECK_INT(p.n, 9);
    r = find(&p, "usr/fifo");
    CHECK(r != NULL && r->type == '6' && r->mode == 0640 && r->mtime == 1700000000);
    r = find(&p, "usr/null");
    CHECK(r != NULL && r->type == '3' && r->devmajor == 1 && r->devminor == 3);
    r = find(&p, "usr/sda");
    CHECK(r != NULL && r->type == '4' && r->devmajor == 8 && r->devminor == 1048575 && r->gid == 6);
    r = find(&p, "usr/.wh.gone");
    CHECK(r != NULL && r->type == '0' && r->size == 0);
    r = find(&p, "opq/.wh..wh..opq");
    CHECK(r != NULL && r->type == '0' && r->size == 0);
    r = find(&p, "opq/");
    CHECK(r != NULL && r->mode == 01777);
    r = find(&p, "usr/ping");
    CHECK(r != NULL && r->type == '0' && r->mode == 04755 && r->data.len == 4);
    CHECK_INT(r ? r->n_xattrs : 0, 3);
    CHECK(xattr_is(r, "security.capability", CAP_VALUE, sizeof(CAP_VALUE)));
    CHECK(xattr_is(r, "user.odd", ODD_VALUE, sizeof(ODD_VALUE)));
    CHECK(xattr_is(r, "user.empty", "", 0));
    r = find(&p, "usr/sbin-ping");
    CHECK(r != NULL && r->type == '1' && strcmp(r->link, "usr/ping") == 0 && r->n_xattrs == 0);
    /* Split anywhere, the reader sees the same. */
    {
        struct parsed q;

        CHECK_INT(parse(out.data, out.len, 1, &q), 0);
        CHECK(same_parse(&p, &q));
        CHECK(xattr_is(find(&q, "usr/ping"), "user.odd", ODD_VALUE, sizeof(ODD_VALUE)));
        parsed_free(&q);
    }

    /* GNU tar reads the devices, the fifo and the xattrs the same way. */
    snprintf(file, sizeof(file), "%s/special.tar", root);
    write_out(file, &out);
    snprintf(
        cmd, sizeof(cmd),
        "tar -tvf '%s' | grep -q '^crw-rw-rw- .* 1,3 .*usr/null$' && "
        "tar -tvf '%s' | grep -q '^brw-rw---- .* 8,1048575 .*usr/sda$' && "
        "tar -tvf '%s' | grep -q '^prw-r----- .*usr/fifo$' && "
        "tar --xattrs --xattrs-include='*' -tvvf '%s' 2>&1 | grep -q 'x: 20 security.capability'",
        file, file, file, file);
    CHECK_INT(system(cmd), 0);

    /* The same entries added in another order give the same bytes. */
    {
        struct oci_tar_plan again;
        struct test_buf out2;

        snprintf(file, sizeof(file), "%s/bin", root);
        add_special(&again, file, &st, xa, true);
        CHECK_INT(oci_tar_plan_seal(&again, err, sizeof(err)), 0);
        CHECK_INT(stream_all(&again, 4096, &out2), 0);
        CHECK(out2.len == out.len && memcmp(out2.data, out.data, out.len) == 0);
        test_buf_free(&out2);
        oci_tar_plan_free(&again);
    }
    parsed_free(&p);
    test_buf_free(&out);
    oci_tar_plan_free(&plan);
    rm_tree(root);
}

static void add_refused(const struct oci_tar_plan_entry *e, int code, const char *needle)
{
    struct oci_tar_plan plan;

    memset(&plan, 0, sizeof(plan));
    memset(err, 0, sizeof(err));
    CHECK_INT(oci_tar_plan_add(&plan, e, err, sizeof(err)), code);
    CHECK_INT(plan.n_entries, 0);
    if (strstr(err, needle) == NULL)
        fprintf(stderr, "err \"%s\" does not mention \"%s\"\n", err, needle);
    CHECK(strstr(err, needle) != NULL);
    oci_tar_plan_free(&plan);
}

TEST(plan_add_refusals)
{
    struct oci_tar_xattr bad_name = {"user.a=b", (unsigned char *)"v", 1};
    static struct oci_tar_xattr many[OCI_TAR_MAX_XATTRS + 1];
    static unsigned char big[OCI_TAR_XATTR_BYTES];
    struct oci_tar_xattr huge = {"user.big", big, sizeof(big)};
    struct oci_tar_plan plan;

    add_refused(&(struct oci_tar_plan_entry){.path = "../etc/passwd", .type = '0'}, OCISYNC_EUSAGE,
                "\"../etc/passwd\" is not a relative path");
    add_refused(&(struct oci_tar_plan_entry){.path = "/etc/passwd", .type = '0'}, OCISYNC_EUSAGE,
                "\"/etc/passwd\"");
    add_refused(&(struct oci_tar_plan_entry){.path = "a/./b", .type = '0'}, OCISYNC_EUSAGE,
                "\"a/./b\"");
    add_refused(&(struct oci_tar_plan_entry){.path = "a//b", .type = '0'}, OCISYNC_EUSAGE,
                "\"a//b\"");
    add_refused(&(struct oci_tar_plan_entry){.path = "dir", .type = '5'}, OCISYNC_EUSAGE,
                "if and only if it is a directory");
    add_refused(&(struct oci_tar_plan_entry){.path = "file/", .type = '0'}, OCISYNC_EUSAGE,
                "if and only if it is a directory");
    add_refused(&(struct oci_tar_plan_entry){.path = "sock", .type = '8'}, OCISYNC_EUSAGE,
                "unknown type");
    add_refused(&(struct oci_tar_plan_entry){.path = "dev", .type = '3', .size = 5}, OCISYNC_EUSAGE,
                "has content");
    add_refused(&(struct oci_tar_plan_entry){.path = ".wh.x", .type = '0', .size = 1},
                OCISYNC_EUSAGE, "has content");
    add_refused(&(struct oci_tar_plan_entry){.path = "l", .type = '2'}, OCISYNC_EUSAGE,
                "without a target");
    add_refused(&(struct oci_tar_plan_entry){.path = "d", .type = '3', .devmajor = 1u << 21},
                OCISYNC_ETOOBIG, "device numbers");
    add_refused(
        &(struct oci_tar_plan_entry){.path = "x", .type = '0', .xattrs = &bad_name, .n_xattrs = 1},
        OCISYNC_EUSAGE, "holds '='");
    for (size_t i = 0; i < OCI_TAR_MAX_XATTRS + 1; i++)
        many[i] = (struct oci_tar_xattr){"user.x", (unsigned char *)"v", 1};
    add_refused(
        &(struct oci_tar_plan_entry){
            .path = "x", .type = '0', .xattrs = many, .n_xattrs = OCI_TAR_MAX_XATTRS + 1},
        OCISYNC_ETOOBIG, "too many xattrs");
    add_refused(
        &(struct oci_tar_plan_entry){.path = "x", .type = '0', .xattrs = many, .n_xattrs = 2},
        OCISYNC_EUSAGE, "one xattr twice");
    add_refused(
        &(struct oci_tar_plan_entry){.path = "x", .type = '0', .xattrs = &huge, .n_xattrs = 1},
        OCISYNC_ETOOBIG, "64 KiB");

    /* "a" and "a/" are one name. */
    memset(&plan, 0, sizeof(plan));
    add_ok(&plan, &(struct oci_tar_plan_entry){.path = "a", .type = '6'});
    add_ok(&plan, &(struct oci_tar_plan_entry){.path = "a-b", .type = '6'});
    add_ok(&plan, &(struct oci_tar_plan_entry){.path = "a/", .type = '5'});
    CHECK_INT(oci_tar_plan_seal(&plan, err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK(strstr(err, "is in the layer twice") != NULL);
    CHECK(plan.entries == NULL && plan.n_entries == 0);

    /* The biggest xattr set an entry may have still fits in its PAX header. */
    {
        struct oci_tar_xattr fit = {"user.big", big, sizeof(big) - 8};
        struct test_buf out;
        struct parsed p;

        memset(big, '\n', sizeof(big));
        memset(&plan, 0, sizeof(plan));
        add_ok(&plan, &(struct oci_tar_plan_entry){
                          .path = "x", .type = '6', .xattrs = &fit, .n_xattrs = 1});
        CHECK_INT(oci_tar_plan_seal(&plan, err, sizeof(err)), 0);
        CHECK_INT(stream_all(&plan, 512, &out), 0);
        CHECK_INT(parse(out.data, out.len, 0, &p), 0);
        CHECK(xattr_is(find(&p, "x"), "user.big", big, sizeof(big) - 8));
        parsed_free(&p);
        test_buf_free(&out);
        oci_tar_plan_free(&plan);
    }
}

/* GNU tar's own xattr records (from a real file with setxattr'ed attributes) read back. */
TEST(reads_gnu_tar_xattrs)
{
    char root[64], file[128], cmd[512];
    struct test_buf b;
    struct parsed p;
    FILE *f;

    temp_dir(root, sizeof(root));
    make_file(root, "f", "x", 1, 0644);
    snprintf(file, sizeof(file), "%s/f", root);
    if (setxattr(file, "user.odd", ODD_VALUE, sizeof(ODD_VALUE), 0) != 0) {
        rm_tree(root);
        SKIP("no user xattrs on /tmp");
    }
    snprintf(cmd, sizeof(cmd),
             "tar --xattrs --xattrs-include='user.*' --format=pax -cf '%s/x.tar' -C '%s' f", root,
             root);
    CHECK_INT(system(cmd), 0);
    snprintf(file, sizeof(file), "%s/x.tar", root);
    memset(&b, 0, sizeof(b));
    f = fopen(file, "rb");
    CHECK(f != NULL);
    if (f != NULL) {
        unsigned char tmp[4096];
        size_t n;

        while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
            test_buf_add(&b, tmp, n);
        fclose(f);
    }
    CHECK_INT(parse(b.data, b.len, 3, &p), 0);
    CHECK(xattr_is(find(&p, "f"), "user.odd", ODD_VALUE, sizeof(ODD_VALUE)));
    parsed_free(&p);
    test_buf_free(&b);
    rm_tree(root);
}

TEST_MAIN(T(roundtrip), T(plan_counts), T(deterministic), T(dest_placement),
          T(chown_and_pax_numbers), T(gnu_tar_reads_ours), T(reads_gnu_tar), T(reads_v7),
          T(refusals), T(links_as_they_are), T(chmod_modes), T(overlay_sources), T(filter_entries),
          T(unreadable), T(changed_while_streaming), T(reader_split_anywhere), T(reader_truncated),
          T(reader_bad_headers), T(reader_caps), T(reader_pax_records), T(reader_callback_abort),
          T(plan_special_entries), T(plan_add_refusals), T(reads_gnu_tar_xattrs))
