/*
 * Layers to overlay directories and back: a tree with every kind of entry
 * (setuid files, a sticky directory, symlinks, hardlinks, fifos, devices,
 * xattrs with binary values, whiteouts, an opaque directory) goes through
 * capture -> tar -> extract -> capture and comes out as the same bytes;
 * whiteouts and opaque markers of a layer land as overlayfs reads them;
 * hostile layers are refused with nothing written outside; the
 * snapshot/diff fallback sees what a RUN changed; and, as root, a real
 * overlayfs mount over an extracted layer is captured exactly.
 */
#define _GNU_SOURCE
#include "oci/overlay.h"
#include "oci/tar.h"
#include "ocisync.h"
#include "test.h"

#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static char err[512];

/* setcap cap_net_raw+ep, as VFS_CAP_REVISION_2 stores it: binary, with NULs. */
static const unsigned char CAP_VALUE[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00,
                                            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                            0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
static const unsigned char ODD_VALUE[6] = {'\n', '=', 0, 0xff, ' ', '\n'};

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */

static void temp_dir(char *out, size_t len)
{
    snprintf(out, len, "/tmp/ocisync-ovl-XXXXXX");
    CHECK(mkdtemp(out) != NULL);
}

static void rm_tree(const char *dir)
{
    char cmd[4200];

    snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", dir, dir);
    CHECK_INT(system(cmd), 0);
}

static void rm_rel(const char *root, const char *rel)
{
    char cmd[4200];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s/%s'", root, rel);
    CHECK_INT(system(cmd), 0);
}

static void pathf(char *out, size_t len, const char *root, const char *rel)
{
    snprintf(out, len, "%s/%s", root, rel);
}

static void mk_dir(const char *root, const char *rel, mode_t mode)
{
    char p[4200];

    pathf(p, sizeof(p), root, rel);
    CHECK_INT(mkdir(p, 0700), 0);
    CHECK_INT(chmod(p, mode), 0);
}

static void mk_file(const char *root, const char *rel, const char *data, mode_t mode)
{
    char p[4200];
    int fd;

    pathf(p, sizeof(p), root, rel);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK_INT(write(fd, data, strlen(data)), (long long)strlen(data));
    close(fd);
    CHECK_INT(chmod(p, mode), 0);
}

static void set_time(const char *root, const char *rel, time_t t)
{
    char p[4200];
    struct timespec ts[2] = {{t, 0}, {t, 0}};

    pathf(p, sizeof(p), root, rel);
    CHECK_INT(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static bool exists(const char *root, const char *rel)
{
    char p[4200];
    struct stat st;

    pathf(p, sizeof(p), root, rel);
    return lstat(p, &st) == 0;
}

static void stat_of(const char *root, const char *rel, struct stat *st)
{
    char p[4200];

    pathf(p, sizeof(p), root, rel);
    memset(st, 0, sizeof(*st));
    CHECK_INT(lstat(p, st), 0);
}

/* Reads an xattr of root/rel into v (cap bytes); its length, or -1. */
static ssize_t xattr_of(const char *root, const char *rel, const char *name, void *v, size_t cap)
{
    char p[4200];

    pathf(p, sizeof(p), root, rel);
    return lgetxattr(p, name, v, cap);
}

static int stream_all(const struct oci_tar_plan *plan, struct test_buf *out)
{
    struct oci_tar_stream s;
    unsigned char tmp[3000];
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

/* Extracts tar into dest in pieces of step bytes; the diff_id goes to *d when d is set. */
static int extract(const struct test_buf *tar, const char *dest, const struct oci_overlay_opts *o,
                   size_t step, struct oci_digest *d)
{
    struct oci_overlay_extractor *x;
    int rc;

    err[0] = '\0';
    rc = oci_overlay_extract_begin(&x, dest, o, err, sizeof(err));
    if (rc != 0)
        return rc;
    for (size_t off = 0; rc == 0 && off < tar->len; off += step)
        rc = oci_overlay_extract_feed(
            x, tar->data + off, tar->len - off < step ? tar->len - off : step, err, sizeof(err));
    if (rc != 0) {
        oci_overlay_extract_abort(x);
        return rc;
    }
    return oci_overlay_extract_end(x, NULL, d, err, sizeof(err));
}

/* Capture of dir, streamed; the plan's paths joined by " " into paths (when set). */
static int capture(const char *dir, const struct oci_overlay_opts *o, struct test_buf *tar,
                   char *paths, size_t plen)
{
    struct oci_tar_plan plan;
    int rc = oci_overlay_capture(dir, o, &plan, err, sizeof(err));

    if (rc != 0) {
        fprintf(stderr, "capture %s: %s\n", dir, err);
        return rc;
    }
    if (paths != NULL) {
        paths[0] = '\0';
        for (size_t i = 0; i < plan.n_entries; i++)
            snprintf(paths + strlen(paths), plen - strlen(paths), "%s%s", i ? " " : "",
                     plan.entries[i].path);
    }
    rc = tar != NULL ? stream_all(&plan, tar) : 0;
    oci_tar_plan_free(&plan);
    return rc;
}

static const struct oci_tar_plan_entry *entry(const struct oci_tar_plan *p, const char *path)
{
    for (size_t i = 0; i < p->n_entries; i++) {
        if (strcmp(p->entries[i].path, path) == 0)
            return &p->entries[i];
    }
    return NULL;
}

/*
 * An upper-like tree: a setuid file with a capability and odd xattrs, a
 * sticky directory, an owned directory, symlinks (relative, absolute,
 * dangling), two hardlinks, a fifo, devices, a whiteout and an opaque
 * directory in the overlay form of mode.
 */
static void make_tree(const char *t, enum oci_overlay_mode mode)
{
    char p[4200], q[4200];
    const char *ns = mode == OCI_OVERLAY_ROOT ? "trusted" : "user";
    char name[64];

    mk_dir(t, "bin", 0755);
    mk_file(t, "bin/ping",
            "\x7f"
            "ELF ping",
            0644);
    pathf(p, sizeof(p), t, "bin/ping");
    CHECK_INT(chown(p, 0, 0), 0);
    CHECK_INT(setxattr(p, "security.capability", CAP_VALUE, sizeof(CAP_VALUE), 0), 0);
    CHECK_INT(setxattr(p, "user.odd", ODD_VALUE, sizeof(ODD_VALUE), 0), 0);
    CHECK_INT(chmod(p, 04755), 0);
    mk_file(t, "bin/tool", "tool", 02711);
    pathf(q, sizeof(q), t, "bin/tool-again");
    pathf(p, sizeof(p), t, "bin/tool");
    CHECK_INT(link(p, q), 0);
    mk_dir(t, "tmp", 01777);
    mk_dir(t, "home", 0750);
    mk_dir(t, "home/user", 0700);
    mk_file(t, "home/user/.profile", "export A=1\n", 0640);
    pathf(p, sizeof(p), t, "home/user/.profile");
    CHECK_INT(chown(p, 1000, 1001), 0);
    pathf(p, sizeof(p), t, "home/user");
    CHECK_INT(chown(p, 1000, 1001), 0);
    pathf(p, sizeof(p), t, "bin/sh");
    CHECK_INT(symlink("busybox", p), 0);
    pathf(p, sizeof(p), t, "bin/abs");
    CHECK_INT(symlink("/etc/passwd", p), 0);
    pathf(p, sizeof(p), t, "bin/up");
    CHECK_INT(symlink("../../../../nowhere", p), 0);
    mk_dir(t, "dev", 0755);
    pathf(p, sizeof(p), t, "dev/null");
    CHECK_INT(mknod(p, S_IFCHR | 0666, makedev(1, 3)), 0);
    pathf(p, sizeof(p), t, "dev/sda");
    CHECK_INT(mknod(p, S_IFBLK | 0660, makedev(8, 0)), 0);
    pathf(p, sizeof(p), t, "dev/pipe");
    CHECK_INT(mkfifo(p, 0620), 0);
    CHECK_INT(chmod(p, 0620), 0);
    /* Whited out and opaque, as overlayfs leaves them. */
    pathf(p, sizeof(p), t, "bin/gone");
    CHECK_INT(mknod(p, S_IFCHR | 0, makedev(0, 0)), 0);
    mk_dir(t, "etc", 0755);
    mk_file(t, "etc/only", "new", 0644);
    pathf(p, sizeof(p), t, "etc");
    snprintf(name, sizeof(name), "%s.overlay.opaque", ns);
    CHECK_INT(setxattr(p, name, "y", 1, 0), 0);
    /* The overlay's bookkeeping is left out; escaped names are the layer's own. */
    snprintf(name, sizeof(name), "%s.overlay.origin", ns);
    CHECK_INT(setxattr(p, name, "zz", 2, 0), 0);
    pathf(p, sizeof(p), t, "home");
    snprintf(name, sizeof(name), "%s.overlay.overlay.redirect", ns);
    CHECK_INT(setxattr(p, name, "/x", 2, 0), 0);

    set_time(t, "bin/ping", 1600000000);
    set_time(t, "bin/sh", 1600000001);
    set_time(t, "dev/pipe", 1600000002);
    set_time(t, "home/user/.profile", 1600000003);
    set_time(t, "home/user", 1600000004);
    set_time(t, "bin", 1600000005);
    set_time(t, "etc", 1600000006);
    set_time(t, "home", 1600000007);
    set_time(t, "dev", 1600000008);
    set_time(t, "tmp", 1600000009);
}

/* ---------------------------------------------------------------------------------------------
 * Round trips
 */

static void roundtrip(enum oci_overlay_mode mode)
{
    struct oci_overlay_opts o = {.mode = mode};
    char root[64], src[128], out[128], paths[4096], name[64], v[64];
    const char *ns = mode == OCI_OVERLAY_ROOT ? "trusted" : "user";
    struct test_buf a, b;
    struct oci_tar_plan plan;
    const struct oci_tar_plan_entry *e;
    struct oci_digest d, want;
    struct stat st, st2;

    temp_dir(root, sizeof(root));
    snprintf(src, sizeof(src), "%s/src", root);
    snprintf(out, sizeof(out), "%s/out", root);
    CHECK_INT(mkdir(src, 0755), 0);
    make_tree(src, mode);

    CHECK_INT(oci_overlay_capture(src, &o, &plan, err, sizeof(err)), 0);
    e = entry(&plan, "bin/gone");
    CHECK(e == NULL);
    e = entry(&plan, "bin/.wh.gone");
    CHECK(e != NULL && e->type == '0' && e->src == NULL && e->size == 0 && e->mtime == 1600000005);
    e = entry(&plan, "etc/.wh..wh..opq");
    CHECK(e != NULL && e->mtime == 1600000006);
    e = entry(&plan, "bin/ping");
    CHECK(e != NULL && e->mode == 04755 && e->n_xattrs == 2);
    if (e != NULL && e->n_xattrs == 2) {
        CHECK_STR(e->xattrs[0].name, "security.capability");
        CHECK(e->xattrs[0].len == sizeof(CAP_VALUE) &&
              memcmp(e->xattrs[0].value, CAP_VALUE, sizeof(CAP_VALUE)) == 0);
    }
    e = entry(&plan, "bin/tool-again");
    CHECK(e != NULL && e->type == '1' && strcmp(e->linkname, "bin/tool") == 0);
    e = entry(&plan, "dev/sda");
    CHECK(e != NULL && e->type == '4' && e->devmajor == 8 && e->devminor == 0);
    e = entry(&plan, "etc/");
    CHECK(e != NULL && e->n_xattrs == 0); /* opaque and origin are the overlay's */
    e = entry(&plan, "home/");
    snprintf(name, sizeof(name), "%s.overlay.redirect", ns);
    CHECK(e != NULL && e->n_xattrs == 1 && strcmp(e->xattrs[0].name, name) == 0);
    e = entry(&plan, "home/user/.profile");
    CHECK(e != NULL && e->uid == 1000 && e->gid == 1001 && e->mtime == 1600000003);
    oci_tar_plan_free(&plan);

    CHECK_INT(capture(src, &o, &a, NULL, 0), 0);
    CHECK_INT(extract(&a, out, &o, 777, &d), 0);
    if (err[0])
        fprintf(stderr, "extract: %s\n", err);
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, a.data, a.len, &want), 0);
    CHECK_STR(d.str, want.str);
    /* What overlayfs reads. */
    stat_of(out, "bin/gone", &st);
    CHECK(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
    snprintf(name, sizeof(name), "%s.overlay.opaque", ns);
    CHECK(xattr_of(out, "etc", name, v, sizeof(v)) == 1 && v[0] == 'y');
    CHECK(xattr_of(out, "home", name, v, sizeof(v)) < 0);
    /* The layer's own xattr in the overlay's namespace stays escaped on disk. */
    snprintf(name, sizeof(name), "%s.overlay.overlay.redirect", ns);
    CHECK(xattr_of(out, "home", name, v, sizeof(v)) == 2);
    snprintf(name, sizeof(name), "%s.overlay.redirect", ns);
    CHECK(xattr_of(out, "home", name, v, sizeof(v)) < 0);
    CHECK(xattr_of(out, "bin/ping", "security.capability", v, sizeof(v)) == sizeof(CAP_VALUE) &&
          memcmp(v, CAP_VALUE, sizeof(CAP_VALUE)) == 0);
    stat_of(out, "bin/ping", &st);
    CHECK_INT(st.st_mode & 07777, 04755);
    stat_of(out, "tmp", &st);
    CHECK_INT(st.st_mode & 07777, 01777);
    CHECK_INT(st.st_mtime, 1600000009);
    stat_of(out, "bin/tool", &st);
    stat_of(out, "bin/tool-again", &st2);
    CHECK(st.st_ino == st2.st_ino && (st.st_mode & 07777) == 02711);
    stat_of(out, "dev/pipe", &st);
    CHECK(S_ISFIFO(st.st_mode) && (st.st_mode & 07777) == 0620 && st.st_mtime == 1600000002);
    stat_of(out, "home/user", &st);
    CHECK(st.st_uid == 1000 && st.st_gid == 1001 && (st.st_mode & 07777) == 0700);
    {
        char t[64];
        char p[4200];
        ssize_t n;

        pathf(p, sizeof(p), out, "bin/up");
        n = readlink(p, t, sizeof(t) - 1);
        CHECK(n == 19 && memcmp(t, "../../../../nowhere", 19) == 0);
    }

    /* And back: the same bytes. */
    CHECK_INT(capture(out, &o, &b, paths, sizeof(paths)), 0);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    CHECK_STR(paths, "bin/ bin/.wh.gone bin/abs bin/ping bin/sh bin/tool bin/tool-again bin/up "
                     "dev/ dev/null dev/pipe dev/sda etc/ etc/.wh..wh..opq etc/only home/ "
                     "home/user/ home/user/.profile tmp/");

    /* dest exists now: a second extraction is refused and leaves it alone. */
    CHECK_INT(extract(&a, out, &o, 4096, NULL), UV_EEXIST);
    CHECK(strstr(err, "exists") != NULL);
    test_buf_free(&a);
    test_buf_free(&b);
    rm_tree(root);
}

TEST(roundtrip_root)
{
    if (geteuid() != 0)
        SKIP("needs root (mknod, trusted.* xattrs, chown)");
    roundtrip(OCI_OVERLAY_ROOT);
}

TEST(roundtrip_userxattr)
{
    if (geteuid() != 0)
        SKIP("needs root (mknod of devices, chown)");
    roundtrip(OCI_OVERLAY_USERXATTR);
}

/* The blob form: a gzip file, checked against its diff_id before it reaches dest. */
TEST(extract_blob)
{
    struct oci_overlay_opts o = {.mode = OCI_OVERLAY_ROOT};
    char root[64], src[128], blob[128], out[128], cmd[512];
    struct oci_digest want, got, wrong;
    struct test_buf a;
    FILE *f;

    if (geteuid() != 0)
        SKIP("needs root");
    temp_dir(root, sizeof(root));
    snprintf(src, sizeof(src), "%s/src", root);
    snprintf(blob, sizeof(blob), "%s/layer.tar", root);
    snprintf(out, sizeof(out), "%s/out", root);
    CHECK_INT(mkdir(src, 0755), 0);
    make_tree(src, OCI_OVERLAY_ROOT);
    CHECK_INT(capture(src, &o, &a, NULL, 0), 0);
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, a.data, a.len, &want), 0);
    f = fopen(blob, "wb");
    CHECK(f != NULL && fwrite(a.data, 1, a.len, f) == a.len);
    if (f)
        fclose(f);
    snprintf(cmd, sizeof(cmd), "gzip '%s'", blob);
    CHECK_INT(system(cmd), 0);
    snprintf(blob, sizeof(blob), "%s/layer.tar.gz", root);

    CHECK_INT(oci_digest_parse_str("sha256:0000000000000000000000000000000000000000000000000000"
                                   "000000000000",
                                   &wrong),
              0);
    CHECK_INT(oci_overlay_extract(blob, &wrong, out, &o, &got, err, sizeof(err)),
              OCISYNC_EDIGESTMISMATCH);
    CHECK(strstr(err, want.str) != NULL);
    CHECK(!exists(root, "out"));
    CHECK_INT(oci_overlay_extract(blob, &want, out, &o, &got, err, sizeof(err)), 0);
    CHECK_STR(got.str, want.str);
    CHECK(exists(root, "out/bin/ping"));
    /* Nothing is left of the temporary directories. */
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s' | grep tmp-overlay)\"", root);
    CHECK_INT(system(cmd), 0);
    test_buf_free(&a);
    rm_tree(root);
}

/* ---------------------------------------------------------------------------------------------
 * Whiteouts and opaque directories of a layer
 */

static void add(struct oci_tar_plan *p, char type, const char *path, const char *link)
{
    struct oci_tar_plan_entry e = {.path = (char *)path,
                                   .type = type,
                                   .mode = 0755,
                                   .linkname = (char *)link,
                                   .mtime = 1500000000};
    int rc = oci_tar_plan_add(p, &e, err, sizeof(err));

    if (rc != 0)
        fprintf(stderr, "add %s: %s\n", path, err);
    CHECK_INT(rc, 0);
}

TEST(layer_whiteouts)
{
    struct oci_overlay_opts o = {.mode = OCI_OVERLAY_ROOT};
    char root[64], out[128], paths[2048], v[8];
    struct oci_tar_plan plan;
    struct test_buf a, b;
    struct stat st;

    if (geteuid() != 0)
        SKIP("needs root (mknod, trusted.* xattrs)");
    temp_dir(root, sizeof(root));
    snprintf(out, sizeof(out), "%s/out", root);
    memset(&plan, 0, sizeof(plan));
    /* A whiteout; an opaque directory (its parent implied) whose own entry stays; the
     * layer's own e and a whiteout of e (e opaque, not gone); a file and its whiteout (the
     * file stays); aufs's hardlink directory (skipped). */
    add(&plan, '0', ".wh.a", NULL);
    add(&plan, '0', "d/.wh..wh..opq", NULL);
    add(&plan, '6', "d/keep", NULL);
    add(&plan, '5', "e/", NULL);
    add(&plan, '0', ".wh.e", NULL);
    add(&plan, '6', "f", NULL);
    add(&plan, '0', ".wh.f", NULL);
    add(&plan, '5', ".wh..wh.plnk/", NULL);
    add(&plan, '6', ".wh..wh.plnk/123", NULL);
    CHECK_INT(oci_tar_plan_seal(&plan, err, sizeof(err)), 0);
    CHECK_INT(stream_all(&plan, &a), 0);
    oci_tar_plan_free(&plan);
    CHECK_INT(extract(&a, out, &o, 100, NULL), 0);
    if (err[0])
        fprintf(stderr, "extract: %s\n", err);

    stat_of(out, "a", &st);
    CHECK(S_ISCHR(st.st_mode) && st.st_rdev == 0);
    CHECK(xattr_of(out, "d", "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y');
    stat_of(out, "d", &st);
    CHECK(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755 && st.st_mtime == 0);
    CHECK(exists(out, "d/keep"));
    stat_of(out, "e", &st);
    CHECK(S_ISDIR(st.st_mode) && st.st_mtime == 1500000000);
    CHECK(xattr_of(out, "e", "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y');
    stat_of(out, "f", &st);
    CHECK(S_ISFIFO(st.st_mode));
    CHECK(!exists(out, ".wh..wh.plnk"));

    /* Captured again: the markers come back (the layer's whiteout of its own f is gone). */
    CHECK_INT(capture(out, &o, &b, paths, sizeof(paths)), 0);
    CHECK_STR(paths, ".wh.a d/ d/.wh..wh..opq d/keep e/ e/.wh..wh..opq f");
    test_buf_free(&a);
    test_buf_free(&b);
    rm_tree(root);
}

/* The other whiteout form (an empty file with overlay.whiteout) is captured as a whiteout. */
TEST(capture_xattr_whiteouts)
{
    struct oci_overlay_opts o = {
        .mode = OCI_OVERLAY_USERXATTR, .clamp_mtime = true, .mtime_max = 1000};
    const char *excl[] = {"/proc", "etc/resolv.conf/"};
    char root[64], p[256], paths[1024];

    temp_dir(root, sizeof(root));
    mk_dir(root, "d", 0755);
    mk_file(root, "d/gone", "", 0644);
    pathf(p, sizeof(p), root, "d/gone");
    if (setxattr(p, "user.overlay.whiteout", "y", 1, 0) != 0) {
        rm_tree(root);
        SKIP("no user xattrs on /tmp");
    }
    pathf(p, sizeof(p), root, "d");
    CHECK_INT(setxattr(p, "user.overlay.opaque", "x", 1, 0), 0);
    mk_file(root, "d/empty", "", 0644); /* an empty file without the xattr is a file */
    mk_dir(root, "proc", 0555);
    mk_file(root, "proc/cpuinfo", "x", 0444);
    mk_dir(root, "etc", 0755);
    mk_file(root, "etc/resolv.conf", "", 0644);
    mk_file(root, "etc/hosts", "", 0644);
    o.excludes = excl;
    o.n_excludes = 2;
    CHECK_INT(capture(root, &o, NULL, paths, sizeof(paths)), 0);
    CHECK_STR(paths, "d/ d/.wh.gone d/empty etc/ etc/hosts");
    {
        struct oci_tar_plan plan;

        CHECK_INT(oci_overlay_capture(root, &o, &plan, err, sizeof(err)), 0);
        for (size_t i = 0; i < plan.n_entries; i++)
            CHECK(plan.entries[i].mtime <= 1000);
        oci_tar_plan_free(&plan);
    }
    rm_tree(root);
}

/* ---------------------------------------------------------------------------------------------
 * Hostile layers
 */

static void octal(unsigned char *f, size_t w, unsigned long long v)
{
    snprintf((char *)f, w, "%0*llo", (int)w - 1, v);
}

/* Appends a ustar header (and len bytes of data, padded) to b. */
static void raw(struct test_buf *b, const char *name, char type, const char *link,
                unsigned long long size, const char *data, size_t len)
{
    unsigned char h[512];
    unsigned sum = 0;
    static const unsigned char zeros[512];

    memset(h, 0, sizeof(h));
    memcpy(h, name, strlen(name));
    octal(h + 100, 8, 0644);
    octal(h + 108, 8, 0);
    octal(h + 116, 8, 0);
    octal(h + 124, 12, size);
    octal(h + 136, 12, 0);
    h[156] = (unsigned char)type;
    if (link)
        memcpy(h + 157, link, strlen(link));
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    for (size_t i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    test_buf_add(b, h, 512);
    if (len > 0) {
        test_buf_add(b, data, len);
        test_buf_add(b, zeros, (512 - len % 512) % 512);
    }
}

static void end(struct test_buf *b)
{
    static const unsigned char zeros[1024];

    test_buf_add(b, zeros, sizeof(zeros));
}

/* Extracting b into root/out fails with code and a message holding needle; nothing is left. */
static void hostile(const char *root, struct test_buf *b, const struct oci_overlay_opts *o,
                    int code, const char *needle)
{
    char out[128], cmd[512];

    snprintf(out, sizeof(out), "%s/out", root);
    CHECK_INT(extract(b, out, o, 512, NULL), code);
    if (strstr(err, needle) == NULL)
        fprintf(stderr, "err \"%s\" does not mention \"%s\"\n", err, needle);
    CHECK(strstr(err, needle) != NULL);
    CHECK(!exists(root, "out"));
    /* Nothing outside: the sentinel directory is still empty, no temp dir is left. */
    snprintf(cmd, sizeof(cmd),
             "test -z \"$(ls -A '%s/outside')\" && test \"$(ls -A '%s')\" = outside", root, root);
    CHECK_INT(system(cmd), 0);
    test_buf_free(b);
}

TEST(hostile_layers)
{
    struct oci_overlay_opts o = {.mode = OCI_OVERLAY_ROOT, .max_bytes = 1 << 20};
    char root[64], outside[128], abs_link[256];
    struct test_buf b;

    temp_dir(root, sizeof(root));
    snprintf(outside, sizeof(outside), "%s/outside", root);
    CHECK_INT(mkdir(outside, 0755), 0);

    /* A symlink, then a file through it (relative and absolute). */
    memset(&b, 0, sizeof(b));
    raw(&b, "l", '2', "../outside", 0, NULL, 0);
    raw(&b, "l/pwned", '0', NULL, 3, "pwn", 3);
    end(&b);
    hostile(root, &b, &o, UV_EINVAL, "\"l/pwned\" is below \"l\", which is not a directory");
    snprintf(abs_link, sizeof(abs_link), "%s", outside);
    raw(&b, "a/", '5', NULL, 0, NULL, 0);
    raw(&b, "a/l", '2', abs_link, 0, NULL, 0);
    raw(&b, "a/l/x/y", '0', NULL, 1, "y", 1);
    end(&b);
    hostile(root, &b, &o, UV_EINVAL, "which is not a directory");
    /* A file, then something below it. */
    raw(&b, "f", '0', NULL, 1, "f", 1);
    raw(&b, "f/g", '0', NULL, 1, "g", 1);
    end(&b);
    hostile(root, &b, &o, UV_EINVAL, "\"f/g\" is below \"f\"");
    /* ".." in a path. */
    raw(&b, "ok", '0', NULL, 0, NULL, 0);
    raw(&b, "a/../../outside/evil", '0', NULL, 4, "evil", 4);
    end(&b);
    hostile(root, &b, &o, UV_EINVAL, "\"..\" component");
    /* Hardlinks out: climbing, absolute (read in the layer: not there), to a directory. */
    raw(&b, "h", '1', "../outside/x", 0, NULL, 0);
    end(&b);
    hostile(root, &b, &o, UV_EINVAL, "outside the layer");
    raw(&b, "h", '1', "/etc/passwd", 0, NULL, 0);
    end(&b);
    hostile(root, &b, &o, UV_EINVAL, "\"/etc/passwd\", which is not in this layer");
    raw(&b, "d/", '5', NULL, 0, NULL, 0);
    raw(&b, "h", '1', "d", 0, NULL, 0);
    end(&b);
    hostile(root, &b, &o, UV_EINVAL, "which is not a file of this layer");
    raw(&b, "l", '2', "/etc", 0, NULL, 0);
    raw(&b, "h", '1', "l/passwd", 0, NULL, 0);
    end(&b);
    hostile(root, &b, &o, UV_EINVAL, "\"h\" is below \"l\", which is not a directory");
    /* Absurd sizes: over the cap before a byte is written; a size with no data behind it. */
    raw(&b, "big", '0', NULL, 1ULL << 40, NULL, 0);
    end(&b);
    hostile(root, &b, &o, OCISYNC_ETOOBIG, "cap on content bytes");
    o.max_bytes = 0;
    raw(&b, "big", '0', NULL, 1ULL << 32, NULL, 0);
    end(&b);
    hostile(root, &b, &o, UV_EINVAL, "truncated");
    /* A device overlayfs would take for a whiteout; a whiteout of nothing; below a whiteout. */
    raw(&b, "c", '3', NULL, 0, NULL, 0);
    end(&b);
    hostile(root, &b, &o, UV_EINVAL, "would read as a whiteout");
    raw(&b, "d/.wh.", '0', NULL, 0, NULL, 0);
    end(&b);
    hostile(root, &b, &o, UV_EINVAL, "whiteout of no name");
    raw(&b, ".wh.x/y", '0', NULL, 0, NULL, 0);
    end(&b);
    hostile(root, &b, &o, UV_EINVAL, "below a whiteout");
    /* A root that is not a directory; an unknown type; garbage. */
    raw(&b, "./", '0', NULL, 0, NULL, 0);
    end(&b);
    hostile(root, &b, &o, UV_EINVAL, "root but not a directory");
    raw(&b, "s", 'S', NULL, 0, NULL, 0);
    end(&b);
    hostile(root, &b, &o, UV_EINVAL, "tar type 'S'");
    test_buf_add(&b, "definitely not a tar archive", 28);
    hostile(root, &b, &o, UV_EINVAL, "truncated");
    rm_tree(root);
}

/* ---------------------------------------------------------------------------------------------
 * Snapshot and diff
 */

static void diff_paths(const struct oci_overlay_snapshot *s, const char *dir,
                       const struct oci_overlay_opts *o, char *paths, size_t len,
                       struct oci_tar_plan *keep)
{
    struct oci_tar_plan plan;

    CHECK_INT(oci_overlay_diff(s, dir, o, &plan, err, sizeof(err)), 0);
    paths[0] = '\0';
    for (size_t i = 0; i < plan.n_entries; i++)
        snprintf(paths + strlen(paths), len - strlen(paths), "%s%s", i ? " " : "",
                 plan.entries[i].path);
    if (keep != NULL)
        *keep = plan;
    else
        oci_tar_plan_free(&plan);
}

TEST(snapshot_diff)
{
    struct oci_overlay_opts o = {.mode = OCI_OVERLAY_ROOT};
    struct oci_overlay_snapshot *s = NULL;
    struct oci_tar_plan plan;
    char root[64], p[256], q[256], paths[2048];
    struct stat st;
    int fd;

    temp_dir(root, sizeof(root));
    mk_file(root, "same", "same", 0644);
    mk_file(root, "content", "aaaa", 0644);
    mk_file(root, "mode", "m", 0644);
    mk_file(root, "del", "d", 0644);
    mk_dir(root, "deldir", 0755);
    mk_dir(root, "deldir/sub", 0755);
    mk_file(root, "deldir/sub/x", "x", 0644);
    mk_file(root, "f2d", "file", 0644);
    mk_dir(root, "d2l", 0755);
    mk_file(root, "d2l/inner", "i", 0644);
    pathf(p, sizeof(p), root, "l2f");
    CHECK_INT(symlink("same", p), 0);
    mk_dir(root, "keepdir", 0755);
    mk_file(root, "keepdir/old", "o", 0644);
    mk_dir(root, "proc", 0555);
    set_time(root, "content", 1400000000);
    CHECK_INT(oci_overlay_snapshot(root, &o, &s, err, sizeof(err)), 0);

    /* Nothing changed: an empty layer. */
    diff_paths(s, root, &o, paths, sizeof(paths), NULL);
    CHECK_STR(paths, "");

    /* Same size, same mtime, new content: only ctime tells. */
    pathf(p, sizeof(p), root, "content");
    fd = open(p, O_WRONLY);
    CHECK(fd >= 0 && write(fd, "bbbb", 4) == 4);
    if (fd >= 0)
        close(fd);
    set_time(root, "content", 1400000000);
    stat_of(root, "content", &st);
    CHECK_INT(st.st_mtime, 1400000000);
    pathf(p, sizeof(p), root, "mode");
    CHECK_INT(chmod(p, 0600), 0);
    pathf(p, sizeof(p), root, "del");
    CHECK_INT(unlink(p), 0);
    rm_rel(root, "deldir");
    pathf(p, sizeof(p), root, "f2d");
    CHECK_INT(unlink(p), 0);
    mk_dir(root, "f2d", 0700);
    mk_file(root, "f2d/child", "c", 0644);
    rm_rel(root, "d2l");
    pathf(p, sizeof(p), root, "d2l");
    CHECK_INT(symlink("same", p), 0);
    pathf(p, sizeof(p), root, "l2f");
    CHECK_INT(unlink(p), 0);
    mk_file(root, "l2f", "now a file", 0644);
    mk_file(root, "keepdir/new", "n", 0644);
    mk_file(root, "proc/ignored", "n", 0644);
    pathf(p, sizeof(p), root, "keepdir/old");
    pathf(q, sizeof(q), root, "keepdir/old-link");
    CHECK_INT(link(p, q), 0);

    {
        const char *excl[] = {"proc"};

        o.excludes = excl;
        o.n_excludes = 1;
        diff_paths(s, root, &o, paths, sizeof(paths), &plan);
        o.excludes = NULL;
        o.n_excludes = 0;
    }
    CHECK_STR(paths, ".wh.del .wh.deldir content d2l f2d/ f2d/.wh..wh..opq f2d/child keepdir/ "
                     "keepdir/new keepdir/old keepdir/old-link l2f mode");
    {
        const struct oci_tar_plan_entry *e = entry(&plan, "mode");

        CHECK(e != NULL && e->mode == 0600);
        e = entry(&plan, "keepdir/old-link");
        CHECK(e != NULL && e->type == '1' && strcmp(e->linkname, "keepdir/old") == 0);
        e = entry(&plan, "d2l");
        CHECK(e != NULL && e->type == '2');
        e = entry(&plan, ".wh.deldir");
        stat_of(root, ".", &st);
        CHECK(e != NULL && e->mtime == st.st_mtime);
    }
    /* The plan streams (files read as they are now). */
    {
        struct test_buf t;

        CHECK_INT(stream_all(&plan, &t), 0);
        test_buf_free(&t);
    }
    oci_tar_plan_free(&plan);

    /* xattr-only change. */
    oci_overlay_snapshot_free(s);
    CHECK_INT(oci_overlay_snapshot(root, &o, &s, err, sizeof(err)), 0);
    pathf(p, sizeof(p), root, "same");
    if (setxattr(p, "user.x", "1", 1, 0) == 0) {
        diff_paths(s, root, &o, paths, sizeof(paths), NULL);
        CHECK_STR(paths, "same");
    }
    oci_overlay_snapshot_free(s);
    rm_tree(root);
}

/* ---------------------------------------------------------------------------------------------
 * A real overlayfs
 */

/* In a child with its own mount namespace: mount lower + upper on merged and run cmd there. */
static int in_overlay(const char *lower, const char *upper, const char *work, const char *merged,
                      const char *cmd)
{
    pid_t pid = fork();
    int status = 0;

    if (pid < 0)
        return -1;
    if (pid == 0) {
        char opts[1024];
        int rc;

        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
            _exit(77);
        if (upper != NULL)
            snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
        else
            snprintf(opts, sizeof(opts), "lowerdir=%s", lower);
        if (mount("overlay", merged, "overlay", 0, opts) != 0)
            _exit(77);
        rc = system(cmd);
        umount(merged);
        _exit(rc == 0 ? 0 : 1);
    }
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

TEST(real_overlay)
{
    struct oci_overlay_opts o = {.mode = OCI_OVERLAY_ROOT};
    char root[64], src[128], lower[128], upper[128], work[128], merged[128], lower2[192];
    char cmd[2048], paths[2048], lowers[512];
    struct test_buf a, b;
    int rc;

    if (geteuid() != 0)
        SKIP("needs root to mount overlayfs");
    temp_dir(root, sizeof(root));
    snprintf(src, sizeof(src), "%s/src", root);
    snprintf(lower, sizeof(lower), "%s/lower", root);
    snprintf(upper, sizeof(upper), "%s/upper", root);
    snprintf(work, sizeof(work), "%s/work", root);
    snprintf(merged, sizeof(merged), "%s/merged", root);
    snprintf(lower2, sizeof(lower2), "%s/lower2", root);
    CHECK_INT(mkdir(src, 0755), 0);
    mk_file(src, "keep", "keep", 0644);
    mk_file(src, "mod", "old", 0644);
    mk_file(src, "del", "del", 0644);
    mk_dir(src, "dir", 0755);
    mk_file(src, "dir/x", "x", 0644);
    mk_file(src, "dir/y", "y", 0644);
    mk_dir(src, "dir2", 0755);
    mk_file(src, "dir2/z", "z", 0644);
    mk_file(src, "dir2/stay", "s", 0644);
    CHECK_INT(capture(src, &o, &a, NULL, 0), 0);
    CHECK_INT(extract(&a, lower, &o, 4096, NULL), 0);
    CHECK_INT(mkdir(upper, 0755), 0);
    CHECK_INT(mkdir(work, 0755), 0);
    CHECK_INT(mkdir(merged, 0755), 0);

    snprintf(cmd, sizeof(cmd),
             "set -e; cd '%s'; echo new > new; echo changed > mod; rm del; rm -rf dir; "
             "mkdir dir; echo fresh > dir/fresh; rm dir2/z; mkfifo fifo; chmod 0600 keep",
             merged);
    rc = in_overlay(lower, upper, work, merged, cmd);
    if (rc == 77) {
        rm_tree(root);
        SKIP("cannot mount overlayfs here");
    }
    CHECK_INT(rc, 0);
    CHECK_INT(capture(upper, &o, &b, paths, sizeof(paths)), 0);
    CHECK_STR(paths, ".wh.del dir/ dir/.wh..wh..opq dir/fresh dir2/ dir2/.wh.z fifo keep mod new");

    /* The captured layer, extracted and stacked on the first, reads as the merged tree did. */
    CHECK_INT(extract(&b, lower2, &o, 1000, NULL), 0);
    snprintf(lowers, sizeof(lowers), "%s:%s", lower2, lower);
    snprintf(cmd, sizeof(cmd),
             "set -e; cd '%s'; test \"$(ls -A | tr '\\n' ' ')\" = 'dir dir2 fifo keep mod new '; "
             "test \"$(ls -A dir)\" = fresh; test \"$(ls -A dir2)\" = stay; "
             "test \"$(cat mod)\" = changed; test -p fifo; "
             "test \"$(stat -c %%a keep)\" = 600",
             merged);
    CHECK_INT(in_overlay(lowers, NULL, NULL, merged, cmd), 0);
    test_buf_free(&a);
    test_buf_free(&b);
    rm_tree(root);
}

TEST_MAIN(T(roundtrip_root), T(roundtrip_userxattr), T(extract_blob), T(layer_whiteouts),
          T(capture_xattr_whiteouts), T(hostile_layers), T(snapshot_diff), T(real_overlay))
