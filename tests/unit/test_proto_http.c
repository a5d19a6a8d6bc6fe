/*
 * The HTTP/1.1 client (src/proto/http.c over src/loop/loop.c) against a tiny
 * in-process server on libuv. The server parses requests with llhttp,
 * records each one (its raw head, method, target and de-chunked body) and
 * answers from a per-test script of recorded responses; it counts accepted,
 * open and concurrently open connections.
 *
 * Each test has its own uv_loop and ends by closing everything and asserting
 * uv_loop_close() == 0 and the number of times each callback ran. A
 * watchdog aborts whatever is left if a test stalls, so a hang fails the
 * test instead of the run.
 */
#include "test_http_srv.h"

/* ------------------------------------------------------------------------------------------ */
/* Handlers */

static void h_hello(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    srv_send(c, "HTTP/1.1 200 OK\r\n"
                "Content-Type: text/plain\r\n"
                "Docker-Content-Digest: sha256:abc \r\n"
                "Content-Length: 11\r\n"
                "\r\n"
                "hello world");
}

/* Keep-alive framing, but the server closes right after writing: the next use finds it dead. */
static void h_hello_then_close(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh";
    srv_send_ex(c, resp, strlen(resp), true, true);
}

/* An upload POST whose Location points elsewhere: at another host, or relative (here). */
static void h_upload_location(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    if (strstr(q->url, "/foreign/") != NULL)
        srv_send(c, "HTTP/1.1 202 Accepted\r\nLocation: http://127.0.0.2:5000/v2/foreign/blobs/"
                    "uploads/u1?_state=x\r\nContent-Length: 0\r\n\r\n");
    else
        srv_send(c, "HTTP/1.1 202 Accepted\r\nLocation: /v2/local/blobs/uploads/u2?_state=y\r\n"
                    "Content-Length: 0\r\n\r\n");
}

/* Answers the first request on a connection; drops the connection on a later one unanswered. */
static void h_drop_reused(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh";
    if (q->index > 0) {
        srv_close_conn(c);
        return;
    }
    srv_send_ex(c, resp, strlen(resp), true, false);
}

static void h_connection_close(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    static const char resp[] =
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
    srv_send_ex(c, resp, strlen(resp), true, true);
}

static void h_created(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    srv_send(c, "HTTP/1.1 201 Created\r\nLocation: /v2/app/blobs/x\r\nContent-Length: 0\r\n\r\n");
}

