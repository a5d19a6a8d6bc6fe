/*
 * The image stack: layers made by ocisync's own tar writer from real temp
 * trees (whiteouts are files named ".wh.NAME" and ".wh..wh..opq" there),
 * stored plain, gzip and zstd, stacked and looked up; paths resolved
 * through absolute, relative and looping links; subtrees extracted into
 * real directories (contents, modes with setuid, mtimes, symlinks,
 * hardlinks). Then hostile layers made by hand: ".." paths, entries below
 * files and symlinks (a symlink out of the image, then a file through it),
 * hardlinks out of the image, truncated and corrupt compression, a wrong
 * diff_id, a decompression bomb, layers that change after they were added,
 * and a failed add that must leave the stack as it was.
 */
#include "oci/stack.h"
#include "oci/tar.h"
#include "ocisync.h"
#include "test.h"

#include <uv.h>
#include <zlib.h>
#include <zstd.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum kind { PLAIN, GZIP, ZSTD };

static char err[2048];

/* ---------------------------------------------------------------------------------------------
 * Helpers: temporary trees
 */

static void temp_dir(char *out, size_t len)
{
    snprintf(out, len, "/tmp/ocisync-stack-XXXXXX");
    CHECK(mkdtemp(out) != NULL);
}

static void rm_tree(const char *dir)
{
    char cmd[8300];

    snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", dir, dir);
    CHECK_INT(system(cmd), 0);
}

static void make_dir(const char *root, const char *rel, mode_t mode)
{
    char p[4200];

    snprintf(p, sizeof(p), "%s/%s", root, rel);
    CHECK_INT(mkdir(p, 0700), 0);
    CHECK_INT(chmod(p, mode), 0);
}

static void make_file(const char *root, const char *rel, const char *content, mode_t mode)
{
    char p[4200];
    size_t len = strlen(content);
    int fd;

    snprintf(p, sizeof(p), "%s/%s", root, rel);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK_INT(write(fd, content, len), (long long)len);
    close(fd);
    CHECK_INT(chmod(p, mode), 0);
}

static void make_symlink(const char *root, const char *rel, const char *target)
{
    char p[4200];

    snprintf(p, sizeof(p), "%s/%s", root, rel);
    CHECK_INT(symlink(target, p), 0);
}

static void make_hardlink(const char *root, const char *from, const char *to)
{
    char p[4200], q[4200];

    snprintf(p, sizeof(p), "%s/%s", root, from);
    snprintf(q, sizeof(q), "%s/%s", root, to);
    CHECK_INT(link(p, q), 0);
}

static void set_mtime(const char *root, const char *rel, int64_t t)
{
    char p[4200];
    struct timespec ts[2] = {{(time_t)t, 0}, {(time_t)t, 0}};

    snprintf(p, sizeof(p), "%s/%s", root, rel);
    CHECK_INT(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/* The names in dir, sorted and joined with spaces ("" when empty; "?" when dir is missing). */
static void list_dir(const char *dir, char *out, size_t len)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    size_t used = 0;

    out[0] = '\0';
    if (n < 0) {
        snprintf(out, len, "?");
        return;
    }
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0 && used < len)
            used +=
                (size_t)snprintf(out + used, len - used, "%s%s", used ? " " : "", names[i]->d_name);
        free(names[i]);
    }
    free(names);
}

