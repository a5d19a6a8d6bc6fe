/*
 * Docker archives: writing one from a layout (layers decompressed, checked
 * against their diff_ids, within the decompression cap, atomically) and
 * reading one back into a layout (each layer decompressed and checked
 * against its diff_id). Hostile input on purpose: a gzip layer of 300 MiB of
 * zeros (a decompression bomb, with a correct diff_id) both ways, a layer
 * changed after its config was written, and a config that lists fewer
 * diff_ids than there are layers.
 */
/* memmem and scandir's alphasort. */
#define _GNU_SOURCE

#include "oci/archive.h"
#include "oci/docker_archive.h"
#include "oci/imgconfig.h"
#include "oci/layout.h"
#include "oci/tar.h"
#include "ocisync.h"
#include "test.h"

#include <uv.h>
#include <zlib.h>
#include <zstd.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Over OCI_LAYER_UNPACK_MIN, and gzip -1 makes far less than a hundredth of it. */
#define BOMB_SIZE ((uint64_t)300 * 1024 * 1024)
#define ZERO_CHUNK (1024 * 1024)

enum kind { PLAIN, GZIP, ZSTD };

/* A layer as the tests build it: its blob, its digest and the digest of what it decompresses to. */
struct layer {
    struct test_buf blob;
    struct oci_digest digest, diff_id;
    const char *media_type;
};

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */

/* A private temp directory, made and removed as the archive code makes and removes its own. */
static void temp_dir(char *out, size_t len)
{
    char err[512];

    if (oci_archive_tempdir(out, len, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        exit(2);
    }
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[600];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f != NULL)
        CHECK(fwrite(data, 1, len, f) == len && fclose(f) == 0);
}

/* The names in dir, sorted and joined with spaces ("" when empty; "?" when dir is missing). */
static void list_dir(const char *dir, char *out, size_t len)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    size_t used = 0;

    out[0] = '\0';
    if (n < 0) {
        snprintf(out, len, "?");
        return;
    }
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0 && used < len)
            used +=
                (size_t)snprintf(out + used, len - used, "%s%s", used ? " " : "", names[i]->d_name);
        free(names[i]);
    }
    free(names);
}

/*
 * Where a refusal at the cap says it stopped: past the cap by at most one
 * output buffer (256 KiB), never further.
 */
static unsigned long long stopped_at(const char *err)
{
    const char *p = strstr(err, "stopped at ");
    unsigned long long n = p != NULL ? strtoull(p + strlen("stopped at "), NULL, 10) : 0;

    CHECK(n > OCI_LAYER_UNPACK_MIN && n <= OCI_LAYER_UNPACK_MIN + 256 * 1024);
    return n;
}

static struct oci_digest sha256_of(const void *data, size_t len)
{
    struct oci_digest d;

    CHECK_INT(oci_digest_buffer(OCI_DIGEST_SHA256, data, len, &d), 0);
    return d;
}

/* A small tar made by ocisync's own writer: one file, name, holding content. */
static void tar_of(const char *tmp, const char *name, const char *content, struct test_buf *out)
{
    struct oci_tar_source src;
    struct oci_tar_plan plan;
    struct oci_tar_stream s;
    char dir[600], buf[65536], err[512];
    size_t n = 0;

    snprintf(dir, sizeof(dir), "%s/tree-%s", tmp, name);
    CHECK_INT(mkdir(dir, 0755), 0);
    write_file(dir, name, content, strlen(content));
    src.src = dir;
    src.dest = "/";
    CHECK_INT(oci_tar_plan_build(&plan, &src, 1, NULL, err, sizeof(err)), 0);
    CHECK_INT(oci_tar_stream_init(&s, &plan), 0);
    while (oci_tar_stream_read(&s, buf, sizeof(buf), &n, err, sizeof(err)) == 0 && n > 0)
        test_buf_add(out, buf, n);
    oci_tar_stream_dispose(&s);
    oci_tar_plan_free(&plan);
    oci_archive_remove_dir(dir);
}

