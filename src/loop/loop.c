#include "loop/internal.h"

#include "common/log.h"
#include "ocisync.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_MAX_CONNS 16
#define DEFAULT_CONNECT_TIMEOUT_MS 30000
#define DEFAULT_POOL_IDLE_MS 30000

static void conn_close(struct loop_conn *c);
static void start_connect(struct loop_conn *c);
static void serve_waiters(struct loop_host *h);
static int open_conn(struct loop_ctx *ctx, struct loop_host *h, struct loop_conn_req *req);

void loop_ctx_init(struct loop_ctx *ctx, uv_loop_t *uv)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->uv = uv;
    queue_init(&ctx->hosts);
    queue_init(&ctx->delays);
    ctx->max_conns_per_host = DEFAULT_MAX_CONNS;
    ctx->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    ctx->pool_idle_ms = DEFAULT_POOL_IDLE_MS;
}

static void arm_delay_timer(struct loop_ctx *ctx);

void loop_ctx_close(struct loop_ctx *ctx)
{
    struct queue *q;
    ctx->closing = true;
    /* Backoffs end now: what waits on them finds the context closing and gives up. */
    queue_foreach(q, &ctx->delays)
    {
        container_of(q, struct loop_delay, link)->due = 0;
    }
    arm_delay_timer(ctx);
    queue_foreach(q, &ctx->hosts)
    {
        struct loop_host *h = container_of(q, struct loop_host, link);
        /* Only idle connections are the pool's own; lent ones close when released. */
        while (!queue_empty(&h->idle)) {
            struct loop_conn *c = container_of(queue_head(&h->idle), struct loop_conn, link);
            conn_close(c);
        }
    }
}

/*
 * Ends one thing in flight with UV_ECANCELED: a request waiting for a
 * connection, a connection being set up, or an exchange on a lent one.
 * Returns false when nothing is left. Callbacks may change every list, so
 * the caller starts over after each.
 */
static bool abort_one(struct loop_ctx *ctx)
{
    struct queue *q, *cq;
    queue_foreach(q, &ctx->hosts)
    {
        struct loop_host *h = container_of(q, struct loop_host, link);
        if (!queue_empty(&h->waiters)) {
            struct loop_conn_req *req =
                container_of(queue_head(&h->waiters), struct loop_conn_req, link);
            queue_remove(&req->link);
            req->queued = false;
            snprintf(req->detail, sizeof(req->detail), "stopped");
            req->cb(req, NULL, UV_ECANCELED);
            return true;
        }
        queue_foreach(cq, &h->all)
        {
            struct loop_conn *c = container_of(cq, struct loop_conn, all_link);
            if (c->aborted)
                continue;
            c->aborted = true;
            if ((c->state == LOOP_CONN_RESOLVING || c->state == LOOP_CONN_CONNECTING) &&
                c->req != NULL) {
                loop__conn_failed(c, UV_ECANCELED, "stopped");
                return true;
            }
            if (c->state == LOOP_CONN_ACTIVE && c->owner != NULL) {
                loop_conn_read_stop(c);
                c->owner->on_error(c, UV_ECANCELED);
                return true;
            }
        }
    }
    return false;
}

static void abort_now(struct loop_delay *d)
{
    struct loop_ctx *ctx = container_of(d, struct loop_ctx, abort_delay);
    while (abort_one(ctx))
        ;
}

void loop_ctx_abort(struct loop_ctx *ctx)
{
    loop_ctx_close(ctx);
    if (!ctx->abort_delay.armed)
        loop_delay_start(ctx, &ctx->abort_delay, 0, abort_now);
}

static void on_delay_timer_closed(uv_handle_t *h)
{
    free(h);
}

