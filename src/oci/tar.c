/*
 * Tar archives: the reproducible layer writer (plan, then stream) and the
 * incremental reader.
 *
 * The writer never follows a symlink below a source, records everything it
 * will write before writing a byte (so a bad tree fails before any upload
 * starts), and sorts by path so that directory order, inode numbers and
 * timing never reach the output. The reader treats its input as hostile:
 * checksums are verified, every number is range-checked and every buffer it
 * fills has a cap that is checked before anything is allocated.
 */
#include "oci/tar.h"

#include "common/msg.h"
#include "common/sysio.h"
#include "ocisync.h"

#include <uv.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOCK 512

/* How many characters of a path an error message quotes. */
#define ERR_QUOTE_MAX 120

/* ustar header layout (POSIX.1-2001 pax / ustar). */
#define H_NAME 0
#define H_MODE 100
#define H_UID 108
#define H_GID 116
#define H_SIZE 124
#define H_MTIME 136
#define H_CHKSUM 148
#define H_TYPE 156
#define H_LINK 157
#define H_MAGIC 257
#define H_VERSION 263
#define H_UNAME 265
#define H_GNAME 297
#define H_DEVMAJOR 329
#define H_DEVMINOR 337
#define H_PREFIX 345
#define NAME_LEN 100
#define LINK_LEN 100
#define PREFIX_LEN 155

/* The largest value an octal field of w bytes (w - 1 digits and a NUL) can hold, plus one. */
#define OCTAL_LIMIT(w) (UINT64_C(1) << (3 * ((w)-1)))

/*
 * PAX data of one entry: a path and a link target of at most
 * OCI_TAR_PATH_MAX each, plus a few short numeric records (12 KiB holds
 * all of that with room to spare), plus its xattrs: their names and values,
 * and for each record at most 24 bytes of length, key prefix and separators.
 */
#define XATTR_RECORD_OVERHEAD 24
#define PAX_DATA_MAX                                                                               \
    (24 * BLOCK + (OCI_TAR_XATTR_BYTES + OCI_TAR_MAX_XATTRS * XATTR_RECORD_OVERHEAD + BLOCK - 1) / \
                      BLOCK * BLOCK)
/* The PAX key prefix of an extended attribute, as GNU tar, Go and BSD tar write it. */
#define XATTR_KEY "SCHILY.xattr."
#define XATTR_KEY_LEN (sizeof(XATTR_KEY) - 1)
/* The stream's header buffer: a PAX header block, its data, the ustar header. */
#define HDR_BUF_MAX (BLOCK + PAX_DATA_MAX + BLOCK)

/* Local paths are built in a buffer of this size while walking. */
#define LOCAL_PATH_MAX 4096

static size_t pad_of(uint64_t size)
{
    return (size_t)((BLOCK - (size % BLOCK)) % BLOCK);
}

/* ---------------------------------------------------------------------------------------------
 * Plan
 */

struct walk {
    struct oci_tar_plan *plan;
    const struct oci_tar_opts *opts;
    size_t cap;    /* allocated plan->entries */
    size_t source; /* index of the source being walked */
    char local[LOCAL_PATH_MAX + 1];
    size_t local_len;
    char arch[OCI_TAR_PATH_MAX + 2]; /* room for a directory's trailing "/" */
    size_t arch_len;
    char *err;
    size_t errlen;
};

static int64_t clamp_mtime(const struct oci_tar_opts *opts, int64_t t)
{
    return opts->clamp_mtime && t > opts->mtime_max ? opts->mtime_max : t;
}

/* Describes a failed system call on path in err and returns the libuv code. */
static int sys_fail(struct walk *w, const char *what, const char *path, int errnum)
{
    struct ocisync__clipped c;
    int rc = uv_translate_sys_error(errnum);

    if (errnum == EACCES)
        ocisync__errf(w->err, w->errlen, "cannot %s \"%s\": permission denied", what,
                      ocisync__clip(path, ERR_QUOTE_MAX, &c));
    else
        ocisync__errf(w->err, w->errlen, "cannot %s \"%s\": %s", what,
                      ocisync__clip(path, ERR_QUOTE_MAX, &c), uv_strerror(rc));
    return rc;
}

static int too_long(struct walk *w, const char *what, const char *path)
{
    struct ocisync__clipped c;

    ocisync__errf(w->err, w->errlen, "%s \"%s\" is longer than %d bytes", what,
                  ocisync__clip(path, ERR_QUOTE_MAX, &c), OCI_TAR_PATH_MAX);
    return OCISYNC_ETOOBIG;
}

/*
 * Appends an entry; path (len bytes, not NUL-terminated), src and linkname
 * are copied. st may be NULL for an implied parent directory.
 */
static int add_entry(struct walk *w, char type, const char *path, size_t len, const char *src,
                     const char *linkname, const struct stat *st)
{
    struct oci_tar_plan *plan = w->plan;
    struct oci_tar_plan_entry *e;

    if (len > OCI_TAR_PATH_MAX) {
        ocisync__errf(w->err, w->errlen, "a path in the layer is longer than %d bytes: \"%.*s...\"",
                      OCI_TAR_PATH_MAX, ERR_QUOTE_MAX, path);
        return OCISYNC_ETOOBIG;
    }
    if (plan->n_entries == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 64;
        struct oci_tar_plan_entry *n;

        if (w->cap >= OCI_TAR_MAX_ENTRIES) {
            ocisync__errf(w->err, w->errlen, "the layer would have more than %u entries",
                          OCI_TAR_MAX_ENTRIES);
            return OCISYNC_ETOOBIG;
        }
        if (ncap > OCI_TAR_MAX_ENTRIES)
            ncap = OCI_TAR_MAX_ENTRIES;
        n = realloc(plan->entries, ncap * sizeof(*n));
        if (n == NULL)
            return UV_ENOMEM;
        plan->entries = n;
        w->cap = ncap;
    }
    e = &plan->entries[plan->n_entries];
    memset(e, 0, sizeof(*e));
    e->path = strndup(path, len);
    e->src = src ? strdup(src) : NULL;
    e->linkname = linkname ? strdup(linkname) : NULL;
    if (e->path == NULL || (src && e->src == NULL) || (linkname && e->linkname == NULL)) {
        free(e->path);
        free(e->src);
        free(e->linkname);
        return UV_ENOMEM;
    }
    e->type = type;
    e->source = w->source;
    /* Implied parents are 0:0 (opts->parent may say otherwise), not the new files' owner. */
    e->uid = src != NULL && w->opts->chown ? w->opts->uid : 0;
    e->gid = src != NULL && w->opts->chown ? w->opts->gid : 0;
    if (src != NULL && st != NULL && !w->opts->chown && w->opts->owner != NULL &&
        !w->opts->owner(w->opts->owner_arg, src, &e->uid, &e->gid))
        e->uid = e->gid = 0;
    if (st != NULL) {
        e->mode = (uint32_t)(st->st_mode & 07777);
        if (w->opts->chmod != NULL && type != '2')
            e->mode = oci_chmod_apply(w->opts->chmod, e->mode, type == '5');
        e->mtime = clamp_mtime(w->opts, (int64_t)st->st_mtime);
        e->size = type == '0' ? (uint64_t)st->st_size : 0;
        e->dev = (uint64_t)st->st_dev;
        e->ino = (uint64_t)st->st_ino;
        e->nlink = (uint64_t)st->st_nlink;
    } else {
        e->mode = 0755;
        e->mtime = w->opts->clamp_mtime ? w->opts->mtime_max : 0;
    }
    plan->n_entries++;
    return 0;
}