/* The content of root/rel ("?" when it cannot be read). */
static const char *content_of(const char *root, const char *rel)
{
    static char buf[4096];
    char p[4200];
    ssize_t n;
    int fd;

    snprintf(p, sizeof(p), "%s/%s", root, rel);
    fd = open(p, O_RDONLY | O_NOFOLLOW);
    if (fd < 0)
        return "?";
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static struct stat stat_of(const char *root, const char *rel)
{
    char p[4200];
    struct stat st;

    memset(&st, 0, sizeof(st));
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    if (lstat(p, &st) != 0)
        memset(&st, 0, sizeof(st));
    return st;
}

static const char *link_of(const char *root, const char *rel)
{
    static char buf[4096];
    char p[4200];
    ssize_t n;

    snprintf(p, sizeof(p), "%s/%s", root, rel);
    n = readlink(p, buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    return n > 0 ? buf : "?";
}

/* A fresh empty directory root/name for an extraction. */
static const char *out_dir(const char *root, const char *name)
{
    static char p[4200];

    snprintf(p, sizeof(p), "%s/%s", root, name);
    CHECK_INT(mkdir(p, 0700), 0);
    return p;
}

/* ---------------------------------------------------------------------------------------------
 * Helpers: layers
 */

static void plan_of(const char *tree, struct oci_tar_plan *plan)
{
    struct oci_tar_source src = {.src = tree, .dest = "/"};

    CHECK_INT(oci_tar_plan_build(plan, &src, 1, NULL, err, sizeof(err)), 0);
}

/* The tar ocisync's writer makes of the tree. */
static void tar_of(const char *tree, struct test_buf *out)
{
    struct oci_tar_plan plan;
    struct oci_tar_stream s;
    char buf[65536];
    size_t n = 0;

    memset(out, 0, sizeof(*out));
    plan_of(tree, &plan);
    CHECK_INT(oci_tar_stream_init(&s, &plan), 0);
    while (oci_tar_stream_read(&s, buf, sizeof(buf), &n, err, sizeof(err)) == 0 && n > 0)
        test_buf_add(out, buf, n);
    oci_tar_stream_dispose(&s);
    oci_tar_plan_free(&plan);
}

static void gzip_of(const void *in, size_t len, struct test_buf *out)
{
    unsigned char buf[65536];
    z_stream z;

    memset(&z, 0, sizeof(z));
    CHECK_INT(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    do {
        z.next_out = buf;
        z.avail_out = sizeof(buf);
        CHECK(deflate(&z, Z_FINISH) != Z_STREAM_ERROR);
        test_buf_add(out, buf, sizeof(buf) - z.avail_out);
    } while (z.avail_out == 0);
    deflateEnd(&z);
}

static void write_all(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK_INT(write(fd, data, len), (long long)len);
    close(fd);
}

/* Writes tar to path as kind; *diff_id (unless NULL) gets the tar's sha256. */
static void write_blob(const char *path, const struct test_buf *tar, enum kind kind,
                       struct oci_digest *diff_id)
{
    struct test_buf blob = {0};

    if (diff_id != NULL)
        CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, tar->data, tar->len, diff_id), 0);
    if (kind == GZIP) {
        gzip_of(tar->data, tar->len, &blob);
    } else if (kind == ZSTD) {
        size_t cap = ZSTD_compressBound(tar->len), n;
        unsigned char *buf = malloc(cap);

        n = ZSTD_compress(buf, cap, tar->data, tar->len, 3);
        CHECK(!ZSTD_isError(n));
        test_buf_add(&blob, buf, n);
        free(buf);
    } else {
        test_buf_add(&blob, tar->data, tar->len);
    }
    write_all(path, blob.data, blob.len);
    test_buf_free(&blob);
}

/* The tree at tree as a layer file dir/name of kind, added to s with its diff_id checked. */
static int add_tree(struct oci_stack *s, const char *tree, const char *dir, const char *name,
                    enum kind kind)
{
    struct test_buf tar;
    struct oci_digest d;
    char path[4200];
    int rc;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    tar_of(tree, &tar);
    write_blob(path, &tar, kind, &d);
    test_buf_free(&tar);
    rc = oci_stack_add_blob(s, path, &d, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "add %s: %s\n", name, err);
    return rc;
}

/* One ustar header (and content) as other tools would write it, whatever it says. */
static void tar_add(struct test_buf *b, const char *name, char type, const char *link,
                    const char *data, unsigned mode)
{
    unsigned char h[512];
    size_t len = data != NULL ? strlen(data) : 0;
    unsigned sum = 0;
    static const unsigned char zeros[512];

    memset(h, 0, sizeof(h));
    CHECK(strlen(name) < 100 && strlen(link) < 100);
    memcpy(h, name, strlen(name));
    snprintf((char *)h + 100, 8, "%07o", mode);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    snprintf((char *)h + 124, 12, "%011o", (unsigned)len);
    snprintf((char *)h + 136, 12, "%011o", 1234567890u);
    memset(h + 148, ' ', 8);
    h[156] = (unsigned char)type;
    memcpy(h + 157, link, strlen(link));
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    for (size_t i = 0; i < sizeof(h); i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
    test_buf_add(b, h, sizeof(h));
    test_buf_add(b, data, len);
    if (len % 512 != 0)
        test_buf_add(b, zeros, 512 - len % 512);
}

static void tar_end(struct test_buf *b)
{
    static const unsigned char zeros[1024];

    test_buf_add(b, zeros, sizeof(zeros));
}

/* Adds the hand-made tar as a plain layer file dir/name, without a diff_id. */
static int add_tar(struct oci_stack *s, struct test_buf *tar, const char *dir, const char *name)
{
    char path[4200];
    int rc;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    write_all(path, tar->data, tar->len);
    test_buf_free(tar);
    err[0] = '\0';
    rc = oci_stack_add_blob(s, path, NULL, err, sizeof(err));
    return rc;
}

static bool has(const char *hay, const char *needle)
{
    if (strstr(hay, needle) != NULL)
        return true;
    fprintf(stderr, "\"%s\" does not say \"%s\"\n", hay, needle);
    return false;
}

/* ---------------------------------------------------------------------------------------------
 * A three-layer image, one layer of each kind
 */

/*
 * tmp/t1 (plain): etc/{passwd,motd,shadow}, bin/sh (setuid), usr/lib/libc.so,
 * var/{cache,log}/..., opt/old/x, data/file, lib -> usr/lib, hard1 and
 * sub/hard2 (one file).
 * tmp/t2 (gzip): etc again (0700: a directory over a directory), a new
 * etc/passwd, etc/.wh.motd, var/.wh..wh..opq with var/new, opt/old now a
 * file, .wh.data.
 * tmp/t3 (zstd): data/new (data back, without its old file), and links:
 * absolute, relative, looping, climbing out, dangling.
 */
static struct oci_stack *three_layers(const char *tmp)
{
    struct oci_stack *s = NULL;
    char t1[300], t2[300], t3[300];

    snprintf(t1, sizeof(t1), "%s/t1", tmp);
    snprintf(t2, sizeof(t2), "%s/t2", tmp);
    snprintf(t3, sizeof(t3), "%s/t3", tmp);
    CHECK_INT(mkdir(t1, 0755), 0);
    CHECK_INT(mkdir(t2, 0755), 0);
    CHECK_INT(mkdir(t3, 0755), 0);

    make_dir(t1, "etc", 0755);
    make_file(t1, "etc/passwd", "root\n", 0644);
    make_file(t1, "etc/motd", "hello\n", 0644);
    make_file(t1, "etc/shadow", "s\n", 0640);
    make_dir(t1, "bin", 0755);
    make_file(t1, "bin/sh", "#!sh\n", 04755);
    set_mtime(t1, "bin/sh", 1400000000);
    make_dir(t1, "usr", 0755);
    make_dir(t1, "usr/lib", 0751);
    make_file(t1, "usr/lib/libc.so", "libc\n", 0644);
    make_dir(t1, "var", 0755);
    make_dir(t1, "var/cache", 0755);
    make_file(t1, "var/cache/a", "a", 0644);
    make_file(t1, "var/cache/b", "b", 0644);
    make_dir(t1, "var/log", 0755);
    make_file(t1, "var/log/x", "x", 0644);
    make_dir(t1, "opt", 0755);
    make_dir(t1, "opt/old", 0755);
    make_file(t1, "opt/old/x", "x", 0644);
    make_dir(t1, "data", 0755);
    make_file(t1, "data/file", "d", 0644);
    make_symlink(t1, "lib", "usr/lib");
    set_mtime(t1, "lib", 1300000000);
    make_file(t1, "hard1", "same\n", 0644);
    make_dir(t1, "sub", 0755);
    make_hardlink(t1, "hard1", "sub/hard2");

    make_dir(t2, "etc", 0700);
    make_file(t2, "etc/passwd", "root\nuser\n", 0644);
    set_mtime(t2, "etc/passwd", 1600000000);
    make_file(t2, "etc/.wh.motd", "", 0644);
    set_mtime(t2, "etc", 1500000000);
    make_dir(t2, "var", 0755);
    make_file(t2, "var/.wh..wh..opq", "", 0644);
    make_file(t2, "var/new", "n", 0644);
    make_dir(t2, "opt", 0755);
    make_file(t2, "opt/old", "now a file", 0644);
    make_file(t2, ".wh.data", "", 0644);

    make_dir(t3, "data", 0755);
    make_file(t3, "data/new", "fresh", 0644);
    make_symlink(t3, "abs", "/usr/lib");
    make_dir(t3, "deep", 0755);
    make_symlink(t3, "deep/rel", "../usr/lib");
    make_symlink(t3, "loop1", "loop2");
    make_symlink(t3, "loop2", "loop1");
    make_symlink(t3, "up", "../../../../etc");
    make_symlink(t3, "self", ".");
    make_symlink(t3, "dangling", "nowhere");

    CHECK_INT(oci_stack_new(&s), 0);
    CHECK_INT(add_tree(s, t1, tmp, "l1.tar", PLAIN), 0);
    CHECK_INT(add_tree(s, t2, tmp, "l2.tar.gz", GZIP), 0);
    CHECK_INT(add_tree(s, t3, tmp, "l3.tar.zst", ZSTD), 0);
    return s;
}

/* ---------------------------------------------------------------------------------------------
 * Tests
 */

TEST(index_after_layers)
{
    char tmp[64];
    struct oci_stack *s;
    const struct oci_stack_node *n;

    temp_dir(tmp, sizeof(tmp));
    s = three_layers(tmp);

    /* A file replaced; a directory over a directory keeps what is in it. */
    n = oci_stack_lookup(s, "etc/passwd");
    CHECK(n != NULL && n->type == '0' && n->size == 10 && n->mode == 0644 &&
          n->mtime == 1600000000);
    CHECK(oci_stack_lookup(s, "/etc/passwd") == n);
    CHECK(oci_stack_lookup(s, "./etc//passwd") == n);
    CHECK(oci_stack_lookup(s, "etc/passwd/") == n);
    CHECK(oci_stack_lookup(s, "etc/../etc/passwd") == NULL);
    n = oci_stack_lookup(s, "etc");
    CHECK(n != NULL && n->type == '5' && n->mode == 0700 && n->mtime == 1500000000);
    CHECK(oci_stack_lookup(s, "etc/shadow") != NULL &&
          oci_stack_lookup(s, "etc/shadow")->mode == 0640);
    /* Whiteouts, and no trace of them. */
    CHECK(oci_stack_lookup(s, "etc/motd") == NULL);
    CHECK(oci_stack_lookup(s, "etc/.wh.motd") == NULL);
    CHECK(oci_stack_lookup(s, "var") != NULL);
    CHECK(oci_stack_lookup(s, "var/cache") == NULL);
    CHECK(oci_stack_lookup(s, "var/cache/a") == NULL);
    CHECK(oci_stack_lookup(s, "var/log/x") == NULL);
    CHECK(oci_stack_lookup(s, "var/.wh..wh..opq") == NULL);
    CHECK(oci_stack_lookup(s, "var/new") != NULL);
    CHECK(oci_stack_lookup(s, ".wh.data") == NULL);
    CHECK(oci_stack_lookup(s, "data/file") == NULL);
    n = oci_stack_lookup(s, "data/new");
    CHECK(n != NULL && n->size == 5);
    /* A directory replaced by a file. */
    n = oci_stack_lookup(s, "opt/old");
    CHECK(n != NULL && n->type == '0' && n->size == 10);
    CHECK(oci_stack_lookup(s, "opt/old/x") == NULL);
    /* Modes, links and hardlinks as stored. */
    n = oci_stack_lookup(s, "bin/sh");
    CHECK(n != NULL && n->mode == 04755 && n->mtime == 1400000000 && n->uid == 0);
    n = oci_stack_lookup(s, "lib");
    CHECK(n != NULL && n->type == '2');
    CHECK_STR(n != NULL ? n->linkname : NULL, "usr/lib");
    CHECK(oci_stack_lookup(s, "lib/libc.so") == NULL); /* not followed */
    n = oci_stack_lookup(s, "sub/hard2");
    CHECK(n != NULL && n->type == '1');
    CHECK_STR(n != NULL ? n->linkname : NULL, "hard1");
    CHECK(oci_stack_lookup(s, "hard1") != NULL && oci_stack_lookup(s, "hard1")->type == '0');
    /* The root. */
    n = oci_stack_lookup(s, "/");
    CHECK(n != NULL && n->type == '5' && n->mode == 0755 && n->uid == 0 && n->gid == 0);
    CHECK(oci_stack_lookup(s, "") == n);
    CHECK(oci_stack_lookup(s, "nothing") == NULL);
    oci_stack_free(s);
    rm_tree(tmp);
}

/* oci_stack_list: each name of a directory once, whiteouts gone; not a directory is ENOENT. */
static int collect(void *arg, const char *name, const struct oci_stack_node *n)
{
    char *buf = arg;

    (void)n;
    if (strlen(buf) + strlen(name) + 2 < 512)
        strcat(strcat(buf, name), " ");
    return strcmp(buf, "new ") == 0 ? 7 : 0; /* a callback's error stops the walk and comes back */
}

TEST(list_directories)
{
    char tmp[64], buf[512] = "";
    struct oci_stack *s;

    temp_dir(tmp, sizeof(tmp));
    s = three_layers(tmp);
    CHECK_INT(oci_stack_list(s, "var", collect, buf), 7);
    CHECK_STR(buf, "new "); /* the opaque directory kept only what its own layer added */
    buf[0] = '\0';
    CHECK_INT(oci_stack_list(s, "/etc", collect, buf), 0);
    CHECK(strstr(buf, "passwd ") != NULL && strstr(buf, "shadow ") != NULL);
    CHECK(strstr(buf, "motd") == NULL && strstr(buf, ".wh.") == NULL);
    CHECK_INT(oci_stack_list(s, "etc/passwd", collect, buf), UV_ENOENT);
    CHECK_INT(oci_stack_list(s, "lib", collect, buf), UV_ENOENT); /* a link is not followed */
    CHECK_INT(oci_stack_list(s, "nothing", collect, buf), UV_ENOENT);
    oci_stack_free(s);
    rm_tree(tmp);
}

/*
 * A whiteout applies to the layers below only, wherever it stands in its own
 * layer: the example of the image spec's layer.md, with the opaque marker
 * after the entries it must not remove, and a whiteout after a re-added file.
 */
TEST(same_layer_whiteouts)
{
    char tmp[64];
    struct oci_stack *s;
    struct test_buf t = {0};
    const struct oci_stack_node *n;

    temp_dir(tmp, sizeof(tmp));
    CHECK_INT(oci_stack_new(&s), 0);
    tar_add(&t, "a/", '5', "", NULL, 0755);
    tar_add(&t, "a/b/", '5', "", NULL, 0755);
    tar_add(&t, "a/b/c/", '5', "", NULL, 0755);
    tar_add(&t, "a/b/c/bar", '0', "", "bar", 0644);
    tar_add(&t, "x", '0', "", "old x", 0644);
    tar_add(&t, "y", '0', "", "old y", 0644);
    tar_add(&t, "z/", '5', "", NULL, 0755);
    tar_add(&t, "z/inside", '0', "", "i", 0644);
    tar_end(&t);
    CHECK_INT(add_tar(s, &t, tmp, "l1.tar"), 0);

    tar_add(&t, "a/", '5', "", NULL, 0755);
    tar_add(&t, "a/b/", '5', "", NULL, 0755);
    tar_add(&t, "a/b/c/", '5', "", NULL, 0755);
    tar_add(&t, "a/b/c/foo", '0', "", "foo", 0644);
    tar_add(&t, "a/.wh..wh..opq", '0', "", NULL, 0644);
    tar_add(&t, "x", '0', "", "new x", 0644);
    tar_add(&t, ".wh.x", '0', "", NULL, 0644);
    tar_add(&t, ".wh.y", '0', "", NULL, 0644);
    tar_add(&t, "z/later", '0', "", "l", 0644);
    tar_add(&t, ".wh.z", '0', "", NULL, 0644);
    tar_end(&t);
    CHECK_INT(add_tar(s, &t, tmp, "l2.tar"), 0);

    CHECK(oci_stack_lookup(s, "a/b/c/foo") != NULL);
    CHECK(oci_stack_lookup(s, "a/b/c/bar") == NULL);
    n = oci_stack_lookup(s, "x");
    CHECK(n != NULL && n->size == 5);
    CHECK(oci_stack_lookup(s, "y") == NULL);
    /* z: the lower one gone with what was in it; the one this layer implies is there. */
    CHECK(oci_stack_lookup(s, "z/inside") == NULL);
    n = oci_stack_lookup(s, "z");
    CHECK(n != NULL && n->type == '5' && n->mode == 0755 && n->mtime == 0);
    CHECK(oci_stack_lookup(s, "z/later") != NULL);
    {
        char out[300], names[256];

        snprintf(out, sizeof(out), "%s/out", tmp);
        CHECK_INT(mkdir(out, 0700), 0);
        CHECK_INT(oci_stack_extract(s, "/", out, err, sizeof(err)), 0);
        list_dir(out, names, sizeof(names));
        CHECK_STR(names, "a x z");
        CHECK_STR(content_of(out, "x"), "new x");
        CHECK_STR(content_of(out, "a/b/c/foo"), "foo");
    }
    oci_stack_free(s);
    rm_tree(tmp);
}

TEST(resolve_links)
{
    char tmp[64], out[OCI_TAR_PATH_MAX + 1];
    struct oci_stack *s;

    temp_dir(tmp, sizeof(tmp));
    s = three_layers(tmp);
#define RESOLVES(path, follow, want)                                                               \
    do {                                                                                           \
        CHECK_INT(oci_stack_resolve(s, path, follow, out, sizeof(out)), 0);                        \
        CHECK_STR(out, want);                                                                      \
    } while (0)
    RESOLVES("lib/libc.so", true, "usr/lib/libc.so");
    RESOLVES("/lib/libc.so", false, "usr/lib/libc.so");
    RESOLVES("abs/libc.so", true, "usr/lib/libc.so");
    RESOLVES("deep/rel/libc.so", true, "usr/lib/libc.so");
    RESOLVES("deep/rel", false, "deep/rel");
    RESOLVES("deep/rel", true, "usr/lib");
    RESOLVES("lib", false, "lib");
    RESOLVES("lib", true, "usr/lib");
    RESOLVES("lib/", false, "usr/lib"); /* a trailing "/" asks for the directory */
    RESOLVES("up/passwd", true, "etc/passwd");
    RESOLVES("self/self/etc/./passwd", true, "etc/passwd");
    RESOLVES("dangling", true, "nowhere");
    RESOLVES("dangling", false, "dangling");
    RESOLVES("missing/../etc", true, "etc");
    RESOLVES("../../..", true, "");
    RESOLVES("/", true, "");
    RESOLVES("", true, "");
    RESOLVES("loop1", false, "loop1");
#undef RESOLVES
    CHECK_INT(oci_stack_resolve(s, "loop1", true, out, sizeof(out)), UV_ELOOP);
    CHECK_INT(oci_stack_resolve(s, "loop2/x", false, out, sizeof(out)), UV_ELOOP);
    CHECK_INT(oci_stack_resolve(s, "lib/libc.so", true, out, 8), OCISYNC_ETOOBIG);
    oci_stack_free(s);
    rm_tree(tmp);
}

TEST(extract_subtrees)
{
    char tmp[64], names[512];
    const char *out;
    struct oci_stack *s;
    struct stat st;

    temp_dir(tmp, sizeof(tmp));
    s = three_layers(tmp);

    /* A directory: its contents into dir, its mode and mtime on dir. */
    out = out_dir(tmp, "etc");
    CHECK_INT(oci_stack_extract(s, "/etc", out, err, sizeof(err)), 0);
    list_dir(out, names, sizeof(names));
    CHECK_STR(names, "passwd shadow");
    CHECK_STR(content_of(out, "passwd"), "root\nuser\n");
    st = stat_of(out, "passwd");
    CHECK_INT(st.st_mtime, 1600000000);
    CHECK_INT(st.st_mode & 07777, 0644);
    CHECK_INT(stat_of(out, "shadow").st_mode & 07777, 0640);
    st = stat_of(out, "");
    CHECK_INT(st.st_mode & 07777, 0700);
    CHECK_INT(st.st_mtime, 1500000000);

    /* The whole image. */
    out = out_dir(tmp, "all");
    CHECK_INT(oci_stack_extract(s, "/", out, err, sizeof(err)), 0);
    list_dir(out, names, sizeof(names));
    CHECK_STR(names,
              "abs bin dangling data deep etc hard1 lib loop1 loop2 opt self sub up usr var");
    st = stat_of(out, "bin/sh");
    CHECK_INT(st.st_mode & 07777, 04755);
    CHECK_INT(st.st_mtime, 1400000000);
    CHECK_STR(content_of(out, "bin/sh"), "#!sh\n");
    CHECK(S_ISLNK(stat_of(out, "lib").st_mode));
    CHECK_STR(link_of(out, "lib"), "usr/lib");
    CHECK_INT(stat_of(out, "lib").st_mtime, 1300000000);
    CHECK_STR(link_of(out, "abs"), "/usr/lib");
    CHECK_STR(link_of(out, "up"), "../../../../etc");
    CHECK_STR(link_of(out, "loop1"), "loop2");
    CHECK_INT(stat_of(out, "usr/lib").st_mode & 07777, 0751);
    CHECK_INT(stat_of(out, "etc").st_mtime, 1500000000);
    {
        char p[4300];

        snprintf(p, sizeof(p), "%s/var", out);
        list_dir(p, names, sizeof(names));
        CHECK_STR(names, "new");
        snprintf(p, sizeof(p), "%s/data", out);
        list_dir(p, names, sizeof(names));
        CHECK_STR(names, "new");
        snprintf(p, sizeof(p), "%s/etc", out);
        list_dir(p, names, sizeof(names));
        CHECK_STR(names, "passwd shadow");
    }
    CHECK(S_ISREG(stat_of(out, "opt/old").st_mode));
    CHECK_STR(content_of(out, "opt/old"), "now a file");
    /* The hardlink is a link inside dir. */
    st = stat_of(out, "sub/hard2");
    CHECK(st.st_ino != 0 && st.st_ino == stat_of(out, "hard1").st_ino && st.st_nlink == 2);
    CHECK_STR(content_of(out, "sub/hard2"), "same\n");

    /* A file, through a link in its path: dir/NAME. */
    out = out_dir(tmp, "one");
    CHECK_INT(oci_stack_extract(s, "lib/libc.so", out, err, sizeof(err)), 0);
    list_dir(out, names, sizeof(names));
    CHECK_STR(names, "libc.so");
    CHECK_STR(content_of(out, "libc.so"), "libc\n");

    /* A link to a directory is followed, as COPY follows it. */
    out = out_dir(tmp, "lib");
    CHECK_INT(oci_stack_extract(s, "/abs/", out, err, sizeof(err)), 0);
    list_dir(out, names, sizeof(names));
    CHECK_STR(names, "libc.so");
    CHECK_INT(stat_of(out, "").st_mode & 07777, 0751);

    /* A hardlink alone: its content, under its own name. */
    out = out_dir(tmp, "hard");
    CHECK_INT(oci_stack_extract(s, "sub/hard2", out, err, sizeof(err)), 0);
    CHECK_STR(content_of(out, "hard2"), "same\n");
    CHECK_INT(stat_of(out, "hard2").st_nlink, 1);
    oci_stack_free(s);
    rm_tree(tmp);
}

/*
 * Hardlinks keep the content they had: a later layer replacing the file they
 * link to gives that path a new file, not them (as overlay file systems do).
 * A target outside what is extracted is copied.
 */
TEST(extract_hardlinks)
{
    char tmp[64], t1[128], t2[128];
    const char *out;
    struct oci_stack *s;
    struct stat st;

    temp_dir(tmp, sizeof(tmp));
    snprintf(t1, sizeof(t1), "%s/t1", tmp);
    snprintf(t2, sizeof(t2), "%s/t2", tmp);
    CHECK_INT(mkdir(t1, 0755), 0);
    CHECK_INT(mkdir(t2, 0755), 0);
    make_dir(t1, "h", 0755);
    make_file(t1, "h/a", "content A", 0640);
    make_hardlink(t1, "h/a", "h/b");
    make_dir(t1, "x", 0755);
    make_hardlink(t1, "h/a", "x/c");
    make_dir(t2, "h", 0755);
    make_file(t2, "h/a", "new A", 0600);

    CHECK_INT(oci_stack_new(&s), 0);
    CHECK_INT(add_tree(s, t1, tmp, "l1.tar", PLAIN), 0);
    CHECK_INT(add_tree(s, t2, tmp, "l2.tar", GZIP), 0);
    CHECK(oci_stack_lookup(s, "x/c") != NULL && oci_stack_lookup(s, "x/c")->type == '1');

    out = out_dir(tmp, "all");
    CHECK_INT(oci_stack_extract(s, "/", out, err, sizeof(err)), 0);
    CHECK_STR(content_of(out, "h/a"), "new A");
    CHECK_INT(stat_of(out, "h/a").st_nlink, 1);
    CHECK_INT(stat_of(out, "h/a").st_mode & 07777, 0600);
    st = stat_of(out, "h/b");
    CHECK(st.st_ino == stat_of(out, "x/c").st_ino && st.st_nlink == 2);
    CHECK_INT(st.st_mode & 07777, 0640);
    CHECK_STR(content_of(out, "h/b"), "content A");

    out = out_dir(tmp, "x");
    CHECK_INT(oci_stack_extract(s, "/x", out, err, sizeof(err)), 0);
    CHECK_STR(content_of(out, "c"), "content A");
    CHECK_INT(stat_of(out, "c").st_nlink, 1);

    out = out_dir(tmp, "h");
    CHECK_INT(oci_stack_extract(s, "h", out, err, sizeof(err)), 0);
    CHECK_STR(content_of(out, "a"), "new A");
    CHECK_STR(content_of(out, "b"), "content A");
    oci_stack_free(s);

    /* A hardlink to a symbolic link is one; to something missing or a directory, refused. */
    {
        struct test_buf t = {0};
        const struct oci_stack_node *n;

        CHECK_INT(oci_stack_new(&s), 0);
        tar_add(&t, "s", '2', "", NULL, 0777);
        tar_add(&t, "d/", '5', "", NULL, 0755);
        tar_end(&t);
        /* An empty symlink target is malformed: the first try fails, the stack stays empty. */
        CHECK_INT(add_tar(s, &t, tmp, "bad.tar"), UV_EINVAL);
        CHECK(has(err, "is a symbolic link to nothing"));
        tar_add(&t, "s", '2', "target", NULL, 0777);
        tar_add(&t, "hs", '1', "s", NULL, 0777);
        tar_add(&t, "d/", '5', "", NULL, 0755);
        tar_end(&t);
        CHECK_INT(add_tar(s, &t, tmp, "links.tar"), 0);
        n = oci_stack_lookup(s, "hs");
        CHECK(n != NULL && n->type == '2');
        CHECK_STR(n != NULL ? n->linkname : NULL, "target");
        tar_add(&t, "hd", '1', "d", NULL, 0755);
        tar_end(&t);
        CHECK_INT(add_tar(s, &t, tmp, "hd.tar"), UV_EINVAL);
        CHECK(has(err, "layer 2 (") && has(err, "entry \"hd\" is a hardlink to \"d\", which is a "
                                                "directory"));
        tar_add(&t, "hm", '1', "missing", NULL, 0755);
        tar_end(&t);
        CHECK_INT(add_tar(s, &t, tmp, "hm.tar"), UV_EINVAL);
        CHECK(has(err, "\"hm\" is a hardlink to \"missing\", which is not in the image"));
        oci_stack_free(s);
    }
    rm_tree(tmp);
}

/*
 * A symbolic link out of the image, then a file through it in the next layer:
 * refused when added; and whatever the layers hold, extraction writes inside
 * dir only, links never followed.
 */
TEST(extract_never_escapes)
{
    char tmp[64], outside[128], link[256], names[256];
    const char *out;
    struct oci_stack *s;
    struct test_buf t = {0};

    temp_dir(tmp, sizeof(tmp));
    snprintf(outside, sizeof(outside), "%s/outside", tmp);
    CHECK_INT(mkdir(outside, 0755), 0);
    CHECK_INT(oci_stack_new(&s), 0);
    tar_add(&t, "x", '2', outside, NULL, 0777);
    snprintf(link, sizeof(link), "../../../../../../..%s", outside);
    tar_add(&t, "y", '2', link, NULL, 0777);
    tar_add(&t, "etc/", '5', "", NULL, 0755);
    tar_end(&t);
    CHECK_INT(add_tar(s, &t, tmp, "l1.tar"), 0);

    tar_add(&t, "x/passwd", '0', "", "pwned", 0644);
    tar_end(&t);
    CHECK_INT(add_tar(s, &t, tmp, "l2.tar"), UV_EINVAL);
    CHECK(has(err, "layer 2 (") && has(err, "l2.tar): entry \"x/passwd\" is below \"x\", which "
                                            "is a symbolic link, not a directory"));
    tar_add(&t, "etc/", '5', "", NULL, 0755);
    tar_add(&t, "y/evil", '0', "", "pwned", 0644);
    tar_end(&t);
    CHECK_INT(add_tar(s, &t, tmp, "l2b.tar"), UV_EINVAL);
    CHECK(has(err, "entry \"y/evil\" is below \"y\""));
    CHECK(oci_stack_lookup(s, "x") != NULL && oci_stack_lookup(s, "x")->type == '2');
    CHECK(oci_stack_lookup(s, "x/passwd") == NULL);

    /* Replaced by a directory, x is one: what goes into it lands in dir/x. */
    tar_add(&t, "x/", '5', "", NULL, 0755);
    tar_add(&t, "x/passwd", '0', "", "safe", 0644);
    tar_add(&t, "z", '1', "x/passwd", NULL, 0644);
    tar_end(&t);
    CHECK_INT(add_tar(s, &t, tmp, "l3.tar"), 0);
    out = out_dir(tmp, "all");
    CHECK_INT(oci_stack_extract(s, "/", out, err, sizeof(err)), 0);
    CHECK(S_ISDIR(stat_of(out, "x").st_mode));
    CHECK_STR(content_of(out, "x/passwd"), "safe");
    CHECK_STR(content_of(out, "z"), "safe");
    CHECK_STR(link_of(out, "y"), link);
    list_dir(outside, names, sizeof(names));
    CHECK_STR(names, "");

    /* A link out of the image resolves inside it: y's target is not in the image. */
    out = out_dir(tmp, "y");
    CHECK_INT(oci_stack_extract(s, "y/", out, err, sizeof(err)), UV_ENOENT);
    CHECK(has(err, "\"y/\" is not in the image"));

    /*
     * The layer file swapped after it was added, for one where x is a link
     * out again and x/passwd is written through it: the index says where
     * things go, so x/passwd still lands in dir/x, and the change is found.
     */
    tar_add(&t, "x", '2', outside, NULL, 0777);
    tar_add(&t, "x/passwd", '0', "", "evil", 0644);
    tar_add(&t, "z", '1', "x/passwd", NULL, 0644);
    tar_end(&t);
    {
        char path[300];

        snprintf(path, sizeof(path), "%s/l3.tar", tmp);
        write_all(path, t.data, t.len);
        test_buf_free(&t);
    }
    out = out_dir(tmp, "swapped");
    CHECK_INT(oci_stack_extract(s, "/", out, err, sizeof(err)), OCISYNC_EDIGESTMISMATCH);
    CHECK(has(err, "layer 2 (") && has(err, "l3.tar): changed since it was added"));
    CHECK(S_ISDIR(stat_of(out, "x").st_mode));
    list_dir(outside, names, sizeof(names));
    CHECK_STR(names, "");
    oci_stack_free(s);
    rm_tree(tmp);
}

/* Entries no image may hold, each refused naming the layer and the entry. */
TEST(hostile_entries)
{
    static const struct {
        const char *name;
        char type;
        const char *link;
        const char *says;
    } bad[] = {
        {"../evil", '0', "", "entry \"../evil\" has a \"..\" component"},
        {"a/../../b", '0', "", "entry \"a/../../b\" has a \"..\" component"},
        {"h", '1', "../../etc/passwd", "entry \"h\" is a hardlink to a path out of the image"},
        {"h", '1', "/", "entry \"h\" is a hardlink to a path out of the image, or to its root"},
        {".wh.", '0', "", "entry \".wh.\" is a whiteout of nothing"},
        {"a/.wh..", '0', "", "entry \"a/.wh..\" is a whiteout of nothing"},
        {"a/.wh.b/c", '0', "", "entry \"a/.wh.b/c\" is below a whiteout"},
        {"./", '0', "", "entry \".\" is the root, as something else than a directory"},
        {"sparse", 'S', "", "entry \"sparse\" has tar type 'S', which no image layer holds"},
    };
    char tmp[64];
    struct oci_stack *s;
    struct test_buf t = {0};
    const struct oci_stack_node *n;

    temp_dir(tmp, sizeof(tmp));
    CHECK_INT(oci_stack_new(&s), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tar_add(&t, "fine", '0', "", "ok", 0644);
        tar_add(&t, bad[i].name, bad[i].type, bad[i].link, NULL, 0644);
        tar_end(&t);
        CHECK_INT(add_tar(s, &t, tmp, "bad.tar"), UV_EINVAL);
        CHECK(has(err, "layer 1 (") && has(err, bad[i].says));
        CHECK(oci_stack_lookup(s, "fine") == NULL);
    }
    /* An entry below a file. */
    tar_add(&t, "f", '0', "", "f", 0644);
    tar_add(&t, "f/x", '0', "", "x", 0644);
    tar_end(&t);
    CHECK_INT(add_tar(s, &t, tmp, "bad.tar"), UV_EINVAL);
    CHECK(has(err, "entry \"f/x\" is below \"f\", which is a file, not a directory"));

    /* What is odd but harmless: absolute paths, the root itself, devices, aufs's files. */
    tar_add(&t, "./", '5', "", NULL, 0750);
    tar_add(&t, "/abs/file", '0', "", "abs", 0644);
    tar_add(&t, "dev/null", '3', "", NULL, 0666);
    tar_add(&t, "dev/fifo", '6', "", NULL, 0644);
    tar_add(&t, ".wh..wh.plnk/", '5', "", NULL, 0700);
    tar_add(&t, ".wh..wh.plnk/123.4", '0', "", "aufs", 0644);
    tar_add(&t, ".wh..wh.aufs", '0', "", NULL, 0644);
    tar_end(&t);
    CHECK_INT(add_tar(s, &t, tmp, "odd.tar"), 0);
    CHECK(oci_stack_lookup(s, "/")->mode == 0750);
    n = oci_stack_lookup(s, "abs");
    CHECK(n != NULL && n->type == '5' && n->mode == 0755);
    CHECK(oci_stack_lookup(s, "abs/file") != NULL);
    CHECK(oci_stack_lookup(s, "dev/null") != NULL && oci_stack_lookup(s, "dev/null")->type == '3');
    CHECK(oci_stack_lookup(s, ".wh..wh.plnk") == NULL);
    CHECK(oci_stack_lookup(s, ".wh..wh.plnk/123.4") == NULL);
    {
        char names[256], p[300];
        const char *out = out_dir(tmp, "odd");

        CHECK_INT(oci_stack_extract(s, "/", out, err, sizeof(err)), 0);
        list_dir(out, names, sizeof(names));
        CHECK_STR(names, "abs dev");
        snprintf(p, sizeof(p), "%s/dev", out);
        list_dir(p, names, sizeof(names));
        CHECK_STR(names, "");
        CHECK_INT(stat_of(out, "").st_mode & 07777, 0750);
        /* A device as src: nothing to write. */
        out = out_dir(tmp, "null");
        CHECK_INT(oci_stack_extract(s, "/dev/null", out, err, sizeof(err)), 0);
        list_dir(out, names, sizeof(names));
        CHECK_STR(names, "");
    }
    oci_stack_free(s);
    rm_tree(tmp);
}

/* A layer refused halfway (after whiteouts and entries were applied) leaves nothing of itself. */
TEST(add_is_atomic)
{
    char tmp[64], names[256];
    const char *out;
    struct oci_stack *s;
    struct test_buf t = {0};

    temp_dir(tmp, sizeof(tmp));
    CHECK_INT(oci_stack_new(&s), 0);
    tar_add(&t, "keep/", '5', "", NULL, 0755);
    tar_add(&t, "keep/a", '0', "", "A", 0644);
    tar_add(&t, "gone/", '5', "", NULL, 0755);
    tar_add(&t, "gone/b", '0', "", "B", 0644);
    tar_add(&t, "dir/", '5', "", NULL, 0750);
    tar_add(&t, "dir/x", '0', "", "X", 0644);
    tar_end(&t);
    CHECK_INT(add_tar(s, &t, tmp, "l1.tar"), 0);

    for (int round = 0; round < 2; round++) {
        tar_add(&t, ".wh.gone", '0', "", NULL, 0644);
        tar_add(&t, "keep/.wh..wh..opq", '0', "", NULL, 0644);
        tar_add(&t, "keep/", '5', "", NULL, 0700);
        tar_add(&t, "new", '0', "", "new", 0644);
        tar_add(&t, "dir", '0', "", "a file now", 0644);
        tar_add(&t, "new2/sub/f", '0', "", "f", 0644);
        tar_add(&t, "f", '0', "", "f", 0644);
        tar_add(&t, "f/x", '0', "", "x", 0644);
        tar_end(&t);
        CHECK_INT(add_tar(s, &t, tmp, "l2.tar"), UV_EINVAL);
        CHECK(has(err, "layer 2 ("));
        CHECK(oci_stack_lookup(s, "keep/a") != NULL);
        CHECK(oci_stack_lookup(s, "keep")->mode == 0755);
        CHECK(oci_stack_lookup(s, "gone/b") != NULL);
        CHECK(oci_stack_lookup(s, "dir") != NULL && oci_stack_lookup(s, "dir")->type == '5');
        CHECK(oci_stack_lookup(s, "dir/x") != NULL);
        CHECK(oci_stack_lookup(s, "new") == NULL);
        CHECK(oci_stack_lookup(s, "new2") == NULL);
        CHECK(oci_stack_lookup(s, "f") == NULL);
    }
    out = out_dir(tmp, "all");
    CHECK_INT(oci_stack_extract(s, "/", out, err, sizeof(err)), 0);
    list_dir(out, names, sizeof(names));
    CHECK_STR(names, "dir gone keep");
    CHECK_STR(content_of(out, "dir/x"), "X");

    /* The same layer without its last entry goes in, as layer 2. */
    tar_add(&t, ".wh.gone", '0', "", NULL, 0644);
    tar_add(&t, "keep/.wh..wh..opq", '0', "", NULL, 0644);
    tar_add(&t, "dir", '0', "", "a file now", 0644);
    tar_end(&t);
    CHECK_INT(add_tar(s, &t, tmp, "l2.tar"), 0);
    CHECK(oci_stack_lookup(s, "gone") == NULL);
    CHECK(oci_stack_lookup(s, "keep") != NULL && oci_stack_lookup(s, "keep/a") == NULL);
    CHECK(oci_stack_lookup(s, "dir")->type == '0');
    tar_add(&t, "../x", '0', "", NULL, 0644);
    tar_end(&t);
    CHECK_INT(add_tar(s, &t, tmp, "l3.tar"), UV_EINVAL);
    CHECK(has(err, "layer 3 ("));
    oci_stack_free(s);
    rm_tree(tmp);
}

/*
 * Thousands of paths (the map grows), then a layer that removes and adds
 * thousands more before it is refused: all of it undone, the map still
 * finding everything.
 */
TEST(many_entries)
{
    char tmp[64], name[64];
    struct oci_stack *s;
    struct test_buf t = {0};
    int missing = 0, found = 0;

    temp_dir(tmp, sizeof(tmp));
    CHECK_INT(oci_stack_new(&s), 0);
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof(name), "d%d/f%d", i % 30, i);
        tar_add(&t, name, '0', "", "x", 0644);
    }
    tar_end(&t);
    CHECK_INT(add_tar(s, &t, tmp, "l1.tar"), 0);
    for (int i = 0; i < 15; i++) {
        snprintf(name, sizeof(name), ".wh.d%d", i);
        tar_add(&t, name, '0', "", NULL, 0644);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "n%d/f%d", i % 50, i);
        tar_add(&t, name, '0', "", "y", 0644);
    }
    tar_add(&t, "n1/f1/below", '0', "", "z", 0644);
    tar_end(&t);
    CHECK_INT(add_tar(s, &t, tmp, "l2.tar"), UV_EINVAL);
    CHECK(has(err, "entry \"n1/f1/below\" is below \"n1/f1\", which is a file"));
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof(name), "/d%d/f%d", i % 30, i);
        missing += oci_stack_lookup(s, name) == NULL;
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "n%d/f%d", i % 50, i);
        found += oci_stack_lookup(s, name) != NULL;
    }
    CHECK_INT(missing, 0);
    CHECK_INT(found, 0);
    CHECK(oci_stack_lookup(s, "n1") == NULL);

    /* Without its last entry the layer goes in. */
    for (int i = 0; i < 15; i++) {
        snprintf(name, sizeof(name), ".wh.d%d", i);
        tar_add(&t, name, '0', "", NULL, 0644);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "n%d/f%d", i % 50, i);
        tar_add(&t, name, '0', "", "y", 0644);
    }
    tar_end(&t);
    CHECK_INT(add_tar(s, &t, tmp, "l2.tar"), 0);
    missing = found = 0;
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof(name), "d%d/f%d", i % 30, i);
        if (i % 30 < 15)
            found += oci_stack_lookup(s, name) != NULL;
        else
            missing += oci_stack_lookup(s, name) == NULL;
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "n%d/f%d", i % 50, i);
        missing += oci_stack_lookup(s, name) == NULL;
    }
    CHECK_INT(missing, 0);
    CHECK_INT(found, 0);
    oci_stack_free(s);
    rm_tree(tmp);
}

