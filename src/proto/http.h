/*
 * HTTP/1.1 client on llhttp.
 *
 * proto_h1 is the response parser alone (bytes in, headers and body out, no
 * I/O) so it can be tested with recorded bytes. proto_http_req is one
 * exchange on a pooled connection: a request whose body streams from a
 * source, and a response whose body streams to the caller with backpressure.
 */
#ifndef PROTO_HTTP_H
#define PROTO_HTTP_H

#include "loop/loop.h"

#include <llhttp.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PROTO_MAX_HEADERS 100
#define PROTO_MAX_HEADER_BYTES (64 * 1024)
#define PROTO_MAX_URL 8192
#define PROTO_MAX_REDIRECTS 5
/* Error bodies (non-2xx) are kept up to this size for messages; the rest is dropped. */
#define PROTO_MAX_ERROR_BODY (64 * 1024)
/*
 * Bodies nobody wants (an error's beyond PROTO_MAX_ERROR_BODY, a redirect's,
 * an upload's 202) are read and dropped up to this many bytes so the
 * connection can be reused; a longer one ends the exchange there and the
 * connection is closed instead.
 */
#define PROTO_MAX_DRAIN (1024 * 1024)
/* The reason phrase of a status line ("OK", "Not Found") may be this long. */
#define PROTO_MAX_REASON 1024
/* Interim responses (100 Continue, 103 Early Hints) allowed before the final one. */
#define PROTO_MAX_INTERIM 8
/* All bytes of the response before its body: interim responses, status line and headers. */
#define PROTO_MAX_HEAD_BYTES (4 * PROTO_MAX_HEADER_BYTES)

/* Returned by a body callback to stop the flow until proto_http_resume. */
#define PROTO_PAUSE 1
/* Returned by a body source's peek when the body (of unknown length) is complete. */
#define PROTO_BODY_EOF 2
/* Returned by a body callback: the rest of the body is not wanted (PROTO_MAX_DRAIN). */
#define PROTO_DRAINED 3

/* ------------------------------------------------------------------------------------------ */
/* URLs */

struct proto_url {
    char scheme[8];           /* "http" or "https" */
    char host[LOOP_HOST_MAX]; /* without brackets */
    int port;
    char *path; /* "/v2/...?..."; owned */
};

/* Parses an absolute http(s) URL. Returns 0 or OCISYNC_EUSAGE. */
int proto_url_parse(const char *s, struct proto_url *u);
/* Resolves a Location value (absolute, "//host/...", "/path" or relative) against base. */
int proto_url_resolve(const struct proto_url *base, const char *ref, struct proto_url *out);
/* "scheme://host:port" (brackets for IPv6) */
int proto_url_origin(const struct proto_url *u, char *buf, size_t len);
/* The full URL as a malloc'ed string. */
char *proto_url_string(const struct proto_url *u);
void proto_url_free(struct proto_url *u);
bool proto_url_same_origin(const struct proto_url *a, const struct proto_url *b);

/* ------------------------------------------------------------------------------------------ */
/* Response parser */

struct proto_h1;
struct proto_h1_cbs {
    /* Status line and headers are complete. Return 0 or a negative error. */
    int (*on_headers)(struct proto_h1 *p);
    /* Body bytes (de-chunked). Return 0, PROTO_PAUSE, or a negative error. */
    int (*on_body)(struct proto_h1 *p, const char *data, size_t len);
};

struct proto_h1 {
    llhttp_t parser;
    const struct proto_h1_cbs *cbs;
    void *data;
    bool head_request; /* the response has no body whatever its headers say */
    int status;
    /* Headers: names and values NUL-terminated in hbuf; hdr[] are offsets. */
    char *hbuf; /* owned, at most PROTO_MAX_HEADER_BYTES */
    size_t hlen;
    struct {
        uint32_t name, value;
    } hdr[PROTO_MAX_HEADERS];
    unsigned n_hdrs;
    bool in_value;
    bool headers_done;
    bool message_done;
    int cb_err; /* error returned by a callback */
    uint64_t body_bytes;
    size_t reason_len; /* bytes of the current status line's reason phrase */
    unsigned interim;  /* interim responses skipped so far */
    uint64_t head_fed; /* bytes fed before the final response's headers completed */
};

void proto_h1_init(struct proto_h1 *p, const struct proto_h1_cbs *cbs, void *data,
                   bool head_request);
