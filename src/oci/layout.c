/*
 * OCI image layouts: reading index.json and blobs, and writing them so that
 * an interrupted run never leaves a half-written blob under its final name
 * nor an index naming a missing blob.
 *
 * A layout given as a copy source may come from anywhere, so it is read as
 * hostile input: files are opened relative to the layout's directory
 * descriptor with O_NOFOLLOW, below blobs and blobs/<alg> directories opened
 * the same way, and must be regular files (a FIFO would block,
 * a device would never end), every read is capped, index.json goes through
 * oci_manifest_parse, and blob paths are built only from digests that parse.
 */
#include "oci/layout.h"

#include "common/json_depth.h"
#include "common/msg.h"
#include "common/sysio.h"
#include "ocisync.h"

#include <uv.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LAYOUT_VERSION "1.0.0"
#define LAYOUT_FILE "oci-layout"
#define INDEX_FILE "index.json"

/*
 * Temp files start with this prefix. Leftovers of an interrupted run are
 * ignored when deciding whether a directory is empty enough to become a
 * layout.
 */
#define TMP_PREFIX ".tmp-"

/* The oci-layout file is one flat object; nothing legitimate nests deeper. */
#define LAYOUT_FILE_MAX_DEPTH 4

/* "blobs/sha512/" + 128 hex + NUL, with room to spare. */
#define BLOB_PATH_MAX 160
/* "blobs/sha512" + NUL, with room to spare. */
#define BLOB_DIR_MAX 16

/* How many characters of a user-given string an error message quotes. */
#define QUOTE_MAX 120

/* How many names the "which image?" error lists before "...". */
#define CHOICES_MSG_MAX 400

/* ---------------------------------------------------------------------------------------------
 * Small helpers
 */

static const char *clip(const char *s, struct ocisync__clipped *c)
{
    return ocisync__clip(s != NULL ? s : "", QUOTE_MAX, c);
}

/*
 * Re-parses d's string, so that a hand-built or corrupted struct can never
 * put "../" or a wrong algorithm directory into a path.
 */
static int canonical_digest(const struct oci_digest *d, struct oci_digest *out)
{
    if (d == NULL || oci_digest_parse_str(d->str, out) != 0 || out->alg != d->alg)
        return OCISYNC_EDIGEST;
    return 0;
}

/* "sha256" or "sha512" for a canonical digest. */
static const char *alg_dir(const struct oci_digest *d)
{
    return d->alg == OCI_DIGEST_SHA512 ? "sha512" : "sha256";
}

/*
 * Opens the directory name (relative to dirfd, made first when create)
 * without following a symbolic link: UV_ELOOP for a link, UV_ENOTDIR for
 * anything else that is not a directory.
 */
static int open_subdir(int dirfd, const char *name, bool create, int *fd)
{
    struct stat st;
    int rc;

    if (create && mkdirat(dirfd, name, 0755) != 0 && errno != EEXIST)
        return ocisync__sys_error();
    *fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (*fd >= 0)
        return 0;
    rc = ocisync__sys_error();
    /* Linux reports a link as ENOTDIR here; lstat only tells the two apart for the message. */
    if (rc == UV_ENOTDIR && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(st.st_mode))
        rc = UV_ELOOP;
    return rc;
}

/*
 * Opens blobs/<alg> of the layout one component at a time (making them first
 * when create). O_NOFOLLOW on a blob file guards only its last component: a
 * blobs or blobs/<alg> that is a symbolic link would send reads and writes
 * outside the layout, so each directory is opened with O_NOFOLLOW too and
 * everything below it goes through *at() calls on the descriptor. On error
 * path names the directory at fault ("blobs" or "blobs/<alg>").
 */
static int open_blobs_dir(int dirfd, const char *alg, bool create, int *fd, char *path,
                          size_t pathlen)
{
    int blobs = -1, rc;

    *fd = -1;
    snprintf(path, pathlen, "blobs");
    rc = open_subdir(dirfd, "blobs", create, &blobs);
    if (rc != 0)
        return rc;
    snprintf(path, pathlen, "blobs/%s", alg);
    rc = open_subdir(blobs, alg, create, fd);
    close(blobs);
    return rc;
}

/* The message for an open_blobs_dir error about path in the layout dir. */
static void blobs_dir_errf(int rc, const char *path, const char *dir, char *err, size_t errlen)
{
    if (rc == UV_ELOOP)
        ocisync__errf(err, errlen, "%s in layout %s is a symbolic link; refused", path, dir);
    else if (rc == UV_ENOTDIR)
        ocisync__errf(err, errlen, "%s in layout %s is not a directory; refused", path, dir);
    else
        ocisync__errf(err, errlen, "cannot open %s in layout %s: %s", path, dir, uv_strerror(rc));
}

/*
 * Opens name (relative to dirfd) for reading without following a symbolic
 * link in its last component; O_NONBLOCK keeps a FIFO from blocking the open.
 * Returns UV_ELOOP for a symbolic link and UV_EINVAL for anything but a
 * regular file.
 */
static int open_regular(int dirfd, const char *name, int *fd, struct stat *st)
{
    int f = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

    *fd = -1;
    memset(st, 0, sizeof(*st));
    if (f < 0)
        return ocisync__sys_error();
    if (fstat(f, st) != 0) {
        int rc = ocisync__sys_error();
        close(f);
        return rc;
    }
    if (!S_ISREG(st->st_mode)) {
        close(f);
        return UV_EINVAL;
    }
    /* Regular files ignore O_NONBLOCK, but readers of the descriptor should not see it. */
    (void)fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK);
    *fd = f;
    return 0;
}

/*
 * Reads the rest of fd, at most max bytes; more is OCISYNC_ETOOBIG. hint is
 * the size fstat reported, used only to size the first allocation. *data
 * gets an extra NUL.
 */
