/* strptime */
#define _GNU_SOURCE
#include "proto/registry.h"

#include "common/log.h"
#include "common/queue.h"
#include "ocisync.h"
#include "proto/internal.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MANIFEST_ACCEPT                                                                            \
    "application/vnd.oci.image.index.v1+json, "                                                    \
    "application/vnd.docker.distribution.manifest.list.v2+json, "                                  \
    "application/vnd.oci.image.manifest.v1+json, "                                                 \
    "application/vnd.docker.distribution.manifest.v2+json"
#define MANIFEST_MAX (4 * 1024 * 1024)

int proto_registry_init(struct proto_registry *reg, struct proto_client *cl, const char *name,
                        const char *scheme, const char *hostport)
{
    memset(reg, 0, sizeof(*reg));
    reg->client = cl;
    queue_init(&reg->waiting);
    reg->insecure = strcmp(scheme, "http") == 0;
    reg->retry.max_retries = PROTO_RETRY_DEFAULT_TIMES;
    reg->retry.base_ms = PROTO_RETRY_DEFAULT_BASE_MS;
    reg->retry.max_ms = PROTO_RETRY_DEFAULT_MAX_MS;
    reg->retry.retry_after_cap_ms = PROTO_RETRY_AFTER_CAP_MS;
    if (snprintf(reg->name, sizeof(reg->name), "%s", name) >= (int)sizeof(reg->name))
        return OCISYNC_EUSAGE;
    if (snprintf(reg->base, sizeof(reg->base), "%s://%s", scheme, hostport) >=
        (int)sizeof(reg->base))
        return OCISYNC_EUSAGE;
    return 0;
}

static void on_http_done(struct proto_http_req *r, int err);
static int op_send(struct proto_reg_op *op);

int proto_registry_clone(struct proto_registry *dst, const struct proto_registry *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->client = src->client;
    queue_init(&dst->waiting);
    memcpy(dst->name, src->name, sizeof(dst->name));
    memcpy(dst->base, src->base, sizeof(dst->base));
    dst->insecure = src->insecure;
    dst->retry = src->retry;
    dst->auth = src->auth;
    dst->challenge = src->challenge;
    if (src->tls != NULL) {
        loop_tls_config_ref(src->tls);
        dst->tls = src->tls;
    }
    dst->cred.kind = src->cred.kind;
    memcpy(dst->cred.source, src->cred.source, sizeof(dst->cred.source));
    if (src->cred.username != NULL && (dst->cred.username = strdup(src->cred.username)) == NULL)
        return UV_ENOMEM;
    if (src->cred.secret != NULL && (dst->cred.secret = strdup(src->cred.secret)) == NULL)
        return UV_ENOMEM;
    dst->withheld_creds = src->withheld_creds;
    dst->http_fallback = src->http_fallback;
    return 0;
}

void proto_registry_use_http(struct proto_registry *reg)
{
    if (strncmp(reg->base, "https://", 8) == 0)
        memmove(reg->base + 4, reg->base + 5, strlen(reg->base + 5) + 1);
    loop_tls_config_unref(reg->tls);
    reg->tls = NULL;
    reg->insecure = true;
    reg->http_fallback = false;
}

void proto_registry_set_tls(struct proto_registry *reg, struct loop_tls_config *tls)
{
    if (tls != NULL)
        loop_tls_config_ref(tls);
    loop_tls_config_unref(reg->tls);
    reg->tls = tls;
    if (tls != NULL && !tls->verify)
        reg->insecure = true;
}

void proto_registry_set_cred(struct proto_registry *reg, struct proto_cred *cred)
{
    proto_cred_dispose(&reg->cred);
    reg->cred = *cred;
    memset(cred, 0, sizeof(*cred));
}

void proto_registry_dispose(struct proto_registry *reg)
{
    for (size_t i = 0; i < PROTO_REG_MAX_TOKENS; i++) {
        free(reg->tokens[i].header);
        reg->tokens[i].header = NULL;
    }
    if (reg->fetch != NULL) {
        proto_http_req_dispose(reg->fetch);
        free(reg->fetch);
        reg->fetch = NULL;
    }
    free(reg->fetch_body);
    reg->fetch_body = NULL;
    proto_cred_dispose(&reg->cred);
    loop_tls_config_unref(reg->tls);
    reg->tls = NULL;
}

static const struct digest_alg {
    const char *prefix, *evp;
    size_t hex;
} digest_algs[] = {{"sha256:", "SHA256", 64}, {"sha512:", "SHA512", 128}};

/* The algorithm digest starts with ("sha256:..."), or NULL. */
static const struct digest_alg *alg_of(const char *digest)
{
    for (size_t i = 0; i < sizeof(digest_algs) / sizeof(digest_algs[0]); i++)
        if (strncmp(digest, digest_algs[i].prefix, strlen(digest_algs[i].prefix)) == 0)
            return &digest_algs[i];
    return NULL;
}

const char *proto__digest_alg(const char *digest)
{
    const struct digest_alg *a = alg_of(digest);
    const char *hex;
    if (a == NULL)
        return NULL;
    hex = digest + strlen(a->prefix);
    if (strlen(hex) != a->hex)
        return NULL;
    for (const char *p = hex; *p != '\0'; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return NULL;
    return a->evp;
}

int proto__digest_of(const char *like, const void *data, size_t len, char *out, size_t outlen)
{
    const struct digest_alg *a = alg_of(like);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t n;
    if (a == NULL)
        return OCISYNC_EDIGEST;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_get_digestbyname(a->evp), NULL))
        return UV_ENOMEM;
    n = strlen(a->prefix);
    if (outlen < n + 2 * (size_t)mdlen + 1)
        return OCISYNC_ETOOBIG;
    memcpy(out, like, n);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + n + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/*
 * A manifest's bytes against what was asked for and what the registry
 * claims: fetched by digest, they must have that digest; a
 * Docker-Content-Digest header must name the digest they have (a registry
 * or proxy that says one thing and serves another is not believed).
 * Returns 0, or an error with op->errmsg set.
 */
