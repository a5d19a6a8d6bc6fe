/*
 * Layers to overlay directories and back: the extractor (a tar reader whose
 * callbacks write below one directory descriptor, never following a link),
 * the capture of an upper directory, and the snapshot/diff fallback.
 */
#define _GNU_SOURCE /* renameat2, RENAME_NOREPLACE */
#include "oci/overlay.h"

#include "common/msg.h"
#include "common/sysio.h"
#include "oci/unpack.h"
#include "ocisync.h"

#include <uv.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define ERR_QUOTE_MAX 120
#define PATH_BUF (OCI_TAR_PATH_MAX + 64)
/* Bytes of one xattr name Linux allows (XATTR_NAME_MAX) and of a list of them (XATTR_LIST_MAX). */
#define XNAME_MAX 255
#define XLIST_MAX (64 * 1024)
#define XVALUE_MAX (64 * 1024)
#define READ_BUF (256 * 1024)
/* Paths and link targets a snapshot may hold, in bytes. */
#define NAME_BYTES_MAX ((uint64_t)1024 * 1024 * 1024)

static enum oci_overlay_mode mode_of(const struct oci_overlay_opts *o)
{
    return o != NULL && o->mode == OCI_OVERLAY_USERXATTR ? OCI_OVERLAY_USERXATTR : OCI_OVERLAY_ROOT;
}

/* "trusted.overlay." or "user.overlay.": the namespace the overlay mount reads. */
static const char *ovl_prefix(enum oci_overlay_mode m)
{
    return m == OCI_OVERLAY_USERXATTR ? "user.overlay." : "trusted.overlay.";
}

static void ovl_name(enum oci_overlay_mode m, const char *what, char *out, size_t len)
{
    snprintf(out, len, "%s%s", ovl_prefix(m), what);
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* ---------------------------------------------------------------------------------------------
 * Extraction
 */

/* A directory whose mode and mtime are set once everything below it is written. */
struct dir_attr {
    char *path; /* relative to the root, "" for the root; owned */
    uint32_t mode;
    int64_t mtime;
    size_t seq; /* its place in the archive: the last word on a path wins */
};

struct oci_overlay_extractor {
    struct oci_overlay_opts opts;
    enum oci_overlay_mode mode;
    struct oci_tar_reader reader;
    struct oci_hasher hash;
    int parent;         /* the directory dest is in; owned */
    int root;           /* the temporary directory; owned */
    char tmp_name[48];  /* its name in parent */
    char *dest_name;    /* dest's last component; owned */
    char *tmp_path;     /* the temporary directory's path, for removal; owned */
    char *dest;         /* as given, for messages; owned */
    int rc;             /* sticky */
    uint64_t n_entries; /* entries seen */
    uint64_t bytes;     /* content written */
    int fd;             /* the file being written, or -1 */
    uint64_t left;      /* its content still due */
    struct {            /* attributes of the file being written, set when it is complete */
        char path[OCI_TAR_PATH_MAX + 1];
        uint32_t mode, uid, gid;
        int64_t mtime;
        size_t n_xattrs; /* in xcopy */
    } cur;
    unsigned char *xbuf; /* copies of the current file's xattrs (names and values); owned */
    struct oci_tar_xattr xcopy[OCI_TAR_MAX_XATTRS];
    struct dir_attr *dirs; /* owned */
    size_t n_dirs, cap_dirs;
    uint64_t dir_bytes;
    /* The last parent directory opened, kept for the next entry. */
    char cache_path[OCI_TAR_PATH_MAX + 1];
    int cache_fd;
    char msg[512]; /* why a callback refused an entry */
};

static int refuse(struct oci_overlay_extractor *x, int rc, const char *path, const char *fmt,
                  const char *arg)
{
    struct ocisync__clipped c, d;
    char why[256];

    snprintf(why, sizeof(why), fmt, arg ? ocisync__clip(arg, ERR_QUOTE_MAX, &d) : "");
    ocisync__errf(x->msg, sizeof(x->msg), "layer entry \"%s\" %s",
                  ocisync__clip(path, ERR_QUOTE_MAX, &c), why);
    return rc;
}

static int sys_refuse(struct oci_overlay_extractor *x, const char *path, const char *doing)
{
    int rc = ocisync__sys_error();
    char why[160];

    snprintf(why, sizeof(why), "cannot be written (%s: %s)", doing, uv_strerror(rc));
    return refuse(x, rc, path, "%s", why);
}

/*
 * Normalises an archive path in place: no leading "/", no "." or empty
 * components; false for a ".." component. "" is the root.
 */
static bool normalise(char *p)
{
    size_t r = 0, w = 0, len = strlen(p);

    while (r < len) {
        size_t c = strcspn(p + r, "/");

        if (c == 2 && p[r] == '.' && p[r + 1] == '.')
            return false;
        if (c > 0 && !(c == 1 && p[r] == '.')) {
            if (w > 0)
                p[w++] = '/';
            memmove(p + w, p + r, c);
            w += c;
        }
        r += c + 1;
    }
    p[w] = '\0';
    return true;
}

static void close_cache(struct oci_overlay_extractor *x)
{
    if (x->cache_fd >= 0)
        close(x->cache_fd);
    x->cache_fd = -1;
    x->cache_path[0] = '\0';
}

static int add_dir_attr(struct oci_overlay_extractor *x, const char *path, uint32_t mode,
                        int64_t mtime)
{
    size_t len = strlen(path);

    if (x->n_dirs == x->cap_dirs) {
        size_t ncap = x->cap_dirs ? x->cap_dirs * 2 : 64;
        struct dir_attr *v = realloc(x->dirs, ncap * sizeof(*v));

        if (v == NULL)
            return UV_ENOMEM;
        x->dirs = v;
        x->cap_dirs = ncap;
    }
    if (x->dir_bytes + len + 1 > NAME_BYTES_MAX)
        return refuse(x, OCISYNC_ETOOBIG, path, "%sis one directory too many", NULL);
    x->dirs[x->n_dirs].path = strdup(path);
    if (x->dirs[x->n_dirs].path == NULL)
        return UV_ENOMEM;
    x->dirs[x->n_dirs].mode = mode & 07777;
    x->dirs[x->n_dirs].mtime = mtime;
    x->dirs[x->n_dirs].seq = x->n_dirs;
    x->n_dirs++;
    x->dir_bytes += len + 1;
    return 0;
}

/*
 * Opens the directory rel (len bytes) below the root one component at a
 * time, never following a link; missing components are made (0755, 0:0,
 * mtime 0) when make is set. who names the entry in messages. A new
 * descriptor, or a negative code with x->msg set.
 */
static int open_below(struct oci_overlay_extractor *x, const char *rel, size_t len, bool make,
                      const char *who)
{
    char buf[OCI_TAR_PATH_MAX + 1];
    int cur = x->root, fd, rc = 0;
    size_t i = 0;

    memcpy(buf, rel, len);
    buf[len] = '\0';
    if (len == 0) {
        fd = fcntl(x->root, F_DUPFD_CLOEXEC, 0);
        return fd >= 0 ? fd : sys_refuse(x, who, "dup");
    }
    while (i < len) {
        size_t c = strcspn(buf + i, "/");

        buf[i + c] = '\0';
        fd = openat(cur, buf + i, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && make) {
            if (mkdirat(cur, buf + i, 0700) != 0 && errno != EEXIST) {
                rc = sys_refuse(x, who, "make a parent");
                break;
            }
            if (!x->opts.no_chown && fchownat(cur, buf + i, 0, 0, AT_SYMLINK_NOFOLLOW) != 0) {
                rc = sys_refuse(x, who, "chown a parent");
                break;
            }
            rc = add_dir_attr(x, buf, 0755, 0);
            if (rc != 0)
                break;
            fd = openat(cur, buf + i, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0) {
            if (errno == ELOOP || errno == ENOTDIR)
                rc = refuse(x, UV_EINVAL, who,
                            "is below \"%s\", which is not a directory in this layer", buf);
            else
                rc = sys_refuse(x, who, "open a parent");
            break;
        }
        if (cur != x->root)
            close(cur);
        cur = fd;
        buf[i + c] = '/';
        i += c + 1;
    }
    if (rc != 0) {
        if (cur != x->root)
            close(cur);
        return rc;
    }
    return cur;
}

/* The directory holding rel (cached), with *leaf its last component. Negative on error. */
static int parent_of(struct oci_overlay_extractor *x, const char *rel, const char **leaf, bool make)
{
    const char *slash = strrchr(rel, '/');
    size_t len = slash ? (size_t)(slash - rel) : 0;
    int fd;

    *leaf = slash ? slash + 1 : rel;
    if (len == 0)
        return x->root;
    if (x->cache_fd >= 0 && strlen(x->cache_path) == len && memcmp(x->cache_path, rel, len) == 0)
        return x->cache_fd;
    close_cache(x);
    fd = open_below(x, rel, len, make, rel);
    if (fd < 0)
        return fd;
    x->cache_fd = fd;
    memcpy(x->cache_path, rel, len);
    x->cache_path[len] = '\0';
    return fd;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D)
        return rmdir(path) == 0 || errno == ENOENT ? 0 : -1;
    return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

/*
 * Removes the tree at path (a path inside the extractor's own temporary
 * directory, which nothing else writes to; links are not followed).
 */
static int rm_tree(const char *path)
{
    if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0)
        return ocisync__sys_error();
    return 0;
}

/* Removes what is at rel (a directory with everything below it). */
static int remove_at(struct oci_overlay_extractor *x, int pfd, const char *leaf, const char *rel,
                     bool is_dir)
{
    char full[PATH_BUF + OCI_TAR_PATH_MAX];

    if (!is_dir)
        return unlinkat(pfd, leaf, 0) == 0 ? 0 : sys_refuse(x, rel, "remove what was there");
    /* A directory: the parent cached may be below it. */
    snprintf(full, sizeof(full), "%s/%s", x->tmp_path, rel);
    if (x->cache_fd >= 0 && x->cache_fd != pfd)
        close_cache(x);
    if (rm_tree(full) != 0)
        return sys_refuse(x, rel, "remove the directory that was there");
    return 0;
}

/* A whiteout in either form: a character device 0/0, or an empty file with the xattr. */
static bool is_whiteout_at(struct oci_overlay_extractor *x, int pfd, const char *leaf,
                           const struct stat *st)
{
    char name[64];
    bool yes = false;
    int fd;

    if (S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0))
        return true;
    if (!S_ISREG(st->st_mode) || st->st_size != 0)
        return false;
    fd = openat(pfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return false;
    ovl_name(x->mode, "whiteout", name, sizeof(name));
    yes = fgetxattr(fd, name, NULL, 0) >= 0;
    close(fd);
    return yes;
}

/* Sets the overlay's opaque xattr of the directory leaf in pfd to value ("y" or "x"). */
static int set_opaque(struct oci_overlay_extractor *x, int pfd, const char *leaf, const char *rel,
                      const char *value)
{
    char name[64], have[4];
    int fd = leaf[0] ? openat(pfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                     : fcntl(pfd, F_DUPFD_CLOEXEC, 0);
    int rc = 0;

    if (fd < 0)
        return sys_refuse(x, rel, "open the directory to make it opaque");
    ovl_name(x->mode, "opaque", name, sizeof(name));
    /* "y" (opaque) says more than "x" (holds xattr whiteouts): never turn it back. */
    if (value[0] == 'x' && fgetxattr(fd, name, have, sizeof(have)) == 1 && have[0] == 'y')
        goto out;
    if (fsetxattr(fd, name, value, 1, 0) != 0)
        rc = sys_refuse(x, rel,
                        x->mode == OCI_OVERLAY_ROOT
                            ? "set trusted.overlay.opaque, which needs CAP_SYS_ADMIN"
                            : "set user.overlay.opaque");
out:
    close(fd);
    return rc;
}

/* The whiteout of NAME (leaf) in pfd; rel is the whited-out path, for messages. */
static int make_whiteout(struct oci_overlay_extractor *x, int pfd, const char *leaf,
                         const char *rel)
{
    char name[64];
    struct stat st;
    int fd, rc;

    if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        /* The layer has NAME itself: it hides what is below; a directory must not merge. */
        if (S_ISDIR(st.st_mode))
            return set_opaque(x, pfd, leaf, rel, "y");
        return 0;
    }
    if (errno != ENOENT)
        return sys_refuse(x, rel, "look at the path whited out");
    if (mknodat(pfd, leaf, S_IFCHR | 0, makedev(0, 0)) == 0)
        return 0;
    if (errno != EPERM || x->mode != OCI_OVERLAY_USERXATTR) {
        rc = sys_refuse(x, rel, "make the whiteout (a character device 0/0)");
        return rc;
    }
    /* Linux 6.7's other form: an empty file marked as a whiteout, its directory marked "x". */
    fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0)
        return sys_refuse(x, rel, "make the whiteout");
    ovl_name(x->mode, "whiteout", name, sizeof(name));
    rc = fsetxattr(fd, name, "y", 1, 0) == 0 ? 0 : sys_refuse(x, rel, "mark the whiteout");
    close(fd);
    if (rc == 0) {
        char dir[OCI_TAR_PATH_MAX + 1];
        const char *slash = strrchr(rel, '/');
        size_t len = slash ? (size_t)(slash - rel) : 0;

        memcpy(dir, rel, len);
        dir[len] = '\0';
        rc = set_opaque(x, pfd, "", dir, "x");
    }
    return rc;
}

