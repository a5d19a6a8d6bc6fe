/* The HTTP/1.1 response parser: llhttp plus header storage with hard caps. */
#include "proto/http.h"

#include "ocisync.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int on_message_begin(llhttp_t *lp);
static int on_status(llhttp_t *lp, const char *at, size_t len);
static int on_header_field(llhttp_t *lp, const char *at, size_t len);
static int on_header_value(llhttp_t *lp, const char *at, size_t len);
static int on_header_field_complete(llhttp_t *lp);
static int on_header_value_complete(llhttp_t *lp);
static int on_headers_complete(llhttp_t *lp);
static int on_body(llhttp_t *lp, const char *at, size_t len);
static int on_message_complete(llhttp_t *lp);

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void proto_h1_init(struct proto_h1 *p, const struct proto_h1_cbs *cbs, void *data,
                   bool head_request)
{
    char *hbuf = p->hbuf;
    memset(p, 0, sizeof(*p));
    p->hbuf = hbuf;
    p->cbs = cbs;
    p->data = data;
    p->head_request = head_request;
    llhttp_init(&p->parser, HTTP_RESPONSE, &settings);
    p->parser.data = p;
}

void proto_h1_dispose(struct proto_h1 *p)
{
    free(p->hbuf);
    p->hbuf = NULL;
}

static int fail(struct proto_h1 *p, int err)
{
    p->cb_err = err;
    return HPE_USER;
}

static int on_message_begin(llhttp_t *lp)
{
    struct proto_h1 *p = lp->data;
    p->hlen = 0;
    p->n_hdrs = 0;
    p->in_value = false;
    p->headers_done = false;
    p->reason_len = 0;
    return 0;
}

/* llhttp keeps no limit on the reason phrase: a status line that never ends stops here. */
static int on_status(llhttp_t *lp, const char *at, size_t len)
{
    struct proto_h1 *p = lp->data;
    (void)at;
    p->reason_len += len;
    if (p->reason_len > PROTO_MAX_REASON)
        return fail(p, OCISYNC_ETOOBIG);
    return 0;
}

/* Appends header bytes; names and values are stored NUL-terminated, one after the other. */
static int append(struct proto_h1 *p, const char *at, size_t len)
{
    if (p->hbuf == NULL) {
        p->hbuf = malloc(PROTO_MAX_HEADER_BYTES);
        if (p->hbuf == NULL)
            return fail(p, UV_ENOMEM);
    }
    /* One byte is always kept for the terminating NUL. */
    if (len >= PROTO_MAX_HEADER_BYTES - p->hlen)
        return fail(p, OCISYNC_ETOOBIG);
    memcpy(p->hbuf + p->hlen, at, len);
    p->hlen += len;
    return 0;
}

static int on_header_field(llhttp_t *lp, const char *at, size_t len)
{
    struct proto_h1 *p = lp->data;
    if (!p->in_value && (p->n_hdrs == 0 || p->hdr[p->n_hdrs - 1].value != UINT32_MAX)) {
        /* The first bytes of a new header name. */
        if (p->n_hdrs == PROTO_MAX_HEADERS)
            return fail(p, OCISYNC_ETOOBIG);
        p->hdr[p->n_hdrs].name = (uint32_t)p->hlen;
        p->hdr[p->n_hdrs].value = UINT32_MAX;
        p->n_hdrs++;
    }
    return append(p, at, len);
}

static int on_header_field_complete(llhttp_t *lp)
{
    struct proto_h1 *p = lp->data;
    int rc = append(p, "", 1);
    if (rc != 0)
        return rc;
    p->hdr[p->n_hdrs - 1].value = (uint32_t)p->hlen;
    p->in_value = true;
    return 0;
}

static int on_header_value(llhttp_t *lp, const char *at, size_t len)
{
    return append(lp->data, at, len);
}

static int on_header_value_complete(llhttp_t *lp)
{
    struct proto_h1 *p = lp->data;
    /* Values may arrive with trailing whitespace; it is not part of the value. */
    size_t start = p->hdr[p->n_hdrs - 1].value;
    while (p->hlen > start && (p->hbuf[p->hlen - 1] == ' ' || p->hbuf[p->hlen - 1] == '\t'))
        p->hlen--;
    p->in_value = false;
    return append(p, "", 1);
}

static int on_headers_complete(llhttp_t *lp)
{
    struct proto_h1 *p = lp->data;
    int rc;
    p->status = llhttp_get_status_code(lp);
    /*
     * Interim responses (100 Continue and friends) are skipped entirely, and
     * have no body; a server that sends them without end is refused.
     */
    if (p->status >= 100 && p->status < 200 && p->status != 101) {
        if (++p->interim > PROTO_MAX_INTERIM)
            return fail(p, OCISYNC_ETOOBIG);
        return 1;
    }
    /* A header whose value never completed (field at the very end) is malformed. */
    if (p->n_hdrs > 0 && p->hdr[p->n_hdrs - 1].value == UINT32_MAX)
        return fail(p, OCISYNC_EHTTP);
    p->headers_done = true;
    if (p->cbs->on_headers != NULL) {
        rc = p->cbs->on_headers(p);
        if (rc != 0)
            return fail(p, rc);
    }
    /*
     * 1 tells llhttp this response has no body whatever Content-Length says: a HEAD
     * response carries its GET's length, and 204 and 304 end at the blank line (RFC 9112 6.3).
     */
    return p->head_request || p->status == 204 || p->status == 304 ? 1 : 0;
}

