/*
 * The build cache (see cache.h).
 */
#define _GNU_SOURCE /* nftw */
#include "engine/cache.h"

#include "oci/archive.h"

#include "common/log.h"
#include "common/sysio.h"
#include "ocisync.h"

#include <jansson.h>
#include <uv.h>

#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* An entry is a few hundred bytes; anything larger is not ours. */
#define ENTRY_MAX 4096
#define READ_BUF (256 * 1024)

/* mkdir -p of the directories the cache needs (and its parents); 0 or -1. */
static int make_dirs(const char *dir)
{
    char p[PATH_MAX + 32];
    const char *sub[] = {"", "/layers", "/blobs", "/blobs/sha256"};

    snprintf(p, sizeof(p), "%s", dir);
    for (char *s = strchr(p + 1, '/'); s != NULL; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }

    for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
        snprintf(p, sizeof(p), "%s%s", dir, sub[i]);
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return -1;
    }
    /* An OCI layout too, so that the copy engine can fetch base layers into it. */
    snprintf(p, sizeof(p), "%s/oci-layout", dir);
    if (access(p, F_OK) != 0) {
        static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            int rc = ocisync__write_full(fd, layout, sizeof(layout) - 1);
            close(fd);
            if (rc != 0)
                unlink(p);
        } else if (errno != EEXIST) {
            return -1;
        }
    }
    return 0;
}

void engine_cache_open(struct engine_cache *c, const char *dir)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

    c->dir[0] = '\0';
    if (dir != NULL) {
        snprintf(c->dir, sizeof(c->dir), "%s", dir);
    } else if (xdg != NULL && xdg[0] == '/') {
        snprintf(c->dir, sizeof(c->dir), "%s/ocisync", xdg);
    } else if (home != NULL && home[0] == '/') {
        snprintf(c->dir, sizeof(c->dir), "%s/.cache/ocisync", home);
    }
    if (c->dir[0] != '\0' && make_dirs(c->dir) != 0) {
        LOG_DEBUG("build cache %s: %s; building without it", c->dir, strerror(errno));
        c->dir[0] = '\0';
    }
}

/* Feeds one field and a separator, so that no two entries hash alike. */
static void field(struct oci_hasher *h, const char *name, const char *v)
{
    oci_hasher_update(h, name, strlen(name));
    oci_hasher_update(h, "=", 1);
    oci_hasher_update(h, v, strlen(v));
    oci_hasher_update(h, "\n", 1);
}

/*
 * The stat index: what each file's content hashed to, by path, with the
 * stat fields that change when a file does (device, inode, size, mtime and
 * ctime in nanoseconds; ctime catches a content change whose mtime was put
 * back). A file whose fields all match is not read again. One text file,
 * stat-index, a line per file: "HEX DEV INO SIZE MTIME CTIME PATH".
 */
#define STAT_INDEX_MAX (256u * 1024 * 1024)
#define STAT_INDEX_ENTRIES (2u * 1024 * 1024)

struct stat_entry {
    char *path; /* owned */
    uint64_t dev, ino, size;
    int64_t mtime, ctime;
    char hex[65];
};

struct stat_index {
    struct stat_entry *v;
    size_t n, cap;
    size_t *slots; /* open addressing over v, SIZE_MAX when empty */
    size_t n_slots;
    bool dirty;
};

static uint64_t path_hash(const char *p)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

static int index_rehash(struct stat_index *x)
{
    size_t n = x->n_slots ? x->n_slots * 2 : 1024;
    size_t *slots = malloc(n * sizeof(*slots));

    if (slots == NULL)
        return UV_ENOMEM;
    for (size_t i = 0; i < n; i++)
        slots[i] = SIZE_MAX;
    for (size_t i = 0; i < x->n; i++) {
        size_t k = (size_t)(path_hash(x->v[i].path) % n);
        while (slots[k] != SIZE_MAX)
            k = (k + 1) % n;
        slots[k] = i;
    }
    free(x->slots);
    x->slots = slots;
    x->n_slots = n;
    return 0;
}

static struct stat_entry *index_find(const struct stat_index *x, const char *path)
{
    if (x->n_slots == 0)
        return NULL;
    for (size_t k = (size_t)(path_hash(path) % x->n_slots); x->slots[k] != SIZE_MAX;
         k = (k + 1) % x->n_slots) {
        if (strcmp(x->v[x->slots[k]].path, path) == 0)
            return &x->v[x->slots[k]];
    }
    return NULL;
}

