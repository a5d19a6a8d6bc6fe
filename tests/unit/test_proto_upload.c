/*
 * The upload protocol (src/proto/upload.c) through its states against the
 * in-process server (tests/unit/test_http_srv.h), which answers as a
 * registry's upload endpoints would: one PUT, PATCH chunks (and
 * OCI-Chunk-Min-Length), a streamed PATCH, a mount, a PATCH cut and resumed
 * from the offset the registry reports, an offset that cannot be used, a
 * commit stored under another digest, and an abort.
 */
#include "test_http_srv.h"

#include "proto/internal.h"
#include "proto/upload.h"

/* ------------------------------------------------------------------------------------------ */
/* A source from memory, and the owner's callbacks */

struct owner {
    struct env *e;
    struct proto_upload u;
    const char *data;
    size_t len;
    size_t pos;        /* the next byte the source gives */
    size_t limit;      /* it gives nothing past this (a source still filling) */
    bool eof_at_limit; /* a streamed body ends there */
    int done, err;
    int opened, cuts, rewinds;
    uint64_t rewound_to;
    bool continue_on_cut;
};

static int src_peek(void *arg, const char **data, size_t *len)
{
    struct owner *o = arg;
    *len = 0;
    if (o->pos >= o->limit)
        return o->eof_at_limit ? PROTO_BODY_EOF : 0;
    *data = o->data + o->pos;
    *len = o->limit - o->pos;
    return 0;
}

static void src_consume(void *arg, size_t n)
{
    struct owner *o = arg;
    o->pos += n;
}

static void o_opened(struct proto_upload *u)
{
    struct owner *o = u->data;
    o->opened++;
}

static bool o_cut(struct proto_upload *u)
{
    struct owner *o = u->data;
    o->cuts++;
    if (!o->continue_on_cut)
        return false;
    proto_upload_continue(u);
    return true;
}

static int o_rewind(struct proto_upload *u, uint64_t have)
{
    struct owner *o = u->data;
    o->rewinds++;
    o->rewound_to = have;
    o->pos = (size_t)have;
    return 0;
}

static void o_done(struct proto_upload *u, int err)
{
    struct owner *o = u->data;
    o->done++;
    o->err = err;
    if (++o->e->n_done == o->e->expect_done)
        env_finish(o->e);
}

static const struct proto_upload_cbs cbs = {
    .opened = o_opened, .cut = o_cut, .rewind = o_rewind, .done = o_done};

static char digest_of[160];

static const char *digest(const char *data, size_t len)
{
    CHECK_INT(proto__digest_of("sha256:", data, len, digest_of, sizeof(digest_of)), 0);
    return digest_of;
}

/* An upload of data to repository "app" on the env's server. */
static void owner_init(struct owner *o, struct env *e, struct proto_registry *reg, const char *data,
                       int64_t size, bool digest_known)
{
    memset(o, 0, sizeof(*o));
    o->e = e;
    o->data = data;
    o->len = strlen(data);
    o->limit = o->len;
    proto_upload_init(&o->u, reg, "app", size);
    if (digest_known)
        snprintf(o->u.digest, sizeof(o->u.digest), "%s", digest(data, strlen(data)));
    o->u.source.peek = src_peek;
    o->u.source.consume = src_consume;
    o->u.source.arg = o;
    o->u.cbs = &cbs;
    o->u.data = o;
}

static void registry_for(struct env *e, struct proto_registry *reg)
{
    char hostport[64];
    snprintf(hostport, sizeof(hostport), "127.0.0.1:%d", e->srv.port);
    CHECK_INT(proto_registry_init(reg, &e->cl, hostport, "http", hostport), 0);
    reg->retry.base_ms = 5;
}

/* ------------------------------------------------------------------------------------------ */
/* The registry's upload endpoints, scripted */

static struct {
    int patch_status_at;      /* the PATCH (1-based) answered 500; 0: none */
    int patch_cut_at;         /* the PATCH (1-based) whose connection is closed unanswered */
    const char *min_len;      /* OCI-Chunk-Min-Length to send, or NULL */
    const char *status_range; /* Range of the status GET ("0-3"), or NULL for 404 */
    const char *stored_as;    /* the Docker-Content-Digest of the commit, or NULL: the asked one */
    bool mount_ok;
    int patches;
    size_t received; /* bytes the PATCHes (and a PUT) brought */
} reg_script;

