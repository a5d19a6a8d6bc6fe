/*
 * The in-process HTTP/1.1 server and the per-test environment shared by the
 * tests of src/proto (test_proto_http.c, test_proto_hostile.c): a tiny
 * server on libuv that parses requests with llhttp, records each one (its
 * raw head, method, target and de-chunked body) and answers through a
 * per-test handler; and an environment of loop, pool, client, servers,
 * requests and a watchdog, so that a hang fails the test instead of the run.
 */
#ifndef OCISYNC_TEST_HTTP_SRV_H
#define OCISYNC_TEST_HTTP_SRV_H

#include "test.h"

#include "common/log.h"
#include "common/queue.h"
#include "loop/loop.h"
#include "ocisync.h"
#include "proto/http.h"
#include "proto/registry.h"

#include <llhttp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define WATCHDOG_MS 4000
#define IDLE_TIMEOUT_MS 2000

/* ------------------------------------------------------------------------------------------ */
/* Shared test data */

#define BIG_SIZE (8u * 1024 * 1024)
static char *big_body; /* owned by the test program, BIG_SIZE bytes */

static inline uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}
#define FNV_INIT 14695981039346656037ull

static inline void fill_pattern(char *b, size_t n, uint64_t seed)
{
    uint64_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (char)(x >> 32);
    }
}

__attribute__((unused)) static char
    *big_chunked; /* the same bytes as one chunked response, built on first use */
__attribute__((unused)) static size_t big_chunked_len;

static inline void free_big(void)
{
    free(big_body);
    free(big_chunked);
}

static inline const char *big(void)
{
    if (big_body == NULL) {
        atexit(free_big);
        big_body = malloc(BIG_SIZE);
        if (big_body == NULL)
            abort();
        fill_pattern(big_body, BIG_SIZE, 42);
    }
    return big_body;
}

static inline bool contains(const char *hay, const char *needle)
{
    return hay != NULL && strstr(hay, needle) != NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* The server */

#define SRV_MAX_REQS 32
#define SRV_URL_MAX 1024

struct srv;
struct srv_conn;

struct srv_req {
    int conn_id; /* which accepted connection (1-based) */
    int index;   /* 0 for the first request on its connection */
    char method[16];
    char url[SRV_URL_MAX];
    char *head; /* owned: the raw request line and headers, through the empty line */
    char *body; /* owned: the body as received, de-chunked by llhttp */
    size_t body_len;
};

typedef void (*srv_handler)(struct srv *s, struct srv_conn *c, struct srv_req *req);

struct srv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    srv_handler handler;
    void *data;
    struct queue conns; /* open connections */
    int accepts;
    int open;
    int max_open;
    int closed;
    int parse_errors;
    struct srv_req reqs[SRV_MAX_REQS];
    int n_reqs;
    bool stopped;
};

struct srv_conn {
    uv_tcp_t tcp;
    struct srv *srv;
    struct queue link;
    int id;
    llhttp_t parser;
    char *raw; /* owned: every byte received */
    size_t raw_len, raw_cap;
    size_t msg_start; /* offset in raw where the current request began */
    char url[SRV_URL_MAX];
    size_t url_len;
    char *body; /* owned until handed to a srv_req */
    size_t body_len, body_cap;
    int n_reqs;
    bool closing;
};

struct srv_write {
    uv_write_t req;
    struct srv_conn *c;
    char *owned;
    bool close_after;
};

static inline void grow_append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = *cap ? *cap : 1024;
        while (nc < *len + n + 1)
            nc *= 2;
        char *nb = realloc(*buf, nc);
        if (nb == NULL)
            abort();
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static inline int sv_on_message_begin(llhttp_t *p)
{
    struct srv_conn *c = p->data;
    c->url_len = 0;
    c->url[0] = '\0';
    c->body_len = 0;
    return 0;
}

static inline int sv_on_url(llhttp_t *p, const char *at, size_t len)
{
    struct srv_conn *c = p->data;
    if (len > SRV_URL_MAX - 1 - c->url_len)
        len = SRV_URL_MAX - 1 - c->url_len;
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = '\0';
    return 0;
}

static inline int sv_on_body(llhttp_t *p, const char *at, size_t len)
{
    struct srv_conn *c = p->data;
    grow_append(&c->body, &c->body_len, &c->body_cap, at, len);
    return 0;
}

static inline int sv_on_message_complete(llhttp_t *p)
{
    /* Stop at the end of each request so its bytes can be told from the next one's. */
    return HPE_PAUSED;
}

static const llhttp_settings_t sv_settings = {
    .on_message_begin = sv_on_message_begin,
    .on_url = sv_on_url,
    .on_body = sv_on_body,
    .on_message_complete = sv_on_message_complete,
};

