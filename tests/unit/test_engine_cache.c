/*
 * The build cache (src/engine/cache.c): keys follow exactly what a layer is
 * made of, the stat index spares reading unchanged files, entries and blobs
 * round-trip, and a damaged or partial cache is a miss, never an error.
 */
#define _GNU_SOURCE
#include "test.h"

#include "engine/cache.h"
#include "ocisync.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[64];

static void put_file(const char *rel, const char *content, mode_t mode)
{
    char p[512];
    int fd;

    snprintf(p, sizeof(p), "%s/%s", root, rel);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK_INT(write(fd, content, strlen(content)), (long long)strlen(content));
    close(fd);
    chmod(p, mode);
}

static void setup(void)
{
    char p[512];

    snprintf(root, sizeof(root), "/tmp/ocisync-cache-XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    snprintf(p, sizeof(p), "%s/src", root);
    CHECK_INT(mkdir(p, 0755), 0);
    put_file("src/a.txt", "alpha", 0644);
    put_file("src/b.txt", "bravo", 0644);
}

static void teardown(void)
{
    char cmd[200];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    CHECK_INT(system(cmd), 0);
}

/* The key of root/src laid out at /app, with opts. */
static int key_of(const struct engine_cache *c, const struct oci_tar_opts *opts,
                  enum oci_compression comp, struct oci_digest *key)
{
    struct oci_tar_plan plan;
    struct oci_tar_source s;
    char src[512], err[256];
    int rc;

    snprintf(src, sizeof(src), "%s/src", root);
    s = (struct oci_tar_source){.src = src, .dest = "/app"};
    rc = oci_tar_plan_build(&plan, &s, 1, opts, err, sizeof(err));
    CHECK_INT(rc, 0);
    if (rc != 0)
        return rc;
    rc = engine_cache_key(c, &plan, comp, 0, key, err, sizeof(err));
    oci_tar_plan_free(&plan);
    return rc;
}

TEST(keys_follow_content)
{
    struct engine_cache c;
    struct oci_tar_opts o = {.clamp_mtime = true, .mtime_max = 1700000000};
    struct oci_digest k1, k2, k3;
    char dir[128];

    setup();
    snprintf(dir, sizeof(dir), "%s/cache", root);
    engine_cache_open(&c, dir);
    CHECK_STR(c.dir, dir);
    CHECK_INT(key_of(&c, &o, OCI_COMPRESS_GZIP, &k1), 0);
    CHECK_INT(key_of(&c, &o, OCI_COMPRESS_GZIP, &k2), 0);
    CHECK(oci_digest_equal(&k1, &k2));
    /* The compression is part of what the blob is. */
    CHECK_INT(key_of(&c, &o, OCI_COMPRESS_ZSTD, &k3), 0);
    CHECK(!oci_digest_equal(&k1, &k3));
    /* Same size, other content: another key, though size and (clamped) mtime agree. */
    put_file("src/a.txt", "ALPHA", 0644);
    CHECK_INT(key_of(&c, &o, OCI_COMPRESS_GZIP, &k2), 0);
    CHECK(!oci_digest_equal(&k1, &k2));
    put_file("src/a.txt", "alpha", 0644);
    CHECK_INT(key_of(&c, &o, OCI_COMPRESS_GZIP, &k2), 0);
    CHECK(oci_digest_equal(&k1, &k2));
    /* A mode, an owner. */
    put_file("src/b.txt", "bravo", 0600);
    CHECK_INT(key_of(&c, &o, OCI_COMPRESS_GZIP, &k2), 0);
    CHECK(!oci_digest_equal(&k1, &k2));
    put_file("src/b.txt", "bravo", 0644);
    o.chown = true;
    o.uid = o.gid = 1000;
    CHECK_INT(key_of(&c, &o, OCI_COMPRESS_GZIP, &k2), 0);
    CHECK(!oci_digest_equal(&k1, &k2));
    teardown();
}

/*
 * A file whose stat is unchanged is not read again: the index's digest is
 * used. Proved by making the file unreadable (root reads anyway, so by
 * replacing the index's digest and seeing it come back in the key).
 */
TEST(stat_index_spares_reads)
{
    struct engine_cache c;
    struct oci_tar_opts o = {.clamp_mtime = true, .mtime_max = 1700000000};
    struct oci_digest k1, k2;
    char dir[128], idx[256], cmd[600];
    FILE *f;
    char line[1024];
    bool found = false;

    setup();
    snprintf(dir, sizeof(dir), "%s/cache", root);
    engine_cache_open(&c, dir);
    CHECK_INT(key_of(&c, &o, OCI_COMPRESS_GZIP, &k1), 0);
    snprintf(idx, sizeof(idx), "%s/stat-index", dir);
    f = fopen(idx, "r");
    CHECK(f != NULL);
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        found |= strstr(line, "/src/a.txt") != NULL && strlen(line) > 64;
    if (f != NULL)
        fclose(f);
    CHECK(found);
    /* Rewrite a.txt's remembered digest: an unchanged stat means it is believed. */
    snprintf(cmd, sizeof(cmd), "sed -i '/\\/src\\/a.txt$/s/^[0-9a-f]\\{64\\}/%064d/' '%s'", 0, idx);
    CHECK_INT(system(cmd), 0);
    CHECK_INT(key_of(&c, &o, OCI_COMPRESS_GZIP, &k2), 0);
    CHECK(!oci_digest_equal(&k1, &k2));
    /* Touched (ctime changes): read again, and the true key is back. */
    put_file("src/a.txt", "alpha", 0644);
    CHECK_INT(key_of(&c, &o, OCI_COMPRESS_GZIP, &k2), 0);
    CHECK(oci_digest_equal(&k1, &k2));
    teardown();
}

/*
 * A layer built without a key first takes it from its own reads: the tar
 * stream's file digests give the same key as reading the files, the stat
 * index learns them (the next key reads nothing), and a missing digest is
 * refused rather than hashed as nothing.
 */
TEST(key_from_build_sums)
{
    struct engine_cache c;
    struct oci_tar_opts o = {.clamp_mtime = true, .mtime_max = 1700000000};
    struct oci_tar_plan plan;
    struct oci_tar_source s;
    struct oci_tar_stream st;
    struct oci_tar_file_sum *sums;
    struct oci_digest from_files, from_sums;
    char src[512], dir[128], idx[256], err[256], cmd[600];
    unsigned char buf[4096];
    size_t n;
    int rc;

    setup();
    put_file("src/empty", "", 0644);
    snprintf(dir, sizeof(dir), "%s/cache", root);
    snprintf(src, sizeof(src), "%s/src", root);
    s = (struct oci_tar_source){.src = src, .dest = "/app"};
    CHECK_INT(oci_tar_plan_build(&plan, &s, 1, &o, err, sizeof(err)), 0);
    sums = calloc(plan.n_entries, sizeof(*sums));
    CHECK(sums != NULL);
    CHECK_INT(oci_tar_stream_init(&st, &plan), 0);
    st.sums = sums;
    do {
        rc = oci_tar_stream_read(&st, buf, sizeof(buf), &n, err, sizeof(err));
    } while (rc == 0 && n > 0);
    CHECK_INT(rc, 0);
    oci_tar_stream_dispose(&st);
    for (size_t i = 0; i < plan.n_entries; i++)
        CHECK_INT(sums[i].done, plan.entries[i].type == '0' && plan.entries[i].src != NULL);

    /* The cache's own key, from the files, in a cache of its own (no index shared). */
    snprintf(dir, sizeof(dir), "%s/cache-a", root);
    engine_cache_open(&c, dir);
    CHECK(!engine_cache_has_layers(&c));
    CHECK_INT(engine_cache_key(&c, &plan, OCI_COMPRESS_ZSTD, 0, &from_files, err, sizeof(err)), 0);
    snprintf(dir, sizeof(dir), "%s/cache-b", root);
    engine_cache_open(&c, dir);
    CHECK_INT(
        engine_cache_key_sums(&c, &plan, OCI_COMPRESS_ZSTD, 0, sums, &from_sums, err, sizeof(err)),
        0);
    CHECK(oci_digest_equal(&from_files, &from_sums));
    /* The index learned the files: a forged digest there is believed by the next key. */
    snprintf(idx, sizeof(idx), "%s/stat-index", dir);
    snprintf(cmd, sizeof(cmd), "sed -i '/\\/src\\/a.txt$/s/^[0-9a-f]\\{64\\}/%064d/' '%s'", 0, idx);
    CHECK_INT(system(cmd), 0);
    CHECK_INT(engine_cache_key(&c, &plan, OCI_COMPRESS_ZSTD, 0, &from_files, err, sizeof(err)), 0);
    CHECK(!oci_digest_equal(&from_files, &from_sums));

    /* A file the build did not finish: no key. */
    for (size_t i = 0; i < plan.n_entries; i++)
        if (plan.entries[i].type == '0')
            sums[i].done = false;
    CHECK_INT(
        engine_cache_key_sums(&c, &plan, OCI_COMPRESS_ZSTD, 0, sums, &from_sums, err, sizeof(err)),
        OCISYNC_EUSAGE);
    CHECK(strstr(err, "a.txt") != NULL || strstr(err, "b.txt") != NULL ||
          strstr(err, "empty") != NULL);
    free(sums);
    oci_tar_plan_free(&plan);
    teardown();
}

TEST(entries_round_trip)
{
    struct engine_cache c;
    struct oci_layer_result r, got;
    struct engine_cache_at at;
    struct oci_digest key;
    char dir[128], blobs[128], entry[300];

    setup();
    snprintf(dir, sizeof(dir), "%s/cache", root);
    snprintf(blobs, sizeof(blobs), "%s/out", root);
    CHECK_INT(mkdir(blobs, 0755), 0);
    engine_cache_open(&c, dir);
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, "key", 3, &key), 0);
    memset(&r, 0, sizeof(r));
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, "tar", 3, &r.diff_id), 0);
    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, "alpha", 5, &r.digest), 0);
    r.size = 5;
    r.tar_size = 3;
    put_file("blob.bin", "alpha", 0644);
    snprintf(r.path, sizeof(r.path), "%s/blob.bin", root);
    CHECK(!engine_cache_get(&c, &key, blobs, &got, &at));
    CHECK(!engine_cache_has_layers(&c));
    engine_cache_put(&c, &key, &r);
    CHECK(engine_cache_has_layers(&c));
    memset(&got, 0, sizeof(got));
    CHECK(engine_cache_get(&c, &key, blobs, &got, &at));
    CHECK_STR(got.diff_id.str, r.diff_id.str);
    CHECK_STR(got.digest.str, r.digest.str);
    CHECK_INT(got.size, 5);
    CHECK_INT(got.tar_size, 3);
    CHECK_INT(access(got.path, R_OK), 0);
    CHECK_INT(at.n, 0);

    /* Where it went: newest first, no duplicates. */
    engine_cache_note(&c, &key, "reg.example.com/team/a");
    engine_cache_note(&c, &key, "reg.example.com/team/b");
    engine_cache_note(&c, &key, "reg.example.com/team/a");
    CHECK(engine_cache_get(&c, &key, blobs, &got, &at));
    CHECK_INT(at.n, 2);
    CHECK_STR(at.v[0], "reg.example.com/team/a");
    CHECK_STR(at.v[1], "reg.example.com/team/b");
    for (int i = 0; i < 20; i++) {
        char w[64];
        snprintf(w, sizeof(w), "reg/r%d", i);
        engine_cache_note(&c, &key, w);
    }
    CHECK(engine_cache_get(&c, &key, blobs, &got, &at));
    CHECK_INT(at.n, ENGINE_CACHE_MAX_AT);
    CHECK_STR(at.v[0], "reg/r19");

    /* A blob of the wrong size, a missing one, a damaged entry: misses. */
    {
        char blob[300];
        snprintf(blob, sizeof(blob), "%s/blobs/sha256/%s", dir, oci_digest_hex(&r.digest));
        CHECK_INT(truncate(blob, 2), 0);
        CHECK(!engine_cache_get(&c, &key, blobs, &got, NULL));
        CHECK_INT(unlink(blob), 0);
        CHECK(!engine_cache_get(&c, &key, blobs, &got, NULL));
    }
    /* (The blob was a link to blob.bin, cut short with it: put it back whole.) */
    CHECK_INT(unlink(r.path), 0);
    put_file("blob.bin", "alpha", 0644);
    engine_cache_put(&c, &key, &r);
    CHECK(engine_cache_get(&c, &key, blobs, &got, NULL));
    snprintf(entry, sizeof(entry), "%s/layers/%s", dir, oci_digest_hex(&key));
    {
        FILE *f = fopen(entry, "w");
        CHECK(f != NULL);
        if (f != NULL) {
            fputs("{\"diff_id\": 7}", f);
            fclose(f);
        }
    }
    CHECK(!engine_cache_get(&c, &key, blobs, &got, NULL));
    /* A cache that cannot be made is off, not an error. */
    engine_cache_open(&c, "/proc/ocisync-no-such-place");
    CHECK_STR(c.dir, "");
    CHECK(!engine_cache_get(&c, &key, blobs, &got, NULL));
    teardown();
}

TEST_MAIN(T(keys_follow_content), T(stat_index_spares_reads), T(key_from_build_sums),
          T(entries_round_trip))
