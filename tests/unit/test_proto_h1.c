/*
 * The HTTP/1.1 response parser (src/proto/h1.c) on recorded bytes: framing by
 * Content-Length, chunked encoding and connection close, interim responses,
 * header storage and its caps, pausing from the body callback, and hostile or
 * truncated input. Also the chunk framing encoder and the URL helpers
 * (src/proto/url.c).
 */
#include "test.h"

#include "ocisync.h"
#include "proto/http.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Recorded responses */

/* A registry manifest response: Content-Length framing. */
static const char R_SIMPLE[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 13\r\n"
                               "Docker-Content-Digest: sha256:abc\r\n"
                               "\r\n"
                               "{\"ok\": true}\n";
static const char R_SIMPLE_BODY[] = "{\"ok\": true}\n";

/*
 * Chunked with chunk extensions and a trailer. (llhttp 8.1 rejects quoted
 * extension values and a second extension on one chunk, ";a=b;c=d", so the
 * recording has one token extension per chunk.)
 */
static const char R_CHUNKED[] = "HTTP/1.1 200 OK\r\n"
                                "Transfer-Encoding: chunked\r\n"
                                "Trailer: X-Checksum\r\n"
                                "\r\n"
                                "5;name=value\r\n"
                                "hello\r\n"
                                "1;ext\r\n"
                                ",\r\n"
                                "7\r\n"
                                " world!\r\n"
                                "0\r\n"
                                "X-Checksum: 42\r\n"
                                "\r\n";
static const char R_CHUNKED_BODY[] = "hello, world!";

/* An interim 100 Continue (with a header of its own) before the final answer. */
static const char R_CONTINUE[] = "HTTP/1.1 100 Continue\r\n"
                                 "X-Interim: yes\r\n"
                                 "\r\n"
                                 "HTTP/1.1 201 Created\r\n"
                                 "Location: /v2/app/blobs/sha256:abc\r\n"
                                 "Content-Length: 0\r\n"
                                 "\r\n";

/* ------------------------------------------------------------------------------------------ */
/* A capturing consumer */

struct cap {
    int n_headers_cb;
    int n_body_cb;
    int status_at_headers;
    char heads[8192]; /* "name: value\n" lines, as seen in on_headers */
    char *body;       /* owned */
    size_t body_len;
    int pause_on;   /* on_body returns PROTO_PAUSE on this call number (1-based); 0: never */
    int pause_all;  /* on_body returns PROTO_PAUSE on every call */
    int headers_rc; /* what on_headers returns */
    int body_rc;    /* what on_body returns (when not pausing) */
};

static void dump_headers(const struct proto_h1 *p, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < p->n_hdrs; i++) {
        int k = snprintf(out + n, cap - n, "%s: %s\n", p->hbuf + p->hdr[i].name,
                         p->hbuf + p->hdr[i].value);
        if (k < 0 || (size_t)k >= cap - n)
            break;
        n += (size_t)k;
    }
}

static int cap_on_headers(struct proto_h1 *p)
{
    struct cap *c = p->data;
    c->n_headers_cb++;
    c->status_at_headers = p->status;
    dump_headers(p, c->heads, sizeof(c->heads));
    return c->headers_rc;
}

static int cap_on_body(struct proto_h1 *p, const char *data, size_t len)
{
    struct cap *c = p->data;
    char *nb = realloc(c->body, c->body_len + len + 1);
    if (nb == NULL)
        abort();
    c->body = nb;
    memcpy(c->body + c->body_len, data, len);
    c->body_len += len;
    c->body[c->body_len] = '\0';
    c->n_body_cb++;
    if (c->pause_all || c->n_body_cb == c->pause_on)
        return PROTO_PAUSE;
    return c->body_rc;
}

static const struct proto_h1_cbs cap_cbs = {
    .on_headers = cap_on_headers,
    .on_body = cap_on_body,
};

static void cap_free(struct cap *c)
{
    free(c->body);
    c->body = NULL;
    c->body_len = 0;
}

/* A parser on a zeroed struct (proto_h1_init keeps hbuf, so it must start NULL). */
static void h1_new(struct proto_h1 *p, struct cap *c, bool head)
{
    memset(p, 0, sizeof(*p));
    proto_h1_init(p, &cap_cbs, c, head);
}

/*
 * Feeds data in pieces of step bytes (0: all at once) until the message is
 * complete or an error. Body pauses are resumed at once. Returns the last
 * feed result; *used is how many input bytes the parser took.
 */
static int feed_steps(struct proto_h1 *p, const char *data, size_t len, size_t step, size_t *used)
{
    size_t off = 0;
    int rc = 0;
    if (step == 0)
        step = len;
    *used = 0;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        size_t k = 0;
        rc = proto_h1_feed(p, data + off, n, &k);
        if (rc < 0)
            return rc;
        if (rc == PROTO_PAUSE) {
            off += k;
            if (p->message_done)
                break;
            proto_h1_resume(p);
            continue;
        }
        CHECK_INT(k, n);
        off += n;
    }
    /* A pause on the last body byte leaves the completion owed to a later feed. */
    if (!p->message_done && rc == PROTO_PAUSE) {
        size_t k = 0;
        rc = proto_h1_feed(p, data + off, 0, &k);
    }
    *used = off;
    return rc;
}

/* What one parse of a response produced, for comparing feeds split in different ways. */
struct outcome {
    int rc;
    size_t used;
    int status;
    bool done;
    char heads[8192]; /* all headers at the end, trailers included */
    char *body;       /* owned */
    size_t body_len;
    int n_headers_cb;
};

static void parse_with(const char *data, size_t len, size_t step, bool head, struct outcome *o)
{
    struct proto_h1 p;
    struct cap c;
    memset(&c, 0, sizeof(c));
    memset(o, 0, sizeof(*o));
    h1_new(&p, &c, head);
    o->rc = feed_steps(&p, data, len, step, &o->used);
    o->status = p.status;
    o->done = p.message_done;
    dump_headers(&p, o->heads, sizeof(o->heads));
    o->body = c.body;
    o->body_len = c.body_len;
    o->n_headers_cb = c.n_headers_cb;
    proto_h1_dispose(&p);
}

/* Feeds data split at k (two pieces). */
static void parse_split(const char *data, size_t len, size_t k, struct outcome *o)
{
    struct proto_h1 p;
    struct cap c;
    size_t used1 = 0, used2 = 0;
    memset(&c, 0, sizeof(c));
    memset(o, 0, sizeof(*o));
    h1_new(&p, &c, false);
    o->rc = feed_steps(&p, data, k, 0, &used1);
    if (o->rc >= 0 && !p.message_done)
        o->rc = feed_steps(&p, data + k, len - k, 0, &used2);
    o->used = used1 + used2;
    o->status = p.status;
    o->done = p.message_done;
    dump_headers(&p, o->heads, sizeof(o->heads));
    o->body = c.body;
    o->body_len = c.body_len;
    o->n_headers_cb = c.n_headers_cb;
    proto_h1_dispose(&p);
}

static bool same_outcome(const struct outcome *a, const struct outcome *b)
{
    return a->rc == b->rc && a->used == b->used && a->status == b->status && a->done == b->done &&
           strcmp(a->heads, b->heads) == 0 && a->body_len == b->body_len &&
           (a->body_len == 0 || memcmp(a->body, b->body, a->body_len) == 0) &&
           a->n_headers_cb == b->n_headers_cb;
}