void loop_ctx_dispose(struct loop_ctx *ctx)
{
    ctx->closing = true;
    if (ctx->delay_timer != NULL) {
        uv_close((uv_handle_t *)ctx->delay_timer, on_delay_timer_closed);
        ctx->delay_timer = NULL;
    }
    while (!queue_empty(&ctx->hosts)) {
        struct loop_host *h = container_of(queue_head(&ctx->hosts), struct loop_host, link);
        while (!queue_empty(&h->all)) {
            struct loop_conn *c = container_of(queue_head(&h->all), struct loop_conn, all_link);
            conn_close(c);
        }
        queue_remove(&h->link);
        loop_tls_config_unref(h->tls);
        free(h);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Delays */

static void on_delay_timer(uv_timer_t *t)
{
    struct loop_ctx *ctx = t->data;
    uint64_t now = uv_now(ctx->uv);
    while (!queue_empty(&ctx->delays)) {
        struct loop_delay *d = container_of(queue_head(&ctx->delays), struct loop_delay, link);
        if (d->due > now)
            break;
        queue_remove(&d->link);
        d->armed = false;
        d->cb(d);
    }
    arm_delay_timer(ctx);
}

static void arm_delay_timer(struct loop_ctx *ctx)
{
    struct loop_delay *first;
    uint64_t now;
    if (ctx->delay_timer == NULL)
        return;
    if (queue_empty(&ctx->delays)) {
        uv_timer_stop(ctx->delay_timer);
        return;
    }
    first = container_of(queue_head(&ctx->delays), struct loop_delay, link);
    now = uv_now(ctx->uv);
    uv_timer_start(ctx->delay_timer, on_delay_timer, first->due > now ? first->due - now : 0, 0);
}

void loop_delay_start(struct loop_ctx *ctx, struct loop_delay *d, uint64_t ms, loop_delay_cb cb)
{
    struct queue *q;
    if (d->armed)
        loop_delay_cancel(d);
    if (ctx->delay_timer == NULL) {
        ctx->delay_timer = malloc(sizeof(*ctx->delay_timer));
        if (ctx->delay_timer == NULL)
            abort(); /* a few bytes; nothing sensible to do without them */
        uv_timer_init(ctx->uv, ctx->delay_timer);
        ctx->delay_timer->data = ctx;
    }
    d->cb = cb;
    d->due = ctx->closing ? 0 : uv_now(ctx->uv) + ms;
    d->armed = true;
    /* Keep the list sorted by due time; it is short (one entry per waiting request). */
    queue_foreach(q, &ctx->delays)
    {
        if (container_of(q, struct loop_delay, link)->due > d->due)
            break;
    }
    queue_insert_tail(q, &d->link);
    arm_delay_timer(ctx);
}

void loop_delay_cancel(struct loop_delay *d)
{
    if (!d->armed)
        return;
    queue_remove(&d->link);
    d->armed = false;
}

bool loop_host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

static struct loop_host *find_host(struct loop_ctx *ctx, const char *scheme, const char *host,
                                   int port, struct loop_tls_config *tls, bool create)
{
    struct queue *q;
    queue_foreach(q, &ctx->hosts)
    {
        struct loop_host *h = container_of(q, struct loop_host, link);
        if (h->port == port && h->tls == tls && strcmp(h->scheme, scheme) == 0 &&
            strcasecmp(h->host, host) == 0)
            return h;
    }
    if (!create)
        return NULL;
    if (strlen(scheme) >= sizeof(((struct loop_host *)0)->scheme) || strlen(host) >= LOOP_HOST_MAX)
        return NULL;
    struct loop_host *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    strcpy(h->scheme, scheme);
    strcpy(h->host, host);
    h->port = port;
    h->ctx = ctx;
    h->tls = tls;
    if (tls != NULL)
        loop_tls_config_ref(tls);
    queue_init(&h->idle);
    queue_init(&h->waiters);
    queue_init(&h->all);
    queue_insert_tail(&ctx->hosts, &h->link);
    return h;
}

static struct loop_ctx *conn_ctx(struct loop_conn *c)
{
    return c->ctx;
}

/* ------------------------------------------------------------------------------------------ */
/* Connection lifetime */

static void maybe_free(struct loop_conn *c)
{
    if (c->n_handles > 0 || c->gai_pending)
        return;
    loop__tls_free(c);
    if (c->addrs != NULL)
        uv_freeaddrinfo(c->addrs);
    free(c->rbuf);
    free(c);
}

static void on_handle_closed(uv_handle_t *handle)
{
    struct loop_conn *c = handle->data;
    c->n_handles--;
    maybe_free(c);
}

/*
 * Takes c out of its host's books at once, so the host can be freed or a
 * new connection started, and lets the handles close in their own time.
 */
static void conn_close(struct loop_conn *c)
{
    if (c->state == LOOP_CONN_CLOSING)
        return;
    LOG_DEBUG("conn %p to %s:%d closed after %u exchanges", (void *)c, c->host->host, c->host->port,
              c->uses);
    bool was_idle = c->state == LOOP_CONN_IDLE;
    c->state = LOOP_CONN_CLOSING;
    c->owner = NULL;
    if (was_idle)
        queue_remove(&c->link);
    queue_remove(&c->all_link);
    c->host->n_conns--;
    c->host = NULL;
    if (c->gai_pending)
        uv_cancel((uv_req_t *)&c->gai);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->deliver, on_handle_closed);
}

void loop__conn_close(struct loop_conn *c)
{
    conn_close(c);
}

/* Ends a connection attempt: hands the error (and why, if known) to its request, if any. */
void loop__conn_failed(struct loop_conn *c, int err, const char *detail)
{
    struct loop_conn_req *req = c->req;
    struct loop_host *h = c->host;
    c->req = NULL;
    conn_close(c);
    if (req != NULL) {
        req->pending = NULL;
        snprintf(req->detail, sizeof(req->detail), "%s", detail != NULL ? detail : "");
        req->cb(req, NULL, err);
    }
    /* Other waiters get their own attempt; a dead host fails each of them in turn. */
    serve_waiters(h);
}

static void connect_failed(struct loop_conn *c, int err)
{
    loop__conn_failed(c, err, NULL);
}

/* TCP is up: start TLS if the host wants it, else the connection is ready. */
static void connect_succeeded(struct loop_conn *c)
{
    int err;
    if (c->addrs != NULL) {
        uv_freeaddrinfo(c->addrs);
        c->addrs = c->next_addr = NULL;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    LOG_DEBUG("conn %p connected to %s:%d", (void *)c, c->host->host, c->host->port);
    if (c->host->tls != NULL) {
        /* The connect timer keeps running: it covers the handshake too. */
        c->tls = c->host->tls;
        loop_tls_config_ref(c->tls);
        err = loop__tls_start(c, c->host->host);
        if (err != 0)
            connect_failed(c, err);
        return;
    }
    loop__conn_ready(c);
}

void loop__conn_ready(struct loop_conn *c)
{
    struct loop_conn_req *req = c->req;
    uv_timer_stop(&c->timer);
    c->req = NULL;
    if (req == NULL) {
        /* Its request was withdrawn; keep the connection for someone else. */
        loop_conn_release(c, true);
        return;
    }
    c->state = LOOP_CONN_ACTIVE;
    req->pending = NULL;
    req->cb(req, c, 0);
}

static void on_timer(uv_timer_t *t)
{
    struct loop_conn *c = t->data;
    switch (c->state) {
    case LOOP_CONN_RESOLVING:
    case LOOP_CONN_CONNECTING:
        connect_failed(c, UV_ETIMEDOUT);
        break;
    case LOOP_CONN_IDLE:
        conn_close(c);
        break;
    case LOOP_CONN_ACTIVE:
        if (c->owner != NULL)
            c->owner->on_error(c, UV_ETIMEDOUT);
        break;
    case LOOP_CONN_CLOSING:
        break;
    }
}

static void on_connect(uv_connect_t *creq, int status)
{
    struct loop_conn *c = creq->data;
    if (c->state == LOOP_CONN_CLOSING)
        return;
    if (status == 0) {
        connect_succeeded(c);
        return;
    }
    LOG_DEBUG("conn %p: connect to %s:%d failed: %s", (void *)c, c->host->host, c->host->port,
              uv_strerror(status));
    if (c->next_addr != NULL) {
        /* The socket is spent; a fresh handle tries the next address. */
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
        uv_tcp_init(c->tcp.loop, &c->tcp);
        c->tcp.data = c;
        c->n_handles++;
        start_connect(c);
        return;
    }
    connect_failed(c, status);
}

static void start_connect(struct loop_conn *c)
{
    int err;
    struct addrinfo *ai = c->next_addr;
    c->next_addr = ai->ai_next;
    c->state = LOOP_CONN_CONNECTING;
    c->connect_req.data = c;
    err = uv_tcp_connect(&c->connect_req, &c->tcp, ai->ai_addr, on_connect);
    if (err != 0) {
        if (c->next_addr != NULL) {
            start_connect(c);
            return;
        }
        connect_failed(c, err);
    }
}

static void on_resolved(uv_getaddrinfo_t *gai, int status, struct addrinfo *res)
{
    struct loop_conn *c = gai->data;
    c->gai_pending = false;
    if (c->state == LOOP_CONN_CLOSING) {
        if (res != NULL)
            uv_freeaddrinfo(res);
        maybe_free(c);
        return;
    }
    if (status != 0 || res == NULL) {
        LOG_DEBUG("conn %p: cannot resolve %s: %s", (void *)c, c->host->host, uv_strerror(status));
        connect_failed(c, status != 0 ? status : UV_EAI_NONAME);
        return;
    }
    c->addrs = c->next_addr = res;
    start_connect(c);
}

static struct loop_conn *conn_new(struct loop_ctx *ctx, struct loop_host *h)
{
    struct loop_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->rbuf = malloc(LOOP_READ_BUF_SIZE);
    if (c->rbuf == NULL) {
        free(c);
        return NULL;
    }
    uv_tcp_init(ctx->uv, &c->tcp);
    uv_timer_init(ctx->uv, &c->timer);
    uv_idle_init(ctx->uv, &c->deliver);
    c->tcp.data = c;
    c->timer.data = c;
    c->deliver.data = c;
    c->n_handles = 3;
    c->host = h;
    c->ctx = ctx;
    c->state = LOOP_CONN_RESOLVING;
    queue_init(&c->link);
    queue_insert_tail(&h->all, &c->all_link);
    h->n_conns++;
    return c;
}

/* Starts a new connection for req; req->cb will report the outcome. */
static int open_conn(struct loop_ctx *ctx, struct loop_host *h, struct loop_conn_req *req)
{
    char port[16];
    struct addrinfo hints;
    struct loop_conn *c = conn_new(ctx, h);
    int err;
    if (c == NULL)
        return UV_ENOMEM;
    c->req = req;
    req->pending = c;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    if (loop_host_is_loopback(h->host))
        hints.ai_flags = 0; /* loopback must work even with no configured address */
    snprintf(port, sizeof(port), "%d", h->port);
    uv_timer_start(&c->timer, on_timer, ctx->connect_timeout_ms, 0);
    c->gai.data = c;
    c->gai_pending = true;
    err = uv_getaddrinfo(ctx->uv, &c->gai, on_resolved, h->host, port, &hints);
    if (err != 0) {
        c->gai_pending = false;
        c->req = NULL;
        req->pending = NULL;
        conn_close(c);
        return err;
    }
    return 0;
}

int loop_set_host_limit(struct loop_ctx *ctx, const char *host, int port, unsigned max)
{
    size_t i;
    for (i = 0; i < ctx->n_limits; i++)
        if (ctx->limits[i].port == port && strcmp(ctx->limits[i].host, host) == 0)
            break;
    if (i == ctx->n_limits) {
        if (i == LOOP_MAX_HOST_LIMITS)
            return UV_ENOSPC;
        ctx->n_limits++;
        snprintf(ctx->limits[i].host, sizeof(ctx->limits[i].host), "%s", host);
        ctx->limits[i].port = port;
    }
    ctx->limits[i].max = max > 0 ? max : 1;
    return 0;
}

/* The most connections h may have. */
static unsigned host_max(const struct loop_host *h)
{
    for (size_t i = 0; i < h->ctx->n_limits; i++)
        if (h->ctx->limits[i].port == h->port && strcmp(h->ctx->limits[i].host, h->host) == 0)
            return h->ctx->limits[i].max;
    return h->ctx->max_conns_per_host;
}

/* Opens connections for queued requests while the host is below its limit. */
static void serve_waiters(struct loop_host *h)
{
    while (h != NULL && !queue_empty(&h->waiters) && h->n_conns < host_max(h) && !h->ctx->closing) {
        struct loop_conn_req *req =
            container_of(queue_head(&h->waiters), struct loop_conn_req, link);
        queue_remove(&req->link);
        req->queued = false;
        int err = open_conn(h->ctx, h, req);
        if (err != 0)
            req->cb(req, NULL, err);
    }
}

/*
 * Whether an idle connection can still carry a request: nothing (not even
 * an EOF) waiting on its socket. Checked right before reuse, as curl does,
 * because a server may close a kept-alive connection just after answering,
 * and the next request can be handed the connection in the same loop turn.
 */
static bool conn_alive(struct loop_conn *c)
{
    uv_os_fd_t fd;
    char b;
    ssize_t n;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
        return false;
    n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK;
    /* 0: EOF. More bytes: nothing is expected between exchanges, so the stream is unusable. */
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Pool */

int loop_conn_acquire(struct loop_ctx *ctx, const char *scheme, const char *host, int port,
                      struct loop_tls_config *tls, struct loop_conn_req *req, loop_conn_cb cb)
{
    struct loop_host *h;
    if (ctx->closing)
        return UV_ECANCELED;
    if (strcmp(scheme, "https") == 0 && tls == NULL)
        return OCISYNC_ETLSCONFIG;
    if (strcmp(scheme, "https") != 0)
        tls = NULL;
    h = find_host(ctx, scheme, host, port, tls, true);
    if (h == NULL)
        return UV_ENOMEM;
    memset(req, 0, sizeof(*req));
    req->cb = cb;
    req->host = h;
    queue_init(&req->link);
    while (!queue_empty(&h->idle)) {
        struct loop_conn *c = container_of(queue_head(&h->idle), struct loop_conn, link);
        if (!conn_alive(c)) {
            /* The server closed it and the loop has not read the EOF yet. */
            LOG_DEBUG("conn %p to %s:%d was closed by the server while idle", (void *)c, h->host,
                      h->port);
            conn_close(c);
            continue;
        }
        queue_remove(&c->link);
        uv_timer_stop(&c->timer);
        loop_conn_read_stop(c);
        c->state = LOOP_CONN_ACTIVE;
        cb(req, c, 0);
        return 0;
    }
    if (h->n_conns < host_max(h))
        return open_conn(ctx, h, req);
    req->queued = true;
    queue_insert_tail(&h->waiters, &req->link);
    return 0;
}

void loop_conn_req_cancel(struct loop_conn_req *req)
{
    if (req->queued) {
        queue_remove(&req->link);
        req->queued = false;
    }
    if (req->pending != NULL) {
        /* The connection goes on being set up and joins the pool if it succeeds. */
        req->pending->req = NULL;
        req->pending = NULL;
    }
}

void loop_conn_set_owner(struct loop_conn *c, const struct loop_conn_owner *owner, void *data)
{
    c->owner = owner;
    c->owner_data = data;
}

static void on_idle_read(struct loop_conn *c);

void loop_conn_release(struct loop_conn *c, bool reusable)
{
    struct loop_host *h = c->host;
    struct loop_ctx *ctx = conn_ctx(c);
    if (c->state == LOOP_CONN_CLOSING)
        return;
    c->owner = NULL;
    c->owner_data = NULL;
    uv_timer_stop(&c->timer);
    if (!reusable || c->writing || ctx->closing) {
        conn_close(c);
        /* A slot opened: a waiter may connect now. */
        serve_waiters(h);
        return;
    }
    c->uses++;
    if (!queue_empty(&h->waiters)) {
        struct loop_conn_req *req =
            container_of(queue_head(&h->waiters), struct loop_conn_req, link);
        queue_remove(&req->link);
        req->queued = false;
        loop_conn_read_stop(c);
        c->state = LOOP_CONN_ACTIVE;
        req->cb(req, c, 0);
        return;
    }
    c->state = LOOP_CONN_IDLE;
    queue_insert_tail(&h->idle, &c->link);
    /* Reading while idle notices a server that closes the connection. */
    on_idle_read(c);
    uv_timer_start(&c->timer, on_timer, ctx->pool_idle_ms, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* I/O */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct loop_conn *c = handle->data;
    buf->base = c->rbuf;
    buf->len = LOOP_READ_BUF_SIZE;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct loop_conn *c = stream->data;
    if (nread == 0 || c->state == LOOP_CONN_CLOSING)
        return;
    if (c->ssl != NULL) {
        loop__tls_on_read(c, nread, buf->base);
        return;
    }
    if (c->state == LOOP_CONN_IDLE) {
        /* Data or EOF on an idle connection: the server is done with it. */
        conn_close(c);
        return;
    }
    if (c->owner == NULL) {
        loop__sock_read_stop(c);
        return;
    }
    if (nread < 0) {
        loop_conn_read_stop(c);
        c->owner->on_error(c, (int)nread);
        return;
    }
    c->owner->on_read(c, buf->base, (size_t)nread);
}

int loop__sock_read_start(struct loop_conn *c)
{
    int err;
    if (c->sock_reading)
        return 0;
    err = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (err == 0)
        c->sock_reading = true;
    return err;
}

void loop__sock_read_stop(struct loop_conn *c)
{
    if (!c->sock_reading)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->sock_reading = false;
}

static void on_idle_read(struct loop_conn *c)
{
    loop__sock_read_start(c);
}

int loop_conn_read_start(struct loop_conn *c)
{
    int err;
    if (c->reading)
        return 0;
    err = loop__sock_read_start(c);
    if (err != 0)
        return err;
    c->reading = true;
    if (c->ssl != NULL)
        loop__tls_read_start(c);
    return 0;
}

void loop_conn_read_stop(struct loop_conn *c)
{
    c->reading = false;
    loop__sock_read_stop(c);
    if (c->ssl != NULL)
        uv_idle_stop(&c->deliver);
}

static void on_write(uv_write_t *wreq, int status)
{
    struct loop_conn *c = wreq->data;
    c->writing = false;
    if (c->state == LOOP_CONN_CLOSING || c->owner == NULL)
        return;
    c->owner->on_write(c, status);
}

int loop_conn_write(struct loop_conn *c, const uv_buf_t *bufs, unsigned n)
{
    int err;
    if (c->writing)
        return UV_EBUSY;
    if (c->ssl != NULL)
        return loop__tls_write(c, bufs, n);
    c->write_req.data = c;
    err = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs, n, on_write);
    if (err == 0)
        c->writing = true;
    return err;
}

void loop_conn_set_timeout(struct loop_conn *c, uint64_t ms)
{
    if (ms == 0) {
        uv_timer_stop(&c->timer);
        return;
    }
    uv_timer_start(&c->timer, on_timer, ms, 0);
}
