/*
 * dir:PATH, skopeo's directory format, to and from an OCI layout: the copy
 * engine reads and writes layouts, and a dir: side of a copy is a layout in a
 * temp directory turned into (or made from) the directory.
 */
#include "oci/dir.h"

#include "common/msg.h"
#include "oci/archive.h"
#include "oci/layout.h"
#include "oci/manifest.h"
#include "ocisync.h"

#include <uv.h>

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_MAX_DIR 4600

static int sys_err(char *err, size_t errlen, const char *what, const char *path)
{
    int e = errno;
    snprintf(err, errlen, "cannot %s %s: %s", what, path, strerror(e));
    return uv_translate_sys_error(e);
}

/* Reads a whole small file (a manifest) into a malloc'ed buffer. */
static int read_file(const char *path, size_t max, char **data, size_t *len, char *err,
                     size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc = 0;
    if (fd < 0)
        return sys_err(err, errlen, "read", path);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        rc = UV_EINVAL;
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        snprintf(err, errlen, "%s is larger than %zu bytes", path, max);
        rc = OCISYNC_ETOOBIG;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? sys_err(err, errlen, "read", path) : UV_EIO;
            goto out;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

static int write_file(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    const char *p = data;
    if (fd < 0)
        return sys_err(err, errlen, "create", path);
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int rc = sys_err(err, errlen, "write", path);
            close(fd);
            return rc;
        }
        p += n;
        len -= (size_t)n;
    }
    if (close(fd) != 0)
        return sys_err(err, errlen, "write", path);
    return 0;
}

/* to becomes a hard link to from, or a copy of it where links cannot be made. */
static int place(const char *from, const char *to, char *err, size_t errlen)
{
    char buf[1 << 16];
    int in, out, rc = 0;
    if (link(from, to) == 0)
        return 0;
    if (errno == ENOENT)
        return sys_err(err, errlen, "read", from);
    in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0)
        return sys_err(err, errlen, "read", from);
    out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        rc = sys_err(err, errlen, "create", to);
        close(in);
        return rc;
    }
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf)), w = 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = sys_err(err, errlen, "read", from);
            break;
        }
        if (n == 0)
            break;
        while (w < n) {
            ssize_t k = write(out, buf + w, (size_t)(n - w));
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0) {
                rc = sys_err(err, errlen, "write", to);
                break;
            }
            w += k;
        }
        if (rc != 0)
            break;
    }
    close(in);
    if (close(out) != 0 && rc == 0)
        rc = sys_err(err, errlen, "write", to);
    return rc;
}

/* The layout's file for blob d. */
static void blob_path(const char *layout_dir, const struct oci_digest *d, char *out, size_t len)
{
    snprintf(out, len, "%s/blobs/%s/%s", layout_dir,
             d->alg == OCI_DIGEST_SHA512 ? "sha512" : "sha256", oci_digest_hex(d));
}

/* A manifest's bytes checked against the digest its index (or nothing) gives, and parsed. */
static int take_manifest(const char *path, const struct oci_digest *want, char **raw, size_t *len,
                         struct oci_digest *d, struct oci_manifest *m, char *err, size_t errlen)
{
    char msg[512];
    int rc = read_file(path, OCI_MANIFEST_MAX_SIZE, raw, len, err, errlen);
    if (rc != 0)
        return rc;
    rc = oci_digest_buffer(want != NULL ? want->alg : OCI_DIGEST_SHA256, *raw, *len, d);
    if (rc == 0 && want != NULL && !oci_digest_equal(d, want)) {
        snprintf(err, errlen, "%s hashes to %s, not %s", path, d->str, want->str);
        rc = OCISYNC_EDIGESTMISMATCH;
    }
    if (rc == 0) {
        rc = oci_manifest_parse(NULL, *raw, *len, m, msg, sizeof(msg));
        if (rc != 0)
            snprintf(err, errlen, "%s: %s", path, msg);
    }
    if (rc != 0) {
        free(*raw);
        *raw = NULL;
    }
    return rc;
}