static int read_capped_fd(int fd, uint64_t hint, size_t max, char **data, size_t *len)
{
    size_t cap, total = 0;
    char *buf, *nb;
    int rc = 0;

    *data = NULL;
    *len = 0;
    /* Keeps max + 2 below SIZE_MAX; no file we read whole comes near it. */
    if (max > SIZE_MAX / 4)
        max = SIZE_MAX / 4;
    if (hint > max)
        return OCISYNC_ETOOBIG;
    /* One byte beyond the expected size, so that a file that grew is noticed. */
    cap = (size_t)hint + 1;
    buf = malloc(cap + 1);
    if (buf == NULL)
        return UV_ENOMEM;
    for (;;) {
        ssize_t n;
        if (total == cap) {
            size_t ncap;
            if (cap > max) {
                rc = OCISYNC_ETOOBIG;
                goto out;
            }
            ncap = cap > max / 2 ? max + 1 : cap * 2;
            nb = realloc(buf, ncap + 1);
            if (nb == NULL) {
                rc = UV_ENOMEM;
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        n = read(fd, buf + total, cap - total);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = ocisync__sys_error();
            goto out;
        }
        if (n == 0)
            break;
        total += (size_t)n;
    }
    if (total > max) {
        rc = OCISYNC_ETOOBIG;
        goto out;
    }
    buf[total] = '\0';
    *data = buf;
    *len = total;
    buf = NULL;
out:
    free(buf);
    return rc;
}

static int read_capped(int dirfd, const char *name, size_t max, char **data, size_t *len)
{
    struct stat st;
    int fd, rc;

    *data = NULL;
    *len = 0;
    rc = open_regular(dirfd, name, &fd, &st);
    if (rc != 0)
        return rc;
    rc = read_capped_fd(fd, (uint64_t)st.st_size, max, data, len);
    close(fd);
    return rc;
}

/*
 * Replaces name (relative to the layout) with data: a temp file beside it,
 * fsync, rename, fsync of the directory. Readers see the old file or the
 * new one, never a mixture.
 */
static int write_atomic(const struct oci_layout *l, const char *name, const void *data, size_t len,
                        char *err, size_t errlen)
{
    struct ocisync__clipped c;
    char tmp[128], rnd[17];
    int fd = -1, rc;

    rc = ocisync__random_hex16(rnd);
    if (rc != 0)
        goto fail;
    snprintf(tmp, sizeof(tmp), TMP_PREFIX "%s-%s", name, rnd);
    fd = openat(l->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        rc = ocisync__sys_error();
        goto fail;
    }
    rc = ocisync__write_full(fd, data, len);
    if (rc != 0)
        goto fail_tmp;
    if (fsync(fd) != 0) {
        rc = ocisync__sys_error();
        goto fail_tmp;
    }
    rc = close(fd) != 0 ? ocisync__sys_error() : 0;
    fd = -1;
    if (rc != 0)
        goto fail_tmp;
    if (renameat(l->dirfd, tmp, l->dirfd, name) != 0) {
        rc = ocisync__sys_error();
        goto fail_tmp;
    }
    if (fsync(l->dirfd) != 0) {
        rc = ocisync__sys_error();
        goto fail;
    }
    return 0;

fail_tmp:
    if (fd >= 0)
        close(fd);
    unlinkat(l->dirfd, tmp, 0);
fail:
    ocisync__errf(err, errlen, "cannot write %s in layout %s: %s", name, clip(l->dir, &c),
                  uv_strerror(rc));
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Ref names
 */

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool oci_layout_ref_valid(const char *ref)
{
    bool need_alnum = true;
    size_t n, i = 0;

    if (ref == NULL)
        return false;
    n = strnlen(ref, OCI_LAYOUT_REF_MAX + 1);
    if (n == 0 || n > OCI_LAYOUT_REF_MAX)
        return false;
    /* need_alnum is set at the start of a component and after each separator. */
    while (i < n) {
        char ch = ref[i];
        if (is_alnum(ch)) {
            need_alnum = false;
            i++;
        } else if (need_alnum) {
            return false;
        } else if (ch == '-' && ref[i + 1] == '-') {
            need_alnum = true;
            i += 2;
        } else if (ch == '/' || ch == '-' || ch == '.' || ch == '_' || ch == ':' || ch == '@' ||
                   ch == '+') {
            need_alnum = true;
            i++;
        } else {
            return false;
        }
    }
    return !need_alnum;
}

/*
 * A trailing ":sha256:<hex>" or "@sha256:<hex>" (or sha512) in spec[0, end)
 * after a non-empty directory: returns where the "sha..." starts, or NULL.
 */
static const char *trailing_digest(const char *spec, size_t end)
{
    static const size_t digest_lens[] = {7 + 64, 7 + 128};
    struct oci_digest d;

    for (size_t i = 0; i < sizeof(digest_lens) / sizeof(digest_lens[0]); i++) {
        size_t n = digest_lens[i];
        const char *start;
        if (end < n + 2)
            continue;
        start = spec + end - n;
        if (start[-1] != ':' && start[-1] != '@')
            continue;
        if (oci_digest_parse(start, n, &d) == 0)
            return start;
    }
    return NULL;
}

int oci_layout_ref_split(const char *spec, char *dir, size_t dirlen, char *ref, size_t reflen)
{
    const char *colon, *ref_start = NULL, *dg;
    size_t len, dir_end, ref_len = 0;
    int rc;

    if (spec == NULL || dir == NULL || ref == NULL || dirlen == 0 || reflen == 0)
        return OCISYNC_EUSAGE;
    dir[0] = '\0';
    ref[0] = '\0';
    len = strlen(spec);
    dir_end = len;
    dg = trailing_digest(spec, len);
    if (dg != NULL) {
        ref_start = dg;
        dir_end = (size_t)(dg - spec) - 1;
    } else {
        colon = strrchr(spec, ':');
        if (colon != NULL && strchr(colon + 1, '/') == NULL) {
            ref_start = colon + 1;
            dir_end = (size_t)(colon - spec);
        }
    }
    if (ref_start != NULL)
        ref_len = len - (size_t)(ref_start - spec);

    if (dir_end == 0) {
        rc = OCISYNC_EREF;
        goto fail;
    }
    if (dir_end >= dirlen || ref_len >= reflen) {
        rc = OCISYNC_ETOOBIG;
        goto fail;
    }
    if (ref_len > 0) {
        memcpy(ref, ref_start, ref_len);
        ref[ref_len] = '\0';
        if (!oci_layout_ref_valid(ref)) {
            rc = OCISYNC_EREF;
            goto fail;
        }
    }
    memcpy(dir, spec, dir_end);
    dir[dir_end] = '\0';
    return 0;

fail:
    dir[0] = '\0';
    ref[0] = '\0';
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Opening
 */

/* The ref name annotation of an index entry, or NULL. */
static const char *entry_ref_name(json_t *entry)
{
    json_t *ann = json_object_get(entry, "annotations");
    json_t *v = json_object_get(ann, OCI_LAYOUT_REF_ANNOTATION);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_t *index_manifests(const struct oci_layout *l)
{
    return json_object_get(l->index, "manifests");
}

static json_t *new_index(void)
{
    return json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType", OCI_MT_OCI_INDEX,
                     "manifests");
}

/* True if the directory holds nothing but temp files of an earlier interrupted create. */
static int dir_is_empty(int dirfd, bool *empty)
{
    struct dirent *e;
    DIR *d;
    int fd;

    *empty = true;
    /* fdopendir takes the descriptor; the layout keeps its own. */
    fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ocisync__sys_error();
    d = fdopendir(fd);
    if (d == NULL) {
        int rc = ocisync__sys_error();
        close(fd);
        return rc;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0)
            continue;
        *empty = false;
        break;
    }
    closedir(d);
    return 0;
}

/* Checks an oci-layout file: {"imageLayoutVersion":"1.0.0"}, other fields allowed. */
static int check_layout_file(const struct oci_layout *l, const char *data, size_t len, char *err,
                             size_t errlen)
{
    struct ocisync__clipped c, c2;
    json_t *root = NULL, *v;
    json_error_t jerr;
    int rc = OCISYNC_EMANIFEST;

    if (ocisync__json_too_deep(data, len, LAYOUT_FILE_MAX_DEPTH)) {
        ocisync__errf(err, errlen, "oci-layout in layout %s nests deeper than %d levels",
                      clip(l->dir, &c), LAYOUT_FILE_MAX_DEPTH);
        goto out;
    }
    root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        if (json_error_code(&jerr) == json_error_out_of_memory) {
            rc = UV_ENOMEM;
            goto out;
        }
        ocisync__errf(err, errlen, "oci-layout in layout %s is not valid JSON: %s",
                      clip(l->dir, &c), jerr.text);
        goto out;
    }
    v = json_object_get(root, "imageLayoutVersion");
    if (!json_is_string(v)) {
        ocisync__errf(err, errlen, "oci-layout in layout %s has no \"imageLayoutVersion\" string",
                      clip(l->dir, &c));
        goto out;
    }
    if (strcmp(json_string_value(v), LAYOUT_VERSION) != 0) {
        ocisync__errf(err, errlen,
                      "layout %s has imageLayoutVersion \"%s\"; only \"" LAYOUT_VERSION
                      "\" is supported",
                      clip(l->dir, &c), clip(json_string_value(v), &c2));
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* Reads and validates index.json; a missing one is an empty index. */
static int load_index(struct oci_layout *l, char *err, size_t errlen)
{
    struct ocisync__clipped c, c2;
    struct oci_manifest m;
    char perr[256];
    json_error_t jerr;
    json_t *root = NULL, *arr;
    char *data = NULL;
    size_t len;
    int rc;

    memset(&m, 0, sizeof(m));
    rc = read_capped(l->dirfd, INDEX_FILE, OCI_MANIFEST_MAX_SIZE, &data, &len);
    if (rc == UV_ENOENT) {
        root = new_index();
        rc = root != NULL ? 0 : UV_ENOMEM;
        goto done;
    }
    if (rc != 0) {
        if (rc == OCISYNC_ETOOBIG)
            ocisync__errf(err, errlen, "index.json in layout %s is over the limit of %d bytes",
                          clip(l->dir, &c), OCI_MANIFEST_MAX_SIZE);
        else if (rc == UV_ELOOP)
            ocisync__errf(err, errlen, "index.json in layout %s is a symbolic link; refused",
                          clip(l->dir, &c));
        else if (rc == UV_EINVAL)
            ocisync__errf(err, errlen, "index.json in layout %s is not a regular file",
                          clip(l->dir, &c));
        else
            ocisync__errf(err, errlen, "cannot read index.json in layout %s: %s", clip(l->dir, &c),
                          uv_strerror(rc));
        if (rc == UV_ELOOP || rc == UV_EINVAL)
            rc = OCISYNC_EMANIFEST;
        goto out;
    }

    /* The full check (size, depth, schemaVersion, every descriptor) is the manifest parser's. */
    rc = oci_manifest_parse(NULL, data, len, &m, perr, sizeof(perr));
    if (rc != 0) {
        ocisync__errf(err, errlen, "index.json in layout %s: %s", clip(l->dir, &c), perr);
        if (rc != UV_ENOMEM && rc != OCISYNC_ETOOBIG)
            rc = OCISYNC_EMANIFEST;
        goto out;
    }
    if (m.kind != OCI_KIND_INDEX || strcmp(m.media_type, OCI_MT_OCI_INDEX) != 0) {
        ocisync__errf(err, errlen, "index.json in layout %s is not an OCI image index (it is %s)",
                      clip(l->dir, &c), clip(m.media_type, &c2));
        rc = OCISYNC_EMANIFEST;
        goto out;
    }
    root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    arr = json_object_get(root, "manifests");
    if (root == NULL || !json_is_array(arr) || json_array_size(arr) != m.n_manifests) {
        /* The same bytes just parsed; only memory can make this fail. */
        rc = UV_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < m.n_manifests; i++) {
        json_t *e = json_array_get(arr, i), *ann = json_object_get(e, "annotations"), *v;
        if (ann == NULL)
            continue;
        if (!json_is_object(ann)) {
            ocisync__errf(err, errlen,
                          "index.json in layout %s: manifest %zu: \"annotations\" is not an object",
                          clip(l->dir, &c), i);
            rc = OCISYNC_EMANIFEST;
            goto out;
        }
        v = json_object_get(ann, OCI_LAYOUT_REF_ANNOTATION);
        if (v != NULL && (!json_is_string(v) || !oci_layout_ref_valid(json_string_value(v)))) {
            ocisync__errf(
                err, errlen,
                "index.json in layout %s: manifest %zu: invalid " OCI_LAYOUT_REF_ANNOTATION
                " \"%s\"",
                clip(l->dir, &c), i, json_is_string(v) ? clip(json_string_value(v), &c2) : "");
            rc = OCISYNC_EMANIFEST;
            goto out;
        }
    }
    l->entries = m.manifests;
    l->n_entries = m.n_manifests;
    l->cap_entries = m.n_manifests;
    m.manifests = NULL;
    m.n_manifests = 0;

done:
    l->index = root;
    root = NULL;
out:
    json_decref(root);
    oci_manifest_free(&m);
    free(data);
    return rc;
}

/* Turns an empty directory into a layout: oci-layout first, so a crash leaves a valid layout. */
static int init_layout(struct oci_layout *l, char *err, size_t errlen)
{
    static const char layout_json[] = "{\"imageLayoutVersion\":\"" LAYOUT_VERSION "\"}";
    struct ocisync__clipped c;
    char path[BLOB_DIR_MAX];
    int fd, rc;

    rc = write_atomic(l, LAYOUT_FILE, layout_json, sizeof(layout_json) - 1, err, errlen);
    if (rc != 0)
        return rc;
    rc = open_blobs_dir(l->dirfd, "sha256", true, &fd, path, sizeof(path));
    if (rc != 0) {
        blobs_dir_errf(rc, path, clip(l->dir, &c), err, errlen);
        return rc;
    }
    close(fd);
    if (fsync(l->dirfd) != 0) {
        rc = ocisync__sys_error();
        ocisync__errf(err, errlen, "cannot create blobs/sha256 in layout %s: %s", clip(l->dir, &c),
                      uv_strerror(rc));
    }
    return rc;
}

/*
 * Refuses an existing layout whose blobs or blobs/<alg> is a symbolic link
 * or not a directory, before anything is read from it or written into it.
 * Every later use opens them again with O_NOFOLLOW, so a link made after
 * this check is refused as well.
 */
static int check_blobs_dirs(const struct oci_layout *l, char *err, size_t errlen)
{
    static const char *const algs[] = {"sha256", "sha512"};
    struct ocisync__clipped c;
    char path[BLOB_DIR_MAX];
    int fd, rc;

    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        rc = open_blobs_dir(l->dirfd, algs[i], false, &fd, path, sizeof(path));
        if (rc == 0) {
            close(fd);
            continue;
        }
        if (rc == UV_ENOENT)
            continue;
        blobs_dir_errf(rc, path, clip(l->dir, &c), err, errlen);
        return rc == UV_ELOOP || rc == UV_ENOTDIR ? OCISYNC_EMANIFEST : rc;
    }
    return 0;
}

int oci_layout_open(struct oci_layout *l, const char *dir, bool create, char *err, size_t errlen)
{
    struct ocisync__clipped c;
    char *data = NULL;
    size_t len;
    bool empty;
    int rc;

    memset(l, 0, sizeof(*l));
    l->dirfd = -1;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (dir == NULL || dir[0] == '\0') {
        ocisync__errf(err, errlen, "no layout directory given");
        rc = OCISYNC_EUSAGE;
        goto fail;
    }
    l->dir = strdup(dir);
    if (l->dir == NULL) {
        rc = UV_ENOMEM;
        goto fail;
    }
    if (create && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        rc = ocisync__sys_error();
        ocisync__errf(err, errlen, "cannot create layout directory %s: %s", clip(dir, &c),
                      uv_strerror(rc));
        goto fail;
    }
    l->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (l->dirfd < 0) {
        rc = ocisync__sys_error();
        if (rc == UV_ENOENT)
            ocisync__errf(err, errlen, "layout directory %s does not exist", clip(dir, &c));
        else if (rc == UV_ENOTDIR)
            ocisync__errf(err, errlen, "layout %s is not a directory", clip(dir, &c));
        else
            ocisync__errf(err, errlen, "cannot open layout directory %s: %s", clip(dir, &c),
                          uv_strerror(rc));
        goto fail;
    }

    rc = read_capped(l->dirfd, LAYOUT_FILE, OCI_LAYOUT_FILE_MAX, &data, &len);
    if (rc == UV_ENOENT) {
        if (!create) {
            ocisync__errf(err, errlen, "%s is not an OCI image layout: it has no oci-layout file",
                          clip(dir, &c));
            rc = OCISYNC_EMANIFEST;
            goto fail;
        }
        rc = dir_is_empty(l->dirfd, &empty);
        if (rc != 0) {
            ocisync__errf(err, errlen, "cannot list layout directory %s: %s", clip(dir, &c),
                          uv_strerror(rc));
            goto fail;
        }
        if (!empty) {
            ocisync__errf(err, errlen,
                          "%s is not an OCI image layout (no oci-layout file) and is not empty; "
                          "refusing to write into it",
                          clip(dir, &c));
            rc = OCISYNC_EMANIFEST;
            goto fail;
        }
        rc = init_layout(l, err, errlen);
        if (rc != 0)
            goto fail;
        l->index = new_index();
        if (l->index == NULL) {
            rc = UV_ENOMEM;
            goto fail;
        }
        return 0;
    }
    if (rc != 0) {
        if (rc == OCISYNC_ETOOBIG)
            ocisync__errf(err, errlen, "oci-layout in layout %s is over %d bytes", clip(dir, &c),
                          OCI_LAYOUT_FILE_MAX);
        else if (rc == UV_ELOOP)
            ocisync__errf(err, errlen, "oci-layout in layout %s is a symbolic link; refused",
                          clip(dir, &c));
        else if (rc == UV_EINVAL)
            ocisync__errf(err, errlen, "oci-layout in layout %s is not a regular file",
                          clip(dir, &c));
        else
            ocisync__errf(err, errlen, "cannot read oci-layout in layout %s: %s", clip(dir, &c),
                          uv_strerror(rc));
        if (rc == OCISYNC_ETOOBIG || rc == UV_ELOOP || rc == UV_EINVAL)
            rc = OCISYNC_EMANIFEST;
        goto fail;
    }
    rc = check_layout_file(l, data, len, err, errlen);
    if (rc != 0)
        goto fail;
    rc = load_index(l, err, errlen);
    if (rc == 0)
        rc = check_blobs_dirs(l, err, errlen);
    if (rc != 0)
        goto fail;
    free(data);
    return 0;

fail:
    free(data);
    oci_layout_close(l);
    return rc;
}

void oci_layout_close(struct oci_layout *l)
{
    if (l == NULL)
        return;
    if (l->dirfd >= 0)
        close(l->dirfd);
    json_decref(l->index);
    free(l->entries);
    free(l->dir);
    memset(l, 0, sizeof(*l));
    l->dirfd = -1;
}

/* ---------------------------------------------------------------------------------------------
 * Entries
 */

size_t oci_layout_count(const struct oci_layout *l)
{
    return l != NULL ? l->n_entries : 0;
}

int oci_layout_entry(const struct oci_layout *l, size_t i, struct oci_descriptor *d,
                     const char **ref_name)
{
    if (l == NULL || i >= l->n_entries)
        return OCISYNC_EUSAGE;
    if (d != NULL)
        *d = l->entries[i];
    if (ref_name != NULL)
        *ref_name = entry_ref_name(json_array_get(index_manifests(l), i));
    return 0;
}

/* "a, b, sha256:... (unnamed)" into buf, cut with "..." when long. */
static void list_choices(const struct oci_layout *l, char *buf, size_t len)
{
    json_t *arr = index_manifests(l);
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < l->n_entries; i++) {
        const char *name = entry_ref_name(json_array_get(arr, i));
        int n = snprintf(buf + used, len - used, "%s%s%s", i > 0 ? ", " : "",
                         name != NULL ? name : l->entries[i].digest.str,
                         name != NULL ? "" : " (unnamed)");
        if (n < 0 || (size_t)n >= len - used) {
            /* Overwrite the tail so the cut is visible. */
            if (len >= 4)
                memcpy(buf + len - 4, "...", 4);
            return;
        }
        used += (size_t)n;
    }
}

int oci_layout_resolve(const struct oci_layout *l, const char *ref, struct oci_descriptor *out,
                       char *err, size_t errlen)
{
    struct ocisync__clipped c, c2;
    struct oci_digest want;
    json_t *arr;
    bool at;

    memset(out, 0, sizeof(*out));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (ref == NULL || ref[0] == '\0') {
        char choices[CHOICES_MSG_MAX];
        if (l->n_entries == 1) {
            *out = l->entries[0];
            return 0;
        }
        if (l->n_entries == 0) {
            ocisync__errf(err, errlen, "layout %s has no images", clip(l->dir, &c));
            return OCISYNC_ENOTFOUND;
        }
        list_choices(l, choices, sizeof(choices));
        ocisync__errf(err, errlen, "layout %s holds %zu images; name one of: %s", clip(l->dir, &c),
                      l->n_entries, choices);
        return OCISYNC_EREF;
    }

    at = ref[0] == '@';
    if (oci_digest_parse_str(at ? ref + 1 : ref, &want) == 0) {
        for (size_t i = 0; i < l->n_entries; i++) {
            if (oci_digest_equal(&l->entries[i].digest, &want)) {
                *out = l->entries[i];
                return 0;
            }
        }
        if (at) {
            ocisync__errf(err, errlen, "image %s not found in layout %s", want.str,
                          clip(l->dir, &c));
            return OCISYNC_ENOTFOUND;
        }
    } else if (at) {
        ocisync__errf(err, errlen, "invalid digest \"%s\" for layout %s", clip(ref + 1, &c2),
                      clip(l->dir, &c));
        return OCISYNC_EREF;
    }

    if (!oci_layout_ref_valid(ref)) {
        ocisync__errf(err, errlen, "invalid image name \"%s\" for layout %s", clip(ref, &c2),
                      clip(l->dir, &c));
        return OCISYNC_EREF;
    }
    arr = index_manifests(l);
    for (size_t i = 0; i < l->n_entries; i++) {
        const char *name = entry_ref_name(json_array_get(arr, i));
        if (name != NULL && strcmp(name, ref) == 0) {
            *out = l->entries[i];
            return 0;
        }
    }
    ocisync__errf(err, errlen, "image \"%s\" not found in layout %s", clip(ref, &c2),
                  clip(l->dir, &c));
    return OCISYNC_ENOTFOUND;
}

/* ---------------------------------------------------------------------------------------------
 * Reading blobs
 */

int oci_layout_blob_open(const struct oci_layout *l, const struct oci_digest *d, int *fd,
                         uint64_t *size, char *err, size_t errlen)
{
    struct ocisync__clipped c;
    struct oci_digest dg;
    char path[BLOB_DIR_MAX];
    struct stat st;
    int bdir, rc;

    *fd = -1;
    if (size != NULL)
        *size = 0;
    if (canonical_digest(d, &dg) != 0) {
        ocisync__errf(err, errlen, "invalid blob digest for layout %s", clip(l->dir, &c));
        return OCISYNC_EDIGEST;
    }
    rc = open_blobs_dir(l->dirfd, alg_dir(&dg), false, &bdir, path, sizeof(path));
    if (rc == 0) {
        rc = open_regular(bdir, oci_digest_hex(&dg), fd, &st);
        close(bdir);
    } else if (rc != UV_ENOENT) {
        blobs_dir_errf(rc, path, clip(l->dir, &c), err, errlen);
        return rc;
    }
    switch (rc) {
    case 0:
        if (size != NULL)
            *size = (uint64_t)st.st_size;
        return 0;
    case UV_ENOENT:
        ocisync__errf(err, errlen, "blob %s not found in layout %s", dg.str, clip(l->dir, &c));
        return OCISYNC_ENOTFOUND;
    case UV_ELOOP:
        ocisync__errf(err, errlen, "blob %s in layout %s is a symbolic link; refused", dg.str,
                      clip(l->dir, &c));
        return rc;
    case UV_EINVAL:
        ocisync__errf(err, errlen, "blob %s in layout %s is not a regular file", dg.str,
                      clip(l->dir, &c));
        return rc;
    default:
        ocisync__errf(err, errlen, "cannot open blob %s in layout %s: %s", dg.str, clip(l->dir, &c),
                      uv_strerror(rc));
        return rc;
    }
}

int oci_layout_blob_read(const struct oci_layout *l, const struct oci_digest *d, size_t max,
                         char **data, size_t *len, char *err, size_t errlen)
{
    struct ocisync__clipped c;
    struct oci_digest got;
    uint64_t size;
    char *buf = NULL;
    size_t n = 0;
    int fd = -1, rc;

    *data = NULL;
    *len = 0;
    rc = oci_layout_blob_open(l, d, &fd, &size, err, errlen);
    if (rc != 0)
        goto out;
    if (size > max) {
        ocisync__errf(err, errlen,
                      "blob %s in layout %s is %" PRIu64 " bytes, over the limit of %zu", d->str,
                      clip(l->dir, &c), size, max);
        rc = OCISYNC_ETOOBIG;
        goto out;
    }
    rc = read_capped_fd(fd, size, max, &buf, &n);
    if (rc == OCISYNC_ETOOBIG) {
        ocisync__errf(err, errlen, "blob %s in layout %s is over the limit of %zu bytes", d->str,
                      clip(l->dir, &c), max);
        goto out;
    }
    if (rc != 0) {
        ocisync__errf(err, errlen, "cannot read blob %s in layout %s: %s", d->str, clip(l->dir, &c),
                      uv_strerror(rc));
        goto out;
    }
    rc = oci_digest_buffer(d->alg, buf, n, &got);
    if (rc != 0) {
        ocisync__errf(err, errlen, "cannot hash blob %s in layout %s: %s", d->str, clip(l->dir, &c),
                      uv_strerror(rc));
        goto out;
    }
    if (!oci_digest_equal(&got, d)) {
        ocisync__errf(err, errlen, "blob %s in layout %s does not match its digest (content is %s)",
                      d->str, clip(l->dir, &c), got.str);
        rc = OCISYNC_EDIGESTMISMATCH;
        goto out;
    }
    *data = buf;
    *len = n;
    buf = NULL;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

bool oci_layout_blob_exists(const struct oci_layout *l, const struct oci_digest *d, int64_t size)
{
    char path[BLOB_DIR_MAX];
    struct oci_digest dg;
    struct stat st;
    int bdir, rc;

    if (l == NULL || l->dirfd < 0 || canonical_digest(d, &dg) != 0 ||
        open_blobs_dir(l->dirfd, alg_dir(&dg), false, &bdir, path, sizeof(path)) != 0)
        return false;
    rc = fstatat(bdir, oci_digest_hex(&dg), &st, AT_SYMLINK_NOFOLLOW);
    close(bdir);
    if (rc != 0 || !S_ISREG(st.st_mode))
        return false;
    return size < 0 || (int64_t)st.st_size == size;
}

/* ---------------------------------------------------------------------------------------------
 * Writing blobs
 */

/* Closes everything the writer holds and removes its temp file, if still there. */
static void writer_discard(struct oci_layout_writer *w)
{
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    if (w->dirfd >= 0) {
        if (w->tmp_name[0] != '\0')
            unlinkat(w->dirfd, w->tmp_name, 0);
        close(w->dirfd);
        w->dirfd = -1;
    }
    w->tmp_name[0] = '\0';
    oci_hasher_dispose(&w->hasher);
}

int oci_layout_blob_begin(const struct oci_layout *l, const struct oci_digest *d, int64_t size,
                          struct oci_layout_writer *w, char *err, size_t errlen)
{
    struct ocisync__clipped c;
    char path[BLOB_DIR_MAX], rnd[17];
    int rc;

    memset(w, 0, sizeof(*w));
    w->fd = -1;
    w->dirfd = -1;
    w->size = size < 0 ? -1 : size;
    snprintf(w->dir, sizeof(w->dir), "%s", clip(l->dir, &c));
    if (canonical_digest(d, &w->digest) != 0) {
        ocisync__errf(err, errlen, "invalid blob digest for layout %s", w->dir);
        rc = OCISYNC_EDIGEST;
        goto fail;
    }
    /* blobs/sha512 is made on first use; an older layout may even lack blobs/sha256. */
    rc = open_blobs_dir(l->dirfd, alg_dir(&w->digest), true, &w->dirfd, path, sizeof(path));
    if (rc != 0) {
        blobs_dir_errf(rc, path, w->dir, err, errlen);
        goto fail;
    }
    /* O_EXCL with a random name: two writers of one blob never share a temp file. */
    for (int attempt = 0; attempt < 4 && w->fd < 0; attempt++) {
        rc = ocisync__random_hex16(rnd);
        if (rc != 0)
            break;
        snprintf(w->tmp_name, sizeof(w->tmp_name), TMP_PREFIX "%s-%s", oci_digest_hex(&w->digest),
                 rnd);
        w->fd = openat(w->dirfd, w->tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                       0644);
        rc = w->fd < 0 ? ocisync__sys_error() : 0;
        if (rc != 0 && rc != UV_EEXIST)
            break;
    }
    if (w->fd < 0) {
        w->tmp_name[0] = '\0';
        ocisync__errf(err, errlen, "cannot create a temp file for blob %s in layout %s: %s",
                      w->digest.str, w->dir, uv_strerror(rc));
        goto fail;
    }
    rc = oci_hasher_init(&w->hasher, w->digest.alg);
    if (rc != 0) {
        ocisync__errf(err, errlen, "cannot hash blob %s for layout %s: %s", w->digest.str, w->dir,
                      uv_strerror(rc));
        goto fail;
    }
    return 0;

fail:
    writer_discard(w);
    return rc;
}

int oci_layout_blob_write(struct oci_layout_writer *w, const void *data, size_t len, char *err,
                          size_t errlen)
{
    int rc;

    if (w->failed || w->fd < 0) {
        ocisync__errf(err, errlen, "blob %s for layout %s: write after the writer finished",
                      w->digest.str, w->dir);
        return UV_EINVAL;
    }
    if (len == 0)
        return 0;
    if (w->size >= 0 && (len > (uint64_t)w->size || w->written > (uint64_t)w->size - len)) {
        ocisync__errf(err, errlen,
                      "blob %s for layout %s: more than the expected %" PRId64 " bytes",
                      w->digest.str, w->dir, w->size);
        rc = OCISYNC_ESIZEMISMATCH;
        goto fail;
    }
    rc = ocisync__write_full(w->fd, data, len);
    if (rc != 0) {
        ocisync__errf(err, errlen, "cannot write blob %s in layout %s: %s", w->digest.str, w->dir,
                      uv_strerror(rc));
        goto fail;
    }
    oci_hasher_update(&w->hasher, data, len);
    w->written += len;
    return 0;

fail:
    w->failed = true;
    writer_discard(w);
    return rc;
}

int oci_layout_blob_rename(struct oci_layout_writer *w, const struct oci_digest *d, int64_t size)
{
    struct oci_digest c;
    if (canonical_digest(d, &c) != 0 || c.alg != w->digest.alg)
        return OCISYNC_EDIGEST;
    w->digest = c;
    w->size = size < 0 ? -1 : size;
    return 0;
}

int oci_layout_blob_commit(struct oci_layout_writer *w, char *err, size_t errlen)
{
    struct oci_digest got;
    char final_name[BLOB_PATH_MAX];
    int rc;

    if (w->failed || w->fd < 0) {
        ocisync__errf(err, errlen, "blob %s for layout %s: %s", w->digest.str, w->dir,
                      w->failed ? "an earlier write failed" : "commit after the writer finished");
        rc = UV_EINVAL;
        goto out;
    }
    if (w->size >= 0 && w->written != (uint64_t)w->size) {
        ocisync__errf(err, errlen, "blob %s for layout %s is %" PRIu64 " bytes, expected %" PRId64,
                      w->digest.str, w->dir, w->written, w->size);
        rc = OCISYNC_ESIZEMISMATCH;
        goto out;
    }
    rc = oci_hasher_final(&w->hasher, &got);
    if (rc != 0) {
        ocisync__errf(err, errlen, "cannot hash blob %s for layout %s: %s", w->digest.str, w->dir,
                      uv_strerror(rc));
        goto out;
    }
    if (!oci_digest_equal(&got, &w->digest)) {
        ocisync__errf(err, errlen,
                      "blob %s for layout %s does not match its digest (content is %s)",
                      w->digest.str, w->dir, got.str);
        rc = OCISYNC_EDIGESTMISMATCH;
        goto out;
    }
    /* The data must be on disk before its name is, or a crash could publish a hole. */
    if (fsync(w->fd) != 0) {
        rc = ocisync__sys_error();
        goto io_error;
    }
    rc = close(w->fd) != 0 ? ocisync__sys_error() : 0;
    w->fd = -1;
    if (rc != 0)
        goto io_error;
    /*
     * rename replaces an existing file: the bytes just verified win over
     * whatever was there, which may be a truncated or corrupt leftover.
     */
    snprintf(final_name, sizeof(final_name), "%s", oci_digest_hex(&w->digest));
    if (renameat(w->dirfd, w->tmp_name, w->dirfd, final_name) != 0) {
        rc = ocisync__sys_error();
        goto io_error;
    }
    w->tmp_name[0] = '\0';
    /* The name must be durable before an index that points at it is written. */
    if (fsync(w->dirfd) != 0) {
        rc = ocisync__sys_error();
        goto io_error;
    }
    goto out;

io_error:
    ocisync__errf(err, errlen, "cannot store blob %s in layout %s: %s", w->digest.str, w->dir,
                  uv_strerror(rc));
out:
    writer_discard(w);
    return rc;
}

void oci_layout_blob_abort(struct oci_layout_writer *w)
{
    if (w != NULL)
        writer_discard(w);
}

int oci_layout_put_blob(const struct oci_layout *l, const struct oci_digest *d, const void *data,
                        size_t len, char *err, size_t errlen)
{
    struct oci_layout_writer w;
    int rc;

    if (len > INT64_MAX || (data == NULL && len > 0))
        return OCISYNC_EUSAGE;
    rc = oci_layout_blob_begin(l, d, (int64_t)len, &w, err, errlen);
    if (rc != 0)
        return rc;
    rc = oci_layout_blob_write(&w, data, len, err, errlen);
    if (rc == 0)
        rc = oci_layout_blob_commit(&w, err, errlen);
    oci_layout_blob_abort(&w);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Writing the index
 */

/* One half of a media type: [A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126} (RFC 6838). */
static bool media_type_name(const char *s, size_t n)
{
    if (n == 0 || n > 127 || !is_alnum(s[0]))
        return false;
    for (size_t i = 1; i < n; i++) {
        if (!is_alnum(s[i]) && (s[i] == '\0' || strchr("!#$&^_.+-", s[i]) == NULL))
            return false;
    }
    return true;
}

static bool media_type_ok(const char *mt, size_t size)
{
    size_t n = strnlen(mt, size);
    const char *slash;

    if (n == size)
        return false;
    slash = strchr(mt, '/');
    return slash != NULL && media_type_name(mt, (size_t)(slash - mt)) &&
           media_type_name(slash + 1, n - (size_t)(slash - mt) - 1);
}

/* A platform string: NUL-terminated in its array, no '/' where it would split "os/arch". */
static bool platform_field_ok(const char *s, size_t size, bool required, bool slash_ok)
{
    size_t n = strnlen(s, size);
    if (n == size || (required && n == 0))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f || (!slash_ok && ch == '/'))
            return false;
    }
    return true;
}

static int set_string(json_t *obj, const char *key, const char *value)
{
    /* json_string refuses invalid UTF-8 by returning NULL. */
    json_t *v = json_string(value);
    if (v == NULL)
        return OCISYNC_EUSAGE;
    return json_object_set_new(obj, key, v) == 0 ? 0 : UV_ENOMEM;
}

/* The index entry for d, in the key order the image-spec's examples use. */
static int build_entry(const struct oci_descriptor *d, const char *ref_name, json_t **out)
{
    json_t *e = json_object(), *p = NULL, *ann = NULL;
    int rc = UV_ENOMEM;

    *out = NULL;
    if (e == NULL)
        goto out;
    rc = set_string(e, "mediaType", d->media_type);
    if (rc == 0)
        rc = set_string(e, "digest", d->digest.str);
    if (rc == 0)
        rc = json_object_set_new(e, "size", json_integer(d->size)) == 0 ? 0 : UV_ENOMEM;
    if (rc == 0 && d->has_platform) {
        p = json_object();
        rc = p != NULL ? set_string(p, "architecture", d->platform.arch) : UV_ENOMEM;
        if (rc == 0)
            rc = set_string(p, "os", d->platform.os);
        if (rc == 0 && d->platform.os_version[0] != '\0')
            rc = set_string(p, "os.version", d->platform.os_version);
        if (rc == 0 && d->platform.variant[0] != '\0')
            rc = set_string(p, "variant", d->platform.variant);
        if (rc == 0)
            rc = json_object_set(e, "platform", p) == 0 ? 0 : UV_ENOMEM;
    }
    if (rc == 0 && ref_name != NULL) {
        ann = json_object();
        rc = ann != NULL ? set_string(ann, OCI_LAYOUT_REF_ANNOTATION, ref_name) : UV_ENOMEM;
        if (rc == 0)
            rc = json_object_set(e, "annotations", ann) == 0 ? 0 : UV_ENOMEM;
    }
    if (rc == 0) {
        *out = e;
        e = NULL;
    }
out:
    json_decref(ann);
    json_decref(p);
    json_decref(e);
    return rc;
}

/* Removes entry i from both the JSON array and the parsed entries. */
static void remove_entry(struct oci_layout *l, size_t i)
{
    json_array_remove(index_manifests(l), i);
    memmove(&l->entries[i], &l->entries[i + 1], (l->n_entries - i - 1) * sizeof(l->entries[0]));
    l->n_entries--;
}

int oci_layout_add(struct oci_layout *l, const struct oci_descriptor *d, const char *ref_name,
                   char *err, size_t errlen)
{
    struct ocisync__clipped c, c2;
    struct oci_descriptor nd;
    json_t *arr, *e = NULL;
    size_t slot = SIZE_MAX;
    int rc;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (ref_name != NULL && ref_name[0] == '\0')
        ref_name = NULL;
    if (ref_name != NULL && !oci_layout_ref_valid(ref_name)) {
        ocisync__errf(err, errlen, "invalid image name \"%s\" for layout %s", clip(ref_name, &c2),
                      clip(l->dir, &c));
        rc = OCISYNC_EREF;
        goto out;
    }
    nd = *d;
    if (!nd.has_platform)
        memset(&nd.platform, 0, sizeof(nd.platform));
    if (canonical_digest(&d->digest, &nd.digest) != 0 || d->size < 0 ||
        !media_type_ok(d->media_type, sizeof(d->media_type)) ||
        (d->has_platform &&
         (!platform_field_ok(d->platform.os, sizeof(d->platform.os), true, false) ||
          !platform_field_ok(d->platform.arch, sizeof(d->platform.arch), true, false) ||
          !platform_field_ok(d->platform.variant, sizeof(d->platform.variant), false, false) ||
          !platform_field_ok(d->platform.os_version, sizeof(d->platform.os_version), false,
                             true)))) {
        ocisync__errf(err, errlen,
                      "invalid descriptor for layout %s (digest, size, mediaType "
                      "or platform)",
                      clip(l->dir, &c));
        rc = OCISYNC_EUSAGE;
        goto out;
    }
    if (!oci_layout_blob_exists(l, &nd.digest, nd.size)) {
        ocisync__errf(err, errlen,
                      "cannot add %s to the index of layout %s: no blob of %" PRId64
                      " bytes with that digest in the layout",
                      nd.digest.str, clip(l->dir, &c), nd.size);
        rc = OCISYNC_ENOTFOUND;
        goto out;
    }

    arr = index_manifests(l);
    for (size_t i = 0; i < l->n_entries; i++) {
        const char *name = entry_ref_name(json_array_get(arr, i));
        if (ref_name == NULL && name == NULL &&
            oci_digest_equal(&l->entries[i].digest, &nd.digest)) {
            rc = 0; /* already listed, unnamed */
            goto out;
        }
        if (ref_name != NULL && name != NULL && strcmp(name, ref_name) == 0) {
            slot = i;
            break;
        }
    }
    if (slot == SIZE_MAX && l->n_entries >= OCI_INDEX_MAX_MANIFESTS) {
        ocisync__errf(err, errlen, "the index of layout %s would list more than %d images",
                      clip(l->dir, &c), OCI_INDEX_MAX_MANIFESTS);
        rc = OCISYNC_ETOOBIG;
        goto out;
    }
    if (slot == SIZE_MAX && l->n_entries == l->cap_entries) {
        size_t ncap = l->cap_entries < 8 ? 8 : l->cap_entries * 2;
        struct oci_descriptor *ne = realloc(l->entries, ncap * sizeof(*ne));
        if (ne == NULL) {
            rc = UV_ENOMEM;
            goto out;
        }
        l->entries = ne;
        l->cap_entries = ncap;
    }
    rc = build_entry(&nd, ref_name, &e);
    if (rc != 0) {
        if (rc == OCISYNC_EUSAGE)
            ocisync__errf(err, errlen, "descriptor %s for layout %s has a string that is not UTF-8",
                          nd.digest.str, clip(l->dir, &c));
        goto out;
    }

    if (slot != SIZE_MAX) {
        if (json_array_set(arr, slot, e) != 0) {
            rc = UV_ENOMEM;
            goto out;
        }
        l->entries[slot] = nd;
        /* An older index may name several entries alike; the name now means this one only. */
        for (size_t i = l->n_entries; i-- > slot + 1;) {
            const char *name = entry_ref_name(json_array_get(arr, i));
            if (name != NULL && strcmp(name, ref_name) == 0)
                remove_entry(l, i);
        }
    } else {
        if (json_array_append(arr, e) != 0) {
            rc = UV_ENOMEM;
            goto out;
        }
        l->entries[l->n_entries++] = nd;
    }
out:
    json_decref(e);
    return rc;
}

/* A copy of index with schemaVersion and mediaType first, then its other members in order. */
static json_t *normalized_index(json_t *index)
{
    json_t *root = new_index(), *v;
    const char *key;

    if (root == NULL)
        return NULL;
    json_object_foreach(index, key, v)
    {
        if (strcmp(key, "schemaVersion") == 0 || strcmp(key, "mediaType") == 0)
            continue;
        if (json_object_set(root, key, v) != 0) {
            json_decref(root);
            return NULL;
        }
    }
    return root;
}

int oci_layout_commit(struct oci_layout *l, char *err, size_t errlen)
{
    /* Objects keep insertion order in jansson >= 2.8; the flag documents the intent. */
    const size_t dump_flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    struct ocisync__clipped c;
    struct oci_manifest m;
    json_t *root = NULL;
    char *buf = NULL, perr[256];
    struct stat st;
    size_t need;
    int rc;

    memset(&m, 0, sizeof(m));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    root = normalized_index(l->index);
    if (root == NULL) {
        rc = UV_ENOMEM;
        goto out;
    }
    need = json_dumpb(root, NULL, 0, dump_flags);
    if (need == 0) {
        rc = UV_ENOMEM;
        goto out;
    }
    if (need > OCI_MANIFEST_MAX_SIZE) {
        ocisync__errf(err, errlen,
                      "index.json for layout %s would be %zu bytes, over the limit of %d",
                      clip(l->dir, &c), need, OCI_MANIFEST_MAX_SIZE);
        rc = OCISYNC_ETOOBIG;
        goto out;
    }
    buf = malloc(need);
    if (buf == NULL || json_dumpb(root, buf, need, dump_flags) != need) {
        rc = UV_ENOMEM;
        goto out;
    }
    /* Never write an index this module (or anyone) could not read back. */
    rc = oci_manifest_parse(NULL, buf, need, &m, perr, sizeof(perr));
    if (rc != 0) {
        ocisync__errf(err, errlen, "index.json for layout %s would be invalid: %s",
                      clip(l->dir, &c), perr);
        goto out;
    }

    if (fstatat(l->dirfd, LAYOUT_FILE, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        static const char layout_json[] = "{\"imageLayoutVersion\":\"" LAYOUT_VERSION "\"}";
        rc = write_atomic(l, LAYOUT_FILE, layout_json, sizeof(layout_json) - 1, err, errlen);
        if (rc != 0)
            goto out;
    }
    rc = write_atomic(l, INDEX_FILE, buf, need, err, errlen);
    if (rc != 0)
        goto out;
    json_decref(l->index);
    l->index = root;
    root = NULL;
out:
    oci_manifest_free(&m);
    free(buf);
    json_decref(root);
    return rc;
}