/* Adds an entry (path copied); the caller fills the rest. NULL when out of memory or room. */
static struct stat_entry *index_add(struct stat_index *x, const char *path)
{
    struct stat_entry *e;
    size_t k;

    if (x->n >= STAT_INDEX_ENTRIES)
        return NULL;
    if (x->n == x->cap) {
        size_t ncap = x->cap ? x->cap * 2 : 1024;
        struct stat_entry *nv = realloc(x->v, ncap * sizeof(*nv));
        if (nv == NULL)
            return NULL;
        x->v = nv;
        x->cap = ncap;
    }
    if ((x->n + 1) * 2 > x->n_slots && index_rehash(x) != 0)
        return NULL;
    e = &x->v[x->n];
    memset(e, 0, sizeof(*e));
    if ((e->path = strdup(path)) == NULL)
        return NULL;
    k = (size_t)(path_hash(path) % x->n_slots);
    while (x->slots[k] != SIZE_MAX)
        k = (k + 1) % x->n_slots;
    x->slots[k] = x->n++;
    return e;
}

static void index_free(struct stat_index *x)
{
    for (size_t i = 0; i < x->n; i++)
        free(x->v[i].path);
    free(x->v);
    free(x->slots);
    memset(x, 0, sizeof(*x));
}

/* Loads the index; a missing, oversized or malformed one leaves it (partly) empty. */
static void index_load(const struct engine_cache *c, struct stat_index *x)
{
    char path[PATH_MAX + 32], *line = NULL;
    size_t cap = 0;
    ssize_t n;
    struct stat sb;
    FILE *f;

    snprintf(path, sizeof(path), "%s/stat-index", c->dir);
    if (stat(path, &sb) != 0 || sb.st_size > STAT_INDEX_MAX || (f = fopen(path, "re")) == NULL)
        return;
    while ((n = getline(&line, &cap, f)) > 0) {
        char hex[65];
        unsigned long long dev, ino, size;
        long long mt, ct;
        int off = 0;
        struct stat_entry *ne;
        if (line[n - 1] == '\n')
            line[n - 1] = '\0';
        if (sscanf(line, "%64[0-9a-f] %llu %llu %llu %lld %lld %n", hex, &dev, &ino, &size, &mt,
                   &ct, &off) != 6 ||
            off == 0 || strlen(hex) != 64 || line[off] != '/' || index_find(x, line + off))
            continue;
        if ((ne = index_add(x, line + off)) == NULL)
            break;
        memcpy(ne->hex, hex, sizeof(ne->hex));
        ne->dev = dev;
        ne->ino = ino;
        ne->size = size;
        ne->mtime = mt;
        ne->ctime = ct;
    }
    free(line);
    fclose(f);
}

static void index_save(const struct engine_cache *c, const struct stat_index *x)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 64], hex[17];
    FILE *f;
    bool ok = true;

    if (!x->dirty || ocisync__random_hex16(hex) != 0)
        return;
    snprintf(path, sizeof(path), "%s/stat-index", c->dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp-%s", path, hex);
    if ((f = fopen(tmp, "wxe")) == NULL)
        return;
    for (size_t i = 0; i < x->n && ok; i++) {
        const struct stat_entry *e = &x->v[i];
        ok = fprintf(f, "%s %llu %llu %llu %lld %lld %s\n", e->hex, (unsigned long long)e->dev,
                     (unsigned long long)e->ino, (unsigned long long)e->size, (long long)e->mtime,
                     (long long)e->ctime, e->path) > 0;
    }
    if (fclose(f) != 0 || !ok || rename(tmp, path) != 0)
        unlink(tmp);
}