/* Deflates in (len bytes; NULL for zeros, fed ZERO_CHUNK at a time) as one gzip member. */
static void gzip_of(const void *in, uint64_t len, int level, struct test_buf *out)
{
    static const unsigned char zeros[ZERO_CHUNK];
    unsigned char buf[65536];
    z_stream z;
    uint64_t left = len;

    memset(&z, 0, sizeof(z));
    CHECK_INT(deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)(in != NULL ? in : zeros);
    do {
        int flush;
        if (z.avail_in == 0 && left > 0) {
            uInt n = in != NULL ? (uInt)left : left < ZERO_CHUNK ? (uInt)left : ZERO_CHUNK;
            if (in == NULL)
                z.next_in = (Bytef *)zeros;
            z.avail_in = n;
            left -= n;
        }
        flush = left == 0 ? Z_FINISH : Z_NO_FLUSH;
        do {
            z.next_out = buf;
            z.avail_out = sizeof(buf);
            CHECK(deflate(&z, flush) != Z_STREAM_ERROR);
            test_buf_add(out, buf, sizeof(buf) - z.avail_out);
        } while (z.avail_out == 0);
    } while (left > 0 || z.avail_in > 0);
    deflateEnd(&z);
}

static void make_layer(struct layer *l, enum kind kind, const struct test_buf *tar)
{
    memset(l, 0, sizeof(*l));
    l->diff_id = sha256_of(tar->data, tar->len);
    if (kind == GZIP) {
        gzip_of(tar->data, tar->len, 6, &l->blob);
        l->media_type = OCI_MT_OCI_LAYER_GZIP;
    } else if (kind == ZSTD) {
        size_t cap = ZSTD_compressBound(tar->len), n;
        unsigned char *buf = malloc(cap);
        n = ZSTD_compress(buf, cap, tar->data, tar->len, 3);
        CHECK(!ZSTD_isError(n));
        test_buf_add(&l->blob, buf, n);
        free(buf);
        l->media_type = OCI_MT_OCI_LAYER_ZSTD;
    } else {
        test_buf_add(&l->blob, tar->data, tar->len);
        l->media_type = OCI_MT_OCI_LAYER;
    }
    l->digest = sha256_of(l->blob.data, l->blob.len);
}

/*
 * The bomb: BOMB_SIZE zeros gzipped (about 1.4 MB) and its right diff_id,
 * made once and shared by the tests that need it.
 */
static const struct layer *bomb(void)
{
    static const unsigned char zeros[ZERO_CHUNK];
    static struct layer l;
    struct oci_hasher h;

    if (l.blob.len > 0)
        return &l;
    gzip_of(NULL, BOMB_SIZE, 1, &l.blob);
    CHECK_INT(oci_hasher_init(&h, OCI_DIGEST_SHA256), 0);
    for (uint64_t done = 0; done < BOMB_SIZE; done += ZERO_CHUNK)
        oci_hasher_update(&h, zeros, ZERO_CHUNK);
    CHECK_INT(oci_hasher_final(&h, &l.diff_id), 0);
    l.digest = sha256_of(l.blob.data, l.blob.len);
    l.media_type = OCI_MT_OCI_LAYER_GZIP;
    /* Small enough that only the 256 MiB floor of the cap applies. */
    CHECK(l.blob.len * OCI_LAYER_UNPACK_RATIO < OCI_LAYER_UNPACK_MIN);
    return &l;
}

/* {"architecture":...,"rootfs":{"type":"layers","diff_ids":[...]}} for the n diff_ids. */
static void config_of(const struct oci_digest *diff_ids, size_t n, char *out, size_t len)
{
    size_t used = (size_t)snprintf(out, len,
                                   "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{"
                                   "\"type\":\"layers\",\"diff_ids\":[");
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(out + used, len - used, "%s\"%s\"", i ? "," : "", diff_ids[i].str);
    snprintf(out + used, len - used, "]}}");
}