/* Adds "a/", "a/b/" for path "a/b/c" (len bytes): the implied parents of an entry. */
static int add_parents(struct walk *w, const char *path, size_t len)
{
    char dir[OCI_TAR_PATH_MAX + 2];
    int rc;

    for (size_t i = 0; i < len; i++) {
        if (path[i] != '/')
            continue;
        memcpy(dir, path, i + 1);
        rc = add_entry(w, '5', dir, i + 1, NULL, NULL, NULL);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Opens and closes a regular file so an unreadable one is reported now, not mid-upload. */
static int check_readable(struct walk *w)
{
    int fd = open(w->local, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

    if (fd < 0)
        return sys_fail(w, "read", w->local, errno);
    close(fd);
    return 0;
}

/*
 * Records what w->local is, with archive path w->arch (no trailing "/").
 * Directories are walked.
 */
static int walk_dir(struct walk *w);

static int add_node(struct walk *w, const struct stat *st)
{
    struct ocisync__clipped c;
    char target[OCI_TAR_PATH_MAX + 1];
    ssize_t tlen;
    int rc;

    if (S_ISREG(st->st_mode)) {
        rc = check_readable(w);
        if (rc != 0)
            return rc;
        return add_entry(w, '0', w->arch, w->arch_len, w->local, NULL, st);
    }
    if (S_ISDIR(st->st_mode)) {
        w->arch[w->arch_len] = '/';
        rc = add_entry(w, '5', w->arch, w->arch_len + 1, w->local, NULL, st);
        if (rc != 0)
            return rc;
        return walk_dir(w);
    }
    if (S_ISLNK(st->st_mode)) {
        tlen = readlink(w->local, target, sizeof(target));
        if (tlen < 0)
            return sys_fail(w, "read the symlink", w->local, errno);
        if ((size_t)tlen >= sizeof(target))
            return too_long(w, "the target of symlink", w->local);
        target[tlen] = '\0';
        /*
         * Stored as it is, wherever it points: a link in a layer is data,
         * read inside the image ("bin/sh -> /bin/busybox"), as docker's
         * COPY keeps it. It is never followed here.
         */
        return add_entry(w, '2', w->arch, w->arch_len, w->local, target, st);
    }
    ocisync__errf(w->err, w->errlen,
                  "\"%s\" is a %s, which cannot go into a layer (only files, directories and "
                  "symlinks can)",
                  ocisync__clip(w->local, ERR_QUOTE_MAX, &c),
                  S_ISFIFO(st->st_mode)   ? "fifo"
                  : S_ISSOCK(st->st_mode) ? "socket"
                  : S_ISCHR(st->st_mode)  ? "character device"
                  : S_ISBLK(st->st_mode)  ? "block device"
                                          : "special file");
    return OCISYNC_EUSAGE;
}

/*
 * add_node through the caller's filter: an excluded entry is left out, and a
 * directory to descend into is recorded only if something below it is.
 */
static int filtered_node(struct walk *w, const struct stat *st)
{
    const struct oci_tar_opts *o = w->opts;
    size_t before = w->plan->n_entries;
    int what, rc;

    if (o->filter == NULL)
        return add_node(w, st);
    what = o->filter(o->filter_arg, w->local, S_ISDIR(st->st_mode));
    if (what == OCI_TAR_EXCLUDE)
        return 0;
    if (what != OCI_TAR_DESCEND || !S_ISDIR(st->st_mode))
        return add_node(w, st);
    rc = walk_dir(w);
    if (rc == 0 && w->plan->n_entries > before) {
        w->arch[w->arch_len] = '/';
        rc = add_entry(w, '5', w->arch, w->arch_len + 1, w->local, NULL, st);
        w->arch[w->arch_len] = '\0';
    }
    return rc;
}

/*
 * Walks the directory w->local (archive path w->arch, without its "/"). The
 * names are read and the directory closed before descending, so the walk
 * holds one directory open at a time however deep the tree is.
 */
static int walk_dir(struct walk *w)
{
    size_t local_len = w->local_len, arch_len = w->arch_len;
    char **names = NULL;
    size_t n = 0;
    struct stat st;
    int rc = 0;

    /* Sorted so that which of two bad entries gets reported does not depend on the disk. */
    rc = ocisync__dir_names(w->local, OCI_TAR_MAX_ENTRIES - w->plan->n_entries, &names, &n);
    if (rc == OCISYNC_ETOOBIG) {
        ocisync__errf(w->err, w->errlen, "the layer would have more than %u entries",
                      OCI_TAR_MAX_ENTRIES);
        return rc;
    }
    if (rc != 0)
        return sys_fail(w, "read the directory", w->local, -rc);

    for (size_t i = 0; i < n; i++) {
        size_t nlen = strlen(names[i]);
        /* Only the source "/" itself ends with a "/". */
        size_t lsep = local_len > 0 && w->local[local_len - 1] == '/' ? 0 : 1;

        if (local_len + lsep + nlen > LOCAL_PATH_MAX) {
            w->local[local_len] = '\0';
            rc = too_long(w, "a path under", w->local);
            goto out;
        }
        if (lsep)
            w->local[local_len] = '/';
        memcpy(w->local + local_len + lsep, names[i], nlen + 1);
        w->local_len = local_len + lsep + nlen;
        /* The archive path of the root of a source at "/" has no leading "/". */
        {
            size_t sep = arch_len > 0 ? 1 : 0;

            if (arch_len + sep + nlen > OCI_TAR_PATH_MAX) {
                rc = too_long(w, "the layer path of", w->local);
                goto out;
            }
            if (sep)
                w->arch[arch_len] = '/';
            memcpy(w->arch + arch_len + sep, names[i], nlen + 1);
            w->arch_len = arch_len + sep + nlen;
        }
        if (lstat(w->local, &st) != 0) {
            rc = sys_fail(w, "read", w->local, errno);
            goto out;
        }
        rc = filtered_node(w, &st);
        if (rc != 0)
            goto out;
    }
out:
    w->local_len = local_len;
    w->local[local_len] = '\0';
    w->arch_len = arch_len;
    w->arch[arch_len] = '\0';
    ocisync__dir_names_free(names, n);
    return rc;
}

/*
 * Normalises dest into w->arch ("app/static": no leading or trailing "/",
 * no "." or empty components) and tells whether it names a directory
 * (the root, or a trailing "/").
 */
static int set_dest(struct walk *w, const char *dest, bool *is_dir)
{
    struct ocisync__clipped c;
    const char *p = dest ? dest : "";
    size_t len = 0;

    *is_dir = p[0] == '\0' || p[strlen(p) - 1] == '/';
    while (*p != '\0') {
        const char *slash = strchr(p, '/');
        size_t clen = slash ? (size_t)(slash - p) : strlen(p);

        if (clen == 2 && p[0] == '.' && p[1] == '.') {
            ocisync__errf(w->err, w->errlen,
                          "destination \"%s\" has a \"..\" component; give a path inside the "
                          "image",
                          ocisync__clip(dest, ERR_QUOTE_MAX, &c));
            return OCISYNC_EUSAGE;
        }
        if (clen > 0 && !(clen == 1 && p[0] == '.')) {
            size_t sep = len > 0 ? 1 : 0;

            if (len + sep + clen > OCI_TAR_PATH_MAX)
                return too_long(w, "destination", dest);
            if (sep)
                w->arch[len] = '/';
            memcpy(w->arch + len + sep, p, clen);
            len += sep + clen;
        }
        p += clen;
        if (*p == '/')
            p++;
    }
    w->arch[len] = '\0';
    w->arch_len = len;
    if (len == 0)
        *is_dir = true;
    return 0;
}

static int add_source(struct walk *w, const struct oci_tar_source *s)
{
    struct ocisync__clipped c;
    struct stat st;
    char *root = NULL;
    bool dest_is_dir;
    int rc;

    if (s->src == NULL || s->src[0] == '\0') {
        ocisync__errf(w->err, w->errlen, "a layer source has no local path");
        return OCISYNC_EUSAGE;
    }
    rc = set_dest(w, s->dest, &dest_is_dir);
    if (rc != 0)
        goto out;
    /* The path the user named is resolved once; nothing below it is followed. */
    root = realpath(s->src, NULL);
    if (root == NULL) {
        rc = sys_fail(w, "use the layer source", s->src, errno);
        goto out;
    }
    if (strlen(root) > LOCAL_PATH_MAX) {
        rc = too_long(w, "layer source", s->src);
        goto out;
    }
    if (lstat(root, &st) != 0) {
        rc = sys_fail(w, "use the layer source", s->src, errno);
        goto out;
    }
    w->local_len = strlen(root);
    memcpy(w->local, root, w->local_len + 1);

    if (S_ISDIR(st.st_mode)) {
        if (w->arch_len == 0) {
            rc = walk_dir(w);
            goto out;
        }
        if (s->contents) {
            /* dest itself is one of the implied parents: "app/" adds "app/". */
            w->arch[w->arch_len] = '/';
            rc = add_parents(w, w->arch, w->arch_len + 1);
            w->arch[w->arch_len] = '\0';
            if (rc == 0)
                rc = walk_dir(w);
            goto out;
        }
        rc = add_parents(w, w->arch, w->arch_len);
        if (rc != 0)
            goto out;
        w->arch[w->arch_len] = '/';
        rc = add_entry(w, '5', w->arch, w->arch_len + 1, w->local, NULL, &st);
        w->arch[w->arch_len] = '\0';
        if (rc == 0)
            rc = walk_dir(w);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = add_node(w, &st); /* refuses it with a message */
        goto out;
    }
    if (dest_is_dir) {
        /*
         * The name the user gave, not the resolved one: a symlink
         * "config.yaml" to "config-prod.yaml" still lands as "config.yaml".
         */
        const char *base = strrchr(s->src, '/');
        size_t blen;

        base = base ? base + 1 : s->src;
        blen = strlen(base);
        if (blen == 0) {
            ocisync__errf(w->err, w->errlen, "layer source \"%s\" has no file name",
                          ocisync__clip(s->src, ERR_QUOTE_MAX, &c));
            rc = OCISYNC_EUSAGE;
            goto out;
        }
        if (w->arch_len + 1 + blen > OCI_TAR_PATH_MAX) {
            rc = too_long(w, "the layer path of", s->src);
            goto out;
        }
        if (w->arch_len > 0)
            w->arch[w->arch_len++] = '/';
        memcpy(w->arch + w->arch_len, base, blen + 1);
        w->arch_len += blen;
    }
    rc = add_parents(w, w->arch, w->arch_len);
    if (rc == 0)
        rc = add_node(w, &st);
out:
    free(root);
    return rc;
}

/* Compares paths as names: a directory's trailing "/" is ignored, so "a" and "a/" collide. */
static int cmp_key(const void *a, const void *b)
{
    const struct oci_tar_plan_entry *x = a, *y = b;
    size_t lx = strlen(x->path), ly = strlen(y->path);
    int c;

    if (lx > 0 && x->path[lx - 1] == '/')
        lx--;
    if (ly > 0 && y->path[ly - 1] == '/')
        ly--;
    c = memcmp(x->path, y->path, lx < ly ? lx : ly);
    if (c != 0)
        return c;
    return lx < ly ? -1 : lx > ly ? 1 : 0;
}

static int cmp_path(const void *a, const void *b)
{
    const struct oci_tar_plan_entry *x = a, *y = b;

    return strcmp(x->path, y->path);
}

static void free_xattrs(struct oci_tar_xattr *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(x[i].name);
        free(x[i].value);
    }
    free(x);
}

static void free_entry(struct oci_tar_plan_entry *e)
{
    free(e->path);
    free(e->src);
    free(e->linkname);
    free_xattrs(e->xattrs, e->n_xattrs);
    memset(e, 0, sizeof(*e));
}

int oci_chmod_parse(const char *s, struct oci_chmod *m, char *err, size_t errlen)
{
    struct ocisync__clipped c;
    const char *p = s;

    memset(m, 0, sizeof(*m));
    if (*s >= '0' && *s <= '7') {
        uint32_t v = 0;
        size_t n = 0;
        for (; *p >= '0' && *p <= '7' && n < 5; p++, n++)
            v = v * 8 + (uint32_t)(*p - '0');
        if (*p != '\0' || v > 07777)
            goto bad;
        m->octal = true;
        m->mode = v;
        return 0;
    }
    while (*p != '\0') {
        uint32_t who = 0;
        if (m->n == OCI_CHMOD_MAX_CLAUSES)
            goto bad;
        for (; *p == 'u' || *p == 'g' || *p == 'o' || *p == 'a'; p++)
            who |= *p == 'u' ? 04700 : *p == 'g' ? 02070 : *p == 'o' ? 01007 : 07777;
        /* No "who" means all, as with a umask of 0 (builders have none). */
        m->c[m->n].who = who ? who : 07777;
        if (*p != '+' && *p != '-' && *p != '=')
            goto bad;
        m->c[m->n].op = *p++;
        for (; *p == 'r' || *p == 'w' || *p == 'x' || *p == 'X' || *p == 's' || *p == 't'; p++) {
            m->c[m->n].perm |= *p == 'r'   ? 0444
                               : *p == 'w' ? 0222
                               : *p == 'x' ? 0111
                               : *p == 's' ? 06000
                               : *p == 't' ? 01000
                                           : 0;
            m->c[m->n].cond_x |= *p == 'X';
        }
        m->n++;
        if (*p == ',' && p[1] != '\0')
            p++;
        else if (*p != '\0')
            goto bad;
    }
    if (m->n > 0)
        return 0;
bad:
    ocisync__errf(err, errlen, "mode \"%s\" is neither octal (0755) nor symbolic (u+x,g-w,o=r)",
                  ocisync__clip(s, ERR_QUOTE_MAX, &c));
    return OCISYNC_EUSAGE;
}

uint32_t oci_chmod_apply(const struct oci_chmod *m, uint32_t mode, bool is_dir)
{
    mode &= 07777;
    if (m->octal)
        return m->mode;
    for (unsigned i = 0; i < m->n; i++) {
        uint32_t perm = m->c[i].perm;
        if (m->c[i].cond_x && (is_dir || (mode & 0111) != 0))
            perm |= 0111;
        perm &= m->c[i].who;
        if (m->c[i].op == '+')
            mode |= perm;
        else if (m->c[i].op == '-')
            mode &= ~perm;
        else
            mode = (mode & ~(m->c[i].who & 0777)) | perm;
    }
    return mode;
}

/* Where an entry came from, for a message about two sources colliding. */
static const char *origin(const struct oci_tar_plan_entry *e, const struct oci_tar_source *srcs,
                          char *buf, size_t len)
{
    struct ocisync__clipped c;

    if (e->src != NULL)
        snprintf(buf, len, "\"%s\"", ocisync__clip(e->src, ERR_QUOTE_MAX, &c));
    else
        snprintf(buf, len, "the destination of \"%s\"",
                 ocisync__clip(srcs[e->source].src, ERR_QUOTE_MAX, &c));
    return buf;
}

/*
 * Merges entries with the same name. Implied parents merge with each other
 * and give way to a real directory; anything else is two sources fighting
 * over one path, which would make the layer depend on their order.
 */
static int merge_duplicates(struct walk *w, const struct oci_tar_source *srcs)
{
    struct oci_tar_plan *plan = w->plan;
    struct oci_tar_plan_entry *e = plan->entries;
    size_t keep = 0;

    if (plan->n_entries == 0)
        return 0;
    qsort(e, plan->n_entries, sizeof(*e), cmp_key);
    for (size_t i = 1; i < plan->n_entries; i++) {
        struct oci_tar_plan_entry *k = &e[keep];

        if (cmp_key(k, &e[i]) != 0) {
            e[++keep] = e[i];
            continue;
        }
        if (e[i].src == NULL && k->type == '5') {
            free_entry(&e[i]);
        } else if (k->src == NULL && e[i].type == '5') {
            free_entry(k);
            *k = e[i];
        } else if (w->opts->overlay && (k->type == '5') == (e[i].type == '5')) {
            /* The later source wins (entries of one name are in source order). */
            if (e[i].source > k->source) {
                free_entry(k);
                *k = e[i];
            } else {
                free_entry(&e[i]);
            }
        } else {
            struct ocisync__clipped c;
            char a[ERR_QUOTE_MAX + 64], b[ERR_QUOTE_MAX + 64];

            ocisync__errf(w->err, w->errlen, "\"%s\" in the layer comes from both %s and %s",
                          ocisync__clip(e[i].path, ERR_QUOTE_MAX, &c),
                          origin(k, srcs, a, sizeof(a)), origin(&e[i], srcs, b, sizeof(b)));
            /* Everything after keep still owns its strings; free them all below. */
            for (size_t j = keep + 1; j < i; j++)
                memset(&e[j], 0, sizeof(e[j]));
            return OCISYNC_EUSAGE;
        }
        memset(&e[i], 0, sizeof(e[i]));
    }
    plan->n_entries = keep + 1;
    return 0;
}

struct inode_ref {
    uint64_t dev, ino;
    size_t idx;
};

static int cmp_inode(const void *a, const void *b)
{
    const struct inode_ref *x = a, *y = b;

    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Entries that may be one inode under several names: files, devices and fifos. */
static bool linkable(const struct oci_tar_plan_entry *e)
{
    return (e->type == '0' || e->type == '3' || e->type == '4' || e->type == '6') && e->nlink > 1;
}

/*
 * Turns every file that shares its inode with an earlier one (in path order)
 * into a hardlink to that one. Runs after the path sort, so the choice of
 * which name carries the content depends only on the names.
 */
static int link_hardlinks(struct oci_tar_plan *plan)
{
    struct inode_ref *refs;
    size_t n = 0;

    for (size_t i = 0; i < plan->n_entries; i++) {
        if (linkable(&plan->entries[i]))
            n++;
    }
    if (n < 2)
        return 0;
    refs = malloc(n * sizeof(*refs));
    if (refs == NULL)
        return UV_ENOMEM;
    n = 0;
    for (size_t i = 0; i < plan->n_entries; i++) {
        const struct oci_tar_plan_entry *e = &plan->entries[i];

        if (linkable(e))
            refs[n++] = (struct inode_ref){e->dev, e->ino, i};
    }
    qsort(refs, n, sizeof(*refs), cmp_inode);
    for (size_t i = 1; i < n; i++) {
        size_t first = i - 1;

        while (i < n && refs[i].dev == refs[first].dev && refs[i].ino == refs[first].ino) {
            struct oci_tar_plan_entry *e = &plan->entries[refs[i].idx];

            free(e->linkname);
            e->linkname = strdup(plan->entries[refs[first].idx].path);
            if (e->linkname == NULL) {
                free(refs);
                return UV_ENOMEM;
            }
            /* The link carries nothing of its own: content and xattrs are the first name's. */
            free_xattrs(e->xattrs, e->n_xattrs);
            e->xattrs = NULL;
            e->n_xattrs = 0;
            e->type = '1';
            e->size = 0;
            e->devmajor = e->devminor = 0;
            i++;
        }
    }
    free(refs);
    return 0;
}

int oci_tar_plan_build(struct oci_tar_plan *plan, const struct oci_tar_source *srcs, size_t n,
                       const struct oci_tar_opts *opts, char *err, size_t errlen)
{
    static const struct oci_tar_opts defaults;
    struct walk *w;
    int rc;

    memset(plan, 0, sizeof(*plan));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (opts == NULL)
        opts = &defaults;
    if (srcs == NULL && n > 0) {
        ocisync__errf(err, errlen, "no layer sources given");
        return OCISYNC_EUSAGE;
    }
    /* The walk keeps two path buffers; off the stack, since workers may have small ones. */
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return UV_ENOMEM;
    w->plan = plan;
    w->opts = opts;
    w->err = err;
    w->errlen = errlen;
    plan->uid = opts->chown ? opts->uid : 0;
    plan->gid = opts->chown ? opts->gid : 0;

    for (size_t i = 0; i < n; i++) {
        w->source = i;
        rc = add_source(w, &srcs[i]);
        if (rc != 0)
            goto fail;
    }
    rc = merge_duplicates(w, srcs);
    if (rc != 0)
        goto fail;
    for (size_t i = 0; opts->parent != NULL && i < plan->n_entries; i++) {
        struct oci_tar_plan_entry *e = &plan->entries[i];
        struct oci_tar_parent p = {e->mode, e->uid, e->gid, e->mtime};
        size_t len = strlen(e->path);
        if (e->src != NULL || e->type != '5')
            continue;
        e->path[len - 1] = '\0'; /* without its "/" for the question */
        opts->parent(opts->parent_arg, e->path, &p);
        e->path[len - 1] = '/';
        e->mode = p.mode & 07777;
        e->uid = p.uid;
        e->gid = p.gid;
        e->mtime = p.mtime;
    }
    if (plan->n_entries > 0)
        qsort(plan->entries, plan->n_entries, sizeof(*plan->entries), cmp_path);
    rc = link_hardlinks(plan);
    if (rc != 0)
        goto fail;
    for (size_t i = 0; i < plan->n_entries; i++)
        plan->content_bytes += plan->entries[i].size;
    goto out;

fail:
    if (rc == UV_ENOMEM)
        ocisync__errf(err, errlen, "out of memory while listing the layer's files");
    oci_tar_plan_free(plan);
out:
    free(w);
    return rc;
}

void oci_tar_plan_free(struct oci_tar_plan *plan)
{
    if (plan == NULL)
        return;
    for (size_t i = 0; i < plan->n_entries; i++)
        free_entry(&plan->entries[i]);
    free(plan->entries);
    memset(plan, 0, sizeof(*plan));
}

/* ---------------------------------------------------------------------------------------------
 * Plans of explicit entries
 */

static int bad_entry(char *err, size_t errlen, int rc, const char *path, const char *why)
{
    struct ocisync__clipped c;

    ocisync__errf(err, errlen, "layer entry \"%s\" %s", ocisync__clip(path, ERR_QUOTE_MAX, &c),
                  why);
    return rc;
}

/* A relative archive path without empty, "." or ".." components (a directory's "/" aside). */
static bool clean_path(const char *p, size_t len)
{
    size_t i = 0;

    if (len == 0 || p[0] == '/')
        return false;
    if (p[len - 1] == '/')
        len--;
    while (i <= len) {
        size_t c = 0;

        while (i + c < len && p[i + c] != '/')
            c++;
        if (c == 0 || (c == 1 && p[i] == '.') || (c == 2 && p[i] == '.' && p[i + 1] == '.'))
            return false;
        i += c + 1;
    }
    return true;
}

static int cmp_xattr(const void *a, const void *b)
{
    return strcmp(((const struct oci_tar_xattr *)a)->name, ((const struct oci_tar_xattr *)b)->name);
}

static int copy_xattrs(struct oci_tar_plan_entry *dst, const struct oci_tar_plan_entry *e,
                       char *err, size_t errlen)
{
    size_t bytes = 0;

    if (e->n_xattrs == 0)
        return 0;
    if (e->n_xattrs > OCI_TAR_MAX_XATTRS)
        return bad_entry(err, errlen, OCISYNC_ETOOBIG, e->path, "has too many xattrs");
    for (size_t i = 0; i < e->n_xattrs; i++) {
        const struct oci_tar_xattr *x = &e->xattrs[i];
        size_t nlen = x->name ? strlen(x->name) : 0;

        if (nlen == 0 || strchr(x->name, '=') != NULL || (x->len > 0 && x->value == NULL))
            return bad_entry(err, errlen, OCISYNC_EUSAGE, e->path,
                             "has an xattr whose name is empty or holds '='");
        bytes += nlen + x->len;
        if (bytes > OCI_TAR_XATTR_BYTES)
            return bad_entry(err, errlen, OCISYNC_ETOOBIG, e->path,
                             "has more than 64 KiB of xattrs");
    }
    dst->xattrs = calloc(e->n_xattrs, sizeof(*dst->xattrs));
    if (dst->xattrs == NULL)
        return UV_ENOMEM;
    for (size_t i = 0; i < e->n_xattrs; i++) {
        struct oci_tar_xattr *x = &dst->xattrs[i];

        dst->n_xattrs++;
        x->name = strdup(e->xattrs[i].name);
        x->value = malloc(e->xattrs[i].len ? e->xattrs[i].len : 1);
        if (x->name == NULL || x->value == NULL)
            return UV_ENOMEM;
        if (e->xattrs[i].len > 0)
            memcpy(x->value, e->xattrs[i].value, e->xattrs[i].len);
        x->len = e->xattrs[i].len;
    }
    qsort(dst->xattrs, dst->n_xattrs, sizeof(*dst->xattrs), cmp_xattr);
    for (size_t i = 1; i < dst->n_xattrs; i++) {
        if (strcmp(dst->xattrs[i - 1].name, dst->xattrs[i].name) == 0)
            return bad_entry(err, errlen, OCISYNC_EUSAGE, e->path, "has one xattr twice");
    }
    return 0;
}

int oci_tar_plan_add(struct oci_tar_plan *plan, const struct oci_tar_plan_entry *e, char *err,
                     size_t errlen)
{
    struct oci_tar_plan_entry n;
    size_t plen = e->path ? strlen(e->path) : 0;
    bool dir_path = plen > 0 && e->path[plen - 1] == '/';
    int rc;

    memset(&n, 0, sizeof(n));
    if (e->path == NULL || !clean_path(e->path, plen))
        return bad_entry(err, errlen, OCISYNC_EUSAGE, e->path ? e->path : "",
                         "is not a relative path inside the layer");
    if (plen > OCI_TAR_PATH_MAX + 1 || (plen > OCI_TAR_PATH_MAX && !dir_path))
        return bad_entry(err, errlen, OCISYNC_ETOOBIG, e->path, "has a path that is too long");
    if (strchr("0123456", e->type) == NULL || e->type == '\0')
        return bad_entry(err, errlen, OCISYNC_EUSAGE, e->path, "has an unknown type");
    if ((e->type == '5') != dir_path)
        return bad_entry(err, errlen, OCISYNC_EUSAGE, e->path,
                         "must end with \"/\" if and only if it is a directory");
    if (e->size > 0 && (e->type != '0' || e->src == NULL))
        return bad_entry(err, errlen, OCISYNC_EUSAGE, e->path,
                         "has content but no local file to read it from");
    if ((e->type == '1' || e->type == '2') && (e->linkname == NULL || e->linkname[0] == '\0'))
        return bad_entry(err, errlen, OCISYNC_EUSAGE, e->path, "is a link without a target");
    if (e->linkname != NULL && strlen(e->linkname) > OCI_TAR_PATH_MAX)
        return bad_entry(err, errlen, OCISYNC_ETOOBIG, e->path,
                         "has a link target that is too long");
    if (e->devmajor > OCI_TAR_DEV_MAX || e->devminor > OCI_TAR_DEV_MAX)
        return bad_entry(err, errlen, OCISYNC_ETOOBIG, e->path,
                         "has device numbers a tar header cannot hold");
    if (plan->n_entries == plan->cap) {
        size_t ncap = plan->cap ? plan->cap * 2 : 64;
        struct oci_tar_plan_entry *v;

        if (plan->cap >= OCI_TAR_MAX_ENTRIES) {
            ocisync__errf(err, errlen, "the layer would have more than %u entries",
                          OCI_TAR_MAX_ENTRIES);
            return OCISYNC_ETOOBIG;
        }
        if (ncap > OCI_TAR_MAX_ENTRIES)
            ncap = OCI_TAR_MAX_ENTRIES;
        v = realloc(plan->entries, ncap * sizeof(*v));
        if (v == NULL)
            return UV_ENOMEM;
        plan->entries = v;
        plan->cap = ncap;
    }
    n = *e;
    n.xattrs = NULL;
    n.n_xattrs = 0;
    n.path = strdup(e->path);
    n.src = e->src ? strdup(e->src) : NULL;
    n.linkname = e->linkname ? strdup(e->linkname) : NULL;
    if (n.path == NULL || (e->src && n.src == NULL) || (e->linkname && n.linkname == NULL)) {
        rc = UV_ENOMEM;
        goto fail;
    }
    n.mode &= 07777;
    if (n.type != '3' && n.type != '4')
        n.devmajor = n.devminor = 0;
    rc = copy_xattrs(&n, e, err, errlen);
    if (rc != 0)
        goto fail;
    plan->entries[plan->n_entries++] = n;
    return 0;

fail:
    if (rc == UV_ENOMEM)
        ocisync__errf(err, errlen, "out of memory while listing the layer's files");
    free_entry(&n);
    return rc;
}

int oci_tar_plan_seal(struct oci_tar_plan *plan, char *err, size_t errlen)
{
    int rc = 0;

    if (plan->n_entries == 0)
        return 0;
    /* By name first, so that "a" and "a/" meet. */
    qsort(plan->entries, plan->n_entries, sizeof(*plan->entries), cmp_key);
    for (size_t i = 1; i < plan->n_entries; i++) {
        if (cmp_key(&plan->entries[i - 1], &plan->entries[i]) == 0) {
            rc = bad_entry(err, errlen, OCISYNC_EUSAGE, plan->entries[i].path,
                           "is in the layer twice");
            goto fail;
        }
    }
    qsort(plan->entries, plan->n_entries, sizeof(*plan->entries), cmp_path);
    rc = link_hardlinks(plan);
    if (rc != 0) {
        ocisync__errf(err, errlen, "out of memory while listing the layer's files");
        goto fail;
    }
    plan->content_bytes = 0;
    for (size_t i = 0; i < plan->n_entries; i++)
        plan->content_bytes += plan->entries[i].size;
    return 0;

fail:
    oci_tar_plan_free(plan);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Stream
 */

enum {
    S_NEXT = 0, /* pick the next entry and build its headers */
    S_HEADER,   /* emit s->hdr */
    S_DATA,     /* copy the open file */
    S_PAD,      /* zeros up to the next block */
    S_TRAILER,  /* the two end-of-archive blocks */
    S_DONE,
};

/* Writes v as w - 1 zero-padded octal digits and a NUL; the caller checked it fits. */
static void put_octal(unsigned char *f, size_t w, uint64_t v)
{
    f[w - 1] = '\0';
    for (size_t i = w - 1; i-- > 0;) {
        f[i] = (unsigned char)('0' + (v & 7));
        v >>= 3;
    }
}

static bool has_non_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] >= 0x80)
            return true;
    }
    return false;
}

