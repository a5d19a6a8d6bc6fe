/*
 * OCI image layouts: creating, writing blobs atomically, naming images in
 * index.json, reading them back, refusing malformed layouts and symbolic
 * links, and (when skopeo / umoci are installed) checking that real tools
 * read what was written and that ocisync reads what they write.
 */
/* nftw needs the X/Open interfaces, which must be asked for before any header. */
#define _GNU_SOURCE

#include "test.h"

#include "ocisync.h"
#include "oci/layout.h"

#include <uv.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEX64_ZERO "0000000000000000000000000000000000000000000000000000000000000000"

#define CONFIG_JSON                                                                                \
    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]" \
    "}}"

/* A fresh directory under /tmp for one test; removed by rm_tree. */
static void make_tmp(char *buf, size_t len)
{
    snprintf(buf, len, "/tmp/ocisync-layout-XXXXXX");
    if (mkdtemp(buf) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *dir, const char *name, const char *data)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    fwrite(data, 1, strlen(data), f);
    fclose(f);
}

/* The whole of dir/name, malloc'ed and NUL-terminated, or NULL. */
static char *slurp(const char *dir, const char *name)
{
    char path[512], *buf;
    long n;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        n = 0;
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Entries of dir/sub other than "." and "..". */
static int count_entries(const char *dir, const char *sub)
{
    char path[512];
    struct dirent *e;
    int n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    d = opendir(path);
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    }
    closedir(d);
    return n;
}

static void blob_file(const char *dir, const struct oci_digest *d, char *buf, size_t len)
{
    snprintf(buf, len, "%s/blobs/%s/%s", dir, d->alg == OCI_DIGEST_SHA512 ? "sha512" : "sha256",
             oci_digest_hex(d));
}

static struct oci_digest digest_of(const char *s)
{
    struct oci_digest d;
    oci_digest_buffer(OCI_DIGEST_SHA256, s, strlen(s), &d);
    return d;
}

/*
 * Writes a config blob and an image manifest (with no layers) into l and
 * fills desc for the manifest. note makes manifests differ; *manifest_out,
 * if given, receives the manifest's bytes (caller frees).
 */
static void put_image(struct oci_layout *l, const char *note, struct oci_descriptor *desc,
                      char **manifest_out)
{
    struct oci_digest cfg = digest_of(CONFIG_JSON);
    char manifest[1024], err[512];

    CHECK_INT(oci_layout_put_blob(l, &cfg, CONFIG_JSON, strlen(CONFIG_JSON), err, sizeof(err)), 0);
    snprintf(manifest, sizeof(manifest),
             "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_MANIFEST "\",\"config\":{"
             "\"mediaType\":\"" OCI_MT_OCI_CONFIG "\",\"digest\":\"%s\",\"size\":%zu},"
             "\"layers\":[],\"annotations\":{\"note\":\"%s\"}}",
             cfg.str, strlen(CONFIG_JSON), note);
    memset(desc, 0, sizeof(*desc));
    snprintf(desc->media_type, sizeof(desc->media_type), "%s", OCI_MT_OCI_MANIFEST);
    desc->digest = digest_of(manifest);
    desc->size = (int64_t)strlen(manifest);
    desc->has_platform = true;
    snprintf(desc->platform.os, sizeof(desc->platform.os), "linux");
    snprintf(desc->platform.arch, sizeof(desc->platform.arch), "amd64");
    CHECK_INT(oci_layout_put_blob(l, &desc->digest, manifest, strlen(manifest), err, sizeof(err)),
              0);
    if (manifest_out != NULL)
        *manifest_out = strdup(manifest);
}