/* An OCI layout in dir holding the image "image" made of the n layers. */
static void make_layout(const char *dir, const struct layer *const *layers, size_t n)
{
    struct oci_digest diff_ids[8], cd;
    struct oci_descriptor desc;
    struct oci_layout l;
    char config[2048], manifest[4096], err[512];
    size_t used;

    for (size_t i = 0; i < n; i++)
        diff_ids[i] = layers[i]->diff_id;
    config_of(diff_ids, n, config, sizeof(config));
    cd = sha256_of(config, strlen(config));
    used = (size_t)snprintf(manifest, sizeof(manifest),
                            "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_MANIFEST
                            "\",\"config\":{\"mediaType\":\"" OCI_MT_OCI_CONFIG
                            "\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[",
                            cd.str, strlen(config));
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(manifest + used, sizeof(manifest) - used,
                                 "%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}",
                                 i ? "," : "", layers[i]->media_type, layers[i]->digest.str,
                                 layers[i]->blob.len);
    snprintf(manifest + used, sizeof(manifest) - used, "]}");

    CHECK_INT(oci_layout_open(&l, dir, true, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_put_blob(&l, &cd, config, strlen(config), err, sizeof(err)), 0);
    for (size_t i = 0; i < n; i++)
        CHECK_INT(oci_layout_put_blob(&l, &layers[i]->digest, layers[i]->blob.data,
                                      layers[i]->blob.len, err, sizeof(err)),
                  0);
    memset(&desc, 0, sizeof(desc));
    snprintf(desc.media_type, sizeof(desc.media_type), "%s", OCI_MT_OCI_MANIFEST);
    desc.digest = sha256_of(manifest, strlen(manifest));
    desc.size = (int64_t)strlen(manifest);
    CHECK_INT(oci_layout_put_blob(&l, &desc.digest, manifest, strlen(manifest), err, sizeof(err)),
              0);
    CHECK_INT(oci_layout_add(&l, &desc, "image", err, sizeof(err)), 0);
    CHECK_INT(oci_layout_commit(&l, err, sizeof(err)), 0);
    oci_layout_close(&l);
}

/*
 * Packs a docker archive into file as `docker save` lays one out: the n
 * layers as layer<i>.tar (their bytes as given), a config listing diff_ids,
 * and manifest.json.
 */
static void make_docker_archive(const char *tmp, const char *file,
                                const struct layer *const *layers, size_t n,
                                const struct oci_digest *diff_ids, size_t n_ids)
{
    char dir[600], config[2048], mj[2048], err[512];
    size_t used;

    snprintf(dir, sizeof(dir), "%s/pack", tmp);
    CHECK_INT(mkdir(dir, 0755), 0);
    config_of(diff_ids, n_ids, config, sizeof(config));
    write_file(dir, "config.json", config, strlen(config));
    used = (size_t)snprintf(mj, sizeof(mj),
                            "[{\"Config\":\"config.json\",\"RepoTags\":[\"x/y:1\"],\"Layers\":[");
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "layer%zu.tar", i);
        write_file(dir, name, layers[i]->blob.data, layers[i]->blob.len);
        used += (size_t)snprintf(mj + used, sizeof(mj) - used, "%s\"%s\"", i ? "," : "", name);
    }
    snprintf(mj + used, sizeof(mj) - used, "]}]");
    write_file(dir, "manifest.json", mj, strlen(mj));
    CHECK_INT(oci_archive_pack(dir, file, err, sizeof(err)), 0);
    oci_archive_remove_dir(dir);
}

/* What copy does with docker-archive:FILE as a source: unpack it, then make a layout of it. */
static int read_docker_archive(const char *tmp, const char *file, char *err, size_t errlen)
{
    char dir[600], lay[700];
    int rc;

    snprintf(dir, sizeof(dir), "%s/unpacked", tmp);
    snprintf(lay, sizeof(lay), "%s/.ocisync-layout", dir);
    oci_archive_remove_dir(dir);
    CHECK_INT(mkdir(dir, 0700), 0);
    rc = oci_archive_unpack(file, dir, true, err, errlen);
    CHECK_INT(rc, 0);
    if (rc == 0)
        rc = oci_docker_archive_to_layout(dir, "", file, lay, "image", err, errlen);
    return rc;
}