/*
 * Finds where path (len bytes) splits into ustar prefix and name: *split is
 * the index of the "/" between them, or len if the name alone holds it. The
 * name part must not be empty, which keeps a directory's "/" in the name.
 */
static bool split_path(const char *path, size_t len, size_t *split)
{
    if (len <= NAME_LEN) {
        *split = len;
        return true;
    }
    for (size_t i = len - NAME_LEN - 1; i <= PREFIX_LEN && i + 1 < len; i++) {
        if (path[i] == '/') {
            *split = i;
            return true;
        }
    }
    return false;
}

/*
 * Appends the PAX record "len prefixkey=value\n" (the value as raw bytes);
 * its length counts its own digits.
 */
static bool pax_add_kv(unsigned char *buf, size_t *len, const char *prefix, const char *key,
                       const void *val, size_t vlen)
{
    size_t plen = strlen(prefix), klen = strlen(key);
    size_t base = plen + klen + vlen + 3, total = 0;
    unsigned char *p;
    char num[24];
    int d;

    for (d = 1; d < 20; d++) {
        total = base + (size_t)d;
        if ((size_t)snprintf(num, sizeof(num), "%zu", total) == (size_t)d)
            break;
    }
    if (total > PAX_DATA_MAX || *len > PAX_DATA_MAX - total)
        return false;
    p = buf + *len;
    memcpy(p, num, (size_t)d);
    p += d;
    *p++ = ' ';
    memcpy(p, prefix, plen);
    p += plen;
    memcpy(p, key, klen);
    p += klen;
    *p++ = '=';
    if (vlen > 0)
        memcpy(p, val, vlen);
    p[vlen] = '\n';
    *len += total;
    return true;
}