static int on_body(llhttp_t *lp, const char *at, size_t len)
{
    struct proto_h1 *p = lp->data;
    int rc;
    /* Resuming with no new bytes makes llhttp report an empty span: nothing to pass on. */
    if (len == 0)
        return 0;
    p->body_bytes += len;
    if (p->cbs->on_body == NULL)
        return 0;
    rc = p->cbs->on_body(p, at, len);
    if (rc == PROTO_PAUSE)
        return HPE_PAUSED;
    if (rc != 0)
        return fail(p, rc);
    return 0;
}

static int on_message_complete(llhttp_t *lp)
{
    struct proto_h1 *p = lp->data;
    if (!p->headers_done)
        return 0; /* the end of an interim response */
    p->message_done = true;
    /* Stop here: anything after one response is not ours to parse. */
    return HPE_PAUSED;
}

static int execute(struct proto_h1 *p, const char *data, size_t len, size_t *consumed)
{
    llhttp_errno_t e;
    *consumed = 0;
    if (p->message_done)
        return len == 0 ? 0 : PROTO_PAUSE;
    e = llhttp_execute(&p->parser, data, len);
    if (e == HPE_OK) {
        *consumed = len;
        return 0;
    }
    if (e == HPE_PAUSED) {
        const char *pos = llhttp_get_error_pos(&p->parser);
        *consumed = pos != NULL ? (size_t)(pos - data) : len;
        return PROTO_PAUSE;
    }
    if (e == HPE_USER && p->cb_err != 0)
        return p->cb_err;
    if (e == HPE_CB_HEADERS_COMPLETE && p->cb_err != 0)
        return p->cb_err;
    return p->cb_err != 0 ? p->cb_err : OCISYNC_EHTTP;
}

int proto_h1_feed(struct proto_h1 *p, const char *data, size_t len, size_t *consumed)
{
    size_t room, k = 0, rest = 0;
    int rc;
    if (p->headers_done || p->message_done)
        return execute(p, data, len, consumed);
    /*
     * Each header is capped, but not the whitespace and line breaks around
     * them nor the interim responses before: the whole head is capped here,
     * exactly (however the bytes are split), so it always ends.
     */
    room = PROTO_MAX_HEAD_BYTES - p->head_fed;
    if (len <= room) {
        rc = execute(p, data, len, consumed);
        if (!p->headers_done)
            p->head_fed += *consumed;
        return rc;
    }
    rc = execute(p, data, room, &k);
    p->head_fed += k;
    *consumed = k;
    if (rc != 0)
        return rc;
    if (!p->headers_done)
        return OCISYNC_ETOOBIG;
    /* The head ended within the cap: the rest is the body's. */
    rc = execute(p, data + k, len - k, &rest);
    *consumed = k + rest;
    return rc;
}

void proto_h1_resume(struct proto_h1 *p)
{
    if (!p->message_done)
        llhttp_resume(&p->parser);
}

int proto_h1_finish(struct proto_h1 *p)
{
    llhttp_errno_t e;
    if (p->message_done)
        return 0;
    e = llhttp_finish(&p->parser);
    if (e == HPE_OK || e == HPE_PAUSED)
        return p->message_done ? 0 : OCISYNC_ECLOSED;
    return OCISYNC_ECLOSED;
}

const char *proto_h1_header(const struct proto_h1 *p, const char *name)
{
    for (unsigned i = 0; i < p->n_hdrs; i++) {
        /* A header still being received (a parse error cut it) has no terminating NUL yet. */
        if (p->hdr[i].value == UINT32_MAX || (p->in_value && i + 1 == p->n_hdrs))
            continue;
        if (strcasecmp(p->hbuf + p->hdr[i].name, name) == 0)
            return p->hbuf + p->hdr[i].value;
    }
    return NULL;
}

bool proto_h1_keep_alive(const struct proto_h1 *p)
{
    return p->message_done && llhttp_should_keep_alive(&p->parser);
}

int64_t proto_h1_content_length(const struct proto_h1 *p)
{
    const char *v = proto_h1_header(p, "Content-Length");
    char *end;
    long long n;
    if (v == NULL || *v < '0' || *v > '9')
        return -1;
    n = strtoll(v, &end, 10);
    if (*end != '\0' || n < 0)
        return -1;
    return n;
}

size_t proto_chunk_head(char *buf, size_t len)
{
    if (len == 0) {
        memcpy(buf, "0\r\n\r\n", 5);
        return 5;
    }
    return (size_t)snprintf(buf, 20, "%zx\r\n", len);
}
