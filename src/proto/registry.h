/*
 * The distribution API: one registry endpoint and the operations on it
 * (ping, manifests, blobs, uploads), each an HTTP exchange whose outcome is
 * turned into 0 or an error with a readable message naming the registry, the
 * request, the HTTP status and the registry's own error codes.
 */
#ifndef PROTO_REGISTRY_H
#define PROTO_REGISTRY_H

#include "proto/auth.h"
#include "proto/http.h"

#define PROTO_REG_ERRMSG_MAX 1024
#define PROTO_REG_MAX_TOKENS 8
#define PROTO_REG_SCOPE_MAX 1024

/*
 * When requests to a registry are tried again: connection errors, timeouts,
 * 408, 429 and 5xx, for requests whose body can be sent again, after an
 * exponential backoff with jitter (or the server's Retry-After).
 */
struct proto_retry {
    unsigned max_retries;        /* attempts after the first */
    uint64_t base_ms;            /* first backoff; doubles each attempt */
    uint64_t max_ms;             /* backoff cap */
    uint64_t retry_after_cap_ms; /* a longer Retry-After is cut to this */
};

#define PROTO_RETRY_DEFAULT_TIMES 5
#define PROTO_RETRY_DEFAULT_BASE_MS 500
#define PROTO_RETRY_DEFAULT_MAX_MS 30000
#define PROTO_RETRY_AFTER_CAP_MS 60000

/* A bearer token for one scope string, as the token server issued it. */
struct proto_reg_token {
    char scope[PROTO_REG_SCOPE_MAX];
    char *header;        /* owned: "Bearer <token>" */
    uint64_t fetched_ms; /* loop time */
    uint64_t expires_ms; /* loop time */
};

/*
 * One registry endpoint and what ocisync has learnt about its authentication:
 * the challenge from its first 401, and a cache of tokens per scope. Once the
 * challenge is known, credentials go out with every request (a token is
 * fetched first if needed), so a streamed upload never meets a 401 because
 * of missing credentials.
 */
struct proto_registry {
    struct proto_client *client;   /* not owned */
    char name[LOOP_HOST_MAX + 8];  /* as the user named it: "docker.io", "127.0.0.1:5000" */
    char base[LOOP_HOST_MAX + 32]; /* "http://127.0.0.1:5000" */
    struct loop_tls_config *tls;   /* a reference; NULL for plain HTTP */
    bool insecure;          /* plain HTTP or no verification: https -> http redirects allowed */
    struct proto_cred cred; /* owned; kind NONE for anonymous */
    char scope[PROTO_REG_SCOPE_MAX]; /* scopes ops ask for unless they name their own */
    enum proto_auth_scheme auth;     /* learnt from a 401; NONE until then */
    struct proto_auth_challenge challenge;
    struct proto_reg_token tokens[PROTO_REG_MAX_TOKENS];
    struct queue waiting;         /* ops waiting for a token */
    struct proto_http_req *fetch; /* the token request in flight, owned */
    char fetch_scope[PROTO_REG_SCOPE_MAX];
    char *fetch_body;       /* owned: the OAuth2 form for identity tokens */
    unsigned token_fetches; /* for tests and --debug */
    bool withheld_creds;    /* credentials were kept from a plain-HTTP token realm */
    struct proto_retry retry;
    unsigned retries; /* requests sent again, for the summary */
    /*
     * Set for a registry whose certificate is not verified: if it turns out
     * not to speak TLS at all, talk plain HTTP to it, as docker and skopeo
     * do for "insecure" registries. Cleared once that happened.
     */
    bool http_fallback;
    unsigned throttled; /* answers that said "slow down" (429, or 503 with Retry-After) */
};

/* scheme is "http" or "https"; hostport is what to connect to ("host:port" or "[v6]:port"). */
int proto_registry_init(struct proto_registry *reg, struct proto_client *cl, const char *name,
                        const char *scheme, const char *hostport);
/* Uses tls for https (takes a reference). */
void proto_registry_set_tls(struct proto_registry *reg, struct loop_tls_config *tls);
/* Takes over cred's contents (cred is left empty). */
void proto_registry_set_cred(struct proto_registry *reg, struct proto_cred *cred);
/*
 * Sets dst up as a copy of src's configuration: name, address, TLS,
 * credentials, retry policy and the authentication challenge learnt so far
 * (not its tokens, scope or counters). dst must not be initialised.
 */
int proto_registry_clone(struct proto_registry *dst, const struct proto_registry *src);
/* Switches reg from https to plain http (see http_fallback). */
void proto_registry_use_http(struct proto_registry *reg);
/* Releases tokens, credentials and the TLS reference; no op may be in flight. */
void proto_registry_dispose(struct proto_registry *reg);