static int verify_manifest(struct proto_reg_op *op)
{
    const struct proto_http_req *r = &op->http;
    const char *dcd = proto_http_header(r, "Docker-Content-Digest");
    char got[160];
    int err;
    if (op->want_digest[0] != '\0') {
        err = proto__digest_of(op->want_digest, r->resp_body != NULL ? r->resp_body : "",
                               r->resp_len, got, sizeof(got));
        if (err != 0)
            return err;
        if (strcmp(got, op->want_digest) != 0) {
            snprintf(op->errmsg, sizeof(op->errmsg),
                     "registry %s: %s: the registry sent a manifest whose digest is %s; "
                     "refused",
                     op->reg->name, op->what, got);
            return OCISYNC_EDIGESTMISMATCH;
        }
    }
    /* A header naming an algorithm we do not know cannot be checked, and is not used either. */
    if (dcd == NULL || proto__digest_alg(dcd) == NULL)
        return 0;
    err = proto__digest_of(dcd, r->resp_body != NULL ? r->resp_body : "", r->resp_len, got,
                           sizeof(got));
    if (err != 0)
        return err;
    if (strcmp(got, dcd) != 0) {
        snprintf(op->errmsg, sizeof(op->errmsg),
                 "registry %s: %s: Docker-Content-Digest says %.72s, but the manifest sent has "
                 "digest %s; refused",
                 op->reg->name, op->what, dcd, got);
        return OCISYNC_EDIGESTMISMATCH;
    }
    return 0;
}

/* Prepares op for method on base + path, or on an absolute URL (upload locations). */
static int op_init(struct proto_reg_op *op, struct proto_registry *reg, const char *method,
                   const char *url_or_path, const char *what)
{
    char *url;
    int err;
    memset(op, 0, sizeof(*op));
    op->reg = reg;
    snprintf(op->what, sizeof(op->what), "%s", what);
    if (url_or_path[0] == '/') {
        size_t n = strlen(reg->base) + strlen(url_or_path) + 1;
        url = malloc(n);
        if (url == NULL)
            return UV_ENOMEM;
        snprintf(url, n, "%s%s", reg->base, url_or_path);
    } else {
        url = strdup(url_or_path);
        if (url == NULL)
            return UV_ENOMEM;
    }
    op->url = url;
    op->method = method;
    err = proto_http_req_init(&op->http, reg->client, method, url);
    if (err != 0) {
        snprintf(op->errmsg, sizeof(op->errmsg), "%s: %s: invalid URL", reg->name, what);
        return err;
    }
    op->http.on_done = on_http_done;
    op->http.data = op;
    op->http.tls = reg->tls;
    op->http.allow_http_redirect = reg->insecure;
    queue_init(&op->wait_link);
    op->expect[0] = 200;
    return 0;
}

int proto_reg_ping(struct proto_reg_op *op, struct proto_registry *reg)
{
    return op_init(op, reg, "GET", "/v2/", "ping /v2/");
}

int proto_reg_manifest_get(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                           const char *ref, bool head)
{
    char path[1024], what[160];
    int err;
    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", repo, ref);
    snprintf(what, sizeof(what), "%s manifest %s:%s", head ? "HEAD" : "GET", repo, ref);
    err = op_init(op, reg, head ? "HEAD" : "GET", path, what);
    if (err != 0)
        return err;
    op->http.collect_max = MANIFEST_MAX;
    op->manifest_get = !head;
    if (proto__digest_alg(ref) != NULL)
        snprintf(op->want_digest, sizeof(op->want_digest), "%s", ref);
    return proto_http_add_header(&op->http, "Accept", MANIFEST_ACCEPT);
}

int proto_reg_manifest_put(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                           const char *ref, const char *media_type, const void *data, size_t len)
{
    char path[1024], what[160];
    int err;
    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", repo, ref);
    snprintf(what, sizeof(what), "PUT manifest %s:%s", repo, ref);
    err = op_init(op, reg, "PUT", path, what);
    if (err != 0)
        return err;
    op->expect[0] = 201;
    op->expect[1] = 200;
    op->expect[2] = 204;
    /* A manifest goes to the registry the user named, nowhere else (see on_http_done). */
    op->http.follow_redirects = false;
    op->manifest_put = true;
    proto_http_set_body_mem(&op->http, data, len);
    op->http.collect_max = 64 * 1024;
    return proto_http_add_header(&op->http, "Content-Type", media_type);
}

int proto_reg_manifest_delete(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                              const char *digest)
{
    char path[1024], what[300];
    int err;
    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", repo, digest);
    snprintf(what, sizeof(what), "DELETE manifest %s@%s", repo, digest);
    err = op_init(op, reg, "DELETE", path, what);
    if (err != 0)
        return err;
    op->expect[0] = 202;
    op->expect[1] = 200;
    op->expect[2] = 204;
    /* A delete goes to the registry the user named, as a manifest PUT does. */
    op->http.follow_redirects = false;
    op->http.collect_max = 64 * 1024;
    return 0;
}

int proto_reg_blob_head(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                        const char *digest)
{
    char path[1024], what[256];
    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", repo, digest);
    snprintf(what, sizeof(what), "HEAD blob %s@%s", repo, digest);
    return op_init(op, reg, "HEAD", path, what);
}

int proto_reg_blob_get(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                       const char *digest)
{
    char path[1024], what[256];
    int err;
    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", repo, digest);
    snprintf(what, sizeof(what), "GET blob %s@%s", repo, digest);
    err = op_init(op, reg, "GET", path, what);
    /* 206 answers a GET resumed with Range (the caller checks Content-Range). */
    op->expect[1] = 206;
    return err;
}

/* The answer to a blob fetch: exactly the range asked for (see proto_reg_blob_fetch). */
static int fetch_headers(struct proto_http_req *r)
{
    struct proto_reg_op *op = container_of(r, struct proto_reg_op, http);
    int64_t cl = proto_h1_content_length(&r->h1);
    if (op->fetch_offset > 0) {
        const char *cr = proto_http_header(r, "Content-Range");
        unsigned long long first, last, total;
        char star[2];
        if (r->status != 206 || cr == NULL)
            return UV_ERANGE;
        if (sscanf(cr, "bytes %llu-%llu/%llu", &first, &last, &total) == 3) {
            if (total != (unsigned long long)op->fetch_size)
                return UV_ERANGE;
        } else if (sscanf(cr, "bytes %llu-%llu/%1[*]", &first, &last, star) != 3) {
            return UV_ERANGE;
        }
        if (first != op->fetch_offset || last + 1 != (unsigned long long)op->fetch_size)
            return UV_ERANGE;
    } else if (r->status != 200) {
        return OCISYNC_EREGISTRY;
    }
    if (cl >= 0 && (uint64_t)cl != op->fetch_size - op->fetch_offset)
        return OCISYNC_ESIZEMISMATCH;
    return 0;
}

static int fetch_body(struct proto_http_req *r, const char *data, size_t len)
{
    struct proto_reg_op *op = container_of(r, struct proto_reg_op, http);
    return op->on_body(op, data, len);
}