TEST(create_commit_reopen)
{
    struct oci_descriptor m1, m2, got;
    struct oci_layout l;
    char tmp[64], dir[128], err[512], *text;
    const char *name;

    make_tmp(tmp, sizeof(tmp));
    snprintf(dir, sizeof(dir), "%s/layout", tmp);
    CHECK_INT(oci_layout_open(&l, dir, true, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_count(&l), 0);
    CHECK_INT(count_entries(dir, "blobs/sha256"), 0);
    text = slurp(dir, "oci-layout");
    CHECK_STR(text, "{\"imageLayoutVersion\":\"1.0.0\"}");
    free(text);

    put_image(&l, "one", &m1, NULL);
    put_image(&l, "two", &m2, NULL);
    CHECK_INT(oci_layout_add(&l, &m1, "v1", err, sizeof(err)), 0);
    CHECK_INT(oci_layout_add(&l, &m2, "docker.io/library/app:latest", err, sizeof(err)), 0);
    CHECK_INT(oci_layout_count(&l), 2);
    /* Nothing is on disk until commit. */
    CHECK(slurp(dir, "index.json") == NULL);
    CHECK_INT(oci_layout_commit(&l, err, sizeof(err)), 0);
    oci_layout_close(&l);
    oci_layout_close(&l); /* twice is harmless */

    text = slurp(dir, "index.json");
    {
        const char *prefix =
            "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_INDEX
            "\",\"manifests\":[{\"mediaType\":\"" OCI_MT_OCI_MANIFEST "\",\"digest\":\"";
        CHECK(text != NULL && strncmp(text, prefix, strlen(prefix)) == 0);
    }
    CHECK(text != NULL &&
          strstr(text, "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}") != NULL);
    CHECK(text != NULL && strstr(text, "{\"org.opencontainers.image.ref.name\":\"v1\"}") != NULL);
    free(text);
    /* Only the blobs and no temp files: config + two manifests. */
    CHECK_INT(count_entries(dir, "blobs/sha256"), 3);
    CHECK_INT(count_entries(dir, ""), 3);

    CHECK_INT(oci_layout_open(&l, dir, false, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_count(&l), 2);
    CHECK_INT(oci_layout_entry(&l, 0, &got, &name), 0);
    CHECK_STR(name, "v1");
    CHECK_STR(got.digest.str, m1.digest.str);
    CHECK_INT(got.size, m1.size);
    CHECK(got.has_platform);
    CHECK_STR(got.platform.arch, "amd64");
    CHECK_INT(oci_layout_entry(&l, 1, &got, &name), 0);
    CHECK_STR(name, "docker.io/library/app:latest");
    CHECK_INT(oci_layout_entry(&l, 2, &got, &name), OCISYNC_EUSAGE);

    CHECK_INT(oci_layout_resolve(&l, "v1", &got, err, sizeof(err)), 0);
    CHECK_STR(got.digest.str, m1.digest.str);
    CHECK_STR(got.media_type, OCI_MT_OCI_MANIFEST);
    CHECK_INT(oci_layout_resolve(&l, "docker.io/library/app:latest", &got, err, sizeof(err)), 0);
    CHECK_STR(got.digest.str, m2.digest.str);
    CHECK_INT(oci_layout_resolve(&l, m2.digest.str, &got, err, sizeof(err)), 0);
    CHECK_STR(got.digest.str, m2.digest.str);
    {
        char at[160];
        snprintf(at, sizeof(at), "@%s", m1.digest.str);
        CHECK_INT(oci_layout_resolve(&l, at, &got, err, sizeof(err)), 0);
        CHECK_STR(got.digest.str, m1.digest.str);
    }

    /* Several images and no name: the error lists them. */
    CHECK_INT(oci_layout_resolve(&l, NULL, &got, err, sizeof(err)), OCISYNC_EREF);
    CHECK(strstr(err, dir) != NULL);
    CHECK(strstr(err, "v1, docker.io/library/app:latest") != NULL);
    CHECK_INT(oci_layout_resolve(&l, "", &got, err, sizeof(err)), OCISYNC_EREF);

    CHECK_INT(oci_layout_resolve(&l, "nope", &got, err, sizeof(err)), OCISYNC_ENOTFOUND);
    CHECK(strstr(err, "\"nope\"") != NULL && strstr(err, dir) != NULL);
    CHECK_INT(oci_layout_resolve(&l, "@sha256:" HEX64_ZERO, &got, err, sizeof(err)),
              OCISYNC_ENOTFOUND);
    CHECK_INT(oci_layout_resolve(&l, "@sha256:nothex", &got, err, sizeof(err)), OCISYNC_EREF);
    CHECK_INT(oci_layout_resolve(&l, "bad//name", &got, err, sizeof(err)), OCISYNC_EREF);

    /* Reading the manifest back verifies it. */
    {
        char *data = NULL;
        size_t len = 0;
        CHECK_INT(oci_layout_blob_read(&l, &m1.digest, 4096, &data, &len, err, sizeof(err)), 0);
        CHECK_INT(len, m1.size);
        CHECK(data != NULL && strstr(data, "\"note\":\"one\"") != NULL);
        free(data);
    }
    oci_layout_close(&l);
    rm_tree(tmp);
}

TEST(only_entry)
{
    struct oci_descriptor m1, got;
    struct oci_layout l;
    char tmp[64], err[512];

    make_tmp(tmp, sizeof(tmp));
    CHECK_INT(oci_layout_open(&l, tmp, true, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_resolve(&l, NULL, &got, err, sizeof(err)), OCISYNC_ENOTFOUND);
    CHECK(strstr(err, "has no images") != NULL);
    put_image(&l, "only", &m1, NULL);
    /* Unnamed entries are not duplicated. */
    CHECK_INT(oci_layout_add(&l, &m1, NULL, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_add(&l, &m1, "", err, sizeof(err)), 0);
    CHECK_INT(oci_layout_count(&l), 1);
    CHECK_INT(oci_layout_commit(&l, err, sizeof(err)), 0);
    oci_layout_close(&l);

    CHECK_INT(oci_layout_open(&l, tmp, false, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_resolve(&l, NULL, &got, err, sizeof(err)), 0);
    CHECK_STR(got.digest.str, m1.digest.str);
    CHECK_INT(oci_layout_resolve(&l, "", &got, err, sizeof(err)), 0);
    {
        const char *name = "x";
        CHECK_INT(oci_layout_entry(&l, 0, &got, &name), 0);
        CHECK(name == NULL);
    }
    oci_layout_close(&l);
    rm_tree(tmp);
}

TEST(replace_ref)
{
    struct oci_descriptor m1, m2, got;
    struct oci_layout l;
    char tmp[64], err[512];

    make_tmp(tmp, sizeof(tmp));
    CHECK_INT(oci_layout_open(&l, tmp, true, err, sizeof(err)), 0);
    put_image(&l, "one", &m1, NULL);
    put_image(&l, "two", &m2, NULL);
    CHECK_INT(oci_layout_add(&l, &m1, "v1", err, sizeof(err)), 0);
    CHECK_INT(oci_layout_add(&l, &m1, "keep", err, sizeof(err)), 0);
    CHECK_INT(oci_layout_add(&l, &m2, "v1", err, sizeof(err)), 0);
    CHECK_INT(oci_layout_count(&l), 2);
    CHECK_INT(oci_layout_resolve(&l, "v1", &got, err, sizeof(err)), 0);
    CHECK_STR(got.digest.str, m2.digest.str);
    CHECK_INT(oci_layout_commit(&l, err, sizeof(err)), 0);
    oci_layout_close(&l);

    CHECK_INT(oci_layout_open(&l, tmp, false, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_count(&l), 2);
    CHECK_INT(oci_layout_resolve(&l, "v1", &got, err, sizeof(err)), 0);
    CHECK_STR(got.digest.str, m2.digest.str);
    CHECK_INT(oci_layout_resolve(&l, "keep", &got, err, sizeof(err)), 0);
    CHECK_STR(got.digest.str, m1.digest.str);
    /* Back again, after a reopen. */
    CHECK_INT(oci_layout_add(&l, &m1, "v1", err, sizeof(err)), 0);
    CHECK_INT(oci_layout_count(&l), 2);
    CHECK_INT(oci_layout_commit(&l, err, sizeof(err)), 0);
    oci_layout_close(&l);
    CHECK_INT(oci_layout_open(&l, tmp, false, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_resolve(&l, "v1", &got, err, sizeof(err)), 0);
    CHECK_STR(got.digest.str, m1.digest.str);
    oci_layout_close(&l);
    rm_tree(tmp);
}

/* Entries an older index holds are kept with their unknown fields; duplicates of a name go. */
TEST(keeps_unknown_fields)
{
    struct oci_descriptor m1, m2, got;
    struct oci_layout l;
    char tmp[64], err[512], index[4096], *text;

    make_tmp(tmp, sizeof(tmp));
    CHECK_INT(oci_layout_open(&l, tmp, true, err, sizeof(err)), 0);
    put_image(&l, "one", &m1, NULL);
    put_image(&l, "two", &m2, NULL);
    oci_layout_close(&l);
    snprintf(index, sizeof(index),
             "{\"schemaVersion\":2,\"manifests\":["
             "{\"mediaType\":\"" OCI_MT_OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":%lld,"
             "\"x-extra\":[1,2],\"annotations\":{\"org.opencontainers.image.ref.name\":\"old\","
             "\"other\":\"kept\"}},"
             "{\"mediaType\":\"" OCI_MT_OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":%lld,"
             "\"annotations\":{\"org.opencontainers.image.ref.name\":\"dup\"}},"
             "{\"mediaType\":\"" OCI_MT_OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":%lld,"
             "\"annotations\":{\"org.opencontainers.image.ref.name\":\"dup\"}}"
             "],\"annotations\":{\"top\":\"level\"}}",
             m1.digest.str, (long long)m1.size, m1.digest.str, (long long)m1.size, m2.digest.str,
             (long long)m2.size);
    write_file(tmp, "index.json", index);

    CHECK_INT(oci_layout_open(&l, tmp, false, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_count(&l), 3);
    /* The first of two entries with one name wins. */
    CHECK_INT(oci_layout_resolve(&l, "dup", &got, err, sizeof(err)), 0);
    CHECK_STR(got.digest.str, m1.digest.str);
    CHECK_INT(oci_layout_add(&l, &m2, "dup", err, sizeof(err)), 0);
    CHECK_INT(oci_layout_count(&l), 2);
    CHECK_INT(oci_layout_commit(&l, err, sizeof(err)), 0);
    oci_layout_close(&l);

    text = slurp(tmp, "index.json");
    {
        const char *prefix = "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_INDEX "\",";
        CHECK(text != NULL && strncmp(text, prefix, strlen(prefix)) == 0);
    }
    CHECK(text != NULL && strstr(text, "\"x-extra\":[1,2]") != NULL);
    CHECK(text != NULL && strstr(text, "\"other\":\"kept\"") != NULL);
    CHECK(text != NULL && strstr(text, "\"annotations\":{\"top\":\"level\"}") != NULL);
    free(text);
    CHECK_INT(oci_layout_open(&l, tmp, false, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_resolve(&l, "dup", &got, err, sizeof(err)), 0);
    CHECK_STR(got.digest.str, m2.digest.str);
    CHECK_INT(oci_layout_resolve(&l, "old", &got, err, sizeof(err)), 0);
    CHECK_STR(got.digest.str, m1.digest.str);
    oci_layout_close(&l);
    rm_tree(tmp);
}

TEST(add_refusals)
{
    struct oci_descriptor m1, bad;
    struct oci_layout l;
    char tmp[64], err[512];

    make_tmp(tmp, sizeof(tmp));
    CHECK_INT(oci_layout_open(&l, tmp, true, err, sizeof(err)), 0);
    put_image(&l, "one", &m1, NULL);

    /* The manifest must be in the layout first, with the size the descriptor says. */
    bad = m1;
    bad.digest = digest_of("not written");
    CHECK_INT(oci_layout_add(&l, &bad, "x", err, sizeof(err)), OCISYNC_ENOTFOUND);
    CHECK(strstr(err, bad.digest.str) != NULL && strstr(err, tmp) != NULL);
    bad = m1;
    bad.size++;
    CHECK_INT(oci_layout_add(&l, &bad, "x", err, sizeof(err)), OCISYNC_ENOTFOUND);

    CHECK_INT(oci_layout_add(&l, &m1, "bad name", err, sizeof(err)), OCISYNC_EREF);
    CHECK_INT(oci_layout_add(&l, &m1, "a/", err, sizeof(err)), OCISYNC_EREF);
    bad = m1;
    snprintf(bad.media_type, sizeof(bad.media_type), "text\r\nX: y");
    CHECK_INT(oci_layout_add(&l, &bad, "x", err, sizeof(err)), OCISYNC_EUSAGE);
    bad = m1;
    bad.size = -1;
    CHECK_INT(oci_layout_add(&l, &bad, "x", err, sizeof(err)), OCISYNC_EUSAGE);
    bad = m1;
    memcpy(bad.digest.str, "sha256:../../../etc/passwd", 27);
    CHECK_INT(oci_layout_add(&l, &bad, "x", err, sizeof(err)), OCISYNC_EUSAGE);
    bad = m1;
    bad.platform.os[0] = '\0';
    CHECK_INT(oci_layout_add(&l, &bad, "x", err, sizeof(err)), OCISYNC_EUSAGE);
    bad = m1;
    snprintf(bad.platform.os, sizeof(bad.platform.os), "\xff\xfe");
    CHECK_INT(oci_layout_add(&l, &bad, "x", err, sizeof(err)), OCISYNC_EUSAGE);
    CHECK_INT(oci_layout_count(&l), 0);
    oci_layout_close(&l);
    rm_tree(tmp);
}

TEST(blob_read_verifies)
{
    struct oci_digest d = digest_of("hello world"), other = digest_of("other");
    struct oci_layout l;
    char tmp[64], err[512], path[512], *data = NULL;
    size_t len = 0;
    uint64_t size = 0;
    int fd = -1;

    make_tmp(tmp, sizeof(tmp));
    CHECK_INT(oci_layout_open(&l, tmp, true, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_put_blob(&l, &d, "hello world", 11, err, sizeof(err)), 0);
    CHECK(oci_layout_blob_exists(&l, &d, 11));
    CHECK(oci_layout_blob_exists(&l, &d, -1));
    CHECK(!oci_layout_blob_exists(&l, &d, 12));
    CHECK(!oci_layout_blob_exists(&l, &other, -1));

    CHECK_INT(oci_layout_blob_open(&l, &d, &fd, &size, err, sizeof(err)), 0);
    CHECK(fd >= 0);
    CHECK_INT(size, 11);
    if (fd >= 0)
        close(fd);

    CHECK_INT(oci_layout_blob_read(&l, &d, 100, &data, &len, err, sizeof(err)), 0);
    CHECK_INT(len, 11);
    CHECK_STR(data, "hello world");
    free(data);
    data = NULL;
    CHECK_INT(oci_layout_blob_read(&l, &d, 10, &data, &len, err, sizeof(err)), OCISYNC_ETOOBIG);
    CHECK(data == NULL);

    CHECK_INT(oci_layout_blob_read(&l, &other, 100, &data, &len, err, sizeof(err)),
              OCISYNC_ENOTFOUND);
    CHECK(strstr(err, other.str) != NULL && strstr(err, tmp) != NULL);
    CHECK_INT(oci_layout_blob_open(&l, &other, &fd, &size, err, sizeof(err)), OCISYNC_ENOTFOUND);
    CHECK_INT(fd, -1);

    /* Same size, other bytes: found by blob_exists, refused by blob_read. */
    blob_file(tmp, &d, path, sizeof(path));
    {
        FILE *f = fopen(path, "r+b");
        CHECK(f != NULL);
        if (f != NULL) {
            fwrite("HELLO", 1, 5, f);
            fclose(f);
        }
    }
    CHECK(oci_layout_blob_exists(&l, &d, 11));
    CHECK_INT(oci_layout_blob_read(&l, &d, 100, &data, &len, err, sizeof(err)),
              OCISYNC_EDIGESTMISMATCH);
    CHECK(data == NULL);
    CHECK(strstr(err, d.str) != NULL && strstr(err, "does not match") != NULL);
    /* Writing it again heals it: the verified bytes replace the corrupt file. */
    CHECK_INT(oci_layout_put_blob(&l, &d, "hello world", 11, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_blob_read(&l, &d, 100, &data, &len, err, sizeof(err)), 0);
    free(data);

    /* A digest struct that is not canonical never becomes a path. */
    {
        struct oci_digest evil = d;
        memcpy(evil.str, "sha256:../../", 13);
        CHECK_INT(oci_layout_blob_read(&l, &evil, 100, &data, &len, err, sizeof(err)),
                  OCISYNC_EDIGEST);
        CHECK(!oci_layout_blob_exists(&l, &evil, -1));
        evil = d;
        evil.alg = OCI_DIGEST_SHA512;
        CHECK_INT(oci_layout_blob_open(&l, &evil, &fd, &size, err, sizeof(err)), OCISYNC_EDIGEST);
    }
    oci_layout_close(&l);
    rm_tree(tmp);
}

TEST(symlink_blob_refused)
{
    struct oci_digest d = digest_of("linked");
    struct oci_layout l;
    char tmp[64], err[512], path[512], target[512], want[700], *data = NULL;
    size_t len = 0;
    uint64_t size = 0;
    int fd = -1;

    make_tmp(tmp, sizeof(tmp));
    CHECK_INT(oci_layout_open(&l, tmp, true, err, sizeof(err)), 0);
    /* The target has the right content: the link itself is what is refused. */
    write_file(tmp, "outside", "linked");
    snprintf(target, sizeof(target), "%s/outside", tmp);
    blob_file(tmp, &d, path, sizeof(path));
    CHECK_INT(symlink(target, path), 0);

    CHECK_INT(oci_layout_blob_open(&l, &d, &fd, &size, err, sizeof(err)), UV_ELOOP);
    CHECK_INT(fd, -1);
    snprintf(want, sizeof(want), "blob %s in layout %s is a symbolic link; refused", d.str, tmp);
    CHECK_STR(err, want);
    CHECK_INT(oci_layout_blob_read(&l, &d, 100, &data, &len, err, sizeof(err)), UV_ELOOP);
    CHECK_STR(err, want);
    CHECK(!oci_layout_blob_exists(&l, &d, -1));

    /* A FIFO is neither opened (it would block) nor read. */
    {
        struct oci_digest f = digest_of("fifo");
        blob_file(tmp, &f, path, sizeof(path));
        CHECK_INT(mkfifo(path, 0644), 0);
        CHECK_INT(oci_layout_blob_open(&l, &f, &fd, &size, err, sizeof(err)), UV_EINVAL);
        CHECK(strstr(err, "not a regular file") != NULL);
        CHECK(!oci_layout_blob_exists(&l, &f, -1));
    }
    oci_layout_close(&l);
    rm_tree(tmp);
}

TEST(writer_mismatch_leaves_nothing)
{
    struct oci_digest d = digest_of("hello");
    struct oci_layout_writer w;
    struct oci_layout l;
    char tmp[64], err[512];

    make_tmp(tmp, sizeof(tmp));
    CHECK_INT(oci_layout_open(&l, tmp, true, err, sizeof(err)), 0);

    /* Right size, wrong bytes. */
    CHECK_INT(oci_layout_blob_begin(&l, &d, 5, &w, err, sizeof(err)), 0);
    CHECK_INT(count_entries(tmp, "blobs/sha256"), 1);
    CHECK_INT(oci_layout_blob_write(&w, "wor", 3, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_blob_write(&w, "ld", 2, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_blob_commit(&w, err, sizeof(err)), OCISYNC_EDIGESTMISMATCH);
    CHECK(strstr(err, d.str) != NULL && strstr(err, tmp) != NULL);
    CHECK(strstr(err, digest_of("world").str) != NULL);
    CHECK_INT(count_entries(tmp, "blobs/sha256"), 0);
    CHECK(!oci_layout_blob_exists(&l, &d, -1));
    oci_layout_blob_abort(&w); /* after a failed commit: harmless */
    CHECK_INT(oci_layout_blob_commit(&w, err, sizeof(err)), UV_EINVAL);

    /* Short. */
    CHECK_INT(oci_layout_blob_begin(&l, &d, 5, &w, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_blob_write(&w, "hel", 3, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_blob_commit(&w, err, sizeof(err)), OCISYNC_ESIZEMISMATCH);
    CHECK(strstr(err, "3 bytes, expected 5") != NULL);
    CHECK_INT(count_entries(tmp, "blobs/sha256"), 0);

    /* Long: refused at the write that goes past the size. */
    CHECK_INT(oci_layout_blob_begin(&l, &d, 5, &w, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_blob_write(&w, "hell", 4, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_blob_write(&w, "oo", 2, err, sizeof(err)), OCISYNC_ESIZEMISMATCH);
    CHECK_INT(count_entries(tmp, "blobs/sha256"), 0);
    CHECK_INT(oci_layout_blob_write(&w, "o", 1, err, sizeof(err)), UV_EINVAL);
    CHECK_INT(oci_layout_blob_commit(&w, err, sizeof(err)), UV_EINVAL);
    CHECK(strstr(err, "an earlier write failed") != NULL);
    oci_layout_blob_abort(&w);
    CHECK_INT(count_entries(tmp, "blobs/sha256"), 0);

    /* Unknown size: only the digest decides. */
    CHECK_INT(oci_layout_blob_begin(&l, &d, -1, &w, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_blob_write(&w, "hello", 5, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_blob_commit(&w, err, sizeof(err)), 0);
    CHECK_INT(count_entries(tmp, "blobs/sha256"), 1);
    CHECK(oci_layout_blob_exists(&l, &d, 5));

    /* An empty blob is a blob. */
    {
        struct oci_digest e = digest_of("");
        CHECK_INT(oci_layout_put_blob(&l, &e, NULL, 0, err, sizeof(err)), 0);
        CHECK(oci_layout_blob_exists(&l, &e, 0));
    }
    oci_layout_close(&l);
    rm_tree(tmp);
}

TEST(abort_and_interrupted)
{
    struct oci_digest d = digest_of("partial content");
    struct oci_descriptor desc;
    struct oci_layout_writer w, w2;
    struct oci_layout l;
    char tmp[64], err[512];
    uint64_t size;
    int fd = -1;

    make_tmp(tmp, sizeof(tmp));
    CHECK_INT(oci_layout_open(&l, tmp, true, err, sizeof(err)), 0);

    CHECK_INT(oci_layout_blob_begin(&l, &d, 15, &w, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_blob_write(&w, "partial content", 15, err, sizeof(err)), 0);
    oci_layout_blob_abort(&w);
    oci_layout_blob_abort(&w);
    CHECK_INT(count_entries(tmp, "blobs/sha256"), 0);

    /* Begun and written but not committed: the blob is not there for anyone. */
    CHECK_INT(oci_layout_blob_begin(&l, &d, 15, &w, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_blob_write(&w, "partial", 7, err, sizeof(err)), 0);
    /* A second writer of the same blob gets its own temp file. */
    CHECK_INT(oci_layout_blob_begin(&l, &d, 15, &w2, err, sizeof(err)), 0);
    CHECK_INT(count_entries(tmp, "blobs/sha256"), 2);
    CHECK(!oci_layout_blob_exists(&l, &d, -1));
    CHECK_INT(oci_layout_blob_open(&l, &d, &fd, &size, err, sizeof(err)), OCISYNC_ENOTFOUND);
    memset(&desc, 0, sizeof(desc));
    snprintf(desc.media_type, sizeof(desc.media_type), OCI_MT_OCI_MANIFEST);
    desc.digest = d;
    desc.size = 15;
    CHECK_INT(oci_layout_add(&l, &desc, "x", err, sizeof(err)), OCISYNC_ENOTFOUND);

    /* Reopening sees a layout without the blob, whatever temp files lie around. */
    {
        struct oci_layout l2;
        CHECK_INT(oci_layout_open(&l2, tmp, false, err, sizeof(err)), 0);
        CHECK_INT(oci_layout_count(&l2), 0);
        CHECK(!oci_layout_blob_exists(&l2, &d, -1));
        oci_layout_close(&l2);
    }
    CHECK_INT(oci_layout_blob_write(&w2, "partial content", 15, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_blob_commit(&w2, err, sizeof(err)), 0);
    CHECK(oci_layout_blob_exists(&l, &d, 15));
    oci_layout_blob_abort(&w);
    CHECK_INT(count_entries(tmp, "blobs/sha256"), 1);
    oci_layout_close(&l);
    rm_tree(tmp);
}

TEST(sha512_blob)
{
    struct oci_digest d;
    struct oci_layout l;
    char tmp[64], err[512], *data = NULL;
    size_t len = 0;

    make_tmp(tmp, sizeof(tmp));
    CHECK_INT(oci_layout_open(&l, tmp, true, err, sizeof(err)), 0);
    oci_digest_buffer(OCI_DIGEST_SHA512, "abc", 3, &d);
    CHECK_INT(oci_layout_put_blob(&l, &d, "abc", 3, err, sizeof(err)), 0);
    CHECK_INT(count_entries(tmp, "blobs/sha512"), 1);
    CHECK_INT(oci_layout_blob_read(&l, &d, 3, &data, &len, err, sizeof(err)), 0);
    CHECK_STR(data, "abc");
    free(data);
    oci_layout_close(&l);
    rm_tree(tmp);
}

struct writer_job {
    struct oci_layout *l;
    char content[64];
    int rc;
};

static void *write_job(void *arg)
{
    struct writer_job *j = arg;
    struct oci_digest d = digest_of(j->content);
    struct oci_layout_writer w;
    char err[512];

    j->rc = oci_layout_blob_begin(j->l, &d, (int64_t)strlen(j->content), &w, err, sizeof(err));
    for (size_t i = 0; j->rc == 0 && j->content[i] != '\0'; i++)
        j->rc = oci_layout_blob_write(&w, &j->content[i], 1, err, sizeof(err));
    if (j->rc == 0)
        j->rc = oci_layout_blob_commit(&w, err, sizeof(err));
    oci_layout_blob_abort(&w);
    return NULL;
}

/* Writers on several threads at once, two of them writing the same blob. */
TEST(threaded_writers)
{
    struct writer_job jobs[6];
    pthread_t threads[6];
    struct oci_layout l;
    char tmp[64], err[512];

    make_tmp(tmp, sizeof(tmp));
    CHECK_INT(oci_layout_open(&l, tmp, true, err, sizeof(err)), 0);
    for (int i = 0; i < 6; i++) {
        jobs[i].l = &l;
        snprintf(jobs[i].content, sizeof(jobs[i].content), "blob number %d", i < 5 ? i : 0);
        jobs[i].rc = -1;
        CHECK_INT(pthread_create(&threads[i], NULL, write_job, &jobs[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(threads[i], NULL);
        CHECK_INT(jobs[i].rc, 0);
        {
            struct oci_digest d = digest_of(jobs[i].content);
            CHECK(oci_layout_blob_exists(&l, &d, (int64_t)strlen(jobs[i].content)));
        }
    }
    CHECK_INT(count_entries(tmp, "blobs/sha256"), 5);
    oci_layout_close(&l);
    rm_tree(tmp);
}

/* Opens dir (no create) and expects rc with a message containing what. */
static void expect_open_error(const char *dir, bool create, int rc, const char *what)
{
    struct oci_layout l;
    char err[512];

    CHECK_INT(oci_layout_open(&l, dir, create, err, sizeof(err)), rc);
    if (strstr(err, what) == NULL) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err, what);
        CHECK(strstr(err, what) != NULL);
    }
    CHECK(strstr(err, dir) != NULL);
    CHECK(l.dirfd == -1 && l.index == NULL && l.dir == NULL);
    oci_layout_close(&l);
}

TEST(malformed_layouts)
{
    char tmp[64], dir[128], index[1024], path[256];

    make_tmp(tmp, sizeof(tmp));
    snprintf(dir, sizeof(dir), "%s/missing", tmp);
    expect_open_error(dir, false, UV_ENOENT, "does not exist");
    snprintf(dir, sizeof(dir), "%s/no/parent", tmp);
    expect_open_error(dir, true, UV_ENOENT, "cannot create");

    /* Not a directory, with or without create. */
    write_file(tmp, "file", "x");
    snprintf(dir, sizeof(dir), "%s/file", tmp);
    expect_open_error(dir, false, UV_ENOTDIR, "not a directory");
    expect_open_error(dir, true, UV_ENOTDIR, "not a directory");

    /* A directory without oci-layout: not a layout; with create, refused unless empty. */
    snprintf(dir, sizeof(dir), "%s/plain", tmp);
    mkdir(dir, 0755);
    expect_open_error(dir, false, OCISYNC_EMANIFEST, "no oci-layout file");
    write_file(dir, "index.json", "{}");
    expect_open_error(dir, true, OCISYNC_EMANIFEST, "not empty");

    snprintf(dir, sizeof(dir), "%s/bad", tmp);
    mkdir(dir, 0755);
    write_file(dir, "oci-layout", "{\"imageLayoutVersion\":\"2.0.0\"}");
    expect_open_error(dir, false, OCISYNC_EMANIFEST, "imageLayoutVersion \"2.0.0\"");
    expect_open_error(dir, true, OCISYNC_EMANIFEST, "imageLayoutVersion");
    write_file(dir, "oci-layout", "{\"imageLayoutVersion\":1}");
    expect_open_error(dir, false, OCISYNC_EMANIFEST, "imageLayoutVersion");
    write_file(dir, "oci-layout", "not json");
    expect_open_error(dir, false, OCISYNC_EMANIFEST, "not valid JSON");
    write_file(dir, "oci-layout", "[[[[[[[[[[[[\"imageLayoutVersion\"]]]]]]]]]]]]");
    expect_open_error(dir, false, OCISYNC_EMANIFEST, "nests deeper");
    {
        char big[OCI_LAYOUT_FILE_MAX + 64];
        memset(big, ' ', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        write_file(dir, "oci-layout", big);
        expect_open_error(dir, false, OCISYNC_EMANIFEST, "over");
    }

    write_file(dir, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
    /* A bad digest in index.json. */
    write_file(dir, "index.json",
               "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_MT_OCI_MANIFEST
               "\",\"digest\":\"sha256:ABC\",\"size\":1}]}");
    expect_open_error(dir, false, OCISYNC_EMANIFEST, "invalid digest");
    /* A negative size. */
    snprintf(index, sizeof(index),
             "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_MT_OCI_MANIFEST
             "\",\"digest\":\"%s\",\"size\":-1}]}",
             digest_of("x").str);
    write_file(dir, "index.json", index);
    expect_open_error(dir, false, OCISYNC_EMANIFEST, "negative size");
    /* schemaVersion 1, no schemaVersion. */
    write_file(dir, "index.json", "{\"schemaVersion\":3,\"manifests\":[]}");
    expect_open_error(dir, false, OCISYNC_EMANIFEST, "schemaVersion");
    write_file(dir, "index.json", "{\"manifests\":[]}");
    expect_open_error(dir, false, OCISYNC_EMANIFEST, "schemaVersion");
    /* An image manifest is not an index. */
    write_file(dir, "index.json",
               "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" OCI_MT_OCI_CONFIG
               "\",\"digest\":\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b78"
               "52b855\",\"size\":0},\"layers\":[]}");
    expect_open_error(dir, false, OCISYNC_EMANIFEST, "not an OCI image index");
    /* Too deep. */
    {
        char deep[600];
        size_t n = 0;
        n += (size_t)snprintf(deep, sizeof(deep), "{\"schemaVersion\":2,\"manifests\":[],\"x\":");
        for (int i = 0; i < 200; i++)
            deep[n++] = '[';
        for (int i = 0; i < 200; i++)
            deep[n++] = ']';
        deep[n++] = '}';
        deep[n] = '\0';
        write_file(dir, "index.json", deep);
        expect_open_error(dir, false, OCISYNC_ETOOBIG, "deeper");
    }
    /* Not JSON; a ref name that is not a name; annotations of the wrong type. */
    write_file(dir, "index.json", "{\"schemaVersion\":2,");
    expect_open_error(dir, false, OCISYNC_EMANIFEST, "index.json");
    snprintf(index, sizeof(index),
             "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_MT_OCI_MANIFEST
             "\",\"digest\":\"%s\",\"size\":1,\"annotations\":{"
             "\"org.opencontainers.image.ref.name\":\"../x\"}}]}",
             digest_of("x").str);
    write_file(dir, "index.json", index);
    expect_open_error(dir, false, OCISYNC_EMANIFEST, "invalid org.opencontainers.image.ref.name");
    snprintf(index, sizeof(index),
             "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_MT_OCI_MANIFEST
             "\",\"digest\":\"%s\",\"size\":1,\"annotations\":[]}]}",
             digest_of("x").str);
    write_file(dir, "index.json", index);
    expect_open_error(dir, false, OCISYNC_EMANIFEST, "annotations");
    /* index.json as a symbolic link. */
    snprintf(path, sizeof(path), "%s/index.json", dir);
    remove(path);
    CHECK_INT(symlink("/etc/hostname", path), 0);
    expect_open_error(dir, false, OCISYNC_EMANIFEST, "symbolic link");
    /* A missing index.json is an empty index. */
    remove(path);
    {
        struct oci_layout l;
        char err[512];
        CHECK_INT(oci_layout_open(&l, dir, false, err, sizeof(err)), 0);
        CHECK_INT(oci_layout_count(&l), 0);
        oci_layout_close(&l);
    }
    rm_tree(tmp);
}

/*
 * A layout (tmp/lay) with one blob, and beside it tmp/outside, which holds a
 * 0600 file under the blob's name, and again in outside/sha256: where the
 * blob would be read from with blobs/sha256 -> outside or blobs -> outside.
 * The content matches the digest, so only the way there can be refused.
 */
static void layout_and_outside(const char *tmp, const struct oci_digest *d, const char *content,
                               char *lay, char *outside, size_t len)
{
    struct oci_layout l;
    char err[512], path[512];
    int fd;

    snprintf(lay, len, "%s/lay", tmp);
    snprintf(outside, len, "%s/outside", tmp);
    CHECK_INT(oci_layout_open(&l, lay, true, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_put_blob(&l, d, content, strlen(content), err, sizeof(err)), 0);
    CHECK_INT(oci_layout_commit(&l, err, sizeof(err)), 0);
    oci_layout_close(&l);
    CHECK_INT(mkdir(outside, 0700), 0);
    snprintf(path, sizeof(path), "%s/sha256", outside);
    CHECK_INT(mkdir(path, 0700), 0);
    for (int level = 0; level < 2; level++) {
        snprintf(path, sizeof(path), "%s%s/%s", outside, level ? "/sha256" : "", oci_digest_hex(d));
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        CHECK(fd >= 0 && write(fd, content, strlen(content)) == (ssize_t)strlen(content));
        if (fd >= 0)
            close(fd);
    }
}

/* Replaces lay/sub (a directory, a file or nothing) with a symbolic link to target. */
static void swap_for_link(const char *lay, const char *sub, const char *target)
{
    char path[512], cmd[1200];

    snprintf(path, sizeof(path), "%s/%s", lay, sub);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    CHECK_INT(system(cmd), 0);
    CHECK_INT(symlink(target, path), 0);
}

/* Entries of outside and of outside/sha256: what a write through a link would add to. */
static int outside_entries(const char *outside)
{
    return count_entries(outside, "") * 10 + count_entries(outside, "sha256");
}

/*
 * blobs/sha256, blobs or blobs/sha512 as a symbolic link: refused when a
 * layout is opened to be read or written, and, should the link appear after
 * the layout was opened, by every read and write of a blob. Nothing outside
 * the layout is read or written either way.
 */
TEST(symlink_blobs_dir_refused)
{
    static const char *const subs[] = {"blobs/sha256", "blobs"};
    struct oci_digest d = digest_of("secret"), d2 = digest_of("new blob"), d512;
    char tmp[64], lay[128], outside[128], err[512], want[700], cmd[700], *data = NULL;
    struct oci_layout l;
    size_t len = 0;
    uint64_t size = 0;
    int fd = -1;

    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        make_tmp(tmp, sizeof(tmp));
        layout_and_outside(tmp, &d, "secret", lay, outside, sizeof(lay));
        snprintf(want, sizeof(want), "%s in layout %s is a symbolic link; refused", subs[i], lay);

        /* The link is there when the layout is opened: refused as a source and as a destination. */
        swap_for_link(lay, subs[i], outside);
        CHECK_INT(oci_layout_open(&l, lay, false, err, sizeof(err)), OCISYNC_EMANIFEST);
        CHECK_STR(err, want);
        CHECK_INT(oci_layout_open(&l, lay, true, err, sizeof(err)), OCISYNC_EMANIFEST);
        CHECK_STR(err, want);
        oci_layout_close(&l);

        /* It appears after: every blob operation refuses it. */
        snprintf(cmd, sizeof(cmd), "rm '%s/%s' && mkdir -p '%s/blobs/sha256'", lay, subs[i], lay);
        CHECK_INT(system(cmd), 0);
        CHECK_INT(oci_layout_open(&l, lay, false, err, sizeof(err)), 0);
        swap_for_link(lay, subs[i], outside);
        CHECK_INT(oci_layout_blob_open(&l, &d, &fd, &size, err, sizeof(err)), UV_ELOOP);
        CHECK_INT(fd, -1);
        CHECK_STR(err, want);
        CHECK_INT(oci_layout_blob_read(&l, &d, 100, &data, &len, err, sizeof(err)), UV_ELOOP);
        CHECK(data == NULL);
        CHECK_STR(err, want);
        CHECK(!oci_layout_blob_exists(&l, &d, -1));
        CHECK_INT(oci_layout_put_blob(&l, &d2, "new blob", 8, err, sizeof(err)), UV_ELOOP);
        CHECK_STR(err, want);
        oci_layout_close(&l);
        /* No blob, no temp file, no directory was made through the link. */
        CHECK_INT(outside_entries(outside), 21);
        rm_tree(tmp);
    }

    /* blobs/sha512 likewise, made on first use. */
    make_tmp(tmp, sizeof(tmp));
    layout_and_outside(tmp, &d, "secret", lay, outside, sizeof(lay));
    CHECK_INT(oci_layout_open(&l, lay, false, err, sizeof(err)), 0);
    swap_for_link(lay, "blobs/sha512", outside);
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA512, "x", 1, &d512), 0);
    CHECK_INT(oci_layout_put_blob(&l, &d512, "x", 1, err, sizeof(err)), UV_ELOOP);
    snprintf(want, sizeof(want), "blobs/sha512 in layout %s is a symbolic link; refused", lay);
    CHECK_STR(err, want);
    oci_layout_close(&l);
    expect_open_error(lay, false, OCISYNC_EMANIFEST, want);
    CHECK_INT(outside_entries(outside), 21);

    /* A blobs/sha256 that is a file is no directory either. */
    snprintf(cmd, sizeof(cmd), "rm '%s/blobs/sha512' && rm -r '%s/blobs/sha256'", lay, lay);
    CHECK_INT(system(cmd), 0);
    write_file(lay, "blobs/sha256", "not a directory");
    snprintf(want, sizeof(want), "blobs/sha256 in layout %s is not a directory; refused", lay);
    expect_open_error(lay, false, OCISYNC_EMANIFEST, want);
    expect_open_error(lay, true, OCISYNC_EMANIFEST, want);
    rm_tree(tmp);
}

/* oci-layout and index.json as symbolic links: refused for reading and for writing alike. */
TEST(symlink_layout_files_refused)
{
    static const char *const names[] = {"oci-layout", "index.json"};
    struct oci_digest d = digest_of("secret");
    char tmp[64], lay[128], outside[128], path[512], target[512], want[700], err[512];
    struct oci_layout l;

    make_tmp(tmp, sizeof(tmp));
    layout_and_outside(tmp, &d, "secret", lay, outside, sizeof(lay));
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        /* The link's target is a valid file of its kind. */
        snprintf(path, sizeof(path), "%s/%s", lay, names[i]);
        snprintf(target, sizeof(target), "%s/%s", outside, names[i]);
        CHECK_INT(rename(path, target), 0);
        CHECK_INT(symlink(target, path), 0);
        snprintf(want, sizeof(want), "%s in layout %s is a symbolic link; refused", names[i], lay);
        expect_open_error(lay, false, OCISYNC_EMANIFEST, want);
        expect_open_error(lay, true, OCISYNC_EMANIFEST, want);
        CHECK_INT(unlink(path), 0);
        CHECK_INT(rename(target, path), 0);
    }
    /* Nothing was written through the links: the layout is as it was. */
    CHECK_INT(outside_entries(outside), 21);
    CHECK_INT(oci_layout_open(&l, lay, false, err, sizeof(err)), 0);
    CHECK(oci_layout_blob_exists(&l, &d, 6));
    oci_layout_close(&l);
    rm_tree(tmp);
}

/* An empty directory becomes a layout with create; leftovers of an interrupted create too. */
TEST(create_in_existing_dir)
{
    struct oci_layout l;
    char tmp[64], err[512];

    make_tmp(tmp, sizeof(tmp));
    write_file(tmp, ".tmp-oci-layout-0123456789abcdef", "{");
    CHECK_INT(oci_layout_open(&l, tmp, true, err, sizeof(err)), 0);
    oci_layout_close(&l);
    /* Opening again with create is opening an existing layout. */
    CHECK_INT(oci_layout_open(&l, tmp, true, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_count(&l), 0);
    /* Committing an empty index writes a valid one. */
    CHECK_INT(oci_layout_commit(&l, err, sizeof(err)), 0);
    oci_layout_close(&l);
    {
        char *text = slurp(tmp, "index.json");
        CHECK_STR(text,
                  "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_INDEX "\",\"manifests\":[]}");
        free(text);
    }
    /* oci-layout gone: commit puts it back. */
    CHECK_INT(oci_layout_open(&l, tmp, false, err, sizeof(err)), 0);
    {
        char path[256];
        snprintf(path, sizeof(path), "%s/oci-layout", tmp);
        remove(path);
    }
    CHECK_INT(oci_layout_commit(&l, err, sizeof(err)), 0);
    oci_layout_close(&l);
    CHECK_INT(oci_layout_open(&l, tmp, false, err, sizeof(err)), 0);
    oci_layout_close(&l);
    rm_tree(tmp);
}

TEST(ref_valid)
{
    static const char *const good[] = {
        "latest",
        "v1.0",
        "a-b",
        "a--b",
        "a_b",
        "a+b",
        "a:b",
        "a@b",
        "A1",
        "docker.io/library/alpine:3.19",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "1/2/3",
    };
    static const char *const bad[] = {
        "",    "-a",   "a-",   "a---b",    "a..b",   "a.-b",    "/a",  "a/",  "a//b",
        "a b", "a\tb", "a\nb", "\xc3\xa9", "a/../b", ".hidden", "a=b", "a,b", "a!b",
    };
    char longname[OCI_LAYOUT_REF_MAX + 2];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!oci_layout_ref_valid(good[i]))
            fprintf(stderr, "  rejected \"%s\"\n", good[i]);
        CHECK(oci_layout_ref_valid(good[i]));
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (oci_layout_ref_valid(bad[i]))
            fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
        CHECK(!oci_layout_ref_valid(bad[i]));
    }
    CHECK(!oci_layout_ref_valid(NULL));
    memset(longname, 'a', sizeof(longname) - 1);
    longname[OCI_LAYOUT_REF_MAX] = '\0';
    CHECK(oci_layout_ref_valid(longname));
    longname[OCI_LAYOUT_REF_MAX] = 'a';
    longname[OCI_LAYOUT_REF_MAX + 1] = '\0';
    CHECK(!oci_layout_ref_valid(longname));
}

TEST(ref_split)
{
    char dir[64], ref[OCI_LAYOUT_REF_MAX + 1], small[4];
    const char *dg = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    char spec[256];

    CHECK_INT(oci_layout_ref_split("/tmp/x:latest", dir, sizeof(dir), ref, sizeof(ref)), 0);
    CHECK_STR(dir, "/tmp/x");
    CHECK_STR(ref, "latest");
    CHECK_INT(oci_layout_ref_split("/tmp/x", dir, sizeof(dir), ref, sizeof(ref)), 0);
    CHECK_STR(dir, "/tmp/x");
    CHECK_STR(ref, "");
    CHECK_INT(oci_layout_ref_split("/tmp/a:b/c", dir, sizeof(dir), ref, sizeof(ref)), 0);
    CHECK_STR(dir, "/tmp/a:b/c");
    CHECK_STR(ref, "");
    CHECK_INT(oci_layout_ref_split("/tmp/a:b/c:v2", dir, sizeof(dir), ref, sizeof(ref)), 0);
    CHECK_STR(dir, "/tmp/a:b/c");
    CHECK_STR(ref, "v2");
    CHECK_INT(oci_layout_ref_split("layout", dir, sizeof(dir), ref, sizeof(ref)), 0);
    CHECK_STR(dir, "layout");
    CHECK_STR(ref, "");
    CHECK_INT(oci_layout_ref_split("/tmp/x:", dir, sizeof(dir), ref, sizeof(ref)), 0);
    CHECK_STR(dir, "/tmp/x");
    CHECK_STR(ref, "");
    CHECK_INT(oci_layout_ref_split("d:a:b", dir, sizeof(dir), ref, sizeof(ref)), 0);
    CHECK_STR(dir, "d:a");
    CHECK_STR(ref, "b");

    snprintf(spec, sizeof(spec), "/tmp/x:%s", dg);
    CHECK_INT(oci_layout_ref_split(spec, dir, sizeof(dir), ref, sizeof(ref)), 0);
    CHECK_STR(dir, "/tmp/x");
    CHECK_STR(ref, dg);
    snprintf(spec, sizeof(spec), "/tmp/x@%s", dg);
    CHECK_INT(oci_layout_ref_split(spec, dir, sizeof(dir), ref, sizeof(ref)), 0);
    CHECK_STR(dir, "/tmp/x");
    CHECK_STR(ref, dg);

    CHECK_INT(oci_layout_ref_split("", dir, sizeof(dir), ref, sizeof(ref)), OCISYNC_EREF);
    CHECK_INT(oci_layout_ref_split(":tag", dir, sizeof(dir), ref, sizeof(ref)), OCISYNC_EREF);
    CHECK_INT(oci_layout_ref_split("/tmp/x:bad tag", dir, sizeof(dir), ref, sizeof(ref)),
              OCISYNC_EREF);
    CHECK_STR(dir, "");
    CHECK_STR(ref, "");
    CHECK_INT(oci_layout_ref_split("/tmp/x:-a", dir, sizeof(dir), ref, sizeof(ref)), OCISYNC_EREF);
    CHECK_INT(oci_layout_ref_split("/tmp/x:a\x01", dir, sizeof(dir), ref, sizeof(ref)),
              OCISYNC_EREF);
    CHECK_INT(oci_layout_ref_split("/tmp/x:latest", small, sizeof(small), ref, sizeof(ref)),
              OCISYNC_ETOOBIG);
    CHECK_INT(oci_layout_ref_split("/d:latest", dir, sizeof(dir), small, sizeof(small)),
              OCISYNC_ETOOBIG);
    CHECK_INT(oci_layout_ref_split(NULL, dir, sizeof(dir), ref, sizeof(ref)), OCISYNC_EUSAGE);
}

/* Runs cmd and returns its whole stdout (malloc'ed) or NULL if it failed. */
static char *run(const char *cmd)
{
    size_t cap = 1 << 16, len = 0, n;
    char *buf = malloc(cap + 1);
    FILE *p = popen(cmd, "r");

    if (p == NULL) {
        free(buf);
        return NULL;
    }
    while ((n = fread(buf + len, 1, cap - len, p)) > 0)
        len += n;
    buf[len] = '\0';
    if (pclose(p) != 0) {
        fprintf(stderr, "  command failed: %s\n", cmd);
        free(buf);
        return NULL;
    }
    return buf;
}

static bool have_tool(const char *name)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
    return system(cmd) == 0;
}

/* What ocisync writes, skopeo and umoci read; what skopeo writes, ocisync reads. */
TEST(real_tools)
{
    struct oci_descriptor m1, m2, got;
    struct oci_layout l;
    char tmp[64], dir[128], dir2[128], err[512], cmd[1024], *manifest1 = NULL, *manifest2 = NULL;
    char *out;

    if (!have_tool("skopeo"))
        SKIP("skopeo is not installed");
    make_tmp(tmp, sizeof(tmp));
    snprintf(dir, sizeof(dir), "%s/ours", tmp);
    CHECK_INT(oci_layout_open(&l, dir, true, err, sizeof(err)), 0);
    put_image(&l, "one", &m1, &manifest1);
    put_image(&l, "two", &m2, &manifest2);
    CHECK_INT(oci_layout_add(&l, &m1, "v1", err, sizeof(err)), 0);
    CHECK_INT(oci_layout_add(&l, &m2, "v2", err, sizeof(err)), 0);
    CHECK_INT(oci_layout_commit(&l, err, sizeof(err)), 0);
    oci_layout_close(&l);

    snprintf(cmd, sizeof(cmd), "skopeo inspect --raw oci:%s:v1", dir);
    out = run(cmd);
    CHECK_STR(out, manifest1);
    free(out);
    snprintf(cmd, sizeof(cmd), "skopeo inspect --raw oci:%s:v2", dir);
    out = run(cmd);
    CHECK_STR(out, manifest2);
    free(out);
    snprintf(cmd, sizeof(cmd), "skopeo inspect --config --raw oci:%s:v2", dir);
    out = run(cmd);
    CHECK_STR(out, CONFIG_JSON);
    free(out);

    if (have_tool("umoci")) {
        snprintf(cmd, sizeof(cmd), "umoci ls --layout %s 2>/dev/null | sort | tr '\\n' ' '", dir);
        out = run(cmd);
        CHECK_STR(out, "v1 v2 ");
        free(out);
    }

    /* skopeo copies v2 into a layout of its own; ocisync reads it and finds the same manifest. */
    snprintf(dir2, sizeof(dir2), "%s/theirs", tmp);
    snprintf(cmd, sizeof(cmd),
             "skopeo --insecure-policy copy --quiet oci:%s:v2 oci:%s:copied >/dev/null 2>&1", dir,
             dir2);
    out = run(cmd);
    CHECK(out != NULL);
    free(out);
    CHECK_INT(oci_layout_open(&l, dir2, false, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_resolve(&l, "copied", &got, err, sizeof(err)), 0);
    CHECK_STR(got.digest.str, m2.digest.str);
    CHECK_INT(oci_layout_resolve(&l, NULL, &got, err, sizeof(err)), 0);
    {
        char *data = NULL;
        size_t len = 0;
        CHECK_INT(oci_layout_blob_read(&l, &got.digest, OCI_MANIFEST_MAX_SIZE, &data, &len, err,
                                       sizeof(err)),
                  0);
        CHECK_STR(data, manifest2);
        free(data);
    }
    /* And we can add to skopeo's layout without disturbing its entry. */
    put_image(&l, "three", &m1, NULL);
    CHECK_INT(oci_layout_add(&l, &m1, "added", err, sizeof(err)), 0);
    CHECK_INT(oci_layout_commit(&l, err, sizeof(err)), 0);
    oci_layout_close(&l);
    snprintf(cmd, sizeof(cmd), "skopeo inspect --raw oci:%s:copied", dir2);
    out = run(cmd);
    CHECK_STR(out, manifest2);
    free(out);
    snprintf(cmd, sizeof(cmd), "skopeo inspect --raw oci:%s:added", dir2);
    out = run(cmd);
    CHECK(out != NULL && strstr(out, "\"note\":\"three\"") != NULL);
    free(out);

    free(manifest1);
    free(manifest2);
    rm_tree(tmp);
}

TEST_MAIN(T(create_commit_reopen), T(only_entry), T(replace_ref), T(keeps_unknown_fields),
          T(add_refusals), T(blob_read_verifies), T(symlink_blob_refused),
          T(writer_mismatch_leaves_nothing), T(abort_and_interrupted), T(sha512_blob),
          T(threaded_writers), T(malformed_layouts), T(symlink_blobs_dir_refused),
          T(symlink_layout_files_refused), T(create_in_existing_dir), T(ref_valid), T(ref_split),
          T(real_tools))