struct proto_reg_op;
typedef void (*proto_reg_cb)(struct proto_reg_op *op, int err);
/*
 * The body of a blob GET: return 0, PROTO_PAUSE (until proto_reg_op_resume)
 * or an error that ends the request.
 */
typedef int (*proto_reg_body_cb)(struct proto_reg_op *op, const char *data, size_t len);

struct proto_reg_op {
    struct proto_http_req http; /* first: ops are found from their request */
    struct proto_registry *reg; /* not owned */
    proto_reg_cb cb;
    void *data;
    /* HTTP statuses that count as success for this operation. */
    int expect[4];
    /* A sentence naming what failed, set when cb gets an error. */
    char errmsg[PROTO_REG_ERRMSG_MAX];
    char what[160]; /* "GET manifest library/alpine:3.20", for messages */
    /* Authentication. */
    const char *scope; /* borrowed; NULL: the registry's */
    struct queue wait_link;
    bool waiting;
    bool auth_retried;
    /* Retries. */
    unsigned attempt; /* retries so far */
    struct loop_delay backoff;
    /* A streamed response body (on_body) cannot be retried once bytes were passed on. */
    bool streamed_response;
    /*
     * Where the request goes (owned). Every attempt starts here again, so a
     * retry after a redirect asks the registry anew rather than the place it
     * pointed to last time.
     */
    char *url;
    const char *method; /* static string */
    /* A manifest GET: the digest its bytes must have when ref is a digest ("" otherwise). */
    char want_digest[160];
    bool manifest_get, manifest_put;
    /* proto_reg_blob_fetch: what the answer must be, and where its body goes. */
    uint64_t fetch_offset, fetch_size;
    proto_reg_body_cb on_body;
};

/*
 * True if err (a transport error) or status (an HTTP answer) is worth trying
 * again: the failure may not happen next time.
 */
bool proto_reg_transient(int err, int status);
/*
 * proto_reg_transient for op's failure with err: the status of its answer
 * when err is one an HTTP status maps to, err itself otherwise.
 */
bool proto_reg_op_transient(const struct proto_reg_op *op, int err);
/*
 * The delay before retry number attempt (0-based): the Retry-After of the
 * last response if it has one (capped), else base * 2^attempt with jitter.
 */
uint64_t proto_reg_backoff_ms(const struct proto_retry *policy, unsigned attempt,
                              const char *retry_after);

/*
 * Each constructor prepares op (call proto_reg_op_dispose after cb) and
 * proto_reg_op_start sends it. The result is in op->http: status, headers
 * (proto_http_header) and, for collected bodies, resp_body/resp_len.
 */
int proto_reg_ping(struct proto_reg_op *op, struct proto_registry *reg);
/* GET (or HEAD) /v2/<repo>/manifests/<ref> with the Accept list of all four manifest types. */
int proto_reg_manifest_get(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                           const char *ref, bool head);
/* PUT /v2/<repo>/manifests/<ref>; data is borrowed until cb. */
int proto_reg_manifest_put(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                           const char *ref, const char *media_type, const void *data, size_t len);
/*
 * DELETE /v2/<repo>/manifests/<digest>: 202 (or 200) when deleted. A
 * registry that does not allow deletes answers 405 (distribution:
 * "UNSUPPORTED"), which op->errmsg quotes.
 */
int proto_reg_manifest_delete(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                              const char *digest);
int proto_reg_blob_head(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                        const char *digest);
/* GET /v2/<repo>/blobs/<digest>; the caller sets op->http.on_body to stream it. */
int proto_reg_blob_get(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                       const char *digest);
/*
 * GET a blob of size bytes from byte offset on (Range when offset > 0),
 * streamed to on_body. The answer must be what was asked: 200 with the
 * whole size, or 206 with Content-Range "bytes OFFSET-(size-1)/size" (a
 * 200 to a ranged request, another range or another total is UV_ERANGE; a
 * Content-Length that disagrees is OCISYNC_ESIZEMISMATCH): bytes are never
 * appended blindly. Once body bytes were passed on, the registry layer does
 * not retry it: that is the caller's (proto_reg_op_body_bytes).
 */
int proto_reg_blob_fetch(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                         const char *digest, uint64_t offset, uint64_t size,
                         proto_reg_body_cb on_body);
/* Resumes a body paused with PROTO_PAUSE. */
void proto_reg_op_resume(struct proto_reg_op *op);
/* Ends op now: its callback runs with err (UV_ECANCELED when 0), unless it already ran. */
void proto_reg_op_abort(struct proto_reg_op *op, int err);
/* Body bytes the last attempt passed to on_body. */
uint64_t proto_reg_op_body_bytes(const struct proto_reg_op *op);
/*
 * POST /v2/<repo>/blobs/uploads/, with ?mount=<digest>&from=<from> when
 * mount_digest is set. Success is 201 (mounted) or 202 (upload started; see
 * proto_reg_upload_location and OCI-Chunk-Min-Length).
 */