static bool pax_add(unsigned char *buf, size_t *len, const char *key, const char *val, size_t vlen)
{
    return pax_add_kv(buf, len, "", key, val, vlen);
}

static void put_checksum(unsigned char *h)
{
    unsigned sum = 0;

    memset(h + H_CHKSUM, ' ', 8);
    for (size_t i = 0; i < BLOCK; i++)
        sum += h[i];
    for (size_t i = 6; i-- > 0;) {
        h[H_CHKSUM + i] = (unsigned char)('0' + (sum & 7));
        sum >>= 3;
    }
    h[H_CHKSUM + 6] = '\0';
    h[H_CHKSUM + 7] = ' ';
}

/* The parts of a ustar header every block shares. */
static void put_common(unsigned char *h, char type, uint32_t mode, uint64_t uid, uint64_t gid,
                       uint64_t size, uint64_t mtime, uint32_t devmajor, uint32_t devminor)
{
    put_octal(h + H_MODE, 8, mode);
    put_octal(h + H_UID, 8, uid);
    put_octal(h + H_GID, 8, gid);
    put_octal(h + H_SIZE, 12, size);
    put_octal(h + H_MTIME, 12, mtime);
    h[H_TYPE] = (unsigned char)type;
    memcpy(h + H_MAGIC, "ustar", 6);
    memcpy(h + H_VERSION, "00", 2);
    put_octal(h + H_DEVMAJOR, 8, devmajor);
    put_octal(h + H_DEVMINOR, 8, devminor);
}