/* Plain, gzip and zstd layers, told by their first bytes; each checked against its diff_id. */
TEST(formats_and_diff_ids)
{
    char tmp[64], tree[128], path[256], want[1024];
    struct oci_stack *s;
    struct test_buf tar, blob = {0};
    struct oci_digest d, other;

    temp_dir(tmp, sizeof(tmp));
    snprintf(tree, sizeof(tree), "%s/tree", tmp);
    CHECK_INT(mkdir(tree, 0755), 0);
    make_file(tree, "f", "content of f, long enough to compress into something\n", 0644);
    make_dir(tree, "d", 0755);
    tar_of(tree, &tar);
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, "other", 5, &other), 0);

    CHECK_INT(oci_stack_new(&s), 0);
    for (int k = PLAIN; k <= ZSTD; k++) {
        snprintf(path, sizeof(path), "%s/layer%d", tmp, k);
        write_blob(path, &tar, (enum kind)k, &d);
        CHECK_INT(oci_stack_add_blob(s, path, &other, err, sizeof(err)), OCISYNC_EDIGESTMISMATCH);
        snprintf(want, sizeof(want),
                 "layer %d (%s) decompresses to %s, but the config's diff_id is %s", k + 1, path,
                 d.str, other.str);
        CHECK_STR(err, want);
        CHECK_INT(oci_stack_add_blob(s, path, &d, err, sizeof(err)), 0);
        CHECK(oci_stack_lookup(s, "f") != NULL && oci_stack_lookup(s, "f")->size == 53);
    }
    {
        const char *out = out_dir(tmp, "out");
        CHECK_INT(oci_stack_extract(s, "f", out, err, sizeof(err)), 0);
        CHECK_STR(content_of(out, "f"), "content of f, long enough to compress into something\n");
    }
    oci_stack_free(s);

    /* Truncated or corrupt compression, a truncated tar, a missing file. */
    CHECK_INT(oci_stack_new(&s), 0);
    gzip_of(tar.data, tar.len, &blob);
    snprintf(path, sizeof(path), "%s/cut.gz", tmp);
    write_all(path, blob.data, blob.len / 2);
    CHECK_INT(oci_stack_add_blob(s, path, NULL, err, sizeof(err)), OCISYNC_EDIGESTMISMATCH);
    snprintf(want, sizeof(want), "layer 1 (%s) ends early (gzip)", path);
    CHECK_STR(err, want);
    blob.data[blob.len - 8] ^= 0x55; /* the CRC-32 in the trailer */
    write_all(path, blob.data, blob.len);
    CHECK_INT(oci_stack_add_blob(s, path, NULL, err, sizeof(err)), OCISYNC_EDIGESTMISMATCH);
    snprintf(want, sizeof(want), "layer 1 (%s) does not decompress (gzip: ", path);
    CHECK(has(err, want));
    snprintf(path, sizeof(path), "%s/layer2", tmp);
    {
        struct stat st;
        CHECK_INT(stat(path, &st), 0);
        CHECK_INT(truncate(path, st.st_size - 10), 0);
    }
    CHECK_INT(oci_stack_add_blob(s, path, NULL, err, sizeof(err)), OCISYNC_EDIGESTMISMATCH);
    snprintf(want, sizeof(want), "layer 1 (%s) ends early (zstd)", path);
    CHECK_STR(err, want);
    snprintf(path, sizeof(path), "%s/cut.tar", tmp);
    write_all(path, tar.data, 700);
    CHECK_INT(oci_stack_add_blob(s, path, NULL, err, sizeof(err)), UV_EINVAL);
    snprintf(want, sizeof(want), "layer 1 (%s): tar archive is truncated", path);
    CHECK(has(err, want));
    snprintf(path, sizeof(path), "%s/missing", tmp);
    CHECK_INT(oci_stack_add_blob(s, path, NULL, err, sizeof(err)), UV_ENOENT);
    snprintf(want, sizeof(want), "layer 1 (%s): cannot read it: ", path);
    CHECK(has(err, want));
    CHECK(oci_stack_lookup(s, "f") == NULL);
    oci_stack_free(s);
    test_buf_free(&blob);
    test_buf_free(&tar);
    rm_tree(tmp);
}