/* A layer's xattr name as stored: the overlay's own namespace escaped (see overlay.h). */
static bool stored_name(const struct oci_overlay_extractor *x, const char *name, char *out,
                        size_t len)
{
    const char *p = ovl_prefix(x->mode);
    size_t plen = strlen(p);
    int n;

    if (has_prefix(name, p))
        n = snprintf(out, len, "%soverlay.%s", p, name + plen);
    else
        n = snprintf(out, len, "%s", name);
    return n > 0 && (size_t)n < len;
}

/* Sets the xattrs of what is open at fd, or (fd < 0) of the non-directory leaf in pfd. */
static int set_xattrs(struct oci_overlay_extractor *x, int fd, int pfd, const char *leaf,
                      const char *rel, const struct oci_tar_xattr *xa, size_t n)
{
    char name[XNAME_MAX + 32], proc[64 + XNAME_MAX + 8];

    for (size_t i = 0; i < n; i++) {
        int r;

        if (!stored_name(x, xa[i].name, name, sizeof(name)) || strlen(name) > XNAME_MAX)
            return refuse(x, UV_EINVAL, rel, "has an xattr name that is too long (%s)", xa[i].name);
        if (fd >= 0) {
            r = fsetxattr(fd, name, xa[i].value, xa[i].len, 0);
        } else {
            /* A link, device or fifo cannot be opened for this: its name below our directory. */
            snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", pfd, leaf);
            r = lsetxattr(proc, name, xa[i].value, xa[i].len, 0);
        }
        if (r != 0) {
            char doing[XNAME_MAX + 32];

            snprintf(doing, sizeof(doing), "set the xattr %s", name);
            return sys_refuse(x, rel, doing);
        }
    }
    return 0;
}

static void times_of(int64_t mtime, struct timespec ts[2])
{
    ts[0].tv_sec = ts[1].tv_sec = (time_t)mtime;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
}

/* Owner, mode, xattrs and mtime of a complete file, in that order (chown clears some). */
static int finish_file(struct oci_overlay_extractor *x)
{
    struct timespec ts[2];
    int rc = 0;

    if (!x->opts.no_chown && fchown(x->fd, x->cur.uid, x->cur.gid) != 0)
        rc = sys_refuse(x, x->cur.path, "chown");
    if (rc == 0 && fchmod(x->fd, x->cur.mode) != 0)
        rc = sys_refuse(x, x->cur.path, "chmod");
    if (rc == 0)
        rc = set_xattrs(x, x->fd, -1, NULL, x->cur.path, x->xcopy, x->cur.n_xattrs);
    times_of(x->cur.mtime, ts);
    if (rc == 0 && futimens(x->fd, ts) != 0)
        rc = sys_refuse(x, x->cur.path, "set the mtime");
    if (close(x->fd) != 0 && rc == 0)
        rc = sys_refuse(x, x->cur.path, "close");
    x->fd = -1;
    return rc;
}