/* ------------------------------------------------------------------------------------------ */
/* Well-formed responses */

TEST(simple_content_length)
{
    struct proto_h1 p;
    struct cap c;
    size_t used = 0;
    size_t len = strlen(R_SIMPLE);
    memset(&c, 0, sizeof(c));
    h1_new(&p, &c, false);
    int rc = proto_h1_feed(&p, R_SIMPLE, len, &used);
    /* A complete message stops the parser: PROTO_PAUSE with everything consumed. */
    CHECK_INT(rc, PROTO_PAUSE);
    CHECK_INT(used, len);
    CHECK(p.message_done);
    CHECK(p.headers_done);
    CHECK_INT(p.status, 200);
    CHECK_INT(c.n_headers_cb, 1);
    CHECK_INT(c.status_at_headers, 200);
    CHECK_STR(c.heads, "Content-Type: application/json\n"
                       "Content-Length: 13\n"
                       "Docker-Content-Digest: sha256:abc\n");
    CHECK_INT(c.body_len, 13);
    CHECK_STR(c.body, R_SIMPLE_BODY);
    CHECK_INT(p.body_bytes, 13);
    CHECK_INT(proto_h1_content_length(&p), 13);
    CHECK(proto_h1_keep_alive(&p));
    CHECK_INT(proto_h1_finish(&p), 0);
    /* More input after completion is refused without being consumed. */
    rc = proto_h1_feed(&p, "x", 1, &used);
    CHECK_INT(rc, PROTO_PAUSE);
    CHECK_INT(used, 0);
    proto_h1_dispose(&p);
    cap_free(&c);
}

TEST(chunked_extensions_trailers)
{
    struct proto_h1 p;
    struct cap c;
    size_t used = 0;
    size_t len = strlen(R_CHUNKED);
    char all[8192];
    memset(&c, 0, sizeof(c));
    h1_new(&p, &c, false);
    int rc = proto_h1_feed(&p, R_CHUNKED, len, &used);
    CHECK_INT(rc, PROTO_PAUSE);
    CHECK_INT(used, len);
    CHECK(p.message_done);
    CHECK_INT(p.status, 200);
    CHECK_INT(c.n_body_cb, 3); /* one call per chunk */
    CHECK_INT(c.body_len, strlen(R_CHUNKED_BODY));
    CHECK_STR(c.body, R_CHUNKED_BODY);
    CHECK_INT(p.body_bytes, 13);
    /* At on_headers the trailer is not there yet; afterwards it is. */
    CHECK_STR(c.heads, "Transfer-Encoding: chunked\nTrailer: X-Checksum\n");
    dump_headers(&p, all, sizeof(all));
    CHECK_STR(all, "Transfer-Encoding: chunked\nTrailer: X-Checksum\nX-Checksum: 42\n");
    CHECK_STR(proto_h1_header(&p, "x-checksum"), "42");
    CHECK_INT(proto_h1_content_length(&p), -1);
    CHECK(proto_h1_keep_alive(&p));
    proto_h1_dispose(&p);
    cap_free(&c);
}

/* Every way of cutting the input must give the same headers, body and consumed count. */
static void check_all_splits(const char *name, const char *data)
{
    size_t len = strlen(data);
    struct outcome whole, o;
    int bad = 0;
    parse_with(data, len, 0, false, &whole);
    CHECK_INT(whole.rc, PROTO_PAUSE);
    CHECK(whole.done);
    /* One byte at a time. */
    parse_with(data, len, 1, false, &o);
    if (!same_outcome(&whole, &o)) {
        fprintf(stderr, "%s: byte-at-a-time differs: rc %d/%d body %zu/%zu heads\n%s---\n%s\n",
                name, whole.rc, o.rc, whole.body_len, o.body_len, whole.heads, o.heads);
        bad++;
    }
    free(o.body);
    /* Odd step sizes. */
    for (size_t step = 2; step < 12; step++) {
        parse_with(data, len, step, false, &o);
        if (!same_outcome(&whole, &o)) {
            fprintf(stderr, "%s: step %zu differs\n", name, step);
            bad++;
        }
        free(o.body);
    }
    /* Every split point. */
    for (size_t k = 0; k <= len; k++) {
        parse_split(data, len, k, &o);
        if (!same_outcome(&whole, &o)) {
            fprintf(stderr, "%s: split at %zu differs: rc %d body %zu heads\n%s\n", name, k, o.rc,
                    o.body_len, o.heads);
            bad++;
        }
        free(o.body);
    }
    CHECK_INT(bad, 0);
    free(whole.body);
}

TEST(split_points_simple)
{
    check_all_splits("simple", R_SIMPLE);
}

TEST(split_points_chunked)
{
    check_all_splits("chunked", R_CHUNKED);
}

TEST(split_points_continue)
{
    check_all_splits("continue", R_CONTINUE);
}

TEST(split_points_whitespace)
{
    check_all_splits("whitespace", "HTTP/1.1 200 OK\r\n"
                                   "X-Pad:   spaced value \t \r\n"
                                   "X-Empty:\r\n"
                                   "X-Tab:\tv\t\r\n"
                                   "Content-Length: 3\r\n"
                                   "\r\n"
                                   "abc");
}

TEST(head_request_no_body)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Length: 1234\r\n"
                               "Docker-Content-Digest: sha256:abc\r\n"
                               "\r\n";
    struct proto_h1 p;
    struct cap c;
    size_t used = 0;
    memset(&c, 0, sizeof(c));
    h1_new(&p, &c, true);
    int rc = proto_h1_feed(&p, resp, strlen(resp), &used);
    CHECK_INT(rc, PROTO_PAUSE);
    CHECK_INT(used, strlen(resp));
    CHECK(p.message_done);
    CHECK_INT(c.n_body_cb, 0);
    CHECK_INT(proto_h1_content_length(&p), 1234);
    CHECK(proto_h1_keep_alive(&p));
    proto_h1_dispose(&p);

    /* The same bytes for a GET wait for 1234 body bytes. */
    h1_new(&p, &c, false);
    rc = proto_h1_feed(&p, resp, strlen(resp), &used);
    CHECK_INT(rc, 0);
    CHECK_INT(used, strlen(resp));
    CHECK(!p.message_done);
    CHECK(p.headers_done);
    CHECK_INT(proto_h1_finish(&p), OCISYNC_ECLOSED);
    proto_h1_dispose(&p);

    /* HEAD with chunked framing: still no body. */
    static const char resp2[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    h1_new(&p, &c, true);
    rc = proto_h1_feed(&p, resp2, strlen(resp2), &used);
    CHECK_INT(rc, PROTO_PAUSE);
    CHECK_INT(used, strlen(resp2));
    CHECK(p.message_done);
    proto_h1_dispose(&p);
    CHECK_INT(c.n_body_cb, 0);
    cap_free(&c);
}

