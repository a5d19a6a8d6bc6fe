/*
 * A blob's transfer (src/engine/blob.c) through its states, driven by
 * ocisync_copy against an in-process registry on a thread of its own
 * (tests/unit/test_http_srv.h): the registry serves one image in
 * "src/app" and takes uploads into "dst/app", and a script makes it fail
 * the way the engine must recover from:
 *   - a blob GET cut after some bytes: the source half goes on with Range;
 *   - a GET that ignores the Range (200 with everything): the blob starts over;
 *   - an upload PUT answered 500 after its streamed body: the blob starts
 *     over with a new upload (the body could not be resent);
 *   - a PATCH answered 500: the sink half resumes from the registry's offset;
 *   - a blob already there (HEAD 200): skipped, nothing uploaded;
 *   - a source that answers 404: the image fails, nothing is committed.
 * The requests the registry saw say which transitions were taken.
 */
#include "test_http_srv.h"

#include "proto/internal.h"

#include <uv.h>

#define LAYER_SIZE (300 * 1024)
#define MAX_BLOBS 8

/* ------------------------------------------------------------------------------------------ */
/* The registry */

struct blob {
    char digest[80];
    char *data; /* owned */
    size_t len;
};

static struct {
    /* What the source holds. */
    char *layer;
    char config[256];
    char manifest[1024];
    char config_digest[80], layer_digest[80], manifest_digest[80];
    /* What the destination received. */
    struct blob stored[MAX_BLOBS];
    int n_stored;
    char *pushed_manifest; /* owned */
    int uploads;           /* POSTs */
    /* The script. */
    size_t cut_get_after; /* the first layer GET sends this many bytes, then closes */
    bool ignore_range;    /* a ranged layer GET gets 200 with everything */
    bool fail_first_put;  /* the first blob PUT with a body answers 500 */
    bool fail_first_patch;
    bool layer_present; /* HEAD of the layer at the destination answers 200 */
    bool source_404;    /* the layer GET answers 404 */
    int layer_gets, puts, patches;
    /* Upload sessions: the bytes each has received. */
    char *upload_data[16];
    size_t upload_len[16];
} R;

static struct srv server;
static uv_loop_t server_loop;
static uv_async_t server_stop;

static void reset_registry(void)
{
    free(R.layer);
    for (int i = 0; i < R.n_stored; i++)
        free(R.stored[i].data);
    for (int i = 0; i < 16; i++)
        free(R.upload_data[i]);
    free(R.pushed_manifest);
    memset(&R, 0, sizeof(R));
    R.layer = malloc(LAYER_SIZE);
    if (R.layer == NULL)
        abort();
    fill_pattern(R.layer, LAYER_SIZE, 7);
    snprintf(R.config, sizeof(R.config),
             "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
             "\"diff_ids\":[]}}");
    CHECK_INT(
        proto__digest_of("sha256:", R.layer, LAYER_SIZE, R.layer_digest, sizeof(R.layer_digest)),
        0);
    CHECK_INT(proto__digest_of("sha256:", R.config, strlen(R.config), R.config_digest,
                               sizeof(R.config_digest)),
              0);
    snprintf(R.manifest, sizeof(R.manifest),
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
             "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
             "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
             "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%d}]}",
             R.config_digest, strlen(R.config), R.layer_digest, LAYER_SIZE);
    CHECK_INT(proto__digest_of("sha256:", R.manifest, strlen(R.manifest), R.manifest_digest,
                               sizeof(R.manifest_digest)),
              0);
}

static const struct blob *stored(const char *digest)
{
    for (int i = 0; i < R.n_stored; i++)
        if (strcmp(R.stored[i].digest, digest) == 0)
            return &R.stored[i];
    return NULL;
}