static int64_t ns(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/*
 * The SHA-256 of a file's content, checked against the size the plan
 * recorded; from the stat index when nothing about the file changed.
 */
/* The stat index learns what the file at name (absolute) hashed to, with its stat. */
static void remember(struct stat_index *x, const char *name, uint64_t dev, uint64_t ino,
                     uint64_t size, int64_t mtime, int64_t ctime, const char *hex)
{
    struct stat_entry *se;

    if (strchr(name, '\n') != NULL || name[0] != '/')
        return;
    se = index_find(x, name);
    if (se == NULL)
        se = index_add(x, name);
    if (se == NULL)
        return;
    se->dev = dev;
    se->ino = ino;
    se->size = size;
    se->mtime = mtime;
    se->ctime = ctime;
    snprintf(se->hex, sizeof(se->hex), "%s", hex);
    x->dirty = true;
}

static int hash_file(const struct oci_tar_plan_entry *e, const char *cwd, struct stat_index *x,
                     unsigned char *buf, struct oci_digest *out, char *err, size_t errlen)
{
    struct oci_hasher h;
    struct stat_entry *se;
    struct stat sb;
    uint64_t total = 0;
    char abs[PATH_MAX * 2];
    const char *name = e->src;
    ssize_t n;
    int fd, rc;

    /* The index knows files by absolute path, whatever directory the build ran in. */
    if (name[0] != '/') {
        snprintf(abs, sizeof(abs), "%s/%s", cwd, e->src);
        name = abs;
    }

    if (lstat(e->src, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == e->size &&
        (se = index_find(x, name)) != NULL && se->dev == (uint64_t)sb.st_dev &&
        se->ino == (uint64_t)sb.st_ino && se->size == e->size && se->mtime == ns(&sb.st_mtim) &&
        se->ctime == ns(&sb.st_ctim)) {
        char d[80];
        snprintf(d, sizeof(d), "sha256:%s", se->hex);
        return oci_digest_parse_str(d, out);
    }
    fd = open(e->src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        rc = ocisync__sys_error();
        if (fd >= 0)
            close(fd);
        snprintf(err, errlen, "cannot read \"%s\": %s", e->src, uv_strerror(rc));
        return rc;
    }
    oci_hasher_init(&h, OCI_DIGEST_SHA256);
    while ((n = read(fd, buf, READ_BUF)) > 0) {
        oci_hasher_update(&h, buf, (size_t)n);
        total += (uint64_t)n;
    }
    close(fd);
    if (n < 0 || total != e->size) {
        oci_hasher_dispose(&h);
        snprintf(err, errlen, "file \"%s\" changed while the layer was being built", e->src);
        return n < 0 ? UV_EIO : OCISYNC_ESIZEMISMATCH;
    }
    rc = oci_hasher_final(&h, out);
    /* Remembered with the stat taken before the read: a change during it shows next time. */
    if (rc == 0)
        remember(x, name, (uint64_t)sb.st_dev, (uint64_t)sb.st_ino, total, ns(&sb.st_mtim),
                 ns(&sb.st_ctim), oci_digest_hex(out));
    return rc;
}

/* A file's content digest from the build that read it (see engine_cache_key_sums). */
static int take_sum(const struct oci_tar_plan_entry *e, const struct oci_tar_file_sum *sum,
                    const char *cwd, struct stat_index *x, struct oci_digest *out, char *err,
                    size_t errlen)
{
    char d[OCI_TAR_SUM_HEX + 16], abs[PATH_MAX * 2];
    const char *name = e->src;

    snprintf(d, sizeof(d), "sha256:%s", sum->hex);
    if (!sum->done || oci_digest_parse_str(d, out) != 0) {
        snprintf(err, errlen, "the build took no digest of \"%s\"", e->src);
        return OCISYNC_EUSAGE;
    }
    if (name[0] != '/') {
        snprintf(abs, sizeof(abs), "%s/%s", cwd, e->src);
        name = abs;
    }
    remember(x, name, sum->dev, sum->ino, sum->size, sum->mtime_ns, sum->ctime_ns, sum->hex);
    return 0;
}

/* The key of plan: each file's digest from sums when given, else from the index or the file. */
static int make_key(const struct engine_cache *c, const struct oci_tar_plan *plan,
                    enum oci_compression comp, int level, const struct oci_tar_file_sum *sums,
                    struct oci_digest *key, char *err, size_t errlen)
{
    struct oci_hasher h;
    struct stat_index x;
    unsigned char *buf = sums == NULL ? malloc(READ_BUF) : NULL;
    char num[128], cwd[PATH_MAX];
    int rc = 0;

    if (buf == NULL && sums == NULL)
        return UV_ENOMEM;
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        cwd[0] = '\0'; /* relative paths are then not remembered */
    memset(&x, 0, sizeof(x));
    if (c->dir[0] != '\0')
        index_load(c, &x);
    oci_hasher_init(&h, OCI_DIGEST_SHA256);
    field(&h, "ocisync-layer", "1");
    snprintf(num, sizeof(num), "%d %d %u %u", (int)comp, level, plan->uid, plan->gid);
    field(&h, "format", num);
    for (size_t i = 0; i < plan->n_entries && rc == 0; i++) {
        const struct oci_tar_plan_entry *e = &plan->entries[i];
        struct oci_digest d;
        field(&h, "path", e->path);
        snprintf(num, sizeof(num), "%c %o %lld %llu %u %u", e->type, e->mode, (long long)e->mtime,
                 (unsigned long long)e->size, e->uid, e->gid);
        field(&h, "meta", num);
        if (e->linkname != NULL)
            field(&h, "link", e->linkname);
        if (e->type == '3' || e->type == '4') {
            snprintf(num, sizeof(num), "%u %u", e->devmajor, e->devminor);
            field(&h, "device", num);
        }
        for (size_t k = 0; k < e->n_xattrs; k++) {
            struct oci_digest v;
            if (oci_digest_buffer(OCI_DIGEST_SHA256, e->xattrs[k].value, e->xattrs[k].len, &v) !=
                0) {
                rc = UV_ENOMEM;
                break;
            }
            field(&h, "xattr", e->xattrs[k].name);
            field(&h, "value", v.str);
        }
        /* A whiteout has no file behind it: no content to hash. */
        if (rc == 0 && e->type == '0' && e->src != NULL &&
            (rc = sums != NULL ? take_sum(e, &sums[i], cwd, &x, &d, err, errlen)
                               : hash_file(e, cwd, &x, buf, &d, err, errlen)) == 0)
            field(&h, "content", d.str);
    }
    free(buf);
    if (c->dir[0] != '\0')
        index_save(c, &x);
    index_free(&x);
    if (rc != 0) {
        oci_hasher_dispose(&h);
        return rc;
    }
    return oci_hasher_final(&h, key);
}

int engine_cache_key(const struct engine_cache *c, const struct oci_tar_plan *plan,
                     enum oci_compression comp, int level, struct oci_digest *key, char *err,
                     size_t errlen)
{
    return make_key(c, plan, comp, level, NULL, key, err, errlen);
}

int engine_cache_key_sums(const struct engine_cache *c, const struct oci_tar_plan *plan,
                          enum oci_compression comp, int level, const struct oci_tar_file_sum *sums,
                          struct oci_digest *key, char *err, size_t errlen)
{
    if (sums == NULL) {
        snprintf(err, errlen, "no file digests to make the layer's cache key from");
        return OCISYNC_EUSAGE;
    }
    return make_key(c, plan, comp, level, sums, key, err, errlen);
}

bool engine_cache_has_layers(const struct engine_cache *c)
{
    char path[PATH_MAX + 16];
    struct dirent *de;
    bool any = false;
    DIR *d;

    if (c->dir[0] == '\0')
        return false;
    snprintf(path, sizeof(path), "%s/layers", c->dir);
    d = opendir(path);
    if (d == NULL)
        return errno != ENOENT; /* unreadable: assume it may hold some */
    while (!any && (de = readdir(d)) != NULL)
        any = de->d_name[0] != '.';
    closedir(d);
    return any;
}

/* Links src to dst, or copies it when they are on different file systems. */
static int link_or_copy(const char *src, const char *dst)
{
    char tmp[PATH_MAX + 64], hex[17];
    unsigned char *buf;
    int in, out, rc = 0;
    ssize_t n;

    if (link(src, dst) == 0 || errno == EEXIST)
        return 0;
    if (ocisync__random_hex16(hex) != 0)
        return -1;
    snprintf(tmp, sizeof(tmp), "%s.tmp-%s", dst, hex);
    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    buf = malloc(READ_BUF);
    if (out < 0 || buf == NULL) {
        close(in);
        if (out >= 0)
            close(out);
        free(buf);
        unlink(tmp);
        return -1;
    }
    while (rc == 0 && (n = read(in, buf, READ_BUF)) != 0)
        rc = n < 0 ? -1 : ocisync__write_full(out, buf, (size_t)n);
    free(buf);
    close(in);
    if (close(out) != 0 || rc != 0 || rename(tmp, dst) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Writes entry j under key, whole (temp file, then rename). */
static void write_entry(const struct engine_cache *c, const struct oci_digest *key, json_t *j)
{
    char path[PATH_MAX + 200], tmp[PATH_MAX + 240], hex[17];
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    bool ok;
    int fd;

    if (text == NULL || ocisync__random_hex16(hex) != 0) {
        free(text);
        return;
    }
    snprintf(path, sizeof(path), "%s/layers/%s", c->dir, oci_digest_hex(key));
    snprintf(tmp, sizeof(tmp), "%s.tmp-%s", path, hex);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ok = fd >= 0 && ocisync__write_full(fd, text, strlen(text)) == 0;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    if (!ok || rename(tmp, path) != 0)
        unlink(tmp);
    free(text);
}

/* The entry of key, parsed, or NULL. */
static json_t *read_entry(const struct engine_cache *c, const struct oci_digest *key)
{
    char path[PATH_MAX + 200];
    struct stat sb;
    json_error_t je;
    json_t *j;

    snprintf(path, sizeof(path), "%s/layers/%s", c->dir, oci_digest_hex(key));
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > ENTRY_MAX)
        return NULL;
    j = json_load_file(path, 0, &je);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

void engine_cache_note(const struct engine_cache *c, const struct oci_digest *key,
                       const char *where)
{
    json_t *j, *at, *v, *fresh;
    size_t i;

    if (c->dir[0] == '\0' || strlen(where) >= ENGINE_CACHE_AT_LEN ||
        (j = read_entry(c, key)) == NULL)
        return;
    fresh = json_array();
    if (fresh != NULL && json_array_append_new(fresh, json_string(where)) == 0) {
        at = json_object_get(j, "at");
        json_array_foreach(at, i, v)
        {
            if (json_array_size(fresh) < ENGINE_CACHE_MAX_AT && json_is_string(v) &&
                strcmp(json_string_value(v), where) != 0)
                json_array_append(fresh, v);
        }
        if (json_object_set(j, "at", fresh) == 0)
            write_entry(c, key, j);
    }
    json_decref(fresh);
    json_decref(j);
}

bool engine_cache_peek(const struct engine_cache *c, const struct oci_digest *key,
                       struct oci_layer_result *r)
{
    const char *diff_id = NULL, *digest = NULL;
    json_int_t size = -1, tar_size = -1;
    struct stat sb;
    bool hit = false;
    json_t *j;

    if (c->dir[0] == '\0' || (j = read_entry(c, key)) == NULL)
        return false;
    if (json_unpack(j, "{s:s, s:s, s:I, s:I}", "diff_id", &diff_id, "digest", &digest, "size",
                    &size, "tar_size", &tar_size) == 0 &&
        oci_digest_parse_str(diff_id, &r->diff_id) == 0 &&
        oci_digest_parse_str(digest, &r->digest) == 0 && size >= 0 && tar_size >= 0) {
        snprintf(r->path, sizeof(r->path), "%s/blobs/sha256/%s", c->dir,
                 oci_digest_hex(&r->digest));
        r->size = (uint64_t)size;
        r->tar_size = (uint64_t)tar_size;
        hit = stat(r->path, &sb) == 0 && (uint64_t)sb.st_size == r->size;
        if (hit)
            engine_cache_touch(r->path);
    }
    json_decref(j);
    return hit;
}

bool engine_cache_get(const struct engine_cache *c, const struct oci_digest *key,
                      const char *blobs_dir, struct oci_layer_result *r,
                      struct engine_cache_at *where)
{
    char blob[PATH_MAX + 200];
    json_t *j, *at, *v;
    const char *diff_id = NULL, *digest = NULL;
    json_int_t size = -1, tar_size = -1;
    struct stat sb;
    bool hit = false;
    size_t i;

    if (where != NULL)
        where->n = 0;
    if (c->dir[0] == '\0' || (j = read_entry(c, key)) == NULL)
        return false;
    if (json_unpack(j, "{s:s, s:s, s:I, s:I}", "diff_id", &diff_id, "digest", &digest, "size",
                    &size, "tar_size", &tar_size) == 0 &&
        oci_digest_parse_str(diff_id, &r->diff_id) == 0 &&
        oci_digest_parse_str(digest, &r->digest) == 0 && size >= 0 && tar_size >= 0) {
        snprintf(blob, sizeof(blob), "%s/blobs/sha256/%s", c->dir, oci_digest_hex(&r->digest));
        snprintf(r->path, sizeof(r->path), "%s/%s", blobs_dir, oci_digest_hex(&r->digest));
        r->size = (uint64_t)size;
        r->tar_size = (uint64_t)tar_size;
        /* Whatever the staging layout has under that name is replaced by the cache's blob. */
        hit = stat(blob, &sb) == 0 && (uint64_t)sb.st_size == r->size &&
              (unlink(r->path) == 0 || errno == ENOENT) && link_or_copy(blob, r->path) == 0;
        if (hit)
            engine_cache_touch(blob);
    }
    at = json_object_get(j, "at");
    json_array_foreach(at, i, v)
    {
        if (hit && where != NULL && where->n < ENGINE_CACHE_MAX_AT && json_is_string(v) &&
            strlen(json_string_value(v)) < ENGINE_CACHE_AT_LEN)
            snprintf(where->v[where->n++], ENGINE_CACHE_AT_LEN, "%s", json_string_value(v));
    }
    json_decref(j);
    return hit;
}

void engine_cache_put(const struct engine_cache *c, const struct oci_digest *key,
                      const struct oci_layer_result *r)
{
    char blob[PATH_MAX + 200];
    json_t *j;

    if (c->dir[0] == '\0')
        return;
    snprintf(blob, sizeof(blob), "%s/blobs/sha256/%s", c->dir, oci_digest_hex(&r->digest));
    if (link_or_copy(r->path, blob) != 0) {
        LOG_DEBUG("build cache: cannot keep %s: %s", r->digest.str, strerror(errno));
        return;
    }
    j = json_pack("{s:s, s:s, s:I, s:I}", "diff_id", r->diff_id.str, "digest", r->digest.str,
                  "size", (json_int_t)r->size, "tar_size", (json_int_t)r->tar_size);
    if (j != NULL)
        write_entry(c, key, j);
    json_decref(j);
}

void engine_cache_touch(const char *blob)
{
    /* Its mtime says when it was last used (atime is often not kept). */
    if (utimensat(AT_FDCWD, blob, NULL, AT_SYMLINK_NOFOLLOW) != 0)
        LOG_DEBUG("build cache: cannot touch %s: %s", blob, strerror(errno));
}

/* Something the cache keeps: a blob, or a directory of rootfs/ or runs/. */
struct cached_item {
    char path[PATH_MAX + 200];
    bool dir;
    uint64_t size;
    int64_t used; /* mtime (of a directory: of its NAME.size file), ns */
};

struct item_list {
    struct cached_item *v;
    size_t n, cap;
    uint64_t total;
};

static int cmp_used(const void *a, const void *b)
{
    const struct cached_item *x = a, *y = b;
    return x->used < y->used ? -1 : x->used > y->used;
}

static struct cached_item *item_add(struct item_list *l)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? 2 * l->cap : 256;
        struct cached_item *nv = realloc(l->v, ncap * sizeof(*nv));
        if (nv == NULL)
            return NULL;
        l->v = nv;
        l->cap = ncap;
    }
    memset(&l->v[l->n], 0, sizeof(l->v[0]));
    return &l->v[l->n++];
}

/* The cache's blobs: 64 hex digits (temp files of a writer are left alone). */
static int list_blobs(const char *dir, struct item_list *l)
{
    char path[PATH_MAX + 200];
    struct dirent *de;
    DIR *d;

    snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
    if ((d = opendir(path)) == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        struct cached_item *it;
        struct stat sb;
        if (strlen(de->d_name) != 64 || strspn(de->d_name, "0123456789abcdef") != 64 ||
            fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if ((it = item_add(l)) == NULL) {
            closedir(d);
            return -1;
        }
        snprintf(it->path, sizeof(it->path), "%s/%s", path, de->d_name);
        it->size = (uint64_t)sb.st_size;
        it->used = ns(&sb.st_mtim);
        l->total += it->size;
    }
    closedir(d);
    return 0;
}

static uint64_t walk_total;

static int add_size(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)path;
    (void)flag;
    (void)ftw;
    walk_total += (uint64_t)sb->st_blocks * 512;
    return 0;
}

/* What dir takes on disk, from its NAME.size file, else walked (and written there). */
static uint64_t dir_size(const char *dir, const char *size_file)
{
    char *text = NULL, buf[32];
    size_t len = 0;
    uint64_t v;
    int fd;

    if (ocisync__read_small(size_file, 64, true, &text, &len) == 0) {
        bool known = len > 0 && text[0] >= '0' && text[0] <= '9';
        v = strtoull(text, NULL, 10);
        free(text);
        if (known)
            return v;
    }
    walk_total = 0;
    nftw(dir, add_size, 16, FTW_PHYS);
    v = walk_total;
    snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)v);
    fd = open(size_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        struct stat sb;
        /* Writing it is no use: keep the time it was last used. */
        bool had = fstat(fd, &sb) == 0;
        if (ocisync__write_full(fd, buf, strlen(buf)) != 0)
            LOG_DEBUG("build cache: cannot write %s", size_file);
        if (had)
            futimens(fd, (struct timespec[2]){sb.st_atim, sb.st_mtim});
        close(fd);
    }
    return v;
}