static inline void sv_conn_closed(uv_handle_t *h)
{
    struct srv_conn *c = h->data;
    c->srv->open--;
    c->srv->closed++;
    free(c->raw);
    free(c->body);
    free(c);
}

static inline void srv_close_conn(struct srv_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    queue_remove(&c->link);
    uv_close((uv_handle_t *)&c->tcp, sv_conn_closed);
}

static inline void sv_write_cb(uv_write_t *w, int status)
{
    struct srv_write *sw = container_of(w, struct srv_write, req);
    if (sw->close_after)
        srv_close_conn(sw->c);
    free(sw->owned);
    free(sw);
}

/* Writes data (copied unless borrow) and optionally closes the connection once it is out. */
static inline void srv_send_ex(struct srv_conn *c, const char *data, size_t len, bool borrow,
                               bool close_after)
{
    struct srv_write *sw;
    uv_buf_t buf;
    if (c->closing)
        return;
    sw = calloc(1, sizeof(*sw));
    if (sw == NULL)
        abort();
    sw->c = c;
    sw->close_after = close_after;
    if (borrow) {
        buf = uv_buf_init((char *)data, (unsigned)len);
    } else {
        sw->owned = malloc(len ? len : 1);
        if (sw->owned == NULL)
            abort();
        memcpy(sw->owned, data, len);
        buf = uv_buf_init(sw->owned, (unsigned)len);
    }
    if (uv_write(&sw->req, (uv_stream_t *)&c->tcp, &buf, 1, sv_write_cb) != 0) {
        free(sw->owned);
        free(sw);
        srv_close_conn(c);
    }
}

static inline void srv_send(struct srv_conn *c, const char *s)
{
    srv_send_ex(c, s, strlen(s), false, false);
}

static inline void srv_sendf(struct srv_conn *c, bool close_after, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf))
        abort();
    srv_send_ex(c, buf, (size_t)n, false, close_after);
}

/* Records the request that just ended at raw offset end and hands it to the handler. */
static inline void sv_request(struct srv_conn *c, size_t end)
{
    struct srv *s = c->srv;
    struct srv_req *q;
    size_t head_end = end;
    if (s->n_reqs == SRV_MAX_REQS) {
        srv_close_conn(c);
        return;
    }
    for (size_t i = c->msg_start; i + 4 <= end; i++) {
        if (memcmp(c->raw + i, "\r\n\r\n", 4) == 0) {
            head_end = i + 4;
            break;
        }
    }
    q = &s->reqs[s->n_reqs++];
    memset(q, 0, sizeof(*q));
    q->conn_id = c->id;
    q->index = c->n_reqs++;
    snprintf(q->method, sizeof(q->method), "%s",
             llhttp_method_name((llhttp_method_t)c->parser.method));
    memcpy(q->url, c->url, c->url_len + 1);
    q->head = strndup(c->raw + c->msg_start, head_end - c->msg_start);
    q->body = c->body;
    q->body_len = c->body_len;
    c->body = NULL;
    c->body_len = c->body_cap = 0;
    c->msg_start = end;
    s->handler(s, c, q);
}

static inline void sv_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slab[64 * 1024];
    buf->base = slab;
    buf->len = sizeof(slab);
}

static inline void sv_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct srv_conn *c = stream->data;
    const char *data;
    size_t len;
    if (nread == 0)
        return;
    if (nread < 0) {
        srv_close_conn(c);
        return;
    }
    if (c->closing)
        return;
    grow_append(&c->raw, &c->raw_len, &c->raw_cap, buf->base, (size_t)nread);
    data = c->raw + c->raw_len - (size_t)nread;
    len = (size_t)nread;
    while (len > 0 && !c->closing) {
        llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
        if (e == HPE_OK)
            break;
        if (e == HPE_PAUSED) {
            size_t used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
            data += used;
            len -= used;
            llhttp_resume(&c->parser);
            sv_request(c, (size_t)(data - c->raw));
            /* The handler may have made raw grow? No: only reads append to it. */
            continue;
        }
        c->srv->parse_errors++;
        srv_close_conn(c);
        break;
    }
}

static inline void sv_on_connection(uv_stream_t *server, int status)
{
    struct srv *s = server->data;
    struct srv_conn *c;
    if (status != 0)
        return;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        abort();
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    c->id = ++s->accepts;
    s->open++;
    if (s->open > s->max_open)
        s->max_open = s->open;
    queue_insert_tail(&s->conns, &c->link);
    llhttp_init(&c->parser, HTTP_REQUEST, &sv_settings);
    c->parser.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, sv_alloc, sv_read);
}