int proto_reg_blob_fetch(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                         const char *digest, uint64_t offset, uint64_t size,
                         proto_reg_body_cb on_body)
{
    int err = proto_reg_blob_get(op, reg, repo, digest);
    if (err == 0 && offset > 0) {
        char range[48];
        snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)offset);
        err = proto_http_add_header(&op->http, "Range", range);
    }
    op->fetch_offset = offset;
    op->fetch_size = size;
    op->on_body = on_body;
    /* Bytes already passed on cannot be taken back: a retry then is the caller's. */
    op->streamed_response = true;
    op->http.on_headers = fetch_headers;
    op->http.on_body = fetch_body;
    return err;
}

void proto_reg_op_resume(struct proto_reg_op *op)
{
    proto_http_resume(&op->http);
}

void proto_reg_op_abort(struct proto_reg_op *op, int err)
{
    proto_http_abort(&op->http, err != 0 ? err : UV_ECANCELED);
}

uint64_t proto_reg_op_body_bytes(const struct proto_reg_op *op)
{
    return op->http.body_passed;
}

int proto_reg_upload_start(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                           const char *mount_digest, const char *from)
{
    char path[1024], what[256];
    int err;
    if (mount_digest != NULL) {
        snprintf(path, sizeof(path), "/v2/%s/blobs/uploads/?mount=%s&from=%s", repo, mount_digest,
                 from);
        snprintf(what, sizeof(what), "mount blob %s from %s into %s", mount_digest, from, repo);
    } else {
        snprintf(path, sizeof(path), "/v2/%s/blobs/uploads/", repo);
        snprintf(what, sizeof(what), "start upload to %s", repo);
    }
    err = op_init(op, reg, "POST", path, what);
    op->expect[0] = 202;
    op->expect[1] = 201;
    op->http.collect_max = 64 * 1024;
    return err;
}

int proto_reg_upload_patch(struct proto_reg_op *op, struct proto_registry *reg,
                           const char *location, uint64_t start, const struct proto_body *body)
{
    char range[64], what[64];
    int err;
    snprintf(what, sizeof(what), "PATCH upload chunk at %llu", (unsigned long long)start);
    err = op_init(op, reg, "PATCH", location, what);
    if (err != 0)
        return err;
    op->expect[0] = 202;
    op->http.has_body = true;
    op->http.body = *body;
    op->http.follow_redirects = false;
    op->http.collect_max = 64 * 1024;
    err = proto_http_add_header(&op->http, "Content-Type", "application/octet-stream");
    /* A body of unknown length is a stream: the registry appends whatever arrives. */
    if (err == 0 && body->length >= 0) {
        snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)start,
                 (unsigned long long)(start + (uint64_t)body->length - 1));
        err = proto_http_add_header(&op->http, "Content-Range", range);
    }
    return err;
}

int proto_reg_upload_status(struct proto_reg_op *op, struct proto_registry *reg,
                            const char *location)
{
    int err = op_init(op, reg, "GET", location, "upload status");
    if (err != 0)
        return err;
    op->expect[0] = 204;
    op->expect[1] = 200;
    op->http.follow_redirects = false;
    return 0;
}

int64_t proto_reg_upload_offset(struct proto_reg_op *op)
{
    const char *v = proto_http_header(&op->http, "Range");
    unsigned long long first, last;
    char tail;
    if (v == NULL || sscanf(v, "%llu-%llu%c", &first, &last, &tail) != 2 || first != 0)
        return -1;
    if (last == 0)
        return -1;
    return (int64_t)last + 1;
}

int proto_reg_upload_cancel(struct proto_reg_op *op, struct proto_registry *reg,
                            const char *location)
{
    int err = op_init(op, reg, "DELETE", location, "DELETE of an upload");
    if (err != 0)
        return err;
    op->expect[0] = 204;
    op->expect[1] = 200;
    op->expect[2] = 202;
    op->http.follow_redirects = false;
    return 0;
}

int proto_reg_upload_put(struct proto_reg_op *op, struct proto_registry *reg, const char *location,
                         const char *digest, const struct proto_body *body)
{
    size_t n = strlen(location) + strlen(digest) + 16;
    char *url = malloc(n);
    char what[256];
    int err;
    if (url == NULL)
        return UV_ENOMEM;
    snprintf(url, n, "%s%sdigest=%s", location, strchr(location, '?') ? "&" : "?", digest);
    snprintf(what, sizeof(what), "PUT upload of %s", digest);
    err = op_init(op, reg, "PUT", url, what);
    free(url);
    if (err != 0)
        return err;
    op->expect[0] = 201;
    op->expect[1] = 204;
    op->http.follow_redirects = false;
    op->http.collect_max = 64 * 1024;
    if (body != NULL) {
        op->http.has_body = true;
        op->http.body = *body;
        err = proto_http_add_header(&op->http, "Content-Type", "application/octet-stream");
    }
    return err;
}

/* ------------------------------------------------------------------------------------------ */
/* Authentication */

static uint64_t reg_now(struct proto_registry *reg)
{
    return uv_now(reg->client->loop->uv);
}

static const char *op_scope(struct proto_reg_op *op)
{
    return op->scope != NULL ? op->scope : op->reg->scope;
}

/* A cached token for scope that will not expire in the next moments, or NULL. */
static struct proto_reg_token *token_find(struct proto_registry *reg, const char *scope)
{
    uint64_t now = reg_now(reg);
    for (size_t i = 0; i < PROTO_REG_MAX_TOKENS; i++) {
        struct proto_reg_token *t = &reg->tokens[i];
        if (t->header == NULL || strcmp(t->scope, scope) != 0)
            continue;
        /* Refresh a little early: a quarter of the lifetime, at most 10 s. */
        uint64_t life = t->expires_ms - t->fetched_ms;
        uint64_t margin = life / 4 < 10000 ? life / 4 : 10000;
        if (now + margin < t->expires_ms)
            return t;
    }
    return NULL;
}

static void token_forget(struct proto_registry *reg, const char *scope)
{
    for (size_t i = 0; i < PROTO_REG_MAX_TOKENS; i++) {
        struct proto_reg_token *t = &reg->tokens[i];
        if (t->header != NULL && strcmp(t->scope, scope) == 0) {
            free(t->header);
            t->header = NULL;
        }
    }
}

