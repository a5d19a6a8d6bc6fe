/*
 * OCI archives (oci-archive:FILE): an OCI image layout in a tar file. A
 * source archive is unpacked into a private temp directory and read as a
 * layout; a destination is written as a layout in a temp directory and
 * packed into FILE (through FILE.tmp-*, renamed) only when everything in it
 * succeeded, so a failed run leaves the old FILE, or none, never half of one.
 */
#define _XOPEN_SOURCE 700
#include "oci/archive.h"

#include "common/msg.h"
#include "common/sysio.h"
#include "oci/tar.h"
#include "ocisync.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define IO_BUF (1024 * 1024)

int oci_archive_tempdir(char *out, size_t len, char *err, size_t errlen)
{
    const char *base;
    int rc = ocisync__tmp_template(out, len, "ocisync-archive-XXXXXX", &base, err, errlen);
    if (rc != 0)
        return rc;
    if (mkdtemp(out) == NULL) {
        int e = errno;
        snprintf(err, errlen, "cannot create a temp directory in %s: %s", base, strerror(e));
        return uv_translate_sys_error(e);
    }
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void oci_archive_remove_dir(const char *dir)
{
    if (dir != NULL && dir[0] != '\0')
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------------------------------------ */
/* Unpacking */

struct unpack {
    const char *dir;
    const char *file;
    bool links; /* symbolic links skipped rather than refused (docker save makes them) */
    int fd;     /* the file being written, or -1 */
    char *msg;  /* the caller's error buffer */
    size_t msglen;
    unsigned long files; /* regular files written */
};

bool oci_archive_path_inside(const char *p)
{
    const char *c = p;
    if (p == NULL || *p == '/' || *p == '\0')
        return false;
    while (*c != '\0') {
        size_t n = strcspn(c, "/");
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return false;
        c += n;
        while (*c == '/')
            c++;
    }
    return true;
}

static int close_current(struct unpack *u)
{
    if (u->fd >= 0 && close(u->fd) != 0) {
        u->fd = -1;
        return uv_translate_sys_error(errno);
    }
    u->fd = -1;
    return 0;
}

static int on_entry(void *arg, const struct oci_tar_entry *e)
{
    struct unpack *u = arg;
    char path[OCI_TAR_PATH_MAX + 600];
    int err = close_current(u);
    if (err != 0)
        return err;
    if (strcmp(e->path, ".") == 0)
        return 0;
    if (!oci_archive_path_inside(e->path)) {
        struct ocisync__clipped c;
        snprintf(u->msg, u->msglen, "%s: the entry \"%s\" would land outside the layout", u->file,
                 ocisync__clip(e->path, 200, &c));
        return OCISYNC_EUSAGE;
    }
    snprintf(path, sizeof(path), "%s/%s", u->dir, e->path);
    switch (e->type) {
    case '5': {
        size_t n = strlen(path);
        while (n > 0 && path[n - 1] == '/')
            path[--n] = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            snprintf(u->msg, u->msglen, "%s: cannot create %s: %s", u->file, e->path,
                     strerror(errno));
            return uv_translate_sys_error(errno);
        }
        return 0;
    }
    case '0': {
        /* Parents first: archives written by other tools may leave directory entries out. */
        for (char *p = path + strlen(u->dir) + 1; *p != '\0'; p++) {
            if (*p != '/')
                continue;
            *p = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST) {
                int e2 = errno;
                snprintf(u->msg, u->msglen, "%s: cannot create %s: %s", u->file, path,
                         strerror(e2));
                return uv_translate_sys_error(e2);
            }
            *p = '/';
        }
        u->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (u->fd < 0) {
            int e2 = errno;
            snprintf(u->msg, u->msglen, "%s: cannot write %s: %s", u->file, e->path,
                     e2 == EEXIST ? "the archive holds it twice" : strerror(e2));
            return uv_translate_sys_error(e2);
        }
        u->files++;
        return 0;
    }
    case '2':
        /*
         * docker save (25 and later) adds links from the old layer paths to
         * the blobs; they are left out, never followed: manifest.json names
         * the blobs themselves.
         */
        if (u->links)
            return 0;
        /* fall through */
    default: {
        /* Links and devices have no place in a layout: refused rather than followed. */
        struct ocisync__clipped c;
        snprintf(u->msg, u->msglen, "%s: the entry \"%s\" is not a file or directory (type %c)",
                 u->file, ocisync__clip(e->path, 200, &c), e->type);
        return OCISYNC_EUSAGE;
    }
    }
}