static inline int srv_start(struct srv *s, uv_loop_t *loop, srv_handler handler, void *data)
{
    struct sockaddr_in addr;
    struct sockaddr_storage name;
    int namelen = sizeof(name);
    int err;
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->handler = handler;
    s->data = data;
    queue_init(&s->conns);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    err = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (err == 0)
        err = uv_listen((uv_stream_t *)&s->listener, 64, sv_on_connection);
    if (err == 0)
        err = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&name, &namelen);
    if (err == 0)
        s->port = ntohs(((struct sockaddr_in *)&name)->sin_port);
    return err;
}

/* Stops listening and closes every connection. */
static inline void srv_stop(struct srv *s)
{
    if (s->loop == NULL || s->stopped)
        return;
    s->stopped = true;
    uv_close((uv_handle_t *)&s->listener, NULL);
    while (!queue_empty(&s->conns))
        srv_close_conn(container_of(queue_head(&s->conns), struct srv_conn, link));
}

static inline void srv_free(struct srv *s)
{
    for (int i = 0; i < s->n_reqs; i++) {
        free(s->reqs[i].head);
        free(s->reqs[i].body);
    }
    s->n_reqs = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Per-test environment: loop, pool, client, servers, requests, watchdog */

#define ENV_MAX_REQS 8
#define ENV_MAX_TIMERS 16

struct env;

struct xreq {
    struct proto_http_req r;
    struct env *env;
    int done; /* on_done calls */
    int err;
    uint64_t started_at, done_at;
    /* Response body accounting for on_body consumers. */
    uint64_t body_bytes;
    uint64_t hash;
    int n_body, n_empty_body, n_pause, n_resume;
    bool is_paused;
    int n_body_while_paused; /* on_body calls between a pause and its resume */
    int pause_mode;          /* 0: never pause; 1: pause on every on_body; 2: only on the first */
    uint64_t resume_ms;      /* how long a pause lasts */
    uv_timer_t resume_timer;
    uv_idle_t resume_idle; /* resume_ms == 0: resume on the next loop iteration */
    /* What to do when done (e.g. start the next request). */
    void (*then)(struct xreq *x);
};

struct env {
    uv_loop_t loop;
    struct loop_ctx ctx;
    struct proto_client cl;
    struct srv srv, srv2;
    uv_timer_t watchdog;
    uv_handle_t *timers[ENV_MAX_TIMERS];
    int n_timers;
    struct xreq *reqs[ENV_MAX_REQS];
    int n_reqs;
    int n_done;
    int expect_done;
    bool finished;
    bool timed_out;
};

static inline void env_finish(struct env *e);

static inline void on_watchdog(uv_timer_t *t)
{
    struct env *e = t->data;
    e->timed_out = true;
    fprintf(stderr, "watchdog: test stalled, aborting\n");
    for (int i = 0; i < e->n_reqs; i++)
        if (e->reqs[i]->done == 0)
            proto_http_abort(&e->reqs[i]->r, UV_ETIMEDOUT);
    env_finish(e);
}

static inline void env_init(struct env *e)
{
    memset(e, 0, sizeof(*e));
    if (getenv("OCISYNC_TEST_DEBUG") != NULL)
        ocisync__debug = 1;
    CHECK_INT(uv_loop_init(&e->loop), 0);
    loop_ctx_init(&e->ctx, &e->loop);
    proto_client_init(&e->cl, &e->ctx);
    e->cl.idle_timeout_ms = IDLE_TIMEOUT_MS;
    uv_timer_init(&e->loop, &e->watchdog);
    e->watchdog.data = e;
    uv_timer_start(&e->watchdog, on_watchdog, WATCHDOG_MS, 0);
}

static inline void env_timer(struct env *e, uv_timer_t *t, void *data)
{
    uv_timer_init(&e->loop, t);
    t->data = data;
    e->timers[e->n_timers++] = (uv_handle_t *)t;
}

static inline void env_idle(struct env *e, uv_idle_t *t, void *data)
{
    uv_idle_init(&e->loop, t);
    t->data = data;
    e->timers[e->n_timers++] = (uv_handle_t *)t;
}

/* Everything expected is done: close the pool, the servers and the timers. */
static inline void env_finish(struct env *e)
{
    if (e->finished)
        return;
    e->finished = true;
    loop_ctx_close(&e->ctx);
    srv_stop(&e->srv);
    srv_stop(&e->srv2);
    uv_close((uv_handle_t *)&e->watchdog, NULL);
    for (int i = 0; i < e->n_timers; i++)
        uv_close(e->timers[i], NULL);
}

static inline void x_on_done(struct proto_http_req *r, int err)
{
    struct xreq *x = container_of(r, struct xreq, r);
    struct env *e = x->env;
    x->done++;
    x->err = err;
    x->done_at = uv_now(&e->loop);
    if (x->then != NULL)
        x->then(x);
    if (++e->n_done == e->expect_done)
        env_finish(e);
}

static inline void x_on_resume_timer(uv_timer_t *t)
{
    struct xreq *x = t->data;
    x->n_resume++;
    x->is_paused = false;
    proto_http_resume(&x->r);
}

/*
 * (Not a 0 ms timer: libuv 1.44 runs a timer re-armed with 0 from its own
 * callback again within the same pass, which never ends if the exchange
 * livelocks.)
 */
static inline void x_on_resume_idle(uv_idle_t *t)
{
    struct xreq *x = t->data;
    uv_idle_stop(t);
    x->n_resume++;
    x->is_paused = false;
    proto_http_resume(&x->r);
}

static inline int x_on_body(struct proto_http_req *r, const char *data, size_t len)
{
    struct xreq *x = container_of(r, struct xreq, r);
    x->n_body++;
    if (x->is_paused)
        x->n_body_while_paused++;
    if (len == 0)
        x->n_empty_body++;
    x->body_bytes += len;
    x->hash = fnv1a(x->hash, data, len);
    if (x->pause_mode == 1 || (x->pause_mode == 2 && x->n_body == 1)) {
        x->n_pause++;
        x->is_paused = true;
        if (x->resume_ms == 0)
            uv_idle_start(&x->resume_idle, x_on_resume_idle);
        else
            uv_timer_start(&x->resume_timer, x_on_resume_timer, x->resume_ms, 0);
        return PROTO_PAUSE;
    }
    return 0;
}

static inline char *srv_url(struct srv *s, const char *path)
{
    static char buf[4][256];
    static int i;
    char *b = buf[i++ % 4];
    snprintf(b, sizeof(buf[0]), "http://127.0.0.1:%d%s", s->port, path);
    return b;
}

/* Prepares a request on e; the caller sets its body and callbacks, then calls x_start. */
static inline void x_init(struct env *e, struct xreq *x, const char *method, const char *url)
{
    memset(x, 0, sizeof(*x));
    x->env = e;
    x->hash = FNV_INIT;
    CHECK_INT(proto_http_req_init(&x->r, &e->cl, method, url), 0);
    x->r.on_done = x_on_done;
    x->r.collect_max = 1024 * 1024;
    env_timer(e, &x->resume_timer, x);
    env_idle(e, &x->resume_idle, x);
    e->reqs[e->n_reqs++] = x;
}

static inline void x_start(struct xreq *x)
{
    x->started_at = uv_now(&x->env->loop);
    int err = proto_http_start(&x->r);
    CHECK_INT(err, 0);
    if (err != 0) {
        /* on_done will not run: count it so the test can end. */
        x->done++;
        x->err = err;
        if (++x->env->n_done == x->env->expect_done)
            env_finish(x->env);
    }
}

/* Runs the loop to the end and checks that everything closed. */
static inline void env_run(struct env *e)
{
    uv_run(&e->loop, UV_RUN_DEFAULT);
    CHECK(e->finished);
    CHECK(!e->timed_out);
    proto_client_dispose(&e->cl);
    loop_ctx_dispose(&e->ctx);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&e->loop), 0);
    if (e->srv.loop != NULL)
        CHECK_INT(e->srv.open, 0);
    if (e->srv2.loop != NULL)
        CHECK_INT(e->srv2.open, 0);
}