/*
 * Builds the headers of e into s->hdr: a PAX header and its records when
 * ustar cannot hold something, then the ustar header. Deterministic: the
 * PAX header's own name is "PaxHeaders/" and the entry's last component.
 */
static int build_headers(struct oci_tar_stream *s, const struct oci_tar_plan_entry *e, char *err,
                         size_t errlen)
{
    unsigned char *pax = s->hdr + BLOCK, *h;
    size_t plen = strlen(e->path), llen = e->linkname ? strlen(e->linkname) : 0;
    size_t pax_len = 0, split = 0;
    bool ok = true, path_fits, uid_fits, gid_fits, size_fits, mtime_fits;
    char num[32];

    path_fits = !has_non_ascii(e->path, plen) && split_path(e->path, plen, &split);
    uid_fits = e->uid < OCTAL_LIMIT(8);
    gid_fits = e->gid < OCTAL_LIMIT(8);
    size_fits = e->size < OCTAL_LIMIT(12);
    mtime_fits = e->mtime >= 0 && (uint64_t)e->mtime < OCTAL_LIMIT(12);

    if (!path_fits)
        ok = ok && pax_add(pax, &pax_len, "path", e->path, plen);
    if (llen > LINK_LEN || has_non_ascii(e->linkname ? e->linkname : "", llen))
        ok = ok && pax_add(pax, &pax_len, "linkpath", e->linkname, llen);
    if (!size_fits) {
        snprintf(num, sizeof(num), "%llu", (unsigned long long)e->size);
        ok = ok && pax_add(pax, &pax_len, "size", num, strlen(num));
    }
    if (!uid_fits) {
        snprintf(num, sizeof(num), "%lu", (unsigned long)e->uid);
        ok = ok && pax_add(pax, &pax_len, "uid", num, strlen(num));
    }
    if (!gid_fits) {
        snprintf(num, sizeof(num), "%lu", (unsigned long)e->gid);
        ok = ok && pax_add(pax, &pax_len, "gid", num, strlen(num));
    }
    if (!mtime_fits) {
        snprintf(num, sizeof(num), "%lld", (long long)e->mtime);
        ok = ok && pax_add(pax, &pax_len, "mtime", num, strlen(num));
    }
    for (size_t i = 0; i < e->n_xattrs; i++)
        ok = ok && pax_add_kv(pax, &pax_len, XATTR_KEY, e->xattrs[i].name, e->xattrs[i].value,
                              e->xattrs[i].len);
    if (!ok) {
        struct ocisync__clipped c;

        ocisync__errf(err, errlen, "the PAX header of \"%s\" would be too big",
                      ocisync__clip(e->path, ERR_QUOTE_MAX, &c));
        return OCISYNC_ETOOBIG;
    }

    memset(s->hdr, 0, BLOCK);
    h = s->hdr;
    if (pax_len > 0) {
        const char *base = e->path;
        size_t blen = plen;

        /* The last component, without a directory's "/", in plain ASCII. */
        if (blen > 0 && base[blen - 1] == '/')
            blen--;
        for (size_t i = blen; i-- > 0;) {
            if (base[i] == '/') {
                base += i + 1;
                blen -= i + 1;
                break;
            }
        }
        memcpy(h + H_NAME, "PaxHeaders/", 11);
        if (blen > NAME_LEN - 11)
            blen = NAME_LEN - 11;
        for (size_t i = 0; i < blen; i++) {
            unsigned char ch = (unsigned char)base[i];
            h[H_NAME + 11 + i] = ch < 0x20 || ch >= 0x7f ? '_' : ch;
        }
        put_common(h, 'x', 0644, uid_fits ? e->uid : 0, gid_fits ? e->gid : 0, pax_len,
                   mtime_fits ? (uint64_t)e->mtime : 0, 0, 0);
        put_checksum(h);
        memset(pax + pax_len, 0, pad_of(pax_len));
        h = pax + pax_len + pad_of(pax_len);
        memset(h, 0, BLOCK);
    }

    if (path_fits) {
        if (split == plen) {
            memcpy(h + H_NAME, e->path, plen);
        } else {
            memcpy(h + H_PREFIX, e->path, split);
            memcpy(h + H_NAME, e->path + split + 1, plen - split - 1);
        }
    } else {
        /* Readers without PAX get the start of the path; the PAX record has all of it. */
        memcpy(h + H_NAME, e->path, plen < NAME_LEN ? plen : NAME_LEN);
    }
    if (llen > 0)
        memcpy(h + H_LINK, e->linkname, llen < LINK_LEN ? llen : LINK_LEN);
    put_common(h, e->type, e->mode & 07777, uid_fits ? e->uid : 0, gid_fits ? e->gid : 0,
               size_fits ? e->size : 0, mtime_fits ? (uint64_t)e->mtime : 0,
               e->devmajor & OCI_TAR_DEV_MAX, e->devminor & OCI_TAR_DEV_MAX);
    put_checksum(h);
    s->hdr_len = (size_t)(h + BLOCK - s->hdr);
    s->hdr_off = 0;
    return 0;
}

static int changed(struct oci_tar_stream *s, char *err, size_t errlen, const char *why)
{
    struct ocisync__clipped c;

    ocisync__errf(err, errlen, "file \"%s\" changed while the layer was being built (%s)",
                  ocisync__clip(s->cur->src, ERR_QUOTE_MAX, &c), why);
    return OCISYNC_ESIZEMISMATCH;
}