static void h_big(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    srv_sendf(c, false, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", BIG_SIZE);
    srv_send_ex(c, big(), BIG_SIZE, true, false);
}

/* The same 8 MiB in 1000-byte chunks. */
static void h_big_chunked(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    if (big_chunked == NULL) {
        size_t cap = BIG_SIZE + (BIG_SIZE / 1000 + 2) * 16 + 64, n = 0;
        big_chunked = malloc(cap);
        if (big_chunked == NULL)
            abort();
        n += (size_t)sprintf(big_chunked, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for (size_t off = 0; off < BIG_SIZE; off += 1000) {
            size_t k = BIG_SIZE - off < 1000 ? BIG_SIZE - off : 1000;
            n += (size_t)sprintf(big_chunked + n, "%zx\r\n", k);
            memcpy(big_chunked + n, big() + off, k);
            n += k;
            memcpy(big_chunked + n, "\r\n", 2);
            n += 2;
        }
        memcpy(big_chunked + n, "0\r\n\r\n", 5);
        n += 5;
        big_chunked_len = n;
    }
    srv_send_ex(c, big_chunked, big_chunked_len, true, false);
}

static void h_silent(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    /* Never answers. */
}

/* ------------------------------------------------------------------------------------------ */
/* Tests */

TEST(get_collects_body)
{
    struct env e;
    struct xreq x;
    env_init(&e);
    CHECK_INT(srv_start(&e.srv, &e.loop, h_hello, &e), 0);
    e.expect_done = 1;
    x_init(&e, &x, "GET", srv_url(&e.srv, "/v2/app/manifests/latest?x=1"));
    CHECK_INT(proto_http_add_header(&x.r, "Accept", "application/vnd.oci.image.index.v1+json"), 0);
    /* Headers the client owns, and values that would split the head, are not sent. */
    CHECK_INT(proto_http_add_header(&x.r, "Host", "evil.example"), 0);
    CHECK_INT(proto_http_add_header(&x.r, "content-length", "5"), 0);
    CHECK_INT(proto_http_add_header(&x.r, "X-Split", "a\r\nX-Injected: 1"), 0);
    x_start(&x);
    env_run(&e);

    CHECK_INT(x.done, 1);
    CHECK_INT(x.err, 0);
    CHECK_INT(x.r.status, 200);
    CHECK_INT(x.r.resp_len, 11);
    CHECK_STR(x.r.resp_body, "hello world");
    CHECK_STR(proto_http_header(&x.r, "content-type"), "text/plain");
    CHECK_STR(proto_http_header(&x.r, "Docker-Content-Digest"), "sha256:abc");
    CHECK(x.r.error_detail == NULL);

    CHECK_INT(e.srv.accepts, 1);
    CHECK_INT(e.srv.n_reqs, 1);
    CHECK_INT(e.srv.parse_errors, 0);
    struct srv_req *q = &e.srv.reqs[0];
    CHECK_STR(q->method, "GET");
    CHECK_STR(q->url, "/v2/app/manifests/latest?x=1");
    static const char line[] = "GET /v2/app/manifests/latest?x=1 HTTP/1.1\r\n";
    CHECK(strncmp(q->head, line, strlen(line)) == 0);
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%d\r\n", e.srv.port);
    CHECK(contains(q->head, host));
    CHECK(contains(q->head, "\r\nUser-Agent: ocisync/"));
    CHECK(contains(q->head, "\r\nAccept: application/vnd.oci.image.index.v1+json\r\n"));
    CHECK(!contains(q->head, "evil.example"));
    CHECK(!contains(q->head, "Content-Length"));
    CHECK(!contains(q->head, "content-length"));
    CHECK(!contains(q->head, "X-Injected"));
    CHECK(!contains(q->head, "Authorization"));
    CHECK_INT(q->body_len, 0);
    env_free(&e);
}

static void h_errors(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    if (strcmp(q->url, "/missing") == 0) {
        srv_send(c, "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                    "Content-Length: 52\r\n\r\n"
                    "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"x\"}]}");
    } else {
        srv_sendf(c, false, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n%100s", "");
    }
}

TEST(error_body_and_collect_cap)
{
    struct env e;
    struct xreq a, b;
    env_init(&e);
    CHECK_INT(srv_start(&e.srv, &e.loop, h_errors, &e), 0);
    e.expect_done = 2;
    x_init(&e, &a, "GET", srv_url(&e.srv, "/missing"));
    x_init(&e, &b, "GET", srv_url(&e.srv, "/large"));
    b.r.collect_max = 99;
    x_start(&a);
    x_start(&b);
    env_run(&e);
    /* A non-2xx answer is a completed exchange; its body is kept for the message. */
    CHECK_INT(a.done, 1);
    CHECK_INT(a.err, 0);
    CHECK_INT(a.r.status, 404);
    CHECK(contains(a.r.resp_body, "MANIFEST_UNKNOWN"));
    CHECK_INT(a.r.resp_len, 52);
    /* A 2xx body over collect_max fails. */
    CHECK_INT(b.done, 1);
    CHECK_INT(b.err, OCISYNC_ETOOBIG);
    CHECK_INT(b.r.status, 200);
    env_free(&e);
}

static void then_start_b(struct xreq *x);
static struct xreq *seq_next;

static void then_start_b(struct xreq *x)
{
    if (x->err == 0 && seq_next != NULL)
        x_start(seq_next);
    else if (seq_next != NULL)
        x->env->expect_done--; /* the second one never starts */
}

static void sequential(srv_handler handler, int want_accepts, const char *want_body)
{
    struct env e;
    struct xreq a, b;
    env_init(&e);
    CHECK_INT(srv_start(&e.srv, &e.loop, handler, &e), 0);
    e.expect_done = 2;
    x_init(&e, &a, "GET", srv_url(&e.srv, "/one"));
    x_init(&e, &b, "GET", srv_url(&e.srv, "/two"));
    a.then = then_start_b;
    seq_next = &b;
    x_start(&a);
    env_run(&e);
    seq_next = NULL;
    CHECK_INT(a.done, 1);
    CHECK_INT(b.done, 1);
    CHECK_INT(a.err, 0);
    CHECK_INT(b.err, 0);
    CHECK_STR(a.r.resp_body, want_body);
    CHECK_STR(b.r.resp_body, want_body);
    CHECK_INT(e.srv.n_reqs, 2);
    CHECK_INT(e.srv.accepts, want_accepts);
    if (e.srv.n_reqs == 2) {
        CHECK_STR(e.srv.reqs[0].url, "/one");
        CHECK_STR(e.srv.reqs[1].url, "/two");
        CHECK_INT(e.srv.reqs[1].conn_id, want_accepts);
        CHECK_INT(e.srv.reqs[1].index, want_accepts == 1 ? 1 : 0);
    }
    env_free(&e);
}

TEST(keep_alive_reuses_connection)
{
    sequential(h_hello, 1, "hello world");
}

TEST(connection_close_not_reused)
{
    sequential(h_connection_close, 2, "ok");
}

TEST(body_from_memory)
{
    struct env e;
    struct xreq x;
    size_t n = 300000;
    char *payload = malloc(n);
    fill_pattern(payload, n, 7);
    env_init(&e);
    CHECK_INT(srv_start(&e.srv, &e.loop, h_created, &e), 0);
    e.expect_done = 1;
    x_init(&e, &x, "PUT", srv_url(&e.srv, "/v2/app/blobs/uploads/u1?digest=sha256:abc"));
    proto_http_set_body_mem(&x.r, payload, n);
    x_start(&x);
    env_run(&e);
    CHECK_INT(x.done, 1);
    CHECK_INT(x.err, 0);
    CHECK_INT(x.r.status, 201);
    CHECK_STR(proto_http_header(&x.r, "Location"), "/v2/app/blobs/x");
    CHECK_INT(e.srv.n_reqs, 1);
    struct srv_req *q = &e.srv.reqs[0];
    CHECK_STR(q->method, "PUT");
    CHECK(contains(q->head, "\r\nContent-Length: 300000\r\n"));
    CHECK(!contains(q->head, "Transfer-Encoding"));
    CHECK_INT(q->body_len, n);
    CHECK(q->body != NULL && memcmp(q->body, payload, n) == 0);
    env_free(&e);
    free(payload);
}

/* A source of unknown length that offers odd-sized pieces and sometimes has nothing yet. */
struct stream_src {
    struct xreq *x;
    const char *data;
    size_t len, off;
    unsigned peeks, consumes, waits, readies;
    uv_timer_t timer;
    bool timer_active;
};

static void src_ready(uv_timer_t *t)
{
    struct stream_src *s = t->data;
    s->timer_active = false;
    s->readies++;
    proto_http_body_ready(&s->x->r);
}

static int src_peek(void *arg, const char **data, size_t *len)
{
    static const size_t pieces[] = {1, 4096, 65536, 7, 100000, 333};
    struct stream_src *s = arg;
    unsigned i = s->peeks++;
    if (s->off == s->len)
        return PROTO_BODY_EOF;
    if (i % 3 == 1 && !s->timer_active) {
        /* Nothing yet: more comes from a timer, announced with proto_http_body_ready. */
        s->waits++;
        s->timer_active = true;
        uv_timer_start(&s->timer, src_ready, 2, 0);
        *len = 0;
        return 0;
    }
    size_t k = pieces[i % (sizeof(pieces) / sizeof(pieces[0]))];
    if (k > s->len - s->off)
        k = s->len - s->off;
    *data = s->data + s->off;
    *len = k;
    return 0;
}

static void src_consume(void *arg, size_t n)
{
    struct stream_src *s = arg;
    s->consumes++;
    s->off += n;
}

TEST(streaming_body_chunked)
{
    struct env e;
    struct xreq x;
    struct stream_src src;
    size_t n = 250000;
    char *payload = malloc(n);
    fill_pattern(payload, n, 9);
    env_init(&e);
    CHECK_INT(srv_start(&e.srv, &e.loop, h_created, &e), 0);
    e.expect_done = 1;
    x_init(&e, &x, "PATCH", srv_url(&e.srv, "/v2/app/blobs/uploads/u1"));
    memset(&src, 0, sizeof(src));
    src.x = &x;
    src.data = payload;
    src.len = n;
    env_timer(&e, &src.timer, &src);
    x.r.has_body = true;
    x.r.body.peek = src_peek;
    x.r.body.consume = src_consume;
    x.r.body.arg = &src;
    x.r.body.length = -1;
    x_start(&x);
    env_run(&e);
    CHECK_INT(x.done, 1);
    CHECK_INT(x.err, 0);
    CHECK_INT(x.r.status, 201);
    CHECK_INT(src.off, n);
    CHECK(src.waits > 0);
    CHECK(src.readies > 0);
    CHECK_INT(e.srv.n_reqs, 1);
    struct srv_req *q = &e.srv.reqs[0];
    CHECK_STR(q->method, "PATCH");
    CHECK(contains(q->head, "\r\nTransfer-Encoding: chunked\r\n"));
    CHECK(!contains(q->head, "Content-Length"));
    CHECK_INT(q->body_len, n);
    CHECK(q->body != NULL && memcmp(q->body, payload, n) == 0);
    env_free(&e);
    free(payload);
}

static void backpressure(srv_handler handler, int pause_mode, uint64_t resume_ms)
{
    struct env e;
    struct xreq x;
    env_init(&e);
    CHECK_INT(srv_start(&e.srv, &e.loop, handler, &e), 0);
    e.expect_done = 1;
    x_init(&e, &x, "GET", srv_url(&e.srv, "/v2/app/blobs/sha256:big"));
    x.r.on_body = x_on_body;
    x.pause_mode = pause_mode;
    x.resume_ms = resume_ms;
    x_start(&x);
    env_run(&e);
    CHECK_INT(x.done, 1);
    CHECK_INT(x.err, 0);
    CHECK_INT(x.r.status, 200);
    CHECK_INT(x.body_bytes, BIG_SIZE);
    CHECK(x.hash == fnv1a(FNV_INIT, big(), BIG_SIZE));
    CHECK(x.n_pause > 0);
    CHECK_INT(x.n_resume, x.n_pause);
    /* Body callbacks carry bytes: an empty one would only make the consumer pause for nothing. */
    CHECK_INT(x.n_empty_body, 0);
    CHECK_INT(x.n_body_while_paused, 0);
    CHECK(x.r.resp_body == NULL); /* streamed, not collected */
    if (x.err != 0)
        fprintf(stderr,
                "  backpressure(mode %d): %s after %llu of %u bytes, %d body calls (%d empty), "
                "%d pauses, %d resumes: %s\n",
                pause_mode, ocisync_err_name(x.err), (unsigned long long)x.body_bytes, BIG_SIZE,
                x.n_body, x.n_empty_body, x.n_pause, x.n_resume,
                x.r.error_detail ? x.r.error_detail : "");
    env_free(&e);
}

/* The consumer pauses on every piece, the last one included, and resumes from a timer. */
TEST(backpressure_pause_every_piece)
{
    backpressure(h_big, 1, 1);
}

/* Chunked: one pause leaves unparsed chunks in the read buffer; resuming must go on reading. */
TEST(backpressure_chunked_single_pause)
{
    backpressure(h_big_chunked, 2, 20);
}

/* Every 1000-byte chunk pauses (8389 pauses), each resumed on the next loop iteration. */
TEST(backpressure_chunked_every_piece)
{
    backpressure(h_big_chunked, 1, 0);
}

/* srv redirects /start to srv2 (another port); srv2 answers. */
static void h_redirect_away(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    struct env *e = s->data;
    if (strcmp(q->url, "/v2/app/blobs/sha256:abc") == 0)
        srv_sendf(c, false,
                  "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/storage/abc?sig=1\r\n"
                  "Content-Length: 9\r\n\r\nredirect!",
                  e->srv2.port);
    else if (strcmp(q->url, "/v2/app/blobs/sha256:local") == 0)
        srv_send(c, "HTTP/1.1 307 Temporary Redirect\r\nLocation: /v2/app/blobs/sha256:here\r\n"
                    "Content-Length: 0\r\n\r\n");
    else
        srv_send(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhere");
}

static void h_storage(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    srv_send(c, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nblob-data");
}

TEST(redirect_drops_authorization_cross_origin)
{
    struct env e;
    struct xreq x, y;
    env_init(&e);
    CHECK_INT(srv_start(&e.srv, &e.loop, h_redirect_away, &e), 0);
    CHECK_INT(srv_start(&e.srv2, &e.loop, h_storage, &e), 0);
    e.expect_done = 2;
    x_init(&e, &x, "GET", srv_url(&e.srv, "/v2/app/blobs/sha256:abc"));
    x.r.authorization = strdup("Bearer s3cr3t");
    proto_url_origin(&x.r.url, x.r.auth_origin, sizeof(x.r.auth_origin));
    /* A same-origin redirect keeps the credentials. */
    x_init(&e, &y, "GET", srv_url(&e.srv, "/v2/app/blobs/sha256:local"));
    y.r.authorization = strdup("Bearer s3cr3t");
    proto_url_origin(&y.r.url, y.r.auth_origin, sizeof(y.r.auth_origin));
    x_start(&x);
    x_start(&y);
    env_run(&e);

    CHECK_INT(x.done, 1);
    CHECK_INT(x.err, 0);
    CHECK_INT(x.r.status, 200);
    CHECK_STR(x.r.resp_body, "blob-data");
    CHECK_INT(x.r.redirects, 1);
    CHECK_INT(x.r.url.port, e.srv2.port);
    CHECK_INT(y.done, 1);
    CHECK_INT(y.err, 0);
    CHECK_STR(y.r.resp_body, "here");

    CHECK_INT(e.srv.n_reqs, 3);
    CHECK_INT(e.srv2.n_reqs, 1);
    for (int i = 0; i < e.srv.n_reqs; i++)
        CHECK(contains(e.srv.reqs[i].head, "\r\nAuthorization: Bearer s3cr3t\r\n"));
    if (e.srv2.n_reqs == 1) {
        CHECK_STR(e.srv2.reqs[0].url, "/storage/abc?sig=1");
        CHECK(!contains(e.srv2.reqs[0].head, "Authorization"));
        CHECK(!contains(e.srv2.reqs[0].head, "s3cr3t"));
        char host[64];
        snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%d\r\n", e.srv2.port);
        CHECK(contains(e.srv2.reqs[0].head, host));
    }
    env_free(&e);
}

static void h_see_other(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    if (strcmp(q->method, "PUT") == 0 && strcmp(q->url, "/upload") == 0)
        srv_send(c, "HTTP/1.1 303 See Other\r\nLocation: /result\r\nContent-Length: 0\r\n\r\n");
    else if (strcmp(q->method, "PUT") == 0 && strcmp(q->url, "/temp") == 0)
        srv_send(c, "HTTP/1.1 307 Temporary Redirect\r\nLocation: /upload2\r\n"
                    "Content-Length: 0\r\n\r\n");
    else if (strcmp(q->method, "PUT") == 0)
        srv_send(c, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    else
        srv_send(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nresult");
}

TEST(redirect_303_put_becomes_get)
{
    struct env e;
    struct xreq x, y;
    static const char payload[] = "layer-bytes";
    env_init(&e);
    CHECK_INT(srv_start(&e.srv, &e.loop, h_see_other, &e), 0);
    e.expect_done = 1;
    x_init(&e, &x, "PUT", srv_url(&e.srv, "/upload"));
    proto_http_set_body_mem(&x.r, payload, strlen(payload));
    x_start(&x);
    env_run(&e);
    CHECK_INT(x.done, 1);
    CHECK_INT(x.err, 0);
    CHECK_INT(x.r.status, 200);
    CHECK_STR(x.r.resp_body, "result");
    CHECK_INT(e.srv.n_reqs, 2);
    if (e.srv.n_reqs == 2) {
        CHECK_STR(e.srv.reqs[0].method, "PUT");
        CHECK_INT(e.srv.reqs[0].body_len, strlen(payload));
        CHECK(contains(e.srv.reqs[0].head, "\r\nContent-Length: 11\r\n"));
        CHECK_STR(e.srv.reqs[1].method, "GET");
        CHECK_STR(e.srv.reqs[1].url, "/result");
        CHECK_INT(e.srv.reqs[1].body_len, 0);
        CHECK(!contains(e.srv.reqs[1].head, "Content-Length"));
        CHECK(!contains(e.srv.reqs[1].head, "Transfer-Encoding"));
    }
    env_free(&e);

    /* 307 resends the same method and body. */
    env_init(&e);
    CHECK_INT(srv_start(&e.srv, &e.loop, h_see_other, &e), 0);
    e.expect_done = 1;
    x_init(&e, &y, "PUT", srv_url(&e.srv, "/temp"));
    proto_http_set_body_mem(&y.r, payload, strlen(payload));
    x_start(&y);
    env_run(&e);
    CHECK_INT(y.done, 1);
    CHECK_INT(y.err, 0);
    CHECK_INT(y.r.status, 201);
    CHECK_INT(e.srv.n_reqs, 2);
    if (e.srv.n_reqs == 2) {
        CHECK_STR(e.srv.reqs[1].method, "PUT");
        CHECK_STR(e.srv.reqs[1].url, "/upload2");
        CHECK_INT(e.srv.reqs[1].body_len, strlen(payload));
        CHECK(e.srv.reqs[1].body != NULL &&
              memcmp(e.srv.reqs[1].body, payload, strlen(payload)) == 0);
    }
    env_free(&e);
}

static int redirect_limit; /* how many redirects h_loop answers before a 200 */

static void h_loop(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    if (s->n_reqs <= redirect_limit)
        srv_sendf(c, false, "HTTP/1.1 302 Found\r\nLocation: /hop%d\r\nContent-Length: 0\r\n\r\n",
                  s->n_reqs);
    else
        srv_send(c, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\narrived");
}

TEST(redirect_limit)
{
    struct env e;
    struct xreq x;

    /* Exactly PROTO_MAX_REDIRECTS hops are followed. */
    redirect_limit = PROTO_MAX_REDIRECTS;
    env_init(&e);
    CHECK_INT(srv_start(&e.srv, &e.loop, h_loop, &e), 0);
    e.expect_done = 1;
    x_init(&e, &x, "GET", srv_url(&e.srv, "/start"));
    x_start(&x);
    env_run(&e);
    CHECK_INT(x.done, 1);
    CHECK_INT(x.err, 0);
    CHECK_STR(x.r.resp_body, "arrived");
    CHECK_INT(e.srv.n_reqs, PROTO_MAX_REDIRECTS + 1);
    CHECK_INT(e.srv.accepts, 1); /* same origin, keep-alive: one connection */
    env_free(&e);

    /* One more is too many. */
    redirect_limit = 1000;
    env_init(&e);
    CHECK_INT(srv_start(&e.srv, &e.loop, h_loop, &e), 0);
    e.expect_done = 1;
    x_init(&e, &x, "GET", srv_url(&e.srv, "/start"));
    x_start(&x);
    env_run(&e);
    CHECK_INT(x.done, 1);
    CHECK_INT(x.err, OCISYNC_EREDIRECT);
    CHECK_INT(e.srv.n_reqs, PROTO_MAX_REDIRECTS + 1);
    CHECK(contains(x.r.error_detail, "redirects"));
    env_free(&e);
}

static void h_truncated(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    static char resp[600];
    if (strcmp(q->url, "/length") == 0) {
        size_t n = (size_t)sprintf(resp, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
        memset(resp + n, 'x', 500);
        srv_send_ex(c, resp, n + 500, false, true);
    } else if (strcmp(q->url, "/chunked") == 0) {
        srv_sendf(c, true,
                  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "10\r\n0123456789abcdef\r\n20\r\nshort");
    } else if (strcmp(q->url, "/headers") == 0) {
        srv_sendf(c, true, "HTTP/1.1 200 OK\r\nContent-Len");
    } else {
        srv_close_conn(c); /* nothing at all */
    }
}

TEST(truncated_response)
{
    struct env e;
    struct xreq x[4];
    static const char *paths[] = {"/length", "/chunked", "/headers", "/nothing"};
    env_init(&e);
    CHECK_INT(srv_start(&e.srv, &e.loop, h_truncated, &e), 0);
    e.expect_done = 4;
    for (int i = 0; i < 4; i++) {
        x_init(&e, &x[i], "GET", srv_url(&e.srv, paths[i]));
        x[i].r.on_body = x_on_body;
        x_start(&x[i]);
    }
    env_run(&e);
    for (int i = 0; i < 4; i++) {
        CHECK_INT(x[i].done, 1);
        CHECK_INT(x[i].err, OCISYNC_ECLOSED);
        CHECK(contains(x[i].r.error_detail, "closed"));
    }
    CHECK_INT(x[0].body_bytes, 500);
    CHECK_INT(x[1].body_bytes, 16 + 5);
    /* Fresh connections are not retried. */
    CHECK_INT(e.srv.n_reqs, 4);
    CHECK_INT(e.srv.accepts, 4);
    env_free(&e);
}

TEST(idle_timeout)
{
    struct env e;
    struct xreq x;
    env_init(&e);
    e.cl.idle_timeout_ms = 200;
    CHECK_INT(srv_start(&e.srv, &e.loop, h_silent, &e), 0);
    e.expect_done = 1;
    x_init(&e, &x, "GET", srv_url(&e.srv, "/v2/"));
    x_start(&x);
    env_run(&e);
    CHECK_INT(x.done, 1);
    CHECK_INT(x.err, OCISYNC_ETIMEOUT);
    CHECK(x.done_at - x.started_at >= 190);
    CHECK(x.done_at - x.started_at < 1500);
    CHECK(contains(x.r.error_detail, "timed out"));
    CHECK_INT(e.srv.n_reqs, 1); /* the request did arrive */
    env_free(&e);
}

static int closed_port(void)
{
    uv_loop_t loop;
    uv_tcp_t t;
    struct sockaddr_in addr;
    struct sockaddr_storage name;
    int namelen = sizeof(name);
    int port = 0;
    uv_loop_init(&loop);
    uv_tcp_init(&loop, &t);
    uv_ip4_addr("127.0.0.1", 0, &addr);
    if (uv_tcp_bind(&t, (const struct sockaddr *)&addr, 0) == 0 &&
        uv_tcp_getsockname(&t, (struct sockaddr *)&name, &namelen) == 0)
        port = ntohs(((struct sockaddr_in *)&name)->sin_port);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
    return port;
}

TEST(connection_refused)
{
    struct env e;
    struct xreq x;
    char url[64], where[64];
    int port = closed_port();
    CHECK(port > 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/", port);
    snprintf(where, sizeof(where), "127.0.0.1:%d", port);
    env_init(&e);
    e.expect_done = 1;
    x_init(&e, &x, "GET", url);
    x_start(&x);
    env_run(&e);
    CHECK_INT(x.done, 1);
    CHECK_INT(x.err, UV_ECONNREFUSED);
    CHECK(contains(x.r.error_detail, where));
    if (!contains(x.r.error_detail, where))
        fprintf(stderr, "  detail: %s\n", x.r.error_detail ? x.r.error_detail : "(null)");
    env_free(&e);
}

TEST(closed_idle_connection_not_reused)
{
    struct env e;
    struct xreq a, b;
    env_init(&e);
    CHECK_INT(srv_start(&e.srv, &e.loop, h_hello_then_close, &e), 0);
    e.expect_done = 2;
    x_init(&e, &a, "GET", srv_url(&e.srv, "/one"));
    x_init(&e, &b, "GET", srv_url(&e.srv, "/two"));
    /*
     * Started from a's on_done, b asks for a connection in the same loop turn in which
     * a's was released; the server closed it right after answering, and the pool must
     * see that (the EOF is already on the socket) instead of handing it over.
     */
    a.then = then_start_b;
    seq_next = &b;
    x_start(&a);
    env_run(&e);
    seq_next = NULL;
    CHECK_INT(a.done, 1);
    CHECK_INT(a.err, 0);
    CHECK_INT(b.done, 1);
    CHECK_INT(b.err, 0);
    CHECK_INT(b.r.status, 200);
    CHECK_STR(b.r.resp_body, "fresh");
    CHECK_INT(b.r.retries, 0);
    CHECK_INT(e.srv.accepts, 2);
    CHECK_INT(e.srv.n_reqs, 2);
    env_free(&e);
}

TEST(stale_connection_retried)
{
    struct env e;
    struct xreq a, b;
    env_init(&e);
    CHECK_INT(srv_start(&e.srv, &e.loop, h_drop_reused, &e), 0);
    e.expect_done = 2;
    x_init(&e, &a, "GET", srv_url(&e.srv, "/one"));
    x_init(&e, &b, "GET", srv_url(&e.srv, "/two"));
    /*
     * The connection looks alive when b takes it, but the server drops it when b's request
     * arrives (a server-side idle timeout racing the reuse): b is sent once more, on a
     * new connection.
     */
    a.then = then_start_b;
    seq_next = &b;
    x_start(&a);
    env_run(&e);
    seq_next = NULL;
    CHECK_INT(a.done, 1);
    CHECK_INT(a.err, 0);
    CHECK_INT(b.done, 1);
    CHECK_INT(b.err, 0);
    CHECK_INT(b.r.status, 200);
    CHECK_STR(b.r.resp_body, "fresh");
    CHECK_INT(b.r.retries, 1);
    CHECK_INT(e.srv.accepts, 2);
    CHECK_INT(e.srv.n_reqs, 3);
    env_free(&e);
}

struct loc_probe {
    struct env *e;
    char *location; /* what proto_reg_upload_location returned */
    char errmsg[PROTO_REG_ERRMSG_MAX];
    int err;
    int done;
};

static void on_upload_started(struct proto_reg_op *op, int err)
{
    struct loc_probe *p = op->data;
    p->err = err;
    p->done++;
    if (err == 0) {
        p->location = proto_reg_upload_location(op);
        snprintf(p->errmsg, sizeof(p->errmsg), "%s", op->errmsg);
    }
    proto_reg_op_dispose(op);
    if (++p->e->n_done == p->e->expect_done)
        env_finish(p->e);
}

TEST(upload_location_on_another_host_refused)
{
    struct env e;
    struct proto_registry reg;
    struct proto_reg_op op1, op2;
    struct loc_probe foreign = {0}, local = {0};
    char hostport[32];
    env_init(&e);
    CHECK_INT(srv_start(&e.srv, &e.loop, h_upload_location, &e), 0);
    snprintf(hostport, sizeof(hostport), "127.0.0.1:%d", e.srv.port);
    CHECK_INT(proto_registry_init(&reg, &e.cl, hostport, "http", hostport), 0);
    e.expect_done = 2;
    foreign.e = local.e = &e;
    CHECK_INT(proto_reg_upload_start(&op1, &reg, "foreign", NULL, NULL), 0);
    op1.data = &foreign;
    CHECK_INT(proto_reg_op_start(&op1, on_upload_started), 0);
    CHECK_INT(proto_reg_upload_start(&op2, &reg, "local", NULL, NULL), 0);
    op2.data = &local;
    CHECK_INT(proto_reg_op_start(&op2, on_upload_started), 0);
    env_run(&e);
    /* Blob data would follow the Location: another host gets none of it. */
    CHECK_INT(foreign.done, 1);
    CHECK_INT(foreign.err, 0);
    CHECK(foreign.location == NULL);
    CHECK(contains(foreign.errmsg, "another host"));
    CHECK(contains(foreign.errmsg, "127.0.0.2"));
    /* A relative Location stays on the registry and is resolved against it. */
    CHECK_INT(local.done, 1);
    CHECK_INT(local.err, 0);
    if (local.location != NULL) {
        char want[96];
        snprintf(want, sizeof(want), "http://127.0.0.1:%d/v2/local/blobs/uploads/u2", e.srv.port);
        CHECK(strncmp(local.location, want, strlen(want)) == 0);
    } else {
        CHECK(local.location != NULL);
    }
    free(foreign.location);
    free(local.location);
    proto_registry_dispose(&reg);
    env_free(&e);
}

/* Tags in pages of two, linked with Link: rel="next"; one repository links to another host. */
static void send_page(struct srv_conn *c, const char *link, const char *body)
{
    srv_sendf(c, false,
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%s%s%sContent-Length: "
              "%zu\r\n\r\n%s",
              link ? "Link: " : "", link ? link : "", link ? "\r\n" : "", strlen(body), body);
}

static void h_paged_tags(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    (void)s;
    if (strcmp(q->url, "/v2/paged/tags/list?n=1000") == 0)
        send_page(c, "</v2/paged/tags/list?last=b&n=2>; rel=\"next\"",
                  "{\"name\":\"paged\",\"tags\":[\"a\",\"b\"]}");
    else if (strcmp(q->url, "/v2/paged/tags/list?last=b&n=2") == 0)
        send_page(c, NULL, "{\"name\":\"paged\",\"tags\":[\"c\"]}");
    else
        send_page(c, "<http://127.0.0.2:1/v2/evil/tags/list?last=x>; rel=\"next\"",
                  "{\"name\":\"evil\",\"tags\":[\"x\"]}");
}

struct page_probe {
    struct env *e;
    struct proto_registry *reg;
    char bodies[3][64];
    char *next[3];
    int next_err[3];
    char errmsg[PROTO_REG_ERRMSG_MAX];
    int n;
    struct proto_reg_op op;
};

static void on_page(struct proto_reg_op *op, int err)
{
    struct page_probe *p = op->data;
    int i = p->n++;
    CHECK_INT(err, 0);
    snprintf(p->bodies[i], sizeof(p->bodies[i]), "%.*s", (int)op->http.resp_len,
             op->http.resp_body ? op->http.resp_body : "");
    p->next[i] = proto_reg_next_page(op, &p->next_err[i]);
    if (p->next_err[i] != 0)
        snprintf(p->errmsg, sizeof(p->errmsg), "%s", op->errmsg);
    proto_reg_op_dispose(op);
    /* Follow the first repository's link once; then list the one that links away. */
    if (i == 0 && p->next[0] != NULL) {
        CHECK_INT(proto_reg_list(&p->op, p->reg, "paged", p->next[0]), 0);
    } else if (i == 1) {
        CHECK_INT(proto_reg_list(&p->op, p->reg, "evil", NULL), 0);
    } else {
        env_finish(p->e);
        return;
    }
    p->op.data = p;
    CHECK_INT(proto_reg_op_start(&p->op, on_page), 0);
}

TEST(tag_list_pages)
{
    struct env e;
    struct proto_registry reg;
    struct page_probe p;
    char hostport[32], want[96];
    env_init(&e);
    memset(&p, 0, sizeof(p));
    CHECK_INT(srv_start(&e.srv, &e.loop, h_paged_tags, &e), 0);
    snprintf(hostport, sizeof(hostport), "127.0.0.1:%d", e.srv.port);
    CHECK_INT(proto_registry_init(&reg, &e.cl, hostport, "http", hostport), 0);
    p.e = &e;
    p.reg = &reg;
    CHECK_INT(proto_reg_list(&p.op, &reg, "paged", NULL), 0);
    p.op.data = &p;
    CHECK_INT(proto_reg_op_start(&p.op, on_page), 0);
    env_run(&e);
    CHECK_INT(p.n, 3);
    CHECK(contains(p.bodies[0], "[\"a\",\"b\"]"));
    snprintf(want, sizeof(want), "http://127.0.0.1:%d/v2/paged/tags/list?last=b&n=2", e.srv.port);
    CHECK_STR(p.next[0], want);
    CHECK_INT(p.next_err[0], 0);
    /* The last page has no Link. */
    CHECK(contains(p.bodies[1], "[\"c\"]"));
    CHECK(p.next[1] == NULL);
    CHECK_INT(p.next_err[1], 0);
    /* A next page on another host is refused, not followed. */
    CHECK(p.next[2] == NULL);
    CHECK(p.next_err[2] != 0);
    CHECK(contains(p.errmsg, "another host"));
    for (int i = 0; i < 3; i++)
        free(p.next[i]);
    proto_registry_dispose(&reg);
    env_free(&e);
}

TEST(per_host_limit)
{
    struct env e;
    struct xreq x[5];
    env_init(&e);
    e.ctx.max_conns_per_host = 2;
    CHECK_INT(srv_start(&e.srv, &e.loop, h_hello, &e), 0);
    e.expect_done = 5;
    for (int i = 0; i < 5; i++) {
        char path[32];
        snprintf(path, sizeof(path), "/r%d", i);
        x_init(&e, &x[i], "GET", srv_url(&e.srv, path));
    }
    for (int i = 0; i < 5; i++)
        x_start(&x[i]);
    env_run(&e);
    for (int i = 0; i < 5; i++) {
        CHECK_INT(x[i].done, 1);
        CHECK_INT(x[i].err, 0);
        CHECK_STR(x[i].r.resp_body, "hello world");
    }
    CHECK_INT(e.srv.n_reqs, 5);
    CHECK_INT(e.srv.max_open, 2);
    CHECK_INT(e.srv.accepts, 2);
    env_free(&e);
}

TEST_MAIN(T(get_collects_body), T(error_body_and_collect_cap), T(keep_alive_reuses_connection),
          T(connection_close_not_reused), T(body_from_memory), T(streaming_body_chunked),
          T(backpressure_pause_every_piece), T(backpressure_chunked_single_pause),
          T(backpressure_chunked_every_piece), T(redirect_drops_authorization_cross_origin),
          T(redirect_303_put_becomes_get), T(redirect_limit), T(truncated_response),
          T(idle_timeout), T(connection_refused), T(closed_idle_connection_not_reused),
          T(stale_connection_retried), T(upload_location_on_another_host_refused),
          T(tag_list_pages), T(per_host_limit))