TEST(no_body_204_304)
{
    static const char r204[] = "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n";
    static const char r304[] = "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n";
    struct proto_h1 p;
    struct cap c;
    size_t used = 0;
    memset(&c, 0, sizeof(c));
    h1_new(&p, &c, false);
    CHECK_INT(proto_h1_feed(&p, r204, strlen(r204), &used), PROTO_PAUSE);
    CHECK_INT(used, strlen(r204));
    CHECK(p.message_done);
    CHECK_INT(p.status, 204);
    proto_h1_dispose(&p);

    h1_new(&p, &c, false);
    CHECK_INT(proto_h1_feed(&p, r304, strlen(r304), &used), PROTO_PAUSE);
    CHECK_INT(used, strlen(r304));
    CHECK(p.message_done);
    CHECK_INT(p.status, 304);
    CHECK(proto_h1_keep_alive(&p));
    proto_h1_dispose(&p);
    CHECK_INT(c.n_body_cb, 0);
    CHECK_INT(c.n_headers_cb, 2);
    cap_free(&c);
}

/*
 * RFC 9112 section 6.3: a 1xx, 204 or 304 response ends with its header
 * section whatever Content-Length says. llhttp 8.1 leaves this to the
 * on_headers_complete callback (node returns 1 there for 304), so the
 * parser has to say so itself.
 */
TEST(no_body_despite_content_length)
{
    /* A 304 followed by the next response on the same connection. */
    static const char r304[] = "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n"
                               "HTTP/1.1 200 OK\r\n";
    static const char r204[] = "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"
                               "HTTP/1.1 200 OK\r\n";
    static const char r100[] = "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n"
                               "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    size_t tail = strlen("HTTP/1.1 200 OK\r\n");
    struct proto_h1 p;
    struct cap c;
    size_t used = 0;
    memset(&c, 0, sizeof(c));

    h1_new(&p, &c, false);
    CHECK_INT(proto_h1_feed(&p, r304, strlen(r304), &used), PROTO_PAUSE);
    CHECK_INT(used, strlen(r304) - tail);
    CHECK(p.message_done);
    CHECK_INT(p.status, 304);
    proto_h1_dispose(&p);

    h1_new(&p, &c, false);
    CHECK_INT(proto_h1_feed(&p, r204, strlen(r204), &used), PROTO_PAUSE);
    CHECK_INT(used, strlen(r204) - tail);
    CHECK(p.message_done);
    CHECK_INT(p.status, 204);
    proto_h1_dispose(&p);

    h1_new(&p, &c, false);
    CHECK_INT(proto_h1_feed(&p, r100, strlen(r100), &used), PROTO_PAUSE);
    CHECK_INT(used, strlen(r100));
    CHECK(p.message_done);
    CHECK_INT(p.status, 201);
    proto_h1_dispose(&p);

    CHECK_INT(c.n_body_cb, 0);
    cap_free(&c);
}

TEST(interim_continue)
{
    struct proto_h1 p;
    struct cap c;
    size_t used = 0;
    memset(&c, 0, sizeof(c));
    h1_new(&p, &c, false);
    int rc = proto_h1_feed(&p, R_CONTINUE, strlen(R_CONTINUE), &used);
    CHECK_INT(rc, PROTO_PAUSE);
    CHECK_INT(used, strlen(R_CONTINUE));
    CHECK(p.message_done);
    CHECK_INT(c.n_headers_cb, 1); /* the interim response is not reported */
    CHECK_INT(c.status_at_headers, 201);
    CHECK_INT(p.status, 201);
    CHECK_STR(c.heads, "Location: /v2/app/blobs/sha256:abc\nContent-Length: 0\n");
    CHECK(proto_h1_header(&p, "X-Interim") == NULL);
    CHECK_INT(c.n_body_cb, 0);
    proto_h1_dispose(&p);

    /* 100 and 103 both before the answer, fed separately. */
    static const char a[] = "HTTP/1.1 100 Continue\r\n\r\n";
    static const char b[] = "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n";
    static const char d[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    h1_new(&p, &c, false);
    CHECK_INT(proto_h1_feed(&p, a, strlen(a), &used), 0);
    CHECK(!p.headers_done);
    CHECK_INT(proto_h1_feed(&p, b, strlen(b), &used), 0);
    CHECK(!p.headers_done);
    CHECK(!p.message_done);
    CHECK_INT(proto_h1_feed(&p, d, strlen(d), &used), PROTO_PAUSE);
    CHECK(p.message_done);
    CHECK_INT(p.status, 200);
    CHECK(proto_h1_header(&p, "Link") == NULL);
    CHECK_STR(c.body, "ok");
    proto_h1_dispose(&p);
    cap_free(&c);
}

TEST(header_lookup)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\n"
                               "content-TYPE: text/plain  \r\n"
                               "X-Pad:   spaced value \t \r\n"
                               "X-Empty:\r\n"
                               "X-Dup: first\r\n"
                               "x-dup: second\r\n"
                               "Content-Length: 0\r\n"
                               "\r\n";
    struct proto_h1 p;
    struct cap c;
    size_t used = 0;
    memset(&c, 0, sizeof(c));
    h1_new(&p, &c, false);
    CHECK_INT(proto_h1_feed(&p, resp, strlen(resp), &used), PROTO_PAUSE);
    CHECK_STR(proto_h1_header(&p, "Content-Type"), "text/plain");
    CHECK_STR(proto_h1_header(&p, "CONTENT-TYPE"), "text/plain");
    CHECK_STR(proto_h1_header(&p, "x-pad"), "spaced value");
    CHECK_STR(proto_h1_header(&p, "X-Empty"), "");
    CHECK_STR(proto_h1_header(&p, "X-DUP"), "first");
    CHECK(proto_h1_header(&p, "X-Missing") == NULL);
    CHECK(proto_h1_header(&p, "X-Pa") == NULL);
    CHECK(proto_h1_header(&p, "X-Padd") == NULL);
    CHECK_INT(proto_h1_content_length(&p), 0);
    CHECK_INT(p.n_hdrs, 6);
    proto_h1_dispose(&p);
    cap_free(&c);
}

TEST(connection_close_and_http10)
{
    static const char close_resp[] =
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx";
    static const char http10[] = "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx";
    struct proto_h1 p;
    struct cap c;
    size_t used = 0;
    memset(&c, 0, sizeof(c));
    h1_new(&p, &c, false);
    CHECK_INT(proto_h1_feed(&p, close_resp, strlen(close_resp), &used), PROTO_PAUSE);
    CHECK(p.message_done);
    CHECK(!proto_h1_keep_alive(&p));
    proto_h1_dispose(&p);
    h1_new(&p, &c, false);
    CHECK_INT(proto_h1_feed(&p, http10, strlen(http10), &used), PROTO_PAUSE);
    CHECK(p.message_done);
    CHECK(!proto_h1_keep_alive(&p));
    proto_h1_dispose(&p);
    cap_free(&c);
}

TEST(read_until_close)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome bytes";
    struct proto_h1 p;
    struct cap c;
    size_t used = 0;
    memset(&c, 0, sizeof(c));
    h1_new(&p, &c, false);
    CHECK_INT(proto_h1_feed(&p, resp, strlen(resp), &used), 0);
    CHECK_INT(used, strlen(resp));
    CHECK(!p.message_done);
    CHECK_INT(proto_h1_feed(&p, " more", 5, &used), 0);
    CHECK_INT(proto_h1_finish(&p), 0);
    CHECK(p.message_done);
    CHECK_STR(c.body, "some bytes more");
    CHECK(!proto_h1_keep_alive(&p));
    CHECK_INT(proto_h1_content_length(&p), -1);
    /* finish is idempotent once the message is done. */
    CHECK_INT(proto_h1_finish(&p), 0);
    proto_h1_dispose(&p);
    cap_free(&c);
}

