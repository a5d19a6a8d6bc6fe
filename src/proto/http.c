/*
 * One HTTP/1.1 exchange on a pooled connection.
 *
 * The request head and body go out one write at a time: the head, then each
 * piece the body source offers (framed when chunked). The response is parsed
 * as it arrives; a consumer that returns PROTO_PAUSE stops the socket reads
 * until it calls proto_http_resume, so a slow destination slows its source
 * instead of filling memory.
 *
 * Re-entrancy: callbacks into the caller happen inside the parser. Anything
 * that would end the exchange from inside (an abort, an error) is deferred
 * until the parser has returned, so on_done never runs under a parser
 * callback and the caller may free the request in on_done.
 */
#include "proto/http.h"

#include "common/log.h"
#include "ocisync.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void on_conn(struct loop_conn_req *creq, struct loop_conn *c, int err);
static void on_conn_read(struct loop_conn *c, const char *data, size_t len);
static void on_conn_write(struct loop_conn *c, int status);
static void on_conn_error(struct loop_conn *c, int err);
static int on_h1_headers(struct proto_h1 *p);
static int on_h1_body(struct proto_h1 *p, const char *data, size_t len);
static void send_more(struct proto_http_req *r);
static void complete(struct proto_http_req *r, int err);
static int parse(struct proto_http_req *r, const char *data, size_t len);

static const struct loop_conn_owner conn_owner = {
    .on_read = on_conn_read,
    .on_write = on_conn_write,
    .on_error = on_conn_error,
};

static const struct proto_h1_cbs h1_cbs = {
    .on_headers = on_h1_headers,
    .on_body = on_h1_body,
};

void proto_client_init(struct proto_client *cl, struct loop_ctx *loop)
{
    memset(cl, 0, sizeof(*cl));
    cl->loop = loop;
    cl->low_speed_limit = PROTO_DEFAULT_LOW_SPEED;
    proto_client_set_timeout(cl, PROTO_DEFAULT_IDLE_MS);
    snprintf(cl->user_agent, sizeof(cl->user_agent), "ocisync/%s", OCISYNC_VERSION_STRING);
}

void proto_client_set_timeout(struct proto_client *cl, uint64_t ms)
{
    cl->idle_timeout_ms = ms;
    cl->total_timeout_ms = 2 * ms;
    cl->low_speed_time_ms = ms;
}

void proto_client_dispose(struct proto_client *cl)
{
    loop_tls_config_unref(cl->default_tls);
    cl->default_tls = NULL;
}

int proto_http_req_init(struct proto_http_req *r, struct proto_client *cl, const char *method,
                        const char *url)
{
    int err;
    memset(r, 0, sizeof(*r));
    r->client = cl;
    r->method = method;
    r->follow_redirects = true;
    err = proto_url_parse(url, &r->url);
    return err;
}

int proto_http_add_header(struct proto_http_req *r, const char *name, const char *value)
{
    struct proto_header *h;
    h = realloc(r->headers, (r->n_headers + 1) * sizeof(*h));
    if (h == NULL)
        return UV_ENOMEM;
    r->headers = h;
    h[r->n_headers].name = strdup(name);
    h[r->n_headers].value = strdup(value);
    if (h[r->n_headers].name == NULL || h[r->n_headers].value == NULL) {
        free(h[r->n_headers].name);
        free(h[r->n_headers].value);
        return UV_ENOMEM;
    }
    r->n_headers++;
    return 0;
}

static int mem_peek(void *arg, const char **data, size_t *len)
{
    struct proto_http_req *r = arg;
    if (r->mem_off == r->mem_len)
        return PROTO_BODY_EOF;
    *data = r->mem + r->mem_off;
    *len = r->mem_len - r->mem_off;
    return 0;
}

static void mem_consume(void *arg, size_t n)
{
    struct proto_http_req *r = arg;
    r->mem_off += n;
}

static int mem_rewind(void *arg)
{
    struct proto_http_req *r = arg;
    r->mem_off = 0;
    return 0;
}

void proto_http_set_body_mem(struct proto_http_req *r, const void *data, size_t len)
{
    r->mem = data;
    r->mem_len = len;
    r->mem_off = 0;
    r->has_body = true;
    r->body_mem = true;
    r->body.peek = mem_peek;
    r->body.consume = mem_consume;
    r->body.rewind = mem_rewind;
    r->body.arg = r;
    r->body.length = (int64_t)len;
}

