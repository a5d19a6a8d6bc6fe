/*
 * Layers in overlay form stacked into one plain tree, for RUN where
 * overlayfs cannot be mounted (see oci_overlay_flatten in overlay.h).
 *
 * Each layer directory is walked in pre-order through directory
 * descriptors: a whiteout removes what the tree has at its name, an opaque
 * directory empties the tree's directory of that name first, anything else
 * replaces what is there (a directory over a directory merges), copied with
 * its owner, mode, mtime and xattrs (not the overlay's own). Every name is
 * opened relative to its parent's descriptor without following links, so
 * nothing is written through a symlink a lower layer left in the tree.
 */
#define _GNU_SOURCE
#include "oci/overlay.h"

#include "common/sysio.h"
#include "ocisync.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <uv.h>

#define XATTR_LIST_MAX_OURS (64 * 1024)

/* A file of the layer with more than one link, and where its first copy went. */
struct seen {
    dev_t dev;
    ino_t ino;
    char *path; /* relative to the tree; owned */
};

struct flat {
    enum oci_overlay_mode mode;
    int tree; /* the tree's root */
    struct seen *seen;
    size_t n_seen, cap_seen;
    char *err;
    size_t errlen;
};

static int fail(struct flat *fl, const char *rel, const char *doing)
{
    int rc = ocisync__sys_error();
    snprintf(fl->err, fl->errlen, "flatten: %s \"%s\": %s", doing, rel[0] ? rel : "/",
             uv_strerror(rc));
    return rc;
}

static const char *prefix(enum oci_overlay_mode m)
{
    return m == OCI_OVERLAY_USERXATTR ? "user.overlay." : "trusted.overlay.";
}