static void send_empty(struct srv_conn *c, int status, const char *reason)
{
    srv_sendf(c, false, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\n\r\n", status, reason);
}

static void serve_blob(struct srv_conn *c, struct srv_req *q, const char *data, size_t len,
                       bool head)
{
    const char *range = strstr(q->head, "\r\nRange: bytes=");
    size_t from = range != NULL ? (size_t)strtoull(range + 15, NULL, 10) : 0;
    bool partial = range != NULL && !R.ignore_range;
    if (head) {
        srv_sendf(c, false, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len);
        return;
    }
    if (!partial)
        from = 0;
    if (partial)
        srv_sendf(c, false,
                  "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %zu-%zu/%zu\r\n"
                  "Content-Length: %zu\r\n\r\n",
                  from, len - 1, len, len - from);
    else
        srv_sendf(c, false, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len);
    if (data == R.layer && R.layer_gets == 1 && R.cut_get_after > 0) {
        /* The first layer GET: part of the body, then the connection goes. */
        srv_send_ex(c, data, R.cut_get_after, true, true);
        return;
    }
    srv_send_ex(c, data + from, len - from, true, false);
}

static int upload_id(const char *url)
{
    const char *p = strstr(url, "/uploads/u");
    return p != NULL ? atoi(p + 10) : -1;
}

static void take_upload(struct srv_req *q, int id)
{
    char *n = realloc(R.upload_data[id], R.upload_len[id] + q->body_len + 1);
    if (n == NULL)
        abort();
    if (q->body_len > 0)
        memcpy(n + R.upload_len[id], q->body, q->body_len);
    R.upload_data[id] = n;
    R.upload_len[id] += q->body_len;
}

static void h_registry(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    bool head = strcmp(q->method, "HEAD") == 0;
    char dg[80], got[80];
    int id;
    (void)s;
    if (strcmp(q->url, "/v2/") == 0) {
        send_empty(c, 200, "OK");
        return;
    }
    if (strncmp(q->url, "/v2/src/app/manifests/", 22) == 0) {
        srv_sendf(c, false,
                  "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                  "Docker-Content-Digest: %s\r\nContent-Length: %zu\r\n\r\n%s",
                  R.manifest_digest, strlen(R.manifest), head ? "" : R.manifest);
        return;
    }
    if (strncmp(q->url, "/v2/src/app/blobs/", 18) == 0) {
        if (strcmp(q->url + 18, R.layer_digest) == 0) {
            R.layer_gets += !head;
            if (R.source_404) {
                send_empty(c, 404, "Not Found");
                return;
            }
            serve_blob(c, q, R.layer, LAYER_SIZE, head);
        } else {
            serve_blob(c, q, R.config, strlen(R.config), head);
        }
        return;
    }
    if (strncmp(q->url, "/v2/dst/app/manifests/", 22) == 0) {
        if (strcmp(q->method, "PUT") == 0) {
            free(R.pushed_manifest);
            R.pushed_manifest = strndup(q->body, q->body_len);
            send_empty(c, 201, "Created");
        } else {
            send_empty(c, 404, "Not Found");
        }
        return;
    }
    if (strncmp(q->url, "/v2/dst/app/blobs/sha256:", 25) == 0) {
        bool there = stored(q->url + 18) != NULL ||
                     (R.layer_present && strcmp(q->url + 18, R.layer_digest) == 0);
        send_empty(c, there ? 200 : 404, there ? "OK" : "Not Found");
        return;
    }
    if (strcmp(q->method, "POST") == 0) {
        id = R.uploads++;
        srv_sendf(c, false,
                  "HTTP/1.1 202 Accepted\r\nLocation: /v2/dst/app/blobs/uploads/u%d\r\n"
                  "Range: 0-0\r\nContent-Length: 0\r\n\r\n",
                  id);
        return;
    }
    id = upload_id(q->url);
    if (id < 0 || id >= 16) {
        send_empty(c, 400, "Bad Request");
        return;
    }
    if (strcmp(q->method, "PATCH") == 0) {
        if (R.patches++ == 1 && R.fail_first_patch) {
            send_empty(c, 500, "Internal Server Error");
            return;
        }
        take_upload(q, id);
        srv_sendf(c, false,
                  "HTTP/1.1 202 Accepted\r\nLocation: /v2/dst/app/blobs/uploads/u%d\r\n"
                  "Range: 0-%zu\r\nContent-Length: 0\r\n\r\n",
                  id, R.upload_len[id] - 1);
        return;
    }
    if (strcmp(q->method, "GET") == 0) {
        /* Upload status. */
        srv_sendf(c, false,
                  "HTTP/1.1 204 No Content\r\nLocation: /v2/dst/app/blobs/uploads/u%d\r\n"
                  "Range: 0-%zu\r\nContent-Length: 0\r\n\r\n",
                  id, R.upload_len[id] ? R.upload_len[id] - 1 : 0);
        return;
    }
    if (strcmp(q->method, "PUT") == 0) {
        const char *d = strstr(q->url, "digest=");
        R.puts++;
        if (R.fail_first_put && R.puts == 1 && q->body_len > 0) {
            send_empty(c, 500, "Internal Server Error");
            return;
        }
        take_upload(q, id);
        snprintf(dg, sizeof(dg), "%s", d != NULL ? d + 7 : "");
        if (proto__digest_of("sha256:", R.upload_data[id] ? R.upload_data[id] : "",
                             R.upload_len[id], got, sizeof(got)) != 0 ||
            strcmp(got, dg) != 0 || R.n_stored == MAX_BLOBS) {
            send_empty(c, 400, "Bad Request");
            return;
        }
        snprintf(R.stored[R.n_stored].digest, sizeof(R.stored[0].digest), "%s", dg);
        R.stored[R.n_stored].data = R.upload_data[id];
        R.stored[R.n_stored].len = R.upload_len[id];
        R.n_stored++;
        R.upload_data[id] = NULL;
        srv_sendf(c, false,
                  "HTTP/1.1 201 Created\r\nDocker-Content-Digest: %s\r\nContent-Length: 0\r\n\r\n",
                  dg);
        return;
    }
    send_empty(c, 400, "Bad Request");
}

static void on_server_stop(uv_async_t *a)
{
    srv_stop(&server);
    uv_close((uv_handle_t *)a, NULL);
}

static void server_thread(void *arg)
{
    (void)arg;
    uv_run(&server_loop, UV_RUN_DEFAULT);
}

/* Copies src/app:v1 to dst/app:v1 through the scripted registry; returns copy's result. */
static int run_copy(struct ocisync_copy_result *res, uint64_t chunk)
{
    uv_thread_t t;
    char src[128], dst[128];
    struct ocisync_copy_opts o;
    int err;
    CHECK_INT(uv_loop_init(&server_loop), 0);
    CHECK_INT(srv_start(&server, &server_loop, h_registry, NULL), 0);
    uv_async_init(&server_loop, &server_stop, on_server_stop);
    CHECK_INT(uv_thread_create(&t, server_thread, NULL), 0);
    snprintf(src, sizeof(src), "127.0.0.1:%d/src/app:v1", server.port);
    /* Another name for the same server: two registries to the engine, so blobs are relayed. */
    snprintf(dst, sizeof(dst), "localhost:%d/dst/app:v1", server.port);
    memset(&o, 0, sizeof(o));
    o.retry_delay_ms = 1;
    o.chunk_size = chunk;
    o.debug = getenv("OCISYNC_TEST_DEBUG") != NULL;
    err = ocisync_copy(src, dst, &o, res);
    uv_async_send(&server_stop);
    uv_thread_join(&t);
    uv_run(&server_loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&server_loop), 0);
    return err;
}