/* Three small layers, one of each kind, with other contents. */
static void three_layers(const char *tmp, struct layer out[3])
{
    static const char *const names[] = {"plain", "gzip", "zstd"};

    for (int k = PLAIN; k <= ZSTD; k++) {
        struct test_buf tar = {0};
        char content[64];
        snprintf(content, sizeof(content), "the %s layer\n", names[k]);
        tar_of(tmp, names[k], content, &tar);
        make_layer(&out[k], (enum kind)k, &tar);
        test_buf_free(&tar);
    }
}

static void free_layers(struct layer *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        test_buf_free(&l[i].blob);
}

/* ---------------------------------------------------------------------------------------------
 * Tests
 */

/* A layout of plain, gzip and zstd layers becomes a docker archive, which reads back. */
TEST(round_trip)
{
    struct layer layers[3];
    const struct layer *lp[3] = {&layers[0], &layers[1], &layers[2]};
    struct oci_descriptor top;
    struct oci_layout l;
    char tmp[256], dir[320], file[320], lay[320], err[1024], *manifest = NULL;
    size_t len = 0;

    temp_dir(tmp, sizeof(tmp));
    three_layers(tmp, layers);
    snprintf(dir, sizeof(dir), "%s/layout", tmp);
    snprintf(file, sizeof(file), "%s/image.tar", tmp);
    make_layout(dir, lp, 3);
    CHECK_INT(oci_docker_archive_write(dir, "image", (const char *[]){"x/y:1", "", "x/z:2"}, 3,
                                       NULL, file, NULL, err, sizeof(err)),
              0);
    CHECK_INT(read_docker_archive(tmp, file, err, sizeof(err)), 0);

    /* The layers come back as the plain tars docker load wants, with the same diff_ids. */
    snprintf(lay, sizeof(lay), "%s/unpacked/.ocisync-layout", tmp);
    CHECK_INT(oci_layout_open(&l, lay, false, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_resolve(&l, "image", &top, err, sizeof(err)), 0);
    CHECK_INT(oci_layout_blob_read(&l, &top.digest, 1 << 20, &manifest, &len, err, sizeof(err)), 0);
    for (int k = 0; k < 3; k++) {
        char want[200];
        snprintf(want, sizeof(want), "{\"mediaType\":\"" OCI_MT_OCI_LAYER "\",\"digest\":\"%s\"",
                 layers[k].diff_id.str);
        CHECK(manifest != NULL && strstr(manifest, want) != NULL);
    }
    free(manifest);
    oci_layout_close(&l);

    /* And docker's own layout of an archive reads as well: compressed layers stay compressed. */
    {
        struct oci_digest ids[3] = {layers[0].diff_id, layers[1].diff_id, layers[2].diff_id};
        make_docker_archive(tmp, file, lp, 3, ids, 3);
        CHECK_INT(read_docker_archive(tmp, file, err, sizeof(err)), 0);
        CHECK_INT(oci_layout_open(&l, lay, false, err, sizeof(err)), 0);
        CHECK_INT(oci_layout_resolve(&l, "image", &top, err, sizeof(err)), 0);
        CHECK_INT(oci_layout_blob_read(&l, &top.digest, 1 << 20, &manifest, &len, err, sizeof(err)),
                  0);
        CHECK(manifest != NULL && strstr(manifest, OCI_MT_OCI_LAYER_GZIP) != NULL &&
              strstr(manifest, OCI_MT_OCI_LAYER_ZSTD) != NULL);
        for (int k = 0; k < 3; k++)
            CHECK(oci_layout_blob_exists(&l, &layers[k].digest, (int64_t)layers[k].blob.len));
        free(manifest);
        oci_layout_close(&l);
    }
    free_layers(layers, 3);
    oci_archive_remove_dir(tmp);
}

/*
 * Writing a docker archive of a layout whose gzip layer is 300 MiB of zeros:
 * refused at the cap, naming the layer, its compressed size and where it
 * stopped; the old file stays, and no temp file or directory is left.
 */
TEST(write_refuses_bomb)
{
    const struct layer *b = bomb();
    char tmp[256], dir[320], out[320], file[320], work[320], err[1024], want[1024], names[512];
    const char *old_tmpdir = getenv("TMPDIR");
    char *saved = old_tmpdir != NULL ? strdup(old_tmpdir) : NULL;
    struct stat st;

    temp_dir(tmp, sizeof(tmp));
    snprintf(dir, sizeof(dir), "%s/layout", tmp);
    snprintf(out, sizeof(out), "%s/out", tmp);
    snprintf(file, sizeof(file), "%s/image.tar", out);
    snprintf(work, sizeof(work), "%s/work", tmp);
    make_layout(dir, &b, 1);
    CHECK_INT(mkdir(work, 0700), 0);
    CHECK_INT(mkdir(out, 0755), 0);
    write_file(out, "image.tar", "old", 3);
    /* The unpacked layers go to a temp directory under $TMPDIR: this test's, to look at after. */
    setenv("TMPDIR", work, 1);
    CHECK_INT(oci_docker_archive_write(dir, "image", (const char *[]){"x/bomb:1"}, 1, NULL, file,
                                       NULL, err, sizeof(err)),
              OCISYNC_ETOOBIG);
    if (saved != NULL)
        setenv("TMPDIR", saved, 1);
    else
        unsetenv("TMPDIR");
    free(saved);
    snprintf(
        want, sizeof(want),
        "layer %s (%zu bytes compressed) decompresses to more than %llu bytes (stopped at %llu)"
        ": over both 256 MiB and 100 times its compressed size, refused as a decompression "
        "bomb",
        b->digest.str, b->blob.len, (unsigned long long)OCI_LAYER_UNPACK_MIN, stopped_at(err));
    CHECK_STR(err, want);

    /* Nothing left behind: the old file as it was, no FILE.tmp-*, no temp directory. */
    list_dir(out, names, sizeof(names));
    CHECK_STR(names, "image.tar");
    CHECK(stat(file, &st) == 0 && st.st_size == 3);
    list_dir(work, names, sizeof(names));
    CHECK_STR(names, "");
    oci_archive_remove_dir(tmp);
}

/* The diff_id is still checked, also below the cap, and a mismatch leaves nothing either. */
TEST(write_checks_diff_id)
{
    struct layer layers[3];
    const struct layer *lp[1] = {&layers[1]};
    char tmp[256], dir[320], file[320], out[320], err[1024], want[1024], names[256];
    struct oci_digest right;

    temp_dir(tmp, sizeof(tmp));
    three_layers(tmp, layers);
    /* The gzip layer's config says it decompresses to the plain layer's tar. */
    right = layers[1].diff_id;
    layers[1].diff_id = layers[0].diff_id;
    snprintf(dir, sizeof(dir), "%s/layout", tmp);
    snprintf(out, sizeof(out), "%s/out", tmp);
    snprintf(file, sizeof(file), "%s/image.tar", out);
    make_layout(dir, lp, 1);
    CHECK_INT(mkdir(out, 0755), 0);
    CHECK_INT(oci_docker_archive_write(dir, "image", NULL, 0, NULL, file, NULL, err, sizeof(err)),
              OCISYNC_EDIGESTMISMATCH);
    snprintf(want, sizeof(want), "layer %s decompresses to %s, but the config's diff_id is %s",
             layers[1].digest.str, right.str, layers[0].diff_id.str);
    CHECK_STR(err, want);
    list_dir(out, names, sizeof(names));
    CHECK_STR(names, "");
    free_layers(layers, 3);
    oci_archive_remove_dir(tmp);
}

/* A docker archive whose layer was changed after its config was written is refused. */
TEST(read_refuses_changed_layer)
{
    struct layer layers[3];
    const struct layer *lp[3] = {&layers[0], &layers[1], &layers[2]};
    struct oci_digest ids[3], got;
    char tmp[256], file[320], err[1024], want[1024];

    temp_dir(tmp, sizeof(tmp));
    three_layers(tmp, layers);
    snprintf(file, sizeof(file), "%s/image.tar", tmp);
    for (int k = 0; k < 3; k++)
        ids[k] = layers[k].diff_id;

    /* A plain layer: one byte of the file's content changed (still a valid tar). */
    {
        unsigned char *p = memmem(layers[0].blob.data, layers[0].blob.len, "the plain", 9);
        CHECK(p != NULL);
        if (p != NULL)
            p[4] = 'P';
        got = sha256_of(layers[0].blob.data, layers[0].blob.len);
    }
    make_docker_archive(tmp, file, lp, 3, ids, 3);
    CHECK_INT(read_docker_archive(tmp, file, err, sizeof(err)), OCISYNC_EDIGESTMISMATCH);
    snprintf(want, sizeof(want),
             "%s: layer layer0.tar decompresses to %s, but the config's diff_id is %s", file,
             got.str, ids[0].str);
    CHECK_STR(err, want);

    /* A gzip layer replaced by another gzip of other content. */
    {
        struct test_buf tar = {0};
        tar_of(tmp, "evil", "not what the config says\n", &tar);
        test_buf_free(&layers[0].blob);
        make_layer(&layers[0], PLAIN, &tar);
        ids[0] = layers[0].diff_id;
        test_buf_free(&layers[1].blob);
        make_layer(&layers[1], GZIP, &tar);
        test_buf_free(&tar);
    }
    make_docker_archive(tmp, file, lp, 3, ids, 3);
    CHECK_INT(read_docker_archive(tmp, file, err, sizeof(err)), OCISYNC_EDIGESTMISMATCH);
    snprintf(want, sizeof(want),
             "%s: layer layer1.tar decompresses to %s, but the config's diff_id is %s", file,
             layers[1].diff_id.str, ids[1].str);
    CHECK_STR(err, want);

    /* As many diff_ids as layers, no fewer. */
    ids[1] = layers[1].diff_id;
    make_docker_archive(tmp, file, lp, 3, ids, 2);
    CHECK_INT(read_docker_archive(tmp, file, err, sizeof(err)), OCISYNC_EMANIFEST);
    snprintf(want, sizeof(want), "%s: the image config lists 2 diff_ids for 3 layers", file);
    CHECK_STR(err, want);
    /* With all three right, it reads. */
    make_docker_archive(tmp, file, lp, 3, ids, 3);
    CHECK_INT(read_docker_archive(tmp, file, err, sizeof(err)), 0);
    free_layers(layers, 3);
    oci_archive_remove_dir(tmp);
}

/* A docker archive holding the bomb, with its right diff_id, is refused at the cap too. */
TEST(read_refuses_bomb)
{
    const struct layer *b = bomb();
    char tmp[256], file[320], err[1024], want[1024];

    temp_dir(tmp, sizeof(tmp));
    snprintf(file, sizeof(file), "%s/image.tar", tmp);
    make_docker_archive(tmp, file, &b, 1, &b->diff_id, 1);
    CHECK_INT(read_docker_archive(tmp, file, err, sizeof(err)), OCISYNC_ETOOBIG);
    snprintf(want, sizeof(want),
             "%s: layer layer0.tar (%zu bytes compressed) decompresses to more than %llu bytes "
             "(stopped at %llu): over both 256 MiB and 100 times its compressed size, refused as "
             "a decompression bomb",
             file, b->blob.len, (unsigned long long)OCI_LAYER_UNPACK_MIN, stopped_at(err));
    CHECK_STR(err, want);
    oci_archive_remove_dir(tmp);
}

TEST_MAIN(T(round_trip), T(write_refuses_bomb), T(write_checks_diff_id),
          T(read_refuses_changed_layer), T(read_refuses_bomb))