static inline void env_free(struct env *e)
{
    for (int i = 0; i < e->n_reqs; i++)
        proto_http_req_dispose(&e->reqs[i]->r);
    srv_free(&e->srv);
    srv_free(&e->srv2);
}

/* ------------------------------------------------------------------------------------------ */
/* A server on a thread of its own, for tests that call a blocking library function */

struct srv_thread {
    uv_loop_t loop;
    struct srv srv;
    uv_async_t stop;
    uv_thread_t tid;
};

static inline void srv_thread_on_stop_(uv_async_t *a)
{
    struct srv_thread *t = a->data;
    srv_stop(&t->srv);
    uv_close((uv_handle_t *)a, NULL);
}

static inline void srv_thread_run_(void *arg)
{
    struct srv_thread *t = arg;
    uv_run(&t->loop, UV_RUN_DEFAULT);
}

/* Starts a server answering with handler on a thread of its own. */
static inline void srv_thread_start(struct srv_thread *t, srv_handler handler)
{
    memset(t, 0, sizeof(*t));
    CHECK_INT(uv_loop_init(&t->loop), 0);
    CHECK_INT(srv_start(&t->srv, &t->loop, handler, t), 0);
    CHECK_INT(uv_async_init(&t->loop, &t->stop, srv_thread_on_stop_), 0);
    t->stop.data = t;
    CHECK_INT(uv_thread_create(&t->tid, srv_thread_run_, t), 0);
}

/* Stops the server and its thread; its requests may be read after (then srv_free). */
static inline void srv_thread_stop(struct srv_thread *t)
{
    uv_async_send(&t->stop);
    uv_thread_join(&t->tid);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&t->loop), 0);
}

#endif