/* The destination holds the image whole: both blobs byte for byte, and the manifest. */
static void check_arrived(void)
{
    const struct blob *l = stored(R.layer_digest), *c = stored(R.config_digest);
    CHECK(l != NULL && l->len == LAYER_SIZE && memcmp(l->data, R.layer, LAYER_SIZE) == 0);
    CHECK(c != NULL && c->len == strlen(R.config));
    CHECK(R.pushed_manifest != NULL && strcmp(R.pushed_manifest, R.manifest) == 0);
}

static int count(const char *method, const char *needle)
{
    int n = 0;
    for (int i = 0; i < server.n_reqs; i++)
        n += strcmp(server.reqs[i].method, method) == 0 &&
             (needle == NULL || contains(server.reqs[i].head, needle));
    return n;
}

static void done_test(void)
{
    srv_free(&server);
}

/* ------------------------------------------------------------------------------------------ */
/* Tests */

TEST(plain_copy)
{
    struct ocisync_copy_result res;
    reset_registry();
    CHECK_INT(run_copy(&res, 0), 0);
    check_arrived();
    CHECK_INT(res.blobs_copied, 2);
    CHECK_INT(R.uploads, 2);
    CHECK_INT(R.layer_gets, 1);
    done_test();
}

/* The source half: a GET cut after 100 KiB goes on with Range from there. */
TEST(get_cut_resumes_with_range)
{
    struct ocisync_copy_result res;
    reset_registry();
    R.cut_get_after = 100 * 1024;
    CHECK_INT(run_copy(&res, 0), 0);
    check_arrived();
    CHECK_INT(R.layer_gets, 2);
    CHECK_INT(count("GET", "\r\nRange: bytes="), 1);
    CHECK_INT(R.uploads, 2); /* the upload waited: no new one */
    done_test();
}