void proto_h1_dispose(struct proto_h1 *p);
/*
 * Parses data. Returns 0 when all of it was consumed (the message may or may
 * not be complete), PROTO_PAUSE when a callback paused or the message is
 * complete with *consumed telling how far it got, PROTO_DRAINED when a body
 * callback returned it (the parser cannot go on), or a negative error:
 * OCISYNC_EHTTP for malformed input, OCISYNC_ETOOBIG when a cap is exceeded
 * (headers, reason phrase, interim responses, all of the head), or whatever
 * a callback returned.
 */
int proto_h1_feed(struct proto_h1 *p, const char *data, size_t len, size_t *consumed);
/* Continues after PROTO_PAUSE from a callback (not after message completion). */
void proto_h1_resume(struct proto_h1 *p);
/* The peer closed the connection; completes a read-until-close body or fails. */
int proto_h1_finish(struct proto_h1 *p);
/* Case-insensitive lookup of the first header with this name, or NULL. */
const char *proto_h1_header(const struct proto_h1 *p, const char *name);
/* True if the connection may carry another exchange after this message. */
bool proto_h1_keep_alive(const struct proto_h1 *p);
/* Content-Length, or -1 if absent or not applicable. */
int64_t proto_h1_content_length(const struct proto_h1 *p);

/*
 * Encodes the framing of one chunk of Transfer-Encoding: chunked into buf
 * (at least 20 bytes): the size line before the data. len 0 writes the last
 * chunk and the empty trailer. Returns the number of bytes written.
 */