void proto_http_req_dispose(struct proto_http_req *r)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    r->headers = NULL;
    r->n_headers = 0;
    free(r->authorization);
    r->authorization = NULL;
    free(r->head);
    r->head = NULL;
    free(r->resp_body);
    r->resp_body = NULL;
    free(r->error_detail);
    r->error_detail = NULL;
    proto_h1_dispose(&r->h1);
    proto_url_free(&r->url);
}

const char *proto_http_header(const struct proto_http_req *r, const char *name)
{
    if (!r->h1.headers_done)
        return NULL;
    return proto_h1_header(&r->h1, name);
}

static void set_detail(struct proto_http_req *r, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    free(r->error_detail);
    r->error_detail = strdup(buf);
}

/* ------------------------------------------------------------------------------------------ */
/* Request head */

static bool header_allowed(const char *name)
{
    /* The client writes these itself; a caller's copy would contradict the framing. */
    static const char *const own[] = {"Host", "Content-Length", "Transfer-Encoding",
                                      "Authorization", "Connection"};
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (strcasecmp(name, own[i]) == 0)
            return false;
    return true;
}

static bool value_safe(const char *v)
{
    for (; *v; v++)
        if (*v == '\r' || *v == '\n')
            return false;
    return true;
}

static int build_head(struct proto_http_req *r)
{
    char origin[LOOP_HOST_MAX + 32];
    size_t cap = 512 + strlen(r->url.path) + strlen(r->url.host);
    size_t n = 0;
    char *b;
    bool v6 = strchr(r->url.host, ':') != NULL;
    bool send_auth;

    proto_url_origin(&r->url, origin, sizeof(origin));
    /* Credentials go only to the exact origin they were issued for. */
    send_auth = r->authorization != NULL && strcmp(origin, r->auth_origin) == 0;
    for (size_t i = 0; i < r->n_headers; i++)
        cap += strlen(r->headers[i].name) + strlen(r->headers[i].value) + 4;
    if (send_auth)
        cap += strlen(r->authorization) + 20;
    free(r->head);
    r->head = b = malloc(cap);
    if (b == NULL)
        return UV_ENOMEM;
#define PUT(...) n += (size_t)snprintf(b + n, cap - n, __VA_ARGS__)
    PUT("%s %s HTTP/1.1\r\n", r->method, r->url.path);
    if ((strcmp(r->url.scheme, "http") == 0 && r->url.port == 80) ||
        (strcmp(r->url.scheme, "https") == 0 && r->url.port == 443))
        PUT("Host: %s%s%s\r\n", v6 ? "[" : "", r->url.host, v6 ? "]" : "");
    else
        PUT("Host: %s%s%s:%d\r\n", v6 ? "[" : "", r->url.host, v6 ? "]" : "", r->url.port);
    PUT("User-Agent: %s\r\n", r->client->user_agent);
    for (size_t i = 0; i < r->n_headers; i++) {
        if (!header_allowed(r->headers[i].name) || !value_safe(r->headers[i].value) ||
            !value_safe(r->headers[i].name))
            continue;
        PUT("%s: %s\r\n", r->headers[i].name, r->headers[i].value);
    }
    if (send_auth && value_safe(r->authorization))
        PUT("Authorization: %s\r\n", r->authorization);
    if (r->has_body) {
        if (r->body.length >= 0)
            PUT("Content-Length: %lld\r\n", (long long)r->body.length);
        else
            PUT("Transfer-Encoding: chunked\r\n");
    } else if (strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0 ||
               strcmp(r->method, "PATCH") == 0) {
        PUT("Content-Length: 0\r\n");
    }
    PUT("\r\n");
#undef PUT
    r->head_len = n;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Lifecycle */

static uint64_t now_ms(struct proto_http_req *r)
{
    return uv_now(r->client->loop->uv);
}

/*
 * Whether a blob's body is on its way, in either direction: its pace is the
 * low-speed limit's business, not the deadline's.
 */
static bool streaming(const struct proto_http_req *r)
{
    if (r->has_body && !r->body_mem && !r->body_done)
        return true;
    return r->on_body != NULL && r->h1.headers_done && r->status >= 200 && r->status < 300 &&
           !r->redirect_pending;
}

/* Whether the whole-exchange deadline has passed (see proto_client.total_timeout_ms). */
static bool past_deadline(struct proto_http_req *r)
{
    return r->client->total_timeout_ms != 0 && !streaming(r) &&
           now_ms(r) - r->deadline_start >= r->client->total_timeout_ms;
}

/* A new low-speed window opens now. */
static void ls_restart(struct proto_http_req *r)
{
    r->ls_start = now_ms(r);
    r->ls_bytes = 0;
    r->ls_excused = false;
}

/*
 * Counts n body bytes moved by a streamed exchange against the low-speed
 * limit. Returns 0, or OCISYNC_ETIMEOUT (detail set) when the window that
 * just ended was too slow.
 */
static int low_speed(struct proto_http_req *r, uint64_t n)
{
    const struct proto_client *cl = r->client;
    uint64_t now = now_ms(r), span;
    if (cl->low_speed_limit == 0 || cl->low_speed_time_ms == 0)
        return 0;
    r->ls_bytes += n;
    span = now - r->ls_start;
    if (span < cl->low_speed_time_ms)
        return 0;
    if (!r->ls_excused && r->ls_bytes * 1000 < cl->low_speed_limit * span) {
        set_detail(r,
                   "%s %s:%d: %llu bytes in %.1f s, below the low-speed limit of %llu bytes/s "
                   "over %llu s",
                   r->method, r->url.host, r->url.port, (unsigned long long)r->ls_bytes,
                   (double)span / 1000, (unsigned long long)cl->low_speed_limit,
                   (unsigned long long)(cl->low_speed_time_ms / 1000));
        return OCISYNC_ETIMEOUT;
    }
    ls_restart(r);
    return 0;
}

/* Re-arms the connection's timer after progress: the idle limit, capped by the total deadline. */
static void arm_timeout(struct proto_http_req *r)
{
    uint64_t ms = r->client->idle_timeout_ms;
    if (r->conn == NULL)
        return;
    if (r->client->total_timeout_ms != 0 && !streaming(r)) {
        uint64_t elapsed = now_ms(r) - r->deadline_start;
        uint64_t left =
            elapsed >= r->client->total_timeout_ms ? 1 : r->client->total_timeout_ms - elapsed;
        if (ms == 0 || left < ms)
            ms = left;
    }
    loop_conn_set_timeout(r->conn, ms);
}

static void reset_exchange(struct proto_http_req *r)
{
    r->head_sent = false;
    r->writing = false;
    r->write_len = 0;
    r->body_sent = 0;
    r->body_done = !r->has_body;
    r->body_waiting = false;
    r->paused = false;
    r->pending = NULL;
    r->pending_len = 0;
    r->got_bytes = false;
    r->body_passed = 0;
    r->status = 0;
    r->resp_len = 0;
    r->redirect_pending = false;
    r->chunked_final = false;
    r->leftover = false;
    r->deferred_err = 0;
    r->resume_requested = false;
    r->drained = 0;
    /* What failed is told of the attempt that failed last. */
    free(r->error_detail);
    r->error_detail = NULL;
}

static struct loop_tls_config *tls_for(struct proto_http_req *r)
{
    struct proto_client *cl = r->client;
    if (strcmp(r->url.scheme, "https") != 0)
        return NULL;
    if (r->tls != NULL)
        return r->tls;
    if (cl->default_tls == NULL) {
        static const struct loop_tls_opts defaults;
        char err[256];
        cl->default_tls = loop_tls_config_new(&defaults, err, sizeof(err));
        if (cl->default_tls == NULL)
            set_detail(r, "%s", err);
    }
    return cl->default_tls;
}

static int connect_exchange(struct proto_http_req *r)
{
    struct loop_tls_config *tls;
    int err;
    reset_exchange(r);
    err = build_head(r);
    if (err != 0)
        return err;
    tls = tls_for(r);
    if (strcmp(r->url.scheme, "https") == 0 && tls == NULL)
        return OCISYNC_ETLSCONFIG;
    r->state = PROTO_HTTP_CONNECTING;
    /* The query is not logged: upload locations carry state and query strings may carry tokens. */
    LOG_DEBUG("http %p: %s %s://%s:%d%.*s", (void *)r, r->method, r->url.scheme, r->url.host,
              r->url.port, (int)strcspn(r->url.path, "?"), r->url.path);
    return loop_conn_acquire(r->client->loop, r->url.scheme, r->url.host, r->url.port, tls,
                             &r->conn_req, on_conn);
}

int proto_http_start(struct proto_http_req *r)
{
    int err;
    r->started_ms = r->deadline_start = now_ms(r);
    r->redirects = 0;
    r->retries = 0;
    err = connect_exchange(r);
    if (err != 0 && r->error_detail == NULL)
        set_detail(r, "connect to %s:%d: %s", r->url.host, r->url.port, ocisync_strerror(err));
    return err;
}

/* Hands the connection back and tells the caller. Nothing touches r after on_done. */
static void complete(struct proto_http_req *r, int err)
{
    if (r->state == PROTO_HTTP_DONE || r->state == PROTO_HTTP_IDLE)
        return;
    if (r->in_parse) {
        /* Ending under a parser callback would free what the parser still uses. */
        if (r->deferred_err == 0)
            r->deferred_err = err != 0 ? err : 1;
        return;
    }
    if (r->state == PROTO_HTTP_CONNECTING)
        loop_conn_req_cancel(&r->conn_req);
    if (r->conn != NULL) {
        bool reusable = err == 0 && proto_h1_keep_alive(&r->h1) && r->body_done && !r->writing &&
                        r->pending_len == 0 && !r->leftover;
        loop_conn_read_stop(r->conn);
        loop_conn_release(r->conn, reusable);
        r->conn = NULL;
    }
    r->state = PROTO_HTTP_DONE;
    if (err != 0 && r->error_detail == NULL)
        set_detail(r, "%s %s:%d: %s", r->method, r->url.host, r->url.port, ocisync_strerror(err));
    LOG_DEBUG("http %p: done status=%d err=%s", (void *)r, r->status,
              err ? ocisync_err_name(err) : "0");
    r->on_done(r, err);
}

void proto_http_abort(struct proto_http_req *r, int err)
{
    complete(r, err != 0 ? err : UV_ECANCELED);
}

/* A connection we reused failed before it answered: the server had closed it while idle. */
static bool retry_stale(struct proto_http_req *r, int err)
{
    int rc;
    if (!r->reused_conn || r->got_bytes || r->retries > 0)
        return false;
    /* A body that cannot be rewound can still go again if none of it was consumed. */
    if (r->has_body && r->body_sent > 0 &&
        (r->body.rewind == NULL || r->body.rewind(r->body.arg) != 0))
        return false;
    LOG_DEBUG("http %p: reused connection failed (%s); retrying once on a new one", (void *)r,
              uv_err_name(err));
    r->retries++;
    loop_conn_release(r->conn, false);
    r->conn = NULL;
    rc = connect_exchange(r);
    if (rc != 0)
        complete(r, rc);
    return true;
}

static void on_conn(struct loop_conn_req *creq, struct loop_conn *c, int err)
{
    struct proto_http_req *r = container_of(creq, struct proto_http_req, conn_req);
    if (err != 0) {
        if (creq->detail[0] != '\0')
            set_detail(r, "%s", creq->detail);
        else
            set_detail(r, "connect to %s:%d: %s", r->url.host, r->url.port, ocisync_strerror(err));
        complete(r, err);
        return;
    }
    r->conn = c;
    r->reused_conn = c->uses > 0;
    r->state = PROTO_HTTP_ACTIVE;
    ls_restart(r);
    loop_conn_set_owner(c, &conn_owner, r);
    proto_h1_init(&r->h1, &h1_cbs, r, strcmp(r->method, "HEAD") == 0);
    err = loop_conn_read_start(c);
    if (err != 0) {
        complete(r, err);
        return;
    }
    arm_timeout(r);
    send_more(r);
}

/* Starts the next write if none is in flight: the head, then body pieces as the source offers them.
 */
static void send_more(struct proto_http_req *r)
{
    uv_buf_t bufs[4];
    unsigned n = 0;
    const char *data = NULL;
    size_t len = 0;
    int rc;

    if (r->writing || r->state != PROTO_HTTP_ACTIVE)
        return;
    if (!r->head_sent) {
        bufs[n++] = uv_buf_init(r->head, (unsigned)r->head_len);
    }
    if (!r->body_done) {
        rc = r->body.peek(r->body.arg, &data, &len);
        if (rc < 0) {
            complete(r, rc);
            return;
        }
        if (r->body.length >= 0) {
            int64_t left = r->body.length - r->body_sent;
            if (rc == PROTO_BODY_EOF && left > 0) {
                set_detail(r, "%s %s:%d: request body ended %lld bytes short", r->method,
                           r->url.host, r->url.port, (long long)left);
                complete(r, OCISYNC_ESIZEMISMATCH);
                return;
            }
            if ((int64_t)len > left)
                len = (size_t)left;
            if (len > UINT32_MAX / 2)
                len = UINT32_MAX / 2;
            if (len > 0)
                bufs[n++] = uv_buf_init((char *)data, (unsigned)len);
        } else if (rc == PROTO_BODY_EOF) {
            size_t k = proto_chunk_head(r->chunk_buf, 0);
            bufs[n++] = uv_buf_init(r->chunk_buf, (unsigned)k);
            r->chunked_final = true;
            len = 0;
        } else if (len > 0) {
            if (len > UINT32_MAX / 2)
                len = UINT32_MAX / 2;
            size_t k = proto_chunk_head(r->chunk_buf, len);
            bufs[n++] = uv_buf_init(r->chunk_buf, (unsigned)k);
            bufs[n++] = uv_buf_init((char *)data, (unsigned)len);
            bufs[n++] = uv_buf_init("\r\n", 2);
        }
        r->body_waiting = n == 0 || (len == 0 && !r->chunked_final && r->head_sent);
        /*
         * Waiting for our own body source (a relay whose GET is slow) is not the
         * server's silence: the source has its own timer. Re-armed when it resumes.
         */
        if (r->body_waiting && n == 0) {
            loop_conn_set_timeout(r->conn, 0);
            r->ls_excused = true;
        }
    }
    if (n == 0)
        return;
    r->write_len = len;
    rc = loop_conn_write(r->conn, bufs, n);
    if (rc != 0) {
        if (!retry_stale(r, rc))
            complete(r, rc);
        return;
    }
    r->writing = true;
}

void proto_http_body_ready(struct proto_http_req *r)
{
    if (r->state != PROTO_HTTP_ACTIVE || !r->body_waiting)
        return;
    r->body_waiting = false;
    arm_timeout(r);
    send_more(r);
}

static void on_conn_write(struct loop_conn *c, int status)
{
    struct proto_http_req *r = c->owner_data;
    r->writing = false;
    if (status != 0) {
        if (!retry_stale(r, status))
            complete(r, status);
        return;
    }
    r->head_sent = true;
    if (r->write_len > 0) {
        size_t n = r->write_len;
        r->body_sent += (int64_t)n;
        r->write_len = 0;
        r->body.consume(r->body.arg, n);
        if (!r->body_mem && (status = low_speed(r, n)) != 0) {
            complete(r, status);
            return;
        }
    }
    if (!r->body_done) {
        if (r->body.length >= 0 ? r->body_sent == r->body.length : r->chunked_final) {
            r->body_done = true;
            /* The answer to a streamed body has the whole deadline from here. */
            if (!r->body_mem)
                r->deadline_start = now_ms(r);
        }
    }
    arm_timeout(r);
    if (r->h1.message_done && r->body_done) {
        complete(r, 0);
        return;
    }
    send_more(r);
}

/* ------------------------------------------------------------------------------------------ */
/* Response */

static bool is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

static int on_h1_headers(struct proto_h1 *p)
{
    struct proto_http_req *r = p->data;
    r->status = p->status;
    if (r->deferred_err != 0)
        return UV_ECANCELED;
    if (r->follow_redirects && is_redirect(p->status) && proto_h1_header(p, "Location") != NULL) {
        r->redirect_pending = true;
        return 0;
    }
    if (r->status >= 200 && r->status < 300 && r->on_body != NULL) {
        /* The body streams from here: a fresh low-speed window. */
        ls_restart(r);
    }
    if (r->status >= 200 && r->status < 300 && r->on_headers != NULL)
        return r->on_headers(r);
    return 0;
}

/* Bytes nobody wants: dropped, up to PROTO_MAX_DRAIN an exchange. */
static int drain(struct proto_http_req *r, size_t len)
{
    r->drained += len;
    return r->drained > PROTO_MAX_DRAIN ? PROTO_DRAINED : 0;
}

static int collect(struct proto_http_req *r, const char *data, size_t len, size_t max, bool strict)
{
    if (len > max - r->resp_len) {
        if (strict)
            return OCISYNC_ETOOBIG;
        len = max - r->resp_len;
    }
    if (r->resp_len + len + 1 > r->resp_cap) {
        size_t cap = r->resp_cap ? r->resp_cap : 4096;
        while (cap < r->resp_len + len + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        char *nb = realloc(r->resp_body, cap);
        if (nb == NULL)
            return UV_ENOMEM;
        r->resp_body = nb;
        r->resp_cap = cap;
    }
    memcpy(r->resp_body + r->resp_len, data, len);
    r->resp_len += len;
    r->resp_body[r->resp_len] = '\0';
    return 0;
}

static int on_h1_body(struct proto_h1 *p, const char *data, size_t len)
{
    struct proto_http_req *r = p->data;
    int rc;
    if (r->deferred_err != 0)
        return UV_ECANCELED;
    if (r->redirect_pending)
        return drain(r, len);
    if (r->status < 200 || r->status >= 300) {
        size_t keep = PROTO_MAX_ERROR_BODY - r->resp_len;
        if (len <= keep)
            return collect(r, data, len, PROTO_MAX_ERROR_BODY, false);
        rc = collect(r, data, keep, PROTO_MAX_ERROR_BODY, false);
        return rc != 0 ? rc : drain(r, len - keep);
    }
    if (r->on_body != NULL) {
        r->body_passed += len;
        if ((rc = low_speed(r, len)) != 0)
            return rc;
        return r->on_body(r, data, len);
    }
    /* Nobody wants this body (an upload's 202, a ping's "{}"): it is read and dropped. */
    if (r->collect_max == 0)
        return drain(r, len);
    return collect(r, data, len, r->collect_max, true);
}

static void follow_redirect(struct proto_http_req *r)
{
    struct proto_url next;
    const char *loc = proto_h1_header(&r->h1, "Location");
    int err;
    err = proto_url_resolve(&r->url, loc, &next);
    if (err != 0) {
        set_detail(r, "%s %s:%d: invalid redirect Location", r->method, r->url.host, r->url.port);
        complete(r, OCISYNC_EHTTP);
        return;
    }
    if (strcmp(r->url.scheme, "https") == 0 && strcmp(next.scheme, "http") == 0 &&
        !r->allow_http_redirect) {
        proto_url_free(&next);
        set_detail(r, "%s %s:%d: refused a redirect from HTTPS to plain HTTP", r->method,
                   r->url.host, r->url.port);
        complete(r, OCISYNC_EREDIRECT);
        return;
    }
    if (++r->redirects > PROTO_MAX_REDIRECTS) {
        proto_url_free(&next);
        set_detail(r, "%s %s:%d: more than %d redirects", r->method, r->url.host, r->url.port,
                   PROTO_MAX_REDIRECTS);
        complete(r, OCISYNC_EREDIRECT);
        return;
    }
    /* 303 turns into a GET; other codes resend the same request, body included. */
    if (r->h1.status == 303 && strcmp(r->method, "HEAD") != 0) {
        r->method = "GET";
        r->has_body = false;
    }
    if (r->has_body && (r->body.rewind == NULL || r->body.rewind(r->body.arg) != 0)) {
        proto_url_free(&next);
        set_detail(r, "%s %s:%d: cannot resend a streamed body to a redirect", r->method,
                   r->url.host, r->url.port);
        complete(r, OCISYNC_EREDIRECT);
        return;
    }
    LOG_DEBUG("http %p: %d redirect to %s://%s:%d", (void *)r, r->h1.status, next.scheme, next.host,
              next.port);
    loop_conn_read_stop(r->conn);
    loop_conn_release(r->conn,
                      proto_h1_keep_alive(&r->h1) && r->body_done && !r->writing && !r->leftover);
    r->conn = NULL;
    proto_url_free(&r->url);
    r->url = next;
    err = connect_exchange(r);
    if (err != 0)
        complete(r, err);
}

static void message_done(struct proto_http_req *r)
{
    if (r->redirect_pending) {
        follow_redirect(r);
        return;
    }
    /* A response before the whole body was sent also ends the exchange (complete() then
     * closes the connection rather than reuse it). */
    complete(r, 0);
}

/*
 * Feeds data to the parser. Returns 1 if the exchange ended (or moved on to a
 * redirect) and r must not be touched again, 0 if it goes on.
 */
static int parse(struct proto_http_req *r, const char *data, size_t len)
{
    size_t used;
    int rc;
    for (;;) {
        r->in_parse = true;
        rc = proto_h1_feed(&r->h1, data, len, &used);
        r->in_parse = false;
        if (r->deferred_err != 0) {
            complete(r, r->deferred_err == 1 ? 0 : r->deferred_err);
            return 1;
        }
        if (rc < 0 && r->error_detail != NULL) {
            /* A callback said what was wrong (a body too slow, ...). */
            complete(r, rc);
            return 1;
        }
        if (rc < 0) {
            if (r->h1.headers_done)
                set_detail(r, "%s %s:%d: malformed response body: %s", r->method, r->url.host,
                           r->url.port, ocisync_strerror(rc));
            else
                set_detail(r, "%s %s:%d: malformed response: %s", r->method, r->url.host,
                           r->url.port, ocisync_strerror(rc));
            complete(r, rc);
            return 1;
        }
        if (rc == 0)
            return 0;
        if (rc == PROTO_DRAINED) {
            /* A body too long to drain: the exchange ends here, and its connection with it. */
            LOG_DEBUG("http %p: dropped %llu body bytes of HTTP %d; closing the connection",
                      (void *)r, (unsigned long long)r->drained, r->status);
            r->leftover = true;
            message_done(r);
            return 1;
        }
        data += used;
        len -= used;
        if (r->h1.message_done) {
            r->leftover = len > 0;
            message_done(r);
            return 1;
        }
        /* The consumer paused. */
        if (r->resume_requested) {
            r->resume_requested = false;
            proto_h1_resume(&r->h1);
            continue;
        }
        r->paused = true;
        r->ls_excused = true;
        r->pending = data;
        r->pending_len = len;
        loop_conn_read_stop(r->conn);
        return 0;
    }
}

void proto_http_resume(struct proto_http_req *r)
{
    const char *data;
    size_t len;
    if (r->state != PROTO_HTTP_ACTIVE)
        return;
    if (r->in_parse) {
        r->resume_requested = true;
        return;
    }
    if (!r->paused)
        return;
    r->paused = false;
    data = r->pending;
    len = r->pending_len;
    r->pending = NULL;
    r->pending_len = 0;
    proto_h1_resume(&r->h1);
    arm_timeout(r);
    /*
     * Parse even when nothing is pending: a pause on the last body bytes leaves
     * the message's completion to the next execute, and no more bytes will come.
     */
    if (parse(r, len > 0 ? data : "", len) != 0 || r->paused)
        return;
    loop_conn_read_start(r->conn);
}

static void on_conn_read(struct loop_conn *c, const char *data, size_t len)
{
    struct proto_http_req *r = c->owner_data;
    r->got_bytes = true;
    arm_timeout(r);
    parse(r, data, len);
}

static void on_conn_error(struct loop_conn *c, int err)
{
    struct proto_http_req *r = c->owner_data;
    if (err == UV_EOF) {
        if (r->h1.headers_done && proto_h1_finish(&r->h1) == 0 && r->h1.message_done) {
            /* A body delimited by the connection's end. */
            r->leftover = true; /* the connection cannot be reused */
            message_done(r);
            return;
        }
        if (retry_stale(r, err))
            return;
        set_detail(r, "%s %s:%d: connection closed before the response was complete", r->method,
                   r->url.host, r->url.port);
        complete(r, OCISYNC_ECLOSED);
        return;
    }
    if (err == UV_ETIMEDOUT) {
        if (past_deadline(r))
            set_detail(r, "%s %s:%d: no complete answer within %llu s", r->method, r->url.host,
                       r->url.port, (unsigned long long)(r->client->total_timeout_ms / 1000));
        else
            set_detail(r, "%s %s:%d: timed out (nothing received or sent for %llu s)", r->method,
                       r->url.host, r->url.port,
                       (unsigned long long)(r->client->idle_timeout_ms / 1000));
        complete(r, OCISYNC_ETIMEOUT);
        return;
    }
    if (retry_stale(r, err))
        return;
    complete(r, err);
}