/* A source that answers a Range with everything: bytes are never appended blindly; start over. */
TEST(range_ignored_starts_over)
{
    struct ocisync_copy_result res;
    reset_registry();
    R.cut_get_after = 100 * 1024;
    R.ignore_range = true;
    CHECK_INT(run_copy(&res, 0), 0);
    check_arrived();
    CHECK_INT(R.layer_gets, 3); /* cut, refused 200, then a whole new transfer */
    CHECK_INT(R.uploads, 3);    /* the config's, and two for the layer */
    done_test();
}

/* The sink half: a streamed PUT answered 500 cannot be resent: a new upload, a new GET. */
TEST(put_failure_restarts)
{
    struct ocisync_copy_result res;
    reset_registry();
    R.fail_first_put = true;
    CHECK_INT(run_copy(&res, 0), 0);
    check_arrived();
    CHECK_INT(R.uploads, 3);
    done_test();
}

/* Chunked: a PATCH answered 500 resumes from the offset the registry reports. */
TEST(patch_failure_resumes)
{
    struct ocisync_copy_result res;
    reset_registry();
    R.fail_first_patch = true;
    CHECK_INT(run_copy(&res, 64 * 1024), 0);
    check_arrived();
    CHECK_INT(R.uploads, 2); /* the same upload went on */
    CHECK(count("GET", NULL) >= 1);
    done_test();
}

TEST(present_blob_skipped)
{
    struct ocisync_copy_result res;
    reset_registry();
    R.layer_present = true;
    CHECK_INT(run_copy(&res, 0), 0);
    CHECK_INT(res.blobs_skipped, 1);
    CHECK_INT(res.blobs_copied, 1);
    CHECK_INT(R.layer_gets, 0);
    CHECK_INT(R.uploads, 1);
    done_test();
}

/* A failure of the source fails the image: no blob is committed for it, no manifest pushed. */
TEST(source_failure_commits_nothing)
{
    struct ocisync_copy_result res;
    reset_registry();
    R.source_404 = true;
    CHECK(run_copy(&res, 0) != 0);
    CHECK(contains(res.error, "HTTP 404"));
    CHECK(stored(R.layer_digest) == NULL);
    CHECK(R.pushed_manifest == NULL);
    done_test();
}

TEST_MAIN(T(plain_copy), T(get_cut_resumes_with_range), T(range_ignored_starts_over),
          T(put_failure_restarts), T(patch_failure_resumes), T(present_blob_skipped),
          T(source_failure_commits_nothing))