TEST(truncated_then_finish)
{
    static const char body_short[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    static const char chunk_short[] =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab";
    static const char head_short[] = "HTTP/1.1 200 OK\r\nContent-Len";
    struct proto_h1 p;
    struct cap c;
    size_t used = 0;
    memset(&c, 0, sizeof(c));

    h1_new(&p, &c, false);
    CHECK_INT(proto_h1_feed(&p, body_short, strlen(body_short), &used), 0);
    CHECK_INT(proto_h1_finish(&p), OCISYNC_ECLOSED);
    CHECK(!p.message_done);
    proto_h1_dispose(&p);

    h1_new(&p, &c, false);
    CHECK_INT(proto_h1_feed(&p, chunk_short, strlen(chunk_short), &used), 0);
    CHECK_INT(proto_h1_finish(&p), OCISYNC_ECLOSED);
    proto_h1_dispose(&p);

    h1_new(&p, &c, false);
    CHECK_INT(proto_h1_feed(&p, head_short, strlen(head_short), &used), 0);
    CHECK_INT(proto_h1_finish(&p), OCISYNC_ECLOSED);
    CHECK(!p.headers_done);
    proto_h1_dispose(&p);

    /* Nothing at all before the close. */
    h1_new(&p, &c, false);
    CHECK_INT(proto_h1_finish(&p), OCISYNC_ECLOSED);
    proto_h1_dispose(&p);
    cap_free(&c);
}

/* ------------------------------------------------------------------------------------------ */
/* Hostile input */

static int parse_rc(const char *data, size_t len)
{
    struct proto_h1 p;
    struct cap c;
    size_t used = 0;
    int rc;
    memset(&c, 0, sizeof(c));
    h1_new(&p, &c, false);
    rc = feed_steps(&p, data, len, 0, &used);
    proto_h1_dispose(&p);
    cap_free(&c);
    return rc;
}

/* The same input one byte at a time must fail the same way. */
static int parse_rc_bytewise(const char *data, size_t len)
{
    struct proto_h1 p;
    struct cap c;
    size_t used = 0;
    int rc;
    memset(&c, 0, sizeof(c));
    h1_new(&p, &c, false);
    rc = feed_steps(&p, data, len, 1, &used);
    proto_h1_dispose(&p);
    cap_free(&c);
    return rc;
}

/* PROTO_MAX_REASON + 1 letters. */
static const char *big_a(void)
{
    static char a[PROTO_MAX_REASON + 2];
    memset(a, 'A', PROTO_MAX_REASON + 1);
    return a;
}

#define CHECK_REJECTS(s, err)                                                                      \
    do {                                                                                           \
        CHECK_INT(parse_rc(s, sizeof(s) - 1), err);                                                \
        CHECK_INT(parse_rc_bytewise(s, sizeof(s) - 1), err);                                       \
    } while (0)

TEST(hostile_status_line)
{
    CHECK_REJECTS("HTTP/1.1 2x0 OK\r\n\r\n", OCISYNC_EHTTP);
    CHECK_REJECTS("HTTX/1.1 200 OK\r\n\r\n", OCISYNC_EHTTP);
    CHECK_REJECTS("HTTP/1.1200 OK\r\n\r\n", OCISYNC_EHTTP);
    CHECK_REJECTS("garbage\r\n\r\n", OCISYNC_EHTTP);
    CHECK_REJECTS("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", OCISYNC_EHTTP); /* TLS hello */
    /* llhttp keeps a bare CR inside the reason phrase; it must not start a header. */
    {
        static const char s[] = "HTTP/1.1 200 OK\rX-Injected: 1\r\nContent-Length: 0\r\n\r\n";
        struct proto_h1 p;
        struct cap c;
        size_t used;
        memset(&c, 0, sizeof(c));
        h1_new(&p, &c, false);
        int rc = proto_h1_feed(&p, s, strlen(s), &used);
        CHECK(rc == PROTO_PAUSE || rc == OCISYNC_EHTTP);
        CHECK(proto_h1_header(&p, "X-Injected") == NULL);
        proto_h1_dispose(&p);
        cap_free(&c);
    }
}

/* A response of head bytes made of n units, then "\r\nContent-Length: 0\r\n\r\n" (caller frees). */
static char *build_head(const char *first, const char *unit, size_t n, size_t *len)
{
    static const char tail[] = "Content-Length: 0\r\n\r\n";
    size_t fl = strlen(first), ul = strlen(unit), cap = fl + ul * n + sizeof(tail);
    char *b = malloc(cap);
    size_t o = 0;
    if (b == NULL)
        abort();
    memcpy(b, first, fl);
    o = fl;
    for (size_t i = 0; i < n; i++, o += ul)
        memcpy(b + o, unit, ul);
    memcpy(b + o, tail, sizeof(tail));
    *len = o + sizeof(tail) - 1;
    return b;
}

/* The caps on the reason phrase, interim responses and the whole head, whatever the split. */
TEST(hostile_head_caps)
{
    size_t len;
    char *b;
    /* A reason phrase of 1024 bytes is one; 1025 is too many. */
    {
        char ok[PROTO_MAX_REASON + 64], bad[PROTO_MAX_REASON + 64];
        snprintf(ok, sizeof(ok), "HTTP/1.1 200 %.*s\r\nContent-Length: 0\r\n\r\n", PROTO_MAX_REASON,
                 big_a());
        snprintf(bad, sizeof(bad), "HTTP/1.1 200 %.*s\r\nContent-Length: 0\r\n\r\n",
                 PROTO_MAX_REASON + 1, big_a());
        CHECK_INT(parse_rc(ok, strlen(ok)), PROTO_PAUSE);
        CHECK_INT(parse_rc_bytewise(ok, strlen(ok)), PROTO_PAUSE);
        CHECK_INT(parse_rc(bad, strlen(bad)), OCISYNC_ETOOBIG);
        CHECK_INT(parse_rc_bytewise(bad, strlen(bad)), OCISYNC_ETOOBIG);
    }
    /* Eight interim responses are allowed before the final one; nine are not. */
    b = build_head("", "HTTP/1.1 100 Continue\r\n\r\n", PROTO_MAX_INTERIM, &len);
    {
        static const char final[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        size_t n = len - strlen("Content-Length: 0\r\n\r\n"); /* the interim responses */
        char *full = malloc(n + sizeof(final));
        if (full == NULL)
            abort();
        memcpy(full, b, n);
        memcpy(full + n, final, sizeof(final));
        CHECK_INT(parse_rc(full, n + sizeof(final) - 1), PROTO_PAUSE);
        CHECK_INT(parse_rc_bytewise(full, n + sizeof(final) - 1), PROTO_PAUSE);
        free(full);
    }
    free(b);
    b = build_head("", "HTTP/1.1 100 Continue\r\n\r\n", PROTO_MAX_INTERIM + 1, &len);
    CHECK_INT(parse_rc(b, len), OCISYNC_ETOOBIG);
    CHECK_INT(parse_rc_bytewise(b, len), OCISYNC_ETOOBIG);
    free(b);
    /* Whitespace is no header byte, but it is head: the whole head is capped exactly. */
    b = build_head("HTTP/1.1 200 OK\r\nX-Pad:", " ", PROTO_MAX_HEAD_BYTES, &len);
    CHECK_INT(parse_rc(b, len), OCISYNC_ETOOBIG);
    CHECK_INT(parse_rc_bytewise(b, len), OCISYNC_ETOOBIG);
    free(b);
}

TEST(hostile_headers)
{
    CHECK_REJECTS("HTTP/1.1 200 OK\r\nNoColon\r\nContent-Length: 0\r\n\r\n", OCISYNC_EHTTP);
    /* Whitespace before the colon of a framing header (a request-smuggling classic). */
    CHECK_REJECTS("HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello", OCISYNC_EHTTP);
    CHECK_REJECTS("HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", OCISYNC_EHTTP);
    /* CR injection: a bare CR inside a value does not start a new header. */
    CHECK_REJECTS("HTTP/1.1 200 OK\r\nX-A: a\rX-B: b\r\nContent-Length: 0\r\n\r\n", OCISYNC_EHTTP);
    /* LF injection: a bare LF inside a value is refused too. */
    CHECK_REJECTS("HTTP/1.1 200 OK\r\nX-A: a\nX-B: b\r\nContent-Length: 0\r\n\r\n", OCISYNC_EHTTP);
    /* A NUL inside a value. */
    CHECK_REJECTS("HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n", OCISYNC_EHTTP);
}

TEST(hostile_content_length)
{
    CHECK_REJECTS("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\nhello\r\n0\r\n\r\n",
                  OCISYNC_EHTTP);
    CHECK_REJECTS("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                  "5\r\nhello\r\n0\r\n\r\n",
                  OCISYNC_EHTTP);
    CHECK_REJECTS("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", OCISYNC_EHTTP);
    CHECK_REJECTS("HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n", OCISYNC_EHTTP);
    CHECK_REJECTS("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", OCISYNC_EHTTP);
    CHECK_REJECTS("HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\nx", OCISYNC_EHTTP);
    CHECK_REJECTS("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", OCISYNC_EHTTP);
    /* Two different lengths: a response-splitting classic. */
    CHECK_REJECTS("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
                  OCISYNC_EHTTP);
}

TEST(hostile_chunks)
{
    CHECK_REJECTS("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
                  OCISYNC_EHTTP);
    CHECK_REJECTS("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "ffffffffffffffffff\r\nhello\r\n",
                  OCISYNC_EHTTP);
    CHECK_REJECTS("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "10000000000000000\r\nhello\r\n",
                  OCISYNC_EHTTP);
    /* The chunk is longer than its size says. */
    CHECK_REJECTS("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
                  OCISYNC_EHTTP);
    CHECK_REJECTS("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
                  OCISYNC_EHTTP);
}

/* A response with n headers of the given value size. */
static char *many_headers(unsigned n, size_t value_len, size_t *len_out)
{
    size_t cap = 64 + (size_t)n * (value_len + 32);
    char *s = malloc(cap);
    size_t len = 0;
    if (s == NULL)
        abort();
    len += (size_t)sprintf(s, "HTTP/1.1 200 OK\r\n");
    for (unsigned i = 0; i < n; i++) {
        len += (size_t)sprintf(s + len, "X-H%u: ", i);
        memset(s + len, 'v', value_len);
        len += value_len;
        len += (size_t)sprintf(s + len, "\r\n");
    }
    len += (size_t)sprintf(s + len, "\r\n");
    *len_out = len;
    return s;
}

TEST(header_count_cap)
{
    size_t len;
    char *s;
    struct proto_h1 p;
    struct cap c;
    size_t used;
    memset(&c, 0, sizeof(c));

    /* Exactly the cap is fine (no Content-Length: read until close). */
    s = many_headers(PROTO_MAX_HEADERS, 4, &len);
    h1_new(&p, &c, false);
    CHECK_INT(proto_h1_feed(&p, s, len, &used), 0);
    CHECK(p.headers_done);
    CHECK_INT(p.n_hdrs, PROTO_MAX_HEADERS);
    CHECK_STR(proto_h1_header(&p, "X-H99"), "vvvv");
    proto_h1_dispose(&p);
    free(s);

    s = many_headers(PROTO_MAX_HEADERS + 1, 4, &len);
    CHECK_INT(parse_rc(s, len), OCISYNC_ETOOBIG);
    CHECK_INT(parse_rc_bytewise(s, len), OCISYNC_ETOOBIG);
    free(s);
    cap_free(&c);
}

TEST(header_bytes_cap)
{
    size_t len;
    char *s;
    /* One value larger than the whole header budget. */
    s = many_headers(1, PROTO_MAX_HEADER_BYTES + 10, &len);
    CHECK_INT(parse_rc(s, len), OCISYNC_ETOOBIG);
    CHECK_INT(parse_rc_bytewise(s, len), OCISYNC_ETOOBIG);
    free(s);
    /* Many headers that add up to more than the budget. */
    s = many_headers(80, 1000, &len);
    CHECK_INT(parse_rc(s, len), OCISYNC_ETOOBIG);
    free(s);
    /* Just under the budget passes. */
    s = many_headers(60, 1000, &len);
    CHECK_INT(parse_rc(s, len), 0);
    free(s);

    /* Trailers count against the same caps. */
    {
        size_t cap = PROTO_MAX_HEADER_BYTES + 256;
        char *t = malloc(cap);
        size_t n = (size_t)sprintf(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                      "1\r\nx\r\n0\r\nX-Trailer: ");
        memset(t + n, 't', PROTO_MAX_HEADER_BYTES);
        n += PROTO_MAX_HEADER_BYTES;
        n += (size_t)sprintf(t + n, "\r\n\r\n");
        CHECK_INT(parse_rc(t, n), OCISYNC_ETOOBIG);
        free(t);
    }
}

TEST(callback_errors)
{
    struct proto_h1 p;
    struct cap c;
    size_t used = 0;
    memset(&c, 0, sizeof(c));
    c.headers_rc = OCISYNC_EUNAUTHORIZED;
    h1_new(&p, &c, false);
    CHECK_INT(proto_h1_feed(&p, R_SIMPLE, strlen(R_SIMPLE), &used), OCISYNC_EUNAUTHORIZED);
    CHECK_INT(c.n_body_cb, 0);
    proto_h1_dispose(&p);

    memset(&c, 0, sizeof(c));
    c.body_rc = OCISYNC_ETOOBIG;
    h1_new(&p, &c, false);
    CHECK_INT(proto_h1_feed(&p, R_SIMPLE, strlen(R_SIMPLE), &used), OCISYNC_ETOOBIG);
    CHECK_INT(c.n_body_cb, 1);
    CHECK(!p.message_done);
    proto_h1_dispose(&p);
    cap_free(&c);
}

/* A lookup's result is a string that ends inside the stored header bytes. */
static bool terminated(const struct proto_h1 *p, const char *v)
{
    return v >= p->hbuf && v <= p->hbuf + p->hlen &&
           memchr(v, '\0', (size_t)(p->hbuf + p->hlen - v)) != NULL;
}

/*
 * A parse that stops inside a header or trailer value leaves that value
 * half-stored; looking it up afterwards (on_done does, for messages) must
 * not hand out bytes without their terminating NUL.
 */
TEST(lookup_after_error_inside_value)
{
    static const char in_header[] = "HTTP/1.1 401 Unauthorized\r\n"
                                    "Www-Authenticate: Bearer realm=\"x\x01\"\r\n\r\n";
    static const char in_trailer[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     "1\r\nx\r\n0\r\n"
                                     "Www-Authenticate: Bearer realm=\"x\x01\"\r\n\r\n";
    static const char *const inputs[] = {in_header, in_trailer};
    for (int i = 0; i < 2; i++) {
        struct proto_h1 p;
        struct cap c;
        size_t used = 0;
        memset(&c, 0, sizeof(c));
        h1_new(&p, &c, false);
        CHECK_INT(proto_h1_feed(&p, inputs[i], strlen(inputs[i]), &used), OCISYNC_EHTTP);
        CHECK_INT(p.headers_done, i == 1);
        const char *v = proto_h1_header(&p, "WWW-Authenticate");
        if (v != NULL) {
            CHECK(terminated(&p, v));
            if (!terminated(&p, v))
                fprintf(stderr, "  input %d: value at offset %ld of %zu stored bytes has no NUL\n",
                        i, (long)(v - p.hbuf), p.hlen);
        }
        if (i == 1)
            CHECK_STR(proto_h1_header(&p, "Transfer-Encoding"), "chunked");
        proto_h1_dispose(&p);
        cap_free(&c);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Pausing and leftovers */

TEST(pause_chunked_mid_buffer)
{
    struct proto_h1 p;
    struct cap c;
    size_t used = 0;
    size_t len = strlen(R_CHUNKED);
    size_t after_hello = (size_t)(strstr(R_CHUNKED, "hello") - R_CHUNKED) + 5;
    memset(&c, 0, sizeof(c));
    c.pause_on = 1;
    h1_new(&p, &c, false);
    int rc = proto_h1_feed(&p, R_CHUNKED, len, &used);
    CHECK_INT(rc, PROTO_PAUSE);
    CHECK_INT(used, after_hello);
    CHECK(!p.message_done);
    CHECK_STR(c.body, "hello");
    /* While paused, the parser takes nothing. */
    size_t used2 = 99;
    rc = proto_h1_feed(&p, R_CHUNKED + used, len - used, &used2);
    CHECK(rc != 0);
    CHECK_INT(c.n_body_cb, 1);
    proto_h1_resume(&p);
    rc = proto_h1_feed(&p, R_CHUNKED + used, len - used, &used2);
    CHECK_INT(rc, PROTO_PAUSE);
    CHECK_INT(used + used2, len);
    CHECK(p.message_done);
    CHECK_STR(c.body, R_CHUNKED_BODY);
    CHECK_INT(c.n_body_cb, 3);
    proto_h1_dispose(&p);
    cap_free(&c);
}

TEST(pause_content_length)
{
    struct proto_h1 p;
    struct cap c;
    size_t used = 0, used2 = 0;
    size_t len = strlen(R_SIMPLE);
    size_t head_len = len - 13;
    memset(&c, 0, sizeof(c));
    c.pause_on = 1;
    h1_new(&p, &c, false);
    /* Head plus 4 body bytes, then the rest. */
    int rc = proto_h1_feed(&p, R_SIMPLE, head_len + 4, &used);
    CHECK_INT(rc, PROTO_PAUSE);
    CHECK_INT(used, head_len + 4);
    CHECK_INT(c.body_len, 4);
    CHECK(!p.message_done);
    proto_h1_resume(&p);
    rc = proto_h1_feed(&p, R_SIMPLE + used, len - used, &used2);
    CHECK_INT(rc, PROTO_PAUSE);
    CHECK_INT(used2, len - used);
    CHECK(p.message_done);
    CHECK_STR(c.body, R_SIMPLE_BODY);
    proto_h1_dispose(&p);
    cap_free(&c);

    /*
     * A pause on the last body bytes: the message completes on the next feed,
     * which may carry no bytes at all.
     */
    memset(&c, 0, sizeof(c));
    c.pause_on = 1;
    h1_new(&p, &c, false);
    rc = proto_h1_feed(&p, R_SIMPLE, len, &used);
    CHECK_INT(rc, PROTO_PAUSE);
    CHECK_INT(used, len);
    CHECK(!p.message_done);
    proto_h1_resume(&p);
    rc = proto_h1_feed(&p, R_SIMPLE + len, 0, &used2);
    CHECK_INT(rc, PROTO_PAUSE);
    CHECK_INT(used2, 0);
    CHECK(p.message_done);
    CHECK_STR(c.body, R_SIMPLE_BODY);
    proto_h1_dispose(&p);
    cap_free(&c);
}

/*
 * A pause at the end of a buffer in the middle of a body, then a feed of no
 * bytes (what proto_http_resume does when nothing is pending): the parser
 * must not report an empty body piece, and a consumer that pauses on every
 * piece must still see the body complete once bytes come.
 */
TEST(pause_mid_body_empty_feed)
{
    struct proto_h1 p;
    struct cap c;
    size_t used = 0, used2 = 0;
    size_t len = strlen(R_SIMPLE);
    size_t head_len = len - 13;
    int rc;
    memset(&c, 0, sizeof(c));
    c.pause_all = 1;
    h1_new(&p, &c, false);
    rc = proto_h1_feed(&p, R_SIMPLE, head_len + 4, &used);
    CHECK_INT(rc, PROTO_PAUSE);
    CHECK_INT(used, head_len + 4);
    CHECK_INT(c.n_body_cb, 1);
    proto_h1_resume(&p);
    rc = proto_h1_feed(&p, R_SIMPLE + used, 0, &used2);
    CHECK_INT(c.n_body_cb, 1); /* no empty on_body */
    CHECK_INT(rc, 0);
    CHECK_INT(used2, 0);
    if (rc == PROTO_PAUSE)
        proto_h1_resume(&p);
    rc = proto_h1_feed(&p, R_SIMPLE + used, len - used, &used2);
    CHECK_INT(rc, PROTO_PAUSE);
    CHECK_INT(used2, len - used);
    CHECK_INT(c.n_body_cb, 2);
    CHECK_STR(c.body, R_SIMPLE_BODY);
    proto_h1_resume(&p);
    rc = proto_h1_feed(&p, R_SIMPLE + len, 0, &used2);
    CHECK_INT(rc, PROTO_PAUSE);
    CHECK(p.message_done);
    CHECK_INT(c.n_body_cb, 2);
    proto_h1_dispose(&p);
    cap_free(&c);
}

TEST(extra_bytes_not_consumed)
{
    char buf[1024];
    struct proto_h1 p;
    struct cap c;
    size_t used = 0;
    size_t n1 = strlen(R_SIMPLE), n2 = strlen(R_CHUNKED);
    memset(&c, 0, sizeof(c));
    memcpy(buf, R_SIMPLE, n1);
    memcpy(buf + n1, R_CHUNKED, n2);
    h1_new(&p, &c, false);
    CHECK_INT(proto_h1_feed(&p, buf, n1 + n2, &used), PROTO_PAUSE);
    CHECK_INT(used, n1);
    CHECK(p.message_done);
    CHECK_STR(c.body, R_SIMPLE_BODY);
    CHECK_INT(c.n_headers_cb, 1);
    /* The next response is parsed by a fresh parser on the rest. */
    proto_h1_init(&p, &cap_cbs, &c, false);
    cap_free(&c);
    memset(&c, 0, sizeof(c));
    CHECK_INT(proto_h1_feed(&p, buf + used, n1 + n2 - used, &used), PROTO_PAUSE);
    CHECK_INT(used, n2);
    CHECK_STR(c.body, R_CHUNKED_BODY);
    proto_h1_dispose(&p);
    cap_free(&c);

    /* Chunked then trailing junk: the junk is left alone. */
    memcpy(buf, R_CHUNKED, n2);
    memcpy(buf + n2, "JUNK", 4);
    memset(&c, 0, sizeof(c));
    h1_new(&p, &c, false);
    CHECK_INT(proto_h1_feed(&p, buf, n2 + 4, &used), PROTO_PAUSE);
    CHECK_INT(used, n2);
    CHECK(p.message_done);
    proto_h1_dispose(&p);
    cap_free(&c);

    /* A HEAD response followed by the next response. */
    static const char head_then[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 404";
    memset(&c, 0, sizeof(c));
    h1_new(&p, &c, true);
    CHECK_INT(proto_h1_feed(&p, head_then, strlen(head_then), &used), PROTO_PAUSE);
    CHECK_INT(used, strlen(head_then) - strlen("HTTP/1.1 404"));
    CHECK_INT(c.n_body_cb, 0);
    proto_h1_dispose(&p);
    cap_free(&c);
}

/* ------------------------------------------------------------------------------------------ */
/* Chunk framing */

TEST(chunk_head)
{
    char buf[32];
    size_t n;
    n = proto_chunk_head(buf, 0);
    CHECK_INT(n, 5);
    CHECK(memcmp(buf, "0\r\n\r\n", 5) == 0);
    n = proto_chunk_head(buf, 1);
    buf[n] = '\0';
    CHECK_STR(buf, "1\r\n");
    n = proto_chunk_head(buf, 255);
    buf[n] = '\0';
    CHECK_STR(buf, "ff\r\n");
    n = proto_chunk_head(buf, 256 * 1024);
    buf[n] = '\0';
    CHECK_STR(buf, "40000\r\n");
    n = proto_chunk_head(buf, (size_t)UINT32_MAX / 2);
    buf[n] = '\0';
    CHECK_STR(buf, "7fffffff\r\n");
    n = proto_chunk_head(buf, SIZE_MAX);
    CHECK(n < 20);
    buf[n] = '\0';
    CHECK_STR(buf, "ffffffffffffffff\r\n");

    /* What the encoder writes, the parser reads back. */
    char msg[256];
    size_t m = (size_t)sprintf(msg, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    m += proto_chunk_head(msg + m, 3);
    memcpy(msg + m, "abc\r\n", 5);
    m += 5;
    m += proto_chunk_head(msg + m, 17);
    memcpy(msg + m, "0123456789abcdefg\r\n", 19);
    m += 19;
    m += proto_chunk_head(msg + m, 0);
    struct outcome o;
    parse_with(msg, m, 0, false, &o);
    CHECK_INT(o.rc, PROTO_PAUSE);
    CHECK(o.done);
    CHECK_INT(o.used, m);
    CHECK_INT(o.body_len, 20);
    CHECK(o.body != NULL && memcmp(o.body, "abc0123456789abcdefg", 20) == 0);
    free(o.body);
}

/* ------------------------------------------------------------------------------------------ */
/* URLs */

static void check_url(const char *s, const char *scheme, const char *host, int port,
                      const char *path)
{
    struct proto_url u;
    int rc = proto_url_parse(s, &u);
    CHECK_INT(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "  url: %s\n", s);
        return;
    }
    CHECK_STR(u.scheme, scheme);
    CHECK_STR(u.host, host);
    CHECK_INT(u.port, port);
    CHECK_STR(u.path, path);
    proto_url_free(&u);
}

static void check_bad_url(const char *s)
{
    struct proto_url u;
    int rc = proto_url_parse(s, &u);
    if (rc == 0) {
        fprintf(stderr, "  accepted bad url: %s\n", s);
        proto_url_free(&u);
    }
    CHECK_INT(rc, OCISYNC_EUSAGE);
    CHECK(u.path == NULL);
}

TEST(url_parse)
{
    check_url("http://example.com", "http", "example.com", 80, "/");
    check_url("https://example.com", "https", "example.com", 443, "/");
    check_url("https://example.com/v2/", "https", "example.com", 443, "/v2/");
    check_url("HTTP://Example.COM/x", "http", "Example.COM", 80, "/x");
    check_url("http://example.com:5000/v2/x?y=1&z=%20#frag", "http", "example.com", 5000,
              "/v2/x?y=1&z=%20");
    check_url("http://example.com?q=1", "http", "example.com", 80, "/?q=1");
    check_url("http://example.com#frag", "http", "example.com", 80, "/");
    check_url("http://example.com:65535/", "http", "example.com", 65535, "/");
    check_url("http://example.com:1/", "http", "example.com", 1, "/");
    check_url("http://127.0.0.1:5000/v2/", "http", "127.0.0.1", 5000, "/v2/");
    check_url("https://[::1]:5000/v2/", "https", "::1", 5000, "/v2/");
    check_url("http://[2001:db8::1]/", "http", "2001:db8::1", 80, "/");
    check_url("https://[2001:db8::1]", "https", "2001:db8::1", 443, "/");
    check_url("http://h/a/b?c=d/e#f?g", "http", "h", 80, "/a/b?c=d/e");

    check_bad_url("http://example.com:0/");
    check_bad_url("http://example.com:65536/");
    check_bad_url("http://example.com:99999999999999999999/");
    check_bad_url("http://example.com:abc/");
    check_bad_url("http://example.com:-1/");
    check_bad_url("http://example.com:80x/");
    check_bad_url("http://example.com:/");
    check_bad_url("http://:80/");
    check_bad_url("http:///v2/");
    check_bad_url("http://");
    check_bad_url("https://?x");
    check_bad_url("ftp://example.com/");
    check_bad_url("example.com/v2/");
    check_bad_url("//example.com/v2/");
    check_bad_url("");
    check_bad_url("http://exa mple.com/");
    check_bad_url("http://exa\tmple.com/");
    check_bad_url("http://user:pw@example.com/");
    check_bad_url("http://example.com/a b");
    check_bad_url("http://example.com/a\r\nX-Injected: 1");
    check_bad_url("http://example.com/a\nb");
    check_bad_url("http://example.com/a\x7f");
    check_bad_url("http://example.com/?q=\x01");
    check_bad_url("http://[::1/");
    check_bad_url("http://[::1]x/");
    check_bad_url("http://[::1]:/");
    check_bad_url("http://[]/");
    check_bad_url("http://::1/");
    check_bad_url("http://host\x80/");

    /* Hosts up to the table's size. */
    char big[LOOP_HOST_MAX + 32];
    memcpy(big, "http://", 7);
    memset(big + 7, 'a', LOOP_HOST_MAX);
    strcpy(big + 7 + LOOP_HOST_MAX, "/");
    check_bad_url(big);
    big[7 + LOOP_HOST_MAX - 1] = '/';
    big[7 + LOOP_HOST_MAX] = '\0';
    {
        struct proto_url u;
        CHECK_INT(proto_url_parse(big, &u), 0);
        CHECK_INT(strlen(u.host), LOOP_HOST_MAX - 1);
        proto_url_free(&u);
    }
    /* An over-long path is refused with ETOOBIG. */
    {
        size_t n = PROTO_MAX_URL + 64;
        char *s = malloc(n);
        struct proto_url u;
        strcpy(s, "http://h/");
        memset(s + 9, 'p', n - 10);
        s[n - 1] = '\0';
        CHECK_INT(proto_url_parse(s, &u), OCISYNC_ETOOBIG);
        free(s);
    }
}

TEST(url_origin_string)
{
    struct proto_url u;
    char buf[LOOP_HOST_MAX + 32];
    char *s;
    CHECK_INT(proto_url_parse("https://[::1]:5000/v2/?a=b#c", &u), 0);
    proto_url_origin(&u, buf, sizeof(buf));
    CHECK_STR(buf, "https://[::1]:5000");
    s = proto_url_string(&u);
    CHECK_STR(s, "https://[::1]:5000/v2/?a=b");
    free(s);
    proto_url_free(&u);
    CHECK_INT(proto_url_parse("http://reg.example/v2/", &u), 0);
    proto_url_origin(&u, buf, sizeof(buf));
    CHECK_STR(buf, "http://reg.example:80");
    proto_url_free(&u);
}

static void check_resolve(const char *base, const char *ref, const char *want)
{
    struct proto_url b, out;
    char *s;
    CHECK_INT(proto_url_parse(base, &b), 0);
    int rc = proto_url_resolve(&b, ref, &out);
    CHECK_INT(rc, 0);
    if (rc == 0) {
        s = proto_url_string(&out);
        CHECK_STR(s, want);
        if (s == NULL || strcmp(s, want) != 0)
            fprintf(stderr, "  resolve(%s, %s)\n", base, ref);
        free(s);
        proto_url_free(&out);
    }
    proto_url_free(&b);
}

/* proto_url_resolve's result, freeing what it may have produced. */
static int resolve_rc(const struct proto_url *b, const char *ref)
{
    struct proto_url out;
    int rc = proto_url_resolve(b, ref, &out);
    if (rc == 0) {
        char *s = proto_url_string(&out);
        fprintf(stderr, "  resolve(%s) gave %s\n", ref, s ? s : "?");
        free(s);
        proto_url_free(&out);
    }
    return rc;
}

TEST(url_resolve)
{
    const char *base = "http://reg.example:5000/v2/app/blobs/uploads/?digest=x";
    check_resolve(base, "https://s3.example/bucket/obj?X-Sig=1",
                  "https://s3.example:443/bucket/obj?X-Sig=1");
    check_resolve(base, "HTTP://other:81/x", "http://other:81/x");
    check_resolve(base, "//cdn.example/blob", "http://cdn.example:80/blob");
    check_resolve("https://reg.example/v2/", "//cdn.example:8443/b", "https://cdn.example:8443/b");
    check_resolve(base, "/v2/app/blobs/uploads/uuid-1?_state=abc",
                  "http://reg.example:5000/v2/app/blobs/uploads/uuid-1?_state=abc");
    check_resolve(base, "uuid-2?_state=x",
                  "http://reg.example:5000/v2/app/blobs/uploads/uuid-2?_state=x");
    check_resolve("http://h/a/b/c?q=/z/y", "d", "http://h:80/a/b/d");
    check_resolve("http://h/a/b/c", "d/e", "http://h:80/a/b/d/e");
    check_resolve("http://h", "x", "http://h:80/x");
    check_resolve("http://[::1]:5000/v2/a", "/b", "http://[::1]:5000/b");
    check_resolve("http://[::1]:5000/v2/a", "b", "http://[::1]:5000/v2/b");
    check_resolve(base, "/x#frag", "http://reg.example:5000/x");

    /* What a hostile Location cannot do. */
    struct proto_url b;
    CHECK_INT(proto_url_parse(base, &b), 0);
    CHECK_INT(resolve_rc(&b, "/a\r\nX-Injected: 1"), OCISYNC_EUSAGE);
    CHECK_INT(resolve_rc(&b, "/a b"), OCISYNC_EUSAGE);
    /* Another scheme is an absolute URI we do not follow, not a relative path. */
    CHECK_INT(resolve_rc(&b, "ftp://x/"), OCISYNC_EUSAGE);
    CHECK_INT(resolve_rc(&b, "file:///etc/passwd"), OCISYNC_EUSAGE);
    CHECK_INT(resolve_rc(&b, "//"), OCISYNC_EUSAGE);
    CHECK_INT(resolve_rc(&b, "//user@evil/"), OCISYNC_EUSAGE);
    CHECK_INT(resolve_rc(&b, "http://h:0/"), OCISYNC_EUSAGE);
    size_t n = PROTO_MAX_URL + 10;
    char *longref = malloc(n);
    memset(longref, 'a', n - 1);
    longref[0] = '/';
    longref[n - 1] = '\0';
    CHECK_INT(resolve_rc(&b, longref), OCISYNC_ETOOBIG);
    free(longref);
    proto_url_free(&b);
}

static bool origin_eq(const char *a, const char *b)
{
    struct proto_url ua, ub;
    bool r;
    if (proto_url_parse(a, &ua) != 0)
        return false;
    if (proto_url_parse(b, &ub) != 0) {
        proto_url_free(&ua);
        return false;
    }
    r = proto_url_same_origin(&ua, &ub);
    CHECK(r == proto_url_same_origin(&ub, &ua));
    proto_url_free(&ua);
    proto_url_free(&ub);
    return r;
}

TEST(url_same_origin)
{
    CHECK(origin_eq("http://a.example/x", "http://a.example/y?z"));
    CHECK(origin_eq("http://a.example/", "http://a.example:80/"));
    CHECK(origin_eq("https://a.example/", "https://a.example:443/"));
    CHECK(origin_eq("http://A.Example/", "http://a.example/"));
    CHECK(origin_eq("http://[::1]:5000/", "http://[::1]:5000/v2/"));
    CHECK(!origin_eq("http://a.example:5000/", "http://a.example:5001/"));
    CHECK(!origin_eq("http://a.example/", "https://a.example/"));
    CHECK(!origin_eq("http://a.example:443/", "https://a.example:443/"));
    CHECK(!origin_eq("http://a.example/", "http://b.example/"));
    CHECK(!origin_eq("http://a.example/", "http://a.example.evil/"));
    CHECK(!origin_eq("http://127.0.0.1/", "http://localhost/"));
}

TEST_MAIN(T(simple_content_length), T(chunked_extensions_trailers), T(split_points_simple),
          T(split_points_chunked), T(split_points_continue), T(split_points_whitespace),
          T(head_request_no_body), T(no_body_204_304), T(no_body_despite_content_length),
          T(interim_continue), T(header_lookup), T(connection_close_and_http10),
          T(read_until_close), T(truncated_then_finish), T(hostile_status_line),
          T(hostile_head_caps), T(hostile_headers), T(hostile_content_length), T(hostile_chunks),
          T(header_count_cap), T(header_bytes_cap), T(callback_errors),
          T(lookup_after_error_inside_value), T(pause_chunked_mid_buffer), T(pause_content_length),
          T(pause_mid_body_empty_feed), T(extra_bytes_not_consumed), T(chunk_head), T(url_parse),
          T(url_origin_string), T(url_resolve), T(url_same_origin))
