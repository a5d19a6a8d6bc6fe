/*
 * oci_overlay_flatten: layer directories in overlay form (as root makes
 * them: whiteouts are character devices 0/0, opaque directories carry
 * trusted.overlay.opaque) stacked into one tree. Needs root (mknod 0/0,
 * trusted.* xattrs, chown); skipped otherwise.
 */
#define _GNU_SOURCE
#include "oci/overlay.h"
#include "oci/archive.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

static char tmp[256];

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        abort();
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n;
    if (f == NULL)
        return NULL;
    n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void p(char *out, size_t len, const char *rel)
{
    snprintf(out, len, "%s/%s", tmp, rel);
}

static void mk(const char *rel)
{
    char path[512];
    p(path, sizeof(path), rel);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        abort();
}

static void file(const char *rel, const char *text)
{
    char path[512];
    p(path, sizeof(path), rel);
    put(path, text);
}

TEST(stacks_whiteouts_opaque_links)
{
    char a[512], b[512], c[512], path[512], buf[256];
    const char *layers[3];
    struct stat st, st2;
    char err[512] = "";

    if (geteuid() != 0)
        SKIP("needs root: mknod 0/0, trusted.* xattrs, chown");
    snprintf(tmp, sizeof(tmp), "/tmp/ocisync-flatten-XXXXXX");
    CHECK(mkdtemp(tmp) != NULL);
    /* Layer a (bottom): files, a directory with content, a link pointing out of the tree. */
    mk("a");
    mk("a/etc");
    file("a/etc/os", "base\n");
    file("a/etc/gone", "gone\n");
    mk("a/srv");
    mk("a/srv/old");
    file("a/srv/old/deep", "old\n");
    file("a/keep", "keep\n");
    p(path, sizeof(path), "a/esc");
    CHECK(symlink(tmp, path) == 0); /* a symlink to the outside */
    p(path, sizeof(path), "a/etc/os");
    CHECK(chown(path, 1234, 2345) == 0);
    CHECK(chmod(path, 0640) == 0);
    /* Layer b: a whiteout, an opaque directory, a directory over the symlink, a hardlink pair. */
    mk("b");
    mk("b/etc");
    p(path, sizeof(path), "b/etc/gone");
    CHECK(mknod(path, S_IFCHR | 0, makedev(0, 0)) == 0);
    mk("b/srv");
    mk("b/srv/old");
    p(path, sizeof(path), "b/srv/old");
    CHECK(setxattr(path, "trusted.overlay.opaque", "y", 1, 0) == 0);
    file("b/srv/old/fresh", "new\n");
    mk("b/esc");
    file("b/esc/inside", "inside\n");
    file("b/h1", "same\n");
    p(path, sizeof(path), "b/h1");
    p(buf, sizeof(buf), "b/h2");
    CHECK(link(path, buf) == 0);
    p(path, sizeof(path), "b/h1");
    CHECK(setxattr(path, "user.note", "x\0y", 3, 0) == 0);
    /* The tree. */
    mk("t");
    p(a, sizeof(a), "a");
    p(b, sizeof(b), "b");
    p(c, sizeof(c), "t");
    layers[0] = a;
    layers[1] = b;
    CHECK_INT(oci_overlay_flatten(layers, 2, c, OCI_OVERLAY_ROOT, err, sizeof(err)), 0);
    if (err[0])
        printf("  err: %s\n", err);

    p(path, sizeof(path), "t/etc/os");
    CHECK(slurp(path, buf, sizeof(buf)) != NULL && strcmp(buf, "base\n") == 0);
    CHECK(lstat(path, &st) == 0 && st.st_uid == 1234 && st.st_gid == 2345 &&
          (st.st_mode & 07777) == 0640);
    p(path, sizeof(path), "t/etc/gone");
    CHECK(lstat(path, &st) != 0 && errno == ENOENT); /* whited out */
    p(path, sizeof(path), "t/srv/old/deep");
    CHECK(lstat(path, &st) != 0 && errno == ENOENT); /* hidden by the opaque directory */
    p(path, sizeof(path), "t/srv/old/fresh");
    CHECK(slurp(path, buf, sizeof(buf)) != NULL && strcmp(buf, "new\n") == 0);
    p(path, sizeof(path), "t/srv/old");
    CHECK(getxattr(path, "trusted.overlay.opaque", buf, sizeof(buf)) < 0); /* not carried */
    p(path, sizeof(path), "t/keep");
    CHECK(slurp(path, buf, sizeof(buf)) != NULL && strcmp(buf, "keep\n") == 0);
    /* The symlink to the outside was replaced by the directory, never written through. */
    p(path, sizeof(path), "t/esc");
    CHECK(lstat(path, &st) == 0 && S_ISDIR(st.st_mode));
    p(path, sizeof(path), "inside");
    CHECK(lstat(path, &st) != 0 && errno == ENOENT);
    p(path, sizeof(path), "t/esc/inside");
    CHECK(slurp(path, buf, sizeof(buf)) != NULL && strcmp(buf, "inside\n") == 0);
    /* A hardlink pair stays one file; xattrs come along, binary values whole. */
    p(path, sizeof(path), "t/h1");
    p(buf, sizeof(buf), "t/h2");
    CHECK(lstat(path, &st) == 0 && lstat(buf, &st2) == 0 && st.st_ino == st2.st_ino);
    CHECK_INT((int)getxattr(path, "user.note", buf, sizeof(buf)), 3);
    CHECK(memcmp(buf, "x\0y", 3) == 0);
    oci_archive_remove_dir(tmp);
}

TEST(missing_layer)
{
    const char *layers[1] = {"/nonexistent/layer"};
    char err[512] = "";
    snprintf(tmp, sizeof(tmp), "/tmp/ocisync-flatten-XXXXXX");
    CHECK(mkdtemp(tmp) != NULL);
    CHECK(oci_overlay_flatten(layers, 1, tmp, OCI_OVERLAY_ROOT, err, sizeof(err)) != 0);
    CHECK(strstr(err, "/nonexistent/layer") != NULL);
    oci_archive_remove_dir(tmp);
}

TEST_MAIN(T(stacks_whiteouts_opaque_links), T(missing_layer))