/* The directories of sub ("rootfs", "runs"): extracted layers and kept RUN results. */
static void list_dirs(const char *dir, const char *sub, struct item_list *l)
{
    char path[PATH_MAX + 200], size_file[PATH_MAX + 300];
    struct dirent *de;
    DIR *d;

    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    if ((d = opendir(path)) == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        struct cached_item *it;
        struct stat sb;
        if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISDIR(sb.st_mode) || (it = item_add(l)) == NULL)
            continue;
        snprintf(it->path, sizeof(it->path), "%s/%s", path, de->d_name);
        snprintf(size_file, sizeof(size_file), "%s.size", it->path);
        it->dir = true;
        it->size = dir_size(it->path, size_file);
        it->used = stat(size_file, &sb) == 0 ? ns(&sb.st_mtim) : 0;
        l->total += it->size;
    }
    closedir(d);
}

void engine_cache_dir_used(const char *dir)
{
    char size_file[PATH_MAX + 300];
    int fd;

    snprintf(size_file, sizeof(size_file), "%s.size", dir);
    /* Empty until the cache is next trimmed, which writes the size into it. */
    fd = open(size_file, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0)
        close(fd);
    engine_cache_touch(size_file);
}

/* Removes the layer entries whose blob is gone. */
static void drop_orphans(const struct engine_cache *c)
{
    char path[PATH_MAX + 200];
    struct dirent *de;
    DIR *d;

    snprintf(path, sizeof(path), "%s/layers", c->dir);
    if ((d = opendir(path)) == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        struct oci_digest key;
        const char *digest = NULL;
        char name[80], blob[PATH_MAX + 200];
        json_t *j;
        snprintf(name, sizeof(name), "sha256:%.70s", de->d_name);
        if (strlen(de->d_name) != 64 || oci_digest_parse_str(name, &key) != 0 ||
            (j = read_entry(c, &key)) == NULL)
            continue;
        if (json_unpack(j, "{s:s}", "digest", &digest) == 0 && strncmp(digest, "sha256:", 7) == 0 &&
            strlen(digest) == 71) {
            snprintf(blob, sizeof(blob), "%s/blobs/sha256/%s", c->dir, digest + 7);
            if (access(blob, F_OK) != 0 && errno == ENOENT)
                unlinkat(dirfd(d), de->d_name, 0);
        }
        json_decref(j);
    }
    closedir(d);
}