/* Keeps a copy of the entry's xattrs for when its content is complete. */
static int keep_xattrs(struct oci_overlay_extractor *x, const struct oci_tar_entry *e)
{
    size_t bytes = 0, off = 0;

    free(x->xbuf);
    x->xbuf = NULL;
    x->cur.n_xattrs = 0;
    for (size_t i = 0; i < e->n_xattrs; i++)
        bytes += strlen(e->xattrs[i].name) + 1 + e->xattrs[i].len;
    if (e->n_xattrs == 0)
        return 0;
    x->xbuf = malloc(bytes);
    if (x->xbuf == NULL)
        return UV_ENOMEM;
    for (size_t i = 0; i < e->n_xattrs; i++) {
        size_t nlen = strlen(e->xattrs[i].name) + 1;

        x->xcopy[i].name = (char *)x->xbuf + off;
        memcpy(x->xbuf + off, e->xattrs[i].name, nlen);
        off += nlen;
        x->xcopy[i].value = x->xbuf + off;
        if (e->xattrs[i].len > 0)
            memcpy(x->xbuf + off, e->xattrs[i].value, e->xattrs[i].len);
        x->xcopy[i].len = e->xattrs[i].len;
        off += e->xattrs[i].len;
    }
    x->cur.n_xattrs = e->n_xattrs;
    return 0;
}

/* Attributes of a special file or symlink just made as leaf in pfd. */
static int finish_node(struct oci_overlay_extractor *x, int pfd, const char *leaf, const char *rel,
                       const struct oci_tar_entry *e)
{
    struct timespec ts[2];
    int rc;

    if (!x->opts.no_chown && fchownat(pfd, leaf, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) != 0)
        return sys_refuse(x, rel, "chown");
    /* A link has no mode of its own; what else is here is what we just made, not a link. */
    if (e->type != '2' && fchmodat(pfd, leaf, e->mode & 07777, 0) != 0)
        return sys_refuse(x, rel, "chmod");
    rc = set_xattrs(x, -1, pfd, leaf, rel, e->xattrs, e->n_xattrs);
    if (rc != 0)
        return rc;
    times_of(e->mtime, ts);
    if (utimensat(pfd, leaf, ts, AT_SYMLINK_NOFOLLOW) != 0)
        return sys_refuse(x, rel, "set the mtime");
    return 0;
}