static int on_data(void *arg, const void *data, size_t len)
{
    struct unpack *u = arg;
    int rc = ocisync__write_full(u->fd, data, len);
    if (rc != 0)
        snprintf(u->msg, u->msglen, "%s: cannot unpack: %s", u->file, uv_strerror(rc));
    return rc;
}

int oci_archive_unpack(const char *file, const char *dir, bool links, char *err, size_t errlen)
{
    struct oci_tar_reader r;
    struct unpack u = {
        .dir = dir, .file = file, .links = links, .fd = -1, .msg = err, .msglen = errlen};
    char *buf = NULL, rerr[512] = "";
    int fd = -1, rc;

    err[0] = '\0';
    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open the archive %s: %s", file, strerror(e));
        return e == ENOENT ? OCISYNC_ENOTFOUND : uv_translate_sys_error(e);
    }
    buf = malloc(IO_BUF);
    if (buf == NULL) {
        close(fd);
        return UV_ENOMEM;
    }
    oci_tar_reader_init(&r, on_entry, on_data, &u);
    for (;;) {
        ssize_t n = read(fd, buf, IO_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = uv_translate_sys_error(errno);
            snprintf(err, errlen, "cannot read the archive %s: %s", file, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        rc = oci_tar_reader_feed(&r, buf, (size_t)n, rerr, sizeof(rerr));
        if (rc != 0)
            goto out;
    }
    rc = oci_tar_reader_finish(&r, rerr, sizeof(rerr));
    if (rc == 0)
        rc = close_current(&u);
    if (rc == 0 && u.files == 0) {
        snprintf(err, errlen, "%s is not an OCI archive: it holds no files", file);
        rc = OCISYNC_EUSAGE;
    }
out:
    /* The entry callbacks' own message says more than the reader's. */
    if (rc != 0 && err[0] == '\0')
        snprintf(err, errlen, "cannot unpack the archive %s: %s", file,
                 rerr[0] ? rerr : ocisync_strerror(rc));
    close_current(&u);
    oci_tar_reader_dispose(&r);
    free(buf);
    close(fd);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Packing */

int oci_archive_pack(const char *dir, const char *file, char *err, size_t errlen)
{
    struct oci_tar_source src = {.src = dir, .dest = "/"};
    struct oci_tar_opts opts;
    struct oci_tar_plan plan;
    struct oci_tar_stream s;
    char tmp[4200] = "", *buf = NULL;
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    bool planned = false, streaming = false;
    int fd = -1, rc;

    memset(&opts, 0, sizeof(opts));
    if (sde != NULL && *sde != '\0') {
        opts.clamp_mtime = true;
        opts.mtime_max = strtoll(sde, NULL, 10);
    }
    rc = oci_tar_plan_build(&plan, &src, 1, &opts, err, errlen);
    if (rc != 0)
        return rc;
    planned = true;
    rc = oci_tar_stream_init(&s, &plan);
    if (rc != 0)
        goto out;
    streaming = true;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", file) >= sizeof(tmp)) {
        snprintf(err, errlen, "archive name too long: %s", file);
        rc = OCISYNC_EUSAGE;
        goto out;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(e));
        rc = uv_translate_sys_error(e);
        goto out;
    }
    buf = malloc(IO_BUF);
    if (buf == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    for (;;) {
        size_t n = 0;
        rc = oci_tar_stream_read(&s, buf, IO_BUF, &n, err, errlen);
        if (rc != 0 || n == 0)
            break;
        rc = ocisync__write_full(fd, buf, n);
        if (rc != 0) {
            snprintf(err, errlen, "cannot write %s: %s", file, uv_strerror(rc));
            goto out;
        }
    }
    if (rc == 0 && fsync(fd) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot write %s: %s", file, strerror(e));
        rc = uv_translate_sys_error(e);
    }
    if (rc == 0 && fchmod(fd, 0644) != 0)
        rc = uv_translate_sys_error(errno);
    if (close(fd) != 0 && rc == 0) {
        int e = errno;
        snprintf(err, errlen, "cannot write %s: %s", file, strerror(e));
        rc = uv_translate_sys_error(e);
    }
    fd = -1;
    if (rc == 0 && rename(tmp, file) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot replace %s: %s", file, strerror(e));
        rc = uv_translate_sys_error(e);
    }
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0 && tmp[0] != '\0')
        unlink(tmp);
    free(buf);
    if (streaming)
        oci_tar_stream_dispose(&s);
    if (planned)
        oci_tar_plan_free(&plan);
    return rc;
}