int proto_reg_upload_start(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                           const char *mount_digest, const char *from);
/*
 * PATCH <location> with Content-Range start-(start+len-1); body streamed from
 * body. A body of unknown length (-1) goes without Content-Range, chunked.
 */
int proto_reg_upload_patch(struct proto_reg_op *op, struct proto_registry *reg,
                           const char *location, uint64_t start, const struct proto_body *body);
/*
 * GET <location>: how much of the upload the registry holds (204 with
 * "Range: 0-N"; see proto_reg_upload_offset) and its newest Location.
 */
int proto_reg_upload_status(struct proto_reg_op *op, struct proto_registry *reg,
                            const char *location);
/*
 * The number of bytes the registry reports holding, from the Range header of
 * an upload response, or -1 when it is absent or says "0-0": distribution
 * answers "0-0" both after 0 and after 1 byte, so it means "unknown".
 */
int64_t proto_reg_upload_offset(struct proto_reg_op *op);
/*
 * DELETE <location>: drops an upload that will not be committed, so the
 * registry need not keep its bytes until it purges stale uploads (204).
 */
int proto_reg_upload_cancel(struct proto_reg_op *op, struct proto_registry *reg,
                            const char *location);
/* PUT <location>&digest=<digest>, with body (a monolithic upload) or without (closing chunks). */
int proto_reg_upload_put(struct proto_reg_op *op, struct proto_registry *reg, const char *location,
                         const char *digest, const struct proto_body *body);

/*
 * GET /v2/<repo>/referrers/<digest> (OCI 1.1): 200 with an image index of the
 * manifests whose subject is digest; 404 where the registry has no such API.
 */
int proto_reg_referrers(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                        const char *digest);
/*
 * GET /v2/<repo>/tags/list?n=1000, or GET /v2/_catalog?n=1000 when repo is
 * NULL; next, when set, is the following page's URL (proto_reg_next_page).
 * The body ({"tags": [...]} or {"repositories": [...]}) is collected, capped
 * at 8 MiB a page.
 */
int proto_reg_list(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                   const char *next);
/*
 * GET /v2/<repo>/tags/list?n=1: whether the repository has any tag (its body,
 * at most 64 KiB, is collected). A registry answers 404 (NAME_UNKNOWN) for a
 * repository that does not exist yet.
 */
int proto_reg_tags_peek(struct proto_reg_op *op, struct proto_registry *reg, const char *repo);
/*
 * The next page's URL from the response's Link header (rel="next"), resolved
 * against the request; *err is 0 and the result NULL on the last page. A link
 * to another host is refused (*err set, op->errmsg says why): listings stay
 * on the registry that credentials were given for.
 */
char *proto_reg_next_page(struct proto_reg_op *op, int *err);

int proto_reg_op_start(struct proto_reg_op *op, proto_reg_cb cb);
/* The HTTP status of op's answer (valid in its callback; 0 when none came). */
int proto_reg_status(const struct proto_reg_op *op);
/* A header of op's answer, or NULL (valid in its callback). */
const char *proto_reg_header(const struct proto_reg_op *op, const char *name);
/* The collected body of op's answer and its length (borrowed; valid until dispose). */
const char *proto_reg_body(const struct proto_reg_op *op, size_t *len);
/* The collected body, taken over by the caller (free it), NUL-terminated; NULL when none. */
char *proto_reg_take_body(struct proto_reg_op *op, size_t *len);
/* Caps the body collected for op at max bytes (more fails it with OCISYNC_ETOOBIG). */
void proto_reg_set_body_max(struct proto_reg_op *op, size_t max);
void proto_reg_op_dispose(struct proto_reg_op *op);

/*
 * The upload URL from a Location header, resolved (malloc'ed); NULL with op->errmsg set
 * when it is missing, invalid, or on another host than the registry (data goes nowhere else).
 */
char *proto_reg_upload_location(struct proto_reg_op *op);
/* OCI-Chunk-Min-Length from the response, or 0. */
uint64_t proto_reg_chunk_min(struct proto_reg_op *op);

/*
 * Formats the registry's JSON error body ({"errors":[{"code":..,"message":..}]})
 * into buf as "CODE: message; CODE: message". Returns false when the body is
 * not such a document.
 */
bool proto_reg_format_errors(const char *body, size_t len, char *buf, size_t buflen);

#endif