void engine_cache_trim(const struct engine_cache *c, uint64_t max)
{
    struct item_list l = {0};
    uint64_t goal, freed = 0;
    char size_file[PATH_MAX + 300];

    if (c->dir[0] == '\0')
        return;
    if (max == 0)
        max = ENGINE_CACHE_DEFAULT_MAX;
    if (list_blobs(c->dir, &l) != 0)
        goto out;
    list_dirs(c->dir, "rootfs", &l);
    list_dirs(c->dir, "runs", &l);
    if (l.total <= max)
        goto out;
    /* Down to 90% of the cap, so that the next builds do not trim again at once. */
    goal = max - max / 10;
    qsort(l.v, l.n, sizeof(*l.v), cmp_used);
    for (size_t i = 0; i < l.n && l.total > goal; i++) {
        if (l.v[i].dir) {
            oci_archive_remove_dir(l.v[i].path);
            snprintf(size_file, sizeof(size_file), "%s.size", l.v[i].path);
            unlink(size_file);
        } else if (unlink(l.v[i].path) != 0) {
            continue;
        }
        l.total -= l.v[i].size;
        freed += l.v[i].size;
    }
    LOG_DEBUG("build cache %s: evicted %llu bytes of what was least recently used", c->dir,
              (unsigned long long)freed);
    drop_orphans(c);
out:
    free(l.v);
}