/* Opens the current entry's file and checks it is still the one the plan saw. */
static int open_current(struct oci_tar_stream *s, char *err, size_t errlen)
{
    const struct oci_tar_plan_entry *e = s->cur;
    struct ocisync__clipped c;
    struct stat st;
    char why[96];

    /* O_NONBLOCK: should the file have become a fifo, open must not wait for a writer. */
    s->fd = open(e->src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (s->fd < 0) {
        int errnum = errno;

        if (errnum == ENOENT || errnum == ELOOP || errnum == ENOTDIR)
            return changed(s, err, errlen, "it is gone or no longer a file");
        ocisync__errf(err, errlen, "cannot open \"%s\": %s",
                      ocisync__clip(e->src, ERR_QUOTE_MAX, &c),
                      uv_strerror(uv_translate_sys_error(errnum)));
        return uv_translate_sys_error(errnum);
    }
    if (fstat(s->fd, &st) != 0) {
        int rc = uv_translate_sys_error(errno);

        ocisync__errf(err, errlen, "cannot stat \"%s\": %s",
                      ocisync__clip(e->src, ERR_QUOTE_MAX, &c), uv_strerror(rc));
        return rc;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_dev != e->dev || (uint64_t)st.st_ino != e->ino)
        return changed(s, err, errlen, "it was replaced");
    if ((uint64_t)st.st_size != e->size) {
        snprintf(why, sizeof(why), "it is now %lld bytes, it was %llu", (long long)st.st_size,
                 (unsigned long long)e->size);
        return changed(s, err, errlen, why);
    }
    s->data_left = e->size;
    if (s->sums != NULL) {
        struct oci_tar_file_sum *sum = &s->sums[s->next - 1];
        int rc = s->on_content != NULL ? 0 : oci_hasher_init(&s->file_hash, OCI_DIGEST_SHA256);

        if (rc != 0) {
            ocisync__errf(err, errlen, "cannot hash \"%s\": %s",
                          ocisync__clip(e->src, ERR_QUOTE_MAX, &c), uv_strerror(rc));
            return rc;
        }
        memset(sum, 0, sizeof(*sum));
        sum->dev = (uint64_t)st.st_dev;
        sum->ino = (uint64_t)st.st_ino;
        sum->size = e->size;
        sum->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        sum->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
    }
    return 0;
}

/* The current file was read to its end: its content digest goes to its sum. */
static int sum_current(struct oci_tar_stream *s, char *err, size_t errlen)
{
    struct oci_tar_file_sum *sum;
    struct oci_digest d;
    int rc;

    if (s->sums == NULL)
        return 0;
    if (s->on_content != NULL) {
        s->on_content(s->content_arg, s->next - 1, NULL, 0, true);
        return 0;
    }
    sum = &s->sums[s->next - 1];
    rc = oci_hasher_final(&s->file_hash, &d);
    if (rc != 0) {
        struct ocisync__clipped c;

        ocisync__errf(err, errlen, "cannot hash \"%s\": %s",
                      ocisync__clip(s->cur->src, ERR_QUOTE_MAX, &c), uv_strerror(rc));
        return rc;
    }
    snprintf(sum->hex, sizeof(sum->hex), "%s", oci_digest_hex(&d));
    sum->done = true;
    return 0;
}

static void close_current(struct oci_tar_stream *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    /* A file left half-read (an error) still holds its hasher. */
    oci_hasher_dispose(&s->file_hash);
}

/* Reads up to len bytes of the current file into buf; *got 0 is never returned. */
static int read_current(struct oci_tar_stream *s, unsigned char *buf, size_t len, size_t *got,
                        char *err, size_t errlen)
{
    struct ocisync__clipped c;
    ssize_t r;

    if (len > s->data_left)
        len = (size_t)s->data_left;
    if (len > (1u << 30))
        len = 1u << 30;
    do {
        r = read(s->fd, buf, len);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        int rc = uv_translate_sys_error(errno);

        ocisync__errf(err, errlen, "cannot read \"%s\": %s",
                      ocisync__clip(s->cur->src, ERR_QUOTE_MAX, &c), uv_strerror(rc));
        return rc;
    }
    if (r == 0)
        return changed(s, err, errlen, "it is shorter than when the layer was planned");
    if (s->sums != NULL && s->on_content != NULL)
        s->on_content(s->content_arg, s->next - 1, buf, (size_t)r, false);
    else if (s->sums != NULL)
        oci_hasher_update(&s->file_hash, buf, (size_t)r);
    *got = (size_t)r;
    s->data_left -= (uint64_t)r;
    return 0;
}

/* After the planned bytes the file must be at its end. */
static int check_end(struct oci_tar_stream *s, char *err, size_t errlen)
{
    unsigned char one;
    ssize_t r;

    do {
        r = read(s->fd, &one, 1);
    } while (r < 0 && errno == EINTR);
    if (r > 0)
        return changed(s, err, errlen, "it is longer than when the layer was planned");
    if (r < 0) {
        struct ocisync__clipped c;
        int rc = uv_translate_sys_error(errno);

        ocisync__errf(err, errlen, "cannot read \"%s\": %s",
                      ocisync__clip(s->cur->src, ERR_QUOTE_MAX, &c), uv_strerror(rc));
        return rc;
    }
    return 0;
}

int oci_tar_stream_init(struct oci_tar_stream *s, const struct oci_tar_plan *plan)
{
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    s->plan = plan;
    s->phase = S_NEXT;
    s->hdr = malloc(HDR_BUF_MAX);
    if (s->hdr == NULL)
        return UV_ENOMEM;
    return 0;
}

int oci_tar_stream_read(struct oci_tar_stream *s, void *buf, size_t cap, size_t *n, char *err,
                        size_t errlen)
{
    unsigned char *out = buf;
    size_t got = 0, take = 0;
    int rc = 0;

    *n = 0;
    if (s->rc != 0) {
        ocisync__errf(err, errlen, "the layer stream already failed: %s", ocisync_strerror(s->rc));
        return s->rc;
    }
    if (s->hdr == NULL || cap == 0) {
        ocisync__errf(err, errlen, "the layer stream is not initialised or was given no room");
        return UV_EINVAL;
    }
    while (got < cap && s->phase != S_DONE) {
        switch (s->phase) {
        case S_NEXT:
            if (s->next == s->plan->n_entries) {
                s->zeros_left = 2 * BLOCK;
                s->phase = S_TRAILER;
                break;
            }
            s->cur = &s->plan->entries[s->next++];
            rc = build_headers(s, s->cur, err, errlen);
            if (rc != 0)
                goto fail;
            s->phase = S_HEADER;
            break;
        case S_HEADER:
            take = s->hdr_len - s->hdr_off;
            if (take > cap - got)
                take = cap - got;
            memcpy(out + got, s->hdr + s->hdr_off, take);
            got += take;
            s->hdr_off += take;
            if (s->hdr_off < s->hdr_len)
                break;
            /* Only a file with a local source has content (a whiteout has none). */
            if (s->cur->type != '0' || s->cur->src == NULL) {
                s->phase = S_NEXT;
                break;
            }
            rc = open_current(s, err, errlen);
            if (rc != 0)
                goto fail;
            s->phase = S_DATA;
            break;
        case S_DATA:
            if (s->data_left == 0) {
                rc = check_end(s, err, errlen);
                if (rc == 0)
                    rc = sum_current(s, err, errlen);
                if (rc != 0)
                    goto fail;
                close_current(s);
                s->zeros_left = pad_of(s->cur->size);
                s->phase = S_PAD;
                break;
            }
            rc = read_current(s, out + got, cap - got, &take, err, errlen);
            if (rc != 0)
                goto fail;
            got += take;
            break;
        case S_PAD:
        case S_TRAILER:
            take = s->zeros_left < cap - got ? s->zeros_left : cap - got;
            memset(out + got, 0, take);
            got += take;
            s->zeros_left -= take;
            if (s->zeros_left == 0)
                s->phase = s->phase == S_PAD ? S_NEXT : S_DONE;
            break;
        }
    }
    *n = got;
    return 0;

fail:
    close_current(s);
    s->rc = rc;
    return rc;
}

void oci_tar_stream_dispose(struct oci_tar_stream *s)
{
    close_current(s);
    free(s->hdr);
    s->hdr = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Reader
 */

enum {
    R_HEADER = 0, /* collecting a header block */
    R_ZERO1,      /* one zero block seen; the next must be zero too */
    R_DATA,       /* an entry's content, passed to on_data */
    R_META,       /* a PAX 'x' or GNU 'L'/'K' record, collected into r->ext */
    R_SKIP,       /* a PAX 'g' record, skipped */
    R_PAD,        /* padding up to the next block */
    R_END,        /* after the zero blocks: the rest is ignored */
};

static bool pending_meta(const struct oci_tar_reader *r)
{
    return r->meta_seen;
}

static void clear_meta(struct oci_tar_reader *r)
{
    r->meta_seen = false;
    r->has_pax_path = r->has_pax_link = r->has_gnu_path = r->has_gnu_link = false;
    r->has_size = r->has_uid = r->has_gid = r->has_mtime = false;
}

/* The header being handled started at this offset, for messages. */
static uint64_t header_offset(const struct oci_tar_reader *r)
{
    return r->hdr_offset;
}

static int bad(struct oci_tar_reader *r, char *err, size_t errlen, const char *what)
{
    ocisync__errf(err, errlen, "invalid tar archive: %s in the header at offset %llu", what,
                  (unsigned long long)header_offset(r));
    return UV_EINVAL;
}

/*
 * Parses a numeric header field: octal digits with optional leading spaces
 * and trailing NULs or spaces, or GNU base-256 (first byte's top bit set;
 * the next bit is the sign, two's complement).
 */
static bool parse_num(const unsigned char *f, size_t w, int64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;

    if (f[0] & 0x80) {
        unsigned char inv = (f[0] & 0x40) ? 0xff : 0;

        for (i = 0; i < w; i++) {
            unsigned char c = (unsigned char)(f[i] ^ inv);

            if (i == 0)
                c &= 0x7f;
            if (v >> 55)
                return false;
            v = v << 8 | c;
        }
        if (v > (uint64_t)INT64_MAX)
            return false;
        *out = inv ? -(int64_t)v - 1 : (int64_t)v;
        return true;
    }
    while (i < w && f[i] == ' ')
        i++;
    for (; i < w && f[i] >= '0' && f[i] <= '7'; i++) {
        if (v >> 60)
            return false;
        v = v << 3 | (uint64_t)(f[i] - '0');
    }
    for (; i < w; i++) {
        if (f[i] != ' ' && f[i] != '\0')
            return false;
    }
    if (v > (uint64_t)INT64_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

/* Both the POSIX (unsigned) sum and the signed one some old writers used are accepted. */
static bool checksum_ok(const unsigned char *h)
{
    int64_t want;
    uint64_t usum = 0;
    int64_t ssum = 0;

    if (!parse_num(h + H_CHKSUM, 8, &want))
        return false;
    for (size_t i = 0; i < BLOCK; i++) {
        unsigned char c = (i >= H_CHKSUM && i < H_CHKSUM + 8) ? ' ' : h[i];

        usum += c;
        ssum += (signed char)c;
    }
    return (int64_t)usum == want || ssum == want;
}

/* Copies a NUL-padded field of at most w bytes into out as a string. */
static size_t field_str(const unsigned char *f, size_t w, char *out)
{
    size_t len = strnlen((const char *)f, w);

    memcpy(out, f, len);
    out[len] = '\0';
    return len;
}

/* A decimal in a PAX record: digits only, at most max. */
static bool pax_uint(const char *v, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t x = 0;

    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        if (x > (max - (uint64_t)(v[i] - '0')) / 10)
            return false;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return true;
}

/* A PAX mtime: "[-]seconds[.fraction]"; the fraction is dropped. */
static bool pax_time(const char *v, size_t len, int64_t *out)
{
    bool neg = len > 0 && v[0] == '-';
    size_t start = neg ? 1 : 0, end = start;
    uint64_t x;

    while (end < len && v[end] != '.')
        end++;
    for (size_t i = end + (end < len ? 1 : 0); i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
    }
    if (!pax_uint(v + start, end - start, (uint64_t)INT64_MAX, &x))
        return false;
    *out = neg ? -(int64_t)x : (int64_t)x;
    return true;
}

static bool key_is(const char *k, size_t klen, const char *name)
{
    return klen == strlen(name) && memcmp(k, name, klen) == 0;
}

/* Stores a path-like value into dst (OCI_TAR_PATH_MAX + 1 bytes). */
static int set_name(struct oci_tar_reader *r, char *dst, bool *has, const char *v, size_t len,
                    const char *what, char *err, size_t errlen)
{
    if (len == 0) {
        /* POSIX: an empty value removes the keyword, so the header's own field applies. */
        *has = false;
        return 0;
    }
    if (len > OCI_TAR_PATH_MAX) {
        ocisync__errf(err, errlen,
                      "tar %s at offset %llu is %zu bytes long, over the limit of %d bytes", what,
                      (unsigned long long)header_offset(r), len, OCI_TAR_PATH_MAX);
        return OCISYNC_ETOOBIG;
    }
    if (memchr(v, '\0', len) != NULL)
        return bad(r, err, errlen, "a NUL byte in a PAX path");
    memcpy(dst, v, len);
    dst[len] = '\0';
    *has = true;
    return 0;
}

static void drop_xattrs(struct oci_tar_reader *r)
{
    free(r->xattr_data);
    r->xattr_data = NULL;
    r->n_xattrs = 0;
}

/*
 * Records the xattr of a "SCHILY.xattr.NAME=VALUE" record of r->ext: name
 * and value stay where they are (the '=' and the '\n' become NULs), and
 * end_meta keeps r->ext alive for them. The first xattr of a record drops
 * those of an earlier one; a name given twice keeps the last value.
 */
static int add_xattr(struct oci_tar_reader *r, char *key, size_t klen, char *val, size_t vlen,
                     bool *first, char *err, size_t errlen)
{
    char *name = key + XATTR_KEY_LEN;
    size_t i;

    if (*first) {
        drop_xattrs(r);
        *first = false;
    }
    if (klen == XATTR_KEY_LEN || memchr(name, '\0', klen - XATTR_KEY_LEN) != NULL)
        return bad(r, err, errlen, "an xattr record without a name");
    name[klen - XATTR_KEY_LEN] = '\0';
    val[vlen] = '\0';
    for (i = 0; i < r->n_xattrs; i++) {
        if (strcmp(r->xattrs[i].name, name) == 0)
            break;
    }
    if (i == OCI_TAR_MAX_XATTRS) {
        ocisync__errf(err, errlen, "tar entry at offset %llu has more than %d xattrs",
                      (unsigned long long)header_offset(r), OCI_TAR_MAX_XATTRS);
        return OCISYNC_ETOOBIG;
    }
    r->xattrs[i] = (struct oci_tar_xattr){name, (unsigned char *)val, vlen};
    if (i == r->n_xattrs)
        r->n_xattrs++;
    return 0;
}

/* Parses the records "len key=value\n" of a PAX 'x' header in r->ext. */
static int parse_pax(struct oci_tar_reader *r, char *err, size_t errlen)
{
    char *d = r->ext;
    size_t len = r->ext_len, pos = 0;
    bool first_xattr = true;
    int rc;

    while (pos < len) {
        size_t i = pos, rec = 0, end;
        char *key, *eq, *val;
        size_t klen, vlen;
        uint64_t x = 0;

        while (i < len && d[i] >= '0' && d[i] <= '9') {
            rec = rec * 10 + (size_t)(d[i] - '0');
            if (rec > len)
                return bad(r, err, errlen, "a PAX record longer than its header");
            i++;
        }
        if (i == pos || i >= len || d[i] != ' ' || rec < i - pos + 3 || rec > len - pos)
            return bad(r, err, errlen, "a malformed PAX record");
        end = pos + rec;
        if (d[end - 1] != '\n')
            return bad(r, err, errlen, "a PAX record that does not end with a newline");
        key = d + i + 1;
        eq = memchr(key, '=', (size_t)(d + end - 1 - key));
        if (eq == NULL || eq == key)
            return bad(r, err, errlen, "a PAX record without a key");
        klen = (size_t)(eq - key);
        val = eq + 1;
        vlen = (size_t)(d + end - 1 - val);
        rc = 0;
        if (key_is(key, klen, "path")) {
            rc = set_name(r, r->pax_path, &r->has_pax_path, val, vlen, "PAX path", err, errlen);
        } else if (key_is(key, klen, "linkpath")) {
            rc = set_name(r, r->pax_link, &r->has_pax_link, val, vlen, "PAX linkpath", err, errlen);
        } else if (key_is(key, klen, "size")) {
            r->has_size = vlen > 0;
            if (vlen > 0 && !pax_uint(val, vlen, (uint64_t)INT64_MAX, &r->pax_size))
                return bad(r, err, errlen, "an invalid PAX size");
        } else if (key_is(key, klen, "uid")) {
            r->has_uid = vlen > 0;
            if (vlen > 0 && !pax_uint(val, vlen, UINT32_MAX, &x))
                return bad(r, err, errlen, "an invalid PAX uid");
            r->pax_uid = (uint32_t)x;
        } else if (key_is(key, klen, "gid")) {
            r->has_gid = vlen > 0;
            if (vlen > 0 && !pax_uint(val, vlen, UINT32_MAX, &x))
                return bad(r, err, errlen, "an invalid PAX gid");
            r->pax_gid = (uint32_t)x;
        } else if (key_is(key, klen, "mtime")) {
            r->has_mtime = vlen > 0;
            if (vlen > 0 && !pax_time(val, vlen, &r->pax_mtime))
                return bad(r, err, errlen, "an invalid PAX mtime");
        } else if (klen >= XATTR_KEY_LEN && memcmp(key, XATTR_KEY, XATTR_KEY_LEN) == 0) {
            rc = add_xattr(r, key, klen, val, vlen, &first_xattr, err, errlen);
        }
        if (rc != 0)
            return rc;
        pos = end;
    }
    return 0;
}

/* A record (PAX 'x', GNU 'L' or 'K') is complete: remember what it says for the next entry. */
static int end_meta(struct oci_tar_reader *r, char *err, size_t errlen)
{
    size_t len;
    int rc = 0;

    if (r->meta == 'x') {
        rc = parse_pax(r, err, errlen);
        if (rc == 0 && r->n_xattrs > 0 && r->xattr_data == NULL) {
            /* The xattrs point into this record: it lives until its entry is reported. */
            r->xattr_data = r->ext;
            r->ext = NULL;
        } else if (rc != 0 && r->xattr_data == NULL) {
            r->n_xattrs = 0; /* they pointed into the record freed below */
        }
    } else {
        /* GNU long names are NUL-terminated inside their data. */
        len = strnlen(r->ext, r->ext_len);
        if (r->meta == 'L')
            rc = set_name(r, r->gnu_path, &r->has_gnu_path, r->ext, len, "GNU long name", err,
                          errlen);
        else
            rc = set_name(r, r->gnu_link, &r->has_gnu_link, r->ext, len, "GNU long link name", err,
                          errlen);
    }
    free(r->ext);
    r->ext = NULL;
    r->ext_len = r->ext_cap = 0;
    r->meta_seen = true;
    return rc;
}

static bool header_only(char type)
{
    return type == '1' || type == '2' || type == '3' || type == '4' || type == '5' || type == '6';
}

/*
 * After an entry's data (or a record's), skip the padding, if any. Data
 * starts on a block boundary, so the offset tells how much is left.
 */
static void after_data(struct oci_tar_reader *r)
{
    r->pad_left = pad_of(r->offset);
    r->state = r->pad_left > 0 ? R_PAD : R_HEADER;
}

/* Handles a complete 512-byte block in r->blk. */
static int on_block(struct oci_tar_reader *r, char *err, size_t errlen)
{
    const unsigned char *h = r->blk;
    struct oci_tar_entry e;
    struct ocisync__clipped c;
    int64_t size, mode, uid, gid, mtime;
    bool posix, dir_name, zero = true;
    const char *path;
    size_t plen;
    char type;
    int rc;

    for (size_t i = 0; i < BLOCK; i++) {
        if (h[i] != 0) {
            zero = false;
            break;
        }
    }
    if (zero) {
        if (r->state == R_ZERO1) {
            r->state = R_END;
            return 0;
        }
        if (pending_meta(r))
            return bad(r, err, errlen, "a PAX or GNU record not followed by an entry");
        r->state = R_ZERO1;
        return 0;
    }
    if (r->state == R_ZERO1)
        return bad(r, err, errlen, "a header after a single end-of-archive block");
    if (!checksum_ok(h))
        return bad(r, err, errlen, "a wrong checksum");
    if (!parse_num(h + H_SIZE, 12, &size) || size < 0)
        return bad(r, err, errlen, "an invalid size");
    if (!parse_num(h + H_MODE, 8, &mode) || mode < 0)
        return bad(r, err, errlen, "an invalid mode");
    if (!parse_num(h + H_UID, 8, &uid) || uid < 0 || uid > (int64_t)UINT32_MAX)
        return bad(r, err, errlen, "an invalid uid");
    if (!parse_num(h + H_GID, 8, &gid) || gid < 0 || gid > (int64_t)UINT32_MAX)
        return bad(r, err, errlen, "an invalid gid");
    if (!parse_num(h + H_MTIME, 12, &mtime))
        return bad(r, err, errlen, "an invalid mtime");
    type = (char)h[H_TYPE];
    posix = memcmp(h + H_MAGIC, "ustar\0", 6) == 0;

    if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
        if ((uint64_t)size > OCI_TAR_EXT_MAX) {
            ocisync__errf(err, errlen,
                          "tar %s at offset %llu is %lld bytes, over the limit of %d bytes",
                          type == 'x' || type == 'g' ? "PAX extended header" : "GNU long name",
                          (unsigned long long)header_offset(r), (long long)size, OCI_TAR_EXT_MAX);
            return OCISYNC_ETOOBIG;
        }
        r->meta = type;
        r->data_left = (uint64_t)size;
        if (type == 'g') {
            r->state = R_SKIP;
        } else {
            /* One byte more than the record, so an 'L' name is always NUL-terminated. */
            r->ext = calloc(1, (size_t)size + 1);
            if (r->ext == NULL)
                return UV_ENOMEM;
            r->ext_cap = (size_t)size + 1;
            r->ext_len = 0;
            r->state = R_META;
        }
        if (size == 0) {
            if (type != 'g') {
                rc = end_meta(r, err, errlen);
                if (rc != 0)
                    return rc;
            }
            r->state = R_HEADER;
        }
        return 0;
    }

    /* A real entry: PAX beats GNU beats the header's own fields. */
    if (r->has_pax_path) {
        path = r->pax_path;
    } else if (r->has_gnu_path) {
        path = r->gnu_path;
    } else {
        char name[NAME_LEN + 1], prefix[PREFIX_LEN + 1];
        size_t nlen = field_str(h + H_NAME, NAME_LEN, name), xlen = 0;

        /* The old GNU format uses the prefix bytes for other things; only POSIX has a prefix. */
        if (posix)
            xlen = field_str(h + H_PREFIX, PREFIX_LEN, prefix);
        if (xlen > 0) {
            memcpy(r->path, prefix, xlen);
            r->path[xlen] = '/';
            memcpy(r->path + xlen + 1, name, nlen + 1);
        } else {
            memcpy(r->path, name, nlen + 1);
        }
        path = r->path;
    }
    plen = strlen(path);
    dir_name = plen > 0 && path[plen - 1] == '/';
    if (plen == 0)
        return bad(r, err, errlen, "an empty file name");
    /* "./x" is "x"; "./" itself is the archive's root directory, reported as ".". */
    while (path[0] == '.' && path[1] == '/') {
        path += 2;
        while (path[0] == '/')
            path++;
    }
    if (path[0] == '\0')
        path = ".";
    plen = strlen(path);
    memmove(r->path, path, plen + 1);

    if (r->has_pax_link)
        memcpy(r->link, r->pax_link, strlen(r->pax_link) + 1);
    else if (r->has_gnu_link)
        memcpy(r->link, r->gnu_link, strlen(r->gnu_link) + 1);
    else
        field_str(h + H_LINK, LINK_LEN, r->link);
    if (type == '1') {
        /* A hardlink names another entry, so it is spelled the way paths are. */
        const char *l = r->link;

        while (l[0] == '.' && l[1] == '/') {
            l += 2;
            while (l[0] == '/')
                l++;
        }
        memmove(r->link, l, strlen(l) + 1);
    }

    if (type == '\0')
        type = dir_name ? '5' : '0';
    e.type = type;
    e.path = r->path;
    e.linkname = r->link;
    e.size = r->has_size ? r->pax_size : (uint64_t)size;
    if (header_only(type))
        e.size = 0;
    e.mode = (uint32_t)(mode & 07777);
    e.uid = r->has_uid ? r->pax_uid : (uint32_t)uid;
    e.gid = r->has_gid ? r->pax_gid : (uint32_t)gid;
    e.mtime = r->has_mtime ? r->pax_mtime : mtime;
    e.devmajor = e.devminor = 0;
    if (type == '3' || type == '4') {
        int64_t maj, min;

        if (!parse_num(h + H_DEVMAJOR, 8, &maj) || !parse_num(h + H_DEVMINOR, 8, &min) || maj < 0 ||
            min < 0 || maj > (int64_t)UINT32_MAX || min > (int64_t)UINT32_MAX)
            return bad(r, err, errlen, "invalid device numbers");
        e.devmajor = (uint32_t)maj;
        e.devminor = (uint32_t)min;
    }
    e.xattrs = r->xattrs;
    e.n_xattrs = r->n_xattrs;
    clear_meta(r);

    rc = r->on_entry(r->arg, &e);
    drop_xattrs(r);
    if (rc != 0) {
        ocisync__errf(err, errlen, "tar entry \"%s\": %s",
                      ocisync__clip(r->path, ERR_QUOTE_MAX, &c), ocisync_strerror(rc));
        return rc;
    }
    r->data_left = e.size;
    if (e.size > 0)
        r->state = R_DATA;
    else
        r->state = R_HEADER;
    return 0;
}

int oci_tar_reader_init(struct oci_tar_reader *r, oci_tar_entry_cb on_entry,
                        oci_tar_data_cb on_data, void *arg)
{
    memset(r, 0, sizeof(*r));
    if (on_entry == NULL)
        return UV_EINVAL;
    r->on_entry = on_entry;
    r->on_data = on_data;
    r->arg = arg;
    r->state = R_HEADER;
    return 0;
}

int oci_tar_reader_feed(struct oci_tar_reader *r, const void *data, size_t len, char *err,
                        size_t errlen)
{
    const unsigned char *p = data;
    struct ocisync__clipped c;
    size_t take;
    int rc = 0;

    if (r->rc != 0) {
        ocisync__errf(err, errlen, "the tar reader already failed: %s", ocisync_strerror(r->rc));
        return r->rc;
    }
    if (r->on_entry == NULL) {
        ocisync__errf(err, errlen, "the tar reader is not initialised");
        return UV_EINVAL;
    }
    while (len > 0 && r->state != R_END) {
        switch (r->state) {
        case R_HEADER:
        case R_ZERO1:
            take = BLOCK - r->blk_len < len ? BLOCK - r->blk_len : len;
            memcpy(r->blk + r->blk_len, p, take);
            r->blk_len += take;
            r->offset += take;
            p += take;
            len -= take;
            if (r->blk_len < BLOCK)
                break;
            r->blk_len = 0;
            r->hdr_offset = r->offset - BLOCK;
            rc = on_block(r, err, errlen);
            if (rc != 0)
                goto fail;
            break;
        case R_DATA:
        case R_META:
        case R_SKIP:
            take = r->data_left < len ? (size_t)r->data_left : len;
            if (r->state == R_DATA && r->on_data != NULL) {
                rc = r->on_data(r->arg, p, take);
                if (rc != 0) {
                    ocisync__errf(err, errlen, "tar entry \"%s\": %s",
                                  ocisync__clip(r->path, ERR_QUOTE_MAX, &c), ocisync_strerror(rc));
                    goto fail;
                }
            } else if (r->state == R_META) {
                memcpy(r->ext + r->ext_len, p, take);
                r->ext_len += take;
            }
            r->data_left -= take;
            r->offset += take;
            p += take;
            len -= take;
            if (r->data_left > 0)
                break;
            if (r->state == R_META) {
                rc = end_meta(r, err, errlen);
                if (rc != 0)
                    goto fail;
                after_data(r);
                break;
            }
            after_data(r);
            break;
        case R_PAD:
            take = r->pad_left < len ? r->pad_left : len;
            r->pad_left -= take;
            r->offset += take;
            p += take;
            len -= take;
            if (r->pad_left == 0)
                r->state = R_HEADER;
            break;
        }
    }
    return 0;

fail:
    r->rc = rc;
    return rc;
}

int oci_tar_reader_finish(struct oci_tar_reader *r, char *err, size_t errlen)
{
    struct ocisync__clipped c;
    const char *where = NULL;

    if (r->rc != 0) {
        ocisync__errf(err, errlen, "the tar reader already failed: %s", ocisync_strerror(r->rc));
        return r->rc;
    }
    switch (r->state) {
    case R_END:
        return 0;
    case R_HEADER:
    case R_ZERO1:
        if (r->blk_len > 0)
            where = r->state == R_HEADER ? "inside a header" : "inside the end-of-archive blocks";
        else if (pending_meta(r))
            where = "after a PAX or GNU record, before its entry";
        break;
    case R_DATA:
        ocisync__errf(err, errlen,
                      "tar archive is truncated: it ends inside the data of \"%s\" (%llu bytes "
                      "missing)",
                      ocisync__clip(r->path, ERR_QUOTE_MAX, &c), (unsigned long long)r->data_left);
        r->rc = UV_EINVAL;
        return UV_EINVAL;
    case R_META:
    case R_SKIP:
        where = "inside a PAX or GNU record";
        break;
    case R_PAD:
        where = "inside the padding after an entry";
        break;
    }
    if (where == NULL)
        return 0;
    ocisync__errf(err, errlen, "tar archive is truncated: it ends %s, at offset %llu", where,
                  (unsigned long long)r->offset);
    r->rc = UV_EINVAL;
    return UV_EINVAL;
}

void oci_tar_reader_dispose(struct oci_tar_reader *r)
{
    drop_xattrs(r);
    free(r->ext);
    r->ext = NULL;
    r->ext_len = r->ext_cap = 0;
}