static const char *query_value(const char *url, const char *name, char *out, size_t len)
{
    const char *p = strstr(url, name);
    if (p == NULL)
        return NULL;
    p += strlen(name);
    snprintf(out, len, "%.*s", (int)strcspn(p, "&"), p);
    return out;
}

static void h_registry(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    char dg[160];
    (void)s;
    if (strcmp(q->method, "POST") == 0) {
        if (strstr(q->url, "mount=") != NULL && reg_script.mount_ok) {
            srv_send(c, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
            return;
        }
        srv_sendf(c, false,
                  "HTTP/1.1 202 Accepted\r\nLocation: /v2/app/blobs/uploads/u1?_state=0\r\n"
                  "%s%s%sRange: 0-0\r\nContent-Length: 0\r\n\r\n",
                  reg_script.min_len ? "OCI-Chunk-Min-Length: " : "",
                  reg_script.min_len ? reg_script.min_len : "", reg_script.min_len ? "\r\n" : "");
        return;
    }
    if (strcmp(q->method, "PATCH") == 0) {
        reg_script.patches++;
        if (reg_script.patches == reg_script.patch_status_at) {
            srv_send(c, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
            return;
        }
        reg_script.received += q->body_len;
        srv_sendf(c, false,
                  "HTTP/1.1 202 Accepted\r\nLocation: /v2/app/blobs/uploads/u1?_state=%d\r\n"
                  "Range: 0-%zu\r\nContent-Length: 0\r\n\r\n",
                  reg_script.patches, reg_script.received ? reg_script.received - 1 : 0);
        return;
    }
    if (strcmp(q->method, "GET") == 0 && strstr(q->url, "/uploads/") != NULL) {
        if (reg_script.status_range == NULL) {
            srv_send(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            return;
        }
        srv_sendf(c, false,
                  "HTTP/1.1 204 No Content\r\nLocation: /v2/app/blobs/uploads/u1?_state=s\r\n"
                  "Range: %s\r\nContent-Length: 0\r\n\r\n",
                  reg_script.status_range);
        return;
    }
    if (strcmp(q->method, "PUT") == 0) {
        reg_script.received += q->body_len;
        if (query_value(q->url, "digest=", dg, sizeof(dg)) == NULL)
            dg[0] = '\0';
        srv_sendf(c, false,
                  "HTTP/1.1 201 Created\r\nDocker-Content-Digest: %s\r\nContent-Length: 0\r\n\r\n",
                  reg_script.stored_as ? reg_script.stored_as : dg);
        return;
    }
    srv_send(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
}

/* Runs one upload o against the scripted registry. */
static void run_upload(struct env *e, struct owner *o)
{
    e->expect_done = 1;
    CHECK_INT(proto_upload_start(&o->u), 0);
    env_run(e);
    CHECK_INT(o->done, 1);
}

static int count_reqs(struct srv *s, const char *method)
{
    int n = 0;
    for (int i = 0; i < s->n_reqs; i++)
        n += strcmp(s->reqs[i].method, method) == 0;
    return n;
}

static void setup(struct env *e, struct proto_registry *reg)
{
    memset(&reg_script, 0, sizeof(reg_script));
    env_init(e);
    CHECK_INT(srv_start(&e->srv, &e->loop, h_registry, e), 0);
    registry_for(e, reg);
}

static void teardown(struct env *e, struct proto_registry *reg)
{
    proto_registry_dispose(reg);
    env_free(e);
}

/* ------------------------------------------------------------------------------------------ */
/* Tests */

/* Size and digest known, no chunk size: one PUT carries everything. */
TEST(one_put)
{
    struct env e;
    struct proto_registry reg;
    struct owner o;
    setup(&e, &reg);
    owner_init(&o, &e, &reg, "hello", 5, true);
    run_upload(&e, &o);
    CHECK_INT(o.err, 0);
    CHECK_INT(o.opened, 1);
    CHECK_INT(count_reqs(&e.srv, "POST"), 1);
    CHECK_INT(count_reqs(&e.srv, "PATCH"), 0);
    CHECK_INT(count_reqs(&e.srv, "PUT"), 1);
    CHECK_INT(reg_script.received, 5);
    CHECK_INT(o.u.sent, 5);
    CHECK_INT(o.u.state, PROTO_UPLOAD_DONE);
    teardown(&e, &reg);
}

/* PATCHes of the chunk size with their Content-Range, then the commit once finished. */
TEST(chunks_then_commit)
{
    struct env e;
    struct proto_registry reg;
    struct owner o;
    setup(&e, &reg);
    owner_init(&o, &e, &reg, "0123456789", 10, true);
    o.u.chunk = 4;
    e.expect_done = 1;
    CHECK_INT(proto_upload_start(&o.u), 0);
    /* The owner's verdict comes at once here; the commit still waits for every chunk. */
    proto_upload_finish(&o.u, NULL, -1);
    env_run(&e);
    CHECK_INT(o.done, 1);
    CHECK_INT(o.err, 0);
    CHECK_INT(count_reqs(&e.srv, "PATCH"), 3);
    CHECK(contains(e.srv.reqs[1].head, "\r\nContent-Range: 0-3\r\n"));
    CHECK(contains(e.srv.reqs[2].head, "\r\nContent-Range: 4-7\r\n"));
    CHECK(contains(e.srv.reqs[3].head, "\r\nContent-Range: 8-9\r\n"));
    CHECK_STR(e.srv.reqs[4].method, "PUT");
    CHECK_INT(e.srv.reqs[4].body_len, 0);
    /* Each PATCH went to the newest Location the registry gave. */
    CHECK(contains(e.srv.reqs[2].url, "_state=1"));
    teardown(&e, &reg);
}

/* The registry's OCI-Chunk-Min-Length raises the chunk size. */
TEST(chunk_min_length)
{
    struct env e;
    struct proto_registry reg;
    struct owner o;
    setup(&e, &reg);
    reg_script.min_len = "6";
    owner_init(&o, &e, &reg, "0123456789", 10, true);
    o.u.chunk = 4;
    proto_upload_finish(&o.u, NULL, -1);
    run_upload(&e, &o);
    CHECK_INT(o.err, 0);
    CHECK_INT(o.u.chunk, 6);
    CHECK_INT(count_reqs(&e.srv, "PATCH"), 2);
    CHECK(contains(e.srv.reqs[1].head, "\r\nContent-Range: 0-5\r\n"));
    teardown(&e, &reg);
}

/* Size and digest unknown (a layer being built): one streamed PATCH, the commit at finish. */
static void finish_later(uv_timer_t *t)
{
    struct owner *o = t->data;
    o->limit = o->len;
    o->eof_at_limit = true;
    proto_upload_body_ready(&o->u, o->len);
    proto_upload_finish(&o->u, digest(o->data, o->len), (int64_t)o->len);
}

TEST(streamed_patch)
{
    struct env e;
    struct proto_registry reg;
    struct owner o;
    uv_timer_t t;
    setup(&e, &reg);
    owner_init(&o, &e, &reg, "streamed bytes", -1, false);
    o.limit = 4; /* the rest is not there yet */
    env_timer(&e, &t, &o);
    uv_timer_start(&t, finish_later, 100, 0);
    run_upload(&e, &o);
    CHECK_INT(o.err, 0);
    CHECK_INT(count_reqs(&e.srv, "PATCH"), 1);
    CHECK(contains(e.srv.reqs[1].head, "\r\nTransfer-Encoding: chunked\r\n"));
    CHECK(!contains(e.srv.reqs[1].head, "Content-Range"));
    CHECK_INT(e.srv.reqs[1].body_len, strlen("streamed bytes"));
    CHECK_STR(e.srv.reqs[2].method, "PUT");
    teardown(&e, &reg);
}

TEST(mount)
{
    struct env e;
    struct proto_registry reg;
    struct owner o;
    setup(&e, &reg);
    reg_script.mount_ok = true;
    owner_init(&o, &e, &reg, "hello", 5, true);
    snprintf(o.u.mount_digest, sizeof(o.u.mount_digest), "%s", o.u.digest);
    o.u.mount_from = "other";
    run_upload(&e, &o);
    CHECK_INT(o.err, 0);
    CHECK(o.u.mounted);
    CHECK_INT(o.opened, 0);
    CHECK_INT(e.srv.n_reqs, 1);
    CHECK(contains(e.srv.reqs[0].url, "mount=sha256:"));
    CHECK(contains(e.srv.reqs[0].url, "from=other"));
    teardown(&e, &reg);
}

/* A PATCH answered 500: the owner stops its source, the registry says it holds 4 bytes, on from
 * there. */
TEST(cut_patch_resumes_from_offset)
{
    struct env e;
    struct proto_registry reg;
    struct owner o;
    setup(&e, &reg);
    reg_script.patch_status_at = 2;
    reg_script.status_range = "0-3";
    owner_init(&o, &e, &reg, "0123456789", 10, true);
    o.u.chunk = 4;
    o.continue_on_cut = true;
    proto_upload_finish(&o.u, NULL, -1);
    run_upload(&e, &o);
    CHECK_INT(o.err, 0);
    CHECK_INT(o.cuts, 1);
    CHECK_INT(o.rewinds, 1);
    CHECK_INT(o.rewound_to, 4);
    CHECK_INT(o.u.resumes, 1);
    /* POST, PATCH 0-3, PATCH 4-7 (500), status GET, PATCH 4-7, PATCH 8-9, PUT. */
    CHECK_INT(count_reqs(&e.srv, "GET"), 1);
    CHECK_INT(count_reqs(&e.srv, "PATCH"), 4);
    CHECK(contains(e.srv.reqs[4].head, "\r\nContent-Range: 4-7\r\n"));
    teardown(&e, &reg);
}

/* The registry cannot say ("0-0", or more than was sent): the upload ends, and may start over. */
TEST(unusable_offset_ends_restartable)
{
    struct env e;
    struct proto_registry reg;
    struct owner o;
    setup(&e, &reg);
    reg_script.patch_status_at = 2;
    reg_script.status_range = "0-0";
    owner_init(&o, &e, &reg, "0123456789", 10, true);
    o.u.chunk = 4;
    o.continue_on_cut = true;
    run_upload(&e, &o);
    CHECK_INT(o.err, OCISYNC_EUPLOAD);
    CHECK(o.u.transient);
    CHECK(o.u.restartable);
    CHECK(contains(o.u.errmsg, "no usable offset"));
    CHECK_INT(o.rewinds, 0);
    teardown(&e, &reg);
}

/* An owner that cannot go back ends the upload with the PATCH's error. */
TEST(cut_declined)
{
    struct env e;
    struct proto_registry reg;
    struct owner o;
    setup(&e, &reg);
    reg_script.patch_status_at = 1;
    owner_init(&o, &e, &reg, "0123456789", 10, true);
    o.u.chunk = 4;
    run_upload(&e, &o);
    CHECK_INT(o.err, OCISYNC_EREGISTRY);
    CHECK_INT(o.cuts, 1);
    CHECK(o.u.transient);
    CHECK_INT(count_reqs(&e.srv, "GET"), 0);
    teardown(&e, &reg);
}

TEST(commit_stored_as_another_digest)
{
    struct env e;
    struct proto_registry reg;
    struct owner o;
    setup(&e, &reg);
    reg_script.stored_as =
        "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    owner_init(&o, &e, &reg, "hello", 5, true);
    run_upload(&e, &o);
    CHECK_INT(o.err, OCISYNC_EDIGESTMISMATCH);
    CHECK(contains(o.u.errmsg, "was stored as sha256:0000"));
    teardown(&e, &reg);
}

/* An abort while a PATCH waits for bytes ends it at once, with the owner's error. */
static void abort_later(uv_timer_t *t)
{
    struct owner *o = t->data;
    proto_upload_abort(&o->u, UV_ECANCELED);
}

TEST(abort_mid_patch)
{
    struct env e;
    struct proto_registry reg;
    struct owner o;
    uv_timer_t t;
    setup(&e, &reg);
    owner_init(&o, &e, &reg, "0123456789", 10, true);
    o.u.chunk = 8;
    o.limit = 2; /* the PATCH of 8 bytes waits for more */
    env_timer(&e, &t, &o);
    uv_timer_start(&t, abort_later, 100, 0);
    run_upload(&e, &o);
    CHECK_INT(o.err, UV_ECANCELED);
    CHECK_INT(o.u.state, PROTO_UPLOAD_DONE);
    CHECK_INT(count_reqs(&e.srv, "PUT"), 0);
    teardown(&e, &reg);
}

TEST_MAIN(T(one_put), T(chunks_then_commit), T(chunk_min_length), T(streamed_patch), T(mount),
          T(cut_patch_resumes_from_offset), T(unusable_offset_ends_restartable), T(cut_declined),
          T(commit_stored_as_another_digest), T(abort_mid_patch))