static void token_store(struct proto_registry *reg, const char *scope, const char *token,
                        int64_t expires_in)
{
    struct proto_reg_token *slot = &reg->tokens[0];
    size_t n = strlen(token) + 8;
    token_forget(reg, scope);
    for (size_t i = 0; i < PROTO_REG_MAX_TOKENS; i++) {
        if (reg->tokens[i].header == NULL) {
            slot = &reg->tokens[i];
            break;
        }
        if (reg->tokens[i].expires_ms < slot->expires_ms)
            slot = &reg->tokens[i];
    }
    free(slot->header);
    slot->header = malloc(n);
    if (slot->header == NULL)
        return;
    snprintf(slot->header, n, "Bearer %s", token);
    snprintf(slot->scope, sizeof(slot->scope), "%s", scope);
    slot->fetched_ms = reg_now(reg);
    slot->expires_ms = slot->fetched_ms + (uint64_t)expires_in * 1000;
}

/* Whether u is the registry itself: its scheme, host and port as the user named them. */
static bool is_registry_origin(const struct proto_registry *reg, const struct proto_url *u)
{
    struct proto_url base;
    bool same;
    if (proto_url_parse(reg->base, &base) != 0)
        return false;
    same = proto_url_same_origin(u, &base);
    proto_url_free(&base);
    return same;
}

static int set_authorization(struct proto_reg_op *op, const char *value)
{
    struct proto_url base;
    free(op->http.authorization);
    op->http.authorization = value != NULL ? strdup(value) : NULL;
    if (value != NULL && op->http.authorization == NULL)
        return UV_ENOMEM;
    /*
     * Credentials, and tokens obtained with them, belong to the registry's
     * origin as the user named it, never to the URL at hand: a redirect
     * elsewhere (another host, port or scheme, "localhost" for "127.0.0.1"
     * included) gets none.
     */
    op->http.auth_origin[0] = '\0';
    if (proto_url_parse(op->reg->base, &base) == 0) {
        proto_url_origin(&base, op->http.auth_origin, sizeof(op->http.auth_origin));
        proto_url_free(&base);
    }
    return 0;
}

static void fail_op(struct proto_reg_op *op, int err, const char *fmt, const char *detail)
{
    snprintf(op->errmsg, sizeof(op->errmsg), fmt, op->reg->name, op->what, detail);
    op->cb(op, err);
}

static int fetch_token(struct proto_registry *reg, const char *scope);

/* Ops waiting for a token for scope: send them (or fail them with err). */
static void wake_waiting(struct proto_registry *reg, const char *scope, int err, const char *detail)
{
    struct queue mine;
    queue_init(&mine);
    /* Move them out first: callbacks may queue new ops on the registry. */
    while (!queue_empty(&reg->waiting)) {
        struct queue *q = queue_head(&reg->waiting);
        queue_remove(q);
        queue_insert_tail(&mine, q);
    }
    while (!queue_empty(&mine)) {
        struct queue *q = queue_head(&mine);
        struct proto_reg_op *op = container_of(q, struct proto_reg_op, wait_link);
        queue_remove(q);
        op->waiting = false;
        if (strcmp(op_scope(op), scope) != 0) {
            /* Another scope: it waits for a fetch of its own. */
            int rc = op_send(op);
            if (rc != 0)
                fail_op(op, rc, "registry %s: %s: %s", ocisync_strerror(rc));
            continue;
        }
        if (err != 0) {
            fail_op(op, err, "registry %s: %s: %s", detail);
            continue;
        }
        int rc = op_send(op);
        if (rc != 0)
            fail_op(op, rc, "registry %s: %s: %s",
                    op->http.error_detail ? op->http.error_detail : ocisync_strerror(rc));
    }
}

/*
 * Go's answer to plain HTTP on a TLS port (a loopback registry is spoken to
 * in plain HTTP unless told of its TLS): 400 "Client sent an HTTP request to
 * an HTTPS server", an HTTP/1.0 answer without a single header. A HEAD gets
 * no body, so the missing headers a registry always sends tell it too.
 */
static bool tls_port_spoken_plain(struct proto_http_req *r)
{
    if (r->status != 400 || strcmp(r->url.scheme, "http") != 0)
        return false;
    if (r->resp_body != NULL &&
        memmem(r->resp_body, r->resp_len, "HTTP request to an HTTPS server", 31) != NULL)
        return true;
    return r->resp_len == 0 && proto_http_header(r, "Content-Type") == NULL &&
           proto_http_header(r, "Docker-Distribution-Api-Version") == NULL &&
           proto_http_header(r, "Content-Length") == NULL;
}

static void on_token(struct proto_http_req *r, int err)
{
    struct proto_registry *reg = r->data;
    char detail[600], scope[PROTO_REG_SCOPE_MAX];
    struct proto_auth_token tok;
    char origin[LOOP_HOST_MAX + 32];
    snprintf(scope, sizeof(scope), "%s", reg->fetch_scope);
    proto_url_origin(&r->url, origin, sizeof(origin));
    if (err == 0 && r->status != 200) {
        char regerr[300];
        bool have = r->resp_body != NULL &&
                    proto_reg_format_errors(r->resp_body, r->resp_len, regerr, sizeof(regerr));
        snprintf(detail, sizeof(detail), "token server %s answered HTTP %d%s%s%s%s", origin,
                 r->status, have ? " (" : "", have ? regerr : "", have ? ")" : "",
                 r->status == 401 ? ": the credentials were not accepted" : "");
        err = r->status == 401   ? OCISYNC_EUNAUTHORIZED
              : r->status == 403 ? OCISYNC_EDENIED
                                 : OCISYNC_EREGISTRY;
    } else if (err != 0) {
        snprintf(detail, sizeof(detail), "token server %s: %s", origin,
                 r->error_detail ? r->error_detail : ocisync_strerror(err));
    } else {
        err = proto_auth_token_parse(r->resp_body, r->resp_len, &tok);
        if (err != 0) {
            snprintf(detail, sizeof(detail), "token server %s sent an unusable response (%s)",
                     origin, ocisync_strerror(err));
        } else {
            token_store(reg, scope, tok.token, tok.expires_in);
            reg->token_fetches++;
            LOG_DEBUG("registry %s: token for \"%s\" valid %llds", reg->name, scope,
                      (long long)tok.expires_in);
            proto_auth_token_dispose(&tok);
        }
    }
    proto_http_req_dispose(r);
    free(r);
    reg->fetch = NULL;
    free(reg->fetch_body);
    reg->fetch_body = NULL;
    wake_waiting(reg, scope, err, err != 0 ? detail : NULL);
}