size_t proto_chunk_head(char *buf, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* Client */

struct proto_client {
    struct loop_ctx *loop; /* not owned */
    /* For https requests that name no configuration: system CAs, verification on. */
    struct loop_tls_config *default_tls; /* owned, created on first use */
    uint64_t idle_timeout_ms;            /* no progress for this long fails the exchange */
    /*
     * An exchange must be over within this (0: no limit), except while a
     * blob's body streams either way: a server that trickles a byte now
     * and then never trips the idle timeout, but does trip this.
     */
    uint64_t total_timeout_ms;
    /*
     * A streamed body (a blob's, either way) that averages fewer than
     * low_speed_limit bytes a second over low_speed_time_ms fails, as curl's
     * --speed-limit / --speed-time; time spent waiting for our own side (a
     * paused consumer, a source with nothing yet) does not count. 0: off.
     */
    uint64_t low_speed_limit;
    uint64_t low_speed_time_ms;
    char user_agent[64];
};

/* Defaults: --timeout 120 s, a 240 s deadline, 1 KiB/s over 120 s at least for bodies. */
#define PROTO_DEFAULT_IDLE_MS 120000
#define PROTO_DEFAULT_LOW_SPEED 1024

void proto_client_init(struct proto_client *cl, struct loop_ctx *loop);
/*
 * Sets the idle timeout to ms and, from it, the whole-exchange deadline
 * (twice as long) and the low-speed window (as long).
 */
void proto_client_set_timeout(struct proto_client *cl, uint64_t ms);
void proto_client_dispose(struct proto_client *cl);

/*
 * A request body source. peek offers the next bytes (it may offer fewer than
 * are left); consume says how many of them are written and can be released.
 * When nothing is available yet, peek sets *len to 0 and the source calls
 * proto_http_body_ready when it has more; peek returns PROTO_BODY_EOF when a
 * body of unknown length is complete. rewind, if set, makes the body
 * replayable (for redirects and a retry on a stale connection).
 */
struct proto_body {
    int (*peek)(void *arg, const char **data, size_t *len);
    void (*consume)(void *arg, size_t n);
    int (*rewind)(void *arg);
    void *arg;
    int64_t length; /* -1: send with Transfer-Encoding: chunked */
};

struct proto_http_req;
typedef void (*proto_http_done_cb)(struct proto_http_req *r, int err);

struct proto_header {
    char *name;  /* owned */
    char *value; /* owned */
};

enum proto_http_state {
    PROTO_HTTP_IDLE = 0,
    PROTO_HTTP_CONNECTING,
    PROTO_HTTP_ACTIVE, /* request going out and/or response coming in */
    PROTO_HTTP_DONE,
};

struct proto_http_req {
    /* Set by the caller before proto_http_start. */
    struct proto_client *client;
    const char *method; /* static string */
    struct proto_url url;
    struct proto_header *headers; /* owned, extra request headers */
    size_t n_headers;
    /* The Authorization value, sent only to auth_origin ("scheme://host:port"). */
    char *authorization; /* owned */
    char auth_origin[LOOP_HOST_MAX + 16];
    bool has_body;
    struct proto_body body;
    bool follow_redirects;
    /* TLS settings for https (borrowed; NULL: the client's default). Redirects keep them. */
    struct loop_tls_config *tls;
    /* An https -> http redirect is refused unless this is set (insecure registries). */
    bool allow_http_redirect;
    /*
     * 2xx response bodies: to on_body if set (return 0, PROTO_PAUSE or an
     * error), else collected into resp_body up to collect_max (over it the
     * exchange fails with OCISYNC_ETOOBIG; 0 drops the body). Non-2xx bodies are always
     * collected, up to PROTO_MAX_ERROR_BODY.
     */
    int (*on_headers)(struct proto_http_req *r); /* optional; may return an error */
    int (*on_body)(struct proto_http_req *r, const char *data, size_t len);
    size_t collect_max;
    proto_http_done_cb on_done;
    void *data;

    /* The response, valid in on_headers, on_body and on_done. */
    int status;
    struct proto_h1 h1;
    char *resp_body; /* owned */
    size_t resp_len;
    size_t resp_cap;
    char *error_detail; /* owned: what failed, for messages ("connect to host:port: ...") */

    /* Internal. */
    enum proto_http_state state;
    struct loop_conn_req conn_req;
    struct loop_conn *conn;
    char *head; /* owned, the request line and headers */
    size_t head_len;
    bool head_sent;
    bool writing;
    size_t write_len; /* body bytes in the write in flight */
    char chunk_buf[24];
    int64_t body_sent;
    bool body_done;
    bool body_waiting;   /* the source had nothing; waiting for body_ready */
    bool paused;         /* the response consumer paused */
    const char *pending; /* unparsed bytes in the connection's buffer while paused */
    size_t pending_len;
    bool in_parse;
    bool resume_requested; /* proto_http_resume ran under a parser callback */
    int deferred_err;      /* an end requested under a parser callback (1: success) */
    bool redirect_pending;
    bool chunked_final; /* the last chunk is written or being written */
    bool leftover;      /* bytes followed the response: the connection is not reusable */
    bool reused_conn;
    uint64_t body_passed; /* response bytes handed to on_body in this exchange */
    bool got_bytes;
    unsigned redirects;
    unsigned retries;
    uint64_t started_ms;
    uint64_t deadline_start; /* total_timeout_ms counts from here */
    uint64_t drained;        /* body bytes read and dropped */
    uint64_t ls_start;       /* the low-speed window: when it began, */
    uint64_t ls_bytes;       /* the body bytes moved in it, */
    bool ls_excused;         /* and whether we made the peer wait in it */
    bool body_mem;           /* the body is proto_http_set_body_mem's */
    const char *mem;         /* proto_http_set_body_mem: borrowed */
    size_t mem_len, mem_off;
};

/*
 * Prepares r for method and url (absolute). Returns 0 or OCISYNC_EUSAGE for a
 * bad URL. The caller then sets headers, body and callbacks.
 */
int proto_http_req_init(struct proto_http_req *r, struct proto_client *cl, const char *method,
                        const char *url);
/* Adds a request header (copied). */
int proto_http_add_header(struct proto_http_req *r, const char *name, const char *value);
/* Body from memory, borrowed: it must outlive the exchange. Replayable. */
void proto_http_set_body_mem(struct proto_http_req *r, const void *data, size_t len);
/*
 * Sends the request. on_done runs exactly once, after which the client no
 * longer touches r (the caller may free it in on_done). Returns 0 or an
 * error without calling on_done.
 */
int proto_http_start(struct proto_http_req *r);
/* Resumes a response body paused with PROTO_PAUSE. */
void proto_http_resume(struct proto_http_req *r);
/* The body source has more bytes after a peek that offered none. */
void proto_http_body_ready(struct proto_http_req *r);
/* Aborts the exchange: on_done runs with err (unless already done). */
void proto_http_abort(struct proto_http_req *r, int err);
/* Releases what r owns; r must not be in flight. */
void proto_http_req_dispose(struct proto_http_req *r);
/* A response header of the final response, or NULL. */
const char *proto_http_header(const struct proto_http_req *r, const char *name);

#endif