/* 260 MiB of zeros in a gzip of about a megabyte: over the cap, refused without writing it. */
TEST(decompression_bomb)
{
    static unsigned char zeros[1 << 20];
    unsigned char buf[65536];
    char tmp[64], path[256];
    struct oci_stack *s;
    z_stream z;
    int fd;

    temp_dir(tmp, sizeof(tmp));
    snprintf(path, sizeof(path), "%s/bomb.gz", tmp);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    memset(&z, 0, sizeof(z));
    CHECK_INT(deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
    for (int i = 0; i < 260; i++) {
        z.next_in = zeros;
        z.avail_in = sizeof(zeros);
        do {
            z.next_out = buf;
            z.avail_out = sizeof(buf);
            deflate(&z, i == 259 ? Z_FINISH : Z_NO_FLUSH);
            CHECK(write(fd, buf, sizeof(buf) - z.avail_out) >= 0);
        } while (z.avail_out == 0);
    }
    deflateEnd(&z);
    close(fd);

    CHECK_INT(oci_stack_new(&s), 0);
    CHECK_INT(oci_stack_add_blob(s, path, NULL, err, sizeof(err)), OCISYNC_ETOOBIG);
    CHECK(has(err, "layer 1 (") && has(err, "refused as a decompression bomb"));
    oci_stack_free(s);
    rm_tree(tmp);
}

/* A build's own layer as a plan, over a blob; read again (and checked) when extracted. */
TEST(plans)
{
    char tmp[64], t1[128], ctx[128];
    const char *out;
    struct oci_stack *s;
    struct oci_tar_plan plan;
    const struct oci_stack_node *n;

    temp_dir(tmp, sizeof(tmp));
    snprintf(t1, sizeof(t1), "%s/t1", tmp);
    snprintf(ctx, sizeof(ctx), "%s/ctx", tmp);
    CHECK_INT(mkdir(t1, 0755), 0);
    CHECK_INT(mkdir(ctx, 0755), 0);
    make_dir(t1, "app", 0755);
    make_file(t1, "app/old.conf", "old", 0644);
    make_file(t1, "app/keep", "keep", 0644);
    make_dir(ctx, "app", 0755);
    make_file(ctx, "app/.wh.old.conf", "", 0644);
    make_file(ctx, "app/main", "main v1", 0755);
    make_symlink(ctx, "app/current", "main");

    CHECK_INT(oci_stack_new(&s), 0);
    CHECK_INT(add_tree(s, t1, tmp, "l1.tar.gz", GZIP), 0);
    plan_of(ctx, &plan);
    CHECK_INT(oci_stack_add_plan(s, &plan, err, sizeof(err)), 0);
    n = oci_stack_lookup(s, "app/main");
    CHECK(n != NULL && n->type == '0' && n->size == 7 && n->mode == 0755);
    CHECK(oci_stack_lookup(s, "app/old.conf") == NULL);
    CHECK(oci_stack_lookup(s, "app/keep") != NULL);

    out = out_dir(tmp, "app");
    CHECK_INT(oci_stack_extract(s, "app", out, err, sizeof(err)), 0);
    {
        char names[256];
        list_dir(out, names, sizeof(names));
        CHECK_STR(names, "current keep main");
    }
    CHECK_STR(content_of(out, "main"), "main v1");
    CHECK_STR(content_of(out, "keep"), "keep");
    CHECK_STR(link_of(out, "current"), "main");

    /* The same size, other bytes: found by the tar's hash. */
    make_file(ctx, "app/main", "main v2", 0755);
    out = out_dir(tmp, "v2");
    CHECK_INT(oci_stack_extract(s, "app/current", out, err, sizeof(err)), OCISYNC_EDIGESTMISMATCH);
    CHECK(has(err, "layer 2 (a tar plan): changed since it was added"));
    /* Another size: the stream says so. */
    make_file(ctx, "app/main", "main, version 3", 0755);
    out = out_dir(tmp, "v3");
    CHECK_INT(oci_stack_extract(s, "app/main", out, err, sizeof(err)), OCISYNC_ESIZEMISMATCH);
    CHECK(has(err, "layer 2 (a tar plan): ") &&
          has(err, "changed while the layer was being built"));
    /* A layer with nothing under src is not read again. */
    out = out_dir(tmp, "keep");
    CHECK_INT(oci_stack_extract(s, "app/keep", out, err, sizeof(err)), 0);
    CHECK_STR(content_of(out, "keep"), "keep");
    oci_stack_free(s);
    oci_tar_plan_free(&plan);
    rm_tree(tmp);
}

TEST(extract_refusals)
{
    char tmp[64];
    const char *out;
    struct oci_stack *s;

    temp_dir(tmp, sizeof(tmp));
    s = three_layers(tmp);
    out = out_dir(tmp, "o");
    CHECK_INT(oci_stack_extract(s, "/nothere", out, err, sizeof(err)), UV_ENOENT);
    CHECK_STR(err, "\"/nothere\" is not in the image");
    CHECK_INT(oci_stack_extract(s, "etc/motd", out, err, sizeof(err)), UV_ENOENT);
    CHECK_INT(oci_stack_extract(s, "loop1", out, err, sizeof(err)), UV_ELOOP);
    CHECK_STR(err, "cannot resolve \"loop1\" in the image: too many levels of symbolic links");
    make_file(out, "already", "x", 0644);
    CHECK_INT(oci_stack_extract(s, "etc", out, err, sizeof(err)), UV_ENOTEMPTY);
    CHECK(has(err, "it is not empty"));
    oci_stack_free(s);
    rm_tree(tmp);
}

TEST(layer_cap)
{
    char tmp[64], path[128];
    struct oci_stack *s;
    struct test_buf t = {0};

    temp_dir(tmp, sizeof(tmp));
    snprintf(path, sizeof(path), "%s/l.tar", tmp);
    tar_add(&t, "f", '0', "", "f", 0644);
    tar_end(&t);
    write_all(path, t.data, t.len);
    test_buf_free(&t);
    CHECK_INT(oci_stack_new(&s), 0);
    for (int i = 0; i < OCI_STACK_MAX_LAYERS; i++)
        CHECK_INT(oci_stack_add_blob(s, path, NULL, err, sizeof(err)), 0);
    CHECK_INT(oci_stack_add_blob(s, path, NULL, err, sizeof(err)), OCISYNC_ETOOBIG);
    CHECK(has(err, "layer 257 (") && has(err, "a stage has at most 256 layers"));
    oci_stack_free(s);
    rm_tree(tmp);
}

TEST_MAIN(T(index_after_layers), T(list_directories), T(same_layer_whiteouts), T(resolve_links),
          T(extract_subtrees), T(extract_hardlinks), T(extract_never_escapes), T(hostile_entries),
          T(add_is_atomic), T(many_entries), T(formats_and_diff_ids), T(decompression_bomb),
          T(plans), T(extract_refusals), T(layer_cap))