/* Appends "&name=escaped(value)" (or "?" first) to *url. */
static int url_add(char **url, const char *name, const char *value)
{
    char *esc = proto_url_query_escape(value);
    char *n;
    size_t len;
    if (esc == NULL)
        return UV_ENOMEM;
    len = strlen(*url) + strlen(name) + strlen(esc) + 3;
    n = malloc(len);
    if (n == NULL) {
        free(esc);
        return UV_ENOMEM;
    }
    snprintf(n, len, "%s%c%s=%s", *url, strchr(*url, '?') ? '&' : '?', name, esc);
    free(esc);
    free(*url);
    *url = n;
    return 0;
}

/* Asks the challenge's realm for a token covering scope (space-separated scopes). */
static int fetch_token(struct proto_registry *reg, const char *scope)
{
    struct proto_http_req *r;
    struct proto_url realm;
    char *url = NULL, *scopes = NULL;
    bool identity = reg->cred.kind == PROTO_CRED_IDENTITY;
    int err;

    err = proto_url_parse(reg->challenge.realm, &realm);
    if (err != 0)
        return OCISYNC_EHTTP;
    r = calloc(1, sizeof(*r));
    url = strdup(reg->challenge.realm);
    scopes = strdup(scope);
    if (r == NULL || url == NULL || scopes == NULL) {
        err = UV_ENOMEM;
        goto fail;
    }
    if (identity) {
        /* OAuth2 refresh-token grant, as docker does with identity tokens. */
        size_t cap = 256 + strlen(reg->cred.secret) * 3 + strlen(scope) * 3 +
                     strlen(reg->challenge.service) * 3;
        char *svc = proto_url_query_escape(reg->challenge.service);
        char *tok = proto_url_query_escape(reg->cred.secret);
        char *sc = proto_url_query_escape(scope);
        reg->fetch_body = malloc(cap);
        if (svc == NULL || tok == NULL || sc == NULL || reg->fetch_body == NULL) {
            free(svc);
            free(tok);
            free(sc);
            err = UV_ENOMEM;
            goto fail;
        }
        snprintf(reg->fetch_body, cap,
                 "grant_type=refresh_token&service=%s&client_id=ocisync&refresh_token=%s&scope=%s",
                 svc, tok, sc);
        free(svc);
        free(tok);
        free(sc);
    } else {
        if (reg->challenge.service[0] != '\0')
            err = url_add(&url, "service", reg->challenge.service);
        for (char *save = NULL, *s = strtok_r(scopes, " ", &save); err == 0 && s != NULL;
             s = strtok_r(NULL, " ", &save))
            err = url_add(&url, "scope", s);
        if (err != 0)
            goto fail;
    }
    err = proto_http_req_init(r, reg->client, identity ? "POST" : "GET", url);
    if (err != 0)
        goto fail;
    r->tls = reg->tls;
    r->allow_http_redirect = reg->insecure;
    r->collect_max = PROTO_AUTH_MAX_TOKEN_BODY;
    r->on_done = on_token;
    r->data = reg;
    if (identity) {
        proto_http_set_body_mem(r, reg->fetch_body, strlen(reg->fetch_body));
        err = proto_http_add_header(r, "Content-Type", "application/x-www-form-urlencoded");
        if (err != 0)
            goto fail_req;
    } else if (reg->cred.kind == PROTO_CRED_BASIC) {
        /*
         * Basic credentials go to the realm only over HTTPS, unless the registry itself is
         * plain HTTP (then the user chose to send them in the clear anyway).
         */
        if (strcmp(realm.scheme, "https") == 0 || strncmp(reg->base, "http://", 7) == 0) {
            r->authorization = proto_auth_basic_header(reg->cred.username, reg->cred.secret);
            if (r->authorization == NULL) {
                err = UV_ENOMEM;
                goto fail_req;
            }
            proto_url_origin(&r->url, r->auth_origin, sizeof(r->auth_origin));
        } else {
            LOG_DEBUG("registry %s: token realm %s is plain HTTP; not sending credentials",
                      reg->name, realm.host);
            reg->withheld_creds = true;
        }
    }
    snprintf(reg->fetch_scope, sizeof(reg->fetch_scope), "%s", scope);
    reg->fetch = r;
    LOG_DEBUG("registry %s: fetching a token for \"%s\"", reg->name, scope);
    err = proto_http_start(r);
    if (err != 0) {
        reg->fetch = NULL;
        goto fail_req;
    }
    proto_url_free(&realm);
    free(url);
    free(scopes);
    return 0;

fail_req:
    proto_http_req_dispose(r);
fail:
    free(r);
    free(reg->fetch_body);
    reg->fetch_body = NULL;
    free(url);
    free(scopes);
    proto_url_free(&realm);
    return err;
}

/* Sends op with whatever credentials the registry is known to want. */
static int op_send(struct proto_reg_op *op)
{
    struct proto_registry *reg = op->reg;
    const char *scope = op_scope(op);
    int err = 0;
    if (op->http.redirects > 0) {
        /* The last attempt was redirected: this one asks the registry again. */
        struct proto_url u;
        err = proto_url_parse(op->url, &u);
        if (err != 0)
            return err;
        proto_url_free(&op->http.url);
        op->http.url = u;
        op->http.method = op->method;
        op->http.has_body = op->http.body.peek != NULL;
        op->http.redirects = 0;
    }
    if (reg->cred.kind == PROTO_CRED_REGISTRY_TOKEN) {
        char *h = malloc(strlen(reg->cred.secret) + 8);
        if (h == NULL)
            return UV_ENOMEM;
        sprintf(h, "Bearer %s", reg->cred.secret);
        err = set_authorization(op, h);
        free(h);
    } else if (reg->auth == PROTO_AUTH_BASIC && reg->cred.kind == PROTO_CRED_BASIC) {
        char *h = proto_auth_basic_header(reg->cred.username, reg->cred.secret);
        if (h == NULL)
            return UV_ENOMEM;
        err = set_authorization(op, h);
        free(h);
    } else if (reg->auth == PROTO_AUTH_BEARER) {
        struct proto_reg_token *t = token_find(reg, scope);
        if (t == NULL) {
            /* Wait for a token; one fetch per scope at a time. */
            op->waiting = true;
            queue_insert_tail(&reg->waiting, &op->wait_link);
            if (reg->fetch == NULL) {
                err = fetch_token(reg, scope);
                if (err != 0) {
                    queue_remove(&op->wait_link);
                    op->waiting = false;
                }
            }
            return err;
        }
        err = set_authorization(op, t->header);
    }
    if (err != 0)
        return err;
    return proto_http_start(&op->http);
}