/* An image manifest's config and layers from dir into the layout. */
static int image_blobs_in(const char *dir, const char *layout_dir, const struct oci_manifest *m,
                          char *err, size_t errlen)
{
    char from[PATH_MAX_DIR], to[PATH_MAX_DIR];
    for (size_t i = 0; i <= m->n_layers; i++) {
        const struct oci_digest *d = i == 0 ? &m->config.digest : &m->layers[i - 1].digest;
        struct stat st;
        snprintf(from, sizeof(from), "%s/%s", dir, oci_digest_hex(d));
        blob_path(layout_dir, d, to, sizeof(to));
        if (lstat(to, &st) == 0)
            continue; /* shared with another platform */
        if (lstat(from, &st) != 0 || !S_ISREG(st.st_mode)) {
            snprintf(err, errlen, "dir:%s: blob %s is missing (no regular file %s)", dir, d->str,
                     from);
            return UV_ENOENT;
        }
        if (d->alg == OCI_DIGEST_SHA512) {
            char sub[PATH_MAX_DIR];
            snprintf(sub, sizeof(sub), "%s/blobs/sha512", layout_dir);
            mkdir(sub, 0755);
        }
        int rc = place(from, to, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int oci_dir_to_layout(const char *dir, const char *layout_dir, const char *name, char *err,
                      size_t errlen)
{
    struct oci_layout lay;
    struct oci_manifest top, child;
    struct oci_descriptor desc;
    struct oci_digest d;
    char path[PATH_MAX_DIR], *raw = NULL, *craw = NULL, *ver = NULL;
    size_t len, clen, vlen;
    bool lay_open = false, top_parsed = false;
    int rc;

    memset(&top, 0, sizeof(top));
    snprintf(path, sizeof(path), "%s/version", dir);
    if (read_file(path, 4096, &ver, &vlen, err, errlen) == 0) {
        bool ok = strncmp(ver, "Directory Transport Version: 1.", 31) == 0;
        free(ver);
        if (!ok) {
            snprintf(err, errlen, "dir:%s: %s names a version of the format other than 1.x", dir,
                     path);
            return OCISYNC_EMANIFEST;
        }
    }
    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    rc = take_manifest(path, NULL, &raw, &len, &d, &top, err, errlen);
    if (rc != 0) {
        if (rc == UV_ENOENT)
            snprintf(err, errlen, "dir:%s: no manifest.json (not an image directory)", dir);
        return rc;
    }
    top_parsed = true;
    rc = oci_layout_open(&lay, layout_dir, true, err, errlen);
    if (rc != 0)
        goto out;
    lay_open = true;
    if (top.kind == OCI_KIND_INDEX) {
        for (size_t i = 0; i < top.n_manifests && rc == 0; i++) {
            const struct oci_descriptor *cd = &top.manifests[i];
            struct oci_digest got;
            snprintf(path, sizeof(path), "%s/%s.manifest.json", dir, oci_digest_hex(&cd->digest));
            memset(&child, 0, sizeof(child));
            rc = take_manifest(path, &cd->digest, &craw, &clen, &got, &child, err, errlen);
            if (rc != 0)
                break;
            rc = oci_layout_put_blob(&lay, &got, craw, clen, err, errlen);
            if (rc == 0 && child.kind == OCI_KIND_IMAGE)
                rc = image_blobs_in(dir, layout_dir, &child, err, errlen);
            oci_manifest_free(&child);
            free(craw);
            craw = NULL;
        }
    } else {
        rc = image_blobs_in(dir, layout_dir, &top, err, errlen);
    }
    if (rc == 0)
        rc = oci_layout_put_blob(&lay, &d, raw, len, err, errlen);
    if (rc != 0)
        goto out;
    memset(&desc, 0, sizeof(desc));
    snprintf(desc.media_type, sizeof(desc.media_type), "%s",
             top.media_type[0] ? top.media_type : OCI_MT_OCI_MANIFEST);
    desc.digest = d;
    desc.size = (int64_t)len;
    rc = oci_layout_add(&lay, &desc, name, err, errlen);
    if (rc == 0)
        rc = oci_layout_commit(&lay, err, errlen);
out:
    if (lay_open)
        oci_layout_close(&lay);
    if (top_parsed)
        oci_manifest_free(&top);
    free(raw);
    return rc;
}

/* An image manifest's config and layers from the layout into the directory being built. */
static int image_blobs_out(const char *layout_dir, const struct oci_manifest *m, const char *tmp,
                           char *err, size_t errlen)
{
    char from[PATH_MAX_DIR], to[PATH_MAX_DIR];
    for (size_t i = 0; i <= m->n_layers; i++) {
        const struct oci_digest *d = i == 0 ? &m->config.digest : &m->layers[i - 1].digest;
        struct stat st;
        blob_path(layout_dir, d, from, sizeof(from));
        snprintf(to, sizeof(to), "%s/%s", tmp, oci_digest_hex(d));
        if (lstat(to, &st) == 0)
            continue;
        int rc = place(from, to, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Whether an existing dir may be replaced: empty, or an image directory (a version file). */
static int replaceable(const char *dir, bool *exists, char *err, size_t errlen)
{
    struct stat st;
    int rc = oci_dir_check_dest(dir, err, errlen);
    *exists = rc == 0 && lstat(dir, &st) == 0;
    /* An empty directory goes; one that holds an image stays (rmdir fails) to be replaced whole. */
    if (*exists && rmdir(dir) == 0)
        *exists = false;
    return rc;
}

int oci_dir_write(const char *layout_dir, const char *name, const char *dir, char *err,
                  size_t errlen)
{
    struct oci_layout lay;
    struct oci_descriptor top;
    struct oci_manifest m, child;
    char tmp[PATH_MAX_DIR] = "", old[PATH_MAX_DIR] = "", path[PATH_MAX_DIR + 100];
    char *raw = NULL, *craw = NULL;
    size_t len, clen;
    bool lay_open = false, parsed = false, exists = false;
    int rc;

    rc = oci_layout_open(&lay, layout_dir, false, err, errlen);
    if (rc != 0)
        return rc;
    lay_open = true;
    rc = oci_layout_resolve(&lay, name, &top, err, errlen);
    if (rc == 0)
        rc =
            oci_layout_blob_read(&lay, &top.digest, OCI_MANIFEST_MAX_SIZE, &raw, &len, err, errlen);
    if (rc == 0)
        rc = oci_manifest_parse(top.media_type, raw, len, &m, err, errlen);
    if (rc != 0)
        goto out;
    parsed = true;
    rc = replaceable(dir, &exists, err, errlen);
    if (rc != 0)
        goto out;
    snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", dir);
    if (mkdtemp(tmp) == NULL) {
        rc = sys_err(err, errlen, "create", tmp);
        tmp[0] = '\0';
        goto out;
    }
    snprintf(path, sizeof(path), "%s/version", tmp);
    rc = write_file(path, OCI_DIR_VERSION, strlen(OCI_DIR_VERSION), err, errlen);
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/manifest.json", tmp);
        rc = write_file(path, raw, len, err, errlen);
    }
    if (rc == 0 && m.kind == OCI_KIND_INDEX) {
        for (size_t i = 0; i < m.n_manifests && rc == 0; i++) {
            const struct oci_descriptor *cd = &m.manifests[i];
            rc = oci_layout_blob_read(&lay, &cd->digest, OCI_MANIFEST_MAX_SIZE, &craw, &clen, err,
                                      errlen);
            if (rc != 0)
                break;
            snprintf(path, sizeof(path), "%s/%s.manifest.json", tmp, oci_digest_hex(&cd->digest));
            rc = write_file(path, craw, clen, err, errlen);
            if (rc == 0)
                rc = oci_manifest_parse(cd->media_type, craw, clen, &child, err, errlen);
            if (rc == 0) {
                if (child.kind == OCI_KIND_IMAGE)
                    rc = image_blobs_out(layout_dir, &child, tmp, err, errlen);
                oci_manifest_free(&child);
            }
            free(craw);
            craw = NULL;
        }
    } else if (rc == 0) {
        rc = image_blobs_out(layout_dir, &m, tmp, err, errlen);
    }
    if (rc != 0)
        goto out;
    /* The old image steps aside only once the new one is complete. */
    if (exists) {
        snprintf(old, sizeof(old), "%s.old-XXXXXX", dir);
        if (mkdtemp(old) == NULL || rename(dir, old) != 0) {
            rc = sys_err(err, errlen, "move aside", dir);
            if (old[0] != '\0')
                rmdir(old);
            old[0] = '\0';
            goto out;
        }
    }
    if (rename(tmp, dir) != 0) {
        rc = sys_err(err, errlen, "rename into place", dir);
        if (old[0] != '\0')
            rename(old, dir);
        old[0] = '\0';
        goto out;
    }
    tmp[0] = '\0';
out:
    if (tmp[0] != '\0')
        oci_archive_remove_dir(tmp);
    if (old[0] != '\0')
        oci_archive_remove_dir(old);
    if (parsed)
        oci_manifest_free(&m);
    if (lay_open)
        oci_layout_close(&lay);
    free(raw);
    return rc;
}

int oci_dir_check_dest(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    char path[PATH_MAX_DIR];
    struct dirent *e;
    DIR *d;
    bool empty = true;
    if (lstat(dir, &st) != 0)
        return errno == ENOENT ? 0 : sys_err(err, errlen, "look at", dir);
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "dir:%s exists and is not a directory", dir);
        return OCISYNC_EUSAGE;
    }
    snprintf(path, sizeof(path), "%s/version", dir);
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
        return 0;
    d = opendir(dir);
    if (d == NULL)
        return sys_err(err, errlen, "read", dir);
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    if (empty)
        return 0;
    snprintf(err, errlen,
             "dir:%s is not empty and holds no image (no version file): refusing to replace it",
             dir);
    return OCISYNC_EUSAGE;
}