/* Removes name in dir and everything below it, never following a link. */
static int rm_at(int dir, const char *name)
{
    struct stat st;
    int fd, rc = 0;
    DIR *d;

    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dir, name, 0);
    if ((fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return -1;
    if ((d = fdopendir(fd)) == NULL) {
        close(fd);
        return -1;
    }
    for (struct dirent *de; rc == 0 && (de = readdir(d)) != NULL;)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            rc = rm_at(dirfd(d), de->d_name);
    closedir(d);
    return rc != 0 ? rc : unlinkat(dir, name, AT_REMOVEDIR);
}

/* Whether name (st) in dir of a layer is a whiteout: a character device 0/0, or the xattr form. */
static bool whiteout(struct flat *fl, int dir, const char *name, const struct stat *st)
{
    char x[64], path[64];
    int fd;
    ssize_t n;

    if (S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0))
        return true;
    if (!S_ISREG(st->st_mode) || st->st_size != 0)
        return false;
    snprintf(x, sizeof(x), "%swhiteout", prefix(fl->mode));
    if ((fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return false;
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = getxattr(path, x, NULL, 0);
    close(fd);
    return n >= 0;
}

static bool opaque(struct flat *fl, int fd)
{
    char x[64], v[4];
    ssize_t n;

    snprintf(x, sizeof(x), "%sopaque", prefix(fl->mode));
    n = fgetxattr(fd, x, v, sizeof(v));
    return n == 1 && v[0] == 'y';
}

/*
 * Copies the xattrs of src to dst (both by path, /proc/self/fd/N), leaving
 * out those in the overlay's namespace: its own, and a layer's own there
 * (stored escaped), which a plain tree does not need.
 */
static int copy_xattrs(struct flat *fl, const char *src, const char *dst, const char *rel)
{
    char *list = NULL, *val = NULL;
    const char *p = prefix(fl->mode);
    size_t plen = strlen(p);
    ssize_t n = listxattr(src, NULL, 0);
    int rc = 0;

    if (n <= 0)
        return 0;
    if (n > XATTR_LIST_MAX_OURS || (list = malloc((size_t)n)) == NULL ||
        (val = malloc(XATTR_LIST_MAX_OURS)) == NULL || (n = listxattr(src, list, (size_t)n)) < 0) {
        free(list);
        free(val);
        return n < 0 ? fail(fl, rel, "list the xattrs of") : UV_ENOMEM;
    }
    for (char *name = list; rc == 0 && name < list + n; name += strlen(name) + 1) {
        const char *out = name;
        ssize_t vl;
        /* The overlay's own, and a layer's own in that namespace (escaped): left out. */
        if (strncmp(name, p, plen) == 0)
            continue;
        if ((vl = getxattr(src, name, val, XATTR_LIST_MAX_OURS)) < 0 ||
            setxattr(dst, out, val, (size_t)vl, 0) != 0)
            rc = fail(fl, rel, "copy the xattrs of");
    }
    free(list);
    free(val);
    return rc;
}

/* Owner, xattrs, mode and mtime of st onto name in dir (set last: a chown clears caps). */
static int attrs(struct flat *fl, int sdir, int ddir, const char *name, const struct stat *st,
                 const char *rel)
{
    char s[64], d[64];
    struct timespec ts[2] = {st->st_atim, st->st_mtim};
    int sfd, dfd, rc;

    if (fchownat(ddir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) != 0)
        return fail(fl, rel, "chown");
    if (!S_ISLNK(st->st_mode) && fchmodat(ddir, name, st->st_mode & 07777, 0) != 0)
        return fail(fl, rel, "chmod");
    if ((sfd = openat(sdir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return fail(fl, rel, "open");
    if ((dfd = openat(ddir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        close(sfd);
        return fail(fl, rel, "open");
    }
    snprintf(s, sizeof(s), "/proc/self/fd/%d", sfd);
    snprintf(d, sizeof(d), "/proc/self/fd/%d", dfd);
    rc = S_ISLNK(st->st_mode) ? 0 : copy_xattrs(fl, s, d, rel);
    close(sfd);
    close(dfd);
    if (rc == 0 && utimensat(ddir, name, ts, AT_SYMLINK_NOFOLLOW) != 0)
        rc = fail(fl, rel, "set the mtime of");
    return rc;
}

static int copy_file(struct flat *fl, int sdir, int ddir, const char *name, const char *rel)
{
    int in = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), out, rc = 0;
    ssize_t n;

    if (in < 0)
        return fail(fl, rel, "open");
    out = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        close(in);
        return fail(fl, rel, "create");
    }
    while ((n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0)) > 0)
        ;
    if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL)) {
        char buf[65536];
        while ((n = read(in, buf, sizeof(buf))) > 0)
            if ((rc = ocisync__write_full(out, buf, (size_t)n)) != 0)
                break;
    }
    if (n < 0 && rc == 0)
        rc = fail(fl, rel, "copy");
    close(in);
    if (close(out) != 0 && rc == 0)
        rc = fail(fl, rel, "write");
    return rc;
}

static int walk(struct flat *fl, int sdir, int ddir, const char *rel);

static int one(struct flat *fl, int sdir, int ddir, const char *name, const char *dir_rel)
{
    char rel[OCI_TAR_PATH_MAX + 256], target[OCI_TAR_PATH_MAX + 1];
    struct stat st, have;
    bool exists;
    int rc = 0;

    snprintf(rel, sizeof(rel), "%s%s%s", dir_rel, dir_rel[0] ? "/" : "", name);
    if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return fail(fl, rel, "look at");
    exists = fstatat(ddir, name, &have, AT_SYMLINK_NOFOLLOW) == 0;
    if (whiteout(fl, sdir, name, &st))
        return rm_at(ddir, name) == 0 ? 0 : fail(fl, rel, "remove");
    if (S_ISDIR(st.st_mode)) {
        int s, d;
        if ((s = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
            return fail(fl, rel, "open");
        /* Not a directory there, or an opaque one here: what was there goes. */
        if (exists && (!S_ISDIR(have.st_mode) || opaque(fl, s))) {
            if (rm_at(ddir, name) != 0) {
                close(s);
                return fail(fl, rel, "remove");
            }
            exists = false;
        }
        if (!exists && mkdirat(ddir, name, 0700) != 0) {
            close(s);
            return fail(fl, rel, "mkdir");
        }
        if ((d = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
            close(s);
            return fail(fl, rel, "open");
        }
        rc = walk(fl, s, d, rel);
        close(s);
        close(d);
        return rc != 0 ? rc : attrs(fl, sdir, ddir, name, &st, rel);
    }
    if (exists && rm_at(ddir, name) != 0)
        return fail(fl, rel, "remove");
    if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
        /* The layer's hardlinks stay links (to the first copy, which is in the tree already). */
        for (size_t i = 0; i < fl->n_seen; i++) {
            if (fl->seen[i].dev == st.st_dev && fl->seen[i].ino == st.st_ino) {
                if (linkat(fl->tree, fl->seen[i].path, ddir, name, 0) != 0)
                    return fail(fl, rel, "link");
                return 0;
            }
        }
        if (fl->n_seen == fl->cap_seen) {
            size_t ncap = fl->cap_seen ? 2 * fl->cap_seen : 64;
            struct seen *ns = realloc(fl->seen, ncap * sizeof(*ns));
            if (ns == NULL)
                return UV_ENOMEM;
            fl->seen = ns;
            fl->cap_seen = ncap;
        }
        if ((fl->seen[fl->n_seen].path = strdup(rel)) == NULL)
            return UV_ENOMEM;
        fl->seen[fl->n_seen].dev = st.st_dev;
        fl->seen[fl->n_seen++].ino = st.st_ino;
    }
    if (S_ISREG(st.st_mode)) {
        rc = copy_file(fl, sdir, ddir, name, rel);
    } else if (S_ISLNK(st.st_mode)) {
        ssize_t n = readlinkat(sdir, name, target, sizeof(target) - 1);
        if (n < 0)
            return fail(fl, rel, "read the link");
        target[n] = '\0';
        if (symlinkat(target, ddir, name) != 0)
            rc = fail(fl, rel, "make the link");
    } else if (S_ISFIFO(st.st_mode)) {
        if (mkfifoat(ddir, name, 0600) != 0)
            rc = fail(fl, rel, "make the fifo");
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
        if (mknodat(ddir, name, st.st_mode & S_IFMT, st.st_rdev) != 0)
            rc = fail(fl, rel, "mknod");
    } else {
        return 0; /* sockets: never in a layer */
    }
    return rc != 0 ? rc : attrs(fl, sdir, ddir, name, &st, rel);
}

static int walk(struct flat *fl, int sdir, int ddir, const char *rel)
{
    int fd = dup(sdir), rc = 0;
    DIR *d;

    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        if (fd >= 0)
            close(fd);
        return fail(fl, rel, "read the directory");
    }
    for (struct dirent *de; rc == 0 && (de = readdir(d)) != NULL;)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            rc = one(fl, dirfd(d), ddir, de->d_name, rel);
    closedir(d);
    return rc;
}

int oci_overlay_flatten(const char *const *layers, size_t n, const char *dest,
                        enum oci_overlay_mode mode, char *err, size_t errlen)
{
    struct flat fl;
    int rc = 0;

    memset(&fl, 0, sizeof(fl));
    fl.mode = mode ? mode : OCI_OVERLAY_ROOT;
    fl.err = err;
    fl.errlen = errlen;
    if ((fl.tree = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return fail(&fl, "", "open the tree");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int s = open(layers[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (s < 0) {
            rc = fail(&fl, layers[i], "open the layer");
            break;
        }
        rc = walk(&fl, s, fl.tree, "");
        /* The root's own attributes: the topmost layer's. */
        if (rc == 0 && fstat(s, &st) == 0 && fchown(fl.tree, st.st_uid, st.st_gid) == 0)
            fchmod(fl.tree, st.st_mode & 07777);
        close(s);
        for (size_t k = 0; k < fl.n_seen; k++)
            free(fl.seen[k].path);
        fl.n_seen = 0; /* hardlinks are within one layer */
    }
    free(fl.seen);
    close(fl.tree);
    return rc;
}