int proto_reg_op_start(struct proto_reg_op *op, proto_reg_cb cb)
{
    int err;
    op->cb = cb;
    err = op_send(op);
    if (err != 0)
        snprintf(op->errmsg, sizeof(op->errmsg), "registry %s: %s: %s", op->reg->name, op->what,
                 op->http.error_detail ? op->http.error_detail : ocisync_strerror(err));
    return err;
}

/*
 * A 401: learn the challenge, drop the token that failed, and send the
 * request once more if its body can be sent again. Returns true if op was
 * taken care of (resent, or failed through its callback).
 */
static bool handle_401(struct proto_reg_op *op)
{
    struct proto_registry *reg = op->reg;
    const char *www = proto_http_header(&op->http, "WWW-Authenticate");
    struct proto_auth_challenge ch;
    bool replayable = !op->http.has_body || op->http.body.rewind != NULL;
    int err;
    if (op->auth_retried || www == NULL || reg->cred.kind == PROTO_CRED_REGISTRY_TOKEN)
        return false;
    /* A redirect target's challenge is not the registry's: nothing is learnt from it. */
    if (!is_registry_origin(reg, &op->http.url))
        return false;
    if (proto_auth_challenge_parse(www, strlen(www), &ch) != 0 || ch.scheme == PROTO_AUTH_NONE)
        return false;
    if (ch.scheme == PROTO_AUTH_BASIC && reg->cred.kind != PROTO_CRED_BASIC)
        return false;
    reg->auth = ch.scheme;
    reg->challenge = ch;
    token_forget(reg, op_scope(op));
    if (!replayable || (op->http.has_body && op->http.body.rewind(op->http.body.arg) != 0))
        return false;
    op->auth_retried = true;
    LOG_DEBUG("registry %s: %s needs %s authentication; retrying", reg->name, op->what,
              ch.scheme == PROTO_AUTH_BEARER ? "token" : "basic");
    err = op_send(op);
    if (err != 0)
        fail_op(op, err, "registry %s: %s: %s",
                op->http.error_detail ? op->http.error_detail : ocisync_strerror(err));
    return true;
}

int proto_reg_status(const struct proto_reg_op *op)
{
    return op->http.status;
}

const char *proto_reg_header(const struct proto_reg_op *op, const char *name)
{
    return proto_http_header(&op->http, name);
}

const char *proto_reg_body(const struct proto_reg_op *op, size_t *len)
{
    *len = op->http.resp_len;
    return op->http.resp_body != NULL ? op->http.resp_body : "";
}

char *proto_reg_take_body(struct proto_reg_op *op, size_t *len)
{
    char *b = op->http.resp_body;
    *len = op->http.resp_len;
    op->http.resp_body = NULL;
    op->http.resp_len = op->http.resp_cap = 0;
    return b;
}

void proto_reg_set_body_max(struct proto_reg_op *op, size_t max)
{
    op->http.collect_max = max;
}

void proto_reg_op_dispose(struct proto_reg_op *op)
{
    proto_http_req_dispose(&op->http);
    free(op->url);
    op->url = NULL;
}

bool proto_reg_format_errors(const char *body, size_t len, char *buf, size_t buflen)
{
    json_error_t jerr;
    json_t *root, *errors, *e;
    size_t i, n = 0;
    bool ok = false;
    if (body == NULL || len == 0 || buflen == 0)
        return false;
    buf[0] = '\0';
    root = json_loadb(body, len, 0, &jerr);
    if (root == NULL)
        return false;
    errors = json_object_get(root, "errors");
    if (!json_is_array(errors))
        goto out;
    json_array_foreach(errors, i, e)
    {
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        if (code == NULL && msg == NULL)
            continue;
        n += (size_t)snprintf(buf + n, n < buflen ? buflen - n : 0, "%s%s%s%s", n > 0 ? "; " : "",
                              code ? code : "", code && msg ? ": " : "", msg ? msg : "");
        if (n >= buflen)
            break;
        ok = true;
    }
out:
    json_decref(root);
    return ok;
}

static int status_error(int status)
{
    switch (status) {
    case 401:
        return OCISYNC_EUNAUTHORIZED;
    case 403:
        return OCISYNC_EDENIED;
    case 404:
        return OCISYNC_ENOTFOUND;
    default:
        return OCISYNC_EREGISTRY;
    }
}

bool proto_reg_transient(int err, int status)
{
    switch (err) {
    case 0:
        break;
    case UV_ECONNREFUSED:
    case UV_ECONNRESET:
    case UV_ECONNABORTED:
    case UV_EPIPE:
    case UV_ETIMEDOUT:
    case UV_EHOSTUNREACH:
    case UV_ENETUNREACH:
    case UV_ENETDOWN:
    case UV_EAI_AGAIN:
    case UV_EOF:
    case OCISYNC_ECLOSED:
    case OCISYNC_ETIMEOUT:
    case OCISYNC_EHTTP: /* a response cut or garbled in transit */
        return true;
    default:
        return false;
    }
    return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
           status == 504;
}

bool proto_reg_op_transient(const struct proto_reg_op *op, int err)
{
    switch (err) {
    case OCISYNC_EREGISTRY:
    case OCISYNC_ENOTFOUND:
    case OCISYNC_EDENIED:
    case OCISYNC_EUNAUTHORIZED:
        return proto_reg_transient(0, op->http.status);
    default:
        return proto_reg_transient(err, 0);
    }
}

/* Parses Retry-After: delta-seconds, or an HTTP date. Returns milliseconds from now, or -1. */
static int64_t parse_retry_after(const char *v)
{
    struct tm tm;
    char *end;
    if (v == NULL || *v == '\0')
        return -1;
    if (*v >= '0' && *v <= '9') {
        long long n = strtoll(v, &end, 10);
        if (*end != '\0' || n < 0)
            return -1;
        /* A day or more (or a number past long long) is as long as anything: the cap decides. */
        if (n > 86400)
            n = 86400;
        return (int64_t)n * 1000;
    }
    memset(&tm, 0, sizeof(tm));
    end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == NULL || *end != '\0')
        return -1;
    {
        time_t when = timegm(&tm), now = time(NULL);
        return when > now ? (int64_t)(when - now) * 1000 : 0;
    }
}