static int hardlink(struct oci_overlay_extractor *x, int pfd, const char *leaf, const char *rel,
                    const char *target)
{
    char t[OCI_TAR_PATH_MAX + 1];
    const char *tleaf;
    struct stat st;
    int tfd, rc = 0;

    snprintf(t, sizeof(t), "%s", target);
    if (!normalise(t) || t[0] == '\0')
        return refuse(x, UV_EINVAL, rel, "is a hardlink to \"%s\", outside the layer", target);
    /* The target's directory is opened apart from the cache, which holds the link's. */
    {
        const char *slash = strrchr(t, '/');
        size_t len = slash ? (size_t)(slash - t) : 0;

        tleaf = slash ? slash + 1 : t;
        tfd = len == 0 ? x->root : open_below(x, t, len, false, rel);
        if (tfd < 0) {
            if (tfd == UV_ENOENT)
                return refuse(x, UV_EINVAL, rel,
                              "is a hardlink to \"%s\", which is not in this layer", target);
            return tfd;
        }
    }
    if (fstatat(tfd, tleaf, &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISDIR(st.st_mode) ||
        is_whiteout_at(x, tfd, tleaf, &st)) {
        rc = refuse(x, UV_EINVAL, rel, "is a hardlink to \"%s\", which is not a file of this layer",
                    target);
    } else if (linkat(tfd, tleaf, pfd, leaf, 0) != 0) {
        rc = sys_refuse(x, rel, "link");
    }
    if (tfd != x->root)
        close(tfd);
    return rc;
}

static int on_entry_(struct oci_overlay_extractor *x, const struct oci_tar_entry *e)
{
    char rel[OCI_TAR_PATH_MAX + 1];
    const char *leaf, *base;
    struct stat st;
    bool exists, is_dir_entry = e->type == '5';
    int pfd, rc;

    if (++x->n_entries > OCI_TAR_MAX_ENTRIES)
        return refuse(x, OCISYNC_ETOOBIG, e->path, "is one entry too many (the cap is %s)",
                      "4194304");
    snprintf(rel, sizeof(rel), "%s", e->path);
    if (!normalise(rel))
        return refuse(x, UV_EINVAL, e->path, "has a \"..\" component%s", NULL);
    if (e->size > 0 && x->opts.max_bytes > 0 && e->size > x->opts.max_bytes - x->bytes)
        return refuse(x, OCISYNC_ETOOBIG, e->path,
                      "would take the layer over its cap on content bytes%s", NULL);
    /* Below a whiteout name: aufs's bookkeeping is skipped, anything else is nonsense. */
    for (const char *c = rel; (c = strstr(c, ".wh.")) != NULL; c++) {
        bool starts = c == rel || c[-1] == '/';
        bool inner = strchr(c, '/') != NULL;

        if (!starts || !inner)
            continue;
        if (has_prefix(c, ".wh..wh."))
            return 0;
        return refuse(x, UV_EINVAL, e->path, "is below a whiteout%s", NULL);
    }
    if (rel[0] == '\0') {
        if (!is_dir_entry)
            return refuse(x, UV_EINVAL, e->path, "is the layer's root but not a directory%s", NULL);
        if (!x->opts.no_chown && fchown(x->root, e->uid, e->gid) != 0)
            return sys_refuse(x, "/", "chown");
        rc = set_xattrs(x, x->root, -1, NULL, "/", e->xattrs, e->n_xattrs);
        return rc != 0 ? rc : add_dir_attr(x, "", e->mode, e->mtime);
    }
    base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    if (has_prefix(base, ".wh.")) {
        pfd = parent_of(x, rel, &leaf, true);
        if (pfd < 0)
            return pfd;
        if (strcmp(base, ".wh..wh..opq") == 0) {
            char dir[OCI_TAR_PATH_MAX + 1];

            snprintf(dir, sizeof(dir), "%.*s", (int)(base > rel ? base - rel - 1 : 0), rel);
            return set_opaque(x, pfd, "", dir, "y");
        }
        if (has_prefix(base, ".wh..wh."))
            return 0; /* aufs's own (.wh..wh.plnk and friends) */
        leaf = base + 4;
        if (leaf[0] == '\0' || strcmp(leaf, ".") == 0 || strcmp(leaf, "..") == 0)
            return refuse(x, UV_EINVAL, e->path, "is a whiteout of no name%s", NULL);
        memmove((char *)base, leaf, strlen(leaf) + 1);
        return make_whiteout(x, pfd, base, rel);
    }

    pfd = parent_of(x, rel, &leaf, true);
    if (pfd < 0)
        return pfd;
    exists = fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (!exists && errno != ENOENT)
        return sys_refuse(x, rel, "look at what is there");
    if (exists) {
        bool wh = is_whiteout_at(x, pfd, leaf, &st);

        if (is_dir_entry && S_ISDIR(st.st_mode)) {
            /* A directory again: its attributes change, what is in it stays. */
            if (!x->opts.no_chown && fchownat(pfd, leaf, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) != 0)
                return sys_refuse(x, rel, "chown");
            if (e->n_xattrs > 0) {
                int dfd = openat(pfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

                if (dfd < 0)
                    return sys_refuse(x, rel, "open");
                rc = set_xattrs(x, dfd, -1, NULL, rel, e->xattrs, e->n_xattrs);
                close(dfd);
                if (rc != 0)
                    return rc;
            }
            return add_dir_attr(x, rel, e->mode, e->mtime);
        }
        rc = remove_at(x, pfd, leaf, rel, S_ISDIR(st.st_mode));
        if (rc != 0)
            return rc;
        /* What the whiteout removed below must not show through the layer's new directory. */
        if (wh && is_dir_entry) {
            if (mkdirat(pfd, leaf, 0700) != 0)
                return sys_refuse(x, rel, "mkdir");
            rc = set_opaque(x, pfd, leaf, rel, "y");
            if (rc != 0)
                return rc;
            goto dir_attrs;
        }
    }

    switch (e->type) {
    case '5':
        if (mkdirat(pfd, leaf, 0700) != 0)
            return sys_refuse(x, rel, "mkdir");
    dir_attrs : {
        int dfd = openat(pfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        if (dfd < 0)
            return sys_refuse(x, rel, "open");
        rc = 0;
        if (!x->opts.no_chown && fchown(dfd, e->uid, e->gid) != 0)
            rc = sys_refuse(x, rel, "chown");
        if (rc == 0)
            rc = set_xattrs(x, dfd, -1, NULL, rel, e->xattrs, e->n_xattrs);
        close(dfd);
        return rc != 0 ? rc : add_dir_attr(x, rel, e->mode, e->mtime);
    }
    case '0':
    case '7':
        x->fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (x->fd < 0)
            return sys_refuse(x, rel, "create");
        snprintf(x->cur.path, sizeof(x->cur.path), "%s", rel);
        x->cur.mode = e->mode & 07777;
        x->cur.uid = e->uid;
        x->cur.gid = e->gid;
        x->cur.mtime = e->mtime;
        x->left = e->size;
        rc = keep_xattrs(x, e);
        if (rc == 0 && e->size == 0)
            rc = finish_file(x);
        return rc;
    case '1':
        return hardlink(x, pfd, leaf, rel, e->linkname);
    case '2':
        if (symlinkat(e->linkname, pfd, leaf) != 0)
            return sys_refuse(x, rel, "make the symlink");
        return finish_node(x, pfd, leaf, rel, e);
    case '3':
    case '4':
        if (e->type == '3' && e->devmajor == 0 && e->devminor == 0)
            return refuse(x, UV_EINVAL, rel,
                          "is a character device 0/0, which overlayfs would read as a "
                          "whiteout%s",
                          NULL);
        if (mknodat(pfd, leaf, (e->type == '3' ? S_IFCHR : S_IFBLK) | 0600,
                    makedev(e->devmajor, e->devminor)) != 0)
            return sys_refuse(x, rel, errno == EPERM ? "mknod, which needs CAP_MKNOD" : "mknod");
        return finish_node(x, pfd, leaf, rel, e);
    case '6':
        if (mkfifoat(pfd, leaf, 0600) != 0)
            return sys_refuse(x, rel, "make the fifo");
        return finish_node(x, pfd, leaf, rel, e);
    default: {
        char t[8];

        snprintf(t, sizeof(t), "'%c'", e->type >= 0x20 && e->type < 0x7f ? e->type : '?');
        return refuse(x, UV_EINVAL, rel, "has the tar type %s, which is not supported", t);
    }
    }
}

static int on_entry(void *arg, const struct oci_tar_entry *e)
{
    struct oci_overlay_extractor *x = arg;

    x->msg[0] = '\0';
    return on_entry_(x, e);
}

static int on_data(void *arg, const void *p, size_t n)
{
    struct oci_overlay_extractor *x = arg;
    int rc;

    if (x->fd < 0)
        return 0; /* content of an entry that was skipped */
    x->bytes += n;
    rc = ocisync__write_full(x->fd, p, n);
    if (rc != 0) {
        errno = -rc;
        return sys_refuse(x, x->cur.path, "write");
    }
    x->left -= n;
    return x->left == 0 ? finish_file(x) : 0;
}

static void discard(struct oci_overlay_extractor *x)
{
    if (x == NULL)
        return;
    if (x->fd >= 0)
        close(x->fd);
    close_cache(x);
    if (x->root >= 0)
        close(x->root);
    if (x->tmp_path != NULL && x->root >= 0)
        rm_tree(x->tmp_path);
    if (x->parent >= 0)
        close(x->parent);
    oci_tar_reader_dispose(&x->reader);
    oci_hasher_dispose(&x->hash);
    for (size_t i = 0; i < x->n_dirs; i++)
        free(x->dirs[i].path);
    free(x->dirs);
    free(x->xbuf);
    free(x->tmp_path);
    free(x->dest_name);
    free(x->dest);
    free(x);
}

void oci_overlay_extract_abort(struct oci_overlay_extractor *x)
{
    discard(x);
}

int oci_overlay_extract_begin(struct oci_overlay_extractor **out, const char *dest,
                              const struct oci_overlay_opts *opts, char *err, size_t errlen)
{
    struct oci_overlay_extractor *x;
    struct ocisync__clipped c;
    char parent[PATH_BUF], hex[17];
    const char *slash;
    size_t len;
    int rc;

    *out = NULL;
    len = dest ? strlen(dest) : 0;
    while (len > 1 && dest[len - 1] == '/')
        len--;
    if (len == 0 || len >= sizeof(parent)) {
        ocisync__errf(err, errlen, "the directory to extract a layer into is empty or too long");
        return OCISYNC_EUSAGE;
    }
    x = calloc(1, sizeof(*x));
    if (x == NULL)
        return UV_ENOMEM;
    x->parent = x->root = x->fd = x->cache_fd = -1;
    if (opts != NULL)
        x->opts = *opts;
    x->opts.excludes = NULL;
    x->mode = mode_of(opts);
    x->dest = strndup(dest, len);
    if (x->dest == NULL)
        goto nomem;
    slash = strrchr(x->dest, '/');
    if (slash == NULL)
        snprintf(parent, sizeof(parent), ".");
    else
        snprintf(parent, sizeof(parent), "%.*s", slash == x->dest ? 1 : (int)(slash - x->dest),
                 x->dest);
    x->dest_name = strdup(slash ? slash + 1 : x->dest);
    if (x->dest_name == NULL)
        goto nomem;
    if (strcmp(x->dest_name, ".") == 0 || strcmp(x->dest_name, "..") == 0) {
        ocisync__errf(err, errlen, "cannot extract a layer into \"%s\": name a new directory",
                      ocisync__clip(x->dest, ERR_QUOTE_MAX, &c));
        rc = OCISYNC_EUSAGE;
        goto fail;
    }
    x->parent = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (x->parent < 0) {
        rc = ocisync__sys_error();
        ocisync__errf(err, errlen, "cannot extract a layer into \"%s\": %s",
                      ocisync__clip(x->dest, ERR_QUOTE_MAX, &c), uv_strerror(rc));
        goto fail;
    }
    if (faccessat(x->parent, x->dest_name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
        ocisync__errf(err, errlen, "cannot extract a layer into \"%s\": it exists",
                      ocisync__clip(x->dest, ERR_QUOTE_MAX, &c));
        rc = UV_EEXIST;
        goto fail;
    }
    rc = ocisync__random_hex16(hex);
    if (rc != 0)
        goto fail;
    snprintf(x->tmp_name, sizeof(x->tmp_name), ".tmp-overlay-%s", hex);
    if (mkdirat(x->parent, x->tmp_name, 0700) != 0) {
        rc = ocisync__sys_error();
        ocisync__errf(err, errlen, "cannot make a directory next to \"%s\": %s",
                      ocisync__clip(x->dest, ERR_QUOTE_MAX, &c), uv_strerror(rc));
        goto fail;
    }
    if (asprintf(&x->tmp_path, "%s/%s", parent, x->tmp_name) < 0) {
        x->tmp_path = NULL;
        unlinkat(x->parent, x->tmp_name, AT_REMOVEDIR);
        goto nomem;
    }
    x->root = openat(x->parent, x->tmp_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (x->root < 0) {
        rc = ocisync__sys_error();
        unlinkat(x->parent, x->tmp_name, AT_REMOVEDIR);
        ocisync__errf(err, errlen, "cannot open the directory made next to \"%s\": %s",
                      ocisync__clip(x->dest, ERR_QUOTE_MAX, &c), uv_strerror(rc));
        goto fail;
    }
    rc = oci_hasher_init(&x->hash, OCI_DIGEST_SHA256);
    if (rc == 0)
        rc = oci_tar_reader_init(&x->reader, on_entry, on_data, x);
    if (rc == 0)
        rc = add_dir_attr(x, "", 0755, 0);
    if (rc != 0)
        goto fail;
    *out = x;
    return 0;

nomem:
    rc = UV_ENOMEM;
    ocisync__errf(err, errlen, "out of memory");
fail:
    discard(x);
    return rc;
}

int oci_overlay_extract_feed(struct oci_overlay_extractor *x, const void *p, size_t n, char *err,
                             size_t errlen)
{
    struct ocisync__clipped c;
    int rc;

    if (x->rc != 0) {
        ocisync__errf(err, errlen, "extracting into \"%s\" already failed: %s",
                      ocisync__clip(x->dest, ERR_QUOTE_MAX, &c), ocisync_strerror(x->rc));
        return x->rc;
    }
    oci_hasher_update(&x->hash, p, n);
    rc = oci_tar_reader_feed(&x->reader, p, n, err, errlen);
    if (rc != 0) {
        /* The callbacks' own sentence says more than the reader's "tar entry X: error". */
        if (x->msg[0] != '\0')
            ocisync__errf(err, errlen, "%s", x->msg);
        x->rc = rc;
    }
    return rc;
}

/* Deepest first (a path before its parents), and the latest entry of a path first. */
static int cmp_dir_desc(const void *a, const void *b)
{
    const struct dir_attr *x = a, *y = b;
    int c = strcmp(y->path, x->path);

    return c != 0 ? c : x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

/* Modes and mtimes of the directories, deepest first; the last word on a path wins. */
static int set_dir_attrs(struct oci_overlay_extractor *x, char *err, size_t errlen)
{
    struct ocisync__clipped c;

    qsort(x->dirs, x->n_dirs, sizeof(*x->dirs), cmp_dir_desc);
    for (size_t i = 0; i < x->n_dirs; i++) {
        const struct dir_attr *d = &x->dirs[i];
        struct timespec ts[2];
        int fd = open_below(x, d->path, strlen(d->path), false, d->path);

        if (fd < 0) {
            if (fd == UV_ENOENT || fd == UV_EINVAL)
                continue; /* removed or replaced by a later entry */
            ocisync__errf(err, errlen, "%s", x->msg);
            return fd;
        }
        times_of(d->mtime, ts);
        if (fchmod(fd, d->mode) != 0 || futimens(fd, ts) != 0) {
            int rc = ocisync__sys_error();

            close(fd);
            ocisync__errf(err, errlen, "cannot set the mode and mtime of \"%s\" in \"%s\": %s",
                          ocisync__clip(d->path[0] ? d->path : "/", ERR_QUOTE_MAX, &c), x->dest,
                          uv_strerror(rc));
            return rc;
        }
        close(fd);
        /* The next entries of this path are older: skip them. */
        while (i + 1 < x->n_dirs && strcmp(x->dirs[i + 1].path, d->path) == 0)
            i++;
    }
    return 0;
}

int oci_overlay_extract_end(struct oci_overlay_extractor *x, const struct oci_digest *expect,
                            struct oci_digest *diff_id, char *err, size_t errlen)
{
    struct ocisync__clipped c;
    struct oci_digest d;
    int rc = x->rc;

    if (rc != 0) {
        ocisync__errf(err, errlen, "extracting into \"%s\" already failed: %s",
                      ocisync__clip(x->dest, ERR_QUOTE_MAX, &c), ocisync_strerror(rc));
        goto out;
    }
    rc = oci_tar_reader_finish(&x->reader, err, errlen);
    if (rc != 0)
        goto out;
    rc = oci_hasher_final(&x->hash, &d);
    if (rc != 0) {
        ocisync__errf(err, errlen, "cannot hash the layer: %s", uv_strerror(rc));
        goto out;
    }
    if (diff_id != NULL)
        *diff_id = d;
    if (expect != NULL && !oci_digest_equal(expect, &d)) {
        ocisync__errf(err, errlen, "the layer extracted for \"%s\" is %s, not %s",
                      ocisync__clip(x->dest, ERR_QUOTE_MAX, &c), d.str, expect->str);
        rc = OCISYNC_EDIGESTMISMATCH;
        goto out;
    }
    close_cache(x);
    rc = set_dir_attrs(x, err, errlen);
    if (rc != 0)
        goto out;
    if (renameat2(x->parent, x->tmp_name, x->parent, x->dest_name, RENAME_NOREPLACE) != 0) {
        rc = ocisync__sys_error();
        ocisync__errf(err, errlen, "cannot move the extracted layer to \"%s\": %s",
                      ocisync__clip(x->dest, ERR_QUOTE_MAX, &c), uv_strerror(rc));
        goto out;
    }
    close(x->root);
    x->root = -1; /* nothing to remove any more */
out:
    discard(x);
    return rc;
}

static int to_extractor(void *arg, const void *p, size_t n, char *err, size_t errlen)
{
    return oci_overlay_extract_feed(arg, p, n, err, errlen);
}

int oci_overlay_extract(const char *blob, const struct oci_digest *expect, const char *dest,
                        const struct oci_overlay_opts *opts, struct oci_digest *diff_id, char *err,
                        size_t errlen)
{
    struct oci_overlay_extractor *x = NULL;
    struct ocisync__clipped c;
    unsigned char head[4] = {0}, *buf = NULL;
    struct oci_unpack u;
    struct stat st;
    char what[OCI_UNPACK_WHAT_MAX];
    int fd, rc;

    memset(&u, 0, sizeof(u));
    fd = open(blob, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || pread(fd, head, sizeof(head), 0) < 0) {
        rc = ocisync__sys_error();
        ocisync__errf(err, errlen, "cannot read the layer \"%s\": %s",
                      ocisync__clip(blob, ERR_QUOTE_MAX, &c), uv_strerror(rc));
        goto out;
    }
    buf = malloc(READ_BUF);
    if (buf == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    rc = oci_overlay_extract_begin(&x, dest, opts, err, errlen);
    if (rc != 0)
        goto out;
    snprintf(what, sizeof(what), "layer \"%s\"", ocisync__clip(blob, ERR_QUOTE_MAX, &c));
    rc = oci_unpack_init(&u, oci_comp_of_head(head), (uint64_t)st.st_size, to_extractor, x, what);
    while (rc == 0) {
        ssize_t n;

        do {
            n = read(fd, buf, READ_BUF);
        } while (n < 0 && errno == EINTR);
        if (n == 0)
            break;
        if (n < 0) {
            rc = ocisync__sys_error();
            ocisync__errf(err, errlen, "cannot read the layer \"%s\": %s",
                          ocisync__clip(blob, ERR_QUOTE_MAX, &c), uv_strerror(rc));
            break;
        }
        rc = oci_unpack_feed(&u, buf, (size_t)n, err, errlen);
    }
    if (rc == 0)
        rc = oci_unpack_finish(&u, NULL, err, errlen);
    if (rc == 0) {
        rc = oci_overlay_extract_end(x, expect, diff_id, err, errlen);
        x = NULL;
    }
out:
    oci_overlay_extract_abort(x);
    oci_unpack_dispose(&u);
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Walking a directory: capture, snapshot, diff
 */

struct walker {
    const struct oci_overlay_opts *opts;
    enum oci_overlay_mode mode;
    char local[PATH_BUF + OCI_TAR_PATH_MAX]; /* the root, then "/" and rel */
    size_t root_len;
    size_t n; /* entries visited */
    /* Called for each entry (rel: relative to the root, without a trailing "/"). */
    int (*visit)(struct walker *w, const char *rel, const struct stat *st);
    void *arg;
    char *err;
    size_t errlen;
};

static int walk_fail(struct walker *w, const char *doing, int rc)
{
    struct ocisync__clipped c;

    ocisync__errf(w->err, w->errlen, "cannot %s \"%s\": %s", doing,
                  ocisync__clip(w->local, ERR_QUOTE_MAX, &c), uv_strerror(rc));
    return rc;
}

static bool excluded(const struct oci_overlay_opts *o, const char *rel)
{
    for (size_t i = 0; o != NULL && i < o->n_excludes && i < OCI_OVERLAY_MAX_EXCLUDES; i++) {
        const char *e = o->excludes[i];
        size_t len;

        while (*e == '/')
            e++;
        len = strlen(e);
        while (len > 0 && e[len - 1] == '/')
            len--;
        if (len > 0 && strlen(rel) == len && memcmp(rel, e, len) == 0)
            return true;
    }
    return false;
}

/* Whether rel or a directory above it is excluded. */
static bool excluded_tree(const struct oci_overlay_opts *o, const char *rel)
{
    char buf[OCI_TAR_PATH_MAX + 1];
    char *slash;

    snprintf(buf, sizeof(buf), "%s", rel);
    for (;;) {
        if (excluded(o, buf))
            return true;
        slash = strrchr(buf, '/');
        if (slash == NULL)
            return false;
        *slash = '\0';
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Visits what is below w->local (which is rel, len bytes, below the root), names in order. */
static int walk_below(struct walker *w, size_t len)
{
    char **names = NULL;
    size_t n = 0;
    int rc = ocisync__dir_names(
        w->local, OCI_TAR_MAX_ENTRIES - (w->n < OCI_TAR_MAX_ENTRIES ? w->n : OCI_TAR_MAX_ENTRIES),
        &names, &n);

    if (rc == OCISYNC_ETOOBIG) {
        ocisync__errf(w->err, w->errlen, "the layer would have more than %u entries",
                      OCI_TAR_MAX_ENTRIES);
        return rc;
    }
    if (rc != 0)
        return walk_fail(w, "read the directory", rc);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t nlen = strlen(names[i]);
        const char *rel;
        struct stat st;

        if (len + 1 + nlen > OCI_TAR_PATH_MAX) {
            ocisync__errf(w->err, w->errlen, "a path under \"%s\" is longer than %d bytes",
                          w->local, OCI_TAR_PATH_MAX);
            rc = OCISYNC_ETOOBIG;
            break;
        }
        w->local[w->root_len + len] = '/';
        memcpy(w->local + w->root_len + len + 1, names[i], nlen + 1);
        rel = w->local + w->root_len + 1;
        if (excluded(w->opts, rel))
            goto next;
        if (lstat(w->local, &st) != 0) {
            rc = walk_fail(w, "read", ocisync__sys_error());
            break;
        }
        w->n++;
        rc = w->visit(w, rel, &st);
        if (rc == 0 && S_ISDIR(st.st_mode))
            rc = walk_below(w, len + 1 + nlen);
    next:
        w->local[w->root_len + len] = '\0';
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int walk(struct walker *w, const char *root, struct stat *root_st)
{
    size_t len = strlen(root);

    while (len > 1 && root[len - 1] == '/')
        len--;
    if (len == 0 || len >= PATH_BUF) {
        ocisync__errf(w->err, w->errlen, "the directory to read a layer from is empty or too long");
        return OCISYNC_EUSAGE;
    }
    memcpy(w->local, root, len);
    w->local[len] = '\0';
    w->root_len = len;
    if (lstat(w->local, root_st) != 0)
        return walk_fail(w, "read", ocisync__sys_error());
    if (!S_ISDIR(root_st->st_mode))
        return walk_fail(w, "read", UV_ENOTDIR);
    return walk_below(w, 0);
}

/*
 * The xattrs of w->local, as a layer holds them: the overlay's own left
 * out (those it escaped unescaped), security.selinux left out. *out is
 * malloc'ed (names and values in one block after the array).
 */
static int read_xattrs(struct walker *w, struct oci_tar_xattr **out, size_t *n_out)
{
    char *list = NULL, *p;
    const char *pre = ovl_prefix(w->mode);
    size_t plen = strlen(pre);
    ssize_t llen;
    struct oci_tar_xattr *v = NULL;
    size_t n = 0;
    int rc = 0;

    *out = NULL;
    *n_out = 0;
    llen = llistxattr(w->local, NULL, 0);
    if (llen < 0) {
        if (errno == ENOTSUP)
            return 0;
        return walk_fail(w, "list the xattrs of", ocisync__sys_error());
    }
    if (llen == 0)
        return 0;
    if (llen > XLIST_MAX)
        return walk_fail(w, "list the xattrs of", OCISYNC_ETOOBIG);
    list = malloc((size_t)llen + 1);
    v = calloc(OCI_TAR_MAX_XATTRS, sizeof(*v));
    if (list == NULL || v == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    llen = llistxattr(w->local, list, (size_t)llen);
    if (llen < 0) {
        rc = walk_fail(w, "list the xattrs of", ocisync__sys_error());
        goto out;
    }
    list[llen] = '\0';
    for (p = list; p < list + llen; p += strlen(p) + 1) {
        const char *name = p;
        char *kept;
        ssize_t vlen;

        if (strcmp(p, "security.selinux") == 0)
            continue;
        if (has_prefix(p, pre)) {
            if (!has_prefix(p + plen, "overlay."))
                continue; /* the overlay's own: opaque, origin, impure, whiteout ... */
            name = NULL;  /* escaped: the layer's "PREFIX" + what follows "overlay." */
        }
        if (n == OCI_TAR_MAX_XATTRS) {
            rc = walk_fail(w, "read the xattrs of", OCISYNC_ETOOBIG);
            goto out;
        }
        vlen = lgetxattr(w->local, p, NULL, 0);
        if (vlen < 0 && errno == ENODATA)
            continue;
        if (vlen < 0 || vlen > XVALUE_MAX) {
            rc = walk_fail(w, "read the xattrs of",
                           vlen < 0 ? ocisync__sys_error() : OCISYNC_ETOOBIG);
            goto out;
        }
        if (name == NULL) {
            kept = malloc(strlen(p));
            if (kept != NULL)
                snprintf(kept, strlen(p), "%s%s", pre, p + plen + strlen("overlay."));
        } else {
            kept = strdup(name);
        }
        v[n].name = kept;
        v[n].value = malloc((size_t)vlen + 1);
        n++;
        if (kept == NULL || v[n - 1].value == NULL) {
            rc = UV_ENOMEM;
            goto out;
        }
        vlen = lgetxattr(w->local, p, v[n - 1].value, (size_t)vlen);
        if (vlen < 0) {
            rc = walk_fail(w, "read the xattrs of", ocisync__sys_error());
            goto out;
        }
        v[n - 1].len = (size_t)vlen;
    }
out:
    free(list);
    if (rc != 0 || n == 0) {
        for (size_t i = 0; i < n; i++) {
            free(v[i].name);
            free(v[i].value);
        }
        free(v);
        return rc;
    }
    *out = v;
    *n_out = n;
    return 0;
}

static void free_xattrs(struct oci_tar_xattr *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].value);
    }
    free(v);
}

static int64_t clamp(const struct oci_overlay_opts *o, int64_t t)
{
    return o != NULL && o->clamp_mtime && t > o->mtime_max ? o->mtime_max : t;
}

/* Whether w->local (st) is a whiteout of the overlay, either form. */
static bool local_whiteout(struct walker *w, const struct stat *st)
{
    char name[64];

    if (S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0))
        return true;
    if (!S_ISREG(st->st_mode) || st->st_size != 0)
        return false;
    ovl_name(w->mode, "whiteout", name, sizeof(name));
    return lgetxattr(w->local, name, NULL, 0) >= 0;
}

static bool local_opaque(struct walker *w)
{
    char name[64], v[4];

    ovl_name(w->mode, "opaque", name, sizeof(name));
    return lgetxattr(w->local, name, v, sizeof(v)) == 1 && v[0] == 'y';
}

/* The mtime of the directory holding rel (the root's for a top-level path), clamped. */
static int64_t parent_mtime(struct walker *w, size_t rel_len)
{
    struct stat st;
    char *slash;
    char save;
    int64_t t = 0;

    (void)rel_len;
    slash = strrchr(w->local + w->root_len, '/');
    save = *slash;
    *slash = '\0';
    if (lstat(w->local, &st) == 0)
        t = (int64_t)st.st_mtime;
    *slash = save;
    return clamp(w->opts, t);
}

/* Adds a whiteout or opaque marker named path (".../.wh.NAME"). */
static int add_marker(struct oci_tar_plan *plan, const char *path, int64_t mtime, char *err,
                      size_t errlen)
{
    struct oci_tar_plan_entry e;

    memset(&e, 0, sizeof(e));
    e.path = (char *)path;
    e.type = '0';
    e.mtime = mtime;
    return oci_tar_plan_add(plan, &e, err, errlen);
}

static int marker_path(const char *rel, const char *what, char *out, size_t len, char *err,
                       size_t errlen)
{
    const char *slash = strrchr(rel, '/');
    int n;

    if (strcmp(what, ".wh..wh..opq") == 0)
        n = rel[0] ? snprintf(out, len, "%s/%s", rel, what) : snprintf(out, len, "%s", what);
    else if (slash != NULL)
        n = snprintf(out, len, "%.*s/.wh.%s", (int)(slash - rel), rel, slash + 1);
    else
        n = snprintf(out, len, ".wh.%s", rel);
    if (n < 0 || (size_t)n >= len || (size_t)n > OCI_TAR_PATH_MAX) {
        ocisync__errf(err, errlen, "the whiteout of \"%.*s...\" would be longer than %d bytes",
                      ERR_QUOTE_MAX, rel, OCI_TAR_PATH_MAX);
        return OCISYNC_ETOOBIG;
    }
    return 0;
}

/* Adds the entry for w->local (rel, st) as it is on disk. */
static int add_local(struct walker *w, struct oci_tar_plan *plan, const char *rel,
                     const struct stat *st)
{
    struct oci_tar_plan_entry e;
    char path[OCI_TAR_PATH_MAX + 2], target[OCI_TAR_PATH_MAX + 1];
    int rc;

    memset(&e, 0, sizeof(e));
    e.path = path;
    e.mode = (uint32_t)(st->st_mode & 07777);
    e.uid = (uint32_t)st->st_uid;
    e.gid = (uint32_t)st->st_gid;
    if (w->opts != NULL && w->opts->map_owner != NULL)
        w->opts->map_owner(w->opts->map_arg, &e.uid, &e.gid);
    e.mtime = clamp(w->opts, (int64_t)st->st_mtime);
    e.dev = (uint64_t)st->st_dev;
    e.ino = (uint64_t)st->st_ino;
    e.nlink = (uint64_t)st->st_nlink;
    snprintf(path, sizeof(path), "%s%s", rel, S_ISDIR(st->st_mode) ? "/" : "");
    if (S_ISREG(st->st_mode)) {
        e.type = '0';
        e.src = w->local;
        e.size = (uint64_t)st->st_size;
    } else if (S_ISDIR(st->st_mode)) {
        e.type = '5';
    } else if (S_ISLNK(st->st_mode)) {
        ssize_t n = readlink(w->local, target, sizeof(target));

        if (n < 0)
            return walk_fail(w, "read the symlink", ocisync__sys_error());
        if ((size_t)n >= sizeof(target))
            return walk_fail(w, "read the symlink", OCISYNC_ETOOBIG);
        target[n] = '\0';
        e.type = '2';
        e.linkname = target;
    } else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
        e.type = S_ISCHR(st->st_mode) ? '3' : '4';
        e.devmajor = major(st->st_rdev);
        e.devminor = minor(st->st_rdev);
    } else if (S_ISFIFO(st->st_mode)) {
        e.type = '6';
    } else {
        return 0; /* a socket: left out, as docker leaves it out */
    }
    rc = read_xattrs(w, &e.xattrs, &e.n_xattrs);
    if (rc != 0)
        return rc;
    rc = oci_tar_plan_add(plan, &e, w->err, w->errlen);
    free_xattrs(e.xattrs, e.n_xattrs);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Capture
 */

static int capture_visit(struct walker *w, const char *rel, const struct stat *st)
{
    struct oci_tar_plan *plan = w->arg;
    char m[OCI_TAR_PATH_MAX + 32];
    int rc;

    if (local_whiteout(w, st)) {
        rc = marker_path(rel, ".wh.", m, sizeof(m), w->err, w->errlen);
        return rc != 0 ? rc : add_marker(plan, m, parent_mtime(w, strlen(rel)), w->err, w->errlen);
    }
    rc = add_local(w, plan, rel, st);
    if (rc == 0 && S_ISDIR(st->st_mode) && local_opaque(w)) {
        rc = marker_path(rel, ".wh..wh..opq", m, sizeof(m), w->err, w->errlen);
        if (rc == 0)
            rc = add_marker(plan, m, clamp(w->opts, (int64_t)st->st_mtime), w->err, w->errlen);
    }
    return rc;
}

int oci_overlay_capture(const char *upper, const struct oci_overlay_opts *opts,
                        struct oci_tar_plan *plan, char *err, size_t errlen)
{
    struct walker *w = calloc(1, sizeof(*w));
    struct stat st;
    int rc;

    memset(plan, 0, sizeof(*plan));
    if (w == NULL)
        return UV_ENOMEM;
    w->opts = opts;
    w->mode = mode_of(opts);
    w->visit = capture_visit;
    w->arg = plan;
    w->err = err;
    w->errlen = errlen;
    rc = walk(w, upper, &st);
    /* The root itself has no entry, but may be opaque. */
    if (rc == 0) {
        w->local[w->root_len] = '\0';
        if (local_opaque(w))
            rc = add_marker(plan, ".wh..wh..opq", clamp(opts, (int64_t)st.st_mtime), err, errlen);
    }
    if (rc == 0)
        rc = oci_tar_plan_seal(plan, err, errlen);
    if (rc != 0) {
        if (rc == UV_ENOMEM)
            ocisync__errf(err, errlen, "out of memory while reading \"%s\"", upper);
        oci_tar_plan_free(plan);
    }
    free(w);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Snapshot and diff
 */

struct rec {
    char *path; /* relative, no trailing "/"; owned */
    char *link; /* a symlink's target; owned or NULL */
    uint32_t st_mode, uid, gid;
    uint64_t size, ino, dev, rdev;
    int64_t mtime_s, ctime_s;
    long mtime_ns, ctime_ns;
    unsigned char xhash[32]; /* sha256 of the xattrs as read_xattrs gives them */
};

struct oci_overlay_snapshot {
    struct rec *v; /* sorted by path, '/' lowest (so a directory's tree follows it); owned */
    size_t n, cap;
    uint64_t name_bytes;
};

void oci_overlay_snapshot_free(struct oci_overlay_snapshot *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].path);
        free(s->v[i].link);
    }
    free(s->v);
    free(s);
}

/* Paths compared with "/" below every other byte: "a", "a/b", "a-b". */
static int cmp_tree(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;

        if (x == y) {
            if (x == '\0')
                return 0;
            continue;
        }
        x = x == '/' ? 1 : x;
        y = y == '/' ? 1 : y;
        return x < y ? -1 : 1;
    }
}

static int cmp_rec(const void *a, const void *b)
{
    return cmp_tree(((const struct rec *)a)->path, ((const struct rec *)b)->path);
}

static int xattr_hash(struct walker *w, unsigned char out[32])
{
    struct oci_tar_xattr *v;
    struct oci_hasher h;
    struct oci_digest d;
    size_t n;
    int rc = read_xattrs(w, &v, &n);

    memset(out, 0, 32);
    if (rc != 0 || n == 0)
        return rc;
    qsort(v, n, sizeof(*v), cmp_str); /* name first in the struct: sorted by name */
    rc = oci_hasher_init(&h, OCI_DIGEST_SHA256);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint64_t len = v[i].len;

        oci_hasher_update(&h, v[i].name, strlen(v[i].name) + 1);
        oci_hasher_update(&h, &len, sizeof(len));
        oci_hasher_update(&h, v[i].value, v[i].len);
    }
    if (rc == 0)
        rc = oci_hasher_final(&h, &d);
    oci_hasher_dispose(&h);
    free_xattrs(v, n);
    if (rc == 0) {
        /* The hex digest, folded into 32 bytes: only equality matters. */
        const char *hex = oci_digest_hex(&d);

        for (size_t i = 0; i < 32 && hex[2 * i] != '\0'; i++) {
            unsigned hi = (unsigned)(hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10);
            unsigned lo = (unsigned)(hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0'
                                                           : hex[2 * i + 1] - 'a' + 10);
            out[i] = (unsigned char)(hi << 4 | lo);
        }
    }
    return rc;
}

static int snap_visit(struct walker *w, const char *rel, const struct stat *st)
{
    struct oci_overlay_snapshot *s = w->arg;
    struct rec *r;
    size_t len = strlen(rel);
    int rc;

    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 256;
        struct rec *v = realloc(s->v, ncap * sizeof(*v));

        if (v == NULL)
            return UV_ENOMEM;
        s->v = v;
        s->cap = ncap;
    }
    if (s->name_bytes + len + 1 > NAME_BYTES_MAX) {
        ocisync__errf(w->err, w->errlen, "\"%s\" holds too many names to snapshot", w->local);
        return OCISYNC_ETOOBIG;
    }
    r = &s->v[s->n];
    memset(r, 0, sizeof(*r));
    r->path = strdup(rel);
    if (r->path == NULL)
        return UV_ENOMEM;
    s->n++;
    s->name_bytes += len + 1;
    r->st_mode = (uint32_t)st->st_mode;
    r->uid = (uint32_t)st->st_uid;
    r->gid = (uint32_t)st->st_gid;
    r->size = (uint64_t)st->st_size;
    r->ino = (uint64_t)st->st_ino;
    r->dev = (uint64_t)st->st_dev;
    r->rdev = (uint64_t)st->st_rdev;
    r->mtime_s = (int64_t)st->st_mtim.tv_sec;
    r->mtime_ns = st->st_mtim.tv_nsec;
    r->ctime_s = (int64_t)st->st_ctim.tv_sec;
    r->ctime_ns = st->st_ctim.tv_nsec;
    if (S_ISLNK(st->st_mode)) {
        char target[OCI_TAR_PATH_MAX + 1];
        ssize_t n = readlink(w->local, target, sizeof(target));

        if (n < 0 || (size_t)n >= sizeof(target))
            return walk_fail(w, "read the symlink", n < 0 ? ocisync__sys_error() : OCISYNC_ETOOBIG);
        target[n] = '\0';
        r->link = strdup(target);
        if (r->link == NULL)
            return UV_ENOMEM;
        s->name_bytes += (size_t)n + 1;
    }
    rc = xattr_hash(w, r->xhash);
    return rc;
}

static int take(const char *dir, const struct oci_overlay_opts *opts,
                struct oci_overlay_snapshot **out, char *err, size_t errlen)
{
    struct oci_overlay_snapshot *s = calloc(1, sizeof(*s));
    struct walker *w = calloc(1, sizeof(*w));
    struct stat st;
    int rc;

    *out = NULL;
    if (s == NULL || w == NULL) {
        free(s);
        free(w);
        return UV_ENOMEM;
    }
    w->opts = opts;
    w->mode = mode_of(opts);
    w->visit = snap_visit;
    w->arg = s;
    w->err = err;
    w->errlen = errlen;
    rc = walk(w, dir, &st);
    free(w);
    if (rc != 0) {
        if (rc == UV_ENOMEM)
            ocisync__errf(err, errlen, "out of memory while reading \"%s\"", dir);
        oci_overlay_snapshot_free(s);
        return rc;
    }
    if (s->n > 1)
        qsort(s->v, s->n, sizeof(*s->v), cmp_rec);
    *out = s;
    return 0;
}

int oci_overlay_snapshot(const char *dir, const struct oci_overlay_opts *opts,
                         struct oci_overlay_snapshot **out, char *err, size_t errlen)
{
    struct timespec now, nap = {0, 1000000};
    int64_t s = 0;
    long ns = 0;
    int rc = take(dir, opts, out, err, errlen);

    if (rc != 0)
        return rc;
    /*
     * The kernel stamps ctime from a coarse clock: a change made in the tick
     * of the last one recorded could carry the same ctime. Waiting for the
     * next tick (a few ms) makes every later change's ctime differ.
     */
    for (size_t i = 0; i < (*out)->n; i++) {
        const struct rec *r = &(*out)->v[i];

        if (r->ctime_s > s || (r->ctime_s == s && r->ctime_ns > ns)) {
            s = r->ctime_s;
            ns = r->ctime_ns;
        }
    }
    for (int i = 0; i < 1000; i++) {
        if (clock_gettime(CLOCK_REALTIME_COARSE, &now) != 0 || (int64_t)now.tv_sec > s ||
            ((int64_t)now.tv_sec == s && now.tv_nsec > ns))
            break;
        nanosleep(&nap, NULL);
    }
    return 0;
}

static bool rec_changed(const struct rec *a, const struct rec *b)
{
    return a->st_mode != b->st_mode || a->uid != b->uid || a->gid != b->gid || a->size != b->size ||
           a->ino != b->ino || a->dev != b->dev || a->rdev != b->rdev || a->mtime_s != b->mtime_s ||
           a->mtime_ns != b->mtime_ns || a->ctime_s != b->ctime_s || a->ctime_ns != b->ctime_ns ||
           (a->link == NULL) != (b->link == NULL) ||
           (a->link != NULL && strcmp(a->link, b->link) != 0) ||
           memcmp(a->xhash, b->xhash, sizeof(a->xhash)) != 0;
}

/* Whether p is below dir (p is "dir/..."). */
static bool below(const char *p, const char *dir)
{
    size_t len = strlen(dir);

    return strncmp(p, dir, len) == 0 && p[len] == '/';
}

static const struct rec *find_rec(const struct oci_overlay_snapshot *s, const char *path,
                                  size_t *idx)
{
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_tree(s->v[mid].path, path);

        if (c == 0) {
            *idx = mid;
            return &s->v[mid];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Marks the directories above path in now (they go into the layer as they are now). */
static void mark_parents(const struct oci_overlay_snapshot *now, bool *emit, const char *path)
{
    char buf[OCI_TAR_PATH_MAX + 1];
    char *slash;

    snprintf(buf, sizeof(buf), "%s", path);
    while ((slash = strrchr(buf, '/')) != NULL) {
        size_t idx;

        *slash = '\0';
        if (find_rec(now, buf, &idx) == NULL || emit[idx])
            break; /* (a marked directory has had its own parents marked) */
        emit[idx] = true;
    }
}

int oci_overlay_diff(const struct oci_overlay_snapshot *before, const char *dir,
                     const struct oci_overlay_opts *opts, struct oci_tar_plan *plan, char *err,
                     size_t errlen)
{
    struct oci_overlay_snapshot *now = NULL;
    struct walker *w = NULL;
    bool *emit = NULL, *opq = NULL;
    char m[OCI_TAR_PATH_MAX + 32];
    size_t i = 0, j = 0;
    int rc;

    memset(plan, 0, sizeof(*plan));
    rc = take(dir, opts, &now, err, errlen);
    if (rc != 0)
        return rc;
    emit = calloc(now->n + 1, sizeof(*emit));
    opq = calloc(now->n + 1, sizeof(*opq));
    w = calloc(1, sizeof(*w));
    if (emit == NULL || opq == NULL || w == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    /* Both lists are in tree order: walk them side by side. */
    while (rc == 0 && (i < before->n || j < now->n)) {
        int c = i == before->n ? 1 : j == now->n ? -1 : cmp_tree(before->v[i].path, now->v[j].path);

        if (c < 0) {
            /* Gone: one whiteout, for a directory too, none for what was below it. */
            const struct rec *b = &before->v[i++];

            if (excluded_tree(opts, b->path))
                continue; /* not looked at now: not gone */
            rc = marker_path(b->path, ".wh.", m, sizeof(m), err, errlen);
            if (rc == 0)
                rc = add_marker(plan, m, 0, err, errlen);
            mark_parents(now, emit, b->path);
            if (S_ISDIR(b->st_mode)) {
                while (i < before->n && below(before->v[i].path, b->path))
                    i++;
            }
        } else if (c > 0) {
            emit[j] = true;
            mark_parents(now, emit, now->v[j].path);
            j++;
        } else {
            const struct rec *b = &before->v[i++];
            const struct rec *a = &now->v[j];
            bool was_dir = S_ISDIR(b->st_mode), is_dir = S_ISDIR(a->st_mode);

            if (rec_changed(b, a)) {
                emit[j] = true;
                mark_parents(now, emit, a->path);
                opq[j] = is_dir && !was_dir;
            }
            /* A directory replaced by something else takes what was below it along. */
            if (was_dir && !is_dir) {
                while (i < before->n && below(before->v[i].path, b->path))
                    i++;
            }
            j++;
        }
    }
    if (rc != 0)
        goto out;
    /* The entries, as they are now; whiteouts get their directory's mtime. */
    w->opts = opts;
    w->mode = mode_of(opts);
    w->err = err;
    w->errlen = errlen;
    {
        size_t len = strlen(dir);

        while (len > 1 && dir[len - 1] == '/')
            len--;
        if (len >= PATH_BUF) {
            rc = OCISYNC_EUSAGE;
            goto out;
        }
        memcpy(w->local, dir, len);
        w->root_len = len;
    }
    for (size_t k = 0; rc == 0 && k < now->n; k++) {
        struct stat st;

        if (!emit[k])
            continue;
        snprintf(w->local + w->root_len, sizeof(w->local) - w->root_len, "/%s", now->v[k].path);
        if (lstat(w->local, &st) != 0) {
            rc = walk_fail(w, "read", ocisync__sys_error());
            break;
        }
        rc = add_local(w, plan, now->v[k].path, &st);
        if (rc == 0 && opq[k]) {
            rc = marker_path(now->v[k].path, ".wh..wh..opq", m, sizeof(m), err, errlen);
            if (rc == 0)
                rc = add_marker(plan, m, clamp(opts, (int64_t)st.st_mtime), err, errlen);
        }
    }
    /* Whiteouts were added with mtime 0: give them their directory's. */
    for (size_t k = 0; rc == 0 && k < plan->n_entries; k++) {
        struct oci_tar_plan_entry *e = &plan->entries[k];
        const char *slash = strrchr(e->path, '/');
        const char *base = slash ? slash + 1 : e->path;
        struct stat st;

        if (e->type != '0' || e->src != NULL || strncmp(base, ".wh.", 4) != 0 ||
            strcmp(base, ".wh..wh..opq") == 0)
            continue;
        snprintf(w->local + w->root_len, sizeof(w->local) - w->root_len, "/%.*s",
                 slash ? (int)(slash - e->path) : 0, e->path);
        if (lstat(w->local, &st) == 0)
            e->mtime = clamp(opts, (int64_t)st.st_mtime);
    }
    if (rc == 0)
        rc = oci_tar_plan_seal(plan, err, errlen);
out:
    if (rc != 0) {
        if (rc == UV_ENOMEM)
            ocisync__errf(err, errlen, "out of memory while comparing \"%s\"", dir);
        oci_tar_plan_free(plan);
    }
    free(w);
    free(emit);
    free(opq);
    oci_overlay_snapshot_free(now);
    return rc;
}
