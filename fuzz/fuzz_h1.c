/*
 * libFuzzer target for the HTTP/1.1 response parser, proto_h1_feed (with
 * proto_h1_resume, proto_h1_finish, proto_h1_header and
 * proto_h1_content_length) in src/proto/h1.c.
 *
 * The first input byte is the mode: bits 0-5 choose the piece size (1..64
 * bytes, 64 meaning the whole input at once), bit 6 makes it the answer to a
 * HEAD request, bit 7 makes the body consumer pause on every piece (resumed
 * at once, as proto_http_resume does). The rest is the response, fed in
 * pieces and then parsed again in one go: both runs must agree.
 *
 * Checked: consumed counts stay within the input, the header table stays
 * within its caps and is NUL-terminated, the reason phrase, interim
 * responses and the whole head stay within theirs (or the parse fails), body callbacks add up to
 * body_bytes, a HEAD answer has no body, a Content-Length body is exactly
 * that long, and splitting the input never changes the outcome.
 *
 * Build (from the repository root):
 *   L=/usr/share/llhttp
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *     -I/usr/share/include/llhttp fuzz/fuzz_h1.c src/proto/h1.c src/common/error.c \
 *     $L/api.c $L/http.c $L/llhttp.c -luv -o fuzz_h1
 *   ./fuzz_h1 -dict=fuzz/h1.dict fuzz/corpus/h1
 */
#include "ocisync.h"
#include "proto/http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct run {
    bool pause;
    int n_headers_cb;
    uint64_t body_seen;
    uint64_t body_hash;
    int status;
    bool done;
    int rc;
    size_t used;
    int64_t content_length;
    unsigned n_hdrs;
};

static int on_headers(struct proto_h1 *p)
{
    struct run *r = p->data;
    r->n_headers_cb++;
    /* Interim responses are not reported. (llhttp 8.1 takes "HTTP/1.1  037" as status 37.) */
    if (p->status >= 100 && p->status < 200 && p->status != 101)
        abort();
    if (!p->headers_done)
        abort();
    return 0;
}

static int on_body(struct proto_h1 *p, const char *data, size_t len)
{
    struct run *r = p->data;
    if (!p->headers_done || p->head_request)
        abort();
    for (size_t i = 0; i < len; i++)
        r->body_hash = (r->body_hash ^ (unsigned char)data[i]) * 1099511628211ull;
    r->body_seen += len;
    return r->pause ? PROTO_PAUSE : 0;
}

static const struct proto_h1_cbs cbs = {
    .on_headers = on_headers,
    .on_body = on_body,
};

static void check_table(const struct proto_h1 *p)
{
    if (p->n_hdrs > PROTO_MAX_HEADERS || p->hlen >= PROTO_MAX_HEADER_BYTES)
        abort();
    for (unsigned i = 0; i < p->n_hdrs; i++) {
        if (p->hdr[i].name >= p->hlen && p->hlen > 0)
            abort();
        if (p->hdr[i].value == UINT32_MAX)
            continue;
        if (p->hdr[i].value > p->hlen)
            abort();
        /* A complete name is NUL-terminated inside the buffer. */
        if (memchr(p->hbuf + p->hdr[i].name, '\0', p->hlen - p->hdr[i].name) == NULL)
            abort();
        /*
         * Whatever a lookup returns, even after an error, is a string that
         * ends inside the stored bytes. Only a value still being received
         * may be missing.
         */
        const char *v = proto_h1_header(p, p->hbuf + p->hdr[i].name);
        if (v == NULL && !(p->in_value && i + 1 == p->n_hdrs))
            abort();
        if (v != NULL && (v < p->hbuf || v > p->hbuf + p->hlen ||
                          memchr(v, '\0', (size_t)(p->hbuf + p->hlen - v)) == NULL))
            abort();
    }
}

static void parse(const uint8_t *data, size_t size, size_t step, bool head, bool pause,
                  struct run *r)
{
    struct proto_h1 p;
    size_t off = 0;
    int rc = 0;
    memset(&p, 0, sizeof(p));
    memset(r, 0, sizeof(*r));
    r->pause = pause;
    r->body_hash = 14695981039346656037ull;
    proto_h1_init(&p, &cbs, r, head);
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        size_t k = 0;
        rc = proto_h1_feed(&p, (const char *)data + off, n, &k);
        if (k > n)
            abort();
        if (rc < 0)
            break;
        if (rc == PROTO_PAUSE) {
            off += k;
            if (p.message_done)
                break;
            proto_h1_resume(&p);
            continue;
        }
        if (k != n)
            abort();
        off += n;
    }
    if (rc >= 0 && !p.message_done) {
        size_t k = 0;
        if (rc == PROTO_PAUSE) {
            /* Paused on the last bytes: the completion may be owed to an empty feed. */
            rc = proto_h1_feed(&p, (const char *)data + off, 0, &k);
            if (rc == PROTO_PAUSE && !p.message_done)
                proto_h1_resume(&p);
        }
        if (rc >= 0 && !p.message_done)
            rc = proto_h1_finish(&p);
        if (rc == PROTO_PAUSE)
            rc = 0;
        if (rc != 0 && rc != OCISYNC_ECLOSED && rc != OCISYNC_EHTTP && rc != OCISYNC_ETOOBIG)
            abort();
    }
    if (rc < 0 && rc != OCISYNC_EHTTP && rc != OCISYNC_ETOOBIG && rc != OCISYNC_ECLOSED)
        abort();
    check_table(&p);
    /* The head's caps hold whatever came: reason phrase, interim responses, all of it. */
    if (p.interim > PROTO_MAX_INTERIM + 1 || p.head_fed > PROTO_MAX_HEAD_BYTES)
        abort();
    if (p.reason_len > PROTO_MAX_REASON && rc != OCISYNC_ETOOBIG)
        abort();
    if (p.body_bytes != r->body_seen)
        abort();
    if (r->n_headers_cb > 1)
        abort();
    r->rc = rc < 0 ? -1 : 0;
    r->used = off;
    r->status = p.status;
    r->done = p.message_done;
    r->n_hdrs = p.n_hdrs;
    r->content_length = proto_h1_content_length(&p);
    if (p.message_done) {
        if (!p.headers_done || r->n_headers_cb != 1)
            abort();
        if (head && p.body_bytes != 0)
            abort();
        /* A Content-Length body (not chunked, not bodiless) is exactly that long. */
        if (!head && r->content_length >= 0 && p.status != 204 && p.status != 304 &&
            proto_h1_header(&p, "Transfer-Encoding") == NULL &&
            p.body_bytes != (uint64_t)r->content_length)
            abort();
        (void)proto_h1_keep_alive(&p);
    }
    proto_h1_dispose(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run split, whole;
    size_t step;
    bool head, pause;
    if (size < 1)
        return 0;
    step = (size_t)(data[0] & 0x3f) + 1;
    head = (data[0] & 0x40) != 0;
    pause = (data[0] & 0x80) != 0;
    data++;
    size--;
    if (step == 64)
        step = size ? size : 1;
    parse(data, size, step, head, pause, &split);
    parse(data, size, size ? size : 1, head, false, &whole);
    /* How the bytes were cut, or whether the consumer paused, changes nothing. */
    if (split.done != whole.done || split.rc != whole.rc)
        abort();
    if (split.done &&
        (split.used != whole.used || split.status != whole.status ||
         split.body_seen != whole.body_seen || split.body_hash != whole.body_hash ||
         split.n_hdrs != whole.n_hdrs || split.content_length != whole.content_length))
        abort();
    return 0;
}