uint64_t proto_reg_backoff_ms(const struct proto_retry *policy, unsigned attempt,
                              const char *retry_after)
{
    int64_t ra = parse_retry_after(retry_after);
    uint64_t ms;
    if (ra >= 0)
        return (uint64_t)ra < policy->retry_after_cap_ms ? (uint64_t)ra
                                                         : policy->retry_after_cap_ms;
    ms = policy->base_ms;
    for (unsigned i = 0; i < attempt && ms < policy->max_ms; i++)
        ms *= 2;
    if (ms > policy->max_ms)
        ms = policy->max_ms;
    /*
     * +-20% jitter, so many clients throttled together do not come back
     * together; seeded per process, or every ocisync would draw the same
     * delays.
     */
    static bool seeded;
    if (!seeded) {
        srand((unsigned)(uv_hrtime() ^ ((uint64_t)getpid() << 16)));
        seeded = true;
    }
    if (ms >= 5) {
        uint64_t spread = ms * 2 / 5;
        ms = ms - spread / 2 + (uint64_t)rand() % (spread + 1);
    }
    return ms;
}

static void on_backoff(struct loop_delay *d)
{
    struct proto_reg_op *op = container_of(d, struct proto_reg_op, backoff);
    int err;
    if (op->http.has_body && op->http.body.rewind(op->http.body.arg) != 0) {
        fail_op(op, OCISYNC_EUPLOAD, "registry %s: %s: %s", "cannot resend the request body");
        return;
    }
    err = op_send(op);
    if (err != 0)
        fail_op(op, err, "registry %s: %s: %s",
                op->http.error_detail ? op->http.error_detail : ocisync_strerror(err));
}

/* Schedules op to be sent again if its failure is transient and it may be. */
static bool maybe_retry(struct proto_reg_op *op, int err)
{
    struct proto_registry *reg = op->reg;
    struct proto_http_req *r = &op->http;
    const char *ra = err == 0 ? proto_http_header(r, "Retry-After") : NULL;
    bool replayable = !r->has_body || r->body.rewind != NULL;
    uint64_t ms;
    if (!proto_reg_transient(err, err == 0 ? r->status : 0) || !replayable ||
        op->attempt >= reg->retry.max_retries || reg->client->loop->closing)
        return false;
    if (op->streamed_response && r->body_passed > 0)
        return false;
    ms = proto_reg_backoff_ms(&reg->retry, op->attempt, ra);
    op->attempt++;
    reg->retries++;
    if (err != 0)
        LOG_DEBUG("registry %s: %s: retry %u of %u in %llu ms after %s", reg->name, op->what,
                  op->attempt, reg->retry.max_retries, (unsigned long long)ms,
                  r->error_detail ? r->error_detail : ocisync_strerror(err));
    else
        LOG_DEBUG("registry %s: %s: retry %u of %u in %llu ms after HTTP %d%s%s", reg->name,
                  op->what, op->attempt, reg->retry.max_retries, (unsigned long long)ms, r->status,
                  ra ? ", Retry-After: " : "", ra ? ra : "");
    loop_delay_start(reg->client->loop, &op->backoff, ms, on_backoff);
    return true;
}

/*
 * A registry whose certificate is not checked may not speak TLS at all: as
 * docker and skopeo do for such registries, the request goes again over
 * plain HTTP (same host, and port unless it was https's default), and so does
 * every later one.
 */
static bool maybe_plain_http(struct proto_reg_op *op, int err)
{
    struct proto_registry *reg = op->reg;
    struct proto_http_req *r = &op->http;
    struct proto_url base;
    bool same;
    if (err != OCISYNC_ETLS || !reg->http_fallback || strcmp(r->url.scheme, "https") != 0 ||
        r->body_passed > 0 || proto_url_parse(reg->base, &base) != 0)
        return false;
    same = strcmp(base.host, r->url.host) == 0 && base.port == r->url.port;
    proto_url_free(&base);
    if (!same)
        return false;
    LOG_DEBUG("registry %s: no TLS there (%s); using plain HTTP, as with tls-verify off", reg->name,
              r->error_detail ? r->error_detail : "handshake failed");
    proto_registry_use_http(reg);
    if (proto_url_parse(reg->base, &base) != 0)
        return false;
    snprintf(r->url.scheme, sizeof(r->url.scheme), "http");
    r->url.port = base.port;
    r->tls = NULL;
    proto_url_free(&base);
    {
        char *u = proto_url_string(&r->url);
        if (u == NULL)
            return false;
        free(op->url);
        op->url = u;
    }
    loop_delay_start(reg->client->loop, &op->backoff, 0, on_backoff);
    return true;
}

static void on_http_done(struct proto_http_req *r, int err)
{
    struct proto_reg_op *op = r->data;
    if (maybe_plain_http(op, err))
        return;
    if (err == 0 &&
        (r->status == 429 || (r->status == 503 && proto_http_header(r, "Retry-After") != NULL))) {
        op->reg->throttled++;
        LOG_DEBUG("registry %s: throttled (HTTP %d)", op->reg->name, r->status);
    }
    if (maybe_retry(op, err))
        return;
    if (err != 0) {
        snprintf(op->errmsg, sizeof(op->errmsg), "registry %s: %s: %s", op->reg->name, op->what,
                 r->error_detail ? r->error_detail : ocisync_strerror(err));
        op->cb(op, err);
        return;
    }
    for (size_t i = 0; i < sizeof(op->expect) / sizeof(op->expect[0]); i++) {
        if (op->expect[i] != 0 && op->expect[i] == r->status) {
            int verr = op->manifest_get && r->status == 200 ? verify_manifest(op) : 0;
            if (verr != 0)
                LOG_DEBUG("%s", op->errmsg);
            op->cb(op, verr);
            return;
        }
    }
    if (r->status == 401 && handle_401(op))
        return;
    if (r->status == 401 && !is_registry_origin(op->reg, &r->url)) {
        snprintf(op->errmsg, sizeof(op->errmsg),
                 "registry %s: %s: redirected to %s:%d, which asks for authentication (HTTP "
                 "401); credentials are never sent to a redirect target",
                 op->reg->name, op->what, r->url.host, r->url.port);
        LOG_DEBUG("%s", op->errmsg);
        op->cb(op, OCISYNC_EUNAUTHORIZED);
        return;
    }
    if (op->manifest_put && r->status >= 300 && r->status < 400) {
        snprintf(op->errmsg, sizeof(op->errmsg),
                 "registry %s: %s: the registry answered with a redirect (HTTP %d); a manifest "
                 "is only pushed to the registry itself, so it was refused",
                 op->reg->name, op->what, r->status);
        LOG_DEBUG("%s", op->errmsg);
        op->cb(op, OCISYNC_EREDIRECT);
        return;
    }
    {
        char detail[512];
        bool have = r->resp_body != NULL &&
                    proto_reg_format_errors(r->resp_body, r->resp_len, detail, sizeof(detail));
        const char *hint = "";
        if (r->status == 401 && op->reg->withheld_creds)
            hint = ": the credentials were not sent, because the registry's token realm is "
                   "plain HTTP";
        else if (r->status == 401)
            hint = op->reg->cred.kind == PROTO_CRED_NONE
                       ? ": authentication required; give credentials (--src-creds / "
                         "--dest-creds, an auth file, or `ocisync login`)"
                       : ": the credentials were not accepted";
        else if (tls_port_spoken_plain(r))
            hint = ": the registry speaks HTTPS and was sent plain HTTP (it answered \"Client sent "
                   "an HTTP request to an HTTPS server\"); use HTTPS with --src-tls-verify / "
                   "--dest-tls-verify (=false to skip certificate checks) or --src-cert-dir / "
                   "--dest-cert-dir, and without --plain-http";
        snprintf(op->errmsg, sizeof(op->errmsg), "registry %s: %s: HTTP %d%s%s%s%s", op->reg->name,
                 op->what, r->status, have ? " (" : "", have ? detail : "", have ? ")" : "", hint);
        LOG_DEBUG("%s", op->errmsg);
        op->cb(op, status_error(r->status));
    }
}

char *proto_reg_upload_location(struct proto_reg_op *op)
{
    const char *loc = proto_http_header(&op->http, "Location");
    struct proto_url u;
    char *s = NULL;
    if (loc == NULL || *loc == '\0') {
        snprintf(op->errmsg, sizeof(op->errmsg), "registry %s: %s: the response has no Location",
                 op->reg->name, op->what);
        return NULL;
    }
    if (proto_url_resolve(&op->http.url, loc, &u) != 0) {
        snprintf(op->errmsg, sizeof(op->errmsg), "registry %s: %s: invalid upload Location",
                 op->reg->name, op->what);
        return NULL;
    }
    /* Blob data goes only to the registry itself, never to a host its answer names. */
    if (is_registry_origin(op->reg, &u))
        s = proto_url_string(&u);
    else
        snprintf(op->errmsg, sizeof(op->errmsg),
                 "registry %s: %s: the upload Location points to another host (%s:%d); "
                 "refusing to send data there",
                 op->reg->name, op->what, u.host, u.port);
    proto_url_free(&u);
    return s;
}

int proto_reg_referrers(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                        const char *digest)
{
    char path[1024], what[300];
    int err;
    snprintf(path, sizeof(path), "/v2/%s/referrers/%s", repo, digest);
    snprintf(what, sizeof(what), "GET referrers of %s@%s", repo, digest);
    err = op_init(op, reg, "GET", path, what);
    if (err != 0)
        return err;
    op->expect[1] = 404;
    op->http.collect_max = MANIFEST_MAX;
    return proto_http_add_header(&op->http, "Accept", "application/vnd.oci.image.index.v1+json");
}

int proto_reg_list(struct proto_reg_op *op, struct proto_registry *reg, const char *repo,
                   const char *next)
{
    char path[1024], what[300];
    int err;
    /* $OCISYNC_LIST_PAGE_SIZE: names per page (1-10000; default 1000), for registries that cap it.
     */
    const char *env = getenv("OCISYNC_LIST_PAGE_SIZE");
    long page = env != NULL ? strtol(env, NULL, 10) : 0;
    if (page < 1 || page > 10000)
        page = 1000;
    if (repo != NULL) {
        snprintf(path, sizeof(path), "/v2/%s/tags/list?n=%ld", repo, page);
        snprintf(what, sizeof(what), "GET tags of %s", repo);
    } else {
        snprintf(path, sizeof(path), "/v2/_catalog?n=%ld", page);
        snprintf(what, sizeof(what), "GET catalog");
    }
    err = op_init(op, reg, "GET", next != NULL ? next : path, what);
    if (err != 0)
        return err;
    op->http.collect_max = 8 * 1024 * 1024;
    return 0;
}

int proto_reg_tags_peek(struct proto_reg_op *op, struct proto_registry *reg, const char *repo)
{
    char path[1024], what[300];
    int err;
    snprintf(path, sizeof(path), "/v2/%s/tags/list?n=1", repo);
    snprintf(what, sizeof(what), "GET a tag of %s", repo);
    err = op_init(op, reg, "GET", path, what);
    if (err != 0)
        return err;
    op->http.collect_max = 64 * 1024;
    return 0;
}

char *proto_reg_next_page(struct proto_reg_op *op, int *err)
{
    const char *link = proto_http_header(&op->http, "Link");
    const char *lt, *gt;
    struct proto_url u;
    char target[2048];
    char *s = NULL;
    *err = 0;
    /* Link: </v2/x/tags/list?last=b&n=2>; rel="next" (one link is all registries send). */
    if (link == NULL || strstr(link, "rel=\"next\"") == NULL)
        return NULL;
    lt = strchr(link, '<');
    gt = lt != NULL ? strchr(lt, '>') : NULL;
    if (gt == NULL || (size_t)(gt - lt - 1) >= sizeof(target) || gt == lt + 1) {
        *err = OCISYNC_EREGISTRY;
        snprintf(op->errmsg, sizeof(op->errmsg), "registry %s: %s: unreadable Link header",
                 op->reg->name, op->what);
        return NULL;
    }
    memcpy(target, lt + 1, (size_t)(gt - lt - 1));
    target[gt - lt - 1] = '\0';
    if (proto_url_resolve(&op->http.url, target, &u) != 0) {
        *err = OCISYNC_EREGISTRY;
        snprintf(op->errmsg, sizeof(op->errmsg), "registry %s: %s: invalid Link target",
                 op->reg->name, op->what);
        return NULL;
    }
    if (is_registry_origin(op->reg, &u)) {
        s = proto_url_string(&u);
        if (s == NULL)
            *err = UV_ENOMEM;
    } else {
        *err = OCISYNC_EREGISTRY;
        snprintf(op->errmsg, sizeof(op->errmsg),
                 "registry %s: %s: the next page's Link points to another host (%s:%d); "
                 "refused",
                 op->reg->name, op->what, u.host, u.port);
    }
    proto_url_free(&u);
    return s;
}

uint64_t proto_reg_chunk_min(struct proto_reg_op *op)
{
    const char *v = proto_http_header(&op->http, "OCI-Chunk-Min-Length");
    char *end;
    unsigned long long n;
    if (v == NULL || *v < '0' || *v > '9')
        return 0;
    n = strtoull(v, &end, 10);
    if (*end != '\0')
        return 0;
    return n;
}
